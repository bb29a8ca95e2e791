#!/usr/bin/python3
"""Content checks of the container files, run by ctest on every machine (no container engine is
needed: the image build itself is tried by scripts/test when a builder is present).

  check_container.py SOURCE_DIR MATURITYD_BIN

.dockerignore keeps everything that is not source out of the build context; the build stage
installs the build profile of scripts/install-deps only; no key is made world-readable; compose
has what a first `up` needs (service-name SAN, restarts, a data volume, a healthcheck, a stop
grace longer than --shutdown-grace, metrics on 127.0.0.1, a PKI job that installs nothing); and
gen-pki gives the server key to the service user and keeps the CA key out of the served volume.
"""
import fnmatch
import os
import re
import shlex
import stat
import subprocess
import sys
import tempfile

import yaml

src, maturityd = sys.argv[1], sys.argv[2]
failures = []


def check(ok, what):
    if not ok:
        failures.append(what)


def read(rel):
    with open(os.path.join(src, rel)) as f:
        return f.read()


# --- .dockerignore ----------------------------------------------------------------------------
patterns = [l.strip() for l in read(".dockerignore").splitlines()
            if l.strip() and not l.startswith("#")]


def ignored(path):
    """Docker's rule, near enough: a pattern matches the path or one of its parents; ** spans
    directories."""
    parts = path.split("/")
    for p in patterns:
        p = p.rstrip("/")
        for i in range(1, len(parts) + 1):
            head = "/".join(parts[:i])
            if fnmatch.fnmatchcase(head, p):
                return True
            if p.startswith("**/") and fnmatch.fnmatchcase(parts[i - 1], p[3:]):
                return True
    return False


for path in [".git/HEAD", "build/CMakeCache.txt", "build-asan/x.o", "build/test-env/pki/ca.key",
             ".dev/pg/data/PG_VERSION", ".dev/pki/ca.key", "tools/node_modules/.bin/buf",
             "build.build.log", "tests/x.log", "tools/npm-install.log", "service/a.o"]:
    check(ignored(path), f".dockerignore lets {path} into the build context")
for path in ["CMakeLists.txt", "service/main.c", "scripts/install-deps", "scripts/build",
             "proto/buf.yaml" if os.path.exists(os.path.join(src, "proto/buf.yaml")) else "buf.yaml",
             "storage/migrations/0001_init.sql", "docker/Dockerfile", "tools/package.json",
             "tools/CMakeLists.txt"]:
    check(not ignored(path), f".dockerignore keeps the source file {path} out")

# --- scripts/install-deps profiles -------------------------------------------------------------
deps = read("scripts/install-deps")
m = re.search(r"build_pkgs=\(([^)]*)\)", deps)
check(m is not None, "install-deps: no build_pkgs list")
build_pkgs = set(m.group(1).split()) if m else set()
for bad in ["postgresql", "postgresql-contrib", "clang", "valgrind", "python3-grpcio",
            "python3-protobuf", "python3-yaml", "nodejs", "npm", "libcmocka-dev"]:
    check(bad not in build_pkgs, f"install-deps --build installs {bad}")
for need in ["cmake", "libgrpc-dev", "libpq-dev", "protobuf-c-compiler", "libmicrohttpd-dev"]:
    check(need in build_pkgs, f"install-deps --build lacks {need}")
check("--build)" in deps, "install-deps has no --build option")

# --- Dockerfile --------------------------------------------------------------------------------
dockerfile = read("docker/Dockerfile")
runs = re.findall(r"^RUN (.*?)(?<!\\)$", dockerfile, re.M | re.S)
check(any("install-deps --build" in r for r in runs),
      "Dockerfile: the build stage does not use install-deps --build")
check(not any(re.search(r"install-deps(\s*&&|\s*\\?\s*$)", r) for r in runs),
      "Dockerfile: install-deps without a profile (the whole test toolchain)")
check(re.search(r"^USER 10001", dockerfile, re.M) is not None, "Dockerfile: not USER 10001")
check("HEALTHCHECK" in dockerfile and "maturityd\", \"health\"" in dockerfile,
      "Dockerfile: no HEALTHCHECK with maturityd health")
stages = re.findall(r"^FROM \S+(?: AS (\S+))?", dockerfile, re.M)
check(stages and stages[-1] == "", "Dockerfile: the last stage must be the server image")
check("pki" in stages, "Dockerfile: no pki stage for compose's certificate job")

for rel in ["docker/Dockerfile", "docker/compose.yaml", "scripts/gen-pki"]:
    check(not re.search(r"chmod\s+(-R\s+)?(a\+r|o\+r|0?[0-7][0-7][4-7][0-7]?\s+\S*\.key|777)",
                        read(rel)), f"{rel}: makes keys world-readable")

# --- compose -----------------------------------------------------------------------------------
compose = yaml.safe_load(read("docker/compose.yaml"))
svcs = compose["services"]
m = svcs["maturityd"]
check(m.get("restart") == "unless-stopped", "compose: maturityd restart is not unless-stopped")
check(svcs["postgres"].get("restart") == "unless-stopped",
      "compose: postgres restart is not unless-stopped")
check(any(str(v).split(":")[1:2] == ["/var/lib/postgresql/data"]
          for v in svcs["postgres"].get("volumes", [])),
      "compose: no volume for PostgreSQL's data")
hc = m.get("healthcheck", {}).get("test", [])
check("health" in hc and any(str(x).endswith("maturityd") for x in hc),
      "compose: maturityd healthcheck is not `maturityd health`")


def seconds(v):
    mt = re.fullmatch(r"(\d+)(s|m)?", str(v))
    return int(mt.group(1)) * (60 if mt.group(2) == "m" else 1) if mt else -1


help_text = subprocess.run([maturityd, "--help"], capture_output=True, text=True).stdout
mg = re.search(r"--shutdown-grace V.*default (\d+)", help_text)
grace = int(m.get("environment", {}).get("MATURITYD_SHUTDOWN_GRACE", mg.group(1) if mg else 10))
check(seconds(m.get("stop_grace_period", "10s")) > grace,
      f"compose: stop_grace_period is not longer than --shutdown-grace ({grace} s)")
for p in m.get("ports", []):
    p = str(p)
    if p.endswith(":9090") or p.endswith(":8081"):
        check(p.startswith("127.0.0.1:"), f"compose: plaintext port published beyond 127.0.0.1: {p}")
check(any(str(p).endswith(":9090") for p in m.get("ports", [])), "compose: metrics not published")
pki = svcs["pki"]
check("apt-get" not in yaml.safe_dump(pki), "compose: the PKI job runs apt-get on every up")
check(pki.get("build", {}).get("target") == "pki", "compose: the PKI job is not the pki stage")
served = [str(v).split(":")[0] for v in m.get("volumes", [])]
pki_vols = {str(v).split(":")[0]: str(v).split(":")[1] for v in pki.get("volumes", [])}
cmd = pki.get("command", [])
check("--ca-key-dir" in cmd, "compose: gen-pki without --ca-key-dir (ca.key in the served volume)")
if "--ca-key-dir" in cmd:
    ca_dir = cmd[cmd.index("--ca-key-dir") + 1]
    ca_vol = [k for k, v in pki_vols.items() if v == ca_dir]
    check(ca_vol and ca_vol[0] not in served, "compose: the CA key volume is mounted into maturityd")
check("--service-uid" in cmd and cmd[cmd.index("--service-uid") + 1] == "10001",
      "compose: gen-pki does not give server.key to uid 10001")

# --- gen-pki -----------------------------------------------------------------------------------
with tempfile.TemporaryDirectory() as tmp:
    served_dir, ca_dir = os.path.join(tmp, "pki"), os.path.join(tmp, "ca")
    uid = os.getuid()
    r = subprocess.run([os.path.join(src, "scripts/gen-pki"), "--service-uid", str(uid),
                        "--ca-key-dir", ca_dir, served_dir], capture_output=True, text=True)
    check(r.returncode == 0, f"gen-pki failed: {r.stderr}")
    if r.returncode == 0:
        check(not os.path.exists(os.path.join(served_dir, "ca.key")), "gen-pki: ca.key served")
        check(os.path.exists(os.path.join(ca_dir, "ca.key")), "gen-pki: ca.key not in CADIR")
        st = os.stat(os.path.join(served_dir, "server.key"))
        check(st.st_uid == uid and stat.S_IMODE(st.st_mode) == 0o400,
              f"gen-pki: server.key is {oct(stat.S_IMODE(st.st_mode))} uid {st.st_uid}")
        for f in os.listdir(served_dir):
            mode = stat.S_IMODE(os.stat(os.path.join(served_dir, f)).st_mode)
            if f.endswith(".key"):
                check(mode & 0o077 == 0, f"gen-pki: {f} is readable by others ({oct(mode)})")
        san = subprocess.run(["openssl", "x509", "-noout", "-ext", "subjectAltName", "-in",
                              os.path.join(served_dir, "server.pem")],
                             capture_output=True, text=True).stdout
        check("DNS:maturityd" in san, f"gen-pki: the server certificate lacks DNS:maturityd: {san}")

if failures:
    print("\n".join("FAIL: " + f for f in failures))
    sys.exit(1)
print("check_container: .dockerignore, install-deps --build, Dockerfile, compose and gen-pki: ok")
