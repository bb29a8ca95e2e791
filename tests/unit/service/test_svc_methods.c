/* The method table (service/svc_methods.def): every method of the served services has its row,
 * with the rule docs/permissions.md gives it (the same hand-written list as before the table
 * moved out of auth/, so a rule dropped or changed fails here), the doc lists every row, the rows
 * are coherent (a row that names an organization says where the engine finds it; nothing that
 * runs on a poller waits for bindings), and the engine's parse of a row's resource name gives
 * the organization and the errors the handlers gave. */
#include "auth_policy.h"
#include "svc_engine.h"
#include "svc_methods.h"

#include "grpc/health/v1/health.pb-c.h"
#include "grpc/reflection/v1/reflection.pb-c.h"
#include "grpc/reflection/v1alpha/reflection.pb-c.h"
#include "mlops/maturity/v1/access.pb-c.h"
#include "mlops/maturity/v1/assessment.pb-c.h"
#include "mlops/maturity/v1/event.pb-c.h"
#include "mlops/maturity/v1/evidence.pb-c.h"
#include "mlops/maturity/v1/gate.pb-c.h"
#include "mlops/maturity/v1/model.pb-c.h"
#include "mlops/maturity/v1/organization.pb-c.h"
#include "mlops/maturity/v1/reporting.pb-c.h"
#include "mlops/maturity/v1/scoring.pb-c.h"
#include "mlops/maturity/v1/transition.pb-c.h"

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#ifndef MAT_PERMISSIONS_DOC
#error "MAT_PERMISSIONS_DOC (path of docs/permissions.md) must be defined by the build"
#endif

#define M "/mlops.maturity.v1."

/* The rules of the table's rows, contiguous (in table order) as the checks below index them. */
static struct auth_rule table[128];
static size_t n_table;

static const struct auth_rule *table_rules(size_t *n)
{
	if (n_table == 0) {
		size_t k;
		const struct svc_rpc *rows = svc_rpcs(&k);
		assert_true(k <= sizeof(table) / sizeof(table[0]));
		for (size_t i = 0; i < k; i++)
			table[i] = rows[i].rule;
		n_table = k;
	}
	if (n != NULL)
		*n = n_table;
	return table;
}

static const struct auth_rule *table_find(const char *method)
{
	const struct svc_rpc *row = svc_rpc_find(method);
	size_t n;
	const struct auth_rule *all = table_rules(&n);

	if (row == NULL)
		return NULL;
	for (size_t i = 0; i < n; i++)
		if (strcmp(all[i].method, row->rule.method) == 0)
			return &all[i];
	return NULL;
}

/* Every method of the API (proto/) and the standard services, with the rule docs/permissions.md
 * gives it. Written by hand so that a rule dropped or changed in the code fails this test. */
static const struct auth_rule expected_rules[] = {
    {M "ModelService/GetMaturityModel", AUTH_PERM_ANY, AUTH_ORG_NONE},
    {M "ModelService/ListMaturityModels", AUTH_PERM_ANY, AUTH_ORG_NONE},
    {M "OrganizationService/CreateOrganization", AUTH_PERM_ADMIN, AUTH_ORG_NONE},
    {M "OrganizationService/GetOrganization", AUTH_PERM_VIEW, AUTH_ORG_NAME},
    {M "OrganizationService/ListOrganizations", AUTH_PERM_ANY, AUTH_ORG_NONE},
    {M "OrganizationService/UpdateOrganization", AUTH_PERM_EDIT, AUTH_ORG_RESOURCE},
    {M "OrganizationService/DeleteOrganization", AUTH_PERM_ADMIN, AUTH_ORG_NONE},
    {M "AssessmentService/CreateAssessment", AUTH_PERM_EDIT, AUTH_ORG_PARENT},
    {M "AssessmentService/GetAssessment", AUTH_PERM_VIEW, AUTH_ORG_NAME},
    {M "AssessmentService/ListAssessments", AUTH_PERM_VIEW, AUTH_ORG_PARENT},
    {M "AssessmentService/UpdateAnswers", AUTH_PERM_EDIT, AUTH_ORG_NAME},
    {M "AssessmentService/SubmitAssessment", AUTH_PERM_EDIT, AUTH_ORG_NAME},
    {M "AssessmentService/DeleteAssessment", AUTH_PERM_EDIT, AUTH_ORG_NAME},
    {M "ScoringService/EvaluateAnswers", AUTH_PERM_ANY, AUTH_ORG_NONE},
    {M "ScoringService/GetRoadmap", AUTH_PERM_VIEW, AUTH_ORG_FIELD},
    {M "TransitionService/GetTransition", AUTH_PERM_VIEW, AUTH_ORG_NAME},
    {M "TransitionService/ListTransitions", AUTH_PERM_VIEW, AUTH_ORG_PARENT},
    {M "TransitionService/ApproveTransition", AUTH_PERM_REVIEW, AUTH_ORG_NAME},
    {M "TransitionService/RejectTransition", AUTH_PERM_REVIEW, AUTH_ORG_NAME},
    {M "ReportingService/GetPortfolioSummary", AUTH_PERM_GLOBAL_ANY, AUTH_ORG_NONE},
    {M "ReportingService/ExportAssessments", AUTH_PERM_VIEW_OR_GLOBAL, AUTH_ORG_FIELD},
    {M "ReportingService/ExportTransitions", AUTH_PERM_VIEW_OR_GLOBAL, AUTH_ORG_FIELD},
    {M "EvidenceService/ReportEvidence", AUTH_PERM_REPORT_EVIDENCE, AUTH_ORG_PARENT},
    {M "EvidenceService/BatchReportEvidence", AUTH_PERM_REPORT_EVIDENCE, AUTH_ORG_PARENT},
    {M "EvidenceService/GetEvidence", AUTH_PERM_VIEW, AUTH_ORG_NAME},
    {M "EvidenceService/ListEvidence", AUTH_PERM_VIEW, AUTH_ORG_PARENT},
    {M "EvidenceService/GetLiveScore", AUTH_PERM_VIEW, AUTH_ORG_FIELD},
    {M "GateService/CheckGate", AUTH_PERM_VIEW, AUTH_ORG_FIELD},
    {M "GateService/ListAttestationKeys", AUTH_PERM_ANY, AUTH_ORG_NONE},
    {M "AccessService/WhoAmI", AUTH_PERM_ANY, AUTH_ORG_NONE},
    {M "AccessService/CreateRoleBinding", AUTH_PERM_ADMIN, AUTH_ORG_NONE},
    {M "AccessService/DeleteRoleBinding", AUTH_PERM_ADMIN, AUTH_ORG_NONE},
    {M "AccessService/ListRoleBindings", AUTH_PERM_ADMIN, AUTH_ORG_NONE},
    {M "AccessService/ListAuditEvents", AUTH_PERM_ADMIN, AUTH_ORG_NONE},
    {"/grpc.health.v1.Health/Check", AUTH_PERM_ANY, AUTH_ORG_NONE},
    {"/grpc.health.v1.Health/Watch", AUTH_PERM_ANY, AUTH_ORG_NONE},
    {"/mlops.maturity.v1.EventService/ListEvents", AUTH_PERM_VIEW, AUTH_ORG_PARENT},
    {"/mlops.maturity.v1.EventService/WatchEvents", AUTH_PERM_VIEW, AUTH_ORG_PARENT},
    {"/grpc.reflection.v1.ServerReflection/ServerReflectionInfo", AUTH_PERM_ANY, AUTH_ORG_NONE},
    {"/grpc.reflection.v1alpha.ServerReflection/ServerReflectionInfo", AUTH_PERM_ANY,
     AUTH_ORG_NONE},
};
#define N_EXPECTED (sizeof(expected_rules) / sizeof(expected_rules[0]))

static void test_policy_every_api_method_has_its_rule(void **state)
{
	size_t i, n = 0;
	const struct auth_rule *all = table_rules(&n);

	assert_non_null(all);
	for (i = 0; i < N_EXPECTED; i++) {
		const struct auth_rule *r = table_find(expected_rules[i].method);

		if (r == NULL)
			fail_msg("no rule for %s", expected_rules[i].method);
		assert_string_equal(r->method, expected_rules[i].method);
		if (r->perm != expected_rules[i].perm || r->org_from != expected_rules[i].org_from)
			fail_msg("%s: rule %s/%s, want %s/%s", r->method, auth_perm_name(r->perm),
			         auth_org_from_name(r->org_from),
			         auth_perm_name(expected_rules[i].perm),
			         auth_org_from_name(expected_rules[i].org_from));
	}
	/* ... and nothing else: every rule in the code is a method of the API. */
	assert_int_equal(n, N_EXPECTED);
}

static void test_policy_find_unknown(void **state)
{
	assert_null(table_find(NULL));
	assert_null(table_find(""));
	assert_null(table_find("/mlops.maturity.v1.ModelService/Nope"));
	assert_null(table_find("/mlops.maturity.v1.ModelService/getMaturityModel"));
	assert_null(table_find("mlops.maturity.v1.ModelService/GetMaturityModel"));
	assert_null(table_find("/mlops.maturity.v1.ModelService/GetMaturityModel/"));
	assert_null(table_find("/mlops.maturity.v1.ModelService/GetMaturityMode"));
}

static void test_policy_rules_unique(void **state)
{
	size_t i, j, n;
	const struct auth_rule *all = table_rules(&n);

	for (i = 0; i < n; i++) {
		assert_ptr_equal(table_find(all[i].method), &all[i]);
		for (j = i + 1; j < n; j++)
			assert_string_not_equal(all[i].method, all[j].method);
	}
}

/* --- docs/permissions.md -------------------------------------------------------------- */

/* Copies the next `backticked` token of *p into out and advances *p past it. */
static bool next_code_span(const char **p, char *out, size_t out_size)
{
	const char *a = strchr(*p, '`'), *b;

	if (a == NULL)
		return false;
	b = strchr(a + 1, '`');
	if (b == NULL || (size_t)(b - a - 1) >= out_size)
		return false;
	memcpy(out, a + 1, (size_t)(b - a - 1));
	out[b - a - 1] = '\0';
	*p = b + 1;
	return true;
}

/* The rows "| `/method` | `PERM` | `ORG` |" of the doc's method table must be exactly the
 * code's rules: each rule once, with the same permission and organization source. */
static void test_policy_doc_lists_every_method(void **state)
{
	FILE *f = fopen(MAT_PERMISSIONS_DOC, "r");
	char line[512];
	size_t n, i, rows = 0;
	const struct auth_rule *all = table_rules(&n);
	unsigned *seen = calloc(n, sizeof(*seen));

	if (f == NULL)
		fail_msg("cannot open %s", MAT_PERMISSIONS_DOC);
	assert_non_null(seen);
	while (fgets(line, sizeof(line), f) != NULL) {
		char method[256], perm[32], org[32];
		const char *p = line;
		const struct auth_rule *r;

		if (strncmp(line, "| `/", 4) != 0)
			continue;
		rows++;
		if (!next_code_span(&p, method, sizeof(method)) ||
		    !next_code_span(&p, perm, sizeof(perm)) ||
		    !next_code_span(&p, org, sizeof(org)))
			fail_msg("%s: malformed row: %s", MAT_PERMISSIONS_DOC, line);
		r = table_find(method);
		if (r == NULL)
			fail_msg("%s lists %s, which the code has no rule for", MAT_PERMISSIONS_DOC,
			         method);
		if (strcmp(perm, auth_perm_name(r->perm)) != 0 ||
		    strcmp(org, auth_org_from_name(r->org_from)) != 0)
			fail_msg("%s: %s is %s/%s in the doc but %s/%s in the code",
			         MAT_PERMISSIONS_DOC, method, perm, org, auth_perm_name(r->perm),
			         auth_org_from_name(r->org_from));
		seen[r - all]++;
	}
	fclose(f);
	for (i = 0; i < n; i++) {
		if (seen[i] != 1)
			fail_msg("%s lists %s %u times, want once", MAT_PERMISSIONS_DOC,
			         all[i].method, seen[i]);
	}
	assert_int_equal(rows, n);
	free(seen);
}

/* --- the rows the engine serves from ---------------------------------------------------- */

static const ProtobufCServiceDescriptor *const services[] = {
    &mlops__maturity__v1__model_service__descriptor,
    &mlops__maturity__v1__organization_service__descriptor,
    &mlops__maturity__v1__assessment_service__descriptor,
    &mlops__maturity__v1__scoring_service__descriptor,
    &mlops__maturity__v1__transition_service__descriptor,
    &mlops__maturity__v1__reporting_service__descriptor,
    &mlops__maturity__v1__access_service__descriptor,
    &mlops__maturity__v1__evidence_service__descriptor,
    &mlops__maturity__v1__gate_service__descriptor,
    &mlops__maturity__v1__event_service__descriptor,
    &grpc__health__v1__health__descriptor,
    &grpc__reflection__v1__server_reflection__descriptor,
    &grpc__reflection__v1alpha__server_reflection__descriptor,
};

/* The input type of a row's method, or NULL. */
static const ProtobufCMessageDescriptor *input_of(const char *path)
{
	for (size_t s = 0; s < sizeof(services) / sizeof(services[0]); s++) {
		size_t len = strlen(services[s]->name);
		if (path[0] != '/' || strncmp(path + 1, services[s]->name, len) != 0 ||
		    path[1 + len] != '/')
			continue;
		const ProtobufCMethodDescriptor *md =
		    protobuf_c_service_descriptor_get_method_by_name(services[s], path + 2 + len);
		return md != NULL ? md->input : NULL;
	}
	return NULL;
}

/* Every method of every served service has a row with a handler, and every row is a method. */
static void test_rows_cover_every_method(void **state)
{
	size_t n_rows, n_methods = 0;
	const struct svc_rpc *rows = svc_rpcs(&n_rows);
	char path[256];

	(void)state;
	for (size_t s = 0; s < sizeof(services) / sizeof(services[0]); s++) {
		for (unsigned i = 0; i < services[s]->n_methods; i++) {
			const struct svc_rpc *row;
			snprintf(path, sizeof(path), "/%s/%s", services[s]->name,
			         services[s]->methods[i].name);
			row = svc_rpc_find(path);
			if (row == NULL)
				fail_msg("%s has no row", path);
			assert_non_null(row->fn);
			n_methods++;
		}
	}
	for (size_t i = 0; i < n_rows; i++)
		if (input_of(rows[i].rule.method) == NULL)
			fail_msg("row %s is no method of a served service", rows[i].rule.method);
	assert_int_equal(n_rows, n_methods);
}

/* The field a row's organization comes from, for each org_from. */
static const char *field_of(enum auth_org_from from)
{
	switch (from) {
	case AUTH_ORG_NONE:
		return NULL;
	case AUTH_ORG_NAME:
		return "name";
	case AUTH_ORG_PARENT:
		return "parent";
	case AUTH_ORG_RESOURCE:
		return "organization.name";
	case AUTH_ORG_FIELD:
		return "organization";
	}
	return NULL;
}

/* A row that says where its organization comes from has the engine parse exactly that field; a
 * rule whose decision depends on an organization names one; nothing that runs on a poller is
 * authorized by a round trip of its own (it would block the poller). */
static void test_rows_coherent(void **state)
{
	size_t n;
	const struct svc_rpc *rows = svc_rpcs(&n);

	(void)state;
	for (size_t i = 0; i < n; i++) {
		const struct svc_rpc *r = &rows[i];
		const char *want = field_of(r->rule.org_from);
		bool org_free = r->rule.perm == AUTH_PERM_ANY || r->rule.perm == AUTH_PERM_ADMIN ||
		                r->rule.perm == AUTH_PERM_GLOBAL_ANY;

		if (want != NULL && (r->field == NULL || strcmp(r->field, want) != 0))
			fail_msg("%s: organization from %s, but the engine parses %s",
			         r->rule.method, auth_org_from_name(r->rule.org_from),
			         r->field ? r->field : "nothing");
		if ((r->rule.org_from == AUTH_ORG_NONE) != org_free)
			fail_msg("%s: %s with organization from %s", r->rule.method,
			         auth_perm_name(r->rule.perm),
			         auth_org_from_name(r->rule.org_from));
		if (svc_kind_on_poller(r->kind) && r->rule.perm != AUTH_PERM_ANY &&
		    r->az != SVC_AZ_IN_STEP)
			fail_msg("%s runs on a poller but is authorized before its step",
			         r->rule.method);
		if ((r->flags & SVC_ORG_ALL) && r->rule.org_from != AUTH_ORG_PARENT)
			fail_msg("%s: organizations/- outside a parent", r->rule.method);
		if (r->collection != NULL && r->rule.org_from != AUTH_ORG_NAME)
			fail_msg("%s: a child name outside name", r->rule.method);
	}
}

/* --- the engine's parse of a row's resource name ---------------------------------------------- */

/* Runs svc_authz_locate for `path` on req as the engine does: code, ctx.org and ctx.id. */
struct located {
	enum mat_code rc;
	char org[MAT_MAX_ORG_ID + 1], id[40];
	struct mat_error err;
};

static struct located locate(const char *path, const ProtobufCMessage *req)
{
	static struct svc_call c; /* large: not on the stack */
	struct svc_method m;
	struct located out;

	memset(&c, 0, sizeof(c));
	memset(&m, 0, sizeof(m));
	m.row = svc_rpc_find(path);
	assert_non_null(m.row);
	c.m = &m;
	c.ctx.call = &c;
	c.ctx.method = path;
	mat_error_clear(&c.ctx.err);
	out.rc = svc_authz_locate(&c.ctx, req);
	memcpy(out.org, c.ctx.org, sizeof(out.org));
	memcpy(out.id, c.ctx.id, sizeof(out.id));
	out.err = c.ctx.err;
	return out;
}

static void expect_violation(const struct located *l, const char *field, const char *words)
{
	assert_int_equal(l->rc, MAT_INVALID);
	assert_int_equal(l->err.code, MAT_INVALID);
	assert_true(l->err.n_violations >= 1);
	assert_string_equal(l->err.violations[0].field, field);
	if (strstr(l->err.violations[0].description, words) == NULL)
		fail_msg("violation \"%s\" lacks \"%s\"", l->err.violations[0].description, words);
}

static void test_locate_names(void **state)
{
	Mlops__Maturity__V1__GetAssessmentRequest ga =
	    MLOPS__MATURITY__V1__GET_ASSESSMENT_REQUEST__INIT;
	Mlops__Maturity__V1__ListTransitionsRequest lt =
	    MLOPS__MATURITY__V1__LIST_TRANSITIONS_REQUEST__INIT;
	Mlops__Maturity__V1__ListAssessmentsRequest la =
	    MLOPS__MATURITY__V1__LIST_ASSESSMENTS_REQUEST__INIT;
	Mlops__Maturity__V1__DeleteOrganizationRequest dorg =
	    MLOPS__MATURITY__V1__DELETE_ORGANIZATION_REQUEST__INIT;
	struct located l;

	(void)state;
	ga.name = "organizations/acme/assessments/0F8FAD5B-D9CB-469F-A165-70867728950E";
	l = locate(M "AssessmentService/GetAssessment", &ga.base);
	assert_int_equal(l.rc, MAT_OK);
	assert_string_equal(l.org, "acme");
	assert_string_equal(l.id, "0f8fad5b-d9cb-469f-a165-70867728950e");

	ga.name = "organizations/acme/transitions/0f8fad5b-d9cb-469f-a165-70867728950e";
	l = locate(M "AssessmentService/GetAssessment", &ga.base);
	expect_violation(&l, "name", "organizations/{org}/assessments/{id}");
	ga.name = "";
	l = locate(M "AssessmentService/GetAssessment", &ga.base);
	expect_violation(&l, "name", "is required");

	/* organizations/- only where a list may span every organization. */
	lt.parent = "organizations/-";
	l = locate(M "TransitionService/ListTransitions", &lt.base);
	assert_int_equal(l.rc, MAT_OK);
	assert_string_equal(l.org, "-");
	la.parent = "organizations/-";
	l = locate(M "AssessmentService/ListAssessments", &la.base);
	expect_violation(&l, "parent", "[a-z][a-z0-9-]{1,62}");

	/* ADMIN whatever the organization, but the name is still checked first. */
	dorg.name = "orgs/acme";
	l = locate(M "OrganizationService/DeleteOrganization", &dorg.base);
	expect_violation(&l, "name", "organizations/{organization_id}");
}

static void test_locate_nested_and_optional(void **state)
{
	Mlops__Maturity__V1__UpdateOrganizationRequest uo =
	    MLOPS__MATURITY__V1__UPDATE_ORGANIZATION_REQUEST__INIT;
	Mlops__Maturity__V1__Organization o = MLOPS__MATURITY__V1__ORGANIZATION__INIT;
	Mlops__Maturity__V1__ExportAssessmentsRequest ea =
	    MLOPS__MATURITY__V1__EXPORT_ASSESSMENTS_REQUEST__INIT;
	Mlops__Maturity__V1__GetRoadmapRequest gr = MLOPS__MATURITY__V1__GET_ROADMAP_REQUEST__INIT;
	Mlops__Maturity__V1__WhoAmIRequest who = MLOPS__MATURITY__V1__WHO_AM_IREQUEST__INIT;
	struct located l;

	(void)state;
	l = locate(M "OrganizationService/UpdateOrganization", &uo.base);
	expect_violation(&l, "organization", "is required");
	o.name = "organizations/globex";
	uo.organization = &o;
	l = locate(M "OrganizationService/UpdateOrganization", &uo.base);
	assert_int_equal(l.rc, MAT_OK);
	assert_string_equal(l.org, "globex");
	o.name = "organizations/Globex";
	l = locate(M "OrganizationService/UpdateOrganization", &uo.base);
	expect_violation(&l, "organization.name", "[a-z][a-z0-9-]{1,62}");

	/* An export names one organization, or none ("": every one, with a global binding). */
	l = locate(M "ReportingService/ExportAssessments", &ea.base);
	assert_int_equal(l.rc, MAT_OK);
	assert_string_equal(l.org, "");
	ea.organization = "organizations/acme";
	l = locate(M "ReportingService/ExportAssessments", &ea.base);
	assert_int_equal(l.rc, MAT_OK);
	assert_string_equal(l.org, "acme");
	/* A roadmap needs one. */
	l = locate(M "ScoringService/GetRoadmap", &gr.base);
	expect_violation(&l, "organization", "is required");

	/* A row that names no resource parses nothing. */
	l = locate(M "AccessService/WhoAmI", &who.base);
	assert_int_equal(l.rc, MAT_OK);
	assert_string_equal(l.org, "");
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_policy_every_api_method_has_its_rule),
	    cmocka_unit_test(test_policy_find_unknown),
	    cmocka_unit_test(test_policy_rules_unique),
	    cmocka_unit_test(test_policy_doc_lists_every_method),
	    cmocka_unit_test(test_rows_cover_every_method),
	    cmocka_unit_test(test_rows_coherent),
	    cmocka_unit_test(test_locate_names),
	    cmocka_unit_test(test_locate_nested_and_optional),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
