-- GetAssessment for a non-admin caller: storage/store_assessment.c store_assessment_get —
-- st_asm_get and st_ans_get in one REPEATABLE READ READ ONLY transaction, with the role-binding
-- read (svc_authorize_with) ahead of them, all in one pipeline. Assessment k of seed.sql
-- (submitted ones: 0 <= k < nasm). Variables: tmo, principal, orgs, nasm.
\set k random(0, :nasm - 1)
\set o :k % :orgs
\startpipeline
BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY;
SELECT set_config('statement_timeout', :tmo, true);
SELECT b.id::text, b.principal, b.role, b.org_id, b.creator, mat_epoch_us(b.create_time) FROM role_bindings b WHERE b.principal = :principal ORDER BY b.org_id NULLS FIRST, b.role, b.id;
SELECT a.org_id, a.id::text, a.title, a.model_id, a.state, a.creator, a.submitter, mat_epoch_us(a.create_time), mat_epoch_us(a.update_time), mat_epoch_us(a.submit_time), a.version FROM assessments a WHERE a.org_id = 'bench-' || :o AND a.id = bench_asm_id(:k)::uuid;
SELECT x.assessment_id::text, x.practice_id, x.status, x.note, x.evidence_uri, mat_epoch_us(x.update_time), x.updated_by FROM answers x WHERE x.org_id = 'bench-' || :o AND x.assessment_id = bench_asm_id(:k)::uuid ORDER BY x.practice_id;
COMMIT;
\endpipeline
