/* Assessments and their answers: create a DRAFT (UUIDv7 id, request_id idempotency), get, list
 * newest first (keyset on id), upsert answers all-or-nothing, submit (with the level transitions of
 * docs/api.md, in one transaction under the organization's row lock) and delete drafts. Answers are
 * returned in the catalog order of the assessment's model. */
#include "mat_live.h"
#include "mat_model.h"
#include "mat_score.h"
#include "mat_validate.h"
#include "store_internal.h"
#include "store_token.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define ASM_COLS STORE__ASM_COLS
#define ANS_COLS STORE__ANS_COLS
/* The page of ListAssessments: newest first, state 0 = any, strictly before the cursor. */
#define ASM_PAGE                                                                                   \
	"FROM assessments a WHERE a.org_id = $1 AND ($2::smallint = 0 OR a.state = $2::smallint) " \
	"AND a.id < $3::uuid ORDER BY a.id DESC LIMIT $4::int"

STORE__STMT(st_asm_insert, 5,
            "INSERT INTO assessments AS a (org_id, id, title, model_id, creator) "
            "VALUES ($1, $2::uuid, $3, $4, $5) RETURNING " ASM_COLS);
STORE__STMT(st_asm_get, 2,
            "SELECT " ASM_COLS " FROM assessments a "
            "WHERE a.org_id = $1 AND a.id = $2::uuid");
STORE__STMT(st_ans_get, 2,
            "SELECT " ANS_COLS " FROM answers x "
            "WHERE x.org_id = $1 AND x.assessment_id = $2::uuid ORDER BY x.practice_id");
STORE__STMT(st_org_exists, 1, "SELECT 1 FROM organizations WHERE id = $1");
STORE__STMT(st_asm_page, 4, "SELECT " ASM_COLS " " ASM_PAGE);
STORE__STMT(st_ans_page, 4,
            "SELECT " ANS_COLS " FROM answers x WHERE x.org_id = $1 AND x.assessment_id IN "
            "(SELECT a.id " ASM_PAGE ") ORDER BY x.assessment_id DESC, x.practice_id");
STORE__STMT(st_asm_lock, 2,
            "SELECT a.state, a.version, mat_epoch_us(a.create_time), a.model_id "
            "FROM assessments a WHERE a.org_id = $1 AND a.id = $2::uuid FOR UPDATE");
STORE__STMT(st_ans_upsert, 7,
            "INSERT INTO answers (org_id, assessment_id, practice_id, status, note, evidence_uri, "
            "updated_by) VALUES ($1, $2::uuid, $3, $4::smallint, $5, $6, $7) "
            "ON CONFLICT (org_id, assessment_id, practice_id) DO UPDATE SET "
            "status = EXCLUDED.status, note = EXCLUDED.note, evidence_uri = EXCLUDED.evidence_uri, "
            "update_time = EXCLUDED.update_time, updated_by = EXCLUDED.updated_by");
STORE__STMT(st_asm_touch, 2,
            "UPDATE assessments SET version = version + 1, update_time = now() "
            "WHERE org_id = $1 AND id = $2::uuid");
STORE__STMT(st_ans_status, 2,
            "SELECT x.practice_id, x.status FROM answers x "
            "WHERE x.org_id = $1 AND x.assessment_id = $2::uuid");
/* The organization row lock that serializes submissions and approvals (the chain invariant of
 * docs/api.md, "Level transitions"). */
STORE__STMT(st_org_lock_submit, 1,
            "SELECT o.current_level, o.transition_policy FROM organizations o "
            "WHERE o.id = $1 FOR NO KEY UPDATE");
STORE__STMT(st_asm_submit, 3,
            "UPDATE assessments SET state = 2, submitter = $3, submit_time = now(), "
            "update_time = now(), version = version + 1 WHERE org_id = $1 AND id = $2::uuid");
/* now() is this transaction's start, which can precede the commit of the proposal it
 * supersedes (it waited for the organization's lock): never decide before the proposal. */
STORE__STMT(st_tr_supersede, 2,
            "UPDATE transitions AS t SET state = 4, decider = $2, "
            "decide_time = greatest(now(), propose_time), "
            "update_time = greatest(now(), update_time), version = version + 1 "
            "WHERE org_id = $1 AND state = 1 RETURNING " STORE__TR_COLS);
/* applied_seq: the next in the organization's apply order (the row lock makes max + 1 safe;
 * the unique (org_id, applied_seq) constraint would catch a bug). */
STORE__STMT(
    st_tr_insert, 9,
    "INSERT INTO transitions AS t (org_id, id, assessment_id, from_level, to_level, direction, "
    "state, proposer, propose_time, decider, decide_time, reason, update_time, applied_seq) "
    "SELECT $1::text, $2::uuid, $3::uuid, $4::smallint, $5::smallint, $6::smallint, "
    "$7::smallint, $8::text, now(), CASE WHEN $7::smallint = 2 THEN $8::text END, "
    "CASE WHEN $7::smallint = 2 THEN now() END, $9::text, now(), "
    "CASE WHEN $7::smallint = 2 THEN coalesce(max(p.applied_seq), 0) + 1 END "
    "FROM transitions p WHERE p.org_id = $1::text RETURNING " STORE__TR_COLS);
STORE__STMT(st_org_submitted, 4,
            "UPDATE organizations AS o SET last_assessment_id = $2::uuid, "
            "current_level = CASE WHEN $3::bool THEN $4::smallint ELSE current_level END, "
            "version = version + 1, update_time = now() WHERE id = $1 RETURNING " STORE__ORG_COLS);
STORE__STMT(st_asm_delete, 2, "DELETE FROM assessments WHERE org_id = $1 AND id = $2::uuid");

#define AUTOMATIC_REASON "automatic policy"

/* --- names ---------------------------------------------------------------------------------- */

/* A canonical lower-case id from a caller's id; false if it cannot name an assessment. */
static bool norm_id(const char *id, char out[STORE_UUID_TEXT])
{
	uint8_t b[16];

	if (!store__uuid_parse(id, b))
		return false;
	store__uuid_format(b, out);
	return true;
}

static bool org_ok(const char *org_id)
{
	return org_id != NULL && org_id[0] != '\0' && strlen(org_id) <= MAT_MAX_ORG_ID;
}

static void resource_name(char *buf, size_t cap, const char *org_id, const char *id)
{
	snprintf(buf, cap, "organizations/%s/assessments/%s", org_id, id);
}

static enum mat_code not_found(struct mat_error *err, const char *org_id, const char *id)
{
	return mat_error_set(err, MAT_NOT_FOUND, "organizations/%s/assessments/%s not found",
	                     org_id != NULL ? org_id : "", id != NULL ? id : "");
}

/* --- rows ----------------------------------------------------------------------------------- */

/* Reads one assessment and its answers inside a transaction (after a change). */
static enum mat_code read_in_tx(struct store__tx *tx, const char *org_id, const char *id,
                                struct mat_assessment *out, struct mat_error *err)
{
	const char *params[2] = {org_id, id};
	struct store__cmd cmds[2] = {{.st = &st_asm_get, .params = params},
	                             {.st = &st_ans_get, .params = params}};
	enum mat_code rc = store__tx_run(tx, cmds, 2, err);

	if (rc != MAT_OK)
		return rc;
	if (PQntuples(cmds[0].res) == 0)
		rc = not_found(err, org_id, id);
	else
		rc = store__assessment_from_row(cmds[0].res, 0, out, err);
	if (rc == MAT_OK)
		rc = store__answers_from_rows(cmds[1].res, 0, PQntuples(cmds[1].res), 1, out, err);
	store__cmds_clear(cmds, 2);
	return rc;
}

/* One event about assessment x, written in tx. */
static enum mat_code write_assessment_event(struct store__tx *tx, enum store_event_type type,
                                            const struct mat_assessment *x, struct mat_error *err)
{
	struct store__events ev;
	enum mat_code rc;

	store__events_init(&ev, x->org_id);
	rc = store__event_add(&ev, type, x, err);
	if (rc == MAT_OK)
		rc = store__events_write(tx, &ev, err);
	store__events_reset(&ev);
	return rc;
}

/* --- create --------------------------------------------------------------------------------- */

struct upsert_params {
	char status[8];
	const char *p[7];
};

struct create_args {
	const struct mat_answer *answers; /* initial answers (validated), n_answers of them */
	size_t n_answers;
	const char *org_id;
	const char *title;
	const char *model_id;
	const char *request_id;
	mat_time_us prefill_now; /* 0: no prefill from evidence */
	char id[STORE_UUID_TEXT];
	char resource[160];
	struct mat_assessment *out;
};

/* The prefill of CreateAssessment (docs/evidence.md): the request's answers, then one answer per
 * practice of the model that has current evidence and no answer in the request. p->answers
 * (freed with free_prefill) stays NULL when there is no current evidence: the request's answers
 * are then used as they are. */
struct prefill {
	struct mat_answer *answers; /* request answers borrowed, added ones owned */
	size_t n, n_request;
};

static void free_prefill(struct prefill *p)
{
	for (size_t i = p->n_request; i < p->n; i++) {
		free(p->answers[i].note);
		free(p->answers[i].evidence_uri);
	}
	free(p->answers);
	memset(p, 0, sizeof(*p));
}

static enum mat_code prefill_answers(struct store__tx *tx, const struct create_args *a,
                                     struct prefill *p, struct mat_error *err)
{
	const struct mat_model *m = mat_model_find(a->model_id);
	bool answered[MAT_MAX_PRACTICES] = {false};
	struct mat_evidence *ev = NULL;
	size_t n_ev = 0;
	enum mat_code rc;

	memset(p, 0, sizeof(*p));
	if (m == NULL)
		return MAT_OK;
	rc = store__evidence_current_tx(tx, a->org_id, a->prefill_now, &ev, &n_ev, err);
	if (rc != MAT_OK || n_ev == 0)
		return rc;
	p->answers = calloc(a->n_answers + m->n_practices, sizeof(*p->answers));
	if (p->answers == NULL) {
		rc = store__oom(err);
		goto out;
	}
	for (size_t i = 0; i < a->n_answers; i++) {
		const char *pid = a->answers[i].practice_id;
		int k = mat_model_practice_index(m, pid, strlen(pid));
		if (k >= 0)
			answered[k] = true;
		p->answers[i] = a->answers[i];
	}
	p->n = p->n_request = a->n_answers;
	/* Request answers win: evidence fills only what the request leaves open. */
	for (size_t k = 0; k < m->n_practices; k++) {
		const struct mat_evidence *e;
		struct mat_answer *x;

		if (answered[k])
			continue;
		e = mat_evidence_current(ev, n_ev, m->practices[k].id, a->prefill_now);
		if (e == NULL)
			continue;
		x = &p->answers[p->n];
		x->practice_id = (char *)m->practices[k].id;
		x->status = e->status;
		x->note = mat_evidence_prefill_note(e);
		x->evidence_uri = strdup(e->uri != NULL ? e->uri : "");
		p->n++;
		if (x->note == NULL || x->evidence_uri == NULL) {
			rc = store__oom(err);
			goto out;
		}
	}
	rc = MAT_OK;
out:
	for (size_t i = 0; i < n_ev; i++)
		mat_evidence_cleanup(&ev[i]);
	free(ev);
	if (rc != MAT_OK)
		free_prefill(p);
	return rc;
}

static enum mat_code create_body(struct store__tx *tx, void *arg, struct mat_error *err)
{
	struct create_args *a = arg;
	const char *principal = tx->c->principal != NULL ? tx->c->principal : "";
	const char *params[5] = {a->org_id, a->id, a->title, a->model_id, principal};
	struct store__audit audit;
	size_t n = a->n_answers;
	const struct mat_answer *answers = a->answers;
	struct prefill pf = {0};
	struct store__cmd *cmds = NULL;
	struct upsert_params *up = NULL;
	enum mat_code rc;

	mat_assessment_cleanup(a->out);
	if (a->request_id[0] != '\0') {
		bool claimed = false;
		char *prior = NULL;

		rc = store__idem_claim(tx, a->request_id, "assessment", a->resource, &claimed,
		                       &prior, err);
		if (rc != MAT_OK)
			return rc;
		if (!claimed) {
			/* A retry: the first call's assessment, nothing written. */
			char org[MAT_MAX_ORG_ID + 1] = "", id[STORE_UUID_TEXT] = "";
			const char *slash = strstr(prior, "/assessments/");
			if (strncmp(prior, "organizations/", 14) == 0 && slash != NULL &&
			    (size_t)(slash - prior - 14) <= MAT_MAX_ORG_ID) {
				memcpy(org, prior + 14, (size_t)(slash - prior - 14));
				snprintf(id, sizeof(id), "%s", slash + 13);
			}
			rc = read_in_tx(tx, org, id, a->out, err);
			if (rc == MAT_NOT_FOUND)
				rc = mat_error_set(
				    err, MAT_NOT_FOUND,
				    "%s, created by this request_id, no longer exists", prior);
			free(prior);
			return rc;
		}
	}
	if (a->prefill_now != 0) {
		/* Read in this transaction, so the answers are those of the evidence current when
		 * the assessment was created. */
		rc = prefill_answers(tx, a, &pf, err);
		if (rc != MAT_OK)
			return rc;
		if (pf.answers != NULL) {
			answers = pf.answers;
			n = pf.n;
		}
	}
	/* The row, its initial answers and the audit event: one round trip, one transaction. */
	cmds = calloc(n + 2, sizeof(*cmds));
	up = calloc(n ? n : 1, sizeof(*up));
	if (cmds == NULL || up == NULL) {
		rc = store__oom(err);
		goto out;
	}
	cmds[0] = (struct store__cmd){.st = &st_asm_insert, .params = params};
	for (size_t i = 0; i < n; i++) {
		const struct mat_answer *x = &answers[i];
		snprintf(up[i].status, sizeof(up[i].status), "%d", (int)x->status);
		up[i].p[0] = a->org_id;
		up[i].p[1] = a->id;
		up[i].p[2] = x->practice_id;
		up[i].p[3] = up[i].status;
		up[i].p[4] = x->note != NULL ? x->note : "";
		up[i].p[5] = x->evidence_uri != NULL ? x->evidence_uri : "";
		up[i].p[6] = principal;
		cmds[1 + i] = (struct store__cmd){.st = &st_ans_upsert, .params = up[i].p};
	}
	rc = store__audit_cmd(&audit, tx->c, a->resource, 0, &cmds[n + 1], err);
	if (rc != MAT_OK)
		goto out;
	rc = store__tx_run(tx, cmds, n + 2, err);
	if (rc == MAT_NOT_FOUND) /* the foreign key: no such organization */
		rc = mat_error_set(err, MAT_NOT_FOUND, "organizations/%s not found", a->org_id);
	if (rc == MAT_OK && n == 0)
		rc = store__assessment_from_row(cmds[0].res, 0, a->out, err);
	store__cmds_clear(cmds, n + 2);
	if (rc == MAT_OK && n > 0)
		rc = read_in_tx(tx, a->org_id, a->id, a->out, err);
	if (rc == MAT_OK)
		rc = write_assessment_event(tx, STORE_EVENT_ASSESSMENT_CREATED, a->out, err);
out:
	free(cmds);
	free(up);
	free_prefill(&pf);
	return rc;
}

enum mat_code store_assessment_create(const struct store_call *c, const char *org_id,
                                      const char *title, const char *model_id,
                                      const char *request_id, struct mat_assessment *out,
                                      struct mat_error *err)
{
	return store_assessment_create_with_answers(c, org_id, title, model_id, NULL, 0, request_id,
	                                            out, err);
}

enum mat_code store_assessment_create_with_answers(const struct store_call *c, const char *org_id,
                                                   const char *title, const char *model_id,
                                                   const struct mat_answer *answers,
                                                   size_t n_answers, const char *request_id,
                                                   struct mat_assessment *out,
                                                   struct mat_error *err)
{
	return store_assessment_create_prefilled(c, org_id, title, model_id, answers, n_answers, 0,
	                                         request_id, out, err);
}

enum mat_code store_assessment_create_prefilled(const struct store_call *c, const char *org_id,
                                                const char *title, const char *model_id,
                                                const struct mat_answer *answers, size_t n_answers,
                                                mat_time_us prefill_now, const char *request_id,
                                                struct mat_assessment *out, struct mat_error *err)
{
	struct create_args a = {.org_id = org_id,
	                        .title = title != NULL ? title : "",
	                        .out = out,
	                        .answers = answers,
	                        .n_answers = n_answers,
	                        .prefill_now = prefill_now};
	const struct mat_model *m;
	char rid[STORE_UUID_TEXT];
	enum mat_code rc;

	memset(out, 0, sizeof(*out));
	if (!org_ok(org_id))
		return mat_error_set(err, MAT_NOT_FOUND, "organizations/%s not found",
		                     org_id != NULL ? org_id : "");
	m = mat_model_find(model_id == NULL || model_id[0] == '\0' ? "mlops-v1" : model_id);
	if (m == NULL)
		return mat_error_field(err, "assessment.model", "unknown model");
	/* Initial answers: the whole batch valid against the model, or nothing is created. */
	if (n_answers > 0 &&
	    !mat_answers_validate(m, answers, n_answers, "assessment.answers", err))
		return MAT_INVALID;
	rc = store__request_id(request_id, rid, err);
	if (rc != MAT_OK)
		return rc;
	a.model_id = m->id;
	a.request_id = rid;
	/* Generated once, outside the transaction body: a retried body reuses it. */
	rc = store__uuid7(a.id);
	if (rc != MAT_OK)
		return mat_error_set(err, rc, "no randomness for an assessment id");
	resource_name(a.resource, sizeof(a.resource), org_id, a.id);
	rc = store__transact(c, create_body, &a, err);
	if (rc != MAT_OK)
		mat_assessment_cleanup(out);
	return rc;
}

/* --- get and list --------------------------------------------------------------------------- */

/* An assessment from the results of st_asm_get and st_ans_get (cmds[0], cmds[1]). */
static enum mat_code assessment_decode(struct store__cmd *cmds, const char *org_id, const char *id,
                                       struct mat_assessment *out, struct mat_error *err)
{
	enum mat_code rc;

	if (PQntuples(cmds[0].res) == 0)
		return not_found(err, org_id, id);
	rc = store__assessment_from_row(cmds[0].res, 0, out, err);
	if (rc == MAT_OK)
		rc = store__answers_from_rows(cmds[1].res, 0, PQntuples(cmds[1].res), 1, out, err);
	if (rc != MAT_OK)
		mat_assessment_cleanup(out);
	return rc;
}

enum mat_code store_assessment_get(const struct store_call *c, const char *org_id, const char *id,
                                   struct mat_assessment *out, struct mat_error *err)
{
	char nid[STORE_UUID_TEXT];
	const char *params[2] = {org_id, nid};
	struct store__cmd cmds[2] = {{.st = &st_asm_get, .params = params},
	                             {.st = &st_ans_get, .params = params}};
	enum mat_code rc;

	memset(out, 0, sizeof(*out));
	if (!org_ok(org_id) || !norm_id(id, nid))
		return not_found(err, org_id, id);
	rc = store__read(c, cmds, 2, err);
	if (rc != MAT_OK)
		return rc;
	rc = assessment_decode(cmds, org_id, nid, out, err);
	store__cmds_clear(cmds, 2);
	return rc;
}

static enum mat_code assessment_get_decode(struct store__aget *g, struct mat_error *err)
{
	return assessment_decode(g->cmds, g->keys[0], g->keys[1], g->out, err);
}

void store_assessment_get_async(const struct store_call *c, const char *org_id, const char *id,
                                struct mat_assessment *out, struct mat_error *err,
                                store_done_fn done, void *arg)
{
	char nid[STORE_UUID_TEXT];
	struct store__aget *g;

	memset(out, 0, sizeof(*out));
	if (!org_ok(org_id) || !norm_id(id, nid)) {
		done(arg, not_found(err, org_id, id));
		return;
	}
	g = store__aget_new(c, err, done, arg);
	if (g == NULL)
		return;
	snprintf(g->keys[0], sizeof(g->keys[0]), "%s", org_id);
	snprintf(g->keys[1], sizeof(g->keys[1]), "%s", nid);
	g->params[0] = g->keys[0];
	g->params[1] = g->keys[1];
	g->cmds[0] = (struct store__cmd){.st = &st_asm_get, .params = g->params};
	g->cmds[1] = (struct store__cmd){.st = &st_ans_get, .params = g->params};
	g->decode = assessment_get_decode;
	g->out = out;
	store__aget_start(g, 2);
}

static uint64_t list_filter(const char *org_id, enum mat_assessment_state state)
{
	uint8_t s = (uint8_t)state;
	uint64_t h = store__fnv64(STORE_FNV64_INIT, "assessments", 12); /* with the NUL */

	h = store__fnv64(h, org_id, strlen(org_id) + 1);
	return store__fnv64(h, &s, 1);
}

enum mat_code store_assessment_list(const struct store_call *c, const char *org_id,
                                    enum mat_assessment_state state, int page_size,
                                    const char *page_token, struct mat_assessment **out,
                                    size_t *n_out, char **next_token, struct mat_error *err)
{
	char before[STORE_UUID_TEXT] = "ffffffff-ffff-ffff-ffff-ffffffffffff";
	char st[8], limit[16];
	const char *params[4] = {org_id, st, before, limit};
	struct store__cmd cmds[3] = {{.st = &st_org_exists, .params = params},
	                             {.st = &st_asm_page, .params = params},
	                             {.st = &st_ans_page, .params = params}};
	char token[STORE_TOKEN_MAX_TEXT] = "";
	struct mat_assessment *list = NULL;
	size_t n = 0;
	int rows, arow = 0, n_ans;
	enum mat_code rc;

	*out = NULL;
	*n_out = 0;
	*next_token = NULL;
	if (!org_ok(org_id))
		return mat_error_set(err, MAT_NOT_FOUND, "organizations/%s not found",
		                     org_id != NULL ? org_id : "");
	if (page_size <= 0)
		page_size = MAT_PAGE_SIZE_DEFAULT;
	if (page_size > MAT_PAGE_SIZE_MAX)
		page_size = MAT_PAGE_SIZE_MAX;
	if (page_token != NULL && page_token[0] != '\0') {
		uint8_t key[STORE_TOKEN_MAX_KEY];
		size_t klen;
		rc = store__token_decode(page_token, STORE_LIST_ASSESSMENTS,
		                         list_filter(org_id, state), key, &klen, err);
		if (rc != MAT_OK)
			return rc;
		if (klen != 16)
			return mat_error_field(err, "page_token", "invalid page token");
		store__uuid_format(key, before);
	}
	snprintf(st, sizeof(st), "%d", (int)state);
	snprintf(limit, sizeof(limit), "%d", page_size + 1);
	/* One snapshot for the page and its answers. */
	rc = store__read(c, cmds, 3, err);
	if (rc != MAT_OK)
		return rc;
	if (PQntuples(cmds[0].res) == 0) {
		rc = mat_error_set(err, MAT_NOT_FOUND, "organizations/%s not found", org_id);
		goto out;
	}
	rows = PQntuples(cmds[1].res);
	if (rows > page_size)
		rows = page_size;
	list = calloc(rows > 0 ? (size_t)rows : 1, sizeof(*list));
	if (list == NULL) {
		rc = store__oom(err);
		goto out;
	}
	/* Both results are ordered by assessment id descending: merge them. */
	n_ans = PQntuples(cmds[2].res);
	for (; n < (size_t)rows; n++) {
		int end;
		rc = store__assessment_from_row(cmds[1].res, (int)n, &list[n], err);
		if (rc != MAT_OK)
			goto out;
		while (arow < n_ans && strcmp(PQgetvalue(cmds[2].res, arow, 0), list[n].id) > 0)
			arow++;
		end = arow;
		while (end < n_ans && strcmp(PQgetvalue(cmds[2].res, end, 0), list[n].id) == 0)
			end++;
		rc = store__answers_from_rows(cmds[2].res, arow, end, 1, &list[n], err);
		if (rc != MAT_OK) {
			n++; /* list[n] holds partial data: clean it up too */
			goto out;
		}
		arow = end;
	}
	if (PQntuples(cmds[1].res) > page_size) {
		uint8_t key[16];
		(void)store__uuid_parse(list[n - 1].id, key);
		store__token_encode(STORE_LIST_ASSESSMENTS, list_filter(org_id, state), key, 16,
		                    token);
	}
	*next_token = strdup(token);
	rc = *next_token != NULL ? MAT_OK : store__oom(err);
out:
	store__cmds_clear(cmds, 3);
	if (rc != MAT_OK) {
		for (size_t i = 0; i < n; i++)
			mat_assessment_cleanup(&list[i]);
		free(list);
		free(*next_token);
		*next_token = NULL;
		return rc;
	}
	*out = list;
	*n_out = n;
	return MAT_OK;
}

/* --- locking a draft ------------------------------------------------------------------------ */

struct locked {
	enum mat_assessment_state state;
	const struct mat_model *model;
};

/* Locks the assessment row; checks existence and etag, and (when `draft_only`) DRAFT state. */
static enum mat_code lock_assessment(struct store__tx *tx, const char *org_id, const char *id,
                                     const char *etag, bool draft_only, const char *why,
                                     struct locked *l, struct mat_error *err)
{
	PGresult *r = NULL;
	enum mat_code rc = STORE__EXEC(tx, &st_asm_lock, &r, err, org_id, id);

	if (rc != MAT_OK)
		return rc;
	if (PQntuples(r) == 0) {
		rc = not_found(err, org_id, id);
		goto out;
	}
	l->state = (enum mat_assessment_state)atoi(PQgetvalue(r, 0, 0));
	l->model = mat_model_find(PQgetvalue(r, 0, 3));
	if (!store__etag_matches(etag, strtoll(PQgetvalue(r, 0, 1), NULL, 10),
	                         strtoll(PQgetvalue(r, 0, 2), NULL, 10))) {
		rc = mat_error_set(err, MAT_ABORTED,
		                   "etag mismatch: organizations/%s/assessments/%s was changed; "
		                   "read it again",
		                   org_id, id);
		goto out;
	}
	if (draft_only && l->state != MAT_ASSESSMENT_DRAFT) {
		rc = mat_error_set(err, MAT_PRECONDITION,
		                   "organizations/%s/assessments/%s is submitted: %s", org_id, id,
		                   why);
		goto out;
	}
	if (l->model == NULL) {
		rc = mat_error_set(err, MAT_INTERNAL, "assessment %s has unknown model %s", id,
		                   PQgetvalue(r, 0, 3));
		goto out;
	}
	rc = MAT_OK;
out:
	PQclear(r);
	return rc;
}

/* --- update answers ------------------------------------------------------------------------- */

struct answers_args {
	const char *org_id;
	const char *id;
	const struct mat_answer *answers;
	size_t n;
	const char *etag;
	char resource[160];
	struct mat_assessment *out;
};

static enum mat_code answers_body(struct store__tx *tx, void *arg, struct mat_error *err)
{
	struct answers_args *a = arg;
	const char *principal = tx->c->principal != NULL ? tx->c->principal : "";
	const char *key[2] = {a->org_id, a->id};
	struct upsert_params *up = NULL;
	struct store__cmd *cmds = NULL;
	struct store__audit audit;
	struct locked l;
	enum mat_code rc;

	mat_assessment_cleanup(a->out);
	rc = lock_assessment(tx, a->org_id, a->id, a->etag, true,
	                     "answers can change only in DRAFT", &l, err);
	if (rc != MAT_OK)
		return rc;
	if (a->n == 0)
		return read_in_tx(tx, a->org_id, a->id, a->out, err);
	/* The assessment pins its model: the whole batch is validated against that one (known
	 * practice ids, each once, statuses, notes, limits) before anything is written. */
	if (!mat_answers_validate(l.model, a->answers, a->n, "answers", err))
		return MAT_INVALID;

	up = calloc(a->n, sizeof(*up));
	cmds = calloc(a->n + 2, sizeof(*cmds));
	if (up == NULL || cmds == NULL) {
		rc = store__oom(err);
		goto out;
	}
	for (size_t i = 0; i < a->n; i++) {
		const struct mat_answer *x = &a->answers[i];
		snprintf(up[i].status, sizeof(up[i].status), "%d", (int)x->status);
		up[i].p[0] = a->org_id;
		up[i].p[1] = a->id;
		up[i].p[2] = x->practice_id;
		up[i].p[3] = up[i].status;
		up[i].p[4] = x->note != NULL ? x->note : "";
		up[i].p[5] = x->evidence_uri != NULL ? x->evidence_uri : "";
		up[i].p[6] = principal;
		cmds[i] = (struct store__cmd){.st = &st_ans_upsert, .params = up[i].p};
	}
	cmds[a->n] = (struct store__cmd){.st = &st_asm_touch, .params = key};
	rc = store__audit_cmd(&audit, tx->c, a->resource, 0, &cmds[a->n + 1], err);
	if (rc != MAT_OK)
		goto out;
	/* All upserts in one round trip; the first failure skips the rest and the transaction
	 * rolls back: all or nothing. */
	rc = store__tx_run(tx, cmds, a->n + 2, err);
	if (rc == MAT_INVALID && tx->diag.index >= 0 && (size_t)tx->diag.index < a->n) {
		char field[48], msg[sizeof(err->message)];
		snprintf(field, sizeof(field), "answers[%d]", tx->diag.index);
		snprintf(msg, sizeof(msg), "%s", err->message);
		mat_error_clear(err);
		mat_error_field(err, field, "%s", msg);
	}
	store__cmds_clear(cmds, a->n + 2);
	if (rc == MAT_OK)
		rc = read_in_tx(tx, a->org_id, a->id, a->out, err);
	if (rc == MAT_OK)
		rc = write_assessment_event(tx, STORE_EVENT_ASSESSMENT_UPDATED, a->out, err);
out:
	free(cmds);
	free(up);
	return rc;
}

enum mat_code store_assessment_update_answers(const struct store_call *c, const char *org_id,
                                              const char *id, const struct mat_answer *answers,
                                              size_t n_answers, const char *etag,
                                              struct mat_assessment *out, struct mat_error *err)
{
	char nid[STORE_UUID_TEXT];
	struct answers_args a = {.org_id = org_id,
	                         .id = nid,
	                         .answers = answers,
	                         .n = n_answers,
	                         .etag = etag,
	                         .out = out};
	enum mat_code rc;

	memset(out, 0, sizeof(*out));
	if (!org_ok(org_id) || !norm_id(id, nid))
		return not_found(err, org_id, id);
	if (n_answers > 0 && answers == NULL)
		return mat_error_field(err, "answers", "missing");
	if (n_answers > 4 * MAT_MAX_PRACTICES)
		return mat_error_set(err, MAT_LIMIT, "too many answers in one request");
	resource_name(a.resource, sizeof(a.resource), org_id, nid);
	rc = store__transact(c, answers_body, &a, err);
	if (rc != MAT_OK)
		mat_assessment_cleanup(out);
	return rc;
}

/* --- submit --------------------------------------------------------------------------------- */

struct submit_args {
	const char *org_id;
	const char *id;
	const char *etag;
	char resource[160];
	struct mat_assessment *out;
};

/* The overall level of the stored answers, scored against the assessment's model. */
static enum mat_code overall_level(struct store__tx *tx, const struct submit_args *a,
                                   const struct mat_model *m, int *level, struct mat_error *err)
{
	PGresult *r = NULL;
	struct mat_answer *ans = NULL;
	enum mat_status *status = NULL;
	struct mat_score score;
	size_t n = 0;
	enum mat_code rc = STORE__EXEC(tx, &st_ans_status, &r, err, a->org_id, a->id);

	if (rc != MAT_OK)
		return rc;
	ans = calloc((size_t)PQntuples(r) + 1, sizeof(*ans));
	status = calloc(m->n_practices + 1, sizeof(*status));
	if (ans == NULL || status == NULL) {
		rc = store__oom(err);
		goto out;
	}
	/* Borrowed strings: only practice_id and status are read. Unknown practices (none, as
	 * answers are validated on the way in) are left out rather than trusted. */
	for (int i = 0; i < PQntuples(r); i++) {
		const char *pid = PQgetvalue(r, i, 0);
		if (mat_model_practice_index(m, pid, strlen(pid)) < 0)
			continue;
		ans[n].practice_id = (char *)pid;
		ans[n].status = (enum mat_status)atoi(PQgetvalue(r, i, 1));
		n++;
	}
	mat_answers_to_status(m, ans, n, status);
	mat_score_compute(m, status, &score);
	*level = score.overall_level;
	rc = MAT_OK;
out:
	free(status);
	free(ans);
	PQclear(r);
	return rc;
}

/* The events of a submission, in their documented order: ASSESSMENT_SUBMITTED, each
 * TRANSITION_SUPERSEDED, then TRANSITION_PROPOSED, or TRANSITION_APPLIED and ORGANIZATION_UPDATED
 * (the organization's level changed). Its own change to last_assessment writes no
 * ORGANIZATION_UPDATED: ASSESSMENT_SUBMITTED says it. `created` is NULL when the level did not
 * change; `org` is the organization as the submission left it. */
static enum mat_code submit_events(struct store__tx *tx, const struct submit_args *a,
                                   const PGresult *superseded, const PGresult *created,
                                   const PGresult *org, struct mat_error *err)
{
	struct store__events ev;
	struct mat_transition t = {0};
	struct mat_organization o = {0};
	enum mat_code rc;

	store__events_init(&ev, a->org_id);
	rc = store__event_add(&ev, STORE_EVENT_ASSESSMENT_SUBMITTED, a->out, err);
	for (int i = 0; rc == MAT_OK && i < PQntuples(superseded); i++) {
		rc = store__transition_from_row(superseded, i, &t, err);
		if (rc == MAT_OK)
			rc = store__event_add(&ev, STORE_EVENT_TRANSITION_SUPERSEDED, &t, err);
		mat_transition_cleanup(&t);
	}
	if (rc == MAT_OK && created != NULL) {
		rc = store__transition_from_row(created, 0, &t, err);
		if (rc == MAT_OK && t.state == MAT_TRANSITION_APPLIED) {
			rc = store__event_add(&ev, STORE_EVENT_TRANSITION_APPLIED, &t, err);
			if (rc == MAT_OK)
				rc = store__org_from_row(org, 0, &o, err);
			if (rc == MAT_OK)
				rc = store__event_add(&ev, STORE_EVENT_ORG_UPDATED, &o, err);
		} else if (rc == MAT_OK) {
			rc = store__event_add(&ev, STORE_EVENT_TRANSITION_PROPOSED, &t, err);
		}
		mat_transition_cleanup(&t);
		mat_organization_cleanup(&o);
	}
	if (rc == MAT_OK)
		rc = store__events_write(tx, &ev, err);
	store__events_reset(&ev);
	return rc;
}

static enum mat_code submit_body(struct store__tx *tx, void *arg, struct mat_error *err)
{
	struct submit_args *a = arg;
	const char *submitter = tx->c->principal != NULL ? tx->c->principal : "";
	PGresult *r = NULL;
	int current, level = 0;
	enum mat_policy policy;
	struct locked l;
	struct store__audit audit;
	char tid[STORE_UUID_TEXT], from[8], to[8], dir[8], state[8], lvl[8];
	const char *p_submit[3] = {a->org_id, a->id, submitter};
	const char *p_supersede[2] = {a->org_id, submitter};
	const char *p_insert[9] = {a->org_id, tid, a->id, from, to, dir, state, submitter, ""};
	const char *p_org[4] = {a->org_id, a->id, "false", lvl};
	struct store__cmd cmds[5];
	size_t k = 0;
	enum mat_code rc;

	mat_assessment_cleanup(a->out);
	/* Organization first: submissions and approvals of one organization take turns here,
	 * which is what keeps its chain of applied transitions straight. */
	rc = STORE__EXEC(tx, &st_org_lock_submit, &r, err, a->org_id);
	if (rc != MAT_OK)
		return rc;
	if (PQntuples(r) == 0) {
		PQclear(r);
		return not_found(err, a->org_id, a->id);
	}
	current = atoi(PQgetvalue(r, 0, 0));
	policy = (enum mat_policy)atoi(PQgetvalue(r, 0, 1));
	PQclear(r);
	rc = lock_assessment(tx, a->org_id, a->id, a->etag, true, "it was submitted already", &l,
	                     err);
	if (rc != MAT_OK)
		return rc;
	rc = overall_level(tx, a, l.model, &level, err);
	if (rc != MAT_OK)
		return rc;

	cmds[k++] = (struct store__cmd){.st = &st_asm_submit, .params = p_submit};
	/* docs/api.md, Level transitions: newer evidence replaces any pending proposal (decided by
	 * this submitter, at this submission's time: now() is the transaction's time). */
	cmds[k++] = (struct store__cmd){.st = &st_tr_supersede, .params = p_supersede};
	if (level != current) {
		bool apply = policy == MAT_POLICY_AUTOMATIC;
		rc = store__uuid7(tid);
		if (rc != MAT_OK)
			return mat_error_set(err, rc, "no randomness for a transition id");
		snprintf(from, sizeof(from), "%d", current);
		snprintf(to, sizeof(to), "%d", level);
		snprintf(dir, sizeof(dir), "%d",
		         level > current ? MAT_DIRECTION_UPGRADE : MAT_DIRECTION_REGRESSION);
		snprintf(state, sizeof(state), "%d",
		         apply ? MAT_TRANSITION_APPLIED : MAT_TRANSITION_PROPOSED);
		p_insert[8] = apply ? AUTOMATIC_REASON : "";
		cmds[k++] = (struct store__cmd){.st = &st_tr_insert, .params = p_insert};
		p_org[2] = apply ? "true" : "false";
	}
	snprintf(lvl, sizeof(lvl), "%d", level);
	cmds[k++] = (struct store__cmd){.st = &st_org_submitted, .params = p_org};
	rc = store__audit_cmd(&audit, tx->c, a->resource, 0, &cmds[k++], err);
	if (rc != MAT_OK)
		return rc;
	rc = store__tx_run(tx, cmds, k, err);
	if (rc == MAT_OK)
		rc = read_in_tx(tx, a->org_id, a->id, a->out, err);
	if (rc == MAT_OK)
		rc = submit_events(tx, a, cmds[1].res, level != current ? cmds[2].res : NULL,
		                   cmds[k - 2].res, err);
	store__cmds_clear(cmds, k);
	return rc;
}

enum mat_code store_assessment_submit(const struct store_call *c, const char *org_id,
                                      const char *id, const char *etag, struct mat_assessment *out,
                                      struct mat_error *err)
{
	char nid[STORE_UUID_TEXT];
	struct submit_args a = {.org_id = org_id, .id = nid, .etag = etag, .out = out};
	enum mat_code rc;

	memset(out, 0, sizeof(*out));
	if (!org_ok(org_id) || !norm_id(id, nid))
		return not_found(err, org_id, id);
	resource_name(a.resource, sizeof(a.resource), org_id, nid);
	rc = store__transact(c, submit_body, &a, err);
	if (rc != MAT_OK)
		mat_assessment_cleanup(out);
	return rc;
}

/* --- delete --------------------------------------------------------------------------------- */

struct delete_args {
	const char *org_id;
	const char *id;
	const char *etag;
	char resource[160];
};

static enum mat_code delete_body(struct store__tx *tx, void *arg, struct mat_error *err)
{
	struct delete_args *a = arg;
	const char *key[2] = {a->org_id, a->id};
	struct store__cmd cmds[2] = {{.st = &st_asm_delete, .params = key}};
	struct store__audit audit;
	struct mat_assessment before = {0};
	struct locked l;
	enum mat_code rc = lock_assessment(tx, a->org_id, a->id, a->etag, true,
	                                   "only drafts can be deleted", &l, err);

	if (rc != MAT_OK)
		return rc;
	/* The snapshot of a deletion is the assessment before it. */
	rc = read_in_tx(tx, a->org_id, a->id, &before, err);
	if (rc == MAT_OK)
		rc = store__audit_cmd(&audit, tx->c, a->resource, 0, &cmds[1], err);
	if (rc == MAT_OK)
		rc = store__tx_run(tx, cmds, 2, err);
	store__cmds_clear(cmds, 2);
	if (rc == MAT_OK)
		rc = write_assessment_event(tx, STORE_EVENT_ASSESSMENT_DELETED, &before, err);
	mat_assessment_cleanup(&before);
	return rc;
}

enum mat_code store_assessment_delete(const struct store_call *c, const char *org_id,
                                      const char *id, const char *etag, struct mat_error *err)
{
	char nid[STORE_UUID_TEXT];
	struct delete_args a = {.org_id = org_id, .id = nid, .etag = etag};

	if (!org_ok(org_id) || !norm_id(id, nid))
		return not_found(err, org_id, id);
	resource_name(a.resource, sizeof(a.resource), org_id, nid);
	return store__transact(c, delete_body, &a, err);
}
