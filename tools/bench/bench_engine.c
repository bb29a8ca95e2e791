/* bench_engine: in-process throughput of the maturity engine on one core, with no server, no
 * database and no protobuf in the way. Measures full 30-answer scorings/s and roadmaps/s over
 * pre-generated varied answer sets and prints one JSON line per benchmark with the median of
 * several runs. Usage: bench_engine [runs] [seconds-per-run]. */
#include "mat_model.h"
#include "mat_score.h"

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define N_SETS 1024 /* a power of two: the set index is a mask */

/* Results fold into this so the compiler cannot drop the work it measures. */
static volatile uint64_t sink;

static uint64_t rng_state = UINT64_C(0x9e3779b97f4a7c15);

static uint64_t rng_next(void)
{
	rng_state ^= rng_state >> 12;
	rng_state ^= rng_state << 25;
	rng_state ^= rng_state >> 27;
	return rng_state * UINT64_C(2685821657736338717);
}

static double now_s(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

/* Answer sets spread over every level: practices up to a random threshold mostly satisfied, the
 * rest any status, so scoring and roadmaps take all their paths. */
static void generate(const struct mat_model *m, enum mat_status (*sets)[MAT_MAX_PRACTICES])
{
	for (size_t k = 0; k < N_SETS; k++) {
		int threshold = (int)(rng_next() % 5);
		for (size_t i = 0; i < m->n_practices; i++) {
			if (m->practices[i].level <= threshold && rng_next() % 10 != 0)
				sets[k][i] = MAT_STATUS_IMPLEMENTED;
			else
				sets[k][i] = (enum mat_status)(rng_next() % (MAT_STATUS_MAX + 1));
		}
	}
}

/* Operations per second for `seconds` of scoring; checks the clock every 4096 operations. */
static double run_score(const struct mat_model *m, enum mat_status (*sets)[MAT_MAX_PRACTICES],
                        double seconds)
{
	struct mat_score s;
	uint64_t ops = 0;
	uint64_t acc = 0;
	double start = now_s();
	double elapsed;

	do {
		for (int j = 0; j < 4096; j++, ops++) {
			mat_score_compute(m, sets[ops & (N_SETS - 1)], &s);
			acc += (uint64_t)s.overall_level + s.n_blocking +
			       (uint64_t)(s.maturity_index * 100.0);
		}
		elapsed = now_s() - start;
	} while (elapsed < seconds);
	sink += acc;
	return (double)ops / elapsed;
}

static double run_roadmap(const struct mat_model *m, enum mat_status (*sets)[MAT_MAX_PRACTICES],
                          double seconds)
{
	struct mat_roadmap r;
	uint64_t ops = 0;
	uint64_t acc = 0;
	double start = now_s();
	double elapsed;

	do {
		for (int j = 0; j < 4096; j++, ops++) {
			/* Vary the requested target too: -1 (unset) and 0..4. */
			int requested = (int)(ops % 6) - 1;
			mat_roadmap_compute(m, sets[ops & (N_SETS - 1)], requested, 3, &r);
			acc += (uint64_t)r.target_level + r.n_stages + r.n_ahead +
			       (r.n_stages > 0 ? r.stages[0].n_steps : 0);
		}
		elapsed = now_s() - start;
	} while (elapsed < seconds);
	sink += acc;
	return (double)ops / elapsed;
}

static int cmp_double(const void *a, const void *b)
{
	double x = *(const double *)a;
	double y = *(const double *)b;

	return (x > y) - (x < y);
}

static double median(double *v, int n)
{
	qsort(v, (size_t)n, sizeof(v[0]), cmp_double);
	return n % 2 == 1 ? v[n / 2] : (v[n / 2 - 1] + v[n / 2]) / 2.0;
}

int main(int argc, char **argv)
{
	static enum mat_status sets[N_SETS][MAT_MAX_PRACTICES];
	const struct mat_model *m = mat_model_find("mlops-v1");
	int runs = argc > 1 ? atoi(argv[1]) : 5;
	double seconds = argc > 2 ? atof(argv[2]) : 0.5;
	double score_ops[64];
	double roadmap_ops[64];
	int rc = 1;

	if (m == NULL || runs < 1 || runs > 64 || !(seconds > 0)) {
		fprintf(stderr, "usage: bench_engine [runs 1..64] [seconds-per-run > 0]\n");
		goto out;
	}
	generate(m, sets);
	/* Warm caches and the branch predictor before the first timed run. */
	run_score(m, sets, seconds / 5);
	run_roadmap(m, sets, seconds / 5);
	for (int i = 0; i < runs; i++) {
		score_ops[i] = run_score(m, sets, seconds);
		roadmap_ops[i] = run_roadmap(m, sets, seconds);
	}
	printf("{\"bench\":\"score\",\"model\":\"%s\",\"practices\":%zu,\"answer_sets\":%d,"
	       "\"ops_per_s\":%.0f,\"runs\":%d}\n",
	       m->id, m->n_practices, N_SETS, median(score_ops, runs), runs);
	printf("{\"bench\":\"roadmap\",\"model\":\"%s\",\"practices\":%zu,\"answer_sets\":%d,"
	       "\"ops_per_s\":%.0f,\"runs\":%d}\n",
	       m->id, m->n_practices, N_SETS, median(roadmap_ops, runs), runs);
	rc = 0;
out:
	return rc;
}
