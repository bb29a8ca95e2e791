/* Input validation shared by every handler (docs/api.md, "Limits"): UTF-8, identifier grammars,
 * UUIDs, string limits and assessment answers. Pure functions; problems become field violations in
 * a mat_error, worded for the person who sent the request. Not authorization, not storage rules (an
 * assessment's state is checked where it is loaded). */
#include "mat_validate.h"

#include <stdint.h>
#include <stdio.h>
#include <string.h>

/* Client text quoted back in a description: cut after QUOTE_MAX bytes; the buffer also holds
 * the rest of the last character (3), one escape (4), "..." and the NUL. */
#define QUOTE_MAX 64
#define QUOTE_BUF (QUOTE_MAX + 16)

bool mat_utf8_valid(const char *str, size_t len)
{
	const unsigned char *s = (const unsigned char *)str;
	bool ok = false;
	size_t i = 0;

	if (s == NULL) {
		ok = len == 0;
		goto out;
	}
	while (i < len) {
		unsigned c = s[i];
		unsigned lo = 0x80; /* allowed range of the second byte (Unicode Table 3-7) */
		uint64_t w;

		/* Eight ASCII bytes at a time (no high bit, no NUL): notes and ids are mostly
		 * ASCII, and every request string passes here. */
		if (len - i >= 8) {
			memcpy(&w, s + i, 8);
			if (((w | ((w - 0x0101010101010101u) & ~w)) & 0x8080808080808080u) == 0) {
				i += 8;
				continue;
			}
		}
		unsigned hi = 0xBF;
		size_t need;

		if (c >= 0x01 && c <= 0x7F) {
			i++;
			continue;
		}
		if (c >= 0xC2 && c <= 0xDF) {
			need = 1;
		} else if (c >= 0xE0 && c <= 0xEF) {
			need = 2;
			if (c == 0xE0)
				lo = 0xA0; /* below is an overlong encoding */
			else if (c == 0xED)
				hi = 0x9F; /* above are the surrogates U+D800..U+DFFF */
		} else if (c >= 0xF0 && c <= 0xF4) {
			need = 3;
			if (c == 0xF0)
				lo = 0x90; /* overlong */
			else if (c == 0xF4)
				hi = 0x8F; /* above is past U+10FFFF */
		} else {
			/* NUL, a stray continuation byte, C0/C1 (always overlong) or F5..FF. */
			goto out;
		}
		if (len - i - 1 < need)
			goto out; /* truncated sequence */
		if (s[i + 1] < lo || s[i + 1] > hi)
			goto out;
		for (size_t k = 2; k <= need; k++) {
			if ((s[i + k] & 0xC0) != 0x80)
				goto out;
		}
		i += need + 1;
	}
	ok = true;
out:
	return ok;
}

static bool is_lower(char c)
{
	return c >= 'a' && c <= 'z';
}

static bool is_digit(char c)
{
	return c >= '0' && c <= '9';
}

static bool is_hex(char c)
{
	return is_digit(c) || (c >= 'a' && c <= 'f') || (c >= 'A' && c <= 'F');
}

/* [a-z] then up to max_len-1 of [a-z0-9-] (and '_' when allow_underscore), min_len..max_len. */
static bool ident_valid(const char *s, size_t min_len, size_t max_len, bool allow_underscore)
{
	bool ok = false;
	size_t i;

	if (s == NULL || !is_lower(s[0]))
		goto out;
	for (i = 1; s[i] != '\0'; i++) {
		char c = s[i];
		if (i >= max_len)
			goto out;
		if (!(is_lower(c) || is_digit(c) || c == '-' || (allow_underscore && c == '_')))
			goto out;
	}
	ok = i >= min_len;
out:
	return ok;
}

bool mat_org_id_valid(const char *s)
{
	return ident_valid(s, 2, MAT_MAX_ORG_ID, false);
}

bool mat_label_key_valid(const char *s)
{
	return ident_valid(s, 1, MAT_MAX_LABEL_KEY, true);
}

bool mat_uuid_valid(const char *s)
{
	bool ok = false;

	if (s == NULL)
		goto out;
	for (size_t i = 0; i < 36; i++) {
		bool dash = i == 8 || i == 13 || i == 18 || i == 23;
		/* The NUL of a short string fails both tests, so nothing past it is read. */
		if (dash ? s[i] != '-' : !is_hex(s[i]))
			goto out;
	}
	ok = s[36] == '\0';
out:
	return ok;
}

void mat_uuid_lower(const char *in, char out[37])
{
	size_t i;

	for (i = 0; i < 36 && in[i] != '\0'; i++) {
		char c = in[i];
		out[i] = (c >= 'A' && c <= 'Z') ? (char)(c - 'A' + 'a') : c;
	}
	out[i] = '\0';
}

bool mat_check_string(struct mat_error *err, const char *field, const char *s, size_t max,
                      bool required)
{
	size_t len = s == NULL ? 0 : strlen(s);
	bool ok = false;

	if (required && len == 0) {
		mat_error_field(err, field, "must not be empty");
		goto out;
	}
	if (len > max) {
		mat_error_field(err, field, "must be at most %zu bytes (got %zu)", max, len);
		goto out;
	}
	if (!mat_utf8_valid(s, len)) {
		mat_error_field(err, field, "must be valid UTF-8");
		goto out;
	}
	ok = true;
out:
	return ok;
}

/* Copies valid UTF-8 `s` into dst (at least QUOTE_BUF bytes) for quoting in a message: control
 * characters, '"' and '\' escaped, cut on a character boundary once QUOTE_MAX bytes are written,
 * with "...". The result stays valid UTF-8, which the google.rpc.Status it ends up in requires,
 * and short enough that the description holding it is never truncated. */
static void quote_excerpt(char dst[QUOTE_BUF], const char *s)
{
	size_t o = 0;

	for (size_t i = 0; s[i] != '\0'; i++) {
		unsigned char c = (unsigned char)s[i];
		bool starts_char = (c & 0xC0) != 0x80;

		if (starts_char && o >= QUOTE_MAX) {
			memcpy(dst + o, "...", 3);
			o += 3;
			break;
		}
		if (c < 0x20 || c == 0x7F || c == '"' || c == '\\') {
			if (c == '"' || c == '\\') {
				dst[o++] = '\\';
				dst[o++] = (char)c;
			} else {
				o += (size_t)snprintf(dst + o, QUOTE_BUF - o, "\\x%02x", c);
			}
			continue;
		}
		dst[o++] = (char)c;
	}
	dst[o] = '\0';
}

/* The path of field `name` of answer i ("answers[3].note"), in buf. Formatted only once there
 * is something to report: formatting four paths per answer up front was a third of
 * EvaluateAnswers' CPU in the profile (docs/benchmarks.md). */
static const char *answer_field(char *buf, size_t size, const char *prefix, size_t i,
                                const char *name)
{
	snprintf(buf, size, "%s[%zu].%s", prefix, i, name);
	return buf;
}

/* True when optional string s is within max bytes and valid UTF-8 (mat_check_string's test
 * without a field path: the path is only needed when it fails). */
static bool string_ok(const char *s, size_t max)
{
	size_t len = s == NULL ? 0 : strlen(s);

	return len <= max && mat_utf8_valid(s == NULL ? "" : s, len);
}

/* Checks answers[i].practice_id; returns its index in m or -1. */
static int check_practice_id(const struct mat_model *m, const struct mat_answer *a,
                             const char *prefix, size_t i, struct mat_error *err)
{
	char quoted[QUOTE_BUF];
	char field[sizeof(err->violations[0].field)];
	const char *id = a->practice_id == NULL ? "" : a->practice_id;
	size_t len = strlen(id);
	int idx = -1;

	if (len == 0) {
		mat_error_field(err, answer_field(field, sizeof(field), prefix, i, "practice_id"),
		                "must not be empty");
		goto out;
	}
	if (!mat_utf8_valid(id, len)) {
		mat_error_field(err, answer_field(field, sizeof(field), prefix, i, "practice_id"),
		                "must be valid UTF-8");
		goto out;
	}
	idx = mat_model_practice_index(m, id, len);
	if (idx < 0) {
		quote_excerpt(quoted, id);
		mat_error_field(err, answer_field(field, sizeof(field), prefix, i, "practice_id"),
		                "unknown practice \"%s\" in model %s", quoted, m->id);
	}
out:
	return idx;
}

bool mat_answers_validate(const struct mat_model *m, const struct mat_answer *answers, size_t n,
                          const char *prefix, struct mat_error *err)
{
	return mat_answers_validate_status(m, answers, n, prefix, NULL, err);
}

bool mat_answers_validate_status(const struct mat_model *m, const struct mat_answer *answers,
                                 size_t n, const char *prefix, enum mat_status *status,
                                 struct mat_error *err)
{
	/* first[p]: the answer that first named practice p, to report repeats against it. */
	size_t first[MAT_MAX_PRACTICES];
	int index_of[MAT_MAX_ANSWERS]; /* answer -> practice, once validated */
	bool seen[MAT_MAX_PRACTICES] = {false};
	char field[sizeof(err->violations[0].field)];
	bool ok = true;

	if (prefix == NULL)
		prefix = "answers";
	/* More answers than any model has practices cannot be valid; refusing them up front keeps
	 * the work (and the violation list) bounded by the cap, not by the client. */
	if (n > MAT_MAX_ANSWERS) {
		mat_error_field(err, prefix, "must have at most %d entries (got %zu)",
		                MAT_MAX_ANSWERS, n);
		ok = false;
		goto out;
	}
	for (size_t i = 0; i < n; i++) {
		const struct mat_answer *a = &answers[i];
		int idx;

		idx = check_practice_id(m, a, prefix, i, err);
		if (idx < 0) {
			ok = false;
		} else if ((size_t)idx < MAT_MAX_PRACTICES && seen[idx]) {
			mat_error_field(
			    err, answer_field(field, sizeof(field), prefix, i, "practice_id"),
			    "practice \"%s\" is already answered in %s[%zu]", m->practices[idx].id,
			    prefix, first[idx]);
			ok = false;
		} else if ((size_t)idx < MAT_MAX_PRACTICES) {
			seen[idx] = true;
			first[idx] = i;
		}
		if (idx >= 0)
			index_of[i] = idx;

		if (a->status == MAT_STATUS_UNSPECIFIED) {
			mat_error_field(err,
			                answer_field(field, sizeof(field), prefix, i, "status"),
			                "must be set: NOT_IMPLEMENTED, PARTIAL, IMPLEMENTED or "
			                "NOT_APPLICABLE");
			ok = false;
		} else if ((int)a->status < 0 || (int)a->status > MAT_STATUS_MAX) {
			mat_error_field(err,
			                answer_field(field, sizeof(field), prefix, i, "status"),
			                "unknown status %d", (int)a->status);
			ok = false;
		}

		if (!string_ok(a->note, MAT_MAX_NOTE)) {
			mat_check_string(err, answer_field(field, sizeof(field), prefix, i, "note"),
			                 a->note, MAT_MAX_NOTE, false);
			ok = false;
		} else if (a->status == MAT_STATUS_NOT_APPLICABLE &&
		           (a->note == NULL || a->note[0] == '\0')) {
			mat_error_field(err, answer_field(field, sizeof(field), prefix, i, "note"),
			                "must give the reason when status is NOT_APPLICABLE");
			ok = false;
		}

		if (!string_ok(a->evidence_uri, MAT_MAX_EVIDENCE_URI)) {
			mat_check_string(
			    err, answer_field(field, sizeof(field), prefix, i, "evidence_uri"),
			    a->evidence_uri, MAT_MAX_EVIDENCE_URI, false);
			ok = false;
		}
	}
	if (ok && status != NULL) {
		for (size_t p = 0; p < m->n_practices; p++)
			status[p] = MAT_STATUS_UNSPECIFIED;
		for (size_t i = 0; i < n; i++)
			status[index_of[i]] = answers[i].status;
	}
out:
	return ok;
}

void mat_answers_to_status(const struct mat_model *m, const struct mat_answer *answers, size_t n,
                           enum mat_status *status)
{
	for (size_t i = 0; i < m->n_practices; i++)
		status[i] = MAT_STATUS_UNSPECIFIED;
	for (size_t i = 0; i < n; i++) {
		const struct mat_answer *a = &answers[i];
		int idx;

		if (a->practice_id == NULL)
			continue;
		idx = mat_model_practice_index(m, a->practice_id, strlen(a->practice_id));
		/* Unvalidated leftovers must not turn into statuses scoring does not know. */
		if (idx < 0 || (int)a->status < 0 || (int)a->status > MAT_STATUS_MAX)
			continue;
		status[idx] = a->status;
	}
}

/* --- evidence ------------------------------------------------------------------------------- */

bool mat_evidence_source_valid(const char *s)
{
	size_t i;

	if (s == NULL || !is_lower(s[0]))
		return false;
	for (i = 1; s[i] != '\0'; i++) {
		char c = s[i];
		if (i >= MAT_MAX_EVIDENCE_SOURCE)
			return false;
		if (!(is_lower(c) || is_digit(c) || c == '.' || c == '_' || c == '/' || c == '-'))
			return false;
	}
	return true;
}

bool mat_evidence_digest_valid(const char *s)
{
	static const char prefix[] = "sha256:";
	size_t i;

	if (s == NULL || strncmp(s, prefix, sizeof(prefix) - 1) != 0)
		return false;
	s += sizeof(prefix) - 1;
	for (i = 0; s[i] != '\0'; i++) {
		if (!(is_digit(s[i]) || (s[i] >= 'a' && s[i] <= 'f')))
			return false;
	}
	return i == 64;
}

static const char *evidence_field(char *buf, size_t size, const char *prefix, const char *name)
{
	snprintf(buf, size, "%s.%s", prefix, name);
	return buf;
}

bool mat_evidence_validate(const struct mat_evidence *e, mat_time_us now, const char *prefix,
                           struct mat_error *err)
{
	const struct mat_model *m = mat_model_find("mlops-v1");
	char field[sizeof(err->violations[0].field)];
	char quoted[QUOTE_BUF];
	const char *pid = e->practice_id != NULL ? e->practice_id : "";
	const char *source = e->source != NULL ? e->source : "";
	bool ok = true;

	if (prefix == NULL)
		prefix = "evidence";
	/* Evidence belongs to the organization, not to an assessment: its practices are those of
	 * the default catalog, which every live score is computed against. */
	if (pid[0] == '\0') {
		mat_error_field(err, evidence_field(field, sizeof(field), prefix, "practice_id"),
		                "must not be empty");
		ok = false;
	} else if (!mat_utf8_valid(pid, strlen(pid))) {
		mat_error_field(err, evidence_field(field, sizeof(field), prefix, "practice_id"),
		                "must be valid UTF-8");
		ok = false;
	} else if (m == NULL || mat_model_practice_index(m, pid, strlen(pid)) < 0) {
		quote_excerpt(quoted, pid);
		mat_error_field(err, evidence_field(field, sizeof(field), prefix, "practice_id"),
		                "unknown practice \"%s\" in model mlops-v1", quoted);
		ok = false;
	}

	switch (e->status) {
	case MAT_STATUS_NOT_IMPLEMENTED:
	case MAT_STATUS_PARTIAL:
	case MAT_STATUS_IMPLEMENTED:
		break;
	case MAT_STATUS_UNSPECIFIED:
		mat_error_field(err, evidence_field(field, sizeof(field), prefix, "status"),
		                "must be set: NOT_IMPLEMENTED, PARTIAL or IMPLEMENTED");
		ok = false;
		break;
	case MAT_STATUS_NOT_APPLICABLE:
		mat_error_field(err, evidence_field(field, sizeof(field), prefix, "status"),
		                "NOT_APPLICABLE is a human judgement: answer it in an assessment");
		ok = false;
		break;
	default:
		mat_error_field(err, evidence_field(field, sizeof(field), prefix, "status"),
		                "unknown status %d", (int)e->status);
		ok = false;
		break;
	}

	if (source[0] == '\0') {
		mat_error_field(err, evidence_field(field, sizeof(field), prefix, "source"),
		                "must not be empty");
		ok = false;
	} else if (!mat_evidence_source_valid(source)) {
		mat_error_field(err, evidence_field(field, sizeof(field), prefix, "source"),
		                "must match [a-z][a-z0-9._/-]{0,127}");
		ok = false;
	}

	/* Time differences are taken in unsigned arithmetic: exact for any two ordered times, and
	 * never a signed overflow whatever a client sends. */
	if (e->observe_time == 0) {
		mat_error_field(err, evidence_field(field, sizeof(field), prefix, "observe_time"),
		                "must be set");
		ok = false;
	} else if (e->observe_time > now &&
	           (uint64_t)e->observe_time - (uint64_t)now > MAT_EVIDENCE_MAX_FUTURE_US) {
		mat_error_field(err, evidence_field(field, sizeof(field), prefix, "observe_time"),
		                "must not be more than 5 minutes in the future");
		ok = false;
	}
	if (e->expire_time == 0) {
		mat_error_field(err, evidence_field(field, sizeof(field), prefix, "expire_time"),
		                "must be set");
		ok = false;
	} else if (e->observe_time != 0 && e->expire_time <= e->observe_time) {
		mat_error_field(err, evidence_field(field, sizeof(field), prefix, "expire_time"),
		                "must be after observe_time");
		ok = false;
	} else if (e->observe_time != 0 && (uint64_t)e->expire_time - (uint64_t)e->observe_time >
	                                       MAT_EVIDENCE_MAX_LIFE_US) {
		mat_error_field(err, evidence_field(field, sizeof(field), prefix, "expire_time"),
		                "must be at most 400 days after observe_time");
		ok = false;
	}

	if (!mat_check_string(err, evidence_field(field, sizeof(field), prefix, "uri"), e->uri,
	                      MAT_MAX_EVIDENCE_URI, false))
		ok = false;
	if (e->digest != NULL && e->digest[0] != '\0' && !mat_evidence_digest_valid(e->digest)) {
		mat_error_field(err, evidence_field(field, sizeof(field), prefix, "digest"),
		                "must be \"sha256:\" and 64 lower-case hex digits");
		ok = false;
	}
	if (!mat_check_string(err, evidence_field(field, sizeof(field), prefix, "note"), e->note,
	                      MAT_MAX_EVIDENCE_NOTE, false))
		ok = false;
	return ok;
}
