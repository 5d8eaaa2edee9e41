-- 014_state.sql - what the fleet's state (GET /state, functions/27_state.sql)
-- needs of the tables: the heartbeat interval an agent declares.
--
-- heartbeat_interval_seconds: how often the agent promised to beat (POST
-- /agents/{id}/heartbeat), declared when it registers (POST /agents, PATCH
-- /agents/{id}); 60 unless it says otherwise. An active agent is silent
-- when three of its beats are missing: no beat for three intervals since
-- its last one, or since it registered when it never beat
-- (agent_silent(), functions/03_registry.sql).
ALTER TABLE agents
    ADD COLUMN heartbeat_interval_seconds integer NOT NULL DEFAULT 60
        CHECK (heartbeat_interval_seconds BETWEEN 1 AND 86400);
COMMENT ON COLUMN agents.heartbeat_interval_seconds IS
    'Seconds between the heartbeats the agent declared; silent after three missed';
