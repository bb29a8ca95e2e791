/* Structured logs: one JSON line per call and per lifecycle event (start, shutdown, database
 * state), or a human text line with --log-format text. Thread-safe; writes to stderr. */
#ifndef SVC_LOG_H
#define SVC_LOG_H

#include "svc_config.h"

#include <stdbool.h>
#include <stdint.h>

void svc_log_init(enum svc_log_format fmt);

/* A log line being built (at most one page; longer values are cut). */
struct svc_log_line {
	char d[4096];
	size_t n;
};

/* One line for a finished call, in two steps: formatted while the call's data is alive, written
 * once its response is on its way (the write must not delay the reply). `delegator` (NULL or ""
 * when none) is the portal that asserted `principal` with x-on-behalf-of: the line then has a
 * "delegator" field beside "principal" (text: delegator=...). */
void svc_log_call_format(struct svc_log_line *out, const char *method, const char *principal,
                         const char *delegator, const char *code_name, double duration_ms,
                         const char *request_id, const char *peer, const char *message);
void svc_log_line_write(struct svc_log_line *l);
/* Adds the caller's W3C trace and span ids to a call line built by svc_log_call_format (nothing
 * when trace_id is empty). */
void svc_log_call_add_trace(struct svc_log_line *out, const char *trace_id, const char *span_id);

/* Deferred call lines, for the server's own threads: after svc_log_defer, this thread's call
 * lines collect in a buffer (written when it fills) until svc_log_flush, which the thread calls
 * before it blocks waiting for work and before it exits. A crash loses at most the lines of the
 * calls a busy thread finished since it last ran out of work. Event lines are never deferred. */
void svc_log_defer(void);
bool svc_log_pending(void);
void svc_log_flush(void);

/* An event: level "info", "warn" or "error"; msg printf-style. */
void svc_log_event(const char *level, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

/* A line from a library (grpc core, libmicrohttpd), in the same format as ours, with
 * "source":"grpc" and the library's file:line. At most SVC_LOG_LIBRARY_BURST such lines per
 * second: any peer that cannot even authenticate makes grpc log its failed handshake. The lines
 * dropped are counted in the next one written ("dropped":N). */
#define SVC_LOG_LIBRARY_BURST 20
void svc_log_library(const char *source, const char *level, const char *file, int line,
                     const char *msg);

/* Routes grpc core's own log (gpr_log) through svc_log_library; before grpc_init. */
void svc_log_route_grpc(void);

#endif
