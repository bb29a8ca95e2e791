/* Internals shared by the files of storage/ (and its tests): pooled connections, the one way
 * statements are executed (prepared once per connection, sent as a pipeline, bounded by the
 * call's deadline), transactions with retry, row decoding helpers, etags and audit rows.
 * Nothing outside storage/ includes this header except storage tests.
 *
 * The files are layered; a file calls only into its own layer or those below it
 * (docs/architecture.md; tests/unit/storage/check_layers.sh checks the library's symbols):
 *
 *   resources    store_org, store_assessment, store_transition, store_access, store_report,
 *                store_evidence, store_event, store_migrate
 *   mutations    store_mutation (audit rows, request_id claims)
 *   exec         store_loop, store_health, store_listen > store_exec > store_authz > store_stmt
 *   pool         store_pool (connections, reconnect backoff)
 *   base         store_row, store_token, store_uuid, store_error, store_pq (the libpq seam)
 */
#ifndef STORE_INTERNAL_H
#define STORE_INTERNAL_H

#include "store.h"
#include "store_error.h"
#include "store_uuid.h"

#include <libpq-fe.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* --- statements ------------------------------------------------------------------------------ */

/* One SQL statement, prepared lazily on each connection the first time it runs there. Define
 * each as a file-scope object with STORE__STMT; `slot` is assigned on first use (under a lock)
 * and names the prepared statement ("s<slot>") on every connection. */
struct store__stmt {
	const char *sql;
	int nparams;
	int slot;   /* 0 until first use; then 1..STORE__MAX_STMTS-1. Guarded by a global lock. */
	int binary; /* results in binary format (STORE__STMT_BINARY) instead of text */
};
#define STORE__MAX_STMTS 256
#define STORE__STMT(name, n, text) static struct store__stmt name = {text, n, 0, 0}
/* Results in binary format: for rows heavy with bytea (an event's snapshot), which text
 * format would send as hex, twice its size, encoded by the server and decoded here. Read
 * their columns with store__bin_int and PQgetvalue/PQgetlength. */
#define STORE__STMT_BINARY(name, n, text) static struct store__stmt name = {text, n, 0, 1}

/* One statement of a pipeline: parameters in text format (NULL entry = SQL NULL; st->nparams of
 * them), and its result on success (TUPLES_OK or COMMAND_OK), owned by the caller. */
struct store__cmd {
	struct store__stmt *st;
	const char *const *params;
	PGresult *res;
};

/* PQclears every cmds[i].res and sets it to NULL. */
void store__cmds_clear(struct store__cmd *cmds, size_t n);

/* --- connections ------------------------------------------------------------------------------ */

struct store__conn;

/* Takes a connection from the pool, connecting one if the pool is below its size (lazily).
 * Waits at most until `deadline_ms` for one to become free (-> MAT_TIMEOUT); fails fast with
 * MAT_UNAVAILABLE while the database is known to be unreachable (a recent connect failed and its
 * backoff has not expired). `cancelled` may be NULL (-> MAT_CANCELLED when it becomes non-zero).
 * *out is NULL on entry and set only on MAT_OK. Any thread. */
enum mat_code store__acquire(struct store_pool *pool, int64_t deadline_ms,
                             volatile const int *cancelled, struct store__conn **out,
                             struct mat_error *err) MAT_MUSTCHECK;

/* Returns `cn` to the pool: IDLE if healthy and outside any transaction, else closed (BROKEN)
 * until a later acquire reconnects it. After a connection-class error every IDLE connection is
 * closed too (a restarted server has killed them all). NULL does nothing. */
void store__release(struct store__conn *cn);
/* MAT_OK, or MAT_PRECONDITION with the reason set by store_pool_refuse_writes. */
enum mat_code store__may_write(struct store_pool *pool, struct mat_error *err);

/* The libpq connection, for tests that need to look at it. Not for queries: use store__run. */
PGconn *store__conn_pg(struct store__conn *cn);

/* Runs `cmds` on `cn` as one pipeline (one round trip, prepares included when needed) and
 * collects every result. The first failure stops the rest (PostgreSQL skips to the Sync); its
 * SQLSTATE is mapped once (store_error.h) into err, and `diag` (may be NULL) receives the
 * SQLSTATE and constraint name. Waits for results until c->deadline_ms, then cancels the
 * statement; a server that does not answer within a grace period after that loses its connection.
 * c->cancelled cancels too (-> MAT_CANCELLED). On failure every cmds[i].res is NULL. */
struct store__diag {
	char sqlstate[6];
	char constraint[64];
	bool retryable; /* serialization failure or deadlock: the transaction may be run again */
	bool lost;      /* the connection was lost (the command's outcome is unknown) */
	int index;      /* index in cmds of the command that failed, -1 if none / not one */
};
enum mat_code store__run(struct store__conn *cn, const struct store_call *c,
                         struct store__cmd *cmds, size_t n, struct store__diag *diag,
                         struct mat_error *err) MAT_MUSTCHECK;

/* Runs one simple-protocol query string (several statements allowed) on `cn`, discarding the
 * results: only for the embedded migrations, which are whole SQL files without parameters. */
enum mat_code store__run_script(struct store__conn *cn, const struct store_call *c, const char *sql,
                                struct store__diag *diag, struct mat_error *err) MAT_MUSTCHECK;

/* --- reads and transactions ---------------------------------------------------------------------
 */

/* store_call.authz (store.h), for the executors of store_exec.c and store_loop.c (store_authz.c):
 * whether it is still to be decided, the binding read to send, and the verdict on its result
 * (MAT_DENIED when refused; the result is consumed either way). */
bool store__authz_pending(const struct store_call *c);
void store__authz_cmd(const struct store_call *c, struct store__cmd *cmd);
enum mat_code store__authz_decide(const struct store_call *c, struct store__cmd *cmd,
                                  struct mat_error *err) MAT_MUSTCHECK;
/* The role bindings of principal $1 (STORE__BINDING_COLS, by organization, role, id): the read
 * above, also run on its own by store_bindings_for_principal. */
struct store__stmt *store__st_bindings_of(void);
/* The bindings in a result of store__st_bindings_of (calloc'd array; caller cleans each and
 * frees it); the result is cleared either way. */
enum mat_code store__bindings_decode(struct store__cmd *cmd, struct mat_role_binding **out,
                                     size_t *n_out, struct mat_error *err) MAT_MUSTCHECK;

/* Runs read-only `cmds` (at most 8) in one round trip, bounded by the call's deadline
 * (statement_timeout set locally in the same pipeline). More than one command run in one
 * REPEATABLE READ READ ONLY transaction, so they see one snapshot. A connection found dead on
 * first use is replaced and the read retried once. On MAT_OK the caller owns each cmds[i].res. */
enum mat_code store__read(const struct store_call *c, struct store__cmd *cmds, size_t n,
                          struct mat_error *err) MAT_MUSTCHECK;

/* One statement that writes, outside any explicit transaction (one round trip, statement_timeout
 * in the same pipeline). Not retried: its outcome is unknown if the connection dies. */
enum mat_code store__write1(const struct store_call *c, struct store__cmd *cmd,
                            struct mat_error *err) MAT_MUSTCHECK;

/* A transaction in progress on one connection (READ COMMITTED; bodies lock what they change). */
struct store__tx {
	const struct store_call *c;
	struct store__conn *cn;
	struct store__diag diag; /* of the last failure */
};

/* Runs `cmds` inside the transaction (one round trip). See store__run. */
enum mat_code store__tx_run(struct store__tx *tx, struct store__cmd *cmds, size_t n,
                            struct mat_error *err) MAT_MUSTCHECK;

/* Runs one statement inside the transaction; *res is set (caller PQclears) on MAT_OK, NULL
 * otherwise. `nparams` must equal st->nparams (asserted): use STORE__EXEC. */
enum mat_code store__tx_exec(struct store__tx *tx, struct store__stmt *st,
                             const char *const *params, size_t nparams, PGresult **res,
                             struct mat_error *err) MAT_MUSTCHECK;
#define STORE__EXEC(tx, st, res, err, ...)                                                     \
	store__tx_exec(tx, st, (const char *const[]){__VA_ARGS__},                             \
	               sizeof((const char *const[]){__VA_ARGS__}) / sizeof(const char *), res, \
	               err)

/* The body of a transaction: runs statements with store__tx_run/store__tx_exec and returns
 * MAT_OK to commit, anything else to roll back. It may run more than once (serialization
 * failures and deadlocks are retried while the deadline allows), so it must not keep state from a
 * previous run: clean its outputs on entry. */
typedef enum mat_code (*store__tx_body)(struct store__tx *tx, void *arg, struct mat_error *err);

/* BEGIN (with statement_timeout from the time left, same round trip), body, COMMIT. */
enum mat_code store__transact(const struct store_call *c, store__tx_body body, void *arg,
                              struct mat_error *err) MAT_MUSTCHECK;

/* --- shared SQL -------------------------------------------------------------------------------
 */

/* "May this principal see this organization", the one definition: a role binding of the
 * principal on the organization, or a global one (every role includes viewer), unless the call
 * sees everything (`vis` false: store_call.only_visible as "true"/"false"). `vis` and
 * `principal` name parameters ("$2"), `org` the organization column ("o.id"). */
#define STORE__VISIBLE(vis, principal, org)                                              \
	"(NOT " vis                                                                      \
	"::bool OR EXISTS (SELECT 1 FROM role_bindings b WHERE b.principal = " principal \
	" AND (b.org_id IS NULL OR b.org_id = " org ")))"

/* --- rows ------------------------------------------------------------------------------------- */

/* Reads columns of one result row. Text columns are strdup'ed (NULL for SQL NULL); an allocation
 * failure sets `oom`, which the caller checks once after reading the row. */
struct store__row {
	const PGresult *res;
	int row;
	bool oom;
};
char *store__text(struct store__row *r, int col);
/* "" instead of NULL for SQL NULL. */
char *store__text0(struct store__row *r, int col);
/* 0 for SQL NULL. */
int64_t store__int(const struct store__row *r, int col);
/* An integer column (smallint, integer or bigint) of a STORE__STMT_BINARY result; 0 if NULL.
 * Text columns of such results read with store__text0 as usual (libpq ends every value with
 * a NUL, and text has none inside). */
int64_t store__bin_int(const struct store__row *r, int col);
bool store__is_null(const struct store__row *r, int col);

/* --- etags, resources, audit --------------------------------------------------------------- */

#define STORE__ETAG_LEN 17 /* 16 hex digits and the NUL */
/* The etag of a row: opaque, changes with every version and differs between a deleted row and a
 * re-created one with the same name (the creation time is mixed in). */
void store__etag(int64_t version, int64_t create_us, char out[STORE__ETAG_LEN]);
/* NULL or "" matches anything (AIP-154: the etag is optional). */
bool store__etag_matches(const char *etag, int64_t version, int64_t create_us);

/* An audit_events row for the successful mutation of `resource` by the call, as a command to
 * run in the mutation's own transaction. `a` holds the parameters: keep it alive until the
 * command ran. */
struct store__audit {
	char id[STORE_UUID_TEXT];
	char code[8];
	const char *params[7];
};
enum mat_code store__audit_cmd(struct store__audit *a, const struct store_call *c,
                               const char *resource, int grpc_code, struct store__cmd *cmd,
                               struct mat_error *err) MAT_MUSTCHECK;

/* request_id idempotency (AIP-155), inside the creating transaction. `request_id` must be a
 * canonical UUID (store__request_id checks and lower-cases it). Claims (c->principal, request_id,
 * kind) for `resource`: *claimed is true when this call is the first; otherwise *prior (malloc'd,
 * caller frees) names the resource the first call created and nothing must be written. */
enum mat_code store__idem_claim(struct store__tx *tx, const char *request_id, const char *kind,
                                const char *resource, bool *claimed, char **prior,
                                struct mat_error *err) MAT_MUSTCHECK;
/* NULL or "" -> out = "" (no idempotency); a canonical UUID -> its lower-case form; anything else
 * -> MAT_INVALID with a violation on "request_id". */
enum mat_code store__request_id(const char *request_id, char out[STORE_UUID_TEXT],
                                struct mat_error *err) MAT_MUSTCHECK;

/* --- for the pool, the executors (store_stmt.c, store_exec.c, store_loop.c) and store_pq.c -----
 */

/* CONNECTING -> IDLE <-> IN_USE -> BROKEN -> CONNECTING ... (EMPTY: never connected yet). */
enum store__conn_state {
	STORE__EMPTY,
	STORE__CONNECTING,
	STORE__IDLE,
	STORE__IN_USE,
	STORE__BROKEN,
};

struct store__conn {
	struct store_pool *pool;
	enum store__conn_state state; /* guarded by the pool's lock */
	/* The fields below belong to the thread holding the connection (CONNECTING or IN_USE). */
	PGconn *pg;                               /* NULL unless IDLE or IN_USE */
	PGcancel *cancel;                         /* for PQcancel from the waiting loop */
	uint64_t prepared[STORE__MAX_STMTS / 64]; /* bit per statement slot */
	bool lost;       /* saw a connection-class error (or an injected fault): close on release */
	bool used;       /* has served a call: a failure on it may just mean it went stale */
	int cancel_code; /* MAT_TIMEOUT or MAT_CANCELLED once a cancel was sent, else MAT_OK */
	int64_t cancel_ms;
	/* The application_name a call set on the session ("" = the connection's own; "?" =
	 * unknown after a failure, set again by the next call). */
	char app_name[64];
};

/* Every libpq call that can fail goes through these (the fault-injection seam). An injected
 * fault returns the call's failure value and marks `cn` lost, like a dropped connection. */
PGconn *store__pq_connect_start(const char *const *keywords, const char *const *values);
PostgresPollingStatusType store__pq_connect_poll(PGconn *pg);
int store__pq_enter_pipeline(struct store__conn *cn);
int store__pq_send_prepare(struct store__conn *cn, const char *name, const char *sql);
int store__pq_send_prepared(struct store__conn *cn, const char *name, int nparams,
                            const char *const *params, int binary);
int store__pq_send_query(struct store__conn *cn, const char *sql);
int store__pq_pipeline_sync(struct store__conn *cn);
int store__pq_flush(struct store__conn *cn);
int store__pq_consume(struct store__conn *cn);
PGresult *store__pq_get_result(struct store__conn *cn);
/* True when an injected fault was the last failure on this thread (for error messages). */
bool store__pq_fault_hit(void);

/* --- for store_stmt.c, store_exec.c and store_loop.c -------------------------------------------
 */

/* The slot (prepared statement "s<slot>") of st, assigned on first use. Any thread. */
int store__stmt_slot(struct store__stmt *st);
bool store__bit_get(const uint64_t *bits, int i);
void store__bit_set(uint64_t *bits, int i);
/* Maps a failed result into err/diag (SQLSTATE mapping; connection-class errors mark cn lost). */
enum mat_code store__result_error(struct store__conn *cn, const PGresult *r,
                                  struct store__diag *diag, struct mat_error *err);
/* statement_timeout for the time left, as the parameter of store__st_timeout(). False when no
 * time is left. */
bool store__timeout_param(const struct store_call *c, char buf[24]);
struct store__stmt *store__st_begin_ro(void);
struct store__stmt *store__st_commit(void);
struct store__stmt *store__st_timeout(void);
/* SELECT set_config('application_name', $1, false) */
struct store__stmt *store__st_app_set(void);
/* The pool's connection parameters (NULL-terminated arrays) and connect timeout. */
void store__pool_params(const struct store_pool *p, const char *const **keywords,
                        const char *const **values, int *connect_timeout_ms);
struct store_loop;
/* The pool's storage loop (store_loop.c), NULL until store_pool_start_loop. The pool keeps it
 * for its users and calls `stop` (store_pool_stop_loop) from store_pool_free: the pool, a layer
 * below, never names the loop's functions. */
struct store_loop *store__pool_loop(const struct store_pool *p);
void store__pool_set_loop(struct store_pool *p, struct store_loop *l,
                          void (*stop)(struct store_pool *pool));

/* A read run by the storage loop (store_loop.c) instead of the calling thread: the same commands
 * and the same semantics as store__read (statement_timeout from the deadline, the binding read of
 * c->authz decided before results are handed out, several commands in one read-only snapshot, a
 * connection found dead on first use replaced and the read retried once), but pipelined with the
 * reads of other calls on a shared connection, and finished by a callback instead of a return.
 *
 * The caller fills c, cmds (at most 8), n, err and complete, and keeps all of them (and what
 * they point to) alive until complete runs. complete(r, rc) runs exactly once, on the loop thread
 * (or, before store_pool_start_loop, on the calling thread): on MAT_OK the caller owns each
 * cmds[i].res, else they are NULL and err says why. It must not block. */
struct store__aread {
	const struct store_call *c;
	struct store__cmd *cmds;
	size_t n;
	struct mat_error *err;
	void (*complete)(struct store__aread *r, enum mat_code rc);
	bool bulk; /* on the loop's bulk connections (store_pool_start_loop's n_bulk) */
	/* The loop's. */
	struct store__cmd all[14];
	size_t n_all, first, authz_at;
	bool authz;
	char tbuf[24];
	const char *tparams[1];
	char app[64];
	const char *aparams[1];
	struct store__aop {
		struct store__cmd *cmd; /* NULL for a Prepare */
		int slot;
	} ops[28];
	size_t n_ops, at;
	bool want_null, was_used;
	int attempt;
	enum mat_code first_rc;
	struct store__diag diag;
	struct store__aread *next;
};
void store__read_async(struct store_pool *pool, struct store__aread *r);

/* The usual shape of an asynchronous read function: one allocation holding the read, its
 * commands, copies of its parameters and the caller's completion; `decode` turns the results
 * into the caller's output on the loop thread, then `done` runs and everything is freed. */
struct store__aget {
	struct store__aread r;
	struct store__cmd cmds[4];
	const char *params[4];
	char keys[4][96]; /* copies of short parameters (ids, names, times) */
	enum mat_code (*decode)(struct store__aget *g, struct mat_error *err);
	void *out;
	void (*free_out)(void *out); /* NULL, or frees `out` with g (when the output is g's own) */
	store_done_fn done;
	void *arg;
};
/* A zeroed store__aget for c, or NULL after done(arg, MAT_INTERNAL) (out of memory). */
struct store__aget *store__aget_new(const struct store_call *c, struct mat_error *err,
                                    store_done_fn done, void *arg);
/* Sends g's first n commands (cmds[i].st and params set by the caller). */
void store__aget_start(struct store__aget *g, size_t n);

/* --- shared decoders ------------------------------------------------------------------------- */

/* Labels as the JSON object stored in organizations.labels and used for `labels @> $1`
 * (malloc'd; NULL when out of memory). One encoding everywhere, so containment compares like
 * with like. */
char *store__labels_json(const struct mat_label *labels, size_t n);

/* The decoders of rows that several statements return (store_row.c). Each reads exactly the
 * columns of its STORE__*_COLS list, in that order, and every statement that feeds it selects
 * (or RETURNs) that list by name, never a copy: a column added to the list reaches the decoder
 * and every query at once. */

/* The columns of an assessment (table alias a), as store__assessment_from_row reads them. */
#define STORE__ASM_COLS                                                                           \
	"a.org_id, a.id::text, a.title, a.model_id, a.state, a.creator, a.submitter, "            \
	"mat_epoch_us(a.create_time), mat_epoch_us(a.update_time), mat_epoch_us(a.submit_time), " \
	"a.version"
/* An assessment (without answers) from a row of STORE__ASM_COLS. */
enum mat_code store__assessment_from_row(const PGresult *res, int row, struct mat_assessment *a,
                                         struct mat_error *err);
/* The columns of an answer (alias x), as store__answers_from_rows reads them from its `col`. */
#define STORE__ANSWER_COLS                                                               \
	"x.practice_id, x.status, x.note, x.evidence_uri, mat_epoch_us(x.update_time), " \
	"x.updated_by"
/* The answers of assessments: the assessment id, then STORE__ANSWER_COLS from column 1. */
#define STORE__ANS_COLS "x.assessment_id::text, " STORE__ANSWER_COLS
/* a->answers from answer rows [from, to) holding STORE__ANSWER_COLS from column `col`, in the
 * catalog order of a's model (unknown practices last). */
enum mat_code store__answers_from_rows(const PGresult *res, int from, int to, int col,
                                       struct mat_assessment *a, struct mat_error *err);

/* The columns of an organization (alias o), as store__org_from_row reads them. */
#define STORE__ORG_COLS                                                                        \
	"o.id, o.display_name, o.description, "                                                \
	"(SELECT coalesce(string_agg(octet_length(l.k) || ':' || l.k || octet_length(l.v) || " \
	"':' || l.v, '' ORDER BY l.k COLLATE \"C\"), '') FROM jsonb_each_text(o.labels) "      \
	"AS l(k, v)), "                                                                        \
	"o.current_level, o.target_level, o.transition_policy, o.last_assessment_id::text, "   \
	"mat_epoch_us(o.create_time), mat_epoch_us(o.update_time), o.version"
enum mat_code store__org_from_row(const PGresult *res, int row, struct mat_organization *o,
                                  struct mat_error *err) MAT_MUSTCHECK;

/* The columns of a level transition (table alias t), in the order
 * store__transition_from_row reads them. */
#define STORE__TR_COLS                                                                         \
	"t.org_id, t.id::text, t.assessment_id::text, t.from_level, t.to_level, t.direction, " \
	"t.state, t.proposer, mat_epoch_us(t.propose_time), t.decider, "                       \
	"mat_epoch_us(t.decide_time), t.reason, t.version, mat_epoch_us(t.update_time)"
/* Fills *t (cleaned first) from a STORE__TR_COLS row; the etag mixes version and propose_time
 * (a transition has no create_time: it is created when proposed). */
enum mat_code store__transition_from_row(const PGresult *res, int row, struct mat_transition *t,
                                         struct mat_error *err) MAT_MUSTCHECK;

/* The columns of a role binding (alias b), as store__binding_from_row reads them. */
#define STORE__BINDING_COLS \
	"b.id::text, b.principal, b.role, b.org_id, b.creator, mat_epoch_us(b.create_time)"
/* Fills *b (cleaned first) from a STORE__BINDING_COLS row. */
enum mat_code store__binding_from_row(const PGresult *res, int row, struct mat_role_binding *b,
                                      struct mat_error *err) MAT_MUSTCHECK;

/* --- evidence (store_evidence.c), for the prefill of CreateAssessment ------------------------ */

/* The current evidence of every practice of organization `org_id` at `now` (at most one per
 * practice of mlops-v1), read inside `tx`. *out (caller frees each with mat_evidence_cleanup,
 * then free()) is NULL and *n 0 when there is none. */
enum mat_code store__evidence_current_tx(struct store__tx *tx, const char *org_id, mat_time_us now,
                                         struct mat_evidence **out, size_t *n,
                                         struct mat_error *err) MAT_MUSTCHECK;

/* --- events (store_event.c) ------------------------------------------------------------------ */

/* The events of one mutation, gathered while its transaction runs and written at its end with
 * store__events_write (one round trip), so the snapshots are the resources as the mutation left
 * them. Every event of one mutation belongs to one organization. */
struct store__ev {
	char type[4];
	char *resource;
	char *hex; /* the snapshot as hex text; NULL = none */
	const char *params[6];
};
struct store__events {
	const char *org_id; /* borrowed */
	struct store__ev *v;
	size_t n, cap;
};
/* Starts an empty list for org_id (borrowed until the list is reset). */
void store__events_init(struct store__events *e, const char *org_id);
/* Adds an event about `resource` (struct mat_organization, mat_assessment, mat_transition or
 * mat_evidence, as store_event_snapshot_kind(type) says), named and encoded now. */
enum mat_code store__event_add(struct store__events *e, enum store_event_type type,
                               const void *resource, struct mat_error *err) MAT_MUSTCHECK;
/* Inserts the gathered events in order, in tx (c->principal, c->delegator). Nothing to write
 * is MAT_OK without a round trip. */
enum mat_code store__events_write(struct store__tx *tx, struct store__events *e,
                                  struct mat_error *err) MAT_MUSTCHECK;
/* Frees what the list holds and empties it (a transaction body that runs again starts clean). */
void store__events_reset(struct store__events *e);

/* --- fault injection (storage tests) -------------------------------------------------------- */

/* Makes the nth libpq operation from now fail as if the connection had dropped (1 = the next
 * one); 0 turns it off. Operations are counted across all threads. The environment variable
 * MATURITY_STORE_FAULT=N does the same when the first pool is created. */
void store_fault_set(int nth);
/* libpq operations counted since the last store_fault_set (so a test can try every N). */
long store_fault_count(void);
/* Reads MATURITY_STORE_FAULT (store_pool_new calls it once per process). */
void store__fault_from_env(void);

#endif
