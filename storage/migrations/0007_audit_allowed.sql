-- 0007_audit_allowed: a signed gate decision is audited like a mutation, and what it decided is
-- part of the statement the service made: allowed is true or false for CheckGate rows with an
-- attestation, NULL for every other event (and every event written before this migration).
ALTER TABLE audit_events ADD COLUMN allowed boolean;
