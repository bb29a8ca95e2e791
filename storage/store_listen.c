/* The event listener: one thread and one connection of its own per replica, LISTENing on the
 * channel the events table's trigger notifies at each commit that wrote events. It only says
 * "something new was committed"; the followers then read the table, which is the truth. A
 * pooled connection cannot do this: LISTEN belongs to a session, and pooled connections are
 * shared by calls (and through a transaction-mode pooler, by other clients). */
#include "store_internal.h"

#include <poll.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdlib.h>

#define BACKOFF_MIN_MS 100
#define BACKOFF_MAX_MS 5000
#define POLL_MS 250 /* how soon a stop is noticed */

struct store_listener {
	struct store_pool *pool;
	void (*notify)(void *arg);
	void *arg;
	atomic_int stop;
	pthread_t thread;
};

static PGconn *listen_connect(struct store_listener *l)
{
	const char *const *kw, *const *val;
	int timeout_ms;
	PGconn *pg;
	PGresult *r;

	store__pool_params(l->pool, &kw, &val, &timeout_ms);
	pg = PQconnectdbParams(kw, val, 0);
	if (pg == NULL || PQstatus(pg) != CONNECTION_OK)
		goto fail;
	r = PQexec(pg, "LISTEN maturity_events");
	if (PQresultStatus(r) != PGRES_COMMAND_OK) {
		PQclear(r);
		goto fail;
	}
	PQclear(r);
	return pg;
fail:
	PQfinish(pg);
	return NULL;
}

static void sleep_ms(struct store_listener *l, int ms)
{
	while (ms > 0 && !atomic_load(&l->stop)) {
		int step = ms < POLL_MS ? ms : POLL_MS;
		poll(NULL, 0, step);
		ms -= step;
	}
}

static void *listen_main(void *arg)
{
	struct store_listener *l = arg;
	int backoff = BACKOFF_MIN_MS;

	while (!atomic_load(&l->stop)) {
		PGconn *pg = listen_connect(l);
		if (pg == NULL) {
			sleep_ms(l, backoff);
			backoff = backoff * 2 > BACKOFF_MAX_MS ? BACKOFF_MAX_MS : backoff * 2;
			continue;
		}
		backoff = BACKOFF_MIN_MS;
		/* Whatever was committed while we were not listening. */
		l->notify(l->arg);
		while (!atomic_load(&l->stop)) {
			struct pollfd p = {.fd = PQsocket(pg), .events = POLLIN};
			int n = poll(&p, 1, POLL_MS);
			bool woke = false;
			PGnotify *nt;

			if (n < 0)
				continue;
			if (n == 0)
				continue;
			if (!PQconsumeInput(pg))
				break;
			while ((nt = PQnotifies(pg)) != NULL) {
				woke = true;
				PQfreemem(nt);
			}
			if (woke)
				l->notify(l->arg);
		}
		PQfinish(pg);
	}
	return NULL;
}

struct store_listener *store_listener_start(struct store_pool *pool, void (*notify)(void *arg),
                                            void *arg)
{
	struct store_listener *l = calloc(1, sizeof(*l));

	if (l == NULL)
		return NULL;
	l->pool = pool;
	l->notify = notify;
	l->arg = arg;
	atomic_init(&l->stop, 0);
	if (pthread_create(&l->thread, NULL, listen_main, l) != 0) {
		free(l);
		return NULL;
	}
	return l;
}

void store_listener_stop(struct store_listener *l)
{
	if (l == NULL)
		return;
	atomic_store(&l->stop, 1);
	pthread_join(l->thread, NULL);
	free(l);
}
