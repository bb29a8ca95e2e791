/* ReportingService: the portfolio summary and the two exports. Exports stream keyset batches
 * (bounded memory on both sides: one batch of records, one message in flight), each message
 * carrying the cursor that resumes right after it; they stop at the first failed send, which is
 * how a cancelled call or a passed deadline shows. */
#include "mat_model.h"
#include "mat_validate.h"
#include "mlops/maturity/v1/reporting.pb-c.h"
#include "svc.h"
#include "svc_convert.h"

#include <stdlib.h>
#include <string.h>

#define EXPORT_BATCH 200

static enum mat_code summary(struct svc_ctx *ctx, const ProtobufCMessage *req_)
{
	const Mlops__Maturity__V1__GetPortfolioSummaryRequest *req = (const void *)req_;
	Mlops__Maturity__V1__PortfolioSummary out = MLOPS__MATURITY__V1__PORTFOLIO_SUMMARY__INIT;
	const struct mat_model *m = mat_model_find("mlops-v1");
	struct mat_label *labels = NULL;
	struct store_portfolio p;
	mat_time_us start = 0, end = 0;
	struct store_call sc;
	enum mat_code rc = svc_authorize(ctx, NULL);

	if (rc != MAT_OK)
		return rc;
	if (req->n_labels > MAT_MAX_LABELS)
		return mat_error_field(&ctx->err, "labels", "at most %d labels", MAT_MAX_LABELS);
	labels = calloc(req->n_labels ? req->n_labels : 1, sizeof(*labels));
	if (labels == NULL)
		return mat_error_set(&ctx->err, MAT_INTERNAL, "out of memory");
	for (size_t i = 0; i < req->n_labels; i++) {
		if (!mat_label_key_valid(req->labels[i]->key))
			mat_error_field(&ctx->err, "labels",
			                "label key \"%.64s\" must match "
			                "[a-z][a-z0-9_-]{0,62}",
			                req->labels[i]->key);
		mat_check_string(&ctx->err, "labels", req->labels[i]->value, MAT_MAX_LABEL_VALUE,
		                 false);
		labels[i].key = req->labels[i]->key;
		labels[i].value = req->labels[i]->value;
	}
	svc_ts_in(req->start_time, "start_time", &start, &ctx->err);
	svc_ts_in(req->end_time, "end_time", &end, &ctx->err);
	if (ctx->err.code != MAT_OK) {
		free(labels);
		return ctx->err.code;
	}
	svc_store_call(ctx, &sc);
	rc = store_portfolio_summary(&sc, labels, req->n_labels, start, end, &p, &ctx->err);
	free(labels);
	if (rc != MAT_OK)
		return rc;
	out.organization_count = p.organization_count;
	out.n_organizations_per_level = 5;
	out.organizations_per_level = svc_alloc(ctx, 5 * sizeof(int64_t));
	memcpy(out.organizations_per_level, p.organizations_per_level, 5 * sizeof(int64_t));
	out.n_dimensions = p.n_dimensions;
	out.dimensions = svc_alloc(ctx, (p.n_dimensions ? p.n_dimensions : 1) * sizeof(void *));
	for (size_t d = 0; d < p.n_dimensions; d++) {
		Mlops__Maturity__V1__DimensionSummary *ds = svc_alloc(ctx, sizeof(*ds));
		mlops__maturity__v1__dimension_summary__init(ds);
		ds->dimension_id = (char *)m->dimensions[d].id;
		ds->n_organizations_per_level = 5;
		ds->organizations_per_level = svc_alloc(ctx, 5 * sizeof(int64_t));
		memcpy(ds->organizations_per_level, p.dimension_per_level[d], 5 * sizeof(int64_t));
		out.dimensions[d] = ds;
	}
	out.at_or_above_target_count = p.at_or_above_target_count;
	out.upgrades = p.upgrades;
	out.regressions = p.regressions;
	out.mean_maturity_index = p.mean_maturity_index;
	return svc_reply(ctx, &out.base);
}

/* "" -> no organization (every one, with a global binding); else organizations/{id}. */
static bool optional_org(struct svc_ctx *ctx, const char *name, char *org, const char **out)
{
	*out = NULL;
	if (name[0] == '\0')
		return true;
	if (!svc_parse_org_name(name, "organization", false, org, &ctx->err))
		return false;
	*out = org;
	return true;
}

static void free_cursors(char **cursors, size_t n)
{
	for (size_t i = 0; i < n; i++)
		free(cursors[i]);
	free(cursors);
}

static enum mat_code export_assessments(struct svc_ctx *ctx, const ProtobufCMessage *req_)
{
	const Mlops__Maturity__V1__ExportAssessmentsRequest *req = (const void *)req_;
	char org_buf[MAT_MAX_ORG_ID + 1], cursor[512];
	const char *org;
	mat_time_us after = 0;
	struct store_call sc;
	enum mat_code rc;

	if (!optional_org(ctx, req->organization, org_buf, &org))
		return MAT_INVALID;
	rc = svc_authorize(ctx, org);
	if (rc != MAT_OK)
		return rc;
	if ((int)req->state < 0 || (int)req->state > MAT_ASSESSMENT_SUBMITTED)
		mat_error_field(&ctx->err, "state", "is not an Assessment.State value");
	svc_ts_in(req->updated_after, "updated_after", &after, &ctx->err);
	if (strlen(req->cursor) >= sizeof(cursor))
		mat_error_field(&ctx->err, "cursor", "is not a cursor this method returned");
	if (ctx->err.code != MAT_OK)
		return ctx->err.code;
	snprintf(cursor, sizeof(cursor), "%s", req->cursor);
	svc_store_call(ctx, &sc);
	for (;;) {
		struct mat_assessment *batch = NULL;
		char **cursors = NULL;
		size_t n = 0;

		rc =
		    store_export_assessments(&sc, org, (enum mat_assessment_state)req->state, after,
		                             cursor, EXPORT_BATCH, &batch, &cursors, &n, &ctx->err);
		if (rc != MAT_OK)
			return rc;
		for (size_t i = 0; i < n && rc == MAT_OK; i++) {
			Mlops__Maturity__V1__ExportAssessmentsResponse msg =
			    MLOPS__MATURITY__V1__EXPORT_ASSESSMENTS_RESPONSE__INIT;
			Mlops__Maturity__V1__Assessment a;
			svc_assessment_to_proto(ctx, &batch[i], &a);
			msg.assessment = &a;
			msg.cursor = cursors[i];
			rc = svc_stream_send(ctx, &msg.base);
			svc_scratch_reset(ctx);
		}
		if (n > 0)
			snprintf(cursor, sizeof(cursor), "%s", cursors[n - 1]);
		for (size_t i = 0; i < n; i++)
			mat_assessment_cleanup(&batch[i]);
		free(batch);
		free_cursors(cursors, n);
		if (rc != MAT_OK || n < EXPORT_BATCH)
			return rc;
	}
}

static enum mat_code export_transitions(struct svc_ctx *ctx, const ProtobufCMessage *req_)
{
	const Mlops__Maturity__V1__ExportTransitionsRequest *req = (const void *)req_;
	char org_buf[MAT_MAX_ORG_ID + 1], cursor[512];
	const char *org;
	mat_time_us start = 0;
	struct store_call sc;
	enum mat_code rc;

	if (!optional_org(ctx, req->organization, org_buf, &org))
		return MAT_INVALID;
	rc = svc_authorize(ctx, org);
	if (rc != MAT_OK)
		return rc;
	svc_ts_in(req->start_time, "start_time", &start, &ctx->err);
	if (strlen(req->cursor) >= sizeof(cursor))
		mat_error_field(&ctx->err, "cursor", "is not a cursor this method returned");
	if (ctx->err.code != MAT_OK)
		return ctx->err.code;
	snprintf(cursor, sizeof(cursor), "%s", req->cursor);
	svc_store_call(ctx, &sc);
	for (;;) {
		struct mat_transition *batch = NULL;
		char **cursors = NULL;
		size_t n = 0;

		rc = store_export_transitions(&sc, org, start, cursor, EXPORT_BATCH, &batch,
		                              &cursors, &n, &ctx->err);
		if (rc != MAT_OK)
			return rc;
		for (size_t i = 0; i < n && rc == MAT_OK; i++) {
			Mlops__Maturity__V1__ExportTransitionsResponse msg =
			    MLOPS__MATURITY__V1__EXPORT_TRANSITIONS_RESPONSE__INIT;
			Mlops__Maturity__V1__LevelTransition t;
			svc_transition_to_proto(ctx, &batch[i], &t);
			msg.transition = &t;
			msg.cursor = cursors[i];
			rc = svc_stream_send(ctx, &msg.base);
			svc_scratch_reset(ctx);
		}
		if (n > 0)
			snprintf(cursor, sizeof(cursor), "%s", cursors[n - 1]);
		for (size_t i = 0; i < n; i++)
			mat_transition_cleanup(&batch[i]);
		free(batch);
		free_cursors(cursors, n);
		if (rc != MAT_OK || n < EXPORT_BATCH)
			return rc;
	}
}

static const struct svc_method_impl methods[] = {
    {"GetPortfolioSummary", summary, SVC_UNARY},
    {"ExportAssessments", export_assessments, SVC_SERVER_STREAM},
    {"ExportTransitions", export_transitions, SVC_SERVER_STREAM},
};

const struct svc_service_impl svc_reporting_service = {
    &mlops__maturity__v1__reporting_service__descriptor, methods,
    sizeof(methods) / sizeof(methods[0])};
