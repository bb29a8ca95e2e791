/* Cleanup of the domain records: every owned string freed, the record zeroed. */
#include "mat_types.h"

#include <stdlib.h>
#include <string.h>

void mat_organization_cleanup(struct mat_organization *o)
{
	if (o == NULL)
		return;
	free(o->id);
	free(o->display_name);
	free(o->description);
	for (size_t i = 0; i < o->n_labels; i++) {
		free(o->labels[i].key);
		free(o->labels[i].value);
	}
	free(o->labels);
	free(o->last_assessment_id);
	free(o->etag);
	memset(o, 0, sizeof(*o));
}

void mat_answer_cleanup(struct mat_answer *a)
{
	if (a == NULL)
		return;
	free(a->practice_id);
	free(a->note);
	free(a->evidence_uri);
	free(a->updated_by);
	memset(a, 0, sizeof(*a));
}

void mat_assessment_cleanup(struct mat_assessment *a)
{
	if (a == NULL)
		return;
	free(a->org_id);
	free(a->id);
	free(a->title);
	free(a->model_id);
	for (size_t i = 0; i < a->n_answers; i++)
		mat_answer_cleanup(&a->answers[i]);
	free(a->answers);
	free(a->creator);
	free(a->submitter);
	free(a->etag);
	memset(a, 0, sizeof(*a));
}

void mat_transition_cleanup(struct mat_transition *t)
{
	if (t == NULL)
		return;
	free(t->org_id);
	free(t->id);
	free(t->assessment_id);
	free(t->proposer);
	free(t->decider);
	free(t->reason);
	free(t->etag);
	memset(t, 0, sizeof(*t));
}

void mat_role_binding_cleanup(struct mat_role_binding *b)
{
	if (b == NULL)
		return;
	free(b->id);
	free(b->principal);
	free(b->org_id);
	free(b->creator);
	memset(b, 0, sizeof(*b));
}

void mat_audit_event_cleanup(struct mat_audit_event *e)
{
	if (e == NULL)
		return;
	free(e->id);
	free(e->principal);
	free(e->method);
	free(e->resource);
	free(e->request_id);
	free(e->delegator);
	memset(e, 0, sizeof(*e));
}

void mat_evidence_cleanup(struct mat_evidence *e)
{
	if (e == NULL)
		return;
	free(e->org_id);
	free(e->id);
	free(e->practice_id);
	free(e->source);
	free(e->reporter);
	free(e->uri);
	free(e->digest);
	free(e->note);
	memset(e, 0, sizeof(*e));
}
