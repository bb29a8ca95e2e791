/* The front door (svc_door.c): maturityd's own listening sockets, on two threads each running
 * a libuv loop (one relays, one runs the TLS handshakes at a lower priority). It accepts
 * connections (and keeps accepting when descriptors run out), bounds
 * them (--max-connections, handshakes in progress, --handshake-timeout), terminates TLS and
 * verifies client certificates through auth/ (CRLs included), then relays each connection's
 * plaintext to grpc over a socketpair (grpc_server_add_channel_from_fd), reading every HTTP/2
 * frame on the way through the frame guard (svc_h2guard.c), which closes abusers with
 * GOAWAY(ENHANCE_YOUR_CALM). grpc never sees a byte the guard has not read, and the identity
 * of a connection travels beside it (svc_door_peer), never in a header. Why and how:
 * docs/security.md, docs/architecture.md. */
#ifndef SVC_DOOR_H
#define SVC_DOOR_H

#include <grpc/grpc.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <uv.h>

struct auth_tls;
struct svc_metrics;
struct svc_door;

struct svc_door_limits {
	int max_connections;      /* all listeners; lowered to fit the descriptor limit */
	int handshake_timeout_ms; /* TLS handshake, or a plaintext client's first byte */
	uint32_t max_metadata_bytes;
	uint32_t max_concurrent_streams; /* per connection (grpc's limit) */
};

/* A door (not yet listening). `tls` is the server's TLS material (a reference is taken; NULL
 * only if every listener is plaintext); `metrics` borrowed for the door's life. The relay runs
 * on `loop`, the caller's libuv loop (the service's loop thread, which runs the storage loop
 * too: docs/architecture.md): this, svc_door_listen and svc_door_start run on the thread that
 * runs it (or before it runs). Raises the descriptor limit to its hard limit. NULL on failure
 * (logged). */
struct svc_door *svc_door_new(const struct svc_door_limits *lim, struct auth_tls *tls,
                              struct svc_metrics *metrics, uv_loop_t *loop);

/* Listens on addr ("host:port", "[v6]:port", "unix:path"; port 0 picks one) and hands each
 * connection to `server` once its TLS handshake (when `tls`) is done. Before svc_door_start.
 * Returns the bound port (0 for unix sockets), or -1 with a log line. */
int svc_door_listen(struct svc_door *d, const char *addr, bool tls, grpc_server *server);

/* Starts the door: its handshake thread, and its listeners on the loop. The grpc servers given
 * to svc_door_listen must be started. 0 or -1 (logged). */
int svc_door_start(struct svc_door *d);

/* New handshakes use `tls` from now on (a reference is taken); connections already open keep
 * the material they started with. Any thread. */
void svc_door_set_tls(struct svc_door *d, struct auth_tls *tls);
/* The current TLS material with a reference the caller releases (auth_tls_unref); NULL if
 * none. Any thread. */
struct auth_tls *svc_door_tls(struct svc_door *d);

/* Shutdown, first step: the listeners that hand connections to `server` close (new connections
 * are refused by the kernel); open connections keep being relayed so calls in flight finish.
 * Waits until done. Any thread but the door's. d NULL allowed. */
void svc_door_close_listeners(struct svc_door *d, grpc_server *server);

/* Shutdown, after the grpc servers are destroyed (grpc closed its end of every relayed
 * connection): waits until each has written what grpc wrote last to its client and closed
 * (pump_down closes at grpc's end of stream), at most timeout_ms. False if some are still
 * open then (a client that stopped reading). Closing them at once instead cut the last
 * messages and the status of streams that had finished within the grace ("Broken pipe"). */
bool svc_door_wait_drained(struct svc_door *d, int timeout_ms); /* d may be NULL */
/* Closes every connection (on the loop's thread: this asks and returns) and stops the
 * handshake thread. After the grpc servers are destroyed; any thread but the loop's. NULL
 * allowed; idempotent. */
void svc_door_stop(struct svc_door *d);
/* Frees the door: after svc_door_stop, once the loop has ended (its thread joined). NULL
 * allowed. */
void svc_door_free(struct svc_door *d);

/* The verified principal and the client's address of the connection a call came in on, from
 * grpc_call_get_peer's string ("fd:N" for the door's connections). false when `peer` is not a
 * door connection. principal gets "" for a plaintext listener (only the health port is one: the
 * engine serves grpc.health.v1 alone there). Any thread. */
bool svc_door_peer(struct svc_door *d, const char *peer, char *principal, size_t principal_size,
                   char *addr, size_t addr_size);

#endif
