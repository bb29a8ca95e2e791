/* auth/auth_x509.h: what auth/'s own files share that involves OpenSSL types. Private to auth/
 * (and its unit tests): it includes OpenSSL, which nothing outside auth/ may see, so auth.h
 * and auth_tls.h never include it. */
#ifndef AUTH_X509_H
#define AUTH_X509_H

#include "mat_error.h"

#include <openssl/x509.h>

#include <stddef.h>

/* The principal of a leaf certificate (docs/permissions.md, "Who you are"; the rule
 * auth_principal_from_pem documents): the first URI SAN as is; else "dns:" + first DNS SAN; else
 * "cn:" + subject CN. Names only; verifies nothing (the caller did). out_size >=
 * MAT_MAX_PRINCIPAL + 1. No identity or a bad one -> MAT_UNAUTHENTICATED. Leaves entries in
 * OpenSSL's error queue: the caller clears it. */
enum mat_code auth_principal_from_x509(const X509 *cert, char *out, size_t out_size,
                                       struct mat_error *err) MAT_MUSTCHECK;

/* Reads a whole file (at most 4 MiB, not empty, no NUL byte: PEM text) into a NUL-terminated
 * heap buffer; *out_len without the NUL. MAT_INVALID with a message naming the path. Free with
 * auth_file_free (which cleanses: the buffer may hold a key). */
enum mat_code auth_file_read(const char *path, char **out, size_t *out_len,
                             struct mat_error *err) MAT_MUSTCHECK;
void auth_file_free(char *buf, size_t len);

#endif
