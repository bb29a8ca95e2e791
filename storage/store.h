/* storage/: the only code that includes <libpq-fe.h>. A bounded pool of PostgreSQL connections,
 * migrations embedded in the binary, and the queries behind every RPC. SQLSTATE is mapped into
 * the mat_code error model here and nowhere else. Functions here block (synchronous libpq) and
 * are safe to call from any worker thread at once; each takes what it needs from the pool and
 * gives it back before returning. */
#ifndef STORE_H
#define STORE_H

#include "mat_error.h"
#include "mat_types.h"

/* Dimensions a portfolio summary counts (the default model has 4). */
#define MAT_MAX_DIMENSIONS_STORE 8

#include <stdbool.h>
#include <stdint.h>

struct store_pool;

struct store_options {
	const char *conninfo; /* libpq conninfo or URI; borrowed for store_pool_new only */
	int size;             /* maximum connections, >= 1 */
};

/* Creates a pool; connects lazily (first acquire). Out-parameter set to NULL on entry.
 * Returns MAT_OK or MAT_INVALID (bad conninfo syntax). */
enum mat_code store_pool_new(const struct store_options *opt, struct store_pool **out,
                             struct mat_error *err) MAT_MUSTCHECK;
/* Closes every connection. NULL does nothing. No call may be in flight. */
void store_pool_free(struct store_pool *pool);

/* Waits until the database accepts a connection and answers, up to `seconds`.
 * MAT_OK, or MAT_UNAVAILABLE with libpq's reason in err; MAT_UNAUTHENTICATED at once, without
 * waiting, when the server refused the login (wrong password or role, no pg_hba.conf entry). */
enum mat_code store_pool_wait(struct store_pool *pool, int seconds,
                              struct mat_error *err) MAT_MUSTCHECK;

/* Applies the embedded migrations not yet recorded, in order, each in its own transaction, under
 * a PostgreSQL advisory lock so replicas starting together are safe. */
enum mat_code store_migrate(struct store_pool *pool, struct mat_error *err) MAT_MUSTCHECK;

struct store_loop_hooks {
	void (*idle)(void); /* on the loop's thread, each time before it waits for I/O */
};
struct uv_loop_s;
/* Starts the storage loop: a libuv event loop over `n_conns` connections of its own (opened
 * lazily, reconnected with backoff), on which the reads of many calls travel back to back in
 * libpq's pipeline mode, one write and one wake-up for many calls; no thread waits on them.
 * Bulk reads (export batches: milliseconds each in PostgreSQL) go to `n_bulk` further
 * connections of their own, so no short read waits behind one in a pipeline (0: they share the
 * others).
 * Reads with an _async variant below use it once it runs (before: they run on the calling
 * thread). MAT_OK, or MAT_INTERNAL when the thread cannot start. Call once.
 *
 * `on` NULL: the loop is a thread of its own. Otherwise its handles join the caller's libuv loop
 * `on` (the service runs its front door's relay there too: one thread, one wake-up for both,
 * docs/architecture.md): call this on the thread that runs `on`, or before it runs; the caller
 * keeps running `on` until store_pool_stop_loop has returned.
 *
 * `hooks` (may be NULL) let the caller's code use the loop's thread as its own: work it defers
 * while the loop is busy (the service's call log lines) goes out in one go before the loop
 * sleeps, as on the threads the caller owns. */
enum mat_code store_pool_start_loop(struct store_pool *pool, int n_conns, int n_bulk,
                                    const struct store_loop_hooks *hooks, struct uv_loop_s *on,
                                    struct mat_error *err) MAT_MUSTCHECK;
/* Stops the loop: reads still queued or in flight complete with MAT_UNAVAILABLE. Idempotent;
 * store_pool_free calls it. */
void store_pool_stop_loop(struct store_pool *pool);

/* A thread that starts many reads in a burst (a grpc poller) may defer them: they are queued
 * in the thread until store_reads_flush hands them to the loop together — one wake-up and one
 * write to the database for the whole burst. A deferring thread must flush before it blocks
 * (store_reads_pending tells whether there is anything to flush). store_reads_defer(false)
 * flushes and stops deferring. These act on the calling thread only. */
void store_reads_defer(bool on);
bool store_reads_pending(void);
void store_reads_flush(void);

/* The schema the database holds against the migrations this binary embeds. */
struct store_schema {
	int have;    /* highest version recorded in the database (0: none, or no schema yet) */
	int want;    /* highest version this binary embeds */
	int missing; /* embedded versions not recorded: > 0 means the schema is behind */
	int unknown; /* recorded versions this binary does not know: > 0 means a newer binary's */
};
/* Reads the recorded versions (one round trip, two when the table does not exist yet). */
enum mat_code store_schema_check(struct store_pool *pool, int64_t deadline_ms,
                                 struct store_schema *out, struct mat_error *err) MAT_MUSTCHECK;

/* From now on every write (a read-write transaction or a single write) fails with
 * MAT_PRECONDITION and `why` as its message; reads go on. NULL allows writes again. Used when
 * the schema belongs to a newer binary: this one would write rows the newer code misreads. */
void store_pool_refuse_writes(struct store_pool *pool, const char *why);

/* True when a pooled connection answers `SELECT 1` before the deadline (health checks). */
bool store_pool_ping(struct store_pool *pool, int64_t deadline_ms);

struct store_pool_stats {
	int size, idle, in_use, connecting, broken;
};
void store_pool_get_stats(struct store_pool *pool, struct store_pool_stats *out);

/* Monotonic clock in milliseconds, the clock of every deadline here. */
int64_t store_now_ms(void);
#define STORE_NO_DEADLINE INT64_MAX

/* Authorization on the call's own first round trip (the caller's role bindings are
 * read on every call, never cached). When a store_call carries one, storage sends the binding
 * read in the same pipeline as the call's first statements — a read's, or a transaction's BEGIN;
 * never together with a write — and hands the bindings to `decide`, which owns the list from
 * then on. If it refuses, storage drops what it read (or rolls back) and returns MAT_DENIED with
 * err untouched: the caller reports and audits the refusal. One round trip less per call (the
 * profile in docs/benchmarks.md: +19 % GetOrganization calls/s). */
struct store_authz {
	bool (*decide)(void *arg, struct mat_role_binding *list, size_t n);
	void *arg;
	bool done;             /* storage: decide has run */
	const char *params[1]; /* storage: the binding read's parameter */
};

/* What every query needs to know about the call it serves. Borrowed. */
struct store_call {
	struct store_pool *pool;
	int64_t deadline_ms;    /* store_now_ms() clock; STORE_NO_DEADLINE for none */
	const char *principal;  /* the verified caller, or the end user a delegator asserted */
	const char *delegator;  /* the delegator that asserted `principal`; NULL or "" for none */
	const char *method;     /* full gRPC method path, for audit events */
	const char *request_id; /* x-request-id of the call, for audit events; may be NULL */
	/* The caller's W3C trace and span ids (hex), or NULL/"": while a call with a method runs,
	 * its connection's application_name is "maturityd <trace_id>-<span_id>", so
	 * pg_stat_activity and the server's log (%a) tie a slow statement to the call. */
	const char *trace_id, *span_id;
	volatile const int
	    *cancelled; /* set non-zero by another thread when the client cancels; may be NULL */
	/* List filtering: when true, lists return only organizations on which `principal` has a
	 * binding (global bindings see all). Decided by auth/, applied in the query. */
	bool only_visible;
	/* NULL, or the authorization to decide on the first round trip (above). */
	struct store_authz *authz;
};

/* --- organizations ------------------------------------------------------------------------ */

enum store_org_field {
	STORE_ORG_DISPLAY_NAME = 1u << 0,
	STORE_ORG_DESCRIPTION = 1u << 1,
	STORE_ORG_LABELS = 1u << 2,
	STORE_ORG_TARGET_LEVEL = 1u << 3,
	STORE_ORG_TRANSITION_POLICY = 1u << 4,
};

/* Inserts `in` (already validated by the caller; in->id set). request_id (lower-case UUID or
 * NULL): a retry with the same id by the same principal returns the first result and creates
 * nothing (MAT_OK). Duplicate id -> MAT_CONFLICT. `out` is zeroed on entry, filled on MAT_OK. */
enum mat_code store_org_create(const struct store_call *c, const struct mat_organization *in,
                               const char *request_id, struct mat_organization *out,
                               struct mat_error *err) MAT_MUSTCHECK;
enum mat_code store_org_get(const struct store_call *c, const char *org_id,
                            struct mat_organization *out, struct mat_error *err) MAT_MUSTCHECK;
/* Completion of an asynchronous storage call: runs exactly once, on the storage loop's thread
 * (or on the calling thread when it fails at once, or before the loop runs), with the call's
 * result; it must not block. */
typedef void (*store_done_fn)(void *arg, enum mat_code rc);
/* store_org_get on the storage loop (store_pool_start_loop): no thread waits for it. c, out and
 * err are borrowed until done runs (c->authz too: decided on the loop thread). */
void store_org_get_async(const struct store_call *c, const char *org_id,
                         struct mat_organization *out, struct mat_error *err, store_done_fn done,
                         void *arg);
/* Ordered by id. page_size already clamped by the caller (1..1000). page_token "" = first page;
 * garbage -> MAT_INVALID with a violation on "page_token". *next_token is "" on the last page.
 * Caller frees *out with mat_organization_cleanup on each and free(), and free(*next_token). */
enum mat_code store_org_list(const struct store_call *c, int page_size, const char *page_token,
                             struct mat_organization **out, size_t *n_out, char **next_token,
                             struct mat_error *err) MAT_MUSTCHECK;
/* store_org_list on the storage loop; see store_org_get_async. out, n_out and next_token are
 * borrowed until done runs. */
void store_org_list_async(const struct store_call *c, int page_size, const char *page_token,
                          struct mat_organization **out, size_t *n_out, char **next_token,
                          struct mat_error *err, store_done_fn done, void *arg);
/* Updates the fields in `fields` (enum store_org_field bits) from `in`. etag NULL or "" = no check;
 * mismatch -> MAT_ABORTED. Unknown org -> MAT_NOT_FOUND. */
enum mat_code store_org_update(const struct store_call *c, const struct mat_organization *in,
                               unsigned fields, const char *etag, struct mat_organization *out,
                               struct mat_error *err) MAT_MUSTCHECK;
/* Without force, an organization with assessments -> MAT_PRECONDITION. With force, its
 * assessments, answers, transitions and bindings go too. */
enum mat_code store_org_delete(const struct store_call *c, const char *org_id, const char *etag,
                               bool force, struct mat_error *err) MAT_MUSTCHECK;

/* --- assessments -------------------------------------------------------------------------- */

/* Creates a DRAFT with a new UUIDv7 id; creator = c->principal. Org missing -> MAT_NOT_FOUND. */
enum mat_code store_assessment_create(const struct store_call *c, const char *org_id,
                                      const char *title, const char *model_id,
                                      const char *request_id, struct mat_assessment *out,
                                      struct mat_error *err) MAT_MUSTCHECK;
/* The same with initial answers, written in the same transaction: the whole batch is validated
 * against the model first (violations on assessment.answers[i]...), or nothing is created. */
enum mat_code store_assessment_create_with_answers(const struct store_call *c, const char *org_id,
                                                   const char *title, const char *model_id,
                                                   const struct mat_answer *answers,
                                                   size_t n_answers, const char *request_id,
                                                   struct mat_assessment *out,
                                                   struct mat_error *err) MAT_MUSTCHECK;
/* The same, and when prefill_now is not 0, every practice of the model that has current evidence
 * at prefill_now and no answer in `answers` is answered from that evidence (status, evidence_uri
 * = its uri, note = mat_evidence_prefill_note), read in the creating transaction. */
enum mat_code store_assessment_create_prefilled(const struct store_call *c, const char *org_id,
                                                const char *title, const char *model_id,
                                                const struct mat_answer *answers, size_t n_answers,
                                                mat_time_us prefill_now, const char *request_id,
                                                struct mat_assessment *out,
                                                struct mat_error *err) MAT_MUSTCHECK;
enum mat_code store_assessment_get(const struct store_call *c, const char *org_id, const char *id,
                                   struct mat_assessment *out, struct mat_error *err) MAT_MUSTCHECK;
/* store_assessment_get on the storage loop; see store_org_get_async. */
void store_assessment_get_async(const struct store_call *c, const char *org_id, const char *id,
                                struct mat_assessment *out, struct mat_error *err,
                                store_done_fn done, void *arg);
/* Newest first (id descending). state UNSPECIFIED = all. Answers included. */
enum mat_code store_assessment_list(const struct store_call *c, const char *org_id,
                                    enum mat_assessment_state state, int page_size,
                                    const char *page_token, struct mat_assessment **out,
                                    size_t *n_out, char **next_token,
                                    struct mat_error *err) MAT_MUSTCHECK;
/* Upserts answers (validated by the caller) in one transaction: all or nothing.
 * Not DRAFT -> MAT_PRECONDITION; etag mismatch -> MAT_ABORTED. */
enum mat_code store_assessment_update_answers(const struct store_call *c, const char *org_id,
                                              const char *id, const struct mat_answer *answers,
                                              size_t n_answers, const char *etag,
                                              struct mat_assessment *out,
                                              struct mat_error *err) MAT_MUSTCHECK;
/* DRAFT -> SUBMITTED: freezes answers, records submitter and time, sets the organization's
 * last_assessment and supersedes PROPOSED transitions and creates the new one, all in
 * one transaction. */
enum mat_code store_assessment_submit(const struct store_call *c, const char *org_id,
                                      const char *id, const char *etag, struct mat_assessment *out,
                                      struct mat_error *err) MAT_MUSTCHECK;
/* Drafts only (else MAT_PRECONDITION). */
enum mat_code store_assessment_delete(const struct store_call *c, const char *org_id,
                                      const char *id, const char *etag,
                                      struct mat_error *err) MAT_MUSTCHECK;

/* --- role bindings (read on every call) ---------------------------------------------------- */

/* Every binding of `principal` (global and per organization). Caller frees each with
 * mat_role_binding_cleanup, then free(*out). */
enum mat_code store_bindings_for_principal(const struct store_call *c, const char *principal,
                                           struct mat_role_binding **out, size_t *n_out,
                                           struct mat_error *err) MAT_MUSTCHECK;

/* --- audit ----------------------------------------------------------------------------------- */

/* Successful mutations write their audit event themselves, in their own transaction (principal,
 * method = c->method, full resource name, code 0, request id = c->request_id); idempotent replays
 * write none. This one records a refused call: one audit_events row with c->principal ("" if
 * NULL, e.g. UNAUTHENTICATED), c->method, `resource` (borrowed; NULL = ""), `grpc_code` (7
 * PERMISSION_DENIED or 16 UNAUTHENTICATED; 0..16 accepted) and c->request_id. One statement,
 * bounded by c->deadline_ms. MAT_OK, or the storage error (the caller logs it and still sends its
 * refusal). Any thread. */
enum mat_code store_audit_denied(const struct store_call *c, const char *resource, int grpc_code,
                                 struct mat_error *err) MAT_MUSTCHECK;

/* A signed gate decision is a statement the service made: one audit_events row like a
 * mutation's (c->principal, c->method, `resource` = the organization's name, code 0,
 * c->request_id) that also records what it decided (`allowed`). One statement, bounded by
 * c->deadline_ms. Any thread. */
enum mat_code store_audit_attested(const struct store_call *c, const char *resource, bool allowed,
                                   struct mat_error *err) MAT_MUSTCHECK;

/* --- level transitions ------------------------------------------------------------------ */

/* `id` in any case (canonical UUID text); anything else, or another organization's ->
 * MAT_NOT_FOUND. The etag mixes the version and propose_time. */
enum mat_code store_transition_get(const struct store_call *c, const char *org_id, const char *id,
                                   struct mat_transition *out, struct mat_error *err) MAT_MUSTCHECK;

struct store_transition_filter {
	const char *org_id; /* one organization, or NULL for every organization (organizations/-),
	                       then c->only_visible restricts to organizations the principal has a
	                       binding on */
	enum mat_transition_state state;  /* UNSPECIFIED = all */
	mat_time_us start_time, end_time; /* on propose_time, [start, end); 0 = open */
};

/* Ordered by propose_time, then name (org id, id). Keyset page token bound to the filter (a
 * token used with another filter -> MAT_INVALID on "page_token"); page_size as for
 * store_org_list. One organization that does not exist -> MAT_NOT_FOUND; a state out of range ->
 * MAT_INVALID. f NULL = no filter. */
enum mat_code store_transition_list(const struct store_call *c,
                                    const struct store_transition_filter *f, int page_size,
                                    const char *page_token, struct mat_transition **out,
                                    size_t *n_out, char **next_token,
                                    struct mat_error *err) MAT_MUSTCHECK;

/* PROPOSED -> APPLIED under the organization's row lock: decider = c->principal, decide_time =
 * now, applied_seq = next, organization.current_level = to_level (and its version bumps).
 * Four-eyes: c->principal submitted the transition's assessment -> MAT_DENIED. Not PROPOSED, or
 * from_level != the organization's current_level (stale) -> MAT_PRECONDITION. etag set and
 * mismatched -> MAT_ABORTED. Audited in the same transaction. Checked in this order: exists
 * (NOT_FOUND), four-eyes (DENIED), etag (ABORTED), state, stale (PRECONDITION). A refusal writes
 * nothing: the caller records a DENIED with store_audit_denied, as for any PERMISSION_DENIED. */
enum mat_code store_transition_approve(const struct store_call *c, const char *org_id,
                                       const char *id, const char *etag, struct mat_transition *out,
                                       struct mat_error *err) MAT_MUSTCHECK;
/* PROPOSED -> REJECTED with `reason` (validated by the caller: non-empty, <= 4000 bytes; else
 * MAT_INVALID on "reason"). Not PROPOSED -> MAT_PRECONDITION; etag mismatch -> MAT_ABORTED.
 * No four-eyes: a submitter may withdraw its own proposal. Audited. */
enum mat_code store_transition_reject(const struct store_call *c, const char *org_id,
                                      const char *id, const char *reason, const char *etag,
                                      struct mat_transition *out,
                                      struct mat_error *err) MAT_MUSTCHECK;

/* --- reporting -------------------------------------------------------------------------------- */

struct store_portfolio {
	int64_t organization_count;
	int64_t organizations_per_level[5];                       /* by current_level */
	size_t n_dimensions;                                      /* of the default model */
	int64_t dimension_per_level[MAT_MAX_DIMENSIONS_STORE][5]; /* from the last submitted
	                                                             assessment of each org */
	int64_t at_or_above_target_count; /* current_level >= target_level */
	int64_t upgrades, regressions;    /* APPLIED, decide_time in [start, end) */
	double mean_maturity_index;       /* over orgs with a submitted assessment; 0 if none */
};

/* Organizations whose labels include all of `labels` (n may be 0); c->only_visible applies as
 * for lists. start_time/end_time: the [start, end) window on decide_time, 0 = open. Bounded
 * memory: walks organizations in keyset batches of 500 (each batch its own snapshot, so every
 * organization is counted once from one consistent row) and scores the last submitted
 * assessments in C; dimensions are those of mlops-v1, in its order; an assessment of a model
 * this binary does not know is left out of the dimensions and the mean. */
enum mat_code store_portfolio_summary(const struct store_call *c, const struct mat_label *labels,
                                      size_t n_labels, mat_time_us start_time, mat_time_us end_time,
                                      struct store_portfolio *out,
                                      struct mat_error *err) MAT_MUSTCHECK;

/* Exports, one keyset batch per call, ordered by (update_time, org id, id). `cursor` "" = from
 * the start; garbage or a cursor of the other export -> MAT_INVALID on "cursor". Each returned
 * record i has cursors[i], the cursor that resumes right after it (exactly: update_time to the
 * microsecond, then the name). A cursor is a position, not bound to the filters, which apply
 * to every batch. `batch` <= 0 means 100, at most 1000 (memory is bounded by it); fewer
 * records than that (or none) = the end. Caller frees records, each cursor, and the arrays
 * (all NULL on failure). org_id NULL = every organization (c->only_visible applies); an
 * organization that does not exist -> MAT_NOT_FOUND. Assessments carry their answers, in
 * catalog order; updated_after (0 = unset) keeps update_time > it. Transitions: update_time >=
 * start_time (0 = unset). */
enum mat_code store_export_assessments(const struct store_call *c, const char *org_id,
                                       enum mat_assessment_state state, mat_time_us updated_after,
                                       const char *cursor, int batch, struct mat_assessment **out,
                                       char ***cursors, size_t *n_out,
                                       struct mat_error *err) MAT_MUSTCHECK;
enum mat_code store_export_transitions(const struct store_call *c, const char *org_id,
                                       mat_time_us start_time, const char *cursor, int batch,
                                       struct mat_transition **out, char ***cursors, size_t *n_out,
                                       struct mat_error *err) MAT_MUSTCHECK;
/* The same batch read on the storage loop, for a caller that must not wait (a stream's next
 * batch): the watermark, then the batch's statements in one snapshot, on the loop's bulk
 * connections (store_pool_start_loop), so a batch's milliseconds in PostgreSQL never hold up a
 * portal's read pipelined behind it. *rd is set first (NULL only when out of memory); done runs
 * once (as for store_org_get_async; at once when the request is bad); then
 * store_export_*_decode turns what was read into the batch as the blocking call returns it —
 * CPU only, on any thread — and frees rd, or store_export_read_free drops it. c and err are
 * borrowed until done runs. */
struct store_export_read;
void store_export_assessments_read(const struct store_call *c, const char *org_id,
                                   enum mat_assessment_state state, mat_time_us updated_after,
                                   const char *cursor, int batch, struct store_export_read **rd,
                                   struct mat_error *err, store_done_fn done, void *arg);
enum mat_code store_export_assessments_decode(struct store_export_read *rd,
                                              struct mat_assessment **out, char ***cursors,
                                              size_t *n_out, struct mat_error *err) MAT_MUSTCHECK;
void store_export_transitions_read(const struct store_call *c, const char *org_id,
                                   mat_time_us start_time, const char *cursor, int batch,
                                   struct store_export_read **rd, struct mat_error *err,
                                   store_done_fn done, void *arg);
enum mat_code store_export_transitions_decode(struct store_export_read *rd,
                                              struct mat_transition **out, char ***cursors,
                                              size_t *n_out, struct mat_error *err) MAT_MUSTCHECK;
/* Frees a read whose done has run (without decoding it). NULL does nothing. */
void store_export_read_free(struct store_export_read *rd);

/* --- role bindings and audit (AccessService) ----------------------------------------------------
 */

/* Creates a binding (validated by the caller: principal non-empty <= 512 UTF-8, role in range,
 * admin/reporter global). creator = c->principal; new UUIDv7 id. Organization missing ->
 * MAT_NOT_FOUND; the same (principal, role, org) twice -> MAT_CONFLICT; request_id as for
 * organizations. Audited. */
enum mat_code store_binding_create(const struct store_call *c, const struct mat_role_binding *in,
                                   const char *request_id, struct mat_role_binding *out,
                                   struct mat_error *err) MAT_MUSTCHECK;
/* By id (canonical UUID, any case); missing or not a UUID -> MAT_NOT_FOUND. Audited. */
enum mat_code store_binding_delete(const struct store_call *c, const char *id,
                                   struct mat_error *err) MAT_MUSTCHECK;
/* Filters: principal "" = any; org_id NULL = any, "" = global only, else that organization.
 * Ordered by id; keyset page token bound to the filters; page_size as for store_org_list. */
enum mat_code store_binding_list(const struct store_call *c, const char *principal,
                                 const char *org_id, int page_size, const char *page_token,
                                 struct mat_role_binding **out, size_t *n_out, char **next_token,
                                 struct mat_error *err) MAT_MUSTCHECK;
/* Newest first (time, then id, descending); principal "" = any; time window [start, end) with
 * 0 = open. Keyset page token bound to the filters; page_size as for store_org_list. */
enum mat_code store_audit_list(const struct store_call *c, const char *principal,
                               mat_time_us start_time, mat_time_us end_time, int page_size,
                               const char *page_token, struct mat_audit_event **out, size_t *n_out,
                               char **next_token, struct mat_error *err) MAT_MUSTCHECK;

/* --- evidence and the live score --------------------------------------------------------- */

/* Records `n` pieces (1..MAT_MAX_EVIDENCE_BATCH, validated by the caller: practice_id, status,
 * source, observe_time, expire_time, uri, digest and note are read, the rest is ignored) for
 * organization `org_id` in one transaction, all or nothing, with new UUIDv7 ids, reporter =
 * c->principal and one audit event: resource = the piece's name, or, when `batch`, the
 * organization's name. request_id as for organizations (a retry returns the first call's pieces;
 * ReportEvidence and BatchReportEvidence keep separate keys). Unknown organization ->
 * MAT_NOT_FOUND. On MAT_OK *out holds *n_out pieces in request order; the caller frees each with
 * mat_evidence_cleanup, then free(*out). */
enum mat_code store_evidence_report(const struct store_call *c, const char *org_id,
                                    const struct mat_evidence *in, size_t n, bool batch,
                                    const char *request_id, struct mat_evidence **out,
                                    size_t *n_out, struct mat_error *err) MAT_MUSTCHECK;
/* By id (canonical UUID, any case); anything else, or another organization's -> MAT_NOT_FOUND. */
enum mat_code store_evidence_get(const struct store_call *c, const char *org_id, const char *id,
                                 struct mat_evidence *out, struct mat_error *err) MAT_MUSTCHECK;
/* Newest observe_time first, then name descending. org_id NULL = every organization
 * (organizations/-), restricted by c->only_visible as for lists; else one organization (unknown
 * -> MAT_NOT_FOUND). practice_id NULL or "" = every practice; without include_expired only
 * pieces with expire_time > now. Keyset page token bound to the filters; page_size as for
 * store_org_list. */
enum mat_code store_evidence_list(const struct store_call *c, const char *org_id,
                                  const char *practice_id, bool include_expired, mat_time_us now,
                                  int page_size, const char *page_token, struct mat_evidence **out,
                                  size_t *n_out, char **next_token,
                                  struct mat_error *err) MAT_MUSTCHECK;

/* Everything the live score needs, read in one round trip where possible. */
struct store_live_inputs {
	struct mat_organization org;     /* id and current_level only */
	struct mat_assessment submitted; /* zeroed (id NULL) when the organization has no submitted
	                                    assessment; its answers in no particular order, with
	                                    practice_id and status only */
	struct mat_evidence *evidence;   /* the current evidence at `now` (at most one per
	                                    practice): org_id, id, practice_id, status and the
	                                    three times only (source, reporter, uri, digest and
	                                    note are NULL) */
	size_t n_evidence;
};

/* The organization, its last submitted assessment (with answers) and its evidence in force at
 * `now`. Unknown organization -> MAT_NOT_FOUND. `out` is zeroed on entry; the caller frees it
 * with store_live_inputs_cleanup whatever the result. */
enum mat_code store_live_inputs_get(const struct store_call *c, const char *org_id, mat_time_us now,
                                    struct store_live_inputs *out,
                                    struct mat_error *err) MAT_MUSTCHECK;
/* store_live_inputs_get on the storage loop; see store_org_get_async. */
void store_live_inputs_get_async(const struct store_call *c, const char *org_id, mat_time_us now,
                                 struct store_live_inputs *out, struct mat_error *err,
                                 store_done_fn done, void *arg);
void store_live_inputs_cleanup(struct store_live_inputs *in);

/* --- events (the outbox) ----------------------------------------------------------------------
 */

/* The numbers of EventType in the API. */
enum store_event_type {
	STORE_EVENT_ORG_CREATED = 1,
	STORE_EVENT_ORG_UPDATED = 2,
	STORE_EVENT_ORG_DELETED = 3,
	STORE_EVENT_ASSESSMENT_CREATED = 4,
	STORE_EVENT_ASSESSMENT_UPDATED = 5,
	STORE_EVENT_ASSESSMENT_SUBMITTED = 6,
	STORE_EVENT_ASSESSMENT_DELETED = 7,
	STORE_EVENT_TRANSITION_PROPOSED = 8,
	STORE_EVENT_TRANSITION_APPLIED = 9,
	STORE_EVENT_TRANSITION_REJECTED = 10,
	STORE_EVENT_TRANSITION_SUPERSEDED = 11,
	STORE_EVENT_EVIDENCE_REPORTED = 12,
};
#define STORE_EVENT_TYPE_MAX 12

/* What a snapshot holds: struct mat_organization, mat_assessment, mat_transition or
 * mat_evidence. */
enum store_snapshot_kind {
	STORE_SNAPSHOT_ORGANIZATION = 1,
	STORE_SNAPSHOT_ASSESSMENT,
	STORE_SNAPSHOT_TRANSITION,
	STORE_SNAPSHOT_EVIDENCE,
};
enum store_snapshot_kind store_event_snapshot_kind(enum store_event_type type);

/* Turns a resource into the bytes kept as an event's snapshot (malloc'd into *out, *len). The
 * service registers one (its wire encoding of the resource) so storage keeps the resource as it
 * was without knowing its format; false = out of memory (the mutation then fails). Without an
 * encoder, events carry no snapshot. Set once, before any mutation runs. */
typedef bool (*store_snapshot_fn)(enum store_snapshot_kind kind, const void *resource,
                                  uint8_t **out, size_t *len);
void store_events_set_encoder(store_snapshot_fn fn);

#define STORE_EVENT_CURSOR_MAX 64

/* A follower's position in the log (WatchEvents): everything at or before it was seen. */
struct store_event_pos {
	int64_t pos_us, seq;
};

/* One event as read. */
struct store_event {
	int64_t seq;
	struct store_event_pos at; /* its place in the log's order */
	mat_time_us time;
	enum store_event_type type;
	char *org_id, *resource, *principal, *delegator;
	uint8_t *snapshot; /* NULL when none */
	size_t snapshot_len;
	char cursor[STORE_EVENT_CURSOR_MAX]; /* resumes right after this event */
};
void store_event_cleanup(struct store_event *e);
/* Cleans each of n events, then frees the array. */
void store_events_free(struct store_event *list, size_t n);

struct store_event_filter {
	const char
	    *org_id;    /* one organization; NULL = every organization (c->only_visible applies) */
	uint32_t types; /* bit (1u << type) per type wanted; 0 = every type */
};

/* Newest first. page_size and tokens as for store_org_list (the token is bound to the filter).
 * Events of one organization are listed whether it still exists or not: the caller decides
 * (GetOrganization's answer) before. */
enum mat_code store_event_list(const struct store_call *c, const struct store_event_filter *f,
                               int page_size, const char *page_token, struct store_event **out,
                               size_t *n_out, char **next_token,
                               struct mat_error *err) MAT_MUSTCHECK;

/* The position a cursor names. Garbage (or a cursor of something else) -> MAT_INVALID on
 * `field`; a position older than `oldest` (the retention horizon) -> MAT_OUT_OF_RANGE. */
enum mat_code store_event_cursor_decode(const char *cursor, const char *field, mat_time_us oldest,
                                        struct store_event_pos *out,
                                        struct mat_error *err) MAT_MUSTCHECK;
void store_event_cursor_encode(const struct store_event_pos *p, char out[STORE_EVENT_CURSOR_MAX]);

/* The position from which a follower that starts now sees every event that commits from now on
 * (the watermark: events past it may have committed already and are then delivered too). */
enum mat_code store_event_now(const struct store_call *c, struct store_event_pos *out,
                              struct mat_error *err) MAT_MUSTCHECK;

/* The next events after *pos matching f (and c->only_visible), at most `limit`, in log order, and
 * never past the watermark: a row that can still be committed before it is not yet readable,
 * so no follower skips it. `min_time` (0 = none) keeps events whose time >= it. *pos advances
 * past what was read, and past everything below the watermark when fewer than `limit` matched
 * (a filtered follower's position stays recent). *held is true when events exist past the
 * watermark (an open transaction holds them back: read again soon, even without a
 * notification). */
enum mat_code store_event_follow(const struct store_call *c, const struct store_event_filter *f,
                                 mat_time_us min_time, int limit, struct store_event_pos *pos,
                                 struct store_event **out, size_t *n_out, bool *held,
                                 struct mat_error *err) MAT_MUSTCHECK;
/* store_event_follow with the watermark in *wm: 0 on entry reads a fresh one (a round trip of
 * its own); a watermark an earlier call returned may be passed again instead, which is always
 * sound (an older watermark is lower: what lies below it stays final) and saves that round
 * trip while a follower is far behind (a replay: the caller passes it again after a full
 * batch). *wm is the watermark this read used. */
enum mat_code store_event_follow_wm(const struct store_call *c, const struct store_event_filter *f,
                                    mat_time_us min_time, int limit, struct store_event_pos *pos,
                                    mat_time_us *wm, struct store_event **out, size_t *n_out,
                                    bool *held, struct mat_error *err) MAT_MUSTCHECK;
/* A follower's next batch read ahead: store_event_follow_wm's read for the position after pos
 * with watermark wm (not 0), started now on the storage loop while the caller sends what it
 * has, so PostgreSQL runs it meanwhile (a replay: the read and the send overlap instead of
 * taking turns). Everything it needs is copied: c and f may go. NULL when out of memory. Every
 * read-ahead is either finished or dropped, exactly once. */
struct store_event_ahead;
struct store_event_ahead *store_event_follow_ahead(const struct store_call *c,
                                                   const struct store_event_filter *f,
                                                   mat_time_us min_time, int limit,
                                                   const struct store_event_pos *pos,
                                                   mat_time_us wm);
/* Whether a is the read store_event_follow_wm(c, f, min_time, limit, pos, &wm) would do now (the
 * same position, watermark, size, filter, start time and visibility). */
bool store_event_ahead_matches(const struct store_event_ahead *a, const struct store_call *c,
                               const struct store_event_filter *f, mat_time_us min_time,
                               const struct store_event_pos *pos, mat_time_us wm, int limit);
/* Waits for a (blocking, like the read it replaces), then the batch and position as
 * store_event_follow_wm returns them; frees a. */
enum mat_code store_event_ahead_finish(struct store_event_ahead *a, struct store_event_pos *pos,
                                       struct store_event **out, size_t *n_out, bool *held,
                                       struct mat_error *err) MAT_MUSTCHECK;
/* Gives a up (NULL: nothing): freed now if its read is over, else when it is. */
void store_event_ahead_drop(struct store_event_ahead *a);

/* Deletes events older than `before`, at most `batch` rows, under an advisory lock so one
 * replica at a time does it (*deleted 0 when another holds it). */
enum mat_code store_event_prune(const struct store_call *c, mat_time_us before, int batch,
                                int64_t *deleted, struct mat_error *err) MAT_MUSTCHECK;

/* The listener: a thread with a dedicated connection (LISTEN maturity_events) that calls
 * `notify(arg)` whenever a transaction that wrote events commits on any replica, and once after
 * each (re)connection (notifications sent while it was away are lost: followers read again).
 * Reconnects with backoff. NULL on failure to start. */
struct store_listener;
struct store_listener *store_listener_start(struct store_pool *pool, void (*notify)(void *arg),
                                            void *arg);
void store_listener_stop(struct store_listener *l);

#endif
