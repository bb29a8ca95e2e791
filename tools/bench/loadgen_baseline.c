/* maturity-loadgen baseline: a bare grpc-core server that does no work, to measure what the
 * transport alone can do on this machine (E, the ceiling for maturityd's calls/s). It uses
 * maturityd's TLS mode (client certificate required and verified) and its transport channel
 * arguments; W threads (default two per core: 4 here) each drain a completion queue of their
 * own, as maturityd's pollers do (one per core, at most 4: 2 here; 1, 2 or 4 pollers measured
 * no different for maturityd, docs/benchmarks.md). It answers grpc.health.v1.Health/Check
 * (SERVING) and ScoringService/EvaluateAnswers (a fixed, realistically sized score) from bytes
 * packed once; anything else gets UNIMPLEMENTED. */
#include "loadgen.h"

#include <getopt.h>
#include <grpc/grpc_security.h>
#include <grpc/support/time.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "grpc/health/v1/health.pb-c.h"
#include "mlops/maturity/v1/scoring.pb-c.h"

enum { B_HEALTH, B_EVALUATE, B_GENERIC, B_N };

struct bserver {
	grpc_server *server;
	void *handle[B_GENERIC];
	grpc_slice reply[B_GENERIC]; /* packed once; each response refs it */
	grpc_completion_queue *shutdown_cq;
	struct bworker *workers;
	int nworkers;
	bool started; /* worker threads are running */
	atomic_bool shutting_down;
	atomic_long in_flight;
	atomic_ullong served[B_N];
};

struct bworker {
	struct bserver *srv;
	grpc_completion_queue *cq;
	pthread_t thread;
};

/* One requested call, from the request through its single response batch; the tag. */
struct bcall {
	struct bworker *w;
	int method;
	bool responding;
	grpc_call *call;
	gpr_timespec deadline;
	grpc_metadata_array md;
	grpc_call_details details; /* generic request only */
	grpc_byte_buffer *payload;
	grpc_byte_buffer *reply;
	int cancelled;
};

static void arm(struct bworker *w, int method)
{
	struct bserver *srv = w->srv;
	struct bcall *c;
	grpc_call_error e;

	if (atomic_load(&srv->shutting_down))
		return;
	c = calloc(1, sizeof(*c));
	if (c == NULL)
		abort();
	c->w = w;
	c->method = method;
	grpc_metadata_array_init(&c->md);
	if (method == B_GENERIC) {
		grpc_call_details_init(&c->details);
		e = grpc_server_request_call(srv->server, &c->call, &c->details, &c->md, w->cq,
		                             w->cq, c);
	} else {
		e = grpc_server_request_registered_call(srv->server, srv->handle[method], &c->call,
		                                        &c->deadline, &c->md, &c->payload, w->cq,
		                                        w->cq, c);
	}
	if (e != GRPC_CALL_OK) {
		/* Shutdown has begun: nothing will complete this request. */
		grpc_metadata_array_destroy(&c->md);
		if (method == B_GENERIC)
			grpc_call_details_destroy(&c->details);
		free(c);
	}
}

static void bcall_free(struct bcall *c)
{
	grpc_metadata_array_destroy(&c->md);
	if (c->method == B_GENERIC)
		grpc_call_details_destroy(&c->details);
	if (c->payload != NULL)
		grpc_byte_buffer_destroy(c->payload);
	if (c->reply != NULL)
		grpc_byte_buffer_destroy(c->reply);
	if (c->call != NULL)
		grpc_call_unref(c->call);
	free(c);
}

/* The whole response in one batch: one completion per call, as cheap as core allows. */
static void respond(struct bcall *c)
{
	struct bserver *srv = c->w->srv;
	grpc_op ops[4];
	size_t n = 0;
	grpc_call_error e;

	memset(ops, 0, sizeof(ops));
	ops[n++].op = GRPC_OP_RECV_CLOSE_ON_SERVER;
	ops[0].data.recv_close_on_server.cancelled = &c->cancelled;
	ops[n++].op = GRPC_OP_SEND_INITIAL_METADATA;
	if (c->method != B_GENERIC) {
		c->reply = grpc_raw_byte_buffer_create(&srv->reply[c->method], 1);
		ops[n].op = GRPC_OP_SEND_MESSAGE;
		ops[n++].data.send_message.send_message = c->reply;
	}
	ops[n].op = GRPC_OP_SEND_STATUS_FROM_SERVER;
	ops[n].data.send_status_from_server.status =
	    c->method == B_GENERIC ? GRPC_STATUS_UNIMPLEMENTED : GRPC_STATUS_OK;
	n++;
	c->responding = true;
	e = grpc_call_start_batch(c->call, ops, n, c, NULL);
	if (e != GRPC_CALL_OK) {
		fprintf(stderr, "maturity-loadgen baseline: grpc_call_start_batch failed (%d)\n",
		        (int)e);
		abort();
	}
}

static void *worker_main(void *arg)
{
	struct bworker *w = arg;
	struct bserver *srv = w->srv;

	for (;;) {
		grpc_event ev =
		    grpc_completion_queue_next(w->cq, gpr_inf_future(GPR_CLOCK_MONOTONIC), NULL);
		struct bcall *c;

		if (ev.type == GRPC_QUEUE_SHUTDOWN)
			break;
		if (ev.type != GRPC_OP_COMPLETE)
			continue;
		c = ev.tag;
		if (c->responding) {
			atomic_fetch_add(&srv->served[c->method], 1);
			bcall_free(c);
			atomic_fetch_sub(&srv->in_flight, 1);
			continue;
		}
		if (!ev.success) { /* shutdown: the request was never matched */
			bcall_free(c);
			continue;
		}
		atomic_fetch_add(&srv->in_flight, 1);
		/* Re-arm first: nothing here blocks, and a call waiting for a request costs
		 * latency. */
		arm(w, c->method);
		respond(c);
	}
	return NULL;
}

static grpc_slice pack(const ProtobufCMessage *m)
{
	size_t n = protobuf_c_message_get_packed_size(m);
	grpc_slice s = grpc_slice_malloc(n);

	protobuf_c_message_pack(m, GRPC_SLICE_START_PTR(s));
	return s;
}

/* About the size of a real EvaluateAnswers response (four dimensions, a few blockers). */
static grpc_slice evaluate_reply(void)
{
	static const char *const dims[4] = {"people", "model_creation", "model_release",
	                                    "application_integration"};
	static char *blocking[3] = {"model_creation.managed_compute",
	                            "model_release.tested_scoring_scripts",
	                            "people.ds_de_repeatable_jobs"};
	Mlops__Maturity__V1__DimensionScore ds[4];
	Mlops__Maturity__V1__DimensionScore *dsp[4];
	Mlops__Maturity__V1__AssessmentScore score = MLOPS__MATURITY__V1__ASSESSMENT_SCORE__INIT;
	Mlops__Maturity__V1__EvaluateAnswersResponse resp =
	    MLOPS__MATURITY__V1__EVALUATE_ANSWERS_RESPONSE__INIT;

	for (int i = 0; i < 4; i++) {
		mlops__maturity__v1__dimension_score__init(&ds[i]);
		ds[i].dimension_id = (char *)dims[i];
		ds[i].level = 1 + i % 2;
		ds[i].progress_to_next_level = 0.5;
		ds[i].satisfied_count = 4;
		ds[i].total_count = 7;
		dsp[i] = &ds[i];
	}
	score.overall_level = 1;
	score.maturity_index = 56.67;
	score.progress_to_next_level = 0.4375;
	score.n_dimension_scores = 4;
	score.dimension_scores = dsp;
	score.satisfied_count = 16;
	score.total_count = 30;
	score.n_blocking_practice_ids = 3;
	score.blocking_practice_ids = blocking;
	resp.score = &score;
	return pack(&resp.base);
}

static grpc_arg int_arg(const char *key, int value)
{
	grpc_arg a;

	memset(&a, 0, sizeof(a));
	a.type = GRPC_ARG_INTEGER;
	a.key = (char *)key;
	a.value.integer = value;
	return a;
}

static grpc_server_credentials *server_creds(const char *ca_file, const char *cert_file,
                                             const char *key_file)
{
	char *ca = lg_slurp(ca_file), *cert = lg_slurp(cert_file), *key = lg_slurp(key_file);
	grpc_server_credentials *creds = NULL;

	if (ca == NULL)
		fprintf(stderr, "maturity-loadgen baseline: cannot read %s (--ca)\n", ca_file);
	else if (cert == NULL)
		fprintf(stderr, "maturity-loadgen baseline: cannot read %s (--cert)\n", cert_file);
	else if (key == NULL)
		fprintf(stderr, "maturity-loadgen baseline: cannot read %s (--key)\n", key_file);
	else
		creds = grpc_ssl_server_credentials_create_ex(
		    ca, &(grpc_ssl_pem_key_cert_pair){key, cert}, 1,
		    GRPC_SSL_REQUEST_AND_REQUIRE_CLIENT_CERTIFICATE_AND_VERIFY, NULL);
	free(ca);
	free(cert);
	free(key);
	return creds;
}

/* The clean shutdown of docs/architecture.md ("grpc core 1.51"): stop re-arming,
 * shutdown_and_notify, give in-flight calls a grace period (and stop waiting as soon as there are
 * none: idle client connections would otherwise hold the shutdown tag back), cancel the rest,
 * destroy, then drain and join the workers. */
static void shutdown_server(struct bserver *srv, double grace_s)
{
	uint64_t give_up = lg_now_ns() + (uint64_t)(grace_s * 1e9);
	grpc_event ev;
	int tag = 0;

	atomic_store(&srv->shutting_down, true);
	grpc_server_shutdown_and_notify(srv->server, srv->shutdown_cq, &tag);
	for (;;) {
		ev = grpc_completion_queue_pluck(srv->shutdown_cq, &tag,
		                                 lg_deadline_in_ns(20 * 1000000), NULL);
		if (ev.type == GRPC_OP_COMPLETE)
			break;
		if (atomic_load(&srv->in_flight) == 0 || lg_now_ns() >= give_up) {
			grpc_server_cancel_all_calls(srv->server);
			grpc_completion_queue_pluck(srv->shutdown_cq, &tag,
			                            gpr_inf_future(GPR_CLOCK_MONOTONIC), NULL);
			break;
		}
	}
	grpc_server_destroy(srv->server);
	srv->server = NULL;
	for (int i = 0; i < srv->nworkers; i++)
		grpc_completion_queue_shutdown(srv->workers[i].cq);
	for (int i = 0; i < srv->nworkers; i++) {
		if (srv->started)
			pthread_join(srv->workers[i].thread, NULL);
		else
			while (grpc_completion_queue_next(srv->workers[i].cq,
			                                  gpr_inf_future(GPR_CLOCK_MONOTONIC), NULL)
			           .type != GRPC_QUEUE_SHUTDOWN)
				;
		grpc_completion_queue_destroy(srv->workers[i].cq);
	}
	grpc_completion_queue_shutdown(srv->shutdown_cq);
	while (grpc_completion_queue_pluck(srv->shutdown_cq, NULL,
	                                   gpr_inf_future(GPR_CLOCK_MONOTONIC), NULL)
	           .type != GRPC_QUEUE_SHUTDOWN)
		;
	grpc_completion_queue_destroy(srv->shutdown_cq);
}

int lg_baseline_main(int argc, char **argv)
{
	static const struct option longopts[] = {
	    {"listen", required_argument, NULL, 'l'},  {"cert", required_argument, NULL, 'c'},
	    {"key", required_argument, NULL, 'k'},     {"ca", required_argument, NULL, 'a'},
	    {"workers", required_argument, NULL, 'w'}, {"armed", required_argument, NULL, 'n'},
	    {"help", no_argument, NULL, 'h'},          {NULL, 0, NULL, 0},
	};
	const char *listen = NULL, *cert = NULL, *key = NULL, *ca = NULL;
	long ncpu = sysconf(_SC_NPROCESSORS_ONLN);
	long workers = 2 * (ncpu > 0 ? ncpu : 1), armed = 1;
	struct bserver srv;
	grpc_server_credentials *creds;
	grpc_arg args[8];
	grpc_channel_args chargs = {0, args};
	sigset_t sigs;
	int sig, port, c;

	optind = 1;
	while ((c = getopt_long(argc, argv, "", longopts, NULL)) != -1) {
		switch (c) {
		case 'l':
			listen = optarg;
			break;
		case 'c':
			cert = optarg;
			break;
		case 'k':
			key = optarg;
			break;
		case 'a':
			ca = optarg;
			break;
		case 'w':
			if (!lg_parse_int(optarg, 1, 1024, &workers)) {
				fprintf(stderr, "maturity-loadgen: bad value for --workers: %s\n",
				        optarg);
				return 2;
			}
			break;
		case 'n':
			if (!lg_parse_int(optarg, 1, 4096, &armed)) {
				fprintf(stderr, "maturity-loadgen: bad value for --armed: %s\n",
				        optarg);
				return 2;
			}
			break;
		case 'h':
			fputs(
			    "usage: maturity-loadgen baseline --listen HOST:PORT --cert server.pem "
			    "--key server.key --ca ca.pem [--workers W] [--armed A]\n",
			    stdout);
			return 0;
		default:
			return 2;
		}
	}
	if (listen == NULL || cert == NULL || key == NULL || ca == NULL) {
		fprintf(stderr, "maturity-loadgen baseline: --listen, --cert, --key and --ca are "
		                "required\n");
		return 2;
	}

	memset(&srv, 0, sizeof(srv));
	atomic_init(&srv.shutting_down, false);
	atomic_init(&srv.in_flight, 0);
	for (int m = 0; m < B_N; m++)
		atomic_init(&srv.served[m], 0);
	sigemptyset(&sigs);
	sigaddset(&sigs, SIGINT);
	sigaddset(&sigs, SIGTERM);
	pthread_sigmask(SIG_BLOCK, &sigs, NULL); /* before grpc_init: its threads inherit it */
	grpc_init();

	creds = server_creds(ca, cert, key);
	if (creds == NULL) {
		grpc_shutdown_blocking();
		return 2;
	}
	/* maturityd's defaults (service/svc_config.c), so the transport behaves the same. */
	args[chargs.num_args++] = int_arg(GRPC_ARG_MAX_RECEIVE_MESSAGE_LENGTH, 4194304);
	args[chargs.num_args++] = int_arg(GRPC_ARG_MAX_CONCURRENT_STREAMS, 256);
	args[chargs.num_args++] = int_arg(GRPC_ARG_MAX_METADATA_SIZE, 16384);
	args[chargs.num_args++] =
	    int_arg(GRPC_ARG_HTTP2_MIN_RECV_PING_INTERVAL_WITHOUT_DATA_MS, 10000);
	args[chargs.num_args++] = int_arg(GRPC_ARG_MAX_CONNECTION_IDLE_MS, 600000);
	args[chargs.num_args++] = int_arg(GRPC_ARG_MAX_CONNECTION_AGE_MS, 3600000);
	args[chargs.num_args++] = int_arg(GRPC_ARG_MAX_CONNECTION_AGE_GRACE_MS, 10000);
	args[chargs.num_args++] = int_arg(GRPC_ARG_HTTP2_MAX_PING_STRIKES, 2);
	srv.server = grpc_server_create(&chargs, NULL);
	srv.handle[B_HEALTH] =
	    grpc_server_register_method(srv.server, lg_method_path[LG_M_HEALTH], NULL,
	                                GRPC_SRM_PAYLOAD_READ_INITIAL_BYTE_BUFFER, 0);
	srv.handle[B_EVALUATE] =
	    grpc_server_register_method(srv.server, lg_method_path[LG_M_EVALUATE], NULL,
	                                GRPC_SRM_PAYLOAD_READ_INITIAL_BYTE_BUFFER, 0);
	{
		Grpc__Health__V1__HealthCheckResponse hr =
		    GRPC__HEALTH__V1__HEALTH_CHECK_RESPONSE__INIT;
		hr.status = GRPC__HEALTH__V1__HEALTH_CHECK_RESPONSE__SERVING_STATUS__SERVING;
		srv.reply[B_HEALTH] = pack(&hr.base);
		srv.reply[B_EVALUATE] = evaluate_reply();
	}
	srv.nworkers = (int)workers;
	srv.workers = calloc((size_t)workers, sizeof(*srv.workers));
	if (srv.workers == NULL)
		abort();
	for (int i = 0; i < srv.nworkers; i++) {
		srv.workers[i].srv = &srv;
		srv.workers[i].cq = grpc_completion_queue_create_for_next(NULL);
		grpc_server_register_completion_queue(srv.server, srv.workers[i].cq, NULL);
	}
	srv.shutdown_cq = grpc_completion_queue_create_for_pluck(NULL);
	grpc_server_register_completion_queue(srv.server, srv.shutdown_cq, NULL);
	port = grpc_server_add_http2_port(srv.server, listen, creds);
	grpc_server_credentials_release(creds);
	if (port == 0) {
		fprintf(stderr, "maturity-loadgen baseline: cannot listen on %s (--listen)\n",
		        listen);
		shutdown_server(&srv, 0); /* never started: nothing in flight */
		free(srv.workers);
		for (int m = 0; m < B_GENERIC; m++)
			grpc_slice_unref(srv.reply[m]);
		grpc_shutdown_blocking();
		return 2;
	}
	grpc_server_start(srv.server);
	for (int i = 0; i < srv.nworkers; i++) {
		for (long k = 0; k < armed; k++) {
			arm(&srv.workers[i], B_HEALTH);
			arm(&srv.workers[i], B_EVALUATE);
		}
		arm(&srv.workers[i], B_GENERIC);
		pthread_create(&srv.workers[i].thread, NULL, worker_main, &srv.workers[i]);
	}
	srv.started = true;
	fprintf(stderr,
	        "maturity-loadgen baseline: listening on port %d (%s), %d workers, %ld "
	        "armed per method\n",
	        port, listen, srv.nworkers, armed);

	while (sigwait(&sigs, &sig) != 0)
		;
	shutdown_server(&srv, 5);
	fprintf(stderr,
	        "maturity-loadgen baseline: served %llu health, %llu evaluate, %llu other\n",
	        (unsigned long long)atomic_load(&srv.served[B_HEALTH]),
	        (unsigned long long)atomic_load(&srv.served[B_EVALUATE]),
	        (unsigned long long)atomic_load(&srv.served[B_GENERIC]));
	free(srv.workers);
	for (int m = 0; m < B_GENERIC; m++)
		grpc_slice_unref(srv.reply[m]);
	grpc_shutdown_blocking();
	return 0;
}
