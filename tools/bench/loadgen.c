/* maturity-loadgen: a load generator for maturityd on grpc core, and (loadgen_baseline.c) a bare
 * grpc-core server that measures the transport's own limit on the machine.
 *
 * Client: K channels (one connection each, mutual TLS), driven by T threads, each with its
 * own completion queue and a fixed set of call slots. Closed loop keeps N calls in flight (a
 * slot starts its next call as soon as one completes). Open loop schedules calls at a fixed
 * rate from a sender thread per client thread and measures latency from the scheduled time, so
 * queueing anywhere (client, network, server) shows up; when all slots are busy the scheduled
 * call is dropped and counted. Calls started during the warm-up are not counted. */
#include "loadgen.h"

#include <errno.h>
#include <getopt.h>
#include <grpc/support/time.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <time.h>
#include <unistd.h>

struct client_opts {
	const char *target, *ca, *cert, *key, *json;
	struct lg_scenario_opts sc;
	long concurrency, connections, threads;
	double duration_s, warmup_s, rate, timeout_s, connect_timeout_s;
	bool concurrency_set;
};

struct channel {
	grpc_channel *ch;
	void *handle[LG_N_METHODS];
};

struct run;

/* One call in flight; the slot is the batch's tag. */
struct slot {
	struct lg_thread *t;
	grpc_call *call;
	grpc_byte_buffer *send, *recv;
	grpc_metadata_array initial, trailing;
	grpc_status_code status;
	grpc_slice details;
	uint64_t start_ns; /* closed loop: when sent; open loop: when scheduled */
	int method;
	int chan;
	struct slot *next_free;
};

struct lg_thread {
	struct run *run;
	int index;
	grpc_completion_queue *cq;
	struct slot *slots;
	int nslots;
	pthread_t thread, sender;
	/* Open loop: the sender takes free slots, the completion loop gives them back. */
	pthread_mutex_t mu;
	struct slot *free_list;
	atomic_int inflight;
	atomic_bool sender_done;
	uint64_t dropped;
	uint64_t last_done_ns;
	struct lg_hist *lag;                      /* open loop: actual send - scheduled time */
	struct lg_hist *hist;                     /* [LG_N_METHODS] */
	uint64_t codes[LG_N_METHODS][LG_N_CODES]; /* only calls started after the warm-up */
};

struct run {
	const struct client_opts *o;
	struct lg_scenario *sc;
	struct channel *chans;
	int nchans;
	struct lg_thread *threads;
	int nthreads;
	uint64_t t0, warm_end;
	_Atomic uint64_t end; /* brought forward by SIGINT/SIGTERM */
	atomic_uint_fast64_t next_index;
	atomic_bool exhausted;
	int64_t timeout_ns;
};

static void usage(FILE *f)
{
	fputs(
	    "usage:\n"
	    "  maturity-loadgen client --target HOST:PORT --ca CA.pem --cert CERT.pem --key KEY\n"
	    "      --scenario NAME [--concurrency N] [--connections K] [--threads T]\n"
	    "      [--duration S] [--warmup S] [--rate R] [--timeout S] [--json FILE]\n"
	    "      [--org ORG | --org-prefix P --orgs N [--org-base B]] [--assessments-file F]\n"
	    "      [--drafts-file F]\n"
	    "  maturity-loadgen streams --target HOST:PORT --ca CA.pem --cert CERT.pem --key KEY\n"
	    "      --scenario export-assessments|watch [--streams N] [--connections K] ...\n"
	    "      (maturity-loadgen streams --help)\n"
	    "  maturity-loadgen events --target HOST:PORT --ca CA.pem --cert CERT.pem --key KEY\n"
	    "      --mode fanout|idle|replay [--watchers N] [--connections K] ...\n"
	    "      (maturity-loadgen events --help)\n"
	    "  maturity-loadgen baseline --listen HOST:PORT --cert server.pem --key server.key\n"
	    "      --ca ca.pem [--workers W] [--armed A]\n"
	    "\n"
	    "client: closed loop keeps N calls in flight (default 1) over K connections\n"
	    "  (default 1) from T threads (default min(N, cores)). --rate R switches to open\n"
	    "  loop: R calls/s on a fixed schedule, latency from the scheduled time, at most N in\n"
	    "  flight (default 1000; a scheduled call finding none free is dropped and counted).\n"
	    "  --duration (default 10) and --warmup (default 2) are seconds; warm-up calls are\n"
	    "  not counted. --timeout is the per-call deadline (default 10 s).\n"
	    "  --json FILE appends one JSON object per run (\"-\" = stdout).\n"
	    "scenarios: health, get-organization, list-organizations, get-assessment, evaluate,\n"
	    "  update-answers, submit, roadmap, live-score, check-gate (min_level 1 and 3\n"
	    "  required practices, not live), check-gate-attest (the same, attest=true),\n"
	    "  report-evidence (BatchReportEvidence of 30 pieces, no request_id), mixed.\n"
	    "  Organizations are organizations/{--org-prefix, default bench}-{B .. B + N - 1}\n"
	    "  (--org-base B, default 0; --orgs N, default 1000),\n"
	    "  or the one --org. get-assessment reads names from --assessments-file;\n"
	    "  update-answers and submit read drafts from --drafts-file (submit sends each\n"
	    "  once, then the run ends);\n"
	    "  mixed = 40% get-organization, 20% get-assessment, 15% roadmap,\n"
	    "  10% list-organizations, 10% evaluate, 5% update-answers (needs both files).\n"
	    "baseline: a bare grpc-core server with maturityd's TLS and transport settings that\n"
	    "  answers Health/Check and ScoringService/EvaluateAnswers with fixed responses and\n"
	    "  no work; W workers (default 2 x cores), A requests armed per method per worker\n"
	    "  (default 1, as maturityd). Runs until SIGINT/SIGTERM.\n",
	    f);
}

/* --- calls ------------------------------------------------------------------------------- */

/* Starts the next call of the scenario on slot s; false when the scenario has run out. */
static bool start_call(struct lg_thread *t, struct slot *s, uint64_t start_ns)
{
	struct run *r = t->run;
	uint64_t i = atomic_fetch_add_explicit(&r->next_index, 1, memory_order_relaxed);
	struct channel *c = &r->chans[s->chan];
	grpc_slice payload;
	grpc_op ops[6];
	grpc_call_error e;

	if (!lg_scenario_next(r->sc, i, &s->method, &payload)) {
		atomic_store(&r->exhausted, true);
		return false;
	}
	s->start_ns = start_ns;
	s->call = grpc_channel_create_registered_call(c->ch, NULL, GRPC_PROPAGATE_DEFAULTS, t->cq,
	                                              c->handle[s->method],
	                                              lg_deadline_in_ns(r->timeout_ns), NULL);
	s->send = grpc_raw_byte_buffer_create(&payload, 1); /* refs the prepared slice */
	s->recv = NULL;
	grpc_metadata_array_init(&s->initial);
	grpc_metadata_array_init(&s->trailing);
	memset(ops, 0, sizeof(ops));
	ops[0].op = GRPC_OP_SEND_INITIAL_METADATA;
	ops[1].op = GRPC_OP_SEND_MESSAGE;
	ops[1].data.send_message.send_message = s->send;
	ops[2].op = GRPC_OP_SEND_CLOSE_FROM_CLIENT;
	ops[3].op = GRPC_OP_RECV_INITIAL_METADATA;
	ops[3].data.recv_initial_metadata.recv_initial_metadata = &s->initial;
	ops[4].op = GRPC_OP_RECV_MESSAGE;
	ops[4].data.recv_message.recv_message = &s->recv;
	ops[5].op = GRPC_OP_RECV_STATUS_ON_CLIENT;
	ops[5].data.recv_status_on_client.trailing_metadata = &s->trailing;
	ops[5].data.recv_status_on_client.status = &s->status;
	ops[5].data.recv_status_on_client.status_details = &s->details;
	e = grpc_call_start_batch(s->call, ops, 6, s, NULL);
	if (e != GRPC_CALL_OK) {
		/* Only a programming error gets here: say so rather than hang. */
		fprintf(stderr, "maturity-loadgen: grpc_call_start_batch failed (%d)\n", (int)e);
		abort();
	}
	return true;
}

/* Records a completed call (if it started after the warm-up) and releases what it held. */
static void finish_call(struct lg_thread *t, struct slot *s, uint64_t now)
{
	if (s->start_ns >= t->run->warm_end) {
		lg_hist_record(&t->hist[s->method], now > s->start_ns ? now - s->start_ns : 0);
		t->codes[s->method][lg_code_index(s->status)]++;
	}
	t->last_done_ns = now;
	grpc_metadata_array_destroy(&s->initial);
	grpc_metadata_array_destroy(&s->trailing);
	grpc_slice_unref(s->details);
	if (s->recv != NULL)
		grpc_byte_buffer_destroy(s->recv);
	grpc_byte_buffer_destroy(s->send);
	grpc_call_unref(s->call);
	s->call = NULL;
}

static uint64_t run_end(const struct run *r)
{
	return atomic_load_explicit(&r->end, memory_order_relaxed);
}

/* --- closed loop ------------------------------------------------------------------------- */

static void closed_loop(struct lg_thread *t)
{
	struct run *r = t->run;
	int inflight = 0;

	for (int i = 0; i < t->nslots; i++)
		if (lg_now_ns() < run_end(r) && start_call(t, &t->slots[i], lg_now_ns()))
			inflight++;
	while (inflight > 0) {
		/* Every call ends by its deadline, so waiting without a timeout cannot hang. */
		grpc_event ev =
		    grpc_completion_queue_next(t->cq, gpr_inf_future(GPR_CLOCK_MONOTONIC), NULL);
		struct slot *s;
		uint64_t now;

		if (ev.type != GRPC_OP_COMPLETE)
			continue;
		s = ev.tag;
		now = lg_now_ns();
		finish_call(t, s, now);
		if (now < run_end(r) && start_call(t, s, now))
			continue;
		inflight--;
	}
}

/* --- open loop --------------------------------------------------------------------------- */

static void sleep_until(uint64_t ns)
{
	struct timespec ts = {.tv_sec = (time_t)(ns / 1000000000u),
	                      .tv_nsec = (long)(ns % 1000000000u)};

	while (clock_nanosleep(CLOCK_MONOTONIC, TIMER_ABSTIME, &ts, NULL) == EINTR)
		;
}

/* The sender sleeps with clock_nanosleep (microsecond precision) instead of waiting in
 * grpc_completion_queue_next, whose deadlines are rounded up to whole milliseconds in this
 * grpc: that would send in 1 ms bursts and add up to 1 ms of fake latency to every call.
 * Thread t sends calls k*T + t of the global schedule, so the threads interleave evenly. */
static void *sender_main(void *arg)
{
	struct lg_thread *t = arg;
	struct run *r = t->run;
	const double step = 1e9 * (double)r->nthreads / r->o->rate;
	const double offset = 1e9 * (double)t->index / r->o->rate;
	uint64_t rr = 0;

	/* Linux lets a sleep overrun by the timer slack, 50 us by default: as much as a whole
	 * round trip here. */
	prctl(PR_SET_TIMERSLACK, 1UL, 0UL, 0UL, 0UL);
	for (uint64_t k = 0;; k++) {
		uint64_t sched = r->t0 + (uint64_t)(offset + (double)k * step);
		struct slot *s;

		if (sched >= run_end(r))
			break;
		if (sched > lg_now_ns())
			sleep_until(sched);
		if (sched >= run_end(r))
			break;
		pthread_mutex_lock(&t->mu);
		s = t->free_list;
		if (s != NULL)
			t->free_list = s->next_free;
		pthread_mutex_unlock(&t->mu);
		if (s == NULL) {
			if (sched >= r->warm_end)
				t->dropped++;
			continue;
		}
		/* Round-robin over the connections per call: free slots are reused LIFO, so a
		 * fixed slot-to-channel map would load one connection at low rates. */
		s->chan = (int)((rr++ * (uint64_t)r->nthreads + (uint64_t)t->index) %
		                (uint64_t)r->nchans);
		atomic_fetch_add(&t->inflight, 1);
		if (sched >= r->warm_end) {
			uint64_t now = lg_now_ns();
			lg_hist_record(t->lag, now > sched ? now - sched : 0);
		}
		if (!start_call(t, s, sched)) {
			atomic_fetch_sub(&t->inflight, 1);
			pthread_mutex_lock(&t->mu);
			s->next_free = t->free_list;
			t->free_list = s;
			pthread_mutex_unlock(&t->mu);
			break;
		}
	}
	atomic_store(&t->sender_done, true);
	return NULL;
}

static void open_loop(struct lg_thread *t)
{
	pthread_mutex_init(&t->mu, NULL);
	for (int i = t->nslots - 1; i >= 0; i--) {
		t->slots[i].next_free = t->free_list;
		t->free_list = &t->slots[i];
	}
	atomic_init(&t->inflight, 0);
	atomic_init(&t->sender_done, false);
	pthread_create(&t->sender, NULL, sender_main, t);
	for (;;) {
		/* The timeout only bounds how long the end of the run goes unnoticed. */
		grpc_event ev =
		    grpc_completion_queue_next(t->cq, lg_deadline_in_ns(100 * 1000000), NULL);

		if (ev.type == GRPC_OP_COMPLETE) {
			struct slot *s = ev.tag;
			finish_call(t, s, lg_now_ns());
			pthread_mutex_lock(&t->mu);
			s->next_free = t->free_list;
			t->free_list = s;
			pthread_mutex_unlock(&t->mu);
			atomic_fetch_sub(&t->inflight, 1);
		}
		/* sender_done first: once it is set, inflight can only go down. */
		if (atomic_load(&t->sender_done) && atomic_load(&t->inflight) == 0)
			break;
	}
	pthread_join(t->sender, NULL);
	pthread_mutex_destroy(&t->mu);
}

static void *thread_main(void *arg)
{
	struct lg_thread *t = arg;

	if (t->run->o->rate > 0)
		open_loop(t);
	else
		closed_loop(t);
	grpc_completion_queue_shutdown(t->cq);
	while (grpc_completion_queue_next(t->cq, gpr_inf_future(GPR_CLOCK_MONOTONIC), NULL).type !=
	       GRPC_QUEUE_SHUTDOWN)
		;
	return NULL;
}

/* --- set-up ------------------------------------------------------------------------------ */

static bool make_channels(struct run *r, grpc_channel_credentials *creds)
{
	r->chans = calloc((size_t)r->nchans, sizeof(*r->chans));
	if (r->chans == NULL)
		return false;
	for (int i = 0; i < r->nchans; i++) {
		r->chans[i].ch = lg_channel_new(r->o->target, creds);
		for (int m = 0; m < LG_N_METHODS; m++)
			if (lg_scenario_uses(r->sc, m))
				r->chans[i].handle[m] = grpc_channel_register_call(
				    r->chans[i].ch, lg_method_path[m], NULL, NULL);
	}
	return true;
}

/* Waits until every channel is connected (TLS handshake done), so neither the handshakes
 * nor a wrong certificate are mistaken for latency. */
static bool connect_all(struct run *r, double timeout_s)
{
	grpc_channel **chs = calloc((size_t)r->nchans, sizeof(*chs));
	bool ok;

	if (chs == NULL)
		return false;
	for (int i = 0; i < r->nchans; i++)
		chs[i] = r->chans[i].ch;
	ok = lg_connect_all(chs, r->nchans, timeout_s);
	free(chs);
	return ok;
}

static bool make_threads(struct run *r)
{
	long cap = r->o->concurrency;

	r->threads = calloc((size_t)r->nthreads, sizeof(*r->threads));
	if (r->threads == NULL)
		return false;
	for (int i = 0; i < r->nthreads; i++) {
		struct lg_thread *t = &r->threads[i];

		t->run = r;
		t->index = i;
		t->nslots = (int)(cap / r->nthreads + (i < cap % r->nthreads));
		t->slots = calloc((size_t)(t->nslots ? t->nslots : 1), sizeof(*t->slots));
		t->hist = calloc(LG_N_METHODS, sizeof(*t->hist));
		t->lag = calloc(1, sizeof(*t->lag));
		if (t->slots == NULL || t->hist == NULL || t->lag == NULL)
			return false;
		t->cq = grpc_completion_queue_create_for_next(NULL);
		for (int k = 0; k < t->nslots; k++) {
			/* Global slot j = k*T + i; consecutive slots of a thread go to different
			 * connections, so N calls spread evenly over K connections. */
			long j = (long)k * r->nthreads + i;
			t->slots[k].t = t;
			t->slots[k].chan = (int)(((j / r->nthreads) + i) % r->nchans);
		}
	}
	return true;
}

static void free_run(struct run *r)
{
	for (int i = 0; r->threads != NULL && i < r->nthreads; i++) {
		if (r->threads[i].cq != NULL)
			grpc_completion_queue_destroy(r->threads[i].cq);
		free(r->threads[i].slots);
		free(r->threads[i].hist);
		free(r->threads[i].lag);
	}
	free(r->threads);
	for (int i = 0; r->chans != NULL && i < r->nchans; i++)
		if (r->chans[i].ch != NULL)
			grpc_channel_destroy(r->chans[i].ch);
	free(r->chans);
	lg_scenario_free(r->sc);
}

/* --- the run ----------------------------------------------------------------------------- */

/* Sleeps until the end of the run; a signal ends it early (the report covers what ran). */
static void wait_for_end(struct run *r, const sigset_t *sigs)
{
	for (;;) {
		uint64_t now = lg_now_ns(), end = run_end(r);
		struct timespec ts;

		if (now >= end)
			return;
		ts.tv_sec = (time_t)((end - now) / 1000000000u);
		ts.tv_nsec = (long)((end - now) % 1000000000u);
		if (sigtimedwait(sigs, NULL, &ts) > 0) {
			fprintf(stderr, "maturity-loadgen: interrupted, finishing the run\n");
			now = lg_now_ns();
			if (now < end)
				atomic_store(&r->end, now);
			return;
		}
	}
}

static void collect(struct run *r, struct lg_result *res)
{
	uint64_t end = run_end(r), last = 0;

	memset(res, 0, sizeof(*res));
	res->scenario = r->o->sc.name;
	res->mode = r->o->rate > 0 ? "open" : "closed";
	res->concurrency = (int)r->o->concurrency;
	res->connections = r->nchans;
	res->threads = r->nthreads;
	res->rate = r->o->rate;
	res->warmup_s = r->o->warmup_s;
	for (int i = 0; i < r->nthreads; i++) {
		struct lg_thread *t = &r->threads[i];
		for (int m = 0; m < LG_N_METHODS; m++) {
			lg_hist_merge(&res->hist[m], &t->hist[m]);
			for (int c = 0; c < LG_N_CODES; c++)
				res->codes[m][c] += t->codes[m][c];
		}
		lg_hist_merge(&res->lag, t->lag);
		res->dropped += t->dropped;
		if (t->last_done_ns > last)
			last = t->last_done_ns;
	}
	res->exhausted = atomic_load(&r->exhausted);
	/* A finite scenario that ran out measured until its last call ended. */
	if (res->exhausted && last < end)
		end = last;
	res->duration_s = end > r->warm_end ? (double)(end - r->warm_end) / 1e9 : 0;
}

static int write_json(const char *path, const struct lg_result *res)
{
	FILE *f;

	if (strcmp(path, "-") == 0) {
		lg_report_json(stdout, res);
		return 0;
	}
	f = fopen(path, "a");
	if (f == NULL) {
		fprintf(stderr, "maturity-loadgen: cannot open %s (--json)\n", path);
		return -1;
	}
	lg_report_json(f, res);
	if (fclose(f) != 0) {
		fprintf(stderr, "maturity-loadgen: cannot write %s (--json)\n", path);
		return -1;
	}
	return 0;
}

static int run_client(const struct client_opts *o)
{
	struct run r;
	struct lg_result *res = NULL;
	grpc_channel_credentials *creds;
	sigset_t sigs;
	char err[512];
	int rc = 1;

	memset(&r, 0, sizeof(r));
	r.o = o;
	r.nchans = (int)o->connections;
	r.nthreads = (int)o->threads;
	r.timeout_ns = (int64_t)(o->timeout_s * 1e9);
	atomic_init(&r.next_index, 0);
	atomic_init(&r.exhausted, false);
	atomic_init(&r.end, UINT64_MAX);

	/* grpc's threads inherit the mask: block before grpc_init so sigtimedwait gets them. */
	sigemptyset(&sigs);
	sigaddset(&sigs, SIGINT);
	sigaddset(&sigs, SIGTERM);
	pthread_sigmask(SIG_BLOCK, &sigs, NULL);
	grpc_init();

	r.sc = lg_scenario_new(&o->sc, err, sizeof(err));
	if (r.sc == NULL) {
		fprintf(stderr, "maturity-loadgen: %s\n", err);
		rc = 2;
		goto out;
	}
	creds = lg_client_creds(o->ca, o->cert, o->key);
	if (creds == NULL) {
		rc = 2;
		goto out;
	}
	if (!make_channels(&r, creds)) {
		grpc_channel_credentials_release(creds);
		goto out;
	}
	grpc_channel_credentials_release(creds);
	if (!connect_all(&r, o->connect_timeout_s)) {
		fprintf(stderr,
		        "maturity-loadgen: cannot connect to %s within %.0f s (server down, or TLS "
		        "refused: wrong CA, certificate or key?)\n",
		        o->target, o->connect_timeout_s);
		goto out;
	}
	if (!make_threads(&r)) {
		fprintf(stderr, "maturity-loadgen: out of memory\n");
		goto out;
	}
	fprintf(stderr,
	        "maturity-loadgen: %s, %s loop, %ld %s, %d connections, %d threads, %.1f s "
	        "+ %.1f s warm-up\n",
	        o->sc.name, o->rate > 0 ? "open" : "closed",
	        o->rate > 0 ? (long)o->rate : o->concurrency, o->rate > 0 ? "calls/s" : "in flight",
	        r.nchans, r.nthreads, o->duration_s, o->warmup_s);
	r.t0 = lg_now_ns();
	r.warm_end = r.t0 + (uint64_t)(o->warmup_s * 1e9);
	atomic_store(&r.end, r.warm_end + (uint64_t)(o->duration_s * 1e9));
	for (int i = 0; i < r.nthreads; i++)
		pthread_create(&r.threads[i].thread, NULL, thread_main, &r.threads[i]);
	wait_for_end(&r, &sigs);
	for (int i = 0; i < r.nthreads; i++)
		pthread_join(r.threads[i].thread, NULL);

	res = calloc(1, sizeof(*res));
	if (res == NULL)
		goto out;
	collect(&r, res);
	lg_report_table(stdout, res);
	rc = 0;
	if (o->json != NULL && write_json(o->json, res) != 0)
		rc = 1;
out:
	free(res);
	free_run(&r);
	grpc_shutdown_blocking();
	return rc;
}

/* --- command line ------------------------------------------------------------------------ */

enum {
	OPT_TARGET = 256,
	OPT_CA,
	OPT_CERT,
	OPT_KEY,
	OPT_SCENARIO,
	OPT_CONCURRENCY,
	OPT_CONNECTIONS,
	OPT_THREADS,
	OPT_DURATION,
	OPT_WARMUP,
	OPT_RATE,
	OPT_TIMEOUT,
	OPT_JSON,
	OPT_ORG,
	OPT_ORG_PREFIX,
	OPT_ORGS,
	OPT_ORG_BASE,
	OPT_ASSESSMENTS,
	OPT_DRAFTS,
	OPT_HELP,
};

static int bad_value(const char *flag, const char *value)
{
	fprintf(stderr, "maturity-loadgen: bad value for --%s: %s\n", flag, value);
	return 2;
}

static int client_main(int argc, char **argv)
{
	static const struct option longopts[] = {
	    {"target", required_argument, NULL, OPT_TARGET},
	    {"ca", required_argument, NULL, OPT_CA},
	    {"cert", required_argument, NULL, OPT_CERT},
	    {"key", required_argument, NULL, OPT_KEY},
	    {"scenario", required_argument, NULL, OPT_SCENARIO},
	    {"concurrency", required_argument, NULL, OPT_CONCURRENCY},
	    {"connections", required_argument, NULL, OPT_CONNECTIONS},
	    {"threads", required_argument, NULL, OPT_THREADS},
	    {"duration", required_argument, NULL, OPT_DURATION},
	    {"warmup", required_argument, NULL, OPT_WARMUP},
	    {"rate", required_argument, NULL, OPT_RATE},
	    {"timeout", required_argument, NULL, OPT_TIMEOUT},
	    {"json", required_argument, NULL, OPT_JSON},
	    {"org", required_argument, NULL, OPT_ORG},
	    {"org-prefix", required_argument, NULL, OPT_ORG_PREFIX},
	    {"orgs", required_argument, NULL, OPT_ORGS},
	    {"org-base", required_argument, NULL, OPT_ORG_BASE},
	    {"assessments-file", required_argument, NULL, OPT_ASSESSMENTS},
	    {"drafts-file", required_argument, NULL, OPT_DRAFTS},
	    {"help", no_argument, NULL, OPT_HELP},
	    {NULL, 0, NULL, 0},
	};
	struct client_opts o;
	long ncpu = sysconf(_SC_NPROCESSORS_ONLN);
	int c;

	memset(&o, 0, sizeof(o));
	o.concurrency = 1;
	o.connections = 1;
	o.duration_s = 10;
	o.warmup_s = 2;
	o.timeout_s = 10;
	o.connect_timeout_s = 10;
	o.sc.org_prefix = "bench";
	o.sc.orgs = 1000;
	optind = 1;
	while ((c = getopt_long(argc, argv, "", longopts, NULL)) != -1) {
		switch (c) {
		case OPT_TARGET:
			o.target = optarg;
			break;
		case OPT_CA:
			o.ca = optarg;
			break;
		case OPT_CERT:
			o.cert = optarg;
			break;
		case OPT_KEY:
			o.key = optarg;
			break;
		case OPT_SCENARIO:
			o.sc.name = optarg;
			break;
		case OPT_CONCURRENCY:
			if (!lg_parse_int(optarg, 1, 1000000, &o.concurrency))
				return bad_value("concurrency", optarg);
			o.concurrency_set = true;
			break;
		case OPT_CONNECTIONS:
			if (!lg_parse_int(optarg, 1, 10000, &o.connections))
				return bad_value("connections", optarg);
			break;
		case OPT_THREADS:
			if (!lg_parse_int(optarg, 1, 256, &o.threads))
				return bad_value("threads", optarg);
			break;
		case OPT_DURATION:
			if (!lg_parse_double(optarg, 0.001, 1e6, &o.duration_s))
				return bad_value("duration", optarg);
			break;
		case OPT_WARMUP:
			if (!lg_parse_double(optarg, 0, 1e6, &o.warmup_s))
				return bad_value("warmup", optarg);
			break;
		case OPT_RATE:
			if (!lg_parse_double(optarg, 0.001, 1e8, &o.rate))
				return bad_value("rate", optarg);
			break;
		case OPT_TIMEOUT:
			if (!lg_parse_double(optarg, 0.001, 1e6, &o.timeout_s))
				return bad_value("timeout", optarg);
			break;
		case OPT_JSON:
			o.json = optarg;
			break;
		case OPT_ORG:
			o.sc.org = optarg;
			break;
		case OPT_ORG_PREFIX:
			o.sc.org_prefix = optarg;
			break;
		case OPT_ORGS:
			if (!lg_parse_int(optarg, 1, 100000000, &o.sc.orgs))
				return bad_value("orgs", optarg);
			break;
		case OPT_ORG_BASE:
			if (!lg_parse_int(optarg, 0, 100000000, &o.sc.org_base))
				return bad_value("org-base", optarg);
			break;
		case OPT_ASSESSMENTS:
			o.sc.assessments_file = optarg;
			break;
		case OPT_DRAFTS:
			o.sc.drafts_file = optarg;
			break;
		case OPT_HELP:
			usage(stdout);
			return 0;
		default:
			usage(stderr);
			return 2;
		}
	}
	if (optind < argc) {
		fprintf(stderr, "maturity-loadgen: unexpected argument %s\n", argv[optind]);
		return 2;
	}
	if (o.target == NULL || o.ca == NULL || o.cert == NULL || o.key == NULL ||
	    o.sc.name == NULL) {
		fprintf(stderr, "maturity-loadgen client: --target, --ca, --cert, --key and "
		                "--scenario are required\n");
		return 2;
	}
	if (o.rate > 0 && !o.concurrency_set)
		o.concurrency = 1000;
	if (o.threads == 0) {
		o.threads = ncpu > 0 ? ncpu : 1;
		if (o.threads > o.concurrency)
			o.threads = o.concurrency;
	}
	if (o.threads > o.concurrency) {
		fprintf(stderr, "maturity-loadgen: --threads (%ld) exceeds --concurrency (%ld)\n",
		        o.threads, o.concurrency);
		return 2;
	}
	return run_client(&o);
}

int main(int argc, char **argv)
{
	if (argc >= 2 && strcmp(argv[1], "client") == 0)
		return client_main(argc - 1, argv + 1);
	if (argc >= 2 && strcmp(argv[1], "baseline") == 0)
		return lg_baseline_main(argc - 1, argv + 1);
	if (argc >= 2 && strcmp(argv[1], "streams") == 0)
		return lg_streams_main(argc - 1, argv + 1);
	if (argc >= 2 && strcmp(argv[1], "events") == 0)
		return lg_events_main(argc - 1, argv + 1);
	if (argc >= 2 && (strcmp(argv[1], "--help") == 0 || strcmp(argv[1], "-h") == 0)) {
		usage(stdout);
		return 0;
	}
	usage(stderr);
	return 2;
}
