/* auth_pem_load / auth_pem_cleanup on files written to a temporary directory: the good set and
 * one broken file at a time, checking that bad_file names the right file and the message the
 * path and the reason. */
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
#include <unistd.h>

#include <cmocka.h>

static char dir[] = "/tmp/test_auth_pem.XXXXXX";
static char *server_pem, *chain_pem, *server_key, *ca_pem; /* expected contents */

static const char *const file_names[] = {
    "server.pem",    "chain.pem",       "server.key",    "other.key", "ca.pem",
    "garbage.pem",   "empty.pem",       "encrypted.key", "der.pem",   "ca-bad-tail.pem",
    "ec-params.key", "ca-and-junk.pem", "huge.pem",
};

static char *path(const char *name)
{
	static char buf[8][256];
	static int next;
	char *p = buf[next++ % 8];

	snprintf(p, sizeof(buf[0]), "%s/%s", dir, name);
	return p;
}

static void write_file(const char *name, const void *data, size_t len)
{
	FILE *f = fopen(path(name), "wb");

	assert_non_null(f);
	assert_int_equal(fwrite(data, 1, len, f), len);
	assert_int_equal(fclose(f), 0);
}

static void write_text(const char *name, const char *text)
{
	write_file(name, text, strlen(text));
}

static char *concat(const char *a, const char *b)
{
	size_t la = strlen(a), lb = strlen(b);
	char *s = malloc(la + lb + 1);

	assert_non_null(s);
	memcpy(s, a, la);
	memcpy(s + la, b, lb + 1);
	return s;
}

static int setup(void **state)
{
	EVP_PKEY *ca_key = tc_key(), *srv_key = tc_key(), *other = tc_key();
	const struct tc_spec ca_spec = {.cn = "test CA", .ca = true};
	X509 *ca = tc_cert(ca_key, &ca_spec);
	const struct tc_san sans[] = {{GEN_DNS, "localhost", 0}};
	const struct tc_spec srv_spec = {
	    .cn = "localhost", .sans = sans, .n_sans = 1, .issuer = ca, .issuer_key = ca_key};
	X509 *srv = tc_cert(srv_key, &srv_spec);
	char *other_key = tc_key_pem(other, NULL);
	char *tmp;
	unsigned char *der = NULL;
	int der_len;
	BIO *bio;
	char *enc;
	long enc_len;

	if (mkdtemp(dir) == NULL)
		return -1;
	server_pem = tc_cert_pem(srv, NULL);
	ca_pem = tc_cert_pem(ca, NULL);
	chain_pem = concat(server_pem, ca_pem);
	server_key = tc_key_pem(srv_key, NULL);
	write_text("server.pem", server_pem);
	write_text("chain.pem", chain_pem);
	write_text("server.key", server_key);
	write_text("other.key", other_key);
	write_text("ca.pem", ca_pem);
	write_text("garbage.pem", "this is not PEM\n");
	write_text("empty.pem", "");
	/* A valid certificate followed by a block whose base64 is broken. */
	tmp = concat(ca_pem, "-----BEGIN CERTIFICATE-----\nMIIB!!!!notbase64\n"
	                     "-----END CERTIFICATE-----\n");
	write_text("ca-bad-tail.pem", tmp);
	free(tmp);
	/* Text around the blocks (as `openssl x509 -text` leaves it) is fine. */
	tmp = concat("Subject: test CA\n", ca_pem);
	write_text("ca-and-junk.pem", tmp);
	free(tmp);
	write_text("ec-params.key", "-----BEGIN EC PARAMETERS-----\nBggqhkjOPQMBBw==\n"
	                            "-----END EC PARAMETERS-----\n");

	/* Over the 4 MiB cap: a wrong path pointing at a big file fails fast. */
	tmp = malloc(5u << 20);
	assert_non_null(tmp);
	memset(tmp, 'A', 5u << 20);
	write_file("huge.pem", tmp, 5u << 20);
	free(tmp);

	bio = BIO_new(BIO_s_mem());
	assert_int_equal(PEM_write_bio_PrivateKey(bio, srv_key, EVP_aes_256_cbc(), NULL, 0, NULL,
	                                          (void *)"passphrase"),
	                 1);
	enc_len = BIO_get_mem_data(bio, &enc);
	write_file("encrypted.key", enc, (size_t)enc_len);
	BIO_free(bio);

	der_len = i2d_X509(srv, &der);
	assert_true(der_len > 0);
	write_file("der.pem", der, (size_t)der_len);
	OPENSSL_free(der);

	free(other_key);
	X509_free(srv);
	X509_free(ca);
	EVP_PKEY_free(ca_key);
	EVP_PKEY_free(srv_key);
	EVP_PKEY_free(other);
	return 0;
}

static int teardown(void **state)
{
	size_t i;

	for (i = 0; i < sizeof(file_names) / sizeof(file_names[0]); i++)
		unlink(path(file_names[i]));
	rmdir(dir);
	free(server_pem);
	free(chain_pem);
	free(server_key);
	free(ca_pem);
	return 0;
}

static void test_pem_load_good(void **state)
{
	struct auth_pem pem;
	enum auth_file bad = AUTH_FILE_CLIENT_CA;
	struct mat_error err;

	mat_error_clear(&err);
	assert_int_equal(
	    auth_pem_load(path("server.pem"), path("server.key"), path("ca.pem"), &pem, &bad, &err),
	    MAT_OK);
	assert_string_equal(pem.cert_chain, server_pem);
	assert_string_equal(pem.private_key, server_key);
	assert_string_equal(pem.client_ca, ca_pem);
	assert_int_equal(err.code, MAT_OK);
	assert_int_equal(ERR_peek_error(), 0);
	auth_pem_cleanup(&pem);
	assert_null(pem.cert_chain);
	assert_null(pem.private_key);
	assert_null(pem.client_ca);
	auth_pem_cleanup(&pem); /* twice is harmless */
	auth_pem_cleanup(NULL);
}

static void test_pem_load_chain_and_junk(void **state)
{
	struct auth_pem pem;
	enum auth_file bad;
	struct mat_error err;

	/* Leaf + intermediate/CA in the chain file: the key matches the first certificate. */
	assert_int_equal(auth_pem_load(path("chain.pem"), path("server.key"),
	                               path("ca-and-junk.pem"), &pem, &bad, &err),
	                 MAT_OK);
	assert_string_equal(pem.cert_chain, chain_pem);
	auth_pem_cleanup(&pem);
	/* bad_file and err may be NULL. */
	assert_int_equal(
	    auth_pem_load(path("server.pem"), path("server.key"), path("ca.pem"), &pem, NULL, NULL),
	    MAT_OK);
	auth_pem_cleanup(&pem);
}

struct bad_case {
	const char *cert, *key, *ca; /* file names in dir */
	enum auth_file bad_file;
	const char *why; /* substring of the message besides the path */
};

static void test_pem_load_bad_files(void **state)
{
	static const struct bad_case cases[] = {
	    {"missing.pem", "server.key", "ca.pem", AUTH_FILE_CERT, "cannot open"},
	    {"server.pem", "missing.key", "ca.pem", AUTH_FILE_KEY, "cannot open"},
	    {"server.pem", "server.key", "missing.pem", AUTH_FILE_CLIENT_CA, "cannot open"},
	    {"garbage.pem", "server.key", "ca.pem", AUTH_FILE_CERT, "no PEM certificate"},
	    {"empty.pem", "server.key", "ca.pem", AUTH_FILE_CERT, "empty"},
	    {"der.pem", "server.key", "ca.pem", AUTH_FILE_CERT, "NUL byte"},
	    {"server.key", "server.key", "ca.pem", AUTH_FILE_CERT, "no PEM certificate"},
	    {"server.pem", "other.key", "ca.pem", AUTH_FILE_KEY, "does not match"},
	    {"server.pem", "garbage.pem", "ca.pem", AUTH_FILE_KEY, "no PEM private key"},
	    {"server.pem", "server.pem", "ca.pem", AUTH_FILE_KEY, "no PEM private key"},
	    {"server.pem", "ec-params.key", "ca.pem", AUTH_FILE_KEY, "no PEM private key"},
	    {"server.pem", "encrypted.key", "ca.pem", AUTH_FILE_KEY, "encrypted"},
	    {"server.pem", "empty.pem", "ca.pem", AUTH_FILE_KEY, "empty"},
	    {"server.pem", "server.key", "garbage.pem", AUTH_FILE_CLIENT_CA, "no PEM certificate"},
	    {"server.pem", "server.key", "empty.pem", AUTH_FILE_CLIENT_CA, "empty"},
	    {"server.pem", "server.key", "ca-bad-tail.pem", AUTH_FILE_CLIENT_CA, "certificate 2"},
	    {"server.pem", "server.key", "server.key", AUTH_FILE_CLIENT_CA, "no PEM certificate"},
	    {"server.pem", "server.key", ".", AUTH_FILE_CLIENT_CA, "cannot read"},
	    {"huge.pem", "server.key", "ca.pem", AUTH_FILE_CERT, "larger than"},
	};
	size_t i;

	for (i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		const struct bad_case *c = &cases[i];
		const char *bad_path = c->bad_file == AUTH_FILE_CERT  ? c->cert
		                       : c->bad_file == AUTH_FILE_KEY ? c->key
		                                                      : c->ca;
		struct auth_pem pem;
		enum auth_file bad = AUTH_FILE_CERT;
		struct mat_error err;

		memset(&pem, 0xa5, sizeof(pem));
		mat_error_clear(&err);
		assert_int_equal(
		    auth_pem_load(path(c->cert), path(c->key), path(c->ca), &pem, &bad, &err),
		    MAT_INVALID);
		assert_int_equal(err.code, MAT_INVALID);
		if (bad != c->bad_file)
			fail_msg("case %zu: bad_file %d, want %d (%s)", i, bad, c->bad_file,
			         err.message);
		if (strstr(err.message, path(bad_path)) == NULL ||
		    strstr(err.message, c->why) == NULL)
			fail_msg("case %zu: message \"%s\" lacks \"%s\" or \"%s\"", i, err.message,
			         path(bad_path), c->why);
		/* out stays zeroed on failure, and nothing is left in OpenSSL's error queue. */
		assert_null(pem.cert_chain);
		assert_null(pem.private_key);
		assert_null(pem.client_ca);
		assert_int_equal(ERR_peek_error(), 0);
		auth_pem_cleanup(&pem);
	}
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_pem_load_good),
	    cmocka_unit_test(test_pem_load_chain_and_junk),
	    cmocka_unit_test(test_pem_load_bad_files),
	};

	return cmocka_run_group_tests(tests, setup, teardown);
}
