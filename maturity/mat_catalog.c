/* The built-in maturity models as static data (docs/model.md): `mlops-v1`, written from the
 * "Highlights" and "Detailed Levels and Practices" of the MLOps maturity model document. Nothing
 * here runs at start-up: every table, including the id-sorted index that mat_model_practice_index
 * searches, is a compile-time constant, so there is no initialisation order and no race. This file
 * is not scoring: see mat_score.c. */
#include "mat_model.h"

#include <string.h>

/* Practice indexes in catalog order (the practice table of docs/model.md). Naming them lets the
 * id-sorted index below be read and reviewed; test_mat_catalog checks it is sorted and complete. */
enum {
	P_PEOPLE_REGULAR_COMMUNICATION,
	P_PEOPLE_DS_DE_REPEATABLE_JOBS,
	P_PEOPLE_DS_DE_SHARED_INPUTS_OUTPUTS,
	P_PEOPLE_SE_DE_INTEGRATION_AUTOMATION,
	P_PEOPLE_CROSS_FUNCTIONAL_COLLABORATION,
	P_PEOPLE_POST_DEPLOYMENT_METRICS,
	P_MC_AUTOMATED_DATA_PIPELINE,
	P_MC_MANAGED_COMPUTE,
	P_MC_EXPERIMENT_TRACKING,
	P_MC_VERSIONED_CODE_AND_MODELS,
	P_MC_AUTOMATED_TRAINING_PIPELINE,
	P_MC_MODEL_MANAGEMENT,
	P_MC_METRIC_TRIGGERED_RETRAINING,
	P_MR_VERSIONED_SCORING_SCRIPTS,
	P_MR_BASIC_MODEL_INTEGRATION_TESTS,
	P_MR_TESTED_SCORING_SCRIPTS,
	P_MR_ENGINEERING_MANAGED_RELEASE,
	P_MR_CICD_RELEASE,
	P_MR_PER_RELEASE_TESTS,
	P_MR_AB_TESTING,
	P_MR_SCALABLE_SERVING,
	P_MR_REGISTRY_INTEGRATED,
	P_MR_END_TO_END_AUTOMATION,
	P_AI_APP_UNIT_TESTS,
	P_AI_AUTOMATED_BUILDS,
	P_AI_OPERATIONAL_METRICS,
	P_AI_REDUCED_DS_DEPENDENCY,
	P_AI_APP_INTEGRATION_TESTS,
	P_AI_ALL_CODE_TESTED,
	P_AI_MODEL_MONITORING,
	P_COUNT
};

enum { D_PEOPLE, D_MODEL_CREATION, D_MODEL_RELEASE, D_APPLICATION_INTEGRATION, D_COUNT };

#define N_OF(a) (sizeof(a) / sizeof((a)[0]))

/* Level 0: "No MLOps Highlights". */
static const char *const l0_challenges[] = {
    "Difficult to manage the full machine learning model lifecycle.",
    "Teams are disparate and releases are painful.",
    "Most systems exist as \"black boxes,\" providing little feedback during/post-deployment.",
};
static const char *const l0_technology[] = {
    "Manual builds and deployments.",
    "Manual testing of models and applications.",
    "No centralized tracking of model performance.",
    "Training of models is manual.",
};

/* Level 1: "DevOps but No MLOps Highlights". */
static const char *const l1_challenges[] = {
    "Releases are less painful but rely heavily on the Data Team for every new model.",
    "Limited feedback on model performance in production.",
    "Difficult to trace and reproduce results.",
};
static const char *const l1_technology[] = {
    "Automated builds for software components.",
    "Automated tests for application code (unit tests, integration tests).",
    "Continuous Integration/Continuous Deployment (CI/CD) pipelines.",
    "Basic operational metrics (e.g., request counts, latency).",
};

/* Level 2: "Automated Training (2-3 ML Cases) Highlights". */
static const char *const l2_benefits[] = {
    "Training environment is fully managed and traceable.",
    "Easy to reproduce models.",
    "Releases are manual but with low friction.",
};
static const char *const l2_technology[] = {
    "Automated model training scripts or pipelines.",
    "Centralized tracking of model training performance and experiment tracking.",
    "Model management tools to handle different model versions.",
};

/* Level 3: "Automated Model Deployment Highlights". */
static const char *const l3_benefits[] = {
    "Releases are low friction and automated.",
    "Full traceability from deployment back to the original data.",
    "The entire environment is managed, from training to testing to production.",
};
static const char *const l3_technology[] = {
    "Integrated A/B testing of model performance for deployment decisions.",
    "Automated tests for all code, including model and data pipeline code.",
    "Centralized tracking of model training performance.",
    "Model deployment platforms that support automated and scalable model serving.",
};

/* Level 4: "Full MLOps Automated Operations Highlights". */
static const char *const l4_benefits[] = {
    "The full system is automated and easily monitored.",
    "Production systems provide feedback for continuous improvement.",
    "Approaching a zero-downtime system.",
};
static const char *const l4_technology[] = {
    "Automated model training, testing, and deployment pipelines.",
    "Verbose, centralized metrics and monitoring for deployed models.",
    "Automated feedback loops and model retraining based on performance degradation.",
    "Model registry integrated with deployment and monitoring systems.",
};

static const struct mat_dimension mlops_v1_dimensions[D_COUNT] = {
    [D_PEOPLE] = {"people", "People",
                  "How data scientists, data engineers and software engineers communicate and work "
                  "together across the model lifecycle."},
    [D_MODEL_CREATION] = {"model_creation", "Model Creation",
                          "How data is gathered, compute is managed and models are trained, "
                          "tracked and versioned."},
    [D_MODEL_RELEASE] = {"model_release", "Model Release",
                         "How models and their scoring scripts are tested, released and served "
                         "in production."},
    [D_APPLICATION_INTEGRATION] = {"application_integration", "Application Integration",
                                   "How applications that use models are built, tested, released "
                                   "and monitored."},
};

static const struct mat_practice mlops_v1_practices[P_COUNT] = {
    [P_PEOPLE_REGULAR_COMMUNICATION] =
        {"people.regular_communication", D_PEOPLE, 1,
         "Data science, data engineering and software teams communicate regularly",
         "The teams still own separate parts of the work, but they no longer operate in isolation: "
         "there is regular, if limited, communication between data scientists, data engineers and "
         "software engineers instead of none at all."},
    [P_PEOPLE_DS_DE_REPEATABLE_JOBS] =
        {"people.ds_de_repeatable_jobs", D_PEOPLE, 2,
         "Data scientists and data engineers turn experimentation code into repeatable "
         "scripts/jobs together",
         "Data scientists and data engineers collaborate to convert notebook or experimentation "
         "code into repeatable scripts and jobs, so that a model can be retrained by someone other "
         "than its author."},
    [P_PEOPLE_DS_DE_SHARED_INPUTS_OUTPUTS] =
        {"people.ds_de_shared_inputs_outputs", D_PEOPLE, 3,
         "Data scientists and data engineers collaborate on experimentation and on managing model "
         "inputs/outputs",
         "Data scientists and data engineers work together on experiments and jointly manage the "
         "inputs and outputs of models, instead of handing off a single model file with its "
         "inputs/outputs."},
    [P_PEOPLE_SE_DE_INTEGRATION_AUTOMATION] =
        {"people.se_de_integration_automation", D_PEOPLE, 3,
         "Software engineers work with data engineers to automate model integration",
         "Software engineers are no longer siloed: they work with data engineers to automate how "
         "models are integrated into applications."},
    [P_PEOPLE_CROSS_FUNCTIONAL_COLLABORATION] =
        {"people.cross_functional_collaboration", D_PEOPLE, 4,
         "Data scientists, data engineers and software engineers collaborate closely",
         "Data scientists, data engineers and software engineers collaborate closely as one team "
         "across the whole lifecycle, from data and training to deployment and operations."},
    [P_PEOPLE_POST_DEPLOYMENT_METRICS] =
        {"people.post_deployment_metrics", D_PEOPLE, 4,
         "The team implements post-deployment metrics gathering",
         "The team implements gathering of metrics after deployment, so production systems provide "
         "feedback on model behaviour for continuous improvement."},
    [P_MC_AUTOMATED_DATA_PIPELINE] =
        {"model_creation.automated_data_pipeline", D_MODEL_CREATION, 1,
         "A data pipeline gathers data automatically",
         "Training data is gathered by an automated data pipeline rather than collected manually "
         "for each experiment."},
    [P_MC_MANAGED_COMPUTE] =
        {"model_creation.managed_compute", D_MODEL_CREATION, 2, "Compute resources are managed",
         "Compute resources used for experimentation and training are managed (provisioned, shared "
         "and accounted for) rather than ad hoc and unmanaged."},
    [P_MC_EXPERIMENT_TRACKING] =
        {"model_creation.experiment_tracking", D_MODEL_CREATION, 2,
         "Experiment results and training performance are tracked centrally",
         "Experiment results and model training performance are tracked in a central place, so "
         "experiments are predictable and results can be traced and compared."},
    [P_MC_VERSIONED_CODE_AND_MODELS] =
        {"model_creation.versioned_code_and_models", D_MODEL_CREATION, 2,
         "Training code and resulting models are version-controlled",
         "Both the training code and the models it produces are kept under version control, so any "
         "model can be reproduced from a known version of its code."},
    [P_MC_AUTOMATED_TRAINING_PIPELINE] =
        {"model_creation.automated_training_pipeline", D_MODEL_CREATION, 2,
         "Model training runs as automated scripts or pipelines",
         "Models are trained by automated scripts or pipelines instead of manual steps, giving a "
         "fully managed and traceable training environment."},
    [P_MC_MODEL_MANAGEMENT] =
        {"model_creation.model_management", D_MODEL_CREATION, 2,
         "A model management tool tracks model versions",
         "A model management tool keeps track of the different versions of each model, replacing "
         "model files handed off manually."},
    [P_MC_METRIC_TRIGGERED_RETRAINING] =
        {"model_creation.metric_triggered_retraining", D_MODEL_CREATION, 4,
         "Retraining is triggered automatically by production metrics",
         "Automated feedback loops retrain models when production metrics show performance "
         "degradation, without waiting for someone to notice and start a training run."},
    [P_MR_VERSIONED_SCORING_SCRIPTS] =
        {"model_release.versioned_scoring_scripts", D_MODEL_RELEASE, 1,
         "Scoring scripts are version-controlled",
         "The scoring scripts that run a model are kept under version control, even if they are "
         "still written by hand."},
    [P_MR_BASIC_MODEL_INTEGRATION_TESTS] =
        {"model_release.basic_model_integration_tests", D_MODEL_RELEASE, 1,
         "Basic integration tests exist for the model",
         "Basic integration tests check that the model works within the system it is released "
         "into."},
    [P_MR_TESTED_SCORING_SCRIPTS] =
        {"model_release.tested_scoring_scripts", D_MODEL_RELEASE, 2, "Scoring scripts have tests",
         "Scoring scripts are version-controlled together with tests that exercise them."},
    [P_MR_ENGINEERING_MANAGED_RELEASE] =
        {"model_release.engineering_managed_release", D_MODEL_RELEASE, 2,
         "Model releases are managed by the software engineering team",
         "Model releases are managed by the software engineering team rather than by the data "
         "scientists or data engineers who built the model; the process may still be manual but "
         "has low friction."},
    [P_MR_CICD_RELEASE] =
        {"model_release.cicd_release", D_MODEL_RELEASE, 3,
         "Model release is automatic, managed by a CI/CD pipeline",
         "Models are released automatically by a CI/CD pipeline, making releases low friction and "
         "traceable from deployment back to the original data."},
    [P_MR_PER_RELEASE_TESTS] =
        {"model_release.per_release_tests", D_MODEL_RELEASE, 3,
         "Every model release runs unit and integration tests",
         "Each model release runs unit and integration tests before it reaches production."},
    [P_MR_AB_TESTING] =
        {"model_release.ab_testing", D_MODEL_RELEASE, 3,
         "A/B testing of model performance informs deployment decisions",
         "Integrated A/B testing compares the performance of model versions, and its results "
         "inform which model is deployed."},
    [P_MR_SCALABLE_SERVING] =
        {"model_release.scalable_serving", D_MODEL_RELEASE, 3,
         "A model deployment platform serves models automatically and at scale",
         "Models are served by a deployment platform that supports automated and scalable model "
         "serving instead of hand-built hosting for each model."},
    [P_MR_REGISTRY_INTEGRATED] =
        {"model_release.registry_integrated", D_MODEL_RELEASE, 4,
         "The model registry is integrated with deployment and monitoring",
         "The model registry is integrated with the deployment and monitoring systems, so what is "
         "deployed and how it performs is known for every registered model version."},
    [P_MR_END_TO_END_AUTOMATION] =
        {"model_release.end_to_end_automation", D_MODEL_RELEASE, 4,
         "Training, testing and deployment run as one automated pipeline",
         "Model training, testing and deployment are joined into one automated pipeline, so a new "
         "model reaches production without manual steps."},
    [P_AI_APP_UNIT_TESTS] = {"application_integration.app_unit_tests", D_APPLICATION_INTEGRATION, 1,
                             "Application code has unit tests",
                             "The application code that uses models is covered by unit tests."},
    [P_AI_AUTOMATED_BUILDS] =
        {"application_integration.automated_builds", D_APPLICATION_INTEGRATION, 1,
         "Software components are built, tested and released by CI/CD",
         "Software components are built, tested and released automatically by Continuous "
         "Integration/Continuous Deployment (CI/CD) pipelines."},
    [P_AI_OPERATIONAL_METRICS] =
        {"application_integration.operational_metrics", D_APPLICATION_INTEGRATION, 1,
         "Basic operational metrics (request counts, latency) are collected",
         "Basic operational metrics of the application, such as request counts and latency, are "
         "collected."},
    [P_AI_REDUCED_DS_DEPENDENCY] =
        {"application_integration.reduced_ds_dependency", D_APPLICATION_INTEGRATION, 3,
         "Integrating a model no longer depends on data-scientist expertise",
         "Integrating a model into an application is less reliant on data-scientist expertise: "
         "software and data engineers can do it without the model's author."},
    [P_AI_APP_INTEGRATION_TESTS] =
        {"application_integration.app_integration_tests", D_APPLICATION_INTEGRATION, 3,
         "Application code has unit and integration tests",
         "The application code that uses models is covered by both unit and integration tests."},
    [P_AI_ALL_CODE_TESTED] =
        {"application_integration.all_code_tested", D_APPLICATION_INTEGRATION, 3,
         "Automated tests cover all code, including model and data-pipeline code",
         "Automated tests cover all code, including model code and data-pipeline code, not only "
         "the "
         "application."},
    [P_AI_MODEL_MONITORING] =
        {"application_integration.model_monitoring", D_APPLICATION_INTEGRATION, 4,
         "Deployed models have verbose, centralized metrics and monitoring",
         "Deployed models report verbose metrics to a central monitoring system, so the full "
         "system is easily monitored in production."},
};

/* mlops_v1_practices indexes ordered by id (strcmp order), for binary search. Kept by hand so
 * it is a constant; test_mat_catalog fails if it is not sorted or not a permutation. */
static const uint8_t mlops_v1_by_id[P_COUNT] = {
    P_AI_ALL_CODE_TESTED,
    P_AI_APP_INTEGRATION_TESTS,
    P_AI_APP_UNIT_TESTS,
    P_AI_AUTOMATED_BUILDS,
    P_AI_MODEL_MONITORING,
    P_AI_OPERATIONAL_METRICS,
    P_AI_REDUCED_DS_DEPENDENCY,
    P_MC_AUTOMATED_DATA_PIPELINE,
    P_MC_AUTOMATED_TRAINING_PIPELINE,
    P_MC_EXPERIMENT_TRACKING,
    P_MC_MANAGED_COMPUTE,
    P_MC_METRIC_TRIGGERED_RETRAINING,
    P_MC_MODEL_MANAGEMENT,
    P_MC_VERSIONED_CODE_AND_MODELS,
    P_MR_AB_TESTING,
    P_MR_BASIC_MODEL_INTEGRATION_TESTS,
    P_MR_CICD_RELEASE,
    P_MR_END_TO_END_AUTOMATION,
    P_MR_ENGINEERING_MANAGED_RELEASE,
    P_MR_PER_RELEASE_TESTS,
    P_MR_REGISTRY_INTEGRATED,
    P_MR_SCALABLE_SERVING,
    P_MR_TESTED_SCORING_SCRIPTS,
    P_MR_VERSIONED_SCORING_SCRIPTS,
    P_PEOPLE_CROSS_FUNCTIONAL_COLLABORATION,
    P_PEOPLE_DS_DE_REPEATABLE_JOBS,
    P_PEOPLE_DS_DE_SHARED_INPUTS_OUTPUTS,
    P_PEOPLE_POST_DEPLOYMENT_METRICS,
    P_PEOPLE_REGULAR_COMMUNICATION,
    P_PEOPLE_SE_DE_INTEGRATION_AUTOMATION,
};

static const struct mat_model mlops_v1 = {
    .id = "mlops-v1",
    .display_name = "MLOps maturity model (v1)",
    .levels =
        {
            {0, "No MLOps",
             "Teams work in silos and the whole model lifecycle, from data gathering to release, "
             "is manual.",
             l0_challenges, N_OF(l0_challenges), NULL, 0, l0_technology, N_OF(l0_technology)},
            {1, "DevOps but no MLOps",
             "Application software is built, tested and released automatically, but models are "
             "still trained and handed off by hand.",
             l1_challenges, N_OF(l1_challenges), NULL, 0, l1_technology, N_OF(l1_technology)},
            {2, "Automated Training",
             "Model training is automated, tracked and reproducible; releases are manual but low "
             "friction.",
             NULL, 0, l2_benefits, N_OF(l2_benefits), l2_technology, N_OF(l2_technology)},
            {3, "Automated Model Deployment",
             "Models are tested and released automatically by CI/CD, traceable from deployment "
             "back to the data.",
             NULL, 0, l3_benefits, N_OF(l3_benefits), l3_technology, N_OF(l3_technology)},
            {4, "Full MLOps Automated Operations",
             "The whole system is automated and monitored, and production metrics trigger "
             "retraining.",
             NULL, 0, l4_benefits, N_OF(l4_benefits), l4_technology, N_OF(l4_technology)},
        },
    .n_dimensions = D_COUNT,
    .dimensions = mlops_v1_dimensions,
    .n_practices = P_COUNT,
    .practices = mlops_v1_practices,
};

/* Built-in models in name order, each with its id-sorted index. */
static const struct mat_model *const builtin_models[] = {&mlops_v1};
static const struct {
	const struct mat_model *model;
	const uint8_t *by_id;
} builtin_indexes[] = {{&mlops_v1, mlops_v1_by_id}};

const struct mat_model *const *mat_model_all(size_t *n)
{
	if (n != NULL)
		*n = N_OF(builtin_models);
	return builtin_models;
}

const struct mat_model *mat_model_find(const char *id_or_name)
{
	static const char prefix[] = "models/";
	const struct mat_model *found = NULL;
	const char *id = id_or_name;

	if (id == NULL)
		goto out;
	if (strncmp(id, prefix, sizeof(prefix) - 1) == 0)
		id += sizeof(prefix) - 1;
	for (size_t i = 0; i < N_OF(builtin_models); i++) {
		if (strcmp(builtin_models[i]->id, id) == 0) {
			found = builtin_models[i];
			break;
		}
	}
out:
	return found;
}

const uint8_t *mat__model_id_index(const struct mat_model *m)
{
	const uint8_t *by_id = NULL;

	for (size_t i = 0; i < N_OF(builtin_indexes); i++) {
		if (builtin_indexes[i].model == m) {
			by_id = builtin_indexes[i].by_id;
			break;
		}
	}
	return by_id;
}

/* Compares the counted string (id, len) with the NUL-terminated practice id, like strcmp.
 * (strlen + memcmp, both vectorised, measured faster than one byte-wise pass: the ids share
 * long prefixes such as "application_integration.".) */
static int id_cmp(const char *id, size_t len, const char *practice_id)
{
	size_t plen = strlen(practice_id);
	int c = memcmp(id, practice_id, len < plen ? len : plen);

	if (c != 0)
		return c;
	if (len == plen)
		return 0;
	return len < plen ? -1 : 1;
}

int mat_model_practice_index(const struct mat_model *m, const char *id, size_t len)
{
	const uint8_t *by_id;
	int found = -1;

	if (m == NULL || (id == NULL && len > 0))
		goto out;
	if (id == NULL)
		id = ""; /* memcmp must not see NULL, even for 0 bytes */
	by_id = mat__model_id_index(m);
	if (by_id == NULL) {
		/* A model that is not built in has no precomputed index; its practices are few
		 * (MAT_MAX_PRACTICES), so a scan is still cheap. */
		for (size_t i = 0; i < m->n_practices; i++) {
			if (id_cmp(id, len, m->practices[i].id) == 0) {
				found = (int)i;
				break;
			}
		}
		goto out;
	}
	size_t lo = 0;
	size_t hi = m->n_practices;
	while (lo < hi) {
		size_t mid = lo + (hi - lo) / 2;
		int c = id_cmp(id, len, m->practices[by_id[mid]].id);
		if (c == 0) {
			found = by_id[mid];
			break;
		}
		if (c < 0)
			hi = mid;
		else
			lo = mid + 1;
	}
out:
	return found;
}
