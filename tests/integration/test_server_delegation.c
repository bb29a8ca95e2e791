/* Delegated identity over the real server: maturityd started with --delegator naming the gateway
 * certificate (a portal), which acts for end users with x-on-behalf-of. The end user is the
 * principal for authorization (its own bindings only), four-eyes, ownership fields, WhoAmI and
 * audit, the gateway being recorded as the delegator; the header from anyone else, a malformed
 * value and an asserted bootstrap admin are refused. (The permission matrix through the gateway
 * is in test_server_access.c, beside the matrix it repeats.) */
#include "itest.h"

// clang-format off
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <cmocka.h>
// clang-format on
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "mlops/maturity/v1/access.pb-c.h"
#include "mlops/maturity/v1/assessment.pb-c.h"
#include "mlops/maturity/v1/organization.pb-c.h"
#include "mlops/maturity/v1/transition.pb-c.h"

#define M(svc, m) "/mlops.maturity.v1." svc "/" m
#define GATEWAY "spiffe://maturityd.dev/gateway"
#define ADMIN "spiffe://maturityd.dev/admin"
#define ALICE "user:alice@corp.example" /* editor and reviewer of ORG */
#define BOB "user:bob@corp.example"     /* reviewer of ORG */
#define CAROL "user:carol@corp.example" /* no binding at all */
#define AS_ALICE "gateway>" ALICE
#define AS_BOB "gateway>" BOB
#define AS_CAROL "gateway>" CAROL
#define ORG "deleg-org"

static const char *const server_args[] = {"--delegator", GATEWAY, NULL};

static grpc_status_code call(const char *who, const char *method, const void *req,
                             char *message_out, size_t n)
{
	struct tresult r;
	grpc_status_code st = tclient_call(itest_client(who), method, req, NULL, NULL, 10000, &r);
	if (message_out != NULL)
		snprintf(message_out, n, "%s", r.message ? r.message : "");
	tresult_cleanup(&r);
	return st;
}

static void bind(const char *principal, int role, const char *org)
{
	Mlops__Maturity__V1__CreateRoleBindingRequest req =
	    MLOPS__MATURITY__V1__CREATE_ROLE_BINDING_REQUEST__INIT;
	Mlops__Maturity__V1__RoleBinding b = MLOPS__MATURITY__V1__ROLE_BINDING__INIT;
	char n[96];

	b.principal = (char *)principal;
	b.role = role;
	snprintf(n, sizeof(n), "organizations/%s", org ? org : "");
	b.organization = org ? n : "";
	req.role_binding = &b;
	assert_int_equal(call("admin", M("AccessService", "CreateRoleBinding"), &req, NULL, 0),
	                 GRPC_STATUS_OK);
}

/* Once per program: ORG, the users' bindings, and a global admin binding for the gateway
 * itself, which must never lend its rights to the users it asserts. */
static void world(void)
{
	static bool done;
	Mlops__Maturity__V1__CreateOrganizationRequest req =
	    MLOPS__MATURITY__V1__CREATE_ORGANIZATION_REQUEST__INIT;
	Mlops__Maturity__V1__Organization o = MLOPS__MATURITY__V1__ORGANIZATION__INIT;

	if (done)
		return;
	done = true;
	o.display_name = "Delegation";
	req.organization = &o;
	req.organization_id = ORG;
	assert_int_equal(
	    call("admin", M("OrganizationService", "CreateOrganization"), &req, NULL, 0),
	    GRPC_STATUS_OK);
	bind(ALICE, MLOPS__MATURITY__V1__ROLE__ROLE_EDITOR, ORG);
	bind(ALICE, MLOPS__MATURITY__V1__ROLE__ROLE_REVIEWER, ORG);
	bind(BOB, MLOPS__MATURITY__V1__ROLE__ROLE_REVIEWER, ORG);
	bind(GATEWAY, MLOPS__MATURITY__V1__ROLE__ROLE_ADMIN, NULL);
}

static int org_level(void)
{
	Mlops__Maturity__V1__GetOrganizationRequest g =
	    MLOPS__MATURITY__V1__GET_ORGANIZATION_REQUEST__INIT;
	Mlops__Maturity__V1__Organization *o;
	int level;

	g.name = "organizations/" ORG;
	o = itest_call("admin", M("OrganizationService", "GetOrganization"), &g,
	               &mlops__maturity__v1__organization__descriptor, GRPC_STATUS_OK);
	level = o->current_level;
	protobuf_c_message_free_unpacked(&o->base, NULL);
	return level;
}

/* A draft of ORG created by `who`, which, filled in by `who` too, reaches a level other than
 * ORG's current one (0 <-> 1), so that submitting it proposes a transition; its name into out. */
static void draft_as(const char *who, char out[160])
{
	static const char *const l1[] = {"people.regular_communication",
	                                 "model_creation.automated_data_pipeline",
	                                 "model_release.versioned_scoring_scripts",
	                                 "model_release.basic_model_integration_tests",
	                                 "application_integration.app_unit_tests",
	                                 "application_integration.automated_builds",
	                                 "application_integration.operational_metrics"};
	Mlops__Maturity__V1__CreateAssessmentRequest c =
	    MLOPS__MATURITY__V1__CREATE_ASSESSMENT_REQUEST__INIT;
	Mlops__Maturity__V1__UpdateAnswersRequest u =
	    MLOPS__MATURITY__V1__UPDATE_ANSWERS_REQUEST__INIT;
	Mlops__Maturity__V1__Answer ans[7], *p[7];
	Mlops__Maturity__V1__Assessment *a;

	c.parent = "organizations/" ORG;
	a = itest_call(who, M("AssessmentService", "CreateAssessment"), &c,
	               &mlops__maturity__v1__assessment__descriptor, GRPC_STATUS_OK);
	assert_string_equal(a->creator, strchr(who, '>') + 1);
	snprintf(out, 160, "%s", a->name);
	protobuf_c_message_free_unpacked(&a->base, NULL);
	if (org_level() != 0)
		return; /* unanswered: level 0 */
	for (int i = 0; i < 7; i++) {
		mlops__maturity__v1__answer__init(&ans[i]);
		ans[i].practice_id = (char *)l1[i];
		ans[i].status = MLOPS__MATURITY__V1__PRACTICE_STATUS__PRACTICE_STATUS_IMPLEMENTED;
		p[i] = &ans[i];
	}
	u.name = out;
	u.answers = p;
	u.n_answers = 7;
	a = itest_call(who, M("AssessmentService", "UpdateAnswers"), &u,
	               &mlops__maturity__v1__assessment__descriptor, GRPC_STATUS_OK);
	assert_string_equal(a->answers[0]->updated_by, strchr(who, '>') + 1);
	protobuf_c_message_free_unpacked(&a->base, NULL);
}

/* Submits `draft` as `who` and returns the PROPOSED transition's name into out. */
static void submit_as(const char *who, const char *draft, char out[160])
{
	Mlops__Maturity__V1__SubmitAssessmentRequest s =
	    MLOPS__MATURITY__V1__SUBMIT_ASSESSMENT_REQUEST__INIT;
	Mlops__Maturity__V1__ListTransitionsRequest l =
	    MLOPS__MATURITY__V1__LIST_TRANSITIONS_REQUEST__INIT;
	Mlops__Maturity__V1__Assessment *a;
	Mlops__Maturity__V1__ListTransitionsResponse *lr;

	s.name = (char *)draft;
	a = itest_call(who, M("AssessmentService", "SubmitAssessment"), &s,
	               &mlops__maturity__v1__assessment__descriptor, GRPC_STATUS_OK);
	assert_string_equal(a->submitter, strchr(who, '>') + 1);
	protobuf_c_message_free_unpacked(&a->base, NULL);
	l.parent = "organizations/" ORG;
	l.state = MLOPS__MATURITY__V1__LEVEL_TRANSITION__STATE__STATE_PROPOSED;
	lr =
	    itest_call("admin", M("TransitionService", "ListTransitions"), &l,
	               &mlops__maturity__v1__list_transitions_response__descriptor, GRPC_STATUS_OK);
	assert_int_equal(lr->n_transitions, 1);
	assert_string_equal(lr->transitions[0]->proposer, strchr(who, '>') + 1);
	snprintf(out, 160, "%s", lr->transitions[0]->name);
	protobuf_c_message_free_unpacked(&lr->base, NULL);
}

static void test_four_eyes_compares_end_users(void **state)
{
	char draft[160], tr[160], msg[320];
	Mlops__Maturity__V1__ApproveTransitionRequest ap =
	    MLOPS__MATURITY__V1__APPROVE_TRANSITION_REQUEST__INIT;
	Mlops__Maturity__V1__LevelTransition *t;

	(void)state;
	if (!tenv_available())
		skip();
	world();
	draft_as(AS_ALICE, draft);
	submit_as(AS_ALICE, draft, tr);
	ap.name = tr;
	/* Alice is a reviewer of ORG, but submitted it: four-eyes refuses her... */
	assert_int_equal(
	    call(AS_ALICE, M("TransitionService", "ApproveTransition"), &ap, msg, sizeof(msg)),
	    GRPC_STATUS_PERMISSION_DENIED);
	assert_non_null(strstr(msg, ALICE));
	/* ...and Bob, through the same gateway (the same certificate), approves. */
	t = itest_call(AS_BOB, M("TransitionService", "ApproveTransition"), &ap,
	               &mlops__maturity__v1__level_transition__descriptor, GRPC_STATUS_OK);
	assert_int_equal(t->state, MLOPS__MATURITY__V1__LEVEL_TRANSITION__STATE__STATE_APPLIED);
	assert_string_equal(t->proposer, ALICE);
	assert_string_equal(t->decider, BOB);
	protobuf_c_message_free_unpacked(&t->base, NULL);
}

static void test_end_user_bindings_only(void **state)
{
	Mlops__Maturity__V1__GetOrganizationRequest g =
	    MLOPS__MATURITY__V1__GET_ORGANIZATION_REQUEST__INIT;
	Mlops__Maturity__V1__CreateOrganizationRequest c =
	    MLOPS__MATURITY__V1__CREATE_ORGANIZATION_REQUEST__INIT;
	Mlops__Maturity__V1__Organization o = MLOPS__MATURITY__V1__ORGANIZATION__INIT;
	char draft[160];

	(void)state;
	if (!tenv_available())
		skip();
	world();
	g.name = "organizations/" ORG;
	/* The gateway is a global admin; Carol, asserted by it, has nothing. */
	assert_int_equal(call("gateway", M("OrganizationService", "GetOrganization"), &g, NULL, 0),
	                 GRPC_STATUS_OK);
	assert_int_equal(call(AS_CAROL, M("OrganizationService", "GetOrganization"), &g, NULL, 0),
	                 GRPC_STATUS_PERMISSION_DENIED);
	c.organization = &o;
	c.organization_id = "carol-org";
	assert_int_equal(
	    call(AS_CAROL, M("OrganizationService", "CreateOrganization"), &c, NULL, 0),
	    GRPC_STATUS_PERMISSION_DENIED);
	/* Bob reviews ORG but may not edit it, whatever the gateway may do. */
	Mlops__Maturity__V1__CreateAssessmentRequest ca =
	    MLOPS__MATURITY__V1__CREATE_ASSESSMENT_REQUEST__INIT;
	ca.parent = "organizations/" ORG;
	assert_int_equal(call(AS_BOB, M("AssessmentService", "CreateAssessment"), &ca, NULL, 0),
	                 GRPC_STATUS_PERMISSION_DENIED);
	/* Alice edits ORG only. */
	draft_as(AS_ALICE, draft);
	assert_int_equal(
	    call(AS_ALICE, M("OrganizationService", "CreateOrganization"), &c, NULL, 0),
	    GRPC_STATUS_PERMISSION_DENIED);
}

static Mlops__Maturity__V1__WhoAmIResponse *whoami(const char *who)
{
	Mlops__Maturity__V1__WhoAmIRequest req = MLOPS__MATURITY__V1__WHO_AM_IREQUEST__INIT;
	return itest_call(who, M("AccessService", "WhoAmI"), &req,
	                  &mlops__maturity__v1__who_am_iresponse__descriptor, GRPC_STATUS_OK);
}

static void test_whoami_shows_both(void **state)
{
	Mlops__Maturity__V1__WhoAmIResponse *w;

	(void)state;
	if (!tenv_available())
		skip();
	world();
	w = whoami(AS_ALICE);
	assert_string_equal(w->principal, ALICE);
	assert_string_equal(w->delegator, GATEWAY);
	assert_false(w->bootstrap_admin);
	assert_int_equal(w->n_role_bindings, 2); /* hers, not the gateway's global admin */
	for (size_t i = 0; i < w->n_role_bindings; i++) {
		assert_string_equal(w->role_bindings[i]->principal, ALICE);
		assert_string_equal(w->role_bindings[i]->organization, "organizations/" ORG);
	}
	protobuf_c_message_free_unpacked(&w->base, NULL);
	/* Without the header the gateway is an ordinary principal. */
	w = whoami("gateway");
	assert_string_equal(w->principal, GATEWAY);
	assert_string_equal(w->delegator, "");
	assert_int_equal(w->n_role_bindings, 1);
	protobuf_c_message_free_unpacked(&w->base, NULL);
	/* Asserting itself changes nothing but the record. */
	w = whoami("gateway>" GATEWAY);
	assert_string_equal(w->principal, GATEWAY);
	assert_string_equal(w->delegator, GATEWAY);
	protobuf_c_message_free_unpacked(&w->base, NULL);
	/* Any principal syntax, including one no binding names yet. */
	w = whoami("gateway>spiffe://corp.example/ns/team/sa/job");
	assert_string_equal(w->principal, "spiffe://corp.example/ns/team/sa/job");
	assert_int_equal(w->n_role_bindings, 0);
	protobuf_c_message_free_unpacked(&w->base, NULL);
}

/* The audit events carrying request id `rid`: how many, and the first into *out (a copy of
 * its principal, delegator and code). */
struct seen {
	char principal[600], delegator[600], method[200];
	int code;
};

static int audited(const char *rid, struct seen *out)
{
	Mlops__Maturity__V1__ListAuditEventsRequest req =
	    MLOPS__MATURITY__V1__LIST_AUDIT_EVENTS_REQUEST__INIT;
	Mlops__Maturity__V1__ListAuditEventsResponse *r;
	int n = 0;

	req.page_size = 1000;
	r = itest_call("admin", M("AccessService", "ListAuditEvents"), &req,
	               &mlops__maturity__v1__list_audit_events_response__descriptor,
	               GRPC_STATUS_OK);
	for (size_t i = 0; i < r->n_audit_events; i++) {
		Mlops__Maturity__V1__AuditEvent *e = r->audit_events[i];
		if (strcmp(e->request_id, rid) != 0)
			continue;
		if (n++ == 0) {
			snprintf(out->principal, sizeof(out->principal), "%s", e->principal);
			snprintf(out->delegator, sizeof(out->delegator), "%s", e->delegator);
			snprintf(out->method, sizeof(out->method), "%s", e->method);
			out->code = e->code;
		}
	}
	protobuf_c_message_free_unpacked(&r->base, NULL);
	return n;
}

static void test_audit_shows_user_and_delegator(void **state)
{
	Mlops__Maturity__V1__GetOrganizationRequest g =
	    MLOPS__MATURITY__V1__GET_ORGANIZATION_REQUEST__INIT;
	Mlops__Maturity__V1__CreateAssessmentRequest c =
	    MLOPS__MATURITY__V1__CREATE_ASSESSMENT_REQUEST__INIT;
	struct seen e;

	(void)state;
	if (!tenv_available())
		skip();
	world();
	/* A mutation through the gateway. */
	c.parent = "organizations/" ORG;
	tclient_set_request_id(itest_client(AS_ALICE), "deleg-mutation-1");
	assert_int_equal(call(AS_ALICE, M("AssessmentService", "CreateAssessment"), &c, NULL, 0),
	                 GRPC_STATUS_OK);
	tclient_set_request_id(itest_client(AS_ALICE), NULL);
	assert_int_equal(audited("deleg-mutation-1", &e), 1);
	assert_string_equal(e.principal, ALICE);
	assert_string_equal(e.delegator, GATEWAY);
	assert_int_equal(e.code, 0);
	assert_string_equal(e.method, M("AssessmentService", "CreateAssessment"));

	/* A denial through the gateway: the end user, beside the gateway. */
	g.name = "organizations/" ORG;
	tclient_set_request_id(itest_client(AS_CAROL), "deleg-denied-1");
	assert_int_equal(call(AS_CAROL, M("OrganizationService", "GetOrganization"), &g, NULL, 0),
	                 GRPC_STATUS_PERMISSION_DENIED);
	tclient_set_request_id(itest_client(AS_CAROL), NULL);
	assert_int_equal(audited("deleg-denied-1", &e), 1);
	assert_string_equal(e.principal, CAROL);
	assert_string_equal(e.delegator, GATEWAY);
	assert_int_equal(e.code, GRPC_STATUS_PERMISSION_DENIED);

	/* A four-eyes refusal (decided by storage) through the gateway. */
	char draft[160], tr[160];
	Mlops__Maturity__V1__ApproveTransitionRequest ap =
	    MLOPS__MATURITY__V1__APPROVE_TRANSITION_REQUEST__INIT;
	Mlops__Maturity__V1__RejectTransitionRequest rj =
	    MLOPS__MATURITY__V1__REJECT_TRANSITION_REQUEST__INIT;
	draft_as(AS_ALICE, draft);
	submit_as(AS_ALICE, draft, tr);
	ap.name = tr;
	tclient_set_request_id(itest_client(AS_ALICE), "deleg-denied-2");
	assert_int_equal(call(AS_ALICE, M("TransitionService", "ApproveTransition"), &ap, NULL, 0),
	                 GRPC_STATUS_PERMISSION_DENIED);
	tclient_set_request_id(itest_client(AS_ALICE), NULL);
	assert_int_equal(audited("deleg-denied-2", &e), 1);
	assert_string_equal(e.principal, ALICE);
	assert_string_equal(e.delegator, GATEWAY);
	/* Withdrawn, so that the next test of the program finds no proposal. */
	rj.name = tr;
	rj.reason = "withdrawn";
	assert_int_equal(call(AS_ALICE, M("TransitionService", "RejectTransition"), &rj, NULL, 0),
	                 GRPC_STATUS_OK);

	/* A call for itself records no delegator. */
	tclient_set_request_id(itest_client("admin"), "deleg-direct-1");
	assert_int_equal(call("admin", M("AssessmentService", "CreateAssessment"), &c, NULL, 0),
	                 GRPC_STATUS_OK);
	tclient_set_request_id(itest_client("admin"), NULL);
	assert_int_equal(audited("deleg-direct-1", &e), 1);
	assert_string_equal(e.principal, ADMIN);
	assert_string_equal(e.delegator, "");
}

static void test_header_from_non_delegator(void **state)
{
	Mlops__Maturity__V1__WhoAmIRequest req = MLOPS__MATURITY__V1__WHO_AM_IREQUEST__INIT;
	char msg[320];
	struct seen e;

	(void)state;
	if (!tenv_available())
		skip();
	world();
	/* portal is not a delegator; the admin is not one either. Both are refused, whatever the
	 * value (a malformed one included), and audited under their own principal. */
	tclient_set_request_id(itest_client("portal>" ALICE), "deleg-nondelegator-1");
	assert_int_equal(
	    call("portal>" ALICE, M("AccessService", "WhoAmI"), &req, msg, sizeof(msg)),
	    GRPC_STATUS_PERMISSION_DENIED);
	assert_non_null(strstr(msg, "x-on-behalf-of"));
	assert_int_equal(audited("deleg-nondelegator-1", &e), 1);
	assert_string_equal(e.principal, "spiffe://maturityd.dev/portal");
	assert_string_equal(e.delegator, "");
	assert_int_equal(e.code, GRPC_STATUS_PERMISSION_DENIED);
	assert_string_equal(e.method, M("AccessService", "WhoAmI"));

	assert_int_equal(call("admin>" ALICE, M("AccessService", "WhoAmI"), &req, NULL, 0),
	                 GRPC_STATUS_PERMISSION_DENIED);
	assert_int_equal(call("portal>no scheme", M("AccessService", "WhoAmI"), &req, NULL, 0),
	                 GRPC_STATUS_PERMISSION_DENIED);
}

/* One call from the gateway with the given x-on-behalf-of entries: INVALID_ARGUMENT with a
 * field violation on x-on-behalf-of. */
static void expect_bad(const char *const *values, const size_t *lens, size_t n)
{
	Mlops__Maturity__V1__WhoAmIRequest req = MLOPS__MATURITY__V1__WHO_AM_IREQUEST__INIT;
	struct tclient *c = tserver_client(&g_srv, "gateway");
	struct tresult r;

	for (size_t i = 0; i < n; i++)
		tclient_add_metadata(c, "x-on-behalf-of", values[i], lens[i]);
	tclient_call(c, M("AccessService", "WhoAmI"), &req.base, NULL, NULL, 10000, &r);
	itest_check_violation(&r, "WhoAmI", "x-on-behalf-of");
	tclient_free(c);
}

static void test_bad_values(void **state)
{
	char long_value[600];
	const char *v[2];
	size_t len[2];

	(void)state;
	if (!tenv_available())
		skip();
	world();
	v[0] = "";
	len[0] = 0;
	expect_bad(v, len, 1);
	v[0] = "alice@corp.example";
	len[0] = strlen(v[0]);
	expect_bad(v, len, 1);
	v[0] = "user:";
	len[0] = strlen(v[0]);
	expect_bad(v, len, 1);
	memcpy(long_value, "user:", 5);
	memset(long_value + 5, 'a', 508);
	v[0] = long_value;
	len[0] = 513;
	expect_bad(v, len, 1);
	/* Twice, even with the same value. */
	v[0] = v[1] = ALICE;
	len[0] = len[1] = strlen(ALICE);
	expect_bad(v, len, 2);
	v[1] = BOB;
	len[1] = strlen(BOB);
	expect_bad(v, len, 2);
	/* 512 bytes is still a principal. */
	Mlops__Maturity__V1__WhoAmIResponse *w;
	long_value[512] = '\0';
	char who[sizeof("gateway>") + sizeof(long_value)];
	snprintf(who, sizeof(who), "gateway>%s", long_value);
	w = whoami(who);
	assert_int_equal(strlen(w->principal), 512);
	protobuf_c_message_free_unpacked(&w->base, NULL);
}

static void test_bootstrap_admin_cannot_be_asserted(void **state)
{
	Mlops__Maturity__V1__WhoAmIRequest req = MLOPS__MATURITY__V1__WHO_AM_IREQUEST__INIT;
	Mlops__Maturity__V1__CreateOrganizationRequest c =
	    MLOPS__MATURITY__V1__CREATE_ORGANIZATION_REQUEST__INIT;
	Mlops__Maturity__V1__Organization o = MLOPS__MATURITY__V1__ORGANIZATION__INIT;
	char msg[320];
	struct seen e;

	(void)state;
	if (!tenv_available())
		skip();
	world();
	tclient_set_request_id(itest_client("gateway>" ADMIN), "deleg-bootstrap-1");
	assert_int_equal(
	    call("gateway>" ADMIN, M("AccessService", "WhoAmI"), &req, msg, sizeof(msg)),
	    GRPC_STATUS_PERMISSION_DENIED);
	assert_non_null(strstr(msg, "bootstrap admin"));
	assert_int_equal(audited("deleg-bootstrap-1", &e), 1);
	assert_string_equal(e.principal, GATEWAY); /* the caller's own principal */
	assert_string_equal(e.delegator, "");
	c.organization = &o;
	c.organization_id = "never-org";
	assert_int_equal(
	    call("gateway>" ADMIN, M("OrganizationService", "CreateOrganization"), &c, NULL, 0),
	    GRPC_STATUS_PERMISSION_DENIED);
}

/* Whether the server's log holds `needle`, waiting up to 5 s: call lines are written once the
 * thread that handled the call runs out of work. */
static bool log_has(const char *needle)
{
	for (int tries = 0; tries < 50; tries++) {
		FILE *f = fopen(g_srv.log_path, "r");
		char line[8192];
		bool found = false;
		while (f != NULL && !found && fgets(line, sizeof(line), f) != NULL)
			found = strstr(line, needle) != NULL;
		if (f != NULL)
			fclose(f);
		if (found)
			return true;
		usleep(100 * 1000);
	}
	return false;
}

static void test_call_log_names_both(void **state)
{
	Mlops__Maturity__V1__WhoAmIRequest req = MLOPS__MATURITY__V1__WHO_AM_IREQUEST__INIT;

	(void)state;
	if (!tenv_available())
		skip();
	world();
	tclient_set_request_id(itest_client(AS_BOB), "deleg-log-1");
	assert_int_equal(call(AS_BOB, M("AccessService", "WhoAmI"), &req, NULL, 0), GRPC_STATUS_OK);
	tclient_set_request_id(itest_client(AS_BOB), NULL);
	assert_true(log_has("\"principal\":\"" BOB "\",\"delegator\":\"" GATEWAY "\""));
	assert_true(log_has("\"request_id\":\"deleg-log-1\""));
}

/* MATURITYD_DELEGATORS: a comma-separated list, spaces allowed around the commas. */
static void test_delegators_from_environment(void **state)
{
	static const char *const env[] = {
	    "MATURITYD_DELEGATORS=spiffe://corp.example/other , " GATEWAY, NULL};
	Mlops__Maturity__V1__WhoAmIRequest req = MLOPS__MATURITY__V1__WHO_AM_IREQUEST__INIT;
	Mlops__Maturity__V1__WhoAmIResponse *w = NULL;
	struct tserver second;
	struct tclient *c;
	struct tresult r;

	(void)state;
	if (!tenv_available())
		skip();
	assert_int_equal(tserver_start_env(&second, g_dburl, NULL, env), 0);
	c = tserver_client(&second, "gateway");
	tclient_add_metadata(c, "x-on-behalf-of", CAROL, strlen(CAROL));
	assert_int_equal(tclient_call(c, M("AccessService", "WhoAmI"), &req.base,
	                              &mlops__maturity__v1__who_am_iresponse__descriptor,
	                              (ProtobufCMessage **)&w, 10000, &r),
	                 GRPC_STATUS_OK);
	assert_string_equal(w->principal, CAROL);
	assert_string_equal(w->delegator, GATEWAY);
	protobuf_c_message_free_unpacked(&w->base, NULL);
	tresult_cleanup(&r);
	tclient_free(c);
	assert_int_equal(tserver_stop(&second), 0);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_four_eyes_compares_end_users),
	    cmocka_unit_test(test_end_user_bindings_only),
	    cmocka_unit_test(test_whoami_shows_both),
	    cmocka_unit_test(test_audit_shows_user_and_delegator),
	    cmocka_unit_test(test_header_from_non_delegator),
	    cmocka_unit_test(test_bad_values),
	    cmocka_unit_test(test_bootstrap_admin_cannot_be_asserted),
	    cmocka_unit_test(test_call_log_names_both),
	    cmocka_unit_test(test_delegators_from_environment),
	};
	itest_server_args = server_args;
	return cmocka_run_group_tests(tests, itest_setup, itest_teardown);
}
