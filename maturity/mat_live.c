/* The live rule: per practice, current evidence first, then the submitted answer, then
 * NOT_IMPLEMENTED. One pass over the evidence picks the current piece of every practice, so the
 * cost is linear in the evidence given (storage hands over at most one per practice). */
#include "mat_live.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

static bool evidence_in_force(const struct mat_evidence *e, mat_time_us now)
{
	return e->observe_time <= now && now < e->expire_time;
}

/* True when `a` supersedes `b` as the current evidence of their practice: later observation,
 * then later record, then the greater id, so the choice never depends on input order. */
static bool evidence_newer(const struct mat_evidence *a, const struct mat_evidence *b)
{
	if (a->observe_time != b->observe_time)
		return a->observe_time > b->observe_time;
	if (a->create_time != b->create_time)
		return a->create_time > b->create_time;
	return strcmp(a->id != NULL ? a->id : "", b->id != NULL ? b->id : "") > 0;
}

const struct mat_evidence *mat_evidence_current(const struct mat_evidence *ev, size_t n,
                                                const char *practice_id, mat_time_us now)
{
	const struct mat_evidence *best = NULL;

	if (ev == NULL || practice_id == NULL)
		return NULL;
	for (size_t i = 0; i < n; i++) {
		const struct mat_evidence *e = &ev[i];

		if (e->practice_id == NULL || strcmp(e->practice_id, practice_id) != 0)
			continue;
		if (!evidence_in_force(e, now))
			continue;
		if (best == NULL || evidence_newer(e, best))
			best = e;
	}
	return best;
}

void mat_live_compute(const struct mat_model *m, const struct mat_evidence *ev, size_t n,
                      const struct mat_assessment *submitted, mat_time_us now, struct mat_live *out)
{
	enum mat_status status[MAT_MAX_PRACTICES];
	int satisfied = 0, satisfied_by_evidence = 0;

	memset(out, 0, sizeof(*out));
	out->n_practices = m->n_practices;
	for (size_t i = 0; i < m->n_practices; i++) {
		out->practices[i].assessed_status = MAT_STATUS_UNSPECIFIED;
		out->practices[i].evidence = NULL;
	}

	if (submitted != NULL) {
		for (size_t i = 0; i < submitted->n_answers; i++) {
			const struct mat_answer *a = &submitted->answers[i];
			int k;

			if (a->practice_id == NULL)
				continue;
			k = mat_model_practice_index(m, a->practice_id, strlen(a->practice_id));
			if (k >= 0)
				out->practices[k].assessed_status = a->status;
		}
	}

	for (size_t i = 0; ev != NULL && i < n; i++) {
		const struct mat_evidence *e = &ev[i];
		struct mat_live_practice *p;
		int k;

		if (e->practice_id == NULL || !evidence_in_force(e, now))
			continue;
		k = mat_model_practice_index(m, e->practice_id, strlen(e->practice_id));
		if (k < 0)
			continue;
		p = &out->practices[k];
		if (p->evidence == NULL || evidence_newer(e, p->evidence))
			p->evidence = e;
	}

	for (size_t i = 0; i < m->n_practices; i++) {
		struct mat_live_practice *p = &out->practices[i];

		if (p->evidence != NULL) {
			p->status = p->evidence->status;
			p->basis = MAT_BASIS_EVIDENCE;
		} else if (p->assessed_status != MAT_STATUS_UNSPECIFIED) {
			p->status = p->assessed_status;
			p->basis = MAT_BASIS_ASSESSMENT;
		} else {
			p->status = MAT_STATUS_NOT_IMPLEMENTED;
			p->basis = MAT_BASIS_NONE;
		}
		/* Drift is a claim contradicted by an observation; a missing observation is not
		 * one. */
		p->drift = p->assessed_status == MAT_STATUS_IMPLEMENTED &&
		           p->basis == MAT_BASIS_EVIDENCE && p->status != MAT_STATUS_IMPLEMENTED;
		status[i] = p->status;
		if (mat_status_satisfied(p->status)) {
			satisfied++;
			if (p->basis == MAT_BASIS_EVIDENCE)
				satisfied_by_evidence++;
		}
	}

	mat_score_compute(m, status, &out->score);
	out->confidence = satisfied > 0 ? (double)satisfied_by_evidence / (double)satisfied : 0.0;
}

void mat_time_rfc3339(mat_time_us t, char out[MAT_RFC3339_LEN])
{
	int64_t secs = t / 1000000;
	time_t tt;
	struct tm tm;

	if (t % 1000000 < 0)
		secs--; /* floor: before 1970 the second starts earlier */
	tt = (time_t)secs;
	if (gmtime_r(&tt, &tm) == NULL) {
		snprintf(out, MAT_RFC3339_LEN, "%s", "invalid-time");
		return;
	}
	snprintf(out, MAT_RFC3339_LEN, "%04d-%02d-%02dT%02d:%02d:%02dZ", tm.tm_year + 1900,
	         tm.tm_mon + 1, tm.tm_mday, tm.tm_hour, tm.tm_min, tm.tm_sec);
}

char *mat_evidence_prefill_note(const struct mat_evidence *e)
{
	static const char fmt[] = "evidence organizations/%s/evidence/%s from %s, observed %s";
	const char *org = e->org_id != NULL ? e->org_id : "", *id = e->id != NULL ? e->id : "";
	const char *source = e->source != NULL ? e->source : "";
	char when[MAT_RFC3339_LEN];
	char *note;
	int len;

	mat_time_rfc3339(e->observe_time, when);
	len = snprintf(NULL, 0, fmt, org, id, source, when);
	if (len < 0)
		return NULL;
	note = malloc((size_t)len + 1);
	if (note != NULL)
		snprintf(note, (size_t)len + 1, fmt, org, id, source, when);
	return note;
}
