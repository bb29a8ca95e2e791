/* Health: a monitor thread pings the database once a second so that grpc.health.v1 Check answers
 * from memory (a health check must not cost a query), and calls that see the database fail mark
 * it down at once. Also the Health service's handlers (svc_health_service in svc.h). */
#ifndef SVC_HEALTH_H
#define SVC_HEALTH_H

#include "mat_error.h"
#include "store.h"

#include <stdbool.h>

struct svc_health;

struct svc_health *svc_health_new(struct store_pool *pool);
void svc_health_start(struct svc_health *h);
void svc_health_stop(struct svc_health *h);
void svc_health_free(struct svc_health *h);

/* True while the database answers. */
bool svc_health_db_ok(const struct svc_health *h);
/* A call saw UNAVAILABLE or TIMEOUT from storage: re-check now. */
void svc_health_db_failed(struct svc_health *h, enum mat_code code);
/* From now on every service is NOT_SERVING. */
void svc_health_set_shutting_down(struct svc_health *h);
/* fn(arg) runs on the monitor thread whenever the database state flips, and on the thread that
 * starts shutdown. Set before svc_health_start. */
void svc_health_on_change(struct svc_health *h, void (*fn)(void *arg), void *arg);
/* What a schema check found, applied: a schema with versions this binary does not know (a newer
 * binary migrated it) gets its writes refused; reads go on. Returns false when the schema is
 * behind (migrations missing: the server cannot serve). A problem is described in msg. */
bool svc_schema_apply(struct store_pool *pool, const struct store_schema *s, char *msg, size_t n);

/* SERVING (true) or NOT_SERVING. */
bool svc_health_serving(const struct svc_health *h);

#endif
