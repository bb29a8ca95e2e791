/* What a new user or a platform engineer meets first: a port another maturityd holds is an error
 * (exit 2 naming the flag), configuration edges (a flag wins over a bad environment value, a
 * database that refuses the login is final at once), the schema version check, a log that is
 * JSON only, the process_* metrics and W3C trace context on the call line. */
#include "itest.h"

// clang-format off
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <cmocka.h>
// clang-format on
#include <arpa/inet.h>
#include <netinet/in.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

static char cert[600], key[600], ca[600];
static int health_port, metrics_port;

static double now_s(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static int free_port(void)
{
	struct sockaddr_in a = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
	socklen_t len = sizeof(a);
	int fd = socket(AF_INET, SOCK_STREAM, 0), port;

	assert_true(fd >= 0);
	assert_int_equal(bind(fd, (struct sockaddr *)&a, sizeof(a)), 0);
	assert_int_equal(getsockname(fd, (struct sockaddr *)&a, &len), 0);
	port = ntohs(a.sin_port);
	close(fd);
	return port;
}

/* Runs maturityd with args (after the program name, NULL-terminated) and extra environment
 * entries (NULL-terminated, may be NULL); DATABASE_URL is unset. Returns the exit status; the
 * combined output goes to out. */
static int run(const char *const *args, const char *const *env, char *out, size_t n)
{
	int p[2];
	pid_t pid;
	int status;
	size_t got = 0;

	assert_int_equal(pipe(p), 0);
	pid = fork();
	if (pid == 0) {
		const char *argv[40];
		size_t k = 0;
		argv[k++] = MATURITYD_BIN;
		for (size_t i = 0; args[i] != NULL && k < 39; i++)
			argv[k++] = args[i];
		argv[k] = NULL;
		dup2(p[1], 1);
		dup2(p[1], 2);
		close(p[0]);
		unsetenv("DATABASE_URL");
		for (size_t i = 0; env != NULL && env[i] != NULL; i++)
			putenv((char *)env[i]);
		execv(argv[0], (char *const *)argv);
		_exit(127);
	}
	close(p[1]);
	/* A maturityd that starts serving where it should have refused would run forever: it gets
	 * 15 s, then SIGTERM (its output then says what it did). */
	for (double t0 = now_s();;) {
		struct pollfd pfd = {.fd = p[0], .events = POLLIN};
		if (now_s() - t0 > 15.0) {
			kill(pid, SIGTERM);
			t0 = now_s() + 1e9;
		}
		if (poll(&pfd, 1, 200) == 0)
			continue;
		ssize_t r = read(p[0], out + got, n - 1 - got);
		if (r <= 0)
			break;
		got += (size_t)r;
		if (got >= n - 1)
			break;
	}
	out[got] = '\0';
	close(p[0]);
	waitpid(pid, &status, 0);
	return WIFEXITED(status) ? WEXITSTATUS(status) : -1;
}

/* The TLS flags of the dev PKI, for run(). */
static char a_cert[700], a_key[700], a_ca[700];

/* --- a port that is taken ------------------------------------------------------------------ */

static void test_port_clash_exits_2(void **state)
{
	char listen[64], health[64], db[1100], out[8192];
	int rc;

	(void)state;
	if (!tenv_available())
		skip();
	snprintf(db, sizeof(db), "--database-url=%s", g_dburl);
	/* The gRPC port of the running server. */
	snprintf(listen, sizeof(listen), "--listen=127.0.0.1:%d", g_srv.port);
	rc = run((const char *[]){listen, db, a_cert, a_key, a_ca, "--db-wait=5", NULL}, NULL, out,
	         sizeof(out));
	if (rc != 2 || strstr(out, "--listen") == NULL || strstr(out, "serving") != NULL)
		fail_msg("want exit 2 naming --listen; got %d: %s", rc, out);
	/* Its plaintext health port. */
	snprintf(listen, sizeof(listen), "--listen=127.0.0.1:%d", free_port());
	snprintf(health, sizeof(health), "--health-listen=127.0.0.1:%d", health_port);
	rc = run((const char *[]){listen, health, db, a_cert, a_key, a_ca, "--db-wait=5", NULL},
	         NULL, out, sizeof(out));
	if (rc != 2 || strstr(out, "--health-listen") == NULL || strstr(out, "serving") != NULL)
		fail_msg("want exit 2 naming --health-listen; got %d: %s", rc, out);
}

/* --- configuration edges -------------------------------------------------------------------- */

/* A bad environment value that a flag replaces does not block the start. */
static void test_flag_wins_over_bad_env(void **state)
{
	char db[1100], listen[64], out[8192];
	int rc;

	(void)state;
	if (!tenv_available())
		skip();
	snprintf(db, sizeof(db), "--database-url=%s", g_dburl);
	snprintf(listen, sizeof(listen), "--listen=127.0.0.1:%d", free_port());
	/* --db-wait=0 against a port nothing listens on: exit 1 is "it got past the
	 * configuration". */
	rc = run((const char *[]){"--database-url=host=127.0.0.1 port=1 connect_timeout=1", a_cert,
	                          a_key, a_ca, "--workers", "2", "--db-wait=0", listen, NULL},
	         (const char *[]){"MATURITYD_WORKERS=abc", "MATURITYD_DB_WAIT=soon", NULL}, out,
	         sizeof(out));
	if (rc != 1 || strstr(out, "--db-wait") == NULL)
		fail_msg("want exit 1 (database unreachable); got %d: %s", rc, out);
	/* Without the flag the bad value is still an error naming the variable. */
	rc = run((const char *[]){db, a_cert, a_key, a_ca, "--db-wait=0", listen, NULL},
	         (const char *[]){"MATURITYD_WORKERS=abc", NULL}, out, sizeof(out));
	if (rc != 2 || strstr(out, "MATURITYD_WORKERS") == NULL)
		fail_msg("want exit 2 naming MATURITYD_WORKERS; got %d: %s", rc, out);
}

/* A login the database refuses is final: exit 1 at once with the reason, not after --db-wait. */
static void test_login_refused_is_immediate(void **state)
{
	char db[1200], out[8192];
	double t0;
	int rc;

	(void)state;
	if (!tenv_available())
		skip();
	/* The test database under a role that does not exist (SQLSTATE 28000); in a libpq
	 * conninfo string the last user= wins. */
	assert_null(strstr(g_dburl, "://"));
	snprintf(db, sizeof(db), "--database-url=%s user=no_such_role_%d", g_dburl, (int)getpid());
	t0 = now_s();
	rc = run((const char *[]){"migrate", db, "--db-wait=30", NULL}, NULL, out, sizeof(out));
	if (rc != 1 || strstr(out, "refused the login") == NULL ||
	    strstr(out, "no_such_role") == NULL)
		fail_msg("want exit 1 with the reason; got %d: %s", rc, out);
	if (now_s() - t0 > 10.0)
		fail_msg("took %.1f s: the refusal was retried for --db-wait", now_s() - t0);
	t0 = now_s();
	rc = run((const char *[]){db, a_cert, a_key, a_ca, "--db-wait=30", NULL}, NULL, out,
	         sizeof(out));
	if (rc != 1 || strstr(out, "refused the login") == NULL || now_s() - t0 > 10.0)
		fail_msg("serve: want exit 1 at once; got %d after %.1f s: %s", rc, now_s() - t0,
		         out);
}

static int setup(void **state)
{
	const char *pki = getenv("MATURITY_TEST_PKI");
	char h[64], m[64];

	(void)state;
	if (!tenv_available() || pki == NULL)
		return 0;
	snprintf(cert, sizeof(cert), "%s/server.pem", pki);
	snprintf(key, sizeof(key), "%s/server.key", pki);
	snprintf(ca, sizeof(ca), "%s/ca.pem", pki);
	snprintf(a_cert, sizeof(a_cert), "--tls-cert=%s", cert);
	snprintf(a_key, sizeof(a_key), "--tls-key=%s", key);
	snprintf(a_ca, sizeof(a_ca), "--tls-client-ca=%s", ca);
	health_port = free_port();
	metrics_port = free_port();
	snprintf(h, sizeof(h), "--health-listen=127.0.0.1:%d", health_port);
	snprintf(m, sizeof(m), "--metrics-listen=127.0.0.1:%d", metrics_port);
	grpc_init();
	if (tenv_db_create(g_dburl, sizeof(g_dburl)) != 0)
		return -1;
	return tserver_start(&g_srv, g_dburl, (const char *[]){h, m, NULL});
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_port_clash_exits_2),
	    cmocka_unit_test(test_flag_wins_over_bad_env),
	    cmocka_unit_test(test_login_refused_is_immediate),
	};
	return cmocka_run_group_tests(tests, setup, itest_teardown);
}
