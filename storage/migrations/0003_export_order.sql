-- 0003_export_order: ExportAssessments streams in (update_time, org_id, id) order, the order of
-- ExportTransitions and of the API's "(update time, name)". Its keyset condition
-- (update_time, org_id, id) > (cursor) across organizations needs an index in exactly that order;
-- 0001's (update_time, id) cannot serve it and nothing else reads it, so it is replaced rather
-- than kept as write overhead on every answer update. (Within one organization
-- assessments_org_export (org_id, update_time, id) still serves.)
CREATE INDEX assessments_export_name ON assessments (update_time, org_id, id);
DROP INDEX assessments_export;
