/* The live status of an organization: what automation currently observes (evidence), falling
 * back to the last submitted assessment's answers, scored by the same engine as assessments
 * (mat_score.h). Pure functions: no I/O, thread-safe; only the prefill note allocates.
 * docs/evidence.md explains the rule for users. */
#ifndef MAT_LIVE_H
#define MAT_LIVE_H

#include "mat_model.h"
#include "mat_score.h"
#include "mat_types.h"

#include <stdbool.h>
#include <stddef.h>

/* Values equal PracticeState.Basis in the proto, so the conversion is a cast. */
enum mat_basis {
	MAT_BASIS_UNSPECIFIED = 0,
	MAT_BASIS_EVIDENCE = 1,
	MAT_BASIS_ASSESSMENT = 2,
	MAT_BASIS_NONE = 3,
};

struct mat_live_practice {
	enum mat_status status; /* live status */
	enum mat_basis basis;
	const struct mat_evidence *evidence; /* the current evidence (borrowed from the input), or
	                                        NULL */
	enum mat_status assessed_status;     /* the submitted answer, UNSPECIFIED if none */
	bool drift;
};

struct mat_live {
	size_t n_practices; /* = model's, catalog order */
	struct mat_live_practice practices[MAT_MAX_PRACTICES];
	struct mat_score score; /* mat_score_compute over the live statuses */
	double confidence;
};

/* The current evidence of a practice at `now` among `ev` (any order, any practices):
 * observe_time <= now < expire_time, latest observe_time, ties: latest create_time, then greatest
 * id. NULL if none. */
const struct mat_evidence *mat_evidence_current(const struct mat_evidence *ev, size_t n,
                                                const char *practice_id, mat_time_us now);

/* The live statuses/score of model m from evidence `ev` (n) and the last submitted assessment
 * (NULL if none) at `now`. */
void mat_live_compute(const struct mat_model *m, const struct mat_evidence *ev, size_t n,
                      const struct mat_assessment *submitted, mat_time_us now,
                      struct mat_live *out);

/* RFC 3339 in UTC to the second with "Z" ("2026-05-01T12:00:00Z"); t is floored to its second. */
#define MAT_RFC3339_LEN 80 /* room for any int fields (the compiler checks) */
void mat_time_rfc3339(mat_time_us t, char out[MAT_RFC3339_LEN]);

/* The note of an answer prefilled from evidence `e` by CreateAssessment: "evidence
 * organizations/{org}/evidence/{id} from {source}, observed {observe_time, mat_time_rfc3339}".
 * Malloc'd; NULL when out of memory. */
char *mat_evidence_prefill_note(const struct mat_evidence *e);

#endif
