/* grpc.health.v1.Health and the database monitor behind it. */
#include "svc_health.h"

#include "grpc/health/v1/health.pb-c.h"
#include "svc.h"
#include "svc_log.h"
#include "svc_methods.h"

#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

struct svc_health {
	struct store_pool *pool;
	atomic_int db_ok;
	atomic_int schema_ok; /* the database holds every migration this binary embeds */
	atomic_int shutting_down;
	pthread_t thread;
	bool running;
	pthread_mutex_t mu;
	pthread_cond_t cv;
	bool stop;
	bool recheck;
	/* Told of every change of the serving state (the engine wakes parked Watch streams). */
	void (*on_change)(void *arg);
	void *on_change_arg;
};

struct svc_health *svc_health_new(struct store_pool *pool)
{
	struct svc_health *h = calloc(1, sizeof(*h));
	if (h == NULL)
		return NULL;
	h->pool = pool;
	atomic_init(&h->db_ok, 1);     /* start-up waited for the database */
	atomic_init(&h->schema_ok, 1); /* and checked its schema */
	atomic_init(&h->shutting_down, 0);
	pthread_mutex_init(&h->mu, NULL);
	pthread_cond_init(&h->cv, NULL);
	return h;
}

bool svc_schema_apply(struct store_pool *pool, const struct store_schema *s, char *msg, size_t n)
{
	char why[200];

	msg[0] = '\0';
	if (s->unknown > 0) {
		snprintf(why, sizeof(why),
		         "the database schema (version %d) is newer than this maturityd's (%d): "
		         "writes are refused until maturityd is upgraded",
		         s->have, s->want);
		snprintf(msg, n, "%s", why);
		store_pool_refuse_writes(pool, why);
	} else {
		store_pool_refuse_writes(pool, NULL);
	}
	if (s->missing > 0) {
		snprintf(msg, n,
		         "the database schema is behind this maturityd: version %d recorded, %d "
		         "needed (%d migrations missing); run `maturityd migrate` or start without "
		         "--no-migrate",
		         s->have, s->want, s->missing);
		return false;
	}
	return true;
}

/* The schema is read again when the database comes back (it may have been restored from an
 * older backup), every second while it is behind (a migration job may be running), and every
 * SCHEMA_CHECK_S seconds otherwise. A change is logged once. */
#define SCHEMA_CHECK_S 10

static void check_schema(struct svc_health *h, int64_t *next_ms, char *last_msg, size_t n)
{
	struct store_schema sc;
	struct mat_error err;
	char msg[400];
	bool ok, flipped;

	mat_error_clear(&err);
	if (store_schema_check(h->pool, store_now_ms() + 1000, &sc, &err) != MAT_OK) {
		*next_ms = store_now_ms() + 1000;
		return;
	}
	ok = svc_schema_apply(h->pool, &sc, msg, sizeof(msg));
	flipped = ok != (atomic_exchange(&h->schema_ok, ok) != 0);
	if (flipped && h->on_change != NULL)
		h->on_change(
		    h->on_change_arg); /* the serving state changed: parked Watch streams */
	if (flipped || strcmp(msg, last_msg) != 0) {
		if (!ok)
			svc_log_event("error", "%s: NOT_SERVING", msg);
		else if (msg[0] != '\0')
			svc_log_event("warn", "%s", msg);
		else
			svc_log_event("info", "the database schema is current again: SERVING");
		snprintf(last_msg, n, "%s", msg);
	}
	*next_ms = store_now_ms() + (ok ? SCHEMA_CHECK_S * 1000 : 1000);
}

static void *monitor(void *arg)
{
	struct svc_health *h = arg;
	int64_t next_schema_ms = store_now_ms() + SCHEMA_CHECK_S * 1000;
	char schema_msg[400] = "";

	pthread_mutex_lock(&h->mu);
	while (!h->stop) {
		struct timespec until;
		bool ok, was_ok;

		pthread_mutex_unlock(&h->mu);
		ok = store_pool_ping(h->pool, store_now_ms() + 1000);
		was_ok = atomic_exchange(&h->db_ok, ok) != 0;
		if (ok != was_ok) {
			svc_log_event(ok ? "info" : "warn", "database %s",
			              ok ? "reachable again: SERVING" : "unreachable: NOT_SERVING");
			if (h->on_change != NULL)
				h->on_change(h->on_change_arg);
		}
		if (ok && (!was_ok || store_now_ms() >= next_schema_ms))
			check_schema(h, &next_schema_ms, schema_msg, sizeof(schema_msg));
		pthread_mutex_lock(&h->mu);
		if (h->stop)
			break;
		if (h->recheck && ok) {
			h->recheck = false;
			continue;
		}
		h->recheck = false;
		clock_gettime(CLOCK_REALTIME, &until);
		until.tv_nsec += ok ? 0 : 500000000L; /* down: look again sooner */
		until.tv_sec += ok ? 1 : 0;
		if (until.tv_nsec >= 1000000000L) {
			until.tv_sec++;
			until.tv_nsec -= 1000000000L;
		}
		while (!h->stop && !h->recheck &&
		       pthread_cond_timedwait(&h->cv, &h->mu, &until) == 0)
			;
	}
	pthread_mutex_unlock(&h->mu);
	return NULL;
}

void svc_health_start(struct svc_health *h)
{
	if (pthread_create(&h->thread, NULL, monitor, h) == 0)
		h->running = true;
}

void svc_health_stop(struct svc_health *h)
{
	if (h == NULL || !h->running)
		return;
	pthread_mutex_lock(&h->mu);
	h->stop = true;
	pthread_cond_broadcast(&h->cv);
	pthread_mutex_unlock(&h->mu);
	pthread_join(h->thread, NULL);
	h->running = false;
}

void svc_health_free(struct svc_health *h)
{
	if (h == NULL)
		return;
	svc_health_stop(h);
	pthread_mutex_destroy(&h->mu);
	pthread_cond_destroy(&h->cv);
	free(h);
}

bool svc_health_db_ok(const struct svc_health *h)
{
	return atomic_load(&h->db_ok) != 0;
}

void svc_health_db_failed(struct svc_health *h, enum mat_code code)
{
	(void)code;
	pthread_mutex_lock(&h->mu);
	h->recheck = true;
	pthread_cond_broadcast(&h->cv);
	pthread_mutex_unlock(&h->mu);
}

void svc_health_set_shutting_down(struct svc_health *h)
{
	atomic_store(&h->shutting_down, 1);
	pthread_mutex_lock(&h->mu);
	pthread_cond_broadcast(&h->cv);
	pthread_mutex_unlock(&h->mu);
	if (h->on_change != NULL)
		h->on_change(h->on_change_arg);
}

void svc_health_on_change(struct svc_health *h, void (*fn)(void *arg), void *arg)
{
	h->on_change = fn;
	h->on_change_arg = arg;
}

bool svc_health_serving(const struct svc_health *h)
{
	return !atomic_load(&h->shutting_down) && atomic_load(&h->db_ok) &&
	       atomic_load(&h->schema_ok);
}

/* --- the service ---------------------------------------------------------------------- */

static bool known_service(const char *name)
{
	static const char *const names[] = {
	    "",
	    "mlops.maturity.v1.ModelService",
	    "mlops.maturity.v1.OrganizationService",
	    "mlops.maturity.v1.AssessmentService",
	    "mlops.maturity.v1.ScoringService",
	    "mlops.maturity.v1.TransitionService",
	    "mlops.maturity.v1.ReportingService",
	    "mlops.maturity.v1.AccessService",
	    "mlops.maturity.v1.EvidenceService",
	    "mlops.maturity.v1.GateService",
	    "mlops.maturity.v1.EventService",
	    "grpc.health.v1.Health",
	};
	for (size_t i = 0; i < sizeof(names) / sizeof(names[0]); i++)
		if (strcmp(name, names[i]) == 0)
			return true;
	return false;
}

enum mat_code rpc_health_check(struct svc_ctx *ctx, const ProtobufCMessage *req_)
{
	const Grpc__Health__V1__HealthCheckRequest *req = (const void *)req_;
	Grpc__Health__V1__HealthCheckResponse resp = GRPC__HEALTH__V1__HEALTH_CHECK_RESPONSE__INIT;

	if (!known_service(req->service))
		return mat_error_set(&ctx->err, MAT_NOT_FOUND, "unknown service \"%s\"",
		                     req->service);
	resp.status = svc_server_serving(ctx->srv)
	                  ? GRPC__HEALTH__V1__HEALTH_CHECK_RESPONSE__SERVING_STATUS__SERVING
	                  : GRPC__HEALTH__V1__HEALTH_CHECK_RESPONSE__SERVING_STATUS__NOT_SERVING;
	return svc_reply(ctx, &resp.base);
}

/* Watch on the main port is an engine-driven stream: it sends the state, then parks until the
 * state changes (the monitor wakes it through svc_health_on_change); a parked watch holds no
 * thread, so --max-streams is its only bound. Shutdown sends NOT_SERVING and ends it with OK. */
struct watch {
	struct svc_health *h;
	int last; /* the state last sent: -1 none, 0 NOT_SERVING, 1 SERVING */
};

static enum mat_code watch_fetch(struct svc_ctx *ctx, void *state, size_t *n, enum svc_fetch *next)
{
	struct watch *w = state;
	int serving = svc_health_serving(w->h);
	bool down = atomic_load(&w->h->shutting_down) != 0;

	(void)ctx;
	*n = serving != w->last ? 1 : 0;
	w->last = serving;
	*next = down ? SVC_FETCH_LAST : (*n ? SVC_FETCH_MORE : SVC_FETCH_PARK);
	return MAT_OK;
}

static const ProtobufCMessage *watch_encode(struct svc_ctx *ctx, void *state, size_t i)
{
	struct watch *w = state;
	Grpc__Health__V1__HealthCheckResponse *r = svc_alloc(ctx, sizeof(*r));

	(void)i;
	grpc__health__v1__health_check_response__init(r);
	r->status = w->last ? GRPC__HEALTH__V1__HEALTH_CHECK_RESPONSE__SERVING_STATUS__SERVING
	                    : GRPC__HEALTH__V1__HEALTH_CHECK_RESPONSE__SERVING_STATUS__NOT_SERVING;
	return &r->base;
}

static void watch_release(void *state)
{
	(void)state; /* a watch's batch is its `last` field */
}

static const struct svc_stream_ops watch_ops = {.fetch = watch_fetch,
                                                .encode = watch_encode,
                                                .release = watch_release,
                                                .free = free,
                                                .encode_inline = true};

enum mat_code rpc_health_watch(struct svc_ctx *ctx, const ProtobufCMessage *req_)
{
	const Grpc__Health__V1__HealthCheckRequest *req = (const void *)req_;
	struct watch *w;

	if (!known_service(req->service))
		return mat_error_set(&ctx->err, MAT_NOT_FOUND, "unknown service \"%s\"",
		                     req->service);
	w = calloc(1, sizeof(*w));
	if (w == NULL)
		return mat_error_set(&ctx->err, MAT_INTERNAL, "out of memory");
	w->h = svc_server_health(ctx->srv);
	w->last = -1;
	svc_stream_start(ctx, &watch_ops, w);
	return MAT_OK;
}
