-- seed_export.sql: one organization with many submitted assessments, for the ExportAssessments
-- stream scenario of scripts/bench (maturity-loadgen streams --scenario export-assessments).
-- Loaded after seed.sql, whose helpers it uses.
--
--   psql -v org=bench-export -v n=300 -f seed_export.sql
--
-- Assessment j (0 <= j < n) has the id 01910000-0000-7000-8000-{j as 12 hex digits} (apart from
-- seed.sql's 01900000-...), is SUBMITTED and has 10..30 answers like seed.sql's, so an export
-- message is the size of a real one. The organization stays at level 0 with no history (the
-- export does not read it).
\set ON_ERROR_STOP on
SET synchronous_commit = off;
SET session_replication_role = replica;

BEGIN;
INSERT INTO organizations (id, display_name, description, labels, current_level, target_level,
                           transition_policy, create_time, update_time)
VALUES (:'org', 'Export benchmark organization',
        'Holds many submitted assessments for the ExportAssessments stream benchmark.',
        '{"team": "reporting", "tier": "lab"}', 0, 2, 1, now() - interval '400 days',
        now() - interval '1 day');

INSERT INTO assessments (org_id, id, title, model_id, state, creator, submitter, create_time,
                         update_time, submit_time, version)
SELECT :'org', ('01910000-0000-7000-8000-' || lpad(to_hex(j), 12, '0'))::uuid,
       'Quarterly review ' || j, 'mlops-v1', 2, 'spiffe://maturityd.dev/team-export',
       'spiffe://maturityd.dev/portal', now() - interval '380 days' + j * interval '1 hour',
       now() - interval '379 days' + j * interval '1 hour',
       now() - interval '379 days' + j * interval '1 hour', 2 + j % 9
FROM generate_series(0, :n - 1) AS j;

INSERT INTO answers (org_id, assessment_id, practice_id, status, note, evidence_uri,
                     update_time, updated_by)
SELECT :'org', ('01910000-0000-7000-8000-' || lpad(to_hex(j), 12, '0'))::uuid,
       bench_practice(i), s.status,
       CASE s.status WHEN 4 THEN 'not relevant: batch scoring only'
                     WHEN 2 THEN 'rolling out, about half of the teams'
                     ELSE '' END,
       CASE WHEN (j + i) % 4 = 0 THEN 'https://wiki.example.com/mlops/export/' ||
                                      bench_practice(i) ELSE '' END,
       now() - interval '300 days' + j * interval '1 hour', 'spiffe://maturityd.dev/team-export'
FROM generate_series(0, :n - 1) AS j, generate_series(0, 29) AS i,
     LATERAL (SELECT 1 + ((j * 31 + i * 17) % 4) AS status) s
WHERE (i - j % 30 + 30) % 30 < 10 + (j * 7) % 21;
COMMIT;

ANALYZE assessments;
ANALYZE answers;
SELECT (SELECT count(*) FROM assessments WHERE org_id = :'org') AS assessments,
       (SELECT count(*) FROM answers WHERE org_id = :'org') AS answers;
