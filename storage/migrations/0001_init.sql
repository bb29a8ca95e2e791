-- 0001_init: organizations, assessments, answers and level transitions (docs/api.md), role
-- bindings and audit events (docs/permissions.md), plus request_id idempotency keys (AIP-155).
-- Conventions: ids that clients order by are COLLATE "C" (byte order, whatever the database
-- locale, so keyset pagination and "ordered by name" agree on every server); enum columns hold
-- the proto enum numbers; `version` bumps on every change and is the source of the etag; times
-- are timestamptz and mat_epoch_us() turns them into the microseconds the C records carry.

-- STABLE, not IMMUTABLE: extract() on timestamptz is STABLE, and PostgreSQL inlines a SQL
-- function only when its body is no more volatile than declared (inlined, it costs ~4x less).
CREATE FUNCTION mat_epoch_us(t timestamptz) RETURNS bigint
    LANGUAGE sql STABLE PARALLEL SAFE
    AS $$ SELECT (extract(epoch FROM t) * 1000000)::bigint $$;

CREATE TABLE organizations (
    id                 text COLLATE "C" PRIMARY KEY CHECK (id ~ '^[a-z][a-z0-9-]{1,62}$'),
    display_name       text NOT NULL DEFAULT '' CHECK (octet_length(display_name) <= 200),
    description        text NOT NULL DEFAULT '' CHECK (octet_length(description) <= 4000),
    labels             jsonb NOT NULL DEFAULT '{}' CHECK (jsonb_typeof(labels) = 'object'),
    current_level      smallint NOT NULL DEFAULT 0 CHECK (current_level BETWEEN 0 AND 4),
    target_level       smallint NOT NULL DEFAULT 0 CHECK (target_level BETWEEN 0 AND 4),
    -- 1 MANUAL_REVIEW, 2 AUTOMATIC (UNSPECIFIED is mapped to MANUAL_REVIEW before it gets here)
    transition_policy  smallint NOT NULL DEFAULT 1 CHECK (transition_policy IN (1, 2)),
    -- No foreign key: only SUBMITTED assessments are named here and those cannot be deleted,
    -- and a circular key would complicate the cascade of DeleteOrganization(force).
    last_assessment_id uuid,
    create_time        timestamptz NOT NULL DEFAULT now(),
    update_time        timestamptz NOT NULL DEFAULT now(),
    version            bigint NOT NULL DEFAULT 1 CHECK (version >= 1)
);
-- GetPortfolioSummary filters on labels @> '{...}'.
CREATE INDEX organizations_labels ON organizations USING gin (labels jsonb_path_ops);

-- A Create retried with the same request_id by the same principal returns the first result.
CREATE TABLE idempotency_keys (
    principal   text NOT NULL,
    request_id  uuid NOT NULL,
    kind        text NOT NULL,          -- 'organization', 'assessment', 'role_binding'
    resource    text NOT NULL,          -- full resource name of what the first call created
    create_time timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (principal, request_id, kind)
);

CREATE TABLE assessments (
    org_id      text COLLATE "C" NOT NULL REFERENCES organizations (id) ON DELETE CASCADE,
    id          uuid NOT NULL,          -- UUIDv7: id order is creation order
    title       text NOT NULL DEFAULT '' CHECK (octet_length(title) <= 200),
    model_id    text NOT NULL,
    state       smallint NOT NULL DEFAULT 1 CHECK (state IN (1, 2)),  -- 1 DRAFT, 2 SUBMITTED
    creator     text NOT NULL,
    submitter   text,
    create_time timestamptz NOT NULL DEFAULT now(),
    update_time timestamptz NOT NULL DEFAULT now(),
    submit_time timestamptz,
    version     bigint NOT NULL DEFAULT 1 CHECK (version >= 1),
    PRIMARY KEY (org_id, id),            -- also serves ListAssessments: newest first = id DESC
    CHECK ((state = 2) = (submitter IS NOT NULL AND submit_time IS NOT NULL))
);
-- ExportAssessments: ordered by (update_time, id), across or within organizations.
CREATE INDEX assessments_export ON assessments (update_time, id);
CREATE INDEX assessments_org_export ON assessments (org_id, update_time, id);
-- The latest submitted assessment of an organization (roadmaps, portfolio).
CREATE INDEX assessments_submitted ON assessments (org_id, submit_time DESC) WHERE state = 2;

CREATE TABLE answers (
    org_id        text COLLATE "C" NOT NULL,
    assessment_id uuid NOT NULL,
    practice_id   text COLLATE "C" NOT NULL CHECK (octet_length(practice_id) BETWEEN 1 AND 128),
    -- 1 NOT_IMPLEMENTED, 2 PARTIAL, 3 IMPLEMENTED, 4 NOT_APPLICABLE (which needs a reason)
    status        smallint NOT NULL CHECK (status BETWEEN 1 AND 4),
    note          text NOT NULL DEFAULT '' CHECK (octet_length(note) <= 4000),
    evidence_uri  text NOT NULL DEFAULT '' CHECK (octet_length(evidence_uri) <= 2048),
    update_time   timestamptz NOT NULL DEFAULT now(),
    updated_by    text NOT NULL,
    PRIMARY KEY (org_id, assessment_id, practice_id),
    FOREIGN KEY (org_id, assessment_id) REFERENCES assessments (org_id, id) ON DELETE CASCADE,
    CHECK (status <> 4 OR note <> '')
);

CREATE TABLE transitions (
    org_id        text COLLATE "C" NOT NULL REFERENCES organizations (id) ON DELETE CASCADE,
    id            uuid NOT NULL,
    assessment_id uuid NOT NULL,
    from_level    smallint NOT NULL CHECK (from_level BETWEEN 0 AND 4),
    to_level      smallint NOT NULL CHECK (to_level BETWEEN 0 AND 4),
    direction     smallint NOT NULL,    -- 1 UPGRADE, 2 REGRESSION
    -- 1 PROPOSED, 2 APPLIED, 3 REJECTED, 4 SUPERSEDED
    state         smallint NOT NULL CHECK (state BETWEEN 1 AND 4),
    proposer      text NOT NULL,
    propose_time  timestamptz NOT NULL DEFAULT now(),
    decider       text,
    decide_time   timestamptz,
    reason        text NOT NULL DEFAULT '' CHECK (octet_length(reason) <= 4000),
    version       bigint NOT NULL DEFAULT 1 CHECK (version >= 1),
    update_time   timestamptz NOT NULL DEFAULT now(),
    -- Position in the organization's apply order (1, 2, ...): set exactly when APPLIED.
    applied_seq   integer CHECK (applied_seq >= 1),
    PRIMARY KEY (org_id, id),
    FOREIGN KEY (org_id, assessment_id) REFERENCES assessments (org_id, id) ON DELETE CASCADE,
    CHECK (from_level <> to_level),
    CHECK (direction = CASE WHEN to_level > from_level THEN 1 ELSE 2 END),
    CHECK ((state = 2) = (applied_seq IS NOT NULL)),
    CHECK ((state = 1 AND decider IS NULL AND decide_time IS NULL)
           OR (state <> 1 AND decider IS NOT NULL AND decide_time IS NOT NULL)),
    CHECK (state <> 3 OR reason <> ''),
    -- The chain invariant (docs/api.md, "Level transitions"), part 1: apply order is a
    -- sequence per organization.
    UNIQUE (org_id, applied_seq)
);
-- A submission supersedes the pending proposal, so at most one is PROPOSED (docs/api.md).
CREATE UNIQUE INDEX transitions_one_proposed ON transitions (org_id) WHERE state = 1;
-- ListTransitions (by propose_time, then name) per organization and across them.
CREATE INDEX transitions_org_list ON transitions (org_id, propose_time, id);
CREATE INDEX transitions_list ON transitions (propose_time, org_id, id);
-- ExportTransitions: (update_time, name).
CREATE INDEX transitions_export ON transitions (update_time, org_id, id);
-- Portfolio: APPLIED transitions decided in a window.
CREATE INDEX transitions_applied ON transitions (decide_time) WHERE state = 2;

CREATE TABLE role_bindings (
    id          uuid PRIMARY KEY,
    principal   text NOT NULL CHECK (octet_length(principal) BETWEEN 1 AND 512),
    -- 1 ADMIN, 2 EDITOR, 3 REVIEWER, 4 VIEWER, 5 REPORTER, 6 EVIDENCE_WRITER
    role        smallint NOT NULL CHECK (role BETWEEN 1 AND 6),
    org_id      text COLLATE "C" REFERENCES organizations (id) ON DELETE CASCADE,  -- NULL = global
    creator     text NOT NULL,
    create_time timestamptz NOT NULL DEFAULT now(),
    CHECK (org_id IS NULL OR role NOT IN (1, 5)),  -- admin and reporter are global only
    UNIQUE NULLS NOT DISTINCT (principal, role, org_id)
);
-- Read on every call, never cached (docs/permissions.md, "Audit").
CREATE INDEX role_bindings_principal ON role_bindings (principal);
CREATE INDEX role_bindings_org ON role_bindings (org_id);

CREATE TABLE audit_events (
    id         uuid PRIMARY KEY,            -- UUIDv7
    time       timestamptz NOT NULL DEFAULT now(),
    principal  text NOT NULL,               -- '' when the caller was not authenticated
    method     text NOT NULL,
    resource   text NOT NULL DEFAULT '',
    code       integer NOT NULL CHECK (code BETWEEN 0 AND 16),
    request_id text NOT NULL DEFAULT ''
);
-- ListAuditEvents: newest first, optionally for one principal.
CREATE INDEX audit_events_time ON audit_events (time DESC, id DESC);
CREATE INDEX audit_events_principal ON audit_events (principal, time DESC, id DESC);
