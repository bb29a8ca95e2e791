/* The decision function of the permission model: which role grants which permission on which
 * scope. Pure functions: the caller (service/) reads the principal's bindings through storage/
 * on every call and hands them in, so a revoked binding takes effect on the next call. Which
 * method needs which permission is the method table's (service/svc_methods.def);
 * docs/permissions.md lists both for users. */
#include "auth_policy.h"

#include <string.h>

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
