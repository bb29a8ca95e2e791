/* Organizations: create (with request_id idempotency), get, list (keyset pages by id, visibility
 * filtered in SQL), update by field mask with etag, delete (force cascades). Every mutation writes
 * its audit event in the same transaction. Labels live in a jsonb object; they travel to the
 * database as JSON and come back as "len:key" "len:value" pairs, which need no JSON parser. */
#include "store_internal.h"
#include "store_token.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define ORG_COLS STORE__ORG_COLS

STORE__STMT(st_org_insert, 6,
            "INSERT INTO organizations AS o (id, display_name, description, labels, "
            "target_level, transition_policy) "
            "VALUES ($1, $2, $3, $4::jsonb, $5::smallint, $6::smallint) RETURNING " ORG_COLS);
STORE__STMT(st_org_get, 1, "SELECT " ORG_COLS " FROM organizations o WHERE o.id = $1");
STORE__STMT(st_org_list, 4,
            "SELECT " ORG_COLS " FROM organizations o WHERE o.id > $1 AND " STORE__VISIBLE(
                "$2", "$3", "o.id") " ORDER BY o.id LIMIT $4::int");
/* NO KEY UPDATE: serializes with other changes of the row but not with inserts that reference
 * it (creating an assessment), which only take KEY SHARE. */
STORE__STMT(st_org_lock, 1,
            "SELECT o.version, mat_epoch_us(o.create_time) FROM organizations o "
            "WHERE o.id = $1 FOR NO KEY UPDATE");
/* Deleting must also stop new references: FOR UPDATE conflicts with KEY SHARE. */
STORE__STMT(st_org_lock_delete, 1,
            "SELECT o.version, mat_epoch_us(o.create_time) FROM organizations o "
            "WHERE o.id = $1 FOR UPDATE");
STORE__STMT(st_org_update, 7,
            "UPDATE organizations AS o SET "
            "display_name = CASE WHEN $2::int & 1 <> 0 THEN $3::text ELSE o.display_name END, "
            "description = CASE WHEN $2::int & 2 <> 0 THEN $4::text ELSE o.description END, "
            "labels = CASE WHEN $2::int & 4 <> 0 THEN $5::jsonb ELSE o.labels END, "
            "target_level = CASE WHEN $2::int & 8 <> 0 THEN $6::smallint ELSE o.target_level END, "
            "transition_policy = CASE WHEN $2::int & 16 <> 0 THEN $7::smallint "
            "ELSE o.transition_policy END, "
            "version = o.version + 1, update_time = now() "
            "WHERE o.id = $1 RETURNING " ORG_COLS);
STORE__STMT(st_org_has_assessments, 1,
            "SELECT EXISTS (SELECT 1 FROM assessments a WHERE a.org_id = $1)");
STORE__STMT(st_org_delete, 1, "DELETE FROM organizations WHERE id = $1");

static enum mat_code not_found(struct mat_error *err, const char *org_id)
{
	return mat_error_set(err, MAT_NOT_FOUND, "organizations/%s not found", org_id);
}

static bool id_ok(const char *id)
{
	return id != NULL && id[0] != '\0' && strlen(id) <= MAT_MAX_ORG_ID;
}

/* One event about organization o, written in tx. */
static enum mat_code write_org_event(struct store__tx *tx, enum store_event_type type,
                                     const struct mat_organization *o, struct mat_error *err)
{
	struct store__events ev;
	enum mat_code rc;

	store__events_init(&ev, o->id);
	rc = store__event_add(&ev, type, o, err);
	if (rc == MAT_OK)
		rc = store__events_write(tx, &ev, err);
	store__events_reset(&ev);
	return rc;
}

/* --- create --------------------------------------------------------------------------------- */

struct create_args {
	const struct mat_organization *in;
	const char *request_id; /* "" for none */
	const char *labels;
	char resource[96];
	struct mat_organization *out;
};

static enum mat_code create_body(struct store__tx *tx, void *arg, struct mat_error *err)
{
	struct create_args *a = arg;
	const struct mat_organization *in = a->in;
	char target[8], policy[8];
	const char *params[6] = {in->id,
	                         in->display_name ? in->display_name : "",
	                         in->description ? in->description : "",
	                         a->labels,
	                         target,
	                         policy};
	struct store__audit audit;
	struct store__cmd cmds[2] = {{.st = &st_org_insert, .params = params}};
	enum mat_code rc;

	mat_organization_cleanup(a->out);
	if (a->request_id[0] != '\0') {
		bool claimed = false;
		char *prior = NULL;

		rc = store__idem_claim(tx, a->request_id, "organization", a->resource, &claimed,
		                       &prior, err);
		if (rc != MAT_OK)
			return rc;
		if (!claimed) {
			/* A retry: answer with what the first call created, write nothing. */
			PGresult *r = NULL;
			const char *id =
			    strncmp(prior, "organizations/", 14) == 0 ? prior + 14 : prior;

			rc = STORE__EXEC(tx, &st_org_get, &r, err, id);
			if (rc == MAT_OK && PQntuples(r) == 0)
				rc = mat_error_set(
				    err, MAT_NOT_FOUND,
				    "%s, created by this request_id, no longer exists", prior);
			if (rc == MAT_OK)
				rc = store__org_from_row(r, 0, a->out, err);
			PQclear(r);
			free(prior);
			return rc;
		}
	}
	snprintf(target, sizeof(target), "%d", in->target_level);
	snprintf(policy, sizeof(policy), "%d",
	         in->transition_policy == MAT_POLICY_UNSPECIFIED ? MAT_POLICY_MANUAL_REVIEW
	                                                         : in->transition_policy);
	rc = store__audit_cmd(&audit, tx->c, a->resource, 0, &cmds[1], err);
	if (rc != MAT_OK)
		return rc;
	rc = store__tx_run(tx, cmds, 2, err);
	if (rc == MAT_CONFLICT)
		return mat_error_set(err, MAT_CONFLICT, "%s already exists", a->resource);
	if (rc == MAT_OK)
		rc = store__org_from_row(cmds[0].res, 0, a->out, err);
	store__cmds_clear(cmds, 2);
	if (rc == MAT_OK)
		rc = write_org_event(tx, STORE_EVENT_ORG_CREATED, a->out, err);
	return rc;
}

enum mat_code store_org_create(const struct store_call *c, const struct mat_organization *in,
                               const char *request_id, struct mat_organization *out,
                               struct mat_error *err)
{
	struct create_args a = {.in = in, .out = out};
	char rid[STORE_UUID_TEXT];
	char *labels = NULL;
	enum mat_code rc;

	memset(out, 0, sizeof(*out));
	if (in == NULL || !id_ok(in->id))
		return mat_error_field(err, "organization_id", "missing or too long");
	rc = store__request_id(request_id, rid, err);
	if (rc != MAT_OK)
		return rc;
	labels = store__labels_json(in->labels, in->n_labels);
	if (labels == NULL)
		return store__oom(err);
	a.request_id = rid;
	a.labels = labels;
	snprintf(a.resource, sizeof(a.resource), "organizations/%s", in->id);
	rc = store__transact(c, create_body, &a, err);
	if (rc != MAT_OK)
		mat_organization_cleanup(out);
	free(labels);
	return rc;
}

/* --- get and list --------------------------------------------------------------------------- */

enum mat_code store_org_get(const struct store_call *c, const char *org_id,
                            struct mat_organization *out, struct mat_error *err)
{
	struct store__cmd cmd = {.st = &st_org_get, .params = (const char *const[]){org_id}};
	enum mat_code rc;

	memset(out, 0, sizeof(*out));
	if (!id_ok(org_id))
		return not_found(err, org_id != NULL ? org_id : "");
	rc = store__read(c, &cmd, 1, err);
	if (rc != MAT_OK)
		return rc;
	if (PQntuples(cmd.res) == 0)
		rc = not_found(err, org_id);
	else
		rc = store__org_from_row(cmd.res, 0, out, err);
	store__cmds_clear(&cmd, 1);
	return rc;
}

static enum mat_code org_get_decode(struct store__aget *g, struct mat_error *err)
{
	if (PQntuples(g->cmds[0].res) == 0)
		return not_found(err, g->keys[0]);
	return store__org_from_row(g->cmds[0].res, 0, g->out, err);
}

void store_org_get_async(const struct store_call *c, const char *org_id,
                         struct mat_organization *out, struct mat_error *err, store_done_fn done,
                         void *arg)
{
	struct store__aget *g;

	memset(out, 0, sizeof(*out));
	if (!id_ok(org_id)) {
		done(arg, not_found(err, org_id != NULL ? org_id : ""));
		return;
	}
	g = store__aget_new(c, err, done, arg);
	if (g == NULL)
		return;
	snprintf(g->keys[0], sizeof(g->keys[0]), "%s", org_id);
	g->params[0] = g->keys[0];
	g->cmds[0] = (struct store__cmd){.st = &st_org_get, .params = g->params};
	g->decode = org_get_decode;
	g->out = out;
	store__aget_start(g, 1);
}

static uint64_t org_list_filter(void)
{
	/* Listing organizations has no filter; visibility is re-applied on every page. */
	return store__fnv64(STORE_FNV64_INIT, "organizations", 13);
}

/* ListOrganizations on the storage loop: the same query and token as store_org_list. */
struct org_list_out {
	struct mat_organization **out;
	size_t *n_out;
	char **next_token;
	int page_size;
};

static enum mat_code org_list_decode(struct store__aget *g, struct mat_error *err)
{
	struct org_list_out *o = g->out;
	PGresult *res = g->cmds[0].res;
	int rows = PQntuples(res);
	char token[STORE_TOKEN_MAX_TEXT] = "";
	struct mat_organization *list;
	size_t n = 0;
	enum mat_code rc = MAT_OK;

	if (rows > o->page_size)
		rows = o->page_size;
	list = calloc(rows > 0 ? (size_t)rows : 1, sizeof(*list));
	if (list == NULL)
		return store__oom(err);
	for (; n < (size_t)rows && rc == MAT_OK; n++)
		rc = store__org_from_row(res, (int)n, &list[n], err);
	if (rc == MAT_OK && PQntuples(res) > o->page_size)
		store__token_encode(STORE_LIST_ORGANIZATIONS, org_list_filter(), list[n - 1].id,
		                    strlen(list[n - 1].id), token);
	if (rc == MAT_OK) {
		*o->next_token = strdup(token);
		if (*o->next_token == NULL)
			rc = store__oom(err);
	}
	if (rc != MAT_OK) {
		for (size_t i = 0; i < n; i++)
			mat_organization_cleanup(&list[i]);
		free(list);
		return rc;
	}
	*o->out = list;
	*o->n_out = n;
	return MAT_OK;
}

void store_org_list_async(const struct store_call *c, int page_size, const char *page_token,
                          struct mat_organization **out, size_t *n_out, char **next_token,
                          struct mat_error *err, store_done_fn done, void *arg)
{
	struct store__aget *g;
	struct org_list_out *o;

	*out = NULL;
	*n_out = 0;
	*next_token = NULL;
	if (page_size <= 0)
		page_size = MAT_PAGE_SIZE_DEFAULT;
	if (page_size > MAT_PAGE_SIZE_MAX)
		page_size = MAT_PAGE_SIZE_MAX;
	g = store__aget_new(c, err, done, arg);
	if (g == NULL)
		return;
	o = calloc(1, sizeof(*o));
	if (o == NULL) {
		free(g);
		done(arg, store__oom(err));
		return;
	}
	if (page_token != NULL && page_token[0] != '\0') {
		uint8_t key[STORE_TOKEN_MAX_KEY];
		size_t klen;
		enum mat_code rc = store__token_decode(page_token, STORE_LIST_ORGANIZATIONS,
		                                       org_list_filter(), key, &klen, err);
		if (rc == MAT_OK &&
		    (klen == 0 || klen >= sizeof(g->keys[0]) || memchr(key, '\0', klen) != NULL))
			rc = mat_error_field(err, "page_token", "invalid page token");
		if (rc != MAT_OK) {
			free(o);
			free(g);
			done(arg, rc);
			return;
		}
		memcpy(g->keys[0], key, klen);
		g->keys[0][klen] = '\0';
	}
	o->out = out;
	o->n_out = n_out;
	o->next_token = next_token;
	o->page_size = page_size;
	/* One row more than the page tells whether there is a next page. */
	snprintf(g->keys[1], sizeof(g->keys[1]), "%d", page_size + 1);
	snprintf(g->keys[2], sizeof(g->keys[2]), "%s", c->only_visible ? "true" : "false");
	g->params[0] = g->keys[0];
	g->params[1] = g->keys[2];
	g->params[2] = c->principal != NULL ? c->principal : "";
	g->params[3] = g->keys[1];
	g->cmds[0] = (struct store__cmd){.st = &st_org_list, .params = g->params};
	g->decode = org_list_decode;
	g->out = o;
	g->free_out = free;
	store__aget_start(g, 1);
}

enum mat_code store_org_list(const struct store_call *c, int page_size, const char *page_token,
                             struct mat_organization **out, size_t *n_out, char **next_token,
                             struct mat_error *err)
{
	char after[STORE_TOKEN_MAX_KEY + 1] = "";
	char limit[16];
	const char *params[4] = {after, c->only_visible ? "true" : "false",
	                         c->principal != NULL ? c->principal : "", limit};
	struct store__cmd cmd = {.st = &st_org_list, .params = params};
	struct mat_organization *list = NULL;
	char token[STORE_TOKEN_MAX_TEXT] = "";
	size_t n = 0;
	int rows;
	enum mat_code rc;

	*out = NULL;
	*n_out = 0;
	*next_token = NULL;
	if (page_size <= 0)
		page_size = MAT_PAGE_SIZE_DEFAULT;
	if (page_size > MAT_PAGE_SIZE_MAX)
		page_size = MAT_PAGE_SIZE_MAX;
	if (page_token != NULL && page_token[0] != '\0') {
		uint8_t key[STORE_TOKEN_MAX_KEY];
		size_t klen;
		rc = store__token_decode(page_token, STORE_LIST_ORGANIZATIONS, org_list_filter(),
		                         key, &klen, err);
		if (rc != MAT_OK)
			return rc;
		if (klen == 0 || memchr(key, '\0', klen) != NULL)
			return mat_error_field(err, "page_token", "invalid page token");
		memcpy(after, key, klen);
		after[klen] = '\0';
	}
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
		rc = store__org_from_row(cmd.res, (int)n, &list[n], err);
		if (rc != MAT_OK)
			goto out;
	}
	if (PQntuples(cmd.res) > page_size)
		store__token_encode(STORE_LIST_ORGANIZATIONS, org_list_filter(), list[n - 1].id,
		                    strlen(list[n - 1].id), token);
	*next_token = strdup(token);
	if (*next_token == NULL) {
		rc = store__oom(err);
		goto out;
	}
	rc = MAT_OK;
out:
	store__cmds_clear(&cmd, 1);
	if (rc != MAT_OK) {
		for (size_t i = 0; i < n; i++)
			mat_organization_cleanup(&list[i]);
		free(list);
		return rc;
	}
	*out = list;
	*n_out = n;
	return MAT_OK;
}

/* --- update --------------------------------------------------------------------------------- */

/* Locks the organization row; checks existence and the etag. */
static enum mat_code lock_org(struct store__tx *tx, struct store__stmt *st, const char *org_id,
                              const char *etag, struct mat_error *err)
{
	PGresult *r = NULL;
	enum mat_code rc = STORE__EXEC(tx, st, &r, err, org_id);

	if (rc != MAT_OK)
		return rc;
	if (PQntuples(r) == 0)
		rc = not_found(err, org_id);
	else if (!store__etag_matches(etag, strtoll(PQgetvalue(r, 0, 0), NULL, 10),
	                              strtoll(PQgetvalue(r, 0, 1), NULL, 10)))
		rc = mat_error_set(err, MAT_ABORTED,
		                   "etag mismatch: organizations/%s was changed; read it again",
		                   org_id);
	PQclear(r);
	return rc;
}

struct update_args {
	const struct mat_organization *in;
	unsigned fields;
	const char *etag;
	const char *labels;
	char resource[96];
	struct mat_organization *out;
};

static enum mat_code update_body(struct store__tx *tx, void *arg, struct mat_error *err)
{
	struct update_args *a = arg;
	const struct mat_organization *in = a->in;
	char mask[16], target[8], policy[8];
	const char *params[7] = {in->id,
	                         mask,
	                         in->display_name ? in->display_name : "",
	                         in->description ? in->description : "",
	                         a->labels,
	                         target,
	                         policy};
	struct store__audit audit;
	struct store__cmd cmds[2] = {{.st = &st_org_update, .params = params}};
	enum mat_code rc;

	mat_organization_cleanup(a->out);
	rc = lock_org(tx, &st_org_lock, in->id, a->etag, err);
	if (rc != MAT_OK)
		return rc;
	if (a->fields == 0) {
		/* Nothing to change: answer with the current state, write nothing. */
		PGresult *r = NULL;
		rc = STORE__EXEC(tx, &st_org_get, &r, err, in->id);
		if (rc == MAT_OK)
			rc = store__org_from_row(r, 0, a->out, err);
		PQclear(r);
		return rc;
	}
	snprintf(mask, sizeof(mask), "%u", a->fields);
	snprintf(target, sizeof(target), "%d", in->target_level);
	snprintf(policy, sizeof(policy), "%d",
	         in->transition_policy == MAT_POLICY_UNSPECIFIED ? MAT_POLICY_MANUAL_REVIEW
	                                                         : in->transition_policy);
	rc = store__audit_cmd(&audit, tx->c, a->resource, 0, &cmds[1], err);
	if (rc != MAT_OK)
		return rc;
	rc = store__tx_run(tx, cmds, 2, err);
	if (rc == MAT_OK)
		rc = store__org_from_row(cmds[0].res, 0, a->out, err);
	store__cmds_clear(cmds, 2);
	if (rc == MAT_OK)
		rc = write_org_event(tx, STORE_EVENT_ORG_UPDATED, a->out, err);
	return rc;
}

enum mat_code store_org_update(const struct store_call *c, const struct mat_organization *in,
                               unsigned fields, const char *etag, struct mat_organization *out,
                               struct mat_error *err)
{
	struct update_args a = {.in = in, .fields = fields, .etag = etag, .out = out};
	char *labels = NULL;
	enum mat_code rc;

	memset(out, 0, sizeof(*out));
	if (in == NULL || !id_ok(in->id))
		return not_found(err, in != NULL && in->id != NULL ? in->id : "");
	labels = store__labels_json(in->labels, in->n_labels);
	if (labels == NULL)
		return store__oom(err);
	a.labels = labels;
	snprintf(a.resource, sizeof(a.resource), "organizations/%s", in->id);
	rc = store__transact(c, update_body, &a, err);
	if (rc != MAT_OK)
		mat_organization_cleanup(out);
	free(labels);
	return rc;
}

/* --- delete --------------------------------------------------------------------------------- */

struct delete_args {
	const char *org_id;
	const char *etag;
	bool force;
	char resource[96];
};

static enum mat_code delete_body(struct store__tx *tx, void *arg, struct mat_error *err)
{
	struct delete_args *a = arg;
	struct store__audit audit;
	struct store__cmd cmds[2] = {
	    {.st = &st_org_delete, .params = (const char *const[]){a->org_id}}};
	struct mat_organization before = {0};
	PGresult *r = NULL;
	enum mat_code rc = lock_org(tx, &st_org_lock_delete, a->org_id, a->etag, err);

	if (rc != MAT_OK)
		return rc;
	if (!a->force) {
		/* A separate statement after the lock: in READ COMMITTED it sees assessments
		 * committed while we waited for the lock. */
		PGresult *h = NULL;
		bool has;
		rc = STORE__EXEC(tx, &st_org_has_assessments, &h, err, a->org_id);
		if (rc != MAT_OK)
			return rc;
		has = PQgetvalue(h, 0, 0)[0] == 't';
		PQclear(h);
		if (has)
			return mat_error_set(err, MAT_PRECONDITION,
			                     "%s has assessments: delete them first or set force",
			                     a->resource);
	}
	/* The snapshot of a deletion is the organization before it. */
	rc = STORE__EXEC(tx, &st_org_get, &r, err, a->org_id);
	if (rc == MAT_OK && PQntuples(r) == 0)
		rc = not_found(err, a->org_id);
	if (rc == MAT_OK)
		rc = store__org_from_row(r, 0, &before, err);
	PQclear(r);
	if (rc == MAT_OK)
		rc = store__audit_cmd(&audit, tx->c, a->resource, 0, &cmds[1], err);
	if (rc == MAT_OK)
		rc = store__tx_run(tx, cmds, 2, err);
	store__cmds_clear(cmds, 2);
	if (rc == MAT_OK)
		rc = write_org_event(tx, STORE_EVENT_ORG_DELETED, &before, err);
	mat_organization_cleanup(&before);
	return rc;
}

enum mat_code store_org_delete(const struct store_call *c, const char *org_id, const char *etag,
                               bool force, struct mat_error *err)
{
	struct delete_args a = {.org_id = org_id, .etag = etag, .force = force};

	if (!id_ok(org_id))
		return not_found(err, org_id != NULL ? org_id : "");
	snprintf(a.resource, sizeof(a.resource), "organizations/%s", org_id);
	return store__transact(c, delete_body, &a, err);
}
