/* The fault-injection seam: thin wrappers over every libpq call that can fail, so a test can make
 * the Nth one fail (curl's torture mode, SQLite's faultsim) and walk every error path. With no
 * fault set the cost is one relaxed atomic load per call (and one byte test for the arming file
 * below). */
#include "store_internal.h"

#include <limits.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <unistd.h>

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

/* Arming by file, for tests of the whole server (which cannot call store_fault_set): with
 * MATURITY_STORE_FAULT_FILE=PATH, each operation first looks for PATH. When it is there, the
 * first operation to see it reads N from it, writes the number of operations counted since the
 * previous arming to PATH.count (via a temporary file and rename, so a reader never sees half a
 * number), removes PATH and arms store_fault_set(N) — itself counting as operation 1.
 * A test arms a huge N, runs a scenario, arms 0 and makes one more call: PATH.count then holds
 * the scenario's operation count. Off (no file system access) unless the variable is set. */
static char fault_file[512];
static pthread_mutex_t fault_file_mu = PTHREAD_MUTEX_INITIALIZER;

static void fault_file_poll(void)
{
	char buf[32], tmp[sizeof(fault_file) + 8], dst[sizeof(fault_file) + 8];
	long n;
	FILE *f;

	if (access(fault_file, F_OK) != 0)
		return;
	pthread_mutex_lock(&fault_file_mu);
	f = fopen(fault_file, "r");
	if (f == NULL) { /* another thread took it first */
		pthread_mutex_unlock(&fault_file_mu);
		return;
	}
	n = fgets(buf, sizeof(buf), f) != NULL ? strtol(buf, NULL, 10) : 0;
	fclose(f);
	/* The count first, then the arming file goes: a thread that finds the file gone (and so
	 * does not wait for this one) must find the count already there. In the other order a
	 * test's own call could find no file while another thread (the health ping, the event
	 * feed) that took it had not written the count yet, and read no PATH.count
	 * (test_server_faults failed so once under ASan). */
	snprintf(tmp, sizeof(tmp), "%s.tmp", fault_file);
	snprintf(dst, sizeof(dst), "%s.count", fault_file);
	f = fopen(tmp, "w");
	if (f != NULL) {
		fprintf(f, "%ld\n", atomic_load(&fault_count));
		if (fclose(f) == 0)
			(void)rename(tmp, dst);
	}
	(void)unlink(fault_file);
	store_fault_set(n < 0 || n > INT_MAX ? 0 : (int)n);
	pthread_mutex_unlock(&fault_file_mu);
}

/* Counts one operation; true when it is the one that must fail. */
static bool fault(struct store__conn *cn)
{
	long nth;

	if (fault_file[0] != '\0')
		fault_file_poll();
	nth = atomic_load_explicit(&fault_nth, memory_order_relaxed);
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
                            const char *const *params, int binary)
{
	if (fault(cn))
		return 0;
	return PQsendQueryPrepared(cn->pg, name, nparams, params, NULL, NULL, binary);
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
	v = getenv("MATURITY_STORE_FAULT_FILE");
	if (v != NULL && v[0] != '\0')
		snprintf(fault_file, sizeof(fault_file), "%s", v);
}
