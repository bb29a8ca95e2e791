/* The authorization of a call (store_call.authz): the read of the caller's role bindings that
 * travels in the call's first round trip, and the verdict on its result. Part of the exec layer
 * (docs/architecture.md), below store_exec.c and store_loop.c, which send that read ahead of the
 * call's own statements: it defines the statement and decodes its rows, and runs nothing itself.
 * Every call reads the bindings afresh: no cache (docs/security.md). */
#include "store_internal.h"

#include <stdlib.h>

STORE__STMT(st_bindings_of, 1,
            "SELECT " STORE__BINDING_COLS " FROM role_bindings b WHERE b.principal = $1 "
            "ORDER BY b.org_id NULLS FIRST, b.role, b.id");

enum mat_code store__bindings_decode(struct store__cmd *cmd, struct mat_role_binding **out,
                                     size_t *n_out, struct mat_error *err)
{
	struct mat_role_binding *list = NULL;
	size_t n = 0;
	enum mat_code rc;

	*out = NULL;
	*n_out = 0;
	list = calloc((size_t)PQntuples(cmd->res) + 1, sizeof(*list));
	if (list == NULL) {
		rc = store__oom(err);
		goto out;
	}
	for (; n < (size_t)PQntuples(cmd->res); n++) {
		rc = store__binding_from_row(cmd->res, (int)n, &list[n], err);
		if (rc != MAT_OK)
			goto out; /* list[n] is clean */
	}
	rc = MAT_OK;
out:
	store__cmds_clear(cmd, 1);
	if (rc != MAT_OK) {
		for (size_t i = 0; list != NULL && i < n; i++)
			mat_role_binding_cleanup(&list[i]);
		free(list);
		return rc;
	}
	*out = list;
	*n_out = n;
	return MAT_OK;
}

struct store__stmt *store__st_bindings_of(void)
{
	return &st_bindings_of;
}

bool store__authz_pending(const struct store_call *c)
{
	return c->authz != NULL && !c->authz->done;
}

void store__authz_cmd(const struct store_call *c, struct store__cmd *cmd)
{
	c->authz->params[0] = c->principal != NULL ? c->principal : "";
	*cmd = (struct store__cmd){.st = &st_bindings_of, .params = c->authz->params};
}

enum mat_code store__authz_decide(const struct store_call *c, struct store__cmd *cmd,
                                  struct mat_error *err)
{
	struct store_authz *az = c->authz;
	struct mat_role_binding *list;
	size_t n;
	enum mat_code rc = store__bindings_decode(cmd, &list, &n, err);

	if (rc != MAT_OK)
		return rc;
	az->done = true;
	return az->decide(az->arg, list, n) ? MAT_OK : MAT_DENIED;
}
