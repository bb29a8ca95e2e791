/* x-on-behalf-of: how a trusted delegator's call becomes its end user's (svc_delegation.h). The
 * syntax of the asserted principal is auth/'s (auth_principal_check); who may assert is
 * configuration (--delegator); this file applies both to one call and audits the refusals. */
#include "svc_delegation.h"

#include "auth.h"
#include "auth_tls.h"
#include "svc_log.h"

#include <string.h>

#define KEY_LEN (sizeof(SVC_ON_BEHALF_OF) - 1)

/* The refusal: audited under the caller's own principal before the response, like every
 * PERMISSION_DENIED. An audit write that fails is logged, and the caller is refused all the
 * same (never more access). */
static void audit_denial(struct svc_ctx *ctx)
{
	struct store_call sc;
	struct mat_error ignored;

	svc_store_call(ctx, &sc);
	mat_error_clear(&ignored);
	if (store_audit_denied(&sc, "", 7 /* PERMISSION_DENIED */, &ignored) != MAT_OK)
		svc_log_event("error", "audit of a denial failed: %s", ignored.message);
	ctx->denial_audited = true;
}

enum mat_code svc_principal_forwarded(struct svc_ctx *ctx, const struct svc_config *cfg,
                                      const grpc_metadata_array *md)
{
	static const size_t key_len = sizeof(SVC_FORWARDED_CERT) - 1;
	const grpc_metadata *found = NULL;
	size_t times = 0;
	char forwarded[MAT_MAX_PRINCIPAL + 1];
	struct auth_tls *tls;
	enum mat_code rc;

	for (size_t i = 0; i < md->count; i++) {
		const grpc_slice *k = &md->metadata[i].key;
		if (GRPC_SLICE_LENGTH(*k) == key_len &&
		    memcmp(GRPC_SLICE_START_PTR(*k), SVC_FORWARDED_CERT, key_len) == 0) {
			found = &md->metadata[i];
			times++;
		}
	}
	if (found == NULL)
		return MAT_OK;
	if (!svc_config_is_trusted_proxy(cfg, ctx->principal)) {
		audit_denial(ctx);
		return mat_error_set(&ctx->err, MAT_DENIED,
		                     "%s may not send " SVC_FORWARDED_CERT
		                     ": only a trusted proxy (--trusted-proxy) names the client",
		                     ctx->principal);
	}
	if (times > 1)
		return mat_error_set(&ctx->err, MAT_UNAUTHENTICATED,
		                     SVC_FORWARDED_CERT " sent %zu times; a proxy sends one, "
		                                        "appending its element to the last",
		                     times);
	tls = svc_server_tls(ctx->srv);
	rc = auth_xfcc_principal(tls, (const char *)GRPC_SLICE_START_PTR(found->value),
	                         GRPC_SLICE_LENGTH(found->value), forwarded, sizeof(forwarded),
	                         &ctx->err);
	auth_tls_unref(tls);
	if (rc != MAT_OK)
		return rc;
	memcpy(ctx->principal, forwarded, sizeof(forwarded));
	return MAT_OK;
}

enum mat_code svc_principal_resolve(struct svc_ctx *ctx, const struct svc_config *cfg,
                                    const grpc_metadata_array *md)
{
	const grpc_metadata *found = NULL;
	size_t times = 0, len;
	const char *value;
	char asserted[MAT_MAX_PRINCIPAL + 1];
	enum mat_code rc;

	ctx->delegator[0] = '\0';
	for (size_t i = 0; i < md->count; i++) {
		const grpc_slice *k = &md->metadata[i].key;
		if (GRPC_SLICE_LENGTH(*k) == KEY_LEN &&
		    memcmp(GRPC_SLICE_START_PTR(*k), SVC_ON_BEHALF_OF, KEY_LEN) == 0) {
			if (found == NULL)
				found = &md->metadata[i];
			times++;
		}
	}
	if (found == NULL)
		return MAT_OK; /* the common case: a call for itself */

	/* Who may assert comes before what is asserted: from anyone else the header is an attempt
	 * to act as someone else, whatever its value, and is audited as one. */
	if (!svc_config_is_delegator(cfg, ctx->principal)) {
		audit_denial(ctx);
		return mat_error_set(&ctx->err, MAT_DENIED,
		                     "%s may not send " SVC_ON_BEHALF_OF
		                     ": only a delegator (--delegator) acts for others",
		                     ctx->principal);
	}
	if (times > 1)
		return mat_error_field(&ctx->err, SVC_ON_BEHALF_OF,
		                       "sent %zu times; send it once, naming one principal", times);
	value = (const char *)GRPC_SLICE_START_PTR(found->value);
	len = GRPC_SLICE_LENGTH(found->value);
	rc = auth_principal_check(value, len, SVC_ON_BEHALF_OF, &ctx->err);
	if (rc != MAT_OK)
		return rc;

	/* auth_principal_check bounds len to MAT_MAX_PRINCIPAL: it fits, with its NUL. */
	memcpy(asserted, value, len);
	asserted[len] = '\0';
	if (svc_config_is_admin(cfg, asserted)) {
		audit_denial(ctx);
		return mat_error_set(&ctx->err, MAT_DENIED,
		                     "%s may not act for %s: a bootstrap admin (--admin-principal) "
		                     "acts only with its own certificate",
		                     ctx->principal, asserted);
	}
	memcpy(ctx->delegator, ctx->principal, sizeof(ctx->delegator));
	memcpy(ctx->principal, asserted, len + 1);
	return MAT_OK;
}
