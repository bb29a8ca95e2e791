/* Scoring and roadmaps (docs/model.md, "Scoring" and "Roadmap"): pure functions of (model,
 * statuses). Statuses are given per practice index of the model (catalog order);
 * MAT_STATUS_UNSPECIFIED counts as NOT_IMPLEMENTED (a practice without an answer). No allocation,
 * no I/O; thread-safe. */
#ifndef MAT_SCORE_H
#define MAT_SCORE_H

#include "mat_model.h"
#include "mat_types.h"

#include <stdbool.h>
#include <stdint.h>

struct mat_dimension_score {
	int level;
	double progress_to_next_level;
	int satisfied_count;
	int total_count;
};

struct mat_score {
	int overall_level;
	double maturity_index; /* 0..100, rounded to two decimals */
	double progress_to_next_level;
	size_t n_dimensions;
	struct mat_dimension_score dimensions[MAT_MAX_DIMENSIONS]; /* dimension order */
	int satisfied_count;
	int total_count;
	size_t n_blocking;
	uint8_t blocking[MAT_MAX_PRACTICES]; /* practice indexes, catalog order */
};

/* satisfied: IMPLEMENTED or NOT_APPLICABLE. */
bool mat_status_satisfied(enum mat_status s);

/* Scores `status` (m->n_practices entries, indexed like m->practices) into *out. */
void mat_score_compute(const struct mat_model *m, const enum mat_status *status,
                       struct mat_score *out);

struct mat_roadmap_stage {
	int level;
	size_t n_steps;
	uint8_t
	    steps[MAT_MAX_PRACTICES]; /* practice indexes: dimension order, then catalog order */
};

struct mat_roadmap {
	int current_level;
	int target_level;
	size_t n_stages; /* target - current when target > current, else 0 */
	struct mat_roadmap_stage stages[MAT_LEVEL_COUNT];
	size_t n_ahead;
	uint8_t ahead[MAT_MAX_PRACTICES]; /* satisfied practices above the target: by level, then
	                                     dimension order, then catalog order */
};

/* The target level of a roadmap (docs/model.md): `requested` if >= 0; else `org_target` if above
 * `current`; else current + 1 capped at 4. */
int mat_roadmap_target(int requested, int org_target, int current);

/* Roadmap from statuses: current = overall level of the score; target from mat_roadmap_target.
 * requested and org_target are -1 when unset. */
void mat_roadmap_compute(const struct mat_model *m, const enum mat_status *status, int requested,
                         int org_target, struct mat_roadmap *out);

#endif
