/* The proto3 JSON mapping for any protobuf-c message, in both directions, on jansson: one
 * generic converter driven by the message descriptors, so every request and response of the
 * API (and any message added later) prints and parses the same way. It knows the well-known
 * types the API uses (Timestamp, Duration, FieldMask, Empty); it does not resolve Any. */
#ifndef CTL_JSON_H
#define CTL_JSON_H

#include <jansson.h>
#include <protobuf-c/protobuf-c.h>
#include <stddef.h>
#include <stdint.h>

/* Flags for json_dumps everywhere: 16 significant digits print 0.1 as 0.1 and still read back
 * every double the API sends (its doubles are ratios, not bit patterns). */
#define CTL_JSON_DUMP_FLAGS (JSON_REAL_PRECISION(16))

/* Builds a message of type desc from its proto3 JSON form `in` (an object; field names in
 * lowerCamelCase or as declared). On success returns 0 and *out owns a new message (free with
 * protobuf_c_message_free_unpacked(*out, NULL)). On failure returns -1, *out is NULL and err
 * (size n, may be NULL) holds one line naming the field, e.g.
 * `organization.labels: expected an object`. `in` is borrowed. */
int ctl_json_to_message(const ProtobufCMessageDescriptor *desc, const json_t *in,
                        ProtobufCMessage **out, char *err, size_t n)
    __attribute__((warn_unused_result));

/* As ctl_json_to_message, from JSON text. */
int ctl_json_parse_message(const ProtobufCMessageDescriptor *desc, const char *text,
                           ProtobufCMessage **out, char *err, size_t n)
    __attribute__((warn_unused_result));

/* The proto3 JSON form of msg (borrowed): lowerCamelCase names, default values omitted,
 * 64-bit integers as strings, enums by name. Returns a new reference (json_decref), or NULL
 * when out of memory. */
json_t *ctl_json_from_message(const ProtobufCMessage *msg);

/* Standard base64 with padding; returns a malloc'd string, or NULL when out of memory. */
char *ctl_base64_encode(const uint8_t *data, size_t len);
/* Decodes standard or URL-safe base64, padded or not. On success returns 0 and *out is a
 * malloc'd buffer of *len bytes (never NULL); -1 on bad input. */
int ctl_base64_decode(const char *s, uint8_t **out, size_t *len)
    __attribute__((warn_unused_result));

/* RFC 3339 ("2026-01-02T03:04:05.5Z", any offset) to seconds and nanoseconds since the epoch.
 * Returns 0, or -1 when s is not such a time. */
int ctl_time_parse(const char *s, int64_t *seconds, int32_t *nanos)
    __attribute__((warn_unused_result));
/* RFC 3339 in UTC with "Z" and 0, 3, 6 or 9 fractional digits into buf (size >= 40). */
void ctl_time_format(int64_t seconds, int32_t nanos, char *buf, size_t n);

#endif
