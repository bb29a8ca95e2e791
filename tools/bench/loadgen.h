/* maturity-loadgen: the pieces shared by its modules — the client (loadgen.c), the request
 * scenarios (loadgen_scenario.c), latency statistics and reports (loadgen_stats.c), small
 * utilities (loadgen_util.c), the bare grpc-core baseline server (loadgen_baseline.c) and the
 * server-stream client (loadgen_streams.c) and the event watchers (loadgen_events.c). */
#ifndef MATURITY_LOADGEN_H
#define MATURITY_LOADGEN_H

#include <grpc/grpc.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

/* --- utilities (loadgen_util.c) ------------------------------------------------------- */

/* CLOCK_MONOTONIC in nanoseconds: every latency and schedule in the tool uses it. */
uint64_t lg_now_ns(void);
/* The whole file, NUL-terminated; NULL if it cannot be read. free() it. */
char *lg_slurp(const char *path);
/* The non-empty lines of a file that do not start with '#', trimmed; NULL if it cannot be
 * read. Free with lg_lines_free. */
char **lg_read_lines(const char *path, size_t *n);
void lg_lines_free(char **lines, size_t n);
/* Parses a whole decimal number / floating-point number; false on junk or out of range. */
bool lg_parse_int(const char *s, long lo, long hi, long *out);
bool lg_parse_double(const char *s, double lo, double hi, double *out);
/* A gpr deadline `ns` nanoseconds from now. */
gpr_timespec lg_deadline_in_ns(int64_t ns);
/* Mutual-TLS credentials from PEM files; NULL (with a message on stderr) if one cannot be read. */
grpc_channel_credentials *lg_client_creds(const char *ca, const char *cert, const char *key);
/* A channel that is its own connection (GRPC_ARG_USE_LOCAL_SUBCHANNEL_POOL), without retries,
 * expecting the server certificate's name "localhost". */
grpc_channel *lg_channel_new(const char *target, grpc_channel_credentials *creds);
/* Waits until every channel is connected (TLS handshake done); false after timeout_s. */
bool lg_connect_all(grpc_channel *const *chs, int n, double timeout_s);
/* Raises the soft RLIMIT_NOFILE to the hard limit (thousands of connections or calls). */
bool lg_raise_nofile(void);

/* --- methods and scenarios (loadgen_scenario.c) --------------------------------------- */

enum lg_method {
	LG_M_HEALTH,
	LG_M_GET_ORGANIZATION,
	LG_M_LIST_ORGANIZATIONS,
	LG_M_GET_ASSESSMENT,
	LG_M_EVALUATE,
	LG_M_UPDATE_ANSWERS,
	LG_M_SUBMIT,
	LG_M_ROADMAP,
	LG_M_LIVE_SCORE,
	LG_M_CHECK_GATE,
	LG_M_REPORT_EVIDENCE,
	LG_N_METHODS
};

/* Full gRPC paths, and the scenario name of the single-method scenario for each. */
extern const char *const lg_method_path[LG_N_METHODS];
extern const char *const lg_method_name[LG_N_METHODS];

struct lg_scenario_opts {
	const char *name;       /* a method's scenario name or "mixed" */
	const char *org;        /* one organization id (or full name) instead of a range */
	const char *org_prefix; /* organizations/{org_prefix}-{i} */
	long orgs;              /* i in org_base..org_base+orgs-1 */
	long org_base;
	const char *assessments_file; /* get-assessment: one full assessment name per line */
	const char *drafts_file;      /* update-answers, submit: one draft assessment per line */
};

struct lg_scenario;

/* Packs every distinct request once. NULL with a message in err on bad options or files. */
struct lg_scenario *lg_scenario_new(const struct lg_scenario_opts *o, char *err, size_t errlen);
void lg_scenario_free(struct lg_scenario *s);
/* True if the scenario sends calls of this method (the client registers only those). */
bool lg_scenario_uses(const struct lg_scenario *s, int method);
/* The request of call number i (borrowed slice, valid until lg_scenario_free). False when
 * the scenario has run out of requests (submit: each draft is submitted once). */
bool lg_scenario_next(const struct lg_scenario *s, uint64_t i, int *method, grpc_slice *payload);
/* "Submit each draft once" scenarios end by themselves. */
bool lg_scenario_finite(const struct lg_scenario *s);

/* --- statistics and reports (loadgen_stats.c) ----------------------------------------- */

/* Log-linear latency histogram (HdrHistogram-like): exact below 256 ns, then 128 buckets per
 * power of two (relative error < 0.4 %), up to 2^42 ns (73 min). Mergeable and fixed-size,
 * so a client thread records a call in a few instructions and never allocates. */
#define LG_HIST_BUCKETS 4608
struct lg_hist {
	uint64_t n, sum_ns, min_ns, max_ns;
	uint64_t counts[LG_HIST_BUCKETS];
};
void lg_hist_record(struct lg_hist *h, uint64_t ns);
void lg_hist_merge(struct lg_hist *into, const struct lg_hist *from);
/* The q-quantile (0 < q <= 1) in nanoseconds; 0 for an empty histogram. */
uint64_t lg_hist_quantile(const struct lg_hist *h, double q);

/* Status codes 0..16, then one slot for anything else. */
#define LG_N_CODES 18
int lg_code_index(grpc_status_code code);
const char *lg_code_name(int index);

struct lg_result {
	const char *scenario;
	const char *mode; /* "closed" or "open" */
	int concurrency;  /* closed: calls in flight; open: the in-flight cap */
	int connections;
	int threads;
	double rate; /* open loop: scheduled calls/s; 0 for closed loop */
	double duration_s, warmup_s;
	bool exhausted;   /* a finite scenario ran out before the end (duration_s is shortened) */
	uint64_t dropped; /* open loop: scheduled sends skipped because the cap was reached */
	/* Open loop: how late the client started calls against the schedule. Large values mean
	 * the client, not the server, limited the rate. */
	struct lg_hist lag;
	struct lg_hist hist[LG_N_METHODS];
	uint64_t codes[LG_N_METHODS][LG_N_CODES];
};

/* A header line and one line for the run (plus one per method when several were used). */
void lg_report_table(FILE *f, const struct lg_result *r);
/* One JSON object on one line. */
void lg_report_json(FILE *f, const struct lg_result *r);

/* --- the baseline server (loadgen_baseline.c) ----------------------------------------- */

int lg_baseline_main(int argc, char **argv);

/* --- many server streams from one thread (loadgen_streams.c) -------------------------- */

int lg_streams_main(int argc, char **argv);

/* --- EventService/WatchEvents: fan-out, idle watches, replay (loadgen_events.c) ------- */

int lg_events_main(int argc, char **argv);

#endif
