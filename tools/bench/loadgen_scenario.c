/* maturity-loadgen: the scenarios — which method each call uses and its request bytes. Every
 * distinct request is packed once up front, so a call costs the client a slice ref, not a
 * protobuf pack. */
#include "loadgen.h"

#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "grpc/health/v1/health.pb-c.h"
#include "mlops/maturity/v1/assessment.pb-c.h"
#include "mlops/maturity/v1/evidence.pb-c.h"
#include "mlops/maturity/v1/gate.pb-c.h"
#include "mlops/maturity/v1/organization.pb-c.h"
#include "mlops/maturity/v1/scoring.pb-c.h"

const char *const lg_method_path[LG_N_METHODS] = {
    [LG_M_HEALTH] = "/grpc.health.v1.Health/Check",
    [LG_M_GET_ORGANIZATION] = "/mlops.maturity.v1.OrganizationService/GetOrganization",
    [LG_M_LIST_ORGANIZATIONS] = "/mlops.maturity.v1.OrganizationService/ListOrganizations",
    [LG_M_GET_ASSESSMENT] = "/mlops.maturity.v1.AssessmentService/GetAssessment",
    [LG_M_EVALUATE] = "/mlops.maturity.v1.ScoringService/EvaluateAnswers",
    [LG_M_UPDATE_ANSWERS] = "/mlops.maturity.v1.AssessmentService/UpdateAnswers",
    [LG_M_SUBMIT] = "/mlops.maturity.v1.AssessmentService/SubmitAssessment",
    [LG_M_ROADMAP] = "/mlops.maturity.v1.ScoringService/GetRoadmap",
    [LG_M_LIVE_SCORE] = "/mlops.maturity.v1.EvidenceService/GetLiveScore",
    [LG_M_CHECK_GATE] = "/mlops.maturity.v1.GateService/CheckGate",
    [LG_M_REPORT_EVIDENCE] = "/mlops.maturity.v1.EvidenceService/BatchReportEvidence",
};

const char *const lg_method_name[LG_N_METHODS] = {
    [LG_M_HEALTH] = "health",
    [LG_M_GET_ORGANIZATION] = "get-organization",
    [LG_M_LIST_ORGANIZATIONS] = "list-organizations",
    [LG_M_GET_ASSESSMENT] = "get-assessment",
    [LG_M_EVALUATE] = "evaluate",
    [LG_M_UPDATE_ANSWERS] = "update-answers",
    [LG_M_SUBMIT] = "submit",
    [LG_M_ROADMAP] = "roadmap",
    [LG_M_LIVE_SCORE] = "live-score",
    [LG_M_CHECK_GATE] = "check-gate",
    [LG_M_REPORT_EVIDENCE] = "report-evidence",
};

/* The catalog of mlops-v1 in catalog order (docs/model.md): hard-coded so the tool needs neither
 * the domain library nor a GetMaturityModel round trip. */
static const char *const practices[30] = {
    "people.regular_communication",
    "people.ds_de_repeatable_jobs",
    "people.ds_de_shared_inputs_outputs",
    "people.se_de_integration_automation",
    "people.cross_functional_collaboration",
    "people.post_deployment_metrics",
    "model_creation.automated_data_pipeline",
    "model_creation.managed_compute",
    "model_creation.experiment_tracking",
    "model_creation.versioned_code_and_models",
    "model_creation.automated_training_pipeline",
    "model_creation.model_management",
    "model_creation.metric_triggered_retraining",
    "model_release.versioned_scoring_scripts",
    "model_release.basic_model_integration_tests",
    "model_release.tested_scoring_scripts",
    "model_release.engineering_managed_release",
    "model_release.cicd_release",
    "model_release.per_release_tests",
    "model_release.ab_testing",
    "model_release.scalable_serving",
    "model_release.registry_integrated",
    "model_release.end_to_end_automation",
    "application_integration.app_unit_tests",
    "application_integration.automated_builds",
    "application_integration.operational_metrics",
    "application_integration.reduced_ds_dependency",
    "application_integration.app_integration_tests",
    "application_integration.all_code_tested",
    "application_integration.model_monitoring",
};
#define N_PRACTICES 30
/* The level each practice is expected from, same order. */
static const unsigned char practice_level[N_PRACTICES] = {
    1, 2, 3, 3, 4, 4,             /* people */
    1, 2, 2, 2, 2, 2, 4,          /* model_creation */
    1, 1, 2, 2, 3, 3, 3, 3, 4, 4, /* model_release */
    1, 1, 1, 3, 3, 3, 4,          /* application_integration */
};

/* Distinct EvaluateAnswers bodies, so a server-side cache keyed on the request would not
 * make the benchmark meaningless. */
#define EVALUATE_VARIANTS 8
/* UpdateAnswers: 6 groups of 5 practices x 2 status patterns per draft. */
#define UPDATE_GROUPS (N_PRACTICES / 5)
#define UPDATE_VARIANTS (UPDATE_GROUPS * 2)

/* A portal-like blend, one slot per 5 %: 40 % get-organization, 20 % get-assessment,
 * 15 % roadmap, 10 % list, 10 % evaluate, 5 % update-answers; interleaved so that any
 * window of a few calls already has the mix. */
static const unsigned char mix_table[20] = {
    LG_M_GET_ORGANIZATION, LG_M_GET_ASSESSMENT,     LG_M_ROADMAP,
    LG_M_GET_ORGANIZATION, LG_M_LIST_ORGANIZATIONS, LG_M_GET_ORGANIZATION,
    LG_M_EVALUATE,         LG_M_GET_ASSESSMENT,     LG_M_GET_ORGANIZATION,
    LG_M_ROADMAP,          LG_M_GET_ORGANIZATION,   LG_M_UPDATE_ANSWERS,
    LG_M_GET_ASSESSMENT,   LG_M_GET_ORGANIZATION,   LG_M_LIST_ORGANIZATIONS,
    LG_M_ROADMAP,          LG_M_GET_ORGANIZATION,   LG_M_EVALUATE,
    LG_M_GET_ASSESSMENT,   LG_M_GET_ORGANIZATION,
};

#define MIXED (-1)
/* check-gate-attest: CheckGate requests with attest = true. */
#define CHECK_GATE_ATTEST (-3)

struct lg_scenario {
	int kind; /* a method, MIXED or CHECK_GATE_ATTEST */
	grpc_slice *reqs[LG_N_METHODS];
	size_t nreqs[LG_N_METHODS];
};

static grpc_slice pack(const ProtobufCMessage *m)
{
	size_t n = protobuf_c_message_get_packed_size(m);
	grpc_slice s = grpc_slice_malloc(n);

	protobuf_c_message_pack(m, GRPC_SLICE_START_PTR(s));
	return s;
}

static bool alloc_reqs(struct lg_scenario *s, int method, size_t n)
{
	s->reqs[method] = calloc(n ? n : 1, sizeof(grpc_slice));
	s->nreqs[method] = n;
	return s->reqs[method] != NULL;
}

/* A status for answer `p` of variant `v`: every practice up to level `floor` implemented
 * (so variants score different levels), the others about half implemented, the rest
 * partial, not implemented or not applicable (with the note that status requires). */
static void answer_fill(Mlops__Maturity__V1__Answer *a, int p, unsigned v, int floor)
{
	static const Mlops__Maturity__V1__PracticeStatus cycle[10] = {
	    MLOPS__MATURITY__V1__PRACTICE_STATUS__PRACTICE_STATUS_IMPLEMENTED,
	    MLOPS__MATURITY__V1__PRACTICE_STATUS__PRACTICE_STATUS_IMPLEMENTED,
	    MLOPS__MATURITY__V1__PRACTICE_STATUS__PRACTICE_STATUS_PARTIAL,
	    MLOPS__MATURITY__V1__PRACTICE_STATUS__PRACTICE_STATUS_IMPLEMENTED,
	    MLOPS__MATURITY__V1__PRACTICE_STATUS__PRACTICE_STATUS_NOT_IMPLEMENTED,
	    MLOPS__MATURITY__V1__PRACTICE_STATUS__PRACTICE_STATUS_IMPLEMENTED,
	    MLOPS__MATURITY__V1__PRACTICE_STATUS__PRACTICE_STATUS_PARTIAL,
	    MLOPS__MATURITY__V1__PRACTICE_STATUS__PRACTICE_STATUS_NOT_APPLICABLE,
	    MLOPS__MATURITY__V1__PRACTICE_STATUS__PRACTICE_STATUS_IMPLEMENTED,
	    MLOPS__MATURITY__V1__PRACTICE_STATUS__PRACTICE_STATUS_NOT_IMPLEMENTED,
	};

	mlops__maturity__v1__answer__init(a);
	a->practice_id = (char *)practices[p];
	a->status = practice_level[p] <= floor
	                ? MLOPS__MATURITY__V1__PRACTICE_STATUS__PRACTICE_STATUS_IMPLEMENTED
	                : cycle[((unsigned)p * 7u + v * 3u) % 10u];
	if (a->status == MLOPS__MATURITY__V1__PRACTICE_STATUS__PRACTICE_STATUS_NOT_APPLICABLE)
		a->note = "not relevant: batch scoring only (load generator)";
	else if (a->status == MLOPS__MATURITY__V1__PRACTICE_STATUS__PRACTICE_STATUS_PARTIAL)
		a->note = "in progress";
}

static bool build_health(struct lg_scenario *s)
{
	Grpc__Health__V1__HealthCheckRequest req = GRPC__HEALTH__V1__HEALTH_CHECK_REQUEST__INIT;

	if (!alloc_reqs(s, LG_M_HEALTH, 1))
		return false;
	req.service = "";
	s->reqs[LG_M_HEALTH][0] = pack(&req.base);
	return true;
}

static bool build_list(struct lg_scenario *s)
{
	Mlops__Maturity__V1__ListOrganizationsRequest req =
	    MLOPS__MATURITY__V1__LIST_ORGANIZATIONS_REQUEST__INIT;

	if (!alloc_reqs(s, LG_M_LIST_ORGANIZATIONS, 1))
		return false;
	req.page_size = 50;
	s->reqs[LG_M_LIST_ORGANIZATIONS][0] = pack(&req.base);
	return true;
}

static void org_name(const struct lg_scenario_opts *o, long i, char *buf, size_t len)
{
	if (o->org != NULL && strncmp(o->org, "organizations/", 14) == 0)
		snprintf(buf, len, "%s", o->org);
	else if (o->org != NULL)
		snprintf(buf, len, "organizations/%s", o->org);
	else
		snprintf(buf, len, "organizations/%s-%ld", o->org_prefix, o->org_base + i);
}

/* GetOrganization and GetRoadmap: one request per organization. */
static bool build_orgs(struct lg_scenario *s, const struct lg_scenario_opts *o, int method)
{
	size_t n = o->org != NULL ? 1 : (size_t)o->orgs;
	char name[512];

	if (!alloc_reqs(s, method, n))
		return false;
	for (size_t i = 0; i < n; i++) {
		org_name(o, (long)i, name, sizeof(name));
		if (method == LG_M_GET_ORGANIZATION) {
			Mlops__Maturity__V1__GetOrganizationRequest req =
			    MLOPS__MATURITY__V1__GET_ORGANIZATION_REQUEST__INIT;
			req.name = name;
			s->reqs[method][i] = pack(&req.base);
		} else {
			Mlops__Maturity__V1__GetRoadmapRequest req =
			    MLOPS__MATURITY__V1__GET_ROADMAP_REQUEST__INIT;
			req.organization = name;
			s->reqs[method][i] = pack(&req.base);
		}
	}
	return true;
}

static bool build_evaluate(struct lg_scenario *s)
{
	Mlops__Maturity__V1__Answer answers[N_PRACTICES];
	Mlops__Maturity__V1__Answer *ptrs[N_PRACTICES];

	if (!alloc_reqs(s, LG_M_EVALUATE, EVALUATE_VARIANTS))
		return false;
	for (unsigned v = 0; v < EVALUATE_VARIANTS; v++) {
		Mlops__Maturity__V1__EvaluateAnswersRequest req =
		    MLOPS__MATURITY__V1__EVALUATE_ANSWERS_REQUEST__INIT;
		for (int p = 0; p < N_PRACTICES; p++) {
			answer_fill(&answers[p], p, v, (int)(v % 5));
			ptrs[p] = &answers[p];
		}
		req.model = "models/mlops-v1";
		req.n_answers = N_PRACTICES;
		req.answers = ptrs;
		s->reqs[LG_M_EVALUATE][v] = pack(&req.base);
	}
	return true;
}

/* GetLiveScore, CheckGate (attest or not) and BatchReportEvidence: one request per
 * organization. */
static bool build_org_calls(struct lg_scenario *s, const struct lg_scenario_opts *o, int method,
                            bool attest)
{
	size_t n = o->org != NULL ? 1 : (size_t)o->orgs;
	char name[512];

	if (!alloc_reqs(s, method, n))
		return false;
	for (size_t i = 0; i < n; i++) {
		org_name(o, (long)i, name, sizeof(name));
		if (method == LG_M_LIVE_SCORE) {
			Mlops__Maturity__V1__GetLiveScoreRequest req =
			    MLOPS__MATURITY__V1__GET_LIVE_SCORE_REQUEST__INIT;
			req.organization = name;
			s->reqs[method][i] = pack(&req.base);
		} else if (method == LG_M_CHECK_GATE) {
			/* A small requirement: level 1 and three practices, on the reviewed level.
			 */
			static char *required[3] = {
			    (char *)"model_creation.experiment_tracking",
			    (char *)"model_release.versioned_scoring_scripts",
			    (char *)"application_integration.app_unit_tests",
			};
			Mlops__Maturity__V1__CheckGateRequest req =
			    MLOPS__MATURITY__V1__CHECK_GATE_REQUEST__INIT;
			Mlops__Maturity__V1__GateRequirement rq =
			    MLOPS__MATURITY__V1__GATE_REQUIREMENT__INIT;
			Mlops__Maturity__V1__Subject subj = MLOPS__MATURITY__V1__SUBJECT__INIT;
			Mlops__Maturity__V1__Subject__DigestEntry dig =
			    MLOPS__MATURITY__V1__SUBJECT__DIGEST_ENTRY__INIT;
			Mlops__Maturity__V1__Subject__DigestEntry *digs[1] = {&dig};
			Mlops__Maturity__V1__Subject *subjs[1] = {&subj};

			rq.min_level = 1;
			rq.n_required_practice_ids = 3;
			rq.required_practice_ids = required;
			rq.live = false;
			dig.key = "sha256";
			dig.value =
			    "9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08";
			subj.name = "models/churn-classifier:7";
			subj.n_digest = 1;
			subj.digest = digs;
			req.organization = name;
			req.requirement = &rq;
			req.n_subjects = 1;
			req.subjects = subjs;
			req.attest = attest;
			s->reqs[method][i] = pack(&req.base);
		} else {
			/* 30 pieces, one per practice, observed a minute before the run started and
			 * valid for 30 days, with uri, digest and note; no request_id (every call
			 * is a new report). */
			Mlops__Maturity__V1__Evidence ev[N_PRACTICES];
			Mlops__Maturity__V1__Evidence *evp[N_PRACTICES];
			Google__Protobuf__Timestamp obs = GOOGLE__PROTOBUF__TIMESTAMP__INIT;
			Google__Protobuf__Timestamp exp = GOOGLE__PROTOBUF__TIMESTAMP__INIT;
			Mlops__Maturity__V1__BatchReportEvidenceRequest req =
			    MLOPS__MATURITY__V1__BATCH_REPORT_EVIDENCE_REQUEST__INIT;
			static const Mlops__Maturity__V1__PracticeStatus st[3] = {
			    MLOPS__MATURITY__V1__PRACTICE_STATUS__PRACTICE_STATUS_IMPLEMENTED,
			    MLOPS__MATURITY__V1__PRACTICE_STATUS__PRACTICE_STATUS_PARTIAL,
			    MLOPS__MATURITY__V1__PRACTICE_STATUS__PRACTICE_STATUS_NOT_IMPLEMENTED,
			};

			obs.seconds = (int64_t)time(NULL) - 60;
			exp.seconds = obs.seconds + 30 * 86400;
			for (int p = 0; p < N_PRACTICES; p++) {
				mlops__maturity__v1__evidence__init(&ev[p]);
				ev[p].practice_id = (char *)practices[p];
				ev[p].status = st[((size_t)p + i) % 3];
				ev[p].source = "mlflow/registry";
				ev[p].observe_time = &obs;
				ev[p].expire_time = &exp;
				ev[p].uri = "https://mlflow.example.com/#/models/churn-classifier";
				ev[p].digest = "sha256:"
				               "9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15"
				               "d6c15b0f00a08";
				ev[p].note = "observed by the load generator";
				evp[p] = &ev[p];
			}
			req.parent = name;
			req.n_evidence = N_PRACTICES;
			req.evidence = evp;
			s->reqs[method][i] = pack(&req.base);
		}
	}
	return true;
}

static char **load_names(const char *path, const char *flag, const char *scenario, size_t *n,
                         char *err, size_t errlen)
{
	char **lines;

	if (path == NULL) {
		snprintf(err, errlen, "scenario %s needs %s FILE", scenario, flag);
		return NULL;
	}
	lines = lg_read_lines(path, n);
	if (lines == NULL) {
		snprintf(err, errlen, "cannot read %s (%s)", path, flag);
		return NULL;
	}
	if (*n == 0) {
		snprintf(err, errlen, "%s (%s) holds no names", path, flag);
		lg_lines_free(lines, *n);
		return NULL;
	}
	return lines;
}

static bool build_get_assessment(struct lg_scenario *s, char **names, size_t n)
{
	if (!alloc_reqs(s, LG_M_GET_ASSESSMENT, n))
		return false;
	for (size_t i = 0; i < n; i++) {
		Mlops__Maturity__V1__GetAssessmentRequest req =
		    MLOPS__MATURITY__V1__GET_ASSESSMENT_REQUEST__INIT;
		req.name = names[i];
		s->reqs[LG_M_GET_ASSESSMENT][i] = pack(&req.base);
	}
	return true;
}

/* Request (draft d, variant v) sits at d * UPDATE_VARIANTS + v. */
static bool build_update(struct lg_scenario *s, char **names, size_t n)
{
	Mlops__Maturity__V1__Answer answers[5];
	Mlops__Maturity__V1__Answer *ptrs[5];

	if (!alloc_reqs(s, LG_M_UPDATE_ANSWERS, n * UPDATE_VARIANTS))
		return false;
	for (size_t d = 0; d < n; d++) {
		for (unsigned v = 0; v < UPDATE_VARIANTS; v++) {
			Mlops__Maturity__V1__UpdateAnswersRequest req =
			    MLOPS__MATURITY__V1__UPDATE_ANSWERS_REQUEST__INIT;
			int group = (int)(v % UPDATE_GROUPS);
			for (int k = 0; k < 5; k++) {
				/* The second pattern shifts every status, so repeated updates of
				 * a draft keep changing it. */
				answer_fill(&answers[k], group * 5 + k,
				            (unsigned)d + (v < UPDATE_GROUPS ? 0u : 5u), 0);
				ptrs[k] = &answers[k];
			}
			req.name = names[d];
			req.n_answers = 5;
			req.answers = ptrs;
			req.etag = ""; /* last writer wins: no read-modify-write round trip */
			s->reqs[LG_M_UPDATE_ANSWERS][d * UPDATE_VARIANTS + v] = pack(&req.base);
		}
	}
	return true;
}

static bool build_submit(struct lg_scenario *s, char **names, size_t n)
{
	if (!alloc_reqs(s, LG_M_SUBMIT, n))
		return false;
	for (size_t i = 0; i < n; i++) {
		Mlops__Maturity__V1__SubmitAssessmentRequest req =
		    MLOPS__MATURITY__V1__SUBMIT_ASSESSMENT_REQUEST__INIT;
		req.name = names[i];
		req.etag = "";
		s->reqs[LG_M_SUBMIT][i] = pack(&req.base);
	}
	return true;
}

static int kind_of(const char *name)
{
	if (strcmp(name, "mixed") == 0)
		return MIXED;
	if (strcmp(name, "check-gate-attest") == 0)
		return CHECK_GATE_ATTEST;
	for (int m = 0; m < LG_N_METHODS; m++)
		if (strcmp(name, lg_method_name[m]) == 0)
			return m;
	return -2;
}

struct lg_scenario *lg_scenario_new(const struct lg_scenario_opts *o, char *err, size_t errlen)
{
	struct lg_scenario *s = calloc(1, sizeof(*s));
	bool want[LG_N_METHODS] = {false};
	bool ok = true, attest = false;
	char **names = NULL;
	size_t n = 0;

	if (s == NULL) {
		snprintf(err, errlen, "out of memory");
		return NULL;
	}
	s->kind = kind_of(o->name);
	if (s->kind == -2) {
		snprintf(err, errlen, "unknown scenario %s", o->name);
		free(s);
		return NULL;
	}
	if (s->kind == MIXED) {
		for (size_t i = 0; i < sizeof(mix_table); i++)
			want[mix_table[i]] = true;
	} else if (s->kind == CHECK_GATE_ATTEST) {
		s->kind = LG_M_CHECK_GATE;
		attest = true;
		want[LG_M_CHECK_GATE] = true;
	} else {
		want[s->kind] = true;
	}
	if ((want[LG_M_GET_ORGANIZATION] || want[LG_M_ROADMAP] || want[LG_M_LIVE_SCORE] ||
	     want[LG_M_CHECK_GATE] || want[LG_M_REPORT_EVIDENCE]) &&
	    o->org == NULL && o->orgs < 1) {
		snprintf(err, errlen, "--orgs must be at least 1");
		free(s);
		return NULL;
	}
	if (want[LG_M_HEALTH])
		ok = ok && build_health(s);
	if (want[LG_M_LIST_ORGANIZATIONS])
		ok = ok && build_list(s);
	if (want[LG_M_GET_ORGANIZATION])
		ok = ok && build_orgs(s, o, LG_M_GET_ORGANIZATION);
	if (want[LG_M_ROADMAP])
		ok = ok && build_orgs(s, o, LG_M_ROADMAP);
	if (want[LG_M_EVALUATE])
		ok = ok && build_evaluate(s);
	for (int m = LG_M_LIVE_SCORE; m <= LG_M_REPORT_EVIDENCE; m++)
		if (want[m])
			ok = ok && build_org_calls(s, o, m, attest);
	if (!ok) {
		snprintf(err, errlen, "out of memory");
		goto fail;
	}
	if (want[LG_M_GET_ASSESSMENT]) {
		names =
		    load_names(o->assessments_file, "--assessments-file", o->name, &n, err, errlen);
		if (names == NULL)
			goto fail;
		ok = build_get_assessment(s, names, n);
		lg_lines_free(names, n);
		if (!ok) {
			snprintf(err, errlen, "out of memory");
			goto fail;
		}
	}
	if (want[LG_M_UPDATE_ANSWERS] || want[LG_M_SUBMIT]) {
		names = load_names(o->drafts_file, "--drafts-file", o->name, &n, err, errlen);
		if (names == NULL)
			goto fail;
		ok = want[LG_M_UPDATE_ANSWERS] ? build_update(s, names, n) : true;
		ok = ok && (want[LG_M_SUBMIT] ? build_submit(s, names, n) : true);
		lg_lines_free(names, n);
		if (!ok) {
			snprintf(err, errlen, "out of memory");
			goto fail;
		}
	}
	return s;
fail:
	lg_scenario_free(s);
	return NULL;
}

void lg_scenario_free(struct lg_scenario *s)
{
	if (s == NULL)
		return;
	for (int m = 0; m < LG_N_METHODS; m++) {
		for (size_t i = 0; s->reqs[m] != NULL && i < s->nreqs[m]; i++)
			grpc_slice_unref(s->reqs[m][i]);
		free(s->reqs[m]);
	}
	free(s);
}

bool lg_scenario_uses(const struct lg_scenario *s, int method)
{
	return s->reqs[method] != NULL;
}

bool lg_scenario_finite(const struct lg_scenario *s)
{
	return s->kind == LG_M_SUBMIT;
}

/* splitmix64: spreads the mixed blend's calls over the resources without a shared RNG. */
static uint64_t mix64(uint64_t x)
{
	x += 0x9e3779b97f4a7c15ull;
	x = (x ^ (x >> 30)) * 0xbf58476d1ce4e5b9ull;
	x = (x ^ (x >> 27)) * 0x94d049bb133111ebull;
	return x ^ (x >> 31);
}

bool lg_scenario_next(const struct lg_scenario *s, uint64_t i, int *method, grpc_slice *payload)
{
	int m = s->kind == MIXED ? mix_table[i % sizeof(mix_table)] : s->kind;
	/* Single-method scenarios go round-robin (every resource, evenly); the blend picks
	 * resources pseudo-randomly, since i % 20 already chose the method. */
	uint64_t j = s->kind == MIXED ? mix64(i) : i;
	size_t n = s->nreqs[m];

	if (m == LG_M_SUBMIT && i >= n)
		return false;
	if (m == LG_M_UPDATE_ANSWERS) {
		/* Each pass over the drafts uses the next variant of answers. */
		size_t drafts = n / UPDATE_VARIANTS;
		uint64_t d = j % drafts, v = (j / drafts) % UPDATE_VARIANTS;
		*payload = s->reqs[m][d * UPDATE_VARIANTS + v];
	} else {
		*payload = s->reqs[m][j % n];
	}
	*method = m;
	return true;
}
