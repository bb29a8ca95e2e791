/* Conversions and the call arena. */
#include "svc_convert.h"

#include "mat_validate.h"

#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

struct svc_arena_block {
	struct svc_arena_block *next;
	size_t used, cap;
	max_align_t data[];
};

#define ARENA_BLOCK 16384

/* One spare first-size block per thread: most calls fit in one block, so a call's arena costs
 * no malloc/free once a thread is warm (per-call malloc/free of 16 KiB blocks showed in the
 * profile as malloc_consolidate). Freed by the key's destructor when the thread exits. */
static pthread_key_t spare_key;
static pthread_once_t spare_once = PTHREAD_ONCE_INIT;

static void spare_init(void)
{
	(void)pthread_key_create(&spare_key, free);
}

static struct svc_arena_block *block_new(size_t cap)
{
	struct svc_arena_block *b = NULL;

	if (cap == ARENA_BLOCK) {
		pthread_once(&spare_once, spare_init);
		b = pthread_getspecific(spare_key);
		if (b != NULL)
			(void)pthread_setspecific(spare_key, NULL);
	}
	if (b == NULL)
		b = malloc(sizeof(*b) + cap);
	if (b != NULL) {
		b->cap = cap;
		b->used = 0;
		b->next = NULL;
	}
	return b;
}

void *svc_arena_alloc(struct svc_arena_block **arena, size_t n)
{
	struct svc_arena_block *b = *arena;
	size_t need = (n + sizeof(max_align_t) - 1) & ~(sizeof(max_align_t) - 1);
	char *p;

	if (b == NULL || b->cap - b->used < need) {
		b = block_new(need > ARENA_BLOCK ? need : ARENA_BLOCK);
		if (b == NULL)
			return NULL;
		b->next = *arena;
		*arena = b;
	}
	p = (char *)b->data + b->used;
	b->used += need;
	return p;
}

void *svc_alloc(struct svc_ctx *ctx, size_t n)
{
	void *p = svc_arena_alloc(&ctx->arena, n);

	if (p == NULL) {
		fprintf(stderr, "maturityd: out of memory\n");
		abort();
	}
	memset(p, 0, n);
	return p;
}

char *svc_strdup(struct svc_ctx *ctx, const char *s)
{
	size_t len = s ? strlen(s) : 0;
	char *d = svc_alloc(ctx, len + 1);
	if (len)
		memcpy(d, s, len);
	return d;
}

void svc_arena_free(struct svc_arena_block *b)
{
	while (b != NULL) {
		struct svc_arena_block *next = b->next;
		if (b->cap == ARENA_BLOCK) {
			pthread_once(&spare_once, spare_init);
			if (pthread_getspecific(spare_key) == NULL &&
			    pthread_setspecific(spare_key, b) == 0)
				b = NULL;
		}
		free(b);
		b = next;
	}
}

Google__Protobuf__Timestamp *svc_ts(struct svc_ctx *ctx, mat_time_us t)
{
	Google__Protobuf__Timestamp *ts;

	if (t == 0)
		return NULL;
	ts = svc_alloc(ctx, sizeof(*ts));
	google__protobuf__timestamp__init(ts);
	ts->seconds = t / 1000000;
	ts->nanos = (int32_t)(t % 1000000) * 1000;
	if (ts->nanos < 0) {
		ts->seconds--;
		ts->nanos += 1000000000;
	}
	return ts;
}

bool svc_ts_in(const Google__Protobuf__Timestamp *ts, const char *field, mat_time_us *out,
               struct mat_error *err)
{
	*out = 0;
	if (ts == NULL)
		return true;
	/* google.protobuf.Timestamp's own range: 0001-01-01 .. 9999-12-31. */
	if (ts->seconds < -62135596800LL || ts->seconds > 253402300799LL || ts->nanos < 0 ||
	    ts->nanos > 999999999) {
		mat_error_field(err, field, "is not a valid timestamp");
		return false;
	}
	*out = ts->seconds * 1000000 + ts->nanos / 1000;
	return true;
}

bool svc_parse_org_name(const char *name, const char *field, bool allow_dash, char *out,
                        struct mat_error *err)
{
	static const char prefix[] = "organizations/";
	const char *id;

	out[0] = '\0';
	if (name == NULL || name[0] == '\0') {
		mat_error_field(err, field, "is required (organizations/{organization_id})");
		return false;
	}
	if (strncmp(name, prefix, sizeof(prefix) - 1) != 0) {
		mat_error_field(err, field, "must look like organizations/{organization_id}");
		return false;
	}
	id = name + sizeof(prefix) - 1;
	if (allow_dash && strcmp(id, "-") == 0) {
		strcpy(out, "-");
		return true;
	}
	if (!mat_org_id_valid(id)) {
		mat_error_field(err, field, "organization id must match [a-z][a-z0-9-]{1,62}");
		return false;
	}
	strcpy(out, id);
	return true;
}

bool svc_parse_child_name(const char *name, const char *collection, const char *field,
                          char *org_out, char *id_out, struct mat_error *err)
{
	static const char prefix[] = "organizations/";
	const char *p, *slash;
	size_t clen = strlen(collection), olen;
	char uuid[40];

	org_out[0] = id_out[0] = '\0';
	if (name == NULL || name[0] == '\0') {
		mat_error_field(err, field, "is required (organizations/{org}/%s/{id})",
		                collection);
		return false;
	}
	if (strncmp(name, prefix, sizeof(prefix) - 1) != 0)
		goto bad;
	p = name + sizeof(prefix) - 1;
	slash = strchr(p, '/');
	if (slash == NULL)
		goto bad;
	olen = (size_t)(slash - p);
	if (olen > MAT_MAX_ORG_ID)
		goto bad;
	memcpy(org_out, p, olen);
	org_out[olen] = '\0';
	if (!mat_org_id_valid(org_out))
		goto bad;
	p = slash + 1;
	if (strncmp(p, collection, clen) != 0 || p[clen] != '/')
		goto bad;
	p += clen + 1;
	if (strlen(p) != 36)
		goto bad;
	memcpy(uuid, p, 37);
	if (!mat_uuid_valid(uuid))
		goto bad;
	mat_uuid_lower(uuid, id_out);
	return true;
bad:
	org_out[0] = id_out[0] = '\0';
	mat_error_field(err, field, "must look like organizations/{org}/%s/{id}", collection);
	return false;
}

bool svc_page_size(int32_t requested, int *out, struct mat_error *err)
{
	if (requested < 0) {
		*out = 0;
		mat_error_field(err, "page_size", "must not be negative");
		return false;
	}
	*out = requested == 0 ? MAT_PAGE_SIZE_DEFAULT
	                      : (requested > MAT_PAGE_SIZE_MAX ? MAT_PAGE_SIZE_MAX : requested);
	return true;
}

bool svc_request_id(const char *in, char *buf, const char **out, struct mat_error *err)
{
	*out = NULL;
	if (in == NULL || in[0] == '\0')
		return true;
	if (!mat_uuid_valid(in)) {
		mat_error_field(err, "request_id", "must be a UUID in canonical text form");
		return false;
	}
	mat_uuid_lower(in, buf);
	*out = buf;
	return true;
}

void svc_org_to_proto(struct svc_ctx *ctx, const struct mat_organization *o,
                      Mlops__Maturity__V1__Organization *out)
{
	char *name;
	size_t len;

	mlops__maturity__v1__organization__init(out);
	len = strlen(o->id) + sizeof("organizations/");
	name = svc_alloc(ctx, len);
	snprintf(name, len, "organizations/%s", o->id);
	out->name = name;
	out->display_name = svc_strdup(ctx, o->display_name);
	out->description = svc_strdup(ctx, o->description);
	out->n_labels = o->n_labels;
	out->labels = svc_alloc(ctx, (o->n_labels ? o->n_labels : 1) * sizeof(*out->labels));
	for (size_t i = 0; i < o->n_labels; i++) {
		Mlops__Maturity__V1__Organization__LabelsEntry *e = svc_alloc(ctx, sizeof(*e));
		mlops__maturity__v1__organization__labels_entry__init(e);
		e->key = svc_strdup(ctx, o->labels[i].key);
		e->value = svc_strdup(ctx, o->labels[i].value);
		out->labels[i] = e;
	}
	out->current_level = o->current_level;
	out->target_level = o->target_level;
	out->transition_policy = (Mlops__Maturity__V1__TransitionPolicy)o->transition_policy;
	if (o->last_assessment_id != NULL && o->last_assessment_id[0] != '\0') {
		len = strlen(o->id) + strlen(o->last_assessment_id) +
		      sizeof("organizations//assessments/");
		name = svc_alloc(ctx, len);
		snprintf(name, len, "organizations/%s/assessments/%s", o->id,
		         o->last_assessment_id);
		out->last_assessment = name;
	} else {
		out->last_assessment = svc_strdup(ctx, "");
	}
	out->create_time = svc_ts(ctx, o->create_time);
	out->update_time = svc_ts(ctx, o->update_time);
	out->etag = svc_strdup(ctx, o->etag);
}

Mlops__Maturity__V1__AssessmentScore *
svc_score_to_proto(struct svc_ctx *ctx, const struct mat_model *m, const struct mat_score *s)
{
	Mlops__Maturity__V1__AssessmentScore *out = svc_alloc(ctx, sizeof(*out));

	mlops__maturity__v1__assessment_score__init(out);
	out->overall_level = s->overall_level;
	out->maturity_index = s->maturity_index;
	out->progress_to_next_level = s->progress_to_next_level;
	out->satisfied_count = s->satisfied_count;
	out->total_count = s->total_count;
	out->n_dimension_scores = s->n_dimensions;
	out->dimension_scores = svc_alloc(ctx, (s->n_dimensions ? s->n_dimensions : 1) *
	                                           sizeof(*out->dimension_scores));
	for (size_t i = 0; i < s->n_dimensions; i++) {
		Mlops__Maturity__V1__DimensionScore *d = svc_alloc(ctx, sizeof(*d));
		mlops__maturity__v1__dimension_score__init(d);
		d->dimension_id = (char *)m->dimensions[i].id;
		d->level = s->dimensions[i].level;
		d->progress_to_next_level = s->dimensions[i].progress_to_next_level;
		d->satisfied_count = s->dimensions[i].satisfied_count;
		d->total_count = s->dimensions[i].total_count;
		out->dimension_scores[i] = d;
	}
	out->n_blocking_practice_ids = s->n_blocking;
	out->blocking_practice_ids =
	    svc_alloc(ctx, (s->n_blocking ? s->n_blocking : 1) * sizeof(char *));
	for (size_t i = 0; i < s->n_blocking; i++)
		out->blocking_practice_ids[i] = (char *)m->practices[s->blocking[i]].id;
	return out;
}

void svc_assessment_to_proto(struct svc_ctx *ctx, const struct mat_assessment *a,
                             Mlops__Maturity__V1__Assessment *out)
{
	const struct mat_model *m = mat_model_find(a->model_id);
	enum mat_status status[MAT_MAX_PRACTICES];
	struct mat_score score;
	size_t len;
	char *s;

	mlops__maturity__v1__assessment__init(out);
	len = strlen(a->org_id) + strlen(a->id) + sizeof("organizations//assessments/");
	s = svc_alloc(ctx, len);
	snprintf(s, len, "organizations/%s/assessments/%s", a->org_id, a->id);
	out->name = s;
	out->title = svc_strdup(ctx, a->title);
	len = strlen(a->model_id) + sizeof("models/");
	s = svc_alloc(ctx, len);
	snprintf(s, len, "models/%s", a->model_id);
	out->model = s;
	out->state = (Mlops__Maturity__V1__Assessment__State)a->state;
	out->n_answers = a->n_answers;
	out->answers = svc_alloc(ctx, (a->n_answers ? a->n_answers : 1) * sizeof(*out->answers));
	for (size_t i = 0; i < a->n_answers; i++) {
		const struct mat_answer *in = &a->answers[i];
		Mlops__Maturity__V1__Answer *pa = svc_alloc(ctx, sizeof(*pa));
		mlops__maturity__v1__answer__init(pa);
		pa->practice_id = svc_strdup(ctx, in->practice_id);
		pa->status = (Mlops__Maturity__V1__PracticeStatus)in->status;
		pa->note = svc_strdup(ctx, in->note);
		pa->evidence_uri = svc_strdup(ctx, in->evidence_uri);
		pa->update_time = svc_ts(ctx, in->update_time);
		pa->updated_by = svc_strdup(ctx, in->updated_by);
		out->answers[i] = pa;
	}
	if (m != NULL) {
		mat_answers_to_status(m, a->answers, a->n_answers, status);
		mat_score_compute(m, status, &score);
		out->score = svc_score_to_proto(ctx, m, &score);
	}
	out->creator = svc_strdup(ctx, a->creator);
	out->submitter = svc_strdup(ctx, a->submitter);
	out->create_time = svc_ts(ctx, a->create_time);
	out->update_time = svc_ts(ctx, a->update_time);
	out->submit_time = svc_ts(ctx, a->submit_time);
	out->etag = svc_strdup(ctx, a->etag);
}

struct mat_answer *svc_answers_in(Mlops__Maturity__V1__Answer *const *in, size_t n,
                                  const char *field, struct mat_error *err)
{
	struct mat_answer *out;

	if (n > MAT_MAX_ANSWERS) {
		mat_error_field(err, field, "at most %d answers in one request", MAT_MAX_ANSWERS);
		return NULL;
	}
	out = calloc(n ? n : 1, sizeof(*out));
	if (out == NULL) {
		mat_error_set(err, MAT_INTERNAL, "out of memory");
		return NULL;
	}
	for (size_t i = 0; i < n; i++) {
		out[i].practice_id = in[i]->practice_id;
		out[i].status = (enum mat_status)in[i]->status;
		out[i].note = in[i]->note;
		out[i].evidence_uri = in[i]->evidence_uri;
	}
	return out;
}

void svc_scratch_reset(struct svc_ctx *ctx)
{
	svc_arena_free(ctx->arena);
	ctx->arena = NULL;
}

char *svc_org_name(struct svc_ctx *ctx, const char *org_id)
{
	size_t len = strlen(org_id) + sizeof("organizations/");
	char *s = svc_alloc(ctx, len);
	snprintf(s, len, "organizations/%s", org_id);
	return s;
}

void svc_transition_to_proto(struct svc_ctx *ctx, const struct mat_transition *t,
                             Mlops__Maturity__V1__LevelTransition *out)
{
	size_t len;

	mlops__maturity__v1__level_transition__init(out);
	len = strlen(t->org_id) + strlen(t->id) + sizeof("organizations//transitions/");
	out->name = svc_alloc(ctx, len);
	snprintf(out->name, len, "organizations/%s/transitions/%s", t->org_id, t->id);
	len = strlen(t->org_id) + strlen(t->assessment_id) + sizeof("organizations//assessments/");
	out->assessment = svc_alloc(ctx, len);
	snprintf(out->assessment, len, "organizations/%s/assessments/%s", t->org_id,
	         t->assessment_id);
	out->from_level = t->from_level;
	out->to_level = t->to_level;
	out->direction = (Mlops__Maturity__V1__LevelTransition__Direction)t->direction;
	out->state = (Mlops__Maturity__V1__LevelTransition__State)t->state;
	out->proposer = svc_strdup(ctx, t->proposer);
	out->propose_time = svc_ts(ctx, t->propose_time);
	out->decider = svc_strdup(ctx, t->decider);
	out->decide_time = svc_ts(ctx, t->decide_time);
	out->reason = svc_strdup(ctx, t->reason);
	out->etag = svc_strdup(ctx, t->etag);
	out->update_time = svc_ts(ctx, t->update_time);
}
