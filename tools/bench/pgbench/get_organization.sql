-- GetOrganization as maturityd runs it for a non-admin caller: one pipeline, one round trip —
-- statement_timeout, the role-binding read (storage/store_access.c st_bindings_of, sent by
-- svc_authorize_with with the call's first statements) and storage/store_org.c st_org_get.
-- Variables: tmo, principal, orgs.
\set o random(0, :orgs - 1)
\startpipeline
SELECT set_config('statement_timeout', :tmo, true);
SELECT b.id::text, b.principal, b.role, b.org_id, b.creator, mat_epoch_us(b.create_time) FROM role_bindings b WHERE b.principal = :principal ORDER BY b.org_id NULLS FIRST, b.role, b.id;
SELECT o.id, o.display_name, o.description, (SELECT coalesce(string_agg(octet_length(l.k) || ':' || l.k || octet_length(l.v) || ':' || l.v, '' ORDER BY l.k COLLATE "C"), '') FROM jsonb_each_text(o.labels) AS l(k, v)), o.current_level, o.target_level, o.transition_policy, o.last_assessment_id::text, mat_epoch_us(o.create_time), mat_epoch_us(o.update_time), o.version FROM organizations o WHERE o.id = 'bench-' || :o;
\endpipeline
