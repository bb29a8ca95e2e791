/* Support for the storage integration tests: each test executable gets its own fresh database on
 * the server named by MATURITY_TEST_DATABASE_URL (so executables can run in parallel), dropped
 * at the end. Without that variable every test skips. */
#ifndef STORE_TEST_DB_H
#define STORE_TEST_DB_H

#include "store.h"

#include <libpq-fe.h>
#include <stdbool.h>
#include <stdint.h>

struct tdb {
	char name[64];  /* the fresh database */
	char *conninfo; /* conninfo of the fresh database */
	struct store_pool *pool;
};

/* The conninfo `url` (string or URI) with its dbname replaced; malloc'd. */
char *tdb_conninfo_with_db(const char *url, const char *dbname);

/* Creates a fresh database on `url` (NULL: MATURITY_TEST_DATABASE_URL), a pool of `pool_size`
 * on it, and applies the migrations when `migrate`. Returns NULL when no server is configured;
 * fails the test (cmocka) on errors. */
struct tdb *tdb_open(const char *url, int pool_size, bool migrate);
/* Frees the pool and drops the database. NULL does nothing. */
void tdb_close(struct tdb *db);

/* A call as `principal` with `timeout_ms` left (< 0: no deadline). */
struct store_call tdb_call(struct tdb *db, const char *principal, int64_t timeout_ms);

/* A raw libpq connection to the fresh database, for assertions behind storage's back. */
PGconn *tdb_connect(const struct tdb *db);
/* Runs `sql` on a fresh connection; returns the first column of the first row as a number
 * (-1 when there is no row). Fails the test on SQL errors. */
int64_t tdb_scalar(const struct tdb *db, const char *sql);
/* Runs `sql` (no result expected); fails the test on errors. */
void tdb_exec(const struct tdb *db, const char *sql);

/* In a cmocka test: skip when no server is configured (db == NULL). */
#define TDB_SKIP_IF_NONE(db)      \
	do {                      \
		if ((db) == NULL) \
			skip();   \
	} while (0)

#endif
