/* Evidence against a real server: reports (UUIDv7 ids, reporter, one audit row per call,
 * request_id replays of single and batch reports), batches all or nothing, get, list (newest
 * observe_time first, pages, practice filter, expired hidden unless asked, tokens bound to their
 * filters), the live-score inputs (one current piece per practice whatever the history), the
 * table's immutability, and CreateAssessment's prefill inside the create transaction. */
#include "mat_live.h"
#include "mat_model.h"
#include "store_migrate.h"
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

static void test_list_across_organizations(void **state)
{
	mat_time_us now = now_us();
	/* "ev-x" < "ev-x-a" as ids, but organizations/ev-x/... > organizations/ev-x-a/... as
	 * names ('/' > '-'): name descending lists ev-x first on equal observe_time. */
	static const char *const orgs[] = {"ev-x-a", "ev-x", "ev-y"};
	struct mat_evidence in = piece(P1, MAT_STATUS_IMPLEMENTED, now - 60 * SEC, now + DAY);
	struct mat_evidence *out, *page;
	struct mat_role_binding b = {.principal = (char *)"spiffe://corp.example/narrow",
	                             .role = MAT_ROLE_VIEWER,
	                             .org_id = (char *)"ev-y"},
	                        made;
	struct store_call c = tdb_call(db, "spiffe://corp.example/wide", 5000);
	struct mat_error err;
	char *next = NULL, names[8][160];
	size_t n, np, total = 0;

	(void)state;
	TDB_SKIP_IF_NONE(db);
	for (size_t i = 0; i < 3; i++) {
		create_org(orgs[i]);
		out = report(orgs[i], &in, 1, false, NULL, MAT_OK, &n, &err);
		free_list(out, n);
		out = report(orgs[i], &in, 1, false, NULL, MAT_OK, &n, &err);
		free_list(out, n);
	}
	/* An older one, to see observe_time order win over names. */
	in.observe_time -= SEC;
	out = report("ev-x-a", &in, 1, false, NULL, MAT_OK, &n, &err);
	free_list(out, n);

	/* Pages of one across every organization (of this test: others are older or newer). */
	do {
		char *tok = next;
		mat_error_clear(&err);
		assert_int_equal(
		    store_evidence_list(&c, NULL, P1, false, now, 1, tok, &page, &np, &next, &err),
		    MAT_OK);
		free(tok);
		for (size_t i = 0; i < np; i++) {
			if (strncmp(page[i].org_id, "ev-x", 4) != 0 &&
			    strcmp(page[i].org_id, "ev-y"))
				continue;
			if (total < 8)
				snprintf(names[total], sizeof(names[total]),
				         "%lld organizations/%s/evidence/%s",
				         (long long)(now - page[i].observe_time), page[i].org_id,
				         page[i].id);
			total++;
		}
		free_list(page, np);
	} while (next[0] != '\0');
	free(next);
	assert_int_equal(total, 7);
	/* Newest first, then name descending: ev-y, ev-y, ev-x, ev-x, ev-x-a, ev-x-a, then the
	 * older ev-x-a. */
	for (size_t i = 0; i + 1 < 6; i++) {
		const char *a = strchr(names[i], ' '), *bb = strchr(names[i + 1], ' ');
		assert_true(strcmp(a, bb) > 0);
	}
	assert_non_null(strstr(names[0], "/ev-y/"));
	assert_non_null(strstr(names[2], "/ev-x/"));
	assert_non_null(strstr(names[4], "/ev-x-a/"));
	assert_non_null(strstr(names[6], "/ev-x-a/"));

	/* only_visible: a principal bound to ev-y sees ev-y's evidence only. */
	c = tdb_call(db, "admin", 5000);
	mat_error_clear(&err);
	assert_int_equal(store_binding_create(&c, &b, NULL, &made, &err), MAT_OK);
	mat_role_binding_cleanup(&made);
	c = tdb_call(db, "spiffe://corp.example/narrow", 5000);
	c.only_visible = true;
	assert_int_equal(
	    store_evidence_list(&c, NULL, "", true, now, 1000, "", &page, &np, &next, &err),
	    MAT_OK);
	assert_int_equal(np, 2);
	for (size_t i = 0; i < np; i++)
		assert_string_equal(page[i].org_id, "ev-y");
	free_list(page, np);
	free(next);
	/* A token of one organization's list does not page the other list. */
	c.only_visible = false;
	assert_int_equal(
	    store_evidence_list(&c, "ev-y", "", true, now, 1, "", &page, &np, &next, &err), MAT_OK);
	free_list(page, np);
	{
		char *tok = next;
		mat_error_clear(&err);
		assert_int_equal(
		    store_evidence_list(&c, NULL, "", true, now, 1, tok, &page, &np, &next, &err),
		    MAT_INVALID);
		assert_string_equal(err.violations[0].field, "page_token");
		free(tok);
	}
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

/* --- evidence_head (migration 0008) against the naive rule ---------------------------------- */

/* Every piece reported to one organization, as the server recorded it (ids, create_time). */
struct hist {
	struct mat_evidence *v;
	size_t n, cap;
};

static struct hist *hist_add(struct hist *h, struct mat_evidence *out, size_t n)
{
	if (h->n + n > h->cap) {
		h->cap = (h->n + n) * 2;
		h->v = realloc(h->v, h->cap * sizeof(*h->v));
		assert_non_null(h->v);
	}
	memcpy(h->v + h->n, out, n * sizeof(*out)); /* takes the strings */
	h->n += n;
	free(out);
	return h;
}

static struct hist *hist_report(struct hist *h, const char *org, const struct mat_evidence *in,
                                size_t n)
{
	struct mat_error err;
	size_t got = 0;
	struct mat_evidence *out = report(org, in, n, true, NULL, MAT_OK, &got, &err);

	assert_int_equal(got, n);
	return hist_add(h, out, got);
}

static void hist_free(struct hist *h)
{
	free_list(h->v, h->n);
	memset(h, 0, sizeof(*h));
}

static const char *const HEAD_PRACTICES[] = {P1, P2, P3};

/* The live-score inputs at t against mat_evidence_current over the whole history (the rule of
 * docs/evidence.md, unit-tested in tests/unit/maturity): the same piece, or none, per practice;
 * and no piece that is not current. `what` names the case in a failure. */
static void check_at(const char *org, const struct hist *h, mat_time_us t, const char *what)
{
	struct store_call c = tdb_call(db, "viewer", 5000);
	struct store_live_inputs in;
	struct mat_error err;

	mat_error_clear(&err);
	if (store_live_inputs_get(&c, org, t, &in, &err) != MAT_OK)
		fail_msg("%s: live inputs: %s", what, err.message);
	for (size_t k = 0; k < sizeof(HEAD_PRACTICES) / sizeof(HEAD_PRACTICES[0]); k++) {
		const char *pid = HEAD_PRACTICES[k];
		const struct mat_evidence *want = mat_evidence_current(h->v, h->n, pid, t);
		const struct mat_evidence *got =
		    mat_evidence_current(in.evidence, in.n_evidence, pid, t);

		if (want == NULL && got != NULL)
			fail_msg("%s, %s at %+.3f s: got %s, want none", what, pid,
			         (double)(t - now_us()) / SEC, got->id);
		if (want != NULL && (got == NULL || strcmp(got->id, want->id) != 0))
			fail_msg("%s, %s at %+.3f s: got %s, want %s", what, pid,
			         (double)(t - now_us()) / SEC, got != NULL ? got->id : "none",
			         want->id);
		if (got != NULL) {
			assert_int_equal(got->status, want->status);
			assert_int_equal(got->observe_time, want->observe_time);
			assert_int_equal(got->expire_time, want->expire_time);
			assert_string_equal(got->org_id, org);
		}
	}
	/* At most the current piece of each practice, and nothing else. */
	for (size_t i = 0; i < in.n_evidence; i++)
		assert_ptr_equal(
		    mat_evidence_current(in.evidence, in.n_evidence, in.evidence[i].practice_id, t),
		    &in.evidence[i]);
	store_live_inputs_cleanup(&in);
}

/* Around `now`: well past (read from evidence), just inside the minute evidence_head answers
 * for, now, the 5 minutes of clock skew a future observation may have, and later; plus every
 * boundary (observe_time and expire_time, and the microsecond before each) of the pieces from
 * h->v[from] on. */
static void check_from(const char *org, const struct hist *h, size_t from, mat_time_us now,
                       const char *what)
{
	static const int64_t at[] = {
	    -3 * DAY,     -2 * 3600 * SEC, -70 * SEC,  -50 * SEC, -10 * SEC, 0,        1 * SEC,
	    4 * 60 * SEC, 6 * 60 * SEC,    3600 * SEC, 2 * DAY,   20 * DAY,  500 * DAY};

	for (size_t i = 0; i < sizeof(at) / sizeof(at[0]); i++)
		check_at(org, h, now + at[i], what);
	for (size_t i = from; i < h->n; i++) {
		const struct mat_evidence *e = &h->v[i];
		mat_time_us b[4] = {e->observe_time - 1, e->observe_time, e->expire_time - 1,
		                    e->expire_time};
		for (int j = 0; j < 4; j++)
			if (b[j] > now - 45 * SEC && b[j] < now + 401 * DAY)
				check_at(org, h, b[j], what);
	}
}

static int64_t head_rows(const char *org, const char *pid)
{
	return q("SELECT count(*) FROM evidence_head WHERE org_id = '%s' AND practice_id = '%s'",
	         org, pid);
}

static void check_all(const char *org, const struct hist *h, mat_time_us now, const char *what)
{
	check_from(org, h, 0, now, what);
}

/* The cases evidence_head must get right, one by one. */
static void test_head_cases(void **state)
{
	mat_time_us now = now_us();
	struct hist h = {0};
	struct mat_evidence in[8];

	(void)state;
	TDB_SKIP_IF_NONE(db);
	create_org("ev-head");

	/* Out of order: the newer observation reported first, then an older one with the same
	 * life; the older is never current again and is not kept. */
	in[0] = piece(P1, MAT_STATUS_IMPLEMENTED, now - 2 * 3600 * SEC, now + 10 * DAY);
	hist_report(&h, "ev-head", in, 1);
	in[0] = piece(P1, MAT_STATUS_NOT_IMPLEMENTED, now - 3 * 3600 * SEC, now + 5 * DAY);
	hist_report(&h, "ev-head", in, 1);
	check_all("ev-head", &h, now, "out of order");
	assert_int_equal(head_rows("ev-head", P1), 1);

	/* A newer piece with a shorter life: the older, longer-lived one is current again once the
	 * newer expires, so both are kept. */
	in[0] = piece(P1, MAT_STATUS_PARTIAL, now - 3600 * SEC - 60 * SEC, now + 2 * 3600 * SEC);
	hist_report(&h, "ev-head", in, 1);
	check_all("ev-head", &h, now, "shorter newer");
	assert_int_equal(head_rows("ev-head", P1), 2);
	check_at("ev-head", &h, now + 3 * 3600 * SEC, "shorter newer, after it expired");

	/* Observed in the (near) future: counts from its observe_time on and replaces nothing
	 * yet, even though it outlives everything before it. */
	in[0] = piece(P1, MAT_STATUS_NOT_IMPLEMENTED, now + 4 * 60 * SEC, now + 30 * DAY);
	hist_report(&h, "ev-head", in, 1);
	check_all("ev-head", &h, now, "future");
	assert_int_equal(head_rows("ev-head", P1), 3);

	/* Observed just now: within the last two minutes, so it removes nothing yet (a score for a
	 * moment before it stays exact). */
	in[0] = piece(P2, MAT_STATUS_PARTIAL, now - 2 * DAY, now + 20 * DAY);
	in[1] = piece(P2, MAT_STATUS_IMPLEMENTED, now - 1 * SEC, now + 20 * DAY);
	hist_report(&h, "ev-head", in, 2);
	check_all("ev-head", &h, now, "just now");
	assert_int_equal(head_rows("ev-head", P2), 2);

	/* Ties: the same observe_time in one batch (the same create_time) go to the greater id;
	 * in a later batch, to the later create_time. */
	in[0] = piece(P3, MAT_STATUS_NOT_IMPLEMENTED, now - 5 * 3600 * SEC, now + DAY);
	in[1] = piece(P3, MAT_STATUS_PARTIAL, now - 5 * 3600 * SEC, now + DAY);
	in[2] = piece(P3, MAT_STATUS_IMPLEMENTED, now - 5 * 3600 * SEC, now + DAY);
	hist_report(&h, "ev-head", in, 3);
	check_all("ev-head", &h, now, "ties in a batch");
	assert_int_equal(head_rows("ev-head", P3), 1);
	in[0] = piece(P3, MAT_STATUS_NOT_IMPLEMENTED, now - 5 * 3600 * SEC, now + DAY);
	hist_report(&h, "ev-head", in, 1);
	check_all("ev-head", &h, now, "ties across batches");
	assert_int_equal(head_rows("ev-head", P3), 1);

	/* Already expired when reported: never kept; expired since: removed by the next report. */
	in[0] = piece(P3, MAT_STATUS_IMPLEMENTED, now - 3 * DAY, now - 2 * 3600 * SEC);
	hist_report(&h, "ev-head", in, 1);
	check_all("ev-head", &h, now, "expired");
	assert_int_equal(head_rows("ev-head", P3), 1);
	hist_free(&h);
}

/* A long history of sweeps (as a control plane reports them): evidence_head keeps the pieces
 * that can still be current, not the history. */
static void test_head_history(void **state)
{
	mat_time_us now = now_us();
	struct hist h = {0};
	struct mat_evidence in[3];

	(void)state;
	TDB_SKIP_IF_NONE(db);
	create_org("ev-head-long");
	for (int d = 120; d >= 1; d--) {
		for (int k = 0; k < 3; k++)
			in[k] = piece(HEAD_PRACTICES[k], (enum mat_status)(1 + (d + k) % 3),
			              now - d * DAY, now - d * DAY + 7 * DAY);
		hist_report(&h, "ev-head-long", in, 3);
	}
	for (int k = 0; k < 3; k++)
		assert_int_equal(head_rows("ev-head-long", HEAD_PRACTICES[k]), 1);
	check_all("ev-head-long", &h, now, "sweeps");
	hist_free(&h);
}

static uint64_t rnd(uint64_t *x)
{
	*x ^= *x << 13;
	*x ^= *x >> 7;
	*x ^= *x << 17;
	return *x;
}

/* Random histories: out-of-order observations, ties, lives from a second to a year, times from
 * 10 days past to the 5 minutes of allowed skew ahead, batches of 1 to 6 pieces over three
 * practices; after every batch the inputs at many instants equal the naive rule's. */
static void test_head_random(void **state)
{
	uint64_t seed = 0x9e3779b97f4a7c15u, x;
	const char *env = getenv("MATURITY_TEST_SEED");
	mat_time_us now = now_us();
	struct hist h = {0};
	struct mat_evidence in[6];
	char what[64];

	(void)state;
	TDB_SKIP_IF_NONE(db);
	if (env != NULL && env[0] != '\0')
		seed = strtoull(env, NULL, 0);
	x = seed;
	create_org("ev-head-rand");
	for (int round = 0; round < 40; round++) {
		size_t n;

		n = 1 + rnd(&x) % 6;
		for (size_t i = 0; i < n; i++) {
			static const int64_t life[] = {SEC, 90 * SEC, 3600 * SEC,
			                               DAY, 7 * DAY,  365 * DAY};
			mat_time_us obs;

			switch (rnd(&x) % 4) {
			case 0: /* reuse an earlier observe_time: ties */
				obs = h.n > 0 ? h.v[rnd(&x) % h.n].observe_time : now;
				break;
			case 1: /* around the two minutes evidence_head keeps everything within */
				obs = now - 120 * SEC + (int64_t)(rnd(&x) % (120 * SEC)) - 60 * SEC;
				break;
			case 2: /* near now, up to the 5 minutes of skew ahead */
				obs = now + 300 * SEC - (int64_t)(rnd(&x) % (900 * SEC));
				break;
			default:
				obs = now - (int64_t)(rnd(&x) % (10 * DAY));
			}
			in[i] =
			    piece(HEAD_PRACTICES[rnd(&x) % 3], (enum mat_status)(1 + rnd(&x) % 3),
			          obs, obs + life[rnd(&x) % 6] + (int64_t)(rnd(&x) % SEC));
		}
		hist_report(&h, "ev-head-rand", in, n);
		snprintf(what, sizeof(what), "seed %#llx round %d", (unsigned long long)seed,
		         round);
		/* The boundaries of this batch's pieces now, of every piece at the end. */
		check_from("ev-head-rand", &h, round < 39 ? h.n - n : 0, now, what);
	}
	/* Migration 0008's backfill of existing evidence (evidence_head rebuilt from evidence
	 * alone) answers the same. */
	{
		const char *sql = NULL;
		for (size_t i = 0; i < store__n_migration_files; i++)
			if (strncmp(store__migration_files[i].file, "0008_", 5) == 0)
				sql = strstr(store__migration_files[i].sql,
				             "INSERT INTO evidence_head");
		assert_non_null(sql);
		tdb_exec(db, "DELETE FROM evidence_head");
		tdb_exec(db, sql);
		check_all("ev-head-rand", &h, now, "backfill");
	}
	/* Kept: no more than could be in force from two minutes ago on. */
	{
		size_t live = 0;
		for (size_t i = 0; i < h.n; i++)
			live += h.v[i].expire_time > now - 120 * SEC;
		assert_true(q("SELECT count(*) FROM evidence_head WHERE org_id = 'ev-head-rand'") <=
		            (int64_t)live);
	}
	hist_free(&h);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_report_get_and_audit),
	    cmocka_unit_test(test_batch_all_or_nothing_and_replay),
	    cmocka_unit_test(test_list_order_pages_filters),
	    cmocka_unit_test(test_list_across_organizations),
	    cmocka_unit_test(test_live_inputs),
	    cmocka_unit_test(test_immutable),
	    cmocka_unit_test(test_prefill),
	    cmocka_unit_test(test_head_cases),
	    cmocka_unit_test(test_head_history),
	    cmocka_unit_test(test_head_random),
	};
	return cmocka_run_group_tests(tests, setup, teardown);
}
