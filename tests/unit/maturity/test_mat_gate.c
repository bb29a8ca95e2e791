/* Unit tests of mat_gate.c: validation names the offending field for every kind of bad input;
 * evaluation reports each kind of unmet requirement at its boundary, in requirement order, judged
 * on the reviewed state or on the live one, and treats evidence exactly max_evidence_age old as
 * fresh. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <stdio.h>
#include <string.h>

#include "mat_gate.h"
#include "mat_model.h"
#include "mat_score.h"

#define N_OF(a) (sizeof(a) / sizeof((a)[0]))
#define SEC INT64_C(1000000)
#define NOW (INT64_C(1780000000) * SEC)

static const struct mat_model *mlops(void)
{
	const struct mat_model *m = mat_model_find("mlops-v1");
	assert_non_null(m);
	return m;
}

static int idx(const char *id)
{
	int i = mat_model_practice_index(mlops(), id, strlen(id));
	assert_true(i >= 0);
	return i;
}

/* Statuses where every practice up to `level` is implemented (overall level = `level`). */
static void up_to(enum mat_status *st, int level)
{
	const struct mat_model *m = mlops();
	for (size_t i = 0; i < m->n_practices; i++)
		st[i] = m->practices[i].level <= level ? MAT_STATUS_IMPLEMENTED
		                                       : MAT_STATUS_NOT_IMPLEMENTED;
}

/* One test fixture: reviewed and live states, each scored. */
struct state {
	enum mat_status assessed_status[MAT_MAX_PRACTICES];
	enum mat_status live_status[MAT_MAX_PRACTICES];
	struct mat_score assessed, live;
	mat_time_us observe[MAT_GATE_MAX_PRACTICES];
	struct mat_gate_inputs in;
};

static void state_init(struct state *s, int reviewed_level, int assessed_level, int live_level)
{
	memset(s, 0, sizeof(*s));
	up_to(s->assessed_status, assessed_level);
	up_to(s->live_status, live_level);
	s->in.reviewed_level = reviewed_level;
	s->in.now = NOW;
	s->in.evidence_observe_time = s->observe;
}

static void state_score(struct state *s)
{
	mat_score_compute(mlops(), s->assessed_status, &s->assessed);
	mat_score_compute(mlops(), s->live_status, &s->live);
	s->in.assessed = &s->assessed;
	s->in.assessed_status = s->assessed_status;
	s->in.live = &s->live;
	s->in.live_status = s->live_status;
}

static void evaluate(const struct mat_gate_requirement *r, struct state *s,
                     struct mat_gate_result *out)
{
	struct mat_error err;

	mat_error_clear(&err);
	assert_true(mat_gate_validate(mlops(), r, NULL, 0, &err));
	state_score(s);
	mat_gate_evaluate(mlops(), r, &s->in, out);
	assert_int_equal(out->allowed, out->n_unmet == 0);
}

/* --- validation -------------------------------------------------------------------------- */

static void expect_violations(const struct mat_gate_requirement *r,
                              const struct mat_gate_subject *subj, size_t n_subj,
                              const char *const *fields, size_t n_fields)
{
	struct mat_error err;

	mat_error_clear(&err);
	assert_false(mat_gate_validate(mlops(), r, subj, n_subj, &err));
	assert_int_equal(err.code, MAT_INVALID);
	assert_int_equal(err.n_violations, n_fields);
	for (size_t i = 0; i < n_fields; i++)
		assert_string_equal(err.violations[i].field, fields[i]);
}

static void test_valid_request(void **state)
{
	(void)state;
	struct mat_gate_dimension_level dl[] = {{"people", 0}, {"model_creation", 4}};
	const char *prs[] = {"people.regular_communication", "model_creation.experiment_tracking"};
	struct mat_gate_digest dg[] = {{"sha256", "0123456789abcdef"}, {"sha512", "ff"}};
	struct mat_gate_subject subj[] = {{"registry.example/app", dg, 2}, {"x", NULL, 0}};
	struct mat_gate_requirement r = {.min_level = 4,
	                                 .min_dimension_levels = dl,
	                                 .n_min_dimension_levels = 2,
	                                 .required_practice_ids = prs,
	                                 .n_required_practice_ids = 2,
	                                 .has_max_evidence_age = true,
	                                 .max_evidence_age_nanos = 1};
	struct mat_error err;

	mat_error_clear(&err);
	assert_true(mat_gate_validate(mlops(), &r, subj, 2, &err));
	assert_int_equal(err.code, MAT_OK);
	/* The empty requirement is valid too (it always allows). */
	struct mat_gate_requirement empty = {0};
	assert_true(mat_gate_validate(mlops(), &empty, NULL, 0, &err));
}

static void test_invalid_levels_and_ids(void **state)
{
	(void)state;
	struct mat_gate_dimension_level dl[] = {
	    {"people", 5}, {"nope", 1}, {"model_release", -1}, {"model_creation", 0}};
	const char *prs[] = {"people.regular_communication", "", "people.nope"};
	struct mat_gate_requirement r = {.min_level = -1,
	                                 .min_dimension_levels = dl,
	                                 .n_min_dimension_levels = 4,
	                                 .required_practice_ids = prs,
	                                 .n_required_practice_ids = 3};
	const char *fields[] = {"requirement.min_level",
	                        "requirement.min_dimension_levels[people]",
	                        "requirement.min_dimension_levels[nope]",
	                        "requirement.min_dimension_levels[model_release]",
	                        "requirement.required_practice_ids[1]",
	                        "requirement.required_practice_ids[2]"};

	expect_violations(&r, NULL, 0, fields, N_OF(fields));
	r = (struct mat_gate_requirement){.min_level = 5};
	expect_violations(&r, NULL, 0, fields, 1);
}

static void test_invalid_max_evidence_age(void **state)
{
	(void)state;
	const char *f[] = {"requirement.max_evidence_age"};
	struct mat_gate_requirement r = {.has_max_evidence_age = true};

	expect_violations(&r, NULL, 0, f, 1); /* zero */
	r.max_evidence_age_seconds = -1;
	expect_violations(&r, NULL, 0, f, 1);
	r.max_evidence_age_seconds = 0;
	r.max_evidence_age_nanos = -1;
	expect_violations(&r, NULL, 0, f, 1);
	r.max_evidence_age_seconds = 1;
	r.max_evidence_age_nanos = -1; /* mixed signs: not a Duration */
	expect_violations(&r, NULL, 0, f, 1);
	r.max_evidence_age_seconds = INT64_C(315576000001);
	r.max_evidence_age_nanos = 0;
	expect_violations(&r, NULL, 0, f, 1);
	r.max_evidence_age_seconds = INT64_C(315576000000);
	struct mat_error err;
	mat_error_clear(&err);
	assert_true(mat_gate_validate(mlops(), &r, NULL, 0, &err));
	/* Unset: any value is ignored. */
	r = (struct mat_gate_requirement){.max_evidence_age_seconds = -5};
	assert_true(mat_gate_validate(mlops(), &r, NULL, 0, &err));
}

static void test_invalid_counts(void **state)
{
	(void)state;
	const char *prs[MAT_GATE_MAX_PRACTICES + 1];
	struct mat_gate_subject subj[MAT_GATE_MAX_SUBJECTS + 1];
	struct mat_gate_requirement r = {.required_practice_ids = prs};
	struct mat_error err;

	for (size_t i = 0; i < N_OF(prs); i++)
		prs[i] = "people.regular_communication";
	for (size_t i = 0; i < N_OF(subj); i++)
		subj[i] = (struct mat_gate_subject){.name = "a"};
	/* 64 of each is the limit. */
	r.n_required_practice_ids = MAT_GATE_MAX_PRACTICES;
	mat_error_clear(&err);
	assert_true(mat_gate_validate(mlops(), &r, subj, MAT_GATE_MAX_SUBJECTS, &err));
	r.n_required_practice_ids = MAT_GATE_MAX_PRACTICES + 1;
	const char *f[] = {"requirement.required_practice_ids", "subjects"};
	expect_violations(&r, subj, MAT_GATE_MAX_SUBJECTS + 1, f, 2);
}

static void test_invalid_subjects(void **state)
{
	(void)state;
	struct mat_gate_digest good[] = {{"sha256", "abc123"}};
	struct mat_gate_digest bad[] = {
	    {"sha256", "ABC123"}, {"sha1", ""}, {"", "00"}, {"sha512", "0g"}, {"md5", "a b"}};
	struct mat_gate_subject subj[] = {
	    {"ok", good, 1}, {"", good, 1}, {"img", bad, N_OF(bad)}, {NULL, NULL, 0}};
	struct mat_gate_requirement r = {0};
	const char *fields[] = {
	    "subjects[1].name",     "subjects[2].digest[sha256]", "subjects[2].digest[sha1]",
	    "subjects[2].digest[]", "subjects[2].digest[sha512]", "subjects[2].digest[md5]",
	    "subjects[3].name"};

	expect_violations(&r, subj, N_OF(subj), fields, N_OF(fields));
}

/* --- evaluation -------------------------------------------------------------------------- */

static void test_empty_requirement_allows(void **state)
{
	(void)state;
	struct state s;
	struct mat_gate_result res;
	struct mat_gate_requirement r = {0};

	state_init(&s, 0, 0, 0);
	evaluate(&r, &s, &res);
	assert_true(res.allowed);
	assert_int_equal(res.level, 0);
	assert_ptr_equal(res.score, &s.assessed);
}

static void test_min_level_boundary(void **state)
{
	(void)state;
	struct state s;
	struct mat_gate_result res;
	struct mat_gate_requirement r = {.min_level = 2};

	/* The reviewed level counts, not the assessment's score (which is higher here). */
	state_init(&s, 2, 4, 4);
	evaluate(&r, &s, &res);
	assert_true(res.allowed);
	assert_int_equal(res.level, 2);

	r.min_level = 3;
	evaluate(&r, &s, &res);
	assert_false(res.allowed);
	assert_int_equal(res.n_unmet, 1);
	assert_int_equal(res.unmet[0].kind, MAT_GATE_MIN_LEVEL);
	assert_string_equal(res.unmet[0].field, "requirement.min_level");
	assert_string_equal(res.unmet[0].message, "the reviewed level is 2, below the required 3");
	assert_int_equal(res.unmet[0].required_level, 3);
	assert_int_equal(res.unmet[0].actual_level, 2);
	assert_null(res.unmet[0].dimension_id);
	assert_null(res.unmet[0].practice_id);
}

static void test_dimension_boundary_and_order(void **state)
{
	(void)state;
	struct state s;
	struct mat_gate_result res;
	/* Request order is not the model's; the result follows the model (people,
	 * model_creation, model_release, application_integration). With every practice up to
	 * level 2 implemented, model_creation (no level-3 practice) is at 3, the others at 2. */
	struct mat_gate_dimension_level dl[] = {
	    {"application_integration", 2}, {"model_creation", 4}, {"people", 2}};
	struct mat_gate_requirement r = {.min_dimension_levels = dl, .n_min_dimension_levels = 3};

	state_init(&s, 0, 2, 0);
	evaluate(&r, &s, &res);
	assert_int_equal(res.n_unmet, 1);
	assert_string_equal(res.unmet[0].field, "requirement.min_dimension_levels[model_creation]");
	assert_string_equal(res.unmet[0].dimension_id, "model_creation");
	assert_int_equal(res.unmet[0].required_level, 4);
	assert_int_equal(res.unmet[0].actual_level, 3);
	assert_string_equal(res.unmet[0].message,
	                    "dimension model_creation is at level 3, below the required 4");

	dl[1].level = 3; /* exactly the level: met */
	evaluate(&r, &s, &res);
	assert_true(res.allowed);

	/* Up to level 1: people, model_creation at 1, application_integration (no level-2
	 * practice) at 2. */
	dl[0].level = 3;
	dl[1].level = 2;
	state_init(&s, 0, 1, 0);
	evaluate(&r, &s, &res);
	assert_int_equal(res.n_unmet, 3);
	assert_string_equal(res.unmet[0].dimension_id, "people");
	assert_string_equal(res.unmet[1].dimension_id, "model_creation");
	assert_string_equal(res.unmet[2].dimension_id, "application_integration");
	assert_int_equal(res.unmet[2].actual_level, 2);

	/* A dimension named twice: the last entry counts. */
	struct mat_gate_dimension_level twice[] = {{"people", 4}, {"people", 1}};
	r = (struct mat_gate_requirement){.min_dimension_levels = twice,
	                                  .n_min_dimension_levels = 2};
	evaluate(&r, &s, &res);
	assert_true(res.allowed);
}

static void test_practices(void **state)
{
	(void)state;
	struct state s;
	struct mat_gate_result res;
	const char *prs[] = {"model_creation.experiment_tracking", "people.regular_communication",
	                     "people.post_deployment_metrics", "people.ds_de_repeatable_jobs"};
	struct mat_gate_requirement r = {.required_practice_ids = prs,
	                                 .n_required_practice_ids = 4};

	state_init(&s, 0, 1, 0);
	s.assessed_status[idx("people.post_deployment_metrics")] = MAT_STATUS_NOT_APPLICABLE;
	s.assessed_status[idx("people.ds_de_repeatable_jobs")] = MAT_STATUS_PARTIAL;
	evaluate(&r, &s, &res);
	assert_int_equal(res.n_unmet, 2);
	assert_int_equal(res.unmet[0].kind, MAT_GATE_PRACTICE);
	assert_string_equal(res.unmet[0].field, "requirement.required_practice_ids[0]");
	assert_string_equal(res.unmet[0].practice_id, "model_creation.experiment_tracking");
	assert_string_equal(res.unmet[0].message,
	                    "practice model_creation.experiment_tracking is not implemented "
	                    "(reviewed)");
	assert_int_equal(res.unmet[0].required_level, 0);
	assert_string_equal(res.unmet[1].field, "requirement.required_practice_ids[3]");
	assert_string_equal(res.unmet[1].message,
	                    "practice people.ds_de_repeatable_jobs is partial (reviewed)");

	s.assessed_status[idx("model_creation.experiment_tracking")] = MAT_STATUS_UNSPECIFIED;
	s.assessed_status[idx("people.ds_de_repeatable_jobs")] = MAT_STATUS_IMPLEMENTED;
	evaluate(&r, &s, &res);
	assert_int_equal(res.n_unmet, 1);
	assert_string_equal(res.unmet[0].message,
	                    "practice model_creation.experiment_tracking is not answered "
	                    "(reviewed)");
}

static void test_live_versus_reviewed(void **state)
{
	(void)state;
	struct state s;
	struct mat_gate_result res;
	struct mat_gate_dimension_level dl[] = {{"model_release", 3}};
	const char *prs[] = {"people.post_deployment_metrics"};
	struct mat_gate_requirement r = {.min_level = 3,
	                                 .min_dimension_levels = dl,
	                                 .n_min_dimension_levels = 1,
	                                 .required_practice_ids = prs,
	                                 .n_required_practice_ids = 1};

	/* Reviewed 1, assessment at 2; live at 3 with the practice at level 4 done live. */
	state_init(&s, 1, 2, 3);
	s.live_status[idx("people.post_deployment_metrics")] = MAT_STATUS_IMPLEMENTED;
	evaluate(&r, &s, &res);
	assert_int_equal(res.level, 1);
	assert_ptr_equal(res.score, &s.assessed);
	assert_int_equal(res.n_unmet, 3);
	assert_string_equal(res.unmet[0].field, "requirement.min_level");
	assert_int_equal(res.unmet[0].actual_level, 1);
	assert_string_equal(res.unmet[1].field, "requirement.min_dimension_levels[model_release]");
	assert_int_equal(res.unmet[1].actual_level, 2);
	assert_string_equal(res.unmet[2].field, "requirement.required_practice_ids[0]");

	r.live = true;
	evaluate(&r, &s, &res);
	assert_true(res.allowed);
	assert_int_equal(res.level, 3);
	assert_ptr_equal(res.score, &s.live);

	/* Live lower than reviewed: live is judged. */
	state_init(&s, 4, 4, 2);
	evaluate(&r, &s, &res);
	assert_int_equal(res.level, 2);
	assert_int_equal(res.n_unmet, 3);
	assert_string_equal(res.unmet[0].message, "the live level is 2, below the required 3");
	assert_string_equal(res.unmet[2].message,
	                    "practice people.post_deployment_metrics is not implemented (live)");
}

static void test_max_evidence_age(void **state)
{
	(void)state;
	struct state s;
	struct mat_gate_result res;
	const char *prs[] = {"people.regular_communication", "model_creation.experiment_tracking",
	                     "people.ds_de_repeatable_jobs"};
	struct mat_gate_requirement r = {.required_practice_ids = prs,
	                                 .n_required_practice_ids = 3,
	                                 .has_max_evidence_age = true,
	                                 .max_evidence_age_seconds = 3600,
	                                 .max_evidence_age_nanos = 500000000};
	const int64_t age = 3600 * SEC + 500000;

	state_init(&s, 4, 4, 4);
	s.observe[0] = NOW - age;     /* exactly the age: fresh */
	s.observe[1] = NOW - age - 1; /* one microsecond older: stale */
	s.observe[2] = 0;             /* no current evidence */
	evaluate(&r, &s, &res);
	assert_int_equal(res.n_unmet, 2);
	assert_int_equal(res.unmet[0].kind, MAT_GATE_EVIDENCE_AGE);
	assert_string_equal(res.unmet[0].field, "requirement.max_evidence_age");
	assert_string_equal(res.unmet[0].practice_id, "model_creation.experiment_tracking");
	assert_string_equal(res.unmet[0].message,
	                    "the current evidence of practice model_creation.experiment_tracking "
	                    "was observed 3600 s ago, longer than the allowed age");
	assert_string_equal(res.unmet[1].practice_id, "people.ds_de_repeatable_jobs");
	assert_string_equal(res.unmet[1].message,
	                    "practice people.ds_de_repeatable_jobs has no current evidence");
	assert_int_equal(res.unmet[1].required_level, 0);

	/* Regardless of `live`. */
	r.live = true;
	evaluate(&r, &s, &res);
	assert_int_equal(res.n_unmet, 2);
	s.observe[1] = NOW;
	s.observe[2] = NOW - 1;
	evaluate(&r, &s, &res);
	assert_true(res.allowed);

	/* Without max_evidence_age the times are not read. */
	r.has_max_evidence_age = false;
	s.in.evidence_observe_time = NULL;
	evaluate(&r, &s, &res);
	assert_true(res.allowed);
}

static void test_requirement_order(void **state)
{
	(void)state;
	struct state s;
	struct mat_gate_result res;
	struct mat_gate_dimension_level dl[] = {{"people", 4}, {"application_integration", 4}};
	const char *prs[] = {"people.post_deployment_metrics", "people.regular_communication"};
	struct mat_gate_requirement r = {.min_level = 4,
	                                 .min_dimension_levels = dl,
	                                 .n_min_dimension_levels = 2,
	                                 .required_practice_ids = prs,
	                                 .n_required_practice_ids = 2,
	                                 .has_max_evidence_age = true,
	                                 .max_evidence_age_seconds = 60};
	const char *fields[] = {"requirement.min_level",
	                        "requirement.min_dimension_levels[people]",
	                        "requirement.min_dimension_levels[application_integration]",
	                        "requirement.required_practice_ids[0]",
	                        "requirement.max_evidence_age",
	                        "requirement.max_evidence_age"};

	state_init(&s, 3, 3, 3);
	evaluate(&r, &s, &res);
	assert_int_equal(res.n_unmet, N_OF(fields));
	for (size_t i = 0; i < N_OF(fields); i++)
		assert_string_equal(res.unmet[i].field, fields[i]);
	assert_string_equal(res.unmet[4].practice_id, "people.post_deployment_metrics");
	assert_string_equal(res.unmet[5].practice_id, "people.regular_communication");
}

/* The largest request fills every slot of the result without overflowing it. */
static void test_unmet_capacity(void **state)
{
	(void)state;
	struct state s;
	struct mat_gate_result res;
	const char *prs[MAT_GATE_MAX_PRACTICES];
	struct mat_gate_dimension_level dl[MAT_MAX_DIMENSIONS];
	const struct mat_model *m = mlops();
	struct mat_gate_requirement r = {.min_level = 4,
	                                 .min_dimension_levels = dl,
	                                 .n_min_dimension_levels = m->n_dimensions,
	                                 .required_practice_ids = prs,
	                                 .n_required_practice_ids = N_OF(prs),
	                                 .has_max_evidence_age = true,
	                                 .max_evidence_age_seconds = 1};

	for (size_t d = 0; d < m->n_dimensions; d++)
		dl[d] = (struct mat_gate_dimension_level){m->dimensions[d].id, 4};
	for (size_t i = 0; i < N_OF(prs); i++)
		prs[i] = m->practices[i % m->n_practices].id;
	state_init(&s, 0, 0, 0);
	evaluate(&r, &s, &res);
	assert_int_equal(res.n_unmet, 1 + m->n_dimensions + 2 * N_OF(prs));
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_valid_request),
	    cmocka_unit_test(test_invalid_levels_and_ids),
	    cmocka_unit_test(test_invalid_max_evidence_age),
	    cmocka_unit_test(test_invalid_counts),
	    cmocka_unit_test(test_invalid_subjects),
	    cmocka_unit_test(test_empty_requirement_allows),
	    cmocka_unit_test(test_min_level_boundary),
	    cmocka_unit_test(test_dimension_boundary_and_order),
	    cmocka_unit_test(test_practices),
	    cmocka_unit_test(test_live_versus_reviewed),
	    cmocka_unit_test(test_max_evidence_age),
	    cmocka_unit_test(test_requirement_order),
	    cmocka_unit_test(test_unmet_capacity),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
