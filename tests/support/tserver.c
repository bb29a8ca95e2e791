/* The harness behind every integration test. */
#include "tserver.h"

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "grpc/health/v1/health.pb-c.h"

bool tenv_available(void)
{
	const char *db = getenv("MATURITY_TEST_DATABASE_URL");
	const char *pki = getenv("MATURITY_TEST_PKI");
	return db && *db && pki && *pki;
}

int tenv_psql(const char *url, const char *sql, char *out, size_t n)
{
	int pipefd[2];
	pid_t pid;
	int status;
	size_t got = 0;

	if (pipe(pipefd) != 0)
		return -1;
	pid = fork();
	if (pid == 0) {
		int devnull = open("/dev/null", O_WRONLY);
		dup2(pipefd[1], 1);
		if (devnull >= 0)
			dup2(devnull, 2);
		close(pipefd[0]);
		execlp("psql", "psql", "-X", "-q", "-t", "-A", "-v", "ON_ERROR_STOP=1", "-d", url,
		       "-c", sql, (char *)NULL);
		_exit(127);
	}
	close(pipefd[1]);
	for (;;) {
		char tmp[4096];
		ssize_t r = read(pipefd[0], tmp, sizeof(tmp));
		if (r <= 0)
			break;
		if (out != NULL && got + 1 < n) {
			size_t take = (size_t)r < n - 1 - got ? (size_t)r : n - 1 - got;
			memcpy(out + got, tmp, take);
			got += take;
		}
	}
	close(pipefd[0]);
	if (out != NULL) {
		out[got] = '\0';
		while (got > 0 && (out[got - 1] == '\n' || out[got - 1] == '\r'))
			out[--got] = '\0';
	}
	if (waitpid(pid, &status, 0) < 0)
		return -1;
	return WIFEXITED(status) ? WEXITSTATUS(status) : -1;
}

struct tpsql {
	pid_t pid;
	FILE *in;  /* to psql */
	FILE *out; /* from psql: its stdout and stderr */
};

struct tpsql *tpsql_open(const char *url)
{
	int to[2], from[2];
	struct tpsql *p = calloc(1, sizeof(*p));

	if (p == NULL || pipe(to) != 0 || pipe(from) != 0) {
		free(p);
		return NULL;
	}
	p->pid = fork();
	if (p->pid == 0) {
		dup2(to[0], 0);
		dup2(from[1], 1);
		dup2(from[1], 2);
		close(to[1]);
		close(from[0]);
		execlp("psql", "psql", "-X", "-q", "-t", "-A", "-v", "ON_ERROR_STOP=0", "-d", url,
		       (char *)NULL);
		_exit(127);
	}
	close(to[0]);
	close(from[1]);
	p->in = fdopen(to[1], "w");
	p->out = fdopen(from[0], "r");
	return p;
}

int tpsql_query(struct tpsql *p, const char *sql, char *out, size_t n)
{
	static const char marker[] = "--tpsql-end--";
	char line[4096];
	size_t got = 0;
	int rc = 0;

	if (out != NULL && n > 0)
		out[0] = '\0';
	fprintf(p->in, "%s;\n\\echo %s\n", sql, marker);
	fflush(p->in);
	while (fgets(line, sizeof(line), p->out) != NULL) {
		size_t len = strcspn(line, "\n");
		line[len] = '\0';
		if (strcmp(line, marker) == 0)
			return rc;
		if (strncmp(line, "ERROR:", 6) == 0 || strncmp(line, "psql:", 5) == 0)
			rc = -1;
		if (out != NULL && got + 1 < n) {
			int w = snprintf(out + got, n - got, "%s%s", got > 0 ? "\n" : "", line);
			got = w < 0 ? got : (got + (size_t)w < n ? got + (size_t)w : n - 1);
		}
	}
	return -1; /* psql went away */
}

void tpsql_close(struct tpsql *p)
{
	if (p == NULL)
		return;
	fclose(p->in);
	fclose(p->out);
	waitpid(p->pid, NULL, 0);
	free(p);
}

int tenv_db_create(char *url, size_t n)
{
	const char *base = getenv("MATURITY_TEST_DATABASE_URL");
	unsigned char r[6];
	char name[64], sql[128];

	if (base == NULL)
		return -1;
	if (getrandom(r, sizeof(r), 0) != (ssize_t)sizeof(r))
		return -1;
	snprintf(name, sizeof(name), "t_%02x%02x%02x%02x%02x%02x", r[0], r[1], r[2], r[3], r[4],
	         r[5]);
	snprintf(sql, sizeof(sql), "CREATE DATABASE %s", name);
	if (tenv_psql(base, sql, NULL, 0) != 0)
		return -1;
	/* In a keyword conninfo a later keyword wins, so appending dbname picks the new one. */
	snprintf(url, n, "%s dbname=%s", base, name);
	return 0;
}

static int free_port(void)
{
	struct sockaddr_in a = {0};
	socklen_t len = sizeof(a);
	int fd = socket(AF_INET, SOCK_STREAM, 0), port = -1;

	a.sin_family = AF_INET;
	a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	if (fd >= 0 && bind(fd, (struct sockaddr *)&a, sizeof(a)) == 0 &&
	    getsockname(fd, (struct sockaddr *)&a, &len) == 0)
		port = ntohs(a.sin_port);
	if (fd >= 0)
		close(fd);
	return port;
}

const char *tpki_path(const struct tserver *s, const char *file, char *buf, size_t n)
{
	snprintf(buf, n, "%s/%s", s->pki, file);
	return buf;
}

struct tclient *tserver_client(const struct tserver *s, const char *who)
{
	char ca[600], cert[600], key[600], f[64];

	tpki_path(s, "ca.pem", ca, sizeof(ca));
	if (who == NULL)
		return tclient_new(s->target, ca, NULL, NULL, false);
	snprintf(f, sizeof(f), "%s.pem", who);
	tpki_path(s, f, cert, sizeof(cert));
	snprintf(f, sizeof(f), "%s.key", who);
	tpki_path(s, f, key, sizeof(key));
	return tclient_new(s->target, ca, cert, key, false);
}

static bool serving(const struct tserver *s)
{
	struct tclient *c = tserver_client(s, "admin");
	Grpc__Health__V1__HealthCheckRequest req = GRPC__HEALTH__V1__HEALTH_CHECK_REQUEST__INIT;
	Grpc__Health__V1__HealthCheckResponse *resp = NULL;
	struct tresult r;
	bool ok;

	if (c == NULL)
		return false;
	ok = tclient_call(c, "/grpc.health.v1.Health/Check", &req.base,
	                  &grpc__health__v1__health_check_response__descriptor,
	                  (ProtobufCMessage **)&resp, 1000, &r) == GRPC_STATUS_OK &&
	     resp != NULL &&
	     resp->status == GRPC__HEALTH__V1__HEALTH_CHECK_RESPONSE__SERVING_STATUS__SERVING;
	if (resp)
		protobuf_c_message_free_unpacked(&resp->base, NULL);
	tresult_cleanup(&r);
	tclient_free(c);
	return ok;
}

static int start_on(struct tserver *s, const char *const *extra_args);

int tserver_start(struct tserver *s, const char *dburl, const char *const *extra_args)
{
	return tserver_start_env(s, dburl, extra_args, NULL);
}

int tserver_start_env(struct tserver *s, const char *dburl, const char *const *extra_args,
                      const char *const *env)
{
	const char *pki = getenv("MATURITY_TEST_PKI");

	memset(s, 0, sizeof(*s));
	s->env = env;
	snprintf(s->pki, sizeof(s->pki), "%s", pki ? pki : "");
	snprintf(s->dburl, sizeof(s->dburl), "%s", dburl);
	s->port = free_port();
	/* A new server starts a new log: the kernel hands out the same port again within one run
	 * now and then, and an earlier program's log (text lines from a server that refused its
	 * flags, say) must not be read as this one's. A restart keeps appending. */
	snprintf(s->log_path, sizeof(s->log_path), "/tmp/maturityd-test-%d.log", s->port);
	unlink(s->log_path);
	return start_on(s, extra_args);
}

int tserver_restart(struct tserver *s, const char *const *extra_args)
{
	if (s->pid > 0)
		tserver_stop(s);
	return start_on(s, extra_args);
}

static int start_on(struct tserver *s, const char *const *extra_args)
{
	const char *argv[64];
	char listen[64], cert[600], key[600], ca[600];
	size_t n = 0;

	snprintf(s->target, sizeof(s->target), "127.0.0.1:%d", s->port);
	snprintf(listen, sizeof(listen), "--listen=127.0.0.1:%d", s->port);
	snprintf(cert, sizeof(cert), "--tls-cert=%s/server.pem", s->pki);
	snprintf(key, sizeof(key), "--tls-key=%s/server.key", s->pki);
	snprintf(ca, sizeof(ca), "--tls-client-ca=%s/ca.pem", s->pki);
	argv[n++] = MATURITYD_BIN;
	argv[n++] = listen;
	argv[n++] = "--database-url";
	argv[n++] = s->dburl;
	argv[n++] = cert;
	argv[n++] = key;
	argv[n++] = ca;
	argv[n++] = "--admin-principal=spiffe://maturityd.dev/admin";
	argv[n++] = "--workers=4";
	argv[n++] = "--shutdown-grace=5";
	argv[n++] = "--db-wait=10";
	for (size_t i = 0; extra_args != NULL && extra_args[i] != NULL && n < 62; i++)
		argv[n++] = extra_args[i];
	argv[n] = NULL;

	s->pid = fork();
	if (s->pid == 0) {
		int fd = open(s->log_path, O_WRONLY | O_CREAT | O_APPEND, 0644);
		if (fd >= 0) {
			dup2(fd, 2);
			dup2(fd, 1);
		}
		for (size_t i = 0; s->env != NULL && s->env[i] != NULL; i++)
			putenv((char *)s->env[i]);
		execv(argv[0], (char *const *)argv);
		_exit(127);
	}
	if (s->pid < 0)
		return -1;
	for (int i = 0; i < 300; i++) {
		int status;
		if (waitpid(s->pid, &status, WNOHANG) == s->pid) {
			fprintf(stderr, "maturityd exited early (status %d); log: %s\n", status,
			        s->log_path);
			s->pid = 0;
			return -1;
		}
		if (serving(s))
			return 0;
		usleep(50000);
	}
	fprintf(stderr, "maturityd did not become SERVING; log: %s\n", s->log_path);
	tserver_kill(s);
	return -1;
}

int tserver_stop(struct tserver *s)
{
	int status;

	if (s->pid <= 0)
		return -1;
	kill(s->pid, SIGTERM);
	if (waitpid(s->pid, &status, 0) != s->pid)
		return -1;
	s->pid = 0;
	return WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
}

void tserver_kill(struct tserver *s)
{
	if (s->pid > 0) {
		kill(s->pid, SIGKILL);
		waitpid(s->pid, NULL, 0);
		s->pid = 0;
	}
}
