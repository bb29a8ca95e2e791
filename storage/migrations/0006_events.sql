-- 0006_events: the event log (a transactional outbox). Every successful mutation inserts its
-- events in its own transaction, so an event exists exactly when its change committed.
--
-- Order. `seq` is assigned at insert and `pos` is clock_timestamp() at insert, i.e. after the
-- mutation took its row locks: two transactions that change the same rows insert their events in
-- the order they commit. The total order is (pos, seq). Rows become visible at commit, which can
-- come after a later row was already read; readers that follow the log (WatchEvents) therefore
-- stop below the start of the oldest transaction still open (the watermark the exports use):
-- every row that can still appear has pos >= its transaction's start >= that watermark.
--
-- `time` is now() (the transaction's start, the time the change carries in its resource), shown
-- to clients; it follows pos closely but not strictly.
--
-- `snapshot` holds the resource after the change (before it, for a deletion) as the bytes the
-- service encoded it to when the event was written: a later read could not rebuild an older
-- version of a resource, and storage never interprets it.
CREATE TABLE events (
    seq        bigint GENERATED ALWAYS AS IDENTITY,
    pos        timestamptz NOT NULL DEFAULT clock_timestamp(),
    time       timestamptz NOT NULL DEFAULT now(),
    type       smallint NOT NULL CHECK (type BETWEEN 1 AND 12),
    org_id     text NOT NULL,
    resource   text NOT NULL,
    principal  text NOT NULL,
    delegator  text NOT NULL DEFAULT '',
    snapshot   bytea,
    PRIMARY KEY (pos, seq)
);
-- ListEvents and WatchEvents of one organization.
CREATE INDEX events_org ON events (org_id, pos, seq);

-- Wakes the replicas' listeners. A statement trigger notifies once per inserting statement;
-- PostgreSQL folds identical notifications of one transaction into one and delivers it at
-- commit (never for a rollback), so listeners are woken exactly when new rows are readable.
CREATE FUNCTION mat_events_notify() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    PERFORM pg_notify('maturity_events', '');
    RETURN NULL;
END
$$;
CREATE TRIGGER events_notify AFTER INSERT ON events
    FOR EACH STATEMENT EXECUTE FUNCTION mat_events_notify();
