/* ReportingService: the portfolio summary and the two exports. Exports are engine-driven streams
 * (svc_stream_start): keyset batches fetched one at a time, each only when the previous one has
 * been sent (bounded memory on both sides: one batch of records, one message in flight, no
 * thread held while the client reads or while PostgreSQL answers: a batch is read on the storage
 * loop and decoded on the engine's work pool), each message carrying the cursor that resumes
 * right after it; they stop at the first failed send, which is how a cancelled call or a passed
 * deadline shows. */
#include "mat_model.h"
#include "mat_validate.h"
#include "mlops/maturity/v1/reporting.pb-c.h"
#include "svc.h"
#include "svc_convert.h"
#include "svc_methods.h"

#include <stdlib.h>
#include <string.h>

#define EXPORT_BATCH 200

enum mat_code rpc_portfolio_summary(struct svc_ctx *ctx, const ProtobufCMessage *req_)
{
	const Mlops__Maturity__V1__GetPortfolioSummaryRequest *req = (const void *)req_;
	Mlops__Maturity__V1__PortfolioSummary out = MLOPS__MATURITY__V1__PORTFOLIO_SUMMARY__INIT;
	const struct mat_model *m = mat_model_find("mlops-v1");
	struct mat_label *labels = NULL;
	struct store_portfolio p;
	mat_time_us start = 0, end = 0;
	struct store_call sc;
	enum mat_code rc;

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

/* The exports: one stream driver for both, with a per-kind triple (start a keyset batch's read,
 * decode what it read, encode a record). The state copies what it needs from the request, which
 * does not outlive the handler. */
struct export;
struct export_kind {
	void (*read)(struct export *e, struct svc_ctx *ctx, store_done_fn done, void *arg);
	enum mat_code (*decode)(struct svc_ctx *ctx, struct export *e,
	                        struct store_export_read *rd);
	const ProtobufCMessage *(*encode)(struct svc_ctx *ctx, struct export *e, size_t i);
	void (*cleanup)(struct export *e, size_t i);
};

struct export
{
	const struct export_kind *kind;
	char org_buf[MAT_MAX_ORG_ID + 1];
	const char *org;                 /* NULL = every organization the caller sees */
	enum mat_assessment_state state; /* assessments */
	mat_time_us since;               /* updated_after (assessments), start_time (transitions) */
	char cursor[512];                /* resumes after the last record fetched */
	int asked;                       /* records the last fetch asked for */
	/* The read in flight or read (on the storage loop), and the call it borrows. */
	struct store_call sc;
	struct store_export_read *rd;
	/* The current batch. */
	struct mat_assessment *assessments;
	struct mat_transition *transitions;
	char **cursors;
	size_t n;
};

static void read_assessments(struct export *e, struct svc_ctx *ctx, store_done_fn done, void *arg)
{
	store_export_assessments_read(&e->sc, e->org, e->state, e->since, e->cursor, e->asked,
	                              &e->rd, &ctx->err, done, arg);
}

static enum mat_code decode_assessments(struct svc_ctx *ctx, struct export *e,
                                        struct store_export_read *rd)
{
	return store_export_assessments_decode(rd, &e->assessments, &e->cursors, &e->n, &ctx->err);
}

static const ProtobufCMessage *encode_assessment(struct svc_ctx *ctx, struct export *e, size_t i)
{
	Mlops__Maturity__V1__ExportAssessmentsResponse *msg = svc_alloc(ctx, sizeof(*msg));
	Mlops__Maturity__V1__Assessment *a = svc_alloc(ctx, sizeof(*a));

	mlops__maturity__v1__export_assessments_response__init(msg);
	svc_assessment_to_proto(ctx, &e->assessments[i], a);
	msg->assessment = a;
	msg->cursor = e->cursors[i];
	return &msg->base;
}

static void cleanup_assessment(struct export *e, size_t i)
{
	mat_assessment_cleanup(&e->assessments[i]);
}

static void read_transitions(struct export *e, struct svc_ctx *ctx, store_done_fn done, void *arg)
{
	store_export_transitions_read(&e->sc, e->org, e->since, e->cursor, e->asked, &e->rd,
	                              &ctx->err, done, arg);
}

static enum mat_code decode_transitions(struct svc_ctx *ctx, struct export *e,
                                        struct store_export_read *rd)
{
	return store_export_transitions_decode(rd, &e->transitions, &e->cursors, &e->n, &ctx->err);
}

static const ProtobufCMessage *encode_transition(struct svc_ctx *ctx, struct export *e, size_t i)
{
	Mlops__Maturity__V1__ExportTransitionsResponse *msg = svc_alloc(ctx, sizeof(*msg));
	Mlops__Maturity__V1__LevelTransition *t = svc_alloc(ctx, sizeof(*t));

	mlops__maturity__v1__export_transitions_response__init(msg);
	svc_transition_to_proto(ctx, &e->transitions[i], t);
	msg->transition = t;
	msg->cursor = e->cursors[i];
	return &msg->base;
}

static void cleanup_transition(struct export *e, size_t i)
{
	mat_transition_cleanup(&e->transitions[i]);
}

static const struct export_kind assessments_kind = {read_assessments, decode_assessments,
                                                    encode_assessment, cleanup_assessment};
static const struct export_kind transitions_kind = {read_transitions, decode_transitions,
                                                    encode_transition, cleanup_transition};

static void export_release(void *state)
{
	struct export *e = state;

	store_export_read_free(e->rd); /* read, not decoded: the stream ended first */
	e->rd = NULL;
	for (size_t i = 0; i < e->n; i++) {
		e->kind->cleanup(e, i);
		free(e->cursors[i]);
	}
	free(e->assessments);
	free(e->transitions);
	free(e->cursors);
	e->assessments = NULL;
	e->transitions = NULL;
	e->cursors = NULL;
	e->n = 0;
}

/* The next batch's read, on the storage loop (the engine calls it holding a bulk slot). */
static void export_read(struct svc_ctx *ctx, void *state, store_done_fn done, void *arg)
{
	struct export *e = state;

	/* The batch is this stream's share of the memory budget (docs/architecture.md). */
	e->asked = svc_stream_batch(ctx, EXPORT_BATCH);
	svc_store_call(ctx, &e->sc);
	e->kind->read(e, ctx, done, arg);
}

/* What it read, as the batch (on a thread of the engine's work pool). */
static enum mat_code export_fetch(struct svc_ctx *ctx, void *state, size_t *n, enum svc_fetch *next)
{
	struct export *e = state;
	struct store_export_read *rd = e->rd;
	enum mat_code rc;

	e->rd = NULL; /* the decode frees it */
	rc = e->kind->decode(ctx, e, rd);

	if (rc != MAT_OK)
		return rc;
	if (e->n > 0)
		snprintf(e->cursor, sizeof(e->cursor), "%s", e->cursors[e->n - 1]);
	*n = e->n;
	/* A short batch is the end: fewer records than asked for exist past the cursor. */
	*next = e->n < (size_t)e->asked ? SVC_FETCH_LAST : SVC_FETCH_MORE;
	return MAT_OK;
}

static const ProtobufCMessage *export_encode(struct svc_ctx *ctx, void *state, size_t i)
{
	struct export *e = state;
	return e->kind->encode(ctx, e, i);
}

static const struct svc_stream_ops export_ops = {.read = export_read,
                                                 .fetch = export_fetch,
                                                 .encode = export_encode,
                                                 .release = export_release,
                                                 .free = free,
                                                 .pack_at_fetch = true};

/* The part both exports share: organization (parsed and authorized by the engine: "" is every
 * organization, with a global binding), cursor. NULL with ctx->err set. */
static struct export *export_open(struct svc_ctx *ctx, const struct export_kind *kind,
                                  const char *organization, const char *cursor)
{
	struct export *e = calloc(1, sizeof(*e));

	if (e == NULL) {
		mat_error_set(&ctx->err, MAT_INTERNAL, "out of memory");
		return NULL;
	}
	e->kind = kind;
	(void)organization;
	memcpy(e->org_buf, ctx->org, sizeof(e->org_buf));
	e->org = e->org_buf[0] != '\0' ? e->org_buf : NULL;
	if (strlen(cursor) >= sizeof(e->cursor))
		mat_error_field(&ctx->err, "cursor", "is not a cursor this method returned");
	snprintf(e->cursor, sizeof(e->cursor), "%s", cursor);
	return e;
}

static enum mat_code export_begin(struct svc_ctx *ctx, struct export *e)
{
	if (ctx->err.code != MAT_OK) {
		free(e);
		return ctx->err.code;
	}
	svc_stream_start(ctx, &export_ops, e);
	return MAT_OK;
}

enum mat_code rpc_export_assessments(struct svc_ctx *ctx, const ProtobufCMessage *req_)
{
	const Mlops__Maturity__V1__ExportAssessmentsRequest *req = (const void *)req_;
	struct export *e = export_open(ctx, &assessments_kind, req->organization, req->cursor);

	if (e == NULL)
		return ctx->err.code;
	if ((int)req->state < 0 || (int)req->state > MAT_ASSESSMENT_SUBMITTED)
		mat_error_field(&ctx->err, "state", "is not an Assessment.State value");
	e->state = (enum mat_assessment_state)req->state;
	svc_ts_in(req->updated_after, "updated_after", &e->since, &ctx->err);
	return export_begin(ctx, e);
}

enum mat_code rpc_export_transitions(struct svc_ctx *ctx, const ProtobufCMessage *req_)
{
	const Mlops__Maturity__V1__ExportTransitionsRequest *req = (const void *)req_;
	struct export *e = export_open(ctx, &transitions_kind, req->organization, req->cursor);

	if (e == NULL)
		return ctx->err.code;
	svc_ts_in(req->start_time, "start_time", &e->since, &ctx->err);
	return export_begin(ctx, e);
}
