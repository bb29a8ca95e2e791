/* traceparent parsing (W3C Trace Context, level 1). */
#include "svc_trace.h"

#include <string.h>

static bool lower_hex(const char *s, size_t n, bool *all_zero)
{
	*all_zero = true;
	for (size_t i = 0; i < n; i++) {
		char c = s[i];
		if (!((c >= '0' && c <= '9') || (c >= 'a' && c <= 'f')))
			return false;
		if (c != '0')
			*all_zero = false;
	}
	return true;
}

bool svc_trace_parse(const char *v, size_t len, struct svc_trace *out)
{
	bool zero;

	memset(out, 0, sizeof(*out));
	/* version(2) - trace-id(32) - parent-id(16) - flags(2) = 55; a later version may append
	 * "-..." fields, version 00 may not. */
	if (len < 55 || v[2] != '-' || v[35] != '-' || v[52] != '-')
		return false;
	if (!lower_hex(v, 2, &zero) || (v[0] == 'f' && v[1] == 'f'))
		return false;
	if (len > 55 && (memcmp(v, "00", 2) == 0 || v[55] != '-'))
		return false;
	if (!lower_hex(v + 3, 32, &zero) || zero)
		return false;
	if (!lower_hex(v + 36, 16, &zero) || zero)
		return false;
	if (!lower_hex(v + 53, 2, &zero))
		return false;
	memcpy(out->trace_id, v + 3, 32);
	memcpy(out->span_id, v + 36, 16);
	return true;
}

void svc_trace_from_metadata(const grpc_metadata_array *md, struct svc_trace *out)
{
	memset(out, 0, sizeof(*out));
	for (size_t i = 0; i < md->count; i++) {
		const grpc_metadata *m = &md->metadata[i];
		if (GRPC_SLICE_LENGTH(m->key) == 11 &&
		    memcmp(GRPC_SLICE_START_PTR(m->key), "traceparent", 11) == 0) {
			svc_trace_parse((const char *)GRPC_SLICE_START_PTR(m->value),
			                GRPC_SLICE_LENGTH(m->value), out);
			return;
		}
	}
}
