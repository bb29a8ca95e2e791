/* Role bindings as auth/ needs them on every call (never cached: docs/permissions.md), and the
 * audit event of a refused call (PERMISSION_DENIED / UNAUTHENTICATED) or of a signed gate decision,
 * neither of which has a transaction of its own. Then AccessService: bindings created (request_id
 * idempotency), deleted and listed by id, and audit events listed newest first; keyset pages
 * throughout. */
#include "store_internal.h"
#include "store_token.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

enum mat_code store_bindings_for_principal(const struct store_call *c, const char *principal,
                                           struct mat_role_binding **out, size_t *n_out,
                                           struct mat_error *err)
{
	struct store__cmd cmd = {.st = store__st_bindings_of(),
	                         .params =
	                             (const char *const[]){principal != NULL ? principal : ""}};
	enum mat_code rc;

	*out = NULL;
	*n_out = 0;
	rc = store__read(c, &cmd, 1, err);
	if (rc != MAT_OK)
		return rc;
	return store__bindings_decode(&cmd, out, n_out, err);
}

static enum mat_code audit_one(const struct store_call *c, const char *resource, int grpc_code,
                               struct mat_error *err)
{
	struct store__audit audit;
	struct store__cmd cmd;
	enum mat_code rc = store__audit_cmd(&audit, c, resource, grpc_code, &cmd, err);

	if (rc != MAT_OK)
		return rc;
	rc = store__write1(c, &cmd, err);
	store__cmds_clear(&cmd, 1);
	return rc;
}

enum mat_code store_audit_denied(const struct store_call *c, const char *resource, int grpc_code,
                                 struct mat_error *err)
{
	return audit_one(c, resource, grpc_code, err);
}

/* The common audit row (store__audit_cmd's seven parameters) and the decision. */
STORE__STMT(st_audit_attested, 8,
            "INSERT INTO audit_events (id, principal, method, resource, code, request_id, "
            "delegator, allowed) VALUES ($1::uuid, $2, $3, $4, $5::int, $6, $7, $8::bool)");

enum mat_code store_audit_attested(const struct store_call *c, const char *resource, bool allowed,
                                   struct mat_error *err)
{
	struct store__audit audit;
	struct store__cmd cmd;
	const char *params[8];
	enum mat_code rc = store__audit_cmd(&audit, c, resource, 0, &cmd, err);

	if (rc != MAT_OK)
		return rc;
	memcpy(params, audit.params, sizeof(audit.params));
	params[7] = allowed ? "true" : "false";
	cmd = (struct store__cmd){.st = &st_audit_attested, .params = params};
	rc = store__write1(c, &cmd, err);
	store__cmds_clear(&cmd, 1);
	return rc;
}

/* --- role bindings (AccessService) ---------------------------------------------------------- */

#define BINDING_COLS STORE__BINDING_COLS

STORE__STMT(st_binding_insert, 5,
            "INSERT INTO role_bindings AS b (id, principal, role, org_id, creator) "
            "VALUES ($1::uuid, $2, $3::smallint, $4, $5) RETURNING " BINDING_COLS);
STORE__STMT(st_binding_get, 1,
            "SELECT " BINDING_COLS " FROM role_bindings b WHERE b.id = $1::uuid");
STORE__STMT(st_binding_delete, 1, "DELETE FROM role_bindings WHERE id = $1::uuid RETURNING 1");
/* $1 principal ('' = any); $2: 0 any organization, 1 global bindings only, 2 the organization
 * $3. Keyset on id (a binding list is small next to the other tables: one statement does). */
STORE__STMT(st_binding_page, 5,
            "SELECT " BINDING_COLS " FROM role_bindings b WHERE ($1 = '' OR b.principal = $1) "
            "AND CASE $2::int WHEN 0 THEN true WHEN 1 THEN b.org_id IS NULL "
            "ELSE b.org_id = $3 END AND b.id > $4::uuid ORDER BY b.id LIMIT $5::int");

static const char *const role_names[] = {"ROLE_UNSPECIFIED",    "ROLE_ADMIN",  "ROLE_EDITOR",
                                         "ROLE_REVIEWER",       "ROLE_VIEWER", "ROLE_REPORTER",
                                         "ROLE_EVIDENCE_WRITER"};

static int clamp_page(int page_size)
{
	if (page_size <= 0)
		return MAT_PAGE_SIZE_DEFAULT;
	return page_size > MAT_PAGE_SIZE_MAX ? MAT_PAGE_SIZE_MAX : page_size;
}

struct binding_create_args {
	const struct mat_role_binding *in;
	const char *org_id;     /* NULL for a global binding */
	const char *request_id; /* "" for none */
	char id[STORE_UUID_TEXT];
	char role[8];
	char resource[64];
	struct mat_role_binding *out;
};

static enum mat_code binding_create_body(struct store__tx *tx, void *arg, struct mat_error *err)
{
	struct binding_create_args *a = arg;
	const char *creator = tx->c->principal != NULL ? tx->c->principal : "";
	const char *params[5] = {a->id, a->in->principal, a->role, a->org_id, creator};
	struct store__cmd cmds[2] = {{.st = &st_binding_insert, .params = params}};
	struct store__audit audit;
	enum mat_code rc;

	mat_role_binding_cleanup(a->out);
	if (a->request_id[0] != '\0') {
		bool claimed = false;
		char *prior = NULL;

		rc = store__idem_claim(tx, a->request_id, "role_binding", a->resource, &claimed,
		                       &prior, err);
		if (rc != MAT_OK)
			return rc;
		if (!claimed) {
			/* A retry: answer with what the first call created, write nothing. */
			PGresult *r = NULL;
			const char *id =
			    strncmp(prior, "roleBindings/", 13) == 0 ? prior + 13 : prior;
			uint8_t b[16];

			if (!store__uuid_parse(id, b))
				rc = mat_error_set(err, MAT_INTERNAL,
				                   "idempotency key names %s, not a role binding",
				                   prior);
			else
				rc = STORE__EXEC(tx, &st_binding_get, &r, err, id);
			if (rc == MAT_OK && PQntuples(r) == 0)
				rc = mat_error_set(
				    err, MAT_NOT_FOUND,
				    "%s, created by this request_id, no longer exists", prior);
			if (rc == MAT_OK)
				rc = store__binding_from_row(r, 0, a->out, err);
			PQclear(r);
			free(prior);
			return rc;
		}
	}
	rc = store__audit_cmd(&audit, tx->c, a->resource, 0, &cmds[1], err);
	if (rc != MAT_OK)
		return rc;
	rc = store__tx_run(tx, cmds, 2, err);
	if (rc == MAT_NOT_FOUND) /* the foreign key: no such organization */
		rc = mat_error_set(err, MAT_NOT_FOUND, "organizations/%s not found",
		                   a->org_id != NULL ? a->org_id : "");
	else if (rc == MAT_CONFLICT)
		rc = mat_error_set(err, MAT_CONFLICT, "a binding of %s to %s %s%s already exists",
		                   a->in->principal, role_names[a->in->role],
		                   a->org_id != NULL ? "on organizations/" : "globally",
		                   a->org_id != NULL ? a->org_id : "");
	if (rc == MAT_OK)
		rc = store__binding_from_row(cmds[0].res, 0, a->out, err);
	store__cmds_clear(cmds, 2);
	return rc;
}

enum mat_code store_binding_create(const struct store_call *c, const struct mat_role_binding *in,
                                   const char *request_id, struct mat_role_binding *out,
                                   struct mat_error *err)
{
	struct binding_create_args a = {.in = in, .out = out};
	char rid[STORE_UUID_TEXT];
	enum mat_code rc;

	memset(out, 0, sizeof(*out));
	/* The caller validated all of this; the database would refuse it too (CHECK), but with a
	 * message that names no field. */
	if (in == NULL || in->principal == NULL || in->principal[0] == '\0' ||
	    strlen(in->principal) > MAT_MAX_PRINCIPAL)
		return mat_error_field(err, "role_binding.principal", "missing or too long");
	if ((int)in->role <= MAT_ROLE_UNSPECIFIED || (int)in->role > MAT_ROLE_MAX)
		return mat_error_field(err, "role_binding.role", "unknown role");
	if (in->org_id != NULL && in->org_id[0] != '\0') {
		if (strlen(in->org_id) > MAT_MAX_ORG_ID)
			return mat_error_set(err, MAT_NOT_FOUND, "organizations/%s not found",
			                     in->org_id);
		if (in->role == MAT_ROLE_ADMIN || in->role == MAT_ROLE_REPORTER)
			return mat_error_field(err, "role_binding.organization",
			                       "admin and reporter are global roles");
		a.org_id = in->org_id;
	}
	rc = store__request_id(request_id, rid, err);
	if (rc != MAT_OK)
		return rc;
	a.request_id = rid;
	/* Generated once, outside the transaction body: a retried body reuses it. */
	rc = store__uuid7(a.id);
	if (rc != MAT_OK)
		return mat_error_set(err, rc, "no randomness for a role binding id");
	snprintf(a.role, sizeof(a.role), "%d", (int)in->role);
	snprintf(a.resource, sizeof(a.resource), "roleBindings/%s", a.id);
	rc = store__transact(c, binding_create_body, &a, err);
	if (rc != MAT_OK)
		mat_role_binding_cleanup(out);
	return rc;
}

struct binding_delete_args {
	const char *id;
	char resource[64];
};

static enum mat_code binding_delete_body(struct store__tx *tx, void *arg, struct mat_error *err)
{
	struct binding_delete_args *a = arg;
	struct store__cmd cmds[2] = {
	    {.st = &st_binding_delete, .params = (const char *const[]){a->id}}};
	struct store__audit audit;
	enum mat_code rc = store__audit_cmd(&audit, tx->c, a->resource, 0, &cmds[1], err);

	if (rc != MAT_OK)
		return rc;
	/* Delete and audit in one round trip; no row deleted rolls the audit row back. */
	rc = store__tx_run(tx, cmds, 2, err);
	if (rc == MAT_OK && PQntuples(cmds[0].res) == 0)
		rc = mat_error_set(err, MAT_NOT_FOUND, "%s not found", a->resource);
	store__cmds_clear(cmds, 2);
	return rc;
}

enum mat_code store_binding_delete(const struct store_call *c, const char *id,
                                   struct mat_error *err)
{
	struct binding_delete_args a;
	char nid[STORE_UUID_TEXT];
	uint8_t b[16];

	if (!store__uuid_parse(id, b))
		return mat_error_set(err, MAT_NOT_FOUND, "roleBindings/%s not found",
		                     id != NULL ? id : "");
	store__uuid_format(b, nid);
	a.id = nid;
	snprintf(a.resource, sizeof(a.resource), "roleBindings/%s", nid);
	return store__transact(c, binding_delete_body, &a, err);
}

static uint64_t binding_filter(const char *principal, int org_mode, const char *org_id)
{
	uint8_t mode = (uint8_t)org_mode;
	uint64_t h = store__fnv64(STORE_FNV64_INIT, "role_bindings", 14); /* with the NUL */

	h = store__fnv64(h, principal, strlen(principal) + 1);
	h = store__fnv64(h, &mode, 1);
	return store__fnv64(h, org_id, strlen(org_id) + 1);
}

enum mat_code store_binding_list(const struct store_call *c, const char *principal,
                                 const char *org_id, int page_size, const char *page_token,
                                 struct mat_role_binding **out, size_t *n_out, char **next_token,
                                 struct mat_error *err)
{
	const char *who = principal != NULL ? principal : "";
	int mode = org_id == NULL ? 0 : org_id[0] == '\0' ? 1 : 2;
	const char *org = mode == 2 ? org_id : "";
	char after[STORE_UUID_TEXT] = "00000000-0000-0000-0000-000000000000";
	char mode_s[4], limit[16];
	const char *params[5] = {who, mode_s, org, after, limit};
	struct store__cmd cmd = {.st = &st_binding_page, .params = params};
	struct mat_role_binding *list = NULL;
	char token[STORE_TOKEN_MAX_TEXT] = "";
	size_t n = 0;
	int rows;
	enum mat_code rc;

	*out = NULL;
	*n_out = 0;
	*next_token = NULL;
	page_size = clamp_page(page_size);
	if (page_token != NULL && page_token[0] != '\0') {
		uint8_t key[STORE_TOKEN_MAX_KEY];
		size_t klen;
		rc = store__token_decode(page_token, STORE_LIST_ROLE_BINDINGS,
		                         binding_filter(who, mode, org), key, &klen, err);
		if (rc != MAT_OK)
			return rc;
		if (klen != 16)
			return mat_error_field(err, "page_token", "invalid page token");
		store__uuid_format(key, after);
	}
	snprintf(mode_s, sizeof(mode_s), "%d", mode);
	/* One row more than the page tells whether there is a next page. */
	snprintf(limit, sizeof(limit), "%d", page_size + 1);
	rc = store__read(c, &cmd, 1, err);
	if (rc != MAT_OK)
		return rc;
	rows = PQntuples(cmd.res);
	if (rows > page_size)
		rows = page_size;
	list = calloc(rows > 0 ? (size_t)rows : 1, sizeof(*list));
	if (list == NULL) {
		rc = store__oom(err);
		goto out;
	}
	for (; n < (size_t)rows; n++) {
		rc = store__binding_from_row(cmd.res, (int)n, &list[n], err);
		if (rc != MAT_OK)
			goto out;
	}
	if (PQntuples(cmd.res) > page_size) {
		uint8_t key[16];
		(void)store__uuid_parse(list[n - 1].id, key);
		store__token_encode(STORE_LIST_ROLE_BINDINGS, binding_filter(who, mode, org), key,
		                    16, token);
	}
	*next_token = strdup(token);
	rc = *next_token != NULL ? MAT_OK : store__oom(err);
out:
	store__cmds_clear(&cmd, 1);
	if (rc != MAT_OK) {
		for (size_t i = 0; i < n; i++)
			mat_role_binding_cleanup(&list[i]);
		free(list);
		return rc;
	}
	*out = list;
	*n_out = n;
	return MAT_OK;
}

/* --- audit list ------------------------------------------------------------------------------ */

#define AUDIT_COLS                                                                      \
	"e.id::text, mat_epoch_us(e.time), e.principal, e.method, e.resource, e.code, " \
	"e.request_id, e.delegator, e.allowed"
/* Newest first: strictly before the position ($3, $4) in (time, id) descending order. Two
 * statements, so each gets a plan on its own index (audit_events_principal / _time). */
#define AUDIT_WINDOW                                                                   \
	"e.time >= $1::timestamptz AND e.time < $2::timestamptz AND (e.time, e.id) < " \
	"($3::timestamptz, $4::uuid) "

STORE__STMT(st_audit_page, 5,
            "SELECT " AUDIT_COLS " FROM audit_events e WHERE " AUDIT_WINDOW
            "ORDER BY e.time DESC, e.id DESC LIMIT $5::int");
STORE__STMT(st_audit_page_of, 6,
            "SELECT " AUDIT_COLS " FROM audit_events e WHERE " AUDIT_WINDOW
            "AND e.principal = $6 ORDER BY e.time DESC, e.id DESC LIMIT $5::int");

static enum mat_code event_from_row(const PGresult *res, int row, struct mat_audit_event *e,
                                    struct mat_error *err)
{
	struct store__row r = {.res = res, .row = row};

	mat_audit_event_cleanup(e);
	e->id = store__text0(&r, 0);
	e->time = store__int(&r, 1);
	e->principal = store__text0(&r, 2);
	e->method = store__text0(&r, 3);
	e->resource = store__text0(&r, 4);
	e->code = (int)store__int(&r, 5);
	e->request_id = store__text0(&r, 6);
	e->delegator = store__text0(&r, 7);
	e->allowed = store__is_null(&r, 8) ? -1 : (PQgetvalue(res, row, 8)[0] == 't');
	if (r.oom) {
		mat_audit_event_cleanup(e);
		return store__oom(err);
	}
	return MAT_OK;
}

static uint64_t audit_filter(const char *principal, mat_time_us start, mat_time_us end)
{
	uint64_t h = store__fnv64(STORE_FNV64_INIT, "audit_events", 13); /* with the NUL */

	h = store__fnv64(h, principal, strlen(principal) + 1);
	h = store__fnv64_i64(h, start);
	return store__fnv64_i64(h, end);
}

enum mat_code store_audit_list(const struct store_call *c, const char *principal,
                               mat_time_us start_time, mat_time_us end_time, int page_size,
                               const char *page_token, struct mat_audit_event **out, size_t *n_out,
                               char **next_token, struct mat_error *err)
{
	const char *who = principal != NULL ? principal : "";
	char start[STORE_TIME_TEXT], end[STORE_TIME_TEXT], before_t[STORE_TIME_TEXT] = "infinity";
	char before_id[STORE_UUID_TEXT] = "ffffffff-ffff-ffff-ffff-ffffffffffff";
	char limit[16];
	const char *params[6] = {start, end, before_t, before_id, limit, who};
	struct store__cmd cmd = {.st = who[0] != '\0' ? &st_audit_page_of : &st_audit_page,
	                         .params = params};
	struct mat_audit_event *list = NULL;
	char token[STORE_TOKEN_MAX_TEXT] = "";
	size_t n = 0;
	int rows;
	enum mat_code rc;

	*out = NULL;
	*n_out = 0;
	*next_token = NULL;
	page_size = clamp_page(page_size);
	if (page_token != NULL && page_token[0] != '\0') {
		uint8_t key[STORE_TOKEN_MAX_KEY], uuid[16];
		char text[1];
		size_t klen;
		int64_t t;
		rc = store__token_decode(page_token, STORE_LIST_AUDIT_EVENTS,
		                         audit_filter(who, start_time, end_time), key, &klen, err);
		if (rc != MAT_OK)
			return rc;
		if (!store__key_pos_unpack(key, klen, &t, uuid, text, sizeof(text)))
			return mat_error_field(err, "page_token", "invalid page token");
		store__time_text(t, before_t);
		store__uuid_format(uuid, before_id);
	}
	store__time_text(start_time != 0 ? start_time : INT64_MIN, start);
	store__time_text(end_time != 0 ? end_time : INT64_MAX, end);
	/* One row more than the page tells whether there is a next page. */
	snprintf(limit, sizeof(limit), "%d", page_size + 1);
	rc = store__read(c, &cmd, 1, err);
	if (rc != MAT_OK)
		return rc;
	rows = PQntuples(cmd.res);
	if (rows > page_size)
		rows = page_size;
	list = calloc(rows > 0 ? (size_t)rows : 1, sizeof(*list));
	if (list == NULL) {
		rc = store__oom(err);
		goto out;
	}
	for (; n < (size_t)rows; n++) {
		rc = event_from_row(cmd.res, (int)n, &list[n], err);
		if (rc != MAT_OK)
			goto out;
	}
	if (PQntuples(cmd.res) > page_size) {
		uint8_t key[STORE_TOKEN_MAX_KEY], uuid[16];
		size_t klen;
		(void)store__uuid_parse(list[n - 1].id, uuid);
		klen = store__key_pos_pack(list[n - 1].time, uuid, "", key);
		store__token_encode(STORE_LIST_AUDIT_EVENTS,
		                    audit_filter(who, start_time, end_time), key, klen, token);
	}
	*next_token = strdup(token);
	rc = *next_token != NULL ? MAT_OK : store__oom(err);
out:
	store__cmds_clear(&cmd, 1);
	if (rc != MAT_OK) {
		for (size_t i = 0; i < n; i++)
			mat_audit_event_cleanup(&list[i]);
		free(list);
		return rc;
	}
	*out = list;
	*n_out = n;
	return MAT_OK;
}
