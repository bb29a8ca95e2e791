/* Configuration of maturityd: the command line and environment (maturityd --help), with
 * every default and limit in one table (svc_config.c). Parsed once at start; read-only after. */
#ifndef SVC_CONFIG_H
#define SVC_CONFIG_H

#include <stdbool.h>
#include <stddef.h>
#include <stdio.h>

enum svc_command { SVC_CMD_SERVE = 0, SVC_CMD_MIGRATE, SVC_CMD_HELP, SVC_CMD_VERSION };
enum svc_log_format { SVC_LOG_JSON = 0, SVC_LOG_TEXT };

#define SVC_MAX_ADMINS 64
#define SVC_MAX_DELEGATORS 64
#define SVC_MAX_TRUSTED_PROXIES 64

struct svc_config {
	enum svc_command command;
	char *listen;
	char *database_url;
	char *tls_cert, *tls_key, *tls_client_ca;
	char *admins[SVC_MAX_ADMINS];
	size_t n_admins;
	/* Principals trusted to act for others with x-on-behalf-of (portals); fixed at start. */
	char *delegators[SVC_MAX_DELEGATORS];
	size_t n_delegators;
	/* Principals (proxies, mesh sidecars) whose x-forwarded-client-cert names the caller. */
	char *trusted_proxies[SVC_MAX_TRUSTED_PROXIES];
	size_t n_trusted_proxies;
	/* Transport defence (the front door, docs/security.md). */
	char *tls_crl;           /* PEM CRLs, re-read on SIGHUP; NULL = none */
	int max_connections;     /* open connections, all listeners (and below the fd limit) */
	int handshake_timeout_s; /* a connection without a finished TLS handshake is closed */
	char *metrics_listen;    /* NULL = off */
	char *health_listen;     /* NULL = off */
	int db_wait_s;
	int workers;
	int db_pool;
	int shutdown_grace_s;
	int event_retention_days; /* events older are deleted; older cursors are OUT_OF_RANGE */
	/* A watch's heartbeat after this much silence. Not a flag: 15 s is the contract; the
	 * environment variable MATURITYD_EVENT_HEARTBEAT_MS shortens it for tests only. */
	int event_heartbeat_ms;
	enum svc_log_format log_format;
	bool migrate_at_start;
	/* Transport limits (one table, svc_config.c); flags change them. */
	int max_recv_bytes;
	int max_concurrent_streams;
	int max_streams; /* server streams in progress on this replica; each holds no thread */
	int max_metadata_bytes;
	int keepalive_min_ping_ms;
	int max_connection_idle_ms;
	int max_connection_age_ms;
	/* Signed gate decisions: files read (and re-read on SIGHUP) by svc_attest.c. */
	char *attestation_key;         /* NULL = attestations off */
	char *attestation_verify_keys; /* NULL = none */
	char *attestation_issuer;      /* never NULL after parsing: the host name by default */
};

/* Parses argv and the environment (flags override the environment). On a configuration error
 * writes one line naming the flag to `errout` and returns 2; 0 on success. Files named by the
 * TLS flags are checked for readability here; their contents are checked by auth/. */
int svc_config_parse(struct svc_config *cfg, int argc, char **argv, FILE *errout);
void svc_config_cleanup(struct svc_config *cfg);
void svc_config_usage(FILE *out);
bool svc_config_is_admin(const struct svc_config *cfg, const char *principal);
/* Whether `principal` was named by --delegator. */
bool svc_config_is_delegator(const struct svc_config *cfg, const char *principal);
/* Whether `principal` was named by --trusted-proxy. */
bool svc_config_is_trusted_proxy(const struct svc_config *cfg, const char *principal);

#endif
