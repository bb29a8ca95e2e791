/* Unit tests of mat_validate.c: UTF-8 (table of edge cases plus an exhaustive comparison with a
 * reference decoder over every 1-3 byte string), identifier grammars, UUIDs, string limits and
 * answer validation with the exact field names and descriptions clients will see. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "mat_error.h"
#include "mat_model.h"
#include "mat_validate.h"

#define N_OF(a) (sizeof(a) / sizeof((a)[0]))

static const struct mat_model *mlops(void)
{
	const struct mat_model *m = mat_model_find("mlops-v1");
	assert_non_null(m);
	return m;
}

/* A string of `len` copies of c (caller frees). */
static char *repeat(char c, size_t len)
{
	char *s = malloc(len + 1);
	assert_non_null(s);
	memset(s, c, len);
	s[len] = '\0';
	return s;
}

/* ---- UTF-8 ---- */

static void test_mat_utf8_valid_edge_cases(void **state)
{
	static const struct {
		const char *name;
		const char *bytes;
		size_t len;
		bool valid;
	} cases[] = {
	    {"empty", "", 0, true},
	    {"ascii", "hello, world", 12, true},
	    {"DEL", "\x7f", 1, true},
	    {"NUL alone", "\0", 1, false},
	    {"NUL inside", "a\0b", 3, false},
	    {"2-byte min U+0080", "\xc2\x80", 2, true},
	    {"2-byte max U+07FF", "\xdf\xbf", 2, true},
	    {"e acute", "caf\xc3\xa9", 5, true},
	    {"overlong NUL C0 80", "\xc0\x80", 2, false},
	    {"overlong C1 BF", "\xc1\xbf", 2, false},
	    {"overlong '/' 3 bytes", "\xe0\x80\xaf", 3, false},
	    {"overlong U+07FF 3 bytes", "\xe0\x9f\xbf", 3, false},
	    {"3-byte min U+0800", "\xe0\xa0\x80", 3, true},
	    {"euro", "\xe2\x82\xac", 3, true},
	    {"U+D7FF", "\xed\x9f\xbf", 3, true},
	    {"surrogate U+D800", "\xed\xa0\x80", 3, false},
	    {"surrogate U+DBFF", "\xed\xaf\xbf", 3, false},
	    {"surrogate U+DC00", "\xed\xb0\x80", 3, false},
	    {"surrogate U+DFFF", "\xed\xbf\xbf", 3, false},
	    {"surrogate pair CESU-8", "\xed\xa0\xbd\xed\xb8\x80", 6, false},
	    {"U+E000", "\xee\x80\x80", 3, true},
	    {"U+FFFD", "\xef\xbf\xbd", 3, true},
	    {"U+FFFF", "\xef\xbf\xbf", 3, true},
	    {"overlong 4 bytes F0 80", "\xf0\x80\x80\x80", 4, false},
	    {"overlong U+FFFF 4 bytes", "\xf0\x8f\xbf\xbf", 4, false},
	    {"4-byte min U+10000", "\xf0\x90\x80\x80", 4, true},
	    {"emoji", "\xf0\x9f\x98\x80", 4, true},
	    {"max U+10FFFF", "\xf4\x8f\xbf\xbf", 4, true},
	    {"U+110000", "\xf4\x90\x80\x80", 4, false},
	    {"F5 lead", "\xf5\x80\x80\x80", 4, false},
	    {"F7 lead", "\xf7\xbf\xbf\xbf", 4, false},
	    {"5-byte form", "\xf8\x88\x80\x80\x80", 5, false},
	    {"6-byte form", "\xfc\x84\x80\x80\x80\x80", 6, false},
	    {"FE", "\xfe", 1, false},
	    {"FF", "\xff", 1, false},
	    {"stray continuation", "\x80", 1, false},
	    {"stray continuation after ascii", "a\xbf", 2, false},
	    {"truncated 2-byte", "\xc3", 1, false},
	    {"truncated 3-byte (1 of 2)", "\xe2", 1, false},
	    {"truncated 3-byte (2 of 3)", "\xe2\x82", 2, false},
	    {"truncated 4-byte", "\xf0\x9f\x98", 3, false},
	    {"truncated then ascii",
	     "\xe2\x82"
	     "a",
	     3, false},
	    {"len cuts a valid char", "caf\xc3\xa9", 4, false},
	    {"bad 2nd byte", "\xc3\x28", 2, false},
	    {"bad 3rd byte", "\xe2\x82\x28", 3, false},
	    {"bad 4th byte", "\xf0\x9f\x98\x28", 4, false},
	    {"lead then lead", "\xc3\xc3\xa9", 3, false},
	};

	for (size_t i = 0; i < N_OF(cases); i++) {
		bool got = mat_utf8_valid(cases[i].bytes, cases[i].len);
		if (got != cases[i].valid)
			fail_msg("%s: got %d", cases[i].name, got);
	}
	assert_true(mat_utf8_valid(NULL, 0));
	assert_false(mat_utf8_valid(NULL, 1));
}

/* Reference decoder written from the definition (RFC 3629), unlike the table-driven one under
 * test: decode the scalar value by bit patterns, then reject overlongs, surrogates, > U+10FFFF
 * and NUL. */
static bool ref_utf8_valid(const unsigned char *s, size_t len)
{
	size_t i = 0;

	while (i < len) {
		unsigned c = s[i];
		size_t n;
		uint32_t cp;
		static const uint32_t min_cp[5] = {0, 0, 0x80, 0x800, 0x10000};

		if (c == 0)
			return false;
		if (c < 0x80) {
			i++;
			continue;
		}
		if ((c & 0xe0) == 0xc0) {
			n = 2;
			cp = c & 0x1f;
		} else if ((c & 0xf0) == 0xe0) {
			n = 3;
			cp = c & 0x0f;
		} else if ((c & 0xf8) == 0xf0) {
			n = 4;
			cp = c & 0x07;
		} else {
			return false;
		}
		if (i + n > len)
			return false;
		for (size_t k = 1; k < n; k++) {
			if ((s[i + k] & 0xc0) != 0x80)
				return false;
			cp = (cp << 6) | (s[i + k] & 0x3f);
		}
		if (cp < min_cp[n] || cp > 0x10ffff || (cp >= 0xd800 && cp <= 0xdfff))
			return false;
		i += n;
	}
	return true;
}

/* Long strings take an eight-bytes-at-a-time ASCII path: every byte value at every position of
 * the first three words (and of a short tail) must give the reference's answer, including
 * bytes 0x00 and 0x01 and 0x80 whose bit patterns the word test is made of. */
static void test_mat_utf8_valid_word_path_matches_reference(void **state)
{
	unsigned char b[27];

	for (size_t len = 8; len <= sizeof(b); len += 19 - 8) {
		for (size_t pos = 0; pos < len; pos++) {
			for (unsigned x = 0; x < 256; x++) {
				memset(b, 'a', sizeof(b));
				b[pos] = (unsigned char)x;
				if (mat_utf8_valid((char *)b, len) != ref_utf8_valid(b, len))
					fail_msg("len %zu, byte %02x at %zu", len, x, pos);
				/* A valid 2-byte character across a word boundary too. */
				if (pos + 1 < len) {
					b[pos] = 0xc3;
					b[pos + 1] = (unsigned char)x;
					if (mat_utf8_valid((char *)b, len) !=
					    ref_utf8_valid(b, len))
						fail_msg("len %zu, c3 %02x at %zu", len, x, pos);
				}
			}
		}
	}
	memset(b, 0x01, sizeof(b)); /* all 0x01: no NUL, although w - 0x01..01 is 0 */
	assert_true(mat_utf8_valid((char *)b, sizeof(b)));
}

static void test_mat_utf8_valid_matches_reference_exhaustively(void **state)
{
	unsigned char b[4];

	/* Every string of 1, 2 and 3 bytes. */
	for (unsigned x = 0; x < 256; x++) {
		b[0] = (unsigned char)x;
		assert_int_equal(mat_utf8_valid((char *)b, 1), ref_utf8_valid(b, 1));
		for (unsigned y = 0; y < 256; y++) {
			b[1] = (unsigned char)y;
			if (mat_utf8_valid((char *)b, 2) != ref_utf8_valid(b, 2))
				fail_msg("%02x %02x", x, y);
			for (unsigned z = 0; z < 256; z++) {
				b[2] = (unsigned char)z;
				if (mat_utf8_valid((char *)b, 3) != ref_utf8_valid(b, 3))
					fail_msg("%02x %02x %02x", x, y, z);
			}
		}
	}
	/* 4 bytes: every lead from F0 and every second byte, with boundary trailing bytes. */
	static const unsigned char tails[] = {0x00, 0x41, 0x7f, 0x80, 0x9f, 0xa0, 0xbf, 0xc0, 0xff};
	for (unsigned x = 0xf0; x < 256; x++) {
		for (unsigned y = 0; y < 256; y++) {
			for (size_t p = 0; p < N_OF(tails); p++) {
				for (size_t q = 0; q < N_OF(tails); q++) {
					b[0] = (unsigned char)x;
					b[1] = (unsigned char)y;
					b[2] = tails[p];
					b[3] = tails[q];
					if (mat_utf8_valid((char *)b, 4) != ref_utf8_valid(b, 4))
						fail_msg("%02x %02x %02x %02x", x, y, b[2], b[3]);
				}
			}
		}
	}
}

/* ---- organization ids and label keys ---- */

static void test_mat_org_id_valid_grammar(void **state)
{
	char *len63 = repeat('a', 63);
	char *len64 = repeat('a', 64);
	static const struct {
		const char *id;
		bool valid;
	} cases[] = {
	    {"ab", true},           {"acme-ml", true},   {"a1", true},    {"a-", true},
	    {"a--b", true},         {"team-42-x", true}, {"a", false},    {"", false},
	    {"Ab", false},          {"aB", false},       {"a_b", false},  {"1ab", false},
	    {"-ab", false},         {"ab c", false},     {"ab.c", false}, {"ab/c", false},
	    {"caf\xc3\xa9", false}, {"ab\n", false},
	};

	for (size_t i = 0; i < N_OF(cases); i++) {
		if (mat_org_id_valid(cases[i].id) != cases[i].valid)
			fail_msg("\"%s\": expected %d", cases[i].id, cases[i].valid);
	}
	assert_true(mat_org_id_valid(len63));
	assert_false(mat_org_id_valid(len64));
	len63[62] = '9';
	assert_true(mat_org_id_valid(len63));
	len63[0] = '9';
	assert_false(mat_org_id_valid(len63));
	assert_false(mat_org_id_valid(NULL));
	free(len63);
	free(len64);
}

static void test_mat_label_key_valid_grammar(void **state)
{
	char *len63 = repeat('k', 63);
	char *len64 = repeat('k', 64);
	static const struct {
		const char *key;
		bool valid;
	} cases[] = {
	    {"a", true},   {"team", true}, {"a_b-c9", true}, {"a_", true},   {"cost-center", true},
	    {"", false},   {"_a", false},  {"-a", false},    {"1a", false},  {"A", false},
	    {"aB", false}, {"a.b", false}, {"a b", false},   {"a/b", false}, {"\xc3\xa9", false},
	};

	for (size_t i = 0; i < N_OF(cases); i++) {
		if (mat_label_key_valid(cases[i].key) != cases[i].valid)
			fail_msg("\"%s\": expected %d", cases[i].key, cases[i].valid);
	}
	assert_true(mat_label_key_valid(len63));
	assert_false(mat_label_key_valid(len64));
	assert_false(mat_label_key_valid(NULL));
	free(len63);
	free(len64);
}

/* ---- UUIDs ---- */

static void test_mat_uuid_valid_forms(void **state)
{
	static const struct {
		const char *uuid;
		bool valid;
	} cases[] = {
	    {"0190a1b2-c3d4-7e5f-8a9b-0c1d2e3f4a5b", true},
	    {"0190A1B2-C3D4-7E5F-8A9B-0C1D2E3F4A5B", true},
	    {"0190a1B2-c3D4-7e5F-8A9b-0c1D2e3F4a5B", true},
	    {"00000000-0000-0000-0000-000000000000", true},
	    {"ffffffff-ffff-ffff-ffff-ffffffffffff", true},
	    {"", false},
	    {"0190a1b2c3d47e5f8a9b0c1d2e3f4a5b", false},
	    {"0190a1b2-c3d4-7e5f-8a9b-0c1d2e3f4a5", false},
	    {"0190a1b2-c3d4-7e5f-8a9b-0c1d2e3f4a5b0", false},
	    {"0190a1b2-c3d4-7e5f-8a9b-0c1d2e3f4a5g", false},
	    {"{0190a1b2-c3d4-7e5f-8a9b-0c1d2e3f4a5b}", false},
	    {"0190a1b2c-3d4-7e5f-8a9b-0c1d2e3f4a5b", false},
	    {"0190a1b2-c3d4-7e5f-8a9b_0c1d2e3f4a5b", false},
	    {"0190a1b2-c3d4-7e5f-8a9b-0c1d2e3f4a5-", false},
	    {"urn:uuid:0190a1b2-c3d4-7e5f-8a9b-0c1d", false},
	    {" 0190a1b2-c3d4-7e5f-8a9b-0c1d2e3f4a5", false},
	};

	for (size_t i = 0; i < N_OF(cases); i++) {
		if (mat_uuid_valid(cases[i].uuid) != cases[i].valid)
			fail_msg("\"%s\": expected %d", cases[i].uuid, cases[i].valid);
	}
	assert_false(mat_uuid_valid(NULL));
}

static void test_mat_uuid_lower_canonicalises(void **state)
{
	char out[37];

	memset(out, 'x', sizeof(out));
	mat_uuid_lower("0190A1B2-C3D4-7E5F-8A9B-0C1D2E3F4A5B", out);
	assert_string_equal(out, "0190a1b2-c3d4-7e5f-8a9b-0c1d2e3f4a5b");
	mat_uuid_lower("0190a1b2-c3d4-7e5f-8a9b-0c1d2e3f4a5b", out);
	assert_string_equal(out, "0190a1b2-c3d4-7e5f-8a9b-0c1d2e3f4a5b");
}

/* ---- string fields ---- */

static void test_mat_check_string_limits(void **state)
{
	char *at_max = repeat('x', 200);
	char *over = repeat('x', 201);
	struct mat_error err;

	mat_error_clear(&err);
	assert_true(mat_check_string(&err, "title", at_max, 200, true));
	assert_true(mat_check_string(&err, "title", "", 200, false));
	assert_true(mat_check_string(&err, "title", NULL, 200, false));
	assert_true(mat_check_string(&err, "title", "caf\xc3\xa9", 5, true));
	assert_int_equal(err.code, MAT_OK);
	assert_int_equal(err.n_violations, 0);

	assert_false(mat_check_string(&err, "title", over, 200, false));
	assert_int_equal(err.code, MAT_INVALID);
	assert_int_equal(err.n_violations, 1);
	assert_string_equal(err.violations[0].field, "title");
	assert_string_equal(err.violations[0].description, "must be at most 200 bytes (got 201)");
	assert_string_equal(err.message, "title: must be at most 200 bytes (got 201)");

	mat_error_clear(&err);
	assert_false(mat_check_string(&err, "display_name", "", 200, true));
	assert_false(mat_check_string(&err, "description", NULL, 200, true));
	assert_false(mat_check_string(&err, "note", "bad \xff byte", 4000, false));
	/* Bytes, not characters: 3 two-byte characters are 6 bytes. */
	assert_false(mat_check_string(&err, "reason", "\xc3\xa9\xc3\xa9\xc3\xa9", 5, false));
	assert_int_equal(err.n_violations, 4);
	assert_string_equal(err.violations[0].field, "display_name");
	assert_string_equal(err.violations[0].description, "must not be empty");
	assert_string_equal(err.violations[1].field, "description");
	assert_string_equal(err.violations[2].field, "note");
	assert_string_equal(err.violations[2].description, "must be valid UTF-8");
	assert_string_equal(err.violations[3].description, "must be at most 5 bytes (got 6)");
	/* The first violation stays the message. */
	assert_string_equal(err.message, "display_name: must not be empty");

	/* err may be NULL: the verdict alone. */
	assert_false(mat_check_string(NULL, "title", over, 200, false));
	free(at_max);
	free(over);
}

/* ---- answers ---- */

static struct mat_answer answer(const char *id, enum mat_status status, const char *note,
                                const char *evidence)
{
	struct mat_answer a;

	memset(&a, 0, sizeof(a));
	a.practice_id = (char *)id;
	a.status = status;
	a.note = (char *)note;
	a.evidence_uri = (char *)evidence;
	return a;
}

static void test_mat_answers_validate_accepts_valid(void **state)
{
	struct mat_answer a[] = {
	    answer("people.regular_communication", MAT_STATUS_IMPLEMENTED, "", ""),
	    answer("model_release.ab_testing", MAT_STATUS_PARTIAL, "pilot in one team",
	           "https://wiki.example/ab"),
	    answer("model_creation.managed_compute", MAT_STATUS_NOT_APPLICABLE,
	           "we rent a managed service", NULL),
	    answer("application_integration.model_monitoring", MAT_STATUS_NOT_IMPLEMENTED, NULL,
	           NULL),
	};
	struct mat_error err;

	mat_error_clear(&err);
	assert_true(mat_answers_validate(mlops(), a, N_OF(a), "answers", &err));
	assert_int_equal(err.code, MAT_OK);
	assert_int_equal(err.n_violations, 0);
	/* No answers at all is valid too. */
	assert_true(mat_answers_validate(mlops(), NULL, 0, "answers", &err));
	assert_true(mat_answers_validate(mlops(), a, N_OF(a), "answers", NULL));
}

/* mat_answers_validate_status gives mat_answers_to_status's statuses from its own lookups: every
 * subset of the catalog in a shuffled order, each practice with each status, against the
 * separate function; and nothing is written when the answers are invalid. */
static void test_mat_answers_validate_status_matches_to_status(void **state)
{
	const struct mat_model *m = mlops();
	struct mat_answer a[MAT_MAX_PRACTICES];
	enum mat_status got[MAT_MAX_PRACTICES], want[MAT_MAX_PRACTICES];
	uint32_t x = 12345;
	struct mat_error err;

	for (int round = 0; round < 2000; round++) {
		size_t n = 0;
		for (size_t p = 0; p < m->n_practices; p++) {
			x = x * 1103515245u + 12345u;
			if ((x >> 16) % 3 == 0)
				continue;
			a[n++] =
			    answer(m->practices[p].id,
			           (enum mat_status)(1 + (x >> 20) % MAT_STATUS_MAX), "why", "");
		}
		for (size_t i = n; i > 1; i--) { /* shuffle: answers come in any order */
			struct mat_answer t;
			size_t j;
			x = x * 1103515245u + 12345u;
			j = (x >> 16) % i;
			t = a[i - 1];
			a[i - 1] = a[j];
			a[j] = t;
		}
		mat_error_clear(&err);
		assert_true(mat_answers_validate_status(m, a, n, "answers", got, &err));
		mat_answers_to_status(m, a, n, want);
		assert_memory_equal(got, want, m->n_practices * sizeof(got[0]));
	}
	a[0] = answer("people.no_such_practice", MAT_STATUS_IMPLEMENTED, "", "");
	for (size_t p = 0; p < m->n_practices; p++)
		got[p] = (enum mat_status)99;
	mat_error_clear(&err);
	assert_false(mat_answers_validate_status(m, a, 1, "answers", got, &err));
	for (size_t p = 0; p < m->n_practices; p++)
		assert_int_equal(got[p], 99);
}

struct violation_case {
	const char *name;
	struct mat_answer answer;
	const char *field;       /* of the first violation, index 0 */
	const char *description; /* exact */
};

static void test_mat_answers_validate_single_answer_violations(void **state)
{
	char *note_max = repeat('n', MAT_MAX_NOTE);
	char *note_over = repeat('n', MAT_MAX_NOTE + 1);
	char *uri_max = repeat('u', MAT_MAX_EVIDENCE_URI);
	char *uri_over = repeat('u', MAT_MAX_EVIDENCE_URI + 1);
	const struct violation_case cases[] = {
	    {"unknown practice", answer("people.nope", MAT_STATUS_IMPLEMENTED, "", ""),
	     "answers[0].practice_id", "unknown practice \"people.nope\" in model mlops-v1"},
	    {"empty practice", answer("", MAT_STATUS_IMPLEMENTED, "", ""), "answers[0].practice_id",
	     "must not be empty"},
	    {"NULL practice", answer(NULL, MAT_STATUS_IMPLEMENTED, "", ""),
	     "answers[0].practice_id", "must not be empty"},
	    {"invalid UTF-8 practice", answer("people.\xc3", MAT_STATUS_IMPLEMENTED, "", ""),
	     "answers[0].practice_id", "must be valid UTF-8"},
	    {"quote in practice", answer("a\"b\\c\nd", MAT_STATUS_IMPLEMENTED, "", ""),
	     "answers[0].practice_id", "unknown practice \"a\\\"b\\\\c\\x0ad\" in model mlops-v1"},
	    {"UNSPECIFIED", answer("people.regular_communication", MAT_STATUS_UNSPECIFIED, "", ""),
	     "answers[0].status",
	     "must be set: NOT_IMPLEMENTED, PARTIAL, IMPLEMENTED or NOT_APPLICABLE"},
	    {"status 5", answer("people.regular_communication", (enum mat_status)5, "", ""),
	     "answers[0].status", "unknown status 5"},
	    {"status -1", answer("people.regular_communication", (enum mat_status) - 1, "", ""),
	     "answers[0].status", "unknown status -1"},
	    {"NA without note",
	     answer("people.regular_communication", MAT_STATUS_NOT_APPLICABLE, "", ""),
	     "answers[0].note", "must give the reason when status is NOT_APPLICABLE"},
	    {"NA with NULL note",
	     answer("people.regular_communication", MAT_STATUS_NOT_APPLICABLE, NULL, ""),
	     "answers[0].note", "must give the reason when status is NOT_APPLICABLE"},
	    {"note too long",
	     answer("people.regular_communication", MAT_STATUS_IMPLEMENTED, note_over, ""),
	     "answers[0].note", "must be at most 4000 bytes (got 4001)"},
	    {"note invalid UTF-8",
	     answer("people.regular_communication", MAT_STATUS_PARTIAL, "\xed\xa0\x80", ""),
	     "answers[0].note", "must be valid UTF-8"},
	    {"evidence too long",
	     answer("people.regular_communication", MAT_STATUS_IMPLEMENTED, "", uri_over),
	     "answers[0].evidence_uri", "must be at most 2048 bytes (got 2049)"},
	    {"evidence invalid UTF-8",
	     answer("people.regular_communication", MAT_STATUS_IMPLEMENTED, "",
	            "http://x/\xc0\xaf"),
	     "answers[0].evidence_uri", "must be valid UTF-8"},
	    {"limits exactly",
	     answer("people.regular_communication", MAT_STATUS_NOT_APPLICABLE, note_max, uri_max),
	     NULL, NULL},
	};

	for (size_t i = 0; i < N_OF(cases); i++) {
		struct mat_error err;
		bool ok;

		mat_error_clear(&err);
		ok = mat_answers_validate(mlops(), &cases[i].answer, 1, "answers", &err);
		if (cases[i].field == NULL) {
			if (!ok || err.n_violations != 0)
				fail_msg("%s: unexpected violation %s", cases[i].name, err.message);
			continue;
		}
		if (ok || err.code != MAT_INVALID || err.n_violations != 1)
			fail_msg("%s: ok=%d violations=%zu", cases[i].name, ok, err.n_violations);
		assert_string_equal(err.violations[0].field, cases[i].field);
		assert_string_equal(err.violations[0].description, cases[i].description);
		assert_true(mat_utf8_valid(err.message, strlen(err.message)));
	}
	free(note_max);
	free(note_over);
	free(uri_max);
	free(uri_over);
}

static void test_mat_answers_validate_duplicate_reports_later(void **state)
{
	struct mat_answer a[] = {
	    answer("people.regular_communication", MAT_STATUS_IMPLEMENTED, "", ""),
	    answer("model_release.ab_testing", MAT_STATUS_PARTIAL, "", ""),
	    answer("people.regular_communication", MAT_STATUS_PARTIAL, "", ""),
	    answer("people.regular_communication", MAT_STATUS_PARTIAL, "", ""),
	};
	struct mat_error err;

	mat_error_clear(&err);
	assert_false(mat_answers_validate(mlops(), a, N_OF(a), "answers", &err));
	assert_int_equal(err.n_violations, 2);
	assert_string_equal(err.violations[0].field, "answers[2].practice_id");
	assert_string_equal(err.violations[0].description,
	                    "practice \"people.regular_communication\" is already answered in "
	                    "answers[0]");
	assert_string_equal(err.violations[1].field, "answers[3].practice_id");
	assert_string_equal(err.message, "answers[2].practice_id: practice "
	                                 "\"people.regular_communication\" is already answered in "
	                                 "answers[0]");
}

static void test_mat_answers_validate_reports_every_problem(void **state)
{
	struct mat_answer a[] = {
	    answer("people.regular_communication", MAT_STATUS_IMPLEMENTED, "", ""),
	    answer("nope", MAT_STATUS_UNSPECIFIED, "\xff", "\xff"),
	    answer("model_creation.managed_compute", MAT_STATUS_NOT_APPLICABLE, "", ""),
	};
	struct mat_error err;

	mat_error_clear(&err);
	assert_false(mat_answers_validate(mlops(), a, N_OF(a), "evaluate.answers", &err));
	assert_int_equal(err.n_violations, 5);
	assert_string_equal(err.violations[0].field, "evaluate.answers[1].practice_id");
	assert_string_equal(err.violations[1].field, "evaluate.answers[1].status");
	assert_string_equal(err.violations[2].field, "evaluate.answers[1].note");
	assert_string_equal(err.violations[3].field, "evaluate.answers[1].evidence_uri");
	assert_string_equal(err.violations[4].field, "evaluate.answers[2].note");
	/* A NULL prefix means "answers". */
	mat_error_clear(&err);
	assert_false(mat_answers_validate(mlops(), &a[1], 1, NULL, &err));
	assert_string_equal(err.violations[0].field, "answers[0].practice_id");
}

static void test_mat_answers_validate_long_unknown_id_is_cut(void **state)
{
	/* 200 euro signs (3 bytes each, so the 64-byte cut falls inside one): quoted back cut on a
	 * character boundary, with "...". */
	char id[601];
	struct mat_answer a;
	struct mat_error err;
	const char *d;

	for (size_t i = 0; i < 600; i += 3)
		memcpy(id + i, "\xe2\x82\xac", 3);
	id[600] = '\0';
	a = answer(id, MAT_STATUS_IMPLEMENTED, "", "");
	mat_error_clear(&err);
	assert_false(mat_answers_validate(mlops(), &a, 1, "answers", &err));
	d = err.violations[0].description;
	assert_true(mat_utf8_valid(d, strlen(d)));
	assert_non_null(strstr(d, "...\" in model mlops-v1"));
	assert_true(strncmp(d, "unknown practice \"\xe2\x82\xac", 21) == 0);
	assert_true(strlen(d) < 120);
}

static void test_mat_answers_validate_too_many_answers(void **state)
{
	size_t n = MAT_MAX_ANSWERS + 1;
	struct mat_answer *a = calloc(n, sizeof(*a));
	struct mat_error err;

	assert_non_null(a);
	for (size_t i = 0; i < n; i++)
		a[i] = answer("people.regular_communication", MAT_STATUS_IMPLEMENTED, "", "");
	mat_error_clear(&err);
	assert_false(mat_answers_validate(mlops(), a, n, "answers", &err));
	assert_int_equal(err.n_violations, 1);
	assert_string_equal(err.violations[0].field, "answers");
	assert_string_equal(err.violations[0].description,
	                    "must have at most 256 entries (got 257)");

	/* At the cap, each repeat is reported; violations beyond the error's room are dropped. */
	mat_error_clear(&err);
	assert_false(mat_answers_validate(mlops(), a, MAT_MAX_ANSWERS, "answers", &err));
	assert_int_equal(err.n_violations, MAT_MAX_VIOLATIONS);
	assert_string_equal(err.violations[0].field, "answers[1].practice_id");
	assert_non_null(strstr(err.message, "more violations omitted"));
	free(a);
}

static void test_mat_answers_to_status_maps_by_practice(void **state)
{
	const struct mat_model *m = mlops();
	enum mat_status st[30];
	struct mat_answer a[] = {
	    answer("model_release.ab_testing", MAT_STATUS_PARTIAL, "", ""),
	    answer("people.regular_communication", MAT_STATUS_IMPLEMENTED, "", ""),
	    answer("application_integration.model_monitoring", MAT_STATUS_NOT_APPLICABLE, "x", ""),
	    answer("unknown.practice", MAT_STATUS_IMPLEMENTED, "", ""),
	    answer(NULL, MAT_STATUS_IMPLEMENTED, "", ""),
	    answer("model_creation.managed_compute", (enum mat_status)9, "", ""),
	};

	for (size_t i = 0; i < 30; i++)
		st[i] = MAT_STATUS_IMPLEMENTED; /* overwritten: absent means UNSPECIFIED */
	mat_answers_to_status(m, a, N_OF(a), st);
	for (size_t i = 0; i < 30; i++) {
		enum mat_status want = MAT_STATUS_UNSPECIFIED;
		if (i == 19)
			want = MAT_STATUS_PARTIAL;
		else if (i == 0)
			want = MAT_STATUS_IMPLEMENTED;
		else if (i == 29)
			want = MAT_STATUS_NOT_APPLICABLE;
		assert_int_equal(st[i], want);
	}
	mat_answers_to_status(m, NULL, 0, st);
	for (size_t i = 0; i < 30; i++)
		assert_int_equal(st[i], MAT_STATUS_UNSPECIFIED);
}

/* ---- evidence ---- */

#define EV_NOW (INT64_C(1767225600) * 1000000) /* 2026-01-01T00:00:00Z */
#define EV_MIN (INT64_C(60) * 1000000)
#define EV_DAY (INT64_C(86400) * 1000000)

static struct mat_evidence good_evidence(void)
{
	struct mat_evidence e = {0};
	e.practice_id = (char *)"model_creation.experiment_tracking";
	e.status = MAT_STATUS_IMPLEMENTED;
	e.source = (char *)"mlflow/registry";
	e.observe_time = EV_NOW - EV_MIN;
	e.expire_time = EV_NOW + EV_DAY;
	e.uri = (char *)"https://mlflow.example/runs/1";
	e.digest = (char *)"sha256:"
	                   "0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef";
	e.note = (char *)"";
	return e;
}

/* Validates e and expects exactly one violation, on `field`. */
static void expect_evidence_violation(const struct mat_evidence *e, const char *prefix,
                                      const char *field)
{
	struct mat_error err;
	mat_error_clear(&err);
	assert_false(mat_evidence_validate(e, EV_NOW, prefix, &err));
	assert_int_equal(err.code, MAT_INVALID);
	if (err.n_violations != 1 || strcmp(err.violations[0].field, field) != 0)
		fail_msg("want one violation on %s, got %zu (first %s: %s)", field,
		         err.n_violations, err.n_violations ? err.violations[0].field : "-",
		         err.n_violations ? err.violations[0].description : "-");
}

static void test_mat_evidence_validate_accepts_good(void **state)
{
	struct mat_evidence e = good_evidence();
	struct mat_error err;
	(void)state;
	mat_error_clear(&err);
	assert_true(mat_evidence_validate(&e, EV_NOW, "evidence", &err));
	/* Optional fields empty or NULL; the edges of every window. */
	e.uri = e.digest = e.note = NULL;
	e.observe_time = EV_NOW + 5 * EV_MIN;
	e.expire_time = e.observe_time + 400 * EV_DAY;
	assert_true(mat_evidence_validate(&e, EV_NOW, "evidence", &err));
	e.expire_time = e.observe_time + 1;
	assert_true(mat_evidence_validate(&e, EV_NOW, "evidence", &err));
	assert_int_equal(err.code, MAT_OK);
}

static void test_mat_evidence_validate_each_field(void **state)
{
	char *long_uri = repeat('u', MAT_MAX_EVIDENCE_URI + 1);
	char *long_note = repeat('n', MAT_MAX_EVIDENCE_NOTE + 1);
	char long_source[130];
	struct mat_evidence e;
	(void)state;

	e = good_evidence(), e.practice_id = (char *)"";
	expect_evidence_violation(&e, "evidence", "evidence.practice_id");
	e = good_evidence(), e.practice_id = (char *)"people.no_such_practice";
	expect_evidence_violation(&e, "evidence", "evidence.practice_id");
	e = good_evidence(), e.status = MAT_STATUS_NOT_APPLICABLE;
	expect_evidence_violation(&e, "evidence", "evidence.status");
	e = good_evidence(), e.status = MAT_STATUS_UNSPECIFIED;
	expect_evidence_violation(&e, "evidence", "evidence.status");
	e = good_evidence(), e.status = (enum mat_status)9;
	expect_evidence_violation(&e, "evidence", "evidence.status");
	e = good_evidence(), e.source = (char *)"";
	expect_evidence_violation(&e, "evidence", "evidence.source");
	e = good_evidence(), e.source = (char *)"Mlflow";
	expect_evidence_violation(&e, "evidence", "evidence.source");
	e = good_evidence(), e.source = (char *)"1ci";
	expect_evidence_violation(&e, "evidence", "evidence.source");
	e = good_evidence(), e.source = (char *)"ci job";
	expect_evidence_violation(&e, "evidence", "evidence.source");
	memset(long_source, 'a', 129);
	long_source[129] = '\0';
	e = good_evidence(), e.source = long_source;
	expect_evidence_violation(&e, "evidence", "evidence.source");
	long_source[128] = '\0'; /* 128 bytes: the limit */
	e = good_evidence(), e.source = long_source;
	assert_true(mat_evidence_validate(&e, EV_NOW, "evidence", NULL));
	e = good_evidence(), e.source = (char *)"a.b_c/d-e9";
	assert_true(mat_evidence_validate(&e, EV_NOW, "evidence", NULL));
	e = good_evidence(), e.observe_time = 0;
	expect_evidence_violation(&e, "evidence", "evidence.observe_time");
	e = good_evidence(), e.observe_time = EV_NOW + 5 * EV_MIN + 1;
	expect_evidence_violation(&e, "evidence", "evidence.observe_time");
	e = good_evidence(), e.expire_time = 0;
	expect_evidence_violation(&e, "evidence", "evidence.expire_time");
	e = good_evidence(), e.expire_time = e.observe_time;
	expect_evidence_violation(&e, "evidence", "evidence.expire_time");
	e = good_evidence(), e.expire_time = e.observe_time + 400 * EV_DAY + 1;
	expect_evidence_violation(&e, "evidence", "evidence.expire_time");
	e = good_evidence(), e.uri = long_uri;
	expect_evidence_violation(&e, "evidence", "evidence.uri");
	e = good_evidence(), e.uri = (char *)"\xff";
	expect_evidence_violation(&e, "evidence", "evidence.uri");
	e = good_evidence(), e.digest = (char *)"sha256:abc";
	expect_evidence_violation(&e, "evidence", "evidence.digest");
	e = good_evidence(), e.digest = (char *)"sha256:"
	                                        "0123456789ABCDEF0123456789abcdef0123456789abcdef"
	                                        "0123456789abcdef";
	expect_evidence_violation(&e, "evidence", "evidence.digest");
	e = good_evidence(), e.digest = (char *)"md5:0123456789abcdef0123456789abcdef";
	expect_evidence_violation(&e, "evidence", "evidence.digest");
	e = good_evidence(), e.note = long_note;
	expect_evidence_violation(&e, "evidence[7]", "evidence[7].note");
	e = good_evidence(), e.note = (char *)"caf\xc3";
	expect_evidence_violation(&e, "evidence[0]", "evidence[0].note");
	free(long_uri);
	free(long_note);
}

static void test_mat_evidence_validate_reports_every_problem(void **state)
{
	struct mat_evidence e = {0};
	struct mat_error err;
	(void)state;
	mat_error_clear(&err);
	assert_false(mat_evidence_validate(&e, EV_NOW, "evidence[3]", &err));
	/* practice_id, status, source, observe_time, expire_time */
	assert_int_equal(err.n_violations, 5);
	assert_string_equal(err.violations[0].field, "evidence[3].practice_id");
	assert_string_equal(err.violations[1].field, "evidence[3].status");
	assert_string_equal(err.violations[2].field, "evidence[3].source");
	assert_string_equal(err.violations[3].field, "evidence[3].observe_time");
	assert_string_equal(err.violations[4].field, "evidence[3].expire_time");
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_mat_utf8_valid_edge_cases),
	    cmocka_unit_test(test_mat_utf8_valid_matches_reference_exhaustively),
	    cmocka_unit_test(test_mat_utf8_valid_word_path_matches_reference),
	    cmocka_unit_test(test_mat_answers_validate_status_matches_to_status),
	    cmocka_unit_test(test_mat_org_id_valid_grammar),
	    cmocka_unit_test(test_mat_label_key_valid_grammar),
	    cmocka_unit_test(test_mat_uuid_valid_forms),
	    cmocka_unit_test(test_mat_uuid_lower_canonicalises),
	    cmocka_unit_test(test_mat_check_string_limits),
	    cmocka_unit_test(test_mat_answers_validate_accepts_valid),
	    cmocka_unit_test(test_mat_answers_validate_single_answer_violations),
	    cmocka_unit_test(test_mat_answers_validate_duplicate_reports_later),
	    cmocka_unit_test(test_mat_answers_validate_reports_every_problem),
	    cmocka_unit_test(test_mat_answers_validate_long_unknown_id_is_cut),
	    cmocka_unit_test(test_mat_answers_validate_too_many_answers),
	    cmocka_unit_test(test_mat_answers_to_status_maps_by_practice),
	    cmocka_unit_test(test_mat_evidence_validate_accepts_good),
	    cmocka_unit_test(test_mat_evidence_validate_each_field),
	    cmocka_unit_test(test_mat_evidence_validate_reports_every_problem),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
