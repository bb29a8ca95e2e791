/* AccessService: who the caller is, role bindings and the audit log (docs/permissions.md).
 * Everything but WhoAmI needs a global admin (auth/'s table says so). */
#include "mat_validate.h"
#include "mlops/maturity/v1/access.pb-c.h"
#include "svc.h"
#include "svc_convert.h"
#include "svc_methods.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static void binding_to_proto(struct svc_ctx *ctx, const struct mat_role_binding *b,
                             Mlops__Maturity__V1__RoleBinding *out)
{
	char *name = svc_alloc(ctx, strlen(b->id) + sizeof("roleBindings/"));

	mlops__maturity__v1__role_binding__init(out);
	sprintf(name, "roleBindings/%s", b->id);
	out->name = name;
	out->principal = svc_strdup(ctx, b->principal);
	out->role = (Mlops__Maturity__V1__Role)b->role;
	if (b->org_id != NULL && b->org_id[0] != '\0') {
		char *org = svc_alloc(ctx, strlen(b->org_id) + sizeof("organizations/"));
		sprintf(org, "organizations/%s", b->org_id);
		out->organization = org;
	} else {
		out->organization = "";
	}
	out->creator = svc_strdup(ctx, b->creator);
	out->create_time = svc_ts(ctx, b->create_time);
}

enum mat_code rpc_who_am_i(struct svc_ctx *ctx, const ProtobufCMessage *req_)
{
	Mlops__Maturity__V1__WhoAmIResponse resp = MLOPS__MATURITY__V1__WHO_AM_IRESPONSE__INIT;
	enum mat_code rc;

	(void)req_;
	/* WhoAmI shows the bindings, so it reads them even for a bootstrap admin. */
	if (!ctx->bindings_loaded) {
		struct store_call sc;
		svc_store_call(ctx, &sc);
		rc = store_bindings_for_principal(&sc, ctx->principal, &ctx->bindings,
		                                  &ctx->n_bindings, &ctx->err);
		if (rc != MAT_OK)
			return rc;
		ctx->bindings_loaded = true;
	}
	resp.principal = ctx->principal;
	resp.delegator = ctx->delegator;
	resp.bootstrap_admin = ctx->bootstrap_admin;
	resp.n_role_bindings = ctx->n_bindings;
	resp.role_bindings =
	    svc_alloc(ctx, (ctx->n_bindings ? ctx->n_bindings : 1) * sizeof(*resp.role_bindings));
	for (size_t i = 0; i < ctx->n_bindings; i++) {
		resp.role_bindings[i] = svc_alloc(ctx, sizeof(Mlops__Maturity__V1__RoleBinding));
		binding_to_proto(ctx, &ctx->bindings[i], resp.role_bindings[i]);
	}
	return svc_reply(ctx, &resp.base);
}

enum mat_code rpc_create_binding(struct svc_ctx *ctx, const ProtobufCMessage *req_)
{
	const Mlops__Maturity__V1__CreateRoleBindingRequest *req = (const void *)req_;
	const Mlops__Maturity__V1__RoleBinding *b = req->role_binding;
	Mlops__Maturity__V1__RoleBinding out_pb;
	struct mat_role_binding in = {0}, out = {0};
	char org[MAT_MAX_ORG_ID + 1] = "", rid_buf[40];
	const char *rid = NULL;
	struct store_call sc;
	enum mat_code rc;

	if (b == NULL)
		return mat_error_field(&ctx->err, "role_binding", "is required");
	svc_request_id(req->request_id, rid_buf, &rid, &ctx->err);
	mat_check_string(&ctx->err, "role_binding.principal", b->principal, MAT_MAX_PRINCIPAL,
	                 true);
	if ((int)b->role <= MAT_ROLE_UNSPECIFIED || (int)b->role > MAT_ROLE_MAX)
		mat_error_field(&ctx->err, "role_binding.role",
		                "must be a Role other than "
		                "ROLE_UNSPECIFIED");
	if (b->organization[0] != '\0') {
		if (svc_parse_org_name(b->organization, "role_binding.organization", false, org,
		                       &ctx->err) &&
		    ((int)b->role == MAT_ROLE_ADMIN || (int)b->role == MAT_ROLE_REPORTER))
			mat_error_field(&ctx->err, "role_binding.organization",
			                "admin and reporter are global roles: leave organization "
			                "empty");
	}
	if (ctx->err.code != MAT_OK)
		return ctx->err.code;
	in.principal = b->principal;
	in.role = (enum mat_role)b->role;
	in.org_id = org[0] ? org : NULL;
	svc_store_call(ctx, &sc);
	rc = store_binding_create(&sc, &in, rid, &out, &ctx->err);
	if (rc != MAT_OK)
		return rc;
	binding_to_proto(ctx, &out, &out_pb);
	rc = svc_reply(ctx, &out_pb.base);
	mat_role_binding_cleanup(&out);
	return rc;
}

/* "roleBindings/{uuid}" -> lower-cased uuid. */
static bool binding_id(struct svc_ctx *ctx, const char *name, char *id)
{
	static const char prefix[] = "roleBindings/";
	if (strncmp(name, prefix, sizeof(prefix) - 1) != 0 ||
	    !mat_uuid_valid(name + sizeof(prefix) - 1)) {
		mat_error_field(&ctx->err, "name", "must look like roleBindings/{id}");
		return false;
	}
	mat_uuid_lower(name + sizeof(prefix) - 1, id);
	return true;
}

enum mat_code rpc_delete_binding(struct svc_ctx *ctx, const ProtobufCMessage *req_)
{
	const Mlops__Maturity__V1__DeleteRoleBindingRequest *req = (const void *)req_;
	Google__Protobuf__Empty empty = GOOGLE__PROTOBUF__EMPTY__INIT;
	struct store_call sc;
	char id[40];
	enum mat_code rc;

	if (!binding_id(ctx, req->name, id))
		return MAT_INVALID;
	svc_store_call(ctx, &sc);
	rc = store_binding_delete(&sc, id, &ctx->err);
	if (rc != MAT_OK)
		return rc;
	return svc_reply(ctx, &empty.base);
}

enum mat_code rpc_list_bindings(struct svc_ctx *ctx, const ProtobufCMessage *req_)
{
	const Mlops__Maturity__V1__ListRoleBindingsRequest *req = (const void *)req_;
	Mlops__Maturity__V1__ListRoleBindingsResponse resp =
	    MLOPS__MATURITY__V1__LIST_ROLE_BINDINGS_RESPONSE__INIT;
	char org[MAT_MAX_ORG_ID + 1];
	struct mat_role_binding *list = NULL;
	size_t n = 0;
	char *next = NULL;
	struct store_call sc;
	int page_size;
	enum mat_code rc;

	svc_page_size(req->page_size, &page_size, &ctx->err);
	mat_check_string(&ctx->err, "principal", req->principal, MAT_MAX_PRINCIPAL, false);
	if (req->organization[0] != '\0')
		svc_parse_org_name(req->organization, "organization", false, org, &ctx->err);
	if (ctx->err.code != MAT_OK)
		return ctx->err.code;
	svc_store_call(ctx, &sc);
	rc = store_binding_list(&sc, req->principal, req->organization[0] ? org : NULL, page_size,
	                        req->page_token, &list, &n, &next, &ctx->err);
	if (rc != MAT_OK)
		return rc;
	resp.n_role_bindings = n;
	resp.role_bindings = svc_alloc(ctx, (n ? n : 1) * sizeof(*resp.role_bindings));
	for (size_t i = 0; i < n; i++) {
		resp.role_bindings[i] = svc_alloc(ctx, sizeof(Mlops__Maturity__V1__RoleBinding));
		binding_to_proto(ctx, &list[i], resp.role_bindings[i]);
		mat_role_binding_cleanup(&list[i]);
	}
	free(list);
	resp.next_page_token = svc_strdup(ctx, next);
	free(next);
	return svc_reply(ctx, &resp.base);
}

enum mat_code rpc_list_audit(struct svc_ctx *ctx, const ProtobufCMessage *req_)
{
	const Mlops__Maturity__V1__ListAuditEventsRequest *req = (const void *)req_;
	Mlops__Maturity__V1__ListAuditEventsResponse resp =
	    MLOPS__MATURITY__V1__LIST_AUDIT_EVENTS_RESPONSE__INIT;
	struct mat_audit_event *list = NULL;
	mat_time_us start = 0, end = 0;
	size_t n = 0;
	char *next = NULL;
	struct store_call sc;
	int page_size;
	enum mat_code rc;

	svc_page_size(req->page_size, &page_size, &ctx->err);
	mat_check_string(&ctx->err, "principal", req->principal, MAT_MAX_PRINCIPAL, false);
	svc_ts_in(req->start_time, "start_time", &start, &ctx->err);
	svc_ts_in(req->end_time, "end_time", &end, &ctx->err);
	if (ctx->err.code != MAT_OK)
		return ctx->err.code;
	svc_store_call(ctx, &sc);
	rc = store_audit_list(&sc, req->principal, start, end, page_size, req->page_token, &list,
	                      &n, &next, &ctx->err);
	if (rc != MAT_OK)
		return rc;
	resp.n_audit_events = n;
	resp.audit_events = svc_alloc(ctx, (n ? n : 1) * sizeof(*resp.audit_events));
	for (size_t i = 0; i < n; i++) {
		Mlops__Maturity__V1__AuditEvent *e = svc_alloc(ctx, sizeof(*e));
		size_t len = strlen(list[i].id) + sizeof("auditEvents/");
		mlops__maturity__v1__audit_event__init(e);
		e->name = svc_alloc(ctx, len);
		snprintf(e->name, len, "auditEvents/%s", list[i].id);
		e->time = svc_ts(ctx, list[i].time);
		e->principal = svc_strdup(ctx, list[i].principal);
		e->method = svc_strdup(ctx, list[i].method);
		e->resource = svc_strdup(ctx, list[i].resource);
		e->code = list[i].code;
		e->request_id = svc_strdup(ctx, list[i].request_id);
		e->delegator = svc_strdup(ctx, list[i].delegator);
		e->allowed = list[i].allowed == 1;
		resp.audit_events[i] = e;
		mat_audit_event_cleanup(&list[i]);
	}
	free(list);
	resp.next_page_token = svc_strdup(ctx, next);
	free(next);
	return svc_reply(ctx, &resp.base);
}
