/* Integration test scaffolding. */
#include "itest.h"

// clang-format off
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <cmocka.h>
// clang-format on
#include <arpa/inet.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "google/rpc/error_details.pb-c.h"
#include "google/rpc/status.pb-c.h"

struct tserver g_srv;
char g_dburl[1024];
const char *const *itest_server_args;

#define N_WHO 32
static struct {
	char who[640]; /* "gateway>" + a principal of up to 512 bytes */
	struct tclient *c;
} clients[N_WHO];

int itest_setup(void **state)
{
	(void)state;
	if (!tenv_available())
		return 0;
	grpc_init();
	if (tenv_db_create(g_dburl, sizeof(g_dburl)) != 0)
		return -1;
	return tserver_start(&g_srv, g_dburl, itest_server_args);
}

int itest_teardown(void **state)
{
	(void)state;
	if (!tenv_available())
		return 0;
	for (int i = 0; i < N_WHO; i++) {
		if (clients[i].c != NULL) {
			tclient_free(clients[i].c);
			clients[i].c = NULL;
			clients[i].who[0] = '\0';
		}
	}
	int rc = g_srv.pid > 0 ? tserver_stop(&g_srv) : 0;
	grpc_shutdown_blocking();
	if (rc != 0)
		fprintf(stderr, "maturityd exited with %d (log %s)\n", rc, g_srv.log_path);
	return rc == 0 ? 0 : -1;
}

struct tclient *itest_client(const char *who)
{
	const char *key = who ? who : "(none)";
	for (int i = 0; i < N_WHO; i++)
		if (clients[i].c != NULL && strcmp(clients[i].who, key) == 0)
			return clients[i].c;
	for (int i = 0; i < N_WHO; i++) {
		if (clients[i].c == NULL) {
			const char *gt = who != NULL ? strchr(who, '>') : NULL;
			snprintf(clients[i].who, sizeof(clients[i].who), "%s", key);
			if (gt == NULL) {
				clients[i].c = tserver_client(&g_srv, who);
				return clients[i].c;
			}
			/* "gateway>user:alice": the certificate, then the principal it asserts. */
			char cert[32];
			snprintf(cert, sizeof(cert), "%.*s", (int)(gt - who), who);
			clients[i].c = tserver_client(&g_srv, cert);
			tclient_add_metadata(clients[i].c, "x-on-behalf-of", gt + 1,
			                     strlen(gt + 1));
			return clients[i].c;
		}
	}
	fail_msg("too many clients");
	return NULL;
}

const char *itest_code_name(grpc_status_code c)
{
	static const char *const n[] = {"OK",
	                                "CANCELLED",
	                                "UNKNOWN",
	                                "INVALID_ARGUMENT",
	                                "DEADLINE_EXCEEDED",
	                                "NOT_FOUND",
	                                "ALREADY_EXISTS",
	                                "PERMISSION_DENIED",
	                                "RESOURCE_EXHAUSTED",
	                                "FAILED_PRECONDITION",
	                                "ABORTED",
	                                "OUT_OF_RANGE",
	                                "UNIMPLEMENTED",
	                                "INTERNAL",
	                                "UNAVAILABLE",
	                                "DATA_LOSS",
	                                "UNAUTHENTICATED"};
	return (unsigned)c < 17 ? n[c] : "?";
}

static void *call_raw(const char *who, const char *method, const void *req,
                      const ProtobufCMessageDescriptor *resp_desc, grpc_status_code want,
                      struct tresult *r)
{
	ProtobufCMessage *resp = NULL;
	grpc_status_code st =
	    tclient_call(itest_client(who), method, req, resp_desc, &resp, 10000, r);
	if (st != want)
		fail_msg("%s as %s: want %s, got %s: %s", method, who ? who : "(none)",
		         itest_code_name(want), itest_code_name(st), r->message);
	if (st == GRPC_STATUS_OK && resp_desc != NULL && resp == NULL)
		fail_msg("%s: undecodable response", method);
	return resp;
}

void *itest_call(const char *who, const char *method, const void *req,
                 const ProtobufCMessageDescriptor *resp_desc, grpc_status_code want)
{
	struct tresult r;
	void *resp = call_raw(who, method, req, resp_desc, want, &r);
	tresult_cleanup(&r);
	return resp;
}

void itest_expect_violation(const char *who, const char *method, const void *req, const char *field)
{
	struct tresult r;

	call_raw(who, method, req, NULL, GRPC_STATUS_INVALID_ARGUMENT, &r);
	itest_check_violation(&r, method, field);
}

void itest_check_violation(struct tresult *r_, const char *method, const char *field)
{
	struct tresult r = *r_;
	Google__Rpc__Status *st;
	bool found = false;

	memset(r_, 0, sizeof(*r_));
	assert_int_equal(r.code, GRPC_STATUS_INVALID_ARGUMENT);
	assert_non_null(r.details);
	st = google__rpc__status__unpack(NULL, r.details_len, r.details);
	assert_non_null(st);
	assert_int_equal(st->code, GRPC_STATUS_INVALID_ARGUMENT);
	for (size_t i = 0; i < st->n_details; i++) {
		Google__Protobuf__Any *any = st->details[i];
		if (strcmp(any->type_url, "type.googleapis.com/google.rpc.BadRequest") != 0)
			continue;
		Google__Rpc__BadRequest *br =
		    google__rpc__bad_request__unpack(NULL, any->value.len, any->value.data);
		assert_non_null(br);
		for (size_t k = 0; k < br->n_field_violations; k++)
			if (strcmp(br->field_violations[k]->field, field) == 0)
				found = true;
		google__rpc__bad_request__free_unpacked(br, NULL);
	}
	google__rpc__status__free_unpacked(st, NULL);
	if (!found)
		fail_msg("%s: no field violation on %s (message: %s)", method, field, r.message);
	tresult_cleanup(&r);
}

int itest_free_port(void)
{
	struct sockaddr_in a = {0};
	socklen_t len = sizeof(a);
	int fd = socket(AF_INET, SOCK_STREAM, 0), port = -1;
	a.sin_family = AF_INET;
	a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	if (bind(fd, (struct sockaddr *)&a, sizeof(a)) == 0 &&
	    getsockname(fd, (struct sockaddr *)&a, &len) == 0)
		port = ntohs(a.sin_port);
	close(fd);
	return port;
}

char *itest_http_get(int port, const char *path)
{
	struct sockaddr_in a = {0};
	int fd = socket(AF_INET, SOCK_STREAM, 0);
	size_t cap = 1 << 20, n = 0;
	char *buf = malloc(cap);
	char req[256];

	a.sin_family = AF_INET;
	a.sin_port = htons((uint16_t)port);
	a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	if (buf == NULL || connect(fd, (struct sockaddr *)&a, sizeof(a)) != 0) {
		close(fd);
		free(buf);
		return NULL;
	}
	snprintf(req, sizeof(req), "GET %s HTTP/1.0\r\nHost: localhost\r\n\r\n", path);
	if (write(fd, req, strlen(req)) < 0) {
		close(fd);
		free(buf);
		return NULL;
	}
	for (;;) {
		ssize_t r = read(fd, buf + n, cap - 1 - n);
		if (r <= 0)
			break;
		n += (size_t)r;
	}
	buf[n] = '\0';
	close(fd);
	return buf;
}

void itest_dump_server_warnings(const char *log_path)
{
	FILE *f = fopen(log_path, "r");
	char line[2048];
	int shown = 0;

	if (f == NULL)
		return;
	fprintf(stderr, "server log %s, lines above info:\n", log_path);
	while (shown < 30 && fgets(line, sizeof(line), f) != NULL) {
		if (strstr(line, "\"level\":\"info\"") != NULL)
			continue;
		fputs(line, stderr);
		shown++;
	}
	fclose(f);
}

long long itest_metric(int mport, const char *name)
{
	char *text = itest_http_get(mport, "/metrics");
	char key[256];
	const char *p;
	long long v = -1;

	if (text == NULL)
		return -1;
	snprintf(key, sizeof(key), "\n%s ", name);
	p = strstr(text, key);
	if (p != NULL)
		v = strtoll(p + strlen(key), NULL, 10);
	free(text);
	return v;
}
