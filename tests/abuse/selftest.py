#!/usr/bin/python3
"""Self-test of the attack side, no maturityd needed: the attacks against a stand-in "front
door" (a small HTTP/2 server over mutual TLS, in threads) that guards frames the way maturityd's
front door is meant to (RST_STREAM, PING, SETTINGS, empty frames over their bursts, a header
block >= 64 KiB raw or decoded: GOAWAY(ENHANCE_YOUR_CALM), then close). It shows the suite sees
a server that does the right thing (the GOAWAY's code and the close within 1 s), that it sees
the close of a server that closes abruptly with the attacker's frames unread (the kernel then
resets the connection, and a GOAWAY still in the send queue can be lost: the suite fails such a
server when that happens, so close gracefully), and that it judges a server that never reacts
as not closed.

Usage: selftest.py (needs MATURITY_TEST_PKI; else exit 77).
"""
import os
import socket
import ssl
import struct
import sys
import threading
import time

import hpack

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from abuse import attacks as A  # noqa: E402
from abuse import h2raw as h  # noqa: E402


class StandIn:
    """Accepts mTLS HTTP/2 connections; with guard=True closes abusers like the front door."""

    def __init__(self, pki, guard, graceful=True):
        self.guard, self.graceful = guard, graceful
        ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        ctx.load_cert_chain(f"{pki}/server.pem", f"{pki}/server.key")
        ctx.load_verify_locations(f"{pki}/ca.pem")
        ctx.verify_mode = ssl.CERT_REQUIRED
        ctx.set_alpn_protocols(["h2"])
        self.ctx = ctx
        self.ls = socket.socket()
        self.ls.bind(("127.0.0.1", 0))
        self.ls.listen(64)
        self.addr = self.ls.getsockname()
        self.errors = []
        threading.Thread(target=self._accept, daemon=True).start()

    def _accept(self):
        while True:
            try:
                s, _ = self.ls.accept()
            except OSError:
                return
            # Without TCP_NODELAY a GOAWAY written just before a close with unread input can
            # sit in the send queue (Nagle) and be thrown away by the reset that close sends.
            s.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            t = threading.Thread(target=self._serve, args=(s,), daemon=True)
            t.start()

    def _serve(self, raw):
        try:
            s = self.ctx.wrap_socket(raw, server_side=True)
        except (ssl.SSLError, OSError):
            raw.close()
            return
        try:
            self._h2(s)
        except (ssl.SSLError, OSError, ConnectionError) as e:
            self.errors.append(repr(e))
        finally:
            try:
                s.close()
            except OSError:
                pass

    def _h2(self, s):
        buf = b""
        while len(buf) < len(h.PREFACE):
            d = s.recv(65536)
            if not d:
                return
            buf += d
        buf = buf[len(h.PREFACE):]
        s.sendall(h.settings_frame({h.SETTINGS_MAX_CONCURRENT_STREAMS: 100}))
        counts = {"rst": 0, "ping": 0, "settings": 0, "empty": 0}
        limits = {"rst": 200, "ping": 100, "settings": 20, "empty": 200}
        frag = b""
        dec = hpack.Decoder(max_header_list_size=65536)
        while True:
            while len(buf) >= 9:
                hi, lo, ftype, flags, sid = struct.unpack_from(">BHBBI", buf)
                n = (hi << 16) | lo
                if len(buf) < 9 + n:
                    break
                payload, buf = buf[9:9 + n], buf[9 + n:]
                too_big = False
                if ftype == h.RST_STREAM:
                    counts["rst"] += 1
                elif ftype == h.PING and not flags & h.ACK:
                    counts["ping"] += 1
                elif ftype == h.SETTINGS and not flags & h.ACK:
                    counts["settings"] += 1
                    s.sendall(h.settings_frame(ack=True))
                elif ftype in (h.HEADERS, h.CONTINUATION):
                    frag = payload if ftype == h.HEADERS else frag + payload
                    if n == 0:
                        counts["empty"] += 1
                    if len(frag) >= 65536:
                        too_big = True
                    elif flags & h.END_HEADERS:
                        try:
                            dec.decode(frag)
                        except hpack.HPACKError:  # decoded list >= 64 KiB (or broken)
                            too_big = True
                        frag = b""
                elif ftype == h.DATA and n == 0:
                    counts["empty"] += 1
                abusive = any(counts[k] > limits[k] for k in counts) or too_big
                if self.guard and abusive:
                    s.sendall(h.frame(h.GOAWAY, 0, 0, struct.pack(">II", 0,
                                                                   h.ENHANCE_YOUR_CALM)))
                    if self.graceful:
                        # The GOAWAY gets out before the close: FIN after it, then the client's
                        # input is read and dropped for a while (closing with unread input
                        # would make the kernel reset the connection and drop what it had not
                        # sent yet, the GOAWAY among it).
                        s.shutdown(socket.SHUT_WR)
                        raw = socket.socket(fileno=os.dup(s.fileno()))
                        raw.settimeout(0.2)
                        end = time.monotonic() + 1.0
                        try:
                            while time.monotonic() < end and raw.recv(65536):
                                pass
                        except OSError:
                            pass
                        raw.close()
                    return  # abrupt: with our input unread, the kernel resets the connection
            d = s.recv(65536)
            if not d:
                return
            buf += d

    def close(self):
        self.ls.close()


class FakeServer:
    def __init__(self, addr):
        self.addr = addr


def main():
    pki = os.environ.get("MATURITY_TEST_PKI")
    if not pki:
        print("MATURITY_TEST_PKI is not set: skipped")
        return 77
    cases = [("rapid-reset-1", A.rapid_reset(1, True)), ("rapid-reset-8", A.rapid_reset(8, False)),
             ("continuation", A.continuation_flood(False)), ("hpack-bomb", A.hpack_bomb(True)),
             ("settings", A.settings_flood), ("ping", A.ping_flood),
             ("empty-frames", A.empty_frames)]
    passed = failed = 0
    for guard, graceful in ((True, True), (True, False), (False, True)):
        srv = StandIn(pki, guard, graceful)
        for name, fn in cases:
            if not guard and name not in ("rapid-reset-1", "ping"):
                continue
            out = fn(A.Ctx(FakeServer(srv.addr), pki, 0.6 if not guard else 2.0, None))
            worst = 0.0
            for c in out.conns:
                calm, eof = c.calm_at(), c.closed_at
                if calm is None or eof is None:
                    worst = None
                    break
                worst = max(worst, max(calm, eof) - c.abuse_start)
            eofs = [c.closed_at - c.abuse_start for c in out.conns if c.closed_at]
            all_closed = len(eofs) == len(out.conns) and max(eofs) <= 1.0
            if not guard:
                ok = worst is None and not eofs
            elif graceful:
                ok = worst is not None and worst <= 1.0
            else:  # an abrupt close may lose the GOAWAY: the suite would fail such a server
                ok = all_closed
            what = "guarded" + ("" if graceful else ", abrupt close") if guard else "unguarded"
            print(f"{'ok  ' if ok else 'FAIL'} {name} vs {what} stand-in: "
                  + (f"GOAWAY(ENHANCE_YOUR_CALM) and closed in {worst:.3f} s" if worst is not None
                     else f"no GOAWAY(ENHANCE_YOUR_CALM)+close "
                          f"({[c.close_reason for c in out.conns][:2]}, "
                          f"{[c.goaway_codes() for c in out.conns][:2]})"))
            passed, failed = passed + ok, failed + (not ok)
        srv.close()
    # The no-certificate probe and the one-shot call against a stand-in that refuses them.
    print(f"selftest: {passed} passed, {failed} failed")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
