/* The one error model of maturityd: every library reports failures as a mat_code plus a
 * mat_error carrying a message and, for MAT_INVALID, field violations. storage/ maps SQLSTATE
 * into it once; service/ maps it to a gRPC status once. Pure C, no I/O. */
#ifndef MAT_ERROR_H
#define MAT_ERROR_H

#include <stddef.h>

#if defined(__GNUC__)
#define MAT_MUSTCHECK __attribute__((warn_unused_result))
#define MAT_PRINTF(f, a) __attribute__((format(printf, f, a)))
#else
#define MAT_MUSTCHECK
#define MAT_PRINTF(f, a)
#endif

/* X(name, text): the codes, in the spirit of libuv's UV_ERRNO_MAP. */
#define MAT_ERRNO_MAP(X)                       \
	X(OK, "ok")                            \
	X(INVALID, "invalid argument")         \
	X(NOT_FOUND, "not found")              \
	X(CONFLICT, "already exists")          \
	X(PRECONDITION, "failed precondition") \
	X(ABORTED, "aborted")                  \
	X(UNAVAILABLE, "unavailable")          \
	X(TIMEOUT, "deadline exceeded")        \
	X(DENIED, "permission denied")         \
	X(UNAUTHENTICATED, "unauthenticated")  \
	X(LIMIT, "resource exhausted")         \
	X(CANCELLED, "cancelled")              \
	X(UNIMPLEMENTED, "unimplemented")      \
	X(OUT_OF_RANGE, "out of range")        \
	X(INTERNAL, "internal error")

enum mat_code {
#define MAT_X(name, text) MAT_##name,
	MAT_ERRNO_MAP(MAT_X)
#undef MAT_X
};

#define MAT_MAX_VIOLATIONS 16

/* One google.rpc.BadRequest.FieldViolation. */
struct mat_violation {
	char field[96];        /* e.g. "answers[3].practice_id" */
	char description[192]; /* what is wrong, for a human */
};

/* Per-call error: filled by whoever fails first. Caller provides the memory. */
struct mat_error {
	enum mat_code code;
	char message[320];
	size_t n_violations;
	struct mat_violation violations[MAT_MAX_VIOLATIONS];
};

/* Resets e to MAT_OK with no message and no violations. e may be NULL. */
void mat_error_clear(struct mat_error *e);

/* Sets code and a printf-style message; returns code so callers can `return mat_error_set(...)`.
 * e may be NULL (the message is dropped). */
enum mat_code mat_error_set(struct mat_error *e, enum mat_code code, const char *fmt, ...)
    MAT_PRINTF(3, 4);

/* Adds one field violation and sets code MAT_INVALID. The first violation also becomes the
 * message ("field: description"). Violations past MAT_MAX_VIOLATIONS are counted in the message
 * only. Returns MAT_INVALID. */
enum mat_code mat_error_field(struct mat_error *e, const char *field, const char *fmt, ...)
    MAT_PRINTF(3, 4);

/* "OK", "INVALID", ...: the code's name, for logs and tests. Never NULL. */
const char *mat_code_name(enum mat_code code);

#endif
