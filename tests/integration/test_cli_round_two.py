#!/usr/bin/python3
"""maturityctl's commands for the services maturityd does not serve yet (events, gates,
evidence), against stand-ins written with Debian's python3-grpcio over mutual TLS with the test
PKI: what each command sends, what it prints, its exit status, and the behaviour that needs a
misbehaving server to show.

- `events watch` resumes by itself from its last cursor: the stand-in drops the first stream
  with UNAVAILABLE after an event and a heartbeat, ends the second with RESOURCE_EXHAUSTED (a
  reader too slow for the server's window) after one more event, and answers the third with
  PERMISSION_DENIED, which is final. Every message is printed once; each request carries the
  last cursor seen.
- `gate check` turns its flags into the request, exits 3 when not allowed and 0 when allowed,
  and with `--attest --out FILE` writes the DSSE envelope that `attestation verify` then checks
  with the key from `attestation keys` (a changed payload fails).
- `evidence report` sends the observation with a 30-day lifetime by default.
- `--on-behalf-of` / MATURITYCTL_ON_BEHALF_OF send the `x-on-behalf-of` header.

Usage: test_cli_round_two.py MATURITYCTL DESCRIPTOR_SET (needs MATURITY_TEST_PKI; else exit 77).
"""
import base64
import hashlib
import json
import os
import subprocess
import sys
import tempfile
from concurrent import futures

import grpc
from google.protobuf import descriptor_pb2, descriptor_pool, message_factory

if not os.environ.get("MATURITY_TEST_PKI"):
    print("MATURITY_TEST_PKI is not set: skipped")
    sys.exit(77)
ctl, dset = sys.argv[1], sys.argv[2]
pki = os.environ["MATURITY_TEST_PKI"]

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


def read(name):
    with open(f"{pki}/{name}", "rb") as f:
        return f.read()



WatchReq = msg("mlops.maturity.v1.WatchEventsRequest")
WatchResp = msg("mlops.maturity.v1.WatchEventsResponse")
GateReq = msg("mlops.maturity.v1.CheckGateRequest")
Decision = msg("mlops.maturity.v1.GateDecision")
KeysReq = msg("mlops.maturity.v1.ListAttestationKeysRequest")
KeysResp = msg("mlops.maturity.v1.ListAttestationKeysResponse")
EvReq = msg("mlops.maturity.v1.ReportEvidenceRequest")
Evidence = msg("mlops.maturity.v1.Evidence")

# The stand-in's signing key, made and used with the openssl command (as gen-pki does).
tmp = tempfile.mkdtemp(prefix="test_cli_round_two.")
subprocess.run(["openssl", "genpkey", "-algorithm", "ed25519", "-out", f"{tmp}/signing.key"],
               check=True, capture_output=True)
pem = subprocess.run(["openssl", "pkey", "-in", f"{tmp}/signing.key", "-pubout"], check=True,
                     capture_output=True, text=True).stdout
spki = subprocess.run(["openssl", "pkey", "-in", f"{tmp}/signing.key", "-pubout", "-outform",
                       "DER"], check=True, capture_output=True).stdout


def sign(data):
    # Ed25519 signs in one shot: openssl wants the message in a file, not a pipe.
    with tempfile.NamedTemporaryFile(dir=tmp) as f:
        f.write(data)
        f.flush()
        return subprocess.run(["openssl", "pkeyutl", "-sign", "-inkey", f"{tmp}/signing.key",
                               "-rawin", "-in", f.name], check=True, capture_output=True).stdout


keyid = hashlib.sha256(spki).hexdigest()

watch_calls, gate_calls, evidence_calls = [], [], []


def event(n, cursor):
    r = WatchResp(cursor=cursor)
    r.event.name = f"events/{n}"
    r.event.type = 1  # EVENT_TYPE_ORGANIZATION_CREATED
    r.event.organization = "organizations/acme"
    r.event.resource = "organizations/acme"
    r.event.cursor = cursor
    return r


def watch(request, context):
    watch_calls.append((request.parent, request.after))
    if len(watch_calls) == 1:
        yield event(1, "c1")
        yield WatchResp(cursor="c2")  # a heartbeat: no event, a fresh cursor
        context.abort(grpc.StatusCode.UNAVAILABLE, "connection dropped")
    elif len(watch_calls) == 2:
        yield event(3, "c3")
        context.abort(grpc.StatusCode.RESOURCE_EXHAUSTED, "reader too slow")
    else:
        context.abort(grpc.StatusCode.PERMISSION_DENIED, "binding removed")


def check_gate(request, context):
    gate_calls.append(request)
    d = Decision(organization=request.organization, level=1)
    d.decide_time.FromSeconds(1767323045)
    if request.requirement.min_level > 1:
        d.unmet.add(field="requirement.min_level", message="level 1 is below 3",
                    required_level=request.requirement.min_level, actual_level=1)
    d.allowed = len(d.unmet) == 0
    if request.attest:
        statement = json.dumps({"_type": "https://in-toto.io/Statement/v1",
                                "predicateType": "https://maturityd.dev/attestation/gate-decision/v1",
                                "predicate": {"organization": request.organization,
                                              "allowed": d.allowed}}).encode()
        ptype = "application/vnd.in-toto+json"
        pae = b"DSSEv1 %d %s %d %s" % (len(ptype), ptype.encode(), len(statement), statement)
        d.attestation.payload_type = ptype
        d.attestation.payload = statement
        d.attestation.signatures.add(keyid=keyid, sig=sign(pae))
    return d


delegations = []


def list_keys(request, context):
    delegations.append(dict(context.invocation_metadata()).get("x-on-behalf-of"))
    r = KeysResp()
    r.keys.add(keyid=keyid, algorithm="ed25519", public_key_pem=pem, active=True)
    return r


def report_evidence(request, context):
    evidence_calls.append(request)
    e = Evidence()
    e.CopyFrom(request.evidence)
    e.name = request.parent + "/evidence/0001"
    e.reporter = "spiffe://maturityd.dev/admin"
    return e


server = grpc.server(futures.ThreadPoolExecutor(max_workers=4))
server.add_generic_rpc_handlers([
    grpc.method_handlers_generic_handler("mlops.maturity.v1.EventService", {
        "WatchEvents": grpc.unary_stream_rpc_method_handler(
            watch, request_deserializer=WatchReq.FromString,
            response_serializer=WatchResp.SerializeToString),
    }),
    grpc.method_handlers_generic_handler("mlops.maturity.v1.GateService", {
        "CheckGate": grpc.unary_unary_rpc_method_handler(
            check_gate, request_deserializer=GateReq.FromString,
            response_serializer=Decision.SerializeToString),
        "ListAttestationKeys": grpc.unary_unary_rpc_method_handler(
            list_keys, request_deserializer=KeysReq.FromString,
            response_serializer=KeysResp.SerializeToString),
    }),
    grpc.method_handlers_generic_handler("mlops.maturity.v1.EvidenceService", {
        "ReportEvidence": grpc.unary_unary_rpc_method_handler(
            report_evidence, request_deserializer=EvReq.FromString,
            response_serializer=Evidence.SerializeToString),
    }),
])
creds = grpc.ssl_server_credentials([(read("server.key"), read("server.pem"))],
                                    root_certificates=read("ca.pem"), require_client_auth=True)
port = server.add_secure_port("127.0.0.1:0", creds)
server.start()

env = dict(os.environ)
for k in list(env):
    if k.startswith("MATURITYCTL_"):
        del env[k]
env["XDG_CONFIG_HOME"] = "/nonexistent"
env["MATURITYCTL_SERVER"] = f"127.0.0.1:{port}"
env["MATURITYCTL_CACERT"] = f"{pki}/ca.pem"
env["MATURITYCTL_CERT"] = f"{pki}/admin.pem"
env["MATURITYCTL_KEY"] = f"{pki}/admin.key"
failures = []


def run(*args, want):
    p = subprocess.run([ctl, *args], capture_output=True, text=True, timeout=60, env=env)
    if p.returncode != want:
        failures.append(f"{' '.join(args)}: exit {p.returncode}, want {want}\n"
                        f"stdout: {p.stdout}\nstderr: {p.stderr}")
    return p


try:
    # events watch
    p = run("events", "watch", "acme", "-o", "json", want=1)
    lines = [json.loads(line) for line in p.stdout.splitlines()]
    if [m.get("cursor") for m in lines] != ["c1", "c2", "c3"]:
        failures.append(f"watch printed cursors {[m.get('cursor') for m in lines]}, want c1 c2 c3")
    if lines and lines[0].get("event", {}).get("type") != "EVENT_TYPE_ORGANIZATION_CREATED":
        failures.append(f"watch: first line {lines[0]}")
    if watch_calls != [("organizations/acme", ""), ("organizations/acme", "c2"),
                       ("organizations/acme", "c3")]:
        failures.append(f"watch requests (parent, after) {watch_calls}, want after '', c2, c3")
    if p.stderr.count("resuming") != 2:
        failures.append("watch: stderr does not say twice that it resumes")
    if "PERMISSION_DENIED: binding removed" not in p.stderr:
        failures.append("watch: the final status is not on stderr")

    # gate check: not allowed (exit 3), every flag in the request
    p = run("gate", "check", "acme", "--min-level", "3", "--dimension", "people=2",
            "--require", "people.regular_communication", "--require", "model_creation.x",
            "--max-evidence-age", "7d", "--live", "--subject", "registry/app@sha256:abcd12",
            want=3)
    if "NOT ALLOWED" not in p.stdout or "requirement.min_level" not in p.stdout:
        failures.append(f"gate table: {p.stdout}")
    r = gate_calls[-1] if gate_calls else GateReq()
    got = (r.organization, r.requirement.min_level, dict(r.requirement.min_dimension_levels),
           list(r.requirement.required_practice_ids), r.requirement.max_evidence_age.seconds,
           r.requirement.live, [(x.name, dict(x.digest)) for x in r.subjects], r.attest)
    want = ("organizations/acme", 3, {"people": 2},
            ["people.regular_communication", "model_creation.x"], 7 * 86400, True,
            [("registry/app", {"sha256": "abcd12"})], False)
    if got != want:
        failures.append(f"gate request {got}, want {want}")

    # gate check: allowed (exit 0), signed, verified offline
    env_file = f"{tmp}/decision.json"
    p = run("gate", "check", "organizations/acme", "--min-level", "1", "--attest", "--out",
            env_file, "-o", "json", want=0)
    if json.loads(p.stdout or "{}").get("allowed") is not True:
        failures.append(f"gate -o json: {p.stdout}")
    envelope = {}
    if os.path.exists(env_file):
        with open(env_file) as f:
            envelope = json.load(f)
    if set(envelope) != {"payloadType", "payload", "signatures"} or \
            envelope["signatures"][0].get("keyid") != keyid:
        failures.append(f"envelope {envelope}")
    p = run("attestation", "keys", "-o", "json", want=0)
    with open(f"{tmp}/key.pem", "w") as f:
        f.write(json.loads(p.stdout)["keys"][0]["publicKeyPem"])
    p = run("attestation", "keys", want=0)
    if keyid not in p.stdout or "BEGIN PUBLIC KEY" not in p.stdout:
        failures.append(f"attestation keys table: {p.stdout}")
    p = run("attestation", "verify", "--key", f"{tmp}/key.pem", env_file, want=0)
    if json.loads(p.stdout).get("predicateType") != \
            "https://maturityd.dev/attestation/gate-decision/v1":
        failures.append(f"verify printed {p.stdout}")
    envelope["payload"] = base64.b64encode(b'{"_type":"forged"}').decode()
    with open(f"{tmp}/forged.json", "w") as f:
        json.dump(envelope, f)
    run("attestation", "verify", "--key", f"{tmp}/key.pem", f"{tmp}/forged.json", want=1)

    # --on-behalf-of (and its environment variable) sends x-on-behalf-of; without it, nothing.
    delegations.clear()
    run("attestation", "keys", "--on-behalf-of", "user:alice@corp.example", want=0)
    env["MATURITYCTL_ON_BEHALF_OF"] = "user:bob@corp.example"
    run("attestation", "keys", want=0)
    del env["MATURITYCTL_ON_BEHALF_OF"]
    run("attestation", "keys", want=0)
    if delegations != ["user:alice@corp.example", "user:bob@corp.example", None]:
        failures.append(f"x-on-behalf-of sent: {delegations}")

    # evidence report
    p = run("evidence", "report", "acme", "--practice", "people.regular_communication",
            "--status", "implemented", "--source", "ci/github", "--observe-time",
            "2026-01-02T03:04:05Z", "--uri", "https://ci.example/run/1", want=0)
    if "organizations/acme/evidence/0001" not in p.stdout:
        failures.append(f"evidence table: {p.stdout}")
    e = evidence_calls[-1].evidence if evidence_calls else Evidence()
    got = (e.practice_id, e.status, e.source, e.observe_time.seconds,
           e.expire_time.seconds - e.observe_time.seconds, e.uri)
    want = ("people.regular_communication", 3, "ci/github", 1767323045, 30 * 86400,
            "https://ci.example/run/1")
    if got != want:
        failures.append(f"evidence request {got}, want {want}")
finally:
    server.stop(0)
    subprocess.run(["rm", "-rf", tmp])

if failures:
    print("\n".join(failures))
    sys.exit(1)
print("ok: watch resumed (c2, c3) and printed each message once; gate check flags, exit 3/0, "
      "signed decision verified offline; evidence report")
