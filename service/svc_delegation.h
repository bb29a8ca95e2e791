/* Forwarded and delegated identity. A trusted proxy (--trusted-proxy) names the client whose TLS
 * it terminated with x-forwarded-client-cert, which replaces the connection's principal.
 * Delegated identity: a principal named by --delegator (a portal) may send the metadata
 * x-on-behalf-of with the principal of the end user it acts for, who then becomes the call's
 * principal for everything (authorization with the end user's own bindings only, four-eyes,
 * creators and deciders, audit), the delegator being recorded beside it. Everyone else is
 * refused the header. */
#ifndef SVC_DELEGATION_H
#define SVC_DELEGATION_H

#include "mat_error.h"
#include "svc.h"
#include "svc_config.h"

#include <grpc/grpc.h>

/* The metadata key, lower-case as it arrives. */
#define SVC_ON_BEHALF_OF "x-on-behalf-of"

/* The metadata a proxy or mesh sidecar sends with the certificate of the client it terminated
 * TLS for (Envoy's format). */
#define SVC_FORWARDED_CERT "x-forwarded-client-cert"

/* Behind a proxy: on entry ctx->principal holds the principal of the connection's certificate.
 * - No x-forwarded-client-cert: nothing changes, MAT_OK.
 * - From a principal `cfg` does not name with --trusted-proxy: MAT_DENIED (audited), whatever
 *   the value: a client could otherwise name anyone.
 * - Sent more than once: MAT_UNAUTHENTICATED (which one the proxy appended is unknowable).
 * - Else the certificate of its last element must verify (auth_xfcc_principal: chain to the
 *   client CA, valid now, not revoked): ctx->principal becomes its principal; if not,
 *   MAT_UNAUTHENTICATED saying why.
 * Any thread; reads the server's current TLS material (svc_server_tls). */
enum mat_code svc_principal_forwarded(struct svc_ctx *ctx, const struct svc_config *cfg,
                                      const grpc_metadata_array *md) MAT_MUSTCHECK;

/* Resolves the call's effective principal. On entry ctx->principal holds the principal of the
 * client certificate and ctx->delegator is "". `md` (borrowed) is the call's request metadata.
 *
 * - No x-on-behalf-of: nothing changes, MAT_OK.
 * - From a principal that `cfg` does not name as a delegator: MAT_DENIED naming the header.
 * - Sent more than once, or a value that is not a principal (auth_principal_check): MAT_INVALID
 *   with a field violation on "x-on-behalf-of".
 * - Naming a bootstrap admin (--admin-principal): MAT_DENIED; those rights come only from a
 *   certificate.
 * - Else MAT_OK: ctx->delegator becomes the certificate principal and ctx->principal the
 *   asserted one.
 *
 * A refusal fills ctx->err, leaves ctx->principal as it was, and is audited under it (the
 * caller's own principal) before this returns; ctx->denial_audited says so. Runs on whatever
 * thread runs the call; the audit write blocks on storage like any handler's. */
enum mat_code svc_principal_resolve(struct svc_ctx *ctx, const struct svc_config *cfg,
                                    const grpc_metadata_array *md) MAT_MUSTCHECK;

#endif
