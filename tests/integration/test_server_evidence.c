/* EvidenceService over mutual TLS against a real PostgreSQL: every RPC and its errors (each bad
 * field named), batches all or nothing, request_id replays, listing order, pages and filters,
 * the live score before and after expiry (times in the past and the future, never sleeps) with
 * basis, drift and confidence, CreateAssessment's prefill_from_evidence, and who may call what
 * (evidence_writer, viewer, editor, unbound). */
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
#include <time.h>

#include "mlops/maturity/v1/access.pb-c.h"
#include "mlops/maturity/v1/assessment.pb-c.h"
#include "mlops/maturity/v1/evidence.pb-c.h"
#include "mlops/maturity/v1/organization.pb-c.h"

#define ES "/mlops.maturity.v1.EvidenceService/"
#define AS "/mlops.maturity.v1.AssessmentService/"
typedef Mlops__Maturity__V1__Evidence Evidence;
typedef Mlops__Maturity__V1__LiveScore LiveScore;
#define E_DESC (&mlops__maturity__v1__evidence__descriptor)
#define BATCH_DESC (&mlops__maturity__v1__batch_report_evidence_response__descriptor)
#define LIST_DESC (&mlops__maturity__v1__list_evidence_response__descriptor)
#define LIVE_DESC (&mlops__maturity__v1__live_score__descriptor)
#define A_DESC (&mlops__maturity__v1__assessment__descriptor)
#define IMPL MLOPS__MATURITY__V1__PRACTICE_STATUS__PRACTICE_STATUS_IMPLEMENTED
#define PARTIAL MLOPS__MATURITY__V1__PRACTICE_STATUS__PRACTICE_STATUS_PARTIAL
#define NOTIMPL MLOPS__MATURITY__V1__PRACTICE_STATUS__PRACTICE_STATUS_NOT_IMPLEMENTED
#define NA MLOPS__MATURITY__V1__PRACTICE_STATUS__PRACTICE_STATUS_NOT_APPLICABLE
#define B_EVIDENCE MLOPS__MATURITY__V1__PRACTICE_STATE__BASIS__BASIS_EVIDENCE
#define B_ASSESSMENT MLOPS__MATURITY__V1__PRACTICE_STATE__BASIS__BASIS_ASSESSMENT
#define B_NONE MLOPS__MATURITY__V1__PRACTICE_STATE__BASIS__BASIS_NONE
#define P1 "model_creation.experiment_tracking"
#define P2 "people.regular_communication"
#define P3 "model_creation.automated_data_pipeline"
#define DAY 86400
#define MAT_BATCH_TEST_MAX 100 /* the batch limit; one more piece is made */

static void free_msg(void *m)
{
	if (m)
		protobuf_c_message_free_unpacked(m, NULL);
}

static void make_org(const char *id)
{
	Mlops__Maturity__V1__CreateOrganizationRequest req =
	    MLOPS__MATURITY__V1__CREATE_ORGANIZATION_REQUEST__INIT;
	Mlops__Maturity__V1__Organization o = MLOPS__MATURITY__V1__ORGANIZATION__INIT;
	req.organization = &o;
	req.organization_id = (char *)id;
	free_msg(itest_call("admin", "/mlops.maturity.v1.OrganizationService/CreateOrganization",
	                    &req, &mlops__maturity__v1__organization__descriptor, GRPC_STATUS_OK));
}

static void bind(const char *principal, int role, const char *org)
{
	Mlops__Maturity__V1__CreateRoleBindingRequest req =
	    MLOPS__MATURITY__V1__CREATE_ROLE_BINDING_REQUEST__INIT;
	Mlops__Maturity__V1__RoleBinding b = MLOPS__MATURITY__V1__ROLE_BINDING__INIT;
	char n[96];
	snprintf(n, sizeof(n), "organizations/%s", org);
	b.principal = (char *)principal;
	b.role = role;
	b.organization = n;
	req.role_binding = &b;
	free_msg(itest_call("admin", "/mlops.maturity.v1.AccessService/CreateRoleBinding", &req,
	                    &mlops__maturity__v1__role_binding__descriptor, GRPC_STATUS_OK));
}

/* A piece of evidence with its own timestamps, observed `obs` seconds from now and expiring
 * `exp` seconds from now. */
struct piece {
	Evidence e;
	Google__Protobuf__Timestamp o, x;
};

static Evidence *piece(struct piece *p, const char *pid, int status, long obs, long exp)
{
	long now = (long)time(NULL);
	mlops__maturity__v1__evidence__init(&p->e);
	google__protobuf__timestamp__init(&p->o);
	google__protobuf__timestamp__init(&p->x);
	p->o.seconds = now + obs;
	p->x.seconds = now + exp;
	p->e.practice_id = (char *)pid;
	p->e.status = status;
	p->e.source = (char *)"ci/test";
	p->e.observe_time = &p->o;
	p->e.expire_time = &p->x;
	p->e.uri = (char *)"https://ci.example/run/1";
	return &p->e;
}

static Evidence *report_as(const char *who, const char *org, Evidence *e, const char *rid,
                           grpc_status_code want)
{
	Mlops__Maturity__V1__ReportEvidenceRequest req =
	    MLOPS__MATURITY__V1__REPORT_EVIDENCE_REQUEST__INIT;
	char parent[96];
	snprintf(parent, sizeof(parent), "organizations/%s", org);
	req.parent = parent;
	req.evidence = e;
	req.request_id = (char *)(rid ? rid : "");
	return itest_call(who, ES "ReportEvidence", &req, E_DESC, want);
}

static void report_violation(const char *org, Evidence *e, const char *field)
{
	Mlops__Maturity__V1__ReportEvidenceRequest req =
	    MLOPS__MATURITY__V1__REPORT_EVIDENCE_REQUEST__INIT;
	char parent[96];
	snprintf(parent, sizeof(parent), "organizations/%s", org);
	req.parent = parent;
	req.evidence = e;
	itest_expect_violation("admin", ES "ReportEvidence", &req, field);
}

static Mlops__Maturity__V1__ListEvidenceResponse *
list(const char *org, const char *pid, int include_expired, int page_size, const char *token)
{
	Mlops__Maturity__V1__ListEvidenceRequest req =
	    MLOPS__MATURITY__V1__LIST_EVIDENCE_REQUEST__INIT;
	char parent[96];
	snprintf(parent, sizeof(parent), "organizations/%s", org);
	req.parent = parent;
	req.practice_id = (char *)(pid ? pid : "");
	req.include_expired = include_expired;
	req.page_size = page_size;
	req.page_token = (char *)(token ? token : "");
	return itest_call("admin", ES "ListEvidence", &req, LIST_DESC, GRPC_STATUS_OK);
}

static LiveScore *live(const char *who, const char *org, grpc_status_code want)
{
	Mlops__Maturity__V1__GetLiveScoreRequest req =
	    MLOPS__MATURITY__V1__GET_LIVE_SCORE_REQUEST__INIT;
	char n[96];
	snprintf(n, sizeof(n), "organizations/%s", org);
	req.organization = n;
	return itest_call(who, ES "GetLiveScore", &req, LIVE_DESC, want);
}

static const Mlops__Maturity__V1__PracticeState *state_of(const LiveScore *l, const char *pid)
{
	for (size_t i = 0; i < l->n_practices; i++)
		if (strcmp(l->practices[i]->practice_id, pid) == 0)
			return l->practices[i];
	fail_msg("no practice %s in the live score", pid);
	return NULL;
}

/* --- tests ------------------------------------------------------------------------------- */

static void test_report_get_and_errors(void **state)
{
	struct piece p;
	Evidence *e, *g;
	Mlops__Maturity__V1__GetEvidenceRequest get =
	    MLOPS__MATURITY__V1__GET_EVIDENCE_REQUEST__INIT;
	Mlops__Maturity__V1__ReportEvidenceRequest none =
	    MLOPS__MATURITY__V1__REPORT_EVIDENCE_REQUEST__INIT;
	char big[4100], prefix[64];

	(void)state;
	if (!tenv_available())
		skip();
	make_org("ev-one");
	e = report_as("admin", "ev-one", piece(&p, P1, IMPL, -60, DAY), NULL, GRPC_STATUS_OK);
	snprintf(prefix, sizeof(prefix), "organizations/ev-one/evidence/");
	assert_int_equal(strncmp(e->name, prefix, strlen(prefix)), 0);
	assert_int_equal(strlen(e->name), strlen(prefix) + 36);
	assert_string_equal(e->practice_id, P1);
	assert_int_equal(e->status, IMPL);
	assert_string_equal(e->source, "ci/test");
	assert_string_equal(e->reporter, "spiffe://maturityd.dev/admin");
	assert_int_equal(e->observe_time->seconds, p.o.seconds);
	assert_int_equal(e->expire_time->seconds, p.x.seconds);
	assert_string_equal(e->uri, "https://ci.example/run/1");
	assert_non_null(e->create_time);

	get.name = e->name;
	g = itest_call("admin", ES "GetEvidence", &get, E_DESC, GRPC_STATUS_OK);
	assert_string_equal(g->name, e->name);
	assert_string_equal(g->reporter, e->reporter);
	free_msg(g);
	get.name = (char *)"organizations/ev-one/evidence/0190a0b0-0000-7000-8000-000000000000";
	itest_call("admin", ES "GetEvidence", &get, E_DESC, GRPC_STATUS_NOT_FOUND);
	get.name = (char *)"organizations/ev-one/assessments/0190a0b0-0000-7000-8000-000000000000";
	itest_expect_violation("admin", ES "GetEvidence", &get, "name");
	get.name = (char *)"evidence/x";
	itest_expect_violation("admin", ES "GetEvidence", &get, "name");
	free_msg(e);

	/* Every field, named. */
	report_violation("ev-one", piece(&p, "people.nope", IMPL, -60, DAY),
	                 "evidence.practice_id");
	report_violation("ev-one", piece(&p, P1, NA, -60, DAY), "evidence.status");
	report_violation("ev-one", piece(&p, P1, 0, -60, DAY), "evidence.status");
	report_violation("ev-one", piece(&p, P1, 17, -60, DAY), "evidence.status");
	piece(&p, P1, IMPL, -60, DAY);
	p.e.source = (char *)"CI";
	report_violation("ev-one", &p.e, "evidence.source");
	p.e.source = (char *)"";
	report_violation("ev-one", &p.e, "evidence.source");
	report_violation("ev-one", piece(&p, P1, IMPL, 6 * 60, DAY), "evidence.observe_time");
	piece(&p, P1, IMPL, -60, DAY);
	p.e.observe_time = NULL;
	report_violation("ev-one", &p.e, "evidence.observe_time");
	piece(&p, P1, IMPL, -60, DAY);
	p.o.nanos = -1;
	report_violation("ev-one", &p.e, "evidence.observe_time");
	report_violation("ev-one", piece(&p, P1, IMPL, -60, -60), "evidence.expire_time");
	report_violation("ev-one", piece(&p, P1, IMPL, -60, -61), "evidence.expire_time");
	report_violation("ev-one", piece(&p, P1, IMPL, -60, 400L * DAY), "evidence.expire_time");
	piece(&p, P1, IMPL, -60, DAY);
	p.e.expire_time = NULL;
	report_violation("ev-one", &p.e, "evidence.expire_time");
	memset(big, 'x', sizeof(big) - 1);
	big[sizeof(big) - 1] = '\0';
	piece(&p, P1, IMPL, -60, DAY);
	p.e.uri = big + sizeof(big) - 1 - 2049;
	report_violation("ev-one", &p.e, "evidence.uri");
	piece(&p, P1, IMPL, -60, DAY);
	p.e.digest = (char *)"sha256:ABCDEF";
	report_violation("ev-one", &p.e, "evidence.digest");
	piece(&p, P1, IMPL, -60, DAY);
	p.e.note = big + sizeof(big) - 1 - 4001;
	report_violation("ev-one", &p.e, "evidence.note");
	none.parent = (char *)"organizations/ev-one";
	itest_expect_violation("admin", ES "ReportEvidence", &none, "evidence");
	none.evidence = piece(&p, P1, IMPL, -60, DAY);
	none.request_id = (char *)"not-a-uuid";
	itest_expect_violation("admin", ES "ReportEvidence", &none, "request_id");
	none.request_id = (char *)"";
	none.parent = (char *)"orgs/ev-one";
	itest_expect_violation("admin", ES "ReportEvidence", &none, "parent");
	/* The edges that are accepted: 5 minutes ahead, 400 days of life, a full digest. */
	piece(&p, P1, IMPL, 4 * 60, 4 * 60 + 400L * DAY);
	p.e.digest = (char *)"sha256:"
	                     "0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef";
	free_msg(report_as("admin", "ev-one", &p.e, NULL, GRPC_STATUS_OK));
	/* An organization that does not exist. */
	report_as("admin", "ev-nowhere", piece(&p, P1, IMPL, -60, DAY), NULL,
	          GRPC_STATUS_NOT_FOUND);
	/* Nothing invalid was stored. */
	{
		Mlops__Maturity__V1__ListEvidenceResponse *l = list("ev-one", NULL, 1, 100, NULL);
		assert_int_equal(l->n_evidence, 2);
		free_msg(l);
	}
}

static void test_batch_and_replay(void **state)
{
	struct piece p[MAT_BATCH_TEST_MAX + 1];
	Evidence *ptr[MAT_BATCH_TEST_MAX + 1];
	Mlops__Maturity__V1__BatchReportEvidenceRequest req =
	    MLOPS__MATURITY__V1__BATCH_REPORT_EVIDENCE_REQUEST__INIT;
	Mlops__Maturity__V1__BatchReportEvidenceResponse *a, *b;
	Mlops__Maturity__V1__ListEvidenceResponse *l;
	Evidence *s1, *s2;
	struct piece one;
	const char *rid = "0190B0B0-1111-7000-8000-00000000000A";

	(void)state;
	if (!tenv_available())
		skip();
	make_org("ev-batch");
	for (int i = 0; i <= MAT_BATCH_TEST_MAX; i++)
		ptr[i] = piece(&p[i], i % 2 ? P1 : P2, PARTIAL, -60 - i, DAY);
	req.parent = (char *)"organizations/ev-batch";
	req.evidence = ptr;
	req.n_evidence = 0;
	itest_expect_violation("admin", ES "BatchReportEvidence", &req, "evidence");
	req.n_evidence = 101;
	itest_expect_violation("admin", ES "BatchReportEvidence", &req, "evidence");
	/* One bad piece: named by index, and nothing of the batch is written. */
	req.n_evidence = 3;
	p[2].e.source = (char *)"Bad Source";
	itest_expect_violation("admin", ES "BatchReportEvidence", &req, "evidence[2].source");
	p[2].e.source = (char *)"ci/test";
	p[1].e.status = NA;
	itest_expect_violation("admin", ES "BatchReportEvidence", &req, "evidence[1].status");
	p[1].e.status = PARTIAL;
	l = list("ev-batch", NULL, 1, 100, NULL);
	assert_int_equal(l->n_evidence, 0);
	free_msg(l);

	/* 100 pieces at once, in request order; replayed by request_id. */
	req.n_evidence = 100;
	req.request_id = (char *)rid;
	a = itest_call("admin", ES "BatchReportEvidence", &req, BATCH_DESC, GRPC_STATUS_OK);
	assert_int_equal(a->n_evidence, 100);
	for (size_t i = 0; i < 100; i++)
		assert_string_equal(a->evidence[i]->practice_id, ptr[i]->practice_id);
	req.request_id = (char *)"0190b0b0-1111-7000-8000-00000000000a";
	b = itest_call("admin", ES "BatchReportEvidence", &req, BATCH_DESC, GRPC_STATUS_OK);
	assert_int_equal(b->n_evidence, 100);
	for (size_t i = 0; i < 100; i++)
		assert_string_equal(a->evidence[i]->name, b->evidence[i]->name);
	free_msg(a);
	free_msg(b);
	l = list("ev-batch", NULL, 1, 1000, NULL);
	assert_int_equal(l->n_evidence, 100);
	free_msg(l);

	/* A single report's replay. */
	s1 = report_as("admin", "ev-batch", piece(&one, P3, IMPL, -5, DAY), rid, GRPC_STATUS_OK);
	s2 = report_as("admin", "ev-batch", piece(&one, P3, IMPL, -5, DAY), rid, GRPC_STATUS_OK);
	assert_string_equal(s1->name, s2->name);
	free_msg(s1);
	free_msg(s2);
	l = list("ev-batch", NULL, 1, 1000, NULL);
	assert_int_equal(l->n_evidence, 101);
	free_msg(l);
}

static void test_list_order_and_pages(void **state)
{
	struct piece p[6];
	Evidence *ptr[6];
	Mlops__Maturity__V1__BatchReportEvidenceRequest req =
	    MLOPS__MATURITY__V1__BATCH_REPORT_EVIDENCE_REQUEST__INIT;
	Mlops__Maturity__V1__ListEvidenceRequest bad =
	    MLOPS__MATURITY__V1__LIST_EVIDENCE_REQUEST__INIT;
	Mlops__Maturity__V1__ListEvidenceResponse *l;
	char token[512] = "";
	long last = 0x7fffffffL;
	size_t total = 0;

	(void)state;
	if (!tenv_available())
		skip();
	make_org("ev-list");
	for (int i = 0; i < 6; i++)
		ptr[i] = piece(&p[i], i < 3 ? P1 : P2, IMPL, -600 + i * 60, DAY);
	/* Observed three days ago, expired yesterday. */
	piece(&p[5], P2, IMPL, -3 * DAY, -DAY);
	req.parent = (char *)"organizations/ev-list";
	req.evidence = ptr;
	req.n_evidence = 6;
	free_msg(itest_call("admin", ES "BatchReportEvidence", &req, BATCH_DESC, GRPC_STATUS_OK));

	do {
		l = list("ev-list", NULL, 0, 2, token);
		for (size_t i = 0; i < l->n_evidence; i++) {
			assert_true(l->evidence[i]->observe_time->seconds <= last);
			last = (long)l->evidence[i]->observe_time->seconds;
			assert_true(l->evidence[i]->expire_time->seconds > (long)time(NULL));
		}
		total += l->n_evidence;
		snprintf(token, sizeof(token), "%s", l->next_page_token);
		free_msg(l);
	} while (token[0] != '\0');
	assert_int_equal(total, 5);
	l = list("ev-list", NULL, 1, 0, NULL);
	assert_int_equal(l->n_evidence, 6);
	assert_int_equal(l->evidence[5]->observe_time->seconds, p[5].o.seconds); /* oldest last */
	free_msg(l);
	l = list("ev-list", P1, 0, 0, NULL);
	assert_int_equal(l->n_evidence, 3);
	free_msg(l);

	bad.parent = (char *)"organizations/ev-list";
	bad.practice_id = (char *)"nope";
	itest_expect_violation("admin", ES "ListEvidence", &bad, "practice_id");
	bad.practice_id = (char *)"";
	bad.page_token = (char *)"garbage";
	itest_expect_violation("admin", ES "ListEvidence", &bad, "page_token");
	bad.page_token = (char *)"";
	bad.page_size = -1;
	itest_expect_violation("admin", ES "ListEvidence", &bad, "page_size");
	bad.page_size = 0;
	bad.parent = (char *)"organizations/-";
	itest_expect_violation("admin", ES "ListEvidence", &bad, "parent");
	bad.parent = (char *)"organizations/ev-none";
	itest_call("admin", ES "ListEvidence", &bad, LIST_DESC, GRPC_STATUS_NOT_FOUND);
}

/* An assessment with `n` answers, submitted; its name into out. */
static void submit_answers(const char *org, const char *const *pids, const int *status, size_t n,
                           char *out)
{
	Mlops__Maturity__V1__CreateAssessmentRequest c =
	    MLOPS__MATURITY__V1__CREATE_ASSESSMENT_REQUEST__INIT;
	Mlops__Maturity__V1__SubmitAssessmentRequest s =
	    MLOPS__MATURITY__V1__SUBMIT_ASSESSMENT_REQUEST__INIT;
	Mlops__Maturity__V1__Assessment body = MLOPS__MATURITY__V1__ASSESSMENT__INIT, *a;
	Mlops__Maturity__V1__Answer ans[8], *p[8];
	char parent[96];

	for (size_t i = 0; i < n; i++) {
		mlops__maturity__v1__answer__init(&ans[i]);
		ans[i].practice_id = (char *)pids[i];
		ans[i].status = status[i];
		ans[i].note = (char *)(status[i] == NA ? "not for us" : "");
		p[i] = &ans[i];
	}
	body.answers = p;
	body.n_answers = n;
	snprintf(parent, sizeof(parent), "organizations/%s", org);
	c.parent = parent;
	c.assessment = &body;
	a = itest_call("admin", AS "CreateAssessment", &c, A_DESC, GRPC_STATUS_OK);
	s.name = a->name;
	free_msg(itest_call("admin", AS "SubmitAssessment", &s, A_DESC, GRPC_STATUS_OK));
	strcpy(out, a->name);
	free_msg(a);
}

static void test_live_score(void **state)
{
	static const char *const pids[] = {P1, P2, P3};
	static const int st[] = {IMPL, NA, IMPL};
	struct piece p;
	LiveScore *l;
	const Mlops__Maturity__V1__PracticeState *s;
	Evidence *cur, *old;
	char asm_name[160];

	(void)state;
	if (!tenv_available())
		skip();
	make_org("ev-live");
	/* Nothing yet: every practice NONE, level 0, no assessment. */
	l = live("admin", "ev-live", GRPC_STATUS_OK);
	assert_string_equal(l->organization, "organizations/ev-live");
	assert_string_equal(l->model, "models/mlops-v1");
	assert_string_equal(l->assessment, "");
	assert_non_null(l->compute_time);
	assert_non_null(l->score);
	assert_int_equal(l->score->overall_level, 0);
	assert_true(l->n_practices > 20);
	for (size_t i = 0; i < l->n_practices; i++) {
		assert_int_equal(l->practices[i]->basis, B_NONE);
		assert_int_equal(l->practices[i]->status, NOTIMPL);
	}
	assert_true(l->confidence == 0.0);
	free_msg(l);

	submit_answers("ev-live", pids, st, 3, asm_name);
	/* Evidence that contradicts the assessment (PARTIAL), current; one already expired
	 * (observed two days ago, expired yesterday) that would have confirmed it. */
	old = report_as("admin", "ev-live", piece(&p, P3, NOTIMPL, -2 * DAY, -DAY), NULL,
	                GRPC_STATUS_OK);
	cur = report_as("admin", "ev-live", piece(&p, P1, PARTIAL, -3600, 3600), NULL,
	                GRPC_STATUS_OK);
	l = live("admin", "ev-live", GRPC_STATUS_OK);
	assert_string_equal(l->assessment, asm_name);
	s = state_of(l, P1);
	assert_int_equal(s->basis, B_EVIDENCE);
	assert_int_equal(s->status, PARTIAL);
	assert_string_equal(s->evidence, cur->name);
	assert_int_equal(s->expire_time->seconds, p.x.seconds);
	assert_int_equal(s->assessed_status, IMPL);
	assert_true(s->drift);
	s = state_of(l, P2); /* NOT_APPLICABLE stays satisfied */
	assert_int_equal(s->basis, B_ASSESSMENT);
	assert_int_equal(s->status, NA);
	assert_string_equal(s->evidence, "");
	assert_null(s->expire_time);
	assert_false(s->drift);
	s = state_of(l, P3); /* its evidence expired: the assessment again */
	assert_int_equal(s->basis, B_ASSESSMENT);
	assert_int_equal(s->status, IMPL);
	assert_false(s->drift);
	assert_int_equal(l->score->satisfied_count, 2);
	assert_true(l->confidence == 0.0); /* no satisfied practice comes from evidence */
	free_msg(l);

	/* Newer evidence, observed in the past with an expiry in the future: it wins. */
	free_msg(
	    report_as("admin", "ev-live", piece(&p, P1, IMPL, -60, DAY), NULL, GRPC_STATUS_OK));
	l = live("admin", "ev-live", GRPC_STATUS_OK);
	s = state_of(l, P1);
	assert_int_equal(s->status, IMPL);
	assert_false(s->drift);
	assert_int_equal(l->score->satisfied_count, 3);
	assert_true(l->confidence > 0.333 && l->confidence < 0.334);
	free_msg(l);
	/* Observed in the near future (within the allowed skew): not current yet. */
	free_msg(
	    report_as("admin", "ev-live", piece(&p, P2, NOTIMPL, 200, DAY), NULL, GRPC_STATUS_OK));
	l = live("admin", "ev-live", GRPC_STATUS_OK);
	assert_int_equal(state_of(l, P2)->basis, B_ASSESSMENT);
	free_msg(l);
	/* The live score never moves the organization's level. */
	{
		Mlops__Maturity__V1__GetOrganizationRequest g =
		    MLOPS__MATURITY__V1__GET_ORGANIZATION_REQUEST__INIT;
		Mlops__Maturity__V1__Organization *o;
		g.name = (char *)"organizations/ev-live";
		o = itest_call("admin", "/mlops.maturity.v1.OrganizationService/GetOrganization",
		               &g, &mlops__maturity__v1__organization__descriptor, GRPC_STATUS_OK);
		assert_int_equal(o->current_level, 0);
		free_msg(o);
	}
	free_msg(old);
	free_msg(cur);
	live("admin", "ev-nowhere", GRPC_STATUS_NOT_FOUND);
	{
		Mlops__Maturity__V1__GetLiveScoreRequest req =
		    MLOPS__MATURITY__V1__GET_LIVE_SCORE_REQUEST__INIT;
		itest_expect_violation("admin", ES "GetLiveScore", &req, "organization");
	}
}

static const Mlops__Maturity__V1__Answer *answer_of(const Mlops__Maturity__V1__Assessment *a,
                                                    const char *pid)
{
	for (size_t i = 0; i < a->n_answers; i++)
		if (strcmp(a->answers[i]->practice_id, pid) == 0)
			return a->answers[i];
	return NULL;
}

static void test_prefill(void **state)
{
	Mlops__Maturity__V1__CreateAssessmentRequest c =
	    MLOPS__MATURITY__V1__CREATE_ASSESSMENT_REQUEST__INIT;
	Mlops__Maturity__V1__Assessment body = MLOPS__MATURITY__V1__ASSESSMENT__INIT, *a;
	Mlops__Maturity__V1__Answer ans, *pa[1] = {&ans};
	const Mlops__Maturity__V1__Answer *x;
	struct piece p;
	Evidence *e1;
	char note[512], when[32];
	time_t t;
	struct tm tm;

	(void)state;
	if (!tenv_available())
		skip();
	make_org("ev-pre");
	piece(&p, P1, IMPL, -3600, DAY);
	p.e.source = (char *)"mlflow/registry";
	p.e.uri = (char *)"https://mlflow.example/m/1";
	e1 = report_as("admin", "ev-pre", &p.e, NULL, GRPC_STATUS_OK);
	free_msg(
	    report_as("admin", "ev-pre", piece(&p, P2, PARTIAL, -60, DAY), NULL, GRPC_STATUS_OK));
	free_msg(report_as("admin", "ev-pre", piece(&p, P3, IMPL, -3 * DAY, -DAY), NULL,
	                   GRPC_STATUS_OK)); /* expired */

	mlops__maturity__v1__answer__init(&ans);
	ans.practice_id = (char *)P2;
	ans.status = NOTIMPL;
	ans.note = (char *)"we know better";
	body.answers = pa;
	body.n_answers = 1;
	c.parent = (char *)"organizations/ev-pre";
	c.assessment = &body;
	c.prefill_from_evidence = 1;
	a = itest_call("admin", AS "CreateAssessment", &c, A_DESC, GRPC_STATUS_OK);
	assert_int_equal(a->n_answers, 2);
	x = answer_of(a, P1); /* evidence wins over nothing */
	assert_non_null(x);
	assert_int_equal(x->status, IMPL);
	assert_string_equal(x->evidence_uri, "https://mlflow.example/m/1");
	t = (time_t)e1->observe_time->seconds;
	gmtime_r(&t, &tm);
	strftime(when, sizeof(when), "%Y-%m-%dT%H:%M:%SZ", &tm);
	snprintf(note, sizeof(note), "evidence %s from mlflow/registry, observed %s", e1->name,
	         when);
	assert_string_equal(x->note, note);
	x = answer_of(a, P2); /* the request's answer wins over evidence */
	assert_int_equal(x->status, NOTIMPL);
	assert_string_equal(x->note, "we know better");
	assert_null(answer_of(a, P3)); /* expired evidence is ignored */
	free_msg(a);
	/* Without the flag nothing is prefilled. */
	c.prefill_from_evidence = 0;
	a = itest_call("admin", AS "CreateAssessment", &c, A_DESC, GRPC_STATUS_OK);
	assert_int_equal(a->n_answers, 1);
	free_msg(a);
	free_msg(e1);
}

static void test_permissions(void **state)
{
	struct piece p;
	LiveScore *l;
	Mlops__Maturity__V1__ListEvidenceRequest lr =
	    MLOPS__MATURITY__V1__LIST_EVIDENCE_REQUEST__INIT;

	(void)state;
	if (!tenv_available())
		skip();
	make_org("ev-perm");
	make_org("ev-perm-other");
	/* portal: evidence_writer on ev-perm; reporter cert: viewer there; dnsclient: editor. */
	bind("spiffe://maturityd.dev/portal", MLOPS__MATURITY__V1__ROLE__ROLE_EVIDENCE_WRITER,
	     "ev-perm");
	bind("spiffe://maturityd.dev/reporter", MLOPS__MATURITY__V1__ROLE__ROLE_VIEWER, "ev-perm");
	bind("dns:control-plane.maturityd.dev", MLOPS__MATURITY__V1__ROLE__ROLE_EDITOR, "ev-perm");

	/* evidence_writer: reports on its organization (as itself), reads it, nothing else. */
	{
		Evidence *e = report_as("portal", "ev-perm", piece(&p, P1, IMPL, -60, DAY), NULL,
		                        GRPC_STATUS_OK);
		assert_string_equal(e->reporter, "spiffe://maturityd.dev/portal");
		free_msg(e);
	}
	report_as("portal", "ev-perm-other", piece(&p, P1, IMPL, -60, DAY), NULL,
	          GRPC_STATUS_PERMISSION_DENIED);
	l = live("portal", "ev-perm", GRPC_STATUS_OK);
	assert_int_equal(state_of(l, P1)->basis, B_EVIDENCE);
	free_msg(l);
	live("portal", "ev-perm-other", GRPC_STATUS_PERMISSION_DENIED);
	/* A refusal comes before validation: an invalid report by the unbound is still denied. */
	report_as("portal", "ev-perm-other", piece(&p, "nope", IMPL, -60, DAY), NULL,
	          GRPC_STATUS_PERMISSION_DENIED);
	/* viewer: reads, may not report. */
	report_as("reporter", "ev-perm", piece(&p, P1, IMPL, -60, DAY), NULL,
	          GRPC_STATUS_PERMISSION_DENIED);
	free_msg(live("reporter", "ev-perm", GRPC_STATUS_OK));
	lr.parent = (char *)"organizations/ev-perm";
	free_msg(itest_call("reporter", ES "ListEvidence", &lr, LIST_DESC, GRPC_STATUS_OK));
	/* editor: may report. */
	free_msg(
	    report_as("dnsclient", "ev-perm", piece(&p, P2, IMPL, -60, DAY), NULL, GRPC_STATUS_OK));
	/* unbound: nothing. */
	report_as("cnclient", "ev-perm", piece(&p, P1, IMPL, -60, DAY), NULL,
	          GRPC_STATUS_PERMISSION_DENIED);
	live("cnclient", "ev-perm", GRPC_STATUS_PERMISSION_DENIED);
	itest_call("cnclient", ES "ListEvidence", &lr, LIST_DESC, GRPC_STATUS_PERMISSION_DENIED);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_report_get_and_errors),
	    cmocka_unit_test(test_batch_and_replay),
	    cmocka_unit_test(test_list_order_and_pages),
	    cmocka_unit_test(test_live_score),
	    cmocka_unit_test(test_prefill),
	    cmocka_unit_test(test_permissions),
	};
	return cmocka_run_group_tests(tests, itest_setup, itest_teardown);
}
