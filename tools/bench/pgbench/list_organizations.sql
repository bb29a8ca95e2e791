-- ListOrganizations (first page of 50) for a non-admin caller: the binding read of
-- svc_sees_all, then storage/store_org.c st_org_list (a global binding sees everything, so the
-- visibility filter is off). Variables: tmo, principal.
\startpipeline
SELECT set_config('statement_timeout', :tmo, true);
SELECT b.id::text, b.principal, b.role, b.org_id, b.creator, mat_epoch_us(b.create_time) FROM role_bindings b WHERE b.principal = :principal ORDER BY b.org_id NULLS FIRST, b.role, b.id;
\endpipeline
\startpipeline
SELECT set_config('statement_timeout', :tmo, true);
SELECT o.id, o.display_name, o.description, (SELECT coalesce(string_agg(octet_length(l.k) || ':' || l.k || octet_length(l.v) || ':' || l.v, '' ORDER BY l.k COLLATE "C"), '') FROM jsonb_each_text(o.labels) AS l(k, v)), o.current_level, o.target_level, o.transition_policy, o.last_assessment_id::text, mat_epoch_us(o.create_time), mat_epoch_us(o.update_time), o.version FROM organizations o WHERE o.id > '' AND (NOT :visible_only::bool OR EXISTS (SELECT 1 FROM role_bindings b WHERE b.principal = :principal AND (b.org_id IS NULL OR b.org_id = o.id))) ORDER BY o.id LIMIT :limit::int;
\endpipeline
