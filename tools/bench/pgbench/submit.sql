-- SubmitAssessment (no etag) for a non-admin caller: storage/store_assessment.c submit_body in a
-- READ COMMITTED transaction: BEGIN + statement_timeout + the role-binding read
-- (svc_authorize_with) | lock the organization | lock the assessment | read its answers (scored
-- in C) | submit + supersede the pending proposal [+ insert the transition when the level
-- changes] + organization update + audit insert in one pipeline | read it back | COMMIT: 7 round
-- trips.
-- Each draft is submitted once: transaction n of client i takes draft
-- k = subbase + (n - 1) * clients + i, so the calls in flight, like the load generator's, work
-- on consecutive drafts (different organizations); run it with -t <= drafts / clients. seed.sql
-- made draft k score exactly level (o + k / orgs) % 5, so the branch below is the one
-- maturityd's scoring takes. Variables: tmo, principal, orgs, subbase, clients, n (= 0),
-- method, rid, reason (= "automatic policy"), yes, no, applied (= 2), proposed (= 1), zero.
\set n :n + 1
\set k :subbase + (:n - 1) * :clients + :client_id
\set o :k % :orgs
\set lvl (:o + :k / :orgs) % 5
\startpipeline
BEGIN ISOLATION LEVEL READ COMMITTED;
SELECT set_config('statement_timeout', :tmo, true);
SELECT b.id::text, b.principal, b.role, b.org_id, b.creator, mat_epoch_us(b.create_time) FROM role_bindings b WHERE b.principal = :principal ORDER BY b.org_id NULLS FIRST, b.role, b.id;
\endpipeline
SELECT o.current_level, o.transition_policy FROM organizations o WHERE o.id = 'bench-' || :o FOR NO KEY UPDATE \gset
SELECT a.state, a.version, mat_epoch_us(a.create_time), a.model_id FROM assessments a WHERE a.org_id = 'bench-' || :o AND a.id = bench_asm_id(:k)::uuid FOR UPDATE;
SELECT x.practice_id, x.status FROM answers x WHERE x.org_id = 'bench-' || :o AND x.assessment_id = bench_asm_id(:k)::uuid;
\if :lvl > :current_level
\set dir 1
\else
\set dir 2
\endif
\if :lvl = :current_level
\startpipeline
UPDATE assessments SET state = 2, submitter = :principal, submit_time = now(), update_time = now(), version = version + 1 WHERE org_id = 'bench-' || :o AND id = bench_asm_id(:k)::uuid;
UPDATE transitions SET state = 4, decider = :principal, decide_time = greatest(now(), propose_time), update_time = greatest(now(), update_time), version = version + 1 WHERE org_id = 'bench-' || :o AND state = 1;
UPDATE organizations SET last_assessment_id = bench_asm_id(:k)::uuid, current_level = CASE WHEN :no::bool THEN :lvl::smallint ELSE current_level END, version = version + 1, update_time = now() WHERE id = 'bench-' || :o;
INSERT INTO audit_events (id, principal, method, resource, code, request_id) VALUES (bench_uuid7()::uuid, :principal, :method, 'organizations/bench-' || :o || '/assessments/' || bench_asm_id(:k), :zero::int, :rid);
\endpipeline
\elif :transition_policy = 2
\startpipeline
UPDATE assessments SET state = 2, submitter = :principal, submit_time = now(), update_time = now(), version = version + 1 WHERE org_id = 'bench-' || :o AND id = bench_asm_id(:k)::uuid;
UPDATE transitions SET state = 4, decider = :principal, decide_time = greatest(now(), propose_time), update_time = greatest(now(), update_time), version = version + 1 WHERE org_id = 'bench-' || :o AND state = 1;
INSERT INTO transitions (org_id, id, assessment_id, from_level, to_level, direction, state, proposer, propose_time, decider, decide_time, reason, update_time, applied_seq) SELECT ('bench-' || :o)::text, bench_uuid7()::uuid, bench_asm_id(:k)::uuid, :current_level::smallint, :lvl::smallint, :dir::smallint, :applied::smallint, :principal::text, now(), CASE WHEN :applied::smallint = 2 THEN :principal::text END, CASE WHEN :applied::smallint = 2 THEN now() END, :reason::text, now(), CASE WHEN :applied::smallint = 2 THEN coalesce(max(t.applied_seq), 0) + 1 END FROM transitions t WHERE t.org_id = ('bench-' || :o)::text;
UPDATE organizations SET last_assessment_id = bench_asm_id(:k)::uuid, current_level = CASE WHEN :yes::bool THEN :lvl::smallint ELSE current_level END, version = version + 1, update_time = now() WHERE id = 'bench-' || :o;
INSERT INTO audit_events (id, principal, method, resource, code, request_id) VALUES (bench_uuid7()::uuid, :principal, :method, 'organizations/bench-' || :o || '/assessments/' || bench_asm_id(:k), :zero::int, :rid);
\endpipeline
\else
\startpipeline
UPDATE assessments SET state = 2, submitter = :principal, submit_time = now(), update_time = now(), version = version + 1 WHERE org_id = 'bench-' || :o AND id = bench_asm_id(:k)::uuid;
UPDATE transitions SET state = 4, decider = :principal, decide_time = greatest(now(), propose_time), update_time = greatest(now(), update_time), version = version + 1 WHERE org_id = 'bench-' || :o AND state = 1;
INSERT INTO transitions (org_id, id, assessment_id, from_level, to_level, direction, state, proposer, propose_time, decider, decide_time, reason, update_time, applied_seq) SELECT ('bench-' || :o)::text, bench_uuid7()::uuid, bench_asm_id(:k)::uuid, :current_level::smallint, :lvl::smallint, :dir::smallint, :proposed::smallint, :principal::text, now(), CASE WHEN :proposed::smallint = 2 THEN :principal::text END, CASE WHEN :proposed::smallint = 2 THEN now() END, ''::text, now(), CASE WHEN :proposed::smallint = 2 THEN coalesce(max(t.applied_seq), 0) + 1 END FROM transitions t WHERE t.org_id = ('bench-' || :o)::text;
UPDATE organizations SET last_assessment_id = bench_asm_id(:k)::uuid, current_level = CASE WHEN :no::bool THEN :lvl::smallint ELSE current_level END, version = version + 1, update_time = now() WHERE id = 'bench-' || :o;
INSERT INTO audit_events (id, principal, method, resource, code, request_id) VALUES (bench_uuid7()::uuid, :principal, :method, 'organizations/bench-' || :o || '/assessments/' || bench_asm_id(:k), :zero::int, :rid);
\endpipeline
\endif
\startpipeline
SELECT a.org_id, a.id::text, a.title, a.model_id, a.state, a.creator, a.submitter, mat_epoch_us(a.create_time), mat_epoch_us(a.update_time), mat_epoch_us(a.submit_time), a.version FROM assessments a WHERE a.org_id = 'bench-' || :o AND a.id = bench_asm_id(:k)::uuid;
SELECT x.assessment_id::text, x.practice_id, x.status, x.note, x.evidence_uri, mat_epoch_us(x.update_time), x.updated_by FROM answers x WHERE x.org_id = 'bench-' || :o AND x.assessment_id = bench_asm_id(:k)::uuid ORDER BY x.practice_id;
\endpipeline
COMMIT;
