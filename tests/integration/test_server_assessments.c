/* AssessmentService and ScoringService over mutual TLS against a real PostgreSQL: the draft ->
 * submitted lifecycle, whole-batch validation and rollback, pagination and filters, preliminary
 * and frozen scores, EvaluateAnswers and GetRoadmap. */
#include "itest.h"

// clang-format off
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <cmocka.h>
// clang-format on
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "google/protobuf/empty.pb-c.h"
#include "mlops/maturity/v1/assessment.pb-c.h"
#include "mlops/maturity/v1/organization.pb-c.h"
#include "mlops/maturity/v1/scoring.pb-c.h"

#define AS "/mlops.maturity.v1.AssessmentService/"
#define SS "/mlops.maturity.v1.ScoringService/"
typedef Mlops__Maturity__V1__Assessment Assessment;
typedef Mlops__Maturity__V1__Answer Answer;
#define A_DESC (&mlops__maturity__v1__assessment__descriptor)
#define IMPL MLOPS__MATURITY__V1__PRACTICE_STATUS__PRACTICE_STATUS_IMPLEMENTED
#define PARTIAL MLOPS__MATURITY__V1__PRACTICE_STATUS__PRACTICE_STATUS_PARTIAL
#define NOTIMPL MLOPS__MATURITY__V1__PRACTICE_STATUS__PRACTICE_STATUS_NOT_IMPLEMENTED
#define NA MLOPS__MATURITY__V1__PRACTICE_STATUS__PRACTICE_STATUS_NOT_APPLICABLE

static const char *const level1[] = {
    "people.regular_communication",
    "model_creation.automated_data_pipeline",
    "model_release.versioned_scoring_scripts",
    "model_release.basic_model_integration_tests",
    "application_integration.app_unit_tests",
    "application_integration.automated_builds",
    "application_integration.operational_metrics",
};
static const char *const level2[] = {
    "people.ds_de_repeatable_jobs",
    "model_creation.managed_compute",
    "model_creation.experiment_tracking",
    "model_creation.versioned_code_and_models",
    "model_creation.automated_training_pipeline",
    "model_creation.model_management",
    "model_release.tested_scoring_scripts",
    "model_release.engineering_managed_release",
};

static void make_org(const char *id, int target)
{
	Mlops__Maturity__V1__CreateOrganizationRequest req =
	    MLOPS__MATURITY__V1__CREATE_ORGANIZATION_REQUEST__INIT;
	Mlops__Maturity__V1__Organization o = MLOPS__MATURITY__V1__ORGANIZATION__INIT;
	o.target_level = target;
	req.organization = &o;
	req.organization_id = (char *)id;
	void *r = itest_call("admin", "/mlops.maturity.v1.OrganizationService/CreateOrganization",
	                     &req, &mlops__maturity__v1__organization__descriptor, GRPC_STATUS_OK);
	protobuf_c_message_free_unpacked(r, NULL);
}

static Assessment *create_assessment(const char *org, const char *title, grpc_status_code want)
{
	Mlops__Maturity__V1__CreateAssessmentRequest req =
	    MLOPS__MATURITY__V1__CREATE_ASSESSMENT_REQUEST__INIT;
	Assessment a = MLOPS__MATURITY__V1__ASSESSMENT__INIT;
	char parent[128];
	snprintf(parent, sizeof(parent), "organizations/%s", org);
	a.title = (char *)title;
	req.parent = parent;
	req.assessment = &a;
	return itest_call("admin", AS "CreateAssessment", &req, A_DESC, want);
}

/* Answers array built on the stack by the caller. */
struct answers {
	Answer a[40];
	Answer *p[40];
	size_t n;
};

static void add(struct answers *s, const char *id, int status, const char *note)
{
	Answer *a = &s->a[s->n];
	mlops__maturity__v1__answer__init(a);
	a->practice_id = (char *)id;
	a->status = status;
	a->note = (char *)(note ? note : "");
	s->p[s->n] = a;
	s->n++;
}

static Assessment *update(const char *name, struct answers *s, const char *etag,
                          grpc_status_code want)
{
	Mlops__Maturity__V1__UpdateAnswersRequest req =
	    MLOPS__MATURITY__V1__UPDATE_ANSWERS_REQUEST__INIT;
	req.name = (char *)name;
	req.answers = s->p;
	req.n_answers = s->n;
	req.etag = (char *)(etag ? etag : "");
	return itest_call("admin", AS "UpdateAnswers", &req, A_DESC, want);
}

static Assessment *submit(const char *name, grpc_status_code want)
{
	Mlops__Maturity__V1__SubmitAssessmentRequest req =
	    MLOPS__MATURITY__V1__SUBMIT_ASSESSMENT_REQUEST__INIT;
	req.name = (char *)name;
	return itest_call("admin", AS "SubmitAssessment", &req, A_DESC, want);
}

static Assessment *get_a(const char *name, grpc_status_code want)
{
	Mlops__Maturity__V1__GetAssessmentRequest req =
	    MLOPS__MATURITY__V1__GET_ASSESSMENT_REQUEST__INIT;
	req.name = (char *)name;
	return itest_call("admin", AS "GetAssessment", &req, A_DESC, want);
}

static void free_msg(void *m)
{
	if (m)
		protobuf_c_message_free_unpacked(m, NULL);
}

static void test_create_get_and_errors(void **state)
{
	Assessment *a, *g;
	char big[202];
	Mlops__Maturity__V1__CreateAssessmentRequest req =
	    MLOPS__MATURITY__V1__CREATE_ASSESSMENT_REQUEST__INIT;
	Assessment body = MLOPS__MATURITY__V1__ASSESSMENT__INIT;

	(void)state;
	if (!tenv_available())
		skip();
	make_org("as-org", 0);
	a = create_assessment("as-org", "Q1 review", GRPC_STATUS_OK);
	assert_int_equal(strncmp(a->name, "organizations/as-org/assessments/", 33), 0);
	assert_int_equal(strlen(a->name), 33 + 36);
	assert_int_equal(a->name[33 + 14], '7'); /* UUIDv7 */
	assert_string_equal(a->model, "models/mlops-v1");
	assert_int_equal(a->state, MLOPS__MATURITY__V1__ASSESSMENT__STATE__STATE_DRAFT);
	assert_string_equal(a->creator, "spiffe://maturityd.dev/admin");
	assert_string_equal(a->submitter, "");
	assert_non_null(a->score);
	assert_int_equal(a->score->overall_level, 0);
	assert_int_equal(a->score->total_count, 30);
	g = get_a(a->name, GRPC_STATUS_OK);
	assert_string_equal(g->title, "Q1 review");
	assert_string_equal(g->etag, a->etag);
	free_msg(g);

	req.parent = "organizations/as-org";
	req.assessment = &body;
	body.model = "models/nope";
	itest_expect_violation("admin", AS "CreateAssessment", &req, "assessment.model");
	body.model = "";
	memset(big, 't', sizeof(big));
	big[201] = '\0';
	body.title = big;
	itest_expect_violation("admin", AS "CreateAssessment", &req, "assessment.title");
	body.title = "";
	req.parent = "organizations/Bad";
	itest_expect_violation("admin", AS "CreateAssessment", &req, "parent");
	free_msg(create_assessment("no-such-org", "x", GRPC_STATUS_NOT_FOUND));
	/* Names: malformed, and well-formed but absent. */
	Mlops__Maturity__V1__GetAssessmentRequest gr =
	    MLOPS__MATURITY__V1__GET_ASSESSMENT_REQUEST__INIT;
	gr.name = "organizations/as-org/assessments/not-a-uuid";
	itest_expect_violation("admin", AS "GetAssessment", &gr, "name");
	free_msg(get_a("organizations/as-org/assessments/01890000-0000-7000-8000-000000000000",
	               GRPC_STATUS_NOT_FOUND));
	free_msg(a);
}

static void test_create_with_initial_answers(void **state)
{
	Mlops__Maturity__V1__CreateAssessmentRequest req =
	    MLOPS__MATURITY__V1__CREATE_ASSESSMENT_REQUEST__INIT;
	Assessment body = MLOPS__MATURITY__V1__ASSESSMENT__INIT;
	struct answers s = {.n = 0};
	Mlops__Maturity__V1__ListAssessmentsRequest l =
	    MLOPS__MATURITY__V1__LIST_ASSESSMENTS_REQUEST__INIT;
	Assessment *a;

	(void)state;
	if (!tenv_available())
		skip();
	make_org("init-org", 0);
	add(&s, level1[0], IMPL, NULL);
	add(&s, level1[1], PARTIAL, "half");
	body.answers = s.p;
	body.n_answers = s.n;
	req.parent = "organizations/init-org";
	req.assessment = &body;
	a = itest_call("admin", AS "CreateAssessment", &req, A_DESC, GRPC_STATUS_OK);
	assert_int_equal(a->n_answers, 2);
	assert_true(fabs(a->score->maturity_index - 5.0) < 1e-9);
	free_msg(a);
	/* One bad initial answer: nothing is created. */
	add(&s, "no.such_practice", IMPL, NULL);
	body.n_answers = s.n;
	itest_expect_violation("admin", AS "CreateAssessment", &req,
	                       "assessment.answers[2].practice_id");
	l.parent = "organizations/init-org";
	Mlops__Maturity__V1__ListAssessmentsResponse *r =
	    itest_call("admin", AS "ListAssessments", &l,
	               &mlops__maturity__v1__list_assessments_response__descriptor, GRPC_STATUS_OK);
	assert_int_equal(r->n_assessments, 1);
	free_msg(r);
}

static void test_update_answers_whole_batch(void **state)
{
	Assessment *a, *u, *g;
	struct answers s = {.n = 0};

	(void)state;
	if (!tenv_available())
		skip();
	make_org("batch-org", 0);
	a = create_assessment("batch-org", "batch", GRPC_STATUS_OK);
	add(&s, "people.regular_communication", IMPL, NULL);
	add(&s, "model_creation.automated_data_pipeline", PARTIAL, "half done");
	u = update(a->name, &s, NULL, GRPC_STATUS_OK);
	assert_int_equal(u->n_answers, 2);
	assert_string_equal(u->answers[0]->updated_by, "spiffe://maturityd.dev/admin");
	assert_non_null(u->answers[0]->update_time);
	/* Preliminary score: 1 + 0.5 credits of 30 -> 5.00 */
	assert_true(fabs(u->score->maturity_index - 5.0) < 1e-9);
	assert_string_not_equal(u->etag, a->etag);

	/* One bad answer: nothing of the batch is written. */
	s.n = 0;
	add(&s, "people.regular_communication", NOTIMPL, NULL);
	add(&s, "people.no_such_practice", IMPL, NULL);
	Mlops__Maturity__V1__UpdateAnswersRequest req =
	    MLOPS__MATURITY__V1__UPDATE_ANSWERS_REQUEST__INIT;
	req.name = a->name;
	req.answers = s.p;
	req.n_answers = s.n;
	itest_expect_violation("admin", AS "UpdateAnswers", &req, "answers[1].practice_id");
	g = get_a(a->name, GRPC_STATUS_OK);
	assert_int_equal(g->n_answers, 2);
	assert_int_equal(g->answers[0]->status, IMPL); /* unchanged */
	free_msg(g);

	s.n = 0;
	add(&s, "people.regular_communication", IMPL, NULL);
	add(&s, "people.regular_communication", PARTIAL, NULL);
	req.answers = s.p;
	req.n_answers = s.n;
	itest_expect_violation("admin", AS "UpdateAnswers", &req, "answers[1].practice_id");
	s.n = 0;
	add(&s, "people.regular_communication", 0, NULL);
	req.n_answers = s.n;
	itest_expect_violation("admin", AS "UpdateAnswers", &req, "answers[0].status");
	s.n = 0;
	add(&s, "people.regular_communication", NA, "");
	req.n_answers = s.n;
	itest_expect_violation("admin", AS "UpdateAnswers", &req, "answers[0].note");
	s.n = 0;
	add(&s, "people.regular_communication", 9, NULL);
	req.n_answers = s.n;
	itest_expect_violation("admin", AS "UpdateAnswers", &req, "answers[0].status");

	/* Stale etag. */
	s.n = 0;
	add(&s, "people.regular_communication", NA, "not relevant here");
	free_msg(update(a->name, &s, a->etag, GRPC_STATUS_ABORTED));
	free_msg(update(a->name, &s, u->etag, GRPC_STATUS_OK));
	free_msg(a);
	free_msg(u);
}

static void test_submit_lifecycle(void **state)
{
	Assessment *a, *sub;
	struct answers s = {.n = 0};
	Mlops__Maturity__V1__DeleteAssessmentRequest del =
	    MLOPS__MATURITY__V1__DELETE_ASSESSMENT_REQUEST__INIT;

	(void)state;
	if (!tenv_available())
		skip();
	make_org("sub-org", 3);
	a = create_assessment("sub-org", "to submit", GRPC_STATUS_OK);
	for (size_t i = 0; i < 7; i++)
		add(&s, level1[i], IMPL, NULL);
	free_msg(update(a->name, &s, NULL, GRPC_STATUS_OK));
	sub = submit(a->name, GRPC_STATUS_OK);
	assert_int_equal(sub->state, MLOPS__MATURITY__V1__ASSESSMENT__STATE__STATE_SUBMITTED);
	assert_string_equal(sub->submitter, "spiffe://maturityd.dev/admin");
	assert_non_null(sub->submit_time);
	assert_int_equal(sub->score->overall_level, 1);
	/* Frozen: no more changes, no second submission, no deletion. */
	free_msg(update(a->name, &s, NULL, GRPC_STATUS_FAILED_PRECONDITION));
	free_msg(submit(a->name, GRPC_STATUS_FAILED_PRECONDITION));
	del.name = a->name;
	itest_call("admin", AS "DeleteAssessment", &del, NULL, GRPC_STATUS_FAILED_PRECONDITION);

	/* The organization points at it. */
	Mlops__Maturity__V1__GetOrganizationRequest go =
	    MLOPS__MATURITY__V1__GET_ORGANIZATION_REQUEST__INIT;
	go.name = "organizations/sub-org";
	Mlops__Maturity__V1__Organization *o =
	    itest_call("admin", "/mlops.maturity.v1.OrganizationService/GetOrganization", &go,
	               &mlops__maturity__v1__organization__descriptor, GRPC_STATUS_OK);
	assert_string_equal(o->last_assessment, a->name);
	free_msg(o);

	/* A draft can be deleted. */
	Assessment *d = create_assessment("sub-org", "draft", GRPC_STATUS_OK);
	del.name = d->name;
	free_msg(itest_call("admin", AS "DeleteAssessment", &del,
	                    &google__protobuf__empty__descriptor, GRPC_STATUS_OK));
	free_msg(get_a(d->name, GRPC_STATUS_NOT_FOUND));

	/* Without force, an organization with assessments is not deleted. */
	Mlops__Maturity__V1__DeleteOrganizationRequest dor =
	    MLOPS__MATURITY__V1__DELETE_ORGANIZATION_REQUEST__INIT;
	dor.name = "organizations/sub-org";
	itest_call("admin", "/mlops.maturity.v1.OrganizationService/DeleteOrganization", &dor, NULL,
	           GRPC_STATUS_FAILED_PRECONDITION);
	free_msg(d);
	free_msg(a);
	free_msg(sub);
}

static void test_list_newest_first(void **state)
{
	char names[5][128];
	Mlops__Maturity__V1__ListAssessmentsRequest req =
	    MLOPS__MATURITY__V1__LIST_ASSESSMENTS_REQUEST__INIT;
	char token[512] = "";
	int seen = 0;

	(void)state;
	if (!tenv_available())
		skip();
	make_org("list-org", 0);
	for (int i = 0; i < 5; i++) {
		Assessment *a = create_assessment("list-org", "x", GRPC_STATUS_OK);
		snprintf(names[i], sizeof(names[i]), "%s", a->name);
		if (i == 2)
			free_msg(submit(a->name, GRPC_STATUS_OK));
		free_msg(a);
	}
	req.parent = "organizations/list-org";
	req.page_size = 2;
	do {
		req.page_token = token;
		Mlops__Maturity__V1__ListAssessmentsResponse *r = itest_call(
		    "admin", AS "ListAssessments", &req,
		    &mlops__maturity__v1__list_assessments_response__descriptor, GRPC_STATUS_OK);
		for (size_t i = 0; i < r->n_assessments; i++) {
			/* Newest first: the reverse of creation order. */
			assert_string_equal(r->assessments[i]->name, names[4 - seen]);
			seen++;
		}
		snprintf(token, sizeof(token), "%s", r->next_page_token);
		free_msg(r);
	} while (token[0] != '\0');
	assert_int_equal(seen, 5);

	req.page_token = "";
	req.page_size = 0;
	req.state = MLOPS__MATURITY__V1__ASSESSMENT__STATE__STATE_SUBMITTED;
	Mlops__Maturity__V1__ListAssessmentsResponse *r =
	    itest_call("admin", AS "ListAssessments", &req,
	               &mlops__maturity__v1__list_assessments_response__descriptor, GRPC_STATUS_OK);
	assert_int_equal(r->n_assessments, 1);
	assert_string_equal(r->assessments[0]->name, names[2]);
	free_msg(r);
	req.state = 7;
	itest_expect_violation("admin", AS "ListAssessments", &req, "state");
	req.state = 0;
	req.page_token = "bm9wZQ";
	itest_expect_violation("admin", AS "ListAssessments", &req, "page_token");
}

static void test_evaluate_answers(void **state)
{
	Mlops__Maturity__V1__EvaluateAnswersRequest req =
	    MLOPS__MATURITY__V1__EVALUATE_ANSWERS_REQUEST__INIT;
	Mlops__Maturity__V1__EvaluateAnswersResponse *r;
	struct answers s = {.n = 0};

	(void)state;
	if (!tenv_available())
		skip();
	for (size_t i = 0; i < 7; i++)
		add(&s, level1[i], IMPL, NULL);
	add(&s, level2[0], PARTIAL, NULL);
	req.answers = s.p;
	req.n_answers = s.n;
	/* Any verified certificate may score. */
	r = itest_call("portal", SS "EvaluateAnswers", &req,
	               &mlops__maturity__v1__evaluate_answers_response__descriptor, GRPC_STATUS_OK);
	assert_int_equal(r->score->overall_level, 1);
	/* (7 + 0.5) / 30 = 25.00 */
	assert_true(fabs(r->score->maturity_index - 25.0) < 1e-9);
	/* progress to 2: 0.5 of 8 level-2 practices */
	assert_true(fabs(r->score->progress_to_next_level - 0.0625) < 1e-9);
	assert_int_equal(r->score->satisfied_count, 7);
	assert_int_equal(r->score->total_count, 30);
	assert_int_equal(r->score->n_blocking_practice_ids, 8);
	assert_string_equal(r->score->blocking_practice_ids[0], level2[0]);
	assert_int_equal(r->score->n_dimension_scores, 4);
	assert_string_equal(r->score->dimension_scores[0]->dimension_id, "people");
	assert_int_equal(r->score->dimension_scores[3]->level, 2); /* app integration: no L2 */
	free_msg(r);

	req.model = "models/other";
	itest_expect_violation("portal", SS "EvaluateAnswers", &req, "model");
	req.model = "";
	s.n = 0;
	add(&s, "bogus.practice", IMPL, NULL);
	req.n_answers = 1;
	itest_expect_violation("portal", SS "EvaluateAnswers", &req, "answers[0].practice_id");
}

static Mlops__Maturity__V1__Roadmap *roadmap(const char *org, const char *assessment, int target)
{
	Mlops__Maturity__V1__GetRoadmapRequest req = MLOPS__MATURITY__V1__GET_ROADMAP_REQUEST__INIT;
	char name[128];
	snprintf(name, sizeof(name), "organizations/%s", org);
	req.organization = name;
	req.assessment = (char *)(assessment ? assessment : "");
	if (target >= 0) {
		req._target_level_case =
		    MLOPS__MATURITY__V1__GET_ROADMAP_REQUEST___TARGET_LEVEL_TARGET_LEVEL;
		req.target_level = target;
	}
	return itest_call("admin", SS "GetRoadmap", &req, &mlops__maturity__v1__roadmap__descriptor,
	                  GRPC_STATUS_OK);
}

static void test_roadmap(void **state)
{
	Mlops__Maturity__V1__Roadmap *r;
	Assessment *a, *sub;
	struct answers s = {.n = 0};

	(void)state;
	if (!tenv_available())
		skip();
	make_org("road-org", 3);
	/* No submitted assessment: a level-0 roadmap to the org's target. */
	r = roadmap("road-org", NULL, -1);
	assert_string_equal(r->assessment, "");
	assert_int_equal(r->current_level, 0);
	assert_int_equal(r->target_level, 3);
	assert_int_equal(r->n_stages, 3);
	assert_int_equal(r->stages[0]->level, 1);
	assert_string_equal(r->stages[0]->name, "DevOps but no MLOps");
	assert_int_equal(r->stages[0]->n_steps, 7);
	assert_string_equal(r->stages[0]->steps[0]->practice_id, level1[0]);
	assert_true(r->stages[1]->n_benefits > 0);
	free_msg(r);

	a = create_assessment("road-org", "r", GRPC_STATUS_OK);
	for (size_t i = 0; i < 7; i++)
		add(&s, level1[i], IMPL, NULL);
	add(&s, level2[1], PARTIAL, "in progress");
	add(&s, "model_creation.metric_triggered_retraining", IMPL, NULL); /* level 4 early */
	free_msg(update(a->name, &s, NULL, GRPC_STATUS_OK));
	/* A draft can be asked for by name. */
	r = roadmap("road-org", a->name, -1);
	assert_string_equal(r->assessment, a->name);
	assert_int_equal(r->current_level, 1);
	free_msg(r);
	sub = submit(a->name, GRPC_STATUS_OK);
	r = roadmap("road-org", NULL, -1);
	assert_string_equal(r->assessment, a->name);
	assert_int_equal(r->current_level, 1);
	assert_int_equal(r->target_level, 3);
	assert_int_equal(r->n_stages, 2);
	assert_int_equal(r->stages[0]->level, 2);
	assert_int_equal(r->stages[0]->n_steps, 8);
	/* The partial practice carries its status and note. */
	assert_string_equal(r->stages[0]->steps[1]->practice_id, level2[1]);
	assert_int_equal(r->stages[0]->steps[1]->status, PARTIAL);
	assert_string_equal(r->stages[0]->steps[1]->note, "in progress");
	assert_int_equal(r->stages[0]->steps[0]->status, NOTIMPL);
	assert_int_equal(r->n_ahead, 1);
	assert_string_equal(r->ahead[0]->practice_id, "model_creation.metric_triggered_retraining");
	free_msg(r);
	/* A target at or below the current level: empty, not an error. */
	r = roadmap("road-org", NULL, 1);
	assert_int_equal(r->n_stages, 0);
	free_msg(r);
	Mlops__Maturity__V1__GetRoadmapRequest bad = MLOPS__MATURITY__V1__GET_ROADMAP_REQUEST__INIT;
	bad.organization = "organizations/road-org";
	bad._target_level_case =
	    MLOPS__MATURITY__V1__GET_ROADMAP_REQUEST___TARGET_LEVEL_TARGET_LEVEL;
	bad.target_level = 5;
	itest_expect_violation("admin", SS "GetRoadmap", &bad, "target_level");
	free_msg(a);
	free_msg(sub);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_create_get_and_errors),
	    cmocka_unit_test(test_create_with_initial_answers),
	    cmocka_unit_test(test_update_answers_whole_batch),
	    cmocka_unit_test(test_submit_lifecycle),
	    cmocka_unit_test(test_list_newest_first),
	    cmocka_unit_test(test_evaluate_answers),
	    cmocka_unit_test(test_roadmap),
	};
	return cmocka_run_group_tests(tests, itest_setup, itest_teardown);
}
