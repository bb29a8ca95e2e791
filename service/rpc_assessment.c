/* AssessmentService: drafts, answers, submission. Answers are validated against the model the
 * assessment pins (storage checks the pinned model inside the write transaction). */
#include "mat_model.h"
#include "mat_validate.h"
#include "mlops/maturity/v1/assessment.pb-c.h"
#include "svc.h"
#include "svc_convert.h"
#include "svc_methods.h"

#include <stdlib.h>
#include <string.h>
#include <time.h>

typedef Mlops__Maturity__V1__Assessment Assessment;

static enum mat_code reply_assessment(struct svc_ctx *ctx, struct mat_assessment *a)
{
	Assessment out;
	enum mat_code rc;

	svc_assessment_to_proto(ctx, a, &out);
	rc = svc_reply(ctx, &out.base);
	mat_assessment_cleanup(a);
	return rc;
}

static mat_time_us wall_now(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_REALTIME, &ts);
	return (mat_time_us)ts.tv_sec * 1000000 + ts.tv_nsec / 1000;
}

/* With prefill_from_evidence, practices the request leaves unanswered are answered from the
 * organization's current evidence (docs/evidence.md), in the creating transaction. */
enum mat_code rpc_create_assessment(struct svc_ctx *ctx, const ProtobufCMessage *req_)
{
	const Mlops__Maturity__V1__CreateAssessmentRequest *req = (const void *)req_;
	char org[MAT_MAX_ORG_ID + 1], rid_buf[40];
	const char *rid = NULL, *title = "";
	const struct mat_model *m = mat_model_find("mlops-v1");
	struct mat_assessment out = {0};
	struct mat_answer *answers = NULL;
	size_t n_answers = 0;
	struct store_call sc;
	enum mat_code rc;

	memcpy(org, ctx->org, sizeof(org)); /* parsed and authorized by the engine */
	svc_request_id(req->request_id, rid_buf, &rid, &ctx->err);
	if (req->assessment != NULL) {
		title = req->assessment->title;
		mat_check_string(&ctx->err, "assessment.title", title, MAT_MAX_TITLE, false);
		if (req->assessment->model[0] != '\0') {
			m = strncmp(req->assessment->model, "models/", 7) == 0
			        ? mat_model_find(req->assessment->model)
			        : NULL;
			if (m == NULL)
				mat_error_field(&ctx->err, "assessment.model",
				                "unknown model \"%.100s\" (models/{model_id})",
				                req->assessment->model);
		}
	}
	if (ctx->err.code != MAT_OK)
		return ctx->err.code;
	if (req->assessment != NULL && req->assessment->n_answers > 0) {
		answers = svc_answers_in(req->assessment->answers, req->assessment->n_answers,
		                         "assessment.answers", &ctx->err);
		if (answers == NULL)
			return ctx->err.code;
		n_answers = req->assessment->n_answers;
	}
	svc_store_call(ctx, &sc);
	rc = store_assessment_create_prefilled(&sc, org, title, m->id, answers, n_answers,
	                                       req->prefill_from_evidence ? wall_now() : 0, rid,
	                                       &out, &ctx->err);
	free(answers);
	if (rc != MAT_OK)
		return rc;
	return reply_assessment(ctx, &out);
}

/* GetAssessment: one pipelined read on the storage loop (bindings, the assessment and its
 * answers in one round trip and one snapshot). */
struct get_assessment_step {
	char org[MAT_MAX_ORG_ID + 1], id[40];
	struct store_call sc;
	struct mat_assessment out;
};

static enum mat_code get_assessment_then(struct svc_ctx *ctx, void *arg, enum mat_code rc)
{
	struct get_assessment_step *st = arg;

	if (rc != MAT_OK) {
		mat_assessment_cleanup(&st->out);
		return rc;
	}
	return reply_assessment(ctx, &st->out);
}

enum mat_code rpc_get_assessment(struct svc_ctx *ctx, const ProtobufCMessage *req_)
{
	struct get_assessment_step *st = svc_alloc(ctx, sizeof(*st));

	(void)req_; /* its name is ctx->org and ctx->id (svc_methods.def) */
	memcpy(st->org, ctx->org, sizeof(st->org));
	memcpy(st->id, ctx->id, sizeof(st->id));
	svc_store_call(ctx, &st->sc); /* carries the authorization (svc_methods.def) */
	svc_async_begin(ctx, get_assessment_then, st);
	store_assessment_get_async(&st->sc, st->org, st->id, &st->out, &ctx->err, svc_async_done,
	                           ctx);
	return MAT_OK;
}

enum mat_code rpc_list_assessments(struct svc_ctx *ctx, const ProtobufCMessage *req_)
{
	const Mlops__Maturity__V1__ListAssessmentsRequest *req = (const void *)req_;
	Mlops__Maturity__V1__ListAssessmentsResponse resp =
	    MLOPS__MATURITY__V1__LIST_ASSESSMENTS_RESPONSE__INIT;
	char org[MAT_MAX_ORG_ID + 1];
	struct mat_assessment *list = NULL;
	size_t n = 0;
	char *next = NULL;
	struct store_call sc;
	int page_size;
	enum mat_code rc;

	memcpy(org, ctx->org, sizeof(org)); /* parsed and authorized by the engine */
	svc_page_size(req->page_size, &page_size, &ctx->err);
	if ((int)req->state < 0 || (int)req->state > MAT_ASSESSMENT_SUBMITTED)
		mat_error_field(&ctx->err, "state", "is not an Assessment.State value");
	if (ctx->err.code != MAT_OK)
		return ctx->err.code;
	svc_store_call(ctx, &sc);
	rc = store_assessment_list(&sc, org, (enum mat_assessment_state)req->state, page_size,
	                           req->page_token, &list, &n, &next, &ctx->err);
	if (rc != MAT_OK)
		return rc;
	resp.n_assessments = n;
	resp.assessments = svc_alloc(ctx, (n ? n : 1) * sizeof(*resp.assessments));
	for (size_t i = 0; i < n; i++) {
		resp.assessments[i] = svc_alloc(ctx, sizeof(Assessment));
		svc_assessment_to_proto(ctx, &list[i], resp.assessments[i]);
		mat_assessment_cleanup(&list[i]);
	}
	free(list);
	resp.next_page_token = svc_strdup(ctx, next);
	free(next);
	return svc_reply(ctx, &resp.base);
}

enum mat_code rpc_update_answers(struct svc_ctx *ctx, const ProtobufCMessage *req_)
{
	const Mlops__Maturity__V1__UpdateAnswersRequest *req = (const void *)req_;
	char org[MAT_MAX_ORG_ID + 1], id[40];
	struct mat_assessment out = {0};
	struct mat_answer *answers;
	struct store_call sc;
	enum mat_code rc;

	memcpy(org, ctx->org, sizeof(org));
	memcpy(id, ctx->id, sizeof(id));
	answers = svc_answers_in(req->answers, req->n_answers, "answers", &ctx->err);
	if (answers == NULL)
		return ctx->err.code; /* the engine's refusal comes first */
	svc_store_call(ctx, &sc);     /* carries the authorization into the transaction */
	rc = store_assessment_update_answers(&sc, org, id, answers, req->n_answers, req->etag, &out,
	                                     &ctx->err);
	free(answers);
	if (rc != MAT_OK) {
		mat_assessment_cleanup(&out);
		return rc;
	}
	return reply_assessment(ctx, &out);
}

enum mat_code rpc_submit_assessment(struct svc_ctx *ctx, const ProtobufCMessage *req_)
{
	const Mlops__Maturity__V1__SubmitAssessmentRequest *req = (const void *)req_;
	char org[MAT_MAX_ORG_ID + 1], id[40];
	struct mat_assessment out = {0};
	struct store_call sc;
	enum mat_code rc;

	memcpy(org, ctx->org, sizeof(org));
	memcpy(id, ctx->id, sizeof(id));
	svc_store_call(ctx, &sc); /* carries the authorization into the transaction */
	rc = store_assessment_submit(&sc, org, id, req->etag, &out, &ctx->err);
	if (rc != MAT_OK) {
		mat_assessment_cleanup(&out);
		return rc;
	}
	return reply_assessment(ctx, &out);
}

enum mat_code rpc_delete_assessment(struct svc_ctx *ctx, const ProtobufCMessage *req_)
{
	const Mlops__Maturity__V1__DeleteAssessmentRequest *req = (const void *)req_;
	Google__Protobuf__Empty empty = GOOGLE__PROTOBUF__EMPTY__INIT;
	char org[MAT_MAX_ORG_ID + 1], id[40];
	struct store_call sc;
	enum mat_code rc;

	memcpy(org, ctx->org, sizeof(org));
	memcpy(id, ctx->id, sizeof(id));
	svc_store_call(ctx, &sc);
	rc = store_assessment_delete(&sc, org, id, req->etag, &ctx->err);
	if (rc != MAT_OK)
		return rc;
	return svc_reply(ctx, &empty.base);
}
