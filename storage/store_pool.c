/* The connection pool: a fixed number of slots, each a connection moving through
 * CONNECTING -> IDLE <-> IN_USE -> BROKEN -> CONNECTING.
 * One mutex guards the states; connecting and querying happen outside it. Connections open
 * lazily, on the acquire that finds no idle one. After a failed connect the pool backs off
 * (exponential, with jitter) and callers fail fast with MAT_UNAVAILABLE instead of each waiting
 * for a connect timeout; the first acquire after the backoff probes the database alone.
 * The bottom layer of storage with a connection (docs/architecture.md): it knows nothing of
 * statements (store_exec.c), the storage loop (store_loop.c), health pings (store_health.c) or
 * resources, and calls only store_error.c and the libpq seam (store_pq.c). */
#include "store_error.h"
#include "store_internal.h"

#include <errno.h>
#include <poll.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define CONNECT_TIMEOUT_DEFAULT_MS 2000
#define BACKOFF_BASE_MS 100
#define BACKOFF_MAX_MS 5000
#define WAIT_SLICE_MS 100 /* how often a waiter looks at its cancel flag */

struct store_pool {
	pthread_mutex_t mu;
	pthread_cond_t cv; /* a connection went IDLE or BROKEN, or a connect attempt ended */
	int size;
	struct store__conn *conns;
	char **keywords; /* NULL-terminated, for PQconnectStartParams */
	char **values;
	int connect_timeout_ms;
	/* Reconnect backoff, guarded by mu: after `failures` failed connects in a row, no new
	 * attempt before next_attempt_ms, and only one at a time (`probing`). */
	int failures;
	int64_t next_attempt_ms;
	bool probing;
	char last_error[sizeof(((struct mat_error *)0)->message)];
	/* store_pool_refuse_writes: why writes are refused; guarded by mu, read first without it.
	 */
	atomic_bool refuse_writes;
	char refuse_why[200];
	uint64_t rng; /* jitter */
	/* The storage loop that pipelines reads on connections of its own (store_loop.c, a layer
	 * above), or NULL: kept here for the pool's users, and stopped through `loop_stop` before
	 * the pool is freed, so the pool never calls up into it. */
	struct store_loop *loop;
	void (*loop_stop)(struct store_pool *pool);
};

void store__pool_params(const struct store_pool *p, const char *const **keywords,
                        const char *const **values, int *connect_timeout_ms)
{
	*keywords = (const char *const *)p->keywords;
	*values = (const char *const *)p->values;
	*connect_timeout_ms = p->connect_timeout_ms;
}

struct store_loop *store__pool_loop(const struct store_pool *p)
{
	return p->loop;
}

void store__pool_set_loop(struct store_pool *p, struct store_loop *l,
                          void (*stop)(struct store_pool *pool))
{
	p->loop = l;
	p->loop_stop = l != NULL ? stop : NULL;
}

int64_t store_now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static void free_params(char **p)
{
	if (p == NULL)
		return;
	for (size_t i = 0; p[i] != NULL; i++)
		free(p[i]);
	free(p);
}

/* Copies the options set in `conninfo` (a libpq string or URI) into NULL-terminated keyword and
 * value arrays, adding connect_timeout and fallback_application_name when absent. */
static enum mat_code parse_conninfo(struct store_pool *p, const char *conninfo,
                                    struct mat_error *err)
{
	char *msg = NULL;
	PQconninfoOption *opts = PQconninfoParse(conninfo, &msg);
	size_t n = 0, k = 0;
	bool has_timeout = false, has_app = false;
	enum mat_code rc = MAT_INTERNAL;

	if (opts == NULL) {
		if (msg == NULL)
			return store__oom(err);
		store__one_line(msg);
		mat_error_set(err, MAT_INVALID, "database url: %s", msg);
		PQfreemem(msg);
		return MAT_INVALID;
	}
	for (PQconninfoOption *o = opts; o->keyword != NULL; o++)
		n++;
	p->keywords = calloc(n + 3, sizeof(char *));
	p->values = calloc(n + 3, sizeof(char *));
	if (p->keywords == NULL || p->values == NULL)
		goto oom;
	p->connect_timeout_ms = CONNECT_TIMEOUT_DEFAULT_MS;
	for (PQconninfoOption *o = opts; o->keyword != NULL; o++) {
		if (o->val == NULL)
			continue;
		if (strcmp(o->keyword, "connect_timeout") == 0) {
			int s = atoi(o->val);
			has_timeout = true;
			/* libpq's 0 means "forever"; a pool that must fail fast keeps its default.
			 */
			if (s > 0)
				p->connect_timeout_ms = s * 1000;
		}
		if (strcmp(o->keyword, "fallback_application_name") == 0)
			has_app = true;
		p->keywords[k] = strdup(o->keyword);
		p->values[k] = strdup(o->val);
		k++;
		if (p->keywords[k - 1] == NULL || p->values[k - 1] == NULL)
			goto oom;
	}
	if (!has_timeout) {
		p->keywords[k] = strdup("connect_timeout");
		p->values[k] = strdup("2");
		k++;
		if (p->keywords[k - 1] == NULL || p->values[k - 1] == NULL)
			goto oom;
	}
	if (!has_app) {
		p->keywords[k] = strdup("fallback_application_name");
		p->values[k] = strdup("maturityd");
		k++;
		if (p->keywords[k - 1] == NULL || p->values[k - 1] == NULL)
			goto oom;
	}
	rc = MAT_OK;
	goto out;
oom:
	rc = store__oom(err);
out:
	PQconninfoFree(opts);
	return rc;
}

enum mat_code store_pool_new(const struct store_options *opt, struct store_pool **out,
                             struct mat_error *err)
{
	static pthread_once_t fault_once = PTHREAD_ONCE_INIT;
	struct store_pool *p = NULL;
	pthread_condattr_t ca;
	enum mat_code rc = MAT_INTERNAL;

	*out = NULL;
	if (opt == NULL || opt->conninfo == NULL || opt->conninfo[0] == '\0')
		return mat_error_set(err, MAT_INVALID, "database url is empty");
	if (opt->size < 1 || opt->size > 10000)
		return mat_error_set(err, MAT_INVALID, "pool size %d out of range 1..10000",
		                     opt->size);
	pthread_once(&fault_once, store__fault_from_env);

	p = calloc(1, sizeof(*p));
	if (p == NULL)
		return store__oom(err);
	p->size = opt->size;
	p->conns = calloc((size_t)opt->size, sizeof(*p->conns));
	if (p->conns == NULL) {
		free(p);
		return store__oom(err);
	}
	rc = parse_conninfo(p, opt->conninfo, err);
	if (rc != MAT_OK) {
		free_params(p->keywords);
		free_params(p->values);
		free(p->conns);
		free(p);
		return rc;
	}
	for (int i = 0; i < p->size; i++) {
		p->conns[i].pool = p;
		p->conns[i].state = STORE__EMPTY;
	}
	pthread_mutex_init(&p->mu, NULL);
	pthread_condattr_init(&ca);
	pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
	pthread_cond_init(&p->cv, &ca);
	pthread_condattr_destroy(&ca);
	p->rng = (uint64_t)store_now_ms() * 0x9e3779b97f4a7c15ULL ^ (uint64_t)(uintptr_t)p;
	if (p->rng == 0)
		p->rng = 1;
	*out = p;
	return MAT_OK;
}

static void conn_close(struct store__conn *cn)
{
	if (cn->cancel != NULL)
		PQfreeCancel(cn->cancel);
	if (cn->pg != NULL)
		PQfinish(cn->pg);
	cn->cancel = NULL;
	cn->pg = NULL;
	memset(cn->prepared, 0, sizeof(cn->prepared));
	cn->lost = false;
	cn->used = false;
	cn->cancel_code = MAT_OK;
	cn->app_name[0] = '\0';
}

void store_pool_free(struct store_pool *pool)
{
	if (pool == NULL)
		return;
	if (pool->loop_stop != NULL)
		pool->loop_stop(pool);
	for (int i = 0; i < pool->size; i++)
		conn_close(&pool->conns[i]);
	free(pool->conns);
	free_params(pool->keywords);
	free_params(pool->values);
	pthread_cond_destroy(&pool->cv);
	pthread_mutex_destroy(&pool->mu);
	free(pool);
}

static uint64_t next_random(struct store_pool *p)
{
	/* xorshift64: jitter only, no need for quality. Called under mu. */
	p->rng ^= p->rng << 13;
	p->rng ^= p->rng >> 7;
	p->rng ^= p->rng << 17;
	return p->rng;
}

/* The delay before the next connect attempt after `failures` failures: exponential from
 * BACKOFF_BASE_MS, capped, with "equal jitter" so replicas do not reconnect in lockstep. */
static int64_t backoff_ms(struct store_pool *p)
{
	int shift = p->failures - 1;
	int64_t d;

	if (shift > 10)
		shift = 10;
	d = (int64_t)BACKOFF_BASE_MS << shift;
	if (d > BACKOFF_MAX_MS)
		d = BACKOFF_MAX_MS;
	return d / 2 + (int64_t)(next_random(p) % (uint64_t)(d / 2 + 1));
}

static bool is_cancelled(volatile const int *cancelled)
{
	return cancelled != NULL && *cancelled != 0;
}

static void ignore_notice(void *arg, const char *message)
{
	(void)arg;
	(void)message;
}

/* Opens cn->pg without blocking past min(deadline, now + connect timeout). MAT_UNAVAILABLE when
 * the database refused or did not answer in the connect timeout (this counts as a failure for
 * the backoff), MAT_TIMEOUT when the call's own deadline cut it short, MAT_CANCELLED. */
static enum mat_code conn_open(struct store_pool *p, struct store__conn *cn, int64_t deadline,
                               volatile const int *cancelled, struct mat_error *err)
{
	int64_t limit = store_now_ms() + p->connect_timeout_ms;
	bool call_limited = false;
	PostgresPollingStatusType st = PGRES_POLLING_WRITING;
	enum mat_code rc = MAT_INTERNAL;

	if (deadline < limit) {
		limit = deadline;
		call_limited = true;
	}
	cn->pg = store__pq_connect_start((const char *const *)p->keywords,
	                                 (const char *const *)p->values);
	if (cn->pg == NULL) {
		rc = store__pq_fault_hit() ? mat_error_set(err, MAT_UNAVAILABLE,
		                                           "database unavailable: injected fault")
		                           : store__oom(err);
		goto out;
	}
	for (;;) {
		int64_t now = store_now_ms();
		struct pollfd pfd;

		if (PQstatus(cn->pg) == CONNECTION_BAD || st == PGRES_POLLING_FAILED) {
			char msg[sizeof(p->last_error)];
			snprintf(msg, sizeof(msg), "%s",
			         store__pq_fault_hit() ? "injected fault" : PQerrorMessage(cn->pg));
			store__one_line(msg);
			rc = mat_error_set(err, MAT_UNAVAILABLE, "database unavailable: %s", msg);
			goto out;
		}
		if (st == PGRES_POLLING_OK)
			break;
		if (is_cancelled(cancelled)) {
			rc = mat_error_set(err, MAT_CANCELLED, "cancelled while connecting");
			goto out;
		}
		if (now >= limit) {
			rc = call_limited ? mat_error_set(err, MAT_TIMEOUT,
			                                  "deadline exceeded while connecting")
			                  : mat_error_set(err, MAT_UNAVAILABLE,
			                                  "database unavailable: no answer within "
			                                  "%d ms",
			                                  p->connect_timeout_ms);
			goto out;
		}
		pfd.fd = PQsocket(cn->pg);
		pfd.events = st == PGRES_POLLING_READING ? POLLIN : POLLOUT;
		pfd.revents = 0;
		if (pfd.fd >= 0) {
			int64_t wait = limit - now;
			if (wait > WAIT_SLICE_MS)
				wait = WAIT_SLICE_MS;
			int n = poll(&pfd, 1, (int)wait);
			if (n == 0)
				continue; /* no progress yet: look at the clock and the cancel flag
				           */
			if (n < 0 && errno != EINTR) {
				rc = mat_error_set(err, MAT_INTERNAL, "poll: %s", strerror(errno));
				goto out;
			}
		}
		st = store__pq_connect_poll(cn->pg);
	}
	/* NOTICEs ("relation already exists, skipping") would go to stderr: the service logs
	 * what matters from results, so drop them. */
	PQsetNoticeProcessor(cn->pg, ignore_notice, NULL);
	/* Non-blocking: store__run waits for the socket itself, bounded by the deadline. */
	if (PQsetnonblocking(cn->pg, 1) != 0) {
		rc = mat_error_set(err, MAT_UNAVAILABLE, "database unavailable: %s",
		                   PQerrorMessage(cn->pg));
		goto out;
	}
	cn->cancel = PQgetCancel(cn->pg);
	if (cn->cancel == NULL) {
		rc = store__oom(err);
		goto out;
	}
	rc = MAT_OK;
out:
	if (rc != MAT_OK)
		conn_close(cn);
	return rc;
}

static struct store__conn *find_state(struct store_pool *p, enum store__conn_state a,
                                      enum store__conn_state b)
{
	for (int i = 0; i < p->size; i++) {
		if (p->conns[i].state == a || p->conns[i].state == b)
			return &p->conns[i];
	}
	return NULL;
}

static struct timespec abs_time(int64_t ms_monotonic)
{
	struct timespec ts;

	ts.tv_sec = (time_t)(ms_monotonic / 1000);
	ts.tv_nsec = (long)(ms_monotonic % 1000) * 1000000L;
	return ts;
}

enum mat_code store__acquire(struct store_pool *p, int64_t deadline, volatile const int *cancelled,
                             struct store__conn **out, struct mat_error *err)
{
	enum mat_code rc = MAT_INTERNAL;

	*out = NULL;
	pthread_mutex_lock(&p->mu);
	for (;;) {
		int64_t now = store_now_ms();
		struct store__conn *cn;

		if (is_cancelled(cancelled)) {
			rc = mat_error_set(err, MAT_CANCELLED, "cancelled");
			break;
		}
		cn = find_state(p, STORE__IDLE, STORE__IDLE);
		if (cn != NULL) {
			cn->state = STORE__IN_USE;
			*out = cn;
			rc = MAT_OK;
			break;
		}
		if (now >= deadline) {
			rc = mat_error_set(err, MAT_TIMEOUT,
			                   "deadline exceeded waiting for a database connection");
			break;
		}
		cn = find_state(p, STORE__EMPTY, STORE__BROKEN);
		if (cn != NULL) {
			bool probe = p->failures > 0;

			/* The database was unreachable a moment ago: fail fast rather than queue
			 * every call behind a connect timeout. One caller probes when the backoff
			 * has passed. */
			if (probe && (p->probing || now < p->next_attempt_ms)) {
				rc = mat_error_set(err, MAT_UNAVAILABLE, "%s", p->last_error);
				break;
			}
			cn->state = STORE__CONNECTING;
			if (probe)
				p->probing = true;
			pthread_mutex_unlock(&p->mu);
			rc = conn_open(p, cn, deadline, cancelled, err);
			pthread_mutex_lock(&p->mu);
			if (probe)
				p->probing = false;
			if (rc == MAT_OK) {
				p->failures = 0;
				cn->state = STORE__IN_USE;
				*out = cn;
			} else {
				cn->state = STORE__BROKEN;
				if (rc == MAT_UNAVAILABLE) {
					p->failures++;
					p->next_attempt_ms = store_now_ms() + backoff_ms(p);
					snprintf(p->last_error, sizeof(p->last_error), "%s",
					         err != NULL ? err->message : "connect failed");
				}
				/* Waiters re-evaluate: they now fail fast too. */
				pthread_cond_broadcast(&p->cv);
			}
			break;
		}
		/* Every slot is busy (IN_USE or CONNECTING): wait for one, in slices so the
		 * cancel flag is seen. */
		int64_t until = deadline;
		if (until - now > WAIT_SLICE_MS)
			until = now + WAIT_SLICE_MS;
		struct timespec ts = abs_time(until);
		pthread_cond_timedwait(&p->cv, &p->mu, &ts);
	}
	pthread_mutex_unlock(&p->mu);
	return rc;
}

void store__release(struct store__conn *cn)
{
	struct store_pool *p;
	PGconn *close_pg[64];
	PGcancel *close_cancel[64];
	size_t n_close = 0;
	bool healthy;

	if (cn == NULL)
		return;
	p = cn->pool;
	/* A connection is reused only if nothing is pending on it: not lost, not in a
	 * transaction, and no cancel in flight (a late cancel would hit the next call's
	 * statement, so a cancelled connection is closed rather than drained). */
	healthy = !cn->lost && cn->cancel_code == MAT_OK && PQstatus(cn->pg) == CONNECTION_OK &&
	          PQtransactionStatus(cn->pg) == PQTRANS_IDLE;
	pthread_mutex_lock(&p->mu);
	if (healthy) {
		cn->used = true;
		cn->state = STORE__IDLE;
	} else {
		bool server_gone = cn->lost || PQstatus(cn->pg) != CONNECTION_OK;
		close_pg[n_close] = cn->pg;
		close_cancel[n_close] = cn->cancel;
		n_close++;
		cn->pg = NULL;
		cn->cancel = NULL;
		conn_close(cn);
		cn->state = STORE__BROKEN;
		/* A restarted server has killed every connection: do not hand the others out
		 * just to fail. They reconnect lazily. */
		for (int i = 0; server_gone && i < p->size && n_close < 64; i++) {
			struct store__conn *o = &p->conns[i];
			if (o->state != STORE__IDLE)
				continue;
			close_pg[n_close] = o->pg;
			close_cancel[n_close] = o->cancel;
			n_close++;
			o->pg = NULL;
			o->cancel = NULL;
			conn_close(o);
			o->state = STORE__BROKEN;
		}
	}
	pthread_cond_broadcast(&p->cv);
	pthread_mutex_unlock(&p->mu);
	/* PQfinish may write a Terminate message: not under the lock. */
	for (size_t i = 0; i < n_close; i++) {
		if (close_cancel[i] != NULL)
			PQfreeCancel(close_cancel[i]);
		if (close_pg[i] != NULL)
			PQfinish(close_pg[i]);
	}
}

PGconn *store__conn_pg(struct store__conn *cn)
{
	return cn->pg;
}

void store_pool_get_stats(struct store_pool *pool, struct store_pool_stats *out)
{
	memset(out, 0, sizeof(*out));
	if (pool == NULL)
		return;
	pthread_mutex_lock(&pool->mu);
	out->size = pool->size;
	for (int i = 0; i < pool->size; i++) {
		switch (pool->conns[i].state) {
		case STORE__EMPTY:
			break;
		case STORE__CONNECTING:
			out->connecting++;
			break;
		case STORE__IDLE:
			out->idle++;
			break;
		case STORE__IN_USE:
			out->in_use++;
			break;
		case STORE__BROKEN:
			out->broken++;
			break;
		}
	}
	pthread_mutex_unlock(&pool->mu);
}

void store_pool_refuse_writes(struct store_pool *pool, const char *why)
{
	pthread_mutex_lock(&pool->mu);
	snprintf(pool->refuse_why, sizeof(pool->refuse_why), "%s", why != NULL ? why : "");
	atomic_store(&pool->refuse_writes, why != NULL);
	pthread_mutex_unlock(&pool->mu);
}

enum mat_code store__may_write(struct store_pool *pool, struct mat_error *err)
{
	enum mat_code rc = MAT_OK;

	if (!atomic_load_explicit(&pool->refuse_writes, memory_order_relaxed))
		return MAT_OK;
	pthread_mutex_lock(&pool->mu);
	if (atomic_load(&pool->refuse_writes))
		rc = mat_error_set(err, MAT_PRECONDITION, "%s", pool->refuse_why);
	pthread_mutex_unlock(&pool->mu);
	return rc;
}
