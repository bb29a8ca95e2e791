/* Unit tests of ctl_json.c, the proto3 JSON mapping over protobuf-c descriptors: every field
 * kind both ways (64-bit integers as strings, enums by name, Timestamp, Duration, FieldMask,
 * Empty, bytes, maps, oneofs, repeated and nested messages), defaults omitted, and the errors
 * (unknown field, wrong type, out of range) naming the field. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "ctl_json.h"
#include "google/protobuf/descriptor.pb-c.h"
#include "google/protobuf/empty.pb-c.h"
#include "mlops/maturity/v1/assessment.pb-c.h"
#include "mlops/maturity/v1/event.pb-c.h"
#include "mlops/maturity/v1/gate.pb-c.h"
#include "mlops/maturity/v1/organization.pb-c.h"
#include "mlops/maturity/v1/reporting.pb-c.h"
#include "mlops/maturity/v1/scoring.pb-c.h"

/* Parses text into a message of desc; fails the test on a conversion error. */
static void *parse(const ProtobufCMessageDescriptor *desc, const char *text)
{
	ProtobufCMessage *m = NULL;
	char err[512] = "";

	if (ctl_json_parse_message(desc, text, &m, err, sizeof(err)) != 0)
		fail_msg("parse %s: %s", text, err);
	return m;
}

/* Expects a conversion error containing want. */
static void parse_fails(const ProtobufCMessageDescriptor *desc, const char *text, const char *want)
{
	ProtobufCMessage *m = (ProtobufCMessage *)1;
	char err[512] = "";

	assert_int_equal(ctl_json_parse_message(desc, text, &m, err, sizeof(err)), -1);
	assert_null(m);
	if (strstr(err, want) == NULL)
		fail_msg("error \"%s\" does not contain \"%s\"", err, want);
}

/* The compact JSON of msg, compared with want. */
static void prints(const void *msg, const char *want)
{
	json_t *j = ctl_json_from_message(msg);
	char *s;

	assert_non_null(j);
	s = json_dumps(j, JSON_COMPACT | CTL_JSON_DUMP_FLAGS);
	assert_string_equal(s, want);
	free(s);
	json_decref(j);
}

static void test_message_fields_maps_enums_both_names(void **state)
{
	Mlops__Maturity__V1__Organization *o = parse(
	    &mlops__maturity__v1__organization__descriptor,
	    "{\"name\":\"organizations/acme\",\"display_name\":\"Acme\",\"targetLevel\":\"3\","
	    "\"labels\":{\"team\":\"ml\",\"tier\":\"1\"},"
	    "\"transitionPolicy\":\"TRANSITION_POLICY_AUTOMATIC\","
	    "\"createTime\":\"2026-01-02T03:04:05Z\"}");

	assert_string_equal(o->name, "organizations/acme");
	assert_string_equal(o->display_name, "Acme");
	assert_int_equal(o->target_level, 3);
	assert_int_equal(o->transition_policy,
	                 MLOPS__MATURITY__V1__TRANSITION_POLICY__TRANSITION_POLICY_AUTOMATIC);
	assert_int_equal(o->n_labels, 2);
	assert_string_equal(o->labels[0]->key, "team");
	assert_string_equal(o->labels[0]->value, "ml");
	assert_non_null(o->create_time);
	assert_int_equal(o->create_time->seconds, 1767323045);
	prints(o, "{\"name\":\"organizations/acme\",\"displayName\":\"Acme\","
	          "\"labels\":{\"team\":\"ml\",\"tier\":\"1\"},\"targetLevel\":3,"
	          "\"transitionPolicy\":\"TRANSITION_POLICY_AUTOMATIC\","
	          "\"createTime\":\"2026-01-02T03:04:05Z\"}");
	protobuf_c_message_free_unpacked(&o->base, NULL);
}

static void test_enum_by_number_and_unknown_number(void **state)
{
	Mlops__Maturity__V1__Organization *o =
	    parse(&mlops__maturity__v1__organization__descriptor, "{\"transitionPolicy\":1}");

	assert_int_equal(o->transition_policy, 1);
	prints(o, "{\"transitionPolicy\":\"TRANSITION_POLICY_MANUAL_REVIEW\"}");
	o->transition_policy = 42; /* newer than this client: printed as a number */
	prints(o, "{\"transitionPolicy\":42}");
	protobuf_c_message_free_unpacked(&o->base, NULL);
	parse_fails(&mlops__maturity__v1__organization__descriptor,
	            "{\"transitionPolicy\":\"SOMETIMES\"}",
	            "transitionPolicy: \"SOMETIMES\" is not a value of "
	            "mlops.maturity.v1.TransitionPolicy");
}

static void test_defaults_are_omitted(void **state)
{
	Mlops__Maturity__V1__Organization o = MLOPS__MATURITY__V1__ORGANIZATION__INIT;

	prints(&o, "{}");
}

static void test_int64_as_strings_both_ways(void **state)
{
	Mlops__Maturity__V1__PortfolioSummary *p = parse(
	    &mlops__maturity__v1__portfolio_summary__descriptor,
	    "{\"organizationCount\":\"9007199254740993\",\"organizationsPerLevel\":[1,\"2\",0],"
	    "\"upgrades\":3,\"meanMaturityIndex\":1.5}");

	assert_int_equal(p->organization_count, INT64_C(9007199254740993));
	assert_int_equal(p->n_organizations_per_level, 3);
	assert_int_equal(p->organizations_per_level[1], 2);
	assert_true(p->mean_maturity_index == 1.5);
	prints(p, "{\"organizationCount\":\"9007199254740993\","
	          "\"organizationsPerLevel\":[\"1\",\"2\",\"0\"],\"upgrades\":\"3\","
	          "\"meanMaturityIndex\":1.5}");
	protobuf_c_message_free_unpacked(&p->base, NULL);
	parse_fails(&mlops__maturity__v1__portfolio_summary__descriptor, "{\"upgrades\":\"12x\"}",
	            "upgrades: expected an integer");
	parse_fails(&mlops__maturity__v1__portfolio_summary__descriptor,
	            "{\"organizationsPerLevel\":[1,true]}",
	            "organizationsPerLevel[1]: expected an integer");
}

static void test_int32_range_and_type(void **state)
{
	parse_fails(&mlops__maturity__v1__organization__descriptor, "{\"targetLevel\":4294967296}",
	            "targetLevel: 4294967296 is out of range");
	parse_fails(&mlops__maturity__v1__organization__descriptor, "{\"targetLevel\":1.5}",
	            "targetLevel: expected an integer");
	parse_fails(&mlops__maturity__v1__organization__descriptor, "{\"displayName\":3}",
	            "displayName: expected a string");
}

static void test_uint64_double_bool(void **state)
{
	Google__Protobuf__UninterpretedOption *u =
	    parse(&google__protobuf__uninterpreted_option__descriptor,
	          "{\"positiveIntValue\":\"18446744073709551615\",\"negativeIntValue\":\"-5\","
	          "\"doubleValue\":\"NaN\"}");

	assert_true(u->has_positive_int_value);
	assert_true(u->positive_int_value == UINT64_MAX);
	assert_int_equal(u->negative_int_value, -5);
	assert_true(isnan(u->double_value));
	prints(u, "{\"positiveIntValue\":\"18446744073709551615\",\"negativeIntValue\":\"-5\","
	          "\"doubleValue\":\"NaN\"}");
	protobuf_c_message_free_unpacked(&u->base, NULL);

	Mlops__Maturity__V1__DeleteOrganizationRequest *d =
	    parse(&mlops__maturity__v1__delete_organization_request__descriptor,
	          "{\"name\":\"organizations/a\",\"force\":true}");
	assert_true(d->force);
	prints(d, "{\"name\":\"organizations/a\",\"force\":true}");
	protobuf_c_message_free_unpacked(&d->base, NULL);
	parse_fails(&mlops__maturity__v1__delete_organization_request__descriptor,
	            "{\"force\":\"yes\"}", "force: expected true or false");
}

static void test_timestamp_rfc3339(void **state)
{
	Mlops__Maturity__V1__ExportAssessmentsRequest *r =
	    parse(&mlops__maturity__v1__export_assessments_request__descriptor,
	          "{\"updatedAfter\":\"2026-01-02T04:04:05.5+01:00\"}");

	assert_int_equal(r->updated_after->seconds, 1767323045);
	assert_int_equal(r->updated_after->nanos, 500000000);
	prints(r, "{\"updatedAfter\":\"2026-01-02T03:04:05.500Z\"}");
	r->updated_after->nanos = 1;
	prints(r, "{\"updatedAfter\":\"2026-01-02T03:04:05.000000001Z\"}");
	r->updated_after->nanos = 123456000;
	prints(r, "{\"updatedAfter\":\"2026-01-02T03:04:05.123456Z\"}");
	protobuf_c_message_free_unpacked(&r->base, NULL);
	parse_fails(&mlops__maturity__v1__export_assessments_request__descriptor,
	            "{\"updatedAfter\":\"yesterday\"}",
	            "updatedAfter: \"yesterday\" is not an RFC 3339");
	parse_fails(&mlops__maturity__v1__export_assessments_request__descriptor,
	            "{\"updatedAfter\":\"2026-01-02T03:04:05\"}", "is not an RFC 3339");
}

static void test_duration_seconds_string(void **state)
{
	Mlops__Maturity__V1__GateRequirement *g =
	    parse(&mlops__maturity__v1__gate_requirement__descriptor,
	          "{\"maxEvidenceAge\":\"1.5s\",\"minDimensionLevels\":{\"people\":2,\"model_"
	          "release\":\"1\"},"
	          "\"requiredPracticeIds\":[\"a\",\"b\"],\"live\":true}");

	assert_int_equal(g->max_evidence_age->seconds, 1);
	assert_int_equal(g->max_evidence_age->nanos, 500000000);
	assert_int_equal(g->n_min_dimension_levels, 2);
	assert_int_equal(g->min_dimension_levels[1]->value, 1);
	prints(
	    g,
	    "{\"minDimensionLevels\":{\"people\":2,\"model_release\":1},"
	    "\"requiredPracticeIds\":[\"a\",\"b\"],\"maxEvidenceAge\":\"1.500s\",\"live\":true}");
	g->max_evidence_age->seconds = -3;
	g->max_evidence_age->nanos = 0;
	prints(g,
	       "{\"minDimensionLevels\":{\"people\":2,\"model_release\":1},"
	       "\"requiredPracticeIds\":[\"a\",\"b\"],\"maxEvidenceAge\":\"-3s\",\"live\":true}");
	protobuf_c_message_free_unpacked(&g->base, NULL);
	parse_fails(&mlops__maturity__v1__gate_requirement__descriptor,
	            "{\"maxEvidenceAge\":\"7d\"}", "maxEvidenceAge: \"7d\" is not a duration");
	parse_fails(&mlops__maturity__v1__gate_requirement__descriptor,
	            "{\"minDimensionLevels\":{\"people\":\"x\"}}",
	            "minDimensionLevels[people]: expected an integer");
}

static void test_field_mask_comma_camel(void **state)
{
	Mlops__Maturity__V1__UpdateOrganizationRequest *u =
	    parse(&mlops__maturity__v1__update_organization_request__descriptor,
	          "{\"organization\":{\"name\":\"organizations/a\"},"
	          "\"updateMask\":\"displayName,targetLevel,labels\"}");

	assert_int_equal(u->update_mask->n_paths, 3);
	assert_string_equal(u->update_mask->paths[0], "display_name");
	assert_string_equal(u->update_mask->paths[1], "target_level");
	assert_string_equal(u->update_mask->paths[2], "labels");
	prints(u, "{\"organization\":{\"name\":\"organizations/a\"},"
	          "\"updateMask\":\"displayName,targetLevel,labels\"}");
	protobuf_c_message_free_unpacked(&u->base, NULL);
}

static void test_empty(void **state)
{
	Google__Protobuf__Empty *e = parse(&google__protobuf__empty__descriptor, "{}");

	prints(e, "{}");
	protobuf_c_message_free_unpacked(&e->base, NULL);
	parse_fails(&google__protobuf__empty__descriptor, "{\"x\":1}",
	            "unknown field \"x\" in google.protobuf.Empty");
}

static void test_bytes_base64_standard_and_url_safe(void **state)
{
	Mlops__Maturity__V1__Envelope *e =
	    parse(&mlops__maturity__v1__envelope__descriptor,
	          "{\"payloadType\":\"application/vnd.in-toto+json\",\"payload\":\"aGVsbG8=\","
	          "\"signatures\":[{\"keyid\":\"k\",\"sig\":\"-_8\"}]}");

	assert_int_equal(e->payload.len, 5);
	assert_memory_equal(e->payload.data, "hello", 5);
	assert_int_equal(e->signatures[0]->sig.len, 2);
	assert_int_equal(e->signatures[0]->sig.data[0], 0xfb);
	assert_int_equal(e->signatures[0]->sig.data[1], 0xff);
	prints(e, "{\"payloadType\":\"application/vnd.in-toto+json\",\"payload\":\"aGVsbG8=\","
	          "\"signatures\":[{\"keyid\":\"k\",\"sig\":\"+/8=\"}]}");
	protobuf_c_message_free_unpacked(&e->base, NULL);
	parse_fails(&mlops__maturity__v1__envelope__descriptor, "{\"payload\":\"a$b=\"}",
	            "payload: not valid base64");
}

static void test_oneof_set_once_and_printed_when_default(void **state)
{
	Mlops__Maturity__V1__Event *ev =
	    parse(&mlops__maturity__v1__event__descriptor,
	          "{\"type\":\"EVENT_TYPE_ORGANIZATION_CREATED\","
	          "\"organizationSnapshot\":{\"name\":\"organizations/a\"}}");

	assert_int_equal(ev->snapshot_case,
	                 MLOPS__MATURITY__V1__EVENT__SNAPSHOT_ORGANIZATION_SNAPSHOT);
	assert_string_equal(ev->organization_snapshot->name, "organizations/a");
	prints(ev, "{\"type\":\"EVENT_TYPE_ORGANIZATION_CREATED\","
	           "\"organizationSnapshot\":{\"name\":\"organizations/a\"}}");
	protobuf_c_message_free_unpacked(&ev->base, NULL);
	parse_fails(&mlops__maturity__v1__event__descriptor,
	            "{\"organizationSnapshot\":{},\"assessmentSnapshot\":{}}",
	            "assessmentSnapshot: another field of the same oneof is already set");

	/* proto3 `optional` is a oneof of one: an explicit 0 is kept and printed. */
	Mlops__Maturity__V1__GetRoadmapRequest *r =
	    parse(&mlops__maturity__v1__get_roadmap_request__descriptor, "{\"targetLevel\":0}");
	assert_int_equal(r->_target_level_case,
	                 MLOPS__MATURITY__V1__GET_ROADMAP_REQUEST___TARGET_LEVEL_TARGET_LEVEL);
	prints(r, "{\"targetLevel\":0}");
	protobuf_c_message_free_unpacked(&r->base, NULL);
	r = parse(&mlops__maturity__v1__get_roadmap_request__descriptor, "{}");
	prints(r, "{}");
	protobuf_c_message_free_unpacked(&r->base, NULL);
}

static void test_repeated_nested_messages(void **state)
{
	Mlops__Maturity__V1__UpdateAnswersRequest *u =
	    parse(&mlops__maturity__v1__update_answers_request__descriptor,
	          "{\"name\":\"organizations/a/assessments/1\",\"answers\":["
	          "{\"practice_id\":\"p1\",\"status\":\"PRACTICE_STATUS_IMPLEMENTED\"},"
	          "{\"practiceId\":\"p2\",\"status\":2,\"note\":\"half\"}]}");

	assert_int_equal(u->n_answers, 2);
	assert_string_equal(u->answers[0]->practice_id, "p1");
	assert_int_equal(u->answers[1]->status,
	                 MLOPS__MATURITY__V1__PRACTICE_STATUS__PRACTICE_STATUS_PARTIAL);
	prints(
	    u,
	    "{\"name\":\"organizations/a/assessments/1\",\"answers\":["
	    "{\"practiceId\":\"p1\",\"status\":\"PRACTICE_STATUS_IMPLEMENTED\"},"
	    "{\"practiceId\":\"p2\",\"status\":\"PRACTICE_STATUS_PARTIAL\",\"note\":\"half\"}]}");
	protobuf_c_message_free_unpacked(&u->base, NULL);
	parse_fails(
	    &mlops__maturity__v1__update_answers_request__descriptor,
	    "{\"answers\":[{\"practiceId\":\"p1\"},{\"practiceId\":\"p2\",\"colour\":\"red\"}]}",
	    "answers[1]: unknown field \"colour\" in mlops.maturity.v1.Answer");
	parse_fails(&mlops__maturity__v1__update_answers_request__descriptor, "{\"answers\":{}}",
	            "answers: expected an array");
}

static void test_unknown_field_and_bad_json(void **state)
{
	parse_fails(&mlops__maturity__v1__create_organization_request__descriptor,
	            "{\"organization\":{\"displayName\":\"A\",\"bogus\":1}}",
	            "organization: unknown field \"bogus\" in mlops.maturity.v1.Organization");
	parse_fails(&mlops__maturity__v1__create_organization_request__descriptor,
	            "{\"organizationId\":", "invalid JSON");
	parse_fails(&mlops__maturity__v1__create_organization_request__descriptor, "[]",
	            "expected an object for mlops.maturity.v1.CreateOrganizationRequest");
	parse_fails(&mlops__maturity__v1__create_organization_request__descriptor,
	            "{\"organization_id\":\"a\",\"organizationId\":\"b\"}", "given twice");
}

static void test_null_means_default(void **state)
{
	Mlops__Maturity__V1__Organization *o = parse(&mlops__maturity__v1__organization__descriptor,
	                                             "{\"name\":null,\"labels\":null}");

	prints(o, "{}");
	protobuf_c_message_free_unpacked(&o->base, NULL);
}

static void test_base64_round_trip_lengths(void **state)
{
	const uint8_t data[] = {0, 1, 2, 0xfe, 0xff};

	for (size_t n = 0; n <= sizeof(data); n++) {
		char *s = ctl_base64_encode(data, n);
		uint8_t *back;
		size_t len;
		assert_non_null(s);
		assert_int_equal(ctl_base64_decode(s, &back, &len), 0);
		assert_int_equal(len, n);
		assert_memory_equal(back, data, n);
		free(back);
		free(s);
	}
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_message_fields_maps_enums_both_names),
	    cmocka_unit_test(test_enum_by_number_and_unknown_number),
	    cmocka_unit_test(test_defaults_are_omitted),
	    cmocka_unit_test(test_int64_as_strings_both_ways),
	    cmocka_unit_test(test_int32_range_and_type),
	    cmocka_unit_test(test_uint64_double_bool),
	    cmocka_unit_test(test_timestamp_rfc3339),
	    cmocka_unit_test(test_duration_seconds_string),
	    cmocka_unit_test(test_field_mask_comma_camel),
	    cmocka_unit_test(test_empty),
	    cmocka_unit_test(test_bytes_base64_standard_and_url_safe),
	    cmocka_unit_test(test_oneof_set_once_and_printed_when_default),
	    cmocka_unit_test(test_repeated_nested_messages),
	    cmocka_unit_test(test_unknown_field_and_bad_json),
	    cmocka_unit_test(test_null_means_default),
	    cmocka_unit_test(test_base64_round_trip_lengths),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
