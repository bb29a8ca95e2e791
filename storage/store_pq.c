/* The fault-injection seam: thin wrappers over every libpq call that can fail, so a test can make
 * the Nth one fail (curl's torture mode, SQLite's faultsim) and walk every error path. With no
 * fault set the cost is one relaxed atomic load per call. */
#include "store_internal.h"

#include <stdatomic.h>
#include <stdlib.h>

static atomic_long fault_nth;   /* 0 = off */
static atomic_long fault_count; /* operations since store_fault_set */
static _Thread_local bool fault_last;

void store_fault_set(int nth)
{
	atomic_store(&fault_count, 0);
	atomic_store(&fault_nth, nth < 0 ? 0 : nth);
}

long store_fault_count(void)
{
	return atomic_load(&fault_count);
}

bool store__pq_fault_hit(void)
{
	return fault_last;
}

/* Counts one operation; true when it is the one that must fail. */
static bool fault(struct store__conn *cn)
{
	long nth = atomic_load_explicit(&fault_nth, memory_order_relaxed);

	fault_last = false;
	if (nth == 0)
		return false;
	if (atomic_fetch_add(&fault_count, 1) + 1 != nth)
		return false;
	fault_last = true;
	if (cn != NULL)
		cn->lost = true;
	return true;
}

PGconn *store__pq_connect_start(const char *const *keywords, const char *const *values)
{
	if (fault(NULL))
		return NULL;
	return PQconnectStartParams(keywords, values, 0);
}

PostgresPollingStatusType store__pq_connect_poll(PGconn *pg)
{
	if (fault(NULL))
		return PGRES_POLLING_FAILED;
	return PQconnectPoll(pg);
}

int store__pq_enter_pipeline(struct store__conn *cn)
{
	if (fault(cn))
		return 0;
	return PQenterPipelineMode(cn->pg);
}

int store__pq_send_prepare(struct store__conn *cn, const char *name, const char *sql)
{
	if (fault(cn))
		return 0;
	return PQsendPrepare(cn->pg, name, sql, 0, NULL);
}

int store__pq_send_prepared(struct store__conn *cn, const char *name, int nparams,
                            const char *const *params)
{
	if (fault(cn))
		return 0;
	return PQsendQueryPrepared(cn->pg, name, nparams, params, NULL, NULL, 0);
}

int store__pq_send_query(struct store__conn *cn, const char *sql)
{
	if (fault(cn))
		return 0;
	return PQsendQuery(cn->pg, sql);
}

int store__pq_pipeline_sync(struct store__conn *cn)
{
	if (fault(cn))
		return 0;
	return PQpipelineSync(cn->pg);
}

int store__pq_flush(struct store__conn *cn)
{
	if (fault(cn))
		return -1;
	return PQflush(cn->pg);
}

int store__pq_consume(struct store__conn *cn)
{
	if (fault(cn))
		return 0;
	return PQconsumeInput(cn->pg);
}

PGresult *store__pq_get_result(struct store__conn *cn)
{
	if (fault(cn))
		return NULL;
	return PQgetResult(cn->pg);
}

void store__fault_from_env(void)
{
	const char *v = getenv("MATURITY_STORE_FAULT");

	if (v != NULL && v[0] != '\0')
		store_fault_set(atoi(v));
}
