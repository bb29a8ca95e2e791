#!/usr/bin/python3
"""Writes the seed corpus of fuzz_h2guard (its input format is described in fuzz_h2guard.c):
a grpc-like exchange in both directions, split in odd places, and a few abuses cut short.
Header blocks are HPACK by hand (static table indexes and plain literals), so nothing beyond
python3 is needed. Usage: make_h2guard_seeds.py OUT_DIR"""
import os
import struct
import sys

PREFACE = b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n"
DATA, HEADERS, PRIORITY, RST, SETTINGS, PUSH, PING, GOAWAY, WINDOW, CONT = range(10)


def frame(t, flags, sid, payload=b""):
    return struct.pack(">I", len(payload))[1:] + bytes([t, flags]) + struct.pack(">I", sid) + payload


def settings(*kv, ack=False):
    return frame(SETTINGS, 1 if ack else 0, 0, b"".join(struct.pack(">HI", k, v) for k, v in kv))


def lit(name, value, index=True):
    """A literal with incremental indexing (or without), new name, no Huffman; short strings."""
    assert len(name) < 127 and len(value) < 127
    return bytes([0x40 if index else 0x00, len(name)]) + name + bytes([len(value)]) + value


def request(path=b"/mlops.maturity.v1.OrganizationService/GetOrganization"):
    # :method POST, :scheme http, :path, :authority, content-type, te, user-agent, grpc-timeout
    return (b"\x83\x86" + b"\x44" + bytes([len(path)]) + path + b"\x41\x17maturityd.internal:8443"
            + b"\x5f\x10application/grpc" + lit(b"te", b"trailers")
            + b"\x7a\x1dgrpc-c/29.0.0 (linux; chttp2)" + lit(b"grpc-timeout", b"4999m"))


def rec(server, data, tick=False):
    assert len(data) < 0x4000
    return struct.pack(">H", (0x8000 if server else 0) | (0x4000 if tick else 0) | len(data)) + data


def chunks(server, data, size, tick=False):
    return b"".join(rec(server, data[i:i + size], tick and i == 0) for i in range(0, len(data), size))


# What a real grpc-c 1.51 client sent (`maturityd health` against a recorder that answered with
# srv_capture): the same bytes as GRPC_CLIENT in tests/unit/service/test_svc_h2guard.c.
GRPC_CLIENT = bytes.fromhex(
    "505249202a20485454502f322e300d0a0d0a534d0d0a0d0a000024040000000000000200000000000300000000000400"
    "3fffff0005003fffff000600002000fe03000000010000000401000000000000d701040000000140053a706174681c2f"
    "677270632e6865616c74682e76312e4865616c74682f436865636b400a3a617574686f726974790f3132372e302e302e"
    "313a34333837358386400c636f6e74656e742d74797065106170706c69636174696f6e2f677270634002746508747261"
    "696c6572734014677270632d6163636570742d656e636f64696e67176964656e746974792c206465666c6174652c2067"
    "7a6970400c677270632d74696d656f7574023353400a757365722d6167656e741d677270632d632f32392e302e302028"
    "6c696e75783b206368747470322900000408000000000100000005000005000100000001000000000000000408000000"
    "0000003f000500000403000000000100000008")
srv_capture = settings((1, 65536), (3, 100)) + settings(ack=True)

MSG = b"\x00\x00\x00\x00\x14\x0a\x12organizations/acme"
srv_hello = settings((4, 4194304), (1, 65536), (6, 16384)) + settings(ack=True)
cli_hello = settings((2, 0), (4, 4194304), (6, 16384)) + settings(ack=True) + frame(WINDOW, 0, 0, struct.pack(">I", 983041))
call = frame(HEADERS, 4, 1, request()) + frame(DATA, 1, 1, MSG)
resp = (frame(HEADERS, 4, 1, b"\x88\x5f\x10application/grpc") + frame(DATA, 0, 1, MSG)
        + frame(HEADERS, 5, 1, lit(b"grpc-status", b"0")))
call2 = frame(HEADERS, 4, 3, b"\x83\x86\xbf\xbe\xbd\xbc\xbb\xba") + frame(DATA, 1, 3, MSG) + frame(PING, 1, 0, b"12345678")

seeds = {
    "grpc_capture": b"\x00" + rec(True, srv_capture) + rec(False, GRPC_CLIENT),
    # mode 0: the preface is in the records; reads split at 1, 7 and 100 bytes
    "exchange": b"\x00" + rec(True, srv_hello) + chunks(False, PREFACE + cli_hello, 7)
                + chunks(False, call, 1) + chunks(True, resp, 100) + chunks(False, call2, 100, True),
    # mode 1: the preface given; padded and prioritized HEADERS, a CONTINUATION, a size update
    "padded": b"\x01" + rec(True, srv_hello) + rec(False, cli_hello
        + frame(HEADERS, 0x28, 1, b"\x03" + b"\x80\x00\x00\x00\xff" + request()[:20] + b"\xff\xff\xff")
        + frame(CONT, 4, 1, request()[20:])
        + frame(HEADERS, 4 | 1, 3, b"\x3f\xe1\x03" + lit(b"x-big", b"v" * 100) + b"\x83\x86\xbe")
        + frame(PRIORITY, 0, 5, b"\x00\x00\x00\x01\x10") + frame(WINDOW, 0, 3, b"\x00\x00\x00\x00")),
    # mode 3 (tight limits): rapid reset, then pings and settings past their bursts
    "resets": b"\x03" + rec(False, cli_hello + b"".join(
        frame(HEADERS, 5, s, b"\x83\x86\x84\x41\x01x") + frame(RST, 0, s, b"\x00\x00\x00\x08")
        for s in range(1, 12, 2))),
    "pings": b"\x03" + b"".join(rec(False, frame(PING, 0, 0, b"abcdefgh"), tick=i % 2 == 0) for i in range(8))
             + rec(False, settings((4, 1)) * 5),
    # mode 3: an HPACK bomb before any SETTINGS ACK, and a CONTINUATION flood
    "bomb": b"\x03" + rec(False, frame(HEADERS, 4, 1, lit(b"x-bomb", b"b" * 100) + b"\xbe" * 20)),
    "continuation": b"\x03" + rec(False, frame(HEADERS, 0, 1, b"\x20" * 64)
                                  + b"".join(frame(CONT, 0, 1, b"\x20" * 64) for _ in range(8))),
}
out = sys.argv[1]
os.makedirs(out, exist_ok=True)
for name, data in seeds.items():
    with open(os.path.join(out, name), "wb") as f:
        f.write(data)
