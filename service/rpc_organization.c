/* OrganizationService: decode -> authorize -> validate -> storage -> encode, one small function
 * per RPC. */
#include "mat_validate.h"
#include "mlops/maturity/v1/organization.pb-c.h"
#include "svc.h"
#include "svc_convert.h"
#include "svc_methods.h"

#include <stdlib.h>
#include <string.h>

typedef Mlops__Maturity__V1__Organization Org;

static int label_cmp(const void *a, const void *b)
{
	return strcmp(((const struct mat_label *)a)->key, ((const struct mat_label *)b)->key);
}

/* Copies the updatable fields present in `fields` from the request into `o` (borrowing the
 * request's strings; labels are an array owned by the caller: free(o->labels) only), checking
 * them. Returns false with violations in err. */
static bool org_fields_in(const Org *in, unsigned fields, const char *prefix,
                          struct mat_organization *o, struct mat_error *err)
{
	char f[64];
	bool ok = true;

	if (fields & STORE_ORG_DISPLAY_NAME) {
		snprintf(f, sizeof(f), "%s.display_name", prefix);
		ok &= mat_check_string(err, f, in->display_name, MAT_MAX_DISPLAY_NAME, false);
		o->display_name = in->display_name;
	}
	if (fields & STORE_ORG_DESCRIPTION) {
		snprintf(f, sizeof(f), "%s.description", prefix);
		ok &= mat_check_string(err, f, in->description, MAT_MAX_DESCRIPTION, false);
		o->description = in->description;
	}
	if (fields & STORE_ORG_TARGET_LEVEL) {
		if (in->target_level < 0 || in->target_level > MAT_MAX_LEVEL) {
			snprintf(f, sizeof(f), "%s.target_level", prefix);
			mat_error_field(err, f, "must be a level from 0 to 4");
			ok = false;
		}
		o->target_level = in->target_level;
	}
	if (fields & STORE_ORG_TRANSITION_POLICY) {
		int p = (int)in->transition_policy;
		if (p < 0 || p > MAT_POLICY_AUTOMATIC) {
			snprintf(f, sizeof(f), "%s.transition_policy", prefix);
			mat_error_field(err, f, "is not a TransitionPolicy value");
			ok = false;
		}
		o->transition_policy =
		    p == MAT_POLICY_UNSPECIFIED ? MAT_POLICY_MANUAL_REVIEW : (enum mat_policy)p;
	}
	if (fields & STORE_ORG_LABELS) {
		snprintf(f, sizeof(f), "%s.labels", prefix);
		if (in->n_labels > MAT_MAX_LABELS) {
			mat_error_field(err, f, "at most %d labels", MAT_MAX_LABELS);
			return false;
		}
		o->n_labels = in->n_labels;
		o->labels = calloc(in->n_labels ? in->n_labels : 1, sizeof(*o->labels));
		if (o->labels == NULL)
			return false;
		for (size_t i = 0; i < in->n_labels; i++) {
			const char *k = in->labels[i]->key, *v = in->labels[i]->value;
			if (!mat_label_key_valid(k)) {
				mat_error_field(err, f,
				                "label key \"%.64s\" must match "
				                "[a-z][a-z0-9_-]{0,62}",
				                k);
				ok = false;
			}
			if (!mat_check_string(err, f, v, MAT_MAX_LABEL_VALUE, false))
				ok = false;
			o->labels[i].key = (char *)k;
			o->labels[i].value = (char *)v;
		}
		/* protobuf maps keep the last of repeated keys: the wire may repeat one. */
		qsort(o->labels, o->n_labels, sizeof(*o->labels), label_cmp);
		size_t w = 0;
		for (size_t i = 0; i < o->n_labels; i++) {
			if (w > 0 && strcmp(o->labels[w - 1].key, o->labels[i].key) == 0)
				o->labels[w - 1] = o->labels[i];
			else
				o->labels[w++] = o->labels[i];
		}
		o->n_labels = w;
	}
	return ok;
}

static enum mat_code reply_org(struct svc_ctx *ctx, struct mat_organization *o)
{
	Org out;
	enum mat_code rc;

	svc_org_to_proto(ctx, o, &out);
	rc = svc_reply(ctx, &out.base);
	mat_organization_cleanup(o);
	return rc;
}

#define ALL_FIELDS                                                           \
	(STORE_ORG_DISPLAY_NAME | STORE_ORG_DESCRIPTION | STORE_ORG_LABELS | \
	 STORE_ORG_TARGET_LEVEL | STORE_ORG_TRANSITION_POLICY)

enum mat_code rpc_create_org(struct svc_ctx *ctx, const ProtobufCMessage *req_)
{
	const Mlops__Maturity__V1__CreateOrganizationRequest *req = (const void *)req_;
	struct mat_organization in = {0}, out = {0};
	struct store_call sc;
	char rid_buf[40];
	const char *rid = NULL;
	enum mat_code rc;

	if (!mat_org_id_valid(req->organization_id))
		mat_error_field(&ctx->err, "organization_id", "must match [a-z][a-z0-9-]{1,62}");
	svc_request_id(req->request_id, rid_buf, &rid, &ctx->err);
	if (req->organization == NULL) {
		mat_error_field(&ctx->err, "organization", "is required");
		return MAT_INVALID;
	}
	in.id = req->organization_id;
	in.transition_policy = MAT_POLICY_MANUAL_REVIEW;
	org_fields_in(req->organization, ALL_FIELDS, "organization", &in, &ctx->err);
	if (ctx->err.code != MAT_OK) {
		free(in.labels);
		return ctx->err.code;
	}
	svc_store_call(ctx, &sc);
	rc = store_org_create(&sc, &in, rid, &out, &ctx->err);
	free(in.labels);
	if (rc != MAT_OK)
		return rc;
	return reply_org(ctx, &out);
}

/* GetOrganization: one pipelined read on the storage loop (bindings and the row in one round
 * trip, shared with other calls' reads); no thread waits for it. */
struct get_org_step {
	char id[MAT_MAX_ORG_ID + 1];
	struct store_call sc;
	struct mat_organization out;
};

static enum mat_code get_org_then(struct svc_ctx *ctx, void *arg, enum mat_code rc)
{
	struct get_org_step *st = arg;

	if (rc != MAT_OK) {
		mat_organization_cleanup(&st->out);
		return rc;
	}
	return reply_org(ctx, &st->out);
}

enum mat_code rpc_get_org(struct svc_ctx *ctx, const ProtobufCMessage *req_)
{
	const Mlops__Maturity__V1__GetOrganizationRequest *req = (const void *)req_;
	struct get_org_step *st = svc_alloc(ctx, sizeof(*st));

	(void)req; /* its name is ctx->org (svc_methods.def) */
	memcpy(st->id, ctx->org, sizeof(st->id));
	svc_store_call(ctx, &st->sc); /* carries the authorization (svc_methods.def) */
	svc_async_begin(ctx, get_org_then, st);
	store_org_get_async(&st->sc, st->id, &st->out, &ctx->err, svc_async_done, ctx);
	return MAT_OK;
}

/* ListOrganizations: one pipelined read on the storage loop. The caller's bindings travel with
 * the page query, which applies visibility itself (a global binding sees every organization,
 * others see those they are bound to), so no second round trip decides it. */
struct list_orgs_step {
	struct store_call sc;
	struct mat_organization *orgs;
	size_t n;
	char *next;
	bool invalid;          /* the request has violations (in ctx->err) */
	struct mat_error serr; /* the storage step's */
};

static enum mat_code list_orgs_then(struct svc_ctx *ctx, void *arg, enum mat_code rc)
{
	struct list_orgs_step *st = arg;
	Mlops__Maturity__V1__ListOrganizationsResponse resp =
	    MLOPS__MATURITY__V1__LIST_ORGANIZATIONS_RESPONSE__INIT;

	if (st->invalid) /* the request's violations (anyone may call) */
		rc = ctx->err.code;
	else if (rc != MAT_OK)
		ctx->err = st->serr;
	if (rc == MAT_OK) {
		resp.n_organizations = st->n;
		resp.organizations =
		    svc_alloc(ctx, (st->n ? st->n : 1) * sizeof(*resp.organizations));
		for (size_t i = 0; i < st->n; i++) {
			resp.organizations[i] = svc_alloc(ctx, sizeof(Org));
			svc_org_to_proto(ctx, &st->orgs[i], resp.organizations[i]);
		}
		resp.next_page_token = svc_strdup(ctx, st->next);
		rc = svc_reply(ctx, &resp.base);
	}
	for (size_t i = 0; i < st->n; i++)
		mat_organization_cleanup(&st->orgs[i]);
	free(st->orgs);
	free(st->next);
	return rc;
}

enum mat_code rpc_list_orgs(struct svc_ctx *ctx, const ProtobufCMessage *req_)
{
	const Mlops__Maturity__V1__ListOrganizationsRequest *req = (const void *)req_;
	struct list_orgs_step *st = svc_alloc(ctx, sizeof(*st));
	int page_size;

	/* Invalid: the step still runs (its reply is the violations). */
	st->invalid = !svc_page_size(req->page_size, &page_size, &ctx->err);
	mat_error_clear(&st->serr);
	svc_store_call(ctx, &st->sc);
	st->sc.only_visible = !ctx->bootstrap_admin;
	svc_async_begin(ctx, list_orgs_then, st);
	store_org_list_async(&st->sc, st->invalid ? 1 : page_size, req->page_token, &st->orgs,
	                     &st->n, &st->next, &st->serr, svc_async_done, ctx);
	return MAT_OK;
}

static const struct {
	const char *path;
	unsigned field;
} updatable[] = {
    {"display_name", STORE_ORG_DISPLAY_NAME},
    {"description", STORE_ORG_DESCRIPTION},
    {"labels", STORE_ORG_LABELS},
    {"target_level", STORE_ORG_TARGET_LEVEL},
    {"transition_policy", STORE_ORG_TRANSITION_POLICY},
};

enum mat_code rpc_update_org(struct svc_ctx *ctx, const ProtobufCMessage *req_)
{
	const Mlops__Maturity__V1__UpdateOrganizationRequest *req = (const void *)req_;
	const Org *o = req->organization;
	char id[MAT_MAX_ORG_ID + 1];
	struct mat_organization in = {0}, out = {0};
	struct store_call sc;
	unsigned fields = 0;
	enum mat_code rc;

	/* organization and its name: parsed and authorized by the engine (svc_methods.def). */
	memcpy(id, ctx->org, sizeof(id));
	if (req->update_mask != NULL && req->update_mask->n_paths > 0) {
		for (size_t i = 0; i < req->update_mask->n_paths; i++) {
			const char *p = req->update_mask->paths[i];
			bool known = false;
			if (strcmp(p, "*") == 0) {
				fields |= 0x1f;
				continue;
			}
			for (size_t k = 0; k < sizeof(updatable) / sizeof(updatable[0]); k++) {
				if (strcmp(p, updatable[k].path) == 0) {
					fields |= updatable[k].field;
					known = true;
				}
			}
			if (!known) {
				char f[48];
				snprintf(f, sizeof(f), "update_mask.paths[%zu]", i);
				mat_error_field(
				    &ctx->err, f,
				    "\"%.64s\" is not an updatable field (display_name, "
				    "description, labels, target_level, "
				    "transition_policy)",
				    p);
			}
		}
		if (ctx->err.code != MAT_OK)
			return MAT_INVALID;
	} else {
		/* AIP-134: no mask means every field the request populates. */
		if (o->display_name[0] != '\0')
			fields |= STORE_ORG_DISPLAY_NAME;
		if (o->description[0] != '\0')
			fields |= STORE_ORG_DESCRIPTION;
		if (o->n_labels > 0)
			fields |= STORE_ORG_LABELS;
		if (o->target_level != 0)
			fields |= STORE_ORG_TARGET_LEVEL;
		if (o->transition_policy != 0)
			fields |= STORE_ORG_TRANSITION_POLICY;
	}
	in.id = id;
	org_fields_in(o, fields, "organization", &in, &ctx->err);
	if (ctx->err.code != MAT_OK) {
		free(in.labels);
		return ctx->err.code;
	}
	svc_store_call(ctx, &sc);
	rc = store_org_update(&sc, &in, fields, o->etag, &out, &ctx->err);
	free(in.labels);
	if (rc != MAT_OK)
		return rc;
	return reply_org(ctx, &out);
}

enum mat_code rpc_delete_org(struct svc_ctx *ctx, const ProtobufCMessage *req_)
{
	const Mlops__Maturity__V1__DeleteOrganizationRequest *req = (const void *)req_;
	Google__Protobuf__Empty empty = GOOGLE__PROTOBUF__EMPTY__INIT;
	char id[MAT_MAX_ORG_ID + 1];
	struct store_call sc;
	enum mat_code rc;

	memcpy(id, ctx->org, sizeof(id)); /* parsed and authorized by the engine */
	svc_store_call(ctx, &sc);
	rc = store_org_delete(&sc, id, req->etag, req->force, &ctx->err);
	if (rc != MAT_OK)
		return rc;
	return svc_reply(ctx, &empty.base);
}
