/* The call engine: the life of every call, from the armed request to the freed struct.
 *
 * Threads: a few pollers, each owning one completion queue on which its armed requests (one per
 * registered method, plus the generic request that answers unknown paths) and the batches of
 * the calls bound to it complete. Pollers never block: they accept a call, re-arm its slot at
 * once, and hand the call to the pool of handler threads (--workers), which run the blocking
 * handlers (synchronous libpq). grpc core matches a new call to an armed request on its
 * connection's queue first, so a queue whose thread blocked in a handler would hold unrelated
 * calls hostage for as long as a stream or a slow query lasts; with non-blocking pollers every
 * armed request is always served. Calls that cannot block (health checks, the model catalog,
 * scoring without storage) run inline on the poller: a hand-off would cost more than the work.
 * SVC_UNARY_ASYNC calls run on the poller too and continue as a chain of steps on the storage
 * loop (the step runner below); server streams continue in the stream driver (svc_stream.c).
 *
 * A call: REQUESTED (slot armed) -> RECEIVED (slot completed; RECV_CLOSE_ON_SERVER started) ->
 * HANDLED (decode, authenticate, handler) -> SENDING (final batch) -> DONE (final batch and close
 * both completed: unref and free). docs/architecture.md draws it.
 *
 * Owns: struct svc_call (accept_call .. call_free), the handler queue, the poller and handler
 * threads' bodies, request ids, the call log line and the status. Shares svc_engine.h with
 * svc_stream.c, svc_authz.c and svc_server.c. */
#include "svc_engine.h"

#include "auth_policy.h"
#include "mat_validate.h"
#include "svc.h"
#include "svc_convert.h"
#include "svc_delegation.h"
#include "svc_door.h"
#include "svc_health.h"
#include "svc_log.h"
#include "svc_metrics.h"
#include "svc_status.h"

#include <assert.h>
#include <grpc/byte_buffer_reader.h>
#include <grpc/grpc.h>
#include <grpc/support/alloc.h>
#include <grpc/support/string_util.h>
#include <grpc/support/time.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/random.h>
#include <time.h>

/* --- calls ---------------------------------------------------------------------------- */

static bool server_stream(const struct svc_method *m)
{
	return m != NULL && (m->kind == SVC_SERVER_STREAM || m->kind == SVC_SERVER_STREAM_ASYNC);
}

/* The queue a slot's calls are bound to: their batches complete there. */
static grpc_completion_queue *slot_bound_cq(const struct svc_slot *s)
{
	if (server_stream(s->m))
		return s->w->srv->stream_cq;
	return s->w->cq;
}

void svc_slot_arm(struct svc_slot *s)
{
	struct svc_server *srv = s->w->srv;
	grpc_call_error e;

	grpc_metadata_array_init(&s->md);
	s->call = NULL;
	s->payload = NULL;
	if (s->m != NULL) {
		e = grpc_server_request_registered_call(
		    srv->server, s->m->handle, &s->call, &s->deadline, &s->md,
		    s->m->kind == SVC_BIDI_STREAM ? NULL : &s->payload, slot_bound_cq(s), s->w->cq,
		    &s->tag);
	} else {
		grpc_call_details_init(&s->details);
		e = grpc_server_request_call(srv->server, &s->call, &s->details, &s->md, s->w->cq,
		                             s->w->cq, &s->tag);
	}
	if (e != GRPC_CALL_OK) {
		/* Only after shutdown started: the slot stays idle. */
		grpc_metadata_array_destroy(&s->md);
		if (s->m == NULL)
			grpc_call_details_destroy(&s->details);
	}
}

static void call_free(struct svc_call *c)
{
	struct svc_server *srv = c->w->srv;

	grpc_call_unref(c->call);
	grpc_metadata_array_destroy(&c->req_md);
	if (c->payload)
		grpc_byte_buffer_destroy(c->payload);
	if (c->reply_bb)
		grpc_byte_buffer_destroy(c->reply_bb);
	if (c->recv_bb)
		grpc_byte_buffer_destroy(c->recv_bb);
	if (c->send_bb)
		grpc_byte_buffer_destroy(c->send_bb);
	if (c->sops != NULL) {
		svc_driver_drop_packed(c);
		c->sops->release(c->sstate);
		c->sops->free(c->sstate);
	}
	svc_arena_free(c->ctx.arena);
	svc_arena_free(c->req_arena);
	svc_forget_bindings(&c->ctx);
	gpr_free(c->peer);
	pthread_mutex_destroy(&c->mu);
	pthread_cond_destroy(&c->cv);
	free(c);
	atomic_fetch_sub(&srv->in_flight, 1);
}

static void call_release(struct svc_call *c)
{
	if (atomic_fetch_sub(&c->pending, 1) == 1)
		call_free(c);
}

/* A batch of a call completed (on its poller). */
static void on_call_event(struct svc_tag *t, int success)
{
	struct svc_call *c = t->p;

	switch (t->type) {
	case TAG_CLOSE:
		if (c->close_cancelled)
			atomic_store(&c->ctx.cancelled, 1);
		/* A parked stream has no batch in flight to fail: its close ends it. */
		if (svc_driver_unpark(c)) {
			mat_error_set(&c->ctx.err, MAT_CANCELLED, "the call was cancelled");
			svc_driver_end(c, MAT_CANCELLED);
		}
		pthread_mutex_lock(&c->mu);
		pthread_cond_broadcast(&c->cv);
		pthread_mutex_unlock(&c->mu);
		call_release(c);
		break;
	case TAG_OP:
		if (c->sops != NULL) {
			svc_driver_sent(c, success);
			break;
		}
		pthread_mutex_lock(&c->mu);
		c->op_done = true;
		c->op_ok = success != 0;
		pthread_cond_broadcast(&c->cv);
		pthread_mutex_unlock(&c->mu);
		break;
	case TAG_FINAL:
		call_release(c);
		break;
	case TAG_REQUEST:
	case TAG_SHUTDOWN:
		assert(!"not a call batch");
		break;
	}
}
grpc_byte_buffer *svc_pack(const ProtobufCMessage *msg)
{
	size_t len = protobuf_c_message_get_packed_size(msg);
	grpc_slice s = grpc_slice_malloc(len);
	grpc_byte_buffer *bb;

	protobuf_c_message_pack(msg, GRPC_SLICE_START_PTR(s));
	bb = grpc_raw_byte_buffer_create(&s, 1);
	grpc_slice_unref(s);
	return bb;
}

enum mat_code svc_reply(struct svc_ctx *ctx, const ProtobufCMessage *msg)
{
	struct svc_call *c = ctx->call;

	assert(c->reply_bb == NULL);
	c->reply_bb = svc_pack(msg);
	return MAT_OK;
}
/* Decodes bb; alloc NULL: malloc. A message that arrived in one uncompressed slice (the usual
 * case for requests this size) is decoded in place instead of copied out first. */
ProtobufCMessage *svc_decode(const ProtobufCMessageDescriptor *desc, grpc_byte_buffer *bb,
                             ProtobufCAllocator *alloc, bool *ok)
{
	grpc_byte_buffer_reader r;
	grpc_slice s;
	ProtobufCMessage *m;

	*ok = false;
	if (bb->type == GRPC_BB_RAW && bb->data.raw.compression == GRPC_COMPRESS_NONE &&
	    bb->data.raw.slice_buffer.count == 1) {
		s = bb->data.raw.slice_buffer.slices[0];
		m = protobuf_c_message_unpack(desc, alloc, GRPC_SLICE_LENGTH(s),
		                              GRPC_SLICE_START_PTR(s));
		*ok = m != NULL;
		return m;
	}
	if (!grpc_byte_buffer_reader_init(&r, bb))
		return NULL;
	s = grpc_byte_buffer_reader_readall(&r);
	grpc_byte_buffer_reader_destroy(&r);
	m = protobuf_c_message_unpack(desc, alloc, GRPC_SLICE_LENGTH(s), GRPC_SLICE_START_PTR(s));
	grpc_slice_unref(s);
	*ok = m != NULL;
	return m;
}

/* protobuf-c allocator over a request arena: decoding a request is a bump allocation per
 * field instead of a malloc each, and the whole request goes at once (malloc and free were
 * ~8 % of EvaluateAnswers' CPU in the profile). */
static void *req_alloc(void *data, size_t size)
{
	return svc_arena_alloc(data, size);
}

static void req_free(void *data, void *p)
{
	(void)data;
	(void)p;
}
void svc_store_call(struct svc_ctx *ctx, struct store_call *out)
{
	svc_store_call_plain(ctx, out);
	svc_authz_attach(ctx, out); /* the first one carries an armed decision */
}

void svc_store_call_plain(struct svc_ctx *ctx, struct store_call *out)
{
	memset(out, 0, sizeof(*out));
	out->pool = ctx->srv->pool;
	out->deadline_ms = ctx->deadline_ms;
	out->principal = ctx->principal;
	out->delegator = ctx->delegator;
	out->method = ctx->method;
	out->request_id = ctx->request_id;
	out->trace_id = ctx->trace.trace_id;
	out->span_id = ctx->trace.span_id;
	out->cancelled = (volatile const int *)&ctx->cancelled;
}
/* Request ids need to be unique, not secret: a per-thread xoshiro256** seeded once from the
 * kernel saves a getrandom system call on every call. */
static _Thread_local uint64_t rng[4];
static _Thread_local bool rng_seeded;

static uint64_t rotl(uint64_t x, int k)
{
	return (x << k) | (x >> (64 - k));
}

static uint64_t rng_next(void)
{
	uint64_t result = rotl(rng[1] * 5, 7) * 9, t = rng[1] << 17;
	rng[2] ^= rng[0];
	rng[3] ^= rng[1];
	rng[1] ^= rng[2];
	rng[0] ^= rng[3];
	rng[2] ^= t;
	rng[3] = rotl(rng[3], 45);
	return result;
}

static void random_bytes(unsigned char out[16])
{
	uint64_t a, b;

	if (!rng_seeded) {
		if (getrandom(rng, sizeof(rng), 0) != (ssize_t)sizeof(rng) ||
		    (rng[0] | rng[1] | rng[2] | rng[3]) == 0) {
			struct timespec ts;
			clock_gettime(CLOCK_REALTIME, &ts);
			rng[0] = (uint64_t)ts.tv_nsec ^ ((uint64_t)ts.tv_sec << 32);
			rng[1] = (uint64_t)(uintptr_t)&ts | 1;
		}
		rng_seeded = true;
	}
	a = rng_next();
	b = rng_next();
	memcpy(out, &a, 8);
	memcpy(out + 8, &b, 8);
}

static void request_id_of(struct svc_call *c)
{
	svc_trace_from_metadata(&c->req_md, &c->ctx.trace);
	for (size_t i = 0; i < c->req_md.count; i++) {
		const grpc_metadata *md = &c->req_md.metadata[i];
		size_t klen = GRPC_SLICE_LENGTH(md->key), vlen = GRPC_SLICE_LENGTH(md->value);
		if (klen == 12 && memcmp(GRPC_SLICE_START_PTR(md->key), "x-request-id", 12) == 0 &&
		    vlen > 0 && vlen < sizeof(c->ctx.request_id) &&
		    mat_utf8_valid((const char *)GRPC_SLICE_START_PTR(md->value), vlen)) {
			memcpy(c->ctx.request_id, GRPC_SLICE_START_PTR(md->value), vlen);
			c->ctx.request_id[vlen] = '\0';
			for (size_t k = 0; k < vlen; k++)
				if ((unsigned char)c->ctx.request_id[k] < 0x20)
					c->ctx.request_id[k] = '?';
			return;
		}
	}
	unsigned char r[16];
	random_bytes(r);
	r[6] = (r[6] & 0x0f) | 0x40;
	r[8] = (r[8] & 0x3f) | 0x80;
	snprintf(c->ctx.request_id, sizeof(c->ctx.request_id),
	         "%02x%02x%02x%02x-%02x%02x-%02x%02x-%02x%02x-%02x%02x%02x%02x%02x%02x", r[0], r[1],
	         r[2], r[3], r[4], r[5], r[6], r[7], r[8], r[9], r[10], r[11], r[12], r[13], r[14],
	         r[15]);
}

static int64_t deadline_to_ms(gpr_timespec deadline)
{
	gpr_timespec now, left;

	if (gpr_time_cmp(deadline, gpr_inf_future(deadline.clock_type)) == 0)
		return STORE_NO_DEADLINE;
	now = gpr_now(deadline.clock_type);
	left = gpr_time_sub(deadline, now);
	return store_now_ms() + (int64_t)left.tv_sec * 1000 + left.tv_nsec / 1000000;
}

double svc_elapsed_ms(const struct timespec *start)
{
	struct timespec now;
	clock_gettime(CLOCK_MONOTONIC, &now);
	return (double)(now.tv_sec - start->tv_sec) * 1e3 +
	       (double)(now.tv_nsec - start->tv_nsec) / 1e6;
}

/* Calls reset before they were handled (a client opening and resetting streams as fast as it
 * can: CVE-2023-44487's pattern) cost a counter, not a log line each: one summary line at most
 * every RESET_LOG_S seconds says how many. */
#define RESET_LOG_S 10

static void note_reset(struct svc_server *srv)
{
	int64_t now = store_now_ms(), last = atomic_load(&srv->reset_logged_ms);
	unsigned long n;

	svc_metrics_call_reset(srv->metrics);
	n = atomic_fetch_add(&srv->resets, 1) + 1;
	if (now - last >= RESET_LOG_S * 1000 &&
	    atomic_compare_exchange_strong(&srv->reset_logged_ms, &last, now)) {
		atomic_fetch_sub(&srv->resets, n);
		svc_log_event("warn",
		              "%lu calls were reset by their clients before they were handled "
		              "(maturityd_calls_reset_total); not logged one by one",
		              n);
	}
}

static void dispatch(struct svc_tag *t, int success);

/* A completion caught by svc_call_finish is dispatched there, but not from inside another
 * dispatch: a new call caught while finishing a call that was itself caught would nest one
 * svc_call_finish frame (~5 KiB, the log line) per catch. Nested catches wait on this thread's
 * list and the outermost dispatch runs them in order. */
#define CAUGHT_MAX 64
static _Thread_local struct {
	bool active;
	size_t head, n;
	struct {
		struct svc_tag *t;
		int ok;
	} q[CAUGHT_MAX];
} tl_caught;

static void dispatch_caught(struct svc_tag *t, int ok)
{
	if (tl_caught.active) {
		if (tl_caught.n < CAUGHT_MAX) {
			size_t i = (tl_caught.head + tl_caught.n++) % CAUGHT_MAX;
			tl_caught.q[i].t = t;
			tl_caught.q[i].ok = ok;
			return;
		}
		dispatch(t, ok); /* full (never seen): nest once more */
		return;
	}
	tl_caught.active = true;
	dispatch(t, ok);
	while (tl_caught.n > 0) {
		size_t i = tl_caught.head;
		tl_caught.head = (tl_caught.head + 1) % CAUGHT_MAX;
		tl_caught.n--;
		dispatch(tl_caught.q[i].t, tl_caught.q[i].ok);
	}
	tl_caught.active = false;
}

/* Sends the status (and the unary reply) in one batch: HANDLED -> SENDING. After this the call
 * belongs to the thread of its queue (c->cq). */
void svc_call_finish(struct svc_call *c, enum mat_code code)
{
	struct svc_server *srv = c->w->srv;
	struct svc_status st;
	struct svc_log_line line;
	grpc_op ops[4];
	size_t n = 0;
	double ms = svc_elapsed_ms(&c->start);
	const char *method = c->m ? c->m->path : c->ctx.method;

	if (c->stream_counted) {
		c->stream_counted = false;
		atomic_fetch_sub(&srv->streams, 1);
	}
	/* Read now: once the final batch is started the call may be freed on a poller. */
	bool quiet = c->reset;

	if (quiet)
		note_reset(srv);
	svc_status_build(code, &c->ctx.err, &st);
	if (code == MAT_INTERNAL)
		svc_log_event("error", "%s: internal error: %s", method, c->ctx.err.message);
	/* The health port's callers have no identity: the line says where they came from. */
	svc_log_call_format(&line, method, c->health_port ? "(health port)" : c->ctx.principal,
	                    c->ctx.delegator, svc_status_code_name(st.code), ms, c->ctx.request_id,
	                    c->peer, st.code == GRPC_STATUS_OK ? NULL : c->ctx.err.message);
	svc_log_call_add_trace(&line, c->ctx.trace.trace_id, c->ctx.trace.span_id);
	svc_metrics_handled(srv->metrics, c->m ? c->m->metrics_index : -1, st.code, ms / 1e3);

	memset(ops, 0, sizeof(ops));
	if (!c->initial_md_sent) {
		ops[n].op = GRPC_OP_SEND_INITIAL_METADATA;
		n++;
		c->initial_md_sent = true;
	}
	if (st.code == GRPC_STATUS_OK && c->reply_bb != NULL) {
		ops[n].op = GRPC_OP_SEND_MESSAGE;
		ops[n].data.send_message.send_message = c->reply_bb;
		n++;
	}
	if (c->close_in_final) {
		ops[n].op = GRPC_OP_RECV_CLOSE_ON_SERVER;
		ops[n].data.recv_close_on_server.cancelled = &c->close_cancelled;
		n++;
	}
	ops[n].op = GRPC_OP_SEND_STATUS_FROM_SERVER;
	ops[n].data.send_status_from_server.status = st.code;
	ops[n].data.send_status_from_server.status_details = &st.details;
	ops[n].data.send_status_from_server.trailing_metadata = st.trailing;
	ops[n].data.send_status_from_server.trailing_metadata_count = st.n_trailing;
	n++;
	/* A completion that happens on this thread while the batch starts (grpc wrote the reply
	 * at once, as it mostly does) is taken here instead of going through the queue: no poller
	 * is woken for it. docs/architecture.md "A unary call". */
	grpc_completion_queue *cq = c->cq;
	grpc_completion_queue_thread_local_cache_init(cq);
	grpc_call_error e = grpc_call_start_batch(c->call, ops, n, &c->final_tag, NULL);
	void *done_tag = NULL;
	int done_ok = 0;
	int done = grpc_completion_queue_thread_local_cache_flush(cq, &done_tag, &done_ok);
	if (e != GRPC_CALL_OK) {
		svc_log_line_write(&line);
		svc_log_event("error", "%s: could not send the status", method);
		svc_status_cleanup(&st);
		call_release(c);
	} else {
		svc_status_cleanup(&st);
		/* After the reply left: the write never delays it. */
		if (!quiet)
			svc_log_line_write(&line);
	}
	if (done)
		dispatch_caught(done_tag, done_ok);
}
/* Calls that never block (no storage) run on the poller itself. */
static bool runs_inline(const struct svc_method *m)
{
	return m == NULL || svc_kind_on_poller(m->kind);
}

/* RECEIVED, on the poller: the call leaves its slot (which is re-armed right after) for a
 * struct of its own, and its close notification is started. NULL when out of memory (the call
 * is then cancelled). */
static struct svc_call *accept_call(struct svc_slot *s)
{
	struct svc_worker *w = s->w;
	struct svc_server *srv = w->srv;
	struct svc_call *c = calloc(1, sizeof(*c));
	grpc_op op;

	if (c == NULL) {
		/* Out of memory: cancel rather than leak the call. */
		grpc_call_cancel_with_status(s->call, GRPC_STATUS_RESOURCE_EXHAUSTED,
		                             "out of memory", NULL);
		grpc_call_unref(s->call);
		grpc_metadata_array_destroy(&s->md);
		if (s->payload)
			grpc_byte_buffer_destroy(s->payload);
		if (s->m == NULL)
			grpc_call_details_destroy(&s->details);
		return NULL;
	}
	atomic_fetch_add(&srv->in_flight, 1);
	clock_gettime(CLOCK_MONOTONIC, &c->start);
	c->w = w;
	c->m = s->m;
	c->call = s->call;
	c->cq = slot_bound_cq(s);
	c->req_md = s->md; /* moves: the slot re-inits its own on re-arm */
	c->payload = s->payload;
	c->close_tag = (struct svc_tag){TAG_CLOSE, c};
	c->op_tag = (struct svc_tag){TAG_OP, c};
	c->final_tag = (struct svc_tag){TAG_FINAL, c};
	atomic_init(&c->pending, 2);
	pthread_mutex_init(&c->mu, NULL);
	pthread_cond_init(&c->cv, NULL);
	c->ctx.srv = srv;
	c->ctx.call = c;
	atomic_init(&c->ctx.cancelled, 0);
	mat_error_clear(&c->ctx.err);
	c->peer = grpc_call_get_peer(c->call);
	if (srv->door != NULL) {
		char addr[80];
		c->door_peer = svc_door_peer(srv->door, c->peer, c->ctx.principal,
		                             sizeof(c->ctx.principal), addr, sizeof(addr));
		/* Only the health listener is plaintext: a TLS connection always has a principal
		 * (the door refuses a handshake without one). */
		c->health_port = c->door_peer && c->ctx.principal[0] == '\0';
		if (c->door_peer) {
			/* Logs name the client, not our end of the socketpair. */
			gpr_free(c->peer);
			c->peer = gpr_strdup(addr);
		}
	}
	c->ctx.deadline_ms = deadline_to_ms(s->deadline);
	if (s->m != NULL) {
		c->ctx.method = s->m->path;
	} else {
		size_t len = GRPC_SLICE_LENGTH(s->details.method);
		if (len >= sizeof(c->generic_path))
			len = sizeof(c->generic_path) - 1;
		memcpy(c->generic_path, GRPC_SLICE_START_PTR(s->details.method), len);
		c->generic_path[len] = '\0';
		for (size_t i = 0; i < len; i++)
			if ((unsigned char)c->generic_path[i] < 0x20 ||
			    (unsigned char)c->generic_path[i] >= 0x7f)
				c->generic_path[i] = '?';
		c->ctx.method = c->generic_path;
		grpc_call_details_destroy(&s->details);
	}
	request_id_of(c);

	/* RECEIVED: learn of cancellation (deadline, client) while the handler runs. A call that
	 * runs inline takes microseconds and has nothing to cancel: its close goes with the final
	 * batch instead, one batch and one completion per call like a bare server (a stream that
	 * starts inline still learns of it: it lives on). */
	if (runs_inline(c->m) && !server_stream(c->m)) {
		c->close_in_final = true;
		atomic_fetch_sub(&c->pending, 1);
	} else {
		memset(&op, 0, sizeof(op));
		op.op = GRPC_OP_RECV_CLOSE_ON_SERVER;
		op.data.recv_close_on_server.cancelled = &c->close_cancelled;
		if (grpc_call_start_batch(c->call, &op, 1, &c->close_tag, NULL) != GRPC_CALL_OK)
			atomic_fetch_sub(&c->pending, 1);
	}
	svc_metrics_started(srv->metrics, s->m ? s->m->metrics_index : -1);
	return c;
}

static void complete(struct svc_call *c, enum mat_code rc);
/* --- asynchronous storage steps (SVC_UNARY_ASYNC) ----------------------------------------------
 */

void svc_async_begin(struct svc_ctx *ctx, svc_cont_fn then, void *arg)
{
	struct svc_call *c = ctx->call;

	assert(c->m != NULL && c->m->kind == SVC_UNARY_ASYNC && c->async_then == NULL);
	c->async_then = then;
	c->async_arg = arg;
	atomic_store(&c->async_state, ASYNC_IN_HANDLER);
}

/* Whether the continuation might block: it must then run on a handler thread. Only the
 * authorization the engine settles after it can: bindings the step could not read are read
 * then, and a refusal is audited (a write). Everything else a continuation does is decoding and
 * encoding. */
static bool continuation_blocks(struct svc_call *c)
{
	if (c->async_blocks)
		return true;
	return svc_authz_settle_blocks(&c->ctx, c->async_rc);
}

static void async_resume(struct svc_call *c);

/* Runs the continuation, then completes the call — unless the continuation started a next
 * step (svc_async_begin again), which then continues the call when it completes. */
static void async_continue(struct svc_call *c)
{
	svc_cont_fn then = c->async_then;
	enum mat_code rc;
	int expect = ASYNC_IN_HANDLER;

	c->async_then = NULL;
	atomic_store(&c->async_state, ASYNC_NONE);
	rc = then(&c->ctx, c->async_arg, c->async_rc);
	if (c->async_then == NULL || rc != MAT_OK) {
		complete(c, rc);
		return;
	}
	if (!atomic_compare_exchange_strong(&c->async_state, &expect, ASYNC_WAITING))
		async_resume(c); /* the next step completed already */
}

static void async_resume(struct svc_call *c)
{
	if (continuation_blocks(c)) {
		atomic_store(&c->async_state, ASYNC_RESUMING);
		if (svc_call_enqueue(c->w->srv, c, true))
			return;
		/* Shutting down: nothing waits any more; the refusal is still audited here. */
	}
	async_continue(c);
}

void svc_async_may_block(struct svc_ctx *ctx)
{
	ctx->call->async_blocks = true;
}

void svc_async_done(void *arg, enum mat_code rc)
{
	struct svc_ctx *ctx = arg;
	struct svc_call *c = ctx->call;
	int expect = ASYNC_IN_HANDLER;

	c->async_rc = rc;
	if (atomic_compare_exchange_strong(&c->async_state, &expect, ASYNC_DONE_EARLY))
		return; /* the handler has not returned yet: run_call continues */
	async_resume(c);
}

/* HANDLED: authenticate, decode, run the handler, send the status (any thread). */
static void run_call(struct svc_call *c)
{
	struct svc_server *srv = c->w->srv;
	const struct svc_method *m = c->m;
	ProtobufCMessage *req = NULL;
	struct svc_arena_block *req_arena = NULL;
	ProtobufCAllocator req_alloc_of = {
	    .alloc = req_alloc, .free = req_free, .allocator_data = &req_arena};
	enum mat_code rc = MAT_INTERNAL;

	if (m == NULL) {
		rc = mat_error_set(&c->ctx.err, MAT_UNIMPLEMENTED, "unknown method %s",
		                   c->ctx.method);
		goto out;
	}
	/* The health port is a second listener of this engine for probes that speak no TLS
	 * (docs/operations.md): health checks and watches there, nothing else, no identity. */
	if (c->health_port && strcmp(m->service_name, "grpc.health.v1.Health") != 0) {
		rc = mat_error_set(&c->ctx.err, MAT_UNIMPLEMENTED,
		                   "%s is not served on the health port", c->ctx.method);
		goto out;
	}
	/* Reset while it waited for a handler: nothing to do (and nothing to read). */
	if (atomic_load(&c->ctx.cancelled)) {
		c->reset = true;
		rc = mat_error_set(&c->ctx.err, MAT_CANCELLED, "cancelled before it was handled");
		goto out;
	}
	/* The health port's callers are anonymous: its methods need no permission. */
	if (!c->health_port && !svc_principal_of(c)) {
		struct store_call sc;
		struct mat_error ignored;
		svc_store_call_plain(&c->ctx, &sc);
		mat_error_clear(&ignored);
		if (store_audit_denied(&sc, "", 16 /* UNAUTHENTICATED */, &ignored) != MAT_OK)
			svc_log_event("error", "audit of an unauthenticated call failed: %s",
			              ignored.message);
		rc = mat_error_set(&c->ctx.err, MAT_UNAUTHENTICATED,
		                   "the client certificate carries no usable identity");
		goto out;
	}
	/* Behind a trusted proxy the caller is the certificate it forwarded; then the certificate's
	 * principal becomes the end user's when a delegator asserts one. After principal_of, so
	 * its cache only ever holds certificate principals. */
	if (!c->health_port) {
		rc = svc_principal_forwarded(&c->ctx, srv->cfg, &c->req_md);
		if (rc != MAT_OK)
			goto out;
		rc = svc_principal_resolve(&c->ctx, srv->cfg, &c->req_md);
		if (rc != MAT_OK)
			goto out;
		c->ctx.bootstrap_admin = svc_config_is_admin(srv->cfg, c->ctx.principal);
	}
	/* No shutdown check here: grpc stops matching new calls at shutdown, so every call that
	 * reached us was accepted before and gets to finish within the grace period. */
	if (m->kind != SVC_BIDI_STREAM) {
		bool ok;
		if (c->payload == NULL) {
			/* Reset before its message arrived (or sent none, which no gRPC client
			 * does). */
			c->reset = true;
			rc = mat_error_set(&c->ctx.err, MAT_INVALID, "the request has no message");
			goto out;
		}
		req = svc_decode(m->input, c->payload, &req_alloc_of, &ok);
		if (!ok) {
			rc = mat_error_set(&c->ctx.err, MAT_INVALID,
			                   "the request is not a valid %s message", m->input->name);
			goto out;
		}
		if (!svc_check_utf8(req, &c->ctx.err)) {
			rc = MAT_INVALID;
			goto out;
		}
	}
	if (server_stream(m) || m->kind == SVC_BIDI_STREAM) {
		if (atomic_fetch_add(&srv->streams, 1) >= srv->max_streams) {
			atomic_fetch_sub(&srv->streams, 1);
			rc =
			    mat_error_set(&c->ctx.err, MAT_LIMIT,
			                  "too many streams in progress on this server (%d); retry "
			                  "later",
			                  srv->max_streams);
			goto out;
		}
		c->stream_counted = true; /* released by svc_call_finish() */
	}
	/* The row's resource name, then its permission: before the handler, or armed for its first
	 * storage round trip (svc_methods.def). */
	rc = svc_authz_locate(&c->ctx, req);
	if (rc == MAT_OK)
		rc = svc_authz_begin(&c->ctx);
	if (rc != MAT_OK) {
		complete(c, rc);
		svc_arena_free(req_arena);
		return;
	}
	rc = m->fn(&c->ctx, req);
	if (c->sops != NULL && rc == MAT_OK && (c->authorized || c->authz.armed)) {
		/* The engine drives the rest of the stream: the request is no longer needed. A
		 * decision armed for the first fetch (SVC_AZ_IN_STEP) is settled after it, before
		 * anything is sent (svc_driver_fetch). */
		svc_arena_free(req_arena);
		svc_driver_fetch(c);
		return;
	}
	if (c->async_then != NULL && rc == MAT_OK) {
		/* The continuations may read the request: it lives as long as the call. */
		int expect = ASYNC_IN_HANDLER;
		c->req_arena = req_arena;
		if (!atomic_compare_exchange_strong(&c->async_state, &expect, ASYNC_WAITING))
			async_resume(c); /* it completed already, on this thread */
		return;
	}
	complete(c, rc);
	svc_arena_free(req_arena);
	return;
out:
	svc_arena_free(req_arena); /* the request, whole */
	svc_call_finish(c, rc);
}

/* After the handler (and its continuation): the checks every unary call passes, then the
 * status. */
static void complete(struct svc_call *c, enum mat_code rc)
{
	struct svc_server *srv = c->w->srv;
	const struct svc_method *m = c->m;

	/* A decision that rode on the handler's store call (SVC_AZ_IN_STEP) is settled first: a
	 * refusal replaces whatever the handler answered. */
	rc = svc_authz_settle(&c->ctx, rc);
	/* A call the engine did not authorize is a bug: never send data. */
	if (rc == MAT_OK && !c->authorized) {
		rc = mat_error_set(&c->ctx.err, MAT_INTERNAL, "%s returned without authorizing",
		                   c->ctx.method);
	}
	if (rc == MAT_OK &&
	    (m->kind == SVC_UNARY || m->kind == SVC_UNARY_INLINE || m->kind == SVC_UNARY_ASYNC) &&
	    c->reply_bb == NULL)
		rc =
		    mat_error_set(&c->ctx.err, MAT_INTERNAL, "%s produced no reply", c->ctx.method);
	if (rc == MAT_UNAVAILABLE || rc == MAT_TIMEOUT)
		svc_health_db_failed(srv->health, rc);
	/* A refusal decided by storage (four-eyes) is audited like one decided by the table. */
	if (rc == MAT_DENIED && !c->ctx.denial_audited) {
		struct store_call sc;
		struct mat_error ignored;
		svc_store_call_plain(&c->ctx, &sc);
		mat_error_clear(&ignored);
		if (store_audit_denied(&sc, c->ctx.resource, 7, &ignored) != MAT_OK)
			svc_log_event("error", "audit of a denial failed: %s", ignored.message);
	}
	svc_call_finish(c, rc);
}

/* Accepted calls waiting for a handler, at most: beyond it the server is overloaded and says so
 * at once (RESOURCE_EXHAUSTED) instead of queueing without bound (e.g. a client opening and
 * resetting streams in a loop, CVE-2023-44487's pattern). */
#define MAX_QUEUED 2048

#define STREAM_TURN 4

void svc_call_list_push(struct svc_call **head, struct svc_call **tail, struct svc_call *c)
{
	c->next = NULL;
	if (*tail != NULL)
		(*tail)->next = c;
	else
		*head = c;
	*tail = c;
}

struct svc_call *svc_call_list_pop(struct svc_call **head, struct svc_call **tail)
{
	struct svc_call *c = *head;
	if (c != NULL) {
		*head = c->next;
		if (*head == NULL)
			*tail = NULL;
	}
	return c;
}

/* A new call (stream = false: bounded by MAX_QUEUED) or a stream's next fetch (stream = true:
 * bounded by --max-streams already). False when full, or closed at shutdown. */
bool svc_call_enqueue(struct svc_server *srv, struct svc_call *c, bool stream)
{
	pthread_mutex_lock(&srv->q_mu);
	if (srv->q_closed || (!stream && srv->q_len >= MAX_QUEUED)) {
		pthread_mutex_unlock(&srv->q_mu);
		return false;
	}
	if (stream) {
		svc_call_list_push(&srv->s_head, &srv->s_tail, c);
	} else {
		srv->q_len++;
		svc_call_list_push(&srv->q_head, &srv->q_tail, c);
	}
	pthread_cond_signal(&srv->q_cv);
	pthread_mutex_unlock(&srv->q_mu);
	return true;
}

/* The next call for a handler (under q_mu); NULL when there is nothing it may run. */
static struct svc_call *dequeue(struct svc_server *srv)
{
	struct svc_call *c = NULL;

	if (srv->s_head != NULL && (srv->q_head == NULL || ++srv->picks % STREAM_TURN == 0))
		return svc_call_list_pop(&srv->s_head, &srv->s_tail);
	c = svc_call_list_pop(&srv->q_head, &srv->q_tail);
	if (c != NULL)
		srv->q_len--;
	return c;
}

void *svc_handler_main(void *arg)
{
	struct svc_server *srv = arg;

	svc_log_defer();
	for (;;) {
		struct svc_call *c;
		pthread_mutex_lock(&srv->q_mu);
		while (srv->q_head == NULL && srv->s_head == NULL && !srv->q_closed) {
			if (svc_log_pending()) { /* out of work: the collected lines go out now */
				pthread_mutex_unlock(&srv->q_mu);
				svc_log_flush();
				pthread_mutex_lock(&srv->q_mu);
				continue;
			}
			pthread_cond_wait(&srv->q_cv, &srv->q_mu);
		}
		c = dequeue(srv);
		pthread_mutex_unlock(&srv->q_mu);
		if (c == NULL)
			break; /* closed and drained */
		if (c->sops != NULL) {
			if (c->s_n > 0)
				svc_driver_send(c); /* a stream's next message */
			else
				svc_driver_fetch(c); /* a stream's next batch */
			continue;
		}
		if (atomic_load(&c->async_state) == ASYNC_RESUMING) {
			async_continue(c); /* a continuation that may block */
			continue;
		}
		if (c->m != NULL && c->m->kind == SVC_BIDI_STREAM)
			svc_log_flush(); /* a bidi stream holds this thread for long */
		run_call(c);
	}
	svc_log_flush();
	svc_principal_cache_clear();
	return NULL;
}

/* The next event of cq; call log lines this thread collected are written once it has
 * nothing left to do, before it blocks. */
static grpc_event next_event(grpc_completion_queue *cq)
{
	if (svc_log_pending() || store_reads_pending()) {
		grpc_event ev =
		    grpc_completion_queue_next(cq, gpr_inf_past(GPR_CLOCK_MONOTONIC), NULL);
		if (ev.type != GRPC_QUEUE_TIMEOUT)
			return ev;
		/* Out of work: the reads this burst started go to the storage loop together. */
		store_reads_flush();
		svc_log_flush();
	}
	return grpc_completion_queue_next(cq, gpr_inf_future(GPR_CLOCK_MONOTONIC), NULL);
}

/* A completion of a poller's queue, wherever it was taken: a new call (accepted, its slot
 * re-armed, then run inline or queued) or a batch of a call. */
static void dispatch(struct svc_tag *t, int success)
{
	if (t->type != TAG_REQUEST) {
		on_call_event(t, success);
		return;
	}
	struct svc_slot *s = t->p;
	struct svc_server *srv = s->w->srv;
	if (!success) {
		/* Shutdown: the request was never matched. */
		grpc_metadata_array_destroy(&s->md);
		if (s->m == NULL)
			grpc_call_details_destroy(&s->details);
		return;
	}
	struct svc_call *c = accept_call(s);
	if (!atomic_load(&srv->shutting_down))
		svc_slot_arm(s);
	if (c == NULL)
		return;
	if (runs_inline(c->m)) {
		run_call(c);
	} else if (!svc_call_enqueue(srv, c, false)) {
		mat_error_set(&c->ctx.err, MAT_LIMIT,
		              "the server is overloaded: too many calls waiting");
		svc_call_finish(c, MAT_LIMIT);
	}
}

/* A completion queue's thread: its calls' completions until the queue is shut down. */
static void drain(grpc_completion_queue *cq)
{
	svc_log_defer();
	store_reads_defer(true);
	for (;;) {
		grpc_event ev = next_event(cq);
		if (ev.type == GRPC_QUEUE_SHUTDOWN)
			break;
		if (ev.type == GRPC_OP_COMPLETE)
			dispatch(ev.tag, ev.success);
	}
	store_reads_defer(false);
	svc_log_flush();
	svc_principal_cache_clear();
}

void *svc_poller_main(void *arg)
{
	struct svc_worker *w = arg;

	drain(w->cq);
	return NULL;
}

void *svc_streams_main(void *arg)
{
	struct svc_server *srv = arg;

	/* At the process's priority: at nice +10 the exports took 51-57 s instead of 38-41 s and
	 * held more memory meanwhile, and a unary call beside them was not faster (the bytes still
	 * cross the same door and poller). */
	(void)prctl(PR_SET_NAME, "streams", 0, 0, 0);
	drain(srv->stream_cq);
	return NULL;
}
