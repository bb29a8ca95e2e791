/* The gate rule: validation of a requirement and its evaluation (mat_gate.h). */
#include "mat_gate.h"

#include <stdio.h>
#include <string.h>

/* The protobuf Duration range (about 10,000 years): beyond it the value is not a Duration. */
#define DURATION_MAX_SECONDS INT64_C(315576000000)

static int dimension_index(const struct mat_model *m, const char *id)
{
	for (size_t d = 0; d < m->n_dimensions; d++)
		if (strcmp(m->dimensions[d].id, id) == 0)
			return (int)d;
	return -1;
}

static bool lower_hex(const char *s)
{
	if (s == NULL || s[0] == '\0')
		return false;
	for (; *s; s++)
		if (!((*s >= '0' && *s <= '9') || (*s >= 'a' && *s <= 'f')))
			return false;
	return true;
}

static void validate_requirement(const struct mat_model *m, const struct mat_gate_requirement *r,
                                 struct mat_error *err)
{
	char field[96];

	if (r->min_level < 0 || r->min_level > MAT_MAX_LEVEL)
		mat_error_field(err, "requirement.min_level", "must be a level from 0 to 4, not %d",
		                r->min_level);
	if (r->n_min_dimension_levels > MAT_GATE_MAX_DIMENSION_LEVELS) {
		mat_error_field(err, "requirement.min_dimension_levels",
		                "at most %d entries, not %zu", MAT_GATE_MAX_DIMENSION_LEVELS,
		                r->n_min_dimension_levels);
	} else {
		for (size_t i = 0; i < r->n_min_dimension_levels; i++) {
			const struct mat_gate_dimension_level *e = &r->min_dimension_levels[i];
			const char *id = e->dimension_id != NULL ? e->dimension_id : "";

			snprintf(field, sizeof(field), "requirement.min_dimension_levels[%.48s]",
			         id);
			if (dimension_index(m, id) < 0)
				mat_error_field(err, field,
				                "unknown dimension \"%.48s\" of model %s", id,
				                m->id);
			else if (e->level < 0 || e->level > MAT_MAX_LEVEL)
				mat_error_field(err, field, "must be a level from 0 to 4, not %d",
				                e->level);
		}
	}
	if (r->n_required_practice_ids > MAT_GATE_MAX_PRACTICES) {
		mat_error_field(err, "requirement.required_practice_ids",
		                "at most %d practices, not %zu", MAT_GATE_MAX_PRACTICES,
		                r->n_required_practice_ids);
	} else {
		for (size_t i = 0; i < r->n_required_practice_ids; i++) {
			const char *id =
			    r->required_practice_ids[i] != NULL ? r->required_practice_ids[i] : "";

			if (mat_model_practice_index(m, id, strlen(id)) >= 0)
				continue;
			snprintf(field, sizeof(field), "requirement.required_practice_ids[%zu]", i);
			mat_error_field(err, field, "unknown practice \"%.64s\" of model %s", id,
			                m->id);
		}
	}
	if (r->has_max_evidence_age) {
		int64_t s = r->max_evidence_age_seconds;
		int32_t n = r->max_evidence_age_nanos;

		if (s > DURATION_MAX_SECONDS || s < -DURATION_MAX_SECONDS || n > 999999999 ||
		    n < -999999999 || (s > 0 && n < 0) || (s < 0 && n > 0))
			mat_error_field(err, "requirement.max_evidence_age",
			                "is not a valid duration");
		else if (s < 0 || (s == 0 && n <= 0))
			mat_error_field(err, "requirement.max_evidence_age",
			                "must be positive when set");
	}
}

static void validate_subjects(const struct mat_gate_subject *subjects, size_t n,
                              struct mat_error *err)
{
	char field[96];

	if (n > MAT_GATE_MAX_SUBJECTS) {
		mat_error_field(err, "subjects", "at most %d subjects, not %zu",
		                MAT_GATE_MAX_SUBJECTS, n);
		return;
	}
	for (size_t i = 0; i < n; i++) {
		const struct mat_gate_subject *s = &subjects[i];

		if (s->name == NULL || s->name[0] == '\0') {
			snprintf(field, sizeof(field), "subjects[%zu].name", i);
			mat_error_field(err, field, "is required");
		}
		if (s->n_digests > MAT_GATE_MAX_DIGESTS) {
			snprintf(field, sizeof(field), "subjects[%zu].digest", i);
			mat_error_field(err, field, "at most %d digests, not %zu",
			                MAT_GATE_MAX_DIGESTS, s->n_digests);
			continue;
		}
		for (size_t k = 0; k < s->n_digests; k++) {
			const struct mat_gate_digest *d = &s->digests[k];
			const char *alg = d->algorithm != NULL ? d->algorithm : "";

			snprintf(field, sizeof(field), "subjects[%zu].digest[%.48s]", i, alg);
			if (alg[0] == '\0')
				mat_error_field(err, field, "the algorithm name is required");
			else if (!lower_hex(d->value))
				mat_error_field(err, field, "must be a lowercase hex digest");
		}
	}
}

bool mat_gate_validate(const struct mat_model *m, const struct mat_gate_requirement *req,
                       const struct mat_gate_subject *subjects, size_t n_subjects,
                       struct mat_error *err)
{
	validate_requirement(m, req, err);
	validate_subjects(subjects, n_subjects, err);
	return err->code != MAT_INVALID;
}

static struct mat_gate_unmet *add(struct mat_gate_result *out, enum mat_gate_kind kind)
{
	struct mat_gate_unmet *u = &out->unmet[out->n_unmet++];

	memset(u, 0, sizeof(*u));
	u->kind = kind;
	return u;
}

static const char *status_name(enum mat_status s)
{
	switch (s) {
	case MAT_STATUS_NOT_IMPLEMENTED:
		return "not implemented";
	case MAT_STATUS_PARTIAL:
		return "partial";
	case MAT_STATUS_IMPLEMENTED:
		return "implemented";
	case MAT_STATUS_NOT_APPLICABLE:
		return "not applicable";
	default:
		return "not answered";
	}
}

/* The age in microseconds (validation keeps it far inside int64_t). */
static int64_t age_us(const struct mat_gate_requirement *r)
{
	return r->max_evidence_age_seconds * 1000000 + r->max_evidence_age_nanos / 1000;
}

void mat_gate_evaluate(const struct mat_model *m, const struct mat_gate_requirement *req,
                       const struct mat_gate_inputs *in, struct mat_gate_result *out)
{
	const struct mat_score *score = req->live ? in->live : in->assessed;
	const enum mat_status *status = req->live ? in->live_status : in->assessed_status;
	const char *basis = req->live ? "live" : "reviewed";

	out->n_unmet = 0;
	out->score = score;
	out->level = req->live ? score->overall_level : in->reviewed_level;

	if (out->level < req->min_level) {
		struct mat_gate_unmet *u = add(out, MAT_GATE_MIN_LEVEL);

		snprintf(u->field, sizeof(u->field), "requirement.min_level");
		snprintf(u->message, sizeof(u->message),
		         "the %s level is %d, below the required %d", basis, out->level,
		         req->min_level);
		u->required_level = req->min_level;
		u->actual_level = out->level;
	}

	for (size_t d = 0; d < m->n_dimensions; d++) {
		const char *id = m->dimensions[d].id;
		int required = -1;

		for (size_t i = 0; i < req->n_min_dimension_levels; i++)
			if (strcmp(req->min_dimension_levels[i].dimension_id, id) == 0)
				required =
				    req->min_dimension_levels[i].level; /* the last one counts */
		if (required < 0 || score->dimensions[d].level >= required)
			continue;
		struct mat_gate_unmet *u = add(out, MAT_GATE_DIMENSION);
		snprintf(u->field, sizeof(u->field), "requirement.min_dimension_levels[%s]", id);
		snprintf(u->message, sizeof(u->message),
		         "dimension %s is at level %d, below the required %d", id,
		         score->dimensions[d].level, required);
		u->dimension_id = id;
		u->required_level = required;
		u->actual_level = score->dimensions[d].level;
	}

	for (size_t i = 0; i < req->n_required_practice_ids; i++) {
		const char *rid = req->required_practice_ids[i];
		int p = mat_model_practice_index(m, rid, strlen(rid));

		if (p < 0 || mat_status_satisfied(status[p]))
			continue;
		struct mat_gate_unmet *u = add(out, MAT_GATE_PRACTICE);
		snprintf(u->field, sizeof(u->field), "requirement.required_practice_ids[%zu]", i);
		snprintf(u->message, sizeof(u->message), "practice %s is %s (%s)",
		         m->practices[p].id, status_name(status[p]), basis);
		u->practice_id = m->practices[p].id;
	}

	if (req->has_max_evidence_age) {
		int64_t age = age_us(req);

		for (size_t i = 0; i < req->n_required_practice_ids; i++) {
			const char *rid = req->required_practice_ids[i];
			int p = mat_model_practice_index(m, rid, strlen(rid));
			mat_time_us t = in->evidence_observe_time[i];

			if (p < 0 || (t != 0 && in->now - t <= age))
				continue;
			struct mat_gate_unmet *u = add(out, MAT_GATE_EVIDENCE_AGE);
			snprintf(u->field, sizeof(u->field), "requirement.max_evidence_age");
			if (t == 0)
				snprintf(u->message, sizeof(u->message),
				         "practice %s has no current evidence", m->practices[p].id);
			else
				snprintf(
				    u->message, sizeof(u->message),
				    "the current evidence of practice %s was observed %lld s ago, "
				    "longer than the allowed age",
				    m->practices[p].id, (long long)((in->now - t) / 1000000));
			u->practice_id = m->practices[p].id;
		}
	}
	out->allowed = out->n_unmet == 0;
}
