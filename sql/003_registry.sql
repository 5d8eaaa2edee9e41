-- 003_registry.sql - the registry side of the ingest group: what its
-- tables need beyond 001 (fleet-wide proposals). Its row views and write
-- functions are in functions/03_registry.sql.


-- ===================================================================
-- Fleet-wide proposals
-- ===================================================================

-- The API takes proposals that name no agent (agent_id null: a change for
-- the whole fleet, like a problem without agent); 001 required one.
ALTER TABLE improvement_proposals ALTER COLUMN agent_id DROP NOT NULL;
COMMENT ON COLUMN improvement_proposals.agent_id IS
    'The agent the proposal would change; NULL = fleet-wide';
