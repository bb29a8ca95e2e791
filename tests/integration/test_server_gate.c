/* GateService over the real server and mutual TLS: allowed and denied decisions with their exact
 * unmet list (reviewed, live and evidence age), invalid requirements named field by field,
 * signed decisions that verify with the key ListAttestationKeys gives and leave one audit row
 * each, attest without a key, a bad key file at start, key rotation by SIGHUP (a failed reload
 * keeps the key; old envelopes still verify), and who may call. */
#include "itest.h"

// clang-format off
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <cmocka.h>
// clang-format on
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "auth_attest.h"
#include "google/protobuf/duration.pb-c.h"
#include "google/protobuf/timestamp.pb-c.h"
#include "mlops/maturity/v1/access.pb-c.h"
#include "mlops/maturity/v1/assessment.pb-c.h"
#include "mlops/maturity/v1/evidence.pb-c.h"
#include "mlops/maturity/v1/gate.pb-c.h"
#include "mlops/maturity/v1/organization.pb-c.h"

#define M(svc, m) "/mlops.maturity.v1." svc "/" m
#define CHECK M("GateService", "CheckGate")
#define LIST_KEYS M("GateService", "ListAttestationKeys")
#define ORG "organizations/gate-a"
typedef Mlops__Maturity__V1__GateDecision Decision;
typedef Mlops__Maturity__V1__CheckGateRequest CheckReq;
typedef Mlops__Maturity__V1__GateRequirement Requirement;
typedef Mlops__Maturity__V1__ListAttestationKeysResponse KeyList;
#define DECISION_DESC (&mlops__maturity__v1__gate_decision__descriptor)
#define KEYS_DESC (&mlops__maturity__v1__list_attestation_keys_response__descriptor)

static char dir[] = "/tmp/test_server_gate.XXXXXX";
static char key_path[256], verify_path[256], key_a_pub[256];
static char assessment_name[160];

static void free_msg(void *m)
{
	if (m)
		protobuf_c_message_free_unpacked(m, NULL);
}

static void sh(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
static void sh(const char *fmt, ...)
{
	char cmd[2048];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(cmd, sizeof(cmd), fmt, ap);
	va_end(ap);
	if (system(cmd) != 0)
		fail_msg("command failed: %s", cmd);
}

static void bind(const char *principal, int role, const char *org)
{
	Mlops__Maturity__V1__CreateRoleBindingRequest req =
	    MLOPS__MATURITY__V1__CREATE_ROLE_BINDING_REQUEST__INIT;
	Mlops__Maturity__V1__RoleBinding b = MLOPS__MATURITY__V1__ROLE_BINDING__INIT;
	b.principal = (char *)principal;
	b.role = role;
	b.organization = (char *)(org != NULL ? org : "");
	req.role_binding = &b;
	free_msg(itest_call("admin", M("AccessService", "CreateRoleBinding"), &req,
	                    &mlops__maturity__v1__role_binding__descriptor, GRPC_STATUS_OK));
}

static void make_org(const char *id)
{
	Mlops__Maturity__V1__CreateOrganizationRequest req =
	    MLOPS__MATURITY__V1__CREATE_ORGANIZATION_REQUEST__INIT;
	Mlops__Maturity__V1__Organization o = MLOPS__MATURITY__V1__ORGANIZATION__INIT;

	o.transition_policy = MLOPS__MATURITY__V1__TRANSITION_POLICY__TRANSITION_POLICY_AUTOMATIC;
	req.organization = &o;
	req.organization_id = (char *)id;
	free_msg(itest_call("admin", M("OrganizationService", "CreateOrganization"), &req,
	                    &mlops__maturity__v1__organization__descriptor, GRPC_STATUS_OK));
}

/* Level 1 of mlops-v1: these practices implemented, nothing else. */
static const char *const level1[] = {"people.regular_communication",
                                     "model_creation.automated_data_pipeline",
                                     "model_release.versioned_scoring_scripts",
                                     "model_release.basic_model_integration_tests",
                                     "application_integration.app_unit_tests",
                                     "application_integration.automated_builds",
                                     "application_integration.operational_metrics"};

/* Submits a level-1 assessment of org (automatic policy: the reviewed level becomes 1). */
static void submit_level1(const char *org, char *name_out)
{
	Mlops__Maturity__V1__CreateAssessmentRequest cr =
	    MLOPS__MATURITY__V1__CREATE_ASSESSMENT_REQUEST__INIT;
	Mlops__Maturity__V1__UpdateAnswersRequest u =
	    MLOPS__MATURITY__V1__UPDATE_ANSWERS_REQUEST__INIT;
	Mlops__Maturity__V1__SubmitAssessmentRequest s =
	    MLOPS__MATURITY__V1__SUBMIT_ASSESSMENT_REQUEST__INIT;
	Mlops__Maturity__V1__Answer ans[7], *p[7];
	Mlops__Maturity__V1__Assessment *a;
	char parent[96];

	snprintf(parent, sizeof(parent), "organizations/%s", org);
	cr.parent = parent;
	a = itest_call("admin", M("AssessmentService", "CreateAssessment"), &cr,
	               &mlops__maturity__v1__assessment__descriptor, GRPC_STATUS_OK);
	strcpy(name_out, a->name);
	free_msg(a);
	for (int i = 0; i < 7; i++) {
		mlops__maturity__v1__answer__init(&ans[i]);
		ans[i].practice_id = (char *)level1[i];
		ans[i].status = MLOPS__MATURITY__V1__PRACTICE_STATUS__PRACTICE_STATUS_IMPLEMENTED;
		p[i] = &ans[i];
	}
	u.name = name_out;
	u.answers = p;
	u.n_answers = 7;
	free_msg(itest_call("admin", M("AssessmentService", "UpdateAnswers"), &u,
	                    &mlops__maturity__v1__assessment__descriptor, GRPC_STATUS_OK));
	s.name = name_out;
	free_msg(itest_call("admin", M("AssessmentService", "SubmitAssessment"), &s,
	                    &mlops__maturity__v1__assessment__descriptor, GRPC_STATUS_OK));
}

static void report_evidence(const char *parent, const char *practice, int64_t age_s)
{
	Mlops__Maturity__V1__ReportEvidenceRequest req =
	    MLOPS__MATURITY__V1__REPORT_EVIDENCE_REQUEST__INIT;
	Mlops__Maturity__V1__Evidence e = MLOPS__MATURITY__V1__EVIDENCE__INIT;
	Google__Protobuf__Timestamp obs = GOOGLE__PROTOBUF__TIMESTAMP__INIT;
	Google__Protobuf__Timestamp exp = GOOGLE__PROTOBUF__TIMESTAMP__INIT;

	obs.seconds = time(NULL) - age_s;
	exp.seconds = time(NULL) + 86400;
	e.practice_id = (char *)practice;
	e.status = MLOPS__MATURITY__V1__PRACTICE_STATUS__PRACTICE_STATUS_IMPLEMENTED;
	e.source = "ci/gate-test";
	e.observe_time = &obs;
	e.expire_time = &exp;
	req.parent = (char *)parent;
	req.evidence = &e;
	free_msg(itest_call("admin", M("EvidenceService", "ReportEvidence"), &req,
	                    &mlops__maturity__v1__evidence__descriptor, GRPC_STATUS_OK));
}

static Decision *check(const char *who, const char *org, Requirement *r, bool attest,
                       grpc_status_code want)
{
	CheckReq req = MLOPS__MATURITY__V1__CHECK_GATE_REQUEST__INIT;

	req.organization = (char *)org;
	req.requirement = r;
	req.attest = attest;
	return itest_call(who, CHECK, &req, DECISION_DESC, want);
}

static KeyList *list_keys(const char *who)
{
	Mlops__Maturity__V1__ListAttestationKeysRequest req =
	    MLOPS__MATURITY__V1__LIST_ATTESTATION_KEYS_REQUEST__INIT;
	return itest_call(who, LIST_KEYS, &req, KEYS_DESC, GRPC_STATUS_OK);
}

static void expect_unmet(const Decision *d, size_t i, const char *field, const char *dim,
                         const char *practice, int required, int actual)
{
	const Mlops__Maturity__V1__UnmetRequirement *u;

	assert_true(i < d->n_unmet);
	u = d->unmet[i];
	assert_string_equal(u->field, field);
	assert_string_equal(u->dimension_id, dim);
	assert_string_equal(u->practice_id, practice);
	assert_int_equal(u->required_level, required);
	assert_int_equal(u->actual_level, actual);
	assert_true(u->message[0] != '\0');
}

/* Whether the envelope verifies with the public keys the server lists now. */
static bool envelope_verifies(const Mlops__Maturity__V1__Envelope *env)
{
	KeyList *kl = list_keys("reporter");
	char path[300], buf[8192] = "";
	struct auth_attest_keys *keys = NULL;
	struct mat_error err;
	bool key_failed, ok;
	FILE *f;

	for (size_t i = 0; i < kl->n_keys; i++)
		strncat(buf, kl->keys[i]->public_key_pem, sizeof(buf) - strlen(buf) - 1);
	free_msg(kl);
	snprintf(path, sizeof(path), "%s/listed.pem", dir);
	f = fopen(path, "w");
	assert_non_null(f);
	fputs(buf, f);
	fclose(f);
	mat_error_clear(&err);
	assert_int_equal(auth_attest_keys_load(NULL, path, &keys, &key_failed, &err), MAT_OK);
	assert_int_equal(env->n_signatures, 1);
	assert_string_equal(env->payload_type, "application/vnd.in-toto+json");
	ok = auth_attest_verify(keys, env->signatures[0]->keyid, env->payload_type,
	                        env->payload.data, env->payload.len, env->signatures[0]->sig.data,
	                        env->signatures[0]->sig.len);
	auth_attest_keys_unref(keys);
	return ok;
}

static int audit_count(void)
{
	char out[64] = "";
	assert_int_equal(tenv_psql(g_dburl,
	                           "SELECT count(*) FROM audit_events WHERE method = "
	                           "'/mlops.maturity.v1.GateService/CheckGate' AND resource = '" ORG
	                           "' AND code = 0 AND principal = 'spiffe://maturityd.dev/admin'",
	                           out, sizeof(out)),
	                 0);
	return atoi(out);
}

static char *keyid_of(const char *pem_file)
{
	static char id[80];
	char cmd[512];
	FILE *p;

	snprintf(cmd, sizeof(cmd),
	         "openssl pkey -in '%s' -pubout -outform DER | sha256sum | cut -c1-64", pem_file);
	p = popen(cmd, "r");
	assert_non_null(p);
	assert_non_null(fgets(id, sizeof(id), p));
	pclose(p);
	id[strcspn(id, "\n")] = '\0';
	return id;
}

/* --- tests --------------------------------------------------------------------------------- */

static void test_reviewed_decisions(void **state)
{
	(void)state;
	Requirement r = MLOPS__MATURITY__V1__GATE_REQUIREMENT__INIT;
	Mlops__Maturity__V1__GateRequirement__MinDimensionLevelsEntry e1 =
	    MLOPS__MATURITY__V1__GATE_REQUIREMENT__MIN_DIMENSION_LEVELS_ENTRY__INIT;
	Mlops__Maturity__V1__GateRequirement__MinDimensionLevelsEntry e2 = e1, *ents[] = {&e1, &e2};
	char *prs[] = {"people.regular_communication", "model_creation.experiment_tracking"};
	Decision *d;

	if (!tenv_available())
		skip();
	r.min_level = 1;
	d = check("admin", ORG, &r, false, GRPC_STATUS_OK);
	assert_true(d->allowed);
	assert_int_equal(d->n_unmet, 0);
	assert_int_equal(d->level, 1);
	assert_string_equal(d->organization, ORG);
	assert_string_equal(d->assessment, assessment_name);
	assert_non_null(d->score);
	assert_int_equal(d->score->overall_level, 1);
	assert_non_null(d->decide_time);
	assert_null(d->attestation);
	free_msg(d);

	/* Every kind unmet, in requirement order. */
	r.min_level = 2;
	e1.key = "model_creation";
	e1.value = 2;
	e2.key = "people";
	e2.value = 1;
	r.min_dimension_levels = ents;
	r.n_min_dimension_levels = 2;
	r.required_practice_ids = prs;
	r.n_required_practice_ids = 2;
	d = check("admin", ORG, &r, false, GRPC_STATUS_OK);
	assert_false(d->allowed);
	assert_int_equal(d->n_unmet, 3);
	expect_unmet(d, 0, "requirement.min_level", "", "", 2, 1);
	expect_unmet(d, 1, "requirement.min_dimension_levels[model_creation]", "model_creation", "",
	             2, 1);
	expect_unmet(d, 2, "requirement.required_practice_ids[1]", "",
	             "model_creation.experiment_tracking", 0, 0);
	free_msg(d);

	/* An organization without a submitted assessment: the score of no answers, no name. */
	r = (Requirement)MLOPS__MATURITY__V1__GATE_REQUIREMENT__INIT;
	r.min_level = 1;
	d = check("admin", "organizations/gate-empty", &r, false, GRPC_STATUS_OK);
	assert_false(d->allowed);
	assert_string_equal(d->assessment, "");
	assert_int_equal(d->level, 0);
	expect_unmet(d, 0, "requirement.min_level", "", "", 1, 0);
	free_msg(d);
	free_msg(check("admin", "organizations/gate-none", &r, false, GRPC_STATUS_NOT_FOUND));
}

static void test_live_and_evidence_age(void **state)
{
	(void)state;
	Requirement r = MLOPS__MATURITY__V1__GATE_REQUIREMENT__INIT;
	Google__Protobuf__Duration age = GOOGLE__PROTOBUF__DURATION__INIT;
	char *prs[] = {"people.regular_communication", "model_creation.experiment_tracking",
	               "model_creation.managed_compute"};
	Decision *d;

	if (!tenv_available())
		skip();
	/* Fresh evidence for experiment_tracking, two-hour-old evidence for managed_compute, none
	 * for regular_communication (which the assessment satisfies). */
	report_evidence(ORG, "model_creation.experiment_tracking", 10);
	report_evidence(ORG, "model_creation.managed_compute", 7200);
	r.required_practice_ids = prs;
	r.n_required_practice_ids = 3;
	age.seconds = 3600;
	r.max_evidence_age = &age;

	/* Reviewed: the assessment does not satisfy the two model_creation practices. */
	d = check("admin", ORG, &r, false, GRPC_STATUS_OK);
	assert_int_equal(d->n_unmet, 4);
	expect_unmet(d, 0, "requirement.required_practice_ids[1]", "",
	             "model_creation.experiment_tracking", 0, 0);
	expect_unmet(d, 1, "requirement.required_practice_ids[2]", "",
	             "model_creation.managed_compute", 0, 0);
	expect_unmet(d, 2, "requirement.max_evidence_age", "", "people.regular_communication", 0,
	             0);
	expect_unmet(d, 3, "requirement.max_evidence_age", "", "model_creation.managed_compute", 0,
	             0);
	free_msg(d);

	/* Live: the evidence satisfies them; the age rule is the same. */
	r.live = true;
	d = check("admin", ORG, &r, false, GRPC_STATUS_OK);
	assert_int_equal(d->n_unmet, 2);
	expect_unmet(d, 0, "requirement.max_evidence_age", "", "people.regular_communication", 0,
	             0);
	expect_unmet(d, 1, "requirement.max_evidence_age", "", "model_creation.managed_compute", 0,
	             0);
	free_msg(d);

	age.seconds = 3 * 3600;
	r.n_required_practice_ids = 1;
	r.required_practice_ids = &prs[1];
	d = check("admin", ORG, &r, false, GRPC_STATUS_OK);
	assert_true(d->allowed);
	assert_int_equal(d->level, 1);
	free_msg(d);
}

static void test_invalid_requirements(void **state)
{
	(void)state;
	CheckReq req = MLOPS__MATURITY__V1__CHECK_GATE_REQUEST__INIT;
	Requirement r = MLOPS__MATURITY__V1__GATE_REQUIREMENT__INIT;
	Mlops__Maturity__V1__GateRequirement__MinDimensionLevelsEntry
	    e = MLOPS__MATURITY__V1__GATE_REQUIREMENT__MIN_DIMENSION_LEVELS_ENTRY__INIT,
	    *ep = &e;
	Mlops__Maturity__V1__Subject s0 = MLOPS__MATURITY__V1__SUBJECT__INIT, s1 = s0;
	Mlops__Maturity__V1__Subject *subs[] = {&s0, &s1};
	Mlops__Maturity__V1__Subject__DigestEntry
	    de = MLOPS__MATURITY__V1__SUBJECT__DIGEST_ENTRY__INIT,
	    *dep = &de;
	Google__Protobuf__Duration zero = GOOGLE__PROTOBUF__DURATION__INIT;
	char *prs[] = {"people.regular_communication", "people.regular_communication",
	               "people.no_such_practice"};

	if (!tenv_available())
		skip();
	req.organization = ORG;
	req.requirement = &r;
	r.min_level = 5;
	e.key = "model_creation";
	e.value = 7;
	r.min_dimension_levels = &ep;
	r.n_min_dimension_levels = 1;
	r.required_practice_ids = prs;
	r.n_required_practice_ids = 3;
	r.max_evidence_age = &zero;
	s0.name = "registry.example/app";
	de.key = "sha256";
	de.value = "ABCDEF";
	s0.digest = &dep;
	s0.n_digest = 1;
	s1.name = "";
	req.subjects = subs;
	req.n_subjects = 2;
	itest_expect_violation("admin", CHECK, &req, "requirement.min_level");
	itest_expect_violation("admin", CHECK, &req,
	                       "requirement.min_dimension_levels[model_creation]");
	itest_expect_violation("admin", CHECK, &req, "requirement.required_practice_ids[2]");
	itest_expect_violation("admin", CHECK, &req, "requirement.max_evidence_age");
	itest_expect_violation("admin", CHECK, &req, "subjects[0].digest[sha256]");
	itest_expect_violation("admin", CHECK, &req, "subjects[1].name");
	e.key = "nope";
	itest_expect_violation("admin", CHECK, &req, "requirement.min_dimension_levels[nope]");
	req.organization = "orgs/x";
	itest_expect_violation("admin", CHECK, &req, "organization");
}

/* Verifies, audits once per attested decision (allowed or not), none for unattested ones. */
static void test_attested_decisions(void **state)
{
	(void)state;
	CheckReq req = MLOPS__MATURITY__V1__CHECK_GATE_REQUEST__INIT;
	Requirement r = MLOPS__MATURITY__V1__GATE_REQUIREMENT__INIT;
	Mlops__Maturity__V1__Subject s = MLOPS__MATURITY__V1__SUBJECT__INIT, *sp = &s;
	Mlops__Maturity__V1__Subject__DigestEntry
	    de = MLOPS__MATURITY__V1__SUBJECT__DIGEST_ENTRY__INIT,
	    *dep = &de;
	int before;
	Decision *d;
	char *payload;

	if (!tenv_available())
		skip();
	before = audit_count();
	r.min_level = 1;
	d = check("admin", ORG, &r, false, GRPC_STATUS_OK);
	free_msg(d);
	assert_int_equal(audit_count(), before);

	d = check("admin", ORG, &r, true, GRPC_STATUS_OK);
	assert_true(d->allowed);
	assert_non_null(d->attestation);
	assert_true(envelope_verifies(d->attestation));
	assert_string_equal(d->attestation->signatures[0]->keyid, keyid_of(key_path));
	payload = strndup((char *)d->attestation->payload.data, d->attestation->payload.len);
	assert_non_null(strstr(payload,
	                       "{\"_type\":\"https://in-toto.io/Statement/v1\","
	                       "\"subject\":[{\"name\":\"" ORG "\",\"digest\":{\"sha256\":"));
	assert_non_null(strstr(payload, "\"predicate\":{\"organization\":\"" ORG
	                                "\",\"allowed\":true,\"level\":1,"));
	assert_non_null(strstr(payload, "\"issuer\":\"gate-test-issuer\","
	                                "\"requirement\":{\"minLevel\":1},\"unmet\":[]}}"));
	free(payload);
	free_msg(d);
	assert_int_equal(audit_count(), before + 1);

	/* A denial is signed too, with the request's subjects. */
	req.organization = ORG;
	req.requirement = &r;
	req.attest = true;
	r.min_level = 3;
	s.name = "registry.example/app:1.0";
	de.key = "sha256";
	de.value = "0123456789abcdef";
	s.digest = &dep;
	s.n_digest = 1;
	req.subjects = &sp;
	req.n_subjects = 1;
	d = itest_call("admin", CHECK, &req, DECISION_DESC, GRPC_STATUS_OK);
	assert_false(d->allowed);
	assert_true(envelope_verifies(d->attestation));
	payload = strndup((char *)d->attestation->payload.data, d->attestation->payload.len);
	assert_non_null(strstr(payload, "\"subject\":[{\"name\":\"registry.example/app:1.0\","
	                                "\"digest\":{\"sha256\":\"0123456789abcdef\"}}]"));
	assert_non_null(strstr(payload, "\"unmet\":[{\"field\":\"requirement.min_level\","));
	free(payload);
	/* A changed payload does not verify. */
	d->attestation->payload.data[10] ^= 1;
	assert_false(envelope_verifies(d->attestation));
	free_msg(d);
	assert_int_equal(audit_count(), before + 2);
	/* Each audit row records what was decided: the allowed one, then the denied one. */
	{
		char out[64] = "";
		assert_int_equal(
		    tenv_psql(
		        g_dburl,
		        "SELECT string_agg(allowed::text, ',' ORDER BY time, id) FROM (SELECT * "
		        "FROM audit_events WHERE method = "
		        "'/mlops.maturity.v1.GateService/CheckGate' AND resource = '" ORG
		        "' ORDER BY time DESC, id DESC LIMIT 2) t",
		        out, sizeof(out)),
		    0);
		assert_string_equal(out, "true,false");
	}
	/* ListAuditEvents shows it. */
	{
		Mlops__Maturity__V1__ListAuditEventsRequest lr =
		    MLOPS__MATURITY__V1__LIST_AUDIT_EVENTS_REQUEST__INIT;
		Mlops__Maturity__V1__ListAuditEventsResponse *lres;
		lr.page_size = 1;
		lres = itest_call("admin", "/mlops.maturity.v1.AccessService/ListAuditEvents", &lr,
		                  &mlops__maturity__v1__list_audit_events_response__descriptor,
		                  GRPC_STATUS_OK);
		assert_int_equal(lres->n_audit_events, 1);
		assert_string_equal(lres->audit_events[0]->method,
		                    "/mlops.maturity.v1.GateService/CheckGate");
		assert_false(lres->audit_events[0]->allowed);
		protobuf_c_message_free_unpacked(&lres->base, NULL);
	}
}

static void test_permissions(void **state)
{
	(void)state;
	Requirement r = MLOPS__MATURITY__V1__GATE_REQUIREMENT__INIT;
	KeyList *kl;

	if (!tenv_available())
		skip();
	/* reporter: viewer on gate-a only. */
	free_msg(check("reporter", ORG, &r, false, GRPC_STATUS_OK));
	free_msg(check("reporter", ORG, &r, true, GRPC_STATUS_OK));
	free_msg(check("reporter", "organizations/gate-empty", &r, false,
	               GRPC_STATUS_PERMISSION_DENIED));
	/* A refusal comes before a bad request: nothing leaks about the organization. */
	r.min_level = 9;
	free_msg(check("reporter", "organizations/gate-empty", &r, false,
	               GRPC_STATUS_PERMISSION_DENIED));
	free_msg(check("cnclient", ORG, &r, true, GRPC_STATUS_PERMISSION_DENIED));
	/* Any authenticated caller lists the keys. */
	kl = list_keys("cnclient");
	assert_int_equal(kl->n_keys, 1);
	assert_true(kl->keys[0]->active);
	assert_string_equal(kl->keys[0]->algorithm, "ed25519");
	assert_string_equal(kl->keys[0]->keyid, keyid_of(key_path));
	assert_non_null(strstr(kl->keys[0]->public_key_pem, "-----BEGIN PUBLIC KEY-----"));
	free_msg(kl);
}

static void test_without_key(void **state)
{
	(void)state;
	struct tserver s2;
	struct tclient *c;
	CheckReq req = MLOPS__MATURITY__V1__CHECK_GATE_REQUEST__INIT;
	Mlops__Maturity__V1__ListAttestationKeysRequest lr =
	    MLOPS__MATURITY__V1__LIST_ATTESTATION_KEYS_REQUEST__INIT;
	ProtobufCMessage *resp = NULL;
	struct tresult res;
	char cmd[8192], out[512] = "";
	FILE *p;

	if (!tenv_available())
		skip();
	assert_int_equal(tserver_start(&s2, g_dburl, NULL), 0);
	c = tserver_client(&s2, "admin");
	req.organization = ORG;
	req.attest = true;
	assert_int_equal(tclient_call(c, CHECK, &req.base, DECISION_DESC, &resp, 10000, &res),
	                 GRPC_STATUS_FAILED_PRECONDITION);
	assert_non_null(strstr(res.message, "--attestation-key"));
	tresult_cleanup(&res);
	req.attest = false;
	assert_int_equal(tclient_call(c, CHECK, &req.base, DECISION_DESC, &resp, 10000, &res),
	                 GRPC_STATUS_OK);
	assert_true(((Decision *)resp)->allowed);
	free_msg(resp);
	tresult_cleanup(&res);
	assert_int_equal(tclient_call(c, LIST_KEYS, &lr.base, KEYS_DESC, &resp, 10000, &res),
	                 GRPC_STATUS_OK);
	assert_int_equal(((KeyList *)resp)->n_keys, 0);
	free_msg(resp);
	tresult_cleanup(&res);
	tclient_free(c);
	assert_int_equal(tserver_stop(&s2), 0);

	/* A bad key file stops the start with status 2 and a line naming the flag. */
	sh("printf 'not a key\\n' > %s/junk.pem", dir);
	snprintf(cmd, sizeof(cmd),
	         "%s --database-url '%s' --tls-cert %s/server.pem --tls-key %s/server.key "
	         "--tls-client-ca %s/ca.pem --attestation-key %s/junk.pem 2>&1; echo rc=$?",
	         MATURITYD_BIN, g_dburl, g_srv.pki, g_srv.pki, g_srv.pki, dir);
	p = popen(cmd, "r");
	assert_non_null(p);
	assert_true(fread(out, 1, sizeof(out) - 1, p) > 0);
	pclose(p);
	assert_non_null(strstr(out, "maturityd: --attestation-key: "));
	assert_non_null(strstr(out, "rc=2"));
	snprintf(cmd, sizeof(cmd),
	         "%s --database-url '%s' --tls-cert %s/server.pem --tls-key %s/server.key "
	         "--tls-client-ca %s/ca.pem --attestation-key %s --attestation-verify-keys %s "
	         "2>&1; echo rc=$?",
	         MATURITYD_BIN, g_dburl, g_srv.pki, g_srv.pki, g_srv.pki, key_path, key_path);
	p = popen(cmd, "r");
	memset(out, 0, sizeof(out));
	assert_true(fread(out, 1, sizeof(out) - 1, p) > 0);
	pclose(p);
	assert_non_null(strstr(out, "maturityd: --attestation-verify-keys: "));
	assert_non_null(strstr(out, "rc=2"));
}

/* A pipeline's view: maturityctl gate check (exit 0 allowed, 3 not), --attest --out, then
 * attestation verify offline with the key attestation keys lists. */
static void test_maturityctl(void **state)
{
	(void)state;
#ifdef MATURITYCTL_BIN
	char env[2048], cmd[4096];

	if (!tenv_available())
		skip();
	/* 127.0.0.1 as test_cli does: no name to resolve; no user's config file either. */
	snprintf(env, sizeof(env),
	         "XDG_CONFIG_HOME=%s MATURITYCTL_SERVER=%s MATURITYCTL_CACERT=%s/ca.pem "
	         "MATURITYCTL_CERT=%s/admin.pem MATURITYCTL_KEY=%s/admin.key",
	         dir, g_srv.target, g_srv.pki, g_srv.pki, g_srv.pki);
	snprintf(cmd, sizeof(cmd), "%s %s gate check gate-a --min-level 1 >/dev/null", env,
	         MATURITYCTL_BIN);
	assert_int_equal(WEXITSTATUS(system(cmd)), 0);
	snprintf(cmd, sizeof(cmd),
	         "%s %s gate check gate-a --min-level 2 --subject registry.example/app@sha256:ab12 "
	         "--attest --out %s/ctl-decision.json >/dev/null",
	         env, MATURITYCTL_BIN, dir);
	assert_int_equal(WEXITSTATUS(system(cmd)), 3);
	snprintf(cmd, sizeof(cmd),
	         "%s %s -o json attestation keys | /usr/bin/python3 -c 'import json,sys; "
	         "print(json.load(sys.stdin)[\"keys\"][0][\"publicKeyPem\"])' > %s/ctl-key.pem",
	         env, MATURITYCTL_BIN, dir);
	assert_int_equal(WEXITSTATUS(system(cmd)), 0);
	snprintf(cmd, sizeof(cmd),
	         "%s %s attestation verify --key %s/ctl-key.pem %s/ctl-decision.json | grep -q "
	         "'\"allowed\":false'",
	         env, MATURITYCTL_BIN, dir, dir);
	assert_int_equal(WEXITSTATUS(system(cmd)), 0);
	/* Another key does not verify it. */
	sh("openssl genpkey -algorithm ed25519 2>/dev/null | openssl pkey -pubout -out "
	   "%s/other.pem",
	   dir);
	snprintf(cmd, sizeof(cmd),
	         "%s %s attestation verify --key %s/other.pem %s/ctl-decision.json >/dev/null 2>&1",
	         env, MATURITYCTL_BIN, dir, dir);
	assert_int_equal(WEXITSTATUS(system(cmd)), 1);
#else
	skip();
#endif
}

/* Waits until the active key is `keyid` (SIGHUP is handled asynchronously). */
static KeyList *wait_active(const char *keyid)
{
	for (int i = 0; i < 100; i++) {
		KeyList *kl = list_keys("admin");
		if (kl->n_keys > 0 && kl->keys[0]->active && strcmp(kl->keys[0]->keyid, keyid) == 0)
			return kl;
		free_msg(kl);
		usleep(50 * 1000);
	}
	fail_msg("the active key never became %s", keyid);
	return NULL;
}

static void test_rotation(void **state)
{
	(void)state;
	Requirement r = MLOPS__MATURITY__V1__GATE_REQUIREMENT__INIT;
	char key_a[80], key_b[80], new_key[300];
	Decision *old, *d;
	KeyList *kl;

	if (!tenv_available())
		skip();
	snprintf(key_a, sizeof(key_a), "%s", keyid_of(key_path));
	old = check("admin", ORG, &r, true, GRPC_STATUS_OK);
	assert_string_equal(old->attestation->signatures[0]->keyid, key_a);

	/* Rotate to a P-256 key; the old public key stays listed for verification. */
	snprintf(new_key, sizeof(new_key), "%s/b.pem", dir);
	sh("openssl genpkey -algorithm EC -pkeyopt ec_paramgen_curve:P-256 -out %s 2>/dev/null",
	   new_key);
	snprintf(key_b, sizeof(key_b), "%s", keyid_of(new_key));
	sh("cp %s %s && cp %s %s", new_key, key_path, key_a_pub, verify_path);
	assert_int_equal(kill(g_srv.pid, SIGHUP), 0);
	kl = wait_active(key_b);
	assert_int_equal(kl->n_keys, 2);
	assert_string_equal(kl->keys[0]->algorithm, "ecdsa-p256-sha256");
	assert_string_equal(kl->keys[1]->keyid, key_a);
	assert_string_equal(kl->keys[1]->algorithm, "ed25519");
	assert_false(kl->keys[1]->active);
	free_msg(kl);

	d = check("admin", ORG, &r, true, GRPC_STATUS_OK);
	assert_string_equal(d->attestation->signatures[0]->keyid, key_b);
	assert_true(envelope_verifies(d->attestation));
	assert_true(envelope_verifies(old->attestation));
	free_msg(d);

	/* A reload that fails keeps the current keys. */
	sh("printf 'garbage\\n' > %s", key_path);
	assert_int_equal(kill(g_srv.pid, SIGHUP), 0);
	usleep(300 * 1000);
	kl = wait_active(key_b);
	assert_int_equal(kl->n_keys, 2);
	free_msg(kl);
	d = check("admin", ORG, &r, true, GRPC_STATUS_OK);
	assert_string_equal(d->attestation->signatures[0]->keyid, key_b);
	free_msg(d);
	free_msg(old);
	sh("cp %s %s", new_key, key_path); /* so the final stop sees good files */
}

static int setup(void **state)
{
	static const char *args[8];

	if (!tenv_available())
		return 0;
	if (mkdtemp(dir) == NULL)
		return -1;
	snprintf(key_path, sizeof(key_path), "%s/attest.pem", dir);
	snprintf(verify_path, sizeof(verify_path), "%s/verify.pem", dir);
	snprintf(key_a_pub, sizeof(key_a_pub), "%s/a.pub.pem", dir);
	sh("openssl genpkey -algorithm ed25519 -out %s 2>/dev/null && "
	   "openssl pkey -in %s -pubout -out %s && : > %s",
	   key_path, key_path, key_a_pub, verify_path);
	args[0] = "--attestation-key";
	args[1] = key_path;
	args[2] = "--attestation-verify-keys";
	args[3] = verify_path;
	args[4] = "--attestation-issuer=gate-test-issuer";
	args[5] = NULL;
	grpc_init();
	if (tenv_db_create(g_dburl, sizeof(g_dburl)) != 0 ||
	    tserver_start(&g_srv, g_dburl, args) != 0)
		return -1;
	make_org("gate-a");
	make_org("gate-empty");
	submit_level1("gate-a", assessment_name);
	bind("spiffe://maturityd.dev/reporter", MLOPS__MATURITY__V1__ROLE__ROLE_VIEWER, ORG);
	return 0;
}

static int teardown(void **state)
{
	int rc = itest_teardown(state);
	char cmd[300];

	snprintf(cmd, sizeof(cmd), "rm -rf '%s'", dir);
	if (system(cmd) != 0)
		rc = -1;
	return rc;
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_reviewed_decisions),
	    cmocka_unit_test(test_live_and_evidence_age),
	    cmocka_unit_test(test_invalid_requirements),
	    cmocka_unit_test(test_attested_decisions),
	    cmocka_unit_test(test_permissions),
	    cmocka_unit_test(test_without_key),
	    cmocka_unit_test(test_maturityctl),
	    cmocka_unit_test(test_rotation),
	};
	return cmocka_run_group_tests(tests, setup, teardown);
}
