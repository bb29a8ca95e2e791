/* Loads the server's three TLS files and checks them with OpenSSL before grpc sees them, so a
 * bad file is one clear error naming the file at start-up or on reload instead of a handshake
 * failure later. It does not build grpc credentials (service/ does) and does not verify chains. */
#include "auth.h"
#include "auth_x509.h"

#include <openssl/crypto.h>
#include <openssl/err.h>
#include <openssl/pem.h>
#include <openssl/x509.h>

#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

/* Generous for a server chain or a CA bundle (the whole Mozilla bundle is ~220 KB) yet small
 * enough that a wrong path (a log file, a disk image) fails fast instead of eating memory. */
#define AUTH_PEM_MAX_FILE (4u * 1024u * 1024u)

/* Frees a buffer that may hold key material; NULL allowed. Every file buffer goes through here
 * because we cannot tell at free time whether someone put a key into the "certificate" file. */
static void buf_free(char *buf, size_t cap)
{
	if (buf == NULL)
		return;
	OPENSSL_cleanse(buf, cap);
	free(buf);
}

void auth_file_free(char *buf, size_t len)
{
	/* auth_file_read hands out len + 1 bytes at least; the NUL needs no cleansing. */
	buf_free(buf, len);
}

/* The reason of the newest OpenSSL error, for messages; never NULL. */
static const char *ssl_reason(void)
{
	const char *r = ERR_reason_error_string(ERR_peek_last_error());

	return r != NULL ? r : "unknown OpenSSL error";
}

/* auth_file_read (auth_x509.h): reads a whole file into a NUL-terminated heap buffer.
 * POSIX read(2) rather than stdio, and growth by copy-and-cleanse rather than realloc, so no
 * stray copy of a private key is left in a stdio buffer or in memory realloc released. */
enum mat_code auth_file_read(const char *path, char **out, size_t *out_len, struct mat_error *err)
{
	enum mat_code rc = MAT_INVALID;
	int fd = -1;
	char *buf = NULL;
	size_t cap = 0, len = 0;

	*out = NULL;
	*out_len = 0;
	fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0) {
		/* strerror: glibc's is thread-safe for real errno values (static strings). */
		mat_error_set(err, MAT_INVALID, "%s: cannot open: %s", path, strerror(errno));
		goto out;
	}
	for (;;) {
		ssize_t n;

		if (cap - len < 2) {
			size_t ncap = cap == 0 ? 8192 : cap * 2;
			char *nbuf = malloc(ncap);

			if (nbuf == NULL) {
				rc = mat_error_set(err, MAT_INTERNAL, "%s: out of memory", path);
				goto out;
			}
			if (len > 0)
				memcpy(nbuf, buf, len);
			buf_free(buf, cap);
			buf = nbuf;
			cap = ncap;
		}
		n = read(fd, buf + len, cap - len - 1);
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0) {
			mat_error_set(err, MAT_INVALID, "%s: cannot read: %s", path,
			              strerror(errno));
			goto out;
		}
		if (n == 0)
			break;
		len += (size_t)n;
		if (len > AUTH_PEM_MAX_FILE) {
			mat_error_set(err, MAT_INVALID, "%s: larger than %u bytes", path,
			              AUTH_PEM_MAX_FILE);
			goto out;
		}
	}
	if (len == 0) {
		mat_error_set(err, MAT_INVALID, "%s: file is empty", path);
		goto out;
	}
	/* The struct hands grpc NUL-terminated strings: an embedded NUL would silently cut the
	 * PEM short, and PEM is text anyway (a DER file is the usual cause). */
	if (memchr(buf, '\0', len) != NULL) {
		mat_error_set(err, MAT_INVALID,
		              "%s: contains a NUL byte; expected PEM text, not DER", path);
		goto out;
	}
	buf[len] = '\0';
	*out = buf;
	*out_len = len;
	buf = NULL;
	rc = MAT_OK;
out:
	buf_free(buf, cap);
	if (fd >= 0)
		close(fd);
	return rc;
}

/* Parses every certificate in buf; at least one must be there and each must parse. On MAT_OK
 * *leaf (if leaf is not NULL) is the first certificate, owned by the caller. */
static enum mat_code parse_certs(const char *path, const char *what, const char *buf, size_t len,
                                 X509 **leaf, struct mat_error *err)
{
	enum mat_code rc = MAT_INVALID;
	BIO *bio = NULL;
	X509 *first = NULL;
	int n = 0;

	if (leaf != NULL)
		*leaf = NULL;
	bio = BIO_new_mem_buf(buf, (int)len); /* len <= AUTH_PEM_MAX_FILE fits an int */
	if (bio == NULL) {
		rc = mat_error_set(err, MAT_INTERNAL, "%s: out of memory", path);
		goto out;
	}
	for (;;) {
		X509 *x = PEM_read_bio_X509(bio, NULL, NULL, NULL);
		unsigned long e;

		if (x != NULL) {
			if (first == NULL)
				first = x;
			else
				X509_free(x);
			n++;
			continue;
		}
		/* PEM_R_NO_START_LINE after at least one certificate is the normal end of the
		 * file; anything else is a block that does not parse. */
		e = ERR_peek_last_error();
		if (ERR_GET_LIB(e) == ERR_LIB_PEM && ERR_GET_REASON(e) == PEM_R_NO_START_LINE) {
			if (n == 0) {
				mat_error_set(err, MAT_INVALID, "%s: no PEM certificate in the %s",
				              path, what);
				goto out;
			}
			break;
		}
		mat_error_set(err, MAT_INVALID, "%s: certificate %d of the %s does not parse: %s",
		              path, n + 1, what, ssl_reason());
		goto out;
	}
	if (leaf != NULL) {
		*leaf = first;
		first = NULL;
	}
	rc = MAT_OK;
out:
	X509_free(first);
	BIO_free(bio);
	return rc;
}

/* Refuses to prompt: OpenSSL's default callback would read a passphrase from the terminal,
 * which a server must never do. An encrypted key therefore fails to load, with a clear error. */
static int no_passphrase(char *buf, int size, int rwflag, void *u)
{
	return -1;
}

/* Parses the private key and checks that it belongs to the leaf certificate. */
static enum mat_code check_key(const char *key_path, const char *cert_path, const char *buf,
                               size_t len, X509 *leaf, struct mat_error *err)
{
	enum mat_code rc = MAT_INVALID;
	BIO *bio = NULL;
	EVP_PKEY *pkey = NULL;

	if (strstr(buf, "-----BEGIN ENCRYPTED PRIVATE KEY-----") != NULL ||
	    strstr(buf, "Proc-Type: 4,ENCRYPTED") != NULL) {
		mat_error_set(err, MAT_INVALID,
		              "%s: the private key is encrypted; give an unencrypted key file",
		              key_path);
		goto out;
	}
	bio = BIO_new_mem_buf(buf, (int)len);
	if (bio == NULL) {
		rc = mat_error_set(err, MAT_INTERNAL, "%s: out of memory", key_path);
		goto out;
	}
	pkey = PEM_read_bio_PrivateKey(bio, NULL, no_passphrase, NULL);
	if (pkey == NULL) {
		mat_error_set(err, MAT_INVALID, "%s: no PEM private key that parses: %s", key_path,
		              ssl_reason());
		goto out;
	}
	if (X509_check_private_key(leaf, pkey) != 1) {
		mat_error_set(err, MAT_INVALID,
		              "%s: the private key does not match the certificate in %s", key_path,
		              cert_path);
		goto out;
	}
	rc = MAT_OK;
out:
	EVP_PKEY_free(pkey); /* OpenSSL clears the private key material it frees */
	BIO_free(bio);
	return rc;
}

enum mat_code auth_pem_load(const char *cert_file, const char *key_file, const char *ca_file,
                            struct auth_pem *out, enum auth_file *bad_file, struct mat_error *err)
{
	enum mat_code rc = MAT_INVALID;
	enum auth_file bad = AUTH_FILE_CERT; /* the file being checked, reported on failure */
	char *cert = NULL, *key = NULL, *ca = NULL;
	size_t cert_len = 0, key_len = 0, ca_len = 0;
	X509 *leaf = NULL;

	memset(out, 0, sizeof(*out));
	if (bad_file != NULL)
		*bad_file = AUTH_FILE_CERT;

	rc = auth_file_read(cert_file, &cert, &cert_len, err);
	if (rc != MAT_OK)
		goto out;
	rc = parse_certs(cert_file, "certificate chain", cert, cert_len, &leaf, err);
	if (rc != MAT_OK)
		goto out;

	bad = AUTH_FILE_KEY;
	rc = auth_file_read(key_file, &key, &key_len, err);
	if (rc != MAT_OK)
		goto out;
	rc = check_key(key_file, cert_file, key, key_len, leaf, err);
	if (rc != MAT_OK)
		goto out;

	bad = AUTH_FILE_CLIENT_CA;
	rc = auth_file_read(ca_file, &ca, &ca_len, err);
	if (rc != MAT_OK)
		goto out;
	rc = parse_certs(ca_file, "client CA bundle", ca, ca_len, NULL, err);
	if (rc != MAT_OK)
		goto out;

	out->cert_chain = cert;
	out->private_key = key;
	out->client_ca = ca;
	cert = key = ca = NULL;
	mat_error_clear(err);
out:
	if (rc != MAT_OK && bad_file != NULL)
		*bad_file = bad;
	X509_free(leaf);
	buf_free(cert, cert_len);
	buf_free(key, key_len);
	buf_free(ca, ca_len);
	/* OpenSSL's error queue is per thread and grpc reads it on the same threads after its own
	 * TLS calls: leave nothing behind that could be blamed on a later, unrelated handshake. */
	ERR_clear_error();
	return rc;
}

void auth_pem_cleanup(struct auth_pem *pem)
{
	if (pem == NULL)
		return;
	if (pem->private_key != NULL)
		OPENSSL_cleanse(pem->private_key, strlen(pem->private_key));
	free(pem->private_key);
	free(pem->cert_chain);
	free(pem->client_ca);
	memset(pem, 0, sizeof(*pem));
}
