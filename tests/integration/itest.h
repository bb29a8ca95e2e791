/* Shared pieces of the integration tests: one server per test program, typed call helpers and
 * assertions on status codes and field violations. */
#ifndef ITEST_H
#define ITEST_H

#include "tserver.h"

#include <grpc/grpc.h>
#include <protobuf-c/protobuf-c.h>
#include <stdbool.h>

extern struct tserver g_srv;
extern char g_dburl[1024];
/* Extra maturityd flags for itest_setup (NULL-terminated; NULL for none): set before
 * cmocka_run_group_tests. */
extern const char *const *itest_server_args;

/* cmocka group setup/teardown: fresh database + server; stop asserts exit status 0. */
int itest_setup(void **state);
int itest_teardown(void **state);

/* A client for `who` (cached per who; freed at teardown): the name of a dev PKI certificate
 * ("admin", "portal", ...), or "CERT>PRINCIPAL" for that certificate sending x-on-behalf-of:
 * PRINCIPAL on every call (e.g. "gateway>user:alice@corp.example"). */
struct tclient *itest_client(const char *who);

/* Unary call; asserts the status equals `want`. On OK returns the decoded response (free with
 * protobuf_c_message_free_unpacked), else NULL. */
void *itest_call(const char *who, const char *method, const void *req,
                 const ProtobufCMessageDescriptor *resp_desc, grpc_status_code want);

/* Unary call expecting INVALID_ARGUMENT with a BadRequest violation on `field`. */
void itest_expect_violation(const char *who, const char *method, const void *req,
                            const char *field);
/* The same check on a finished call's result, which it cleans up. */
void itest_check_violation(struct tresult *r, const char *method, const char *field);

const char *itest_code_name(grpc_status_code c);

/* A TCP port on 127.0.0.1 free a moment ago, or -1. */
int itest_free_port(void);

/* A sample's value on the server's /metrics (`name` with its labels, as printed), or -1 when
 * the line is not there (a counter never incremented) or the page could not be read. */
long long itest_metric(int metrics_port, const char *name);

/* Prints to stderr the server log's lines above "info" (at most 30): what the server saw when a
 * client's call failed in a way the client cannot explain (a refused connection). */
void itest_dump_server_warnings(const char *log_path);

/* GET path over HTTP/1.0 from 127.0.0.1:port (e.g. /metrics): the whole response, headers
 * included (caller frees), or NULL when it cannot connect. */
char *itest_http_get(int port, const char *path);

#endif
