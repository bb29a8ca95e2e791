/* libFuzzer target: a CheckGate request from bytes to a signed-statement payload. The bytes are
 * decoded as a CheckGateRequest, validated like the handler does, evaluated against states
 * derived from the input (so every unmet kind is reached), and a valid request is turned into
 * the in-toto Statement, whose JSON must parse back. Crashes, leaks, sanitizer reports or a
 * statement jansson cannot read are findings. */
#include "auth_attest.h"
#include "mat_gate.h"
#include "mat_model.h"
#include "mat_score.h"
#include "mlops/maturity/v1/gate.pb-c.h"

#include <jansson.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

/* The strings a handler would see: protobuf-c guarantees NUL-terminated strings; invalid UTF-8
 * is refused before handlers run, so it is skipped here too. */
static bool utf8_ok(const char *s)
{
	json_t *j = json_string(s);
	bool ok = j != NULL;
	json_decref(j);
	return ok;
}

static bool strings_ok(const Mlops__Maturity__V1__CheckGateRequest *req)
{
	const Mlops__Maturity__V1__GateRequirement *g = req->requirement;

	if (!utf8_ok(req->organization))
		return false;
	for (size_t i = 0; g != NULL && i < g->n_min_dimension_levels; i++)
		if (!utf8_ok(g->min_dimension_levels[i]->key))
			return false;
	for (size_t i = 0; g != NULL && i < g->n_required_practice_ids; i++)
		if (!utf8_ok(g->required_practice_ids[i]))
			return false;
	for (size_t i = 0; i < req->n_subjects; i++) {
		if (!utf8_ok(req->subjects[i]->name))
			return false;
		for (size_t k = 0; k < req->subjects[i]->n_digest; k++)
			if (!utf8_ok(req->subjects[i]->digest[k]->key) ||
			    !utf8_ok(req->subjects[i]->digest[k]->value))
				return false;
	}
	return true;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	const struct mat_model *m = mat_model_find("mlops-v1");
	Mlops__Maturity__V1__CheckGateRequest *req =
	    mlops__maturity__v1__check_gate_request__unpack(NULL, size, data);
	const Mlops__Maturity__V1__GateRequirement *g;
	struct mat_gate_requirement r = {0};
	struct mat_gate_dimension_level *dl = NULL;
	struct mat_gate_subject *subj = NULL;
	struct mat_gate_digest **dg = NULL;
	enum mat_status st[MAT_MAX_PRACTICES], live_st[MAT_MAX_PRACTICES];
	mat_time_us *observed = NULL;
	struct mat_score assessed, live;
	struct mat_gate_result *res = NULL;
	struct mat_error err;

	static const uint8_t zero = 0;

	if (req == NULL)
		return 0;
	if (size == 0) { /* an empty message decodes; the state derivation below needs a byte */
		data = &zero;
		size = 1;
	}
	if (!strings_ok(req))
		goto out;
	g = req->requirement;
	if (g != NULL) {
		r.min_level = g->min_level;
		dl = calloc(g->n_min_dimension_levels + 1, sizeof(*dl));
		for (size_t i = 0; i < g->n_min_dimension_levels; i++)
			dl[i] = (struct mat_gate_dimension_level){
			    g->min_dimension_levels[i]->key, g->min_dimension_levels[i]->value};
		r.min_dimension_levels = dl;
		r.n_min_dimension_levels = g->n_min_dimension_levels;
		r.required_practice_ids = (const char *const *)g->required_practice_ids;
		r.n_required_practice_ids = g->n_required_practice_ids;
		if (g->max_evidence_age != NULL) {
			r.has_max_evidence_age = true;
			r.max_evidence_age_seconds = g->max_evidence_age->seconds;
			r.max_evidence_age_nanos = g->max_evidence_age->nanos;
		}
		r.live = g->live;
	}
	subj = calloc(req->n_subjects + 1, sizeof(*subj));
	dg = calloc(req->n_subjects + 1, sizeof(*dg));
	for (size_t i = 0; i < req->n_subjects; i++) {
		const Mlops__Maturity__V1__Subject *s = req->subjects[i];
		dg[i] = calloc(s->n_digest + 1, sizeof(*dg[i]));
		for (size_t k = 0; k < s->n_digest; k++)
			dg[i][k] = (struct mat_gate_digest){s->digest[k]->key, s->digest[k]->value};
		subj[i] = (struct mat_gate_subject){s->name, dg[i], s->n_digest};
	}
	mat_error_clear(&err);
	if (!mat_gate_validate(m, &r, subj, req->n_subjects, &err))
		goto out;

	/* States from the input bytes: statuses cycle through every value, evidence times spread
	 * around the age boundary. */
	for (size_t i = 0; i < m->n_practices; i++) {
		st[i] = (enum mat_status)(data[i % size] % 5);
		live_st[i] = (enum mat_status)(data[(i * 7 + 3) % size] % 5);
	}
	mat_score_compute(m, st, &assessed);
	mat_score_compute(m, live_st, &live);
	observed = calloc(r.n_required_practice_ids + 1, sizeof(*observed));
	for (size_t i = 0; i < r.n_required_practice_ids; i++)
		observed[i] =
		    data[i % size] % 3 == 0 ? 0 : INT64_C(1800000000000000) - data[i % size];
	res = calloc(1, sizeof(*res));
	mat_gate_evaluate(m, &r,
	                  &(struct mat_gate_inputs){.reviewed_level = data[0] % 5,
	                                            .assessed = &assessed,
	                                            .assessed_status = st,
	                                            .live = &live,
	                                            .live_status = live_st,
	                                            .evidence_observe_time = observed,
	                                            .now = INT64_C(1800000000000000)},
	                  res);
	if (res->allowed != (res->n_unmet == 0))
		abort();
	{
		struct auth_attest_decision d = {.organization = req->organization,
		                                 .assessment = "",
		                                 .decide_time = INT64_C(1800000000000000),
		                                 .issuer = "fuzz",
		                                 .requirement = &r,
		                                 .result = res,
		                                 .subjects = subj,
		                                 .n_subjects = req->n_subjects};
		size_t len;
		char *json = auth_attest_statement(&d, &len);
		json_t *back;

		if (json == NULL)
			abort();
		back = json_loadb(json, len, 0, NULL);
		if (back == NULL)
			abort(); /* the statement must be JSON a verifier can read */
		json_decref(back);
		free(json);
	}
out:
	for (size_t i = 0; dg != NULL && i < req->n_subjects; i++)
		free(dg[i]);
	free(dg);
	free(subj);
	free(dl);
	free(observed);
	free(res);
	mlops__maturity__v1__check_gate_request__free_unpacked(req, NULL);
	return 0;
}
