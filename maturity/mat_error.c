/* The error model's helpers: formatting messages and field violations. */
#include "mat_error.h"

#include <stdarg.h>
#include <stdio.h>
#include <string.h>

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
	return code;
}

enum mat_code mat_error_field(struct mat_error *e, const char *field, const char *fmt, ...)
{
	va_list ap;
	char desc[sizeof(e->violations[0].description)];

	if (e == NULL)
		return MAT_INVALID;
	va_start(ap, fmt);
	vsnprintf(desc, sizeof(desc), fmt, ap);
	va_end(ap);
	if (e->code != MAT_INVALID || e->n_violations == 0)
		snprintf(e->message, sizeof(e->message), "%s: %s", field, desc);
	e->code = MAT_INVALID;
	if (e->n_violations < MAT_MAX_VIOLATIONS) {
		struct mat_violation *v = &e->violations[e->n_violations++];
		snprintf(v->field, sizeof(v->field), "%s", field);
		snprintf(v->description, sizeof(v->description), "%s", desc);
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
