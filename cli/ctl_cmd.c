/* The commands of maturityctl, in the words of the people who use them. Each builds its request
 * as proto3 JSON from the arguments, makes one call (or follows pages or a stream), and prints
 * the response as a table, or as proto3 JSON with -o json. */
#include "ctl.h"
#include "ctl_json.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#define SVC "mlops.maturity.v1."

/* ---- small helpers ---- */

/* Sets key to a string when v is not NULL. */
static void put_str(json_t *o, const char *key, const char *v)
{
	if (v != NULL)
		json_object_set_new(o, key, json_string(v));
}

/* Sets key to an integer parsed from v (when v is not NULL); -1 on a malformed number. */
static int put_int(json_t *o, const char *key, const char *flag, const char *v)
{
	char *end;
	long n;

	if (v == NULL)
		return 0;
	errno = 0;
	n = strtol(v, &end, 10);
	if (*v == '\0' || *end != '\0' || errno != 0) {
		ctl_usage_error("--%s: \"%s\" is not a number", flag, v);
		return -1;
	}
	json_object_set_new(o, key, json_integer(n));
	return 0;
}

static int need_pos(const struct ctl_args *a, int n, const char *what)
{
	if (a->npos < n)
		return ctl_usage_error("missing %s (see --help)", what);
	if (a->npos > n)
		return ctl_usage_error("unexpected argument \"%s\" (see --help)", a->pos[n]);
	return 0;
}

/* "k=v" pairs of a repeatable flag into an object; -1 on a pair without '='. */
static int put_pairs(json_t *o, const char *key, const struct ctl_args *a, const char *flag,
                     bool int_values)
{
	json_t *m = NULL;
	const char *v;

	for (int i = 0; (v = ctl_opt_nth(a, flag, i)) != NULL; i++) {
		const char *eq = strchr(v, '=');
		char k[256];
		if (eq == NULL || eq == v) {
			ctl_usage_error("--%s: want KEY=VALUE, not \"%s\"", flag, v);
			json_decref(m);
			return -1;
		}
		snprintf(k, sizeof(k), "%.*s", (int)(eq - v), v);
		if (m == NULL)
			m = json_object();
		if (int_values) {
			char *end;
			long n = strtol(eq + 1, &end, 10);
			if (eq[1] == '\0' || *end != '\0') {
				ctl_usage_error("--%s: \"%s\" is not a number", flag, eq + 1);
				json_decref(m);
				return -1;
			}
			json_object_set_new(m, k, json_integer(n));
		} else {
			json_object_set_new(m, k, json_string(eq + 1));
		}
	}
	if (m != NULL)
		json_object_set_new(o, key, m);
	return 0;
}

/* Durations in the units people use ("90s", "30m", "24h", "7d", "1.5s") as proto3 JSON
 * ("86400s"); NULL when malformed. */
static const char *duration_arg(const char *v, char *buf, size_t n)
{
	char *end;
	double x = strtod(v, &end);
	double mult = 1;

	if (end == v || x <= 0)
		return NULL;
	if (strcmp(end, "s") == 0 || *end == '\0')
		mult = 1;
	else if (strcmp(end, "ms") == 0)
		mult = 0.001;
	else if (strcmp(end, "m") == 0)
		mult = 60;
	else if (strcmp(end, "h") == 0)
		mult = 3600;
	else if (strcmp(end, "d") == 0)
		mult = 86400;
	else
		return NULL;
	snprintf(buf, n, "%.3fs", x * mult);
	return buf;
}

/* Reads a whole file, or stdin for "-"; NULL (and a message) when it cannot. */
static char *read_input(const char *path)
{
	FILE *f = strcmp(path, "-") == 0 ? stdin : fopen(path, "r");
	char *buf = NULL;
	size_t len = 0, cap = 0;

	if (f == NULL) {
		ctl_usage_error("cannot read %s: %s", path, strerror(errno));
		return NULL;
	}
	for (;;) {
		if (len + 4096 + 1 > cap) {
			char *nb;
			cap = cap ? cap * 2 : 8192;
			/* Requests are small; a huge input is a mistake (e.g. the wrong file). */
			if (cap > 64u * 1024 * 1024 || (nb = realloc(buf, cap)) == NULL) {
				ctl_usage_error("%s: too large", path);
				free(buf);
				buf = NULL;
				break;
			}
			buf = nb;
		}
		size_t r = fread(buf + len, 1, 4096, f);
		len += r;
		if (r == 0)
			break;
	}
	if (buf != NULL)
		buf[len] = '\0';
	if (f != stdin)
		fclose(f);
	return buf;
}

static json_t *load_json(const char *path)
{
	char *text = read_input(path);
	json_error_t je;
	json_t *j;

	if (text == NULL)
		return NULL;
	j = json_loads(text, JSON_DECODE_ANY, &je);
	free(text);
	if (j == NULL)
		ctl_usage_error("%s: invalid JSON at line %d: %s", path, je.line, je.text);
	return j;
}

/* Answers from text: a JSON array of answers, an object with "answers", or lines of
 * `PRACTICE_ID STATUS` / `PRACTICE_ID=STATUS` (# comments). NULL (and a message) when bad. */
/* Lets JSON answers say "implemented" as the command line does; full names pass through. */
static void normalize_statuses(json_t *answers)
{
	size_t i;
	json_t *an;

	json_array_foreach(answers, i, an)
	{
		const char *st = json_string_value(json_object_get(an, "status"));
		char buf[160];
		if (st != NULL)
			json_object_set_new(
			    an, "status",
			    json_string(ctl_enum_arg("PRACTICE_STATUS_", st, buf, sizeof(buf))));
	}
}

static json_t *parse_answers(const char *path)
{
	char *text = read_input(path), *p, *save = NULL;
	json_t *arr;

	if (text == NULL)
		return NULL;
	p = text + strspn(text, " \t\r\n");
	if (*p == '[' || *p == '{') {
		json_error_t je;
		json_t *j = json_loads(p, 0, &je);
		free(text);
		if (j == NULL) {
			ctl_usage_error("%s: invalid JSON at line %d: %s", path, je.line, je.text);
			return NULL;
		}
		if (json_is_object(j)) {
			arr = json_incref(json_object_get(j, "answers"));
			json_decref(j);
			if (!json_is_array(arr)) {
				json_decref(arr);
				ctl_usage_error(
				    "%s: want an array of answers or {\"answers\": [...]}", path);
				return NULL;
			}
			normalize_statuses(arr);
			return arr;
		}
		normalize_statuses(j);
		return j;
	}
	arr = json_array();
	for (char *line = strtok_r(text, "\n", &save); line != NULL;
	     line = strtok_r(NULL, "\n", &save)) {
		char id[256], st[128], buf[160];
		line[strcspn(line, "#\r")] = '\0';
		for (char *q = line; *q; q++)
			if (*q == '=')
				*q = ' ';
		if (line[strspn(line, " \t")] == '\0')
			continue;
		if (sscanf(line, "%255s %127s", id, st) != 2) {
			ctl_usage_error("%s: want `PRACTICE_ID STATUS` lines, not \"%s\"", path,
			                line);
			json_decref(arr);
			free(text);
			return NULL;
		}
		json_array_append_new(
		    arr, json_pack("{s:s,s:s}", "practiceId", id, "status",
		                   ctl_enum_arg("PRACTICE_STATUS_", st, buf, sizeof(buf))));
	}
	free(text);
	return arr;
}

/* Calls and prints: JSON with -o json, else the table printer. */
static int show(struct ctl *ctx, const char *method, json_t *req,
                void (*table)(struct ctl *ctx, json_t *resp))
{
	json_t *resp;
	int rc = ctl_unary(ctx, method, req, &resp);

	if (rc != 0)
		return rc;
	if (ctx->name_only && json_is_string(json_object_get(resp, "name")))
		printf("%s\n", json_string_value(json_object_get(resp, "name")));
	else if (ctx->json || ctx->name_only || table == NULL)
		rc = ctl_print_json(resp);
	else
		table(ctx, resp);
	json_decref(resp);
	return rc;
}

/* A List method: all pages (or the one asked for with --page-token), then printed. */
static int list_all(struct ctl *ctx, const struct ctl_args *a, const char *method, json_t *req,
                    const char *items, void (*table)(struct ctl *ctx, json_t *resp))
{
	json_t *all = json_array(), *out = NULL;
	const char *token = ctl_opt(a, "page-token");
	/* Paging by hand (either flag) gets one page and its next token; else every page. */
	bool one_page = token != NULL || ctl_opt(a, "page-size") != NULL;
	int rc = 0;

	if (put_int(req, "pageSize", "page-size", ctl_opt(a, "page-size"))) {
		json_decref(req);
		json_decref(all);
		return CTL_EXIT_USAGE;
	}
	put_str(req, "pageToken", token);
	for (;;) {
		json_t *resp;
		const char *next;
		rc = ctl_unary(ctx, method, json_deep_copy(req), &resp);
		if (rc != 0)
			break;
		json_array_extend(all, json_object_get(resp, items));
		next = json_string_value(json_object_get(resp, "nextPageToken"));
		if (one_page || next == NULL || next[0] == '\0') {
			/* One page asked for: keep its token so the caller can go on. */
			out = json_object();
			json_object_set(out, items, all);
			if (one_page && next != NULL)
				put_str(out, "nextPageToken", next);
			json_decref(resp);
			break;
		}
		put_str(req, "pageToken", next);
		json_decref(resp);
	}
	json_decref(req);
	json_decref(all);
	if (rc == 0) {
		const char *next = json_string_value(json_object_get(out, "nextPageToken"));
		if (ctx->name_only) {
			size_t i;
			json_t *o;
			json_array_foreach(json_object_get(out, items), i, o)
			    printf("%s\n", json_string_value(json_object_get(o, "name")) ?: "");
		} else if (ctx->json) {
			rc = ctl_print_json(out);
		} else {
			table(ctx, out);
			if (next != NULL && next[0] != '\0')
				fprintf(stderr, "more: --page-token %s\n", next);
		}
	}
	json_decref(out);
	return rc;
}

static void kv(const char *k, const char *v)
{
	if (v != NULL && v[0] != '\0')
		printf("%-18s %s\n", k, v);
}

static const char *short_enum(json_t *o, const char *path, char *buf, size_t n)
{
	char tmp[128];
	const char *v = ctl_get(o, path, tmp, sizeof(tmp));

	return v[0] != '\0' ? ctl_enum_short(v, buf, n) : "";
}

/* "[##..]" for 2 of 4 levels: a glance at a dimension. */
static const char *bar(long level, char *buf)
{
	buf[0] = '[';
	for (int i = 0; i < 4; i++)
		buf[1 + i] = i < level ? '#' : '.';
	buf[5] = ']';
	buf[6] = '\0';
	return buf;
}

/* ---- tables ---- */

static void org_table(struct ctl *ctx, json_t *resp)
{
	static const char *const h[] = {"NAME",   "DISPLAY NAME", "LEVEL",
	                                "TARGET", "POLICY",       "LABELS"};
	struct ctl_table *t = ctl_table_new(6, h);
	size_t i;
	json_t *o;

	json_array_foreach(json_object_get(resp, "organizations"), i, o)
	{
		char lvl[96], tgt[96], pol[64], labels[512] = "", b[32];
		const char *k;
		json_t *v;
		json_object_foreach(json_object_get(o, "labels"), k, v)
		{
			size_t len = strlen(labels);
			snprintf(labels + len, sizeof(labels) - len, "%s%s=%s", len ? "," : "", k,
			         json_string_value(v));
		}
		const char *row[] = {
		    ctl_get(o, "name", b, sizeof(b)),
		    ctl_get(o, "displayName", b, sizeof(b)),
		    ctl_level_label(ctx, ctl_get_int(o, "currentLevel"), lvl, sizeof(lvl)),
		    ctl_level_label(ctx, ctl_get_int(o, "targetLevel"), tgt, sizeof(tgt)),
		    short_enum(o, "transitionPolicy", pol, sizeof(pol)),
		    labels};
		ctl_table_add(t, row);
	}
	ctl_table_print(t, stdout);
	ctl_table_free(t);
}

static void org_show(struct ctl *ctx, json_t *o)
{
	char b[96], labels[1024] = "";
	const char *k;
	json_t *v;

	kv("name:", ctl_get(o, "name", b, sizeof(b)));
	kv("display name:", ctl_get(o, "displayName", b, sizeof(b)));
	kv("description:", ctl_get(o, "description", b, sizeof(b)));
	kv("current level:", ctl_level_label(ctx, ctl_get_int(o, "currentLevel"), b, sizeof(b)));
	kv("target level:", ctl_level_label(ctx, ctl_get_int(o, "targetLevel"), b, sizeof(b)));
	kv("policy:", short_enum(o, "transitionPolicy", b, sizeof(b)));
	json_object_foreach(json_object_get(o, "labels"), k, v)
	{
		size_t len = strlen(labels);
		snprintf(labels + len, sizeof(labels) - len, "%s%s=%s", len ? ", " : "", k,
		         json_string_value(v));
	}
	kv("labels:", labels);
	kv("last assessment:", ctl_get(o, "lastAssessment", b, sizeof(b)));
	kv("created:", ctl_get(o, "createTime", b, sizeof(b)));
	kv("updated:", ctl_get(o, "updateTime", b, sizeof(b)));
	kv("etag:", ctl_get(o, "etag", b, sizeof(b)));
}

static void score_show(struct ctl *ctx, json_t *s)
{
	static const char *const h[] = {"DIMENSION", "LEVEL", "", "SATISFIED"};
	struct ctl_table *t;
	char b[96], sat[32];
	size_t i;
	json_t *d;

	if (s == NULL)
		return;
	kv("overall level:", ctl_level_label(ctx, ctl_get_int(s, "overallLevel"), b, sizeof(b)));
	snprintf(b, sizeof(b), "%.2f", json_number_value(json_object_get(s, "maturityIndex")));
	kv("maturity index:", b);
	snprintf(b, sizeof(b), "%.0f%%",
	         100 * json_number_value(json_object_get(s, "progressToNextLevel")));
	kv("to next level:", b);
	snprintf(b, sizeof(b), "%ld of %ld", ctl_get_int(s, "satisfiedCount"),
	         ctl_get_int(s, "totalCount"));
	kv("satisfied:", b);
	t = ctl_table_new(4, h);
	json_array_foreach(json_object_get(s, "dimensionScores"), i, d)
	{
		char lvl[96], bb[8], id[96];
		long l = ctl_get_int(d, "level");
		snprintf(sat, sizeof(sat), "%ld/%ld", ctl_get_int(d, "satisfiedCount"),
		         ctl_get_int(d, "totalCount"));
		const char *row[] = {ctl_get(d, "dimensionId", id, sizeof(id)),
		                     ctl_level_label(ctx, l, lvl, sizeof(lvl)), bar(l, bb), sat};
		ctl_table_add(t, row);
	}
	printf("\n");
	ctl_table_print(t, stdout);
	ctl_table_free(t);
	json_t *blocking = json_object_get(s, "blockingPracticeIds");
	if (json_array_size(blocking) > 0) {
		printf("\nblocking the next level:\n");
		json_array_foreach(blocking, i, d) printf("  %s\n", json_string_value(d));
	}
}

static void assessment_show(struct ctl *ctx, json_t *o)
{
	static const char *const h[] = {"PRACTICE", "STATUS", "NOTE"};
	struct ctl_table *t;
	char b[96];
	size_t i;
	json_t *an;

	kv("name:", ctl_get(o, "name", b, sizeof(b)));
	kv("title:", ctl_get(o, "title", b, sizeof(b)));
	kv("model:", ctl_get(o, "model", b, sizeof(b)));
	kv("state:", short_enum(o, "state", b, sizeof(b)));
	kv("creator:", ctl_get(o, "creator", b, sizeof(b)));
	kv("created:", ctl_get(o, "createTime", b, sizeof(b)));
	kv("submitter:", ctl_get(o, "submitter", b, sizeof(b)));
	kv("submitted:", ctl_get(o, "submitTime", b, sizeof(b)));
	kv("etag:", ctl_get(o, "etag", b, sizeof(b)));
	printf("\n");
	score_show(ctx, json_object_get(o, "score"));
	if (json_array_size(json_object_get(o, "answers")) == 0)
		return;
	t = ctl_table_new(3, h);
	json_array_foreach(json_object_get(o, "answers"), i, an)
	{
		char id[128], st[64], note[256];
		const char *row[] = {ctl_get(an, "practiceId", id, sizeof(id)),
		                     short_enum(an, "status", st, sizeof(st)),
		                     ctl_get(an, "note", note, sizeof(note))};
		ctl_table_add(t, row);
	}
	printf("\n");
	ctl_table_print(t, stdout);
	ctl_table_free(t);
}

static void assessment_table(struct ctl *ctx, json_t *resp)
{
	static const char *const h[] = {"NAME", "TITLE", "STATE", "LEVEL", "INDEX", "UPDATED"};
	struct ctl_table *t = ctl_table_new(6, h);
	size_t i;
	json_t *o;

	json_array_foreach(json_object_get(resp, "assessments"), i, o)
	{
		char n[160], ti[256], st[32], lvl[96], idx[32], up[64];
		snprintf(idx, sizeof(idx), "%.2f",
		         json_number_value(
		             json_object_get(json_object_get(o, "score"), "maturityIndex")));
		const char *row[] = {
		    ctl_get(o, "name", n, sizeof(n)),
		    ctl_get(o, "title", ti, sizeof(ti)),
		    short_enum(o, "state", st, sizeof(st)),
		    ctl_level_label(ctx, ctl_get_int(o, "score.overallLevel"), lvl, sizeof(lvl)),
		    idx,
		    ctl_get(o, "updateTime", up, sizeof(up))};
		ctl_table_add(t, row);
	}
	ctl_table_print(t, stdout);
	ctl_table_free(t);
}

static void transition_table(struct ctl *ctx, json_t *resp)
{
	static const char *const h[] = {"NAME",  "FROM",     "TO",      "DIRECTION",
	                                "STATE", "PROPOSER", "PROPOSED"};
	struct ctl_table *t = ctl_table_new(7, h);
	size_t i;
	json_t *o;

	json_array_foreach(json_object_get(resp, "transitions"), i, o)
	{
		char n[160], f[96], to[96], d[32], st[32], p[256], pt[64];
		const char *row[] = {
		    ctl_get(o, "name", n, sizeof(n)),
		    ctl_level_label(ctx, ctl_get_int(o, "fromLevel"), f, sizeof(f)),
		    ctl_level_label(ctx, ctl_get_int(o, "toLevel"), to, sizeof(to)),
		    short_enum(o, "direction", d, sizeof(d)),
		    short_enum(o, "state", st, sizeof(st)),
		    ctl_get(o, "proposer", p, sizeof(p)),
		    ctl_get(o, "proposeTime", pt, sizeof(pt))};
		ctl_table_add(t, row);
	}
	ctl_table_print(t, stdout);
	ctl_table_free(t);
}

static void transition_show(struct ctl *ctx, json_t *o)
{
	char b[96];

	kv("name:", ctl_get(o, "name", b, sizeof(b)));
	kv("assessment:", ctl_get(o, "assessment", b, sizeof(b)));
	kv("from level:", ctl_level_label(ctx, ctl_get_int(o, "fromLevel"), b, sizeof(b)));
	kv("to level:", ctl_level_label(ctx, ctl_get_int(o, "toLevel"), b, sizeof(b)));
	kv("direction:", short_enum(o, "direction", b, sizeof(b)));
	kv("state:", short_enum(o, "state", b, sizeof(b)));
	kv("proposer:", ctl_get(o, "proposer", b, sizeof(b)));
	kv("proposed:", ctl_get(o, "proposeTime", b, sizeof(b)));
	kv("decider:", ctl_get(o, "decider", b, sizeof(b)));
	kv("decided:", ctl_get(o, "decideTime", b, sizeof(b)));
	kv("reason:", ctl_get(o, "reason", b, sizeof(b)));
	kv("etag:", ctl_get(o, "etag", b, sizeof(b)));
}

/* ---- commands ---- */

static void whoami_table(struct ctl *ctx, json_t *r)
{
	static const char *const h[] = {"ROLE", "ORGANIZATION", "BINDING"};
	struct ctl_table *t;
	char b[96];
	size_t i;
	json_t *o;

	(void)ctx;
	kv("principal:", ctl_get(r, "principal", b, sizeof(b)));
	kv("delegator:", ctl_get(r, "delegator", b, sizeof(b)));
	kv("bootstrap admin:", json_is_true(json_object_get(r, "bootstrapAdmin")) ? "yes" : "no");
	if (json_array_size(json_object_get(r, "roleBindings")) == 0)
		return;
	t = ctl_table_new(3, h);
	json_array_foreach(json_object_get(r, "roleBindings"), i, o)
	{
		char ro[64], org[160], n[160];
		const char *org_v = ctl_get(o, "organization", org, sizeof(org));
		const char *row[] = {short_enum(o, "role", ro, sizeof(ro)),
		                     org_v[0] ? org_v : "(global)",
		                     ctl_get(o, "name", n, sizeof(n))};
		ctl_table_add(t, row);
	}
	printf("\n");
	ctl_table_print(t, stdout);
	ctl_table_free(t);
}

static int cmd_whoami(struct ctl *ctx, const struct ctl_args *a)
{
	if (need_pos(a, 0, ""))
		return CTL_EXIT_USAGE;
	return show(ctx, SVC "AccessService/WhoAmI", json_object(), whoami_table);
}

static void model_table(struct ctl *ctx, json_t *m)
{
	static const char *const lh[] = {"LEVEL", "NAME", "SUMMARY"};
	static const char *const dh[] = {"DIMENSION", "NAME"};
	static const char *const ph[] = {"PRACTICE", "DIMENSION", "LEVEL", "TITLE"};
	struct ctl_table *t;
	char b[96];
	size_t i;
	json_t *o;

	(void)ctx;
	kv("model:", ctl_get(m, "name", b, sizeof(b)));
	kv("display name:", ctl_get(m, "displayName", b, sizeof(b)));
	printf("\n");
	t = ctl_table_new(3, lh);
	json_array_foreach(json_object_get(m, "levels"), i, o)
	{
		char l[16], n[128], s[512];
		const char *row[] = {ctl_get(o, "level", l, sizeof(l)),
		                     ctl_get(o, "name", n, sizeof(n)),
		                     ctl_get(o, "summary", s, sizeof(s))};
		if (row[0][0] == '\0')
			row[0] = "0";
		ctl_table_add(t, row);
	}
	ctl_table_print(t, stdout);
	ctl_table_free(t);
	printf("\n");
	t = ctl_table_new(2, dh);
	json_array_foreach(json_object_get(m, "dimensions"), i, o)
	{
		char id[96], n[128];
		const char *row[] = {ctl_get(o, "id", id, sizeof(id)),
		                     ctl_get(o, "displayName", n, sizeof(n))};
		ctl_table_add(t, row);
	}
	ctl_table_print(t, stdout);
	ctl_table_free(t);
	printf("\n");
	t = ctl_table_new(4, ph);
	json_array_foreach(json_object_get(m, "practices"), i, o)
	{
		char id[128], d[96], l[16], ti[256];
		const char *row[] = {
		    ctl_get(o, "id", id, sizeof(id)), ctl_get(o, "dimensionId", d, sizeof(d)),
		    ctl_get(o, "level", l, sizeof(l)), ctl_get(o, "title", ti, sizeof(ti))};
		ctl_table_add(t, row);
	}
	ctl_table_print(t, stdout);
	ctl_table_free(t);
}

static int cmd_model_show(struct ctl *ctx, const struct ctl_args *a)
{
	char name[256];

	if (a->npos > 1)
		return need_pos(a, 1, "");
	if (a->npos == 1 && strncmp(a->pos[0], "models/", 7) != 0)
		snprintf(name, sizeof(name), "models/%s", a->pos[0]);
	else
		snprintf(name, sizeof(name), "%s", a->npos == 1 ? a->pos[0] : "models/mlops-v1");
	return show(ctx, SVC "ModelService/GetMaturityModel", json_pack("{s:s}", "name", name),
	            model_table);
}

static int cmd_org_list(struct ctl *ctx, const struct ctl_args *a)
{
	if (need_pos(a, 0, ""))
		return CTL_EXIT_USAGE;
	return list_all(ctx, a, SVC "OrganizationService/ListOrganizations", json_object(),
	                "organizations", org_table);
}

static int cmd_org_get(struct ctl *ctx, const struct ctl_args *a)
{
	char name[256];

	if (need_pos(a, 1, "ORG"))
		return CTL_EXIT_USAGE;
	return show(ctx, SVC "OrganizationService/GetOrganization",
	            json_pack("{s:s}", "name", ctl_org_name(a->pos[0], name, sizeof(name))),
	            org_show);
}

/* The organization fields the flags set, and the update mask naming them. */
static int org_fields(const struct ctl_args *a, json_t *org, char *mask, size_t n)
{
	char buf[128];
	const char *v;

	mask[0] = '\0';
#define MASK(p) snprintf(mask + strlen(mask), n - strlen(mask), "%s%s", mask[0] ? "," : "", p)
	if ((v = ctl_opt(a, "display-name")) != NULL) {
		put_str(org, "displayName", v);
		MASK("displayName");
	}
	if ((v = ctl_opt(a, "description")) != NULL) {
		put_str(org, "description", v);
		MASK("description");
	}
	if (ctl_has(a, "label") || ctl_has(a, "clear-labels")) {
		if (put_pairs(org, "labels", a, "label", false))
			return -1;
		MASK("labels");
	}
	if ((v = ctl_opt(a, "target-level")) != NULL) {
		if (put_int(org, "targetLevel", "target-level", v))
			return -1;
		MASK("targetLevel");
	}
	if ((v = ctl_opt(a, "policy")) != NULL) {
		put_str(org, "transitionPolicy",
		        ctl_enum_arg("TRANSITION_POLICY_", v, buf, sizeof(buf)));
		MASK("transitionPolicy");
	}
#undef MASK
	return 0;
}

static int cmd_org_create(struct ctl *ctx, const struct ctl_args *a)
{
	json_t *org = json_object(), *req;
	char mask[256];
	const char *id;

	if (need_pos(a, 1, "ID") || org_fields(a, org, mask, sizeof(mask))) {
		json_decref(org);
		return CTL_EXIT_USAGE;
	}
	id = a->pos[0];
	if (strncmp(id, "organizations/", 14) == 0)
		id += 14;
	req = json_pack("{s:o,s:s}", "organization", org, "organizationId", id);
	put_str(req, "requestId", ctl_opt(a, "request-id"));
	return show(ctx, SVC "OrganizationService/CreateOrganization", req, org_show);
}

static int cmd_org_update(struct ctl *ctx, const struct ctl_args *a)
{
	json_t *org = json_object();
	char mask[256], name[256];

	if (need_pos(a, 1, "ORG") || org_fields(a, org, mask, sizeof(mask))) {
		json_decref(org);
		return CTL_EXIT_USAGE;
	}
	if (mask[0] == '\0') {
		json_decref(org);
		return ctl_usage_error("nothing to update (see --help)");
	}
	put_str(org, "name", ctl_org_name(a->pos[0], name, sizeof(name)));
	put_str(org, "etag", ctl_opt(a, "etag"));
	return show(ctx, SVC "OrganizationService/UpdateOrganization",
	            json_pack("{s:o,s:s}", "organization", org, "updateMask", mask), org_show);
}

static void deleted(struct ctl *ctx, json_t *r)
{
	(void)ctx;
	(void)r;
	printf("deleted\n");
}

static int cmd_org_delete(struct ctl *ctx, const struct ctl_args *a)
{
	char name[256];
	json_t *req;

	if (need_pos(a, 1, "ORG"))
		return CTL_EXIT_USAGE;
	req = json_pack("{s:s,s:b}", "name", ctl_org_name(a->pos[0], name, sizeof(name)), "force",
	                ctl_has(a, "force"));
	put_str(req, "etag", ctl_opt(a, "etag"));
	return show(ctx, SVC "OrganizationService/DeleteOrganization", req, deleted);
}

static int cmd_assessment_list(struct ctl *ctx, const struct ctl_args *a)
{
	char name[256], st[64];
	json_t *req;

	if (need_pos(a, 1, "ORG"))
		return CTL_EXIT_USAGE;
	req = json_pack("{s:s}", "parent", ctl_org_name(a->pos[0], name, sizeof(name)));
	if (ctl_opt(a, "state") != NULL)
		put_str(req, "state", ctl_enum_arg("STATE_", ctl_opt(a, "state"), st, sizeof(st)));
	return list_all(ctx, a, SVC "AssessmentService/ListAssessments", req, "assessments",
	                assessment_table);
}

static int cmd_assessment_get(struct ctl *ctx, const struct ctl_args *a)
{
	char name[512];

	if (need_pos(a, 1, "NAME"))
		return CTL_EXIT_USAGE;
	return show(ctx, SVC "AssessmentService/GetAssessment",
	            json_pack("{s:s}", "name", ctl_org_name(a->pos[0], name, sizeof(name))),
	            assessment_show);
}

static int cmd_assessment_create(struct ctl *ctx, const struct ctl_args *a)
{
	char name[256];
	json_t *as = json_object(), *req;

	if (need_pos(a, 1, "ORG")) {
		json_decref(as);
		return CTL_EXIT_USAGE;
	}
	put_str(as, "title", ctl_opt(a, "title"));
	put_str(as, "model", ctl_opt(a, "model"));
	req = json_pack("{s:s,s:o}", "parent", ctl_org_name(a->pos[0], name, sizeof(name)),
	                "assessment", as);
	put_str(req, "requestId", ctl_opt(a, "request-id"));
	if (ctl_has(a, "prefill-from-evidence"))
		json_object_set_new(req, "prefillFromEvidence", json_true());
	return show(ctx, SVC "AssessmentService/CreateAssessment", req, assessment_show);
}

static int cmd_assessment_answer(struct ctl *ctx, const struct ctl_args *a)
{
	char name[512];
	json_t *answers, *req;

	if (a->npos < 1)
		return ctl_usage_error("missing NAME (see --help)");
	if (ctl_opt(a, "file") != NULL) {
		answers = parse_answers(ctl_opt(a, "file"));
		if (answers == NULL)
			return CTL_EXIT_USAGE;
	} else {
		answers = json_array();
	}
	for (int i = 1; i < a->npos; i++) {
		const char *eq = strchr(a->pos[i], '=');
		char id[256], st[128];
		if (eq == NULL || eq == a->pos[i]) {
			json_decref(answers);
			return ctl_usage_error("want PRACTICE_ID=STATUS, not \"%s\"", a->pos[i]);
		}
		snprintf(id, sizeof(id), "%.*s", (int)(eq - a->pos[i]), a->pos[i]);
		json_t *an = json_pack("{s:s,s:s}", "practiceId", id, "status",
		                       ctl_enum_arg("PRACTICE_STATUS_", eq + 1, st, sizeof(st)));
		put_str(an, "note", ctl_opt(a, "note"));
		put_str(an, "evidenceUri", ctl_opt(a, "evidence-uri"));
		json_array_append_new(answers, an);
	}
	if (json_array_size(answers) == 0) {
		json_decref(answers);
		return ctl_usage_error(
		    "no answers: give PRACTICE_ID=STATUS or --file (see --help)");
	}
	req = json_pack("{s:s,s:o}", "name", ctl_org_name(a->pos[0], name, sizeof(name)), "answers",
	                answers);
	put_str(req, "etag", ctl_opt(a, "etag"));
	return show(ctx, SVC "AssessmentService/UpdateAnswers", req, assessment_show);
}

static int cmd_assessment_submit(struct ctl *ctx, const struct ctl_args *a)
{
	char name[512];
	json_t *req;

	if (need_pos(a, 1, "NAME"))
		return CTL_EXIT_USAGE;
	req = json_pack("{s:s}", "name", ctl_org_name(a->pos[0], name, sizeof(name)));
	put_str(req, "etag", ctl_opt(a, "etag"));
	return show(ctx, SVC "AssessmentService/SubmitAssessment", req, assessment_show);
}

static int cmd_assessment_delete(struct ctl *ctx, const struct ctl_args *a)
{
	char name[512];
	json_t *req;

	if (need_pos(a, 1, "NAME"))
		return CTL_EXIT_USAGE;
	req = json_pack("{s:s}", "name", ctl_org_name(a->pos[0], name, sizeof(name)));
	put_str(req, "etag", ctl_opt(a, "etag"));
	return show(ctx, SVC "AssessmentService/DeleteAssessment", req, deleted);
}

static void score_table(struct ctl *ctx, json_t *r)
{
	score_show(ctx, json_object_get(r, "score"));
}

static int cmd_score(struct ctl *ctx, const struct ctl_args *a)
{
	json_t *answers, *req;

	if (a->npos > 1)
		return need_pos(a, 1, "");
	answers = parse_answers(a->npos == 1 ? a->pos[0] : "-");
	if (answers == NULL)
		return CTL_EXIT_USAGE;
	req = json_pack("{s:o}", "answers", answers);
	put_str(req, "model", ctl_opt(a, "model"));
	return show(ctx, SVC "ScoringService/EvaluateAnswers", req, score_table);
}

static void roadmap_table(struct ctl *ctx, json_t *r)
{
	char b[96];
	size_t i, k;
	json_t *stage, *step;

	kv("organization:", ctl_get(r, "organization", b, sizeof(b)));
	kv("assessment:", ctl_get(r, "assessment", b, sizeof(b)));
	kv("current level:", ctl_level_label(ctx, ctl_get_int(r, "currentLevel"), b, sizeof(b)));
	kv("target level:", ctl_level_label(ctx, ctl_get_int(r, "targetLevel"), b, sizeof(b)));
	json_array_foreach(json_object_get(r, "stages"), i, stage)
	{
		char n[128];
		printf("\nLevel %ld %s\n", ctl_get_int(stage, "level"),
		       ctl_get(stage, "name", n, sizeof(n)));
		json_array_foreach(json_object_get(stage, "steps"), k, step)
		{
			char id[128], st[64], ti[256];
			printf("  %-16s %-48s %s\n", short_enum(step, "status", st, sizeof(st)),
			       ctl_get(step, "practiceId", id, sizeof(id)),
			       ctl_get(step, "title", ti, sizeof(ti)));
		}
	}
	if (json_array_size(json_object_get(r, "ahead")) > 0)
		printf("\nahead (beyond the target): %zu practices\n",
		       json_array_size(json_object_get(r, "ahead")));
}

static int cmd_roadmap(struct ctl *ctx, const struct ctl_args *a)
{
	char name[256], as[512];
	json_t *req;

	if (need_pos(a, 1, "ORG"))
		return CTL_EXIT_USAGE;
	req = json_pack("{s:s}", "organization", ctl_org_name(a->pos[0], name, sizeof(name)));
	if (ctl_opt(a, "assessment") != NULL)
		put_str(req, "assessment", ctl_org_name(ctl_opt(a, "assessment"), as, sizeof(as)));
	if (put_int(req, "targetLevel", "target-level", ctl_opt(a, "target-level"))) {
		json_decref(req);
		return CTL_EXIT_USAGE;
	}
	return show(ctx, SVC "ScoringService/GetRoadmap", req, roadmap_table);
}

static int cmd_transition_list(struct ctl *ctx, const struct ctl_args *a)
{
	char name[256], st[64];
	json_t *req;

	if (a->npos > 1)
		return need_pos(a, 1, "");
	req = json_pack("{s:s}", "parent",
	                a->npos == 1 ? ctl_org_name(a->pos[0], name, sizeof(name))
	                             : "organizations/-");
	if (ctl_opt(a, "state") != NULL)
		put_str(req, "state", ctl_enum_arg("STATE_", ctl_opt(a, "state"), st, sizeof(st)));
	put_str(req, "startTime", ctl_opt(a, "since"));
	put_str(req, "endTime", ctl_opt(a, "until"));
	return list_all(ctx, a, SVC "TransitionService/ListTransitions", req, "transitions",
	                transition_table);
}

static int cmd_transition_get(struct ctl *ctx, const struct ctl_args *a)
{
	char name[512];

	if (need_pos(a, 1, "NAME"))
		return CTL_EXIT_USAGE;
	return show(ctx, SVC "TransitionService/GetTransition",
	            json_pack("{s:s}", "name", ctl_org_name(a->pos[0], name, sizeof(name))),
	            transition_show);
}

static int cmd_transition_approve(struct ctl *ctx, const struct ctl_args *a)
{
	char name[512];
	json_t *req;

	if (need_pos(a, 1, "NAME"))
		return CTL_EXIT_USAGE;
	req = json_pack("{s:s}", "name", ctl_org_name(a->pos[0], name, sizeof(name)));
	put_str(req, "etag", ctl_opt(a, "etag"));
	return show(ctx, SVC "TransitionService/ApproveTransition", req, transition_show);
}

static int cmd_transition_reject(struct ctl *ctx, const struct ctl_args *a)
{
	char name[512];
	json_t *req;

	if (need_pos(a, 1, "NAME"))
		return CTL_EXIT_USAGE;
	req = json_pack("{s:s}", "name", ctl_org_name(a->pos[0], name, sizeof(name)));
	put_str(req, "reason", ctl_opt(a, "reason"));
	put_str(req, "etag", ctl_opt(a, "etag"));
	return show(ctx, SVC "TransitionService/RejectTransition", req, transition_show);
}

static void portfolio_table(struct ctl *ctx, json_t *r)
{
	static const char *const lh[] = {"LEVEL", "ORGANIZATIONS"};
	struct ctl_table *t;
	char b[96];
	size_t i, k;
	json_t *v, *d;

	kv("organizations:", ctl_get(r, "organizationCount", b, sizeof(b)));
	snprintf(b, sizeof(b), "%ld", ctl_get_int(r, "atOrAboveTargetCount"));
	kv("at/above target:", b);
	snprintf(b, sizeof(b), "%.2f", json_number_value(json_object_get(r, "meanMaturityIndex")));
	kv("mean index:", b);
	snprintf(b, sizeof(b), "%ld up, %ld down", ctl_get_int(r, "upgrades"),
	         ctl_get_int(r, "regressions"));
	kv("transitions:", b);
	printf("\n");
	t = ctl_table_new(2, lh);
	json_array_foreach(json_object_get(r, "organizationsPerLevel"), i, v)
	{
		char l[96], n[32];
		snprintf(n, sizeof(n), "%s", json_string_value(v));
		const char *row[] = {ctl_level_label(ctx, (long)i, l, sizeof(l)), n};
		ctl_table_add(t, row);
	}
	ctl_table_print(t, stdout);
	ctl_table_free(t);
	if (json_array_size(json_object_get(r, "dimensions")) == 0)
		return;
	static const char *const dh[] = {"DIMENSION", "L0", "L1", "L2", "L3", "L4"};
	t = ctl_table_new(6, dh);
	json_array_foreach(json_object_get(r, "dimensions"), i, d)
	{
		char id[96], c[5][24];
		json_t *per = json_object_get(d, "organizationsPerLevel");
		for (k = 0; k < 5; k++)
			snprintf(c[k], sizeof(c[k]), "%s",
			         json_string_value(json_array_get(per, k)) ?: "0");
		const char *row[] = {
		    ctl_get(d, "dimensionId", id, sizeof(id)), c[0], c[1], c[2], c[3], c[4]};
		ctl_table_add(t, row);
	}
	printf("\n");
	ctl_table_print(t, stdout);
	ctl_table_free(t);
}

static int cmd_portfolio(struct ctl *ctx, const struct ctl_args *a)
{
	json_t *req = json_object();

	if (need_pos(a, 0, "") || put_pairs(req, "labels", a, "label", false)) {
		json_decref(req);
		return CTL_EXIT_USAGE;
	}
	put_str(req, "startTime", ctl_opt(a, "since"));
	put_str(req, "endTime", ctl_opt(a, "until"));
	return show(ctx, SVC "ReportingService/GetPortfolioSummary", req, portfolio_table);
}

/* Streams: one JSON object per line; a closed stdout stops the stream quietly. */
struct lines {
	bool closed;
	long count;
};

static int line_out(struct ctl *ctx, json_t *msg, void *ud)
{
	struct lines *l = ud;

	(void)ctx;
	if (ctl_print_json_line(msg) != 0) {
		l->closed = true;
		return 1;
	}
	l->count++;
	return 0;
}

static int export(struct ctl *ctx, const struct ctl_args *a, const char *method, json_t *req)
{
	struct lines l = {0};
	char org[256];
	int rc;

	if (need_pos(a, 0, "")) {
		json_decref(req);
		return CTL_EXIT_USAGE;
	}
	if (ctl_opt(a, "organization") != NULL)
		put_str(req, "organization",
		        ctl_org_name(ctl_opt(a, "organization"), org, sizeof(org)));
	put_str(req, "cursor", ctl_opt(a, "cursor"));
	rc = ctl_stream(ctx, method, req, line_out, &l, NULL);
	/* A reader that has seen enough (`| head`) is not a failure. */
	return l.closed ? CTL_EXIT_OK : rc;
}

static int cmd_export_assessments(struct ctl *ctx, const struct ctl_args *a)
{
	json_t *req = json_object();
	char st[64];

	if (ctl_opt(a, "state") != NULL)
		put_str(req, "state", ctl_enum_arg("STATE_", ctl_opt(a, "state"), st, sizeof(st)));
	put_str(req, "updatedAfter", ctl_opt(a, "updated-after"));
	return export(ctx, a, SVC "ReportingService/ExportAssessments", req);
}

static int cmd_export_transitions(struct ctl *ctx, const struct ctl_args *a)
{
	json_t *req = json_object();

	put_str(req, "startTime", ctl_opt(a, "since"));
	return export(ctx, a, SVC "ReportingService/ExportTransitions", req);
}

static void binding_table(struct ctl *ctx, json_t *r)
{
	static const char *const h[] = {"NAME", "PRINCIPAL", "ROLE", "ORGANIZATION", "CREATED"};
	struct ctl_table *t = ctl_table_new(5, h);
	size_t i;
	json_t *o;

	(void)ctx;
	json_array_foreach(json_object_get(r, "roleBindings"), i, o)
	{
		char n[160], p[600], ro[64], org[160], c[64];
		const char *org_v = ctl_get(o, "organization", org, sizeof(org));
		const char *row[] = {
		    ctl_get(o, "name", n, sizeof(n)), ctl_get(o, "principal", p, sizeof(p)),
		    short_enum(o, "role", ro, sizeof(ro)), org_v[0] ? org_v : "(global)",
		    ctl_get(o, "createTime", c, sizeof(c))};
		ctl_table_add(t, row);
	}
	ctl_table_print(t, stdout);
	ctl_table_free(t);
}

static void binding_show(struct ctl *ctx, json_t *o)
{
	json_t *wrap = json_pack("{s:[O]}", "roleBindings", o);

	binding_table(ctx, wrap);
	json_decref(wrap);
}

static int cmd_binding_list(struct ctl *ctx, const struct ctl_args *a)
{
	json_t *req = json_object();
	char org[256];

	if (need_pos(a, 0, "")) {
		json_decref(req);
		return CTL_EXIT_USAGE;
	}
	put_str(req, "principal", ctl_opt(a, "principal"));
	if (ctl_opt(a, "organization") != NULL)
		put_str(req, "organization",
		        ctl_org_name(ctl_opt(a, "organization"), org, sizeof(org)));
	return list_all(ctx, a, SVC "AccessService/ListRoleBindings", req, "roleBindings",
	                binding_table);
}

static int cmd_binding_create(struct ctl *ctx, const struct ctl_args *a)
{
	char role[64], org[256];
	json_t *b, *req;

	if (need_pos(a, 2, "PRINCIPAL ROLE"))
		return CTL_EXIT_USAGE;
	b = json_pack("{s:s,s:s}", "principal", a->pos[0], "role",
	              ctl_enum_arg("ROLE_", a->pos[1], role, sizeof(role)));
	if (ctl_opt(a, "organization") != NULL)
		put_str(b, "organization",
		        ctl_org_name(ctl_opt(a, "organization"), org, sizeof(org)));
	req = json_pack("{s:o}", "roleBinding", b);
	put_str(req, "requestId", ctl_opt(a, "request-id"));
	return show(ctx, SVC "AccessService/CreateRoleBinding", req, binding_show);
}

static int cmd_binding_delete(struct ctl *ctx, const struct ctl_args *a)
{
	char name[256];

	if (need_pos(a, 1, "NAME"))
		return CTL_EXIT_USAGE;
	if (strncmp(a->pos[0], "roleBindings/", 13) != 0)
		snprintf(name, sizeof(name), "roleBindings/%s", a->pos[0]);
	else
		snprintf(name, sizeof(name), "%s", a->pos[0]);
	return show(ctx, SVC "AccessService/DeleteRoleBinding", json_pack("{s:s}", "name", name),
	            deleted);
}

static void audit_table(struct ctl *ctx, json_t *r)
{
	static const char *const h[] = {"TIME", "PRINCIPAL", "METHOD", "RESOURCE", "CODE"};
	struct ctl_table *t = ctl_table_new(5, h);
	size_t i;
	json_t *o;

	(void)ctx;
	json_array_foreach(json_object_get(r, "auditEvents"), i, o)
	{
		char tm[64], p[600], m[160], res[256];
		const char *row[] = {
		    ctl_get(o, "time", tm, sizeof(tm)), ctl_get(o, "principal", p, sizeof(p)),
		    ctl_get(o, "method", m, sizeof(m)), ctl_get(o, "resource", res, sizeof(res)),
		    ctl_status_name((grpc_status_code)ctl_get_int(o, "code"))};
		ctl_table_add(t, row);
	}
	ctl_table_print(t, stdout);
	ctl_table_free(t);
}

static int cmd_audit(struct ctl *ctx, const struct ctl_args *a)
{
	json_t *req = json_object();

	if (need_pos(a, 0, "")) {
		json_decref(req);
		return CTL_EXIT_USAGE;
	}
	put_str(req, "principal", ctl_opt(a, "principal"));
	put_str(req, "startTime", ctl_opt(a, "since"));
	put_str(req, "endTime", ctl_opt(a, "until"));
	return list_all(ctx, a, SVC "AccessService/ListAuditEvents", req, "auditEvents",
	                audit_table);
}

static void evidence_table(struct ctl *ctx, json_t *r)
{
	static const char *const h[] = {"NAME",   "PRACTICE", "STATUS",
	                                "SOURCE", "OBSERVED", "EXPIRES"};
	struct ctl_table *t = ctl_table_new(6, h);
	size_t i;
	json_t *o;

	(void)ctx;
	json_array_foreach(json_object_get(r, "evidence"), i, o)
	{
		char n[200], p[128], st[64], s[160], ob[64], ex[64];
		const char *row[] = {ctl_get(o, "name", n, sizeof(n)),
		                     ctl_get(o, "practiceId", p, sizeof(p)),
		                     short_enum(o, "status", st, sizeof(st)),
		                     ctl_get(o, "source", s, sizeof(s)),
		                     ctl_get(o, "observeTime", ob, sizeof(ob)),
		                     ctl_get(o, "expireTime", ex, sizeof(ex))};
		ctl_table_add(t, row);
	}
	ctl_table_print(t, stdout);
	ctl_table_free(t);
}

static void evidence_show(struct ctl *ctx, json_t *o)
{
	json_t *wrap = json_pack("{s:[O]}", "evidence", o);

	evidence_table(ctx, wrap);
	json_decref(wrap);
}

static int cmd_evidence_report(struct ctl *ctx, const struct ctl_args *a)
{
	char org[256], st[64], now[64], exp[64], dur[64];
	json_t *ev, *req;
	int64_t obs_s;
	int32_t obs_ns;

	if (need_pos(a, 1, "ORG"))
		return CTL_EXIT_USAGE;
	if (ctl_opt(a, "practice") == NULL || ctl_opt(a, "status") == NULL ||
	    ctl_opt(a, "source") == NULL)
		return ctl_usage_error("--practice, --status and --source are required");
	ctl_time_format((int64_t)time(NULL), 0, now, sizeof(now));
	const char *observe = ctl_opt(a, "observe-time") ? ctl_opt(a, "observe-time") : now;
	const char *expire = ctl_opt(a, "expire-time");
	if (expire == NULL) {
		/* Default lifetime of a piece: 30 days, unless --ttl says otherwise. */
		const char *ttl = ctl_opt(a, "ttl") ? ctl_opt(a, "ttl") : "30d";
		if (duration_arg(ttl, dur, sizeof(dur)) == NULL)
			return ctl_usage_error("--ttl: \"%s\" is not a duration (e.g. 7d, 24h)",
			                       ttl);
		if (ctl_time_parse(observe, &obs_s, &obs_ns))
			return ctl_usage_error("--observe-time: \"%s\" is not an RFC 3339 time",
			                       observe);
		ctl_time_format(obs_s + (int64_t)strtod(dur, NULL), obs_ns, exp, sizeof(exp));
		expire = exp;
	}
	ev =
	    json_pack("{s:s,s:s,s:s,s:s,s:s}", "practiceId", ctl_opt(a, "practice"), "status",
	              ctl_enum_arg("PRACTICE_STATUS_", ctl_opt(a, "status"), st, sizeof(st)),
	              "source", ctl_opt(a, "source"), "observeTime", observe, "expireTime", expire);
	put_str(ev, "uri", ctl_opt(a, "uri"));
	put_str(ev, "digest", ctl_opt(a, "digest"));
	put_str(ev, "note", ctl_opt(a, "note"));
	req = json_pack("{s:s,s:o}", "parent", ctl_org_name(a->pos[0], org, sizeof(org)),
	                "evidence", ev);
	put_str(req, "requestId", ctl_opt(a, "request-id"));
	return show(ctx, SVC "EvidenceService/ReportEvidence", req, evidence_show);
}

static int cmd_evidence_list(struct ctl *ctx, const struct ctl_args *a)
{
	char org[256];
	json_t *req;

	if (need_pos(a, 1, "ORG"))
		return CTL_EXIT_USAGE;
	req = json_pack("{s:s}", "parent", ctl_org_name(a->pos[0], org, sizeof(org)));
	put_str(req, "practiceId", ctl_opt(a, "practice"));
	if (ctl_has(a, "include-expired"))
		json_object_set_new(req, "includeExpired", json_true());
	return list_all(ctx, a, SVC "EvidenceService/ListEvidence", req, "evidence",
	                evidence_table);
}

static void live_table(struct ctl *ctx, json_t *r)
{
	static const char *const h[] = {"PRACTICE", "STATUS", "BASIS", "ASSESSED", "DRIFT"};
	struct ctl_table *t;
	char b[96];
	size_t i;
	json_t *o;

	kv("organization:", ctl_get(r, "organization", b, sizeof(b)));
	snprintf(b, sizeof(b), "%.0f%%", 100 * json_number_value(json_object_get(r, "confidence")));
	kv("confidence:", b);
	kv("computed:", ctl_get(r, "computeTime", b, sizeof(b)));
	score_show(ctx, json_object_get(r, "score"));
	t = ctl_table_new(5, h);
	json_array_foreach(json_object_get(r, "practices"), i, o)
	{
		char p[128], st[64], ba[64], as[64];
		const char *row[] = {ctl_get(o, "practiceId", p, sizeof(p)),
		                     short_enum(o, "status", st, sizeof(st)),
		                     short_enum(o, "basis", ba, sizeof(ba)),
		                     short_enum(o, "assessedStatus", as, sizeof(as)),
		                     json_is_true(json_object_get(o, "drift")) ? "DRIFT" : ""};
		ctl_table_add(t, row);
	}
	printf("\n");
	ctl_table_print(t, stdout);
	ctl_table_free(t);
}

static int cmd_evidence_live(struct ctl *ctx, const struct ctl_args *a)
{
	char org[256];

	if (need_pos(a, 1, "ORG"))
		return CTL_EXIT_USAGE;
	return show(ctx, SVC "EvidenceService/GetLiveScore",
	            json_pack("{s:s}", "organization", ctl_org_name(a->pos[0], org, sizeof(org))),
	            live_table);
}

static void event_row(struct ctl_table *t, json_t *o)
{
	char tm[64], ty[64], r[256], p[600];
	const char *row[] = {
	    ctl_get(o, "time", tm, sizeof(tm)), short_enum(o, "type", ty, sizeof(ty)),
	    ctl_get(o, "resource", r, sizeof(r)), ctl_get(o, "principal", p, sizeof(p))};
	ctl_table_add(t, row);
}

static const char *const event_headers[] = {"TIME", "TYPE", "RESOURCE", "PRINCIPAL"};

static void events_table(struct ctl *ctx, json_t *r)
{
	struct ctl_table *t = ctl_table_new(4, event_headers);
	size_t i;
	json_t *o;

	(void)ctx;
	json_array_foreach(json_object_get(r, "events"), i, o) event_row(t, o);
	ctl_table_print(t, stdout);
	ctl_table_free(t);
}

/* The parent and event types shared by `events list` and `events watch`. */
static json_t *events_request(const struct ctl_args *a)
{
	char org[256], ty[96];
	json_t *req, *types = NULL;
	const char *v;

	if (a->npos > 1) {
		need_pos(a, 1, "");
		return NULL;
	}
	req =
	    json_pack("{s:s}", "parent",
	              a->npos == 1 ? ctl_org_name(a->pos[0], org, sizeof(org)) : "organizations/-");
	for (int i = 0; (v = ctl_opt_nth(a, "type", i)) != NULL; i++) {
		if (types == NULL)
			types = json_array();
		json_array_append_new(types,
		                      json_string(ctl_enum_arg("EVENT_TYPE_", v, ty, sizeof(ty))));
	}
	if (types != NULL)
		json_object_set_new(req, "types", types);
	return req;
}

static int cmd_events_list(struct ctl *ctx, const struct ctl_args *a)
{
	json_t *req = events_request(a);

	if (req == NULL)
		return CTL_EXIT_USAGE;
	return list_all(ctx, a, SVC "EventService/ListEvents", req, "events", events_table);
}

struct watch {
	char cursor[512];
	bool closed;
	bool got_message;
};

static int watch_out(struct ctl *ctx, json_t *msg, void *ud)
{
	struct watch *w = ud;
	const char *cursor = json_string_value(json_object_get(msg, "cursor"));
	json_t *ev = json_object_get(msg, "event");
	int rc = 0;

	w->got_message = true;
	if (ctx->json) {
		/* Heartbeats too: a script keeps the freshest cursor. */
		rc = ctl_print_json_line(msg);
	} else if (ev != NULL) {
		char tm[64], ty[64], r[256], p[600];
		rc = printf("%s  %-24s %s  %s\n", ctl_get(ev, "time", tm, sizeof(tm)),
		            short_enum(ev, "type", ty, sizeof(ty)),
		            ctl_get(ev, "resource", r, sizeof(r)),
		            ctl_get(ev, "principal", p, sizeof(p))) < 0 ||
		             fflush(stdout) != 0
		         ? -1
		         : 0;
	}
	if (rc != 0) {
		w->closed = true;
		return 1;
	}
	if (cursor != NULL)
		snprintf(w->cursor, sizeof(w->cursor), "%s", cursor);
	return 0;
}

static int cmd_events_watch(struct ctl *ctx, const struct ctl_args *a)
{
	json_t *req = events_request(a);
	struct watch w = {0};
	int backoff_ms = 500;

	if (req == NULL)
		return CTL_EXIT_USAGE;
	put_str(req, "after", ctl_opt(a, "after"));
	put_str(req, "startTime", ctl_opt(a, "since"));
	for (;;) {
		grpc_status_code code;
		json_t *r = json_deep_copy(req);
		int rc;

		if (w.cursor[0] != '\0') {
			/* Resume right after the last event (or heartbeat) seen. */
			json_object_del(r, "startTime");
			put_str(r, "after", w.cursor);
		}
		w.got_message = false;
		rc = ctl_stream(ctx, SVC "EventService/WatchEvents", r, watch_out, &w, &code);
		if (w.closed) {
			json_decref(req);
			return CTL_EXIT_OK;
		}
		/* A dropped connection, a server shutting down, or a reader too slow for the
		 * server's window: go on from the last cursor. Anything else is final. */
		if (code != GRPC_STATUS_UNAVAILABLE && code != GRPC_STATUS_RESOURCE_EXHAUSTED &&
		    code != GRPC_STATUS_INTERNAL) {
			json_decref(req);
			return code == GRPC_STATUS_OK ? CTL_EXIT_OK : rc;
		}
		if (w.got_message)
			backoff_ms = 500;
		fprintf(stderr, "maturityctl: watch interrupted; resuming in %d ms\n", backoff_ms);
		usleep((useconds_t)backoff_ms * 1000);
		if (backoff_ms < 16000)
			backoff_ms *= 2;
	}
}

static void gate_table(struct ctl *ctx, json_t *r)
{
	static const char *const h[] = {"REQUIREMENT", "REQUIRED", "ACTUAL", "MESSAGE"};
	struct ctl_table *t;
	char b[96];
	size_t i;
	json_t *o;

	bool allowed = json_is_true(json_object_get(r, "allowed"));
	printf("%s\n", allowed ? "ALLOWED" : "NOT ALLOWED");
	kv("organization:", ctl_get(r, "organization", b, sizeof(b)));
	kv("level:", ctl_level_label(ctx, ctl_get_int(r, "level"), b, sizeof(b)));
	kv("assessment:", ctl_get(r, "assessment", b, sizeof(b)));
	kv("decided:", ctl_get(r, "decideTime", b, sizeof(b)));
	if (json_array_size(json_object_get(r, "unmet")) == 0)
		return;
	t = ctl_table_new(4, h);
	json_array_foreach(json_object_get(r, "unmet"), i, o)
	{
		char f[160], rq[16], ac[16], m[512];
		snprintf(rq, sizeof(rq), "%ld", ctl_get_int(o, "requiredLevel"));
		snprintf(ac, sizeof(ac), "%ld", ctl_get_int(o, "actualLevel"));
		const char *row[] = {ctl_get(o, "field", f, sizeof(f)), rq, ac,
		                     ctl_get(o, "message", m, sizeof(m))};
		ctl_table_add(t, row);
	}
	printf("\n");
	ctl_table_print(t, stdout);
	ctl_table_free(t);
}

static int cmd_gate_check(struct ctl *ctx, const struct ctl_args *a)
{
	char org[256], dur[64];
	json_t *reqm = json_object(), *req, *subjects = NULL, *resp;
	const char *v;
	int rc;

	if (need_pos(a, 1, "ORG"))
		goto usage;
	if (ctl_opt(a, "min-level") == NULL) {
		ctl_usage_error("--min-level is required");
		goto usage;
	}
	if (put_int(reqm, "minLevel", "min-level", ctl_opt(a, "min-level")) ||
	    put_pairs(reqm, "minDimensionLevels", a, "dimension", true))
		goto usage;
	for (int i = 0; (v = ctl_opt_nth(a, "require", i)) != NULL; i++) {
		json_t *ids = json_object_get(reqm, "requiredPracticeIds");
		if (ids == NULL) {
			ids = json_array();
			json_object_set_new(reqm, "requiredPracticeIds", ids);
		}
		json_array_append_new(ids, json_string(v));
	}
	if ((v = ctl_opt(a, "max-evidence-age")) != NULL) {
		if (duration_arg(v, dur, sizeof(dur)) == NULL) {
			ctl_usage_error("--max-evidence-age: \"%s\" is not a duration (e.g. 7d)",
			                v);
			goto usage;
		}
		put_str(reqm, "maxEvidenceAge", dur);
	}
	if (ctl_has(a, "live"))
		json_object_set_new(reqm, "live", json_true());
	for (int i = 0; (v = ctl_opt_nth(a, "subject", i)) != NULL; i++) {
		const char *at = strrchr(v, '@');
		if (at == NULL || strncmp(at + 1, "sha256:", 7) != 0) {
			ctl_usage_error("--subject: want NAME@sha256:HEX, not \"%s\"", v);
			goto usage;
		}
		if (subjects == NULL)
			subjects = json_array();
		json_array_append_new(subjects,
		                      json_pack("{s:s#,s:{s:s}}", "name", v, (int)(at - v),
		                                "digest", "sha256", at + 8));
	}
	if (ctl_opt(a, "out") != NULL && !ctl_has(a, "attest")) {
		ctl_usage_error("--out writes the attestation: it needs --attest");
		goto usage;
	}
	req = json_pack("{s:s,s:o}", "organization", ctl_org_name(a->pos[0], org, sizeof(org)),
	                "requirement", reqm);
	if (subjects != NULL)
		json_object_set_new(req, "subjects", subjects);
	if (ctl_has(a, "attest"))
		json_object_set_new(req, "attest", json_true());
	rc = ctl_unary(ctx, SVC "GateService/CheckGate", req, &resp);
	if (rc != 0)
		return rc;
	if (ctl_opt(a, "out") != NULL) {
		json_t *env = json_object_get(resp, "attestation");
		FILE *f = fopen(ctl_opt(a, "out"), "w");
		if (f == NULL || env == NULL ||
		    json_dumpf(env, f, JSON_INDENT(2) | CTL_JSON_DUMP_FLAGS) != 0 ||
		    fputc('\n', f) == EOF) {
			fprintf(stderr, "maturityctl: cannot write the attestation to %s\n",
			        ctl_opt(a, "out"));
			if (f != NULL)
				fclose(f);
			json_decref(resp);
			return CTL_EXIT_FAILED;
		}
		if (fclose(f) != 0) {
			json_decref(resp);
			return CTL_EXIT_FAILED;
		}
	}
	if (ctx->json)
		rc = ctl_print_json(resp);
	else
		gate_table(ctx, resp);
	if (rc == 0 && !json_is_true(json_object_get(resp, "allowed")))
		rc = CTL_EXIT_GATE;
	json_decref(resp);
	return rc;
usage:
	json_decref(reqm);
	json_decref(subjects);
	return CTL_EXIT_USAGE;
}

static void keys_table(struct ctl *ctx, json_t *r)
{
	static const char *const h[] = {"KEYID", "ALGORITHM", "ACTIVE"};
	struct ctl_table *t = ctl_table_new(3, h);
	size_t i;
	json_t *o;

	(void)ctx;
	json_array_foreach(json_object_get(r, "keys"), i, o)
	{
		char k[96], al[64];
		const char *row[] = {ctl_get(o, "keyid", k, sizeof(k)),
		                     ctl_get(o, "algorithm", al, sizeof(al)),
		                     json_is_true(json_object_get(o, "active")) ? "yes" : "no"};
		ctl_table_add(t, row);
	}
	ctl_table_print(t, stdout);
	ctl_table_free(t);
	json_array_foreach(json_object_get(r, "keys"), i, o)
	    printf("\n%s", json_string_value(json_object_get(o, "publicKeyPem")) ?: "");
}

static int cmd_attestation_keys(struct ctl *ctx, const struct ctl_args *a)
{
	if (need_pos(a, 0, ""))
		return CTL_EXIT_USAGE;
	return show(ctx, SVC "GateService/ListAttestationKeys", json_object(), keys_table);
}

static int cmd_attestation_verify(struct ctl *ctx, const struct ctl_args *a)
{
	(void)ctx;
	if (need_pos(a, 1, "FILE"))
		return CTL_EXIT_USAGE;
	if (ctl_opt(a, "key") == NULL)
		return ctl_usage_error("--key PUBLIC.pem is required");
	return ctl_attest_verify(ctl_opt(a, "key"), a->pos[0]);
}

static int call_out(struct ctl *ctx, json_t *msg, void *ud)
{
	struct lines *l = ud;

	(void)ctx;
	if (ctl_print_json_line(msg) != 0) {
		l->closed = true;
		return 1;
	}
	return 0;
}

static int cmd_call(struct ctl *ctx, const struct ctl_args *a)
{
	const char *d = ctl_opt(a, "d") ? ctl_opt(a, "d") : ctl_opt(a, "data");
	struct ctl_method m;
	json_t *req;

	if (need_pos(a, 1, "SERVICE/METHOD"))
		return CTL_EXIT_USAGE;
	if (ctl_method_find(a->pos[0], &m))
		return ctl_usage_error("unknown method %s (want the full name, e.g. "
		                       "mlops.maturity.v1.OrganizationService/GetOrganization)",
		                       a->pos[0]);
	if (d == NULL) {
		req = json_object();
	} else if (d[0] == '@' || strcmp(d, "-") == 0) {
		req = load_json(d[0] == '@' ? d + 1 : d);
		if (req == NULL)
			return CTL_EXIT_USAGE;
	} else {
		json_error_t je;
		req = json_loads(d, JSON_DECODE_ANY, &je);
		if (req == NULL)
			return ctl_usage_error("-d: invalid JSON at column %d: %s", je.column,
			                       je.text);
	}
	if (m.server_streaming) {
		struct lines l = {0};
		int rc = ctl_stream(ctx, a->pos[0], req, call_out, &l, NULL);
		return l.closed ? CTL_EXIT_OK : rc;
	}
	return show(ctx, a->pos[0], req, NULL);
}

/* Prints the words of a command's flag list ("a= b=* c") as "--a --b --c". */
static void print_flags(const char *flags)
{
	const char *p = flags;

	while (*p != '\0') {
		size_t len = strcspn(p, " =");
		if (len > 1)
			printf(" --%.*s", (int)len, p);
		else if (len == 1)
			printf(" -%.*s", (int)len, p);
		p += strcspn(p, " ");
		p += strspn(p, " ");
	}
}

/* A bash completion script made from the command table, so it never falls behind it. */
static int cmd_completion(struct ctl *ctx, const struct ctl_args *a)
{
	const char *globals = "--server --cacert --cert --key --server-name --timeout "
	                      "--on-behalf-of --output -o --config --help";

	(void)ctx;
	if (need_pos(a, 1, "SHELL (bash)"))
		return CTL_EXIT_USAGE;
	if (strcmp(a->pos[0], "bash") != 0)
		return ctl_usage_error("completion: only bash is supported");
	printf(
	    "# bash completion for maturityctl: . <(maturityctl completion bash)\n"
	    "_maturityctl() {\n"
	    "  local cur=${COMP_WORDS[COMP_CWORD]} prev=${COMP_WORDS[COMP_CWORD-1]}\n"
	    "  local w1=${COMP_WORDS[1]} w2=${COMP_WORDS[2]} flags=\"\"\n"
	    "  case \"$prev\" in\n"
	    "    -o|--output) COMPREPLY=($(compgen -W \"table json name\" -- \"$cur\")); return;;\n"
	    "    --cacert|--cert|--key|--config|--out|--file) COMPREPLY=($(compgen -f -- "
	    "\"$cur\")); return;;\n"
	    "  esac\n"
	    "  if [ \"$COMP_CWORD\" -eq 1 ]; then\n"
	    "    COMPREPLY=($(compgen -W \"");
	for (const struct ctl_command *c = ctl_commands; c->group != NULL; c++)
		if (c == ctl_commands || strcmp(c[-1].group, c->group) != 0)
			printf("%s ", c->group);
	printf("%s\" -- \"$cur\")); return\n  fi\n  case \"$w1\" in\n", globals);
	for (const struct ctl_command *c = ctl_commands; c->group != NULL; c++) {
		if (c->verb == NULL || (c != ctl_commands && strcmp(c[-1].group, c->group) == 0))
			continue;
		printf("    %s) if [ \"$COMP_CWORD\" -eq 2 ]; then COMPREPLY=($(compgen -W \"",
		       c->group);
		for (const struct ctl_command *v = c;
		     v->group != NULL && strcmp(v->group, c->group) == 0; v++)
			printf("%s ", v->verb);
		printf("\" -- \"$cur\")); return; fi;;\n");
	}
	printf("  esac\n  case \"$w1 $w2\" in\n");
	for (const struct ctl_command *c = ctl_commands; c->group != NULL; c++) {
		if (c->verb != NULL)
			printf("    \"%s %s\")", c->group, c->verb);
		else
			printf("    \"%s \"*)", c->group);
		printf(" flags=\"");
		print_flags(c->flags);
		printf("\";;\n");
	}
	printf("  esac\n"
	       "  if [[ \"$cur\" == -* ]]; then\n"
	       "    COMPREPLY=($(compgen -W \"$flags %s\" -- \"$cur\"))\n"
	       "  else\n"
	       "    COMPREPLY=($(compgen -f -- \"$cur\"))\n"
	       "  fi\n"
	       "}\n"
	       "complete -F _maturityctl maturityctl\n",
	       globals);
	return fflush(stdout) == 0 ? CTL_EXIT_OK : CTL_EXIT_FAILED;
}

/* clang-format off */
const struct ctl_command ctl_commands[] = {
    {"whoami", NULL, "", "",
     "Show who the server thinks you are: your principal and role bindings.", cmd_whoami},
    {"model", "show", "", "[MODEL]",
     "Show the maturity model (default models/mlops-v1): levels, dimensions, practices.",
     cmd_model_show},
    {"org", "list", "page-size= page-token=", "[--page-size N] [--page-token T]",
     "List organizations with their current and target levels.\n"
     "All pages are fetched unless --page-size or --page-token is given (then one page\n"
     "and its next page token, in -o json).", cmd_org_list},
    {"org", "get", "", "ORG",
     "Show one organization. ORG is an id or a full name (acme, organizations/acme).",
     cmd_org_get},
    {"org", "create", "display-name= description= label=* target-level= policy= request-id=",
     "ID --display-name NAME [--description TEXT] [--label KEY=VALUE]... [--target-level N]\n"
     "       [--policy manual-review|automatic] [--request-id UUID]",
     "Create an organization (admins). --request-id makes a retry safe.", cmd_org_create},
    {"org", "update",
     "display-name= description= label=* clear-labels target-level= policy= etag=",
     "ORG [--display-name NAME] [--description TEXT] [--label KEY=VALUE]... [--clear-labels]\n"
     "       [--target-level N] [--policy manual-review|automatic] [--etag ETAG]",
     "Change the given settings of an organization (only those).\n"
     "--label replaces all labels with the ones given; --clear-labels removes them all.",
     cmd_org_update},
    {"org", "delete", "force etag=", "ORG [--force] [--etag ETAG]",
     "Delete an organization; --force also deletes its assessments.", cmd_org_delete},
    {"assessment", "list", "state= page-size= page-token=",
     "ORG [--state draft|submitted] [--page-size N] [--page-token T]",
     "List an organization's assessments, newest first.", cmd_assessment_list},
    {"assessment", "get", "", "NAME",
     "Show an assessment with its score and answers.\n"
     "NAME is organizations/ORG/assessments/ID (the organizations/ prefix may be left out).",
     cmd_assessment_get},
    {"assessment", "create", "title= model= request-id= prefill-from-evidence",
     "ORG [--title TITLE] [--model MODEL] [--prefill-from-evidence] [--request-id UUID]",
     "Start a draft assessment.", cmd_assessment_create},
    {"assessment", "answer", "file= note= evidence-uri= etag=",
     "NAME [PRACTICE_ID=STATUS]... [--file FILE|-] [--note TEXT] [--evidence-uri URI] [--etag E]",
     "Record answers in a draft.\n"
     "STATUS: implemented, partial, not-implemented, not-applicable. --note and --evidence-uri apply to the answers on the command line.\n"
     "--file: a JSON array of answers, {\"answers\": [...]}, or `PRACTICE_ID STATUS` lines.",
     cmd_assessment_answer},
    {"assessment", "submit", "etag=", "NAME [--etag ETAG]",
     "Submit a draft: freezes its answers and score and may propose a level transition.",
     cmd_assessment_submit},
    {"assessment", "delete", "etag=", "NAME [--etag ETAG]", "Delete a draft assessment.",
     cmd_assessment_delete},
    {"score", NULL, "model=", "[FILE|-] [--model MODEL]",
     "Score answers without storing them.\n"
     "Answers come from FILE or stdin: a JSON array,\n"
     "{\"answers\": [...]}, or `PRACTICE_ID STATUS` lines.", cmd_score},
    {"roadmap", NULL, "assessment= target-level=",
     "ORG [--assessment NAME] [--target-level N]",
     "What to do next: the practices each level up to the target still needs.", cmd_roadmap},
    {"transition", "list", "state= since= until= page-size= page-token=",
     "[ORG] [--state proposed|applied|rejected|superseded] [--since TIME] [--until TIME]",
     "List level transitions (all organizations you may see, or one).\n"
     "TIME is RFC 3339, e.g. 2026-01-31T00:00:00Z; the window is on the proposal time.", cmd_transition_list},
    {"transition", "get", "", "NAME", "Show a level transition.", cmd_transition_get},
    {"transition", "approve", "etag=", "NAME [--etag ETAG]",
     "Approve a proposed transition (reviewers; not the submitter of its assessment).",
     cmd_transition_approve},
    {"transition", "reject", "reason= etag=", "NAME --reason TEXT [--etag ETAG]",
     "Reject a proposed transition.", cmd_transition_reject},
    {"portfolio", NULL, "label=* since= until=",
     "[--label KEY=VALUE]... [--since TIME] [--until TIME]",
     "Organizations per level and per dimension level, and transitions in a window.",
     cmd_portfolio},
    {"export", "assessments", "organization= state= updated-after= cursor=",
     "[--organization ORG] [--state draft|submitted] [--updated-after TIME] [--cursor C]",
     "Every matching assessment as JSON lines ({\"assessment\": {...}, \"cursor\": \"...\"}).\n"
     "Resume after any line with --cursor and that line's cursor.", cmd_export_assessments},
    {"export", "transitions", "organization= since= cursor=",
     "[--organization ORG] [--since TIME] [--cursor C]",
     "Every matching transition as JSON lines ({\"transition\": {...}, \"cursor\": \"...\"}).\n"
     "Resume after any line with --cursor and that line's cursor.", cmd_export_transitions},
    {"binding", "list", "principal= organization= page-size= page-token=",
     "[--principal P] [--organization ORG]", "List role bindings (admins).", cmd_binding_list},
    {"binding", "create", "organization= request-id=",
     "PRINCIPAL ROLE [--organization ORG] [--request-id UUID]",
     "Bind a role to a principal, globally or for one organization (admins).\n"
     "ROLE: admin, editor, reviewer, viewer, reporter, evidence-writer.", cmd_binding_create},
    {"binding", "delete", "", "NAME", "Delete a role binding (roleBindings/ID or ID).",
     cmd_binding_delete},
    {"audit", NULL, "principal= since= until= page-size= page-token=",
     "[--principal P] [--since TIME] [--until TIME]",
     "The audit log, newest first (admins).", cmd_audit},
    {"evidence", "report",
     "practice= status= source= observe-time= expire-time= ttl= uri= digest= note= request-id=",
     "ORG --practice ID --status STATUS --source SOURCE [--observe-time TIME]\n"
     "       [--expire-time TIME | --ttl DURATION] [--uri URI] [--digest sha256:HEX]\n"
     "       [--note TEXT] [--request-id UUID]",
     "Report an observation of a practice. Observed now and valid 30 days unless told.",
     cmd_evidence_report},
    {"evidence", "list", "practice= include-expired page-size= page-token=",
     "ORG [--practice ID] [--include-expired]", "List an organization's evidence.",
     cmd_evidence_list},
    {"evidence", "live", "", "ORG",
     "The live score of an organization.\n"
     "Each practice's status comes from current evidence, else from the last submitted\n"
     "assessment.", cmd_evidence_live},
    {"events", "list", "type=* page-size= page-token=", "[ORG] [--type TYPE]...",
     "Recent events, newest first. TYPE e.g. assessment-submitted, transition-applied.",
     cmd_events_list},
    {"events", "watch", "type=* after= since=", "[ORG] [--type TYPE]... [--after CURSOR] [--since TIME]",
     "Follow events as they happen.\n"
     "-o json: JSON lines with cursors. Resumes by itself from the last cursor when the\n"
     "connection drops.", cmd_events_watch},
    {"gate", "check", "min-level= dimension=* require=* max-evidence-age= live subject=* attest out=",
     "ORG --min-level N [--dimension ID=N]... [--require PRACTICE]...\n"
     "       [--max-evidence-age DURATION] [--live] [--subject NAME@sha256:HEX]...\n"
     "       [--attest --out FILE]",
     "May ORG ship? Exit 0 when allowed, 3 when not (1 when the call fails).\n"
     "--attest --out FILE writes the signed decision (a DSSE envelope, JSON) to FILE.",
     cmd_gate_check},
    {"attestation", "keys", "", "", "The public keys attestations are signed with.",
     cmd_attestation_keys},
    {"attestation", "verify", "key=", "--key PUBLIC.pem FILE",
     "Verify a saved signed gate decision (DSSE envelope) offline.\n"
     "Prints its statement and exits 0 when a signature verifies with the key (Ed25519 or\n"
     "ECDSA P-256), else exits 1.",
     cmd_attestation_verify},
    {"call", NULL, "d= data=", "SERVICE/METHOD [-d JSON|@FILE|-]",
     "Call any method by its full name.\n"
     "The request is proto3 JSON (default {}), e.g.\n"
     "  maturityctl call mlops.maturity.v1.OrganizationService/GetOrganization \\\n"
     "      -d '{\"name\": \"organizations/acme\"}'\n"
     "Streaming methods print JSON lines.", cmd_call},
    {"completion", NULL, "", "bash",
     "Print a bash completion script: . <(maturityctl completion bash)", cmd_completion},
    {NULL, NULL, NULL, NULL, NULL, NULL},
};
/* clang-format on */
