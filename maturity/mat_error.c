/* The error model's helpers: formatting messages and field violations. */
#include "mat_error.h"

#include <stdarg.h>
#include <stdio.h>
#include <string.h>

/* Messages end up in google.rpc.Status, a proto3 string that must be valid UTF-8: when a
 * formatted text is cut to its buffer, drop the incomplete character the cut left at the end. */
static void trim_partial_utf8(char *s)
{
	size_t len = strlen(s);
	size_t start = len;
	size_t want;
	unsigned char lead;

	/* Back over at most three continuation bytes to the last lead byte. */
	while (start > 0 && len - start < 3 && ((unsigned char)s[start - 1] & 0xC0) == 0x80)
		start--;
	if (start == 0)
		return;
	lead = (unsigned char)s[start - 1];
	if (lead >= 0xF0)
		want = 4;
	else if (lead >= 0xE0)
		want = 3;
	else if (lead >= 0xC0)
		want = 2;
	else
		return; /* ASCII: nothing was cut */
	if (len - (start - 1) < want)
		s[start - 1] = '\0';
}

void mat_error_clear(struct mat_error *e)
{
	if (e == NULL)
		return;
	e->code = MAT_OK;
	e->message[0] = '\0';
	e->n_violations = 0;
}

enum mat_code mat_error_set(struct mat_error *e, enum mat_code code, const char *fmt, ...)
{
	va_list ap;

	if (e == NULL)
		return code;
	e->code = code;
	va_start(ap, fmt);
	vsnprintf(e->message, sizeof(e->message), fmt, ap);
	va_end(ap);
	trim_partial_utf8(e->message);
	return code;
}

#define OMITTED " (more violations omitted)"

enum mat_code mat_error_field(struct mat_error *e, const char *field, const char *fmt, ...)
{
	va_list ap;
	char desc[sizeof(e->violations[0].description)];

	if (e == NULL)
		return MAT_INVALID;
	va_start(ap, fmt);
	vsnprintf(desc, sizeof(desc), fmt, ap);
	va_end(ap);
	trim_partial_utf8(desc);
	if (e->code != MAT_INVALID || e->n_violations == 0) {
		snprintf(e->message, sizeof(e->message), "%s: %s", field, desc);
		trim_partial_utf8(e->message);
	}
	e->code = MAT_INVALID;
	if (e->n_violations < MAT_MAX_VIOLATIONS) {
		struct mat_violation *v = &e->violations[e->n_violations++];
		snprintf(v->field, sizeof(v->field), "%s", field);
		trim_partial_utf8(v->field);
		snprintf(v->description, sizeof(v->description), "%s", desc);
	} else if (strstr(e->message, OMITTED) == NULL) {
		/* The header promises the message tells that violations were dropped; say so once,
		 * cutting the first violation's text if the message is full. */
		size_t room = sizeof(e->message) - sizeof(OMITTED);
		if (strlen(e->message) > room) {
			e->message[room] = '\0';
			trim_partial_utf8(e->message);
		}
		strcat(e->message, OMITTED);
	}
	return MAT_INVALID;
}

const char *mat_code_name(enum mat_code code)
{
	switch (code) {
#define MAT_X(name, text) \
	case MAT_##name:  \
		return #name;
		MAT_ERRNO_MAP(MAT_X)
#undef MAT_X
	}
	return "UNKNOWN_CODE";
}
