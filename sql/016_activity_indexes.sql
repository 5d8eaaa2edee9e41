-- 016_activity_indexes.sql - the feed's indexes as its pages read them
-- (workers/activity.c): one ordered probe per type asked, so an agent's or a
-- severity's index leads with it and then the type. They replace 012's
-- (agent_id, id) and (severity, id), under which a rare type of one agent
-- (or of one severity) was found only by walking past every other type.
DROP INDEX activity_events_agent_idx;
DROP INDEX activity_events_severity_idx;
CREATE INDEX activity_events_agent_idx ON activity_events (agent_id, type, id)
    WHERE agent_id IS NOT NULL;
CREATE INDEX activity_events_severity_idx ON activity_events (severity, type, id)
    WHERE severity IS NOT NULL;
