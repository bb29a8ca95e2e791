/* Proto <-> domain conversion for handlers, resource names, page sizes, and the per-call arena
 * that response messages are built from. */
#ifndef SVC_CONVERT_H
#define SVC_CONVERT_H

#include "google/protobuf/timestamp.pb-c.h"
#include "mat_types.h"
#include "mlops/maturity/v1/assessment.pb-c.h"
#include "mlops/maturity/v1/evidence.pb-c.h"
#include "mlops/maturity/v1/organization.pb-c.h"
#include "svc.h"

#include <stdbool.h>

struct svc_arena_block;
/* n bytes (not zeroed) from the arena *arena (NULL: empty); NULL when memory is exhausted. */
void *svc_arena_alloc(struct svc_arena_block **arena, size_t n);
void svc_arena_free(struct svc_arena_block *b);

Google__Protobuf__Timestamp *svc_ts(struct svc_ctx *ctx, mat_time_us t); /* NULL when t == 0 */
/* A request timestamp: NULL -> 0. Out of range (seconds beyond year 9999 or negative nanos)
 * -> false with a violation on `field`. */
bool svc_ts_in(const Google__Protobuf__Timestamp *ts, const char *field, mat_time_us *out,
               struct mat_error *err);

/* "organizations/{id}" with a valid id -> id in out (MAT_MAX_ORG_ID + 1 bytes). On failure adds
 * a violation on `field` and returns false. allow_dash: "organizations/-" gives "-". */
bool svc_parse_org_name(const char *name, const char *field, bool allow_dash, char *out,
                        struct mat_error *err);
/* "organizations/{org}/{collection}/{uuid}" -> org and lower-cased id (37 bytes). */
bool svc_parse_child_name(const char *name, const char *collection, const char *field,
                          char *org_out, char *id_out, struct mat_error *err);

/* AIP-158 page size: 0 -> 50, > 1000 -> 1000, negative -> violation. */
bool svc_page_size(int32_t requested, int *out, struct mat_error *err);

/* request_id: "" -> *out = NULL; a UUID -> lower-cased into buf (37 bytes); else violation. */
bool svc_request_id(const char *in, char *buf, const char **out, struct mat_error *err);

void svc_org_to_proto(struct svc_ctx *ctx, const struct mat_organization *o,
                      Mlops__Maturity__V1__Organization *out);

#include "mat_model.h"
#include "mat_score.h"

/* Score proto from a computed score (strings point into the static model). */
Mlops__Maturity__V1__AssessmentScore *
svc_score_to_proto(struct svc_ctx *ctx, const struct mat_model *m, const struct mat_score *s);
/* Assessment proto with its score computed from its answers (frozen answers give the frozen
 * score of a submitted assessment). */
void svc_assessment_to_proto(struct svc_ctx *ctx, const struct mat_assessment *a,
                             Mlops__Maturity__V1__Assessment *out);
/* Request answers -> domain answers borrowing the request's strings (caller frees the array).
 * More than MAT_MAX_ANSWERS -> violation on `field`, NULL. */
struct mat_answer *svc_answers_in(Mlops__Maturity__V1__Answer *const *in, size_t n,
                                  const char *field, struct mat_error *err);
#include "mlops/maturity/v1/transition.pb-c.h"

/* Evidence proto from a piece (service/rpc_evidence.c). */
void svc_evidence_to_proto(struct svc_ctx *ctx, const struct mat_evidence *e,
                           Mlops__Maturity__V1__Evidence *out);
void svc_transition_to_proto(struct svc_ctx *ctx, const struct mat_transition *t,
                             Mlops__Maturity__V1__LevelTransition *out);

/* Frees the call memory built so far (svc_alloc): streams call it after each message so a long
 * export's memory stays bounded. Pointers from svc_alloc are invalid afterwards. */
void svc_scratch_reset(struct svc_ctx *ctx);

/* "organizations/{id}" into a fresh call-memory string. */
char *svc_org_name(struct svc_ctx *ctx, const char *org_id);

#endif
