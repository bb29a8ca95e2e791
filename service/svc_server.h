/* The gRPC server on grpc core: listeners, TLS credentials (reloadable on SIGHUP), worker threads
 * with a completion queue each, the method table and graceful shutdown (svc_server.c). The life
 * of a call is the engine's: svc_engine.c, svc_stream.c, svc_authz.c (svc_engine.h). */
#ifndef SVC_SERVER_H
#define SVC_SERVER_H

#include "auth.h"
#include "store.h"
#include "svc_config.h"

#include <signal.h>

struct svc_server;

/* Builds the server: takes the PEM material and the TLS material of the front door (ownership of
 * `pem` and of the reference `tls` moves in, regardless of return code) and borrows cfg and pool
 * for its lifetime. Returns NULL with one log line on failure
 * (e.g. the address cannot be bound). grpc_init must have been called. */
struct auth_tls;
struct svc_server *svc_server_new(const struct svc_config *cfg, struct store_pool *pool,
                                  struct auth_pem *pem, struct auth_tls *tls);

/* Starts the workers, and the health and metrics ports when configured; returns at once.
 * -1 (with a log line) when a health or metrics address cannot be bound; the caller then
 * shuts the server down. */
int svc_server_start(struct svc_server *srv);

/* The port actually bound (useful with port 0). */
int svc_server_port(const struct svc_server *srv);

/* Reads the TLS files (and CRLs) again; the next handshake uses them if they load, else the
 * current ones stay (logged). Called from the main thread on SIGHUP. */
void svc_server_request_reload(struct svc_server *srv);

/* Graceful shutdown (docs/architecture.md, Shutdown): NOT_SERVING, no new calls, in-flight calls
 * get the grace period, then the rest are cancelled. Blocks until every thread has stopped. */
void svc_server_shutdown(struct svc_server *srv);

/* Frees. NULL allowed. Only after svc_server_shutdown. */
void svc_server_free(struct svc_server *srv);

#endif
