/* auth/auth_tls.c: TLS termination and client-certificate verification for the front door
 * (service/svc_door.c), and verification of a certificate a trusted proxy forwarded in
 * x-forwarded-client-cert. maturityd owns its handshakes so that it can bound them (count,
 * time), refuse revoked certificates (CRLs, which grpc's credentials API cannot take) and read
 * every HTTP/2 frame before grpc does (docs/security.md). Sockets, timers and the event loop
 * are the caller's: this module only wraps OpenSSL. */
#ifndef AUTH_TLS_H
#define AUTH_TLS_H

#include "auth.h"
#include "mat_error.h"

#include <stdbool.h>
#include <stddef.h>

/* The server side of TLS: certificate chain, key, the CA bundle client certificates must chain
 * to, and optional CRLs. Immutable once built; reference counted so a reload (SIGHUP) can
 * replace it while connections that started on the old one finish on it. */
struct auth_tls;

struct auth_tls_files {
	const char *cert;      /* server certificate chain, PEM */
	const char *key;       /* server private key, PEM */
	const char *client_ca; /* PEM bundle */
	const char *crl;       /* PEM, one or more CRLs; NULL = no revocation checking */
};

/* Reads and checks the files (as auth_pem_load, plus every CRL parses, is signed by a
 * certificate of the client CA bundle and is current: lastUpdate passed, nextUpdate not). On
 * failure *bad_file names the file and err says why (MAT_INVALID). *out is NULL on entry and set
 * on MAT_OK with one reference. Any thread.
 *
 * With CRLs, the leaf's issuer must have a current CRL in the file at every handshake (and XFCC
 * check): a client of a CA without one, and every client once its CA's CRL passes nextUpdate,
 * is refused as UNTRUSTED (fail closed). Publish the next CRL before nextUpdate and reload: a
 * reload builds a new auth_tls from the files and swaps it in (auth_tls_new refuses a stale
 * CRL, so a failed reload keeps the old one). No session resumption, so a reload applies to
 * every new connection at once. */
enum mat_code auth_tls_new(const struct auth_tls_files *files, struct auth_tls **out,
                           enum auth_file *bad_file, struct mat_error *err) MAT_MUSTCHECK;
/* Reference counting; thread-safe. unref of the last reference frees. NULL allowed. */
struct auth_tls *auth_tls_ref(struct auth_tls *t);
void auth_tls_unref(struct auth_tls *t);

/* One connection's TLS session on a non-blocking stream socket the caller owns (never
 * closed here). Offers ALPN "h2" only. Used by one thread at a time. */
struct auth_tls_conn;

enum auth_tls_io {
	AUTH_TLS_OK = 0,     /* done: handshake finished, or some bytes moved (*n > 0) */
	AUTH_TLS_WANT_READ,  /* call again when the socket is readable */
	AUTH_TLS_WANT_WRITE, /* call again when the socket is writable */
	AUTH_TLS_CLOSED,     /* the peer closed (close_notify or EOF) */
	AUTH_TLS_ERROR       /* fatal: close the socket */
};

/* Why a handshake failed: the label of maturityd_handshakes_failed_total{reason}. */
enum auth_tls_fail {
	AUTH_TLS_FAIL_NONE = 0,
	AUTH_TLS_FAIL_PROTOCOL,    /* not TLS, no shared version/cipher, no ALPN h2, bad record */
	AUTH_TLS_FAIL_NO_CERT,     /* the client sent no certificate */
	AUTH_TLS_FAIL_UNTRUSTED,   /* does not chain to the client CA, bad signature, ... */
	AUTH_TLS_FAIL_EXPIRED,     /* not valid now (expired or not yet valid) */
	AUTH_TLS_FAIL_REVOKED,     /* listed in a CRL */
	AUTH_TLS_FAIL_NO_IDENTITY, /* verified, but no principal (no URI/DNS SAN, no CN, too long)
	                            */
	AUTH_TLS_FAIL_CLOSED,      /* the peer went away mid-handshake */
	AUTH_TLS_FAIL__COUNT
};
/* "protocol", "no_certificate", "untrusted", "expired", "revoked", "no_identity", "closed";
 * "none" for AUTH_TLS_FAIL_NONE. Static strings. */
const char *auth_tls_fail_name(enum auth_tls_fail why);

/* A session for `fd` on `t` (takes a reference on t, released by _free). NULL when out of
 * memory. Writing to a socket the peer closed raises SIGPIPE: the process must ignore it (as
 * service/main.c does). */
struct auth_tls_conn *auth_tls_conn_new(struct auth_tls *t, int fd);
/* Frees the session; does not close the socket. NULL allowed. */
void auth_tls_conn_free(struct auth_tls_conn *c);

/* Advances the server handshake. AUTH_TLS_OK: finished and the client certificate verified
 * (chain, validity, CRLs) and a principal read from it (same rule as auth_principal_from_pem).
 * AUTH_TLS_ERROR or AUTH_TLS_CLOSED: *why says why (never NONE); the session is dead, close the
 * socket (calling again returns AUTH_TLS_ERROR). WANT_*: *why is NONE. */
enum auth_tls_io auth_tls_handshake(struct auth_tls_conn *c, enum auth_tls_fail *why);
/* The verified principal, NUL-terminated; valid until _free. "" before the handshake ended. */
const char *auth_tls_conn_principal(const struct auth_tls_conn *c);

/* Plaintext in and out after the handshake. *n is 0 on entry and the bytes moved on
 * AUTH_TLS_OK. A read may want the socket writable and a write readable (TLS 1.3 key
 * updates): the caller polls for what was asked. write may move fewer than len bytes
 * (partial writes are enabled). After a write returned WANT_*, call it again with the same
 * bytes first (OpenSSL has already sealed them into a record): the buffer may have moved (a
 * compacted ring) and may have grown, but the unsent bytes must not change. CLOSED:
 * close_notify, or EOF without it. Before the handshake finished, after an ERROR, after EOF, or
 * with cap 0 they return AUTH_TLS_ERROR; a write of len 0 is AUTH_TLS_OK with *n 0.
 * Records are read ahead (one read(2) takes all the socket has): read until it returns
 * something other than AUTH_TLS_OK before waiting for the socket, or bytes already taken from
 * it wait unseen. Each call returns at most one record's plaintext. */
enum auth_tls_io auth_tls_read(struct auth_tls_conn *c, void *buf, size_t cap, size_t *n);
enum auth_tls_io auth_tls_write(struct auth_tls_conn *c, const void *buf, size_t len, size_t *n);
/* After a read returned AUTH_TLS_OK: true when OpenSSL holds nothing more and its last read
 * from the socket got less than it asked for, so the socket was empty. The caller may then wait
 * for the socket to be readable (level-triggered: it is, if more came since) instead of reading
 * once more only to be told WANT_READ (a syscall saved per burst). */
bool auth_tls_read_drained(const struct auth_tls_conn *c);
/* Sends close_notify if it can without blocking; harmless to skip. Nothing after a failure.
 * NULL allowed. */
void auth_tls_shutdown(struct auth_tls_conn *c);

/* The caller named by a trusted proxy's x-forwarded-client-cert value (`len` bytes, not
 * NUL-terminated), Envoy's format: elements separated by ',', fields by ';', key=value with
 * values optionally double-quoted; the Cert= field of the LAST element (the one the proxy next
 * to us appended) is the URL-encoded PEM of the client's leaf certificate. The certificate must
 * chain to t's client CA, be valid now and not be revoked by t's CRLs. Writes the principal
 * (out_size >= MAT_MAX_PRINCIPAL + 1). Bad syntax, no Cert field, unparsable, untrusted,
 * expired, revoked or no identity -> MAT_UNAUTHENTICATED with a message saying which. Any
 * thread. */
enum mat_code auth_xfcc_principal(struct auth_tls *t, const char *value, size_t len, char *out,
                                  size_t out_size, struct mat_error *err) MAT_MUSTCHECK;

#endif
