-- seed_events.sql: a long event log for the replay measurement of scripts/bench (issue 13), loaded
-- after the section's writes, so the events table already holds real events of every kind the
-- benchmark's mutations write (ASSESSMENT_SUBMITTED, TRANSITION_*, ORGANIZATION_UPDATED,
-- ASSESSMENT_UPDATED) with the snapshots maturityd encoded.
--
--   psql -v n=1000000 -f seed_events.sql
--
-- Adds n events copied, in turn, from the latest 10,000 real ones (type, organization, resource,
-- principal, delegator, snapshot: the same shape and sizes), one every 20 us starting a day ago
-- (pos = time; inside the default 30-day retention and before every real event), so a watch from
-- the start of retention replays the copies first, then the real ones. One statement: the table's
-- statement trigger notifies once. Prints: events in the table, templates used, the table's size
-- in MiB with its indexes and TOAST.
\set ON_ERROR_STOP on
SET synchronous_commit = off;
CREATE TEMP TABLE ev_tpl AS
SELECT row_number() OVER (ORDER BY seq) - 1 AS i, type, org_id, resource, principal, delegator, snapshot
FROM (SELECT * FROM events ORDER BY seq DESC LIMIT 10000) e;
SELECT count(*) AS m FROM ev_tpl \gset
INSERT INTO events (pos, time, type, org_id, resource, principal, delegator, snapshot)
SELECT c.t0 + g * interval '20 microseconds', c.t0 + g * interval '20 microseconds', t.type, t.org_id,
       t.resource, t.principal, t.delegator, t.snapshot
FROM generate_series(0, :n - 1) g
JOIN ev_tpl t ON t.i = g % :m
CROSS JOIN (SELECT date_trunc('second', now()) - interval '1 day' AS t0) c
ORDER BY g;
ANALYZE events;
SELECT (SELECT count(*) FROM events), :m, pg_total_relation_size('events') / 1048576;
