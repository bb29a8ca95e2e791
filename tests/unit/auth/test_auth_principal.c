/* auth_principal_from_pem: the principal rules and refusals of docs/permissions.md ("Who you are"),
 * on certificates made here with the OpenSSL API (see make_certs.c), including ones no honest CA
 * would issue; and auth_principal_check, the syntax of a principal a delegator asserts
 * (x-on-behalf-of). */
#include "auth.h"
#include "make_certs.h"

#include <openssl/err.h>
#include <openssl/pem.h>
#include <openssl/x509v3.h>

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

static EVP_PKEY *key; /* one key for every certificate: generating is the slow part */

static int setup(void **state)
{
	key = tc_key();
	return 0;
}

static int teardown(void **state)
{
	EVP_PKEY_free(key);
	return 0;
}

/* Makes a certificate from spec and runs auth_principal_from_pem on its PEM. */
static enum mat_code principal_of(const struct tc_spec *spec, char out[MAT_MAX_PRINCIPAL + 1],
                                  struct mat_error *err)
{
	X509 *x = tc_cert(key, spec);
	size_t len;
	char *pem = tc_cert_pem(x, &len);
	enum mat_code rc;

	mat_error_clear(err);
	rc = auth_principal_from_pem(pem, len, out, MAT_MAX_PRINCIPAL + 1, err);
	/* Whatever the outcome, nothing may be left in OpenSSL's per-thread error queue. */
	assert_int_equal(ERR_peek_error(), 0);
	free(pem);
	X509_free(x);
	return rc;
}

static void expect_principal(const struct tc_spec *spec, const char *want)
{
	char out[MAT_MAX_PRINCIPAL + 1];
	struct mat_error err;

	assert_int_equal(principal_of(spec, out, &err), MAT_OK);
	assert_string_equal(out, want);
}

/* Expects MAT_UNAUTHENTICATED, an empty out and a message containing `why`. */
static void expect_refused(const struct tc_spec *spec, const char *why)
{
	char out[MAT_MAX_PRINCIPAL + 1];
	struct mat_error err;

	memset(out, 'x', sizeof(out));
	assert_int_equal(principal_of(spec, out, &err), MAT_UNAUTHENTICATED);
	assert_int_equal(err.code, MAT_UNAUTHENTICATED);
	assert_string_equal(out, "");
	if (strstr(err.message, why) == NULL)
		fail_msg("message \"%s\" does not say \"%s\"", err.message, why);
}

/* A string of n bytes "spiffe://t/aaaa..." (n >= 11), malloc'd. */
static char *long_value(const char *prefix, size_t n)
{
	char *s = malloc(n + 1);
	size_t p = strlen(prefix);

	assert_non_null(s);
	memcpy(s, prefix, p);
	memset(s + p, 'a', n - p);
	s[n] = '\0';
	return s;
}

static void test_principal_from_pem_uri_san(void **state)
{
	const struct tc_san sans[] = {{GEN_URI, "spiffe://maturityd.dev/admin", 0}};
	const struct tc_spec spec = {.cn = "admin", .sans = sans, .n_sans = 1};

	expect_principal(&spec, "spiffe://maturityd.dev/admin");
}

static void test_principal_from_pem_two_uri_sans_first_wins(void **state)
{
	const struct tc_san sans[] = {{GEN_URI, "spiffe://maturityd.dev/first", 0},
	                              {GEN_URI, "spiffe://maturityd.dev/second", 0}};
	const struct tc_spec spec = {.cn = "x", .sans = sans, .n_sans = 2};

	expect_principal(&spec, "spiffe://maturityd.dev/first");
}

static void test_principal_from_pem_uri_kept_as_is(void **state)
{
	/* No normalisation: what the CA signed is the identity (unlike grpc's peer_spiffe_id,
	 * nothing is validated or rewritten here; case and dot segments are kept). */
	const struct tc_san sans[] = {{GEN_URI, "spiffe://Example.org/UPPER/../x", 0}};
	const struct tc_spec spec = {.cn = "x", .sans = sans, .n_sans = 1};

	expect_principal(&spec, "spiffe://Example.org/UPPER/../x");
}

static void test_principal_from_pem_dns_only(void **state)
{
	const struct tc_san sans[] = {{GEN_DNS, "control-plane.maturityd.dev", 0},
	                              {GEN_DNS, "other.maturityd.dev", 0}};
	const struct tc_spec spec = {.cn = "dnsclient", .sans = sans, .n_sans = 2};

	expect_principal(&spec, "dns:control-plane.maturityd.dev");
}

static void test_principal_from_pem_cn_only(void **state)
{
	const struct tc_spec spec = {.cn = "legacy-job"};

	expect_principal(&spec, "cn:legacy-job");
}

static void test_principal_from_pem_cn_utf8(void **state)
{
	const struct tc_spec spec = {.cn = "j\xc3\xb6"
	                                   "b"};

	expect_principal(&spec, "cn:j\xc3\xb6"
	                        "b");
}

static void test_principal_from_pem_uri_beats_dns(void **state)
{
	/* DNS listed first: order across kinds does not matter, URI always wins. */
	const struct tc_san sans[] = {{GEN_DNS, "host.maturityd.dev", 0},
	                              {GEN_URI, "spiffe://maturityd.dev/portal", 0}};
	const struct tc_spec spec = {.cn = "portal", .sans = sans, .n_sans = 2};

	expect_principal(&spec, "spiffe://maturityd.dev/portal");
}

static void test_principal_from_pem_dns_beats_cn(void **state)
{
	const struct tc_san sans[] = {{GEN_DNS, "host.maturityd.dev", 0}};
	const struct tc_spec spec = {.cn = "ignored", .sans = sans, .n_sans = 1};

	expect_principal(&spec, "dns:host.maturityd.dev");
}

static void test_principal_from_pem_email_san_ignored(void **state)
{
	const struct tc_san sans[] = {{GEN_EMAIL, "ops@maturityd.dev", 0}};
	const struct tc_spec spec = {.cn = "mailer", .sans = sans, .n_sans = 1};

	expect_principal(&spec, "cn:mailer");
}

static void test_principal_from_pem_no_identity(void **state)
{
	const struct tc_spec spec = {.cn = NULL};

	expect_refused(&spec, "no URI SAN, DNS SAN or subject CN");
}

static void test_principal_from_pem_email_san_no_cn(void **state)
{
	const struct tc_san sans[] = {{GEN_EMAIL, "ops@maturityd.dev", 0}};
	const struct tc_spec spec = {.sans = sans, .n_sans = 1};

	expect_refused(&spec, "no URI SAN");
}

static void test_principal_from_pem_uri_600_bytes(void **state)
{
	char *uri = long_value("spiffe://t/", 600);
	const struct tc_san sans[] = {{GEN_URI, uri, 0}};
	const struct tc_spec spec = {.cn = "x", .sans = sans, .n_sans = 1};

	expect_refused(&spec, "600 bytes");
	free(uri);
}

static void test_principal_from_pem_uri_exactly_512(void **state)
{
	char *uri = long_value("spiffe://t/", MAT_MAX_PRINCIPAL);
	const struct tc_san sans[] = {{GEN_URI, uri, 0}};
	const struct tc_spec spec = {.cn = "x", .sans = sans, .n_sans = 1};

	expect_principal(&spec, uri);
	free(uri);
}

static void test_principal_from_pem_uri_513(void **state)
{
	char *uri = long_value("spiffe://t/", MAT_MAX_PRINCIPAL + 1);
	const struct tc_san sans[] = {{GEN_URI, uri, 0}};
	const struct tc_spec spec = {.cn = "x", .sans = sans, .n_sans = 1};

	expect_refused(&spec, "513 bytes");
	free(uri);
}

static void test_principal_from_pem_dns_limit_counts_prefix(void **state)
{
	/* "dns:" + 508 = 512 is fine; "dns:" + 509 = 513 is not. */
	char *ok = long_value("h", MAT_MAX_PRINCIPAL - 4);
	char *over = long_value("h", MAT_MAX_PRINCIPAL - 3);
	char want[MAT_MAX_PRINCIPAL + 1];
	const struct tc_san ok_san[] = {{GEN_DNS, ok, 0}};
	const struct tc_san over_san[] = {{GEN_DNS, over, 0}};
	const struct tc_spec ok_spec = {.sans = ok_san, .n_sans = 1};
	const struct tc_spec over_spec = {.sans = over_san, .n_sans = 1};

	snprintf(want, sizeof(want), "dns:%s", ok);
	expect_principal(&ok_spec, want);
	expect_refused(&over_spec, "513 bytes");
	free(ok);
	free(over);
}

static void test_principal_from_pem_cn_limit_counts_prefix(void **state)
{
	char *ok = long_value("c", MAT_MAX_PRINCIPAL - 3);
	char *over = long_value("c", MAT_MAX_PRINCIPAL - 2);
	char want[MAT_MAX_PRINCIPAL + 1];
	const struct tc_spec ok_spec = {.cn = ok};
	const struct tc_spec over_spec = {.cn = over};

	snprintf(want, sizeof(want), "cn:%s", ok);
	expect_principal(&ok_spec, want);
	expect_refused(&over_spec, "513 bytes");
	free(ok);
	free(over);
}

static void test_principal_from_pem_nul_in_uri_san(void **state)
{
	/* The classic: "spiffe://maturityd.dev/admin\0.evil" must not become ".../admin". */
	static const char v[] = "spiffe://maturityd.dev/admin\0.evil";
	const struct tc_san sans[] = {{GEN_URI, v, sizeof(v) - 1}};
	const struct tc_spec spec = {.cn = "x", .sans = sans, .n_sans = 1};

	expect_refused(&spec, "NUL");
}

static void test_principal_from_pem_nul_in_dns_san(void **state)
{
	static const char v[] = "admin.maturityd.dev\0.evil.example";
	const struct tc_san sans[] = {{GEN_DNS, v, sizeof(v) - 1}};
	const struct tc_spec spec = {.cn = "x", .sans = sans, .n_sans = 1};

	expect_refused(&spec, "NUL");
}

static void test_principal_from_pem_nul_in_cn(void **state)
{
	static const char v[] = "admin\0evil";
	const struct tc_spec spec = {.cn = v, .cn_len = sizeof(v) - 1};

	expect_refused(&spec, "NUL");
}

static void test_principal_from_pem_bad_uri_not_skipped(void **state)
{
	/* A malformed first URI is refused, not skipped in favour of the second one. */
	static const char v[] = "spiffe://a\0b";
	const struct tc_san sans[] = {{GEN_URI, v, sizeof(v) - 1},
	                              {GEN_URI, "spiffe://maturityd.dev/admin", 0}};
	const struct tc_spec spec = {.cn = "x", .sans = sans, .n_sans = 2};

	expect_refused(&spec, "NUL");
}

static void test_principal_from_pem_invalid_utf8_uri(void **state)
{
	const struct tc_san sans[] = {{GEN_URI, "spiffe://t/\xff\xfe", 0}};
	const struct tc_spec spec = {.cn = "x", .sans = sans, .n_sans = 1};

	expect_refused(&spec, "UTF-8");
}

static void test_principal_from_pem_invalid_utf8_cn(void **state)
{
	/* OpenSSL cannot even encode a name holding invalid UTF-8 (it canonicalises names), so
	 * make a valid CN and patch its bytes in the DER: the overlong '/' \xc0\xaf. The
	 * signature no longer matches, which does not matter here: the handshake verified it. */
	const struct tc_spec spec = {.cn = "bad-cn-XY"};
	X509 *x = tc_cert(key, &spec);
	unsigned char *der = NULL, *at = NULL;
	int der_len = i2d_X509(x, &der), i;
	BIO *bio = BIO_new(BIO_s_mem());
	char *pem = NULL, out[MAT_MAX_PRINCIPAL + 1];
	long pem_len;
	struct mat_error err;

	assert_true(der_len > 0);
	assert_non_null(bio);
	for (i = 0; i + 9 <= der_len && at == NULL; i++) {
		if (memcmp(der + i, "bad-cn-XY", 9) == 0)
			at = der + i;
	}
	assert_non_null(at);
	at[7] = 0xc0;
	at[8] = 0xaf;
	assert_true(PEM_write_bio(bio, "CERTIFICATE", "", der, der_len) > 0);
	pem_len = BIO_get_mem_data(bio, &pem);
	mat_error_clear(&err);
	assert_int_equal(auth_principal_from_pem(pem, (size_t)pem_len, out, sizeof(out), &err),
	                 MAT_UNAUTHENTICATED);
	/* Refused by OpenSSL's decoder or by our UTF-8 check, depending on the version. */
	if (strstr(err.message, "does not parse") == NULL && strstr(err.message, "UTF-8") == NULL)
		fail_msg("unexpected message \"%s\"", err.message);
	assert_string_equal(out, "");
	assert_int_equal(ERR_peek_error(), 0);
	BIO_free(bio);
	OPENSSL_free(der);
	X509_free(x);
}

static void test_principal_from_pem_bmp_cn(void **state)
{
	static const char v[] = {0x00, 'j', 0x00, (char)0xf6, 0x00, 'b'};
	const struct tc_spec spec = {.cn = v, .cn_len = sizeof(v), .cn_type = V_ASN1_BMPSTRING};

	expect_principal(&spec, "cn:j\xc3\xb6"
	                        "b");
}

static void test_principal_from_pem_empty_uri(void **state)
{
	const struct tc_san sans[] = {{GEN_URI, "", 0}};
	const struct tc_spec spec = {.cn = "x", .sans = sans, .n_sans = 1};

	expect_refused(&spec, "empty");
}

static void test_principal_from_pem_only_first_block(void **state)
{
	const struct tc_spec leaf_spec = {.cn = "leaf"};
	const struct tc_san sans[] = {{GEN_URI, "spiffe://maturityd.dev/admin", 0}};
	const struct tc_spec second_spec = {.cn = "ca", .sans = sans, .n_sans = 1};
	X509 *leaf = tc_cert(key, &leaf_spec), *second = tc_cert(key, &second_spec);
	size_t l1, l2;
	char *p1 = tc_cert_pem(leaf, &l1), *p2 = tc_cert_pem(second, &l2);
	char *both = malloc(l1 + l2 + 1);
	char out[MAT_MAX_PRINCIPAL + 1];
	struct mat_error err;

	assert_non_null(both);
	memcpy(both, p1, l1);
	memcpy(both + l1, p2, l2 + 1);
	assert_int_equal(auth_principal_from_pem(both, l1 + l2, out, sizeof(out), &err), MAT_OK);
	assert_string_equal(out, "cn:leaf");
	free(both);
	free(p1);
	free(p2);
	X509_free(leaf);
	X509_free(second);
}

static void test_principal_from_pem_not_nul_terminated(void **state)
{
	/* grpc hands (pointer, length): bytes after `len` must not be read. */
	const struct tc_spec spec = {.cn = "legacy-job"};
	X509 *x = tc_cert(key, &spec);
	size_t len;
	char *pem = tc_cert_pem(x, &len);
	char *buf = malloc(len + 64);
	char out[MAT_MAX_PRINCIPAL + 1];
	struct mat_error err;

	assert_non_null(buf);
	memcpy(buf, pem, len);
	memset(buf + len, 'Z', 64);
	assert_int_equal(auth_principal_from_pem(buf, len, out, sizeof(out), &err), MAT_OK);
	assert_string_equal(out, "cn:legacy-job");
	/* A truncated certificate does not parse. */
	assert_int_equal(auth_principal_from_pem(buf, len / 2, out, sizeof(out), &err),
	                 MAT_UNAUTHENTICATED);
	free(buf);
	free(pem);
	X509_free(x);
}

static void test_principal_from_pem_garbage(void **state)
{
	static const char *const inputs[] = {
	    "not a certificate at all",
	    "-----BEGIN CERTIFICATE-----\nAAAA!!!!\n-----END CERTIFICATE-----\n",
	    "-----BEGIN CERTIFICATE-----\nMIIBkTCB+wIJAKHBfp\n-----END CERTIFICATE-----\n",
	    "-----BEGIN PRIVATE KEY-----\nMC4CAQAwBQYDK2VwBCIEIA==\n-----END PRIVATE KEY-----\n",
	};
	char out[MAT_MAX_PRINCIPAL + 1];
	struct mat_error err;
	size_t i;

	for (i = 0; i < sizeof(inputs) / sizeof(inputs[0]); i++) {
		mat_error_clear(&err);
		assert_int_equal(
		    auth_principal_from_pem(inputs[i], strlen(inputs[i]), out, sizeof(out), &err),
		    MAT_UNAUTHENTICATED);
		assert_int_equal(err.code, MAT_UNAUTHENTICATED);
		assert_string_equal(out, "");
		assert_int_equal(ERR_peek_error(), 0);
	}
	assert_int_equal(auth_principal_from_pem(NULL, 0, out, sizeof(out), &err),
	                 MAT_UNAUTHENTICATED);
	assert_int_equal(auth_principal_from_pem("", 0, out, sizeof(out), NULL),
	                 MAT_UNAUTHENTICATED);
}

static void test_principal_from_pem_small_buffer(void **state)
{
	const struct tc_spec spec = {.cn = "legacy-job"};
	X509 *x = tc_cert(key, &spec);
	size_t len;
	char *pem = tc_cert_pem(x, &len);
	char out[64];
	struct mat_error err;

	assert_int_equal(auth_principal_from_pem(pem, len, out, sizeof(out), &err), MAT_INTERNAL);
	assert_string_equal(out, "");
	assert_int_equal(auth_principal_from_pem(pem, len, NULL, 0, &err), MAT_INTERNAL);
	free(pem);
	X509_free(x);
}

/* --- auth_principal_check: an asserted principal (x-on-behalf-of) ------------------------------
 */

static void expect_check_ok(const char *s)
{
	struct mat_error err;

	mat_error_clear(&err);
	assert_int_equal(auth_principal_check(s, strlen(s), "x-on-behalf-of", &err), MAT_OK);
	assert_int_equal(err.code, MAT_OK);
}

static void expect_check_bad(const char *s, size_t len, const char *why)
{
	struct mat_error err;

	mat_error_clear(&err);
	assert_int_equal(auth_principal_check(s, len, "x-on-behalf-of", &err), MAT_INVALID);
	assert_int_equal(err.n_violations, 1);
	assert_string_equal(err.violations[0].field, "x-on-behalf-of");
	if (strstr(err.violations[0].description, why) == NULL)
		fail_msg("\"%s\" does not say \"%s\"", err.violations[0].description, why);
}

static void test_principal_check_accepts_every_kind(void **state)
{
	static const char *const ok[] = {
	    "user:alice@corp.example",
	    "spiffe://maturityd.dev/portal",
	    "dns:control-plane.maturityd.dev",
	    "cn:legacy-job",
	    "cn:Jane Doe", /* a CN may hold spaces */
	    "user:j\xc3\xbcrgen@corp.example",
	    "urn:uuid:6e8bc430-9c3a-11d9-9669-0800200c9a66",
	    "x+y-z.1:a",
	    "USER:Alice",
	};
	(void)state;
	for (size_t i = 0; i < sizeof(ok) / sizeof(ok[0]); i++)
		expect_check_ok(ok[i]);
}

static void test_principal_check_empty(void **state)
{
	(void)state;
	expect_check_bad("", 0, "empty");
	expect_check_bad(NULL, 0, "empty");
}

static void test_principal_check_length_limit(void **state)
{
	char v[MAT_MAX_PRINCIPAL + 2];

	(void)state;
	memcpy(v, "user:", 5);
	memset(v + 5, 'a', sizeof(v) - 5);
	v[MAT_MAX_PRINCIPAL] = '\0';
	expect_check_ok(v); /* exactly 512 bytes */
	v[MAT_MAX_PRINCIPAL] = 'a';
	expect_check_bad(v, MAT_MAX_PRINCIPAL + 1, "513 bytes, over the 512-byte limit");
}

static void test_principal_check_no_scheme(void **state)
{
	static const char *const bad[] = {"alice",       "alice@corp.example", ":alice",
	                                  "1user:alice", "us er:alice",        "-x:y",
	                                  "user/alice:x"};
	(void)state;
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
		expect_check_bad(bad[i], strlen(bad[i]), "no scheme");
}

static void test_principal_check_scheme_only(void **state)
{
	(void)state;
	expect_check_bad("user:", 5, "names no one");
}

static void test_principal_check_control_characters(void **state)
{
	(void)state;
	expect_check_bad("user:al\nice", 11, "control character (byte 7)");
	expect_check_bad("user:alice\r", 11, "control character");
	expect_check_bad("user:al\tice", 11, "control character");
	expect_check_bad("user:al\x7f", 8, "control character");
	expect_check_bad("user:a\xc2\x85", 8, "control character"); /* U+0085 NEL */
	expect_check_bad("user:a\0b", 8, "control character");      /* NUL inside */
}

static void test_principal_check_invalid_utf8(void **state)
{
	(void)state;
	expect_check_bad("user:\xff", 6, "UTF-8");
	expect_check_bad("user:\xc3", 6, "UTF-8");         /* truncated */
	expect_check_bad("user:\xc0\xaf", 7, "UTF-8");     /* overlong '/' */
	expect_check_bad("user:\xed\xa0\x80", 8, "UTF-8"); /* surrogate */
}

static void test_principal_check_not_nul_terminated(void **state)
{
	struct mat_error err;
	const char buf[] = "user:alice\nTRAILING";

	(void)state;
	/* Only the first `len` bytes count. */
	assert_int_equal(auth_principal_check(buf, 10, "f", &err), MAT_OK);
	assert_int_equal(auth_principal_check(buf, 10, "f", NULL), MAT_OK);
	assert_int_equal(auth_principal_check(buf, 11, "f", NULL), MAT_INVALID);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_principal_from_pem_uri_san),
	    cmocka_unit_test(test_principal_from_pem_two_uri_sans_first_wins),
	    cmocka_unit_test(test_principal_from_pem_uri_kept_as_is),
	    cmocka_unit_test(test_principal_from_pem_dns_only),
	    cmocka_unit_test(test_principal_from_pem_cn_only),
	    cmocka_unit_test(test_principal_from_pem_cn_utf8),
	    cmocka_unit_test(test_principal_from_pem_uri_beats_dns),
	    cmocka_unit_test(test_principal_from_pem_dns_beats_cn),
	    cmocka_unit_test(test_principal_from_pem_email_san_ignored),
	    cmocka_unit_test(test_principal_from_pem_no_identity),
	    cmocka_unit_test(test_principal_from_pem_email_san_no_cn),
	    cmocka_unit_test(test_principal_from_pem_uri_600_bytes),
	    cmocka_unit_test(test_principal_from_pem_uri_exactly_512),
	    cmocka_unit_test(test_principal_from_pem_uri_513),
	    cmocka_unit_test(test_principal_from_pem_dns_limit_counts_prefix),
	    cmocka_unit_test(test_principal_from_pem_cn_limit_counts_prefix),
	    cmocka_unit_test(test_principal_from_pem_nul_in_uri_san),
	    cmocka_unit_test(test_principal_from_pem_nul_in_dns_san),
	    cmocka_unit_test(test_principal_from_pem_nul_in_cn),
	    cmocka_unit_test(test_principal_from_pem_bad_uri_not_skipped),
	    cmocka_unit_test(test_principal_from_pem_invalid_utf8_uri),
	    cmocka_unit_test(test_principal_from_pem_invalid_utf8_cn),
	    cmocka_unit_test(test_principal_from_pem_bmp_cn),
	    cmocka_unit_test(test_principal_from_pem_empty_uri),
	    cmocka_unit_test(test_principal_from_pem_only_first_block),
	    cmocka_unit_test(test_principal_from_pem_not_nul_terminated),
	    cmocka_unit_test(test_principal_from_pem_garbage),
	    cmocka_unit_test(test_principal_from_pem_small_buffer),
	    cmocka_unit_test(test_principal_check_accepts_every_kind),
	    cmocka_unit_test(test_principal_check_empty),
	    cmocka_unit_test(test_principal_check_length_limit),
	    cmocka_unit_test(test_principal_check_no_scheme),
	    cmocka_unit_test(test_principal_check_scheme_only),
	    cmocka_unit_test(test_principal_check_control_characters),
	    cmocka_unit_test(test_principal_check_invalid_utf8),
	    cmocka_unit_test(test_principal_check_not_nul_terminated),
	};

	return cmocka_run_group_tests(tests, setup, teardown);
}
