/* maturityd: parse the configuration, wait for the database, migrate, serve until SIGTERM or
 * SIGINT, reload certificates and attestation keys on SIGHUP. Exit 0 on a clean stop, 1 on a
 * runtime failure (the database stayed unreachable), 2 on a configuration error. `maturityd
 * health` is a probe for container healthchecks (svc_probe.h). */
#include "auth.h"
#include "auth_tls.h"
#include "store.h"
#include "svc.h"
#include "svc_attest.h"
#include "svc_config.h"
#include "svc_health.h"
#include "svc_log.h"
#include "svc_metrics.h"
#include "svc_probe.h"
#include "svc_server.h"

#include <dlfcn.h>
#include <grpc/grpc.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

/* Configuration errors are one line each: libpq and OpenSSL messages may hold newlines. */
static const char *one_line(char *s)
{
	size_t n = strlen(s);
	while (n > 0 && (s[n - 1] == '\n' || s[n - 1] == ' '))
		s[--n] = '\0';
	for (char *p = s; *p; p++)
		if (*p == '\n' || *p == '\r' || *p == '\t')
			*p = ' ';
	return s;
}

static const char *flag_of(enum auth_file f)
{
	switch (f) {
	case AUTH_FILE_CERT:
		return "--tls-cert";
	case AUTH_FILE_KEY:
		return "--tls-key";
	case AUTH_FILE_CLIENT_CA:
		return "--tls-client-ca";
	case AUTH_FILE_CRL:
		return "--tls-crl";
	}
	return "--tls-cert";
}

/* The schema must hold every migration this binary embeds. Behind (started with --no-migrate
 * before the migration job ran): wait for it up to --db-wait from the start, then exit 1. A newer
 * binary's schema: serve reads, refuse writes. */
static int check_schema(struct store_pool *pool, const struct svc_config *cfg,
                        const struct timespec *t0)
{
	for (;;) {
		struct store_schema sc;
		struct mat_error err;
		struct timespec now;
		char msg[400];
		double waited;

		mat_error_clear(&err);
		clock_gettime(CLOCK_MONOTONIC, &now);
		waited =
		    (double)(now.tv_sec - t0->tv_sec) + (double)(now.tv_nsec - t0->tv_nsec) / 1e9;
		if (store_schema_check(pool, store_now_ms() + 5000, &sc, &err) != MAT_OK) {
			if (waited >= cfg->db_wait_s) {
				fprintf(stderr, "maturityd: cannot read the schema version: %s\n",
				        one_line(err.message));
				return -1;
			}
		} else if (svc_schema_apply(pool, &sc, msg, sizeof(msg))) {
			if (msg[0] != '\0')
				svc_log_event("warn", "%s", msg);
			return 0;
		} else if (waited >= cfg->db_wait_s) {
			fprintf(stderr, "maturityd: %s (waited %d s, --db-wait)\n", msg,
			        cfg->db_wait_s);
			return -1;
		}
		nanosleep(&(struct timespec){.tv_sec = 0, .tv_nsec = 500000000L}, NULL);
	}
}

/* Debian builds abseil without NDEBUG, which turns on absl::Mutex deadlock detection: every
 * lock of a grpc mutex while another is held updates one global lock graph, whose memory
 * (LowLevelAlloc, 64 KiB mmaps) is never given back. Each connection's transport adds mutexes,
 * so a flood of connections left ~3 MiB per 1,000 resident for good (measured: 1,000 idle TLS
 * connections opened and closed, RssAnon +8.9 -> +5.9 MiB). A release build of abseil has it
 * off; so do we, before grpc starts. The C++ entry point is found by its mangled name (Debian's
 * inline namespace): on another build it is absent and nothing changes. */
static void absl_deadlock_detection_off(void)
{
	void (*set_mode)(int) = (void (*)(int))dlsym(
	    RTLD_DEFAULT, "_ZN4absl7debian329SetMutexDeadlockDetectionModeENS0_15OnDeadlockCycleE");
	if (set_mode != NULL)
		set_mode(0); /* absl::OnDeadlockCycle::kIgnore */
}

int main(int argc, char **argv)
{
	struct svc_config cfg;
	struct store_pool *pool = NULL;
	struct svc_server *srv = NULL;
	struct auth_pem pem = {0};
	struct auth_tls *tls = NULL;
	struct mat_error err;
	sigset_t sigs;
	int rc = 1;
	struct timespec t0;

	clock_gettime(CLOCK_MONOTONIC, &t0);
	if (argc >= 2 && strcmp(argv[1], "health") == 0) {
		/* The probe needs no configuration but the health address; grpc's lines stay
		 * JSON. */
		svc_log_route_grpc();
		return svc_probe_main(argc - 1, argv + 1);
	}
	rc = svc_config_parse(&cfg, argc, argv, stderr);
	if (rc != 0) {
		svc_config_cleanup(&cfg);
		return rc;
	}
	if (cfg.command == SVC_CMD_HELP) {
		svc_config_usage(stdout);
		svc_config_cleanup(&cfg);
		return 0;
	}
	if (cfg.command == SVC_CMD_VERSION) {
		printf("maturityd %s (grpc core %s)\n", MATURITYD_VERSION, grpc_version_string());
		svc_config_cleanup(&cfg);
		return 0;
	}
	svc_log_init(cfg.log_format);
	svc_log_route_grpc();
	rc = 1;
	mat_error_clear(&err);

	if (cfg.command == SVC_CMD_SERVE) {
		enum auth_file bad = AUTH_FILE_CERT;
		if (auth_pem_load(cfg.tls_cert, cfg.tls_key, cfg.tls_client_ca, &pem, &bad, &err) !=
		    MAT_OK) {
			fprintf(stderr, "maturityd: %s: %s\n", flag_of(bad), one_line(err.message));
			rc = 2;
			goto out;
		}
		{
			struct auth_tls_files files = {cfg.tls_cert, cfg.tls_key, cfg.tls_client_ca,
			                               cfg.tls_crl};
			if (auth_tls_new(&files, &tls, &bad, &err) != MAT_OK) {
				fprintf(stderr, "maturityd: %s: %s\n", flag_of(bad),
				        one_line(err.message));
				rc = 2;
				goto out;
			}
		}
		const char *bad_flag = "";
		if (svc_attest_init(&cfg, &bad_flag, &err) != MAT_OK) {
			fprintf(stderr, "maturityd: %s: %s\n", bad_flag, one_line(err.message));
			rc = 2;
			goto out;
		}
	}

	/* Signals are taken by sigwait in this thread; block them before grpc_init so the threads
	 * grpc and the workers start inherit the mask. */
	sigemptyset(&sigs);
	sigaddset(&sigs, SIGTERM);
	sigaddset(&sigs, SIGINT);
	sigaddset(&sigs, SIGHUP);
	pthread_sigmask(SIG_BLOCK, &sigs, NULL);
	signal(SIGPIPE, SIG_IGN);

	{
		struct store_options so = {.conninfo = cfg.database_url, .size = cfg.db_pool};
		if (store_pool_new(&so, &pool, &err) != MAT_OK) {
			fprintf(stderr, "maturityd: --database-url: %s\n", one_line(err.message));
			rc = 2;
			goto out;
		}
	}
	switch (store_pool_wait(pool, cfg.db_wait_s, &err)) {
	case MAT_OK:
		break;
	case MAT_UNAUTHENTICATED:
		fprintf(stderr, "maturityd: the database refused the login (--database-url): %s\n",
		        one_line(err.message));
		rc = 1;
		goto out;
	default:
		fprintf(stderr, "maturityd: database unreachable after %d s (--db-wait): %s\n",
		        cfg.db_wait_s, one_line(err.message));
		rc = 1;
		goto out;
	}
	if (cfg.command == SVC_CMD_MIGRATE || cfg.migrate_at_start) {
		if (store_migrate(pool, &err) != MAT_OK) {
			fprintf(stderr, "maturityd: migrations failed: %s\n",
			        one_line(err.message));
			rc = 1;
			goto out;
		}
	}
	if (cfg.command == SVC_CMD_MIGRATE) {
		svc_log_event("info", "migrations applied");
		rc = 0;
		goto out;
	}
	if (check_schema(pool, &cfg, &t0) != 0) {
		rc = 1;
		goto out;
	}

	absl_deadlock_detection_off();
	grpc_init();
	srv = svc_server_new(&cfg, pool, &pem, tls);
	tls = NULL;
	if (srv == NULL) {
		rc = 2;
		goto out_grpc;
	}
	if (svc_server_start(srv) != 0) {
		svc_server_shutdown(srv);
		svc_server_free(srv);
		srv = NULL;
		rc = 2;
		goto out_grpc;
	}
	{
		struct timespec t1;
		clock_gettime(CLOCK_MONOTONIC, &t1);
		svc_log_event("info",
		              "maturityd %s serving on %s (port %d), %d workers, %d database "
		              "connections, ready in %.1f ms",
		              MATURITYD_VERSION, cfg.listen, svc_server_port(srv), cfg.workers,
		              cfg.db_pool,
		              (double)(t1.tv_sec - t0.tv_sec) * 1e3 +
		                  (double)(t1.tv_nsec - t0.tv_nsec) / 1e6);
	}
	for (;;) {
		int sig = 0;
		if (sigwait(&sigs, &sig) != 0)
			continue;
		if (sig == SIGHUP) {
			svc_log_event("info", "SIGHUP: reloading certificates");
			svc_server_request_reload(srv);
			/* Attestation keys are not tied to a handshake: reload them now. */
			svc_attest_reload(&cfg);
			continue;
		}
		svc_log_event("info", "%s: shutting down (grace %d s)",
		              sig == SIGTERM ? "SIGTERM" : "SIGINT", cfg.shutdown_grace_s);
		break;
	}
	svc_server_shutdown(srv);
	svc_server_free(srv);
	srv = NULL;
	svc_log_event("info", "stopped");
	rc = 0;
out_grpc:
	svc_reflection_cleanup();
	grpc_shutdown_blocking();
out:
	auth_pem_cleanup(&pem);
	auth_tls_unref(tls);
	svc_attest_cleanup();
	store_pool_free(pool);
	svc_config_cleanup(&cfg);
	return rc;
}
