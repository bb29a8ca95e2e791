-- seed.sql: realistic benchmark data for maturityd, loaded by scripts/bench into a throwaway
-- database that maturityd has already migrated. Deterministic, so the pgbench scripts in this
-- folder can name the same rows the load generator reads from its name files.
--
--   psql -v orgs=1000 -v per_org=40 -v submitted=26 -v update_drafts=2 -f seed.sql
--
-- Organizations are bench-0 .. bench-(orgs-1). Assessment number k (0 <= k < orgs * per_org)
-- belongs to organization o = k % orgs, is its j-th (j = k / orgs, creation order) and has the
-- id bench_asm_id(k) (a UUIDv7-shaped id whose last 48 bits are k). By j:
--   j <  submitted                          SUBMITTED, 10..30 answers of every status
--   submitted <= j < submitted+update_drafts DRAFT, for UpdateAnswers (stays a draft)
--   j >= submitted + update_drafts          DRAFT whose answers score exactly level (o + j) % 5,
--                                           for SubmitAssessment (each is submitted once)
-- Every organization's last_assessment_id is its newest submitted assessment (j = submitted-1),
-- and its current_level is set by an APPLIED 0 -> L transition, so the chain invariant
-- (docs/api.md, "Level transitions") holds.
-- Role bindings: spiffe://maturityd.dev/portal is a global EDITOR (the principal the RPC
-- scenarios use), plus a viewer and an editor per organization and a global reporter, so the
-- binding lookup maturityd does on every call searches a realistically sized index.
\set ON_ERROR_STOP on
SET synchronous_commit = off;
-- The rows are consistent by construction (checked below): skip per-row foreign-key and
-- chain triggers while loading, which would double the load time.
SET session_replication_role = replica;

-- Helpers for the seed and the pgbench scripts (parameters that maturityd sends as text are
-- computed from pgbench's integer variables by these; they are inlined and cost ~1 us).
CREATE OR REPLACE FUNCTION bench_asm_id(k bigint) RETURNS text
    LANGUAGE sql IMMUTABLE PARALLEL SAFE
    AS $$ SELECT '01900000-0000-7000-8000-' || lpad(to_hex(k), 12, '0') $$;
CREATE OR REPLACE FUNCTION bench_practice(i int) RETURNS text
    LANGUAGE sql IMMUTABLE PARALLEL SAFE
    AS $$ SELECT (ARRAY[
    'people.regular_communication', 'people.ds_de_repeatable_jobs',
    'people.ds_de_shared_inputs_outputs', 'people.se_de_integration_automation',
    'people.cross_functional_collaboration', 'people.post_deployment_metrics',
    'model_creation.automated_data_pipeline', 'model_creation.managed_compute',
    'model_creation.experiment_tracking', 'model_creation.versioned_code_and_models',
    'model_creation.automated_training_pipeline', 'model_creation.model_management',
    'model_creation.metric_triggered_retraining', 'model_release.versioned_scoring_scripts',
    'model_release.basic_model_integration_tests', 'model_release.tested_scoring_scripts',
    'model_release.engineering_managed_release', 'model_release.cicd_release',
    'model_release.per_release_tests', 'model_release.ab_testing',
    'model_release.scalable_serving', 'model_release.registry_integrated',
    'model_release.end_to_end_automation', 'application_integration.app_unit_tests',
    'application_integration.automated_builds', 'application_integration.operational_metrics',
    'application_integration.reduced_ds_dependency',
    'application_integration.app_integration_tests', 'application_integration.all_code_tested',
    'application_integration.model_monitoring'])[i + 1] $$;
CREATE OR REPLACE FUNCTION bench_practice_level(i int) RETURNS int
    LANGUAGE sql IMMUTABLE PARALLEL SAFE
    AS $$ SELECT (ARRAY[1,2,3,3,4,4, 1,2,2,2,2,2,4, 1,1,2,2,3,3,3,3,4,4, 1,1,1,3,3,3,4])[i + 1] $$;
-- What maturityd's store__uuid7 makes for audit events and transitions: 48 bits of Unix
-- milliseconds, version 7, random rest.
CREATE OR REPLACE FUNCTION bench_uuid7() RETURNS text
    LANGUAGE sql VOLATILE
    AS $$ SELECT substr(t, 1, 8) || '-' || substr(t, 9, 4) || '-7' || substr(r, 2, 3) || '-' ||
                 substr(r, 5, 4) || '-' || substr(r, 9, 12)
          FROM (SELECT lpad(to_hex((extract(epoch FROM clock_timestamp()) * 1000)::bigint), 12,
                            '0') AS t,
                       replace(gen_random_uuid()::text, '-', '') AS r) x $$;

BEGIN;
CREATE TEMP TABLE bench_params AS
SELECT :orgs::int AS orgs, :per_org::int AS per_org, :submitted::int AS submitted,
       :update_drafts::int AS update_drafts;

-- Level each organization reached with its seeded history; a third are AUTOMATIC.
CREATE TEMP TABLE bench_org AS
SELECT o, 'bench-' || o AS id, (o * 7 + 3) % 5 AS level,
       CASE WHEN o % 3 = 0 THEN 2 ELSE 1 END AS policy
FROM bench_params, generate_series(0, orgs - 1) AS o;

INSERT INTO organizations (id, display_name, description, labels, current_level, target_level,
                           transition_policy, last_assessment_id, create_time, update_time,
                           version)
SELECT b.id, 'Bench organization ' || b.o,
       'Machine-learning platform team ' || b.o || ' of the benchmark portfolio: batch and '
           || 'online models, feature store, shared CI/CD. Seeded by scripts/bench.',
       jsonb_build_object('team', 'team-' || (b.o % 50), 'region',
                          (ARRAY['eu-west', 'us-east', 'ap-south'])[1 + b.o % 3],
                          'tier', (ARRAY['gold', 'silver', 'bronze', 'lab'])[1 + b.o % 4]),
       b.level, least(4, b.level + 1 + b.o % 2), b.policy,
       bench_asm_id(b.o + p.orgs::bigint * (p.submitted - 1))::uuid,
       now() - interval '400 days' + b.o * interval '1 minute', now() - interval '1 day',
       3 + b.o % 7
FROM bench_org b, bench_params p;

INSERT INTO assessments (org_id, id, title, model_id, state, creator, submitter, create_time,
                         update_time, submit_time, version)
SELECT 'bench-' || (k % p.orgs), bench_asm_id(k)::uuid,
       'Quarterly review ' || (k / p.orgs), 'mlops-v1',
       CASE WHEN k / p.orgs < p.submitted THEN 2 ELSE 1 END,
       'spiffe://maturityd.dev/team-' || (k % p.orgs),
       CASE WHEN k / p.orgs < p.submitted THEN 'spiffe://maturityd.dev/portal' END,
       now() - interval '380 days' + (k / p.orgs) * interval '9 days' + (k % p.orgs) * interval '1 second',
       now() - interval '379 days' + (k / p.orgs) * interval '9 days' + (k % p.orgs) * interval '1 second',
       CASE WHEN k / p.orgs < p.submitted
            THEN now() - interval '379 days' + (k / p.orgs) * interval '9 days' + (k % p.orgs) * interval '1 second' END,
       2 + k % 9
FROM bench_params p, generate_series(0, p.orgs * p.per_org - 1) AS k;

-- Answers. Submitted assessments and UpdateAnswers drafts: a window of 10..30 practices with
-- mixed statuses. SubmitAssessment drafts: every practice up to level L implemented, the first
-- practice of level L+1 not implemented, the rest mixed (so the submission scores exactly L).
INSERT INTO answers (org_id, assessment_id, practice_id, status, note, evidence_uri,
                     update_time, updated_by)
SELECT 'bench-' || (k % p.orgs), bench_asm_id(k)::uuid, bench_practice(i), s.status,
       CASE s.status WHEN 4 THEN 'not relevant: batch scoring only'
                     WHEN 2 THEN 'rolling out, about half of the teams'
                     ELSE '' END,
       CASE WHEN (k + i) % 4 = 0 THEN 'https://wiki.example.com/mlops/bench-' || (k % p.orgs)
                                       || '/' || bench_practice(i) ELSE '' END,
       now() - interval '300 days' + (k / p.orgs) * interval '9 days',
       'spiffe://maturityd.dev/team-' || (k % p.orgs)
FROM bench_params p, generate_series(0, p.orgs * p.per_org - 1) AS k,
     LATERAL (SELECT (k / p.orgs) >= p.submitted + p.update_drafts AS for_submit,
                     ((k % p.orgs) + k / p.orgs) % 5 AS lvl) d,
     generate_series(0, 29) AS i,
     LATERAL (SELECT CASE
                 WHEN d.for_submit AND bench_practice_level(i) <= d.lvl THEN 3
                 WHEN d.for_submit AND i = (SELECT min(q) FROM generate_series(0, 29) q
                                            WHERE bench_practice_level(q) = d.lvl + 1) THEN 1
                 ELSE 1 + ((k * 31 + i * 17) % 4) END AS status) s
WHERE CASE WHEN d.for_submit
           THEN bench_practice_level(i) <= d.lvl + 1 OR (i + k) % 2 = 0
           ELSE (i - k % 30 + 30) % 30 < 10 + (k * 7) % 21 END;

-- History: each organization got to its level by one APPLIED transition from its newest
-- submitted assessment; a fifth of the manual ones also have a proposal pending.
INSERT INTO transitions (org_id, id, assessment_id, from_level, to_level, direction, state,
                         proposer, propose_time, decider, decide_time, reason, version,
                         update_time, applied_seq)
SELECT b.id, bench_uuid7()::uuid, bench_asm_id(b.o + p.orgs::bigint * (p.submitted - 1))::uuid,
       0, b.level, 1, 2, 'spiffe://maturityd.dev/portal', now() - interval '30 days',
       'spiffe://maturityd.dev/reviewer', now() - interval '29 days', 'approved', 2,
       now() - interval '29 days', 1
FROM bench_org b, bench_params p WHERE b.level > 0;
INSERT INTO transitions (org_id, id, assessment_id, from_level, to_level, direction, state,
                         proposer, propose_time, reason, update_time)
SELECT b.id, bench_uuid7()::uuid, bench_asm_id(b.o + p.orgs::bigint * (p.submitted - 1))::uuid,
       b.level, b.level + 1, 1, 1, 'spiffe://maturityd.dev/portal', now() - interval '2 days',
       '', now() - interval '2 days'
FROM bench_org b, bench_params p WHERE b.policy = 1 AND b.o % 5 = 0 AND b.level < 4;

INSERT INTO role_bindings (id, principal, role, org_id, creator)
VALUES (gen_random_uuid(), 'spiffe://maturityd.dev/portal', 2, NULL, 'spiffe://maturityd.dev/admin'),
       (gen_random_uuid(), 'spiffe://maturityd.dev/reporter', 5, NULL, 'spiffe://maturityd.dev/admin');
INSERT INTO role_bindings (id, principal, role, org_id, creator)
SELECT gen_random_uuid(), 'spiffe://maturityd.dev/team-' || b.o, 4, b.id,
       'spiffe://maturityd.dev/admin' FROM bench_org b
UNION ALL
SELECT gen_random_uuid(), 'spiffe://maturityd.dev/editor-' || (b.o % 50), 2, b.id,
       'spiffe://maturityd.dev/admin' FROM bench_org b;

-- A past of audit events, so the audit insert of every mutation goes into a grown index.
INSERT INTO audit_events (id, time, principal, method, resource, code, request_id)
SELECT bench_uuid7()::uuid, now() - interval '60 days' + n * interval '10 seconds',
       'spiffe://maturityd.dev/team-' || (n % p.orgs),
       '/mlops.maturity.v1.AssessmentService/UpdateAnswers',
       'organizations/bench-' || (n % p.orgs) || '/assessments/' || bench_asm_id(n % (p.orgs * p.per_org)),
       0, gen_random_uuid()::text
FROM bench_params p, generate_series(1, 100000) AS n;
-- What the deferred triggers would have checked: every organization's chain of applied
-- transitions ends at its current_level (raises otherwise).
SELECT count(mat_check_transition_chain(id)) AS chains_checked FROM organizations \gset
COMMIT;

VACUUM ANALYZE;
SELECT (SELECT count(*) FROM organizations) AS organizations,
       (SELECT count(*) FROM assessments) AS assessments,
       (SELECT count(*) FROM assessments WHERE state = 1) AS drafts,
       (SELECT count(*) FROM answers) AS answers,
       (SELECT count(*) FROM role_bindings) AS role_bindings,
       (SELECT count(*) FROM transitions) AS transitions,
       (SELECT count(*) FROM audit_events) AS audit_events;
