/* Migrations: the SQL files of storage/migrations/, embedded at build time, applied in version
 * order under a PostgreSQL advisory lock (replicas starting together take turns), each in its own
 * transaction together with its row in schema_migrations. A version already recorded is never
 * run again; versions recorded by a newer binary are left alone. */
#include "store_migrate.h"
#include "store_internal.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* 'maturity' in ASCII: the advisory lock key of the migrations. */
#define MIGRATE_LOCK_KEY "7881694009622849913"

enum mat_code store__migration_parse(const char *file, int *version, char name[64],
                                     struct mat_error *err)
{
	const char *p = file;
	long v = 0;
	size_t len, nlen;

	*version = 0;
	name[0] = '\0';
	if (file == NULL)
		return mat_error_set(err, MAT_INVALID, "migration file name missing");
	while (*p >= '0' && *p <= '9') {
		v = v * 10 + (*p - '0');
		if (v > 1000000)
			return mat_error_set(err, MAT_INVALID, "%s: version too large", file);
		p++;
	}
	if (p == file || v < 1)
		return mat_error_set(err, MAT_INVALID, "%s: must start with a version >= 1", file);
	if (*p != '_')
		return mat_error_set(err, MAT_INVALID, "%s: expected NNNN_name.sql", file);
	p++;
	len = strlen(p);
	if (len <= 4 || strcmp(p + len - 4, ".sql") != 0)
		return mat_error_set(err, MAT_INVALID, "%s: expected NNNN_name.sql", file);
	nlen = len - 4;
	if (nlen > 63)
		return mat_error_set(err, MAT_INVALID, "%s: name too long", file);
	for (size_t i = 0; i < nlen; i++) {
		char c = p[i];
		if (!((c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '_'))
			return mat_error_set(err, MAT_INVALID, "%s: name must be [a-z0-9_]", file);
	}
	memcpy(name, p, nlen);
	name[nlen] = '\0';
	*version = (int)v;
	return MAT_OK;
}

static int by_version(const void *a, const void *b)
{
	const struct store__migration *x = a, *y = b;

	return (x->version > y->version) - (x->version < y->version);
}

enum mat_code store__migrations_plan(const struct store__migration_file *files, size_t n,
                                     struct store__migration *out, struct mat_error *err)
{
	for (size_t i = 0; i < n; i++) {
		enum mat_code rc =
		    store__migration_parse(files[i].file, &out[i].version, out[i].name, err);
		if (rc != MAT_OK)
			return rc;
		out[i].sql = files[i].sql;
	}
	qsort(out, n, sizeof(*out), by_version);
	for (size_t i = 1; i < n; i++) {
		if (out[i].version == out[i - 1].version)
			return mat_error_set(err, MAT_INVALID, "migration version %d appears twice",
			                     out[i].version);
	}
	return MAT_OK;
}

STORE__STMT(st_lock, 0, "SELECT pg_advisory_lock(" MIGRATE_LOCK_KEY ")");
STORE__STMT(st_unlock, 0, "SELECT pg_advisory_unlock(" MIGRATE_LOCK_KEY ")");
STORE__STMT(st_applied, 0, "SELECT version FROM schema_migrations ORDER BY version");
STORE__STMT(st_record, 2, "INSERT INTO schema_migrations (version, name) VALUES ($1::int, $2)");
STORE__STMT(st_mbegin, 0, "BEGIN");
STORE__STMT(st_mcommit, 0, "COMMIT");
STORE__STMT(st_mrollback, 0, "ROLLBACK");

static const char create_table[] = "CREATE TABLE IF NOT EXISTS schema_migrations ("
                                   " version integer PRIMARY KEY,"
                                   " name text NOT NULL,"
                                   " applied_at timestamptz NOT NULL DEFAULT now())";

static enum mat_code run1(struct store__conn *cn, const struct store_call *c,
                          struct store__stmt *st, const char *const *params, PGresult **res,
                          struct mat_error *err)
{
	struct store__cmd cmd = {.st = st, .params = params};
	enum mat_code rc = store__run(cn, c, &cmd, 1, NULL, err);

	if (res != NULL)
		*res = cmd.res;
	else
		store__cmds_clear(&cmd, 1);
	return rc;
}

static bool applied_has(const PGresult *r, int version)
{
	for (int i = 0; i < PQntuples(r); i++) {
		if (atoi(PQgetvalue(r, i, 0)) == version)
			return true;
	}
	return false;
}

/* Applies one migration in its own transaction. */
static enum mat_code apply_one(struct store__conn *cn, const struct store_call *c,
                               const struct store__migration *m, struct mat_error *err)
{
	char v[16];
	const char *params[2] = {v, m->name};
	enum mat_code rc = run1(cn, c, &st_mbegin, NULL, NULL, err);

	snprintf(v, sizeof(v), "%d", m->version);
	if (rc == MAT_OK)
		rc = store__run_script(cn, c, m->sql, NULL, err);
	if (rc == MAT_OK)
		rc = run1(cn, c, &st_record, params, NULL, err);
	if (rc == MAT_OK)
		rc = run1(cn, c, &st_mcommit, NULL, NULL, err);
	if (rc != MAT_OK) {
		struct mat_error ignored;
		char msg[sizeof(err->message)];

		if (!cn->lost && run1(cn, c, &st_mrollback, NULL, NULL, &ignored) != MAT_OK)
			cn->lost = true;
		if (err != NULL) {
			snprintf(msg, sizeof(msg), "%s", err->message);
			mat_error_set(err, rc, "migration %04d_%s: %s", m->version, m->name, msg);
		}
	}
	return rc;
}

enum mat_code store_migrate(struct store_pool *pool, struct mat_error *err)
{
	struct store_call c = {.pool = pool, .deadline_ms = STORE_NO_DEADLINE};
	struct store__migration *plan = NULL;
	struct store__conn *cn = NULL;
	PGresult *applied = NULL;
	bool locked = false;
	enum mat_code rc = MAT_INTERNAL;

	plan = calloc(store__n_migration_files, sizeof(*plan));
	if (plan == NULL)
		return store__oom(err);
	rc = store__migrations_plan(store__migration_files, store__n_migration_files, plan, err);
	if (rc != MAT_OK) {
		rc = MAT_INTERNAL; /* a bad file name is a build defect, not a client's fault */
		goto out;
	}
	/* Connecting is bounded by the connect timeout; the lock wait is not bounded: another
	 * replica is migrating and we must not start before it is done. */
	rc = store__acquire(pool, store_now_ms() + 10000, NULL, &cn, err);
	if (rc != MAT_OK)
		goto out;
	rc = run1(cn, &c, &st_lock, NULL, NULL, err);
	if (rc != MAT_OK)
		goto out;
	locked = true;
	rc = store__run_script(cn, &c, create_table, NULL, err);
	if (rc != MAT_OK)
		goto out;
	rc = run1(cn, &c, &st_applied, NULL, &applied, err);
	if (rc != MAT_OK)
		goto out;
	for (size_t i = 0; i < store__n_migration_files; i++) {
		if (applied_has(applied, plan[i].version))
			continue;
		rc = apply_one(cn, &c, &plan[i], err);
		if (rc != MAT_OK)
			goto out;
	}
	rc = MAT_OK;
out:
	if (locked && !cn->lost) {
		struct mat_error ignored;
		/* If this fails the session ends with the connection, which releases the lock. */
		if (run1(cn, &c, &st_unlock, NULL, NULL, &ignored) != MAT_OK)
			cn->lost = true;
	}
	PQclear(applied);
	store__release(cn);
	free(plan);
	return rc;
}

STORE__STMT(st_has_table, 0, "SELECT to_regclass('schema_migrations') IS NOT NULL");

enum mat_code store_schema_check(struct store_pool *pool, int64_t deadline_ms,
                                 struct store_schema *out, struct mat_error *err)
{
	struct store_call c = {.pool = pool, .deadline_ms = deadline_ms};
	struct store__cmd cmd = {.st = &st_has_table};
	struct store__migration *plan;
	enum mat_code rc;
	PGresult *r;

	memset(out, 0, sizeof(*out));
	plan = calloc(store__n_migration_files ? store__n_migration_files : 1, sizeof(*plan));
	if (plan == NULL)
		return store__oom(err);
	rc = store__migrations_plan(store__migration_files, store__n_migration_files, plan, err);
	if (rc != MAT_OK) {
		free(plan);
		return MAT_INTERNAL;
	}
	for (size_t i = 0; i < store__n_migration_files; i++)
		if (plan[i].version > out->want)
			out->want = plan[i].version;
	rc = store__read(&c, &cmd, 1, err);
	if (rc != MAT_OK)
		goto out;
	r = cmd.res;
	if (PQntuples(r) != 1 || strcmp(PQgetvalue(r, 0, 0), "t") != 0) {
		out->missing = (int)store__n_migration_files; /* an empty database */
		goto out;
	}
	store__cmds_clear(&cmd, 1);
	cmd = (struct store__cmd){.st = &st_applied};
	rc = store__read(&c, &cmd, 1, err);
	if (rc != MAT_OK)
		goto out;
	r = cmd.res;
	for (size_t i = 0; i < store__n_migration_files; i++)
		if (!applied_has(r, plan[i].version))
			out->missing++;
	for (int i = 0; i < PQntuples(r); i++) {
		int v = atoi(PQgetvalue(r, i, 0));
		bool known = false;
		for (size_t k = 0; k < store__n_migration_files && !known; k++)
			known = plan[k].version == v;
		out->unknown += !known;
		if (v > out->have)
			out->have = v;
	}
out:
	store__cmds_clear(&cmd, 1);
	free(plan);
	return rc;
}
