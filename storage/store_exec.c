/* How a statement reaches PostgreSQL from a calling thread: prepared once per connection (lazily,
 * in the same round trip as its first execution), sent as a libpq pipeline with one Sync, and
 * waited for on a non-blocking socket so the call's deadline and cancel flag are honoured even if
 * the server stops answering. On top: one-round-trip reads and READ COMMITTED transactions that
 * retry serialization failures and deadlocks within the deadline. The exec layer
 * (docs/architecture.md): it uses the pool (store_pool.c), the statements (store_stmt.c) and the
 * call's binding read (store_authz.c), never a resource file. */
#include "store_error.h"
#include "store_internal.h"

#include <assert.h>
#include <errno.h>
#include <inttypes.h>
#include <poll.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define WAIT_SLICE_MS 100    /* how often a waiting call looks at its cancel flag */
#define CANCEL_GRACE_MS 1000 /* after cancelling, how long the server gets to answer */
#define TX_MAX_ATTEMPTS 5

STORE__STMT(st_begin, 0, "BEGIN ISOLATION LEVEL READ COMMITTED");
STORE__STMT(st_rollback, 0, "ROLLBACK");
static enum mat_code lost(struct store__conn *cn, struct store__diag *diag, struct mat_error *err)
{
	char msg[200];

	cn->lost = true;
	if (diag != NULL)
		diag->lost = true;
	store__line_copy(msg, sizeof(msg),
	                 store__pq_fault_hit() ? "injected fault" : PQerrorMessage(cn->pg));
	if (msg[0] == '\0')
		snprintf(msg, sizeof(msg), "connection lost");
	return mat_error_set(err, MAT_UNAVAILABLE, "database unavailable: %s", msg);
}

/* Sends a cancel request for whatever runs on cn. Blocking (PQcancel opens a short connection),
 * which is acceptable on the slow path. The connection is closed on release afterwards. */
static void send_cancel(struct store__conn *cn, enum mat_code why)
{
	char buf[256];

	if (cn->cancel_code != MAT_OK)
		return;
	cn->cancel_code = why;
	cn->cancel_ms = store_now_ms();
	if (cn->cancel != NULL)
		(void)PQcancel(cn->cancel, buf, sizeof(buf)); /* failure: the grace timer decides */
}

/* Waits until the socket is readable (or writable too, when `want_write`), honouring the call's
 * deadline and cancel flag: at the deadline (or on cancel) the statement is cancelled; if the
 * server still has not answered CANCEL_GRACE_MS later, the connection is given up. */
static enum mat_code conn_wait(struct store__conn *cn, const struct store_call *c, bool want_write,
                               struct store__diag *diag, struct mat_error *err)
{
	for (;;) {
		int64_t now = store_now_ms();
		int64_t wait = WAIT_SLICE_MS;
		struct pollfd pfd;
		int n;

		if (c->cancelled != NULL && *c->cancelled != 0)
			send_cancel(cn, MAT_CANCELLED);
		if (c->deadline_ms != STORE_NO_DEADLINE && now >= c->deadline_ms)
			send_cancel(cn, MAT_TIMEOUT);
		if (cn->cancel_code != MAT_OK) {
			if (now >= cn->cancel_ms + CANCEL_GRACE_MS) {
				cn->lost = true;
				if (diag != NULL)
					diag->lost = true;
				return mat_error_set(err, (enum mat_code)cn->cancel_code,
				                     cn->cancel_code == MAT_CANCELLED
				                         ? "cancelled; the database did not answer"
				                         : "deadline exceeded; the database did "
				                           "not answer");
			}
			wait = cn->cancel_ms + CANCEL_GRACE_MS - now;
		} else if (c->deadline_ms != STORE_NO_DEADLINE && c->deadline_ms - now < wait) {
			wait = c->deadline_ms - now;
		}
		if (wait > WAIT_SLICE_MS)
			wait = WAIT_SLICE_MS;
		if (wait < 1)
			wait = 1;
		pfd.fd = PQsocket(cn->pg);
		if (pfd.fd < 0)
			return lost(cn, diag, err);
		pfd.events = (short)(POLLIN | (want_write ? POLLOUT : 0));
		pfd.revents = 0;
		n = poll(&pfd, 1, (int)wait);
		if (n > 0)
			return MAT_OK;
		if (n < 0 && errno != EINTR)
			return mat_error_set(err, MAT_INTERNAL, "poll: %s", strerror(errno));
	}
}

/* The next result of the pipeline; NULL is a legitimate "end of this command's results".
 * *rc is set to a failure when waiting failed (then the result is NULL too). */
static PGresult *next_result(struct store__conn *cn, const struct store_call *c,
                             struct store__diag *diag, enum mat_code *rc, struct mat_error *err)
{
	*rc = MAT_OK;
	while (PQisBusy(cn->pg)) {
		*rc = conn_wait(cn, c, false, diag, err);
		if (*rc != MAT_OK)
			return NULL;
		if (!store__pq_consume(cn)) {
			*rc = lost(cn, diag, err);
			return NULL;
		}
	}
	return store__pq_get_result(cn);
}

struct op {
	struct store__cmd *cmd; /* NULL for a Prepare */
	int slot;
};

STORE__STMT(st_app_reset, 0, "RESET application_name");

/* The application_name a call wants on its session: its trace ids, or the connection's own. Only
 * calls that serve a method take part (health pings and migrations leave it as it is). Returns
 * false when the session already has it. */
static bool app_name_change(const struct store__conn *cn, const struct store_call *c, char want[64])
{
	if (c->method == NULL)
		return false;
	if (c->trace_id != NULL && c->trace_id[0] != '\0')
		snprintf(want, 64, "maturityd %.32s-%.16s", c->trace_id,
		         c->span_id != NULL ? c->span_id : "");
	else
		want[0] = '\0';
	return strcmp(want, cn->app_name) != 0;
}

enum mat_code store__run(struct store__conn *cn, const struct store_call *c,
                         struct store__cmd *cmds, size_t n, struct store__diag *diag,
                         struct mat_error *err)
{
	/* A change of application_name rides in the same pipeline, ahead of the call's
	 * statements: no extra round trip. */
	char app_want[64] = "";
	const char *app_params[1] = {app_want};
	bool app = app_name_change(cn, c, app_want);
	struct store__cmd app_cmd = {.st = app_want[0] ? store__st_app_set() : &st_app_reset,
	                             .params = app_want[0] ? app_params : NULL};
	struct op small[16];
	struct op *ops = small;
	size_t n_ops = 0;
	uint64_t pending[STORE__MAX_STMTS / 64];
	enum mat_code rc = MAT_INTERNAL, first = MAT_OK;

	if (diag != NULL) {
		memset(diag, 0, sizeof(*diag));
		diag->index = -1;
	}
	for (size_t i = 0; i < n; i++)
		cmds[i].res = NULL;
	if (c->cancelled != NULL && *c->cancelled != 0)
		return mat_error_set(err, MAT_CANCELLED, "cancelled");
	if (c->deadline_ms != STORE_NO_DEADLINE && store_now_ms() >= c->deadline_ms)
		return mat_error_set(err, MAT_TIMEOUT, "deadline exceeded before the query");
	if (cn->lost)
		return lost(cn, diag, err);
	if (2 * (n + 1) > sizeof(small) / sizeof(small[0])) {
		ops = calloc(2 * (n + 1), sizeof(*ops));
		if (ops == NULL)
			return store__oom(err);
	}
	memcpy(pending, cn->prepared, sizeof(pending));

	if (!store__pq_enter_pipeline(cn)) {
		rc = lost(cn, diag, err);
		goto out;
	}
	for (size_t i = 0; i < n + app; i++) {
		struct store__cmd *cmd = app ? (i == 0 ? &app_cmd : &cmds[i - 1]) : &cmds[i];
		struct store__stmt *st = cmd->st;
		int slot = store__stmt_slot(st);
		char name[16];

		snprintf(name, sizeof(name), "s%d", slot);
		if (!store__bit_get(pending, slot)) {
			if (!store__pq_send_prepare(cn, name, st->sql)) {
				rc = lost(cn, diag, err);
				goto out;
			}
			store__bit_set(pending, slot);
			ops[n_ops++] = (struct op){NULL, slot};
		}
		if (!store__pq_send_prepared(cn, name, st->nparams, cmd->params, st->binary)) {
			rc = lost(cn, diag, err);
			goto out;
		}
		ops[n_ops++] = (struct op){cmd, slot};
	}
	if (!store__pq_pipeline_sync(cn)) {
		rc = lost(cn, diag, err);
		goto out;
	}
	/* Non-blocking socket: push everything out, reading while we wait so a server blocked on
	 * writing results can never deadlock us. */
	for (;;) {
		int f = store__pq_flush(cn);
		if (f == 0)
			break;
		if (f < 0) {
			rc = lost(cn, diag, err);
			goto out;
		}
		rc = conn_wait(cn, c, true, diag, err);
		if (rc != MAT_OK)
			goto out;
		if (!store__pq_consume(cn)) {
			rc = lost(cn, diag, err);
			goto out;
		}
	}

	for (size_t i = 0; i < n_ops; i++) {
		PGresult *r = next_result(cn, c, diag, &rc, err);
		PGresult *end;

		if (rc != MAT_OK)
			goto out;
		if (r == NULL) {
			rc = lost(cn, diag, err);
			goto out;
		}
		switch (PQresultStatus(r)) {
		case PGRES_COMMAND_OK:
		case PGRES_TUPLES_OK:
			if (ops[i].cmd == NULL) {
				store__bit_set(cn->prepared, ops[i].slot);
				PQclear(r);
			} else {
				ops[i].cmd->res = r;
			}
			break;
		case PGRES_PIPELINE_ABORTED:
			PQclear(r); /* skipped after the first failure, which is already recorded */
			break;
		case PGRES_FATAL_ERROR:
			if (first == MAT_OK) {
				first = store__result_error(cn, r, diag, err);
				if (diag != NULL && ops[i].cmd != NULL && ops[i].cmd != &app_cmd)
					diag->index = (int)(ops[i].cmd - cmds);
			}
			PQclear(r);
			if (cn->lost) {
				rc = first;
				goto out;
			}
			break;
		default:
			if (first == MAT_OK)
				first = mat_error_set(err, MAT_INTERNAL, "unexpected result %s",
				                      PQresStatus(PQresultStatus(r)));
			PQclear(r);
			break;
		}
		/* Each command's results end with NULL. */
		end = next_result(cn, c, diag, &rc, err);
		if (rc != MAT_OK)
			goto out;
		if (end != NULL) {
			PQclear(end);
			cn->lost = true; /* out of step with the protocol: never reuse */
			rc = mat_error_set(err, MAT_INTERNAL, "unexpected extra result");
			goto out;
		}
	}
	{
		PGresult *sync = next_result(cn, c, diag, &rc, err);
		if (rc != MAT_OK)
			goto out;
		if (sync == NULL || PQresultStatus(sync) != PGRES_PIPELINE_SYNC) {
			PQclear(sync);
			rc = lost(cn, diag, err);
			goto out;
		}
		PQclear(sync);
	}
	if (!PQexitPipelineMode(cn->pg)) {
		rc = lost(cn, diag, err);
		goto out;
	}
	rc = first;
out:
	PQclear(app_cmd.res);
	if (app)
		/* Set, or unknown: a failed pipeline or a rolled-back transaction undoes it. */
		snprintf(cn->app_name, sizeof(cn->app_name), "%s", rc == MAT_OK ? app_want : "?");
	if (rc != MAT_OK)
		store__cmds_clear(cmds, n);
	if (ops != small)
		free(ops);
	return rc;
}

enum mat_code store__run_script(struct store__conn *cn, const struct store_call *c, const char *sql,
                                struct store__diag *diag, struct mat_error *err)
{
	enum mat_code rc = MAT_INTERNAL, first = MAT_OK;

	if (diag != NULL)
		memset(diag, 0, sizeof(*diag));
	if (cn->lost)
		return lost(cn, diag, err);
	if (!store__pq_send_query(cn, sql))
		return lost(cn, diag, err);
	for (;;) {
		int f = store__pq_flush(cn);
		if (f == 0)
			break;
		if (f < 0)
			return lost(cn, diag, err);
		rc = conn_wait(cn, c, true, diag, err);
		if (rc != MAT_OK)
			return rc;
		if (!store__pq_consume(cn))
			return lost(cn, diag, err);
	}
	/* A multi-statement string yields one result per statement, then NULL. */
	for (;;) {
		PGresult *r = next_result(cn, c, diag, &rc, err);
		if (rc != MAT_OK)
			return rc;
		if (r == NULL)
			break;
		if (PQresultStatus(r) == PGRES_FATAL_ERROR && first == MAT_OK)
			first = store__result_error(cn, r, diag, err);
		PQclear(r);
		if (cn->lost)
			return first != MAT_OK ? first : lost(cn, diag, err);
	}
	return first;
}

/* Leaves the transaction after a failure, so the connection can go back to the pool. Runs even
 * when the call was cancelled or its deadline passed: a short deadline of its own. */
static void rollback_quietly(struct store__conn *cn, const struct store_call *c)
{
	struct store_call rb = {.pool = c->pool, .deadline_ms = store_now_ms() + CANCEL_GRACE_MS};
	struct store__cmd cmd = {.st = &st_rollback};
	struct mat_error ignored;

	if (cn == NULL || cn->lost || cn->cancel_code != MAT_OK ||
	    PQtransactionStatus(cn->pg) == PQTRANS_IDLE)
		return;
	if (store__run(cn, &rb, &cmd, 1, NULL, &ignored) != MAT_OK)
		cn->lost = true; /* harmless: it is closed on release instead */
	store__cmds_clear(&cmd, 1);
	/* An application_name set inside the transaction was rolled back with it. (A RESET rolled
	 * back leaves the previous trace's name until the next traced call: a stale label only.) */
	if (cn->app_name[0] != '\0')
		snprintf(cn->app_name, sizeof(cn->app_name), "?");
}

/* Runs cmds in one round trip; with `authz`, the binding read of c->authz goes ahead of them
 * and is decided before their results are handed out. */
static enum mat_code run_alone_with(const struct store_call *c, struct store__cmd *cmds, size_t n,
                                    bool may_retry, bool authz, struct mat_error *err)
{
	struct store__cmd all[12];
	enum mat_code rc = MAT_INTERNAL;

	assert(n >= 1 && n <= 8);
	for (int attempt = 0;; attempt++) {
		struct store__conn *cn = NULL;
		struct store__diag diag;
		char tbuf[24];
		const char *tparams[1] = {tbuf};
		size_t k = 0, first, authz_at = 0;
		bool was_used;

		rc = store__acquire(c->pool, c->deadline_ms, c->cancelled, &cn, err);
		if (rc != MAT_OK)
			return rc;
		if (n > 1)
			all[k++] = (struct store__cmd){.st = store__st_begin_ro()};
		if (c->deadline_ms != STORE_NO_DEADLINE) {
			if (!store__timeout_param(c, tbuf)) {
				store__release(cn);
				return mat_error_set(err, MAT_TIMEOUT, "deadline exceeded");
			}
			all[k++] =
			    (struct store__cmd){.st = store__st_timeout(), .params = tparams};
		}
		if (authz) {
			authz_at = k;
			store__authz_cmd(c, &all[k++]);
		}
		first = k;
		for (size_t i = 0; i < n; i++)
			all[k++] = (struct store__cmd){.st = cmds[i].st, .params = cmds[i].params};
		if (n > 1)
			all[k++] = (struct store__cmd){.st = store__st_commit()};
		was_used = cn->used;
		rc = store__run(cn, c, all, k, &diag, err);
		if (rc != MAT_OK)
			rollback_quietly(cn, c);
		store__release(cn);
		if (rc == MAT_OK && authz) {
			/* A read has no side effects: refused, its results are simply dropped. */
			rc = store__authz_decide(c, &all[authz_at], err);
			if (rc != MAT_OK) {
				store__cmds_clear(all, k);
				return rc;
			}
		}
		if (rc == MAT_OK) {
			for (size_t i = 0; i < n; i++) {
				cmds[i].res = all[first + i].res;
				all[first + i].res = NULL;
			}
			store__cmds_clear(all, k);
			return MAT_OK;
		}
		/* A pooled connection that died while idle (server restart) fails on first use;
		 * a read is safe to run again on a fresh one. */
		if (!(may_retry && diag.lost && was_used && attempt == 0))
			return rc;
		mat_error_clear(err);
	}
}

static enum mat_code run_alone(const struct store_call *c, struct store__cmd *cmds, size_t n,
                               bool may_retry, struct mat_error *err)
{
	struct store__cmd cmd;
	enum mat_code rc;

	if (!store__authz_pending(c))
		return run_alone_with(c, cmds, n, may_retry, false, err);
	if (may_retry) /* a read: its results are dropped if the call is refused */
		return run_alone_with(c, cmds, n, may_retry, true, err);
	/* A write never travels with its own authorization: the binding read goes first, alone,
	 * and the write only once it is decided. */
	store__authz_cmd(c, &cmd);
	rc = run_alone_with(c, &cmd, 1, true, false, err);
	if (rc == MAT_OK)
		rc = store__authz_decide(c, &cmd, err);
	if (rc != MAT_OK)
		return rc;
	return run_alone_with(c, cmds, n, may_retry, false, err);
}

enum mat_code store__read(const struct store_call *c, struct store__cmd *cmds, size_t n,
                          struct mat_error *err)
{
	return run_alone(c, cmds, n, true, err);
}

enum mat_code store__write1(const struct store_call *c, struct store__cmd *cmd,
                            struct mat_error *err)
{
	enum mat_code rc = store__may_write(c->pool, err);

	if (rc != MAT_OK)
		return rc;
	return run_alone(c, cmd, 1, false, err);
}

enum mat_code store__tx_run(struct store__tx *tx, struct store__cmd *cmds, size_t n,
                            struct mat_error *err)
{
	return store__run(tx->cn, tx->c, cmds, n, &tx->diag, err);
}

enum mat_code store__tx_exec(struct store__tx *tx, struct store__stmt *st,
                             const char *const *params, size_t nparams, PGresult **res,
                             struct mat_error *err)
{
	struct store__cmd cmd = {.st = st, .params = params};
	enum mat_code rc;

	assert((int)nparams == st->nparams || (st->nparams == 0 && nparams == 1));
	*res = NULL;
	rc = store__run(tx->cn, tx->c, &cmd, 1, &tx->diag, err);
	if (rc == MAT_OK)
		*res = cmd.res;
	return rc;
}

/* Acquires a connection and opens the transaction with statement_timeout in one round trip. A
 * pooled connection found dead is replaced once: nothing ran on it, so that is safe. */
static enum mat_code tx_begin(struct store__tx *tx, struct mat_error *err)
{
	const struct store_call *c = tx->c;
	enum mat_code rc = MAT_INTERNAL;

	for (int attempt = 0;; attempt++) {
		struct store__cmd cmds[3];
		char tbuf[24];
		const char *tparams[1] = {tbuf};
		size_t k = 0;
		bool was_used, authz = store__authz_pending(c);

		rc = store__acquire(c->pool, c->deadline_ms, c->cancelled, &tx->cn, err);
		if (rc != MAT_OK)
			return rc;
		cmds[k++] = (struct store__cmd){.st = &st_begin};
		if (c->deadline_ms != STORE_NO_DEADLINE) {
			if (!store__timeout_param(c, tbuf))
				return mat_error_set(err, MAT_TIMEOUT, "deadline exceeded");
			cmds[k++] =
			    (struct store__cmd){.st = store__st_timeout(), .params = tparams};
		}
		/* Authorized before the body sends anything: refused, the transaction (still empty)
		 * is rolled back by the caller. */
		if (authz)
			store__authz_cmd(c, &cmds[k++]);
		was_used = tx->cn->used;
		rc = store__run(tx->cn, c, cmds, k, &tx->diag, err);
		if (rc == MAT_OK && authz)
			rc = store__authz_decide(c, &cmds[k - 1], err);
		store__cmds_clear(cmds, k);
		if (rc == MAT_OK || rc == MAT_DENIED)
			return rc;
		if (!(tx->diag.lost && was_used && attempt == 0))
			return rc;
		store__release(tx->cn);
		tx->cn = NULL;
		mat_error_clear(err);
	}
}

static enum mat_code tx_commit(struct store__tx *tx, struct mat_error *err)
{
	struct store__cmd cmd = {.st = store__st_commit()};
	enum mat_code rc = store__tx_run(tx, &cmd, 1, err);

	/* COMMIT of a transaction that had failed reports "ROLLBACK": never take that for success.
	 */
	if (rc == MAT_OK && strcmp(PQcmdStatus(cmd.res), "COMMIT") != 0)
		rc = mat_error_set(err, MAT_INTERNAL, "commit rolled back");
	store__cmds_clear(&cmd, 1);
	return rc;
}

static void backoff_sleep(int attempt)
{
	/* 1, 2, 4, 8 ms plus up to as much again: enough to let the other transaction finish. */
	long ms = 1L << attempt;
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	ms += ts.tv_nsec % (ms + 1);
	ts.tv_sec = 0;
	ts.tv_nsec = ms * 1000000L;
	nanosleep(&ts, NULL);
}

enum mat_code store__transact(const struct store_call *c, store__tx_body body, void *arg,
                              struct mat_error *err)
{
	enum mat_code rc = store__may_write(c->pool, err);

	if (rc != MAT_OK)
		return rc;
	for (int attempt = 0;; attempt++) {
		struct store__tx tx = {.c = c};

		rc = tx_begin(&tx, err);
		if (rc == MAT_OK)
			rc = body(&tx, arg, err);
		if (rc == MAT_OK)
			rc = tx_commit(&tx, err);
		else
			rollback_quietly(tx.cn, c);
		store__release(tx.cn);
		if (rc == MAT_OK || !tx.diag.retryable || attempt + 1 >= TX_MAX_ATTEMPTS)
			return rc;
		if (c->deadline_ms != STORE_NO_DEADLINE && store_now_ms() >= c->deadline_ms)
			return rc;
		backoff_sleep(attempt);
		mat_error_clear(err);
	}
}
