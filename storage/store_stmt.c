/* Statements and commands as both executors see them — the blocking one (store_exec.c) and the
 * storage loop (store_loop.c): a statement's slot (its prepared name on every connection), the
 * statements every pipeline may carry around a call's own (read-only snapshot, COMMIT,
 * statement_timeout, application_name), and the mapping of a failed result into the error model.
 * The bottom of the exec layer (docs/architecture.md): runs nothing itself. */
#include "store_internal.h"

#include <assert.h>
#include <inttypes.h>
#include <pthread.h>
#include <stdio.h>
#include <string.h>

STORE__STMT(st_begin_ro, 0, "BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY");
STORE__STMT(st_commit, 0, "COMMIT");
/* is_local = true: the setting ends with the (explicit or pipeline-implicit) transaction. */
STORE__STMT(st_timeout, 1, "SELECT set_config('statement_timeout', $1, true)");

struct store__stmt *store__st_begin_ro(void)
{
	return &st_begin_ro;
}

struct store__stmt *store__st_commit(void)
{
	return &st_commit;
}

struct store__stmt *store__st_timeout(void)
{
	return &st_timeout;
}

STORE__STMT(st_app_set, 1, "SELECT set_config('application_name', $1, false)");

struct store__stmt *store__st_app_set(void)
{
	return &st_app_set;
}

static pthread_mutex_t slot_mu = PTHREAD_MUTEX_INITIALIZER;
static int next_slot = 1;

/* The statement's slot, assigned on its first use anywhere in the process. */
int store__stmt_slot(struct store__stmt *st)
{
	int s;

	pthread_mutex_lock(&slot_mu);
	if (st->slot == 0) {
		assert(next_slot < STORE__MAX_STMTS && "raise STORE__MAX_STMTS");
		st->slot = next_slot++;
	}
	s = st->slot;
	pthread_mutex_unlock(&slot_mu);
	return s;
}

bool store__bit_get(const uint64_t *bits, int i)
{
	return (bits[i / 64] >> (i % 64)) & 1u;
}

void store__bit_set(uint64_t *bits, int i)
{
	bits[i / 64] |= (uint64_t)1 << (i % 64);
}

void store__cmds_clear(struct store__cmd *cmds, size_t n)
{
	for (size_t i = 0; i < n; i++) {
		PQclear(cmds[i].res);
		cmds[i].res = NULL;
	}
}

/* Maps a failed result into err/diag: the SQLSTATE mapping of store_error.c, except that anything
 * that means the connection is gone is MAT_UNAVAILABLE and marks it lost. */
enum mat_code store__result_error(struct store__conn *cn, const PGresult *r,
                                  struct store__diag *diag, struct mat_error *err)
{
	const char *state = PQresultErrorField(r, PG_DIAG_SQLSTATE);
	const char *primary = PQresultErrorField(r, PG_DIAG_MESSAGE_PRIMARY);
	const char *detail = PQresultErrorField(r, PG_DIAG_MESSAGE_DETAIL);
	const char *constraint = PQresultErrorField(r, PG_DIAG_CONSTRAINT_NAME);
	char msg[240];
	enum mat_code code;

	store__line_copy(msg, sizeof(msg), primary != NULL ? primary : PQresultErrorMessage(r));
	if (diag != NULL) {
		snprintf(diag->sqlstate, sizeof(diag->sqlstate), "%s", state != NULL ? state : "");
		snprintf(diag->constraint, sizeof(diag->constraint), "%s",
		         constraint != NULL ? constraint : "");
		diag->retryable = store_sqlstate_retryable(state);
	}
	if (cn->lost || PQstatus(cn->pg) != CONNECTION_OK ||
	    store_sqlstate_kills_connection(state) || (state == NULL && msg[0] == '\0')) {
		cn->lost = true;
		if (diag != NULL)
			diag->lost = true;
		return mat_error_set(err, MAT_UNAVAILABLE, "database unavailable: %s",
		                     msg[0] != '\0' ? msg : "connection lost");
	}
	code = store_sqlstate_to_code(state);
	if (code == MAT_TIMEOUT && cn->cancel_code == MAT_CANCELLED)
		return mat_error_set(err, MAT_CANCELLED, "cancelled");
	switch (code) {
	case MAT_TIMEOUT:
		return mat_error_set(err, MAT_TIMEOUT, "deadline exceeded in the database");
	case MAT_INTERNAL:
		/* Logged by the service, never sent: keep everything that helps. */
		return mat_error_set(err, MAT_INTERNAL, "database error %s: %s%s%s",
		                     state != NULL ? state : "(client)", msg,
		                     detail != NULL ? " - " : "", detail != NULL ? detail : "");
	default:
		/* Callers replace the message for the codes they expect (e.g. CONFLICT). */
		return mat_error_set(err, code, "%s", msg);
	}
}

/* statement_timeout for the time left, as the parameter of st_timeout. False when no time is
 * left. */
bool store__timeout_param(const struct store_call *c, char buf[24])
{
	int64_t left = c->deadline_ms - store_now_ms();

	if (left <= 0)
		return false;
	snprintf(buf, 24, "%" PRId64, left);
	return true;
}
