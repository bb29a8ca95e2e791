/* The transport and identity over the real server: TLS refusals, the three principal forms,
 * malformed and oversized requests, invalid UTF-8, unknown methods, health and the model
 * catalog. */
#include "itest.h"

// clang-format off
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <cmocka.h>
// clang-format on
#include <stdlib.h>
#include <string.h>

#include "grpc/health/v1/health.pb-c.h"
#include "mlops/maturity/v1/access.pb-c.h"
#include "mlops/maturity/v1/model.pb-c.h"
#include "mlops/maturity/v1/organization.pb-c.h"

static void expect_refused(struct tclient *c)
{
	Mlops__Maturity__V1__WhoAmIRequest req = MLOPS__MATURITY__V1__WHO_AM_IREQUEST__INIT;
	struct tresult r;
	grpc_status_code st;

	assert_non_null(c);
	st = tclient_call(c, "/mlops.maturity.v1.AccessService/WhoAmI", &req.base, NULL, NULL, 3000,
	                  &r);
	/* The handshake fails before any call: the client sees UNAVAILABLE. */
	assert_int_equal(st, GRPC_STATUS_UNAVAILABLE);
	tresult_cleanup(&r);
	tclient_free(c);
}

static void test_tls_refusals(void **state)
{
	char ca[600];

	(void)state;
	if (!tenv_available())
		skip();
	expect_refused(tserver_client(&g_srv, NULL));      /* no client certificate */
	expect_refused(tserver_client(&g_srv, "rogue"));   /* signed by another CA */
	expect_refused(tserver_client(&g_srv, "expired")); /* expired */
	expect_refused(tclient_new(g_srv.target, tpki_path(&g_srv, "ca.pem", ca, sizeof(ca)), NULL,
	                           NULL, true)); /* plaintext */
}

static void whoami(const char *who, const char *principal, bool bootstrap)
{
	Mlops__Maturity__V1__WhoAmIRequest req = MLOPS__MATURITY__V1__WHO_AM_IREQUEST__INIT;
	Mlops__Maturity__V1__WhoAmIResponse *r =
	    itest_call(who, "/mlops.maturity.v1.AccessService/WhoAmI", &req,
	               &mlops__maturity__v1__who_am_iresponse__descriptor, GRPC_STATUS_OK);
	assert_string_equal(r->principal, principal);
	assert_int_equal(r->bootstrap_admin, bootstrap);
	protobuf_c_message_free_unpacked(&r->base, NULL);
}

static void test_principal_forms(void **state)
{
	(void)state;
	if (!tenv_available())
		skip();
	whoami("admin", "spiffe://maturityd.dev/admin", true);
	whoami("portal", "spiffe://maturityd.dev/portal", false);
	whoami("dnsclient", "dns:control-plane.maturityd.dev", false);
	whoami("cnclient", "cn:legacy-job", false);
}

static void test_malformed_protobuf(void **state)
{
	static const unsigned char junk[] = {0x0a, 0xff, 0xff, 0xff, 0xff, 0x0f, 0x01};
	struct tresult r;

	(void)state;
	if (!tenv_available())
		skip();
	assert_int_equal(tclient_call_raw(itest_client("admin"),
	                                  "/mlops.maturity.v1.OrganizationService/GetOrganization",
	                                  junk, sizeof(junk), 5000, &r),
	                 GRPC_STATUS_INVALID_ARGUMENT);
	tresult_cleanup(&r);
	/* A field of the wrong wire type. */
	static const unsigned char wrong_type[] = {0x0d, 0x01, 0x02, 0x03, 0x04};
	assert_int_equal(tclient_call_raw(itest_client("admin"),
	                                  "/mlops.maturity.v1.OrganizationService/GetOrganization",
	                                  wrong_type, sizeof(wrong_type), 5000, &r),
	                 GRPC_STATUS_INVALID_ARGUMENT);
	tresult_cleanup(&r);
}

static void test_oversized_message(void **state)
{
	Mlops__Maturity__V1__CreateOrganizationRequest req =
	    MLOPS__MATURITY__V1__CREATE_ORGANIZATION_REQUEST__INIT;
	Mlops__Maturity__V1__Organization o = MLOPS__MATURITY__V1__ORGANIZATION__INIT;
	size_t n = 5u << 20;
	char *big = malloc(n + 1);

	(void)state;
	if (!tenv_available())
		skip();
	memset(big, 'x', n);
	big[n] = '\0';
	o.description = big;
	req.organization = &o;
	req.organization_id = "huge-org";
	itest_call("admin", "/mlops.maturity.v1.OrganizationService/CreateOrganization", &req, NULL,
	           GRPC_STATUS_RESOURCE_EXHAUSTED);
	free(big);
	/* The server keeps serving. */
	whoami("admin", "spiffe://maturityd.dev/admin", true);
}

static void test_invalid_utf8(void **state)
{
	Mlops__Maturity__V1__CreateOrganizationRequest req =
	    MLOPS__MATURITY__V1__CREATE_ORGANIZATION_REQUEST__INIT;
	Mlops__Maturity__V1__Organization o = MLOPS__MATURITY__V1__ORGANIZATION__INIT;

	(void)state;
	if (!tenv_available())
		skip();
	o.display_name = "bad \xc3\x28 utf8";
	req.organization = &o;
	req.organization_id = "utf8-org";
	itest_expect_violation("admin", "/mlops.maturity.v1.OrganizationService/CreateOrganization",
	                       &req, "organization.display_name");
	o.display_name = "ok";
	o.description = "overlong \xc0\xaf";
	itest_expect_violation("admin", "/mlops.maturity.v1.OrganizationService/CreateOrganization",
	                       &req, "organization.description");
}

static void test_unknown_method(void **state)
{
	struct tresult r;

	(void)state;
	if (!tenv_available())
		skip();
	assert_int_equal(tclient_call_raw(itest_client("admin"), "/mlops.maturity.v1.Nope/Nothing",
	                                  "", 0, 5000, &r),
	                 GRPC_STATUS_UNIMPLEMENTED);
	tresult_cleanup(&r);
	assert_int_equal(
	    tclient_call_raw(itest_client("portal"), "/not.a.Service/At/All", "", 0, 5000, &r),
	    GRPC_STATUS_UNIMPLEMENTED);
	tresult_cleanup(&r);
}

static void test_health(void **state)
{
	Grpc__Health__V1__HealthCheckRequest req = GRPC__HEALTH__V1__HEALTH_CHECK_REQUEST__INIT;
	Grpc__Health__V1__HealthCheckResponse *r;
	static const char *const names[] = {"", "mlops.maturity.v1.OrganizationService",
	                                    "mlops.maturity.v1.ScoringService"};

	(void)state;
	if (!tenv_available())
		skip();
	for (size_t i = 0; i < 3; i++) {
		req.service = (char *)names[i];
		r = itest_call("portal", "/grpc.health.v1.Health/Check", &req,
		               &grpc__health__v1__health_check_response__descriptor,
		               GRPC_STATUS_OK);
		assert_int_equal(r->status,
		                 GRPC__HEALTH__V1__HEALTH_CHECK_RESPONSE__SERVING_STATUS__SERVING);
		protobuf_c_message_free_unpacked(&r->base, NULL);
	}
	req.service = "no.such.Service";
	itest_call("portal", "/grpc.health.v1.Health/Check", &req, NULL, GRPC_STATUS_NOT_FOUND);
}

static void test_model_catalog(void **state)
{
	Mlops__Maturity__V1__GetMaturityModelRequest req =
	    MLOPS__MATURITY__V1__GET_MATURITY_MODEL_REQUEST__INIT;
	Mlops__Maturity__V1__ListMaturityModelsRequest lreq =
	    MLOPS__MATURITY__V1__LIST_MATURITY_MODELS_REQUEST__INIT;
	Mlops__Maturity__V1__MaturityModel *m;
	Mlops__Maturity__V1__ListMaturityModelsResponse *l;
	int per_level[5] = {0};

	(void)state;
	if (!tenv_available())
		skip();
	req.name = "models/mlops-v1";
	m = itest_call("cnclient", "/mlops.maturity.v1.ModelService/GetMaturityModel", &req,
	               &mlops__maturity__v1__maturity_model__descriptor, GRPC_STATUS_OK);
	assert_string_equal(m->name, "models/mlops-v1");
	assert_int_equal(m->n_levels, 5);
	assert_string_equal(m->levels[0]->name, "No MLOps");
	assert_string_equal(m->levels[4]->name, "Full MLOps Automated Operations");
	assert_true(m->levels[0]->n_challenges > 0);
	assert_true(m->levels[2]->n_benefits > 0);
	assert_true(m->levels[4]->n_technology > 0);
	assert_int_equal(m->n_dimensions, 4);
	assert_string_equal(m->dimensions[0]->id, "people");
	assert_string_equal(m->dimensions[3]->id, "application_integration");
	assert_int_equal(m->n_practices, 30);
	assert_string_equal(m->practices[0]->id, "people.regular_communication");
	assert_string_equal(m->practices[29]->id, "application_integration.model_monitoring");
	for (size_t i = 0; i < m->n_practices; i++) {
		assert_true(m->practices[i]->title[0] != '\0');
		assert_true(m->practices[i]->description[0] != '\0');
		per_level[m->practices[i]->level]++;
	}
	assert_int_equal(per_level[0], 0);
	assert_int_equal(per_level[1], 7);
	assert_int_equal(per_level[2], 8);
	assert_int_equal(per_level[3], 9);
	assert_int_equal(per_level[4], 6);
	protobuf_c_message_free_unpacked(&m->base, NULL);

	l = itest_call("portal", "/mlops.maturity.v1.ModelService/ListMaturityModels", &lreq,
	               &mlops__maturity__v1__list_maturity_models_response__descriptor,
	               GRPC_STATUS_OK);
	assert_int_equal(l->n_models, 1);
	assert_string_equal(l->next_page_token, "");
	protobuf_c_message_free_unpacked(&l->base, NULL);

	req.name = "models/nope";
	itest_call("portal", "/mlops.maturity.v1.ModelService/GetMaturityModel", &req, NULL,
	           GRPC_STATUS_NOT_FOUND);
	lreq.page_token = "garbage";
	itest_expect_violation("portal", "/mlops.maturity.v1.ModelService/ListMaturityModels",
	                       &lreq, "page_token");
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_tls_refusals),
	    cmocka_unit_test(test_principal_forms),
	    cmocka_unit_test(test_malformed_protobuf),
	    cmocka_unit_test(test_oversized_message),
	    cmocka_unit_test(test_invalid_utf8),
	    cmocka_unit_test(test_unknown_method),
	    cmocka_unit_test(test_health),
	    cmocka_unit_test(test_model_catalog),
	};
	return cmocka_run_group_tests(tests, itest_setup, itest_teardown);
}
