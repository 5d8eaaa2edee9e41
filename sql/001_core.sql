-- 001_core.sql - agents, their versions, executions and the fleet's records,
-- and severity_rank(), which an index of alerts orders by. Their other
-- functions and triggers (updated_at, what a success is, executions'
-- reference checks) are in functions/01_core.sql.
--
-- Conventions used by every table below:
--   * ids are uuid, default gen_random_uuid() (built in since PostgreSQL 13);
--     a client may supply its own id (idempotent retries).
--   * enumerations are text + CHECK, never enum types: adding a value is a
--     one-line ALTER inside a transaction, and the constraint name
--     (<table>_<column>_check) tells the API which field was wrong.
--   * times are timestamptz; created_at/updated_at are NOT NULL default now(),
--     and updated_at is kept by the set_updated_at() trigger
--     (functions/01_core.sql).
--   * free-form objects are jsonb NOT NULL DEFAULT '{}' and must be objects.
--   * identifiers (names, categories, versions) are length-bounded here;
--     free text (descriptions, messages) is bounded by the API, not here, so
--     that a long error message never makes an execution unstorable.
--   * ON DELETE: history is kept. executions refuse to lose their agent or
--     agent version (retire an agent with is_active = false instead; the
--     one reference checked per statement by triggers, not a foreign key:
--     see executions_check_references, functions/01_core.sql);
--     records that only describe an agent go with it (CASCADE); records that
--     outlive what they point at keep themselves and lose the link (SET NULL).
--     Refusals use NO ACTION, not RESTRICT: NO ACTION is checked at the end
--     of the statement, so deleting an agent that has no executions can
--     cascade through versions and canaries that reference each other.
--   * every foreign key column has an index (deletes and cascades on the
--     referenced table would otherwise scan the referencing table).


-- ===================================================================
-- Helpers
-- ===================================================================

-- severity_rank - 1 for critical .. 4 for low; NULL for anything else.
-- Immutable so that indexes can order by it (see alerts_open_order_idx, 008).
CREATE FUNCTION severity_rank(severity text) RETURNS smallint
LANGUAGE sql IMMUTABLE STRICT PARALLEL SAFE AS $$
    SELECT CASE severity
        WHEN 'critical' THEN 1 WHEN 'high' THEN 2
        WHEN 'medium' THEN 3 WHEN 'low' THEN 4 END::smallint
$$;
COMMENT ON FUNCTION severity_rank(text) IS
    'Sort key of a severity: critical 1, high 2, medium 3, low 4';


-- ===================================================================
-- agents: one row per agent in the fleet
-- ===================================================================

-- agents - the agents of the fleet, their registration and live state.
CREATE TABLE agents (
    id                uuid        PRIMARY KEY DEFAULT gen_random_uuid(),
    name              text        NOT NULL UNIQUE
                                  CHECK (char_length(name) BETWEEN 1 AND 255),
    description       text,
    capabilities      text[]      NOT NULL DEFAULT '{}'
                                  -- one-dimensional, no NULL elements (CASE: array_position
                                  -- must not see a multidimensional array)
                                  CHECK (CASE WHEN array_ndims(capabilities) > 1 THEN false
                                              ELSE array_position(capabilities, NULL) IS NULL END),
    metadata          jsonb       NOT NULL DEFAULT '{}'
                                  CHECK (jsonb_typeof(metadata) = 'object'),
    -- is_active: registered and shown (false = retired, history kept);
    -- state: what the agent reported last, independent of is_active.
    is_active         boolean     NOT NULL DEFAULT true,
    state             text        NOT NULL DEFAULT 'offline'
                                  CHECK (state IN ('idle', 'busy', 'error', 'offline')),
    current_task      text,
    last_heartbeat_at timestamptz,
    created_at        timestamptz NOT NULL DEFAULT now(),
    updated_at        timestamptz NOT NULL DEFAULT now()
);
COMMENT ON TABLE agents IS
    'Agents of the fleet: registration (name, capabilities, metadata) and last reported state';


-- agent_versions - the configurations an agent has run; at most one active.
CREATE TABLE agent_versions (
    id         uuid        PRIMARY KEY DEFAULT gen_random_uuid(),
    -- CASCADE: a version is part of its agent's definition. Versions that
    -- executions or canaries point at refuse deletion (NO ACTION there).
    agent_id   uuid        NOT NULL REFERENCES agents (id) ON DELETE CASCADE,
    version    text        NOT NULL CHECK (char_length(version) BETWEEN 1 AND 100),
    config     jsonb       NOT NULL DEFAULT '{}'
                           CHECK (jsonb_typeof(config) = 'object'),
    is_active  boolean     NOT NULL DEFAULT false,
    created_at timestamptz NOT NULL DEFAULT now(),
    CONSTRAINT agent_versions_agent_version_key UNIQUE (agent_id, version),
    -- Target of the composite foreign keys below: a version referenced
    -- together with its agent_id must belong to that agent.
    CONSTRAINT agent_versions_agent_id_id_key UNIQUE (agent_id, id)
);
COMMENT ON TABLE agent_versions IS
    'Versions (configurations) of an agent; at most one is active per agent';

-- At most one active version per agent. To switch, deactivate the old one
-- and activate the new one in one transaction (old first).
CREATE UNIQUE INDEX agent_versions_one_active_idx
    ON agent_versions (agent_id) WHERE is_active;


-- ===================================================================
-- executions: the big, append-mostly table
-- ===================================================================

-- executions - one agent run as reported by the orchestrator, with its
-- evaluation (the verdict: at most one per execution, replaced when
-- re-evaluated). The verdict lives in the row, not in a table of its own:
-- success (execution_success(), functions/01_core.sql) then needs no
-- join, and an execution reported with its evaluation is one insert (one
-- heap tuple, one primary key entry) instead of two.
CREATE TABLE executions (
    id                uuid          PRIMARY KEY DEFAULT gen_random_uuid(),
    -- References agents (id), and (agent_id, agent_version_id) references
    -- agent_versions (agent_id, id): checked per statement by triggers
    -- (functions/01_core.sql), with the guarantees of a NO ACTION foreign
    -- key; their guards need a fresh snapshot, so agents and versions are
    -- deleted or re-keyed in READ COMMITTED transactions only. History
    -- never loses its agent; retire agents instead.
    agent_id          uuid          NOT NULL,
    agent_version_id  uuid,
    model             text          CHECK (char_length(model) BETWEEN 1 AND 200),
    task_id           text          CHECK (char_length(task_id) BETWEEN 1 AND 255),
    started_at        timestamptz   NOT NULL,
    finished_at       timestamptz,
    latency_ms        integer       CHECK (latency_ms BETWEEN 0 AND 86400000),
    status            text          NOT NULL
                                    CHECK (status IN ('succeeded', 'failed', 'timeout', 'cancelled')),
    prompt_tokens     bigint        NOT NULL DEFAULT 0 CHECK (prompt_tokens >= 0),
    completion_tokens bigint        NOT NULL DEFAULT 0 CHECK (completion_tokens >= 0),
    cache_read_tokens bigint        NOT NULL DEFAULT 0 CHECK (cache_read_tokens >= 0),
    cost_usd          numeric(14,6) NOT NULL DEFAULT 0 CHECK (cost_usd >= 0),
    error_category    text          CHECK (char_length(error_category) BETWEEN 1 AND 100),
    error_message     text,
    eval_passed       boolean,      -- NULL: not evaluated
    -- NaN compares above every number, so it fails this check too.
    eval_score        double precision CHECK (eval_score >= 0 AND eval_score <= 1),
    eval_evaluator    text          CHECK (char_length(eval_evaluator) BETWEEN 1 AND 255),
    evaluated_at      timestamptz,
    metadata          jsonb         NOT NULL DEFAULT '{}'
                                    CHECK (jsonb_typeof(metadata) = 'object'),
    ingested_at       timestamptz   NOT NULL DEFAULT now(),
    CONSTRAINT executions_finished_at_check CHECK (finished_at >= started_at),
    -- A succeeded run carries no error, so error breakdowns count failures only.
    CONSTRAINT executions_error_check
        CHECK (status <> 'succeeded' OR (error_category IS NULL AND error_message IS NULL)),
    -- An evaluation has a verdict and a time; score and evaluator need one.
    CONSTRAINT executions_evaluation_check
        CHECK ((eval_passed IS NULL) = (evaluated_at IS NULL)
               AND (eval_passed IS NOT NULL OR (eval_score IS NULL AND eval_evaluator IS NULL)))
);
COMMENT ON TABLE executions IS
    'One agent run each: agent, version, model, timing, tokens, cost, outcome and evaluation';

-- Time-range indexes. btree, not BRIN, on started_at: the activity feed and
-- keyset pagination need ordered access (ORDER BY started_at DESC, id DESC
-- LIMIT n), which BRIN cannot give; the trailing id makes (started_at, id)
-- row comparisons index conditions. (agent_id, started_at, id) also serves
-- the agent_id reference. Every index costs each insert ~3 us here, so
-- there is none per model: per-model figures come from the rollups (006),
-- and raw reads by model are bounded by started_at.
CREATE INDEX executions_started_at_idx ON executions (started_at, id);
CREATE INDEX executions_agent_started_at_idx ON executions (agent_id, started_at, id);
-- Failures are a minority: a partial index keeps error breakdowns cheap.
CREATE INDEX executions_errors_started_at_idx ON executions (started_at)
    WHERE error_category IS NOT NULL;
-- The agent_versions reference (deleting a version must not scan executions).
CREATE INDEX executions_agent_version_idx ON executions (agent_version_id)
    WHERE agent_version_id IS NOT NULL;


-- ===================================================================
-- problems and improvement proposals
-- ===================================================================

-- problems - a recurring failure pattern found in the fleet.
CREATE TABLE problems (
    id            uuid        PRIMARY KEY DEFAULT gen_random_uuid(),
    -- CASCADE: a problem of an agent describes that agent. NULL = fleet-wide.
    agent_id      uuid        REFERENCES agents (id) ON DELETE CASCADE,
    -- SET NULL: the example execution may be purged by retention; the
    -- problem stays.
    execution_id  uuid        REFERENCES executions (id) ON DELETE SET NULL,
    -- fingerprint: the reporter's dedup key; while a problem is unresolved a
    -- new sighting with the same fingerprint bumps occurrences instead of
    -- opening a second problem (see problems_open_fingerprint_idx).
    fingerprint   text        CHECK (char_length(fingerprint) BETWEEN 1 AND 255),
    category      text        NOT NULL CHECK (char_length(category) BETWEEN 1 AND 100),
    severity      text        NOT NULL
                              CHECK (severity IN ('critical', 'high', 'medium', 'low')),
    title         text        NOT NULL CHECK (char_length(title) BETWEEN 1 AND 500),
    description   text,
    status        text        NOT NULL DEFAULT 'open'
                              CHECK (status IN ('open', 'investigating', 'resolved')),
    occurrences   integer     NOT NULL DEFAULT 1 CHECK (occurrences >= 1),
    first_seen_at timestamptz NOT NULL DEFAULT now(),
    last_seen_at  timestamptz NOT NULL DEFAULT now(),
    resolved_at   timestamptz,
    created_at    timestamptz NOT NULL DEFAULT now(),
    updated_at    timestamptz NOT NULL DEFAULT now(),
    CONSTRAINT problems_seen_check CHECK (last_seen_at >= first_seen_at),
    CONSTRAINT problems_resolved_check CHECK (
        (status = 'resolved') = (resolved_at IS NOT NULL)
        AND (resolved_at IS NULL OR resolved_at >= first_seen_at))
);
COMMENT ON TABLE problems IS
    'Failure patterns found in the fleet, with severity, occurrences and resolution';

-- Active problems (counted on every dashboard), newest sighting first.
CREATE INDEX problems_status_idx ON problems (status, last_seen_at DESC);
-- Error breakdowns and the activity feed over a time range.
CREATE INDEX problems_first_seen_at_idx ON problems (first_seen_at);
CREATE INDEX problems_agent_idx ON problems (agent_id, first_seen_at)
    WHERE agent_id IS NOT NULL;
CREATE INDEX problems_execution_idx ON problems (execution_id)
    WHERE execution_id IS NOT NULL;
CREATE UNIQUE INDEX problems_open_fingerprint_idx ON problems (fingerprint)
    WHERE fingerprint IS NOT NULL AND status <> 'resolved';


-- improvement_proposals - a proposed change to an agent, and its decision.
CREATE TABLE improvement_proposals (
    id          uuid        PRIMARY KEY DEFAULT gen_random_uuid(),
    -- SET NULL: the proposal (perhaps implemented) outlives its problem.
    problem_id  uuid        REFERENCES problems (id) ON DELETE SET NULL,
    -- CASCADE: a proposal to change an agent describes that agent.
    agent_id    uuid        NOT NULL REFERENCES agents (id) ON DELETE CASCADE,
    title       text        NOT NULL CHECK (char_length(title) BETWEEN 1 AND 500),
    description text,
    status      text        NOT NULL DEFAULT 'pending'
                            CHECK (status IN ('pending', 'approved', 'rejected', 'implemented')),
    created_at  timestamptz NOT NULL DEFAULT now(),
    decided_at  timestamptz,
    updated_at  timestamptz NOT NULL DEFAULT now(),
    -- Decided exactly when no longer pending.
    CONSTRAINT improvement_proposals_decided_check CHECK (
        (status = 'pending') = (decided_at IS NULL)
        AND (decided_at IS NULL OR decided_at >= created_at))
);
COMMENT ON TABLE improvement_proposals IS
    'Proposed changes to an agent (usually answering a problem) and their decision';

CREATE INDEX improvement_proposals_pending_idx ON improvement_proposals (created_at)
    WHERE status = 'pending';
CREATE INDEX improvement_proposals_agent_idx ON improvement_proposals (agent_id, created_at);
CREATE INDEX improvement_proposals_problem_idx ON improvement_proposals (problem_id)
    WHERE problem_id IS NOT NULL;


-- ===================================================================
-- experiments and canary deployments
-- ===================================================================

-- experiments - a hypothesis tested on an agent, and what came out.
CREATE TABLE experiments (
    id         uuid        PRIMARY KEY DEFAULT gen_random_uuid(),
    -- CASCADE: an experiment on an agent describes that agent.
    agent_id   uuid        NOT NULL REFERENCES agents (id) ON DELETE CASCADE,
    name       text        NOT NULL CHECK (char_length(name) BETWEEN 1 AND 255),
    hypothesis text,
    status     text        NOT NULL DEFAULT 'draft'
                           CHECK (status IN ('draft', 'running', 'completed', 'cancelled')),
    started_at timestamptz,
    ended_at   timestamptz,
    results    jsonb       NOT NULL DEFAULT '{}'
                           CHECK (jsonb_typeof(results) = 'object'),
    created_at timestamptz NOT NULL DEFAULT now(),
    updated_at timestamptz NOT NULL DEFAULT now(),
    CONSTRAINT experiments_agent_name_key UNIQUE (agent_id, name),
    -- draft: not started; running: started, not ended; completed: both;
    -- cancelled: ended (it may never have started).
    CONSTRAINT experiments_timestamps_check CHECK (
        CASE status
            WHEN 'draft' THEN started_at IS NULL AND ended_at IS NULL
            WHEN 'running' THEN started_at IS NOT NULL AND ended_at IS NULL
            WHEN 'completed' THEN started_at IS NOT NULL AND ended_at IS NOT NULL
            WHEN 'cancelled' THEN ended_at IS NOT NULL
        END
        AND (ended_at IS NULL OR started_at IS NULL OR ended_at >= started_at))
);
COMMENT ON TABLE experiments IS
    'Experiments on an agent: hypothesis, lifecycle and results';

CREATE INDEX experiments_running_idx ON experiments (started_at)
    WHERE status = 'running';


-- canary_deployments - a gradual rollout of a new agent version.
CREATE TABLE canary_deployments (
    id              uuid        PRIMARY KEY DEFAULT gen_random_uuid(),
    -- CASCADE: a rollout of an agent describes that agent.
    agent_id        uuid        NOT NULL REFERENCES agents (id) ON DELETE CASCADE,
    -- NULL old version: the agent's first deployment.
    old_version_id  uuid,
    new_version_id  uuid        NOT NULL,
    status          text        NOT NULL DEFAULT 'in_progress'
                                CHECK (status IN ('in_progress', 'paused', 'completed', 'rolled_back')),
    traffic_percent integer     NOT NULL DEFAULT 0
                                CHECK (traffic_percent BETWEEN 0 AND 100),
    started_at      timestamptz NOT NULL DEFAULT now(),
    completed_at    timestamptz,
    created_at      timestamptz NOT NULL DEFAULT now(),
    updated_at      timestamptz NOT NULL DEFAULT now(),
    CONSTRAINT canary_deployments_versions_check
        CHECK (old_version_id IS DISTINCT FROM new_version_id),
    -- Finished (completed or rolled back) exactly when completed_at is set.
    CONSTRAINT canary_deployments_completed_check CHECK (
        (status IN ('completed', 'rolled_back')) = (completed_at IS NOT NULL)
        AND (completed_at IS NULL OR completed_at >= started_at)),
    -- NO ACTION, and both versions must belong to this deployment's agent.
    CONSTRAINT canary_deployments_old_version_fkey FOREIGN KEY (agent_id, old_version_id)
        REFERENCES agent_versions (agent_id, id),
    CONSTRAINT canary_deployments_new_version_fkey FOREIGN KEY (agent_id, new_version_id)
        REFERENCES agent_versions (agent_id, id)
);
COMMENT ON TABLE canary_deployments IS
    'Canary rollouts of a new agent version: traffic share and lifecycle';

-- At most one unfinished rollout per agent (so "the agent's canary" is one row).
CREATE UNIQUE INDEX canary_deployments_one_open_idx ON canary_deployments (agent_id)
    WHERE status IN ('in_progress', 'paused');
-- Per-agent history and the activity feed.
CREATE INDEX canary_deployments_agent_idx ON canary_deployments (agent_id, started_at);
CREATE INDEX canary_deployments_started_at_idx ON canary_deployments (started_at);
CREATE INDEX canary_deployments_old_version_idx ON canary_deployments (old_version_id)
    WHERE old_version_id IS NOT NULL;
CREATE INDEX canary_deployments_new_version_idx ON canary_deployments (new_version_id);
