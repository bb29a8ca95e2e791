/* Level transitions against a real server: get, approve (current_level, applied_seq, audit,
 * etag), four-eyes, stale and non-PROPOSED preconditions, reject, list (filters, keyset pages
 * across organizations, visibility, tokens bound to the filter), and a few seconds of concurrent
 * submissions, approvals and rejections after which every organization's chain still holds. */
#include "mat_model.h"
#include "store_internal.h"
#include "store_test_db.h"

#include <inttypes.h>
#include <limits.h>
#include <pthread.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

static struct tdb *db;

static int setup(void **state)
{
	(void)state;
	db = tdb_open(NULL, 6, true);
	return 0;
}

static int teardown(void **state)
{
	(void)state;
	tdb_close(db);
	return 0;
}

#define EDITOR "spiffe://corp.example/editor"
#define EDITOR2 "spiffe://corp.example/editor-2"
#define REVIEWER "spiffe://corp.example/reviewer"

static int64_t q(const char *fmt, ...) MAT_PRINTF(1, 2);
static int64_t q(const char *fmt, ...)
{
	char sql[2048];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(sql, sizeof(sql), fmt, ap);
	va_end(ap);
	return tdb_scalar(db, sql);
}

static void create_org(const char *id, enum mat_policy policy)
{
	struct store_call c = tdb_call(db, "admin", 5000);
	struct mat_organization in = {.id = (char *)id,
	                              .display_name = (char *)"O",
	                              .description = (char *)"",
	                              .transition_policy = policy};
	struct mat_organization out;
	struct mat_error err;

	mat_error_clear(&err);
	if (store_org_create(&c, &in, NULL, &out, &err) != MAT_OK)
		fail_msg("create org %s: %s", id, err.message);
	mat_organization_cleanup(&out);
}

/* Answers that make every practice up to `level` IMPLEMENTED (level 0: none). */
static size_t answers_for_level(int level, struct mat_answer *out)
{
	const struct mat_model *m = mat_model_find("mlops-v1");
	size_t n = 0;

	assert_non_null(m);
	for (size_t i = 0; i < m->n_practices; i++) {
		if (m->practices[i].level > level)
			continue;
		out[n++] = (struct mat_answer){.practice_id = (char *)m->practices[i].id,
		                               .status = MAT_STATUS_IMPLEMENTED,
		                               .note = (char *)"",
		                               .evidence_uri = (char *)""};
	}
	return n;
}

/* Creates (as `creator`) an assessment at `level`, submits it as `submitter`; returns its id.
 * When `err_out` is NULL a failure fails the test; else it returns NULL with the error. */
static char *try_submit(const char *org, int level, const char *creator, const char *submitter,
                        struct mat_error *err_out)
{
	struct store_call c = tdb_call(db, creator, 20000);
	struct mat_answer ans[64];
	size_t n = answers_for_level(level, ans);
	struct mat_assessment a, b, s;
	struct mat_error local, *err_p = err_out != NULL ? err_out : &local;
	struct mat_error err;
	enum mat_code rc;
	char *id = NULL;

	mat_error_clear(&err);
	rc = store_assessment_create(&c, org, "T", NULL, NULL, &a, &err);
	if (rc == MAT_OK) {
		rc = store_assessment_update_answers(&c, org, a.id, ans, n, NULL, &b, &err);
		mat_assessment_cleanup(&b);
	}
	if (rc == MAT_OK) {
		c.principal = submitter;
		rc = store_assessment_submit(&c, org, a.id, NULL, &s, &err);
		mat_assessment_cleanup(&s);
	}
	if (rc == MAT_OK)
		id = strdup(a.id);
	mat_assessment_cleanup(&a);
	*err_p = err;
	err_p->code = rc;
	if (err_out == NULL && rc != MAT_OK)
		fail_msg("submit on %s: %s %s", org, mat_code_name(rc), err.message);
	return id;
}

static char *submit_at_level(const char *org, int level, const char *principal)
{
	return try_submit(org, level, principal, principal, NULL);
}

/* The organization's transitions in `state` (UNSPECIFIED: all), oldest first; caller frees. */
static struct mat_transition *list_of(const char *org, enum mat_transition_state state, size_t *n)
{
	struct store_call c = tdb_call(db, REVIEWER, 5000);
	struct store_transition_filter f = {.org_id = org, .state = state};
	struct mat_transition *list = NULL;
	char *next = NULL;
	struct mat_error err;

	mat_error_clear(&err);
	if (store_transition_list(&c, &f, 1000, "", &list, n, &next, &err) != MAT_OK)
		fail_msg("list %s: %s", org, err.message);
	assert_string_equal(next, "");
	free(next);
	return list;
}

static void free_list(struct mat_transition *list, size_t n)
{
	for (size_t i = 0; i < n; i++)
		mat_transition_cleanup(&list[i]);
	free(list);
}

/* The PROPOSED transition of the organization (exactly one). */
static struct mat_transition proposed_of(const char *org)
{
	size_t n = 0;
	struct mat_transition *list = list_of(org, MAT_TRANSITION_PROPOSED, &n), t;

	assert_int_equal(n, 1);
	t = list[0];
	memset(&list[0], 0, sizeof(list[0]));
	free_list(list, n);
	return t;
}

/* --- get -------------------------------------------------------------------------------------- */

static void test_store_transition_get(void **state)
{
	struct store_call c;
	struct mat_transition t, got;
	struct mat_error err;
	char *a1, upper[40];

	(void)state;
	TDB_SKIP_IF_NONE(db);
	create_org("tr-get", MAT_POLICY_MANUAL_REVIEW);
	a1 = submit_at_level("tr-get", 2, EDITOR);
	t = proposed_of("tr-get");
	assert_string_equal(t.org_id, "tr-get");
	assert_string_equal(t.assessment_id, a1);
	assert_int_equal(t.from_level, 0);
	assert_int_equal(t.to_level, 2);
	assert_int_equal(t.direction, MAT_DIRECTION_UPGRADE);
	assert_int_equal(t.state, MAT_TRANSITION_PROPOSED);
	assert_string_equal(t.proposer, EDITOR);
	assert_null(t.decider);
	assert_int_equal(t.decide_time, 0);
	assert_true(t.propose_time > 0);
	assert_int_equal(t.update_time, t.propose_time);
	assert_string_equal(t.reason, "");
	assert_int_equal(strlen(t.etag), 16);

	c = tdb_call(db, REVIEWER, 5000);
	mat_error_clear(&err);
	/* Ids are compared canonically: upper case names the same transition. */
	for (size_t i = 0; i <= strlen(t.id); i++)
		upper[i] = (char)(t.id[i] >= 'a' && t.id[i] <= 'f' ? t.id[i] - 32 : t.id[i]);
	assert_int_equal(store_transition_get(&c, "tr-get", upper, &got, &err), MAT_OK);
	assert_string_equal(got.id, t.id);
	assert_string_equal(got.etag, t.etag);
	assert_int_equal(got.propose_time, t.propose_time);
	mat_transition_cleanup(&got);
	assert_int_equal(store_transition_get(&c, "other-org", t.id, &got, &err), MAT_NOT_FOUND);
	assert_int_equal(store_transition_get(&c, "tr-get", "not-a-uuid", &got, &err),
	                 MAT_NOT_FOUND);
	assert_int_equal(
	    store_transition_get(&c, "tr-get", "00000000-0000-7000-8000-000000000000", &got, &err),
	    MAT_NOT_FOUND);
	assert_non_null(strstr(err.message, "organizations/tr-get/transitions/"));
	mat_transition_cleanup(&t);
	free(a1);
}

/* --- approve ---------------------------------------------------------------------------------- */

static void test_store_transition_approve(void **state)
{
	struct store_call c;
	struct mat_transition t, t2, out, again;
	struct mat_organization before, after;
	struct mat_error err;
	char *a1, *a2;

	(void)state;
	TDB_SKIP_IF_NONE(db);
	create_org("ap-ok", MAT_POLICY_MANUAL_REVIEW);
	a1 = submit_at_level("ap-ok", 2, EDITOR);
	t = proposed_of("ap-ok");
	c = tdb_call(db, REVIEWER, 5000);
	mat_error_clear(&err);
	assert_int_equal(store_org_get(&c, "ap-ok", &before, &err), MAT_OK);
	assert_int_equal(before.current_level, 0);

	assert_int_equal(store_transition_approve(&c, "ap-ok", t.id, t.etag, &out, &err), MAT_OK);
	assert_string_equal(out.id, t.id);
	assert_int_equal(out.state, MAT_TRANSITION_APPLIED);
	assert_string_equal(out.decider, REVIEWER);
	assert_true(out.decide_time >= t.propose_time);
	assert_int_equal(out.update_time, out.decide_time);
	assert_int_equal(out.propose_time, t.propose_time);
	assert_string_equal(out.proposer, EDITOR);
	assert_string_not_equal(out.etag, t.etag);
	assert_int_equal(q("SELECT applied_seq FROM transitions WHERE id = '%s'", t.id), 1);
	/* The organization moved, and its etag with it. */
	assert_int_equal(store_org_get(&c, "ap-ok", &after, &err), MAT_OK);
	assert_int_equal(after.current_level, 2);
	assert_string_not_equal(after.etag, before.etag);
	assert_true(after.update_time >= before.update_time);
	assert_int_equal(q("SELECT count(*) FROM audit_events WHERE resource = "
	                   "'organizations/ap-ok/transitions/%s' AND principal = '%s' AND code = 0 "
	                   "AND method = '/mlops.maturity.v1.Test/Method' AND request_id = 'req-1'",
	                   t.id, REVIEWER),
	                 1);
	/* What get returns is what approve returned. */
	assert_int_equal(store_transition_get(&c, "ap-ok", t.id, &again, &err), MAT_OK);
	assert_string_equal(again.etag, out.etag);
	assert_int_equal(again.decide_time, out.decide_time);
	mat_transition_cleanup(&again);

	/* Applied already: FAILED_PRECONDITION, nothing written. */
	assert_int_equal(store_transition_approve(&c, "ap-ok", t.id, NULL, &again, &err),
	                 MAT_PRECONDITION);
	assert_non_null(strstr(err.message, "APPLIED"));
	assert_null(again.id);

	/* The next proposal starts at the new level; a wrong etag is ABORTED. */
	a2 = submit_at_level("ap-ok", 3, EDITOR);
	t2 = proposed_of("ap-ok");
	assert_int_equal(t2.from_level, 2);
	assert_int_equal(
	    store_transition_approve(&c, "ap-ok", t2.id, "0123456789abcdef", &again, &err),
	    MAT_ABORTED);
	assert_int_equal(store_transition_approve(&c, "ap-ok", t2.id, t.etag, &again, &err),
	                 MAT_ABORTED);
	assert_int_equal(store_transition_approve(&c, "ap-ok", t2.id, "", &again, &err), MAT_OK);
	assert_int_equal(again.state, MAT_TRANSITION_APPLIED);
	assert_int_equal(q("SELECT applied_seq FROM transitions WHERE id = '%s'", t2.id), 2);
	assert_int_equal(q("SELECT current_level FROM organizations WHERE id = 'ap-ok'"), 3);
	mat_transition_cleanup(&again);

	/* Unknown names. */
	assert_int_equal(store_transition_approve(&c, "no-such-org", t2.id, NULL, &again, &err),
	                 MAT_NOT_FOUND);
	assert_int_equal(store_transition_approve(&c, "ap-ok", "0000", NULL, &again, &err),
	                 MAT_NOT_FOUND);
	assert_int_equal(store_transition_approve(&c, "ap-ok",
	                                          "00000000-0000-7000-8000-000000000000", NULL,
	                                          &again, &err),
	                 MAT_NOT_FOUND);
	mat_organization_cleanup(&before);
	mat_organization_cleanup(&after);
	mat_transition_cleanup(&t);
	mat_transition_cleanup(&t2);
	mat_transition_cleanup(&out);
	free(a1);
	free(a2);
}

static void test_store_transition_four_eyes(void **state)
{
	struct store_call c;
	struct mat_transition t, out;
	struct mat_error err;
	char *a1;

	(void)state;
	TDB_SKIP_IF_NONE(db);
	create_org("ap-eyes", MAT_POLICY_MANUAL_REVIEW);
	/* Created by EDITOR, submitted by EDITOR2: the submitter is the one who may not approve. */
	a1 = try_submit("ap-eyes", 1, EDITOR, EDITOR2, NULL);
	t = proposed_of("ap-eyes");
	c = tdb_call(db, EDITOR2, 5000);
	mat_error_clear(&err);
	assert_int_equal(store_transition_approve(&c, "ap-eyes", t.id, t.etag, &out, &err),
	                 MAT_DENIED);
	assert_non_null(strstr(err.message, "four-eyes"));
	assert_non_null(strstr(err.message, EDITOR2));
	assert_null(out.id);
	/* Even with a stale etag, the answer is the denial (who may act comes first). */
	assert_int_equal(
	    store_transition_approve(&c, "ap-eyes", t.id, "ffffffffffffffff", &out, &err),
	    MAT_DENIED);
	assert_int_equal(q("SELECT state FROM transitions WHERE id = '%s'", t.id), 1);
	assert_int_equal(q("SELECT current_level FROM organizations WHERE id = 'ap-eyes'"), 0);
	assert_int_equal(q("SELECT count(*) FROM audit_events WHERE resource = "
	                   "'organizations/ap-eyes/transitions/%s'",
	                   t.id),
	                 0);
	/* The creator did not submit it: allowed. */
	c.principal = EDITOR;
	assert_int_equal(store_transition_approve(&c, "ap-eyes", t.id, t.etag, &out, &err), MAT_OK);
	assert_string_equal(out.decider, EDITOR);
	assert_int_equal(q("SELECT current_level FROM organizations WHERE id = 'ap-eyes'"), 1);
	mat_transition_cleanup(&t);
	mat_transition_cleanup(&out);
	free(a1);
}

static void test_store_transition_stale(void **state)
{
	struct store_call c;
	struct mat_transition t, out;
	struct mat_error err;
	char *a1;

	(void)state;
	TDB_SKIP_IF_NONE(db);
	create_org("ap-stale", MAT_POLICY_MANUAL_REVIEW);
	a1 = submit_at_level("ap-stale", 2, EDITOR);
	t = proposed_of("ap-stale");
	/* Through the API a newer submission would supersede the proposal first; behind its back,
	 * apply another transition (keeping the chain valid) so the proposal's from_level (0) no
	 * longer is the organization's level (1). */
	tdb_exec(db, "BEGIN; "
	             "INSERT INTO transitions (org_id, id, assessment_id, from_level, to_level, "
	             "direction, state, proposer, decider, decide_time, applied_seq) SELECT "
	             "org_id, gen_random_uuid(), assessment_id, 0, 1, 1, 2, 'x', 'y', now(), 1 "
	             "FROM transitions WHERE org_id = 'ap-stale'; "
	             "UPDATE organizations SET current_level = 1 WHERE id = 'ap-stale'; COMMIT");
	c = tdb_call(db, REVIEWER, 5000);
	mat_error_clear(&err);
	assert_int_equal(store_transition_approve(&c, "ap-stale", t.id, t.etag, &out, &err),
	                 MAT_PRECONDITION);
	assert_non_null(strstr(err.message, "stale"));
	assert_int_equal(q("SELECT state FROM transitions WHERE id = '%s'", t.id), 1);
	assert_int_equal(q("SELECT current_level FROM organizations WHERE id = 'ap-stale'"), 1);
	/* A stale proposal can still be rejected. */
	assert_int_equal(
	    store_transition_reject(&c, "ap-stale", t.id, "stale proposal", t.etag, &out, &err),
	    MAT_OK);
	assert_int_equal(out.state, MAT_TRANSITION_REJECTED);
	mat_transition_cleanup(&out);
	mat_transition_cleanup(&t);
	free(a1);
}

static void test_store_transition_reject_and_not_proposed(void **state)
{
	struct store_call c;
	struct mat_transition t1, t2, out;
	struct mat_error err;
	char *a1, *a2;

	(void)state;
	TDB_SKIP_IF_NONE(db);
	create_org("rj", MAT_POLICY_MANUAL_REVIEW);
	a1 = submit_at_level("rj", 1, EDITOR);
	t1 = proposed_of("rj");
	a2 = submit_at_level("rj", 2, EDITOR);
	t2 = proposed_of("rj");
	c = tdb_call(db, REVIEWER, 5000);
	mat_error_clear(&err);
	/* Superseded by the second submission. */
	assert_int_equal(store_transition_approve(&c, "rj", t1.id, NULL, &out, &err),
	                 MAT_PRECONDITION);
	assert_non_null(strstr(err.message, "SUPERSEDED"));
	assert_int_equal(store_transition_reject(&c, "rj", t1.id, "no", NULL, &out, &err),
	                 MAT_PRECONDITION);
	/* The reason is required; the etag must match. */
	assert_int_equal(store_transition_reject(&c, "rj", t2.id, "", NULL, &out, &err),
	                 MAT_INVALID);
	assert_int_equal(err.n_violations, 1);
	assert_string_equal(err.violations[0].field, "reason");
	assert_int_equal(store_transition_reject(&c, "rj", t2.id, "no", t1.etag, &out, &err),
	                 MAT_ABORTED);
	/* Four-eyes is for approval only: the submitter may withdraw its own proposal. */
	c.principal = EDITOR;
	assert_int_equal(store_transition_reject(&c, "rj", t2.id,
	                                         "evidence is '; DROP TABLE x; -- weak", t2.etag,
	                                         &out, &err),
	                 MAT_OK);
	assert_int_equal(out.state, MAT_TRANSITION_REJECTED);
	assert_string_equal(out.decider, EDITOR);
	assert_string_equal(out.reason, "evidence is '; DROP TABLE x; -- weak");
	assert_true(out.decide_time > 0);
	assert_int_equal(out.update_time, out.decide_time);
	assert_string_not_equal(out.etag, t2.etag);
	assert_int_equal(q("SELECT count(*) FROM audit_events WHERE resource = "
	                   "'organizations/rj/transitions/%s' AND principal = '%s'",
	                   t2.id, EDITOR),
	                 1);
	mat_transition_cleanup(&out);
	/* Rejected is final. */
	c.principal = REVIEWER;
	assert_int_equal(store_transition_approve(&c, "rj", t2.id, NULL, &out, &err),
	                 MAT_PRECONDITION);
	assert_non_null(strstr(err.message, "REJECTED"));
	assert_int_equal(store_transition_reject(&c, "rj", t2.id, "again", NULL, &out, &err),
	                 MAT_PRECONDITION);
	assert_int_equal(q("SELECT current_level FROM organizations WHERE id = 'rj'"), 0);
	assert_int_equal(store_transition_reject(&c, "rj", "00000000-0000-7000-8000-000000000000",
	                                         "x", NULL, &out, &err),
	                 MAT_NOT_FOUND);
	mat_transition_cleanup(&t1);
	mat_transition_cleanup(&t2);
	free(a1);
	free(a2);
}

/* --- list ------------------------------------------------------------------------------------- */

struct page_walk {
	size_t n;
	struct mat_transition items[512];
	int pages;
};

/* Every page of the list with `page_size`; fails the test on errors. */
static void walk(const struct store_call *c, const struct store_transition_filter *f, int page_size,
                 struct page_walk *w)
{
	char *token = strdup("");

	w->n = 0;
	w->pages = 0;
	for (;;) {
		struct mat_transition *list = NULL;
		size_t n = 0;
		char *next = NULL;
		struct mat_error err;

		mat_error_clear(&err);
		if (store_transition_list(c, f, page_size, token, &list, &n, &next, &err) != MAT_OK)
			fail_msg("list: %s", err.message);
		assert_true(n <= (size_t)page_size);
		for (size_t i = 0; i < n; i++) {
			assert_true(w->n < 512);
			w->items[w->n++] = list[i];
		}
		free(list);
		free(token);
		token = next;
		w->pages++;
		if (token[0] == '\0')
			break;
		assert_int_equal(n, page_size);
	}
	free(token);
}

static void walk_free(struct page_walk *w)
{
	for (size_t i = 0; i < w->n; i++)
		mat_transition_cleanup(&w->items[i]);
	w->n = 0;
}

/* Strictly increasing (propose_time, org_id, id). */
static void assert_ordered(const struct page_walk *w)
{
	for (size_t i = 1; i < w->n; i++) {
		const struct mat_transition *a = &w->items[i - 1], *b = &w->items[i];
		int c = a->propose_time < b->propose_time ? -1 : a->propose_time > b->propose_time;
		if (c == 0)
			c = strcmp(a->org_id, b->org_id);
		if (c == 0)
			c = strcmp(a->id, b->id);
		if (c >= 0)
			fail_msg("out of order at %zu: %s/%s then %s/%s", i, a->org_id, a->id,
			         b->org_id, b->id);
	}
}

static void test_store_transition_list(void **state)
{
	static struct page_walk w;
	struct store_call c;
	struct store_transition_filter f = {0};
	struct mat_transition *list = NULL;
	size_t n;
	char *next = NULL, *tok;
	struct mat_error err;
	int64_t total;
	mat_time_us mid;
	char *ids[16];
	int k = 0;

	(void)state;
	TDB_SKIP_IF_NONE(db);
	create_org("ls-a", MAT_POLICY_AUTOMATIC);
	create_org("ls-b", MAT_POLICY_MANUAL_REVIEW);
	create_org("ls-c", MAT_POLICY_AUTOMATIC);
	for (int round = 0; round < 3; round++) {
		ids[k++] = submit_at_level("ls-a", 1 + round % 2 * 2, EDITOR);
		ids[k++] = submit_at_level("ls-b", 1 + round, EDITOR);
		ids[k++] = submit_at_level("ls-c", 4 - round, EDITOR);
	}
	/* Several transitions with one propose_time: ties are ordered by name. */
	tdb_exec(db, "UPDATE transitions SET propose_time = '2030-01-01 00:00:00.000001+00' "
	             "WHERE org_id IN ('ls-a', 'ls-c')");
	c = tdb_call(db, REVIEWER, 5000);
	total = q("SELECT count(*) FROM transitions");
	assert_true(total >= 9);

	/* Every organization, pages of 2: all of them, once each, in order. */
	walk(&c, &f, 2, &w);
	assert_int_equal(w.n, total);
	assert_ordered(&w);
	assert_true(w.pages >= 5);
	walk_free(&w);

	/* One organization. */
	f.org_id = "ls-b";
	walk(&c, &f, 1, &w);
	assert_int_equal(w.n, q("SELECT count(*) FROM transitions WHERE org_id = 'ls-b'"));
	for (size_t i = 0; i < w.n; i++)
		assert_string_equal(w.items[i].org_id, "ls-b");
	assert_ordered(&w);
	walk_free(&w);
	f.org_id = "ls-a";
	walk(&c, &f, 1, &w);
	assert_int_equal(w.n, 3);
	assert_ordered(&w);
	walk_free(&w);

	/* State. */
	f.org_id = NULL;
	f.state = MAT_TRANSITION_APPLIED;
	walk(&c, &f, 3, &w);
	assert_int_equal(w.n, q("SELECT count(*) FROM transitions WHERE state = 2"));
	for (size_t i = 0; i < w.n; i++)
		assert_int_equal(w.items[i].state, MAT_TRANSITION_APPLIED);
	walk_free(&w);
	f.state = MAT_TRANSITION_SUPERSEDED;
	walk(&c, &f, 3, &w);
	assert_int_equal(w.n, q("SELECT count(*) FROM transitions WHERE state = 4"));
	assert_true(w.n >= 2);
	walk_free(&w);

	/* Time window [start, end) on propose_time, to the microsecond. */
	f.state = MAT_TRANSITION_STATE_UNSPECIFIED;
	mid = q("SELECT mat_epoch_us(propose_time) FROM transitions WHERE org_id = 'ls-b' "
	        "ORDER BY propose_time OFFSET 1 LIMIT 1");
	f.start_time = mid;
	walk(&c, &f, 4, &w);
	assert_int_equal(w.n, q("SELECT count(*) FROM transitions WHERE mat_epoch_us(propose_time) "
	                        ">= %" PRId64,
	                        mid));
	walk_free(&w);
	f.start_time = 0;
	f.end_time = mid;
	walk(&c, &f, 4, &w);
	assert_int_equal(w.n, q("SELECT count(*) FROM transitions WHERE mat_epoch_us(propose_time) "
	                        "< %" PRId64,
	                        mid));
	for (size_t i = 0; i < w.n; i++)
		assert_true(w.items[i].propose_time < mid);
	walk_free(&w);
	f.start_time = mid;
	f.end_time = mid + 1;
	walk(&c, &f, 4, &w);
	assert_int_equal(w.n, 1);
	walk_free(&w);
	f.start_time = 1893456000000000; /* 2030-01-01: exactly the tied ones (ls-a, ls-c) */
	f.end_time = 0;
	walk(&c, &f, 4, &w);
	assert_int_equal(w.n, 6);
	assert_ordered(&w);
	assert_string_equal(w.items[0].org_id, "ls-a");
	assert_string_equal(w.items[5].org_id, "ls-c");
	walk_free(&w);

	/* Tokens are bound to the filter; garbage is INVALID on page_token; unknown org. */
	f = (struct store_transition_filter){0};
	mat_error_clear(&err);
	assert_int_equal(store_transition_list(&c, &f, 1, "", &list, &n, &next, &err), MAT_OK);
	assert_int_equal(n, 1);
	mat_transition_cleanup(&list[0]);
	free(list);
	tok = next;
	assert_string_not_equal(tok, "");
	f.state = MAT_TRANSITION_APPLIED;
	assert_int_equal(store_transition_list(&c, &f, 1, tok, &list, &n, &next, &err),
	                 MAT_INVALID);
	assert_string_equal(err.violations[0].field, "page_token");
	assert_null(list);
	assert_null(next);
	f.state = 0;
	f.org_id = "ls-a";
	assert_int_equal(store_transition_list(&c, &f, 1, tok, &list, &n, &next, &err),
	                 MAT_INVALID);
	f.org_id = NULL;
	assert_int_equal(
	    store_transition_list(&c, &f, 1, "bm90IGEgdG9rZW4", &list, &n, &next, &err),
	    MAT_INVALID);
	free(tok);
	f.org_id = "no-such-org";
	assert_int_equal(store_transition_list(&c, &f, 1, "", &list, &n, &next, &err),
	                 MAT_NOT_FOUND);
	f.org_id = NULL;
	f.state = (enum mat_transition_state)7;
	mat_error_clear(&err);
	assert_int_equal(store_transition_list(&c, &f, 1, "", &list, &n, &next, &err), MAT_INVALID);
	assert_string_equal(err.violations[0].field, "state");
	for (int i = 0; i < k; i++)
		free(ids[i]);
}

static void test_store_transition_list_only_visible(void **state)
{
	static struct page_walk w;
	struct store_call c;
	struct store_transition_filter f = {0};
	struct mat_error err;
	char *ids[3];

	(void)state;
	TDB_SKIP_IF_NONE(db);
	create_org("vis-x", MAT_POLICY_MANUAL_REVIEW);
	create_org("vis-y", MAT_POLICY_MANUAL_REVIEW);
	ids[0] = submit_at_level("vis-x", 1, EDITOR);
	ids[1] = submit_at_level("vis-y", 1, EDITOR);
	ids[2] = submit_at_level("vis-y", 2, EDITOR);
	tdb_exec(db, "INSERT INTO role_bindings (id, principal, role, org_id, creator) VALUES "
	             "(gen_random_uuid(), 'only-x', 4, 'vis-x', 'admin'), "
	             "(gen_random_uuid(), 'global', 4, NULL, 'admin')");
	c = tdb_call(db, "only-x", 5000);
	c.only_visible = true;
	mat_error_clear(&err);
	walk(&c, &f, 1, &w);
	assert_int_equal(w.n, 1);
	assert_string_equal(w.items[0].org_id, "vis-x");
	walk_free(&w);
	/* A global binding sees everything; no binding sees nothing. */
	c.principal = "global";
	walk(&c, &f, 5, &w);
	assert_int_equal(w.n, q("SELECT count(*) FROM transitions"));
	walk_free(&w);
	c.principal = "nobody";
	walk(&c, &f, 5, &w);
	assert_int_equal(w.n, 0);
	assert_int_equal(w.pages, 1);
	for (int i = 0; i < 3; i++)
		free(ids[i]);
}

/* --- faults ------------------------------------------------------------------------------- */

/* Every libpq operation of an approval failing in turn: the approval is all or nothing (the
 * transition applied, the organization at its level and the audit row, or none of them), the
 * error is UNAVAILABLE, and nothing leaks (ASan). */
static void test_store_transition_approve_faults(void **state)
{
	struct store_call c;
	struct mat_transition t, out;
	struct mat_error err;
	long ops;
	int failures = 0;
	char *a;

	(void)state;
	TDB_SKIP_IF_NONE(db);
	create_org("fault-ap", MAT_POLICY_MANUAL_REVIEW);
	a = submit_at_level("fault-ap", 1, EDITOR);
	free(a);
	t = proposed_of("fault-ap");
	c = tdb_call(db, REVIEWER, 10000);
	store_fault_set(INT_MAX);
	mat_error_clear(&err);
	assert_int_equal(store_transition_approve(&c, "fault-ap", t.id, NULL, &out, &err), MAT_OK);
	ops = store_fault_count();
	store_fault_set(0);
	mat_transition_cleanup(&out);
	mat_transition_cleanup(&t);
	assert_true(ops > 3);
	for (long nth = 1; nth <= ops + 5; nth++) {
		int64_t level = q("SELECT current_level FROM organizations WHERE id = 'fault-ap'");
		enum mat_code rc;
		int64_t state_now, audits, now_level;

		a = submit_at_level("fault-ap", level == 1 ? 2 : 1, EDITOR);
		free(a);
		t = proposed_of("fault-ap");
		c = tdb_call(db, REVIEWER, 10000);
		mat_error_clear(&err);
		store_fault_set((int)nth);
		rc = store_transition_approve(&c, "fault-ap", t.id, NULL, &out, &err);
		store_fault_set(0);
		if (rc != MAT_OK) {
			failures++;
			if (rc != MAT_UNAVAILABLE)
				fail_msg("fault %ld: %s %s", nth, mat_code_name(rc), err.message);
			assert_null(out.id);
		}
		state_now = q("SELECT state FROM transitions WHERE id = '%s'", t.id);
		audits = q("SELECT count(*) FROM audit_events WHERE resource = "
		           "'organizations/fault-ap/transitions/%s'",
		           t.id);
		now_level = q("SELECT current_level FROM organizations WHERE id = 'fault-ap'");
		/* A failure after COMMIT was sent may still have committed; half is never. */
		if (state_now == MAT_TRANSITION_APPLIED) {
			assert_int_equal(audits, 1);
			assert_int_equal(now_level, t.to_level);
		} else {
			assert_int_equal(state_now, MAT_TRANSITION_PROPOSED);
			assert_int_equal(audits, 0);
			assert_int_equal(now_level, level);
			assert_true(rc != MAT_OK);
		}
		mat_transition_cleanup(&out);
		mat_transition_cleanup(&t);
	}
	print_message("%ld libpq operations in one approval; %d of %ld injected faults failed it\n",
	              ops, failures, ops + 5);
	assert_true(failures > 0);
}

/* --- concurrency ------------------------------------------------------------------------------ */

#define N_ORGS 4
#define N_THREADS 8
#define RUN_MS 3000

struct worker {
	int no;
	unsigned seed;
	int64_t stop_ms;
	long submitted, approved, rejected, denied, precondition, aborted, other;
	enum mat_code other_rc;
	char other_msg[320];
};

static void count(struct worker *w, enum mat_code rc, const struct mat_error *err)
{
	switch (rc) {
	case MAT_OK:
		break;
	case MAT_DENIED:
		w->denied++;
		break;
	case MAT_PRECONDITION:
		w->precondition++;
		break;
	case MAT_ABORTED:
		w->aborted++;
		break;
	default:
		w->other++;
		w->other_rc = rc;
		snprintf(w->other_msg, sizeof(w->other_msg), "%s", err->message);
		break;
	}
}

static void *work(void *p)
{
	struct worker *w = p;
	char me[48], org[16];

	snprintf(me, sizeof(me), "spiffe://corp.example/w%d", w->no);
	while (store_now_ms() < w->stop_ms) {
		int o = rand_r(&w->seed) % N_ORGS, action = rand_r(&w->seed) % 8;
		snprintf(org, sizeof(org), "cc-%d", o);
		if (action < 4) {
			/* Submit (as this worker; the proposal is then this worker's own). */
			struct mat_error err;
			char *id = try_submit(org, rand_r(&w->seed) % 5, me, me, &err);
			if (err.code == MAT_OK)
				w->submitted++;
			else
				count(w, err.code, &err);
			free(id);
		} else {
			/* Decide whatever is PROPOSED, racing the others (and sometimes being its
			 * submitter: four-eyes). */
			struct store_call c = tdb_call(db, me, 20000);
			struct store_transition_filter f = {.org_id = org,
			                                    .state = MAT_TRANSITION_PROPOSED};
			struct mat_transition *list = NULL, out;
			size_t n = 0;
			char *next = NULL;
			struct mat_error err;
			enum mat_code rc;

			mat_error_clear(&err);
			rc = store_transition_list(&c, &f, 10, "", &list, &n, &next, &err);
			free(next);
			if (rc != MAT_OK) {
				count(w, rc, &err);
				continue;
			}
			for (size_t i = 0; i < n; i++) {
				mat_error_clear(&err);
				if (action == 7) {
					rc = store_transition_reject(&c, org, list[i].id, "race",
					                             list[i].etag, &out, &err);
					if (rc == MAT_OK)
						w->rejected++;
				} else {
					rc = store_transition_approve(
					    &c, org, list[i].id, action == 6 ? list[i].etag : NULL,
					    &out, &err);
					if (rc == MAT_OK)
						w->approved++;
				}
				count(w, rc, &err);
				mat_transition_cleanup(&out);
				mat_transition_cleanup(&list[i]);
			}
			free(list);
		}
	}
	return NULL;
}

static void test_store_transition_concurrency_keeps_chain(void **state)
{
	struct worker w[N_THREADS];
	pthread_t t[N_THREADS];
	struct worker sum = {0};
	int64_t t0, elapsed;

	(void)state;
	TDB_SKIP_IF_NONE(db);
	for (int i = 0; i < N_ORGS; i++) {
		char id[16];
		snprintf(id, sizeof(id), "cc-%d", i);
		/* One organization applies automatically: submissions then write the chain too. */
		create_org(id, i == N_ORGS - 1 ? MAT_POLICY_AUTOMATIC : MAT_POLICY_MANUAL_REVIEW);
	}
	t0 = store_now_ms();
	for (int i = 0; i < N_THREADS; i++) {
		w[i] = (struct worker){
		    .no = i, .seed = 0x9e3779b9u * (unsigned)(i + 1), .stop_ms = t0 + RUN_MS};
		assert_int_equal(pthread_create(&t[i], NULL, work, &w[i]), 0);
	}
	for (int i = 0; i < N_THREADS; i++)
		pthread_join(t[i], NULL);
	elapsed = store_now_ms() - t0;
	for (int i = 0; i < N_THREADS; i++) {
		if (w[i].other > 0)
			fail_msg("worker %d: %ld unexpected errors, last %s: %s", i, w[i].other,
			         mat_code_name(w[i].other_rc), w[i].other_msg);
		sum.submitted += w[i].submitted;
		sum.approved += w[i].approved;
		sum.rejected += w[i].rejected;
		sum.denied += w[i].denied;
		sum.precondition += w[i].precondition;
		sum.aborted += w[i].aborted;
	}
	print_message("%d threads, %d orgs, %" PRId64 " ms: %ld submitted, %ld approved, "
	              "%ld rejected; refused: %ld four-eyes, %ld precondition, %ld aborted\n",
	              N_THREADS, N_ORGS, elapsed, sum.submitted, sum.approved, sum.rejected,
	              sum.denied, sum.precondition, sum.aborted);
	assert_true(sum.submitted > 0);
	assert_true(sum.approved > 0);

	/* The chain invariant (docs/api.md), for every organization: applied_seq 1..k, the first
	 * from 0, each from where the previous ended, and current_level the last one's to_level (0
	 * if none). */
	assert_int_equal(
	    q("SELECT count(*) FROM (SELECT from_level, applied_seq, "
	      "lag(to_level, 1, 0::smallint) OVER w AS prev, row_number() OVER w AS rn "
	      "FROM transitions WHERE state = 2 AND org_id LIKE 'cc-%%' "
	      "WINDOW w AS (PARTITION BY org_id ORDER BY applied_seq)) c "
	      "WHERE from_level <> prev OR applied_seq <> rn"),
	    0);
	assert_int_equal(q("SELECT count(*) FROM organizations o WHERE o.id LIKE 'cc-%%' AND "
	                   "o.current_level <> coalesce((SELECT t.to_level FROM transitions t "
	                   "WHERE t.org_id = o.id AND t.state = 2 ORDER BY t.applied_seq DESC "
	                   "LIMIT 1), 0)"),
	                 0);
	/* Every decided row says who and when; at most one PROPOSED per organization. An
	 * approval or rejection comes after the proposal it decides (it was listed first).
	 * (SUPERSEDED rows are not checked for that: a submission's time is its transaction's
	 * start, which may precede the proposal that got the organization's lock before it.) */
	assert_int_equal(q("SELECT count(*) FROM transitions WHERE org_id LIKE 'cc-%%' AND "
	                   "state <> 1 AND (decider IS NULL OR decide_time IS NULL)"),
	                 0);
	assert_int_equal(q("SELECT count(*) FROM transitions WHERE org_id LIKE 'cc-%%' AND "
	                   "state IN (2, 3) AND reason <> 'automatic policy' AND "
	                   "(decide_time < propose_time OR update_time <> decide_time)"),
	                 0);
	print_message("superseded before they were proposed (submission clock): %" PRId64 "\n",
	              q("SELECT count(*) FROM transitions WHERE org_id LIKE 'cc-%%' AND "
	                "state = 4 AND decide_time < propose_time"));
	assert_int_equal(q("SELECT count(*) FROM (SELECT org_id FROM transitions WHERE state = 1 "
	                   "GROUP BY org_id HAVING count(*) > 1) x"),
	                 0);
	/* Applications counted by the workers (+ automatic ones) are exactly the applied rows. */
	assert_int_equal(q("SELECT count(*) FROM transitions WHERE org_id LIKE 'cc-%%' AND "
	                   "state = 2 AND reason <> 'automatic policy'"),
	                 sum.approved);
	assert_int_equal(q("SELECT count(*) FROM transitions WHERE org_id LIKE 'cc-%%' AND "
	                   "state = 3"),
	                 sum.rejected);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_store_transition_get),
	    cmocka_unit_test(test_store_transition_approve),
	    cmocka_unit_test(test_store_transition_four_eyes),
	    cmocka_unit_test(test_store_transition_stale),
	    cmocka_unit_test(test_store_transition_reject_and_not_proposed),
	    cmocka_unit_test(test_store_transition_list),
	    cmocka_unit_test(test_store_transition_list_only_visible),
	    cmocka_unit_test(test_store_transition_approve_faults),
	    cmocka_unit_test(test_store_transition_concurrency_keeps_chain),
	};
	return cmocka_run_group_tests(tests, setup, teardown);
}
