/* AccessService storage against a real server: role bindings created (global and per
 * organization, conflicts, missing organization, request_id replays, audit), deleted, listed by
 * id with principal/organization filters and keyset pages; audit events listed newest first with
 * a principal filter, a [start, end) window to the microsecond, ties ordered by id, and page
 * tokens bound to the filter. */
#include "store_test_db.h"

#include <inttypes.h>
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
	db = tdb_open(NULL, 3, true);
	return 0;
}

static int teardown(void **state)
{
	(void)state;
	tdb_close(db);
	return 0;
}

#define ADMIN "spiffe://corp.example/admin"

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

static void create_org(const char *id)
{
	struct store_call c = tdb_call(db, ADMIN, 5000);
	struct mat_organization in = {
	    .id = (char *)id, .display_name = (char *)"O", .description = (char *)""};
	struct mat_organization out;
	struct mat_error err;

	mat_error_clear(&err);
	if (store_org_create(&c, &in, NULL, &out, &err) != MAT_OK)
		fail_msg("create org %s: %s", id, err.message);
	mat_organization_cleanup(&out);
}

static enum mat_code bind(const char *principal, enum mat_role role, const char *org,
                          const char *request_id, struct mat_role_binding *out,
                          struct mat_error *err)
{
	struct store_call c = tdb_call(db, ADMIN, 5000);
	struct mat_role_binding in = {
	    .principal = (char *)principal, .role = role, .org_id = (char *)org};

	mat_error_clear(err);
	return store_binding_create(&c, &in, request_id, out, err);
}

static void test_store_bindings_create(void **state)
{
	struct mat_role_binding b, again, g, *mine = NULL;
	struct mat_error err;
	size_t n = 0;
	const char *rid = "7d444840-9dc0-11d1-b245-5ffdce74fad2";
	struct store_call c;

	(void)state;
	TDB_SKIP_IF_NONE(db);
	create_org("acme");
	assert_int_equal(bind("spiffe://x/editor", MAT_ROLE_EDITOR, "acme", NULL, &b, &err),
	                 MAT_OK);
	assert_int_equal(strlen(b.id), 36);
	assert_int_equal(b.id[14], '7');
	assert_string_equal(b.principal, "spiffe://x/editor");
	assert_int_equal(b.role, MAT_ROLE_EDITOR);
	assert_string_equal(b.org_id, "acme");
	assert_string_equal(b.creator, ADMIN);
	assert_true(b.create_time > 0);
	assert_int_equal(q("SELECT count(*) FROM audit_events WHERE resource = 'roleBindings/%s' "
	                   "AND principal = '%s' AND code = 0",
	                   b.id, ADMIN),
	                 1);
	/* The same (principal, role, organization) again, also globally. */
	assert_int_equal(bind("spiffe://x/editor", MAT_ROLE_EDITOR, "acme", NULL, &again, &err),
	                 MAT_CONFLICT);
	assert_non_null(strstr(err.message, "already exists"));
	assert_null(again.id);
	assert_int_equal(bind("spiffe://x/editor", MAT_ROLE_EDITOR, NULL, NULL, &g, &err), MAT_OK);
	assert_null(g.org_id);
	assert_int_equal(bind("spiffe://x/editor", MAT_ROLE_EDITOR, "", NULL, &again, &err),
	                 MAT_CONFLICT);
	/* Another role is another binding. */
	assert_int_equal(bind("spiffe://x/editor", MAT_ROLE_VIEWER, "acme", NULL, &again, &err),
	                 MAT_OK);
	mat_role_binding_cleanup(&again);
	/* No such organization; admin bound to one; bad role. */
	assert_int_equal(bind("spiffe://x/editor", MAT_ROLE_EDITOR, "nope", NULL, &again, &err),
	                 MAT_NOT_FOUND);
	assert_non_null(strstr(err.message, "organizations/nope"));
	assert_int_equal(bind("spiffe://x/a", MAT_ROLE_ADMIN, "acme", NULL, &again, &err),
	                 MAT_INVALID);
	assert_int_equal(bind("spiffe://x/a", (enum mat_role)9, NULL, NULL, &again, &err),
	                 MAT_INVALID);
	assert_int_equal(bind("", MAT_ROLE_VIEWER, NULL, NULL, &again, &err), MAT_INVALID);
	assert_int_equal(q("SELECT count(*) FROM role_bindings"), 3);

	/* request_id: the retry answers with the first binding and writes nothing. */
	assert_int_equal(bind("spiffe://x/rev", MAT_ROLE_REVIEWER, "acme", rid, &again, &err),
	                 MAT_OK);
	{
		char upper[40];
		struct mat_role_binding replay;
		for (size_t i = 0; i <= strlen(rid); i++)
			upper[i] = (char)(rid[i] >= 'a' && rid[i] <= 'f' ? rid[i] - 32 : rid[i]);
		assert_int_equal(
		    bind("spiffe://x/rev", MAT_ROLE_REVIEWER, "acme", upper, &replay, &err),
		    MAT_OK);
		assert_string_equal(replay.id, again.id);
		assert_int_equal(replay.create_time, again.create_time);
		mat_role_binding_cleanup(&replay);
		assert_int_equal(
		    bind("spiffe://x/rev", MAT_ROLE_REVIEWER, "acme", "not-a-uuid", &replay, &err),
		    MAT_INVALID);
		assert_string_equal(err.violations[0].field, "request_id");
	}
	assert_int_equal(q("SELECT count(*) FROM role_bindings WHERE principal = 'spiffe://x/rev'"),
	                 1);
	assert_int_equal(
	    q("SELECT count(*) FROM audit_events WHERE resource = 'roleBindings/%s'", again.id), 1);

	/* What auth reads on every call sees it at once. */
	c = tdb_call(db, ADMIN, 5000);
	assert_int_equal(store_bindings_for_principal(&c, "spiffe://x/editor", &mine, &n, &err),
	                 MAT_OK);
	assert_int_equal(n, 3);
	for (size_t i = 0; i < n; i++)
		mat_role_binding_cleanup(&mine[i]);
	free(mine);
	mat_role_binding_cleanup(&b);
	mat_role_binding_cleanup(&g);
	mat_role_binding_cleanup(&again);
}

static void test_store_bindings_delete(void **state)
{
	struct mat_role_binding b;
	struct mat_error err;
	struct store_call c;
	char upper[40];

	(void)state;
	TDB_SKIP_IF_NONE(db);
	create_org("del-org");
	assert_int_equal(bind("spiffe://x/gone", MAT_ROLE_VIEWER, "del-org", NULL, &b, &err),
	                 MAT_OK);
	c = tdb_call(db, ADMIN, 5000);
	for (size_t i = 0; i <= strlen(b.id); i++)
		upper[i] = (char)(b.id[i] >= 'a' && b.id[i] <= 'f' ? b.id[i] - 32 : b.id[i]);
	assert_int_equal(store_binding_delete(&c, upper, &err), MAT_OK);
	assert_int_equal(q("SELECT count(*) FROM role_bindings WHERE id = '%s'", b.id), 0);
	assert_int_equal(
	    q("SELECT count(*) FROM audit_events WHERE resource = 'roleBindings/%s'", b.id), 2);
	/* Gone: NOT_FOUND, and no audit event for the failure. */
	assert_int_equal(store_binding_delete(&c, b.id, &err), MAT_NOT_FOUND);
	assert_non_null(strstr(err.message, b.id));
	assert_int_equal(
	    q("SELECT count(*) FROM audit_events WHERE resource = 'roleBindings/%s'", b.id), 2);
	assert_int_equal(store_binding_delete(&c, "roleBindings/x", &err), MAT_NOT_FOUND);
	assert_int_equal(store_binding_delete(&c, NULL, &err), MAT_NOT_FOUND);
	mat_role_binding_cleanup(&b);
}

/* Every page of ListRoleBindings; returns how many, checking order and the filters. */
static size_t walk_bindings(const char *principal, const char *org, int page_size)
{
	struct store_call c = tdb_call(db, ADMIN, 5000);
	char *token = strdup(""), last[40] = "";
	size_t total = 0;

	for (;;) {
		struct mat_role_binding *list = NULL;
		size_t n = 0;
		char *next = NULL;
		struct mat_error err;

		mat_error_clear(&err);
		if (store_binding_list(&c, principal, org, page_size, token, &list, &n, &next,
		                       &err) != MAT_OK)
			fail_msg("list: %s", err.message);
		for (size_t i = 0; i < n; i++) {
			assert_true(strcmp(last, list[i].id) < 0);
			snprintf(last, sizeof(last), "%s", list[i].id);
			if (principal[0] != '\0')
				assert_string_equal(list[i].principal, principal);
			if (org != NULL && org[0] == '\0')
				assert_null(list[i].org_id);
			if (org != NULL && org[0] != '\0')
				assert_string_equal(list[i].org_id, org);
			mat_role_binding_cleanup(&list[i]);
		}
		total += n;
		free(list);
		free(token);
		token = next;
		if (token[0] == '\0')
			break;
		assert_int_equal(n, page_size);
	}
	free(token);
	return total;
}

static void test_store_bindings_list(void **state)
{
	struct mat_error err;
	struct store_call c;
	struct mat_role_binding *list = NULL;
	size_t n;
	char *next = NULL, *tok;

	(void)state;
	TDB_SKIP_IF_NONE(db);
	create_org("lb-a");
	create_org("lb-b");
	for (int i = 0; i < 23; i++) {
		char who[32];
		struct mat_role_binding b;
		snprintf(who, sizeof(who), "lp-%d", i % 4);
		assert_int_equal(bind(who, (enum mat_role)(2 + i / 8),
		                      i % 3 == 0   ? NULL
		                      : i % 3 == 1 ? "lb-a"
		                                   : "lb-b",
		                      NULL, &b, &err),
		                 MAT_OK);
		mat_role_binding_cleanup(&b);
	}
	assert_int_equal(walk_bindings("", NULL, 4), q("SELECT count(*) FROM role_bindings"));
	assert_int_equal(walk_bindings("", NULL, 1000), q("SELECT count(*) FROM role_bindings"));
	assert_int_equal(walk_bindings("lp-1", NULL, 2), 6);
	assert_int_equal(walk_bindings("", "", 3),
	                 q("SELECT count(*) FROM role_bindings WHERE org_id IS NULL"));
	assert_int_equal(walk_bindings("", "lb-a", 3), 8);
	assert_int_equal(walk_bindings("lp-2", "lb-b", 1),
	                 q("SELECT count(*) FROM role_bindings WHERE principal = 'lp-2' AND "
	                   "org_id = 'lb-b'"));
	assert_int_equal(walk_bindings("lp-0", "", 1),
	                 q("SELECT count(*) FROM role_bindings WHERE principal = 'lp-0' AND "
	                   "org_id IS NULL"));
	assert_int_equal(walk_bindings("nobody", NULL, 5), 0);
	assert_int_equal(walk_bindings("", "no-such-org", 5), 0);

	/* A token is bound to its filter. */
	c = tdb_call(db, ADMIN, 5000);
	mat_error_clear(&err);
	assert_int_equal(store_binding_list(&c, "", NULL, 2, "", &list, &n, &next, &err), MAT_OK);
	for (size_t i = 0; i < n; i++)
		mat_role_binding_cleanup(&list[i]);
	free(list);
	tok = next;
	assert_int_equal(store_binding_list(&c, "", "", 2, tok, &list, &n, &next, &err),
	                 MAT_INVALID);
	assert_string_equal(err.violations[0].field, "page_token");
	assert_int_equal(store_binding_list(&c, "lp-1", NULL, 2, tok, &list, &n, &next, &err),
	                 MAT_INVALID);
	assert_int_equal(store_binding_list(&c, "", NULL, 2, "!!", &list, &n, &next, &err),
	                 MAT_INVALID);
	assert_null(list);
	assert_null(next);
	free(tok);
}

/* --- audit list ------------------------------------------------------------------------------ */

struct event_walk {
	size_t n;
	char ids[256][40];
	mat_time_us times[256];
	int pages;
};

static void walk_events(const char *principal, mat_time_us start, mat_time_us end, int page_size,
                        struct event_walk *w)
{
	struct store_call c = tdb_call(db, ADMIN, 5000);
	char *token = strdup("");

	w->n = 0;
	w->pages = 0;
	for (;;) {
		struct mat_audit_event *list = NULL;
		size_t n = 0;
		char *next = NULL;
		struct mat_error err;

		mat_error_clear(&err);
		if (store_audit_list(&c, principal, start, end, page_size, token, &list, &n, &next,
		                     &err) != MAT_OK)
			fail_msg("audit list: %s", err.message);
		for (size_t i = 0; i < n; i++) {
			assert_true(w->n < 256);
			if (principal[0] != '\0')
				assert_string_equal(list[i].principal, principal);
			/* Newest first; ties by id, descending. */
			if (w->n > 0)
				assert_true(list[i].time < w->times[w->n - 1] ||
				            (list[i].time == w->times[w->n - 1] &&
				             strcmp(list[i].id, w->ids[w->n - 1]) < 0));
			snprintf(w->ids[w->n], sizeof(w->ids[0]), "%s", list[i].id);
			w->times[w->n++] = list[i].time;
			mat_audit_event_cleanup(&list[i]);
		}
		free(list);
		free(token);
		token = next;
		w->pages++;
		if (token[0] == '\0')
			break;
	}
	free(token);
}

static void test_store_audit_list(void **state)
{
	static struct event_walk w;
	struct store_call c;
	struct mat_audit_event *list = NULL;
	size_t n;
	char *next = NULL, *tok;
	struct mat_error err;
	/* 2024-01-01T00:00:00Z */
	const mat_time_us t0 = 1704067200LL * 1000000;

	(void)state;
	TDB_SKIP_IF_NONE(db);
	/* 30 events a minute apart (and a microsecond: the window is exact), five of them at
	 * one instant, for two principals; plus one refused call recorded through the API. */
	tdb_exec(db, "INSERT INTO audit_events (id, time, principal, method, resource, code, "
	             "request_id) SELECT gen_random_uuid(), timestamptz '2024-01-01 00:00:00+00' + "
	             "(CASE WHEN i BETWEEN 10 AND 14 THEN 10 ELSE i END) * interval '1 minute' + "
	             "interval '1 microsecond', CASE WHEN i % 3 = 0 THEN 'aud-y' ELSE 'aud-x' "
	             "END, '/m', 'r/' || i, 0, '' FROM generate_series(0, 29) i");
	c = tdb_call(db, "aud-z", 5000);
	mat_error_clear(&err);
	assert_int_equal(store_audit_denied(&c, "organizations/acme", 7, &err), MAT_OK);

	walk_events("", 0, 0, 7, &w);
	assert_int_equal(w.n, q("SELECT count(*) FROM audit_events"));
	assert_true(w.pages >= 5);
	walk_events("aud-x", 0, 0, 3, &w);
	assert_int_equal(w.n, 20);
	walk_events("aud-y", 0, 0, 1, &w);
	assert_int_equal(w.n, 10);
	walk_events("aud-z", 0, 0, 50, &w);
	assert_int_equal(w.n, 1);
	assert_int_equal(w.pages, 1);
	/* [start, end): minute 10 (the five tied events) up to minute 20, exclusive. */
	walk_events("", t0 + 10 * 60000000LL + 1, t0 + 20 * 60000000LL + 1, 2, &w);
	assert_int_equal(w.n, 10);
	assert_int_equal(w.times[0], t0 + 19 * 60000000LL + 1);
	assert_int_equal(w.times[9], t0 + 10 * 60000000LL + 1);
	walk_events("", t0 + 10 * 60000000LL + 2, t0 + 20 * 60000000LL + 2, 2, &w);
	assert_int_equal(w.n, 6); /* minutes 15..20: the tie at 10 is out, minute 20 in */
	walk_events("aud-x", t0 + 29 * 60000000LL + 1, 0, 2, &w);
	assert_int_equal(w.n, 1);
	walk_events("", 0, t0 + 1, 2, &w);
	assert_int_equal(w.n, 0);

	/* Tokens bound to the filter. */
	c = tdb_call(db, ADMIN, 5000);
	mat_error_clear(&err);
	assert_int_equal(store_audit_list(&c, "aud-x", 0, 0, 2, "", &list, &n, &next, &err),
	                 MAT_OK);
	for (size_t i = 0; i < n; i++)
		mat_audit_event_cleanup(&list[i]);
	free(list);
	tok = next;
	assert_int_equal(store_audit_list(&c, "aud-y", 0, 0, 2, tok, &list, &n, &next, &err),
	                 MAT_INVALID);
	assert_string_equal(err.violations[0].field, "page_token");
	assert_int_equal(store_audit_list(&c, "aud-x", t0, 0, 2, tok, &list, &n, &next, &err),
	                 MAT_INVALID);
	assert_null(list);
	assert_null(next);
	free(tok);
}

/* store_call.authz: the bindings reach `decide` from the call's first round trip, and a refusal
 * leaves nothing behind — a read's rows are dropped, a transaction's writes never sent, a
 * single write never run. */
struct verdict {
	bool allow;
	int calls;
	size_t n_seen;
};

static bool decide(void *arg, struct mat_role_binding *list, size_t n)
{
	struct verdict *v = arg;

	v->calls++;
	v->n_seen = n;
	for (size_t i = 0; i < n; i++)
		mat_role_binding_cleanup(&list[i]);
	free(list);
	return v->allow;
}

#define AZ_WHO "spiffe://corp.example/az-who"

static void test_store_authz_first_round_trip(void **state)
{
	struct verdict v = {0};
	struct store_authz az = {.decide = decide, .arg = &v};
	struct store_call c;
	struct mat_organization out = {0},
	                        in = {.id = (char *)"az-org", .display_name = (char *)"changed"};
	struct mat_role_binding b;
	struct mat_error err;
	int64_t audits;

	(void)state;
	TDB_SKIP_IF_NONE(db);
	create_org("az-org");
	assert_int_equal(bind(AZ_WHO, MAT_ROLE_VIEWER, "az-org", NULL, &b, &err), MAT_OK);
	mat_role_binding_cleanup(&b);
	c = tdb_call(db, AZ_WHO, 5000);
	c.authz = &az;

	/* A refused read: MAT_DENIED, nothing decoded, err left for the caller to fill. */
	mat_error_clear(&err);
	assert_int_equal(store_org_get(&c, "az-org", &out, &err), MAT_DENIED);
	assert_int_equal(v.calls, 1);
	assert_int_equal(v.n_seen, 1);
	assert_null(out.id);
	assert_string_equal(err.message, "");

	/* Allowed: the organization comes with it; decided once per call. */
	az.done = false;
	v.allow = true;
	assert_int_equal(store_org_get(&c, "az-org", &out, &err), MAT_OK);
	assert_string_equal(out.id, "az-org");
	mat_organization_cleanup(&out);
	assert_int_equal(store_org_get(&c, "az-org", &out, &err), MAT_OK);
	mat_organization_cleanup(&out);
	assert_int_equal(v.calls, 2);

	/* A refused transaction changes nothing. */
	az.done = false;
	v.allow = false;
	assert_int_equal(store_org_update(&c, &in, STORE_ORG_DISPLAY_NAME, NULL, &out, &err),
	                 MAT_DENIED);
	assert_int_equal(v.calls, 3);
	assert_int_equal(q("SELECT count(*) FROM organizations WHERE id = 'az-org' AND "
	                   "display_name = 'changed'"),
	                 0);

	/* A refused single write (the binding read goes alone, first) is never run. */
	az.done = false;
	audits = q("SELECT count(*) FROM audit_events");
	assert_int_equal(store_audit_denied(&c, "organizations/az-org", 7, &err), MAT_DENIED);
	assert_int_equal(v.calls, 4);
	assert_int_equal(q("SELECT count(*) FROM audit_events"), audits);

	/* Allowed, the same writes go through. */
	az.done = false;
	v.allow = true;
	assert_int_equal(store_org_update(&c, &in, STORE_ORG_DISPLAY_NAME, NULL, &out, &err),
	                 MAT_OK);
	mat_organization_cleanup(&out);
	assert_int_equal(q("SELECT count(*) FROM organizations WHERE id = 'az-org' AND "
	                   "display_name = 'changed'"),
	                 1);
	assert_int_equal(v.calls, 5);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_store_bindings_create),
	    cmocka_unit_test(test_store_bindings_delete),
	    cmocka_unit_test(test_store_bindings_list),
	    cmocka_unit_test(test_store_audit_list),
	    cmocka_unit_test(test_store_authz_first_round_trip),
	};
	return cmocka_run_group_tests(tests, setup, teardown);
}
