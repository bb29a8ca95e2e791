-- 0002_transition_chain: the chain invariant (docs/api.md, "Level transitions"), enforced by the
-- database as a backstop to the row lock (organizations ... FOR NO KEY UPDATE) that submission
-- and approval take: for every organization, its APPLIED transitions in applied_seq order start
-- at level 0, each starts where the previous one ended, and current_level is the last one's
-- to_level (0 if none).
-- Checked at commit (deferred constraint triggers), so a transaction may update the organization
-- and insert the transition in either order. A violation is a bug, not a client error.

CREATE FUNCTION mat_check_transition_chain(org text) RETURNS void
    LANGUAGE plpgsql AS $$
DECLARE
    cur   smallint;
    lvl   smallint := 0;
    seq   integer := 0;
    r     record;
BEGIN
    SELECT current_level INTO cur FROM organizations WHERE id = org;
    IF NOT FOUND THEN
        RETURN; -- deleted in this transaction
    END IF;
    FOR r IN SELECT applied_seq, from_level, to_level FROM transitions
             WHERE org_id = org AND state = 2 ORDER BY applied_seq LOOP
        IF r.applied_seq <> seq + 1 OR r.from_level <> lvl THEN
            RAISE EXCEPTION 'transition chain of organization % broken at applied_seq %',
                org, r.applied_seq USING ERRCODE = 'integrity_constraint_violation';
        END IF;
        seq := r.applied_seq;
        lvl := r.to_level;
    END LOOP;
    IF cur <> lvl THEN
        RAISE EXCEPTION 'organization % has current_level % but its applied transitions end at %',
            org, cur, lvl USING ERRCODE = 'integrity_constraint_violation';
    END IF;
END
$$;

CREATE FUNCTION mat_transitions_chain_trigger() RETURNS trigger
    LANGUAGE plpgsql AS $$
BEGIN
    PERFORM mat_check_transition_chain(NEW.org_id);
    RETURN NULL;
END
$$;

CREATE FUNCTION mat_organizations_chain_trigger() RETURNS trigger
    LANGUAGE plpgsql AS $$
BEGIN
    PERFORM mat_check_transition_chain(NEW.id);
    RETURN NULL;
END
$$;

CREATE CONSTRAINT TRIGGER transitions_chain
    AFTER INSERT OR UPDATE ON transitions
    DEFERRABLE INITIALLY DEFERRED
    FOR EACH ROW WHEN (NEW.state = 2)
    EXECUTE FUNCTION mat_transitions_chain_trigger();

CREATE CONSTRAINT TRIGGER organizations_chain_insert
    AFTER INSERT ON organizations
    DEFERRABLE INITIALLY DEFERRED
    FOR EACH ROW WHEN (NEW.current_level <> 0)
    EXECUTE FUNCTION mat_organizations_chain_trigger();

CREATE CONSTRAINT TRIGGER organizations_chain_update
    AFTER UPDATE ON organizations
    DEFERRABLE INITIALLY DEFERRED
    FOR EACH ROW WHEN (OLD.current_level IS DISTINCT FROM NEW.current_level)
    EXECUTE FUNCTION mat_organizations_chain_trigger();
