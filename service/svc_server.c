/* The gRPC server: building it (grpc server, completion queues, listeners through the front
 * door), the method table (services[] and their permission rules), TLS reload, start and
 * graceful shutdown. The calls themselves are the engine's: svc_engine.c (call lifecycle, step
 * runner, threads), svc_stream.c (stream driver), svc_authz.c (principals, authorization);
 * svc_engine.h is what they share. */
#include "svc_server.h"

#include "auth.h"
#include "auth_policy.h"
#include "auth_tls.h"
#include "grpc/health/v1/health.pb-c.h"
#include "grpc/reflection/v1/reflection.pb-c.h"
#include "grpc/reflection/v1alpha/reflection.pb-c.h"
#include "mlops/maturity/v1/access.pb-c.h"
#include "mlops/maturity/v1/assessment.pb-c.h"
#include "mlops/maturity/v1/event.pb-c.h"
#include "mlops/maturity/v1/evidence.pb-c.h"
#include "mlops/maturity/v1/gate.pb-c.h"
#include "mlops/maturity/v1/model.pb-c.h"
#include "mlops/maturity/v1/organization.pb-c.h"
#include "mlops/maturity/v1/reporting.pb-c.h"
#include "mlops/maturity/v1/scoring.pb-c.h"
#include "mlops/maturity/v1/transition.pb-c.h"
#include "svc.h"
#include "svc_door.h"
#include "svc_engine.h"
#include "svc_health.h"
#include "svc_log.h"
#include "svc_methods.h"
#include "svc_metrics.h"

#include <assert.h>
#include <grpc/grpc.h>
#include <grpc/grpc_security.h>
#include <grpc/support/time.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

/* The services served: every method of each must have a row in svc_methods.def. */
static const ProtobufCServiceDescriptor *const services[] = {
    &mlops__maturity__v1__model_service__descriptor,
    &mlops__maturity__v1__organization_service__descriptor,
    &mlops__maturity__v1__assessment_service__descriptor,
    &mlops__maturity__v1__scoring_service__descriptor,
    &mlops__maturity__v1__transition_service__descriptor,
    &mlops__maturity__v1__reporting_service__descriptor,
    &mlops__maturity__v1__access_service__descriptor,
    &grpc__health__v1__health__descriptor,
    &grpc__reflection__v1__server_reflection__descriptor,
    &grpc__reflection__v1alpha__server_reflection__descriptor,
    &mlops__maturity__v1__evidence_service__descriptor,
    &mlops__maturity__v1__gate_service__descriptor,
    &mlops__maturity__v1__event_service__descriptor,
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

/* One registered method per method of the served services, each with its row. A method without
 * a row, a row without a method, or a row that would block a poller is a bug of the table: the
 * server does not start. */
static int build_methods(struct svc_server *srv)
{
	size_t n = 0, k = 0, n_rows;
	(void)svc_rpcs(&n_rows);

	for (size_t s = 0; s < sizeof(services) / sizeof(services[0]); s++)
		n += services[s]->n_methods;
	srv->methods = calloc(n, sizeof(*srv->methods));
	if (srv->methods == NULL)
		return -1;
	for (size_t s = 0; s < sizeof(services) / sizeof(services[0]); s++) {
		const ProtobufCServiceDescriptor *desc = services[s];
		for (unsigned i = 0; i < desc->n_methods; i++) {
			const ProtobufCMethodDescriptor *md = &desc->methods[i];
			struct svc_method *m = &srv->methods[k++];
			snprintf(m->path, sizeof(m->path), "/%s/%s", desc->name, md->name);
			m->service_name = desc->name;
			m->method_name = md->name;
			m->input = md->input;
			m->row = svc_rpc_find(m->path);
			if (m->row == NULL) {
				svc_log_event("error", "no row in svc_methods.def for %s", m->path);
				return -1;
			}
			m->fn = m->row->fn;
			m->kind = m->row->kind;
			if (svc_kind_on_poller(m->kind) && m->row->az == SVC_AZ_BEFORE &&
			    m->row->rule.perm != AUTH_PERM_ANY) {
				svc_log_event(
				    "error",
				    "%s runs on a poller: it must be authorized in its step",
				    m->path);
				return -1;
			}
		}
	}
	if (n != n_rows) {
		svc_log_event("error", "svc_methods.def has %zu rows for %zu methods", n_rows, n);
		return -1;
	}
	srv->n_methods = n;
	return 0;
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

/* MATURITYD_DIRECT_GRPC_TLS=1: grpc terminates TLS itself, without the door (side-by-side
 * benchmarks only). */
static bool direct_grpc_tls(void)
{
	const char *v = getenv("MATURITYD_DIRECT_GRPC_TLS");
	return v != NULL && strcmp(v, "1") == 0;
}

/* --- the loop thread --------------------------------------------------------------------- */

/* The door's relay and the storage loop share one libuv loop and its thread (docs/architecture.md,
 * "Threads"): under load one wake-up serves a client's bytes, database results and grpc's reply
 * bytes together, where two threads woke each other for every call (a third less server CPU per
 * GetLiveScore, docs/benchmarks.md). libuv handles are set up and closed on the thread that runs
 * their loop, so the door's and the storage loop's set-up run there too (on_loop). */

static void loop_call_cb(uv_async_t *h)
{
	struct svc_server *srv = h->data;
	void (*fn)(void *);
	void *arg;

	pthread_mutex_lock(&srv->lc_mu);
	fn = srv->lc_fn;
	arg = srv->lc_arg;
	pthread_mutex_unlock(&srv->lc_mu);
	if (fn != NULL) {
		fn(arg);
		pthread_mutex_lock(&srv->lc_mu);
		srv->lc_fn = NULL;
		srv->lc_done++;
		pthread_cond_broadcast(&srv->lc_cv);
		pthread_mutex_unlock(&srv->lc_mu);
	}
	pthread_mutex_lock(&srv->lc_mu);
	/* The last handle of ours: the loop ends once the door's and the storage loop's are
	 * closed too. */
	if (srv->lc_quit && !uv_is_closing((uv_handle_t *)h))
		uv_close((uv_handle_t *)h, NULL);
	pthread_mutex_unlock(&srv->lc_mu);
}

/* Runs fn(arg) on the loop thread and returns when it has. Not on the loop thread. */
static void on_loop(struct svc_server *srv, void (*fn)(void *), void *arg)
{
	unsigned ticket;

	pthread_mutex_lock(&srv->lc_mu);
	while (srv->lc_fn != NULL)
		pthread_cond_wait(&srv->lc_cv, &srv->lc_mu);
	srv->lc_fn = fn;
	srv->lc_arg = arg;
	ticket = srv->lc_done + 1;
	uv_async_send(&srv->loop_call);
	while ((int)(srv->lc_done - ticket) < 0)
		pthread_cond_wait(&srv->lc_cv, &srv->lc_mu);
	pthread_mutex_unlock(&srv->lc_mu);
}

static void *loop_main(void *arg)
{
	struct svc_server *srv = arg;

	/* The loop thread finishes calls too (their replies and log lines): it defers its call
	 * lines like a poller and writes them before it sleeps (the storage loop's idle hook). */
	svc_log_defer();
	uv_run(&srv->loop, UV_RUN_DEFAULT);
	svc_log_flush();
	return NULL;
}

static int loop_begin(struct svc_server *srv)
{
	if (uv_loop_init(&srv->loop) != 0)
		return -1;
	srv->loop_inited = true;
	uv_async_init(&srv->loop, &srv->loop_call, loop_call_cb);
	srv->loop_call.data = srv;
	if (pthread_create(&srv->loop_thread, NULL, loop_main, srv) != 0) {
		uv_close((uv_handle_t *)&srv->loop_call, NULL);
		uv_run(&srv->loop, UV_RUN_DEFAULT);
		return -1;
	}
	srv->loop_running = true;
	return 0;
}

/* Ends the loop thread: the storage loop and the door close their handles on it first (each
 * stop is idempotent: shutdown has usually stopped the storage loop already). */
static void loop_end(struct svc_server *srv)
{
	if (!srv->loop_running)
		return;
	store_pool_stop_loop(srv->pool);
	svc_door_stop(srv->door);
	pthread_mutex_lock(&srv->lc_mu);
	srv->lc_quit = true;
	uv_async_send(&srv->loop_call);
	pthread_mutex_unlock(&srv->lc_mu);
	pthread_join(srv->loop_thread, NULL);
	srv->loop_running = false;
}

/* Set-up steps run on the loop thread (on_loop). */
struct loop_job {
	struct svc_server *srv;
	const struct svc_door_limits *lim;
	const char *addr;
	bool tls;
	int rc;
	struct mat_error *err;
};

static void door_new_job(void *arg)
{
	struct loop_job *j = arg;

	j->srv->door = svc_door_new(j->lim, j->srv->tls, j->srv->metrics, &j->srv->loop);
}

static void door_listen_job(void *arg)
{
	struct loop_job *j = arg;

	j->rc = svc_door_listen(j->srv->door, j->addr, j->tls, j->srv->server);
}

static void door_start_job(void *arg)
{
	struct loop_job *j = arg;

	j->rc = svc_door_start(j->srv->door);
}

static void store_loop_job(void *arg)
{
	/* Two pipelined connections keep both cores' backends busy; more only spread the same
	 * reads thinner (docs/architecture.md). Export batches get one of their own per bulk
	 * fetch that may run at once (svc_stream.c): in a shared pipeline a GetOrganization
	 * behind a batch waited for its milliseconds. The loop's idle hook writes the call log
	 * lines the loop thread deferred (loop_main). */
	static const struct store_loop_hooks hooks = {svc_log_flush};
	struct loop_job *j = arg;
	const struct svc_config *cfg = j->srv->cfg;

	j->rc = store_pool_start_loop(j->srv->pool, cfg->db_pool < 2 ? cfg->db_pool : 2,
	                              j->srv->bulk_max, &hooks, &j->srv->loop, j->err) == MAT_OK
	            ? 0
	            : -1;
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
	pthread_mutex_init(&srv->bulk_mu, NULL);
	pthread_cond_init(&srv->bulk_cv, NULL);
	pthread_mutex_init(&srv->lc_mu, NULL);
	pthread_cond_init(&srv->lc_cv, NULL);
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
	if (loop_begin(srv) != 0) {
		svc_log_event("error", "cannot start the loop thread");
		goto fail;
	}

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

	/* Pollers: one per four cores, at least one, at most 4; handlers: --workers. grpc's
	 * poller (epoll1) lets one thread at a time wait in epoll; the others wait on a condition
	 * variable and are woken to take over each time it returns with events, so on 2 cores a
	 * second poller added a futex wake and wait to every call (3.1 -> 1.3 context switches per
	 * GetOrganization with one; docs/benchmarks.md). A second one pays off only when the work
	 * that runs on pollers (scoring, health, grpc's framing; TLS is the door's) outgrows a
	 * core. */
	{
		long cores = sysconf(_SC_NPROCESSORS_ONLN);
		/* Where grpc terminates TLS itself (the benchmarks' comparison server) its pollers
		 * do the cryptography: one per core, as before the door. */
		long n = direct_grpc_tls() ? cores : cores / 4;
		srv->n_workers = n < 1 ? 1 : (n > 4 ? 4 : (int)n);
		/* Bulk fetches (exports): one per two cores. With four running at once on 2 cores
		 * (--workers 4, each export backend busy for milliseconds a batch) a
		 * GetOrganization beside 2,000 exports waited behind them for CPU: p99 40-60 ms, 10
		 * ms with one (docs/benchmarks.md, "Streams"). */
		srv->bulk_max = cores / 2 < 1 ? 1 : (int)(cores / 2);
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
	{
		/* Non-polling: its thread never joins grpc's pollers (docs/architecture.md). */
		grpc_completion_queue_attributes attr = {GRPC_CQ_CURRENT_VERSION, GRPC_CQ_NEXT,
		                                         GRPC_CQ_NON_POLLING, NULL};
		srv->stream_cq = grpc_completion_queue_create(
		    grpc_completion_queue_factory_lookup(&attr), &attr, NULL);
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
		if (direct_grpc_tls()) {
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
		struct loop_job job = {.srv = srv, .lim = &lim, .addr = cfg->listen, .tls = true};

		on_loop(srv, door_new_job, &job);
		if (srv->door == NULL)
			goto fail;
		on_loop(srv, door_listen_job, &job);
		srv->port = job.rc;
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
	struct loop_job job = {.srv = srv, .err = &err};

	mat_error_clear(&err);
	on_loop(srv, store_loop_job, &job);
	if (job.rc != 0) {
		svc_log_event("error", "%s", err.message);
		return -1;
	}
	srv->events = svc_events_start(srv);
	if (srv->events == NULL)
		return -1;
	grpc_server_start(srv->server);
	svc_health_start(srv->health);
	/* The health port: a second, plaintext listener of this same engine, which serves
	 * grpc.health.v1 only on its connections (svc_engine.c). */
	if (srv->cfg->health_listen != NULL) {
		if (srv->door == NULL) {
			svc_log_event("error", "--health-listen needs the front door "
			                       "(not available with MATURITYD_DIRECT_GRPC_TLS=1)");
			return -1;
		}
		job.addr = srv->cfg->health_listen;
		job.tls = false;
		on_loop(srv, door_listen_job, &job);
		if (job.rc < 0) {
			svc_log_event("error", "--health-listen: cannot listen on %s",
			              srv->cfg->health_listen);
			return -1;
		}
	}
	/* After every listener is registered: the listeners start accepting. */
	if (srv->door != NULL) {
		on_loop(srv, door_start_job, &job);
		if (job.rc != 0)
			return -1;
	}
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
			svc_slot_arm(s);
		}
		pthread_create(&w->thread, NULL, svc_poller_main, w);
	}
	for (int i = 0; i < srv->n_handlers; i++)
		pthread_create(&srv->handlers[i], NULL, svc_handler_main, srv);
	srv->stream_thread_started =
	    pthread_create(&srv->stream_thread, NULL, svc_streams_main, srv) == 0;
	return 0;
}

/* How long shutdown waits, after the grace, for the front door to hand grpc's last bytes to
 * clients still reading them (a stream that finished within the grace, its tail still in the
 * relay). */
#define SHUTDOWN_DRAIN_MS 2000

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
	/* In-flight calls get the grace period; idle connections do not hold us up
	 * (docs/architecture.md, grpc core: the shutdown tag waits for clients that keep
	 * connections open). */
	while (svc_elapsed_ms(&start) < srv->cfg->shutdown_grace_s * 1000.0) {
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
	svc_stream_bulk_close(srv);
	store_pool_stop_loop(srv->pool);
	/* Exports' batches between their read and their first message end (on the loop thread,
	 * which still runs) before their queues go. */
	svc_stream_bulk_drain(srv);
	/* Nothing starts a batch any more: the pollers' queues drain to SHUTDOWN. */
	for (int i = 0; i < srv->n_workers; i++)
		grpc_completion_queue_shutdown(srv->workers[i].cq);
	grpc_completion_queue_shutdown(srv->stream_cq);
	for (int i = 0; i < srv->n_workers; i++)
		pthread_join(srv->workers[i].thread, NULL);
	if (srv->stream_thread_started)
		pthread_join(srv->stream_thread, NULL);
	srv->stream_thread_started = false;
	svc_metrics_stop(srv->metrics);
	if (!svc_door_wait_drained(srv->door, SHUTDOWN_DRAIN_MS))
		svc_log_event("warn", "shutdown: clients still reading after %d ms: closing",
		              SHUTDOWN_DRAIN_MS);
	loop_end(srv);
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
	if (srv->stream_cq != NULL)
		grpc_completion_queue_destroy(srv->stream_cq);
	pthread_mutex_destroy(&srv->q_mu);
	pthread_cond_destroy(&srv->q_cv);
	if (srv->shutdown_cq) {
		grpc_completion_queue_shutdown(srv->shutdown_cq);
		grpc_completion_queue_destroy(srv->shutdown_cq);
	}
	loop_end(srv);
	svc_door_free(srv->door);
	if (srv->loop_inited)
		(void)uv_loop_close(&srv->loop);
	pthread_mutex_destroy(&srv->lc_mu);
	pthread_cond_destroy(&srv->lc_cv);
	auth_tls_unref(srv->tls);
	svc_health_free(srv->health);
	svc_metrics_free(srv->metrics);
	free(srv->methods);
	auth_pem_cleanup(&srv->pem);
	pthread_mutex_destroy(&srv->pem_mu);
	pthread_mutex_destroy(&srv->park_mu);
	pthread_mutex_destroy(&srv->bulk_mu);
	pthread_cond_destroy(&srv->bulk_cv);
	free(srv);
}
