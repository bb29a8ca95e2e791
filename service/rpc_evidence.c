/* EvidenceService: automation reports what it observes about an organization's practices, and
 * the live score combines the current evidence with the last submitted assessment
 * (docs/evidence.md). Reports are validated here against the server's clock (observe_time may
 * not lie in the future beyond a small skew); the live rule itself is maturity/mat_live.c. */
#include "mat_live.h"
#include "mat_model.h"
#include "mat_validate.h"
#include "mlops/maturity/v1/evidence.pb-c.h"
#include "svc.h"
#include "svc_convert.h"
#include "svc_methods.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

typedef Mlops__Maturity__V1__Evidence Evidence;

static mat_time_us wall_now(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_REALTIME, &ts);
	return (mat_time_us)ts.tv_sec * 1000000 + ts.tv_nsec / 1000;
}

static char *evidence_name(struct svc_ctx *ctx, const struct mat_evidence *e)
{
	size_t len = strlen(e->org_id) + strlen(e->id) + sizeof("organizations//evidence/");
	char *s = svc_alloc(ctx, len);

	snprintf(s, len, "organizations/%s/evidence/%s", e->org_id, e->id);
	return s;
}

void svc_evidence_to_proto(struct svc_ctx *ctx, const struct mat_evidence *e, Evidence *out)
{
	mlops__maturity__v1__evidence__init(out);
	out->name = evidence_name(ctx, e);
	out->practice_id = svc_strdup(ctx, e->practice_id);
	out->status = (Mlops__Maturity__V1__PracticeStatus)e->status;
	out->source = svc_strdup(ctx, e->source);
	out->reporter = svc_strdup(ctx, e->reporter);
	out->observe_time = svc_ts(ctx, e->observe_time);
	out->expire_time = svc_ts(ctx, e->expire_time);
	out->uri = svc_strdup(ctx, e->uri);
	out->digest = svc_strdup(ctx, e->digest);
	out->note = svc_strdup(ctx, e->note);
	out->create_time = svc_ts(ctx, e->create_time);
}

/* A reported piece as a domain record borrowing the request's strings, validated at `now`.
 * Output-only fields of the request (name, reporter, create_time) are ignored (AIP-203). */
static bool evidence_in(const Evidence *in, mat_time_us now, const char *prefix,
                        struct mat_evidence *out, struct mat_error *err)
{
	char field[64];
	bool ok = true;

	memset(out, 0, sizeof(*out));
	out->practice_id = in->practice_id;
	out->status = (enum mat_status)in->status;
	out->source = in->source;
	out->uri = in->uri;
	out->digest = in->digest;
	out->note = in->note;
	snprintf(field, sizeof(field), "%s.observe_time", prefix);
	ok &= svc_ts_in(in->observe_time, field, &out->observe_time, err);
	snprintf(field, sizeof(field), "%s.expire_time", prefix);
	ok &= svc_ts_in(in->expire_time, field, &out->expire_time, err);
	if (!ok)
		return false;
	return mat_evidence_validate(out, now, prefix, err);
}

static enum mat_code report(struct svc_ctx *ctx, const char *parent, Evidence *const *pieces,
                            size_t n, bool batch, const char *request_id)
{
	Mlops__Maturity__V1__BatchReportEvidenceResponse resp =
	    MLOPS__MATURITY__V1__BATCH_REPORT_EVIDENCE_RESPONSE__INIT;
	char org[MAT_MAX_ORG_ID + 1], rid_buf[40];
	const char *rid = NULL;
	mat_time_us now = wall_now();
	struct mat_evidence *in = NULL, *out = NULL;
	size_t n_out = 0;
	struct store_call sc;
	enum mat_code rc;

	(void)parent; /* parsed into ctx->org by the engine (svc_methods.def) */
	memcpy(org, ctx->org, sizeof(org));
	svc_request_id(request_id, rid_buf, &rid, &ctx->err);
	if (n == 0 && batch)
		mat_error_field(&ctx->err, "evidence", "must hold 1 to %d pieces (got none)",
		                MAT_MAX_EVIDENCE_BATCH);
	else if (n == 0)
		mat_error_field(&ctx->err, "evidence", "is required");
	else if (n > MAT_MAX_EVIDENCE_BATCH)
		mat_error_field(&ctx->err, "evidence", "must hold 1 to %d pieces (got %zu)",
		                MAT_MAX_EVIDENCE_BATCH, n);
	if (ctx->err.code == MAT_OK) {
		in = calloc(n, sizeof(*in));
		if (in == NULL)
			return mat_error_set(&ctx->err, MAT_INTERNAL, "out of memory");
		for (size_t i = 0; i < n; i++) {
			char prefix[32];

			if (batch)
				snprintf(prefix, sizeof(prefix), "evidence[%zu]", i);
			else
				snprintf(prefix, sizeof(prefix), "evidence");
			(void)evidence_in(pieces[i], now, prefix, &in[i], &ctx->err);
		}
	}
	if (ctx->err.code != MAT_OK) {
		free(in);
		return ctx->err.code; /* the engine's refusal comes first */
	}
	svc_store_call(ctx, &sc); /* carries the authorization into the transaction */
	rc = store_evidence_report(&sc, org, in, n, batch, rid, &out, &n_out, &ctx->err);
	free(in);
	if (rc != MAT_OK)
		return rc;
	resp.n_evidence = n_out;
	resp.evidence = svc_alloc(ctx, (n_out ? n_out : 1) * sizeof(*resp.evidence));
	for (size_t i = 0; i < n_out; i++) {
		resp.evidence[i] = svc_alloc(ctx, sizeof(Evidence));
		svc_evidence_to_proto(ctx, &out[i], resp.evidence[i]);
		mat_evidence_cleanup(&out[i]);
	}
	free(out);
	if (batch)
		return svc_reply(ctx, &resp.base);
	if (n_out != 1)
		return mat_error_set(&ctx->err, MAT_INTERNAL, "report returned %zu pieces", n_out);
	return svc_reply(ctx, &resp.evidence[0]->base);
}

enum mat_code rpc_report_evidence(struct svc_ctx *ctx, const ProtobufCMessage *req_)
{
	const Mlops__Maturity__V1__ReportEvidenceRequest *req = (const void *)req_;

	return report(ctx, req->parent, req->evidence != NULL ? &req->evidence : NULL,
	              req->evidence != NULL ? 1 : 0, false, req->request_id);
}

enum mat_code rpc_batch_report_evidence(struct svc_ctx *ctx, const ProtobufCMessage *req_)
{
	const Mlops__Maturity__V1__BatchReportEvidenceRequest *req = (const void *)req_;

	return report(ctx, req->parent, req->evidence, req->n_evidence, true, req->request_id);
}

enum mat_code rpc_get_evidence(struct svc_ctx *ctx, const ProtobufCMessage *req_)
{
	const Mlops__Maturity__V1__GetEvidenceRequest *req = (const void *)req_;
	char org[MAT_MAX_ORG_ID + 1], id[40];
	struct mat_evidence e = {0};
	struct store_call sc;
	Evidence out;
	enum mat_code rc;

	(void)req; /* its name is ctx->org and ctx->id (svc_methods.def) */
	memcpy(org, ctx->org, sizeof(org));
	memcpy(id, ctx->id, sizeof(id));
	svc_store_call(ctx, &sc); /* carries the authorization (svc_methods.def) */
	rc = store_evidence_get(&sc, org, id, &e, &ctx->err);
	if (rc != MAT_OK) {
		mat_evidence_cleanup(&e);
		return rc;
	}
	svc_evidence_to_proto(ctx, &e, &out);
	mat_evidence_cleanup(&e);
	return svc_reply(ctx, &out.base);
}

enum mat_code rpc_list_evidence(struct svc_ctx *ctx, const ProtobufCMessage *req_)
{
	const Mlops__Maturity__V1__ListEvidenceRequest *req = (const void *)req_;
	Mlops__Maturity__V1__ListEvidenceResponse resp =
	    MLOPS__MATURITY__V1__LIST_EVIDENCE_RESPONSE__INIT;
	const struct mat_model *m = mat_model_find("mlops-v1");
	char org[MAT_MAX_ORG_ID + 1];
	const char *org_id;
	struct mat_evidence *list = NULL;
	size_t n = 0;
	char *next = NULL;
	struct store_call sc;
	int page_size;
	enum mat_code rc;

	memcpy(org, ctx->org, sizeof(org)); /* parsed by the engine */
	/* organizations/-: the evidence of every organization the caller can see. */
	org_id = strcmp(org, "-") == 0 ? NULL : org;
	svc_page_size(req->page_size, &page_size, &ctx->err);
	if (req->practice_id[0] != '\0' &&
	    (!mat_utf8_valid(req->practice_id, strlen(req->practice_id)) ||
	     mat_model_practice_index(m, req->practice_id, strlen(req->practice_id)) < 0))
		mat_error_field(&ctx->err, "practice_id", "is not a practice of mlops-v1");
	if (ctx->err.code != MAT_OK)
		return ctx->err.code; /* the engine's refusal comes first */
	if (org_id == NULL) {
		bool sees_all = svc_sees_all(ctx);
		svc_store_call(ctx, &sc); /* carries the authorization (svc_methods.def) */
		sc.only_visible = !sees_all;
	} else {
		svc_store_call(ctx, &sc); /* carries the authorization (svc_methods.def) */
	}
	rc = store_evidence_list(&sc, org_id, req->practice_id, req->include_expired, wall_now(),
	                         page_size, req->page_token, &list, &n, &next, &ctx->err);
	if (rc != MAT_OK)
		return rc;
	resp.n_evidence = n;
	resp.evidence = svc_alloc(ctx, (n ? n : 1) * sizeof(*resp.evidence));
	for (size_t i = 0; i < n; i++) {
		resp.evidence[i] = svc_alloc(ctx, sizeof(Evidence));
		svc_evidence_to_proto(ctx, &list[i], resp.evidence[i]);
		mat_evidence_cleanup(&list[i]);
	}
	free(list);
	resp.next_page_token = svc_strdup(ctx, next);
	free(next);
	return svc_reply(ctx, &resp.base);
}

/* GetLiveScore: one pipelined read on the storage loop (the caller's bindings, the
 * organization, its last submitted assessment with answers and the current evidence of each
 * practice, in one round trip and one snapshot); the live rule and the reply run on the loop. */
struct live_step {
	char org[MAT_MAX_ORG_ID + 1];
	mat_time_us now;
	struct store_call sc;
	struct store_live_inputs in;
};

static enum mat_code get_live_score_then(struct svc_ctx *ctx, void *arg, enum mat_code rc)
{
	struct live_step *st = arg;
	Mlops__Maturity__V1__LiveScore out = MLOPS__MATURITY__V1__LIVE_SCORE__INIT;
	const struct mat_model *m = NULL;
	struct mat_live *live;

	if (rc != MAT_OK) {
		store_live_inputs_cleanup(&st->in);
		return rc;
	}
	/* The model of the last submitted assessment, else the default one. */
	if (st->in.submitted.id != NULL)
		m = mat_model_find(st->in.submitted.model_id);
	if (m == NULL)
		m = mat_model_find("mlops-v1");
	live = svc_alloc(ctx, sizeof(*live));
	mat_live_compute(m, st->in.evidence, st->in.n_evidence,
	                 st->in.submitted.id != NULL ? &st->in.submitted : NULL, st->now, live);

	out.organization = svc_org_name(ctx, st->org);
	out.model = svc_alloc(ctx, strlen(m->id) + sizeof("models/"));
	snprintf(out.model, strlen(m->id) + sizeof("models/"), "models/%s", m->id);
	out.score = svc_score_to_proto(ctx, m, &live->score);
	out.confidence = live->confidence;
	if (st->in.submitted.id != NULL) {
		size_t len = strlen(st->org) + strlen(st->in.submitted.id) +
		             sizeof("organizations//assessments/");
		out.assessment = svc_alloc(ctx, len);
		snprintf(out.assessment, len, "organizations/%s/assessments/%s", st->org,
		         st->in.submitted.id);
	}
	out.compute_time = svc_ts(ctx, st->now);
	out.n_practices = live->n_practices;
	out.practices =
	    svc_alloc(ctx, (live->n_practices ? live->n_practices : 1) * sizeof(*out.practices));
	for (size_t i = 0; i < live->n_practices; i++) {
		const struct mat_live_practice *p = &live->practices[i];
		Mlops__Maturity__V1__PracticeState *ps = svc_alloc(ctx, sizeof(*ps));

		mlops__maturity__v1__practice_state__init(ps);
		ps->practice_id = (char *)m->practices[i].id;
		ps->status = (Mlops__Maturity__V1__PracticeStatus)p->status;
		ps->basis = (Mlops__Maturity__V1__PracticeState__Basis)p->basis;
		if (p->evidence != NULL) {
			ps->evidence = evidence_name(ctx, p->evidence);
			ps->expire_time = svc_ts(ctx, p->evidence->expire_time);
		}
		ps->assessed_status = (Mlops__Maturity__V1__PracticeStatus)p->assessed_status;
		ps->drift = p->drift;
		out.practices[i] = ps;
	}
	rc = svc_reply(ctx, &out.base);
	store_live_inputs_cleanup(&st->in);
	return rc;
}

enum mat_code rpc_get_live_score(struct svc_ctx *ctx, const ProtobufCMessage *req_)
{
	struct live_step *st = svc_alloc(ctx, sizeof(*st));

	(void)req_; /* its organization is ctx->org (svc_methods.def) */
	memcpy(st->org, ctx->org, sizeof(st->org));
	st->now = wall_now();
	svc_store_call(ctx, &st->sc); /* carries the authorization (svc_methods.def) */
	svc_async_begin(ctx, get_live_score_then, st);
	store_live_inputs_get_async(&st->sc, st->org, st->now, &st->in, &ctx->err, svc_async_done,
	                            ctx);
	return MAT_OK;
}
