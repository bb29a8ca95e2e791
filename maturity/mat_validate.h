/* Input validation shared by every handler: identifiers, UTF-8, lengths, labels, UUIDs and
 * answers. Pure; reports problems as field violations in a mat_error. */
#ifndef MAT_VALIDATE_H
#define MAT_VALIDATE_H

#include "mat_error.h"
#include "mat_model.h"
#include "mat_types.h"

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* Well-formed UTF-8 (no overlongs, no surrogates, <= U+10FFFF). NUL bytes are rejected too:
 * they cannot be stored in PostgreSQL text. */
bool mat_utf8_valid(const char *s, size_t len);

/* [a-z][a-z0-9-]{1,62} */
bool mat_org_id_valid(const char *s);

/* [a-z][a-z0-9_-]{0,62} */
bool mat_label_key_valid(const char *s);

/* A UUID in canonical 8-4-4-4-12 hex form, any case. */
bool mat_uuid_valid(const char *s);

/* Lower-cases a valid UUID into out (37 bytes). */
void mat_uuid_lower(const char *in, char out[37]);

/* Checks a string field: valid UTF-8 and at most `max` bytes; adds a violation on `field`
 * otherwise. `required`: empty is a violation too. Returns true when valid. */
bool mat_check_string(struct mat_error *err, const char *field, const char *s, size_t max,
                      bool required);

/* Validates answers for `m`: known practice ids, no practice twice, status not UNSPECIFIED and
 * in range, NOT_APPLICABLE has a non-empty note, note/evidence_uri limits and UTF-8. Violations
 * name `prefix[i].field` (prefix "answers"). Returns true when all are valid. */
bool mat_answers_validate(const struct mat_model *m, const struct mat_answer *answers, size_t n,
                          const char *prefix, struct mat_error *err);
/* The same, and when valid also what mat_answers_to_status gives, from the one practice lookup
 * per answer that validation makes anyway (EvaluateAnswers: the lookups were 6 % of its CPU). */
bool mat_answers_validate_status(const struct mat_model *m, const struct mat_answer *answers,
                                 size_t n, const char *prefix, enum mat_status *status,
                                 struct mat_error *err);

/* Statuses per practice index from answers (already validated); absent practices UNSPECIFIED.
 * `status` has m->n_practices entries. */
void mat_answers_to_status(const struct mat_model *m, const struct mat_answer *answers, size_t n,
                           enum mat_status *status);

/* Evidence limits and windows (docs/evidence.md). */
#define MAT_MAX_EVIDENCE_SOURCE 128
#define MAT_MAX_EVIDENCE_NOTE 4000
#define MAT_EVIDENCE_MAX_FUTURE_US (5 * 60 * INT64_C(1000000))    /* observe_time skew */
#define MAT_EVIDENCE_MAX_LIFE_US (400 * 86400 * INT64_C(1000000)) /* expire - observe */

/* [a-z][a-z0-9._/-]{0,127}: who observed a piece of evidence, e.g. "mlflow/registry". */
bool mat_evidence_source_valid(const char *s);

/* "sha256:" and 64 lower-case hex digits. */
bool mat_evidence_digest_valid(const char *s);

/* Validates one piece of evidence as a client reports it, at `now`: practice_id known in
 * mlops-v1; status NOT_IMPLEMENTED, PARTIAL or IMPLEMENTED (NOT_APPLICABLE is a human judgement,
 * refused); source syntax; observe_time set and at most 5 minutes after `now`; expire_time after
 * observe_time and at most 400 days after it; uri (<= 2048 bytes), digest ("" or sha256 form) and
 * note (<= 4000 bytes) valid UTF-8. Output-only fields (org_id, id, reporter, create_time) are
 * not looked at. Violations name `prefix.field` ("evidence.status", "evidence[3].source").
 * Returns true when valid. */
bool mat_evidence_validate(const struct mat_evidence *e, mat_time_us now, const char *prefix,
                           struct mat_error *err);

#endif
