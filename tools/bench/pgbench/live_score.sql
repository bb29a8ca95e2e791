-- GetLiveScore (and CheckGate, which reads the same inputs) for a non-admin caller:
-- storage/store_evidence.c store_live_inputs_get — st_live_org, st_live_asm, st_live_ans and
-- st_ev_current (the current evidence per practice from evidence_head, one index walk over the
-- organization; its other branch, for a time more than a minute past, does not run) in one
-- REPEATABLE READ READ ONLY transaction, with statement_timeout and the role-binding read
-- (svc_authorize_with) ahead of them: one pipeline, one round trip.
-- Organization bench-(obase + random(0, nlive - 1)) (seed_evidence.sql: obase 0 = 10,000 rows
-- each, obase = its hot count = 100 rows each). Variables: tmo, principal, obase, nlive,
-- practices (the text[] literal maturityd sends), now (the time maturityd sends, fixed per run).
\set o :obase + random(0, :nlive - 1)
\startpipeline
BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY;
SELECT set_config('statement_timeout', :tmo, true);
SELECT b.id::text, b.principal, b.role, b.org_id, b.creator, mat_epoch_us(b.create_time) FROM role_bindings b WHERE b.principal = :principal ORDER BY b.org_id NULLS FIRST, b.role, b.id;
SELECT o.id, o.current_level FROM organizations o WHERE o.id = 'bench-' || :o;
SELECT a.org_id, a.id::text, a.title, a.model_id, a.state, a.creator, a.submitter, mat_epoch_us(a.create_time), mat_epoch_us(a.update_time), mat_epoch_us(a.submit_time), a.version FROM organizations o JOIN assessments a ON a.org_id = o.id AND a.id = o.last_assessment_id WHERE o.id = 'bench-' || :o;
SELECT x.practice_id, x.status FROM organizations o JOIN answers x ON x.org_id = o.id AND x.assessment_id = o.last_assessment_id WHERE o.id = 'bench-' || :o;
SELECT e.org_id, e.id::text, e.practice_id, e.status, mat_epoch_us(e.observe_time), mat_epoch_us(e.expire_time), mat_epoch_us(e.create_time) FROM (SELECT DISTINCT ON (e.practice_id) e.* FROM evidence_head e WHERE e.org_id = 'bench-' || :o AND e.observe_time <= :now::timestamptz AND e.expire_time > :now::timestamptz AND :now::timestamptz > now() - interval '1 minute' ORDER BY e.practice_id, e.observe_time DESC, e.create_time DESC, e.id DESC) e UNION ALL SELECT e.org_id, e.id::text, e.practice_id, e.status, mat_epoch_us(e.observe_time), mat_epoch_us(e.expire_time), mat_epoch_us(e.create_time) FROM unnest(:practices::text[]) AS p(id) CROSS JOIN LATERAL (SELECT * FROM evidence e WHERE e.org_id = 'bench-' || :o AND e.practice_id = p.id AND e.observe_time <= :now::timestamptz AND e.observe_time > :now::timestamptz - interval '9600 hours' AND e.expire_time > :now::timestamptz ORDER BY e.observe_time DESC, e.create_time DESC, e.id DESC LIMIT 1) e WHERE :now::timestamptz <= now() - interval '1 minute';
COMMIT;
\endpipeline
