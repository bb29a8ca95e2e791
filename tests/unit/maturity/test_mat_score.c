/* Unit tests of mat_score.c: every rule of docs/model.md ("Scoring" and "Roadmap") with
 * hand-computed expectations on mlops-v1 and on small custom models, then properties over thousands
 * of random answer sets (fixed seed) checked against a deliberately naive implementation written
 * here straight from the wording of docs/model.md. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <math.h>
#include <stdio.h>
#include <string.h>

#include "mat_model.h"
#include "mat_score.h"

#define N_OF(a) (sizeof(a) / sizeof((a)[0]))

enum { PEOPLE, MODEL_CREATION, MODEL_RELEASE, APPLICATION_INTEGRATION };

static const struct mat_model *mlops(void)
{
	const struct mat_model *m = mat_model_find("mlops-v1");
	assert_non_null(m);
	assert_int_equal(m->n_practices, 30);
	return m;
}

static int idx(const char *id)
{
	int i = mat_model_practice_index(mlops(), id, strlen(id));
	assert_true(i >= 0);
	return i;
}

static void set_all(enum mat_status *st, size_t n, enum mat_status s)
{
	for (size_t i = 0; i < n; i++)
		st[i] = s;
}

/* Levels of mlops-v1 practices in catalog order, copied from the table of docs/model.md. */
static const int spec_level[30] = {1, 2, 3, 3, 4, 4, 1, 2, 2, 2, 2, 2, 4, 1, 1,
                                   2, 2, 3, 3, 3, 3, 4, 4, 1, 1, 1, 3, 3, 3, 4};

/* ---- a tiny deterministic PRNG (xorshift64*), so failures reproduce ---- */

static uint64_t rng_state = UINT64_C(0x5eed5eed5eed5eed);

static uint64_t rng_next(void)
{
	rng_state ^= rng_state >> 12;
	rng_state ^= rng_state << 25;
	rng_state ^= rng_state >> 27;
	return rng_state * UINT64_C(2685821657736338717);
}

static unsigned rng_below(unsigned n)
{
	return (unsigned)(rng_next() % n);
}

/* ---- custom models built at run time ---- */

struct custom {
	struct mat_dimension dims[MAT_MAX_DIMENSIONS];
	char dim_ids[MAT_MAX_DIMENSIONS][24];
	struct mat_practice practices[MAT_MAX_PRACTICES];
	char ids[MAT_MAX_PRACTICES][48];
	struct mat_model model;
};

/* n practices; practice i has level levels[i] and dimension dims[i]. */
static void custom_init(struct custom *c, size_t n_dims, size_t n, const int *levels,
                        const int *dims)
{
	memset(c, 0, sizeof(*c));
	for (size_t d = 0; d < n_dims; d++) {
		snprintf(c->dim_ids[d], sizeof(c->dim_ids[d]), "d%zu", d);
		c->dims[d].id = c->dim_ids[d];
		c->dims[d].display_name = c->dim_ids[d];
		c->dims[d].description = "A dimension.";
	}
	for (size_t i = 0; i < n; i++) {
		snprintf(c->ids[i], sizeof(c->ids[i]), "d%d.p%zu", dims[i], i);
		c->practices[i].id = c->ids[i];
		c->practices[i].dimension = dims[i];
		c->practices[i].level = levels[i];
		c->practices[i].title = c->ids[i];
		c->practices[i].description = "A practice.";
	}
	c->model.id = "custom";
	c->model.display_name = "Custom";
	c->model.n_dimensions = n_dims;
	c->model.dimensions = c->dims;
	c->model.n_practices = n;
	c->model.practices = c->practices;
}

static void custom_random(struct custom *c)
{
	int levels[MAT_MAX_PRACTICES];
	int dims[MAT_MAX_PRACTICES];
	size_t n_dims = 1 + rng_below(MAT_MAX_DIMENSIONS);
	size_t n = 1 + rng_below(MAT_MAX_PRACTICES);

	for (size_t i = 0; i < n; i++) {
		levels[i] = 1 + (int)rng_below(4);
		dims[i] = (int)rng_below((unsigned)n_dims);
	}
	custom_init(c, n_dims, n, levels, dims);
}

/* Random statuses biased so every level is reached often: practices up to a per-set threshold
 * are mostly satisfied, the rest are anything (including UNSPECIFIED). */
static void random_statuses(const struct mat_model *m, enum mat_status *st)
{
	int threshold = (int)rng_below(5);

	for (size_t i = 0; i < m->n_practices; i++) {
		if (m->practices[i].level <= threshold && rng_below(10) != 0)
			st[i] = rng_below(2) ? MAT_STATUS_IMPLEMENTED : MAT_STATUS_NOT_APPLICABLE;
		else
			st[i] = (enum mat_status)rng_below(MAT_STATUS_MAX + 1);
	}
}

/* ---- the naive reference: docs/model.md's rules read literally, no cleverness ---- */

static bool naive_satisfied(enum mat_status s)
{
	return s == MAT_STATUS_IMPLEMENTED || s == MAT_STATUS_NOT_APPLICABLE;
}

static double naive_credit(enum mat_status s)
{
	if (naive_satisfied(s))
		return 1.0;
	return s == MAT_STATUS_PARTIAL ? 0.5 : 0.0;
}

/* Largest L in 0..4 with every practice (of dimension dim, or all when dim < 0) at level <= L
 * satisfied. */
static int naive_level(const struct mat_model *m, const enum mat_status *st, int dim)
{
	for (int level = 4; level >= 0; level--) {
		bool all = true;
		for (size_t i = 0; i < m->n_practices; i++) {
			const struct mat_practice *p = &m->practices[i];
			if ((dim < 0 || p->dimension == dim) && p->level <= level &&
			    !naive_satisfied(st[i]))
				all = false;
		}
		if (all)
			return level;
	}
	return 0;
}

static double naive_progress(const struct mat_model *m, const enum mat_status *st, int dim,
                             int level)
{
	double sum = 0;
	int count = 0;

	if (level == 4)
		return 1.0;
	for (size_t i = 0; i < m->n_practices; i++) {
		const struct mat_practice *p = &m->practices[i];
		if ((dim < 0 || p->dimension == dim) && p->level == level + 1) {
			sum += naive_credit(st[i]);
			count++;
		}
	}
	return count == 0 ? 1.0 : sum / count;
}

static void naive_score(const struct mat_model *m, const enum mat_status *st, struct mat_score *s)
{
	double credits = 0;

	memset(s, 0, sizeof(*s));
	s->overall_level = naive_level(m, st, -1);
	s->progress_to_next_level = naive_progress(m, st, -1, s->overall_level);
	s->n_dimensions = m->n_dimensions;
	for (size_t d = 0; d < m->n_dimensions; d++) {
		s->dimensions[d].level = naive_level(m, st, (int)d);
		s->dimensions[d].progress_to_next_level =
		    naive_progress(m, st, (int)d, s->dimensions[d].level);
	}
	for (size_t i = 0; i < m->n_practices; i++) {
		const struct mat_practice *p = &m->practices[i];
		credits += naive_credit(st[i]);
		s->total_count++;
		s->dimensions[p->dimension].total_count++;
		if (naive_satisfied(st[i])) {
			s->satisfied_count++;
			s->dimensions[p->dimension].satisfied_count++;
		} else if (p->level == s->overall_level + 1) {
			s->blocking[s->n_blocking++] = (uint8_t)i;
		}
	}
	/* Exact halves are not representable here for every n, but this naive rounding is right
	 * whenever the exact value is not within float noise of a .xx5 tie; the callers only use
	 * it where that holds (n = 30 never produces a tie: 5000h/30 has thirds as fractions). */
	s->maturity_index = floor(100.0 * credits / (double)m->n_practices * 100.0 + 0.5) / 100.0;
}

static void naive_roadmap(const struct mat_model *m, const enum mat_status *st, int requested,
                          int org_target, struct mat_roadmap *r)
{
	memset(r, 0, sizeof(*r));
	r->current_level = naive_level(m, st, -1);
	if (requested >= 0)
		r->target_level = requested;
	else if (org_target > r->current_level)
		r->target_level = org_target;
	else
		r->target_level = r->current_level + 1;
	if (r->target_level > 4)
		r->target_level = 4;
	for (int level = r->current_level + 1; level <= r->target_level; level++) {
		struct mat_roadmap_stage *stage = &r->stages[r->n_stages++];
		stage->level = level;
		for (size_t d = 0; d < m->n_dimensions; d++) {
			for (size_t i = 0; i < m->n_practices; i++) {
				const struct mat_practice *p = &m->practices[i];
				if (p->dimension == (int)d && p->level == level &&
				    !naive_satisfied(st[i]))
					stage->steps[stage->n_steps++] = (uint8_t)i;
			}
		}
	}
	/* An empty roadmap (target at or below current) lists nothing ahead either. */
	for (int level = r->target_level + 1; r->target_level > r->current_level && level <= 4;
	     level++) {
		for (size_t d = 0; d < m->n_dimensions; d++) {
			for (size_t i = 0; i < m->n_practices; i++) {
				const struct mat_practice *p = &m->practices[i];
				if (p->dimension == (int)d && p->level == level &&
				    naive_satisfied(st[i]))
					r->ahead[r->n_ahead++] = (uint8_t)i;
			}
		}
	}
}

static void assert_score_equal(const struct mat_score *got, const struct mat_score *want)
{
	assert_int_equal(got->overall_level, want->overall_level);
	assert_true(got->progress_to_next_level == want->progress_to_next_level);
	assert_true(got->maturity_index == want->maturity_index);
	assert_int_equal(got->satisfied_count, want->satisfied_count);
	assert_int_equal(got->total_count, want->total_count);
	assert_int_equal(got->n_dimensions, want->n_dimensions);
	for (size_t d = 0; d < want->n_dimensions; d++) {
		assert_int_equal(got->dimensions[d].level, want->dimensions[d].level);
		assert_true(got->dimensions[d].progress_to_next_level ==
		            want->dimensions[d].progress_to_next_level);
		assert_int_equal(got->dimensions[d].satisfied_count,
		                 want->dimensions[d].satisfied_count);
		assert_int_equal(got->dimensions[d].total_count, want->dimensions[d].total_count);
	}
	assert_int_equal(got->n_blocking, want->n_blocking);
	assert_memory_equal(got->blocking, want->blocking, want->n_blocking);
}

static void assert_roadmap_equal(const struct mat_roadmap *got, const struct mat_roadmap *want)
{
	assert_int_equal(got->current_level, want->current_level);
	assert_int_equal(got->target_level, want->target_level);
	assert_int_equal(got->n_stages, want->n_stages);
	for (size_t s = 0; s < want->n_stages; s++) {
		assert_int_equal(got->stages[s].level, want->stages[s].level);
		assert_int_equal(got->stages[s].n_steps, want->stages[s].n_steps);
		assert_memory_equal(got->stages[s].steps, want->stages[s].steps,
		                    want->stages[s].n_steps);
	}
	assert_int_equal(got->n_ahead, want->n_ahead);
	assert_memory_equal(got->ahead, want->ahead, want->n_ahead);
}

/* ---- scoring: satisfied and credit ---- */

static void test_mat_status_satisfied_each_status(void **state)
{
	static const struct {
		int status;
		bool satisfied;
	} cases[] = {
	    {MAT_STATUS_UNSPECIFIED, false},
	    {MAT_STATUS_NOT_IMPLEMENTED, false},
	    {MAT_STATUS_PARTIAL, false},
	    {MAT_STATUS_IMPLEMENTED, true},
	    {MAT_STATUS_NOT_APPLICABLE, true},
	    {5, false},
	    {-1, false},
	};

	for (size_t i = 0; i < N_OF(cases); i++)
		assert_int_equal(mat_status_satisfied((enum mat_status)cases[i].status),
		                 cases[i].satisfied);
}

static void test_mat_score_compute_no_answers_is_level_0(void **state)
{
	static const int totals[4] = {6, 7, 10, 7};
	static const uint8_t level1[] = {0, 6, 13, 14, 23, 24, 25};
	const struct mat_model *m = mlops();
	enum mat_status st[30];
	struct mat_score s;

	set_all(st, 30, MAT_STATUS_UNSPECIFIED);
	mat_score_compute(m, st, &s);
	assert_int_equal(s.overall_level, 0);
	assert_true(s.progress_to_next_level == 0.0);
	assert_true(s.maturity_index == 0.0);
	assert_int_equal(s.satisfied_count, 0);
	assert_int_equal(s.total_count, 30);
	assert_int_equal(s.n_dimensions, 4);
	for (size_t d = 0; d < 4; d++) {
		assert_int_equal(s.dimensions[d].level, 0);
		assert_true(s.dimensions[d].progress_to_next_level == 0.0);
		assert_int_equal(s.dimensions[d].satisfied_count, 0);
		assert_int_equal(s.dimensions[d].total_count, totals[d]);
	}
	/* Blocking: the seven level-1 practices, catalog order. */
	assert_int_equal(s.n_blocking, N_OF(level1));
	assert_memory_equal(s.blocking, level1, N_OF(level1));

	/* NOT_IMPLEMENTED is the same as no answer. */
	struct mat_score s2;
	set_all(st, 30, MAT_STATUS_NOT_IMPLEMENTED);
	mat_score_compute(m, st, &s2);
	assert_memory_equal(&s, &s2, sizeof(s));
}

static void test_mat_score_compute_all_satisfied_is_level_4(void **state)
{
	static const enum mat_status satisfied[] = {MAT_STATUS_IMPLEMENTED,
	                                            MAT_STATUS_NOT_APPLICABLE};
	const struct mat_model *m = mlops();
	enum mat_status st[30];
	struct mat_score s;

	for (size_t k = 0; k < N_OF(satisfied); k++) {
		set_all(st, 30, satisfied[k]);
		mat_score_compute(m, st, &s);
		assert_int_equal(s.overall_level, 4);
		assert_true(s.progress_to_next_level == 1.0);
		assert_true(s.maturity_index == 100.0);
		assert_int_equal(s.satisfied_count, 30);
		assert_int_equal(s.n_blocking, 0);
		for (size_t d = 0; d < 4; d++) {
			assert_int_equal(s.dimensions[d].level, 4);
			assert_true(s.dimensions[d].progress_to_next_level == 1.0);
			assert_int_equal(s.dimensions[d].satisfied_count,
			                 s.dimensions[d].total_count);
		}
	}
}

static void test_mat_score_compute_all_partial_is_level_0_half_index(void **state)
{
	const struct mat_model *m = mlops();
	enum mat_status st[30];
	struct mat_score s;

	set_all(st, 30, MAT_STATUS_PARTIAL);
	mat_score_compute(m, st, &s);
	assert_int_equal(s.overall_level, 0);
	assert_true(s.progress_to_next_level == 0.5);
	assert_true(s.maturity_index == 50.0);
	assert_int_equal(s.satisfied_count, 0);
	assert_int_equal(s.n_blocking, 7);
}

/* ---- scoring: dimension and overall levels at every boundary ---- */

static void test_mat_score_compute_dimension_level_boundaries(void **state)
{
	/* expected[d][L]: dimension d's level when exactly its practices at level <= L are
	 * implemented. model_creation has nothing at level 3 and application_integration nothing
	 * at level 2, so they jump over those. */
	static const int expected[4][5] = {
	    {0, 1, 2, 3, 4}, /* people: 1,2,3,3,4,4 */
	    {0, 1, 3, 3, 4}, /* model_creation: 1,2,2,2,2,2,4 */
	    {0, 1, 2, 3, 4}, /* model_release: 1,1,2,2,3,3,3,3,4,4 */
	    {0, 2, 2, 3, 4}, /* application_integration: 1,1,1,3,3,3,4 */
	};
	const struct mat_model *m = mlops();

	for (int d = 0; d < 4; d++) {
		for (int level = 0; level <= 4; level++) {
			enum mat_status st[30];
			struct mat_score s;

			for (size_t i = 0; i < 30; i++) {
				bool mine = m->practices[i].dimension == d;
				st[i] = (!mine || spec_level[i] <= level)
				            ? MAT_STATUS_IMPLEMENTED
				            : MAT_STATUS_NOT_IMPLEMENTED;
			}
			mat_score_compute(m, st, &s);
			assert_int_equal(s.dimensions[d].level, expected[d][level]);
			/* Every other dimension is complete, so it alone sets the overall level. */
			assert_int_equal(s.overall_level, expected[d][level]);
			for (int other = 0; other < 4; other++) {
				if (other != d)
					assert_int_equal(s.dimensions[other].level, 4);
			}
		}
	}
}

static void test_mat_score_compute_single_gap_per_practice(void **state)
{
	/* Everything implemented but practice i: its dimension and the overall level drop to
	 * level(i) - 1, it alone blocks, and the index is 100 * 29/30. */
	const struct mat_model *m = mlops();

	for (size_t i = 0; i < 30; i++) {
		enum mat_status st[30];
		struct mat_score s;
		int d = m->practices[i].dimension;

		set_all(st, 30, MAT_STATUS_IMPLEMENTED);
		st[i] = MAT_STATUS_NOT_IMPLEMENTED;
		mat_score_compute(m, st, &s);
		assert_int_equal(s.overall_level, spec_level[i] - 1);
		assert_int_equal(s.dimensions[d].level, spec_level[i] - 1);
		assert_int_equal(s.n_blocking, 1);
		assert_int_equal(s.blocking[0], i);
		assert_true(s.maturity_index == 96.67);
		assert_int_equal(s.satisfied_count, 29);
		assert_int_equal(s.dimensions[d].satisfied_count, s.dimensions[d].total_count - 1);

		/* The same gap as PARTIAL: same levels, index 100 * 29.5/30 = 98.33. */
		st[i] = MAT_STATUS_PARTIAL;
		mat_score_compute(m, st, &s);
		assert_int_equal(s.overall_level, spec_level[i] - 1);
		assert_true(s.maturity_index == 98.33);
	}
}

static void test_mat_score_compute_overall_is_min_of_dimensions(void **state)
{
	/* people at 3 (a level-4 gap), model_release at 1 (a level-2 gap), the rest at 4. */
	const struct mat_model *m = mlops();
	enum mat_status st[30];
	struct mat_score s;

	set_all(st, 30, MAT_STATUS_IMPLEMENTED);
	st[idx("people.post_deployment_metrics")] = MAT_STATUS_NOT_IMPLEMENTED;
	st[idx("model_release.tested_scoring_scripts")] = MAT_STATUS_PARTIAL;
	mat_score_compute(m, st, &s);
	assert_int_equal(s.dimensions[PEOPLE].level, 3);
	assert_int_equal(s.dimensions[MODEL_CREATION].level, 4);
	assert_int_equal(s.dimensions[MODEL_RELEASE].level, 1);
	assert_int_equal(s.dimensions[APPLICATION_INTEGRATION].level, 4);
	assert_int_equal(s.overall_level, 1);
	/* Blocking: unsatisfied at exactly level 2; the level-4 gap does not block. */
	assert_int_equal(s.n_blocking, 1);
	assert_int_equal(s.blocking[0], idx("model_release.tested_scoring_scripts"));
	/* Overall progress to 2: 7 of 8 level-2 practices satisfied + one PARTIAL = 7.5/8. */
	assert_true(s.progress_to_next_level == 7.5 / 8.0);
	/* people: level 3 -> 4 has 2 practices, 1 satisfied. */
	assert_true(s.dimensions[PEOPLE].progress_to_next_level == 0.5);
	/* model_release: level 1 -> 2 has 2 practices: 1 + 0.5. */
	assert_true(s.dimensions[MODEL_RELEASE].progress_to_next_level == 0.75);
	/* credits 28 + 0.5 of 30 = 95.00 */
	assert_true(s.maturity_index == 95.0);
}

static void test_mat_score_compute_progress_and_counts_hand_computed(void **state)
{
	/* Level 1 all implemented; at level 2: repeatable_jobs PARTIAL, managed_compute
	 * IMPLEMENTED, experiment_tracking PARTIAL; the rest NOT_IMPLEMENTED. */
	static const uint8_t blocking[] = {1, 8, 9, 10, 11, 15, 16};
	const struct mat_model *m = mlops();
	enum mat_status st[30];
	struct mat_score s;

	set_all(st, 30, MAT_STATUS_NOT_IMPLEMENTED);
	for (size_t i = 0; i < 30; i++) {
		if (spec_level[i] == 1)
			st[i] = MAT_STATUS_IMPLEMENTED;
	}
	st[idx("people.ds_de_repeatable_jobs")] = MAT_STATUS_PARTIAL;
	st[idx("model_creation.managed_compute")] = MAT_STATUS_IMPLEMENTED;
	st[idx("model_creation.experiment_tracking")] = MAT_STATUS_PARTIAL;
	mat_score_compute(m, st, &s);

	assert_int_equal(s.overall_level, 1);
	assert_true(s.progress_to_next_level == 0.25); /* (0.5 + 1 + 0.5) / 8 */
	assert_int_equal(s.dimensions[PEOPLE].level, 1);
	assert_true(s.dimensions[PEOPLE].progress_to_next_level == 0.5);
	assert_int_equal(s.dimensions[MODEL_CREATION].level, 1);
	assert_true(s.dimensions[MODEL_CREATION].progress_to_next_level == 1.5 / 5.0);
	assert_int_equal(s.dimensions[MODEL_RELEASE].level, 1);
	assert_true(s.dimensions[MODEL_RELEASE].progress_to_next_level == 0.0);
	/* Nothing at level 2 in application_integration: level 1 done means level 2. */
	assert_int_equal(s.dimensions[APPLICATION_INTEGRATION].level, 2);
	assert_true(s.dimensions[APPLICATION_INTEGRATION].progress_to_next_level == 0.0);

	assert_int_equal(s.dimensions[PEOPLE].satisfied_count, 1);
	assert_int_equal(s.dimensions[MODEL_CREATION].satisfied_count, 2);
	assert_int_equal(s.dimensions[MODEL_RELEASE].satisfied_count, 2);
	assert_int_equal(s.dimensions[APPLICATION_INTEGRATION].satisfied_count, 3);
	assert_int_equal(s.satisfied_count, 8);
	assert_int_equal(s.total_count, 30);
	assert_true(s.maturity_index == 30.0); /* (8 + 2 * 0.5) / 30 */
	assert_int_equal(s.n_blocking, N_OF(blocking));
	assert_memory_equal(s.blocking, blocking, N_OF(blocking));
}

static void test_mat_score_compute_out_of_range_status_is_not_implemented(void **state)
{
	const struct mat_model *m = mlops();
	enum mat_status st[30];
	struct mat_score s;
	struct mat_score want;

	set_all(st, 30, MAT_STATUS_IMPLEMENTED);
	st[0] = (enum mat_status)7;
	st[1] = (enum mat_status) - 1;
	mat_score_compute(m, st, &s);
	set_all(st, 30, MAT_STATUS_IMPLEMENTED);
	st[0] = MAT_STATUS_NOT_IMPLEMENTED;
	st[1] = MAT_STATUS_NOT_IMPLEMENTED;
	mat_score_compute(m, st, &want);
	assert_memory_equal(&s, &want, sizeof(s));
	assert_int_equal(s.overall_level, 0);
}

/* ---- scoring: maturity index rounding ---- */

static void test_mat_score_compute_maturity_index_rounding_mlops(void **state)
{
	static const struct {
		int partial;
		int implemented;
		double index;
	} cases[] = {
	    {0, 0, 0.0},    {1, 0, 1.67},   {0, 1, 3.33},   {2, 0, 3.33},  {3, 0, 5.0},
	    {1, 1, 5.0},    {4, 0, 6.67},   {5, 0, 8.33},   {0, 3, 10.0},  {1, 14, 48.33},
	    {0, 29, 96.67}, {1, 29, 98.33}, {0, 30, 100.0}, {30, 0, 50.0}, {29, 1, 51.67},
	};
	const struct mat_model *m = mlops();

	for (size_t c = 0; c < N_OF(cases); c++) {
		enum mat_status st[30];
		struct mat_score s;
		size_t i = 0;

		set_all(st, 30, MAT_STATUS_NOT_IMPLEMENTED);
		for (int k = 0; k < cases[c].implemented; k++)
			st[i++] = MAT_STATUS_IMPLEMENTED;
		for (int k = 0; k < cases[c].partial; k++)
			st[i++] = MAT_STATUS_PARTIAL;
		mat_score_compute(m, st, &s);
		assert_true(s.maturity_index == cases[c].index);
	}
}

static void test_mat_score_compute_maturity_index_ties_round_away_from_zero(void **state)
{
	/* With 16 practices one PARTIAL is 100 * 0.5 / 16 = 3.125 exactly: a tie. Half away from
	 * zero gives 3.13 (round-half-even, as printf("%.2f") does, would give 3.12). */
	static const struct {
		size_t n;
		int partial;
		double index;
	} cases[] = {
	    {16, 1, 3.13}, {16, 5, 15.63}, {16, 9, 28.13}, {16, 3, 9.38},
	    {32, 2, 3.13}, {48, 3, 3.13},  {64, 1, 0.78},  {64, 3, 2.34},
	    {8, 1, 6.25},  {1, 1, 50.0},   {3, 1, 16.67},  {7, 1, 7.14},
	};
	int levels[MAT_MAX_PRACTICES];
	int dims[MAT_MAX_PRACTICES];
	struct custom c;

	for (size_t i = 0; i < MAT_MAX_PRACTICES; i++) {
		levels[i] = 1;
		dims[i] = 0;
	}
	for (size_t k = 0; k < N_OF(cases); k++) {
		enum mat_status st[MAT_MAX_PRACTICES];
		struct mat_score s;

		custom_init(&c, 1, cases[k].n, levels, dims);
		set_all(st, cases[k].n, MAT_STATUS_NOT_IMPLEMENTED);
		for (int p = 0; p < cases[k].partial; p++)
			st[p] = MAT_STATUS_PARTIAL;
		mat_score_compute(&c.model, st, &s);
		assert_true(s.maturity_index == cases[k].index);
	}
}

/* ---- scoring: custom models (a model is data) ---- */

static void test_mat_score_compute_empty_dimension_is_level_4_progress_1(void **state)
{
	/* Dimension 1 has no practices: nothing to satisfy at any level. */
	static const int levels[] = {1, 2};
	static const int dims[] = {0, 0};
	struct custom c;
	enum mat_status st[2] = {MAT_STATUS_IMPLEMENTED, MAT_STATUS_NOT_IMPLEMENTED};
	struct mat_score s;

	custom_init(&c, 2, 2, levels, dims);
	mat_score_compute(&c.model, st, &s);
	assert_int_equal(s.dimensions[1].level, 4);
	assert_true(s.dimensions[1].progress_to_next_level == 1.0);
	assert_int_equal(s.dimensions[1].total_count, 0);
	assert_int_equal(s.dimensions[0].level, 1);
	assert_true(s.dimensions[0].progress_to_next_level == 0.0);
	assert_int_equal(s.overall_level, 1);
}

static void test_mat_score_compute_no_practice_at_next_level_progress_1(void **state)
{
	/* Practices at levels 1 and 4 only; level 1 satisfied puts the model at 3 (levels 2 and 3
	 * expect nothing), so progress is measured against level 4. A level that expects nothing
	 * is never "next": the level would already be past it. */
	static const int levels[] = {1, 4};
	static const int dims[] = {0, 0};
	struct custom c;
	enum mat_status st[2] = {MAT_STATUS_IMPLEMENTED, MAT_STATUS_PARTIAL};
	struct mat_score s;

	custom_init(&c, 1, 2, levels, dims);
	mat_score_compute(&c.model, st, &s);
	assert_int_equal(s.overall_level, 3);
	assert_true(s.progress_to_next_level == 0.5);
	assert_int_equal(s.dimensions[0].level, 3);
	assert_true(s.dimensions[0].progress_to_next_level == 0.5);
}

static void test_mat_score_compute_blocking_catalog_order_interleaved(void **state)
{
	/* Catalog interleaves dimensions: blocking stays in catalog order, not dimension order. */
	static const int levels[] = {1, 1, 2, 1, 1};
	static const int dims[] = {1, 0, 0, 1, 0};
	struct custom c;
	enum mat_status st[5] = {MAT_STATUS_NOT_IMPLEMENTED, MAT_STATUS_PARTIAL,
	                         MAT_STATUS_NOT_IMPLEMENTED, MAT_STATUS_IMPLEMENTED,
	                         MAT_STATUS_UNSPECIFIED};
	struct mat_score s;

	custom_init(&c, 2, 5, levels, dims);
	mat_score_compute(&c.model, st, &s);
	assert_int_equal(s.overall_level, 0);
	assert_int_equal(s.n_blocking, 3);
	assert_int_equal(s.blocking[0], 0);
	assert_int_equal(s.blocking[1], 1);
	assert_int_equal(s.blocking[2], 4);
}

static void test_mat_score_compute_64_practices(void **state)
{
	int levels[64];
	int dims[64];
	enum mat_status st[64];
	struct custom c;
	struct mat_score s;

	for (int i = 0; i < 64; i++) {
		levels[i] = 1 + i % 4;
		dims[i] = i % 8;
	}
	custom_init(&c, 8, 64, levels, dims);
	set_all(st, 64, MAT_STATUS_IMPLEMENTED);
	st[63] = MAT_STATUS_NOT_IMPLEMENTED; /* level 4, dimension 7 */
	mat_score_compute(&c.model, st, &s);
	assert_int_equal(s.overall_level, 3);
	assert_int_equal(s.dimensions[7].level, 3);
	assert_int_equal(s.n_blocking, 1);
	assert_int_equal(s.blocking[0], 63);
	assert_int_equal(s.total_count, 64);
}

/* ---- roadmap: target ---- */

static void test_mat_roadmap_target_rules(void **state)
{
	static const struct {
		int requested, org_target, current, want;
	} cases[] = {
	    {-1, -1, 0, 1},                 /* nothing set: current + 1 */
	    {-1, -1, 3, 4}, {-1, -1, 4, 4}, /* capped at 4 */
	    {-1, 3, 1, 3},                  /* organization target above current */
	    {-1, 1, 1, 2},                  /* organization target not above current: current + 1 */
	    {-1, 0, 2, 3},  {-1, 4, 4, 4},  {-1, 9, 0, 4}, /* capped */
	    {2, -1, 3, 2},                                 /* request wins, even below current */
	    {0, 4, 0, 0},   {4, -1, 0, 4},  {3, 1, 2, 3},
	    {1, 4, 1, 1},   {7, -1, 0, 4}, /* out of range request capped */
	};

	for (size_t i = 0; i < N_OF(cases); i++)
		assert_int_equal(
		    mat_roadmap_target(cases[i].requested, cases[i].org_target, cases[i].current),
		    cases[i].want);
}

/* ---- roadmap: stages and ahead ---- */

static void test_mat_roadmap_compute_no_answers_default_target(void **state)
{
	static const uint8_t level1[] = {0, 6, 13, 14, 23, 24, 25};
	const struct mat_model *m = mlops();
	enum mat_status st[30];
	struct mat_roadmap r;

	set_all(st, 30, MAT_STATUS_UNSPECIFIED);
	mat_roadmap_compute(m, st, -1, -1, &r);
	assert_int_equal(r.current_level, 0);
	assert_int_equal(r.target_level, 1);
	assert_int_equal(r.n_stages, 1);
	assert_int_equal(r.stages[0].level, 1);
	assert_int_equal(r.stages[0].n_steps, N_OF(level1));
	assert_memory_equal(r.stages[0].steps, level1, N_OF(level1));
	assert_int_equal(r.n_ahead, 0);
}

static void test_mat_roadmap_compute_full_roadmap_from_level_0(void **state)
{
	static const size_t per_level[] = {7, 8, 9, 6};
	const struct mat_model *m = mlops();
	enum mat_status st[30];
	struct mat_roadmap r;

	set_all(st, 30, MAT_STATUS_NOT_IMPLEMENTED);
	mat_roadmap_compute(m, st, 4, -1, &r);
	assert_int_equal(r.current_level, 0);
	assert_int_equal(r.target_level, 4);
	assert_int_equal(r.n_stages, 4);
	for (size_t k = 0; k < 4; k++) {
		assert_int_equal(r.stages[k].level, (int)k + 1);
		assert_int_equal(r.stages[k].n_steps, per_level[k]);
		for (size_t j = 0; j < r.stages[k].n_steps; j++)
			assert_int_equal(spec_level[r.stages[k].steps[j]], (int)k + 1);
	}
	assert_int_equal(r.n_ahead, 0);
}

static void test_mat_roadmap_compute_stages_and_ahead_hand_computed(void **state)
{
	/* Level 1 implemented, one level-2 gap (tested_scoring_scripts PARTIAL), early work at
	 * levels 3 and 4. Organization target 2: one stage, and the early work is "ahead". */
	const struct mat_model *m = mlops();
	enum mat_status st[30];
	struct mat_roadmap r;

	set_all(st, 30, MAT_STATUS_NOT_IMPLEMENTED);
	for (size_t i = 0; i < 30; i++) {
		if (spec_level[i] <= 2)
			st[i] = MAT_STATUS_IMPLEMENTED;
	}
	st[idx("model_release.tested_scoring_scripts")] = MAT_STATUS_PARTIAL;
	st[idx("application_integration.all_code_tested")] = MAT_STATUS_IMPLEMENTED;
	st[idx("people.ds_de_shared_inputs_outputs")] = MAT_STATUS_NOT_APPLICABLE;
	st[idx("model_release.cicd_release")] = MAT_STATUS_IMPLEMENTED;
	st[idx("model_creation.metric_triggered_retraining")] = MAT_STATUS_IMPLEMENTED;
	st[idx("people.post_deployment_metrics")] = MAT_STATUS_IMPLEMENTED;
	st[idx("model_release.ab_testing")] = MAT_STATUS_PARTIAL; /* not satisfied: not ahead */

	mat_roadmap_compute(m, st, -1, 2, &r);
	assert_int_equal(r.current_level, 1);
	assert_int_equal(r.target_level, 2);
	assert_int_equal(r.n_stages, 1);
	assert_int_equal(r.stages[0].level, 2);
	assert_int_equal(r.stages[0].n_steps, 1);
	assert_int_equal(r.stages[0].steps[0], idx("model_release.tested_scoring_scripts"));
	/* ahead: level 3 (people, model_release, application_integration), then level 4 (people,
	 * model_creation). */
	assert_int_equal(r.n_ahead, 5);
	assert_int_equal(r.ahead[0], idx("people.ds_de_shared_inputs_outputs"));
	assert_int_equal(r.ahead[1], idx("model_release.cicd_release"));
	assert_int_equal(r.ahead[2], idx("application_integration.all_code_tested"));
	assert_int_equal(r.ahead[3], idx("people.post_deployment_metrics"));
	assert_int_equal(r.ahead[4], idx("model_creation.metric_triggered_retraining"));

	/* Target 4 instead: stages 2, 3 and 4; nothing is above the target. */
	mat_roadmap_compute(m, st, 4, 2, &r);
	assert_int_equal(r.n_stages, 3);
	assert_int_equal(r.stages[0].n_steps, 1);
	assert_int_equal(r.stages[1].level, 3);
	assert_int_equal(r.stages[1].n_steps, 9 - 3);
	assert_int_equal(r.stages[1].steps[0], idx("people.se_de_integration_automation"));
	assert_int_equal(r.stages[2].level, 4);
	assert_int_equal(r.stages[2].n_steps, 6 - 2);
	assert_int_equal(r.n_ahead, 0);
}

static void test_mat_roadmap_compute_stage_without_steps_is_kept(void **state)
{
	/* Level 2 incomplete, level 3 entirely done early: the level-3 stage exists, empty. */
	const struct mat_model *m = mlops();
	enum mat_status st[30];
	struct mat_roadmap r;

	for (size_t i = 0; i < 30; i++)
		st[i] = spec_level[i] == 2 ? MAT_STATUS_NOT_IMPLEMENTED : MAT_STATUS_IMPLEMENTED;
	mat_roadmap_compute(m, st, 3, -1, &r);
	assert_int_equal(r.current_level, 1);
	assert_int_equal(r.n_stages, 2);
	assert_int_equal(r.stages[0].n_steps, 8);
	assert_int_equal(r.stages[1].level, 3);
	assert_int_equal(r.stages[1].n_steps, 0);
	assert_int_equal(r.n_ahead, 6); /* all of level 4 */
}

static void test_mat_roadmap_compute_target_at_or_below_current_is_empty(void **state)
{
	const struct mat_model *m = mlops();
	enum mat_status st[30];
	struct mat_roadmap r;

	/* At level 4 with nothing requested: target caps at 4, no stages, nothing ahead. */
	set_all(st, 30, MAT_STATUS_IMPLEMENTED);
	mat_roadmap_compute(m, st, -1, -1, &r);
	assert_int_equal(r.current_level, 4);
	assert_int_equal(r.target_level, 4);
	assert_int_equal(r.n_stages, 0);
	assert_int_equal(r.n_ahead, 0);

	/* At level 2, asking for 2, 1 or 0: an empty roadmap (no stages, nothing ahead), not an
	 * error. */
	for (size_t i = 0; i < 30; i++)
		st[i] = spec_level[i] <= 2 ? MAT_STATUS_IMPLEMENTED : MAT_STATUS_NOT_IMPLEMENTED;
	mat_roadmap_compute(m, st, 2, -1, &r);
	assert_int_equal(r.current_level, 2);
	assert_int_equal(r.target_level, 2);
	assert_int_equal(r.n_stages, 0);
	assert_int_equal(r.n_ahead, 0);
	mat_roadmap_compute(m, st, 1, -1, &r);
	assert_int_equal(r.target_level, 1);
	assert_int_equal(r.n_stages, 0);
	assert_int_equal(r.n_ahead, 0);
	mat_roadmap_compute(m, st, 0, -1, &r);
	assert_int_equal(r.n_stages, 0);
	assert_int_equal(r.n_ahead, 0);
}

static void test_mat_roadmap_compute_steps_dimension_then_catalog_order(void **state)
{
	/* Catalog: p0 d1 L1, p1 d0 L1, p2 d1 L2, p3 d0 L2, p4 d0 L1, p5 d1 L3, p6 d0 L3. */
	static const int levels[] = {1, 1, 2, 2, 1, 3, 3};
	static const int dims[] = {1, 0, 1, 0, 0, 1, 0};
	struct custom c;
	enum mat_status st[7];
	struct mat_roadmap r;

	custom_init(&c, 2, 7, levels, dims);
	set_all(st, 7, MAT_STATUS_NOT_IMPLEMENTED);
	st[5] = MAT_STATUS_IMPLEMENTED;
	st[6] = MAT_STATUS_NOT_APPLICABLE;
	mat_roadmap_compute(&c.model, st, 2, -1, &r);
	assert_int_equal(r.n_stages, 2);
	/* Stage 1: dimension 0 (p1, p4), then dimension 1 (p0). */
	assert_int_equal(r.stages[0].n_steps, 3);
	assert_int_equal(r.stages[0].steps[0], 1);
	assert_int_equal(r.stages[0].steps[1], 4);
	assert_int_equal(r.stages[0].steps[2], 0);
	/* Stage 2: p3 (dimension 0), p2 (dimension 1). */
	assert_int_equal(r.stages[1].n_steps, 2);
	assert_int_equal(r.stages[1].steps[0], 3);
	assert_int_equal(r.stages[1].steps[1], 2);
	/* Ahead at level 3: p6 (dimension 0) before p5 (dimension 1). */
	assert_int_equal(r.n_ahead, 2);
	assert_int_equal(r.ahead[0], 6);
	assert_int_equal(r.ahead[1], 5);
}

/* ---- properties over random answer sets ---- */

#define N_RANDOM_SETS 4000

static void test_mat_score_compute_matches_naive_on_random_sets(void **state)
{
	const struct mat_model *m = mlops();

	rng_state = UINT64_C(0x5eed5eed5eed5eed);
	for (int k = 0; k < N_RANDOM_SETS; k++) {
		enum mat_status st[30];
		struct mat_score got;
		struct mat_score want;

		random_statuses(m, st);
		mat_score_compute(m, st, &got);
		naive_score(m, st, &want);
		assert_score_equal(&got, &want);
	}
}

static void test_mat_score_compute_matches_naive_on_random_models(void **state)
{
	struct custom c;

	rng_state = UINT64_C(0x0dd5eed0dd5eed);
	for (int k = 0; k < N_RANDOM_SETS; k++) {
		enum mat_status st[MAT_MAX_PRACTICES];
		struct mat_score got;
		struct mat_score want;

		custom_random(&c);
		random_statuses(&c.model, st);
		mat_score_compute(&c.model, st, &got);
		naive_score(&c.model, st, &want);
		/* The naive index may misround ties for these n; compare exactly elsewhere. */
		want.maturity_index = got.maturity_index;
		assert_score_equal(&got, &want);
	}
}

static void test_mat_score_compute_overall_is_min_on_random_sets(void **state)
{
	const struct mat_model *m = mlops();

	rng_state = UINT64_C(0x1234567);
	for (int k = 0; k < N_RANDOM_SETS; k++) {
		enum mat_status st[30];
		struct mat_score s;
		int min = 4;

		random_statuses(m, st);
		mat_score_compute(m, st, &s);
		for (size_t d = 0; d < s.n_dimensions; d++) {
			if (s.dimensions[d].level < min)
				min = s.dimensions[d].level;
		}
		assert_int_equal(s.overall_level, min);
		/* Blocking is exactly the unsatisfied practices at overall + 1. */
		size_t expect_blocking = 0;
		for (size_t i = 0; i < 30; i++) {
			if (spec_level[i] == s.overall_level + 1 && !mat_status_satisfied(st[i]))
				expect_blocking++;
		}
		assert_int_equal(s.n_blocking, expect_blocking);
		assert_true(s.maturity_index >= 0.0 && s.maturity_index <= 100.0);
		assert_true(s.progress_to_next_level >= 0.0 && s.progress_to_next_level <= 1.0);
	}
}

static void test_mat_score_compute_implementing_never_lowers(void **state)
{
	const struct mat_model *m = mlops();

	rng_state = UINT64_C(0xfeedface);
	for (int k = 0; k < N_RANDOM_SETS; k++) {
		enum mat_status st[30];
		struct mat_score before;

		random_statuses(m, st);
		mat_score_compute(m, st, &before);
		for (size_t i = 0; i < 30; i++) {
			enum mat_status up[30];
			struct mat_score after;

			memcpy(up, st, sizeof(up));
			up[i] = MAT_STATUS_IMPLEMENTED;
			mat_score_compute(m, up, &after);
			assert_true(after.overall_level >= before.overall_level);
			assert_true(after.maturity_index >= before.maturity_index);
			assert_true(after.satisfied_count >= before.satisfied_count);
			for (size_t d = 0; d < 4; d++) {
				assert_true(after.dimensions[d].level >=
				            before.dimensions[d].level);
				assert_true(after.dimensions[d].satisfied_count >=
				            before.dimensions[d].satisfied_count);
			}
		}
	}
}

/* Checks the roadmap's defining properties against the statuses directly. */
static void assert_roadmap_properties(const struct mat_model *m, const enum mat_status *st,
                                      const struct mat_roadmap *r)
{
	int seen[MAT_MAX_PRACTICES] = {0};
	struct mat_score s;

	mat_score_compute(m, st, &s);
	assert_int_equal(r->current_level, s.overall_level);
	if (r->target_level <= r->current_level)
		assert_int_equal(r->n_stages, 0);
	else
		assert_int_equal(r->n_stages, (size_t)(r->target_level - r->current_level));
	for (size_t k = 0; k < r->n_stages; k++) {
		const struct mat_roadmap_stage *stage = &r->stages[k];
		assert_int_equal(stage->level, r->current_level + 1 + (int)k);
		for (size_t j = 0; j < stage->n_steps; j++) {
			int p = stage->steps[j];
			assert_int_equal(m->practices[p].level, stage->level);
			assert_false(mat_status_satisfied(st[p]));
			seen[p]++;
			if (j > 0) {
				/* dimension order, then catalog order */
				int q = stage->steps[j - 1];
				assert_true(
				    m->practices[q].dimension < m->practices[p].dimension ||
				    (m->practices[q].dimension == m->practices[p].dimension &&
				     q < p));
			}
		}
	}
	for (size_t j = 0; j < r->n_ahead; j++) {
		int p = r->ahead[j];
		assert_true(m->practices[p].level > r->target_level);
		assert_true(mat_status_satisfied(st[p]));
		seen[p]++;
		if (j > 0) {
			const struct mat_practice *a = &m->practices[r->ahead[j - 1]];
			const struct mat_practice *b = &m->practices[p];
			assert_true(a->level < b->level ||
			            (a->level == b->level && a->dimension < b->dimension) ||
			            (a->level == b->level && a->dimension == b->dimension &&
			             r->ahead[j - 1] < p));
		}
	}
	/* Every practice appears exactly when it must: unsatisfied in (current, target] as a
	 * step, satisfied above the target as ahead (unless the roadmap is empty), and never
	 * twice. */
	for (size_t i = 0; i < m->n_practices; i++) {
		int level = m->practices[i].level;
		bool step = !mat_status_satisfied(st[i]) && level > r->current_level &&
		            level <= r->target_level;
		bool ahead = mat_status_satisfied(st[i]) && level > r->target_level &&
		             r->target_level > r->current_level;
		assert_int_equal(seen[i], (step || ahead) ? 1 : 0);
	}
}

static void test_mat_roadmap_compute_properties_on_random_sets(void **state)
{
	const struct mat_model *m = mlops();
	struct custom c;

	rng_state = UINT64_C(0xabcdef01);
	for (int k = 0; k < N_RANDOM_SETS; k++) {
		enum mat_status st[MAT_MAX_PRACTICES];
		struct mat_roadmap got;
		struct mat_roadmap want;
		const struct mat_model *model = m;
		int requested = (int)rng_below(6) - 1; /* -1..4 */
		int org_target = (int)rng_below(6) - 1;

		if (k % 2 == 1) {
			custom_random(&c);
			model = &c.model;
		}
		random_statuses(model, st);
		mat_roadmap_compute(model, st, requested, org_target, &got);
		naive_roadmap(model, st, requested, org_target, &want);
		assert_roadmap_equal(&got, &want);
		assert_int_equal(got.target_level,
		                 mat_roadmap_target(requested, org_target, got.current_level));
		assert_roadmap_properties(model, st, &got);
	}
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_mat_status_satisfied_each_status),
	    cmocka_unit_test(test_mat_score_compute_no_answers_is_level_0),
	    cmocka_unit_test(test_mat_score_compute_all_satisfied_is_level_4),
	    cmocka_unit_test(test_mat_score_compute_all_partial_is_level_0_half_index),
	    cmocka_unit_test(test_mat_score_compute_dimension_level_boundaries),
	    cmocka_unit_test(test_mat_score_compute_single_gap_per_practice),
	    cmocka_unit_test(test_mat_score_compute_overall_is_min_of_dimensions),
	    cmocka_unit_test(test_mat_score_compute_progress_and_counts_hand_computed),
	    cmocka_unit_test(test_mat_score_compute_out_of_range_status_is_not_implemented),
	    cmocka_unit_test(test_mat_score_compute_maturity_index_rounding_mlops),
	    cmocka_unit_test(test_mat_score_compute_maturity_index_ties_round_away_from_zero),
	    cmocka_unit_test(test_mat_score_compute_empty_dimension_is_level_4_progress_1),
	    cmocka_unit_test(test_mat_score_compute_no_practice_at_next_level_progress_1),
	    cmocka_unit_test(test_mat_score_compute_blocking_catalog_order_interleaved),
	    cmocka_unit_test(test_mat_score_compute_64_practices),
	    cmocka_unit_test(test_mat_roadmap_target_rules),
	    cmocka_unit_test(test_mat_roadmap_compute_no_answers_default_target),
	    cmocka_unit_test(test_mat_roadmap_compute_full_roadmap_from_level_0),
	    cmocka_unit_test(test_mat_roadmap_compute_stages_and_ahead_hand_computed),
	    cmocka_unit_test(test_mat_roadmap_compute_stage_without_steps_is_kept),
	    cmocka_unit_test(test_mat_roadmap_compute_target_at_or_below_current_is_empty),
	    cmocka_unit_test(test_mat_roadmap_compute_steps_dimension_then_catalog_order),
	    cmocka_unit_test(test_mat_score_compute_matches_naive_on_random_sets),
	    cmocka_unit_test(test_mat_score_compute_matches_naive_on_random_models),
	    cmocka_unit_test(test_mat_score_compute_overall_is_min_on_random_sets),
	    cmocka_unit_test(test_mat_score_compute_implementing_never_lowers),
	    cmocka_unit_test(test_mat_roadmap_compute_properties_on_random_sets),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
