/* The stream driver: server streams that hold no thread (svc_stream_start), and the blocking
 * sends and receives of bidi streams (svc_stream_send, svc_stream_recv: a send or receive waits on
 * the call's condition variable, signalled by the poller when the batch completes; cancellation
 * reaches the handler the same way).
 *
 * An engine-driven stream: FETCHING (queued for, or in, its kind's fetch on a handler thread)
 * -> SENDING (one message in flight, no thread) -> FETCHING ... or PARKED (in srv->parked,
 * waiting for svc_server_wake_streams) -> DONE. One message is in flight at a time, so a reader
 * that stops reading costs one batch of memory. The kinds (exports, health Watch, WatchEvents)
 * are the svc_stream_ops of their rpc_*.c; docs/architecture.md draws the states.
 *
 * Owns: the stream fields of struct svc_call and the parked list of struct svc_server
 * (park_mu). The call's lifecycle around it is svc_engine.c's (svc_engine.h). */
#include "svc_engine.h"

#include "svc_convert.h"
#include "svc_health.h"
#include "svc_status.h"

#include <assert.h>
#include <errno.h>
#include <grpc/grpc.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

/* --- blocking streams (bidi) ------------------------------------------------------------ */

/* Starts one batch and waits for it on the events thread (streams only). */
#define STREAM_STALL_MS 10000

static bool run_op_batch(struct svc_call *c, grpc_op *ops, size_t n)
{
	struct timespec until;
	bool ok;

	pthread_mutex_lock(&c->mu);
	c->op_done = false;
	pthread_mutex_unlock(&c->mu);
	if (grpc_call_start_batch(c->call, ops, n, &c->op_tag, NULL) != GRPC_CALL_OK)
		return false;
	/* A client that stops reading would hold this handler thread for as long as its deadline:
	 * after STREAM_STALL_MS without progress the call is cancelled and the thread freed. */
	clock_gettime(CLOCK_REALTIME, &until);
	until.tv_sec += STREAM_STALL_MS / 1000;
	pthread_mutex_lock(&c->mu);
	while (!c->op_done) {
		if (pthread_cond_timedwait(&c->cv, &c->mu, &until) == ETIMEDOUT && !c->op_done) {
			pthread_mutex_unlock(&c->mu);
			grpc_call_cancel_with_status(c->call, GRPC_STATUS_RESOURCE_EXHAUSTED,
			                             "the client stopped reading", NULL);
			pthread_mutex_lock(&c->mu);
			while (!c->op_done)
				pthread_cond_wait(&c->cv, &c->mu);
			break;
		}
	}
	ok = c->op_ok;
	pthread_mutex_unlock(&c->mu);
	return ok;
}
enum mat_code svc_stream_send(struct svc_ctx *ctx, const ProtobufCMessage *msg)
{
	struct svc_call *c = ctx->call;
	grpc_op ops[2];
	size_t n = 0;
	grpc_byte_buffer *bb;
	bool ok;

	if (atomic_load(&ctx->cancelled))
		return mat_error_set(&ctx->err, MAT_CANCELLED, "the call was cancelled");
	bb = svc_pack(msg);
	memset(ops, 0, sizeof(ops));
	if (!c->initial_md_sent) {
		ops[n].op = GRPC_OP_SEND_INITIAL_METADATA;
		n++;
		c->initial_md_sent = true;
	}
	ops[n].op = GRPC_OP_SEND_MESSAGE;
	ops[n].data.send_message.send_message = bb;
	n++;
	ok = run_op_batch(c, ops, n);
	grpc_byte_buffer_destroy(bb);
	if (!ok)
		return mat_error_set(&ctx->err, MAT_CANCELLED, "the client went away");
	return MAT_OK;
}

enum mat_code svc_stream_recv(struct svc_ctx *ctx, const ProtobufCMessageDescriptor *desc,
                              ProtobufCMessage **out)
{
	struct svc_call *c = ctx->call;
	grpc_op op;
	bool ok;

	*out = NULL;
	memset(&op, 0, sizeof(op));
	op.op = GRPC_OP_RECV_MESSAGE;
	op.data.recv_message.recv_message = &c->recv_bb;
	if (!run_op_batch(c, &op, 1))
		return mat_error_set(&ctx->err, MAT_CANCELLED, "the client went away");
	if (c->recv_bb == NULL)
		return MAT_OK; /* half-closed */
	*out = svc_decode(desc, c->recv_bb, NULL, &ok);
	grpc_byte_buffer_destroy(c->recv_bb);
	c->recv_bb = NULL;
	if (!ok)
		return mat_error_set(&ctx->err, MAT_INVALID,
		                     "the request is not a valid %s message", desc->name);
	return svc_check_utf8(*out, &ctx->err) ? MAT_OK : MAT_INVALID;
}
/* --- the stream driver ------------------------------------------------------------------ */

int svc_stream_batch(struct svc_ctx *ctx, int most)
{
	int open = atomic_load(&ctx->srv->streams);
	int n = open > 0 ? SVC_STREAM_RECORD_BUDGET / open : most;

	return n < SVC_STREAM_BATCH_MIN ? SVC_STREAM_BATCH_MIN : (n > most ? most : n);
}

void svc_stream_start(struct svc_ctx *ctx, const struct svc_stream_ops *ops, void *state)
{
	struct svc_call *c = ctx->call;

	assert(c->sops == NULL && c->m != NULL);
	/* A stream that starts on a poller must not fetch there. */
	assert(c->m->kind == SVC_SERVER_STREAM ||
	       (c->m->kind == SVC_SERVER_STREAM_ASYNC && ops->read != NULL));
	c->sops = ops;
	c->sstate = state;
}

static void bulk_put(struct svc_call *c);

/* The stream is over (any thread): its batch goes, then its status. */
void svc_driver_end(struct svc_call *c, enum mat_code rc)
{
	if (rc == MAT_UNAVAILABLE || rc == MAT_TIMEOUT)
		svc_health_db_failed(c->w->srv->health, rc);
	bulk_put(c);
	svc_driver_drop_packed(c);
	c->sops->release(c->sstate);
	c->s_n = c->s_i = 0;
	svc_call_finish(c, rc);
}

/* Messages of one batch leave back to back in a few writes: every message but the batch's
 * last is sent with GRPC_WRITE_BUFFER_HINT (the transport holds it for the next one) while
 * what is held stays under STREAM_HOLD_BYTES; the batch's last message, or the one that would
 * pass the bound, is sent plainly and flushes them all. A replay went from one write (and one
 * TLS record, one wake-up of the front door) per event to one per ~48 KiB: docs/benchmarks.md.
 *
 * Why the bound: grpc reports a held message sent at once only while the bytes waiting with
 * it fit in the transport's write buffer (64 KiB); past that the completion waits for a write.
 * A plain message completes only once everything before it has been written, so after each
 * flush nothing is waiting, and held messages (each with its 5-byte frame header) never pass
 * 48 KiB: every held completion comes at once, and a slow reader still holds at most one
 * batch (docs/architecture.md, "A server stream"). */
#define STREAM_HOLD_BYTES (48 * 1024)
#define GRPC_FRAME_HEADER 5
/* Only while few streams run: what grpc holds is this process's memory, where a plain write
 * would have left it in the kernel's socket buffers (2,000 slow exports: RSS 408 -> 458 MiB
 * with every stream holding). A lone replay is where it pays. */
#define STREAM_HOLD_MAX_STREAMS 64

static uint32_t hold_or_flush(struct svc_call *c, size_t len, bool with_initial_md)
{
	size_t held = c->s_held + len + GRPC_FRAME_HEADER;

	/* Never with the initial metadata: a batch holding it completes only once the headers
	 * are written, and a held message does not start a write, so it would wait for another
	 * stream's write (forever on a connection with one stream). */
	if (!with_initial_md && c->s_i + 1 < c->s_n && held <= STREAM_HOLD_BYTES &&
	    atomic_load(&c->w->srv->streams) <= STREAM_HOLD_MAX_STREAMS) {
		c->s_held = held;
		return GRPC_WRITE_BUFFER_HINT;
	}
	c->s_held = 0;
	return 0;
}

/* The messages of a batch not sent yet (pack_at_fetch) go. */
void svc_driver_drop_packed(struct svc_call *c)
{
	if (c->s_packed == NULL)
		return;
	for (size_t i = 0; i < c->s_n; i++)
		if (c->s_packed[i] != NULL)
			grpc_byte_buffer_destroy(c->s_packed[i]);
	free(c->s_packed);
	c->s_packed = NULL;
}

/* pack_at_fetch: the whole batch into messages, then the decoded batch goes. */
static bool pack_batch(struct svc_call *c)
{
	c->s_packed = calloc(c->s_n, sizeof(*c->s_packed));
	if (c->s_packed == NULL)
		return false;
	for (size_t i = 0; i < c->s_n; i++) {
		svc_scratch_reset(&c->ctx);
		c->s_packed[i] = svc_pack(c->sops->encode(&c->ctx, c->sstate, i));
	}
	svc_scratch_reset(&c->ctx);
	c->sops->release(c->sstate);
	return true;
}

/* SENDING: record s_i of the batch leaves (any thread); stream_sent continues. */
void svc_driver_send(struct svc_call *c)
{
	grpc_op ops[2];
	size_t n = 0;

	if (c->s_packed != NULL) {
		c->send_bb = c->s_packed[c->s_i];
		c->s_packed[c->s_i] = NULL;
	} else {
		svc_scratch_reset(&c->ctx);
		c->send_bb = svc_pack(c->sops->encode(&c->ctx, c->sstate, c->s_i));
		/* The message is in send_bb now: its arena (a 16 KiB block) goes back at once
		 * instead of staying with a stream that parks (10,000 idle watches held 160 MiB
		 * that way). */
		svc_scratch_reset(&c->ctx);
	}
	memset(ops, 0, sizeof(ops));
	if (!c->initial_md_sent) {
		ops[n].op = GRPC_OP_SEND_INITIAL_METADATA;
		n++;
		c->initial_md_sent = true;
	}
	ops[n].op = GRPC_OP_SEND_MESSAGE;
	ops[n].data.send_message.send_message = c->send_bb;
	ops[n].flags = hold_or_flush(c, grpc_byte_buffer_length(c->send_bb), n > 0);
	n++;
	if (grpc_call_start_batch(c->call, ops, n, &c->op_tag, NULL) != GRPC_CALL_OK) {
		grpc_byte_buffer_destroy(c->send_bb);
		c->send_bb = NULL;
		mat_error_set(&c->ctx.err, MAT_CANCELLED, "the client went away");
		svc_driver_end(c, MAT_CANCELLED);
	}
}

/* PARKED, unless a wake-up came since the fetch started (then it fetches again at once). */
static void stream_park(struct svc_call *c)
{
	struct svc_server *srv = c->w->srv;
	bool woken;

	c->due_ms = c->sops->due_ms != NULL ? c->sops->due_ms(c->sstate) : 0;
	pthread_mutex_lock(&srv->park_mu);
	woken = srv->wake_gen != c->park_gen || atomic_load(&c->ctx.cancelled);
	if (!woken) {
		c->parked = true;
		c->park_prev = NULL;
		c->park_next = srv->parked;
		if (srv->parked != NULL)
			srv->parked->park_prev = c;
		srv->parked = c;
	}
	pthread_mutex_unlock(&srv->park_mu);
	if (woken && !svc_call_enqueue(srv, c, true)) {
		mat_error_set(&c->ctx.err, MAT_UNAVAILABLE, "the server is shutting down");
		svc_driver_end(c, MAT_UNAVAILABLE);
	}
}

/* Unlinks a parked c (under park_mu). */
static void park_unlink(struct svc_server *srv, struct svc_call *c)
{
	if (c->park_prev != NULL)
		c->park_prev->park_next = c->park_next;
	else
		srv->parked = c->park_next;
	if (c->park_next != NULL)
		c->park_next->park_prev = c->park_prev;
	c->parked = false;
	c->park_prev = c->park_next = NULL;
}

/* Takes c out of the parked list; false if it was not there. */
bool svc_driver_unpark(struct svc_call *c)
{
	struct svc_server *srv = c->w->srv;
	bool was;

	if (c->sops == NULL)
		return false;
	pthread_mutex_lock(&srv->park_mu);
	was = c->parked;
	if (was)
		park_unlink(srv, c);
	pthread_mutex_unlock(&srv->park_mu);
	return was;
}

void svc_server_wake_streams(struct svc_server *srv)
{
	struct svc_call *list;

	pthread_mutex_lock(&srv->park_mu);
	srv->wake_gen++;
	list = srv->parked;
	srv->parked = NULL;
	for (struct svc_call *c = list; c != NULL; c = c->park_next)
		c->parked = false;
	pthread_mutex_unlock(&srv->park_mu);
	while (list != NULL) {
		struct svc_call *c = list;
		list = c->park_next;
		c->park_prev = c->park_next = NULL;
		if (!svc_call_enqueue(srv, c, true)) {
			mat_error_set(&c->ctx.err, MAT_UNAVAILABLE, "the server is shutting down");
			svc_driver_end(c, MAT_UNAVAILABLE);
		}
	}
}

void svc_server_wake_due_streams(struct svc_server *srv, int64_t now_ms)
{
	struct svc_call *due = NULL;

	/* No wake_gen bump: a fetch in progress has nothing new to see. */
	pthread_mutex_lock(&srv->park_mu);
	for (struct svc_call *c = srv->parked, *next; c != NULL; c = next) {
		next = c->park_next;
		if (c->due_ms == 0 || c->due_ms > now_ms)
			continue;
		park_unlink(srv, c);
		c->park_next = due;
		due = c;
	}
	pthread_mutex_unlock(&srv->park_mu);
	while (due != NULL) {
		struct svc_call *c = due;
		due = c->park_next;
		c->park_next = NULL;
		if (!svc_call_enqueue(srv, c, true)) {
			mat_error_set(&c->ctx.err, MAT_UNAVAILABLE, "the server is shutting down");
			svc_driver_end(c, MAT_UNAVAILABLE);
		}
	}
}

/* The batch is in (rc: its fetch's result): a decision that rode on the first batch's read
 * (SVC_AZ_IN_STEP: an export's bindings in its first pipeline, not a round trip of their own
 * as each of thousands of streams opens) is settled before any of it is sent — a refusal
 * replaces the batch — and a pack_at_fetch kind's batch is packed. */
static enum mat_code batch_ready(struct svc_call *c, enum mat_code rc)
{
	if (c->authz.armed)
		rc = svc_authz_settle(&c->ctx, rc);
	if (rc == MAT_OK && c->s_n > 0 && c->sops->pack_at_fetch && !pack_batch(c))
		rc = mat_error_set(&c->ctx.err, MAT_INTERNAL, "out of memory");
	return rc;
}

/* Then its first message goes, or the stream parks or ends. */
static void batch_go(struct svc_call *c, enum mat_code rc)
{
	if (rc != MAT_OK)
		svc_driver_end(c, rc);
	else if (c->s_n > 0)
		svc_driver_send(c);
	else if (c->s_next == SVC_FETCH_PARK)
		stream_park(c);
	else
		svc_driver_end(c, MAT_OK); /* an empty batch is the end, whatever it said */
}

/* FETCHING: a new batch, nothing of the last one left. */
static void fetch_begin(struct svc_call *c)
{
	c->s_n = c->s_i = 0;
	c->s_next = SVC_FETCH_LAST;
	pthread_mutex_lock(&c->w->srv->park_mu);
	c->park_gen = c->w->srv->wake_gen;
	pthread_mutex_unlock(&c->w->srv->park_mu);
}

/* --- bulk fetches: read on the storage loop, decoded on libuv's work pool ----------------------
 *
 * A bulk stream (sops->read) queues for one of srv->bulk_max slots (bulk_get); holding one, it
 * starts its read (bulk_read) and no thread waits; the read's completion, on the loop thread,
 * hands the decoding and packing to libuv's work pool (uv_queue_work: the body on a pool thread,
 * its completion on the loop thread), whose completion gives the slot to the next stream in
 * line (bulk_put) and sends the batch's first message. Handler threads play no part: writes
 * holding all of them (a transaction waiting on a lock) do not stop the exports. */

static void bulk_read(struct svc_call *c);

/* The slot goes to the next stream in line, or back. Iterative: a stream that gets it may end
 * at once (cancelled) and hand it on again, thousands deep at shutdown, so a nested hand-off
 * only counts here and the outermost frame of this thread makes it. */
static void bulk_release(struct svc_server *srv)
{
	static _Thread_local bool releasing;
	static _Thread_local int owed;

	owed++;
	if (releasing)
		return;
	releasing = true;
	while (owed > 0) {
		struct svc_call *next;

		owed--;
		pthread_mutex_lock(&srv->bulk_mu);
		next = svc_call_list_pop(&srv->b_head, &srv->b_tail);
		if (next == NULL && --srv->bulk_running == 0) {
			pthread_cond_broadcast(&srv->bulk_cv);
		}
		pthread_mutex_unlock(&srv->bulk_mu);
		if (next != NULL)
			bulk_read(next);
	}
	releasing = false;
}

/* c's slot, if it holds one, goes (idempotent). */
static void bulk_put(struct svc_call *c)
{
	if (!c->s_bulk_slot)
		return;
	c->s_bulk_slot = false;
	bulk_release(c->w->srv);
}

/* A slot for c now, or a place in line (then bulk_release starts its read). */
static void bulk_get(struct svc_call *c)
{
	struct svc_server *srv = c->w->srv;
	bool now;

	pthread_mutex_lock(&srv->bulk_mu);
	now = srv->bulk_running < srv->bulk_max;
	if (now)
		srv->bulk_running++;
	else
		svc_call_list_push(&srv->b_head, &srv->b_tail, c);
	pthread_mutex_unlock(&srv->bulk_mu);
	if (now)
		bulk_read(c);
}

/* On a thread of libuv's work pool: what was read becomes the batch, packed. */
static void bulk_decode(uv_work_t *w)
{
	struct svc_call *c = w->data;
	enum mat_code rc = c->s_rc;

	if (rc == MAT_OK)
		rc = c->sops->fetch(&c->ctx, c->sstate, &c->s_n, &c->s_next);
	/* A first batch whose authorization needs a round trip of its own (bindings the read
	 * could not carry, or a refusal to audit: a write) gives its slot to the next export
	 * first, so no export waits behind that write. */
	if (svc_authz_settle_blocks(&c->ctx, rc))
		bulk_put(c);
	c->s_rc = batch_ready(c, rc);
}

/* Back on the loop thread: the slot goes on, the batch goes out. */
static void bulk_decoded(uv_work_t *w, int status)
{
	struct svc_call *c = w->data;

	(void)status; /* never cancelled */
	bulk_put(c);
	batch_go(c, c->s_rc);
}

/* The read is in (or failed): on the loop thread, or on the thread that started it when it
 * failed at once or no loop runs (then the decoding runs right there too). */
static void bulk_read_done(void *arg, enum mat_code rc)
{
	struct svc_call *c = arg;
	struct svc_server *srv = c->w->srv;

	c->s_rc = rc;
	c->s_work.data = c;
	if (srv->loop_running && pthread_equal(pthread_self(), srv->loop_thread) &&
	    uv_queue_work(&srv->loop, &c->s_work, bulk_decode, bulk_decoded) == 0)
		return;
	bulk_decode(&c->s_work);
	bulk_decoded(&c->s_work, 0);
}

/* Holding a slot: the read starts (any thread; it does not wait). */
static void bulk_read(struct svc_call *c)
{
	struct svc_server *srv = c->w->srv;
	bool closed;

	c->s_bulk_slot = true;
	if (atomic_load(&c->ctx.cancelled)) {
		mat_error_set(&c->ctx.err, MAT_CANCELLED, "the call was cancelled");
		svc_driver_end(c, MAT_CANCELLED);
		return;
	}
	pthread_mutex_lock(&srv->bulk_mu);
	closed = srv->bulk_closed;
	pthread_mutex_unlock(&srv->bulk_mu);
	if (closed) {
		mat_error_set(&c->ctx.err, MAT_UNAVAILABLE, "the server is shutting down");
		svc_driver_end(c, MAT_UNAVAILABLE);
		return;
	}
	fetch_begin(c);
	c->sops->read(&c->ctx, c->sstate, bulk_read_done, c);
}

void svc_stream_bulk_close(struct svc_server *srv)
{
	pthread_mutex_lock(&srv->bulk_mu);
	srv->bulk_closed = true;
	pthread_mutex_unlock(&srv->bulk_mu);
}

void svc_stream_bulk_drain(struct svc_server *srv)
{
	pthread_mutex_lock(&srv->bulk_mu);
	while (srv->bulk_running > 0 || srv->b_head != NULL)
		pthread_cond_wait(&srv->bulk_cv, &srv->bulk_mu);
	pthread_mutex_unlock(&srv->bulk_mu);
}

/* --- FETCHING ------------------------------------------------------------------------------ */

/* The next batch, then its first message: on this handler thread, or for a bulk kind on the
 * storage loop and the work pool (this returns at once). */
void svc_driver_fetch(struct svc_call *c)
{
	enum mat_code rc;

	if (atomic_load(&c->ctx.cancelled)) {
		mat_error_set(&c->ctx.err, MAT_CANCELLED, "the call was cancelled");
		svc_driver_end(c, MAT_CANCELLED);
		return;
	}
	if (c->sops->read != NULL) {
		bulk_get(c);
		return;
	}
	fetch_begin(c);
	rc = c->sops->fetch(&c->ctx, c->sstate, &c->s_n, &c->s_next);
	batch_go(c, batch_ready(c, rc));
}

/* A message of the stream left, or could not (on the streams thread). */
void svc_driver_sent(struct svc_call *c, int success)
{
	struct svc_server *srv = c->w->srv;

	grpc_byte_buffer_destroy(c->send_bb);
	c->send_bb = NULL;
	if (!success) {
		mat_error_set(&c->ctx.err, MAT_CANCELLED, "the client went away");
		svc_driver_end(c, MAT_CANCELLED);
		return;
	}
	if (++c->s_i < c->s_n) {
		if (c->sops->encode_inline || c->s_packed != NULL) {
			svc_driver_send(c);
			return;
		}
		/* The next message is encoded on a handler thread, behind new calls: thousands of
		 * streams encoding never delay the other streams' sends. */
		if (!svc_call_enqueue(srv, c, true)) {
			mat_error_set(&c->ctx.err, MAT_UNAVAILABLE, "the server is shutting down");
			svc_driver_end(c, MAT_UNAVAILABLE);
		}
		return;
	}
	svc_driver_drop_packed(c);
	c->sops->release(c->sstate);
	c->s_n = c->s_i = 0;
	switch (c->s_next) {
	case SVC_FETCH_MORE:
		if (c->sops->read != NULL) {
			svc_driver_fetch(c); /* it queues for a bulk slot, not a handler */
			break;
		}
		if (!svc_call_enqueue(srv, c, true)) {
			mat_error_set(&c->ctx.err, MAT_UNAVAILABLE, "the server is shutting down");
			svc_driver_end(c, MAT_UNAVAILABLE);
		}
		break;
	case SVC_FETCH_PARK:
		stream_park(c);
		break;
	case SVC_FETCH_LAST:
		svc_call_finish(c, MAT_OK);
		break;
	}
}
