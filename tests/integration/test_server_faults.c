/* Fault injection through the whole server: for each write RPC, every libpq operation it performs
 * is made to fail in turn, like a dropped connection (storage/store_pq.c, armed through
 * MATURITY_STORE_FAULT_FILE so one server serves every run). Each time the call must end with a
 * clean status (OK when the storage layer could safely retry, else UNAVAILABLE: never a crash, a
 * hang, UNKNOWN or INTERNAL), the next call must succeed (the pool recovers by itself), and the
 * database must hold all of the mutation or none of it — its rows, its audit event and its
 * idempotency key together. Creates are retried with the same request_id afterwards: the retry
 * returns the first result and creates nothing twice.
 *
 * Determinism: the server runs with one pooled connection, and before each run that connection is
 * replaced (a fault on the first operation of a read, which storage retries on a new connection),
 * so each run starts from the same state and the Nth operation is the same one. The health
 * monitor's ping (once a second) shares the counter; when it lands inside a run, that run's fault
 * moves or goes to the ping: harmless (the checks still hold), it only blurs one position. */
#include "itest.h"

// clang-format off
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <cmocka.h>
// clang-format on
#include <limits.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <time.h>
#include <unistd.h>

#include "google/protobuf/field_mask.pb-c.h"
#include "mlops/maturity/v1/access.pb-c.h"
#include "mlops/maturity/v1/assessment.pb-c.h"
#include "mlops/maturity/v1/organization.pb-c.h"
#include "mlops/maturity/v1/transition.pb-c.h"

#define M(svc, m) "/mlops.maturity.v1." svc "/" m
#define EDITOR "dnsclient" /* global editor */
#define REVIEWER "portal"  /* global reviewer */
#define IMPLEMENTED MLOPS__MATURITY__V1__PRACTICE_STATUS__PRACTICE_STATUS_IMPLEMENTED

static const char *const level1[] = {"people.regular_communication",
                                     "model_creation.automated_data_pipeline",
                                     "model_release.versioned_scoring_scripts",
                                     "model_release.basic_model_integration_tests",
                                     "application_integration.app_unit_tests",
                                     "application_integration.automated_builds",
                                     "application_integration.operational_metrics"};

static char fault_file[256];
static char env_fault[300];
static const char *server_env[] = {env_fault, NULL};
static const char *const server_args[] = {"--db-pool=1", "--workers=2", NULL};

/* Totals for the report in docs/security.md. */
static long total_faults, total_unavailable, total_ok, total_retries_checked, total_landed;

/* --- helpers ------------------------------------------------------------------------------ */

static void free_msg(void *m)
{
	if (m)
		protobuf_c_message_free_unpacked(m, NULL);
}

static void uuid4(char out[37])
{
	unsigned char b[16];
	assert_int_equal(getrandom(b, sizeof(b), 0), (ssize_t)sizeof(b));
	b[6] = (unsigned char)((b[6] & 0x0f) | 0x40);
	b[8] = (unsigned char)((b[8] & 0x3f) | 0x80);
	snprintf(out, 37, "%02x%02x%02x%02x-%02x%02x-%02x%02x-%02x%02x-%02x%02x%02x%02x%02x%02x",
	         b[0], b[1], b[2], b[3], b[4], b[5], b[6], b[7], b[8], b[9], b[10], b[11], b[12],
	         b[13], b[14], b[15]);
}

/* Arms the seam: the next libpq operation of the server reads n (see store_pq.c). */
static void arm(long n)
{
	char tmp[300];
	FILE *f;

	snprintf(tmp, sizeof(tmp), "%s.new", fault_file);
	f = fopen(tmp, "w");
	assert_non_null(f);
	fprintf(f, "%ld\n", n);
	assert_int_equal(fclose(f), 0);
	assert_int_equal(rename(tmp, fault_file), 0);
}

static grpc_status_code get_org_status(const char *who, const char *name)
{
	Mlops__Maturity__V1__GetOrganizationRequest g =
	    MLOPS__MATURITY__V1__GET_ORGANIZATION_REQUEST__INIT;
	struct tresult r;
	grpc_status_code st;

	g.name = (char *)name;
	st = tclient_call(itest_client(who), M("OrganizationService", "GetOrganization"), &g.base,
	                  NULL, NULL, 10000, &r);
	tresult_cleanup(&r);
	return st;
}

/* Replaces the server's one connection, so the next run starts from a known state. */
static void reset_connection(void)
{
	Mlops__Maturity__V1__WhoAmIRequest w = MLOPS__MATURITY__V1__WHO_AM_IREQUEST__INIT;
	grpc_status_code st = GRPC_STATUS_UNKNOWN;

	arm(1);
	if (get_org_status("admin", "organizations/fault-anchor") != GRPC_STATUS_OK)
		assert_int_equal(get_org_status("admin", "organizations/fault-anchor"),
		                 GRPC_STATUS_OK);
	/* The armed fault may have been taken by another user of the connection pool (the health
	 * ping, the schema check, the event feed) while it was connecting: then the pool backs off
	 * for a moment. Wait until a call on the pool succeeds again (WhoAmI reads the bindings
	 * there), so the next run starts on a working pool. */
	for (int k = 0; k < 60 && st != GRPC_STATUS_OK; k++) {
		struct tresult r;
		st = tclient_call(itest_client("admin"), M("AccessService", "WhoAmI"), &w.base,
		                  NULL, NULL, 5000, &r);
		tresult_cleanup(&r);
		if (st != GRPC_STATUS_OK)
			usleep(50000);
	}
	assert_int_equal(st, GRPC_STATUS_OK);
}

/* Disarms, and returns the operations counted since the last arming. The call that consumes
 * the disarming is the "next call" that must succeed after a fault. */
static long disarm_and_count(void)
{
	char path[300], buf[32] = "";
	FILE *f;

	snprintf(path, sizeof(path), "%s.count", fault_file);
	unlink(path);
	arm(0);
	assert_int_equal(get_org_status("admin", "organizations/fault-anchor"), GRPC_STATUS_OK);
	f = fopen(path, "r");
	assert_non_null(f);
	assert_non_null(fgets(buf, sizeof(buf), f));
	fclose(f);
	return strtol(buf, NULL, 10);
}

static struct tpsql *db; /* one psql session for every check */

static void sql(const char *q, char *out, size_t n)
{
	if (db == NULL)
		db = tpsql_open(g_dburl);
	assert_non_null(db);
	if (tpsql_query(db, q, out, n) != 0)
		fail_msg("psql failed: %s: %s", q, out);
}

static void sqlf(char *out, size_t n, const char *fmt, ...) __attribute__((format(printf, 3, 4)));
static void sqlf(char *out, size_t n, const char *fmt, ...)
{
	char q[4096];
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(q, sizeof(q), fmt, ap);
	va_end(ap);
	sql(q, out, n);
}

static void bind_role(const char *principal, int role)
{
	Mlops__Maturity__V1__CreateRoleBindingRequest req =
	    MLOPS__MATURITY__V1__CREATE_ROLE_BINDING_REQUEST__INIT;
	Mlops__Maturity__V1__RoleBinding b = MLOPS__MATURITY__V1__ROLE_BINDING__INIT;
	b.principal = (char *)principal;
	b.role = role;
	req.role_binding = &b;
	free_msg(itest_call("admin", M("AccessService", "CreateRoleBinding"), &req,
	                    &mlops__maturity__v1__role_binding__descriptor, GRPC_STATUS_OK));
}

static void make_org(const char *id)
{
	Mlops__Maturity__V1__CreateOrganizationRequest req =
	    MLOPS__MATURITY__V1__CREATE_ORGANIZATION_REQUEST__INIT;
	Mlops__Maturity__V1__Organization o = MLOPS__MATURITY__V1__ORGANIZATION__INIT;
	o.display_name = "fault test";
	o.target_level = 2;
	req.organization = &o;
	req.organization_id = (char *)id;
	free_msg(itest_call("admin", M("OrganizationService", "CreateOrganization"), &req, NULL,
	                    GRPC_STATUS_OK));
}

/* The seven level-1 practices implemented (n of them). */
static void fill_answers(Mlops__Maturity__V1__Answer *a, Mlops__Maturity__V1__Answer **p, int n)
{
	for (int i = 0; i < n; i++) {
		mlops__maturity__v1__answer__init(&a[i]);
		a[i].practice_id = (char *)level1[i];
		a[i].status = IMPLEMENTED;
		a[i].note = "it's a 'quoted'; DROP TABLE answers; --"; /* stored verbatim */
		p[i] = &a[i];
	}
}

static grpc_status_code update_answers(const char *who, const char *name, int n)
{
	Mlops__Maturity__V1__UpdateAnswersRequest u =
	    MLOPS__MATURITY__V1__UPDATE_ANSWERS_REQUEST__INIT;
	Mlops__Maturity__V1__Answer ans[7], *p[7];
	struct tresult r;
	grpc_status_code st;

	fill_answers(ans, p, n);
	u.name = (char *)name;
	u.answers = p;
	u.n_answers = (size_t)n;
	st = tclient_call(itest_client(who), M("AssessmentService", "UpdateAnswers"), &u.base, NULL,
	                  NULL, 10000, &r);
	tresult_cleanup(&r);
	return st;
}

/* CreateAssessment; its answers, when n_answers > 0, by a separate UpdateAnswers (the
 * service ignores CreateAssessmentRequest.assessment.answers: see the report of issue 8). */
static grpc_status_code create_assessment(const char *who, const char *org, int n_answers,
                                          const char *title, const char *request_id, char name[160])
{
	Mlops__Maturity__V1__CreateAssessmentRequest req =
	    MLOPS__MATURITY__V1__CREATE_ASSESSMENT_REQUEST__INIT;
	Mlops__Maturity__V1__Assessment a = MLOPS__MATURITY__V1__ASSESSMENT__INIT;
	Mlops__Maturity__V1__Assessment *resp = NULL;
	struct tresult r;
	char parent[96], created[160] = "";
	grpc_status_code st;

	snprintf(parent, sizeof(parent), "organizations/%s", org);
	a.title = (char *)title;
	a.model = "models/mlops-v1";
	req.parent = parent;
	req.assessment = &a;
	req.request_id = (char *)(request_id ? request_id : "");
	st = tclient_call(itest_client(who), M("AssessmentService", "CreateAssessment"), &req.base,
	                  &mlops__maturity__v1__assessment__descriptor, (ProtobufCMessage **)&resp,
	                  10000, &r);
	tresult_cleanup(&r);
	if (st == GRPC_STATUS_OK)
		snprintf(created, sizeof(created), "%s", resp->name);
	free_msg(resp);
	if (st == GRPC_STATUS_OK && n_answers > 0)
		st = update_answers(who, created, n_answers);
	if (name != NULL)
		snprintf(name, 160, "%s", created);
	return st;
}

static grpc_status_code submit(const char *who, const char *name)
{
	Mlops__Maturity__V1__SubmitAssessmentRequest s =
	    MLOPS__MATURITY__V1__SUBMIT_ASSESSMENT_REQUEST__INIT;
	struct tresult r;
	grpc_status_code st;
	s.name = (char *)name;
	st = tclient_call(itest_client(who), M("AssessmentService", "SubmitAssessment"), &s.base,
	                  NULL, NULL, 10000, &r);
	tresult_cleanup(&r);
	return st;
}

/* The uuid of an assessment or transition name (after the last '/'). */
static const char *last_part(const char *name)
{
	const char *s = strrchr(name, '/');
	return s ? s + 1 : name;
}

/* --- scenarios ----------------------------------------------------------------------------- */

/* Each scenario: prepare (no fault) the state iteration i needs, run the call under test, and
 * check all-or-nothing afterwards (with the status the call returned). */
struct scenario {
	const char *method;
	void (*prepare)(int i);
	grpc_status_code (*run)(int i);
	void (*check)(int i, grpc_status_code st);
};

static char cur_name[160];   /* the resource the current iteration works on */
static char cur_request[37]; /* its request_id */
static char before[256];     /* state before the call, as the check's SQL prints it */
static bool last_full;       /* the check found the whole mutation */

/* CreateOrganization ------------------------------------------------------------------------ */

static void co_prepare(int i)
{
	snprintf(cur_name, sizeof(cur_name), "fco-%d", i);
	uuid4(cur_request);
}

static grpc_status_code co_call(void)
{
	Mlops__Maturity__V1__CreateOrganizationRequest req =
	    MLOPS__MATURITY__V1__CREATE_ORGANIZATION_REQUEST__INIT;
	Mlops__Maturity__V1__Organization o = MLOPS__MATURITY__V1__ORGANIZATION__INIT;
	struct tresult r;
	grpc_status_code st;
	o.display_name = "created under faults";
	req.organization = &o;
	req.organization_id = cur_name;
	req.request_id = cur_request;
	st = tclient_call(itest_client("admin"), M("OrganizationService", "CreateOrganization"),
	                  &req.base, NULL, NULL, 10000, &r);
	tresult_cleanup(&r);
	return st;
}

static grpc_status_code co_run(int i)
{
	(void)i;
	return co_call();
}

static void co_state(char *out, size_t n)
{
	sqlf(out, n,
	     "SELECT (SELECT count(*) FROM organizations WHERE id = '%s') || ',' || "
	     "(SELECT count(*) FROM audit_events WHERE resource = 'organizations/%s' AND code = 0) "
	     "|| ',' || (SELECT count(*) FROM idempotency_keys WHERE resource = "
	     "'organizations/%s' AND request_id = '%s')",
	     cur_name, cur_name, cur_name, cur_request);
}

static void co_check(int i, grpc_status_code st)
{
	char out[64];
	(void)i;
	co_state(out, sizeof(out));
	last_full = strcmp(out, "1,1,1") == 0;
	if (!last_full && !(st != GRPC_STATUS_OK && strcmp(out, "0,0,0") == 0))
		fail_msg("CreateOrganization %s: partial result %s (status %s)", cur_name, out,
		         itest_code_name(st));
	/* A retry with the same request_id returns the first result, or creates it now. */
	assert_int_equal(co_call(), GRPC_STATUS_OK);
	co_state(out, sizeof(out));
	assert_string_equal(out, "1,1,1");
	total_retries_checked++;
}

/* UpdateOrganization ------------------------------------------------------------------------ */

static char uo_etag[128];

static void uo_prepare(int i)
{
	Mlops__Maturity__V1__GetOrganizationRequest g =
	    MLOPS__MATURITY__V1__GET_ORGANIZATION_REQUEST__INIT;
	Mlops__Maturity__V1__Organization *o;
	(void)i;
	g.name = "organizations/fuo";
	o = itest_call("admin", M("OrganizationService", "GetOrganization"), &g,
	               &mlops__maturity__v1__organization__descriptor, GRPC_STATUS_OK);
	snprintf(uo_etag, sizeof(uo_etag), "%s", o->etag);
	free_msg(o);
	sql("SELECT display_name || ',' || version || ',' || (SELECT count(*) FROM audit_events "
	    "WHERE resource = 'organizations/fuo' AND method LIKE '%UpdateOrganization' AND code = "
	    "0) FROM organizations WHERE id = 'fuo'",
	    before, sizeof(before));
}

static grpc_status_code uo_run(int i)
{
	Mlops__Maturity__V1__UpdateOrganizationRequest req =
	    MLOPS__MATURITY__V1__UPDATE_ORGANIZATION_REQUEST__INIT;
	Google__Protobuf__FieldMask mask = GOOGLE__PROTOBUF__FIELD_MASK__INIT;
	Mlops__Maturity__V1__Organization o = MLOPS__MATURITY__V1__ORGANIZATION__INIT;
	char *paths[] = {"display_name"};
	char dn[32];
	struct tresult r;
	grpc_status_code st;

	snprintf(dn, sizeof(dn), "v%d", i);
	o.name = "organizations/fuo";
	o.display_name = dn;
	o.etag = uo_etag;
	mask.paths = paths;
	mask.n_paths = 1;
	req.organization = &o;
	req.update_mask = &mask;
	st = tclient_call(itest_client("admin"), M("OrganizationService", "UpdateOrganization"),
	                  &req.base, NULL, NULL, 10000, &r);
	tresult_cleanup(&r);
	return st;
}

static void uo_check(int i, grpc_status_code st)
{
	char out[256], want[256], dn[64];
	long version, audits;

	sql("SELECT display_name || ',' || version || ',' || (SELECT count(*) FROM audit_events "
	    "WHERE resource = 'organizations/fuo' AND method LIKE '%UpdateOrganization' AND code = "
	    "0) FROM organizations WHERE id = 'fuo'",
	    out, sizeof(out));
	assert_int_equal(sscanf(strchr(before, ',') + 1, "%ld,%ld", &version, &audits), 2);
	snprintf(dn, sizeof(dn), "v%d", i);
	snprintf(want, sizeof(want), "%s,%ld,%ld", dn, version + 1, audits + 1);
	last_full = strcmp(out, want) == 0;
	if (!last_full && !(st != GRPC_STATUS_OK && strcmp(out, before) == 0))
		fail_msg("UpdateOrganization: partial result %s (before %s, status %s)", out,
		         before, itest_code_name(st));
}

/* CreateAssessment ------------------------------------------------------ */

static void ca_prepare(int i)
{
	snprintf(cur_name, sizeof(cur_name), "t-%d", i); /* the title */
	uuid4(cur_request);
}

static grpc_status_code ca_run(int i)
{
	(void)i;
	return create_assessment(EDITOR, "fca", 0, cur_name, cur_request, NULL);
}

static void ca_state(char *out, size_t n)
{
	sqlf(
	    out, n,
	    "WITH a AS (SELECT id FROM assessments WHERE org_id = 'fca' AND title = '%s') "
	    "SELECT (SELECT count(*) FROM a) || ',' || (SELECT count(*) FROM answers WHERE org_id "
	    "= 'fca' AND assessment_id IN (SELECT id FROM a)) || ',' || (SELECT count(*) FROM "
	    "audit_events e, a WHERE e.resource = 'organizations/fca/assessments/' || a.id AND "
	    "e.code = 0) || ',' || (SELECT count(*) FROM idempotency_keys WHERE request_id = '%s')",
	    cur_name, cur_request);
}

static void ca_check(int i, grpc_status_code st)
{
	char out[64];
	(void)i;
	ca_state(out, sizeof(out));
	last_full = strcmp(out, "1,0,1,1") == 0;
	if (!last_full && !(st != GRPC_STATUS_OK && strcmp(out, "0,0,0,0") == 0))
		fail_msg("CreateAssessment %s: partial result %s (status %s)", cur_name, out,
		         itest_code_name(st));
	assert_int_equal(create_assessment(EDITOR, "fca", 0, cur_name, cur_request, NULL),
	                 GRPC_STATUS_OK);
	ca_state(out, sizeof(out));
	assert_string_equal(out, "1,0,1,1");
	total_retries_checked++;
}

/* UpdateAnswers ----------------------------------------------------------------------------- */

static void ua_prepare(int i)
{
	char title[32];
	snprintf(title, sizeof(title), "ua-%d", i);
	assert_int_equal(create_assessment(EDITOR, "fua", 0, title, NULL, cur_name),
	                 GRPC_STATUS_OK);
}

static grpc_status_code ua_run(int i)
{
	(void)i;
	return update_answers(EDITOR, cur_name, 3);
}

static void ua_check(int i, grpc_status_code st)
{
	char out[64];
	(void)i;
	sqlf(
	    out, sizeof(out),
	    "SELECT (SELECT count(*) FROM answers WHERE org_id = 'fua' AND assessment_id = '%s') "
	    "|| ',' || (SELECT version FROM assessments WHERE org_id = 'fua' AND id = '%s') || ',' "
	    "|| (SELECT count(*) FROM audit_events WHERE resource = '%s' AND method LIKE "
	    "'%%UpdateAnswers' AND code = 0)",
	    last_part(cur_name), last_part(cur_name), cur_name);
	last_full = strcmp(out, "3,2,1") == 0;
	if (!last_full && !(st != GRPC_STATUS_OK && strcmp(out, "0,1,0") == 0))
		fail_msg("UpdateAnswers %s: partial result %s (status %s)", cur_name, out,
		         itest_code_name(st));
}

/* SubmitAssessment -------------------------------------------------------------------------- */

static void sa_prepare(int i)
{
	char title[32];
	snprintf(title, sizeof(title), "sa-%d", i);
	assert_int_equal(create_assessment(EDITOR, "fsa", 7, title, NULL, cur_name),
	                 GRPC_STATUS_OK);
	/* The proposal pending before this submission (superseded by it, or not at all). */
	sql("SELECT count(*) FROM transitions WHERE org_id = 'fsa' AND state = 1", before,
	    sizeof(before));
}

static grpc_status_code sa_run(int i)
{
	(void)i;
	return submit(EDITOR, cur_name);
}

static void sa_check(int i, grpc_status_code st)
{
	char out[128], nothing[300];
	const char *id = last_part(cur_name);
	(void)i;
	sqlf(out, sizeof(out),
	     "SELECT a.state || ',' || (SELECT count(*) FROM transitions t WHERE t.org_id = 'fsa' "
	     "AND t.assessment_id = a.id AND t.state = 1) || ',' || (SELECT count(*) FROM "
	     "transitions t WHERE t.org_id = 'fsa' AND t.assessment_id <> a.id AND t.state = 1) "
	     "|| ',' || (SELECT coalesce(last_assessment_id = a.id, false) FROM organizations "
	     "WHERE id = 'fsa') || ',' || (SELECT count(*) FROM audit_events WHERE resource = "
	     "'%s' AND method LIKE '%%SubmitAssessment' AND code = 0) FROM assessments a WHERE "
	     "a.org_id = 'fsa' AND a.id = '%s'",
	     cur_name, id);
	snprintf(nothing, sizeof(nothing), "1,0,%s,false,0", before);
	last_full = strcmp(out, "2,1,0,true,1") == 0;
	if (!last_full && !(st != GRPC_STATUS_OK && strcmp(out, nothing) == 0))
		fail_msg("SubmitAssessment %s: partial result %s (status %s, pending before %s)",
		         cur_name, out, itest_code_name(st), before);
}

/* ApproveTransition ------------------------------------------------------------------------- */

static char ap_org[32];

static void ap_prepare(int i)
{
	char a[160], q[512];
	snprintf(ap_org, sizeof(ap_org), "fap-%d", i);
	make_org(ap_org);
	assert_int_equal(create_assessment(EDITOR, ap_org, 7, "to approve", NULL, a),
	                 GRPC_STATUS_OK);
	assert_int_equal(submit(EDITOR, a), GRPC_STATUS_OK);
	snprintf(q, sizeof(q),
	         "SELECT 'organizations/%s/transitions/' || id FROM transitions WHERE org_id = "
	         "'%s' AND state = 1",
	         ap_org, ap_org);
	sql(q, cur_name, sizeof(cur_name));
	assert_true(strncmp(cur_name, "organizations/", 14) == 0);
}

static grpc_status_code ap_run(int i)
{
	Mlops__Maturity__V1__ApproveTransitionRequest req =
	    MLOPS__MATURITY__V1__APPROVE_TRANSITION_REQUEST__INIT;
	struct tresult r;
	grpc_status_code st;
	(void)i;
	req.name = cur_name;
	st = tclient_call(itest_client(REVIEWER), M("TransitionService", "ApproveTransition"),
	                  &req.base, NULL, NULL, 10000, &r);
	tresult_cleanup(&r);
	return st;
}

static void ap_check(int i, grpc_status_code st)
{
	char out[64];
	(void)i;
	sqlf(
	    out, sizeof(out),
	    "SELECT t.state || ',' || coalesce(t.applied_seq, 0) || ',' || o.current_level || ',' "
	    "|| (SELECT count(*) FROM audit_events WHERE resource = '%s' AND method LIKE "
	    "'%%ApproveTransition' AND code = 0) FROM transitions t JOIN organizations o ON o.id = "
	    "t.org_id WHERE t.org_id = '%s' AND t.id = '%s'",
	    cur_name, ap_org, last_part(cur_name));
	last_full = strcmp(out, "2,1,1,1") == 0;
	if (!last_full && !(st != GRPC_STATUS_OK && strcmp(out, "1,0,0,0") == 0))
		fail_msg("ApproveTransition %s: partial result %s (status %s)", cur_name, out,
		         itest_code_name(st));
}

/* CreateRoleBinding ------------------------------------------------------------------------- */

static void rb_prepare(int i)
{
	snprintf(cur_name, sizeof(cur_name), "spiffe://fault.test/p-%d", i);
	uuid4(cur_request);
}

static grpc_status_code rb_call(void)
{
	Mlops__Maturity__V1__CreateRoleBindingRequest req =
	    MLOPS__MATURITY__V1__CREATE_ROLE_BINDING_REQUEST__INIT;
	Mlops__Maturity__V1__RoleBinding b = MLOPS__MATURITY__V1__ROLE_BINDING__INIT;
	struct tresult r;
	grpc_status_code st;
	b.principal = cur_name;
	b.role = MLOPS__MATURITY__V1__ROLE__ROLE_VIEWER;
	req.role_binding = &b;
	req.request_id = cur_request;
	st = tclient_call(itest_client("admin"), M("AccessService", "CreateRoleBinding"), &req.base,
	                  NULL, NULL, 10000, &r);
	tresult_cleanup(&r);
	return st;
}

static grpc_status_code rb_run(int i)
{
	(void)i;
	return rb_call();
}

static void rb_state(char *out, size_t n)
{
	/* Every binding was made through the API: bindings = successful CreateRoleBinding events.
	 */
	sqlf(out, n,
	     "SELECT (SELECT count(*) FROM role_bindings WHERE principal = '%s') || ',' || "
	     "(SELECT count(*) FROM idempotency_keys WHERE request_id = '%s') || ',' || ((SELECT "
	     "count(*) FROM role_bindings) = (SELECT count(*) FROM audit_events WHERE method LIKE "
	     "'%%CreateRoleBinding' AND code = 0))",
	     cur_name, cur_request);
}

static void rb_check(int i, grpc_status_code st)
{
	char out[64];
	(void)i;
	rb_state(out, sizeof(out));
	last_full = strcmp(out, "1,1,true") == 0;
	if (!last_full && !(st != GRPC_STATUS_OK && strcmp(out, "0,0,true") == 0))
		fail_msg("CreateRoleBinding %s: partial result %s (status %s)", cur_name, out,
		         itest_code_name(st));
	assert_int_equal(rb_call(), GRPC_STATUS_OK);
	rb_state(out, sizeof(out));
	assert_string_equal(out, "1,1,true");
	total_retries_checked++;
}

/* DeleteOrganization (force, with an assessment and its answers) ----------------------------- */

static void do_prepare(int i)
{
	snprintf(cur_name, sizeof(cur_name), "fdo-%d", i);
	make_org(cur_name);
	assert_int_equal(create_assessment(EDITOR, cur_name, 3, "doomed", NULL, NULL),
	                 GRPC_STATUS_OK);
}

static grpc_status_code do_run(int i)
{
	Mlops__Maturity__V1__DeleteOrganizationRequest req =
	    MLOPS__MATURITY__V1__DELETE_ORGANIZATION_REQUEST__INIT;
	char name[200];
	struct tresult r;
	grpc_status_code st;
	(void)i;
	snprintf(name, sizeof(name), "organizations/%s", cur_name);
	req.name = name;
	req.force = true;
	st = tclient_call(itest_client("admin"), M("OrganizationService", "DeleteOrganization"),
	                  &req.base, NULL, NULL, 10000, &r);
	tresult_cleanup(&r);
	return st;
}

static void do_check(int i, grpc_status_code st)
{
	char out[64];
	(void)i;
	sqlf(out, sizeof(out),
	     "SELECT (SELECT count(*) FROM organizations WHERE id = '%s') || ',' || (SELECT "
	     "count(*) FROM assessments WHERE org_id = '%s') || ',' || (SELECT count(*) FROM "
	     "answers WHERE org_id = '%s') || ',' || (SELECT count(*) FROM audit_events WHERE "
	     "resource = 'organizations/%s' AND method LIKE '%%DeleteOrganization' AND code = 0)",
	     cur_name, cur_name, cur_name, cur_name);
	last_full = strcmp(out, "0,0,0,1") == 0;
	if (!last_full && !(st != GRPC_STATUS_OK && strcmp(out, "1,1,3,0") == 0))
		fail_msg("DeleteOrganization %s: partial result %s (status %s)", cur_name, out,
		         itest_code_name(st));
}

static const struct scenario scenarios[] = {
    {"CreateOrganization", co_prepare, co_run, co_check},
    {"UpdateOrganization", uo_prepare, uo_run, uo_check},
    {"CreateAssessment", ca_prepare, ca_run, ca_check},
    {"UpdateAnswers", ua_prepare, ua_run, ua_check},
    {"SubmitAssessment", sa_prepare, sa_run, sa_check},
    {"ApproveTransition", ap_prepare, ap_run, ap_check},
    {"CreateRoleBinding", rb_prepare, rb_run, rb_check},
    {"DeleteOrganization", do_prepare, do_run, do_check},
};

/* Waits until no other session of the database is working. A write that failed on a lost
 * connection after sending its COMMIT finishes in its backend a moment later; the next run's
 * preparation must read what it left, not race it (reads travel on the storage loop's own
 * connection, which is already open). */
static void settle(void)
{
	char out[32];

	for (int k = 0; k < 200; k++) {
		sql("SELECT count(*) FROM pg_stat_activity WHERE datname = current_database() AND "
		    "pid "
		    "<> pg_backend_pid() AND state IS NOT NULL AND state NOT IN ('idle')",
		    out, sizeof(out));
		if (strcmp(out, "0") == 0)
			return;
		usleep(10000);
	}
}

/* Runs one scenario under every fault position. */
static void run_scenario(const struct scenario *sc)
{
	long ops = LONG_MAX, unavailable = 0, ok = 0, landed = 0;
	int iter = 0;
	struct timespec t0, t1;

	clock_gettime(CLOCK_MONOTONIC, &t0);
	/* How many operations a run performs: the fewest of two clean runs (a health ping inside
	 * one would inflate it). */
	for (int k = 0; k < 2; k++, iter++) {
		long n;
		settle();
		sc->prepare(iter);
		reset_connection();
		arm(INT_MAX);
		grpc_status_code st = sc->run(iter);
		n = disarm_and_count();
		if (st != GRPC_STATUS_OK)
			fail_msg("%s without a fault: %s", sc->method, itest_code_name(st));
		sc->check(iter, st);
		if (n < ops)
			ops = n;
	}
	assert_true(ops > 0 && ops < 10000);
	for (long nth = 1; nth <= ops; nth++, iter++) {
		grpc_status_code st;
		settle();
		sc->prepare(iter);
		reset_connection();
		arm(nth);
		st = sc->run(iter);
		if (st != GRPC_STATUS_OK && st != GRPC_STATUS_UNAVAILABLE)
			fail_msg(
			    "%s with operation %ld failing: %s (want OK or UNAVAILABLE; log %s)",
			    sc->method, nth, itest_code_name(st), g_srv.log_path);
		if (st == GRPC_STATUS_OK)
			ok++;
		else
			unavailable++;
		/* The pool recovers: the next call (which disarms) succeeds. */
		(void)disarm_and_count();
		sc->check(iter, st);
		if (st != GRPC_STATUS_OK && last_full)
			landed++; /* the COMMIT got through, its answer did not */
		assert_int_equal(kill(g_srv.pid, 0), 0);
	}
	clock_gettime(CLOCK_MONOTONIC, &t1);
	total_faults += ops;
	total_unavailable += unavailable;
	total_ok += ok;
	total_landed += landed;
	fprintf(stderr,
	        "faults: %-19s %3ld libpq operations, each failed once: %3ld UNAVAILABLE (%ld of "
	        "them after the COMMIT went through), %3ld OK (retried safely) in %.1f s\n",
	        sc->method, ops, unavailable, landed, ok,
	        (double)(t1.tv_sec - t0.tv_sec) + (double)(t1.tv_nsec - t0.tv_nsec) / 1e9);
}

static void test_every_write_under_every_fault(void **state)
{
	char out[512];

	(void)state;
	if (!tenv_available())
		skip();
	for (size_t i = 0; i < sizeof(scenarios) / sizeof(scenarios[0]); i++)
		run_scenario(&scenarios[i]);
	fprintf(stderr,
	        "faults: %ld injected in total: %ld UNAVAILABLE (%ld after the COMMIT went "
	        "through), %ld OK; %ld request_id retries created nothing twice\n",
	        total_faults, total_unavailable, total_landed, total_ok, total_retries_checked);

	/* Database-wide invariants after all of it: the transition chain of every organization,
	 * and no orphan of any mutation. */
	sql("WITH t AS (SELECT org_id, from_level, to_level, applied_seq, "
	    "lag(to_level, 1, 0::smallint) OVER (PARTITION BY org_id ORDER BY applied_seq) AS "
	    "prev, "
	    "last_value(to_level) OVER (PARTITION BY org_id ORDER BY applied_seq ROWS BETWEEN "
	    "UNBOUNDED PRECEDING AND UNBOUNDED FOLLOWING) AS last FROM transitions WHERE state = "
	    "2) "
	    "SELECT (SELECT count(*) FROM t WHERE from_level <> prev) + (SELECT count(*) FROM "
	    "organizations o WHERE current_level <> coalesce((SELECT max(last) FROM t WHERE "
	    "t.org_id = o.id), 0))",
	    out, sizeof(out));
	assert_string_equal(out, "0");
	/* Every organization has its CreateOrganization event; every assessment its
	 * CreateAssessment event; every submitted one its SubmitAssessment event. */
	sql("SELECT (SELECT count(*) FROM organizations o WHERE NOT EXISTS (SELECT 1 FROM "
	    "audit_events e WHERE e.resource = 'organizations/' || o.id AND e.method LIKE "
	    "'%CreateOrganization' AND e.code = 0)) || ',' || (SELECT count(*) FROM assessments a "
	    "WHERE NOT EXISTS (SELECT 1 FROM audit_events e WHERE e.resource = 'organizations/' || "
	    "a.org_id || '/assessments/' || a.id AND e.method LIKE '%CreateAssessment' AND e.code "
	    "= "
	    "0)) || ',' || (SELECT count(*) FROM assessments a WHERE state = 2 AND NOT EXISTS "
	    "(SELECT 1 FROM audit_events e WHERE e.resource = 'organizations/' || a.org_id || "
	    "'/assessments/' || a.id AND e.method LIKE '%SubmitAssessment' AND e.code = 0))",
	    out, sizeof(out));
	assert_string_equal(out, "0,0,0");
	/* SQL metacharacters in notes were stored verbatim. */
	sql("SELECT count(DISTINCT note) FROM answers", out, sizeof(out));
	assert_string_equal(out, "1");
}

/* Reads pipelined on the storage loop under a fault at every libpq operation of a round of
 * concurrent reads: each read ends OK or UNAVAILABLE well within its deadline (a read whose
 * shared connection died is retried once on a fresh one), and reads succeed again at once after
 * the fault. */
struct freader {
	struct tclient *c;
	grpc_status_code st;
	double secs;
};

static void *freader_main(void *arg)
{
	struct freader *r = arg;
	Mlops__Maturity__V1__GetOrganizationRequest g =
	    MLOPS__MATURITY__V1__GET_ORGANIZATION_REQUEST__INIT;
	struct tresult res;
	struct timespec a, b;

	g.name = "organizations/fault-anchor";
	clock_gettime(CLOCK_MONOTONIC, &a);
	r->st = tclient_call(r->c, M("OrganizationService", "GetOrganization"), &g.base, NULL, NULL,
	                     5000, &res);
	clock_gettime(CLOCK_MONOTONIC, &b);
	r->secs = (double)(b.tv_sec - a.tv_sec) + (double)(b.tv_nsec - a.tv_nsec) / 1e9;
	tresult_cleanup(&res);
	return NULL;
}

enum { N_READERS = 8 };

/* One round of N_READERS concurrent reads; returns how many ended OK (the rest UNAVAILABLE). */
static int read_round(struct freader *rd)
{
	pthread_t th[N_READERS];
	int ok = 0;

	for (int i = 0; i < N_READERS; i++)
		assert_int_equal(pthread_create(&th[i], NULL, freader_main, &rd[i]), 0);
	/* Every reader joins before any check: a failed check leaves this frame, which the
	 * readers still running write into. */
	for (int i = 0; i < N_READERS; i++)
		pthread_join(th[i], NULL);
	for (int i = 0; i < N_READERS; i++) {
		if (rd[i].st != GRPC_STATUS_OK && rd[i].st != GRPC_STATUS_UNAVAILABLE)
			fail_msg("a pipelined read ended %s", itest_code_name(rd[i].st));
		assert_true(rd[i].secs < 4.0);
		ok += rd[i].st == GRPC_STATUS_OK;
	}
	return ok;
}

static void test_pipelined_reads_under_every_fault(void **state)
{
	struct freader rd[N_READERS];
	long n_ops;
	int ok = 0, failed = 0;

	(void)state;
	if (!tenv_available())
		skip();
	for (int i = 0; i < N_READERS; i++)
		rd[i].c = tserver_client(&g_srv, "admin");
	reset_connection();
	arm(1000000);
	read_round(rd);
	n_ops = disarm_and_count();
	for (long k = 1; k <= n_ops + 1; k++) {
		int round_ok;
		double t0;
		struct timespec ts;

		arm(k);
		round_ok = read_round(rd);
		ok += round_ok;
		failed += N_READERS - round_ok;
		arm(0);
		clock_gettime(CLOCK_MONOTONIC, &ts);
		t0 = (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
		/* Recovered: a read succeeds within a second (a fault on a reconnect backs off). */
		for (;;) {
			double now;
			if (get_org_status("admin", "organizations/fault-anchor") == GRPC_STATUS_OK)
				break;
			clock_gettime(CLOCK_MONOTONIC, &ts);
			now = (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
			assert_true(now - t0 < 1.5);
			usleep(20000);
		}
	}
	fprintf(stderr,
	        "faults: %d concurrent pipelined reads, %ld libpq operations, each failed once: "
	        "%d OK, %d UNAVAILABLE\n",
	        N_READERS, n_ops, ok, failed);
	assert_true(ok > 0);
	for (int i = 0; i < N_READERS; i++)
		tclient_free(rd[i].c);
}

static int setup(void **state)
{
	(void)state;
	if (!tenv_available())
		return 0;
	grpc_init();
	snprintf(fault_file, sizeof(fault_file), "/tmp/maturity-fault-%d", (int)getpid());
	unlink(fault_file);
	snprintf(env_fault, sizeof(env_fault), "MATURITY_STORE_FAULT_FILE=%s", fault_file);
	if (tenv_db_create(g_dburl, sizeof(g_dburl)) != 0)
		return -1;
	if (tserver_start_env(&g_srv, g_dburl, server_args, server_env) != 0)
		return -1;
	bind_role("dns:control-plane.maturityd.dev", MLOPS__MATURITY__V1__ROLE__ROLE_EDITOR);
	bind_role("spiffe://maturityd.dev/portal", MLOPS__MATURITY__V1__ROLE__ROLE_REVIEWER);
	make_org("fault-anchor");
	make_org("fuo");
	make_org("fca");
	make_org("fua");
	make_org("fsa");
	return 0;
}

static int teardown(void **state)
{
	char path[300];
	int rc;

	tpsql_close(db);
	db = NULL;
	rc = itest_teardown(state);
	unlink(fault_file);
	snprintf(path, sizeof(path), "%s.count", fault_file);
	unlink(path);
	return rc;
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_every_write_under_every_fault),
	    cmocka_unit_test(test_pipelined_reads_under_every_fault),
	};
	return cmocka_run_group_tests(tests, setup, teardown);
}
