/* GateService: "may this organization ship?" CheckGate reads the organization, its last
 * submitted assessment and its current evidence in one round trip, judges the requirement with
 * maturity/mat_gate.c and, when asked, signs the decision with auth/auth_attest.c and records
 * that it did in the audit log: a signature is a statement the service made. docs/gates.md is
 * the user's side of it. */
#include "auth_attest.h"
#include "mat_gate.h"
#include "mat_live.h"
#include "mat_model.h"
#include "mat_score.h"
#include "mat_validate.h"
#include "mlops/maturity/v1/gate.pb-c.h"
#include "svc.h"
#include "svc_attest.h"
#include "svc_convert.h"
#include "svc_methods.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

typedef Mlops__Maturity__V1__CheckGateRequest CheckGateRequest;
typedef Mlops__Maturity__V1__GateDecision GateDecision;

static mat_time_us wall_now(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_REALTIME, &ts);
	return (mat_time_us)ts.tv_sec * 1000000 + ts.tv_nsec / 1000;
}

/* The request as maturity/'s structs, borrowing its strings (arrays in call memory). */
static void requirement_in(struct svc_ctx *ctx, const CheckGateRequest *req,
                           struct mat_gate_requirement *r, struct mat_gate_subject **subjects)
{
	const Mlops__Maturity__V1__GateRequirement *g = req->requirement;
	struct mat_gate_dimension_level *dl;
	struct mat_gate_subject *subj;

	memset(r, 0, sizeof(*r));
	if (g != NULL) {
		r->min_level = g->min_level;
		dl = svc_alloc(ctx, (g->n_min_dimension_levels + 1) * sizeof(*dl));
		for (size_t i = 0; i < g->n_min_dimension_levels; i++) {
			dl[i].dimension_id = g->min_dimension_levels[i]->key;
			dl[i].level = g->min_dimension_levels[i]->value;
		}
		r->min_dimension_levels = dl;
		r->n_min_dimension_levels = g->n_min_dimension_levels;
		r->required_practice_ids = (const char *const *)g->required_practice_ids;
		r->n_required_practice_ids = g->n_required_practice_ids;
		if (g->max_evidence_age != NULL) {
			r->has_max_evidence_age = true;
			r->max_evidence_age_seconds = g->max_evidence_age->seconds;
			r->max_evidence_age_nanos = g->max_evidence_age->nanos;
		}
		r->live = g->live;
	}
	subj = svc_alloc(ctx, (req->n_subjects + 1) * sizeof(*subj));
	for (size_t i = 0; i < req->n_subjects; i++) {
		const Mlops__Maturity__V1__Subject *s = req->subjects[i];
		struct mat_gate_digest *dg = svc_alloc(ctx, (s->n_digest + 1) * sizeof(*dg));

		for (size_t k = 0; k < s->n_digest; k++) {
			dg[k].algorithm = s->digest[k]->key;
			dg[k].value = s->digest[k]->value;
		}
		subj[i] = (struct mat_gate_subject){s->name, dg, s->n_digest};
	}
	*subjects = subj;
}

static void unmet_out(struct svc_ctx *ctx, const struct mat_gate_result *res, GateDecision *out)
{
	out->n_unmet = res->n_unmet;
	out->unmet = svc_alloc(ctx, (res->n_unmet + 1) * sizeof(*out->unmet));
	for (size_t i = 0; i < res->n_unmet; i++) {
		const struct mat_gate_unmet *u = &res->unmet[i];
		Mlops__Maturity__V1__UnmetRequirement *p = svc_alloc(ctx, sizeof(*p));

		mlops__maturity__v1__unmet_requirement__init(p);
		p->field = svc_strdup(ctx, u->field);
		p->message = svc_strdup(ctx, u->message);
		p->dimension_id = (char *)(u->dimension_id != NULL ? u->dimension_id : "");
		p->practice_id = (char *)(u->practice_id != NULL ? u->practice_id : "");
		p->required_level = u->required_level;
		p->actual_level = u->actual_level;
		out->unmet[i] = p;
	}
}

/* Signs the decision into out->attestation and audits it. */
static enum mat_code attest(struct svc_ctx *ctx, struct auth_attest_keys *keys,
                            const struct auth_attest_decision *d, struct store_call *sc,
                            GateDecision *out)
{
	Mlops__Maturity__V1__Envelope *env = svc_alloc(ctx, sizeof(*env));
	Mlops__Maturity__V1__EnvelopeSignature *es = svc_alloc(ctx, sizeof(*es));
	unsigned char *sig = NULL;
	size_t len = 0, sig_len = 0;
	const char *keyid = NULL;
	char *payload = auth_attest_statement(d, &len);
	enum mat_code rc;

	if (payload == NULL)
		return mat_error_set(&ctx->err, MAT_INTERNAL,
		                     "out of memory building the statement");
	rc = auth_attest_sign(keys, AUTH_ATTEST_PAYLOAD_TYPE, (const unsigned char *)payload, len,
	                      &sig, &sig_len, &keyid, &ctx->err);
	if (rc != MAT_OK) {
		free(payload);
		return rc;
	}
	mlops__maturity__v1__envelope__init(env);
	mlops__maturity__v1__envelope_signature__init(es);
	env->payload_type = AUTH_ATTEST_PAYLOAD_TYPE;
	env->payload.data = svc_alloc(ctx, len + 1);
	memcpy(env->payload.data, payload, len);
	env->payload.len = len;
	es->keyid = svc_strdup(ctx, keyid);
	es->sig.data = svc_alloc(ctx, sig_len + 1);
	memcpy(es->sig.data, sig, sig_len);
	es->sig.len = sig_len;
	env->n_signatures = 1;
	env->signatures = svc_alloc(ctx, sizeof(*env->signatures));
	env->signatures[0] = es;
	free(payload);
	free(sig);
	/* No signed decision leaves without its audit row. */
	rc = store_audit_attested(sc, d->organization, d->result->allowed, &ctx->err);
	if (rc != MAT_OK)
		return rc;
	out->attestation = env;
	return MAT_OK;
}

/* CheckGate: one pipelined read on the storage loop (the caller's bindings, the organization,
 * its last submitted assessment and current evidence); the gate rule and the reply run on the
 * loop, except for a signed decision, whose audit row is a write (a handler thread). */
struct gate_step {
	const CheckGateRequest *req; /* lives as long as the call */
	char org[MAT_MAX_ORG_ID + 1];
	struct mat_gate_requirement r;
	struct mat_gate_subject *subjects;
	struct auth_attest_keys *keys;
	mat_time_us now;
	enum mat_code early; /* the request's own failure, decided after authorization */
	struct store_call sc;
	struct mat_error serr;
	struct store_live_inputs in;
};

static enum mat_code check_gate_then(struct svc_ctx *ctx, void *arg, enum mat_code rc)
{
	struct gate_step *st = arg;
	const CheckGateRequest *req = st->req;
	GateDecision out = MLOPS__MATURITY__V1__GATE_DECISION__INIT;
	const char *org = st->org;
	const struct mat_model *m = mat_model_find("mlops-v1");
	struct mat_gate_requirement r = st->r;
	struct mat_gate_subject *subjects = st->subjects;
	enum mat_status *status;
	struct mat_score *assessed;
	struct mat_live *live = NULL;
	struct mat_gate_inputs gi = {0};
	struct mat_gate_result *res;
	mat_time_us *observed;
	mat_time_us now = st->now;
	const struct mat_assessment *submitted;

	if (st->early != MAT_OK) { /* the engine's refusal comes first, then the request's error */
		rc = st->early;
		goto out;
	}
	if (rc != MAT_OK) {
		ctx->err = st->serr;
		goto out;
	}
	submitted = st->in.submitted.id != NULL ? &st->in.submitted : NULL;
	if (submitted != NULL && mat_model_find(submitted->model_id) != m) {
		rc = mat_error_set(&ctx->err, MAT_INTERNAL, "assessment pins unknown model %s",
		                   submitted->model_id);
		goto out;
	}

	/* The reviewed side: the last submitted assessment's answers (none: nothing satisfied). */
	status = svc_alloc(ctx, MAT_MAX_PRACTICES * sizeof(*status));
	assessed = svc_alloc(ctx, sizeof(*assessed));
	if (submitted != NULL)
		mat_answers_to_status(m, submitted->answers, submitted->n_answers, status);
	mat_score_compute(m, status, assessed);
	gi.reviewed_level = st->in.org.current_level;
	gi.assessed = assessed;
	gi.assessed_status = status;
	if (r.live) {
		enum mat_status *ls = svc_alloc(ctx, MAT_MAX_PRACTICES * sizeof(*ls));
		live = svc_alloc(ctx, sizeof(*live));
		mat_live_compute(m, st->in.evidence, st->in.n_evidence, submitted, now, live);
		for (size_t i = 0; i < live->n_practices; i++)
			ls[i] = live->practices[i].status;
		gi.live = &live->score;
		gi.live_status = ls;
	}
	observed = svc_alloc(ctx, (r.n_required_practice_ids + 1) * sizeof(*observed));
	for (size_t i = 0; r.has_max_evidence_age && i < r.n_required_practice_ids; i++) {
		const struct mat_evidence *e = mat_evidence_current(
		    st->in.evidence, st->in.n_evidence, r.required_practice_ids[i], now);
		observed[i] = e != NULL ? e->observe_time : 0;
	}
	gi.evidence_observe_time = observed;
	gi.now = now;
	res = svc_alloc(ctx, sizeof(*res));
	mat_gate_evaluate(m, &r, &gi, res);

	out.organization = svc_org_name(ctx, org);
	out.allowed = res->allowed;
	unmet_out(ctx, res, &out);
	out.level = res->level;
	out.score = svc_score_to_proto(ctx, m, res->score);
	if (submitted != NULL) {
		size_t len =
		    strlen(org) + strlen(submitted->id) + sizeof("organizations//assessments/");
		out.assessment = svc_alloc(ctx, len);
		snprintf(out.assessment, len, "organizations/%s/assessments/%s", org,
		         submitted->id);
	}
	out.decide_time = svc_ts(ctx, now);
	if (req->attest) {
		struct auth_attest_decision d = {
		    .organization = out.organization,
		    .assessment = out.assessment,
		    .decide_time = now,
		    .issuer = svc_server_config(ctx->srv)->attestation_issuer,
		    .requirement = &r,
		    .result = res,
		    .subjects = subjects,
		    .n_subjects = req->n_subjects,
		};
		rc = attest(ctx, st->keys, &d, &st->sc, &out);
		if (rc != MAT_OK)
			goto out;
	}
	rc = svc_reply(ctx, &out.base);
out:
	auth_attest_keys_unref(st->keys);
	st->keys = NULL;
	store_live_inputs_cleanup(&st->in);
	return rc;
}

enum mat_code rpc_check_gate(struct svc_ctx *ctx, const ProtobufCMessage *req_)
{
	const CheckGateRequest *req = (const void *)req_;
	const struct mat_model *m = mat_model_find("mlops-v1");
	struct gate_step *st = svc_alloc(ctx, sizeof(*st));

	st->req = req;
	st->now = wall_now();
	memcpy(st->org, ctx->org, sizeof(st->org)); /* parsed by the engine */
	requirement_in(ctx, req, &st->r, &st->subjects);
	/* One model is built in; ids are checked against it before any round trip. */
	if (!mat_gate_validate(m, &st->r, st->subjects, req->n_subjects, &ctx->err)) {
		st->early = MAT_INVALID;
	} else if (req->attest) {
		st->keys = svc_attest_keys();
		if (!auth_attest_keys_can_sign(st->keys)) {
			auth_attest_keys_unref(st->keys);
			st->keys = NULL;
			mat_error_set(&ctx->err, MAT_PRECONDITION,
			              "attest needs a signing key: start maturityd with "
			              "--attestation-key");
			st->early = MAT_PRECONDITION;
		} else {
			svc_async_may_block(ctx); /* the signed decision is audited */
		}
	}
	mat_error_clear(&st->serr);
	svc_store_call(ctx, &st->sc); /* carries the authorization (svc_methods.def) */
	svc_async_begin(ctx, check_gate_then, st);
	store_live_inputs_get_async(&st->sc, st->org, st->now, &st->in, &st->serr, svc_async_done,
	                            ctx);
	return MAT_OK;
}

enum mat_code rpc_list_attestation_keys(struct svc_ctx *ctx, const ProtobufCMessage *req_)
{
	Mlops__Maturity__V1__ListAttestationKeysResponse out =
	    MLOPS__MATURITY__V1__LIST_ATTESTATION_KEYS_RESPONSE__INIT;
	struct auth_attest_keys *keys = svc_attest_keys();
	size_t n = auth_attest_keys_count(keys);
	enum mat_code rc;

	(void)req_;
	out.n_keys = n;
	out.keys = svc_alloc(ctx, (n + 1) * sizeof(*out.keys));
	for (size_t i = 0; i < n; i++) {
		Mlops__Maturity__V1__AttestationKey *k = svc_alloc(ctx, sizeof(*k));
		struct auth_attest_key_info info;

		auth_attest_keys_info(keys, i, &info);
		mlops__maturity__v1__attestation_key__init(k);
		k->keyid = svc_strdup(ctx, info.keyid);
		k->algorithm = svc_strdup(ctx, info.algorithm);
		k->public_key_pem = svc_strdup(ctx, info.public_key_pem);
		k->active = info.active;
		out.keys[i] = k;
	}
	rc = svc_reply(ctx, &out.base);
	auth_attest_keys_unref(keys);
	return rc;
}
