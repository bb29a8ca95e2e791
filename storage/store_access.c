/* Role bindings as auth/ needs them on every call (SPEC §6: no cache), and the audit event of a
 * refused call (PERMISSION_DENIED / UNAUTHENTICATED), which has no transaction of its own. */
#include "store_internal.h"

#include <stdlib.h>
#include <string.h>

STORE__STMT(st_bindings_of, 1,
            "SELECT b.id::text, b.principal, b.role, b.org_id, b.creator, "
            "mat_epoch_us(b.create_time) FROM role_bindings b WHERE b.principal = $1 "
            "ORDER BY b.org_id NULLS FIRST, b.role, b.id");

enum mat_code store_bindings_for_principal(const struct store_call *c, const char *principal,
                                           struct mat_role_binding **out, size_t *n_out,
                                           struct mat_error *err)
{
	struct store__cmd cmd = {.st = &st_bindings_of,
	                         .params =
	                             (const char *const[]){principal != NULL ? principal : ""}};
	struct mat_role_binding *list = NULL;
	size_t n = 0;
	enum mat_code rc;

	*out = NULL;
	*n_out = 0;
	rc = store__read(c, &cmd, 1, err);
	if (rc != MAT_OK)
		return rc;
	list = calloc((size_t)PQntuples(cmd.res) + 1, sizeof(*list));
	if (list == NULL) {
		rc = store__oom(err);
		goto out;
	}
	for (; n < (size_t)PQntuples(cmd.res); n++) {
		struct store__row r = {.res = cmd.res, .row = (int)n};
		struct mat_role_binding *b = &list[n];
		b->id = store__text0(&r, 0);
		b->principal = store__text0(&r, 1);
		b->role = (enum mat_role)store__int(&r, 2);
		b->org_id = store__text(&r, 3);
		b->creator = store__text0(&r, 4);
		b->create_time = store__int(&r, 5);
		if (r.oom) {
			n++;
			rc = store__oom(err);
			goto out;
		}
	}
	rc = MAT_OK;
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

enum mat_code store_audit_denied(const struct store_call *c, const char *resource, int grpc_code,
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
