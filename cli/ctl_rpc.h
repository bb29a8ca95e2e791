/* maturityctl's connection to maturityd on grpc core: one mutual-TLS channel, unary and
 * server-streaming calls with protobuf-c messages, the call's status with its rich error
 * details, and the table of every method the client knows (by full name). Single-threaded:
 * one connection per process, used by one thread. */
#ifndef CTL_RPC_H
#define CTL_RPC_H

#include <grpc/grpc.h>
#include <protobuf-c/protobuf-c.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

/* Where and how to connect; every string is borrowed and may be NULL (cacert NULL: the system's
 * root certificates; cert and key NULL: no client certificate). */
struct ctl_conn_opts {
	const char *server;       /* HOST:PORT */
	const char *cacert;       /* PEM file: the CA that signed the server's certificate */
	const char *cert;         /* PEM file: the client certificate */
	const char *key;          /* PEM file: its private key */
	const char *server_name;  /* name checked against the server's certificate */
	const char *on_behalf_of; /* sent as x-on-behalf-of (delegation), or NULL */
	long timeout_ms;          /* per call; <= 0: none for streams, 30 s for unary calls */
};

struct ctl_conn;

/* Opens a channel (no I/O yet: grpc connects on the first call). Returns 0 and *out, or -1 with
 * one line in err (size n) when a file cannot be read. Call after grpc_init. */
int ctl_conn_open(const struct ctl_conn_opts *opts, struct ctl_conn **out, char *err, size_t n)
    __attribute__((warn_unused_result));
void ctl_conn_free(struct ctl_conn *c);

/* How a call ended. message and details are malloc'd (details may be NULL). */
struct ctl_status {
	grpc_status_code code;
	char *message;
	uint8_t *details; /* grpc-status-details-bin: a serialized google.rpc.Status */
	size_t details_len;
};
void ctl_status_cleanup(struct ctl_status *st);

/* "NOT_FOUND" for GRPC_STATUS_NOT_FOUND, and so on. */
const char *ctl_status_name(grpc_status_code code);

/* Writes `NAME: message` and then one `  FIELD: DESCRIPTION` line per field violation of a
 * google.rpc.BadRequest in the details. */
void ctl_status_print(const struct ctl_status *st, FILE *f);

/* Called with each response message, which the callee then owns (free with
 * protobuf_c_message_free_unpacked(msg, NULL)). Return 0 to go on, nonzero to cancel the call
 * (the status is then CANCELLED unless the server had already finished). */
typedef int (*ctl_msg_fn)(ProtobufCMessage *msg, void *ud);

/* Calls `path` ("/pkg.Service/Method") with req and hands every response message to fn: one
 * for a unary method, any number for a server stream. timeout_ms overrides the connection's
 * (<= 0: the connection's rule). The status goes to *st (always filled; clean it up). Returns
 * st->code. */
grpc_status_code ctl_call(struct ctl_conn *c, const char *path, const ProtobufCMessage *req,
                          const ProtobufCMessageDescriptor *resp_desc, bool streaming,
                          ctl_msg_fn fn, void *ud, struct ctl_status *st);

/* A unary call: on OK, *resp holds the response (caller frees), else NULL. */
grpc_status_code ctl_call_unary(struct ctl_conn *c, const char *path, const ProtobufCMessage *req,
                                const ProtobufCMessageDescriptor *resp_desc,
                                ProtobufCMessage **resp, struct ctl_status *st);

/* One method the client can call. */
struct ctl_method {
	char path[160]; /* "/mlops.maturity.v1.OrganizationService/GetOrganization" */
	const ProtobufCMessageDescriptor *input;
	const ProtobufCMessageDescriptor *output;
	bool server_streaming;
};

/* Finds a method by full name ("pkg.Service/Method", a leading '/' allowed). Returns 0 and
 * fills *m, or -1 when no service of the API (or grpc.health.v1.Health) has it. */
int ctl_method_find(const char *name, struct ctl_method *m) __attribute__((warn_unused_result));

#endif
