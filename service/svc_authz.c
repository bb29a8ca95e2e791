/* Who the caller is and what it may do: the principal of the call (from the front door's table
 * or the peer certificate, with a per-thread cache), the caller's role bindings (read on every
 * call, never cached across calls) and the authorization functions handlers call
 * (svc_authorize, svc_authorize_with / svc_authorized, svc_sees_all; svc.h). auth/ owns the
 * decision itself (auth_policy_allows) and the rule table; this file gathers what it needs and
 * audits refusals. docs/permissions.md lists the rules. */
#include "svc_engine.h"

#include "auth.h"
#include "auth_policy.h"
#include "svc.h"
#include "svc_log.h"

#include <grpc/grpc.h>
#include <grpc/grpc_security.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define PRINCIPAL_CACHE 8

struct principal_cache_entry {
	char *pem;
	size_t len;
	char principal[MAT_MAX_PRINCIPAL + 1];
};

/* Principal of recent peer certificates, per thread: parsing X.509 per call costs more than
 * the rest of a health check. Keyed by the exact PEM bytes, so a new certificate is parsed
 * anew. Freed when the thread ends. */
struct principal_cache {
	struct principal_cache_entry e[PRINCIPAL_CACHE];
	unsigned next;
};
static _Thread_local struct principal_cache tl_cache;

void svc_principal_cache_clear(void)
{
	for (unsigned k = 0; k < PRINCIPAL_CACHE; k++) {
		free(tl_cache.e[k].pem);
		tl_cache.e[k].pem = NULL;
	}
}

static void drop_bindings(struct svc_ctx *ctx)
{
	for (size_t i = 0; i < ctx->n_bindings; i++)
		mat_role_binding_cleanup(&ctx->bindings[i]);
	free(ctx->bindings);
	ctx->bindings = NULL;
	ctx->n_bindings = 0;
	ctx->bindings_loaded = false;
}

void svc_forget_bindings(struct svc_ctx *ctx)
{
	drop_bindings(ctx);
}
static enum mat_code load_bindings(struct svc_ctx *ctx)
{
	struct store_call sc;
	enum mat_code rc;

	if (ctx->bindings_loaded)
		return MAT_OK;
	svc_store_call(ctx, &sc);
	rc = store_bindings_for_principal(&sc, ctx->principal, &ctx->bindings, &ctx->n_bindings,
	                                  &ctx->err);
	if (rc == MAT_OK)
		ctx->bindings_loaded = true;
	return rc;
}

bool svc_authz_needed(const struct svc_ctx *ctx)
{
	return ctx->call->m->rule->perm != AUTH_PERM_ANY && !ctx->bootstrap_admin;
}

bool svc_authz_allows(const struct svc_ctx *ctx, const char *org_id)
{
	return auth_policy_allows(ctx->call->m->rule->perm, org_id, ctx->bindings, ctx->n_bindings,
	                          ctx->bootstrap_admin);
}

/* The refusal: audited before the response, then MAT_DENIED with its message. */
static enum mat_code deny(struct svc_ctx *ctx, const char *org_id)
{
	struct svc_call *c = ctx->call;
	struct store_call sc;
	struct mat_error ignored;
	char resource[128];

	if (org_id != NULL && org_id[0] != '\0')
		snprintf(resource, sizeof(resource), "organizations/%s", org_id);
	else
		resource[0] = '\0';
	svc_store_call(ctx, &sc);
	mat_error_clear(&ignored);
	/* An audit write that fails is logged, and the caller still gets PERMISSION_DENIED
	 * (never more access). */
	if (store_audit_denied(&sc, resource, 7 /* PERMISSION_DENIED */, &ignored) != MAT_OK)
		svc_log_event("error", "audit of a denial failed: %s", ignored.message);
	ctx->denial_audited = true;
	return mat_error_set(&ctx->err, MAT_DENIED, "%s may not call %s%s%s", ctx->principal,
	                     c->m->method_name, resource[0] ? " on " : "", resource);
}

enum mat_code svc_authorize(struct svc_ctx *ctx, const char *org_id)
{
	enum mat_code rc;

	if (svc_authz_needed(ctx)) {
		rc = load_bindings(ctx);
		if (rc != MAT_OK)
			return rc;
	}
	if (!svc_authz_allows(ctx, org_id))
		return deny(ctx, org_id);
	ctx->call->authorized = true;
	return MAT_OK;
}

/* store_authz.decide: runs inside the store call, on this thread. */
static bool decide_in_store(void *arg, struct mat_role_binding *list, size_t n)
{
	struct svc_authz *a = arg;
	struct svc_ctx *ctx = a->ctx;

	ctx->bindings = list;
	ctx->n_bindings = n;
	ctx->bindings_loaded = true;
	return svc_authz_allows(ctx, a->org_id);
}

void svc_authorize_with(struct svc_ctx *ctx, const char *org_id, struct store_call *sc,
                        struct svc_authz *a)
{
	memset(a, 0, sizeof(*a));
	if (!svc_authz_needed(ctx))
		return; /* allowed whatever the bindings: svc_authorized confirms */
	if (ctx->bindings_loaded) {
		/* Read again with the store call rather than decided here: storage must be the one
		 * that decides before a write, whatever the handler did earlier. (Rare: handlers
		 * that arm this read no bindings before.) */
		drop_bindings(ctx);
	}
	a->ctx = ctx;
	a->org_id = org_id;
	a->az.decide = decide_in_store;
	a->az.arg = a;
	sc->authz = &a->az;
	ctx->call->async_az = a;
}

enum mat_code svc_authorized(struct svc_ctx *ctx, const char *org_id, enum mat_code rc)
{
	enum mat_code lrc;

	if (svc_authz_needed(ctx) && !ctx->bindings_loaded) {
		/* The store call failed before the bindings arrived. A database that is down or
		 * out of time would fail a second read the same way: its error is the answer. */
		if (rc == MAT_UNAVAILABLE || rc == MAT_TIMEOUT || rc == MAT_CANCELLED)
			return rc;
		lrc = load_bindings(ctx);
		if (lrc != MAT_OK)
			return lrc;
	}
	if (!svc_authz_allows(ctx, org_id)) {
		mat_error_clear(&ctx->err); /* nothing of what storage found may leak */
		return deny(ctx, org_id);
	}
	ctx->call->authorized = true;
	return rc;
}

bool svc_sees_all(struct svc_ctx *ctx)
{
	if (ctx->bootstrap_admin)
		return true;
	if (load_bindings(ctx) != MAT_OK)
		return false;
	return auth_policy_sees_all(ctx->bindings, ctx->n_bindings, false);
}

bool svc_principal_of(struct svc_call *c)
{
	grpc_auth_context *ac;
	grpc_auth_property_iterator it;
	const grpc_auth_property *p;
	bool ok = false;

	/* Through the front door: verified at the handshake, copied at receipt. */
	if (c->w->srv->door != NULL)
		return c->door_peer && c->ctx.principal[0] != '\0';
	ac = grpc_call_auth_context(c->call);
	if (ac == NULL)
		return false;
	if (!grpc_auth_context_peer_is_authenticated(ac))
		goto out;
	it = grpc_auth_context_find_properties_by_name(ac, "x509_pem_cert");
	p = grpc_auth_property_iterator_next(&it);
	if (p == NULL || p->value == NULL)
		goto out;
	for (unsigned i = 0; i < PRINCIPAL_CACHE; i++) {
		struct principal_cache_entry *e = &tl_cache.e[i];
		if (e->pem != NULL && e->len == p->value_length &&
		    memcmp(e->pem, p->value, e->len) == 0) {
			memcpy(c->ctx.principal, e->principal, sizeof(e->principal));
			ok = true;
			goto out;
		}
	}
	if (auth_principal_from_pem(p->value, p->value_length, c->ctx.principal,
	                            sizeof(c->ctx.principal), &c->ctx.err) != MAT_OK)
		goto out;
	{
		struct principal_cache_entry *e = &tl_cache.e[tl_cache.next++ % PRINCIPAL_CACHE];
		free(e->pem);
		e->pem = malloc(p->value_length);
		e->len = p->value_length;
		if (e->pem != NULL) {
			memcpy(e->pem, p->value, e->len);
			memcpy(e->principal, c->ctx.principal, sizeof(e->principal));
		}
	}
	ok = true;
out:
	grpc_auth_context_release(ac);
	return ok;
}
