/* TransitionService: the reviewed level history (docs/api.md, "Level transitions"). Storage applies
 * a transition under the organization's row lock; four-eyes and staleness are decided there, in the
 * same transaction as the change. */
#include "mat_validate.h"
#include "mlops/maturity/v1/transition.pb-c.h"
#include "svc.h"
#include "svc_convert.h"
#include "svc_methods.h"

#include <stdlib.h>
#include <string.h>

typedef Mlops__Maturity__V1__LevelTransition Transition;

static enum mat_code reply_transition(struct svc_ctx *ctx, struct mat_transition *t)
{
	Transition out;
	enum mat_code rc;

	svc_transition_to_proto(ctx, t, &out);
	rc = svc_reply(ctx, &out.base);
	mat_transition_cleanup(t);
	return rc;
}

enum mat_code rpc_get_transition(struct svc_ctx *ctx, const ProtobufCMessage *req_)
{
	(void)req_; /* the engine parsed its resource name (svc_methods.def) */
	char org[MAT_MAX_ORG_ID + 1], id[40];
	struct mat_transition out = {0};
	struct store_call sc;
	enum mat_code rc;

	memcpy(org, ctx->org, sizeof(org)); /* parsed and authorized by the engine */
	memcpy(id, ctx->id, sizeof(id));
	svc_store_call(ctx, &sc);
	rc = store_transition_get(&sc, org, id, &out, &ctx->err);
	if (rc != MAT_OK)
		return rc;
	return reply_transition(ctx, &out);
}

enum mat_code rpc_list_transitions(struct svc_ctx *ctx, const ProtobufCMessage *req_)
{
	const Mlops__Maturity__V1__ListTransitionsRequest *req = (const void *)req_;
	Mlops__Maturity__V1__ListTransitionsResponse resp =
	    MLOPS__MATURITY__V1__LIST_TRANSITIONS_RESPONSE__INIT;
	struct store_transition_filter f = {0};
	char org[MAT_MAX_ORG_ID + 1];
	struct mat_transition *list = NULL;
	size_t n = 0;
	char *next = NULL;
	struct store_call sc;
	int page_size;
	enum mat_code rc;

	memcpy(org, ctx->org, sizeof(org)); /* parsed and authorized by the engine */
	svc_page_size(req->page_size, &page_size, &ctx->err);
	if ((int)req->state < 0 || (int)req->state > MAT_TRANSITION_SUPERSEDED)
		mat_error_field(&ctx->err, "state", "is not a LevelTransition.State value");
	svc_ts_in(req->start_time, "start_time", &f.start_time, &ctx->err);
	svc_ts_in(req->end_time, "end_time", &f.end_time, &ctx->err);
	if (ctx->err.code != MAT_OK)
		return ctx->err.code;
	f.org_id = strcmp(org, "-") == 0 ? NULL : org;
	f.state = (enum mat_transition_state)req->state;
	svc_store_call(ctx, &sc);
	if (f.org_id == NULL)
		sc.only_visible = !svc_sees_all(ctx);
	rc =
	    store_transition_list(&sc, &f, page_size, req->page_token, &list, &n, &next, &ctx->err);
	if (rc != MAT_OK)
		return rc;
	resp.n_transitions = n;
	resp.transitions = svc_alloc(ctx, (n ? n : 1) * sizeof(*resp.transitions));
	for (size_t i = 0; i < n; i++) {
		resp.transitions[i] = svc_alloc(ctx, sizeof(Transition));
		svc_transition_to_proto(ctx, &list[i], resp.transitions[i]);
		mat_transition_cleanup(&list[i]);
	}
	free(list);
	resp.next_page_token = svc_strdup(ctx, next);
	free(next);
	return svc_reply(ctx, &resp.base);
}

enum mat_code rpc_approve_transition(struct svc_ctx *ctx, const ProtobufCMessage *req_)
{
	const Mlops__Maturity__V1__ApproveTransitionRequest *req = (const void *)req_;
	char org[MAT_MAX_ORG_ID + 1], id[40];
	struct mat_transition out = {0};
	struct store_call sc;
	enum mat_code rc;

	memcpy(org, ctx->org, sizeof(org)); /* parsed and authorized by the engine */
	memcpy(id, ctx->id, sizeof(id));
	ctx->resource = req->name; /* for the audit of a four-eyes refusal */
	svc_store_call(ctx, &sc);
	rc = store_transition_approve(&sc, org, id, req->etag, &out, &ctx->err);
	if (rc != MAT_OK)
		return rc;
	return reply_transition(ctx, &out);
}

enum mat_code rpc_reject_transition(struct svc_ctx *ctx, const ProtobufCMessage *req_)
{
	const Mlops__Maturity__V1__RejectTransitionRequest *req = (const void *)req_;
	char org[MAT_MAX_ORG_ID + 1], id[40];
	struct mat_transition out = {0};
	struct store_call sc;
	enum mat_code rc;

	memcpy(org, ctx->org, sizeof(org)); /* parsed and authorized by the engine */
	memcpy(id, ctx->id, sizeof(id));
	if (!mat_check_string(&ctx->err, "reason", req->reason, MAT_MAX_REASON, true))
		return MAT_INVALID;
	svc_store_call(ctx, &sc);
	rc = store_transition_reject(&sc, org, id, req->reason, req->etag, &out, &ctx->err);
	if (rc != MAT_OK)
		return rc;
	return reply_transition(ctx, &out);
}
