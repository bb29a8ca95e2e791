/* Scoring and roadmaps (docs/model.md, "Scoring" and "Roadmap"), each one linear pass over the
 * model's practices followed by work proportional to the levels and dimensions. Credits are counted
 * in integer half-credits (PARTIAL 1, satisfied 2) so sums are exact and the maturity index rounds
 * the exact value; only final ratios become doubles. No allocation, no global state: safe on any
 * thread. This file knows nothing of any particular model; see mat_catalog.c for mlops-v1. */
#include "mat_score.h"

#include <string.h>

/* Half-credits per status; anything outside the enum counts as NOT_IMPLEMENTED. */
static const uint8_t half_credit_of[MAT_STATUS_MAX + 1] = {
    [MAT_STATUS_UNSPECIFIED] = 0, [MAT_STATUS_NOT_IMPLEMENTED] = 0, [MAT_STATUS_PARTIAL] = 1,
    [MAT_STATUS_IMPLEMENTED] = 2, [MAT_STATUS_NOT_APPLICABLE] = 2,
};

static unsigned half_credit(enum mat_status s)
{
	/* The unsigned compare also rejects negative values a caller may have cast in. */
	if ((unsigned)s > (unsigned)MAT_STATUS_MAX)
		return 0;
	return half_credit_of[s];
}

bool mat_status_satisfied(enum mat_status s)
{
	return s == MAT_STATUS_IMPLEMENTED || s == MAT_STATUS_NOT_APPLICABLE;
}

/* A practice's level as an array index. Model data promises 1..MAT_MAX_LEVEL; clamping keeps a
 * broken model from writing out of bounds (it then scores as if the level were the nearest
 * valid one) instead of trusting an assertion compiled out of Release builds. */
static int practice_level(const struct mat_practice *p)
{
	if (p->level < 1)
		return 1;
	if (p->level > MAT_MAX_LEVEL)
		return MAT_MAX_LEVEL;
	return p->level;
}

/* Practices beyond the uint8_t index arrays of mat_score/mat_roadmap cannot be reported. */
static size_t practice_count(const struct mat_model *m)
{
	return m->n_practices < MAT_MAX_PRACTICES ? m->n_practices : MAT_MAX_PRACTICES;
}

static size_t dimension_count(const struct mat_model *m)
{
	return m->n_dimensions < MAT_MAX_DIMENSIONS ? m->n_dimensions : MAT_MAX_DIMENSIONS;
}

/* Progress from `level` to the next: credits at exactly level+1 over their count; 1.0 at the top
 * level or when nothing is expected at level+1. */
static double progress(int level, const unsigned *count, const unsigned *halves)
{
	if (level >= MAT_MAX_LEVEL || count[level + 1] == 0)
		return 1.0;
	return (double)halves[level + 1] / (2.0 * (double)count[level + 1]);
}

/* Appends the set bits of `bits` (practice indexes) in ascending, i.e. catalog, order. */
static size_t append_bits(uint8_t *dst, size_t n, uint64_t bits)
{
	while (bits != 0) {
		dst[n++] = (uint8_t)__builtin_ctzll(bits);
		bits &= bits - 1;
	}
	return n;
}

void mat_score_compute(const struct mat_model *m, const enum mat_status *status,
                       struct mat_score *out)
{
	/* Per dimension and level: practice count and half-credits; the overall view too. */
	unsigned dim_count[MAT_MAX_DIMENSIONS][MAT_LEVEL_COUNT];
	unsigned dim_halves[MAT_MAX_DIMENSIONS][MAT_LEVEL_COUNT];
	int dim_min_unsat[MAT_MAX_DIMENSIONS];
	unsigned lvl_count[MAT_LEVEL_COUNT] = {0};
	unsigned lvl_halves[MAT_LEVEL_COUNT] = {0};
	uint64_t lvl_unsat[MAT_LEVEL_COUNT] = {0};
	int min_unsat = MAT_LEVEL_COUNT; /* lowest level with an unsatisfied practice */
	unsigned total_halves = 0;
	size_t n = practice_count(m);
	size_t nd = dimension_count(m);

	memset(out, 0, sizeof(*out));
	memset(dim_count, 0, sizeof(dim_count));
	memset(dim_halves, 0, sizeof(dim_halves));
	for (size_t d = 0; d < nd; d++)
		dim_min_unsat[d] = MAT_LEVEL_COUNT;

	for (size_t i = 0; i < n; i++) {
		const struct mat_practice *p = &m->practices[i];
		int level = practice_level(p);
		unsigned h = half_credit(status[i]);
		bool satisfied = h == 2;

		lvl_count[level]++;
		lvl_halves[level] += h;
		total_halves += h;
		if (satisfied) {
			out->satisfied_count++;
		} else {
			lvl_unsat[level] |= UINT64_C(1) << i;
			if (level < min_unsat)
				min_unsat = level;
		}
		/* A practice naming no valid dimension still counts overall. */
		if (p->dimension < 0 || (size_t)p->dimension >= nd)
			continue;
		struct mat_dimension_score *ds = &out->dimensions[p->dimension];
		ds->total_count++;
		dim_count[p->dimension][level]++;
		dim_halves[p->dimension][level] += h;
		if (satisfied)
			ds->satisfied_count++;
		else if (level < dim_min_unsat[p->dimension])
			dim_min_unsat[p->dimension] = level;
	}

	/* The largest L with every practice at level <= L satisfied is one below the lowest level
	 * that has an unsatisfied practice (4 when there is none). */
	out->overall_level = min_unsat - 1;
	out->progress_to_next_level = progress(out->overall_level, lvl_count, lvl_halves);
	out->total_count = (int)n;
	out->n_dimensions = nd;
	for (size_t d = 0; d < nd; d++) {
		struct mat_dimension_score *ds = &out->dimensions[d];
		ds->level = dim_min_unsat[d] - 1;
		ds->progress_to_next_level = progress(ds->level, dim_count[d], dim_halves[d]);
	}

	/* index = 100 * (halves / 2) / n, rounded half away from zero to two decimals, i.e.
	 * floor(10000 * halves / (2n) + 1/2) / 100, done in integers so no binary fraction can push
	 * an exact .xx5 the wrong way. An empty model has nothing to credit. */
	if (n > 0) {
		uint64_t hundredths = (UINT64_C(10000) * total_halves + n) / (UINT64_C(2) * n);
		out->maturity_index = (double)hundredths / 100.0;
	}

	if (out->overall_level < MAT_MAX_LEVEL)
		out->n_blocking = append_bits(out->blocking, 0, lvl_unsat[out->overall_level + 1]);
}

int mat_roadmap_target(int requested, int org_target, int current)
{
	int target;

	if (requested >= 0)
		target = requested;
	else if (org_target > current)
		target = org_target;
	else
		target = current + 1;
	/* Validation keeps requests in 0..4; the cap also protects the fixed stage array. */
	if (target > MAT_MAX_LEVEL)
		target = MAT_MAX_LEVEL;
	return target;
}

void mat_roadmap_compute(const struct mat_model *m, const enum mat_status *status, int requested,
                         int org_target, struct mat_roadmap *out)
{
	/* Practice bit sets per level and dimension; the extra last column holds practices that
	 * name no valid dimension, so they still appear, after every real dimension. */
	uint64_t sat[MAT_LEVEL_COUNT][MAT_MAX_DIMENSIONS + 1];
	uint64_t unsat[MAT_LEVEL_COUNT][MAT_MAX_DIMENSIONS + 1];
	int min_unsat = MAT_LEVEL_COUNT;
	size_t n = practice_count(m);
	size_t nd = dimension_count(m);

	memset(out, 0, sizeof(*out));
	memset(sat, 0, sizeof(sat));
	memset(unsat, 0, sizeof(unsat));

	for (size_t i = 0; i < n; i++) {
		const struct mat_practice *p = &m->practices[i];
		int level = practice_level(p);
		size_t col =
		    (p->dimension < 0 || (size_t)p->dimension >= nd) ? nd : (size_t)p->dimension;

		if (half_credit(status[i]) == 2) {
			sat[level][col] |= UINT64_C(1) << i;
		} else {
			unsat[level][col] |= UINT64_C(1) << i;
			if (level < min_unsat)
				min_unsat = level;
		}
	}

	out->current_level = min_unsat - 1;
	out->target_level = mat_roadmap_target(requested, org_target, out->current_level);

	/* Everything at or below the current level is satisfied by definition, so stages only
	 * need the unsatisfied practices of their own level. */
	for (int level = out->current_level + 1; level <= out->target_level; level++) {
		struct mat_roadmap_stage *st = &out->stages[out->n_stages++];
		st->level = level;
		for (size_t col = 0; col <= nd; col++)
			st->n_steps = append_bits(st->steps, st->n_steps, unsat[level][col]);
	}

	/* docs/model.md, Roadmap: a target at or below the current level gives an empty roadmap, so
	 * nothing is "ahead" of it either. */
	if (out->target_level <= out->current_level)
		return;
	for (int level = out->target_level + 1; level <= MAT_MAX_LEVEL; level++) {
		for (size_t col = 0; col <= nd; col++)
			out->n_ahead = append_bits(out->ahead, out->n_ahead, sat[level][col]);
	}
}
