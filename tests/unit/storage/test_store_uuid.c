/* UUIDv7: format, version/variant bits, timestamp, monotonic within the process (also across
 * threads), parse/format round trip. */
#include "store_uuid.h"

#include <pthread.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <cmocka.h>

static bool canonical_lower(const char *s)
{
	if (strlen(s) != 36)
		return false;
	for (int i = 0; i < 36; i++) {
		if (i == 8 || i == 13 || i == 18 || i == 23) {
			if (s[i] != '-')
				return false;
		} else if (!((s[i] >= '0' && s[i] <= '9') || (s[i] >= 'a' && s[i] <= 'f'))) {
			return false;
		}
	}
	return true;
}

static void test_store_uuid7_format(void **state)
{
	char id[STORE_UUID_TEXT];
	uint8_t b[16];
	struct timespec ts;
	uint64_t ms = 0, now;

	(void)state;
	assert_int_equal(store__uuid7(id), MAT_OK);
	assert_true(canonical_lower(id));
	assert_int_equal(id[14], '7');           /* version */
	assert_non_null(strchr("89ab", id[19])); /* variant 10xx */
	assert_true(store__uuid_parse(id, b));
	for (int i = 0; i < 6; i++)
		ms = ms << 8 | b[i];
	clock_gettime(CLOCK_REALTIME, &ts);
	now = (uint64_t)ts.tv_sec * 1000 + (uint64_t)ts.tv_nsec / 1000000;
	assert_true(ms <= now + 5 && ms + 5000 >= now);
}

static void test_store_uuid7_monotonic(void **state)
{
	enum { N = 200000 };
	char prev[STORE_UUID_TEXT], cur[STORE_UUID_TEXT];

	(void)state;
	assert_int_equal(store__uuid7(prev), MAT_OK);
	/* Far more than 4096 per millisecond: the counter must carry, never repeat. */
	for (int i = 0; i < N; i++) {
		assert_int_equal(store__uuid7(cur), MAT_OK);
		if (strcmp(prev, cur) >= 0)
			fail_msg("not increasing: %s then %s", prev, cur);
		memcpy(prev, cur, sizeof(cur));
	}
}

enum { THREADS = 4, PER_THREAD = 20000 };
static char ids[THREADS][PER_THREAD][STORE_UUID_TEXT];

static void *gen(void *arg)
{
	char(*mine)[STORE_UUID_TEXT] = arg;

	for (int i = 0; i < PER_THREAD; i++) {
		if (store__uuid7(mine[i]) != MAT_OK)
			return arg;
	}
	return NULL;
}

static int cmp(const void *a, const void *b)
{
	return strcmp(a, b);
}

static void test_store_uuid7_unique_across_threads(void **state)
{
	pthread_t t[THREADS];
	char(*all)[STORE_UUID_TEXT] = (char(*)[STORE_UUID_TEXT])ids;

	(void)state;
	for (int i = 0; i < THREADS; i++)
		assert_int_equal(pthread_create(&t[i], NULL, gen, ids[i]), 0);
	for (int i = 0; i < THREADS; i++) {
		void *r;
		pthread_join(t[i], &r);
		assert_null(r);
	}
	/* Each thread's sequence increases, and no id repeats across threads. */
	for (int i = 0; i < THREADS; i++)
		for (int j = 1; j < PER_THREAD; j++)
			assert_true(strcmp(ids[i][j - 1], ids[i][j]) < 0);
	qsort(all, THREADS * PER_THREAD, STORE_UUID_TEXT, cmp);
	for (int i = 1; i < THREADS * PER_THREAD; i++)
		assert_true(strcmp(all[i - 1], all[i]) != 0);
}

static void test_store_uuid_parse_and_format(void **state)
{
	uint8_t b[16];
	char out[STORE_UUID_TEXT];

	(void)state;
	assert_true(store__uuid_parse("0190A1B2-C3D4-7E5F-8A9B-0C1D2E3F4A5B", b));
	store__uuid_format(b, out);
	assert_string_equal(out, "0190a1b2-c3d4-7e5f-8a9b-0c1d2e3f4a5b");
	assert_false(store__uuid_parse("0190a1b2c3d47e5f8a9b0c1d2e3f4a5b", b));
	assert_false(store__uuid_parse("0190a1b2-c3d4-7e5f-8a9b-0c1d2e3f4a5", b));
	assert_false(store__uuid_parse("0190a1b2-c3d4-7e5f-8a9b-0c1d2e3f4a5bb", b));
	assert_false(store__uuid_parse("0190a1b2-c3d4-7e5f-8a9b_0c1d2e3f4a5b", b));
	assert_false(store__uuid_parse("g190a1b2-c3d4-7e5f-8a9b-0c1d2e3f4a5b", b));
	assert_false(store__uuid_parse("", b));
	assert_false(store__uuid_parse(NULL, b));
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_store_uuid7_format),
	    cmocka_unit_test(test_store_uuid7_monotonic),
	    cmocka_unit_test(test_store_uuid7_unique_across_threads),
	    cmocka_unit_test(test_store_uuid_parse_and_format),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
