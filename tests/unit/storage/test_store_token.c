/* Page tokens: round trip, garbage, tampering, wrong list, changed filter (store_token.c). */
#include "store_token.h"

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <string.h>

#include <cmocka.h>

static uint64_t filter(const char *s)
{
	return store__fnv64(STORE_FNV64_INIT, s, strlen(s));
}

static void test_store_token_round_trip(void **state)
{
	char tok[STORE_TOKEN_MAX_TEXT];
	uint8_t key[STORE_TOKEN_MAX_KEY], big[STORE_TOKEN_MAX_KEY];
	size_t klen;
	struct mat_error err;

	(void)state;
	/* Every key length 0..max: base64 tails of 0, 1 and 2 bytes all occur. */
	for (size_t len = 0; len <= STORE_TOKEN_MAX_KEY; len++) {
		for (size_t i = 0; i < len; i++)
			big[i] = (uint8_t)(i * 37 + len);
		store__token_encode(STORE_LIST_ASSESSMENTS, filter("acme\0001"), big, len, tok);
		assert_true(strlen(tok) < STORE_TOKEN_MAX_TEXT);
		assert_null(strpbrk(tok, "+/="));
		mat_error_clear(&err);
		assert_int_equal(store__token_decode(tok, STORE_LIST_ASSESSMENTS,
		                                     filter("acme\0001"), key, &klen, &err),
		                 MAT_OK);
		assert_int_equal(klen, len);
		assert_memory_equal(key, big, len);
	}
	store__token_encode(STORE_LIST_ORGANIZATIONS, filter("o"), "acme-ml", 7, tok);
	assert_int_equal(
	    store__token_decode(tok, STORE_LIST_ORGANIZATIONS, filter("o"), key, &klen, &err),
	    MAT_OK);
	assert_int_equal(klen, 7);
	assert_memory_equal(key, "acme-ml", 7);
}

static void expect_invalid(const char *tok, enum store__list list, uint64_t f)
{
	uint8_t key[STORE_TOKEN_MAX_KEY];
	size_t klen;
	struct mat_error err;

	mat_error_clear(&err);
	assert_int_equal(store__token_decode(tok, list, f, key, &klen, &err), MAT_INVALID);
	assert_int_equal(err.code, MAT_INVALID);
	assert_int_equal(err.n_violations, 1);
	assert_string_equal(err.violations[0].field, "page_token");
}

static void test_store_token_garbage(void **state)
{
	static const char *garbage[] = {
	    "x",
	    "abc",
	    "!!!!",
	    "AAAA",
	    "AAAAAAAAAAAAAAAAAAAAAAAAAAAAAA",
	    "////",
	    "a b c d",
	    "acme-ml",
	    "ZXhhbXBsZQ==",
	    "' OR 1=1 --",
	    "\xff\xfe\xfd",
	};
	char longtok[600];

	(void)state;
	for (size_t i = 0; i < sizeof(garbage) / sizeof(garbage[0]); i++)
		expect_invalid(garbage[i], STORE_LIST_ORGANIZATIONS, filter("o"));
	memset(longtok, 'A', sizeof(longtok) - 1);
	longtok[sizeof(longtok) - 1] = '\0';
	expect_invalid(longtok, STORE_LIST_ORGANIZATIONS, filter("o"));
}

static void test_store_token_tampered(void **state)
{
	char tok[STORE_TOKEN_MAX_TEXT], bad[STORE_TOKEN_MAX_TEXT + 8];
	static const char alphabet[] =
	    "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";

	(void)state;
	store__token_encode(STORE_LIST_ORGANIZATIONS, filter("o"), "acme-ml", 7, tok);
	/* Any single changed character is caught (checksum, strict base64 tail or structure). */
	for (size_t i = 0; i < strlen(tok); i++) {
		for (size_t j = 0; j < 64; j += 7) {
			if (alphabet[j] == tok[i])
				continue;
			strcpy(bad, tok);
			bad[i] = alphabet[j];
			expect_invalid(bad, STORE_LIST_ORGANIZATIONS, filter("o"));
		}
	}
	/* Truncated and extended. */
	strcpy(bad, tok);
	bad[strlen(bad) - 1] = '\0';
	expect_invalid(bad, STORE_LIST_ORGANIZATIONS, filter("o"));
	snprintf(bad, sizeof(bad), "%sAA", tok);
	expect_invalid(bad, STORE_LIST_ORGANIZATIONS, filter("o"));
}

static void test_store_token_wrong_list_or_filter(void **state)
{
	char tok[STORE_TOKEN_MAX_TEXT];
	uint8_t key[STORE_TOKEN_MAX_KEY];
	size_t klen;
	struct mat_error err;

	(void)state;
	store__token_encode(STORE_LIST_ASSESSMENTS, filter("acme/1"), "0123456789abcdef", 16, tok);
	expect_invalid(tok, STORE_LIST_ORGANIZATIONS, filter("acme/1"));
	expect_invalid(tok, STORE_LIST_ASSESSMENTS, filter("acme/2"));
	expect_invalid(tok, STORE_LIST_ASSESSMENTS, filter("other/1"));
	mat_error_clear(&err);
	assert_int_equal(
	    store__token_decode(tok, STORE_LIST_ASSESSMENTS, filter("acme/1"), key, &klen, &err),
	    MAT_OK);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_store_token_round_trip),
	    cmocka_unit_test(test_store_token_garbage),
	    cmocka_unit_test(test_store_token_tampered),
	    cmocka_unit_test(test_store_token_wrong_list_or_filter),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
