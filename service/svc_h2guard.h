/* The HTTP/2 frame guard of the front door (svc_door.c): reads a connection's plaintext in both
 * directions as HTTP/2 frames, before grpc does, and says when the client abuses the protocol
 * in ways grpc 1.51 does not stop (docs/security.md): stream resets by the thousand (Rapid
 * Reset), header blocks without end (CONTINUATION floods), header lists that decompress to
 * megabytes (HPACK bombs, also before the client acknowledged our SETTINGS), PING, SETTINGS and
 * empty-frame floods. It never changes a byte: the door forwards what it was given and, on a
 * verdict, sends GOAWAY(ENHANCE_YOUR_CALM) at a frame boundary and closes the connection.
 * Header blocks are decoded with nghttp2's HPACK inflater (sizes only; no header is kept).
 * No I/O, no clock of its own (the caller passes the time): one guard per connection, used by
 * one thread at a time. */
#ifndef SVC_H2GUARD_H
#define SVC_H2GUARD_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* What a connection may do. A rate is a token bucket: `burst` frames at once, refilled at
 * `per_s` a second. */
struct svc_h2guard_limits {
	uint32_t header_block_bytes; /* HEADERS + CONTINUATION payload of one header block (whole
	                              * payloads: padding and priority count; checked on each
	                              * frame's header, before its payload is read) */
	uint32_t header_list_bytes;  /* one block decoded: sum of name + value + 32 (RFC 7541) */
	uint32_t resets_burst, resets_per_s;     /* RST_STREAM from the client */
	uint32_t pings_burst, pings_per_s;       /* PING from the client, ACKs not counted */
	uint32_t settings_burst, settings_per_s; /* SETTINGS from the client, ACKs not counted */
	/* Frames that carry nothing: DATA without payload or END_STREAM, CONTINUATION or HEADERS
	 * fragments of length 0, WINDOW_UPDATE of 0, PRIORITY (grpc ignores them). A DATA frame of
	 * padding only is not empty: it costs the client flow-control window. */
	uint32_t empty_burst, empty_per_s;
};

/* The defaults, for a server whose largest accepted metadata is max_metadata_bytes: a block
 * may be 4 x that (min 64 KiB) raw and decoded, grpc itself refusing the calls in between
 * with a status; resets 200 at once and 100/s; pings 100 and 50/s; settings 20 and 5/s; empty
 * frames 200 and 100/s. */
void svc_h2guard_limits_default(struct svc_h2guard_limits *l, uint32_t max_metadata_bytes);

enum svc_h2guard_abuse {
	SVC_H2G_OK = 0,
	SVC_H2G_RAPID_RESET,    /* "rapid_reset" */
	SVC_H2G_HEADER_BLOCK,   /* "header_block": raw block over the limit (CONTINUATION flood) */
	SVC_H2G_HEADER_LIST,    /* "header_list": decoded list over the limit (HPACK bomb) */
	SVC_H2G_PING_FLOOD,     /* "ping_flood" */
	SVC_H2G_SETTINGS_FLOOD, /* "settings_flood" */
	SVC_H2G_EMPTY_FRAMES,   /* "empty_frames" */
	SVC_H2G_PROTOCOL,       /* "protocol": no client preface; undecodable HPACK (which
	                         * includes a header name or value over 64 KiB, nghttp2's own
	                         * limit, and a table size update above what the server allows);
	                         * a CONTINUATION out of place or another frame inside a header
	                         * block; HEADERS on stream 0 or opening an even stream; padding
	                         * longer than its frame; PUSH_PROMISE from the client */
	SVC_H2G__COUNT
};
/* The metric label above ("ok" for SVC_H2G_OK). Static string. */
const char *svc_h2guard_abuse_name(enum svc_h2guard_abuse a);

struct svc_h2guard;

/* A guard for a new connection (the client's first bytes are the preface). Copies `l`. NULL
 * when out of memory. */
struct svc_h2guard *svc_h2guard_new(const struct svc_h2guard_limits *l);
void svc_h2guard_free(struct svc_h2guard *g); /* NULL allowed */

/* The client's bytes, in order, any split. now_ms: a monotonic clock in milliseconds. Returns
 * SVC_H2G_OK or the abuse found; once not OK it stays so (later calls return it again and
 * read nothing). */
enum svc_h2guard_abuse svc_h2guard_client(struct svc_h2guard *g, const uint8_t *p, size_t n,
                                          uint64_t now_ms);

/* The server's bytes (what grpc wrote), in order, any split: the guard follows frame
 * boundaries, and the server's SETTINGS_HEADER_TABLE_SIZE (the HPACK table the client may
 * use). Give them here before the client can have read them (when the door reads them from
 * grpc, before or as it writes them out): a client's table size update is refused unless the
 * server's SETTINGS allowing it came first. The guard's table limit only grows (the largest size
 * the server ever allowed): a client may not yet have read a smaller one, and grpc enforces that
 * itself. Goes on after a verdict (the door waits for a boundary to send GOAWAY). */
void svc_h2guard_server(struct svc_h2guard *g, const uint8_t *p, size_t n);

/* Whether the server's bytes so far end between two frames (a GOAWAY may be sent now). */
bool svc_h2guard_server_at_boundary(const struct svc_h2guard *g);

/* Writes GOAWAY(ENHANCE_YOUR_CALM) with the highest client stream id seen as last-stream-id and
 * the abuse's name as debug data into out (cap >= 64); returns its length (at most 31), 0 when
 * cap is too small. The highest stream id is the highest a client HEADERS opened, the one the
 * verdict came on included. */
size_t svc_h2guard_goaway(const struct svc_h2guard *g, enum svc_h2guard_abuse why, uint8_t *out,
                          size_t cap);

#endif
