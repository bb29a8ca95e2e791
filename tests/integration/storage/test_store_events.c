/* The event log against a real server: mutations write their events with the encoder's snapshot
 * in their own transaction (none for a failure or a replay), the follower's read stops below a
 * transaction still open and delivers its event once and in order after the commit, cursors
 * (round trip, garbage, expired), the janitor's batches and advisory lock, and the listener. */
#include "store_test_db.h"

#include <setjmp.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <cmocka.h>

static struct tdb *db;

/* A snapshot that names the resource: enough to see which state of it the event holds. */
static bool test_encoder(enum store_snapshot_kind kind, const void *r, uint8_t **out, size_t *len)
{
	char buf[256];
	int n = 0;

	switch (kind) {
	case STORE_SNAPSHOT_ORGANIZATION: {
		const struct mat_organization *o = r;
		n = snprintf(buf, sizeof(buf), "org:%s:%s", o->id, o->display_name);
		break;
	}
	default:
		n = snprintf(buf, sizeof(buf), "kind:%d", (int)kind);
		break;
	}
	*out = malloc((size_t)n);
	if (*out == NULL)
		return false;
	memcpy(*out, buf, (size_t)n);
	*len = (size_t)n;
	return true;
}

static int setup(void **state)
{
	struct mat_error err;

	(void)state;
	db = tdb_open(NULL, 4, true);
	store_events_set_encoder(test_encoder);
	if (db != NULL) {
		/* Read-aheads run on the storage loop, as in the server. */
		struct store_call c = tdb_call(db, "admin", 5000);
		if (store_pool_start_loop(c.pool, 2, 0, NULL, NULL, &err) != MAT_OK)
			return -1;
	}
	return 0;
}

static int teardown(void **state)
{
	(void)state;
	tdb_close(db);
	return 0;
}

static enum mat_code create_org(const char *id, const char *name, const char *rid)
{
	struct store_call c = tdb_call(db, "admin", 5000);
	struct mat_organization in = {.id = (char *)id,
	                              .display_name = (char *)name,
	                              .description = (char *)"",
	                              .transition_policy = MAT_POLICY_MANUAL_REVIEW};
	struct mat_organization out;
	struct mat_error err;
	enum mat_code rc;

	mat_error_clear(&err);
	rc = store_org_create(&c, &in, rid, &out, &err);
	mat_organization_cleanup(&out);
	return rc;
}

static void rename_org(const char *id, const char *name)
{
	struct store_call c = tdb_call(db, "editor", 5000);
	struct mat_organization in = {.id = (char *)id, .display_name = (char *)name};
	struct mat_organization out;
	struct mat_error err;

	mat_error_clear(&err);
	assert_int_equal(store_org_update(&c, &in, STORE_ORG_DISPLAY_NAME, NULL, &out, &err),
	                 MAT_OK);
	mat_organization_cleanup(&out);
}

static void list_org(const char *org, struct store_event **out, size_t *n)
{
	struct store_call c = tdb_call(db, "admin", 5000);
	struct store_event_filter f = {.org_id = org};
	struct mat_error err;
	char *next = NULL;

	mat_error_clear(&err);
	assert_int_equal(store_event_list(&c, &f, 1000, "", out, n, &next, &err), MAT_OK);
	free(next);
}

static void test_mutations_write_events(void **state)
{
	const char *rid = "0190a000-0000-7000-8000-00000000ee01";
	struct store_call c = tdb_call(db, "admin", 5000);
	struct store_event *list;
	struct mat_error err;
	size_t n;
	(void)state;
	TDB_SKIP_IF_NONE(db);

	assert_int_equal(create_org("so-a", "A", rid), MAT_OK);
	assert_int_equal(create_org("so-a", "A", rid), MAT_OK);        /* replay */
	assert_int_equal(create_org("so-a", "A", NULL), MAT_CONFLICT); /* failure */
	rename_org("so-a", "B");
	mat_error_clear(&err);
	assert_int_equal(store_org_delete(&c, "so-a", NULL, false, &err), MAT_OK);

	list_org("so-a", &list, &n);
	assert_int_equal(n, 3);
	/* Newest first. */
	assert_int_equal(list[2].type, STORE_EVENT_ORG_CREATED);
	assert_int_equal(list[1].type, STORE_EVENT_ORG_UPDATED);
	assert_int_equal(list[0].type, STORE_EVENT_ORG_DELETED);
	assert_memory_equal(list[2].snapshot, "org:so-a:A", list[2].snapshot_len);
	assert_memory_equal(list[1].snapshot, "org:so-a:B", list[1].snapshot_len);
	assert_memory_equal(list[0].snapshot, "org:so-a:B", list[0].snapshot_len); /* before */
	assert_string_equal(list[2].principal, "admin");
	assert_string_equal(list[1].principal, "editor");
	assert_string_equal(list[1].resource, "organizations/so-a");
	assert_true(list[2].seq < list[1].seq && list[1].seq < list[0].seq);
	store_events_free(list, n);
}

/* A connection whose open transaction wrote an ORGANIZATION_UPDATED event of `org` by
 * "late": it commits (or not) when the test says. */
static PGconn *late_event(const char *org)
{
	char sql[256];
	PGconn *tx = tdb_connect(db);
	PGresult *r = PQexec(tx, "BEGIN");

	PQclear(r);
	snprintf(sql, sizeof(sql),
	         "INSERT INTO events (type, org_id, resource, principal) "
	         "VALUES (2, '%s', 'organizations/%s', 'late')",
	         org, org);
	r = PQexec(tx, sql);
	assert_int_equal(PQresultStatus(r), PGRES_COMMAND_OK);
	PQclear(r);
	return tx;
}

static void test_follow_stops_below_an_open_transaction(void **state)
{
	struct store_call c = tdb_call(db, "watcher", 5000);
	struct store_event_filter f = {.org_id = "so-b"};
	struct store_event_pos pos, back;
	struct store_event *batch = NULL;
	struct mat_error err;
	char cursor[STORE_EVENT_CURSOR_MAX];
	PGconn *tx;
	PGresult *r;
	bool held;
	size_t n;
	(void)state;
	TDB_SKIP_IF_NONE(db);

	assert_int_equal(create_org("so-b", "A", NULL), MAT_OK);
	mat_error_clear(&err);
	assert_int_equal(store_event_now(&c, &pos, &err), MAT_OK);

	tx = late_event("so-b");
	rename_org("so-b", "C"); /* commits first */

	assert_int_equal(store_event_follow(&c, &f, 0, 100, &pos, &batch, &n, &held, &err), MAT_OK);
	assert_int_equal(n, 0);
	assert_true(held);
	store_events_free(batch, n);

	r = PQexec(tx, "COMMIT");
	PQclear(r);
	PQfinish(tx);
	assert_int_equal(store_event_follow(&c, &f, 0, 100, &pos, &batch, &n, &held, &err), MAT_OK);
	assert_int_equal(n, 2);
	assert_string_equal(batch[0].principal, "late");
	assert_string_equal(batch[1].principal, "editor");
	/* Cursors round-trip. */
	assert_int_equal(store_event_cursor_decode(batch[0].cursor, "after", 0, &back, &err),
	                 MAT_OK);
	store_events_free(batch, n);
	assert_int_equal(store_event_follow(&c, &f, 0, 100, &back, &batch, &n, &held, &err),
	                 MAT_OK);
	assert_int_equal(n, 1);
	assert_string_equal(batch[0].principal, "editor");
	store_events_free(batch, n);
	/* And nothing is delivered twice. */
	assert_int_equal(store_event_follow(&c, &f, 0, 100, &pos, &batch, &n, &held, &err), MAT_OK);
	assert_int_equal(n, 0);
	store_events_free(batch, n);

	store_event_cursor_encode(&pos, cursor);
	mat_error_clear(&err);
	assert_int_equal(store_event_cursor_decode("garbage", "after", 0, &back, &err),
	                 MAT_INVALID);
	mat_error_clear(&err);
	assert_int_equal(store_event_cursor_decode(cursor, "after", INT64_MAX, &back, &err),
	                 MAT_OUT_OF_RANGE);
}

/* A replay far behind passes the watermark of its last full batch again instead of reading a new
 * one: the same bound, so an event a transaction still open at that bound writes is not skipped;
 * once a batch comes back short the position is at the bound, and a fresh one brings it. */
static void test_follow_reuses_its_watermark_while_batches_are_full(void **state)
{
	struct store_call c = tdb_call(db, "watcher", 5000);
	struct store_event_filter f = {.org_id = "so-w"};
	struct store_event_pos pos;
	struct store_event *batch = NULL;
	struct mat_error err;
	mat_time_us wm = 0, first_wm;
	PGconn *tx;
	PGresult *r;
	bool held;
	size_t n;
	(void)state;
	TDB_SKIP_IF_NONE(db);

	mat_error_clear(&err);
	assert_int_equal(store_event_now(&c, &pos, &err), MAT_OK);
	assert_int_equal(create_org("so-w", "A", NULL), MAT_OK);
	rename_org("so-w", "B");
	rename_org("so-w", "C");
	tx = late_event("so-w");

	assert_int_equal(store_event_follow_wm(&c, &f, 0, 1, &pos, &wm, &batch, &n, &held, &err),
	                 MAT_OK);
	assert_int_equal(n, 1);
	assert_int_equal(batch[0].type, STORE_EVENT_ORG_CREATED);
	store_events_free(batch, n);
	assert_true(wm > 0);
	first_wm = wm;
	assert_int_equal(store_event_follow_wm(&c, &f, 0, 1, &pos, &wm, &batch, &n, &held, &err),
	                 MAT_OK);
	assert_int_equal(n, 1);
	store_events_free(batch, n);
	/* The late transaction commits: the reused bound is older than a fresh one would be, and
	 * still below its event. */
	r = PQexec(tx, "COMMIT");
	PQclear(r);
	PQfinish(tx);
	assert_int_equal(store_event_follow_wm(&c, &f, 0, 1, &pos, &wm, &batch, &n, &held, &err),
	                 MAT_OK);
	assert_int_equal(n, 1);
	assert_string_equal(batch[0].principal, "editor");
	store_events_free(batch, n);
	assert_int_equal(wm, first_wm); /* not read again */
	assert_int_equal(store_event_follow_wm(&c, &f, 0, 1, &pos, &wm, &batch, &n, &held, &err),
	                 MAT_OK);
	assert_int_equal(n, 0); /* short: the position is at the bound */
	store_events_free(batch, n);
	assert_int_equal(pos.pos_us, first_wm);
	wm = 0;
	assert_int_equal(store_event_follow_wm(&c, &f, 0, 100, &pos, &wm, &batch, &n, &held, &err),
	                 MAT_OK);
	assert_int_equal(n, 1);
	assert_string_equal(batch[0].principal, "late");
	store_events_free(batch, n);
	assert_true(wm > first_wm);
}

/* A read-ahead started after each full batch returns what store_event_follow_wm would have read
 * at that moment (the same events, position and watermark), is used only for the read it
 * matches, and may be dropped while its read runs or after it finished (ASan: no leak, no use
 * after free). */
static void test_follow_ahead_reads_what_follow_would(void **state)
{
	struct store_call c = tdb_call(db, "watcher", 5000), vis = c;
	struct store_event_filter f = {.org_id = "so-a"}, other = {.org_id = "so-b"};
	struct store_event_pos start, pos, ref_pos;
	struct store_event *batch = NULL, *ref = NULL;
	struct store_event_ahead *a;
	struct mat_error err;
	mat_time_us wm = 0, ref_wm;
	int64_t seen[16];
	size_t n, ref_n, n_seen = 0;
	bool held, ref_held;
	char name[8];
	(void)state;
	TDB_SKIP_IF_NONE(db);

	mat_error_clear(&err);
	assert_int_equal(store_event_now(&c, &start, &err), MAT_OK);
	assert_int_equal(create_org("so-a", "A", NULL), MAT_OK);
	for (int i = 0; i < 7; i++) {
		snprintf(name, sizeof(name), "N%d", i);
		rename_org("so-a", name);
	}
	/* The reference: batches of 3 the plain way. */
	pos = start;
	do {
		assert_int_equal(
		    store_event_follow_wm(&c, &f, 0, 3, &pos, &wm, &batch, &n, &held, &err),
		    MAT_OK);
		for (size_t i = 0; i < n; i++)
			seen[n_seen++] = batch[i].seq;
		store_events_free(batch, n);
	} while (n == 3);
	assert_int_equal(n_seen, 8);

	/* The same with each next batch read ahead. */
	pos = start;
	wm = 0;
	assert_int_equal(store_event_follow_wm(&c, &f, 0, 3, &pos, &wm, &batch, &n, &held, &err),
	                 MAT_OK);
	assert_int_equal(n, 3);
	for (size_t i = 0; i < n; i++)
		assert_int_equal(batch[i].seq, seen[i]);
	store_events_free(batch, n);
	for (size_t k = 3; k < 8; k += 3) {
		a = store_event_follow_ahead(&c, &f, 0, 3, &pos, wm);
		assert_non_null(a);
		/* Any other read is not this one. */
		vis.only_visible = !c.only_visible;
		assert_true(store_event_ahead_matches(a, &c, &f, 0, &pos, wm, 3));
		assert_false(store_event_ahead_matches(a, &c, &f, 0, &pos, wm, 4));
		assert_false(store_event_ahead_matches(a, &c, &f, 1, &pos, wm, 3));
		assert_false(store_event_ahead_matches(a, &c, &f, 0, &pos, wm + 1, 3));
		assert_false(store_event_ahead_matches(a, &c, &other, 0, &pos, wm, 3));
		assert_false(store_event_ahead_matches(a, &vis, &f, 0, &pos, wm, 3));
		ref_pos = pos;
		ref_wm = wm;
		assert_int_equal(store_event_follow_wm(&c, &f, 0, 3, &ref_pos, &ref_wm, &ref,
		                                       &ref_n, &ref_held, &err),
		                 MAT_OK);
		assert_int_equal(store_event_ahead_finish(a, &pos, &batch, &n, &held, &err),
		                 MAT_OK);
		assert_int_equal(n, ref_n);
		assert_int_equal(n, k + 3 <= 8 ? 3 : 8 - k);
		for (size_t i = 0; i < n; i++) {
			assert_int_equal(batch[i].seq, seen[k + i]);
			assert_int_equal(batch[i].seq, ref[i].seq);
			assert_string_equal(batch[i].principal, ref[i].principal);
			assert_int_equal(batch[i].snapshot_len, ref[i].snapshot_len);
			assert_memory_equal(batch[i].snapshot, ref[i].snapshot,
			                    n ? ref[i].snapshot_len : 0);
		}
		assert_int_equal(pos.pos_us, ref_pos.pos_us);
		assert_int_equal(pos.seq, ref_pos.seq);
		assert_int_equal(held, ref_held);
		store_events_free(batch, n);
		store_events_free(ref, ref_n);
	}

	/* Dropped at once (its read most likely still queued or running), and after it ended. */
	pos = start;
	store_event_ahead_drop(store_event_follow_ahead(&c, &f, 0, 3, &pos, wm));
	a = store_event_follow_ahead(&c, &f, 0, 3, &pos, wm);
	assert_non_null(a);
	usleep(200 * 1000);
	store_event_ahead_drop(a);
	store_event_ahead_drop(NULL);
	usleep(200 * 1000); /* the first one's completion frees it before the pool goes */
}

static void test_prune_batches_under_a_lock(void **state)
{
	struct store_call c = tdb_call(db, "janitor", 5000);
	struct mat_error err;
	int64_t deleted = -1;
	PGconn *other;
	PGresult *r;
	struct timespec ts;
	mat_time_us day_ago;
	(void)state;
	TDB_SKIP_IF_NONE(db);

	tdb_exec(db,
	         "INSERT INTO events (type, org_id, resource, principal, pos, time) "
	         "SELECT 2, 'so-old', 'organizations/so-old', 'old', "
	         "now() - interval '3 days', now() - interval '3 days' FROM generate_series(1, 5)");
	clock_gettime(CLOCK_REALTIME, &ts);
	day_ago = (mat_time_us)ts.tv_sec * 1000000 - INT64_C(86400000000);

	/* Another replica holds the lock: nothing done here. */
	other = tdb_connect(db);
	r = PQexec(other, "BEGIN");
	PQclear(r);
	r = PQexec(other, "SELECT pg_advisory_xact_lock(120265331664246)");
	assert_int_equal(PQresultStatus(r), PGRES_TUPLES_OK);
	PQclear(r);
	mat_error_clear(&err);
	assert_int_equal(store_event_prune(&c, day_ago, 2, &deleted, &err), MAT_OK);
	assert_int_equal(deleted, 0);
	r = PQexec(other, "COMMIT");
	PQclear(r);
	PQfinish(other);

	assert_int_equal(store_event_prune(&c, day_ago, 2, &deleted, &err), MAT_OK);
	assert_int_equal(deleted, 2);
	assert_int_equal(store_event_prune(&c, day_ago, 10, &deleted, &err), MAT_OK);
	assert_int_equal(deleted, 3);
	assert_int_equal(tdb_scalar(db, "SELECT count(*) FROM events WHERE org_id = 'so-old'"), 0);
	/* Recent events stay. */
	assert_true(tdb_scalar(db, "SELECT count(*) FROM events") > 0);
}

static atomic_int notified;

static void on_notify(void *arg)
{
	(void)arg;
	atomic_fetch_add(&notified, 1);
}

static void test_listener_hears_commits(void **state)
{
	struct store_listener *l;
	int before;
	(void)state;
	TDB_SKIP_IF_NONE(db);

	l = store_listener_start(db->pool, on_notify, NULL);
	assert_non_null(l);
	/* Once at connection. */
	for (int i = 0; i < 100 && atomic_load(&notified) == 0; i++)
		usleep(20 * 1000);
	assert_true(atomic_load(&notified) >= 1);
	before = atomic_load(&notified);
	rename_org("so-b", "D");
	for (int i = 0; i < 100 && atomic_load(&notified) == before; i++)
		usleep(20 * 1000);
	assert_true(atomic_load(&notified) > before);
	store_listener_stop(l);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_mutations_write_events),
	    cmocka_unit_test(test_follow_stops_below_an_open_transaction),
	    cmocka_unit_test(test_follow_reuses_its_watermark_while_batches_are_full),
	    cmocka_unit_test(test_follow_ahead_reads_what_follow_would),
	    cmocka_unit_test(test_prune_batches_under_a_lock),
	    cmocka_unit_test(test_listener_hears_commits),
	};
	return cmocka_run_group_tests(tests, setup, teardown);
}
