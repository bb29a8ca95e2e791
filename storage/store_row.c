/* Small helpers shared by the query files: decoding result columns, etags, audit rows. */
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

STORE__STMT(st_audit_insert, 7,
            "INSERT INTO audit_events (id, principal, method, resource, code, request_id, "
            "delegator) VALUES ($1::uuid, $2, $3, $4, $5::int, $6, $7)");

enum mat_code store__audit_cmd(struct store__audit *a, const struct store_call *c,
                               const char *resource, int grpc_code, struct store__cmd *cmd,
                               struct mat_error *err)
{
	enum mat_code rc = store__uuid7(a->id);

	if (rc != MAT_OK)
		return mat_error_set(err, rc, "no randomness for an audit event id");
	snprintf(a->code, sizeof(a->code), "%d", grpc_code);
	a->params[0] = a->id;
	a->params[1] = c->principal != NULL ? c->principal : "";
	a->params[2] = c->method != NULL ? c->method : "";
	a->params[3] = resource != NULL ? resource : "";
	a->params[4] = a->code;
	a->params[5] = c->request_id != NULL ? c->request_id : "";
	a->params[6] = c->delegator != NULL ? c->delegator : "";
	*cmd = (struct store__cmd){.st = &st_audit_insert, .params = a->params};
	return MAT_OK;
}

STORE__STMT(st_idem_claim, 4,
            "INSERT INTO idempotency_keys (principal, request_id, kind, resource) "
            "VALUES ($1, $2::uuid, $3, $4) ON CONFLICT DO NOTHING RETURNING 1");
STORE__STMT(st_idem_prior, 3,
            "SELECT resource FROM idempotency_keys "
            "WHERE principal = $1 AND request_id = $2::uuid AND kind = $3");

enum mat_code store__request_id(const char *request_id, char out[STORE_UUID_TEXT],
                                struct mat_error *err)
{
	uint8_t b[16];

	out[0] = '\0';
	if (request_id == NULL || request_id[0] == '\0')
		return MAT_OK;
	if (!store__uuid_parse(request_id, b))
		return mat_error_field(err, "request_id", "must be a UUID");
	store__uuid_format(b, out);
	return MAT_OK;
}

enum mat_code store__idem_claim(struct store__tx *tx, const char *request_id, const char *kind,
                                const char *resource, bool *claimed, char **prior,
                                struct mat_error *err)
{
	const char *principal = tx->c->principal != NULL ? tx->c->principal : "";
	PGresult *r = NULL;
	enum mat_code rc;

	*claimed = false;
	*prior = NULL;
	/* ON CONFLICT DO NOTHING waits for a concurrent first call with the same key to finish:
	 * if it commits we see its row below, if it rolls back we claim the key ourselves. */
	rc = STORE__EXEC(tx, &st_idem_claim, &r, err, principal, request_id, kind, resource);
	if (rc != MAT_OK)
		return rc;
	*claimed = PQntuples(r) == 1;
	PQclear(r);
	if (*claimed)
		return MAT_OK;
	rc = STORE__EXEC(tx, &st_idem_prior, &r, err, principal, request_id, kind);
	if (rc != MAT_OK)
		return rc;
	if (PQntuples(r) != 1) {
		PQclear(r);
		return mat_error_set(err, MAT_ABORTED, "request_id in use by a concurrent call");
	}
	*prior = strdup(PQgetvalue(r, 0, 0));
	PQclear(r);
	return *prior != NULL ? MAT_OK : store__oom(err);
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
