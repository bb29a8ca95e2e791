-- ListOrganizations (first page of 50) for a non-admin caller, as maturityd runs it: one
-- pipeline, one round trip -- statement_timeout and storage/store_org.c st_org_list with the
-- visibility filter on (the caller is not a bootstrap admin; a global binding passes the EXISTS
-- for every row). ListOrganizations needs no permission (AUTH_PERM_ANY), so no binding read.
-- Variables: tmo, principal, limit, yes (true).
\startpipeline
SELECT set_config('statement_timeout', :tmo, true);
SELECT o.id, o.display_name, o.description, (SELECT coalesce(string_agg(octet_length(l.k) || ':' || l.k || octet_length(l.v) || ':' || l.v, '' ORDER BY l.k COLLATE "C"), '') FROM jsonb_each_text(o.labels) AS l(k, v)), o.current_level, o.target_level, o.transition_policy, o.last_assessment_id::text, mat_epoch_us(o.create_time), mat_epoch_us(o.update_time), o.version FROM organizations o WHERE o.id > '' AND (NOT :yes::bool OR EXISTS (SELECT 1 FROM role_bindings b WHERE b.principal = :principal AND (b.org_id IS NULL OR b.org_id = o.id))) ORDER BY o.id LIMIT :limit::int;
\endpipeline
