/* SQLSTATE -> mat_code, mapped once, here (the one error model), and the error-message helpers
 * every layer of storage/ uses. Internal to storage/ and its unit tests; nothing outside storage/
 * sees a SQLSTATE. The bottom of storage's layers (docs/architecture.md): depends on nothing. */
#ifndef STORE_ERROR_H
#define STORE_ERROR_H

#include "mat_error.h"

#include <stdbool.h>
#include <stddef.h>

/* The mat_code for a five-character SQLSTATE (NULL or "" = a client-side libpq failure, which is
 * MAT_INTERNAL unless the connection is bad: see store__conn_lost). Pure; any thread. */
enum mat_code store_sqlstate_to_code(const char *sqlstate);

/* True for SQLSTATEs after which the connection must not be used again: class 08 (connection
 * exception), 57P01/57P02/57P03/57P04 (server shutting down, crashed, starting, database dropped)
 * and 25006 (read-only: we are talking to a standby after a failover). */
bool store_sqlstate_kills_connection(const char *sqlstate);

/* True for serialization failures and deadlocks (40001, 40P01): the transaction may be retried. */
bool store_sqlstate_retryable(const char *sqlstate);

/* True when libpq's message for a failed connect says the server refused the login itself
 * (SQLSTATE 28P01 invalid_password, 28000 invalid_authorization_specification: wrong password,
 * unknown role, no pg_hba.conf entry) or that libpq had no password to send. Waiting does not
 * fix these. libpq gives no SQLSTATE for a failed connect, so this reads its (English) message. */
bool store_connect_login_refused(const char *libpq_message);

/* Folds whitespace runs (libpq's multi-line messages) into single spaces, in place. */
void store__one_line(char *s);
/* Copies `src` (NULL = "") into dst[cap] on one line (store__one_line). */
void store__line_copy(char *dst, size_t cap, const char *src);

/* "out of memory" as MAT_INTERNAL. */
enum mat_code store__oom(struct mat_error *err);

#endif
