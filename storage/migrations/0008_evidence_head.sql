-- 0008_evidence_head: the pieces of evidence that may still be current, per organization and
-- practice (docs/evidence.md, "Where the live score reads"). Reading the current piece of 30
-- practices from evidence_current costs more as an organization's history grows (the index and
-- table an organization's reads touch grow with it), so the reporting transaction also keeps
-- this small table: a reported piece goes in, and every piece of its practices that can no
-- longer be current at any time t >= the report's now() - 2 minutes goes out:
--   * a piece that expired by then (expire_time <= now() - 2 minutes), or
--   * a piece Q below another piece R of the table (later observe_time, then create_time, then
--     id) where R is in force whenever Q is from then on: R.observe_time <= greatest(Q's
--     observe_time, now() - 2 minutes) and R.expire_time >= Q.expire_time.
-- So for any t at or after that horizon the current piece of a practice is always here: what
-- goes out is never current then (its reasons are rows of evidence, which never change). A read
-- for a t more than a minute before its own now() (older than some report's horizon could be)
-- reads evidence itself instead. Only what the live score needs is kept: the rest of a piece is
-- in evidence, by (org_id, id). The table holds the pieces in force or recently so (a few per
-- practice), whatever the length of the history.
CREATE TABLE evidence_head (
    org_id       text COLLATE "C" NOT NULL REFERENCES organizations (id) ON DELETE CASCADE,
    practice_id  text COLLATE "C" NOT NULL,
    observe_time timestamptz NOT NULL,
    create_time  timestamptz NOT NULL,
    id           uuid NOT NULL,
    status       smallint NOT NULL,
    expire_time  timestamptz NOT NULL
);
-- The read (per practice, the newest first: DISTINCT ON) and the pruning walk this order; an id
-- is unique within its organization, so the key is too.
CREATE UNIQUE INDEX evidence_head_order ON evidence_head
    (org_id, practice_id, observe_time DESC, create_time DESC, id DESC);

-- The existing history: every piece that can be current at or after now() - 2 minutes.
INSERT INTO evidence_head (org_id, practice_id, observe_time, create_time, id, status, expire_time)
SELECT q.org_id, q.practice_id, q.observe_time, q.create_time, q.id, q.status, q.expire_time
FROM evidence q
WHERE q.expire_time > now() - interval '2 minutes'
  AND NOT EXISTS (
      SELECT 1 FROM evidence r
      WHERE r.org_id = q.org_id AND r.practice_id = q.practice_id
        AND (r.observe_time, r.create_time, r.id) > (q.observe_time, q.create_time, q.id)
        AND r.observe_time <= greatest(q.observe_time, now() - interval '2 minutes')
        AND r.expire_time >= q.expire_time);
