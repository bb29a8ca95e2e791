/* The proto3 JSON mapping over protobuf-c descriptors (see ctl_json.h). Messages built here are
 * allocated with malloc so that protobuf_c_message_free_unpacked(msg, NULL) frees them; every
 * pointer is stored in the message as soon as it is allocated, so a conversion that fails half
 * way is freed the same way. */
#include "ctl_json.h"

#include "google/protobuf/duration.pb-c.h"
#include "google/protobuf/field_mask.pb-c.h"
#include "google/protobuf/timestamp.pb-c.h"

#include <ctype.h>
#include <errno.h>
#include <inttypes.h>
#include <math.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

/* Seconds of 0001-01-01T00:00:00Z and 9999-12-31T23:59:59Z: the range of Timestamp. */
#define TS_MIN_SECONDS INT64_C(-62135596800)
#define TS_MAX_SECONDS INT64_C(253402300799)
/* Duration's range: about ±10,000 years. */
#define DUR_MAX_SECONDS INT64_C(315576000000)

struct conv {
	char *err;
	size_t n;
	char path[512];
};

static int fail(struct conv *c, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static int fail(struct conv *c, const char *fmt, ...)
{
	char msg[400];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	if (c->err != NULL && c->n > 0) {
		if (c->path[0] != '\0')
			snprintf(c->err, c->n, "%s: %s", c->path, msg);
		else
			snprintf(c->err, c->n, "%s", msg);
	}
	return -1;
}

/* ---- names ---- */

static void to_camel(const char *name, char *out, size_t n)
{
	size_t k = 0;
	bool up = false;

	for (; *name != '\0' && k + 1 < n; name++) {
		if (*name == '_') {
			up = true;
			continue;
		}
		out[k++] = up ? (char)toupper((unsigned char)*name) : *name;
		up = false;
	}
	out[k] = '\0';
}

static void to_snake(const char *name, char *out, size_t n)
{
	size_t k = 0;

	for (; *name != '\0' && k + 2 < n; name++) {
		if (isupper((unsigned char)*name)) {
			out[k++] = '_';
			out[k++] = (char)tolower((unsigned char)*name);
		} else {
			out[k++] = *name;
		}
	}
	out[k] = '\0';
}

static const ProtobufCFieldDescriptor *find_field(const ProtobufCMessageDescriptor *d,
                                                  const char *key)
{
	const ProtobufCFieldDescriptor *f = protobuf_c_message_descriptor_get_field_by_name(d, key);
	char camel[256];

	if (f != NULL)
		return f;
	for (unsigned i = 0; i < d->n_fields; i++) {
		to_camel(d->fields[i].name, camel, sizeof(camel));
		if (strcmp(camel, key) == 0)
			return &d->fields[i];
	}
	return NULL;
}

/* protobuf-c marks no map entries: a map field is a repeated message whose type is a nested
 * "...Entry" with exactly `key` = 1 and `value` = 2, which is what protoc generates for it. */
static bool is_map_entry(const ProtobufCMessageDescriptor *d)
{
	size_t len = strlen(d->short_name);

	return d->n_fields == 2 && len > 5 && strcmp(d->short_name + len - 5, "Entry") == 0 &&
	       d->fields[0].id == 1 && strcmp(d->fields[0].name, "key") == 0 &&
	       d->fields[1].id == 2 && strcmp(d->fields[1].name, "value") == 0;
}

static bool is_map_field(const ProtobufCFieldDescriptor *f)
{
	return f->label == PROTOBUF_C_LABEL_REPEATED && f->type == PROTOBUF_C_TYPE_MESSAGE &&
	       is_map_entry(f->descriptor);
}

static bool is_type(const ProtobufCMessageDescriptor *d, const char *full)
{
	return strcmp(d->name, full) == 0;
}

/* ---- base64 ---- */

static const char b64[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";

char *ctl_base64_encode(const uint8_t *data, size_t len)
{
	char *out = malloc((len + 2) / 3 * 4 + 1);
	size_t k = 0;

	if (out == NULL)
		return NULL;
	for (size_t i = 0; i < len; i += 3) {
		uint32_t v = (uint32_t)data[i] << 16;
		if (i + 1 < len)
			v |= (uint32_t)data[i + 1] << 8;
		if (i + 2 < len)
			v |= data[i + 2];
		out[k++] = b64[(v >> 18) & 63];
		out[k++] = b64[(v >> 12) & 63];
		out[k++] = i + 1 < len ? b64[(v >> 6) & 63] : '=';
		out[k++] = i + 2 < len ? b64[v & 63] : '=';
	}
	out[k] = '\0';
	return out;
}

static int b64_value(char ch)
{
	if (ch >= 'A' && ch <= 'Z')
		return ch - 'A';
	if (ch >= 'a' && ch <= 'z')
		return ch - 'a' + 26;
	if (ch >= '0' && ch <= '9')
		return ch - '0' + 52;
	if (ch == '+' || ch == '-')
		return 62;
	if (ch == '/' || ch == '_')
		return 63;
	return -1;
}

int ctl_base64_decode(const char *s, uint8_t **out, size_t *len)
{
	size_t n = strlen(s);
	uint8_t *buf;
	uint32_t acc = 0;
	int bits = 0;
	size_t k = 0;

	*out = NULL;
	*len = 0;
	while (n > 0 && s[n - 1] == '=')
		n--;
	if (n % 4 == 1 || strlen(s) - n > 2)
		return -1;
	buf = malloc(n * 3 / 4 + 1);
	if (buf == NULL)
		return -1;
	for (size_t i = 0; i < n; i++) {
		int v = b64_value(s[i]);
		if (v < 0) {
			free(buf);
			return -1;
		}
		acc = (acc << 6) | (uint32_t)v;
		bits += 6;
		if (bits >= 8) {
			bits -= 8;
			buf[k++] = (uint8_t)(acc >> bits);
		}
	}
	*out = buf;
	*len = k;
	return 0;
}

/* ---- Timestamp and Duration ---- */

static int digits(const char **p, int count, int *out)
{
	int v = 0;

	for (int i = 0; i < count; i++) {
		if (!isdigit((unsigned char)**p))
			return -1;
		v = v * 10 + (**p - '0');
		(*p)++;
	}
	*out = v;
	return 0;
}

/* Up to nine fractional digits after a '.', as nanoseconds. */
static int fraction(const char **p, int32_t *nanos)
{
	int32_t v = 0;
	int k = 0;

	*nanos = 0;
	if (**p != '.')
		return 0;
	(*p)++;
	while (isdigit((unsigned char)**p)) {
		if (k == 9)
			return -1;
		v = v * 10 + (**p - '0');
		k++;
		(*p)++;
	}
	if (k == 0)
		return -1;
	for (; k < 9; k++)
		v *= 10;
	*nanos = v;
	return 0;
}

int ctl_time_parse(const char *s, int64_t *seconds, int32_t *nanos)
{
	const char *p = s;
	int y, mo, d, h, mi, se, oh = 0, om = 0, sign = 0;
	struct tm tm = {0};
	int32_t ns;
	int64_t t;

	if (digits(&p, 4, &y) || *p++ != '-' || digits(&p, 2, &mo) || *p++ != '-' ||
	    digits(&p, 2, &d) || (*p != 'T' && *p != 't' && *p != ' '))
		return -1;
	p++;
	if (digits(&p, 2, &h) || *p++ != ':' || digits(&p, 2, &mi) || *p++ != ':' ||
	    digits(&p, 2, &se) || fraction(&p, &ns))
		return -1;
	if (*p == 'Z' || *p == 'z') {
		p++;
	} else if (*p == '+' || *p == '-') {
		sign = *p == '+' ? 1 : -1;
		p++;
		if (digits(&p, 2, &oh) || *p++ != ':' || digits(&p, 2, &om))
			return -1;
	} else {
		return -1;
	}
	if (*p != '\0' || mo < 1 || mo > 12 || d < 1 || d > 31 || h > 23 || mi > 59 || se > 60)
		return -1;
	tm.tm_year = y - 1900;
	tm.tm_mon = mo - 1;
	tm.tm_mday = d;
	tm.tm_hour = h;
	tm.tm_min = mi;
	tm.tm_sec = se;
	t = (int64_t)timegm(&tm) - (int64_t)sign * (oh * 3600 + om * 60);
	if (t < TS_MIN_SECONDS || t > TS_MAX_SECONDS)
		return -1;
	*seconds = t;
	*nanos = ns;
	return 0;
}

/* ".5", ".500001", "" and so on: 0, 3, 6 or 9 digits, as proto3 JSON prints them. */
static void format_nanos(int32_t nanos, char *buf, size_t n)
{
	if (nanos == 0)
		buf[0] = '\0';
	else if (nanos % 1000000 == 0)
		snprintf(buf, n, ".%03d", (int)(nanos / 1000000));
	else if (nanos % 1000 == 0)
		snprintf(buf, n, ".%06d", (int)(nanos / 1000));
	else
		snprintf(buf, n, ".%09d", (int)nanos);
}

void ctl_time_format(int64_t seconds, int32_t nanos, char *buf, size_t n)
{
	time_t t = (time_t)seconds;
	struct tm tm;
	char date[32], frac[16];

	gmtime_r(&t, &tm);
	strftime(date, sizeof(date), "%Y-%m-%dT%H:%M:%S", &tm);
	format_nanos(nanos < 0 ? 0 : nanos, frac, sizeof(frac));
	snprintf(buf, n, "%s%sZ", date, frac);
}

static int duration_parse(const char *s, int64_t *seconds, int32_t *nanos)
{
	const char *p = s;
	bool neg = false;
	int64_t v = 0;
	int32_t ns;
	int k = 0;

	if (*p == '-') {
		neg = true;
		p++;
	}
	while (isdigit((unsigned char)*p)) {
		if (v > DUR_MAX_SECONDS)
			return -1;
		v = v * 10 + (*p - '0');
		p++;
		k++;
	}
	if (k == 0 || fraction(&p, &ns) || strcmp(p, "s") != 0 || v > DUR_MAX_SECONDS)
		return -1;
	*seconds = neg ? -v : v;
	*nanos = neg ? -ns : ns;
	return 0;
}

static void duration_format(int64_t seconds, int32_t nanos, char *buf, size_t n)
{
	char frac[16];
	bool neg = seconds < 0 || nanos < 0;
	uint64_t s = seconds < 0 ? (uint64_t)0 - (uint64_t)seconds : (uint64_t)seconds;

	format_nanos(nanos < 0 ? -nanos : nanos, frac, sizeof(frac));
	snprintf(buf, n, "%s%" PRIu64 "%ss", neg ? "-" : "", s, frac);
}

/* ---- JSON -> message ---- */

static int build_message(struct conv *c, const ProtobufCMessageDescriptor *d, const json_t *in,
                         ProtobufCMessage *m);

static size_t elem_size(ProtobufCType t)
{
	switch (t) {
	case PROTOBUF_C_TYPE_INT32:
	case PROTOBUF_C_TYPE_SINT32:
	case PROTOBUF_C_TYPE_SFIXED32:
	case PROTOBUF_C_TYPE_UINT32:
	case PROTOBUF_C_TYPE_FIXED32:
	case PROTOBUF_C_TYPE_ENUM:
		return 4;
	case PROTOBUF_C_TYPE_INT64:
	case PROTOBUF_C_TYPE_SINT64:
	case PROTOBUF_C_TYPE_SFIXED64:
	case PROTOBUF_C_TYPE_UINT64:
	case PROTOBUF_C_TYPE_FIXED64:
		return 8;
	case PROTOBUF_C_TYPE_FLOAT:
		return sizeof(float);
	case PROTOBUF_C_TYPE_DOUBLE:
		return sizeof(double);
	case PROTOBUF_C_TYPE_BOOL:
		return sizeof(protobuf_c_boolean);
	case PROTOBUF_C_TYPE_STRING:
		return sizeof(char *);
	case PROTOBUF_C_TYPE_BYTES:
		return sizeof(ProtobufCBinaryData);
	case PROTOBUF_C_TYPE_MESSAGE:
		return sizeof(ProtobufCMessage *);
	}
	return 0;
}

/* A signed integer from a JSON number (integral) or a string holding one. */
static int get_int(struct conv *c, const json_t *v, int64_t lo, int64_t hi, int64_t *out)
{
	long long x;

	if (json_is_integer(v)) {
		x = json_integer_value(v);
	} else if (json_is_real(v)) {
		double r = json_real_value(v);
		if (r != floor(r) || r < -9.2e18 || r > 9.2e18)
			return fail(c, "expected an integer, got %g", r);
		x = (long long)r;
	} else if (json_is_string(v)) {
		const char *s = json_string_value(v);
		char *end;
		errno = 0;
		x = strtoll(s, &end, 10);
		if (*s == '\0' || *end != '\0' || errno != 0 || isspace((unsigned char)*s))
			return fail(c, "expected an integer, got \"%s\"", s);
	} else {
		return fail(c, "expected an integer");
	}
	if (x < lo || x > hi)
		return fail(c, "%lld is out of range", x);
	*out = x;
	return 0;
}

static int get_uint(struct conv *c, const json_t *v, uint64_t hi, uint64_t *out)
{
	if (json_is_string(v)) {
		const char *s = json_string_value(v);
		char *end;
		unsigned long long x;
		errno = 0;
		x = strtoull(s, &end, 10);
		if (!isdigit((unsigned char)*s) || *end != '\0' || errno != 0)
			return fail(c, "expected an unsigned integer, got \"%s\"", s);
		if (x > hi)
			return fail(c, "%s is out of range", s);
		*out = x;
		return 0;
	}
	int64_t x = 0; /* Release (-O2) gcc: maybe-uninitialized, a false positive */
	if (get_int(c, v, 0, INT64_MAX, &x))
		return -1;
	if ((uint64_t)x > hi)
		return fail(c, "%" PRId64 " is out of range", x);
	*out = (uint64_t)x;
	return 0;
}

static int get_double(struct conv *c, const json_t *v, double *out)
{
	if (json_is_number(v)) {
		*out = json_number_value(v);
		return 0;
	}
	if (json_is_string(v)) {
		const char *s = json_string_value(v);
		char *end;
		if (strcmp(s, "NaN") == 0) {
			*out = NAN;
			return 0;
		}
		if (strcmp(s, "Infinity") == 0 || strcmp(s, "-Infinity") == 0) {
			*out = s[0] == '-' ? -INFINITY : INFINITY;
			return 0;
		}
		*out = strtod(s, &end);
		if (*s != '\0' && *end == '\0')
			return 0;
		return fail(c, "expected a number, got \"%s\"", s);
	}
	return fail(c, "expected a number");
}

static int set_wkt_string(struct conv *c, const ProtobufCMessageDescriptor *d, const json_t *v,
                          ProtobufCMessage *m)
{
	const char *s;

	if (!json_is_string(v))
		return fail(c, "expected a string for %s", d->name);
	s = json_string_value(v);
	if (is_type(d, "google.protobuf.Timestamp")) {
		Google__Protobuf__Timestamp *t = (Google__Protobuf__Timestamp *)m;
		if (ctl_time_parse(s, &t->seconds, &t->nanos))
			return fail(c, "\"%s\" is not an RFC 3339 time (e.g. 2026-01-02T03:04:05Z)",
			            s);
		return 0;
	}
	if (is_type(d, "google.protobuf.Duration")) {
		Google__Protobuf__Duration *du = (Google__Protobuf__Duration *)m;
		if (duration_parse(s, &du->seconds, &du->nanos))
			return fail(c, "\"%s\" is not a duration in seconds (e.g. \"1.5s\")", s);
		return 0;
	}
	/* FieldMask: comma-separated lowerCamelCase paths. */
	Google__Protobuf__FieldMask *fm = (Google__Protobuf__FieldMask *)m;
	size_t count = 0;
	const char *p;

	if (*s == '\0')
		return 0;
	count = 1;
	for (p = s; *p != '\0'; p++)
		count += *p == ',';
	fm->paths = calloc(count, sizeof(char *));
	if (fm->paths == NULL)
		return fail(c, "out of memory");
	fm->n_paths = count;
	p = s;
	for (size_t i = 0; i < count; i++) {
		const char *e = strchr(p, ',');
		size_t len = e != NULL ? (size_t)(e - p) : strlen(p);
		char camel[256], snake[512];
		if (len == 0 || len >= sizeof(camel))
			return fail(c, "empty or overlong path in field mask \"%s\"", s);
		memcpy(camel, p, len);
		camel[len] = '\0';
		to_snake(camel, snake, sizeof(snake));
		fm->paths[i] = strdup(snake);
		if (fm->paths[i] == NULL)
			return fail(c, "out of memory");
		p = e != NULL ? e + 1 : p + len;
	}
	return 0;
}

static bool is_string_wkt(const ProtobufCMessageDescriptor *d)
{
	return is_type(d, "google.protobuf.Timestamp") || is_type(d, "google.protobuf.Duration") ||
	       is_type(d, "google.protobuf.FieldMask");
}

/* Stores one value of field f into dst (a singular member, a oneof member or an array slot). */
static int set_value(struct conv *c, const ProtobufCFieldDescriptor *f, const json_t *v, void *dst)
{
	int64_t i;
	uint64_t u;
	double dbl;

	switch (f->type) {
	case PROTOBUF_C_TYPE_INT32:
	case PROTOBUF_C_TYPE_SINT32:
	case PROTOBUF_C_TYPE_SFIXED32:
		if (get_int(c, v, INT32_MIN, INT32_MAX, &i))
			return -1;
		*(int32_t *)dst = (int32_t)i;
		return 0;
	case PROTOBUF_C_TYPE_INT64:
	case PROTOBUF_C_TYPE_SINT64:
	case PROTOBUF_C_TYPE_SFIXED64:
		if (get_int(c, v, INT64_MIN, INT64_MAX, &i))
			return -1;
		*(int64_t *)dst = i;
		return 0;
	case PROTOBUF_C_TYPE_UINT32:
	case PROTOBUF_C_TYPE_FIXED32:
		if (get_uint(c, v, UINT32_MAX, &u))
			return -1;
		*(uint32_t *)dst = (uint32_t)u;
		return 0;
	case PROTOBUF_C_TYPE_UINT64:
	case PROTOBUF_C_TYPE_FIXED64:
		if (get_uint(c, v, UINT64_MAX, &u))
			return -1;
		*(uint64_t *)dst = u;
		return 0;
	case PROTOBUF_C_TYPE_FLOAT:
		if (get_double(c, v, &dbl))
			return -1;
		*(float *)dst = (float)dbl;
		return 0;
	case PROTOBUF_C_TYPE_DOUBLE:
		if (get_double(c, v, &dbl))
			return -1;
		*(double *)dst = dbl;
		return 0;
	case PROTOBUF_C_TYPE_BOOL:
		if (!json_is_boolean(v))
			return fail(c, "expected true or false");
		*(protobuf_c_boolean *)dst = json_is_true(v);
		return 0;
	case PROTOBUF_C_TYPE_ENUM: {
		const ProtobufCEnumDescriptor *ed = f->descriptor;
		if (json_is_string(v)) {
			const ProtobufCEnumValue *ev =
			    protobuf_c_enum_descriptor_get_value_by_name(ed, json_string_value(v));
			if (ev == NULL)
				return fail(c, "\"%s\" is not a value of %s", json_string_value(v),
				            ed->name);
			*(int32_t *)dst = ev->value;
			return 0;
		}
		if (get_int(c, v, INT32_MIN, INT32_MAX, &i))
			return -1;
		*(int32_t *)dst = (int32_t)i;
		return 0;
	}
	case PROTOBUF_C_TYPE_STRING: {
		char *s;
		if (!json_is_string(v))
			return fail(c, "expected a string");
		s = strdup(json_string_value(v));
		if (s == NULL)
			return fail(c, "out of memory");
		*(char **)dst = s;
		return 0;
	}
	case PROTOBUF_C_TYPE_BYTES: {
		ProtobufCBinaryData *b = dst;
		uint8_t *data;
		size_t len;
		if (!json_is_string(v))
			return fail(c, "expected a base64 string");
		if (ctl_base64_decode(json_string_value(v), &data, &len))
			return fail(c, "not valid base64");
		b->data = data;
		b->len = len;
		return 0;
	}
	case PROTOBUF_C_TYPE_MESSAGE: {
		const ProtobufCMessageDescriptor *md = f->descriptor;
		ProtobufCMessage *sub = malloc(md->sizeof_message);
		if (sub == NULL)
			return fail(c, "out of memory");
		protobuf_c_message_init(md, sub);
		/* Owned by the parent from here on, also if the conversion below fails. */
		*(ProtobufCMessage **)dst = sub;
		if (is_string_wkt(md))
			return set_wkt_string(c, md, v, sub);
		return build_message(c, md, v, sub);
	}
	}
	return fail(c, "unsupported field type");
}

static int set_map(struct conv *c, const ProtobufCFieldDescriptor *f, const json_t *v,
                   ProtobufCMessage *m)
{
	const ProtobufCMessageDescriptor *ed = f->descriptor;
	const ProtobufCFieldDescriptor *kf = &ed->fields[0], *vf = &ed->fields[1];
	ProtobufCMessage **arr;
	const char *key;
	json_t *val;
	size_t i = 0, plen = strlen(c->path);

	if (!json_is_object(v))
		return fail(c, "expected an object");
	if (json_object_size(v) == 0)
		return 0;
	arr = calloc(json_object_size(v), sizeof(*arr));
	if (arr == NULL)
		return fail(c, "out of memory");
	*(ProtobufCMessage ***)((char *)m + f->offset) = arr;
	*(size_t *)((char *)m + f->quantifier_offset) = json_object_size(v);
	json_object_foreach((json_t *)v, key, val)
	{
		json_t *kj;
		int rc;

		arr[i] = malloc(ed->sizeof_message);
		if (arr[i] == NULL)
			return fail(c, "out of memory");
		protobuf_c_message_init(ed, arr[i]);
		snprintf(c->path + plen, sizeof(c->path) - plen, "[%s]", key);
		/* Keys are strings in JSON whatever their type; bools are "true"/"false". */
		if (kf->type == PROTOBUF_C_TYPE_BOOL)
			kj = strcmp(key, "true") == 0    ? json_true()
			     : strcmp(key, "false") == 0 ? json_false()
			                                 : json_string(key);
		else
			kj = json_string(key);
		rc = kj == NULL ? fail(c, "out of memory")
		                : set_value(c, kf, kj, (char *)arr[i] + kf->offset);
		json_decref(kj);
		if (rc)
			return -1;
		if (set_value(c, vf, val, (char *)arr[i] + vf->offset))
			return -1;
		c->path[plen] = '\0';
		i++;
	}
	return 0;
}

static int set_field(struct conv *c, const ProtobufCFieldDescriptor *f, const json_t *v,
                     ProtobufCMessage *m)
{
	char *base = (char *)m;

	if (is_map_field(f))
		return set_map(c, f, v, m);
	if (f->label == PROTOBUF_C_LABEL_REPEATED) {
		size_t n, es = elem_size(f->type), plen = strlen(c->path);
		char *arr;
		if (!json_is_array(v))
			return fail(c, "expected an array");
		n = json_array_size(v);
		if (n == 0)
			return 0;
		arr = calloc(n, es);
		if (arr == NULL)
			return fail(c, "out of memory");
		*(void **)(base + f->offset) = arr;
		*(size_t *)(base + f->quantifier_offset) = n;
		for (size_t i = 0; i < n; i++) {
			json_t *e = json_array_get(v, i);
			snprintf(c->path + plen, sizeof(c->path) - plen, "[%zu]", i);
			if (json_is_null(e))
				return fail(c, "null is not allowed in a list");
			if (set_value(c, f, e, arr + i * es))
				return -1;
		}
		c->path[plen] = '\0';
		return 0;
	}
	if (f->flags & PROTOBUF_C_FIELD_FLAG_ONEOF) {
		uint32_t *which = (uint32_t *)(base + f->quantifier_offset);
		if (*which != 0 && *which != f->id)
			return fail(c, "another field of the same oneof is already set");
		if (set_value(c, f, v, base + f->offset))
			return -1;
		*which = f->id;
		return 0;
	}
	if (f->type == PROTOBUF_C_TYPE_STRING) {
		/* Replace the shared default ("") only after the new value is in hand. */
		char *old = *(char **)(base + f->offset);
		if (set_value(c, f, v, base + f->offset))
			return -1;
		if (old != NULL && old != f->default_value)
			free(old);
		return 0;
	}
	if (f->label == PROTOBUF_C_LABEL_OPTIONAL && f->type != PROTOBUF_C_TYPE_MESSAGE &&
	    f->quantifier_offset != 0) {
		if (set_value(c, f, v, base + f->offset))
			return -1;
		*(protobuf_c_boolean *)(base + f->quantifier_offset) = 1;
		return 0;
	}
	return set_value(c, f, v, base + f->offset);
}

static int build_message(struct conv *c, const ProtobufCMessageDescriptor *d, const json_t *in,
                         ProtobufCMessage *m)
{
	const char *key;
	json_t *v;
	size_t plen = strlen(c->path);
	bool *seen;
	int rc = -1;

	if (!json_is_object(in))
		return fail(c, "expected an object for %s", d->name);
	seen = calloc(d->n_fields + 1, sizeof(bool));
	if (seen == NULL)
		return fail(c, "out of memory");
	json_object_foreach((json_t *)in, key, v)
	{
		const ProtobufCFieldDescriptor *f = find_field(d, key);
		char camel[256];

		if (f == NULL) {
			fail(c, "unknown field \"%s\" in %s", key, d->name);
			goto out;
		}
		to_camel(f->name, camel, sizeof(camel));
		snprintf(c->path + plen, sizeof(c->path) - plen, "%s%s", plen ? "." : "", camel);
		if (seen[f - d->fields]) {
			fail(c, "given twice");
			goto out;
		}
		seen[f - d->fields] = true;
		/* null means "the default": leave the field unset. */
		if (!json_is_null(v) && set_field(c, f, v, m))
			goto out;
		c->path[plen] = '\0';
	}
	rc = 0;
out:
	free(seen);
	return rc;
}

int ctl_json_to_message(const ProtobufCMessageDescriptor *desc, const json_t *in,
                        ProtobufCMessage **out, char *err, size_t n)
{
	struct conv c = {.err = err, .n = n};
	ProtobufCMessage *m;
	int rc;

	*out = NULL;
	m = malloc(desc->sizeof_message);
	if (m == NULL)
		return fail(&c, "out of memory");
	protobuf_c_message_init(desc, m);
	if (is_string_wkt(desc))
		rc = set_wkt_string(&c, desc, in, m);
	else
		rc = build_message(&c, desc, in, m);
	if (rc) {
		protobuf_c_message_free_unpacked(m, NULL);
		return -1;
	}
	*out = m;
	return 0;
}

int ctl_json_parse_message(const ProtobufCMessageDescriptor *desc, const char *text,
                           ProtobufCMessage **out, char *err, size_t n)
{
	json_error_t je;
	json_t *j;
	int rc;

	*out = NULL;
	j = json_loads(text, JSON_DECODE_ANY | JSON_REJECT_DUPLICATES, &je);
	if (j == NULL) {
		if (err != NULL && n > 0)
			snprintf(err, n, "invalid JSON at line %d, column %d: %s", je.line,
			         je.column, je.text);
		return -1;
	}
	rc = ctl_json_to_message(desc, j, out, err, n);
	json_decref(j);
	return rc;
}

/* ---- message -> JSON ---- */

static json_t *value_json(const ProtobufCFieldDescriptor *f, const void *src);

static json_t *wkt_json(const ProtobufCMessageDescriptor *d, const ProtobufCMessage *m)
{
	char buf[64];

	if (is_type(d, "google.protobuf.Timestamp")) {
		const Google__Protobuf__Timestamp *t = (const Google__Protobuf__Timestamp *)m;
		ctl_time_format(t->seconds, t->nanos, buf, sizeof(buf));
		return json_string(buf);
	}
	if (is_type(d, "google.protobuf.Duration")) {
		const Google__Protobuf__Duration *du = (const Google__Protobuf__Duration *)m;
		duration_format(du->seconds, du->nanos, buf, sizeof(buf));
		return json_string(buf);
	}
	const Google__Protobuf__FieldMask *fm = (const Google__Protobuf__FieldMask *)m;
	size_t len = 1;
	char *s, camel[256];
	json_t *j;

	for (size_t i = 0; i < fm->n_paths; i++)
		len += strlen(fm->paths[i]) + 1;
	s = calloc(1, len);
	if (s == NULL)
		return NULL;
	for (size_t i = 0; i < fm->n_paths; i++) {
		to_camel(fm->paths[i], camel, sizeof(camel));
		if (i > 0)
			strcat(s, ",");
		strcat(s, camel);
	}
	j = json_string(s);
	free(s);
	return j;
}

static json_t *value_json(const ProtobufCFieldDescriptor *f, const void *src)
{
	char buf[32];

	switch (f->type) {
	case PROTOBUF_C_TYPE_INT32:
	case PROTOBUF_C_TYPE_SINT32:
	case PROTOBUF_C_TYPE_SFIXED32:
		return json_integer(*(const int32_t *)src);
	case PROTOBUF_C_TYPE_UINT32:
	case PROTOBUF_C_TYPE_FIXED32:
		return json_integer(*(const uint32_t *)src);
	case PROTOBUF_C_TYPE_INT64:
	case PROTOBUF_C_TYPE_SINT64:
	case PROTOBUF_C_TYPE_SFIXED64:
		snprintf(buf, sizeof(buf), "%" PRId64, *(const int64_t *)src);
		return json_string(buf);
	case PROTOBUF_C_TYPE_UINT64:
	case PROTOBUF_C_TYPE_FIXED64:
		snprintf(buf, sizeof(buf), "%" PRIu64, *(const uint64_t *)src);
		return json_string(buf);
	case PROTOBUF_C_TYPE_FLOAT:
	case PROTOBUF_C_TYPE_DOUBLE: {
		double d =
		    f->type == PROTOBUF_C_TYPE_FLOAT ? *(const float *)src : *(const double *)src;
		if (isnan(d))
			return json_string("NaN");
		if (isinf(d))
			return json_string(d > 0 ? "Infinity" : "-Infinity");
		return json_real(d);
	}
	case PROTOBUF_C_TYPE_BOOL:
		return json_boolean(*(const protobuf_c_boolean *)src);
	case PROTOBUF_C_TYPE_ENUM: {
		int32_t v = *(const int32_t *)src;
		const ProtobufCEnumValue *ev =
		    protobuf_c_enum_descriptor_get_value(f->descriptor, v);
		/* A value newer than this client has no name here: proto3 JSON prints the number.
		 */
		return ev != NULL ? json_string(ev->name) : json_integer(v);
	}
	case PROTOBUF_C_TYPE_STRING: {
		const char *s = *(char *const *)src;
		/* The server does not promise valid UTF-8 in every string; jansson refuses it. */
		json_t *j = json_string(s != NULL ? s : "");
		return j != NULL ? j : json_string("\xef\xbf\xbd");
	}
	case PROTOBUF_C_TYPE_BYTES: {
		const ProtobufCBinaryData *b = src;
		char *s = ctl_base64_encode(b->data, b->len);
		json_t *j = s != NULL ? json_string(s) : NULL;
		free(s);
		return j;
	}
	case PROTOBUF_C_TYPE_MESSAGE: {
		const ProtobufCMessage *m = *(ProtobufCMessage *const *)src;
		if (m == NULL)
			return json_object();
		return ctl_json_from_message(m);
	}
	}
	return NULL;
}

/* Whether a singular field without explicit presence holds its default (omitted on output). */
static bool is_default(const ProtobufCFieldDescriptor *f, const void *src)
{
	switch (f->type) {
	case PROTOBUF_C_TYPE_INT32:
	case PROTOBUF_C_TYPE_SINT32:
	case PROTOBUF_C_TYPE_SFIXED32:
	case PROTOBUF_C_TYPE_UINT32:
	case PROTOBUF_C_TYPE_FIXED32:
	case PROTOBUF_C_TYPE_ENUM:
		return *(const int32_t *)src == 0;
	case PROTOBUF_C_TYPE_INT64:
	case PROTOBUF_C_TYPE_SINT64:
	case PROTOBUF_C_TYPE_SFIXED64:
	case PROTOBUF_C_TYPE_UINT64:
	case PROTOBUF_C_TYPE_FIXED64:
		return *(const int64_t *)src == 0;
	case PROTOBUF_C_TYPE_FLOAT:
		return *(const float *)src == 0 && !signbit(*(const float *)src);
	case PROTOBUF_C_TYPE_DOUBLE:
		return *(const double *)src == 0 && !signbit(*(const double *)src);
	case PROTOBUF_C_TYPE_BOOL:
		return !*(const protobuf_c_boolean *)src;
	case PROTOBUF_C_TYPE_STRING: {
		const char *s = *(char *const *)src;
		return s == NULL || s[0] == '\0';
	}
	case PROTOBUF_C_TYPE_BYTES:
		return ((const ProtobufCBinaryData *)src)->len == 0;
	case PROTOBUF_C_TYPE_MESSAGE:
		return *(ProtobufCMessage *const *)src == NULL;
	}
	return true;
}

static json_t *map_json(const ProtobufCFieldDescriptor *f, const ProtobufCMessage *const *arr,
                        size_t n)
{
	const ProtobufCMessageDescriptor *ed = f->descriptor;
	const ProtobufCFieldDescriptor *kf = &ed->fields[0], *vf = &ed->fields[1];
	json_t *o = json_object();

	for (size_t i = 0; o != NULL && i < n; i++) {
		json_t *k = value_json(kf, (const char *)arr[i] + kf->offset);
		json_t *v = value_json(vf, (const char *)arr[i] + vf->offset);
		char buf[32];
		const char *key = buf;

		if (k == NULL || v == NULL) {
			json_decref(k);
			json_decref(v);
			json_decref(o);
			return NULL;
		}
		if (json_is_string(k))
			key = json_string_value(k);
		else if (json_is_boolean(k))
			key = json_is_true(k) ? "true" : "false";
		else
			snprintf(buf, sizeof(buf), "%" JSON_INTEGER_FORMAT, json_integer_value(k));
		json_object_set_new(o, key, v);
		json_decref(k);
	}
	return o;
}

json_t *ctl_json_from_message(const ProtobufCMessage *msg)
{
	const ProtobufCMessageDescriptor *d = msg->descriptor;
	const char *base = (const char *)msg;
	json_t *o;

	if (is_string_wkt(d))
		return wkt_json(d, msg);
	o = json_object();
	for (unsigned i = 0; o != NULL && i < d->n_fields; i++) {
		const ProtobufCFieldDescriptor *f = &d->fields[i];
		const void *src = base + f->offset;
		char camel[256];
		json_t *v = NULL;

		to_camel(f->name, camel, sizeof(camel));
		if (f->label == PROTOBUF_C_LABEL_REPEATED) {
			size_t n = *(const size_t *)(base + f->quantifier_offset);
			const char *arr = *(char *const *)src;
			size_t es = elem_size(f->type);
			if (n == 0)
				continue;
			if (is_map_field(f)) {
				v = map_json(f, (const ProtobufCMessage *const *)arr, n);
			} else {
				v = json_array();
				for (size_t k = 0; v != NULL && k < n; k++) {
					if (json_array_append_new(v, value_json(f, arr + k * es))) {
						json_decref(v);
						v = NULL;
					}
				}
			}
		} else if (f->flags & PROTOBUF_C_FIELD_FLAG_ONEOF) {
			/* A set oneof member is printed even when it holds its default. */
			if (*(const uint32_t *)(base + f->quantifier_offset) != f->id)
				continue;
			v = value_json(f, src);
		} else if (f->label == PROTOBUF_C_LABEL_OPTIONAL && f->quantifier_offset != 0 &&
		           f->type != PROTOBUF_C_TYPE_MESSAGE &&
		           f->type != PROTOBUF_C_TYPE_STRING) {
			if (!*(const protobuf_c_boolean *)(base + f->quantifier_offset))
				continue;
			v = value_json(f, src);
		} else {
			if (is_default(f, src))
				continue;
			v = value_json(f, src);
		}
		if (v == NULL || json_object_set_new(o, camel, v)) {
			json_decref(o);
			o = NULL;
		}
	}
	return o;
}
