/* OrganizationService over mutual TLS against a real PostgreSQL: every RPC and its errors,
 * pagination, idempotent retries, SQL metacharacters, restarts and two replicas on one database. */
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

#include "google/protobuf/empty.pb-c.h"
#include "google/protobuf/field_mask.pb-c.h"
#include "mlops/maturity/v1/organization.pb-c.h"

#define OS "/mlops.maturity.v1.OrganizationService/"
typedef Mlops__Maturity__V1__Organization Org;
#define ORG_DESC (&mlops__maturity__v1__organization__descriptor)

static Org *create(const char *who, const char *id, const char *display, const char *rid,
                   grpc_status_code want)
{
	Mlops__Maturity__V1__CreateOrganizationRequest req =
	    MLOPS__MATURITY__V1__CREATE_ORGANIZATION_REQUEST__INIT;
	Org o = MLOPS__MATURITY__V1__ORGANIZATION__INIT;
	o.display_name = (char *)display;
	req.organization = &o;
	req.organization_id = (char *)id;
	req.request_id = (char *)(rid ? rid : "");
	return itest_call(who, OS "CreateOrganization", &req, ORG_DESC, want);
}

static Org *get(const char *who, const char *name, grpc_status_code want)
{
	Mlops__Maturity__V1__GetOrganizationRequest req =
	    MLOPS__MATURITY__V1__GET_ORGANIZATION_REQUEST__INIT;
	req.name = (char *)name;
	return itest_call(who, OS "GetOrganization", &req, ORG_DESC, want);
}

static void free_org(Org *o)
{
	if (o)
		protobuf_c_message_free_unpacked(&o->base, NULL);
}

static void test_create_get_roundtrip(void **state)
{
	Mlops__Maturity__V1__CreateOrganizationRequest req =
	    MLOPS__MATURITY__V1__CREATE_ORGANIZATION_REQUEST__INIT;
	Org o = MLOPS__MATURITY__V1__ORGANIZATION__INIT;
	Mlops__Maturity__V1__Organization__LabelsEntry l1 =
	    MLOPS__MATURITY__V1__ORGANIZATION__LABELS_ENTRY__INIT;
	Mlops__Maturity__V1__Organization__LabelsEntry *labels[] = {&l1};
	Org *got, *again;

	(void)state;
	if (!tenv_available())
		skip();
	l1.key = "team";
	l1.value = "platform";
	o.display_name = "Acme ML";
	o.description = "Machine learning at Acme";
	o.n_labels = 1;
	o.labels = labels;
	o.target_level = 3;
	o.transition_policy = MLOPS__MATURITY__V1__TRANSITION_POLICY__TRANSITION_POLICY_AUTOMATIC;
	o.current_level = 4; /* output only: ignored */
	req.organization = &o;
	req.organization_id = "acme";
	got = itest_call("admin", OS "CreateOrganization", &req, ORG_DESC, GRPC_STATUS_OK);
	assert_string_equal(got->name, "organizations/acme");
	assert_string_equal(got->display_name, "Acme ML");
	assert_int_equal(got->current_level, 0);
	assert_int_equal(got->target_level, 3);
	assert_int_equal(got->transition_policy,
	                 MLOPS__MATURITY__V1__TRANSITION_POLICY__TRANSITION_POLICY_AUTOMATIC);
	assert_int_equal(got->n_labels, 1);
	assert_string_equal(got->labels[0]->key, "team");
	assert_non_null(got->create_time);
	assert_true(got->etag[0] != '\0');
	assert_string_equal(got->last_assessment, "");

	again = get("admin", "organizations/acme", GRPC_STATUS_OK);
	assert_string_equal(again->description, "Machine learning at Acme");
	assert_string_equal(again->etag, got->etag);
	free_org(again);
	free_org(got);

	/* Duplicate id. */
	free_org(create("admin", "acme", "Again", NULL, GRPC_STATUS_ALREADY_EXISTS));
	/* Default policy is MANUAL_REVIEW. */
	got = create("admin", "beta-org", "", NULL, GRPC_STATUS_OK);
	assert_int_equal(got->transition_policy,
	                 MLOPS__MATURITY__V1__TRANSITION_POLICY__TRANSITION_POLICY_MANUAL_REVIEW);
	free_org(got);
}

static void test_bad_ids_and_names(void **state)
{
	static const char *const bad[] = {
	    "a",
	    "A-org",
	    "1org",
	    "org_x",
	    "org.x",
	    "",
	    "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa"};
	Mlops__Maturity__V1__CreateOrganizationRequest req =
	    MLOPS__MATURITY__V1__CREATE_ORGANIZATION_REQUEST__INIT;
	Org o = MLOPS__MATURITY__V1__ORGANIZATION__INIT;
	Mlops__Maturity__V1__GetOrganizationRequest g =
	    MLOPS__MATURITY__V1__GET_ORGANIZATION_REQUEST__INIT;

	(void)state;
	if (!tenv_available())
		skip();
	req.organization = &o;
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		req.organization_id = (char *)bad[i];
		itest_expect_violation("admin", OS "CreateOrganization", &req, "organization_id");
	}
	/* 63 characters is the longest id. */
	free_org(create("admin", "a12345678901234567890123456789012345678901234567890123456789012",
	                "", NULL, GRPC_STATUS_OK));
	free_org(get("admin", "organizations/no-such-org", GRPC_STATUS_NOT_FOUND));
	g.name = "orgs/acme";
	itest_expect_violation("admin", OS "GetOrganization", &g, "name");
	g.name = "";
	itest_expect_violation("admin", OS "GetOrganization", &g, "name");
	/* Missing organization body. */
	req.organization = NULL;
	req.organization_id = "no-body";
	itest_expect_violation("admin", OS "CreateOrganization", &req, "organization");
}

static void test_limits(void **state)
{
	Mlops__Maturity__V1__CreateOrganizationRequest req =
	    MLOPS__MATURITY__V1__CREATE_ORGANIZATION_REQUEST__INIT;
	Org o = MLOPS__MATURITY__V1__ORGANIZATION__INIT;
	char big[4002];
	Mlops__Maturity__V1__Organization__LabelsEntry entries[65];
	Mlops__Maturity__V1__Organization__LabelsEntry *lp[65];
	char keys[65][8];

	(void)state;
	if (!tenv_available())
		skip();
	req.organization = &o;
	req.organization_id = "limits";
	memset(big, 'x', sizeof(big));
	big[201] = '\0';
	o.display_name = big;
	itest_expect_violation("admin", OS "CreateOrganization", &req, "organization.display_name");
	big[200] = '\0';
	o.display_name = big; /* exactly 200 bytes is fine */
	for (int i = 0; i < 65; i++) {
		mlops__maturity__v1__organization__labels_entry__init(&entries[i]);
		snprintf(keys[i], sizeof(keys[i]), "k%d", i);
		entries[i].key = keys[i];
		entries[i].value = "v";
		lp[i] = &entries[i];
	}
	o.labels = lp;
	o.n_labels = 65;
	itest_expect_violation("admin", OS "CreateOrganization", &req, "organization.labels");
	o.n_labels = 1;
	entries[0].key = "Bad Key";
	itest_expect_violation("admin", OS "CreateOrganization", &req, "organization.labels");
	entries[0].key = "ok";
	o.target_level = 5;
	itest_expect_violation("admin", OS "CreateOrganization", &req, "organization.target_level");
	o.target_level = 0;
	o.transition_policy = 7;
	itest_expect_violation("admin", OS "CreateOrganization", &req,
	                       "organization.transition_policy");
	o.transition_policy = 0;
	req.request_id = "not-a-uuid";
	itest_expect_violation("admin", OS "CreateOrganization", &req, "request_id");
	req.request_id = "";
	/* Nothing above was written. */
	free_org(get("admin", "organizations/limits", GRPC_STATUS_NOT_FOUND));
	Org *ok = itest_call("admin", OS "CreateOrganization", &req, ORG_DESC, GRPC_STATUS_OK);
	assert_int_equal(strlen(ok->display_name), 200);
	free_org(ok);
}

static size_t count_all(const char *who, const char *prefix)
{
	Mlops__Maturity__V1__ListOrganizationsRequest req =
	    MLOPS__MATURITY__V1__LIST_ORGANIZATIONS_REQUEST__INIT;
	char token[1024] = "";
	size_t n = 0;

	req.page_size = 1000;
	do {
		req.page_token = token;
		Mlops__Maturity__V1__ListOrganizationsResponse *r = itest_call(
		    who, OS "ListOrganizations", &req,
		    &mlops__maturity__v1__list_organizations_response__descriptor, GRPC_STATUS_OK);
		for (size_t i = 0; i < r->n_organizations; i++)
			if (strncmp(r->organizations[i]->name, prefix, strlen(prefix)) == 0)
				n++;
		snprintf(token, sizeof(token), "%s", r->next_page_token);
		protobuf_c_message_free_unpacked(&r->base, NULL);
	} while (token[0] != '\0');
	return n;
}

static void test_request_id_idempotent(void **state)
{
	const char *rid = "0F8E4C1A-1111-4ABC-8DEF-0123456789AB";
	Org *a, *b;

	(void)state;
	if (!tenv_available())
		skip();
	a = create("admin", "idem-org", "First", rid, GRPC_STATUS_OK);
	/* Same request id, any case: the first result, nothing new. */
	b = create("admin", "idem-org", "First", "0f8e4c1a-1111-4abc-8def-0123456789ab",
	           GRPC_STATUS_OK);
	assert_string_equal(a->name, b->name);
	assert_string_equal(a->etag, b->etag);
	free_org(a);
	free_org(b);
	assert_int_equal(count_all("admin", "organizations/idem-org"), 1);
}

static void test_pagination(void **state)
{
	Mlops__Maturity__V1__ListOrganizationsRequest req =
	    MLOPS__MATURITY__V1__LIST_ORGANIZATIONS_REQUEST__INIT;
	char token[1024] = "", prev[128] = "", id[32];
	int seen = 0, pages = 0;

	(void)state;
	if (!tenv_available())
		skip();
	for (int i = 0; i < 120; i++) {
		snprintf(id, sizeof(id), "page-%03d", i);
		free_org(create("admin", id, id, NULL, GRPC_STATUS_OK));
	}
	req.page_size = 50;
	do {
		req.page_token = token;
		Mlops__Maturity__V1__ListOrganizationsResponse *r = itest_call(
		    "admin", OS "ListOrganizations", &req,
		    &mlops__maturity__v1__list_organizations_response__descriptor, GRPC_STATUS_OK);
		assert_true(r->n_organizations <= 50);
		for (size_t i = 0; i < r->n_organizations; i++) {
			const char *name = r->organizations[i]->name;
			/* Ordered by name, no duplicates. */
			assert_true(strcmp(prev, name) < 0);
			snprintf(prev, sizeof(prev), "%s", name);
			if (strncmp(name, "organizations/page-", 19) == 0) {
				char want[64];
				snprintf(want, sizeof(want), "organizations/page-%03d", seen);
				assert_string_equal(name, want); /* no gaps */
				seen++;
			}
		}
		snprintf(token, sizeof(token), "%s", r->next_page_token);
		protobuf_c_message_free_unpacked(&r->base, NULL);
		pages++;
	} while (token[0] != '\0');
	assert_int_equal(seen, 120);
	assert_true(pages >= 3);

	req.page_token = "garbage!!";
	itest_expect_violation("admin", OS "ListOrganizations", &req, "page_token");
	req.page_token = "";
	req.page_size = -1;
	itest_expect_violation("admin", OS "ListOrganizations", &req, "page_size");
}

static void test_update_and_etag(void **state)
{
	Mlops__Maturity__V1__UpdateOrganizationRequest req =
	    MLOPS__MATURITY__V1__UPDATE_ORGANIZATION_REQUEST__INIT;
	Google__Protobuf__FieldMask mask = GOOGLE__PROTOBUF__FIELD_MASK__INIT;
	char *paths[] = {"display_name", "target_level"};
	Org o = MLOPS__MATURITY__V1__ORGANIZATION__INIT;
	Org *created, *updated, *got;
	char old_etag[128];

	(void)state;
	if (!tenv_available())
		skip();
	created = create("admin", "upd-org", "Before", NULL, GRPC_STATUS_OK);
	snprintf(old_etag, sizeof(old_etag), "%s", created->etag);
	o.name = "organizations/upd-org";
	o.display_name = "After";
	o.description = "not in the mask: unchanged";
	o.target_level = 2;
	o.etag = created->etag;
	mask.n_paths = 2;
	mask.paths = paths;
	req.organization = &o;
	req.update_mask = &mask;
	updated = itest_call("admin", OS "UpdateOrganization", &req, ORG_DESC, GRPC_STATUS_OK);
	assert_string_equal(updated->display_name, "After");
	assert_string_equal(updated->description, "");
	assert_int_equal(updated->target_level, 2);
	assert_string_not_equal(updated->etag, old_etag);

	/* The old etag is stale now. */
	o.etag = old_etag;
	free_org(itest_call("admin", OS "UpdateOrganization", &req, ORG_DESC, GRPC_STATUS_ABORTED));
	got = get("admin", "organizations/upd-org", GRPC_STATUS_OK);
	assert_string_equal(got->display_name, "After");
	free_org(got);

	/* Unknown and output-only paths. */
	char *badpaths[] = {"current_level"};
	mask.paths = badpaths;
	mask.n_paths = 1;
	o.etag = "";
	itest_expect_violation("admin", OS "UpdateOrganization", &req, "update_mask.paths[0]");
	/* Unknown organization. */
	mask.paths = paths;
	o.name = "organizations/no-such-org";
	free_org(
	    itest_call("admin", OS "UpdateOrganization", &req, ORG_DESC, GRPC_STATUS_NOT_FOUND));
	free_org(created);
	free_org(updated);
}

static void test_delete(void **state)
{
	Mlops__Maturity__V1__DeleteOrganizationRequest req =
	    MLOPS__MATURITY__V1__DELETE_ORGANIZATION_REQUEST__INIT;
	Org *o;

	(void)state;
	if (!tenv_available())
		skip();
	o = create("admin", "del-org", "Doomed", NULL, GRPC_STATUS_OK);
	req.name = "organizations/del-org";
	req.etag = "\"stale\"";
	itest_call("admin", OS "DeleteOrganization", &req, NULL, GRPC_STATUS_ABORTED);
	req.etag = o->etag;
	void *e = itest_call("admin", OS "DeleteOrganization", &req,
	                     &google__protobuf__empty__descriptor, GRPC_STATUS_OK);
	protobuf_c_message_free_unpacked(e, NULL);
	free_org(get("admin", "organizations/del-org", GRPC_STATUS_NOT_FOUND));
	itest_call("admin", OS "DeleteOrganization", &req, NULL, GRPC_STATUS_NOT_FOUND);
	free_org(o);
}

static void test_sql_metacharacters_verbatim(void **state)
{
	const char *evil = "Robert'); DROP TABLE organizations;-- \\ %_ $1 \"q\" ü";
	Org *o, *g;

	(void)state;
	if (!tenv_available())
		skip();
	o = create("admin", "evil-org", evil, NULL, GRPC_STATUS_OK);
	g = get("admin", "organizations/evil-org", GRPC_STATUS_OK);
	assert_string_equal(g->display_name, evil);
	free_org(o);
	free_org(g);
	assert_true(count_all("admin", "organizations/") > 0);
}

static void test_permissions_before_bindings(void **state)
{
	Mlops__Maturity__V1__ListOrganizationsRequest req =
	    MLOPS__MATURITY__V1__LIST_ORGANIZATIONS_REQUEST__INIT;
	Mlops__Maturity__V1__ListOrganizationsResponse *r;

	(void)state;
	if (!tenv_available())
		skip();
	/* An unbound principal may not create or read organizations; its list is empty. */
	free_org(create("portal", "portal-org", "", NULL, GRPC_STATUS_PERMISSION_DENIED));
	free_org(get("portal", "organizations/acme", GRPC_STATUS_PERMISSION_DENIED));
	r = itest_call("portal", OS "ListOrganizations", &req,
	               &mlops__maturity__v1__list_organizations_response__descriptor,
	               GRPC_STATUS_OK);
	assert_int_equal(r->n_organizations, 0);
	protobuf_c_message_free_unpacked(&r->base, NULL);
}

static void test_restart_and_two_replicas(void **state)
{
	struct tserver second;
	Mlops__Maturity__V1__ListOrganizationsRequest req =
	    MLOPS__MATURITY__V1__LIST_ORGANIZATIONS_REQUEST__INIT;
	Mlops__Maturity__V1__ListOrganizationsResponse *r;
	struct tresult res;
	ProtobufCMessage *resp = NULL;
	struct tclient *c2;
	Org *o;

	(void)state;
	if (!tenv_available())
		skip();
	free_org(create("admin", "durable-org", "Survives", NULL, GRPC_STATUS_OK));
	/* Restart: the data is in PostgreSQL, not in the process. The cached clients keep their
	 * channels and reconnect by themselves. */
	assert_int_equal(tserver_stop(&g_srv), 0);
	assert_int_equal(tserver_restart(&g_srv, NULL), 0);
	o = get("admin", "organizations/durable-org", GRPC_STATUS_OK);
	assert_string_equal(o->display_name, "Survives");
	free_org(o);

	/* A second replica on the same database sees the same data and takes the first one's
	 * page tokens. */
	assert_int_equal(tserver_start(&second, g_dburl, NULL), 0);
	c2 = tserver_client(&second, "admin");
	req.page_size = 2;
	r = itest_call("admin", OS "ListOrganizations", &req,
	               &mlops__maturity__v1__list_organizations_response__descriptor,
	               GRPC_STATUS_OK);
	assert_true(r->next_page_token[0] != '\0');
	req.page_token = r->next_page_token;
	assert_int_equal(tclient_call(c2, OS "ListOrganizations", &req.base,
	                              &mlops__maturity__v1__list_organizations_response__descriptor,
	                              &resp, 10000, &res),
	                 GRPC_STATUS_OK);
	Mlops__Maturity__V1__ListOrganizationsResponse *r2 = (void *)resp;
	assert_int_equal(r2->n_organizations, 2);
	assert_true(strcmp(r2->organizations[0]->name, r->organizations[1]->name) > 0);
	protobuf_c_message_free_unpacked(resp, NULL);
	tresult_cleanup(&res);
	protobuf_c_message_free_unpacked(&r->base, NULL);

	Mlops__Maturity__V1__GetOrganizationRequest g =
	    MLOPS__MATURITY__V1__GET_ORGANIZATION_REQUEST__INIT;
	g.name = "organizations/durable-org";
	assert_int_equal(
	    tclient_call(c2, OS "GetOrganization", &g.base, ORG_DESC, &resp, 10000, &res),
	    GRPC_STATUS_OK);
	protobuf_c_message_free_unpacked(resp, NULL);
	tresult_cleanup(&res);
	tclient_free(c2);
	assert_int_equal(tserver_stop(&second), 0);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_create_get_roundtrip),
	    cmocka_unit_test(test_bad_ids_and_names),
	    cmocka_unit_test(test_limits),
	    cmocka_unit_test(test_request_id_idempotent),
	    cmocka_unit_test(test_pagination),
	    cmocka_unit_test(test_update_and_etag),
	    cmocka_unit_test(test_delete),
	    cmocka_unit_test(test_sql_metacharacters_verbatim),
	    cmocka_unit_test(test_permissions_before_bindings),
	    cmocka_unit_test(test_restart_and_two_replicas),
	};
	return cmocka_run_group_tests(tests, itest_setup, itest_teardown);
}
