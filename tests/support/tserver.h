/* Integration-test harness: a fresh database per test program on the throwaway PostgreSQL named
 * by MATURITY_TEST_DATABASE_URL, the real maturityd started as a child process over mutual TLS
 * with the dev PKI in MATURITY_TEST_PKI, and clients holding any of its certificates. */
#ifndef TSERVER_H
#define TSERVER_H

#include "tclient.h"

#include <stdbool.h>
#include <sys/types.h>

struct tserver {
	pid_t pid;
	int port;
	char target[64];
	char dburl[1024];
	char pki[512];
	char log_path[256];
	/* Extra environment for maturityd ("NAME=value", NULL-terminated), or NULL; borrowed: it
	 * must outlive the server, restarts included. Set by tserver_start_env. */
	const char *const *env;
};

/* True when MATURITY_TEST_DATABASE_URL and MATURITY_TEST_PKI are set (else tests skip). */
bool tenv_available(void);

/* A psql session kept open (tenv_psql forks one psql per statement, ~30 ms each): for tests that
 * check the database after every one of hundreds of calls. One statement per query; its output
 * (tuples only, unaligned, rows joined by newlines) goes to out. Returns 0, or -1 when psql
 * reported an error (its message is then in out). Not thread-safe: one session per thread. */
struct tpsql;
struct tpsql *tpsql_open(const char *url);
int tpsql_query(struct tpsql *p, const char *sql, char *out, size_t n);
void tpsql_close(struct tpsql *p);

/* Creates an empty database with a random name; its conninfo goes to url (size n). */
int tenv_db_create(char *url, size_t n);
/* Runs one SQL statement with psql against url; returns psql's exit status. Output (tuples
 * only, unaligned) goes to out when out is not NULL. */
int tenv_psql(const char *url, const char *sql, char *out, size_t n);

/* Starts maturityd on a free port against dburl with the bootstrap admin
 * spiffe://maturityd.dev/admin; extra_args NULL-terminated (may be NULL). Waits until it
 * answers health checks. Returns 0 or -1. */
int tserver_start(struct tserver *s, const char *dburl, const char *const *extra_args);
/* tserver_start with extra environment variables for maturityd, e.g.
 * "MATURITY_STORE_FAULT_FILE=/tmp/x" (NULL-terminated, may be NULL; borrowed, see struct
 * tserver.env). Restarts keep them. */
int tserver_start_env(struct tserver *s, const char *dburl, const char *const *extra_args,
                      const char *const *env);
/* Starts again on the same port and database (after tserver_stop, or stops it first). */
int tserver_restart(struct tserver *s, const char *const *extra_args);
/* SIGTERM and wait; returns the exit status (or -1). */
int tserver_stop(struct tserver *s);
void tserver_kill(struct tserver *s);

/* A client with the PKI's certificate `who` ("admin", "portal", "reporter", "dnsclient",
 * "cnclient", "expired", "rogue"), NULL for no client certificate. */
struct tclient *tserver_client(const struct tserver *s, const char *who);

/* Path of a PKI file, e.g. tpki_path(s, "ca.pem"). Static buffer per call site is not needed:
 * writes into buf. */
const char *tpki_path(const struct tserver *s, const char *file, char *buf, size_t n);

#endif
