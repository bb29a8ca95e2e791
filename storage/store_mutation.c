/* What every mutation writes besides its resource, in its own transaction: its audit row and its
 * request_id claim (AIP-155 idempotency). Shared by the resource files, above the exec layer
 * (docs/architecture.md). */
#include "store_internal.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

STORE__STMT(st_audit_insert, 7,
            "INSERT INTO audit_events (id, principal, method, resource, code, request_id, "
            "delegator) VALUES ($1::uuid, $2, $3, $4, $5::int, $6, $7)");

enum mat_code store__audit_cmd(struct store__audit *a, const struct store_call *c,
                               const char *resource, int grpc_code, struct store__cmd *cmd,
                               struct mat_error *err)
{
	enum mat_code rc = store__uuid7(a->id);

	if (rc != MAT_OK)
		return mat_error_set(err, rc, "no randomness for an audit event id");
	snprintf(a->code, sizeof(a->code), "%d", grpc_code);
	a->params[0] = a->id;
	a->params[1] = c->principal != NULL ? c->principal : "";
	a->params[2] = c->method != NULL ? c->method : "";
	a->params[3] = resource != NULL ? resource : "";
	a->params[4] = a->code;
	a->params[5] = c->request_id != NULL ? c->request_id : "";
	a->params[6] = c->delegator != NULL ? c->delegator : "";
	*cmd = (struct store__cmd){.st = &st_audit_insert, .params = a->params};
	return MAT_OK;
}

STORE__STMT(st_idem_claim, 4,
            "INSERT INTO idempotency_keys (principal, request_id, kind, resource) "
            "VALUES ($1, $2::uuid, $3, $4) ON CONFLICT DO NOTHING RETURNING 1");
STORE__STMT(st_idem_prior, 3,
            "SELECT resource FROM idempotency_keys "
            "WHERE principal = $1 AND request_id = $2::uuid AND kind = $3");

enum mat_code store__request_id(const char *request_id, char out[STORE_UUID_TEXT],
                                struct mat_error *err)
{
	uint8_t b[16];

	out[0] = '\0';
	if (request_id == NULL || request_id[0] == '\0')
		return MAT_OK;
	if (!store__uuid_parse(request_id, b))
		return mat_error_field(err, "request_id", "must be a UUID");
	store__uuid_format(b, out);
	return MAT_OK;
}

enum mat_code store__idem_claim(struct store__tx *tx, const char *request_id, const char *kind,
                                const char *resource, bool *claimed, char **prior,
                                struct mat_error *err)
{
	const char *principal = tx->c->principal != NULL ? tx->c->principal : "";
	PGresult *r = NULL;
	enum mat_code rc;

	*claimed = false;
	*prior = NULL;
	/* ON CONFLICT DO NOTHING waits for a concurrent first call with the same key to finish:
	 * if it commits we see its row below, if it rolls back we claim the key ourselves. */
	rc = STORE__EXEC(tx, &st_idem_claim, &r, err, principal, request_id, kind, resource);
	if (rc != MAT_OK)
		return rc;
	*claimed = PQntuples(r) == 1;
	PQclear(r);
	if (*claimed)
		return MAT_OK;
	rc = STORE__EXEC(tx, &st_idem_prior, &r, err, principal, request_id, kind);
	if (rc != MAT_OK)
		return rc;
	if (PQntuples(r) != 1) {
		PQclear(r);
		return mat_error_set(err, MAT_ABORTED, "request_id in use by a concurrent call");
	}
	*prior = strdup(PQgetvalue(r, 0, 0));
	PQclear(r);
	return *prior != NULL ? MAT_OK : store__oom(err);
}
