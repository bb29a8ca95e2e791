/* Reporting (ReportingService): the portfolio summary and the two exports. Both read across
 * organizations with bounded memory: the summary walks organizations in keyset batches and
 * scores each one's last submitted assessment in C (scoring is a pure function of the model and
 * the answers, so it is not duplicated in SQL); an export returns one keyset batch per call with
 * a cursor per record, and the caller streams it and asks for the next. Both exports are one
 * driver (export_batch: cursor, watermark, snapshot, keyset) with a per-kind part (struct
 * export_kind: the batch's statements and how their rows become records). */
#include "mat_model.h"
#include "mat_score.h"
#include "mat_validate.h"
#include "store_internal.h"
#include "store_token.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define DEFAULT_MODEL "mlops-v1"
/* Organizations per round trip of the summary: 500 x (at most MAT_MAX_PRACTICES answer rows)
 * keeps a batch's result to a few megabytes however large the portfolio. */
#define PORTFOLIO_BATCH 500
#define EXPORT_BATCH_DEFAULT 100
#define EXPORT_BATCH_MAX 1000

/* --- portfolio ------------------------------------------------------------------------------ */

/* One batch of organizations (by id, after $2) with the answers of each one's last submitted
 * assessment: one row per answer, or one row with NULL practice when it has none (or no
 * assessment). Rows of one organization are adjacent. The LIMIT 1 keeps the lateral subquery
 * from being flattened: otherwise the planner may hash-join the whole assessments table for
 * every batch (measured: a sequential scan of 50,000 rows per batch of 500 organizations)
 * instead of 500 primary-key lookups. */
#define PF_ORGS                                                                               \
	"SELECT o.id, o.current_level, o.target_level, o.last_assessment_id "                 \
	"FROM organizations o WHERE o.labels @> $1::jsonb AND o.id > $2 AND " STORE__VISIBLE( \
	    "$3", "$4", "o.id") " ORDER BY o.id LIMIT $5::int"
STORE__STMT(st_pf_batch, 5,
            "SELECT o.id, o.current_level, o.target_level, a.model_id, x.practice_id, x.status "
            "FROM (" PF_ORGS ") o LEFT JOIN LATERAL (SELECT a.org_id, a.id, a.model_id "
            "FROM assessments a WHERE a.org_id = o.id AND a.id = o.last_assessment_id AND "
            "a.state = 2 LIMIT 1) a ON true LEFT JOIN answers x ON x.org_id = a.org_id AND "
            "x.assessment_id = a.id ORDER BY o.id");
/* APPLIED transitions of those organizations decided in [$4, $5). */
STORE__STMT(st_pf_moves, 5,
            "SELECT count(*) FILTER (WHERE t.direction = 1), "
            "count(*) FILTER (WHERE t.direction = 2) FROM transitions t "
            "JOIN organizations o ON o.id = t.org_id WHERE t.state = 2 AND "
            "t.decide_time >= $4::timestamptz AND t.decide_time < $5::timestamptz AND "
            "o.labels @> $1::jsonb AND " STORE__VISIBLE("$2", "$3", "o.id"));

/* Where the dimensions of `m` go among those of the default model (by id: a future model may
 * order or name them differently); -1 for a dimension the summary does not count. */
static void dimension_map(const struct mat_model *def, size_t n_def, const struct mat_model *m,
                          int map[MAT_MAX_DIMENSIONS])
{
	for (size_t d = 0; d < m->n_dimensions && d < MAT_MAX_DIMENSIONS; d++) {
		map[d] = -1;
		for (size_t k = 0; k < n_def; k++) {
			if (strcmp(m->dimensions[d].id, def->dimensions[k].id) == 0)
				map[d] = (int)k;
		}
	}
}

struct pf_acc {
	const struct mat_model *def;
	struct store_portfolio *out;
	double index_sum;
	int64_t scored;
};

/* Counts one organization: rows [from, to) of a st_pf_batch result. */
static void pf_count_org(struct pf_acc *acc, const PGresult *r, int from, int to)
{
	struct store_portfolio *p = acc->out;
	int level = atoi(PQgetvalue(r, from, 1)), target = atoi(PQgetvalue(r, from, 2));
	const struct mat_model *m;
	struct mat_answer ans[MAT_MAX_PRACTICES];
	enum mat_status status[MAT_MAX_PRACTICES];
	struct mat_score score;
	int map[MAT_MAX_DIMENSIONS];
	size_t n = 0;

	p->organization_count++;
	if (level >= 0 && level <= MAT_MAX_LEVEL)
		p->organizations_per_level[level]++;
	if (level >= target)
		p->at_or_above_target_count++;
	if (PQgetisnull(r, from, 3))
		return; /* no submitted assessment */
	m = mat_model_find(PQgetvalue(r, from, 3));
	if (m == NULL || m->n_practices > MAT_MAX_PRACTICES)
		return; /* a model this binary does not know cannot be scored */
	/* Borrowed strings: only practice_id and status are read. Practices the model does not
	 * know (none: answers are validated on the way in) are left out rather than trusted. */
	for (int i = from; i < to; i++) {
		const char *pid = PQgetvalue(r, i, 4);
		if (PQgetisnull(r, i, 4) || mat_model_practice_index(m, pid, strlen(pid)) < 0)
			continue;
		if (n == MAT_MAX_PRACTICES)
			break;
		ans[n].practice_id = (char *)pid;
		ans[n].status = (enum mat_status)atoi(PQgetvalue(r, i, 5));
		n++;
	}
	mat_answers_to_status(m, ans, n, status);
	mat_score_compute(m, status, &score);
	dimension_map(acc->def, p->n_dimensions, m, map);
	for (size_t d = 0; d < score.n_dimensions && d < m->n_dimensions && d < MAT_MAX_DIMENSIONS;
	     d++) {
		int lv = score.dimensions[d].level;
		if (map[d] >= 0 && lv >= 0 && lv <= MAT_MAX_LEVEL)
			p->dimension_per_level[map[d]][lv]++;
	}
	acc->index_sum += score.maturity_index;
	acc->scored++;
}

enum mat_code store_portfolio_summary(const struct store_call *c, const struct mat_label *labels,
                                      size_t n_labels, mat_time_us start_time, mat_time_us end_time,
                                      struct store_portfolio *out, struct mat_error *err)
{
	struct pf_acc acc = {.def = mat_model_find(DEFAULT_MODEL), .out = out};
	char after[MAT_MAX_ORG_ID + 1] = "", limit[16], start[STORE_TIME_TEXT],
	                            end[STORE_TIME_TEXT];
	char *json = NULL;
	const char *vis = c->only_visible ? "true" : "false";
	const char *principal = c->principal != NULL ? c->principal : "";
	const char *params[5] = {NULL, after, vis, principal, limit};
	const char *p_moves[5] = {NULL, vis, principal, start, end};
	enum mat_code rc = MAT_OK;

	memset(out, 0, sizeof(*out));
	if (acc.def == NULL)
		return mat_error_set(err, MAT_INTERNAL, "model %s is not built in", DEFAULT_MODEL);
	out->n_dimensions = acc.def->n_dimensions < MAT_MAX_DIMENSIONS_STORE
	                        ? acc.def->n_dimensions
	                        : MAT_MAX_DIMENSIONS_STORE;
	if (n_labels > 0 && labels == NULL)
		return mat_error_field(err, "labels", "missing");
	json = store__labels_json(labels, n_labels);
	if (json == NULL)
		return store__oom(err);
	params[0] = p_moves[0] = json;
	store__time_text(start_time != 0 ? start_time : INT64_MIN, start);
	store__time_text(end_time != 0 ? end_time : INT64_MAX, end);
	snprintf(limit, sizeof(limit), "%d", PORTFOLIO_BATCH);
	/* Each batch is its own snapshot (a summary over many organizations must not hold one
	 * open for long); every organization is counted exactly once, from one consistent row.
	 * The first batch also counts the transitions, in the same snapshot. */
	for (bool first = true;; first = false) {
		struct store__cmd cmds[2];
		size_t k = 0, b;
		int rows, from = 0, groups = 0;

		if (first)
			cmds[k++] = (struct store__cmd){.st = &st_pf_moves, .params = p_moves};
		b = k;
		cmds[k++] = (struct store__cmd){.st = &st_pf_batch, .params = params};
		rc = store__read(c, cmds, k, err);
		if (rc != MAT_OK)
			break;
		if (first) {
			out->upgrades = strtoll(PQgetvalue(cmds[0].res, 0, 0), NULL, 10);
			out->regressions = strtoll(PQgetvalue(cmds[0].res, 0, 1), NULL, 10);
		}
		rows = PQntuples(cmds[b].res);
		while (from < rows) {
			const char *id = PQgetvalue(cmds[b].res, from, 0);
			int to = from + 1;
			while (to < rows && strcmp(PQgetvalue(cmds[b].res, to, 0), id) == 0)
				to++;
			pf_count_org(&acc, cmds[b].res, from, to);
			groups++;
			from = to;
		}
		if (rows > 0)
			snprintf(after, sizeof(after), "%s", PQgetvalue(cmds[b].res, rows - 1, 0));
		store__cmds_clear(cmds, k);
		if (groups < PORTFOLIO_BATCH)
			break;
	}
	free(json);
	if (rc != MAT_OK) {
		memset(out, 0, sizeof(*out));
		return rc;
	}
	out->mean_maturity_index = acc.scored > 0 ? acc.index_sum / (double)acc.scored : 0.0;
	return MAT_OK;
}

/* --- exports -------------------------------------------------------------------------------- */

/* Cursors are positions (update_time, org id, id) in the export's order, not bound to the
 * request's filters: a cursor resumes after its record whatever the filters (which are re-applied
 * on every batch), and names its export so the other export refuses it. */
static uint64_t export_filter(enum store__list which)
{
	return which == STORE_LIST_EXPORT_ASSESSMENTS
	           ? store__fnv64(STORE_FNV64_INIT, "export-assessments", 18)
	           : store__fnv64(STORE_FNV64_INIT, "export-transitions", 18);
}

struct position {
	char time[STORE_TIME_TEXT];
	char org[MAT_MAX_ORG_ID + 1];
	char id[STORE_UUID_TEXT];
};

/* The position after which a batch starts: the cursor's record, or before everything. */
static enum mat_code cursor_decode(enum store__list which, const char *cursor, struct position *p,
                                   struct mat_error *err)
{
	uint8_t key[STORE_TOKEN_MAX_KEY], uuid[16];
	size_t klen;
	int64_t t;
	enum mat_code rc;

	snprintf(p->time, sizeof(p->time), "-infinity");
	p->org[0] = '\0';
	snprintf(p->id, sizeof(p->id), "00000000-0000-0000-0000-000000000000");
	if (cursor == NULL || cursor[0] == '\0')
		return MAT_OK;
	rc = store__token_decode_field(cursor, which, export_filter(which), "cursor", key, &klen,
	                               err);
	if (rc != MAT_OK)
		return rc;
	if (!store__key_pos_unpack(key, klen, &t, uuid, p->org, sizeof(p->org)))
		return mat_error_field(err, "cursor", "invalid cursor");
	store__time_text(t, p->time);
	store__uuid_format(uuid, p->id);
	return MAT_OK;
}

/* The cursor that resumes right after the record (org, id) updated at `time_us`; malloc'd. */
static char *cursor_encode(enum store__list which, int64_t time_us, const char *org, const char *id)
{
	uint8_t key[STORE_TOKEN_MAX_KEY], uuid[16];
	char text[STORE_TOKEN_MAX_TEXT];
	size_t klen;

	if (!store__uuid_parse(id, uuid) || strlen(org) > MAT_MAX_ORG_ID)
		return NULL; /* cannot happen: ids come from the database */
	klen = store__key_pos_pack(time_us, uuid, org, key);
	store__token_encode(which, export_filter(which), key, klen, text);
	return strdup(text);
}

static int clamp_batch(int batch)
{
	if (batch <= 0)
		return EXPORT_BATCH_DEFAULT;
	return batch > EXPORT_BATCH_MAX ? EXPORT_BATCH_MAX : batch;
}

#define ASM_COLS STORE__ASM_COLS
/* The answers with their assessment's organization and id (merged by both), then from column 2
 * what store__answers_from_rows reads. */
#define ANS_COLS "x.org_id, " STORE__ANS_COLS
/* One batch of ExportAssessments. The redundant `update_time >= position` lets the
 * (org_id, update_time, id) index start at the position; the row comparison does the rest. */
#define ASM_ORG_BATCH                                                                              \
	"FROM assessments a WHERE a.org_id = $1 AND ($2::smallint = 0 OR a.state = $2::smallint) " \
	"AND a.update_time > $3::timestamptz AND a.update_time >= $4::timestamptz "                \
	"AND (a.update_time, a.org_id, a.id) > ($4::timestamptz, $5::text, $6::uuid) "             \
	"AND a.update_time < $8::timestamptz "                                                     \
	"ORDER BY a.update_time, a.org_id, a.id LIMIT $7::int"
#define ASM_ALL_BATCH                                                                  \
	"FROM assessments a WHERE ($1::smallint = 0 OR a.state = $1::smallint) "       \
	"AND a.update_time > $2::timestamptz "                                         \
	"AND (a.update_time, a.org_id, a.id) > ($3::timestamptz, $4::text, $5::uuid) " \
	"AND a.update_time < $9::timestamptz "                                         \
	"AND " STORE__VISIBLE("$6", "$7",                                              \
	                      "a.org_id") " ORDER BY a.update_time, a.org_id, a.id LIMIT $8::int"
/* The answers of the batch's assessments, in the batch's order (run in the same snapshot). */
#define ANS_OF(batch)                                                                  \
	"SELECT " ANS_COLS " FROM (SELECT a.org_id, a.id, a.update_time " batch ") p " \
	"JOIN answers x ON x.org_id = p.org_id AND x.assessment_id = p.id "            \
	"ORDER BY p.update_time, p.org_id, p.id, x.practice_id"

STORE__STMT(st_exp_asm_org, 8, "SELECT " ASM_COLS " " ASM_ORG_BATCH);
STORE__STMT(st_exp_ans_org, 8, ANS_OF(ASM_ORG_BATCH));
STORE__STMT(st_exp_asm_all, 9, "SELECT " ASM_COLS " " ASM_ALL_BATCH);
STORE__STMT(st_exp_ans_all, 9, ANS_OF(ASM_ALL_BATCH));

#define TR_COLS STORE__TR_COLS
#define TR_ORG_BATCH                                                                   \
	"FROM transitions t WHERE t.org_id = $1 AND t.update_time >= $2::timestamptz " \
	"AND t.update_time >= $3::timestamptz "                                        \
	"AND (t.update_time, t.org_id, t.id) > ($3::timestamptz, $4::text, $5::uuid) " \
	"AND t.update_time < $7::timestamptz "                                         \
	"ORDER BY t.update_time, t.org_id, t.id LIMIT $6::int"
#define TR_ALL_BATCH                                                                   \
	"FROM transitions t WHERE t.update_time >= $1::timestamptz "                   \
	"AND (t.update_time, t.org_id, t.id) > ($2::timestamptz, $3::text, $4::uuid) " \
	"AND t.update_time < $8::timestamptz "                                         \
	"AND " STORE__VISIBLE("$5", "$6",                                              \
	                      "t.org_id") " ORDER BY t.update_time, t.org_id, t.id LIMIT $7::int"

STORE__STMT(st_exp_tr_org, 7, "SELECT " TR_COLS " " TR_ORG_BATCH);
STORE__STMT(st_exp_org_exists, 1, "SELECT 1 FROM organizations WHERE id = $1");
STORE__STMT(st_exp_tr_all, 8, "SELECT " TR_COLS " " TR_ALL_BATCH);

/* The export watermark. Rows carry update_time = now() of the transaction that wrote them, i.e.
 * its start, and become visible only at its commit: a transaction that started before an
 * export's position and commits after the export passed it would be skipped for good (and by
 * every resume from a later cursor). So a batch only goes up to the start of the oldest
 * transaction still open on this database: everything before it is committed (or never will
 * be), and rows past it come in a later batch or a later resume. Read in a round trip of its
 * own, before the batch's snapshot is taken, so a transaction that commits in between is either
 * seen running here or visible there. now(), not the clock, when nothing runs: a transaction
 * that starts after this statement has update_time >= now(). Long-open transactions (an
 * operator's idle session) hold exports back; docs/operations.md says so. */
STORE__STMT(st_exp_watermark, 0,
            "SELECT mat_epoch_us(least(now(), min(a.xact_start))) FROM pg_stat_activity a "
            "WHERE a.datname = current_database() AND a.backend_type = 'client backend' "
            "AND a.pid <> pg_backend_pid() AND a.xact_start IS NOT NULL");

static enum mat_code export_watermark(const struct store_call *c, char out[STORE_TIME_TEXT],
                                      struct mat_error *err)
{
	struct store__cmd cmd = {.st = &st_exp_watermark};
	struct store__row r;
	enum mat_code rc = store__read(c, &cmd, 1, err);

	if (rc != MAT_OK)
		return rc;
	r = (struct store__row){.res = cmd.res, .row = 0};
	store__time_text(store__int(&r, 0), out);
	store__cmds_clear(&cmd, 1);
	return MAT_OK;
}

static void free_cursors(char **cursors, size_t n)
{
	if (cursors == NULL)
		return;
	for (size_t i = 0; i < n; i++)
		free(cursors[i]);
	free(cursors);
}

/* What makes one export different from the other: its statements and how their results become
 * records. The driver (export_batch) does the rest: cursor, watermark, the organization's
 * existence, one read in one snapshot, a cursor per record, and cleanup on failure. */
struct export_kind {
	enum store__list which; /* names its cursors */
	/* The batch's statements (at most 2; 1 = the records alone), within one organization and
	 * across the visible ones. Parameters, within one: org_id, the filters, the position
	 * (time, org, id), limit, watermark; across: the filters, the position, only_visible,
	 * principal, limit, watermark. */
	struct store__stmt *org[2], *all[2];
	size_t n_stmts, n_filters;
	size_t rec_size;
	/* Record i of the batch from res[0..n_stmts) (*aux: the kind's position in its other
	 * results, 0 at the start). On failure the record may hold partial data (cleaned up). */
	enum mat_code (*decode)(const struct store__cmd *res, int i, int *aux, void *rec,
	                        struct mat_error *err);
	/* After the last record: what must hold of the whole batch (NULL: nothing). */
	enum mat_code (*finish)(const struct store__cmd *res, int aux, struct mat_error *err);
	/* The record's position, for its cursor. */
	void (*key)(const void *rec, int64_t *time_us, const char **org, const char **id);
	void (*cleanup)(void *rec);
};

/* An organization the caller named: checked before anything else (the caller's own checks
 * come after it). */
static enum mat_code export_org_check(const char *org_id, struct mat_error *err)
{
	if (org_id != NULL && (org_id[0] == '\0' || strlen(org_id) > MAT_MAX_ORG_ID))
		return mat_error_set(err, MAT_NOT_FOUND, "organizations/%s not found", org_id);
	return MAT_OK;
}

/* The batch's statements after position `pos` (read after the watermark `wm`): cmds[0..*n_cmds),
 * the records' first statement at cmds[*b]. `params` (9) and `limit` (16) hold what the
 * statements point to, as long as they run. */
static void export_cmds(const struct store_call *c, const struct export_kind *k, const char *org_id,
                        const char *const *filters, const struct position *pos, int batch,
                        const char *wm, char *limit, const char **params, struct store__cmd *cmds,
                        size_t *n_cmds, size_t *b)
{
	size_t np = 0;

	*n_cmds = 0;
	snprintf(limit, 16, "%d", clamp_batch(batch));
	if (org_id != NULL)
		params[np++] = org_id;
	for (size_t i = 0; i < k->n_filters; i++)
		params[np++] = filters[i];
	params[np++] = pos->time;
	params[np++] = pos->org;
	params[np++] = pos->id;
	if (org_id == NULL) {
		params[np++] = c->only_visible ? "true" : "false";
		params[np++] = c->principal != NULL ? c->principal : "";
	}
	params[np++] = limit;
	params[np++] = wm;
	if (org_id != NULL)
		cmds[(*n_cmds)++] = (struct store__cmd){.st = &st_exp_org_exists, .params = params};
	*b = *n_cmds;
	for (size_t i = 0; i < k->n_stmts; i++)
		cmds[(*n_cmds)++] = (struct store__cmd){
		    .st = org_id != NULL ? k->org[i] : k->all[i], .params = params};
}

/* The batch's records and their cursors from what its statements read (cmds[b] on). */
static enum mat_code export_records(const struct export_kind *k, bool named_org, const char *org_id,
                                    const struct store__cmd *cmds, size_t b, void **out,
                                    char ***cursors, size_t *n_out, struct mat_error *err)
{
	char *list = NULL;
	char **curs = NULL;
	size_t n = 0;
	int rows, aux = 0;
	enum mat_code rc;

	if (named_org && PQntuples(cmds[0].res) == 0)
		return mat_error_set(err, MAT_NOT_FOUND, "organizations/%s not found", org_id);
	rows = PQntuples(cmds[b].res);
	list = calloc(rows > 0 ? (size_t)rows : 1, k->rec_size);
	curs = calloc(rows > 0 ? (size_t)rows : 1, sizeof(*curs));
	if (list == NULL || curs == NULL) {
		rc = store__oom(err);
		goto out;
	}
	for (; n < (size_t)rows; n++) {
		void *rec = list + n * k->rec_size;
		int64_t time_us;
		const char *org, *id;

		rc = k->decode(&cmds[b], (int)n, &aux, rec, err);
		if (rc == MAT_OK) {
			k->key(rec, &time_us, &org, &id);
			curs[n] = cursor_encode(k->which, time_us, org, id);
			if (curs[n] == NULL)
				rc = store__oom(err);
		}
		if (rc != MAT_OK) {
			n++; /* list[n] and curs[n] may hold partial data: clean them up too */
			goto out;
		}
	}
	rc = k->finish != NULL ? k->finish(&cmds[b], aux, err) : MAT_OK;
out:
	if (rc != MAT_OK) {
		for (size_t i = 0; list != NULL && i < n; i++)
			k->cleanup(list + i * k->rec_size);
		free(list);
		free_cursors(curs, n);
		return rc;
	}
	*out = list;
	*cursors = curs;
	*n_out = n;
	return MAT_OK;
}

/* One batch of export `k` after `cursor`: *out (k->rec_size each) and *cursors, *n_out of each;
 * `filters` are the kind's k->n_filters parameters. */
static enum mat_code export_batch(const struct store_call *c, const struct export_kind *k,
                                  const char *org_id, const char *const *filters,
                                  const char *cursor, int batch, void **out, char ***cursors,
                                  size_t *n_out, struct mat_error *err)
{
	struct position pos;
	char limit[16], wm[STORE_TIME_TEXT];
	const char *params[9];
	struct store__cmd cmds[3];
	size_t n_cmds, b;
	enum mat_code rc;

	*out = NULL;
	*cursors = NULL;
	*n_out = 0;
	rc = cursor_decode(k->which, cursor, &pos, err);
	if (rc == MAT_OK)
		rc = export_watermark(c, wm, err);
	if (rc != MAT_OK)
		return rc;
	export_cmds(c, k, org_id, filters, &pos, batch, wm, limit, params, cmds, &n_cmds, &b);
	/* One snapshot: the statements of a batch select the same records. */
	rc = store__read(c, cmds, n_cmds, err);
	if (rc == MAT_OK)
		rc = export_records(k, org_id != NULL, org_id, cmds, b, out, cursors, n_out, err);
	store__cmds_clear(cmds, n_cmds);
	return rc;
}

/* --- the same batch on the storage loop ------------------------------------------------------ */

/* Two reads, as export_batch's: the watermark, then the batch in one snapshot, both on the
 * loop's bulk connections. Everything the statements point to lives here. */
struct store_export_read {
	struct store__aread r;
	const struct export_kind *k;
	bool named_org;
	bool batch_phase; /* the watermark is in; the batch's read is the one in flight */
	char org[MAT_MAX_ORG_ID + 1];
	char filters[2][STORE_TIME_TEXT];
	const char *fparams[2];
	struct position pos;
	int batch;
	char limit[16], wm[STORE_TIME_TEXT];
	const char *params[9];
	struct store__cmd wm_cmd, cmds[3];
	size_t n_cmds, b;
	store_done_fn done;
	void *arg;
};

static void xread_complete(struct store__aread *r, enum mat_code rc)
{
	struct store_export_read *x = (struct store_export_read *)r;

	if (rc == MAT_OK && !x->batch_phase) {
		struct store__row row = {.res = x->wm_cmd.res, .row = 0};

		store__time_text(store__int(&row, 0), x->wm);
		store__cmds_clear(&x->wm_cmd, 1);
		x->batch_phase = true;
		export_cmds(r->c, x->k, x->named_org ? x->org : NULL, x->fparams, &x->pos, x->batch,
		            x->wm, x->limit, x->params, x->cmds, &x->n_cmds, &x->b);
		r->cmds = x->cmds;
		r->n = x->n_cmds;
		store__read_async(r->c->pool, r);
		return;
	}
	store__cmds_clear(&x->wm_cmd, 1);
	x->done(x->arg, rc);
}

/* Starts x's reads; done runs at once when the request is bad (err says why). */
static void xread_start(const struct store_call *c, struct store_export_read *x,
                        const struct export_kind *k, const char *org_id, const char *cursor,
                        int batch, struct mat_error *err, store_done_fn done, void *arg)
{
	enum mat_code rc;

	x->k = k;
	x->batch = batch;
	x->done = done;
	x->arg = arg;
	x->named_org = org_id != NULL;
	if (org_id != NULL)
		snprintf(x->org, sizeof(x->org), "%s", org_id);
	for (size_t i = 0; i < k->n_filters; i++)
		x->fparams[i] = x->filters[i];
	rc = cursor_decode(k->which, cursor, &x->pos, err);
	if (rc != MAT_OK) {
		done(arg, rc);
		return;
	}
	x->r.c = c;
	x->r.err = err;
	x->r.complete = xread_complete;
	x->r.bulk = true;
	x->wm_cmd = (struct store__cmd){.st = &st_exp_watermark};
	x->r.cmds = &x->wm_cmd;
	x->r.n = 1;
	store__read_async(c->pool, &x->r);
}

/* A zeroed read, or NULL after done(arg, MAT_INTERNAL). */
static struct store_export_read *xread_new(struct store_export_read **rd, struct mat_error *err,
                                           store_done_fn done, void *arg)
{
	*rd = calloc(1, sizeof(**rd));
	if (*rd == NULL)
		done(arg, store__oom(err));
	return *rd;
}

static enum mat_code xread_decode(struct store_export_read *x, const struct export_kind *k,
                                  void **out, char ***cursors, size_t *n_out, struct mat_error *err)
{
	enum mat_code rc;

	*out = NULL;
	*cursors = NULL;
	*n_out = 0;
	if (x == NULL || x->k != k || !x->batch_phase) {
		store_export_read_free(x);
		return mat_error_set(err, MAT_INTERNAL, "export: no batch read to decode");
	}
	rc = export_records(k, x->named_org, x->org, x->cmds, x->b, out, cursors, n_out, err);
	store_export_read_free(x);
	return rc;
}

void store_export_read_free(struct store_export_read *rd)
{
	if (rd == NULL)
		return;
	store__cmds_clear(&rd->wm_cmd, 1);
	store__cmds_clear(rd->cmds, rd->n_cmds);
	free(rd);
}

/* --- ExportAssessments ---------------------------------------------------------------------- */

/* An assessment, then its answers: the answer rows (in the batch's order) from *arow on that
 * belong to it. */
static enum mat_code asm_decode(const struct store__cmd *res, int i, int *arow, void *rec,
                                struct mat_error *err)
{
	struct mat_assessment *a = rec;
	int end = *arow, n_ans = PQntuples(res[1].res);
	enum mat_code rc = store__assessment_from_row(res[0].res, i, a, err);

	if (rc != MAT_OK)
		return rc;
	while (end < n_ans && strcmp(PQgetvalue(res[1].res, end, 0), a->org_id) == 0 &&
	       strcmp(PQgetvalue(res[1].res, end, 1), a->id) == 0)
		end++;
	rc = store__answers_from_rows(res[1].res, *arow, end, 2, a, err);
	if (rc == MAT_OK)
		*arow = end;
	return rc;
}

static enum mat_code asm_finish(const struct store__cmd *res, int arow, struct mat_error *err)
{
	int n_ans = PQntuples(res[1].res);

	if (arow != n_ans) /* the merge lost step: a bug, never a silently short export */
		return mat_error_set(err, MAT_INTERNAL, "export: %d answers matched no assessment",
		                     n_ans - arow);
	return MAT_OK;
}

static void asm_key(const void *rec, int64_t *time_us, const char **org, const char **id)
{
	const struct mat_assessment *a = rec;

	*time_us = a->update_time;
	*org = a->org_id;
	*id = a->id;
}

static void asm_cleanup(void *rec)
{
	mat_assessment_cleanup(rec);
}

static const struct export_kind asm_export = {
    .which = STORE_LIST_EXPORT_ASSESSMENTS,
    .org = {&st_exp_asm_org, &st_exp_ans_org},
    .all = {&st_exp_asm_all, &st_exp_ans_all},
    .n_stmts = 2,
    .n_filters = 2, /* state, updated_after */
    .rec_size = sizeof(struct mat_assessment),
    .decode = asm_decode,
    .finish = asm_finish,
    .key = asm_key,
    .cleanup = asm_cleanup,
};

/* ExportAssessments' filters as text (st: 8, after: STORE_TIME_TEXT), or what is wrong. */
static enum mat_code asm_filters(const char *org_id, enum mat_assessment_state state,
                                 mat_time_us updated_after, char *st, char *after,
                                 struct mat_error *err)
{
	enum mat_code rc = export_org_check(org_id, err);

	if (rc != MAT_OK)
		return rc;
	if ((int)state < MAT_ASSESSMENT_STATE_UNSPECIFIED || (int)state > MAT_ASSESSMENT_SUBMITTED)
		return mat_error_field(err, "state", "unknown state");
	snprintf(st, 8, "%d", (int)state);
	store__time_text(updated_after != 0 ? updated_after : INT64_MIN, after);
	return MAT_OK;
}

enum mat_code store_export_assessments(const struct store_call *c, const char *org_id,
                                       enum mat_assessment_state state, mat_time_us updated_after,
                                       const char *cursor, int batch, struct mat_assessment **out,
                                       char ***cursors, size_t *n_out, struct mat_error *err)
{
	char st[8], after[STORE_TIME_TEXT];
	const char *filters[2] = {st, after};
	void *list = NULL;
	enum mat_code rc;

	*out = NULL;
	*cursors = NULL;
	*n_out = 0;
	rc = asm_filters(org_id, state, updated_after, st, after, err);
	if (rc != MAT_OK)
		return rc;
	rc = export_batch(c, &asm_export, org_id, filters, cursor, batch, &list, cursors, n_out,
	                  err);
	*out = list;
	return rc;
}

void store_export_assessments_read(const struct store_call *c, const char *org_id,
                                   enum mat_assessment_state state, mat_time_us updated_after,
                                   const char *cursor, int batch, struct store_export_read **rd,
                                   struct mat_error *err, store_done_fn done, void *arg)
{
	struct store_export_read *x = xread_new(rd, err, done, arg);
	enum mat_code rc;

	if (x == NULL)
		return;
	rc = asm_filters(org_id, state, updated_after, x->filters[0], x->filters[1], err);
	if (rc != MAT_OK) {
		done(arg, rc);
		return;
	}
	xread_start(c, x, &asm_export, org_id, cursor, batch, err, done, arg);
}

enum mat_code store_export_assessments_decode(struct store_export_read *rd,
                                              struct mat_assessment **out, char ***cursors,
                                              size_t *n_out, struct mat_error *err)
{
	void *list = NULL;
	enum mat_code rc = xread_decode(rd, &asm_export, &list, cursors, n_out, err);

	*out = list;
	return rc;
}

/* --- ExportTransitions ---------------------------------------------------------------------- */

static enum mat_code tr_decode(const struct store__cmd *res, int i, int *aux, void *rec,
                               struct mat_error *err)
{
	(void)aux;
	return store__transition_from_row(res[0].res, i, rec, err);
}

static void tr_key(const void *rec, int64_t *time_us, const char **org, const char **id)
{
	const struct mat_transition *t = rec;

	*time_us = t->update_time;
	*org = t->org_id;
	*id = t->id;
}

static void tr_cleanup(void *rec)
{
	mat_transition_cleanup(rec);
}

static const struct export_kind tr_export = {
    .which = STORE_LIST_EXPORT_TRANSITIONS,
    .org = {&st_exp_tr_org},
    .all = {&st_exp_tr_all},
    .n_stmts = 1,
    .n_filters = 1, /* start_time */
    .rec_size = sizeof(struct mat_transition),
    .decode = tr_decode,
    .key = tr_key,
    .cleanup = tr_cleanup,
};

enum mat_code store_export_transitions(const struct store_call *c, const char *org_id,
                                       mat_time_us start_time, const char *cursor, int batch,
                                       struct mat_transition **out, char ***cursors, size_t *n_out,
                                       struct mat_error *err)
{
	char start[STORE_TIME_TEXT];
	const char *filters[1] = {start};
	void *list = NULL;
	enum mat_code rc;

	*out = NULL;
	*cursors = NULL;
	*n_out = 0;
	rc = export_org_check(org_id, err);
	if (rc != MAT_OK)
		return rc;
	store__time_text(start_time != 0 ? start_time : INT64_MIN, start);
	rc =
	    export_batch(c, &tr_export, org_id, filters, cursor, batch, &list, cursors, n_out, err);
	*out = list;
	return rc;
}

void store_export_transitions_read(const struct store_call *c, const char *org_id,
                                   mat_time_us start_time, const char *cursor, int batch,
                                   struct store_export_read **rd, struct mat_error *err,
                                   store_done_fn done, void *arg)
{
	struct store_export_read *x = xread_new(rd, err, done, arg);
	enum mat_code rc;

	if (x == NULL)
		return;
	rc = export_org_check(org_id, err);
	if (rc != MAT_OK) {
		done(arg, rc);
		return;
	}
	store__time_text(start_time != 0 ? start_time : INT64_MIN, x->filters[0]);
	xread_start(c, x, &tr_export, org_id, cursor, batch, err, done, arg);
}

enum mat_code store_export_transitions_decode(struct store_export_read *rd,
                                              struct mat_transition **out, char ***cursors,
                                              size_t *n_out, struct mat_error *err)
{
	void *list = NULL;
	enum mat_code rc = xread_decode(rd, &tr_export, &list, cursors, n_out, err);

	*out = list;
	return rc;
}
