/* Page tokens (format in store_token.h): base64url of a small versioned binary payload. */
#include "store_token.h"

#include <assert.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

#define TOKEN_VERSION 1
#define HEADER 11 /* version, list, filter hash, key length */
#define TRAILER 4 /* checksum */
#define MAX_PAYLOAD (HEADER + STORE_TOKEN_MAX_KEY + TRAILER)

static const char b64[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";

uint64_t store__fnv64(uint64_t h, const void *data, size_t len)
{
	const uint8_t *p = data;

	for (size_t i = 0; i < len; i++) {
		h ^= p[i];
		h *= 0x100000001b3ULL;
	}
	return h;
}

uint64_t store__fnv64_i64(uint64_t h, int64_t v)
{
	uint8_t b[8];

	for (int i = 0; i < 8; i++)
		b[i] = (uint8_t)((uint64_t)v >> (56 - 8 * i));
	return store__fnv64(h, b, sizeof(b));
}

static uint32_t fnv32(const uint8_t *p, size_t len)
{
	uint32_t h = 0x811c9dc5u;

	for (size_t i = 0; i < len; i++) {
		h ^= p[i];
		h *= 0x01000193u;
	}
	return h;
}

static void encode64(const uint8_t *in, size_t n, char *out)
{
	size_t k = 0, i = 0;

	for (; i + 3 <= n; i += 3) {
		uint32_t v = (uint32_t)in[i] << 16 | (uint32_t)in[i + 1] << 8 | in[i + 2];
		out[k++] = b64[v >> 18];
		out[k++] = b64[(v >> 12) & 63];
		out[k++] = b64[(v >> 6) & 63];
		out[k++] = b64[v & 63];
	}
	if (n - i == 1) {
		uint32_t v = (uint32_t)in[i] << 16;
		out[k++] = b64[v >> 18];
		out[k++] = b64[(v >> 12) & 63];
	} else if (n - i == 2) {
		uint32_t v = (uint32_t)in[i] << 16 | (uint32_t)in[i + 1] << 8;
		out[k++] = b64[v >> 18];
		out[k++] = b64[(v >> 12) & 63];
		out[k++] = b64[(v >> 6) & 63];
	}
	out[k] = '\0';
}

static int val64(char c)
{
	const char *p = c != '\0' ? strchr(b64, c) : NULL;

	return p != NULL ? (int)(p - b64) : -1;
}

/* Strict decoding: only the URL-safe alphabet, no padding, and unused trailing bits zero (so a
 * payload has exactly one text form). Returns the decoded length or -1. */
static long decode64(const char *in, uint8_t *out, size_t cap)
{
	size_t n = strlen(in), k = 0;
	uint32_t acc = 0;
	int bits = 0;

	if (n % 4 == 1)
		return -1;
	for (size_t i = 0; i < n; i++) {
		int v = val64(in[i]);
		if (v < 0)
			return -1;
		acc = acc << 6 | (uint32_t)v;
		bits += 6;
		if (bits >= 8) {
			bits -= 8;
			if (k >= cap)
				return -1;
			out[k++] = (uint8_t)(acc >> bits);
			acc &= (1u << bits) - 1;
		}
	}
	if (acc != 0)
		return -1;
	return (long)k;
}

void store__token_encode(enum store__list list, uint64_t filter, const void *key, size_t key_len,
                         char out[STORE_TOKEN_MAX_TEXT])
{
	uint8_t p[MAX_PAYLOAD];
	size_t n = 0;
	uint32_t sum;

	assert(key_len <= STORE_TOKEN_MAX_KEY);
	p[n++] = TOKEN_VERSION;
	p[n++] = (uint8_t)list;
	for (int i = 7; i >= 0; i--)
		p[n++] = (uint8_t)(filter >> (8 * i));
	p[n++] = (uint8_t)key_len;
	memcpy(p + n, key, key_len);
	n += key_len;
	sum = fnv32(p, n);
	for (int i = 3; i >= 0; i--)
		p[n++] = (uint8_t)(sum >> (8 * i));
	encode64(p, n, out);
}

enum mat_code store__token_decode(const char *token, enum store__list list, uint64_t filter,
                                  uint8_t key[STORE_TOKEN_MAX_KEY], size_t *key_len,
                                  struct mat_error *err)
{
	return store__token_decode_field(token, list, filter, "page_token", key, key_len, err);
}

enum mat_code store__token_decode_field(const char *token, enum store__list list, uint64_t filter,
                                        const char *field, uint8_t key[STORE_TOKEN_MAX_KEY],
                                        size_t *key_len, struct mat_error *err)
{
	/* "page token" or "cursor": the messages name what the client sent. */
	const char *what = strcmp(field, "page_token") == 0 ? "page token" : field;
	uint8_t p[MAX_PAYLOAD];
	long n;
	uint64_t f = 0;
	uint32_t sum = 0;
	size_t k;

	*key_len = 0;
	if (token == NULL || strlen(token) >= STORE_TOKEN_MAX_TEXT)
		return mat_error_field(err, field, "invalid %s", what);
	n = decode64(token, p, sizeof(p));
	if (n < HEADER + TRAILER)
		return mat_error_field(err, field, "invalid %s", what);
	k = p[10];
	if (p[0] != TOKEN_VERSION || k > STORE_TOKEN_MAX_KEY || (size_t)n != HEADER + k + TRAILER)
		return mat_error_field(err, field, "invalid %s", what);
	for (int i = 0; i < 4; i++)
		sum = sum << 8 | p[HEADER + k + (size_t)i];
	if (sum != fnv32(p, HEADER + k))
		return mat_error_field(err, field, "invalid %s", what);
	if (p[1] != (uint8_t)list)
		return mat_error_field(err, field, "%s of another list", what);
	for (int i = 0; i < 8; i++)
		f = f << 8 | p[2 + i];
	if (f != filter)
		return mat_error_field(err, field, "%s does not match the request's filter", what);
	memcpy(key, p + HEADER, k);
	*key_len = k;
	return MAT_OK;
}

size_t store__key_pos_pack(int64_t time_us, const uint8_t uuid[16], const char *text,
                           uint8_t key[STORE_TOKEN_MAX_KEY])
{
	size_t t = strlen(text);
	uint64_t u = (uint64_t)time_us;

	assert(t <= STORE_TOKEN_MAX_KEY - STORE_KEY_POS_MIN);
	for (int i = 0; i < 8; i++)
		key[i] = (uint8_t)(u >> (56 - 8 * i));
	memcpy(key + 8, uuid, 16);
	memcpy(key + STORE_KEY_POS_MIN, text, t);
	return STORE_KEY_POS_MIN + t;
}

bool store__key_pos_unpack(const uint8_t *key, size_t len, int64_t *time_us, uint8_t uuid[16],
                           char *text, size_t text_cap)
{
	uint64_t u = 0;
	size_t t;

	if (len < STORE_KEY_POS_MIN)
		return false;
	t = len - STORE_KEY_POS_MIN;
	if (t >= text_cap || memchr(key + STORE_KEY_POS_MIN, '\0', t) != NULL)
		return false;
	for (int i = 0; i < 8; i++)
		u = u << 8 | key[i];
	*time_us = (int64_t)u;
	memcpy(uuid, key + 8, 16);
	memcpy(text, key + STORE_KEY_POS_MIN, t);
	text[t] = '\0';
	return true;
}

/* 0001-01-01T00:00:00Z and 10000-01-01T00:00:00Z in microseconds since the epoch. */
#define MIN_TIME_US (-62135596800LL * 1000000)
#define END_TIME_US (253402300800LL * 1000000)

void store__time_text(int64_t time_us, char out[STORE_TIME_TEXT])
{
	int64_t secs, frac;
	time_t t;
	struct tm tm;

	if (time_us < MIN_TIME_US) {
		snprintf(out, STORE_TIME_TEXT, "-infinity");
		return;
	}
	if (time_us >= END_TIME_US) {
		snprintf(out, STORE_TIME_TEXT, "infinity");
		return;
	}
	/* Floor division: before 1970 the fraction is still counted forwards from the second. */
	secs = time_us / 1000000;
	frac = time_us % 1000000;
	if (frac < 0) {
		frac += 1000000;
		secs--;
	}
	t = (time_t)secs;
	if (gmtime_r(&t, &tm) == NULL) {
		snprintf(out, STORE_TIME_TEXT, "%s", time_us < 0 ? "-infinity" : "infinity");
		return;
	}
	snprintf(out, STORE_TIME_TEXT, "%04d-%02d-%02d %02d:%02d:%02d.%06d+00", tm.tm_year + 1900,
	         tm.tm_mon + 1, tm.tm_mday, tm.tm_hour, tm.tm_min, tm.tm_sec, (int)frac);
}
