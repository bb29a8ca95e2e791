-- 0005_delegator: a portal (a principal named by --delegator) may act for an end user with the
-- x-on-behalf-of metadata; the end user is then the event's principal and the portal is
-- recorded here. '' when the caller acted for itself (every event written before this
-- migration). A constant default makes the column a catalog-only change: no table rewrite.
ALTER TABLE audit_events ADD COLUMN delegator text NOT NULL DEFAULT '';
