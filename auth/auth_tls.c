/* TLS termination for the front door and verification of a forwarded client certificate (see
 * auth_tls.h). OpenSSL does the protocol and the chain checks; this file decides the settings
 * (TLS 1.2+, client certificate required, ALPN h2 only, no resumption, CRLs), classifies every
 * failure into one metric label, and names the peer by the rule of auth_principal.c.
 *
 * OpenSSL's error queue is per thread and the door's event loop thread also runs other
 * connections (and grpc's TLS-free transport): every entry point clears it before its OpenSSL
 * calls, so a stale entry cannot be blamed on this connection, and after, so none is left for
 * the next one. */
#include "auth_tls.h"
#include "auth_x509.h"

#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/ssl.h>
#include <openssl/x509.h>
#include <openssl/x509_vfy.h>
#include <openssl/x509v3.h>

#include <ctype.h>
#include <errno.h>
#include <limits.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>

/* An XFCC value is one header; Envoy's with a full chain is a few KiB. Anything over this is
 * refused before it is parsed, so a proxy bug cannot make us decode megabytes per call. */
#define AUTH_XFCC_MAX (64u * 1024u)

struct auth_tls {
	atomic_uint refs;
	SSL_CTX *ctx;
	/* The SSL_CTX's own certificate store (not a reference of ours): the client CA bundle
	 * and the CRLs. The XFCC check verifies against it, so a forwarded certificate meets
	 * exactly the rules a direct client meets. X509_STORE locks its own lookups, so
	 * concurrent verifications on many threads are safe. */
	X509_STORE *store;
};

struct auth_tls_conn {
	struct auth_tls *t;
	SSL *ssl;
	bool done;         /* the handshake finished and the peer was named */
	bool failed;       /* a fatal error: OpenSSL forbids SSL_shutdown after one */
	bool socket_empty; /* the last read from the socket returned less than asked */
	char principal[MAT_MAX_PRINCIPAL + 1];
};

static const char *const fail_names[AUTH_TLS_FAIL__COUNT] = {
    [AUTH_TLS_FAIL_NONE] = "none",
    [AUTH_TLS_FAIL_PROTOCOL] = "protocol",
    [AUTH_TLS_FAIL_NO_CERT] = "no_certificate",
    [AUTH_TLS_FAIL_UNTRUSTED] = "untrusted",
    [AUTH_TLS_FAIL_EXPIRED] = "expired",
    [AUTH_TLS_FAIL_REVOKED] = "revoked",
    [AUTH_TLS_FAIL_NO_IDENTITY] = "no_identity",
    [AUTH_TLS_FAIL_CLOSED] = "closed",
};

const char *auth_tls_fail_name(enum auth_tls_fail why)
{
	/* An out-of-range value is a caller bug; a label that says so beats a crash in a
	 * metrics path. */
	if ((unsigned)why >= AUTH_TLS_FAIL__COUNT)
		return "protocol";
	return fail_names[why];
}

/* The reason of the newest OpenSSL error, for messages; never NULL. */
static const char *ssl_reason(void)
{
	const char *r = ERR_reason_error_string(ERR_peek_last_error());

	return r != NULL ? r : "unknown OpenSSL error";
}

/* Refuses to prompt for a passphrase (auth_pem_load already refused encrypted keys). */
static int no_passphrase(char *buf, int size, int rwflag, void *u)
{
	return -1;
}

/* Every certificate of a PEM text that auth_pem_load already parsed, in order; NULL if none
 * or out of memory. */
static STACK_OF(X509) * pem_certs(const char *pem)
{
	STACK_OF(X509) *sk = sk_X509_new_null(), *ret = NULL;
	BIO *bio = BIO_new_mem_buf(pem, -1);
	X509 *x;

	if (sk == NULL || bio == NULL)
		goto out;
	while ((x = PEM_read_bio_X509(bio, NULL, NULL, NULL)) != NULL) {
		if (sk_X509_push(sk, x) <= 0) {
			X509_free(x);
			goto out;
		}
	}
	if (sk_X509_num(sk) > 0) {
		ret = sk;
		sk = NULL;
	}
out:
	BIO_free(bio);
	sk_X509_pop_free(sk, X509_free);
	return ret;
}

/* ALPN: "h2" or nothing. grpc speaks only HTTP/2 and its clients always offer h2; a client
 * offering only other protocols gets a no_application_protocol alert (RFC 7301 §3.2), so an
 * HTTP/1.1 client fails in the handshake instead of sending a request grpc cannot parse. */
static int alpn_select(SSL *ssl, const unsigned char **out, unsigned char *outlen,
                       const unsigned char *in, unsigned int inlen, void *arg)
{
	unsigned int i = 0;

	while (i < inlen) {
		unsigned int n = in[i];

		if (n > inlen - i - 1)
			break; /* malformed list: OpenSSL checks it, but never read past it */
		if (n == 2 && memcmp(in + i + 1, "h2", 2) == 0) {
			*out = in + i + 1;
			*outlen = 2;
			return SSL_TLSEXT_ERR_OK;
		}
		i += 1 + n;
	}
	return SSL_TLSEXT_ERR_ALERT_FATAL;
}

/* A ClientHello without an ALPN extension never reaches alpn_select, and the handshake would
 * succeed with no protocol agreed: refuse it here, before any certificate work. */
static int client_hello(SSL *ssl, int *alert, void *arg)
{
	const unsigned char *ext;
	size_t ext_len;

	if (SSL_client_hello_get0_ext(ssl, TLSEXT_TYPE_application_layer_protocol_negotiation, &ext,
	                              &ext_len) != 1) {
		*alert = SSL_AD_NO_APPLICATION_PROTOCOL;
		return SSL_CLIENT_HELLO_ERROR;
	}
	return SSL_CLIENT_HELLO_SUCCESS;
}

/* The server certificate, its chain and the key, from the text auth_pem_load checked. */
static enum mat_code load_identity(SSL_CTX *ctx, const struct auth_pem *pem,
                                   const struct auth_tls_files *files, enum auth_file *bad,
                                   struct mat_error *err)
{
	enum mat_code rc = MAT_INVALID;
	STACK_OF(X509) *chain = NULL;
	BIO *bio = NULL;
	EVP_PKEY *pkey = NULL;
	int i;

	*bad = AUTH_FILE_CERT;
	chain = pem_certs(pem->cert_chain);
	if (chain == NULL || SSL_CTX_use_certificate(ctx, sk_X509_value(chain, 0)) != 1) {
		mat_error_set(err, MAT_INVALID, "%s: the certificate is not usable: %s",
		              files->cert, ssl_reason());
		goto out;
	}
	for (i = 1; i < sk_X509_num(chain); i++) {
		if (SSL_CTX_add1_chain_cert(ctx, sk_X509_value(chain, i)) != 1) {
			mat_error_set(err, MAT_INVALID,
			              "%s: chain certificate %d is not usable: %s", files->cert,
			              i + 1, ssl_reason());
			goto out;
		}
	}
	*bad = AUTH_FILE_KEY;
	bio = BIO_new_mem_buf(pem->private_key, -1);
	if (bio == NULL) {
		rc = mat_error_set(err, MAT_INTERNAL, "out of memory");
		goto out;
	}
	pkey = PEM_read_bio_PrivateKey(bio, NULL, no_passphrase, NULL);
	if (pkey == NULL || SSL_CTX_use_PrivateKey(ctx, pkey) != 1 ||
	    SSL_CTX_check_private_key(ctx) != 1) {
		mat_error_set(err, MAT_INVALID,
		              "%s: the private key is not usable with the certificate in %s: %s",
		              files->key, files->cert, ssl_reason());
		goto out;
	}
	rc = MAT_OK;
out:
	EVP_PKEY_free(pkey);
	BIO_free(bio);
	sk_X509_pop_free(chain, X509_free);
	return rc;
}

/* The client CA bundle: the trust anchors of the store, and the names the CertificateRequest
 * lists (so a client holding several certificates picks one we accept). On MAT_OK *cas holds
 * the bundle's certificates, for the CRL signer check. */
static enum mat_code load_client_ca(SSL_CTX *ctx, X509_STORE *store, const struct auth_pem *pem,
                                    const char *path, STACK_OF(X509) * *cas, struct mat_error *err)
{
	int i;

	*cas = pem_certs(pem->client_ca);
	if (*cas == NULL)
		return mat_error_set(err, MAT_INVALID, "%s: the client CA bundle is not usable: %s",
		                     path, ssl_reason());
	for (i = 0; i < sk_X509_num(*cas); i++) {
		X509 *ca = sk_X509_value(*cas, i);

		/* A certificate twice in the bundle is accepted (and added once) by both. */
		if (X509_STORE_add_cert(store, ca) != 1 || SSL_CTX_add_client_CA(ctx, ca) != 1)
			return mat_error_set(err, MAT_INVALID,
			                     "%s: client CA certificate %d is not usable: %s", path,
			                     i + 1, ssl_reason());
	}
	return MAT_OK;
}

/* Whether a certificate of `cas` issued and signed `crl`. */
static bool crl_signed_by(X509_CRL *crl, STACK_OF(X509) * cas)
{
	int i;

	for (i = 0; i < sk_X509_num(cas); i++) {
		X509 *ca = sk_X509_value(cas, i);
		EVP_PKEY *pub = X509_get0_pubkey(ca);

		if (X509_NAME_cmp(X509_CRL_get_issuer(crl), X509_get_subject_name(ca)) == 0 &&
		    pub != NULL && X509_CRL_verify(crl, pub) == 1)
			return true;
	}
	return false;
}

/* Every CRL of the file into the store, each checked for a signer in the client CA bundle and
 * for being current.
 *
 * Revocation is checked for the leaf only (X509_V_FLAG_CRL_CHECK, not _ALL): client
 * certificates come from our own CA, whose intermediates are revoked by replacing the bundle.
 * With CRL checking on, OpenSSL needs a current CRL from the leaf's issuer for every handshake:
 * a client whose issuer has no CRL in the file fails with X509_V_ERR_UNABLE_TO_GET_CRL, and
 * once a CRL passes its nextUpdate every client of that CA fails with
 * X509_V_ERR_CRL_HAS_EXPIRED. Both are classified UNTRUSTED (fail closed: a stale list cannot
 * tell a revoked certificate from a good one). The operator publishes a new CRL before
 * nextUpdate and reloads (SIGHUP builds a new auth_tls). A CRL that is already stale, or not
 * yet valid, is refused here, so a reload with it keeps the running configuration and start-up
 * fails with a clear message instead of every handshake failing. */
static enum mat_code load_crls(SSL_CTX *ctx, X509_STORE *store, const char *path,
                               STACK_OF(X509) * cas, struct mat_error *err)
{
	enum mat_code rc = MAT_INVALID;
	char *text = NULL;
	size_t len = 0;
	BIO *bio = NULL;
	X509_CRL *crl = NULL;
	int n = 0;

	rc = auth_file_read(path, &text, &len, err);
	if (rc != MAT_OK)
		goto out;
	rc = MAT_INVALID;
	bio = BIO_new_mem_buf(text, (int)len); /* at most 4 MiB */
	if (bio == NULL) {
		rc = mat_error_set(err, MAT_INTERNAL, "%s: out of memory", path);
		goto out;
	}
	for (;;) {
		unsigned long e;
		const ASN1_TIME *next;

		crl = PEM_read_bio_X509_CRL(bio, NULL, NULL, NULL);
		if (crl == NULL) {
			/* PEM_R_NO_START_LINE after at least one CRL is the normal end. */
			e = ERR_peek_last_error();
			if (ERR_GET_LIB(e) == ERR_LIB_PEM &&
			    ERR_GET_REASON(e) == PEM_R_NO_START_LINE) {
				if (n == 0) {
					mat_error_set(err, MAT_INVALID,
					              "%s: no PEM CRL in the file", path);
					goto out;
				}
				break;
			}
			mat_error_set(err, MAT_INVALID, "%s: CRL %d does not parse: %s", path,
			              n + 1, ssl_reason());
			goto out;
		}
		n++;
		if (!crl_signed_by(crl, cas)) {
			mat_error_set(err, MAT_INVALID,
			              "%s: CRL %d is not signed by a certificate of the client CA "
			              "bundle",
			              path, n);
			goto out;
		}
		if (X509_cmp_current_time(X509_CRL_get0_lastUpdate(crl)) > 0) {
			mat_error_set(
			    err, MAT_INVALID,
			    "%s: CRL %d is not valid yet (its lastUpdate is in the future)", path,
			    n);
			goto out;
		}
		next = X509_CRL_get0_nextUpdate(crl);
		if (next != NULL && X509_cmp_current_time(next) < 0) {
			mat_error_set(
			    err, MAT_INVALID,
			    "%s: CRL %d has expired (its nextUpdate has passed); publish a "
			    "new one",
			    path, n);
			goto out;
		}
		if (X509_STORE_add_crl(store, crl) != 1) {
			mat_error_set(err, MAT_INVALID, "%s: CRL %d is not usable: %s", path, n,
			              ssl_reason());
			goto out;
		}
		X509_CRL_free(crl);
		crl = NULL;
	}
	/* On the store (read by the XFCC check) and on the context's parameters (which
	 * SSL_accept applies over the store's), so both paths check revocation. */
	if (X509_STORE_set_flags(store, X509_V_FLAG_CRL_CHECK) != 1 ||
	    X509_VERIFY_PARAM_set_flags(SSL_CTX_get0_param(ctx), X509_V_FLAG_CRL_CHECK) != 1) {
		rc = mat_error_set(err, MAT_INTERNAL, "%s: cannot enable CRL checking", path);
		goto out;
	}
	rc = MAT_OK;
out:
	X509_CRL_free(crl);
	BIO_free(bio);
	auth_file_free(text, len);
	return rc;
}

enum mat_code auth_tls_new(const struct auth_tls_files *files, struct auth_tls **out,
                           enum auth_file *bad_file, struct mat_error *err)
{
	enum mat_code rc = MAT_INVALID;
	enum auth_file bad = AUTH_FILE_CERT;
	struct auth_pem pem = {0};
	struct auth_tls *t = NULL;
	STACK_OF(X509) *cas = NULL;

	ERR_clear_error();
	*out = NULL;
	/* The checks and messages of grpc's credentials files: readable, parse, key matches. */
	rc = auth_pem_load(files->cert, files->key, files->client_ca, &pem, &bad, err);
	if (rc != MAT_OK)
		goto out;
	rc = MAT_INVALID;
	t = calloc(1, sizeof(*t));
	if (t == NULL) {
		rc = mat_error_set(err, MAT_INTERNAL, "out of memory");
		goto out;
	}
	atomic_init(&t->refs, 1);
	t->ctx = SSL_CTX_new(TLS_server_method());
	if (t->ctx == NULL) {
		rc = mat_error_set(err, MAT_INTERNAL, "cannot create a TLS context: %s",
		                   ssl_reason());
		goto out;
	}
	t->store = SSL_CTX_get_cert_store(t->ctx);
	/* TLS 1.2 is the floor of docs/security.md (and of grpc's own TLS). */
	if (SSL_CTX_set_min_proto_version(t->ctx, TLS1_2_VERSION) != 1) {
		rc = mat_error_set(err, MAT_INTERNAL, "cannot set the minimum TLS version");
		goto out;
	}
	/* No resumption, stateful or by ticket: a resumed session skips certificate
	 * verification, so a client revoked (or a CRL reloaded) after its first handshake would
	 * keep connecting. A full P-256 handshake is cheap; a session cache per idle connection
	 * is not. No renegotiation either: client-initiated renegotiation is a CPU lever and
	 * grpc never needs it. */
	SSL_CTX_set_session_cache_mode(t->ctx, SSL_SESS_CACHE_OFF);
	/* A client that closes its socket without close_notify (most do) ends the connection like
	 * one that sends it: HTTP/2 frames say whether anything was cut short. Otherwise OpenSSL
	 * 3 answers the EOF with a fatal alert, a write into a closed socket that only draws a
	 * reset, for every client leaving (measured: a twelfth of the relay's time while 2,000
	 * clients closed at once). */
	SSL_CTX_set_options(t->ctx, SSL_OP_NO_TICKET | SSL_OP_NO_RENEGOTIATION |
	                                SSL_OP_IGNORE_UNEXPECTED_EOF);
	if (SSL_CTX_set_num_tickets(t->ctx, 0) != 1) {
		rc = mat_error_set(err, MAT_INTERNAL, "cannot disable session tickets");
		goto out;
	}
	/* Partial writes and a moving write buffer suit an event loop relaying through its own
	 * buffers; RELEASE_BUFFERS frees the 34 KiB record buffers of an idle connection, so
	 * thousands of idle clients stay cheap. */
	SSL_CTX_set_mode(t->ctx, SSL_MODE_ENABLE_PARTIAL_WRITE |
	                             SSL_MODE_ACCEPT_MOVING_WRITE_BUFFER |
	                             SSL_MODE_RELEASE_BUFFERS);
	/* Read ahead: one read(2) takes every record the socket holds (up to the buffer), where
	 * OpenSSL would otherwise make two per record (header, then body). The relay reads until
	 * WANT_READ, so nothing stays buffered unseen. The buffer keeps its default size (one
	 * largest record, ~17 KiB) and is still released when empty. */
	SSL_CTX_set_read_ahead(t->ctx, 1);
	SSL_CTX_set_alpn_select_cb(t->ctx, alpn_select, NULL);
	SSL_CTX_set_client_hello_cb(t->ctx, client_hello, NULL);

	rc = load_identity(t->ctx, &pem, files, &bad, err);
	if (rc != MAT_OK)
		goto out;
	bad = AUTH_FILE_CLIENT_CA;
	rc = load_client_ca(t->ctx, t->store, &pem, files->client_ca, &cas, err);
	if (rc != MAT_OK)
		goto out;
	/* A client certificate is mandatory and verified against the store during the
	 * handshake. The sslclient purpose is OpenSSL's default on the server side; set on the
	 * store as well, every verification against it (the XFCC check's too) refuses a
	 * certificate whose extendedKeyUsage leaves out clientAuth. */
	SSL_CTX_set_verify(t->ctx, SSL_VERIFY_PEER | SSL_VERIFY_FAIL_IF_NO_PEER_CERT, NULL);
	if (X509_STORE_set_purpose(t->store, X509_PURPOSE_SSL_CLIENT) != 1) {
		rc = mat_error_set(err, MAT_INTERNAL, "cannot set the verification purpose");
		goto out;
	}
	if (files->crl != NULL) {
		bad = AUTH_FILE_CRL;
		rc = load_crls(t->ctx, t->store, files->crl, cas, err);
		if (rc != MAT_OK)
			goto out;
	}
	*out = t;
	t = NULL;
	mat_error_clear(err);
	rc = MAT_OK;
out:
	if (rc != MAT_OK && bad_file != NULL)
		*bad_file = bad;
	sk_X509_pop_free(cas, X509_free);
	auth_tls_unref(t);
	auth_pem_cleanup(&pem);
	ERR_clear_error();
	return rc;
}

struct auth_tls *auth_tls_ref(struct auth_tls *t)
{
	if (t != NULL)
		atomic_fetch_add_explicit(&t->refs, 1, memory_order_relaxed);
	return t;
}

void auth_tls_unref(struct auth_tls *t)
{
	/* acq_rel: the thread that frees sees every write other holders made before theirs. */
	if (t == NULL || atomic_fetch_sub_explicit(&t->refs, 1, memory_order_acq_rel) != 1)
		return;
	SSL_CTX_free(t->ctx);
	free(t);
}

/* Called by OpenSSL around every operation on the connection's socket BIO: after a read, notes
 * whether the socket had less than OpenSSL asked for (empty, or would block). */
static long socket_watch(BIO *b, int oper, const char *argp, size_t len, int argi, long argl,
                         int ret, size_t *processed)
{
	(void)argp;
	(void)argi;
	(void)argl;
	if (oper == (BIO_CB_READ | BIO_CB_RETURN)) {
		struct auth_tls_conn *c = (struct auth_tls_conn *)BIO_get_callback_arg(b);
		c->socket_empty = ret <= 0 || processed == NULL || *processed < len;
	}
	return ret;
}

struct auth_tls_conn *auth_tls_conn_new(struct auth_tls *t, int fd)
{
	struct auth_tls_conn *c = calloc(1, sizeof(*c)), *ret = NULL;

	ERR_clear_error();
	if (c == NULL)
		goto out;
	c->ssl = SSL_new(t->ctx);
	/* SSL_set_fd makes a socket BIO with BIO_NOCLOSE: the socket stays the caller's. */
	if (c->ssl == NULL || SSL_set_fd(c->ssl, fd) != 1)
		goto out;
	BIO_set_callback_arg(SSL_get_rbio(c->ssl), (char *)c);
	BIO_set_callback_ex(SSL_get_rbio(c->ssl), socket_watch);
	SSL_set_accept_state(c->ssl);
	c->t = auth_tls_ref(t);
	ret = c;
	c = NULL;
out:
	if (c != NULL)
		SSL_free(c->ssl);
	free(c);
	ERR_clear_error();
	return ret;
}

void auth_tls_conn_free(struct auth_tls_conn *c)
{
	if (c == NULL)
		return;
	SSL_free(c->ssl); /* does not close the fd (BIO_NOCLOSE) */
	auth_tls_unref(c->t);
	free(c);
	ERR_clear_error();
}

const char *auth_tls_conn_principal(const struct auth_tls_conn *c)
{
	return c->done ? c->principal : "";
}

/* Whether a verification error is about the CRLs rather than the certificate. */
static bool crl_error(long v)
{
	switch (v) {
	case X509_V_ERR_UNABLE_TO_GET_CRL:
	case X509_V_ERR_CRL_HAS_EXPIRED:
	case X509_V_ERR_CRL_NOT_YET_VALID:
	case X509_V_ERR_CRL_SIGNATURE_FAILURE:
	case X509_V_ERR_UNABLE_TO_GET_CRL_ISSUER:
	case X509_V_ERR_DIFFERENT_CRL_SCOPE:
		return true;
	default:
		return false;
	}
}

/* A certificate verification error as a label. */
static enum auth_tls_fail verify_fail(long v)
{
	switch (v) {
	case X509_V_ERR_CERT_REVOKED:
		return AUTH_TLS_FAIL_REVOKED;
	case X509_V_ERR_CERT_HAS_EXPIRED:
	case X509_V_ERR_CERT_NOT_YET_VALID:
		return AUTH_TLS_FAIL_EXPIRED;
	default:
		/* Includes CRL_HAS_EXPIRED and UNABLE_TO_GET_CRL: see load_crls. */
		return AUTH_TLS_FAIL_UNTRUSTED;
	}
}

/* Whether OpenSSL's error queue holds an SSL-library error with `reason`. Consumes the queue
 * (the caller clears it right after anyway). */
static bool ssl_error_has(int reason)
{
	unsigned long e;

	while ((e = ERR_get_error()) != 0) {
		if (ERR_GET_LIB(e) == ERR_LIB_SSL && ERR_GET_REASON(e) == reason)
			return true;
	}
	return false;
}

/* Why SSL_accept failed with `ssl_err` (SSL_get_error), as io and label. Consumes the
 * error queue. */
static enum auth_tls_io classify(struct auth_tls_conn *c, int ssl_err, enum auth_tls_fail *why)
{
	long v = SSL_get_verify_result(c->ssl);

	/* A failed chain check is the most specific answer, whatever the I/O did after. */
	if (v != X509_V_OK) {
		*why = verify_fail(v);
		return AUTH_TLS_ERROR;
	}
	switch (ssl_err) {
	case SSL_ERROR_ZERO_RETURN:
		/* close_notify, or an EOF (SSL_OP_IGNORE_UNEXPECTED_EOF), mid-handshake */
		*why = AUTH_TLS_FAIL_CLOSED;
		return AUTH_TLS_CLOSED;
	case SSL_ERROR_SYSCALL:
		/* ECONNRESET, EPIPE: the peer left. */
		*why = AUTH_TLS_FAIL_CLOSED;
		return AUTH_TLS_CLOSED;
	case SSL_ERROR_SSL:
		if (ssl_error_has(SSL_R_PEER_DID_NOT_RETURN_A_CERTIFICATE)) {
			*why = AUTH_TLS_FAIL_NO_CERT;
			return AUTH_TLS_ERROR;
		}
		*why = AUTH_TLS_FAIL_PROTOCOL;
		return AUTH_TLS_ERROR;
	default:
		/* Not TLS, no shared version or cipher, no ALPN h2, a bad record, ... */
		*why = AUTH_TLS_FAIL_PROTOCOL;
		return AUTH_TLS_ERROR;
	}
}

enum auth_tls_io auth_tls_handshake(struct auth_tls_conn *c, enum auth_tls_fail *why)
{
	enum auth_tls_io io = AUTH_TLS_ERROR;
	const unsigned char *alpn = NULL;
	unsigned int alpn_len = 0;
	struct mat_error perr;
	int r, e;

	*why = AUTH_TLS_FAIL_NONE;
	if (c->done)
		return AUTH_TLS_OK;
	if (c->failed) {
		*why = AUTH_TLS_FAIL_PROTOCOL;
		return AUTH_TLS_ERROR;
	}
	ERR_clear_error();
	r = SSL_accept(c->ssl);
	if (r != 1) {
		e = SSL_get_error(c->ssl, r);
		if (e == SSL_ERROR_WANT_READ) {
			io = AUTH_TLS_WANT_READ;
			goto out;
		}
		if (e == SSL_ERROR_WANT_WRITE) {
			io = AUTH_TLS_WANT_WRITE;
			goto out;
		}
		io = classify(c, e, why);
		goto fail;
	}
	/* Belt and braces: the callbacks refuse a ClientHello without h2, and OpenSSL has
	 * verified the chain (SSL_VERIFY_FAIL_IF_NO_PEER_CERT), but a session on which either
	 * did not hold must never be relayed to grpc. */
	SSL_get0_alpn_selected(c->ssl, &alpn, &alpn_len);
	if (alpn_len != 2 || memcmp(alpn, "h2", 2) != 0) {
		*why = AUTH_TLS_FAIL_PROTOCOL;
		goto fail;
	}
	if (SSL_get_verify_result(c->ssl) != X509_V_OK) {
		*why = verify_fail(SSL_get_verify_result(c->ssl));
		goto fail;
	}
	if (SSL_get0_peer_certificate(c->ssl) == NULL) {
		*why = AUTH_TLS_FAIL_NO_CERT;
		goto fail;
	}
	mat_error_clear(&perr);
	if (auth_principal_from_x509(SSL_get0_peer_certificate(c->ssl), c->principal,
	                             sizeof(c->principal), &perr) != MAT_OK) {
		*why = AUTH_TLS_FAIL_NO_IDENTITY;
		goto fail;
	}
	c->done = true;
	io = AUTH_TLS_OK;
	goto out;
fail:
	if (io != AUTH_TLS_CLOSED)
		io = AUTH_TLS_ERROR;
	c->failed = true;
	c->principal[0] = '\0';
out:
	ERR_clear_error();
	return io;
}

/* The io of a failed SSL_read_ex/SSL_write_ex. */
static enum auth_tls_io io_error(struct auth_tls_conn *c, int r)
{
	switch (SSL_get_error(c->ssl, r)) {
	case SSL_ERROR_WANT_READ:
		return AUTH_TLS_WANT_READ;
	case SSL_ERROR_WANT_WRITE:
		return AUTH_TLS_WANT_WRITE;
	case SSL_ERROR_ZERO_RETURN:
		/* close_notify, or an EOF without it (SSL_OP_IGNORE_UNEXPECTED_EOF): the end */
		return AUTH_TLS_CLOSED;
	case SSL_ERROR_SYSCALL:
		/* The socket failed: the peer is gone, and there is no session state worth a
		 * close_notify. */
		c->failed = true;
		return AUTH_TLS_CLOSED;
	case SSL_ERROR_SSL:
		c->failed = true;
		return AUTH_TLS_ERROR;
	default:
		c->failed = true;
		return AUTH_TLS_ERROR;
	}
}

enum auth_tls_io auth_tls_read(struct auth_tls_conn *c, void *buf, size_t cap, size_t *n)
{
	enum auth_tls_io io;
	int r;

	*n = 0;
	if (!c->done || c->failed || cap == 0)
		return AUTH_TLS_ERROR;
	ERR_clear_error();
	r = SSL_read_ex(c->ssl, buf, cap, n);
	io = r == 1 ? AUTH_TLS_OK : io_error(c, r);
	ERR_clear_error();
	return io;
}

bool auth_tls_read_drained(const struct auth_tls_conn *c)
{
	return c->socket_empty && SSL_has_pending(c->ssl) == 0;
}

enum auth_tls_io auth_tls_write(struct auth_tls_conn *c, const void *buf, size_t len, size_t *n)
{
	enum auth_tls_io io;
	int r;

	*n = 0;
	if (!c->done || c->failed)
		return AUTH_TLS_ERROR;
	if (len == 0)
		return AUTH_TLS_OK; /* nothing to move; SSL_write_ex would call it an error */
	ERR_clear_error();
	r = SSL_write_ex(c->ssl, buf, len, n);
	io = r == 1 ? AUTH_TLS_OK : io_error(c, r);
	ERR_clear_error();
	return io;
}

void auth_tls_shutdown(struct auth_tls_conn *c)
{
	/* One non-blocking attempt: close_notify is a courtesy (grpc frames say when a stream
	 * ended), so we never wait for the peer's. OpenSSL forbids it after a fatal error. */
	if (c == NULL || !c->done || c->failed)
		return;
	ERR_clear_error();
	(void)SSL_shutdown(c->ssl);
	ERR_clear_error();
}

/* ---- x-forwarded-client-cert ---- */

/* The Cert field of the last element: where its value lies in the header. */
struct xfcc_cert {
	size_t start, end; /* value bytes, without the quotes */
	bool quoted;
	bool found;
};

static bool ows(char ch)
{
	return ch == ' ' || ch == '\t';
}

/* Finds the Cert field of the last element of an Envoy XFCC value. Grammar (Envoy's docs):
 * elements separated by ',', fields by ';', each field key=value, a value optionally in
 * double quotes with backslash escapes; ',' ';' '=' inside quotes are data. Whitespace around
 * keys, values and separators is ignored. Strict otherwise: a field without '=', a quote that
 * never closes, text after a closing quote, a stray quote or two Cert fields in one element
 * make the whole value malformed, because a header we misread is a certificate we misattribute. */
static enum mat_code xfcc_find_cert(const char *s, size_t len, struct xfcc_cert *cert,
                                    struct mat_error *err)
{
	size_t i = 0;

	memset(cert, 0, sizeof(*cert));
	for (;;) {
		/* One field (or an empty one) starting at i. */
		size_t key_start, key_end, val_start, val_end;
		bool quoted = false;

		while (i < len && ows(s[i]))
			i++;
		key_start = i;
		while (i < len && s[i] != '=' && s[i] != ';' && s[i] != ',' && s[i] != '"')
			i++;
		key_end = i;
		while (key_end > key_start && ows(s[key_end - 1]))
			key_end--;
		if (i == len || s[i] != '=') {
			if (key_end > key_start || (i < len && s[i] == '"'))
				return mat_error_set(
				    err, MAT_UNAUTHENTICATED,
				    "x-forwarded-client-cert is malformed: a field "
				    "without '=' at byte %zu",
				    key_start);
			/* An empty field (";;", a trailing ';' or ','): nothing to record. */
			goto separator;
		}
		if (key_end == key_start)
			return mat_error_set(
			    err, MAT_UNAUTHENTICATED,
			    "x-forwarded-client-cert is malformed: a field without "
			    "a key at byte %zu",
			    key_start);
		i++; /* '=' */
		while (i < len && ows(s[i]))
			i++;
		if (i < len && s[i] == '"') {
			quoted = true;
			val_start = ++i;
			while (i < len && s[i] != '"') {
				if (s[i] == '\\')
					i++; /* the escaped byte is data, whatever it is */
				i++;
			}
			if (i >= len)
				return mat_error_set(
				    err, MAT_UNAUTHENTICATED,
				    "x-forwarded-client-cert is malformed: a quoted "
				    "value that never closes");
			val_end = i++;
			while (i < len && ows(s[i]))
				i++;
			if (i < len && s[i] != ';' && s[i] != ',')
				return mat_error_set(
				    err, MAT_UNAUTHENTICATED,
				    "x-forwarded-client-cert is malformed: text after "
				    "a quoted value at byte %zu",
				    i);
		} else {
			val_start = i;
			while (i < len && s[i] != ';' && s[i] != ',') {
				if (s[i] == '"')
					return mat_error_set(err, MAT_UNAUTHENTICATED,
					                     "x-forwarded-client-cert is "
					                     "malformed: a stray quote at "
					                     "byte %zu",
					                     i);
				i++;
			}
			val_end = i;
			while (val_end > val_start && ows(s[val_end - 1]))
				val_end--;
		}
		if (key_end - key_start == 4 && strncasecmp(s + key_start, "cert", 4) == 0) {
			if (cert->found)
				return mat_error_set(
				    err, MAT_UNAUTHENTICATED,
				    "x-forwarded-client-cert is malformed: two Cert "
				    "fields in one element");
			cert->found = true;
			cert->quoted = quoted;
			cert->start = val_start;
			cert->end = val_end;
		}
	separator:
		if (i >= len)
			return MAT_OK;
		if (s[i] == ',') /* a new element: only the last one counts */
			memset(cert, 0, sizeof(*cert));
		i++;
	}
}

static int hex_value(unsigned char ch)
{
	if (ch >= '0' && ch <= '9')
		return ch - '0';
	ch = (unsigned char)tolower(ch);
	if (ch >= 'a' && ch <= 'f')
		return ch - 'a' + 10;
	return -1;
}

/* The Cert value as bytes: backslash escapes removed (quoted values), then percent-decoded.
 * '+' stays '+': it is a base64 character, and Envoy's URL encoding is not a form encoding.
 * Writes into out (at least end - start + 1 bytes), NUL-terminated. */
static enum mat_code xfcc_decode(const char *s, const struct xfcc_cert *cert, char *out,
                                 size_t *out_len, struct mat_error *err)
{
	size_t i, n = 0, m = 0;

	for (i = cert->start; i < cert->end; i++) {
		if (cert->quoted && s[i] == '\\' && i + 1 < cert->end)
			i++;
		out[n++] = s[i];
	}
	for (i = 0; i < n; i++) {
		if (out[i] == '%') {
			int hi = i + 2 < n ? hex_value((unsigned char)out[i + 1]) : -1;
			int lo = i + 2 < n ? hex_value((unsigned char)out[i + 2]) : -1;

			if (hi < 0 || lo < 0)
				return mat_error_set(
				    err, MAT_UNAUTHENTICATED,
				    "x-forwarded-client-cert: the Cert field has a "
				    "bad percent-escape");
			out[m++] = (char)(hi * 16 + lo);
			i += 2;
		} else {
			out[m++] = out[i];
		}
	}
	out[m] = '\0';
	*out_len = m;
	return MAT_OK;
}

/* A byte string found in [s, s + len), or NULL. */
static const char *find(const char *s, size_t len, const char *what)
{
	size_t wl = strlen(what);

	if (wl > len)
		return NULL;
	for (size_t i = 0; i + wl <= len; i++)
		if (memcmp(s + i, what, wl) == 0)
			return s + i;
	return NULL;
}

/* The first certificate of a PEM text, read leniently: whatever whitespace (or none) the
 * proxy left between the markers and in the base64, which PEM_read_bio would refuse for a
 * one-line PEM (HAProxy's ssl_c_der,base64 between markers, nginx's escaped certificate). The
 * DER must be exactly one certificate. */
static X509 *lenient_pem(char *pem, size_t len)
{
	static const char begin[] = "-----BEGIN CERTIFICATE-----";
	static const char end[] = "-----END CERTIFICATE-----";
	const char *b = find(pem, len, begin), *e;
	unsigned char *der = NULL;
	const unsigned char *p;
	char *b64 = NULL;
	size_t n = 0, pad = 0;
	int der_len;
	X509 *x = NULL;

	if (b == NULL)
		return NULL;
	b += sizeof(begin) - 1;
	e = find(b, len - (size_t)(b - pem), end);
	if (e == NULL || e - b > INT_MAX)
		return NULL;
	b64 = malloc((size_t)(e - b) + 1);
	der = malloc((size_t)(e - b) / 4 * 3 + 3);
	if (b64 == NULL || der == NULL)
		goto out;
	for (const char *q = b; q < e; q++) {
		if (isspace((unsigned char)*q))
			continue;
		b64[n++] = *q;
	}
	/* EVP_DecodeBlock wants whole quantums and counts padding as zero bytes. */
	if (n == 0 || n % 4 != 0)
		goto out;
	while (pad < 2 && b64[n - 1 - pad] == '=')
		pad++;
	der_len = EVP_DecodeBlock(der, (const unsigned char *)b64, (int)n);
	if (der_len < 0 || (size_t)der_len < pad)
		goto out;
	der_len -= (int)pad;
	p = der;
	x = d2i_X509(NULL, &p, der_len);
	if (x != NULL && p != der + der_len) {
		X509_free(x); /* trailing bytes: not one certificate */
		x = NULL;
	}
out:
	free(b64);
	free(der);
	return x;
}

enum mat_code auth_xfcc_principal(struct auth_tls *t, const char *value, size_t len, char *out,
                                  size_t out_size, struct mat_error *err)
{
	enum mat_code rc = MAT_UNAUTHENTICATED;
	struct xfcc_cert cert;
	char *pem = NULL;
	size_t pem_len = 0;
	X509 *x = NULL;
	X509_STORE_CTX *sctx = NULL;
	struct mat_error perr;
	int v;

	ERR_clear_error();
	if (out != NULL && out_size > 0)
		out[0] = '\0';
	if (out == NULL || out_size < MAT_MAX_PRINCIPAL + 1) {
		rc = mat_error_set(err, MAT_INTERNAL, "principal buffer too small");
		goto out;
	}
	if (len > AUTH_XFCC_MAX) {
		mat_error_set(err, MAT_UNAUTHENTICATED,
		              "x-forwarded-client-cert is %zu bytes, over the %u-byte limit", len,
		              AUTH_XFCC_MAX);
		goto out;
	}
	if (len > 0 && value == NULL) {
		rc = mat_error_set(err, MAT_INTERNAL, "x-forwarded-client-cert: NULL value");
		goto out;
	}
	rc = xfcc_find_cert(value, len, &cert, err);
	if (rc != MAT_OK)
		goto out;
	rc = MAT_UNAUTHENTICATED;
	if (!cert.found) {
		mat_error_set(err, MAT_UNAUTHENTICATED,
		              "x-forwarded-client-cert: no Cert field in the last element");
		goto out;
	}
	pem = malloc(cert.end - cert.start + 1);
	if (pem == NULL) {
		rc = mat_error_set(err, MAT_INTERNAL, "out of memory");
		goto out;
	}
	rc = xfcc_decode(value, &cert, pem, &pem_len, err);
	if (rc != MAT_OK)
		goto out;
	rc = MAT_UNAUTHENTICATED;
	x = lenient_pem(pem, pem_len);
	if (x == NULL) {
		mat_error_set(err, MAT_UNAUTHENTICATED,
		              "x-forwarded-client-cert: the Cert field is not a certificate");
		goto out;
	}

	/* The checks of the handshake: chain to the client CA, validity now, CRLs when
	 * configured (the store's flags), the sslclient purpose. */
	sctx = X509_STORE_CTX_new();
	if (sctx == NULL || X509_STORE_CTX_init(sctx, t->store, x, NULL) != 1 ||
	    X509_STORE_CTX_set_purpose(sctx, X509_PURPOSE_SSL_CLIENT) != 1) {
		rc = mat_error_set(err, MAT_INTERNAL, "cannot verify a certificate: %s",
		                   ssl_reason());
		goto out;
	}
	if (X509_verify_cert(sctx) != 1) {
		v = X509_STORE_CTX_get_error(sctx);
		switch (verify_fail(v)) {
		case AUTH_TLS_FAIL_REVOKED:
			mat_error_set(err, MAT_UNAUTHENTICATED,
			              "x-forwarded-client-cert: the certificate is revoked");
			break;
		case AUTH_TLS_FAIL_EXPIRED:
			mat_error_set(err, MAT_UNAUTHENTICATED,
			              "x-forwarded-client-cert: the certificate is expired or not "
			              "yet valid (%s)",
			              X509_verify_cert_error_string(v));
			break;
		default:
			if (crl_error(v)) {
				mat_error_set(
				    err, MAT_UNAUTHENTICATED,
				    "x-forwarded-client-cert: revocation cannot be checked "
				    "(%s)",
				    X509_verify_cert_error_string(v));
				break;
			}
			if (v == X509_V_ERR_INVALID_PURPOSE) {
				mat_error_set(err, MAT_UNAUTHENTICATED,
				              "x-forwarded-client-cert: the certificate is not for "
				              "clients (its extendedKeyUsage lacks clientAuth)");
				break;
			}
			mat_error_set(err, MAT_UNAUTHENTICATED,
			              "x-forwarded-client-cert: the certificate does not chain to "
			              "the client CA (%s)",
			              X509_verify_cert_error_string(v));
			break;
		}
		goto out;
	}
	mat_error_clear(&perr);
	if (auth_principal_from_x509(x, out, out_size, &perr) != MAT_OK) {
		rc = mat_error_set(err, perr.code, "x-forwarded-client-cert: no identity: %s",
		                   perr.message);
		goto out;
	}
	rc = MAT_OK;
out:
	if (rc != MAT_OK && out != NULL && out_size > 0)
		out[0] = '\0';
	X509_STORE_CTX_free(sctx);
	X509_free(x);
	free(pem);
	ERR_clear_error();
	return rc;
}
