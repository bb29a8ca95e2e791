/* The pool against a real server: deadline while every connection is busy (TIMEOUT), the
 * deadline bounding SQL (statement_timeout / cancel), client cancellation, stale connections
 * replaced transparently, and a private server stopped and restarted with scripts/pg-dev:
 * UNAVAILABLE fast during the outage, reconnection by itself after. */
#include "store_internal.h"
#include "store_test_db.h"

#include <pthread.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <cmocka.h>

static void make_org(struct tdb *db, const char *id)
{
	struct store_call c = tdb_call(db, "admin", 5000);
	struct mat_organization in = {
	    .id = (char *)id, .display_name = (char *)"", .description = (char *)""};
	struct mat_organization out;
	struct mat_error err;

	mat_error_clear(&err);
	if (store_org_create(&c, &in, NULL, &out, &err) != MAT_OK)
		fail_msg("create %s: %s", id, err.message);
	mat_organization_cleanup(&out);
}

static void test_store_pool_new_rejects_bad_conninfo(void **state)
{
	struct store_options opt = {.conninfo = "host=x nonsense_option=1", .size = 2};
	struct store_pool *p = (struct store_pool *)1;
	struct mat_error err;

	(void)state;
	mat_error_clear(&err);
	assert_int_equal(store_pool_new(&opt, &p, &err), MAT_INVALID);
	assert_null(p);
	opt.conninfo = "postgresql://[bad";
	assert_int_equal(store_pool_new(&opt, &p, &err), MAT_INVALID);
	opt = (struct store_options){.conninfo = "host=/nowhere", .size = 0};
	assert_int_equal(store_pool_new(&opt, &p, &err), MAT_INVALID);
	store_pool_free(NULL);
}

static void test_store_pool_acquire_deadline_when_busy(void **state)
{
	struct tdb *db = tdb_open(NULL, 1, true);
	struct store__conn *held = NULL;
	struct store_call c;
	struct mat_organization o;
	struct store_pool_stats st;
	struct mat_error err;
	int64_t t0, took;

	(void)state;
	TDB_SKIP_IF_NONE(db);
	make_org(db, "busy");
	mat_error_clear(&err);
	assert_int_equal(store__acquire(db->pool, store_now_ms() + 1000, NULL, &held, &err),
	                 MAT_OK);
	store_pool_get_stats(db->pool, &st);
	assert_int_equal(st.size, 1);
	assert_int_equal(st.in_use, 1);
	c = tdb_call(db, "admin", 200);
	t0 = store_now_ms();
	assert_int_equal(store_org_get(&c, "busy", &o, &err), MAT_TIMEOUT);
	took = store_now_ms() - t0;
	assert_true(took >= 190 && took < 1000);
	store__release(held);
	c = tdb_call(db, "admin", 1000);
	assert_int_equal(store_org_get(&c, "busy", &o, &err), MAT_OK);
	mat_organization_cleanup(&o);
	store_pool_get_stats(db->pool, &st);
	assert_int_equal(st.idle, 1);
	assert_true(store_pool_ping(db->pool, store_now_ms() + 1000));
	assert_false(store_pool_ping(db->pool, store_now_ms() - 1));
	tdb_close(db);
}

struct canceller {
	volatile int *flag;
	int after_ms;
};

static void *cancel_later(void *p)
{
	struct canceller *c = p;
	struct timespec ts = {.tv_sec = 0, .tv_nsec = (long)c->after_ms * 1000000L};

	nanosleep(&ts, NULL);
	*c->flag = 1;
	return NULL;
}

static void test_store_pool_deadline_bounds_sql_and_cancel(void **state)
{
	struct tdb *db = tdb_open(NULL, 2, true);
	PGconn *locker;
	PGresult *r;
	struct store_call c;
	struct mat_organization in = {.id = (char *)"locked", .target_level = 2}, out;
	struct mat_error err;
	int64_t t0, took;

	(void)state;
	TDB_SKIP_IF_NONE(db);
	make_org(db, "locked");
	/* Someone else holds the row: the update waits for the lock until its deadline. */
	locker = tdb_connect(db);
	r = PQexec(locker, "BEGIN; SELECT 1 FROM organizations WHERE id = 'locked' FOR UPDATE");
	assert_int_equal(PQresultStatus(r), PGRES_TUPLES_OK);
	PQclear(r);

	c = tdb_call(db, "admin", 300);
	t0 = store_now_ms();
	mat_error_clear(&err);
	assert_int_equal(store_org_update(&c, &in, STORE_ORG_TARGET_LEVEL, NULL, &out, &err),
	                 MAT_TIMEOUT);
	took = store_now_ms() - t0;
	print_message("update blocked on a lock, 300 ms deadline: TIMEOUT after %lld ms\n",
	              (long long)took);
	assert_true(took >= 250 && took < 1500);

	/* No deadline, but the client goes away: MAT_CANCELLED soon after. */
	{
		volatile int cancelled = 0;
		struct canceller cc = {.flag = &cancelled, .after_ms = 200};
		pthread_t t;
		c = tdb_call(db, "admin", -1);
		c.cancelled = &cancelled;
		assert_int_equal(pthread_create(&t, NULL, cancel_later, &cc), 0);
		t0 = store_now_ms();
		assert_int_equal(
		    store_org_update(&c, &in, STORE_ORG_TARGET_LEVEL, NULL, &out, &err),
		    MAT_CANCELLED);
		took = store_now_ms() - t0;
		pthread_join(t, NULL);
		assert_true(took >= 150 && took < 1500);
	}
	r = PQexec(locker, "ROLLBACK");
	PQclear(r);
	PQfinish(locker);
	/* Nothing was written, and the pool still works. */
	c = tdb_call(db, "admin", 2000);
	assert_int_equal(store_org_get(&c, "locked", &out, &err), MAT_OK);
	assert_int_equal(out.target_level, 0);
	mat_organization_cleanup(&out);
	assert_int_equal(store_org_update(&c, &in, STORE_ORG_TARGET_LEVEL, NULL, &out, &err),
	                 MAT_OK);
	assert_int_equal(out.target_level, 2);
	mat_organization_cleanup(&out);
	tdb_close(db);
}

static void test_store_pool_replaces_killed_connections(void **state)
{
	struct tdb *db = tdb_open(NULL, 2, true);
	struct store_call c;
	struct mat_organization in = {.id = (char *)"killed", .target_level = 1}, out;
	struct mat_error err;

	(void)state;
	TDB_SKIP_IF_NONE(db);
	make_org(db, "killed");
	/* Terminate our pooled backends (an admin, a failover proxy...): the next read and the
	 * next transaction find dead connections and quietly use new ones. */
	for (int round = 0; round < 2; round++) {
		int64_t killed = tdb_scalar(db, "SELECT count(pg_terminate_backend(pid)) FROM "
		                                "pg_stat_activity WHERE application_name = "
		                                "'maturityd' AND datname = current_database()");
		assert_true(killed >= 1);
		usleep(100000);
		c = tdb_call(db, "admin", 3000);
		mat_error_clear(&err);
		if (round == 0) {
			if (store_org_get(&c, "killed", &out, &err) != MAT_OK)
				fail_msg("get after kill: %s", err.message);
		} else {
			if (store_org_update(&c, &in, STORE_ORG_TARGET_LEVEL, NULL, &out, &err) !=
			    MAT_OK)
				fail_msg("update after kill: %s", err.message);
		}
		mat_organization_cleanup(&out);
	}
	tdb_close(db);
}

/* --- a private server, stopped and started ------------------------------------------------- */

static char pg_dir[128];

static char *pg_dev(const char *cmd, int port)
{
	char line[512], sh[768];
	FILE *f;
	char *out = NULL;

	snprintf(sh, sizeof(sh), "%s/scripts/pg-dev %s %s %d 2>/dev/null", MAT_SOURCE_DIR, cmd,
	         pg_dir, port);
	f = popen(sh, "r");
	if (f == NULL)
		return NULL;
	if (fgets(line, sizeof(line), f) != NULL) {
		line[strcspn(line, "\n")] = '\0';
		out = strdup(line);
	}
	if (pclose(f) != 0) {
		free(out);
		out = NULL;
	}
	return out;
}

static void test_store_pool_database_restart(void **state)
{
	int port = 56000 + (int)(getpid() % 3000);
	char *url, *stop;
	struct tdb *db;
	struct store_call c;
	struct mat_organization o;
	struct store_pool_stats st;
	struct mat_error err;
	int64_t t0, took, worst = 0;

	(void)state;
	if (getenv("MATURITY_TEST_DATABASE_URL") == NULL)
		skip();
	snprintf(pg_dir, sizeof(pg_dir), "/tmp/store-pool-test-%d", (int)getpid());
	url = pg_dev("start", port);
	if (url == NULL)
		skip(); /* no server binaries here: the other tests still ran */
	db = tdb_open(url, 3, true);
	make_org(db, "survivor");

	free(pg_dev("stop", 0));
	/* During the outage: UNAVAILABLE, and fast (the first call finds its connection dead,
	 * the next ones fail during the reconnect backoff without trying). */
	for (int i = 0; i < 5; i++) {
		c = tdb_call(db, "admin", 5000);
		t0 = store_now_ms();
		mat_error_clear(&err);
		assert_int_equal(store_org_get(&c, "survivor", &o, &err), MAT_UNAVAILABLE);
		took = store_now_ms() - t0;
		if (took > worst)
			worst = took;
	}
	print_message("database down: UNAVAILABLE in at most %lld ms (%s)\n", (long long)worst,
	              err.message);
	assert_true(worst < 500);
	assert_false(store_pool_ping(db->pool, store_now_ms() + 500));
	store_pool_get_stats(db->pool, &st);
	assert_int_equal(st.idle, 0);
	assert_true(st.broken >= 1);
	t0 = store_now_ms();
	assert_int_equal(store_pool_wait(db->pool, 1, &err), MAT_UNAVAILABLE);
	took = store_now_ms() - t0;
	assert_true(took >= 900 && took < 3000);

	/* Back up: the pool reconnects by itself (on demand, after its backoff). */
	stop = pg_dev("start", port);
	assert_non_null(stop);
	free(stop);
	t0 = store_now_ms();
	for (;;) {
		c = tdb_call(db, "admin", 1000);
		if (store_org_get(&c, "survivor", &o, &err) == MAT_OK)
			break;
		assert_int_equal(err.code, MAT_UNAVAILABLE);
		assert_true(store_now_ms() - t0 < 15000);
		usleep(50000);
	}
	print_message("database back: first success after %lld ms\n",
	              (long long)(store_now_ms() - t0));
	mat_organization_cleanup(&o);
	assert_int_equal(store_pool_wait(db->pool, 5, &err), MAT_OK);
	assert_true(store_pool_ping(db->pool, store_now_ms() + 1000));

	/* tdb_close drops the database through MATURITY_TEST_DATABASE_URL, which is another
	 * server: the whole private server goes instead. */
	store_pool_free(db->pool);
	free(db->conninfo);
	free(db);
	free(pg_dev("stop", 0));
	{
		char sh[256];
		snprintf(sh, sizeof(sh), "rm -rf %s", pg_dir);
		assert_int_equal(system(sh), 0);
	}
	free(url);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_store_pool_new_rejects_bad_conninfo),
	    cmocka_unit_test(test_store_pool_acquire_deadline_when_busy),
	    cmocka_unit_test(test_store_pool_deadline_bounds_sql_and_cancel),
	    cmocka_unit_test(test_store_pool_replaces_killed_connections),
	    cmocka_unit_test(test_store_pool_database_restart),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
