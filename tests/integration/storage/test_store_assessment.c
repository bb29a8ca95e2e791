/* Assessments against a real server: create (UUIDv7, idempotent), list newest first with state
 * filter and pages, answers upserted all-or-nothing in catalog order, submit (state, submitter,
 * last_assessment, the transitions of docs/api.md: PROPOSED vs APPLIED, superseding), delete drafts
 * only, etags, audit rows, and concurrent submissions keeping the transition chain intact. */
#include "mat_model.h"
#include "store_test_db.h"

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

static struct mat_assessment create_asm(const char *org, const char *principal)
{
	struct store_call c = tdb_call(db, principal, 5000);
	struct mat_assessment a;
	struct mat_error err;

	mat_error_clear(&err);
	if (store_assessment_create(&c, org, "Q3 review", NULL, NULL, &a, &err) != MAT_OK)
		fail_msg("create assessment: %s", err.message);
	return a;
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

static int64_t q(const char *fmt, ...) MAT_PRINTF(1, 2);
static int64_t q(const char *fmt, ...)
{
	char sql[1024];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(sql, sizeof(sql), fmt, ap);
	va_end(ap);
	return tdb_scalar(db, sql);
}

/* Sets answers to reach `level` and submits; returns the submitted assessment's id. */
static char *submit_at_level(const char *org, int level, const char *principal)
{
	struct store_call c = tdb_call(db, principal, 5000);
	struct mat_answer ans[64];
	size_t n = answers_for_level(level, ans);
	struct mat_assessment a = create_asm(org, principal), b, s;
	struct mat_error err;
	char *id;

	mat_error_clear(&err);
	if (store_assessment_update_answers(&c, org, a.id, ans, n, a.etag, &b, &err) != MAT_OK)
		fail_msg("answers: %s", err.message);
	if (store_assessment_submit(&c, org, a.id, b.etag, &s, &err) != MAT_OK)
		fail_msg("submit: %s", err.message);
	assert_int_equal(s.state, MAT_ASSESSMENT_SUBMITTED);
	id = strdup(a.id);
	mat_assessment_cleanup(&a);
	mat_assessment_cleanup(&b);
	mat_assessment_cleanup(&s);
	return id;
}

static void test_store_assessment_create(void **state)
{
	struct store_call c;
	struct mat_assessment a, again, got;
	struct mat_error err;
	const char *rid = "0b9e4a3c-5f7d-4e21-9a8b-7c6d5e4f3a2b";

	(void)state;
	TDB_SKIP_IF_NONE(db);
	create_org("asm-create", MAT_POLICY_UNSPECIFIED);
	c = tdb_call(db, EDITOR, 5000);
	mat_error_clear(&err);
	assert_int_equal(store_assessment_create(&c, "asm-create", "T", "", rid, &a, &err), MAT_OK);
	assert_string_equal(a.org_id, "asm-create");
	assert_int_equal(strlen(a.id), 36);
	assert_int_equal(a.id[14], '7');
	assert_string_equal(a.title, "T");
	assert_string_equal(a.model_id, "mlops-v1");
	assert_int_equal(a.state, MAT_ASSESSMENT_DRAFT);
	assert_string_equal(a.creator, EDITOR);
	assert_null(a.submitter);
	assert_int_equal(a.submit_time, 0);
	assert_int_equal(a.n_answers, 0);
	assert_true(a.create_time > 0);
	assert_non_null(a.etag);
	assert_int_equal(q("SELECT count(*) FROM audit_events WHERE resource = "
	                   "'organizations/asm-create/assessments/%s' AND principal = '%s'",
	                   a.id, EDITOR),
	                 1);
	/* Same request_id: the first assessment again, nothing new. */
	assert_int_equal(store_assessment_create(&c, "asm-create", "T2", NULL, rid, &again, &err),
	                 MAT_OK);
	assert_string_equal(again.id, a.id);
	assert_string_equal(again.title, "T");
	assert_int_equal(q("SELECT count(*) FROM assessments WHERE org_id = 'asm-create'"), 1);
	mat_assessment_cleanup(&again);
	/* Get by id, any case. */
	{
		char upper[37];
		for (int i = 0; i < 37; i++)
			upper[i] =
			    (char)(a.id[i] >= 'a' && a.id[i] <= 'f' ? a.id[i] - 32 : a.id[i]);
		assert_int_equal(store_assessment_get(&c, "asm-create", upper, &got, &err), MAT_OK);
		assert_string_equal(got.id, a.id);
		assert_string_equal(got.etag, a.etag);
		mat_assessment_cleanup(&got);
	}
	assert_int_equal(store_assessment_get(&c, "asm-create", "not-a-uuid", &got, &err),
	                 MAT_NOT_FOUND);
	assert_int_equal(store_assessment_get(&c, "other-org", a.id, &got, &err), MAT_NOT_FOUND);
	assert_int_equal(store_assessment_create(&c, "no-such-org", "T", NULL, NULL, &got, &err),
	                 MAT_NOT_FOUND);
	assert_int_equal(
	    store_assessment_create(&c, "asm-create", "T", "models/nope", NULL, &got, &err),
	    MAT_INVALID);
	mat_assessment_cleanup(&a);
}

static void test_store_assessment_list_newest_first(void **state)
{
	struct store_call c;
	char ids[7][37];
	char *token = NULL;
	size_t total = 0;
	struct mat_error err;

	(void)state;
	TDB_SKIP_IF_NONE(db);
	create_org("asm-list", MAT_POLICY_MANUAL_REVIEW);
	for (int i = 0; i < 7; i++) {
		struct mat_assessment a = create_asm("asm-list", EDITOR);
		memcpy(ids[i], a.id, 37);
		mat_assessment_cleanup(&a);
	}
	c = tdb_call(db, EDITOR, 5000);
	do {
		struct mat_assessment *list = NULL;
		size_t n = 0;
		char *next = NULL;
		mat_error_clear(&err);
		if (store_assessment_list(&c, "asm-list", MAT_ASSESSMENT_STATE_UNSPECIFIED, 3,
		                          token ? token : "", &list, &n, &next, &err) != MAT_OK)
			fail_msg("list: %s", err.message);
		assert_true(n <= 3);
		for (size_t i = 0; i < n; i++) {
			/* Newest first: the reverse of creation order. */
			assert_string_equal(list[i].id, ids[6 - total]);
			total++;
			mat_assessment_cleanup(&list[i]);
		}
		free(list);
		free(token);
		token = next;
	} while (token[0] != '\0');
	free(token);
	assert_int_equal(total, 7);
}

static void test_store_assessment_list_state_filter(void **state)
{
	struct store_call c;
	struct mat_assessment *list = NULL;
	struct mat_answer ans[64];
	size_t n = 0;
	char *next = NULL, *s1, *s2;
	struct mat_error err;

	(void)state;
	TDB_SKIP_IF_NONE(db);
	create_org("asm-filter", MAT_POLICY_MANUAL_REVIEW);
	for (int i = 0; i < 3; i++) {
		struct mat_assessment a = create_asm("asm-filter", EDITOR);
		mat_assessment_cleanup(&a);
	}
	s1 = submit_at_level("asm-filter", 1, EDITOR);
	s2 = submit_at_level("asm-filter", 0, EDITOR);
	c = tdb_call(db, EDITOR, 5000);
	mat_error_clear(&err);
	assert_int_equal(store_assessment_list(&c, "asm-filter", MAT_ASSESSMENT_SUBMITTED, 10, "",
	                                       &list, &n, &next, &err),
	                 MAT_OK);
	assert_int_equal(n, 2);
	assert_string_equal(list[0].id, s2);
	assert_string_equal(list[1].id, s1);
	/* Answers come with the list, in catalog order. */
	assert_int_equal(list[1].n_answers, answers_for_level(1, ans));
	for (size_t i = 0; i < list[1].n_answers; i++)
		assert_string_equal(list[1].answers[i].practice_id, ans[i].practice_id);
	assert_int_equal(list[0].n_answers, 0);
	for (size_t i = 0; i < n; i++)
		mat_assessment_cleanup(&list[i]);
	free(list);
	free(next);
	assert_int_equal(store_assessment_list(&c, "asm-filter", MAT_ASSESSMENT_DRAFT, 2, "", &list,
	                                       &n, &next, &err),
	                 MAT_OK);
	assert_int_equal(n, 2);
	assert_true(next[0] != '\0');
	for (size_t i = 0; i < n; i++) {
		assert_int_equal(list[i].state, MAT_ASSESSMENT_DRAFT);
		mat_assessment_cleanup(&list[i]);
	}
	free(list);
	{
		/* The token binds the filter: reusing it with another state is refused. */
		char *tok = next;
		assert_int_equal(store_assessment_list(&c, "asm-filter", MAT_ASSESSMENT_SUBMITTED,
		                                       2, tok, &list, &n, &next, &err),
		                 MAT_INVALID);
		assert_string_equal(err.violations[0].field, "page_token");
		assert_int_equal(store_assessment_list(&c, "asm-list", MAT_ASSESSMENT_DRAFT, 2, tok,
		                                       &list, &n, &next, &err),
		                 MAT_INVALID);
		assert_int_equal(store_assessment_list(&c, "asm-filter", MAT_ASSESSMENT_DRAFT, 2,
		                                       tok, &list, &n, &next, &err),
		                 MAT_OK);
		assert_int_equal(n, 1);
		assert_string_equal(next, "");
		mat_assessment_cleanup(&list[0]);
		free(list);
		free(next);
		free(tok);
	}
	assert_int_equal(store_assessment_list(&c, "no-such-org", MAT_ASSESSMENT_DRAFT, 2, "",
	                                       &list, &n, &next, &err),
	                 MAT_NOT_FOUND);
	free(s1);
	free(s2);
}

static void test_store_assessment_update_answers(void **state)
{
	struct store_call c;
	const struct mat_model *m = mat_model_find("mlops-v1");
	struct mat_assessment a, b, d, got;
	struct mat_error err;
	/* Out of catalog order on purpose. */
	struct mat_answer ans[3] = {
	    {.practice_id = (char *)m->practices[5].id,
	     .status = MAT_STATUS_PARTIAL,
	     .note = (char *)"half",
	     .evidence_uri = (char *)"https://x/e?a=1&b='2'"},
	    {.practice_id = (char *)m->practices[0].id,
	     .status = MAT_STATUS_IMPLEMENTED,
	     .note = (char *)"",
	     .evidence_uri = (char *)""},
	    {.practice_id = (char *)m->practices[2].id,
	     .status = MAT_STATUS_NOT_APPLICABLE,
	     .note = (char *)"we do not train models",
	     .evidence_uri = (char *)""},
	};

	(void)state;
	TDB_SKIP_IF_NONE(db);
	create_org("asm-answers", MAT_POLICY_MANUAL_REVIEW);
	a = create_asm("asm-answers", EDITOR);
	c = tdb_call(db, EDITOR2, 5000);
	mat_error_clear(&err);
	assert_int_equal(
	    store_assessment_update_answers(&c, "asm-answers", a.id, ans, 3, a.etag, &b, &err),
	    MAT_OK);
	assert_int_equal(b.n_answers, 3);
	assert_string_equal(b.answers[0].practice_id, m->practices[0].id);
	assert_string_equal(b.answers[1].practice_id, m->practices[2].id);
	assert_string_equal(b.answers[2].practice_id, m->practices[5].id);
	assert_int_equal(b.answers[2].status, MAT_STATUS_PARTIAL);
	assert_string_equal(b.answers[2].note, "half");
	assert_string_equal(b.answers[2].evidence_uri, "https://x/e?a=1&b='2'");
	assert_string_equal(b.answers[2].updated_by, EDITOR2);
	assert_true(b.answers[2].update_time > 0);
	assert_string_not_equal(b.etag, a.etag);
	assert_true(b.update_time >= a.update_time);

	/* Stale etag: ABORTED, nothing written. */
	ans[1].status = MAT_STATUS_NOT_IMPLEMENTED;
	assert_int_equal(
	    store_assessment_update_answers(&c, "asm-answers", a.id, ans, 3, a.etag, &d, &err),
	    MAT_ABORTED);

	/* A batch with one bad answer (NOT_APPLICABLE without a note, which validation would
	 * normally catch) writes nothing: the first two would have changed. */
	ans[0].status = MAT_STATUS_IMPLEMENTED;
	ans[2].note = (char *)"";
	assert_int_equal(
	    store_assessment_update_answers(&c, "asm-answers", a.id, ans, 3, b.etag, &d, &err),
	    MAT_INVALID);
	assert_int_equal(err.n_violations, 1);
	/* Validated against the pinned model before anything is written. */
	assert_int_equal(strncmp(err.violations[0].field, "answers[2]", 10), 0);
	assert_null(d.id);
	assert_int_equal(store_assessment_get(&c, "asm-answers", a.id, &got, &err), MAT_OK);
	assert_string_equal(got.etag, b.etag);
	assert_int_equal(got.answers[2].status, MAT_STATUS_PARTIAL);
	assert_int_equal(got.answers[0].status, MAT_STATUS_IMPLEMENTED);
	mat_assessment_cleanup(&got);
	assert_int_equal(q("SELECT count(*) FROM audit_events WHERE resource = "
	                   "'organizations/asm-answers/assessments/%s'",
	                   a.id),
	                 2);

	/* Unknown practice: INVALID naming the index. */
	ans[2].note = (char *)"reason";
	ans[1].practice_id = (char *)"people.mind_reading";
	mat_error_clear(&err);
	assert_int_equal(
	    store_assessment_update_answers(&c, "asm-answers", a.id, ans, 3, b.etag, &d, &err),
	    MAT_INVALID);
	assert_string_equal(err.violations[0].field, "answers[1].practice_id");

	/* A valid upsert over existing answers changes them. */
	ans[1].practice_id = (char *)m->practices[0].id;
	assert_int_equal(
	    store_assessment_update_answers(&c, "asm-answers", a.id, ans, 3, NULL, &d, &err),
	    MAT_OK);
	assert_int_equal(d.n_answers, 3);
	assert_int_equal(d.answers[0].status, MAT_STATUS_NOT_IMPLEMENTED);
	assert_int_equal(store_assessment_update_answers(&c, "asm-answers",
	                                                 "00000000-0000-7000-8000-000000000000",
	                                                 ans, 3, NULL, &got, &err),
	                 MAT_NOT_FOUND);
	mat_assessment_cleanup(&a);
	mat_assessment_cleanup(&b);
	mat_assessment_cleanup(&d);
}

static void test_store_assessment_submit_and_after(void **state)
{
	struct store_call c;
	struct mat_assessment a, s, x;
	struct mat_organization o;
	struct mat_answer ans[64];
	size_t n = answers_for_level(1, ans);
	struct mat_error err;

	(void)state;
	TDB_SKIP_IF_NONE(db);
	create_org("asm-submit", MAT_POLICY_MANUAL_REVIEW);
	a = create_asm("asm-submit", EDITOR);
	c = tdb_call(db, EDITOR2, 5000);
	mat_error_clear(&err);
	assert_int_equal(
	    store_assessment_update_answers(&c, "asm-submit", a.id, ans, n, NULL, &x, &err),
	    MAT_OK);
	/* Stale etag (from before the answers). */
	assert_int_equal(store_assessment_submit(&c, "asm-submit", a.id, a.etag, &s, &err),
	                 MAT_ABORTED);
	assert_int_equal(store_assessment_submit(&c, "asm-submit", a.id, x.etag, &s, &err), MAT_OK);
	mat_assessment_cleanup(&x);
	assert_int_equal(s.state, MAT_ASSESSMENT_SUBMITTED);
	assert_string_equal(s.submitter, EDITOR2);
	assert_string_equal(s.creator, EDITOR);
	assert_true(s.submit_time > 0);
	assert_int_equal(s.n_answers, n);
	assert_int_equal(store_org_get(&c, "asm-submit", &o, &err), MAT_OK);
	assert_string_equal(o.last_assessment_id, a.id);
	mat_organization_cleanup(&o);

	/* Frozen now. */
	assert_int_equal(store_assessment_submit(&c, "asm-submit", a.id, NULL, &x, &err) == MAT_OK,
	                 false);
	assert_int_equal(err.code, MAT_PRECONDITION);
	mat_assessment_cleanup(&x);
	assert_int_equal(
	    store_assessment_update_answers(&c, "asm-submit", a.id, ans, n, NULL, &x, &err),
	    MAT_PRECONDITION);
	assert_int_equal(store_assessment_delete(&c, "asm-submit", a.id, NULL, &err),
	                 MAT_PRECONDITION);
	mat_assessment_cleanup(&a);
	mat_assessment_cleanup(&s);
}

static void test_store_assessment_submit_transitions_manual(void **state)
{
	char *a1, *a2, *a3;

	(void)state;
	TDB_SKIP_IF_NONE(db);
	create_org("tr-manual", MAT_POLICY_MANUAL_REVIEW);
	a1 = submit_at_level("tr-manual", 1, EDITOR);
	assert_int_equal(q("SELECT count(*) FROM transitions WHERE org_id = 'tr-manual' AND "
	                   "assessment_id = '%s' AND state = 1 AND from_level = 0 AND to_level = 1 "
	                   "AND direction = 1 AND proposer = '%s' AND decider IS NULL",
	                   a1, EDITOR),
	                 1);
	assert_int_equal(q("SELECT current_level FROM organizations WHERE id = 'tr-manual'"), 0);

	/* A newer submission supersedes the proposal (decided by its submitter, at its time)
	 * and proposes its own level. */
	a2 = submit_at_level("tr-manual", 2, EDITOR2);
	assert_int_equal(q("SELECT count(*) FROM transitions t JOIN assessments a ON a.org_id = "
	                   "t.org_id AND a.id = '%s' WHERE t.assessment_id = '%s' AND t.state = 4 "
	                   "AND t.decider = '%s' AND t.decide_time = a.submit_time AND "
	                   "t.update_time = a.submit_time",
	                   a2, a1, EDITOR2),
	                 1);
	assert_int_equal(q("SELECT to_level FROM transitions WHERE org_id = 'tr-manual' AND "
	                   "state = 1 AND assessment_id = '%s'",
	                   a2),
	                 2);

	/* Level 0 = current level: the proposal is superseded and nothing new is proposed. */
	a3 = submit_at_level("tr-manual", 0, EDITOR);
	assert_int_equal(q("SELECT count(*) FROM transitions WHERE org_id = 'tr-manual' AND "
	                   "state = 1"),
	                 0);
	assert_int_equal(q("SELECT count(*) FROM transitions WHERE org_id = 'tr-manual'"), 2);
	assert_int_equal(q("SELECT count(*) FROM organizations WHERE id = 'tr-manual' AND "
	                   "last_assessment_id = '%s'",
	                   a3),
	                 1);
	free(a1);
	free(a2);
	free(a3);
}

static void test_store_assessment_submit_transitions_automatic(void **state)
{
	char *a1, *a2;

	(void)state;
	TDB_SKIP_IF_NONE(db);
	create_org("tr-auto", MAT_POLICY_AUTOMATIC);
	a1 = submit_at_level("tr-auto", 3, EDITOR);
	assert_int_equal(q("SELECT count(*) FROM transitions WHERE org_id = 'tr-auto' AND "
	                   "assessment_id = '%s' AND state = 2 AND from_level = 0 AND to_level = 3 "
	                   "AND applied_seq = 1 AND decider = '%s' AND reason = 'automatic policy' "
	                   "AND decide_time IS NOT NULL",
	                   a1, EDITOR),
	                 1);
	assert_int_equal(q("SELECT current_level FROM organizations WHERE id = 'tr-auto'"), 3);
	a2 = submit_at_level("tr-auto", 1, EDITOR2);
	assert_int_equal(q("SELECT count(*) FROM transitions WHERE org_id = 'tr-auto' AND "
	                   "assessment_id = '%s' AND state = 2 AND from_level = 3 AND to_level = 1 "
	                   "AND direction = 2 AND applied_seq = 2",
	                   a2),
	                 1);
	assert_int_equal(q("SELECT current_level FROM organizations WHERE id = 'tr-auto'"), 1);

	/* The database itself refuses to break the chain (deferred check at commit). */
	{
		PGconn *pc = tdb_connect(db);
		PGresult *r = PQexec(pc, "UPDATE organizations SET current_level = 4 "
		                         "WHERE id = 'tr-auto'");
		assert_int_equal(PQresultStatus(r), PGRES_FATAL_ERROR);
		PQclear(r);
		r = PQexec(pc, "BEGIN; UPDATE transitions SET from_level = 2, direction = 2 "
		               "WHERE org_id = 'tr-auto' AND applied_seq = 2; COMMIT");
		assert_int_equal(PQresultStatus(r), PGRES_FATAL_ERROR);
		PQclear(r);
		/* Only one PROPOSED per organization. */
		r = PQexec(pc,
		           "INSERT INTO transitions (org_id, id, assessment_id, from_level, "
		           "to_level, direction, state, proposer) SELECT org_id, "
		           "gen_random_uuid(), assessment_id, 1, 2, 1, 1, 'x' FROM transitions "
		           "WHERE org_id = 'tr-auto' UNION ALL SELECT org_id, gen_random_uuid(), "
		           "assessment_id, 1, 3, 1, 1, 'y' FROM transitions WHERE org_id = "
		           "'tr-auto' LIMIT 2");
		assert_int_equal(PQresultStatus(r), PGRES_FATAL_ERROR);
		assert_string_equal(PQresultErrorField(r, PG_DIAG_SQLSTATE), "23505");
		PQclear(r);
		PQfinish(pc);
	}
	assert_int_equal(q("SELECT current_level FROM organizations WHERE id = 'tr-auto'"), 1);
	free(a1);
	free(a2);
}

static void test_store_assessment_delete(void **state)
{
	struct store_call c;
	struct mat_assessment a, b, got;
	struct mat_answer ans[64];
	size_t n = answers_for_level(1, ans);
	struct mat_error err;

	(void)state;
	TDB_SKIP_IF_NONE(db);
	create_org("asm-delete", MAT_POLICY_MANUAL_REVIEW);
	a = create_asm("asm-delete", EDITOR);
	c = tdb_call(db, EDITOR, 5000);
	mat_error_clear(&err);
	assert_int_equal(
	    store_assessment_update_answers(&c, "asm-delete", a.id, ans, n, NULL, &b, &err),
	    MAT_OK);
	assert_int_equal(store_assessment_delete(&c, "asm-delete", a.id, a.etag, &err),
	                 MAT_ABORTED);
	assert_int_equal(store_assessment_delete(&c, "asm-delete", a.id, b.etag, &err), MAT_OK);
	assert_int_equal(store_assessment_get(&c, "asm-delete", a.id, &got, &err), MAT_NOT_FOUND);
	assert_int_equal(q("SELECT count(*) FROM answers WHERE assessment_id = '%s'", a.id), 0);
	assert_int_equal(store_assessment_delete(&c, "asm-delete", a.id, NULL, &err),
	                 MAT_NOT_FOUND);
	assert_int_equal(q("SELECT count(*) FROM audit_events WHERE resource = "
	                   "'organizations/asm-delete/assessments/%s'",
	                   a.id),
	                 3);
	mat_assessment_cleanup(&a);
	mat_assessment_cleanup(&b);
}

/* --- concurrency ---------------------------------------------------------------------------- */

struct racer {
	char id[37];
	char etag[32];
	int level;
	enum mat_code rc;
};

static void *race_submit(void *p)
{
	struct racer *r = p;
	struct store_call c = tdb_call(db, EDITOR, 20000);
	struct mat_assessment s;
	struct mat_error err;

	mat_error_clear(&err);
	r->rc = store_assessment_submit(&c, "tr-race", r->id, r->etag, &s, &err);
	mat_assessment_cleanup(&s);
	return NULL;
}

static void test_store_assessment_concurrent_submissions_keep_chain(void **state)
{
	enum { N = 12 };
	struct racer r[N];
	pthread_t t[N];

	(void)state;
	TDB_SKIP_IF_NONE(db);
	create_org("tr-race", MAT_POLICY_AUTOMATIC);
	for (int i = 0; i < N; i++) {
		struct store_call c = tdb_call(db, EDITOR, 5000);
		struct mat_answer ans[64];
		size_t n;
		struct mat_assessment a = create_asm("tr-race", EDITOR), b;
		struct mat_error err;
		r[i].level = (i * 7) % 5;
		n = answers_for_level(r[i].level, ans);
		mat_error_clear(&err);
		assert_int_equal(
		    store_assessment_update_answers(&c, "tr-race", a.id, ans, n, NULL, &b, &err),
		    MAT_OK);
		snprintf(r[i].id, sizeof(r[i].id), "%s", a.id);
		snprintf(r[i].etag, sizeof(r[i].etag), "%s", b.etag);
		mat_assessment_cleanup(&a);
		mat_assessment_cleanup(&b);
	}
	for (int i = 0; i < N; i++)
		assert_int_equal(pthread_create(&t[i], NULL, race_submit, &r[i]), 0);
	for (int i = 0; i < N; i++)
		pthread_join(t[i], NULL);
	for (int i = 0; i < N; i++)
		assert_int_equal(r[i].rc, MAT_OK);
	/* The chain: applied_seq 1..k, each starting where the previous ended, from 0, and the
	 * organization at the last one's level. */
	assert_int_equal(q("SELECT count(*) FROM (SELECT from_level, to_level, applied_seq, "
	                   "lag(to_level, 1, 0::smallint) OVER (ORDER BY applied_seq) AS prev, "
	                   "row_number() OVER (ORDER BY applied_seq) AS rn FROM transitions WHERE "
	                   "org_id = 'tr-race' AND state = 2) c WHERE from_level <> prev OR "
	                   "applied_seq <> rn"),
	                 0);
	assert_int_equal(q("SELECT (coalesce((SELECT to_level FROM transitions WHERE org_id = "
	                   "'tr-race' AND state = 2 ORDER BY applied_seq DESC LIMIT 1), 0) = "
	                   "(SELECT current_level FROM organizations WHERE id = 'tr-race'))::int"),
	                 1);
	/* Some of the racers changed the level: the chain is not trivially empty. */
	assert_true(q("SELECT count(*) FROM transitions WHERE org_id = 'tr-race' AND state = 2") >
	            1);
	assert_int_equal(
	    q("SELECT count(*) FROM assessments WHERE org_id = 'tr-race' AND state = 2"), N);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_store_assessment_create),
	    cmocka_unit_test(test_store_assessment_list_newest_first),
	    cmocka_unit_test(test_store_assessment_list_state_filter),
	    cmocka_unit_test(test_store_assessment_update_answers),
	    cmocka_unit_test(test_store_assessment_submit_and_after),
	    cmocka_unit_test(test_store_assessment_submit_transitions_manual),
	    cmocka_unit_test(test_store_assessment_submit_transitions_automatic),
	    cmocka_unit_test(test_store_assessment_delete),
	    cmocka_unit_test(test_store_assessment_concurrent_submissions_keep_chain),
	};
	return cmocka_run_group_tests(tests, setup, teardown);
}
