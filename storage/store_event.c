/* The event log (docs/events.md): events written by each mutation in its own transaction, the
 * newest-first listing, the follower's read that never skips a late commit, cursors and the
 * retention janitor's batch. The order and the watermark are explained in
 * migrations/0006_events.sql. */
#include "store_internal.h"
#include "store_token.h"

#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* --- snapshots ------------------------------------------------------------------------------ */

static store_snapshot_fn encoder;

void store_events_set_encoder(store_snapshot_fn fn)
{
	encoder = fn;
}

enum store_snapshot_kind store_event_snapshot_kind(enum store_event_type type)
{
	switch (type) {
	case STORE_EVENT_ORG_CREATED:
	case STORE_EVENT_ORG_UPDATED:
	case STORE_EVENT_ORG_DELETED:
		return STORE_SNAPSHOT_ORGANIZATION;
	case STORE_EVENT_ASSESSMENT_CREATED:
	case STORE_EVENT_ASSESSMENT_UPDATED:
	case STORE_EVENT_ASSESSMENT_SUBMITTED:
	case STORE_EVENT_ASSESSMENT_DELETED:
		return STORE_SNAPSHOT_ASSESSMENT;
	case STORE_EVENT_TRANSITION_PROPOSED:
	case STORE_EVENT_TRANSITION_APPLIED:
	case STORE_EVENT_TRANSITION_REJECTED:
	case STORE_EVENT_TRANSITION_SUPERSEDED:
		return STORE_SNAPSHOT_TRANSITION;
	case STORE_EVENT_EVIDENCE_REPORTED:
		return STORE_SNAPSHOT_EVIDENCE;
	}
	return STORE_SNAPSHOT_ORGANIZATION;
}

static const char hexdig[] = "0123456789abcdef";

static char *to_hex(const uint8_t *b, size_t n)
{
	char *s = malloc(2 * n + 1);

	if (s == NULL)
		return NULL;
	for (size_t i = 0; i < n; i++) {
		s[2 * i] = hexdig[b[i] >> 4];
		s[2 * i + 1] = hexdig[b[i] & 15];
	}
	s[2 * n] = '\0';
	return s;
}

/* --- writing -------------------------------------------------------------------------------- */

STORE__STMT(st_ev_insert, 6,
            "INSERT INTO events (type, org_id, resource, principal, delegator, snapshot) "
            "VALUES ($1::smallint, $2, $3, $4, $5, decode($6, 'hex'))");

void store__events_init(struct store__events *e, const char *org_id)
{
	memset(e, 0, sizeof(*e));
	e->org_id = org_id;
}

void store__events_reset(struct store__events *e)
{
	for (size_t i = 0; i < e->n; i++) {
		free(e->v[i].resource);
		free(e->v[i].hex);
	}
	free(e->v);
	e->v = NULL;
	e->n = e->cap = 0;
}

static char *resource_name(enum store_snapshot_kind kind, const void *r)
{
	char buf[512];

	switch (kind) {
	case STORE_SNAPSHOT_ORGANIZATION:
		snprintf(buf, sizeof(buf), "organizations/%s",
		         ((const struct mat_organization *)r)->id);
		break;
	case STORE_SNAPSHOT_ASSESSMENT: {
		const struct mat_assessment *a = r;
		snprintf(buf, sizeof(buf), "organizations/%s/assessments/%s", a->org_id, a->id);
		break;
	}
	case STORE_SNAPSHOT_TRANSITION: {
		const struct mat_transition *t = r;
		snprintf(buf, sizeof(buf), "organizations/%s/transitions/%s", t->org_id, t->id);
		break;
	}
	case STORE_SNAPSHOT_EVIDENCE: {
		const struct mat_evidence *v = r;
		snprintf(buf, sizeof(buf), "organizations/%s/evidence/%s", v->org_id, v->id);
		break;
	}
	}
	return strdup(buf);
}

enum mat_code store__event_add(struct store__events *e, enum store_event_type type,
                               const void *resource, struct mat_error *err)
{
	enum store_snapshot_kind kind = store_event_snapshot_kind(type);
	struct store__ev *ev;

	if (e->n == e->cap) {
		size_t cap = e->cap ? 2 * e->cap : 4;
		struct store__ev *v = realloc(e->v, cap * sizeof(*v));
		if (v == NULL)
			return store__oom(err);
		e->v = v;
		e->cap = cap;
	}
	ev = &e->v[e->n];
	memset(ev, 0, sizeof(*ev));
	snprintf(ev->type, sizeof(ev->type), "%d", (int)type);
	ev->resource = resource_name(kind, resource);
	if (ev->resource == NULL)
		return store__oom(err);
	if (encoder != NULL) {
		uint8_t *b = NULL;
		size_t len = 0;
		if (!encoder(kind, resource, &b, &len)) {
			free(ev->resource);
			return store__oom(err);
		}
		ev->hex = to_hex(b, len);
		free(b);
		if (ev->hex == NULL) {
			free(ev->resource);
			return store__oom(err);
		}
	}
	e->n++;
	return MAT_OK;
}

enum mat_code store__events_write(struct store__tx *tx, struct store__events *e,
                                  struct mat_error *err)
{
	struct store__cmd *cmds;
	enum mat_code rc;

	if (e->n == 0)
		return MAT_OK;
	cmds = calloc(e->n, sizeof(*cmds));
	if (cmds == NULL)
		return store__oom(err);
	for (size_t i = 0; i < e->n; i++) {
		struct store__ev *ev = &e->v[i];
		ev->params[0] = ev->type;
		ev->params[1] = e->org_id;
		ev->params[2] = ev->resource;
		ev->params[3] = tx->c->principal != NULL ? tx->c->principal : "";
		ev->params[4] = tx->c->delegator != NULL ? tx->c->delegator : "";
		ev->params[5] = ev->hex;
		cmds[i] = (struct store__cmd){.st = &st_ev_insert, .params = ev->params};
	}
	rc = store__tx_run(tx, cmds, e->n, err);
	store__cmds_clear(cmds, e->n);
	free(cmds);
	return rc;
}

/* --- reading -------------------------------------------------------------------------------- */

/* Read in binary format (STORE__STMT_BINARY): the snapshot (an assessment's is ~3.5 KB) comes
 * as its bytes, not as hex twice their size that PostgreSQL encodes and we decode (a replay
 * spent a tenth of the server's CPU there). */
#define EV_COLS                                                                            \
	"e.seq, mat_epoch_us(e.pos), mat_epoch_us(e.time), e.type, e.org_id, e.resource, " \
	"e.principal, e.delegator, e.snapshot"

/* Visible to $principal: any binding on the organization or a global one (every role includes
 * viewer), unless the caller sees everything. */
#define EV_VISIBLE(vis, principal) STORE__VISIBLE(vis, principal, "e.org_id")
#define EV_TYPES(t) "(" t "::int = 0 OR ((" t "::int >> e.type::int) & 1) = 1)"

/* Newest first, before ($3 pos, $4 seq). One statement per shape so each gets a plan on its
 * index. Both take the same parameters: the one across organizations names $1 without using it
 * (PostgreSQL must be able to type every parameter of a prepared statement). */
#define EV_LIST_WHERE  \
	EV_TYPES("$2") \
	" AND (e.pos, e.seq) < ($3::timestamptz, $4::bigint) AND " EV_VISIBLE("$5", "$6")
#define EV_LIST_ORDER " ORDER BY e.pos DESC, e.seq DESC LIMIT $7::int"
STORE__STMT_BINARY(st_ev_list_org, 7,
                   "SELECT " EV_COLS
                   " FROM events e WHERE e.org_id = $1 AND " EV_LIST_WHERE EV_LIST_ORDER);
STORE__STMT_BINARY(
    st_ev_list_all, 7,
    "SELECT " EV_COLS
    " FROM events e WHERE ($1::text IS NULL OR true) AND " EV_LIST_WHERE EV_LIST_ORDER);

/* In log order after ($1, $2), below the watermark $3, time >= $4 ($9 as for the lists). */
#define EV_FOLLOW_WHERE                                                                   \
	"(e.pos, e.seq) > ($1::timestamptz, $2::bigint) AND e.pos < $3::timestamptz AND " \
	"e.time >= $4::timestamptz AND " EV_TYPES("$5") " AND " EV_VISIBLE("$6", "$7")
STORE__STMT_BINARY(st_ev_follow_org, 9,
                   "SELECT " EV_COLS " FROM events e WHERE e.org_id = $9 AND " EV_FOLLOW_WHERE
                   " ORDER BY e.pos, e.seq LIMIT $8::int");
STORE__STMT_BINARY(st_ev_follow_all, 9,
                   "SELECT " EV_COLS
                   " FROM events e WHERE ($9::text IS NULL OR true) AND " EV_FOLLOW_WHERE
                   " ORDER BY e.pos, e.seq LIMIT $8::int");
/* Rows at or past the watermark: held back by a transaction still open. Asked as the newest
 * position, which every plan reads from the end of the primary key: `EXISTS (... WHERE pos >=
 * $1)` got a generic plan after five executions that scanned the whole table (1.5 s on a
 * million events, for every batch of a replay and every feed read). */
STORE__STMT(st_ev_held, 1,
            "SELECT coalesce((SELECT max(pos) FROM events) >= $1::timestamptz, false)");
/* The watermark, as the exports read it (store_report.c says why it is sound): in a round trip
 * of its own, before the snapshot of the read it bounds. */
STORE__STMT(st_ev_watermark, 0,
            "SELECT mat_epoch_us(least(now(), min(a.xact_start))) FROM pg_stat_activity a "
            "WHERE a.datname = current_database() AND a.backend_type = 'client backend' "
            "AND a.pid <> pg_backend_pid() AND a.xact_start IS NOT NULL");

void store_event_cleanup(struct store_event *e)
{
	if (e == NULL)
		return;
	free(e->org_id);
	free(e->resource);
	free(e->principal);
	free(e->delegator);
	free(e->snapshot);
	memset(e, 0, sizeof(*e));
}

void store_events_free(struct store_event *list, size_t n)
{
	if (list == NULL)
		return;
	for (size_t i = 0; i < n; i++)
		store_event_cleanup(&list[i]);
	free(list);
}

static void pos_pack(const struct store_event_pos *p, uint8_t key[16])
{
	for (int i = 0; i < 8; i++) {
		key[i] = (uint8_t)((uint64_t)p->pos_us >> (56 - 8 * i));
		key[8 + i] = (uint8_t)((uint64_t)p->seq >> (56 - 8 * i));
	}
}

static void pos_unpack(const uint8_t key[16], struct store_event_pos *p)
{
	uint64_t a = 0, b = 0;

	for (int i = 0; i < 8; i++) {
		a = a << 8 | key[i];
		b = b << 8 | key[8 + i];
	}
	p->pos_us = (int64_t)a;
	p->seq = (int64_t)b;
}

void store_event_cursor_encode(const struct store_event_pos *p, char out[STORE_EVENT_CURSOR_MAX])
{
	char tok[STORE_TOKEN_MAX_TEXT];
	uint8_t key[16];

	pos_pack(p, key);
	store__token_encode(STORE_LIST_EVENT_CURSOR, 0, key, sizeof(key), tok);
	/* 31 bytes of payload: 42 characters of base64url. */
	memcpy(out, tok, STORE_EVENT_CURSOR_MAX - 1);
	out[STORE_EVENT_CURSOR_MAX - 1] = '\0';
}

enum mat_code store_event_cursor_decode(const char *cursor, const char *field, mat_time_us oldest,
                                        struct store_event_pos *out, struct mat_error *err)
{
	uint8_t key[STORE_TOKEN_MAX_KEY];
	size_t klen = 0;
	enum mat_code rc;

	if (cursor == NULL || cursor[0] == '\0')
		return mat_error_field(err, field, "is not a cursor of this log");
	rc = store__token_decode_field(cursor, STORE_LIST_EVENT_CURSOR, 0, field, key, &klen, err);
	if (rc != MAT_OK)
		return rc;
	if (klen != 16)
		return mat_error_field(err, field, "is not a cursor of this log");
	pos_unpack(key, out);
	if (out->pos_us < oldest)
		return mat_error_set(err, MAT_OUT_OF_RANGE,
		                     "%s is older than the event retention: its events are gone; "
		                     "start again from a time",
		                     field);
	return MAT_OK;
}

static enum mat_code event_from_row(const PGresult *res, int row, struct store_event *e,
                                    struct mat_error *err)
{
	struct store__row r = {.res = res, .row = row};
	struct store_event_pos p;
	size_t len;

	memset(e, 0, sizeof(*e));
	e->seq = store__bin_int(&r, 0);
	p.pos_us = store__bin_int(&r, 1);
	p.seq = e->seq;
	e->time = store__bin_int(&r, 2);
	e->type = (enum store_event_type)store__bin_int(&r, 3);
	e->org_id = store__text0(&r, 4);
	e->resource = store__text0(&r, 5);
	e->principal = store__text0(&r, 6);
	e->delegator = store__text0(&r, 7);
	if (r.oom)
		goto oom;
	if (!PQgetisnull(res, row, 8)) {
		len = (size_t)PQgetlength(res, row, 8);
		e->snapshot = malloc(len ? len : 1);
		if (e->snapshot == NULL)
			goto oom;
		memcpy(e->snapshot, PQgetvalue(res, row, 8), len);
		e->snapshot_len = len;
	}
	e->at = p;
	store_event_cursor_encode(&p, e->cursor);
	return MAT_OK;
oom:
	store_event_cleanup(e);
	return store__oom(err);
}

static enum mat_code events_from_rows(const PGresult *res, int rows, struct store_event **out,
                                      struct mat_error *err)
{
	struct store_event *list = calloc(rows > 0 ? (size_t)rows : 1, sizeof(*list));
	enum mat_code rc;

	if (list == NULL)
		return store__oom(err);
	for (int i = 0; i < rows; i++) {
		rc = event_from_row(res, i, &list[i], err);
		if (rc != MAT_OK) {
			store_events_free(list, (size_t)i);
			return rc;
		}
	}
	*out = list;
	return MAT_OK;
}

static uint64_t list_filter(const struct store_event_filter *f)
{
	uint64_t h = store__fnv64(STORE_FNV64_INIT, "events", 7); /* with the NUL */
	const char *org = f->org_id != NULL ? f->org_id : "-";

	h = store__fnv64(h, org, strlen(org) + 1);
	return store__fnv64_i64(h, (int64_t)f->types);
}

enum mat_code store_event_list(const struct store_call *c, const struct store_event_filter *f,
                               int page_size, const char *page_token, struct store_event **out,
                               size_t *n_out, char **next_token, struct mat_error *err)
{
	char types[16], before_t[STORE_TIME_TEXT] = "infinity", before_seq[24] = "0", limit[16];
	const char *params[7] = {f->org_id,
	                         types,
	                         before_t,
	                         before_seq,
	                         c->only_visible ? "true" : "false",
	                         c->principal != NULL ? c->principal : "",
	                         limit};
	struct store__cmd cmd = {.st = f->org_id != NULL ? &st_ev_list_org : &st_ev_list_all,
	                         .params = params};
	char token[STORE_TOKEN_MAX_TEXT] = "";
	struct store_event *list = NULL;
	int rows;
	enum mat_code rc;

	*out = NULL;
	*n_out = 0;
	*next_token = NULL;
	if (page_size <= 0)
		page_size = MAT_PAGE_SIZE_DEFAULT;
	if (page_size > MAT_PAGE_SIZE_MAX)
		page_size = MAT_PAGE_SIZE_MAX;
	if (page_token != NULL && page_token[0] != '\0') {
		uint8_t key[STORE_TOKEN_MAX_KEY];
		size_t klen;
		struct store_event_pos p;
		rc = store__token_decode(page_token, STORE_LIST_EVENTS, list_filter(f), key, &klen,
		                         err);
		if (rc != MAT_OK)
			return rc;
		if (klen != 16)
			return mat_error_field(err, "page_token", "invalid page token");
		pos_unpack(key, &p);
		store__time_text(p.pos_us, before_t);
		snprintf(before_seq, sizeof(before_seq), "%lld", (long long)p.seq);
	} else {
		/* Before everything: the greatest seq at "infinity". */
		snprintf(before_seq, sizeof(before_seq), "%lld", (long long)INT64_MAX);
	}
	snprintf(types, sizeof(types), "%u", f->types);
	/* One row more than the page tells whether there is a next page. */
	snprintf(limit, sizeof(limit), "%d", page_size + 1);
	rc = store__read(c, &cmd, 1, err);
	if (rc != MAT_OK)
		return rc;
	rows = PQntuples(cmd.res);
	if (rows > page_size)
		rows = page_size;
	rc = events_from_rows(cmd.res, rows, &list, err);
	if (rc == MAT_OK && PQntuples(cmd.res) > page_size) {
		uint8_t key[16];
		pos_pack(&list[rows - 1].at, key);
		store__token_encode(STORE_LIST_EVENTS, list_filter(f), key, sizeof(key), token);
	}
	store__cmds_clear(&cmd, 1);
	if (rc != MAT_OK)
		return rc;
	*next_token = strdup(token);
	if (*next_token == NULL) {
		store_events_free(list, (size_t)rows);
		return store__oom(err);
	}
	*out = list;
	*n_out = (size_t)rows;
	return MAT_OK;
}

static enum mat_code watermark(const struct store_call *c, int64_t *out, struct mat_error *err)
{
	struct store__cmd cmd = {.st = &st_ev_watermark};
	struct store__row r;
	enum mat_code rc = store__read(c, &cmd, 1, err);

	if (rc != MAT_OK)
		return rc;
	r = (struct store__row){.res = cmd.res, .row = 0};
	*out = store__int(&r, 0);
	store__cmds_clear(&cmd, 1);
	return MAT_OK;
}

enum mat_code store_event_now(const struct store_call *c, struct store_event_pos *out,
                              struct mat_error *err)
{
	out->seq = 0;
	return watermark(c, &out->pos_us, err);
}

enum mat_code store_event_follow(const struct store_call *c, const struct store_event_filter *f,
                                 mat_time_us min_time, int limit, struct store_event_pos *pos,
                                 struct store_event **out, size_t *n_out, bool *held,
                                 struct mat_error *err)
{
	mat_time_us wm = 0;

	return store_event_follow_wm(c, f, min_time, limit, pos, &wm, out, n_out, held, err);
}

/* A follow's parameters, as text in its own buffers (the read-ahead's outlive the caller's). */
struct follow_params {
	char after_t[STORE_TIME_TEXT], after_seq[24], wm_t[STORE_TIME_TEXT], min_t[STORE_TIME_TEXT];
	char types[16], lim[16];
	const char *params[9];
	struct store__cmd cmds[2];
};

static void follow_params(struct follow_params *fp, const struct store_call *c,
                          const struct store_event_filter *f, mat_time_us min_time, int limit,
                          const struct store_event_pos *pos, mat_time_us wm)
{
	store__time_text(pos->pos_us, fp->after_t);
	snprintf(fp->after_seq, sizeof(fp->after_seq), "%lld", (long long)pos->seq);
	store__time_text(wm, fp->wm_t);
	store__time_text(min_time != 0 ? min_time : INT64_MIN, fp->min_t);
	snprintf(fp->types, sizeof(fp->types), "%u", f->types);
	snprintf(fp->lim, sizeof(fp->lim), "%d", limit);
	fp->params[0] = fp->after_t;
	fp->params[1] = fp->after_seq;
	fp->params[2] = fp->wm_t;
	fp->params[3] = fp->min_t;
	fp->params[4] = fp->types;
	fp->params[5] = c->only_visible ? "true" : "false";
	fp->params[6] = c->principal != NULL ? c->principal : "";
	fp->params[7] = fp->lim;
	fp->params[8] = f->org_id;
	/* One snapshot: "held" speaks of the same rows the batch saw. */
	fp->cmds[0] = (struct store__cmd){
	    .st = f->org_id != NULL ? &st_ev_follow_org : &st_ev_follow_all, .params = fp->params};
	fp->cmds[1] = (struct store__cmd){.st = &st_ev_held, .params = fp->params + 2};
}

/* The rows of a follow's two results as the caller's batch and new position. */
static enum mat_code follow_rows(struct store__cmd cmds[2], int limit, mat_time_us wm,
                                 struct store_event_pos *pos, struct store_event **out,
                                 size_t *n_out, bool *held, struct mat_error *err)
{
	int rows = PQntuples(cmds[0].res);
	enum mat_code rc = events_from_rows(cmds[0].res, rows, out, err);

	if (rc != MAT_OK)
		return rc;
	*n_out = (size_t)rows;
	*held = PQgetvalue(cmds[1].res, 0, 0)[0] == 't';
	if (rows > 0)
		*pos = (*out)[rows - 1].at;
	/* A short batch saw every row below the watermark: move past them all, so a filtered
	 * follower's cursor stays recent (nothing can still appear there). */
	if (rows < limit && wm > pos->pos_us) {
		pos->pos_us = wm;
		pos->seq = 0;
	}
	return MAT_OK;
}

enum mat_code store_event_follow_wm(const struct store_call *c, const struct store_event_filter *f,
                                    mat_time_us min_time, int limit, struct store_event_pos *pos,
                                    mat_time_us *wm_io, struct store_event **out, size_t *n_out,
                                    bool *held, struct mat_error *err)
{
	struct follow_params fp;
	int64_t wm = *wm_io;
	enum mat_code rc;

	*out = NULL;
	*n_out = 0;
	*held = false;
	if (wm == 0) {
		rc = watermark(c, &wm, err);
		if (rc != MAT_OK)
			return rc;
		*wm_io = wm;
	}
	follow_params(&fp, c, f, min_time, limit, pos, wm);
	rc = store__read(c, fp.cmds, 2, err);
	if (rc != MAT_OK)
		return rc;
	rc = follow_rows(fp.cmds, limit, wm, pos, out, n_out, held, err);
	store__cmds_clear(fp.cmds, 2);
	return rc;
}

/* A read-ahead: the read of the storage loop (store__read_async) and everything it points to,
 * copied, so that the follower may drop it (its call ending) while PostgreSQL still runs it. */
struct store_event_ahead {
	struct store__aread r;
	struct follow_params fp;
	struct store_call c;
	struct store_event_filter f;
	struct store_event_pos pos; /* the position the read starts after */
	mat_time_us min_time, wm;
	int limit;
	volatile int cancel; /* c.cancelled points here */
	char *principal, *org_id;
	struct mat_error err;
	pthread_mutex_t mu;
	pthread_cond_t cv;
	bool done;    /* the loop's completion ran: rc, and the results on MAT_OK */
	bool dropped; /* nobody will finish it: the completion frees it */
	enum mat_code rc;
};

static void ahead_free(struct store_event_ahead *a)
{
	store__cmds_clear(a->fp.cmds, 2);
	pthread_mutex_destroy(&a->mu);
	pthread_cond_destroy(&a->cv);
	free(a->principal);
	free(a->org_id);
	free(a);
}

/* On the loop thread (or at once, on the caller's, when it could not start). */
static void ahead_complete(struct store__aread *r, enum mat_code rc)
{
	struct store_event_ahead *a = (struct store_event_ahead *)r;
	bool dropped;

	pthread_mutex_lock(&a->mu);
	a->rc = rc;
	a->done = true;
	dropped = a->dropped;
	pthread_cond_signal(&a->cv);
	pthread_mutex_unlock(&a->mu);
	if (dropped)
		ahead_free(a);
}

struct store_event_ahead *store_event_follow_ahead(const struct store_call *c,
                                                   const struct store_event_filter *f,
                                                   mat_time_us min_time, int limit,
                                                   const struct store_event_pos *pos,
                                                   mat_time_us wm)
{
	struct store_event_ahead *a = calloc(1, sizeof(*a));

	if (a == NULL)
		return NULL;
	a->principal = c->principal != NULL ? strdup(c->principal) : NULL;
	a->org_id = f->org_id != NULL ? strdup(f->org_id) : NULL;
	if ((c->principal != NULL && a->principal == NULL) ||
	    (f->org_id != NULL && a->org_id == NULL)) {
		free(a->principal);
		free(a->org_id);
		free(a);
		return NULL;
	}
	pthread_mutex_init(&a->mu, NULL);
	pthread_cond_init(&a->cv, NULL);
	/* Only what the read itself uses: no method (no audit), no pending authorization. */
	a->c = (struct store_call){.pool = c->pool,
	                           .deadline_ms = c->deadline_ms,
	                           .principal = a->principal,
	                           .cancelled = &a->cancel,
	                           .only_visible = c->only_visible};
	a->f = (struct store_event_filter){.org_id = a->org_id, .types = f->types};
	a->pos = *pos;
	a->min_time = min_time;
	a->wm = wm;
	a->limit = limit;
	follow_params(&a->fp, &a->c, &a->f, min_time, limit, pos, wm);
	a->r = (struct store__aread){
	    .c = &a->c, .cmds = a->fp.cmds, .n = 2, .err = &a->err, .complete = ahead_complete};
	store__read_async(c->pool, &a->r);
	return a;
}

bool store_event_ahead_matches(const struct store_event_ahead *a, const struct store_call *c,
                               const struct store_event_filter *f, mat_time_us min_time,
                               const struct store_event_pos *pos, mat_time_us wm, int limit)
{
	return a->wm == wm && a->min_time == min_time && a->limit == limit &&
	       a->pos.pos_us == pos->pos_us && a->pos.seq == pos->seq &&
	       a->c.only_visible == c->only_visible && a->f.types == f->types &&
	       (a->f.org_id == NULL) == (f->org_id == NULL) &&
	       (f->org_id == NULL || strcmp(a->f.org_id, f->org_id) == 0);
}

enum mat_code store_event_ahead_finish(struct store_event_ahead *a, struct store_event_pos *pos,
                                       struct store_event **out, size_t *n_out, bool *held,
                                       struct mat_error *err)
{
	enum mat_code rc;

	*out = NULL;
	*n_out = 0;
	*held = false;
	pthread_mutex_lock(&a->mu);
	while (!a->done)
		pthread_cond_wait(&a->cv, &a->mu);
	pthread_mutex_unlock(&a->mu);
	rc = a->rc;
	if (rc == MAT_OK)
		rc = follow_rows(a->fp.cmds, a->limit, a->wm, pos, out, n_out, held, err);
	else
		*err = a->err;
	ahead_free(a);
	return rc;
}

void store_event_ahead_drop(struct store_event_ahead *a)
{
	bool done;

	if (a == NULL)
		return;
	pthread_mutex_lock(&a->mu);
	done = a->done;
	a->dropped = true;
	a->cancel = 1; /* the loop may skip it if it has not started */
	pthread_mutex_unlock(&a->mu);
	if (done)
		ahead_free(a);
}

/* --- retention ------------------------------------------------------------------------------ */

/* Any constant shared by every replica: the bytes of "mat_ev" as a number. */
#define PRUNE_LOCK "120265331664246"
STORE__STMT(st_ev_prune_lock, 0, "SELECT pg_try_advisory_xact_lock(" PRUNE_LOCK ")");
STORE__STMT(st_ev_prune, 2,
            "DELETE FROM events WHERE (pos, seq) IN (SELECT pos, seq FROM events "
            "WHERE pos < $1::timestamptz ORDER BY pos, seq LIMIT $2::int)");

struct prune_args {
	const char *before, *batch;
	int64_t deleted;
};

static enum mat_code prune_body(struct store__tx *tx, void *arg, struct mat_error *err)
{
	struct prune_args *a = arg;
	PGresult *r = NULL;
	bool got;
	enum mat_code rc;

	a->deleted = 0;
	rc = store__tx_exec(tx, &st_ev_prune_lock, NULL, 0, &r, err);
	if (rc != MAT_OK)
		return rc;
	got = PQgetvalue(r, 0, 0)[0] == 't';
	PQclear(r);
	if (!got)
		return MAT_OK;
	rc = STORE__EXEC(tx, &st_ev_prune, &r, err, a->before, a->batch);
	if (rc != MAT_OK)
		return rc;
	a->deleted = strtoll(PQcmdTuples(r), NULL, 10);
	PQclear(r);
	return MAT_OK;
}

enum mat_code store_event_prune(const struct store_call *c, mat_time_us before, int batch,
                                int64_t *deleted, struct mat_error *err)
{
	char before_t[STORE_TIME_TEXT], lim[16];
	struct prune_args a = {.before = before_t, .batch = lim};
	enum mat_code rc;

	store__time_text(before, before_t);
	snprintf(lim, sizeof(lim), "%d", batch > 0 ? batch : 1000);
	rc = store__transact(c, prune_body, &a, err);
	*deleted = rc == MAT_OK ? a.deleted : 0;
	return rc;
}
