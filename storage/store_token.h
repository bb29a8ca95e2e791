/* Page tokens: opaque to clients, keyset-based so any replica can continue a listing.
 * Internal to storage/ and its unit tests (and the fuzzer).
 *
 * Token = base64url (no padding) of:
 *   byte 0      format version (1)
 *   byte 1      which list (enum store__list)
 *   bytes 2-9   64-bit FNV-1a hash of the list's filter (e.g. org id and state), big-endian
 *   byte 10     key length k (0..STORE_TOKEN_MAX_KEY)
 *   k bytes     the last key of the page (org id, or a 16-byte UUID)
 *   4 bytes     FNV-1a 32 checksum of everything before it, big-endian
 * The checksum catches corruption and casual edits, not forgery: a forged token can only move
 * the cursor of a list the caller may read anyway (visibility is enforced in the query). */
#ifndef STORE_TOKEN_H
#define STORE_TOKEN_H

#include "mat_error.h"

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

enum store__list {
	STORE_LIST_ORGANIZATIONS = 1,
	STORE_LIST_ASSESSMENTS = 2,
	STORE_LIST_TRANSITIONS = 3,
	STORE_LIST_ROLE_BINDINGS = 4,
	STORE_LIST_AUDIT_EVENTS = 5,
	/* Export cursors (ExportAssessments / ExportTransitions) share the token format: a cursor
	 * names its export, so one export's cursor is refused by the other. */
	STORE_LIST_EXPORT_ASSESSMENTS = 6,
	STORE_LIST_EXPORT_TRANSITIONS = 7,
	STORE_LIST_EVIDENCE = 8,
	/* ListEvents page tokens, and WatchEvents cursors (a position in the event log). */
	STORE_LIST_EVENTS = 9,
	STORE_LIST_EVENT_CURSOR = 10,
};

#define STORE_TOKEN_MAX_KEY 128
#define STORE_TOKEN_MAX_TEXT 256 /* base64url of the largest payload, and the NUL */

/* FNV-1a 64 of `len` bytes, continuing from `h` (start with STORE_FNV64_INIT). */
#define STORE_FNV64_INIT 0xcbf29ce484222325ULL
uint64_t store__fnv64(uint64_t h, const void *data, size_t len);
/* Continues `h` with the 8 big-endian bytes of v: a filter's hash must not depend on the byte
 * order of the replica that made the token. */
uint64_t store__fnv64_i64(uint64_t h, int64_t v);

/* Writes the token for (list, filter, key) into out (STORE_TOKEN_MAX_TEXT bytes). key_len must
 * be <= STORE_TOKEN_MAX_KEY (asserted). */
void store__token_encode(enum store__list list, uint64_t filter, const void *key, size_t key_len,
                         char out[STORE_TOKEN_MAX_TEXT]);

/* Decodes `token` (non-empty) made for `list` and `filter` into key (STORE_TOKEN_MAX_KEY bytes)
 * and *key_len. Garbage, a token of another list, or one made with another filter -> MAT_INVALID
 * with a violation on "page_token"; key and *key_len are then unspecified. */
enum mat_code store__token_decode(const char *token, enum store__list list, uint64_t filter,
                                  uint8_t key[STORE_TOKEN_MAX_KEY], size_t *key_len,
                                  struct mat_error *err) MAT_MUSTCHECK;

/* store__token_decode with the violation on `field` (e.g. "cursor") instead of "page_token". */
enum mat_code store__token_decode_field(const char *token, enum store__list list, uint64_t filter,
                                        const char *field, uint8_t key[STORE_TOKEN_MAX_KEY],
                                        size_t *key_len, struct mat_error *err) MAT_MUSTCHECK;

/* --- keyset positions ---------------------------------------------------------------------- */

/* A position (time, uuid, text) in a list ordered by a timestamp, as token key bytes: the time
 * in microseconds (8 bytes, big-endian, two's complement), the 16 bytes of the uuid, then the
 * text without its NUL (e.g. an organization id). Used by the transition list, the audit list
 * (text "") and the exports. */
#define STORE_KEY_POS_MIN 24
size_t store__key_pos_pack(int64_t time_us, const uint8_t uuid[16], const char *text,
                           uint8_t key[STORE_TOKEN_MAX_KEY]);
/* The inverse; false when `len` is too short or the text holds a NUL or does not fit
 * `text_cap` (with its NUL). */
bool store__key_pos_unpack(const uint8_t *key, size_t len, int64_t *time_us, uint8_t uuid[16],
                           char *text, size_t text_cap);

/* A timestamp as a timestamptz literal that PostgreSQL reads back exactly, to the microsecond
 * ("2024-05-01 12:00:00.000001+00"): keyset positions must resume exactly where they stopped,
 * which a float conversion (to_timestamp) would not guarantee. Outside years 1..9999 (the range
 * of google.protobuf.Timestamp) it is "-infinity" or "infinity". */
#define STORE_TIME_TEXT 96 /* room for any int fields (the compiler checks) */
void store__time_text(int64_t time_us, char out[STORE_TIME_TEXT]);

#endif
