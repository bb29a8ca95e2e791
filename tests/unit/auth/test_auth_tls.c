/* auth_tls: real handshakes in-process over a socketpair, an OpenSSL client on the other end
 * (both sides non-blocking, stepped in turn until the server side is done), with certificates
 * and CRLs made here (make_certs.c) and written to a temporary directory for auth_tls_new. Then
 * the relay's reads and writes, the file checks of auth_tls_new, and auth_xfcc_principal on
 * Envoy-style header values. */
#include "auth.h"
#include "auth_tls.h"
#include "make_certs.h"

#include <openssl/err.h>
#include <openssl/pem.h>
#include <openssl/ssl.h>
#include <openssl/x509v3.h>

#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <setjmp.h>
#include <signal.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cmocka.h>

static char dir[] = "/tmp/test_auth_tls.XXXXXX";

static const char *const file_names[] = {
    "server.pem",    "server.key",    "ca.pem",         "other.key",       "crl.pem",
    "crl-empty.pem", "crl-other.pem", "crl-forged.pem", "crl-garbage.pem", "crl-expired.pem",
    "crl-both.pem",  "ca-both.pem",   "crl-soon.pem",
};

/* Made once in setup. */
static EVP_PKEY *ca_key, *other_ca_key, *srv_key, *cli_key;
static X509 *ca, *other_ca, *srv;
static X509 *good, *rogue, *expired, *revoked, *noid, *dnsonly, *server_eku;
static char *good_pem;
/* The server side: without CRLs, with the CRL revoking `revoked`, with an empty CRL. */
static struct auth_tls *t_plain, *t_crl, *t_crl_empty;

static char *path(const char *name)
{
	static char buf[8][256];
	static int next;
	char *p = buf[next++ % 8];

	snprintf(p, sizeof(buf[0]), "%s/%s", dir, name);
	return p;
}

static void write_text(const char *name, const char *text)
{
	FILE *f = fopen(path(name), "wb");

	assert_non_null(f);
	assert_int_equal(fwrite(text, 1, strlen(text), f), strlen(text));
	assert_int_equal(fclose(f), 0);
}

static void write_free(const char *name, char *text)
{
	write_text(name, text);
	free(text);
}

static X509 *client(const char *uri, X509 *issuer, EVP_PKEY *issuer_key, long nb, long na)
{
	const struct tc_san sans[] = {{GEN_URI, uri, 0}};
	const struct tc_spec spec = {.cn = "client",
	                             .sans = sans,
	                             .n_sans = uri != NULL ? 1 : 0,
	                             .issuer = issuer,
	                             .issuer_key = issuer_key,
	                             .not_before = nb,
	                             .not_after = na};

	return tc_cert(cli_key, &spec);
}

static struct auth_tls *make_tls(const char *crl)
{
	const struct auth_tls_files files = {path("server.pem"), path("server.key"), path("ca.pem"),
	                                     crl != NULL ? path(crl) : NULL};
	struct auth_tls *t = NULL;
	enum auth_file bad;
	struct mat_error err;

	if (auth_tls_new(&files, &t, &bad, &err) != MAT_OK) {
		fprintf(stderr, "auth_tls_new: %s\n", err.message);
		return NULL;
	}
	return t;
}

static int setup(void **state)
{
	const struct tc_spec ca_spec = {.cn = "test CA", .ca = true};
	const struct tc_spec other_spec = {.cn = "other CA", .ca = true};
	const struct tc_san srv_sans[] = {{GEN_DNS, "localhost", 0}};
	const struct tc_san dns_sans[] = {{GEN_DNS, "job.test", 0}};
	struct tc_spec srv_spec = {.cn = "localhost", .sans = srv_sans, .n_sans = 1};
	struct tc_spec noid_spec = {.cn = NULL};
	struct tc_spec dns_spec = {.cn = "x", .sans = dns_sans, .n_sans = 1};
	X509_CRL *crl;
	X509 *forged_issuer;
	char *a, *b, *both;
	int tries;

	signal(SIGPIPE, SIG_IGN); /* as service/main.c: a write to a closed peer is EPIPE */
	if (mkdtemp(dir) == NULL)
		return -1;
	ca_key = tc_key();
	other_ca_key = tc_key();
	srv_key = tc_key();
	cli_key = tc_key();
	ca = tc_cert(ca_key, &ca_spec);
	other_ca = tc_cert(other_ca_key, &other_spec);
	srv_spec.issuer = ca;
	srv_spec.issuer_key = ca_key;
	srv = tc_cert(srv_key, &srv_spec);
	/* test_xfcc_b64_forms leaves base64 '+' raw: make sure the PEM has one. */
	for (tries = 0; tries < 50; tries++) {
		X509_free(good);
		free(good_pem);
		good = client("spiffe://test/client", ca, ca_key, 0, 0);
		good_pem = tc_cert_pem(good, NULL);
		if (strchr(good_pem, '+') != NULL)
			break;
	}
	rogue = client("spiffe://test/client", other_ca, other_ca_key, 0, 0);
	expired = client("spiffe://test/expired", ca, ca_key, -2 * 86400, -86400);
	revoked = client("spiffe://test/revoked", ca, ca_key, 0, 0);
	noid_spec.issuer = ca;
	noid_spec.issuer_key = ca_key;
	noid = tc_cert(cli_key, &noid_spec);
	dns_spec.issuer = ca;
	dns_spec.issuer_key = ca_key;
	dnsonly = tc_cert(cli_key, &dns_spec);
	/* Our CA, a DNS SAN, but meant for servers only. */
	srv_spec.eku = NID_server_auth;
	srv_spec.sans = dns_sans;
	server_eku = tc_cert(cli_key, &srv_spec);

	write_free("server.pem", tc_cert_pem(srv, NULL));
	write_free("server.key", tc_key_pem(srv_key, NULL));
	write_free("other.key", tc_key_pem(other_ca_key, NULL));
	write_free("ca.pem", tc_cert_pem(ca, NULL));
	crl = tc_crl(ca, ca_key, &revoked, 1, 3650L * 86400);
	a = tc_crl_pem(crl, NULL);
	write_text("crl.pem", a);
	X509_CRL_free(crl);
	crl = tc_crl(ca, ca_key, NULL, 0, 3650L * 86400);
	write_free("crl-empty.pem", tc_crl_pem(crl, NULL));
	X509_CRL_free(crl);
	/* From the other CA (another issuer name) ... */
	crl = tc_crl(other_ca, other_ca_key, &revoked, 1, 86400);
	b = tc_crl_pem(crl, NULL);
	write_text("crl-other.pem", b);
	X509_CRL_free(crl);
	/* ... and one that names our CA as issuer but is signed by another key. */
	forged_issuer = ca;
	crl = tc_crl(forged_issuer, other_ca_key, &revoked, 1, 86400);
	write_free("crl-forged.pem", tc_crl_pem(crl, NULL));
	X509_CRL_free(crl);
	/* A good CRL then a bad one: every CRL of the file is checked, not only the first. */
	both = malloc(strlen(a) + strlen(b) + 1);
	assert_non_null(both);
	strcpy(both, a);
	strcat(both, b);
	write_free("crl-both.pem", both);
	free(a);
	free(b);
	write_text("crl-garbage.pem",
	           "-----BEGIN X509 CRL-----\nAAAA!!!!\n-----END X509 CRL-----\n");
	crl = tc_crl(ca, ca_key, NULL, 0, -30); /* nextUpdate 30 s ago */
	write_free("crl-expired.pem", tc_crl_pem(crl, NULL));
	X509_CRL_free(crl);

	/* Two CAs in the bundle, a CRL for one of them only. */
	a = tc_cert_pem(ca, NULL);
	b = tc_cert_pem(other_ca, NULL);
	both = malloc(strlen(a) + strlen(b) + 1);
	assert_non_null(both);
	strcpy(both, a);
	strcat(both, b);
	write_free("ca-both.pem", both);
	free(a);
	free(b);

	t_plain = make_tls(NULL);
	t_crl = make_tls("crl.pem");
	t_crl_empty = make_tls("crl-empty.pem");
	if (t_plain == NULL || t_crl == NULL || t_crl_empty == NULL)
		return -1;
	return 0;
}

static int teardown(void **state)
{
	size_t i;

	auth_tls_unref(t_plain);
	auth_tls_unref(t_crl);
	auth_tls_unref(t_crl_empty);
	for (i = 0; i < sizeof(file_names) / sizeof(file_names[0]); i++)
		unlink(path(file_names[i]));
	rmdir(dir);
	free(good_pem);
	X509_free(good);
	X509_free(rogue);
	X509_free(expired);
	X509_free(revoked);
	X509_free(noid);
	X509_free(dnsonly);
	X509_free(server_eku);
	X509_free(srv);
	X509_free(ca);
	X509_free(other_ca);
	EVP_PKEY_free(ca_key);
	EVP_PKEY_free(other_ca_key);
	EVP_PKEY_free(srv_key);
	EVP_PKEY_free(cli_key);
	return 0;
}

static char *cert_enc(X509 *x);
static char *fmt(const char *f, ...) MAT_PRINTF(1, 2);
static void expect_xfcc_free(struct auth_tls *t, char *value, const char *want, const char *why);

/* ---- a connection: the server under test on fds[0], an OpenSSL client on fds[1] ---- */

struct link {
	int fds[2];
	SSL_CTX *cctx;
	SSL *cli;
	struct auth_tls_conn *srv;
	bool cli_ok; /* the client's side of the handshake finished (set by handshake_ex) */
};

struct client_opts {
	X509 *cert;                /* NULL: no client certificate */
	const unsigned char *alpn; /* wire format; NULL: no ALPN extension */
	unsigned alpn_len;
	int max_version; /* 0: any */
};

static const unsigned char alpn_h2[] = "\x02h2";

static void nonblock(int fd)
{
	int fl = fcntl(fd, F_GETFL);

	assert_true(fl >= 0);
	assert_int_equal(fcntl(fd, F_SETFL, fl | O_NONBLOCK), 0);
}

static void link_open(struct link *l, struct auth_tls *t, const struct client_opts *o)
{
	memset(l, 0, sizeof(*l));
	assert_int_equal(socketpair(AF_UNIX, SOCK_STREAM, 0, l->fds), 0);
	nonblock(l->fds[0]);
	nonblock(l->fds[1]);
	l->cctx = SSL_CTX_new(TLS_client_method());
	assert_non_null(l->cctx);
	/* The client checks the server too, as grpc's would. */
	assert_int_equal(X509_STORE_add_cert(SSL_CTX_get_cert_store(l->cctx), ca), 1);
	SSL_CTX_set_verify(l->cctx, SSL_VERIFY_PEER, NULL);
	SSL_CTX_set_mode(l->cctx, SSL_MODE_ENABLE_PARTIAL_WRITE);
	if (o->cert != NULL) {
		assert_int_equal(SSL_CTX_use_certificate(l->cctx, o->cert), 1);
		assert_int_equal(SSL_CTX_use_PrivateKey(l->cctx, cli_key), 1);
	}
	if (o->alpn != NULL)
		assert_int_equal(SSL_CTX_set_alpn_protos(l->cctx, o->alpn, o->alpn_len), 0);
	if (o->max_version != 0)
		assert_int_equal(SSL_CTX_set_max_proto_version(l->cctx, o->max_version), 1);
	l->cli = SSL_new(l->cctx);
	assert_non_null(l->cli);
	assert_int_equal(SSL_set_fd(l->cli, l->fds[1]), 1);
	SSL_set_connect_state(l->cli);
	l->srv = auth_tls_conn_new(t, l->fds[0]);
	assert_non_null(l->srv);
	assert_string_equal(auth_tls_conn_principal(l->srv), "");
}

static void link_close(struct link *l)
{
	auth_tls_conn_free(l->srv);
	SSL_free(l->cli);
	SSL_CTX_free(l->cctx);
	if (l->fds[0] >= 0)
		close(l->fds[0]);
	if (l->fds[1] >= 0)
		close(l->fds[1]);
	ERR_clear_error(); /* the client's errors, not the module's */
}

/* Steps the client (until it is done or fails) and the server in turn until the server side
 * finishes. `stale`: put an unrelated error into the thread's OpenSSL error queue before
 * every server step, as another connection on the same thread could. */
static enum auth_tls_io handshake_ex(struct link *l, enum auth_tls_fail *why, bool stale)
{
	bool cli_active = true;
	int i;

	for (i = 0; i < 1000; i++) {
		enum auth_tls_io io;

		if (cli_active) {
			int r = SSL_do_handshake(l->cli);

			if (r == 1) {
				cli_active = false;
				l->cli_ok = true;
			} else {
				int e = SSL_get_error(l->cli, r);

				if (e != SSL_ERROR_WANT_READ && e != SSL_ERROR_WANT_WRITE)
					cli_active = false;
			}
			ERR_clear_error();
		}
		if (stale)
			ERR_raise(ERR_LIB_SSL, SSL_R_BAD_LENGTH);
		io = auth_tls_handshake(l->srv, why);
		/* Whatever happened, nothing is left behind for the next connection. */
		assert_int_equal(ERR_peek_error(), 0);
		if (io != AUTH_TLS_WANT_READ && io != AUTH_TLS_WANT_WRITE)
			return io;
		assert_int_equal(*why, AUTH_TLS_FAIL_NONE);
	}
	fail_msg("handshake did not finish");
	return AUTH_TLS_ERROR;
}

static enum auth_tls_io handshake(struct link *l, enum auth_tls_fail *why)
{
	return handshake_ex(l, why, false);
}

/* One whole handshake with `o` against `t`: its result and label. */
static bool last_cli_ok; /* whether the client's side finished in the last expect_handshake */

static void expect_handshake(struct auth_tls *t, const struct client_opts *o,
                             enum auth_tls_io want_io, enum auth_tls_fail want_why)
{
	struct link l;
	enum auth_tls_fail why = AUTH_TLS_FAIL__COUNT;

	link_open(&l, t, o);
	assert_int_equal(handshake(&l, &why), want_io);
	assert_int_equal(why, want_why);
	last_cli_ok = l.cli_ok;
	if (want_io != AUTH_TLS_OK)
		assert_string_equal(auth_tls_conn_principal(l.srv), "");
	/* A failed session stays failed. */
	if (want_io == AUTH_TLS_ERROR) {
		assert_int_equal(auth_tls_handshake(l.srv, &why), AUTH_TLS_ERROR);
		assert_int_not_equal(why, AUTH_TLS_FAIL_NONE);
	}
	link_close(&l);
}

static void test_handshake_good(void **state)
{
	const struct client_opts o = {good, alpn_h2, 3, 0};
	struct link l;
	enum auth_tls_fail why;

	link_open(&l, t_plain, &o);
	assert_int_equal(handshake(&l, &why), AUTH_TLS_OK);
	assert_int_equal(why, AUTH_TLS_FAIL_NONE);
	assert_string_equal(auth_tls_conn_principal(l.srv), "spiffe://test/client");
	/* Again: done is done. */
	assert_int_equal(auth_tls_handshake(l.srv, &why), AUTH_TLS_OK);
	/* The client agreed on h2 and on TLS 1.3 (what OpenSSL picks by default). */
	{
		const unsigned char *p;
		unsigned n;

		SSL_get0_alpn_selected(l.cli, &p, &n);
		assert_int_equal(n, 2);
		assert_memory_equal(p, "h2", 2);
		assert_int_equal(SSL_version(l.cli), TLS1_3_VERSION);
	}
	link_close(&l);
}

static void test_handshake_tls12_and_alpn_list(void **state)
{
	/* TLS 1.2 is accepted, and h2 is found anywhere in the client's list. */
	const unsigned char list[] = "\x08http/1.1\x02h2";
	const struct client_opts o12 = {good, alpn_h2, 3, TLS1_2_VERSION};
	const struct client_opts olist = {good, list, sizeof(list) - 1, 0};

	expect_handshake(t_plain, &o12, AUTH_TLS_OK, AUTH_TLS_FAIL_NONE);
	expect_handshake(t_plain, &olist, AUTH_TLS_OK, AUTH_TLS_FAIL_NONE);
}

static void test_handshake_principal_rule(void **state)
{
	/* The principal follows auth_principal_from_pem's rule: DNS SAN -> "dns:". */
	const struct client_opts o = {dnsonly, alpn_h2, 3, 0};
	struct link l;
	enum auth_tls_fail why;

	link_open(&l, t_plain, &o);
	assert_int_equal(handshake(&l, &why), AUTH_TLS_OK);
	assert_string_equal(auth_tls_conn_principal(l.srv), "dns:job.test");
	link_close(&l);
}

static void test_handshake_no_cert(void **state)
{
	const struct client_opts o = {NULL, alpn_h2, 3, 0};
	const struct client_opts o12 = {NULL, alpn_h2, 3, TLS1_2_VERSION};

	expect_handshake(t_plain, &o, AUTH_TLS_ERROR, AUTH_TLS_FAIL_NO_CERT);
	expect_handshake(t_plain, &o12, AUTH_TLS_ERROR, AUTH_TLS_FAIL_NO_CERT);
}

static void test_handshake_untrusted(void **state)
{
	const struct client_opts o = {rogue, alpn_h2, 3, 0};

	expect_handshake(t_plain, &o, AUTH_TLS_ERROR, AUTH_TLS_FAIL_UNTRUSTED);
}

static void test_handshake_server_eku(void **state)
{
	/* A certificate whose extendedKeyUsage says serverAuth only is not a client's. */
	const struct client_opts o = {server_eku, alpn_h2, 3, 0};

	expect_handshake(t_plain, &o, AUTH_TLS_ERROR, AUTH_TLS_FAIL_UNTRUSTED);
}

static void test_handshake_expired(void **state)
{
	const struct client_opts o = {expired, alpn_h2, 3, 0};

	expect_handshake(t_plain, &o, AUTH_TLS_ERROR, AUTH_TLS_FAIL_EXPIRED);
}

static void test_handshake_revoked(void **state)
{
	const struct client_opts o = {revoked, alpn_h2, 3, 0};
	const struct client_opts og = {good, alpn_h2, 3, 0};

	expect_handshake(t_crl, &o, AUTH_TLS_ERROR, AUTH_TLS_FAIL_REVOKED);
	/* The CRL lists only `revoked`: others pass the CRL check. */
	expect_handshake(t_crl, &og, AUTH_TLS_OK, AUTH_TLS_FAIL_NONE);
	/* The same certificate without CRLs, or with an empty one, is fine. */
	expect_handshake(t_plain, &o, AUTH_TLS_OK, AUTH_TLS_FAIL_NONE);
	expect_handshake(t_crl_empty, &o, AUTH_TLS_OK, AUTH_TLS_FAIL_NONE);
}

static void test_crl_missing_for_issuer(void **state)
{
	/* With CRL checking on, a client whose issuer has no CRL in the file is refused (fail
	 * closed), as untrusted; the other CA's clients are fine. */
	const struct auth_tls_files files = {path("server.pem"), path("server.key"),
	                                     path("ca-both.pem"), path("crl.pem")};
	const struct auth_tls_files nocrl = {path("server.pem"), path("server.key"),
	                                     path("ca-both.pem"), NULL};
	const struct client_opts o_other = {rogue, alpn_h2, 3, 0};
	const struct client_opts o_good = {good, alpn_h2, 3, 0};
	struct auth_tls *t = NULL;
	enum auth_file bad;
	struct mat_error err;
	char *r = cert_enc(rogue);

	assert_int_equal(auth_tls_new(&files, &t, &bad, &err), MAT_OK);
	expect_handshake(t, &o_other, AUTH_TLS_ERROR, AUTH_TLS_FAIL_UNTRUSTED);
	expect_handshake(t, &o_good, AUTH_TLS_OK, AUTH_TLS_FAIL_NONE);
	expect_xfcc_free(t, fmt("Cert=%s", r), NULL, "revocation cannot be checked");
	auth_tls_unref(t);
	/* Without the CRL the same bundle accepts it. */
	t = NULL;
	assert_int_equal(auth_tls_new(&nocrl, &t, &bad, &err), MAT_OK);
	expect_handshake(t, &o_other, AUTH_TLS_OK, AUTH_TLS_FAIL_NONE);
	auth_tls_unref(t);
	free(r);
}

static void test_crl_goes_stale(void **state)
{
	/* A CRL past its nextUpdate: OpenSSL refuses to decide (X509_V_ERR_CRL_HAS_EXPIRED) and
	 * every client of that CA is refused as untrusted until a new CRL is loaded. */
	const struct client_opts o = {good, alpn_h2, 3, 0};
	/* Current for 3 s more (made here: setup may have been slow under valgrind). */
	X509_CRL *crl = tc_crl(ca, ca_key, NULL, 0, 3);
	struct auth_tls *t;
	char *g = cert_enc(good);

	write_free("crl-soon.pem", tc_crl_pem(crl, NULL));
	X509_CRL_free(crl);
	t = make_tls("crl-soon.pem");
	assert_non_null(t);
	expect_handshake(t, &o, AUTH_TLS_OK, AUTH_TLS_FAIL_NONE);
	expect_xfcc_free(t, fmt("Cert=%s", g), "spiffe://test/client", NULL);
	sleep(4);
	expect_handshake(t, &o, AUTH_TLS_ERROR, AUTH_TLS_FAIL_UNTRUSTED);
	expect_xfcc_free(t, fmt("Cert=%s", g), NULL, "revocation cannot be checked");
	auth_tls_unref(t);
	free(g);
}

static void test_handshake_no_identity(void **state)
{
	const struct client_opts o = {noid, alpn_h2, 3, 0};

	expect_handshake(t_plain, &o, AUTH_TLS_ERROR, AUTH_TLS_FAIL_NO_IDENTITY);
}

static void test_handshake_no_h2(void **state)
{
	const unsigned char http1[] = "\x08http/1.1";
	const struct client_opts none = {good, NULL, 0, 0};
	const struct client_opts other = {good, http1, sizeof(http1) - 1, 0};
	const struct client_opts none12 = {good, NULL, 0, TLS1_2_VERSION};

	/* Refused in the handshake with an alert (the ClientHello callback, the ALPN callback),
	 * not after it: the client never finishes either. */
	expect_handshake(t_plain, &none, AUTH_TLS_ERROR, AUTH_TLS_FAIL_PROTOCOL);
	assert_false(last_cli_ok);
	expect_handshake(t_plain, &other, AUTH_TLS_ERROR, AUTH_TLS_FAIL_PROTOCOL);
	assert_false(last_cli_ok);
	expect_handshake(t_plain, &none12, AUTH_TLS_ERROR, AUTH_TLS_FAIL_PROTOCOL);
	assert_false(last_cli_ok);
}

static void test_handshake_plaintext(void **state)
{
	static const char req[] = "GET / HTTP/1.1\r\nHost: localhost\r\n\r\n";
	/* An HTTP/2 prior-knowledge client (h2c) is not TLS either. */
	static const char h2c[] = "PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n";
	const char *const inputs[] = {req, h2c};
	const struct client_opts o = {good, alpn_h2, 3, 0};
	size_t i;

	for (i = 0; i < 2; i++) {
		struct link l;
		enum auth_tls_fail why;
		enum auth_tls_io io;
		int n;

		link_open(&l, t_plain, &o);
		assert_int_equal(write(l.fds[1], inputs[i], strlen(inputs[i])),
		                 (ssize_t)strlen(inputs[i]));
		for (n = 0; n < 10; n++) {
			io = auth_tls_handshake(l.srv, &why);
			if (io != AUTH_TLS_WANT_READ)
				break;
		}
		assert_int_equal(io, AUTH_TLS_ERROR);
		assert_int_equal(why, AUTH_TLS_FAIL_PROTOCOL);
		assert_int_equal(ERR_peek_error(), 0);
		link_close(&l);
	}
}

static void test_handshake_closed(void **state)
{
	const struct client_opts o = {good, alpn_h2, 3, 0};
	struct link l;
	enum auth_tls_fail why;
	enum auth_tls_io io;
	int n;

	/* Before a byte was sent. */
	link_open(&l, t_plain, &o);
	close(l.fds[1]);
	l.fds[1] = -1;
	assert_int_equal(auth_tls_handshake(l.srv, &why), AUTH_TLS_CLOSED);
	assert_int_equal(why, AUTH_TLS_FAIL_CLOSED);
	assert_int_equal(ERR_peek_error(), 0);
	link_close(&l);

	/* After the ClientHello: the server answers into a closed socket, or reads EOF. */
	link_open(&l, t_plain, &o);
	assert_int_equal(SSL_do_handshake(l.cli), -1);
	ERR_clear_error();
	close(l.fds[1]);
	l.fds[1] = -1;
	for (n = 0; n < 10; n++) {
		io = auth_tls_handshake(l.srv, &why);
		if (io != AUTH_TLS_WANT_READ && io != AUTH_TLS_WANT_WRITE)
			break;
	}
	assert_int_equal(io, AUTH_TLS_CLOSED);
	assert_int_equal(why, AUTH_TLS_FAIL_CLOSED);
	assert_int_equal(ERR_peek_error(), 0);
	link_close(&l);

	/* Half a record, then EOF. */
	link_open(&l, t_plain, &o);
	assert_int_equal(write(l.fds[1], "\x16\x03\x01\x02\x00\x01", 6), 6);
	shutdown(l.fds[1], SHUT_WR);
	for (n = 0; n < 10; n++) {
		io = auth_tls_handshake(l.srv, &why);
		if (io != AUTH_TLS_WANT_READ && io != AUTH_TLS_WANT_WRITE)
			break;
	}
	assert_int_equal(io, AUTH_TLS_CLOSED);
	assert_int_equal(why, AUTH_TLS_FAIL_CLOSED);
	link_close(&l);
}

/* ---- after the handshake ---- */

/* Moves `len` bytes server -> client (to_client) or client -> server through the TLS session,
 * alternating the writer and the reader; the reader's buffer is `rcap` bytes per call. Returns
 * how many writer calls moved fewer bytes than they were given. */
static int pump(struct link *l, bool to_client, const unsigned char *data, size_t len, size_t rcap)
{
	unsigned char *got = malloc(len);
	size_t w = 0, r = 0;
	int partial = 0, i;

	assert_non_null(got);
	for (i = 0; r < len; i++) {
		size_t n = 0;

		assert_true(i < 1000000);
		if (w < len) {
			if (to_client) {
				enum auth_tls_io io = auth_tls_write(l->srv, data + w, len - w, &n);

				if (io == AUTH_TLS_OK) {
					assert_true(n > 0 && n <= len - w);
				} else {
					assert_int_equal(io, AUTH_TLS_WANT_WRITE);
					assert_int_equal(n, 0);
				}
			} else if (SSL_write_ex(l->cli, data + w, len - w, &n) != 1) {
				assert_int_equal(SSL_get_error(l->cli, 0), SSL_ERROR_WANT_WRITE);
				n = 0;
			}
			if (n > 0 && n < len - w)
				partial++;
			w += n;
		}
		n = 0;
		if (to_client) {
			size_t cap = len - r < rcap ? len - r : rcap;

			if (SSL_read_ex(l->cli, got + r, cap, &n) != 1) {
				assert_int_equal(SSL_get_error(l->cli, 0), SSL_ERROR_WANT_READ);
				n = 0;
			}
		} else {
			size_t cap = len - r < rcap ? len - r : rcap;
			enum auth_tls_io io = auth_tls_read(l->srv, got + r, cap, &n);

			if (io != AUTH_TLS_OK) {
				assert_int_equal(io, AUTH_TLS_WANT_READ);
				assert_int_equal(n, 0);
			}
		}
		r += n;
		assert_int_equal(ERR_peek_error(), 0);
	}
	assert_memory_equal(got, data, len);
	free(got);
	return partial;
}

static void test_stale_error_queue(void **state)
{
	/* SSL_get_error reads the thread's queue: a stale entry (another connection on the same
	 * thread) would turn WANT_READ into a fatal error unless each call clears it first. */
	const struct client_opts o = {good, alpn_h2, 3, 0};
	struct link l;
	enum auth_tls_fail why;
	unsigned char buf[16];
	size_t n;

	link_open(&l, t_plain, &o);
	assert_int_equal(handshake_ex(&l, &why, true), AUTH_TLS_OK);
	assert_string_equal(auth_tls_conn_principal(l.srv), "spiffe://test/client");
	ERR_raise(ERR_LIB_SSL, SSL_R_BAD_LENGTH);
	assert_int_equal(auth_tls_read(l.srv, buf, sizeof(buf), &n), AUTH_TLS_WANT_READ);
	assert_int_equal(ERR_peek_error(), 0);
	assert_int_equal(pump(&l, false, (const unsigned char *)"ping", 4, 64), 0);
	ERR_raise(ERR_LIB_SSL, SSL_R_BAD_LENGTH);
	assert_int_equal(auth_tls_write(l.srv, "pong", 4, &n), AUTH_TLS_OK);
	assert_int_equal(n, 4);
	assert_int_equal(ERR_peek_error(), 0);
	/* And a write that finds the socket full. */
	{
		static unsigned char chunk[65536];
		enum auth_tls_io io;
		int i;

		for (i = 0; i < 1000; i++) {
			io = auth_tls_write(l.srv, chunk, sizeof(chunk), &n);
			if (io != AUTH_TLS_OK)
				break;
		}
		assert_int_equal(io, AUTH_TLS_WANT_WRITE);
		ERR_raise(ERR_LIB_SSL, SSL_R_BAD_LENGTH);
		assert_int_equal(auth_tls_write(l.srv, chunk, sizeof(chunk), &n),
		                 AUTH_TLS_WANT_WRITE);
		assert_int_equal(ERR_peek_error(), 0);
	}
	link_close(&l);
}

static void test_data_round_trip(void **state)
{
	const struct client_opts o = {good, alpn_h2, 3, 0};
	const size_t big = 1u << 20; /* well over a socket buffer */
	unsigned char *data = malloc(big), buf[64];
	int sndbuf = 16384;
	struct link l;
	enum auth_tls_fail why;
	size_t i, n;
	enum auth_tls_io io;

	assert_non_null(data);
	for (i = 0; i < big; i++)
		data[i] = (unsigned char)(i * 2654435761u >> 13);
	link_open(&l, t_plain, &o);
	/* Not before the handshake. */
	assert_int_equal(auth_tls_read(l.srv, buf, sizeof(buf), &n), AUTH_TLS_ERROR);
	assert_int_equal(auth_tls_write(l.srv, "x", 1, &n), AUTH_TLS_ERROR);
	assert_int_equal(handshake(&l, &why), AUTH_TLS_OK);
	/* Nothing to read yet. */
	assert_int_equal(auth_tls_read(l.srv, buf, sizeof(buf), &n), AUTH_TLS_WANT_READ);
	assert_int_equal(n, 0);

	/* Small, both ways. */
	assert_int_equal(pump(&l, false, (const unsigned char *)"ping", 4, 64), 0);
	assert_int_equal(pump(&l, true, (const unsigned char *)"pong", 4, 64), 0);

	/* No session ticket arrived with the data: resumption would skip the certificate and
	 * CRL checks. */
	assert_int_equal(SSL_SESSION_is_resumable(SSL_get0_session(l.cli)), 0);

	/* Large, both ways, with small socket buffers: the server's first write of 1 MiB moves
	 * part of it and says how much (partial writes), instead of WANT_WRITE until all fit. */
	assert_int_equal(setsockopt(l.fds[0], SOL_SOCKET, SO_SNDBUF, &sndbuf, sizeof(sndbuf)), 0);
	assert_int_equal(setsockopt(l.fds[1], SOL_SOCKET, SO_SNDBUF, &sndbuf, sizeof(sndbuf)), 0);
	io = auth_tls_write(l.srv, data, big, &n);
	assert_int_equal(io, AUTH_TLS_OK);
	assert_true(n > 0 && n < big);
	{
		/* The rest, then the client reads everything. */
		unsigned char *rest = data + n;
		size_t left = big - n;
		unsigned char *got = malloc(big);
		size_t r = 0, m;
		int loops = 0;

		assert_non_null(got);
		while (r < big) {
			assert_true(loops++ < 1000000);
			if (left > 0) {
				io = auth_tls_write(l.srv, rest, left, &m);
				if (io == AUTH_TLS_OK) {
					rest += m;
					left -= m;
				} else {
					assert_int_equal(io, AUTH_TLS_WANT_WRITE);
				}
			}
			if (SSL_read_ex(l.cli, got + r, big - r, &m) == 1)
				r += m;
			else
				assert_int_equal(SSL_get_error(l.cli, 0), SSL_ERROR_WANT_READ);
		}
		assert_memory_equal(got, data, big);
		free(got);
	}
	assert_true(pump(&l, false, data, big, 1000) > 0);
	assert_true(pump(&l, true, data, big, 7000) > 0);
	assert_int_equal(auth_tls_write(l.srv, data, 0, &n), AUTH_TLS_OK);
	assert_int_equal(n, 0);

	/* close_notify from the server reaches the client ... */
	auth_tls_shutdown(l.srv);
	assert_int_equal(SSL_read_ex(l.cli, buf, sizeof(buf), &n), 0);
	assert_int_equal(SSL_get_error(l.cli, 0), SSL_ERROR_ZERO_RETURN);
	/* ... and the client's makes the server's read say CLOSED. */
	assert_int_equal(SSL_shutdown(l.cli), 1);
	assert_int_equal(auth_tls_read(l.srv, buf, sizeof(buf), &n), AUTH_TLS_CLOSED);
	assert_int_equal(n, 0);
	assert_int_equal(ERR_peek_error(), 0);
	link_close(&l);
	free(data);
}

/* A burst of records is taken from the socket in one read (read-ahead), then handed out from
 * memory; auth_tls_read_drained says when the socket was found empty, so the door waits for
 * readability instead of reading once more only to be told WANT_READ. */
static void test_read_ahead_and_drained(void **state)
{
	const struct client_opts o = {good, alpn_h2, 3, 0};
	const char *const parts[] = {"a", "bb", "ccc"};
	struct link l;
	enum auth_tls_fail why;
	unsigned char buf[64], peek;
	size_t n, got = 0;
	int reads = 0;

	link_open(&l, t_plain, &o);
	assert_int_equal(handshake(&l, &why), AUTH_TLS_OK);
	for (size_t i = 0; i < 3; i++)
		assert_int_equal(SSL_write_ex(l.cli, parts[i], strlen(parts[i]), &n), 1);
	/* The first read pulls all three records out of the socket. */
	assert_int_equal(auth_tls_read(l.srv, buf, sizeof(buf), &n), AUTH_TLS_OK);
	got += n;
	reads++;
	assert_int_equal(recv(l.fds[0], &peek, 1, MSG_PEEK | MSG_DONTWAIT), -1);
	assert_true(errno == EAGAIN || errno == EWOULDBLOCK);
	/* Records still buffered: not drained until they are all read. */
	while (got < 6) {
		assert_false(auth_tls_read_drained(l.srv));
		assert_int_equal(auth_tls_read(l.srv, buf + got, sizeof(buf) - got, &n),
		                 AUTH_TLS_OK);
		got += n;
		assert_true(++reads <= 3);
	}
	assert_memory_equal(buf, "abbccc", 6);
	assert_true(auth_tls_read_drained(l.srv));
	/* New data: the next read takes it and finds the socket empty again. */
	assert_int_equal(SSL_write_ex(l.cli, "dd", 2, &n), 1);
	assert_int_equal(auth_tls_read(l.srv, buf, sizeof(buf), &n), AUTH_TLS_OK);
	assert_int_equal(n, 2);
	assert_true(auth_tls_read_drained(l.srv));
	link_close(&l);
}

/* Reads and drops whatever the client has received. */
static void drain_client(struct link *l)
{
	unsigned char buf[16384];
	size_t n;

	while (SSL_read_ex(l->cli, buf, sizeof(buf), &n) == 1)
		;
	assert_int_equal(SSL_get_error(l->cli, 0), SSL_ERROR_WANT_READ);
	ERR_clear_error();
}

static void test_data_moving_buffer(void **state)
{
	/* After WANT_WRITE the same bytes may be offered from another address (the door's
	 * buffer compacted or grew): OpenSSL refuses that (bad write retry) unless the moving
	 * write buffer mode is on. */
	const struct client_opts o = {good, alpn_h2, 3, 0};
	enum { CHUNK = 65536 };
	unsigned char *a = malloc(CHUNK), *b = malloc(CHUNK);
	struct link l;
	enum auth_tls_fail why;
	enum auth_tls_io io;
	size_t n;
	int i;

	assert_non_null(a);
	assert_non_null(b);
	memset(a, 'a', CHUNK);
	link_open(&l, t_plain, &o);
	assert_int_equal(handshake(&l, &why), AUTH_TLS_OK);
	for (i = 0; i < 1000; i++) {
		io = auth_tls_write(l.srv, a, CHUNK, &n);
		if (io != AUTH_TLS_OK)
			break;
	}
	assert_int_equal(io, AUTH_TLS_WANT_WRITE);
	memcpy(b, a, CHUNK);
	memset(a, 0, CHUNK); /* the old buffer is gone */
	for (i = 0; i < 1000; i++) {
		drain_client(&l);
		io = auth_tls_write(l.srv, b, CHUNK, &n);
		if (io != AUTH_TLS_WANT_WRITE)
			break;
	}
	assert_int_equal(io, AUTH_TLS_OK);
	assert_true(n > 0);
	link_close(&l);
	free(a);
	free(b);
}

static void test_data_peer_vanishes(void **state)
{
	const struct client_opts o = {good, alpn_h2, 3, 0};
	struct link l;
	enum auth_tls_fail why;
	unsigned char buf[16];
	size_t n;

	/* EOF without close_notify is CLOSED too; the session refuses work afterwards. */
	link_open(&l, t_plain, &o);
	assert_int_equal(handshake(&l, &why), AUTH_TLS_OK);
	close(l.fds[1]);
	l.fds[1] = -1;
	assert_int_equal(auth_tls_read(l.srv, buf, sizeof(buf), &n), AUTH_TLS_CLOSED);
	assert_int_equal(ERR_peek_error(), 0);
	auth_tls_shutdown(l.srv); /* harmless */
	link_close(&l);

	/* A client that only ends its sending side (EOF, no close_notify) gets nothing back: no
	 * fatal alert (OpenSSL 3's default), which would go into a socket already closed. */
	link_open(&l, t_plain, &o);
	assert_int_equal(handshake(&l, &why), AUTH_TLS_OK);
	while (recv(l.fds[1], buf, sizeof(buf), MSG_DONTWAIT) > 0)
		; /* whatever of the handshake the client left unread */
	assert_int_equal(shutdown(l.fds[1], SHUT_WR), 0);
	assert_int_equal(auth_tls_read(l.srv, buf, sizeof(buf), &n), AUTH_TLS_CLOSED);
	assert_int_equal(ERR_peek_error(), 0);
	errno = 0;
	assert_int_equal(recv(l.fds[1], buf, sizeof(buf), MSG_DONTWAIT), -1);
	assert_int_equal(errno, EAGAIN);
	link_close(&l);

	/* A write into a closed socket (EPIPE) is CLOSED. */
	link_open(&l, t_plain, &o);
	assert_int_equal(handshake(&l, &why), AUTH_TLS_OK);
	close(l.fds[1]);
	l.fds[1] = -1;
	assert_int_equal(auth_tls_write(l.srv, "hello", 5, &n), AUTH_TLS_CLOSED);
	assert_int_equal(ERR_peek_error(), 0);
	link_close(&l);
}

static void test_conn_outlives_unref(void **state)
{
	/* A reload drops the old auth_tls while connections still use it. */
	const struct client_opts o = {good, alpn_h2, 3, 0};
	struct auth_tls *t = make_tls("crl-empty.pem");
	struct link l;
	enum auth_tls_fail why;

	assert_non_null(t);
	assert_ptr_equal(auth_tls_ref(t), t);
	auth_tls_unref(t);
	link_open(&l, t, &o);
	auth_tls_unref(t); /* the connection holds the last reference */
	assert_int_equal(handshake(&l, &why), AUTH_TLS_OK);
	link_close(&l); /* frees t (ASan/valgrind see a leak or a double free otherwise) */
	auth_tls_unref(NULL);
	auth_tls_conn_free(NULL);
	auth_tls_shutdown(NULL);
}

static void test_fail_names(void **state)
{
	assert_string_equal(auth_tls_fail_name(AUTH_TLS_FAIL_NONE), "none");
	assert_string_equal(auth_tls_fail_name(AUTH_TLS_FAIL_PROTOCOL), "protocol");
	assert_string_equal(auth_tls_fail_name(AUTH_TLS_FAIL_NO_CERT), "no_certificate");
	assert_string_equal(auth_tls_fail_name(AUTH_TLS_FAIL_UNTRUSTED), "untrusted");
	assert_string_equal(auth_tls_fail_name(AUTH_TLS_FAIL_EXPIRED), "expired");
	assert_string_equal(auth_tls_fail_name(AUTH_TLS_FAIL_REVOKED), "revoked");
	assert_string_equal(auth_tls_fail_name(AUTH_TLS_FAIL_NO_IDENTITY), "no_identity");
	assert_string_equal(auth_tls_fail_name(AUTH_TLS_FAIL_CLOSED), "closed");
	assert_non_null(auth_tls_fail_name(AUTH_TLS_FAIL__COUNT));
}

/* ---- auth_tls_new ---- */

struct bad_case {
	const char *cert, *key, *ca, *crl; /* names in dir; crl may be NULL */
	enum auth_file bad_file;
	const char *why; /* substring of the message */
};

static void test_new_bad_files(void **state)
{
	static const struct bad_case cases[] = {
	    {"missing.pem", "server.key", "ca.pem", NULL, AUTH_FILE_CERT, "cannot open"},
	    {"server.key", "server.key", "ca.pem", NULL, AUTH_FILE_CERT, "no PEM certificate"},
	    {"server.pem", "other.key", "ca.pem", NULL, AUTH_FILE_KEY, "does not match"},
	    {"server.pem", "server.key", "missing.pem", NULL, AUTH_FILE_CLIENT_CA, "cannot open"},
	    {"server.pem", "server.key", "server.key", NULL, AUTH_FILE_CLIENT_CA, "no PEM"},
	    {"server.pem", "server.key", "ca.pem", "missing.pem", AUTH_FILE_CRL, "cannot open"},
	    {"server.pem", "server.key", "ca.pem", "ca.pem", AUTH_FILE_CRL, "no PEM CRL"},
	    {"server.pem", "server.key", "ca.pem", "crl-garbage.pem", AUTH_FILE_CRL,
	     "does not parse"},
	    {"server.pem", "server.key", "ca.pem", "crl-other.pem", AUTH_FILE_CRL,
	     "not signed by a certificate of the client CA"},
	    {"server.pem", "server.key", "ca.pem", "crl-forged.pem", AUTH_FILE_CRL,
	     "not signed by a certificate of the client CA"},
	    {"server.pem", "server.key", "ca.pem", "crl-both.pem", AUTH_FILE_CRL, "CRL 2 is not"},
	    {"server.pem", "server.key", "ca.pem", "crl-expired.pem", AUTH_FILE_CRL, "expired"},
	};
	size_t i;

	for (i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		const struct bad_case *c = &cases[i];
		struct auth_tls_files files = {path(c->cert), path(c->key), path(c->ca),
		                               c->crl != NULL ? path(c->crl) : NULL};
		struct auth_tls *t = NULL;
		enum auth_file bad = (enum auth_file)99;
		struct mat_error err;
		const char *named = c->bad_file == AUTH_FILE_CERT  ? files.cert
		                    : c->bad_file == AUTH_FILE_KEY ? files.key
		                    : c->bad_file == AUTH_FILE_CRL ? files.crl
		                                                   : files.client_ca;

		mat_error_clear(&err);
		assert_int_equal(auth_tls_new(&files, &t, &bad, &err), MAT_INVALID);
		assert_null(t);
		if (bad != c->bad_file || strstr(err.message, c->why) == NULL ||
		    strstr(err.message, named) == NULL)
			fail_msg("case %zu: bad_file %d, message \"%s\"", i, (int)bad, err.message);
		assert_int_equal(ERR_peek_error(), 0);
	}
}

/* ---- x-forwarded-client-cert ---- */

/* Percent-encodes every byte but unreserved ones (Envoy's encoding of the PEM); with
 * keep_b64, '+', '/' and '=' stay raw as some proxies leave them. */
static char *url_encode(const char *s, bool keep_b64)
{
	size_t len = strlen(s), i, n = 0;
	char *out = malloc(len * 3 + 1);

	assert_non_null(out);
	for (i = 0; i < len; i++) {
		unsigned char ch = (unsigned char)s[i];

		if ((ch >= 'a' && ch <= 'z') || (ch >= 'A' && ch <= 'Z') ||
		    (ch >= '0' && ch <= '9') || ch == '-' || ch == '.' || ch == '_' || ch == '~' ||
		    (keep_b64 && (ch == '+' || ch == '/' || ch == '=')))
			out[n++] = (char)ch;
		else
			n += (size_t)sprintf(out + n, "%%%02X", ch);
	}
	out[n] = '\0';
	return out;
}

static char *cert_enc(X509 *x)
{
	char *pem = tc_cert_pem(x, NULL);
	char *enc = url_encode(pem, false);

	free(pem);
	return enc;
}

static char *fmt(const char *f, ...)
{
	va_list ap;
	int n;
	char *s;

	va_start(ap, f);
	n = vsnprintf(NULL, 0, f, ap);
	va_end(ap);
	assert_true(n >= 0);
	s = malloc((size_t)n + 1);
	assert_non_null(s);
	va_start(ap, f);
	vsnprintf(s, (size_t)n + 1, f, ap);
	va_end(ap);
	return s;
}

/* auth_xfcc_principal on a NUL-terminated value: expects `want` as the principal, or (want
 * NULL) MAT_UNAUTHENTICATED with `why` in the message. */
static void expect_xfcc(struct auth_tls *t, const char *value, const char *want, const char *why)
{
	char out[MAT_MAX_PRINCIPAL + 1];
	struct mat_error err;
	enum mat_code rc;

	memset(out, 'x', sizeof(out));
	mat_error_clear(&err);
	rc = auth_xfcc_principal(t, value, strlen(value), out, sizeof(out), &err);
	assert_int_equal(ERR_peek_error(), 0);
	if (want != NULL) {
		if (rc != MAT_OK)
			fail_msg("xfcc: %s (value %.200s)", err.message, value);
		assert_string_equal(out, want);
		return;
	}
	assert_int_equal(rc, MAT_UNAUTHENTICATED);
	assert_string_equal(out, "");
	if (strstr(err.message, why) == NULL)
		fail_msg("xfcc: message \"%s\" lacks \"%s\" (value %.200s)", err.message, why,
		         value);
}

static void expect_xfcc_free(struct auth_tls *t, char *value, const char *want, const char *why)
{
	expect_xfcc(t, value, want, why);
	free(value);
}

static void test_xfcc_good(void **state)
{
	char *g = cert_enc(good);

	/* Envoy's shape: By, Hash, Cert, Subject (quoted), URI. */
	expect_xfcc_free(t_plain,
	                 fmt("By=spiffe://test/proxy;Hash=abcdef;Cert=\"%s\";Subject=\"O=test,"
	                     "CN=client\";URI=spiffe://test/client",
	                     g),
	                 "spiffe://test/client", NULL);
	/* Unquoted, alone, keys in any case, spaces around separators. */
	expect_xfcc_free(t_plain, fmt("Cert=%s", g), "spiffe://test/client", NULL);
	expect_xfcc_free(t_plain, fmt("cert=%s", g), "spiffe://test/client", NULL);
	expect_xfcc_free(t_plain, fmt(" By=a ; CERT = \"%s\" ", g), "spiffe://test/client", NULL);
	/* The principal rule is the shared one. */
	free(g);
	g = cert_enc(dnsonly);
	expect_xfcc_free(t_plain, fmt("Cert=%s", g), "dns:job.test", NULL);
	free(g);
}

static void test_xfcc_last_element(void **state)
{
	char *g = cert_enc(good), *r = cert_enc(rogue), *e = cert_enc(expired);

	/* The client forged a first element; the proxy appended the real one. */
	expect_xfcc_free(t_plain,
	                 fmt("Cert=\"%s\";URI=spiffe://test/client,By=p;Cert=\"%s\"", r, g),
	                 "spiffe://test/client", NULL);
	expect_xfcc_free(t_plain, fmt("Cert=%s,Cert=%s,Cert=%s", e, r, g), "spiffe://test/client",
	                 NULL);
	/* The other way round: the last one is judged, and fails. */
	expect_xfcc_free(t_plain, fmt("Cert=\"%s\",Cert=\"%s\"", g, r), NULL, "does not chain");
	/* The last element has no Cert: an earlier one does not stand in. */
	expect_xfcc_free(t_plain, fmt("Cert=\"%s\",By=spiffe://test/proxy;URI=x", g), NULL,
	                 "no Cert");
	expect_xfcc_free(t_plain, fmt("Cert=\"%s\",", g), NULL, "no Cert");
	free(g);
	free(r);
	free(e);
}

static void test_xfcc_quoting(void **state)
{
	char *g = cert_enc(good);

	/* ',' ';' '=' and escaped quotes inside quotes are data: a parser that split on them
	 * would see a last element "Cert=junk..." after the real Cert. */
	expect_xfcc_free(t_plain,
	                 fmt("By=\"spiffe://a;b,c\";Cert=\"%s\";Subject=\"CN=x,Cert=junk;"
	                     "O=\\\"q,\\\\\";DNS=a",
	                     g),
	                 "spiffe://test/client", NULL);
	/* Escapes in the Cert value itself are removed before percent-decoding. */
	{
		char *esc = malloc(strlen(g) * 2 + 1);
		size_t i, n = 0;

		assert_non_null(esc);
		for (i = 0; g[i] != '\0'; i++) {
			if (g[i] == '%')
				esc[n++] = '\\';
			esc[n++] = g[i];
		}
		esc[n] = '\0';
		expect_xfcc_free(t_plain, fmt("Cert=\"%s\"", esc), "spiffe://test/client", NULL);
		free(esc);
	}
	/* Two Cert fields in one element are ambiguous. */
	expect_xfcc_free(t_plain, fmt("Cert=%s;Cert=%s", g, g), NULL, "two Cert");
	free(g);
}

static void test_xfcc_b64_forms(void **state)
{
	/* '+' left raw stays '+' (not a form encoding); '/' and '=' raw too. */
	char *raw = url_encode(good_pem, true);
	char *one = malloc(strlen(good_pem) + 1), *enc;
	size_t i, n = 0;

	assert_non_null(strchr(good_pem, '+'));
	assert_non_null(strchr(raw, '+'));
	expect_xfcc_free(t_plain, fmt("Cert=\"%s\"", raw), "spiffe://test/client", NULL);
	free(raw);

	/* The whole PEM on one line (HAProxy: markers around ssl_c_der,base64). */
	assert_non_null(one);
	for (i = 0; good_pem[i] != '\0'; i++)
		if (good_pem[i] != '\n')
			one[n++] = good_pem[i];
	one[n] = '\0';
	enc = url_encode(one, false);
	expect_xfcc_free(t_plain, fmt("Cert=%s", enc), "spiffe://test/client", NULL);
	free(enc);
	/* Spaces for newlines (a proxy that folded the header). */
	for (i = 0; good_pem[i] != '\0'; i++)
		one[i] = good_pem[i] == '\n' ? ' ' : good_pem[i];
	one[i] = '\0';
	enc = url_encode(one, false);
	expect_xfcc_free(t_plain, fmt("Cert=%s", enc), "spiffe://test/client", NULL);
	free(enc);
	free(one);
}

static void test_xfcc_refused(void **state)
{
	char *r = cert_enc(rogue), *e = cert_enc(expired), *v = cert_enc(revoked),
	     *n = cert_enc(noid);

	expect_xfcc_free(t_plain, fmt("Cert=%s", r), NULL, "does not chain to the client CA");
	expect_xfcc_free(t_plain, fmt("Cert=%s", e), NULL, "expired");
	expect_xfcc_free(t_crl, fmt("Cert=%s", v), NULL, "revoked");
	expect_xfcc_free(t_plain, fmt("Cert=%s", v), "spiffe://test/revoked", NULL);
	expect_xfcc_free(t_crl_empty, fmt("Cert=%s", v), "spiffe://test/revoked", NULL);
	expect_xfcc_free(t_plain, fmt("Cert=%s", n), NULL, "no identity");
	free(n);
	n = cert_enc(server_eku);
	expect_xfcc_free(t_plain, fmt("Cert=%s", n), NULL, "not for clients");
	free(r);
	free(e);
	free(v);
	free(n);
}

static void test_xfcc_garbage(void **state)
{
	static const struct {
		const char *value, *why;
	} cases[] = {
	    {"", "no Cert"},
	    {"By=spiffe://test/proxy;URI=spiffe://test/client", "no Cert"},
	    {"Cert", "malformed"},
	    {"=abc", "malformed"},
	    {"Cert=\"unterminated", "malformed"},
	    {"Cert=\"a\"b", "malformed"},
	    {"Cert=a\"b", "malformed"},
	    {"Cert=%zz", "percent"},
	    {"Cert=%4", "percent"},
	    {"Cert=hello", "not a certificate"},
	    {"Cert=-----BEGIN%20CERTIFICATE-----%0AMIIB!!!!%0A-----END%20CERTIFICATE-----",
	     "not a certificate"},
	    {"Cert=-----BEGIN%20CERTIFICATE-----%0AAAAA%0A-----END%20CERTIFICATE-----",
	     "not a certificate"},
	    {"Cert=-----BEGIN%20CERTIFICATE-----%0AMIIB", "not a certificate"},
	    {"Cert=-----BEGIN%20CERTIFICATE----------END%20CERTIFICATE-----", "not a certificate"},
	};
	char bytes[256];
	char out[MAT_MAX_PRINCIPAL + 1];
	struct mat_error err;
	size_t i;

	for (i = 0; i < sizeof(cases) / sizeof(cases[0]); i++)
		expect_xfcc(t_plain, cases[i].value, NULL, cases[i].why);
	/* Every byte value, NULs included. */
	for (i = 0; i < sizeof(bytes); i++)
		bytes[i] = (char)i;
	assert_int_equal(auth_xfcc_principal(t_plain, bytes, sizeof(bytes), out, sizeof(out), &err),
	                 MAT_UNAUTHENTICATED);
	assert_int_equal(ERR_peek_error(), 0);
	/* A buffer too small for any principal is the caller's bug. */
	assert_int_equal(auth_xfcc_principal(t_plain, "Cert=x", 6, out, 16, &err), MAT_INTERNAL);
}

static void test_xfcc_size_limit(void **state)
{
	const size_t limit = 64u * 1024u;
	char *g = cert_enc(good);
	char *v = malloc(limit + 2);
	size_t head;
	char out[MAT_MAX_PRINCIPAL + 1];
	struct mat_error err;

	assert_non_null(v);
	/* Exactly the limit: a long By value before the Cert. */
	head = (size_t)sprintf(v, "By=");
	memset(v + head, 'b', limit - head - strlen(g) - strlen(";Cert="));
	sprintf(v + limit - strlen(g) - strlen(";Cert="), ";Cert=%s", g);
	assert_int_equal(strlen(v), limit);
	expect_xfcc(t_plain, v, "spiffe://test/client", NULL);
	/* One byte over. */
	memmove(v + 4, v + 3, limit - 3 + 1);
	assert_int_equal(strlen(v), limit + 1);
	expect_xfcc(t_plain, v, NULL, "limit");
	/* The length given counts, not a NUL. */
	assert_int_equal(auth_xfcc_principal(t_plain, v, limit + 1, out, sizeof(out), &err),
	                 MAT_UNAUTHENTICATED);
	free(v);
	free(g);
}

struct xfcc_thread {
	char *value;
	int ok;
};

static void *xfcc_thread(void *arg)
{
	struct xfcc_thread *x = arg;
	char out[MAT_MAX_PRINCIPAL + 1];
	struct mat_error err;
	int i;

	for (i = 0; i < 100; i++)
		if (auth_xfcc_principal(t_crl, x->value, strlen(x->value), out, sizeof(out),
		                        &err) == MAT_OK &&
		    strcmp(out, "spiffe://test/client") == 0)
			x->ok++;
	return NULL;
}

static void test_xfcc_threads(void **state)
{
	/* One auth_tls, verifications on several threads at once (the door's handlers). */
	struct xfcc_thread x[4];
	pthread_t th[4];
	char *g = cert_enc(good);
	int i;

	for (i = 0; i < 4; i++) {
		x[i].value = fmt("Cert=%s", g);
		x[i].ok = 0;
		assert_int_equal(pthread_create(&th[i], NULL, xfcc_thread, &x[i]), 0);
	}
	for (i = 0; i < 4; i++) {
		assert_int_equal(pthread_join(th[i], NULL), 0);
		assert_int_equal(x[i].ok, 100);
		free(x[i].value);
	}
	free(g);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_handshake_good),
	    cmocka_unit_test(test_handshake_tls12_and_alpn_list),
	    cmocka_unit_test(test_handshake_principal_rule),
	    cmocka_unit_test(test_handshake_no_cert),
	    cmocka_unit_test(test_handshake_untrusted),
	    cmocka_unit_test(test_handshake_server_eku),
	    cmocka_unit_test(test_handshake_expired),
	    cmocka_unit_test(test_handshake_revoked),
	    cmocka_unit_test(test_crl_missing_for_issuer),
	    cmocka_unit_test(test_crl_goes_stale),
	    cmocka_unit_test(test_handshake_no_identity),
	    cmocka_unit_test(test_handshake_no_h2),
	    cmocka_unit_test(test_handshake_plaintext),
	    cmocka_unit_test(test_handshake_closed),
	    cmocka_unit_test(test_data_round_trip),
	    cmocka_unit_test(test_read_ahead_and_drained),
	    cmocka_unit_test(test_stale_error_queue),
	    cmocka_unit_test(test_data_moving_buffer),
	    cmocka_unit_test(test_data_peer_vanishes),
	    cmocka_unit_test(test_conn_outlives_unref),
	    cmocka_unit_test(test_fail_names),
	    cmocka_unit_test(test_new_bad_files),
	    cmocka_unit_test(test_xfcc_good),
	    cmocka_unit_test(test_xfcc_last_element),
	    cmocka_unit_test(test_xfcc_quoting),
	    cmocka_unit_test(test_xfcc_b64_forms),
	    cmocka_unit_test(test_xfcc_refused),
	    cmocka_unit_test(test_xfcc_garbage),
	    cmocka_unit_test(test_xfcc_size_limit),
	    cmocka_unit_test(test_xfcc_threads),
	};

	return cmocka_run_group_tests(tests, setup, teardown);
}
