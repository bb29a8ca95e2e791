#!/usr/bin/python3
"""`maturityctl events watch` resumes by itself from its last cursor when a stream breaks.

A stand-in EventService (Debian's python3-grpcio over mutual TLS with the test PKI) drops the
first stream with UNAVAILABLE after an event and a heartbeat, ends the second with
RESOURCE_EXHAUSTED (a reader too slow for the server's window) after one more event, and answers
the third with PERMISSION_DENIED, which is final. The watch must print every message once, ask
each time from the last cursor it saw, say on stderr that it resumes, and exit 1 at the end.
Usage: test_cli_watch.py MATURITYCTL DESCRIPTOR_SET (needs MATURITY_TEST_PKI; else skipped, 77).
"""
import json
import os
import subprocess
import sys
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


Request = msg("mlops.maturity.v1.WatchEventsRequest")
Response = msg("mlops.maturity.v1.WatchEventsResponse")


def read(name):
    with open(f"{pki}/{name}", "rb") as f:
        return f.read()


calls = []


def event(n, cursor):
    r = Response(cursor=cursor)
    r.event.name = f"events/{n}"
    r.event.type = 1  # EVENT_TYPE_ORGANIZATION_CREATED
    r.event.organization = "organizations/acme"
    r.event.resource = "organizations/acme"
    r.event.cursor = cursor
    return r


def watch(request, context):
    calls.append((request.parent, request.after))
    if len(calls) == 1:
        yield event(1, "c1")
        yield Response(cursor="c2")  # a heartbeat: no event, a fresh cursor
        context.abort(grpc.StatusCode.UNAVAILABLE, "connection dropped")
    elif len(calls) == 2:
        yield event(3, "c3")
        context.abort(grpc.StatusCode.RESOURCE_EXHAUSTED, "reader too slow")
    else:
        context.abort(grpc.StatusCode.PERMISSION_DENIED, "binding removed")


server = grpc.server(futures.ThreadPoolExecutor(max_workers=4))
server.add_generic_rpc_handlers([
    grpc.method_handlers_generic_handler("mlops.maturity.v1.EventService", {
        "WatchEvents": grpc.unary_stream_rpc_method_handler(
            watch, request_deserializer=Request.FromString,
            response_serializer=Response.SerializeToString),
    })
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
try:
    p = subprocess.run(
        [ctl, "events", "watch", "acme", "-o", "json", "--server", f"127.0.0.1:{port}",
         "--cacert", f"{pki}/ca.pem", "--cert", f"{pki}/admin.pem", "--key", f"{pki}/admin.key"],
        capture_output=True, text=True, timeout=60, env=env)
finally:
    server.stop(0)

failures = []
lines = [json.loads(line) for line in p.stdout.splitlines()]
if [m.get("cursor") for m in lines] != ["c1", "c2", "c3"]:
    failures.append(f"printed cursors {[m.get('cursor') for m in lines]}, want c1 c2 c3")
if lines and lines[0].get("event", {}).get("type") != "EVENT_TYPE_ORGANIZATION_CREATED":
    failures.append(f"first line {lines[0]}")
if calls != [("organizations/acme", ""), ("organizations/acme", "c2"),
             ("organizations/acme", "c3")]:
    failures.append(f"requests (parent, after) {calls}, want after '', c2, c3")
if p.stderr.count("resuming") != 2:
    failures.append("stderr does not say twice that the watch resumes")
if "PERMISSION_DENIED: binding removed" not in p.stderr:
    failures.append("the final status is not on stderr")
if p.returncode != 1:
    failures.append(f"exit {p.returncode}, want 1")
if failures:
    print("\n".join(failures))
    print("stdout:", p.stdout)
    print("stderr:", p.stderr)
    sys.exit(1)
print("ok: watch resumed from c2 and c3, printed c1 c2 c3 once each, ended on PERMISSION_DENIED")
