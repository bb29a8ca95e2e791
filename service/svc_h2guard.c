/* The HTTP/2 frame guard (svc_h2guard.h): two incremental parsers, one per direction, that never
 * copy a payload they do not have to read. The client's side reads the preface, then frame
 * headers (9 bytes, assembled only when a read splits one), the few payload bytes that matter
 * (pad length, priority, a WINDOW_UPDATE's increment) and the header blocks, which go to
 * nghttp2's HPACK inflater piece by piece as they arrive; everything else (DATA above all) is
 * skipped by counting. The server's side only counts frame lengths, and reads its SETTINGS for
 * the HPACK table size the client may use. */
#include "svc_h2guard.h"

#include <nghttp2/nghttp2.h>
#include <stdlib.h>
#include <string.h>

static const char PREFACE[] = "PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n";
#define PREFACE_LEN 24
#define FRAME_HEADER_LEN 9

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
enum {
	F_END_STREAM = 0x1, /* DATA, HEADERS */
	F_ACK = 0x1,        /* SETTINGS, PING */
	F_END_HEADERS = 0x4,
	F_PADDED = 0x8,
	F_PRIORITY = 0x20,
};
#define SETTINGS_HEADER_TABLE_SIZE 0x1
#define HPACK_DEFAULT_TABLE 4096 /* RFC 9113 6.5.2: until the server says otherwise */
#define ENHANCE_YOUR_CALM 0xb

/* Where the client's parser is: in the preface, in a frame header, in the payload bytes read
 * into pfx, in a header block fragment (to the inflater), or skipping (padding, other frames). */
enum cstate { C_PREFACE, C_HEADER, C_PREFIX, C_BLOCK, C_SKIP };

/* A token bucket in thousandths of a frame, so that a refill of per_s frames a second is exact
 * in integers: each millisecond adds per_s milli-tokens. */
struct bucket {
	uint64_t milli, cap; /* cap = burst * 1000 */
	uint64_t last_ms;    /* when milli was last refilled */
	uint32_t per_s;
};

struct svc_h2guard {
	struct svc_h2guard_limits lim;
	enum svc_h2guard_abuse verdict; /* sticky */
	nghttp2_hd_inflater *hd;
	struct bucket resets, pings, settings, empty;
	uint32_t max_stream; /* highest client stream opened, for GOAWAY */

	/* client direction */
	enum cstate cs;
	uint8_t preface_have;
	uint8_t hdr[FRAME_HEADER_LEN], hdr_have; /* a frame header split across reads */
	uint8_t type, flags;                     /* of the frame being read */
	uint32_t len;                            /* its payload length */
	uint8_t pfx[8], pfx_have, pfx_need;      /* the leading payload bytes we interpret */
	uint32_t block_left;                     /* fragment bytes still to inflate (C_BLOCK) */
	uint32_t skip_left;                      /* bytes still to skip (C_SKIP) */
	uint32_t pad_after;                      /* HEADERS padding, skipped after the fragment */
	bool in_block;                           /* a header block is open (no END_HEADERS yet) */
	bool block_final;                        /* the current fragment ends the block */
	uint32_t block_stream;
	uint64_t block_bytes, list_bytes;

	/* HPACK table size the server allows the client (SETTINGS_HEADER_TABLE_SIZE); applied to
	 * the inflater between header blocks (nghttp2 refuses it inside one). */
	uint32_t table_max;
	bool table_pending;

	/* server direction */
	uint8_t s_hdr[FRAME_HEADER_LEN], s_hdr_have;
	bool s_in_payload;            /* between a header and the end of its payload */
	bool s_settings;              /* that payload is a non-ACK SETTINGS: read its entries */
	uint32_t s_left;              /* payload bytes still to come */
	uint8_t s_ent[6], s_ent_have; /* one SETTINGS entry split across reads */
};

void svc_h2guard_limits_default(struct svc_h2guard_limits *l, uint32_t max_metadata_bytes)
{
	uint64_t block = (uint64_t)max_metadata_bytes * 4;

	if (block < 64 * 1024)
		block = 64 * 1024;
	if (block > UINT32_MAX)
		block = UINT32_MAX;
	memset(l, 0, sizeof(*l));
	l->header_block_bytes = (uint32_t)block;
	l->header_list_bytes = (uint32_t)block;
	l->resets_burst = 200;
	l->resets_per_s = 100;
	l->pings_burst = 100;
	l->pings_per_s = 50;
	l->settings_burst = 20;
	l->settings_per_s = 5;
	l->empty_burst = 200;
	l->empty_per_s = 100;
}

const char *svc_h2guard_abuse_name(enum svc_h2guard_abuse a)
{
	switch (a) {
	case SVC_H2G_OK:
		return "ok";
	case SVC_H2G_RAPID_RESET:
		return "rapid_reset";
	case SVC_H2G_HEADER_BLOCK:
		return "header_block";
	case SVC_H2G_HEADER_LIST:
		return "header_list";
	case SVC_H2G_PING_FLOOD:
		return "ping_flood";
	case SVC_H2G_SETTINGS_FLOOD:
		return "settings_flood";
	case SVC_H2G_EMPTY_FRAMES:
		return "empty_frames";
	case SVC_H2G_PROTOCOL:
		return "protocol";
	case SVC_H2G__COUNT:
		break;
	}
	return "unknown";
}

static void bucket_init(struct bucket *b, uint32_t burst, uint32_t per_s)
{
	b->cap = (uint64_t)burst * 1000;
	b->milli = b->cap;
	b->last_ms = 0;
	b->per_s = per_s;
}

/* Takes one token; false when the bucket is empty. The bucket starts full, so refilling from
 * last_ms = 0 on the first take changes nothing; a clock that goes back refills nothing. */
static bool bucket_take(struct bucket *b, uint64_t now_ms)
{
	if (now_ms > b->last_ms) {
		uint64_t elapsed = now_ms - b->last_ms, room = b->cap - b->milli;

		/* elapsed * per_s may overflow after a long idle time: compare first. */
		if (b->per_s > 0 && elapsed > room / b->per_s)
			b->milli = b->cap;
		else
			b->milli += elapsed * b->per_s;
		b->last_ms = now_ms;
	}
	if (b->milli < 1000)
		return false;
	b->milli -= 1000;
	return true;
}

struct svc_h2guard *svc_h2guard_new(const struct svc_h2guard_limits *l)
{
	struct svc_h2guard *g = calloc(1, sizeof(*g));

	if (g == NULL)
		return NULL;
	if (nghttp2_hd_inflate_new(&g->hd) != 0) {
		free(g);
		return NULL;
	}
	g->lim = *l;
	bucket_init(&g->resets, l->resets_burst, l->resets_per_s);
	bucket_init(&g->pings, l->pings_burst, l->pings_per_s);
	bucket_init(&g->settings, l->settings_burst, l->settings_per_s);
	bucket_init(&g->empty, l->empty_burst, l->empty_per_s);
	g->table_max = HPACK_DEFAULT_TABLE;
	g->cs = C_PREFACE;
	return g;
}

void svc_h2guard_free(struct svc_h2guard *g)
{
	if (g == NULL)
		return;
	nghttp2_hd_inflate_del(g->hd);
	free(g);
}

static uint32_t be24(const uint8_t *p)
{
	return (uint32_t)p[0] << 16 | (uint32_t)p[1] << 8 | p[2];
}

static uint32_t be32(const uint8_t *p)
{
	return (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 | (uint32_t)p[2] << 8 | p[3];
}

static void put32(uint8_t *p, uint32_t v)
{
	p[0] = (uint8_t)(v >> 24);
	p[1] = (uint8_t)(v >> 16);
	p[2] = (uint8_t)(v >> 8);
	p[3] = (uint8_t)v;
}

static enum svc_h2guard_abuse take(struct bucket *b, uint64_t now_ms, enum svc_h2guard_abuse a)
{
	return bucket_take(b, now_ms) ? SVC_H2G_OK : a;
}

/* A piece of a header block to the inflater. Only sizes are looked at: the name and value
 * pointers nghttp2 hands back may point into p or into its table, and are dropped at once.
 * final: this piece ends the block (the last byte of an END_HEADERS fragment, or nothing). */
static enum svc_h2guard_abuse inflate(struct svc_h2guard *g, const uint8_t *p, size_t n, bool final)
{
	for (;;) {
		nghttp2_nv nv;
		int fl = 0;
		ssize_t rv = nghttp2_hd_inflate_hd2(g->hd, &nv, &fl, p, n, final);

		if (rv < 0)
			return SVC_H2G_PROTOCOL;
		p += rv;
		n -= (size_t)rv;
		if (fl & NGHTTP2_HD_INFLATE_EMIT) {
			g->list_bytes += (uint64_t)nv.namelen + nv.valuelen + 32;
			if (g->list_bytes > g->lim.header_list_bytes)
				return SVC_H2G_HEADER_LIST;
		}
		if (fl & NGHTTP2_HD_INFLATE_FINAL) {
			nghttp2_hd_inflate_end_headers(g->hd);
			return SVC_H2G_OK;
		}
		if (!(fl & NGHTTP2_HD_INFLATE_EMIT) && (n == 0 || rv == 0))
			/* All taken, the block goes on in the next piece; or (never seen, but a
			 * loop that cannot advance must not spin) nghttp2 took nothing and said
			 * nothing. */
			return n == 0 && !final ? SVC_H2G_OK : SVC_H2G_PROTOCOL;
	}
}

/* The first piece of a header block: a new stream's HEADERS, or trailers. */
static enum svc_h2guard_abuse block_begin(struct svc_h2guard *g, uint32_t sid)
{
	if (sid == 0)
		return SVC_H2G_PROTOCOL;
	if (sid > g->max_stream) {
		if ((sid & 1) == 0) /* RFC 9113 5.1.1: client streams are odd */
			return SVC_H2G_PROTOCOL;
		g->max_stream = sid;
	}
	if (g->table_pending) {
		if (nghttp2_hd_inflate_change_table_size(g->hd, g->table_max) != 0)
			return SVC_H2G_PROTOCOL;
		g->table_pending = false;
	}
	g->in_block = true;
	g->block_stream = sid;
	g->block_bytes = 0;
	g->list_bytes = 0;
	return SVC_H2G_OK;
}

/* A complete frame header: decide how its payload is read. */
static enum svc_h2guard_abuse frame_begin(struct svc_h2guard *g, const uint8_t *h, uint64_t now_ms)
{
	uint32_t len = be24(h), sid = be32(h + 5) & 0x7fffffff;
	uint8_t type = h[3], flags = h[4];
	enum svc_h2guard_abuse a = SVC_H2G_OK;

	g->type = type;
	g->flags = flags;
	g->len = len;
	g->cs = C_SKIP;
	g->skip_left = len;
	/* RFC 9113 6.10: nothing may come between a header block's frames. */
	if (g->in_block && (type != T_CONTINUATION || sid != g->block_stream))
		return SVC_H2G_PROTOCOL;
	switch (type) {
	case T_DATA:
		if (len == 0 && !(flags & F_END_STREAM))
			a = take(&g->empty, now_ms, SVC_H2G_EMPTY_FRAMES);
		break;
	case T_HEADERS:
		if ((a = block_begin(g, sid)) != SVC_H2G_OK)
			break;
		/* fall through */
	case T_CONTINUATION:
		if (!g->in_block)
			return SVC_H2G_PROTOCOL;
		/* The whole payload (padding included) counts, and before any of it is read. */
		g->block_bytes += len;
		if (g->block_bytes > g->lim.header_block_bytes)
			return SVC_H2G_HEADER_BLOCK;
		g->block_final = (flags & F_END_HEADERS) != 0;
		g->pad_after = 0;
		g->pfx_have = 0;
		g->pfx_need = 0;
		if (type == T_HEADERS)
			g->pfx_need = (flags & F_PADDED ? 1 : 0) + (flags & F_PRIORITY ? 5 : 0);
		if (g->pfx_need > len)
			return SVC_H2G_PROTOCOL;
		if (g->pfx_need > 0) {
			g->cs = C_PREFIX;
		} else {
			if (len == 0)
				a = take(&g->empty, now_ms, SVC_H2G_EMPTY_FRAMES);
			g->block_left = len;
			g->cs = C_BLOCK;
		}
		break;
	case T_PRIORITY:
		a = take(&g->empty, now_ms, SVC_H2G_EMPTY_FRAMES);
		break;
	case T_RST_STREAM:
		a = take(&g->resets, now_ms, SVC_H2G_RAPID_RESET);
		break;
	case T_SETTINGS:
		if (!(flags & F_ACK))
			a = take(&g->settings, now_ms, SVC_H2G_SETTINGS_FLOOD);
		break;
	case T_PUSH_PROMISE:
		/* Only servers push (RFC 9113 8.4); and it would open a header block. */
		return SVC_H2G_PROTOCOL;
	case T_PING:
		if (!(flags & F_ACK))
			a = take(&g->pings, now_ms, SVC_H2G_PING_FLOOD);
		break;
	case T_WINDOW_UPDATE:
		if (len == 4) { /* any other length is grpc's FRAME_SIZE_ERROR to find */
			g->pfx_have = 0;
			g->pfx_need = 4;
			g->cs = C_PREFIX;
		}
		break;
	default: /* GOAWAY, unknown types (RFC 9113 5.5: ignored) */
		break;
	}
	return a;
}

/* The frame's leading bytes are in pfx. */
static enum svc_h2guard_abuse prefix_done(struct svc_h2guard *g, uint64_t now_ms)
{
	uint32_t rest, pad;

	if (g->type == T_WINDOW_UPDATE) {
		g->cs = C_HEADER;
		if ((be32(g->pfx) & 0x7fffffff) == 0)
			return take(&g->empty, now_ms, SVC_H2G_EMPTY_FRAMES);
		return SVC_H2G_OK;
	}
	/* HEADERS: [pad length] [stream dependency (4), weight (1)] fragment [padding] */
	rest = g->len - g->pfx_need;
	pad = g->flags & F_PADDED ? g->pfx[0] : 0;
	if (pad > rest) /* RFC 9113 6.2: padding longer than what remains */
		return SVC_H2G_PROTOCOL;
	g->block_left = rest - pad;
	g->pad_after = pad;
	g->cs = C_BLOCK;
	if (g->block_left == 0)
		return take(&g->empty, now_ms, SVC_H2G_EMPTY_FRAMES);
	return SVC_H2G_OK;
}

static enum svc_h2guard_abuse client(struct svc_h2guard *g, const uint8_t *p, size_t n,
                                     uint64_t now_ms)
{
	enum svc_h2guard_abuse a = SVC_H2G_OK;

	while (a == SVC_H2G_OK) {
		size_t k;

		switch (g->cs) {
		case C_PREFACE:
			if (n == 0)
				return a;
			k = PREFACE_LEN - g->preface_have;
			k = n < k ? n : k;
			if (memcmp(p, PREFACE + g->preface_have, k) != 0)
				return SVC_H2G_PROTOCOL;
			g->preface_have += (uint8_t)k;
			p += k;
			n -= k;
			if (g->preface_have == PREFACE_LEN)
				g->cs = C_HEADER;
			break;
		case C_HEADER:
			if (n == 0)
				return a;
			if (g->hdr_have == 0 &&
			    n >= FRAME_HEADER_LEN) { /* the usual case: no copy */
				a = frame_begin(g, p, now_ms);
				p += FRAME_HEADER_LEN;
				n -= FRAME_HEADER_LEN;
				break;
			}
			k = FRAME_HEADER_LEN - g->hdr_have;
			k = n < k ? n : k;
			memcpy(g->hdr + g->hdr_have, p, k);
			g->hdr_have += (uint8_t)k;
			p += k;
			n -= k;
			if (g->hdr_have == FRAME_HEADER_LEN) {
				g->hdr_have = 0;
				a = frame_begin(g, g->hdr, now_ms);
			}
			break;
		case C_PREFIX:
			if (n == 0)
				return a;
			k = (size_t)(g->pfx_need - g->pfx_have);
			k = n < k ? n : k;
			memcpy(g->pfx + g->pfx_have, p, k);
			g->pfx_have += (uint8_t)k;
			p += k;
			n -= k;
			if (g->pfx_have == g->pfx_need)
				a = prefix_done(g, now_ms);
			break;
		case C_BLOCK: {
			bool last, final;

			k = n < g->block_left ? n : g->block_left;
			last = k == g->block_left;
			final = last && g->block_final;
			if (k > 0 || final)
				a = inflate(g, p, k, final);
			p += k;
			n -= k;
			g->block_left -= (uint32_t)k;
			if (!last)
				return a; /* n == 0: the fragment goes on in the next read */
			if (final)
				g->in_block = false;
			g->skip_left = g->pad_after;
			g->cs = C_SKIP;
			break;
		}
		case C_SKIP:
			k = n < g->skip_left ? n : g->skip_left;
			p += k;
			n -= k;
			g->skip_left -= (uint32_t)k;
			if (g->skip_left > 0)
				return a;
			g->cs = C_HEADER;
			break;
		}
	}
	return a;
}

enum svc_h2guard_abuse svc_h2guard_client(struct svc_h2guard *g, const uint8_t *p, size_t n,
                                          uint64_t now_ms)
{
	if (g->verdict == SVC_H2G_OK)
		g->verdict = client(g, p, n, now_ms);
	return g->verdict;
}

/* A SETTINGS entry from the server. The inflater's limit only grows: when grpc lowers it, a
 * client that has not yet read our SETTINGS may still use the old size, and nghttp2 would then
 * insist on a table size update the client cannot know it owes; grpc checks the lower size
 * itself. */
static void server_setting(struct svc_h2guard *g, const uint8_t *e)
{
	uint32_t v = be32(e + 2);

	if (((uint32_t)e[0] << 8 | e[1]) == SETTINGS_HEADER_TABLE_SIZE && v > g->table_max) {
		g->table_max = v;
		g->table_pending = true;
	}
}

void svc_h2guard_server(struct svc_h2guard *g, const uint8_t *p, size_t n)
{
	while (n > 0) {
		size_t k;

		if (!g->s_in_payload) {
			const uint8_t *h = p;

			if (g->s_hdr_have > 0 || n < FRAME_HEADER_LEN) {
				k = FRAME_HEADER_LEN - g->s_hdr_have;
				k = n < k ? n : k;
				memcpy(g->s_hdr + g->s_hdr_have, p, k);
				g->s_hdr_have += (uint8_t)k;
				p += k;
				n -= k;
				if (g->s_hdr_have < FRAME_HEADER_LEN)
					return;
				g->s_hdr_have = 0;
				h = g->s_hdr;
			} else {
				p += FRAME_HEADER_LEN;
				n -= FRAME_HEADER_LEN;
			}
			g->s_left = be24(h);
			g->s_settings = h[3] == T_SETTINGS && !(h[4] & F_ACK);
			g->s_ent_have = 0;
			g->s_in_payload = g->s_left > 0;
			continue;
		}
		k = n < g->s_left ? n : g->s_left;
		if (g->s_settings) {
			for (size_t i = 0; i < k; i++) {
				g->s_ent[g->s_ent_have++] = p[i];
				if (g->s_ent_have == sizeof(g->s_ent)) {
					server_setting(g, g->s_ent);
					g->s_ent_have = 0;
				}
			}
		}
		p += k;
		n -= k;
		g->s_left -= (uint32_t)k;
		g->s_in_payload = g->s_left > 0;
	}
}

bool svc_h2guard_server_at_boundary(const struct svc_h2guard *g)
{
	return !g->s_in_payload && g->s_hdr_have == 0;
}

size_t svc_h2guard_goaway(const struct svc_h2guard *g, enum svc_h2guard_abuse why, uint8_t *out,
                          size_t cap)
{
	const char *name = svc_h2guard_abuse_name(why);
	size_t dlen = strlen(name), len = 8 + dlen;

	if (cap < FRAME_HEADER_LEN + len)
		return 0;
	out[0] = 0;
	out[1] = (uint8_t)(len >> 8);
	out[2] = (uint8_t)len;
	out[3] = T_GOAWAY;
	out[4] = 0;
	put32(out + 5, 0);
	put32(out + 9, g != NULL ? g->max_stream & 0x7fffffff : 0);
	put32(out + 13, ENHANCE_YOUR_CALM);
	memcpy(out + 17, name, dlen);
	return FRAME_HEADER_LEN + len;
}
