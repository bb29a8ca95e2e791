/* maturityctl's command layer: what every command shares (the connection, the output format,
 * the parsed arguments) and the helpers that turn responses into readable tables. Commands
 * build their requests as proto3 JSON and go through the one converter in ctl_json.c, so the
 * table and `-o json` views come from the same response. */
#ifndef CTL_H
#define CTL_H

#include "ctl_rpc.h"

#include <jansson.h>
#include <stdbool.h>

/* Exit statuses scripts rely on. */
enum {
	CTL_EXIT_OK = 0,
	CTL_EXIT_FAILED = 1, /* a call failed (or a verification did) */
	CTL_EXIT_USAGE = 2,  /* bad command line, unreadable file, bad JSON */
	CTL_EXIT_GATE = 3,   /* `gate check`: the organization does not meet the requirement */
};

#define CTL_MAX_ARGS 64

/* A command's arguments after the global options were taken out: positionals and --flags
 * (each flag once unless the command allows repeating it). Strings point into argv. */
struct ctl_args {
	int npos;
	const char *pos[CTL_MAX_ARGS];
	int nopt;
	struct {
		const char *name;  /* without the leading dashes */
		const char *value; /* NULL for a switch */
	} opt[CTL_MAX_ARGS];
	char names[CTL_MAX_ARGS][64]; /* the names of --name=value options */
};

struct ctl {
	struct ctl_conn_opts conn_opts;
	struct ctl_conn *conn; /* opened on the first call */
	bool json;             /* -o json */
	bool name_only;        /* -o name: just the resource names, one a line (for scripts) */
	/* Level names of the model, for "2 Automated Training" (fetched once, when a table needs
	 * them; empty when the model could not be read). */
	bool levels_loaded;
	char level_names[5][64];
};

/* A command: `group verb` (verb NULL for one-word commands). */
struct ctl_command {
	const char *group;
	const char *verb;
	const char *flags; /* accepted flags: "name" a switch, "name=" takes a value, "name=*"
	                      repeatable, space-separated */
	const char *usage; /* the arguments, e.g. "ORG [--force]" */
	const char *help;  /* what it does, one or more lines */
	int (*run)(struct ctl *ctx, const struct ctl_args *a);
};

extern const struct ctl_command ctl_commands[];

/* --- arguments --- */
const char *ctl_opt(const struct ctl_args *a, const char *name); /* last value, or NULL */
bool ctl_has(const struct ctl_args *a, const char *name);
/* The i-th value of a repeatable flag, or NULL past the end. */
const char *ctl_opt_nth(const struct ctl_args *a, const char *name, int i);
/* Prints `maturityctl: MESSAGE` on stderr; returns CTL_EXIT_USAGE. */
int ctl_usage_error(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

/* --- calls --- */
/* Calls `method` (full name) with the request given as proto3 JSON (a reference is taken over:
 * req is decref'd). On OK returns 0 and *resp is the response as proto3 JSON (decref it); on a
 * failed call prints the status and returns CTL_EXIT_FAILED; a request that does not convert
 * is CTL_EXIT_USAGE. */
int ctl_unary(struct ctl *ctx, const char *method, json_t *req, json_t **resp);
/* Calls a server-streaming method; fn gets each response as proto3 JSON (borrowed) and
 * returns 0 to go on, nonzero to stop. Returns 0, or the exit status; *st_out (if not NULL)
 * receives the final status code. */
int ctl_stream(struct ctl *ctx, const char *method, json_t *req,
               int (*fn)(struct ctl *ctx, json_t *msg, void *ud), void *ud,
               grpc_status_code *st_out);

/* --- output --- */
/* Prints a response in -o json form (indented); returns CTL_EXIT_OK or CTL_EXIT_FAILED when
 * stdout cannot be written. */
int ctl_print_json(json_t *j);
/* One JSON object on one line, flushed; -1 when stdout is closed (EPIPE) or failing. */
int ctl_print_json_line(json_t *j);

/* "2 Automated Training" (or "2" when the model is not available); buf size >= 80. */
const char *ctl_level_label(struct ctl *ctx, long level, char *buf, size_t n);
/* A dotted path ("score.overallLevel") in a JSON object: the string, "" when absent. Numbers
 * print as numbers. buf holds the text when it is not a string. */
const char *ctl_get(json_t *o, const char *path, char *buf, size_t n);
long ctl_get_int(json_t *o, const char *path);
/* "STATE_DRAFT" -> "draft", "PRACTICE_STATUS_NOT_IMPLEMENTED" -> "not_implemented". */
const char *ctl_enum_short(const char *name, char *buf, size_t n);
/* "organizations/acme" from "acme" or "organizations/acme"; also for deeper names
 * ("acme/assessments/X"). Writes into buf. */
const char *ctl_org_name(const char *arg, char *buf, size_t n);
/* "IMPLEMENTED" / "implemented" / "not-implemented" with prefix "PRACTICE_STATUS_" ->
 * "PRACTICE_STATUS_IMPLEMENTED". */
const char *ctl_enum_arg(const char *prefix, const char *v, char *buf, size_t n);

/* A simple text table: add rows of cells, then print with aligned columns. */
struct ctl_table;
struct ctl_table *ctl_table_new(int ncols, const char *const *headers);
void ctl_table_add(struct ctl_table *t, const char *const *cells);
void ctl_table_print(struct ctl_table *t, FILE *f);
void ctl_table_free(struct ctl_table *t);

/* Offline DSSE verification (ctl_attest.c). Returns CTL_EXIT_OK and prints the statement when
 * a signature of the envelope in `file` verifies with the public key in `key_pem_file`; else
 * prints why on stderr and returns CTL_EXIT_FAILED (unreadable or malformed files too). */
int ctl_attest_verify(const char *key_pem_file, const char *file);

#endif
