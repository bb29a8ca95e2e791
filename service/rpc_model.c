/* ModelService: the built-in maturity models, read-only, from maturity/'s catalog. */
#include "mat_model.h"
#include "mlops/maturity/v1/model.pb-c.h"
#include "svc.h"
#include "svc_convert.h"
#include "svc_methods.h"

#include <stdio.h>
#include <string.h>

static char **strv(struct svc_ctx *ctx, const char *const *v, size_t n)
{
	char **out = svc_alloc(ctx, (n ? n : 1) * sizeof(*out));
	for (size_t i = 0; i < n; i++)
		out[i] = (char *)v[i]; /* static catalog strings outlive the call */
	return out;
}

static Mlops__Maturity__V1__MaturityModel *model_to_proto(struct svc_ctx *ctx,
                                                          const struct mat_model *m)
{
	Mlops__Maturity__V1__MaturityModel *out = svc_alloc(ctx, sizeof(*out));
	char *name = svc_alloc(ctx, strlen(m->id) + sizeof("models/"));

	mlops__maturity__v1__maturity_model__init(out);
	sprintf(name, "models/%s", m->id);
	out->name = name;
	out->display_name = (char *)m->display_name;
	out->n_levels = MAT_LEVEL_COUNT;
	out->levels = svc_alloc(ctx, MAT_LEVEL_COUNT * sizeof(*out->levels));
	for (size_t i = 0; i < MAT_LEVEL_COUNT; i++) {
		const struct mat_level *l = &m->levels[i];
		Mlops__Maturity__V1__Level *pl = svc_alloc(ctx, sizeof(*pl));
		mlops__maturity__v1__level__init(pl);
		pl->level = l->level;
		pl->name = (char *)l->name;
		pl->summary = (char *)l->summary;
		pl->n_challenges = l->n_challenges;
		pl->challenges = strv(ctx, l->challenges, l->n_challenges);
		pl->n_benefits = l->n_benefits;
		pl->benefits = strv(ctx, l->benefits, l->n_benefits);
		pl->n_technology = l->n_technology;
		pl->technology = strv(ctx, l->technology, l->n_technology);
		out->levels[i] = pl;
	}
	out->n_dimensions = m->n_dimensions;
	out->dimensions = svc_alloc(ctx, m->n_dimensions * sizeof(*out->dimensions));
	for (size_t i = 0; i < m->n_dimensions; i++) {
		Mlops__Maturity__V1__Dimension *d = svc_alloc(ctx, sizeof(*d));
		mlops__maturity__v1__dimension__init(d);
		d->id = (char *)m->dimensions[i].id;
		d->display_name = (char *)m->dimensions[i].display_name;
		d->description = (char *)m->dimensions[i].description;
		out->dimensions[i] = d;
	}
	out->n_practices = m->n_practices;
	out->practices = svc_alloc(ctx, m->n_practices * sizeof(*out->practices));
	for (size_t i = 0; i < m->n_practices; i++) {
		const struct mat_practice *p = &m->practices[i];
		Mlops__Maturity__V1__Practice *pp = svc_alloc(ctx, sizeof(*pp));
		mlops__maturity__v1__practice__init(pp);
		pp->id = (char *)p->id;
		pp->dimension_id = (char *)m->dimensions[p->dimension].id;
		pp->level = p->level;
		pp->title = (char *)p->title;
		pp->description = (char *)p->description;
		out->practices[i] = pp;
	}
	return out;
}

enum mat_code rpc_get_model(struct svc_ctx *ctx, const ProtobufCMessage *req_)
{
	const Mlops__Maturity__V1__GetMaturityModelRequest *req = (const void *)req_;
	const struct mat_model *m;

	if (req->name[0] == '\0')
		return mat_error_field(&ctx->err, "name", "is required (models/{model_id})");
	if (strncmp(req->name, "models/", 7) != 0)
		return mat_error_field(&ctx->err, "name", "must look like models/{model_id}");
	m = mat_model_find(req->name);
	if (m == NULL)
		return mat_error_set(&ctx->err, MAT_NOT_FOUND, "model %.200s not found", req->name);
	return svc_reply(ctx, &model_to_proto(ctx, m)->base);
}

enum mat_code rpc_list_models(struct svc_ctx *ctx, const ProtobufCMessage *req_)
{
	const Mlops__Maturity__V1__ListMaturityModelsRequest *req = (const void *)req_;
	Mlops__Maturity__V1__ListMaturityModelsResponse resp =
	    MLOPS__MATURITY__V1__LIST_MATURITY_MODELS_RESPONSE__INIT;
	size_t n, start = 0, count;
	const struct mat_model *const *all = mat_model_all(&n);
	int page_size;

	if (!svc_page_size(req->page_size, &page_size, &ctx->err))
		return MAT_INVALID;
	/* The token is the name of the last model of the previous page: models are few and
	 * immutable, and names sort stably, so this is a keyset token without server state. */
	if (req->page_token[0] != '\0') {
		const struct mat_model *last = strncmp(req->page_token, "models/", 7) == 0
		                                   ? mat_model_find(req->page_token)
		                                   : NULL;
		if (last == NULL)
			return mat_error_field(&ctx->err, "page_token",
			                       "is not a token this method returned");
		while (start < n && all[start] != last)
			start++;
		start++;
	}
	count = n > start ? n - start : 0;
	if (count > (size_t)page_size)
		count = (size_t)page_size;
	resp.n_models = count;
	resp.models = svc_alloc(ctx, (count ? count : 1) * sizeof(*resp.models));
	for (size_t i = 0; i < count; i++)
		resp.models[i] = model_to_proto(ctx, all[start + i]);
	if (start + count < n)
		resp.next_page_token = resp.models[count - 1]->name;
	return svc_reply(ctx, &resp.base);
}
