/* Migration file names: parsing, ordering, duplicates, and the embedded set itself. */
#include "store_migrate.h"

#include <setjmp.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

static void test_store_migration_parse_valid(void **state)
{
	int v;
	char name[64];
	struct mat_error err;

	(void)state;
	mat_error_clear(&err);
	assert_int_equal(store__migration_parse("0001_init.sql", &v, name, &err), MAT_OK);
	assert_int_equal(v, 1);
	assert_string_equal(name, "init");
	assert_int_equal(store__migration_parse("0042_add_index_2.sql", &v, name, &err), MAT_OK);
	assert_int_equal(v, 42);
	assert_string_equal(name, "add_index_2");
	assert_int_equal(store__migration_parse("7_x.sql", &v, name, &err), MAT_OK);
	assert_int_equal(v, 7);
	assert_int_equal(store__migration_parse("10000_big.sql", &v, name, &err), MAT_OK);
	assert_int_equal(v, 10000);
}

static void test_store_migration_parse_invalid(void **state)
{
	static const char *bad[] = {
	    "",
	    "init.sql",
	    "0000_zero.sql",
	    "0001init.sql",
	    "0001_.sql",
	    "0001_init.SQL",
	    "0001_init",
	    "0001_Init.sql",
	    "0001_in-it.sql",
	    "0001_init.sql.bak",
	    "_0001.sql",
	    "99999999999_x.sql",
	    "0001_aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa.sql",
	};
	int v;
	char name[64];
	struct mat_error err;

	(void)state;
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		mat_error_clear(&err);
		if (store__migration_parse(bad[i], &v, name, &err) != MAT_INVALID)
			fail_msg("accepted %s", bad[i]);
	}
	assert_int_equal(store__migration_parse(NULL, &v, name, &err), MAT_INVALID);
}

static void test_store_migrations_plan_sorts_by_number(void **state)
{
	/* Numeric, not lexical: 10 comes after 9 even without zero padding. */
	const struct store__migration_file files[] = {
	    {"10_ten.sql", "t", 1},
	    {"0002_b.sql", "b", 1},
	    {"9_nine.sql", "n", 1},
	    {"0001_a.sql", "a", 1},
	};
	struct store__migration out[4];
	struct mat_error err;

	(void)state;
	mat_error_clear(&err);
	assert_int_equal(store__migrations_plan(files, 4, out, &err), MAT_OK);
	assert_int_equal(out[0].version, 1);
	assert_string_equal(out[0].sql, "a");
	assert_int_equal(out[1].version, 2);
	assert_int_equal(out[2].version, 9);
	assert_int_equal(out[3].version, 10);
	assert_string_equal(out[3].name, "ten");
}

static void test_store_migrations_plan_rejects_duplicates(void **state)
{
	const struct store__migration_file files[] = {
	    {"0001_a.sql", "a", 1}, {"0002_b.sql", "b", 1}, {"2_again.sql", "c", 1}};
	const struct store__migration_file badname[] = {{"0001_a.sql", "a", 1}, {"b.sql", "b", 1}};
	struct store__migration out[3];
	struct mat_error err;

	(void)state;
	mat_error_clear(&err);
	assert_int_equal(store__migrations_plan(files, 3, out, &err), MAT_INVALID);
	assert_non_null(strstr(err.message, "twice"));
	assert_int_equal(store__migrations_plan(badname, 2, out, &err), MAT_INVALID);
}

static void test_store_migrations_embedded_are_contiguous(void **state)
{
	struct store__migration *plan;
	struct mat_error err;

	(void)state;
	assert_true(store__n_migration_files >= 2);
	plan = calloc(store__n_migration_files, sizeof(*plan));
	assert_non_null(plan);
	mat_error_clear(&err);
	assert_int_equal(
	    store__migrations_plan(store__migration_files, store__n_migration_files, plan, &err),
	    MAT_OK);
	for (size_t i = 0, want = 1; i < store__n_migration_files; i++, want++) {
		assert_int_equal(plan[i].version, (int)want);
		assert_true(strlen(plan[i].sql) > 0);
	}
	assert_string_equal(plan[0].name, "init");
	assert_non_null(strstr(plan[0].sql, "CREATE TABLE organizations"));
	for (size_t i = 0; i < store__n_migration_files; i++)
		assert_int_equal(strlen(store__migration_files[i].sql),
		                 store__migration_files[i].len);
	free(plan);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_store_migration_parse_valid),
	    cmocka_unit_test(test_store_migration_parse_invalid),
	    cmocka_unit_test(test_store_migrations_plan_sorts_by_number),
	    cmocka_unit_test(test_store_migrations_plan_rejects_duplicates),
	    cmocka_unit_test(test_store_migrations_embedded_are_contiguous),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
