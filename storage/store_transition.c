/* Level transitions (docs/api.md, "Level transitions"): get, list (one organization or every
 * visible one, by propose_time then name, keyset pages), approve and reject. Approval is the second
 * writer of an organization's chain of applied transitions (submission, in store_assessment.c, is
 * the first): both take the organization's row lock before anything else, so "from_level =
 * current_level" is checked and the new link written with no other writer of that chain in between.
 * The deferred trigger of migration 0002 re-checks the whole chain at commit as a backstop. */
#include "store_internal.h"
#include "store_token.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define TR_COLS STORE__TR_COLS
/* Keyset of ListTransitions within one organization: the token is bound to the organization, so
 * its key's organization is this one and (propose_time, id) orders the rest. */
#define TR_ORG_PAGE                                                                                \
	"FROM transitions t WHERE t.org_id = $1 AND ($2::smallint = 0 OR t.state = $2::smallint) " \
	"AND t.propose_time >= $3::timestamptz AND t.propose_time < $4::timestamptz "              \
	"AND (t.propose_time, t.id) > ($5::timestamptz, $6::uuid) "                                \
	"ORDER BY t.propose_time, t.id LIMIT $7::int"
/* Across organizations (organizations/-): visibility as in store_org_list. */
#define TR_ALL_PAGE                                                                     \
	"FROM transitions t WHERE ($1::smallint = 0 OR t.state = $1::smallint) "        \
	"AND t.propose_time >= $2::timestamptz AND t.propose_time < $3::timestamptz "   \
	"AND (t.propose_time, t.org_id, t.id) > ($4::timestamptz, $5::text, $6::uuid) " \
	"AND " STORE__VISIBLE("$7", "$8",                                               \
	                      "t.org_id") " "                                           \
	                                  "ORDER BY t.propose_time, t.org_id, t.id LIMIT $9::int"

STORE__STMT(st_tr_get, 2,
            "SELECT " TR_COLS " FROM transitions t "
            "WHERE t.org_id = $1 AND t.id = $2::uuid");
STORE__STMT(st_tr_org_exists, 1, "SELECT 1 FROM organizations WHERE id = $1");
STORE__STMT(st_tr_org_page, 7, "SELECT " TR_COLS " " TR_ORG_PAGE);
STORE__STMT(st_tr_all_page, 9, "SELECT " TR_COLS " " TR_ALL_PAGE);
/* The lock that serializes submissions and approvals of one organization (as in
 * store_assessment.c): NO KEY UPDATE, so creating assessments (KEY SHARE) is not held up. */
STORE__STMT(st_tr_org_lock, 1,
            "SELECT o.current_level FROM organizations o WHERE o.id = $1 FOR NO KEY UPDATE");
/* The transition and who submitted its assessment (four-eyes). Only the transition row is
 * locked: the assessment is SUBMITTED and its submitter can no longer change. */
STORE__STMT(st_tr_lock, 2,
            "SELECT t.state, t.from_level, t.to_level, t.version, mat_epoch_us(t.propose_time), "
            "a.submitter FROM transitions t JOIN assessments a ON a.org_id = t.org_id AND "
            "a.id = t.assessment_id WHERE t.org_id = $1 AND t.id = $2::uuid "
            "FOR NO KEY UPDATE OF t");
/* applied_seq: next in the organization's apply order; the organization's row lock makes
 * max + 1 safe (and the unique (org_id, applied_seq) would catch a bug). */
STORE__STMT(st_tr_apply, 3,
            "UPDATE transitions AS t SET state = 2, decider = $3, "
            "decide_time = greatest(now(), t.propose_time), applied_seq = (SELECT "
            "coalesce(max(s.applied_seq), 0) + 1 FROM transitions s "
            "WHERE s.org_id = $1), update_time = greatest(now(), t.update_time), "
            "version = t.version + 1 WHERE t.org_id = $1 AND t.id = $2::uuid RETURNING " TR_COLS);
STORE__STMT(st_tr_org_level, 2,
            "UPDATE organizations AS o SET current_level = $2::smallint, version = version + 1, "
            "update_time = now() WHERE id = $1 RETURNING " STORE__ORG_COLS);
STORE__STMT(st_tr_reject, 4,
            "UPDATE transitions AS t SET state = 3, decider = $3, "
            "decide_time = greatest(now(), t.propose_time), reason = $4, "
            "update_time = greatest(now(), t.update_time), version = t.version + 1 "
            "WHERE t.org_id = $1 AND t.id = $2::uuid RETURNING " TR_COLS);

static const char *const state_names[] = {"STATE_UNSPECIFIED", "PROPOSED", "APPLIED", "REJECTED",
                                          "SUPERSEDED"};

/* --- names and rows ------------------------------------------------------------------------- */

static bool org_ok(const char *org_id)
{
	return org_id != NULL && org_id[0] != '\0' && strlen(org_id) <= MAT_MAX_ORG_ID;
}

/* A canonical lower-case id from a caller's id; false if it cannot name a transition. */
static bool norm_id(const char *id, char out[STORE_UUID_TEXT])
{
	uint8_t b[16];

	if (!store__uuid_parse(id, b))
		return false;
	store__uuid_format(b, out);
	return true;
}

static enum mat_code not_found(struct mat_error *err, const char *org_id, const char *id)
{
	return mat_error_set(err, MAT_NOT_FOUND, "organizations/%s/transitions/%s not found",
	                     org_id != NULL ? org_id : "", id != NULL ? id : "");
}

/* --- get ------------------------------------------------------------------------------------ */

enum mat_code store_transition_get(const struct store_call *c, const char *org_id, const char *id,
                                   struct mat_transition *out, struct mat_error *err)
{
	char nid[STORE_UUID_TEXT];
	struct store__cmd cmd = {.st = &st_tr_get, .params = (const char *const[]){org_id, nid}};
	enum mat_code rc;

	memset(out, 0, sizeof(*out));
	if (!org_ok(org_id) || !norm_id(id, nid))
		return not_found(err, org_id, id);
	rc = store__read(c, &cmd, 1, err);
	if (rc != MAT_OK)
		return rc;
	if (PQntuples(cmd.res) == 0)
		rc = not_found(err, org_id, nid);
	else
		rc = store__transition_from_row(cmd.res, 0, out, err);
	store__cmds_clear(&cmd, 1);
	return rc;
}

/* --- list ----------------------------------------------------------------------------------- */

/* Binds a page token to everything that selects rows (not to visibility, which is re-applied on
 * every page from the call). */
static uint64_t list_filter(const struct store_transition_filter *f)
{
	uint8_t all = f->org_id == NULL, st = (uint8_t)f->state;
	uint64_t h = store__fnv64(STORE_FNV64_INIT, "transitions", 12); /* with the NUL */

	h = store__fnv64(h, &all, 1);
	if (!all)
		h = store__fnv64(h, f->org_id, strlen(f->org_id) + 1);
	h = store__fnv64(h, &st, 1);
	h = store__fnv64_i64(h, f->start_time);
	return store__fnv64_i64(h, f->end_time);
}

enum mat_code store_transition_list(const struct store_call *c,
                                    const struct store_transition_filter *filter, int page_size,
                                    const char *page_token, struct mat_transition **out,
                                    size_t *n_out, char **next_token, struct mat_error *err)
{
	static const struct store_transition_filter none = {0};
	const struct store_transition_filter *f = filter != NULL ? filter : &none;
	char start[STORE_TIME_TEXT], end[STORE_TIME_TEXT], after_t[STORE_TIME_TEXT] = "-infinity";
	char after_org[MAT_MAX_ORG_ID + 1] = "";
	char after_id[STORE_UUID_TEXT] = "00000000-0000-0000-0000-000000000000";
	char st[8], limit[16];
	const char *p_org[7] = {f->org_id, st, start, end, after_t, after_id, limit};
	const char *p_all[9] = {st,
	                        start,
	                        end,
	                        after_t,
	                        after_org,
	                        after_id,
	                        c->only_visible ? "true" : "false",
	                        c->principal != NULL ? c->principal : "",
	                        limit};
	struct store__cmd cmds[2];
	size_t n_cmds = 0, page;
	struct mat_transition *list = NULL;
	char token[STORE_TOKEN_MAX_TEXT] = "";
	size_t n = 0;
	int rows;
	enum mat_code rc;

	*out = NULL;
	*n_out = 0;
	*next_token = NULL;
	if (f->org_id != NULL && !org_ok(f->org_id))
		return mat_error_set(err, MAT_NOT_FOUND, "organizations/%s not found", f->org_id);
	if ((int)f->state < MAT_TRANSITION_STATE_UNSPECIFIED ||
	    (int)f->state > MAT_TRANSITION_SUPERSEDED)
		return mat_error_field(err, "state", "unknown state");
	if (page_size <= 0)
		page_size = MAT_PAGE_SIZE_DEFAULT;
	if (page_size > MAT_PAGE_SIZE_MAX)
		page_size = MAT_PAGE_SIZE_MAX;
	if (page_token != NULL && page_token[0] != '\0') {
		uint8_t key[STORE_TOKEN_MAX_KEY], uuid[16];
		size_t klen;
		int64_t t;
		rc = store__token_decode(page_token, STORE_LIST_TRANSITIONS, list_filter(f), key,
		                         &klen, err);
		if (rc != MAT_OK)
			return rc;
		if (!store__key_pos_unpack(key, klen, &t, uuid, after_org, sizeof(after_org)))
			return mat_error_field(err, "page_token", "invalid page token");
		store__time_text(t, after_t);
		store__uuid_format(uuid, after_id);
	}
	store__time_text(f->start_time != 0 ? f->start_time : INT64_MIN, start);
	store__time_text(f->end_time != 0 ? f->end_time : INT64_MAX, end);
	snprintf(st, sizeof(st), "%d", (int)f->state);
	/* One row more than the page tells whether there is a next page. */
	snprintf(limit, sizeof(limit), "%d", page_size + 1);
	if (f->org_id != NULL) {
		/* The organization and the page in one snapshot: an unknown organization is
		 * NOT_FOUND, not an empty list. */
		cmds[n_cmds++] = (struct store__cmd){.st = &st_tr_org_exists, .params = p_org};
		cmds[n_cmds++] = (struct store__cmd){.st = &st_tr_org_page, .params = p_org};
	} else {
		cmds[n_cmds++] = (struct store__cmd){.st = &st_tr_all_page, .params = p_all};
	}
	page = n_cmds - 1;
	rc = store__read(c, cmds, n_cmds, err);
	if (rc != MAT_OK)
		return rc;
	if (f->org_id != NULL && PQntuples(cmds[0].res) == 0) {
		rc = mat_error_set(err, MAT_NOT_FOUND, "organizations/%s not found", f->org_id);
		goto out;
	}
	rows = PQntuples(cmds[page].res);
	if (rows > page_size)
		rows = page_size;
	list = calloc(rows > 0 ? (size_t)rows : 1, sizeof(*list));
	if (list == NULL) {
		rc = store__oom(err);
		goto out;
	}
	for (; n < (size_t)rows; n++) {
		rc = store__transition_from_row(cmds[page].res, (int)n, &list[n], err);
		if (rc != MAT_OK)
			goto out;
	}
	if (PQntuples(cmds[page].res) > page_size) {
		const struct mat_transition *last = &list[n - 1];
		uint8_t key[STORE_TOKEN_MAX_KEY], uuid[16];
		size_t klen;
		(void)store__uuid_parse(last->id, uuid);
		klen = store__key_pos_pack(last->propose_time, uuid, last->org_id, key);
		store__token_encode(STORE_LIST_TRANSITIONS, list_filter(f), key, klen, token);
	}
	*next_token = strdup(token);
	rc = *next_token != NULL ? MAT_OK : store__oom(err);
out:
	store__cmds_clear(cmds, n_cmds);
	if (rc != MAT_OK) {
		for (size_t i = 0; i < n; i++)
			mat_transition_cleanup(&list[i]);
		free(list);
		return rc;
	}
	*out = list;
	*n_out = n;
	return MAT_OK;
}

/* --- approve and reject --------------------------------------------------------------------- */

struct decide_args {
	const char *org_id;
	const char *id; /* canonical */
	const char *etag;
	const char *reason; /* reject only */
	char resource[160];
	struct mat_transition *out;
};

struct locked {
	enum mat_transition_state state;
	int from_level, to_level;
	char submitter[MAT_MAX_PRINCIPAL + 1];
};

/* Locks the transition row: existence, then (approval only) four-eyes, then etag, then state.
 * Four-eyes comes first because it is a question of who may act, which no re-read changes. */
static enum mat_code lock_transition(struct store__tx *tx, const struct decide_args *a,
                                     bool four_eyes, struct locked *l, struct mat_error *err)
{
	const char *principal = tx->c->principal != NULL ? tx->c->principal : "";
	PGresult *r = NULL;
	enum mat_code rc = STORE__EXEC(tx, &st_tr_lock, &r, err, a->org_id, a->id);

	if (rc != MAT_OK)
		return rc;
	if (PQntuples(r) == 0) {
		rc = not_found(err, a->org_id, a->id);
		goto out;
	}
	l->state = (enum mat_transition_state)atoi(PQgetvalue(r, 0, 0));
	l->from_level = atoi(PQgetvalue(r, 0, 1));
	l->to_level = atoi(PQgetvalue(r, 0, 2));
	snprintf(l->submitter, sizeof(l->submitter), "%s", PQgetvalue(r, 0, 5));
	if (four_eyes && !PQgetisnull(r, 0, 5) && strcmp(l->submitter, principal) == 0) {
		rc = mat_error_set(err, MAT_DENIED,
		                   "four-eyes: %s submitted the assessment of %s; another reviewer "
		                   "must approve it",
		                   principal, a->resource);
		goto out;
	}
	if (!store__etag_matches(a->etag, strtoll(PQgetvalue(r, 0, 3), NULL, 10),
	                         strtoll(PQgetvalue(r, 0, 4), NULL, 10))) {
		rc = mat_error_set(err, MAT_ABORTED, "etag mismatch: %s was changed; read it again",
		                   a->resource);
		goto out;
	}
	if (l->state != MAT_TRANSITION_PROPOSED) {
		rc = mat_error_set(err, MAT_PRECONDITION,
		                   "%s is %s: only a PROPOSED transition can "
		                   "be decided",
		                   a->resource,
		                   l->state >= 1 && l->state <= 4 ? state_names[l->state] : "?");
		goto out;
	}
	rc = MAT_OK;
out:
	PQclear(r);
	return rc;
}

static enum mat_code approve_body(struct store__tx *tx, void *arg, struct mat_error *err)
{
	struct decide_args *a = arg;
	const char *principal = tx->c->principal != NULL ? tx->c->principal : "";
	char to[8];
	const char *p_apply[3] = {a->org_id, a->id, principal};
	const char *p_org[2] = {a->org_id, to};
	struct store__cmd cmds[3] = {{.st = &st_tr_apply, .params = p_apply},
	                             {.st = &st_tr_org_level, .params = p_org}};
	struct store__audit audit;
	struct store__events ev;
	struct mat_organization org = {0};
	struct locked l;
	PGresult *r = NULL;
	int current;
	enum mat_code rc;

	mat_transition_cleanup(a->out);
	/* Organization first, like a submission: the order every writer of the chain locks in. */
	rc = STORE__EXEC(tx, &st_tr_org_lock, &r, err, a->org_id);
	if (rc != MAT_OK)
		return rc;
	if (PQntuples(r) == 0) {
		PQclear(r);
		return not_found(err, a->org_id, a->id);
	}
	current = atoi(PQgetvalue(r, 0, 0));
	PQclear(r);
	rc = lock_transition(tx, a, true, &l, err);
	if (rc != MAT_OK)
		return rc;
	if (l.from_level != current)
		return mat_error_set(
		    err, MAT_PRECONDITION,
		    "%s is stale: it starts at level %d but organizations/%s is at "
		    "level %d now",
		    a->resource, l.from_level, a->org_id, current);
	snprintf(to, sizeof(to), "%d", l.to_level);
	rc = store__audit_cmd(&audit, tx->c, a->resource, 0, &cmds[2], err);
	if (rc != MAT_OK)
		return rc;
	rc = store__tx_run(tx, cmds, 3, err);
	if (rc == MAT_OK)
		rc = store__transition_from_row(cmds[0].res, 0, a->out, err);
	if (rc == MAT_OK)
		rc = store__org_from_row(cmds[1].res, 0, &org, err);
	store__cmds_clear(cmds, 3);
	/* The organization's level changed with it: ORGANIZATION_UPDATED after the transition. */
	store__events_init(&ev, a->org_id);
	if (rc == MAT_OK)
		rc = store__event_add(&ev, STORE_EVENT_TRANSITION_APPLIED, a->out, err);
	if (rc == MAT_OK)
		rc = store__event_add(&ev, STORE_EVENT_ORG_UPDATED, &org, err);
	if (rc == MAT_OK)
		rc = store__events_write(tx, &ev, err);
	store__events_reset(&ev);
	mat_organization_cleanup(&org);
	return rc;
}

static enum mat_code reject_body(struct store__tx *tx, void *arg, struct mat_error *err)
{
	struct decide_args *a = arg;
	const char *principal = tx->c->principal != NULL ? tx->c->principal : "";
	const char *p_reject[4] = {a->org_id, a->id, principal, a->reason};
	struct store__cmd cmds[2] = {{.st = &st_tr_reject, .params = p_reject}};
	struct store__audit audit;
	struct store__events ev;
	struct locked l;
	enum mat_code rc;

	mat_transition_cleanup(a->out);
	/* No organization lock: rejecting leaves the chain and current_level alone, and the
	 * transition's row lock orders it against an approval or a superseding submission (which
	 * then find it REJECTED, or we find it no longer PROPOSED). */
	rc = lock_transition(tx, a, false, &l, err);
	if (rc != MAT_OK)
		return rc;
	rc = store__audit_cmd(&audit, tx->c, a->resource, 0, &cmds[1], err);
	if (rc != MAT_OK)
		return rc;
	rc = store__tx_run(tx, cmds, 2, err);
	if (rc == MAT_OK)
		rc = store__transition_from_row(cmds[0].res, 0, a->out, err);
	store__cmds_clear(cmds, 2);
	store__events_init(&ev, a->org_id);
	if (rc == MAT_OK)
		rc = store__event_add(&ev, STORE_EVENT_TRANSITION_REJECTED, a->out, err);
	if (rc == MAT_OK)
		rc = store__events_write(tx, &ev, err);
	store__events_reset(&ev);
	return rc;
}

static enum mat_code decide(const struct store_call *c, const char *org_id, const char *id,
                            const char *reason, const char *etag, store__tx_body body,
                            struct mat_transition *out, struct mat_error *err)
{
	char nid[STORE_UUID_TEXT];
	struct decide_args a = {
	    .org_id = org_id, .id = nid, .etag = etag, .reason = reason, .out = out};
	enum mat_code rc;

	memset(out, 0, sizeof(*out));
	if (!org_ok(org_id) || !norm_id(id, nid))
		return not_found(err, org_id, id);
	snprintf(a.resource, sizeof(a.resource), "organizations/%s/transitions/%s", org_id, nid);
	rc = store__transact(c, body, &a, err);
	if (rc != MAT_OK)
		mat_transition_cleanup(out);
	return rc;
}

enum mat_code store_transition_approve(const struct store_call *c, const char *org_id,
                                       const char *id, const char *etag, struct mat_transition *out,
                                       struct mat_error *err)
{
	return decide(c, org_id, id, NULL, etag, approve_body, out, err);
}

enum mat_code store_transition_reject(const struct store_call *c, const char *org_id,
                                      const char *id, const char *reason, const char *etag,
                                      struct mat_transition *out, struct mat_error *err)
{
	/* Validated by the caller; checked again so the database's CHECK never has to answer
	 * with a message that names no field. */
	if (reason == NULL || reason[0] == '\0' || strlen(reason) > MAT_MAX_REASON) {
		memset(out, 0, sizeof(*out));
		return mat_error_field(err, "reason",
		                       reason == NULL || reason[0] == '\0'
		                           ? "required to reject a transition"
		                           : "longer than 4000 bytes");
	}
	return decide(c, org_id, id, reason, etag, reject_body, out, err);
}
