/* The plaintext health-only port (--health-listen). */
#ifndef SVC_HEALTH_PORT_H
#define SVC_HEALTH_PORT_H

#include <stdbool.h>

struct svc_health_port;
struct svc_door;

/* Serves grpc.health.v1 on addr; serving(arg) is asked for the current state (any thread).
 * With a door (not yet started), the door listens and hands the connections over (plaintext,
 * through the frame guard); NULL: grpc listens itself. NULL with a log line when the address
 * cannot be bound. grpc_init must have been called. */
struct svc_health_port *svc_health_port_start(const char *addr, struct svc_door *door,
                                              bool (*serving)(void *), void *arg);
int svc_health_port_port(const struct svc_health_port *hp);
/* Watchers get NOT_SERVING and their stream ends; then the port closes. NULL allowed. */
void svc_health_port_stop(struct svc_health_port *hp);

#endif
