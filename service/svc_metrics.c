/* Metrics: atomic counters per (method, code) and a fixed-bucket histogram per method. */
#include "svc_metrics.h"

#include "svc_log.h"
#include "svc_status.h"

#include <arpa/inet.h>
#include <dirent.h>
#include <microhttpd.h>
#include <netdb.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <time.h>
#include <unistd.h>

#define N_CODES 17
static const double buckets[] = {0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05,
                                 0.1,    0.25,  0.5,    1,     2.5,  5,     10};
#define N_BUCKETS (sizeof(buckets) / sizeof(buckets[0]))

struct method_metrics {
	const char *service, *method;
	atomic_ullong started;
	atomic_ullong handled[N_CODES];
	atomic_ullong bucket[N_BUCKETS + 1]; /* last = +Inf */
	atomic_ullong sum_us;
};

struct svc_metrics {
	size_t n;
	struct method_metrics *m;
	atomic_ullong unknown_started;
	/* WatchEvents. */
	atomic_llong watchers;
	atomic_ullong events_delivered, watchers_too_slow;
	atomic_ullong calls_reset;            /* reset by the client before they were handled */
	atomic_ullong latency_bucket[10 + 1]; /* last = +Inf */
	atomic_ullong latency_sum_us;
	/* The front door: labels in door_labels[], "other" last. */
	atomic_llong conns_open;
	atomic_ullong door[3][12];
	struct MHD_Daemon *daemon;
	struct store_pool *pool;
	double start_time_s; /* process start, seconds since the epoch */
};

/* The process's start time from /proc (its start in clock ticks after boot, plus the boot time);
 * `fallback` when /proc cannot tell. */
static double process_start_time(double fallback)
{
	char buf[1024], *p;
	unsigned long long start_ticks = 0;
	double btime = 0;
	FILE *f = fopen("/proc/self/stat", "r");
	size_t n;
	long hz = sysconf(_SC_CLK_TCK);

	if (f == NULL)
		return fallback;
	n = fread(buf, 1, sizeof(buf) - 1, f);
	fclose(f);
	buf[n] = '\0';
	/* After the command name in parentheses, field 22 (starttime) is the 20th. */
	p = strrchr(buf, ')');
	if (p == NULL || sscanf(p + 2,
	                        "%*c %*d %*d %*d %*d %*d %*u %*u %*u %*u %*u %*u %*u %*d %*d %*d "
	                        "%*d %*d %*d %llu",
	                        &start_ticks) != 1)
		return fallback;
	f = fopen("/proc/stat", "r");
	if (f == NULL)
		return fallback;
	while (fgets(buf, sizeof(buf), f) != NULL)
		if (sscanf(buf, "btime %lf", &btime) == 1)
			break;
	fclose(f);
	if (btime <= 0 || hz <= 0)
		return fallback;
	return btime + (double)start_ticks / (double)hz;
}

struct svc_metrics *svc_metrics_new(size_t n_methods)
{
	struct svc_metrics *mt = calloc(1, sizeof(*mt));
	if (mt == NULL)
		return NULL;
	mt->m = calloc(n_methods ? n_methods : 1, sizeof(*mt->m));
	if (mt->m == NULL) {
		free(mt);
		return NULL;
	}
	mt->n = n_methods;
	{
		struct timespec now;
		clock_gettime(CLOCK_REALTIME, &now);
		mt->start_time_s =
		    process_start_time((double)now.tv_sec + (double)now.tv_nsec / 1e9);
	}
	return mt;
}

void svc_metrics_set_method(struct svc_metrics *m, size_t i, const char *service,
                            const char *method)
{
	m->m[i].service = service;
	m->m[i].method = method;
}

void svc_metrics_watchers(struct svc_metrics *m, int delta)
{
	if (m != NULL)
		atomic_fetch_add_explicit(&m->watchers, delta, memory_order_relaxed);
}

void svc_metrics_events_delivered(struct svc_metrics *m, unsigned n)
{
	if (m != NULL)
		atomic_fetch_add_explicit(&m->events_delivered, n, memory_order_relaxed);
}

void svc_metrics_call_reset(struct svc_metrics *m)
{
	if (m != NULL)
		atomic_fetch_add_explicit(&m->calls_reset, 1, memory_order_relaxed);
}

void svc_metrics_watcher_too_slow(struct svc_metrics *m)
{
	if (m != NULL)
		atomic_fetch_add_explicit(&m->watchers_too_slow, 1, memory_order_relaxed);
}

enum { DOOR_REFUSED, DOOR_HANDSHAKE, DOOR_ABUSE };
static const char *const door_labels[3][12] = {
    {"limit", "fd_limit", "other"},
    {"protocol", "no_certificate", "untrusted", "expired", "revoked", "no_identity", "closed",
     "timeout", "evicted", "other"},
    {"rapid_reset", "header_block", "header_list", "ping_flood", "settings_flood", "empty_frames",
     "protocol", "slow_reader", "other"},
};

static void door_count(struct svc_metrics *m, int kind, const char *reason)
{
	int i = 0;

	if (m == NULL)
		return;
	while (door_labels[kind][i + 1] != NULL && strcmp(door_labels[kind][i], reason) != 0)
		i++; /* the last label is "other" */
	atomic_fetch_add_explicit(&m->door[kind][i], 1, memory_order_relaxed);
}

void svc_metrics_connections_open(struct svc_metrics *m, int delta)
{
	if (m != NULL)
		atomic_fetch_add_explicit(&m->conns_open, delta, memory_order_relaxed);
}

void svc_metrics_connection_refused(struct svc_metrics *m, const char *reason)
{
	door_count(m, DOOR_REFUSED, reason);
}

void svc_metrics_handshake_failed(struct svc_metrics *m, const char *reason)
{
	door_count(m, DOOR_HANDSHAKE, reason);
}

void svc_metrics_connection_abuse(struct svc_metrics *m, const char *reason)
{
	door_count(m, DOOR_ABUSE, reason);
}

static const double latency_buckets[10] = {0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5};

void svc_metrics_event_latency(struct svc_metrics *m, double seconds)
{
	size_t b = 0;

	if (m == NULL)
		return;
	while (b < 10 && seconds > latency_buckets[b])
		b++;
	atomic_fetch_add_explicit(&m->latency_bucket[b], 1, memory_order_relaxed);
	atomic_fetch_add_explicit(&m->latency_sum_us, (unsigned long long)(seconds * 1e6),
	                          memory_order_relaxed);
}

void svc_metrics_free(struct svc_metrics *m)
{
	if (m == NULL)
		return;
	svc_metrics_stop(m);
	free(m->m);
	free(m);
}

void svc_metrics_started(struct svc_metrics *m, int index)
{
	if (index < 0)
		atomic_fetch_add_explicit(&m->unknown_started, 1, memory_order_relaxed);
	else
		atomic_fetch_add_explicit(&m->m[index].started, 1, memory_order_relaxed);
}

void svc_metrics_handled(struct svc_metrics *m, int index, int code, double seconds)
{
	struct method_metrics *mm;
	size_t b = 0;

	if (index < 0 || code < 0 || code >= N_CODES)
		return;
	mm = &m->m[index];
	atomic_fetch_add_explicit(&mm->handled[code], 1, memory_order_relaxed);
	while (b < N_BUCKETS && seconds > buckets[b])
		b++;
	atomic_fetch_add_explicit(&mm->bucket[b], 1, memory_order_relaxed);
	atomic_fetch_add_explicit(&mm->sum_us, (unsigned long long)(seconds * 1e6),
	                          memory_order_relaxed);
}

struct sbuf {
	char *d;
	size_t n, cap;
};

static void sb_printf(struct sbuf *b, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void sb_printf(struct sbuf *b, const char *fmt, ...)
{
	va_list ap;
	int need;

	for (;;) {
		va_start(ap, fmt);
		need = vsnprintf(b->d ? b->d + b->n : NULL, b->d ? b->cap - b->n : 0, fmt, ap);
		va_end(ap);
		if (need < 0)
			return;
		if (b->d != NULL && b->n + (size_t)need < b->cap) {
			b->n += (size_t)need;
			return;
		}
		size_t cap = (b->cap ? b->cap * 2 : 65536) + (size_t)need;
		char *d = realloc(b->d, cap);
		if (d == NULL)
			return;
		b->d = d;
		b->cap = cap;
	}
}

static const char *grpc_type(const struct method_metrics *mm)
{
	if (strcmp(mm->method, "Watch") == 0 || strncmp(mm->method, "Export", 6) == 0)
		return "server_stream";
	if (strcmp(mm->method, "ServerReflectionInfo") == 0)
		return "bidi_stream";
	return "unary";
}

/* The standard process_* metrics of Prometheus client libraries, from /proc and getrusage. */
static void render_process(struct sbuf *b, const struct svc_metrics *m)
{
	struct rusage ru;
	struct rlimit rl;
	unsigned long long vm_pages = 0, rss_pages = 0;
	long page = sysconf(_SC_PAGESIZE);
	long open_fds = 0;
	FILE *f;
	DIR *d;

	if (getrusage(RUSAGE_SELF, &ru) == 0)
		sb_printf(
		    b,
		    "# HELP process_cpu_seconds_total Total user and system CPU time spent in "
		    "seconds.\n# TYPE process_cpu_seconds_total counter\n"
		    "process_cpu_seconds_total %.6f\n",
		    (double)ru.ru_utime.tv_sec + (double)ru.ru_utime.tv_usec / 1e6 +
		        (double)ru.ru_stime.tv_sec + (double)ru.ru_stime.tv_usec / 1e6);
	f = fopen("/proc/self/statm", "r");
	if (f != NULL) {
		if (fscanf(f, "%llu %llu", &vm_pages, &rss_pages) == 2)
			sb_printf(
			    b,
			    "# HELP process_resident_memory_bytes Resident memory size in "
			    "bytes.\n# TYPE process_resident_memory_bytes gauge\n"
			    "process_resident_memory_bytes %llu\n"
			    "# HELP process_virtual_memory_bytes Virtual memory size in bytes.\n"
			    "# TYPE process_virtual_memory_bytes gauge\n"
			    "process_virtual_memory_bytes %llu\n",
			    rss_pages * (unsigned long long)page,
			    vm_pages * (unsigned long long)page);
		fclose(f);
	}
	d = opendir("/proc/self/fd");
	if (d != NULL) {
		for (struct dirent *e; (e = readdir(d)) != NULL;)
			open_fds += e->d_name[0] != '.';
		closedir(d);
		open_fds--; /* the directory's own descriptor */
		sb_printf(b,
		          "# HELP process_open_fds Number of open file descriptors.\n"
		          "# TYPE process_open_fds gauge\nprocess_open_fds %ld\n",
		          open_fds);
	}
	if (getrlimit(RLIMIT_NOFILE, &rl) == 0)
		sb_printf(b,
		          "# HELP process_max_fds Maximum number of open file descriptors.\n"
		          "# TYPE process_max_fds gauge\nprocess_max_fds %llu\n",
		          (unsigned long long)rl.rlim_cur);
	sb_printf(b,
	          "# HELP process_start_time_seconds Start time of the process since unix epoch "
	          "in seconds.\n# TYPE process_start_time_seconds gauge\n"
	          "process_start_time_seconds %.2f\n",
	          m->start_time_s);
}

static void render_door(struct sbuf *b, struct svc_metrics *m)
{
	/* Literal HELP/TYPE lines (tests/docs reads the exported names from them). */
	static const char *const heads[3] = {
	    "# HELP maturityd_connections_refused_total Connections closed at accept: over "
	    "--max-connections, or out of descriptors.\n"
	    "# TYPE maturityd_connections_refused_total counter\n",
	    "# HELP maturityd_handshakes_failed_total Connections closed before their TLS "
	    "handshake finished, by reason.\n"
	    "# TYPE maturityd_handshakes_failed_total counter\n",
	    "# HELP maturityd_connections_closed_abuse_total Connections closed with "
	    "GOAWAY(ENHANCE_YOUR_CALM) by the frame guard, or as slow readers.\n"
	    "# TYPE maturityd_connections_closed_abuse_total counter\n",
	};
	static const char *const names[3] = {"maturityd_connections_refused_total",
	                                     "maturityd_handshakes_failed_total",
	                                     "maturityd_connections_closed_abuse_total"};

	sb_printf(b,
	          "# HELP maturityd_connections_open Client connections open on the front door.\n"
	          "# TYPE maturityd_connections_open gauge\nmaturityd_connections_open %lld\n",
	          (long long)atomic_load(&m->conns_open));
	for (int k = 0; k < 3; k++) {
		sb_printf(b, "%s", heads[k]);
		for (int i = 0; door_labels[k][i] != NULL; i++)
			sb_printf(b, "%s{reason=\"%s\"} %llu\n", names[k], door_labels[k][i],
			          atomic_load(&m->door[k][i]));
	}
}

char *svc_metrics_render(struct svc_metrics *m, struct store_pool *pool)
{
	struct sbuf b = {0};

	sb_printf(&b, "# HELP grpc_server_started_total Total number of RPCs started on the "
	              "server.\n# TYPE grpc_server_started_total counter\n");
	for (size_t i = 0; i < m->n; i++) {
		struct method_metrics *mm = &m->m[i];
		sb_printf(&b,
		          "grpc_server_started_total{grpc_type=\"%s\",grpc_service=\"%s\","
		          "grpc_method=\"%s\"} %llu\n",
		          grpc_type(mm), mm->service, mm->method, atomic_load(&mm->started));
	}
	sb_printf(&b, "# HELP grpc_server_handled_total Total number of RPCs completed on the "
	              "server, regardless of success or failure.\n"
	              "# TYPE grpc_server_handled_total counter\n");
	for (size_t i = 0; i < m->n; i++) {
		struct method_metrics *mm = &m->m[i];
		for (int c = 0; c < N_CODES; c++) {
			unsigned long long v = atomic_load(&mm->handled[c]);
			if (v == 0 && c != 0)
				continue;
			sb_printf(&b,
			          "grpc_server_handled_total{grpc_type=\"%s\",grpc_service=\"%s\","
			          "grpc_method=\"%s\",grpc_code=\"%s\"} %llu\n",
			          grpc_type(mm), mm->service, mm->method, svc_status_code_name(c),
			          v);
		}
	}
	sb_printf(&b, "# HELP grpc_server_handling_seconds Histogram of response latency "
	              "(seconds) of gRPC that had been application-level handled by the server.\n"
	              "# TYPE grpc_server_handling_seconds histogram\n");
	for (size_t i = 0; i < m->n; i++) {
		struct method_metrics *mm = &m->m[i];
		unsigned long long cum = 0;
		for (size_t k = 0; k <= N_BUCKETS; k++) {
			cum += atomic_load(&mm->bucket[k]);
			if (k < N_BUCKETS)
				sb_printf(
				    &b,
				    "grpc_server_handling_seconds_bucket{grpc_type=\"%s\","
				    "grpc_service=\"%s\",grpc_method=\"%s\",le=\"%g\"} %llu\n",
				    grpc_type(mm), mm->service, mm->method, buckets[k], cum);
			else
				sb_printf(
				    &b,
				    "grpc_server_handling_seconds_bucket{grpc_type=\"%s\","
				    "grpc_service=\"%s\",grpc_method=\"%s\",le=\"+Inf\"} %llu\n",
				    grpc_type(mm), mm->service, mm->method, cum);
		}
		sb_printf(&b,
		          "grpc_server_handling_seconds_sum{grpc_type=\"%s\",grpc_service=\"%s\","
		          "grpc_method=\"%s\"} %.6f\n"
		          "grpc_server_handling_seconds_count{grpc_type=\"%s\",grpc_service=\"%s\","
		          "grpc_method=\"%s\"} %llu\n",
		          grpc_type(mm), mm->service, mm->method,
		          (double)atomic_load(&mm->sum_us) / 1e6, grpc_type(mm), mm->service,
		          mm->method, cum);
	}
	sb_printf(&b,
	          "# HELP maturityd_unknown_method_calls_total Calls to paths not in the "
	          "API (answered UNIMPLEMENTED).\n# TYPE maturityd_unknown_method_calls_total "
	          "counter\nmaturityd_unknown_method_calls_total %llu\n",
	          atomic_load(&m->unknown_started));
	sb_printf(
	    &b,
	    "# HELP maturityd_event_watchers WatchEvents streams open on this replica.\n"
	    "# TYPE maturityd_event_watchers gauge\nmaturityd_event_watchers %lld\n"
	    "# HELP maturityd_events_delivered_total Events sent to watchers (heartbeats "
	    "not counted).\n# TYPE maturityd_events_delivered_total counter\n"
	    "maturityd_events_delivered_total %llu\n"
	    "# HELP maturityd_event_watchers_too_slow_total Watches ended with "
	    "RESOURCE_EXHAUSTED: they fell behind the replica's window of events.\n"
	    "# TYPE maturityd_event_watchers_too_slow_total counter\n"
	    "maturityd_event_watchers_too_slow_total %llu\n"
	    "# HELP maturityd_calls_reset_total Calls the client reset (or sent without a "
	    "request message) before they were handled: answered, never dispatched nor logged "
	    "one line each.\n# TYPE maturityd_calls_reset_total counter\n"
	    "maturityd_calls_reset_total %llu\n",
	    (long long)atomic_load(&m->watchers), atomic_load(&m->events_delivered),
	    atomic_load(&m->watchers_too_slow), atomic_load(&m->calls_reset));
	render_door(&b, m);
	{
		unsigned long long cum = 0;
		sb_printf(&b,
		          "# HELP maturityd_event_delivery_seconds From this replica hearing of a "
		          "commit to one of its events being handed to a live watch.\n"
		          "# TYPE maturityd_event_delivery_seconds histogram\n");
		for (size_t k = 0; k <= 10; k++) {
			cum += atomic_load(&m->latency_bucket[k]);
			if (k < 10)
				sb_printf(
				    &b, "maturityd_event_delivery_seconds_bucket{le=\"%g\"} %llu\n",
				    latency_buckets[k], cum);
			else
				sb_printf(
				    &b,
				    "maturityd_event_delivery_seconds_bucket{le=\"+Inf\"} %llu\n",
				    cum);
		}
		sb_printf(&b,
		          "maturityd_event_delivery_seconds_sum %g\n"
		          "maturityd_event_delivery_seconds_count %llu\n",
		          (double)atomic_load(&m->latency_sum_us) / 1e6, cum);
	}
	if (pool != NULL) {
		struct store_pool_stats st;
		store_pool_get_stats(pool, &st);
		sb_printf(&b,
		          "# HELP maturityd_db_pool_connections Database connections by state.\n"
		          "# TYPE maturityd_db_pool_connections gauge\n"
		          "maturityd_db_pool_connections{state=\"idle\"} %d\n"
		          "maturityd_db_pool_connections{state=\"in_use\"} %d\n"
		          "maturityd_db_pool_connections{state=\"connecting\"} %d\n"
		          "maturityd_db_pool_connections{state=\"broken\"} %d\n"
		          "# HELP maturityd_db_pool_size Maximum database connections.\n"
		          "# TYPE maturityd_db_pool_size gauge\nmaturityd_db_pool_size %d\n",
		          st.idle, st.in_use, st.connecting, st.broken, st.size);
	}
	render_process(&b, m);
	sb_printf(&b,
	          "# HELP maturityd_build_info Build information.\n"
	          "# TYPE maturityd_build_info gauge\n"
	          "maturityd_build_info{version=\"%s\"} 1\n",
	          MATURITYD_VERSION);
	return b.d;
}

static enum MHD_Result on_request(void *cls, struct MHD_Connection *conn, const char *url,
                                  const char *method, const char *version, const char *upload,
                                  size_t *upload_size, void **con_cls)
{
	struct svc_metrics *m = cls;
	struct MHD_Response *resp;
	enum MHD_Result ret;
	char *text;

	if (strcmp(method, "GET") != 0 || strcmp(url, "/metrics") != 0) {
		static const char nf[] = "not found: GET /metrics\n";
		resp = MHD_create_response_from_buffer(sizeof(nf) - 1, (void *)nf,
		                                       MHD_RESPMEM_PERSISTENT);
		ret = MHD_queue_response(conn, MHD_HTTP_NOT_FOUND, resp);
		MHD_destroy_response(resp);
		return ret;
	}
	text = svc_metrics_render(m, m->pool);
	if (text == NULL)
		return MHD_NO;
	resp = MHD_create_response_from_buffer(strlen(text), text, MHD_RESPMEM_MUST_FREE);
	MHD_add_response_header(resp, "Content-Type", "text/plain; version=0.0.4");
	ret = MHD_queue_response(conn, MHD_HTTP_OK, resp);
	MHD_destroy_response(resp);
	return ret;
}

/* libmicrohttpd's own error lines (a port clash, a failed accept) go to our log, not stderr. */
static void mhd_log(void *cls, const char *fmt, va_list ap)
{
	char msg[512];

	(void)cls;
	/* The format comes from libmicrohttpd itself (its logger's signature), not from a peer. */
#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wformat-nonliteral"
	vsnprintf(msg, sizeof(msg), fmt, ap);
#pragma GCC diagnostic pop
	svc_log_library("libmicrohttpd", "warn", NULL, 0, msg);
}

int svc_metrics_serve(struct svc_metrics *m, struct store_pool *pool, const char *addr)
{
	struct addrinfo hints = {0}, *res = NULL;
	char host[256];
	const char *colon = strrchr(addr, ':');
	size_t hl;

	if (colon == NULL)
		return -1;
	hl = (size_t)(colon - addr);
	if (hl >= sizeof(host))
		return -1;
	memcpy(host, addr, hl);
	host[hl] = '\0';
	if (host[0] == '[' && hl > 1 && host[hl - 1] == ']') {
		memmove(host, host + 1, hl - 2);
		host[hl - 2] = '\0';
	}
	hints.ai_socktype = SOCK_STREAM;
	hints.ai_flags = AI_NUMERICSERV | AI_PASSIVE;
	if (getaddrinfo(host[0] ? host : NULL, colon + 1, &hints, &res) != 0 || res == NULL) {
		svc_log_event("error", "--metrics-listen: cannot resolve %s", addr);
		return -1;
	}
	m->pool = pool;
	m->daemon =
	    MHD_start_daemon(MHD_USE_INTERNAL_POLLING_THREAD | MHD_USE_ERROR_LOG |
	                         (res->ai_family == AF_INET6 ? MHD_USE_IPv6 : 0),
	                     0, NULL, NULL, on_request, m, MHD_OPTION_EXTERNAL_LOGGER, mhd_log,
	                     NULL, MHD_OPTION_SOCK_ADDR, res->ai_addr, MHD_OPTION_CONNECTION_LIMIT,
	                     64, MHD_OPTION_CONNECTION_TIMEOUT, 10, MHD_OPTION_END);
	freeaddrinfo(res);
	if (m->daemon == NULL) {
		svc_log_event("error", "--metrics-listen: cannot listen on %s", addr);
		return -1;
	}
	return 0;
}

void svc_metrics_stop(struct svc_metrics *m)
{
	if (m != NULL && m->daemon != NULL) {
		MHD_stop_daemon(m->daemon);
		m->daemon = NULL;
	}
}
