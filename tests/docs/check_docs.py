#!/usr/bin/python3
"""Keeps the documentation true to the binary:

  check_docs.py SOURCE_DIR MATURITYD_BIN

Every `--flag` and MATURITYD_* variable that README.md, docs/*.md and deploy/**/*.md mention must
be one `maturityd --help` lists, or one of maturityctl's (from its sources; flags of the other
tools the docs show, buf, docker, protoc, are listed below by name); every metric name (grpc_server_*, maturityd_*, process_*) must be one
service/svc_metrics.c exports; and no document or source file (comments included) may send the
reader to design notes that are not in the repository, or to a docs/ page that does not exist.
"""
import glob
import os
import re
import sys

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "deploy"))
import facts  # noqa: E402

src, maturityd = sys.argv[1], sys.argv[2]
hf = facts.help_facts(maturityd)
metrics = facts.metric_names(src)

# Flags of other programs the documents show (buf curl, buf generate, docker, pip, protoc,
# scripts/bench and scripts/fuzz, cmake).
OTHER_FLAGS = {
    "schema", "protocol", "cacert", "cert", "key", "list-services", "data",  # buf curl
    "build", "rm", "target", "quick",  # docker compose / docker / scripts/bench
    "python_out", "pyi_out", "grpc_python_out", "from-literal", "from-file",  # protoc, kubectl
    "output-on-failure", "dry-run", "call-graph", "install",  # ctest, clang-format, perf, cmake
}
# maturityctl's flags (the command-line client the documents use): every "--name" its sources
# spell out.
CLI_FLAGS = set()
for cpath in glob.glob(os.path.join(src, "cli", "*.c")):
    with open(cpath) as cf:
        ctext = cf.read()
    CLI_FLAGS |= set(re.findall(r'--([a-z][a-z0-9_-]*[a-z0-9])', ctext))
    CLI_FLAGS |= set(re.findall(r'ctl_has\([a-z]+, "([a-z][a-z0-9_-]*[a-z0-9])"\)', ctext))
    CLI_FLAGS |= set(re.findall(r'strncmp\(s \+ 2, "([a-z][a-z0-9_-]*[a-z0-9])"', ctext))
    CLI_FLAGS |= set(re.findall(r'ctl_opt\([a-z]+, "([a-z][a-z0-9_-]*[a-z0-9])"\)', ctext))
    for spec in re.findall(r'\{"[a-z]+", "[a-z]*", "([^"]*)"', ctext):  # command tables
        CLI_FLAGS |= {w.rstrip("=*") for w in spec.split()}
# The benchmark tools' flags (scripts/bench, maturity-loadgen), which docs/benchmarks.md shows.
for tpath in glob.glob(os.path.join(src, "tools", "bench", "*.c")) + [os.path.join(src, "scripts", "bench")]:
    with open(tpath) as tf:
        CLI_FLAGS |= set(re.findall(r'--([a-z][a-z0-9_-]*[a-z0-9])', tf.read()))
# Environment variables that are test knobs, documented as such, not configuration.
TEST_KNOBS = {"MATURITYD_EVENT_HEARTBEAT_MS", "MATURITYD_DIRECT_GRPC_TLS"}
# Names that look like metrics but are not (compose volume names, grpc core functions that
# docs/architecture.md names).
NOT_METRICS = {"maturityd_pki", "maturityd_pgdata", "grpc_server_add_channel_from_fd",
               "grpc_server_cancel_all_calls", "grpc_server_destroy", "grpc_server_request_call",
               "grpc_server_shutdown_and_notify"}

files = [os.path.join(src, "README.md")] + sorted(glob.glob(os.path.join(src, "docs/*.md"))) + \
    sorted(glob.glob(os.path.join(src, "deploy/**/*.md"), recursive=True))
failures = []
for path in files:
    rel = os.path.relpath(path, src)
    with open(path) as f:
        text = f.read()
    for flag in sorted(set(re.findall(r"(?<![\w-])--([a-z][a-z0-9_-]*[a-z0-9])", text))):
        if flag not in hf["flags"] and flag not in OTHER_FLAGS and flag not in CLI_FLAGS:
            failures.append(f"{rel}: --{flag} is not a maturityd flag (maturityd --help)")
    for env in sorted(set(re.findall(r"\bMATURITYD_[A-Z_]*[A-Z]", text))):
        if env not in hf["envs"] and env + "_*" not in text and env not in TEST_KNOBS:
            failures.append(f"{rel}: {env} is not a maturityd environment variable")
    for name in sorted(set(re.findall(r"\b((?:grpc_server|maturityd|process)_[a-z_]+)\b", text))):
        if name not in metrics and name not in NOT_METRICS:
            failures.append(f"{rel}: {name} is not a metric the server exports")
    for cite in re.findall(r"\bSPEC\b(?: ?§ ?\d+)?|\bAPI\.md\b|\bARCHITECTURE(?:\.md)?\b|NOTES-grpc-core",
                           text):
        failures.append(f"{rel}: cites \"{cite}\", which is not in the repository")

# The sources explain themselves too: comments point to docs/, never to design notes a reader of
# the repository does not have, and every docs/*.md a source or document names exists.
CITE = re.compile(r"\bSPEC(?:\.md)?\b|\bAPI\.md\b|\bARCHITECTURE(?:\.md)?\b|\bNOTES(?:-grpc-core)?\b")
SECTION = re.compile(r"§ ?\d")  # a section sign not in an RFC reference (those name the RFC)
DOC_REF = re.compile(r"\bdocs/([A-Za-z0-9_-]+\.md)\b")
SOURCE_EXT = (".c", ".h", ".def", ".py", ".sql", ".cmake", ".proto", ".sh", ".md", ".txt", ".yaml",
              ".cfg", ".supp", "Dockerfile")
SKIP_DIRS = {".git", "build", "node_modules", "gen", ".dev", ".venv"}
this = os.path.abspath(__file__)
documents = {os.path.abspath(p) for p in files}  # their citations are checked above
n_sources = 0
for root, dirs, names in os.walk(src):
    dirs[:] = sorted(d for d in dirs if d not in SKIP_DIRS and not d.startswith("build"))
    for name in sorted(names):
        path = os.path.join(root, name)
        rel = os.path.relpath(path, src)
        if os.path.abspath(path) == this:
            continue
        try:
            with open(path, encoding="utf-8") as f:
                text = f.read()
        except (UnicodeDecodeError, OSError):
            continue
        if not (name.endswith(SOURCE_EXT) or text.startswith("#!")):  # scripts have no extension
            continue
        n_sources += 1
        lines = text.split("\n")
        for no, line in enumerate(lines, 1):
            for cite in [] if os.path.abspath(path) in documents else CITE.findall(line):
                failures.append(f"{rel}:{no}: cites \"{cite}\", which is not in the repository "
                                "(point to docs/)")
            if SECTION.search(line) and "RFC" not in line:
                failures.append(f"{rel}:{no}: a section sign (§) that names no RFC: cite docs/")
            for doc in DOC_REF.findall(line):
                if not os.path.exists(os.path.join(src, "docs", doc)):
                    failures.append(f"{rel}:{no}: names docs/{doc}, which does not exist")

if failures:
    print("\n".join("FAIL: " + f for f in failures))
    sys.exit(1)
print(f"check_docs: {len(files)} documents agree with maturityd --help and the metrics; "
      f"{n_sources} files cite only docs/ that exist")
