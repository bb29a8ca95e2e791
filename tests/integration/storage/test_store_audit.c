/* Audit events: written by store_audit_denied for refused calls, with the delegator that asserted
 * the principal if any; written in the same transaction as the mutation (a failing audit insert
 * undoes the mutation); and, with the fault-injection seam failing every libpq operation in turn, a
 * create is all or nothing. */
#include "store_internal.h"
#include "store_test_db.h"

#include <limits.h>
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

static void test_store_audit_denied_writes_event(void **state)
{
	struct store_call c;
	struct mat_error err;

	(void)state;
	TDB_SKIP_IF_NONE(db);
	c = tdb_call(db, "spiffe://corp.example/intruder", 5000);
	c.method = "/mlops.maturity.v1.OrganizationService/DeleteOrganization";
	c.request_id = "r-'; DROP TABLE audit_events; --";
	mat_error_clear(&err);
	assert_int_equal(store_audit_denied(&c, "organizations/acme", 7, &err), MAT_OK);
	assert_int_equal(tdb_scalar(db,
	                            "SELECT count(*) FROM audit_events WHERE principal = "
	                            "'spiffe://corp.example/intruder' AND method = "
	                            "'/mlops.maturity.v1.OrganizationService/DeleteOrganization' "
	                            "AND resource = 'organizations/acme' AND code = 7 AND "
	                            "request_id = 'r-''; DROP TABLE audit_events; --' AND "
	                            "time > now() - interval '1 minute'"),
	                 1);
	/* Unauthenticated: no principal, no request id. */
	c.principal = NULL;
	c.request_id = NULL;
	assert_int_equal(store_audit_denied(&c, NULL, 16, &err), MAT_OK);
	assert_int_equal(tdb_scalar(db, "SELECT count(*) FROM audit_events WHERE principal = '' "
	                                "AND code = 16 AND resource = '' AND request_id = ''"),
	                 1);
}

/* A delegator (x-on-behalf-of) is recorded beside the end user, in denials and in mutations, and
 * read back by store_audit_list; a call for itself records "". */
static void test_store_audit_delegator(void **state)
{
	struct store_call c;
	struct mat_organization in = {
	    .id = (char *)"deleg-audit", .display_name = (char *)"x", .description = (char *)""};
	struct mat_organization out;
	struct mat_audit_event *list = NULL;
	struct mat_error err;
	size_t n = 0;
	char *next = NULL;
	int seen = 0;

	(void)state;
	TDB_SKIP_IF_NONE(db);
	c = tdb_call(db, "user:alice@corp.example", 5000);
	c.delegator = "spiffe://corp.example/portal";
	c.method = "/mlops.maturity.v1.OrganizationService/GetOrganization";
	c.request_id = "deleg-denied";
	mat_error_clear(&err);
	assert_int_equal(store_audit_denied(&c, "organizations/acme", 7, &err), MAT_OK);
	c.method = "/mlops.maturity.v1.OrganizationService/CreateOrganization";
	c.request_id = "deleg-created";
	assert_int_equal(store_org_create(&c, &in, NULL, &out, &err), MAT_OK);
	mat_organization_cleanup(&out);
	assert_int_equal(tdb_scalar(db, "SELECT count(*) FROM audit_events WHERE principal = "
	                                "'user:alice@corp.example' AND delegator = "
	                                "'spiffe://corp.example/portal' AND request_id IN "
	                                "('deleg-denied', 'deleg-created')"),
	                 2);
	/* NULL and "" both mean no delegator. */
	c.delegator = NULL;
	c.request_id = "deleg-none";
	assert_int_equal(store_audit_denied(&c, "", 7, &err), MAT_OK);
	assert_int_equal(tdb_scalar(db, "SELECT count(*) FROM audit_events WHERE request_id = "
	                                "'deleg-none' AND delegator = ''"),
	                 1);

	c = tdb_call(db, "admin", 5000);
	assert_int_equal(
	    store_audit_list(&c, "user:alice@corp.example", 0, 0, 100, "", &list, &n, &next, &err),
	    MAT_OK);
	for (size_t i = 0; i < n; i++) {
		if (strcmp(list[i].request_id, "deleg-none") == 0) {
			assert_string_equal(list[i].delegator, "");
			seen++;
		} else if (strncmp(list[i].request_id, "deleg-", 6) == 0) {
			assert_string_equal(list[i].delegator, "spiffe://corp.example/portal");
			seen++;
		}
		mat_audit_event_cleanup(&list[i]);
	}
	free(list);
	free(next);
	assert_int_equal(seen, 3);
}

/* The column of migration 0005: NOT NULL, '' for rows written without it (as every row before
 * it was, and as an older replica still running during a rolling upgrade writes them). */
static void test_store_audit_delegator_column_default(void **state)
{
	(void)state;
	TDB_SKIP_IF_NONE(db);
	tdb_exec(db, "INSERT INTO audit_events (id, principal, method, code) VALUES "
	             "('00000000-0000-7000-8000-000000000005', 'old', '/old', 0)");
	assert_int_equal(tdb_scalar(db,
	                            "SELECT count(*) FROM audit_events WHERE id = "
	                            "'00000000-0000-7000-8000-000000000005' AND delegator = ''"),
	                 1);
	assert_int_equal(tdb_scalar(db, "SELECT count(*) FROM information_schema.columns WHERE "
	                                "table_name = 'audit_events' AND column_name = 'delegator' "
	                                "AND is_nullable = 'NO'"),
	                 1);
}

static void test_store_audit_same_transaction(void **state)
{
	struct store_call c;
	struct mat_organization in = {
	    .id = (char *)"audit-fail", .display_name = (char *)"x", .description = (char *)""};
	struct mat_organization out;
	struct mat_error err;

	(void)state;
	TDB_SKIP_IF_NONE(db);
	/* Make the audit insert of this one organization fail: the organization must not stay. */
	tdb_exec(db, "CREATE FUNCTION test_fail_audit() RETURNS trigger LANGUAGE plpgsql AS "
	             "$$ BEGIN RAISE EXCEPTION 'audit refused'; END $$");
	tdb_exec(db, "CREATE TRIGGER test_fail_audit BEFORE INSERT ON audit_events FOR EACH ROW "
	             "WHEN (NEW.resource = 'organizations/audit-fail') "
	             "EXECUTE FUNCTION test_fail_audit()");
	c = tdb_call(db, "admin", 5000);
	mat_error_clear(&err);
	assert_int_equal(store_org_create(&c, &in, NULL, &out, &err), MAT_INTERNAL);
	/* INTERNAL keeps the database's words for the log. */
	assert_non_null(strstr(err.message, "audit refused"));
	assert_int_equal(
	    tdb_scalar(db, "SELECT count(*) FROM organizations WHERE id = 'audit-fail'"), 0);
	tdb_exec(db, "DROP TRIGGER test_fail_audit ON audit_events");
	assert_int_equal(store_org_create(&c, &in, NULL, &out, &err), MAT_OK);
	mat_organization_cleanup(&out);
}

static void test_store_fault_every_operation_all_or_nothing(void **state)
{
	struct store_call c;
	struct mat_error err;
	long ops;
	int failures = 0;

	(void)state;
	TDB_SKIP_IF_NONE(db);
	c = tdb_call(db, "admin", 10000);
	/* Count the libpq operations of one create (counting on, never firing). */
	{
		struct mat_organization in = {.id = (char *)"fault-count",
		                              .display_name = (char *)"",
		                              .description = (char *)""};
		struct mat_organization out;
		store_fault_set(INT_MAX);
		mat_error_clear(&err);
		assert_int_equal(store_org_create(&c, &in, NULL, &out, &err), MAT_OK);
		ops = store_fault_count();
		store_fault_set(0);
		mat_organization_cleanup(&out);
	}
	assert_true(ops > 3);
	/* Fail each one in turn (a few more for the reconnects a failure causes). */
	for (long nth = 1; nth <= ops + 10; nth++) {
		char id[32], sql[160];
		struct mat_organization in = {
		    .id = id, .display_name = (char *)"", .description = (char *)""};
		struct mat_organization out;
		enum mat_code rc;
		int64_t orgs, events;

		snprintf(id, sizeof(id), "fault-%ld", nth);
		c = tdb_call(db, "admin", 10000);
		mat_error_clear(&err);
		store_fault_set((int)nth);
		rc = store_org_create(&c, &in, NULL, &out, &err);
		store_fault_set(0);
		mat_organization_cleanup(&out);
		if (rc != MAT_OK) {
			failures++;
			if (rc != MAT_UNAVAILABLE)
				fail_msg("fault %ld: %s %s", nth, mat_code_name(rc), err.message);
		}
		snprintf(sql, sizeof(sql), "SELECT count(*) FROM organizations WHERE id = '%s'",
		         id);
		orgs = tdb_scalar(db, sql);
		snprintf(sql, sizeof(sql),
		         "SELECT count(*) FROM audit_events WHERE resource = 'organizations/%s'",
		         id);
		events = tdb_scalar(db, sql);
		/* A failure after COMMIT was sent may still have committed: that is allowed, a
		 * half-written record is not. */
		assert_int_equal(orgs, events);
		if (rc == MAT_OK)
			assert_int_equal(orgs, 1);
	}
	print_message("%ld libpq operations in one create; %d of %ld injected faults failed it\n",
	              ops, failures, ops + 10);
	assert_true(failures > 0);
	/* And the pool has healed. */
	{
		struct mat_organization got;
		c = tdb_call(db, "admin", 5000);
		assert_int_equal(store_org_get(&c, "fault-count", &got, &err), MAT_OK);
		mat_organization_cleanup(&got);
	}
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_store_audit_denied_writes_event),
	    cmocka_unit_test(test_store_audit_delegator),
	    cmocka_unit_test(test_store_audit_delegator_column_default),
	    cmocka_unit_test(test_store_audit_same_transaction),
	    cmocka_unit_test(test_store_fault_every_operation_all_or_nothing),
	};
	return cmocka_run_group_tests(tests, setup, teardown);
}
