/* Reporting against a real server: the portfolio summary of a small fixture, with every number
 * computed again here from the answers the test gave (docs/model.md's scoring re-implemented in a
 * few lines, not through mat_score), under label filters and transition time windows; more
 * organizations than one keyset batch; and both exports: complete, strictly ordered by
 * (update_time, org, id) with microsecond ties, resumable from any record's cursor to exactly the
 * rest, filtered, visibility applied, and garbage or the other export's cursors refused on
 * "cursor". */
#include "mat_model.h"
#include "store_internal.h"
#include "store_test_db.h"

#include <inttypes.h>
#include <limits.h>
#include <math.h>
#include <pthread.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

static struct tdb *db;
static const struct mat_model *model;

static int setup(void **state)
{
	(void)state;
	db = tdb_open(NULL, 4, true);
	model = mat_model_find("mlops-v1");
	return 0;
}

static int teardown(void **state)
{
	(void)state;
	tdb_close(db);
	return 0;
}

#define EDITOR "spiffe://corp.example/editor"
#define REPORTER "spiffe://corp.example/reporter"

static int64_t q(const char *fmt, ...) MAT_PRINTF(1, 2);
static int64_t q(const char *fmt, ...)
{
	char sql[4096];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(sql, sizeof(sql), fmt, ap);
	va_end(ap);
	return tdb_scalar(db, sql);
}

static void x(const char *fmt, ...) MAT_PRINTF(1, 2);
static void x(const char *fmt, ...)
{
	char sql[4096];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(sql, sizeof(sql), fmt, ap);
	va_end(ap);
	tdb_exec(db, sql);
}

static void create_org(const char *id, enum mat_policy policy, int target,
                       const struct mat_label *labels, size_t n_labels)
{
	struct store_call c = tdb_call(db, "admin", 5000);
	struct mat_organization in = {.id = (char *)id,
	                              .display_name = (char *)"O",
	                              .description = (char *)"",
	                              .labels = (struct mat_label *)labels,
	                              .n_labels = n_labels,
	                              .target_level = target,
	                              .transition_policy = policy};
	struct mat_organization out;
	struct mat_error err;

	mat_error_clear(&err);
	if (store_org_create(&c, &in, NULL, &out, &err) != MAT_OK)
		fail_msg("create org %s: %s", id, err.message);
	mat_organization_cleanup(&out);
}

/* Statuses per practice index; UNSPECIFIED = no answer. */
struct answers {
	enum mat_status s[MAT_MAX_PRACTICES];
};

static struct answers uniform(int level)
{
	struct answers a = {{0}};

	for (size_t i = 0; i < model->n_practices; i++)
		a.s[i] = model->practices[i].level <= level ? MAT_STATUS_IMPLEMENTED
		                                            : MAT_STATUS_UNSPECIFIED;
	return a;
}

/* Creates an assessment with `a`'s answers; submits it unless `draft`. Returns its id. */
static char *assess(const char *org, const struct answers *a, bool draft)
{
	struct store_call c = tdb_call(db, EDITOR, 5000);
	struct mat_answer ans[MAT_MAX_PRACTICES];
	struct mat_assessment m, u, s;
	struct mat_error err;
	size_t n = 0;
	char *id;

	for (size_t i = 0; i < model->n_practices; i++) {
		if (a->s[i] == MAT_STATUS_UNSPECIFIED)
			continue;
		ans[n++] = (struct mat_answer){
		    .practice_id = (char *)model->practices[i].id,
		    .status = a->s[i],
		    .note = (char *)(a->s[i] == MAT_STATUS_NOT_APPLICABLE ? "not here" : ""),
		    .evidence_uri = (char *)""};
	}
	mat_error_clear(&err);
	if (store_assessment_create(&c, org, "T", NULL, NULL, &m, &err) != MAT_OK ||
	    store_assessment_update_answers(&c, org, m.id, ans, n, NULL, &u, &err) != MAT_OK)
		fail_msg("assessment on %s: %s", org, err.message);
	if (!draft) {
		if (store_assessment_submit(&c, org, m.id, NULL, &s, &err) != MAT_OK)
			fail_msg("submit on %s: %s", org, err.message);
		mat_assessment_cleanup(&s);
	}
	id = strdup(m.id);
	mat_assessment_cleanup(&m);
	mat_assessment_cleanup(&u);
	return id;
}

/* --- docs/model.md, Scoring, again, for the expectations --------------------------------- */

static bool satisfied(enum mat_status s)
{
	return s == MAT_STATUS_IMPLEMENTED || s == MAT_STATUS_NOT_APPLICABLE;
}

/* Dimension level of d: the largest L such that every practice of d with level <= L is
 * satisfied. */
static int dim_level(const struct answers *a, int d)
{
	int level = 4;

	for (size_t i = 0; i < model->n_practices; i++) {
		const struct mat_practice *p = &model->practices[i];
		if (p->dimension == d && !satisfied(a->s[i]) && p->level - 1 < level)
			level = p->level - 1;
	}
	return level;
}

static int overall(const struct answers *a)
{
	int level = 4;

	for (size_t d = 0; d < model->n_dimensions; d++) {
		int l = dim_level(a, (int)d);
		if (l < level)
			level = l;
	}
	return level;
}

/* 100 x credits / practices, rounded to two decimals. */
static double index_of(const struct answers *a)
{
	double credits = 0;

	for (size_t i = 0; i < model->n_practices; i++)
		credits += satisfied(a->s[i]) ? 1.0 : a->s[i] == MAT_STATUS_PARTIAL ? 0.5 : 0.0;
	return round(100.0 * credits / (double)model->n_practices * 100.0) / 100.0;
}

/* --- portfolio ------------------------------------------------------------------------------ */

struct fixture_org {
	const char *id;
	struct mat_label labels[2];
	size_t n_labels;
	enum mat_policy policy;
	int target;
	int current;         /* expected */
	bool has_last;       /* a submitted assessment */
	struct answers last; /* its answers */
};

static bool has_labels(const struct fixture_org *o, const struct mat_label *want, size_t n)
{
	for (size_t i = 0; i < n; i++) {
		bool found = false;
		for (size_t k = 0; k < o->n_labels; k++)
			found |= strcmp(o->labels[k].key, want[i].key) == 0 &&
			         strcmp(o->labels[k].value, want[i].value) == 0;
		if (!found)
			return false;
	}
	return true;
}

static void expect_summary(const struct fixture_org *orgs, size_t n_orgs,
                           const struct mat_label *labels, size_t n_labels,
                           struct store_portfolio *e)
{
	double sum = 0;
	int64_t scored = 0;

	memset(e, 0, sizeof(*e));
	e->n_dimensions = model->n_dimensions;
	for (size_t i = 0; i < n_orgs; i++) {
		const struct fixture_org *o = &orgs[i];
		if (!has_labels(o, labels, n_labels))
			continue;
		e->organization_count++;
		e->organizations_per_level[o->current]++;
		e->at_or_above_target_count += o->current >= o->target;
		if (!o->has_last)
			continue;
		for (size_t d = 0; d < model->n_dimensions; d++)
			e->dimension_per_level[d][dim_level(&o->last, (int)d)]++;
		sum += index_of(&o->last);
		scored++;
	}
	e->mean_maturity_index = scored ? sum / (double)scored : 0;
}

static void summary(const struct mat_label *labels, size_t n, mat_time_us start, mat_time_us end,
                    struct store_portfolio *p)
{
	struct store_call c = tdb_call(db, REPORTER, 10000);
	struct mat_error err;

	mat_error_clear(&err);
	if (store_portfolio_summary(&c, labels, n, start, end, p, &err) != MAT_OK)
		fail_msg("portfolio: %s", err.message);
}

static void assert_same_orgs(const struct store_portfolio *got, const struct store_portfolio *e)
{
	assert_int_equal(got->organization_count, e->organization_count);
	for (int l = 0; l < 5; l++)
		assert_int_equal(got->organizations_per_level[l], e->organizations_per_level[l]);
	assert_int_equal(got->at_or_above_target_count, e->at_or_above_target_count);
	assert_int_equal(got->n_dimensions, e->n_dimensions);
	for (size_t d = 0; d < e->n_dimensions; d++) {
		for (int l = 0; l < 5; l++) {
			if (got->dimension_per_level[d][l] != e->dimension_per_level[d][l])
				fail_msg("dimension %zu level %d: %" PRId64 ", expected %" PRId64,
				         d, l, got->dimension_per_level[d][l],
				         e->dimension_per_level[d][l]);
		}
	}
	if (fabs(got->mean_maturity_index - e->mean_maturity_index) > 1e-9)
		fail_msg("mean maturity index %.12f, expected %.12f", got->mean_maturity_index,
		         e->mean_maturity_index);
}

/* 2024-01-01T00:00:00Z plus `days`, in microseconds. */
static mat_time_us day(int days)
{
	return (1704067200LL + days * 86400LL) * 1000000;
}

static void test_store_report_portfolio(void **state)
{
	static struct fixture_org orgs[5] = {
	    {.id = "pf-a",
	     .labels = {{"team", "ml"}, {"env", "prod"}},
	     .n_labels = 2,
	     .policy = MAT_POLICY_AUTOMATIC,
	     .target = 2},
	    {.id = "pf-b",
	     .labels = {{"team", "ml"}, {"env", "dev"}},
	     .n_labels = 2,
	     .policy = MAT_POLICY_AUTOMATIC,
	     .target = 4},
	    {.id = "pf-c",
	     .labels = {{"team", "data"}},
	     .n_labels = 1,
	     .policy = MAT_POLICY_MANUAL_REVIEW,
	     .target = 0},
	    {.id = "pf-d",
	     .labels = {{"team", "ml"}},
	     .n_labels = 1,
	     .policy = MAT_POLICY_MANUAL_REVIEW,
	     .target = 1},
	    {.id = "pf-e",
	     .labels = {{"team", "data"}},
	     .n_labels = 1,
	     .policy = MAT_POLICY_MANUAL_REVIEW,
	     .target = 3},
	};
	struct answers l1 = uniform(1), l2 = uniform(2), mixed = uniform(1);
	struct store_portfolio got, e;
	const struct mat_label ml[] = {{"team", "ml"}}, prod[] = {{"team", "ml"}, {"env", "prod"}},
	                       data[] = {{"team", "data"}}, none[] = {{"team", "nobody"}};
	char *ids[8];
	int k = 0;

	(void)state;
	TDB_SKIP_IF_NONE(db);
	/* pf-b's last assessment: uneven across dimensions. Level 1 everywhere, all of people's
	 * level-2 practices, one NOT_APPLICABLE and one PARTIAL further up. */
	for (size_t i = 0; i < model->n_practices; i++) {
		const struct mat_practice *p = &model->practices[i];
		if (p->dimension == 0 && p->level == 2)
			mixed.s[i] = MAT_STATUS_IMPLEMENTED;
		if (p->dimension == 1 && p->level == 2 && mixed.s[i] == MAT_STATUS_UNSPECIFIED)
			mixed.s[i] = MAT_STATUS_NOT_APPLICABLE;
		if (p->dimension == 2 && p->level == 3)
			mixed.s[i] = MAT_STATUS_PARTIAL;
	}
	assert_true(overall(&mixed) < 2); /* so pf-b regresses from 2 */
	for (size_t i = 0; i < 5; i++)
		create_org(orgs[i].id, orgs[i].policy, orgs[i].target, orgs[i].labels,
		           orgs[i].n_labels);
	/* pf-a: 0 -> 1 -> 3, automatic. */
	ids[k++] = assess("pf-a", &l1, false);
	orgs[0].last = uniform(3);
	ids[k++] = assess("pf-a", &orgs[0].last, false);
	orgs[0].current = overall(&orgs[0].last);
	orgs[0].has_last = true;
	/* pf-b: 0 -> 2 up, then down to the mixed level. */
	ids[k++] = assess("pf-b", &l2, false);
	orgs[1].last = mixed;
	ids[k++] = assess("pf-b", &mixed, false);
	orgs[1].current = overall(&mixed);
	orgs[1].has_last = true;
	/* pf-c: manual: proposed, not applied; its assessment counts, its level stays 0. */
	ids[k++] = assess("pf-c", &l2, false);
	orgs[2].last = l2;
	orgs[2].has_last = true;
	/* pf-d: nothing; pf-e: a draft only (not counted). */
	ids[k++] = assess("pf-e", &l2, true);
	assert_int_equal(q("SELECT current_level FROM organizations WHERE id = 'pf-a'"),
	                 orgs[0].current);
	assert_int_equal(q("SELECT current_level FROM organizations WHERE id = 'pf-b'"),
	                 orgs[1].current);

	/* Every organization (none has labels but the fixture's yet). */
	summary(NULL, 0, 0, 0, &got);
	expect_summary(orgs, 5, NULL, 0, &e);
	assert_same_orgs(&got, &e);
	assert_int_equal(got.organization_count, 5);
	assert_int_equal(got.upgrades, 3);    /* pf-a twice, pf-b once */
	assert_int_equal(got.regressions, 1); /* pf-b */
	print_message("portfolio: %" PRId64 " orgs, levels %" PRId64 "/%" PRId64 "/%" PRId64
	              "/%" PRId64 "/%" PRId64 ", mean index %.4f\n",
	              got.organization_count, got.organizations_per_level[0],
	              got.organizations_per_level[1], got.organizations_per_level[2],
	              got.organizations_per_level[3], got.organizations_per_level[4],
	              got.mean_maturity_index);

	/* Label filters: containment of every given label. */
	summary(ml, 1, 0, 0, &got);
	expect_summary(orgs, 5, ml, 1, &e);
	assert_same_orgs(&got, &e);
	assert_int_equal(got.organization_count, 3);
	assert_int_equal(got.upgrades, 3);
	assert_int_equal(got.regressions, 1);
	summary(prod, 2, 0, 0, &got);
	expect_summary(orgs, 5, prod, 2, &e);
	assert_same_orgs(&got, &e);
	assert_int_equal(got.organization_count, 1);
	assert_int_equal(got.upgrades, 2);
	assert_int_equal(got.regressions, 0);
	summary(data, 1, 0, 0, &got);
	expect_summary(orgs, 5, data, 1, &e);
	assert_same_orgs(&got, &e);
	assert_int_equal(got.upgrades + got.regressions, 0); /* pf-c's is only proposed */
	summary(none, 1, 0, 0, &got);
	assert_int_equal(got.organization_count, 0);
	assert_int_equal(got.n_dimensions, model->n_dimensions);
	assert_true(got.mean_maturity_index == 0.0);

	/* The window [start, end) on decide_time; an unset bound is open. */
	x("UPDATE transitions t SET decide_time = timestamptz '2024-01-01 00:00:00+00' + "
	  "CASE WHEN t.org_id = 'pf-a' AND applied_seq = 1 THEN interval '9 days' "
	  "WHEN t.org_id = 'pf-a' THEN interval '40 days' "
	  "WHEN applied_seq = 1 THEN interval '19 days' ELSE interval '60 days' END "
	  "WHERE t.org_id IN ('pf-a', 'pf-b') AND t.state = 2");
	summary(NULL, 0, day(14), day(60), &got); /* pf-a 2nd, pf-b 1st; pf-b's 2nd is at end */
	assert_int_equal(got.upgrades, 2);
	assert_int_equal(got.regressions, 0);
	summary(NULL, 0, day(14), day(60) + 1, &got);
	assert_int_equal(got.regressions, 1);
	summary(NULL, 0, day(31), 0, &got);
	assert_int_equal(got.upgrades, 1);
	assert_int_equal(got.regressions, 1);
	summary(NULL, 0, 0, day(9), &got);
	assert_int_equal(got.upgrades, 0);
	summary(NULL, 0, 0, day(9) + 1, &got);
	assert_int_equal(got.upgrades, 1);
	summary(prod, 2, day(10), 0, &got);
	assert_int_equal(got.upgrades, 1);
	/* The window does not change the organization counts. */
	expect_summary(orgs, 5, prod, 2, &e);
	assert_same_orgs(&got, &e);

	/* only_visible: a principal bound to pf-a alone sees only pf-a. */
	{
		struct store_call c = tdb_call(db, "pf-viewer", 5000);
		struct mat_error err;
		x("INSERT INTO role_bindings (id, principal, role, org_id, creator) VALUES "
		  "(gen_random_uuid(), 'pf-viewer', 4, 'pf-a', 'admin')");
		c.only_visible = true;
		mat_error_clear(&err);
		assert_int_equal(store_portfolio_summary(&c, NULL, 0, 0, 0, &got, &err), MAT_OK);
		assert_int_equal(got.organization_count, 1);
		assert_int_equal(got.upgrades, 2);
	}
	for (int i = 0; i < k; i++)
		free(ids[i]);
}

/* More organizations than one batch (500), a third of them scored: batches meet exactly. */
static void test_store_report_portfolio_many(void **state)
{
	char practices[2048] = "";
	size_t len = 0;
	const struct mat_label bulk[] = {{"suite", "bulk"}};
	struct store_portfolio got;
	struct answers l1 = uniform(1);
	int64_t t0;

	(void)state;
	TDB_SKIP_IF_NONE(db);
	for (size_t i = 0; i < model->n_practices; i++) {
		if (model->practices[i].level == 1)
			len += (size_t)snprintf(practices + len, sizeof(practices) - len, "%s'%s'",
			                        len ? "," : "", model->practices[i].id);
	}
	x("INSERT INTO organizations (id, labels, target_level) SELECT 'bulk-' || "
	  "lpad(i::text, 4, '0'), ('{\"suite\": \"bulk\", \"n\": \"' || i || '\"}')::jsonb, i %% 2 "
	  "FROM generate_series(1, 1203) i");
	x("INSERT INTO assessments (org_id, id, model_id, state, creator, submitter, submit_time) "
	  "SELECT id, gen_random_uuid(), 'mlops-v1', 2, 'x', 'x', now() FROM organizations "
	  "WHERE id LIKE 'bulk-%%' AND substr(id, 6)::int %% 3 = 0");
	x("UPDATE organizations o SET last_assessment_id = a.id FROM assessments a "
	  "WHERE a.org_id = o.id AND o.id LIKE 'bulk-%%'");
	x("INSERT INTO answers (org_id, assessment_id, practice_id, status, updated_by) "
	  "SELECT a.org_id, a.id, p, 3, 'x' FROM assessments a, unnest(ARRAY[%s]) p "
	  "WHERE a.org_id LIKE 'bulk-%%'",
	  practices);
	t0 = store_now_ms();
	summary(bulk, 1, 0, 0, &got);
	print_message("portfolio of 1203 organizations (401 scored): %" PRId64 " ms\n",
	              store_now_ms() - t0);
	assert_int_equal(got.organization_count, 1203);
	assert_int_equal(got.organizations_per_level[0], 1203);
	assert_int_equal(got.at_or_above_target_count, 601); /* even i: target 0 */
	for (size_t d = 0; d < model->n_dimensions; d++) {
		int64_t sum = 0;
		for (int l = 0; l < 5; l++)
			sum += got.dimension_per_level[d][l];
		assert_int_equal(sum, 401);
		assert_int_equal(got.dimension_per_level[d][dim_level(&l1, (int)d)], 401);
	}
	assert_true(fabs(got.mean_maturity_index - index_of(&l1)) < 1e-9);
}

/* --- exports -------------------------------------------------------------------------------- */

/* The exports as the server runs them once its storage loop runs: the batch read on the loop
 * (store_export_*_read), its completion awaited here, the records decoded on this thread. */
static bool on_loop;

struct waiter {
	pthread_mutex_t mu;
	pthread_cond_t cv;
	bool done;
	enum mat_code rc;
	pthread_t thread; /* where done ran */
};

static void waiter_done(void *arg, enum mat_code rc)
{
	struct waiter *w = arg;

	pthread_mutex_lock(&w->mu);
	w->rc = rc;
	w->thread = pthread_self();
	w->done = true;
	pthread_cond_signal(&w->cv);
	pthread_mutex_unlock(&w->mu);
}

static enum mat_code waiter_wait(struct waiter *w)
{
	pthread_mutex_lock(&w->mu);
	while (!w->done)
		pthread_cond_wait(&w->cv, &w->mu);
	pthread_mutex_unlock(&w->mu);
	/* A read that reached PostgreSQL completed on the loop's thread, not this one. */
	if (w->rc == MAT_OK)
		assert_false(pthread_equal(w->thread, pthread_self()));
	pthread_mutex_destroy(&w->mu);
	pthread_cond_destroy(&w->cv);
	return w->rc;
}

static enum mat_code exp_assessments(const struct store_call *c, const char *org,
                                     enum mat_assessment_state st, mat_time_us after,
                                     const char *cursor, int batch, struct mat_assessment **out,
                                     char ***cursors, size_t *n, struct mat_error *err)
{
	struct waiter w = {.mu = PTHREAD_MUTEX_INITIALIZER, .cv = PTHREAD_COND_INITIALIZER};
	struct store_export_read *rd = NULL;

	if (!on_loop)
		return store_export_assessments(c, org, st, after, cursor, batch, out, cursors, n,
		                                err);
	*out = NULL;
	*cursors = NULL;
	*n = 0;
	store_export_assessments_read(c, org, st, after, cursor, batch, &rd, err, waiter_done, &w);
	if (waiter_wait(&w) != MAT_OK) {
		store_export_read_free(rd);
		return w.rc;
	}
	return store_export_assessments_decode(rd, out, cursors, n, err);
}

static enum mat_code exp_transitions(const struct store_call *c, const char *org, mat_time_us start,
                                     const char *cursor, int batch, struct mat_transition **out,
                                     char ***cursors, size_t *n, struct mat_error *err)
{
	struct waiter w = {.mu = PTHREAD_MUTEX_INITIALIZER, .cv = PTHREAD_COND_INITIALIZER};
	struct store_export_read *rd = NULL;

	if (!on_loop)
		return store_export_transitions(c, org, start, cursor, batch, out, cursors, n, err);
	*out = NULL;
	*cursors = NULL;
	*n = 0;
	store_export_transitions_read(c, org, start, cursor, batch, &rd, err, waiter_done, &w);
	if (waiter_wait(&w) != MAT_OK) {
		store_export_read_free(rd);
		return w.rc;
	}
	return store_export_transitions_decode(rd, out, cursors, n, err);
}

struct rec {
	char org[64];
	char id[40];
	mat_time_us t;
	size_t n_answers;
	char *cursor;
};

static int rec_cmp(const struct rec *a, const struct rec *b)
{
	int c = a->t < b->t ? -1 : a->t > b->t;

	if (c == 0)
		c = strcmp(a->org, b->org);
	if (c == 0)
		c = strcmp(a->id, b->id);
	return c;
}

struct assessment_export {
	const char *org_id;
	enum mat_assessment_state state;
	mat_time_us updated_after;
	bool only_visible;
	const char *principal;
};

/* Runs an assessment export to its end from `cursor` in batches of `batch`; returns the
 * records (malloc'd, *n of them), checks order and answers on the way. */
static struct rec *export_assessments(const struct assessment_export *f, const char *cursor,
                                      int batch, size_t *n, int *calls)
{
	struct store_call c = tdb_call(db, f->principal ? f->principal : REPORTER, 10000);
	size_t cap = 64;
	struct rec *out = malloc(cap * sizeof(*out));
	char *cur = strdup(cursor);

	c.only_visible = f->only_visible;
	*n = 0;
	*calls = 0;
	for (;;) {
		struct mat_assessment *list = NULL;
		char **cursors = NULL;
		size_t got = 0;
		struct mat_error err;

		mat_error_clear(&err);
		if (exp_assessments(&c, f->org_id, f->state, f->updated_after, cur, batch, &list,
		                    &cursors, &got, &err) != MAT_OK)
			fail_msg("export: %s", err.message);
		(*calls)++;
		assert_true(got <= (size_t)(batch > 0 ? batch : 100));
		for (size_t i = 0; i < got; i++) {
			const struct mat_assessment *a = &list[i];
			int last = -1;
			if (*n == cap) {
				cap *= 2;
				out = realloc(out, cap * sizeof(*out));
			}
			snprintf(out[*n].org, sizeof(out[*n].org), "%s", a->org_id);
			snprintf(out[*n].id, sizeof(out[*n].id), "%s", a->id);
			out[*n].t = a->update_time;
			out[*n].n_answers = a->n_answers;
			out[*n].cursor = cursors[i];
			assert_null(strpbrk(cursors[i], "+/="));
			if (*n > 0 && rec_cmp(&out[*n - 1], &out[*n]) >= 0)
				fail_msg("out of order: %s/%s then %s/%s", out[*n - 1].org,
				         out[*n - 1].id, a->org_id, a->id);
			/* Answers in catalog order, as GetAssessment returns them. */
			for (size_t j = 0; j < a->n_answers; j++) {
				int idx =
				    mat_model_practice_index(model, a->answers[j].practice_id,
				                             strlen(a->answers[j].practice_id));
				assert_true(idx > last);
				last = idx;
			}
			(*n)++;
			mat_assessment_cleanup(&list[i]);
		}
		free(list);
		free(cur);
		cur = got > 0 ? strdup(cursors[got - 1]) : NULL;
		free(cursors);
		if (got < (size_t)(batch > 0 ? batch : 100)) {
			free(cur);
			return out;
		}
	}
}

static void free_recs(struct rec *r, size_t n)
{
	for (size_t i = 0; i < n; i++)
		free(r[i].cursor);
	free(r);
}

static void test_store_report_export_assessments(void **state)
{
	struct assessment_export f = {0};
	struct rec *all, *rest, *part;
	size_t n, n_rest, n_part;
	int calls;
	char *ids[30];
	struct store_call c;
	struct mat_assessment *list = NULL;
	char **cursors = NULL;
	size_t got = 0;
	struct mat_error err;
	size_t mid = 0, mid2 = 0;

	(void)state;
	TDB_SKIP_IF_NONE(db);
	create_org("ex-a", MAT_POLICY_MANUAL_REVIEW, 0, NULL, 0);
	create_org("ex-b", MAT_POLICY_MANUAL_REVIEW, 0, NULL, 0);
	create_org("ex-c", MAT_POLICY_MANUAL_REVIEW, 0, NULL, 0);
	for (int i = 0; i < 30; i++) {
		char org[8];
		struct answers a = uniform(i % 5);
		snprintf(org, sizeof(org), "ex-%c", 'a' + i % 3);
		ids[i] = assess(org, &a, i % 4 != 0);
	}
	/* Ties to the microsecond across organizations, a microsecond apart (in the past: an
	 * export never goes beyond the present, see the watermark test). */
	x("UPDATE assessments SET update_time = CASE WHEN substr(id::text, 36, 1) < '8' "
	  "THEN timestamptz '2021-01-01 00:00:00.000001+00' "
	  "ELSE timestamptz '2021-01-01 00:00:00.000002+00' END "
	  "WHERE org_id LIKE 'ex-%%' AND substr(id::text, 35, 1) < '8'");
	assert_true(q("SELECT count(*) FROM assessments WHERE update_time = "
	              "'2021-01-01 00:00:00.000001+00'") > 1);

	/* Everything, in batches of 7. */
	all = export_assessments(&f, "", 7, &n, &calls);
	assert_int_equal(n, q("SELECT count(*) FROM assessments"));
	assert_true(calls >= 5);
	for (size_t i = 0; i < n; i++) {
		assert_int_equal(all[i].n_answers,
		                 q("SELECT count(*) FROM answers WHERE org_id = '%s' AND "
		                   "assessment_id = '%s'",
		                   all[i].org, all[i].id));
		/* A record inside the first group of ties, to resume from. */
		if (mid == 0 && i > 0 && all[i].t == all[i - 1].t && all[i].t > 0)
			mid = i;
		/* And one inside the ties of the microsecond set by hand. */
		if (mid2 == 0 && i > 0 && all[i].t == 1609459200000001 && all[i - 1].t == all[i].t)
			mid2 = i;
	}
	assert_true(mid > 0);
	assert_true(mid2 > 0);
	print_message("exported %zu assessments in %d calls; resuming after #%zu\n", n, calls, mid);

	/* Resuming from a record's cursor gives exactly the records after it (around the ties,
	 * and every 25th). */
	for (size_t from = 0; from < n; from++) {
		if (from % 25 != 0 && (from + 1 < mid || from > mid + 1) &&
		    (from + 1 < mid2 || from > mid2 + 1) && from + 2 < n)
			continue;
		rest = export_assessments(&f, all[from].cursor, 16, &n_rest, &calls);
		assert_int_equal(n_rest, n - from - 1);
		for (size_t i = 0; i < n_rest; i++) {
			assert_string_equal(rest[i].id, all[from + 1 + i].id);
			assert_string_equal(rest[i].cursor, all[from + 1 + i].cursor);
		}
		free_recs(rest, n_rest);
	}
	rest = export_assessments(&f, all[mid].cursor, 1000, &n_rest, &calls);
	assert_int_equal(n_rest, n - mid - 1);
	assert_string_equal(rest[0].id, all[mid + 1].id);
	free_recs(rest, n_rest);
	rest = export_assessments(&f, all[n - 1].cursor, 0, &n_rest, &calls);
	assert_int_equal(n_rest, 0);
	free_recs(rest, n_rest);

	/* Filters: one organization, state, updated_after (strictly after, to the microsecond). */
	f.org_id = "ex-b";
	part = export_assessments(&f, "", 3, &n_part, &calls);
	assert_int_equal(n_part, 10);
	for (size_t i = 0; i < n_part; i++)
		assert_string_equal(part[i].org, "ex-b");
	/* A cursor is a position: within one organization it resumes just the same. */
	rest = export_assessments(&f, part[4].cursor, 3, &n_rest, &calls);
	assert_int_equal(n_rest, 5);
	assert_string_equal(rest[0].id, part[5].id);
	free_recs(rest, n_rest);
	free_recs(part, n_part);
	f.org_id = NULL;
	f.state = MAT_ASSESSMENT_SUBMITTED;
	part = export_assessments(&f, "", 5, &n_part, &calls);
	assert_int_equal(n_part, q("SELECT count(*) FROM assessments WHERE state = 2"));
	free_recs(part, n_part);
	f.state = MAT_ASSESSMENT_DRAFT;
	f.updated_after = 1609459200000001; /* 2021-01-01 00:00:00.000001 */
	part = export_assessments(&f, "", 5, &n_part, &calls);
	assert_int_equal(n_part, q("SELECT count(*) FROM assessments WHERE state = 1 AND "
	                           "update_time > '2021-01-01 00:00:00.000001+00'"));
	assert_true(n_part > 0);
	for (size_t i = 0; i < n_part; i++)
		assert_true(part[i].t > 1609459200000001);
	free_recs(part, n_part);

	/* Visibility when exporting across organizations. */
	x("INSERT INTO role_bindings (id, principal, role, org_id, creator) VALUES "
	  "(gen_random_uuid(), 'ex-viewer', 4, 'ex-c', 'admin')");
	f = (struct assessment_export){.only_visible = true, .principal = "ex-viewer"};
	part = export_assessments(&f, "", 4, &n_part, &calls);
	assert_int_equal(n_part, 10);
	for (size_t i = 0; i < n_part; i++)
		assert_string_equal(part[i].org, "ex-c");
	free_recs(part, n_part);

	/* Refused cursors: garbage, a page token, the other export's; outputs stay empty. */
	c = tdb_call(db, REPORTER, 5000);
	mat_error_clear(&err);
	{
		const char *bad[] = {"garbage!", "AAAA", all[0].cursor + 1};
		for (size_t i = 0; i < 3; i++) {
			mat_error_clear(&err);
			assert_int_equal(store_export_assessments(&c, NULL, 0, 0, bad[i], 10, &list,
			                                          &cursors, &got, &err),
			                 MAT_INVALID);
			assert_int_equal(err.n_violations, 1);
			assert_string_equal(err.violations[0].field, "cursor");
			assert_null(list);
			assert_null(cursors);
			assert_int_equal(got, 0);
		}
	}
	{
		struct mat_transition *tl = NULL;
		size_t tn = 0;
		mat_error_clear(&err);
		assert_int_equal(store_export_transitions(&c, NULL, 0, all[0].cursor, 10, &tl,
		                                          &cursors, &tn, &err),
		                 MAT_INVALID);
		assert_string_equal(err.violations[0].field, "cursor");
		assert_non_null(strstr(err.message, "another"));
	}
	free_recs(all, n);
	for (int i = 0; i < 30; i++)
		free(ids[i]);
}

/* Runs a transition export to its end; returns the records. */
/* A transaction that started before an export's position and commits after the export went
 * past it must not be skipped: the export stops short of the oldest open transaction, and a
 * resume from its last cursor brings the row once it commits. (Without the watermark the first
 * export ended with the later-committed row B, and the resume after it never saw A.) */
static void test_store_report_export_waits_for_open_transactions(void **state)
{
	struct assessment_export f = {.org_id = "wm-org"};
	struct answers none = {{0}};
	char *a, *b, sql[256];
	struct rec *first, *rest;
	size_t n_first, n_rest;
	int calls;
	PGconn *open_tx;
	PGresult *r;
	mat_time_us t0;

	(void)state;
	TDB_SKIP_IF_NONE(db);
	create_org("wm-org", MAT_POLICY_AUTOMATIC, 0, NULL, 0);
	a = assess("wm-org", &none, true);
	b = assess("wm-org", &none, true);

	/* A writer opens its transaction (update_time = its start, t0) and stays open. */
	open_tx = tdb_connect(db);
	r = PQexec(open_tx, "BEGIN");
	PQclear(r);
	snprintf(sql, sizeof(sql),
	         "UPDATE assessments SET title = 'late', update_time = now() WHERE id = '%s' "
	         "RETURNING mat_epoch_us(update_time)",
	         a);
	r = PQexec(open_tx, sql);
	assert_int_equal(PQresultStatus(r), PGRES_TUPLES_OK);
	t0 = strtoll(PQgetvalue(r, 0, 0), NULL, 10);
	PQclear(r);
	/* Meanwhile B is changed and committed, later than t0. */
	x("SELECT pg_sleep(0.01)");
	x("UPDATE assessments SET title = 'early', update_time = now() WHERE id = '%s'", b);

	first = export_assessments(&f, "", 10, &n_first, &calls);
	for (size_t i = 0; i < n_first; i++)
		if (first[i].t >= t0)
			fail_msg("exported %s (updated at %lld) past the open transaction (%lld)",
			         first[i].id, (long long)first[i].t, (long long)t0);
	assert_true(n_first >= 1);

	r = PQexec(open_tx, "COMMIT");
	PQclear(r);
	PQfinish(open_tx);
	rest = export_assessments(&f, first[n_first - 1].cursor, 10, &n_rest, &calls);
	assert_int_equal(n_rest, 2);
	assert_string_equal(rest[0].id, a);
	assert_int_equal(rest[0].t, t0);
	assert_string_equal(rest[1].id, b);
	free_recs(first, n_first);
	free_recs(rest, n_rest);
	free(a);
	free(b);
}

static struct rec *export_transitions(const char *org, mat_time_us start, const char *cursor,
                                      int batch, size_t *n)
{
	struct store_call c = tdb_call(db, REPORTER, 10000);
	size_t cap = 64;
	struct rec *out = malloc(cap * sizeof(*out));
	char *cur = strdup(cursor);

	*n = 0;
	for (;;) {
		struct mat_transition *list = NULL;
		char **cursors = NULL;
		size_t got = 0;
		struct mat_error err;

		mat_error_clear(&err);
		if (exp_transitions(&c, org, start, cur, batch, &list, &cursors, &got, &err) !=
		    MAT_OK)
			fail_msg("export: %s", err.message);
		for (size_t i = 0; i < got; i++) {
			if (*n == cap) {
				cap *= 2;
				out = realloc(out, cap * sizeof(*out));
			}
			snprintf(out[*n].org, sizeof(out[*n].org), "%s", list[i].org_id);
			snprintf(out[*n].id, sizeof(out[*n].id), "%s", list[i].id);
			out[*n].t = list[i].update_time;
			out[*n].n_answers = 0;
			out[*n].cursor = cursors[i];
			if (*n > 0 && rec_cmp(&out[*n - 1], &out[*n]) >= 0)
				fail_msg("out of order at %zu", *n);
			(*n)++;
			mat_transition_cleanup(&list[i]);
		}
		free(list);
		free(cur);
		cur = got > 0 ? strdup(cursors[got - 1]) : NULL;
		free(cursors);
		if (got < (size_t)batch) {
			free(cur);
			return out;
		}
	}
}

static void test_store_report_export_transitions(void **state)
{
	struct rec *all, *rest;
	size_t n, n_rest;
	mat_time_us start;
	struct store_call c;
	struct mat_assessment *al = NULL;
	char **cursors = NULL;
	size_t got = 0;
	struct mat_error err;
	char *ids[12];

	(void)state;
	TDB_SKIP_IF_NONE(db);
	create_org("et-a", MAT_POLICY_AUTOMATIC, 0, NULL, 0);
	create_org("et-b", MAT_POLICY_MANUAL_REVIEW, 0, NULL, 0);
	for (int i = 0; i < 12; i++) {
		struct answers a = uniform(1 + i % 4);
		ids[i] = assess(i % 2 ? "et-b" : "et-a", &a, false);
	}
	/* Ties across organizations. */
	x("UPDATE transitions SET update_time = '2022-02-02 00:00:00.000007+00' "
	  "WHERE org_id LIKE 'et-%%' AND state = 4");
	all = export_transitions(NULL, 0, "", 3, &n);
	assert_int_equal(n, q("SELECT count(*) FROM transitions"));
	assert_true(n >= 12);
	for (size_t from = 0; from < n; from++) {
		rest = export_transitions(NULL, 0, all[from].cursor, 5, &n_rest);
		assert_int_equal(n_rest, n - from - 1);
		for (size_t i = 0; i < n_rest; i++)
			assert_string_equal(rest[i].id, all[from + 1 + i].id);
		free_recs(rest, n_rest);
	}
	/* start_time: update_time >= start. */
	start = all[n / 2].t;
	rest = export_transitions(NULL, start, "", 4, &n_rest);
	assert_int_equal(n_rest,
	                 q("SELECT count(*) FROM transitions WHERE mat_epoch_us(update_time) "
	                   ">= %" PRId64,
	                   start));
	assert_true(rest[0].t >= start);
	free_recs(rest, n_rest);
	rest = export_transitions("et-b", 0, "", 2, &n_rest);
	assert_int_equal(n_rest, q("SELECT count(*) FROM transitions WHERE org_id = 'et-b'"));
	for (size_t i = 0; i < n_rest; i++)
		assert_string_equal(rest[i].org, "et-b");
	free_recs(rest, n_rest);
	/* An organization that does not exist. */
	c = tdb_call(db, REPORTER, 5000);
	mat_error_clear(&err);
	{
		struct mat_transition *tl = NULL;
		size_t tn = 0;
		assert_int_equal(store_export_transitions(&c, "no-such-org", 0, "", 10, &tl,
		                                          &cursors, &tn, &err),
		                 MAT_NOT_FOUND);
		assert_null(tl);
		assert_int_equal(store_export_assessments(&c, "no-such-org", 0, 0, "", 10, &al,
		                                          &cursors, &got, &err),
		                 MAT_NOT_FOUND);
	}
	/* A transition cursor is not an assessment cursor. */
	assert_int_equal(
	    store_export_assessments(&c, NULL, 0, 0, all[0].cursor, 10, &al, &cursors, &got, &err),
	    MAT_INVALID);
	assert_string_equal(err.violations[0].field, "cursor");
	free_recs(all, n);
	for (int i = 0; i < 12; i++)
		free(ids[i]);
}

/* Every libpq operation of a summary, an export batch and an audit page failing in turn: each
 * call answers UNAVAILABLE with empty outputs or succeeds, and nothing leaks (ASan). */
static void test_store_report_faults(void **state)
{
	const struct mat_label ml[] = {{"team", "ml"}};

	(void)state;
	TDB_SKIP_IF_NONE(db);
	for (int which = 0; which < 4; which++) {
		long ops = 0;
		int failures = 0;

		for (long nth = 0; nth <= ops + 3; nth++) {
			struct store_call c = tdb_call(db, REPORTER, 10000);
			struct store_portfolio p;
			struct mat_assessment *al = NULL;
			struct mat_transition *tl = NULL;
			struct mat_audit_event *el = NULL;
			char **cursors = NULL, *next = NULL;
			size_t n = 0;
			struct mat_error err;
			enum mat_code rc = MAT_INTERNAL;

			mat_error_clear(&err);
			store_fault_set(nth == 0 ? INT_MAX : (int)nth);
			if (which == 0)
				rc = store_portfolio_summary(&c, ml, 1, 0, 0, &p, &err);
			else if (which == 1)
				rc = store_export_assessments(&c, NULL, 0, 0, "", 50, &al, &cursors,
				                              &n, &err);
			else if (which == 2)
				rc = store_export_transitions(&c, "pf-a", 0, "", 50, &tl, &cursors,
				                              &n, &err);
			else
				rc = store_audit_list(&c, "", 0, 0, 20, "", &el, &n, &next, &err);
			if (nth == 0)
				ops = store_fault_count();
			store_fault_set(0);
			if (rc != MAT_OK) {
				failures++;
				if (rc != MAT_UNAVAILABLE)
					fail_msg("call %d, fault %ld: %s %s", which, nth,
					         mat_code_name(rc), err.message);
				assert_null(al);
				assert_null(tl);
				assert_null(el);
				assert_null(cursors);
				assert_null(next);
				assert_int_equal(n, 0);
				continue;
			}
			for (size_t i = 0; i < n; i++) {
				if (al != NULL)
					mat_assessment_cleanup(&al[i]);
				if (tl != NULL)
					mat_transition_cleanup(&tl[i]);
				if (el != NULL)
					mat_audit_event_cleanup(&el[i]);
				if (cursors != NULL)
					free(cursors[i]);
			}
			free(al);
			free(tl);
			free(el);
			free(cursors);
			free(next);
		}
		/* A read that loses a pooled connection is retried once on a fresh one, so one
		 * fault often fails nothing: what matters is that no call fails otherwise. */
		print_message(
		    "call %d: %ld libpq operations; %d of %ld injected faults failed it\n", which,
		    ops, failures, ops + 3);
		assert_true(ops > 2);
	}
}

/* The exports through the storage loop, as the server runs them: the same records and cursors
 * as the blocking calls, in batches of any size, from any cursor, for every organization or
 * one, with visibility; and the same refusals. */
static void test_store_report_exports_on_the_loop(void **state)
{
	struct assessment_export every = {0}, one = {.org_id = "ex-b"},
	                         seen = {.only_visible = true, .principal = "ex-viewer"};
	const struct assessment_export *fs[] = {&every, &one, &seen};
	struct store_call c;
	struct mat_assessment *al = NULL;
	struct mat_transition *tl = NULL;
	char **cursors = NULL;
	size_t got = 0;
	struct mat_error err;
	int calls;

	(void)state;
	TDB_SKIP_IF_NONE(db);
	c = tdb_call(db, REPORTER, 10000);
	mat_error_clear(&err);
	/* One connection for short reads, one for bulk ones, as the server has on 2 cores. */
	assert_int_equal(store_pool_start_loop(c.pool, 1, 1, NULL, NULL, &err), MAT_OK);
	for (size_t k = 0; k < sizeof(fs) / sizeof(fs[0]); k++) {
		size_t n_sync, n_loop;
		struct rec *sync, *loop;

		on_loop = false;
		sync = export_assessments(fs[k], "", 7, &n_sync, &calls);
		on_loop = true;
		loop = export_assessments(fs[k], "", 7, &n_loop, &calls);
		assert_true(n_sync > 0);
		assert_int_equal(n_loop, n_sync);
		for (size_t i = 0; i < n_sync; i++) {
			assert_int_equal(rec_cmp(&sync[i], &loop[i]), 0);
			assert_int_equal(loop[i].n_answers, sync[i].n_answers);
			assert_string_equal(loop[i].cursor, sync[i].cursor);
		}
		/* From a record in the middle: exactly the rest. */
		free_recs(loop, n_loop);
		loop = export_assessments(fs[k], sync[n_sync / 2].cursor, 3, &n_loop, &calls);
		assert_int_equal(n_loop, n_sync - n_sync / 2 - 1);
		for (size_t i = 0; i < n_loop; i++)
			assert_int_equal(rec_cmp(&loop[i], &sync[n_sync / 2 + 1 + i]), 0);
		free_recs(loop, n_loop);
		free_recs(sync, n_sync);
	}
	{
		size_t n_sync, n_loop;
		struct rec *sync, *loop;

		on_loop = false;
		sync = export_transitions(NULL, 0, "", 3, &n_sync);
		on_loop = true;
		loop = export_transitions(NULL, 0, "", 4, &n_loop);
		assert_true(n_sync > 0);
		assert_int_equal(n_loop, n_sync);
		for (size_t i = 0; i < n_sync; i++) {
			assert_int_equal(rec_cmp(&sync[i], &loop[i]), 0);
			assert_string_equal(loop[i].cursor, sync[i].cursor);
		}
		/* A transitions cursor is refused by the assessments export, on "cursor". */
		mat_error_clear(&err);
		assert_int_equal(
		    exp_assessments(&c, NULL, 0, 0, sync[0].cursor, 10, &al, &cursors, &got, &err),
		    MAT_INVALID);
		assert_int_equal(err.n_violations, 1);
		assert_string_equal(err.violations[0].field, "cursor");
		assert_null(al);
		free_recs(loop, n_loop);
		free_recs(sync, n_sync);
	}
	/* Garbage, and organizations that do not exist. */
	mat_error_clear(&err);
	assert_int_equal(
	    exp_transitions(&c, NULL, 0, "not-a-cursor", 10, &tl, &cursors, &got, &err),
	    MAT_INVALID);
	mat_error_clear(&err);
	assert_int_equal(exp_transitions(&c, "no-such-org", 0, "", 10, &tl, &cursors, &got, &err),
	                 MAT_NOT_FOUND);
	mat_error_clear(&err);
	assert_int_equal(
	    exp_assessments(&c, "no-such-org", 0, 0, "", 10, &al, &cursors, &got, &err),
	    MAT_NOT_FOUND);
	assert_null(al);
	assert_int_equal(got, 0);
	on_loop = false;
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    /* First: its "every organization" expectations count the fixture alone. */
	    cmocka_unit_test(test_store_report_portfolio),
	    cmocka_unit_test(test_store_report_portfolio_many),
	    cmocka_unit_test(test_store_report_export_assessments),
	    cmocka_unit_test(test_store_report_export_transitions),
	    cmocka_unit_test(test_store_report_export_waits_for_open_transactions),
	    cmocka_unit_test(test_store_report_faults),
	    /* Last: it starts the storage loop. */
	    cmocka_unit_test(test_store_report_exports_on_the_loop),
	};
	return cmocka_run_group_tests(tests, setup, teardown);
}
