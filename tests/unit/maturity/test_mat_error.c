/* Unit tests of mat_error.c: clearing, setting, field violations (first one is the message,
 * overflow past MAT_MAX_VIOLATIONS), code names, and that cut texts stay valid UTF-8. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <string.h>

#include "mat_error.h"
#include "mat_validate.h"

#define N_OF(a) (sizeof(a) / sizeof((a)[0]))

static void test_mat_error_clear_resets(void **state)
{
	struct mat_error e;

	memset(&e, 0x5a, sizeof(e));
	mat_error_clear(&e);
	assert_int_equal(e.code, MAT_OK);
	assert_string_equal(e.message, "");
	assert_int_equal(e.n_violations, 0);
	mat_error_clear(NULL); /* harmless */
}

static void test_mat_error_set_formats_and_returns_code(void **state)
{
	struct mat_error e;

	mat_error_clear(&e);
	assert_int_equal(mat_error_set(&e, MAT_NOT_FOUND, "organization %s not found", "acme"),
	                 MAT_NOT_FOUND);
	assert_int_equal(e.code, MAT_NOT_FOUND);
	assert_string_equal(e.message, "organization acme not found");
	assert_int_equal(e.n_violations, 0);
	/* NULL error: the code still comes back. */
	assert_int_equal(mat_error_set(NULL, MAT_ABORTED, "etag %d", 3), MAT_ABORTED);
}

static void test_mat_error_field_first_violation_is_message(void **state)
{
	struct mat_error e;

	mat_error_clear(&e);
	assert_int_equal(
	    mat_error_field(&e, "answers[3].practice_id", "unknown practice \"%s\"", "x"),
	    MAT_INVALID);
	assert_int_equal(mat_error_field(&e, "title", "must not be empty"), MAT_INVALID);
	assert_int_equal(e.code, MAT_INVALID);
	assert_int_equal(e.n_violations, 2);
	assert_string_equal(e.violations[0].field, "answers[3].practice_id");
	assert_string_equal(e.violations[0].description, "unknown practice \"x\"");
	assert_string_equal(e.violations[1].field, "title");
	assert_string_equal(e.violations[1].description, "must not be empty");
	assert_string_equal(e.message, "answers[3].practice_id: unknown practice \"x\"");
	assert_int_equal(mat_error_field(NULL, "f", "d"), MAT_INVALID);
}

static void test_mat_error_field_replaces_other_code(void **state)
{
	struct mat_error e;

	mat_error_clear(&e);
	mat_error_set(&e, MAT_NOT_FOUND, "earlier problem");
	mat_error_field(&e, "name", "must be valid UTF-8");
	assert_int_equal(e.code, MAT_INVALID);
	assert_string_equal(e.message, "name: must be valid UTF-8");
	assert_int_equal(e.n_violations, 1);
}

static void test_mat_error_field_overflow_is_noted_once(void **state)
{
	struct mat_error e;

	mat_error_clear(&e);
	for (int i = 0; i < MAT_MAX_VIOLATIONS + 5; i++)
		mat_error_field(&e, "f", "problem %d", i);
	assert_int_equal(e.n_violations, MAT_MAX_VIOLATIONS);
	assert_string_equal(e.violations[MAT_MAX_VIOLATIONS - 1].description, "problem 15");
	assert_string_equal(e.message, "f: problem 0 (more violations omitted)");
}

static void test_mat_error_field_overflow_note_fits_full_message(void **state)
{
	char field[200];
	char desc[300];
	struct mat_error e;

	memset(field, 'f', sizeof(field) - 1);
	field[sizeof(field) - 1] = '\0';
	memset(desc, 'd', sizeof(desc) - 1);
	desc[sizeof(desc) - 1] = '\0';
	mat_error_clear(&e);
	for (int i = 0; i <= MAT_MAX_VIOLATIONS; i++)
		mat_error_field(&e, field, "%s", desc);
	assert_true(strlen(e.message) < sizeof(e.message));
	assert_non_null(strstr(e.message, " (more violations omitted)"));
	/* The field name is cut to its buffer, not overrun. */
	assert_int_equal(strlen(e.violations[0].field), sizeof(e.violations[0].field) - 1);
}

static void test_mat_error_truncation_keeps_utf8_valid(void **state)
{
	/* Two-, three- and four-byte characters, each long enough to be cut at every offset. */
	static const char *const chars[] = {"\xc3\xa9", "\xe2\x82\xac", "\xf0\x9f\x98\x80"};
	struct mat_error e;
	char text[1200];

	for (size_t c = 0; c < N_OF(chars); c++) {
		size_t clen = strlen(chars[c]);
		for (size_t shift = 0; shift < 4; shift++) {
			size_t o = 0;
			/* A prefix of `shift` ASCII bytes moves the cut across the character. */
			for (size_t i = 0; i < shift; i++)
				text[o++] = 'a';
			while (o + clen < sizeof(text)) {
				memcpy(text + o, chars[c], clen);
				o += clen;
			}
			text[o] = '\0';

			mat_error_clear(&e);
			mat_error_set(&e, MAT_INTERNAL, "%s", text);
			assert_true(mat_utf8_valid(e.message, strlen(e.message)));
			assert_true(strlen(e.message) > sizeof(e.message) - 5);

			mat_error_clear(&e);
			mat_error_field(&e, text, "%s", text);
			assert_true(mat_utf8_valid(e.message, strlen(e.message)));
			assert_true(
			    mat_utf8_valid(e.violations[0].field, strlen(e.violations[0].field)));
			assert_true(mat_utf8_valid(e.violations[0].description,
			                           strlen(e.violations[0].description)));
		}
	}
}

static void test_mat_code_name_every_code(void **state)
{
	/* Generated from the map itself, so a code added there is covered here too. */
	static const struct {
		enum mat_code code;
		const char *name;
	} cases[] = {
#define MAT_X(name, text) {MAT_##name, #name},
	    MAT_ERRNO_MAP(MAT_X)
#undef MAT_X
	};

	for (size_t i = 0; i < N_OF(cases); i++) {
		assert_int_equal(cases[i].code, i); /* dense, from 0 */
		assert_string_equal(mat_code_name(cases[i].code), cases[i].name);
	}
	assert_string_equal(mat_code_name(MAT_OK), "OK");
	assert_string_equal(mat_code_name(MAT_INVALID), "INVALID");
	assert_string_equal(mat_code_name(MAT_INTERNAL), "INTERNAL");
	assert_string_equal(mat_code_name((enum mat_code)999), "UNKNOWN_CODE");
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_mat_error_clear_resets),
	    cmocka_unit_test(test_mat_error_set_formats_and_returns_code),
	    cmocka_unit_test(test_mat_error_field_first_violation_is_message),
	    cmocka_unit_test(test_mat_error_field_replaces_other_code),
	    cmocka_unit_test(test_mat_error_field_overflow_is_noted_once),
	    cmocka_unit_test(test_mat_error_field_overflow_note_fits_full_message),
	    cmocka_unit_test(test_mat_error_truncation_keeps_utf8_valid),
	    cmocka_unit_test(test_mat_code_name_every_code),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
