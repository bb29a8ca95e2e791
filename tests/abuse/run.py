#!/usr/bin/python3
"""The abuse suite: each attack against a fresh maturityd, with a well-behaved client beside it.

For each attack: start maturityd (the attack's flags and descriptor limit); start the good
client (prober.py: Health/Check at a steady rate on its own mutual-TLS connection) and sample
the server's VmRSS; measure a baseline; run the attack; keep measuring a while after it; stop
the server. Then judge:

  1. good client: during and after the attack, at least FRACTION of its baseline calls/s, and
     p99 latency <= P99_MS during;
  2. frame-level attacks: every abusive connection got GOAWAY(ENHANCE_YOUR_CALM) AND was closed,
     both within 1 s of its first abusive frame;
  3. server VmRSS: peak <= 512 MiB, and after <= baseline * 1.10 + 16 MiB;
  4. after it: a new mTLS call succeeds within 1 s, and a client without certificate is answered
     (refused) within 1 s; the server stayed up throughout.

Profiles: `full` (scripts/abuse: the real targets, 90 % and 50 ms) and `ci` (ctest: short, on a
loaded 2-core CI machine: 50 % and 250 ms, and fewer idle connections).

Usage: run.py --maturityd BIN [--profile ci|full] [--only NAME[,NAME...]] [--list]
              [--json FILE] [--logdir DIR] [--sanitized] [--retries N]
An attack whose only failures are the good client's numbers runs once more in profile ci (the
machine is shared: other work can slow the good client without the attack); never in full.
Exit: 0 all passed, 1 some failed, 77 skipped (MATURITY_TEST_DATABASE_URL/PKI not set).
"""
import argparse
import json
import os
import sys
import tempfile
import time

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from abuse import attacks as A  # noqa: E402
from abuse import harness  # noqa: E402

MiB = 1024


class Profile:
    def __init__(self, name, rate, baseline, duration, settle, after, fraction, p99_ms,
                 idle_conns, flood_conns):
        self.name, self.rate = name, rate
        self.baseline, self.duration, self.settle, self.after = baseline, duration, settle, after
        self.fraction, self.p99_ms = fraction, p99_ms
        self.idle_conns, self.flood_conns = idle_conns, flood_conns


PROFILES = {
    # The real targets (the brief's): 90 % of baseline calls/s, p99 <= 50 ms.
    "full": Profile("full", rate=300, baseline=3.0, duration=5.0, settle=1.0, after=3.0,
                    fraction=0.90, p99_ms=50.0, idle_conns=2000, flood_conns=1100),
    # ctest on a loaded 2-core CI machine: shorter, and looser bounds (documented in README).
    "ci": Profile("ci", rate=100, baseline=0.8, duration=1.5, settle=0.3, after=0.8,
                  fraction=0.50, p99_ms=250.0, idle_conns=200, flood_conns=1100),
}

# Connection floods run the server with a 1,024-descriptor limit and a connection cap below it.
LOW_NOFILE = 1024
FLOOD_ARGS = ["--max-connections=900"]


class Spec:
    def __init__(self, name, group, title, fn, server_args=(), nofile=None, duration=None):
        self.name, self.group, self.title, self.fn = name, group, title, fn
        self.server_args, self.nofile, self.duration = list(server_args), nofile, duration


def specs(p):
    return [
        Spec("rapid-reset-1-es", "rapid_reset", "Rapid Reset, 1 conn, HEADERS+END_STREAM, RST",
             A.rapid_reset(1, True)),
        Spec("rapid-reset-1-open", "rapid_reset", "Rapid Reset, 1 conn, HEADERS (open), RST",
             A.rapid_reset(1, False)),
        Spec("rapid-reset-8-es", "rapid_reset", "Rapid Reset, 8 conns, HEADERS+END_STREAM, RST",
             A.rapid_reset(8, True)),
        Spec("rapid-reset-8-open", "rapid_reset", "Rapid Reset, 8 conns, HEADERS (open), RST",
             A.rapid_reset(8, False)),
        Spec("continuation-ack", "header_blocks", "CONTINUATION flood, SETTINGS ACKed",
             A.continuation_flood(True)),
        Spec("continuation-noack", "header_blocks", "CONTINUATION flood, SETTINGS never ACKed",
             A.continuation_flood(False)),
        Spec("hpack-bomb-ack", "header_blocks", "HPACK bomb, SETTINGS ACKed", A.hpack_bomb(True)),
        Spec("hpack-bomb-noack", "header_blocks", "HPACK bomb, SETTINGS never ACKed",
             A.hpack_bomb(False)),
        Spec("settings-flood", "control_frames", "SETTINGS flood", A.settings_flood),
        Spec("ping-flood", "control_frames", "PING flood", A.ping_flood),
        Spec("empty-frames", "control_frames", "Empty DATA frames flood", A.empty_frames),
        Spec("zero-window", "slow_readers", "Slow reader: window 0, never WINDOW_UPDATE",
             A.zero_window_reader),
        Spec("trickle", "slow_readers", "Slow reader: 1 TCP byte/s", A.trickle_reader),
        Spec("idle-tls", "connections", f"{p.idle_conns} idle TLS connections",
             A.idle_tls(p.idle_conns), nofile=max(p.idle_conns + 1024, 8192)),
        Spec("tcp-flood", "connections",
             f"{p.flood_conns} silent TCP conns, ulimit -n {LOW_NOFILE}",
             A.tcp_flood(p.flood_conns), server_args=FLOOD_ARGS, nofile=LOW_NOFILE),
        Spec("half-open-tls", "connections",
             f"{p.flood_conns} half-open TLS (ClientHello only), ulimit -n {LOW_NOFILE}",
             A.half_open_tls(p.flood_conns), server_args=FLOOD_ARGS, nofile=LOW_NOFILE),
    ]


ABUSE_METRICS = ("maturityd_connections_closed_abuse_total", "maturityd_connections_refused_total",
                 "maturityd_handshakes_failed_total", "maturityd_calls_reset_total")


def metric_delta(m0, m1):
    out = {}
    for k, v in m1.items():
        if k.startswith(ABUSE_METRICS):
            d = v - m0.get(k, 0.0)
            if d:
                out[k] = d
    return out


def run_one(spec, p, binary, dburl, pki, logdir, sanitized):
    srv = harness.Server(binary, dburl, pki, logdir, spec.name, spec.server_args, spec.nofile)
    try:
        return _run_one(srv, spec, p, pki, sanitized)
    finally:
        srv.kill()  # whatever happened, no maturityd is left behind


def _run_one(srv, spec, p, pki, sanitized):
    res = {"name": spec.name, "title": spec.title, "checks": [], "notes": []}

    def check(name, ok, detail=""):
        res["checks"].append((name, bool(ok), detail))

    try:
        srv.start()
    except RuntimeError as e:
        check("server starts", False, str(e))
        res["verdict"] = "FAIL"
        return res
    sampler = harness.RssSampler(srv).start()
    prober = harness.Prober(srv, p.rate)
    try:
        if not prober.wait_ready():
            check("good client connects", False, "no successful call in 10 s")
        time.sleep(0.2)  # warm-up, not counted
        t_b0 = time.monotonic()
        time.sleep(p.baseline)
        t_b1 = time.monotonic()
        m0 = srv.metrics()
        cap = [int(a.split("=", 1)[1]) for a in spec.server_args
               if a.startswith("--max-connections=")]
        ctx = A.Ctx(srv, pki, spec.duration or p.duration, p, cap[0] if cap else None)
        t_a0 = time.monotonic()
        try:
            out = spec.fn(ctx)
        except Exception as e:  # noqa: BLE001 - an attack that could not run is a failure
            out = A.Outcome()
            out.check("attack ran", False, f"{type(e).__name__}: {e}")
        t_a1 = max(time.monotonic(), t_a0 + ctx.duration)
        while time.monotonic() < t_a1:
            time.sleep(0.05)
        t_f0 = t_a1 + p.settle
        t_f1 = t_f0 + p.after
        while time.monotonic() < t_f1:
            time.sleep(0.05)
        alive = srv.alive()
        m1 = srv.metrics()
    finally:
        prober.stop()
        sampler.stop()

    # 1. the good client
    base = prober.window(t_b0, t_b1)
    during = prober.window(t_a0, t_a1)
    after = prober.window(t_f0, t_f1)
    res.update(before=base, during=during, after=after)
    if base[0] > 0 and sanitized:
        # Under ASan every call costs the sanitizer's 2-5x, and the reset calls an attack gets
        # through before its connection is closed hold the pollers for seconds: the good
        # client's numbers are the sanitizer's, not the server's. They are reported; the
        # uninstrumented run of the same suite (./scripts/test runs both) judges them. After
        # the attack the good client must be served again.
        res["notes"].append(f"sanitizer build: good client {during[0]:.0f} calls/s during "
                            f"(p99 {during[2] or 0:.0f} ms), not judged")
        check("good client served after the attack", after[0] > 0,
              f"{after[0]:.0f} vs {base[0]:.0f} calls/s")
    elif base[0] > 0:
        check(f"good client during >= {p.fraction:.0%} of baseline",
              during[0] >= p.fraction * base[0], f"{during[0]:.0f} vs {base[0]:.0f} calls/s")
        check(f"good client after >= {p.fraction:.0%} of baseline",
              after[0] >= p.fraction * base[0], f"{after[0]:.0f} vs {base[0]:.0f} calls/s")
        check(f"good client p99 <= {p.p99_ms:.0f} ms during",
              during[2] is not None and during[2] <= p.p99_ms,
              f"{during[2]:.1f} ms" if during[2] is not None else "no call")
    else:
        check("good client baseline", False, "no successful call before the attack")

    # 2. abusive connections closed
    closed_within = None
    if out.must_close:
        worst, why = 0.0, []
        for c in out.conns:
            start = c.abuse_start or t_a0
            calm, eof = c.calm_at(), c.closed_at
            if calm is None or eof is None:
                worst = None
                why.append(("no GOAWAY(ENHANCE_YOUR_CALM)" if calm is None else "")
                           + (" not closed" if eof is None else "")
                           + (f" [GOAWAY {c.goaway_codes()}]" if c.goaways else "")
                           + (f" [closed: {c.close_reason} after {eof - start:.2f} s]"
                              if eof else ""))
                continue
            if worst is not None:
                worst = max(worst, max(calm, eof) - start)
        closed_within = worst
        check("abusive connections: GOAWAY(ENHANCE_YOUR_CALM) and closed within 1 s",
              worst is not None and worst <= 1.0,
              f"{worst:.2f} s" if worst is not None else "; ".join(sorted(set(why)))[:300])
    else:
        ends = [c.closed_at - (c.abuse_start or t_a0) for c in out.conns if c.closed_at]
        if out.conns:
            closed_within = max(ends) if len(ends) == len(out.conns) else None
    res["closed_within"] = closed_within
    # What the table shows: when the last abusive connection was closed, and whether every one
    # got GOAWAY(ENHANCE_YOUR_CALM) first.
    eofs = [c.closed_at - (c.abuse_start or t_a0) for c in out.conns if c.closed_at]
    res["closed_all"] = max(eofs) if out.conns and len(eofs) == len(out.conns) else None
    res["calm_all"] = bool(out.conns) and all(c.calm_at() is not None for c in out.conns)
    res["must_close"] = out.must_close

    # 3. memory
    rss_base = sampler.at(t_b1)
    rss_peak = sampler.peak(t_a0, t_f1)
    rss_after = sampler.at(t_f1)
    res.update(rss_base=rss_base, rss_peak=rss_peak, rss_after=rss_after, fd_max=sampler.fd_max)
    if rss_base is None or rss_peak is None or rss_after is None:
        check("server RSS sampled", False, "no samples (server gone?)")
    elif sanitized:
        res["notes"].append("sanitizer build: RSS bounds not checked (ASan keeps freed memory)")
    else:
        check("server RSS peak <= 512 MiB", rss_peak <= 512 * MiB, f"{rss_peak // MiB} MiB")
        bound = rss_base * 1.10 + 16 * MiB
        check("server RSS back within 10 % + 16 MiB of baseline", rss_after <= bound,
              f"{rss_after // MiB} MiB after vs {rss_base // MiB} MiB baseline")

    # 4. attack-specific checks (new connections after floods) and the server's survival
    res["checks"].extend(out.checks)
    check("server stayed up", alive, "" if alive else f"exit {srv.proc.returncode}")
    res["notes"].extend(out.notes)
    delta = metric_delta(m0, m1)
    if delta:
        res["notes"].append("metrics: " + ", ".join(f"{k} +{v:g}"
                                                    for k, v in sorted(delta.items())))
    rc = srv.stop()
    if rc not in (0, None):
        res["notes"].append(f"maturityd exited with {rc} on SIGTERM (log {srv.log_path})")
    res["verdict"] = "PASS" if all(ok for _, ok, _ in res["checks"]) else "FAIL"
    return res


def fmt_ms(v):
    return "-" if v is None else (f"{v:.0f}" if v >= 10 else f"{v:.1f}")


def table(results, p):
    hdr = (f"{'attack':<20} {'good calls/s before/during/after':>32} {'p99 ms b/d':>11} "
           f"{'closed':>8} {'RSS MiB base/peak/after':>24}  verdict")
    lines = [hdr, "-" * len(hdr)]
    for r in results:
        if "before" not in r:
            lines.append(f"{r['name']:<20} {'(not measured)':>32} {'':>11} {'':>8} {'':>24}  "
                         f"{r['verdict']}")
            continue
        b, d, a = r["before"], r["during"], r["after"]
        ca = r.get("closed_all")
        if ca is None:
            closed = "open" if r.get("must_close") or r.get("calm_all") else "-"
        else:
            closed = f"{ca:.2f}s" + ("" if r.get("calm_all") else "!")
        mem = "/".join("-" if x is None else str(x // MiB)
                       for x in (r["rss_base"], r["rss_peak"], r["rss_after"]))
        lines.append(f"{r['name']:<20} {b[0]:>10.0f} /{d[0]:>9.0f} /{a[0]:>9.0f} "
                     f"{fmt_ms(b[2]):>5}/{fmt_ms(d[2]):>5} {closed:>8} {mem:>24}  {r['verdict']}"
                     + (f" (run {r['attempts']})" if r.get("attempts", 1) > 1 else ""))
    return "\n".join(lines)


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--maturityd", required=False)
    ap.add_argument("--profile", choices=sorted(PROFILES), default="full")
    ap.add_argument("--only", default="", help="attack names or groups, comma-separated")
    ap.add_argument("--list", action="store_true")
    ap.add_argument("--json")
    ap.add_argument("--logdir")
    ap.add_argument("--retries", type=int, default=None,
                    help="runs again an attack whose only failures are the good client's "
                         "numbers (default: 1 in profile ci, 0 in full)")
    ap.add_argument("--sanitized", action="store_true",
                    help="maturityd is an ASan build: no RSS bounds, the good client's "
                         "numbers reported, not judged (the uninstrumented run judges them)")
    args = ap.parse_args()
    p = PROFILES[args.profile]
    if args.sanitized:
        p.fraction, p.p99_ms = min(p.fraction, 0.25), max(p.p99_ms, 1000.0)
    all_specs = specs(p)
    if args.list:
        for s in all_specs:
            print(f"{s.name:<20} {s.group:<15} {s.title}")
        return 0
    want = [w for w in args.only.split(",") if w]
    chosen = [s for s in all_specs if not want or s.name in want or s.group in want]
    if want and not chosen:
        print(f"no attack named {args.only}", file=sys.stderr)
        return 2
    if not harness.env_available():
        print("MATURITY_TEST_DATABASE_URL / MATURITY_TEST_PKI not set: skipped")
        return 77
    if not args.maturityd or not os.access(args.maturityd, os.X_OK):
        print(f"maturityd not found: {args.maturityd}", file=sys.stderr)
        return 2
    retries = args.retries if args.retries is not None else (1 if p.name == "ci" else 0)
    harness.raise_own_nofile(16384)
    logdir = args.logdir or tempfile.mkdtemp(prefix="maturityd-abuse.")
    os.makedirs(logdir, exist_ok=True)
    pki = os.environ["MATURITY_TEST_PKI"]
    dburl, dbname = harness.create_db()
    results = []
    try:
        for s in chosen:
            t0 = time.monotonic()
            print(f"== {s.name}: {s.title}", flush=True)
            for attempt in range(retries + 1):
                r = run_one(s, p, args.maturityd, dburl, pki, logdir, args.sanitized)
                r["seconds"] = time.monotonic() - t0
                r["load"] = os.getloadavg()[0]
                for name, ok, detail in r["checks"]:
                    print(f"   {'ok  ' if ok else 'FAIL'} {name}"
                          + (f": {detail}" if detail else ""))
                for n in r["notes"]:
                    print(f"   note: {n}")
                print(f"   {r['verdict']} ({r['seconds']:.1f} s, load average "
                      f"{r['load']:.1f})", flush=True)
                failing = [name for name, ok, _ in r["checks"] if not ok]
                # The good client's numbers alone can fail on a machine shared with other
                # work; everything else (closing, memory, new connections) is not retried.
                if not failing or not all(f.startswith("good client") for f in failing) \
                        or attempt == retries:
                    break
                print("   once more: only the good client's numbers failed", flush=True)
            r["attempts"] = attempt + 1
            results.append(r)
    finally:
        harness.drop_db(dbname)
    print()
    print(f"abuse suite, profile {p.name}: good client {p.rate:.0f} calls/s Health/Check; "
          f"pass: during/after >= {p.fraction:.0%} of before, p99 <= {p.p99_ms:.0f} ms, "
          f"frame abuse closed <= 1 s, RSS <= 512 MiB and back; server logs in {logdir}")
    print(table(results, p))
    print("closed: when the last abusive connection was closed, after its first abusive frame "
          "(! = without GOAWAY(ENHANCE_YOUR_CALM); open = still open at the end)")
    failed = [r["name"] for r in results if r["verdict"] != "PASS"]
    if args.json:
        with open(args.json, "w") as f:
            json.dump(results, f, indent=1, default=str)
    print()
    print(f"abuse: {len(results) - len(failed)} passed, {len(failed)} failed")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
