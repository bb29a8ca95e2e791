/* The front door: listening sockets, TLS, connection bounds and the HTTP/2 frame guard, on two
 * threads each running a libuv loop (the storage loop's library, docs/architecture.md):
 *
 * - the relay thread ("door" below; the service's loop thread, whose loop the storage loop
 *   shares, svc_door_new): accepts (bounded, surviving EMFILE), relays the bytes of
 *   every connection past its handshake, sweeps slow readers and gives memory back;
 * - the handshake thread ("door-hs", nice +10 over the process): runs the TLS handshakes (and
 *   a plaintext client's wait for its first byte), bounds them (the oldest evicted in a flood,
 *   --handshake-timeout). A handshake costs milliseconds of CPU (signatures, key exchange); at
 *   a lower priority the scheduler preempts it whenever the relay has work, so a flood of
 *   ClientHellos slows other handshakes, never the connections already open. This thread
 *   never calls grpc: threads grpc starts lazily inherit the nice value of the thread that
 *   makes them start.
 *
 * A connection: accepted on the door thread -> inbox -> HANDSHAKE on the handshake thread (TLS
 * handshake in progress, or a plaintext client's first byte not yet here; on the FIFO `hs`
 * list, so a flood evicts the oldest; the timeout counts only the time spent waiting for the
 * client, so a busy or CPU-starved handshake thread does not fail the clients it keeps
 * waiting) ->
 * its poll handle closed there, then outbox -> RELAY on the door thread (a socketpair to grpc,
 * added by this thread; bytes copied both ways, the client's through the guard) -> DRAIN ->
 * CLOSING (handles closing; freed when both are closed). A connection belongs to one thread at
 * a time (OpenSSL allows an SSL object to move between threads when only one uses it); the
 * inbox and outbox are mutex-guarded lists with a uv_async_t each.
 *
 * Relay: bytes move through one scratch buffer of the thread; a connection holds a buffer of
 * its own only while a write could not take everything (a slow client, or grpc not reading),
 * and stops reading that side until it drains, so a slow peer costs one buffer and the kernel's
 * socket buffers, never more. Each wake-up moves at most BUDGET reads per direction; a
 * connection with more to do goes on the `ready` list, served on the next loop turn, so one
 * busy client cannot hold the others up. */
#include "svc_door.h"

#include "auth_tls.h"
#include "mat_types.h"
#include "svc_h2guard.h"
#include "svc_log.h"
#include "svc_metrics.h"

#include <arpa/inet.h>
#include <assert.h>
#include <errno.h>
#include <fcntl.h>
#include <grpc/grpc_posix.h>
#include <grpc/grpc_security.h>
#include <limits.h>
#include <malloc.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>
#include <uv.h>

#define SCRATCH (64 * 1024)
#define BUDGET 8 /* reads per direction per wake-up */
#define MAX_LISTENERS 8
#define SWEEP_MS 250            /* handshake timeouts and slow readers are checked this often */
#define SLOW_READER_MS 30000    /* output waiting this long ... */
#define SLOW_READER_BYTES 16384 /* ... with less than this taken by the client: closed */
#define ACCEPT_BACKOFF_MS 100   /* after running out of descriptors */
#define FD_RESERVE 64           /* descriptors kept for everything else (files, database) */
#define TRIM_AFTER_CLOSED 64    /* closed connections before memory goes back to the system */
#define TRIM_QUIET_MS 1000      /* ... once no connection closed for this long */
#define TRIM_MAX_MS 10000       /* ... or, if they keep closing, this often */
#define DRAIN_MS 500   /* an abusive connection's last bytes are read and dropped this long */
#define HS_NICE 10     /* the handshake thread's nice value above the process's */
#define GRAVES_TURN 16 /* closed connections freed a loop turn (see bury()) */
/* Handshake steps a loop turn of the handshake thread (at least one): between turns it takes
 * new connections from the inbox, so a flood's eviction of the oldest keeps up with it. */
#define HS_TURN_US 1000

enum conn_state { C_HANDSHAKE, C_RELAY, C_DRAIN, C_CLOSING };

struct listener {
	struct svc_door *d;
	int fd;
	bool tls;
	grpc_server *server;
	uv_poll_t poll;
	uv_timer_t backoff;
	bool open;
};

struct conn {
	struct svc_door *d;
	struct listener *l;
	enum conn_state st;
	int fd;            /* the client's socket */
	int pfd;           /* our end of the socketpair; -1 before RELAY */
	int gfd;           /* grpc's end (its number names the peer entry); -1 before RELAY */
	uint64_t peer_seq; /* the peer entry written for this connection */
	uv_poll_t poll, ppoll;
	int ev, pev; /* events each poll handle watches now */
	bool ppoll_init;
	int handles; /* poll handles not yet closed */
	struct auth_tls_conn *tls;
	struct svc_h2guard *guard;
	uint64_t since_ms; /* since the output stalled (RELAY), or the drain began (DRAIN) */
	/* HANDSHAKE, for --handshake-timeout: the time spent waiting for the client, and since
	 * when it waits now (0: its next step is ours to run). A step queued behind others, or a
	 * handshake thread short of CPU, is our delay, not the client's. */
	uint64_t client_ms, waiting_since;
	struct conn *hs_prev, *hs_next;
	struct conn *prev, *next;
	struct conn *ready_next;
	bool on_ready;
	bool dead;             /* closed while on the ready list or the handshake queue */
	struct conn *q_next;   /* on the inbox or the outbox */
	struct conn *hsq_next; /* the handshake steps to run (handshake thread) */
	bool on_hsq;
	bool hs_stepped; /* a handshake step ran (our first flight may be out) */
	/* client -> grpc: what grpc's socket did not take yet */
	uint8_t *up;
	size_t up_off, up_len;
	int up_want; /* what the TLS read waits for: UV_READABLE or UV_WRITABLE */
	bool up_eof;
	bool grpc_gone;   /* grpc closed its end: client bytes are dropped (grpc_gone()) */
	bool client_gone; /* the client hung up: no close_notify back (conn_close) */
	/* grpc -> client: what the client's socket did not take yet */
	uint8_t *down;
	size_t down_off, down_len;
	int down_want;
	uint64_t stall_bytes; /* taken by the client since the output stalled */
	enum svc_h2guard_abuse abuse;
	char addr[80];
};

/* Who is behind grpc's end of each socketpair, by descriptor number: grpc names such a
 * connection "fd:N" (grpc_call_get_peer). Entries are written before the descriptor is handed
 * to grpc, and a number is reused only after grpc closed it, which it does only once no call of
 * that connection is left; so a call always finds its own connection's entry. */
#define PEER_PAGE 256
struct peer_entry {
	char *principal;
	uint64_t seq; /* which connection wrote it (peer_clear clears only its own) */
	char addr[80];
};

/* A hand-over list between the two threads, and the async handle that wakes its consumer.
 * `stopped`: the consumer is gone (or going), so producers dispose of connections themselves;
 * set, and the handle closed, under `mu`, so no uv_async_send reaches a closed handle. */
struct conn_queue {
	pthread_mutex_t mu;
	struct conn *head, *tail;
	bool stopped;
	uv_async_t async;
};

struct svc_door {
	struct svc_door_limits lim;
	int max_conns;
	int max_handshakes;
	struct svc_metrics *metrics;
	pthread_mutex_t tls_mu;
	struct auth_tls *tls;
	struct svc_h2guard_limits glim;
	grpc_server_credentials *insecure;
	struct listener lst[MAX_LISTENERS];
	int n_lst;
	int reserve_fd;
	/* Both threads */
	atomic_int n_conns; /* accepted and not yet closed, on either thread or between them */
	atomic_uint closed_since_trim; /* connections closed since the last malloc_trim */
	atomic_uint_fast64_t last_close_ms;
	/* The door (relay) thread: the service's loop thread, which runs `loop` for the storage
	 * loop too (svc_door_new) */
	uv_loop_t *loop;
	uv_async_t wake;
	uv_timer_t sweep;
	unsigned sweeps;
	uint64_t last_trim_ms;
	bool abused_since_trim; /* and connections closed for abuse */
	uv_idle_t idle;
	bool started;
	bool stopped;   /* svc_door_stop done */
	atomic_int cmd; /* CMD_* bits for the loop */
	pthread_mutex_t cmd_mu;
	pthread_cond_t cmd_cv;
	grpc_server *close_for; /* CMD_CLOSE_LISTENERS: the listeners of this server */
	bool listeners_closed;
	struct conn *all;   /* past their handshake */
	atomic_int relayed; /* connections with a socketpair to grpc, until closed (any thread) */
	struct conn *ready;
	struct conn *graves;      /* closed, their sockets and TLS state not yet freed */
	struct conn_queue outbox; /* handshaken, for this thread */
	uint8_t scratch[SCRATCH];
	/* The handshake thread */
	uv_loop_t hs_loop;
	uv_timer_t hs_sweep;
	pthread_t hs_thread;
	bool hs_started;
	atomic_bool hs_stop;
	struct conn_queue inbox; /* accepted, for this thread; its async also carries hs_stop */
	struct conn *hs_head, *hs_tail;
	int n_handshakes;
	uv_idle_t hs_idle;
	struct conn *hsq_head, *hsq_tail; /* TLS connections with a step to run */
	/* peers */
	pthread_rwlock_t peers_mu;
	struct peer_entry **pages;
	size_t n_pages;
	uint64_t peer_seq; /* the last connection's (door thread only) */
	/* rate-limited log lines: [0] abuse, [1] refused handshakes */
	uint64_t log_ms[2];
	unsigned unlogged[2];
};

#define CMD_CLOSE_LISTENERS 1
#define CMD_STOP 2

static uint64_t now_ms(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000u + (uint64_t)ts.tv_nsec / 1000000u;
}

/* --- peers ------------------------------------------------------------------------------- */

static void peer_set(struct svc_door *d, int fd, const char *principal, const char *addr,
                     uint64_t seq)
{
	size_t page = (size_t)fd / PEER_PAGE, slot = (size_t)fd % PEER_PAGE;
	char *copy = strdup(principal);

	pthread_rwlock_wrlock(&d->peers_mu);
	if (page >= d->n_pages) {
		size_t n = page + 1 > 2 * d->n_pages ? page + 1 : 2 * d->n_pages;
		struct peer_entry **p = realloc(d->pages, n * sizeof(*p));
		if (p != NULL) {
			memset(p + d->n_pages, 0, (n - d->n_pages) * sizeof(*p));
			d->pages = p;
			d->n_pages = n;
		}
	}
	if (page < d->n_pages && d->pages[page] == NULL)
		d->pages[page] = calloc(PEER_PAGE, sizeof(struct peer_entry));
	if (page < d->n_pages && d->pages[page] != NULL) {
		struct peer_entry *e = &d->pages[page][slot];
		free(e->principal);
		e->principal = copy;
		e->seq = seq;
		copy = NULL;
		snprintf(e->addr, sizeof(e->addr), "%s", addr);
	}
	pthread_rwlock_unlock(&d->peers_mu);
	free(copy); /* out of memory: the call finds no entry and is refused UNAUTHENTICATED */
}

/* The connection is closed: its entry goes with it, so that thousands of connections leave no
 * small allocation each behind (each would pin a page of the memory their TLS state and grpc's
 * transport gave back: 2,000 connections left ~12 MiB resident). A call of that connection
 * still unmatched in grpc finds no entry and is refused UNAUTHENTICATED; the connection is
 * gone by then anyway. grpc may have closed its end already and the number have gone to a newer
 * connection: that one's entry carries another seq and stays. */
static void peer_clear(struct svc_door *d, int fd, uint64_t seq)
{
	size_t page = (size_t)fd / PEER_PAGE, slot = (size_t)fd % PEER_PAGE;
	char *old = NULL;

	pthread_rwlock_wrlock(&d->peers_mu);
	if (page < d->n_pages && d->pages[page] != NULL && d->pages[page][slot].seq == seq) {
		old = d->pages[page][slot].principal;
		d->pages[page][slot].principal = NULL;
	}
	pthread_rwlock_unlock(&d->peers_mu);
	free(old);
}

bool svc_door_peer(struct svc_door *d, const char *peer, char *principal, size_t principal_size,
                   char *addr, size_t addr_size)
{
	char *end;
	long fd;
	bool ok = false;

	if (d == NULL || peer == NULL || strncmp(peer, "fd:", 3) != 0)
		return false;
	fd = strtol(peer + 3, &end, 10);
	if (end == peer + 3 || *end != '\0' || fd < 0)
		return false;
	pthread_rwlock_rdlock(&d->peers_mu);
	if ((size_t)fd / PEER_PAGE < d->n_pages && d->pages[fd / PEER_PAGE] != NULL) {
		struct peer_entry *e = &d->pages[fd / PEER_PAGE][fd % PEER_PAGE];
		if (e->principal != NULL) {
			snprintf(principal, principal_size, "%s", e->principal);
			snprintf(addr, addr_size, "%s", e->addr);
			ok = true;
		}
	}
	pthread_rwlock_unlock(&d->peers_mu);
	return ok;
}

/* --- connections ------------------------------------------------------------------------ */

static void hs_remove(struct conn *c)
{
	struct svc_door *d = c->d;
	if (c->hs_prev != NULL)
		c->hs_prev->hs_next = c->hs_next;
	else if (d->hs_head == c)
		d->hs_head = c->hs_next;
	else
		return; /* not on the list */
	if (c->hs_next != NULL)
		c->hs_next->hs_prev = c->hs_prev;
	else
		d->hs_tail = c->hs_prev;
	c->hs_prev = c->hs_next = NULL;
	d->n_handshakes--;
}

static void conn_free(struct conn *c)
{
	close(c->fd);
	if (c->pfd >= 0)
		close(c->pfd);
	auth_tls_conn_free(c->tls);
	svc_h2guard_free(c->guard);
	free(c->up);
	free(c->down);
	free(c);
}

/* A connection is gone (either thread): the counts that bound connections and trim memory. */
static void conn_gone(struct svc_door *d)
{
	atomic_fetch_sub(&d->n_conns, 1);
	atomic_fetch_add(&d->closed_since_trim, 1);
	atomic_store(&d->last_close_ms, now_ms());
	svc_metrics_connections_open(d->metrics, -1);
}

/* A connection with no handle open (left on the inbox or the outbox when its consumer
 * stopped): freed at once. */
static void conn_discard(struct conn *c)
{
	conn_gone(c->d);
	conn_free(c);
}

/* --- hand-over between the threads ------------------------------------------------------- */

/* Puts c on q and wakes q's thread. false when that thread has stopped: c stays the caller's. */
static bool queue_put(struct conn_queue *q, struct conn *c)
{
	bool ok;

	pthread_mutex_lock(&q->mu);
	ok = !q->stopped;
	if (ok) {
		c->q_next = NULL;
		if (q->tail != NULL)
			q->tail->q_next = c;
		else
			q->head = c;
		q->tail = c;
		uv_async_send(&q->async);
	}
	pthread_mutex_unlock(&q->mu);
	return ok;
}

/* Everything on q (its thread). */
static struct conn *queue_take(struct conn_queue *q)
{
	struct conn *list;

	pthread_mutex_lock(&q->mu);
	list = q->head;
	q->head = q->tail = NULL;
	pthread_mutex_unlock(&q->mu);
	return list;
}

/* q's thread stops taking: later puts fail, its async handle closes; what was left is
 * returned. */
static struct conn *queue_stop(struct conn_queue *q)
{
	struct conn *list;

	pthread_mutex_lock(&q->mu);
	if (!q->stopped)
		uv_close((uv_handle_t *)&q->async, NULL);
	q->stopped = true;
	list = q->head;
	q->head = q->tail = NULL;
	pthread_mutex_unlock(&q->mu);
	return list;
}

static void discard_all(struct conn *list)
{
	while (list != NULL) {
		struct conn *c = list;
		list = c->q_next;
		conn_discard(c);
	}
}

/* --- the door thread's connections -------------------------------------------------------- */

static void on_idle(uv_idle_t *h);

/* A closed connection's sockets and TLS state are freed a few a loop turn, not all in the turn
 * that closed them: when thousands of clients leave at once, freeing them (SSL_free and
 * glibc's bookkeeping, closing the sockets) took the relay most of a third of a second in one
 * go, and every other connection's bytes waited behind it (docs/security.md). Between turns the
 * loop polls, so those bytes go first. (grpc already saw its end shut in conn_close.) */
static void bury(struct conn *c)
{
	struct svc_door *d = c->d;

	c->ready_next = d->graves; /* the order they are freed in does not matter */
	d->graves = c;
	if (!uv_is_closing((uv_handle_t *)&d->idle)) /* else free_listed() frees it */
		uv_idle_start(&d->idle, on_idle);
}

/* Frees up to `n` buried connections. */
static void free_graves(struct svc_door *d, int n)
{
	for (int i = 0; i < n && d->graves != NULL; i++) {
		struct conn *c = d->graves;
		d->graves = c->ready_next;
		conn_free(c);
	}
}

static void on_handle_closed(uv_handle_t *h)
{
	struct conn *c = h->data;
	if (--c->handles > 0)
		return;
	/* Still on the ready list: on_idle buries it when it gets there. */
	if (c->on_ready)
		c->dead = true;
	else
		bury(c);
}

static void conn_close(struct conn *c)
{
	struct svc_door *d = c->d;

	if (c->st == C_CLOSING)
		return;
	c->st = C_CLOSING;
	if (c->prev != NULL)
		c->prev->next = c->next;
	else
		d->all = c->next;
	if (c->next != NULL)
		c->next->prev = c->prev;
	conn_gone(d);
	if (c->pfd >= 0)
		atomic_fetch_sub(&d->relayed, 1);
	if (c->tls != NULL && !c->client_gone)
		auth_tls_shutdown(c->tls);
	/* grpc sees its end close and cancels the connection's calls. */
	if (c->pfd >= 0)
		shutdown(c->pfd, SHUT_RDWR);
	if (c->gfd >= 0)
		peer_clear(d, c->gfd, c->peer_seq);
	c->handles = 1 + (c->ppoll_init ? 1 : 0);
	uv_close((uv_handle_t *)&c->poll, on_handle_closed);
	if (c->ppoll_init)
		uv_close((uv_handle_t *)&c->ppoll, on_handle_closed);
}

static void on_conn_event(uv_poll_t *h, int status, int events);
static void on_pair_event(uv_poll_t *h, int status, int events);

/* Watches what the connection waits for now. uv_poll_start only when it changed: each change
 * is an epoll_ctl. */
static void conn_watch(struct conn *c)
{
	int ev = 0, pev = 0;

	if (c->st == C_CLOSING)
		return;
	if (c->st == C_RELAY) {
		if (c->up_len == 0 && !c->up_eof && c->abuse == SVC_H2G_OK)
			ev |= c->up_want;
		if (c->down_len > 0)
			ev |= c->down_want;
		if (c->up_len > 0)
			pev |= UV_WRITABLE;
		if (c->down_len == 0)
			pev |= UV_READABLE;
	} else if (c->st == C_DRAIN) {
		ev = UV_READABLE;
	}
	if (ev != c->ev) {
		if (ev == 0)
			uv_poll_stop(&c->poll);
		else
			uv_poll_start(&c->poll, ev, on_conn_event);
		c->ev = ev;
	}
	if (c->ppoll_init && pev != c->pev) {
		if (pev == 0)
			uv_poll_stop(&c->ppoll);
		else
			uv_poll_start(&c->ppoll, pev, on_pair_event);
		c->pev = pev;
	}
}

static void make_ready(struct conn *c)
{
	if (c->on_ready)
		return;
	c->on_ready = true;
	c->ready_next = c->d->ready;
	c->d->ready = c;
	uv_idle_start(&c->d->idle, on_idle);
}

/* One line a second at most for each kind (abuse, refused handshakes), with the count of those
 * left out: an attacker opening connections must not fill the disk. Abuse is logged on the door
 * thread, refused handshakes on the handshake thread: each kind's state has one thread. */
static void log_limited(struct conn *c, int kind, const char *what, const char *why)
{
	struct svc_door *d = c->d;
	uint64_t t = now_ms();
	const char *principal = c->tls != NULL ? auth_tls_conn_principal(c->tls) : "";

	if (t - d->log_ms[kind] < 1000) {
		d->unlogged[kind]++;
		return;
	}
	svc_log_event("warn", "connection from %s (%s) %s: %s (and %u more since the last line)",
	              c->addr, principal[0] != '\0' ? principal : "no certificate", what, why,
	              d->unlogged[kind]);
	d->log_ms[kind] = t;
	d->unlogged[kind] = 0;
}

static void log_abuse(struct conn *c, const char *why)
{
	log_limited(c, 0, "closed for abuse", why);
}

static void handshake_failed(struct conn *c, const char *why)
{
	svc_metrics_handshake_failed(c->d->metrics, why);
	log_limited(c, 1, "refused at the TLS handshake", why);
}

/* A plaintext write that moves what it can: the count, or -1 (EAGAIN: 0). */
static ssize_t plain_write(int fd, const uint8_t *p, size_t n)
{
	ssize_t w = send(fd, p, n, MSG_NOSIGNAL);
	if (w < 0 && (errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR))
		return 0;
	return w;
}

/* To the client: through TLS, or as is on a plaintext listener. *moved set; the result as
 * auth_tls_write's. */
static enum auth_tls_io client_write(struct conn *c, const uint8_t *p, size_t n, size_t *moved)
{
	ssize_t w;

	if (c->tls != NULL)
		return auth_tls_write(c->tls, p, n, moved);
	*moved = 0;
	w = plain_write(c->fd, p, n);
	if (w < 0)
		return AUTH_TLS_ERROR;
	*moved = (size_t)w;
	return w == 0 ? AUTH_TLS_WANT_WRITE : AUTH_TLS_OK;
}

static enum auth_tls_io client_read(struct conn *c, uint8_t *p, size_t cap, size_t *n)
{
	ssize_t r;

	if (c->tls != NULL)
		return auth_tls_read(c->tls, p, cap, n);
	*n = 0;
	r = recv(c->fd, p, cap, 0);
	if (r < 0)
		return errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR
		           ? AUTH_TLS_WANT_READ
		           : AUTH_TLS_ERROR;
	if (r == 0)
		return AUTH_TLS_CLOSED;
	*n = (size_t)r;
	return AUTH_TLS_OK;
}

static int want_of(enum auth_tls_io r)
{
	return r == AUTH_TLS_WANT_WRITE ? UV_WRITABLE : UV_READABLE;
}

static void graceful_close(struct conn *c);

/* The guard found abuse: GOAWAY(ENHANCE_YOUR_CALM) when it can go between two of grpc's frames
 * without waiting, then close. */
static void abuse_close(struct conn *c, enum svc_h2guard_abuse why)
{
	uint8_t frame[96];
	size_t n, moved;

	c->abuse = why;
	c->d->abused_since_trim = true;
	svc_metrics_connection_abuse(c->d->metrics, svc_h2guard_abuse_name(why));
	log_abuse(c, svc_h2guard_abuse_name(why));
	if (c->down_len == 0 && svc_h2guard_server_at_boundary(c->guard)) {
		n = svc_h2guard_goaway(c->guard, why, frame, sizeof(frame));
		(void)client_write(c, frame, n, &moved); /* best effort: closing anyway */
	}
	graceful_close(c);
}

/* The client is told we are done (close_notify, FIN) and what it still sends is read and
 * dropped for a moment (C_DRAIN): closing with its bytes unread would reset the connection,
 * and the reset can overtake the last bytes we sent (a GOAWAY, the end of a response). grpc
 * drops the connection's calls now, if it had not already. */
static void graceful_close(struct conn *c)
{
	shutdown(c->pfd, SHUT_RDWR);
	if (c->ppoll_init && c->pev != 0) {
		uv_poll_stop(&c->ppoll);
		c->pev = 0;
	}
	if (c->tls != NULL)
		auth_tls_shutdown(c->tls);
	shutdown(c->fd, SHUT_WR);
	c->st = C_DRAIN;
	c->since_ms = now_ms();
	conn_watch(c);
}

/* C_DRAIN: the client's last bytes, dropped unread; closed at its EOF or after DRAIN_MS. */
static void drain(struct conn *c)
{
	for (int i = 0; i < BUDGET; i++) {
		ssize_t r = recv(c->fd, c->d->scratch, sizeof(c->d->scratch), 0);
		if (r > 0)
			continue;
		if (r < 0 && (errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR))
			return;
		break;
	}
	conn_close(c);
}

/* Keeps `p[0..n)` for later in *buf (grpc or the client took only part of it). false when out
 * of memory (the caller closes). */
static bool keep(uint8_t **buf, size_t *off, size_t *len, const uint8_t *p, size_t n)
{
	uint8_t *b = malloc(n);
	if (b == NULL)
		return false;
	memcpy(b, p, n);
	free(*buf);
	*buf = b;
	*off = 0;
	*len = n;
	return true;
}

static void drop(uint8_t **buf, size_t *off, size_t *len)
{
	free(*buf);
	*buf = NULL;
	*off = *len = 0;
}

/* grpc closed its end (a connection it was done with: shut down, idle, GOAWAY): what the client
 * still sends is read and dropped, while what grpc wrote before closing still goes to the client
 * (pump_down closes at grpc's end of stream). Closing at once would cut the tail of the last
 * responses off (an export at shutdown ended "Broken pipe" 600 messages short). */
static void grpc_gone(struct conn *c)
{
	c->grpc_gone = true;
	drop(&c->up, &c->up_off, &c->up_len);
}

/* The client sent its last byte: grpc sees the end of its stream once it has everything. */
static void up_finish(struct conn *c)
{
	if (c->up_eof && c->up_len == 0 && !c->grpc_gone)
		shutdown(c->pfd, SHUT_WR);
}

/* The client ended its side (close_notify or EOF) with nothing of ours waiting for it: the
 * connection closes now. An HTTP/2 client does not half-close to wait for answers (END_STREAM
 * says a stream is done), so nobody would read what grpc still wrote; going the graceful way
 * (grpc's GOAWAY relayed, our close_notify, a drain) cost each connection four more wake-ups and
 * two writes that only drew resets, and 2,000 clients leaving at once kept this thread from
 * everyone else for a third of a second (docs/security.md). What the client sent before its
 * end is already with grpc: its calls are cancelled as grpc sees the socket close. */
static void client_hung_up(struct conn *c)
{
	c->client_gone = true;
	conn_close(c);
}

/* Client -> grpc. Each round reads every record the client's socket and OpenSSL hold (up to the
 * scratch buffer) and hands them to grpc in one write: a burst of small records (HEADERS and
 * DATA of many calls) is one syscall to grpc and one wake-up of its poller, not one per record. */
static void pump_up(struct conn *c)
{
	struct svc_door *d = c->d;

	for (int i = 0; i < BUDGET; i++) {
		size_t got = 0, n;
		ssize_t w;
		enum auth_tls_io r = AUTH_TLS_OK;
		enum svc_h2guard_abuse a;

		if (c->st != C_RELAY || c->abuse != SVC_H2G_OK)
			return;
		if (c->up_len > 0) {
			w = plain_write(c->pfd, c->up + c->up_off, c->up_len);
			if (w < 0) {
				grpc_gone(c);
				continue;
			}
			c->up_off += (size_t)w;
			c->up_len -= (size_t)w;
			if (c->up_len > 0)
				return; /* grpc is not reading: wait for its socket */
			drop(&c->up, &c->up_off, &c->up_len);
			up_finish(c);
		}
		if (c->up_eof)
			return;
		while (got < sizeof(d->scratch)) {
			n = 0;
			r = client_read(c, d->scratch + got, sizeof(d->scratch) - got, &n);
			if (r != AUTH_TLS_OK)
				break;
			got += n;
			/* A short read emptied the socket: wait for it (level-triggered, it says
			 * so again if more came) rather than read it once more to hear EAGAIN. */
			if (c->tls != NULL ? auth_tls_read_drained(c->tls)
			                   : got < sizeof(d->scratch)) {
				r = AUTH_TLS_WANT_READ;
				break;
			}
		}
		if (r == AUTH_TLS_ERROR) {
			conn_close(c);
			return;
		}
		if (r == AUTH_TLS_WANT_READ || r == AUTH_TLS_WANT_WRITE)
			c->up_want = want_of(r);
		if (r == AUTH_TLS_CLOSED)
			c->up_eof = true; /* after what came before it */
		if (got > 0) {
			a = svc_h2guard_client(c->guard, d->scratch, got, now_ms());
			if (a != SVC_H2G_OK) {
				abuse_close(c, a);
				return;
			}
			if (!c->grpc_gone) { /* else read and dropped: see grpc_gone */
				w = plain_write(c->pfd, d->scratch, got);
				if (w < 0) {
					grpc_gone(c);
				} else if ((size_t)w < got &&
				           !keep(&c->up, &c->up_off, &c->up_len, d->scratch + w,
				                 got - (size_t)w)) {
					conn_close(c);
					return;
				}
			}
		}
		if (r == AUTH_TLS_CLOSED && c->down_len == 0) {
			client_hung_up(c);
			return;
		}
		up_finish(c);
		/* Done unless the scratch buffer filled up (then another round). */
		if (r != AUTH_TLS_OK || got < sizeof(d->scratch))
			return;
	}
	make_ready(c);
}

/* grpc -> client. grpc writes a burst of responses at once; a read shorter than the scratch
 * buffer took all there was, and the socketpair says when more comes. */
static void pump_down(struct conn *c)
{
	struct svc_door *d = c->d;

	for (int i = 0; i < BUDGET; i++) {
		size_t moved = 0;
		ssize_t r;
		enum auth_tls_io io;

		if (c->st != C_RELAY)
			return;
		if (c->down_len > 0) {
			io = client_write(c, c->down + c->down_off, c->down_len, &moved);
			c->stall_bytes += moved;
			c->down_off += moved;
			c->down_len -= moved;
			if (io == AUTH_TLS_ERROR || io == AUTH_TLS_CLOSED) {
				conn_close(c);
				return;
			}
			if (c->down_len > 0) {
				c->down_want = io == AUTH_TLS_OK ? UV_WRITABLE : want_of(io);
				return;
			}
			drop(&c->down, &c->down_off, &c->down_len);
		}
		r = recv(c->pfd, d->scratch, sizeof(d->scratch), 0);
		if (r < 0 && (errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR))
			return;
		if (r < 0) {
			conn_close(c);
			return;
		}
		if (r == 0) {
			/* grpc closed the connection (GOAWAY sent, idle, shutdown), and all it
			 * wrote has gone to the client. */
			graceful_close(c);
			return;
		}
		svc_h2guard_server(c->guard, d->scratch, (size_t)r);
		io = client_write(c, d->scratch, (size_t)r, &moved);
		if (io == AUTH_TLS_ERROR || io == AUTH_TLS_CLOSED) {
			conn_close(c);
			return;
		}
		if (moved < (size_t)r) {
			if (!keep(&c->down, &c->down_off, &c->down_len, d->scratch + moved,
			          (size_t)r - moved)) {
				conn_close(c);
				return;
			}
			c->down_want = io == AUTH_TLS_OK ? UV_WRITABLE : want_of(io);
			c->since_ms = now_ms();
			c->stall_bytes = 0;
			return;
		}
		if ((size_t)r < sizeof(d->scratch))
			return;
	}
	make_ready(c);
}

/* Both directions (a new relay, a turn of the ready list). */
static void relay(struct conn *c)
{
	pump_up(c);
	pump_down(c);
	conn_watch(c);
}

/* A connection past its handshake, from the outbox: a socketpair to grpc, then relay. grpc is
 * called here, never on the handshake thread (see the top of this file). */
static void start_relay(struct conn *c)
{
	struct svc_door *d = c->d;
	int sv[2];

	uv_poll_init(d->loop, &c->poll, c->fd);
	c->poll.data = c;
	c->ev = 0;
	c->prev = NULL;
	c->next = d->all;
	if (d->all != NULL)
		d->all->prev = c;
	d->all = c;
	c->st = C_RELAY;
	if (!c->l->open || (atomic_load(&d->cmd) & CMD_STOP)) {
		conn_close(c); /* shutting down: this server takes no new connection */
		return;
	}
	c->guard = svc_h2guard_new(&d->glim);
	if (c->guard == NULL ||
	    socketpair(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0, sv) != 0) {
		svc_log_event("error", "front door: cannot relay a connection: %s",
		              strerror(errno));
		conn_close(c);
		return;
	}
	c->pfd = sv[0];
	c->gfd = sv[1];
	atomic_fetch_add(&d->relayed, 1);
	uv_poll_init(d->loop, &c->ppoll, c->pfd);
	c->ppoll.data = c;
	c->ppoll_init = true;
	c->up_want = UV_READABLE;
	c->down_want = UV_WRITABLE;
	c->peer_seq = ++d->peer_seq;
	peer_set(d, sv[1], c->tls != NULL ? auth_tls_conn_principal(c->tls) : "", c->addr,
	         c->peer_seq);
	/* grpc owns sv[1] from here, and closes it when the connection ends. */
	grpc_server_add_channel_from_fd(c->l->server, sv[1], d->insecure);
	relay(c);
}

static void on_outbox(uv_async_t *h)
{
	struct svc_door *d = h->data;
	struct conn *list = queue_take(&d->outbox);

	while (list != NULL) {
		struct conn *c = list;
		list = c->q_next;
		start_relay(c);
	}
}

static void on_conn_event(uv_poll_t *h, int status, int events)
{
	struct conn *c = h->data;

	if (status < 0) {
		conn_close(c);
		return;
	}
	if (c->st == C_RELAY) {
		/* The client's socket: the way up reads it unless it waits for grpc, the way
		 * down writes it while it has output waiting. Only the side the event concerns
		 * runs: the other would find nothing (a wasted syscall). */
		if (c->up_len == 0 && (events & c->up_want))
			pump_up(c);
		if (c->down_len > 0 && (events & c->down_want))
			pump_down(c);
		conn_watch(c);
	} else if (c->st == C_DRAIN) {
		drain(c);
	}
}

static void on_pair_event(uv_poll_t *h, int status, int events)
{
	struct conn *c = h->data;

	if (status < 0) {
		conn_close(c);
		return;
	}
	if (c->st != C_RELAY)
		return;
	/* grpc's socket: readable for the way down, writable when the way up waits for it. */
	if ((events & UV_WRITABLE) && c->up_len > 0)
		pump_up(c);
	if ((events & UV_READABLE) && c->down_len == 0)
		pump_down(c);
	conn_watch(c);
}

/* Connections with more to move than one wake-up's budget, and closed ones to free. */
static void on_idle(uv_idle_t *h)
{
	struct svc_door *d = h->data;
	struct conn *list = d->ready;

	d->ready = NULL;
	while (list != NULL) {
		struct conn *c = list;
		list = c->ready_next;
		c->on_ready = false;
		if (c->dead)
			bury(c);
		else if (c->st == C_RELAY)
			relay(c);
	}
	free_graves(d, GRAVES_TURN);
	if (d->ready == NULL && d->graves == NULL)
		uv_idle_stop(h);
}

/* --- the handshake thread ----------------------------------------------------------------- */

static void on_hs_closed(uv_handle_t *h)
{
	struct conn *c = h->data;
	/* Still on the handshake queue: on_hs_idle frees it when it gets there. */
	if (c->on_hsq)
		c->dead = true;
	else
		conn_free(c);
}

/* A connection refused or failed before its relay. */
static void hs_close(struct conn *c)
{
	if (c->st == C_CLOSING)
		return;
	hs_remove(c);
	c->st = C_CLOSING;
	conn_gone(c->d);
	if (c->tls != NULL)
		auth_tls_shutdown(c->tls);
	uv_close((uv_handle_t *)&c->poll, on_hs_closed);
}

static void on_hs_handed(uv_handle_t *h)
{
	struct conn *c = h->data;
	if (!queue_put(&c->d->outbox, c))
		conn_discard(c); /* the door thread has stopped */
}

/* The handshake is done: once its poll handle on this loop is closed (the descriptor leaves
 * this thread's epoll set), the connection goes to the door thread. */
static void hand_over(struct conn *c)
{
	hs_remove(c);
	uv_close((uv_handle_t *)&c->poll, on_hs_handed);
}

static void on_hs_event(uv_poll_t *h, int status, int events);

static void hs_watch(struct conn *c)
{
	if (c->waiting_since == 0)
		c->waiting_since = now_ms();
	if (c->up_want != c->ev) {
		uv_poll_start(&c->poll, c->up_want, on_hs_event);
		c->ev = c->up_want;
	}
}

/* The client shut its side before our first flight: a TLS client has to answer it (its
 * certificate, its Finished), so the handshake cannot end well. One poll(2) against a
 * signature's milliseconds: a flood of ClientHellos closed at once (the half-open attack) costs
 * no step each. */
static bool peer_hung_up(int fd)
{
	struct pollfd p = {.fd = fd, .events = POLLRDHUP};
	return poll(&p, 1, 0) == 1 && (p.revents & (POLLRDHUP | POLLHUP | POLLERR)) != 0;
}

static void handshake(struct conn *c)
{
	enum auth_tls_fail why = AUTH_TLS_FAIL_NONE;
	enum auth_tls_io r;

	if (c->tls == NULL) {
		/* Plaintext: the first byte ends the "handshake". */
		hand_over(c);
		return;
	}
	if (!c->hs_stepped && peer_hung_up(c->fd)) {
		handshake_failed(c, "closed");
		hs_close(c);
		return;
	}
	c->hs_stepped = true;
	r = auth_tls_handshake(c->tls, &why);
	switch (r) {
	case AUTH_TLS_OK:
		hand_over(c);
		return;
	case AUTH_TLS_WANT_READ:
	case AUTH_TLS_WANT_WRITE:
		c->up_want = want_of(r);
		hs_watch(c);
		return;
	case AUTH_TLS_CLOSED:
	case AUTH_TLS_ERROR:
		handshake_failed(c, auth_tls_fail_name(why));
		hs_close(c);
		return;
	}
}

static void on_hs_idle(uv_idle_t *h);

/* A TLS step to run (its socket is ready), in arrival order, from on_hs_idle. Not watched while
 * queued (level-triggered: it would wake every turn). */
static void queue_handshake(struct conn *c)
{
	struct svc_door *d = c->d;

	if (c->on_hsq)
		return;
	if (c->waiting_since != 0) {
		c->client_ms += now_ms() - c->waiting_since;
		c->waiting_since = 0;
	}
	c->on_hsq = true;
	c->hsq_next = NULL;
	if (d->hsq_tail != NULL)
		d->hsq_tail->hsq_next = c;
	else
		d->hsq_head = c;
	d->hsq_tail = c;
	if (c->ev != 0) {
		uv_poll_stop(&c->poll);
		c->ev = 0;
	}
	uv_idle_start(&d->hs_idle, on_hs_idle);
}

static uint64_t now_us(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000u + (uint64_t)ts.tv_nsec / 1000u;
}

/* Queued steps for HS_TURN_US (at least one), then back to the loop: the inbox is read between
 * turns, and the connections a flood pushed out meanwhile are skipped (dead), so the work
 * waiting is bounded by the bound on handshakes in progress, not by what was accepted. */
static void on_hs_idle(uv_idle_t *h)
{
	struct svc_door *d = h->data;
	uint64_t until = now_us() + HS_TURN_US;

	do {
		struct conn *c = d->hsq_head;
		if (c == NULL)
			break;
		d->hsq_head = c->hsq_next;
		if (d->hsq_head == NULL)
			d->hsq_tail = NULL;
		c->on_hsq = false;
		if (c->dead)
			conn_free(c);
		else if (c->st == C_HANDSHAKE)
			handshake(c);
	} while (now_us() < until);
	if (d->hsq_head == NULL)
		uv_idle_stop(h);
}

/* After the handshake loop ended: connections closed while queued that no turn came back to. */
static void hs_free_listed(struct svc_door *d)
{
	while (d->hsq_head != NULL) {
		struct conn *c = d->hsq_head;
		d->hsq_head = c->hsq_next;
		c->on_hsq = false;
		if (c->dead)
			conn_free(c);
	}
	d->hsq_tail = NULL;
}

static void on_hs_event(uv_poll_t *h, int status, int events)
{
	struct conn *c = h->data;

	(void)events;
	if (status < 0) {
		handshake_failed(c, "closed");
		hs_close(c);
		return;
	}
	if (c->tls != NULL)
		queue_handshake(c);
	else
		handshake(c);
}

/* A connection from the inbox: its TLS state, then its first handshake step queued (the
 * ClientHello is usually here already), or, plaintext, a wait for its first byte. Handshakes
 * in progress are bounded: a flood of connections that never finish theirs pushes out the
 * oldest of them, not the clients that complete in milliseconds. */
static void hs_adopt(struct conn *c)
{
	struct svc_door *d = c->d;

	if (c->l->tls) {
		struct auth_tls *t = svc_door_tls(d);
		c->tls = t != NULL ? auth_tls_conn_new(t, c->fd) : NULL;
		auth_tls_unref(t);
		if (c->tls == NULL) {
			svc_metrics_connection_refused(d->metrics, "limit");
			conn_discard(c);
			return;
		}
	}
	if (d->n_handshakes >= d->max_handshakes && d->hs_head != NULL) {
		handshake_failed(d->hs_head, "evicted");
		hs_close(d->hs_head);
	}
	uv_poll_init(&d->hs_loop, &c->poll, c->fd);
	c->poll.data = c;
	c->ev = 0;
	c->hs_prev = d->hs_tail;
	c->hs_next = NULL;
	if (d->hs_tail != NULL)
		d->hs_tail->hs_next = c;
	else
		d->hs_head = c;
	d->hs_tail = c;
	d->n_handshakes++;
	if (c->tls != NULL)
		queue_handshake(c);
	else
		hs_watch(c);
}

/* Whether what the connection waits for is there (its bytes, room to write, or its hang-up). */
static bool hs_socket_ready(const struct conn *c)
{
	struct pollfd p = {.fd = c->fd};
	if (c->ev & UV_READABLE)
		p.events |= POLLIN;
	if (c->ev & UV_WRITABLE)
		p.events |= POLLOUT;
	return poll(&p, 1, 0) == 1;
}

static void on_hs_sweep(uv_timer_t *t)
{
	struct svc_door *d = t->data;
	uint64_t now = now_ms();
	struct conn *next;

	/* The whole list (at most the bound on handshakes in progress, four times a second): the
	 * order of arrival is not the order of client time. Steps queued are ours to run. */
	for (struct conn *c = d->hs_head; c != NULL; c = next) {
		next = c->hs_next;
		if (c->waiting_since == 0 ||
		    c->client_ms + (now - c->waiting_since) < (uint64_t)d->lim.handshake_timeout_ms)
			continue;
		if (hs_socket_ready(c)) {
			/* The client did its part; this thread, short of CPU, had not looked yet
			 * (timers run before the loop polls). Not the client's time. */
			c->waiting_since = 0;
			on_hs_event(&c->poll, 0, 0);
			continue;
		}
		handshake_failed(c, "timeout");
		hs_close(c);
	}
}

/* Closes every handle of the handshake thread's loop (its uv_run then returns). */
static void hs_close_all(struct svc_door *d)
{
	discard_all(queue_stop(&d->inbox));
	while (d->hs_head != NULL)
		hs_close(d->hs_head);
	uv_close((uv_handle_t *)&d->hs_sweep, NULL);
	uv_close((uv_handle_t *)&d->hs_idle, NULL);
}

static void on_inbox(uv_async_t *h)
{
	struct svc_door *d = h->data;
	struct conn *list;

	if (atomic_load(&d->hs_stop)) {
		hs_close_all(d);
		return;
	}
	list = queue_take(&d->inbox);
	while (list != NULL) {
		struct conn *c = list;
		list = c->q_next;
		hs_adopt(c);
	}
}

/* The scheduler applies nice per thread on Linux: at HS_NICE above the relay, a handshake
 * (milliseconds of CPU) is preempted whenever the relay (microseconds a wake-up) has work. */
static void *hs_main(void *arg)
{
	struct svc_door *d = arg;
	id_t tid = (id_t)syscall(SYS_gettid);
	int nice_now;

	(void)prctl(PR_SET_NAME, "door-hs", 0, 0, 0);
	errno = 0;
	nice_now = getpriority(PRIO_PROCESS, tid);
	if (errno != 0 || setpriority(PRIO_PROCESS, tid, nice_now + HS_NICE) != 0)
		svc_log_event("warn", "front door: handshakes run at the relay's priority: %s",
		              strerror(errno));
	uv_run(&d->hs_loop, UV_RUN_DEFAULT);
	hs_free_listed(d);
	return NULL;
}

/* --- accepting -------------------------------------------------------------------------- */

static void format_addr(const struct sockaddr_storage *ss, char *out, size_t size)
{
	char host[INET6_ADDRSTRLEN] = "?";

	if (ss->ss_family == AF_INET) {
		const struct sockaddr_in *a = (const struct sockaddr_in *)ss;
		inet_ntop(AF_INET, &a->sin_addr, host, sizeof(host));
		snprintf(out, size, "ipv4:%s:%u", host, ntohs(a->sin_port));
	} else if (ss->ss_family == AF_INET6) {
		const struct sockaddr_in6 *a = (const struct sockaddr_in6 *)ss;
		inet_ntop(AF_INET6, &a->sin6_addr, host, sizeof(host));
		snprintf(out, size, "ipv6:[%s]:%u", host, ntohs(a->sin6_port));
	} else {
		snprintf(out, size, "unix:");
	}
}

static void on_listener_event(uv_poll_t *h, int status, int events);

static void on_backoff(uv_timer_t *t)
{
	struct listener *l = t->data;
	if (l->open)
		uv_poll_start(&l->poll, UV_READABLE, on_listener_event);
}

/* Out of descriptors: the kernel keeps the pending connection, and the listener would wake us
 * at once, for ever (grpc's acceptor gives up here for good, grpc/grpc#20418). Take it with the
 * descriptor kept in reserve and close it, so the client learns at once, then pause the
 * listener a moment: descriptors come back as connections end. */
static void out_of_descriptors(struct listener *l)
{
	struct svc_door *d = l->d;
	int fd;

	if (d->reserve_fd >= 0) {
		close(d->reserve_fd);
		d->reserve_fd = -1;
	}
	fd = accept4(l->fd, NULL, NULL, SOCK_CLOEXEC);
	if (fd >= 0)
		close(fd);
	d->reserve_fd = open("/dev/null", O_RDONLY | O_CLOEXEC);
	svc_metrics_connection_refused(d->metrics, "fd_limit");
	uv_poll_stop(&l->poll);
	uv_timer_start(&l->backoff, on_backoff, ACCEPT_BACKOFF_MS, 0);
}

/* Counted and handed to the handshake thread; bounded here (--max-connections). */
static void accept_one(struct listener *l, int fd, const struct sockaddr_storage *ss)
{
	struct svc_door *d = l->d;
	struct conn *c;
	int one = 1;

	c = atomic_load(&d->n_conns) < d->max_conns ? calloc(1, sizeof(*c)) : NULL;
	if (c == NULL) {
		close(fd);
		svc_metrics_connection_refused(d->metrics, "limit");
		return;
	}
	if (ss->ss_family != AF_UNIX)
		setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
	c->d = d;
	c->l = l;
	c->fd = fd;
	c->pfd = -1;
	c->gfd = -1;
	c->st = C_HANDSHAKE;
	c->up_want = UV_READABLE;
	format_addr(ss, c->addr, sizeof(c->addr));
	atomic_fetch_add(&d->n_conns, 1);
	svc_metrics_connections_open(d->metrics, 1);
	if (!queue_put(&d->inbox, c))
		conn_discard(c); /* the handshake thread has stopped: shutting down */
}

static void on_listener_event(uv_poll_t *h, int status, int events)
{
	struct listener *l = h->data;

	(void)events;
	if (status < 0)
		return;
	for (int i = 0; i < 64; i++) {
		struct sockaddr_storage ss;
		socklen_t len = sizeof(ss);
		int fd = accept4(l->fd, (struct sockaddr *)&ss, &len, SOCK_NONBLOCK | SOCK_CLOEXEC);
		if (fd < 0) {
			if (errno == EMFILE || errno == ENFILE || errno == ENOBUFS ||
			    errno == ENOMEM)
				out_of_descriptors(l);
			/* EAGAIN: done; ECONNABORTED, EINTR, EPROTO...: the next one */
			if (errno == EAGAIN || errno == EWOULDBLOCK || errno == EMFILE ||
			    errno == ENFILE || errno == ENOBUFS || errno == ENOMEM)
				return;
			continue;
		}
		accept_one(l, fd, &ss);
	}
}

/* --- sweep: slow readers, draining connections, memory ---------------------------------- */

static void on_sweep(uv_timer_t *t)
{
	struct svc_door *d = t->data;
	uint64_t now = now_ms();
	unsigned closed = atomic_load(&d->closed_since_trim);
	uint64_t last_close = atomic_load(&d->last_close_ms);

	/* A client that does not take what it asked for (a zero window at the TCP level, or a
	 * trickle) holds grpc's buffers for its streams: after SLOW_READER_MS with less than
	 * SLOW_READER_BYTES taken, it is closed. Checked every 4th sweep (a second); abusive
	 * connections draining their last bytes, every sweep. */
	bool slow_turn = ++d->sweeps % 4 == 0;

	/* After many connections went (a flood, an attack, clients leaving), what they held
	 * (grpc's transports, TLS state) is free but glibc keeps it in its arenas; giving it back
	 * keeps a replica's resident size its working set (an attack's 2,000 connections left
	 * 90 MiB behind). malloc_trim is not cheap: one madvise per free run of pages, each a TLB
	 * shootdown on every core, and the arena locked meanwhile (perf: while 2,000 connections
	 * closed, 84 % of this thread in madvise and a Health call waited 2.3 s for it). So it
	 * waits until closing has paused for TRIM_QUIET_MS, when the freed memory has coalesced
	 * into few runs, and goes once over it; a steady churn is trimmed every TRIM_MAX_MS. */
	if (d->sweeps % 4 == 0 && (closed >= TRIM_AFTER_CLOSED || d->abused_since_trim) &&
	    (now >= last_close + TRIM_QUIET_MS || now - d->last_trim_ms >= TRIM_MAX_MS)) {
		malloc_trim(0);
		atomic_fetch_sub(&d->closed_since_trim, closed); /* later closes count on */
		d->abused_since_trim = false;
		d->last_trim_ms = now;
	}
	for (struct conn *c = d->all, *next; c != NULL; c = next) {
		next = c->next;
		if (c->st == C_DRAIN && now - c->since_ms >= DRAIN_MS) {
			conn_close(c);
			continue;
		}
		if (!slow_turn || c->st != C_RELAY || c->down_len == 0)
			continue;
		if (now - c->since_ms >= SLOW_READER_MS) {
			if (c->stall_bytes < SLOW_READER_BYTES) {
				svc_metrics_connection_abuse(d->metrics, "slow_reader");
				log_abuse(c, "slow_reader");
				conn_close(c);
				continue;
			}
			c->since_ms = now;
			c->stall_bytes = 0;
		}
	}
}

/* --- the loop's thread ------------------------------------------------------------------ */

/* Closes the listeners handing to `server` (NULL: all). */
static void close_listeners(struct svc_door *d, grpc_server *server)
{
	for (int i = 0; i < d->n_lst; i++) {
		struct listener *l = &d->lst[i];
		if (!l->open || (server != NULL && l->server != server))
			continue;
		l->open = false;
		uv_timer_stop(&l->backoff);
		uv_close((uv_handle_t *)&l->poll, NULL);
		uv_close((uv_handle_t *)&l->backoff, NULL);
		close(l->fd);
	}
}

/* Closes every handle the door has on the loop (its uv_run returns once the storage loop's and
 * the service's are closed too). The handshake thread has stopped already (svc_door_stop): what
 * it left on the outbox is freed. */
static void close_all(struct svc_door *d)
{
	close_listeners(d, NULL);
	while (d->all != NULL)
		conn_close(d->all);
	discard_all(queue_stop(&d->outbox));
	uv_close((uv_handle_t *)&d->wake, NULL);
	uv_close((uv_handle_t *)&d->sweep, NULL);
	uv_close((uv_handle_t *)&d->idle, NULL);
}

static void on_wake(uv_async_t *h)
{
	struct svc_door *d = h->data;
	int cmd = atomic_load(&d->cmd);

	if ((cmd & CMD_CLOSE_LISTENERS) && !d->listeners_closed) {
		close_listeners(d, d->close_for);
		pthread_mutex_lock(&d->cmd_mu);
		d->listeners_closed = true;
		pthread_cond_broadcast(&d->cmd_cv);
		pthread_mutex_unlock(&d->cmd_mu);
	}
	if (cmd & CMD_STOP)
		close_all(d);
}

/* After the loop ended: connections closed while on the ready list that no turn came back
 * to, and the ones still waiting to be freed. */
static void free_listed(struct svc_door *d)
{
	while (d->ready != NULL) {
		struct conn *c = d->ready;
		d->ready = c->ready_next;
		c->on_ready = false;
		if (c->dead)
			conn_free(c);
	}
	free_graves(d, INT_MAX);
}

/* --- lifecycle -------------------------------------------------------------------------- */

struct svc_door *svc_door_new(const struct svc_door_limits *lim, struct auth_tls *tls,
                              struct svc_metrics *metrics, uv_loop_t *loop)
{
	struct svc_door *d = calloc(1, sizeof(*d));
	struct rlimit rl;
	long room;

	if (d == NULL)
		return NULL;
	d->lim = *lim;
	d->metrics = metrics;
	d->tls = auth_tls_ref(tls);
	d->reserve_fd = -1;
	pthread_mutex_init(&d->tls_mu, NULL);
	pthread_mutex_init(&d->inbox.mu, NULL);
	pthread_mutex_init(&d->outbox.mu, NULL);
	pthread_mutex_init(&d->cmd_mu, NULL);
	pthread_cond_init(&d->cmd_cv, NULL);
	pthread_rwlock_init(&d->peers_mu, NULL);
	atomic_init(&d->cmd, 0);
	atomic_init(&d->hs_stop, false);
	atomic_init(&d->n_conns, 0);
	atomic_init(&d->closed_since_trim, 0);
	atomic_init(&d->last_close_ms, 0);
	svc_h2guard_limits_default(&d->glim, lim->max_metadata_bytes);
	/* A client may cancel every call it has in flight at once (a deadline shared by a fan-out):
	 * that is not a flood. Not more: each reset call that gets through is dispatched. */
	if (d->glim.resets_burst < lim->max_concurrent_streams)
		d->glim.resets_burst = lim->max_concurrent_streams;
	/* A connection costs three descriptors (the client's and both ends of its socketpair):
	 * the limit is raised to the hard limit, and the connection cap kept below it so
	 * running out of descriptors stays the exception the accept loop survives. */
	if (getrlimit(RLIMIT_NOFILE, &rl) == 0 && rl.rlim_cur < rl.rlim_max) {
		rl.rlim_cur = rl.rlim_max;
		(void)setrlimit(RLIMIT_NOFILE, &rl); /* harmless if refused: the cap follows */
		(void)getrlimit(RLIMIT_NOFILE, &rl);
	}
	room = rl.rlim_cur == RLIM_INFINITY ? 3L * 1000000 : (long)rl.rlim_cur;
	room = (room - FD_RESERVE) / 3;
	d->max_conns = lim->max_connections;
	if (room < d->max_conns) {
		d->max_conns = room < 1 ? 1 : (int)room;
		svc_log_event("warn",
		              "--max-connections %d lowered to %d: the descriptor limit is %ld "
		              "(each connection needs three)",
		              lim->max_connections, d->max_conns, (long)rl.rlim_cur);
	}
	d->max_handshakes = d->max_conns / 4 > 64 ? d->max_conns / 4 : 64;
	d->loop = loop;
	if (uv_loop_init(&d->hs_loop) != 0) {
		auth_tls_unref(d->tls);
		free(d);
		return NULL;
	}
	d->insecure = grpc_insecure_server_credentials_create();
	uv_async_init(d->loop, &d->wake, on_wake);
	d->wake.data = d;
	uv_timer_init(d->loop, &d->sweep);
	d->sweep.data = d;
	uv_idle_init(d->loop, &d->idle);
	d->idle.data = d;
	uv_async_init(d->loop, &d->outbox.async, on_outbox);
	d->outbox.async.data = d;
	uv_async_init(&d->hs_loop, &d->inbox.async, on_inbox);
	d->inbox.async.data = d;
	uv_timer_init(&d->hs_loop, &d->hs_sweep);
	d->hs_sweep.data = d;
	uv_idle_init(&d->hs_loop, &d->hs_idle);
	d->hs_idle.data = d;
	d->reserve_fd = open("/dev/null", O_RDONLY | O_CLOEXEC);
	return d;
}

/* Splits "host:port" / "[v6]:port". false on a bad address. */
static bool split_addr(const char *addr, char *host, size_t hsize, char *port, size_t psize)
{
	const char *colon = strrchr(addr, ':');
	size_t hl;

	if (colon == NULL)
		return false;
	hl = (size_t)(colon - addr);
	if (addr[0] == '[' && hl >= 2 && addr[hl - 1] == ']') {
		addr++;
		hl -= 2;
	}
	if (hl >= hsize || strlen(colon + 1) >= psize)
		return false;
	memcpy(host, addr, hl);
	host[hl] = '\0';
	snprintf(port, psize, "%s", colon + 1);
	return true;
}

static int add_listener(struct svc_door *d, int fd, bool tls, grpc_server *server)
{
	struct listener *l;

	if (d->n_lst >= MAX_LISTENERS) {
		close(fd);
		return -1;
	}
	l = &d->lst[d->n_lst++];
	l->d = d;
	l->fd = fd;
	l->tls = tls;
	l->server = server;
	l->open = true;
	uv_poll_init(d->loop, &l->poll, fd);
	l->poll.data = l;
	uv_timer_init(d->loop, &l->backoff);
	l->backoff.data = l;
	return 0;
}

int svc_door_listen(struct svc_door *d, const char *addr, bool tls, grpc_server *server)
{
	char host[256], port[16];
	struct addrinfo hints, *res = NULL;
	int bound_port = -1, one = 1, rc;

	if (strncmp(addr, "unix:", 5) == 0) {
		struct sockaddr_un sun;
		int fd;
		memset(&sun, 0, sizeof(sun));
		sun.sun_family = AF_UNIX;
		if (strlen(addr + 5) >= sizeof(sun.sun_path)) {
			svc_log_event("error", "cannot listen on %s: path too long", addr);
			return -1;
		}
		snprintf(sun.sun_path, sizeof(sun.sun_path), "%s", addr + 5);
		unlink(sun.sun_path); /* a stale socket file from an earlier run */
		fd = socket(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
		if (fd < 0 || bind(fd, (struct sockaddr *)&sun, sizeof(sun)) != 0 ||
		    listen(fd, 4096) != 0) {
			svc_log_event("error", "cannot listen on %s: %s", addr, strerror(errno));
			if (fd >= 0)
				close(fd);
			return -1;
		}
		return add_listener(d, fd, tls, server) == 0 ? 0 : -1;
	}
	if (!split_addr(addr, host, sizeof(host), port, sizeof(port))) {
		svc_log_event("error", "cannot listen on %s: not host:port", addr);
		return -1;
	}
	memset(&hints, 0, sizeof(hints));
	hints.ai_family = AF_UNSPEC;
	hints.ai_socktype = SOCK_STREAM;
	hints.ai_flags = AI_PASSIVE;
	rc = getaddrinfo(host[0] != '\0' ? host : NULL, port, &hints, &res);
	if (rc != 0) {
		svc_log_event("error", "cannot listen on %s: %s", addr, gai_strerror(rc));
		return -1;
	}
	/* Every address the name has (localhost: 127.0.0.1 and ::1), on one port: the first
	 * bound decides it when the port is 0. */
	for (struct addrinfo *ai = res; ai != NULL; ai = ai->ai_next) {
		int fd = socket(ai->ai_family, ai->ai_socktype | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
		struct sockaddr_storage ss;
		socklen_t sl = sizeof(ss);

		if (fd < 0)
			continue;
		setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
		if (ai->ai_family == AF_INET6)
			setsockopt(fd, IPPROTO_IPV6, IPV6_V6ONLY, &one, sizeof(one));
		memcpy(&ss, ai->ai_addr, ai->ai_addrlen);
		if (bound_port > 0) {
			if (ss.ss_family == AF_INET)
				((struct sockaddr_in *)&ss)->sin_port = htons((uint16_t)bound_port);
			else if (ss.ss_family == AF_INET6)
				((struct sockaddr_in6 *)&ss)->sin6_port =
				    htons((uint16_t)bound_port);
		}
		if (bind(fd, (struct sockaddr *)&ss, ai->ai_addrlen) != 0 ||
		    listen(fd, 4096) != 0) {
			int e = errno;
			close(fd);
			if (bound_port < 0 && ai->ai_next == NULL) {
				svc_log_event("error", "cannot listen on %s: %s", addr,
				              strerror(e));
				freeaddrinfo(res);
				return -1;
			}
			continue;
		}
		if (getsockname(fd, (struct sockaddr *)&ss, &sl) == 0)
			bound_port = ss.ss_family == AF_INET
			                 ? ntohs(((struct sockaddr_in *)&ss)->sin_port)
			                 : ntohs(((struct sockaddr_in6 *)&ss)->sin6_port);
		if (add_listener(d, fd, tls, server) != 0)
			break;
	}
	freeaddrinfo(res);
	if (bound_port < 0)
		svc_log_event("error", "cannot listen on %s", addr);
	return bound_port;
}

int svc_door_start(struct svc_door *d)
{
	for (int i = 0; i < d->n_lst; i++)
		uv_poll_start(&d->lst[i].poll, UV_READABLE, on_listener_event);
	uv_timer_start(&d->sweep, on_sweep, SWEEP_MS, SWEEP_MS);
	uv_timer_start(&d->hs_sweep, on_hs_sweep, SWEEP_MS, SWEEP_MS);
	if (pthread_create(&d->hs_thread, NULL, hs_main, d) != 0) {
		svc_log_event("error", "cannot start the front door's handshake thread");
		return -1;
	}
	d->hs_started = true;
	/* TRIM_MAX_MS counts from the start: from 0, the first flood's trim ran in its midst. */
	d->last_trim_ms = now_ms();
	d->started = true;
	return 0;
}

void svc_door_set_tls(struct svc_door *d, struct auth_tls *tls)
{
	struct auth_tls *old;

	pthread_mutex_lock(&d->tls_mu);
	old = d->tls;
	d->tls = auth_tls_ref(tls);
	pthread_mutex_unlock(&d->tls_mu);
	auth_tls_unref(old);
}

struct auth_tls *svc_door_tls(struct svc_door *d)
{
	struct auth_tls *t;

	pthread_mutex_lock(&d->tls_mu);
	t = auth_tls_ref(d->tls);
	pthread_mutex_unlock(&d->tls_mu);
	return t;
}

void svc_door_close_listeners(struct svc_door *d, grpc_server *server)
{
	if (d == NULL || !d->started)
		return;
	pthread_mutex_lock(&d->cmd_mu);
	d->close_for = server;
	d->listeners_closed = false;
	pthread_mutex_unlock(&d->cmd_mu);
	atomic_fetch_and(&d->cmd, ~CMD_CLOSE_LISTENERS);
	atomic_fetch_or(&d->cmd, CMD_CLOSE_LISTENERS);
	uv_async_send(&d->wake);
	pthread_mutex_lock(&d->cmd_mu);
	while (!d->listeners_closed)
		pthread_cond_wait(&d->cmd_cv, &d->cmd_mu);
	pthread_mutex_unlock(&d->cmd_mu);
}

bool svc_door_wait_drained(struct svc_door *d, int timeout_ms)
{
	if (d == NULL)
		return true; /* no door: grpc terminated TLS itself (MATURITYD_DIRECT_GRPC_TLS) */
	for (int waited = 0; atomic_load(&d->relayed) > 0; waited += 10) {
		if (waited >= timeout_ms)
			return false;
		usleep(10000);
	}
	return true;
}

void svc_door_stop(struct svc_door *d)
{
	if (d == NULL || d->stopped)
		return;
	d->stopped = true;
	/* The handshake thread first: the door thread then takes what it handed over last
	 * (and frees it), and accepts nothing more for it (queue_put fails). */
	if (d->hs_started) {
		atomic_store(&d->hs_stop, true);
		pthread_mutex_lock(&d->inbox.mu);
		if (!d->inbox.stopped)
			uv_async_send(&d->inbox.async);
		pthread_mutex_unlock(&d->inbox.mu);
		pthread_join(d->hs_thread, NULL);
	} else {
		hs_close_all(d);
		uv_run(&d->hs_loop, UV_RUN_DEFAULT);
		hs_free_listed(d);
	}
	/* The relay's handles close on the loop's thread; the loop ends when its owner's and
	 * the storage loop's have closed too. */
	atomic_fetch_or(&d->cmd, CMD_STOP);
	uv_async_send(&d->wake);
}

void svc_door_free(struct svc_door *d)
{
	if (d == NULL)
		return;
	/* svc_door_stop ran and the loop has ended: the relay's handles are closed. */
	free_listed(d);
	(void)uv_loop_close(&d->hs_loop);
	if (d->reserve_fd >= 0)
		close(d->reserve_fd);
	if (d->insecure != NULL)
		grpc_server_credentials_release(d->insecure);
	for (size_t p = 0; p < d->n_pages; p++) {
		for (size_t s = 0; d->pages[p] != NULL && s < PEER_PAGE; s++)
			free(d->pages[p][s].principal);
		free(d->pages[p]);
	}
	free(d->pages);
	auth_tls_unref(d->tls);
	pthread_rwlock_destroy(&d->peers_mu);
	pthread_mutex_destroy(&d->tls_mu);
	pthread_mutex_destroy(&d->inbox.mu);
	pthread_mutex_destroy(&d->outbox.mu);
	pthread_mutex_destroy(&d->cmd_mu);
	pthread_cond_destroy(&d->cmd_cv);
	free(d);
}
