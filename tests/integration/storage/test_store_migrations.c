/* Migrations against a real server: applied once, recorded, idempotent, and safe when two
 * migrate at the same time (advisory lock). */
#include "store_test_db.h"

#include <pthread.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>

#include <cmocka.h>

static void test_store_migrate_applies_and_is_idempotent(void **state)
{
	struct tdb *db = tdb_open(NULL, 2, false);
	struct mat_error err;
	int64_t n;

	(void)state;
	TDB_SKIP_IF_NONE(db);
	mat_error_clear(&err);
	assert_int_equal(store_migrate(db->pool, &err), MAT_OK);
	n = tdb_scalar(db, "SELECT count(*) FROM schema_migrations");
	assert_true(n >= 2);
	assert_int_equal(tdb_scalar(db, "SELECT min(version) FROM schema_migrations"), 1);
	assert_int_equal(
	    tdb_scalar(db, "SELECT count(*) FROM schema_migrations WHERE name = 'init'"), 1);
	/* Again: nothing new, nothing fails. */
	assert_int_equal(store_migrate(db->pool, &err), MAT_OK);
	assert_int_equal(tdb_scalar(db, "SELECT count(*) FROM schema_migrations"), n);
	assert_int_equal(tdb_scalar(db, "SELECT count(*) FROM information_schema.tables "
	                                "WHERE table_name = 'organizations'"),
	                 1);
	tdb_close(db);
}

struct migrate_arg {
	struct store_pool *pool;
	enum mat_code rc;
	char message[320];
};

static void *migrate_thread(void *p)
{
	struct migrate_arg *a = p;
	struct mat_error err;

	mat_error_clear(&err);
	a->rc = store_migrate(a->pool, &err);
	snprintf(a->message, sizeof(a->message), "%s", err.message);
	return NULL;
}

static void test_store_migrate_concurrent(void **state)
{
	struct tdb *db = tdb_open(NULL, 1, false);
	struct store_pool *other = NULL;
	struct store_options opt;
	struct mat_error err;
	struct migrate_arg a[2];
	pthread_t t[2];

	(void)state;
	TDB_SKIP_IF_NONE(db);
	/* Two pools, as two replicas starting together would have. */
	opt = (struct store_options){.conninfo = db->conninfo, .size = 1};
	mat_error_clear(&err);
	assert_int_equal(store_pool_new(&opt, &other, &err), MAT_OK);
	a[0] = (struct migrate_arg){.pool = db->pool};
	a[1] = (struct migrate_arg){.pool = other};
	for (int i = 0; i < 2; i++)
		assert_int_equal(pthread_create(&t[i], NULL, migrate_thread, &a[i]), 0);
	for (int i = 0; i < 2; i++)
		pthread_join(t[i], NULL);
	for (int i = 0; i < 2; i++)
		if (a[i].rc != MAT_OK)
			fail_msg("migrate %d: %s", i, a[i].message);
	assert_int_equal(tdb_scalar(db, "SELECT count(*) FROM schema_migrations"),
	                 tdb_scalar(db, "SELECT count(DISTINCT version) FROM schema_migrations"));
	assert_int_equal(tdb_scalar(db, "SELECT count(*) FROM schema_migrations WHERE version = 1"),
	                 1);
	store_pool_free(other);
	tdb_close(db);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_store_migrate_applies_and_is_idempotent),
	    cmocka_unit_test(test_store_migrate_concurrent),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
