/* Prometheus metrics named as the gRPC ecosystem names them (go-grpc-prometheus):
 * grpc_server_started_total, grpc_server_handled_total, grpc_server_handling_seconds, plus pool
 * gauges and build info; served over HTTP by libmicrohttpd at --metrics-listen /metrics.
 * Counters are lock-free atomics so recording costs a few nanoseconds on the call path. */
#ifndef SVC_METRICS_H
#define SVC_METRICS_H

#include "store.h"

#include <stddef.h>

struct svc_metrics;

struct svc_metrics *svc_metrics_new(size_t n_methods);
void svc_metrics_set_method(struct svc_metrics *m, size_t i, const char *service,
                            const char *method);
void svc_metrics_free(struct svc_metrics *m);

/* index -1: an unknown method (answered UNIMPLEMENTED; not labelled, to bound cardinality). */
void svc_metrics_started(struct svc_metrics *m, int index);
void svc_metrics_handled(struct svc_metrics *m, int index, int grpc_code, double seconds);

/* WatchEvents: streams open (+1 / -1), events sent. */
void svc_metrics_watchers(struct svc_metrics *m, int delta);
void svc_metrics_events_delivered(struct svc_metrics *m, unsigned n);
/* A call reset by its client before it was handled (CVE-2023-44487's pattern): counted here
 * instead of a log line each. */
void svc_metrics_call_reset(struct svc_metrics *m);
/* A watch ended because it fell behind the replica's window of events. */
void svc_metrics_watcher_too_slow(struct svc_metrics *m);
/* From the replica hearing of a commit to one of its events handed to a live watch. */
void svc_metrics_event_latency(struct svc_metrics *m, double seconds);

/* The front door (svc_door.c). Reasons are labels from fixed lists (svc_metrics.c): refused
 * "limit", "fd_limit"; handshakes failed "protocol", "no_certificate", "untrusted", "expired",
 * "revoked", "no_identity", "closed", "timeout", "evicted"; closed for abuse "rapid_reset",
 * "header_block", "header_list", "ping_flood", "settings_flood", "empty_frames", "protocol",
 * "slow_reader". Another label counts as "other". Any thread. */
void svc_metrics_connections_open(struct svc_metrics *m, int delta);
void svc_metrics_connection_refused(struct svc_metrics *m, const char *reason);
void svc_metrics_handshake_failed(struct svc_metrics *m, const char *reason);
void svc_metrics_connection_abuse(struct svc_metrics *m, const char *reason);

/* The exposition text; caller frees. pool may be NULL. */
char *svc_metrics_render(struct svc_metrics *m, struct store_pool *pool);

/* Serves /metrics on addr ("host:port"); returns 0, or -1 with a log line. */
int svc_metrics_serve(struct svc_metrics *m, struct store_pool *pool, const char *addr);
void svc_metrics_stop(struct svc_metrics *m);

#endif
