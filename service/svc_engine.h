/* Private to the call engine: the structures and functions that svc_engine.c (call lifecycle,
 * step runner, pollers and handler threads), svc_stream.c (the stream driver), svc_authz.c
 * (principals and authorization) and svc_server.c (server lifecycle, TLS reload, method table)
 * share. Handlers never include it: they see their call through svc_ctx (svc.h).
 *
 * Who owns what:
 * - struct svc_server: built and freed by svc_server.c; its handler queue belongs to
 *   svc_engine.c, its parked-stream list (park_mu) to svc_stream.c.
 * - struct svc_call: allocated and freed by svc_engine.c (accept_call, call_free); its stream
 *   fields are svc_stream.c's, its async fields svc_engine.c's.
 * - struct svc_method: the table svc_server.c builds at start; read-only afterwards.
 * docs/architecture.md draws the states and threads. */
#ifndef SVC_ENGINE_H
#define SVC_ENGINE_H

#include "auth.h"
#include "svc.h"
#include "svc_methods.h"
#include "svc_server.h"

#include <grpc/grpc.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <time.h>
#include <uv.h>

enum tag_type { TAG_REQUEST, TAG_CLOSE, TAG_OP, TAG_FINAL, TAG_SHUTDOWN };

/* The storage step of an SVC_UNARY_ASYNC call: started in the handler (IN_HANDLER); it may
 * complete before the handler returns (DONE_EARLY: the handler's thread continues) or after
 * (WAITING: the storage loop's thread continues); RESUMING once handed to a handler thread. */
enum async_state { ASYNC_NONE, ASYNC_IN_HANDLER, ASYNC_DONE_EARLY, ASYNC_WAITING, ASYNC_RESUMING };

struct svc_tag {
	enum tag_type type;
	void *p;
};

struct svc_method {
	char path[160];
	const char *service_name;
	const char *method_name;
	const ProtobufCMessageDescriptor *input;
	svc_handler_fn fn;
	enum svc_kind kind;
	const struct svc_rpc *row; /* its row of svc_methods.def: permission, resource name */
	void *handle;              /* grpc registered-method handle */
	int metrics_index;
};

struct svc_worker;

/* An armed request: where grpc core puts the next call for one method on one worker. */
struct svc_slot {
	struct svc_tag tag;
	struct svc_worker *w;
	struct svc_method *m; /* NULL: the generic request */
	grpc_call *call;
	gpr_timespec deadline;
	grpc_metadata_array md;
	grpc_byte_buffer *payload;
	grpc_call_details details;
};

/* A poller: one completion queue and the thread that drains it. */
struct svc_worker {
	struct svc_server *srv;
	int index;
	grpc_completion_queue *cq; /* new calls and the batches of calls bound here */
	pthread_t thread;
	struct svc_slot *slots; /* n_methods registered + 1 generic */
};

struct svc_call {
	struct svc_ctx ctx;
	struct svc_worker *w;
	struct svc_method *m;
	grpc_call *call;
	grpc_completion_queue *cq; /* where its batches complete: w->cq, or srv->stream_cq */
	grpc_metadata_array req_md;
	grpc_byte_buffer *payload;
	int close_cancelled;
	bool close_in_final; /* RECV_CLOSE_ON_SERVER rides with the final batch (inline calls) */
	struct svc_tag close_tag, op_tag, final_tag;
	atomic_int pending; /* close + final batch */
	pthread_mutex_t mu;
	pthread_cond_t cv;
	bool op_done, op_ok;
	grpc_byte_buffer *reply_bb;
	grpc_byte_buffer *recv_bb;
	bool initial_md_sent;
	struct timespec start;
	char *peer;
	bool door_peer;        /* came through the front door: ctx.principal was set at receipt */
	bool health_port;      /* came through the plaintext health listener: grpc.health.v1 only */
	bool authorized;       /* the engine's decision (svc_authz.c) allowed the call */
	struct svc_call *next; /* handler queue */
	/* Engine-driven server stream (svc_stream_start): FETCHING (queued for, or in, fetch on a
	 * handler thread) -> SENDING (one message in flight, no thread) -> FETCHING ... or PARKED
	 * (in srv->parked, waiting for svc_server_wake_streams) -> DONE. */
	const struct svc_stream_ops *sops;
	void *sstate;
	size_t s_n, s_i;
	enum svc_fetch s_next;
	grpc_byte_buffer *send_bb;
	grpc_byte_buffer **s_packed; /* the batch's messages (pack_at_fetch), NULL once sent */
	size_t s_held; /* bytes sent with GRPC_WRITE_BUFFER_HINT since the last flush */
	/* A bulk fetch (sops->read): its slot, its read's result, and the work request that
	 * decodes and packs the batch on libuv's work pool. */
	bool s_bulk_slot;
	enum mat_code s_rc;
	uv_work_t s_work;
	unsigned park_gen; /* srv->wake_gen when the fetch started */
	bool parked;       /* under srv->park_mu */
	int64_t due_ms;    /* sops->due_ms when it parked; 0: only when woken */
	struct svc_call *park_prev, *park_next;
	bool stream_counted; /* holds one of srv->streams */
	bool reset;          /* reset before it was handled: counted, not logged one line each */
	/* SVC_UNARY_ASYNC: the continuation of the storage step (svc_async_begin). */
	svc_cont_fn async_then;
	void *async_arg;
	atomic_int async_state; /* enum async_state */
	enum mat_code async_rc;
	bool async_blocks;                 /* svc_async_may_block: continue on a handler thread */
	struct svc_arena_block *req_arena; /* the decoded request, kept for the continuations */
	char generic_path[200];
	/* SVC_AZ_IN_STEP: the decision the engine armed for the first store call (svc_authz.c). */
	struct {
		struct store_authz az; /* handed to the first svc_store_call */
		const char *org;       /* the organization decided on, or NULL */
		bool armed;            /* waiting for a store call, or for svc_authz_settle */
		bool attached;         /* a store call carries it */
	} authz;
};

struct svc_server {
	const struct svc_config *cfg;
	struct store_pool *pool;
	grpc_server *server;
	grpc_completion_queue *shutdown_cq;
	int port;
	struct svc_method *methods;
	size_t n_methods;
	struct svc_worker *workers; /* pollers */
	int n_workers;
	/* Server streams' batches complete here, not on a poller's queue: a non-polling queue
	 * drained by a thread of its own (svc_streams_main). A stream's sends chain from one
	 * completion to the next; on a poller's queue that chain kept the queue from ever running
	 * empty, and grpc polls for I/O only when it is, so a lone poller stopped reading new
	 * calls while thousands of exports sent (docs/architecture.md, "A server stream"). */
	grpc_completion_queue *stream_cq;
	pthread_t stream_thread;
	bool stream_thread_started;
	/* The handler pool and its queue of accepted calls. */
	pthread_t *handlers;
	int n_handlers;
	pthread_mutex_t q_mu;
	pthread_cond_t q_cv;
	struct svc_call *q_head, *q_tail; /* new calls */
	/* Streams waiting for their next fetch: served after new calls (a unary call should not
	 * wait behind a reporting job's batches), but at least every STREAM_TURN-th pick. */
	struct svc_call *s_head, *s_tail;
	unsigned picks;
	bool q_closed;
	int q_len;
	/* Bulk fetches (svc_stream_ops.read: exports) hold a slot from their read to their batch
	 * packed; at most bulk_max at once (one per two cores, at least one), so exports leave
	 * cores to the unary calls beside them. Streams waiting for a slot queue here, in order
	 * (svc_stream.c; bulk_mu). */
	pthread_mutex_t bulk_mu;
	pthread_cond_t bulk_cv; /* bulk_running reached 0 with nobody in line */
	struct svc_call *b_head, *b_tail;
	int bulk_running, bulk_max;
	bool bulk_closed; /* shutdown: no new read starts (svc_stream_bulk_drain) */
	/* Server streams in progress (--max-streams): they hold no thread, only their call and at
	 * most one batch, so the bound is memory, not threads. */
	atomic_int streams;
	int max_streams;
	/* Streams waiting for a wake-up (SVC_FETCH_PARK), e.g. health Watch between changes. */
	pthread_mutex_t park_mu;
	struct svc_call *parked;
	unsigned wake_gen;
	/* Calls reset before they were handled, since the last summary line (note_reset). */
	atomic_ulong resets;
	_Atomic int64_t reset_logged_ms;
	atomic_int shutting_down;
	atomic_int grace_over; /* shutdown's grace has passed: watches end UNAVAILABLE */
	atomic_int in_flight;
	/* TLS material: `pem` is what the config fetcher hands grpc next; reload sets the flag. */
	pthread_mutex_t pem_mu;
	struct auth_pem pem;
	atomic_int reload_requested;
	bool first_fetch_done;
	struct svc_health *health;
	struct svc_metrics *metrics;
	struct svc_events *events;
	/* The front door owns the listening socket and TLS (NULL when grpc terminates TLS itself:
	 * MATURITYD_DIRECT_GRPC_TLS=1, for side-by-side benchmarks only). */
	struct svc_door *door;
	/* The loop thread: one libuv loop runs the door's relay and the storage loop, so a call's
	 * request bytes, its database result and its reply bytes wake one thread, not two
	 * (docs/architecture.md, "Threads"). Whatever touches the loop's handles runs on it
	 * (svc_server.c's on_loop); loop_call also keeps the loop alive until shutdown's end. */
	uv_loop_t loop;
	uv_async_t loop_call;
	pthread_t loop_thread;
	bool loop_inited, loop_running;
	pthread_mutex_t lc_mu;
	pthread_cond_t lc_cv;
	void (*lc_fn)(void *);
	void *lc_arg;
	unsigned lc_done; /* calls run so far */
	bool lc_quit;
	struct auth_tls *tls; /* the material at start; the door holds the current one */
};
/* --- svc_engine.c: the call lifecycle -------------------------------------------------------- */

/* Arms a request slot on its poller's queue: REQUESTED. */
void svc_slot_arm(struct svc_slot *s);
/* Sends the status (and the unary reply) in one batch: the call then belongs to the thread of
 * its queue (c->cq). */
void svc_call_finish(struct svc_call *c, enum mat_code code);
/* A FIFO of calls linked through c->next (the handler queues, the bulk line). */
void svc_call_list_push(struct svc_call **head, struct svc_call **tail, struct svc_call *c);
struct svc_call *svc_call_list_pop(struct svc_call **head, struct svc_call **tail);
/* Queues c for a handler thread: a new call (stream = false: bounded) or a stream's or a
 * continuation's next turn (stream = true). False when full, or closed at shutdown. */
bool svc_call_enqueue(struct svc_server *srv, struct svc_call *c, bool stream);
/* A message as a grpc byte buffer (the caller destroys it). */
grpc_byte_buffer *svc_pack(const ProtobufCMessage *msg);
/* Decodes bb with alloc (NULL: malloc); *ok false when it does not parse. */
ProtobufCMessage *svc_decode(const ProtobufCMessageDescriptor *desc, grpc_byte_buffer *bb,
                             ProtobufCAllocator *alloc, bool *ok);
/* Milliseconds since start (CLOCK_MONOTONIC). */
double svc_elapsed_ms(const struct timespec *start);
/* Thread bodies: arg is a struct svc_worker (poller) or the struct svc_server (handler). */
void *svc_poller_main(void *arg);
/* The server streams' completion thread (arg: the struct svc_server). */
void *svc_streams_main(void *arg);
void *svc_handler_main(void *arg);

/* --- svc_stream.c: the stream driver --------------------------------------------------------- */

/* FETCHING: the next batch, then its first message. On a handler thread, or for a bulk kind
 * (sops->read) on any thread: it queues for a bulk slot and returns. */
void svc_driver_fetch(struct svc_call *c);
/* SENDING: the next record of the batch leaves (any thread). */
void svc_driver_send(struct svc_call *c);
/* Frees the packed messages of the batch not sent yet (pack_at_fetch); idempotent. */
void svc_driver_drop_packed(struct svc_call *c);
/* A message of the stream left, or could not (on the streams thread). */
void svc_driver_sent(struct svc_call *c, int success);
/* Takes c out of the parked list; false if it was not there. */
bool svc_driver_unpark(struct svc_call *c);
/* Shutdown: svc_stream_bulk_close before the storage loop stops (no bulk read starts any more:
 * streams waiting for one end UNAVAILABLE; one started later would find no loop and block),
 * svc_stream_bulk_drain after it, which waits until every bulk fetch in progress has ended —
 * their completions run on the loop thread and send on the streams' queue, which must outlive
 * them. */
void svc_stream_bulk_close(struct svc_server *srv);
void svc_stream_bulk_drain(struct svc_server *srv);
/* The stream is over (any thread): its batch goes, then its status. */
void svc_driver_end(struct svc_call *c, enum mat_code rc);

/* --- svc_authz.c: principals and authorization ----------------------------------------------- */

/* The caller's principal into c->ctx.principal (door table or certificate); false if none. */
bool svc_principal_of(struct svc_call *c);
/* Frees this thread's principal cache (when a poller or handler thread ends). */
void svc_principal_cache_clear(void);
/* Parses the resource name the method's row names into ctx->org / ctx->id: MAT_INVALID (ctx->err
 * filled, the message the handler gave before) when it is malformed, MAT_OK otherwise. */
enum mat_code svc_authz_locate(struct svc_ctx *ctx, const ProtobufCMessage *req);
/* Authorizes the call from its row before the handler runs (SVC_AZ_BEFORE; may read bindings)
 * or arms the decision for its first store call (SVC_AZ_IN_STEP). MAT_OK, or the refusal
 * (audited, ctx->err filled). */
enum mat_code svc_authz_begin(struct svc_ctx *ctx);
/* Attaches an armed decision to the call's first store call (from svc_store_call). */
void svc_authz_attach(struct svc_ctx *ctx, struct store_call *sc);
/* Settles an armed decision once the handler or its last continuation returned rc: the refusal
 * (audited, ctx->err replaced) when the caller may not call, else rc. Bindings the store call
 * could not read are read now, unless rc says the database is unreachable. May block. */
enum mat_code svc_authz_settle(struct svc_ctx *ctx, enum mat_code rc);
/* Whether svc_authz_settle may block for the step result rc (a read or an audit). */
bool svc_authz_settle_blocks(struct svc_ctx *ctx, enum mat_code rc);
/* A store call for the engine's own statements (bindings, audit): never carries a decision. */
void svc_store_call_plain(struct svc_ctx *ctx, struct store_call *out);
/* Whether the method's rule needs the caller's bindings. */
bool svc_authz_needed(const struct svc_ctx *ctx);
/* The rule's decision for org_id with the bindings in ctx. */
bool svc_authz_allows(const struct svc_ctx *ctx, const char *org_id);

#endif
