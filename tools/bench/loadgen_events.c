/* maturity-loadgen events: EventService/WatchEvents under load (issue 13), from one client thread.
 *
 * N watches (WatchEvents, parent --parent, live from now unless --mode replay) over K channels
 * (one connection each; watch i on channel i % K) against --target, and a writer against
 * --writer-target (another replica: the events cross replicas through PostgreSQL NOTIFY),
 * everything driven by one thread draining one completion queue with grpc core's asynchronous API.
 * The writer calls AssessmentService/UpdateAnswers on the drafts of --drafts-file (write i on
 * draft i % n, as `maturity-loadgen client --scenario update-answers` does); each write commits
 * one ASSESSMENT_UPDATED event whose resource is that draft, which is how a received event is
 * matched to its write.
 *
 * Every live mode starts with a warm-up: a write every 0.5 s until every watch has received an
 * event (it is then certainly live: it has joined the replica's feed). Then:
 *
 * fanout: --writes W writes, open loop at --rate R/s (one in flight; a write due while one is in
 *   flight waits for it). For every (watch, event) delivery the latency is the receive time minus
 *   the write's call start (an upper bound of commit -> receive: it includes the write RPC) and
 *   minus the write's completion (a lower bound: the commit is before the reply; a delivery that
 *   beats the reply counts 0), both on this process's CLOCK_MONOTONIC; and minus the event's
 *   `time` (the writing transaction's start, CLOCK_REALTIME of the same machine). Per write: the
 *   time until the last watch had it. The run ends when every watch has every measured event or
 *   --drain S seconds after the last write. Each delivery is read only as far as the event's
 *   resource and time (a protobuf walk, not an unpack of the snapshot), so the one client thread
 *   keeps up with bursts of thousands of deliveries.
 * idle: once every watch is live, creates --ready-file (if given) and holds the watches --hold S
 *   seconds with no writes, then cancels them; a watch still open then is whole. (The bench
 *   samples the server's RSS and runs a unary probe meanwhile.)
 * replay: each watch asks for every event from the start (start_time = 1970-01-01T00:00:01Z)
 *   and reads as fast as it can; the run ends after --expect events per watch or --duration S.
 *   Events/s = events / (last event - request start). Messages are not decoded (an event message
 *   starts with field 1; a heartbeat has only field 2).
 *
 * One JSON object per run with --json. Exit status: 0 when every watch was whole (and, for
 * fanout, got every measured event), 3 when not, 1 or 2 on errors. */
#include "loadgen.h"

#include <fcntl.h>
#include <getopt.h>
#include <grpc/byte_buffer.h>
#include <grpc/byte_buffer_reader.h>
#include <grpc/slice.h>
#include <grpc/support/alloc.h>
#include <grpc/support/time.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "mlops/maturity/v1/event.pb-c.h" /* the request */

enum emode { M_FANOUT, M_IDLE, M_REPLAY };

struct events_opts {
	const char *target, *writer_target, *ca, *cert, *key, *json, *mode_name, *parent;
	const char *drafts_file, *ready_file;
	enum emode mode;
	long watchers, connections, writes, expect;
	double rate, hold_s, drain_s, duration_s, connect_timeout_s;
};

enum { TAG_RECV = 0, TAG_STATUS = 1, TAG_WRITE = 2 };

struct watcher {
	grpc_call *call;
	grpc_byte_buffer *send, *recv;
	grpc_metadata_array initial, trailing;
	grpc_status_code status;
	grpc_slice details;
	uint64_t messages, events, measured, heartbeats;
	uint64_t start_ns, first_ns, last_event_ns;
	bool recv_pending, status_done, ended, cancelled, live;
};

struct write_rec {
	uint64_t start_ns, done_ns, first_ns, last_ns;
	long received;
	bool measured, ok;
};

/* The writer: one UpdateAnswers call at a time. */
struct writer {
	grpc_call *call;
	grpc_byte_buffer *recv;
	grpc_metadata_array initial, trailing;
	grpc_status_code status;
	grpc_slice details;
	long index; /* the write in flight, -1 when none */
};

struct erun {
	const struct events_opts *o;
	grpc_channel **chans;
	void **handles;
	grpc_channel *wchan;
	void *whandle;
	grpc_completion_queue *cq;
	grpc_slice request;
	struct lg_scenario *scen;
	struct watcher *w;
	struct writer wr;
	/* drafts: names sorted (with their line numbers) to find a received event's draft */
	char **drafts;
	size_t ndrafts;
	size_t *sorted;
	long *last_write; /* per draft line: the latest write on it, -1 none */
	struct write_rec *writes;
	long nwrites_max, nwrites, warm_writes, measured_done;
	long active, live;
	uint64_t t0, live_ns, warm_next_ns, measure_t0, next_write_ns, hold_end_ns, last_write_done;
	bool warm, measuring, holding, cancelling, draining;
	/* results */
	uint64_t messages, bytes, events, unmatched, before_reply, whole, failed;
	uint64_t codes[LG_N_CODES];
	uint64_t write_failed;
	struct lg_hist from_start, from_done, from_time, all_watchers, write_lat;
	uint64_t replay_first_ns, replay_last_ns;
};

static atomic_bool stop_requested;

static void on_signal(int sig)
{
	(void)sig;
	atomic_store(&stop_requested, true);
}

static void events_usage(FILE *f)
{
	fputs("usage: maturity-loadgen events --target HOST:PORT --ca CA.pem --cert CERT.pem\n"
	      "      --key KEY --mode fanout|idle|replay [--watchers N] [--connections K]\n"
	      "      [--parent organizations/ID|organizations/-] [--writer-target HOST:PORT]\n"
	      "      [--drafts-file FILE] [--writes W] [--rate R] [--drain S] [--hold S]\n"
	      "      [--ready-file FILE] [--expect E] [--duration S] [--json FILE]\n"
	      "\n"
	      "N WatchEvents streams (default 1) of --parent (default organizations/-) over K\n"
	      "  connections (default 1; the server allows --max-concurrent-streams per\n"
	      "  connection, 256 by default, so K >= N/256) on --target, from one thread.\n"
	      "fanout, idle: live watches; a writer on --writer-target (default --target) calls\n"
	      "  UpdateAnswers on the drafts of --drafts-file (required) every 0.5 s until every\n"
	      "  watch has an event. fanout: then W writes (default 100) at R/s (default 5) and\n"
	      "  the latency of every delivery (from the write's start, its completion, and the\n"
	      "  event's time); ends when every watch has every event or --drain S (default 10)\n"
	      "  after the last write. idle: creates --ready-file, holds the watches --hold S\n"
	      "  (default 20), then cancels them.\n"
	      "replay: every event from the start of retention; ends after --expect E events\n"
	      "  per watch (0 = no limit) or --duration S (default 60).\n"
	      "--json FILE appends one JSON object (\"-\" = stdout).\n"
	      "Exit status: 0 when every watch was whole, 3 when one was not, 1 or 2 on errors.\n",
	      f);
}

/* --- requests ------------------------------------------------------------------------------ */

static grpc_slice build_request(const struct events_opts *o)
{
	Mlops__Maturity__V1__WatchEventsRequest req =
	    MLOPS__MATURITY__V1__WATCH_EVENTS_REQUEST__INIT;
	Google__Protobuf__Timestamp ts = GOOGLE__PROTOBUF__TIMESTAMP__INIT;
	grpc_slice s;

	req.parent = (char *)o->parent;
	if (o->mode == M_REPLAY) {
		ts.seconds = 1;
		req.start_time = &ts;
	}
	s = grpc_slice_malloc(protobuf_c_message_get_packed_size(&req.base));
	protobuf_c_message_pack(&req.base, GRPC_SLICE_START_PTR(s));
	return s;
}

static void *tag_of(void *p, int what)
{
	return (void *)((uintptr_t)p | (uintptr_t)what);
}

static void check_batch(grpc_call_error e)
{
	if (e != GRPC_CALL_OK) {
		fprintf(stderr, "maturity-loadgen: grpc_call_start_batch failed (%d)\n", (int)e);
		abort();
	}
}

/* --- drafts: a received event's resource -> its draft line ---------------------------------- */

static const char *const *sort_base;

static int cmp_idx(const void *a, const void *b)
{
	return strcmp(sort_base[*(const size_t *)a], sort_base[*(const size_t *)b]);
}

static long draft_line(const struct erun *r, const char *name)
{
	size_t lo = 0, hi = r->ndrafts;

	while (lo < hi) {
		size_t mid = lo + (hi - lo) / 2;
		int c = strcmp(r->drafts[r->sorted[mid]], name);
		if (c == 0)
			return (long)r->sorted[mid];
		if (c < 0)
			lo = mid + 1;
		else
			hi = mid;
	}
	return -1;
}

/* --- the writer ----------------------------------------------------------------------------- */

static void start_write(struct erun *r, bool measured)
{
	struct writer *wr = &r->wr;
	grpc_byte_buffer *send;
	grpc_slice payload;
	grpc_op ops[6];
	long i = r->nwrites;
	int method;

	if (i >= r->nwrites_max || !lg_scenario_next(r->scen, (uint64_t)i, &method, &payload))
		return;
	r->nwrites++;
	wr->index = i;
	r->writes[i] = (struct write_rec){.start_ns = lg_now_ns(), .measured = measured};
	r->last_write[i % (long)r->ndrafts] = i;
	wr->call =
	    grpc_channel_create_registered_call(r->wchan, NULL, GRPC_PROPAGATE_DEFAULTS, r->cq,
	                                        r->whandle, lg_deadline_in_ns(10000000000LL), NULL);
	send = grpc_raw_byte_buffer_create(&payload, 1);
	grpc_metadata_array_init(&wr->initial);
	grpc_metadata_array_init(&wr->trailing);
	wr->recv = NULL;
	memset(ops, 0, sizeof(ops));
	ops[0].op = GRPC_OP_SEND_INITIAL_METADATA;
	ops[1].op = GRPC_OP_SEND_MESSAGE;
	ops[1].data.send_message.send_message = send;
	ops[2].op = GRPC_OP_SEND_CLOSE_FROM_CLIENT;
	ops[3].op = GRPC_OP_RECV_INITIAL_METADATA;
	ops[3].data.recv_initial_metadata.recv_initial_metadata = &wr->initial;
	ops[4].op = GRPC_OP_RECV_MESSAGE;
	ops[4].data.recv_message.recv_message = &wr->recv;
	ops[5].op = GRPC_OP_RECV_STATUS_ON_CLIENT;
	ops[5].data.recv_status_on_client.trailing_metadata = &wr->trailing;
	ops[5].data.recv_status_on_client.status = &wr->status;
	ops[5].data.recv_status_on_client.status_details = &wr->details;
	check_batch(grpc_call_start_batch(wr->call, ops, 6, tag_of(wr, TAG_WRITE), NULL));
	grpc_byte_buffer_destroy(send);
}

static void on_write(struct erun *r, uint64_t now)
{
	struct writer *wr = &r->wr;
	struct write_rec *x = &r->writes[wr->index];

	x->done_ns = now;
	x->ok = wr->status == GRPC_STATUS_OK;
	if (!x->ok) {
		char *d = grpc_slice_to_c_string(wr->details);
		r->write_failed++;
		if (r->write_failed <= 3)
			fprintf(stderr, "maturity-loadgen: write %ld failed: %s: %s\n", wr->index,
			        lg_code_name(lg_code_index(wr->status)), d);
		gpr_free(d);
	} else if (x->measured) {
		lg_hist_record(&r->write_lat, now - x->start_ns);
	}
	if (x->measured)
		r->measured_done++;
	r->last_write_done = now;
	if (wr->recv != NULL)
		grpc_byte_buffer_destroy(wr->recv);
	grpc_metadata_array_destroy(&wr->initial);
	grpc_metadata_array_destroy(&wr->trailing);
	grpc_slice_unref(wr->details);
	grpc_call_unref(wr->call);
	wr->call = NULL;
	wr->index = -1;
}

/* --- one watch ------------------------------------------------------------------------------ */

static void start_watch(struct erun *r, struct watcher *s, int chan)
{
	grpc_op ops[5];

	s->start_ns = lg_now_ns();
	s->call = grpc_channel_create_registered_call(r->chans[chan], NULL, GRPC_PROPAGATE_DEFAULTS,
	                                              r->cq, r->handles[chan],
	                                              gpr_inf_future(GPR_CLOCK_MONOTONIC), NULL);
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

static void start_recv(struct watcher *s)
{
	grpc_op op;

	memset(&op, 0, sizeof(op));
	op.op = GRPC_OP_RECV_MESSAGE;
	op.data.recv_message.recv_message = &s->recv;
	s->recv_pending = true;
	check_batch(grpc_call_start_batch(s->call, &op, 1, tag_of(s, TAG_RECV), NULL));
}

static void end_watch(struct erun *r, struct watcher *s, uint64_t now)
{
	bool whole;

	(void)now;
	s->ended = true;
	r->active--;
	r->codes[lg_code_index(s->status)]++;
	if (r->o->mode == M_REPLAY)
		whole = s->cancelled || s->status == GRPC_STATUS_OK;
	else
		whole = s->cancelled && s->live;
	if (whole)
		r->whole++;
	else
		r->failed++;
	if (!whole && r->failed <= 5) {
		char *d = grpc_slice_to_c_string(s->details);
		fprintf(stderr, "maturity-loadgen: watch %ld ended %s after %llu messages: %s\n",
		        (long)(s - r->w), lg_code_name(lg_code_index(s->status)),
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

static uint64_t realtime_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_REALTIME, &ts);
	return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

/* --- a minimal protobuf walk: the client reads only what it measures --------------------------
 * (resource and time of WatchEventsResponse.event), not the snapshot: fully unpacking every
 * delivery would make the one client thread the bottleneck of a 1,000-watch burst. */

static bool pb_varint(const uint8_t **p, const uint8_t *end, uint64_t *v)
{
	uint64_t x = 0;

	for (int shift = 0; shift < 64 && *p < end; shift += 7) {
		uint8_t b = *(*p)++;
		x |= (uint64_t)(b & 0x7f) << shift;
		if ((b & 0x80) == 0) {
			*v = x;
			return true;
		}
	}
	return false;
}

/* Visits the fields of one message: for each, its number, wire type and (LEN) its bytes or
 * (VARINT) its value. False on malformed input. */
struct pb_field {
	uint32_t num, wt;
	uint64_t v;
	const uint8_t *b;
	size_t len;
};

static bool pb_next(const uint8_t **p, const uint8_t *end, struct pb_field *f)
{
	uint64_t key, len;

	if (!pb_varint(p, end, &key))
		return false;
	f->num = (uint32_t)(key >> 3);
	f->wt = (uint32_t)(key & 7);
	switch (f->wt) {
	case 0:
		return pb_varint(p, end, &f->v);
	case 1:
		if (end - *p < 8)
			return false;
		*p += 8;
		return true;
	case 2:
		if (!pb_varint(p, end, &len) || (uint64_t)(end - *p) < len)
			return false;
		f->b = *p;
		f->len = (size_t)len;
		*p += len;
		return true;
	case 5:
		if (end - *p < 4)
			return false;
		*p += 4;
		return true;
	}
	return false;
}

struct ev_view {
	bool event;
	char resource[512];
	bool has_time;
	uint64_t time_ns;
};

static bool ev_parse(const uint8_t *b, size_t n, struct ev_view *v)
{
	const uint8_t *p = b, *end = b + n;
	struct pb_field f;

	memset(v, 0, sizeof(*v));
	while (p < end) {
		if (!pb_next(&p, end, &f))
			return false;
		if (f.num == 1 && f.wt == 2) {
			const uint8_t *q = f.b, *qe = f.b + f.len;
			struct pb_field g;
			v->event = true;
			while (q < qe) {
				if (!pb_next(&q, qe, &g))
					return false;
				if (g.num == 4 && g.wt == 2) {
					size_t l = g.len < sizeof(v->resource) - 1
					               ? g.len
					               : sizeof(v->resource) - 1;
					memcpy(v->resource, g.b, l);
					v->resource[l] = '\0';
				} else if (g.num == 6 && g.wt == 2) {
					const uint8_t *t = g.b, *te = g.b + g.len;
					struct pb_field h;
					uint64_t sec = 0, nanos = 0;
					while (t < te) {
						if (!pb_next(&t, te, &h))
							return false;
						if (h.num == 1 && h.wt == 0)
							sec = h.v;
						else if (h.num == 2 && h.wt == 0)
							nanos = h.v;
					}
					v->has_time = true;
					v->time_ns = sec * 1000000000u + nanos;
				}
			}
		}
	}
	return true;
}

/* A live event: match it to its write and record the latencies. */
static void on_event(struct erun *r, struct watcher *s, grpc_byte_buffer *bb, uint64_t now)
{
	grpc_byte_buffer_reader rd;
	grpc_slice all;
	struct ev_view v;
	long line, wi;
	struct write_rec *x;
	bool ok;

	if (!grpc_byte_buffer_reader_init(&rd, bb))
		return;
	all = grpc_byte_buffer_reader_readall(&rd);
	grpc_byte_buffer_reader_destroy(&rd);
	ok = ev_parse(GRPC_SLICE_START_PTR(all), GRPC_SLICE_LENGTH(all), &v);
	grpc_slice_unref(all);
	if (!ok)
		return;
	if (!v.event) {
		s->heartbeats++;
		return;
	}
	s->events++;
	r->events++;
	if (!s->live) {
		s->live = true;
		r->live++;
	}
	line = draft_line(r, v.resource);
	wi = line >= 0 ? r->last_write[line] : -1;
	if (wi < 0) {
		r->unmatched++;
		return;
	}
	x = &r->writes[wi];
	if (!x->measured)
		return;
	s->measured++;
	lg_hist_record(&r->from_start, now - x->start_ns);
	if (x->done_ns != 0 && now >= x->done_ns) {
		lg_hist_record(&r->from_done, now - x->done_ns);
	} else {
		lg_hist_record(&r->from_done, 0);
		r->before_reply++;
	}
	if (v.has_time) {
		uint64_t rt = realtime_ns();
		lg_hist_record(&r->from_time, rt > v.time_ns ? rt - v.time_ns : 0);
	}
	if (x->first_ns == 0)
		x->first_ns = now;
	x->last_ns = now;
	x->received++;
	if (x->received == r->o->watchers)
		lg_hist_record(&r->all_watchers, now - x->start_ns);
}

/* Replay: an event message starts with field 1 (tag 0x0a); a heartbeat has only field 2. */
static bool is_event(grpc_byte_buffer *bb)
{
	grpc_byte_buffer_reader rd;
	grpc_slice sl;
	bool ev = false;

	if (!grpc_byte_buffer_reader_init(&rd, bb))
		return false;
	while (grpc_byte_buffer_reader_next(&rd, &sl)) {
		bool got = GRPC_SLICE_LENGTH(sl) > 0;
		if (got)
			ev = GRPC_SLICE_START_PTR(sl)[0] == 0x0a;
		grpc_slice_unref(sl);
		if (got)
			break;
	}
	grpc_byte_buffer_reader_destroy(&rd);
	return ev;
}

static void cancel_all(struct erun *r)
{
	r->cancelling = true;
	for (long i = 0; i < r->o->watchers; i++) {
		struct watcher *s = &r->w[i];
		if (s->call != NULL && !s->ended) {
			s->cancelled = !s->status_done;
			grpc_call_cancel(s->call, NULL);
		}
	}
}

static void on_recv(struct erun *r, struct watcher *s, bool ok, uint64_t now)
{
	s->recv_pending = false;
	if (!ok || s->recv == NULL) {
		if (s->status_done)
			end_watch(r, s, now);
		return;
	}
	s->messages++;
	r->messages++;
	r->bytes += grpc_byte_buffer_length(s->recv);
	if (s->first_ns == 0)
		s->first_ns = now;
	if (r->o->mode == M_REPLAY) {
		if (is_event(s->recv)) {
			s->events++;
			r->events++;
			s->last_event_ns = now;
			if (r->replay_first_ns == 0)
				r->replay_first_ns = now;
			r->replay_last_ns = now;
			if (!s->live) {
				s->live = true;
				r->live++;
			}
		} else {
			s->heartbeats++;
		}
	} else {
		on_event(r, s, s->recv, now);
	}
	grpc_byte_buffer_destroy(s->recv);
	s->recv = NULL;
	if (r->o->mode == M_REPLAY && r->o->expect > 0 && s->events >= (uint64_t)r->o->expect) {
		s->cancelled = !s->status_done;
		grpc_call_cancel(s->call, NULL);
	}
	start_recv(s); /* completes at once without a message once the call has ended */
}

static void on_status(struct erun *r, struct watcher *s, uint64_t now)
{
	s->status_done = true;
	if (!s->recv_pending)
		end_watch(r, s, now);
}

/* --- the run -------------------------------------------------------------------------------- */

static bool all_measured_in(const struct erun *r)
{
	for (long i = 0; i < r->o->watchers; i++) {
		const struct watcher *s = &r->w[i];
		if (!s->ended && s->measured < (uint64_t)r->o->writes)
			return false;
	}
	return true;
}

static void step(struct erun *r, uint64_t now)
{
	const struct events_opts *o = r->o;

	if (r->cancelling)
		return;
	if (atomic_load(&stop_requested)) {
		fprintf(stderr, "maturity-loadgen: interrupted, cancelling the watches\n");
		cancel_all(r);
		return;
	}
	if (o->mode == M_REPLAY) {
		if (now - r->t0 >= (uint64_t)(o->duration_s * 1e9)) {
			fprintf(stderr, "maturity-loadgen: --duration reached, cancelling\n");
			cancel_all(r);
		}
		return;
	}
	if (r->warm) {
		if (r->live + (long)r->failed >= o->watchers) {
			r->warm = false;
			r->live_ns = now;
			fprintf(stderr,
			        "maturity-loadgen: %ld watches live after %.2f s (%ld warm-up "
			        "writes)\n",
			        r->live, (double)(now - r->t0) / 1e9, r->warm_writes);
			if (o->mode == M_IDLE) {
				r->holding = true;
				r->hold_end_ns = now + (uint64_t)(o->hold_s * 1e9);
				if (o->ready_file != NULL) {
					int fd =
					    open(o->ready_file, O_WRONLY | O_CREAT | O_TRUNC, 0644);
					if (fd >= 0)
						close(fd);
				}
				fprintf(stderr, "maturity-loadgen: holding them %.0f s\n",
				        o->hold_s);
			} else {
				r->measuring = true;
				r->measure_t0 = now + 1000000000u; /* let the warm-up settle */
				r->next_write_ns = r->measure_t0;
			}
		} else if (r->wr.index < 0 && now >= r->warm_next_ns) {
			r->warm_writes++;
			start_write(r, false);
			r->warm_next_ns = now + 500000000u;
		}
		return;
	}
	if (r->holding) {
		if (now >= r->hold_end_ns)
			cancel_all(r);
		return;
	}
	if (r->measuring) {
		long issued = r->nwrites - r->warm_writes;
		if (issued < o->writes) {
			if (r->wr.index < 0 && now >= r->next_write_ns) {
				start_write(r, true);
				r->next_write_ns += (uint64_t)(1e9 / o->rate);
			}
		} else if (r->wr.index < 0 && r->measured_done >= o->writes) {
			if (!r->draining) {
				r->draining = true;
			}
			if (all_measured_in(r) ||
			    now - r->last_write_done >= (uint64_t)(o->drain_s * 1e9))
				cancel_all(r);
		}
	}
}

static void drive(struct erun *r)
{
	for (long i = 0; i < r->o->watchers; i++)
		start_watch(r, &r->w[i], (int)(i % r->o->connections));
	r->active = r->o->watchers;
	r->warm = r->o->mode != M_REPLAY;
	while (r->active > 0 || r->wr.index >= 0) {
		uint64_t now = lg_now_ns(), wake = now + 20000000u;
		grpc_event ev;

		if (r->measuring && r->next_write_ns > now && r->next_write_ns < wake)
			wake = r->next_write_ns;
		ev = grpc_completion_queue_next(
		    r->cq, lg_deadline_in_ns(wake > now ? (int64_t)(wake - now) : 0), NULL);
		now = lg_now_ns();
		if (ev.type == GRPC_OP_COMPLETE) {
			uintptr_t what = (uintptr_t)ev.tag & 7;
			void *p = (void *)((uintptr_t)ev.tag & ~(uintptr_t)7);
			if (what == TAG_WRITE)
				on_write(r, now);
			else if (what == TAG_STATUS)
				on_status(r, p, now);
			else
				on_recv(r, p, ev.success != 0, now);
		}
		step(r, now);
	}
}

static void hist_json(FILE *f, const char *name, const struct lg_hist *h)
{
	fprintf(
	    f,
	    "\"%s\":{\"n\":%llu,\"p50_ms\":%.3f,\"p90_ms\":%.3f,\"p99_ms\":%.3f,\"max_ms\":%.3f}",
	    name, (unsigned long long)h->n, (double)lg_hist_quantile(h, 0.5) / 1e6,
	    (double)lg_hist_quantile(h, 0.9) / 1e6, (double)lg_hist_quantile(h, 0.99) / 1e6,
	    (double)h->max_ns / 1e6);
}

static void report(FILE *f, const struct erun *r, bool json)
{
	const struct events_opts *o = r->o;
	double live_s = r->live_ns ? (double)(r->live_ns - r->t0) / 1e9 : -1;
	double replay_s = r->replay_last_ns ? (double)(r->replay_last_ns - r->t0) / 1e9 : 0;
	double eps = replay_s > 0 ? (double)r->events / replay_s : 0;
	uint64_t expected = (uint64_t)o->watchers * (uint64_t)(o->mode == M_FANOUT ? o->writes : 0);
	bool first = true;

	if (!json) {
		fprintf(f, "%-7s %8s %5s %6s %6s %9s %9s %8s", "mode", "watchers", "conns", "whole",
		        "failed", "messages", "events", "live_s");
		if (o->mode == M_FANOUT)
			fprintf(f, " %9s %9s %9s %9s %9s %9s", "delivered", "expected", "start_p50",
			        "start_p99", "done_p99", "time_p99");
		if (o->mode == M_REPLAY)
			fprintf(f, " %9s %10s", "seconds", "events/s");
		fprintf(f, "  codes\n%-7s %8ld %5ld %6llu %6llu %9llu %9llu %8.2f", o->mode_name,
		        o->watchers, o->connections, (unsigned long long)r->whole,
		        (unsigned long long)r->failed, (unsigned long long)r->messages,
		        (unsigned long long)r->events, live_s);
		if (o->mode == M_FANOUT)
			fprintf(f, " %9llu %9llu %9.1f %9.1f %9.1f %9.1f",
			        (unsigned long long)r->from_start.n, (unsigned long long)expected,
			        (double)lg_hist_quantile(&r->from_start, 0.5) / 1e6,
			        (double)lg_hist_quantile(&r->from_start, 0.99) / 1e6,
			        (double)lg_hist_quantile(&r->from_done, 0.99) / 1e6,
			        (double)lg_hist_quantile(&r->from_time, 0.99) / 1e6);
		if (o->mode == M_REPLAY)
			fprintf(f, " %9.2f %10.0f", replay_s, eps);
		fputs("  ", f);
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
	        "{\"mode\":\"%s\",\"watchers\":%ld,\"connections\":%ld,\"parent\":\"%s\","
	        "\"whole\":%llu,\"failed\":%llu,\"messages\":%llu,\"bytes\":%llu,\"events\":%llu,"
	        "\"live_s\":%.3f,\"warm_writes\":%ld,\"writes\":%ld,\"rate\":%.2f,"
	        "\"write_failed\":%llu,\"delivered\":%llu,\"expected\":%llu,\"unmatched\":%llu,"
	        "\"before_reply\":%llu,\"hold_s\":%.1f,\"replay_s\":%.3f,\"events_per_s\":%.1f,"
	        "\"first_s\":%.3f,",
	        o->mode_name, o->watchers, o->connections, o->parent, (unsigned long long)r->whole,
	        (unsigned long long)r->failed, (unsigned long long)r->messages,
	        (unsigned long long)r->bytes, (unsigned long long)r->events, live_s, r->warm_writes,
	        o->mode == M_FANOUT ? o->writes : 0, o->mode == M_FANOUT ? o->rate : 0.0,
	        (unsigned long long)r->write_failed, (unsigned long long)r->from_start.n,
	        (unsigned long long)expected, (unsigned long long)r->unmatched,
	        (unsigned long long)r->before_reply, o->mode == M_IDLE ? o->hold_s : 0.0, replay_s,
	        eps, r->replay_first_ns ? (double)(r->replay_first_ns - r->t0) / 1e9 : -1.0);
	hist_json(f, "from_write_start", &r->from_start);
	fputc(',', f);
	hist_json(f, "from_write_done", &r->from_done);
	fputc(',', f);
	hist_json(f, "from_event_time", &r->from_time);
	fputc(',', f);
	hist_json(f, "all_watchers", &r->all_watchers);
	fputc(',', f);
	hist_json(f, "write", &r->write_lat);
	fputs(",\"codes\":{", f);
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

static int write_json(const char *path, const struct erun *r)
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

static bool setup_writer(struct erun *r, const struct events_opts *o)
{
	struct lg_scenario_opts so = {.name = "update-answers", .drafts_file = o->drafts_file};
	char err[256] = "";

	r->scen = lg_scenario_new(&so, err, sizeof(err));
	if (r->scen == NULL) {
		fprintf(stderr, "maturity-loadgen events: %s\n", err);
		return false;
	}
	r->drafts = lg_read_lines(o->drafts_file, &r->ndrafts);
	if (r->drafts == NULL || r->ndrafts == 0) {
		fprintf(stderr, "maturity-loadgen events: no drafts in %s\n", o->drafts_file);
		return false;
	}
	r->sorted = calloc(r->ndrafts, sizeof(*r->sorted));
	r->last_write = malloc(r->ndrafts * sizeof(*r->last_write));
	/* Warm-up writes (at most 2 a second for a minute) and the measured ones. */
	r->nwrites_max = 120 + o->writes;
	r->writes = calloc((size_t)r->nwrites_max, sizeof(*r->writes));
	if (r->sorted == NULL || r->last_write == NULL || r->writes == NULL)
		return false;
	for (size_t i = 0; i < r->ndrafts; i++) {
		r->sorted[i] = i;
		r->last_write[i] = -1;
	}
	sort_base = (const char *const *)r->drafts;
	qsort(r->sorted, r->ndrafts, sizeof(*r->sorted), cmp_idx);
	if ((long)r->ndrafts < o->writes + 120)
		fprintf(
		    stderr,
		    "maturity-loadgen events: warning: %zu drafts for up to %ld writes: a draft "
		    "written twice is matched to its latest write\n",
		    r->ndrafts, o->writes + 120);
	return true;
}

static int run_events(const struct events_opts *o)
{
	struct erun *r = calloc(1, sizeof(*r));
	grpc_channel_credentials *creds;
	struct sigaction sa;
	bool need_writer = o->mode != M_REPLAY;
	int rc = 1;

	if (r == NULL)
		return 1;
	r->o = o;
	r->wr.index = -1;
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
	r->w = calloc((size_t)o->watchers, sizeof(*r->w));
	if (r->chans == NULL || r->handles == NULL || r->w == NULL) {
		fprintf(stderr, "maturity-loadgen: out of memory\n");
		goto out;
	}
	if (need_writer && !setup_writer(r, o)) {
		rc = 2;
		goto out;
	}
	creds = lg_client_creds(o->ca, o->cert, o->key);
	if (creds == NULL) {
		rc = 2;
		goto out;
	}
	for (long i = 0; i < o->connections; i++) {
		r->chans[i] = lg_channel_new(o->target, creds);
		r->handles[i] = grpc_channel_register_call(
		    r->chans[i], "/mlops.maturity.v1.EventService/WatchEvents", NULL, NULL);
	}
	if (need_writer) {
		r->wchan = lg_channel_new(o->writer_target, creds);
		r->whandle = grpc_channel_register_call(
		    r->wchan, lg_method_path[LG_M_UPDATE_ANSWERS], NULL, NULL);
	}
	grpc_channel_credentials_release(creds);
	if (!lg_connect_all(r->chans, (int)o->connections, o->connect_timeout_s) ||
	    (need_writer && !lg_connect_all(&r->wchan, 1, o->connect_timeout_s))) {
		fprintf(stderr,
		        "maturity-loadgen: cannot connect within %.0f s (server down, or TLS "
		        "refused: wrong CA, certificate or key?)\n",
		        o->connect_timeout_s);
		goto out;
	}
	fprintf(stderr, "maturity-loadgen: events %s, %ld watches of %s over %ld connections%s%s\n",
	        o->mode_name, o->watchers, o->parent, o->connections,
	        need_writer ? ", writer on " : "", need_writer ? o->writer_target : "");
	r->cq = grpc_completion_queue_create_for_next(NULL);
	r->t0 = lg_now_ns();
	drive(r);
	report(stdout, r, false);
	rc = r->failed > 0 ? 3 : 0;
	if (o->mode == M_FANOUT && r->from_start.n < (uint64_t)o->watchers * (uint64_t)o->writes)
		rc = 3;
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
	if (r->wchan != NULL)
		grpc_channel_destroy(r->wchan);
	free(r->chans);
	free(r->handles);
	free(r->w);
	free(r->writes);
	free(r->sorted);
	free(r->last_write);
	if (r->drafts != NULL)
		lg_lines_free(r->drafts, r->ndrafts);
	if (r->scen != NULL)
		lg_scenario_free(r->scen);
	grpc_slice_unref(r->request);
	free(r);
	grpc_shutdown_blocking();
	return rc;
}

/* --- command line --------------------------------------------------------------------------- */

enum {
	OPT_TARGET = 256,
	OPT_WRITER_TARGET,
	OPT_CA,
	OPT_CERT,
	OPT_KEY,
	OPT_MODE,
	OPT_WATCHERS,
	OPT_CONNECTIONS,
	OPT_PARENT,
	OPT_DRAFTS,
	OPT_WRITES,
	OPT_RATE,
	OPT_DRAIN,
	OPT_HOLD,
	OPT_READY,
	OPT_EXPECT,
	OPT_DURATION,
	OPT_JSON,
	OPT_HELP,
};

static int bad_value(const char *flag, const char *value)
{
	fprintf(stderr, "maturity-loadgen: bad value for --%s: %s\n", flag, value);
	return 2;
}

int lg_events_main(int argc, char **argv)
{
	static const struct option longopts[] = {
	    {"target", required_argument, NULL, OPT_TARGET},
	    {"writer-target", required_argument, NULL, OPT_WRITER_TARGET},
	    {"ca", required_argument, NULL, OPT_CA},
	    {"cert", required_argument, NULL, OPT_CERT},
	    {"key", required_argument, NULL, OPT_KEY},
	    {"mode", required_argument, NULL, OPT_MODE},
	    {"watchers", required_argument, NULL, OPT_WATCHERS},
	    {"connections", required_argument, NULL, OPT_CONNECTIONS},
	    {"parent", required_argument, NULL, OPT_PARENT},
	    {"drafts-file", required_argument, NULL, OPT_DRAFTS},
	    {"writes", required_argument, NULL, OPT_WRITES},
	    {"rate", required_argument, NULL, OPT_RATE},
	    {"drain", required_argument, NULL, OPT_DRAIN},
	    {"hold", required_argument, NULL, OPT_HOLD},
	    {"ready-file", required_argument, NULL, OPT_READY},
	    {"expect", required_argument, NULL, OPT_EXPECT},
	    {"duration", required_argument, NULL, OPT_DURATION},
	    {"json", required_argument, NULL, OPT_JSON},
	    {"help", no_argument, NULL, OPT_HELP},
	    {NULL, 0, NULL, 0},
	};
	struct events_opts o;
	int c;

	memset(&o, 0, sizeof(o));
	o.watchers = 1;
	o.connections = 1;
	o.parent = "organizations/-";
	o.writes = 100;
	o.rate = 5;
	o.drain_s = 10;
	o.hold_s = 20;
	o.duration_s = 60;
	o.connect_timeout_s = 30;
	optind = 1;
	while ((c = getopt_long(argc, argv, "", longopts, NULL)) != -1) {
		switch (c) {
		case OPT_TARGET:
			o.target = optarg;
			break;
		case OPT_WRITER_TARGET:
			o.writer_target = optarg;
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
		case OPT_MODE:
			o.mode_name = optarg;
			break;
		case OPT_WATCHERS:
			if (!lg_parse_int(optarg, 1, 1000000, &o.watchers))
				return bad_value("watchers", optarg);
			break;
		case OPT_CONNECTIONS:
			if (!lg_parse_int(optarg, 1, 10000, &o.connections))
				return bad_value("connections", optarg);
			break;
		case OPT_PARENT:
			o.parent = optarg;
			break;
		case OPT_DRAFTS:
			o.drafts_file = optarg;
			break;
		case OPT_WRITES:
			if (!lg_parse_int(optarg, 1, 1000000, &o.writes))
				return bad_value("writes", optarg);
			break;
		case OPT_RATE:
			if (!lg_parse_double(optarg, 0.01, 100000, &o.rate))
				return bad_value("rate", optarg);
			break;
		case OPT_DRAIN:
			if (!lg_parse_double(optarg, 0, 3600, &o.drain_s))
				return bad_value("drain", optarg);
			break;
		case OPT_HOLD:
			if (!lg_parse_double(optarg, 0, 1e6, &o.hold_s))
				return bad_value("hold", optarg);
			break;
		case OPT_READY:
			o.ready_file = optarg;
			break;
		case OPT_EXPECT:
			if (!lg_parse_int(optarg, 0, 1000000000, &o.expect))
				return bad_value("expect", optarg);
			break;
		case OPT_DURATION:
			if (!lg_parse_double(optarg, 0.1, 1e6, &o.duration_s))
				return bad_value("duration", optarg);
			break;
		case OPT_JSON:
			o.json = optarg;
			break;
		case OPT_HELP:
			events_usage(stdout);
			return 0;
		default:
			events_usage(stderr);
			return 2;
		}
	}
	if (optind < argc) {
		fprintf(stderr, "maturity-loadgen: unexpected argument %s\n", argv[optind]);
		return 2;
	}
	if (o.target == NULL || o.ca == NULL || o.cert == NULL || o.key == NULL ||
	    o.mode_name == NULL) {
		fprintf(stderr, "maturity-loadgen events: --target, --ca, --cert, --key and --mode "
		                "are required\n");
		return 2;
	}
	if (strcmp(o.mode_name, "fanout") == 0)
		o.mode = M_FANOUT;
	else if (strcmp(o.mode_name, "idle") == 0)
		o.mode = M_IDLE;
	else if (strcmp(o.mode_name, "replay") == 0)
		o.mode = M_REPLAY;
	else {
		fprintf(stderr, "maturity-loadgen events: unknown mode %s\n", o.mode_name);
		return 2;
	}
	if (o.mode != M_REPLAY && o.drafts_file == NULL) {
		fprintf(stderr, "maturity-loadgen events: %s needs --drafts-file (the writer's)\n",
		        o.mode_name);
		return 2;
	}
	if (o.writer_target == NULL)
		o.writer_target = o.target;
	return run_events(&o);
}
