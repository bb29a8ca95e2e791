/* Error model -> gRPC status, once. */
#include "svc_status.h"

#include "google/protobuf/any.pb-c.h"
#include "google/rpc/error_details.pb-c.h"
#include "google/rpc/status.pb-c.h"
#include "mat_validate.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

grpc_status_code svc_status_from_code(enum mat_code code)
{
	switch (code) {
	case MAT_OK:
		return GRPC_STATUS_OK;
	case MAT_INVALID:
		return GRPC_STATUS_INVALID_ARGUMENT;
	case MAT_NOT_FOUND:
		return GRPC_STATUS_NOT_FOUND;
	case MAT_CONFLICT:
		return GRPC_STATUS_ALREADY_EXISTS;
	case MAT_PRECONDITION:
		return GRPC_STATUS_FAILED_PRECONDITION;
	case MAT_ABORTED:
		return GRPC_STATUS_ABORTED;
	case MAT_UNAVAILABLE:
		return GRPC_STATUS_UNAVAILABLE;
	case MAT_TIMEOUT:
		return GRPC_STATUS_DEADLINE_EXCEEDED;
	case MAT_DENIED:
		return GRPC_STATUS_PERMISSION_DENIED;
	case MAT_UNAUTHENTICATED:
		return GRPC_STATUS_UNAUTHENTICATED;
	case MAT_LIMIT:
		return GRPC_STATUS_RESOURCE_EXHAUSTED;
	case MAT_CANCELLED:
		return GRPC_STATUS_CANCELLED;
	case MAT_UNIMPLEMENTED:
		return GRPC_STATUS_UNIMPLEMENTED;
	case MAT_OUT_OF_RANGE:
		return GRPC_STATUS_OUT_OF_RANGE;
	case MAT_INTERNAL:
		return GRPC_STATUS_INTERNAL;
	}
	return GRPC_STATUS_INTERNAL;
}

const char *svc_status_code_name(grpc_status_code code)
{
	static const char *const names[] = {"OK",
	                                    "Canceled",
	                                    "Unknown",
	                                    "InvalidArgument",
	                                    "DeadlineExceeded",
	                                    "NotFound",
	                                    "AlreadyExists",
	                                    "PermissionDenied",
	                                    "ResourceExhausted",
	                                    "FailedPrecondition",
	                                    "Aborted",
	                                    "OutOfRange",
	                                    "Unimplemented",
	                                    "Internal",
	                                    "Unavailable",
	                                    "DataLoss",
	                                    "Unauthenticated"};
	if ((unsigned)code < sizeof(names) / sizeof(names[0]))
		return names[code];
	return "Unknown";
}

/* google.rpc.Status{code, message, details: [Any(BadRequest)]}, serialized. */
static grpc_slice bad_request_details(const struct mat_error *err, const char *message)
{
	Google__Rpc__BadRequest br = GOOGLE__RPC__BAD_REQUEST__INIT;
	Google__Rpc__BadRequest__FieldViolation fv[MAT_MAX_VIOLATIONS];
	Google__Rpc__BadRequest__FieldViolation *fvp[MAT_MAX_VIOLATIONS];
	Google__Protobuf__Any any = GOOGLE__PROTOBUF__ANY__INIT;
	Google__Protobuf__Any *anyp = &any;
	Google__Rpc__Status st = GOOGLE__RPC__STATUS__INIT;
	uint8_t *br_buf;
	grpc_slice out;
	size_t len;

	for (size_t i = 0; i < err->n_violations; i++) {
		google__rpc__bad_request__field_violation__init(&fv[i]);
		fv[i].field = (char *)err->violations[i].field;
		fv[i].description = (char *)err->violations[i].description;
		fvp[i] = &fv[i];
	}
	br.n_field_violations = err->n_violations;
	br.field_violations = fvp;
	len = google__rpc__bad_request__get_packed_size(&br);
	br_buf = malloc(len ? len : 1);
	if (br_buf == NULL)
		return grpc_empty_slice();
	google__rpc__bad_request__pack(&br, br_buf);
	any.type_url = "type.googleapis.com/google.rpc.BadRequest";
	any.value.data = br_buf;
	any.value.len = len;
	st.code = GRPC_STATUS_INVALID_ARGUMENT;
	st.message = (char *)message;
	st.n_details = 1;
	st.details = &anyp;
	out = grpc_slice_malloc(google__rpc__status__get_packed_size(&st));
	google__rpc__status__pack(&st, GRPC_SLICE_START_PTR(out));
	free(br_buf);
	return out;
}

void svc_status_build(enum mat_code code, const struct mat_error *err, struct svc_status *st)
{
	memset(st, 0, sizeof(*st));
	st->code = svc_status_from_code(code);
	if (code == MAT_OK)
		st->text[0] = '\0';
	else if (code == MAT_INTERNAL)
		snprintf(st->text, sizeof(st->text), "internal error");
	else if (code == MAT_UNAVAILABLE)
		/* Storage's message names the database host or socket and libpq's reason: the
		 * call's log line keeps it; the client learns only that it may retry. */
		snprintf(st->text, sizeof(st->text), "%s", SVC_STATUS_UNAVAILABLE_TEXT);
	else if (err->message[0] != '\0')
		snprintf(st->text, sizeof(st->text), "%s", err->message);
	else
		snprintf(st->text, sizeof(st->text), "%s", mat_code_name(code));
	st->message = st->text;
	st->details = grpc_slice_from_copied_string(st->text);
	if (code == MAT_INVALID && err->n_violations > 0) {
		st->trailing[0].key = grpc_slice_from_static_string("grpc-status-details-bin");
		st->trailing[0].value = bad_request_details(err, st->text);
		st->n_trailing = 1;
	}
}

void svc_status_cleanup(struct svc_status *st)
{
	grpc_slice_unref(st->details);
	for (size_t i = 0; i < st->n_trailing; i++) {
		grpc_slice_unref(st->trailing[i].key);
		grpc_slice_unref(st->trailing[i].value);
	}
	st->n_trailing = 0;
}

/* The path of a field, built only when a violation needs it (a request has many strings and
 * almost never a bad one: formatting every path cost a third of EvaluateAnswers' CPU). */
struct path_seg {
	const struct path_seg *parent;
	const char *name;
	long index; /* -1: not a list element */
};

static size_t path_format(const struct path_seg *p, char *buf, size_t cap)
{
	size_t n = 0;
	int w;

	if (p == NULL)
		return 0;
	n = path_format(p->parent, buf, cap);
	if (p->name != NULL) {
		w = snprintf(buf + n, n < cap ? cap - n : 0, "%s%s", n > 0 ? "." : "", p->name);
		n += w > 0 ? (size_t)w : 0;
	}
	if (p->index >= 0) {
		w = snprintf(buf + n, n < cap ? cap - n : 0, "[%ld]", p->index);
		n += w > 0 ? (size_t)w : 0;
	}
	return n < cap ? n : cap - 1;
}

static bool check_string(const char *s, const struct path_seg *path, struct mat_error *err)
{
	char buf[96];

	if (s == NULL || mat_utf8_valid(s, strlen(s)))
		return true;
	buf[0] = '\0';
	path_format(path, buf, sizeof(buf));
	mat_error_field(err, buf, "is not valid UTF-8");
	return false;
}

static bool walk(const ProtobufCMessage *m, const struct path_seg *parent, struct mat_error *err)
{
	const ProtobufCMessageDescriptor *d = m->descriptor;

	for (unsigned i = 0; i < d->n_fields; i++) {
		const ProtobufCFieldDescriptor *f = &d->fields[i];
		const char *base = (const char *)m;
		struct path_seg seg = {parent, f->name, -1};

		if (f->type != PROTOBUF_C_TYPE_STRING && f->type != PROTOBUF_C_TYPE_MESSAGE)
			continue;
		if (f->flags & PROTOBUF_C_FIELD_FLAG_ONEOF) {
			uint32_t which = *(const uint32_t *)(base + f->quantifier_offset);
			if (which != f->id)
				continue;
		}
		if (f->label == PROTOBUF_C_LABEL_REPEATED) {
			size_t n = *(const size_t *)(base + f->quantifier_offset);
			void *const *arr = *(void *const *const *)(base + f->offset);
			for (size_t k = 0; k < n; k++) {
				struct path_seg item = {parent, f->name, (long)k};
				if (f->type == PROTOBUF_C_TYPE_STRING) {
					if (!check_string(arr[k], &item, err))
						return false;
				} else {
					/* A map entry's key/value report as the map field. */
					const ProtobufCMessage *sub = arr[k];
					bool is_map =
					    sub->descriptor->n_fields == 2 &&
					    strcmp(sub->descriptor->fields[0].name, "key") == 0;
					if (!walk(sub, is_map ? &seg : &item, err))
						return false;
				}
			}
			continue;
		}
		if (f->type == PROTOBUF_C_TYPE_STRING) {
			if (!check_string(*(char *const *)(base + f->offset), &seg, err))
				return false;
		} else {
			const ProtobufCMessage *sub =
			    *(const ProtobufCMessage *const *)(base + f->offset);
			if (sub != NULL && !walk(sub, &seg, err))
				return false;
		}
	}
	return true;
}

bool svc_check_utf8(const ProtobufCMessage *msg, struct mat_error *err)
{
	return walk(msg, NULL, err);
}
