-- seed_evidence.sql: evidence history for the "Evidence and gates" section of scripts/bench.
-- Loaded after seed.sql (its organizations and helpers):
--
--   psql -v hot=100 -v per_hot=10000 -v short=100 -v per_short=100 -f seed_evidence.sql
--
-- Organizations bench-0 .. bench-(hot-1) get per_hot rows each (100 x 10,000 = 1,000,000 rows:
-- GetLiveScore and CheckGate read these), bench-hot .. bench-(hot+short-1) get per_short rows
-- (the same recent rows, a short history: P of GetLiveScore over both shows whether the read's
-- cost depends on the history's length). Rows come in batches of 30, one piece per practice of
-- mlops-v1 (as a control plane reports them: one BatchReportEvidence per sweep), batch_id = the
-- first piece's id, batch_index 0..29. Batch b of n is observed (n - b) * 79 hours before now
-- (10,000 rows: ~3 years of history) plus o minutes, expires 7 days later (every fourth batch:
-- 90 days), so nearly all of it is expired and each practice's newest observation or two are in
-- force. Ids are UUIDv7-shaped from observe_time (unique by organization and row number).
-- evidence_head gets what the reporting transaction would have kept (migration 0008).
-- Prints: total rows, rows of bench-0, rows in force now, organizations with evidence, rows of
-- evidence_head.
\set ON_ERROR_STOP on
SET synchronous_commit = off;
SET session_replication_role = replica;

CREATE OR REPLACE FUNCTION ev_id(o int, r int, t timestamptz) RETURNS uuid
    LANGUAGE sql IMMUTABLE PARALLEL SAFE
    AS $$ SELECT (substr(h, 1, 8) || '-' || substr(h, 9, 4) || '-7' || lpad(to_hex(o % 4096), 3, '0')
                  || '-8' || lpad(to_hex(r % 4096), 3, '0') || '-'
                  || lpad(to_hex(o::bigint * 1000000 + r), 12, '0'))::uuid
          FROM (SELECT lpad(to_hex((extract(epoch FROM t) * 1000)::bigint), 12, '0') AS h) x $$;
-- report_evidence.sql's piece ids: UUIDv7 of the transaction's start (stable within it, so the
-- batch id can name the first piece), then the piece's index and b (call and client). One
-- expression without FROM, so PostgreSQL inlines it: a SQL function that is not inlined costs
-- ~1 ms per call here and made P of BatchReportEvidence 6 x too slow.
CREATE OR REPLACE FUNCTION bench_ev_id(b bigint, i int) RETURNS text
    LANGUAGE sql STABLE PARALLEL SAFE
    AS $$ SELECT overlay(overlay(overlay(overlay(
                  lpad(to_hex((extract(epoch FROM now()) * 1000)::bigint), 12, '0') || '7'
                  || lpad(to_hex(i), 3, '0') || '8' || lpad(to_hex(b), 15, '0')
                  PLACING '-' FROM 9 FOR 0) PLACING '-' FROM 14 FOR 0) PLACING '-' FROM 19 FOR 0)
                  PLACING '-' FROM 24 FOR 0) $$;

BEGIN;
CREATE TEMP TABLE ev_seed AS
SELECT o, r, (per - r + 29) / 30 AS age, -- batches from the newest (1 = newest)
       now() - ((per + 29) / 30 - r / 30) * interval '79 hours' + o * interval '1 minute'
           - interval '2 hours' AS obs
FROM (SELECT o, CASE WHEN o < :hot THEN :per_hot ELSE :per_short END AS per
      FROM generate_series(0, :hot + :short - 1) AS o) x
CROSS JOIN LATERAL generate_series(0, per - 1) AS r;

INSERT INTO evidence (org_id, id, practice_id, status, source, reporter, observe_time,
                      expire_time, uri, digest, note, create_time, batch_id, batch_index)
SELECT 'bench-' || o, ev_id(o, r, obs), bench_practice(r % 30), 1 + (r * 7 + o) % 3,
       (ARRAY['mlflow/registry', 'ci/github-actions', 'monitoring/prometheus'])[1 + r % 3],
       'spiffe://maturityd.dev/control-plane', obs,
       obs + CASE WHEN (r / 30) % 4 = 0 THEN interval '90 days' ELSE interval '7 days' END,
       CASE WHEN r % 2 = 0 THEN 'https://mlflow.example.com/#/runs/' || o || '-' || r ELSE '' END,
       CASE WHEN r % 3 = 0 THEN 'sha256:' || encode(sha256(convert_to(o || ':' || r, 'UTF8')), 'hex')
            ELSE '' END,
       CASE WHEN r % 10 = 0 THEN 'observed by the nightly sweep' ELSE '' END,
       obs + interval '1 minute', ev_id(o, r - r % 30, obs), r % 30
FROM ev_seed
ORDER BY o, r;
-- evidence_head (migration 0008): maturityd keeps it in the reporting transaction, which these
-- plain INSERTs bypass, so it gets the migration's backfill of the rows just added.
INSERT INTO evidence_head (org_id, practice_id, observe_time, create_time, id, status, expire_time)
SELECT q.org_id, q.practice_id, q.observe_time, q.create_time, q.id, q.status, q.expire_time
FROM evidence q
WHERE q.expire_time > now() - interval '2 minutes'
  AND NOT EXISTS (
      SELECT 1 FROM evidence r
      WHERE r.org_id = q.org_id AND r.practice_id = q.practice_id
        AND (r.observe_time, r.create_time, r.id) > (q.observe_time, q.create_time, q.id)
        AND r.observe_time <= greatest(q.observe_time, now() - interval '2 minutes')
        AND r.expire_time >= q.expire_time)
ON CONFLICT DO NOTHING;
COMMIT;
ANALYZE evidence;
ANALYZE evidence_head;

SELECT (SELECT count(*) FROM evidence),
       (SELECT count(*) FROM evidence WHERE org_id = 'bench-0'),
       (SELECT count(*) FROM evidence WHERE expire_time > now() AND observe_time <= now()),
       (SELECT count(DISTINCT org_id) FROM evidence),
       (SELECT count(*) FROM evidence_head);
