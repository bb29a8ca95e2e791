/* Attestations (auth_attest.h): the Statement is built with jansson so escaping and number
 * formatting are a well-tested library's, never ours; signing and verifying are OpenSSL's
 * EVP_DigestSign/EVP_DigestVerify, which handle Ed25519 (no separate digest) and ECDSA (SHA-256,
 * DER signature) behind one call. */
#include "auth_attest.h"

#include <jansson.h>
#include <openssl/bio.h>
#include <openssl/core_names.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/x509.h>

#include <errno.h>
#include <inttypes.h>
#include <math.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

/* --- the Statement ----------------------------------------------------------------------- */

/* proto3 JSON writes fractions of Durations and Timestamps with 0, 3, 6 or 9 digits; we keep
 * microseconds, so 0, 3 or 6. */
static void fraction(char *out, size_t n, int64_t us)
{
	if (us == 0)
		out[0] = '\0';
	else if (us % 1000 == 0)
		snprintf(out, n, ".%03d", (int)(us / 1000));
	else
		snprintf(out, n, ".%06d", (int)us);
}

/* RFC 3339 in UTC with "Z", as proto3 JSON writes a Timestamp. */
static void rfc3339(mat_time_us t, char out[48])
{
	time_t secs = (time_t)(t >= 0 ? t / 1000000 : (t - 999999) / 1000000);
	int64_t us = t - (int64_t)secs * 1000000;
	struct tm tm;
	char frac[12];

	gmtime_r(&secs, &tm);
	fraction(frac, sizeof(frac), us);
	snprintf(out, 48, "%04d-%02d-%02dT%02d:%02d:%02d%sZ", tm.tm_year + 1900, tm.tm_mon + 1,
	         tm.tm_mday, tm.tm_hour, tm.tm_min, tm.tm_sec, frac);
}

/* A positive Duration as proto3 JSON: "3600s", "1.500s". Nanoseconds below a microsecond are
 * printed too (9 digits) so the value is exactly the request's. */
static void duration(int64_t s, int32_t nanos, char out[48])
{
	if (nanos == 0)
		snprintf(out, 48, "%" PRId64 "s", s);
	else if (nanos % 1000000 == 0)
		snprintf(out, 48, "%" PRId64 ".%03" PRId32 "s", s, nanos / 1000000);
	else if (nanos % 1000 == 0)
		snprintf(out, 48, "%" PRId64 ".%06" PRId32 "s", s, nanos / 1000);
	else
		snprintf(out, 48, "%" PRId64 ".%09" PRId32 "s", s, nanos);
}

/* json_object_set_new that remembers a failure instead of returning it at every call. */
static void put(json_t *obj, const char *key, json_t *v, bool *ok)
{
	if (obj == NULL) {
		json_decref(v);
		*ok = false;
	} else if (v == NULL || json_object_set_new(obj, key, v) != 0) { /* v taken either way */
		*ok = false;
	}
}

static void push(json_t *arr, json_t *v, bool *ok)
{
	if (arr == NULL) {
		json_decref(v);
		*ok = false;
	} else if (v == NULL || json_array_append_new(arr, v) != 0) {
		*ok = false;
	}
}

/* A number the way a reader expects it: 100 and 0 stay integers, 62.5 keeps its fraction. */
static json_t *number(double v)
{
	if (v == floor(v) && fabs(v) < 1e15)
		return json_integer((json_int_t)v);
	return json_real(v);
}

static json_t *sha256_hex_json(const char *s)
{
	unsigned char md[32];
	char hex[65];

	if (EVP_Digest(s, strlen(s), md, NULL, EVP_sha256(), NULL) != 1)
		return NULL;
	for (int i = 0; i < 32; i++)
		snprintf(hex + 2 * i, 3, "%02x", md[i]);
	return json_string(hex);
}

static json_t *subjects_json(const struct auth_attest_decision *d, bool *ok)
{
	json_t *arr = json_array();

	if (d->n_subjects == 0) {
		json_t *s = json_object(), *dg = json_object();
		put(s, "name", json_string(d->organization), ok);
		put(dg, "sha256", sha256_hex_json(d->organization), ok);
		put(s, "digest", dg, ok);
		push(arr, s, ok);
		return arr;
	}
	for (size_t i = 0; i < d->n_subjects; i++) {
		const struct mat_gate_subject *sub = &d->subjects[i];
		json_t *s = json_object(), *dg = json_object();

		put(s, "name", json_string(sub->name), ok);
		for (size_t k = 0; k < sub->n_digests; k++)
			put(dg, sub->digests[k].algorithm, json_string(sub->digests[k].value), ok);
		put(s, "digest", dg, ok);
		push(arr, s, ok);
	}
	return arr;
}

/* The requirement in proto3 JSON: lowerCamelCase names, fields at their default omitted (map
 * values are always written, as proto3 JSON does). */
static json_t *requirement_json(const struct mat_gate_requirement *r, bool *ok)
{
	json_t *o = json_object();

	if (r->min_level != 0)
		put(o, "minLevel", json_integer(r->min_level), ok);
	if (r->n_min_dimension_levels > 0) {
		json_t *m = json_object();
		for (size_t i = 0; i < r->n_min_dimension_levels; i++)
			put(m, r->min_dimension_levels[i].dimension_id,
			    json_integer(r->min_dimension_levels[i].level), ok);
		put(o, "minDimensionLevels", m, ok);
	}
	if (r->n_required_practice_ids > 0) {
		json_t *a = json_array();
		for (size_t i = 0; i < r->n_required_practice_ids; i++)
			push(a, json_string(r->required_practice_ids[i]), ok);
		put(o, "requiredPracticeIds", a, ok);
	}
	if (r->has_max_evidence_age) {
		char buf[48];
		duration(r->max_evidence_age_seconds, r->max_evidence_age_nanos, buf);
		put(o, "maxEvidenceAge", json_string(buf), ok);
	}
	if (r->live)
		put(o, "live", json_true(), ok);
	return o;
}

static json_t *unmet_json(const struct mat_gate_result *res, bool *ok)
{
	json_t *arr = json_array();

	for (size_t i = 0; i < res->n_unmet; i++) {
		const struct mat_gate_unmet *u = &res->unmet[i];
		json_t *o = json_object();

		put(o, "field", json_string(u->field), ok);
		if (u->message[0] != '\0')
			put(o, "message", json_string(u->message), ok);
		if (u->dimension_id != NULL && u->dimension_id[0] != '\0')
			put(o, "dimensionId", json_string(u->dimension_id), ok);
		if (u->practice_id != NULL && u->practice_id[0] != '\0')
			put(o, "practiceId", json_string(u->practice_id), ok);
		if (u->required_level != 0)
			put(o, "requiredLevel", json_integer(u->required_level), ok);
		if (u->actual_level != 0)
			put(o, "actualLevel", json_integer(u->actual_level), ok);
		push(arr, o, ok);
	}
	return arr;
}

char *auth_attest_statement(const struct auth_attest_decision *d, size_t *len)
{
	const struct mat_gate_result *res = d->result;
	json_t *st = json_object(), *pred = json_object();
	char when[48];
	char *out = NULL;
	bool ok = true;

	*len = 0;
	rfc3339(d->decide_time, when);
	/* Insertion order is the output order (JSON_PRESERVE_ORDER): the layout below is the
	 * documented one. */
	put(st, "_type", json_string(AUTH_ATTEST_STATEMENT_TYPE), &ok);
	put(st, "subject", subjects_json(d, &ok), &ok);
	put(st, "predicateType", json_string(AUTH_ATTEST_PREDICATE_TYPE), &ok);
	put(pred, "organization", json_string(d->organization), &ok);
	put(pred, "allowed", json_boolean(res->allowed), &ok);
	put(pred, "level", json_integer(res->level), &ok);
	put(pred, "maturityIndex", number(res->score->maturity_index), &ok);
	put(pred, "assessment", json_string(d->assessment != NULL ? d->assessment : ""), &ok);
	put(pred, "decideTime", json_string(when), &ok);
	put(pred, "issuer", json_string(d->issuer != NULL ? d->issuer : ""), &ok);
	put(pred, "requirement", requirement_json(d->requirement, &ok), &ok);
	put(pred, "unmet", unmet_json(res, &ok), &ok);
	json_incref(pred);
	put(st, "predicate", pred, &ok);
	if (ok) {
		/* 15 significant digits print a two-decimal index as written (33.33, not
		 * 33.329999999999998). */
		out = json_dumps(st, JSON_COMPACT | JSON_PRESERVE_ORDER | JSON_REAL_PRECISION(15));
		if (out != NULL)
			*len = strlen(out);
	}
	json_decref(pred);
	json_decref(st);
	return out;
}

/* --- PAE ----------------------------------------------------------------------------------- */

unsigned char *auth_attest_pae(const char *type, const unsigned char *body, size_t body_len,
                               size_t *len)
{
	size_t tlen = strlen(type);
	char head[64];
	int hlen = snprintf(head, sizeof(head), "DSSEv1 %zu ", tlen);
	char mid[32];
	int mlen = snprintf(mid, sizeof(mid), " %zu ", body_len);
	size_t n = (size_t)hlen + tlen + (size_t)mlen + body_len;
	unsigned char *out = malloc(n ? n : 1);

	if (out == NULL)
		return NULL;
	memcpy(out, head, (size_t)hlen);
	memcpy(out + hlen, type, tlen);
	memcpy(out + (size_t)hlen + tlen, mid, (size_t)mlen);
	if (body_len > 0)
		memcpy(out + (size_t)hlen + tlen + (size_t)mlen, body, body_len);
	*len = n;
	return out;
}

/* --- keys ---------------------------------------------------------------------------------- */

struct key {
	EVP_PKEY *pkey;
	bool ed25519; /* else ECDSA P-256 */
	char keyid[AUTH_ATTEST_KEYID_LEN + 1];
	char *pem; /* public key */
};

struct auth_attest_keys {
	atomic_int refs;
	bool has_active; /* keys[0] signs */
	size_t n;
	struct key *keys;
};

static const char *ssl_reason(void)
{
	const char *r = ERR_reason_error_string(ERR_peek_last_error());
	return r != NULL ? r : "unknown reason";
}

/* Fills k from pkey (taking it): checks the kind, computes keyid and the public PEM. */
static bool key_init(struct key *k, EVP_PKEY *pkey, const char *file, struct mat_error *err)
{
	unsigned char *der = NULL, md[32];
	int der_len;
	BIO *bio = NULL;
	BUF_MEM *mem;

	memset(k, 0, sizeof(*k));
	k->pkey = pkey;
	if (EVP_PKEY_get_id(pkey) == EVP_PKEY_ED25519) {
		k->ed25519 = true;
	} else if (EVP_PKEY_get_id(pkey) == EVP_PKEY_EC) {
		char group[64] = "";
		size_t glen = 0;
		if (EVP_PKEY_get_utf8_string_param(pkey, OSSL_PKEY_PARAM_GROUP_NAME, group,
		                                   sizeof(group), &glen) != 1 ||
		    strcmp(group, "prime256v1") != 0) {
			mat_error_set(
			    err, MAT_INVALID,
			    "%s: an EC key on curve %s; only P-256 (prime256v1) is supported", file,
			    group[0] ? group : "(unknown)");
			return false;
		}
	} else {
		mat_error_set(err, MAT_INVALID,
		              "%s: a %s key; only Ed25519 and ECDSA P-256 keys are supported", file,
		              EVP_PKEY_get0_type_name(pkey) ? EVP_PKEY_get0_type_name(pkey) : "?");
		return false;
	}
	der_len = i2d_PUBKEY(pkey, &der);
	if (der_len <= 0 || EVP_Digest(der, (size_t)der_len, md, NULL, EVP_sha256(), NULL) != 1) {
		OPENSSL_free(der);
		mat_error_set(err, MAT_INVALID, "%s: cannot encode the public key: %s", file,
		              ssl_reason());
		return false;
	}
	OPENSSL_free(der);
	for (int i = 0; i < 32; i++)
		snprintf(k->keyid + 2 * i, 3, "%02x", md[i]);
	bio = BIO_new(BIO_s_mem());
	if (bio == NULL || PEM_write_bio_PUBKEY(bio, pkey) != 1) {
		BIO_free(bio);
		mat_error_set(err, MAT_INVALID, "%s: cannot write the public key: %s", file,
		              ssl_reason());
		return false;
	}
	BIO_get_mem_ptr(bio, &mem);
	k->pem = malloc(mem->length + 1);
	if (k->pem != NULL) {
		memcpy(k->pem, mem->data, mem->length);
		k->pem[mem->length] = '\0';
	}
	BIO_free(bio);
	if (k->pem == NULL) {
		mat_error_set(err, MAT_INVALID, "%s: out of memory", file);
		return false;
	}
	return true;
}

static void key_cleanup(struct key *k)
{
	EVP_PKEY_free(k->pkey);
	free(k->pem);
	memset(k, 0, sizeof(*k));
}

static void keys_free(struct auth_attest_keys *ks)
{
	if (ks == NULL)
		return;
	for (size_t i = 0; i < ks->n; i++)
		key_cleanup(&ks->keys[i]);
	free(ks->keys);
	free(ks);
}

static bool keys_add(struct auth_attest_keys *ks, EVP_PKEY *pkey, const char *file,
                     struct mat_error *err)
{
	struct key k, *grown;

	if (!key_init(&k, pkey, file, err)) {
		key_cleanup(&k);
		return false;
	}
	for (size_t i = 0; i < ks->n; i++) {
		if (strcmp(ks->keys[i].keyid, k.keyid) == 0) {
			key_cleanup(&k); /* listed once */
			return true;
		}
	}
	grown = realloc(ks->keys, (ks->n + 1) * sizeof(*grown));
	if (grown == NULL) {
		key_cleanup(&k);
		mat_error_set(err, MAT_INVALID, "%s: out of memory", file);
		return false;
	}
	ks->keys = grown;
	ks->keys[ks->n++] = k;
	return true;
}

static BIO *open_file(const char *file, struct mat_error *err)
{
	BIO *bio = BIO_new_file(file, "r");

	if (bio == NULL)
		mat_error_set(err, MAT_INVALID, "%s: cannot read: %s", file, strerror(errno));
	return bio;
}

/* An encrypted key would make OpenSSL prompt on the terminal: refuse instead. */
static int no_passphrase(char *buf, int size, int rwflag, void *u)
{
	(void)buf;
	(void)size;
	(void)rwflag;
	(void)u;
	return -1;
}

static bool load_private(struct auth_attest_keys *ks, const char *file, struct mat_error *err)
{
	BIO *bio = open_file(file, err);
	EVP_PKEY *pkey;

	if (bio == NULL)
		return false;
	pkey = PEM_read_bio_PrivateKey(bio, NULL, no_passphrase, NULL);
	BIO_free(bio);
	if (pkey == NULL) {
		mat_error_set(err, MAT_INVALID, "%s: not a PEM private key: %s", file,
		              ssl_reason());
		return false;
	}
	ks->has_active = true;
	return keys_add(ks, pkey, file, err);
}

/* Every PEM block of the file must be a PUBLIC KEY (SubjectPublicKeyInfo); none at all is a
 * valid, empty list. Blocks are read generically first so the end of the file is told apart
 * from a bad block by the PEM layer's own "no start line". */
static bool load_public(struct auth_attest_keys *ks, const char *file, struct mat_error *err)
{
	BIO *bio = open_file(file, err);
	bool ok = true;

	if (bio == NULL)
		return false;
	for (int n = 1; ok; n++) {
		char *name = NULL, *header = NULL;
		unsigned char *data = NULL;
		long len = 0;
		const unsigned char *p;
		EVP_PKEY *pkey;

		ERR_clear_error();
		if (PEM_read_bio(bio, &name, &header, &data, &len) != 1) {
			unsigned long e = ERR_peek_last_error();
			if (ERR_GET_LIB(e) != ERR_LIB_PEM ||
			    ERR_GET_REASON(e) != PEM_R_NO_START_LINE) {
				mat_error_set(err, MAT_INVALID, "%s: PEM block %d is malformed: %s",
				              file, n, ssl_reason());
				ok = false;
			}
			break;
		}
		p = data;
		pkey = strcmp(name, "PUBLIC KEY") == 0 ? d2i_PUBKEY(NULL, &p, len) : NULL;
		if (pkey == NULL) {
			mat_error_set(
			    err, MAT_INVALID,
			    "%s: PEM block %d (%s) is not a public key (BEGIN PUBLIC KEY)", file, n,
			    name);
			ok = false;
		} else if (!keys_add(ks, pkey, file, err)) {
			ok = false;
		}
		OPENSSL_free(name);
		OPENSSL_free(header);
		OPENSSL_free(data);
	}
	BIO_free(bio);
	ERR_clear_error();
	return ok;
}

enum mat_code auth_attest_keys_load(const char *key_file, const char *verify_file,
                                    struct auth_attest_keys **out, bool *key_failed,
                                    struct mat_error *err)
{
	struct auth_attest_keys *ks = calloc(1, sizeof(*ks));

	*out = NULL;
	*key_failed = false;
	if (ks == NULL)
		return mat_error_set(err, MAT_INVALID, "out of memory");
	atomic_init(&ks->refs, 1);
	ERR_clear_error();
	if (key_file != NULL && !load_private(ks, key_file, err)) {
		*key_failed = true;
		keys_free(ks);
		ERR_clear_error();
		return MAT_INVALID;
	}
	if (verify_file != NULL && !load_public(ks, verify_file, err)) {
		keys_free(ks);
		return MAT_INVALID;
	}
	*out = ks;
	return MAT_OK;
}

struct auth_attest_keys *auth_attest_keys_ref(struct auth_attest_keys *k)
{
	if (k != NULL)
		atomic_fetch_add(&k->refs, 1);
	return k;
}

void auth_attest_keys_unref(struct auth_attest_keys *k)
{
	if (k != NULL && atomic_fetch_sub(&k->refs, 1) == 1)
		keys_free(k);
}

size_t auth_attest_keys_count(const struct auth_attest_keys *k)
{
	return k != NULL ? k->n : 0;
}

void auth_attest_keys_info(const struct auth_attest_keys *k, size_t i,
                           struct auth_attest_key_info *out)
{
	const struct key *key = &k->keys[i];

	out->keyid = key->keyid;
	out->algorithm = key->ed25519 ? "ed25519" : "ecdsa-p256-sha256";
	out->public_key_pem = key->pem;
	out->active = i == 0 && k->has_active;
}

bool auth_attest_keys_can_sign(const struct auth_attest_keys *k)
{
	return k != NULL && k->has_active;
}

enum mat_code auth_attest_sign(const struct auth_attest_keys *k, const char *payload_type,
                               const unsigned char *payload, size_t payload_len,
                               unsigned char **sig, size_t *sig_len, const char **keyid,
                               struct mat_error *err)
{
	const struct key *key;
	unsigned char *pae = NULL, *s = NULL;
	size_t pae_len, s_len = 0;
	EVP_MD_CTX *md = NULL;
	enum mat_code rc = MAT_INTERNAL;

	*sig = NULL;
	*sig_len = 0;
	if (!auth_attest_keys_can_sign(k))
		return mat_error_set(err, MAT_PRECONDITION, "no attestation key is configured");
	key = &k->keys[0];
	pae = auth_attest_pae(payload_type, payload, payload_len, &pae_len);
	md = EVP_MD_CTX_new();
	if (pae == NULL || md == NULL)
		goto out;
	/* Ed25519 hashes internally (no digest may be named); ECDSA signs SHA-256 and OpenSSL
	 * returns the DER (ASN.1 SEQUENCE of r, s) form DSSE tools expect. */
	if (EVP_DigestSignInit(md, NULL, key->ed25519 ? NULL : EVP_sha256(), NULL, key->pkey) !=
	        1 ||
	    EVP_DigestSign(md, NULL, &s_len, pae, pae_len) != 1)
		goto out;
	s = malloc(s_len);
	if (s == NULL || EVP_DigestSign(md, s, &s_len, pae, pae_len) != 1)
		goto out;
	*sig = s;
	*sig_len = s_len;
	*keyid = key->keyid;
	s = NULL;
	rc = MAT_OK;
out:
	if (rc != MAT_OK)
		mat_error_set(err, MAT_INTERNAL, "signing the attestation failed: %s",
		              ssl_reason());
	ERR_clear_error();
	free(s);
	free(pae);
	EVP_MD_CTX_free(md);
	return rc;
}

bool auth_attest_verify(const struct auth_attest_keys *k, const char *keyid,
                        const char *payload_type, const unsigned char *payload, size_t payload_len,
                        const unsigned char *sig, size_t sig_len)
{
	const struct key *key = NULL;
	unsigned char *pae;
	size_t pae_len;
	EVP_MD_CTX *md;
	bool ok = false;

	for (size_t i = 0; k != NULL && i < k->n; i++)
		if (strcmp(k->keys[i].keyid, keyid) == 0)
			key = &k->keys[i];
	if (key == NULL)
		return false;
	pae = auth_attest_pae(payload_type, payload, payload_len, &pae_len);
	md = EVP_MD_CTX_new();
	if (pae != NULL && md != NULL &&
	    EVP_DigestVerifyInit(md, NULL, key->ed25519 ? NULL : EVP_sha256(), NULL, key->pkey) ==
	        1)
		ok = EVP_DigestVerify(md, sig, sig_len, pae, pae_len) == 1;
	ERR_clear_error();
	free(pae);
	EVP_MD_CTX_free(md);
	return ok;
}
