/* The permission table of SPEC §6 and the decision function. Pure data and pure functions: the
 * caller (service/) reads the principal's bindings through storage/ on every call and hands them
 * in, so a revoked binding takes effect on the next call. docs/permissions.md is this table for
 * users; test_auth_policy checks that the two agree. */
#include "auth_policy.h"

#include <string.h>

#define MLOPS "/mlops.maturity.v1."

/* One row per RPC of API.md plus the standard services. Rules needing ADMIN, ANY or GLOBAL_ANY
 * name no organization (AUTH_ORG_NONE): their decision does not depend on one, so authorization
 * never waits on parsing a resource name. A linear scan of ~30 rows is cheaper than the
 * protobuf decode that precedes it; keep the order of API.md for the reader instead of sorting. */
static const struct auth_rule rules[] = {
    /* The model catalog is the same for everyone. */
    {MLOPS "ModelService/GetMaturityModel", AUTH_PERM_ANY, AUTH_ORG_NONE},
    {MLOPS "ModelService/ListMaturityModels", AUTH_PERM_ANY, AUTH_ORG_NONE},

    {MLOPS "OrganizationService/CreateOrganization", AUTH_PERM_ADMIN, AUTH_ORG_NONE},
    {MLOPS "OrganizationService/GetOrganization", AUTH_PERM_VIEW, AUTH_ORG_NAME},
    /* Anyone may list; the handler filters with auth_policy_can_see, so a principal without
     * bindings gets an empty list rather than PERMISSION_DENIED (SPEC §6). */
    {MLOPS "OrganizationService/ListOrganizations", AUTH_PERM_ANY, AUTH_ORG_NONE},
    {MLOPS "OrganizationService/UpdateOrganization", AUTH_PERM_EDIT, AUTH_ORG_RESOURCE},
    {MLOPS "OrganizationService/DeleteOrganization", AUTH_PERM_ADMIN, AUTH_ORG_NONE},

    {MLOPS "AssessmentService/CreateAssessment", AUTH_PERM_EDIT, AUTH_ORG_PARENT},
    {MLOPS "AssessmentService/GetAssessment", AUTH_PERM_VIEW, AUTH_ORG_NAME},
    {MLOPS "AssessmentService/ListAssessments", AUTH_PERM_VIEW, AUTH_ORG_PARENT},
    {MLOPS "AssessmentService/UpdateAnswers", AUTH_PERM_EDIT, AUTH_ORG_NAME},
    {MLOPS "AssessmentService/SubmitAssessment", AUTH_PERM_EDIT, AUTH_ORG_NAME},
    {MLOPS "AssessmentService/DeleteAssessment", AUTH_PERM_EDIT, AUTH_ORG_NAME},

    /* Scoring answers the caller supplies touches no stored data. */
    {MLOPS "ScoringService/EvaluateAnswers", AUTH_PERM_ANY, AUTH_ORG_NONE},
    {MLOPS "ScoringService/GetRoadmap", AUTH_PERM_VIEW, AUTH_ORG_FIELD},

    {MLOPS "TransitionService/GetTransition", AUTH_PERM_VIEW, AUTH_ORG_NAME},
    /* parent organizations/- reaches auth_policy_allows as "no organization": allowed, and the
     * handler filters the list with auth_policy_can_see. */
    {MLOPS "TransitionService/ListTransitions", AUTH_PERM_VIEW, AUTH_ORG_PARENT},
    {MLOPS "TransitionService/ApproveTransition", AUTH_PERM_REVIEW, AUTH_ORG_NAME},
    {MLOPS "TransitionService/RejectTransition", AUTH_PERM_REVIEW, AUTH_ORG_NAME},

    {MLOPS "ReportingService/GetPortfolioSummary", AUTH_PERM_GLOBAL_ANY, AUTH_ORG_NONE},
    {MLOPS "ReportingService/ExportAssessments", AUTH_PERM_VIEW_OR_GLOBAL, AUTH_ORG_FIELD},
    {MLOPS "ReportingService/ExportTransitions", AUTH_PERM_VIEW_OR_GLOBAL, AUTH_ORG_FIELD},

    /* Automation reports what it observes; people who may edit assessments may report too. */
    {MLOPS "EvidenceService/ReportEvidence", AUTH_PERM_REPORT_EVIDENCE, AUTH_ORG_PARENT},
    {MLOPS "EvidenceService/BatchReportEvidence", AUTH_PERM_REPORT_EVIDENCE, AUTH_ORG_PARENT},
    {MLOPS "EvidenceService/GetEvidence", AUTH_PERM_VIEW, AUTH_ORG_NAME},
    {MLOPS "EvidenceService/ListEvidence", AUTH_PERM_VIEW, AUTH_ORG_PARENT},
    {MLOPS "EvidenceService/GetLiveScore", AUTH_PERM_VIEW, AUTH_ORG_FIELD},

    /* A gate decision reveals no more than GetOrganization does; the public keys are public. */
    {MLOPS "GateService/CheckGate", AUTH_PERM_VIEW, AUTH_ORG_FIELD},
    {MLOPS "GateService/ListAttestationKeys", AUTH_PERM_ANY, AUTH_ORG_NONE},
    /* parent organizations/- reaches auth_policy_allows as "no organization": allowed, and
     * the handler filters the events with auth_policy_can_see's rule (any binding). */
    {MLOPS "EventService/ListEvents", AUTH_PERM_VIEW, AUTH_ORG_PARENT},
    {MLOPS "EventService/WatchEvents", AUTH_PERM_VIEW, AUTH_ORG_PARENT},

    {MLOPS "AccessService/WhoAmI", AUTH_PERM_ANY, AUTH_ORG_NONE},
    {MLOPS "AccessService/CreateRoleBinding", AUTH_PERM_ADMIN, AUTH_ORG_NONE},
    {MLOPS "AccessService/DeleteRoleBinding", AUTH_PERM_ADMIN, AUTH_ORG_NONE},
    {MLOPS "AccessService/ListRoleBindings", AUTH_PERM_ADMIN, AUTH_ORG_NONE},
    {MLOPS "AccessService/ListAuditEvents", AUTH_PERM_ADMIN, AUTH_ORG_NONE},

    /* Probes and tooling must work with any client certificate. */
    {"/grpc.health.v1.Health/Check", AUTH_PERM_ANY, AUTH_ORG_NONE},
    {"/grpc.health.v1.Health/Watch", AUTH_PERM_ANY, AUTH_ORG_NONE},
    {"/grpc.reflection.v1.ServerReflection/ServerReflectionInfo", AUTH_PERM_ANY, AUTH_ORG_NONE},
    {"/grpc.reflection.v1alpha.ServerReflection/ServerReflectionInfo", AUTH_PERM_ANY,
     AUTH_ORG_NONE},
};

const struct auth_rule *auth_policy_find(const char *method)
{
	size_t i;

	if (method == NULL)
		return NULL;
	for (i = 0; i < sizeof(rules) / sizeof(rules[0]); i++) {
		if (strcmp(rules[i].method, method) == 0)
			return &rules[i];
	}
	return NULL;
}

const struct auth_rule *auth_policy_rules(size_t *n)
{
	if (n != NULL)
		*n = sizeof(rules) / sizeof(rules[0]);
	return rules;
}

const char *auth_perm_name(enum auth_perm perm)
{
	switch (perm) {
	case AUTH_PERM_ANY:
		return "ANY";
	case AUTH_PERM_ADMIN:
		return "ADMIN";
	case AUTH_PERM_VIEW:
		return "VIEW";
	case AUTH_PERM_EDIT:
		return "EDIT";
	case AUTH_PERM_REVIEW:
		return "REVIEW";
	case AUTH_PERM_GLOBAL_ANY:
		return "GLOBAL_ANY";
	case AUTH_PERM_VIEW_OR_GLOBAL:
		return "VIEW_OR_GLOBAL";
	case AUTH_PERM_REPORT_EVIDENCE:
		return "REPORT_EVIDENCE";
	}
	return "UNKNOWN_PERM";
}

const char *auth_org_from_name(enum auth_org_from from)
{
	switch (from) {
	case AUTH_ORG_NONE:
		return "NONE";
	case AUTH_ORG_NAME:
		return "NAME";
	case AUTH_ORG_PARENT:
		return "PARENT";
	case AUTH_ORG_RESOURCE:
		return "RESOURCE";
	case AUTH_ORG_FIELD:
		return "FIELD";
	}
	return "UNKNOWN_ORG_FROM";
}

/* NULL, "" and "-" (organizations/-) all mean "no single organization". "-" is not a valid
 * organization id ([a-z][a-z0-9-]{1,62}), so it cannot collide with a real one. */
static bool no_org(const char *org_id)
{
	return org_id == NULL || org_id[0] == '\0' || strcmp(org_id, "-") == 0;
}

static bool is_global(const struct mat_role_binding *b)
{
	return b->org_id == NULL || b->org_id[0] == '\0';
}

/* A binding that could not have been created (unknown role, or admin/reporter bound to one
 * organization, which CreateRoleBinding refuses) grants nothing: fail closed on bad data. */
static bool binding_usable(const struct mat_role_binding *b)
{
	if (b->role <= MAT_ROLE_UNSPECIFIED || b->role > MAT_ROLE_MAX)
		return false;
	if (!is_global(b) && (b->role == MAT_ROLE_ADMIN || b->role == MAT_ROLE_REPORTER))
		return false;
	return true;
}

static bool is_admin(const struct mat_role_binding *bindings, size_t n, bool bootstrap_admin)
{
	size_t i;

	if (bootstrap_admin)
		return true;
	for (i = 0; i < n; i++) {
		if (binding_usable(&bindings[i]) && is_global(&bindings[i]) &&
		    bindings[i].role == MAT_ROLE_ADMIN)
			return true;
	}
	return false;
}

/* Whether `role` carries `perm` on its scope. Every role includes viewer; admin is handled
 * before this is asked. */
static bool role_grants(enum mat_role role, enum auth_perm perm)
{
	switch (perm) {
	case AUTH_PERM_VIEW:
		return true;
	case AUTH_PERM_EDIT:
		return role == MAT_ROLE_EDITOR;
	case AUTH_PERM_REVIEW:
		return role == MAT_ROLE_REVIEWER;
	case AUTH_PERM_REPORT_EVIDENCE:
		return role == MAT_ROLE_EVIDENCE_WRITER || role == MAT_ROLE_EDITOR;
	case AUTH_PERM_ANY:
	case AUTH_PERM_ADMIN:
	case AUTH_PERM_GLOBAL_ANY:
	case AUTH_PERM_VIEW_OR_GLOBAL:
		return false;
	}
	return false;
}

/* VIEW, EDIT, REVIEW or REPORT_EVIDENCE on one organization (org_id not "no organization"). */
static bool allows_on_org(enum auth_perm perm, const char *org_id,
                          const struct mat_role_binding *bindings, size_t n)
{
	size_t i;

	for (i = 0; i < n; i++) {
		const struct mat_role_binding *b = &bindings[i];

		if (!binding_usable(b) || !role_grants(b->role, perm))
			continue;
		if (is_global(b) || strcmp(b->org_id, org_id) == 0)
			return true;
	}
	return false;
}

bool auth_policy_sees_all(const struct mat_role_binding *bindings, size_t n_bindings,
                          bool bootstrap_admin)
{
	size_t i;

	if (bootstrap_admin)
		return true;
	for (i = 0; i < n_bindings; i++) {
		if (binding_usable(&bindings[i]) && is_global(&bindings[i]))
			return true;
	}
	return false;
}

bool auth_policy_can_see(const char *org_id, const struct mat_role_binding *bindings,
                         size_t n_bindings, bool bootstrap_admin)
{
	if (no_org(org_id))
		return auth_policy_sees_all(bindings, n_bindings, bootstrap_admin);
	if (is_admin(bindings, n_bindings, bootstrap_admin))
		return true;
	return allows_on_org(AUTH_PERM_VIEW, org_id, bindings, n_bindings);
}

bool auth_policy_allows(enum auth_perm perm, const char *org_id,
                        const struct mat_role_binding *bindings, size_t n_bindings,
                        bool bootstrap_admin)
{
	switch (perm) {
	case AUTH_PERM_ANY:
		return true;
	case AUTH_PERM_ADMIN:
		return is_admin(bindings, n_bindings, bootstrap_admin);
	case AUTH_PERM_VIEW:
	case AUTH_PERM_EDIT:
	case AUTH_PERM_REVIEW:
	case AUTH_PERM_REPORT_EVIDENCE:
		if (is_admin(bindings, n_bindings, bootstrap_admin))
			return true;
		/* No single organization: a read is a filtered list (the handler omits what the
		 * principal cannot see); a write needs a target, so it is refused. */
		if (no_org(org_id))
			return perm == AUTH_PERM_VIEW;
		return allows_on_org(perm, org_id, bindings, n_bindings);
	case AUTH_PERM_GLOBAL_ANY:
		return auth_policy_sees_all(bindings, n_bindings, bootstrap_admin);
	case AUTH_PERM_VIEW_OR_GLOBAL:
		if (no_org(org_id))
			return auth_policy_sees_all(bindings, n_bindings, bootstrap_admin);
		return auth_policy_allows(AUTH_PERM_VIEW, org_id, bindings, n_bindings,
		                          bootstrap_admin);
	}
	return false; /* a value outside the enum: deny */
}

enum mat_code auth_policy_check(const struct auth_rule *rule, const char *org_id,
                                const struct mat_role_binding *bindings, size_t n_bindings,
                                bool bootstrap_admin, struct mat_error *err)
{
	const char *role = "viewer (or a role that includes it)";

	if (auth_policy_allows(rule->perm, org_id, bindings, n_bindings, bootstrap_admin))
		return MAT_OK;
	switch (rule->perm) {
	case AUTH_PERM_ANY: /* never denied */
	case AUTH_PERM_VIEW:
	case AUTH_PERM_VIEW_OR_GLOBAL:
		break;
	case AUTH_PERM_ADMIN:
		return mat_error_set(err, MAT_DENIED, "%s needs a global admin role binding",
		                     rule->method);
	case AUTH_PERM_EDIT:
		role = "editor";
		break;
	case AUTH_PERM_REVIEW:
		role = "reviewer";
		break;
	case AUTH_PERM_REPORT_EVIDENCE:
		role = "evidence_writer or editor";
		break;
	case AUTH_PERM_GLOBAL_ANY:
		return mat_error_set(err, MAT_DENIED, "%s needs a global role binding",
		                     rule->method);
	}
	if (no_org(org_id) && rule->perm == AUTH_PERM_VIEW_OR_GLOBAL)
		return mat_error_set(err, MAT_DENIED,
		                     "%s across organizations needs a global role binding",
		                     rule->method);
	/* EDIT/REVIEW without an organization (e.g. organizations/-): there is nothing to edit. */
	if (no_org(org_id))
		return mat_error_set(err, MAT_DENIED, "%s needs %s on one organization",
		                     rule->method, role);
	return mat_error_set(err, MAT_DENIED, "%s needs %s on organizations/%s", rule->method, role,
	                     org_id);
}
