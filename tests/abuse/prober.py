#!/usr/bin/python3
"""The well-behaved client: Debian's python3-grpcio on its own mutual-TLS connection, calling
one cheap unary method at a steady rate until its standard input closes.

It runs in a process of its own so that the attacker's Python (which holds its own GIL) does not
slow it down. Paced (open loop) rather than as fast as it can: the machine has two cores shared
by the server, the attacker and this client, so "as fast as it can" would measure the attacker's
CPU use; a fixed rate measures whether the server keeps serving it. A call that falls behind
schedule does not make the next ones burst.

Writes one line per call to stdout: "<start monotonic> <latency s> <ok 0|1>".

Usage: prober.py TARGET PKI RATE [METHOD]
"""
import os
import sys
import threading
import time

import grpc


def main():
    target, pki, rate = sys.argv[1], sys.argv[2], float(sys.argv[3])
    method = sys.argv[4] if len(sys.argv) > 4 else "/grpc.health.v1.Health/Check"
    body = b""
    if method.endswith("/GetMaturityModel"):
        body = b"\x0a\x0fmodels/mlops-v1"

    def rd(n):
        with open(os.path.join(pki, n), "rb") as f:
            return f.read()

    creds = grpc.ssl_channel_credentials(rd("ca.pem"), rd("admin.key"), rd("admin.pem"))
    ch = grpc.secure_channel(target, creds, options=[("grpc.ssl_target_name_override",
                                                      "localhost")])
    call = ch.unary_unary(method)
    stop = threading.Event()

    def watch_stdin():
        sys.stdin.buffer.read()
        stop.set()

    threading.Thread(target=watch_stdin, daemon=True).start()
    interval = 1.0 / rate
    out = sys.stdout
    nxt = time.monotonic()
    lines = []
    last_flush = nxt
    while not stop.is_set():
        now = time.monotonic()
        if now < nxt:
            time.sleep(nxt - now)
        t0 = time.monotonic()
        ok = 1
        try:
            call(body, timeout=2.0)
        except grpc.RpcError:
            ok = 0
        t1 = time.monotonic()
        lines.append(f"{t0:.6f} {t1 - t0:.6f} {ok}\n")
        nxt += interval
        if nxt < t1 - interval:
            nxt = t1  # behind: carry on from now, no burst
        if t1 - last_flush > 0.05:
            out.write("".join(lines))
            out.flush()
            lines = []
            last_flush = t1
    out.write("".join(lines))
    out.flush()
    ch.close()


if __name__ == "__main__":
    main()
