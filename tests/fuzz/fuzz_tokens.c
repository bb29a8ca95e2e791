/* libFuzzer target: page tokens and export cursors (storage/store_token.h), the one piece of
 * client input that storage parses itself. Two modes, chosen by the first byte:
 *
 *   anything but '!'  the input is a token as a client sends it (page_token / cursor). It is
 *                     decoded for every list with the filter a canonical request of that list
 *                     has, and what decodes goes through the same key checks the list's caller
 *                     applies (org id text, 16-byte UUID, keyset position + time literal).
 *   '!' L F*8 K...    a raw payload: list L, filter F (big-endian), key K (truncated to the
 *                     maximum). It is encoded, and the token must decode back to exactly the
 *                     same key for that list and filter, and be refused for any other list or
 *                     filter (the checksum gets in the way of mutations in the first mode; this
 *                     one explores the key checks directly).
 *
 * The filters mirror the static *_filter functions of store_org.c, store_assessment.c,
 * store_transition.c, store_access.c and store_report.c; the seed corpus in
 * corpus/fuzz_tokens/ holds tokens those functions produce for the same canonical requests. */
#include "store_token.h"
#include "store_uuid.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#define ORG_ID_MAX 63 /* MAT_MAX_ORG_ID */

static uint64_t filter_for(enum store__list list)
{
	uint64_t h = STORE_FNV64_INIT;
	uint8_t b;

	switch (list) {
	case STORE_LIST_ORGANIZATIONS:
		return store__fnv64(h, "organizations", 13);
	case STORE_LIST_ASSESSMENTS: /* org "acme", any state */
		h = store__fnv64(h, "assessments", 12);
		h = store__fnv64(h, "acme", 5);
		b = 0;
		return store__fnv64(h, &b, 1);
	case STORE_LIST_TRANSITIONS: /* organizations/-, any state, no time range */
		h = store__fnv64(h, "transitions", 12);
		b = 1;
		h = store__fnv64(h, &b, 1);
		b = 0;
		h = store__fnv64(h, &b, 1);
		h = store__fnv64_i64(h, 0);
		return store__fnv64_i64(h, 0);
	case STORE_LIST_ROLE_BINDINGS: /* every principal, every organization */
		h = store__fnv64(h, "role_bindings", 14);
		h = store__fnv64(h, "", 1);
		b = 0;
		h = store__fnv64(h, &b, 1);
		return store__fnv64(h, "", 1);
	case STORE_LIST_AUDIT_EVENTS: /* every principal, no time range */
		h = store__fnv64(h, "audit_events", 13);
		h = store__fnv64(h, "", 1);
		h = store__fnv64_i64(h, 0);
		return store__fnv64_i64(h, 0);
	case STORE_LIST_EXPORT_ASSESSMENTS:
		return store__fnv64(h, "export-assessments", 18);
	case STORE_LIST_EXPORT_TRANSITIONS:
		return store__fnv64(h, "export-transitions", 18);
	case STORE_LIST_EVIDENCE:
	case STORE_LIST_EVENTS:
	case STORE_LIST_EVENT_CURSOR:
		/* Not walked by this target yet (the loop below stops at the exports). */
		return 0;
	}
	return 0;
}

/* What the list's caller does with a decoded key. */
static void use_key(enum store__list list, const uint8_t *key, size_t klen)
{
	char after[STORE_TOKEN_MAX_KEY + 1], text[ORG_ID_MAX + 1], uuid_text[STORE_UUID_TEXT],
	    time_text[STORE_TIME_TEXT];
	uint8_t uuid[16];
	int64_t t;

	switch (list) {
	case STORE_LIST_ORGANIZATIONS:
		/* store_org_list: any NUL-free key is a position (ids sort bytewise). */
		if (klen == 0 || memchr(key, '\0', klen) != NULL)
			return;
		memcpy(after, key, klen);
		after[klen] = '\0';
		if (strlen(after) != klen)
			abort();
		return;
	case STORE_LIST_ASSESSMENTS:
	case STORE_LIST_ROLE_BINDINGS:
		if (klen != 16)
			return;
		store__uuid_format(key, uuid_text);
		if (!store__uuid_parse(uuid_text, uuid) || memcmp(uuid, key, 16) != 0)
			abort(); /* format and parse must round-trip */
		return;
	case STORE_LIST_TRANSITIONS:
	case STORE_LIST_AUDIT_EVENTS:
	case STORE_LIST_EXPORT_ASSESSMENTS:
	case STORE_LIST_EXPORT_TRANSITIONS:
		/* The audit list keeps no text (a 1-byte buffer), the others an org id. */
		if (!store__key_pos_unpack(key, klen, &t, uuid, text,
		                           list == STORE_LIST_AUDIT_EVENTS ? 1 : sizeof(text)))
			return;
		store__time_text(t, time_text);
		if (strlen(time_text) >= sizeof(time_text))
			abort();
		store__uuid_format(uuid, uuid_text);
		return;
	case STORE_LIST_EVIDENCE:
	case STORE_LIST_EVENTS:
	case STORE_LIST_EVENT_CURSOR:
		return; /* not walked by this target yet */
	}
}

static void decode_as_client_token(const uint8_t *data, size_t size)
{
	char *token = malloc(size + 1);
	uint8_t key[STORE_TOKEN_MAX_KEY];
	struct mat_error err;
	size_t klen;

	if (token == NULL)
		return;
	memcpy(token, data, size);
	token[size] = '\0';
	if (token[0] == '\0') {
		free(token);
		return; /* callers never decode an empty token: it means "first page" */
	}
	for (int l = STORE_LIST_ORGANIZATIONS; l <= STORE_LIST_EXPORT_TRANSITIONS; l++) {
		enum store__list list = (enum store__list)l;
		enum mat_code rc;

		mat_error_clear(&err);
		rc = store__token_decode_field(
		    token, list, filter_for(list),
		    l >= STORE_LIST_EXPORT_ASSESSMENTS ? "cursor" : "page_token", key, &klen, &err);
		if (rc == MAT_OK) {
			if (klen > STORE_TOKEN_MAX_KEY)
				abort();
			use_key(list, key, klen);
		} else if (rc != MAT_INVALID || err.n_violations != 1) {
			abort(); /* garbage is INVALID_ARGUMENT with a field violation, nothing else
			          */
		}
	}
	free(token);
}

static void round_trip(const uint8_t *data, size_t size)
{
	char token[STORE_TOKEN_MAX_TEXT];
	uint8_t key[STORE_TOKEN_MAX_KEY];
	enum store__list list;
	struct mat_error err;
	uint64_t filter = 0;
	size_t klen, n;

	if (size < 10)
		return;
	list = (enum store__list)(1 + data[1] % 7);
	for (int i = 0; i < 8; i++)
		filter = filter << 8 | data[2 + i];
	n = size - 10 > STORE_TOKEN_MAX_KEY ? STORE_TOKEN_MAX_KEY : size - 10;
	store__token_encode(list, filter, data + 10, n, token);
	if (strlen(token) >= STORE_TOKEN_MAX_TEXT)
		abort();
	mat_error_clear(&err);
	if (store__token_decode(token, list, filter, key, &klen, &err) != MAT_OK || klen != n ||
	    memcmp(key, data + 10, n) != 0)
		abort();
	use_key(list, key, klen);
	/* Another list or another filter: refused. */
	if (store__token_decode(token, (enum store__list)(1 + (unsigned)list % 7), filter, key,
	                        &klen, &err) != MAT_INVALID)
		abort();
	if (store__token_decode(token, list, filter ^ 1, key, &klen, &err) != MAT_INVALID)
		abort();
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	if (size > 0 && data[0] == '!')
		round_trip(data, size);
	else
		decode_as_client_token(data, size);
	return 0;
}
