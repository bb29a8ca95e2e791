/* Decoding shared by the query files: result columns, etags, the labels' JSON, and the decoders of
 * rows that several files read. Pure (no statement runs here): below the exec layer and the
 * resource files alike (docs/architecture.md). */
#include "store_internal.h"

#include "mat_model.h"

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

char *store__text(struct store__row *r, int col)
{
	char *s;

	if (PQgetisnull(r->res, r->row, col))
		return NULL;
	s = strdup(PQgetvalue(r->res, r->row, col));
	if (s == NULL)
		r->oom = true;
	return s;
}

char *store__text0(struct store__row *r, int col)
{
	char *s = strdup(PQgetisnull(r->res, r->row, col) ? "" : PQgetvalue(r->res, r->row, col));

	if (s == NULL)
		r->oom = true;
	return s;
}

int64_t store__int(const struct store__row *r, int col)
{
	if (PQgetisnull(r->res, r->row, col))
		return 0;
	return strtoll(PQgetvalue(r->res, r->row, col), NULL, 10);
}

int64_t store__bin_int(const struct store__row *r, int col)
{
	const unsigned char *v = (const unsigned char *)PQgetvalue(r->res, r->row, col);
	int len = PQgetlength(r->res, r->row, col);
	uint64_t u = 0;

	if (PQgetisnull(r->res, r->row, col) || (len != 2 && len != 4 && len != 8))
		return 0;
	for (int i = 0; i < len; i++)
		u = u << 8 | v[i];
	/* Network order, two's complement: sign-extend the narrower types. */
	if (len < 8 && (v[0] & 0x80) != 0)
		u |= ~(uint64_t)0 << (8 * len);
	return (int64_t)u;
}

bool store__is_null(const struct store__row *r, int col)
{
	return PQgetisnull(r->res, r->row, col) != 0;
}

/* splitmix64's finalizer: a bijection, so distinct (version, time) pairs rarely collide. */
static uint64_t mix(uint64_t z)
{
	z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
	z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
	return z ^ (z >> 31);
}

void store__etag(int64_t version, int64_t create_us, char out[STORE__ETAG_LEN])
{
	uint64_t h = mix((uint64_t)version ^ mix((uint64_t)create_us));

	snprintf(out, STORE__ETAG_LEN, "%016" PRIx64, h);
}

bool store__etag_matches(const char *etag, int64_t version, int64_t create_us)
{
	char want[STORE__ETAG_LEN];

	if (etag == NULL || etag[0] == '\0')
		return true;
	store__etag(version, create_us, want);
	return strcmp(etag, want) == 0;
}

/* --- shared row decoders and encoders (organizations, assessments, exports) ---------------- */

static bool buf_grow(char **buf, size_t *cap, size_t need)
{
	char *n;
	size_t c = *cap ? *cap : 64;

	if (need <= *cap)
		return true;
	while (c < need)
		c *= 2;
	n = realloc(*buf, c);
	if (n == NULL)
		return false;
	*buf = n;
	*cap = c;
	return true;
}

static bool json_string(char **buf, size_t *len, size_t *cap, const char *s)
{
	static const char hex[] = "0123456789abcdef";

	if (!buf_grow(buf, cap, *len + strlen(s) * 6 + 3))
		return false;
	(*buf)[(*len)++] = '"';
	for (const unsigned char *p = (const unsigned char *)s; *p != '\0'; p++) {
		if (*p == '"' || *p == '\\') {
			(*buf)[(*len)++] = '\\';
			(*buf)[(*len)++] = (char)*p;
		} else if (*p < 0x20) {
			memcpy(*buf + *len, "\\u00", 4);
			*len += 4;
			(*buf)[(*len)++] = hex[*p >> 4];
			(*buf)[(*len)++] = hex[*p & 15];
		} else {
			(*buf)[(*len)++] = (char)*p;
		}
	}
	(*buf)[(*len)++] = '"';
	return true;
}

/* The labels as a JSON object (malloc'd), or NULL when out of memory. */
char *store__labels_json(const struct mat_label *labels, size_t n)
{
	char *buf = NULL;
	size_t len = 0, cap = 0;

	if (!buf_grow(&buf, &cap, 3))
		return NULL;
	buf[len++] = '{';
	for (size_t i = 0; i < n; i++) {
		if (!buf_grow(&buf, &cap, len + 1))
			goto oom;
		if (i > 0)
			buf[len++] = ',';
		if (!json_string(&buf, &len, &cap, labels[i].key ? labels[i].key : "") ||
		    !buf_grow(&buf, &cap, len + 1))
			goto oom;
		buf[len++] = ':';
		if (!json_string(&buf, &len, &cap, labels[i].value ? labels[i].value : "") ||
		    !buf_grow(&buf, &cap, len + 2))
			goto oom;
	}
	buf[len++] = '}';
	buf[len] = '\0';
	return buf;
oom:
	free(buf);
	return NULL;
}

enum mat_code store__assessment_from_row(const PGresult *res, int row, struct mat_assessment *a,
                                         struct mat_error *err)
{
	struct store__row r = {.res = res, .row = row};
	char etag[STORE__ETAG_LEN];

	mat_assessment_cleanup(a);
	a->org_id = store__text0(&r, 0);
	a->id = store__text0(&r, 1);
	a->title = store__text0(&r, 2);
	a->model_id = store__text0(&r, 3);
	a->state = (enum mat_assessment_state)store__int(&r, 4);
	a->creator = store__text0(&r, 5);
	a->submitter = store__text(&r, 6);
	a->create_time = store__int(&r, 7);
	a->update_time = store__int(&r, 8);
	a->submit_time = store__int(&r, 9);
	store__etag(store__int(&r, 10), a->create_time, etag);
	a->etag = strdup(etag);
	if (r.oom || a->etag == NULL) {
		mat_assessment_cleanup(a);
		return store__oom(err);
	}
	return MAT_OK;
}

struct ranked {
	int rank;
	struct mat_answer a;
};

static int by_rank(const void *x, const void *y)
{
	const struct ranked *p = x, *q = y;

	if (p->rank != q->rank)
		return (p->rank > q->rank) - (p->rank < q->rank);
	return strcmp(p->a.practice_id, q->a.practice_id);
}

/* Sets a->answers from rows [from, to) of `res` (ANS_COLS), in the catalog order of the model
 * (practices the model does not know, which validation keeps out, go last). */
enum mat_code store__answers_from_rows(const PGresult *res, int from, int to, int col,
                                       struct mat_assessment *a, struct mat_error *err)
{
	const struct mat_model *m = mat_model_find(a->model_id);
	size_t n = to > from ? (size_t)(to - from) : 0;
	struct ranked *tmp = NULL;
	bool oom = false;

	if (n == 0)
		return MAT_OK;
	tmp = calloc(n, sizeof(*tmp));
	a->answers = calloc(n, sizeof(*a->answers));
	if (tmp == NULL || a->answers == NULL) {
		free(tmp);
		return store__oom(err);
	}
	for (size_t i = 0; i < n; i++) {
		struct store__row r = {.res = res, .row = from + (int)i};
		struct mat_answer *x = &tmp[i].a;
		x->practice_id = store__text0(&r, col);
		x->status = (enum mat_status)store__int(&r, col + 1);
		x->note = store__text0(&r, col + 2);
		x->evidence_uri = store__text0(&r, col + 3);
		x->update_time = store__int(&r, col + 4);
		x->updated_by = store__text0(&r, col + 5);
		oom |= r.oom;
		tmp[i].rank = MAT_MAX_PRACTICES;
		if (m != NULL && x->practice_id != NULL) {
			int idx =
			    mat_model_practice_index(m, x->practice_id, strlen(x->practice_id));
			if (idx >= 0)
				tmp[i].rank = idx;
		}
	}
	/* Every row allocated its strings (or failed): hand them to a, which frees them. */
	for (size_t i = 0; !oom && i < n; i++)
		oom = tmp[i].a.practice_id == NULL;
	if (!oom)
		qsort(tmp, n, sizeof(*tmp), by_rank);
	for (size_t i = 0; i < n; i++)
		a->answers[i] = tmp[i].a;
	a->n_answers = n;
	free(tmp);
	return oom ? store__oom(err) : MAT_OK;
}

/* --- organizations -------------------------------------------------------------------------- */

/* One "len:bytes" item of the labels column; NULL on malformed input or out of memory. */
static char *take_item(const char **p, const char *end)
{
	size_t n = 0;
	char *s;

	if (*p >= end || **p < '0' || **p > '9')
		return NULL;
	while (*p < end && **p >= '0' && **p <= '9') {
		n = n * 10 + (size_t)(**p - '0');
		if (n > 1u << 20)
			return NULL;
		(*p)++;
	}
	if (*p >= end || **p != ':' || (size_t)(end - *p - 1) < n)
		return NULL;
	(*p)++;
	s = malloc(n + 1);
	if (s == NULL)
		return NULL;
	memcpy(s, *p, n);
	s[n] = '\0';
	*p += n;
	return s;
}

static int by_key(const void *a, const void *b)
{
	return strcmp(((const struct mat_label *)a)->key, ((const struct mat_label *)b)->key);
}

static bool labels_parse(const char *s, struct mat_organization *o)
{
	const char *p = s, *end = s + strlen(s);
	size_t cap = 0;

	while (p < end) {
		char *k = take_item(&p, end);
		char *v = k != NULL ? take_item(&p, end) : NULL;
		if (v == NULL) {
			free(k);
			return false;
		}
		if (o->n_labels == cap) {
			size_t nc = cap ? cap * 2 : 8;
			struct mat_label *nl = realloc(o->labels, nc * sizeof(*nl));
			if (nl == NULL) {
				free(k);
				free(v);
				return false;
			}
			o->labels = nl;
			cap = nc;
		}
		o->labels[o->n_labels++] = (struct mat_label){k, v};
	}
	if (o->n_labels > 1)
		qsort(o->labels, o->n_labels, sizeof(*o->labels), by_key);
	return true;
}

enum mat_code store__org_from_row(const PGresult *res, int row, struct mat_organization *o,
                                  struct mat_error *err)
{
	struct store__row r = {.res = res, .row = row};
	char etag[STORE__ETAG_LEN];

	mat_organization_cleanup(o);
	o->id = store__text0(&r, 0);
	o->display_name = store__text0(&r, 1);
	o->description = store__text0(&r, 2);
	if (!labels_parse(PQgetvalue(res, row, 3), o))
		r.oom = true;
	o->current_level = (int)store__int(&r, 4);
	o->target_level = (int)store__int(&r, 5);
	o->transition_policy = (enum mat_policy)store__int(&r, 6);
	o->last_assessment_id = store__text(&r, 7);
	o->create_time = store__int(&r, 8);
	o->update_time = store__int(&r, 9);
	store__etag(store__int(&r, 10), o->create_time, etag);
	o->etag = strdup(etag);
	if (r.oom || o->etag == NULL) {
		mat_organization_cleanup(o);
		return store__oom(err);
	}
	return MAT_OK;
}

/* --- transitions and role bindings ------------------------------------------------------------ */

enum mat_code store__transition_from_row(const PGresult *res, int row, struct mat_transition *t,
                                         struct mat_error *err)
{
	struct store__row r = {.res = res, .row = row};
	char etag[STORE__ETAG_LEN];

	mat_transition_cleanup(t);
	t->org_id = store__text0(&r, 0);
	t->id = store__text0(&r, 1);
	t->assessment_id = store__text0(&r, 2);
	t->from_level = (int)store__int(&r, 3);
	t->to_level = (int)store__int(&r, 4);
	t->direction = (enum mat_direction)store__int(&r, 5);
	t->state = (enum mat_transition_state)store__int(&r, 6);
	t->proposer = store__text0(&r, 7);
	t->propose_time = store__int(&r, 8);
	t->decider = store__text(&r, 9);
	t->decide_time = store__int(&r, 10);
	t->reason = store__text0(&r, 11);
	store__etag(store__int(&r, 12), t->propose_time, etag);
	t->update_time = store__int(&r, 13);
	t->etag = strdup(etag);
	if (r.oom || t->etag == NULL) {
		mat_transition_cleanup(t);
		return store__oom(err);
	}
	return MAT_OK;
}

enum mat_code store__binding_from_row(const PGresult *res, int row, struct mat_role_binding *b,
                                      struct mat_error *err)
{
	struct store__row r = {.res = res, .row = row};

	mat_role_binding_cleanup(b);
	b->id = store__text0(&r, 0);
	b->principal = store__text0(&r, 1);
	b->role = (enum mat_role)store__int(&r, 2);
	b->org_id = store__text(&r, 3);
	b->creator = store__text0(&r, 4);
	b->create_time = store__int(&r, 5);
	if (r.oom) {
		mat_role_binding_cleanup(b);
		return store__oom(err);
	}
	return MAT_OK;
}
