/* Signed gate decisions: the in-toto Statement a decision becomes, DSSE's pre-authentication
 * encoding, and the keys it is signed with (Ed25519, or ECDSA P-256 with SHA-256 and a DER
 * signature). A key is named by its keyid, the lowercase hex SHA-256 of its DER
 * SubjectPublicKeyInfo, so anyone holding the public key can recompute the name. No grpc or
 * protobuf types: the decision comes in as maturity/'s plain structs. docs/gates.md shows how a
 * user verifies what this signs. */
#ifndef AUTH_ATTEST_H
#define AUTH_ATTEST_H

#include "mat_error.h"
#include "mat_gate.h"
#include "mat_types.h"

#include <stdbool.h>
#include <stddef.h>

#define AUTH_ATTEST_PAYLOAD_TYPE "application/vnd.in-toto+json"
#define AUTH_ATTEST_STATEMENT_TYPE "https://in-toto.io/Statement/v1"
#define AUTH_ATTEST_PREDICATE_TYPE "https://maturityd.dev/attestation/gate-decision/v1"
#define AUTH_ATTEST_KEYID_LEN 64 /* hex characters, without the NUL */

/* What a decision says; everything borrowed. */
struct auth_attest_decision {
	const char *organization; /* "organizations/acme" */
	const char *assessment;   /* "organizations/acme/assessments/..." or "" */
	mat_time_us decide_time;
	const char *issuer;
	const struct mat_gate_requirement *requirement;
	const struct mat_gate_result *result; /* allowed, level, unmet and the score judged */
	const struct mat_gate_subject *subjects;
	size_t n_subjects; /* 0: one subject named after the organization, sha256 of the name */
};

/* The in-toto Statement v1 of decision d as compact JSON, byte for byte the same for the same
 * decision (keys in a fixed order, no insignificant whitespace): malloc'd, NUL-terminated,
 * length in *len. NULL when out of memory. */
char *auth_attest_statement(const struct auth_attest_decision *d, size_t *len);

/* DSSE v1 pre-authentication encoding: "DSSEv1" SP LEN(type) SP type SP LEN(body) SP body, with
 * LEN the decimal byte count. malloc'd (not NUL-terminated), length in *len; NULL when out of
 * memory. */
unsigned char *auth_attest_pae(const char *type, const unsigned char *body, size_t body_len,
                               size_t *len);

/* A set of keys: at most one active (signing) key, then verification-only public keys. Immutable
 * once loaded and reference-counted, so a reload swaps sets while calls still sign with the one
 * they took. */
struct auth_attest_keys;

/* Loads `key_file` (a PEM private key, Ed25519 or ECDSA P-256; NULL = no signing key) and
 * `verify_file` (PEM public keys of the same kinds, possibly none; NULL = none). A public key
 * equal to the active one is listed once. On failure *key_failed says whether the key file
 * (true) or the verify file (false) is at fault and err says why (MAT_INVALID). One reference. */
enum mat_code auth_attest_keys_load(const char *key_file, const char *verify_file,
                                    struct auth_attest_keys **out, bool *key_failed,
                                    struct mat_error *err) MAT_MUSTCHECK;
struct auth_attest_keys *auth_attest_keys_ref(struct auth_attest_keys *k);
/* Drops a reference (NULL allowed); the last one frees. Any thread. */
void auth_attest_keys_unref(struct auth_attest_keys *k);

struct auth_attest_key_info {
	const char *keyid;     /* AUTH_ATTEST_KEYID_LEN lowercase hex */
	const char *algorithm; /* "ed25519" or "ecdsa-p256-sha256" */
	const char *public_key_pem;
	bool active;
};

/* The number of keys, and key i (0 = the active key when there is one). */
size_t auth_attest_keys_count(const struct auth_attest_keys *k);
void auth_attest_keys_info(const struct auth_attest_keys *k, size_t i,
                           struct auth_attest_key_info *out);
/* Whether there is a signing key. */
bool auth_attest_keys_can_sign(const struct auth_attest_keys *k);

/* Signs PAE(payload_type, payload) with the active key: *sig malloc'd (*sig_len bytes), *keyid
 * the key's id (valid while k is). MAT_PRECONDITION without an active key; MAT_INTERNAL when
 * OpenSSL fails. Any thread. */
enum mat_code auth_attest_sign(const struct auth_attest_keys *k, const char *payload_type,
                               const unsigned char *payload, size_t payload_len,
                               unsigned char **sig, size_t *sig_len, const char **keyid,
                               struct mat_error *err) MAT_MUSTCHECK;

/* Whether `sig` is a valid signature of PAE(payload_type, payload) by the key named `keyid`
 * (active or verification-only). Any thread. */
bool auth_attest_verify(const struct auth_attest_keys *k, const char *keyid,
                        const char *payload_type, const unsigned char *payload, size_t payload_len,
                        const unsigned char *sig, size_t sig_len);

#endif
