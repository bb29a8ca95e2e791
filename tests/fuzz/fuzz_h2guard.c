/* libFuzzer target: the HTTP/2 frame guard (service/svc_h2guard.c) on both directions of a
 * connection. Input: one mode byte (bit 0: the client's preface is given, so that mutations
 * start past it; bit 1: tight limits, so that every verdict is within reach of small inputs),
 * then records of a 2-byte head (bit 15: server's bytes, else client's; bit 14: 37 ms pass
 * first; bits 0-13: length) and that many bytes (fewer at the end of the input).
 * Besides crashes, leaks and sanitizer reports, findings are: a second guard fed the same
 * bytes one at a time disagreeing on a verdict or a frame boundary (the guard must not depend
 * on how reads split the stream), a verdict that changes once given, and a GOAWAY that does
 * not fit the documented 64 bytes or does not say the verdict. */
#include "svc_h2guard.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#define PREFACE "PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n"

/* Both guards' GOAWAY: the same bytes, the verdict's name, within 64 bytes. */
static void check_goaway(const struct svc_h2guard *g, const struct svc_h2guard *one,
                         enum svc_h2guard_abuse a)
{
	const char *name = svc_h2guard_abuse_name(a);
	uint8_t out[64], out1[64];
	size_t n = svc_h2guard_goaway(g, a, out, sizeof(out));

	if (n != 17 + strlen(name) || out[3] != 0x7 || (out[9] & 0x80) != 0 ||
	    memcmp(out + 17, name, n - 17) != 0)
		abort();
	if (svc_h2guard_goaway(one, a, out1, sizeof(out1)) != n || memcmp(out, out1, n) != 0)
		abort();
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct svc_h2guard_limits l;
	struct svc_h2guard *g, *one;
	enum svc_h2guard_abuse a = SVC_H2G_OK, b = SVC_H2G_OK;
	uint64_t now = 1000;
	uint8_t mode;

	if (size < 1)
		return 0;
	mode = data[0];
	data++;
	size--;
	svc_h2guard_limits_default(&l, 16384);
	if (mode & 2) {
		l.header_block_bytes = 300;
		l.header_list_bytes = 400;
		l.resets_burst = l.pings_burst = l.settings_burst = l.empty_burst = 3;
		l.resets_per_s = l.pings_per_s = l.settings_per_s = l.empty_per_s = 20;
	}
	g = svc_h2guard_new(&l);
	one = svc_h2guard_new(&l);
	if (g == NULL || one == NULL)
		abort();
	if (mode & 1) {
		a = svc_h2guard_client(g, (const uint8_t *)PREFACE, 24, now);
		b = svc_h2guard_client(one, (const uint8_t *)PREFACE, 24, now);
	}
	while (size >= 2) {
		unsigned head = (unsigned)data[0] << 8 | data[1];
		size_t len = head & 0x3fff;
		enum svc_h2guard_abuse before = a;

		data += 2;
		size -= 2;
		if (len > size)
			len = size;
		if (head & 0x4000)
			now += 37;
		if (head & 0x8000) {
			svc_h2guard_server(g, data, len);
			for (size_t i = 0; i < len; i++)
				svc_h2guard_server(one, data + i, 1);
			if (svc_h2guard_server_at_boundary(g) !=
			    svc_h2guard_server_at_boundary(one))
				abort();
		} else {
			a = svc_h2guard_client(g, data, len, now);
			for (size_t i = 0; i < len && b == SVC_H2G_OK; i++)
				b = svc_h2guard_client(one, data + i, 1, now);
			if (len == 0)
				b = svc_h2guard_client(one, data, 0, now);
			if (a != b || (before != SVC_H2G_OK && a != before))
				abort();
		}
		data += len;
		size -= len;
	}
	check_goaway(g, one, a);
	svc_h2guard_free(g);
	svc_h2guard_free(one);
	return 0;
}
