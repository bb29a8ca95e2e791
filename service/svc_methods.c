/* The method table, built from svc_methods.def. */
#include "svc_methods.h"

#include <string.h>

static const struct svc_rpc rpcs[] = {
#define SVC_RPC(path, fn, kind, az, perm, org_from, field, collection, flags) \
	{{path, perm, org_from}, fn, kind, az, field, collection, flags},
#include "svc_methods.def"
#undef SVC_RPC
};

const struct svc_rpc *svc_rpcs(size_t *n)
{
	*n = sizeof(rpcs) / sizeof(rpcs[0]);
	return rpcs;
}

/* A linear scan of ~40 rows, at start only (the server keeps each row with its registered
 * method). */
const struct svc_rpc *svc_rpc_find(const char *path)
{
	if (path == NULL)
		return NULL;
	for (size_t i = 0; i < sizeof(rpcs) / sizeof(rpcs[0]); i++)
		if (strcmp(rpcs[i].rule.method, path) == 0)
			return &rpcs[i];
	return NULL;
}
