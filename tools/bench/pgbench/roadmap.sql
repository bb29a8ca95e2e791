-- GetRoadmap for a non-admin caller: st_org_get with the role-binding read (svc_authorize_with)
-- in its pipeline, then store_assessment_get of the organization's last_assessment_id (seed.sql:
-- its newest submitted assessment, k = o + orgs * (submitted - 1)): two round trips.
-- Variables: tmo, principal, orgs, submitted.
\set o random(0, :orgs - 1)
\set k :o + :orgs * (:submitted - 1)
\startpipeline
SELECT set_config('statement_timeout', :tmo, true);
SELECT b.id::text, b.principal, b.role, b.org_id, b.creator, mat_epoch_us(b.create_time) FROM role_bindings b WHERE b.principal = :principal ORDER BY b.org_id NULLS FIRST, b.role, b.id;
SELECT o.id, o.display_name, o.description, (SELECT coalesce(string_agg(octet_length(l.k) || ':' || l.k || octet_length(l.v) || ':' || l.v, '' ORDER BY l.k COLLATE "C"), '') FROM jsonb_each_text(o.labels) AS l(k, v)), o.current_level, o.target_level, o.transition_policy, o.last_assessment_id::text, mat_epoch_us(o.create_time), mat_epoch_us(o.update_time), o.version FROM organizations o WHERE o.id = 'bench-' || :o;
\endpipeline
\startpipeline
BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY;
SELECT set_config('statement_timeout', :tmo, true);
SELECT a.org_id, a.id::text, a.title, a.model_id, a.state, a.creator, a.submitter, mat_epoch_us(a.create_time), mat_epoch_us(a.update_time), mat_epoch_us(a.submit_time), a.version FROM assessments a WHERE a.org_id = 'bench-' || :o AND a.id = bench_asm_id(:k)::uuid;
SELECT x.assessment_id::text, x.practice_id, x.status, x.note, x.evidence_uri, mat_epoch_us(x.update_time), x.updated_by FROM answers x WHERE x.org_id = 'bench-' || :o AND x.assessment_id = bench_asm_id(:k)::uuid ORDER BY x.practice_id;
COMMIT;
\endpipeline
