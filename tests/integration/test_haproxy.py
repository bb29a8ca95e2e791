#!/usr/bin/python3
"""maturityd behind HAProxy, with deploy/haproxy/haproxy.cfg as shipped: HAProxy terminates the
clients' mutual TLS and forwards their certificates in x-forwarded-client-cert; maturityd trusts
the header from HAProxy's own certificate (--trusted-proxy) only.

- A client through HAProxy is its own certificate's principal (WhoAmI), whatever
  x-forwarded-client-cert it sends itself (HAProxy replaces it).
- Its roles are its own: a portal through HAProxy may not create a role binding; the admin may.
- The same forged header sent straight to maturityd by a client that is not the proxy is
  PERMISSION_DENIED.
- A revoked client certificate forwarded by HAProxy (HAProxy has no CRL here) is refused by
  maturityd with UNAUTHENTICATED (--tls-crl).

Usage: test_haproxy.py MATURITYD DESCRIPTOR_SET HAPROXY_CFG (needs MATURITY_TEST_DATABASE_URL,
MATURITY_TEST_PKI and haproxy; else exit 77).
"""
import os
import shutil
import socket
import subprocess
import sys
import tempfile
import time
import urllib.parse

import grpc
from google.protobuf import descriptor_pb2, descriptor_pool, message_factory

if not os.environ.get("MATURITY_TEST_PKI") or not os.environ.get("MATURITY_TEST_DATABASE_URL"):
    print("MATURITY_TEST_PKI / MATURITY_TEST_DATABASE_URL not set: skipped")
    sys.exit(77)
if shutil.which("haproxy") is None:
    print("haproxy is not installed: skipped")
    sys.exit(77)
maturityd, dset, cfg = sys.argv[1], sys.argv[2], sys.argv[3]
pki = os.environ["MATURITY_TEST_PKI"]
base_url = os.environ["MATURITY_TEST_DATABASE_URL"]

fds = descriptor_pb2.FileDescriptorSet()
with open(dset, "rb") as f:
    fds.ParseFromString(f.read())
pool = descriptor_pool.DescriptorPool()
for fd in fds.file:
    pool.Add(fd)


def msg(name):
    desc = pool.FindMessageTypeByName(name)
    if hasattr(message_factory, "GetMessageClass"):
        return message_factory.GetMessageClass(desc)
    return message_factory.MessageFactory(pool).GetPrototype(desc)


WhoAmIReq = msg("mlops.maturity.v1.WhoAmIRequest")
WhoAmIResp = msg("mlops.maturity.v1.WhoAmIResponse")
CreateBindingReq = msg("mlops.maturity.v1.CreateRoleBindingRequest")
RoleBinding = msg("mlops.maturity.v1.RoleBinding")


def read(name):
    with open(f"{pki}/{name}", "rb") as f:
        return f.read()


def free_port():
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
    return port


def channel(port, who):
    creds = grpc.ssl_channel_credentials(read("ca.pem"), read(f"{who}.key"), read(f"{who}.pem"))
    return grpc.secure_channel(f"localhost:{port}", creds)


def whoami(port, who, forged=None):
    md = [("x-forwarded-client-cert", forged)] if forged else None
    with channel(port, who) as ch:
        call = ch.unary_unary("/mlops.maturity.v1.AccessService/WhoAmI",
                              request_serializer=lambda m: m.SerializeToString(),
                              response_deserializer=WhoAmIResp.FromString)
        return call(WhoAmIReq(), metadata=md, timeout=10)


def status_of(fn):
    try:
        fn()
    except grpc.RpcError as e:
        return e.code()
    return grpc.StatusCode.OK


def wait_port(port, proc, what):
    for _ in range(200):
        if proc.poll() is not None:
            raise SystemExit(f"{what} exited with {proc.returncode}")
        try:
            socket.create_connection(("127.0.0.1", port), timeout=0.2).close()
            return
        except OSError:
            time.sleep(0.05)
    raise SystemExit(f"{what} did not listen on {port}")


def main():
    tmp = tempfile.mkdtemp(prefix="maturity-haproxy-")
    db = f"haproxy_{os.getpid()}"
    subprocess.run(["psql", "-X", "-q", "-d", base_url, "-c", f"CREATE DATABASE {db}"],
                   check=True, stdout=subprocess.DEVNULL)
    mport, hport = free_port(), free_port()
    procs = []
    try:
        # HAProxy wants each certificate and its key in one file.
        for name, parts in (("front.pem", ("server.pem", "server.key")),
                            ("proxy.pem", ("proxy.pem", "proxy.key"))):
            with open(f"{tmp}/{name}", "wb") as f:
                for p in parts:
                    f.write(read(p))
        mlog = open(f"{tmp}/maturityd.log", "wb")
        procs.append(subprocess.Popen([
            maturityd, "--listen", f"127.0.0.1:{mport}",
            "--database-url", f"{base_url} dbname={db}",
            "--tls-cert", f"{pki}/server.pem", "--tls-key", f"{pki}/server.key",
            "--tls-client-ca", f"{pki}/ca.pem", "--tls-crl", f"{pki}/crl.pem",
            "--admin-principal", "spiffe://maturityd.dev/admin",
            "--trusted-proxy", "spiffe://maturityd.dev/proxy"], stdout=mlog, stderr=mlog))
        wait_port(mport, procs[0], "maturityd")
        env = dict(os.environ,
                   HAPROXY_BIND=f"127.0.0.1:{hport}", HAPROXY_CERT=f"{tmp}/front.pem",
                   HAPROXY_CLIENT_CA=f"{pki}/ca.pem", MATURITYD_ADDR=f"127.0.0.1:{mport}",
                   HAPROXY_SERVER_CA=f"{pki}/ca.pem", HAPROXY_PROXY_CERT=f"{tmp}/proxy.pem")
        hlog = open(f"{tmp}/haproxy.log", "wb")
        procs.append(subprocess.Popen(["haproxy", "-db", "-f", cfg], env=env, stdout=hlog,
                                      stderr=hlog))
        wait_port(hport, procs[1], "haproxy")

        forged = "Cert=\"" + urllib.parse.quote(read("admin.pem").decode(), safe="") + "\""
        # Through HAProxy: the client's own certificate, whatever it claims.
        assert whoami(hport, "portal").principal == "spiffe://maturityd.dev/portal"
        assert whoami(hport, "portal", forged).principal == "spiffe://maturityd.dev/portal"
        r = whoami(hport, "admin")
        assert r.principal == "spiffe://maturityd.dev/admin" and r.bootstrap_admin, r
        # Roles are the forwarded principal's.
        def bind(who):
            with channel(hport, who) as ch:
                call = ch.unary_unary("/mlops.maturity.v1.AccessService/CreateRoleBinding",
                                      request_serializer=lambda m: m.SerializeToString(),
                                      response_deserializer=RoleBinding.FromString)
                req = CreateBindingReq()
                req.role_binding.principal = "user:haproxy-test@corp.example"
                req.role_binding.role = 4  # ROLE_VIEWER, global
                return call(req, timeout=10)
        assert status_of(lambda: bind("portal")) == grpc.StatusCode.PERMISSION_DENIED
        assert status_of(lambda: bind("admin")) == grpc.StatusCode.OK
        # Straight to maturityd, the header from a non-proxy is an impersonation attempt.
        assert status_of(lambda: whoami(mport, "portal", forged)) == \
            grpc.StatusCode.PERMISSION_DENIED
        # The proxy itself, straight: the forwarded certificate is believed.
        assert whoami(mport, "proxy", forged).principal == "spiffe://maturityd.dev/admin"
        # A revoked certificate: HAProxy (no CRL here) forwards it, maturityd refuses it.
        assert status_of(lambda: whoami(hport, "revoked")) == grpc.StatusCode.UNAUTHENTICATED
        print("test_haproxy: OK")
    finally:
        for p in reversed(procs):
            p.terminate()
            try:
                p.wait(timeout=15)
            except subprocess.TimeoutExpired:
                p.kill()
        shutil.rmtree(tmp, ignore_errors=True)
        subprocess.run(["psql", "-X", "-q", "-d", base_url, "-c", f"DROP DATABASE IF EXISTS {db}"],
                       stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)


main()
