/* maturity-loadgen: clock, file reading and number parsing shared by the client and the
 * baseline server. */
#include "loadgen.h"

#include <ctype.h>
#include <errno.h>
#include <grpc/support/time.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

uint64_t lg_now_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

gpr_timespec lg_deadline_in_ns(int64_t ns)
{
	/* gpr's monotonic clock has its own epoch: add to it rather than convert ours. */
	return gpr_time_add(gpr_now(GPR_CLOCK_MONOTONIC), gpr_time_from_nanos(ns, GPR_TIMESPAN));
}

char *lg_slurp(const char *path)
{
	FILE *f = fopen(path, "rb");
	char *buf = NULL;
	size_t len = 0, cap = 0, got;

	if (f == NULL)
		return NULL;
	do {
		if (cap - len < 4096) {
			char *nb = realloc(buf, cap ? cap * 2 : 8192);
			if (nb == NULL) {
				free(buf);
				fclose(f);
				return NULL;
			}
			buf = nb;
			cap = cap ? cap * 2 : 8192;
		}
		got = fread(buf + len, 1, cap - len - 1, f);
		len += got;
	} while (got > 0);
	if (ferror(f)) {
		free(buf);
		fclose(f);
		return NULL;
	}
	fclose(f);
	buf[len] = '\0';
	return buf;
}

char **lg_read_lines(const char *path, size_t *n)
{
	char *text = lg_slurp(path);
	char **lines = NULL;
	size_t count = 0, cap = 0;

	*n = 0;
	if (text == NULL)
		return NULL;
	for (char *p = text; *p != '\0';) {
		char *eol = strchr(p, '\n');
		char *next = eol ? eol + 1 : p + strlen(p);
		char *end = eol ? eol : next;

		while (p < end && isspace((unsigned char)*p))
			p++;
		while (end > p && isspace((unsigned char)end[-1]))
			end--;
		if (end > p && *p != '#') {
			if (count == cap) {
				char **nl = realloc(lines, (cap ? cap * 2 : 64) * sizeof(*lines));
				if (nl == NULL)
					goto fail;
				lines = nl;
				cap = cap ? cap * 2 : 64;
			}
			lines[count] = strndup(p, (size_t)(end - p));
			if (lines[count] == NULL)
				goto fail;
			count++;
		}
		p = next;
	}
	free(text);
	if (lines == NULL) /* an empty file is not an error: callers check n */
		lines = calloc(1, sizeof(*lines));
	*n = count;
	return lines;
fail:
	lg_lines_free(lines, count);
	free(text);
	return NULL;
}

void lg_lines_free(char **lines, size_t n)
{
	for (size_t i = 0; lines != NULL && i < n; i++)
		free(lines[i]);
	free(lines);
}

bool lg_parse_int(const char *s, long lo, long hi, long *out)
{
	char *end;
	long v;

	if (s == NULL || *s == '\0')
		return false;
	errno = 0;
	v = strtol(s, &end, 10);
	if (errno != 0 || *end != '\0' || v < lo || v > hi)
		return false;
	*out = v;
	return true;
}

bool lg_parse_double(const char *s, double lo, double hi, double *out)
{
	char *end;
	double v;

	if (s == NULL || *s == '\0')
		return false;
	errno = 0;
	v = strtod(s, &end);
	if (errno != 0 || *end != '\0' || !isfinite(v) || v < lo || v > hi)
		return false;
	*out = v;
	return true;
}
