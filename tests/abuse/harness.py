"""Starting and stopping the real maturityd, sampling its memory, and the well-behaved client.

Needs MATURITY_TEST_DATABASE_URL (a PostgreSQL the tests may create databases in) and
MATURITY_TEST_PKI (scripts/gen-pki's folder), like the other integration tests.
"""
import os
import resource
import secrets
import signal
import socket
import subprocess
import sys
import threading
import time
import urllib.request

from . import h2raw

HERE = os.path.dirname(os.path.abspath(__file__))


def env_available():
    return bool(os.environ.get("MATURITY_TEST_DATABASE_URL")) and bool(
        os.environ.get("MATURITY_TEST_PKI"))


def create_db():
    base = os.environ["MATURITY_TEST_DATABASE_URL"]
    name = "abuse_" + secrets.token_hex(5)
    subprocess.run(["psql", "-X", "-q", "-v", "ON_ERROR_STOP=1", "-d", base, "-c",
                    f"CREATE DATABASE {name}"], check=True, capture_output=True)
    # In a keyword conninfo a later keyword wins (as tests/support/tserver.c does).
    return f"{base} dbname={name}", name


def drop_db(name):
    base = os.environ["MATURITY_TEST_DATABASE_URL"]
    subprocess.run(["psql", "-X", "-q", "-d", base, "-c",
                    f"DROP DATABASE IF EXISTS {name} WITH (FORCE)"], capture_output=True)


def free_port():
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
    return port


def raise_own_nofile(want=16384):
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    new = min(max(soft, want), hard)
    if new != soft:
        resource.setrlimit(resource.RLIMIT_NOFILE, (new, hard))
    return new


class Server:
    """One maturityd on a free loopback port over mutual TLS, with /metrics."""

    def __init__(self, binary, dburl, pki, logdir, name, extra_args=(), nofile=None):
        self.binary, self.dburl, self.pki = binary, dburl, pki
        self.port = free_port()
        self.metrics_port = free_port()
        self.addr = ("127.0.0.1", self.port)
        self.target = f"127.0.0.1:{self.port}"
        self.log_path = os.path.join(logdir, f"maturityd-{name}.log")
        self.extra_args = list(extra_args)
        self.nofile = nofile
        self.proc = None

    def start(self, timeout=20.0):
        args = [self.binary, "--listen", self.target, "--database-url", self.dburl,
                "--tls-cert", f"{self.pki}/server.pem", "--tls-key", f"{self.pki}/server.key",
                "--tls-client-ca", f"{self.pki}/ca.pem",
                "--admin-principal", "spiffe://maturityd.dev/admin",
                "--metrics-listen", f"127.0.0.1:{self.metrics_port}",
                "--shutdown-grace", "1", "--db-wait", "10", *self.extra_args]
        nofile = self.nofile

        def limits():
            if nofile:
                _, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
                resource.setrlimit(resource.RLIMIT_NOFILE, (nofile, max(nofile, hard)))

        log = open(self.log_path, "ab")
        self.proc = subprocess.Popen(args, stdout=log, stderr=log, stdin=subprocess.DEVNULL,
                                     preexec_fn=limits)
        log.close()
        deadline = time.monotonic() + timeout
        last = ""
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"maturityd exited with {self.proc.returncode} at start; "
                                   f"log {self.log_path}")
            st, _, last = h2raw.unary_call(self.addr, self.pki, "/grpc.health.v1.Health/Check",
                                           timeout=1.0)
            if st == 0:
                return self
            time.sleep(0.05)
        self.kill()
        raise RuntimeError(f"maturityd did not serve within {timeout} s ({last}); "
                           f"log {self.log_path}")

    @property
    def pid(self):
        return self.proc.pid

    def alive(self):
        return self.proc is not None and self.proc.poll() is None

    def rss_kib(self):
        try:
            with open(f"/proc/{self.pid}/status") as f:
                for line in f:
                    if line.startswith("VmRSS:"):
                        return int(line.split()[1])
        except OSError:
            pass
        return None

    def fds(self):
        try:
            return len(os.listdir(f"/proc/{self.pid}/fd"))
        except OSError:
            return None

    def metrics(self):
        """The Prometheus text at /metrics as {'name{labels}': value} (empty when it fails)."""
        out = {}
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{self.metrics_port}/metrics",
                                        timeout=2) as r:
                text = r.read().decode()
        except Exception:  # noqa: BLE001 - metrics are informational here
            return out
        for line in text.splitlines():
            if not line or line.startswith("#"):
                continue
            try:
                k, v = line.rsplit(" ", 1)
                out[k] = float(v)
            except ValueError:
                continue
        return out

    def stop(self):
        """SIGTERM, then SIGKILL after 5 s; returns the exit status (-9: it had to be killed)."""
        if self.proc is None or self.proc.poll() is not None:
            return None if self.proc is None else self.proc.returncode
        self.proc.send_signal(signal.SIGTERM)
        try:
            return self.proc.wait(5)
        except subprocess.TimeoutExpired:
            self.kill()
            return -9

    def kill(self):
        if self.proc is not None and self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait()


class RssSampler:
    """The server's VmRSS every `every` seconds, in a thread."""

    def __init__(self, server, every=0.02):
        self.server, self.every = server, every
        self.samples = []  # (monotonic, KiB)
        self.fd_max = 0
        self._stop = threading.Event()
        self._th = threading.Thread(target=self._run, daemon=True)

    def start(self):
        self._th.start()
        return self

    def _run(self):
        n = 0
        while not self._stop.is_set():
            kib = self.server.rss_kib()
            if kib is not None:
                self.samples.append((time.monotonic(), kib))
            if n % 10 == 0:
                self.fd_max = max(self.fd_max, self.server.fds() or 0)
            n += 1
            self._stop.wait(self.every)

    def stop(self):
        self._stop.set()
        self._th.join()

    def peak(self, t0, t1=None):
        v = [k for t, k in self.samples if t >= t0 and (t1 is None or t <= t1)]
        return max(v) if v else None

    def at(self, t):
        """The last sample at or before t."""
        best = None
        for ts, k in self.samples:
            if ts <= t:
                best = k
        return best


class Prober:
    """The well-behaved client (prober.py in its own process)."""

    def __init__(self, server, rate, method="/grpc.health.v1.Health/Check"):
        self.calls = []  # (start, latency, ok)
        self.proc = subprocess.Popen(
            [sys.executable, os.path.join(HERE, "prober.py"), server.target, server.pki,
             str(rate), method], stdin=subprocess.PIPE, stdout=subprocess.PIPE,
            stderr=subprocess.DEVNULL)
        self._th = threading.Thread(target=self._read, daemon=True)
        self._th.start()

    def _read(self):
        for line in self.proc.stdout:
            try:
                t, lat, ok = line.split()
                self.calls.append((float(t), float(lat), ok == b"1"))
            except ValueError:
                continue

    def wait_ready(self, timeout=10.0):
        """Until the first successful call (the channel is connected)."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if any(ok for _, _, ok in self.calls):
                return True
            time.sleep(0.02)
        return False

    def stop(self):
        try:
            self.proc.stdin.close()
        except OSError:
            pass
        try:
            self.proc.wait(5)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()
        self._th.join(2)

    def window(self, t0, t1):
        """Calls started in [t0, t1): (ok calls/s, p50 ms, p99 ms, failed calls). A call still
        unanswered at t1 counts as failed-in-window only through the missing throughput; its
        latency (up to the 2 s deadline) shows in p99 when it completes."""
        c = [(lat, ok) for t, lat, ok in self.calls if t0 <= t < t1]
        if not c or t1 <= t0:
            return 0.0, None, None, 0
        ok = sum(1 for _, k in c if k)
        lats = sorted(lat for lat, _ in c)
        p = lambda q: lats[min(len(lats) - 1, int(q * len(lats)))] * 1000.0  # noqa: E731
        return ok / (t1 - t0), p(0.50), p(0.99), len(c) - ok
