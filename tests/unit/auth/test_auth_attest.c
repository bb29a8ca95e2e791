/* Unit tests of auth_attest.c: the Statement's exact bytes for a fixed decision (so a change of
 * layout is a deliberate one), DSSE's PAE against the specification's published example, key
 * loading (both supported kinds, the refused ones, empty and duplicate verification keys),
 * keyids against `openssl pkey -pubout -outform DER | sha256sum`, and signatures that verify
 * with the right key only. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "auth_attest.h"
#include "mat_gate.h"
#include "mat_score.h"

/* Keys made with `openssl genpkey -algorithm ed25519` and `-algorithm EC -pkeyopt
 * ec_paramgen_curve:P-256`; their keyids are `openssl pkey -in k.pem -pubout -outform DER |
 * sha256sum`. */
static const char ED_KEY[] = "-----BEGIN PRIVATE KEY-----\n"
                             "MC4CAQAwBQYDK2VwBCIEIGsX5I6wherHmqj9d+enFCe2H67VvmXyZYT025Bj6c0C\n"
                             "-----END PRIVATE KEY-----\n";
static const char ED_PUB[] = "-----BEGIN PUBLIC KEY-----\n"
                             "MCowBQYDK2VwAyEAwPf3S3lYdWqweATuYgLqMspycSAT57BemFiE+cwM5t0=\n"
                             "-----END PUBLIC KEY-----\n";
static const char ED_KEYID[] = "e8dc4184f284eb9b0ec531de58e3369bac884cf47b70402ee3612920bfdb3d09";

static const char EC_KEY[] = "-----BEGIN PRIVATE KEY-----\n"
                             "MIGHAgEAMBMGByqGSM49AgEGCCqGSM49AwEHBG0wawIBAQQgADB+9sMl12wzwXni\n"
                             "LjOp8EJjH7KyscQulxsErVoZjlyhRANCAATat8k47UgFz60Qt/9A7A9o4ECJRoTa\n"
                             "iF6mPy65RCfEhYeVw0agXYqVggbrhXVMg7X3HGD6pCc/t0CLZ59fdpB+\n"
                             "-----END PRIVATE KEY-----\n";
static const char EC_PUB[] = "-----BEGIN PUBLIC KEY-----\n"
                             "MFkwEwYHKoZIzj0CAQYIKoZIzj0DAQcDQgAE2rfJOO1IBc+tELf/QOwPaOBAiUaE\n"
                             "2ohepj8uuUQnxIWHlcNGoF2KlYIG64V1TIO19xxg+qQnP7dAi2efX3aQfg==\n"
                             "-----END PUBLIC KEY-----\n";
static const char EC_KEYID[] = "ea2ee3f956fbf5cbe3e7111ca7b375d87295772330068e2906b5050c6f6ba216";

/* P-384 (`-pkeyopt ec_paramgen_curve:P-384`): a well-formed key of a refused kind. */
static const char P384_KEY[] = "-----BEGIN PRIVATE KEY-----\n"
                               "MIG2AgEAMBAGByqGSM49AgEGBSuBBAAiBIGeMIGbAgEBBDDE7V7u7km8RuELNQs7\n"
                               "wXGF6h+DuDTXZtZyOS+3jCS4vIhENJy6zR5mFwe29TvVQkihZANiAATd1IEM+Pxm\n"
                               "EcirauajU3IDNfU8px4V3VR+zJ/45Ti870GUPeImk7pQqWlAhuMI4Ufg3j+fPkoV\n"
                               "ZmE/Je7z5as1Pi6yss/6T4L1bpH6d6MJhVHLxbSlD7F5dfVfWnJ+64o=\n"
                               "-----END PRIVATE KEY-----\n";

static char tmpdir[] = "/tmp/test_auth_attest.XXXXXX";

static const char *write_file(const char *name, const char *content)
{
	static char path[8][256];
	static int next;
	char *p = path[next++ % 8];
	FILE *f;

	snprintf(p, 256, "%s/%s", tmpdir, name);
	f = fopen(p, "w");
	assert_non_null(f);
	fputs(content, f);
	fclose(f);
	return p;
}

static int setup(void **state)
{
	(void)state;
	return mkdtemp(tmpdir) != NULL ? 0 : -1;
}

static int teardown(void **state)
{
	char cmd[300];
	(void)state;
	snprintf(cmd, sizeof(cmd), "rm -rf '%s'", tmpdir);
	return system(cmd) == 0 ? 0 : -1;
}

/* --- the Statement ------------------------------------------------------------------------- */

static void test_statement_bytes(void **state)
{
	(void)state;
	struct mat_gate_dimension_level dl[] = {{"model_creation", 3}, {"people", 0}};
	const char *prs[] = {"people.regular_communication"};
	struct mat_gate_requirement req = {.min_level = 3,
	                                   .min_dimension_levels = dl,
	                                   .n_min_dimension_levels = 2,
	                                   .required_practice_ids = prs,
	                                   .n_required_practice_ids = 1,
	                                   .has_max_evidence_age = true,
	                                   .max_evidence_age_seconds = 86400,
	                                   .max_evidence_age_nanos = 500000000,
	                                   .live = true};
	struct mat_score score = {.maturity_index = 33.33};
	struct mat_gate_result res = {.allowed = false, .level = 2, .score = &score, .n_unmet = 2};
	struct mat_gate_digest dg[] = {{"sha256", "ab12"}, {"sha512", "cd"}};
	struct mat_gate_subject subj[] = {{"img \"x\" \xc3\xa9\n", dg, 2}};
	struct auth_attest_decision d = {.organization = "organizations/acme",
	                                 .assessment = "organizations/acme/assessments/a1",
	                                 .decide_time = INT64_C(1780000000123000),
	                                 .issuer = "maturityd.example",
	                                 .requirement = &req,
	                                 .result = &res,
	                                 .subjects = subj,
	                                 .n_subjects = 1};
	size_t len = 0;
	char *json;

	res.unmet[0] =
	    (struct mat_gate_unmet){.kind = MAT_GATE_MIN_LEVEL,
	                            .field = "requirement.min_level",
	                            .message = "the live level is 2, below the required 3",
	                            .required_level = 3,
	                            .actual_level = 2};
	res.unmet[1] = (struct mat_gate_unmet){.kind = MAT_GATE_EVIDENCE_AGE,
	                                       .field = "requirement.max_evidence_age",
	                                       .message = "m",
	                                       .practice_id = "people.regular_communication"};
	json = auth_attest_statement(&d, &len);
	assert_non_null(json);
	assert_string_equal(
	    json,
	    "{\"_type\":\"https://in-toto.io/Statement/v1\","
	    "\"subject\":[{\"name\":\"img \\\"x\\\" \xc3\xa9\\n\","
	    "\"digest\":{\"sha256\":\"ab12\",\"sha512\":\"cd\"}}],"
	    "\"predicateType\":\"https://maturityd.dev/attestation/gate-decision/v1\","
	    "\"predicate\":{\"organization\":\"organizations/acme\",\"allowed\":false,\"level\":2,"
	    "\"maturityIndex\":33.33,\"assessment\":\"organizations/acme/assessments/a1\","
	    "\"decideTime\":\"2026-05-28T20:26:40.123Z\",\"issuer\":\"maturityd.example\","
	    "\"requirement\":{\"minLevel\":3,\"minDimensionLevels\":{\"model_creation\":3,"
	    "\"people\":0},\"requiredPracticeIds\":[\"people.regular_communication\"],"
	    "\"maxEvidenceAge\":\"86400.500s\",\"live\":true},"
	    "\"unmet\":[{\"field\":\"requirement.min_level\",\"message\":\"the live level is 2, "
	    "below the required 3\",\"requiredLevel\":3,\"actualLevel\":2},"
	    "{\"field\":\"requirement.max_evidence_age\",\"message\":\"m\","
	    "\"practiceId\":\"people.regular_communication\"}]}}");
	assert_int_equal(len, strlen(json));
	free(json);
}

static void test_statement_defaults(void **state)
{
	(void)state;
	struct mat_gate_requirement req = {0};
	struct mat_score score = {.maturity_index = 100};
	struct mat_gate_result res = {.allowed = true, .level = 4, .score = &score};
	struct auth_attest_decision d = {.organization = "organizations/acme",
	                                 .assessment = "",
	                                 .decide_time = INT64_C(1780000000000000),
	                                 .issuer = "host",
	                                 .requirement = &req,
	                                 .result = &res};
	size_t len;
	char *json = auth_attest_statement(&d, &len);

	/* No subjects: one named after the organization, sha256 of the name. */
	assert_string_equal(
	    json, "{\"_type\":\"https://in-toto.io/Statement/v1\","
	          "\"subject\":[{\"name\":\"organizations/acme\",\"digest\":{\"sha256\":"
	          "\"566e046b39ca20dc4b5692f26d410356f73fd86c03be8014e19b53071b8efbd8\"}}],"
	          "\"predicateType\":\"https://maturityd.dev/attestation/gate-decision/v1\","
	          "\"predicate\":{\"organization\":\"organizations/acme\",\"allowed\":true,"
	          "\"level\":4,\"maturityIndex\":100,\"assessment\":\"\","
	          "\"decideTime\":\"2026-05-28T20:26:40Z\",\"issuer\":\"host\","
	          "\"requirement\":{},\"unmet\":[]}}");
	free(json);

	score.maturity_index = 62.5;
	d.decide_time = INT64_C(1780000000000001);
	req.max_evidence_age_nanos = 1;
	req.has_max_evidence_age = true;
	json = auth_attest_statement(&d, &len);
	assert_non_null(strstr(json, "\"maturityIndex\":62.5,"));
	assert_non_null(strstr(json, "\"decideTime\":\"2026-05-28T20:26:40.000001Z\""));
	assert_non_null(strstr(json, "\"requirement\":{\"maxEvidenceAge\":\"0.000000001s\"}"));
	free(json);
}

/* --- PAE ----------------------------------------------------------------------------------- */

static void test_pae_vector(void **state)
{
	(void)state;
	size_t len;
	unsigned char *p = auth_attest_pae("http://example.com/HelloWorld",
	                                   (const unsigned char *)"hello world", 11, &len);
	const char want[] = "DSSEv1 29 http://example.com/HelloWorld 11 hello world";

	assert_int_equal(len, strlen(want));
	assert_memory_equal(p, want, len);
	free(p);
	p = auth_attest_pae("", NULL, 0, &len);
	assert_int_equal(len, strlen("DSSEv1 0  0 "));
	assert_memory_equal(p, "DSSEv1 0  0 ", len);
	free(p);
}

/* --- keys and signatures ------------------------------------------------------------------- */

static struct auth_attest_keys *load(const char *key, const char *verify)
{
	struct auth_attest_keys *k = NULL;
	struct mat_error err;
	bool key_failed;

	mat_error_clear(&err);
	if (auth_attest_keys_load(key, verify, &k, &key_failed, &err) != MAT_OK)
		fail_msg("%s", err.message);
	assert_non_null(k);
	return k;
}

static void sign_and_verify(const char *pem, const char *keyid, const char *alg, const char *pub)
{
	struct auth_attest_keys *k = load(write_file("sign.pem", pem), NULL);
	struct auth_attest_key_info info;
	const unsigned char body[] = "{\"a\":1}";
	unsigned char *sig;
	size_t sig_len;
	const char *id;
	struct mat_error err;

	assert_int_equal(auth_attest_keys_count(k), 1);
	assert_true(auth_attest_keys_can_sign(k));
	auth_attest_keys_info(k, 0, &info);
	assert_string_equal(info.keyid, keyid);
	assert_string_equal(info.algorithm, alg);
	assert_string_equal(info.public_key_pem, pub);
	assert_true(info.active);

	mat_error_clear(&err);
	assert_int_equal(
	    auth_attest_sign(k, AUTH_ATTEST_PAYLOAD_TYPE, body, 7, &sig, &sig_len, &id, &err),
	    MAT_OK);
	assert_string_equal(id, keyid);
	assert_true(auth_attest_verify(k, keyid, AUTH_ATTEST_PAYLOAD_TYPE, body, 7, sig, sig_len));
	/* Another payload, payload type or key does not verify. */
	assert_false(auth_attest_verify(k, keyid, AUTH_ATTEST_PAYLOAD_TYPE, body, 6, sig, sig_len));
	assert_false(auth_attest_verify(k, keyid, "application/json", body, 7, sig, sig_len));
	assert_false(auth_attest_verify(k, "00", AUTH_ATTEST_PAYLOAD_TYPE, body, 7, sig, sig_len));
	sig[sig_len / 2] ^= 1;
	assert_false(auth_attest_verify(k, keyid, AUTH_ATTEST_PAYLOAD_TYPE, body, 7, sig, sig_len));
	free(sig);

	/* A verification-only copy of the public key verifies what the private key signed. */
	struct auth_attest_keys *v = load(NULL, write_file("pub.pem", pub));
	assert_false(auth_attest_keys_can_sign(v));
	assert_int_equal(
	    auth_attest_sign(v, AUTH_ATTEST_PAYLOAD_TYPE, body, 7, &sig, &sig_len, &id, &err),
	    MAT_PRECONDITION);
	assert_int_equal(
	    auth_attest_sign(k, AUTH_ATTEST_PAYLOAD_TYPE, body, 7, &sig, &sig_len, &id, &err),
	    MAT_OK);
	assert_true(auth_attest_verify(v, keyid, AUTH_ATTEST_PAYLOAD_TYPE, body, 7, sig, sig_len));
	free(sig);
	auth_attest_keys_unref(v);
	auth_attest_keys_unref(k);
}

static void test_ed25519(void **state)
{
	(void)state;
	sign_and_verify(ED_KEY, ED_KEYID, "ed25519", ED_PUB);
}

static void test_ecdsa_p256(void **state)
{
	(void)state;
	sign_and_verify(EC_KEY, EC_KEYID, "ecdsa-p256-sha256", EC_PUB);
}

static void test_key_lists(void **state)
{
	(void)state;
	char both[1024];
	struct auth_attest_keys *k;
	struct auth_attest_key_info info;

	/* Active first; the active key repeated among the verification keys is listed once. */
	snprintf(both, sizeof(both), "%s%s", ED_PUB, EC_PUB);
	k = load(write_file("ec.pem", EC_KEY), write_file("both.pem", both));
	assert_int_equal(auth_attest_keys_count(k), 2);
	auth_attest_keys_info(k, 0, &info);
	assert_string_equal(info.keyid, EC_KEYID);
	assert_true(info.active);
	auth_attest_keys_info(k, 1, &info);
	assert_string_equal(info.keyid, ED_KEYID);
	assert_false(info.active);
	/* A reference outlives the loader's. */
	auth_attest_keys_ref(k);
	auth_attest_keys_unref(k);
	assert_int_equal(auth_attest_keys_count(k), 2);
	auth_attest_keys_unref(k);

	/* An empty verification file is valid; no files at all is an empty set. */
	k = load(NULL, write_file("empty.pem", ""));
	assert_int_equal(auth_attest_keys_count(k), 0);
	assert_false(auth_attest_keys_can_sign(k));
	auth_attest_keys_unref(k);
	k = load(NULL, NULL);
	assert_int_equal(auth_attest_keys_count(k), 0);
	auth_attest_keys_unref(k);
}

static void expect_refused(const char *key, const char *verify, bool want_key_failed,
                           const char *want_in_message)
{
	struct auth_attest_keys *k = (void *)1;
	struct mat_error err;
	bool key_failed = !want_key_failed;

	mat_error_clear(&err);
	assert_int_equal(auth_attest_keys_load(key, verify, &k, &key_failed, &err), MAT_INVALID);
	assert_null(k);
	assert_int_equal(key_failed, want_key_failed);
	if (strstr(err.message, want_in_message) == NULL)
		fail_msg("\"%s\" not in \"%s\"", want_in_message, err.message);
}

static void test_refused_keys(void **state)
{
	(void)state;
	char rsa[4096] = "";
	FILE *p =
	    popen("openssl genpkey -algorithm RSA -pkeyopt rsa_keygen_bits:1024 2>/dev/null", "r");

	expect_refused("/nonexistent/key.pem", NULL, true, "cannot read");
	expect_refused(write_file("junk.pem", "not a key\n"), NULL, true, "not a PEM private key");
	expect_refused(write_file("pubonly.pem", ED_PUB), NULL, true, "not a PEM private key");
	expect_refused(write_file("p384.pem", P384_KEY), NULL, true, "only P-256");
	expect_refused(write_file("ed.pem", ED_KEY), "/nonexistent/pub.pem", false, "cannot read");
	expect_refused(write_file("ed.pem", ED_KEY),
	               write_file("bad.pem", "garbage\n-----BEGIN "
	                                     "PUBLIC KEY-----\nAAAA\n"
	                                     "-----END PUBLIC KEY-----\n"),
	               false, "PEM block 1");
	if (p != NULL) {
		size_t n = fread(rsa, 1, sizeof(rsa) - 1, p);
		rsa[n] = '\0';
		pclose(p);
	}
	if (strstr(rsa, "PRIVATE KEY") != NULL)
		expect_refused(write_file("rsa.pem", rsa), NULL, true,
		               "only Ed25519 and ECDSA P-256");
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_statement_bytes), cmocka_unit_test(test_statement_defaults),
	    cmocka_unit_test(test_pae_vector),      cmocka_unit_test(test_ed25519),
	    cmocka_unit_test(test_ecdsa_p256),      cmocka_unit_test(test_key_lists),
	    cmocka_unit_test(test_refused_keys),
	};
	return cmocka_run_group_tests(tests, setup, teardown);
}
