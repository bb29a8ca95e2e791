/* The database's health as the service sees it: a ping (SELECT 1, bounded by a deadline, through
 * the same read path as every call, so a ping that succeeds means calls can succeed) and the
 * startup wait for the database (--db-wait). Part of the exec layer (docs/architecture.md): it
 * runs a statement, so it sits above the pool, which only holds connections. */
#include "store_internal.h"

#include <stdio.h>
#include <time.h>

STORE__STMT(st_ping, 0, "SELECT 1");

static enum mat_code ping(struct store_pool *pool, int64_t deadline, struct mat_error *err)
{
	struct store_call c = {.pool = pool, .deadline_ms = deadline};
	struct store__cmd cmd = {.st = &st_ping};
	enum mat_code rc = store__read(&c, &cmd, 1, err);

	store__cmds_clear(&cmd, 1);
	return rc;
}

bool store_pool_ping(struct store_pool *pool, int64_t deadline_ms)
{
	struct mat_error err;

	mat_error_clear(&err);
	return ping(pool, deadline_ms, &err) == MAT_OK;
}

enum mat_code store_pool_wait(struct store_pool *pool, int seconds, struct mat_error *err)
{
	int64_t end = store_now_ms() + (int64_t)(seconds < 0 ? 0 : seconds) * 1000;
	enum mat_code rc = MAT_INTERNAL;

	for (;;) {
		int64_t now = store_now_ms();
		int64_t attempt_end = end > now + 5000 ? end : now + 5000;

		mat_error_clear(err);
		rc = ping(pool, attempt_end, err);
		if (rc == MAT_OK || rc == MAT_INVALID || rc == MAT_INTERNAL)
			break;
		/* A refused login stays refused: say so now rather than after --db-wait. */
		if (rc == MAT_UNAVAILABLE && err != NULL &&
		    store_connect_login_refused(err->message)) {
			rc = MAT_UNAUTHENTICATED;
			break;
		}
		now = store_now_ms();
		if (now >= end) {
			if (rc != MAT_UNAVAILABLE)
				mat_error_set(err, MAT_UNAVAILABLE,
				              "database unavailable after %d s: %s", seconds,
				              err != NULL ? err->message : "");
			rc = MAT_UNAVAILABLE;
			break;
		}
		/* Either the connect failed or the pool is backing off: look again soon. */
		int64_t nap = end - now < 200 ? end - now : 200;
		struct timespec ts = {.tv_sec = 0, .tv_nsec = (long)nap * 1000000L};
		nanosleep(&ts, NULL);
	}
	return rc;
}
