/* Log lines: JSON by default (one object per line, so any log shipper can parse it), text for
 * humans. Each line is built in a local buffer, then handed to the group-commit writer below, so
 * lines from different threads never interleave. */
#include "svc_log.h"

#include <errno.h>
#include <grpc/support/log.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

static enum svc_log_format g_fmt = SVC_LOG_JSON;

void svc_log_init(enum svc_log_format fmt)
{
	g_fmt = fmt;
}

static void put(struct svc_log_line *b, const char *s, size_t len)
{
	if (len > sizeof(b->d) - 1 - b->n)
		len = sizeof(b->d) - 1 - b->n;
	memcpy(b->d + b->n, s, len);
	b->n += len;
}

static void puts_(struct svc_log_line *b, const char *s)
{
	put(b, s, strlen(s));
}

/* JSON string body: escapes quotes, backslashes and control bytes. Bytes >= 0x80 pass through
 * (every string logged here was checked as UTF-8 or comes from the server itself). */
static void put_json(struct svc_log_line *b, const char *s)
{
	static const char hex[] = "0123456789abcdef";
	for (; s != NULL && *s != '\0'; s++) {
		unsigned char c = (unsigned char)*s;
		if (c == '"' || c == '\\') {
			char e[2] = {'\\', (char)c};
			put(b, e, 2);
		} else if (c < 0x20) {
			char e[6] = {'\\', 'u', '0', '0', hex[c >> 4], hex[c & 15]};
			put(b, e, 6);
		} else {
			put(b, (const char *)&c, 1);
		}
	}
}

static void put_time(struct svc_log_line *b)
{
	struct timespec ts;
	struct tm tm;
	char t[40];

	clock_gettime(CLOCK_REALTIME, &ts);
	gmtime_r(&ts.tv_sec, &tm);
	strftime(t, sizeof(t), "%Y-%m-%dT%H:%M:%S", &tm);
	puts_(b, t);
	snprintf(t, sizeof(t), ".%06ldZ", ts.tv_nsec / 1000);
	puts_(b, t);
}

/* Group commit to stderr: a line is appended to a shared buffer, and the thread that finds no
 * write in progress writes everything buffered with one write(2), again while others appended
 * meanwhile. An idle server writes each line at once (nothing waits in memory for a later
 * flush, so nothing is lost at a crash); under load one write(2) carries many lines. One
 * fwrite per line was 8 % of EvaluateAnswers' CPU, mostly the system call and contention on
 * stderr's lock (docs/benchmarks.md). */
#define OUT_CAP (64 * 1024)

static struct {
	pthread_mutex_t mu;
	char d[2][OUT_CAP]; /* appenders fill d[cur]; the writer drains the other one unlocked */
	size_t n;           /* bytes in d[cur] */
	int cur;
	bool writing;
	pthread_cond_t drained; /* the writer took d[cur]: there is room again */
} g_out = {.mu = PTHREAD_MUTEX_INITIALIZER, .drained = PTHREAD_COND_INITIALIZER};

static void write_all(const char *p, size_t n)
{
	while (n > 0) {
		ssize_t w = write(STDERR_FILENO, p, n);
		if (w < 0) {
			if (errno == EINTR)
				continue;
			return; /* nowhere to report a failing log */
		}
		p += w;
		n -= (size_t)w;
	}
}

/* n bytes of whole lines (newline-terminated). */
static void emit_bytes(const char *p, size_t n)
{
	pthread_mutex_lock(&g_out.mu);
	/* Full while the writer drains the other half: wait for it rather than write beside it
	 * (on a pipe, writes over PIPE_BUF from two threads can interleave inside a line). The
	 * buffer is only full while a writer is at work, and each of its rounds empties it. */
	while (g_out.n + n > OUT_CAP)
		pthread_cond_wait(&g_out.drained, &g_out.mu);
	memcpy(g_out.d[g_out.cur] + g_out.n, p, n);
	g_out.n += n;
	if (g_out.writing) {
		pthread_mutex_unlock(&g_out.mu); /* the writer takes it in its next round */
		return;
	}
	g_out.writing = true;
	while (g_out.n > 0) {
		int k = g_out.cur;
		size_t len = g_out.n;

		g_out.cur ^= 1;
		g_out.n = 0;
		pthread_cond_broadcast(&g_out.drained);
		pthread_mutex_unlock(&g_out.mu);
		write_all(g_out.d[k], len);
		pthread_mutex_lock(&g_out.mu);
	}
	g_out.writing = false;
	pthread_mutex_unlock(&g_out.mu);
}

static void emit(struct svc_log_line *b)
{
	b->d[b->n++] = '\n';
	emit_bytes(b->d, b->n);
}

/* Call lines of a server thread that flushes before it blocks (svc_log_defer): one write per
 * burst of calls instead of one per call (a write(2) per line was still ~6 % of EvaluateAnswers'
 * CPU: two pollers rarely write at the same moment, so the group commit above seldom merges). */
#define DEFER_CAP (16 * 1024)

static _Thread_local struct {
	bool on;
	size_t n;
	char d[DEFER_CAP];
} tl_defer;

void svc_log_defer(void)
{
	tl_defer.on = true;
}

bool svc_log_pending(void)
{
	return tl_defer.n > 0;
}

void svc_log_flush(void)
{
	if (tl_defer.n > 0)
		emit_bytes(tl_defer.d, tl_defer.n);
	tl_defer.n = 0;
}

void svc_log_line_write(struct svc_log_line *l)
{
	l->d[l->n++] = '\n';
	if (!tl_defer.on) {
		emit_bytes(l->d, l->n);
		return;
	}
	if (tl_defer.n + l->n > DEFER_CAP)
		svc_log_flush();
	memcpy(tl_defer.d + tl_defer.n, l->d, l->n);
	tl_defer.n += l->n;
}

void svc_log_call_format(struct svc_log_line *out, const char *method, const char *principal,
                         const char *delegator, const char *code_name, double duration_ms,
                         const char *request_id, const char *peer, const char *message)
{
	char num[32];

	out->n = 0;
	snprintf(num, sizeof(num), "%.3f", duration_ms);
	if (g_fmt == SVC_LOG_TEXT) {
		put_time(out);
		puts_(out, " call ");
		puts_(out, method);
		puts_(out, " ");
		puts_(out, code_name);
		puts_(out, " ");
		puts_(out, num);
		puts_(out, "ms principal=");
		puts_(out, principal && *principal ? principal : "-");
		if (delegator && *delegator) {
			puts_(out, " delegator=");
			puts_(out, delegator);
		}
		puts_(out, " request_id=");
		puts_(out, request_id ? request_id : "-");
		puts_(out, " peer=");
		puts_(out, peer ? peer : "-");
		if (message && *message) {
			puts_(out, " msg=");
			puts_(out, message);
		}
		return;
	}
	puts_(out, "{\"time\":\"");
	put_time(out);
	puts_(out, "\",\"level\":\"info\",\"msg\":\"call\",\"method\":\"");
	put_json(out, method);
	puts_(out, "\",\"principal\":\"");
	put_json(out, principal);
	if (delegator && *delegator) {
		puts_(out, "\",\"delegator\":\"");
		put_json(out, delegator);
	}
	puts_(out, "\",\"code\":\"");
	put_json(out, code_name);
	puts_(out, "\",\"duration_ms\":");
	puts_(out, num);
	puts_(out, ",\"request_id\":\"");
	put_json(out, request_id);
	puts_(out, "\",\"peer\":\"");
	put_json(out, peer);
	puts_(out, "\"");
	if (message && *message) {
		puts_(out, ",\"error\":\"");
		put_json(out, message);
		puts_(out, "\"");
	}
	puts_(out, "}");
}

void svc_log_call_add_trace(struct svc_log_line *out, const char *trace_id, const char *span_id)
{
	if (trace_id == NULL || trace_id[0] == '\0')
		return;
	if (g_fmt == SVC_LOG_TEXT) {
		puts_(out, " trace_id=");
		puts_(out, trace_id);
		puts_(out, " span_id=");
		puts_(out, span_id);
		return;
	}
	if (out->n > 0 && out->d[out->n - 1] == '}')
		out->n--;
	puts_(out, ",\"trace_id\":\"");
	put_json(out, trace_id);
	puts_(out, "\",\"span_id\":\"");
	put_json(out, span_id);
	puts_(out, "\"}");
}

void svc_log_event(const char *level, const char *fmt, ...)
{
	struct svc_log_line b = {.n = 0};
	char msg[2048];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	if (g_fmt == SVC_LOG_TEXT) {
		put_time(&b);
		puts_(&b, " ");
		puts_(&b, level);
		puts_(&b, " ");
		puts_(&b, msg);
	} else {
		puts_(&b, "{\"time\":\"");
		put_time(&b);
		puts_(&b, "\",\"level\":\"");
		put_json(&b, level);
		puts_(&b, "\",\"msg\":\"");
		put_json(&b, msg);
		puts_(&b, "\"}");
	}
	emit(&b);
}

static struct {
	pthread_mutex_t mu;
	time_t second;
	int n;        /* lines written in `second` */
	long dropped; /* since the last line written */
} g_lib = {.mu = PTHREAD_MUTEX_INITIALIZER};

void svc_log_library(const char *source, const char *level, const char *file, int line,
                     const char *msg)
{
	struct svc_log_line b = {.n = 0};
	char num[64];
	long dropped;
	time_t now = time(NULL);
	size_t mlen;

	pthread_mutex_lock(&g_lib.mu);
	if (now != g_lib.second) {
		g_lib.second = now;
		g_lib.n = 0;
	}
	if (g_lib.n >= SVC_LOG_LIBRARY_BURST) {
		g_lib.dropped++;
		pthread_mutex_unlock(&g_lib.mu);
		return;
	}
	g_lib.n++;
	dropped = g_lib.dropped;
	g_lib.dropped = 0;
	pthread_mutex_unlock(&g_lib.mu);

	/* Libraries end their messages with a newline of their own. */
	char m[1024];
	snprintf(m, sizeof(m), "%s", msg != NULL ? msg : "");
	mlen = strlen(m);
	while (mlen > 0 && (m[mlen - 1] == '\n' || m[mlen - 1] == '\r'))
		m[--mlen] = '\0';
	if (file != NULL) {
		const char *slash = strrchr(file, '/');
		file = slash != NULL ? slash + 1 : file;
	}
	if (g_fmt == SVC_LOG_TEXT) {
		put_time(&b);
		puts_(&b, " ");
		puts_(&b, level);
		puts_(&b, " ");
		puts_(&b, source);
		puts_(&b, ": ");
		puts_(&b, m);
		if (file != NULL) {
			snprintf(num, sizeof(num), " (%s:%d)", file, line);
			puts_(&b, num);
		}
		if (dropped > 0) {
			snprintf(num, sizeof(num), " [%ld similar lines dropped]", dropped);
			puts_(&b, num);
		}
	} else {
		puts_(&b, "{\"time\":\"");
		put_time(&b);
		puts_(&b, "\",\"level\":\"");
		put_json(&b, level);
		puts_(&b, "\",\"msg\":\"");
		put_json(&b, m);
		puts_(&b, "\",\"source\":\"");
		put_json(&b, source);
		puts_(&b, "\"");
		if (file != NULL) {
			puts_(&b, ",\"file\":\"");
			put_json(&b, file);
			snprintf(num, sizeof(num), "\",\"line\":%d", line);
			puts_(&b, num);
		}
		if (dropped > 0) {
			snprintf(num, sizeof(num), ",\"dropped\":%ld", dropped);
			puts_(&b, num);
		}
		puts_(&b, "}");
	}
	emit(&b);
}

static void grpc_log(gpr_log_func_args *a)
{
	const char *level = a->severity == GPR_LOG_SEVERITY_ERROR  ? "error"
	                    : a->severity == GPR_LOG_SEVERITY_INFO ? "info"
	                                                           : "debug";
	svc_log_library("grpc", level, a->file, a->line, a->message);
}

void svc_log_route_grpc(void)
{
	gpr_set_log_function(grpc_log);
}
