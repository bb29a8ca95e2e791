/* A maturity model as data: levels, dimensions and practices. The built-in `mlops-v1` catalog
 * (docs/model.md) is one instance; scoring and roadmaps read only this struct, so a model loaded
 * from the database later needs no new code paths. Immutable once built; safe to share between
 * threads. */
#ifndef MAT_MODEL_H
#define MAT_MODEL_H

#include <stddef.h>
#include <stdint.h>

#define MAT_LEVEL_COUNT 5 /* levels 0..4 */
#define MAT_MAX_PRACTICES 64
#define MAT_MAX_DIMENSIONS 8

struct mat_level {
	int level;
	const char *name;
	const char *summary;
	const char *const *challenges; /* levels 0-1; n_challenges entries */
	size_t n_challenges;
	const char *const *benefits; /* levels 2-4 */
	size_t n_benefits;
	const char *const *technology;
	size_t n_technology;
};

struct mat_dimension {
	const char *id; /* "people", "model_creation", ... */
	const char *display_name;
	const char *description;
};

struct mat_practice {
	const char *id; /* "people.regular_communication" */
	int dimension;  /* index into mat_model.dimensions */
	int level;      /* 1..4 */
	const char *title;
	const char *description;
};

struct mat_model {
	const char *id; /* "mlops-v1" */
	const char *display_name;
	struct mat_level levels[MAT_LEVEL_COUNT];
	size_t n_dimensions;
	const struct mat_dimension *dimensions; /* in dimension order */
	size_t n_practices;
	const struct mat_practice *practices; /* in catalog order */
};

/* The built-in models, in name order. Never NULL; *n >= 1. */
const struct mat_model *const *mat_model_all(size_t *n);

/* A model by id ("mlops-v1") or resource name ("models/mlops-v1"); NULL if unknown. */
const struct mat_model *mat_model_find(const char *id_or_name);

/* The index of practice `id` (`len` bytes, not necessarily NUL-terminated) in m->practices, or
 * -1 if the model has no such practice. O(log n). */
int mat_model_practice_index(const struct mat_model *m, const char *id, size_t len);

/* Internal (for tests): the id-sorted index of a built-in model, i.e. m->n_practices
 * practice indexes in strcmp order of their ids, or NULL for a model that has none (lookups then
 * scan). Never allocates. */
const uint8_t *mat__model_id_index(const struct mat_model *m);

#endif
