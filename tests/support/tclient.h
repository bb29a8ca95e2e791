/* A small gRPC client on grpc core for the integration tests and tools: mutual TLS with any
 * certificate (or none, or plaintext), unary calls with raw bytes or protobuf-c messages, server
 * streams, and the rich error details of a failed call. Not thread-safe per client; use one per
 * thread. */
#ifndef TCLIENT_H
#define TCLIENT_H

#include <grpc/grpc.h>
#include <protobuf-c/protobuf-c.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct tclient;

/* target "127.0.0.1:PORT". ca_file: the CA that signed the server certificate. cert/key: the
 * client certificate, or NULL for none. insecure: plaintext (ca/cert/key ignored). Returns NULL
 * when a file cannot be read. */
struct tclient *tclient_new(const char *target, const char *ca_file, const char *cert_file,
                            const char *key_file, bool insecure);
void tclient_free(struct tclient *c);

struct tresult {
	grpc_status_code code;
	char *message; /* status message, NUL-terminated */
	uint8_t *body; /* response bytes (unary) */
	size_t body_len;
	bool has_body;
	uint8_t *details; /* grpc-status-details-bin, raw */
	size_t details_len;
};
void tresult_cleanup(struct tresult *r);

/* The next calls wait for the channel to connect (grpc's wait-for-ready) instead of failing
 * at the first connection attempt that fails: what a batch job does. */
void tclient_set_wait_for_ready(struct tclient *c, bool on);

/* Metadata to send with the next calls (e.g. x-request-id); NULL to clear. */
void tclient_set_request_id(struct tclient *c, const char *request_id);
/* A W3C traceparent header to send with the next calls; NULL to clear. */
void tclient_set_traceparent(struct tclient *c, const char *traceparent);

/* Adds one metadata entry (`len` bytes of value, copied) to every next call; the same key added
 * twice is sent twice. key NULL removes them all. At most TCLIENT_MAX_METADATA. */
#define TCLIENT_MAX_METADATA 4
void tclient_add_metadata(struct tclient *c, const char *key, const char *value, size_t len);

/* A unary call with raw request bytes. timeout_ms <= 0: 10 s. Returns the status code. */
grpc_status_code tclient_call_raw(struct tclient *c, const char *method, const void *req,
                                  size_t req_len, int timeout_ms, struct tresult *out);

/* A unary call with a message; on OK decodes the response into *resp (caller frees with
 * protobuf_c_message_free_unpacked) when resp_desc is not NULL. */
grpc_status_code tclient_call(struct tclient *c, const char *method, const ProtobufCMessage *req,
                              const ProtobufCMessageDescriptor *resp_desc, ProtobufCMessage **resp,
                              int timeout_ms, struct tresult *out);

/* A server stream. */
struct tstream;
struct tstream *tclient_stream_open(struct tclient *c, const char *method,
                                    const ProtobufCMessage *req, int timeout_ms);
/* Next message into *msg (NULL at the end of the stream). Returns false at the end or on
 * error; the status is then in tclient_stream_finish. */
bool tclient_stream_next(struct tstream *s, const ProtobufCMessageDescriptor *desc,
                         ProtobufCMessage **msg);
void tclient_stream_cancel(struct tstream *s);
/* Waits for the status and frees the stream. */
grpc_status_code tclient_stream_finish(struct tstream *s, struct tresult *out);

#endif
