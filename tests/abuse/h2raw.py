"""Raw HTTP/2 over mutual TLS, for clients that misbehave on purpose.

python3-h2 refuses to send most of what the attacks need (CONTINUATION without end, frames after
a reset, a never-ACKed SETTINGS), so frames are built by hand here and the header blocks with
python3-hpack. TLS runs over memory BIOs (ssl.SSLObject) on a non-blocking socket, so one thread
decides every byte that goes out and how fast bytes are read in (a trickle reader reads one TCP
byte at a time), and nothing blocks on a server that stopped reading.

A RawConn records what the server did to it: the GOAWAYs it sent (error code, time), when the
connection was closed (EOF, reset or TLS alert), RST_STREAMs, SETTINGS, and response headers.
"""
import errno
import select
import socket
import ssl
import struct
import time

import hpack

PREFACE = b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n"

DATA, HEADERS, PRIORITY, RST_STREAM, SETTINGS, PUSH_PROMISE, PING, GOAWAY, WINDOW_UPDATE, \
    CONTINUATION = range(10)
END_STREAM = 0x1
ACK = 0x1
END_HEADERS = 0x4

SETTINGS_HEADER_TABLE_SIZE = 0x1
SETTINGS_ENABLE_PUSH = 0x2
SETTINGS_MAX_CONCURRENT_STREAMS = 0x3
SETTINGS_INITIAL_WINDOW_SIZE = 0x4
SETTINGS_MAX_FRAME_SIZE = 0x5
SETTINGS_MAX_HEADER_LIST_SIZE = 0x6

NO_ERROR, PROTOCOL_ERROR, INTERNAL_ERROR, FLOW_CONTROL_ERROR, SETTINGS_TIMEOUT, STREAM_CLOSED, \
    FRAME_SIZE_ERROR, REFUSED_STREAM, CANCEL, COMPRESSION_ERROR, CONNECT_ERROR, \
    ENHANCE_YOUR_CALM, INADEQUATE_SECURITY, HTTP_1_1_REQUIRED = range(14)

ERROR_NAMES = {v: k for k, v in dict(
    NO_ERROR=0, PROTOCOL_ERROR=1, INTERNAL_ERROR=2, FLOW_CONTROL_ERROR=3, SETTINGS_TIMEOUT=4,
    STREAM_CLOSED=5, FRAME_SIZE_ERROR=6, REFUSED_STREAM=7, CANCEL=8, COMPRESSION_ERROR=9,
    CONNECT_ERROR=10, ENHANCE_YOUR_CALM=11, INADEQUATE_SECURITY=12,
    HTTP_1_1_REQUIRED=13).items()}


def frame(ftype, flags, stream_id, payload=b""):
    n = len(payload)
    return struct.pack(">BHBBI", n >> 16, n & 0xFFFF, ftype, flags, stream_id & 0x7FFFFFFF) \
        + payload


def settings_frame(settings=None, ack=False):
    payload = b"".join(struct.pack(">HI", k, v) for k, v in (settings or {}).items())
    return frame(SETTINGS, ACK if ack else 0, 0, payload)


def rst_frame(stream_id, code=CANCEL):
    return frame(RST_STREAM, 0, stream_id, struct.pack(">I", code))


def ping_frame(data=b"\0" * 8, ack=False):
    return frame(PING, ACK if ack else 0, 0, data)


def window_update_frame(stream_id, inc):
    return frame(WINDOW_UPDATE, 0, stream_id, struct.pack(">I", inc))


def grpc_message(body=b""):
    """One gRPC length-prefixed message (uncompressed)."""
    return struct.pack(">BI", 0, len(body)) + body


def pb_string(field, value):
    """A protobuf length-delimited field (enough for the one-string requests used here)."""
    v = value.encode()
    out = bytes([(field << 3) | 2])
    n = len(v)
    while n >= 0x80:
        out += bytes([(n & 0x7F) | 0x80])
        n >>= 7
    return out + bytes([n]) + v


def request_headers(path, authority="localhost", extra=()):
    return [(":method", "POST"), (":scheme", "https"), (":path", path),
            (":authority", authority), ("content-type", "application/grpc"),
            ("te", "trailers"), *extra]


def hpack_int(value, prefix_bits, first_byte_flags=0):
    """HPACK integer representation (RFC 7541 5.1)."""
    limit = (1 << prefix_bits) - 1
    if value < limit:
        return bytes([first_byte_flags | value])
    out = bytearray([first_byte_flags | limit])
    value -= limit
    while value >= 128:
        out.append((value & 0x7F) | 0x80)
        value >>= 7
    out.append(value)
    return bytes(out)


def hpack_literal(name, value, indexing=False):
    """A literal header with a new (literal) name, no Huffman: with incremental indexing
    (0x40) or without indexing (0x00)."""
    name, value = name.encode(), value if isinstance(value, bytes) else value.encode()
    return (bytes([0x40 if indexing else 0x00]) + hpack_int(len(name), 7) + name
            + hpack_int(len(value), 7) + value)


_contexts = {}


def client_context(pki, who="admin"):
    """One SSLContext per (PKI, certificate), made once: loading the files costs milliseconds,
    which thousands of connections would spend in the attacker instead of the server."""
    key = (pki, who)
    if key not in _contexts:
        _contexts[key] = _new_context(pki, who)
    return _contexts[key]


def _new_context(pki, who):
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    ctx.load_verify_locations(f"{pki}/ca.pem")
    if who:
        ctx.load_cert_chain(f"{pki}/{who}.pem", f"{pki}/{who}.key")
    ctx.set_alpn_protocols(["h2"])
    ctx.check_hostname = False  # the server certificate names localhost and 127.0.0.1
    return ctx


def client_hello(pki):
    """The bytes of a real ClientHello (for half-open floods: sent, then silence)."""
    ctx = _new_context(pki, "admin")
    inc, out = ssl.MemoryBIO(), ssl.MemoryBIO()
    obj = ctx.wrap_bio(inc, out, server_side=False)
    try:
        obj.do_handshake()
    except ssl.SSLWantReadError:
        pass
    return out.read()


def wait_any(socks, timeout, write=False):
    """poll() (select() cannot take descriptors above 1023): the sockets ready to read (or,
    with write=True, also those ready to write)."""
    p = select.poll()
    byfd = {}
    for s in socks:
        try:
            fd = s.fileno()
        except OSError:
            continue
        if fd < 0:
            continue
        byfd[fd] = s
        p.register(fd, select.POLLIN | (select.POLLOUT if write else 0))
    try:
        return [byfd[fd] for fd, _ in p.poll(max(0, int(timeout * 1000)))]
    except (OSError, InterruptedError):
        return []


class Closed(Exception):
    pass


class RawConn:
    """One TCP + TLS + HTTP/2 client connection driven by hand."""

    def __init__(self, addr, pki, who="admin", rcvbuf=None, timeout=5.0, connect=True):
        self.addr = addr
        self.closed_at = None      # monotonic time the server closed us (EOF/reset/alert)
        self.close_reason = None
        self._read_done = False    # EOF or error seen on the receiving side
        self.peer_settings = {}
        self.goaways = []          # (monotonic time, error code, last stream id, debug)
        self.rsts = []             # (stream id, code)
        self.settings_seen = 0
        self.settings_acks = 0
        self.pings_acked = 0
        self.headers = {}          # stream id -> list of decoded header lists
        self.ended = set()         # streams the server ended (END_STREAM)
        self.data_bytes = 0
        self.bytes_in = 0
        self.ack_settings = True
        self.preface_sent = False  # nothing of HTTP/2 (not even a SETTINGS ACK) before it
        self.auto_window = True    # give back connection window as DATA arrives
        self._unacked_data = 0
        self._rbuf = b""
        self._out = b""
        self._decoder = hpack.Decoder()
        self._decoder.max_allowed_table_size = 65536
        self._block = None         # (stream id, flags, fragment) while CONTINUATIONs come
        self.next_stream = 1
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        if rcvbuf:
            self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, rcvbuf)
        if connect:
            self.sock.settimeout(timeout)
            self.sock.connect(addr)
        else:  # non-blocking connect: handshake_step() goes on once it is writable
            self.sock.setblocking(False)
            self.sock.connect_ex(addr)
        self.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        self.sock.setblocking(False)
        self._inc, self._outbio = ssl.MemoryBIO(), ssl.MemoryBIO()
        self.tls = None
        self._ctx = client_context(pki, who) if pki else None

    # --- TLS -----------------------------------------------------------------------------
    def handshake_step(self, ctx=None):
        """One non-blocking step of the TLS handshake: True once it is done (many connections
        can shake hands at once this way)."""
        if self.tls is None:
            self.tls = (ctx or self._ctx).wrap_bio(self._inc, self._outbio, server_side=False)
        self._recv_raw()
        try:
            self.tls.do_handshake()
        except ssl.SSLWantReadError:
            self._flush()
            if self.closed_at:
                raise Closed(self.close_reason)
            return False
        self._flush()
        return True

    def handshake(self, ctx=None, timeout=5.0):
        ctx = ctx or self._ctx
        self.tls = ctx.wrap_bio(self._inc, self._outbio, server_side=False)
        deadline = time.monotonic() + timeout
        while True:
            try:
                self.tls.do_handshake()
                break
            except ssl.SSLWantReadError:
                self._flush()
                if self.closed_at:
                    raise Closed(self.close_reason)
                left = deadline - time.monotonic()
                if left <= 0:
                    raise TimeoutError("TLS handshake timed out")
                self._wait_readable(min(left, 0.05))
                self._recv_raw()
        self._flush()
        if self.tls.selected_alpn_protocol() != "h2":
            raise Closed(f"ALPN {self.tls.selected_alpn_protocol()!r}")
        return self

    def start_h2(self, settings=None, window=None):
        """Preface and our SETTINGS (no ACK of the server's unless ack_settings)."""
        self.send(PREFACE + settings_frame(settings or {}))
        self.preface_sent = True
        if window:
            self.send(window_update_frame(0, window))

    # --- bytes ---------------------------------------------------------------------------
    def _wait_readable(self, t):
        wait_any([self.sock], t)

    def _mark_closed(self, why):
        if self.closed_at is None:
            self.closed_at = time.monotonic()
            self.close_reason = why

    def _recv_raw(self, limit=262144):
        # Reads go on after a failed send: what the server sent before closing (a GOAWAY) may
        # still be in our receive queue.
        if self._read_done or limit <= 0:
            return 0
        try:
            data = self.sock.recv(limit)
        except (BlockingIOError, InterruptedError):
            return 0
        except OSError as e:
            self._read_done = True
            self._mark_closed(f"recv: {errno.errorcode.get(e.errno, e)}")
            return 0
        if not data:
            self._read_done = True
            self._mark_closed("EOF")
            return 0
        self.bytes_in += len(data)
        self._inc.write(data)
        return len(data)

    def _flush(self):
        if self._outbio.pending:
            self._out += self._outbio.read()
        while self._out and not self.closed_at:
            try:
                n = self.sock.send(self._out[:262144])
            except (BlockingIOError, InterruptedError):
                return
            except OSError as e:
                self._mark_closed(f"send: {errno.errorcode.get(e.errno, e)}")
                return
            self._out = self._out[n:]

    def backlog(self):
        """Bytes written but not yet taken by the kernel (the server is not reading)."""
        return len(self._out) + self._outbio.pending

    def send(self, data):
        if self.closed_at:
            return False
        try:
            self.tls.write(data)
        except ssl.SSLError as e:
            self._mark_closed(f"tls write: {e}")
            return False
        self._flush()
        return not self.closed_at

    def send_raw(self, data):
        """Bytes straight to TCP (no TLS): for half-open floods."""
        self._out += data
        self._flush()

    def pump(self, max_bytes=None, wait=0.0):
        """Reads what the server sent (at most max_bytes of TCP), handles frames; returns the
        number of TCP bytes read."""
        self._flush()
        if wait:
            self._wait_readable(wait)
        got = 0
        while not self._read_done:
            n = self._recv_raw(262144 if max_bytes is None else max(0, max_bytes - got))
            got += n
            if n == 0 or (max_bytes is not None and got >= max_bytes):
                break
        if self.tls is not None:
            self._tls_read()
        self._flush()
        return got

    def _tls_read(self):
        while True:
            try:
                chunk = self.tls.read(262144)
            except ssl.SSLWantReadError:
                break
            except ssl.SSLZeroReturnError:
                self._mark_closed("TLS close_notify")
                break
            except ssl.SSLError as e:
                self._mark_closed(f"TLS: {e.reason or e}")
                break
            if not chunk:
                break
            self._rbuf += chunk
        self._frames()

    # --- frames --------------------------------------------------------------------------
    def _frames(self):
        buf = self._rbuf
        i = 0
        while len(buf) - i >= 9:
            hi, lo, ftype, flags, sid = struct.unpack_from(">BHBBI", buf, i)
            n = (hi << 16) | lo
            if len(buf) - i - 9 < n:
                break
            payload = buf[i + 9:i + 9 + n]
            i += 9 + n
            self._on_frame(ftype, flags, sid & 0x7FFFFFFF, payload)
        self._rbuf = buf[i:]

    def _on_frame(self, ftype, flags, sid, payload):
        now = time.monotonic()
        if ftype == SETTINGS:
            if flags & ACK:
                self.settings_acks += 1
            else:
                self.settings_seen += 1
                for j in range(0, len(payload) - 5, 6):
                    k, v = struct.unpack_from(">HI", payload, j)
                    self.peer_settings[k] = v
                if self.ack_settings and self.preface_sent:
                    self.send(settings_frame(ack=True))
        elif ftype == GOAWAY:
            last, code = struct.unpack_from(">II", payload)
            self.goaways.append((now, code, last & 0x7FFFFFFF, payload[8:200]))
        elif ftype == RST_STREAM:
            self.rsts.append((sid, struct.unpack(">I", payload[:4])[0]))
        elif ftype == PING:
            if flags & ACK:
                self.pings_acked += 1
        elif ftype == DATA:
            self.data_bytes += len(payload)
            self._unacked_data += len(payload)
            if flags & END_STREAM:
                self.ended.add(sid)
            if self.auto_window and self.preface_sent and self._unacked_data >= 32768:
                self.send(window_update_frame(0, self._unacked_data))
                self._unacked_data = 0
        elif ftype == HEADERS:
            frag = payload
            if flags & 0x8:  # PADDED
                frag = frag[1:len(frag) - frag[0]]
            if flags & 0x20:  # PRIORITY
                frag = frag[5:]
            self._block = (sid, flags, frag)
            if flags & END_HEADERS:
                self._end_block()
        elif ftype == CONTINUATION and self._block is not None:
            s, f, frag = self._block
            self._block = (s, f, frag + payload)
            if flags & END_HEADERS:
                self._end_block()

    def _end_block(self):
        sid, flags, frag = self._block
        self._block = None
        try:
            hdrs = self._decoder.decode(frag, raw=False)
        except Exception as e:  # noqa: BLE001 - a broken block is recorded, not fatal
            hdrs = [("x-abuse-decode-error", str(e))]
        self.headers.setdefault(sid, []).append(hdrs)
        if flags & END_STREAM:
            self.ended.add(sid)

    # --- what the server did -------------------------------------------------------------
    def calm_at(self):
        """When the first GOAWAY(ENHANCE_YOUR_CALM) arrived, or None."""
        for t, code, _, _ in self.goaways:
            if code == ENHANCE_YOUR_CALM:
                return t
        return None

    def goaway_codes(self):
        return [ERROR_NAMES.get(c, hex(c)) for _, c, _, _ in self.goaways]

    def new_stream(self):
        sid = self.next_stream
        self.next_stream += 2
        return sid

    def close(self):
        try:
            self.sock.close()
        except OSError:
            pass


def grpc_status(conn, sid):
    """grpc-status of a finished stream (from its trailers or trailers-only headers)."""
    for block in conn.headers.get(sid, []):
        for k, v in block:
            if k == "grpc-status":
                return int(v)
    return None


def unary_call(addr, pki, path, body=b"", who="admin", timeout=1.0):
    """One gRPC unary call over a fresh connection, by hand: (grpc-status or None, seconds,
    what happened). Used to check that new connections are served."""
    t0 = time.monotonic()
    deadline = t0 + timeout
    try:
        c = RawConn(addr, pki, who, timeout=timeout)
    except OSError as e:
        return None, time.monotonic() - t0, f"connect: {e}"
    try:
        c.handshake(timeout=max(0.01, deadline - time.monotonic()))
        c.start_h2(window=1 << 20)
        enc = hpack.Encoder()
        sid = c.new_stream()
        c.send(frame(HEADERS, END_HEADERS, sid, enc.encode(request_headers(path))))
        c.send(frame(DATA, END_STREAM, sid, grpc_message(body)))
        while time.monotonic() < deadline and not c.closed_at:
            c.pump(wait=0.02)
            if sid in c.ended:
                st = grpc_status(c, sid)
                return st, time.monotonic() - t0, f"grpc-status {st}"
        return None, time.monotonic() - t0, c.close_reason or "no answer in time"
    except (Closed, TimeoutError, ssl.SSLError, OSError) as e:
        return None, time.monotonic() - t0, f"{type(e).__name__}: {e}"
    finally:
        c.close()


def no_cert_answer(addr, pki, timeout=1.0):
    """A client without a certificate: the server must answer (refuse the handshake, or close)
    promptly rather than leave it hanging. Returns (answered, seconds, what happened)."""
    t0 = time.monotonic()
    deadline = t0 + timeout
    try:
        c = RawConn(addr, None, timeout=timeout)
    except OSError as e:
        return False, time.monotonic() - t0, f"connect: {e}"
    try:
        ctx = client_context(pki, who=None)
        try:
            c.handshake(ctx, timeout=timeout)
        except (Closed, ssl.SSLError) as e:
            return True, time.monotonic() - t0, f"refused in handshake: {e}"
        except TimeoutError:
            return False, time.monotonic() - t0, "handshake hung"
        # TLS 1.3: the client finishes first; the server's verdict (an alert) follows.
        c.start_h2()
        while time.monotonic() < deadline:
            c.pump(wait=0.02)
            if c.closed_at:
                return True, time.monotonic() - t0, f"refused: {c.close_reason}"
        return False, time.monotonic() - t0, "no answer in time"
    finally:
        c.close()
