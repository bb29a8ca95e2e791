/* --health-listen: grpc.health.v1 only, in plaintext (Kubernetes' gRPC probe speaks no TLS), on
 * its own grpc_server with one completion queue and one thread. Check answers from the health
 * monitor's memory; Watch streams each change and ends at shutdown; every other path is
 * UNIMPLEMENTED, so this port serves nothing else. Event-driven: a Watch holds no thread. */
#include "svc_health_port.h"

#include "grpc/health/v1/health.pb-c.h"
#include "svc_door.h"
#include "svc_log.h"

#include <grpc/byte_buffer_reader.h>
#include <grpc/grpc.h>
#include <grpc/grpc_security.h>
#include <grpc/support/time.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>

enum kind { K_CHECK, K_WATCH, K_OTHER };

struct hcall;
/* Two tags per call: batches of the call, and its RECV_CLOSE_ON_SERVER. */
struct htag {
	bool is_close;
	struct hcall *c;
};

struct hcall {
	enum kind kind;
	bool requested;     /* the request completed: a live call */
	bool close_done;    /* RECV_CLOSE_ON_SERVER completed */
	bool send_pending;  /* a batch is in flight */
	bool final_started; /* the status was sent */
	grpc_call *call;
	gpr_timespec deadline;
	grpc_metadata_array md;
	grpc_byte_buffer *payload;
	grpc_call_details details;
	grpc_byte_buffer *out;
	int cancelled;
	int last_sent; /* Watch: status last sent, -1 none */
	char service[128];
	struct hcall *next; /* watchers list */
	struct htag t_main, t_close;
};

struct svc_health_port {
	grpc_server *server;
	grpc_completion_queue *cq;
	pthread_t thread;
	void *check_handle, *watch_handle;
	atomic_int stopping;
	bool (*serving)(void *);
	void *arg;
	struct hcall *watchers;
	int port;
	struct htag t_shutdown;
};

static bool known(const char *s)
{
	return s[0] == '\0' || strncmp(s, "mlops.maturity.v1.", 18) == 0 ||
	       strcmp(s, "grpc.health.v1.Health") == 0;
}

static void arm(struct svc_health_port *hp, enum kind k)
{
	struct hcall *c = calloc(1, sizeof(*c));
	if (c == NULL)
		return;
	c->kind = k;
	c->last_sent = -1;
	c->t_main = (struct htag){false, c};
	c->t_close = (struct htag){true, c};
	grpc_metadata_array_init(&c->md);
	if (k == K_OTHER) {
		grpc_call_details_init(&c->details);
		grpc_server_request_call(hp->server, &c->call, &c->details, &c->md, hp->cq, hp->cq,
		                         &c->t_main);
	} else {
		grpc_server_request_registered_call(
		    hp->server, k == K_CHECK ? hp->check_handle : hp->watch_handle, &c->call,
		    &c->deadline, &c->md, &c->payload, hp->cq, hp->cq, &c->t_main);
	}
}

static void free_call(struct hcall *c)
{
	if (c->call)
		grpc_call_unref(c->call);
	grpc_metadata_array_destroy(&c->md);
	if (c->kind == K_OTHER)
		grpc_call_details_destroy(&c->details);
	if (c->payload)
		grpc_byte_buffer_destroy(c->payload);
	if (c->out)
		grpc_byte_buffer_destroy(c->out);
	free(c);
}

static grpc_byte_buffer *status_msg(int serving)
{
	Grpc__Health__V1__HealthCheckResponse r = GRPC__HEALTH__V1__HEALTH_CHECK_RESPONSE__INIT;
	uint8_t buf[8];
	size_t n;
	grpc_slice s;
	grpc_byte_buffer *bb;

	r.status = serving ? GRPC__HEALTH__V1__HEALTH_CHECK_RESPONSE__SERVING_STATUS__SERVING
	                   : GRPC__HEALTH__V1__HEALTH_CHECK_RESPONSE__SERVING_STATUS__NOT_SERVING;
	n = grpc__health__v1__health_check_response__pack(&r, buf);
	s = grpc_slice_from_copied_buffer((const char *)buf, n);
	bb = grpc_raw_byte_buffer_create(&s, 1);
	grpc_slice_unref(s);
	return bb;
}

static bool decode_service(struct hcall *c)
{
	grpc_byte_buffer_reader r;
	grpc_slice s;
	Grpc__Health__V1__HealthCheckRequest *req;

	if (c->payload == NULL || !grpc_byte_buffer_reader_init(&r, c->payload))
		return false;
	s = grpc_byte_buffer_reader_readall(&r);
	grpc_byte_buffer_reader_destroy(&r);
	req = grpc__health__v1__health_check_request__unpack(NULL, GRPC_SLICE_LENGTH(s),
	                                                     GRPC_SLICE_START_PTR(s));
	grpc_slice_unref(s);
	if (req == NULL)
		return false;
	snprintf(c->service, sizeof(c->service), "%s", req->service);
	grpc__health__v1__health_check_request__free_unpacked(req, NULL);
	return true;
}

/* Final batch: status (and message for Check). The call is freed when it completes. */
static void finish(struct hcall *c, grpc_status_code code, const char *msg, bool with_initial)
{
	grpc_op ops[3];
	size_t n = 0;
	grpc_slice details = grpc_slice_from_copied_string(msg);

	memset(ops, 0, sizeof(ops));
	if (with_initial) {
		ops[n++].op = GRPC_OP_SEND_INITIAL_METADATA;
	}
	if (c->out != NULL && code == GRPC_STATUS_OK && c->kind == K_CHECK) {
		ops[n].op = GRPC_OP_SEND_MESSAGE;
		ops[n].data.send_message.send_message = c->out;
		n++;
	}
	ops[n].op = GRPC_OP_SEND_STATUS_FROM_SERVER;
	ops[n].data.send_status_from_server.status = code;
	ops[n].data.send_status_from_server.status_details = &details;
	n++;
	c->final_started = true;
	c->send_pending = true;
	grpc_call_start_batch(c->call, ops, n, &c->t_main, NULL);
	grpc_slice_unref(details);
}

static void watch_send(struct hcall *c, int serving, bool first)
{
	grpc_op ops[2];
	size_t n = 0;

	memset(ops, 0, sizeof(ops));
	if (first)
		ops[n++].op = GRPC_OP_SEND_INITIAL_METADATA;
	if (c->out)
		grpc_byte_buffer_destroy(c->out);
	c->out = status_msg(serving);
	ops[n].op = GRPC_OP_SEND_MESSAGE;
	ops[n].data.send_message.send_message = c->out;
	n++;
	c->last_sent = serving;
	c->send_pending = true;
	grpc_call_start_batch(c->call, ops, n, &c->t_main, NULL);
}

static void unlink_watcher(struct svc_health_port *hp, struct hcall *c)
{
	for (struct hcall **p = &hp->watchers; *p; p = &(*p)->next) {
		if (*p == c) {
			*p = c->next;
			return;
		}
	}
}

static void on_new_call(struct svc_health_port *hp, struct hcall *c)
{
	grpc_op op;
	int serving = hp->serving(hp->arg) && !atomic_load(&hp->stopping);

	memset(&op, 0, sizeof(op));
	op.op = GRPC_OP_RECV_CLOSE_ON_SERVER;
	op.data.recv_close_on_server.cancelled = &c->cancelled;
	grpc_call_start_batch(c->call, &op, 1, &c->t_close, NULL);

	if (c->kind == K_OTHER) {
		finish(c, GRPC_STATUS_UNIMPLEMENTED, "this port serves grpc.health.v1.Health only",
		       true);
		return;
	}
	if (!decode_service(c)) {
		finish(c, GRPC_STATUS_INVALID_ARGUMENT, "not a HealthCheckRequest", true);
		return;
	}
	if (!known(c->service)) {
		finish(c, GRPC_STATUS_NOT_FOUND, "unknown service", true);
		return;
	}
	if (c->kind == K_CHECK) {
		c->out = status_msg(serving);
		finish(c, GRPC_STATUS_OK, "", true);
		return;
	}
	c->next = hp->watchers;
	hp->watchers = c;
	watch_send(c, serving, true);
}

/* A call is freed when nothing of it is pending: its close arrived and no batch is in flight,
 * and (for a Watch) it left the watcher list. */
static void maybe_free(struct svc_health_port *hp, struct hcall *c)
{
	if (c->close_done && !c->send_pending) {
		unlink_watcher(hp, c);
		free_call(c);
	}
}

static void on_event(struct svc_health_port *hp, grpc_event *ev)
{
	struct htag *t = ev->tag;
	struct hcall *c = t->c;

	if (t->is_close) {
		c->close_done = true;
		unlink_watcher(hp, c);
		if (!c->final_started && !c->send_pending) {
			/* A watcher went away: the call is over. */
			free_call(c);
			return;
		}
		maybe_free(hp, c);
		return;
	}
	if (!c->requested) {
		if (!ev->success) {
			free_call(c); /* shutdown: never matched */
			return;
		}
		c->requested = true;
		if (!atomic_load(&hp->stopping))
			arm(hp, c->kind);
		on_new_call(hp, c);
		return;
	}
	c->send_pending = false;
	if (!ev->success && c->kind == K_WATCH)
		unlink_watcher(hp, c);
	maybe_free(hp, c);
}

static void *loop(void *arg)
{
	struct svc_health_port *hp = arg;
	bool shutdown_started = false;

	for (;;) {
		gpr_timespec until = gpr_time_add(gpr_now(GPR_CLOCK_MONOTONIC),
		                                  gpr_time_from_millis(200, GPR_TIMESPAN));
		grpc_event ev = grpc_completion_queue_next(hp->cq, until, NULL);
		bool stopping = atomic_load(&hp->stopping);
		int serving = !stopping && hp->serving(hp->arg);

		if (ev.type == GRPC_QUEUE_SHUTDOWN)
			break;
		if (ev.type == GRPC_OP_COMPLETE) {
			if (ev.tag == &hp->t_shutdown) {
				/* Listeners closed and calls cancelled: no new events but the
				 * ones in flight, which the drain below still sees. */
				grpc_server_destroy(hp->server);
				hp->server = NULL;
				grpc_completion_queue_shutdown(hp->cq);
				continue;
			}
			on_event(hp, &ev);
		}
		/* Push changes to watchers; at shutdown send NOT_SERVING, then end them. */
		for (struct hcall *w = hp->watchers; w != NULL; w = w->next) {
			if (w->send_pending || w->final_started)
				continue;
			if (w->last_sent != serving)
				watch_send(w, serving, false);
			else if (stopping)
				finish(w, GRPC_STATUS_OK, "", false);
		}
		if (stopping && !shutdown_started) {
			bool busy = false;
			for (struct hcall *w = hp->watchers; w != NULL; w = w->next)
				busy |= !w->final_started || w->send_pending;
			if (!busy) {
				shutdown_started = true;
				grpc_server_shutdown_and_notify(hp->server, hp->cq,
				                                &hp->t_shutdown);
				grpc_server_cancel_all_calls(hp->server);
			}
		}
	}
	return NULL;
}

struct svc_health_port *svc_health_port_start(const char *addr, struct svc_door *door,
                                              bool (*serving)(void *), void *arg)
{
	struct svc_health_port *hp = calloc(1, sizeof(*hp));
	grpc_server_credentials *creds;
	/* No SO_REUSEPORT: a port another process holds is an error, not a shared port. */
	grpc_arg reuse = {
	    .type = GRPC_ARG_INTEGER, .key = (char *)GRPC_ARG_ALLOW_REUSEPORT, .value.integer = 0};
	grpc_channel_args args = {.num_args = 1, .args = &reuse};

	if (hp == NULL)
		return NULL;
	hp->serving = serving;
	hp->arg = arg;
	atomic_init(&hp->stopping, 0);
	hp->server = grpc_server_create(&args, NULL);
	hp->cq = grpc_completion_queue_create_for_next(NULL);
	grpc_server_register_completion_queue(hp->server, hp->cq, NULL);
	hp->check_handle =
	    grpc_server_register_method(hp->server, "/grpc.health.v1.Health/Check", NULL,
	                                GRPC_SRM_PAYLOAD_READ_INITIAL_BYTE_BUFFER, 0);
	hp->watch_handle =
	    grpc_server_register_method(hp->server, "/grpc.health.v1.Health/Watch", NULL,
	                                GRPC_SRM_PAYLOAD_READ_INITIAL_BYTE_BUFFER, 0);
	if (door != NULL) {
		hp->port = svc_door_listen(door, addr, false, hp->server);
		if (hp->port < 0)
			hp->port = 0;
		else if (hp->port == 0)
			hp->port = -1; /* a unix socket: bound, no port */
	} else {
		creds = grpc_insecure_server_credentials_create();
		hp->port = grpc_server_add_http2_port(hp->server, addr, creds);
		grpc_server_credentials_release(creds);
	}
	if (hp->port == 0) {
		svc_log_event("error", "--health-listen: cannot listen on %s", addr);
		grpc_server_shutdown_and_notify(hp->server, hp->cq, &hp->t_shutdown);
		grpc_server_cancel_all_calls(hp->server);
		grpc_completion_queue_next(hp->cq, gpr_inf_future(GPR_CLOCK_MONOTONIC), NULL);
		grpc_server_destroy(hp->server);
		grpc_completion_queue_shutdown(hp->cq);
		while (grpc_completion_queue_next(hp->cq, gpr_inf_future(GPR_CLOCK_MONOTONIC), NULL)
		           .type != GRPC_QUEUE_SHUTDOWN)
			;
		grpc_completion_queue_destroy(hp->cq);
		free(hp);
		return NULL;
	}
	grpc_server_start(hp->server);
	for (int i = 0; i < 2; i++) {
		arm(hp, K_CHECK);
		arm(hp, K_WATCH);
	}
	arm(hp, K_OTHER);
	pthread_create(&hp->thread, NULL, loop, hp);
	return hp;
}

int svc_health_port_port(const struct svc_health_port *hp)
{
	return hp->port;
}

void svc_health_port_stop(struct svc_health_port *hp)
{
	if (hp == NULL)
		return;
	atomic_store(&hp->stopping, 1);
	pthread_join(hp->thread, NULL);
	grpc_completion_queue_destroy(hp->cq);
	free(hp);
}
