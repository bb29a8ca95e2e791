/* Operations over the real server: graceful shutdown with streams in flight, a database outage
 * and recovery without restart, deadlines and cancellation, metrics, JSON logs, the plaintext
 * health port, and certificate reload on SIGHUP. */
#include "itest.h"

// clang-format off
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <cmocka.h>
// clang-format on
#include <arpa/inet.h>
#include <netinet/in.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "grpc/health/v1/health.pb-c.h"
#include "mlops/maturity/v1/organization.pb-c.h"
#include "mlops/maturity/v1/reporting.pb-c.h"

#define M(svc, m) "/mlops.maturity.v1." svc "/" m

static double now_s(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static int sh(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
static int sh(const char *fmt, ...)
{
	char cmd[2048];
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(cmd, sizeof(cmd), fmt, ap);
	va_end(ap);
	int st = system(cmd);
	return WIFEXITED(st) ? WEXITSTATUS(st) : -1;
}

static grpc_status_code get_org(struct tclient *c, const char *name, int timeout_ms)
{
	Mlops__Maturity__V1__GetOrganizationRequest g =
	    MLOPS__MATURITY__V1__GET_ORGANIZATION_REQUEST__INIT;
	struct tresult r;
	g.name = (char *)name;
	grpc_status_code st = tclient_call(c, M("OrganizationService", "GetOrganization"), &g.base,
	                                   NULL, NULL, timeout_ms, &r);
	tresult_cleanup(&r);
	return st;
}

static int health(struct tclient *c)
{
	Grpc__Health__V1__HealthCheckRequest req = GRPC__HEALTH__V1__HEALTH_CHECK_REQUEST__INIT;
	ProtobufCMessage *resp = NULL;
	struct tresult r;
	int status = -1;
	if (tclient_call(c, "/grpc.health.v1.Health/Check", &req.base,
	                 &grpc__health__v1__health_check_response__descriptor, &resp, 2000,
	                 &r) == GRPC_STATUS_OK)
		status = ((Grpc__Health__V1__HealthCheckResponse *)resp)->status;
	if (resp)
		protobuf_c_message_free_unpacked(resp, NULL);
	tresult_cleanup(&r);
	return status;
}
#define SERVING GRPC__HEALTH__V1__HEALTH_CHECK_RESPONSE__SERVING_STATUS__SERVING
#define NOT_SERVING GRPC__HEALTH__V1__HEALTH_CHECK_RESPONSE__SERVING_STATUS__NOT_SERVING

static void create_org(struct tclient *c, const char *id)
{
	Mlops__Maturity__V1__CreateOrganizationRequest req =
	    MLOPS__MATURITY__V1__CREATE_ORGANIZATION_REQUEST__INIT;
	Mlops__Maturity__V1__Organization o = MLOPS__MATURITY__V1__ORGANIZATION__INIT;
	struct tresult r;
	req.organization = &o;
	req.organization_id = (char *)id;
	assert_int_equal(tclient_call(c, M("OrganizationService", "CreateOrganization"), &req.base,
	                              NULL, NULL, 10000, &r),
	                 GRPC_STATUS_OK);
	tresult_cleanup(&r);
}

static void bulk_assessments(const char *url, const char *org, int n)
{
	char sql[1024];
	snprintf(sql, sizeof(sql),
	         "INSERT INTO assessments (org_id, id, title, model_id, creator) SELECT '%s', "
	         "('01890000-0000-7000-8000-' || lpad(to_hex(g), 12, '0'))::uuid, 'bulk', "
	         "'mlops-v1', 'seed' FROM generate_series(1, %d) g",
	         org, n);
	assert_int_equal(tenv_psql(url, sql, NULL, 0), 0);
}

/* --- database outage ------------------------------------------------------------------- */

static void test_database_outage_and_recovery(void **state)
{
	char dir[128], url[512], cmd_out[512];
	struct tserver s;
	struct tclient *c;
	double t0;
	int port = itest_free_port();
	FILE *p;

	(void)state;
	if (!tenv_available())
		skip();
	snprintf(dir, sizeof(dir), "/tmp/maturity-outage-%d", (int)getpid());
	snprintf(cmd_out, sizeof(cmd_out), "%s/scripts/pg-dev start %s %d", MATURITY_SOURCE_DIR,
	         dir, port);
	p = popen(cmd_out, "r");
	assert_non_null(p);
	assert_non_null(fgets(url, sizeof(url), p));
	pclose(p);
	url[strcspn(url, "\n")] = '\0';
	assert_int_equal(tserver_start(&s, url, NULL), 0);
	c = tserver_client(&s, "admin");
	create_org(c, "outage-org");

	assert_int_equal(sh("%s/scripts/pg-dev stop %s >/dev/null 2>&1", MATURITY_SOURCE_DIR, dir),
	                 0);
	t0 = now_s();
	grpc_status_code st = get_org(c, "organizations/outage-org", 10000);
	assert_int_equal(st, GRPC_STATUS_UNAVAILABLE);
	assert_true(now_s() - t0 < 5.0);
	/* The client learns that it may retry, nothing about the database's address (libpq's
	 * message names the socket path or host): that detail is in the server's log only. */
	{
		Mlops__Maturity__V1__GetOrganizationRequest g =
		    MLOPS__MATURITY__V1__GET_ORGANIZATION_REQUEST__INIT;
		struct tresult r;
		g.name = (char *)"organizations/outage-org";
		assert_int_equal(tclient_call(c, M("OrganizationService", "GetOrganization"),
		                              &g.base, NULL, NULL, 10000, &r),
		                 GRPC_STATUS_UNAVAILABLE);
		if (strstr(r.message, dir) != NULL || strstr(r.message, "PGSQL") != NULL ||
		    strstr(r.message, "127.0.0.1") != NULL ||
		    strstr(r.message, "connection") != NULL)
			fail_msg("internals in the client's message: %s", r.message);
		assert_string_equal(r.message, "the database is unavailable; try again later");
		tresult_cleanup(&r);
	}
	while (health(c) != NOT_SERVING && now_s() - t0 < 5.0)
		usleep(100000);
	assert_int_equal(health(c), NOT_SERVING);

	assert_int_equal(
	    sh("%s/scripts/pg-dev start %s %d >/dev/null 2>&1", MATURITY_SOURCE_DIR, dir, port), 0);
	t0 = now_s();
	while ((health(c) != SERVING ||
	        get_org(c, "organizations/outage-org", 2000) != GRPC_STATUS_OK) &&
	       now_s() - t0 < 5.0)
		usleep(100000);
	assert_int_equal(health(c), SERVING);
	assert_int_equal(get_org(c, "organizations/outage-org", 5000), GRPC_STATUS_OK);
	/* The same process all along. */
	assert_int_equal(kill(s.pid, 0), 0);
	tclient_free(c);
	assert_int_equal(tserver_stop(&s), 0);
	sh("%s/scripts/pg-dev stop %s >/dev/null 2>&1; rm -rf %s", MATURITY_SOURCE_DIR, dir, dir);
}

/* PostgreSQL restarts while reads are pipelined on the storage loop: every call gets OK or
 * UNAVAILABLE (never hangs, never another code), and reads succeed again once it is back. */
struct reader {
	const struct tserver *s;
	atomic_int *stop;
	int ok, unavailable, other, slow;
	grpc_status_code last_other;
};

static void *reader_main(void *arg)
{
	struct reader *r = arg;
	struct tclient *c = tserver_client(r->s, "admin");

	while (!atomic_load(r->stop)) {
		double t0 = now_s();
		grpc_status_code st = get_org(c, "organizations/restart-org", 5000);
		if (now_s() - t0 > 4.5)
			r->slow++;
		if (st == GRPC_STATUS_OK) {
			r->ok++;
		} else if (st == GRPC_STATUS_UNAVAILABLE) {
			r->unavailable++;
			usleep(20000);
		} else {
			r->other++;
			r->last_other = st;
		}
	}
	tclient_free(c);
	return NULL;
}

static void test_restart_during_pipelined_reads(void **state)
{
	enum { N = 8 };
	char dir[128], url[512], cmd[512];
	struct reader rd[N];
	pthread_t th[N];
	atomic_int stop;
	struct tserver s;
	struct tclient *c;
	int port = itest_free_port(), ok = 0, unavailable = 0;
	double t0;
	FILE *p;

	(void)state;
	if (!tenv_available())
		skip();
	snprintf(dir, sizeof(dir), "/tmp/maturity-restart-%d", (int)getpid());
	snprintf(cmd, sizeof(cmd), "%s/scripts/pg-dev start %s %d", MATURITY_SOURCE_DIR, dir, port);
	p = popen(cmd, "r");
	assert_non_null(p);
	assert_non_null(fgets(url, sizeof(url), p));
	pclose(p);
	url[strcspn(url, "\n")] = '\0';
	assert_int_equal(tserver_start(&s, url, NULL), 0);
	c = tserver_client(&s, "admin");
	create_org(c, "restart-org");
	atomic_init(&stop, 0);
	for (int i = 0; i < N; i++) {
		rd[i] = (struct reader){.s = &s, .stop = &stop};
		assert_int_equal(pthread_create(&th[i], NULL, reader_main, &rd[i]), 0);
	}
	usleep(500000);
	assert_int_equal(
	    sh("%s/scripts/pg-dev stop %s >/dev/null 2>&1 && %s/scripts/pg-dev start %s %d "
	       ">/dev/null 2>&1",
	       MATURITY_SOURCE_DIR, dir, MATURITY_SOURCE_DIR, dir, port),
	    0);
	/* Back: reads succeed again within a few seconds. */
	t0 = now_s();
	while (get_org(c, "organizations/restart-org", 2000) != GRPC_STATUS_OK &&
	       now_s() - t0 < 10.0)
		usleep(100000);
	assert_int_equal(get_org(c, "organizations/restart-org", 5000), GRPC_STATUS_OK);
	usleep(500000);
	atomic_store(&stop, 1);
	for (int i = 0; i < N; i++) {
		pthread_join(th[i], NULL);
		ok += rd[i].ok;
		unavailable += rd[i].unavailable;
		if (rd[i].other != 0)
			fail_msg("reader %d: %d calls ended %s", i, rd[i].other,
			         itest_code_name(rd[i].last_other));
		assert_int_equal(rd[i].slow, 0);
	}
	fprintf(stderr,
	        "ops: PostgreSQL restarted under %d readers: %d OK, %d UNAVAILABLE, back in "
	        "%.1f s\n",
	        N, ok, unavailable, now_s() - t0);
	assert_true(ok > 0);
	tclient_free(c);
	assert_int_equal(tserver_stop(&s), 0);
	sh("%s/scripts/pg-dev stop %s >/dev/null 2>&1; rm -rf %s", MATURITY_SOURCE_DIR, dir, dir);
}

/* --- deadlines and cancellation ---------------------------------------------------------- */

static void test_deadline_and_cancel(void **state)
{
	Mlops__Maturity__V1__ExportAssessmentsRequest req =
	    MLOPS__MATURITY__V1__EXPORT_ASSESSMENTS_REQUEST__INIT;
	struct tstream *st;
	ProtobufCMessage *m;
	struct tresult r;
	char out[64];
	double t0;

	(void)state;
	if (!tenv_available())
		skip();
	assert_int_equal(get_org(itest_client("admin"), "organizations/x-org", 1),
	                 GRPC_STATUS_DEADLINE_EXCEEDED);
	create_org(itest_client("admin"), "cancel-org");
	bulk_assessments(g_dburl, "cancel-org", 50000);
	req.organization = "organizations/cancel-org";
	st = tclient_stream_open(itest_client("admin"), M("ReportingService", "ExportAssessments"),
	                         &req.base, 60000);
	assert_true(tclient_stream_next(
	    st, &mlops__maturity__v1__export_assessments_response__descriptor, &m));
	protobuf_c_message_free_unpacked(m, NULL);
	tclient_stream_cancel(st);
	tclient_stream_finish(st, &r);
	tresult_cleanup(&r);
	/* No query of the cancelled call keeps running. */
	t0 = now_s();
	do {
		usleep(100000);
		assert_int_equal(tenv_psql(g_dburl,
		                           "SELECT count(*) FROM pg_stat_activity WHERE state = "
		                           "'active' AND pid <> pg_backend_pid() AND datname = "
		                           "current_database()",
		                           out, sizeof(out)),
		                 0);
	} while (strcmp(out, "0") != 0 && now_s() - t0 < 3.0);
	assert_string_equal(out, "0");
	assert_int_equal(health(itest_client("admin")), SERVING);
}

/* --- graceful shutdown with exports in flight --------------------------------------------- */

struct exporter {
	struct tserver *srv;
	const char *org;
	size_t got;
	grpc_status_code code;
	char message[160]; /* the status message, for a failure's report */
	atomic_int *started;
};

static void *export_main(void *arg)
{
	struct exporter *e = arg;
	struct tclient *c = tserver_client(e->srv, "admin");
	Mlops__Maturity__V1__ExportAssessmentsRequest req =
	    MLOPS__MATURITY__V1__EXPORT_ASSESSMENTS_REQUEST__INIT;
	char n[64];
	struct tstream *s;
	ProtobufCMessage *m;
	struct tresult r;

	sprintf(n, "organizations/%s", e->org);
	req.organization = n;
	s = tclient_stream_open(c, M("ReportingService", "ExportAssessments"), &req.base, 120000);
	while (tclient_stream_next(s, &mlops__maturity__v1__export_assessments_response__descriptor,
	                           &m)) {
		if (e->got++ == 0)
			atomic_fetch_add(e->started, 1);
		protobuf_c_message_free_unpacked(m, NULL);
		if (e->got % 2000 == 0)
			usleep(20000); /* a slowish reader: the stream is still going at SIGTERM */
	}
	e->code = tclient_stream_finish(s, &r);
	snprintf(e->message, sizeof(e->message), "%s", r.message != NULL ? r.message : "");
	tresult_cleanup(&r);
	tclient_free(c);
	return NULL;
}

static void test_sigterm_with_streams(void **state)
{
	/* Eight handlers: streams may use half of them, so the three exports all run. */
	static const char *const extra[] = {"--shutdown-grace=60", "--workers=8", NULL};
	struct tserver s;
	struct exporter ex[3];
	pthread_t th[3];
	atomic_int started;
	struct tclient *late;
	int status;

	(void)state;
	if (!tenv_available())
		skip();
	create_org(itest_client("admin"), "term-org");
	bulk_assessments(g_dburl, "term-org", 20000);
	assert_int_equal(tserver_start(&s, g_dburl, extra), 0);
	atomic_init(&started, 0);
	for (int i = 0; i < 3; i++) {
		ex[i] = (struct exporter){.srv = &s, .org = "term-org", .started = &started};
		pthread_create(&th[i], NULL, export_main, &ex[i]);
	}
	for (int i = 0; i < 3000 && atomic_load(&started) < 3; i++)
		usleep(10000);
	assert_int_equal(atomic_load(&started), 3);
	kill(s.pid, SIGTERM);
	usleep(300000);
	/* New calls are refused while the accepted ones finish. */
	late = tserver_client(&s, "admin");
	assert_int_equal(get_org(late, "organizations/term-org", 3000), GRPC_STATUS_UNAVAILABLE);
	tclient_free(late);
	for (int i = 0; i < 3; i++) {
		pthread_join(th[i], NULL);
		if (ex[i].code != GRPC_STATUS_OK)
			fail_msg("export %d: status %d (%s) after %zu messages", i, ex[i].code,
			         ex[i].message, ex[i].got);
		assert_int_equal(ex[i].got, 20000);
	}
	assert_int_equal(waitpid(s.pid, &status, 0), s.pid);
	assert_true(WIFEXITED(status));
	assert_int_equal(WEXITSTATUS(status), 0);
}

/* --- metrics, logs, health port --------------------------------------------------------- */

static void test_metrics_logs_health_port(void **state)
{
	char m_arg[64], h_arg[64], target[64];
	const char *extra[3];
	struct tserver s;
	struct tclient *c, *plain;
	int mport = itest_free_port(), hport;
	char *text;

	(void)state;
	if (!tenv_available())
		skip();
	hport = itest_free_port();
	while (hport == mport)
		hport = itest_free_port();
	snprintf(m_arg, sizeof(m_arg), "--metrics-listen=127.0.0.1:%d", mport);
	snprintf(h_arg, sizeof(h_arg), "--health-listen=127.0.0.1:%d", hport);
	extra[0] = m_arg;
	extra[1] = h_arg;
	extra[2] = NULL;
	assert_int_equal(tserver_start(&s, g_dburl, extra), 0);
	c = tserver_client(&s, "admin");
	for (int i = 0; i < 7; i++)
		assert_int_equal(get_org(c, "organizations/no-such-metrics-org", 5000),
		                 GRPC_STATUS_NOT_FOUND);
	text = itest_http_get(mport, "/metrics");
	assert_non_null(text);
	assert_non_null(strstr(text, "grpc_server_handled_total{grpc_type=\"unary\",grpc_service="
	                             "\"mlops.maturity.v1.OrganizationService\",grpc_method="
	                             "\"GetOrganization\",grpc_code=\"NotFound\"} 7\n"));
	assert_non_null(strstr(text, "grpc_server_started_total{grpc_type=\"unary\",grpc_service="
	                             "\"mlops.maturity.v1.OrganizationService\",grpc_method="
	                             "\"GetOrganization\"} 7\n"));
	assert_non_null(strstr(text, "grpc_server_handling_seconds_bucket"));
	assert_non_null(strstr(text, "maturityd_db_pool_connections{state=\"idle\"}"));
	free(text);
	text = itest_http_get(mport, "/other");
	assert_non_null(strstr(text, "404"));
	free(text);

	/* The health port: plaintext, no certificate, health and nothing else. */
	snprintf(target, sizeof(target), "127.0.0.1:%d", hport);
	plain = tclient_new(target, NULL, NULL, NULL, true);
	assert_int_equal(health(plain), SERVING);
	assert_int_equal(get_org(plain, "organizations/x", 3000), GRPC_STATUS_UNIMPLEMENTED);
	{
		/* Watch streams the current state first, and ends with the client. */
		Grpc__Health__V1__HealthCheckRequest wreq =
		    GRPC__HEALTH__V1__HEALTH_CHECK_REQUEST__INIT;
		struct tstream *w =
		    tclient_stream_open(plain, "/grpc.health.v1.Health/Watch", &wreq.base, 10000);
		ProtobufCMessage *msg = NULL;
		struct tresult wr;
		assert_true(tclient_stream_next(
		    w, &grpc__health__v1__health_check_response__descriptor, &msg));
		assert_int_equal(((Grpc__Health__V1__HealthCheckResponse *)msg)->status, SERVING);
		protobuf_c_message_free_unpacked(msg, NULL);
		tclient_stream_cancel(w);
		assert_int_equal(tclient_stream_finish(w, &wr), GRPC_STATUS_CANCELLED);
		tresult_cleanup(&wr);
		/* Unknown services are NOT_FOUND there too. */
		wreq.service = "no.such.Service";
		struct tresult cr;
		assert_int_equal(tclient_call(plain, "/grpc.health.v1.Health/Check", &wreq.base,
		                              NULL, NULL, 3000, &cr),
		                 GRPC_STATUS_NOT_FOUND);
		tresult_cleanup(&cr);
	}
	tclient_free(plain);
	/* The health port is a listener of the same engine, not a server of its own: its calls
	 * are counted with the main port's, a refused method under its own name. */
	text = itest_http_get(mport, "/metrics");
	assert_non_null(text);
	assert_non_null(strstr(text, "grpc_server_handled_total{grpc_type=\"unary\",grpc_service="
	                             "\"grpc.health.v1.Health\",grpc_method=\"Check\","
	                             "grpc_code=\"NotFound\"} 1\n"));
	assert_non_null(strstr(text, "grpc_server_handled_total{grpc_type=\"unary\",grpc_service="
	                             "\"mlops.maturity.v1.OrganizationService\",grpc_method="
	                             "\"GetOrganization\",grpc_code=\"Unimplemented\"} 1\n"));
	free(text);
	{
		/* Watch on the main port too: the first message is the current state. */
		Grpc__Health__V1__HealthCheckRequest wreq =
		    GRPC__HEALTH__V1__HEALTH_CHECK_REQUEST__INIT;
		struct tstream *w =
		    tclient_stream_open(c, "/grpc.health.v1.Health/Watch", &wreq.base, 10000);
		ProtobufCMessage *msg = NULL;
		struct tresult wr;
		assert_true(tclient_stream_next(
		    w, &grpc__health__v1__health_check_response__descriptor, &msg));
		assert_int_equal(((Grpc__Health__V1__HealthCheckResponse *)msg)->status, SERVING);
		protobuf_c_message_free_unpacked(msg, NULL);
		tclient_stream_cancel(w);
		tclient_stream_finish(w, &wr);
		tresult_cleanup(&wr);
	}
	tclient_free(c);
	assert_int_equal(tserver_stop(&s), 0);

	/* Every log line is JSON; call lines name method, principal and code. */
	assert_int_equal(sh("/usr/bin/python3 -c 'import json,sys\n"
	                    "def j(l):\n"
	                    "  try: return json.loads(l)\n"
	                    "  except ValueError: sys.exit(\"not JSON: %%r\" %% l)\n"
	                    "calls=[j(l) for l in open(sys.argv[1]) if l.strip()]\n"
	                    "c=[x for x in calls if x.get(\"msg\")==\"call\" and "
	                    "x[\"method\"].endswith(\"GetOrganization\")]\n"
	                    "assert c and all(x[\"principal\"] and x[\"code\"] and \"duration_ms\" "
	                    "in x and x[\"request_id\"] for x in c), c[:1]\n' %s",
	                    s.log_path),
	                 0);
}

/* --- certificate reload ------------------------------------------------------------------ */

static void test_certificate_reload(void **state)
{
	char dir[128], ca[256], other[256], target[64];
	const char *pki = getenv("MATURITY_TEST_PKI");
	char saved[512];
	struct tserver s;
	struct tclient *before, *old_ca, *new_ca;

	(void)state;
	if (!tenv_available())
		skip();
	snprintf(dir, sizeof(dir), "/tmp/maturity-reload-%d", (int)getpid());
	assert_int_equal(sh("rm -rf %s && cp -r %s %s", dir, pki, dir), 0);
	snprintf(saved, sizeof(saved), "%s", pki);
	setenv("MATURITY_TEST_PKI", dir, 1);
	assert_int_equal(tserver_start(&s, g_dburl, NULL), 0);
	setenv("MATURITY_TEST_PKI", saved, 1);
	before = tserver_client(&s, "admin");
	assert_int_equal(health(before), SERVING);

	/* Rotate to a server certificate from another CA, then SIGHUP. */
	assert_int_equal(sh("cp %s/server2.pem %s/server.pem && cp %s/server2.key %s/server.key",
	                    dir, dir, dir, dir),
	                 0);
	kill(s.pid, SIGHUP);
	usleep(300000);
	snprintf(target, sizeof(target), "127.0.0.1:%d", s.port);
	snprintf(ca, sizeof(ca), "%s/ca.pem", dir);
	snprintf(other, sizeof(other), "%s/other-ca.pem", dir);
	char cert[256], key[256];
	snprintf(cert, sizeof(cert), "%s/admin.pem", dir);
	snprintf(key, sizeof(key), "%s/admin.key", dir);
	/* New handshakes present the new certificate: the old CA no longer verifies it. */
	old_ca = tclient_new(target, ca, cert, key, false);
	new_ca = tclient_new(target, other, cert, key, false);
	assert_int_equal(health(old_ca), -1);
	/* Gone at once: a channel whose handshakes fail keeps retrying them in the background,
	 * and grpc has been seen (once, under ASan) to leak OpenSSL memory in such a handshake. */
	tclient_free(old_ca);
	assert_int_equal(health(new_ca), SERVING);
	/* The connection made before the reload keeps working. */
	assert_int_equal(health(before), SERVING);
	/* A reload whose files do not load keeps the current credentials. */
	assert_int_equal(sh("echo garbage > %s/server.key", dir), 0);
	kill(s.pid, SIGHUP);
	usleep(300000);
	tclient_free(new_ca);
	new_ca = tclient_new(target, other, cert, key, false);
	assert_int_equal(health(new_ca), SERVING);
	tclient_free(before);
	tclient_free(new_ca);
	assert_int_equal(tserver_stop(&s), 0);
	sh("rm -rf %s", dir);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_deadline_and_cancel),
	    cmocka_unit_test(test_metrics_logs_health_port),
	    cmocka_unit_test(test_certificate_reload),
	    cmocka_unit_test(test_sigterm_with_streams),
	    cmocka_unit_test(test_database_outage_and_recovery),
	    cmocka_unit_test(test_restart_during_pipelined_reads),
	};
	return cmocka_run_group_tests(tests, itest_setup, itest_teardown);
}
