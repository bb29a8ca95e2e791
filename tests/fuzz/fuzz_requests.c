/* libFuzzer target: every request path from bytes to domain. The first byte picks the method
 * (its request type); the rest is decoded with protobuf-c, checked for UTF-8 in every string,
 * and put through the validation its handler applies (names, ids, page sizes, labels, answers).
 * Crashes, leaks or sanitizer reports are findings. */
#include "google/rpc/status.pb-c.h"
#include "grpc/health/v1/health.pb-c.h"
#include "grpc/reflection/v1/reflection.pb-c.h"
#include "mat_model.h"
#include "mat_validate.h"
#include "mlops/maturity/v1/access.pb-c.h"
#include "mlops/maturity/v1/assessment.pb-c.h"
#include "mlops/maturity/v1/evidence.pb-c.h"
#include "mlops/maturity/v1/model.pb-c.h"
#include "mlops/maturity/v1/organization.pb-c.h"
#include "mlops/maturity/v1/reporting.pb-c.h"
#include "mlops/maturity/v1/scoring.pb-c.h"
#include "mlops/maturity/v1/transition.pb-c.h"
#include "svc_status.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

static const ProtobufCMessageDescriptor *const requests[] = {
    &mlops__maturity__v1__get_maturity_model_request__descriptor,
    &mlops__maturity__v1__list_maturity_models_request__descriptor,
    &mlops__maturity__v1__create_organization_request__descriptor,
    &mlops__maturity__v1__get_organization_request__descriptor,
    &mlops__maturity__v1__list_organizations_request__descriptor,
    &mlops__maturity__v1__update_organization_request__descriptor,
    &mlops__maturity__v1__delete_organization_request__descriptor,
    &mlops__maturity__v1__create_assessment_request__descriptor,
    &mlops__maturity__v1__get_assessment_request__descriptor,
    &mlops__maturity__v1__list_assessments_request__descriptor,
    &mlops__maturity__v1__update_answers_request__descriptor,
    &mlops__maturity__v1__submit_assessment_request__descriptor,
    &mlops__maturity__v1__delete_assessment_request__descriptor,
    &mlops__maturity__v1__evaluate_answers_request__descriptor,
    &mlops__maturity__v1__get_roadmap_request__descriptor,
    &mlops__maturity__v1__get_transition_request__descriptor,
    &mlops__maturity__v1__list_transitions_request__descriptor,
    &mlops__maturity__v1__approve_transition_request__descriptor,
    &mlops__maturity__v1__reject_transition_request__descriptor,
    &mlops__maturity__v1__get_portfolio_summary_request__descriptor,
    &mlops__maturity__v1__export_assessments_request__descriptor,
    &mlops__maturity__v1__export_transitions_request__descriptor,
    &mlops__maturity__v1__who_am_irequest__descriptor,
    &mlops__maturity__v1__create_role_binding_request__descriptor,
    &mlops__maturity__v1__delete_role_binding_request__descriptor,
    &mlops__maturity__v1__list_role_bindings_request__descriptor,
    &mlops__maturity__v1__list_audit_events_request__descriptor,
    &grpc__health__v1__health_check_request__descriptor,
    &grpc__reflection__v1__server_reflection_request__descriptor,
    &mlops__maturity__v1__report_evidence_request__descriptor,
    &mlops__maturity__v1__batch_report_evidence_request__descriptor,
    &mlops__maturity__v1__get_evidence_request__descriptor,
    &mlops__maturity__v1__list_evidence_request__descriptor,
    &mlops__maturity__v1__get_live_score_request__descriptor,
};
#define N_REQUESTS (sizeof(requests) / sizeof(requests[0]))

static void answers(Mlops__Maturity__V1__Answer **in, size_t n, struct mat_error *err)
{
	const struct mat_model *m = mat_model_find("models/mlops-v1");
	struct mat_answer *a;
	enum mat_status st[MAT_MAX_PRACTICES];

	if (n > MAT_MAX_ANSWERS)
		return;
	a = calloc(n ? n : 1, sizeof(*a));
	for (size_t i = 0; i < n; i++) {
		a[i].practice_id = in[i]->practice_id;
		a[i].status = (enum mat_status)in[i]->status;
		a[i].note = in[i]->note;
		a[i].evidence_uri = in[i]->evidence_uri;
	}
	if (mat_answers_validate(m, a, n, "answers", err))
		mat_answers_to_status(m, a, n, st);
	free(a);
}

/* Evidence as the handler validates it (timestamps converted as svc_ts_in does, unchecked). */
static void evidence(Mlops__Maturity__V1__Evidence *const *in, size_t n, struct mat_error *err)
{
	for (size_t i = 0; i < n && i <= MAT_MAX_EVIDENCE_BATCH; i++) {
		struct mat_evidence e = {0};
		const Mlops__Maturity__V1__Evidence *x = in[i];
		if (x == NULL)
			continue;
		e.practice_id = x->practice_id;
		e.status = (enum mat_status)x->status;
		e.source = x->source;
		e.uri = x->uri;
		e.digest = x->digest;
		e.note = x->note;
		if (x->observe_time != NULL)
			e.observe_time =
			    (mat_time_us)((uint64_t)x->observe_time->seconds * 1000000u);
		if (x->expire_time != NULL)
			e.expire_time = (mat_time_us)((uint64_t)x->expire_time->seconds * 1000000u);
		(void)mat_evidence_validate(&e, 0, i ? "evidence[1]" : "evidence", err);
	}
}

static void name_checks(const char *s, struct mat_error *err)
{
	char lower[37];
	if (s == NULL)
		return;
	(void)mat_org_id_valid(s);
	(void)mat_label_key_valid(s);
	if (mat_uuid_valid(s))
		mat_uuid_lower(s, lower);
	(void)mat_check_string(err, "f", s, MAT_MAX_DISPLAY_NAME, false);
	(void)mat_model_find(s);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	ProtobufCMessage *m;
	struct mat_error err;

	if (size < 1)
		return 0;
	m = protobuf_c_message_unpack(requests[data[0] % N_REQUESTS], NULL, size - 1, data + 1);
	if (m == NULL)
		return 0;
	mat_error_clear(&err);
	if (svc_check_utf8(m, &err)) {
		/* Every string of the message through the shared validators. */
		const ProtobufCMessageDescriptor *d = m->descriptor;
		for (unsigned i = 0; i < d->n_fields; i++) {
			const ProtobufCFieldDescriptor *f = &d->fields[i];
			if (f->type == PROTOBUF_C_TYPE_STRING &&
			    f->label != PROTOBUF_C_LABEL_REPEATED &&
			    !(f->flags & PROTOBUF_C_FIELD_FLAG_ONEOF))
				name_checks(*(char **)((char *)m + f->offset), &err);
		}
		if (d == &mlops__maturity__v1__update_answers_request__descriptor) {
			Mlops__Maturity__V1__UpdateAnswersRequest *r = (void *)m;
			answers(r->answers, r->n_answers, &err);
		} else if (d == &mlops__maturity__v1__report_evidence_request__descriptor) {
			Mlops__Maturity__V1__ReportEvidenceRequest *r = (void *)m;
			evidence(&r->evidence, r->evidence != NULL, &err);
		} else if (d == &mlops__maturity__v1__batch_report_evidence_request__descriptor) {
			Mlops__Maturity__V1__BatchReportEvidenceRequest *r = (void *)m;
			evidence(r->evidence, r->n_evidence, &err);
		} else if (d == &mlops__maturity__v1__evaluate_answers_request__descriptor) {
			Mlops__Maturity__V1__EvaluateAnswersRequest *r = (void *)m;
			answers(r->answers, r->n_answers, &err);
		}
	}
	protobuf_c_message_free_unpacked(m, NULL);
	return 0;
}
