/* The one mapping from the mat_code error model to gRPC status (a switch without default, so a
 * new code fails the build until it is mapped), the google.rpc.BadRequest details carried in
 * grpc-status-details-bin, and the UTF-8 check of every string field of a decoded request
 * (protobuf-c does not do it). */
#ifndef SVC_STATUS_H
#define SVC_STATUS_H

#include "mat_error.h"

#include <grpc/grpc.h>
#include <protobuf-c/protobuf-c.h>
#include <stdbool.h>

struct svc_status {
	grpc_status_code code;
	grpc_slice details; /* message sent to the client; unref with svc_status_cleanup */
	grpc_metadata trailing[1];
	size_t n_trailing;   /* 1 when grpc-status-details-bin is set */
	const char *message; /* the text in details */
	char text[400];
};

grpc_status_code svc_status_from_code(enum mat_code code);

/* What a client reads when the database is unreachable (UNAVAILABLE: retrying is safe). */
#define SVC_STATUS_UNAVAILABLE_TEXT "the database is unavailable; try again later"

/* Fills st for a call that ended with `code`. INTERNAL and UNAVAILABLE details are replaced by a
 * fixed text (they name internals: they are logged, never sent). */
void svc_status_build(enum mat_code code, const struct mat_error *err, struct svc_status *st);
void svc_status_cleanup(struct svc_status *st);

/* "OK", "NotFound", ...: the names the gRPC ecosystem uses in metrics labels. */
const char *svc_status_code_name(grpc_status_code code);

/* Walks every string field of msg (nested, repeated and map entries too); on the first invalid
 * UTF-8 adds a field violation naming its path (e.g. "organization.labels") and returns false. */
bool svc_check_utf8(const ProtobufCMessage *msg, struct mat_error *err);

#endif
