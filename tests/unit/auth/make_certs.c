/* See make_certs.h. */
#include "make_certs.h"

#include <openssl/bio.h>
#include <openssl/pem.h>
#include <openssl/x509v3.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static void check(int ok, const char *what)
{
	if (!ok) {
		fprintf(stderr, "make_certs: %s failed\n", what);
		abort();
	}
}

EVP_PKEY *tc_key(void)
{
	EVP_PKEY *k = EVP_EC_gen("P-256");

	check(k != NULL, "EVP_EC_gen");
	return k;
}

static void add_san(X509 *x, const struct tc_san *sans, size_t n)
{
	GENERAL_NAMES *gens = sk_GENERAL_NAME_new_null();
	size_t i;

	check(gens != NULL, "sk_GENERAL_NAME_new_null");
	for (i = 0; i < n; i++) {
		GENERAL_NAME *gn = GENERAL_NAME_new();
		ASN1_IA5STRING *s = ASN1_IA5STRING_new();
		size_t len = sans[i].len != 0 ? sans[i].len : strlen(sans[i].value);

		check(gn != NULL && s != NULL, "GENERAL_NAME_new");
		/* ASN1_STRING_set copies the bytes as they are: NULs and non-ASCII included,
		 * which is what the hostile-certificate tests need. */
		check(ASN1_STRING_set(s, sans[i].value, (int)len) == 1, "ASN1_STRING_set");
		GENERAL_NAME_set0_value(gn, sans[i].type, s);
		check(sk_GENERAL_NAME_push(gens, gn) > 0, "sk_GENERAL_NAME_push");
	}
	check(X509_add1_ext_i2d(x, NID_subject_alt_name, gens, 0, X509V3_ADD_DEFAULT) == 1,
	      "X509_add1_ext_i2d(subjectAltName)");
	GENERAL_NAMES_free(gens);
}

X509 *tc_cert(EVP_PKEY *key, const struct tc_spec *spec)
{
	static long serial = 1;
	X509 *x = X509_new();
	X509_NAME *name;
	BASIC_CONSTRAINTS *bc;

	check(x != NULL, "X509_new");
	check(X509_set_version(x, 2) == 1, "X509_set_version");
	check(ASN1_INTEGER_set(X509_get_serialNumber(x), serial++) == 1, "serial");
	check(X509_gmtime_adj(X509_getm_notBefore(x),
	                      spec->not_before != 0 ? spec->not_before : -60) != NULL,
	      "notBefore");
	check(X509_gmtime_adj(X509_getm_notAfter(x),
	                      spec->not_after != 0 ? spec->not_after : 86400) != NULL,
	      "notAfter");
	name = X509_get_subject_name(x);
	check(X509_NAME_add_entry_by_txt(name, "O", MBSTRING_UTF8, (const unsigned char *)"test",
	                                 -1, -1, 0) == 1,
	      "O");
	if (spec->cn != NULL) {
		size_t len = spec->cn_len != 0 ? spec->cn_len : strlen(spec->cn);

		/* A plain type (not MBSTRING_*) stores the bytes without checks or the 64-byte
		 * CN upper bound, so tests can make over-long or malformed CNs. */
		check(X509_NAME_add_entry_by_NID(
		          name, NID_commonName,
		          spec->cn_type != 0 ? spec->cn_type : V_ASN1_UTF8STRING,
		          (const unsigned char *)spec->cn, (int)len, -1, 0) == 1,
		      "CN");
	}
	check(X509_set_issuer_name(x, spec->issuer != NULL ? X509_get_subject_name(spec->issuer)
	                                                   : name) == 1,
	      "issuer");
	check(X509_set_pubkey(x, key) == 1, "X509_set_pubkey");
	if (spec->n_sans > 0)
		add_san(x, spec->sans, spec->n_sans);
	bc = BASIC_CONSTRAINTS_new();
	check(bc != NULL, "BASIC_CONSTRAINTS_new");
	bc->ca = spec->ca ? 0xff : 0;
	check(X509_add1_ext_i2d(x, NID_basic_constraints, bc, 1, X509V3_ADD_DEFAULT) == 1,
	      "basicConstraints");
	BASIC_CONSTRAINTS_free(bc);
	if (spec->eku != 0) {
		EXTENDED_KEY_USAGE *eku = sk_ASN1_OBJECT_new_null();

		check(eku != NULL && sk_ASN1_OBJECT_push(eku, OBJ_nid2obj(spec->eku)) > 0,
		      "extendedKeyUsage");
		check(X509_add1_ext_i2d(x, NID_ext_key_usage, eku, 0, X509V3_ADD_DEFAULT) == 1,
		      "X509_add1_ext_i2d(extendedKeyUsage)");
		sk_ASN1_OBJECT_pop_free(eku, ASN1_OBJECT_free);
	}
	check(X509_sign(x, spec->issuer_key != NULL ? spec->issuer_key : key, EVP_sha256()) > 0,
	      "X509_sign");
	return x;
}

static char *bio_text(BIO *bio, size_t *len)
{
	char *data = NULL;
	long n = BIO_get_mem_data(bio, &data);
	char *out = malloc((size_t)n + 1);

	check(n > 0 && out != NULL, "BIO_get_mem_data");
	memcpy(out, data, (size_t)n);
	out[n] = '\0';
	if (len != NULL)
		*len = (size_t)n;
	BIO_free(bio);
	return out;
}

char *tc_cert_pem(X509 *x, size_t *len)
{
	BIO *bio = BIO_new(BIO_s_mem());

	check(bio != NULL && PEM_write_bio_X509(bio, x) == 1, "PEM_write_bio_X509");
	return bio_text(bio, len);
}

char *tc_key_pem(EVP_PKEY *key, size_t *len)
{
	BIO *bio = BIO_new(BIO_s_mem());

	check(bio != NULL && PEM_write_bio_PrivateKey(bio, key, NULL, NULL, 0, NULL, NULL) == 1,
	      "PEM_write_bio_PrivateKey");
	return bio_text(bio, len);
}

X509_CRL *tc_crl(X509 *issuer, EVP_PKEY *key, X509 *const *revoked, size_t n, long next_update)
{
	X509_CRL *crl = X509_CRL_new();
	ASN1_TIME *t = ASN1_TIME_new();
	size_t i;

	check(crl != NULL && t != NULL, "X509_CRL_new");
	check(X509_CRL_set_version(crl, 1) == 1, "X509_CRL_set_version"); /* v2 */
	check(X509_CRL_set_issuer_name(crl, X509_get_subject_name(issuer)) == 1, "CRL issuer");
	check(X509_gmtime_adj(t, -60) != NULL && X509_CRL_set1_lastUpdate(crl, t) == 1,
	      "lastUpdate");
	check(X509_gmtime_adj(t, next_update) != NULL && X509_CRL_set1_nextUpdate(crl, t) == 1,
	      "nextUpdate");
	for (i = 0; i < n; i++) {
		X509_REVOKED *r = X509_REVOKED_new();
		ASN1_TIME *when = ASN1_TIME_new();

		check(r != NULL && when != NULL, "X509_REVOKED_new");
		check(X509_gmtime_adj(when, -60) != NULL, "revocationDate");
		check(X509_REVOKED_set_serialNumber(r, X509_get_serialNumber(revoked[i])) == 1,
		      "X509_REVOKED_set_serialNumber");
		check(X509_REVOKED_set_revocationDate(r, when) == 1, "revocationDate");
		check(X509_CRL_add0_revoked(crl, r) == 1, "X509_CRL_add0_revoked");
		ASN1_TIME_free(when);
	}
	check(X509_CRL_sort(crl) == 1, "X509_CRL_sort");
	check(X509_CRL_sign(crl, key, EVP_sha256()) > 0, "X509_CRL_sign");
	ASN1_TIME_free(t);
	return crl;
}

char *tc_crl_pem(X509_CRL *crl, size_t *len)
{
	BIO *bio = BIO_new(BIO_s_mem());

	check(bio != NULL && PEM_write_bio_X509_CRL(bio, crl) == 1, "PEM_write_bio_X509_CRL");
	return bio_text(bio, len);
}
