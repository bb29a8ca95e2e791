-- 0004_evidence: evidence reported by automation about one practice of one organization
-- (docs/evidence.md). Rows are immutable: a newer observation is a new row, never an update, so
-- the history of what was observed stays as it was reported.
CREATE TABLE evidence (
    org_id       text COLLATE "C" NOT NULL REFERENCES organizations (id) ON DELETE CASCADE,
    id           uuid NOT NULL,          -- UUIDv7
    practice_id  text COLLATE "C" NOT NULL CHECK (octet_length(practice_id) BETWEEN 1 AND 128),
    -- 1 NOT_IMPLEMENTED, 2 PARTIAL, 3 IMPLEMENTED (NOT_APPLICABLE is a human judgement)
    status       smallint NOT NULL CHECK (status BETWEEN 1 AND 3),
    source       text NOT NULL CHECK (source ~ '^[a-z][a-z0-9._/-]{0,127}$'),
    reporter     text NOT NULL,
    observe_time timestamptz NOT NULL,
    expire_time  timestamptz NOT NULL,
    uri          text NOT NULL DEFAULT '' CHECK (octet_length(uri) <= 2048),
    digest       text NOT NULL DEFAULT '' CHECK (digest = '' OR digest ~ '^sha256:[0-9a-f]{64}$'),
    note         text NOT NULL DEFAULT '' CHECK (octet_length(note) <= 4000),
    create_time  timestamptz NOT NULL DEFAULT now(),
    -- The pieces reported by one call share batch_id (the id of its first piece) and keep their
    -- request order in batch_index, so a request_id replay returns exactly what the first call
    -- returned.
    batch_id     uuid NOT NULL,
    batch_index  smallint NOT NULL CHECK (batch_index BETWEEN 0 AND 99),
    PRIMARY KEY (org_id, id),
    -- 400 days as 9600 hours: '400 days' added to a timestamptz follows the session's time zone
    -- and would be an hour shorter or longer across a daylight-saving change.
    CHECK (expire_time > observe_time AND expire_time <= observe_time + interval '9600 hours')
);
-- Current evidence of a practice: the newest observation in force. Read per practice, walking
-- this index from the newest observe_time down; expire_time is carried so expired entries are
-- skipped without visiting the table.
CREATE INDEX evidence_current ON evidence
    (org_id, practice_id, observe_time DESC, create_time DESC, id DESC) INCLUDE (expire_time);
-- ListEvidence: newest observe_time first, then name descending.
CREATE INDEX evidence_list ON evidence (org_id, observe_time DESC, id DESC);
-- request_id replays of a batch.
CREATE INDEX evidence_batch ON evidence (org_id, batch_id, batch_index);

-- Immutability is enforced here too, not only by the absence of an UPDATE in the code.
CREATE FUNCTION evidence_immutable() RETURNS trigger
    LANGUAGE plpgsql
    AS $$ BEGIN RAISE EXCEPTION 'evidence is immutable' USING ERRCODE = 'object_not_in_prerequisite_state'; END $$;
CREATE TRIGGER evidence_no_update BEFORE UPDATE ON evidence
    FOR EACH ROW EXECUTE FUNCTION evidence_immutable();
