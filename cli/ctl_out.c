/* Shared helpers of the commands: calls with JSON requests and responses, output (JSON and
 * aligned tables), and the small conversions between users' words and the API's. */
#include "ctl.h"
#include "ctl_json.h"

#include <ctype.h>
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

int ctl_usage_error(const char *fmt, ...)
{
	va_list ap;

	fputs("maturityctl: ", stderr);
	va_start(ap, fmt);
	vfprintf(stderr, fmt, ap);
	va_end(ap);
	fputc('\n', stderr);
	return CTL_EXIT_USAGE;
}

const char *ctl_opt(const struct ctl_args *a, const char *name)
{
	const char *v = NULL;

	for (int i = 0; i < a->nopt; i++)
		if (strcmp(a->opt[i].name, name) == 0)
			v = a->opt[i].value;
	return v;
}

bool ctl_has(const struct ctl_args *a, const char *name)
{
	for (int i = 0; i < a->nopt; i++)
		if (strcmp(a->opt[i].name, name) == 0)
			return true;
	return false;
}

const char *ctl_opt_nth(const struct ctl_args *a, const char *name, int n)
{
	for (int i = 0; i < a->nopt; i++)
		if (strcmp(a->opt[i].name, name) == 0 && n-- == 0)
			return a->opt[i].value;
	return NULL;
}

static int open_conn(struct ctl *ctx)
{
	char err[512];

	if (ctx->conn != NULL)
		return 0;
	if (ctl_conn_open(&ctx->conn_opts, &ctx->conn, err, sizeof(err)))
		return ctl_usage_error("%s", err);
	return 0;
}

/* The method and the request message; CTL_EXIT_USAGE when either is wrong. */
static int prepare(const char *method, json_t *req, struct ctl_method *m, ProtobufCMessage **msg)
{
	char err[600];

	*msg = NULL;
	if (ctl_method_find(method, m))
		return ctl_usage_error("unknown method %s (want SERVICE/METHOD, e.g. "
		                       "mlops.maturity.v1.OrganizationService/GetOrganization)",
		                       method);
	if (ctl_json_to_message(m->input, req, msg, err, sizeof(err)))
		return ctl_usage_error("bad request for %s: %s", method, err);
	return 0;
}

int ctl_unary(struct ctl *ctx, const char *method, json_t *req, json_t **resp)
{
	struct ctl_method m;
	ProtobufCMessage *msg = NULL, *out = NULL;
	struct ctl_status st;
	int rc;

	*resp = NULL;
	rc = prepare(method, req, &m, &msg);
	json_decref(req);
	if (rc == 0)
		rc = open_conn(ctx);
	if (rc != 0)
		goto out;
	if (ctl_call_unary(ctx->conn, m.path, msg, m.output, &out, &st) != GRPC_STATUS_OK) {
		ctl_status_print(&st, stderr);
		ctl_status_cleanup(&st);
		rc = CTL_EXIT_FAILED;
		goto out;
	}
	ctl_status_cleanup(&st);
	*resp = ctl_json_from_message(out);
	rc = *resp != NULL ? 0 : CTL_EXIT_FAILED;
out:
	if (msg != NULL)
		protobuf_c_message_free_unpacked(msg, NULL);
	if (out != NULL)
		protobuf_c_message_free_unpacked(out, NULL);
	return rc;
}

struct stream_ud {
	struct ctl *ctx;
	int (*fn)(struct ctl *ctx, json_t *msg, void *ud);
	void *ud;
};

static int stream_msg(ProtobufCMessage *msg, void *p)
{
	struct stream_ud *s = p;
	json_t *j = ctl_json_from_message(msg);
	int rc = j != NULL ? s->fn(s->ctx, j, s->ud) : -1;

	json_decref(j);
	protobuf_c_message_free_unpacked(msg, NULL);
	return rc;
}

int ctl_stream(struct ctl *ctx, const char *method, json_t *req,
               int (*fn)(struct ctl *ctx, json_t *msg, void *ud), void *ud,
               grpc_status_code *st_out)
{
	struct ctl_method m;
	ProtobufCMessage *msg = NULL;
	struct ctl_status st;
	struct stream_ud s = {ctx, fn, ud};
	int rc;

	if (st_out != NULL)
		*st_out = GRPC_STATUS_UNKNOWN;
	rc = prepare(method, req, &m, &msg);
	json_decref(req);
	if (rc == 0)
		rc = open_conn(ctx);
	if (rc != 0)
		goto out;
	ctl_call(ctx->conn, m.path, msg, m.output, m.server_streaming, stream_msg, &s, &st);
	if (st_out != NULL)
		*st_out = st.code;
	/* CANCELLED is our own doing (the callback stopped): not an error to report. */
	if (st.code != GRPC_STATUS_OK && st.code != GRPC_STATUS_CANCELLED) {
		ctl_status_print(&st, stderr);
		rc = CTL_EXIT_FAILED;
	}
	ctl_status_cleanup(&st);
out:
	if (msg != NULL)
		protobuf_c_message_free_unpacked(msg, NULL);
	return rc;
}

int ctl_print_json(json_t *j)
{
	if (json_dumpf(j, stdout, JSON_INDENT(2) | CTL_JSON_DUMP_FLAGS) != 0 ||
	    fputc('\n', stdout) == EOF || fflush(stdout) != 0)
		return CTL_EXIT_FAILED;
	return CTL_EXIT_OK;
}

int ctl_print_json_line(json_t *j)
{
	if (json_dumpf(j, stdout, JSON_COMPACT | CTL_JSON_DUMP_FLAGS) != 0 ||
	    fputc('\n', stdout) == EOF || fflush(stdout) != 0)
		return -1;
	return 0;
}

const char *ctl_level_label(struct ctl *ctx, long level, char *buf, size_t n)
{
	if (!ctx->levels_loaded) {
		json_t *resp = NULL;
		ctx->levels_loaded = true;
		if (ctl_unary(ctx, "mlops.maturity.v1.ModelService/GetMaturityModel",
		              json_pack("{s:s}", "name", "models/mlops-v1"), &resp) == 0) {
			size_t i;
			json_t *l;
			json_array_foreach(json_object_get(resp, "levels"), i, l)
			{
				long k = ctl_get_int(l, "level");
				const char *name = json_string_value(json_object_get(l, "name"));
				if (k >= 0 && k < 5 && name != NULL)
					snprintf(ctx->level_names[k], sizeof(ctx->level_names[k]),
					         "%s", name);
			}
		}
		json_decref(resp);
	}
	if (level >= 0 && level < 5 && ctx->level_names[level][0] != '\0')
		snprintf(buf, n, "%ld %s", level, ctx->level_names[level]);
	else
		snprintf(buf, n, "%ld", level);
	return buf;
}

static json_t *lookup(json_t *o, const char *path)
{
	char key[128];

	while (o != NULL && *path != '\0') {
		const char *dot = strchr(path, '.');
		size_t len = dot != NULL ? (size_t)(dot - path) : strlen(path);
		if (len >= sizeof(key))
			return NULL;
		memcpy(key, path, len);
		key[len] = '\0';
		o = json_object_get(o, key);
		path += len + (dot != NULL);
	}
	return o;
}

const char *ctl_get(json_t *o, const char *path, char *buf, size_t n)
{
	json_t *v = lookup(o, path);

	if (json_is_string(v))
		return json_string_value(v);
	if (json_is_integer(v))
		snprintf(buf, n, "%" JSON_INTEGER_FORMAT, json_integer_value(v));
	else if (json_is_real(v))
		snprintf(buf, n, "%.2f", json_real_value(v));
	else if (json_is_boolean(v))
		snprintf(buf, n, "%s", json_is_true(v) ? "yes" : "no");
	else
		return "";
	return buf;
}

long ctl_get_int(json_t *o, const char *path)
{
	json_t *v = lookup(o, path);

	if (json_is_integer(v))
		return (long)json_integer_value(v);
	if (json_is_string(v))
		return strtol(json_string_value(v), NULL, 10);
	return 0;
}

const char *ctl_enum_short(const char *name, char *buf, size_t n)
{
	static const char *const prefixes[] = {"PRACTICE_STATUS_", "TRANSITION_POLICY_",
	                                       "EVENT_TYPE_",      "DIRECTION_",
	                                       "STATE_",           "ROLE_",
	                                       "BASIS_",           "SERVING_STATUS_"};
	size_t k = 0;

	for (size_t i = 0; i < sizeof(prefixes) / sizeof(prefixes[0]); i++) {
		if (strncmp(name, prefixes[i], strlen(prefixes[i])) == 0) {
			name += strlen(prefixes[i]);
			break;
		}
	}
	for (; *name != '\0' && k + 1 < n; name++)
		buf[k++] = (char)tolower((unsigned char)*name);
	buf[k] = '\0';
	return buf;
}

const char *ctl_org_name(const char *arg, char *buf, size_t n)
{
	if (strncmp(arg, "organizations/", 14) == 0)
		snprintf(buf, n, "%s", arg);
	else
		snprintf(buf, n, "organizations/%s", arg);
	return buf;
}

const char *ctl_enum_arg(const char *prefix, const char *v, char *buf, size_t n)
{
	char up[128];
	size_t k = 0;

	for (; *v != '\0' && k + 1 < sizeof(up); v++)
		up[k++] = *v == '-' ? '_' : (char)toupper((unsigned char)*v);
	up[k] = '\0';
	if (strncmp(up, prefix, strlen(prefix)) == 0)
		snprintf(buf, n, "%s", up);
	else
		snprintf(buf, n, "%s%s", prefix, up);
	return buf;
}

/* ---- tables ---- */

struct ctl_table {
	int ncols;
	size_t nrows, cap;
	char **cells; /* nrows * ncols, row 0 the headers */
};

struct ctl_table *ctl_table_new(int ncols, const char *const *headers)
{
	struct ctl_table *t = calloc(1, sizeof(*t));

	if (t == NULL)
		return NULL;
	t->ncols = ncols;
	ctl_table_add(t, headers);
	return t;
}

void ctl_table_add(struct ctl_table *t, const char *const *cells)
{
	if (t == NULL)
		return;
	if (t->nrows == t->cap) {
		size_t cap = t->cap ? t->cap * 2 : 16;
		char **c = realloc(t->cells, cap * (size_t)t->ncols * sizeof(char *));
		if (c == NULL)
			return;
		t->cells = c;
		t->cap = cap;
	}
	for (int i = 0; i < t->ncols; i++)
		t->cells[t->nrows * (size_t)t->ncols + (size_t)i] =
		    strdup(cells[i] != NULL ? cells[i] : "");
	t->nrows++;
}

/* Columns are measured in characters, not bytes: names and titles may be UTF-8. */
static size_t width(const char *s)
{
	size_t w = 0;

	for (; s != NULL && *s != '\0'; s++)
		w += ((unsigned char)*s & 0xC0) != 0x80;
	return w;
}

void ctl_table_print(struct ctl_table *t, FILE *f)
{
	size_t w[16] = {0};

	if (t == NULL)
		return;
	for (size_t r = 0; r < t->nrows; r++)
		for (int c = 0; c < t->ncols && c < 16; c++) {
			size_t x = width(t->cells[r * (size_t)t->ncols + (size_t)c]);
			if (x > w[c])
				w[c] = x;
		}
	for (size_t r = 0; r < t->nrows; r++) {
		for (int c = 0; c < t->ncols; c++) {
			const char *s = t->cells[r * (size_t)t->ncols + (size_t)c];
			bool last = c == t->ncols - 1;
			fputs(s != NULL ? s : "", f);
			if (!last)
				for (size_t k = width(s); k < w[c < 16 ? c : 15] + 2; k++)
					fputc(' ', f);
		}
		fputc('\n', f);
	}
}

void ctl_table_free(struct ctl_table *t)
{
	if (t == NULL)
		return;
	for (size_t i = 0; i < t->nrows * (size_t)t->ncols; i++)
		free(t->cells[i]);
	free(t->cells);
	free(t);
}
