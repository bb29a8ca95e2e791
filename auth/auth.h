/* auth/: the only code that includes OpenSSL. Loads and checks the TLS files, turns the peer's
 * verified leaf certificate into a principal (docs/permissions.md), and decides from a principal's
 * role bindings whether a method may be called. It never reads the database: service/ hands it the
 * bindings it read through storage/. */
#ifndef AUTH_H
#define AUTH_H

#include "mat_error.h"
#include "mat_types.h"

#include <stdbool.h>
#include <stddef.h>

/* PEM material for the server credentials, read from the three configured files. */
struct auth_pem {
	char *cert_chain;  /* server certificate chain, PEM, NUL-terminated */
	char *private_key; /* PEM; cleansed before free */
	char *client_ca;   /* CA bundle that client certificates must chain to, PEM */
};

enum auth_file {
	AUTH_FILE_CERT = 0,
	AUTH_FILE_KEY = 1,
	AUTH_FILE_CLIENT_CA = 2,
	AUTH_FILE_CRL = 3
};

/* Reads and checks the three files: each readable, the certificate and CA parse, the key parses
 * and matches the certificate. On failure *bad_file says which file (so the caller can name the
 * flag) and err says why. `out` is zeroed on entry, filled on MAT_OK; returns MAT_INVALID. */
enum mat_code auth_pem_load(const char *cert_file, const char *key_file, const char *ca_file,
                            struct auth_pem *out, enum auth_file *bad_file,
                            struct mat_error *err) MAT_MUSTCHECK;
/* Frees (and cleanses the key). NULL allowed. */
void auth_pem_cleanup(struct auth_pem *pem);

/* The principal of a peer's leaf certificate (PEM, as grpc's x509_pem_cert property gives it,
 * `len` bytes, not necessarily NUL-terminated): the first URI SAN as is; else "dns:" + first DNS
 * SAN; else "cn:" + subject CN. Writes a NUL-terminated string to out (out_size >=
 * MAT_MAX_PRINCIPAL + 1). No identity, unparsable certificate, or a principal over
 * MAT_MAX_PRINCIPAL bytes -> MAT_UNAUTHENTICATED. */
enum mat_code auth_principal_from_pem(const char *pem, size_t len, char *out, size_t out_size,
                                      struct mat_error *err) MAT_MUSTCHECK;

/* Whether `s` (`len` bytes, not necessarily NUL-terminated; NULL only with len 0) has the syntax
 * of a principal when one is asserted rather than read from a certificate: a scheme (a letter,
 * then letters, digits, '+', '-' or '.') and ':' followed by at least one byte, so a URI SAN
 * as is, "dns:...", "cn:..." or "user:..."; valid UTF-8; no control character (C0, DEL, C1);
 * at most MAT_MAX_PRINCIPAL bytes. MAT_OK, or MAT_INVALID with one field violation on `field`
 * (borrowed, e.g. the name of the header that carried it) saying what is wrong. Pure: no I/O,
 * any thread. */
enum mat_code auth_principal_check(const char *s, size_t len, const char *field,
                                   struct mat_error *err) MAT_MUSTCHECK;

#endif
