#!/usr/bin/python3
"""Writes the seed corpus of fuzz_requests: one valid message per request type, prefixed by the
type's index in fuzz_requests.c. Usage: make_seeds.py DESCRIPTOR_SET OUT_DIR"""
import os
import sys

from google.protobuf import descriptor_pb2, descriptor_pool, json_format, message_factory

fds = descriptor_pb2.FileDescriptorSet()
fds.ParseFromString(open(sys.argv[1], "rb").read())
pool = descriptor_pool.DescriptorPool()
for fd in fds.file:
    pool.Add(fd)

P = "mlops.maturity.v1."
ANS = [{"practice_id": "people.regular_communication", "status": "PRACTICE_STATUS_IMPLEMENTED"},
       {"practice_id": "model_release.ab_testing", "status": "PRACTICE_STATUS_NOT_APPLICABLE", "note": "no traffic"},
       {"practice_id": "model_creation.managed_compute", "status": "PRACTICE_STATUS_PARTIAL", "evidence_uri": "https://ci/x"}]
EV = {"practice_id": "model_creation.experiment_tracking", "status": "PRACTICE_STATUS_IMPLEMENTED",
      "source": "mlflow/registry", "observe_time": "2026-01-01T00:00:00Z", "expire_time": "2026-02-01T00:00:00Z",
      "uri": "https://mlflow/x", "digest": "sha256:" + "0" * 64, "note": "seen"}
A = "organizations/acme/assessments/01890a5d-ac96-774b-bcce-b302099a8057"
seeds = [
    (P + "GetMaturityModelRequest", {"name": "models/mlops-v1"}),
    (P + "ListMaturityModelsRequest", {"page_size": 10}),
    (P + "CreateOrganizationRequest", {"organization_id": "acme", "request_id": "0f8e4c1a-1111-4abc-8def-0123456789ab",
                                       "organization": {"display_name": "Acme", "labels": {"team": "ml"}, "target_level": 3}}),
    (P + "GetOrganizationRequest", {"name": "organizations/acme"}),
    (P + "ListOrganizationsRequest", {"page_size": 50, "page_token": "abc"}),
    (P + "UpdateOrganizationRequest", {"organization": {"name": "organizations/acme", "display_name": "A", "etag": "\"1\""},
                                       "update_mask": "displayName"}),
    (P + "DeleteOrganizationRequest", {"name": "organizations/acme", "force": True}),
    (P + "CreateAssessmentRequest", {"parent": "organizations/acme", "assessment": {"title": "Q1", "model": "models/mlops-v1"}}),
    (P + "GetAssessmentRequest", {"name": A}),
    (P + "ListAssessmentsRequest", {"parent": "organizations/acme", "state": "STATE_DRAFT"}),
    (P + "UpdateAnswersRequest", {"name": A, "answers": ANS, "etag": "\"2\""}),
    (P + "SubmitAssessmentRequest", {"name": A}),
    (P + "DeleteAssessmentRequest", {"name": A}),
    (P + "EvaluateAnswersRequest", {"model": "models/mlops-v1", "answers": ANS}),
    (P + "GetRoadmapRequest", {"organization": "organizations/acme", "target_level": 3}),
    (P + "GetTransitionRequest", {"name": "organizations/acme/transitions/01890a5d-ac96-774b-bcce-b302099a8057"}),
    (P + "ListTransitionsRequest", {"parent": "organizations/-", "state": "STATE_PROPOSED"}),
    (P + "ApproveTransitionRequest", {"name": "organizations/acme/transitions/01890a5d-ac96-774b-bcce-b302099a8057"}),
    (P + "RejectTransitionRequest", {"name": "organizations/acme/transitions/01890a5d-ac96-774b-bcce-b302099a8057", "reason": "no"}),
    (P + "GetPortfolioSummaryRequest", {"labels": {"team": "ml"}}),
    (P + "ExportAssessmentsRequest", {"organization": "organizations/acme", "cursor": "abc"}),
    (P + "ExportTransitionsRequest", {"cursor": "abc"}),
    (P + "WhoAmIRequest", {}),
    (P + "CreateRoleBindingRequest", {"role_binding": {"principal": "spiffe://x/y", "role": "ROLE_VIEWER", "organization": "organizations/acme"}}),
    (P + "DeleteRoleBindingRequest", {"name": "roleBindings/01890a5d-ac96-774b-bcce-b302099a8057"}),
    (P + "ListRoleBindingsRequest", {"principal": "spiffe://x/y"}),
    (P + "ListAuditEventsRequest", {"page_size": 5}),
    ("grpc.health.v1.HealthCheckRequest", {"service": "mlops.maturity.v1.ScoringService"}),
    ("grpc.reflection.v1.ServerReflectionRequest", {"list_services": ""}),
    (P + "ReportEvidenceRequest", {"parent": "organizations/acme", "request_id": "0f8e4c1a-1111-4abc-8def-0123456789ab",
                                   "evidence": EV}),
    (P + "BatchReportEvidenceRequest", {"parent": "organizations/acme", "evidence": [EV, EV]}),
    (P + "GetEvidenceRequest", {"name": "organizations/acme/evidence/01890a5d-ac96-774b-bcce-b302099a8057"}),
    (P + "ListEvidenceRequest", {"parent": "organizations/acme", "practice_id": "people.regular_communication",
                                 "include_expired": True, "page_size": 10}),
    (P + "GetLiveScoreRequest", {"organization": "organizations/acme"}),
]
os.makedirs(sys.argv[2], exist_ok=True)
for i, (name, value) in enumerate(seeds):
    desc = pool.FindMessageTypeByName(name)
    cls = message_factory.GetMessageClass(desc) if hasattr(message_factory, "GetMessageClass") \
        else message_factory.MessageFactory(pool).GetPrototype(desc)
    msg = json_format.ParseDict(value, cls())
    with open(os.path.join(sys.argv[2], f"{i:02d}-{name.split('.')[-1]}"), "wb") as f:
        f.write(bytes([i]) + msg.SerializeToString())
