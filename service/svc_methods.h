/* The method table (svc_methods.def): one row per RPC with its handler, how it runs, its
 * permission and where its organization comes from. The engine serves, and authorizes, every
 * call from its row before the handler runs; handlers never authorize by hand. auth/ owns the
 * decision (auth_policy_allows) and the enums; this table owns which rule applies to which
 * method. */
#ifndef SVC_METHODS_H
#define SVC_METHODS_H

#include "auth_policy.h"
#include "svc.h"

#include <stddef.h>

/* When the engine authorizes a call. */
enum svc_az {
	/* Before the handler runs: a round trip of its own for the caller's bindings when the
	 * rule needs them (never for ANY, nor for the bootstrap admin). */
	SVC_AZ_BEFORE = 0,
	/* On the handler's first storage round trip: svc_store_call hands the first store call the
	 * decision, storage reads the bindings in the same pipeline as the call's first statements
	 * (never cached across calls) and refuses before anything is returned or written; the
	 * engine settles the decision when the handler (or its last continuation) returns. For
	 * reads on the storage loop and writes that check in their transaction. */
	SVC_AZ_IN_STEP,
};

/* Flags of a row's resource name. */
#define SVC_ORG_ALL 1u      /* organizations/- names every organization the caller sees */
#define SVC_ORG_OPTIONAL 2u /* "" names every organization */

struct svc_rpc {
	struct auth_rule rule; /* path, permission, where the organization comes from */
	svc_handler_fn fn;
	enum svc_kind kind;
	enum svc_az az;
	/* The resource name the engine parses before authorizing: NULL when none. */
	const char *field;
	const char *collection;
	unsigned flags;
};

/* The handlers, each in its rpc_<service>.c (or svc_health.c, svc_reflection.c). */
#define SVC_RPC(path, fn, kind, az, perm, org_from, field, collection, flags) \
	enum mat_code fn(struct svc_ctx *ctx, const ProtobufCMessage *req);
#include "svc_methods.def"
#undef SVC_RPC

/* Every row, in table order. */
const struct svc_rpc *svc_rpcs(size_t *n);
/* The row of a full method path, or NULL. */
const struct svc_rpc *svc_rpc_find(const char *path);

#endif
