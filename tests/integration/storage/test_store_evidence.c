/* Evidence against a real server: reports (UUIDv7 ids, reporter, one audit row per call,
 * request_id replays of single and batch reports), batches all or nothing, get, list (newest
 * observe_time first, pages, practice filter, expired hidden unless asked, tokens bound to their
 * filters), the live-score inputs (one current piece per practice whatever the history), the
 * table's immutability, and CreateAssessment's prefill inside the create transaction. */
#include "mat_live.h"
#include "mat_model.h"
#include "store_test_db.h"

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <cmocka.h>

static struct tdb *db;

static int setup(void **state)
{
	(void)state;
	db = tdb_open(NULL, 4, true);
	return 0;
}

static int teardown(void **state)
{
	(void)state;
	tdb_close(db);
	return 0;
}

#define WRITER "spiffe://corp.example/ci"
#define SEC INT64_C(1000000)
#define DAY (86400 * SEC)
#define P1 "model_creation.experiment_tracking"
#define P2 "people.regular_communication"
#define P3 "model_creation.automated_data_pipeline"

static mat_time_us now_us(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_REALTIME, &ts);
	return (mat_time_us)ts.tv_sec * SEC + ts.tv_nsec / 1000;
}

static void create_org(const char *id)
{
	struct store_call c = tdb_call(db, "admin", 5000);
	struct mat_organization in = {.id = (char *)id,
	                              .display_name = (char *)"O",
	                              .description = (char *)"",
	                              .transition_policy = MAT_POLICY_MANUAL_REVIEW};
	struct mat_organization out;
	struct mat_error err;

	mat_error_clear(&err);
	if (store_org_create(&c, &in, NULL, &out, &err) != MAT_OK)
		fail_msg("create org %s: %s", id, err.message);
	mat_organization_cleanup(&out);
}

static struct mat_evidence piece(const char *pid, enum mat_status st, mat_time_us observe,
                                 mat_time_us expire)
{
	struct mat_evidence e = {0};
	e.practice_id = (char *)pid;
	e.status = st;
	e.source = (char *)"ci/test";
	e.observe_time = observe;
	e.expire_time = expire;
	e.uri = (char *)"https://ci.example/1";
	e.digest = (char *)"";
	e.note = (char *)"";
	return e;
}

static void free_list(struct mat_evidence *l, size_t n)
{
	for (size_t i = 0; i < n; i++)
		mat_evidence_cleanup(&l[i]);
	free(l);
}

/* Reports `n` pieces; fails the test unless the result is `want`. */
static struct mat_evidence *report(const char *org, const struct mat_evidence *in, size_t n,
                                   bool batch, const char *rid, enum mat_code want, size_t *n_out,
                                   struct mat_error *err)
{
	struct store_call c = tdb_call(db, WRITER, 5000);
	struct mat_evidence *out = NULL;
	size_t got = 0;
	enum mat_code rc;

	mat_error_clear(err);
	rc = store_evidence_report(&c, org, in, n, batch, rid, &out, &got, err);
	if (rc != want)
		fail_msg("report: want %s, got %s: %s", mat_code_name(want), mat_code_name(rc),
		         err->message);
	if (n_out != NULL)
		*n_out = got;
	return out;
}

__attribute__((format(printf, 1, 2))) static int64_t q(const char *fmt, ...)
{
	char sql[512];
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(sql, sizeof(sql), fmt, ap);
	va_end(ap);
	return tdb_scalar(db, sql);
}

static void test_report_get_and_audit(void **state)
{
	mat_time_us now = now_us();
	struct mat_evidence in = piece(P1, MAT_STATUS_IMPLEMENTED, now - 60 * SEC, now + DAY);
	struct mat_evidence *out, got;
	struct store_call c;
	struct mat_error err;
	char name[160];
	size_t n;

	(void)state;
	TDB_SKIP_IF_NONE(db);
	create_org("ev-basic");
	in.digest =
	    (char *)"sha256:0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef";
	in.note = (char *)"it's 'quoted'; DROP TABLE evidence; --";
	out = report("ev-basic", &in, 1, false, NULL, MAT_OK, &n, &err);
	assert_int_equal(n, 1);
	assert_string_equal(out[0].org_id, "ev-basic");
	assert_int_equal(strlen(out[0].id), 36);
	assert_int_equal(out[0].id[14], '7'); /* UUIDv7 */
	assert_string_equal(out[0].practice_id, P1);
	assert_int_equal(out[0].status, MAT_STATUS_IMPLEMENTED);
	assert_string_equal(out[0].source, "ci/test");
	assert_string_equal(out[0].reporter, WRITER);
	assert_true(out[0].observe_time == in.observe_time);
	assert_true(out[0].expire_time == in.expire_time);
	assert_string_equal(out[0].uri, in.uri);
	assert_string_equal(out[0].digest, in.digest);
	assert_string_equal(out[0].note, in.note); /* stored verbatim */
	assert_true(out[0].create_time > 0);
	snprintf(name, sizeof(name), "organizations/ev-basic/evidence/%s", out[0].id);
	assert_int_equal(
	    q("SELECT count(*) FROM audit_events WHERE resource = '%s' AND code = 0", name), 1);

	c = tdb_call(db, "viewer", 5000);
	mat_error_clear(&err);
	assert_int_equal(store_evidence_get(&c, "ev-basic", out[0].id, &got, &err), MAT_OK);
	assert_string_equal(got.id, out[0].id);
	assert_string_equal(got.note, in.note);
	mat_evidence_cleanup(&got);
	/* Upper-case id: the same piece. */
	for (char *p = out[0].id; *p; p++)
		if (*p >= 'a' && *p <= 'f')
			*p = (char)(*p - 'a' + 'A');
	assert_int_equal(store_evidence_get(&c, "ev-basic", out[0].id, &got, &err), MAT_OK);
	mat_evidence_cleanup(&got);
	assert_int_equal(store_evidence_get(&c, "other-org", out[0].id, &got, &err), MAT_NOT_FOUND);
	assert_int_equal(store_evidence_get(&c, "ev-basic", "nope", &got, &err), MAT_NOT_FOUND);
	assert_int_equal(
	    store_evidence_get(&c, "ev-basic", "01900000-0000-7000-8000-000000000000", &got, &err),
	    MAT_NOT_FOUND);
	free_list(out, n);

	/* Unknown organization. */
	out = report("ev-nowhere", &in, 1, false, NULL, MAT_NOT_FOUND, &n, &err);
	assert_null(out);
}

static void test_batch_all_or_nothing_and_replay(void **state)
{
	mat_time_us now = now_us();
	struct mat_evidence in[3] = {
	    piece(P1, MAT_STATUS_IMPLEMENTED, now - 60 * SEC, now + DAY),
	    piece(P2, MAT_STATUS_PARTIAL, now - 60 * SEC, now + DAY),
	    piece(P3, MAT_STATUS_NOT_IMPLEMENTED, now - 60 * SEC, now + DAY),
	};
	const char *rid = "0190AAAA-0000-7000-8000-000000000001";
	struct mat_evidence *a, *b;
	struct mat_error err;
	size_t na, nb;

	(void)state;
	TDB_SKIP_IF_NONE(db);
	create_org("ev-batch");
	/* A piece that only the database refuses (the caller's validation is bypassed here):
	 * nothing of the batch is written, and the violation names that piece. */
	in[1].digest = (char *)"sha256:nothex";
	a = report("ev-batch", in, 3, true, NULL, MAT_INVALID, &na, &err);
	assert_null(a);
	assert_int_equal(err.n_violations, 1);
	assert_string_equal(err.violations[0].field, "evidence[1]");
	assert_int_equal(q("SELECT count(*) FROM evidence WHERE org_id = '%s'", "ev-batch"), 0);
	assert_int_equal(q("SELECT count(*) FROM audit_events WHERE resource = 'organizations/%s' "
	                   "AND principal = '" WRITER "'",
	                   "ev-batch"),
	                 0);
	in[1].digest = (char *)"";

	a = report("ev-batch", in, 3, true, rid, MAT_OK, &na, &err);
	assert_int_equal(na, 3);
	for (size_t i = 0; i < 3; i++)
		assert_string_equal(a[i].practice_id, in[i].practice_id); /* request order */
	/* One audit event for the call, on the organization. */
	assert_int_equal(q("SELECT count(*) FROM audit_events WHERE resource = 'organizations/%s' "
	                   "AND principal = '" WRITER "'",
	                   "ev-batch"),
	                 1);
	/* The retry (request_id in another case) returns the same pieces and writes nothing. */
	b = report("ev-batch", in, 3, true, "0190aaaa-0000-7000-8000-000000000001", MAT_OK, &nb,
	           &err);
	assert_int_equal(nb, 3);
	for (size_t i = 0; i < 3; i++)
		assert_string_equal(a[i].id, b[i].id);
	assert_int_equal(q("SELECT count(*) FROM evidence WHERE org_id = '%s'", "ev-batch"), 3);
	assert_int_equal(q("SELECT count(*) FROM audit_events WHERE resource = 'organizations/%s' "
	                   "AND principal = '" WRITER "'",
	                   "ev-batch"),
	                 1);
	free_list(b, nb);
	/* The same request_id for a single report is another key: a new piece. */
	b = report("ev-batch", in, 1, false, rid, MAT_OK, &nb, &err);
	assert_string_not_equal(b[0].id, a[0].id);
	free_list(b, nb);
	b = report("ev-batch", in, 1, false, rid, MAT_OK, &nb, &err); /* ...replayed */
	assert_int_equal(q("SELECT count(*) FROM evidence WHERE org_id = '%s'", "ev-batch"), 4);
	free_list(b, nb);
	/* Another principal with the same request_id is another key too. */
	free_list(a, na);

	/* Counts out of range. */
	a = report("ev-batch", in, 0, true, NULL, MAT_INVALID, &na, &err);
	assert_string_equal(err.violations[0].field, "evidence");
	assert_int_equal(store_evidence_report(&(struct store_call){0}, "ev-batch", in,
	                                       MAT_MAX_EVIDENCE_BATCH + 1, true, NULL, &a, &na,
	                                       &err),
	                 MAT_INVALID);
	assert_string_equal(err.violations[0].field, "evidence");
	/* A garbage request_id. */
	a = report("ev-batch", in, 1, true, "not-a-uuid", MAT_INVALID, &na, &err);
	assert_string_equal(err.violations[0].field, "request_id");
}

static void test_list_order_pages_filters(void **state)
{
	mat_time_us now = now_us();
	struct mat_evidence in[7];
	struct mat_evidence *out, *page;
	struct store_call c;
	struct mat_error err;
	char *next = NULL, *next2 = NULL;
	size_t n, np, total = 0;
	mat_time_us last_t = INT64_MAX;
	char last_id[40] = "~";

	(void)state;
	TDB_SKIP_IF_NONE(db);
	create_org("ev-list");
	for (int i = 0; i < 7; i++)
		in[i] = piece(i % 2 ? P1 : P2, MAT_STATUS_PARTIAL, now - (i / 2 + 1) * 60 * SEC,
		              now + DAY);
	in[6].expire_time = now - 10 * SEC; /* expired (observed 4 minutes ago) */
	out = report("ev-list", in, 7, true, NULL, MAT_OK, &n, &err);
	free_list(out, n);

	c = tdb_call(db, "viewer", 5000);
	/* Pages of 2: newest observe_time first, then id descending, expired hidden. */
	do {
		char *tok = next;
		mat_error_clear(&err);
		assert_int_equal(store_evidence_list(&c, "ev-list", NULL, false, now, 2, tok, &page,
		                                     &np, &next, &err),
		                 MAT_OK);
		free(tok);
		for (size_t i = 0; i < np; i++) {
			assert_true(
			    page[i].observe_time < last_t ||
			    (page[i].observe_time == last_t && strcmp(page[i].id, last_id) < 0));
			assert_true(page[i].expire_time > now);
			last_t = page[i].observe_time;
			snprintf(last_id, sizeof(last_id), "%s", page[i].id);
		}
		total += np;
		free_list(page, np);
	} while (next[0] != '\0');
	free(next);
	assert_int_equal(total, 6);

	/* include_expired shows it. */
	assert_int_equal(
	    store_evidence_list(&c, "ev-list", "", true, now, 100, "", &page, &np, &next, &err),
	    MAT_OK);
	assert_int_equal(np, 7);
	free_list(page, np);
	free(next);
	/* Old history (observed 450 days ago, expired 350 days ago) is listed only when asked. */
	in[0] = piece(P2, MAT_STATUS_PARTIAL, now - 450 * DAY, now - 350 * DAY);
	out = report("ev-list", in, 1, false, NULL, MAT_OK, &n, &err);
	free_list(out, n);
	assert_int_equal(
	    store_evidence_list(&c, "ev-list", "", true, now, 100, "", &page, &np, &next, &err),
	    MAT_OK);
	assert_int_equal(np, 8);
	assert_true(page[7].observe_time == now - 450 * DAY);
	free_list(page, np);
	free(next);
	assert_int_equal(
	    store_evidence_list(&c, "ev-list", "", false, now, 100, "", &page, &np, &next, &err),
	    MAT_OK);
	assert_int_equal(np, 6);
	free_list(page, np);
	free(next);
	/* Practice filter. */
	assert_int_equal(
	    store_evidence_list(&c, "ev-list", P1, false, now, 2, "", &page, &np, &next, &err),
	    MAT_OK);
	assert_int_equal(np, 2);
	for (size_t i = 0; i < np; i++)
		assert_string_equal(page[i].practice_id, P1);
	free_list(page, np);
	assert_string_not_equal(next, "");
	assert_int_equal(
	    store_evidence_list(&c, "ev-list", P1, false, now, 2, next, &page, &np, &next2, &err),
	    MAT_OK);
	assert_int_equal(np, 1);
	assert_string_equal(next2, "");
	free_list(page, np);
	free(next2);
	/* A token is bound to its filters; garbage is refused. */
	mat_error_clear(&err);
	assert_int_equal(
	    store_evidence_list(&c, "ev-list", P2, false, now, 2, next, &page, &np, &next2, &err),
	    MAT_INVALID);
	assert_string_equal(err.violations[0].field, "page_token");
	mat_error_clear(&err);
	assert_int_equal(
	    store_evidence_list(&c, "ev-list", P1, true, now, 2, next, &page, &np, &next2, &err),
	    MAT_INVALID);
	mat_error_clear(&err);
	assert_int_equal(store_evidence_list(&c, "ev-list", P1, false, now, 2, "garbage!", &page,
	                                     &np, &next2, &err),
	                 MAT_INVALID);
	free(next);
	assert_int_equal(
	    store_evidence_list(&c, "ev-none", NULL, false, now, 2, NULL, &page, &np, &next, &err),
	    MAT_NOT_FOUND);
}

static void test_live_inputs(void **state)
{
	mat_time_us now = now_us();
	struct mat_evidence hist[40];
	struct mat_evidence *out;
	struct store_live_inputs in;
	struct store_call c;
	struct mat_error err;
	size_t n;

	(void)state;
	TDB_SKIP_IF_NONE(db);
	create_org("ev-live");
	c = tdb_call(db, "viewer", 5000);
	mat_error_clear(&err);
	assert_int_equal(store_live_inputs_get(&c, "ev-live", now, &in, &err), MAT_OK);
	assert_string_equal(in.org.id, "ev-live");
	assert_null(in.submitted.id);
	assert_int_equal(in.n_evidence, 0);
	store_live_inputs_cleanup(&in);

	/* A history of P1: older pieces, an expired newer one, one in the future. */
	for (int i = 0; i < 38; i++)
		hist[i] =
		    piece(P1, MAT_STATUS_NOT_IMPLEMENTED, now - (100 - i) * 60 * SEC, now + DAY);
	hist[37].status = MAT_STATUS_PARTIAL; /* the newest in force */
	hist[38] = piece(P1, MAT_STATUS_IMPLEMENTED, now - 30 * SEC, now - 1 * SEC); /* expired */
	hist[39] = piece(P2, MAT_STATUS_IMPLEMENTED, now - 10 * DAY, now + DAY);
	out = report("ev-live", hist, 40, true, NULL, MAT_OK, &n, &err);
	assert_int_equal(store_live_inputs_get(&c, "ev-live", now, &in, &err), MAT_OK);
	assert_int_equal(in.n_evidence, 2); /* one per practice */
	for (size_t i = 0; i < in.n_evidence; i++) {
		if (strcmp(in.evidence[i].practice_id, P1) == 0)
			assert_string_equal(in.evidence[i].id, out[37].id);
		else
			assert_string_equal(in.evidence[i].id, out[39].id);
	}
	store_live_inputs_cleanup(&in);
	/* Before the expired one expired, it was current. */
	assert_int_equal(store_live_inputs_get(&c, "ev-live", now - 2 * SEC, &in, &err), MAT_OK);
	for (size_t i = 0; i < in.n_evidence; i++)
		if (strcmp(in.evidence[i].practice_id, P1) == 0)
			assert_string_equal(in.evidence[i].id, out[38].id);
	store_live_inputs_cleanup(&in);
	free_list(out, n);

	/* A submitted assessment comes with its answers. */
	{
		struct store_call w = tdb_call(db, "editor", 5000);
		struct mat_answer ans = {.practice_id = (char *)P3,
		                         .status = MAT_STATUS_IMPLEMENTED,
		                         .note = (char *)"",
		                         .evidence_uri = (char *)""};
		struct mat_assessment a, s;
		assert_int_equal(store_assessment_create_with_answers(&w, "ev-live", "t", NULL,
		                                                      &ans, 1, NULL, &a, &err),
		                 MAT_OK);
		assert_int_equal(store_assessment_submit(&w, "ev-live", a.id, NULL, &s, &err),
		                 MAT_OK);
		assert_int_equal(store_live_inputs_get(&c, "ev-live", now, &in, &err), MAT_OK);
		assert_string_equal(in.submitted.id, a.id);
		assert_int_equal(in.submitted.n_answers, 1);
		assert_string_equal(in.submitted.answers[0].practice_id, P3);
		store_live_inputs_cleanup(&in);
		mat_assessment_cleanup(&a);
		mat_assessment_cleanup(&s);
	}
	assert_int_equal(store_live_inputs_get(&c, "ev-missing", now, &in, &err), MAT_NOT_FOUND);
	store_live_inputs_cleanup(&in);
}

static void test_immutable(void **state)
{
	PGconn *pg;
	PGresult *r;

	(void)state;
	TDB_SKIP_IF_NONE(db);
	pg = tdb_connect(db);
	r = PQexec(pg, "UPDATE evidence SET status = 3");
	assert_int_equal(PQresultStatus(r), PGRES_FATAL_ERROR);
	PQclear(r);
	PQfinish(pg);
}

static const struct mat_answer *find_answer(const struct mat_assessment *a, const char *pid)
{
	for (size_t i = 0; i < a->n_answers; i++)
		if (strcmp(a->answers[i].practice_id, pid) == 0)
			return &a->answers[i];
	return NULL;
}

static void test_prefill(void **state)
{
	mat_time_us now = now_us();
	struct mat_evidence in[4] = {
	    piece(P1, MAT_STATUS_IMPLEMENTED, now - 3600 * SEC, now + DAY),
	    piece(P2, MAT_STATUS_PARTIAL, now - 60 * SEC, now + DAY),
	    piece(P3, MAT_STATUS_IMPLEMENTED, now - 2 * DAY, now - DAY), /* expired */
	    piece("model_release.versioned_scoring_scripts", MAT_STATUS_NOT_IMPLEMENTED,
	          now - 60 * SEC, now + DAY),
	};
	struct mat_answer req = {.practice_id = (char *)P2,
	                         .status = MAT_STATUS_NOT_IMPLEMENTED,
	                         .note = (char *)"ours",
	                         .evidence_uri = (char *)""};
	struct store_call c = tdb_call(db, "editor", 5000);
	struct mat_evidence *out;
	struct mat_assessment a;
	const struct mat_answer *x;
	struct mat_error err;
	char *note;
	size_t n;

	(void)state;
	TDB_SKIP_IF_NONE(db);
	create_org("ev-prefill");
	in[0].source = (char *)"mlflow/registry";
	out = report("ev-prefill", in, 4, true, NULL, MAT_OK, &n, &err);

	mat_error_clear(&err);
	assert_int_equal(store_assessment_create_prefilled(&c, "ev-prefill", "t", NULL, &req, 1,
	                                                   now, NULL, &a, &err),
	                 MAT_OK);
	assert_int_equal(a.n_answers, 3);
	/* Evidence fills what the request leaves open... */
	x = find_answer(&a, P1);
	assert_non_null(x);
	assert_int_equal(x->status, MAT_STATUS_IMPLEMENTED);
	assert_string_equal(x->evidence_uri, "https://ci.example/1");
	note = mat_evidence_prefill_note(&out[0]);
	assert_string_equal(x->note, note);
	assert_non_null(strstr(note, "from mlflow/registry, observed "));
	free(note);
	x = find_answer(&a, "model_release.versioned_scoring_scripts");
	assert_non_null(x);
	assert_int_equal(x->status, MAT_STATUS_NOT_IMPLEMENTED);
	/* ...the request's answer wins, and expired evidence is ignored. */
	x = find_answer(&a, P2);
	assert_int_equal(x->status, MAT_STATUS_NOT_IMPLEMENTED);
	assert_string_equal(x->note, "ours");
	assert_null(find_answer(&a, P3));
	mat_assessment_cleanup(&a);

	/* Without the flag: only the request's answers. */
	assert_int_equal(store_assessment_create_prefilled(&c, "ev-prefill", "t", NULL, &req, 1, 0,
	                                                   NULL, &a, &err),
	                 MAT_OK);
	assert_int_equal(a.n_answers, 1);
	mat_assessment_cleanup(&a);
	free_list(out, n);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_report_get_and_audit),
	    cmocka_unit_test(test_batch_all_or_nothing_and_replay),
	    cmocka_unit_test(test_list_order_pages_filters),
	    cmocka_unit_test(test_live_inputs),
	    cmocka_unit_test(test_immutable),
	    cmocka_unit_test(test_prefill),
	};
	return cmocka_run_group_tests(tests, setup, teardown);
}
