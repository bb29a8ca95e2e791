/* ScoringService: scoring without storing (EvaluateAnswers) and roadmaps (GetRoadmap) from the
 * organization's last submitted assessment or a given one. The arithmetic is maturity/'s. */
#include "mat_model.h"
#include "mat_score.h"
#include "mat_validate.h"
#include "mlops/maturity/v1/scoring.pb-c.h"
#include "svc.h"
#include "svc_convert.h"
#include "svc_methods.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* "" -> the default model; "models/x" -> x if known; else a violation on `field`. */
static const struct mat_model *model_ref(struct svc_ctx *ctx, const char *name, const char *field)
{
	const struct mat_model *m;

	if (name == NULL || name[0] == '\0')
		return mat_model_find("mlops-v1");
	m = strncmp(name, "models/", 7) == 0 ? mat_model_find(name) : NULL;
	if (m == NULL)
		mat_error_field(&ctx->err, field, "unknown model \"%.100s\" (models/{model_id})",
		                name);
	return m;
}

enum mat_code rpc_evaluate(struct svc_ctx *ctx, const ProtobufCMessage *req_)
{
	const Mlops__Maturity__V1__EvaluateAnswersRequest *req = (const void *)req_;
	Mlops__Maturity__V1__EvaluateAnswersResponse resp =
	    MLOPS__MATURITY__V1__EVALUATE_ANSWERS_RESPONSE__INIT;
	const struct mat_model *m = model_ref(ctx, req->model, "model");
	enum mat_status status[MAT_MAX_PRACTICES];
	struct mat_answer *answers;
	struct mat_score score;

	if (m == NULL)
		return MAT_INVALID;
	answers = svc_answers_in(req->answers, req->n_answers, "answers", &ctx->err);
	if (answers == NULL)
		return ctx->err.code;
	if (!mat_answers_validate_status(m, answers, req->n_answers, "answers", status,
	                                 &ctx->err)) {
		free(answers);
		return MAT_INVALID;
	}
	free(answers);
	mat_score_compute(m, status, &score);
	resp.score = svc_score_to_proto(ctx, m, &score);
	return svc_reply(ctx, &resp.base);
}

static Mlops__Maturity__V1__RoadmapStep *step(struct svc_ctx *ctx, const struct mat_model *m,
                                              const struct mat_assessment *a,
                                              const enum mat_status *status, size_t p)
{
	Mlops__Maturity__V1__RoadmapStep *s = svc_alloc(ctx, sizeof(*s));
	const struct mat_practice *pr = &m->practices[p];

	mlops__maturity__v1__roadmap_step__init(s);
	s->practice_id = (char *)pr->id;
	s->dimension_id = (char *)m->dimensions[pr->dimension].id;
	s->level = pr->level;
	s->title = (char *)pr->title;
	s->status = status[p] == MAT_STATUS_UNSPECIFIED
	                ? MLOPS__MATURITY__V1__PRACTICE_STATUS__PRACTICE_STATUS_NOT_IMPLEMENTED
	                : (Mlops__Maturity__V1__PracticeStatus)status[p];
	s->note = "";
	s->evidence_uri = "";
	for (size_t i = 0; a != NULL && i < a->n_answers; i++) {
		if (strcmp(a->answers[i].practice_id, pr->id) == 0) {
			s->note = svc_strdup(ctx, a->answers[i].note);
			s->evidence_uri = svc_strdup(ctx, a->answers[i].evidence_uri);
		}
	}
	return s;
}

/* GetRoadmap: a chain of two pipelined reads on the storage loop, no thread held between them:
 * the organization (with the caller's bindings), then the assessment it names (or the one the
 * request names). */
struct roadmap_step {
	char org[MAT_MAX_ORG_ID + 1], aid[40];
	const char *org_name; /* the request's, copied: the request does not outlive the handler */
	bool explicit_assessment, invalid;
	int requested;
	struct store_call sc;
	struct mat_error serr; /* the storage steps' (ctx->err may hold the request's violations) */
	struct mat_organization o;
	struct mat_assessment a;
};

static enum mat_code roadmap_reply(struct svc_ctx *ctx, struct roadmap_step *rs,
                                   bool have_assessment)
{
	Mlops__Maturity__V1__Roadmap out = MLOPS__MATURITY__V1__ROADMAP__INIT;
	const char *org = rs->org;
	struct mat_assessment a = rs->a;
	struct mat_organization o = rs->o;
	int requested = rs->requested;
	const struct mat_model *m = mat_model_find("mlops-v1");
	enum mat_status status[MAT_MAX_PRACTICES];
	struct mat_roadmap rm;
	enum mat_code rc = MAT_OK;

	out.organization = (char *)rs->org_name;
	if (have_assessment) {
		m = mat_model_find(a.model_id);
		if (m == NULL) {
			rc = mat_error_set(&ctx->err, MAT_INTERNAL,
			                   "assessment pins unknown model %s", a.model_id);
			goto out;
		}
		mat_answers_to_status(m, a.answers, a.n_answers, status);
	} else {
		/* No submitted assessment: level 0, every practice unsatisfied. */
		for (size_t i = 0; i < m->n_practices; i++)
			status[i] = MAT_STATUS_UNSPECIFIED;
	}
	mat_roadmap_compute(m, status, requested, o.target_level, &rm);

	if (have_assessment) {
		size_t len = strlen(org) + strlen(a.id) + sizeof("organizations//assessments/");
		out.assessment = svc_alloc(ctx, len);
		snprintf(out.assessment, len, "organizations/%s/assessments/%s", org, a.id);
	} else {
		out.assessment = "";
	}
	out.current_level = rm.current_level;
	out.target_level = rm.target_level;
	out.n_stages = rm.n_stages;
	out.stages = svc_alloc(ctx, (rm.n_stages ? rm.n_stages : 1) * sizeof(*out.stages));
	for (size_t i = 0; i < rm.n_stages; i++) {
		const struct mat_roadmap_stage *st = &rm.stages[i];
		const struct mat_level *lv = &m->levels[st->level];
		Mlops__Maturity__V1__RoadmapStage *ps = svc_alloc(ctx, sizeof(*ps));
		mlops__maturity__v1__roadmap_stage__init(ps);
		ps->level = st->level;
		ps->name = (char *)lv->name;
		ps->summary = (char *)lv->summary;
		ps->n_benefits = lv->n_benefits;
		ps->benefits = (char **)lv->benefits;
		ps->n_steps = st->n_steps;
		ps->steps = svc_alloc(ctx, (st->n_steps ? st->n_steps : 1) * sizeof(*ps->steps));
		for (size_t k = 0; k < st->n_steps; k++)
			ps->steps[k] =
			    step(ctx, m, have_assessment ? &a : NULL, status, st->steps[k]);
		out.stages[i] = ps;
	}
	out.n_ahead = rm.n_ahead;
	out.ahead = svc_alloc(ctx, (rm.n_ahead ? rm.n_ahead : 1) * sizeof(*out.ahead));
	for (size_t k = 0; k < rm.n_ahead; k++)
		out.ahead[k] = step(ctx, m, have_assessment ? &a : NULL, status, rm.ahead[k]);
	rc = svc_reply(ctx, &out.base);
out:
	mat_organization_cleanup(&rs->o);
	mat_assessment_cleanup(&rs->a);
	return rc;
}

static enum mat_code roadmap_assessment_then(struct svc_ctx *ctx, void *arg, enum mat_code rc)
{
	struct roadmap_step *rs = arg;

	if (rc != MAT_OK) {
		ctx->err = rs->serr;
		mat_organization_cleanup(&rs->o);
		mat_assessment_cleanup(&rs->a);
		return rc;
	}
	return roadmap_reply(ctx, rs, true);
}

static enum mat_code roadmap_org_then(struct svc_ctx *ctx, void *arg, enum mat_code rc)
{
	struct roadmap_step *rs = arg;
	const char *aid = NULL;

	if (rs->invalid) { /* the request's violations, unless the engine refuses the caller */
		mat_organization_cleanup(&rs->o);
		return ctx->err.code;
	}
	if (rc != MAT_OK)
		ctx->err = rs->serr;
	if (rc != MAT_OK) {
		mat_organization_cleanup(&rs->o);
		return rc;
	}
	if (rs->explicit_assessment)
		aid = rs->aid;
	else if (rs->o.last_assessment_id != NULL && rs->o.last_assessment_id[0] != '\0')
		aid = rs->o.last_assessment_id;
	if (aid == NULL) /* no submitted assessment: level 0, every practice unsatisfied */
		return roadmap_reply(ctx, rs, false);
	mat_error_clear(&rs->serr);
	svc_async_begin(ctx, roadmap_assessment_then, rs);
	store_assessment_get_async(&rs->sc, rs->org, aid, &rs->a, &rs->serr, svc_async_done, ctx);
	return MAT_OK;
}

enum mat_code rpc_roadmap(struct svc_ctx *ctx, const ProtobufCMessage *req_)
{
	const Mlops__Maturity__V1__GetRoadmapRequest *req = (const void *)req_;
	struct roadmap_step *rs = svc_alloc(ctx, sizeof(*rs));
	char aorg[MAT_MAX_ORG_ID + 1];

	rs->requested = -1;
	memcpy(rs->org, ctx->org, sizeof(rs->org)); /* parsed by the engine */
	rs->org_name = svc_strdup(ctx, req->organization);
	if (req->assessment[0] != '\0') {
		rs->explicit_assessment = true;
		if (svc_parse_child_name(req->assessment, "assessments", "assessment", aorg,
		                         rs->aid, &ctx->err) &&
		    strcmp(aorg, rs->org) != 0)
			mat_error_field(&ctx->err, "assessment", "belongs to another organization");
	}
	if (req->_target_level_case ==
	    MLOPS__MATURITY__V1__GET_ROADMAP_REQUEST___TARGET_LEVEL_TARGET_LEVEL) {
		if (req->target_level < 0 || req->target_level > MAT_MAX_LEVEL)
			mat_error_field(&ctx->err, "target_level", "must be a level from 0 to 4");
		rs->requested = req->target_level;
	}
	/* Invalid: the first step still reads the caller's bindings, so that the engine's refusal
	 * comes first (decided without blocking this thread). */
	rs->invalid = ctx->err.code != MAT_OK;
	mat_error_clear(&rs->serr);
	svc_store_call(ctx, &rs->sc); /* carries the authorization (svc_methods.def) */
	svc_async_begin(ctx, roadmap_org_then, rs);
	store_org_get_async(&rs->sc, rs->org, &rs->o, &rs->serr, svc_async_done, ctx);
	return MAT_OK;
}
