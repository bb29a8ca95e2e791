/* Embedded migrations: the table generated from storage/migrations/ at build time and the
 * parsing/ordering of their file names. Internal to storage/ and its unit tests. */
#ifndef STORE_MIGRATE_H
#define STORE_MIGRATE_H

#include "mat_error.h"

#include <stddef.h>

/* One embedded file: "0001_init.sql" and its bytes (NUL-terminated). */
struct store__migration_file {
	const char *file;
	const char *sql;
	size_t len;
};
extern const struct store__migration_file store__migration_files[];
extern const size_t store__n_migration_files;

struct store__migration {
	int version;   /* 1 from "0001_init.sql" */
	char name[64]; /* "init" */
	const char *sql;
};

/* Parses "NNNN_name.sql": NNNN one or more digits (version >= 1), name [a-z0-9_]{1,63}.
 * Returns MAT_OK or MAT_INVALID with the reason in err. */
enum mat_code store__migration_parse(const char *file, int *version, char name[64],
                                     struct mat_error *err) MAT_MUSTCHECK;

/* Parses `n` files into `out` (n entries) sorted by version. Any bad name or a version that
 * appears twice -> MAT_INVALID. */
enum mat_code store__migrations_plan(const struct store__migration_file *files, size_t n,
                                     struct store__migration *out,
                                     struct mat_error *err) MAT_MUSTCHECK;

#endif
