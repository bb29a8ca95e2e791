-- SubmitAssessment (no etag) for a non-admin caller: storage/store_assessment.c submit_body in a
-- READ COMMITTED transaction: BEGIN + statement_timeout + the role-binding read
-- (svc_authorize_with) | lock the organization | lock the assessment | read its answers (scored
-- in C) | submit + supersede the pending proposal (RETURNING it) [+ insert the transition when the
-- level changes] + organization update (RETURNING it) + audit insert in one pipeline | read it
-- back | its events (issue 13): ASSESSMENT_SUBMITTED, TRANSITION_SUPERSEDED per superseded
-- proposal, then TRANSITION_PROPOSED, or TRANSITION_APPLIED and ORGANIZATION_UPDATED, one
-- INSERT each in one pipeline (the events table's statement trigger NOTIFYs) | COMMIT: 8 round
-- trips in maturityd. The delegator ("": the portal acts for itself) is the literal ''.
-- pgbench cannot branch on a result inside a pipeline, and whether a proposal was superseded is
-- only known from the UPDATE's RETURNING: here the submit and the supersede are sent in round trips
-- of their own (\aset), so this script makes 2 round trips more than maturityd for the same
-- statements (which makes P a little lower, not higher).
-- Snapshots: the hex of real events' snapshots of the same kinds (asnap: an assessment, tsnap: a
-- transition, osnap: an organization; scripts/bench takes them from events the RPCs wrote), so the
-- rows are as large as maturityd's. The transition's resource name is a constant of the right
-- length (tres): the id is made by the INSERT.
-- Each draft is submitted once: transaction n of client i takes draft
-- k = subbase + (n - 1) * clients + i, so the calls in flight, like the load generator's, work
-- on consecutive drafts (different organizations); run it with -t <= drafts / clients. seed.sql
-- made draft k score exactly level (o + k / orgs) % 5, so the branch below is the one
-- maturityd's scoring takes. Variables: tmo, principal, orgs, subbase, clients,
-- n (= 0), method, rid, reason (= "automatic policy"), yes, no, applied (= 2), proposed (= 1),
-- zero, evsub (= 6), evsup (= 11), evapp (= 9), evorg (= 2), evprop (= 8), asnap, tsnap, osnap,
-- tres.
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
UPDATE assessments SET state = 2, submitter = :principal, submit_time = now(), update_time = now(), version = version + 1 WHERE org_id = 'bench-' || :o AND id = bench_asm_id(:k)::uuid;
\set sup_version 0
UPDATE transitions AS t SET state = 4, decider = :principal, decide_time = greatest(now(), propose_time), update_time = greatest(now(), update_time), version = version + 1 WHERE org_id = 'bench-' || :o AND state = 1 RETURNING t.org_id, t.id::text, t.assessment_id::text, t.from_level, t.to_level, t.direction, t.state, t.proposer, mat_epoch_us(t.propose_time), t.decider, mat_epoch_us(t.decide_time), t.reason, t.version, mat_epoch_us(t.update_time) \aset sup_
\startpipeline
UPDATE organizations AS o SET last_assessment_id = bench_asm_id(:k)::uuid, current_level = CASE WHEN :no::bool THEN :lvl::smallint ELSE current_level END, version = version + 1, update_time = now() WHERE id = 'bench-' || :o RETURNING o.id, o.display_name, o.description, (SELECT coalesce(string_agg(octet_length(l.k) || ':' || l.k || octet_length(l.v) || ':' || l.v, '' ORDER BY l.k COLLATE "C"), '') FROM jsonb_each_text(o.labels) AS l(k, v)), o.current_level, o.target_level, o.transition_policy, o.last_assessment_id::text, mat_epoch_us(o.create_time), mat_epoch_us(o.update_time), o.version;
INSERT INTO audit_events (id, principal, method, resource, code, request_id, delegator) VALUES (bench_uuid7()::uuid, :principal, :method, 'organizations/bench-' || :o || '/assessments/' || bench_asm_id(:k), :zero::int, :rid, '');
\endpipeline
\elif :transition_policy = 2
UPDATE assessments SET state = 2, submitter = :principal, submit_time = now(), update_time = now(), version = version + 1 WHERE org_id = 'bench-' || :o AND id = bench_asm_id(:k)::uuid;
\set sup_version 0
UPDATE transitions AS t SET state = 4, decider = :principal, decide_time = greatest(now(), propose_time), update_time = greatest(now(), update_time), version = version + 1 WHERE org_id = 'bench-' || :o AND state = 1 RETURNING t.org_id, t.id::text, t.assessment_id::text, t.from_level, t.to_level, t.direction, t.state, t.proposer, mat_epoch_us(t.propose_time), t.decider, mat_epoch_us(t.decide_time), t.reason, t.version, mat_epoch_us(t.update_time) \aset sup_
\startpipeline
INSERT INTO transitions AS t (org_id, id, assessment_id, from_level, to_level, direction, state, proposer, propose_time, decider, decide_time, reason, update_time, applied_seq) SELECT ('bench-' || :o)::text, bench_uuid7()::uuid, bench_asm_id(:k)::uuid, :current_level::smallint, :lvl::smallint, :dir::smallint, :applied::smallint, :principal::text, now(), CASE WHEN :applied::smallint = 2 THEN :principal::text END, CASE WHEN :applied::smallint = 2 THEN now() END, :reason::text, now(), CASE WHEN :applied::smallint = 2 THEN coalesce(max(p.applied_seq), 0) + 1 END FROM transitions p WHERE p.org_id = ('bench-' || :o)::text RETURNING t.org_id, t.id::text, t.assessment_id::text, t.from_level, t.to_level, t.direction, t.state, t.proposer, mat_epoch_us(t.propose_time), t.decider, mat_epoch_us(t.decide_time), t.reason, t.version, mat_epoch_us(t.update_time);
UPDATE organizations AS o SET last_assessment_id = bench_asm_id(:k)::uuid, current_level = CASE WHEN :yes::bool THEN :lvl::smallint ELSE current_level END, version = version + 1, update_time = now() WHERE id = 'bench-' || :o RETURNING o.id, o.display_name, o.description, (SELECT coalesce(string_agg(octet_length(l.k) || ':' || l.k || octet_length(l.v) || ':' || l.v, '' ORDER BY l.k COLLATE "C"), '') FROM jsonb_each_text(o.labels) AS l(k, v)), o.current_level, o.target_level, o.transition_policy, o.last_assessment_id::text, mat_epoch_us(o.create_time), mat_epoch_us(o.update_time), o.version;
INSERT INTO audit_events (id, principal, method, resource, code, request_id, delegator) VALUES (bench_uuid7()::uuid, :principal, :method, 'organizations/bench-' || :o || '/assessments/' || bench_asm_id(:k), :zero::int, :rid, '');
\endpipeline
\else
UPDATE assessments SET state = 2, submitter = :principal, submit_time = now(), update_time = now(), version = version + 1 WHERE org_id = 'bench-' || :o AND id = bench_asm_id(:k)::uuid;
\set sup_version 0
UPDATE transitions AS t SET state = 4, decider = :principal, decide_time = greatest(now(), propose_time), update_time = greatest(now(), update_time), version = version + 1 WHERE org_id = 'bench-' || :o AND state = 1 RETURNING t.org_id, t.id::text, t.assessment_id::text, t.from_level, t.to_level, t.direction, t.state, t.proposer, mat_epoch_us(t.propose_time), t.decider, mat_epoch_us(t.decide_time), t.reason, t.version, mat_epoch_us(t.update_time) \aset sup_
\startpipeline
INSERT INTO transitions AS t (org_id, id, assessment_id, from_level, to_level, direction, state, proposer, propose_time, decider, decide_time, reason, update_time, applied_seq) SELECT ('bench-' || :o)::text, bench_uuid7()::uuid, bench_asm_id(:k)::uuid, :current_level::smallint, :lvl::smallint, :dir::smallint, :proposed::smallint, :principal::text, now(), CASE WHEN :proposed::smallint = 2 THEN :principal::text END, CASE WHEN :proposed::smallint = 2 THEN now() END, ''::text, now(), CASE WHEN :proposed::smallint = 2 THEN coalesce(max(p.applied_seq), 0) + 1 END FROM transitions p WHERE p.org_id = ('bench-' || :o)::text RETURNING t.org_id, t.id::text, t.assessment_id::text, t.from_level, t.to_level, t.direction, t.state, t.proposer, mat_epoch_us(t.propose_time), t.decider, mat_epoch_us(t.decide_time), t.reason, t.version, mat_epoch_us(t.update_time);
UPDATE organizations AS o SET last_assessment_id = bench_asm_id(:k)::uuid, current_level = CASE WHEN :no::bool THEN :lvl::smallint ELSE current_level END, version = version + 1, update_time = now() WHERE id = 'bench-' || :o RETURNING o.id, o.display_name, o.description, (SELECT coalesce(string_agg(octet_length(l.k) || ':' || l.k || octet_length(l.v) || ':' || l.v, '' ORDER BY l.k COLLATE "C"), '') FROM jsonb_each_text(o.labels) AS l(k, v)), o.current_level, o.target_level, o.transition_policy, o.last_assessment_id::text, mat_epoch_us(o.create_time), mat_epoch_us(o.update_time), o.version;
INSERT INTO audit_events (id, principal, method, resource, code, request_id, delegator) VALUES (bench_uuid7()::uuid, :principal, :method, 'organizations/bench-' || :o || '/assessments/' || bench_asm_id(:k), :zero::int, :rid, '');
\endpipeline
\endif
\startpipeline
SELECT a.org_id, a.id::text, a.title, a.model_id, a.state, a.creator, a.submitter, mat_epoch_us(a.create_time), mat_epoch_us(a.update_time), mat_epoch_us(a.submit_time), a.version FROM assessments a WHERE a.org_id = 'bench-' || :o AND a.id = bench_asm_id(:k)::uuid;
SELECT x.assessment_id::text, x.practice_id, x.status, x.note, x.evidence_uri, mat_epoch_us(x.update_time), x.updated_by FROM answers x WHERE x.org_id = 'bench-' || :o AND x.assessment_id = bench_asm_id(:k)::uuid ORDER BY x.practice_id;
\endpipeline
\startpipeline
INSERT INTO events (type, org_id, resource, principal, delegator, snapshot) VALUES (:evsub::smallint, 'bench-' || :o, 'organizations/bench-' || :o || '/assessments/' || bench_asm_id(:k), :principal, '', decode(:asnap, 'hex'));
\if :sup_version > 0
INSERT INTO events (type, org_id, resource, principal, delegator, snapshot) VALUES (:evsup::smallint, 'bench-' || :o, :tres, :principal, '', decode(:tsnap, 'hex'));
\endif
\if :lvl = :current_level
\elif :transition_policy = 2
INSERT INTO events (type, org_id, resource, principal, delegator, snapshot) VALUES (:evapp::smallint, 'bench-' || :o, :tres, :principal, '', decode(:tsnap, 'hex'));
INSERT INTO events (type, org_id, resource, principal, delegator, snapshot) VALUES (:evorg::smallint, 'bench-' || :o, 'organizations/bench-' || :o, :principal, '', decode(:osnap, 'hex'));
\else
INSERT INTO events (type, org_id, resource, principal, delegator, snapshot) VALUES (:evprop::smallint, 'bench-' || :o, :tres, :principal, '', decode(:tsnap, 'hex'));
\endif
\endpipeline
COMMIT;
