/* Access control over the real server (docs/permissions.md), table-driven: every RPC x every role,
 * bound globally and on the caller's own organization, called on its own organization and on
 * another -> OK or PERMISSION_DENIED as the rules of docs/permissions.md say (written out here
 * independently of auth/'s table), plus an unbound principal and a bootstrap admin; then the same
 * matrix with every principal asserted through a delegator (x-on-behalf-of). Also list
 * filtering, revocation seen on the next call, audit of mutations and denials, and four-eyes. */
#include "itest.h"

// clang-format off
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <cmocka.h>
// clang-format on
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "google/protobuf/empty.pb-c.h"
#include "google/protobuf/field_mask.pb-c.h"
#include "grpc/health/v1/health.pb-c.h"
#include "mlops/maturity/v1/access.pb-c.h"
#include "mlops/maturity/v1/assessment.pb-c.h"
#include "mlops/maturity/v1/evidence.pb-c.h"
#include "mlops/maturity/v1/gate.pb-c.h"
#include "mlops/maturity/v1/model.pb-c.h"
#include "mlops/maturity/v1/organization.pb-c.h"
#include "mlops/maturity/v1/reporting.pb-c.h"
#include "mlops/maturity/v1/scoring.pb-c.h"
#include "mlops/maturity/v1/transition.pb-c.h"

#define WHO "portal" /* the principal whose bindings change */
#define WHO_PRINCIPAL "spiffe://maturityd.dev/portal"
#define GATEWAY_PRINCIPAL "spiffe://maturityd.dev/gateway" /* --delegator */
#define OWN "own-org"
#define OTHER "other-org"

enum perm { P_ANY, P_ADMIN, P_VIEW, P_EDIT, P_REVIEW, P_GLOBAL, P_VIEW_OR_GLOBAL, P_EVIDENCE };

static int counter;

/* --- calls: each returns the status code; `org` is the organization the call is about ------- */

static grpc_status_code call(const char *who, const char *method, const void *req)
{
	struct tresult r;
	grpc_status_code st = tclient_call(itest_client(who), method, req, NULL, NULL, 10000, &r);
	if (st != GRPC_STATUS_OK && st != GRPC_STATUS_PERMISSION_DENIED)
		fprintf(stderr, "  %s as %s: %s: %s\n", method, who, itest_code_name(st),
		        r.message);
	tresult_cleanup(&r);
	return st;
}

static grpc_status_code stream(const char *who, const char *method, const void *req,
                               const ProtobufCMessageDescriptor *d)
{
	struct tstream *s = tclient_stream_open(itest_client(who), method, req, 10000);
	ProtobufCMessage *m;
	struct tresult r;
	grpc_status_code st;

	while (tclient_stream_next(s, d, &m))
		protobuf_c_message_free_unpacked(m, NULL);
	st = tclient_stream_finish(s, &r);
	if (st != GRPC_STATUS_OK && st != GRPC_STATUS_PERMISSION_DENIED)
		fprintf(stderr, "  %s as %s: %s: %s\n", method, who, itest_code_name(st),
		        r.message);
	tresult_cleanup(&r);
	return st;
}

static char *orgname(const char *org, char *buf)
{
	sprintf(buf, "organizations/%s", org);
	return buf;
}

/* A new draft assessment of org, made by the admin; its name into out. */
static void new_draft(const char *org, int level1_answers, char *out)
{
	static const char *const l1[] = {"people.regular_communication",
	                                 "model_creation.automated_data_pipeline",
	                                 "model_release.versioned_scoring_scripts",
	                                 "model_release.basic_model_integration_tests",
	                                 "application_integration.app_unit_tests",
	                                 "application_integration.automated_builds",
	                                 "application_integration.operational_metrics"};
	Mlops__Maturity__V1__CreateAssessmentRequest c =
	    MLOPS__MATURITY__V1__CREATE_ASSESSMENT_REQUEST__INIT;
	char parent[96];
	Mlops__Maturity__V1__Assessment *a;

	c.parent = orgname(org, parent);
	a = itest_call("admin", "/mlops.maturity.v1.AssessmentService/CreateAssessment", &c,
	               &mlops__maturity__v1__assessment__descriptor, GRPC_STATUS_OK);
	strcpy(out, a->name);
	protobuf_c_message_free_unpacked(&a->base, NULL);
	if (level1_answers) {
		Mlops__Maturity__V1__UpdateAnswersRequest u =
		    MLOPS__MATURITY__V1__UPDATE_ANSWERS_REQUEST__INIT;
		Mlops__Maturity__V1__Answer ans[7], *p[7];
		for (int i = 0; i < 7; i++) {
			mlops__maturity__v1__answer__init(&ans[i]);
			ans[i].practice_id = (char *)l1[i];
			ans[i].status =
			    MLOPS__MATURITY__V1__PRACTICE_STATUS__PRACTICE_STATUS_IMPLEMENTED;
			p[i] = &ans[i];
		}
		u.name = out;
		u.answers = p;
		u.n_answers = 7;
		void *r =
		    itest_call("admin", "/mlops.maturity.v1.AssessmentService/UpdateAnswers", &u,
		               &mlops__maturity__v1__assessment__descriptor, GRPC_STATUS_OK);
		protobuf_c_message_free_unpacked(r, NULL);
	}
}

static int org_level(const char *org)
{
	Mlops__Maturity__V1__GetOrganizationRequest g =
	    MLOPS__MATURITY__V1__GET_ORGANIZATION_REQUEST__INIT;
	char name[96];
	g.name = orgname(org, name);
	Mlops__Maturity__V1__Organization *o =
	    itest_call("admin", "/mlops.maturity.v1.OrganizationService/GetOrganization", &g,
	               &mlops__maturity__v1__organization__descriptor, GRPC_STATUS_OK);
	int level = o->current_level;
	protobuf_c_message_free_unpacked(&o->base, NULL);
	return level;
}

/* A fresh PROPOSED transition of org (submitted by the admin); its name into out. */
static void new_proposal(const char *org, char *out)
{
	char draft[160];
	Mlops__Maturity__V1__SubmitAssessmentRequest s =
	    MLOPS__MATURITY__V1__SUBMIT_ASSESSMENT_REQUEST__INIT;
	Mlops__Maturity__V1__ListTransitionsRequest l =
	    MLOPS__MATURITY__V1__LIST_TRANSITIONS_REQUEST__INIT;
	char parent[96];

	/* A level different from the current one: 0 <-> 1. Submitted by dnsclient (a global
	 * editor), so that four-eyes lets every reviewer under test, the admin included, decide. */
	new_draft(org, org_level(org) == 0, draft);
	s.name = draft;
	void *r = itest_call("dnsclient", "/mlops.maturity.v1.AssessmentService/SubmitAssessment",
	                     &s, &mlops__maturity__v1__assessment__descriptor, GRPC_STATUS_OK);
	protobuf_c_message_free_unpacked(r, NULL);
	l.parent = orgname(org, parent);
	l.state = MLOPS__MATURITY__V1__LEVEL_TRANSITION__STATE__STATE_PROPOSED;
	Mlops__Maturity__V1__ListTransitionsResponse *lr =
	    itest_call("admin", "/mlops.maturity.v1.TransitionService/ListTransitions", &l,
	               &mlops__maturity__v1__list_transitions_response__descriptor, GRPC_STATUS_OK);
	assert_int_equal(lr->n_transitions, 1);
	strcpy(out, lr->transitions[0]->name);
	protobuf_c_message_free_unpacked(&lr->base, NULL);
}

#define REQ(type, init) type req = init
#define M(svc, m) "/mlops.maturity.v1." svc "/" m

static grpc_status_code r_get_model(const char *who, const char *org)
{
	REQ(Mlops__Maturity__V1__GetMaturityModelRequest,
	    MLOPS__MATURITY__V1__GET_MATURITY_MODEL_REQUEST__INIT);
	req.name = "models/mlops-v1";
	return call(who, M("ModelService", "GetMaturityModel"), &req);
}
static grpc_status_code r_list_models(const char *who, const char *org)
{
	REQ(Mlops__Maturity__V1__ListMaturityModelsRequest,
	    MLOPS__MATURITY__V1__LIST_MATURITY_MODELS_REQUEST__INIT);
	return call(who, M("ModelService", "ListMaturityModels"), &req);
}
static grpc_status_code create_org_as(const char *who, const char *id)
{
	REQ(Mlops__Maturity__V1__CreateOrganizationRequest,
	    MLOPS__MATURITY__V1__CREATE_ORGANIZATION_REQUEST__INIT);
	Mlops__Maturity__V1__Organization o = MLOPS__MATURITY__V1__ORGANIZATION__INIT;
	req.organization = &o;
	req.organization_id = (char *)id;
	return call(who, M("OrganizationService", "CreateOrganization"), &req);
}
static grpc_status_code r_create_org(const char *who, const char *org)
{
	char id[32];
	sprintf(id, "new-%d", counter++);
	return create_org_as(who, id);
}
static grpc_status_code r_get_org(const char *who, const char *org)
{
	REQ(Mlops__Maturity__V1__GetOrganizationRequest,
	    MLOPS__MATURITY__V1__GET_ORGANIZATION_REQUEST__INIT);
	char n[96];
	req.name = orgname(org, n);
	return call(who, M("OrganizationService", "GetOrganization"), &req);
}
static grpc_status_code r_list_orgs(const char *who, const char *org)
{
	REQ(Mlops__Maturity__V1__ListOrganizationsRequest,
	    MLOPS__MATURITY__V1__LIST_ORGANIZATIONS_REQUEST__INIT);
	return call(who, M("OrganizationService", "ListOrganizations"), &req);
}
static grpc_status_code r_update_org(const char *who, const char *org)
{
	REQ(Mlops__Maturity__V1__UpdateOrganizationRequest,
	    MLOPS__MATURITY__V1__UPDATE_ORGANIZATION_REQUEST__INIT);
	Mlops__Maturity__V1__Organization o = MLOPS__MATURITY__V1__ORGANIZATION__INIT;
	Google__Protobuf__FieldMask mask = GOOGLE__PROTOBUF__FIELD_MASK__INIT;
	char *paths[] = {"display_name"};
	char n[96];
	o.name = orgname(org, n);
	o.display_name = "renamed";
	mask.n_paths = 1;
	mask.paths = paths;
	req.organization = &o;
	req.update_mask = &mask;
	return call(who, M("OrganizationService", "UpdateOrganization"), &req);
}
static grpc_status_code r_delete_org(const char *who, const char *org)
{
	REQ(Mlops__Maturity__V1__DeleteOrganizationRequest,
	    MLOPS__MATURITY__V1__DELETE_ORGANIZATION_REQUEST__INIT);
	char id[32], n[96];
	sprintf(id, "doomed-%d", counter++);
	assert_int_equal(create_org_as("admin", id), GRPC_STATUS_OK);
	req.name = orgname(id, n);
	return call(who, M("OrganizationService", "DeleteOrganization"), &req);
}
static grpc_status_code r_create_assessment(const char *who, const char *org)
{
	REQ(Mlops__Maturity__V1__CreateAssessmentRequest,
	    MLOPS__MATURITY__V1__CREATE_ASSESSMENT_REQUEST__INIT);
	char n[96];
	req.parent = orgname(org, n);
	return call(who, M("AssessmentService", "CreateAssessment"), &req);
}
static grpc_status_code r_get_assessment(const char *who, const char *org)
{
	REQ(Mlops__Maturity__V1__GetAssessmentRequest,
	    MLOPS__MATURITY__V1__GET_ASSESSMENT_REQUEST__INIT);
	char d[160];
	new_draft(org, 0, d);
	req.name = d;
	return call(who, M("AssessmentService", "GetAssessment"), &req);
}
static grpc_status_code r_list_assessments(const char *who, const char *org)
{
	REQ(Mlops__Maturity__V1__ListAssessmentsRequest,
	    MLOPS__MATURITY__V1__LIST_ASSESSMENTS_REQUEST__INIT);
	char n[96];
	req.parent = orgname(org, n);
	req.page_size = 1;
	return call(who, M("AssessmentService", "ListAssessments"), &req);
}
static grpc_status_code r_update_answers(const char *who, const char *org)
{
	REQ(Mlops__Maturity__V1__UpdateAnswersRequest,
	    MLOPS__MATURITY__V1__UPDATE_ANSWERS_REQUEST__INIT);
	Mlops__Maturity__V1__Answer a = MLOPS__MATURITY__V1__ANSWER__INIT, *p = &a;
	char d[160];
	new_draft(org, 0, d);
	a.practice_id = "people.regular_communication";
	a.status = MLOPS__MATURITY__V1__PRACTICE_STATUS__PRACTICE_STATUS_PARTIAL;
	req.name = d;
	req.answers = &p;
	req.n_answers = 1;
	return call(who, M("AssessmentService", "UpdateAnswers"), &req);
}
static grpc_status_code r_submit(const char *who, const char *org)
{
	REQ(Mlops__Maturity__V1__SubmitAssessmentRequest,
	    MLOPS__MATURITY__V1__SUBMIT_ASSESSMENT_REQUEST__INIT);
	char d[160];
	/* The same level as the organization's: no transition, so proposals stay as they are. */
	new_draft(org, org_level(org) == 1, d);
	req.name = d;
	return call(who, M("AssessmentService", "SubmitAssessment"), &req);
}
static grpc_status_code r_delete_assessment(const char *who, const char *org)
{
	REQ(Mlops__Maturity__V1__DeleteAssessmentRequest,
	    MLOPS__MATURITY__V1__DELETE_ASSESSMENT_REQUEST__INIT);
	char d[160];
	new_draft(org, 0, d);
	req.name = d;
	return call(who, M("AssessmentService", "DeleteAssessment"), &req);
}
static grpc_status_code r_evaluate(const char *who, const char *org)
{
	REQ(Mlops__Maturity__V1__EvaluateAnswersRequest,
	    MLOPS__MATURITY__V1__EVALUATE_ANSWERS_REQUEST__INIT);
	return call(who, M("ScoringService", "EvaluateAnswers"), &req);
}
static grpc_status_code r_roadmap(const char *who, const char *org)
{
	REQ(Mlops__Maturity__V1__GetRoadmapRequest, MLOPS__MATURITY__V1__GET_ROADMAP_REQUEST__INIT);
	char n[96];
	req.organization = orgname(org, n);
	return call(who, M("ScoringService", "GetRoadmap"), &req);
}
static grpc_status_code r_get_transition(const char *who, const char *org)
{
	REQ(Mlops__Maturity__V1__GetTransitionRequest,
	    MLOPS__MATURITY__V1__GET_TRANSITION_REQUEST__INIT);
	char t[160];
	new_proposal(org, t);
	req.name = t;
	return call(who, M("TransitionService", "GetTransition"), &req);
}
static grpc_status_code r_list_transitions(const char *who, const char *org)
{
	REQ(Mlops__Maturity__V1__ListTransitionsRequest,
	    MLOPS__MATURITY__V1__LIST_TRANSITIONS_REQUEST__INIT);
	char n[96];
	req.parent = orgname(org, n);
	return call(who, M("TransitionService", "ListTransitions"), &req);
}
static grpc_status_code r_list_transitions_all(const char *who, const char *org)
{
	REQ(Mlops__Maturity__V1__ListTransitionsRequest,
	    MLOPS__MATURITY__V1__LIST_TRANSITIONS_REQUEST__INIT);
	req.parent = "organizations/-";
	return call(who, M("TransitionService", "ListTransitions"), &req);
}
static grpc_status_code r_approve(const char *who, const char *org)
{
	REQ(Mlops__Maturity__V1__ApproveTransitionRequest,
	    MLOPS__MATURITY__V1__APPROVE_TRANSITION_REQUEST__INIT);
	char t[160];
	new_proposal(org, t);
	req.name = t;
	return call(who, M("TransitionService", "ApproveTransition"), &req);
}
static grpc_status_code r_reject(const char *who, const char *org)
{
	REQ(Mlops__Maturity__V1__RejectTransitionRequest,
	    MLOPS__MATURITY__V1__REJECT_TRANSITION_REQUEST__INIT);
	char t[160];
	new_proposal(org, t);
	req.name = t;
	req.reason = "not yet";
	return call(who, M("TransitionService", "RejectTransition"), &req);
}
static grpc_status_code r_summary(const char *who, const char *org)
{
	REQ(Mlops__Maturity__V1__GetPortfolioSummaryRequest,
	    MLOPS__MATURITY__V1__GET_PORTFOLIO_SUMMARY_REQUEST__INIT);
	return call(who, M("ReportingService", "GetPortfolioSummary"), &req);
}
static grpc_status_code r_export_assessments(const char *who, const char *org)
{
	REQ(Mlops__Maturity__V1__ExportAssessmentsRequest,
	    MLOPS__MATURITY__V1__EXPORT_ASSESSMENTS_REQUEST__INIT);
	char n[96];
	req.organization = orgname(org, n);
	return stream(who, M("ReportingService", "ExportAssessments"), &req,
	              &mlops__maturity__v1__export_assessments_response__descriptor);
}
static grpc_status_code r_export_assessments_all(const char *who, const char *org)
{
	REQ(Mlops__Maturity__V1__ExportAssessmentsRequest,
	    MLOPS__MATURITY__V1__EXPORT_ASSESSMENTS_REQUEST__INIT);
	return stream(who, M("ReportingService", "ExportAssessments"), &req,
	              &mlops__maturity__v1__export_assessments_response__descriptor);
}
static grpc_status_code r_export_transitions(const char *who, const char *org)
{
	REQ(Mlops__Maturity__V1__ExportTransitionsRequest,
	    MLOPS__MATURITY__V1__EXPORT_TRANSITIONS_REQUEST__INIT);
	char n[96];
	req.organization = orgname(org, n);
	return stream(who, M("ReportingService", "ExportTransitions"), &req,
	              &mlops__maturity__v1__export_transitions_response__descriptor);
}
static grpc_status_code r_export_transitions_all(const char *who, const char *org)
{
	REQ(Mlops__Maturity__V1__ExportTransitionsRequest,
	    MLOPS__MATURITY__V1__EXPORT_TRANSITIONS_REQUEST__INIT);
	return stream(who, M("ReportingService", "ExportTransitions"), &req,
	              &mlops__maturity__v1__export_transitions_response__descriptor);
}
static grpc_status_code r_whoami(const char *who, const char *org)
{
	REQ(Mlops__Maturity__V1__WhoAmIRequest, MLOPS__MATURITY__V1__WHO_AM_IREQUEST__INIT);
	return call(who, M("AccessService", "WhoAmI"), &req);
}
/* One piece of evidence observed a minute ago, in force for a day. */
static void evidence_init(Mlops__Maturity__V1__Evidence *e, Google__Protobuf__Timestamp *obs,
                          Google__Protobuf__Timestamp *exp)
{
	mlops__maturity__v1__evidence__init(e);
	google__protobuf__timestamp__init(obs);
	google__protobuf__timestamp__init(exp);
	obs->seconds = (int64_t)time(NULL) - 60;
	exp->seconds = obs->seconds + 86400;
	e->practice_id = (char *)"model_creation.experiment_tracking";
	e->status = MLOPS__MATURITY__V1__PRACTICE_STATUS__PRACTICE_STATUS_IMPLEMENTED;
	e->source = (char *)"ci/matrix";
	e->observe_time = obs;
	e->expire_time = exp;
}
static grpc_status_code r_report_evidence(const char *who, const char *org)
{
	REQ(Mlops__Maturity__V1__ReportEvidenceRequest,
	    MLOPS__MATURITY__V1__REPORT_EVIDENCE_REQUEST__INIT);
	Mlops__Maturity__V1__Evidence e;
	Google__Protobuf__Timestamp o, x;
	char n[96];
	evidence_init(&e, &o, &x);
	req.parent = orgname(org, n);
	req.evidence = &e;
	return call(who, M("EvidenceService", "ReportEvidence"), &req);
}
static grpc_status_code r_batch_report_evidence(const char *who, const char *org)
{
	REQ(Mlops__Maturity__V1__BatchReportEvidenceRequest,
	    MLOPS__MATURITY__V1__BATCH_REPORT_EVIDENCE_REQUEST__INIT);
	Mlops__Maturity__V1__Evidence e[2], *p[2] = {&e[0], &e[1]};
	Google__Protobuf__Timestamp o[2], x[2];
	char n[96];
	evidence_init(&e[0], &o[0], &x[0]);
	evidence_init(&e[1], &o[1], &x[1]);
	e[1].practice_id = (char *)"people.regular_communication";
	req.parent = orgname(org, n);
	req.evidence = p;
	req.n_evidence = 2;
	return call(who, M("EvidenceService", "BatchReportEvidence"), &req);
}
static grpc_status_code r_get_evidence(const char *who, const char *org)
{
	REQ(Mlops__Maturity__V1__ReportEvidenceRequest,
	    MLOPS__MATURITY__V1__REPORT_EVIDENCE_REQUEST__INIT);
	Mlops__Maturity__V1__GetEvidenceRequest g = MLOPS__MATURITY__V1__GET_EVIDENCE_REQUEST__INIT;
	Mlops__Maturity__V1__Evidence e, *made;
	Google__Protobuf__Timestamp o, x;
	grpc_status_code st;
	char n[96];
	evidence_init(&e, &o, &x);
	req.parent = orgname(org, n);
	req.evidence = &e;
	made = itest_call("admin", M("EvidenceService", "ReportEvidence"), &req,
	                  &mlops__maturity__v1__evidence__descriptor, GRPC_STATUS_OK);
	g.name = made->name;
	st = call(who, M("EvidenceService", "GetEvidence"), &g);
	protobuf_c_message_free_unpacked(&made->base, NULL);
	return st;
}
static grpc_status_code r_list_evidence(const char *who, const char *org)
{
	REQ(Mlops__Maturity__V1__ListEvidenceRequest,
	    MLOPS__MATURITY__V1__LIST_EVIDENCE_REQUEST__INIT);
	char n[96];
	req.parent = orgname(org, n);
	req.page_size = 2;
	return call(who, M("EvidenceService", "ListEvidence"), &req);
}
static grpc_status_code r_live_score(const char *who, const char *org)
{
	REQ(Mlops__Maturity__V1__GetLiveScoreRequest,
	    MLOPS__MATURITY__V1__GET_LIVE_SCORE_REQUEST__INIT);
	char n[96];
	req.organization = orgname(org, n);
	return call(who, M("EvidenceService", "GetLiveScore"), &req);
}
static grpc_status_code r_check_gate(const char *who, const char *org)
{
	REQ(Mlops__Maturity__V1__CheckGateRequest, MLOPS__MATURITY__V1__CHECK_GATE_REQUEST__INIT);
	Mlops__Maturity__V1__GateRequirement r = MLOPS__MATURITY__V1__GATE_REQUIREMENT__INIT;
	char n[96];
	r.min_level = 1;
	req.organization = orgname(org, n);
	req.requirement = &r;
	return call(who, M("GateService", "CheckGate"), &req);
}
static grpc_status_code r_list_attestation_keys(const char *who, const char *org)
{
	REQ(Mlops__Maturity__V1__ListAttestationKeysRequest,
	    MLOPS__MATURITY__V1__LIST_ATTESTATION_KEYS_REQUEST__INIT);
	return call(who, M("GateService", "ListAttestationKeys"), &req);
}
static grpc_status_code bind(const char *who, const char *principal, int role, const char *org,
                             char *name_out)
{
	REQ(Mlops__Maturity__V1__CreateRoleBindingRequest,
	    MLOPS__MATURITY__V1__CREATE_ROLE_BINDING_REQUEST__INIT);
	Mlops__Maturity__V1__RoleBinding b = MLOPS__MATURITY__V1__ROLE_BINDING__INIT;
	char n[96];
	struct tresult r;
	ProtobufCMessage *resp = NULL;
	grpc_status_code st;

	b.principal = (char *)principal;
	b.role = role;
	b.organization = org ? orgname(org, n) : "";
	req.role_binding = &b;
	st = tclient_call(itest_client(who), M("AccessService", "CreateRoleBinding"), &req.base,
	                  &mlops__maturity__v1__role_binding__descriptor, &resp, 10000, &r);
	if (st == GRPC_STATUS_OK && name_out != NULL)
		strcpy(name_out, ((Mlops__Maturity__V1__RoleBinding *)resp)->name);
	if (resp)
		protobuf_c_message_free_unpacked(resp, NULL);
	tresult_cleanup(&r);
	return st;
}
static grpc_status_code r_create_binding(const char *who, const char *org)
{
	char p[64];
	sprintf(p, "spiffe://test/matrix-%d", counter++);
	return bind(who, p, MLOPS__MATURITY__V1__ROLE__ROLE_VIEWER, NULL, NULL);
}
static grpc_status_code unbind(const char *who, const char *name)
{
	REQ(Mlops__Maturity__V1__DeleteRoleBindingRequest,
	    MLOPS__MATURITY__V1__DELETE_ROLE_BINDING_REQUEST__INIT);
	req.name = (char *)name;
	return call(who, M("AccessService", "DeleteRoleBinding"), &req);
}
static grpc_status_code r_delete_binding(const char *who, const char *org)
{
	char p[64], name[128];
	sprintf(p, "spiffe://test/matrix-%d", counter++);
	assert_int_equal(bind("admin", p, MLOPS__MATURITY__V1__ROLE__ROLE_VIEWER, NULL, name),
	                 GRPC_STATUS_OK);
	return unbind(who, name);
}
static grpc_status_code r_list_bindings(const char *who, const char *org)
{
	REQ(Mlops__Maturity__V1__ListRoleBindingsRequest,
	    MLOPS__MATURITY__V1__LIST_ROLE_BINDINGS_REQUEST__INIT);
	return call(who, M("AccessService", "ListRoleBindings"), &req);
}
static grpc_status_code r_list_audit(const char *who, const char *org)
{
	REQ(Mlops__Maturity__V1__ListAuditEventsRequest,
	    MLOPS__MATURITY__V1__LIST_AUDIT_EVENTS_REQUEST__INIT);
	req.page_size = 1;
	return call(who, M("AccessService", "ListAuditEvents"), &req);
}
static grpc_status_code r_health(const char *who, const char *org)
{
	Grpc__Health__V1__HealthCheckRequest req = GRPC__HEALTH__V1__HEALTH_CHECK_REQUEST__INIT;
	return call(who, "/grpc.health.v1.Health/Check", &req);
}

static const struct rpc_case {
	const char *name;
	enum perm perm;
	grpc_status_code (*run)(const char *who, const char *org);
} cases[] = {
    {"GetMaturityModel", P_ANY, r_get_model},
    {"ListMaturityModels", P_ANY, r_list_models},
    {"CreateOrganization", P_ADMIN, r_create_org},
    {"GetOrganization", P_VIEW, r_get_org},
    {"ListOrganizations", P_ANY, r_list_orgs}, /* filtered, never denied */
    {"UpdateOrganization", P_EDIT, r_update_org},
    {"DeleteOrganization", P_ADMIN, r_delete_org},
    {"CreateAssessment", P_EDIT, r_create_assessment},
    {"GetAssessment", P_VIEW, r_get_assessment},
    {"ListAssessments", P_VIEW, r_list_assessments},
    {"UpdateAnswers", P_EDIT, r_update_answers},
    {"SubmitAssessment", P_EDIT, r_submit},
    {"DeleteAssessment", P_EDIT, r_delete_assessment},
    {"EvaluateAnswers", P_ANY, r_evaluate},
    {"GetRoadmap", P_VIEW, r_roadmap},
    {"GetTransition", P_VIEW, r_get_transition},
    {"ListTransitions", P_VIEW, r_list_transitions},
    {"ListTransitions(-)", P_ANY, r_list_transitions_all}, /* filtered */
    {"ApproveTransition", P_REVIEW, r_approve},
    {"RejectTransition", P_REVIEW, r_reject},
    {"GetPortfolioSummary", P_GLOBAL, r_summary},
    {"ExportAssessments", P_VIEW, r_export_assessments},
    {"ExportAssessments(all)", P_GLOBAL, r_export_assessments_all},
    {"ExportTransitions", P_VIEW, r_export_transitions},
    {"ExportTransitions(all)", P_GLOBAL, r_export_transitions_all},
    {"ReportEvidence", P_EVIDENCE, r_report_evidence},
    {"BatchReportEvidence", P_EVIDENCE, r_batch_report_evidence},
    {"GetEvidence", P_VIEW, r_get_evidence},
    {"ListEvidence", P_VIEW, r_list_evidence},
    {"GetLiveScore", P_VIEW, r_live_score},
    {"CheckGate", P_VIEW, r_check_gate},
    {"ListAttestationKeys", P_ANY, r_list_attestation_keys},
    {"WhoAmI", P_ANY, r_whoami},
    {"CreateRoleBinding", P_ADMIN, r_create_binding},
    {"DeleteRoleBinding", P_ADMIN, r_delete_binding},
    {"ListRoleBindings", P_ADMIN, r_list_bindings},
    {"ListAuditEvents", P_ADMIN, r_list_audit},
    {"Health/Check", P_ANY, r_health},
};

/* docs/permissions.md, written out: what a role bound globally or on `own` grants for `perm` on
 * `org`. */
static bool allowed(enum perm perm, int role, bool global, bool bootstrap, const char *org)
{
	bool admin = bootstrap || (role == MLOPS__MATURITY__V1__ROLE__ROLE_ADMIN && global);
	bool in_scope = role != 0 && (global || strcmp(org, OWN) == 0);

	if (admin)
		return true;
	switch (perm) {
	case P_ANY:
		return true;
	case P_ADMIN:
		return false;
	case P_VIEW:
		return in_scope; /* every role includes viewer */
	case P_EDIT:
		return in_scope && role == MLOPS__MATURITY__V1__ROLE__ROLE_EDITOR;
	case P_REVIEW:
		return in_scope && role == MLOPS__MATURITY__V1__ROLE__ROLE_REVIEWER;
	case P_GLOBAL:
		return role != 0 && global;
	case P_VIEW_OR_GLOBAL:
		return in_scope;
	case P_EVIDENCE:
		return in_scope && (role == MLOPS__MATURITY__V1__ROLE__ROLE_EDITOR ||
		                    role == MLOPS__MATURITY__V1__ROLE__ROLE_EVIDENCE_WRITER);
	}
	return false;
}

static void run_matrix(const char *who, int role, bool global, bool bootstrap)
{
	static const char *const orgs[] = {OWN, OTHER};
	int failures = 0;

	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		for (size_t k = 0; k < 2; k++) {
			bool want_ok = allowed(cases[i].perm, role, global, bootstrap, orgs[k]);
			grpc_status_code st = cases[i].run(who, orgs[k]);
			grpc_status_code want =
			    want_ok ? GRPC_STATUS_OK : GRPC_STATUS_PERMISSION_DENIED;
			if (st != want) {
				fprintf(stderr, "MATRIX %s role=%d %s on %s: want %s, got %s\n",
				        cases[i].name, role, global ? "global" : "own-org", orgs[k],
				        itest_code_name(want), itest_code_name(st));
				failures++;
			}
		}
	}
	assert_int_equal(failures, 0);
}

static void clear_bindings(void)
{
	REQ(Mlops__Maturity__V1__ListRoleBindingsRequest,
	    MLOPS__MATURITY__V1__LIST_ROLE_BINDINGS_REQUEST__INIT);
	Mlops__Maturity__V1__ListRoleBindingsResponse *r;
	req.principal = WHO_PRINCIPAL;
	req.page_size = 1000;
	r = itest_call("admin", M("AccessService", "ListRoleBindings"), &req,
	               &mlops__maturity__v1__list_role_bindings_response__descriptor,
	               GRPC_STATUS_OK);
	for (size_t i = 0; i < r->n_role_bindings; i++)
		assert_int_equal(unbind("admin", r->role_bindings[i]->name), GRPC_STATUS_OK);
	protobuf_c_message_free_unpacked(&r->base, NULL);
}

/* Every row of the matrix for `who` (whose principal is WHO_PRINCIPAL) with each role, bound
 * globally and on OWN; `unbound` first, and `bootstrap` (a bootstrap admin) when not NULL. */
static void matrix_rounds(const char *unbound, const char *bootstrap, const char *who)
{
	static const int roles[] = {MLOPS__MATURITY__V1__ROLE__ROLE_ADMIN,
	                            MLOPS__MATURITY__V1__ROLE__ROLE_EDITOR,
	                            MLOPS__MATURITY__V1__ROLE__ROLE_REVIEWER,
	                            MLOPS__MATURITY__V1__ROLE__ROLE_VIEWER,
	                            MLOPS__MATURITY__V1__ROLE__ROLE_REPORTER,
	                            MLOPS__MATURITY__V1__ROLE__ROLE_EVIDENCE_WRITER};

	run_matrix(unbound, 0, false, false);
	if (bootstrap != NULL)
		run_matrix(bootstrap, 0, false, true);
	for (size_t r = 0; r < sizeof(roles) / sizeof(roles[0]); r++) {
		for (int global = 1; global >= 0; global--) {
			bool org_only_role = roles[r] == MLOPS__MATURITY__V1__ROLE__ROLE_ADMIN ||
			                     roles[r] == MLOPS__MATURITY__V1__ROLE__ROLE_REPORTER;
			clear_bindings();
			if (!global && org_only_role) {
				/* admin and reporter are global only. */
				assert_int_equal(bind("admin", WHO_PRINCIPAL, roles[r], OWN, NULL),
				                 GRPC_STATUS_INVALID_ARGUMENT);
				continue;
			}
			assert_int_equal(
			    bind("admin", WHO_PRINCIPAL, roles[r], global ? NULL : OWN, NULL),
			    GRPC_STATUS_OK);
			run_matrix(who, roles[r], global, false);
		}
	}
	clear_bindings();
}

static void test_matrix(void **state)
{
	(void)state;
	if (!tenv_available())
		skip();
	assert_int_equal(create_org_as("admin", OWN), GRPC_STATUS_OK);
	assert_int_equal(create_org_as("admin", OTHER), GRPC_STATUS_OK);
	assert_int_equal(bind("admin", "dns:control-plane.maturityd.dev",
	                      MLOPS__MATURITY__V1__ROLE__ROLE_EDITOR, NULL, NULL),
	                 GRPC_STATUS_OK);
	/* Unbound principal, and the bootstrap admin. */
	matrix_rounds("cnclient", "admin", WHO);
}

/* The same matrix with every principal asserted by a delegator (x-on-behalf-of from the gateway,
 * which this program's server names with --delegator): the same answers, from the end user's
 * bindings alone, though the gateway itself is a global admin. A bootstrap admin cannot be
 * asserted at all: every row is refused. */
static void test_matrix_through_delegator(void **state)
{
	char gateway_binding[128];
	int failures = 0;

	(void)state;
	if (!tenv_available())
		skip();
	assert_int_equal(bind("admin", GATEWAY_PRINCIPAL, MLOPS__MATURITY__V1__ROLE__ROLE_ADMIN,
	                      NULL, gateway_binding),
	                 GRPC_STATUS_OK);
	matrix_rounds("gateway>cn:legacy-job", NULL, "gateway>" WHO_PRINCIPAL);
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		grpc_status_code st = cases[i].run("gateway>spiffe://maturityd.dev/admin", OWN);
		if (st != GRPC_STATUS_PERMISSION_DENIED) {
			fprintf(stderr, "MATRIX %s as an asserted bootstrap admin: got %s\n",
			        cases[i].name, itest_code_name(st));
			failures++;
		}
	}
	assert_int_equal(failures, 0);
	assert_int_equal(unbind("admin", gateway_binding), GRPC_STATUS_OK);
}

static size_t list_org_count(const char *who)
{
	REQ(Mlops__Maturity__V1__ListOrganizationsRequest,
	    MLOPS__MATURITY__V1__LIST_ORGANIZATIONS_REQUEST__INIT);
	req.page_size = 1000;
	Mlops__Maturity__V1__ListOrganizationsResponse *r = itest_call(
	    who, M("OrganizationService", "ListOrganizations"), &req,
	    &mlops__maturity__v1__list_organizations_response__descriptor, GRPC_STATUS_OK);
	size_t n = r->n_organizations;
	if (n == 1)
		assert_string_equal(r->organizations[0]->name, "organizations/" OWN);
	protobuf_c_message_free_unpacked(&r->base, NULL);
	return n;
}

static void test_list_filtering_and_revocation(void **state)
{
	char name[128];
	struct tserver second;
	struct tclient *c2;
	struct tresult r;
	Mlops__Maturity__V1__GetOrganizationRequest g =
	    MLOPS__MATURITY__V1__GET_ORGANIZATION_REQUEST__INIT;

	(void)state;
	if (!tenv_available())
		skip();
	clear_bindings();
	assert_int_equal(list_org_count(WHO), 0);
	assert_int_equal(
	    bind("admin", WHO_PRINCIPAL, MLOPS__MATURITY__V1__ROLE__ROLE_VIEWER, OWN, name),
	    GRPC_STATUS_OK);
	/* Only the organization it may see. */
	assert_int_equal(list_org_count(WHO), 1);
	assert_true(list_org_count("admin") > 2);

	/* A second replica: the binding works there, and its revocation (made on the first) is
	 * seen on the very next call (bindings are read on every call). */
	assert_int_equal(tserver_start(&second, g_dburl, NULL), 0);
	c2 = tserver_client(&second, WHO);
	g.name = "organizations/" OWN;
	assert_int_equal(tclient_call(c2, M("OrganizationService", "GetOrganization"), &g.base,
	                              NULL, NULL, 10000, &r),
	                 GRPC_STATUS_OK);
	tresult_cleanup(&r);
	assert_int_equal(unbind("admin", name), GRPC_STATUS_OK);
	assert_int_equal(tclient_call(c2, M("OrganizationService", "GetOrganization"), &g.base,
	                              NULL, NULL, 10000, &r),
	                 GRPC_STATUS_PERMISSION_DENIED);
	tresult_cleanup(&r);
	tclient_free(c2);
	assert_int_equal(tserver_stop(&second), 0);
}

static void test_audit_events(void **state)
{
	REQ(Mlops__Maturity__V1__ListAuditEventsRequest,
	    MLOPS__MATURITY__V1__LIST_AUDIT_EVENTS_REQUEST__INIT);
	Mlops__Maturity__V1__ListAuditEventsResponse *r;
	bool saw_create = false;
	int denials = 0, read_denials = 0, export_denials = 0;

	(void)state;
	if (!tenv_available())
		skip();
	clear_bindings();
	tclient_set_request_id(itest_client("admin"), "audit-create-1");
	assert_int_equal(create_org_as("admin", "audited-org"), GRPC_STATUS_OK);
	tclient_set_request_id(itest_client("admin"), NULL);
	tclient_set_request_id(itest_client(WHO), "audit-denied-1");
	assert_int_equal(create_org_as(WHO, "never-org"), GRPC_STATUS_PERMISSION_DENIED);
	/* A read refused on the store call's own round trip (SVC_AZ_IN_STEP) is audited
	 * once too, and says nothing of whether the organization exists. */
	tclient_set_request_id(itest_client(WHO), "audit-denied-2");
	assert_int_equal(r_get_org(WHO, "audited-org"), GRPC_STATUS_PERMISSION_DENIED);
	assert_int_equal(r_get_org(WHO, "no-such-org-at-all"), GRPC_STATUS_PERMISSION_DENIED);
	/* So is an export refused in its first batch's read (a stream, SVC_AZ_IN_STEP): no
	 * message, one audit event, nothing said of existence. */
	tclient_set_request_id(itest_client(WHO), "audit-denied-3");
	assert_int_equal(r_export_assessments(WHO, "audited-org"), GRPC_STATUS_PERMISSION_DENIED);
	assert_int_equal(r_export_transitions(WHO, "no-such-org-at-all"),
	                 GRPC_STATUS_PERMISSION_DENIED);
	tclient_set_request_id(itest_client(WHO), NULL);

	req.page_size = 50;
	r = itest_call("admin", M("AccessService", "ListAuditEvents"), &req,
	               &mlops__maturity__v1__list_audit_events_response__descriptor,
	               GRPC_STATUS_OK);
	for (size_t i = 0; i < r->n_audit_events; i++) {
		Mlops__Maturity__V1__AuditEvent *e = r->audit_events[i];
		if (i > 0) /* newest first */
			assert_true(e->time->seconds < r->audit_events[i - 1]->time->seconds ||
			            (e->time->seconds == r->audit_events[i - 1]->time->seconds &&
			             e->time->nanos <= r->audit_events[i - 1]->time->nanos));
		if (strcmp(e->request_id, "audit-denied-2") == 0) {
			read_denials++;
			assert_int_equal(e->code, GRPC_STATUS_PERMISSION_DENIED);
			assert_string_equal(e->method, M("OrganizationService", "GetOrganization"));
		}
		if (strcmp(e->request_id, "audit-denied-3") == 0) {
			export_denials++;
			assert_int_equal(e->code, GRPC_STATUS_PERMISSION_DENIED);
			assert_true(
			    strcmp(e->method, M("ReportingService", "ExportAssessments")) == 0 ||
			    strcmp(e->method, M("ReportingService", "ExportTransitions")) == 0);
		}
		if (strcmp(e->request_id, "audit-denied-1") == 0) {
			denials++;
			assert_int_equal(e->code, GRPC_STATUS_PERMISSION_DENIED);
			assert_string_equal(e->principal, WHO_PRINCIPAL);
			assert_string_equal(e->method,
			                    M("OrganizationService", "CreateOrganization"));
		}
		if (strcmp(e->request_id, "audit-create-1") == 0) {
			saw_create = true;
			assert_int_equal(e->code, 0);
			assert_string_equal(e->resource, "organizations/audited-org");
		}
	}
	protobuf_c_message_free_unpacked(&r->base, NULL);
	assert_int_equal(denials, 1); /* one event per refusal, not one per layer */
	assert_int_equal(read_denials, 2);
	assert_int_equal(export_denials, 2);
	assert_true(saw_create);
	/* A non-admin cannot read them, even with a global binding. */
	assert_int_equal(
	    bind("admin", WHO_PRINCIPAL, MLOPS__MATURITY__V1__ROLE__ROLE_REPORTER, NULL, NULL),
	    GRPC_STATUS_OK);
	assert_int_equal(r_list_audit(WHO, NULL), GRPC_STATUS_PERMISSION_DENIED);
	clear_bindings();
}

static void test_four_eyes_for_reviewer_who_submitted(void **state)
{
	char draft[160];
	REQ(Mlops__Maturity__V1__SubmitAssessmentRequest,
	    MLOPS__MATURITY__V1__SUBMIT_ASSESSMENT_REQUEST__INIT);
	Mlops__Maturity__V1__ListTransitionsRequest l =
	    MLOPS__MATURITY__V1__LIST_TRANSITIONS_REQUEST__INIT;
	Mlops__Maturity__V1__ApproveTransitionRequest ap =
	    MLOPS__MATURITY__V1__APPROVE_TRANSITION_REQUEST__INIT;
	Mlops__Maturity__V1__RejectTransitionRequest rj =
	    MLOPS__MATURITY__V1__REJECT_TRANSITION_REQUEST__INIT;

	(void)state;
	if (!tenv_available())
		skip();
	clear_bindings();
	assert_int_equal(create_org_as("admin", "eyes-org"), GRPC_STATUS_OK);
	/* portal is editor and reviewer of eyes-org, and submits. */
	assert_int_equal(
	    bind("admin", WHO_PRINCIPAL, MLOPS__MATURITY__V1__ROLE__ROLE_EDITOR, "eyes-org", NULL),
	    GRPC_STATUS_OK);
	assert_int_equal(bind("admin", WHO_PRINCIPAL, MLOPS__MATURITY__V1__ROLE__ROLE_REVIEWER,
	                      "eyes-org", NULL),
	                 GRPC_STATUS_OK);
	new_draft("eyes-org", 1, draft);
	req.name = draft;
	void *a = itest_call(WHO, M("AssessmentService", "SubmitAssessment"), &req,
	                     &mlops__maturity__v1__assessment__descriptor, GRPC_STATUS_OK);
	protobuf_c_message_free_unpacked(a, NULL);
	l.parent = "organizations/eyes-org";
	Mlops__Maturity__V1__ListTransitionsResponse *lr =
	    itest_call(WHO, M("TransitionService", "ListTransitions"), &l,
	               &mlops__maturity__v1__list_transitions_response__descriptor, GRPC_STATUS_OK);
	assert_int_equal(lr->n_transitions, 1);
	ap.name = lr->transitions[0]->name;
	/* Its own submission: may not approve... */
	assert_int_equal(call(WHO, M("TransitionService", "ApproveTransition"), &ap),
	                 GRPC_STATUS_PERMISSION_DENIED);
	/* ...but may withdraw it. */
	rj.name = lr->transitions[0]->name;
	rj.reason = "withdrawn by the submitter";
	assert_int_equal(call(WHO, M("TransitionService", "RejectTransition"), &rj),
	                 GRPC_STATUS_OK);
	protobuf_c_message_free_unpacked(&lr->base, NULL);
	clear_bindings();
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_matrix),
	    cmocka_unit_test(test_matrix_through_delegator),
	    cmocka_unit_test(test_list_filtering_and_revocation),
	    cmocka_unit_test(test_audit_events),
	    cmocka_unit_test(test_four_eyes_for_reviewer_who_submitted),
	};
	static const char *const args[] = {"--delegator", GATEWAY_PRINCIPAL, NULL};

	itest_server_args = args;
	return cmocka_run_group_tests(tests, itest_setup, itest_teardown);
}
