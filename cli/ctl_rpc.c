/* Calls on grpc core for maturityctl (see ctl_rpc.h): one channel, one pluck completion queue,
 * one call at a time. */
#include "ctl_rpc.h"

#include "google/protobuf/descriptor.pb-c.h"
#include "google/rpc/error_details.pb-c.h"
#include "google/rpc/status.pb-c.h"
#include "grpc/health/v1/health.pb-c.h"
#include "maturity_descriptor_set.h"
#include "mlops/maturity/v1/access.pb-c.h"
#include "mlops/maturity/v1/assessment.pb-c.h"
#include "mlops/maturity/v1/event.pb-c.h"
#include "mlops/maturity/v1/evidence.pb-c.h"
#include "mlops/maturity/v1/gate.pb-c.h"
#include "mlops/maturity/v1/model.pb-c.h"
#include "mlops/maturity/v1/organization.pb-c.h"
#include "mlops/maturity/v1/reporting.pb-c.h"
#include "mlops/maturity/v1/scoring.pb-c.h"
#include "mlops/maturity/v1/transition.pb-c.h"

#include <grpc/byte_buffer_reader.h>
#include <grpc/grpc_security.h>
#include <grpc/support/time.h>
#include <stdlib.h>
#include <string.h>

/* Unary calls without --timeout: long enough for any call of the API, short enough that a
 * script does not hang on a server that accepted the connection and stopped answering. */
#define CTL_DEFAULT_UNARY_TIMEOUT_MS 30000
/* The largest file (certificate, key, CA bundle) we read. */
#define CTL_MAX_PEM_BYTES (1024 * 1024)

struct ctl_conn {
	grpc_channel *ch;
	grpc_completion_queue *cq;
	long timeout_ms;
	char *on_behalf_of;
};

static char *slurp(const char *path, char *err, size_t n)
{
	FILE *f = fopen(path, "rb");
	char *buf = NULL;
	size_t len = 0;

	if (f == NULL) {
		snprintf(err, n, "cannot read %s: %m", path);
		return NULL;
	}
	buf = malloc(CTL_MAX_PEM_BYTES + 1);
	if (buf != NULL)
		len = fread(buf, 1, CTL_MAX_PEM_BYTES + 1, f);
	fclose(f);
	if (buf == NULL || len > CTL_MAX_PEM_BYTES) {
		snprintf(err, n, "cannot read %s: %s", path,
		         buf ? "larger than 1 MiB" : "no memory");
		free(buf);
		return NULL;
	}
	buf[len] = '\0';
	return buf;
}

int ctl_conn_open(const struct ctl_conn_opts *o, struct ctl_conn **out, char *err, size_t n)
{
	struct ctl_conn *c = NULL;
	char *ca = NULL, *cert = NULL, *key = NULL;
	grpc_channel_credentials *creds;
	grpc_arg args[1];
	grpc_channel_args chargs = {0, args};
	int rc = -1;

	*out = NULL;
	if (o->cacert != NULL && (ca = slurp(o->cacert, err, n)) == NULL)
		goto out;
	if (o->cert != NULL && (cert = slurp(o->cert, err, n)) == NULL)
		goto out;
	if (o->key != NULL && (key = slurp(o->key, err, n)) == NULL)
		goto out;
	c = calloc(1, sizeof(*c));
	if (c == NULL) {
		snprintf(err, n, "out of memory");
		goto out;
	}
	if (o->server_name != NULL && o->server_name[0] != '\0') {
		/* Dialing an address (127.0.0.1, a load balancer) whose certificate carries another
		 * name: check that name instead of the host part of the target. */
		args[0].type = GRPC_ARG_STRING;
		args[0].key = GRPC_SSL_TARGET_NAME_OVERRIDE_ARG;
		args[0].value.string = (char *)o->server_name;
		chargs.num_args = 1;
	}
	grpc_ssl_pem_key_cert_pair pair = {key, cert};
	creds = grpc_ssl_credentials_create(ca, cert != NULL ? &pair : NULL, NULL, NULL);
	c->ch = grpc_channel_create(o->server, creds, &chargs);
	grpc_channel_credentials_release(creds);
	c->cq = grpc_completion_queue_create_for_pluck(NULL);
	c->timeout_ms = o->timeout_ms;
	if (o->on_behalf_of != NULL && o->on_behalf_of[0] != '\0')
		c->on_behalf_of = strdup(o->on_behalf_of);
	*out = c;
	c = NULL;
	rc = 0;
out:
	free(ca);
	free(cert);
	if (key != NULL) {
		/* The client's private key: do not leave it in freed memory. */
		memset(key, 0, strlen(key));
		free(key);
	}
	free(c);
	return rc;
}

void ctl_conn_free(struct ctl_conn *c)
{
	if (c == NULL)
		return;
	grpc_channel_destroy(c->ch);
	grpc_completion_queue_shutdown(c->cq);
	while (grpc_completion_queue_pluck(c->cq, NULL, gpr_inf_future(GPR_CLOCK_REALTIME), NULL)
	           .type != GRPC_QUEUE_SHUTDOWN)
		;
	grpc_completion_queue_destroy(c->cq);
	free(c->on_behalf_of);
	free(c);
}

void ctl_status_cleanup(struct ctl_status *st)
{
	free(st->message);
	free(st->details);
	memset(st, 0, sizeof(*st));
}

const char *ctl_status_name(grpc_status_code code)
{
	static const char *const names[] = {"OK",
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
	return (unsigned)code < sizeof(names) / sizeof(names[0]) ? names[code] : "UNKNOWN";
}

void ctl_status_print(const struct ctl_status *st, FILE *f)
{
	Google__Rpc__Status *rs = NULL;

	fprintf(f, "%s: %s\n", ctl_status_name(st->code),
	        st->message != NULL && st->message[0] != '\0' ? st->message : "(no message)");
	if (st->details != NULL)
		rs = google__rpc__status__unpack(NULL, st->details_len, st->details);
	for (size_t i = 0; rs != NULL && i < rs->n_details; i++) {
		const Google__Protobuf__Any *any = rs->details[i];
		const char *slash = strrchr(any->type_url, '/');
		Google__Rpc__BadRequest *br;

		if (slash == NULL || strcmp(slash + 1, "google.rpc.BadRequest") != 0)
			continue;
		br = google__rpc__bad_request__unpack(NULL, any->value.len, any->value.data);
		for (size_t k = 0; br != NULL && k < br->n_field_violations; k++)
			fprintf(f, "  %s: %s\n", br->field_violations[k]->field,
			        br->field_violations[k]->description);
		if (br != NULL)
			google__rpc__bad_request__free_unpacked(br, NULL);
	}
	if (rs != NULL)
		google__rpc__status__free_unpacked(rs, NULL);
}

static void set_status(struct ctl_status *st, grpc_status_code code, const char *msg)
{
	st->code = code;
	free(st->message);
	st->message = strdup(msg);
}

static grpc_event pluck(struct ctl_conn *c, void *tag)
{
	return grpc_completion_queue_pluck(c->cq, tag, gpr_inf_future(GPR_CLOCK_REALTIME), NULL);
}

static ProtobufCMessage *decode(grpc_byte_buffer *bb, const ProtobufCMessageDescriptor *d)
{
	grpc_byte_buffer_reader r;
	grpc_slice s;
	ProtobufCMessage *m;

	if (!grpc_byte_buffer_reader_init(&r, bb))
		return NULL;
	s = grpc_byte_buffer_reader_readall(&r);
	grpc_byte_buffer_reader_destroy(&r);
	m = protobuf_c_message_unpack(d, NULL, GRPC_SLICE_LENGTH(s), GRPC_SLICE_START_PTR(s));
	grpc_slice_unref(s);
	return m;
}

grpc_status_code ctl_call(struct ctl_conn *c, const char *path, const ProtobufCMessage *req,
                          const ProtobufCMessageDescriptor *resp_desc, bool streaming,
                          ctl_msg_fn fn, void *ud, struct ctl_status *st)
{
	long timeout = c->timeout_ms > 0 ? c->timeout_ms
	               : streaming       ? 0
	                                 : CTL_DEFAULT_UNARY_TIMEOUT_MS;
	gpr_timespec deadline = timeout > 0
	                            ? gpr_time_add(gpr_now(GPR_CLOCK_MONOTONIC),
	                                           gpr_time_from_millis(timeout, GPR_TIMESPAN))
	                            : gpr_inf_future(GPR_CLOCK_MONOTONIC);
	grpc_slice method = grpc_slice_from_copied_string(path);
	grpc_call *call;
	grpc_metadata md[1];
	grpc_metadata_array initial_md, trailing_md;
	grpc_op ops[4];
	grpc_byte_buffer *send = NULL;
	grpc_slice details = grpc_empty_slice();
	grpc_status_code code = GRPC_STATUS_UNKNOWN;
	size_t len = protobuf_c_message_get_packed_size(req);
	uint8_t *buf = malloc(len > 0 ? len : 1);
	bool stopped = false;

	memset(st, 0, sizeof(*st));
	grpc_metadata_array_init(&initial_md);
	grpc_metadata_array_init(&trailing_md);
	call = grpc_channel_create_call(c->ch, NULL, GRPC_PROPAGATE_DEFAULTS, c->cq, method, NULL,
	                                deadline, NULL);
	grpc_slice_unref(method);
	if (buf == NULL) {
		set_status(st, GRPC_STATUS_RESOURCE_EXHAUSTED, "out of memory");
		grpc_call_unref(call);
		goto out;
	}
	protobuf_c_message_pack(req, buf);
	grpc_slice body = grpc_slice_from_copied_buffer((const char *)buf, len);
	send = grpc_raw_byte_buffer_create(&body, 1);
	grpc_slice_unref(body);

	memset(ops, 0, sizeof(ops));
	memset(md, 0, sizeof(md));
	ops[0].op = GRPC_OP_SEND_INITIAL_METADATA;
	if (c->on_behalf_of != NULL) {
		md[0].key = grpc_slice_from_static_string("x-on-behalf-of");
		md[0].value = grpc_slice_from_static_string(c->on_behalf_of);
		ops[0].data.send_initial_metadata.count = 1;
		ops[0].data.send_initial_metadata.metadata = md;
	}
	ops[1].op = GRPC_OP_SEND_MESSAGE;
	ops[1].data.send_message.send_message = send;
	ops[2].op = GRPC_OP_SEND_CLOSE_FROM_CLIENT;
	ops[3].op = GRPC_OP_RECV_INITIAL_METADATA;
	ops[3].data.recv_initial_metadata.recv_initial_metadata = &initial_md;
	if (grpc_call_start_batch(call, ops, 4, (void *)1, NULL) != GRPC_CALL_OK) {
		set_status(st, GRPC_STATUS_INTERNAL, "grpc refused the call");
		grpc_call_unref(call);
		goto out;
	}
	/* Its outcome shows in the status below: a failed send ends the call. */
	pluck(c, (void *)1);

	for (;;) {
		grpc_byte_buffer *recv = NULL;
		grpc_event ev;
		ProtobufCMessage *m;

		memset(ops, 0, sizeof(ops));
		ops[0].op = GRPC_OP_RECV_MESSAGE;
		ops[0].data.recv_message.recv_message = &recv;
		if (grpc_call_start_batch(call, ops, 1, (void *)2, NULL) != GRPC_CALL_OK)
			break;
		ev = pluck(c, (void *)2);
		if (!ev.success || recv == NULL)
			break;
		m = decode(recv, resp_desc);
		grpc_byte_buffer_destroy(recv);
		if (m == NULL) {
			/* Not the message the method returns: a server of another version. */
			grpc_call_cancel_with_status(call, GRPC_STATUS_INTERNAL,
			                             "undecodable response message", NULL);
			break;
		}
		if (fn(m, ud) != 0) {
			stopped = true;
			grpc_call_cancel(call, NULL);
			break;
		}
	}

	memset(ops, 0, sizeof(ops));
	ops[0].op = GRPC_OP_RECV_STATUS_ON_CLIENT;
	ops[0].data.recv_status_on_client.trailing_metadata = &trailing_md;
	ops[0].data.recv_status_on_client.status = &code;
	ops[0].data.recv_status_on_client.status_details = &details;
	if (grpc_call_start_batch(call, ops, 1, (void *)3, NULL) == GRPC_CALL_OK)
		pluck(c, (void *)3);
	else
		code = GRPC_STATUS_INTERNAL;

	st->code = stopped && code == GRPC_STATUS_CANCELLED ? GRPC_STATUS_CANCELLED : code;
	st->message = malloc(GRPC_SLICE_LENGTH(details) + 1);
	if (st->message != NULL) {
		memcpy(st->message, GRPC_SLICE_START_PTR(details), GRPC_SLICE_LENGTH(details));
		st->message[GRPC_SLICE_LENGTH(details)] = '\0';
	}
	for (size_t i = 0; i < trailing_md.count; i++) {
		const grpc_metadata *t = &trailing_md.metadata[i];
		if (grpc_slice_str_cmp(t->key, "grpc-status-details-bin") != 0)
			continue;
		free(st->details);
		st->details_len = GRPC_SLICE_LENGTH(t->value);
		st->details = malloc(st->details_len + 1);
		if (st->details != NULL)
			memcpy(st->details, GRPC_SLICE_START_PTR(t->value), st->details_len);
		else
			st->details_len = 0;
	}
	/* Only now: the received metadata's slices belong to the call. */
	grpc_call_unref(call);
out:
	grpc_slice_unref(details);
	grpc_metadata_array_destroy(&initial_md);
	grpc_metadata_array_destroy(&trailing_md);
	if (send != NULL)
		grpc_byte_buffer_destroy(send);
	free(buf);
	return st->code;
}

static int keep_one(ProtobufCMessage *msg, void *ud)
{
	ProtobufCMessage **slot = ud;

	if (*slot != NULL)
		protobuf_c_message_free_unpacked(*slot, NULL);
	*slot = msg;
	return 0;
}

grpc_status_code ctl_call_unary(struct ctl_conn *c, const char *path, const ProtobufCMessage *req,
                                const ProtobufCMessageDescriptor *resp_desc,
                                ProtobufCMessage **resp, struct ctl_status *st)
{
	ProtobufCMessage *m = NULL;

	*resp = NULL;
	if (ctl_call(c, path, req, resp_desc, false, keep_one, &m, st) == GRPC_STATUS_OK &&
	    m == NULL)
		set_status(st, GRPC_STATUS_INTERNAL, "the server sent no response message");
	if (st->code != GRPC_STATUS_OK) {
		if (m != NULL)
			protobuf_c_message_free_unpacked(m, NULL);
		return st->code;
	}
	*resp = m;
	return GRPC_STATUS_OK;
}

/* ---- the method table ---- */

static const ProtobufCServiceDescriptor *const services[] = {
    &mlops__maturity__v1__model_service__descriptor,
    &mlops__maturity__v1__organization_service__descriptor,
    &mlops__maturity__v1__assessment_service__descriptor,
    &mlops__maturity__v1__scoring_service__descriptor,
    &mlops__maturity__v1__transition_service__descriptor,
    &mlops__maturity__v1__reporting_service__descriptor,
    &mlops__maturity__v1__access_service__descriptor,
    &mlops__maturity__v1__evidence_service__descriptor,
    &mlops__maturity__v1__event_service__descriptor,
    &mlops__maturity__v1__gate_service__descriptor,
    &grpc__health__v1__health__descriptor,
};

/* protobuf-c's service descriptors do not say which methods stream: the embedded descriptor
 * set (the .proto files as compiled) does. */
static bool is_server_streaming(const char *service, const char *method)
{
	Google__Protobuf__FileDescriptorSet *set = google__protobuf__file_descriptor_set__unpack(
	    NULL, maturity_descriptor_set_len, maturity_descriptor_set);
	bool found = false;

	for (size_t i = 0; set != NULL && i < set->n_file && !found; i++) {
		const Google__Protobuf__FileDescriptorProto *fd = set->file[i];
		size_t plen = fd->package != NULL ? strlen(fd->package) : 0;
		for (size_t s = 0; s < fd->n_service && !found; s++) {
			const Google__Protobuf__ServiceDescriptorProto *sd = fd->service[s];
			if (plen == 0 || strncmp(service, fd->package, plen) != 0 ||
			    service[plen] != '.' || strcmp(service + plen + 1, sd->name) != 0)
				continue;
			for (size_t k = 0; k < sd->n_method; k++)
				if (strcmp(sd->method[k]->name, method) == 0)
					found = sd->method[k]->has_server_streaming &&
					        sd->method[k]->server_streaming;
		}
	}
	if (set != NULL)
		google__protobuf__file_descriptor_set__free_unpacked(set, NULL);
	return found;
}

int ctl_method_find(const char *name, struct ctl_method *m)
{
	const char *slash;
	size_t slen;

	memset(m, 0, sizeof(*m));
	if (name[0] == '/')
		name++;
	slash = strchr(name, '/');
	if (slash == NULL)
		return -1;
	slen = (size_t)(slash - name);
	for (size_t i = 0; i < sizeof(services) / sizeof(services[0]); i++) {
		const ProtobufCServiceDescriptor *sd = services[i];
		if (strlen(sd->name) != slen || strncmp(sd->name, name, slen) != 0)
			continue;
		for (unsigned k = 0; k < sd->n_methods; k++) {
			if (strcmp(sd->methods[k].name, slash + 1) != 0)
				continue;
			snprintf(m->path, sizeof(m->path), "/%s/%s", sd->name, sd->methods[k].name);
			m->input = sd->methods[k].input;
			m->output = sd->methods[k].output;
			m->server_streaming = is_server_streaming(sd->name, sd->methods[k].name);
			return 0;
		}
	}
	return -1;
}
