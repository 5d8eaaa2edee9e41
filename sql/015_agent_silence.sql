-- 015_agent_silence.sql - agents going silent and coming back, as events of
-- the activity feed.
--
-- agent_silence: the agents the maintenance job last saw silent
-- (agent_silent(), functions/03_registry.sql) and since when. Being silent
-- depends on the clock, not on a write, so the job compares it with the
-- clock every round (agents_watch_silence(), functions/25_activity.sql):
-- an agent that fell silent gets a row and the feed a "silent" event, one
-- that is no longer silent (a beat, a longer interval) loses it and the
-- feed says it is back. Derived data, like the rollups: GET /agents'
-- `silent` is computed from the clock, this table only drives the feed.
CREATE TABLE agent_silence (
    agent_id uuid        PRIMARY KEY REFERENCES agents (id) ON DELETE CASCADE,
    since    timestamptz NOT NULL
);
COMMENT ON TABLE agent_silence IS
    'Agents the maintenance job saw silent, since when (drives the activity feed''s silent/back events)';
