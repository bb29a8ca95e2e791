/* grpc.reflection.v1 and v1alpha ServerReflection from the descriptor set embedded at build time,
 * so grpcurl and buf curl work without .proto files. Both versions share one wire format, so one
 * implementation answers both. The index (files, their bytes, symbols) is built once at start
 * and read-only afterwards. */
#include "google/protobuf/descriptor.pb-c.h"
#include "grpc/reflection/v1/reflection.pb-c.h"
#include "grpc/reflection/v1alpha/reflection.pb-c.h"
#include "maturity_descriptor_set.h"
#include "svc.h"
#include "svc_log.h"
#include "svc_methods.h"

#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

struct refl_file {
	const Google__Protobuf__FileDescriptorProto *fd;
	uint8_t *bytes; /* serialized FileDescriptorProto */
	size_t len;
};

struct refl_symbol {
	char *name; /* fully qualified, without the leading dot */
	size_t file;
};

static struct {
	Google__Protobuf__FileDescriptorSet *set;
	struct refl_file *files;
	size_t n_files;
	struct refl_symbol *symbols;
	size_t n_symbols, cap_symbols;
	char **services;
	size_t n_services;
} g;

static pthread_once_t once = PTHREAD_ONCE_INIT;

static void add_symbol(const char *prefix, const char *name, size_t file)
{
	size_t len = strlen(prefix) + strlen(name) + 2;
	char *s = malloc(len);

	if (s == NULL)
		return;
	snprintf(s, len, "%s%s%s", prefix, prefix[0] ? "." : "", name);
	if (g.n_symbols == g.cap_symbols) {
		size_t cap = g.cap_symbols ? 2 * g.cap_symbols : 256;
		struct refl_symbol *n = realloc(g.symbols, cap * sizeof(*n));
		if (n == NULL) {
			free(s);
			return;
		}
		g.symbols = n;
		g.cap_symbols = cap;
	}
	g.symbols[g.n_symbols].name = s;
	g.symbols[g.n_symbols].file = file;
	g.n_symbols++;
}

static void add_message(const char *prefix, const Google__Protobuf__DescriptorProto *m, size_t file)
{
	char full[512];

	add_symbol(prefix, m->name, file);
	snprintf(full, sizeof(full), "%s%s%s", prefix, prefix[0] ? "." : "", m->name);
	for (size_t i = 0; i < m->n_nested_type; i++)
		add_message(full, m->nested_type[i], file);
	for (size_t i = 0; i < m->n_enum_type; i++)
		add_symbol(full, m->enum_type[i]->name, file);
}

static void build(void)
{
	g.set = google__protobuf__file_descriptor_set__unpack(NULL, maturity_descriptor_set_len,
	                                                      maturity_descriptor_set);
	if (g.set == NULL)
		return;
	g.n_files = g.set->n_file;
	g.files = calloc(g.n_files ? g.n_files : 1, sizeof(*g.files));
	g.services = calloc(64, sizeof(char *));
	if (g.files == NULL || g.services == NULL)
		return;
	for (size_t i = 0; i < g.n_files; i++) {
		const Google__Protobuf__FileDescriptorProto *fd = g.set->file[i];
		const char *pkg = fd->package ? fd->package : "";
		char full[512];

		g.files[i].fd = fd;
		g.files[i].len = google__protobuf__file_descriptor_proto__get_packed_size(fd);
		g.files[i].bytes = malloc(g.files[i].len ? g.files[i].len : 1);
		if (g.files[i].bytes != NULL)
			google__protobuf__file_descriptor_proto__pack(fd, g.files[i].bytes);
		for (size_t k = 0; k < fd->n_message_type; k++)
			add_message(pkg, fd->message_type[k], i);
		for (size_t k = 0; k < fd->n_enum_type; k++)
			add_symbol(pkg, fd->enum_type[k]->name, i);
		for (size_t k = 0; k < fd->n_service; k++) {
			const Google__Protobuf__ServiceDescriptorProto *s = fd->service[k];
			add_symbol(pkg, s->name, i);
			snprintf(full, sizeof(full), "%s%s%s", pkg, pkg[0] ? "." : "", s->name);
			for (size_t m = 0; m < s->n_method; m++)
				add_symbol(full, s->method[m]->name, i);
			if (g.n_services < 64)
				g.services[g.n_services++] = strdup(full);
		}
	}
}

void svc_reflection_cleanup(void)
{
	for (size_t i = 0; i < g.n_files; i++)
		free(g.files[i].bytes);
	free(g.files);
	for (size_t i = 0; i < g.n_symbols; i++)
		free(g.symbols[i].name);
	free(g.symbols);
	for (size_t i = 0; i < g.n_services; i++)
		free(g.services[i]);
	free(g.services);
	if (g.set != NULL)
		google__protobuf__file_descriptor_set__free_unpacked(g.set, NULL);
	memset(&g, 0, sizeof(g));
}

int svc_reflection_init(void)
{
	pthread_once(&once, build);
	return g.set != NULL && g.files != NULL ? 0 : -1;
}

static long file_by_name(const char *name)
{
	for (size_t i = 0; i < g.n_files; i++)
		if (strcmp(g.files[i].fd->name, name) == 0)
			return (long)i;
	return -1;
}

static long file_by_symbol(const char *sym)
{
	if (sym[0] == '.')
		sym++;
	for (size_t i = 0; i < g.n_symbols; i++)
		if (strcmp(g.symbols[i].name, sym) == 0)
			return (long)g.symbols[i].file;
	return -1;
}

/* The file, then its transitive dependencies, each once. */
static void collect(size_t f, bool *seen, size_t *order, size_t *n)
{
	if (seen[f])
		return;
	seen[f] = true;
	order[(*n)++] = f;
	for (size_t d = 0; d < g.files[f].fd->n_dependency; d++) {
		long dep = file_by_name(g.files[f].fd->dependency[d]);
		if (dep >= 0)
			collect((size_t)dep, seen, order, n);
	}
}

static void error_response(struct svc_ctx *ctx, Grpc__Reflection__V1__ServerReflectionResponse *r,
                           int code, const char *msg)
{
	Grpc__Reflection__V1__ErrorResponse *e = svc_alloc(ctx, sizeof(*e));
	grpc__reflection__v1__error_response__init(e);
	e->error_code = code;
	e->error_message = svc_strdup(ctx, msg);
	r->message_response_case =
	    GRPC__REFLECTION__V1__SERVER_REFLECTION_RESPONSE__MESSAGE_RESPONSE_ERROR_RESPONSE;
	r->error_response = e;
}

static void files_response(struct svc_ctx *ctx, Grpc__Reflection__V1__ServerReflectionResponse *r,
                           size_t f)
{
	Grpc__Reflection__V1__FileDescriptorResponse *fr = svc_alloc(ctx, sizeof(*fr));
	bool *seen = svc_alloc(ctx, g.n_files * sizeof(bool));
	size_t *order = svc_alloc(ctx, g.n_files * sizeof(size_t));
	size_t n = 0;

	collect(f, seen, order, &n);
	grpc__reflection__v1__file_descriptor_response__init(fr);
	fr->n_file_descriptor_proto = n;
	fr->file_descriptor_proto = svc_alloc(ctx, n * sizeof(ProtobufCBinaryData));
	for (size_t i = 0; i < n; i++) {
		fr->file_descriptor_proto[i].data = g.files[order[i]].bytes;
		fr->file_descriptor_proto[i].len = g.files[order[i]].len;
	}
	r->message_response_case =
	    GRPC__REFLECTION__V1__SERVER_REFLECTION_RESPONSE__MESSAGE_RESPONSE_FILE_DESCRIPTOR_RESPONSE;
	r->file_descriptor_response = fr;
}

enum mat_code rpc_reflection_info(struct svc_ctx *ctx, const ProtobufCMessage *unused)
{
	(void)unused;
	if (svc_reflection_init() != 0)
		return mat_error_set(&ctx->err, MAT_INTERNAL, "reflection index unavailable");
	for (;;) {
		Grpc__Reflection__V1__ServerReflectionRequest *req = NULL;
		Grpc__Reflection__V1__ServerReflectionResponse resp =
		    GRPC__REFLECTION__V1__SERVER_REFLECTION_RESPONSE__INIT;
		enum mat_code rc;
		long f;

		/* v1alpha has the same wire format: decode and answer with v1's messages. */
		rc = svc_stream_recv(ctx,
		                     &grpc__reflection__v1__server_reflection_request__descriptor,
		                     (ProtobufCMessage **)&req);
		if (rc != MAT_OK)
			return rc;
		if (req == NULL)
			return MAT_OK; /* the client half-closed: done */
		resp.valid_host = req->host;
		resp.original_request = req;
		switch (req->message_request_case) {
		case GRPC__REFLECTION__V1__SERVER_REFLECTION_REQUEST__MESSAGE_REQUEST_LIST_SERVICES: {
			Grpc__Reflection__V1__ListServiceResponse *ls = svc_alloc(ctx, sizeof(*ls));
			grpc__reflection__v1__list_service_response__init(ls);
			ls->n_service = g.n_services;
			ls->service = svc_alloc(ctx, g.n_services * sizeof(*ls->service));
			for (size_t i = 0; i < g.n_services; i++) {
				Grpc__Reflection__V1__ServiceResponse *s =
				    svc_alloc(ctx, sizeof(*s));
				grpc__reflection__v1__service_response__init(s);
				s->name = g.services[i];
				ls->service[i] = s;
			}
			resp.message_response_case =
			    GRPC__REFLECTION__V1__SERVER_REFLECTION_RESPONSE__MESSAGE_RESPONSE_LIST_SERVICES_RESPONSE;
			resp.list_services_response = ls;
			break;
		}
		case GRPC__REFLECTION__V1__SERVER_REFLECTION_REQUEST__MESSAGE_REQUEST_FILE_BY_FILENAME:
			f = file_by_name(req->file_by_filename);
			if (f < 0)
				error_response(ctx, &resp, 5, "file not found");
			else
				files_response(ctx, &resp, (size_t)f);
			break;
		case GRPC__REFLECTION__V1__SERVER_REFLECTION_REQUEST__MESSAGE_REQUEST_FILE_CONTAINING_SYMBOL:
			f = file_by_symbol(req->file_containing_symbol);
			if (f < 0)
				error_response(ctx, &resp, 5, "symbol not found");
			else
				files_response(ctx, &resp, (size_t)f);
			break;
		case GRPC__REFLECTION__V1__SERVER_REFLECTION_REQUEST__MESSAGE_REQUEST_FILE_CONTAINING_EXTENSION:
		case GRPC__REFLECTION__V1__SERVER_REFLECTION_REQUEST__MESSAGE_REQUEST_ALL_EXTENSION_NUMBERS_OF_TYPE:
			/* proto3 API: no extensions are declared anywhere. */
			error_response(ctx, &resp, 5, "no extensions");
			break;
		default:
			error_response(ctx, &resp, 3, "empty or unknown reflection request");
			break;
		}
		rc = svc_stream_send(ctx, &resp.base);
		protobuf_c_message_free_unpacked(&req->base, NULL);
		if (rc != MAT_OK)
			return rc;
	}
}
