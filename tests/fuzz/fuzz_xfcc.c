/* libFuzzer target: auth_xfcc_principal, the x-forwarded-client-cert value a trusted proxy sends
 * (parser, percent-decoding, lenient PEM, verification). The auth_tls it checks against is made
 * once at start-up from certificates and a CRL made in memory (make_certs.c), written to a
 * temporary directory for auth_tls_new and removed. So that mutations also reach the verified
 * paths, the input's first "@GOOD@" becomes the URL-encoded PEM of a client certificate of that
 * CA and its first "@REVOKED@" that of a certificate the CRL revokes (the seeds use both). */
#include "auth.h"
#include "auth_tls.h"
#include "make_certs.h"

#include <openssl/x509v3.h>

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static struct auth_tls *tls;
static char *good_enc, *revoked_enc;

static char *url_encode(const char *s)
{
	size_t len = strlen(s), n = 0;
	char *out = malloc(len * 3 + 1);

	if (out == NULL)
		abort();
	for (size_t i = 0; i < len; i++) {
		unsigned char ch = (unsigned char)s[i];

		if ((ch >= 'a' && ch <= 'z') || (ch >= 'A' && ch <= 'Z') ||
		    (ch >= '0' && ch <= '9'))
			out[n++] = (char)ch;
		else
			n += (size_t)sprintf(out + n, "%%%02X", ch);
	}
	out[n] = '\0';
	return out;
}

static void write_file(const char *dir, const char *name, char *text, char *path, size_t cap)
{
	FILE *f;

	snprintf(path, cap, "%s/%s", dir, name);
	f = fopen(path, "wb");
	if (f == NULL || fwrite(text, 1, strlen(text), f) != strlen(text) || fclose(f) != 0)
		abort();
	free(text);
}

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
	char dir[] = "/tmp/fuzz_xfcc.XXXXXX";
	char paths[4][256];
	EVP_PKEY *ca_key = tc_key(), *key = tc_key();
	const struct tc_spec ca_spec = {.cn = "fuzz CA", .ca = true};
	X509 *ca = tc_cert(ca_key, &ca_spec);
	const struct tc_san srv_sans[] = {{GEN_DNS, "localhost", 0}};
	const struct tc_san cli_sans[] = {{GEN_URI, "spiffe://fuzz/client", 0}};
	const struct tc_spec srv_spec = {
	    .cn = "localhost", .sans = srv_sans, .n_sans = 1, .issuer = ca, .issuer_key = ca_key};
	/* A year, so a long fuzzing campaign does not drift into "expired". */
	const struct tc_spec cli_spec = {.cn = "client",
	                                 .sans = cli_sans,
	                                 .n_sans = 1,
	                                 .issuer = ca,
	                                 .issuer_key = ca_key,
	                                 .not_after = 365L * 86400};
	X509 *srv = tc_cert(key, &srv_spec), *good = tc_cert(key, &cli_spec),
	     *revoked = tc_cert(key, &cli_spec);
	X509_CRL *crl = tc_crl(ca, ca_key, &revoked, 1, 365L * 86400);
	struct auth_tls_files files = {paths[0], paths[1], paths[2], paths[3]};
	enum auth_file bad;
	struct mat_error err;
	char *pem;
	int i;

	if (mkdtemp(dir) == NULL)
		abort();
	write_file(dir, "server.pem", tc_cert_pem(srv, NULL), paths[0], sizeof(paths[0]));
	write_file(dir, "server.key", tc_key_pem(key, NULL), paths[1], sizeof(paths[1]));
	write_file(dir, "ca.pem", tc_cert_pem(ca, NULL), paths[2], sizeof(paths[2]));
	write_file(dir, "crl.pem", tc_crl_pem(crl, NULL), paths[3], sizeof(paths[3]));
	if (auth_tls_new(&files, &tls, &bad, &err) != MAT_OK) {
		fprintf(stderr, "fuzz_xfcc: auth_tls_new: %s\n", err.message);
		abort();
	}
	for (i = 0; i < 4; i++)
		unlink(paths[i]);
	rmdir(dir);
	pem = tc_cert_pem(good, NULL);
	good_enc = url_encode(pem);
	free(pem);
	pem = tc_cert_pem(revoked, NULL);
	revoked_enc = url_encode(pem);
	free(pem);
	X509_CRL_free(crl);
	X509_free(srv);
	X509_free(good);
	X509_free(revoked);
	X509_free(ca);
	EVP_PKEY_free(ca_key);
	EVP_PKEY_free(key);
	return 0;
}

/* data with the first `token` replaced by `with` (a new buffer), or NULL if absent. */
static char *substitute(const char *data, size_t size, const char *token, const char *with,
                        size_t *out_size)
{
	size_t tl = strlen(token), wl = strlen(with);
	char *out;

	for (size_t i = 0; i + tl <= size; i++) {
		if (memcmp(data + i, token, tl) != 0)
			continue;
		out = malloc(size - tl + wl + 1);
		if (out == NULL)
			abort();
		memcpy(out, data, i);
		memcpy(out + i, with, wl);
		memcpy(out + i + wl, data + i + tl, size - i - tl);
		*out_size = size - tl + wl;
		return out;
	}
	return NULL;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	char principal[MAT_MAX_PRINCIPAL + 1];
	struct mat_error err;
	char *a, *b;
	size_t a_size = size, b_size;
	const char *in = (const char *)data;

	a = substitute(in, size, "@GOOD@", good_enc, &a_size);
	if (a != NULL)
		in = a;
	b = substitute(in, a_size, "@REVOKED@", revoked_enc, &b_size);
	if (b != NULL) {
		in = b;
		a_size = b_size;
	}
	mat_error_clear(&err);
	if (auth_xfcc_principal(tls, in, a_size, principal, sizeof(principal), &err) == MAT_OK) {
		/* Whatever was parsed, a success names someone, within the limit. */
		if (principal[0] == '\0' || strlen(principal) > MAT_MAX_PRINCIPAL)
			abort();
	} else if (principal[0] != '\0' || err.message[0] == '\0') {
		abort(); /* a failure leaves no principal and says why */
	}
	free(a);
	free(b);
	return 0;
}
