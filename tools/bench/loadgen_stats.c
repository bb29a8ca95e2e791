/* maturity-loadgen: the latency histogram, status-code names and the run report (a short
 * table for people, one JSON object per run for scripts). */
#include "loadgen.h"

#include <math.h>
#include <string.h>

#define SUB_BITS 7                    /* 128 buckets per power of two */
#define LINEAR_LIMIT (2u << SUB_BITS) /* values below 256 ns have a bucket each */
#define MAX_VALUE ((1ull << 42) - 1)

static int bucket_of(uint64_t v)
{
	int shift;

	if (v > MAX_VALUE)
		v = MAX_VALUE;
	if (v < LINEAR_LIMIT)
		return (int)v;
	/* v in [2^(b), 2^(b+1)) with b >= 8: keep its top 8 bits, so 128..255 within the octave. */
	shift = (63 - __builtin_clzll(v)) - SUB_BITS;
	return (shift << SUB_BITS) + (int)(v >> shift);
}

/* The middle of a bucket, as the value reported for every sample in it. */
static uint64_t bucket_value(int idx)
{
	int shift;

	if (idx < (int)LINEAR_LIMIT)
		return (uint64_t)idx;
	shift = (idx >> SUB_BITS) - 1;
	return ((uint64_t)(idx - (shift << SUB_BITS)) << shift) + ((1ull << shift) >> 1);
}

void lg_hist_record(struct lg_hist *h, uint64_t ns)
{
	if (h->n == 0 || ns < h->min_ns)
		h->min_ns = ns;
	if (ns > h->max_ns)
		h->max_ns = ns;
	h->n++;
	h->sum_ns += ns;
	h->counts[bucket_of(ns)]++;
}

void lg_hist_merge(struct lg_hist *into, const struct lg_hist *from)
{
	if (from->n == 0)
		return;
	if (into->n == 0 || from->min_ns < into->min_ns)
		into->min_ns = from->min_ns;
	if (from->max_ns > into->max_ns)
		into->max_ns = from->max_ns;
	into->n += from->n;
	into->sum_ns += from->sum_ns;
	for (int i = 0; i < LG_HIST_BUCKETS; i++)
		into->counts[i] += from->counts[i];
}

uint64_t lg_hist_quantile(const struct lg_hist *h, double q)
{
	uint64_t rank, seen = 0;

	if (h->n == 0)
		return 0;
	rank = (uint64_t)ceil(q * (double)h->n);
	if (rank < 1)
		rank = 1;
	for (int i = 0; i < LG_HIST_BUCKETS; i++) {
		seen += h->counts[i];
		if (seen >= rank) {
			uint64_t v = bucket_value(i);
			/* The bucket's middle can lie outside what was seen: clamp. */
			if (v < h->min_ns)
				v = h->min_ns;
			if (v > h->max_ns)
				v = h->max_ns;
			return v;
		}
	}
	return h->max_ns;
}

static const char *const code_names[LG_N_CODES] = {"OK",
                                                   "CANCELLED",
                                                   "UNKNOWN",
                                                   "INVALID_ARGUMENT",
                                                   "DEADLINE_EXCEEDED",
                                                   "NOT_FOUND",
                                                   "ALREADY_EXISTS",
                                                   "PERMISSION_DENIED",
                                                   "RESOURCE_EXHAUSTED",
                                                   "FAILED_PRECONDITION",
                                                   "ABORTED",
                                                   "OUT_OF_RANGE",
                                                   "UNIMPLEMENTED",
                                                   "INTERNAL",
                                                   "UNAVAILABLE",
                                                   "DATA_LOSS",
                                                   "UNAUTHENTICATED",
                                                   "OTHER"};

int lg_code_index(grpc_status_code code)
{
	return code >= 0 && (int)code < LG_N_CODES - 1 ? (int)code : LG_N_CODES - 1;
}

const char *lg_code_name(int index)
{
	return index >= 0 && index < LG_N_CODES ? code_names[index] : "OTHER";
}

/* --- report ------------------------------------------------------------------------------- */

struct summary {
	uint64_t calls, ok;
	double mean_ms, p50_ms, p90_ms, p99_ms, p999_ms, max_ms;
	uint64_t codes[LG_N_CODES];
};

static double ms(uint64_t ns)
{
	return (double)ns / 1e6;
}

static void summarize(const struct lg_hist *h, const uint64_t *codes, struct summary *s)
{
	memset(s, 0, sizeof(*s));
	s->calls = h->n;
	s->mean_ms = h->n ? ms(h->sum_ns) / (double)h->n : 0;
	s->p50_ms = ms(lg_hist_quantile(h, 0.50));
	s->p90_ms = ms(lg_hist_quantile(h, 0.90));
	s->p99_ms = ms(lg_hist_quantile(h, 0.99));
	s->p999_ms = ms(lg_hist_quantile(h, 0.999));
	s->max_ms = ms(h->max_ns);
	memcpy(s->codes, codes, sizeof(s->codes));
	s->ok = codes[0];
}

/* The whole run: histograms and codes of every method merged. */
static void summarize_all(const struct lg_result *r, struct lg_hist *scratch, struct summary *s)
{
	uint64_t codes[LG_N_CODES] = {0};

	memset(scratch, 0, sizeof(*scratch));
	for (int m = 0; m < LG_N_METHODS; m++) {
		lg_hist_merge(scratch, &r->hist[m]);
		for (int c = 0; c < LG_N_CODES; c++)
			codes[c] += r->codes[m][c];
	}
	summarize(scratch, codes, s);
}

static int methods_used(const struct lg_result *r)
{
	int n = 0;

	for (int m = 0; m < LG_N_METHODS; m++)
		n += r->hist[m].n > 0;
	return n;
}

static double per_s(const struct lg_result *r, uint64_t n)
{
	return r->duration_s > 0 ? (double)n / r->duration_s : 0;
}

static void codes_text(FILE *f, const uint64_t *codes)
{
	bool first = true;

	for (int c = 0; c < LG_N_CODES; c++) {
		if (codes[c] == 0)
			continue;
		fprintf(f, "%s%s=%llu", first ? "" : ",", lg_code_name(c),
		        (unsigned long long)codes[c]);
		first = false;
	}
	if (first)
		fputs("-", f);
}

static void table_row(FILE *f, const char *name, const struct lg_result *r, const struct summary *s)
{
	char rate[32];

	if (r->rate > 0)
		snprintf(rate, sizeof(rate), "%.0f", r->rate);
	else
		snprintf(rate, sizeof(rate), "-");
	fprintf(f, "%-20s %-6s %5d %5d %8s %10llu %10.1f %8.3f %8.3f %8.3f %8.3f %8.3f  ", name,
	        r->mode, r->concurrency, r->connections, rate, (unsigned long long)s->calls,
	        per_s(r, s->calls), s->mean_ms, s->p50_ms, s->p90_ms, s->p99_ms, s->p999_ms);
	codes_text(f, s->codes);
	fputc('\n', f);
}

void lg_report_table(FILE *f, const struct lg_result *r)
{
	struct lg_hist all;
	struct summary s;

	summarize_all(r, &all, &s);
	fprintf(f, "%-20s %-6s %5s %5s %8s %10s %10s %8s %8s %8s %8s %8s  %s\n", "scenario", "mode",
	        "conc", "conns", "rate", "calls", "calls/s", "mean_ms", "p50", "p90", "p99",
	        "p99.9", "codes");
	table_row(f, r->scenario, r, &s);
	if (methods_used(r) > 1) {
		for (int m = 0; m < LG_N_METHODS; m++) {
			struct summary ms_;
			char name[40];

			if (r->hist[m].n == 0)
				continue;
			summarize(&r->hist[m], r->codes[m], &ms_);
			snprintf(name, sizeof(name), "  %s", lg_method_name[m]);
			table_row(f, name, r, &ms_);
		}
	}
	if (r->lag.n > 0)
		fprintf(f, "send lag behind schedule: p50 %.3f ms, p99 %.3f ms, max %.3f ms\n",
		        ms(lg_hist_quantile(&r->lag, 0.5)), ms(lg_hist_quantile(&r->lag, 0.99)),
		        ms(r->lag.max_ns));
	if (r->dropped > 0)
		fprintf(f, "dropped %llu scheduled calls (in-flight cap %d reached)\n",
		        (unsigned long long)r->dropped, r->concurrency);
	if (r->exhausted)
		fprintf(f, "the scenario ran out of requests after %.3f s of measurement\n",
		        r->duration_s);
	fflush(f);
}

static void json_summary(FILE *f, const struct lg_result *r, const struct summary *s)
{
	bool first = true;

	fprintf(f,
	        "\"calls\":%llu,\"calls_per_s\":%.1f,\"ok_per_s\":%.1f,\"mean_ms\":%.4f,"
	        "\"p50_ms\":%.4f,\"p90_ms\":%.4f,\"p99_ms\":%.4f,\"p999_ms\":%.4f,\"max_ms\":%.4f,"
	        "\"codes\":{",
	        (unsigned long long)s->calls, per_s(r, s->calls), per_s(r, s->ok), s->mean_ms,
	        s->p50_ms, s->p90_ms, s->p99_ms, s->p999_ms, s->max_ms);
	for (int c = 0; c < LG_N_CODES; c++) {
		if (s->codes[c] == 0)
			continue;
		fprintf(f, "%s\"%s\":%llu", first ? "" : ",", lg_code_name(c),
		        (unsigned long long)s->codes[c]);
		first = false;
	}
	fputc('}', f);
}

void lg_report_json(FILE *f, const struct lg_result *r)
{
	struct lg_hist all;
	struct summary s;

	summarize_all(r, &all, &s);
	fprintf(f,
	        "{\"scenario\":\"%s\",\"mode\":\"%s\",\"concurrency\":%d,\"connections\":%d,"
	        "\"threads\":%d,",
	        r->scenario, r->mode, r->concurrency, r->connections, r->threads);
	if (r->rate > 0)
		fprintf(f, "\"rate\":%.1f,", r->rate);
	else
		fputs("\"rate\":null,", f);
	fprintf(f, "\"duration_s\":%.3f,\"warmup_s\":%.3f,\"dropped\":%llu,\"exhausted\":%s,",
	        r->duration_s, r->warmup_s, (unsigned long long)r->dropped,
	        r->exhausted ? "true" : "false");
	json_summary(f, r, &s);
	if (r->lag.n > 0)
		fprintf(
		    f,
		    ",\"send_lag_p50_ms\":%.4f,\"send_lag_p99_ms\":%.4f,\"send_lag_max_ms\":%.4f",
		    ms(lg_hist_quantile(&r->lag, 0.5)), ms(lg_hist_quantile(&r->lag, 0.99)),
		    ms(r->lag.max_ns));
	if (methods_used(r) > 1) {
		bool first = true;

		fputs(",\"methods\":{", f);
		for (int m = 0; m < LG_N_METHODS; m++) {
			struct summary ms_;

			if (r->hist[m].n == 0)
				continue;
			summarize(&r->hist[m], r->codes[m], &ms_);
			fprintf(f, "%s\"%s\":{", first ? "" : ",", lg_method_name[m]);
			json_summary(f, r, &ms_);
			fputc('}', f);
			first = false;
		}
		fputc('}', f);
	}
	fputs("}\n", f);
	fflush(f);
}
