/* See store_test_db.h. */
#include "store_test_db.h"

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <unistd.h>

#include <cmocka.h>

static void append_quoted(char **buf, size_t *len, size_t *cap, const char *k, const char *v)
{
	size_t need = *len + strlen(k) + 2 * strlen(v) + 8;

	if (need > *cap) {
		*cap = need * 2;
		*buf = realloc(*buf, *cap);
		assert_non_null(*buf);
	}
	*len += (size_t)sprintf(*buf + *len, "%s='", k);
	for (const char *p = v; *p; p++) {
		if (*p == '\'' || *p == '\\')
			(*buf)[(*len)++] = '\\';
		(*buf)[(*len)++] = *p;
	}
	(*buf)[(*len)++] = '\'';
	(*buf)[(*len)++] = ' ';
	(*buf)[*len] = '\0';
}

char *tdb_conninfo_with_db(const char *url, const char *dbname)
{
	char *msg = NULL, *buf = NULL;
	size_t len = 0, cap = 0;
	PQconninfoOption *opts = PQconninfoParse(url, &msg);

	if (opts == NULL)
		fail_msg("bad MATURITY_TEST_DATABASE_URL: %s", msg ? msg : "out of memory");
	for (PQconninfoOption *o = opts; o->keyword != NULL; o++) {
		if (o->val == NULL || strcmp(o->keyword, "dbname") == 0)
			continue;
		append_quoted(&buf, &len, &cap, o->keyword, o->val);
	}
	append_quoted(&buf, &len, &cap, "dbname", dbname);
	PQconninfoFree(opts);
	return buf;
}

static void admin_exec(const char *url, const char *sql)
{
	PGconn *c = PQconnectdb(url);
	PGresult *r;

	if (PQstatus(c) != CONNECTION_OK)
		fail_msg("connect %s: %s", url, PQerrorMessage(c));
	r = PQexec(c, sql);
	if (PQresultStatus(r) != PGRES_COMMAND_OK)
		fail_msg("%s: %s", sql, PQerrorMessage(c));
	PQclear(r);
	PQfinish(c);
}

struct tdb *tdb_open(const char *url, int pool_size, bool migrate)
{
	struct tdb *db;
	struct store_options opt;
	struct mat_error err;
	uint32_t rnd = 0;
	char sql[128];

	if (url == NULL)
		url = getenv("MATURITY_TEST_DATABASE_URL");
	if (url == NULL || url[0] == '\0')
		return NULL;
	db = calloc(1, sizeof(*db));
	assert_non_null(db);
	assert_int_equal(getrandom(&rnd, sizeof(rnd), 0), (ssize_t)sizeof(rnd));
	snprintf(db->name, sizeof(db->name), "store_test_%d_%08x", (int)getpid(), rnd);
	snprintf(sql, sizeof(sql), "CREATE DATABASE %s", db->name);
	admin_exec(url, sql);
	db->conninfo = tdb_conninfo_with_db(url, db->name);
	opt = (struct store_options){.conninfo = db->conninfo, .size = pool_size};
	mat_error_clear(&err);
	if (store_pool_new(&opt, &db->pool, &err) != MAT_OK)
		fail_msg("store_pool_new: %s", err.message);
	if (migrate && store_migrate(db->pool, &err) != MAT_OK)
		fail_msg("store_migrate: %s", err.message);
	return db;
}

void tdb_close(struct tdb *db)
{
	const char *url = getenv("MATURITY_TEST_DATABASE_URL");
	char sql[128];

	if (db == NULL)
		return;
	store_pool_free(db->pool);
	if (url != NULL) {
		snprintf(sql, sizeof(sql), "DROP DATABASE IF EXISTS %s WITH (FORCE)", db->name);
		admin_exec(url, sql);
	}
	free(db->conninfo);
	free(db);
}

struct store_call tdb_call(struct tdb *db, const char *principal, int64_t timeout_ms)
{
	return (struct store_call){
	    .pool = db->pool,
	    .deadline_ms = timeout_ms < 0 ? STORE_NO_DEADLINE : store_now_ms() + timeout_ms,
	    .principal = principal,
	    .method = "/mlops.maturity.v1.Test/Method",
	    .request_id = "req-1",
	};
}

PGconn *tdb_connect(const struct tdb *db)
{
	PGconn *c = PQconnectdb(db->conninfo);

	if (PQstatus(c) != CONNECTION_OK)
		fail_msg("connect: %s", PQerrorMessage(c));
	return c;
}

int64_t tdb_scalar(const struct tdb *db, const char *sql)
{
	PGconn *c = tdb_connect(db);
	PGresult *r = PQexec(c, sql);
	int64_t v = -1;

	if (PQresultStatus(r) != PGRES_TUPLES_OK)
		fail_msg("%s: %s", sql, PQerrorMessage(c));
	if (PQntuples(r) > 0 && !PQgetisnull(r, 0, 0))
		v = strtoll(PQgetvalue(r, 0, 0), NULL, 10);
	PQclear(r);
	PQfinish(c);
	return v;
}

void tdb_exec(const struct tdb *db, const char *sql)
{
	PGconn *c = tdb_connect(db);
	PGresult *r = PQexec(c, sql);

	if (PQresultStatus(r) != PGRES_COMMAND_OK && PQresultStatus(r) != PGRES_TUPLES_OK)
		fail_msg("%s: %s", sql, PQerrorMessage(c));
	PQclear(r);
	PQfinish(c);
}
