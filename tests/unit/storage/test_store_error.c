/* SQLSTATE -> mat_code, table-driven (store_error.c). */
#include "store_error.h"

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>

#include <cmocka.h>

static void test_store_sqlstate_to_code_table(void **state)
{
	static const struct {
		const char *sqlstate;
		enum mat_code code;
	} cases[] = {
	    {"23505", MAT_CONFLICT},    {"23503", MAT_NOT_FOUND},   {"23514", MAT_INVALID},
	    {"23502", MAT_INVALID},     {"23000", MAT_INTERNAL},    {"40001", MAT_ABORTED},
	    {"40P01", MAT_ABORTED},     {"55P03", MAT_ABORTED},     {"57014", MAT_TIMEOUT},
	    {"08000", MAT_UNAVAILABLE}, {"08006", MAT_UNAVAILABLE}, {"08001", MAT_UNAVAILABLE},
	    {"08P01", MAT_UNAVAILABLE}, {"57P01", MAT_UNAVAILABLE}, {"57P02", MAT_UNAVAILABLE},
	    {"57P03", MAT_UNAVAILABLE}, {"57P04", MAT_UNAVAILABLE}, {"53300", MAT_UNAVAILABLE},
	    {"25006", MAT_UNAVAILABLE}, {"22001", MAT_INVALID},     {"22P02", MAT_INVALID},
	    {"22021", MAT_INVALID},     {"54000", MAT_LIMIT},       {"42P01", MAT_INTERNAL},
	    {"42601", MAT_INTERNAL},    {"XX000", MAT_INTERNAL},    {"P0001", MAT_INTERNAL},
	    {"57000", MAT_INTERNAL},    {"", MAT_INTERNAL},         {NULL, MAT_INTERNAL},
	    {"2350", MAT_INTERNAL},     {"235050", MAT_INTERNAL},
	};
	(void)state;
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		enum mat_code got = store_sqlstate_to_code(cases[i].sqlstate);
		if (got != cases[i].code)
			fail_msg("%s: got %s, want %s",
			         cases[i].sqlstate ? cases[i].sqlstate : "NULL", mat_code_name(got),
			         mat_code_name(cases[i].code));
	}
}

static void test_store_sqlstate_kills_connection_classes(void **state)
{
	(void)state;
	assert_true(store_sqlstate_kills_connection("08006"));
	assert_true(store_sqlstate_kills_connection("08003"));
	assert_true(store_sqlstate_kills_connection("57P01"));
	assert_true(store_sqlstate_kills_connection("57P02"));
	assert_true(store_sqlstate_kills_connection("57P03"));
	assert_true(store_sqlstate_kills_connection("25006"));
	assert_false(store_sqlstate_kills_connection("57014")); /* a cancel leaves it usable */
	assert_false(store_sqlstate_kills_connection("23505"));
	assert_false(store_sqlstate_kills_connection("40001"));
	assert_false(store_sqlstate_kills_connection(NULL));
	assert_false(store_sqlstate_kills_connection(""));
}

static void test_store_sqlstate_retryable_only_serialization(void **state)
{
	(void)state;
	assert_true(store_sqlstate_retryable("40001"));
	assert_true(store_sqlstate_retryable("40P01"));
	assert_false(store_sqlstate_retryable("40002"));
	assert_false(store_sqlstate_retryable("23505"));
	assert_false(store_sqlstate_retryable(NULL));
}

static void test_store_connect_login_refused(void **state)
{
	(void)state;
	assert_true(store_connect_login_refused(
	    "connection to server at \"db\" (10.0.0.2), port 5432 failed: FATAL:  password "
	    "authentication failed for user \"maturity\""));
	assert_true(store_connect_login_refused("connection to server on socket \"/run/.s.PGSQL."
	                                        "5432\" failed: FATAL:  role \"nobody\" does not "
	                                        "exist"));
	assert_true(store_connect_login_refused(
	    "FATAL:  no pg_hba.conf entry for host \"10.0.0.3\", user \"m\", database \"m\""));
	assert_true(store_connect_login_refused("fe_sendauth: no password supplied"));
	assert_true(
	    store_connect_login_refused("FATAL:  Peer authentication failed for user \"x\""));
	/* Waiting helps with these. */
	assert_false(store_connect_login_refused(
	    "connection to server on socket \"/run/.s.PGSQL.5432\" failed: No such file or "
	    "directory"));
	assert_false(store_connect_login_refused("FATAL:  the database system is starting up"));
	assert_false(store_connect_login_refused("FATAL:  sorry, too many clients already"));
	assert_false(store_connect_login_refused(NULL));
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_store_connect_login_refused),
	    cmocka_unit_test(test_store_sqlstate_to_code_table),
	    cmocka_unit_test(test_store_sqlstate_kills_connection_classes),
	    cmocka_unit_test(test_store_sqlstate_retryable_only_serialization),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
