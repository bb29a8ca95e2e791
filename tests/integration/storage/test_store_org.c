/* Organizations against a real server: create/get, conflicts, request_id idempotency, SQL
 * metacharacters stored verbatim, keyset pagination, visibility, update with mask and etag,
 * delete with and without force, audit rows, role bindings. */
#include "store_test_db.h"

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
	db = tdb_open(NULL, 4, true);
	return 0;
}

static int teardown(void **state)
{
	(void)state;
	tdb_close(db);
	return 0;
}

#define ADMIN "spiffe://corp.example/admin"

static struct mat_organization org(const char *id)
{
	return (struct mat_organization){
	    .id = (char *)id, .display_name = (char *)"Display", .description = (char *)"Desc"};
}

static void create_ok(const char *id)
{
	struct store_call c = tdb_call(db, ADMIN, 5000);
	struct mat_organization in = org(id), out;
	struct mat_error err;

	mat_error_clear(&err);
	if (store_org_create(&c, &in, NULL, &out, &err) != MAT_OK)
		fail_msg("create %s: %s", id, err.message);
	mat_organization_cleanup(&out);
}

static int64_t audit_count(const char *resource)
{
	char sql[256];

	snprintf(sql, sizeof(sql), "SELECT count(*) FROM audit_events WHERE resource = '%s'",
	         resource);
	return tdb_scalar(db, sql);
}

static void test_store_org_create_get(void **state)
{
	struct store_call c;
	struct mat_label labels[2] = {{(char *)"team", (char *)"ml"},
	                              {(char *)"env", (char *)"prod"}};
	struct mat_organization in = org("acme-ml"), out, got;
	struct mat_error err;

	(void)state;
	TDB_SKIP_IF_NONE(db);
	c = tdb_call(db, ADMIN, 5000);
	in.labels = labels;
	in.n_labels = 2;
	in.target_level = 3;
	mat_error_clear(&err);
	assert_int_equal(store_org_create(&c, &in, NULL, &out, &err), MAT_OK);
	assert_string_equal(out.id, "acme-ml");
	assert_string_equal(out.display_name, "Display");
	assert_string_equal(out.description, "Desc");
	assert_int_equal(out.n_labels, 2);
	assert_string_equal(out.labels[0].key, "env"); /* sorted by key */
	assert_string_equal(out.labels[0].value, "prod");
	assert_string_equal(out.labels[1].key, "team");
	assert_int_equal(out.current_level, 0);
	assert_int_equal(out.target_level, 3);
	assert_int_equal(out.transition_policy, MAT_POLICY_MANUAL_REVIEW);
	assert_null(out.last_assessment_id);
	assert_true(out.create_time > 0);
	assert_int_equal(out.create_time, out.update_time);
	assert_non_null(out.etag);
	assert_true(strlen(out.etag) > 0);

	assert_int_equal(store_org_get(&c, "acme-ml", &got, &err), MAT_OK);
	assert_string_equal(got.etag, out.etag);
	assert_int_equal(got.create_time, out.create_time);
	assert_int_equal(got.n_labels, 2);
	mat_organization_cleanup(&got);
	mat_organization_cleanup(&out);

	/* The audit event, in the same transaction. */
	assert_int_equal(audit_count("organizations/acme-ml"), 1);
	assert_int_equal(tdb_scalar(db,
	                            "SELECT count(*) FROM audit_events WHERE resource = "
	                            "'organizations/acme-ml' AND principal = '" ADMIN "' AND "
	                            "method = '/mlops.maturity.v1.Test/Method' AND code = 0 AND "
	                            "request_id = 'req-1'"),
	                 1);

	assert_int_equal(store_org_get(&c, "nope", &got, &err), MAT_NOT_FOUND);
	assert_int_equal(store_org_get(&c, "", &got, &err), MAT_NOT_FOUND);
}

static void test_store_org_create_duplicate_conflict(void **state)
{
	struct store_call c;
	struct mat_organization in = org("dup-org"), out;
	struct mat_error err;

	(void)state;
	TDB_SKIP_IF_NONE(db);
	c = tdb_call(db, ADMIN, 5000);
	create_ok("dup-org");
	mat_error_clear(&err);
	assert_int_equal(store_org_create(&c, &in, NULL, &out, &err), MAT_CONFLICT);
	assert_non_null(strstr(err.message, "organizations/dup-org"));
	assert_null(out.id);
	assert_int_equal(audit_count("organizations/dup-org"), 1);
}

static void test_store_org_create_request_id_idempotent(void **state)
{
	const char *rid = "6F9619FF-8B86-4011-B42D-00C04FC964FF";
	struct store_call c, other;
	struct mat_organization in = org("idem-org"), first, again;
	struct mat_error err;

	(void)state;
	TDB_SKIP_IF_NONE(db);
	c = tdb_call(db, ADMIN, 5000);
	mat_error_clear(&err);
	assert_int_equal(store_org_create(&c, &in, rid, &first, &err), MAT_OK);
	/* The retry returns the first result, even with a changed body, and writes nothing. */
	in.display_name = (char *)"Changed";
	assert_int_equal(
	    store_org_create(&c, &in, "6f9619ff-8b86-4011-b42d-00c04fc964ff", &again, &err),
	    MAT_OK);
	assert_string_equal(again.display_name, "Display");
	assert_string_equal(again.etag, first.etag);
	assert_int_equal(audit_count("organizations/idem-org"), 1);
	mat_organization_cleanup(&again);
	/* Another principal with the same request_id is another request. */
	other = tdb_call(db, "spiffe://corp.example/other", 5000);
	assert_int_equal(store_org_create(&other, &in, rid, &again, &err), MAT_CONFLICT);
	/* A malformed request_id is the caller's error. */
	in.id = (char *)"idem-org-2";
	assert_int_equal(store_org_create(&c, &in, "not-a-uuid", &again, &err), MAT_INVALID);
	assert_string_equal(err.violations[0].field, "request_id");
	mat_organization_cleanup(&first);
}

static void test_store_org_sql_metacharacters_verbatim(void **state)
{
	static const char *nasty[] = {
	    "Robert'); DROP TABLE organizations;--",
	    "back\\slash \\' \\\\ \"quotes\" $1 %s %n ${x} E'\\x41'",
	    "tab\tnewline\ncr\r unicode \xc3\xa9\xe2\x82\xac\xf0\x9f\x98\x80",
	    "'; SELECT pg_sleep(10); --",
	};
	struct store_call c;
	struct mat_label labels[2] = {{(char *)"q", (char *)"it's \"x\" \\ {}[]:,"},
	                              {(char *)"z", (char *)"\x01\x1f ctl"}};
	struct mat_error err;

	(void)state;
	TDB_SKIP_IF_NONE(db);
	c = tdb_call(db, ADMIN, 5000);
	for (size_t i = 0; i < sizeof(nasty) / sizeof(nasty[0]); i++) {
		char id[32];
		struct mat_organization in, out, got;
		snprintf(id, sizeof(id), "meta-%zu", i);
		in = org(id);
		in.display_name = (char *)nasty[i];
		in.description = (char *)nasty[(i + 1) % 4];
		in.labels = labels;
		in.n_labels = 2;
		mat_error_clear(&err);
		if (store_org_create(&c, &in, NULL, &out, &err) != MAT_OK)
			fail_msg("%s: %s", nasty[i], err.message);
		assert_int_equal(store_org_get(&c, id, &got, &err), MAT_OK);
		assert_string_equal(got.display_name, nasty[i]);
		assert_string_equal(got.description, nasty[(i + 1) % 4]);
		assert_int_equal(got.n_labels, 2);
		assert_string_equal(got.labels[0].value, labels[0].value);
		assert_string_equal(got.labels[1].value, labels[1].value);
		mat_organization_cleanup(&out);
		mat_organization_cleanup(&got);
	}
	assert_int_equal(tdb_scalar(db, "SELECT count(*) FROM information_schema.tables "
	                                "WHERE table_name = 'organizations'"),
	                 1);
	/* Nasty ids never reach SQL as identifiers either. */
	{
		struct mat_organization got;
		assert_int_equal(store_org_get(&c, "x' OR '1'='1", &got, &err), MAT_NOT_FOUND);
	}
}

static void test_store_org_list_pagination(void **state)
{
	struct store_call c;
	char *token = NULL, *seen[200];
	size_t n_seen = 0, pages = 0;
	struct mat_error err;

	(void)state;
	TDB_SKIP_IF_NONE(db);
	/* 120 organizations in their own id range (others exist from other tests). */
	for (int i = 0; i < 120; i++) {
		char id[32];
		snprintf(id, sizeof(id), "page-%03d", (i * 37) % 120); /* created out of order */
		create_ok(id);
	}
	c = tdb_call(db, ADMIN, 5000);
	do {
		struct mat_organization *list = NULL;
		size_t n = 0;
		char *next = NULL;
		mat_error_clear(&err);
		if (store_org_list(&c, 50, token ? token : "", &list, &n, &next, &err) != MAT_OK)
			fail_msg("list: %s", err.message);
		assert_true(n <= 50);
		for (size_t i = 0; i < n; i++) {
			if (strncmp(list[i].id, "page-", 5) == 0) {
				assert_true(n_seen < 200);
				seen[n_seen++] = strdup(list[i].id);
			}
			if (i > 0)
				assert_true(strcmp(list[i - 1].id, list[i].id) < 0);
		}
		for (size_t i = 0; i < n; i++)
			mat_organization_cleanup(&list[i]);
		free(list);
		free(token);
		token = next;
		pages++;
		assert_true(pages < 20);
	} while (token[0] != '\0');
	free(token);
	/* No duplicates, no gaps, in order. */
	assert_int_equal(n_seen, 120);
	for (size_t i = 0; i < n_seen; i++) {
		char want[32];
		snprintf(want, sizeof(want), "page-%03zu", i);
		assert_string_equal(seen[i], want);
		free(seen[i]);
	}
}

static void test_store_org_list_bad_token(void **state)
{
	struct store_call c;
	struct mat_organization *list = NULL;
	size_t n = 0;
	char *next = NULL;
	struct mat_error err;
	struct mat_assessment *al = NULL;

	(void)state;
	TDB_SKIP_IF_NONE(db);
	c = tdb_call(db, ADMIN, 5000);
	mat_error_clear(&err);
	assert_int_equal(store_org_list(&c, 10, "garbage!!", &list, &n, &next, &err), MAT_INVALID);
	assert_string_equal(err.violations[0].field, "page_token");
	assert_null(list);
	assert_null(next);
	/* A token of the assessment list is not one of this list. */
	create_ok("tok-org");
	for (int i = 0; i < 3; i++) {
		struct mat_assessment a;
		assert_int_equal(store_assessment_create(&c, "tok-org", "t", NULL, NULL, &a, &err),
		                 MAT_OK);
		mat_assessment_cleanup(&a);
	}
	assert_int_equal(store_assessment_list(&c, "tok-org", MAT_ASSESSMENT_STATE_UNSPECIFIED, 1,
	                                       "", &al, &n, &next, &err),
	                 MAT_OK);
	assert_int_equal(n, 1);
	assert_true(next[0] != '\0');
	mat_assessment_cleanup(&al[0]);
	free(al);
	{
		char *atok = next;
		mat_error_clear(&err);
		assert_int_equal(store_org_list(&c, 10, atok, &list, &n, &next, &err), MAT_INVALID);
		assert_string_equal(err.violations[0].field, "page_token");
		free(atok);
	}
}

static void test_store_org_list_only_visible(void **state)
{
	struct store_call c;
	struct mat_organization *list = NULL;
	size_t n = 0;
	char *next = NULL;
	struct mat_error err;

	(void)state;
	TDB_SKIP_IF_NONE(db);
	create_ok("vis-a");
	create_ok("vis-b");
	create_ok("vis-c");
	tdb_exec(db, "INSERT INTO role_bindings (id, principal, role, org_id, creator) VALUES "
	             "(gen_random_uuid(), 'viewer-1', 4, 'vis-a', 'x'), "
	             "(gen_random_uuid(), 'viewer-1', 2, 'vis-c', 'x'), "
	             "(gen_random_uuid(), 'global-1', 4, NULL, 'x')");
	c = tdb_call(db, "viewer-1", 5000);
	c.only_visible = true;
	mat_error_clear(&err);
	assert_int_equal(store_org_list(&c, 1000, "", &list, &n, &next, &err), MAT_OK);
	assert_int_equal(n, 2);
	assert_string_equal(list[0].id, "vis-a");
	assert_string_equal(list[1].id, "vis-c");
	assert_string_equal(next, "");
	for (size_t i = 0; i < n; i++)
		mat_organization_cleanup(&list[i]);
	free(list);
	free(next);
	/* A global binding sees everything; so does a caller for whom auth/ did not ask. */
	c = tdb_call(db, "global-1", 5000);
	c.only_visible = true;
	assert_int_equal(store_org_list(&c, 1000, "", &list, &n, &next, &err), MAT_OK);
	assert_int_equal((int64_t)n, tdb_scalar(db, "SELECT count(*) FROM organizations"));
	for (size_t i = 0; i < n; i++)
		mat_organization_cleanup(&list[i]);
	free(list);
	free(next);
	c = tdb_call(db, "nobody", 5000);
	c.only_visible = true;
	assert_int_equal(store_org_list(&c, 1000, "", &list, &n, &next, &err), MAT_OK);
	assert_int_equal(n, 0);
	free(list);
	free(next);
}

static void test_store_org_update_mask_and_etag(void **state)
{
	struct store_call c;
	struct mat_organization in = org("upd-org"), v1, v2, v3;
	struct mat_label labels[1] = {{(char *)"k", (char *)"v"}};
	struct mat_error err;

	(void)state;
	TDB_SKIP_IF_NONE(db);
	c = tdb_call(db, ADMIN, 5000);
	mat_error_clear(&err);
	assert_int_equal(store_org_create(&c, &in, NULL, &v1, &err), MAT_OK);
	/* Only display_name and policy change; description stays although `in` carries one. */
	in.display_name = (char *)"New name";
	in.description = (char *)"ignored";
	in.transition_policy = MAT_POLICY_AUTOMATIC;
	in.target_level = 4;
	in.labels = labels;
	in.n_labels = 1;
	assert_int_equal(store_org_update(&c, &in,
	                                  STORE_ORG_DISPLAY_NAME | STORE_ORG_TRANSITION_POLICY,
	                                  v1.etag, &v2, &err),
	                 MAT_OK);
	assert_string_equal(v2.display_name, "New name");
	assert_string_equal(v2.description, "Desc");
	assert_int_equal(v2.transition_policy, MAT_POLICY_AUTOMATIC);
	assert_int_equal(v2.target_level, 0);
	assert_int_equal(v2.n_labels, 0);
	assert_string_not_equal(v2.etag, v1.etag);
	assert_true(v2.update_time >= v1.update_time);
	assert_int_equal(v2.create_time, v1.create_time);
	/* The old etag is stale now. */
	assert_int_equal(store_org_update(&c, &in, STORE_ORG_TARGET_LEVEL, v1.etag, &v3, &err),
	                 MAT_ABORTED);
	assert_null(v3.id);
	/* No etag: no check. Labels replaced, target set. */
	assert_int_equal(
	    store_org_update(&c, &in, STORE_ORG_TARGET_LEVEL | STORE_ORG_LABELS, "", &v3, &err),
	    MAT_OK);
	assert_int_equal(v3.target_level, 4);
	assert_int_equal(v3.n_labels, 1);
	assert_string_equal(v3.labels[0].key, "k");
	assert_int_equal(audit_count("organizations/upd-org"), 3);
	mat_organization_cleanup(&v3);
	/* An empty mask changes nothing and writes no event. */
	assert_int_equal(store_org_update(&c, &in, 0, NULL, &v3, &err), MAT_OK);
	assert_int_equal(v3.target_level, 4);
	assert_int_equal(audit_count("organizations/upd-org"), 3);
	mat_organization_cleanup(&v3);
	in.id = (char *)"no-such-org";
	assert_int_equal(store_org_update(&c, &in, STORE_ORG_TARGET_LEVEL, NULL, &v3, &err),
	                 MAT_NOT_FOUND);
	mat_organization_cleanup(&v1);
	mat_organization_cleanup(&v2);
}

static void test_store_org_delete(void **state)
{
	struct store_call c;
	struct mat_organization got;
	struct mat_assessment a;
	struct mat_error err;

	(void)state;
	TDB_SKIP_IF_NONE(db);
	c = tdb_call(db, ADMIN, 5000);
	create_ok("del-empty");
	create_ok("del-full");
	mat_error_clear(&err);
	assert_int_equal(store_org_get(&c, "del-empty", &got, &err), MAT_OK);
	assert_int_equal(store_org_delete(&c, "del-empty", "0000000000000000", false, &err),
	                 MAT_ABORTED);
	assert_int_equal(store_org_delete(&c, "del-empty", got.etag, false, &err), MAT_OK);
	mat_organization_cleanup(&got);
	assert_int_equal(store_org_get(&c, "del-empty", &got, &err), MAT_NOT_FOUND);
	assert_int_equal(store_org_delete(&c, "del-empty", NULL, false, &err), MAT_NOT_FOUND);
	assert_int_equal(audit_count("organizations/del-empty"), 2);

	assert_int_equal(store_assessment_create(&c, "del-full", "t", NULL, NULL, &a, &err),
	                 MAT_OK);
	mat_assessment_cleanup(&a);
	tdb_exec(db, "INSERT INTO role_bindings (id, principal, role, org_id, creator) VALUES "
	             "(gen_random_uuid(), 'p', 4, 'del-full', 'x')");
	assert_int_equal(store_org_delete(&c, "del-full", NULL, false, &err), MAT_PRECONDITION);
	assert_int_equal(store_org_get(&c, "del-full", &got, &err), MAT_OK);
	mat_organization_cleanup(&got);
	assert_int_equal(store_org_delete(&c, "del-full", NULL, true, &err), MAT_OK);
	assert_int_equal(
	    tdb_scalar(db, "SELECT count(*) FROM assessments WHERE org_id = 'del-full'"), 0);
	assert_int_equal(
	    tdb_scalar(db, "SELECT count(*) FROM role_bindings WHERE org_id = 'del-full'"), 0);
}

static void test_store_bindings_for_principal(void **state)
{
	struct store_call c;
	struct mat_role_binding *b = NULL;
	size_t n = 0;
	struct mat_error err;

	(void)state;
	TDB_SKIP_IF_NONE(db);
	create_ok("bind-org");
	tdb_exec(db, "INSERT INTO role_bindings (id, principal, role, org_id, creator) VALUES "
	             "(gen_random_uuid(), 'binder', 3, 'bind-org', 'admin'), "
	             "(gen_random_uuid(), 'binder', 5, NULL, 'admin'), "
	             "(gen_random_uuid(), 'someone-else', 1, NULL, 'admin')");
	c = tdb_call(db, ADMIN, 5000);
	mat_error_clear(&err);
	assert_int_equal(store_bindings_for_principal(&c, "binder", &b, &n, &err), MAT_OK);
	assert_int_equal(n, 2);
	assert_null(b[0].org_id); /* global first */
	assert_int_equal(b[0].role, MAT_ROLE_REPORTER);
	assert_string_equal(b[1].org_id, "bind-org");
	assert_int_equal(b[1].role, MAT_ROLE_REVIEWER);
	assert_string_equal(b[1].principal, "binder");
	assert_string_equal(b[1].creator, "admin");
	assert_true(b[1].create_time > 0);
	assert_int_equal(strlen(b[1].id), 36);
	for (size_t i = 0; i < n; i++)
		mat_role_binding_cleanup(&b[i]);
	free(b);
	assert_int_equal(store_bindings_for_principal(&c, "nobody", &b, &n, &err), MAT_OK);
	assert_int_equal(n, 0);
	free(b);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_store_org_create_get),
	    cmocka_unit_test(test_store_org_create_duplicate_conflict),
	    cmocka_unit_test(test_store_org_create_request_id_idempotent),
	    cmocka_unit_test(test_store_org_sql_metacharacters_verbatim),
	    cmocka_unit_test(test_store_org_list_pagination),
	    cmocka_unit_test(test_store_org_list_bad_token),
	    cmocka_unit_test(test_store_org_list_only_visible),
	    cmocka_unit_test(test_store_org_update_mask_and_etag),
	    cmocka_unit_test(test_store_org_delete),
	    cmocka_unit_test(test_store_bindings_for_principal),
	};
	return cmocka_run_group_tests(tests, setup, teardown);
}
