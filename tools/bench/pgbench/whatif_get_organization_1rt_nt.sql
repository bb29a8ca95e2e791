-- What-if (scripts/bench profile phase): get_organization.sql without the
-- per-round-trip set_config('statement_timeout') (set once per connection instead; the call's
-- deadline is still enforced by the client-side cancel). Variables: principal, orgs.
\set o random(0, :orgs - 1)
\startpipeline
SELECT b.id::text, b.principal, b.role, b.org_id, b.creator, mat_epoch_us(b.create_time) FROM role_bindings b WHERE b.principal = :principal ORDER BY b.org_id NULLS FIRST, b.role, b.id;
SELECT o.id, o.display_name, o.description, (SELECT coalesce(string_agg(octet_length(l.k) || ':' || l.k || octet_length(l.v) || ':' || l.v, '' ORDER BY l.k COLLATE "C"), '') FROM jsonb_each_text(o.labels) AS l(k, v)), o.current_level, o.target_level, o.transition_policy, o.last_assessment_id::text, mat_epoch_us(o.create_time), mat_epoch_us(o.update_time), o.version FROM organizations o WHERE o.id = 'bench-' || :o;
\endpipeline
