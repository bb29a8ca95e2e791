/* Log lines: JSON by default (one object per line, so any log shipper can parse it), text for
 * humans. Each line is built in a local buffer and written with one fwrite so lines from
 * different threads never interleave. */
#include "svc_log.h"

#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

static enum svc_log_format g_fmt = SVC_LOG_JSON;

void svc_log_init(enum svc_log_format fmt)
{
	g_fmt = fmt;
}

struct buf {
	char d[4096];
	size_t n;
};

static void put(struct buf *b, const char *s, size_t len)
{
	if (len > sizeof(b->d) - 1 - b->n)
		len = sizeof(b->d) - 1 - b->n;
	memcpy(b->d + b->n, s, len);
	b->n += len;
}

static void puts_(struct buf *b, const char *s)
{
	put(b, s, strlen(s));
}

/* JSON string body: escapes quotes, backslashes and control bytes. Bytes >= 0x80 pass through
 * (every string logged here was checked as UTF-8 or comes from the server itself). */
static void put_json(struct buf *b, const char *s)
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

static void put_time(struct buf *b)
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

static void emit(struct buf *b)
{
	b->d[b->n++] = '\n';
	fwrite(b->d, 1, b->n, stderr);
}

void svc_log_call(const char *method, const char *principal, const char *code_name,
                  double duration_ms, const char *request_id, const char *peer, const char *message)
{
	struct buf b = {.n = 0};
	char num[32];

	snprintf(num, sizeof(num), "%.3f", duration_ms);
	if (g_fmt == SVC_LOG_TEXT) {
		put_time(&b);
		puts_(&b, " call ");
		puts_(&b, method);
		puts_(&b, " ");
		puts_(&b, code_name);
		puts_(&b, " ");
		puts_(&b, num);
		puts_(&b, "ms principal=");
		puts_(&b, principal && *principal ? principal : "-");
		puts_(&b, " request_id=");
		puts_(&b, request_id ? request_id : "-");
		puts_(&b, " peer=");
		puts_(&b, peer ? peer : "-");
		if (message && *message) {
			puts_(&b, " msg=");
			puts_(&b, message);
		}
		emit(&b);
		return;
	}
	puts_(&b, "{\"time\":\"");
	put_time(&b);
	puts_(&b, "\",\"level\":\"info\",\"msg\":\"call\",\"method\":\"");
	put_json(&b, method);
	puts_(&b, "\",\"principal\":\"");
	put_json(&b, principal);
	puts_(&b, "\",\"code\":\"");
	put_json(&b, code_name);
	puts_(&b, "\",\"duration_ms\":");
	puts_(&b, num);
	puts_(&b, ",\"request_id\":\"");
	put_json(&b, request_id);
	puts_(&b, "\",\"peer\":\"");
	put_json(&b, peer);
	puts_(&b, "\"");
	if (message && *message) {
		puts_(&b, ",\"error\":\"");
		put_json(&b, message);
		puts_(&b, "\"");
	}
	puts_(&b, "}");
	emit(&b);
}

void svc_log_event(const char *level, const char *fmt, ...)
{
	struct buf b = {.n = 0};
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
