/* Deployment gates: whether an organization meets a requirement ("level >= 3, model_creation
 * >= 2, practice X satisfied, evidence for X at most a day old"), as a pure function of the
 * requirement, the organization's state and the clock. The service gathers the state (reviewed
 * level, last submitted assessment, live score, current evidence) and signs the result; the rule
 * itself lives here so it is tested without a database. docs/gates.md explains it for users.
 * No allocation, no I/O; thread-safe. */
#ifndef MAT_GATE_H
#define MAT_GATE_H

#include "mat_error.h"
#include "mat_model.h"
#include "mat_score.h"
#include "mat_types.h"

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* At most this many subjects and required practices in one request: a gate is about one
 * deployment, not a catalog, and the unmet list stays bounded. */
#define MAT_GATE_MAX_SUBJECTS 64
#define MAT_GATE_MAX_PRACTICES 64
#define MAT_GATE_MAX_DIMENSION_LEVELS 64
#define MAT_GATE_MAX_DIGESTS 16

/* One entry of min_dimension_levels, in request order (a map on the wire; when a dimension is
 * named twice the last entry counts, as in proto3 map semantics). */
struct mat_gate_dimension_level {
	const char *dimension_id;
	int level;
};

struct mat_gate_requirement {
	int min_level;
	const struct mat_gate_dimension_level *min_dimension_levels;
	size_t n_min_dimension_levels;
	const char *const *required_practice_ids;
	size_t n_required_practice_ids;
	/* max_evidence_age as a protobuf Duration; has_max_evidence_age false = not set. */
	bool has_max_evidence_age;
	int64_t max_evidence_age_seconds;
	int32_t max_evidence_age_nanos;
	bool live;
};

struct mat_gate_digest {
	const char *algorithm; /* "sha256" */
	const char *value;     /* lowercase hex */
};

/* An artifact the decision is about (an in-toto subject). */
struct mat_gate_subject {
	const char *name;
	const struct mat_gate_digest *digests;
	size_t n_digests;
};

/* Checks a request against model m: every problem becomes a field violation of err
 * ("requirement.min_level", "requirement.min_dimension_levels[x]",
 * "requirement.required_practice_ids[2]", "requirement.max_evidence_age", "subjects[1].name",
 * "subjects[1].digest[sha256]", ...). err must not hold violations yet. Returns true when there
 * is none. */
bool mat_gate_validate(const struct mat_model *m, const struct mat_gate_requirement *req,
                       const struct mat_gate_subject *subjects, size_t n_subjects,
                       struct mat_error *err);

/* What the organization is judged on. The reviewed side is always given; the live side only
 * matters when the requirement says `live` (it may then not be NULL). */
struct mat_gate_inputs {
	int reviewed_level;               /* the organization's current_level */
	const struct mat_score *assessed; /* score of the last submitted assessment (of no answers
	                                     when there is none) */
	const enum mat_status *assessed_status; /* per practice index of m */
	const struct mat_score *live;           /* the live score */
	const enum mat_status *live_status;     /* per practice index of m */
	/* Per required practice (indexed like required_practice_ids): the observe_time of its
	 * current evidence at `now`, 0 when it has none. Read only with max_evidence_age. */
	const mat_time_us *evidence_observe_time;
	mat_time_us now;
};

enum mat_gate_kind {
	MAT_GATE_MIN_LEVEL = 1,
	MAT_GATE_DIMENSION,
	MAT_GATE_PRACTICE,
	MAT_GATE_EVIDENCE_AGE,
};

/* One requirement that is not met. Ids point into the model (static storage). */
struct mat_gate_unmet {
	enum mat_gate_kind kind;
	char field[96];           /* "requirement.min_dimension_levels[model_creation]" */
	char message[160];        /* for a human */
	const char *dimension_id; /* for a dimension requirement, else NULL */
	const char *practice_id;  /* for a practice or evidence-age requirement, else NULL */
	int required_level;       /* 0 when no level is involved */
	int actual_level;
};

#define MAT_GATE_MAX_UNMET (1 + MAT_MAX_DIMENSIONS + 2 * MAT_GATE_MAX_PRACTICES)

struct mat_gate_result {
	bool allowed; /* n_unmet == 0 */
	int level;    /* the level judged: reviewed, or the live score's with `live` */
	const struct mat_score *score; /* the score judged (one of the inputs) */
	size_t n_unmet;
	struct mat_gate_unmet unmet[MAT_GATE_MAX_UNMET]; /* requirement order */
};

/* Evaluates a requirement that passed mat_gate_validate against model m. Unmet entries come in
 * requirement order: min_level; dimensions in the model's dimension order; required practices in
 * request order; then one max_evidence_age entry per required practice (request order) whose
 * current evidence is missing or older than the age. Evidence exactly max_evidence_age old is
 * still fresh. */
void mat_gate_evaluate(const struct mat_model *m, const struct mat_gate_requirement *req,
                       const struct mat_gate_inputs *in, struct mat_gate_result *out);

#endif
