/* AccessService: WhoAmI now; role bindings and audit events with the access-control work. */
#include "mlops/maturity/v1/access.pb-c.h"
#include "svc.h"
#include "svc_convert.h"

#include <stdio.h>
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

static enum mat_code who_am_i(struct svc_ctx *ctx, const ProtobufCMessage *req_)
{
	Mlops__Maturity__V1__WhoAmIResponse resp = MLOPS__MATURITY__V1__WHO_AM_IRESPONSE__INIT;
	enum mat_code rc;

	(void)req_;
	rc = svc_authorize(ctx, NULL);
	if (rc != MAT_OK)
		return rc;
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

static const struct svc_method_impl methods[] = {
    {"WhoAmI", who_am_i, SVC_UNARY},
};

const struct svc_service_impl svc_access_service = {
    &mlops__maturity__v1__access_service__descriptor, methods,
    sizeof(methods) / sizeof(methods[0])};
