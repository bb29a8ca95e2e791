/* Unit tests of mat_catalog.c: the built-in mlops-v1 model against docs/model.md and its source
 * document (levels, highlights, dimensions, the 30 practices in catalog order) and the practice id
 * lookup. The expected data is written out here on purpose: a copy made independently of the
 * catalog. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <stdlib.h>
#include <string.h>

#include "mat_model.h"
#include "mat_types.h"
#include "mat_validate.h"

static const struct mat_model *mlops(void)
{
	const struct mat_model *m = mat_model_find("mlops-v1");
	assert_non_null(m);
	return m;
}

/* ---- models ---- */

static void test_mat_model_all_lists_mlops_v1(void **state)
{
	size_t n = 0;
	const struct mat_model *const *all = mat_model_all(&n);

	assert_non_null(all);
	assert_int_equal(n, 1);
	assert_string_equal(all[0]->id, "mlops-v1");
	assert_string_equal(all[0]->display_name, "MLOps maturity model (v1)");
	assert_ptr_equal(all[0], mlops());
	/* NULL count pointer is tolerated. */
	assert_ptr_equal(mat_model_all(NULL), all);
}

static void test_mat_model_find_id_or_name(void **state)
{
	static const struct {
		const char *query;
		bool found;
	} cases[] = {
	    {"mlops-v1", true},
	    {"models/mlops-v1", true},
	    {"", false},
	    {"models/", false},
	    {"mlops-v2", false},
	    {"MLOPS-V1", false},
	    {"mlops-v1 ", false},
	    {"models/models/mlops-v1", false},
	    {"model/mlops-v1", false},
	    {"mlops", false},
	};

	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		const struct mat_model *m = mat_model_find(cases[i].query);
		if (cases[i].found)
			assert_ptr_equal(m, mlops());
		else
			assert_null(m);
	}
	assert_null(mat_model_find(NULL));
}

/* ---- levels ---- */

struct expected_level {
	const char *name;
	const char *list[2][5]; /* challenges or benefits, then technology; NULL-terminated */
};

static const struct expected_level expected_levels[MAT_LEVEL_COUNT] = {
    {"No MLOps",
     {{"Difficult to manage the full machine learning model lifecycle.",
       "Teams are disparate and releases are painful.",
       "Most systems exist as \"black boxes,\" providing little feedback during/post-deployment.",
       NULL},
      {"Manual builds and deployments.", "Manual testing of models and applications.",
       "No centralized tracking of model performance.", "Training of models is manual.", NULL}}},
    {"DevOps but no MLOps",
     {{"Releases are less painful but rely heavily on the Data Team for every new model.",
       "Limited feedback on model performance in production.",
       "Difficult to trace and reproduce results.", NULL},
      {"Automated builds for software components.",
       "Automated tests for application code (unit tests, integration tests).",
       "Continuous Integration/Continuous Deployment (CI/CD) pipelines.",
       "Basic operational metrics (e.g., request counts, latency).", NULL}}},
    {"Automated Training",
     {{"Training environment is fully managed and traceable.", "Easy to reproduce models.",
       "Releases are manual but with low friction.", NULL},
      {"Automated model training scripts or pipelines.",
       "Centralized tracking of model training performance and experiment tracking.",
       "Model management tools to handle different model versions.", NULL}}},
    {"Automated Model Deployment",
     {{"Releases are low friction and automated.",
       "Full traceability from deployment back to the original data.",
       "The entire environment is managed, from training to testing to production.", NULL},
      {"Integrated A/B testing of model performance for deployment decisions.",
       "Automated tests for all code, including model and data pipeline code.",
       "Centralized tracking of model training performance.",
       "Model deployment platforms that support automated and scalable model serving.", NULL}}},
    {"Full MLOps Automated Operations",
     {{"The full system is automated and easily monitored.",
       "Production systems provide feedback for continuous improvement.",
       "Approaching a zero-downtime system.", NULL},
      {"Automated model training, testing, and deployment pipelines.",
       "Verbose, centralized metrics and monitoring for deployed models.",
       "Automated feedback loops and model retraining based on performance degradation.",
       "Model registry integrated with deployment and monitoring systems.", NULL}}},
};

static void assert_bullets(const char *const *got, size_t n_got, const char *const *want)
{
	size_t n_want = 0;

	while (want[n_want] != NULL)
		n_want++;
	assert_int_equal(n_got, n_want);
	assert_non_null(got);
	for (size_t i = 0; i < n_want; i++)
		assert_string_equal(got[i], want[i]);
}

static void test_mat_model_levels_match_spec_names(void **state)
{
	const struct mat_model *m = mlops();

	for (int l = 0; l < MAT_LEVEL_COUNT; l++) {
		assert_int_equal(m->levels[l].level, l);
		assert_string_equal(m->levels[l].name, expected_levels[l].name);
	}
}

static void test_mat_model_levels_carry_seed_highlights(void **state)
{
	const struct mat_model *m = mlops();

	for (int l = 0; l < MAT_LEVEL_COUNT; l++) {
		const struct mat_level *lv = &m->levels[l];
		if (l <= 1) {
			assert_bullets(lv->challenges, lv->n_challenges,
			               expected_levels[l].list[0]);
			assert_int_equal(lv->n_benefits, 0);
		} else {
			assert_bullets(lv->benefits, lv->n_benefits, expected_levels[l].list[0]);
			assert_int_equal(lv->n_challenges, 0);
		}
		assert_bullets(lv->technology, lv->n_technology, expected_levels[l].list[1]);
	}
}

static void test_mat_model_levels_summary_is_one_line(void **state)
{
	const struct mat_model *m = mlops();

	for (int l = 0; l < MAT_LEVEL_COUNT; l++) {
		const char *s = m->levels[l].summary;
		assert_non_null(s);
		assert_true(strlen(s) > 20);
		assert_true(strlen(s) <= MAT_MAX_DESCRIPTION);
		assert_null(strchr(s, '\n'));
		assert_true(mat_utf8_valid(s, strlen(s)));
	}
}

/* ---- dimensions ---- */

static void test_mat_model_dimensions_in_spec_order(void **state)
{
	static const char *const ids[] = {"people", "model_creation", "model_release",
	                                  "application_integration"};
	static const char *const names[] = {"People", "Model Creation", "Model Release",
	                                    "Application Integration"};
	const struct mat_model *m = mlops();

	assert_int_equal(m->n_dimensions, 4);
	for (size_t d = 0; d < 4; d++) {
		const char *desc = m->dimensions[d].description;
		assert_string_equal(m->dimensions[d].id, ids[d]);
		assert_string_equal(m->dimensions[d].display_name, names[d]);
		assert_non_null(desc);
		assert_true(strlen(desc) > 20);
		assert_null(strchr(desc, '\n'));
	}
}

/* ---- practices ---- */

static const struct {
	const char *id;
	int level;
	const char *title;
} spec_practices[] = {
    {"people.regular_communication", 1,
     "Data science, data engineering and software teams communicate regularly"},
    {"people.ds_de_repeatable_jobs", 2,
     "Data scientists and data engineers turn experimentation code into repeatable scripts/jobs "
     "together"},
    {"people.ds_de_shared_inputs_outputs", 3,
     "Data scientists and data engineers collaborate on experimentation and on managing model "
     "inputs/outputs"},
    {"people.se_de_integration_automation", 3,
     "Software engineers work with data engineers to automate model integration"},
    {"people.cross_functional_collaboration", 4,
     "Data scientists, data engineers and software engineers collaborate closely"},
    {"people.post_deployment_metrics", 4, "The team implements post-deployment metrics gathering"},
    {"model_creation.automated_data_pipeline", 1, "A data pipeline gathers data automatically"},
    {"model_creation.managed_compute", 2, "Compute resources are managed"},
    {"model_creation.experiment_tracking", 2,
     "Experiment results and training performance are tracked centrally"},
    {"model_creation.versioned_code_and_models", 2,
     "Training code and resulting models are version-controlled"},
    {"model_creation.automated_training_pipeline", 2,
     "Model training runs as automated scripts or pipelines"},
    {"model_creation.model_management", 2, "A model management tool tracks model versions"},
    {"model_creation.metric_triggered_retraining", 4,
     "Retraining is triggered automatically by production metrics"},
    {"model_release.versioned_scoring_scripts", 1, "Scoring scripts are version-controlled"},
    {"model_release.basic_model_integration_tests", 1,
     "Basic integration tests exist for the model"},
    {"model_release.tested_scoring_scripts", 2, "Scoring scripts have tests"},
    {"model_release.engineering_managed_release", 2,
     "Model releases are managed by the software engineering team"},
    {"model_release.cicd_release", 3, "Model release is automatic, managed by a CI/CD pipeline"},
    {"model_release.per_release_tests", 3, "Every model release runs unit and integration tests"},
    {"model_release.ab_testing", 3,
     "A/B testing of model performance informs deployment decisions"},
    {"model_release.scalable_serving", 3,
     "A model deployment platform serves models automatically and at scale"},
    {"model_release.registry_integrated", 4,
     "The model registry is integrated with deployment and monitoring"},
    {"model_release.end_to_end_automation", 4,
     "Training, testing and deployment run as one automated pipeline"},
    {"application_integration.app_unit_tests", 1, "Application code has unit tests"},
    {"application_integration.automated_builds", 1,
     "Software components are built, tested and released by CI/CD"},
    {"application_integration.operational_metrics", 1,
     "Basic operational metrics (request counts, latency) are collected"},
    {"application_integration.reduced_ds_dependency", 3,
     "Integrating a model no longer depends on data-scientist expertise"},
    {"application_integration.app_integration_tests", 3,
     "Application code has unit and integration tests"},
    {"application_integration.all_code_tested", 3,
     "Automated tests cover all code, including model and data-pipeline code"},
    {"application_integration.model_monitoring", 4,
     "Deployed models have verbose, centralized metrics and monitoring"},
};
#define N_SPEC_PRACTICES (sizeof(spec_practices) / sizeof(spec_practices[0]))

static void test_mat_model_practices_match_spec_table(void **state)
{
	const struct mat_model *m = mlops();

	assert_int_equal(N_SPEC_PRACTICES, 30);
	assert_int_equal(m->n_practices, N_SPEC_PRACTICES);
	for (size_t i = 0; i < N_SPEC_PRACTICES; i++) {
		const struct mat_practice *p = &m->practices[i];
		const char *dim;
		size_t dlen;

		assert_string_equal(p->id, spec_practices[i].id);
		assert_int_equal(p->level, spec_practices[i].level);
		assert_string_equal(p->title, spec_practices[i].title);
		/* The dimension is the id's prefix before the dot. */
		assert_true(p->dimension >= 0 && (size_t)p->dimension < m->n_dimensions);
		dim = m->dimensions[p->dimension].id;
		dlen = strlen(dim);
		assert_memory_equal(p->id, dim, dlen);
		assert_int_equal(p->id[dlen], '.');
	}
}

static void test_mat_model_practices_per_level_7_8_9_6(void **state)
{
	const struct mat_model *m = mlops();
	size_t per_level[MAT_LEVEL_COUNT] = {0};

	for (size_t i = 0; i < m->n_practices; i++) {
		assert_in_range(m->practices[i].level, 1, MAT_MAX_LEVEL);
		per_level[m->practices[i].level]++;
	}
	assert_int_equal(per_level[0], 0);
	assert_int_equal(per_level[1], 7);
	assert_int_equal(per_level[2], 8);
	assert_int_equal(per_level[3], 9);
	assert_int_equal(per_level[4], 6);
}

static void test_mat_model_practices_catalog_grouped_by_dimension(void **state)
{
	const struct mat_model *m = mlops();

	/* Dimension indexes never go down in catalog order. */
	for (size_t i = 1; i < m->n_practices; i++)
		assert_true(m->practices[i - 1].dimension <= m->practices[i].dimension);
}

static void test_mat_model_practice_ids_unique(void **state)
{
	const struct mat_model *m = mlops();

	for (size_t i = 0; i < m->n_practices; i++) {
		for (size_t j = i + 1; j < m->n_practices; j++)
			assert_string_not_equal(m->practices[i].id, m->practices[j].id);
	}
}

static void test_mat_model_practice_texts_fit_limits(void **state)
{
	const struct mat_model *m = mlops();

	for (size_t i = 0; i < m->n_practices; i++) {
		const struct mat_practice *p = &m->practices[i];
		assert_true(strlen(p->title) <= MAT_MAX_TITLE);
		assert_true(strlen(p->description) > strlen(p->title));
		assert_true(strlen(p->description) <= MAT_MAX_DESCRIPTION);
		assert_true(mat_utf8_valid(p->description, strlen(p->description)));
		assert_null(strchr(p->description, '\n'));
	}
}

/* ---- id lookup ---- */

static void test_mat_model_id_index_is_sorted_permutation(void **state)
{
	const struct mat_model *m = mlops();
	const uint8_t *by_id = mat__model_id_index(m);
	bool seen[MAT_MAX_PRACTICES] = {false};

	assert_non_null(by_id);
	for (size_t i = 0; i < m->n_practices; i++) {
		assert_true(by_id[i] < m->n_practices);
		assert_false(seen[by_id[i]]);
		seen[by_id[i]] = true;
		if (i > 0)
			assert_true(
			    strcmp(m->practices[by_id[i - 1]].id, m->practices[by_id[i]].id) < 0);
	}
}

static void test_mat_model_practice_index_every_id(void **state)
{
	const struct mat_model *m = mlops();

	for (size_t i = 0; i < m->n_practices; i++) {
		const char *id = m->practices[i].id;
		/* A copy, so the lookup compares text rather than pointers. */
		char *copy = strdup(id);
		assert_int_equal(mat_model_practice_index(m, copy, strlen(copy)), (int)i);
		free(copy);
	}
}

static void test_mat_model_practice_index_unknown_ids(void **state)
{
	static const char *const unknown[] = {
	    "",
	    "people",
	    "people.",
	    ".",
	    "a",
	    "zzz",
	    "people.regular_communicatio",
	    "people.regular_communicationx",
	    "people.regular_communication ",
	    " people.regular_communication",
	    "People.regular_communication",
	    "PEOPLE.REGULAR_COMMUNICATION",
	    "people/regular_communication",
	    "model_creation.managed",
	    "application_integration.",
	    "application_integration.all_code_teste",
	    "application_integration.all_code_testedd",
	    "aaa",
	    "application_integration.aaa",
	    "people.zzz",
	    "model_release.ab_testing.",
	    "model_creation.experiment_tracking\xc3\xa9",
	};
	const struct mat_model *m = mlops();

	for (size_t i = 0; i < sizeof(unknown) / sizeof(unknown[0]); i++)
		assert_int_equal(mat_model_practice_index(m, unknown[i], strlen(unknown[i])), -1);
	/* Every proper prefix of every id is unknown too. */
	for (size_t i = 0; i < m->n_practices; i++) {
		const char *id = m->practices[i].id;
		for (size_t len = 0; len < strlen(id); len++)
			assert_int_equal(mat_model_practice_index(m, id, len), -1);
	}
}

static void test_mat_model_practice_index_uses_len_not_nul(void **state)
{
	const struct mat_model *m = mlops();
	static const char buf[] = "model_release.ab_testing_and_more";
	char exact[24];

	assert_int_equal(mat_model_practice_index(m, buf, strlen("model_release.ab_testing")), 19);
	/* Not NUL-terminated at all. */
	memcpy(exact, "model_release.ab_testing", sizeof(exact));
	assert_int_equal(mat_model_practice_index(m, exact, sizeof(exact)), 19);
	/* An embedded NUL is part of the key, not its end. */
	assert_int_equal(mat_model_practice_index(m, "model_release.ab_testing\0", 25), -1);
}

static void test_mat_model_practice_index_null_arguments(void **state)
{
	assert_int_equal(mat_model_practice_index(NULL, "people.regular_communication", 28), -1);
	assert_int_equal(mat_model_practice_index(mlops(), NULL, 0), -1);
	assert_int_equal(mat_model_practice_index(mlops(), NULL, 5), -1);
}

static void test_mat_model_practice_index_model_without_index_scans(void **state)
{
	static const struct mat_dimension dims[] = {{"d", "D", "A dimension."}};
	static const struct mat_practice practices[] = {
	    {"d.zeta", 0, 1, "Zeta", "Zeta practice."},
	    {"d.alpha", 0, 2, "Alpha", "Alpha practice."},
	    {"d.mid", 0, 3, "Mid", "Mid practice."},
	};
	static const struct mat_model custom = {
	    .id = "custom",
	    .display_name = "Custom",
	    .n_dimensions = 1,
	    .dimensions = dims,
	    .n_practices = 3,
	    .practices = practices,
	};

	assert_null(mat__model_id_index(&custom));
	assert_int_equal(mat_model_practice_index(&custom, "d.zeta", 6), 0);
	assert_int_equal(mat_model_practice_index(&custom, "d.alpha", 7), 1);
	assert_int_equal(mat_model_practice_index(&custom, "d.mid", 5), 2);
	assert_int_equal(mat_model_practice_index(&custom, "d.mi", 4), -1);
	assert_int_equal(mat_model_practice_index(&custom, "people.regular_communication", 28), -1);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_mat_model_all_lists_mlops_v1),
	    cmocka_unit_test(test_mat_model_find_id_or_name),
	    cmocka_unit_test(test_mat_model_levels_match_spec_names),
	    cmocka_unit_test(test_mat_model_levels_carry_seed_highlights),
	    cmocka_unit_test(test_mat_model_levels_summary_is_one_line),
	    cmocka_unit_test(test_mat_model_dimensions_in_spec_order),
	    cmocka_unit_test(test_mat_model_practices_match_spec_table),
	    cmocka_unit_test(test_mat_model_practices_per_level_7_8_9_6),
	    cmocka_unit_test(test_mat_model_practices_catalog_grouped_by_dimension),
	    cmocka_unit_test(test_mat_model_practice_ids_unique),
	    cmocka_unit_test(test_mat_model_practice_texts_fit_limits),
	    cmocka_unit_test(test_mat_model_id_index_is_sorted_permutation),
	    cmocka_unit_test(test_mat_model_practice_index_every_id),
	    cmocka_unit_test(test_mat_model_practice_index_unknown_ids),
	    cmocka_unit_test(test_mat_model_practice_index_uses_len_not_nul),
	    cmocka_unit_test(test_mat_model_practice_index_null_arguments),
	    cmocka_unit_test(test_mat_model_practice_index_model_without_index_scans),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
