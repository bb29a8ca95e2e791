#!/usr/bin/python3
"""More of the server's paths for the memcheck run (tests/valgrind/run), beyond interop.py:
a server stream read in part and cancelled, a stream read to the end, an unknown method, a passed
deadline, malformed protobuf, an oversized request, and a client without a certificate.
Usage: extra.py HOST:PORT PKI_DIR DESCRIPTOR_SET"""
import sys

import grpc
from google.protobuf import descriptor_pb2, descriptor_pool, message_factory

target, pki, dset = sys.argv[1], sys.argv[2], sys.argv[3]
fds = descriptor_pb2.FileDescriptorSet()
with open(dset, "rb") as f:
    fds.ParseFromString(f.read())
pool = descriptor_pool.DescriptorPool()
for fd in fds.file:
    pool.Add(fd)


def msg(name):
    desc = pool.FindMessageTypeByName("mlops.maturity.v1." + name)
    if hasattr(message_factory, "GetMessageClass"):
        return message_factory.GetMessageClass(desc)
    return message_factory.MessageFactory(pool).GetPrototype(desc)


def read(name):
    with open(f"{pki}/{name}", "rb") as f:
        return f.read()


creds = grpc.ssl_channel_credentials(read("ca.pem"), read("admin.key"), read("admin.pem"))
opts = [("grpc.ssl_target_name_override", "localhost")]
ch = grpc.secure_channel(target, creds, options=opts)
S = "/mlops.maturity.v1."
failed = 0


def check(name, cond, detail=""):
    global failed
    if not cond:
        failed += 1
        print(f"FAIL {name} {detail}")


def code_of(fn):
    try:
        fn()
        return grpc.StatusCode.OK
    except grpc.RpcError as e:
        return e.code()


Org, Assessment = msg("Organization"), msg("Assessment")
ch.unary_unary(S + "OrganizationService/CreateOrganization", request_serializer=lambda m: m.SerializeToString(),
               response_deserializer=Org.FromString)(
    msg("CreateOrganizationRequest")(organization_id="vg-org", organization=Org(display_name="valgrind")), timeout=30)
create_a = ch.unary_unary(S + "AssessmentService/CreateAssessment", request_serializer=lambda m: m.SerializeToString(),
                          response_deserializer=Assessment.FromString)
for i in range(30):
    create_a(msg("CreateAssessmentRequest")(parent="organizations/vg-org", assessment=Assessment(title=f"a{i}")), timeout=30)

export = ch.unary_stream(S + "ReportingService/ExportAssessments", request_serializer=lambda m: m.SerializeToString(),
                         response_deserializer=msg("ExportAssessmentsResponse").FromString)
req = msg("ExportAssessmentsRequest")(organization="organizations/vg-org", batch_size=5) \
    if "batch_size" in msg("ExportAssessmentsRequest").DESCRIPTOR.fields_by_name \
    else msg("ExportAssessmentsRequest")(organization="organizations/vg-org")
check("export all", len(list(export(req, timeout=60))) == 30)
it = export(req, timeout=60)
next(it)
it.cancel()

raw = lambda path: ch.unary_unary(path)  # bytes in, bytes out
check("unknown method", code_of(lambda: raw(S + "NoSuchService/Nope")(b"", timeout=30)) == grpc.StatusCode.UNIMPLEMENTED)
check("malformed protobuf", code_of(lambda: raw(S + "OrganizationService/GetOrganization")(b"\xff\xff\xff", timeout=30))
      == grpc.StatusCode.INVALID_ARGUMENT)
check("oversized request", code_of(lambda: raw(S + "OrganizationService/GetOrganization")(b"\x0a" + b"\x80\x80\x80\x04" + b"x" * (8 << 20), timeout=30))
      == grpc.StatusCode.RESOURCE_EXHAUSTED)
check("deadline", code_of(lambda: raw(S + "OrganizationService/GetOrganization")(b"", timeout=0.001))
      == grpc.StatusCode.DEADLINE_EXCEEDED)
anon = grpc.secure_channel(target, grpc.ssl_channel_credentials(read("ca.pem")), options=opts)
check("no client certificate", code_of(lambda: anon.unary_unary(S + "AccessService/WhoAmI")(b"", timeout=30))
      == grpc.StatusCode.UNAVAILABLE)
print(f"valgrind extra scenario: {'ok' if failed == 0 else f'{failed} failed'}")
sys.exit(1 if failed else 0)
