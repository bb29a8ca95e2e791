/* `maturityctl attestation verify --key PUBLIC.pem FILE`, offline: envelopes signed here over
 * DSSE's PAE with Ed25519 and with ECDSA P-256 / SHA-256 verify (exit 0, the statement on
 * stdout); a changed payload, another key or a changed payload type do not (exit 1), and
 * neither do unreadable or malformed files (exit 1). Runs the binary; needs no server. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <openssl/evp.h>
#include <openssl/pem.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "ctl_json.h"

static const char payload_type[] = "application/vnd.in-toto+json";
static const char statement[] = "{\"_type\":\"https://in-toto.io/Statement/v1\",\"subject\":[]}";
static char dir[64];

static char *path(const char *name)
{
	static char buf[4][128];
	static int k;
	char *p = buf[k++ % 4];

	snprintf(p, 128, "%s/%s", dir, name);
	return p;
}

/* Signs PAE(type, body) with key and writes the envelope as DSSE JSON to file. */
static void write_envelope(EVP_PKEY *key, const char *type, const char *body,
                           const char *signed_body, const char *file)
{
	char pae[1024];
	int n = snprintf(pae, sizeof(pae), "DSSEv1 %zu %s %zu %s", strlen(type), type,
	                 strlen(signed_body), signed_body);
	EVP_MD_CTX *ctx = EVP_MD_CTX_new();
	const EVP_MD *md = EVP_PKEY_get_id(key) == EVP_PKEY_ED25519 ? NULL : EVP_sha256();
	unsigned char sig[256];
	size_t siglen = sizeof(sig);
	char *b_body, *b_sig;
	FILE *f;

	assert_int_equal(EVP_DigestSignInit(ctx, NULL, md, NULL, key), 1);
	assert_int_equal(EVP_DigestSign(ctx, sig, &siglen, (unsigned char *)pae, (size_t)n), 1);
	EVP_MD_CTX_free(ctx);
	b_body = ctl_base64_encode((const uint8_t *)body, strlen(body));
	b_sig = ctl_base64_encode(sig, siglen);
	f = fopen(file, "w");
	assert_non_null(f);
	fprintf(f,
	        "{\"payloadType\":\"%s\",\"payload\":\"%s\",\"signatures\":[{\"keyid\":\"k\","
	        "\"sig\":\"%s\"}]}\n",
	        type, b_body, b_sig);
	fclose(f);
	free(b_body);
	free(b_sig);
}

static void write_public(EVP_PKEY *key, const char *file)
{
	FILE *f = fopen(file, "w");

	assert_non_null(f);
	assert_int_equal(PEM_write_PUBKEY(f, key), 1);
	fclose(f);
}

/* Runs `maturityctl attestation verify --key KEY FILE`; stdout into out. */
static int verify(const char *key, const char *file, char *out, size_t n)
{
	int p[2], status;
	size_t got = 0;
	ssize_t r;
	pid_t pid;

	assert_int_equal(pipe(p), 0);
	pid = fork();
	if (pid == 0) {
		dup2(p[1], 1);
		close(p[0]);
		execl(MATURITYCTL_BIN, MATURITYCTL_BIN, "attestation", "verify", "--key", key, file,
		      (char *)NULL);
		_exit(127);
	}
	close(p[1]);
	while (got + 1 < n && (r = read(p[0], out + got, n - 1 - got)) > 0)
		got += (size_t)r;
	out[got] = '\0';
	close(p[0]);
	waitpid(pid, &status, 0);
	return WIFEXITED(status) ? WEXITSTATUS(status) : -1;
}

static void check_key(EVP_PKEY *key, EVP_PKEY *other)
{
	char out[2048];

	write_public(key, path("key.pem"));
	write_public(other, path("other.pem"));
	write_envelope(key, payload_type, statement, statement, path("good.json"));
	assert_int_equal(verify(path("key.pem"), path("good.json"), out, sizeof(out)), 0);
	assert_string_equal(out,
	                    "{\"_type\":\"https://in-toto.io/Statement/v1\",\"subject\":[]}\n");
	assert_int_equal(verify(path("other.pem"), path("good.json"), out, sizeof(out)), 1);
	assert_string_equal(out, "");
	/* The payload changed after signing. */
	write_envelope(key, payload_type, "{\"_type\":\"forged\"}", statement, path("bad.json"));
	assert_int_equal(verify(path("key.pem"), path("bad.json"), out, sizeof(out)), 1);
	/* The payload type is signed too (PAE). */
	write_envelope(key, "text/plain", statement, statement, path("type.json"));
	FILE *f = fopen(path("type.json"), "r+");
	char buf[2048];
	size_t len = fread(buf, 1, sizeof(buf) - 1, f);
	buf[len] = '\0';
	char *t = strstr(buf, "text/plain");
	memcpy(t, "text/plaiN", 10);
	rewind(f);
	fwrite(buf, 1, len, f);
	fclose(f);
	assert_int_equal(verify(path("key.pem"), path("type.json"), out, sizeof(out)), 1);
}

static void test_verify_ed25519(void **state)
{
	EVP_PKEY *k = EVP_PKEY_Q_keygen(NULL, NULL, "ED25519");
	EVP_PKEY *o = EVP_PKEY_Q_keygen(NULL, NULL, "ED25519");

	check_key(k, o);
	EVP_PKEY_free(k);
	EVP_PKEY_free(o);
}

static void test_verify_ecdsa_p256(void **state)
{
	EVP_PKEY *k = EVP_PKEY_Q_keygen(NULL, NULL, "EC", "P-256");
	EVP_PKEY *o = EVP_PKEY_Q_keygen(NULL, NULL, "EC", "P-256");

	check_key(k, o);
	EVP_PKEY_free(k);
	EVP_PKEY_free(o);
}

static void test_verify_unreadable_input_fails(void **state)
{
	char out[256];
	FILE *f = fopen(path("junk.json"), "w");

	fputs("{\"payload\": 3}", f);
	fclose(f);
	assert_int_equal(verify(path("missing.pem"), path("junk.json"), out, sizeof(out)), 1);
	EVP_PKEY *k = EVP_PKEY_Q_keygen(NULL, NULL, "ED25519");
	write_public(k, path("key.pem"));
	EVP_PKEY_free(k);
	assert_int_equal(verify(path("key.pem"), path("junk.json"), out, sizeof(out)), 1);
	assert_int_equal(verify(path("key.pem"), path("missing.json"), out, sizeof(out)), 1);
}

static int setup(void **state)
{
	snprintf(dir, sizeof(dir), "/tmp/test_ctl_attest.XXXXXX");
	return mkdtemp(dir) != NULL ? 0 : -1;
}

static int teardown(void **state)
{
	char cmd[128];

	snprintf(cmd, sizeof(cmd), "rm -rf '%s'", dir);
	return system(cmd) == 0 ? 0 : -1;
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_verify_ed25519),
	    cmocka_unit_test(test_verify_ecdsa_p256),
	    cmocka_unit_test(test_verify_unreadable_input_fails),
	};
	return cmocka_run_group_tests(tests, setup, teardown);
}
