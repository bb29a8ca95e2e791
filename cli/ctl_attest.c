/* Offline verification of a signed gate decision: a DSSE envelope (JSON) whose signature is over
 * DSSE's pre-authentication encoding PAE(payload_type, payload), made with Ed25519 or with
 * ECDSA P-256 / SHA-256 (DER signature). The one place maturityctl uses OpenSSL. */
#include "ctl.h"
#include "ctl_json.h"

#include "mlops/maturity/v1/gate.pb-c.h"

#include <openssl/evp.h>
#include <openssl/pem.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* "DSSEv1" SP LEN(type) SP type SP LEN(body) SP body, lengths in ASCII decimal. */
static unsigned char *pae(const char *type, const uint8_t *body, size_t body_len, size_t *out_len)
{
	char head[128];
	size_t tlen = strlen(type);
	int h = snprintf(head, sizeof(head), "DSSEv1 %zu ", tlen);
	char mid[32];
	int m = snprintf(mid, sizeof(mid), " %zu ", body_len);
	size_t n = (size_t)h + tlen + (size_t)m + body_len;
	unsigned char *buf = malloc(n + 1);

	if (buf == NULL)
		return NULL;
	memcpy(buf, head, (size_t)h);
	memcpy(buf + h, type, tlen);
	memcpy(buf + (size_t)h + tlen, mid, (size_t)m);
	memcpy(buf + (size_t)h + tlen + (size_t)m, body, body_len);
	*out_len = n;
	return buf;
}

static bool verify_one(EVP_PKEY *key, const unsigned char *msg, size_t len,
                       const ProtobufCBinaryData *sig)
{
	EVP_MD_CTX *ctx = EVP_MD_CTX_new();
	/* Ed25519 hashes internally (no digest may be named); ECDSA here is always SHA-256. */
	const EVP_MD *md = EVP_PKEY_get_id(key) == EVP_PKEY_ED25519 ? NULL : EVP_sha256();
	bool ok = false;

	if (ctx != NULL && EVP_DigestVerifyInit(ctx, NULL, md, NULL, key) == 1)
		ok = EVP_DigestVerify(ctx, sig->data, sig->len, msg, len) == 1;
	EVP_MD_CTX_free(ctx);
	return ok;
}

int ctl_attest_verify(const char *key_pem_file, const char *file)
{
	FILE *kf = fopen(key_pem_file, "r");
	EVP_PKEY *key = NULL;
	ProtobufCMessage *msg = NULL;
	Mlops__Maturity__V1__Envelope *env;
	json_error_t je;
	json_t *j = NULL;
	char err[512];
	unsigned char *buf = NULL;
	size_t len = 0;
	/* Anything short of a good signature is a failed verification (1), bad files included:
	 * a pipeline asks one question. */
	int rc = CTL_EXIT_FAILED;

	if (kf == NULL) {
		/* ctl_usage_error only prints here: the status stays CTL_EXIT_FAILED. */
		ctl_usage_error("cannot read %s", key_pem_file);
		goto out;
	}
	key = PEM_read_PUBKEY(kf, NULL, NULL, NULL);
	fclose(kf);
	if (key == NULL) {
		ctl_usage_error("%s: not a PEM public key", key_pem_file);
		goto out;
	}
	j = json_load_file(file, 0, &je);
	if (j == NULL) {
		if (je.line < 0) /* jansson could not open it: the text says why */
			ctl_usage_error("%s", je.text);
		else
			ctl_usage_error("%s: invalid JSON at line %d: %s", file, je.line, je.text);
		goto out;
	}
	/* The envelope's proto3 JSON form is the DSSE JSON form: the same converter reads it. */
	if (ctl_json_to_message(&mlops__maturity__v1__envelope__descriptor, j, &msg, err,
	                        sizeof(err))) {
		ctl_usage_error("%s: not a DSSE envelope: %s", file, err);
		goto out;
	}
	env = (Mlops__Maturity__V1__Envelope *)msg;
	buf = pae(env->payload_type, env->payload.data, env->payload.len, &len);
	if (buf == NULL)
		goto out;
	for (size_t i = 0; i < env->n_signatures; i++) {
		if (!verify_one(key, buf, len, &env->signatures[i]->sig))
			continue;
		if (fwrite(env->payload.data, 1, env->payload.len, stdout) != env->payload.len ||
		    fputc('\n', stdout) == EOF || fflush(stdout) != 0)
			goto out;
		rc = CTL_EXIT_OK;
		goto out;
	}
	fprintf(stderr, "maturityctl: %s: no signature verifies with %s\n", file, key_pem_file);
out:
	free(buf);
	if (msg != NULL)
		protobuf_c_message_free_unpacked(msg, NULL);
	json_decref(j);
	EVP_PKEY_free(key);
	return rc;
}
