/* The server loop on grpc core.
 *
 * Threads: a few pollers, each owning one completion queue on which its armed requests (one per
 * registered method, plus the generic request that answers unknown paths) and the batches of
 * the calls bound to it complete. Pollers never block: they accept a call, re-arm its slot at
 * once, and hand the call to the pool of handler threads (--workers), which run the blocking
 * handlers (synchronous libpq). grpc core matches a new call to an armed request on its
 * connection's queue first (NOTES), so a queue whose thread blocked in a handler would hold
 * unrelated calls hostage for as long as a stream or a slow query lasts; with non-blocking
 * pollers every armed request is always served. Calls that cannot block (health checks, the
 * model catalog, scoring without storage) run inline on the poller: a hand-off would cost more
 * than the work. A stream send or receive waits on the call's condition variable, signalled by
 * the poller when the batch completes; cancellation reaches the handler the same way.
 *
 * A call: REQUESTED (slot armed) -> RECEIVED (slot completed; RECV_CLOSE_ON_SERVER started) ->
 * HANDLED (decode, authenticate, handler) -> SENDING (final batch) -> DONE (final batch and close
 * both completed: unref and free). */
#include "svc_server.h"

#include "auth.h"
#include "auth_policy.h"
#include "auth_tls.h"
#include "mat_validate.h"
#include "svc.h"
#include "svc_convert.h"
#include "svc_delegation.h"
#include "svc_door.h"
#include "svc_health.h"
#include "svc_health_port.h"
#include "svc_log.h"
#include "svc_metrics.h"
#include "svc_status.h"

#include <assert.h>
#include <errno.h>
#include <grpc/byte_buffer_reader.h>
#include <grpc/grpc.h>
#include <grpc/grpc_security.h>
#include <grpc/support/alloc.h>
#include <grpc/support/string_util.h>
#include <grpc/support/time.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <time.h>
#include <unistd.h>

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
	const struct auth_rule *rule;
	void *handle; /* grpc registered-method handle */
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

#define PRINCIPAL_CACHE 8

struct principal_cache_entry {
	char *pem;
	size_t len;
	char principal[MAT_MAX_PRINCIPAL + 1];
};

/* Principal of recent peer certificates, per thread: parsing X.509 per call costs more than
 * the rest of a health check. Keyed by the exact PEM bytes, so a new certificate is parsed
 * anew. Freed when the thread ends. */
struct principal_cache {
	struct principal_cache_entry e[PRINCIPAL_CACHE];
	unsigned next;
};
static _Thread_local struct principal_cache tl_cache;

static void principal_cache_clear(void)
{
	for (unsigned k = 0; k < PRINCIPAL_CACHE; k++) {
		free(tl_cache.e[k].pem);
		tl_cache.e[k].pem = NULL;
	}
}

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
	bool authorized;       /* svc_authorize ran and allowed */
	struct svc_call *next; /* handler queue */
	/* Engine-driven server stream (svc_stream_start): FETCHING (queued for, or in, fetch on a
	 * handler thread) -> SENDING (one message in flight, no thread) -> FETCHING ... or PARKED
	 * (in srv->parked, waiting for svc_server_wake_streams) -> DONE. */
	const struct svc_stream_ops *sops;
	void *sstate;
	size_t s_n, s_i;
	enum svc_fetch s_next;
	grpc_byte_buffer *send_bb;
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
	const struct svc_authz *async_az;  /* the decision svc_authorize_with armed, or NULL */
	bool async_blocks;                 /* svc_async_may_block: continue on a handler thread */
	struct svc_arena_block *req_arena; /* the decoded request, kept for the continuations */
	char generic_path[200];
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
	struct svc_health_port *health_port;
	struct svc_events *events;
	/* The front door owns the listening socket and TLS (NULL when grpc terminates TLS itself:
	 * MATURITYD_DIRECT_GRPC_TLS=1, for side-by-side benchmarks only). */
	struct svc_door *door;
	struct auth_tls *tls; /* the material at start; the door holds the current one */
};

static const struct svc_service_impl *const services[] = {
    &svc_model_service,         &svc_organization_service,
    &svc_assessment_service,    &svc_scoring_service,
    &svc_transition_service,    &svc_reporting_service,
    &svc_access_service,        &svc_health_service,
    &svc_reflection_v1_service, &svc_reflection_v1alpha_service,
    &svc_evidence_service,      &svc_gate_service,
    &svc_event_service,
};

const struct svc_config *svc_server_config(const struct svc_server *srv)
{
	return srv->cfg;
}

struct store_pool *svc_server_pool(const struct svc_server *srv)
{
	return srv->pool;
}

struct auth_tls *svc_server_tls(const struct svc_server *srv)
{
	return srv->door != NULL ? svc_door_tls(srv->door) : auth_tls_ref(srv->tls);
}

bool svc_server_db_ok(const struct svc_server *srv)
{
	return svc_health_db_ok(srv->health);
}

bool svc_server_serving(const struct svc_server *srv)
{
	return svc_health_serving(srv->health);
}

bool svc_server_grace_over(const struct svc_server *srv)
{
	return atomic_load(&((struct svc_server *)srv)->grace_over) != 0;
}

struct svc_metrics *svc_server_metrics(const struct svc_server *srv)
{
	return srv->metrics;
}

struct svc_health *svc_server_health(const struct svc_server *srv)
{
	return srv->health;
}

static void wake_streams_cb(void *arg)
{
	svc_server_wake_streams(arg);
}

static bool serving_cb(void *arg)
{
	return svc_server_serving(arg);
}

/* --- TLS -------------------------------------------------------------------------------- */

/* Runs on every new handshake: must stay cheap, so it only looks at an atomic flag. */
static grpc_ssl_certificate_config_reload_status
fetch_config(void *ud, grpc_ssl_server_certificate_config **out)
{
	struct svc_server *srv = ud;
	struct auth_pem fresh;
	enum auth_file bad;
	struct mat_error err;
	grpc_ssl_certificate_config_reload_status rc = GRPC_SSL_CERTIFICATE_CONFIG_RELOAD_UNCHANGED;

	*out = NULL;
	if (!atomic_exchange(&srv->reload_requested, 0))
		return rc;
	pthread_mutex_lock(&srv->pem_mu);
	if (srv->first_fetch_done) {
		mat_error_clear(&err);
		if (auth_pem_load(srv->cfg->tls_cert, srv->cfg->tls_key, srv->cfg->tls_client_ca,
		                  &fresh, &bad, &err) != MAT_OK) {
			svc_log_event("error",
			              "certificate reload failed, keeping the current "
			              "credentials: %s",
			              err.message);
			goto out;
		}
		auth_pem_cleanup(&srv->pem);
		srv->pem = fresh;
		svc_log_event("info", "certificates reloaded");
	}
	grpc_ssl_pem_key_cert_pair pair = {.private_key = srv->pem.private_key,
	                                   .cert_chain = srv->pem.cert_chain};
	*out = grpc_ssl_server_certificate_config_create(srv->pem.client_ca, &pair, 1);
	srv->first_fetch_done = true;
	rc = GRPC_SSL_CERTIFICATE_CONFIG_RELOAD_NEW;
out:
	pthread_mutex_unlock(&srv->pem_mu);
	return rc;
}

void svc_server_request_reload(struct svc_server *srv)
{
	struct auth_tls_files files = {srv->cfg->tls_cert, srv->cfg->tls_key,
	                               srv->cfg->tls_client_ca, srv->cfg->tls_crl};
	struct auth_tls *fresh = NULL;
	enum auth_file bad;
	struct mat_error err;

	atomic_store(&srv->reload_requested, 1);
	if (srv->door == NULL)
		return;
	/* The door reads the files now; new handshakes (and forwarded certificates) use them. */
	mat_error_clear(&err);
	if (auth_tls_new(&files, &fresh, &bad, &err) != MAT_OK) {
		svc_log_event("error", "certificate reload failed, keeping the current ones: %s",
		              err.message);
		return;
	}
	svc_door_set_tls(srv->door, fresh);
	auth_tls_unref(fresh);
	svc_log_event("info", "certificates%s reloaded", srv->cfg->tls_crl ? " and CRLs" : "");
}

/* --- method table --------------------------------------------------------------------- */

static enum mat_code unimplemented(struct svc_ctx *ctx, const ProtobufCMessage *req)
{
	return mat_error_set(&ctx->err, MAT_UNIMPLEMENTED, "%s is not implemented yet",
	                     ctx->method);
}

static int build_methods(struct svc_server *srv)
{
	size_t n = 0, k = 0;

	for (size_t s = 0; s < sizeof(services) / sizeof(services[0]); s++)
		n += services[s]->desc->n_methods;
	srv->methods = calloc(n, sizeof(*srv->methods));
	if (srv->methods == NULL)
		return -1;
	for (size_t s = 0; s < sizeof(services) / sizeof(services[0]); s++) {
		const struct svc_service_impl *impl = services[s];
		for (unsigned i = 0; i < impl->desc->n_methods; i++) {
			const ProtobufCMethodDescriptor *md = &impl->desc->methods[i];
			struct svc_method *m = &srv->methods[k++];
			snprintf(m->path, sizeof(m->path), "/%s/%s", impl->desc->name, md->name);
			m->service_name = impl->desc->name;
			m->method_name = md->name;
			m->input = md->input;
			m->fn = unimplemented;
			m->kind = SVC_UNARY;
			for (size_t j = 0; j < impl->n_methods; j++) {
				if (strcmp(impl->methods[j].name, md->name) == 0) {
					m->fn = impl->methods[j].fn;
					m->kind = impl->methods[j].kind;
				}
			}
			m->rule = auth_policy_find(m->path);
			if (m->rule == NULL) {
				svc_log_event("error", "no permission rule for %s", m->path);
				return -1;
			}
		}
	}
	srv->n_methods = n;
	return 0;
}

/* --- calls ---------------------------------------------------------------------------- */

static void arm(struct svc_slot *s)
{
	struct svc_server *srv = s->w->srv;
	grpc_call_error e;

	grpc_metadata_array_init(&s->md);
	s->call = NULL;
	s->payload = NULL;
	if (s->m != NULL) {
		e = grpc_server_request_registered_call(
		    srv->server, s->m->handle, &s->call, &s->deadline, &s->md,
		    s->m->kind == SVC_BIDI_STREAM ? NULL : &s->payload, s->w->cq, s->w->cq,
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

static void drop_bindings(struct svc_ctx *ctx)
{
	for (size_t i = 0; i < ctx->n_bindings; i++)
		mat_role_binding_cleanup(&ctx->bindings[i]);
	free(ctx->bindings);
	ctx->bindings = NULL;
	ctx->n_bindings = 0;
	ctx->bindings_loaded = false;
}

void svc_forget_bindings(struct svc_ctx *ctx)
{
	drop_bindings(ctx);
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
		c->sops->release(c->sstate);
		c->sops->free(c->sstate);
	}
	svc_arena_free(c->ctx.arena);
	svc_arena_free(c->req_arena);
	drop_bindings(&c->ctx);
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
static void stream_sent(struct svc_call *c, int success);
static bool stream_unpark(struct svc_call *c);
static void stream_end(struct svc_call *c, enum mat_code rc);

static void on_call_event(struct svc_tag *t, int success)
{
	struct svc_call *c = t->p;

	switch (t->type) {
	case TAG_CLOSE:
		if (c->close_cancelled)
			atomic_store(&c->ctx.cancelled, 1);
		/* A parked stream has no batch in flight to fail: its close ends it. */
		if (stream_unpark(c)) {
			mat_error_set(&c->ctx.err, MAT_CANCELLED, "the call was cancelled");
			stream_end(c, MAT_CANCELLED);
		}
		pthread_mutex_lock(&c->mu);
		pthread_cond_broadcast(&c->cv);
		pthread_mutex_unlock(&c->mu);
		call_release(c);
		break;
	case TAG_OP:
		if (c->sops != NULL) {
			stream_sent(c, success);
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

static grpc_byte_buffer *pack(const ProtobufCMessage *msg)
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
	c->reply_bb = pack(msg);
	return MAT_OK;
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
	bb = pack(msg);
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

/* Decodes bb; alloc NULL: malloc. A message that arrived in one uncompressed slice (the usual
 * case for requests this size) is decoded in place instead of copied out first. */
static ProtobufCMessage *decode(const ProtobufCMessageDescriptor *desc, grpc_byte_buffer *bb,
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
	*out = decode(desc, c->recv_bb, NULL, &ok);
	grpc_byte_buffer_destroy(c->recv_bb);
	c->recv_bb = NULL;
	if (!ok)
		return mat_error_set(&ctx->err, MAT_INVALID,
		                     "the request is not a valid %s message", desc->name);
	return svc_check_utf8(*out, &ctx->err) ? MAT_OK : MAT_INVALID;
}

void svc_store_call(struct svc_ctx *ctx, struct store_call *out)
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

static enum mat_code load_bindings(struct svc_ctx *ctx)
{
	struct store_call sc;
	enum mat_code rc;

	if (ctx->bindings_loaded)
		return MAT_OK;
	svc_store_call(ctx, &sc);
	rc = store_bindings_for_principal(&sc, ctx->principal, &ctx->bindings, &ctx->n_bindings,
	                                  &ctx->err);
	if (rc == MAT_OK)
		ctx->bindings_loaded = true;
	return rc;
}

static bool needs_bindings(const struct svc_ctx *ctx)
{
	return ctx->call->m->rule->perm != AUTH_PERM_ANY && !ctx->bootstrap_admin;
}

static bool allowed(const struct svc_ctx *ctx, const char *org_id)
{
	return auth_policy_allows(ctx->call->m->rule->perm, org_id, ctx->bindings, ctx->n_bindings,
	                          ctx->bootstrap_admin);
}

/* The refusal: audited before the response, then MAT_DENIED with its message. */
static enum mat_code deny(struct svc_ctx *ctx, const char *org_id)
{
	struct svc_call *c = ctx->call;
	struct store_call sc;
	struct mat_error ignored;
	char resource[128];

	if (org_id != NULL && org_id[0] != '\0')
		snprintf(resource, sizeof(resource), "organizations/%s", org_id);
	else
		resource[0] = '\0';
	svc_store_call(ctx, &sc);
	mat_error_clear(&ignored);
	/* An audit write that fails is logged, and the caller still gets PERMISSION_DENIED
	 * (never more access). */
	if (store_audit_denied(&sc, resource, 7 /* PERMISSION_DENIED */, &ignored) != MAT_OK)
		svc_log_event("error", "audit of a denial failed: %s", ignored.message);
	ctx->denial_audited = true;
	return mat_error_set(&ctx->err, MAT_DENIED, "%s may not call %s%s%s", ctx->principal,
	                     c->m->method_name, resource[0] ? " on " : "", resource);
}

enum mat_code svc_authorize(struct svc_ctx *ctx, const char *org_id)
{
	enum mat_code rc;

	if (needs_bindings(ctx)) {
		rc = load_bindings(ctx);
		if (rc != MAT_OK)
			return rc;
	}
	if (!allowed(ctx, org_id))
		return deny(ctx, org_id);
	ctx->call->authorized = true;
	return MAT_OK;
}

/* store_authz.decide: runs inside the store call, on this thread. */
static bool decide_in_store(void *arg, struct mat_role_binding *list, size_t n)
{
	struct svc_authz *a = arg;
	struct svc_ctx *ctx = a->ctx;

	ctx->bindings = list;
	ctx->n_bindings = n;
	ctx->bindings_loaded = true;
	return allowed(ctx, a->org_id);
}

void svc_authorize_with(struct svc_ctx *ctx, const char *org_id, struct store_call *sc,
                        struct svc_authz *a)
{
	memset(a, 0, sizeof(*a));
	if (!needs_bindings(ctx))
		return; /* allowed whatever the bindings: svc_authorized confirms */
	if (ctx->bindings_loaded) {
		/* Read again with the store call rather than decided here: storage must be the one
		 * that decides before a write, whatever the handler did earlier. (Rare: handlers
		 * that arm this read no bindings before.) */
		drop_bindings(ctx);
	}
	a->ctx = ctx;
	a->org_id = org_id;
	a->az.decide = decide_in_store;
	a->az.arg = a;
	sc->authz = &a->az;
	ctx->call->async_az = a;
}

enum mat_code svc_authorized(struct svc_ctx *ctx, const char *org_id, enum mat_code rc)
{
	enum mat_code lrc;

	if (needs_bindings(ctx) && !ctx->bindings_loaded) {
		/* The store call failed before the bindings arrived. A database that is down or
		 * out of time would fail a second read the same way: its error is the answer. */
		if (rc == MAT_UNAVAILABLE || rc == MAT_TIMEOUT || rc == MAT_CANCELLED)
			return rc;
		lrc = load_bindings(ctx);
		if (lrc != MAT_OK)
			return lrc;
	}
	if (!allowed(ctx, org_id)) {
		mat_error_clear(&ctx->err); /* nothing of what storage found may leak */
		return deny(ctx, org_id);
	}
	ctx->call->authorized = true;
	return rc;
}

bool svc_sees_all(struct svc_ctx *ctx)
{
	if (ctx->bootstrap_admin)
		return true;
	if (load_bindings(ctx) != MAT_OK)
		return false;
	return auth_policy_sees_all(ctx->bindings, ctx->n_bindings, false);
}

static bool principal_of(struct svc_call *c)
{
	grpc_auth_context *ac;
	grpc_auth_property_iterator it;
	const grpc_auth_property *p;
	bool ok = false;

	/* Through the front door: verified at the handshake, copied at receipt. */
	if (c->w->srv->door != NULL)
		return c->door_peer && c->ctx.principal[0] != '\0';
	ac = grpc_call_auth_context(c->call);
	if (ac == NULL)
		return false;
	if (!grpc_auth_context_peer_is_authenticated(ac))
		goto out;
	it = grpc_auth_context_find_properties_by_name(ac, "x509_pem_cert");
	p = grpc_auth_property_iterator_next(&it);
	if (p == NULL || p->value == NULL)
		goto out;
	for (unsigned i = 0; i < PRINCIPAL_CACHE; i++) {
		struct principal_cache_entry *e = &tl_cache.e[i];
		if (e->pem != NULL && e->len == p->value_length &&
		    memcmp(e->pem, p->value, e->len) == 0) {
			memcpy(c->ctx.principal, e->principal, sizeof(e->principal));
			ok = true;
			goto out;
		}
	}
	if (auth_principal_from_pem(p->value, p->value_length, c->ctx.principal,
	                            sizeof(c->ctx.principal), &c->ctx.err) != MAT_OK)
		goto out;
	{
		struct principal_cache_entry *e = &tl_cache.e[tl_cache.next++ % PRINCIPAL_CACHE];
		free(e->pem);
		e->pem = malloc(p->value_length);
		e->len = p->value_length;
		if (e->pem != NULL) {
			memcpy(e->pem, p->value, e->len);
			memcpy(e->principal, c->ctx.principal, sizeof(e->principal));
		}
	}
	ok = true;
out:
	grpc_auth_context_release(ac);
	return ok;
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

static double elapsed_ms(const struct timespec *start)
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

/* Sends the status (and the unary reply) in one batch: HANDLED -> SENDING. After this the call
 * belongs to the events thread. */
static void finish(struct svc_call *c, enum mat_code code)
{
	struct svc_server *srv = c->w->srv;
	struct svc_status st;
	struct svc_log_line line;
	grpc_op ops[4];
	size_t n = 0;
	double ms = elapsed_ms(&c->start);
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
	svc_log_call_format(&line, method, c->ctx.principal, c->ctx.delegator,
	                    svc_status_code_name(st.code), ms, c->ctx.request_id, c->peer,
	                    st.code == GRPC_STATUS_OK ? NULL : c->ctx.err.message);
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
	if (grpc_call_start_batch(c->call, ops, n, &c->final_tag, NULL) != GRPC_CALL_OK) {
		svc_log_line_write(&line);
		svc_log_event("error", "%s: could not send the status", method);
		svc_status_cleanup(&st);
		call_release(c);
		return;
	}
	svc_status_cleanup(&st);
	if (!quiet)
		svc_log_line_write(&line); /* after the reply left: the write never delays it */
}

/* --- the stream driver ------------------------------------------------------------------ */

static bool enqueue(struct svc_server *srv, struct svc_call *c, bool force);

int svc_stream_batch(struct svc_ctx *ctx, int most)
{
	int open = atomic_load(&ctx->srv->streams);
	int n = open > 0 ? SVC_STREAM_RECORD_BUDGET / open : most;

	return n < SVC_STREAM_BATCH_MIN ? SVC_STREAM_BATCH_MIN : (n > most ? most : n);
}

void svc_stream_start(struct svc_ctx *ctx, const struct svc_stream_ops *ops, void *state)
{
	struct svc_call *c = ctx->call;

	assert(c->sops == NULL && c->m != NULL && c->m->kind == SVC_SERVER_STREAM);
	c->sops = ops;
	c->sstate = state;
}

/* The stream is over (any thread): its batch goes, then its status. */
static void stream_end(struct svc_call *c, enum mat_code rc)
{
	if (rc == MAT_UNAVAILABLE || rc == MAT_TIMEOUT)
		svc_health_db_failed(c->w->srv->health, rc);
	c->sops->release(c->sstate);
	c->s_n = c->s_i = 0;
	finish(c, rc);
}

/* SENDING: record s_i of the batch leaves (any thread); stream_sent continues. */
static void stream_send(struct svc_call *c)
{
	const ProtobufCMessage *msg;
	grpc_op ops[2];
	size_t n = 0;

	svc_scratch_reset(&c->ctx);
	msg = c->sops->encode(&c->ctx, c->sstate, c->s_i);
	c->send_bb = pack(msg);
	/* The message is in send_bb now: its arena (a 16 KiB block) goes back at once instead of
	 * staying with a stream that parks (10,000 idle watches held 160 MiB that way). */
	svc_scratch_reset(&c->ctx);
	memset(ops, 0, sizeof(ops));
	if (!c->initial_md_sent) {
		ops[n].op = GRPC_OP_SEND_INITIAL_METADATA;
		n++;
		c->initial_md_sent = true;
	}
	ops[n].op = GRPC_OP_SEND_MESSAGE;
	ops[n].data.send_message.send_message = c->send_bb;
	n++;
	if (grpc_call_start_batch(c->call, ops, n, &c->op_tag, NULL) != GRPC_CALL_OK) {
		grpc_byte_buffer_destroy(c->send_bb);
		c->send_bb = NULL;
		mat_error_set(&c->ctx.err, MAT_CANCELLED, "the client went away");
		stream_end(c, MAT_CANCELLED);
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
	if (woken && !enqueue(srv, c, true)) {
		mat_error_set(&c->ctx.err, MAT_UNAVAILABLE, "the server is shutting down");
		stream_end(c, MAT_UNAVAILABLE);
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
static bool stream_unpark(struct svc_call *c)
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
		if (!enqueue(srv, c, true)) {
			mat_error_set(&c->ctx.err, MAT_UNAVAILABLE, "the server is shutting down");
			stream_end(c, MAT_UNAVAILABLE);
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
		if (!enqueue(srv, c, true)) {
			mat_error_set(&c->ctx.err, MAT_UNAVAILABLE, "the server is shutting down");
			stream_end(c, MAT_UNAVAILABLE);
		}
	}
}

/* FETCHING, on a handler thread: the next batch, then its first message. */
static void stream_fetch(struct svc_call *c)
{
	enum mat_code rc;

	if (atomic_load(&c->ctx.cancelled)) {
		mat_error_set(&c->ctx.err, MAT_CANCELLED, "the call was cancelled");
		stream_end(c, MAT_CANCELLED);
		return;
	}
	c->s_n = c->s_i = 0;
	c->s_next = SVC_FETCH_LAST;
	pthread_mutex_lock(&c->w->srv->park_mu);
	c->park_gen = c->w->srv->wake_gen;
	pthread_mutex_unlock(&c->w->srv->park_mu);
	rc = c->sops->fetch(&c->ctx, c->sstate, &c->s_n, &c->s_next);
	if (rc != MAT_OK) {
		stream_end(c, rc);
		return;
	}
	if (c->s_n > 0) {
		stream_send(c);
		return;
	}
	if (c->s_next == SVC_FETCH_PARK)
		stream_park(c);
	else
		stream_end(c, MAT_OK); /* an empty batch is the end, whatever it said */
}

/* A message of the stream left, or could not (on a poller). */
static void stream_sent(struct svc_call *c, int success)
{
	struct svc_server *srv = c->w->srv;

	grpc_byte_buffer_destroy(c->send_bb);
	c->send_bb = NULL;
	if (!success) {
		mat_error_set(&c->ctx.err, MAT_CANCELLED, "the client went away");
		stream_end(c, MAT_CANCELLED);
		return;
	}
	if (++c->s_i < c->s_n) {
		if (c->sops->encode_on_poller) {
			stream_send(c);
			return;
		}
		/* The next message is encoded on a handler thread, behind new calls: pollers only
		 * route, so thousands of streams sending never delay a unary call's accept. */
		if (!enqueue(srv, c, true)) {
			mat_error_set(&c->ctx.err, MAT_UNAVAILABLE, "the server is shutting down");
			stream_end(c, MAT_UNAVAILABLE);
		}
		return;
	}
	c->sops->release(c->sstate);
	c->s_n = c->s_i = 0;
	switch (c->s_next) {
	case SVC_FETCH_MORE:
		if (!enqueue(srv, c, true)) {
			mat_error_set(&c->ctx.err, MAT_UNAVAILABLE, "the server is shutting down");
			stream_end(c, MAT_UNAVAILABLE);
		}
		break;
	case SVC_FETCH_PARK:
		stream_park(c);
		break;
	case SVC_FETCH_LAST:
		finish(c, MAT_OK);
		break;
	}
}

/* Calls that never block (no storage) run on the poller itself. */
static bool runs_inline(const struct svc_method *m)
{
	return m == NULL || m->kind == SVC_UNARY_INLINE || m->kind == SVC_UNARY_ASYNC;
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
	 * batch instead, one batch and one completion per call like a bare server. */
	if (runs_inline(c->m)) {
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
 * authorization can: bindings the step could not read are read then, and a refusal is audited
 * (a write). Everything else a continuation does is decoding and encoding. */
static bool continuation_blocks(struct svc_call *c)
{
	struct svc_ctx *ctx = &c->ctx;
	const struct svc_authz *a = c->async_az;
	enum mat_code rc = c->async_rc;

	if (c->async_blocks)
		return true;
	if (a == NULL || !needs_bindings(ctx))
		return false;
	if (!ctx->bindings_loaded)
		return !(rc == MAT_UNAVAILABLE || rc == MAT_TIMEOUT || rc == MAT_CANCELLED);
	return !allowed(ctx, a->org_id);
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
		if (enqueue(c->w->srv, c, true))
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
	/* Reset while it waited for a handler: nothing to do (and nothing to read). */
	if (atomic_load(&c->ctx.cancelled)) {
		c->reset = true;
		rc = mat_error_set(&c->ctx.err, MAT_CANCELLED, "cancelled before it was handled");
		goto out;
	}
	if (!principal_of(c)) {
		struct store_call sc;
		struct mat_error ignored;
		svc_store_call(&c->ctx, &sc);
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
	rc = svc_principal_forwarded(&c->ctx, srv->cfg, &c->req_md);
	if (rc != MAT_OK)
		goto out;
	rc = svc_principal_resolve(&c->ctx, srv->cfg, &c->req_md);
	if (rc != MAT_OK)
		goto out;
	c->ctx.bootstrap_admin = svc_config_is_admin(srv->cfg, c->ctx.principal);
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
		req = decode(m->input, c->payload, &req_alloc_of, &ok);
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
	if (m->rule->perm == AUTH_PERM_ANY)
		c->authorized = true;
	if (m->kind == SVC_SERVER_STREAM || m->kind == SVC_BIDI_STREAM) {
		if (atomic_fetch_add(&srv->streams, 1) >= srv->max_streams) {
			atomic_fetch_sub(&srv->streams, 1);
			rc =
			    mat_error_set(&c->ctx.err, MAT_LIMIT,
			                  "too many streams in progress on this server (%d); retry "
			                  "later",
			                  srv->max_streams);
			goto out;
		}
		c->stream_counted = true; /* released by finish() */
	}
	rc = m->fn(&c->ctx, req);
	if (c->sops != NULL && rc == MAT_OK && c->authorized) {
		/* The engine drives the rest of the stream: the request is no longer needed. */
		svc_arena_free(req_arena);
		stream_fetch(c);
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
	finish(c, rc);
}

/* After the handler (and its continuation): the checks every unary call passes, then the
 * status. */
static void complete(struct svc_call *c, enum mat_code rc)
{
	struct svc_server *srv = c->w->srv;
	const struct svc_method *m = c->m;

	/* A handler that skipped svc_authorize for a guarded method is a bug: never send data. */
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
		svc_store_call(&c->ctx, &sc);
		mat_error_clear(&ignored);
		if (store_audit_denied(&sc, c->ctx.resource, 7, &ignored) != MAT_OK)
			svc_log_event("error", "audit of a denial failed: %s", ignored.message);
	}
	finish(c, rc);
}

/* Accepted calls waiting for a handler, at most: beyond it the server is overloaded and says so
 * at once (RESOURCE_EXHAUSTED) instead of queueing without bound (e.g. a client opening and
 * resetting streams in a loop, CVE-2023-44487's pattern). */
#define MAX_QUEUED 2048

#define STREAM_TURN 4

static void list_push(struct svc_call **head, struct svc_call **tail, struct svc_call *c)
{
	c->next = NULL;
	if (*tail != NULL)
		(*tail)->next = c;
	else
		*head = c;
	*tail = c;
}

static struct svc_call *list_pop(struct svc_call **head, struct svc_call **tail)
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
static bool enqueue(struct svc_server *srv, struct svc_call *c, bool stream)
{
	pthread_mutex_lock(&srv->q_mu);
	if (srv->q_closed || (!stream && srv->q_len >= MAX_QUEUED)) {
		pthread_mutex_unlock(&srv->q_mu);
		return false;
	}
	if (stream) {
		list_push(&srv->s_head, &srv->s_tail, c);
	} else {
		srv->q_len++;
		list_push(&srv->q_head, &srv->q_tail, c);
	}
	pthread_cond_signal(&srv->q_cv);
	pthread_mutex_unlock(&srv->q_mu);
	return true;
}

/* The next call for a handler (under q_mu); NULL when both queues are empty. */
static struct svc_call *dequeue(struct svc_server *srv)
{
	struct svc_call *c = NULL;

	if (srv->s_head != NULL && (srv->q_head == NULL || ++srv->picks % STREAM_TURN == 0))
		return list_pop(&srv->s_head, &srv->s_tail);
	c = list_pop(&srv->q_head, &srv->q_tail);
	if (c != NULL)
		srv->q_len--;
	return c;
}

static void *handler_main(void *arg)
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
				stream_send(c); /* a stream's next message */
			else
				stream_fetch(c); /* a stream's next batch */
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
	principal_cache_clear();
	return NULL;
}

/* The next event of w's queue; call log lines this thread collected are written once it has
 * nothing left to do, before it blocks. */
static grpc_event next_event(struct svc_worker *w)
{
	if (svc_log_pending() || store_reads_pending()) {
		grpc_event ev =
		    grpc_completion_queue_next(w->cq, gpr_inf_past(GPR_CLOCK_MONOTONIC), NULL);
		if (ev.type != GRPC_QUEUE_TIMEOUT)
			return ev;
		/* Out of work: the reads this burst started go to the storage loop together. */
		store_reads_flush();
		svc_log_flush();
	}
	return grpc_completion_queue_next(w->cq, gpr_inf_future(GPR_CLOCK_MONOTONIC), NULL);
}

static void *poller_main(void *arg)
{
	struct svc_worker *w = arg;
	struct svc_server *srv = w->srv;

	svc_log_defer();
	store_reads_defer(true);
	for (;;) {
		grpc_event ev = next_event(w);
		if (ev.type == GRPC_QUEUE_SHUTDOWN)
			break;
		if (ev.type != GRPC_OP_COMPLETE)
			continue;
		struct svc_tag *t = ev.tag;
		if (t->type != TAG_REQUEST) {
			on_call_event(t, ev.success);
			continue;
		}
		struct svc_slot *s = t->p;
		if (!ev.success) {
			/* Shutdown: the request was never matched. */
			grpc_metadata_array_destroy(&s->md);
			if (s->m == NULL)
				grpc_call_details_destroy(&s->details);
			continue;
		}
		struct svc_call *c = accept_call(s);
		if (!atomic_load(&srv->shutting_down))
			arm(s);
		if (c == NULL)
			continue;
		if (runs_inline(c->m)) {
			run_call(c);
		} else if (!enqueue(srv, c, false)) {
			mat_error_set(&c->ctx.err, MAT_LIMIT,
			              "the server is overloaded: too many calls waiting");
			finish(c, MAT_LIMIT);
		}
	}
	store_reads_defer(false);
	svc_log_flush();
	principal_cache_clear();
	return NULL;
}

/* --- lifecycle ------------------------------------------------------------------------ */

static grpc_arg int_arg(const char *key, int value)
{
	grpc_arg a;
	memset(&a, 0, sizeof(a));
	a.type = GRPC_ARG_INTEGER;
	a.key = (char *)key;
	a.value.integer = value;
	return a;
}

struct svc_server *svc_server_new(const struct svc_config *cfg, struct store_pool *pool,
                                  struct auth_pem *pem, struct auth_tls *tls)
{
	struct svc_server *srv = calloc(1, sizeof(*srv));
	grpc_ssl_server_credentials_options *opts;
	grpc_server_credentials *creds;
	grpc_arg args[9];
	grpc_channel_args chargs;
	size_t na = 0;

	if (srv == NULL) {
		auth_pem_cleanup(pem);
		auth_tls_unref(tls);
		return NULL;
	}
	srv->cfg = cfg;
	srv->pool = pool;
	srv->tls = tls;
	srv->pem = *pem;
	memset(pem, 0, sizeof(*pem));
	pthread_mutex_init(&srv->pem_mu, NULL);
	pthread_mutex_init(&srv->park_mu, NULL);
	atomic_init(&srv->reload_requested, 1); /* the first fetch hands grpc the initial files */
	atomic_init(&srv->shutting_down, 0);
	atomic_init(&srv->grace_over, 0);
	atomic_init(&srv->in_flight, 0);
	if (build_methods(srv) != 0)
		goto fail;
	srv->metrics = svc_metrics_new(srv->n_methods);
	for (size_t i = 0; srv->metrics != NULL && i < srv->n_methods; i++)
		svc_metrics_set_method(srv->metrics, i, srv->methods[i].service_name,
		                       srv->methods[i].method_name);
	srv->health = svc_health_new(pool);
	if (srv->metrics == NULL || srv->health == NULL)
		goto fail;
	svc_health_on_change(srv->health, wake_streams_cb, srv);

	args[na++] = int_arg(GRPC_ARG_MAX_RECEIVE_MESSAGE_LENGTH, cfg->max_recv_bytes);
	args[na++] = int_arg(GRPC_ARG_MAX_CONCURRENT_STREAMS, cfg->max_concurrent_streams);
	args[na++] = int_arg(GRPC_ARG_MAX_METADATA_SIZE, cfg->max_metadata_bytes);
	args[na++] = int_arg(GRPC_ARG_HTTP2_MIN_RECV_PING_INTERVAL_WITHOUT_DATA_MS,
	                     cfg->keepalive_min_ping_ms);
	args[na++] = int_arg(GRPC_ARG_MAX_CONNECTION_IDLE_MS, cfg->max_connection_idle_ms);
	args[na++] = int_arg(GRPC_ARG_MAX_CONNECTION_AGE_MS, cfg->max_connection_age_ms);
	args[na++] = int_arg(GRPC_ARG_MAX_CONNECTION_AGE_GRACE_MS, cfg->shutdown_grace_s * 1000);
	args[na++] = int_arg(GRPC_ARG_HTTP2_MAX_PING_STRIKES, 2);
	/* grpc sets SO_REUSEPORT by default: a second server on a taken port would share it. */
	args[na++] = int_arg(GRPC_ARG_ALLOW_REUSEPORT, 0);
	chargs.num_args = na;
	chargs.args = args;
	srv->server = grpc_server_create(&chargs, NULL);

	/* Pollers: one per core (they never block), at most 4; handlers: --workers. */
	{
		long cores = sysconf(_SC_NPROCESSORS_ONLN);
		srv->n_workers = cores < 1 ? 1 : (cores > 4 ? 4 : (int)cores);
	}
	srv->workers = calloc((size_t)srv->n_workers, sizeof(*srv->workers));
	srv->n_handlers = cfg->workers;
	srv->max_streams = cfg->max_streams > 0 ? cfg->max_streams : 1;
	atomic_init(&srv->streams, 0);
	srv->handlers = calloc((size_t)srv->n_handlers, sizeof(*srv->handlers));
	pthread_mutex_init(&srv->q_mu, NULL);
	pthread_cond_init(&srv->q_cv, NULL);
	if (srv->workers == NULL || srv->handlers == NULL)
		goto fail;
	for (size_t i = 0; i < srv->n_methods; i++) {
		struct svc_method *m = &srv->methods[i];
		m->metrics_index = (int)i;
		m->handle = grpc_server_register_method(
		    srv->server, m->path, NULL,
		    m->kind == SVC_BIDI_STREAM ? GRPC_SRM_PAYLOAD_NONE
		                               : GRPC_SRM_PAYLOAD_READ_INITIAL_BYTE_BUFFER,
		    0);
	}
	for (int i = 0; i < srv->n_workers; i++) {
		struct svc_worker *w = &srv->workers[i];
		w->srv = srv;
		w->index = i;
		w->cq = grpc_completion_queue_create_for_next(NULL);
		grpc_server_register_completion_queue(srv->server, w->cq, NULL);
	}
	srv->shutdown_cq = grpc_completion_queue_create_for_pluck(NULL);
	grpc_server_register_completion_queue(srv->server, srv->shutdown_cq, NULL);

	opts = grpc_ssl_server_credentials_create_options_using_config_fetcher(
	    GRPC_SSL_REQUEST_AND_REQUIRE_CLIENT_CERTIFICATE_AND_VERIFY, fetch_config, srv);
	creds = grpc_ssl_server_credentials_create_with_options(opts);
	if (svc_reflection_init() != 0) {
		svc_log_event("error", "the embedded descriptor set does not parse");
		goto fail;
	}
	{
		const char *direct = getenv("MATURITYD_DIRECT_GRPC_TLS");
		if (direct != NULL && strcmp(direct, "1") == 0) {
			svc_log_event("warn",
			              "MATURITYD_DIRECT_GRPC_TLS=1: grpc terminates TLS, "
			              "without the front door's defences (benchmarks only)");
			srv->port = grpc_server_add_http2_port(srv->server, cfg->listen, creds);
			grpc_server_credentials_release(creds);
			if (srv->port == 0) {
				svc_log_event("error", "cannot listen on %s (--listen)",
				              cfg->listen);
				goto fail;
			}
			return srv;
		}
	}
	grpc_server_credentials_release(creds);
	{
		struct svc_door_limits lim = {
		    .max_connections = cfg->max_connections,
		    .handshake_timeout_ms = cfg->handshake_timeout_s * 1000,
		    .max_metadata_bytes = (uint32_t)cfg->max_metadata_bytes,
		    .max_concurrent_streams = (uint32_t)cfg->max_concurrent_streams};
		srv->door = svc_door_new(&lim, srv->tls, srv->metrics);
		if (srv->door == NULL)
			goto fail;
		srv->port = svc_door_listen(srv->door, cfg->listen, true, srv->server);
		if (srv->port < 0) {
			svc_log_event("error", "cannot listen on %s (--listen)", cfg->listen);
			goto fail;
		}
	}
	return srv;
fail:
	if (srv->server != NULL) {
		/* Never started: destroying needs no shutdown. */
		grpc_server_shutdown_and_notify(srv->server, srv->shutdown_cq, NULL);
		grpc_server_cancel_all_calls(srv->server);
		grpc_completion_queue_pluck(srv->shutdown_cq, NULL,
		                            gpr_inf_future(GPR_CLOCK_REALTIME), NULL);
		grpc_server_destroy(srv->server);
		srv->server = NULL;
	}
	svc_server_free(srv);
	return NULL;
}

int svc_server_port(const struct svc_server *srv)
{
	return srv->port;
}

int svc_server_start(struct svc_server *srv)
{
	struct mat_error err;

	mat_error_clear(&err);
	/* Two pipelined connections keep both cores' backends busy; more only spread the same
	 * reads thinner (docs/architecture.md). */
	if (store_pool_start_loop(srv->pool, srv->cfg->db_pool < 2 ? srv->cfg->db_pool : 2, &err) !=
	    MAT_OK) {
		svc_log_event("error", "%s", err.message);
		return -1;
	}
	srv->events = svc_events_start(srv);
	if (srv->events == NULL)
		return -1;
	grpc_server_start(srv->server);
	svc_health_start(srv->health);
	if (srv->cfg->health_listen != NULL) {
		srv->health_port =
		    svc_health_port_start(srv->cfg->health_listen, srv->door, serving_cb, srv);
		if (srv->health_port == NULL)
			return -1;
	}
	/* After every listener is registered: the door's loop is its own from here. */
	if (srv->door != NULL && svc_door_start(srv->door) != 0)
		return -1;
	if (srv->cfg->metrics_listen != NULL &&
	    svc_metrics_serve(srv->metrics, srv->pool, srv->cfg->metrics_listen) != 0)
		return -1;
	for (int i = 0; i < srv->n_workers; i++) {
		struct svc_worker *w = &srv->workers[i];
		w->slots = calloc(srv->n_methods + 1, sizeof(*w->slots));
		assert(w->slots != NULL);
		for (size_t k = 0; k <= srv->n_methods; k++) {
			struct svc_slot *s = &w->slots[k];
			s->tag = (struct svc_tag){TAG_REQUEST, s};
			s->w = w;
			s->m = k < srv->n_methods ? &srv->methods[k] : NULL;
			arm(s);
		}
		pthread_create(&w->thread, NULL, poller_main, w);
	}
	for (int i = 0; i < srv->n_handlers; i++)
		pthread_create(&srv->handlers[i], NULL, handler_main, srv);
	return 0;
}

void svc_server_shutdown(struct svc_server *srv)
{
	struct timespec start;
	grpc_event ev;
	bool got_tag = false;
	int tag = 0;

	clock_gettime(CLOCK_MONOTONIC, &start);
	atomic_store(&srv->shutting_down, 1);
	svc_health_set_shutting_down(srv->health);
	/* No new connections; those open are relayed until grpc is done with them. */
	svc_door_close_listeners(srv->door, srv->server);
	grpc_server_shutdown_and_notify(srv->server, srv->shutdown_cq, &tag);
	/* In-flight calls get the grace period; idle connections do not hold us up (NOTES: the
	 * shutdown tag waits for clients that keep connections open). */
	while (elapsed_ms(&start) < srv->cfg->shutdown_grace_s * 1000.0) {
		if (atomic_load(&srv->in_flight) == 0)
			break;
		if (got_tag) {
			/* grpc counts a call done once its status is queued; ours still have their
			 * last batches to complete: cancelling now would cut them off the wire. */
			usleep(10000);
			continue;
		}
		ev = grpc_completion_queue_pluck(
		    srv->shutdown_cq, &tag,
		    gpr_time_add(gpr_now(GPR_CLOCK_MONOTONIC),
		                 gpr_time_from_millis(50, GPR_TIMESPAN)),
		    NULL);
		got_tag = ev.type == GRPC_OP_COMPLETE;
	}
	/* Event watches never finish by themselves: they end now with UNAVAILABLE (a status the
	 * client resumes from), before the cancellation below cuts what remains. */
	atomic_store(&srv->grace_over, 1);
	svc_server_wake_streams(srv);
	for (int i = 0; i < 20 && !got_tag && atomic_load(&srv->in_flight) > 0; i++) {
		ev = grpc_completion_queue_pluck(
		    srv->shutdown_cq, &tag,
		    gpr_time_add(gpr_now(GPR_CLOCK_MONOTONIC),
		                 gpr_time_from_millis(25, GPR_TIMESPAN)),
		    NULL);
		got_tag = ev.type == GRPC_OP_COMPLETE;
	}
	if (atomic_load(&srv->in_flight) > 0)
		svc_log_event("warn", "shutdown grace over: cancelling %d calls",
		              atomic_load(&srv->in_flight));
	grpc_server_cancel_all_calls(srv->server);
	if (!got_tag)
		grpc_completion_queue_pluck(srv->shutdown_cq, &tag,
		                            gpr_inf_future(GPR_CLOCK_REALTIME), NULL);
	grpc_server_destroy(srv->server);
	srv->server = NULL;
	/* Handlers finish what is queued (those calls are cancelled: their sends fail fast), then
	 * stop; their last batches complete on the pollers, which are still running. */
	pthread_mutex_lock(&srv->q_mu);
	srv->q_closed = true;
	pthread_cond_broadcast(&srv->q_cv);
	pthread_mutex_unlock(&srv->q_mu);
	for (int i = 0; i < srv->n_handlers; i++)
		pthread_join(srv->handlers[i], NULL);
	svc_events_stop(srv->events);
	srv->events = NULL;
	/* Reads still on the storage loop complete (UNAVAILABLE) and send their status while the
	 * pollers still drain their queues. */
	store_pool_stop_loop(srv->pool);
	/* Nothing starts a batch any more: the pollers' queues drain to SHUTDOWN. */
	for (int i = 0; i < srv->n_workers; i++)
		grpc_completion_queue_shutdown(srv->workers[i].cq);
	for (int i = 0; i < srv->n_workers; i++)
		pthread_join(srv->workers[i].thread, NULL);
	svc_metrics_stop(srv->metrics);
	svc_health_port_stop(srv->health_port);
	srv->health_port = NULL;
	/* Last: the health port's watchers got their NOT_SERVING through it. */
	svc_door_free(srv->door);
	srv->door = NULL;
	svc_health_stop(srv->health);
}

void svc_server_free(struct svc_server *srv)
{
	if (srv == NULL)
		return;
	for (int i = 0; srv->workers != NULL && i < srv->n_workers; i++) {
		struct svc_worker *w = &srv->workers[i];
		if (w->cq)
			grpc_completion_queue_destroy(w->cq);
		free(w->slots);
	}
	free(srv->workers);
	free(srv->handlers);
	pthread_mutex_destroy(&srv->q_mu);
	pthread_cond_destroy(&srv->q_cv);
	if (srv->shutdown_cq) {
		grpc_completion_queue_shutdown(srv->shutdown_cq);
		grpc_completion_queue_destroy(srv->shutdown_cq);
	}
	svc_door_free(srv->door);
	auth_tls_unref(srv->tls);
	svc_health_free(srv->health);
	svc_metrics_free(srv->metrics);
	free(srv->methods);
	auth_pem_cleanup(&srv->pem);
	pthread_mutex_destroy(&srv->pem_mu);
	pthread_mutex_destroy(&srv->park_mu);
	free(srv);
}
