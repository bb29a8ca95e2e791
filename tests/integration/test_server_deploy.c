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

#include "grpc/health/v1/health.pb-c.h"
#include "mlops/maturity/v1/organization.pb-c.h"

static char cert[600], key[600], ca[600];
static int health_port, metrics_port;

static double now_s(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
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
	snprintf(listen, sizeof(listen), "--listen=127.0.0.1:%d", itest_free_port());
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
	snprintf(listen, sizeof(listen), "--listen=127.0.0.1:%d", itest_free_port());
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

/* --- schema version ------------------------------------------------------------------------- */

#define M(svc, m) "/mlops.maturity.v1." svc "/" m

static int health_status(int port)
{
	char target[64];
	struct tclient *c;
	Grpc__Health__V1__HealthCheckRequest req = GRPC__HEALTH__V1__HEALTH_CHECK_REQUEST__INIT;
	Grpc__Health__V1__HealthCheckResponse *resp = NULL;
	struct tresult r;
	int st = -1;

	snprintf(target, sizeof(target), "127.0.0.1:%d", port);
	c = tclient_new(target, NULL, NULL, NULL, true);
	assert_non_null(c);
	if (tclient_call(c, "/grpc.health.v1.Health/Check", &req.base,
	                 &grpc__health__v1__health_check_response__descriptor,
	                 (ProtobufCMessage **)&resp, 2000, &r) == GRPC_STATUS_OK)
		st = resp->status;
	if (resp)
		protobuf_c_message_free_unpacked(&resp->base, NULL);
	tresult_cleanup(&r);
	tclient_free(c);
	return st;
}

static int count_in_file(const char *path, const char *needle)
{
	char line[8192];
	int n = 0;
	FILE *f = fopen(path, "r");
	if (f == NULL)
		return -1;
	while (fgets(line, sizeof(line), f) != NULL)
		n += strstr(line, needle) != NULL;
	fclose(f);
	return n;
}

/* --no-migrate against an empty or older schema: one line, exit 1 after --db-wait. */
static void test_schema_behind_exits_1(void **state)
{
	char url[1024], db[1100], out[8192];
	int rc;

	(void)state;
	if (!tenv_available())
		skip();
	assert_int_equal(tenv_db_create(url, sizeof(url)), 0);
	snprintf(db, sizeof(db), "--database-url=%s", url);
	rc = run((const char *[]){db, a_cert, a_key, a_ca, "--no-migrate", "--db-wait=1", NULL},
	         NULL, out, sizeof(out));
	if (rc != 1 || strstr(out, "schema is behind") == NULL || strstr(out, "serving") != NULL)
		fail_msg("empty database: want exit 1 and the schema line; got %d: %s", rc, out);
	/* Migrated by an older binary: the newest migration is not recorded. */
	assert_int_equal(run((const char *[]){"migrate", db, NULL}, NULL, out, sizeof(out)), 0);
	assert_int_equal(tenv_psql(url,
	                           "DELETE FROM schema_migrations WHERE version = (SELECT "
	                           "max(version) FROM schema_migrations)",
	                           NULL, 0),
	                 0);
	rc = run((const char *[]){db, a_cert, a_key, a_ca, "--no-migrate", "--db-wait=1", NULL},
	         NULL, out, sizeof(out));
	if (rc != 1 || strstr(out, "1 migrations missing") == NULL)
		fail_msg("older schema: want exit 1 and the schema line; got %d: %s", rc, out);
}

/* A newer binary's schema: reads are served, writes refused. */
static void test_schema_ahead_refuses_writes(void **state)
{
	char url[1024], out[8192];
	struct tserver s;
	struct tclient *c;
	struct tresult r;
	Mlops__Maturity__V1__Organization o = MLOPS__MATURITY__V1__ORGANIZATION__INIT;
	Mlops__Maturity__V1__CreateOrganizationRequest creq =
	    MLOPS__MATURITY__V1__CREATE_ORGANIZATION_REQUEST__INIT;
	Mlops__Maturity__V1__ListOrganizationsRequest lreq =
	    MLOPS__MATURITY__V1__LIST_ORGANIZATIONS_REQUEST__INIT;

	(void)state;
	if (!tenv_available())
		skip();
	assert_int_equal(tenv_db_create(url, sizeof(url)), 0);
	{
		char db[1100];
		snprintf(db, sizeof(db), "--database-url=%s", url);
		assert_int_equal(run((const char *[]){"migrate", db, NULL}, NULL, out, sizeof(out)),
		                 0);
	}
	assert_int_equal(tenv_psql(url,
	                           "INSERT INTO schema_migrations (version, name) VALUES (9999, "
	                           "'from_the_future')",
	                           NULL, 0),
	                 0);
	assert_int_equal(tserver_start(&s, url, (const char *[]){"--no-migrate", NULL}), 0);
	c = tserver_client(&s, "admin");
	o.display_name = (char *)"Ahead";
	creq.organization = &o;
	creq.organization_id = (char *)"ahead";
	assert_int_equal(tclient_call(c, M("OrganizationService", "CreateOrganization"), &creq.base,
	                              NULL, NULL, 10000, &r),
	                 GRPC_STATUS_FAILED_PRECONDITION);
	if (strstr(r.message, "newer") == NULL)
		fail_msg("want the reason in the message; got %s", r.message);
	tresult_cleanup(&r);
	lreq.page_size = 10;
	assert_int_equal(tclient_call(c, M("OrganizationService", "ListOrganizations"), &lreq.base,
	                              NULL, NULL, 10000, &r),
	                 GRPC_STATUS_OK);
	tresult_cleanup(&r);
	tclient_free(c);
	assert_true(count_in_file(s.log_path, "is newer than this maturityd") >= 1);
	assert_int_equal(tserver_stop(&s), 0);
}

/* The schema going behind under a running server (restored from an older backup): NOT_SERVING
 * with one log line; back to SERVING when it is current again. */
static void test_schema_behind_at_runtime(void **state)
{
	double t0;

	(void)state;
	if (!tenv_available())
		skip();
	assert_int_equal(health_status(health_port),
	                 GRPC__HEALTH__V1__HEALTH_CHECK_RESPONSE__SERVING_STATUS__SERVING);
	assert_int_equal(tenv_psql(g_dburl,
	                           "UPDATE schema_migrations SET version = -version WHERE version "
	                           "= (SELECT max(version) FROM schema_migrations)",
	                           NULL, 0),
	                 0);
	t0 = now_s();
	while (health_status(health_port) !=
	           GRPC__HEALTH__V1__HEALTH_CHECK_RESPONSE__SERVING_STATUS__NOT_SERVING &&
	       now_s() - t0 < 20.0)
		usleep(200000);
	assert_int_equal(health_status(health_port),
	                 GRPC__HEALTH__V1__HEALTH_CHECK_RESPONSE__SERVING_STATUS__NOT_SERVING);
	usleep(2500000); /* checked every second meanwhile: still one line */
	assert_int_equal(count_in_file(g_srv.log_path, "schema is behind"), 1);
	assert_int_equal(tenv_psql(g_dburl,
	                           "UPDATE schema_migrations SET version = -version WHERE version "
	                           "< 0",
	                           NULL, 0),
	                 0);
	t0 = now_s();
	while (health_status(health_port) !=
	           GRPC__HEALTH__V1__HEALTH_CHECK_RESPONSE__SERVING_STATUS__SERVING &&
	       now_s() - t0 < 5.0)
		usleep(200000);
	assert_int_equal(health_status(health_port),
	                 GRPC__HEALTH__V1__HEALTH_CHECK_RESPONSE__SERVING_STATUS__SERVING);
}

/* --- the log is JSON only --------------------------------------------------------------------- */

/* Every line of text is a JSON object ({...}); returns the number of lines, fails on others. */
static int all_json(const char *text, const char *what)
{
	int n = 0;
	for (const char *p = text; *p;) {
		const char *nl = strchr(p, '\n');
		size_t len = nl ? (size_t)(nl - p) : strlen(p);
		if (len > 0 && (p[0] != '{' || p[len - 1] != '}'))
			fail_msg("%s: a line that is not JSON: %.*s", what, (int)len, p);
		n += len > 0;
		p += len + (nl != NULL);
	}
	return n;
}

static char *slurp(const char *path)
{
	FILE *f = fopen(path, "r");
	char *buf;
	long n;

	assert_non_null(f);
	fseek(f, 0, SEEK_END);
	n = ftell(f);
	fseek(f, 0, SEEK_SET);
	buf = calloc((size_t)n + 1, 1);
	assert_non_null(buf);
	assert_int_equal(fread(buf, 1, (size_t)n, f), (size_t)n);
	fclose(f);
	return buf;
}

/* Refused handshakes (no client certificate, another CA) and a metrics port clash
 * (libmicrohttpd) leave only JSON lines; grpc's own, if any, are marked "source":"grpc" and
 * rate-limited. */
static void test_stderr_is_json_only(void **state)
{
	char db[1100], listen[64], metrics[64], out[8192];
	char *log;
	int rc;

	(void)state;
	if (!tenv_available())
		skip();
	for (int i = 0; i < 80; i++) {
		const char *who = i % 2 ? "rogue" : NULL;
		struct tclient *c = tserver_client(&g_srv, who);
		Grpc__Health__V1__HealthCheckRequest req =
		    GRPC__HEALTH__V1__HEALTH_CHECK_REQUEST__INIT;
		struct tresult r;
		assert_non_null(c);
		assert_int_equal(tclient_call(c, "/grpc.health.v1.Health/Check", &req.base, NULL,
		                              NULL, 2000, &r),
		                 GRPC_STATUS_UNAVAILABLE);
		tresult_cleanup(&r);
		tclient_free(c);
	}
	usleep(300000);
	log = slurp(g_srv.log_path);
	all_json(log, g_srv.log_path);
	/* maturityd's front door refuses them (one line a second with a count). */
	if (strstr(log, "refused at the TLS handshake") == NULL)
		fail_msg("the refused handshakes are not in the log: %s", log);
	/* Rate-limited: never more than 20 grpc lines stamped in one second (a line let through
	 * just before a second ends may be stamped just after: a little slack). */
	{
		char sec[32] = "";
		int in_sec = 0;
		for (const char *p = log; (p = strstr(p, "\"source\":\"grpc\"")) != NULL; p++) {
			const char *line = p;
			while (line > log && line[-1] != '\n')
				line--;
			/* {"time":"2026-12-05T04:12:56.043049Z": the second is the first 19 chars
			 */
			if (strncmp(line + 9, sec, 19) != 0) {
				snprintf(sec, sizeof(sec), "%.19s", line + 9);
				in_sec = 0;
			}
			if (++in_sec > 22)
				fail_msg("more than 20 grpc lines in %s", sec);
		}
	}
	free(log);

	snprintf(db, sizeof(db), "--database-url=%s", g_dburl);
	snprintf(listen, sizeof(listen), "--listen=127.0.0.1:%d", itest_free_port());
	snprintf(metrics, sizeof(metrics), "--metrics-listen=127.0.0.1:%d", metrics_port);
	rc = run((const char *[]){listen, metrics, db, a_cert, a_key, a_ca, NULL}, NULL, out,
	         sizeof(out));
	if (rc != 2 || strstr(out, "--metrics-listen") == NULL)
		fail_msg("want exit 2 naming --metrics-listen; got %d: %s", rc, out);
	all_json(out, "metrics port clash");
}

/* --- process metrics ------------------------------------------------------------------------ */

/* GET /metrics from the metrics port; the body goes to out. */
static void get_metrics(char *out, size_t n)
{
	struct sockaddr_in a = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
	static const char req[] = "GET /metrics HTTP/1.0\r\nHost: x\r\n\r\n";
	size_t got = 0;
	int fd = socket(AF_INET, SOCK_STREAM, 0);

	a.sin_port = htons((uint16_t)metrics_port);
	assert_int_equal(connect(fd, (struct sockaddr *)&a, sizeof(a)), 0);
	assert_int_equal(write(fd, req, sizeof(req) - 1), (ssize_t)(sizeof(req) - 1));
	for (;;) {
		ssize_t r = read(fd, out + got, n - 1 - got);
		if (r <= 0)
			break;
		got += (size_t)r;
	}
	out[got] = '\0';
	close(fd);
}

/* The value of an unlabelled metric, or -1 when it is missing. */
static double metric(const char *text, const char *name)
{
	char k[128];
	const char *p;
	snprintf(k, sizeof(k), "\n%s ", name);
	p = strstr(text, k);
	return p != NULL ? strtod(p + strlen(k), NULL) : -1;
}

static void test_process_metrics(void **state)
{
	static char text[1 << 20];
	struct timespec now;

	(void)state;
	if (!tenv_available())
		skip();
	get_metrics(text, sizeof(text));
	clock_gettime(CLOCK_REALTIME, &now);
	assert_true(metric(text, "process_resident_memory_bytes") > 1e6);
	assert_true(metric(text, "process_virtual_memory_bytes") > 1e6);
	assert_true(metric(text, "process_cpu_seconds_total") > 0);
	assert_true(metric(text, "process_open_fds") >= 3);
	assert_true(metric(text, "process_max_fds") >= metric(text, "process_open_fds"));
	/* Started by this test program, within the last ten minutes. */
	assert_true(metric(text, "process_start_time_seconds") > (double)now.tv_sec - 600);
	assert_true(metric(text, "process_start_time_seconds") <= (double)now.tv_sec + 1);
	assert_non_null(strstr(text, "# TYPE process_cpu_seconds_total counter"));
}

/* --- W3C trace context --------------------------------------------------------------------- */

static void test_traceparent_on_the_call_line(void **state)
{
	struct tclient *c;
	Mlops__Maturity__V1__ListOrganizationsRequest req =
	    MLOPS__MATURITY__V1__LIST_ORGANIZATIONS_REQUEST__INIT;
	struct tresult r;
	char *log;

	(void)state;
	if (!tenv_available())
		skip();
	c = tserver_client(&g_srv, "admin");
	assert_non_null(c);
	tclient_set_request_id(c, "trace-ok");
	tclient_set_traceparent(c, "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01");
	assert_int_equal(tclient_call(c, M("OrganizationService", "ListOrganizations"), &req.base,
	                              NULL, NULL, 10000, &r),
	                 GRPC_STATUS_OK);
	tresult_cleanup(&r);
	/* The connection that served it carries the trace in application_name until another call
	 * uses it (health pings leave it alone). */
	{
		char n[64];
		assert_int_equal(tenv_psql(g_dburl,
		                           "SELECT count(*) FROM pg_stat_activity WHERE "
		                           "application_name = 'maturityd "
		                           "4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7'",
		                           n, sizeof(n)),
		                 0);
		if (atoi(n) != 1)
			fail_msg("no database session names the trace: %s", n);
	}
	/* Upper case is malformed: ignored, the call goes on. */
	tclient_set_request_id(c, "trace-bad");
	tclient_set_traceparent(c, "00-4BF92F3577B34DA6A3CE929D0E0E4736-00F067AA0BA902B7-01");
	assert_int_equal(tclient_call(c, M("OrganizationService", "ListOrganizations"), &req.base,
	                              NULL, NULL, 10000, &r),
	                 GRPC_STATUS_OK);
	tresult_cleanup(&r);
	tclient_free(c);
	usleep(200000);
	log = slurp(g_srv.log_path);
	{
		const char *ok = strstr(log, "\"request_id\":\"trace-ok\"");
		const char *bad = strstr(log, "\"request_id\":\"trace-bad\"");
		const char *eol;
		assert_non_null(ok);
		assert_non_null(bad);
		eol = strchr(ok, '\n');
		if (strstr(ok, "\"trace_id\":\"4bf92f3577b34da6a3ce929d0e0e4736\",\"span_id\":"
		               "\"00f067aa0ba902b7\"") == NULL ||
		    strstr(ok, "trace_id") > eol)
			fail_msg("no trace ids on the call line: %.*s", (int)(eol - ok), ok);
		eol = strchr(bad, '\n');
		if (strstr(bad, "trace_id") != NULL && strstr(bad, "trace_id") < eol)
			fail_msg("a malformed traceparent was logged: %.*s", (int)(eol - bad), bad);
	}
	free(log);
}

/* --- the probe subcommand for container healthchecks ------------------------------------------ */

static void test_health_subcommand(void **state)
{
	char addr[64], env[80], out[4096];
	int rc;

	(void)state;
	if (!tenv_available())
		skip();
	snprintf(addr, sizeof(addr), "127.0.0.1:%d", health_port);
	rc = run((const char *[]){"health", "--health-addr", addr, NULL}, NULL, out, sizeof(out));
	if (rc != 0 || strstr(out, "SERVING") == NULL)
		fail_msg("want exit 0 SERVING; got %d: %s", rc, out);
	/* The listen address of the image's environment works as a target. */
	snprintf(env, sizeof(env), "MATURITYD_HEALTH_LISTEN=0.0.0.0:%d", health_port);
	rc = run((const char *[]){"health", NULL}, (const char *[]){env, NULL}, out, sizeof(out));
	if (rc != 0)
		fail_msg("want exit 0 from the environment's address; got %d: %s", rc, out);
	snprintf(addr, sizeof(addr), "127.0.0.1:%d", itest_free_port());
	rc = run((const char *[]){"health", "--health-addr", addr, NULL}, NULL, out, sizeof(out));
	if (rc != 1)
		fail_msg("nothing listening: want exit 1; got %d: %s", rc, out);
	rc = run((const char *[]){"health", "--bogus", NULL}, NULL, out, sizeof(out));
	assert_int_equal(rc, 2);
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
	health_port = itest_free_port();
	metrics_port = itest_free_port();
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
	    cmocka_unit_test(test_schema_behind_exits_1),
	    cmocka_unit_test(test_schema_ahead_refuses_writes),
	    cmocka_unit_test(test_schema_behind_at_runtime),
	    cmocka_unit_test(test_stderr_is_json_only),
	    cmocka_unit_test(test_process_metrics),
	    cmocka_unit_test(test_traceparent_on_the_call_line),
	    cmocka_unit_test(test_health_subcommand),
	};
	return cmocka_run_group_tests(tests, setup, itest_teardown);
}
