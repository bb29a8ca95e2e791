/* The test client: one completion queue per client, every batch plucked synchronously. */
#include "tclient.h"

#include <grpc/byte_buffer_reader.h>
#include <grpc/grpc_security.h>
#include <grpc/support/alloc.h>
#include <grpc/support/time.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

struct tclient {
	grpc_channel *ch;
	grpc_completion_queue *cq;
	char request_id[128];
	/* Extra metadata sent with every call (tclient_add_metadata). */
	char md_key[TCLIENT_MAX_METADATA][64];
	char *md_value[TCLIENT_MAX_METADATA];
	size_t md_len[TCLIENT_MAX_METADATA];
	size_t n_md;
	char traceparent[128];
	bool wait_for_ready; /* tclient_set_wait_for_ready */
};

static char *slurp(const char *path)
{
	FILE *f;
	long n;
	char *buf;

	if (path == NULL)
		return NULL;
	f = fopen(path, "rb");
	if (f == NULL)
		return NULL;
	fseek(f, 0, SEEK_END);
	n = ftell(f);
	fseek(f, 0, SEEK_SET);
	buf = malloc((size_t)n + 1);
	if (buf != NULL && fread(buf, 1, (size_t)n, f) != (size_t)n) {
		free(buf);
		buf = NULL;
	}
	if (buf != NULL)
		buf[n] = '\0';
	fclose(f);
	return buf;
}

struct tclient *tclient_new(const char *target, const char *ca_file, const char *cert_file,
                            const char *key_file, bool insecure)
{
	struct tclient *c = calloc(1, sizeof(*c));
	grpc_channel_credentials *creds;
	grpc_arg args[3];
	grpc_channel_args chargs = {0, args};

	memset(args, 0, sizeof(args));
	args[0].type = GRPC_ARG_STRING;
	args[0].key = GRPC_SSL_TARGET_NAME_OVERRIDE_ARG;
	args[0].value.string = "localhost";
	args[1].type = GRPC_ARG_INTEGER;
	args[1].key = GRPC_ARG_USE_LOCAL_SUBCHANNEL_POOL;
	args[1].value.integer = 1;
	args[2].type = GRPC_ARG_INTEGER;
	args[2].key = GRPC_ARG_ENABLE_RETRIES;
	args[2].value.integer = 0;
	chargs.num_args = 3;
	if (insecure) {
		creds = grpc_insecure_credentials_create();
	} else {
		char *ca = slurp(ca_file), *cert = slurp(cert_file), *key = slurp(key_file);
		grpc_ssl_pem_key_cert_pair pair = {key, cert};
		if (ca == NULL || (cert_file != NULL && (cert == NULL || key == NULL))) {
			free(ca);
			free(cert);
			free(key);
			free(c);
			return NULL;
		}
		creds = grpc_ssl_credentials_create(ca, cert ? &pair : NULL, NULL, NULL);
		free(ca);
		free(cert);
		free(key);
	}
	c->ch = grpc_channel_create(target, creds, &chargs);
	grpc_channel_credentials_release(creds);
	c->cq = grpc_completion_queue_create_for_pluck(NULL);
	return c;
}

void tclient_free(struct tclient *c)
{
	if (c == NULL)
		return;
	grpc_channel_destroy(c->ch);
	grpc_completion_queue_shutdown(c->cq);
	while (grpc_completion_queue_pluck(c->cq, NULL, gpr_inf_future(GPR_CLOCK_REALTIME), NULL)
	           .type != GRPC_QUEUE_SHUTDOWN)
		;
	grpc_completion_queue_destroy(c->cq);
	tclient_add_metadata(c, NULL, NULL, 0);
	free(c);
}

void tclient_set_wait_for_ready(struct tclient *c, bool on)
{
	c->wait_for_ready = on;
}

void tclient_set_request_id(struct tclient *c, const char *request_id)
{
	snprintf(c->request_id, sizeof(c->request_id), "%s", request_id ? request_id : "");
}

void tresult_cleanup(struct tresult *r)
{
	free(r->message);
	free(r->body);
	free(r->details);
	memset(r, 0, sizeof(*r));
}

static gpr_timespec deadline_in(int timeout_ms)
{
	return gpr_time_add(
	    gpr_now(GPR_CLOCK_MONOTONIC),
	    gpr_time_from_millis(timeout_ms > 0 ? timeout_ms : 10000, GPR_TIMESPAN));
}

static void pluck(struct tclient *c, void *tag)
{
	grpc_completion_queue_pluck(c->cq, tag, gpr_inf_future(GPR_CLOCK_REALTIME), NULL);
}

static void read_bb(grpc_byte_buffer *bb, uint8_t **data, size_t *len)
{
	grpc_byte_buffer_reader r;
	grpc_slice s;

	grpc_byte_buffer_reader_init(&r, bb);
	s = grpc_byte_buffer_reader_readall(&r);
	grpc_byte_buffer_reader_destroy(&r);
	*len = GRPC_SLICE_LENGTH(s);
	*data = malloc(*len + 1);
	memcpy(*data, GRPC_SLICE_START_PTR(s), *len);
	grpc_slice_unref(s);
}

static void fill_status(struct tresult *out, grpc_status_code st, grpc_slice details,
                        grpc_metadata_array *trailing)
{
	out->code = st;
	out->message = malloc(GRPC_SLICE_LENGTH(details) + 1);
	memcpy(out->message, GRPC_SLICE_START_PTR(details), GRPC_SLICE_LENGTH(details));
	out->message[GRPC_SLICE_LENGTH(details)] = '\0';
	for (size_t i = 0; i < trailing->count; i++) {
		grpc_metadata *m = &trailing->metadata[i];
		if (grpc_slice_str_cmp(m->key, "grpc-status-details-bin") == 0) {
			out->details_len = GRPC_SLICE_LENGTH(m->value);
			out->details = malloc(out->details_len + 1);
			memcpy(out->details, GRPC_SLICE_START_PTR(m->value), out->details_len);
		}
	}
}

void tclient_add_metadata(struct tclient *c, const char *key, const char *value, size_t len)
{
	if (key == NULL) {
		for (size_t i = 0; i < c->n_md; i++)
			free(c->md_value[i]);
		c->n_md = 0;
		return;
	}
	if (c->n_md >= TCLIENT_MAX_METADATA)
		abort(); /* a test asking for more is a bug in the test */
	snprintf(c->md_key[c->n_md], sizeof(c->md_key[0]), "%s", key);
	c->md_value[c->n_md] = malloc(len + 1);
	memcpy(c->md_value[c->n_md], value, len);
	c->md_value[c->n_md][len] = '\0';
	c->md_len[c->n_md++] = len;
}

void tclient_set_traceparent(struct tclient *c, const char *traceparent)
{
	snprintf(c->traceparent, sizeof(c->traceparent), "%s", traceparent ? traceparent : "");
}

/* The request metadata of a call into md (room for TCLIENT_MAX_METADATA + 2); release with
 * request_md_release. */
static grpc_metadata *request_md(struct tclient *c, grpc_metadata *md, size_t *n)
{
	*n = 0;
	if (c->request_id[0] != '\0') {
		md[*n].key = grpc_slice_from_static_string("x-request-id");
		md[*n].value = grpc_slice_from_copied_string(c->request_id);
		(*n)++;
	}
	for (size_t i = 0; i < c->n_md; i++) {
		md[*n].key = grpc_slice_from_static_string(c->md_key[i]);
		md[*n].value = grpc_slice_from_copied_buffer(c->md_value[i], c->md_len[i]);
		(*n)++;
	}
	if (c->traceparent[0] != '\0') {
		md[*n].key = grpc_slice_from_static_string("traceparent");
		md[*n].value = grpc_slice_from_copied_string(c->traceparent);
		(*n)++;
	}
	return *n > 0 ? md : NULL;
}

static void request_md_release(grpc_metadata *md, size_t n)
{
	for (size_t i = 0; i < n; i++)
		grpc_slice_unref(md[i].value);
}

grpc_status_code tclient_call_raw(struct tclient *c, const char *method, const void *req,
                                  size_t req_len, int timeout_ms, struct tresult *out)
{
	grpc_slice m = grpc_slice_from_copied_string(method);
	grpc_call *call = grpc_channel_create_call(c->ch, NULL, GRPC_PROPAGATE_DEFAULTS, c->cq, m,
	                                           NULL, deadline_in(timeout_ms), NULL);
	grpc_slice payload = grpc_slice_from_copied_buffer(req, req_len);
	grpc_byte_buffer *send = grpc_raw_byte_buffer_create(&payload, 1);
	grpc_byte_buffer *recv = NULL;
	grpc_metadata_array initial, trailing;
	grpc_status_code st = GRPC_STATUS_UNKNOWN;
	grpc_slice details;
	grpc_metadata md[TCLIENT_MAX_METADATA + 2];
	grpc_op ops[6];
	size_t nmd;

	memset(out, 0, sizeof(*out));
	grpc_metadata_array_init(&initial);
	grpc_metadata_array_init(&trailing);
	memset(ops, 0, sizeof(ops));
	ops[0].op = GRPC_OP_SEND_INITIAL_METADATA;
	ops[0].flags = c->wait_for_ready ? GRPC_INITIAL_METADATA_WAIT_FOR_READY : 0;
	ops[0].data.send_initial_metadata.metadata = request_md(c, md, &nmd);
	ops[0].data.send_initial_metadata.count = nmd;
	ops[1].op = GRPC_OP_SEND_MESSAGE;
	ops[1].data.send_message.send_message = send;
	ops[2].op = GRPC_OP_SEND_CLOSE_FROM_CLIENT;
	ops[3].op = GRPC_OP_RECV_INITIAL_METADATA;
	ops[3].data.recv_initial_metadata.recv_initial_metadata = &initial;
	ops[4].op = GRPC_OP_RECV_MESSAGE;
	ops[4].data.recv_message.recv_message = &recv;
	ops[5].op = GRPC_OP_RECV_STATUS_ON_CLIENT;
	ops[5].data.recv_status_on_client.trailing_metadata = &trailing;
	ops[5].data.recv_status_on_client.status = &st;
	ops[5].data.recv_status_on_client.status_details = &details;
	grpc_call_start_batch(call, ops, 6, call, NULL);
	pluck(c, call);
	fill_status(out, st, details, &trailing);
	if (recv != NULL) {
		read_bb(recv, &out->body, &out->body_len);
		out->has_body = true;
		grpc_byte_buffer_destroy(recv);
	}
	request_md_release(md, nmd);
	grpc_slice_unref(details);
	grpc_metadata_array_destroy(&initial);
	grpc_metadata_array_destroy(&trailing);
	grpc_byte_buffer_destroy(send);
	grpc_slice_unref(payload);
	grpc_slice_unref(m);
	grpc_call_unref(call);
	return st;
}

grpc_status_code tclient_call(struct tclient *c, const char *method, const ProtobufCMessage *req,
                              const ProtobufCMessageDescriptor *resp_desc, ProtobufCMessage **resp,
                              int timeout_ms, struct tresult *out)
{
	size_t len = protobuf_c_message_get_packed_size(req);
	uint8_t *buf = malloc(len ? len : 1);
	grpc_status_code st;

	if (resp != NULL)
		*resp = NULL;
	protobuf_c_message_pack(req, buf);
	st = tclient_call_raw(c, method, buf, len, timeout_ms, out);
	free(buf);
	if (st == GRPC_STATUS_OK && resp_desc != NULL && resp != NULL)
		*resp = protobuf_c_message_unpack(resp_desc, NULL, out->body_len, out->body);
	return st;
}

struct tstream {
	struct tclient *c;
	grpc_call *call;
	grpc_metadata_array initial, trailing;
	grpc_status_code st;
	grpc_slice details;
	bool status_started;
};

struct tstream *tclient_stream_open(struct tclient *c, const char *method,
                                    const ProtobufCMessage *req, int timeout_ms)
{
	struct tstream *s = calloc(1, sizeof(*s));
	grpc_slice m = grpc_slice_from_copied_string(method);
	size_t len = protobuf_c_message_get_packed_size(req);
	grpc_slice payload = grpc_slice_malloc(len);
	grpc_byte_buffer *send;
	grpc_metadata md[TCLIENT_MAX_METADATA + 2];
	grpc_op ops[4];
	size_t nmd;

	protobuf_c_message_pack(req, GRPC_SLICE_START_PTR(payload));
	send = grpc_raw_byte_buffer_create(&payload, 1);
	s->c = c;
	s->call = grpc_channel_create_call(c->ch, NULL, GRPC_PROPAGATE_DEFAULTS, c->cq, m, NULL,
	                                   deadline_in(timeout_ms > 0 ? timeout_ms : 60000), NULL);
	grpc_metadata_array_init(&s->initial);
	grpc_metadata_array_init(&s->trailing);
	memset(ops, 0, sizeof(ops));
	ops[0].op = GRPC_OP_SEND_INITIAL_METADATA;
	ops[0].flags = c->wait_for_ready ? GRPC_INITIAL_METADATA_WAIT_FOR_READY : 0;
	ops[0].data.send_initial_metadata.metadata = request_md(c, md, &nmd);
	ops[0].data.send_initial_metadata.count = nmd;
	ops[1].op = GRPC_OP_SEND_MESSAGE;
	ops[1].data.send_message.send_message = send;
	ops[2].op = GRPC_OP_SEND_CLOSE_FROM_CLIENT;
	ops[3].op = GRPC_OP_RECV_INITIAL_METADATA;
	ops[3].data.recv_initial_metadata.recv_initial_metadata = &s->initial;
	grpc_call_start_batch(s->call, ops, 4, s, NULL);
	pluck(c, s);
	request_md_release(md, nmd);
	grpc_byte_buffer_destroy(send);
	grpc_slice_unref(payload);
	grpc_slice_unref(m);
	return s;
}

bool tclient_stream_next(struct tstream *s, const ProtobufCMessageDescriptor *desc,
                         ProtobufCMessage **msg)
{
	grpc_byte_buffer *recv = NULL;
	grpc_op op;
	uint8_t *data;
	size_t len;

	*msg = NULL;
	memset(&op, 0, sizeof(op));
	op.op = GRPC_OP_RECV_MESSAGE;
	op.data.recv_message.recv_message = &recv;
	grpc_call_start_batch(s->call, &op, 1, s, NULL);
	pluck(s->c, s);
	if (recv == NULL)
		return false;
	read_bb(recv, &data, &len);
	grpc_byte_buffer_destroy(recv);
	*msg = protobuf_c_message_unpack(desc, NULL, len, data);
	free(data);
	return *msg != NULL;
}

void tclient_stream_cancel(struct tstream *s)
{
	grpc_call_cancel(s->call, NULL);
}

grpc_status_code tclient_stream_finish(struct tstream *s, struct tresult *out)
{
	grpc_op op;
	grpc_status_code st;

	memset(out, 0, sizeof(*out));
	memset(&op, 0, sizeof(op));
	op.op = GRPC_OP_RECV_STATUS_ON_CLIENT;
	op.data.recv_status_on_client.trailing_metadata = &s->trailing;
	op.data.recv_status_on_client.status = &s->st;
	op.data.recv_status_on_client.status_details = &s->details;
	grpc_call_start_batch(s->call, &op, 1, s, NULL);
	pluck(s->c, s);
	fill_status(out, s->st, s->details, &s->trailing);
	st = s->st;
	grpc_slice_unref(s->details);
	grpc_metadata_array_destroy(&s->initial);
	grpc_metadata_array_destroy(&s->trailing);
	grpc_call_unref(s->call);
	free(s);
	return st;
}
