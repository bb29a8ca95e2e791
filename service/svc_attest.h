/* The attestation keys the server signs gate decisions with: loaded at start from
 * --attestation-key and --attestation-verify-keys, swapped on SIGHUP. A call takes a reference
 * to the current set, so a reload never changes the key under a signature in progress, and a
 * reload that fails keeps the current set. */
#ifndef SVC_ATTEST_H
#define SVC_ATTEST_H

#include "mat_error.h"
#include "svc_config.h"

struct auth_attest_keys;

/* Loads the configured keys (none configured is an empty set). On failure *bad_flag names the
 * flag at fault ("--attestation-key" or "--attestation-verify-keys") and err says why. */
enum mat_code svc_attest_init(const struct svc_config *cfg, const char **bad_flag,
                              struct mat_error *err) MAT_MUSTCHECK;
/* Loads the files again and, if they load, makes them current; logs either way. Any thread. */
void svc_attest_reload(const struct svc_config *cfg);
/* A reference to the current set (auth_attest_keys_unref it); never NULL after init. */
struct auth_attest_keys *svc_attest_keys(void);
void svc_attest_cleanup(void);

#endif
