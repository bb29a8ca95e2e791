/* The command line (maturityd --help). One table lists every flag with its environment variable,
 * default and bounds; parsing, --help and validation all read it, so a new limit is one row. */
#include "svc_config.h"

#include "auth.h"

#include <assert.h>
#include <ctype.h>
#include <errno.h>
#include <limits.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

enum kind { K_STR, K_INT, K_BOOL_TRUE, K_LIST, K_LOGFMT };

struct flag {
	const char *name; /* without the leading "--" */
	const char *env;
	enum kind kind;
	size_t off;
	long min, max;
	const char *def; /* default, as text; NULL = none */
	const char *help;
	unsigned flags;
};
#define F_REQUIRED 1u /* serve and migrate */
#define F_TLS 2u      /* required for serve only */
#define F_FILE 4u
#define F_ADDR 8u

#define OFF(f) offsetof(struct svc_config, f)

static const struct flag flags[] = {
    {"listen", "MATURITYD_LISTEN", K_STR, OFF(listen), 0, 0, "127.0.0.1:50051",
     "address to serve gRPC over mutual TLS", F_ADDR},
    {"database-url", "DATABASE_URL", K_STR, OFF(database_url), 0, 0, NULL,
     "PostgreSQL conninfo or URI", F_REQUIRED},
    {"tls-cert", "MATURITYD_TLS_CERT", K_STR, OFF(tls_cert), 0, 0, NULL,
     "server certificate chain (PEM)", F_TLS | F_FILE},
    {"tls-key", "MATURITYD_TLS_KEY", K_STR, OFF(tls_key), 0, 0, NULL, "server private key (PEM)",
     F_TLS | F_FILE},
    {"tls-client-ca", "MATURITYD_TLS_CLIENT_CA", K_STR, OFF(tls_client_ca), 0, 0, NULL,
     "CA bundle client certificates must chain to (PEM)", F_TLS | F_FILE},
    {"admin-principal", "MATURITYD_ADMIN_PRINCIPALS", K_LIST, OFF(admins), 0, 0, NULL,
     "bootstrap admin principal (repeatable; env: comma-separated)", 0},
    {"delegator", "MATURITYD_DELEGATORS", K_LIST, OFF(delegators), 0, 0, NULL,
     "principal trusted to act for end users with x-on-behalf-of (repeatable; env: "
     "comma-separated)",
     0},
    {"trusted-proxy", "MATURITYD_TRUSTED_PROXIES", K_LIST, OFF(trusted_proxies), 0, 0, NULL,
     "principal of a proxy or mesh sidecar whose x-forwarded-client-cert names the caller "
     "(repeatable; env: comma-separated)",
     0},
    {"tls-crl", "MATURITYD_TLS_CRL", K_STR, OFF(tls_crl), 0, 0, NULL,
     "certificate revocation lists (PEM, one or more; re-read on SIGHUP)", F_FILE},
    {"max-connections", "MATURITYD_MAX_CONNECTIONS", K_INT, OFF(max_connections), 1, 1000000,
     "4096", "open connections, all listeners (and below the descriptor limit)", 0},
    {"handshake-timeout", "MATURITYD_HANDSHAKE_TIMEOUT", K_INT, OFF(handshake_timeout_s), 1, 3600,
     "10", "seconds a client may take over its part of the TLS handshake", 0},
    {"metrics-listen", "MATURITYD_METRICS_LISTEN", K_STR, OFF(metrics_listen), 0, 0, NULL,
     "address for Prometheus /metrics over HTTP (off by default)", F_ADDR},
    {"health-listen", "MATURITYD_HEALTH_LISTEN", K_STR, OFF(health_listen), 0, 0, NULL,
     "address for grpc.health.v1 only, plaintext (off by default)", F_ADDR},
    {"db-wait", "MATURITYD_DB_WAIT", K_INT, OFF(db_wait_s), 0, 3600, "30",
     "seconds start-up waits for the database", 0},
    {"workers", "MATURITYD_WORKERS", K_INT, OFF(workers), 1, 256, NULL,
     "handler threads for writes and watches (default 2 x cores)", 0},
    {"db-pool", "MATURITYD_DB_POOL", K_INT, OFF(db_pool), 1, 1024, NULL,
     "database connections for writes (default = workers)", 0},
    {"shutdown-grace", "MATURITYD_SHUTDOWN_GRACE", K_INT, OFF(shutdown_grace_s), 0, 3600, "10",
     "seconds in-flight calls get to finish on SIGTERM", 0},
    {"event-retention", "MATURITYD_EVENT_RETENTION", K_INT, OFF(event_retention_days), 1, 36500,
     "30", "days events are kept (older are deleted; older cursors are OUT_OF_RANGE)", 0},
    {"log-format", "MATURITYD_LOG_FORMAT", K_LOGFMT, OFF(log_format), 0, 0, "json", "json or text",
     0},
    {"no-migrate", "MATURITYD_NO_MIGRATE", K_BOOL_TRUE, OFF(migrate_at_start), 0, 0, NULL,
     "do not apply migrations at start", 0},
    {"max-recv-bytes", "MATURITYD_MAX_RECV_BYTES", K_INT, OFF(max_recv_bytes), 1024,
     64 * 1024 * 1024, "4194304", "largest request message accepted", 0},
    {"max-streams", "MATURITYD_MAX_STREAMS", K_INT, OFF(max_streams), 1, 1000000, "10000",
     "server-streaming calls in progress at once on this replica (beyond: RESOURCE_EXHAUSTED)", 0},
    {"max-concurrent-streams", "MATURITYD_MAX_CONCURRENT_STREAMS", K_INT,
     OFF(max_concurrent_streams), 1, 65536, "256", "concurrent calls per connection", 0},
    {"max-metadata-bytes", "MATURITYD_MAX_METADATA_BYTES", K_INT, OFF(max_metadata_bytes), 1024,
     1024 * 1024, "16384", "largest request metadata (headers) accepted", 0},
    {"keepalive-min-ping-ms", "MATURITYD_KEEPALIVE_MIN_PING_MS", K_INT, OFF(keepalive_min_ping_ms),
     1000, 3600000, "10000", "pings closer together than this are abuse (GOAWAY)", 0},
    {"max-connection-idle-ms", "MATURITYD_MAX_CONNECTION_IDLE_MS", K_INT,
     OFF(max_connection_idle_ms), 1000, INT_MAX, "600000", "idle connections are closed after", 0},
    {"max-connection-age-ms", "MATURITYD_MAX_CONNECTION_AGE_MS", K_INT, OFF(max_connection_age_ms),
     1000, INT_MAX, "3600000",
     "connections are asked to reconnect after (spreads load over replicas)", 0},
    {"attestation-key", "MATURITYD_ATTESTATION_KEY", K_STR, OFF(attestation_key), 0, 0, NULL,
     "PEM private key (Ed25519 or ECDSA P-256) gate decisions are signed with (off by default)",
     F_FILE},
    {"attestation-verify-keys", "MATURITYD_ATTESTATION_VERIFY_KEYS", K_STR,
     OFF(attestation_verify_keys), 0, 0, NULL,
     "PEM public keys still listed for verification after a rotation", F_FILE},
    {"attestation-issuer", "MATURITYD_ATTESTATION_ISSUER", K_STR, OFF(attestation_issuer), 0, 0,
     NULL, "the issuer written into signed gate decisions (default: the host name)", 0},
};
#define N_FLAGS (sizeof(flags) / sizeof(flags[0]))

static bool addr_valid(const char *a)
{
	const char *colon;
	char *end;
	long port;

	if (strncmp(a, "unix:", 5) == 0)
		return a[5] != '\0';
	colon = strrchr(a, ':');
	if (colon == NULL || colon == a)
		return false;
	if (a[0] == '[' && colon[-1] != ']')
		return false;
	errno = 0;
	port = strtol(colon + 1, &end, 10);
	if (errno != 0 || *end != '\0' || end == colon + 1 || port < 0 || port > 65535)
		return false;
	for (const char *p = a; p < colon; p++)
		if (isspace((unsigned char)*p))
			return false;
	return true;
}

/* A K_LIST flag's array in cfg, its count and capacity. */
struct list_ref {
	char **v;
	size_t *n;
	size_t cap;
	const char *what; /* for messages */
};

static struct list_ref list_of(struct svc_config *cfg, const struct flag *f)
{
	if (f->off == OFF(delegators))
		return (struct list_ref){cfg->delegators, &cfg->n_delegators, SVC_MAX_DELEGATORS,
		                         "delegators"};
	if (f->off == OFF(trusted_proxies))
		return (struct list_ref){cfg->trusted_proxies, &cfg->n_trusted_proxies,
		                         SVC_MAX_TRUSTED_PROXIES, "trusted proxies"};
	assert(f->off == OFF(admins));
	return (struct list_ref){cfg->admins, &cfg->n_admins, SVC_MAX_ADMINS, "admin principals"};
}

static int set_value(struct svc_config *cfg, const struct flag *f, const char *v, bool from_env,
                     FILE *errout)
{
	char *base = (char *)cfg;
	const char *src = from_env ? f->env : f->name;
	const char *pre = from_env ? "" : "--";

	switch (f->kind) {
	case K_STR: {
		char **slot = (char **)(base + f->off);
		free(*slot);
		*slot = strdup(v);
		return 0;
	}
	case K_INT: {
		char *end;
		long n;
		errno = 0;
		n = strtol(v, &end, 10);
		if (errno != 0 || *v == '\0' || *end != '\0' || n < f->min || n > f->max) {
			fprintf(errout,
			        "maturityd: %s%s: \"%s\" is not a whole number from %ld to %ld\n",
			        pre, src, v, f->min, f->max);
			return 2;
		}
		*(int *)(base + f->off) = (int)n;
		return 0;
	}
	case K_BOOL_TRUE:
		/* --no-migrate / MATURITYD_NO_MIGRATE=1 */
		if (from_env && strcmp(v, "1") != 0 && strcmp(v, "true") != 0 &&
		    strcmp(v, "0") != 0 && strcmp(v, "false") != 0 && v[0] != '\0') {
			fprintf(errout, "maturityd: %s: \"%s\" is not 1, 0, true or false\n", src,
			        v);
			return 2;
		}
		cfg->migrate_at_start =
		    from_env ? !(strcmp(v, "1") == 0 || strcmp(v, "true") == 0) : false;
		return 0;
	case K_LOGFMT:
		if (strcmp(v, "json") == 0)
			cfg->log_format = SVC_LOG_JSON;
		else if (strcmp(v, "text") == 0)
			cfg->log_format = SVC_LOG_TEXT;
		else {
			fprintf(errout, "maturityd: %s%s: \"%s\" is not json or text\n", pre, src,
			        v);
			return 2;
		}
		return 0;
	case K_LIST: {
		/* The environment gives a comma-separated list; each flag adds one. Flags override
		 * the environment, so the first flag drops what the environment gave. */
		const char *p = v;
		do {
			const char *comma = from_env ? strchr(p, ',') : NULL;
			size_t len = comma ? (size_t)(comma - p) : strlen(p);
			while (len > 0 && isspace((unsigned char)*p)) {
				p++;
				len--;
			}
			while (len > 0 && isspace((unsigned char)p[len - 1]))
				len--;
			if (len > 0) {
				struct list_ref l = list_of(cfg, f);
				if (*l.n >= l.cap) {
					fprintf(errout, "maturityd: %s%s: more than %zu %s\n", pre,
					        src, l.cap, l.what);
					return 2;
				}
				l.v[(*l.n)++] = strndup(p, len);
			}
			p = comma ? comma + 1 : NULL;
		} while (p != NULL);
		return 0;
	}
	}
	return 0;
}

static const struct flag *find_flag(const char *name, size_t len)
{
	for (size_t i = 0; i < N_FLAGS; i++)
		if (strlen(flags[i].name) == len && strncmp(flags[i].name, name, len) == 0)
			return &flags[i];
	return NULL;
}

/* True when argv sets f ("--name", "--name=value"; the value of another flag is not a flag). */
static bool flag_given(const struct flag *f, int argc, char **argv)
{
	for (int i = 1; i < argc; i++) {
		const char *a = argv[i];
		const struct flag *g;
		const char *eq;

		if (strncmp(a, "--", 2) != 0)
			continue;
		eq = strchr(a + 2, '=');
		g = find_flag(a + 2, eq ? (size_t)(eq - a - 2) : strlen(a + 2));
		if (g == f)
			return true;
		if (g != NULL && g->kind != K_BOOL_TRUE && eq == NULL)
			i++; /* its value */
	}
	return false;
}

void svc_config_usage(FILE *out)
{
	fprintf(out,
	        "usage: maturityd [serve|migrate] [flags]\n"
	        "       maturityd health [--health-addr ADDR]\n"
	        "       maturityd --help | --version\n\n"
	        "  serve     run the server (default)\n"
	        "  migrate   apply database migrations and exit\n"
	        "  health    ask the plaintext health port (ADDR, default "
	        "$MATURITYD_HEALTH_LISTEN) for\n"
	        "            grpc.health.v1 Check: exit 0 when SERVING, 1 otherwise\n\nflags:\n");
	for (size_t i = 0; i < N_FLAGS; i++) {
		const struct flag *f = &flags[i];
		char left[64];
		snprintf(left, sizeof(left), "--%s%s", f->name, f->kind == K_BOOL_TRUE ? "" : " V");
		fprintf(out, "  %-30s %s [env %s%s%s%s]\n", left, f->help, f->env,
		        f->def ? ", default " : "", f->def ? f->def : "",
		        (f->flags & (F_REQUIRED | F_TLS)) ? ", required" : "");
	}
}

int svc_config_parse(struct svc_config *cfg, int argc, char **argv, FILE *errout)
{
	bool list_from_flag[N_FLAGS] = {false};
	long cores;
	int rc;

	memset(cfg, 0, sizeof(*cfg));
	cfg->migrate_at_start = true;
	for (size_t i = 0; i < N_FLAGS; i++) {
		if (flags[i].def != NULL) {
			rc = set_value(cfg, &flags[i], flags[i].def, false, errout);
			if (rc != 0)
				return rc;
		}
	}
	for (size_t i = 0; i < N_FLAGS; i++) {
		const char *v = getenv(flags[i].env);
		if (v == NULL || (v[0] == '\0' && flags[i].kind != K_STR))
			continue;
		/* Flags override the environment: a bad value the flag replaces is not an error. */
		if (flag_given(&flags[i], argc, argv))
			continue;
		if (v[0] == '\0')
			continue;
		rc = set_value(cfg, &flags[i], v, true, errout);
		if (rc != 0)
			return rc;
	}

	for (int i = 1; i < argc; i++) {
		const char *a = argv[i];
		const char *eq, *name, *val;
		const struct flag *f;
		size_t len;

		if (strcmp(a, "--help") == 0 || strcmp(a, "-h") == 0) {
			cfg->command = SVC_CMD_HELP;
			return 0;
		}
		if (strcmp(a, "--version") == 0) {
			cfg->command = SVC_CMD_VERSION;
			return 0;
		}
		if (strncmp(a, "--", 2) != 0) {
			if (i == 1 && strcmp(a, "serve") == 0)
				cfg->command = SVC_CMD_SERVE;
			else if (i == 1 && strcmp(a, "migrate") == 0)
				cfg->command = SVC_CMD_MIGRATE;
			else {
				fprintf(errout,
				        "maturityd: unknown command \"%s\" (serve, migrate or "
				        "health)\n",
				        a);
				return 2;
			}
			continue;
		}
		name = a + 2;
		eq = strchr(name, '=');
		len = eq ? (size_t)(eq - name) : strlen(name);
		f = find_flag(name, len);
		if (f == NULL) {
			fprintf(errout, "maturityd: unknown flag --%.*s (see --help)\n", (int)len,
			        name);
			return 2;
		}
		if (f->kind == K_BOOL_TRUE) {
			if (eq != NULL) {
				fprintf(errout, "maturityd: --%s takes no value\n", f->name);
				return 2;
			}
			cfg->migrate_at_start = false;
			continue;
		}
		if (eq != NULL)
			val = eq + 1;
		else if (i + 1 < argc)
			val = argv[++i];
		else {
			fprintf(errout, "maturityd: --%s needs a value\n", f->name);
			return 2;
		}
		if (f->kind == K_LIST && !list_from_flag[f - flags]) {
			struct list_ref l = list_of(cfg, f);
			for (size_t k = 0; k < *l.n; k++)
				free(l.v[k]);
			*l.n = 0;
			list_from_flag[f - flags] = true;
		}
		rc = set_value(cfg, f, val, false, errout);
		if (rc != 0)
			return rc;
	}

	if (cfg->workers == 0) {
		cores = sysconf(_SC_NPROCESSORS_ONLN);
		cfg->workers = (int)(cores > 0 ? 2 * cores : 4);
	}
	if (cfg->db_pool == 0)
		cfg->db_pool = cfg->workers;
	if (cfg->attestation_issuer == NULL || cfg->attestation_issuer[0] == '\0') {
		char host[256] = "";
		/* Who made a decision is part of it: without a configured name, this machine's. */
		if (gethostname(host, sizeof(host) - 1) != 0 || host[0] == '\0')
			snprintf(host, sizeof(host), "maturityd");
		free(cfg->attestation_issuer);
		cfg->attestation_issuer = strdup(host);
	}
	cfg->event_heartbeat_ms = 15000;
	{
		/* A test knob, not a flag (see svc_config.h). */
		const char *hb = getenv("MATURITYD_EVENT_HEARTBEAT_MS");
		long v = hb != NULL ? strtol(hb, NULL, 10) : 0;
		if (v >= 50 && v <= 15000)
			cfg->event_heartbeat_ms = (int)v;
	}

	for (size_t i = 0; i < N_FLAGS; i++) {
		const struct flag *f = &flags[i];
		char *v;
		if (f->kind != K_STR)
			continue;
		v = *(char **)((char *)cfg + f->off);
		if (v == NULL || v[0] == '\0') {
			if ((f->flags & F_REQUIRED) ||
			    ((f->flags & F_TLS) && cfg->command == SVC_CMD_SERVE)) {
				fprintf(errout, "maturityd: --%s (or %s) is required\n", f->name,
				        f->env);
				return 2;
			}
			continue;
		}
		if ((f->flags & F_FILE) && cfg->command == SVC_CMD_SERVE && access(v, R_OK) != 0) {
			fprintf(errout, "maturityd: --%s: cannot read \"%s\": %s\n", f->name, v,
			        strerror(errno));
			return 2;
		}
		if ((f->flags & F_ADDR) && !addr_valid(v)) {
			fprintf(errout,
			        "maturityd: --%s: \"%s\" is not an address (host:port, [v6]:port "
			        "or unix:path)\n",
			        f->name, v);
			return 2;
		}
	}
	for (size_t k = 0; k < cfg->n_admins; k++) {
		if (strlen(cfg->admins[k]) > 512) {
			fprintf(errout, "maturityd: --admin-principal: longer than 512 bytes\n");
			return 2;
		}
	}
	for (size_t k = 0; k < cfg->n_delegators; k++) {
		struct mat_error err;
		mat_error_clear(&err);
		/* The certificate principal of a portal: a value without a scheme could never
		 * match one, so it is a typo worth stopping for. */
		if (auth_principal_check(cfg->delegators[k], strlen(cfg->delegators[k]),
		                         "--delegator", &err) != MAT_OK) {
			fprintf(errout, "maturityd: %s\n", err.message);
			return 2;
		}
	}
	for (size_t k = 0; k < cfg->n_trusted_proxies; k++) {
		struct mat_error err;
		mat_error_clear(&err);
		if (auth_principal_check(cfg->trusted_proxies[k], strlen(cfg->trusted_proxies[k]),
		                         "--trusted-proxy", &err) != MAT_OK) {
			fprintf(errout, "maturityd: %s\n", err.message);
			return 2;
		}
	}
	return 0;
}

void svc_config_cleanup(struct svc_config *cfg)
{
	if (cfg == NULL)
		return;
	free(cfg->listen);
	free(cfg->database_url);
	free(cfg->tls_cert);
	free(cfg->tls_key);
	free(cfg->tls_client_ca);
	free(cfg->metrics_listen);
	free(cfg->health_listen);
	free(cfg->attestation_key);
	free(cfg->attestation_verify_keys);
	free(cfg->attestation_issuer);
	for (size_t k = 0; k < cfg->n_admins; k++)
		free(cfg->admins[k]);
	for (size_t k = 0; k < cfg->n_delegators; k++)
		free(cfg->delegators[k]);
	for (size_t k = 0; k < cfg->n_trusted_proxies; k++)
		free(cfg->trusted_proxies[k]);
	free(cfg->tls_crl);
	memset(cfg, 0, sizeof(*cfg));
}

bool svc_config_is_admin(const struct svc_config *cfg, const char *principal)
{
	for (size_t k = 0; k < cfg->n_admins; k++)
		if (strcmp(cfg->admins[k], principal) == 0)
			return true;
	return false;
}

bool svc_config_is_delegator(const struct svc_config *cfg, const char *principal)
{
	for (size_t k = 0; k < cfg->n_delegators; k++)
		if (strcmp(cfg->delegators[k], principal) == 0)
			return true;
	return false;
}

bool svc_config_is_trusted_proxy(const struct svc_config *cfg, const char *principal)
{
	for (size_t k = 0; k < cfg->n_trusted_proxies; k++)
		if (strcmp(cfg->trusted_proxies[k], principal) == 0)
			return true;
	return false;
}
