/* Unit tests of mat_live.c: which piece of evidence is current (times, ties, the expiry boundary
 * observe <= t < expire, order independence), the basis of each live status, drift, confidence,
 * NOT_APPLICABLE answers that stay satisfied, the prefill note, and a property test over random
 * histories against a naive implementation written from the rule's text. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "mat_live.h"
#include "mat_model.h"
#include "mat_score.h"

#define N_OF(a) (sizeof(a) / sizeof((a)[0]))
#define SEC INT64_C(1000000)
#define T0 (INT64_C(1767225600) * SEC) /* 2026-01-01T00:00:00Z */

static const struct mat_model *mlops(void)
{
	const struct mat_model *m = mat_model_find("mlops-v1");
	assert_non_null(m);
	return m;
}

static int practice(const char *id)
{
	int k = mat_model_practice_index(mlops(), id, strlen(id));
	assert_true(k >= 0);
	return k;
}

/* A piece with borrowed strings (the tests never clean these up). */
static struct mat_evidence ev(const char *id, const char *pid, enum mat_status st,
                              mat_time_us observe, mat_time_us expire, mat_time_us create)
{
	struct mat_evidence e = {0};
	e.org_id = (char *)"acme";
	e.id = (char *)id;
	e.practice_id = (char *)pid;
	e.status = st;
	e.source = (char *)"ci/test";
	e.reporter = (char *)"spiffe://t/ci";
	e.observe_time = observe;
	e.expire_time = expire;
	e.create_time = create;
	e.uri = e.digest = e.note = (char *)"";
	return e;
}

#define P1 "model_creation.experiment_tracking"
#define P2 "people.regular_communication"

static void assert_same_score(const struct mat_score *a, const struct mat_score *b)
{
	assert_int_equal(a->overall_level, b->overall_level);
	assert_true(a->maturity_index == b->maturity_index);
	assert_true(a->progress_to_next_level == b->progress_to_next_level);
	assert_int_equal(a->satisfied_count, b->satisfied_count);
	assert_int_equal(a->total_count, b->total_count);
	assert_int_equal(a->n_dimensions, b->n_dimensions);
	for (size_t i = 0; i < a->n_dimensions; i++) {
		assert_int_equal(a->dimensions[i].level, b->dimensions[i].level);
		assert_int_equal(a->dimensions[i].satisfied_count,
		                 b->dimensions[i].satisfied_count);
	}
	assert_int_equal(a->n_blocking, b->n_blocking);
	assert_memory_equal(a->blocking, b->blocking, a->n_blocking);
}

/* ---- current evidence ---- */

static void test_current_none(void **state)
{
	struct mat_evidence e[1] = {ev("00000000-0000-7000-8000-000000000001", P2,
	                               MAT_STATUS_IMPLEMENTED, T0, T0 + 10 * SEC, T0)};
	(void)state;
	assert_null(mat_evidence_current(NULL, 0, P1, T0));
	assert_null(mat_evidence_current(e, 1, P1, T0)); /* another practice */
	assert_non_null(mat_evidence_current(e, 1, P2, T0));
}

static void test_current_expiry_boundary(void **state)
{
	struct mat_evidence e = ev("00000000-0000-7000-8000-000000000001", P1,
	                           MAT_STATUS_IMPLEMENTED, T0, T0 + 10 * SEC, T0);
	(void)state;
	assert_null(mat_evidence_current(&e, 1, P1, T0 - 1));      /* before observe */
	assert_ptr_equal(mat_evidence_current(&e, 1, P1, T0), &e); /* observe <= t */
	assert_ptr_equal(mat_evidence_current(&e, 1, P1, T0 + 10 * SEC - 1), &e);
	assert_null(mat_evidence_current(&e, 1, P1, T0 + 10 * SEC)); /* t < expire */
	assert_null(mat_evidence_current(&e, 1, P1, T0 + 11 * SEC));
}

static void test_current_latest_observation_wins(void **state)
{
	struct mat_evidence e[3] = {
	    ev("00000000-0000-7000-8000-000000000003", P1, MAT_STATUS_PARTIAL, T0, T0 + 100 * SEC,
	       T0 + 50 * SEC), /* recorded last, observed first */
	    ev("00000000-0000-7000-8000-000000000001", P1, MAT_STATUS_IMPLEMENTED, T0 + 5 * SEC,
	       T0 + 100 * SEC, T0),
	    ev("00000000-0000-7000-8000-000000000002", P1, MAT_STATUS_NOT_IMPLEMENTED,
	       T0 + 20 * SEC, T0 + 30 * SEC, T0),
	};
	(void)state;
	assert_ptr_equal(mat_evidence_current(e, 3, P1, T0 + 1 * SEC), &e[0]);
	assert_ptr_equal(mat_evidence_current(e, 3, P1, T0 + 10 * SEC), &e[1]);
	assert_ptr_equal(mat_evidence_current(e, 3, P1, T0 + 25 * SEC), &e[2]);
	/* The newest expired: the older one still in force is current again. */
	assert_ptr_equal(mat_evidence_current(e, 3, P1, T0 + 30 * SEC), &e[1]);
	assert_null(mat_evidence_current(e, 3, P1, T0 + 100 * SEC));
}

static void test_current_ties(void **state)
{
	/* Same observe_time: later create_time; then the greater id. */
	struct mat_evidence e[3] = {
	    ev("00000000-0000-7000-8000-00000000000a", P1, MAT_STATUS_PARTIAL, T0, T0 + SEC, T0),
	    ev("00000000-0000-7000-8000-000000000009", P1, MAT_STATUS_IMPLEMENTED, T0, T0 + SEC,
	       T0 + 1),
	    ev("00000000-0000-7000-8000-000000000008", P1, MAT_STATUS_NOT_IMPLEMENTED, T0, T0 + SEC,
	       T0 + 1),
	};
	struct mat_evidence r[3] = {e[2], e[1], e[0]};
	(void)state;
	assert_ptr_equal(mat_evidence_current(e, 3, P1, T0), &e[1]);
	assert_ptr_equal(mat_evidence_current(r, 3, P1, T0), &r[1]); /* any input order */
	e[2].create_time = T0;
	assert_ptr_equal(mat_evidence_current(e, 2, P1, T0), &e[1]);
	e[1].create_time = T0;
	assert_ptr_equal(mat_evidence_current(e, 2, P1, T0), &e[0]); /* ...a > ...9 */
}

/* ---- live statuses ---- */

static struct mat_answer answer(const char *pid, enum mat_status st, const char *note)
{
	struct mat_answer a = {0};
	a.practice_id = (char *)pid;
	a.status = st;
	a.note = (char *)(note != NULL ? note : "");
	a.evidence_uri = (char *)"";
	return a;
}

static void test_live_basis_and_fallbacks(void **state)
{
	const struct mat_model *m = mlops();
	struct mat_answer ans[2] = {answer(P1, MAT_STATUS_PARTIAL, NULL),
	                            answer(P2, MAT_STATUS_IMPLEMENTED, NULL)};
	struct mat_assessment a = {.model_id = (char *)"mlops-v1", .answers = ans, .n_answers = 2};
	struct mat_evidence e[1] = {ev("00000000-0000-7000-8000-000000000001", P1,
	                               MAT_STATUS_IMPLEMENTED, T0, T0 + 10 * SEC, T0)};
	struct mat_live live;
	int k1 = practice(P1), k2 = practice(P2);
	(void)state;

	/* Nothing at all: every practice NOT_IMPLEMENTED with basis NONE. */
	mat_live_compute(m, NULL, 0, NULL, T0, &live);
	assert_int_equal(live.n_practices, m->n_practices);
	for (size_t i = 0; i < m->n_practices; i++) {
		assert_int_equal(live.practices[i].status, MAT_STATUS_NOT_IMPLEMENTED);
		assert_int_equal(live.practices[i].basis, MAT_BASIS_NONE);
		assert_int_equal(live.practices[i].assessed_status, MAT_STATUS_UNSPECIFIED);
		assert_null(live.practices[i].evidence);
		assert_false(live.practices[i].drift);
	}
	assert_int_equal(live.score.overall_level, 0);
	assert_true(live.confidence == 0.0);

	/* Evidence first, then the assessment's answer, then NONE. */
	mat_live_compute(m, e, 1, &a, T0 + SEC, &live);
	assert_int_equal(live.practices[k1].status, MAT_STATUS_IMPLEMENTED);
	assert_int_equal(live.practices[k1].basis, MAT_BASIS_EVIDENCE);
	assert_ptr_equal(live.practices[k1].evidence, &e[0]);
	assert_int_equal(live.practices[k1].assessed_status, MAT_STATUS_PARTIAL);
	assert_int_equal(live.practices[k2].status, MAT_STATUS_IMPLEMENTED);
	assert_int_equal(live.practices[k2].basis, MAT_BASIS_ASSESSMENT);
	assert_null(live.practices[k2].evidence);
	for (size_t i = 0; i < m->n_practices; i++) {
		if ((int)i == k1 || (int)i == k2)
			continue;
		assert_int_equal(live.practices[i].basis, MAT_BASIS_NONE); /* left unanswered */
	}

	/* Expired evidence: the assessment's answer again. */
	mat_live_compute(m, e, 1, &a, T0 + 10 * SEC, &live);
	assert_int_equal(live.practices[k1].status, MAT_STATUS_PARTIAL);
	assert_int_equal(live.practices[k1].basis, MAT_BASIS_ASSESSMENT);
	assert_null(live.practices[k1].evidence);
}

static void test_live_drift(void **state)
{
	const struct mat_model *m = mlops();
	struct mat_answer ans[2] = {answer(P1, MAT_STATUS_IMPLEMENTED, NULL),
	                            answer(P2, MAT_STATUS_IMPLEMENTED, NULL)};
	struct mat_assessment a = {.model_id = (char *)"mlops-v1", .answers = ans, .n_answers = 2};
	struct mat_evidence e[1] = {ev("00000000-0000-7000-8000-000000000001", P1,
	                               MAT_STATUS_PARTIAL, T0, T0 + 10 * SEC, T0)};
	struct mat_live live;
	int k1 = practice(P1), k2 = practice(P2);
	(void)state;

	mat_live_compute(m, e, 1, &a, T0, &live);
	assert_true(live.practices[k1].drift);  /* claimed IMPLEMENTED, observed PARTIAL */
	assert_false(live.practices[k2].drift); /* no observation: nothing contradicts */
	e[0].status = MAT_STATUS_IMPLEMENTED;
	mat_live_compute(m, e, 1, &a, T0, &live);
	assert_false(live.practices[k1].drift);
	/* Observed worse than a claim that was not IMPLEMENTED: no drift. */
	ans[0].status = MAT_STATUS_PARTIAL;
	e[0].status = MAT_STATUS_NOT_IMPLEMENTED;
	mat_live_compute(m, e, 1, &a, T0, &live);
	assert_false(live.practices[k1].drift);
	/* Observed better than claimed: no drift either. */
	e[0].status = MAT_STATUS_IMPLEMENTED;
	mat_live_compute(m, e, 1, &a, T0, &live);
	assert_false(live.practices[k1].drift);
}

static void test_live_confidence_and_not_applicable(void **state)
{
	const struct mat_model *m = mlops();
	struct mat_answer ans[3] = {
	    answer(P1, MAT_STATUS_IMPLEMENTED, NULL),
	    answer(P2, MAT_STATUS_NOT_APPLICABLE, "no people"),
	    answer("model_creation.automated_data_pipeline", MAT_STATUS_IMPLEMENTED, NULL)};
	struct mat_assessment a = {.model_id = (char *)"mlops-v1", .answers = ans, .n_answers = 3};
	struct mat_evidence e[2] = {
	    ev("00000000-0000-7000-8000-000000000001", P1, MAT_STATUS_IMPLEMENTED, T0,
	       T0 + 10 * SEC, T0),
	    ev("00000000-0000-7000-8000-000000000002", "model_release.versioned_scoring_scripts",
	       MAT_STATUS_PARTIAL, T0, T0 + 10 * SEC, T0),
	};
	enum mat_status status[MAT_MAX_PRACTICES] = {MAT_STATUS_UNSPECIFIED};
	struct mat_score want;
	struct mat_live live;
	int k2 = practice(P2);
	(void)state;

	mat_live_compute(m, e, 2, &a, T0, &live);
	/* NOT_APPLICABLE from the assessment stays satisfied in the live score. */
	assert_int_equal(live.practices[k2].status, MAT_STATUS_NOT_APPLICABLE);
	assert_int_equal(live.practices[k2].basis, MAT_BASIS_ASSESSMENT);
	assert_int_equal(live.score.satisfied_count, 3);
	/* Satisfied: P1 (evidence), P2 (N/A), the pipeline (assessment); PARTIAL counts not. */
	assert_true(live.confidence > 0.3333 && live.confidence < 0.3334);
	/* The score is the engine's on the live statuses. */
	for (size_t i = 0; i < m->n_practices; i++)
		status[i] = live.practices[i].status;
	mat_score_compute(m, status, &want);
	assert_same_score(&want, &live.score);

	/* Only evidence satisfies: confidence 1. */
	mat_live_compute(m, e, 1, NULL, T0, &live);
	assert_true(live.confidence == 1.0);
	/* Nothing satisfied: 0, not a division by zero. */
	e[0].status = MAT_STATUS_PARTIAL;
	mat_live_compute(m, e, 2, NULL, T0, &live);
	assert_true(live.confidence == 0.0);
}

static void test_live_ignores_unknown_practices(void **state)
{
	struct mat_evidence e[1] = {ev("00000000-0000-7000-8000-000000000001", "no.such",
	                               MAT_STATUS_IMPLEMENTED, T0, T0 + 10 * SEC, T0)};
	struct mat_live live;
	(void)state;
	mat_live_compute(mlops(), e, 1, NULL, T0, &live);
	for (size_t i = 0; i < live.n_practices; i++)
		assert_int_equal(live.practices[i].basis, MAT_BASIS_NONE);
}

/* ---- prefill note ---- */

static void test_prefill_note_and_time(void **state)
{
	struct mat_evidence e =
	    ev("0190a0b0-0000-7000-8000-000000000001", P1, MAT_STATUS_IMPLEMENTED,
	       T0 + 3723 * SEC + 999999, T0 + 86400 * SEC, T0);
	char t[MAT_RFC3339_LEN];
	char *note;
	(void)state;

	mat_time_rfc3339(T0, t);
	assert_string_equal(t, "2026-01-01T00:00:00Z");
	mat_time_rfc3339(-1, t); /* floored, not rounded towards zero */
	assert_string_equal(t, "1969-12-31T23:59:59Z");
	e.source = (char *)"mlflow/registry";
	note = mat_evidence_prefill_note(&e);
	assert_non_null(note);
	assert_string_equal(note, "evidence organizations/acme/evidence/"
	                          "0190a0b0-0000-7000-8000-000000000001 from mlflow/registry, "
	                          "observed 2026-01-01T01:02:03Z");
	free(note);
}

/* ---- property: random histories against a naive implementation ---- */

static uint64_t rng_state = 0x9e3779b97f4a7c15ULL;
static uint64_t rnd(void)
{
	rng_state ^= rng_state << 13;
	rng_state ^= rng_state >> 7;
	rng_state ^= rng_state << 17;
	return rng_state;
}

/* The rule as written: keep the pieces of the practice with observe <= t < expire, sort them by
 * (observe_time, create_time, id) descending, take the first. */
static int naive_cmp(const void *a_, const void *b_)
{
	const struct mat_evidence *a = *(const struct mat_evidence *const *)a_;
	const struct mat_evidence *b = *(const struct mat_evidence *const *)b_;
	if (a->observe_time != b->observe_time)
		return a->observe_time > b->observe_time ? -1 : 1;
	if (a->create_time != b->create_time)
		return a->create_time > b->create_time ? -1 : 1;
	return -strcmp(a->id, b->id);
}

static const struct mat_evidence *naive_current(const struct mat_evidence *ev_, size_t n,
                                                const char *pid, mat_time_us t)
{
	const struct mat_evidence *keep[256];
	size_t k = 0;
	for (size_t i = 0; i < n; i++)
		if (strcmp(ev_[i].practice_id, pid) == 0 && ev_[i].observe_time <= t &&
		    t < ev_[i].expire_time)
			keep[k++] = &ev_[i];
	if (k == 0)
		return NULL;
	qsort(keep, k, sizeof(keep[0]), naive_cmp);
	return keep[0];
}

static void test_live_property_random_histories(void **state)
{
	const struct mat_model *m = mlops();
	static char ids[256][40];
	(void)state;

	for (int round = 0; round < 2000; round++) {
		struct mat_evidence e[256];
		struct mat_answer ans[MAT_MAX_PRACTICES];
		struct mat_assessment a = {.model_id = (char *)"mlops-v1", .answers = ans};
		size_t n = rnd() % 120;
		/* Few practices and coarse times, so ties and boundaries are common. */
		size_t n_pr = 1 + rnd() % 4;
		mat_time_us t = T0 + (mat_time_us)(rnd() % 20) * SEC;
		enum mat_status status[MAT_MAX_PRACTICES];
		int satisfied = 0, by_evidence = 0;
		bool with_assessment = rnd() % 3 != 0;
		struct mat_score want;
		struct mat_live live;

		for (size_t i = 0; i < n; i++) {
			mat_time_us obs = T0 + (mat_time_us)(rnd() % 20) * SEC;
			/* Unique ids whose order is random: ties on the id never happen. */
			snprintf(ids[i], sizeof(ids[i]), "00000000-0000-7000-8%03llx-%012zx",
			         (unsigned long long)(rnd() % 16), i);
			e[i] = ev(ids[i], m->practices[rnd() % n_pr].id,
			          (enum mat_status)(1 + rnd() % 3), obs,
			          obs + (mat_time_us)(1 + rnd() % 10) * SEC,
			          T0 + (mat_time_us)(rnd() % 4) * SEC);
		}
		for (size_t i = 0; with_assessment && i < m->n_practices; i++) {
			if (rnd() % 2)
				continue;
			ans[a.n_answers] =
			    answer(m->practices[i].id, (enum mat_status)(1 + rnd() % 4), "why");
			a.n_answers++;
		}
		mat_live_compute(m, e, n, with_assessment ? &a : NULL, t, &live);

		for (size_t i = 0; i < m->n_practices; i++) {
			const char *pid = m->practices[i].id;
			const struct mat_evidence *cur = naive_current(e, n, pid, t);
			enum mat_status assessed = MAT_STATUS_UNSPECIFIED;
			const struct mat_live_practice *p = &live.practices[i];

			for (size_t j = 0; j < a.n_answers && with_assessment; j++)
				if (strcmp(ans[j].practice_id, pid) == 0)
					assessed = ans[j].status;
			assert_ptr_equal(mat_evidence_current(e, n, pid, t), cur);
			assert_ptr_equal(p->evidence, cur);
			assert_int_equal(p->assessed_status, assessed);
			if (cur != NULL) {
				assert_int_equal(p->basis, MAT_BASIS_EVIDENCE);
				assert_int_equal(p->status, cur->status);
			} else if (assessed != MAT_STATUS_UNSPECIFIED) {
				assert_int_equal(p->basis, MAT_BASIS_ASSESSMENT);
				assert_int_equal(p->status, assessed);
			} else {
				assert_int_equal(p->basis, MAT_BASIS_NONE);
				assert_int_equal(p->status, MAT_STATUS_NOT_IMPLEMENTED);
			}
			assert_int_equal(p->drift, assessed == MAT_STATUS_IMPLEMENTED &&
			                               cur != NULL &&
			                               cur->status != MAT_STATUS_IMPLEMENTED);
			status[i] = p->status;
			if (p->status == MAT_STATUS_IMPLEMENTED ||
			    p->status == MAT_STATUS_NOT_APPLICABLE) {
				satisfied++;
				by_evidence += cur != NULL;
			}
		}
		mat_score_compute(m, status, &want);
		assert_same_score(&want, &live.score);
		assert_true(live.confidence ==
		            (satisfied ? (double)by_evidence / (double)satisfied : 0.0));
	}
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_current_none),
	    cmocka_unit_test(test_current_expiry_boundary),
	    cmocka_unit_test(test_current_latest_observation_wins),
	    cmocka_unit_test(test_current_ties),
	    cmocka_unit_test(test_live_basis_and_fallbacks),
	    cmocka_unit_test(test_live_drift),
	    cmocka_unit_test(test_live_confidence_and_not_applicable),
	    cmocka_unit_test(test_live_ignores_unknown_practices),
	    cmocka_unit_test(test_prefill_note_and_time),
	    cmocka_unit_test(test_live_property_random_histories),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
