/* maturity-loadgen streams: many server streams at once from one client thread.
 *
 * N streams over K channels (one connection each; stream i on channel i % K), all driven by one
 * thread draining one completion queue with grpc core's asynchronous API: a stream is a few
 * batches in flight, not a thread. Each stream starts with one batch (its request, the close and
 * the first RECV_MESSAGE) and a RECV_STATUS_ON_CLIENT batch; every received message starts the
 * next RECV_MESSAGE, after --read-delay-ms every --read-every messages for a slow reader (the
 * delayed reads wait in a FIFO: the delay is the same for all, so the FIFO is in due order).
 *
 * export-assessments: ExportAssessments of --org to the end. A stream is whole when it ends OK
 *   with --expect messages (when given); the run ends when every stream has ended.
 * watch: grpc.health.v1.Health/Watch (service ""). Each stream gets the serving state, then
 *   idles; once every stream has its first message (or has failed) the run holds them for
 *   --hold seconds, then cancels them. A stream still open at the end of the hold is whole.
 *
 * The report: streams whole / failed, messages, bytes, how long until every stream had its first
 * message, the first-message and whole-stream latencies, status codes; one JSON object per run
 * with --json. A unary client alongside (maturity-loadgen client) measures the latency others
 * see meanwhile. */
#include "loadgen.h"

#include <getopt.h>
#include <grpc/byte_buffer.h>
#include <grpc/support/alloc.h>
#include <grpc/support/time.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>

#include "grpc/health/v1/health.pb-c.h"
#include "mlops/maturity/v1/reporting.pb-c.h"

enum kind { K_EXPORT, K_WATCH };

struct streams_opts {
	const char *target, *ca, *cert, *key, *json, *scenario, *org;
	enum kind kind;
	long streams, connections, read_delay_ms, read_every, expect;
	double hold_s, timeout_s, connect_timeout_s;
};

/* What a completion was for: the low bits of the tag (a stream is 8-byte aligned). */
enum { TAG_RECV = 0, TAG_STATUS = 1 };

struct stream {
	grpc_call *call;
	grpc_byte_buffer *send, *recv;
	grpc_metadata_array initial, trailing;
	grpc_status_code status;
	grpc_slice details;
	uint64_t messages, bytes;
	uint64_t start_ns, first_ns;
	bool recv_pending, status_done, ended, cancelled;
	uint64_t due_ns;          /* a delayed read: when to start it */
	struct stream *next_wait; /* the FIFO of delayed reads */
};

struct srun {
	const struct streams_opts *o;
	grpc_channel **chans;
	void **handles;
	grpc_completion_queue *cq;
	grpc_slice request;
	struct stream *st;
	struct stream *wait_head, *wait_tail;
	long active;      /* streams not yet ended */
	long established; /* streams that had their first message or ended */
	uint64_t t0, all_first_ns, hold_end_ns, last_end_ns;
	bool holding, cancelling;
	/* results */
	uint64_t messages, bytes, whole, failed, short_streams, cancelled_in_hold;
	uint64_t codes[LG_N_CODES];
	struct lg_hist first, whole_ms;
};

static atomic_bool stop_requested;

static void on_signal(int sig)
{
	(void)sig;
	atomic_store(&stop_requested, true);
}

static void streams_usage(FILE *f)
{
	fputs("usage: maturity-loadgen streams --target HOST:PORT --ca CA.pem --cert CERT.pem\n"
	      "      --key KEY --scenario export-assessments|watch [--streams N]\n"
	      "      [--connections K] [--read-delay-ms D] [--read-every M] [--org ORG]\n"
	      "      [--expect E] [--hold S] [--timeout S] [--json FILE]\n"
	      "\n"
	      "N server streams (default 100) over K connections (default 1; the server allows\n"
	      "  --max-concurrent-streams per connection, 256 by default, so K >= N/256), all\n"
	      "  from one thread. Slow readers wait D ms (default 0) after every M-th message\n"
	      "  (default 1) before reading on.\n"
	      "export-assessments: ExportAssessments of --org (organizations/ID or ID) to the\n"
	      "  end; a stream is whole when it ends OK with E messages (--expect; 0 = any).\n"
	      "watch: grpc.health.v1.Health/Watch; once every stream has its first message the\n"
	      "  streams idle for --hold S seconds (default 10), then are cancelled; a stream\n"
	      "  still open then is whole.\n"
	      "--timeout is each stream's deadline (default 600 s; watch: none).\n"
	      "--json FILE appends one JSON object (\"-\" = stdout).\n"
	      "Exit status: 0 when every stream was whole, 3 when one was not, 1 or 2 on errors.\n",
	      f);
}

/* --- requests ---------------------------------------------------------------------------- */

static grpc_slice build_request(const struct streams_opts *o)
{
	grpc_slice s;

	if (o->kind == K_EXPORT) {
		Mlops__Maturity__V1__ExportAssessmentsRequest req =
		    MLOPS__MATURITY__V1__EXPORT_ASSESSMENTS_REQUEST__INIT;
		char name[512];

		if (strncmp(o->org, "organizations/", 14) == 0)
			snprintf(name, sizeof(name), "%s", o->org);
		else
			snprintf(name, sizeof(name), "organizations/%s", o->org);
		req.organization = name;
		s = grpc_slice_malloc(protobuf_c_message_get_packed_size(&req.base));
		protobuf_c_message_pack(&req.base, GRPC_SLICE_START_PTR(s));
	} else {
		Grpc__Health__V1__HealthCheckRequest req =
		    GRPC__HEALTH__V1__HEALTH_CHECK_REQUEST__INIT;
		req.service = "";
		s = grpc_slice_malloc(protobuf_c_message_get_packed_size(&req.base));
		protobuf_c_message_pack(&req.base, GRPC_SLICE_START_PTR(s));
	}
	return s;
}

static const char *method_path(enum kind k)
{
	return k == K_EXPORT ? "/mlops.maturity.v1.ReportingService/ExportAssessments"
	                     : "/grpc.health.v1.Health/Watch";
}

/* --- one stream -------------------------------------------------------------------------- */

static void *tag_of(struct stream *s, int what)
{
	return (void *)((uintptr_t)s | (uintptr_t)what);
}

static void check_batch(grpc_call_error e)
{
	if (e != GRPC_CALL_OK) {
		/* Only a programming error gets here: say so rather than hang. */
		fprintf(stderr, "maturity-loadgen: grpc_call_start_batch failed (%d)\n", (int)e);
		abort();
	}
}

static void start_stream(struct srun *r, struct stream *s, int chan)
{
	gpr_timespec deadline = r->o->timeout_s > 0
	                            ? lg_deadline_in_ns((int64_t)(r->o->timeout_s * 1e9))
	                            : gpr_inf_future(GPR_CLOCK_MONOTONIC);
	grpc_op ops[5];

	s->start_ns = lg_now_ns();
	s->call = grpc_channel_create_registered_call(r->chans[chan], NULL, GRPC_PROPAGATE_DEFAULTS,
	                                              r->cq, r->handles[chan], deadline, NULL);
	s->send = grpc_raw_byte_buffer_create(&r->request, 1);
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
	s->recv_pending = true;
	check_batch(grpc_call_start_batch(s->call, ops, 5, tag_of(s, TAG_RECV), NULL));
	memset(ops, 0, sizeof(ops));
	ops[0].op = GRPC_OP_RECV_STATUS_ON_CLIENT;
	ops[0].data.recv_status_on_client.trailing_metadata = &s->trailing;
	ops[0].data.recv_status_on_client.status = &s->status;
	ops[0].data.recv_status_on_client.status_details = &s->details;
	check_batch(grpc_call_start_batch(s->call, ops, 1, tag_of(s, TAG_STATUS), NULL));
}

static void start_recv(struct stream *s)
{
	grpc_op op;

	memset(&op, 0, sizeof(op));
	op.op = GRPC_OP_RECV_MESSAGE;
	op.data.recv_message.recv_message = &s->recv;
	s->recv_pending = true;
	check_batch(grpc_call_start_batch(s->call, &op, 1, tag_of(s, TAG_RECV), NULL));
}

/* Both the status and the last read are in: count the stream and release it. */
static void end_stream(struct srun *r, struct stream *s, uint64_t now)
{
	bool whole;

	s->ended = true;
	r->active--;
	r->last_end_ns = now;
	if (s->first_ns == 0)
		r->established++;
	r->codes[lg_code_index(s->status)]++;
	if (r->o->kind == K_EXPORT) {
		whole = s->status == GRPC_STATUS_OK &&
		        (r->o->expect == 0 || s->messages == (uint64_t)r->o->expect);
		if (s->status == GRPC_STATUS_OK && !whole)
			r->short_streams++;
		if (whole)
			lg_hist_record(&r->whole_ms, now - s->start_ns);
	} else {
		/* A watch is whole if it had its state and was still open when we cancelled it. */
		whole = s->cancelled && s->messages > 0;
	}
	if (whole)
		r->whole++;
	else
		r->failed++;
	if (!whole && r->failed <= 5) {
		char *d = grpc_slice_to_c_string(s->details);
		fprintf(stderr, "maturity-loadgen: stream %ld ended %s after %llu messages: %s\n",
		        (long)(s - r->st), lg_code_name(lg_code_index(s->status)),
		        (unsigned long long)s->messages, d);
		gpr_free(d);
	}
	grpc_metadata_array_destroy(&s->initial);
	grpc_metadata_array_destroy(&s->trailing);
	grpc_slice_unref(s->details);
	grpc_byte_buffer_destroy(s->send);
	grpc_call_unref(s->call);
	s->call = NULL;
}

static void on_recv(struct srun *r, struct stream *s, bool ok, uint64_t now)
{
	s->recv_pending = false;
	if (!ok || s->recv == NULL) {
		/* The end of the stream (or the call failed): the status says which. */
		if (s->status_done)
			end_stream(r, s, now);
		return;
	}
	s->messages++;
	s->bytes += grpc_byte_buffer_length(s->recv);
	r->messages++;
	r->bytes += grpc_byte_buffer_length(s->recv);
	grpc_byte_buffer_destroy(s->recv);
	s->recv = NULL;
	if (s->first_ns == 0) {
		s->first_ns = now;
		r->established++;
		lg_hist_record(&r->first, now - s->start_ns);
	}
	if (r->o->read_delay_ms > 0 && s->messages % (uint64_t)r->o->read_every == 0) {
		s->due_ns = now + (uint64_t)r->o->read_delay_ms * 1000000u;
		s->next_wait = NULL;
		if (r->wait_tail != NULL)
			r->wait_tail->next_wait = s;
		else
			r->wait_head = s;
		r->wait_tail = s;
		return;
	}
	start_recv(s);
}

static void on_status(struct srun *r, struct stream *s, uint64_t now)
{
	s->status_done = true;
	if (!s->recv_pending && s->due_ns == 0)
		end_stream(r, s, now);
}

/* Starts the reads whose delay is over. */
static void run_due(struct srun *r, uint64_t now)
{
	while (r->wait_head != NULL && r->wait_head->due_ns <= now) {
		struct stream *s = r->wait_head;

		r->wait_head = s->next_wait;
		if (r->wait_head == NULL)
			r->wait_tail = NULL;
		s->due_ns = 0;
		start_recv(s); /* returns at once with no message if the stream has ended */
	}
}

static void cancel_all(struct srun *r)
{
	r->cancelling = true;
	for (long i = 0; i < r->o->streams; i++) {
		struct stream *s = &r->st[i];
		if (s->call != NULL && !s->ended) {
			s->cancelled = !s->status_done;
			grpc_call_cancel(s->call, NULL);
		}
	}
}

/* --- the run ----------------------------------------------------------------------------- */

static void drive(struct srun *r)
{
	for (long i = 0; i < r->o->streams; i++)
		start_stream(r, &r->st[i], (int)(i % r->o->connections));
	r->active = r->o->streams;
	while (r->active > 0) {
		uint64_t now = lg_now_ns(), wake = now + 100000000u; /* notice signals */
		grpc_event ev;

		if (r->wait_head != NULL && r->wait_head->due_ns < wake)
			wake = r->wait_head->due_ns;
		if (r->holding && !r->cancelling && r->hold_end_ns < wake)
			wake = r->hold_end_ns;
		ev = grpc_completion_queue_next(
		    r->cq, lg_deadline_in_ns(wake > now ? (int64_t)(wake - now) : 0), NULL);
		now = lg_now_ns();
		if (ev.type == GRPC_OP_COMPLETE) {
			struct stream *s = (void *)((uintptr_t)ev.tag & ~(uintptr_t)7);
			if (((uintptr_t)ev.tag & 7) == TAG_STATUS)
				on_status(r, s, now);
			else
				on_recv(r, s, ev.success != 0, now);
		}
		run_due(r, now);
		if (r->all_first_ns == 0 && r->established == r->o->streams) {
			r->all_first_ns = now;
			if (r->o->kind == K_WATCH) {
				r->holding = true;
				r->hold_end_ns = now + (uint64_t)(r->o->hold_s * 1e9);
				fprintf(
				    stderr,
				    "maturity-loadgen: %ld watches open after %.2f s; holding them "
				    "%.0f s\n",
				    r->o->streams, (double)(now - r->t0) / 1e9, r->o->hold_s);
			}
		}
		if (!r->cancelling && r->holding && now >= r->hold_end_ns)
			cancel_all(r);
		if (!r->cancelling && atomic_load(&stop_requested)) {
			fprintf(stderr, "maturity-loadgen: interrupted, cancelling the streams\n");
			cancel_all(r);
		}
	}
}

static void report(FILE *f, const struct srun *r, bool json)
{
	const struct streams_opts *o = r->o;
	double dur = (double)(r->last_end_ns - r->t0) / 1e9;
	double est = r->all_first_ns ? (double)(r->all_first_ns - r->t0) / 1e9 : -1;
	bool first = true;

	if (!json) {
		fprintf(f,
		        "%-18s %7s %5s %7s %7s %10s %9s %8s %9s %9s %9s  %s\n"
		        "%-18s %7ld %5ld %7llu %7llu %10llu %9.2f %8.2f %9.1f %9.1f %9.1f  ",
		        "scenario", "streams", "conns", "whole", "failed", "messages", "seconds",
		        "open_s", "first_p99", "whole_p50", "whole_p99", "codes", o->scenario,
		        o->streams, o->connections, (unsigned long long)r->whole,
		        (unsigned long long)r->failed, (unsigned long long)r->messages, dur, est,
		        (double)lg_hist_quantile(&r->first, 0.99) / 1e6,
		        (double)lg_hist_quantile(&r->whole_ms, 0.5) / 1e6,
		        (double)lg_hist_quantile(&r->whole_ms, 0.99) / 1e6);
		for (int c = 0; c < LG_N_CODES; c++) {
			if (r->codes[c] == 0)
				continue;
			fprintf(f, "%s%s=%llu", first ? "" : ",", lg_code_name(c),
			        (unsigned long long)r->codes[c]);
			first = false;
		}
		fputc('\n', f);
		fflush(f);
		return;
	}
	fprintf(f,
	        "{\"scenario\":\"%s\",\"streams\":%ld,\"connections\":%ld,\"read_delay_ms\":%ld,"
	        "\"read_every\":%ld,\"expect\":%ld,\"hold_s\":%.1f,\"duration_s\":%.3f,"
	        "\"all_open_s\":%.3f,\"whole\":%llu,\"failed\":%llu,\"short\":%llu,"
	        "\"messages\":%llu,\"bytes\":%llu,\"messages_per_s\":%.1f,"
	        "\"first_p50_ms\":%.3f,\"first_p99_ms\":%.3f,\"first_max_ms\":%.3f,"
	        "\"whole_p50_ms\":%.3f,\"whole_p99_ms\":%.3f,\"whole_max_ms\":%.3f,\"codes\":{",
	        o->scenario, o->streams, o->connections, o->read_delay_ms, o->read_every, o->expect,
	        o->kind == K_WATCH ? o->hold_s : 0.0, dur, est, (unsigned long long)r->whole,
	        (unsigned long long)r->failed, (unsigned long long)r->short_streams,
	        (unsigned long long)r->messages, (unsigned long long)r->bytes,
	        dur > 0 ? (double)r->messages / dur : 0.0,
	        (double)lg_hist_quantile(&r->first, 0.5) / 1e6,
	        (double)lg_hist_quantile(&r->first, 0.99) / 1e6, (double)r->first.max_ns / 1e6,
	        (double)lg_hist_quantile(&r->whole_ms, 0.5) / 1e6,
	        (double)lg_hist_quantile(&r->whole_ms, 0.99) / 1e6,
	        (double)r->whole_ms.max_ns / 1e6);
	for (int c = 0; c < LG_N_CODES; c++) {
		if (r->codes[c] == 0)
			continue;
		fprintf(f, "%s\"%s\":%llu", first ? "" : ",", lg_code_name(c),
		        (unsigned long long)r->codes[c]);
		first = false;
	}
	fputs("}}\n", f);
	fflush(f);
}

static int write_json(const char *path, const struct srun *r)
{
	FILE *f;

	if (strcmp(path, "-") == 0) {
		report(stdout, r, true);
		return 0;
	}
	f = fopen(path, "a");
	if (f == NULL) {
		fprintf(stderr, "maturity-loadgen: cannot open %s (--json)\n", path);
		return -1;
	}
	report(f, r, true);
	if (fclose(f) != 0) {
		fprintf(stderr, "maturity-loadgen: cannot write %s (--json)\n", path);
		return -1;
	}
	return 0;
}

static int run_streams(const struct streams_opts *o)
{
	struct srun *r = calloc(1, sizeof(*r));
	grpc_channel_credentials *creds;
	struct sigaction sa;
	int rc = 1;

	if (r == NULL)
		return 1;
	r->o = o;
	if (!lg_raise_nofile())
		fprintf(stderr, "maturity-loadgen: cannot raise RLIMIT_NOFILE\n");
	memset(&sa, 0, sizeof(sa));
	sa.sa_handler = on_signal;
	sigaction(SIGINT, &sa, NULL);
	sigaction(SIGTERM, &sa, NULL);
	grpc_init();
	r->request = build_request(o);
	r->chans = calloc((size_t)o->connections, sizeof(*r->chans));
	r->handles = calloc((size_t)o->connections, sizeof(*r->handles));
	r->st = calloc((size_t)o->streams, sizeof(*r->st));
	if (r->chans == NULL || r->handles == NULL || r->st == NULL) {
		fprintf(stderr, "maturity-loadgen: out of memory\n");
		goto out;
	}
	creds = lg_client_creds(o->ca, o->cert, o->key);
	if (creds == NULL) {
		rc = 2;
		goto out;
	}
	for (long i = 0; i < o->connections; i++) {
		r->chans[i] = lg_channel_new(o->target, creds);
		r->handles[i] =
		    grpc_channel_register_call(r->chans[i], method_path(o->kind), NULL, NULL);
	}
	grpc_channel_credentials_release(creds);
	if (!lg_connect_all(r->chans, (int)o->connections, o->connect_timeout_s)) {
		fprintf(stderr,
		        "maturity-loadgen: cannot connect to %s within %.0f s (server down, or TLS "
		        "refused: wrong CA, certificate or key?)\n",
		        o->target, o->connect_timeout_s);
		goto out;
	}
	fprintf(stderr,
	        "maturity-loadgen: %s, %ld streams over %ld connections, one thread, read delay "
	        "%ld ms every %ld messages\n",
	        o->scenario, o->streams, o->connections, o->read_delay_ms, o->read_every);
	r->cq = grpc_completion_queue_create_for_next(NULL);
	r->t0 = lg_now_ns();
	drive(r);
	report(stdout, r, false);
	rc = r->failed > 0 ? 3 : 0;
	if (o->json != NULL && write_json(o->json, r) != 0)
		rc = 1;
	grpc_completion_queue_shutdown(r->cq);
	while (grpc_completion_queue_next(r->cq, gpr_inf_future(GPR_CLOCK_MONOTONIC), NULL).type !=
	       GRPC_QUEUE_SHUTDOWN)
		;
	grpc_completion_queue_destroy(r->cq);
out:
	for (long i = 0; r->chans != NULL && i < o->connections; i++)
		if (r->chans[i] != NULL)
			grpc_channel_destroy(r->chans[i]);
	free(r->chans);
	free(r->handles);
	free(r->st);
	grpc_slice_unref(r->request);
	free(r);
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
	OPT_STREAMS,
	OPT_CONNECTIONS,
	OPT_READ_DELAY,
	OPT_READ_EVERY,
	OPT_ORG,
	OPT_EXPECT,
	OPT_HOLD,
	OPT_TIMEOUT,
	OPT_JSON,
	OPT_HELP,
};

static int bad_value(const char *flag, const char *value)
{
	fprintf(stderr, "maturity-loadgen: bad value for --%s: %s\n", flag, value);
	return 2;
}

int lg_streams_main(int argc, char **argv)
{
	static const struct option longopts[] = {
	    {"target", required_argument, NULL, OPT_TARGET},
	    {"ca", required_argument, NULL, OPT_CA},
	    {"cert", required_argument, NULL, OPT_CERT},
	    {"key", required_argument, NULL, OPT_KEY},
	    {"scenario", required_argument, NULL, OPT_SCENARIO},
	    {"streams", required_argument, NULL, OPT_STREAMS},
	    {"connections", required_argument, NULL, OPT_CONNECTIONS},
	    {"read-delay-ms", required_argument, NULL, OPT_READ_DELAY},
	    {"read-every", required_argument, NULL, OPT_READ_EVERY},
	    {"org", required_argument, NULL, OPT_ORG},
	    {"expect", required_argument, NULL, OPT_EXPECT},
	    {"hold", required_argument, NULL, OPT_HOLD},
	    {"timeout", required_argument, NULL, OPT_TIMEOUT},
	    {"json", required_argument, NULL, OPT_JSON},
	    {"help", no_argument, NULL, OPT_HELP},
	    {NULL, 0, NULL, 0},
	};
	struct streams_opts o;
	bool timeout_set = false;
	int c;

	memset(&o, 0, sizeof(o));
	o.streams = 100;
	o.connections = 1;
	o.read_every = 1;
	o.hold_s = 10;
	o.timeout_s = 600;
	o.connect_timeout_s = 30;
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
			o.scenario = optarg;
			break;
		case OPT_STREAMS:
			if (!lg_parse_int(optarg, 1, 1000000, &o.streams))
				return bad_value("streams", optarg);
			break;
		case OPT_CONNECTIONS:
			if (!lg_parse_int(optarg, 1, 10000, &o.connections))
				return bad_value("connections", optarg);
			break;
		case OPT_READ_DELAY:
			if (!lg_parse_int(optarg, 0, 3600000, &o.read_delay_ms))
				return bad_value("read-delay-ms", optarg);
			break;
		case OPT_READ_EVERY:
			if (!lg_parse_int(optarg, 1, 1000000, &o.read_every))
				return bad_value("read-every", optarg);
			break;
		case OPT_ORG:
			o.org = optarg;
			break;
		case OPT_EXPECT:
			if (!lg_parse_int(optarg, 0, 100000000, &o.expect))
				return bad_value("expect", optarg);
			break;
		case OPT_HOLD:
			if (!lg_parse_double(optarg, 0, 1e6, &o.hold_s))
				return bad_value("hold", optarg);
			break;
		case OPT_TIMEOUT:
			if (!lg_parse_double(optarg, 0, 1e6, &o.timeout_s))
				return bad_value("timeout", optarg);
			timeout_set = true;
			break;
		case OPT_JSON:
			o.json = optarg;
			break;
		case OPT_HELP:
			streams_usage(stdout);
			return 0;
		default:
			streams_usage(stderr);
			return 2;
		}
	}
	if (optind < argc) {
		fprintf(stderr, "maturity-loadgen: unexpected argument %s\n", argv[optind]);
		return 2;
	}
	if (o.target == NULL || o.ca == NULL || o.cert == NULL || o.key == NULL ||
	    o.scenario == NULL) {
		fprintf(stderr, "maturity-loadgen streams: --target, --ca, --cert, --key and "
		                "--scenario are required\n");
		return 2;
	}
	if (strcmp(o.scenario, "export-assessments") == 0) {
		o.kind = K_EXPORT;
		if (o.org == NULL) {
			fprintf(stderr,
			        "maturity-loadgen streams: export-assessments needs --org\n");
			return 2;
		}
	} else if (strcmp(o.scenario, "watch") == 0) {
		o.kind = K_WATCH;
		if (!timeout_set)
			o.timeout_s = 0; /* a watch has no deadline: it is meant to stay open */
	} else {
		fprintf(stderr, "maturity-loadgen streams: unknown scenario %s\n", o.scenario);
		return 2;
	}
	return run_streams(&o);
}
