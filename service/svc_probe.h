/* `maturityd health [--health-addr ADDR]`: a probe for container healthchecks. Asks the
 * plaintext health port (--health-listen) grpc.health.v1.Health/Check and exits 0 when the
 * answer is SERVING, 1 otherwise (NOT_SERVING, no answer), 2 on a usage error. The image has no
 * other client, and Docker's HEALTHCHECK runs a command inside the container. */
#ifndef SVC_PROBE_H
#define SVC_PROBE_H

/* argv[0] is "health". */
int svc_probe_main(int argc, char **argv);

#endif
