/* Who the caller is and what it may do: the principal of the call (from the front door's table
 * or the peer certificate, with a per-thread cache), the caller's role bindings (read on every
 * call, never cached across calls) and the engine's authorization of every call from its method
 * row (svc_methods.def): the resource name parsed first (svc_authz_locate), then the row's rule
 * decided before the handler (SVC_AZ_BEFORE) or on its first storage round trip
 * (SVC_AZ_IN_STEP: armed by svc_authz_begin, attached by svc_store_call, settled by
 * svc_authz_settle when the handler or its last continuation returns). auth/ owns the decision
 * itself (auth_policy_allows); this file gathers what it needs and audits refusals.
 * docs/permissions.md lists the rules. */
#include "svc_engine.h"

#include "auth.h"
#include "auth_policy.h"
#include "svc.h"
#include "svc_convert.h"
#include "svc_log.h"
#include "svc_methods.h"

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
	svc_store_call_plain(ctx, &sc);
	rc = store_bindings_for_principal(&sc, ctx->principal, &ctx->bindings, &ctx->n_bindings,
	                                  &ctx->err);
	if (rc == MAT_OK)
		ctx->bindings_loaded = true;
	return rc;
}

bool svc_authz_needed(const struct svc_ctx *ctx)
{
	return ctx->call->m->row->rule.perm != AUTH_PERM_ANY && !ctx->bootstrap_admin;
}

bool svc_authz_allows(const struct svc_ctx *ctx, const char *org_id)
{
	return auth_policy_allows(ctx->call->m->row->rule.perm, org_id, ctx->bindings,
	                          ctx->n_bindings, ctx->bootstrap_admin);
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
	svc_store_call_plain(ctx, &sc);
	mat_error_clear(&ignored);
	/* An audit write that fails is logged, and the caller still gets PERMISSION_DENIED
	 * (never more access). */
	if (store_audit_denied(&sc, resource, 7 /* PERMISSION_DENIED */, &ignored) != MAT_OK)
		svc_log_event("error", "audit of a denial failed: %s", ignored.message);
	ctx->denial_audited = true;
	return mat_error_set(&ctx->err, MAT_DENIED, "%s may not call %s%s%s", ctx->principal,
	                     c->m->method_name, resource[0] ? " on " : "", resource);
}

/* The organization the decision is about: organizations/- and "" name none. */
static const char *decided_org(const struct svc_ctx *ctx)
{
	return ctx->org[0] == '\0' || strcmp(ctx->org, "-") == 0 ? NULL : ctx->org;
}

/* Bindings read now, then the row's rule for org_id. */
static enum mat_code authorize(struct svc_ctx *ctx, const char *org_id)
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

enum mat_code svc_reauthorize(struct svc_ctx *ctx)
{
	drop_bindings(ctx);
	return authorize(ctx, decided_org(ctx));
}

/* The string field at `path` ("a" or "a.b") of msg; NULL with ctx->err filled when a message on
 * the way is absent (the handler's own "is required"). */
static const char *field_string(struct svc_ctx *ctx, const ProtobufCMessage *msg, const char *path)
{
	char name[64];
	const char *dot = strchr(path, '.');
	size_t len = dot != NULL ? (size_t)(dot - path) : strlen(path);
	const ProtobufCFieldDescriptor *f;
	const void *at;

	if (len >= sizeof(name))
		return NULL;
	memcpy(name, path, len);
	name[len] = '\0';
	f = protobuf_c_message_descriptor_get_field_by_name(msg->descriptor, name);
	if (f == NULL)
		return NULL;
	at = (const char *)msg + f->offset;
	if (dot == NULL)
		return f->type == PROTOBUF_C_TYPE_STRING ? *(const char *const *)at : NULL;
	if (f->type != PROTOBUF_C_TYPE_MESSAGE)
		return NULL;
	if (*(const ProtobufCMessage *const *)at == NULL) {
		mat_error_field(&ctx->err, name, "is required");
		return NULL;
	}
	return field_string(ctx, *(const ProtobufCMessage *const *)at, dot + 1);
}

enum mat_code svc_authz_locate(struct svc_ctx *ctx, const ProtobufCMessage *req)
{
	const struct svc_rpc *row = ctx->call->m->row;
	const char *name;

	ctx->org[0] = ctx->id[0] = '\0';
	if (row->field == NULL || req == NULL)
		return MAT_OK;
	name = field_string(ctx, req, row->field);
	if (name == NULL) {
		if (ctx->err.code == MAT_OK) /* a row naming a field its request lacks */
			return mat_error_set(&ctx->err, MAT_INTERNAL, "%s: no string field %s",
			                     ctx->method, row->field);
		return MAT_INVALID;
	}
	if ((row->flags & SVC_ORG_OPTIONAL) && name[0] == '\0')
		return MAT_OK;
	if (row->collection != NULL
	        ? !svc_parse_child_name(name, row->collection, row->field, ctx->org, ctx->id,
	                                &ctx->err)
	        : !svc_parse_org_name(name, row->field, (row->flags & SVC_ORG_ALL) != 0, ctx->org,
	                              &ctx->err))
		return MAT_INVALID;
	return MAT_OK;
}

/* store_authz.decide: runs inside the store call, on the thread that completes it. */
static bool decide_in_store(void *arg, struct mat_role_binding *list, size_t n)
{
	struct svc_ctx *ctx = arg;

	drop_bindings(ctx); /* read before by the handler (svc_sees_all): these are newer */
	ctx->bindings = list;
	ctx->n_bindings = n;
	ctx->bindings_loaded = true;
	return svc_authz_allows(ctx, ctx->call->authz.org);
}

enum mat_code svc_authz_begin(struct svc_ctx *ctx)
{
	struct svc_call *c = ctx->call;

	if (c->m->row->rule.perm == AUTH_PERM_ANY) {
		c->authorized = true;
		return MAT_OK;
	}
	if (c->m->row->az == SVC_AZ_BEFORE)
		return authorize(ctx, decided_org(ctx));
	memset(&c->authz, 0, sizeof(c->authz));
	c->authz.org = decided_org(ctx);
	c->authz.armed = true;
	c->authz.az.decide = decide_in_store;
	c->authz.az.arg = ctx;
	return MAT_OK;
}

void svc_authz_attach(struct svc_ctx *ctx, struct store_call *sc)
{
	struct svc_call *c = ctx->call;

	if (!c->authz.armed || c->authz.attached || !svc_authz_needed(ctx))
		return; /* allowed whatever the bindings: settled when the handler returns */
	c->authz.attached = true;
	sc->authz = &c->authz.az;
}

enum mat_code svc_authz_settle(struct svc_ctx *ctx, enum mat_code rc)
{
	struct svc_call *c = ctx->call;
	const char *org_id = c->authz.org;
	enum mat_code lrc;

	if (!c->authz.armed)
		return rc;
	c->authz.armed = false;
	/* Decided in the store call only when it got that far: bindings_loaded alone may come
	 * from svc_sees_all, read outside the decision. */
	if (svc_authz_needed(ctx) && !c->authz.az.done) {
		/* The store call failed before the bindings arrived (or the handler made none). A
		 * database that is down or out of time would fail a second read the same way: its
		 * error is the answer. */
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
	c->authorized = true;
	return rc;
}

bool svc_authz_settle_blocks(struct svc_ctx *ctx, enum mat_code rc)
{
	struct svc_call *c = ctx->call;

	if (!c->authz.armed || !svc_authz_needed(ctx))
		return false;
	if (!c->authz.az.done)
		return !(rc == MAT_UNAVAILABLE || rc == MAT_TIMEOUT || rc == MAT_CANCELLED);
	return !svc_authz_allows(ctx, c->authz.org);
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
