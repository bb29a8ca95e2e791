/* UUIDv7 ids (RFC 9562), generated here for assessments, transitions, role bindings and audit
 * events. Internal to storage/ and its unit tests. */
#ifndef STORE_UUID_H
#define STORE_UUID_H

#include "mat_error.h"

#include <stdbool.h>
#include <stdint.h>

#define STORE_UUID_TEXT 37 /* 36 characters and the NUL */

/* A new UUIDv7 in lower-case canonical text. RFC 9562 §6.2 method 3: the 12 bits after the
 * millisecond timestamp hold the sub-millisecond fraction, and a value never repeats or goes
 * backwards within the process (if the clock did not advance, the previous value + 1 is used),
 * so ids sort in creation order. 62 random bits from getrandom(). Thread-safe. Returns MAT_OK,
 * or MAT_INTERNAL if the kernel gives no randomness. */
enum mat_code store__uuid7(char out[STORE_UUID_TEXT]) MAT_MUSTCHECK;

/* Parses a canonical UUID (any case) into 16 bytes. False if `s` is not one. */
bool store__uuid_parse(const char *s, uint8_t out[16]);

/* Formats 16 bytes as lower-case canonical text. */
void store__uuid_format(const uint8_t in[16], char out[STORE_UUID_TEXT]);

#endif
