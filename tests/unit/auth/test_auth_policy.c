/* auth_policy_allows and auth_policy_check: every role x scope x permission decides as
 * docs/permissions.md says (an explicit expected table, not a second implementation). The
 * method table (service/svc_methods.def) and its agreement with docs/permissions.md are
 * tests/unit/service/test_svc_methods.c's. */
#include "auth_policy.h"

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#define M "/mlops.maturity.v1."

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

/* The rule docs/permissions.md gives `method` (the table itself is service/svc_methods.def; its
 * test, tests/unit/service/test_svc_methods.c, checks it against this same list and the doc). */
static const struct auth_rule *expected_find(const char *method)
{
	for (size_t i = 0; i < N_EXPECTED; i++)
		if (strcmp(expected_rules[i].method, method) == 0)
			return &expected_rules[i];
	return NULL;
}

/* --- decisions ------------------------------------------------------------------------- */

enum scope { GLOBAL, OWN, OTHER }; /* global, on "acme" (the target), on "globex" */

static const enum auth_perm perms[] = {
    AUTH_PERM_ANY,    AUTH_PERM_ADMIN,      AUTH_PERM_VIEW,           AUTH_PERM_EDIT,
    AUTH_PERM_REVIEW, AUTH_PERM_GLOBAL_ANY, AUTH_PERM_VIEW_OR_GLOBAL, AUTH_PERM_REPORT_EVIDENCE};
#define N_PERMS (sizeof(perms) / sizeof(perms[0]))

/* One binding, and whether each perm (in the order of perms[], as "Y"/"N") is allowed on
 * organization "acme" and with no organization (NULL). */
struct decision_case {
	enum mat_role role;
	enum scope scope;
	const char *on_acme;
	const char *no_org;
};

/*                         ANY ADMIN VIEW EDIT REVIEW GLOBAL_ANY VIEW_OR_GLOBAL REPORT_EVIDENCE */
#define NOTHING_ON_ACME "YNNNNNNN"
#define NOTHING_NO_ORG "YNYNNNNN" /* VIEW without an organization: the filtered list */

static const struct decision_case decision_cases[] = {
    {MAT_ROLE_ADMIN, GLOBAL, "YYYYYYYY", "YYYYYYYY"},
    /* admin and reporter cannot be bound to one organization; such a row grants nothing. */
    {MAT_ROLE_ADMIN, OWN, NOTHING_ON_ACME, NOTHING_NO_ORG},
    {MAT_ROLE_ADMIN, OTHER, NOTHING_ON_ACME, NOTHING_NO_ORG},
    {MAT_ROLE_EDITOR, GLOBAL, "YNYYNYYY", "YNYNNYYN"},
    {MAT_ROLE_EDITOR, OWN, "YNYYNNYY", NOTHING_NO_ORG},
    {MAT_ROLE_EDITOR, OTHER, NOTHING_ON_ACME, NOTHING_NO_ORG},
    {MAT_ROLE_REVIEWER, GLOBAL, "YNYNYYYN", "YNYNNYYN"},
    {MAT_ROLE_REVIEWER, OWN, "YNYNYNYN", NOTHING_NO_ORG},
    {MAT_ROLE_REVIEWER, OTHER, NOTHING_ON_ACME, NOTHING_NO_ORG},
    {MAT_ROLE_VIEWER, GLOBAL, "YNYNNYYN", "YNYNNYYN"},
    {MAT_ROLE_VIEWER, OWN, "YNYNNNYN", NOTHING_NO_ORG},
    {MAT_ROLE_VIEWER, OTHER, NOTHING_ON_ACME, NOTHING_NO_ORG},
    {MAT_ROLE_REPORTER, GLOBAL, "YNYNNYYN", "YNYNNYYN"},
    {MAT_ROLE_REPORTER, OWN, NOTHING_ON_ACME, NOTHING_NO_ORG},
    {MAT_ROLE_REPORTER, OTHER, NOTHING_ON_ACME, NOTHING_NO_ORG},
    {MAT_ROLE_EVIDENCE_WRITER, GLOBAL, "YNYNNYYY", "YNYNNYYN"},
    {MAT_ROLE_EVIDENCE_WRITER, OWN, "YNYNNNYY", NOTHING_NO_ORG},
    {MAT_ROLE_EVIDENCE_WRITER, OTHER, NOTHING_ON_ACME, NOTHING_NO_ORG},
    /* Bad data grants nothing. */
    {MAT_ROLE_UNSPECIFIED, GLOBAL, NOTHING_ON_ACME, NOTHING_NO_ORG},
    {(enum mat_role)99, GLOBAL, NOTHING_ON_ACME, NOTHING_NO_ORG},
};

static const char *role_name(enum mat_role r)
{
	static const char *const names[] = {"unspecified", "admin",    "editor",         "reviewer",
	                                    "viewer",      "reporter", "evidence_writer"};

	return (size_t)r < sizeof(names) / sizeof(names[0]) ? names[r] : "bad-role";
}

static void check_row(const char *what, const char *org, const char *want,
                      const struct mat_role_binding *b, size_t n, bool bootstrap)
{
	size_t p;

	assert_int_equal(strlen(want), N_PERMS);
	for (p = 0; p < N_PERMS; p++) {
		bool got = auth_policy_allows(perms[p], org, b, n, bootstrap);

		if (got != (want[p] == 'Y'))
			fail_msg("%s, %s on %s: got %s, want %s", what, auth_perm_name(perms[p]),
			         org != NULL ? org : "(no organization)",
			         got ? "allowed" : "denied", want[p] == 'Y' ? "allowed" : "denied");
	}
}

static void test_policy_allows_role_scope_perm(void **state)
{
	static char acme[] = "acme", globex[] = "globex", empty[] = "";
	size_t i;

	for (i = 0; i < sizeof(decision_cases) / sizeof(decision_cases[0]); i++) {
		const struct decision_case *c = &decision_cases[i];
		struct mat_role_binding b = {.principal = "spiffe://t/p", .role = c->role};
		char what[96];

		b.org_id = c->scope == OWN ? acme : c->scope == OTHER ? globex : NULL;
		snprintf(what, sizeof(what), "%s %s", role_name(c->role),
		         c->scope == GLOBAL ? "global"
		         : c->scope == OWN  ? "on acme"
		                            : "on globex");
		check_row(what, "acme", c->on_acme, &b, 1, false);
		check_row(what, NULL, c->no_org, &b, 1, false);
		/* "" and "-" (organizations/-) mean "no organization" too. */
		check_row(what, "", c->no_org, &b, 1, false);
		check_row(what, "-", c->no_org, &b, 1, false);
		/* A global binding stored with org_id "" rather than NULL is the same. */
		if (c->scope == GLOBAL) {
			b.org_id = empty;
			check_row(what, "acme", c->on_acme, &b, 1, false);
			check_row(what, NULL, c->no_org, &b, 1, false);
		}
	}
}

static void test_policy_allows_bootstrap_and_unbound(void **state)
{
	struct mat_role_binding viewer_other = {.role = MAT_ROLE_VIEWER, .org_id = "globex"};

	check_row("bootstrap admin", "acme", "YYYYYYYY", NULL, 0, true);
	check_row("bootstrap admin", NULL, "YYYYYYYY", NULL, 0, true);
	check_row("bootstrap admin with a binding", "acme", "YYYYYYYY", &viewer_other, 1, true);
	check_row("unbound", "acme", NOTHING_ON_ACME, NULL, 0, false);
	check_row("unbound", NULL, NOTHING_NO_ORG, NULL, 0, false);
}

static void test_policy_allows_several_bindings(void **state)
{
	struct mat_role_binding b[] = {
	    {.role = MAT_ROLE_VIEWER, .org_id = "acme"},
	    {.role = MAT_ROLE_EDITOR, .org_id = "globex"},
	    {.role = MAT_ROLE_REVIEWER, .org_id = "initech"},
	};

	assert_true(auth_policy_allows(AUTH_PERM_VIEW, "acme", b, 3, false));
	assert_false(auth_policy_allows(AUTH_PERM_EDIT, "acme", b, 3, false));
	assert_true(auth_policy_allows(AUTH_PERM_EDIT, "globex", b, 3, false));
	assert_false(auth_policy_allows(AUTH_PERM_REVIEW, "globex", b, 3, false));
	assert_true(auth_policy_allows(AUTH_PERM_REVIEW, "initech", b, 3, false));
	assert_false(auth_policy_allows(AUTH_PERM_VIEW, "umbrella", b, 3, false));
	/* An id that merely starts like a bound one is another organization. */
	assert_false(auth_policy_allows(AUTH_PERM_VIEW, "acm", b, 3, false));
	assert_false(auth_policy_allows(AUTH_PERM_VIEW, "acme-2", b, 3, false));
	assert_false(auth_policy_allows(AUTH_PERM_GLOBAL_ANY, NULL, b, 3, false));
	assert_false(auth_policy_allows(AUTH_PERM_ADMIN, NULL, b, 3, false));
	/* Out-of-range perm: denied. */
	assert_false(auth_policy_allows((enum auth_perm)42, "acme", b, 3, true));
}

static void test_policy_can_see_and_sees_all(void **state)
{
	struct mat_role_binding on_acme = {.role = MAT_ROLE_VIEWER, .org_id = "acme"};
	struct mat_role_binding editor_acme = {.role = MAT_ROLE_EDITOR, .org_id = "acme"};
	struct mat_role_binding global_ew = {.role = MAT_ROLE_EVIDENCE_WRITER};
	struct mat_role_binding admin_on_org = {.role = MAT_ROLE_ADMIN, .org_id = "acme"};
	struct mat_role_binding reporter = {.role = MAT_ROLE_REPORTER};

	assert_true(auth_policy_can_see("acme", &on_acme, 1, false));
	assert_true(auth_policy_can_see("acme", &editor_acme, 1, false));
	assert_false(auth_policy_can_see("globex", &on_acme, 1, false));
	assert_false(auth_policy_can_see("acme", NULL, 0, false));
	assert_true(auth_policy_can_see("acme", NULL, 0, true));
	assert_true(auth_policy_can_see("globex", &global_ew, 1, false));
	assert_true(auth_policy_can_see("globex", &reporter, 1, false));
	assert_false(auth_policy_can_see("acme", &admin_on_org, 1, false));

	assert_false(auth_policy_sees_all(&on_acme, 1, false));
	assert_false(auth_policy_sees_all(NULL, 0, false));
	assert_false(auth_policy_sees_all(&admin_on_org, 1, false));
	assert_true(auth_policy_sees_all(NULL, 0, true));
	assert_true(auth_policy_sees_all(&global_ew, 1, false));
	assert_true(auth_policy_sees_all(&reporter, 1, false));
}

static void expect_decision(const char *method, const char *org, const struct mat_role_binding *b,
                            size_t n, enum mat_code want, const char *msg)
{
	struct mat_error err;
	const struct auth_rule *r = expected_find(method);

	assert_non_null(r);
	mat_error_clear(&err);
	assert_int_equal(auth_policy_check(r, org, b, n, false, &err), want);
	if (want == MAT_OK)
		return;
	assert_int_equal(err.code, MAT_DENIED);
	if (strstr(err.message, msg) == NULL || strstr(err.message, method) == NULL)
		fail_msg("message \"%s\" lacks \"%s\" or the method", err.message, msg);
}

static void test_policy_check_messages(void **state)
{
	struct mat_role_binding viewer = {.role = MAT_ROLE_VIEWER, .org_id = "acme"};

	expect_decision(M "AccessService/WhoAmI", NULL, NULL, 0, MAT_OK, NULL);
	expect_decision(M "OrganizationService/GetOrganization", "acme", &viewer, 1, MAT_OK, NULL);
	expect_decision(M "OrganizationService/GetOrganization", "globex", &viewer, 1, MAT_DENIED,
	                "needs viewer (or a role that includes it) on organizations/globex");
	expect_decision(M "OrganizationService/UpdateOrganization", "acme", &viewer, 1, MAT_DENIED,
	                "needs editor on organizations/acme");
	expect_decision(M "AssessmentService/CreateAssessment", "-", &viewer, 1, MAT_DENIED,
	                "needs editor on one organization");
	expect_decision(M "TransitionService/ApproveTransition", "acme", &viewer, 1, MAT_DENIED,
	                "needs reviewer on organizations/acme");
	expect_decision(M "AccessService/CreateRoleBinding", NULL, &viewer, 1, MAT_DENIED,
	                "needs a global admin role binding");
	expect_decision(M "ReportingService/GetPortfolioSummary", NULL, &viewer, 1, MAT_DENIED,
	                "needs a global role binding");
	expect_decision(M "ReportingService/ExportAssessments", NULL, &viewer, 1, MAT_DENIED,
	                "across organizations needs a global role binding");
	expect_decision(M "ReportingService/ExportAssessments", "acme", &viewer, 1, MAT_OK, NULL);
	expect_decision(M "ReportingService/ExportTransitions", "globex", &viewer, 1, MAT_DENIED,
	                "on organizations/globex");
}

static void test_policy_names(void **state)
{
	assert_string_equal(auth_perm_name(AUTH_PERM_ANY), "ANY");
	assert_string_equal(auth_perm_name(AUTH_PERM_ADMIN), "ADMIN");
	assert_string_equal(auth_perm_name(AUTH_PERM_VIEW), "VIEW");
	assert_string_equal(auth_perm_name(AUTH_PERM_EDIT), "EDIT");
	assert_string_equal(auth_perm_name(AUTH_PERM_REVIEW), "REVIEW");
	assert_string_equal(auth_perm_name(AUTH_PERM_GLOBAL_ANY), "GLOBAL_ANY");
	assert_string_equal(auth_perm_name(AUTH_PERM_VIEW_OR_GLOBAL), "VIEW_OR_GLOBAL");
	assert_string_equal(auth_perm_name((enum auth_perm)42), "UNKNOWN_PERM");
	assert_string_equal(auth_org_from_name(AUTH_ORG_NONE), "NONE");
	assert_string_equal(auth_org_from_name(AUTH_ORG_NAME), "NAME");
	assert_string_equal(auth_org_from_name(AUTH_ORG_PARENT), "PARENT");
	assert_string_equal(auth_org_from_name(AUTH_ORG_RESOURCE), "RESOURCE");
	assert_string_equal(auth_org_from_name(AUTH_ORG_FIELD), "FIELD");
	assert_string_equal(auth_org_from_name((enum auth_org_from)42), "UNKNOWN_ORG_FROM");
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_policy_allows_role_scope_perm),
	    cmocka_unit_test(test_policy_allows_bootstrap_and_unbound),
	    cmocka_unit_test(test_policy_allows_several_bindings),
	    cmocka_unit_test(test_policy_can_see_and_sees_all),
	    cmocka_unit_test(test_policy_check_messages),
	    cmocka_unit_test(test_policy_names),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
