-- 012_activity.sql - the activity feed: the staging log the sources' triggers
-- write and the feed whose ids grow in commit order (how: the header of
-- functions/25_activity.sql).

-- activity_staged - events written by the triggers of their sources, in
-- their sources' transactions. Its seq is only a tie-break: it is assigned at
-- insert, not at commit. Rows leave it for activity_events.
CREATE TABLE activity_staged (
    seq         bigint      GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    type        text        NOT NULL,
    at          timestamptz NOT NULL DEFAULT now(),
    agent_id    uuid,
    title       text        NOT NULL,
    status      text,
    severity    text,
    link        text        NOT NULL,
    resource_id text        NOT NULL
);
COMMENT ON TABLE activity_staged IS
    'Activity events written by source triggers, waiting for their commit-ordered id';

-- activity_events - the feed. id is assigned by activity_sequence(), one
-- serialized transaction at a time: it grows in the order events became
-- visible.
CREATE TABLE activity_events (
    id          bigint      PRIMARY KEY,
    type        text        NOT NULL CHECK (type IN ('execution_failed', 'deployment', 'problem',
                                                     'alert', 'agent', 'version', 'dashboard',
                                                     'rule')),
    at          timestamptz NOT NULL,
    agent_id    uuid,
    title       text        NOT NULL,
    status      text,
    severity    text        CHECK (severity IN ('critical', 'high', 'medium', 'low')),
    link        text        NOT NULL,
    resource_id text        NOT NULL
);
COMMENT ON TABLE activity_events IS
    'The activity feed: ids grow in commit order (a follower by id never misses nor repeats)';

-- The ids the sequencer hands out.
CREATE SEQUENCE activity_events_id_seq AS bigint OWNED BY activity_events.id;

-- The feed's pages: newest first by id, per type, per agent, per severity.
CREATE INDEX activity_events_type_idx ON activity_events (type, id);
CREATE INDEX activity_events_agent_idx ON activity_events (agent_id, id) WHERE agent_id IS NOT NULL;
CREATE INDEX activity_events_severity_idx ON activity_events (severity, id) WHERE severity IS NOT NULL;
CREATE INDEX activity_events_at_idx ON activity_events (at);
