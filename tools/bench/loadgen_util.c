/* maturity-loadgen: clock, file reading, number parsing and channels shared by the client, the
 * stream client and the baseline server. */
#include "loadgen.h"

#include <ctype.h>
#include <errno.h>
#include <grpc/grpc_security.h>
#include <grpc/support/time.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
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

/* --- channels ------------------------------------------------------------------------------ */

grpc_channel_credentials *lg_client_creds(const char *ca_path, const char *cert_path,
                                          const char *key_path)
{
	char *ca = lg_slurp(ca_path), *cert = lg_slurp(cert_path), *key = lg_slurp(key_path);
	grpc_channel_credentials *creds = NULL;

	if (ca == NULL)
		fprintf(stderr, "maturity-loadgen: cannot read %s (--ca)\n", ca_path);
	else if (cert == NULL)
		fprintf(stderr, "maturity-loadgen: cannot read %s (--cert)\n", cert_path);
	else if (key == NULL)
		fprintf(stderr, "maturity-loadgen: cannot read %s (--key)\n", key_path);
	else
		creds = grpc_ssl_credentials_create(ca, &(grpc_ssl_pem_key_cert_pair){key, cert},
		                                    NULL, NULL);
	free(ca);
	free(cert);
	free(key);
	return creds;
}

grpc_channel *lg_channel_new(const char *target, grpc_channel_credentials *creds)
{
	grpc_arg args[3];
	grpc_channel_args chargs = {3, args};

	memset(args, 0, sizeof(args));
	args[0].type = GRPC_ARG_STRING;
	args[0].key = GRPC_SSL_TARGET_NAME_OVERRIDE_ARG; /* the server certificate's name */
	args[0].value.string = "localhost";
	args[1].type = GRPC_ARG_INTEGER;
	args[1].key = GRPC_ARG_USE_LOCAL_SUBCHANNEL_POOL; /* one connection per channel */
	args[1].value.integer = 1;
	args[2].type = GRPC_ARG_INTEGER;
	args[2].key = GRPC_ARG_ENABLE_RETRIES; /* a retried call would hide a failure */
	args[2].value.integer = 0;
	return grpc_channel_create(target, creds, &chargs);
}

bool lg_connect_all(grpc_channel *const *chs, int n, double timeout_s)
{
	grpc_completion_queue *cq = grpc_completion_queue_create_for_next(NULL);
	gpr_timespec deadline = lg_deadline_in_ns((int64_t)(timeout_s * 1e9));
	bool ok = true;

	for (int i = 0; i < n; i++)
		grpc_channel_check_connectivity_state(chs[i], 1);
	for (int i = 0; ok && i < n; i++) {
		grpc_connectivity_state st = grpc_channel_check_connectivity_state(chs[i], 1);
		while (ok && st != GRPC_CHANNEL_READY) {
			grpc_event ev;
			grpc_channel_watch_connectivity_state(chs[i], st, deadline, cq, NULL);
			ev = grpc_completion_queue_next(cq, gpr_inf_future(GPR_CLOCK_MONOTONIC),
			                                NULL);
			ok = ev.success != 0; /* 0: the deadline passed */
			st = grpc_channel_check_connectivity_state(chs[i], 1);
		}
	}
	grpc_completion_queue_shutdown(cq);
	while (grpc_completion_queue_next(cq, gpr_inf_future(GPR_CLOCK_MONOTONIC), NULL).type !=
	       GRPC_QUEUE_SHUTDOWN)
		;
	grpc_completion_queue_destroy(cq);
	return ok;
}

bool lg_raise_nofile(void)
{
	struct rlimit rl;

	if (getrlimit(RLIMIT_NOFILE, &rl) != 0)
		return false;
	if (rl.rlim_cur == rl.rlim_max)
		return true;
	rl.rlim_cur = rl.rlim_max;
	return setrlimit(RLIMIT_NOFILE, &rl) == 0;
}
