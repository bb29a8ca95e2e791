/* The permission model: the permissions a method may need (enum auth_perm), where its
 * organization comes from (enum auth_org_from) and the decision (auth_policy_allows). Which rule
 * applies to which method is the method table's (service/svc_methods.def, one row per RPC); the
 * engine decides every call from its row. Pure data plus decision functions; no I/O. */
#ifndef AUTH_POLICY_H
#define AUTH_POLICY_H

#include "mat_error.h"
#include "mat_types.h"

#include <stdbool.h>
#include <stddef.h>

enum auth_perm {
	AUTH_PERM_ANY = 0,        /* any verified certificate */
	AUTH_PERM_ADMIN,          /* global admin */
	AUTH_PERM_VIEW,           /* viewer (or a role that includes it) on the organization */
	AUTH_PERM_EDIT,           /* editor on the organization */
	AUTH_PERM_REVIEW,         /* reviewer on the organization */
	AUTH_PERM_GLOBAL_ANY,     /* any global binding */
	AUTH_PERM_VIEW_OR_GLOBAL, /* exports: viewer on the org when one is named, else any global
	                           */
	AUTH_PERM_REPORT_EVIDENCE /* evidence_writer or editor on the organization; admin */
};

/* Where the organization that the permission applies to is found in the request. */
enum auth_org_from {
	AUTH_ORG_NONE = 0, /* the method is not about one organization */
	AUTH_ORG_NAME,     /* `name` = organizations/{org}[/...] */
	AUTH_ORG_PARENT,   /* `parent` = organizations/{org} (or organizations/- for lists) */
	AUTH_ORG_RESOURCE, /* `organization.name` of the body (UpdateOrganization) */
	AUTH_ORG_FIELD,    /* `organization` = organizations/{org}, optional (roadmap, exports) */
};

/* A method's rule (the first columns of its row in service/svc_methods.def). */
struct auth_rule {
	const char *method; /* full path: "/mlops.maturity.v1.ModelService/GetMaturityModel" */
	enum auth_perm perm;
	enum auth_org_from org_from;
};

/* Whether a principal with `bindings` (and the bootstrap-admin flag) may call a method needing
 * `perm` on organization `org_id` (NULL or "" = no single organization, e.g. organizations/-). */
bool auth_policy_allows(enum auth_perm perm, const char *org_id,
                        const struct mat_role_binding *bindings, size_t n_bindings,
                        bool bootstrap_admin);

/* Whether `bindings` let the principal see organization `org_id` (any role there or global).
 * Used to filter lists. */
bool auth_policy_can_see(const char *org_id, const struct mat_role_binding *bindings,
                         size_t n_bindings, bool bootstrap_admin);

/* Whether the principal sees every organization (bootstrap admin or any global binding). */
bool auth_policy_sees_all(const struct mat_role_binding *bindings, size_t n_bindings,
                          bool bootstrap_admin);

/* auth_policy_allows for `rule` (not NULL), as an error: MAT_OK, or MAT_DENIED with a message
 * naming the method and the role it needs (e.g. "... needs editor on organizations/acme"),
 * ready to send as PERMISSION_DENIED. org_id as for auth_policy_allows. Any thread. */
enum mat_code auth_policy_check(const struct auth_rule *rule, const char *org_id,
                                const struct mat_role_binding *bindings, size_t n_bindings,
                                bool bootstrap_admin, struct mat_error *err) MAT_MUSTCHECK;

/* "ANY", "VIEW", ... (the enum name without AUTH_PERM_), for logs and docs/permissions.md.
 * Never NULL; any thread. */
const char *auth_perm_name(enum auth_perm perm);

/* "NONE", "NAME", "PARENT", "RESOURCE", "FIELD" (without AUTH_ORG_). Never NULL; any thread. */
const char *auth_org_from_name(enum auth_org_from from);

#endif
