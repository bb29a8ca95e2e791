/* Structured logs: one JSON line per call and per lifecycle event (start, shutdown, database
 * state), or a human text line with --log-format text. Thread-safe; writes to stderr. */
#ifndef SVC_LOG_H
#define SVC_LOG_H

#include "svc_config.h"

#include <stdint.h>

void svc_log_init(enum svc_log_format fmt);

/* One line for a finished call. */
void svc_log_call(const char *method, const char *principal, const char *code_name,
                  double duration_ms, const char *request_id, const char *peer,
                  const char *message);

/* An event: level "info", "warn" or "error"; msg printf-style. */
void svc_log_event(const char *level, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

#endif
