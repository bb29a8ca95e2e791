/* The principal of a client: derived from the peer's leaf certificate (grpc's x509_pem_cert
 * property), which the TLS handshake has already verified against the client CA. This file does
 * not verify anything itself; it only names the peer, strictly, per docs/permissions.md ("Who you
 * are"). grpc's own peer_spiffe_id is not used: it is absent when a certificate has two URI SANs
 * and unvalidated. auth_principal_from_x509 is the rule itself; the front door's handshake and the
 * XFCC check (auth_tls.c) call it on certificates they verified, so every path names a peer the
 * same way. It also checks the syntax of a principal that a trusted delegator asserts for an end
 * user (auth_principal_check), which never comes from a certificate. */
#include "auth.h"
#include "auth_x509.h"
#include "mat_validate.h"

#include <openssl/err.h>
#include <openssl/pem.h>
#include <openssl/x509.h>
#include <openssl/x509v3.h>

#include <limits.h>
#include <string.h>

/* The first SAN entry of `type` (GEN_URI, GEN_DNS), or NULL. */
static const ASN1_IA5STRING *san_first(const GENERAL_NAMES *sans, int type)
{
	int i;

	for (i = 0; sans != NULL && i < sk_GENERAL_NAME_num(sans); i++) {
		const GENERAL_NAME *gn = sk_GENERAL_NAME_value(sans, i);

		if (gn->type == type)
			return gn->d.ia5; /* uniformResourceIdentifier and dNSName are both IA5 */
	}
	return NULL;
}

/* Checks one identity value and writes prefix + value to out (at least MAT_MAX_PRINCIPAL + 1
 * bytes, checked by the caller). A bad value is an error rather
 * than a reason to fall through to the next kind: falling back from a malformed URI SAN to the
 * CN would let a certificate be read as a different identity than its issuer intended. */
static enum mat_code emit(const char *kind, const char *prefix, const unsigned char *val,
                          size_t len, char *out, struct mat_error *err)
{
	size_t plen = strlen(prefix);

	if (len == 0)
		return mat_error_set(err, MAT_UNAUTHENTICATED,
		                     "client certificate: the %s is empty", kind);
	if (memchr(val, '\0', len) != NULL)
		return mat_error_set(err, MAT_UNAUTHENTICATED,
		                     "client certificate: the %s contains a NUL byte", kind);
	if (!mat_utf8_valid((const char *)val, len))
		return mat_error_set(err, MAT_UNAUTHENTICATED,
		                     "client certificate: the %s is not valid UTF-8", kind);
	if (plen + len > MAT_MAX_PRINCIPAL)
		return mat_error_set(err, MAT_UNAUTHENTICATED,
		                     "client certificate: the principal from its %s would be %zu "
		                     "bytes, over the %d-byte limit",
		                     kind, plen + len, MAT_MAX_PRINCIPAL);
	memcpy(out, prefix, plen);
	memcpy(out + plen, val, len);
	out[plen + len] = '\0';
	return MAT_OK;
}

enum mat_code auth_principal_from_x509(const X509 *cert, char *out, size_t out_size,
                                       struct mat_error *err)
{
	enum mat_code rc = MAT_UNAUTHENTICATED;
	GENERAL_NAMES *sans = NULL;
	unsigned char *cn = NULL;
	const ASN1_IA5STRING *v;
	const X509_NAME *subject;
	int crit = -1, idx, cn_len;

	if (out != NULL && out_size > 0)
		out[0] = '\0';
	if (out == NULL || out_size < MAT_MAX_PRINCIPAL + 1) {
		rc = mat_error_set(err, MAT_INTERNAL, "principal buffer too small");
		goto out;
	}
	if (cert == NULL) {
		mat_error_set(err, MAT_UNAUTHENTICATED, "no client certificate");
		goto out;
	}

	/* crit -1: no SAN extension (fine, fall back to the CN). NULL with any other crit means a
	 * SAN that does not decode or appears twice: refuse rather than guess. */
	sans = X509_get_ext_d2i(cert, NID_subject_alt_name, &crit, NULL);
	if (sans == NULL && crit != -1) {
		mat_error_set(err, MAT_UNAUTHENTICATED,
		              "client certificate: subjectAltName is malformed or repeated");
		goto out;
	}
	v = san_first(sans, GEN_URI);
	if (v != NULL) {
		rc = emit("URI SAN", "", ASN1_STRING_get0_data(v), (size_t)ASN1_STRING_length(v),
		          out, err);
		goto out;
	}
	v = san_first(sans, GEN_DNS);
	if (v != NULL) {
		rc = emit("DNS SAN", "dns:", ASN1_STRING_get0_data(v),
		          (size_t)ASN1_STRING_length(v), out, err);
		goto out;
	}

	/* The first CN, as grpc's x509_common_name property reports it. ASN1_STRING_to_UTF8
	 * converts BMPString and friends so every encoding is compared as UTF-8. */
	subject = X509_get_subject_name(cert);
	idx = subject != NULL ? X509_NAME_get_index_by_NID(subject, NID_commonName, -1) : -1;
	if (idx < 0) {
		mat_error_set(err, MAT_UNAUTHENTICATED,
		              "client certificate has no URI SAN, DNS SAN or subject CN");
		goto out;
	}
	cn_len =
	    ASN1_STRING_to_UTF8(&cn, X509_NAME_ENTRY_get_data(X509_NAME_get_entry(subject, idx)));
	if (cn_len < 0) {
		mat_error_set(err, MAT_UNAUTHENTICATED,
		              "client certificate: the subject CN does not convert to UTF-8");
		goto out;
	}
	rc = emit("subject CN", "cn:", cn, (size_t)cn_len, out, err);
out:
	if (rc != MAT_OK && out != NULL && out_size > 0)
		out[0] = '\0';
	OPENSSL_free(cn);
	GENERAL_NAMES_free(sans);
	return rc;
}

enum mat_code auth_principal_from_pem(const char *pem, size_t len, char *out, size_t out_size,
                                      struct mat_error *err)
{
	enum mat_code rc = MAT_UNAUTHENTICATED;
	BIO *bio = NULL;
	X509 *cert = NULL;

	if (out != NULL && out_size > 0)
		out[0] = '\0';
	if (out == NULL || out_size < MAT_MAX_PRINCIPAL + 1) {
		rc = mat_error_set(err, MAT_INTERNAL, "principal buffer too small");
		goto out;
	}
	if (pem == NULL || len == 0 || len > INT_MAX) {
		mat_error_set(err, MAT_UNAUTHENTICATED, "no client certificate");
		goto out;
	}
	bio = BIO_new_mem_buf(pem, (int)len);
	if (bio == NULL) {
		rc = mat_error_set(err, MAT_INTERNAL, "out of memory");
		goto out;
	}
	/* Only the first PEM block: grpc's x509_pem_cert is the leaf, and a chain appended to it
	 * must never contribute an identity. */
	cert = PEM_read_bio_X509(bio, NULL, NULL, NULL);
	if (cert == NULL) {
		mat_error_set(err, MAT_UNAUTHENTICATED, "client certificate does not parse");
		goto out;
	}
	rc = auth_principal_from_x509(cert, out, out_size, err);
out:
	X509_free(cert);
	BIO_free(bio);
	/* Called on grpc's threads: leave no stale entry in OpenSSL's per-thread error queue for
	 * grpc's TLS code to misread after its next call. */
	ERR_clear_error();
	return rc;
}

static bool scheme_char(unsigned char c, bool first)
{
	if ((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z'))
		return true;
	return !first && ((c >= '0' && c <= '9') || c == '+' || c == '-' || c == '.');
}

enum mat_code auth_principal_check(const char *s, size_t len, const char *field,
                                   struct mat_error *err)
{
	const unsigned char *u = (const unsigned char *)s;
	size_t colon = 0;

	if (len == 0)
		return mat_error_field(err, field,
		                       "is empty; want a principal such as "
		                       "user:alice@corp.example");
	if (len > MAT_MAX_PRINCIPAL)
		return mat_error_field(err, field,
		                       "is %zu bytes, over the %d-byte limit of a principal", len,
		                       MAT_MAX_PRINCIPAL);
	/* Control characters first: a value with a NUL or a newline must never reach the logs or
	 * the audit table, whatever else is wrong with it. */
	for (size_t i = 0; i < len; i++) {
		if (u[i] < 0x20 || u[i] == 0x7f)
			return mat_error_field(err, field,
			                       "contains a control character (byte %zu)", i);
		/* C1 controls U+0080..U+009F are C2 80..C2 9F in UTF-8. */
		if (u[i] == 0xc2 && i + 1 < len && u[i + 1] >= 0x80 && u[i + 1] <= 0x9f)
			return mat_error_field(err, field,
			                       "contains a control character (byte %zu)", i);
	}
	if (!mat_utf8_valid(s, len))
		return mat_error_field(err, field, "is not valid UTF-8");
	while (colon < len && scheme_char(u[colon], colon == 0))
		colon++;
	if (colon == 0 || colon == len || u[colon] != ':')
		return mat_error_field(
		    err, field,
		    "has no scheme: want scheme:rest, e.g. user:alice@corp.example, "
		    "dns:host or a URI");
	if (colon + 1 == len)
		return mat_error_field(err, field, "names no one after \"%.*s:\"", (int)colon, s);
	return MAT_OK;
}
