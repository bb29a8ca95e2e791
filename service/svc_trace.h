/* W3C Trace Context: the `traceparent` a caller sends ("00-<trace-id>-<parent-id>-<flags>") is
 * read from the call's metadata and its trace and span ids are logged on the call's line, so a
 * call can be found from the caller's trace. */
#ifndef SVC_TRACE_H
#define SVC_TRACE_H

#include <grpc/grpc.h>
#include <stdbool.h>
#include <stddef.h>

struct svc_trace {
	char trace_id[33]; /* 32 lowercase hex digits, or "" when the call carried none */
	char span_id[17];  /* the caller's span (parent-id): 16 lowercase hex digits */
};

/* Parses one traceparent value. A malformed one (wrong length or case, all-zero ids, version
 * ff) is ignored, as the specification asks: false, out emptied. */
bool svc_trace_parse(const char *value, size_t len, struct svc_trace *out);

/* The traceparent of a call's metadata, if any (out emptied otherwise). */
void svc_trace_from_metadata(const grpc_metadata_array *md, struct svc_trace *out);

#endif
