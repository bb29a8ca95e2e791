/* Evidence: immutable observations of one practice of one organization (docs/evidence.md).
 * Reports write 1..100 rows in one transaction with their audit event (request_id idempotency:
 * a replay reads back the rows of the first call through their shared batch_id) and keep
 * evidence_head, the few pieces per practice that may still be current (migration 0008), in the
 * same transaction; reads get one piece, list newest observe_time first (keyset on
 * (observe_time, id)), and gather the inputs of the live score in one round trip. The current
 * evidence of an organization is read from evidence_head, one index walk over the organization,
 * so its cost does not grow with the organization's history; for a time more than a minute
 * past, from evidence itself (st_ev_current). */
#include "mat_model.h"
#include "mat_validate.h"
#include "store_internal.h"
#include "store_token.h"

#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define EV_COLS                                                                                \
	"e.org_id, e.id::text, e.practice_id, e.status, e.source, e.reporter, "                \
	"mat_epoch_us(e.observe_time), mat_epoch_us(e.expire_time), e.uri, e.digest, e.note, " \
	"mat_epoch_us(e.create_time)"

STORE__STMT(st_ev_insert, 13,
            "INSERT INTO evidence AS e (org_id, id, practice_id, status, source, reporter, "
            "observe_time, expire_time, uri, digest, note, batch_id, batch_index) "
            "VALUES ($1, $2::uuid, $3, $4::smallint, $5, $6, $7::timestamptz, $8::timestamptz, "
            "$9, $10, $11, $12::uuid, $13::smallint) RETURNING " EV_COLS);
STORE__STMT(st_ev_get, 2,
            "SELECT " EV_COLS " FROM evidence e WHERE e.org_id = $1 AND e.id = $2::uuid");
STORE__STMT(st_ev_batch, 2,
            "SELECT " EV_COLS " FROM evidence e WHERE e.org_id = $1 AND e.batch_id = $2::uuid "
            "ORDER BY e.batch_index");
/* The current evidence at $3 (docs/evidence.md "Where the live score reads"), $1 the
 * organization, $2 the practice ids of mlops-v1.
 *
 * From evidence_head (migration 0008): per practice, the newest of its few rows in force at $3;
 * one short index walk over the organization, whatever the length of its history. The table
 * holds every piece that can be current at any t >= (a report's now() - 2 minutes), so it
 * answers for $3 down to a minute before this statement's now() (the minute spare: a report whose
 * transaction started after ours may be visible to our snapshot).
 *
 * Before that (a score computed for the past, or a server clock far behind the database's): from
 * evidence itself, one short walk of evidence_current per practice from the newest observation
 * down, never further back than 400 days (nothing observed earlier can be in force). The two
 * conditions on $3 exclude each other and depend on no row: PostgreSQL checks them once and runs
 * one branch. */
#define EV_HEAD_CURRENT                                                                    \
	"SELECT DISTINCT ON (e.practice_id) e.* FROM evidence_head e WHERE e.org_id = $1 " \
	"AND e.observe_time <= $3::timestamptz AND e.expire_time > $3::timestamptz "       \
	"AND $3::timestamptz > now() - interval '1 minute' "                               \
	"ORDER BY e.practice_id, e.observe_time DESC, e.create_time DESC, e.id DESC"
#define EV_HISTORY_CURRENT                                                        \
	"unnest($2::text[]) AS p(id) CROSS JOIN LATERAL ("                        \
	"SELECT * FROM evidence e WHERE e.org_id = $1 AND e.practice_id = p.id "  \
	"AND e.observe_time <= $3::timestamptz "                                  \
	"AND e.observe_time > $3::timestamptz - interval '9600 hours' "           \
	"AND e.expire_time > $3::timestamptz "                                    \
	"ORDER BY e.observe_time DESC, e.create_time DESC, e.id DESC LIMIT 1) e " \
	"WHERE $3::timestamptz <= now() - interval '1 minute'"
/* What the live score and the gate use of a piece (LIVE_COLS, live_from_row): not its source,
 * reporter, uri, digest or note. */
#define LIVE_COLS                                                                       \
	"e.org_id, e.id::text, e.practice_id, e.status, mat_epoch_us(e.observe_time), " \
	"mat_epoch_us(e.expire_time), mat_epoch_us(e.create_time)"
STORE__STMT(st_ev_current, 3,
            "SELECT " LIVE_COLS " FROM (" EV_HEAD_CURRENT ") e "
            "UNION ALL SELECT " LIVE_COLS " FROM " EV_HISTORY_CURRENT);
/* The same pieces with every column (CreateAssessment's prefill): evidence_head by its id. */
STORE__STMT(st_ev_current_full, 3,
            "SELECT " EV_COLS " FROM (" EV_HEAD_CURRENT ") h "
            "JOIN evidence e ON e.org_id = h.org_id AND e.id = h.id "
            "UNION ALL SELECT " EV_COLS " FROM " EV_HISTORY_CURRENT);
/* Keeping evidence_head in the reporting transaction, after the pieces of batch $2 are in: they
 * go in (unless expired two minutes ago), then every row of their practices that can no longer be
 * current at any t >= now() - 2 minutes goes out: expired by then, or below a row that is in force
 * whenever it is from then on (migration 0008 says why this never removes a current piece). */
STORE__STMT(st_ev_head_add, 2,
            "INSERT INTO evidence_head (org_id, practice_id, observe_time, create_time, id, "
            "status, expire_time) SELECT e.org_id, e.practice_id, e.observe_time, e.create_time, "
            "e.id, e.status, e.expire_time FROM evidence e WHERE e.org_id = $1 "
            "AND e.batch_id = $2::uuid AND e.expire_time > now() - interval '2 minutes'");
STORE__STMT(st_ev_head_prune, 2,
            "DELETE FROM evidence_head q WHERE q.org_id = $1 AND q.practice_id IN ("
            "SELECT e.practice_id FROM evidence e WHERE e.org_id = $1 AND e.batch_id = $2::uuid) "
            "AND (q.expire_time <= now() - interval '2 minutes' OR EXISTS ("
            "SELECT 1 FROM evidence_head r WHERE r.org_id = q.org_id "
            "AND r.practice_id = q.practice_id "
            "AND (r.observe_time, r.create_time, r.id) > (q.observe_time, q.create_time, q.id) "
            "AND r.observe_time <= greatest(q.observe_time, now() - interval '2 minutes') "
            "AND r.expire_time >= q.expire_time))");
STORE__STMT(st_ev_org_exists, 1, "SELECT 1 FROM organizations WHERE id = $1");
/* Newest first, strictly after the position ($5, $6) in (observe_time, id) descending order;
 * $3: include expired, $4: now. $8 bounds the walk down the index: without expired pieces,
 * nothing observed 400 days before now can be in force, so a long expired history is never read
 * (it is "-infinity" with include_expired). Two statements so each has a plan on the right
 * index. */
#define EV_PAGE_WHERE                                                      \
	"e.org_id = $1 AND ($3::bool OR e.expire_time > $4::timestamptz) " \
	"AND (e.observe_time, e.id) < ($5::timestamptz, $6::uuid) "        \
	"AND e.observe_time > $8::timestamptz "
STORE__STMT(st_ev_page, 8,
            "SELECT " EV_COLS " FROM evidence e WHERE " EV_PAGE_WHERE "AND $2::text = '' "
            "ORDER BY e.observe_time DESC, e.id DESC LIMIT $7::int");
STORE__STMT(st_ev_page_of, 8,
            "SELECT " EV_COLS " FROM evidence e WHERE " EV_PAGE_WHERE "AND e.practice_id = $2 "
            "ORDER BY e.observe_time DESC, e.id DESC LIMIT $7::int");
/* organizations/-: the same order across organizations, ties on observe_time broken by name
 * descending, i.e. by (org_id || '/', id): "/" sorts the way the rest of a name does, so
 * "acme" < "acme-x" in ids but "organizations/acme/..." > "organizations/acme-x/..." in names.
 * Each organization the caller may see contributes at most one page from evidence_list (its
 * newest pieces after the position), and the pages are merged: no index across organizations to
 * maintain on every report. $1 is NULL (no organization), $9: the position's organization, $10:
 * only visible, $11: principal. */
#define EV_NAME_KEY "(e.org_id || '/') COLLATE \"C\""
STORE__STMT(st_ev_page_all, 11,
            "SELECT " EV_COLS " FROM organizations o CROSS JOIN LATERAL ("
            "SELECT * FROM evidence e WHERE e.org_id = o.id "
            "AND ($3::bool OR e.expire_time > $4::timestamptz) "
            "AND e.observe_time <= $5::timestamptz AND e.observe_time > $8::timestamptz "
            "AND (e.observe_time, " EV_NAME_KEY ", e.id) < "
            "($5::timestamptz, ($9::text || '/') COLLATE \"C\", $6::uuid) "
            "AND ($2::text = '' OR e.practice_id = $2::text) "
            "ORDER BY e.observe_time DESC, e.id DESC LIMIT $7::int) e "
            "WHERE $1::text IS NULL AND " STORE__VISIBLE(
                "$10", "$11", "o.id") " "
                                      "ORDER BY e.observe_time DESC, " EV_NAME_KEY
                                      " DESC, e.id DESC LIMIT $7::int");
/* The inputs of the live score, with st_ev_current, in one snapshot. */
/* Of the organization, what the live score and the gate read: that it exists, its level. */
STORE__STMT(st_live_org, 1, "SELECT o.id, o.current_level FROM organizations o WHERE o.id = $1");
STORE__STMT(st_live_asm, 1,
            "SELECT " STORE__ASM_COLS " FROM organizations o JOIN assessments a "
            "ON a.org_id = o.id AND a.id = o.last_assessment_id WHERE o.id = $1");
/* Of the answers, what the live rule and the gate read: the practice and its status (not the
 * notes, evidence links, update times and authors). */
STORE__STMT(st_live_ans, 1,
            "SELECT x.practice_id, x.status FROM organizations o JOIN answers x "
            "ON x.org_id = o.id AND x.assessment_id = o.last_assessment_id WHERE o.id = $1");

/* --- names and rows ------------------------------------------------------------------------- */

static bool org_ok(const char *org_id)
{
	return org_id != NULL && org_id[0] != '\0' && strlen(org_id) <= MAT_MAX_ORG_ID;
}

static enum mat_code org_not_found(struct mat_error *err, const char *org_id)
{
	return mat_error_set(err, MAT_NOT_FOUND, "organizations/%s not found",
	                     org_id != NULL ? org_id : "");
}

static enum mat_code evidence_from_row(const PGresult *res, int row, struct mat_evidence *e,
                                       struct mat_error *err)
{
	struct store__row r = {.res = res, .row = row};

	mat_evidence_cleanup(e);
	e->org_id = store__text0(&r, 0);
	e->id = store__text0(&r, 1);
	e->practice_id = store__text0(&r, 2);
	e->status = (enum mat_status)store__int(&r, 3);
	e->source = store__text0(&r, 4);
	e->reporter = store__text0(&r, 5);
	e->observe_time = store__int(&r, 6);
	e->expire_time = store__int(&r, 7);
	e->uri = store__text0(&r, 8);
	e->digest = store__text0(&r, 9);
	e->note = store__text0(&r, 10);
	e->create_time = store__int(&r, 11);
	if (r.oom) {
		mat_evidence_cleanup(e);
		return store__oom(err);
	}
	return MAT_OK;
}

/* A row of LIVE_COLS: the fields the live rule reads; source, reporter, uri, digest and note stay
 * NULL (fewer columns to send and parse, fewer strings to allocate per call). */
static enum mat_code live_from_row(const PGresult *res, int row, struct mat_evidence *e,
                                   struct mat_error *err)
{
	struct store__row r = {.res = res, .row = row};

	mat_evidence_cleanup(e);
	e->org_id = store__text0(&r, 0);
	e->id = store__text0(&r, 1);
	e->practice_id = store__text0(&r, 2);
	e->status = (enum mat_status)store__int(&r, 3);
	e->observe_time = store__int(&r, 4);
	e->expire_time = store__int(&r, 5);
	e->create_time = store__int(&r, 6);
	if (r.oom) {
		mat_evidence_cleanup(e);
		return store__oom(err);
	}
	return MAT_OK;
}

/* The rows of st_live_ans as a's answers, in no particular order: practice_id and status set,
 * the other fields NULL or 0. */
static enum mat_code live_answers(const PGresult *res, struct mat_assessment *a,
                                  struct mat_error *err)
{
	size_t n = (size_t)PQntuples(res);
	bool oom = false;

	if (n == 0)
		return MAT_OK;
	a->answers = calloc(n, sizeof(*a->answers));
	if (a->answers == NULL)
		return store__oom(err);
	a->n_answers = n;
	for (size_t i = 0; i < n; i++) {
		struct store__row r = {.res = res, .row = (int)i};

		a->answers[i].practice_id = store__text0(&r, 0);
		a->answers[i].status = (enum mat_status)store__int(&r, 1);
		oom |= r.oom;
	}
	return oom ? store__oom(err) : MAT_OK;
}

static void evidence_free(struct mat_evidence *list, size_t n)
{
	for (size_t i = 0; i < n; i++)
		mat_evidence_cleanup(&list[i]);
	free(list);
}

typedef enum mat_code (*row_fn)(const PGresult *res, int row, struct mat_evidence *e,
                                struct mat_error *err);

/* Every row of `res` as evidence, decoded by `from` (a fresh array; NULL with *n 0 when there is
 * none). */
static enum mat_code rows_with(const PGresult *res, row_fn from, struct mat_evidence **out,
                               size_t *n, struct mat_error *err)
{
	size_t rows = (size_t)PQntuples(res);
	struct mat_evidence *list;
	enum mat_code rc;

	*out = NULL;
	*n = 0;
	if (rows == 0)
		return MAT_OK;
	list = calloc(rows, sizeof(*list));
	if (list == NULL)
		return store__oom(err);
	for (size_t i = 0; i < rows; i++) {
		rc = from(res, (int)i, &list[i], err);
		if (rc != MAT_OK) {
			evidence_free(list, i);
			return rc;
		}
	}
	*out = list;
	*n = rows;
	return MAT_OK;
}

static enum mat_code evidence_from_rows(const PGresult *res, struct mat_evidence **out, size_t *n,
                                        struct mat_error *err)
{
	return rows_with(res, evidence_from_row, out, n, err);
}

/* The practice ids of mlops-v1 as a text[] literal, built once: evidence is validated against
 * that catalog, so these are the only practices that can have current evidence. Ids are
 * [a-z0-9._] only, which needs no quoting in an array literal. */
static char practice_array_buf[MAT_MAX_PRACTICES * 130 + 3];
static pthread_once_t practice_array_once = PTHREAD_ONCE_INIT;

static void practice_array_build(void)
{
	const struct mat_model *m = mat_model_find("mlops-v1");
	char *buf = practice_array_buf;
	size_t o = 0, cap = sizeof(practice_array_buf);

	buf[o++] = '{';
	for (size_t i = 0; m != NULL && i < m->n_practices; i++)
		o += (size_t)snprintf(buf + o, cap - o, "%s%s", i ? "," : "", m->practices[i].id);
	snprintf(buf + o, cap - o, "}");
}

static const char *practice_array(void)
{
	pthread_once(&practice_array_once, practice_array_build);
	return practice_array_buf;
}

enum mat_code store__evidence_current_tx(struct store__tx *tx, const char *org_id, mat_time_us now,
                                         struct mat_evidence **out, size_t *n,
                                         struct mat_error *err)
{
	char t[STORE_TIME_TEXT];
	PGresult *r = NULL;
	enum mat_code rc;

	*out = NULL;
	*n = 0;
	store__time_text(now, t);
	rc = STORE__EXEC(tx, &st_ev_current_full, &r, err, org_id, practice_array(), t);
	if (rc != MAT_OK)
		return rc;
	rc = evidence_from_rows(r, out, n, err);
	PQclear(r);
	return rc;
}

/* --- report --------------------------------------------------------------------------------- */

struct insert_params {
	char id[STORE_UUID_TEXT];
	char status[8];
	char observe[STORE_TIME_TEXT];
	char expire[STORE_TIME_TEXT];
	char index[8];
	const char *p[13];
};

struct report_args {
	const char *org_id;
	const struct mat_evidence *in;
	size_t n;
	bool batch;
	const char *request_id;    /* "" for none */
	struct insert_params *ins; /* n of them, ids generated once: a retried body reuses them */
	char resource[160];        /* audited: the piece, or the organization for a batch */
	char first[160];           /* the first piece's name, what request_id remembers */
	struct mat_evidence *out;  /* n of them */
	size_t n_out;
};

static void report_out_clear(struct report_args *a)
{
	for (size_t i = 0; i < a->n_out; i++)
		mat_evidence_cleanup(&a->out[i]);
	a->n_out = 0;
}

/* A replay: the pieces of the first call, from the name of its first piece. */
static enum mat_code replay(struct store__tx *tx, struct report_args *a, const char *prior,
                            struct mat_error *err)
{
	char org[MAT_MAX_ORG_ID + 1] = "", id[STORE_UUID_TEXT] = "";
	const char *slash = strstr(prior, "/evidence/");
	PGresult *r = NULL;
	enum mat_code rc;
	size_t rows;

	if (strncmp(prior, "organizations/", 14) == 0 && slash != NULL &&
	    (size_t)(slash - prior - 14) <= MAT_MAX_ORG_ID) {
		memcpy(org, prior + 14, (size_t)(slash - prior - 14));
		snprintf(id, sizeof(id), "%s", slash + 10);
	}
	rc = STORE__EXEC(tx, &st_ev_batch, &r, err, org, id);
	if (rc != MAT_OK)
		return rc;
	rows = (size_t)PQntuples(r);
	if (rows == 0) {
		PQclear(r);
		return mat_error_set(err, MAT_NOT_FOUND,
		                     "%s, reported by this request_id, no longer exists", prior);
	}
	if (rows > a->n) {
		/* The same request_id was used for a larger batch: its pieces do not fit the
		 * output of this one, and this call is not a retry of that one. */
		PQclear(r);
		return mat_error_field(err, "request_id",
		                       "was used for another report of %zu pieces", rows);
	}
	for (size_t i = 0; i < rows && rc == MAT_OK; i++) {
		rc = evidence_from_row(r, (int)i, &a->out[i], err);
		if (rc == MAT_OK)
			a->n_out = i + 1;
	}
	PQclear(r);
	return rc;
}

static enum mat_code report_body(struct store__tx *tx, void *arg, struct mat_error *err)
{
	struct report_args *a = arg;
	const char *reporter = tx->c->principal != NULL ? tx->c->principal : "";
	struct store__cmd *cmds = NULL;
	const char *head[2];
	struct store__audit audit;
	struct store__events ev;
	enum mat_code rc;

	report_out_clear(a);
	if (a->request_id[0] != '\0') {
		bool claimed = false;
		char *prior = NULL;

		rc = store__idem_claim(tx, a->request_id, a->batch ? "evidence_batch" : "evidence",
		                       a->first, &claimed, &prior, err);
		if (rc != MAT_OK)
			return rc;
		if (!claimed) {
			rc = replay(tx, a, prior, err);
			free(prior);
			return rc;
		}
	}
	/* Every piece, then evidence_head kept (its two statements read the pieces by their batch
	 * id), then the one audit event of the call: one round trip, one transaction. */
	cmds = calloc(a->n + 3, sizeof(*cmds));
	if (cmds == NULL)
		return store__oom(err);
	for (size_t i = 0; i < a->n; i++) {
		struct insert_params *x = &a->ins[i];

		x->p[5] = reporter;
		cmds[i] = (struct store__cmd){.st = &st_ev_insert, .params = x->p};
	}
	head[0] = a->org_id;
	head[1] = a->ins[0].id;
	cmds[a->n] = (struct store__cmd){.st = &st_ev_head_add, .params = head};
	cmds[a->n + 1] = (struct store__cmd){.st = &st_ev_head_prune, .params = head};
	rc = store__audit_cmd(&audit, tx->c, a->resource, 0, &cmds[a->n + 2], err);
	if (rc != MAT_OK)
		goto out;
	rc = store__tx_run(tx, cmds, a->n + 3, err);
	if (rc == MAT_NOT_FOUND) /* the foreign key: no such organization */
		rc = org_not_found(err, a->org_id);
	if (rc == MAT_INVALID && tx->diag.index >= 0 && (size_t)tx->diag.index < a->n) {
		/* A CHECK the caller's validation should have caught: still name the piece. */
		char field[48], msg[sizeof(err->message)];
		snprintf(field, sizeof(field), a->batch ? "evidence[%d]" : "evidence",
		         tx->diag.index);
		snprintf(msg, sizeof(msg), "%s", err->message);
		mat_error_clear(err);
		mat_error_field(err, field, "%s", msg);
	}
	for (size_t i = 0; rc == MAT_OK && i < a->n; i++) {
		rc = evidence_from_row(cmds[i].res, 0, &a->out[i], err);
		if (rc == MAT_OK)
			a->n_out = i + 1;
	}
	store__cmds_clear(cmds, a->n + 3);
	/* One EVIDENCE_REPORTED per piece, in request order, in this transaction. */
	store__events_init(&ev, a->org_id);
	for (size_t i = 0; rc == MAT_OK && i < a->n_out; i++)
		rc = store__event_add(&ev, STORE_EVENT_EVIDENCE_REPORTED, &a->out[i], err);
	if (rc == MAT_OK)
		rc = store__events_write(tx, &ev, err);
	store__events_reset(&ev);
out:
	free(cmds);
	return rc;
}

enum mat_code store_evidence_report(const struct store_call *c, const char *org_id,
                                    const struct mat_evidence *in, size_t n, bool batch,
                                    const char *request_id, struct mat_evidence **out,
                                    size_t *n_out, struct mat_error *err)
{
	struct report_args a = {.org_id = org_id, .in = in, .n = n, .batch = batch};
	char rid[STORE_UUID_TEXT];
	enum mat_code rc;

	*out = NULL;
	*n_out = 0;
	if (!org_ok(org_id))
		return org_not_found(err, org_id);
	if (n == 0 || in == NULL)
		return mat_error_field(err, "evidence", "must hold at least one piece");
	if (n > MAT_MAX_EVIDENCE_BATCH)
		return mat_error_field(err, "evidence", "must hold at most %d pieces (got %zu)",
		                       MAT_MAX_EVIDENCE_BATCH, n);
	rc = store__request_id(request_id, rid, err);
	if (rc != MAT_OK)
		return rc;
	a.request_id = rid;
	a.ins = calloc(n, sizeof(*a.ins));
	a.out = calloc(n, sizeof(*a.out));
	if (a.ins == NULL || a.out == NULL) {
		rc = store__oom(err);
		goto out;
	}
	for (size_t i = 0; i < n; i++) {
		struct insert_params *x = &a.ins[i];
		const struct mat_evidence *e = &in[i];

		rc = store__uuid7(x->id);
		if (rc != MAT_OK) {
			rc = mat_error_set(err, rc, "no randomness for an evidence id");
			goto out;
		}
		snprintf(x->status, sizeof(x->status), "%d", (int)e->status);
		store__time_text(e->observe_time, x->observe);
		store__time_text(e->expire_time, x->expire);
		snprintf(x->index, sizeof(x->index), "%zu", i);
		x->p[0] = org_id;
		x->p[1] = x->id;
		x->p[2] = e->practice_id != NULL ? e->practice_id : "";
		x->p[3] = x->status;
		x->p[4] = e->source != NULL ? e->source : "";
		x->p[5] = ""; /* the reporter: set in the body */
		x->p[6] = x->observe;
		x->p[7] = x->expire;
		x->p[8] = e->uri != NULL ? e->uri : "";
		x->p[9] = e->digest != NULL ? e->digest : "";
		x->p[10] = e->note != NULL ? e->note : "";
		x->p[11] = a.ins[0].id;
		x->p[12] = x->index;
	}
	snprintf(a.first, sizeof(a.first), "organizations/%s/evidence/%s", org_id, a.ins[0].id);
	if (batch)
		snprintf(a.resource, sizeof(a.resource), "organizations/%s", org_id);
	else
		snprintf(a.resource, sizeof(a.resource), "%s", a.first);
	rc = store__transact(c, report_body, &a, err);
out:
	if (rc != MAT_OK) {
		report_out_clear(&a);
		free(a.out);
	} else {
		*out = a.out;
		*n_out = a.n_out;
	}
	free(a.ins);
	return rc;
}

/* --- get and list --------------------------------------------------------------------------- */

enum mat_code store_evidence_get(const struct store_call *c, const char *org_id, const char *id,
                                 struct mat_evidence *out, struct mat_error *err)
{
	char nid[STORE_UUID_TEXT];
	uint8_t b[16];
	const char *params[2] = {org_id, nid};
	struct store__cmd cmd = {.st = &st_ev_get, .params = params};
	enum mat_code rc;

	memset(out, 0, sizeof(*out));
	if (!org_ok(org_id) || id == NULL || !store__uuid_parse(id, b))
		return mat_error_set(err, MAT_NOT_FOUND, "organizations/%s/evidence/%s not found",
		                     org_id != NULL ? org_id : "", id != NULL ? id : "");
	store__uuid_format(b, nid);
	rc = store__read(c, &cmd, 1, err);
	if (rc != MAT_OK)
		return rc;
	if (PQntuples(cmd.res) == 0)
		rc = mat_error_set(err, MAT_NOT_FOUND, "organizations/%s/evidence/%s not found",
		                   org_id, nid);
	else
		rc = evidence_from_row(cmd.res, 0, out, err);
	store__cmds_clear(&cmd, 1);
	return rc;
}

/* Binds a page token to what selects rows (not to visibility, re-applied on every page). */
static uint64_t list_filter(const char *org_id, const char *practice_id, bool include_expired)
{
	uint8_t x = include_expired ? 1 : 0, all = org_id == NULL;
	uint64_t h = store__fnv64(STORE_FNV64_INIT, "evidence", 9); /* with the NUL */

	h = store__fnv64(h, &all, 1);
	if (!all)
		h = store__fnv64(h, org_id, strlen(org_id) + 1);
	h = store__fnv64(h, practice_id, strlen(practice_id) + 1);
	return store__fnv64(h, &x, 1);
}

enum mat_code store_evidence_list(const struct store_call *c, const char *org_id,
                                  const char *practice_id, bool include_expired, mat_time_us now,
                                  int page_size, const char *page_token, struct mat_evidence **out,
                                  size_t *n_out, char **next_token, struct mat_error *err)
{
	const char *pid = practice_id != NULL ? practice_id : "";
	char now_t[STORE_TIME_TEXT], before_t[STORE_TIME_TEXT] = "infinity";
	char before_id[STORE_UUID_TEXT] = "ffffffff-ffff-ffff-ffff-ffffffffffff";
	char limit[16], floor_t[STORE_TIME_TEXT] = "-infinity";
	char before_org[MAT_MAX_ORG_ID + 1] = "~"; /* after every id: [a-z][a-z0-9-] */
	const char *params[11] = {org_id,
	                          pid,
	                          include_expired ? "true" : "false",
	                          now_t,
	                          before_t,
	                          before_id,
	                          limit,
	                          floor_t,
	                          before_org,
	                          c->only_visible ? "true" : "false",
	                          c->principal != NULL ? c->principal : ""};
	struct store__cmd cmds[2] = {
	    {.st = &st_ev_org_exists, .params = params},
	    {.st = pid[0] != '\0' ? &st_ev_page_of : &st_ev_page, .params = params}};
	struct store__cmd *page_cmd = &cmds[1];
	size_t n_cmds = 2;
	char token[STORE_TOKEN_MAX_TEXT] = "";
	struct mat_evidence *list = NULL;
	size_t n = 0;
	int rows;
	enum mat_code rc;

	*out = NULL;
	*n_out = 0;
	*next_token = NULL;
	if (org_id == NULL) {
		/* Every organization the caller may see: no existence check to make. */
		cmds[0] = (struct store__cmd){.st = &st_ev_page_all, .params = params};
		page_cmd = &cmds[0];
		n_cmds = 1;
	} else if (!org_ok(org_id)) {
		return org_not_found(err, org_id);
	}
	if (page_size <= 0)
		page_size = MAT_PAGE_SIZE_DEFAULT;
	if (page_size > MAT_PAGE_SIZE_MAX)
		page_size = MAT_PAGE_SIZE_MAX;
	if (page_token != NULL && page_token[0] != '\0') {
		uint8_t key[STORE_TOKEN_MAX_KEY], uuid[16];
		size_t klen;
		int64_t t;
		rc =
		    store__token_decode(page_token, STORE_LIST_EVIDENCE,
		                        list_filter(org_id, pid, include_expired), key, &klen, err);
		if (rc != MAT_OK)
			return rc;
		if (!store__key_pos_unpack(key, klen, &t, uuid, before_org, sizeof(before_org)))
			return mat_error_field(err, "page_token", "invalid page token");
		store__time_text(t, before_t);
		store__uuid_format(uuid, before_id);
	}
	store__time_text(now, now_t);
	if (!include_expired)
		store__time_text(now - MAT_EVIDENCE_MAX_LIFE_US, floor_t);
	/* One row more than the page tells whether there is a next page. */
	snprintf(limit, sizeof(limit), "%d", page_size + 1);
	rc = store__read(c, cmds, n_cmds, err);
	if (rc != MAT_OK)
		return rc;
	if (org_id != NULL && PQntuples(cmds[0].res) == 0) {
		rc = org_not_found(err, org_id);
		goto out;
	}
	rows = PQntuples(page_cmd->res);
	if (rows > page_size)
		rows = page_size;
	list = calloc(rows > 0 ? (size_t)rows : 1, sizeof(*list));
	if (list == NULL) {
		rc = store__oom(err);
		goto out;
	}
	for (; n < (size_t)rows; n++) {
		rc = evidence_from_row(page_cmd->res, (int)n, &list[n], err);
		if (rc != MAT_OK)
			goto out;
	}
	if (PQntuples(page_cmd->res) > page_size) {
		uint8_t key[STORE_TOKEN_MAX_KEY], uuid[16];
		size_t klen;
		(void)store__uuid_parse(list[n - 1].id, uuid);
		klen = store__key_pos_pack(list[n - 1].observe_time, uuid,
		                           org_id == NULL ? list[n - 1].org_id : "", key);
		store__token_encode(STORE_LIST_EVIDENCE, list_filter(org_id, pid, include_expired),
		                    key, klen, token);
	}
	*next_token = strdup(token);
	rc = *next_token != NULL ? MAT_OK : store__oom(err);
out:
	store__cmds_clear(cmds, n_cmds);
	if (rc != MAT_OK) {
		evidence_free(list, n);
		return rc;
	}
	*out = list;
	*n_out = n;
	return MAT_OK;
}

/* --- live score inputs ---------------------------------------------------------------------- */

void store_live_inputs_cleanup(struct store_live_inputs *in)
{
	if (in == NULL)
		return;
	mat_organization_cleanup(&in->org);
	mat_assessment_cleanup(&in->submitted);
	evidence_free(in->evidence, in->n_evidence);
	memset(in, 0, sizeof(*in));
}

/* The live-score inputs from the results of the four commands below (one round trip, one
 * snapshot: the organization's id and level, its last submitted assessment with the practice and
 * status of its answers, and the current evidence of each practice). */
static enum mat_code live_decode(struct store__cmd *cmds, const char *org_id,
                                 struct store_live_inputs *out, struct mat_error *err)
{
	enum mat_code rc;

	if (PQntuples(cmds[0].res) == 0)
		return org_not_found(err, org_id);
	{
		struct store__row r = {.res = cmds[0].res, .row = 0};

		out->org.id = store__text0(&r, 0);
		out->org.current_level = (int)store__int(&r, 1);
		rc = r.oom ? store__oom(err) : MAT_OK;
	}
	if (rc == MAT_OK && PQntuples(cmds[1].res) > 0) {
		rc = store__assessment_from_row(cmds[1].res, 0, &out->submitted, err);
		if (rc == MAT_OK)
			rc = live_answers(cmds[2].res, &out->submitted, err);
	}
	if (rc == MAT_OK)
		rc = rows_with(cmds[3].res, live_from_row, &out->evidence, &out->n_evidence, err);
	if (rc != MAT_OK)
		store_live_inputs_cleanup(out);
	return rc;
}

static void live_cmds(struct store__cmd cmds[4], const char *const *params)
{
	cmds[0] = (struct store__cmd){.st = &st_live_org, .params = params};
	cmds[1] = (struct store__cmd){.st = &st_live_asm, .params = params};
	cmds[2] = (struct store__cmd){.st = &st_live_ans, .params = params};
	cmds[3] = (struct store__cmd){.st = &st_ev_current, .params = params};
}

enum mat_code store_live_inputs_get(const struct store_call *c, const char *org_id, mat_time_us now,
                                    struct store_live_inputs *out, struct mat_error *err)
{
	char t[STORE_TIME_TEXT];
	const char *params[3] = {org_id, practice_array(), t};
	struct store__cmd cmds[4];
	enum mat_code rc;

	memset(out, 0, sizeof(*out));
	if (!org_ok(org_id))
		return org_not_found(err, org_id);
	store__time_text(now, t);
	live_cmds(cmds, params);
	rc = store__read(c, cmds, 4, err);
	if (rc != MAT_OK)
		return rc;
	rc = live_decode(cmds, org_id, out, err);
	store__cmds_clear(cmds, 4);
	return rc;
}

static enum mat_code live_adecode(struct store__aget *g, struct mat_error *err)
{
	return live_decode(g->cmds, g->keys[0], g->out, err);
}

void store_live_inputs_get_async(const struct store_call *c, const char *org_id, mat_time_us now,
                                 struct store_live_inputs *out, struct mat_error *err,
                                 store_done_fn done, void *arg)
{
	struct store__aget *g;

	memset(out, 0, sizeof(*out));
	if (!org_ok(org_id)) {
		done(arg, org_not_found(err, org_id));
		return;
	}
	g = store__aget_new(c, err, done, arg);
	if (g == NULL)
		return;
	snprintf(g->keys[0], sizeof(g->keys[0]), "%s", org_id);
	store__time_text(now, g->keys[1]);
	g->params[0] = g->keys[0];
	g->params[1] = practice_array();
	g->params[2] = g->keys[1];
	live_cmds(g->cmds, g->params);
	g->decode = live_adecode;
	g->out = out;
	store__aget_start(g, 4);
}
