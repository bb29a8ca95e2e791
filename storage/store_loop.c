/* The storage loop: one thread running a libuv event loop over a few PostgreSQL connections of
 * its own, in libpq's non-blocking pipeline mode. Reads submitted from any thread
 * (store__read_async) are written back to back into a connection's pipeline, each followed by its
 * own Sync (so each is its own implicit transaction, with its own statement_timeout), and flushed
 * once per wake-up: many calls' reads cost one write and one wake-up. Results are routed to the
 * reads in the order they were sent; each read's callback runs on this thread.
 *
 * Why libuv: uv_poll_t watches each connection's socket (readable/writable), uv_async_t hands
 * reads over from the pollers, uv_timer_t checks deadlines and drives the reconnect backoff — the
 * three things this loop needs, from a small, well-kept Debian library (docs/architecture.md).
 *
 * A connection: EMPTY -> CONNECTING (PQconnectStartParams / PQconnectPoll on the socket) -> READY
 * (pipelining) -> BROKEN (closed; its reads fail or retry) -> CONNECTING after the backoff. While
 * no connection is ready and the last connect failed, reads fail fast with MAT_UNAVAILABLE, like
 * the blocking pool. Thread rules: everything below the submission queue belongs to the loop
 * thread. */
#include "store_internal.h"

#include <assert.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <uv.h>

#define BACKOFF_BASE_MS 100
#define BACKOFF_MAX_MS 5000
#define TICK_MS 50
/* A read past its deadline by this much whose connection still has not answered (the server's
 * statement_timeout should have ended it) means the connection is gone. */
#define ANSWER_GRACE_MS 1000

enum aconn_state { A_EMPTY, A_CONNECTING, A_READY, A_BROKEN };

struct aconn {
	struct store__conn cn; /* pg, prepared statements, lost: shared with store_exec.c's rules */
	struct store_loop *l;
	enum aconn_state state;
	uv_poll_t *poll; /* NULL when no socket is watched; freed by its close callback */
	int poll_fd, events;
	PostgresPollingStatusType cst;
	int64_t connect_deadline;
	uint64_t sent[STORE__MAX_STMTS / 64]; /* prepared or Prepare in flight */
	struct store__aread *head, *tail;     /* in flight, in the order sent */
	int in_flight;
	bool dirty; /* written since the last flush */
};

struct store_loop {
	struct store_pool *pool;
	/* own_loop and a thread of its own, or the caller's loop (store_pool_start_loop's `on`),
	 * run by the caller's thread. */
	uv_loop_t own_loop;
	uv_loop_t *uv;
	bool shared;
	uv_async_t wake;
	uv_timer_t tick;
	uv_prepare_t before_wait; /* runs hooks.idle */
	struct store_loop_hooks hooks;
	pthread_t thread;
	/* Submission queue: any thread. */
	pthread_mutex_t mu;
	pthread_cond_t cv; /* a shared loop's handles closed (stop waits for it) */
	struct store__aread *in_head, *in_tail;
	bool stopping;
	int open_handles; /* of wake, tick, before_wait, while closing (loop thread) */
	bool own_closed;  /* all three closed: a shared loop holds nothing of ours (mu) */
	/* Loop thread only. conns[0..n_fast) serve short reads, conns[n_fast..n) bulk ones (all
	 * of them when n_fast == n). */
	struct aconn *conns;
	int n, n_fast;
	struct store__aread *wait_head, *wait_tail; /* waiting for a ready connection */
	int failures;
	int64_t next_attempt_ms;
	char last_error[200];
	uint64_t rng;
};

static void push(struct store__aread **head, struct store__aread **tail, struct store__aread *r)
{
	r->next = NULL;
	if (*tail != NULL)
		(*tail)->next = r;
	else
		*head = r;
	*tail = r;
}

static struct store__aread *pop(struct store__aread **head, struct store__aread **tail)
{
	struct store__aread *r = *head;
	if (r != NULL) {
		*head = r->next;
		if (*head == NULL)
			*tail = NULL;
		r->next = NULL;
	}
	return r;
}

static void dispatch(struct store_loop *l, struct store__aread *r);

/* --- finishing a read ------------------------------------------------------------------------ */

static void clear_all(struct store__aread *r)
{
	store__cmds_clear(r->all, r->n_all);
}

/* The read's results are all in (or it failed): decide its authorization, hand results over. */
static void read_done(struct store_loop *l, struct store__aread *r, enum mat_code rc)
{
	if (rc == MAT_OK && r->authz) {
		/* A read has no side effects: refused, its results are simply dropped. */
		rc = store__authz_decide(r->c, &r->all[r->authz_at], r->err);
	}
	if (rc == MAT_OK) {
		for (size_t i = 0; i < r->n; i++) {
			r->cmds[i].res = r->all[r->first + i].res;
			r->all[r->first + i].res = NULL;
		}
		clear_all(r);
		r->complete(r, MAT_OK);
		return;
	}
	clear_all(r);
	/* A connection that died while idle (server restart) fails on first use; a read is safe
	 * to run again on a fresh one, once. */
	if (l != NULL && r->diag.lost && r->was_used && r->attempt == 0 && !l->stopping) {
		r->attempt++;
		mat_error_clear(r->err);
		dispatch(l, r);
		return;
	}
	r->complete(r, rc);
}

static enum mat_code fail_read(struct store__aread *r, enum mat_code code, const char *msg)
{
	if (r->err->code == MAT_OK)
		mat_error_set(r->err, code, "%s", msg);
	return r->err->code;
}

/* --- connections ------------------------------------------------------------------------------ */

static void poll_cb(uv_poll_t *h, int status, int events);

static void poll_closed(uv_handle_t *h)
{
	free(h);
}

static void unwatch(struct aconn *a)
{
	if (a->poll != NULL) {
		uv_poll_stop(a->poll);
		uv_close((uv_handle_t *)a->poll, poll_closed);
		a->poll = NULL;
	}
	a->poll_fd = -1;
	a->events = 0;
}

/* Watches the connection's socket for `events` (re-creating the watcher when libpq switched
 * sockets, as it may while connecting). False when there is no socket. */
static bool watch(struct aconn *a, int events)
{
	int fd = a->cn.pg != NULL ? PQsocket(a->cn.pg) : -1;

	if (fd < 0)
		return false;
	if (a->poll != NULL && a->poll_fd != fd)
		unwatch(a);
	if (a->poll == NULL) {
		a->poll = malloc(sizeof(*a->poll));
		if (a->poll == NULL || uv_poll_init(a->l->uv, a->poll, fd) != 0) {
			free(a->poll);
			a->poll = NULL;
			return false;
		}
		a->poll->data = a;
		a->poll_fd = fd;
		a->events = 0;
	}
	if (a->events != events) {
		a->events = events;
		uv_poll_start(a->poll, events, poll_cb);
	}
	return true;
}

static int64_t backoff_ms(struct store_loop *l)
{
	int64_t b = BACKOFF_BASE_MS;
	for (int i = 1; i < l->failures && b < BACKOFF_MAX_MS; i++)
		b *= 2;
	if (b > BACKOFF_MAX_MS)
		b = BACKOFF_MAX_MS;
	l->rng = l->rng * 6364136223846793005ULL + 1442695040888963407ULL;
	return b / 2 + (int64_t)((l->rng >> 33) % (uint64_t)(b / 2 + 1)); /* jitter */
}

/* The connection is gone: close it and fail (or retry) every read in flight on it. */
static void conn_broken(struct aconn *a, const char *why)
{
	struct store_loop *l = a->l;
	struct store__aread *r;
	bool was_connecting = a->state == A_CONNECTING;
	char msg[200];

	snprintf(msg, sizeof(msg), "database unavailable: %s", why);
	store__one_line(msg);
	unwatch(a);
	if (a->cn.pg != NULL)
		PQfinish(a->cn.pg);
	a->cn.pg = NULL;
	a->cn.lost = false;
	memset(a->cn.prepared, 0, sizeof(a->cn.prepared));
	memset(a->sent, 0, sizeof(a->sent));
	a->state = A_BROKEN;
	a->dirty = false;
	if (was_connecting) {
		l->failures++;
		l->next_attempt_ms = store_now_ms() + backoff_ms(l);
		snprintf(l->last_error, sizeof(l->last_error), "%s", msg);
	}
	while ((r = pop(&a->head, &a->tail)) != NULL) {
		a->in_flight--;
		r->diag.lost = true;
		read_done(l, r, fail_read(r, MAT_UNAVAILABLE, msg));
	}
	a->in_flight = 0;
	/* Reads that were waiting for this connection to open look again: another connection of
	 * their class may be ready or opening; if none is, they fail fast with its reason (the
	 * backoff keeps dispatch from opening one at once). */
	if (was_connecting) {
		struct store__aread *waiting = l->wait_head;
		l->wait_head = l->wait_tail = NULL;
		while ((r = waiting) != NULL) {
			waiting = r->next;
			dispatch(l, r);
		}
	}
}

static void ignore_notice(void *arg, const char *message)
{
	(void)arg;
	(void)message;
}

static void conn_ready(struct aconn *a)
{
	struct store_loop *l = a->l;
	struct store__aread *r, *waiting;

	PQsetNoticeProcessor(a->cn.pg, ignore_notice, NULL);
	if (PQsetnonblocking(a->cn.pg, 1) != 0 || !store__pq_enter_pipeline(&a->cn)) {
		conn_broken(a, store__pq_fault_hit() ? "injected fault" : PQerrorMessage(a->cn.pg));
		return;
	}
	a->state = A_READY;
	a->cn.used = false;
	l->failures = 0;
	l->next_attempt_ms = 0;
	watch(a, UV_READABLE);
	/* Hand the waiting reads out again: they pick the least busy ready connection. */
	waiting = l->wait_head;
	l->wait_head = l->wait_tail = NULL;
	while ((r = waiting) != NULL) {
		waiting = r->next;
		dispatch(l, r);
	}
}

static void connect_step(struct aconn *a)
{
	for (;;) {
		if (a->cst == PGRES_POLLING_FAILED || PQstatus(a->cn.pg) == CONNECTION_BAD) {
			conn_broken(a, store__pq_fault_hit() ? "injected fault"
			                                     : PQerrorMessage(a->cn.pg));
			return;
		}
		if (a->cst == PGRES_POLLING_OK) {
			conn_ready(a);
			return;
		}
		if (!watch(a, a->cst == PGRES_POLLING_READING ? UV_READABLE : UV_WRITABLE)) {
			conn_broken(a, "no socket");
			return;
		}
		return; /* poll_cb continues */
	}
}

static void conn_start(struct aconn *a)
{
	const char *const *kw, *const *vals;
	int timeout_ms;

	store__pool_params(a->l->pool, &kw, &vals, &timeout_ms);
	a->state = A_CONNECTING;
	a->connect_deadline = store_now_ms() + timeout_ms;
	a->cn.pg = store__pq_connect_start(kw, vals);
	if (a->cn.pg == NULL) {
		conn_broken(a, store__pq_fault_hit() ? "injected fault" : "out of memory");
		return;
	}
	a->cst = PGRES_POLLING_WRITING;
	connect_step(a);
}

/* --- sending ------------------------------------------------------------------------------------
 */

/* Writes r's commands and a Sync into a's pipeline. False when the connection failed. */
static bool send_read(struct aconn *a, struct store__aread *r)
{
	r->n_ops = 0;
	r->at = 0;
	r->want_null = false;
	r->first_rc = MAT_OK;
	memset(&r->diag, 0, sizeof(r->diag));
	r->diag.index = -1;
	r->was_used = a->cn.used;
	for (size_t i = 0; i < r->n_all; i++) {
		struct store__stmt *st = r->all[i].st;
		int slot = store__stmt_slot(st);
		char name[16];

		snprintf(name, sizeof(name), "s%d", slot);
		if (!store__bit_get(a->sent, slot)) {
			if (!store__pq_send_prepare(&a->cn, name, st->sql))
				return false;
			store__bit_set(a->sent, slot);
			r->ops[r->n_ops++] = (struct store__aop){NULL, slot};
		}
		if (!store__pq_send_prepared(&a->cn, name, st->nparams, r->all[i].params,
		                             st->binary))
			return false;
		r->ops[r->n_ops++] = (struct store__aop){&r->all[i], slot};
	}
	if (!store__pq_pipeline_sync(&a->cn))
		return false;
	push(&a->head, &a->tail, r);
	a->in_flight++;
	a->cn.used = true;
	a->dirty = true;
	return true;
}

static void flush(struct aconn *a)
{
	int f;

	if (a->state != A_READY || !a->dirty)
		return;
	f = store__pq_flush(&a->cn);
	if (f < 0) {
		conn_broken(a, store__pq_fault_hit() ? "injected fault" : PQerrorMessage(a->cn.pg));
		return;
	}
	a->dirty = f > 0;
	watch(a, f > 0 ? UV_READABLE | UV_WRITABLE : UV_READABLE);
}

/* Builds the read's pipeline: [BEGIN read only] [statement_timeout] [bindings] cmds [COMMIT]. */
static enum mat_code prepare_read(struct store__aread *r)
{
	const struct store_call *c = r->c;
	size_t k = 0;

	assert(r->n >= 1 && r->n <= 8);
	for (size_t i = 0; i < r->n; i++)
		r->cmds[i].res = NULL;
	if (c->cancelled != NULL && *c->cancelled != 0)
		return mat_error_set(r->err, MAT_CANCELLED, "cancelled");
	/* A call that carried a trace names it in application_name, ahead of its statements, so
	 * pg_stat_activity and the server's log tie them to the call (docs/operations.md). The
	 * connection is shared: a read without a trace leaves the last name in place. */
	if (c->trace_id != NULL && c->trace_id[0] != '\0') {
		snprintf(r->app, sizeof(r->app), "maturityd %.32s-%.16s", c->trace_id,
		         c->span_id != NULL ? c->span_id : "");
		r->aparams[0] = r->app;
		r->all[k++] = (struct store__cmd){.st = store__st_app_set(), .params = r->aparams};
	}
	if (r->n > 1)
		r->all[k++] = (struct store__cmd){.st = store__st_begin_ro()};
	if (c->deadline_ms != STORE_NO_DEADLINE) {
		if (!store__timeout_param(c, r->tbuf))
			return mat_error_set(r->err, MAT_TIMEOUT,
			                     "deadline exceeded before the query");
		r->tparams[0] = r->tbuf;
		r->all[k++] = (struct store__cmd){.st = store__st_timeout(), .params = r->tparams};
	}
	r->authz = store__authz_pending(c);
	if (r->authz) {
		r->authz_at = k;
		store__authz_cmd(c, &r->all[k++]);
	}
	r->first = k;
	for (size_t i = 0; i < r->n; i++)
		r->all[k++] = (struct store__cmd){.st = r->cmds[i].st, .params = r->cmds[i].params};
	if (r->n > 1)
		r->all[k++] = (struct store__cmd){.st = store__st_commit()};
	r->n_all = k;
	return MAT_OK;
}

static void dispatch(struct store_loop *l, struct store__aread *r)
{
	struct aconn *best = NULL, *idle = NULL;
	bool opening = false;
	int64_t now = store_now_ms();
	enum mat_code rc = prepare_read(r);

	if (rc != MAT_OK) {
		read_done(NULL, r, rc);
		return;
	}
	if (l->stopping) {
		read_done(NULL, r, fail_read(r, MAT_UNAVAILABLE, "the server is shutting down"));
		return;
	}
	/* A read's class: bulk reads on their own connections, when there are any. */
	int lo = r->bulk && l->n_fast < l->n ? l->n_fast : 0;
	int hi = r->bulk && l->n_fast < l->n ? l->n : l->n_fast;

	for (int i = lo; i < hi; i++) {
		struct aconn *a = &l->conns[i];
		if (a->state == A_READY && (best == NULL || a->in_flight < best->in_flight))
			best = a;
		else if (a->state == A_CONNECTING)
			opening = true;
		else if ((a->state == A_EMPTY || a->state == A_BROKEN) && idle == NULL)
			idle = a;
	}
	/* Grow lazily: another connection opens while the busiest ready one has work queued. */
	if (idle != NULL && !opening && (best == NULL || best->in_flight > 0) &&
	    (l->failures == 0 || now >= l->next_attempt_ms)) {
		conn_start(idle);
		opening = idle->state == A_CONNECTING;
		if (idle->state == A_READY && best == NULL)
			best = idle;
	}
	if (best != NULL) {
		if (!send_read(best, r)) {
			push(&best->head, &best->tail, r); /* fails with the connection below */
			best->in_flight++;
			conn_broken(best, store__pq_fault_hit() ? "injected fault"
			                                        : PQerrorMessage(best->cn.pg));
		}
		return;
	}
	if (opening) {
		push(&l->wait_head, &l->wait_tail, r);
		return;
	}
	read_done(NULL, r,
	          fail_read(r, MAT_UNAVAILABLE,
	                    l->last_error[0] ? l->last_error : "database unavailable"));
}

/* --- receiving -----------------------------------------------------------------------------------
 */

/* One result (or the NULL that ends a command's results) for the oldest read in flight. */
static bool feed(struct aconn *a, PGresult *res)
{
	struct store__aread *r = a->head;

	if (r->at == r->n_ops) { /* the Sync */
		bool ok = res != NULL && PQresultStatus(res) == PGRES_PIPELINE_SYNC;
		PQclear(res);
		if (!ok)
			return false;
		pop(&a->head, &a->tail);
		a->in_flight--;
		read_done(a->l, r, r->first_rc);
		return true;
	}
	if (r->want_null) {
		if (res != NULL) {
			PQclear(res);
			return false; /* out of step with the protocol */
		}
		r->want_null = false;
		r->at++;
		return true;
	}
	if (res == NULL)
		return false;
	r->want_null = true;
	switch (PQresultStatus(res)) {
	case PGRES_COMMAND_OK:
	case PGRES_TUPLES_OK:
		if (r->ops[r->at].cmd == NULL) {
			store__bit_set(a->cn.prepared, r->ops[r->at].slot);
			PQclear(res);
		} else {
			r->ops[r->at].cmd->res = res;
		}
		break;
	case PGRES_PIPELINE_ABORTED:
		PQclear(res); /* skipped after the first failure, already recorded */
		break;
	case PGRES_FATAL_ERROR:
		if (r->first_rc == MAT_OK)
			r->first_rc = store__result_error(&a->cn, res, &r->diag, r->err);
		PQclear(res);
		if (r->ops[r->at].cmd == NULL || a->cn.lost)
			return false; /* a failed Prepare leaves later reads without it */
		break;
	default:
		if (r->first_rc == MAT_OK)
			r->first_rc = mat_error_set(r->err, MAT_INTERNAL, "unexpected result %s",
			                            PQresStatus(PQresultStatus(res)));
		PQclear(res);
		break;
	}
	return true;
}

static void receive(struct aconn *a)
{
	if (!store__pq_consume(&a->cn)) {
		conn_broken(a, store__pq_fault_hit() ? "injected fault" : PQerrorMessage(a->cn.pg));
		return;
	}
	while (a->state == A_READY && a->head != NULL && !PQisBusy(a->cn.pg)) {
		if (!feed(a, store__pq_get_result(&a->cn))) {
			conn_broken(a, a->cn.lost ? "connection lost" : "protocol out of step");
			return;
		}
	}
	if (a->state == A_READY && a->head == NULL && PQstatus(a->cn.pg) != CONNECTION_OK)
		conn_broken(a, PQerrorMessage(a->cn.pg));
}

static void poll_cb(uv_poll_t *h, int status, int events)
{
	struct aconn *a = h->data;

	if (a == NULL || a->poll != h)
		return;
	if (a->state == A_CONNECTING) {
		a->cst = store__pq_connect_poll(a->cn.pg);
		connect_step(a);
		return;
	}
	if (a->state != A_READY)
		return;
	if (status < 0) {
		conn_broken(a, uv_strerror(status));
		return;
	}
	if (events & UV_WRITABLE)
		flush(a);
	if (a->state == A_READY && (events & UV_READABLE))
		receive(a);
	if (a->state == A_READY && a->dirty)
		flush(a);
}

/* --- the loop ------------------------------------------------------------------------------------
 */

static void fail_everything(struct store_loop *l, const char *why)
{
	struct store__aread *r;

	for (int i = 0; i < l->n; i++) {
		struct aconn *a = &l->conns[i];
		if (a->state == A_READY || a->state == A_CONNECTING)
			conn_broken(a, why);
	}
	while ((r = pop(&l->wait_head, &l->wait_tail)) != NULL)
		read_done(NULL, r, fail_read(r, MAT_UNAVAILABLE, why));
}

/* The loop's own handles' close callback: on a shared loop, store_pool_stop_loop waits for the
 * last one (the handles live in `l`, which it then frees). */
static void own_closed(uv_handle_t *h)
{
	struct store_loop *l = h->data;

	if (--l->open_handles > 0)
		return;
	pthread_mutex_lock(&l->mu);
	l->own_closed = true;
	pthread_cond_broadcast(&l->cv);
	pthread_mutex_unlock(&l->mu);
}

static void close_own(struct store_loop *l)
{
	l->open_handles = 3;
	uv_close((uv_handle_t *)&l->tick, own_closed);
	uv_close((uv_handle_t *)&l->wake, own_closed);
	uv_close((uv_handle_t *)&l->before_wait, own_closed);
}

static void wake_cb(uv_async_t *h)
{
	struct store_loop *l = h->data;
	struct store__aread *list, *r;
	bool stopping;

	pthread_mutex_lock(&l->mu);
	list = l->in_head;
	l->in_head = l->in_tail = NULL;
	stopping = l->stopping;
	pthread_mutex_unlock(&l->mu);
	while ((r = list) != NULL) {
		list = r->next;
		r->next = NULL;
		dispatch(l, r);
	}
	/* One flush per connection per wake-up: every read queued meanwhile goes in one write. */
	for (int i = 0; i < l->n; i++)
		flush(&l->conns[i]);
	if (stopping) {
		fail_everything(l, "the server is shutting down");
		uv_timer_stop(&l->tick);
		uv_prepare_stop(&l->before_wait);
		close_own(l);
		if (l->hooks.idle != NULL)
			l->hooks.idle(); /* the prepare handle will not run again */
	}
}

/* Deadlines the database did not honour, connects that take too long, reads waiting too long. */
static void tick_cb(uv_timer_t *h)
{
	struct store_loop *l = h->data;
	int64_t now = store_now_ms();
	struct store__aread *keep_head = NULL, *keep_tail = NULL, *r;

	for (int i = 0; i < l->n; i++) {
		struct aconn *a = &l->conns[i];
		if (a->state == A_CONNECTING && now >= a->connect_deadline) {
			conn_broken(a, "no answer within the connect timeout");
		} else if (a->state == A_READY && a->head != NULL &&
		           a->head->c->deadline_ms != STORE_NO_DEADLINE &&
		           now >= a->head->c->deadline_ms + ANSWER_GRACE_MS) {
			conn_broken(a, "deadline exceeded; the database did not answer");
		}
	}
	while ((r = pop(&l->wait_head, &l->wait_tail)) != NULL) {
		if (r->c->deadline_ms != STORE_NO_DEADLINE && now >= r->c->deadline_ms)
			read_done(NULL, r,
			          fail_read(r, MAT_TIMEOUT,
			                    "deadline exceeded waiting for a connection"));
		else
			push(&keep_head, &keep_tail, r);
	}
	l->wait_head = keep_head;
	l->wait_tail = keep_tail;
}

static void before_wait_cb(uv_prepare_t *h)
{
	struct store_loop *l = h->data;

	l->hooks.idle();
}

static void *loop_main(void *arg)
{
	struct store_loop *l = arg;

	/* The first connection opens now, not on the first read: that read would pay for it. */
	conn_start(&l->conns[0]);
	uv_run(l->uv, UV_RUN_DEFAULT);
	return NULL;
}

enum mat_code store_pool_start_loop(struct store_pool *pool, int n_conns, int n_bulk,
                                    const struct store_loop_hooks *hooks, struct uv_loop_s *on,
                                    struct mat_error *err)
{
	struct store_loop *l = calloc(1, sizeof(*l));

	if (l == NULL)
		return store__oom(err);
	l->pool = pool;
	l->n_fast = n_conns > 0 ? n_conns : 1;
	l->n = l->n_fast + (n_bulk > 0 ? n_bulk : 0);
	l->conns = calloc((size_t)l->n, sizeof(*l->conns));
	l->rng = (uint64_t)store_now_ms() | 1;
	if (l->conns == NULL) {
		free(l);
		return store__oom(err);
	}
	for (int i = 0; i < l->n; i++) {
		l->conns[i].l = l;
		l->conns[i].poll_fd = -1;
	}
	l->shared = on != NULL;
	l->uv = l->shared ? on : &l->own_loop;
	if (!l->shared && uv_loop_init(l->uv) != 0) {
		free(l->conns);
		free(l);
		return mat_error_set(err, MAT_INTERNAL, "cannot start the storage loop");
	}
	pthread_mutex_init(&l->mu, NULL);
	pthread_cond_init(&l->cv, NULL);
	uv_async_init(l->uv, &l->wake, wake_cb);
	l->wake.data = l;
	uv_timer_init(l->uv, &l->tick);
	l->tick.data = l;
	uv_timer_start(&l->tick, tick_cb, TICK_MS, TICK_MS);
	if (hooks != NULL)
		l->hooks = *hooks;
	uv_prepare_init(l->uv, &l->before_wait);
	l->before_wait.data = l;
	if (l->hooks.idle != NULL)
		uv_prepare_start(&l->before_wait, before_wait_cb);
	if (l->shared) {
		/* On the loop's thread (or before it runs): the first connection opens now. */
		conn_start(&l->conns[0]);
	} else if (pthread_create(&l->thread, NULL, loop_main, l) != 0) {
		close_own(l);
		uv_run(l->uv, UV_RUN_DEFAULT);
		uv_loop_close(l->uv);
		pthread_cond_destroy(&l->cv);
		pthread_mutex_destroy(&l->mu);
		free(l->conns);
		free(l);
		return mat_error_set(err, MAT_INTERNAL, "cannot start the storage loop");
	}
	store__pool_set_loop(pool, l, store_pool_stop_loop);
	return MAT_OK;
}

void store_pool_stop_loop(struct store_pool *pool)
{
	struct store_loop *l = store__pool_loop(pool);

	if (l == NULL)
		return;
	pthread_mutex_lock(&l->mu);
	l->stopping = true;
	pthread_mutex_unlock(&l->mu);
	uv_async_send(&l->wake);
	if (l->shared) {
		/* The loop goes on for its owner's other handles: wait until it has closed ours
		 * (wake_cb fails what is left and closes them; their close callbacks say when). */
		pthread_mutex_lock(&l->mu);
		while (!l->own_closed)
			pthread_cond_wait(&l->cv, &l->mu);
		pthread_mutex_unlock(&l->mu);
	} else {
		pthread_join(l->thread, NULL);
	}
	/* Submissions after stop find no loop. */
	store__pool_set_loop(pool, NULL, NULL);
	{
		struct store__aread *r;
		while ((r = pop(&l->in_head, &l->in_tail)) != NULL)
			read_done(NULL, r,
			          fail_read(r, MAT_UNAVAILABLE, "the server is shutting down"));
	}
	if (!l->shared)
		uv_loop_close(l->uv);
	pthread_cond_destroy(&l->cv);
	pthread_mutex_destroy(&l->mu);
	free(l->conns);
	free(l);
}

/* Reads a thread started while it defers them (store_reads_defer), handed to the loop together
 * by store_reads_flush: one lock, one wake-up and, on the loop, one write for all of them. */
static _Thread_local bool tl_defer;
static _Thread_local struct store_loop *tl_loop;
static _Thread_local struct store__aread *tl_head, *tl_tail;
static _Thread_local int tl_n;
/* A thread that never runs out of work would hold its reads for as long as that lasts: past
 * this many they go at once (a pipeline of 32 reads is already one write and one wake-up). */
#define DEFER_MAX 32

void store_reads_defer(bool on)
{
	if (!on)
		store_reads_flush();
	tl_defer = on;
}

bool store_reads_pending(void)
{
	return tl_head != NULL;
}

void store_reads_flush(void)
{
	struct store_loop *l = tl_loop;

	if (tl_head == NULL)
		return;
	pthread_mutex_lock(&l->mu);
	if (l->stopping) {
		struct store__aread *r;
		pthread_mutex_unlock(&l->mu);
		tl_n = 0;
		while ((r = pop(&tl_head, &tl_tail)) != NULL)
			r->complete(r,
			            fail_read(r, MAT_UNAVAILABLE, "the server is shutting down"));
		return;
	}
	if (l->in_tail != NULL)
		l->in_tail->next = tl_head;
	else
		l->in_head = tl_head;
	l->in_tail = tl_tail;
	tl_head = tl_tail = NULL;
	tl_n = 0;
	uv_async_send(&l->wake);
	pthread_mutex_unlock(&l->mu);
}

void store__read_async(struct store_pool *pool, struct store__aread *r)
{
	struct store_loop *l = store__pool_loop(pool);

	mat_error_clear(r->err);
	r->attempt = 0;
	r->next = NULL;
	if (l != NULL && tl_defer && (tl_loop == l || tl_head == NULL)) {
		tl_loop = l;
		push(&tl_head, &tl_tail, r);
		if (++tl_n >= DEFER_MAX)
			store_reads_flush();
		return;
	}
	if (l == NULL) {
		/* No loop (tools, tests, before start): the same read on this thread. */
		r->complete(r, store__read(r->c, r->cmds, r->n, r->err));
		return;
	}
	pthread_mutex_lock(&l->mu);
	if (l->stopping) {
		pthread_mutex_unlock(&l->mu);
		r->complete(r, fail_read(r, MAT_UNAVAILABLE, "the server is shutting down"));
		return;
	}
	push(&l->in_head, &l->in_tail, r);
	/* Under the lock: the loop closes the handle only after it saw `stopping` under it. */
	uv_async_send(&l->wake);
	pthread_mutex_unlock(&l->mu);
}

/* --- the usual shape of an asynchronous read -----------------------------------------------------
 */

static void aget_complete(struct store__aread *r, enum mat_code rc)
{
	struct store__aget *g = (struct store__aget *)r;

	if (rc == MAT_OK) {
		rc = g->decode(g, r->err);
		store__cmds_clear(g->cmds, r->n);
	}
	g->done(g->arg, rc);
	if (g->free_out != NULL)
		g->free_out(g->out);
	free(g);
}

struct store__aget *store__aget_new(const struct store_call *c, struct mat_error *err,
                                    store_done_fn done, void *arg)
{
	struct store__aget *g = calloc(1, sizeof(*g));

	if (g == NULL) {
		done(arg, store__oom(err));
		return NULL;
	}
	g->r.c = c;
	g->r.err = err;
	g->r.cmds = g->cmds;
	g->r.complete = aget_complete;
	g->done = done;
	g->arg = arg;
	return g;
}

void store__aget_start(struct store__aget *g, size_t n)
{
	g->r.n = n;
	store__read_async(g->r.c->pool, &g->r);
}
