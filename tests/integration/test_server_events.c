/* Events over the real server: every mutation writes exactly its events (none for a failure, a
 * denial or a replay), a submission's order, ListEvents pages and filters, WatchEvents replay
 * then live, a transaction that commits after a later one is still delivered once and in order
 * (live and on resume), two replicas, cursor errors, retention, heartbeats, visibility and
 * shutdown. */
#include "itest.h"

// clang-format off
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <cmocka.h>
// clang-format on
#include <arpa/inet.h>
#include <netinet/in.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "google/protobuf/field_mask.pb-c.h"
#include "mlops/maturity/v1/access.pb-c.h"
#include "mlops/maturity/v1/assessment.pb-c.h"
#include "mlops/maturity/v1/event.pb-c.h"
#include "mlops/maturity/v1/evidence.pb-c.h"
#include "mlops/maturity/v1/organization.pb-c.h"
#include "mlops/maturity/v1/transition.pb-c.h"

#define M(svc, m) "/mlops.maturity.v1." svc "/" m
#define EDITOR "dnsclient" /* global editor: dns:control-plane.maturityd.dev */
#define EDITOR_P "dns:control-plane.maturityd.dev"
#define REVIEWER "portal" /* global reviewer */
#define VIEWER "reporter" /* viewer of ev-a only */
#define VIEWER_P "spiffe://maturityd.dev/reporter"
#define ADMIN_P "spiffe://maturityd.dev/admin"
#define NOBODY "cnclient" /* no binding (but for a while in one test) */
#define NOBODY_P "cn:legacy-job"
#define T(x) MLOPS__MATURITY__V1__EVENT_TYPE__EVENT_TYPE_##x
#define HEARTBEAT_MS "400"

typedef Mlops__Maturity__V1__Event Event;
typedef Mlops__Maturity__V1__ListEventsResponse ListResp;
typedef Mlops__Maturity__V1__WatchEventsResponse WatchResp;

static const char *const level1[] = {"people.regular_communication",
                                     "model_creation.automated_data_pipeline",
                                     "model_release.versioned_scoring_scripts",
                                     "model_release.basic_model_integration_tests",
                                     "application_integration.app_unit_tests",
                                     "application_integration.automated_builds",
                                     "application_integration.operational_metrics"};

static char viewer_binding[128];
static int g_metrics_port; /* the main server's --metrics-listen */

/* GET http://127.0.0.1:port/path, the whole response (malloc'd) or NULL. */
static char *http_get(int port, const char *path)
{
	struct sockaddr_in a = {0};
	int fd = socket(AF_INET, SOCK_STREAM, 0);
	size_t cap = 1 << 20, n = 0;
	char *buf = malloc(cap);
	char req[256];

	a.sin_family = AF_INET;
	a.sin_port = htons((uint16_t)port);
	a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	snprintf(req, sizeof(req), "GET %s HTTP/1.0\r\nHost: localhost\r\n\r\n", path);
	if (connect(fd, (struct sockaddr *)&a, sizeof(a)) != 0 || write(fd, req, strlen(req)) < 0) {
		close(fd);
		free(buf);
		return NULL;
	}
	for (;;) {
		ssize_t r = read(fd, buf + n, cap - 1 - n);
		if (r <= 0)
			break;
		n += (size_t)r;
	}
	buf[n] = '\0';
	close(fd);
	return buf;
}

static void free_msg(void *m)
{
	if (m)
		protobuf_c_message_free_unpacked(m, NULL);
}

static void make_org(const char *id, const char *rid, grpc_status_code want)
{
	Mlops__Maturity__V1__CreateOrganizationRequest req =
	    MLOPS__MATURITY__V1__CREATE_ORGANIZATION_REQUEST__INIT;
	Mlops__Maturity__V1__Organization o = MLOPS__MATURITY__V1__ORGANIZATION__INIT;
	o.display_name = (char *)"events";
	req.organization = &o;
	req.organization_id = (char *)id;
	req.request_id = (char *)(rid ? rid : "");
	free_msg(itest_call("admin", M("OrganizationService", "CreateOrganization"), &req,
	                    &mlops__maturity__v1__organization__descriptor, want));
}

static void rename_org(const char *id, const char *etag, grpc_status_code want)
{
	Mlops__Maturity__V1__UpdateOrganizationRequest req =
	    MLOPS__MATURITY__V1__UPDATE_ORGANIZATION_REQUEST__INIT;
	Mlops__Maturity__V1__Organization o = MLOPS__MATURITY__V1__ORGANIZATION__INIT;
	Google__Protobuf__FieldMask mask = GOOGLE__PROTOBUF__FIELD_MASK__INIT;
	char *paths[1] = {(char *)"display_name"};
	char name[96];
	snprintf(name, sizeof(name), "organizations/%s", id);
	o.name = name;
	o.display_name = (char *)"renamed";
	o.etag = (char *)(etag ? etag : "");
	mask.paths = paths;
	mask.n_paths = 1;
	req.organization = &o;
	req.update_mask = &mask;
	free_msg(itest_call(EDITOR, M("OrganizationService", "UpdateOrganization"), &req,
	                    &mlops__maturity__v1__organization__descriptor, want));
}

static char *bind_role(const char *principal, int role, const char *org)
{
	Mlops__Maturity__V1__CreateRoleBindingRequest req =
	    MLOPS__MATURITY__V1__CREATE_ROLE_BINDING_REQUEST__INIT;
	Mlops__Maturity__V1__RoleBinding b = MLOPS__MATURITY__V1__ROLE_BINDING__INIT;
	Mlops__Maturity__V1__RoleBinding *out;
	char n[96];
	static char name[128];
	b.principal = (char *)principal;
	b.role = role;
	if (org != NULL) {
		snprintf(n, sizeof(n), "organizations/%s", org);
		b.organization = n;
	}
	req.role_binding = &b;
	out = itest_call("admin", M("AccessService", "CreateRoleBinding"), &req,
	                 &mlops__maturity__v1__role_binding__descriptor, GRPC_STATUS_OK);
	snprintf(name, sizeof(name), "%s", out->name);
	free_msg(out);
	return name;
}

/* Creates an assessment (as EDITOR), answers it to level 1 when asked; its name into out. */
static void create_assessment(const char *org, bool answer, char *out)
{
	Mlops__Maturity__V1__CreateAssessmentRequest cr =
	    MLOPS__MATURITY__V1__CREATE_ASSESSMENT_REQUEST__INIT;
	Mlops__Maturity__V1__UpdateAnswersRequest u =
	    MLOPS__MATURITY__V1__UPDATE_ANSWERS_REQUEST__INIT;
	Mlops__Maturity__V1__Answer ans[7], *p[7];
	Mlops__Maturity__V1__Assessment *a;
	char parent[96];

	snprintf(parent, sizeof(parent), "organizations/%s", org);
	cr.parent = parent;
	a = itest_call(EDITOR, M("AssessmentService", "CreateAssessment"), &cr,
	               &mlops__maturity__v1__assessment__descriptor, GRPC_STATUS_OK);
	strcpy(out, a->name);
	free_msg(a);
	if (!answer)
		return;
	for (int i = 0; i < 7; i++) {
		mlops__maturity__v1__answer__init(&ans[i]);
		ans[i].practice_id = (char *)level1[i];
		ans[i].status = MLOPS__MATURITY__V1__PRACTICE_STATUS__PRACTICE_STATUS_IMPLEMENTED;
		p[i] = &ans[i];
	}
	u.name = out;
	u.answers = p;
	u.n_answers = 7;
	free_msg(itest_call(EDITOR, M("AssessmentService", "UpdateAnswers"), &u,
	                    &mlops__maturity__v1__assessment__descriptor, GRPC_STATUS_OK));
}

static void submit(const char *name)
{
	Mlops__Maturity__V1__SubmitAssessmentRequest s =
	    MLOPS__MATURITY__V1__SUBMIT_ASSESSMENT_REQUEST__INIT;
	s.name = (char *)name;
	free_msg(itest_call(EDITOR, M("AssessmentService", "SubmitAssessment"), &s,
	                    &mlops__maturity__v1__assessment__descriptor, GRPC_STATUS_OK));
}

/* The name of the organization's PROPOSED transition. */
static void proposed(const char *org, char *out)
{
	Mlops__Maturity__V1__ListTransitionsRequest req =
	    MLOPS__MATURITY__V1__LIST_TRANSITIONS_REQUEST__INIT;
	Mlops__Maturity__V1__ListTransitionsResponse *r;
	char parent[96];
	snprintf(parent, sizeof(parent), "organizations/%s", org);
	req.parent = parent;
	req.state = MLOPS__MATURITY__V1__LEVEL_TRANSITION__STATE__STATE_PROPOSED;
	r = itest_call("admin", M("TransitionService", "ListTransitions"), &req,
	               &mlops__maturity__v1__list_transitions_response__descriptor, GRPC_STATUS_OK);
	assert_int_equal(r->n_transitions, 1);
	strcpy(out, r->transitions[0]->name);
	free_msg(r);
}

static ListResp *list_as(const char *who, const char *parent, int type, int page_size,
                         const char *token, grpc_status_code want)
{
	Mlops__Maturity__V1__ListEventsRequest req = MLOPS__MATURITY__V1__LIST_EVENTS_REQUEST__INIT;
	Mlops__Maturity__V1__EventType types[1] = {type};
	req.parent = (char *)parent;
	if (type != 0) {
		req.types = types;
		req.n_types = 1;
	}
	req.page_size = page_size;
	req.page_token = (char *)(token ? token : "");
	return itest_call(who, M("EventService", "ListEvents"), &req,
	                  &mlops__maturity__v1__list_events_response__descriptor, want);
}

static size_t count_events(const char *org)
{
	char parent[96];
	ListResp *r;
	size_t n;
	snprintf(parent, sizeof(parent), "organizations/%s", org);
	r = list_as("admin", parent, 0, 1000, NULL, GRPC_STATUS_OK);
	n = r->n_events;
	free_msg(r);
	return n;
}

static struct tstream *watch_on(struct tclient *c, const char *parent, int type, const char *after,
                                long start_s)
{
	Mlops__Maturity__V1__WatchEventsRequest req =
	    MLOPS__MATURITY__V1__WATCH_EVENTS_REQUEST__INIT;
	Mlops__Maturity__V1__EventType types[1] = {type};
	Google__Protobuf__Timestamp ts = GOOGLE__PROTOBUF__TIMESTAMP__INIT;
	req.parent = (char *)parent;
	if (type != 0) {
		req.types = types;
		req.n_types = 1;
	}
	req.after = (char *)(after ? after : "");
	if (start_s != 0) {
		ts.seconds = start_s;
		req.start_time = &ts;
	}
	return tclient_stream_open(c, M("EventService", "WatchEvents"), &req.base, 60000);
}

static struct tstream *watch(const char *who, const char *parent, int type, const char *after,
                             long start_s)
{
	return watch_on(itest_client(who), parent, type, after, start_s);
}

/* The next event of a watch, skipping heartbeats; NULL when the stream ended. */
static WatchResp *next_event(struct tstream *s)
{
	ProtobufCMessage *m = NULL;
	while (
	    tclient_stream_next(s, &mlops__maturity__v1__watch_events_response__descriptor, &m)) {
		WatchResp *w = (WatchResp *)m;
		if (w->event != NULL)
			return w;
		assert_true(w->cursor[0] != '\0');
		free_msg(w);
	}
	return NULL;
}

static void end_watch(struct tstream *s)
{
	struct tresult r;
	tclient_stream_cancel(s);
	tclient_stream_finish(s, &r);
	tresult_cleanup(&r);
}

/* --- every mutation, its events -------------------------------------------------------------- */

static void test_every_mutation_writes_its_events(void **state)
{
	const int want[] = {
	    T(ORGANIZATION_CREATED), T(ORGANIZATION_UPDATED), T(ASSESSMENT_CREATED),
	    T(ASSESSMENT_UPDATED),   T(ASSESSMENT_SUBMITTED), T(TRANSITION_PROPOSED),
	    T(TRANSITION_REJECTED),  T(ASSESSMENT_CREATED),   T(ASSESSMENT_UPDATED),
	    T(ASSESSMENT_SUBMITTED), T(TRANSITION_PROPOSED),  T(ASSESSMENT_CREATED),
	    T(ASSESSMENT_UPDATED),   T(ASSESSMENT_SUBMITTED), T(TRANSITION_SUPERSEDED),
	    T(TRANSITION_PROPOSED),  T(TRANSITION_APPLIED),   T(ORGANIZATION_UPDATED),
	    T(ASSESSMENT_CREATED),   T(ASSESSMENT_DELETED),   T(EVIDENCE_REPORTED),
	};
	const size_t n_want = sizeof(want) / sizeof(want[0]);
	const char *rid = "0190a000-0000-7000-8000-0000000000e1";
	char a1[160], a2[160], a3[160], a4[160], tr[160];
	ListResp *r;
	(void)state;

	make_org("ev-a", rid, GRPC_STATUS_OK);
	make_org("ev-a", rid, GRPC_STATUS_OK); /* a replay: nothing written */
	rename_org("ev-a", "stale-etag", GRPC_STATUS_ABORTED);
	rename_org("ev-a", NULL, GRPC_STATUS_OK);
	assert_int_equal(count_events("ev-a"), 2);

	create_assessment("ev-a", true, a1);
	submit(a1);
	proposed("ev-a", tr);
	{
		Mlops__Maturity__V1__RejectTransitionRequest rj =
		    MLOPS__MATURITY__V1__REJECT_TRANSITION_REQUEST__INIT;
		rj.name = tr;
		rj.reason = (char *)"not yet";
		free_msg(itest_call(REVIEWER, M("TransitionService", "RejectTransition"), &rj,
		                    &mlops__maturity__v1__level_transition__descriptor,
		                    GRPC_STATUS_OK));
	}
	create_assessment("ev-a", true, a2);
	submit(a2);
	create_assessment("ev-a", true, a3);
	submit(a3); /* supersedes a2's proposal */
	proposed("ev-a", tr);
	{
		Mlops__Maturity__V1__ApproveTransitionRequest ap =
		    MLOPS__MATURITY__V1__APPROVE_TRANSITION_REQUEST__INIT;
		ap.name = tr;
		free_msg(itest_call(EDITOR, M("TransitionService", "ApproveTransition"), &ap,
		                    &mlops__maturity__v1__level_transition__descriptor,
		                    GRPC_STATUS_PERMISSION_DENIED)); /* denied: nothing */
		free_msg(itest_call(REVIEWER, M("TransitionService", "ApproveTransition"), &ap,
		                    &mlops__maturity__v1__level_transition__descriptor,
		                    GRPC_STATUS_OK));
	}
	create_assessment("ev-a", false, a4);
	{
		Mlops__Maturity__V1__DeleteAssessmentRequest d =
		    MLOPS__MATURITY__V1__DELETE_ASSESSMENT_REQUEST__INIT;
		d.name = a4;
		free_msg(itest_call(NOBODY, M("AssessmentService", "DeleteAssessment"), &d, NULL,
		                    GRPC_STATUS_PERMISSION_DENIED));
		free_msg(itest_call(EDITOR, M("AssessmentService", "DeleteAssessment"), &d, NULL,
		                    GRPC_STATUS_OK));
	}
	{
		Mlops__Maturity__V1__ReportEvidenceRequest req =
		    MLOPS__MATURITY__V1__REPORT_EVIDENCE_REQUEST__INIT;
		Mlops__Maturity__V1__Evidence e = MLOPS__MATURITY__V1__EVIDENCE__INIT;
		Google__Protobuf__Timestamp o = GOOGLE__PROTOBUF__TIMESTAMP__INIT,
		                            x = GOOGLE__PROTOBUF__TIMESTAMP__INIT;
		o.seconds = (long)time(NULL) - 10;
		x.seconds = (long)time(NULL) + 3600;
		e.practice_id = (char *)level1[0];
		e.status = MLOPS__MATURITY__V1__PRACTICE_STATUS__PRACTICE_STATUS_IMPLEMENTED;
		e.source = (char *)"ci/test";
		e.observe_time = &o;
		e.expire_time = &x;
		req.parent = (char *)"organizations/ev-a";
		req.evidence = &e;
		free_msg(itest_call(EDITOR, M("EvidenceService", "ReportEvidence"), &req,
		                    &mlops__maturity__v1__evidence__descriptor, GRPC_STATUS_OK));
	}

	r = list_as("admin", "organizations/ev-a", 0, 1000, NULL, GRPC_STATUS_OK);
	if (r->n_events != n_want) {
		for (size_t i = 0; i < r->n_events; i++)
			fprintf(stderr, "  %zu: %d %s\n", i, r->events[r->n_events - 1 - i]->type,
			        r->events[r->n_events - 1 - i]->resource);
		fail_msg("%zu events, want %zu", r->n_events, n_want);
	}
	/* Newest first: read backwards for the order of the changes. */
	for (size_t i = 0; i < n_want; i++) {
		const Event *e = r->events[n_want - 1 - i];
		if ((int)e->type != want[i])
			fail_msg("event %zu: type %d, want %d (%s)", i, e->type, want[i],
			         e->resource);
		assert_string_equal(e->organization, "organizations/ev-a");
		assert_true(strncmp(e->name, "events/", 7) == 0);
		assert_non_null(e->time);
		assert_true(e->cursor[0] != '\0');
		assert_string_equal(e->delegator, "");
	}
	/* Snapshots and principals. */
	{
		const Event *c = r->events[n_want - 1], *u = r->events[n_want - 2];
		assert_string_equal(c->principal, ADMIN_P);
		assert_int_equal(c->snapshot_case,
		                 MLOPS__MATURITY__V1__EVENT__SNAPSHOT_ORGANIZATION_SNAPSHOT);
		assert_string_equal(c->organization_snapshot->name, "organizations/ev-a");
		assert_string_equal(c->organization_snapshot->display_name, "events");
		assert_string_equal(u->principal, EDITOR_P);
		assert_string_equal(u->organization_snapshot->display_name, "renamed");
		assert_string_equal(u->resource, "organizations/ev-a");
	}
	{
		const Event *s = r->events[n_want - 1 - 4]; /* the first submission */
		assert_int_equal(s->snapshot_case,
		                 MLOPS__MATURITY__V1__EVENT__SNAPSHOT_ASSESSMENT_SNAPSHOT);
		assert_string_equal(s->assessment_snapshot->name, a1);
		assert_string_equal(s->resource, a1);
		assert_int_equal(s->assessment_snapshot->state,
		                 MLOPS__MATURITY__V1__ASSESSMENT__STATE__STATE_SUBMITTED);
		assert_string_equal(s->principal, EDITOR_P);
	}
	{
		const Event *sup = r->events[n_want - 1 - 14], *ap = r->events[n_want - 1 - 16],
		            *ou = r->events[n_want - 1 - 17];
		assert_int_equal(sup->transition_snapshot->state,
		                 MLOPS__MATURITY__V1__LEVEL_TRANSITION__STATE__STATE_SUPERSEDED);
		assert_int_equal(ap->transition_snapshot->state,
		                 MLOPS__MATURITY__V1__LEVEL_TRANSITION__STATE__STATE_APPLIED);
		assert_string_equal(ap->resource, tr);
		assert_string_equal(ap->principal, "spiffe://maturityd.dev/portal");
		assert_int_equal(ou->organization_snapshot->current_level, 1);
	}
	{
		const Event *del = r->events[1], *ev = r->events[0];
		/* A deletion's snapshot is the resource before it. */
		assert_string_equal(del->assessment_snapshot->name, a4);
		assert_int_equal(ev->snapshot_case,
		                 MLOPS__MATURITY__V1__EVENT__SNAPSHOT_EVIDENCE_SNAPSHOT);
		assert_string_equal(ev->evidence_snapshot->practice_id, level1[0]);
	}
	free_msg(r);
}

/* --- ListEvents ----------------------------------------------------------------------------- */

static void test_list_pages_filters_and_visibility(void **state)
{
	ListResp *all, *p, *f;
	char token[256] = "";
	size_t got = 0;
	(void)state;

	make_org("ev-b", NULL, GRPC_STATUS_OK);
	rename_org("ev-b", NULL, GRPC_STATUS_OK);
	all = list_as("admin", "organizations/ev-a", 0, 1000, NULL, GRPC_STATUS_OK);
	assert_true(all->n_events > 3);
	/* Pages of 2 walk the same list. */
	do {
		p = list_as("admin", "organizations/ev-a", 0, 2, token, GRPC_STATUS_OK);
		for (size_t i = 0; i < p->n_events; i++, got++)
			assert_string_equal(p->events[i]->name, all->events[got]->name);
		snprintf(token, sizeof(token), "%s", p->next_page_token);
		free_msg(p);
	} while (token[0] != '\0');
	assert_int_equal(got, all->n_events);
	/* Types. */
	f = list_as("admin", "organizations/ev-a", T(ASSESSMENT_SUBMITTED), 1000, NULL,
	            GRPC_STATUS_OK);
	assert_int_equal(f->n_events, 3);
	for (size_t i = 0; i < f->n_events; i++)
		assert_int_equal(f->events[i]->type, T(ASSESSMENT_SUBMITTED));
	free_msg(f);
	free_msg(all);
	/* organizations/-: the admin sees both, the viewer of ev-a only ev-a, nobody nothing. */
	f = list_as("admin", "organizations/-", T(ORGANIZATION_CREATED), 1000, NULL,
	            GRPC_STATUS_OK);
	assert_true(f->n_events >= 2);
	free_msg(f);
	f = list_as(VIEWER, "organizations/-", 0, 1000, NULL, GRPC_STATUS_OK);
	assert_true(f->n_events > 0);
	for (size_t i = 0; i < f->n_events; i++)
		assert_string_equal(f->events[i]->organization, "organizations/ev-a");
	free_msg(f);
	f = list_as(NOBODY, "organizations/-", 0, 1000, NULL, GRPC_STATUS_OK);
	assert_int_equal(f->n_events, 0);
	free_msg(f);
	free_msg(list_as(VIEWER, "organizations/ev-b", 0, 10, NULL, GRPC_STATUS_PERMISSION_DENIED));
	free_msg(list_as("admin", "organizations/ev-none", 0, 10, NULL, GRPC_STATUS_NOT_FOUND));
	free_msg(
	    list_as("admin", "organizations/ev-a", 99, 10, NULL, GRPC_STATUS_INVALID_ARGUMENT));
	free_msg(
	    list_as("admin", "organizations/ev-a", 0, 10, "garbage", GRPC_STATUS_INVALID_ARGUMENT));
}

/* --- WatchEvents ---------------------------------------------------------------------------- */

/* The same event, byte for byte once packed: a watch sends each event's bytes as built once
 * (its snapshot spliced in as stored, never unpacked), ListEvents builds its message field by
 * field. */
static void assert_same_event(const Event *a, const Event *b)
{
	size_t na = protobuf_c_message_get_packed_size(&a->base);
	size_t nb = protobuf_c_message_get_packed_size(&b->base);
	uint8_t *pa = malloc(na + 1), *pb = malloc(nb + 1);

	assert_int_equal(na, nb);
	protobuf_c_message_pack(&a->base, pa);
	protobuf_c_message_pack(&b->base, pb);
	assert_memory_equal(pa, pb, na);
	assert_int_equal(a->snapshot_case, b->snapshot_case);
	assert_int_not_equal(a->snapshot_case, MLOPS__MATURITY__V1__EVENT__SNAPSHOT__NOT_SET);
	free(pa);
	free(pb);
}

static void test_watch_replays_then_follows(void **state)
{
	ListResp *all = list_as("admin", "organizations/ev-a", 0, 1000, NULL, GRPC_STATUS_OK);
	struct tstream *s = watch("admin", "organizations/ev-a", 0, NULL, 1);
	struct tstream *r;
	char cursor[256];
	WatchResp *w;
	(void)state;

	/* Replay: every event, oldest first, with the cursors ListEvents shows. */
	for (size_t i = 0; i < all->n_events; i++) {
		w = next_event(s);
		assert_non_null(w);
		assert_string_equal(w->event->name, all->events[all->n_events - 1 - i]->name);
		assert_string_equal(w->cursor, w->event->cursor);
		assert_same_event(w->event, all->events[all->n_events - 1 - i]);
		free_msg(w);
	}
	/* Live. */
	rename_org("ev-a", NULL, GRPC_STATUS_OK);
	w = next_event(s);
	assert_non_null(w);
	assert_int_equal(w->event->type, T(ORGANIZATION_UPDATED));
	{
		ListResp *newest =
		    list_as("admin", "organizations/ev-a", 0, 1, NULL, GRPC_STATUS_OK);
		assert_int_equal(newest->n_events, 1);
		assert_same_event(w->event, newest->events[0]);
		free_msg(newest);
	}
	free_msg(w);
	end_watch(s);
	/* A resume after the third event gives the fourth and what follows. */
	snprintf(cursor, sizeof(cursor), "%s", all->events[all->n_events - 3]->cursor);
	r = watch("admin", "organizations/ev-a", 0, cursor, 0);
	w = next_event(r);
	assert_non_null(w);
	assert_string_equal(w->event->name, all->events[all->n_events - 4]->name);
	free_msg(w);
	end_watch(r);
	free_msg(all);
}

/* A transaction that starts first and commits last: a watcher that was live, and one that
 * resumes from a cursor taken before the commit, each get its event once, before the later
 * one. Without the watermark the later event is delivered first and the late one is skipped for
 * good (its position is behind the cursor). */
static void test_late_commit_is_delivered_in_order(void **state)
{
	struct tpsql *db = tpsql_open(g_dburl);
	char out[256], before[256];
	struct tstream *live, *resumed;
	ListResp *last;
	WatchResp *w;
	(void)state;

	assert_non_null(db);
	last = list_as("admin", "organizations/ev-b", 0, 1, NULL, GRPC_STATUS_OK);
	snprintf(before, sizeof(before), "%s", last->events[0]->cursor);
	free_msg(last);
	live = watch("admin", "organizations/ev-b", 0, NULL, 0);
	/* Let the watch take its starting position before the transaction begins. */
	usleep(300 * 1000);
	assert_int_equal(tpsql_query(db, "BEGIN", out, sizeof(out)), 0);
	assert_int_equal(tpsql_query(db,
	                             "INSERT INTO events (type, org_id, resource, principal) "
	                             "VALUES (2, 'ev-b', 'organizations/ev-b', 'late')",
	                             out, sizeof(out)),
	                 0);
	rename_org("ev-b", NULL, GRPC_STATUS_OK); /* commits while the other is open */
	usleep(1000 * 1000);
	assert_int_equal(tpsql_query(db, "COMMIT", out, sizeof(out)), 0);
	tpsql_close(db);

	w = next_event(live);
	assert_non_null(w);
	assert_string_equal(w->event->principal, "late");
	free_msg(w);
	w = next_event(live);
	assert_non_null(w);
	assert_string_equal(w->event->principal, EDITOR_P);
	free_msg(w);
	end_watch(live);

	resumed = watch("admin", "organizations/ev-b", 0, before, 0);
	w = next_event(resumed);
	assert_non_null(w);
	assert_string_equal(w->event->principal, "late");
	free_msg(w);
	w = next_event(resumed);
	assert_non_null(w);
	assert_string_equal(w->event->principal, EDITOR_P);
	free_msg(w);
	end_watch(resumed);
}

static void test_heartbeat_and_cursor_errors(void **state)
{
	struct tstream *s = watch("admin", "organizations/ev-b", T(EVIDENCE_REPORTED), NULL, 0);
	ProtobufCMessage *m = NULL;
	struct tresult r;
	struct timespec t0, t1;
	WatchResp *w;
	char cursor[256];
	(void)state;

	/* Nothing matches: heartbeats, each with a cursor, about every HEARTBEAT_MS. */
	clock_gettime(CLOCK_MONOTONIC, &t0);
	for (int i = 0; i < 3; i++) {
		assert_true(tclient_stream_next(
		    s, &mlops__maturity__v1__watch_events_response__descriptor, &m));
		w = (WatchResp *)m;
		assert_null(w->event);
		assert_true(w->cursor[0] != '\0');
		snprintf(cursor, sizeof(cursor), "%s", w->cursor);
		free_msg(w);
	}
	clock_gettime(CLOCK_MONOTONIC, &t1);
	assert_true(t1.tv_sec - t0.tv_sec < 5);
	end_watch(s);
	/* A heartbeat's cursor resumes. */
	s = watch("admin", "organizations/ev-b", 0, cursor, 0);
	rename_org("ev-b", NULL, GRPC_STATUS_OK);
	w = next_event(s);
	assert_non_null(w);
	assert_int_equal(w->event->type, T(ORGANIZATION_UPDATED));
	free_msg(w);
	end_watch(s);

	s = watch("admin", "organizations/ev-b", 0, "not-a-cursor", 0);
	assert_false(
	    tclient_stream_next(s, &mlops__maturity__v1__watch_events_response__descriptor, &m));
	assert_int_equal(tclient_stream_finish(s, &r), GRPC_STATUS_INVALID_ARGUMENT);
	tresult_cleanup(&r);
	s = watch(NOBODY, "organizations/ev-b", 0, NULL, 0);
	assert_false(
	    tclient_stream_next(s, &mlops__maturity__v1__watch_events_response__descriptor, &m));
	assert_int_equal(tclient_stream_finish(s, &r), GRPC_STATUS_PERMISSION_DENIED);
	tresult_cleanup(&r);
	s = watch("admin", "organizations/ev-none", 0, NULL, 0);
	assert_false(
	    tclient_stream_next(s, &mlops__maturity__v1__watch_events_response__descriptor, &m));
	assert_int_equal(tclient_stream_finish(s, &r), GRPC_STATUS_NOT_FOUND);
	tresult_cleanup(&r);
}

/* Deletes the role binding `name`: the watch `one` of an organization it let the caller view
 * ends with PERMISSION_DENIED within 5 s (whatever it still delivers before is dropped). The
 * time of the removal. */
static struct timespec revoke_ends_watch(const char *name, struct tstream *one)
{
	Mlops__Maturity__V1__DeleteRoleBindingRequest del =
	    MLOPS__MATURITY__V1__DELETE_ROLE_BINDING_REQUEST__INIT;
	ProtobufCMessage *m = NULL;
	struct timespec t0, t1;
	struct tresult r;

	del.name = (char *)name;
	free_msg(itest_call("admin", M("AccessService", "DeleteRoleBinding"), &del, NULL,
	                    GRPC_STATUS_OK));
	clock_gettime(CLOCK_MONOTONIC, &t0);
	while (
	    tclient_stream_next(one, &mlops__maturity__v1__watch_events_response__descriptor, &m))
		free_msg(m);
	clock_gettime(CLOCK_MONOTONIC, &t1);
	assert_int_equal(tclient_stream_finish(one, &r), GRPC_STATUS_PERMISSION_DENIED);
	tresult_cleanup(&r);
	assert_true(t1.tv_sec - t0.tv_sec <= 5);
	return t0;
}

/* The viewer of ev-a never sees ev-b; when its binding goes, a watch of ev-a ends with
 * PERMISSION_DENIED within 5 s. */
static void test_visibility_and_revocation(void **state)
{
	struct tstream *all = watch(VIEWER, "organizations/-", T(ORGANIZATION_UPDATED), NULL, 0);
	struct tstream *one = watch(VIEWER, "organizations/ev-a", 0, NULL, 0);
	WatchResp *w;
	(void)state;

	usleep(300 * 1000);
	rename_org("ev-b", NULL, GRPC_STATUS_OK);
	rename_org("ev-a", NULL, GRPC_STATUS_OK);
	w = next_event(all);
	assert_non_null(w);
	assert_string_equal(w->event->organization, "organizations/ev-a");
	free_msg(w);
	w = next_event(one);
	assert_non_null(w);
	free_msg(w);

	revoke_ends_watch(viewer_binding, one);
	/* organizations/- goes on, without ev-a now. */
	rename_org("ev-a", NULL, GRPC_STATUS_OK);
	usleep(800 * 1000);
	end_watch(all);
	viewer_binding[0] = '\0';
}

/* One principal's watches share one copy of its bindings, read again at most every 3 s by
 * whichever watch finds it old: when a binding goes, every watch of that principal stops the
 * organization's events within 5 s (the two of organizations/- go on with the other one), and its
 * watch of that organization ends with PERMISSION_DENIED. */
static void test_shared_bindings_stop_a_removed_binding(void **state)
{
	Mlops__Maturity__V1__DeleteRoleBindingRequest del =
	    MLOPS__MATURITY__V1__DELETE_ROLE_BINDING_REQUEST__INIT;
	struct tstream *all[2], *one;
	char bind_a[128], bind_b[128];
	struct timespec t0, t1;
	WatchResp *w;
	(void)state;

	snprintf(bind_a, sizeof(bind_a), "%s",
	         bind_role(NOBODY_P, MLOPS__MATURITY__V1__ROLE__ROLE_VIEWER, "ev-a"));
	snprintf(bind_b, sizeof(bind_b), "%s",
	         bind_role(NOBODY_P, MLOPS__MATURITY__V1__ROLE__ROLE_VIEWER, "ev-b"));
	all[0] = watch(NOBODY, "organizations/-", T(ORGANIZATION_UPDATED), NULL, 0);
	all[1] = watch(NOBODY, "organizations/-", T(ORGANIZATION_UPDATED), NULL, 0);
	one = watch(NOBODY, "organizations/ev-a", 0, NULL, 0);
	usleep(300 * 1000);
	rename_org("ev-a", NULL, GRPC_STATUS_OK);
	for (int i = 0; i < 2; i++) {
		w = next_event(all[i]);
		assert_non_null(w);
		assert_string_equal(w->event->organization, "organizations/ev-a");
		free_msg(w);
	}
	w = next_event(one);
	assert_non_null(w);
	free_msg(w);

	t0 = revoke_ends_watch(bind_a, one);
	/* 5 s after the removal, ev-a's events no longer reach either watch; ev-b's still do. */
	do {
		usleep(100 * 1000);
		clock_gettime(CLOCK_MONOTONIC, &t1);
	} while ((t1.tv_sec - t0.tv_sec) * 1000 + (t1.tv_nsec - t0.tv_nsec) / 1000000 < 5000);
	rename_org("ev-a", NULL, GRPC_STATUS_OK);
	rename_org("ev-b", NULL, GRPC_STATUS_OK);
	for (int i = 0; i < 2; i++) {
		w = next_event(all[i]);
		assert_non_null(w);
		assert_string_equal(w->event->organization, "organizations/ev-b");
		free_msg(w);
		end_watch(all[i]);
	}
	del.name = bind_b;
	free_msg(itest_call("admin", M("AccessService", "DeleteRoleBinding"), &del, NULL,
	                    GRPC_STATUS_OK));
}

/* An event written through one replica reaches a watcher on another; a cursor older than the
 * retention is OUT_OF_RANGE there, and its janitor deletes the old events. */
static void test_two_replicas_and_retention(void **state)
{
	char m_arg[64];
	const char *args[] = {"--event-retention", "1", m_arg, NULL};
	int mport = itest_free_port();
	char *text;
	struct tserver b = {0};
	struct tclient *cb;
	struct tstream *s;
	ProtobufCMessage *m = NULL;
	struct tresult r;
	char old_cursor[256], out[64];
	ListResp *l;
	WatchResp *w;
	(void)state;

	make_org("ev-old", NULL, GRPC_STATUS_OK);
	assert_int_equal(
	    tenv_psql(g_dburl,
	              "INSERT INTO events (type, org_id, resource, principal, pos, time) "
	              "VALUES (2, 'ev-old', 'organizations/ev-old', 'old', "
	              "now() - interval '2 days', now() - interval '2 days')",
	              NULL, 0),
	    0);
	l = list_as("admin", "organizations/ev-old", T(ORGANIZATION_UPDATED), 10, NULL,
	            GRPC_STATUS_OK);
	assert_int_equal(l->n_events, 1);
	snprintf(old_cursor, sizeof(old_cursor), "%s", l->events[0]->cursor);
	free_msg(l);

	snprintf(m_arg, sizeof(m_arg), "--metrics-listen=127.0.0.1:%d", mport);
	assert_int_equal(tserver_start(&b, g_dburl, args), 0);
	cb = tserver_client(&b, "admin");
	assert_non_null(cb);
	s = watch_on(cb, "organizations/ev-b", 0, NULL, 0);
	usleep(300 * 1000);
	rename_org("ev-b", NULL, GRPC_STATUS_OK); /* through A */
	w = next_event(s);
	assert_non_null(w);
	assert_int_equal(w->event->type, T(ORGANIZATION_UPDATED));
	assert_string_equal(w->event->organization, "organizations/ev-b");
	free_msg(w);
	/* B's metrics: one watcher, one event delivered, its notification-to-delivery latency. */
	text = http_get(mport, "/metrics");
	assert_non_null(text);
	assert_non_null(strstr(text, "maturityd_event_watchers 1\n"));
	assert_non_null(strstr(text, "maturityd_events_delivered_total "));
	assert_null(strstr(text, "maturityd_events_delivered_total 0\n"));
	assert_non_null(strstr(text, "maturityd_event_delivery_seconds_bucket{le=\"+Inf\"} 1\n"));
	free(text);
	end_watch(s);

	s = watch_on(cb, "organizations/ev-old", 0, old_cursor, 0);
	assert_false(
	    tclient_stream_next(s, &mlops__maturity__v1__watch_events_response__descriptor, &m));
	assert_int_equal(tclient_stream_finish(s, &r), GRPC_STATUS_OUT_OF_RANGE);
	tresult_cleanup(&r);

	/* B's janitor (retention 1 day) deletes the old event within seconds of its start. */
	for (int i = 0; i < 40; i++) {
		assert_int_equal(tenv_psql(g_dburl,
		                           "SELECT count(*) FROM events WHERE principal = 'old'",
		                           out, sizeof(out)),
		                 0);
		if (atoi(out) == 0)
			break;
		usleep(250 * 1000);
	}
	assert_int_equal(atoi(out), 0);
	tclient_free(cb);
	assert_int_equal(tserver_stop(&b), 0);
}

/* A portal acting for an end user: the event's principal is the user, its delegator the
 * portal. */
static void test_delegated_change_names_both(void **state)
{
	Mlops__Maturity__V1__UpdateOrganizationRequest req =
	    MLOPS__MATURITY__V1__UPDATE_ORGANIZATION_REQUEST__INIT;
	Mlops__Maturity__V1__Organization o = MLOPS__MATURITY__V1__ORGANIZATION__INIT;
	Google__Protobuf__FieldMask mask = GOOGLE__PROTOBUF__FIELD_MASK__INIT;
	char *paths[1] = {(char *)"display_name"};
	ListResp *l;
	(void)state;

	(void)bind_role("user:alice@corp.example", MLOPS__MATURITY__V1__ROLE__ROLE_EDITOR, "ev-b");
	o.name = (char *)"organizations/ev-b";
	o.display_name = (char *)"by alice";
	mask.paths = paths;
	mask.n_paths = 1;
	req.organization = &o;
	req.update_mask = &mask;
	free_msg(itest_call("gateway>user:alice@corp.example",
	                    M("OrganizationService", "UpdateOrganization"), &req,
	                    &mlops__maturity__v1__organization__descriptor, GRPC_STATUS_OK));
	l = list_as("admin", "organizations/ev-b", 0, 1, NULL, GRPC_STATUS_OK);
	assert_int_equal(l->n_events, 1);
	assert_string_equal(l->events[0]->principal, "user:alice@corp.example");
	assert_string_equal(l->events[0]->delegator, "spiffe://maturityd.dev/gateway");
	assert_string_equal(l->events[0]->organization_snapshot->display_name, "by alice");
	free_msg(l);
}

/* kill -9 of the replica a watch is on: the client resumes on the other from its last cursor
 * and misses nothing written meanwhile. */
static void test_resume_on_another_replica_after_kill(void **state)
{
	struct tserver b = {0};
	struct tclient *cb;
	struct tstream *s;
	ProtobufCMessage *m = NULL;
	struct tresult r;
	char cursor[256];
	WatchResp *w;
	(void)state;

	assert_int_equal(tserver_start(&b, g_dburl, NULL), 0);
	cb = tserver_client(&b, "admin");
	s = watch_on(cb, "organizations/ev-b", T(ORGANIZATION_UPDATED), NULL, 0);
	usleep(300 * 1000);
	rename_org("ev-b", NULL, GRPC_STATUS_OK);
	w = next_event(s);
	assert_non_null(w);
	snprintf(cursor, sizeof(cursor), "%s", w->cursor);
	free_msg(w);
	tserver_kill(&b);
	while (tclient_stream_next(s, &mlops__maturity__v1__watch_events_response__descriptor, &m))
		free_msg(m);
	assert_int_equal(tclient_stream_finish(s, &r), GRPC_STATUS_UNAVAILABLE);
	tresult_cleanup(&r);
	tclient_free(cb);
	rename_org("ev-b", NULL, GRPC_STATUS_OK); /* while the client has no watch */
	rename_org("ev-b", NULL, GRPC_STATUS_OK);
	s = watch("admin", "organizations/ev-b", T(ORGANIZATION_UPDATED), cursor, 0);
	for (int i = 0; i < 2; i++) {
		w = next_event(s);
		assert_non_null(w);
		assert_int_equal(w->event->type, T(ORGANIZATION_UPDATED));
		free_msg(w);
	}
	end_watch(s);
}

/* --- two replicas under load ------------------------------------------------------------- */

#define MIX_ORGS 4
#define MIX_WRITERS 4
#define MIX_SECONDS 6
#define MIX_MAX 20000

static atomic_int mix_stop;

struct mix_writer {
	struct tserver *srv;
	int id;
	int written, failed;
};

static void *mix_writer_main(void *arg)
{
	struct mix_writer *wr = arg;
	struct tclient *c = tserver_client(wr->srv, "admin");
	unsigned seed = (unsigned)wr->id * 7919u;

	while (!atomic_load(&mix_stop)) {
		Mlops__Maturity__V1__UpdateOrganizationRequest req =
		    MLOPS__MATURITY__V1__UPDATE_ORGANIZATION_REQUEST__INIT;
		Mlops__Maturity__V1__Organization o = MLOPS__MATURITY__V1__ORGANIZATION__INIT;
		Google__Protobuf__FieldMask mask = GOOGLE__PROTOBUF__FIELD_MASK__INIT;
		char *paths[1] = {(char *)"display_name"};
		char name[64], dn[64];
		struct tresult r;
		snprintf(name, sizeof(name), "organizations/ev-mix-%d",
		         (int)(rand_r(&seed) % MIX_ORGS));
		snprintf(dn, sizeof(dn), "w%d-%d", wr->id, wr->written);
		o.name = name;
		o.display_name = dn;
		mask.paths = paths;
		mask.n_paths = 1;
		req.organization = &o;
		req.update_mask = &mask;
		if (tclient_call(c, M("OrganizationService", "UpdateOrganization"), &req.base, NULL,
		                 NULL, 10000, &r) == GRPC_STATUS_OK)
			wr->written++;
		else
			wr->failed++;
		tresult_cleanup(&r);
	}
	tclient_free(c);
	return NULL;
}

struct mix_watcher {
	struct tserver *srvs[2];
	int id;
	long long seqs[MIX_MAX];
	int n, resumes;
	atomic_int want; /* how many events there are, once the writers are done */
	char error[200];
};

/* Watches organizations/- for ev-mix events, hopping between the replicas: after a random
 * number of events it cancels and resumes from its last cursor on the other replica. */
static void *mix_watcher_main(void *arg)
{
	struct mix_watcher *wt = arg;
	unsigned seed = (unsigned)wt->id * 104729u;
	char cursor[256] = "";
	long start_s = (long)time(NULL) - 5;
	int hop = 0;

	while (wt->error[0] == '\0') {
		struct tclient *c = tserver_client(wt->srvs[hop % 2], "admin");
		struct tstream *s = watch_on(c, "organizations/-", T(ORGANIZATION_UPDATED),
		                             cursor[0] ? cursor : NULL, cursor[0] ? 0 : start_s);
		int take = 50 + (int)(rand_r(&seed) % 400);
		ProtobufCMessage *m = NULL;
		struct tresult r;
		bool done = false;

		while (take > 0 &&
		       tclient_stream_next(
		           s, &mlops__maturity__v1__watch_events_response__descriptor, &m)) {
			WatchResp *w = (WatchResp *)m;
			if (w->event != NULL &&
			    strncmp(w->event->organization, "organizations/ev-mix-", 21) == 0) {
				if (wt->n < MIX_MAX)
					wt->seqs[wt->n++] = atoll(w->event->name + 7);
				take--;
			}
			snprintf(cursor, sizeof(cursor), "%s", w->cursor);
			free_msg(w);
			if (atomic_load(&wt->want) > 0 && wt->n >= atomic_load(&wt->want)) {
				done = true;
				break;
			}
		}
		tclient_stream_cancel(s);
		tclient_stream_finish(s, &r);
		if (r.code != GRPC_STATUS_CANCELLED && r.code != GRPC_STATUS_OK && take > 0 &&
		    !done)
			snprintf(wt->error, sizeof(wt->error), "watch ended %s: %s",
			         itest_code_name(r.code), r.message ? r.message : "");
		tresult_cleanup(&r);
		tclient_free(c);
		if (done)
			break;
		hop++;
		wt->resumes++;
	}
	return NULL;
}

/* Writers on both replicas, watchers hopping between them: each watcher's sequence is the
 * table's order of those events, without a gap or a duplicate. */
static void test_two_replicas_under_load(void **state)
{
	static struct mix_watcher watchers[2];
	struct mix_writer writers[MIX_WRITERS];
	pthread_t wth[MIX_WRITERS], vth[2];
	struct tserver b = {0};
	char *table = NULL;
	long long *order;
	int n_order = 0, total = 0;
	(void)state;

	for (int i = 0; i < MIX_ORGS; i++) {
		char id[32];
		snprintf(id, sizeof(id), "ev-mix-%d", i);
		make_org(id, NULL, GRPC_STATUS_OK);
	}
	assert_int_equal(tserver_start(&b, g_dburl, NULL), 0);
	atomic_store(&mix_stop, 0);
	for (int i = 0; i < 2; i++) {
		memset(&watchers[i], 0, sizeof(watchers[i]));
		watchers[i].srvs[0] = i == 0 ? &g_srv : &b;
		watchers[i].srvs[1] = i == 0 ? &b : &g_srv;
		watchers[i].id = i + 1;
		assert_int_equal(pthread_create(&vth[i], NULL, mix_watcher_main, &watchers[i]), 0);
	}
	for (int i = 0; i < MIX_WRITERS; i++) {
		writers[i] = (struct mix_writer){.srv = i % 2 ? &b : &g_srv, .id = i + 1};
		assert_int_equal(pthread_create(&wth[i], NULL, mix_writer_main, &writers[i]), 0);
	}
	sleep(MIX_SECONDS);
	atomic_store(&mix_stop, 1);
	for (int i = 0; i < MIX_WRITERS; i++) {
		pthread_join(wth[i], NULL);
		total += writers[i].written;
	}
	assert_true(total > 0);
	/* The table's order of those events. */
	table = malloc(16 * MIX_MAX);
	assert_non_null(table);
	assert_int_equal(
	    tenv_psql(g_dburl,
	              "SELECT string_agg(seq::text, ',' ORDER BY pos, seq) FROM events "
	              "WHERE org_id LIKE 'ev-mix-%' AND type = 2",
	              table, 16 * MIX_MAX),
	    0);
	order = calloc(MIX_MAX, sizeof(*order));
	for (char *p = table; *p != '\0' && *p != '\n' && n_order < MIX_MAX;) {
		order[n_order++] = strtoll(p, &p, 10);
		if (*p == ',')
			p++;
	}
	assert_int_equal(n_order, total);
	for (int i = 0; i < 2; i++)
		atomic_store(&watchers[i].want, n_order);
	for (int i = 0; i < 2; i++) {
		pthread_join(vth[i], NULL);
		if (watchers[i].error[0] != '\0')
			fail_msg("watcher %d: %s", i, watchers[i].error);
		assert_int_equal(watchers[i].n, n_order);
		for (int k = 0; k < n_order; k++)
			if (watchers[i].seqs[k] != order[k])
				fail_msg("watcher %d: event %d is %lld, the table says %lld", i, k,
				         watchers[i].seqs[k], order[k]);
		if (n_order > 450) /* more than one hop's worth */
			assert_true(watchers[i].resumes > 0);
	}
	fprintf(stderr, "two replicas: %d events, watchers resumed %d and %d times\n", n_order,
	        watchers[0].resumes, watchers[1].resumes);
	free(order);
	free(table);
	assert_int_equal(tserver_stop(&b), 0);
}

/* A watch that stops reading while many events arrive falls out of the replica's window and
 * ends with RESOURCE_EXHAUSTED; resuming from its last cursor brings every remaining event once,
 * in order. */
static void test_slow_watcher_ends_and_resumes(void **state)
{
	const int n_bulk = 20000;
	struct tstream *s;
	ProtobufCMessage *m = NULL;
	struct tresult r;
	char cursor[256] = "";
	long long last_seq = 0;
	int got = 0;
	grpc_status_code code;
	WatchResp *w;
	(void)state;

	make_org("ev-s", NULL, GRPC_STATUS_OK);
	s = watch("admin", "organizations/ev-s", 0, NULL, 0);
	usleep(300 * 1000);
	rename_org("ev-s", NULL, GRPC_STATUS_OK);
	w = next_event(s); /* live, in the window */
	assert_non_null(w);
	snprintf(cursor, sizeof(cursor), "%s", w->cursor);
	last_seq = atoll(w->event->name + 7);
	free_msg(w);
	/* Large events, all at once, while the client does not read. */
	assert_int_equal(tenv_psql(g_dburl,
	                           "INSERT INTO events (type, org_id, resource, principal) "
	                           "SELECT 2, 'ev-s', 'organizations/ev-s', repeat('p', 2000) "
	                           "FROM generate_series(1, 20000)",
	                           NULL, 0),
	                 0);
	sleep(4);
	while (
	    tclient_stream_next(s, &mlops__maturity__v1__watch_events_response__descriptor, &m)) {
		w = (WatchResp *)m;
		if (w->event != NULL) {
			long long seq = atoll(w->event->name + 7);
			assert_true(seq > last_seq);
			last_seq = seq;
			got++;
		}
		snprintf(cursor, sizeof(cursor), "%s", w->cursor);
		free_msg(w);
	}
	code = tclient_stream_finish(s, &r);
	if (code != GRPC_STATUS_RESOURCE_EXHAUSTED)
		fail_msg("slow watch ended %s after %d events: %s", itest_code_name(code), got,
		         r.message ? r.message : "");
	tresult_cleanup(&r);
	assert_true(got < n_bulk);
	{
		char *text = http_get(g_metrics_port, "/metrics");
		assert_non_null(text);
		assert_non_null(strstr(text, "maturityd_event_watchers_too_slow_total 1\n"));
		free(text);
	}
	/* The resume brings the rest, once each, in order. */
	s = watch("admin", "organizations/ev-s", 0, cursor, 0);
	while (got < n_bulk && (w = next_event(s)) != NULL) {
		long long seq = atoll(w->event->name + 7);
		assert_true(seq > last_seq);
		last_seq = seq;
		got++;
		free_msg(w);
	}
	assert_int_equal(got, n_bulk);
	end_watch(s);
}

/* SIGTERM: a watch open on the replica ends with UNAVAILABLE once the grace has passed (the
 * client resumes elsewhere from its cursor), and the replica exits 0. */
static void test_shutdown_ends_watches_unavailable(void **state)
{
	const char *args[] = {"--shutdown-grace", "1", NULL};
	struct tserver c = {0};
	struct tclient *cl;
	struct tstream *s;
	struct timespec t0, t1;
	ProtobufCMessage *m = NULL;
	struct tresult r;
	grpc_status_code code;
	(void)state;

	assert_int_equal(tserver_start(&c, g_dburl, args), 0);
	cl = tserver_client(&c, "admin");
	assert_non_null(cl);
	s = watch_on(cl, "organizations/ev-b", T(EVIDENCE_REPORTED), NULL, 0);
	/* The watch is open once its first heartbeat arrives. */
	assert_true(
	    tclient_stream_next(s, &mlops__maturity__v1__watch_events_response__descriptor, &m));
	free_msg(m);
	clock_gettime(CLOCK_MONOTONIC, &t0);
	assert_int_equal(tserver_stop(&c), 0);
	clock_gettime(CLOCK_MONOTONIC, &t1);
	assert_true(t1.tv_sec - t0.tv_sec < 8);
	while (tclient_stream_next(s, &mlops__maturity__v1__watch_events_response__descriptor, &m))
		free_msg(m);
	code = tclient_stream_finish(s, &r);
	if (code != GRPC_STATUS_UNAVAILABLE)
		fail_msg("watch ended %s: %s", itest_code_name(code), r.message ? r.message : "");
	tresult_cleanup(&r);
	tclient_free(cl);
}

static int setup(void **state)
{
	int rc = itest_setup(state);
	if (rc != 0 || !tenv_available())
		return rc;
	(void)bind_role(EDITOR_P, MLOPS__MATURITY__V1__ROLE__ROLE_EDITOR, NULL);
	(void)bind_role("spiffe://maturityd.dev/portal", MLOPS__MATURITY__V1__ROLE__ROLE_REVIEWER,
	                NULL);
	return 0;
}

static void test_bind_viewer(void **state)
{
	(void)state;
	make_org("ev-v", NULL, GRPC_STATUS_OK);
	snprintf(viewer_binding, sizeof(viewer_binding), "%s",
	         bind_role(VIEWER_P, MLOPS__MATURITY__V1__ROLE__ROLE_VIEWER, "ev-a"));
}

int main(void)
{
	static char metrics_arg[64];
	static const char *server_args[] = {"--delegator", "spiffe://maturityd.dev/gateway",
	                                    metrics_arg, NULL};
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_every_mutation_writes_its_events),
	    cmocka_unit_test(test_bind_viewer),
	    cmocka_unit_test(test_list_pages_filters_and_visibility),
	    cmocka_unit_test(test_watch_replays_then_follows),
	    cmocka_unit_test(test_late_commit_is_delivered_in_order),
	    cmocka_unit_test(test_heartbeat_and_cursor_errors),
	    cmocka_unit_test(test_visibility_and_revocation),
	    cmocka_unit_test(test_shared_bindings_stop_a_removed_binding),
	    cmocka_unit_test(test_two_replicas_and_retention),
	    cmocka_unit_test(test_delegated_change_names_both),
	    cmocka_unit_test(test_resume_on_another_replica_after_kill),
	    cmocka_unit_test(test_two_replicas_under_load),
	    cmocka_unit_test(test_slow_watcher_ends_and_resumes),
	    cmocka_unit_test(test_shutdown_ends_watches_unavailable),
	};
	if (!tenv_available()) {
		fprintf(stderr,
		        "skipped: MATURITY_TEST_DATABASE_URL / MATURITY_TEST_PKI not set\n");
		return 0;
	}
	g_metrics_port = itest_free_port();
	snprintf(metrics_arg, sizeof(metrics_arg), "--metrics-listen=127.0.0.1:%d", g_metrics_port);
	itest_server_args = server_args;
	/* Heartbeats (and with them the watch timer) much faster than the 15 s default. */
	setenv("MATURITYD_EVENT_HEARTBEAT_MS", HEARTBEAT_MS, 1);
	return cmocka_run_group_tests(tests, setup, itest_teardown);
}
