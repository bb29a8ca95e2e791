/* The command line (docs/operations.md, "Configuration reference"): each configuration error is
 * exit 2 with one line naming the flag; an unreachable database is exit 1 after --db-wait; --help,
 * --version and `migrate`. */
#include "itest.h"

// clang-format off
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <cmocka.h>
// clang-format on
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

/* Runs maturityd with argv (after the program name) and an optional extra environment entry;
 * returns the exit status and the combined output in out. */
static int run(const char *const *args, const char *env, char *out, size_t n)
{
	int p[2];
	pid_t pid;
	int status;
	size_t got = 0;

	assert_int_equal(pipe(p), 0);
	pid = fork();
	if (pid == 0) {
		const char *argv[32];
		size_t k = 0;
		argv[k++] = MATURITYD_BIN;
		for (size_t i = 0; args[i] != NULL && k < 31; i++)
			argv[k++] = args[i];
		argv[k] = NULL;
		dup2(p[1], 1);
		dup2(p[1], 2);
		close(p[0]);
		unsetenv("DATABASE_URL");
		if (env != NULL)
			putenv((char *)env);
		execv(argv[0], (char *const *)argv);
		_exit(127);
	}
	close(p[1]);
	for (;;) {
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

static int lines(const char *s)
{
	int n = 0;
	for (; *s; s++)
		n += *s == '\n';
	return n;
}

static char cert[600], key[600], ca[600], garbage[64];

static void expect_exit2(const char *const *args, const char *env, const char *names)
{
	char out[4096];
	int rc = run(args, env, out, sizeof(out));
	if (rc != 2 || strstr(out, names) == NULL || lines(out) != 1)
		fail_msg("want exit 2 and one line naming %s; got %d: %s", names, rc, out);
}

static void test_help_and_version(void **state)
{
	char out[8192];
	(void)state;
	assert_int_equal(run((const char *[]){"--help", NULL}, NULL, out, sizeof(out)), 0);
	assert_non_null(strstr(out, "--database-url"));
	assert_non_null(strstr(out, "MATURITYD_SHUTDOWN_GRACE"));
	assert_non_null(strstr(out, "--delegator"));
	assert_non_null(strstr(out, "MATURITYD_DELEGATORS"));
	assert_int_equal(run((const char *[]){"--version", NULL}, NULL, out, sizeof(out)), 0);
	assert_non_null(strstr(out, "maturityd "));
}

static void test_configuration_errors(void **state)
{
	char c[700], k[700], a[700];
	const char *db = "--database-url=host=/nonexistent";

	(void)state;
	if (!tenv_available())
		skip();
	snprintf(c, sizeof(c), "--tls-cert=%s", cert);
	snprintf(k, sizeof(k), "--tls-key=%s", key);
	snprintf(a, sizeof(a), "--tls-client-ca=%s", ca);
	expect_exit2((const char *[]){c, k, a, NULL}, NULL, "--database-url");
	expect_exit2((const char *[]){db, k, a, NULL}, NULL, "--tls-cert");
	expect_exit2((const char *[]){db, "--tls-cert=/nonexistent.pem", k, a, NULL}, NULL,
	             "--tls-cert");
	expect_exit2((const char *[]){db, c, k, a, "--listen=nonsense", NULL}, NULL, "--listen");
	expect_exit2((const char *[]){db, c, k, a, "--listen=127.0.0.1:99999", NULL}, NULL,
	             "--listen");
	expect_exit2((const char *[]){db, c, k, a, "--workers=0", NULL}, NULL, "--workers");
	expect_exit2((const char *[]){db, c, k, a, "--db-pool", "x", NULL}, NULL, "--db-pool");
	expect_exit2((const char *[]){db, c, k, a, "--log-format=xml", NULL}, NULL, "--log-format");
	expect_exit2((const char *[]){db, c, k, a, "--shutdown-grace=-1", NULL}, NULL,
	             "--shutdown-grace");
	expect_exit2((const char *[]){db, c, k, a, "--metrics-listen=:", NULL}, NULL,
	             "--metrics-listen");
	expect_exit2((const char *[]){db, c, k, a, "--no-such-flag", NULL}, NULL, "--no-such-flag");
	expect_exit2((const char *[]){db, c, k, a, "--workers", NULL}, NULL, "--workers");
	expect_exit2((const char *[]){db, c, k, a, NULL}, "MATURITYD_WORKERS=many",
	             "MATURITYD_WORKERS");
	/* Readable but not a key. */
	{
		char bad[700];
		snprintf(bad, sizeof(bad), "--tls-key=%s", garbage);
		expect_exit2((const char *[]){db, c, bad, a, NULL}, NULL, "--tls-key");
	}
	expect_exit2((const char *[]){"frobnicate", NULL}, NULL, "frobnicate");
	/* A delegator must be a principal (scheme:rest), from the flag or the environment. */
	expect_exit2((const char *[]){db, c, k, a, "--delegator=portal.corp.example", NULL}, NULL,
	             "--delegator");
	expect_exit2((const char *[]){db, c, k, a, NULL},
	             "MATURITYD_DELEGATORS=spiffe://corp.example/portal, portal2", "--delegator");
}

static void test_database_unreachable(void **state)
{
	char c[700], k[700], a[700], out[4096];
	int rc;

	(void)state;
	if (!tenv_available())
		skip();
	snprintf(c, sizeof(c), "--tls-cert=%s", cert);
	snprintf(k, sizeof(k), "--tls-key=%s", key);
	snprintf(a, sizeof(a), "--tls-client-ca=%s", ca);
	rc = run((const char *[]){"--database-url=host=127.0.0.1 port=1 connect_timeout=1", c, k, a,
	                          "--db-wait=1", NULL},
	         NULL, out, sizeof(out));
	if (rc != 1 || strstr(out, "--db-wait") == NULL || lines(out) != 1)
		fail_msg("want exit 1 and one line; got %d: %s", rc, out);
	rc = run((const char *[]){"migrate", "--database-url=host=127.0.0.1 port=1", "--db-wait=0",
	                          NULL},
	         NULL, out, sizeof(out));
	assert_int_equal(rc, 1);
}

static void test_migrate_command(void **state)
{
	char url[1024], arg[1100], out[4096], count[64];

	(void)state;
	if (!tenv_available())
		skip();
	assert_int_equal(tenv_db_create(url, sizeof(url)), 0);
	snprintf(arg, sizeof(arg), "--database-url=%s", url);
	assert_int_equal(run((const char *[]){"migrate", arg, NULL}, NULL, out, sizeof(out)), 0);
	/* Twice is fine: nothing left to apply. */
	assert_int_equal(run((const char *[]){"migrate", arg, NULL}, NULL, out, sizeof(out)), 0);
	assert_int_equal(
	    tenv_psql(url, "SELECT count(*) > 0 FROM organizations", count, sizeof(count)), 0);
}

static int setup(void **state)
{
	const char *pki = getenv("MATURITY_TEST_PKI");
	(void)state;
	if (pki == NULL)
		return 0;
	snprintf(cert, sizeof(cert), "%s/server.pem", pki);
	snprintf(key, sizeof(key), "%s/server.key", pki);
	snprintf(ca, sizeof(ca), "%s/ca.pem", pki);
	snprintf(garbage, sizeof(garbage), "/tmp/maturityd-garbage-%d.key", (int)getpid());
	FILE *f = fopen(garbage, "w");
	if (f == NULL)
		return -1;
	fputs("-----BEGIN PRIVATE KEY-----\nnot a key\n-----END PRIVATE KEY-----\n", f);
	fclose(f);
	return 0;
}

static int teardown(void **state)
{
	(void)state;
	if (garbage[0])
		unlink(garbage);
	return 0;
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_help_and_version),
	    cmocka_unit_test(test_configuration_errors),
	    cmocka_unit_test(test_database_unreachable),
	    cmocka_unit_test(test_migrate_command),
	};
	return cmocka_run_group_tests(tests, setup, teardown);
}
