/* Certificates made in the test with the OpenSSL API, so each test states exactly which SANs and
 * CN its certificate has (no files, no openssl CLI). Test support only: aborts on failure. */
#ifndef MAKE_CERTS_H
#define MAKE_CERTS_H

#include <openssl/evp.h>
#include <openssl/x509.h>

#include <stdbool.h>
#include <stddef.h>

struct tc_san {
	int type;          /* GEN_URI, GEN_DNS, GEN_EMAIL */
	const char *value; /* bytes, may contain NUL when len is given */
	size_t len;        /* 0 = strlen(value) */
};

struct tc_spec {
	const char *cn; /* NULL = no CN (subject O=test only) */
	size_t cn_len;  /* 0 = strlen(cn); bytes stored raw, no validation or size limit */
	int cn_type;    /* 0 = V_ASN1_UTF8STRING; e.g. V_ASN1_BMPSTRING */
	const struct tc_san *sans;
	size_t n_sans;
	bool ca;      /* basicConstraints CA:TRUE */
	X509 *issuer; /* NULL = self-signed */
	EVP_PKEY *issuer_key;
	long not_before; /* seconds from now; 0 = -60 */
	long not_after;  /* seconds from now; 0 = one day */
	int eku;         /* 0 = no extendedKeyUsage; else one NID, e.g. NID_server_auth */
};

/* A new EC P-256 key. */
EVP_PKEY *tc_key(void);

/* A certificate for `key` as `spec` says, valid from now for a day unless spec says otherwise.
 * Caller X509_free()s it. */
X509 *tc_cert(EVP_PKEY *key, const struct tc_spec *spec);

/* A CRL of `issuer` signed with `key`, listing the serial numbers of `revoked` (n may be 0),
 * lastUpdate now - 60 s and nextUpdate now + next_update seconds. Caller X509_CRL_free()s it. */
X509_CRL *tc_crl(X509 *issuer, EVP_PKEY *key, X509 *const *revoked, size_t n, long next_update);

/* PEM text, malloc'd and NUL-terminated; *len (if not NULL) without the NUL. Caller free()s. */
char *tc_cert_pem(X509 *x, size_t *len);
char *tc_key_pem(EVP_PKEY *key, size_t *len);
char *tc_crl_pem(X509_CRL *crl, size_t *len);

#endif
