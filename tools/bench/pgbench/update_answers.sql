-- UpdateAnswers (5 answers, no etag) for a non-admin caller: storage/store_assessment.c
-- answers_body in a READ COMMITTED transaction (store__transact): BEGIN + statement_timeout + the
-- role-binding read (svc_authorize_with) | lock the assessment | 5 upserts + touch + audit insert
-- in one pipeline | read it back (st_asm_get, st_ans_get) | its ASSESSMENT_UPDATED event (issue 13;
-- uasnap: the hex of a real one's snapshot, taken by scripts/bench) | COMMIT: 6 round trips. Draft k of
-- seed.sql (updbase <= k < updbase + nupd), round-robin over them like the load generator (calls
-- in flight touch different drafts); practices in groups of 5 of the catalog, as the load
-- generator sends them. Variables: tmo, principal, orgs, updbase, nupd, clients, n (= 0), note,
-- method, rid, zero, evupd (= 5), uasnap (the delegator "" is the literal '').
\set n :n + 1
\set k :updbase + ((:n - 1) * :clients + :client_id) % :nupd
\set o :k % :orgs
\set g 5 * random(0, 5)
\set s0 random(1, 4)
\set s1 random(1, 4)
\set s2 random(1, 4)
\set s3 random(1, 4)
\set s4 random(1, 4)
\startpipeline
BEGIN ISOLATION LEVEL READ COMMITTED;
SELECT set_config('statement_timeout', :tmo, true);
SELECT b.id::text, b.principal, b.role, b.org_id, b.creator, mat_epoch_us(b.create_time) FROM role_bindings b WHERE b.principal = :principal ORDER BY b.org_id NULLS FIRST, b.role, b.id;
\endpipeline
SELECT a.state, a.version, mat_epoch_us(a.create_time), a.model_id FROM assessments a WHERE a.org_id = 'bench-' || :o AND a.id = bench_asm_id(:k)::uuid FOR UPDATE;
\startpipeline
INSERT INTO answers (org_id, assessment_id, practice_id, status, note, evidence_uri, updated_by) VALUES ('bench-' || :o, bench_asm_id(:k)::uuid, bench_practice(:g + 0), :s0::smallint, :note, '', :principal) ON CONFLICT (org_id, assessment_id, practice_id) DO UPDATE SET status = EXCLUDED.status, note = EXCLUDED.note, evidence_uri = EXCLUDED.evidence_uri, update_time = EXCLUDED.update_time, updated_by = EXCLUDED.updated_by;
INSERT INTO answers (org_id, assessment_id, practice_id, status, note, evidence_uri, updated_by) VALUES ('bench-' || :o, bench_asm_id(:k)::uuid, bench_practice(:g + 1), :s1::smallint, :note, '', :principal) ON CONFLICT (org_id, assessment_id, practice_id) DO UPDATE SET status = EXCLUDED.status, note = EXCLUDED.note, evidence_uri = EXCLUDED.evidence_uri, update_time = EXCLUDED.update_time, updated_by = EXCLUDED.updated_by;
INSERT INTO answers (org_id, assessment_id, practice_id, status, note, evidence_uri, updated_by) VALUES ('bench-' || :o, bench_asm_id(:k)::uuid, bench_practice(:g + 2), :s2::smallint, :note, '', :principal) ON CONFLICT (org_id, assessment_id, practice_id) DO UPDATE SET status = EXCLUDED.status, note = EXCLUDED.note, evidence_uri = EXCLUDED.evidence_uri, update_time = EXCLUDED.update_time, updated_by = EXCLUDED.updated_by;
INSERT INTO answers (org_id, assessment_id, practice_id, status, note, evidence_uri, updated_by) VALUES ('bench-' || :o, bench_asm_id(:k)::uuid, bench_practice(:g + 3), :s3::smallint, :note, '', :principal) ON CONFLICT (org_id, assessment_id, practice_id) DO UPDATE SET status = EXCLUDED.status, note = EXCLUDED.note, evidence_uri = EXCLUDED.evidence_uri, update_time = EXCLUDED.update_time, updated_by = EXCLUDED.updated_by;
INSERT INTO answers (org_id, assessment_id, practice_id, status, note, evidence_uri, updated_by) VALUES ('bench-' || :o, bench_asm_id(:k)::uuid, bench_practice(:g + 4), :s4::smallint, :note, '', :principal) ON CONFLICT (org_id, assessment_id, practice_id) DO UPDATE SET status = EXCLUDED.status, note = EXCLUDED.note, evidence_uri = EXCLUDED.evidence_uri, update_time = EXCLUDED.update_time, updated_by = EXCLUDED.updated_by;
UPDATE assessments SET version = version + 1, update_time = now() WHERE org_id = 'bench-' || :o AND id = bench_asm_id(:k)::uuid;
INSERT INTO audit_events (id, principal, method, resource, code, request_id, delegator) VALUES (bench_uuid7()::uuid, :principal, :method, 'organizations/bench-' || :o || '/assessments/' || bench_asm_id(:k), :zero::int, :rid, '');
\endpipeline
\startpipeline
SELECT a.org_id, a.id::text, a.title, a.model_id, a.state, a.creator, a.submitter, mat_epoch_us(a.create_time), mat_epoch_us(a.update_time), mat_epoch_us(a.submit_time), a.version FROM assessments a WHERE a.org_id = 'bench-' || :o AND a.id = bench_asm_id(:k)::uuid;
SELECT x.assessment_id::text, x.practice_id, x.status, x.note, x.evidence_uri, mat_epoch_us(x.update_time), x.updated_by FROM answers x WHERE x.org_id = 'bench-' || :o AND x.assessment_id = bench_asm_id(:k)::uuid ORDER BY x.practice_id;
\endpipeline
INSERT INTO events (type, org_id, resource, principal, delegator, snapshot) VALUES (:evupd::smallint, 'bench-' || :o, 'organizations/bench-' || :o || '/assessments/' || bench_asm_id(:k), :principal, '', decode(:uasnap, 'hex'));
COMMIT;
