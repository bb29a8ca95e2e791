#!/usr/bin/python3
"""Interop check with a client we did not write: Debian's python3-grpcio over mutual TLS.

Messages come from the descriptor set embedded in maturityd (built from our .proto files) through
Debian's python3-protobuf, so the bytes on the wire are produced and parsed by Google's protobuf
runtime, not by protobuf-c. Usage: interop.py HOST:PORT PKI_DIR DESCRIPTOR_SET
"""
import base64
import hashlib
import json
import os
import signal
import sys
import time
import uuid

import grpc
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, ed25519
from google.protobuf import descriptor_pb2, descriptor_pool, json_format, message_factory

target, pki, dset = sys.argv[1], sys.argv[2], sys.argv[3]

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


def channel(who):
    creds = grpc.ssl_channel_credentials(read("ca.pem"), read(f"{who}.key"), read(f"{who}.pem"))
    return grpc.secure_channel(target, creds, options=[("grpc.ssl_target_name_override", "localhost")])


def unary(ch, method, req, resp_type):
    return ch.unary_unary(method, request_serializer=lambda m: m.SerializeToString(),
                          response_deserializer=resp_type.FromString)


passed = 0
failed = 0


def check(name, cond, detail=""):
    global passed, failed
    if cond:
        passed += 1
    else:
        failed += 1
        print(f"FAIL {name} {detail}")


admin = channel("admin")
HealthReq, HealthResp = msg("grpc.health.v1.HealthCheckRequest"), msg("grpc.health.v1.HealthCheckResponse")
for _ in range(100):
    try:
        r = unary(admin, "/grpc.health.v1.Health/Check", None, HealthResp)(HealthReq(), timeout=2)
        if r.status == 1:
            break
    except grpc.RpcError:
        pass
    time.sleep(0.1)
else:
    print("FAIL server never became SERVING")
    sys.exit(1)

Org = msg("mlops.maturity.v1.Organization")
CreateOrg = msg("mlops.maturity.v1.CreateOrganizationRequest")
GetOrg = msg("mlops.maturity.v1.GetOrganizationRequest")
create = unary(admin, "/mlops.maturity.v1.OrganizationService/CreateOrganization", None, Org)
get = unary(admin, "/mlops.maturity.v1.OrganizationService/GetOrganization", None, Org)

rid = str(uuid.uuid4()).upper()
req = CreateOrg(organization_id="py-org", request_id=rid,
                organization=Org(display_name="Python grpcio", description="interop ü",
                                 labels={"team": "platform", "tier": "gold"}, target_level=3))
o = create(req, timeout=10)
check("create name", o.name == "organizations/py-org", o.name)
check("create labels", dict(o.labels) == {"team": "platform", "tier": "gold"}, str(o.labels))
check("create etag", o.etag != "")
again = create(req, timeout=10)
check("request_id replay returns the first result", again.etag == o.etag and again.name == o.name)
g = get(GetOrg(name="organizations/py-org"), timeout=10)
check("get display_name", g.display_name == "Python grpcio", g.display_name)
check("get description utf-8", g.description == "interop ü", g.description)
check("get target_level", g.target_level == 3)
check("get create_time", g.create_time.seconds > 1_600_000_000)

try:
    get(GetOrg(name="organizations/no-such-org"), timeout=10)
    check("not found", False)
except grpc.RpcError as e:
    check("not found", e.code() == grpc.StatusCode.NOT_FOUND, str(e.code()))

try:
    create(CreateOrg(organization_id="Bad_ID", organization=Org()), timeout=10)
    check("bad id", False)
except grpc.RpcError as e:
    check("bad id code", e.code() == grpc.StatusCode.INVALID_ARGUMENT, str(e.code()))
    Status, BadRequest = msg("google.rpc.Status"), msg("google.rpc.BadRequest")
    raw = dict(e.trailing_metadata()).get("grpc-status-details-bin")
    st = Status.FromString(raw) if raw else Status()
    fields = []
    for d in st.details:
        if d.type_url.endswith("google.rpc.BadRequest"):
            fields = [v.field for v in BadRequest.FromString(d.value).field_violations]
    check("bad id field violation", "organization_id" in fields, str(fields))

Model = msg("mlops.maturity.v1.MaturityModel")
GetModel = msg("mlops.maturity.v1.GetMaturityModelRequest")
portal = channel("portal")
m = unary(portal, "/mlops.maturity.v1.ModelService/GetMaturityModel", None, Model)(GetModel(name="models/mlops-v1"), timeout=10)
check("model practices", len(m.practices) == 30, str(len(m.practices)))
check("model levels", [l.name for l in m.levels][0] == "No MLOps")

try:
    get(GetOrg(name="organizations/py-org"), timeout=10) and unary(portal, "/mlops.maturity.v1.OrganizationService/CreateOrganization", None, Org)(
        CreateOrg(organization_id="nope", organization=Org()), timeout=10)
    check("portal may not create", False)
except grpc.RpcError as e:
    check("portal may not create", e.code() == grpc.StatusCode.PERMISSION_DENIED, str(e.code()))

# Scoring and a roadmap.
Ans = msg("mlops.maturity.v1.Answer")
Eval, EvalResp = msg("mlops.maturity.v1.EvaluateAnswersRequest"), msg("mlops.maturity.v1.EvaluateAnswersResponse")
L1 = ["people.regular_communication", "model_creation.automated_data_pipeline",
      "model_release.versioned_scoring_scripts", "model_release.basic_model_integration_tests",
      "application_integration.app_unit_tests", "application_integration.automated_builds",
      "application_integration.operational_metrics"]
IMPL = 3
r = unary(portal, "/mlops.maturity.v1.ScoringService/EvaluateAnswers", None, EvalResp)(
    Eval(answers=[Ans(practice_id=p, status=IMPL) for p in L1]), timeout=10)
check("score level", r.score.overall_level == 1, str(r.score.overall_level))
check("score index", abs(r.score.maturity_index - 23.33) < 1e-9, str(r.score.maturity_index))
check("score blocking", len(r.score.blocking_practice_ids) == 8)
Assessment = msg("mlops.maturity.v1.Assessment")
CreateA, UpdA, SubA = (msg("mlops.maturity.v1.CreateAssessmentRequest"),
                       msg("mlops.maturity.v1.UpdateAnswersRequest"),
                       msg("mlops.maturity.v1.SubmitAssessmentRequest"))
a = unary(admin, "/mlops.maturity.v1.AssessmentService/CreateAssessment", None, Assessment)(
    CreateA(parent="organizations/py-org", assessment=Assessment(title="python")), timeout=10)
a = unary(admin, "/mlops.maturity.v1.AssessmentService/UpdateAnswers", None, Assessment)(
    UpdA(name=a.name, answers=[Ans(practice_id=p, status=IMPL) for p in L1]), timeout=10)
a = unary(admin, "/mlops.maturity.v1.AssessmentService/SubmitAssessment", None, Assessment)(
    SubA(name=a.name), timeout=10)
check("submitted", a.state == 2 and a.score.overall_level == 1)
Road, RoadReq = msg("mlops.maturity.v1.Roadmap"), msg("mlops.maturity.v1.GetRoadmapRequest")
rm = unary(admin, "/mlops.maturity.v1.ScoringService/GetRoadmap", None, Road)(
    RoadReq(organization="organizations/py-org"), timeout=10)
check("roadmap levels", rm.current_level == 1 and rm.target_level == 3, f"{rm.current_level}->{rm.target_level}")
check("roadmap stages", [st.level for st in rm.stages] == [2, 3], str([st.level for st in rm.stages]))
check("roadmap assessment", rm.assessment == a.name)

# Evidence: automation reports what it observes; the live score combines it with the submitted
# assessment above (every level-1 practice IMPLEMENTED).
Ts = msg("google.protobuf.Timestamp")
Ev = msg("mlops.maturity.v1.Evidence")
RepEv, BatchEv, BatchEvResp = (msg("mlops.maturity.v1.ReportEvidenceRequest"),
                               msg("mlops.maturity.v1.BatchReportEvidenceRequest"),
                               msg("mlops.maturity.v1.BatchReportEvidenceResponse"))
LiveReq, Live = msg("mlops.maturity.v1.GetLiveScoreRequest"), msg("mlops.maturity.v1.LiveScore")
now = int(time.time())
report_ev = unary(admin, "/mlops.maturity.v1.EvidenceService/ReportEvidence", None, Ev)
e = report_ev(RepEv(parent="organizations/py-org", request_id=str(uuid.uuid4()),
                    evidence=Ev(practice_id="model_creation.experiment_tracking", status=IMPL,
                                source="mlflow/tracking", observe_time=Ts(seconds=now - 60),
                                expire_time=Ts(seconds=now + 86400),
                                digest="sha256:" + "ab" * 32)), timeout=10)
check("evidence name", e.name.startswith("organizations/py-org/evidence/"), e.name)
check("evidence reporter", e.reporter == "spiffe://maturityd.dev/admin", e.reporter)
b = unary(admin, "/mlops.maturity.v1.EvidenceService/BatchReportEvidence", None, BatchEvResp)(
    BatchEv(parent="organizations/py-org", evidence=[
        Ev(practice_id="people.regular_communication", status=2, source="slack/bot",
           observe_time=Ts(seconds=now - 30), expire_time=Ts(seconds=now + 3600)),
        Ev(practice_id="model_creation.managed_compute", status=3, source="k8s/operator",
           observe_time=Ts(seconds=now - 3 * 86400), expire_time=Ts(seconds=now - 86400)),
    ]), timeout=10)
check("batch evidence", len(b.evidence) == 2)
try:
    report_ev(RepEv(parent="organizations/py-org",
                    evidence=Ev(practice_id="people.regular_communication", status=4,
                                source="slack/bot", observe_time=Ts(seconds=now),
                                expire_time=Ts(seconds=now + 60))), timeout=10)
    check("evidence NOT_APPLICABLE refused", False)
except grpc.RpcError as err:
    check("evidence NOT_APPLICABLE refused", err.code() == grpc.StatusCode.INVALID_ARGUMENT, str(err.code()))
lv = unary(portal, "/mlops.maturity.v1.EvidenceService/GetLiveScore", None, Live)
try:
    lv(LiveReq(organization="organizations/py-org"), timeout=10)
    check("portal may not read the live score", False)
except grpc.RpcError as err:
    check("portal may not read the live score", err.code() == grpc.StatusCode.PERMISSION_DENIED, str(err.code()))
ls = unary(admin, "/mlops.maturity.v1.EvidenceService/GetLiveScore", None, Live)(
    LiveReq(organization="organizations/py-org"), timeout=10)
st = {p.practice_id: p for p in ls.practices}
check("live practices", len(ls.practices) == 30, str(len(ls.practices)))
check("live assessment", ls.assessment == a.name, ls.assessment)
check("live evidence basis", st["model_creation.experiment_tracking"].basis == 1
      and st["model_creation.experiment_tracking"].evidence == e.name)
check("live drift", st["people.regular_communication"].drift
      and st["people.regular_communication"].status == 2 and st["people.regular_communication"].assessed_status == IMPL)
check("live expired evidence ignored", st["model_creation.managed_compute"].basis == 3)
check("live assessment basis", st["model_release.versioned_scoring_scripts"].basis == 2)
check("live level", ls.score.overall_level == 0, str(ls.score.overall_level))
check("live confidence", abs(ls.confidence - 1 / 7) < 1e-9, str(ls.confidence))
# Delegation: the gateway certificate (named by --delegator in tests/interop/run) acts for an end
# user with the x-on-behalf-of metadata, as a portal written in Python would.
WhoReq, WhoResp = msg("mlops.maturity.v1.WhoAmIRequest"), msg("mlops.maturity.v1.WhoAmIResponse")
gateway = channel("gateway")
whoami = unary(gateway, "/mlops.maturity.v1.AccessService/WhoAmI", None, WhoResp)
w = whoami(WhoReq(), timeout=10, metadata=[("x-on-behalf-of", "user:alice@corp.example")])
check("delegated whoami principal", w.principal == "user:alice@corp.example", w.principal)
check("delegated whoami delegator", w.delegator == "spiffe://maturityd.dev/gateway", w.delegator)
w = whoami(WhoReq(), timeout=10)
check("gateway for itself", w.principal == "spiffe://maturityd.dev/gateway" and w.delegator == "",
      f"{w.principal} / {w.delegator}")
try:
    unary(portal, "/mlops.maturity.v1.AccessService/WhoAmI", None, WhoResp)(
        WhoReq(), timeout=10, metadata=[("x-on-behalf-of", "user:alice@corp.example")])
    check("header from a non-delegator", False)
except grpc.RpcError as e:
    check("header from a non-delegator", e.code() == grpc.StatusCode.PERMISSION_DENIED
          and "x-on-behalf-of" in e.details(), f"{e.code()} {e.details()}")
try:
    whoami(WhoReq(), timeout=10, metadata=[("x-on-behalf-of", "alice")])
    check("header without a scheme", False)
except grpc.RpcError as e:
    check("header without a scheme", e.code() == grpc.StatusCode.INVALID_ARGUMENT, str(e.code()))

# Gates: a signed decision verified by Python's `cryptography` (an implementation we did not
# write) from the envelope's proto3 JSON form, which is a DSSE JSON envelope, with the public key
# ListAttestationKeys gives; once with the Ed25519 key maturityd starts with, once after a SIGHUP
# rotation to an ECDSA P-256 key (the run script passes the key files and the server's pid).
CheckReq, Decision = msg("mlops.maturity.v1.CheckGateRequest"), msg("mlops.maturity.v1.GateDecision")
ListKeysReq, ListKeys = (msg("mlops.maturity.v1.ListAttestationKeysRequest"),
                         msg("mlops.maturity.v1.ListAttestationKeysResponse"))
Req = msg("mlops.maturity.v1.GateRequirement")
check_gate = unary(admin, "/mlops.maturity.v1.GateService/CheckGate", None, Decision)
list_keys = unary(portal, "/mlops.maturity.v1.GateService/ListAttestationKeys", None, ListKeys)


def pae(payload_type, body):
    t = payload_type.encode()
    return b"DSSEv1 %d %s %d %s" % (len(t), t, len(body), body)


def verify(decision, algorithm):
    env = json.loads(json_format.MessageToJson(decision.attestation))
    body = base64.b64decode(env["payload"])
    sig = env["signatures"][0]
    keys = {k.keyid: k for k in list_keys(ListKeysReq(), timeout=10).keys}
    key = keys.get(sig["keyid"])
    if key is None:
        return f"keyid {sig['keyid']} not listed"
    pub = serialization.load_pem_public_key(key.public_key_pem.encode())
    spki = pub.public_bytes(serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo)
    if hashlib.sha256(spki).hexdigest() != key.keyid or key.algorithm != algorithm or not key.active:
        return f"key {key.keyid} {key.algorithm} active={key.active}"
    try:
        if isinstance(pub, ed25519.Ed25519PublicKey):
            pub.verify(base64.b64decode(sig["sig"]), pae(env["payloadType"], body))
        else:
            pub.verify(base64.b64decode(sig["sig"]), pae(env["payloadType"], body), ec.ECDSA(hashes.SHA256()))
    except Exception as e:  # cryptography raises InvalidSignature
        return f"signature: {e!r}"
    st = json.loads(body)
    if (env["payloadType"] != "application/vnd.in-toto+json"
            or st["_type"] != "https://in-toto.io/Statement/v1"
            or st["predicateType"] != "https://maturityd.dev/attestation/gate-decision/v1"
            or st["predicate"]["organization"] != "organizations/py-org"
            or st["predicate"]["allowed"] is not decision.allowed
            or st["subject"][0]["digest"]["sha256"] != hashlib.sha256(b"organizations/py-org").hexdigest()):
        return f"statement: {st}"
    return ""


d = check_gate(CheckReq(organization="organizations/py-org", requirement=Req(), attest=True), timeout=10)
why = verify(d, "ed25519")
check("gate ed25519 envelope verifies", d.allowed and why == "", why)

attest_dir, server_pid = os.environ.get("MATURITY_INTEROP_ATTEST_DIR"), os.environ.get("MATURITY_INTEROP_PID")
if attest_dir and server_pid:
    before = list_keys(ListKeysReq(), timeout=10).keys[0].keyid
    with open(f"{attest_dir}/ec.pem", "rb") as f, open(f"{attest_dir}/attest.pem", "wb") as g:
        g.write(f.read())
    os.kill(int(server_pid), signal.SIGHUP)
    for _ in range(200):  # the reload is at once; under valgrind "at once" takes a while
        if list_keys(ListKeysReq(), timeout=10).keys[0].keyid != before:
            break
        time.sleep(0.05)
    d = check_gate(CheckReq(organization="organizations/py-org", requirement=Req(min_level=2), attest=True),
                   timeout=10)
    why = verify(d, "ecdsa-p256-sha256")
    check("gate ecdsa-p256 envelope verifies", not d.allowed and why == "", why)
else:
    check("gate rotation (MATURITY_INTEROP_ATTEST_DIR/PID unset)", False)
# Events: watch py-org from the start, take the events so far, resume from a cursor in the middle
# (the next event is the one after it), then receive a change made while watching.
WReq, WResp = msg("mlops.maturity.v1.WatchEventsRequest"), msg("mlops.maturity.v1.WatchEventsResponse")
LEReq, LEResp = msg("mlops.maturity.v1.ListEventsRequest"), msg("mlops.maturity.v1.ListEventsResponse")
listed = unary(admin, "/mlops.maturity.v1.EventService/ListEvents", None, LEResp)(
    LEReq(parent="organizations/py-org", page_size=1000), timeout=10)
check("list events", len(listed.events) >= 3, str(len(listed.events)))
watch_events = admin.unary_stream("/mlops.maturity.v1.EventService/WatchEvents",
                                  request_serializer=lambda m: m.SerializeToString(),
                                  response_deserializer=WResp.FromString)
oldest_first = list(reversed(listed.events))
stream = watch_events(WReq(parent="organizations/py-org", start_time=Ts(seconds=1)), timeout=30)
got = []
for m in stream:
    if m.HasField("event"):
        got.append(m.event.name)
    if len(got) == len(oldest_first):
        break
stream.cancel()
check("watch replays in order", got == [e.name for e in oldest_first])
mid = oldest_first[1]
stream = watch_events(WReq(parent="organizations/py-org", after=mid.cursor), timeout=30)
first = next(m for m in stream if m.HasField("event"))
stream.cancel()
check("watch resumes after its cursor", first.event.name == oldest_first[2].name,
      f"{first.event.name} != {oldest_first[2].name}")
stream = watch_events(WReq(parent="organizations/py-org", after=oldest_first[-1].cursor), timeout=30)
UpdOrg, OrgT = msg("mlops.maturity.v1.UpdateOrganizationRequest"), msg("mlops.maturity.v1.Organization")
FM = msg("google.protobuf.FieldMask")
unary(admin, "/mlops.maturity.v1.OrganizationService/UpdateOrganization", None, OrgT)(
    UpdOrg(organization=OrgT(name="organizations/py-org", display_name="watched"),
           update_mask=FM(paths=["display_name"])), timeout=10)
live = next(m for m in stream if m.HasField("event"))
stream.cancel()
check("watch delivers live", live.event.type == 2 and
      live.event.organization_snapshot.display_name == "watched", str(live.event))
try:
    for m in watch_events(WReq(parent="organizations/py-org", after="garbage"), timeout=10):
        pass
    check("garbage cursor refused", False)
except grpc.RpcError as err:
    check("garbage cursor refused", err.code() == grpc.StatusCode.INVALID_ARGUMENT, str(err.code()))

print(f"interop python: {passed} passed, {failed} failed")
sys.exit(1 if failed else 0)
