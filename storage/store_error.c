/* SQLSTATE -> mat_code: the one place where PostgreSQL's error classes meet the service's error
 * model. Table first (exact codes), then classes; anything unlisted is MAT_INTERNAL, whose
 * message the service logs and never sends. Also the message helpers of every storage layer. */
#include "store_error.h"

#include <stdio.h>
#include <string.h>

static bool class_is(const char *s, const char *cls)
{
	return s[0] == cls[0] && s[1] == cls[1];
}

static bool well_formed(const char *s)
{
	return s != NULL && strlen(s) == 5;
}

enum mat_code store_sqlstate_to_code(const char *s)
{
	static const struct {
		const char *state;
		enum mat_code code;
	} exact[] = {
	    {"23505", MAT_CONFLICT},    /* unique_violation: the name is taken */
	    {"23503", MAT_NOT_FOUND},   /* foreign_key_violation: the parent does not exist */
	    {"23502", MAT_INVALID},     /* not_null_violation: a required value is missing */
	    {"23514", MAT_INVALID},     /* check_violation: a value out of its domain */
	    {"40001", MAT_ABORTED},     /* serialization_failure: concurrent change, retry */
	    {"40P01", MAT_ABORTED},     /* deadlock_detected: concurrent change, retry */
	    {"55P03", MAT_ABORTED},     /* lock_not_available (NOWAIT) */
	    {"57014", MAT_TIMEOUT},     /* query_canceled: statement_timeout or our cancel */
	    {"25006", MAT_UNAVAILABLE}, /* read_only_sql_transaction: a standby after failover */
	    {"54000", MAT_LIMIT},       /* program_limit_exceeded (e.g. index row too large) */
	    {"54001", MAT_LIMIT},       /* statement_too_complex */
	};

	if (!well_formed(s))
		return MAT_INTERNAL;
	for (size_t i = 0; i < sizeof(exact) / sizeof(exact[0]); i++) {
		if (strcmp(s, exact[i].state) == 0)
			return exact[i].code;
	}
	if (class_is(s, "08")) /* connection exception */
		return MAT_UNAVAILABLE;
	if (class_is(s, "57") && s[2] == 'P') /* 57P01..57P04: shutdown, crash, ... */
		return MAT_UNAVAILABLE;
	if (class_is(s, "53")) /* insufficient resources, too many conns */
		return MAT_UNAVAILABLE;
	if (class_is(s, "22")) /* data exception: bad value */
		return MAT_INVALID;
	return MAT_INTERNAL;
}

bool store_sqlstate_kills_connection(const char *s)
{
	if (!well_formed(s))
		return false;
	if (class_is(s, "08"))
		return true;
	if (strcmp(s, "57P01") == 0 || strcmp(s, "57P02") == 0 || strcmp(s, "57P03") == 0 ||
	    strcmp(s, "57P04") == 0)
		return true;
	return strcmp(s, "25006") == 0;
}

bool store_sqlstate_retryable(const char *s)
{
	return well_formed(s) && (strcmp(s, "40001") == 0 || strcmp(s, "40P01") == 0);
}

bool store_connect_login_refused(const char *m)
{
	static const char *const marks[] = {
	    "password authentication failed", /* 28P01 */
	    "authentication failed for user", /* 28000: peer, ident, cert, ... */
	    "no pg_hba.conf entry",           /* 28000 */
	    "pg_hba.conf rejects connection", /* 28000 */
	    "fe_sendauth: no password supplied",
	    "28P01",
	    "28000",
	};

	if (m == NULL)
		return false;
	for (size_t i = 0; i < sizeof(marks) / sizeof(marks[0]); i++)
		if (strstr(m, marks[i]) != NULL)
			return true;
	/* 28000 for an unknown role: 'role "x" does not exist'. */
	{
		const char *r = strstr(m, "role \"");
		return r != NULL && strstr(r, "\" does not exist") != NULL;
	}
}

enum mat_code store__oom(struct mat_error *err)
{
	return mat_error_set(err, MAT_INTERNAL, "out of memory");
}

/* libpq messages span lines ("...failed: ...\n\tIs the server running...?\n"): one log line
 * wants them on one line. */
void store__one_line(char *s)
{
	size_t k = 0;
	bool space = false;

	for (size_t i = 0; s[i] != '\0'; i++) {
		bool ws = s[i] == '\n' || s[i] == '\t' || s[i] == '\r' || s[i] == ' ';
		if (ws) {
			space = k > 0;
			continue;
		}
		if (space)
			s[k++] = ' ';
		space = false;
		s[k++] = s[i];
	}
	s[k] = '\0';
}

void store__line_copy(char *dst, size_t cap, const char *src)
{
	snprintf(dst, cap, "%s", src != NULL ? src : "");
	store__one_line(dst);
}
