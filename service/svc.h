/* service/ internals shared by the server loop and the handlers: the per-call context handed to
 * every handler and the handler signature (the method table is svc_methods.def). Only service/ sees
 * grpc types; handlers see the call through svc_ctx and the functions below. */
#ifndef SVC_H
#define SVC_H

#include "mat_error.h"
#include "mat_types.h"
#include "store.h"
#include "svc_config.h"
#include "svc_trace.h"

#include <protobuf-c/protobuf-c.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>

struct svc_server;
struct svc_call;
struct auth_rule;

/* SVC_UNARY_INLINE: a unary handler that never blocks (no storage): it runs on the poller
 * thread, skipping the hand-off to the handler pool. */
/* SVC_UNARY_ASYNC: a unary handler whose storage step runs on the storage loop (store_*_async):
 * it runs on the poller, starts the step with svc_async_begin and returns MAT_OK; its
 * continuation finishes the call when the step completes, on the storage loop's thread (or on a
 * handler thread when it may block: bindings to read, a refusal to audit). No thread waits. */
/* SVC_SERVER_STREAM_ASYNC: a server stream whose handler never blocks and whose batches are
 * read on the storage loop (svc_stream_ops.read): it starts on the poller, like SVC_UNARY_ASYNC,
 * so it never waits for a handler thread — not even for its start while writes hold them all.
 * */
enum svc_kind {
	SVC_UNARY = 0,
	SVC_UNARY_INLINE,
	SVC_SERVER_STREAM,
	SVC_BIDI_STREAM,
	SVC_UNARY_ASYNC,
	SVC_SERVER_STREAM_ASYNC
};
/* The kinds that never block and so run on the poller that accepted them. */
static inline bool svc_kind_on_poller(enum svc_kind k)
{
	return k == SVC_UNARY_INLINE || k == SVC_UNARY_ASYNC || k == SVC_SERVER_STREAM_ASYNC;
}

/* What a handler sees of its call. Owned by the server loop; valid until the handler returns. */
struct svc_ctx {
	struct svc_server *srv;
	struct svc_call *call;
	const char *method; /* full path "/pkg.Service/Method" */
	/* The effective principal: the client certificate's, or the end user a delegator asserted
	 * with x-on-behalf-of (svc_principal_resolve). Authorization, ownership and audit use it.
	 */
	char principal[MAT_MAX_PRINCIPAL + 1];
	/* The certificate principal of the delegator that asserted `principal`; "" otherwise. */
	char delegator[MAT_MAX_PRINCIPAL + 1];
	bool bootstrap_admin;   /* principal named by --admin-principal */
	char request_id[64];    /* x-request-id from metadata, else generated */
	struct svc_trace trace; /* W3C traceparent from metadata; empty ids when none */
	int64_t deadline_ms;    /* store_now_ms() clock; STORE_NO_DEADLINE if none */
	atomic_int cancelled;   /* set by the events thread: client cancelled or deadline passed */
	struct mat_error err;   /* filled by whoever fails */
	/* Role bindings of the principal, read once per call when a rule needs them (bindings
	 * are read on every call, never cached across calls). */
	struct mat_role_binding *bindings;
	size_t n_bindings;
	bool bindings_loaded;
	/* The response of a unary call: set with svc_reply. */
	void *reply;
	const char *resource; /* for audit of denials; may be NULL */
	bool denial_audited;  /* a PERMISSION_DENIED of this call is already in the audit log */
	struct svc_arena_block *arena;
	/* The resource the method's row names (svc_methods.def), parsed by the engine before the
	 * handler runs: the organization id ("-" for organizations/-, "" when none) and, for
	 * organizations/{org}/{collection}/{id}, the id (lower-case). */
	char org[MAT_MAX_ORG_ID + 1];
	char id[40];
};

/* A unary or server-streaming handler: the request is decoded and its strings checked for UTF-8
 * by the loop. Returns MAT_OK after svc_reply (unary) or after its last svc_stream_send; on error
 * it returns the code with ctx->err filled. */
typedef enum mat_code (*svc_handler_fn)(struct svc_ctx *ctx, const ProtobufCMessage *req);

/* Zeroed memory that lives until the call ends: responses are built from it so handlers never
 * free message trees by hand. Aborts the process when memory is exhausted (like Redis's
 * zmalloc: a server that cannot allocate a few bytes cannot answer anyway). */
void *svc_alloc(struct svc_ctx *ctx, size_t n);
/* A copy of s in call memory ("" for NULL). */
char *svc_strdup(struct svc_ctx *ctx, const char *s);

/* Packs `msg` as the unary response. Call at most once, before returning MAT_OK. */
enum mat_code svc_reply(struct svc_ctx *ctx, const ProtobufCMessage *msg) MAT_MUSTCHECK;

/* Sends one message of a server stream and waits for it to leave (one send in flight at a time:
 * flow control). MAT_CANCELLED when the client went away or the deadline passed. */
enum mat_code svc_stream_send(struct svc_ctx *ctx, const ProtobufCMessage *msg) MAT_MUSTCHECK;

/* Receives the next message of a bidi stream into *out (NULL when the client half-closed).
 * Caller frees with protobuf_c_message_free_unpacked. */
enum mat_code svc_stream_recv(struct svc_ctx *ctx, const ProtobufCMessageDescriptor *desc,
                              ProtobufCMessage **out) MAT_MUSTCHECK;

/* Server streams driven by the engine: a stream holds no thread. Its handler validates (the
 * engine decoded and authorized the call), then hands the rest to the engine with svc_stream_start
 * and returns MAT_OK. The engine then calls `fetch` on a handler thread (it may block on storage;
 * bulk kinds read on the storage loop instead, see `read`) whenever the previous batch has left,
 * and `encode` for one record at a time on whichever thread saw the previous message leave, one
 * message in flight: a reader that stops reading costs one batch of memory and no thread.
 * docs/architecture.md draws the states. */
enum svc_fetch {
	SVC_FETCH_MORE, /* after this batch is sent, fetch again */
	SVC_FETCH_LAST, /* this batch (possibly empty) is the last: the stream ends with OK */
	SVC_FETCH_PARK, /* after this batch is sent, wait for svc_server_wake_streams */
};
struct svc_stream_ops {
	/* The next batch into `state`: *n records and what comes after them. An error ends the
	 * stream with it (ctx->err filled). */
	enum mat_code (*fetch)(struct svc_ctx *ctx, void *state, size_t *n, enum svc_fetch *next);
	/* The message for record i (< n) of the current batch; memory from svc_alloc, which is
	 * reset for every message. */
	const ProtobufCMessage *(*encode)(struct svc_ctx *ctx, void *state, size_t i);
	/* Frees the current batch; called after its last record was sent or when the stream ends
	 * early. Must accept a state without a batch. */
	void (*release)(void *state);
	/* Frees the state itself (after a last release). */
	void (*free)(void *state);
	/* encode is cheap and never blocks (a small message from memory): the next message of a
	 * batch is encoded on the streams thread that saw the last one leave, without a hop to a
	 * handler thread per message, which on a busy machine costs a scheduling delay each (an
	 * event replay ran at ~1,500 messages/s that way). false: encoded on a handler thread,
	 * behind new calls (exports: large records, thousands of streams). */
	bool encode_inline;
	/* When a parked stream wants a fetch of its own accord (store_now_ms()'s clock: a
	 * heartbeat due), for svc_server_wake_due_streams; NULL or 0: only when woken. Called as it
	 * parks. */
	int64_t (*due_ms)(void *state);
	/* Every message of a batch is encoded and packed as soon as the batch is fetched, and the
	 * batch released at once: a packed message is a fraction of a decoded record's memory (an
	 * exported assessment: ~3 KiB packed against ~10 KiB of strings, arrays and malloc's
	 * headers), and a packed message leaves from the streams thread that saw the last one go,
	 * with no encoding and no hop to a handler. For kinds whose batches are the memory of
	 * thousands of slow readers. */
	bool pack_at_fetch;
	/* Bulk kinds (an export's keyset batch: hundreds of rows, milliseconds of PostgreSQL's CPU
	 * and of encoding) read on the storage loop: `read` starts the next batch's read and
	 * returns at once, `done(arg, rc)` runs when it is in (store_done_fn); then `fetch` turns
	 * what was read into the batch, CPU only, on a thread of libuv's work pool. No thread
	 * waits for the database, and a bulk stream never waits for a handler thread, however long
	 * writes hold them. At most one bulk fetch per two cores (at least one) runs at once, from
	 * its read to its batch packed, so reporting jobs take at most about half the machine and
	 * a portal's call still finds a core (docs/architecture.md, "A server stream"). NULL:
	 * `fetch` reads too, on a handler thread. */
	void (*read)(struct svc_ctx *ctx, void *state, store_done_fn done, void *arg);
};

/* How many records a stream's next batch may hold: its share of a budget of
 * SVC_STREAM_RECORD_BUDGET records over every stream in progress, between SVC_STREAM_BATCH_MIN
 * and `most`. A batch is the memory a stream holds while its reader reads, so many streams
 * fetch smaller batches (2,000 exports: 10 records each) and a lone one large batches. */
#define SVC_STREAM_RECORD_BUDGET 20000
#define SVC_STREAM_BATCH_MIN 10
int svc_stream_batch(struct svc_ctx *ctx, int most);

/* Hands the rest of a server stream to the engine; the handler then returns MAT_OK. Takes
 * ownership of `state` (freed with ops->free whatever happens). Only from a
 * SVC_SERVER_STREAM(_ASYNC) handler, at most once. */
void svc_stream_start(struct svc_ctx *ctx, const struct svc_stream_ops *ops, void *state);

/* Wakes every parked stream (SVC_FETCH_PARK): each fetches again. Any thread. */
void svc_server_wake_streams(struct svc_server *srv);
/* Wakes only the parked streams whose due_ms has come (now_ms on store_now_ms()'s clock):
 * nothing happened for the others, so they cost nothing. Any thread. */
void svc_server_wake_due_streams(struct svc_server *srv, int64_t now_ms);

/* True once shutdown's grace period has passed: streams that would wait for more (event
 * watches) end with UNAVAILABLE instead of being cut by the cancellation that follows. */
bool svc_server_grace_over(const struct svc_server *srv);

struct svc_metrics;
struct svc_metrics *svc_server_metrics(const struct svc_server *srv);

/* Forgets the bindings read for this call, so the next authorization reads them again: a
 * long-lived stream re-judges visibility from time to time. */
void svc_forget_bindings(struct svc_ctx *ctx);

/* Events (service/rpc_event.c): registers the snapshot encoder with storage, and runs the
 * replica's listener (LISTEN on its own connection) and the watch timer. Started with the
 * server, stopped at shutdown once no handler runs. NULL when a thread cannot start. */
struct svc_events;
struct svc_events *svc_events_start(struct svc_server *srv);
void svc_events_stop(struct svc_events *ev);

/* The continuation of an asynchronous storage step: gets the step's result, returns the call's
 * (after svc_reply on MAT_OK), like a handler. */
typedef enum mat_code (*svc_cont_fn)(struct svc_ctx *ctx, void *arg, enum mat_code rc);
/* Arms `then` (with `arg`, which must live until it ran: e.g. svc_alloc memory; the request
 * stays valid too) as the continuation; then start the storage step with svc_async_done as its
 * completion and ctx as its argument, and return MAT_OK. SVC_UNARY_ASYNC handlers only. A
 * continuation may do the same for a next step (and return MAT_OK): a call is a chain of steps,
 * none of which holds a thread. */
void svc_async_begin(struct svc_ctx *ctx, svc_cont_fn then, void *arg);
/* The next continuation may block (e.g. it writes an audit row): it runs on a handler thread
 * instead of the storage loop's. */
void svc_async_may_block(struct svc_ctx *ctx);
/* The store_done_fn of that step (arg = the svc_ctx). */
void svc_async_done(void *ctx, enum mat_code rc);

/* A store_call for this call's queries. */
void svc_store_call(struct svc_ctx *ctx, struct store_call *out);

/* The configuration and pool, for handlers. */
const struct svc_config *svc_server_config(const struct svc_server *srv);
struct store_pool *svc_server_pool(const struct svc_server *srv);
/* The TLS material in use now (client CA, CRLs), with a reference the caller releases
 * (auth_tls_unref). Any thread. */
struct auth_tls;
struct auth_tls *svc_server_tls(const struct svc_server *srv);

/* The database state the health monitor last saw: true when it answers. */
bool svc_server_db_ok(const struct svc_server *srv);
struct svc_health;
struct svc_health *svc_server_health(const struct svc_server *srv);
/* SERVING: the database answers and shutdown has not begun. */
bool svc_server_serving(const struct svc_server *srv);

/* Authorization is the engine's: it decides every call from its method row (svc_methods.def)
 * before the handler runs or on its first storage round trip; handlers never authorize. A
 * long-lived stream re-judges its caller with svc_reauthorize: the row's rule for ctx->org with
 * bindings read again; on refusal ctx->err is MAT_DENIED and the refusal is audited. */
enum mat_code svc_reauthorize(struct svc_ctx *ctx) MAT_MUSTCHECK;

/* Whether the caller sees every organization (for list filtering). Loads bindings if needed. */
bool svc_sees_all(struct svc_ctx *ctx);

/* Builds the reflection index from the embedded descriptor set (once); 0 or -1. */
int svc_reflection_init(void);
void svc_reflection_cleanup(void);

#endif
