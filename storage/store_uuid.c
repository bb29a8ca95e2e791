/* UUIDv7 (RFC 9562 §5.7) with the sub-millisecond clock fraction in rand_a (§6.2 method 3) and a
 * process-wide monotonic guard: ids from this process never repeat and never go backwards, even
 * when the wall clock steps back or two ids fall in the same 1/4096 ms. */
#include "store_uuid.h"

#include <errno.h>
#include <stdatomic.h>
#include <stdio.h>
#include <string.h>
#include <sys/random.h>
#include <time.h>

static atomic_uint_fast64_t last_ts; /* (unix ms << 12) | 12-bit fraction of the last id */

static bool fill_random(uint8_t *buf, size_t n)
{
	size_t got = 0;

	while (got < n) {
		ssize_t r = getrandom(buf + got, n - got, 0);
		if (r < 0) {
			if (errno == EINTR)
				continue;
			return false;
		}
		got += (size_t)r;
	}
	return true;
}

/* The 60-bit timestamp of the next id: the clock if it moved past the last one, else last + 1
 * (which carries into the milliseconds after 4096 ids in one tick: still ordered, at most a few
 * microseconds ahead of the clock). */
static uint64_t next_timestamp(void)
{
	struct timespec ts;
	uint64_t now, prev, next;

	clock_gettime(CLOCK_REALTIME, &ts);
	now = ((uint64_t)ts.tv_sec * 1000 + (uint64_t)ts.tv_nsec / 1000000) << 12;
	now |= ((uint64_t)(ts.tv_nsec % 1000000) * 4096) / 1000000;
	prev = atomic_load(&last_ts);
	do {
		next = now > prev ? now : prev + 1;
	} while (!atomic_compare_exchange_weak(&last_ts, &prev, next));
	return next;
}

enum mat_code store__uuid7(char out[STORE_UUID_TEXT])
{
	uint8_t b[16], rnd[8];
	uint64_t t;

	out[0] = '\0';
	if (!fill_random(rnd, sizeof(rnd)))
		return MAT_INTERNAL;
	t = next_timestamp();
	for (int i = 0; i < 6; i++)
		b[i] = (uint8_t)(t >> (12 + 8 * (5 - i))); /* unix_ts_ms, big-endian */
	b[6] = (uint8_t)(0x70 | ((t >> 8) & 0x0f));        /* version 7, rand_a high */
	b[7] = (uint8_t)(t & 0xff);                        /* rand_a low */
	b[8] = (uint8_t)(0x80 | (rnd[0] & 0x3f));          /* variant 10, rand_b */
	memcpy(b + 9, rnd + 1, 7);
	store__uuid_format(b, out);
	return MAT_OK;
}

static int hexval(char c)
{
	if (c >= '0' && c <= '9')
		return c - '0';
	if (c >= 'a' && c <= 'f')
		return c - 'a' + 10;
	if (c >= 'A' && c <= 'F')
		return c - 'A' + 10;
	return -1;
}

bool store__uuid_parse(const char *s, uint8_t out[16])
{
	size_t j = 0;

	if (s == NULL || strlen(s) != 36)
		return false;
	for (size_t i = 0; i < 36;) {
		if (i == 8 || i == 13 || i == 18 || i == 23) {
			if (s[i] != '-')
				return false;
			i++;
			continue;
		}
		int hi = hexval(s[i]), lo = hexval(s[i + 1]);
		if (hi < 0 || lo < 0)
			return false;
		out[j++] = (uint8_t)(hi << 4 | lo);
		i += 2;
	}
	return true;
}

void store__uuid_format(const uint8_t in[16], char out[STORE_UUID_TEXT])
{
	static const char hex[] = "0123456789abcdef";
	size_t k = 0;

	for (int i = 0; i < 16; i++) {
		if (i == 4 || i == 6 || i == 8 || i == 10)
			out[k++] = '-';
		out[k++] = hex[in[i] >> 4];
		out[k++] = hex[in[i] & 0x0f];
	}
	out[k] = '\0';
}
