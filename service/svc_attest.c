/* svc_attest.h: one process-wide key set behind a mutex held only to swap or take a reference,
 * so signing never waits for a reload reading files. */
#include "svc_attest.h"

#include "auth_attest.h"
#include "svc_log.h"

#include <pthread.h>
#include <stdbool.h>

static pthread_mutex_t mu = PTHREAD_MUTEX_INITIALIZER;
static struct auth_attest_keys *current;

static enum mat_code load(const struct svc_config *cfg, struct auth_attest_keys **out,
                          const char **bad_flag, struct mat_error *err)
{
	bool key_failed = false;
	enum mat_code rc = auth_attest_keys_load(cfg->attestation_key, cfg->attestation_verify_keys,
	                                         out, &key_failed, err);

	if (rc != MAT_OK)
		*bad_flag = key_failed ? "--attestation-key" : "--attestation-verify-keys";
	return rc;
}

static void swap(struct auth_attest_keys *fresh)
{
	struct auth_attest_keys *old;

	pthread_mutex_lock(&mu);
	old = current;
	current = fresh;
	pthread_mutex_unlock(&mu);
	auth_attest_keys_unref(old);
}

enum mat_code svc_attest_init(const struct svc_config *cfg, const char **bad_flag,
                              struct mat_error *err)
{
	struct auth_attest_keys *k;
	enum mat_code rc = load(cfg, &k, bad_flag, err);

	if (rc == MAT_OK)
		swap(k);
	return rc;
}

void svc_attest_reload(const struct svc_config *cfg)
{
	struct auth_attest_keys *k;
	const char *bad = "";
	struct mat_error err;

	mat_error_clear(&err);
	if (load(cfg, &k, &bad, &err) != MAT_OK) {
		svc_log_event("error",
		              "attestation key reload failed, keeping the current keys: %s: %s",
		              bad, err.message);
		return;
	}
	swap(k);
	svc_log_event("info", "attestation keys reloaded (%zu listed, %s)",
	              auth_attest_keys_count(k),
	              auth_attest_keys_can_sign(k) ? "signing on" : "signing off");
}

struct auth_attest_keys *svc_attest_keys(void)
{
	struct auth_attest_keys *k;

	pthread_mutex_lock(&mu);
	k = auth_attest_keys_ref(current);
	pthread_mutex_unlock(&mu);
	return k;
}

void svc_attest_cleanup(void)
{
	swap(NULL);
}
