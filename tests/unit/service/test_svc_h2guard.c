/* Unit tests of svc_h2guard.c: frames are built by hand, header blocks with nghttp2's HPACK
 * deflater or byte by byte where the attack needs a representation the deflater would not
 * choose. A grpc-like exchange passes at every split of the input; each abuse is found at the
 * frame that crosses its limit and not one before (so a guard without that check fails the
 * test), and the same traffic within the limits passes. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <nghttp2/nghttp2.h>
#include <stdlib.h>
#include <string.h>

#include "svc_h2guard.h"

#define PREFACE "PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n"

enum {
	T_DATA = 0x0,
	T_HEADERS = 0x1,
	T_PRIORITY = 0x2,
	T_RST_STREAM = 0x3,
	T_SETTINGS = 0x4,
	T_PUSH_PROMISE = 0x5,
	T_PING = 0x6,
	T_GOAWAY = 0x7,
	T_WINDOW_UPDATE = 0x8,
	T_CONTINUATION = 0x9,
};
enum { END_STREAM = 0x1, ACK = 0x1, END_HEADERS = 0x4, PADDED = 0x8, PRIORITY = 0x20 };

/* A growing byte string. */
struct buf {
	uint8_t *p;
	size_t n, cap;
};

static void put(struct buf *b, const void *d, size_t n)
{
	if (b->n + n > b->cap) {
		b->cap = (b->n + n) * 2 + 64;
		b->p = realloc(b->p, b->cap);
		assert_non_null(b->p);
	}
	if (n > 0)
		memcpy(b->p + b->n, d, n);
	b->n += n;
}

static void put_byte(struct buf *b, uint8_t c)
{
	put(b, &c, 1);
}

static void put_fill(struct buf *b, uint8_t c, size_t n)
{
	for (size_t i = 0; i < n; i++)
		put_byte(b, c);
}

static void buf_free(struct buf *b)
{
	free(b->p);
	memset(b, 0, sizeof(*b));
}

static void frame_header(struct buf *b, size_t len, uint8_t type, uint8_t flags, uint32_t sid)
{
	uint8_t h[9] = {
	    (uint8_t)(len >> 16), (uint8_t)(len >> 8),  (uint8_t)len,        type,        flags,
	    (uint8_t)(sid >> 24), (uint8_t)(sid >> 16), (uint8_t)(sid >> 8), (uint8_t)sid};

	put(b, h, sizeof(h));
}

static void frame(struct buf *b, uint8_t type, uint8_t flags, uint32_t sid, const void *pl,
                  size_t len)
{
	frame_header(b, len, type, flags, sid);
	put(b, pl, len);
}

static void settings(struct buf *b, uint16_t id, uint32_t v)
{
	uint8_t e[6] = {(uint8_t)(id >> 8), (uint8_t)id,       (uint8_t)(v >> 24),
	                (uint8_t)(v >> 16), (uint8_t)(v >> 8), (uint8_t)v};

	frame(b, T_SETTINGS, 0, 0, e, sizeof(e));
}

static void window_update(struct buf *b, uint32_t sid, uint32_t incr)
{
	uint8_t w[4] = {(uint8_t)(incr >> 24), (uint8_t)(incr >> 16), (uint8_t)(incr >> 8),
	                (uint8_t)incr};

	frame(b, T_WINDOW_UPDATE, 0, sid, w, 4);
}

static void rst(struct buf *b, uint32_t sid)
{
	static const uint8_t cancel[4] = {0, 0, 0, 8};

	frame(b, T_RST_STREAM, 0, sid, cancel, 4);
}

static void ping(struct buf *b, uint8_t flags)
{
	static const uint8_t opaque[8] = {1, 2, 3, 4, 5, 6, 7, 8};

	frame(b, T_PING, flags, 0, opaque, 8);
}

/* The client's preface and first SETTINGS, as grpc sends them. */
static void client_start(struct buf *b)
{
	static const uint8_t s[] = {0, 2, 0, 0, 0, 0, 0, 4, 0, 0x40, 0, 0, 0, 6, 0, 0, 0x40, 0};

	put(b, PREFACE, 24);
	frame(b, T_SETTINGS, 0, 0, s, sizeof(s));
}

#define NV(n, v)                                                                                   \
	{                                                                                          \
		(uint8_t *)(n), (uint8_t *)(v), sizeof(n) - 1, sizeof(v) - 1, NGHTTP2_NV_FLAG_NONE \
	}

/* A unary call's request headers, as grpc-c 1.51 sends them (about 200 bytes decoded). */
static const nghttp2_nv REQUEST[] = {
    NV(":scheme", "http"),
    NV(":method", "POST"),
    NV(":authority", "maturityd.internal:8443"),
    NV(":path", "/mlops.maturity.v1.OrganizationService/GetOrganization"),
    NV("te", "trailers"),
    NV("content-type", "application/grpc"),
    NV("user-agent", "grpc-c/29.0.0 (linux; chttp2)"),
    NV("grpc-accept-encoding", "identity, deflate, gzip"),
    NV("grpc-timeout", "4999m"),
};
#define NREQUEST (sizeof(REQUEST) / sizeof(REQUEST[0]))

static void hpack(struct buf *b, nghttp2_hd_deflater *d, const nghttp2_nv *nv, size_t n)
{
	size_t bound = nghttp2_hd_deflate_bound(d, nv, n);
	ssize_t rv;

	if (b->n + bound > b->cap) {
		b->cap = b->n + bound + 64;
		b->p = realloc(b->p, b->cap);
		assert_non_null(b->p);
	}
	rv = nghttp2_hd_deflate_hd(d, b->p + b->n, bound, nv, n);
	assert_true(rv > 0);
	b->n += (size_t)rv;
}

/* A HEADERS frame with a whole block. */
static void headers(struct buf *b, nghttp2_hd_deflater *d, uint32_t sid, uint8_t flags)
{
	struct buf blk = {0};

	hpack(&blk, d, REQUEST, NREQUEST);
	frame(b, T_HEADERS, flags | END_HEADERS, sid, blk.p, blk.n);
	buf_free(&blk);
}

static nghttp2_hd_deflater *deflater(void)
{
	nghttp2_hd_deflater *d = NULL;

	assert_int_equal(nghttp2_hd_deflate_new(&d, 4096), 0);
	return d;
}

/* HPACK integer (RFC 7541 5.1) with a prefix of `bits` bits under the pattern `first`. */
static void hpack_int(struct buf *b, uint8_t first, int bits, uint32_t v)
{
	uint32_t max = (1u << bits) - 1;

	if (v < max) {
		put_byte(b, (uint8_t)(first | v));
		return;
	}
	put_byte(b, (uint8_t)(first | max));
	v -= max;
	while (v >= 128) {
		put_byte(b, (uint8_t)(v % 128 + 128));
		v /= 128;
	}
	put_byte(b, (uint8_t)v);
}

/* A literal with incremental indexing, new name, no Huffman (RFC 7541 6.2.1). */
static void hpack_insert(struct buf *b, const char *name, uint8_t fill, size_t vlen)
{
	put_byte(b, 0x40);
	hpack_int(b, 0, 7, (uint32_t)strlen(name));
	put(b, name, strlen(name));
	hpack_int(b, 0, 7, (uint32_t)vlen);
	put_fill(b, fill, vlen);
}

static struct svc_h2guard_limits LIM;

static struct svc_h2guard *guard(void)
{
	struct svc_h2guard *g = svc_h2guard_new(&LIM);

	assert_non_null(g);
	return g;
}

static enum svc_h2guard_abuse verdict_of(const struct buf *b, size_t split);

/* Feeds b in pieces of `split` bytes (0: at once); every piece but the last must pass. */
static enum svc_h2guard_abuse feed(struct svc_h2guard *g, const struct buf *b, size_t split,
                                   uint64_t now_ms)
{
	enum svc_h2guard_abuse a = SVC_H2G_OK;
	size_t off = 0;

	if (split == 0)
		split = b->n;
	while (off < b->n && a == SVC_H2G_OK) {
		size_t k = b->n - off < split ? b->n - off : split;

		a = svc_h2guard_client(g, b->p + off, k, now_ms);
		off += k;
	}
	return a;
}

static void feed_server(struct svc_h2guard *g, const struct buf *b, size_t split)
{
	if (split == 0)
		split = b->n;
	for (size_t off = 0; off < b->n; off += split)
		svc_h2guard_server(g, b->p + off, b->n - off < split ? b->n - off : split);
}

/* The last-stream-id of the GOAWAY the guard would send. */
static uint32_t last_stream(const struct svc_h2guard *g)
{
	uint8_t out[64];
	size_t n = svc_h2guard_goaway(g, SVC_H2G_PROTOCOL, out, sizeof(out));

	assert_true(n >= 17);
	return (uint32_t)out[9] << 24 | (uint32_t)out[10] << 16 | (uint32_t)out[11] << 8 | out[12];
}

static int setup(void **state)
{
	(void)state;
	svc_h2guard_limits_default(&LIM, 16384);
	return 0;
}

static const size_t SPLITS[] = {1, 2, 7, 9, 100, 0};

/* The server's side of the exchange: SETTINGS, ACK, response headers, message, trailers. */
static void server_exchange(struct buf *s)
{
	nghttp2_hd_deflater *d = deflater();
	static const nghttp2_nv resp[] = {NV(":status", "200"),
	                                  NV("content-type", "application/grpc")};
	static const nghttp2_nv trail[] = {NV("grpc-status", "0")};
	struct buf blk = {0};
	uint8_t msg[60];

	settings(s, 0x4, 4194304);
	frame(s, T_SETTINGS, ACK, 0, NULL, 0);
	hpack(&blk, d, resp, 2);
	frame(s, T_HEADERS, END_HEADERS, 1, blk.p, blk.n);
	memset(msg, 0, sizeof(msg));
	frame(s, T_DATA, 0, 1, msg, sizeof(msg));
	blk.n = 0;
	hpack(&blk, d, trail, 1);
	frame(s, T_HEADERS, END_HEADERS | END_STREAM, 1, blk.p, blk.n);
	buf_free(&blk);
	nghttp2_hd_deflate_del(d);
}

static void test_normal_exchange(void **state)
{
	nghttp2_hd_deflater *d = deflater();
	struct buf c = {0}, s = {0};
	uint8_t msg[100];

	(void)state;
	memset(msg, 0x5a, sizeof(msg));
	client_start(&c);
	frame(&c, T_SETTINGS, ACK, 0, NULL, 0);
	window_update(&c, 0, 983041);
	for (uint32_t sid = 1; sid <= 5; sid += 2) { /* the later blocks use the dynamic table */
		headers(&c, d, sid, 0);
		window_update(&c, sid, 5);
		frame(&c, T_DATA, END_STREAM, sid, msg, sizeof(msg));
	}
	ping(&c, ACK);
	frame(&c, T_GOAWAY, 0, 0, "\0\0\0\0\0\0\0\0", 8);
	frame(&c, 0xfa, 0x3, 9, "unknown", 7); /* ignored (RFC 9113 5.5) */
	server_exchange(&s);
	for (size_t i = 0; i < sizeof(SPLITS) / sizeof(SPLITS[0]); i++) {
		struct svc_h2guard *g = guard();

		feed_server(g, &s, SPLITS[i]);
		assert_true(svc_h2guard_server_at_boundary(g));
		assert_int_equal(feed(g, &c, SPLITS[i], 1000), SVC_H2G_OK);
		assert_int_equal(last_stream(g), 5);
		svc_h2guard_free(g);
	}
	buf_free(&c);
	buf_free(&s);
	nghttp2_hd_deflate_del(d);
}

/* What a real grpc-c 1.51 client sent (`maturityd health` against a recorder that answered with
 * SETTINGS {HEADER_TABLE_SIZE 65536, MAX_CONCURRENT_STREAMS 100} and an ACK, nothing more):
 * preface, SETTINGS, WINDOW_UPDATE, SETTINGS ACK, a 215-byte HEADERS (literals, no Huffman),
 * WINDOW_UPDATE, DATA with END_STREAM, and after its 3 s deadline WINDOW_UPDATE, RST_STREAM. */
static const uint8_t GRPC_CLIENT[] =
    "\x50\x52\x49\x20\x2a\x20\x48\x54\x54\x50\x2f\x32\x2e\x30\x0d\x0a"
    "\x0d\x0a\x53\x4d\x0d\x0a\x0d\x0a\x00\x00\x24\x04\x00\x00\x00\x00"
    "\x00\x00\x02\x00\x00\x00\x00\x00\x03\x00\x00\x00\x00\x00\x04\x00"
    "\x3f\xff\xff\x00\x05\x00\x3f\xff\xff\x00\x06\x00\x00\x20\x00\xfe"
    "\x03\x00\x00\x00\x01\x00\x00\x00\x04\x01\x00\x00\x00\x00\x00\x00"
    "\xd7\x01\x04\x00\x00\x00\x01\x40\x05\x3a\x70\x61\x74\x68\x1c\x2f"
    "\x67\x72\x70\x63\x2e\x68\x65\x61\x6c\x74\x68\x2e\x76\x31\x2e\x48"
    "\x65\x61\x6c\x74\x68\x2f\x43\x68\x65\x63\x6b\x40\x0a\x3a\x61\x75"
    "\x74\x68\x6f\x72\x69\x74\x79\x0f\x31\x32\x37\x2e\x30\x2e\x30\x2e"
    "\x31\x3a\x34\x33\x38\x37\x35\x83\x86\x40\x0c\x63\x6f\x6e\x74\x65"
    "\x6e\x74\x2d\x74\x79\x70\x65\x10\x61\x70\x70\x6c\x69\x63\x61\x74"
    "\x69\x6f\x6e\x2f\x67\x72\x70\x63\x40\x02\x74\x65\x08\x74\x72\x61"
    "\x69\x6c\x65\x72\x73\x40\x14\x67\x72\x70\x63\x2d\x61\x63\x63\x65"
    "\x70\x74\x2d\x65\x6e\x63\x6f\x64\x69\x6e\x67\x17\x69\x64\x65\x6e"
    "\x74\x69\x74\x79\x2c\x20\x64\x65\x66\x6c\x61\x74\x65\x2c\x20\x67"
    "\x7a\x69\x70\x40\x0c\x67\x72\x70\x63\x2d\x74\x69\x6d\x65\x6f\x75"
    "\x74\x02\x33\x53\x40\x0a\x75\x73\x65\x72\x2d\x61\x67\x65\x6e\x74"
    "\x1d\x67\x72\x70\x63\x2d\x63\x2f\x32\x39\x2e\x30\x2e\x30\x20\x28"
    "\x6c\x69\x6e\x75\x78\x3b\x20\x63\x68\x74\x74\x70\x32\x29\x00\x00"
    "\x04\x08\x00\x00\x00\x00\x01\x00\x00\x00\x05\x00\x00\x05\x00\x01"
    "\x00\x00\x00\x01\x00\x00\x00\x00\x00\x00\x00\x04\x08\x00\x00\x00"
    "\x00\x00\x00\x3f\x00\x05\x00\x00\x04\x03\x00\x00\x00\x00\x01\x00"
    "\x00\x00\x08";

static void test_grpc_capture(void **state)
{
	struct buf c = {0}, s = {0};

	(void)state;
	put(&c, GRPC_CLIENT, sizeof(GRPC_CLIENT) - 1);
	frame(&s, T_SETTINGS, 0, 0, "\0\x1\0\1\0\0\0\x3\0\0\0\x64", 12);
	frame(&s, T_SETTINGS, ACK, 0, NULL, 0);
	for (size_t i = 0; i < sizeof(SPLITS) / sizeof(SPLITS[0]); i++) {
		struct svc_h2guard *g = guard();

		feed_server(g, &s, SPLITS[i]);
		assert_int_equal(feed(g, &c, SPLITS[i], 0), SVC_H2G_OK);
		assert_int_equal(last_stream(g), 1);
		svc_h2guard_free(g);
	}
	buf_free(&c);
	buf_free(&s);
}

/* n HEADERS + RST_STREAM pairs on new streams, `gap_ms` apart; returns the verdict and the
 * pair it came at in *at. */
static enum svc_h2guard_abuse resets(int n, uint64_t gap_ms, uint8_t hflags, int *at)
{
	nghttp2_hd_deflater *d = deflater();
	struct svc_h2guard *g = guard();
	struct buf b = {0};
	enum svc_h2guard_abuse a;
	uint64_t now = 5000;

	client_start(&b);
	frame(&b, T_SETTINGS, ACK, 0, NULL, 0);
	a = feed(g, &b, 0, now);
	*at = -1;
	for (int i = 0; i < n && a == SVC_H2G_OK; i++) {
		b.n = 0;
		headers(&b, d, 2 * (uint32_t)i + 1, hflags);
		rst(&b, 2 * (uint32_t)i + 1);
		a = feed(g, &b, 0, now);
		if (a != SVC_H2G_OK)
			*at = i;
		now += gap_ms;
	}
	svc_h2guard_free(g);
	buf_free(&b);
	nghttp2_hd_deflate_del(d);
	return a;
}

static void test_rapid_reset(void **state)
{
	int at;

	(void)state;
	/* All at once: the burst (200) passes, the 201st reset is one too many. */
	assert_int_equal(resets(1000, 0, 0, &at), SVC_H2G_RAPID_RESET);
	assert_int_equal(at, 200);
	/* The same with END_STREAM (a request sent whole, then cancelled). */
	assert_int_equal(resets(1000, 0, END_STREAM, &at), SVC_H2G_RAPID_RESET);
	assert_int_equal(at, 200);
	/* 1 ms apart: 0.1 token back per reset, so the burst lasts 222 resets. */
	assert_int_equal(resets(1000, 1, 0, &at), SVC_H2G_RAPID_RESET);
	assert_int_equal(at, 222);
	/* 10 ms apart is exactly the refill (100/s): never empties. */
	assert_int_equal(resets(1000, 10, END_STREAM, &at), SVC_H2G_OK);
	assert_int_equal(resets(1000, 20, 0, &at), SVC_H2G_OK);
}

/* The bucket's arithmetic, to the millisecond: empty at t, one token back 10 ms later (100/s),
 * not 9 ms later; a clock that stands still refills nothing, one that goes back neither. */
static void test_bucket_refill(void **state)
{
	struct buf b = {0}, r = {0};

	(void)state;
	client_start(&b);
	rst(&r, 1);
	for (uint64_t wait = 9; wait <= 10; wait++) {
		struct svc_h2guard *g = guard();

		assert_int_equal(feed(g, &b, 0, 100000), SVC_H2G_OK);
		for (int i = 0; i < 200; i++)
			assert_int_equal(feed(g, &r, 0, 100000), SVC_H2G_OK);
		if (wait == 10)
			assert_int_equal(feed(g, &r, 0, 100000 + wait), SVC_H2G_OK);
		assert_int_equal(feed(g, &r, 0, 100000 + wait), SVC_H2G_RAPID_RESET);
		svc_h2guard_free(g);
	}
	{ /* a clock that goes back refills nothing */
		struct svc_h2guard *g = guard();

		assert_int_equal(feed(g, &b, 0, 100000), SVC_H2G_OK);
		for (int i = 0; i < 200; i++)
			assert_int_equal(feed(g, &r, 0, 100000), SVC_H2G_OK);
		assert_int_equal(feed(g, &r, 0, 50000), SVC_H2G_RAPID_RESET);
		svc_h2guard_free(g);
	}
	{ /* a day idle refills the burst, no more (and does not overflow) */
		struct svc_h2guard *g = guard();

		assert_int_equal(feed(g, &b, 0, 100000), SVC_H2G_OK);
		for (int i = 0; i < 200; i++)
			assert_int_equal(feed(g, &r, 0, 100000), SVC_H2G_OK);
		for (int i = 0; i < 200; i++)
			assert_int_equal(feed(g, &r, 0, 86400000ull * 365 * 1000), SVC_H2G_OK);
		assert_int_equal(feed(g, &r, 0, 86400000ull * 365 * 1000), SVC_H2G_RAPID_RESET);
		svc_h2guard_free(g);
	}
	buf_free(&b);
	buf_free(&r);
}

/* One HEADERS without END_HEADERS, then CONTINUATIONs of 16 KiB each. The block is nothing but
 * table size updates (0x20, legal and endlessly repeatable at a block's start), so it decodes
 * to no header at all: only the raw count can stop it. */
static void test_continuation_flood(void **state)
{
	struct svc_h2guard *g = guard();
	struct buf b = {0}, f = {0};

	(void)state;
	assert_int_equal(LIM.header_block_bytes, 65536);
	client_start(&b);
	put_fill(&f, 0x20, 16384);
	frame(&b, T_HEADERS, 0, 1, f.p, f.n);
	for (int i = 0; i < 3; i++) /* 64 KiB in all: at the limit, not over */
		frame(&b, T_CONTINUATION, 0, 1, f.p, f.n);
	assert_int_equal(feed(g, &b, 0, 0), SVC_H2G_OK);
	b.n = 0;
	frame_header(&b, 1, T_CONTINUATION, 0, 1); /* refused on its header */
	assert_int_equal(feed(g, &b, 0, 0), SVC_H2G_HEADER_BLOCK);
	svc_h2guard_free(g);

	/* The same block ended at the limit passes, and the next one counts from zero. */
	g = guard();
	b.n = 0;
	client_start(&b);
	frame(&b, T_HEADERS, 0, 1, f.p, f.n);
	for (int i = 0; i < 3; i++)
		frame(&b, T_CONTINUATION, i == 2 ? END_HEADERS : 0, 1, f.p, f.n);
	frame(&b, T_HEADERS, 0, 3, f.p, f.n);
	for (int i = 0; i < 3; i++)
		frame(&b, T_CONTINUATION, i == 2 ? END_HEADERS : 0, 3, f.p, f.n);
	assert_int_equal(feed(g, &b, 0, 0), SVC_H2G_OK);
	svc_h2guard_free(g);
	buf_free(&b);
	buf_free(&f);
}

/* A 4 KiB header (as large as the default table holds) inserted into the dynamic table, then
 * referenced by its index (one byte each): a small block that decodes to far more than the limit.
 * Before any SETTINGS ACK (grpc 1.51's own limit does not apply yet) and with no SETTINGS at all.
 */
static void test_hpack_bomb(void **state)
{
	struct buf blk = {0}, b = {0};

	(void)state;
	hpack_insert(&blk, "x-bomb", 'b', 4000); /* 4038 bytes in a table of 4096 */
	for (int i = 0; i < 10; i++)             /* 11 x 4038 = 43 KiB: under 64 KiB */
		put_byte(&blk, 0x80 | 62);
	for (int with_settings = 0; with_settings <= 1; with_settings++) {
		struct svc_h2guard *g = guard();

		b.n = 0;
		if (with_settings)
			client_start(&b);
		else
			put(&b, PREFACE, 24);
		frame(&b, T_HEADERS, END_HEADERS, 1, blk.p, blk.n);
		assert_int_equal(feed(g, &b, 0, 0), SVC_H2G_OK);
		/* The next block: 100 references, 100 bytes, 394 KiB decoded. */
		b.n = 0;
		frame_header(&b, 100, T_HEADERS, END_HEADERS, 3);
		put_fill(&b, 0x80 | 62, 100);
		assert_int_equal(feed(g, &b, 0, 0), SVC_H2G_HEADER_LIST);
		svc_h2guard_free(g);
	}
	/* The same bomb in one block, fed a byte at a time. */
	{
		struct svc_h2guard *g = guard();

		put_fill(&blk, 0x80 | 62, 90);
		b.n = 0;
		client_start(&b);
		frame(&b, T_HEADERS, END_HEADERS, 1, blk.p, blk.n);
		assert_int_equal(feed(g, &b, 1, 0), SVC_H2G_HEADER_LIST);
		svc_h2guard_free(g);
	}
	buf_free(&blk);
	buf_free(&b);
}

/* The decoded size is RFC 7541's: name + value + 32 per header, and the limit is inclusive. */
static void test_header_list_exact(void **state)
{
	struct svc_h2guard_limits saved = LIM;
	struct buf blk = {0}, b = {0};

	(void)state;
	LIM.header_list_bytes = 29 * 34;
	for (int i = 0; i < 29; i++) /* 29 x (1 + 1 + 32) = the limit; 58 without the 32s */
		put(&blk, "\x00\x01x\x01y", 5);
	client_start(&b);
	frame(&b, T_HEADERS, END_HEADERS, 1, blk.p, blk.n);
	assert_int_equal(verdict_of(&b, 0), SVC_H2G_OK);
	b.n = 0;
	put(&blk, "\x00\x01x\x00", 4); /* one header of 33 more */
	client_start(&b);
	frame(&b, T_HEADERS, END_HEADERS, 1, blk.p, blk.n);
	assert_int_equal(verdict_of(&b, 0), SVC_H2G_HEADER_LIST);
	LIM = saved;
	buf_free(&blk);
	buf_free(&b);
}

/* The server allows a 64 KiB table: the client may resize to it, and an 8 KiB entry (evicted at
 * once from a 4 KiB table) stays referable. Without the server's word, the update is refused. */
static void client_table_64k(struct buf *b)
{
	struct buf blk = {0};

	client_start(b);
	frame(b, T_SETTINGS, ACK, 0, NULL, 0);
	hpack_int(&blk, 0x20, 5, 65536);
	hpack_insert(&blk, "x-big", 'v', 8000);
	frame(b, T_HEADERS, END_HEADERS, 1, blk.p, blk.n);
	blk.n = 0;
	put_byte(&blk, 0x80 | 62);
	frame(b, T_HEADERS, END_HEADERS, 3, blk.p, blk.n);
	buf_free(&blk);
}

static void test_table_size(void **state)
{
	struct buf c = {0}, s = {0};

	(void)state;
	client_table_64k(&c);
	frame(&s, T_SETTINGS, 0, 0, "\0\x4\0\0\0\0", 6); /* more entries, split oddly below */
	settings(&s, 0x1, 65536);
	frame(&s, T_SETTINGS, ACK, 0, NULL, 0);
	for (size_t i = 0; i < sizeof(SPLITS) / sizeof(SPLITS[0]); i++) {
		struct svc_h2guard *g = guard();

		feed_server(g, &s, SPLITS[i]);
		assert_int_equal(feed(g, &c, SPLITS[i], 0), SVC_H2G_OK);
		svc_h2guard_free(g);
	}
	{
		struct svc_h2guard *g = guard();

		assert_int_equal(feed(g, &c, 0, 0), SVC_H2G_PROTOCOL);
		svc_h2guard_free(g);
	}
	{ /* A SETTINGS ACK with the same bytes says nothing; nor does a larger value elsewhere. */
		struct svc_h2guard *g = guard();

		s.n = 0;
		frame(&s, T_SETTINGS, ACK, 0, "\0\x1\0\1\0\0", 6);
		settings(&s, 0x3, 65536);
		feed_server(g, &s, 0);
		assert_int_equal(feed(g, &c, 0, 0), SVC_H2G_PROTOCOL);
		svc_h2guard_free(g);
	}
	{ /* The server lowers the table again: the client may not have read that yet and still
	   * refer to the large entry (grpc enforces the smaller size itself once acknowledged). */
		struct svc_h2guard *g = guard();
		struct buf more = {0};

		s.n = 0;
		settings(&s, 0x1, 65536);
		feed_server(g, &s, 0);
		assert_int_equal(feed(g, &c, 0, 0), SVC_H2G_OK);
		s.n = 0;
		settings(&s, 0x1, 1024);
		feed_server(g, &s, 0);
		frame(&more, T_HEADERS, END_HEADERS, 5, "\xbe", 1);
		assert_int_equal(feed(g, &more, 0, 0), SVC_H2G_OK);
		svc_h2guard_free(g);
		buf_free(&more);
	}
	{ /* The server's SETTINGS arrives while the client is inside a header block: applied
	   * after it (nghttp2 refuses a change inside one). */
		struct svc_h2guard *g = guard();
		nghttp2_hd_deflater *d = deflater();
		struct buf blk = {0};

		c.n = 0;
		client_start(&c);
		hpack(&blk, d, REQUEST, NREQUEST);
		frame(&c, T_HEADERS, 0, 1, blk.p, 10);
		assert_int_equal(feed(g, &c, 0, 0), SVC_H2G_OK);
		s.n = 0;
		settings(&s, 0x1, 65536);
		feed_server(g, &s, 0);
		c.n = 0;
		frame(&c, T_CONTINUATION, END_HEADERS, 1, blk.p + 10, blk.n - 10);
		blk.n = 0;
		hpack_int(&blk, 0x20, 5, 65536);
		hpack_insert(&blk, "x-big", 'v', 8000);
		frame(&c, T_HEADERS, END_HEADERS, 3, blk.p, blk.n);
		blk.n = 0;
		put_byte(&blk, 0x80 | 62);
		frame(&c, T_HEADERS, END_HEADERS, 5, blk.p, blk.n);
		assert_int_equal(feed(g, &c, 0, 0), SVC_H2G_OK);
		svc_h2guard_free(g);
		buf_free(&blk);
		nghttp2_hd_deflate_del(d);
	}
	buf_free(&c);
	buf_free(&s);
}

/* n frames made by add(), all at one time, after the preface and SETTINGS. */
static enum svc_h2guard_abuse flood(void (*add)(struct buf *, int), int n)
{
	struct svc_h2guard *g = guard();
	struct buf b = {0};
	enum svc_h2guard_abuse a;

	client_start(&b);
	frame(&b, T_SETTINGS, ACK, 0, NULL, 0);
	for (int i = 0; i < n; i++)
		add(&b, i);
	a = feed(g, &b, 0, 42);
	svc_h2guard_free(g);
	buf_free(&b);
	return a;
}

static void add_ping(struct buf *b, int i)
{
	ping(b, 0);
}

static void add_ping_ack(struct buf *b, int i)
{
	ping(b, ACK);
}

static void add_settings(struct buf *b, int i)
{
	settings(b, 0x4, 65535 + (uint32_t)i);
}

static void add_settings_ack(struct buf *b, int i)
{
	frame(b, T_SETTINGS, ACK, 0, NULL, 0);
}

static void test_ping_settings_floods(void **state)
{
	(void)state;
	assert_int_equal(flood(add_ping, 100), SVC_H2G_OK);
	assert_int_equal(flood(add_ping, 101), SVC_H2G_PING_FLOOD);
	assert_int_equal(flood(add_ping_ack, 10000), SVC_H2G_OK);
	/* The client's first SETTINGS counts: 19 more pass, the 20th more does not. */
	assert_int_equal(flood(add_settings, 19), SVC_H2G_OK);
	assert_int_equal(flood(add_settings, 20), SVC_H2G_SETTINGS_FLOOD);
	assert_int_equal(flood(add_settings_ack, 10000), SVC_H2G_OK);
}

static void add_empty_data(struct buf *b, int i)
{
	frame(b, T_DATA, 0, 1, NULL, 0);
}

static void add_end_stream(struct buf *b, int i)
{
	frame(b, T_DATA, END_STREAM, 1, NULL, 0);
}

static void add_data(struct buf *b, int i)
{
	frame(b, T_DATA, 0, 1, "x", 1);
}

static void add_padding_only(struct buf *b, int i)
{
	frame(b, T_DATA, PADDED, 1, "\0", 1); /* costs window: not "empty" */
}

static void add_window_0(struct buf *b, int i)
{
	window_update(b, 1, 0);
}

static void add_window_1(struct buf *b, int i)
{
	window_update(b, 1, 1);
}

static void add_priority(struct buf *b, int i)
{
	frame(b, T_PRIORITY, 0, 3, "\0\0\0\1\x10", 5);
}

/* Empty CONTINUATIONs after a HEADERS without END_HEADERS. */
static void add_empty_continuation(struct buf *b, int i)
{
	if (i == 0)
		frame(b, T_HEADERS, 0, 1, "\x82", 1);
	else
		frame(b, T_CONTINUATION, 0, 1, NULL, 0);
}

/* HEADERS whose fragment is empty (all padding). */
static void add_empty_headers(struct buf *b, int i)
{
	frame(b, T_HEADERS, END_HEADERS | PADDED, 1, "\x03\0\0\0", 4);
}

static void test_empty_frames(void **state)
{
	(void)state;
	assert_int_equal(flood(add_empty_data, 200), SVC_H2G_OK);
	assert_int_equal(flood(add_empty_data, 201), SVC_H2G_EMPTY_FRAMES);
	assert_int_equal(flood(add_end_stream, 1000), SVC_H2G_OK);
	assert_int_equal(flood(add_data, 1000), SVC_H2G_OK);
	assert_int_equal(flood(add_padding_only, 1000), SVC_H2G_OK);
	assert_int_equal(flood(add_window_0, 200), SVC_H2G_OK);
	assert_int_equal(flood(add_window_0, 201), SVC_H2G_EMPTY_FRAMES);
	assert_int_equal(flood(add_window_1, 1000), SVC_H2G_OK);
	assert_int_equal(flood(add_priority, 200), SVC_H2G_OK);
	assert_int_equal(flood(add_priority, 201), SVC_H2G_EMPTY_FRAMES);
	assert_int_equal(flood(add_empty_continuation, 201), SVC_H2G_OK);
	assert_int_equal(flood(add_empty_continuation, 202), SVC_H2G_EMPTY_FRAMES);
	assert_int_equal(flood(add_empty_headers, 200), SVC_H2G_OK);
	assert_int_equal(flood(add_empty_headers, 201), SVC_H2G_EMPTY_FRAMES);
}

static enum svc_h2guard_abuse verdict_of(const struct buf *b, size_t split)
{
	struct svc_h2guard *g = guard();
	enum svc_h2guard_abuse a = feed(g, b, split, 0);

	svc_h2guard_free(g);
	return a;
}

static void test_bad_preface(void **state)
{
	struct buf b = {0};

	(void)state;
	put(&b, "GET / HTTP/1.1\r\nHost: x\r\n\r\n", 27);
	assert_int_equal(verdict_of(&b, 1), SVC_H2G_PROTOCOL);
	assert_int_equal(verdict_of(&b, 0), SVC_H2G_PROTOCOL);
	b.n = 0;
	put(&b, PREFACE, 23);
	put_byte(&b, '\t'); /* the very last byte wrong */
	assert_int_equal(verdict_of(&b, 1), SVC_H2G_PROTOCOL);
	assert_int_equal(verdict_of(&b, 0), SVC_H2G_PROTOCOL);
	b.n = 0; /* a server's first frame instead of a client's preface */
	settings(&b, 0x3, 100);
	assert_int_equal(verdict_of(&b, 0), SVC_H2G_PROTOCOL);
	b.n = 0; /* a preface cut short is no verdict yet */
	put(&b, PREFACE, 20);
	assert_int_equal(verdict_of(&b, 1), SVC_H2G_OK);
	buf_free(&b);
}

static void test_out_of_place(void **state)
{
	struct buf b = {0};

	(void)state;
	/* CONTINUATION without a HEADERS */
	client_start(&b);
	frame(&b, T_CONTINUATION, END_HEADERS, 1, "\x82", 1);
	assert_int_equal(verdict_of(&b, 0), SVC_H2G_PROTOCOL);
	/* after a HEADERS that ended its block */
	b.n = 0;
	client_start(&b);
	frame(&b, T_HEADERS, END_HEADERS, 1, "\x82", 1);
	frame(&b, T_CONTINUATION, END_HEADERS, 1, "\x82", 1);
	assert_int_equal(verdict_of(&b, 0), SVC_H2G_PROTOCOL);
	/* on another stream */
	b.n = 0;
	client_start(&b);
	frame(&b, T_HEADERS, 0, 1, "\x82", 1);
	frame(&b, T_CONTINUATION, END_HEADERS, 3, "\x82", 1);
	assert_int_equal(verdict_of(&b, 0), SVC_H2G_PROTOCOL);
	/* another frame inside a block */
	b.n = 0;
	client_start(&b);
	frame(&b, T_HEADERS, 0, 1, "\x82", 1);
	ping(&b, 0);
	assert_int_equal(verdict_of(&b, 0), SVC_H2G_PROTOCOL);
	/* a second HEADERS inside a block */
	b.n = 0;
	client_start(&b);
	frame(&b, T_HEADERS, 0, 1, "\x82", 1);
	frame(&b, T_HEADERS, END_HEADERS, 3, "\x82", 1);
	assert_int_equal(verdict_of(&b, 0), SVC_H2G_PROTOCOL);
	/* a well-formed CONTINUATION passes (the checks above are not blanket refusals) */
	b.n = 0;
	client_start(&b);
	frame(&b, T_HEADERS, 0, 1, "\x82", 1);
	frame(&b, T_CONTINUATION, 0, 1, "\x86", 1);
	frame(&b, T_CONTINUATION, END_HEADERS, 1, "\x84", 1);
	ping(&b, 0);
	assert_int_equal(verdict_of(&b, 1), SVC_H2G_OK);
	/* PUSH_PROMISE from a client; HEADERS on stream 0; a new even stream */
	b.n = 0;
	client_start(&b);
	frame(&b, T_PUSH_PROMISE, END_HEADERS, 1, "\0\0\0\2\x82", 5);
	assert_int_equal(verdict_of(&b, 0), SVC_H2G_PROTOCOL);
	b.n = 0;
	client_start(&b);
	frame(&b, T_HEADERS, END_HEADERS, 0, "\x82", 1);
	assert_int_equal(verdict_of(&b, 0), SVC_H2G_PROTOCOL);
	b.n = 0;
	client_start(&b);
	frame(&b, T_HEADERS, END_HEADERS, 2, "\x82", 1);
	assert_int_equal(verdict_of(&b, 0), SVC_H2G_PROTOCOL);
	/* HPACK that does not decode: index 0, an index past the tables, a block cut short */
	b.n = 0;
	client_start(&b);
	frame(&b, T_HEADERS, END_HEADERS, 1, "\x80", 1);
	assert_int_equal(verdict_of(&b, 0), SVC_H2G_PROTOCOL);
	b.n = 0;
	client_start(&b);
	frame(&b, T_HEADERS, END_HEADERS, 1, "\xff\x10", 2);
	assert_int_equal(verdict_of(&b, 0), SVC_H2G_PROTOCOL);
	b.n = 0;
	client_start(&b);
	frame(&b, T_HEADERS, END_HEADERS, 1,
	      "\x40\x03"
	      "abc\x05"
	      "ab",
	      8);
	assert_int_equal(verdict_of(&b, 1), SVC_H2G_PROTOCOL);
	buf_free(&b);
}

/* PADDED and PRIORITY stripped right: the 5 priority bytes (0x80...: HPACK index 0) and the
 * padding (0xff...: an index past the tables) would not decode if given to the inflater, and
 * END_HEADERS must end the fragment, not the payload. */
static void test_padded_priority(void **state)
{
	nghttp2_hd_deflater *d = deflater();
	struct buf blk = {0}, b = {0};

	(void)state;
	hpack(&blk, d, REQUEST, NREQUEST);
	client_start(&b);
	for (uint8_t flags = 0; flags <= (PADDED | PRIORITY); flags += 8) {
		uint8_t pad = 10;

		if (flags != 0 && flags != PADDED && flags != PRIORITY &&
		    flags != (PADDED | PRIORITY))
			continue;
		frame_header(&b,
		             blk.n + (flags & PADDED ? 1u + pad : 0) + (flags & PRIORITY ? 5 : 0),
		             T_HEADERS, flags | END_HEADERS, 1 + 2u * flags);
		if (flags & PADDED)
			put_byte(&b, pad);
		if (flags & PRIORITY)
			put(&b, "\x80\0\0\0\xff", 5);
		put(&b, blk.p, blk.n);
		if (flags & PADDED)
			put_fill(&b, 0xff, pad);
		ping(&b, 0); /* the frame after is found where it is */
	}
	/* A padded HEADERS without END_HEADERS: its padding comes before the CONTINUATION.
	 * Payload: pad length 1, priority, fragment \x82, padding \xff. */
	frame(&b, T_HEADERS, PADDED | PRIORITY, 201, "\x01\x80\0\0\0\xff\x82\xff", 8);
	frame(&b, T_CONTINUATION, END_HEADERS, 201, "\x84\x87", 2);
	for (size_t i = 0; i < sizeof(SPLITS) / sizeof(SPLITS[0]); i++)
		assert_int_equal(verdict_of(&b, SPLITS[i]), SVC_H2G_OK);

	/* Padding longer than what remains; a frame too short for its flags. */
	b.n = 0;
	client_start(&b);
	frame(&b, T_HEADERS, END_HEADERS | PADDED, 1, "\x05\x82\x86\x84", 4);
	assert_int_equal(verdict_of(&b, 0), SVC_H2G_PROTOCOL);
	b.n = 0;
	client_start(&b);
	frame(&b, T_HEADERS, END_HEADERS | PRIORITY, 1, "\0\0\0", 3);
	assert_int_equal(verdict_of(&b, 1), SVC_H2G_PROTOCOL);
	/* Padding of exactly what remains: an empty fragment (counted as empty), no error. */
	b.n = 0;
	client_start(&b);
	frame(&b, T_HEADERS, END_HEADERS | PADDED, 1, "\x03\0\0\0", 4);
	assert_int_equal(verdict_of(&b, 1), SVC_H2G_OK);
	buf_free(&blk);
	buf_free(&b);
	nghttp2_hd_deflate_del(d);
}

static void test_goaway(void **state)
{
	static const uint8_t want[] = {0,   0,   19,  T_GOAWAY, 0,   0,   0,   0,   0,   0,
	                               0,   0,   7,   0,        0,   0,   0xb, 'r', 'a', 'p',
	                               'i', 'd', '_', 'r',      'e', 's', 'e', 't'};
	nghttp2_hd_deflater *d = deflater();
	struct svc_h2guard *g = guard();
	struct buf b = {0};
	uint8_t out[64];

	(void)state;
	assert_int_equal(last_stream(g), 0);
	client_start(&b);
	headers(&b, d, 1, END_STREAM);
	headers(&b, d, 3, 0);
	headers(&b, d, 7, 0);
	frame(&b, T_HEADERS, END_HEADERS | END_STREAM, 3, "\x88", 1); /* trailers: not new */
	rst(&b, 5);                                                   /* never opened */
	window_update(&b, 9, 100);
	assert_int_equal(feed(g, &b, 0, 0), SVC_H2G_OK);
	assert_int_equal(last_stream(g), 7);
	assert_int_equal(svc_h2guard_goaway(g, SVC_H2G_RAPID_RESET, out, sizeof(out)),
	                 sizeof(want));
	assert_memory_equal(out, want, sizeof(want));
	assert_int_equal(svc_h2guard_goaway(g, SVC_H2G_RAPID_RESET, out, sizeof(want) - 1), 0);
	/* every name fits the documented 64 bytes, and each is its own */
	for (int a = 0; a < SVC_H2G__COUNT; a++) {
		size_t n = svc_h2guard_goaway(g, (enum svc_h2guard_abuse)a, out, 64);
		const char *name = svc_h2guard_abuse_name((enum svc_h2guard_abuse)a);

		assert_int_equal(n, 17 + strlen(name));
		assert_memory_equal(out + 17, name, strlen(name));
		assert_int_equal(out[2], 8 + strlen(name));
		for (int o = 0; o < a; o++)
			assert_string_not_equal(name,
			                        svc_h2guard_abuse_name((enum svc_h2guard_abuse)o));
	}
	assert_string_equal(svc_h2guard_abuse_name(SVC_H2G_OK), "ok");
	assert_string_equal(svc_h2guard_abuse_name(SVC_H2G_HEADER_LIST), "header_list");
	svc_h2guard_free(g);
	buf_free(&b);
	nghttp2_hd_deflate_del(d);
}

/* The server's frame boundaries, byte by byte: at a boundary exactly after each frame's last
 * byte (and after a header with no payload), never inside. */
static void test_server_boundary(void **state)
{
	struct buf s = {0};
	size_t ends[16], nends = 0;
	uint8_t big[70000];

	(void)state;
	memset(big, 0, sizeof(big));
	server_exchange(&s);
	ends[nends++] = s.n;
	frame(&s, T_DATA, 0, 1, big, sizeof(big)); /* over 16 bits of length */
	ends[nends++] = s.n;
	frame(&s, T_SETTINGS, ACK, 0, NULL, 0);
	ends[nends++] = s.n;
	ping(&s, ACK);
	ends[nends++] = s.n;
	for (size_t split = 1; split <= 10; split += 3) {
		struct svc_h2guard *g = guard();
		size_t e = 0;

		assert_true(svc_h2guard_server_at_boundary(g));
		for (size_t off = 0; off < s.n; off += split) {
			size_t k = s.n - off < split ? s.n - off : split;

			svc_h2guard_server(g, s.p + off, k);
			while (e < nends && ends[e] < off + k)
				e++;
			if (e < nends && ends[e] == off + k)
				assert_true(svc_h2guard_server_at_boundary(g));
			else if (off + k > ends[0]) /* past the first mark: inside a known frame */
				assert_false(svc_h2guard_server_at_boundary(g));
		}
		assert_true(svc_h2guard_server_at_boundary(g));
		svc_h2guard_free(g);
	}
	{ /* inside a frame header, and inside a payload */
		struct svc_h2guard *g = guard();

		svc_h2guard_server(g, s.p, 4);
		assert_false(svc_h2guard_server_at_boundary(g));
		svc_h2guard_server(g, s.p + 4, 6);
		assert_false(svc_h2guard_server_at_boundary(g));
		svc_h2guard_server(g, s.p + 10, 5);
		assert_true(
		    svc_h2guard_server_at_boundary(g)); /* SETTINGS of one entry: 15 bytes */
		svc_h2guard_free(g);
	}
	buf_free(&s);
}

static void test_sticky(void **state)
{
	nghttp2_hd_deflater *d = deflater();
	struct svc_h2guard *g = guard();
	struct buf b = {0}, ok = {0};

	(void)state;
	put(&b, "PRI * HTTP/1.1", 14);
	assert_int_equal(feed(g, &b, 0, 0), SVC_H2G_PROTOCOL);
	client_start(&ok);
	headers(&ok, d, 1, 0);
	assert_int_equal(feed(g, &ok, 0, 0), SVC_H2G_PROTOCOL);
	assert_int_equal(svc_h2guard_client(g, NULL, 0, 0), SVC_H2G_PROTOCOL);
	assert_int_equal(last_stream(g), 0); /* read nothing after the verdict */
	/* The server's side goes on: the door needs its boundaries to send GOAWAY. */
	b.n = 0;
	ping(&b, ACK);
	svc_h2guard_server(g, b.p, 5);
	assert_false(svc_h2guard_server_at_boundary(g));
	svc_h2guard_server(g, b.p + 5, b.n - 5);
	assert_true(svc_h2guard_server_at_boundary(g));
	svc_h2guard_free(g);

	/* A rate verdict does not wear off with time either. */
	g = guard();
	b.n = 0;
	client_start(&b);
	for (int i = 0; i < 101; i++)
		ping(&b, 0);
	assert_int_equal(feed(g, &b, 0, 0), SVC_H2G_PING_FLOOD);
	b.n = 0;
	ping(&b, 0);
	assert_int_equal(feed(g, &b, 0, 3600 * 1000), SVC_H2G_PING_FLOOD);
	svc_h2guard_free(g);
	svc_h2guard_free(NULL);
	buf_free(&b);
	buf_free(&ok);
	nghttp2_hd_deflate_del(d);
}

static void test_limits_default(void **state)
{
	struct svc_h2guard_limits l;

	(void)state;
	svc_h2guard_limits_default(&l, 16384);
	assert_int_equal(l.header_block_bytes, 65536);
	assert_int_equal(l.header_list_bytes, 65536);
	svc_h2guard_limits_default(&l, 1024);
	assert_int_equal(l.header_block_bytes, 65536);
	svc_h2guard_limits_default(&l, 1024 * 1024);
	assert_int_equal(l.header_block_bytes, 4 * 1024 * 1024);
	assert_int_equal(l.header_list_bytes, 4 * 1024 * 1024);
	svc_h2guard_limits_default(&l, UINT32_MAX);
	assert_int_equal(l.header_block_bytes, UINT32_MAX);
	assert_int_equal(l.resets_burst, 200);
	assert_int_equal(l.resets_per_s, 100);
	assert_int_equal(l.pings_burst, 100);
	assert_int_equal(l.pings_per_s, 50);
	assert_int_equal(l.settings_burst, 20);
	assert_int_equal(l.settings_per_s, 5);
	assert_int_equal(l.empty_burst, 200);
	assert_int_equal(l.empty_per_s, 100);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_normal_exchange),      cmocka_unit_test(test_grpc_capture),
	    cmocka_unit_test(test_rapid_reset),          cmocka_unit_test(test_bucket_refill),
	    cmocka_unit_test(test_continuation_flood),   cmocka_unit_test(test_hpack_bomb),
	    cmocka_unit_test(test_header_list_exact),    cmocka_unit_test(test_table_size),
	    cmocka_unit_test(test_ping_settings_floods), cmocka_unit_test(test_empty_frames),
	    cmocka_unit_test(test_bad_preface),          cmocka_unit_test(test_out_of_place),
	    cmocka_unit_test(test_padded_priority),      cmocka_unit_test(test_goaway),
	    cmocka_unit_test(test_server_boundary),      cmocka_unit_test(test_sticky),
	    cmocka_unit_test(test_limits_default),
	};
	return cmocka_run_group_tests(tests, setup, NULL);
}
