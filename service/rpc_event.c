/* EventService (docs/events.md): ListEvents, and WatchEvents as the stream driver's third kind.
 *
 * A watch holds no thread. Live watches share one read per replica: the feed, a window of the
 * latest WINDOW events of every organization, which the timer thread extends when the replica's
 * listener (a dedicated connection LISTENing for the commits of any replica) says something was
 * committed, or while an open transaction holds events back (storage stops below the watermark,
 * so a transaction that commits late is never skipped). It then wakes the parked watches, and
 * each takes from the window what its filter (organization, types, the caller's bindings)
 * keeps. A watch whose position is older than the window (a replay, a resume) reads the table
 * itself, in the same order, until it reaches the window; one that was in the window and fell
 * out of it (it reads more slowly than events come) ends with RESOURCE_EXHAUSTED and resumes
 * from its cursor. The timer also wakes parked watches for their heartbeats and for the
 * re-reading of their caller's bindings every few seconds.
 *
 * Snapshots are stored by storage as this file's encoding of the resource (the wire form of the
 * resource message): the event shows the resource exactly as the mutation left it. */
#include "auth_policy.h"
#include "mlops/maturity/v1/event.pb-c.h"
#include "svc.h"
#include "svc_convert.h"
#include "svc_log.h"
#include "svc_methods.h"
#include "svc_metrics.h"

#include <pthread.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

typedef Mlops__Maturity__V1__Event Event;

#define WATCH_BATCH 200
/* A lone watch reading the table (a replay) reads this many events per round trip. */
#define REPLAY_BATCH 1000
/* Bindings are re-read this often: a removed binding stops events well within 5 s. */
#define RECHECK_MS 3000
/* The longest a watch's read may take before the watch ends (UNAVAILABLE; it resumes). */
#define READ_TIMEOUT_MS 10000
/* The janitor: a batch every PRUNE_EVERY_S seconds, batches in quick succession while a
 * backlog remains. */
#define PRUNE_EVERY_S 60
#define PRUNE_BATCH 1000
/* The feed: the latest events of every organization kept for live watches. */
#define WINDOW 4096
#define FEED_BATCH 500
/* The timer's step: heartbeats due are sent, and events an open transaction held back are read,
 * at most this late. */
#define STEP_MS 50

/* Bumped by every notification: a watch reads again only when it changed since its last read
 * (or its own reasons say so). */
static atomic_uint notify_gen;
static atomic_int n_watchers;
static atomic_llong heard_ms; /* store_now_ms() of the last notification */

/* One event as every watch sends it, built once (by the feed, or by a watch reading the table):
 * the two fields of a WatchEventsResponse already packed, the Event (its snapshot spliced in as
 * storage keeps it: the resource's wire form, appended as the oneof's field, so it is never
 * unpacked and packed again) then the cursor. A watch's message is these bytes as the message's
 * fields (protobuf-c packs unknown fields verbatim), so a delivery copies nothing but them into
 * grpc's buffer. Shared by reference between the feed and every watch's batch. */
struct ev_msg {
	atomic_int ref;
	struct store_event_pos at;
	mat_time_us time;
	int type;
	const char *org_id; /* in the same allocation, after the bytes */
	const char *cursor; /* likewise */
	size_t event_len;   /* bytes of field 1 (event): its length, then the packed Event */
	size_t cursor_len;  /* bytes of field 2 (cursor): its length, then the text */
	uint8_t data[];
};

static void ev_msg_unref(struct ev_msg *m)
{
	if (m != NULL && atomic_fetch_sub(&m->ref, 1) == 1)
		free(m);
}

/* The feed holds every event of the log in (start, end], in order, in ring slots
 * [first, next) (absolute counts, modulo WINDOW). Extended by the timer thread only (a watch
 * that starts while it is closed opens it, empty); read by watches; all under mu. */
static struct {
	pthread_mutex_t mu;
	struct ev_msg *ring[WINDOW];
	int64_t heard[WINDOW]; /* when the replica heard of each event's commit */
	uint64_t first, next;
	struct store_event_pos start, end;
	bool valid;
	bool held;         /* timer thread only: the last read saw events held back */
	bool more;         /* timer thread only: the last read stopped with events left */
	unsigned read_gen; /* timer thread only: notify_gen at the last read */
} feed = {.mu = PTHREAD_MUTEX_INITIALIZER};

static bool feed_valid(void)
{
	bool v;

	pthread_mutex_lock(&feed.mu);
	v = feed.valid;
	pthread_mutex_unlock(&feed.mu);
	return v;
}

static int pos_cmp(const struct store_event_pos *a, const struct store_event_pos *b)
{
	if (a->pos_us != b->pos_us)
		return a->pos_us < b->pos_us ? -1 : 1;
	return a->seq < b->seq ? -1 : a->seq > b->seq;
}

/* --- snapshots -------------------------------------------------------------------------------
 */

static bool encode_snapshot(enum store_snapshot_kind kind, const void *r, uint8_t **out,
                            size_t *len)
{
	struct svc_ctx *tmp = calloc(1, sizeof(*tmp));
	ProtobufCMessage *m = NULL;
	size_t n;

	*out = NULL;
	*len = 0;
	if (tmp == NULL)
		return false;
	switch (kind) {
	case STORE_SNAPSHOT_ORGANIZATION: {
		Mlops__Maturity__V1__Organization *o = svc_alloc(tmp, sizeof(*o));
		svc_org_to_proto(tmp, r, o);
		m = &o->base;
		break;
	}
	case STORE_SNAPSHOT_ASSESSMENT: {
		Mlops__Maturity__V1__Assessment *a = svc_alloc(tmp, sizeof(*a));
		svc_assessment_to_proto(tmp, r, a);
		m = &a->base;
		break;
	}
	case STORE_SNAPSHOT_TRANSITION: {
		Mlops__Maturity__V1__LevelTransition *t = svc_alloc(tmp, sizeof(*t));
		svc_transition_to_proto(tmp, r, t);
		m = &t->base;
		break;
	}
	case STORE_SNAPSHOT_EVIDENCE: {
		Mlops__Maturity__V1__Evidence *e = svc_alloc(tmp, sizeof(*e));
		svc_evidence_to_proto(tmp, r, e);
		m = &e->base;
		break;
	}
	}
	n = m != NULL ? protobuf_c_message_get_packed_size(m) : 0;
	*out = malloc(n ? n : 1);
	if (*out != NULL && m != NULL)
		protobuf_c_message_pack(m, *out);
	*len = n;
	svc_arena_free(tmp->arena);
	free(tmp);
	return *out != NULL;
}

static void *arena_alloc(void *data, size_t size)
{
	return svc_alloc(data, size);
}

static void arena_free(void *data, void *p)
{
	(void)data;
	(void)p; /* the call's memory goes at once */
}

static Event *event_to_proto(struct svc_ctx *ctx, const struct store_event *e)
{
	Event *out = svc_alloc(ctx, sizeof(*out));
	ProtobufCAllocator a = {.alloc = arena_alloc, .free = arena_free, .allocator_data = ctx};
	char name[32];

	mlops__maturity__v1__event__init(out);
	snprintf(name, sizeof(name), "events/%lld", (long long)e->seq);
	out->name = svc_strdup(ctx, name);
	out->type = (Mlops__Maturity__V1__EventType)e->type;
	out->organization = svc_org_name(ctx, e->org_id);
	out->resource = svc_strdup(ctx, e->resource);
	out->principal = svc_strdup(ctx, e->principal);
	out->delegator = svc_strdup(ctx, e->delegator);
	out->time = svc_ts(ctx, e->time);
	out->cursor = svc_strdup(ctx, e->cursor);
	if (e->snapshot == NULL)
		return out;
	switch (store_event_snapshot_kind(e->type)) {
	case STORE_SNAPSHOT_ORGANIZATION:
		out->organization_snapshot = (void *)protobuf_c_message_unpack(
		    &mlops__maturity__v1__organization__descriptor, &a, e->snapshot_len,
		    e->snapshot);
		if (out->organization_snapshot != NULL)
			out->snapshot_case =
			    MLOPS__MATURITY__V1__EVENT__SNAPSHOT_ORGANIZATION_SNAPSHOT;
		break;
	case STORE_SNAPSHOT_ASSESSMENT:
		out->assessment_snapshot = (void *)protobuf_c_message_unpack(
		    &mlops__maturity__v1__assessment__descriptor, &a, e->snapshot_len, e->snapshot);
		if (out->assessment_snapshot != NULL)
			out->snapshot_case =
			    MLOPS__MATURITY__V1__EVENT__SNAPSHOT_ASSESSMENT_SNAPSHOT;
		break;
	case STORE_SNAPSHOT_TRANSITION:
		out->transition_snapshot = (void *)protobuf_c_message_unpack(
		    &mlops__maturity__v1__level_transition__descriptor, &a, e->snapshot_len,
		    e->snapshot);
		if (out->transition_snapshot != NULL)
			out->snapshot_case =
			    MLOPS__MATURITY__V1__EVENT__SNAPSHOT_TRANSITION_SNAPSHOT;
		break;
	case STORE_SNAPSHOT_EVIDENCE:
		out->evidence_snapshot = (void *)protobuf_c_message_unpack(
		    &mlops__maturity__v1__evidence__descriptor, &a, e->snapshot_len, e->snapshot);
		if (out->evidence_snapshot != NULL)
			out->snapshot_case = MLOPS__MATURITY__V1__EVENT__SNAPSHOT_EVIDENCE_SNAPSHOT;
		break;
	}
	return out;
}

static size_t varint_size(uint64_t v)
{
	size_t n = 1;

	while (v >= 0x80) {
		v >>= 7;
		n++;
	}
	return n;
}

static size_t varint_put(uint8_t *p, uint64_t v)
{
	size_t n = 0;

	while (v >= 0x80) {
		p[n++] = (uint8_t)(v | 0x80);
		v >>= 7;
	}
	p[n++] = (uint8_t)v;
	return n;
}

/* The oneof field a snapshot of this type goes in (its field number). */
static unsigned snapshot_field(enum store_event_type type)
{
	switch (store_event_snapshot_kind(type)) {
	case STORE_SNAPSHOT_ORGANIZATION:
		return MLOPS__MATURITY__V1__EVENT__SNAPSHOT_ORGANIZATION_SNAPSHOT;
	case STORE_SNAPSHOT_ASSESSMENT:
		return MLOPS__MATURITY__V1__EVENT__SNAPSHOT_ASSESSMENT_SNAPSHOT;
	case STORE_SNAPSHOT_TRANSITION:
		return MLOPS__MATURITY__V1__EVENT__SNAPSHOT_TRANSITION_SNAPSHOT;
	case STORE_SNAPSHOT_EVIDENCE:
		return MLOPS__MATURITY__V1__EVENT__SNAPSHOT_EVIDENCE_SNAPSHOT;
	}
	return MLOPS__MATURITY__V1__EVENT__SNAPSHOT_ORGANIZATION_SNAPSHOT;
}

/* e as a message every watch can send (reference count 1); NULL when out of memory. Any
 * thread: no call memory. */
static struct ev_msg *ev_msg_build(const struct store_event *e)
{
	Event ev = MLOPS__MATURITY__V1__EVENT__INIT;
	Google__Protobuf__Timestamp ts = GOOGLE__PROTOBUF__TIMESTAMP__INIT;
	char name[32], *org_name;
	size_t org_len = strlen(e->org_id), cur_len = strlen(e->cursor);
	size_t base, snap = 0, ev_len, total;
	struct ev_msg *m;
	uint8_t *p;

	org_name = malloc(org_len + sizeof("organizations/"));
	if (org_name == NULL)
		return NULL;
	memcpy(org_name, "organizations/", sizeof("organizations/") - 1);
	memcpy(org_name + sizeof("organizations/") - 1, e->org_id, org_len + 1);
	snprintf(name, sizeof(name), "events/%lld", (long long)e->seq);
	ev.name = name;
	ev.type = (Mlops__Maturity__V1__EventType)e->type;
	ev.organization = org_name;
	ev.resource = e->resource;
	ev.principal = e->principal;
	ev.delegator = e->delegator;
	ev.cursor = (char *)e->cursor;
	if (e->time != 0) {
		ts.seconds = e->time / 1000000;
		ts.nanos = (int32_t)(e->time % 1000000) * 1000;
		if (ts.nanos < 0) {
			ts.seconds--;
			ts.nanos += 1000000000;
		}
		ev.time = &ts;
	}
	base = protobuf_c_message_get_packed_size(&ev.base);
	/* The snapshot's tag (fields 8 to 11: one byte), its length, its bytes. */
	if (e->snapshot != NULL)
		snap = 1 + varint_size(e->snapshot_len) + e->snapshot_len;
	ev_len = base + snap;
	total = varint_size(ev_len) + ev_len + varint_size(cur_len) + cur_len;
	m = malloc(sizeof(*m) + total + org_len + 1 + cur_len + 1);
	if (m == NULL) {
		free(org_name);
		return NULL;
	}
	atomic_init(&m->ref, 1);
	m->at = e->at;
	m->time = e->time;
	m->type = (int)e->type;
	p = m->data;
	p += varint_put(p, ev_len);
	p += protobuf_c_message_pack(&ev.base, p);
	free(org_name);
	if (e->snapshot != NULL) {
		*p++ =
		    (uint8_t)(snapshot_field(e->type) << 3 | PROTOBUF_C_WIRE_TYPE_LENGTH_PREFIXED);
		p += varint_put(p, e->snapshot_len);
		memcpy(p, e->snapshot, e->snapshot_len);
		p += e->snapshot_len;
	}
	m->event_len = (size_t)(p - m->data);
	p += varint_put(p, cur_len);
	memcpy(p, e->cursor, cur_len);
	p += cur_len;
	m->cursor_len = (size_t)(p - m->data) - m->event_len;
	memcpy(p, e->org_id, org_len + 1);
	m->org_id = (const char *)p;
	p += org_len + 1;
	memcpy(p, e->cursor, cur_len + 1);
	m->cursor = (const char *)p;
	return m;
}

/* --- requests ------------------------------------------------------------------------------- */

/* The engine parsed parent and authorized the caller (svc_methods.def); then types, and one
 * organization as GetOrganization answers it (viewer on it, then NOT_FOUND if it does not
 * exist); organizations/- for anyone, filtered. On MAT_OK
 * f->org_id points into org_buf (or is NULL) and *only_visible is set. */
static enum mat_code open_request(struct svc_ctx *ctx, const char *parent,
                                  const Mlops__Maturity__V1__EventType *types, size_t n_types,
                                  char *org_buf, struct store_event_filter *f, bool *only_visible)
{
	enum mat_code rc;

	memset(f, 0, sizeof(*f));
	*only_visible = false;
	(void)parent; /* parsed and authorized by the engine (svc_methods.def) */
	memcpy(org_buf, ctx->org, MAT_MAX_ORG_ID + 1);
	f->org_id = strcmp(org_buf, "-") == 0 ? NULL : org_buf;
	for (size_t i = 0; i < n_types; i++) {
		int t = (int)types[i];
		if (t < 1 || t > STORE_EVENT_TYPE_MAX) {
			char field[32];
			snprintf(field, sizeof(field), "types[%zu]", i);
			mat_error_field(&ctx->err, field, "is not an EventType");
			continue;
		}
		f->types |= 1u << t;
	}
	if (ctx->err.code != MAT_OK)
		return ctx->err.code;
	if (f->org_id != NULL) {
		struct mat_organization o = {0};
		struct store_call sc;
		svc_store_call(ctx, &sc);
		rc = store_org_get(&sc, f->org_id, &o, &ctx->err);
		mat_organization_cleanup(&o);
		return rc;
	}
	*only_visible = !svc_sees_all(ctx);
	return MAT_OK;
}

/* The position of a watch that starts now: the feed's end, so it is live at once (opening the
 * feed when it is not). Events committed a moment before the watch began may come too; none
 * committed after is missed. */
static enum mat_code feed_join(struct svc_ctx *ctx, struct store_event_pos *pos)
{
	struct store_call sc;
	enum mat_code rc;

	pthread_mutex_lock(&feed.mu);
	if (feed.valid) {
		*pos = feed.end;
		pthread_mutex_unlock(&feed.mu);
		return MAT_OK;
	}
	pthread_mutex_unlock(&feed.mu);
	svc_store_call(ctx, &sc);
	rc = store_event_now(&sc, pos, &ctx->err);
	if (rc != MAT_OK)
		return rc;
	pthread_mutex_lock(&feed.mu);
	if (!feed.valid) {
		feed.start = feed.end = *pos;
		feed.valid = true;
	} else {
		*pos = feed.end;
	}
	pthread_mutex_unlock(&feed.mu);
	return MAT_OK;
}

/* --- ListEvents ----------------------------------------------------------------------------- */

enum mat_code rpc_list_events(struct svc_ctx *ctx, const ProtobufCMessage *req_)
{
	const Mlops__Maturity__V1__ListEventsRequest *req = (const void *)req_;
	Mlops__Maturity__V1__ListEventsResponse resp =
	    MLOPS__MATURITY__V1__LIST_EVENTS_RESPONSE__INIT;
	char org[MAT_MAX_ORG_ID + 1];
	struct store_event_filter f;
	struct store_event *list = NULL;
	struct store_call sc;
	char *next = NULL;
	bool only_visible;
	int page_size;
	size_t n = 0;
	enum mat_code rc;

	rc = open_request(ctx, req->parent, req->types, req->n_types, org, &f, &only_visible);
	if (rc != MAT_OK)
		return rc;
	if (!svc_page_size(req->page_size, &page_size, &ctx->err))
		return ctx->err.code;
	svc_store_call(ctx, &sc);
	sc.only_visible = only_visible;
	rc = store_event_list(&sc, &f, page_size, req->page_token, &list, &n, &next, &ctx->err);
	if (rc != MAT_OK)
		return rc;
	resp.n_events = n;
	resp.events = svc_alloc(ctx, (n ? n : 1) * sizeof(*resp.events));
	for (size_t i = 0; i < n; i++)
		resp.events[i] = event_to_proto(ctx, &list[i]);
	store_events_free(list, n);
	resp.next_page_token = svc_strdup(ctx, next);
	free(next);
	return svc_reply(ctx, &resp.base);
}

/* --- the callers' bindings, shared by their watches ---------------------------------------------
 *
 * Visibility is judged with the caller's bindings as read at most RECHECK_MS ago. They are read
 * once per principal and interval, whatever the number of its watches (a portal's 1,000 watches
 * made 333 reads a second of the same bindings, one per watch): a watch that finds its
 * principal's copy too old reads it again for all of them, and the others wait for that read
 * rather than make their own. A copy is immutable and counted: a watch keeps the one it judged
 * with until it takes a newer one. */

struct bind_snap {
	atomic_int ref;
	int64_t read_ms; /* when the read that made it started */
	struct mat_role_binding *list;
	size_t n;
};

struct principal_binds {
	struct principal_binds *next;
	char *principal;
	int users;              /* watches of this principal; under binds_mu */
	bool reading;           /* one of them is reading the bindings; under binds_mu */
	struct bind_snap *snap; /* the latest copy (NULL before the first); under binds_mu */
};

#define BIND_BUCKETS 64
static pthread_mutex_t binds_mu = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t binds_cv = PTHREAD_COND_INITIALIZER;
static struct principal_binds *binds[BIND_BUCKETS];

static void bind_snap_unref(struct bind_snap *b)
{
	if (b == NULL || atomic_fetch_sub(&b->ref, 1) != 1)
		return;
	for (size_t i = 0; i < b->n; i++)
		mat_role_binding_cleanup(&b->list[i]);
	free(b->list);
	free(b);
}

static size_t bind_bucket(const char *principal)
{
	size_t h = 5381;

	for (const unsigned char *p = (const unsigned char *)principal; *p != '\0'; p++)
		h = h * 33 + *p;
	return h % BIND_BUCKETS;
}

/* The entry of `principal`, one more user; NULL when out of memory. */
static struct principal_binds *binds_join(const char *principal)
{
	size_t b = bind_bucket(principal);
	struct principal_binds *p;

	pthread_mutex_lock(&binds_mu);
	for (p = binds[b]; p != NULL; p = p->next)
		if (strcmp(p->principal, principal) == 0)
			break;
	if (p == NULL) {
		p = calloc(1, sizeof(*p));
		if (p != NULL && (p->principal = strdup(principal)) == NULL) {
			free(p);
			p = NULL;
		}
		if (p != NULL) {
			p->next = binds[b];
			binds[b] = p;
		}
	}
	if (p != NULL)
		p->users++;
	pthread_mutex_unlock(&binds_mu);
	return p;
}

static void binds_leave(struct principal_binds *p)
{
	struct principal_binds **pp;

	if (p == NULL)
		return;
	pthread_mutex_lock(&binds_mu);
	if (--p->users > 0) {
		pthread_mutex_unlock(&binds_mu);
		return;
	}
	for (pp = &binds[bind_bucket(p->principal)]; *pp != p; pp = &(*pp)->next)
		;
	*pp = p->next;
	pthread_mutex_unlock(&binds_mu);
	bind_snap_unref(p->snap);
	free(p->principal);
	free(p);
}

/* Makes list (n bindings, read from a start at read_ms) p's copy unless a fresher one is there;
 * takes the list either way. Under binds_mu. */
static void binds_install(struct principal_binds *p, struct mat_role_binding *list, size_t n,
                          int64_t read_ms)
{
	struct bind_snap *b;

	if (p->snap != NULL && p->snap->read_ms >= read_ms)
		goto drop;
	b = malloc(sizeof(*b));
	if (b == NULL)
		goto drop;
	atomic_init(&b->ref, 1);
	b->read_ms = read_ms;
	b->list = list;
	b->n = n;
	bind_snap_unref(p->snap);
	p->snap = b;
	return;
drop:
	for (size_t i = 0; i < n; i++)
		mat_role_binding_cleanup(&list[i]);
	free(list);
}

/* A copy of p's bindings read at most RECHECK_MS before `now` (a reference for the caller), read
 * here when there is none (or waiting for a read another watch of p is making). */
static enum mat_code binds_current(struct svc_ctx *ctx, struct principal_binds *p, int64_t now,
                                   struct bind_snap **out)
{
	enum mat_code rc = MAT_OK;

	pthread_mutex_lock(&binds_mu);
	for (;;) {
		struct mat_role_binding *list = NULL;
		struct store_call sc;
		size_t n = 0;
		int64_t start;

		if (p->snap != NULL && now - p->snap->read_ms < RECHECK_MS) {
			atomic_fetch_add(&p->snap->ref, 1);
			*out = p->snap;
			break;
		}
		if (p->reading) {
			pthread_cond_wait(&binds_cv, &binds_mu);
			continue; /* a failed read leaves no copy: this watch reads then */
		}
		p->reading = true;
		pthread_mutex_unlock(&binds_mu);
		start = store_now_ms();
		svc_store_call(ctx, &sc);
		rc = store_bindings_for_principal(&sc, p->principal, &list, &n, &ctx->err);
		pthread_mutex_lock(&binds_mu);
		p->reading = false;
		pthread_cond_broadcast(&binds_cv);
		if (rc != MAT_OK)
			break;
		binds_install(p, list, n, start);
		now = start; /* what was just read is fresh enough for this watch */
	}
	pthread_mutex_unlock(&binds_mu);
	return rc;
}

/* --- WatchEvents ---------------------------------------------------------------------------- */

struct watch {
	struct svc_server *srv;
	char org_buf[MAT_MAX_ORG_ID + 1];
	struct store_event_filter f;
	mat_time_us min_time;       /* start_time: events whose time is earlier are not replayed */
	struct store_event_pos pos; /* everything at or before it was considered */
	mat_time_us wm; /* the watermark to read the table with again (0: a fresh one) */
	bool only_visible;
	bool bootstrap_admin;
	struct principal_binds *pb; /* the caller's bindings, shared with its other watches */
	struct bind_snap *binds;    /* the copy visibility is judged with */
	int64_t sent_ms;            /* last message (event or heartbeat) */
	unsigned gen;               /* notify_gen at the last read */
	bool read_now;              /* read at the next fetch whatever the notifications say */
	bool held;                  /* the last read saw events held back by an open transaction */
	bool live;                  /* has taken events from the feed */
	/* The next batch of a replay, read ahead while this one is sent (table_fetch). */
	struct store_event_ahead *ahead;
	/* The current batch: events (references), or one heartbeat. */
	struct ev_msg **batch;
	size_t n, cap;
	bool heartbeat;
	char hb_cursor[STORE_EVENT_CURSOR_MAX];
	/* The message being sent: the batch's bytes as its fields (no call memory). */
	Mlops__Maturity__V1__WatchEventsResponse msg;
	ProtobufCMessageUnknownField fields[2];
};

static void watch_release(void *state);

/* Room for one more event in the batch; false when out of memory. */
static bool batch_room(struct watch *w)
{
	struct ev_msg **b;
	size_t cap;

	if (w->n < w->cap)
		return true;
	cap = w->cap ? 2 * w->cap : 8;
	b = realloc(w->batch, cap * sizeof(*b));
	if (b == NULL)
		return false;
	w->batch = b;
	w->cap = cap;
	return true;
}

/* Whether watch w wants event e: its organization, types, start time, and the caller's
 * bindings as last judged. */
static bool wants(const struct watch *w, const struct ev_msg *e)
{
	if (w->f.org_id != NULL && strcmp(w->f.org_id, e->org_id) != 0)
		return false;
	if (w->f.types != 0 && ((w->f.types >> e->type) & 1u) == 0)
		return false;
	if (w->min_time != 0 && e->time < w->min_time)
		return false;
	return !w->only_visible ||
	       auth_policy_can_see(e->org_id, w->binds->list, w->binds->n, w->bootstrap_admin);
}

enum feed_result {
	FEED_TAKEN,  /* the watch's position is in the window: w->batch holds what it wants */
	FEED_BEHIND, /* older than the window (or no window): read the table */
	FEED_OUT,    /* it was in the window and fell out of it */
};

static enum feed_result from_feed(struct watch *w)
{
	uint64_t lo, hi;
	int64_t now = store_now_ms();
	enum feed_result res = FEED_TAKEN;

	pthread_mutex_lock(&feed.mu);
	if (!feed.valid || pos_cmp(&w->pos, &feed.start) < 0) {
		res = w->live && feed.valid ? FEED_OUT : FEED_BEHIND;
		goto out;
	}
	w->live = true;
	if (pos_cmp(&w->pos, &feed.end) >= 0)
		goto out;
	/* The first event after the watch's position: the ring is in log order. */
	lo = feed.first;
	hi = feed.next;
	while (lo < hi) {
		uint64_t mid = lo + (hi - lo) / 2;
		if (pos_cmp(&feed.ring[mid % WINDOW]->at, &w->pos) <= 0)
			lo = mid + 1;
		else
			hi = mid;
	}
	for (; lo < feed.next && w->n < WATCH_BATCH; lo++) {
		struct ev_msg *e = feed.ring[lo % WINDOW];
		if (wants(w, e)) {
			if (!batch_room(w))
				break;
			atomic_fetch_add(&e->ref, 1);
			w->batch[w->n++] = e;
			svc_metrics_event_latency(svc_server_metrics(w->srv),
			                          (double)(now - feed.heard[lo % WINDOW]) / 1000.0);
		}
		w->pos = e->at;
	}
	if (lo == feed.next)
		w->pos = feed.end; /* everything up to the feed's position was considered */
out:
	pthread_mutex_unlock(&feed.mu);
	return res;
}

/* A watch behind the window reads the table itself, filtered in the query, in batches as large
 * as the streams in progress allow (a lone replay: REPLAY_BATCH per round trip). */
static enum mat_code table_fetch(struct svc_ctx *ctx, struct watch *w, int64_t now)
{
	struct store_event *rows = NULL;
	struct store_call sc;
	size_t n = 0;
	int limit = svc_stream_batch(ctx, REPLAY_BATCH);
	enum mat_code rc;

	if (limit < WATCH_BATCH)
		limit = WATCH_BATCH;
	svc_store_call(ctx, &sc);
	sc.only_visible = w->only_visible;
	if (sc.deadline_ms > now + READ_TIMEOUT_MS)
		sc.deadline_ms = now + READ_TIMEOUT_MS;
	if (w->ahead != NULL && sc.authz == NULL && w->wm != 0 &&
	    store_event_ahead_matches(w->ahead, &sc, &w->f, w->min_time, &w->pos, w->wm, limit)) {
		rc = store_event_ahead_finish(w->ahead, &w->pos, &rows, &n, &w->held, &ctx->err);
		w->ahead = NULL;
	} else {
		store_event_ahead_drop(w->ahead);
		w->ahead = NULL;
		rc = store_event_follow_wm(&sc, &w->f, w->min_time, limit, &w->pos, &w->wm, &rows,
		                           &n, &w->held, &ctx->err);
	}
	if (rc != MAT_OK)
		return rc;
	/* A full batch: more rows lie below the same watermark, read them without asking it
	 * again. A short one moved the position to it: the next read needs a fresh one. */
	w->read_now = n == (size_t)limit;
	if (!w->read_now)
		w->wm = 0;
	else if (limit == REPLAY_BATCH)
		/* A replay with the whole budget (few streams in progress): its next batch is read
		 * while this one is sent, so the database and the send overlap instead of taking
		 * turns. One batch more in memory, only while few streams run. */
		w->ahead = store_event_follow_ahead(&sc, &w->f, w->min_time, limit, &w->pos, w->wm);
	w->batch = calloc(n ? n : 1, sizeof(*w->batch));
	if (w->batch == NULL) {
		store_events_free(rows, n);
		return mat_error_set(&ctx->err, MAT_INTERNAL, "out of memory");
	}
	w->cap = n ? n : 1;
	for (size_t i = 0; i < n; i++) {
		w->batch[i] = ev_msg_build(&rows[i]);
		if (w->batch[i] == NULL) {
			store_events_free(rows, n);
			return mat_error_set(&ctx->err, MAT_INTERNAL, "out of memory");
		}
		w->n++;
	}
	store_events_free(rows, n);
	return MAT_OK;
}

/* Visibility is the caller's bindings now (read at most RECHECK_MS ago), not when the watch
 * began. A watch of one organization its caller may no longer view ends: the refusal is
 * decided (and audited) by the call's own authorization, on bindings read again. */
static enum mat_code watch_judge(struct svc_ctx *ctx, struct watch *w, int64_t now)
{
	struct bind_snap *b = NULL;
	enum mat_code rc;

	if (w->bootstrap_admin)
		return MAT_OK; /* sees everything whatever the bindings */
	if (w->binds != NULL && now - w->binds->read_ms < RECHECK_MS)
		return MAT_OK;
	rc = binds_current(ctx, w->pb, now, &b);
	if (rc != MAT_OK)
		return rc;
	bind_snap_unref(w->binds);
	w->binds = b;
	if (w->f.org_id == NULL) {
		w->only_visible = !auth_policy_sees_all(b->list, b->n, false);
		return MAT_OK;
	}
	if (auth_policy_can_see(w->f.org_id, b->list, b->n, false))
		return MAT_OK;
	svc_forget_bindings(ctx);
	rc = svc_reauthorize(ctx);
	svc_forget_bindings(ctx);
	return rc;
}

static enum mat_code watch_fetch(struct svc_ctx *ctx, void *state, size_t *n, enum svc_fetch *next)
{
	struct watch *w = state;
	const struct svc_config *cfg = svc_server_config(w->srv);
	int64_t now = store_now_ms();
	unsigned g;
	enum mat_code rc;

	*n = 0;
	*next = SVC_FETCH_PARK;
	watch_release(w); /* an empty batch is never sent, so never released */
	if (svc_server_grace_over(w->srv))
		return mat_error_set(&ctx->err, MAT_UNAVAILABLE,
		                     "the server is shutting down: resume from the last cursor");
	rc = watch_judge(ctx, w, now);
	if (rc != MAT_OK)
		return rc;
	switch (from_feed(w)) {
	case FEED_OUT:
		svc_metrics_watcher_too_slow(svc_server_metrics(w->srv));
		return mat_error_set(&ctx->err, MAT_LIMIT,
		                     "this watch fell more than %d events behind: resume from its "
		                     "last cursor",
		                     WINDOW);
	case FEED_TAKEN:
		w->read_now = false; /* live: the feed says when there is more */
		store_event_ahead_drop(w->ahead);
		w->ahead = NULL;
		break;
	case FEED_BEHIND:
		g = atomic_load(&notify_gen);
		if (g != w->gen || w->held || w->read_now) {
			w->gen = g;
			rc = table_fetch(ctx, w, now);
			if (rc != MAT_OK)
				return rc;
		}
		break;
	}
	if (w->n > 0) {
		w->sent_ms = now;
		svc_metrics_events_delivered(svc_server_metrics(w->srv), (unsigned)w->n);
		*n = w->n;
		/* A full batch: more may be waiting, in the window or in the table. */
		*next = w->n >= WATCH_BATCH || w->read_now ? SVC_FETCH_MORE : SVC_FETCH_PARK;
		return MAT_OK;
	}
	/* Nothing this watch wants: no batch kept while it parks. */
	watch_release(w);
	if (now - w->sent_ms >= cfg->event_heartbeat_ms) {
		/* A heartbeat: no event, the position reached (a filtered watch's cursor stays
		 * recent, so a resume after a long silence is not refused as too old). */
		w->heartbeat = true;
		store_event_cursor_encode(&w->pos, w->hb_cursor);
		w->sent_ms = now;
		*n = 1;
	}
	return MAT_OK;
}

/* The message is the event's bytes as they are (built once for every watch that sends it). */
static const ProtobufCMessage *watch_encode(struct svc_ctx *ctx, void *state, size_t i)
{
	struct watch *w = state;
	const struct ev_msg *e;

	(void)ctx;
	mlops__maturity__v1__watch_events_response__init(&w->msg);
	if (w->heartbeat) {
		w->msg.cursor = w->hb_cursor;
		return &w->msg.base;
	}
	e = w->batch[i];
	w->fields[0] =
	    (ProtobufCMessageUnknownField){.tag = 1, /* event */
	                                   .wire_type = PROTOBUF_C_WIRE_TYPE_LENGTH_PREFIXED,
	                                   .len = e->event_len,
	                                   .data = (uint8_t *)e->data};
	w->fields[1] =
	    (ProtobufCMessageUnknownField){.tag = 2, /* cursor */
	                                   .wire_type = PROTOBUF_C_WIRE_TYPE_LENGTH_PREFIXED,
	                                   .len = e->cursor_len,
	                                   .data = (uint8_t *)e->data + e->event_len};
	w->msg.base.n_unknown_fields = 2;
	w->msg.base.unknown_fields = w->fields;
	return &w->msg.base;
}

static void watch_release(void *state)
{
	struct watch *w = state;

	for (size_t i = 0; i < w->n; i++)
		ev_msg_unref(w->batch[i]);
	free(w->batch);
	w->batch = NULL;
	w->n = w->cap = 0;
	w->heartbeat = false;
}

static void watch_free(void *state)
{
	struct watch *w = state;

	watch_release(w);
	store_event_ahead_drop(w->ahead);
	bind_snap_unref(w->binds);
	binds_leave(w->pb);
	atomic_fetch_sub(&n_watchers, 1);
	svc_metrics_watchers(svc_server_metrics(w->srv), -1);
	free(w);
}

/* A parked watch needs a fetch of its own accord only for its heartbeat. */
static int64_t watch_due(void *state)
{
	const struct watch *w = state;
	return w->sent_ms + svc_server_config(w->srv)->event_heartbeat_ms;
}

/* An event is a small message built from memory: encoded on the poller (replays). */
static const struct svc_stream_ops watch_ops = {.fetch = watch_fetch,
                                                .encode = watch_encode,
                                                .release = watch_release,
                                                .free = watch_free,
                                                .encode_inline = true,
                                                .due_ms = watch_due};

enum mat_code rpc_watch_events(struct svc_ctx *ctx, const ProtobufCMessage *req_)
{
	const Mlops__Maturity__V1__WatchEventsRequest *req = (const void *)req_;
	const struct svc_config *cfg = svc_server_config(ctx->srv);
	struct watch *w = calloc(1, sizeof(*w));
	mat_time_us start = 0;
	enum mat_code rc;

	if (w == NULL)
		return mat_error_set(&ctx->err, MAT_INTERNAL, "out of memory");
	w->srv = ctx->srv;
	/* Counted before it joins the feed, so the timer does not close the feed under it. */
	atomic_fetch_add(&n_watchers, 1);
	rc = open_request(ctx, req->parent, req->types, req->n_types, w->org_buf, &w->f,
	                  &w->only_visible);
	if (rc == MAT_OK && !svc_ts_in(req->start_time, "start_time", &start, &ctx->err))
		rc = ctx->err.code;
	if (rc == MAT_OK && req->after[0] != '\0') {
		/* Whole days, on this replica's clock. */
		struct timespec ts;
		mat_time_us oldest;
		clock_gettime(CLOCK_REALTIME, &ts);
		oldest = (mat_time_us)ts.tv_sec * 1000000 + ts.tv_nsec / 1000 -
		         (mat_time_us)cfg->event_retention_days * 86400 * 1000000;
		rc = store_event_cursor_decode(req->after, "after", oldest, &w->pos, &ctx->err);
	} else if (rc == MAT_OK && start != 0) {
		/* Just before start_time: every event at or after it (time >= start_time implies
		 * a position >= it). */
		w->pos.pos_us = start - 1;
		w->pos.seq = INT64_MAX;
		w->min_time = start;
	} else if (rc == MAT_OK) {
		rc = feed_join(ctx, &w->pos);
	}
	w->bootstrap_admin = ctx->bootstrap_admin;
	if (rc == MAT_OK && !w->bootstrap_admin && (w->pb = binds_join(ctx->principal)) == NULL)
		rc = mat_error_set(&ctx->err, MAT_INTERNAL, "out of memory");
	if (rc != MAT_OK) {
		atomic_fetch_sub(&n_watchers, 1);
		free(w);
		return rc;
	}
	/* The call keeps no bindings of its own while it watches: the principal's copy judges it
	 * (read at the first fetch unless another watch's is fresh; the engine read the call's
	 * before this handler ran, when is not known here, so they do not seed it). */
	svc_forget_bindings(ctx);
	w->sent_ms = store_now_ms();
	w->read_now = true;
	w->gen = atomic_load(&notify_gen);
	svc_metrics_watchers(svc_server_metrics(ctx->srv), 1);
	svc_stream_start(ctx, &watch_ops, w);
	return MAT_OK;
}
/* --- the replica's listener, timer and janitor ----------------------------------------------- */

struct svc_events {
	struct svc_server *srv;
	struct store_listener *listener;
	pthread_t timer;
	pthread_mutex_t mu;
	pthread_cond_t cv;
	bool stop;
	bool notified; /* the listener spoke since the timer thread last looked */
};

/* The listener's thread: the timer thread reads the feed, at once. */
static void on_notify(void *arg)
{
	struct svc_events *ev = arg;

	atomic_store(&heard_ms, store_now_ms());
	atomic_fetch_add(&notify_gen, 1);
	pthread_mutex_lock(&ev->mu);
	ev->notified = true;
	pthread_cond_signal(&ev->cv);
	pthread_mutex_unlock(&ev->mu);
}

static void feed_reset(void)
{
	pthread_mutex_lock(&feed.mu);
	for (uint64_t i = feed.first; i < feed.next; i++) {
		ev_msg_unref(feed.ring[i % WINDOW]);
		feed.ring[i % WINDOW] = NULL;
	}
	feed.first = feed.next = 0;
	feed.valid = false;
	pthread_mutex_unlock(&feed.mu);
	feed.held = feed.more = false;
}

/* Extends the feed with what was committed since its end (one read for every watch of the
 * replica); true when it took events. Timer thread only. */
static bool feed_read(struct svc_events *ev)
{
	struct store_call sc = {.pool = svc_server_pool(ev->srv),
	                        .deadline_ms = store_now_ms() + READ_TIMEOUT_MS,
	                        .principal = "",
	                        .method = "feed"};
	struct store_event_filter all = {0};
	struct store_event_pos pos;
	struct mat_error err;
	bool any = false, valid;

	int64_t heard = store_now_ms();

	mat_error_clear(&err);
	if (feed.read_gen != atomic_load(&notify_gen))
		heard = atomic_load(&heard_ms);
	feed.read_gen = atomic_load(&notify_gen);
	pthread_mutex_lock(&feed.mu);
	valid = feed.valid;
	pos = feed.end;
	pthread_mutex_unlock(&feed.mu);
	if (!valid) {
		if (store_event_now(&sc, &pos, &err) != MAT_OK)
			goto fail;
		pthread_mutex_lock(&feed.mu);
		if (!feed.valid) {
			feed.start = feed.end = pos;
			feed.valid = true;
		}
		pos = feed.end;
		pthread_mutex_unlock(&feed.mu);
	}
	feed.more = false;
	for (int round = 0; round < WINDOW / FEED_BATCH; round++) {
		struct store_event *batch = NULL;
		size_t n = 0;
		struct ev_msg *msgs[FEED_BATCH];
		struct store_event_pos before = pos;
		if (store_event_follow(&sc, &all, 0, FEED_BATCH, &pos, &batch, &n, &feed.held,
		                       &err) != MAT_OK)
			goto fail;
		/* Each event built once, here, for every watch that will send it. */
		for (size_t i = 0; i < n; i++) {
			msgs[i] = ev_msg_build(&batch[i]);
			if (msgs[i] == NULL) {
				for (size_t j = 0; j < i; j++)
					ev_msg_unref(msgs[j]);
				store_events_free(batch, n);
				pos = before;
				mat_error_set(&err, MAT_INTERNAL, "out of memory");
				goto fail;
			}
		}
		store_events_free(batch, n);
		pthread_mutex_lock(&feed.mu);
		for (size_t i = 0; i < n; i++) {
			if (feed.next - feed.first == WINDOW) {
				struct ev_msg *old = feed.ring[feed.first % WINDOW];
				feed.start = old->at;
				ev_msg_unref(old);
				feed.first++;
			}
			feed.ring[feed.next % WINDOW] = msgs[i];
			feed.heard[feed.next % WINDOW] = heard;
			feed.next++;
		}
		feed.end = pos;
		pthread_mutex_unlock(&feed.mu);
		any = any || n > 0;
		if (n < FEED_BATCH)
			break;
		/* A window's worth in one read at most: the rest at the next step (a burst of
		 * 20,000 events moves at a window a step, not a window a tick). */
		feed.more = round + 1 == WINDOW / FEED_BATCH;
	}
	return any;
fail:
	svc_log_event("warn", "event feed: %s", err.message);
	return any;
}

/* Deletes one batch of events past retention; true when there may be more. */
static bool prune_once(struct svc_events *ev)
{
	const struct svc_config *cfg = svc_server_config(ev->srv);
	struct store_call sc = {.pool = svc_server_pool(ev->srv),
	                        .deadline_ms = store_now_ms() + 10000,
	                        .principal = "",
	                        .method = "janitor"};
	struct mat_error err;
	struct timespec ts;
	int64_t deleted = 0;
	mat_time_us before;

	mat_error_clear(&err);
	clock_gettime(CLOCK_REALTIME, &ts);
	before = (mat_time_us)ts.tv_sec * 1000000 + ts.tv_nsec / 1000 -
	         (mat_time_us)cfg->event_retention_days * 86400 * 1000000;
	if (store_event_prune(&sc, before, PRUNE_BATCH, &deleted, &err) != MAT_OK) {
		svc_log_event("warn", "event retention: %s", err.message);
		return false;
	}
	return deleted == PRUNE_BATCH;
}

/* Wakes parked watches on a short period while there are any (heartbeats, visibility checks,
 * events held back by an open transaction), and runs the janitor. */
static void *timer_main(void *arg)
{
	struct svc_events *ev = arg;
	const struct svc_config *cfg = svc_server_config(ev->srv);
	int tick_ms = cfg->event_heartbeat_ms / 3 < 1000 ? cfg->event_heartbeat_ms / 3 : 1000;
	int64_t next_prune = store_now_ms() + 5000, next_feed = 0;
	unsigned woke_gen = 0;

	if (tick_ms < 20)
		tick_ms = 20;
	pthread_mutex_lock(&ev->mu);
	while (!ev->stop) {
		struct timespec ts;
		int step_ms = tick_ms < STEP_MS ? tick_ms : STEP_MS;
		clock_gettime(CLOCK_REALTIME, &ts);
		ts.tv_nsec += (long)step_ms * 1000000L;
		ts.tv_sec += ts.tv_nsec / 1000000000L;
		ts.tv_nsec %= 1000000000L;
		if (!ev->notified)
			pthread_cond_timedwait(&ev->cv, &ev->mu, &ts);
		if (ev->stop)
			break;
		ev->notified = false;
		pthread_mutex_unlock(&ev->mu);
		if (atomic_load(&n_watchers) == 0) {
			if (feed_valid())
				feed_reset();
		} else {
			/* Read the feed when told, every step while an open transaction holds
			 * events back (they are delivered within a step of its commit, not a tick:
			 * any transaction open on the database holds them, a replica's own reads
			 * included) or while a burst is larger than one read takes, and once a tick
			 * anyway (a notification lost with the
			 * listener's connection; no feed: the database could not be read).
			 */
			unsigned g = atomic_load(&notify_gen);
			int64_t now = store_now_ms();
			bool fresh = false, read = false;
			if (feed.held || feed.more || feed.read_gen != g || now >= next_feed) {
				fresh = feed_read(ev);
				read = true;
				next_feed = store_now_ms() + tick_ms;
			}
			/* Every watch when there is something new (or no feed: they read the table
			 * themselves); otherwise only those with a heartbeat due, every step, so
			 * watches opened within the same second do not all send theirs in one
			 * burst. Waking all 10,000 idle watches every tick cost half a core, for
			 * nothing.
			 */
			if (fresh || g != woke_gen || (read && !feed_valid())) {
				woke_gen = g;
				svc_server_wake_streams(ev->srv);
			} else {
				svc_server_wake_due_streams(ev->srv, store_now_ms());
			}
		}
		if (store_now_ms() >= next_prune) {
			bool more = prune_once(ev);
			/* Small batches close together while there is a backlog, so no delete
			 * holds locks or bloats WAL in one go. */
			next_prune = store_now_ms() + (more ? 200 : PRUNE_EVERY_S * 1000);
		}
		pthread_mutex_lock(&ev->mu);
	}
	pthread_mutex_unlock(&ev->mu);
	return NULL;
}

struct svc_events *svc_events_start(struct svc_server *srv)
{
	struct svc_events *ev = calloc(1, sizeof(*ev));

	if (ev == NULL)
		return NULL;
	ev->srv = srv;
	pthread_mutex_init(&ev->mu, NULL);
	pthread_cond_init(&ev->cv, NULL);
	store_events_set_encoder(encode_snapshot);
	ev->listener = store_listener_start(svc_server_pool(srv), on_notify, ev);
	if (ev->listener == NULL || pthread_create(&ev->timer, NULL, timer_main, ev) != 0) {
		store_listener_stop(ev->listener);
		pthread_mutex_destroy(&ev->mu);
		pthread_cond_destroy(&ev->cv);
		free(ev);
		return NULL;
	}
	return ev;
}

void svc_events_stop(struct svc_events *ev)
{
	if (ev == NULL)
		return;
	pthread_mutex_lock(&ev->mu);
	ev->stop = true;
	pthread_cond_signal(&ev->cv);
	pthread_mutex_unlock(&ev->mu);
	pthread_join(ev->timer, NULL);
	store_listener_stop(ev->listener);
	feed_reset();
	pthread_mutex_destroy(&ev->mu);
	pthread_cond_destroy(&ev->cv);
	free(ev);
}
