/* The engine authorizes every call from its row of the method table (service/svc_methods.def),
 * before the handler runs, for every row at once rather than a sample: an unbound caller gets
 * PERMISSION_DENIED on every guarded method, with a well-formed name of an organization that does
 * not exist and every other field empty (so neither storage's NOT_FOUND nor the handler's own
 * validation answers first), each refusal audited under its method; and a malformed resource name
 * is INVALID_ARGUMENT on the row's field whoever calls (a name is checked before the caller). The
 * requests are built from the row and the method's input type alone. */
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

#include "grpc/health/v1/health.pb-c.h"
#include "grpc/reflection/v1/reflection.pb-c.h"
#include "grpc/reflection/v1alpha/reflection.pb-c.h"
#include "mlops/maturity/v1/access.pb-c.h"
#include "mlops/maturity/v1/assessment.pb-c.h"
#include "mlops/maturity/v1/event.pb-c.h"
#include "mlops/maturity/v1/evidence.pb-c.h"
#include "mlops/maturity/v1/gate.pb-c.h"
#include "mlops/maturity/v1/model.pb-c.h"
#include "mlops/maturity/v1/organization.pb-c.h"
#include "mlops/maturity/v1/reporting.pb-c.h"
#include "mlops/maturity/v1/scoring.pb-c.h"
#include "mlops/maturity/v1/transition.pb-c.h"
#include "svc_methods.h"

#define UNBOUND "portal" /* a valid certificate without any role binding */
#define UNBOUND_PRINCIPAL "spiffe://maturityd.dev/portal"
#define NO_ORG "no-such-org"
#define SOME_ID "0f8fad5b-d9cb-469f-a165-70867728950e"

static const ProtobufCServiceDescriptor *const services[] = {
    &mlops__maturity__v1__model_service__descriptor,
    &mlops__maturity__v1__organization_service__descriptor,
    &mlops__maturity__v1__assessment_service__descriptor,
    &mlops__maturity__v1__scoring_service__descriptor,
    &mlops__maturity__v1__transition_service__descriptor,
    &mlops__maturity__v1__reporting_service__descriptor,
    &mlops__maturity__v1__access_service__descriptor,
    &mlops__maturity__v1__evidence_service__descriptor,
    &mlops__maturity__v1__gate_service__descriptor,
    &mlops__maturity__v1__event_service__descriptor,
    &grpc__health__v1__health__descriptor,
    &grpc__reflection__v1__server_reflection__descriptor,
    &grpc__reflection__v1alpha__server_reflection__descriptor,
};

static const ProtobufCMessageDescriptor *input_of(const char *path)
{
	for (size_t s = 0; s < sizeof(services) / sizeof(services[0]); s++) {
		size_t len = strlen(services[s]->name);
		if (strncmp(path + 1, services[s]->name, len) != 0 || path[1 + len] != '/')
			continue;
		const ProtobufCMethodDescriptor *md =
		    protobuf_c_service_descriptor_get_method_by_name(services[s], path + 2 + len);
		return md != NULL ? md->input : NULL;
	}
	return NULL;
}

/* A request of `desc`, every field at its default, with `value` at `path` ("a" or "a.b": the
 * message field a is created); up to 4 messages in `mem` for the caller to free. */
static ProtobufCMessage *request(const ProtobufCMessageDescriptor *desc, const char *path,
                                 const char *value, void *mem[4], size_t *n_mem)
{
	ProtobufCMessage *msg = calloc(1, desc->sizeof_message), *at;
	const ProtobufCFieldDescriptor *f;
	char name[64];

	assert_non_null(msg);
	protobuf_c_message_init(desc, msg);
	mem[(*n_mem)++] = msg;
	at = msg;
	while (path != NULL) {
		const char *dot = strchr(path, '.');
		size_t len = dot != NULL ? (size_t)(dot - path) : strlen(path);
		assert_true(len < sizeof(name));
		memcpy(name, path, len);
		name[len] = '\0';
		f = protobuf_c_message_descriptor_get_field_by_name(at->descriptor, name);
		assert_non_null(f);
		if (dot == NULL) {
			assert_int_equal(f->type, PROTOBUF_C_TYPE_STRING);
			*(const char **)((char *)at + f->offset) = value;
			break;
		}
		assert_int_equal(f->type, PROTOBUF_C_TYPE_MESSAGE);
		const ProtobufCMessageDescriptor *sub = f->descriptor;
		ProtobufCMessage *child = calloc(1, sub->sizeof_message);
		assert_non_null(child);
		protobuf_c_message_init(sub, child);
		mem[(*n_mem)++] = child;
		*(ProtobufCMessage **)((char *)at + f->offset) = child;
		at = child;
		path = dot + 1;
	}
	return msg;
}

/* A well-formed name for the row's resource on organization NO_ORG. */
static void good_name(const struct svc_rpc *row, char *out, size_t size)
{
	if (row->collection != NULL)
		snprintf(out, size, "organizations/%s/%s/%s", NO_ORG, row->collection, SOME_ID);
	else
		snprintf(out, size, "organizations/%s", NO_ORG);
}

static void test_every_guarded_row_refused_first(void **state)
{
	size_t n;
	const struct svc_rpc *rows = svc_rpcs(&n);
	Mlops__Maturity__V1__ListAuditEventsRequest areq =
	    MLOPS__MATURITY__V1__LIST_AUDIT_EVENTS_REQUEST__INIT;
	Mlops__Maturity__V1__ListAuditEventsResponse *audit;
	size_t guarded = 0;

	(void)state;
	if (!tenv_available())
		skip();
	for (size_t i = 0; i < n; i++) {
		const struct svc_rpc *row = &rows[i];
		const ProtobufCMessageDescriptor *in = input_of(row->rule.method);
		void *mem[4];
		size_t n_mem = 0;
		char name[160];

		if (row->rule.perm == AUTH_PERM_ANY)
			continue;
		assert_non_null(in);
		good_name(row, name, sizeof(name));
		ProtobufCMessage *req = request(in, row->field, name, mem, &n_mem);
		void *resp =
		    itest_call(UNBOUND, row->rule.method, req, NULL, GRPC_STATUS_PERMISSION_DENIED);
		assert_null(resp);
		for (size_t k = 0; k < n_mem; k++)
			free(mem[k]);
		guarded++;
	}
	assert_true(guarded >= 25);

	/* Each refusal is in the audit log under its method. */
	areq.principal = UNBOUND_PRINCIPAL;
	areq.page_size = 1000;
	audit = itest_call("admin", "/mlops.maturity.v1.AccessService/ListAuditEvents", &areq,
	                   &mlops__maturity__v1__list_audit_events_response__descriptor,
	                   GRPC_STATUS_OK);
	assert_non_null(audit);
	for (size_t i = 0; i < n; i++) {
		bool found = false;
		if (rows[i].rule.perm == AUTH_PERM_ANY)
			continue;
		for (size_t k = 0; k < audit->n_audit_events && !found; k++) {
			const Mlops__Maturity__V1__AuditEvent *e = audit->audit_events[k];
			found = strcmp(e->method, rows[i].rule.method) == 0 && !e->allowed &&
			        e->code == GRPC_STATUS_PERMISSION_DENIED;
		}
		if (!found)
			fail_msg("no audited refusal of %s", rows[i].rule.method);
	}
	protobuf_c_message_free_unpacked(&audit->base, NULL);
}

static void test_malformed_names_invalid_whoever_calls(void **state)
{
	size_t n;
	const struct svc_rpc *rows = svc_rpcs(&n);
	size_t named = 0;

	(void)state;
	if (!tenv_available())
		skip();
	for (size_t i = 0; i < n; i++) {
		const struct svc_rpc *row = &rows[i];
		void *mem[4];
		size_t n_mem = 0;

		if (row->field == NULL)
			continue;
		ProtobufCMessage *req = request(input_of(row->rule.method), row->field,
		                                "organizations/Not_An_Id", mem, &n_mem);
		itest_expect_violation(UNBOUND, row->rule.method, req, row->field);
		for (size_t k = 0; k < n_mem; k++)
			free(mem[k]);
		named++;
	}
	assert_true(named >= 20);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_every_guarded_row_refused_first),
	    cmocka_unit_test(test_malformed_names_invalid_whoever_calls),
	};
	return cmocka_run_group_tests(tests, itest_setup, itest_teardown);
}
