-- 001_core.sql - agents, their versions, executions and the fleet's records
--
-- Conventions used by every table below:
--   * ids are uuid, default gen_random_uuid() (built in since PostgreSQL 13);
--     a client may supply its own id (idempotent retries).
--   * enumerations are text + CHECK, never enum types: adding a value is a
--     one-line ALTER inside a transaction, and the constraint name
--     (<table>_<column>_check) tells the API which field was wrong.
--   * times are timestamptz; created_at/updated_at are NOT NULL default now(),
--     and updated_at is kept by the set_updated_at() trigger.
--   * free-form objects are jsonb NOT NULL DEFAULT '{}' and must be objects.
--   * identifiers (names, categories, versions) are length-bounded here;
--     free text (descriptions, messages) is bounded by the API, not here, so
--     that a long error message never makes an execution unstorable.
--   * ON DELETE: history is kept. executions refuse to lose their agent or
--     agent version (retire an agent with is_active = false instead; the
--     one reference checked per statement by triggers, not a foreign key:
--     see executions_check_references);
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

-- set_updated_at - BEFORE UPDATE trigger: stamp updated_at with now() unless
-- the statement set updated_at itself. Its triggers say the same condition
-- in WHEN, which PostgreSQL checks without calling the function: a
-- statement that sets updated_at (a heartbeat: thousands a second) costs
-- no plpgsql call.
CREATE FUNCTION set_updated_at() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
    IF NEW.updated_at IS NOT DISTINCT FROM OLD.updated_at THEN
        NEW.updated_at := now();
    END IF;
    RETURN NEW;
END;
$$;
COMMENT ON FUNCTION set_updated_at() IS
    'BEFORE UPDATE trigger: sets updated_at = now() unless the UPDATE set it';

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

CREATE TRIGGER agents_set_updated_at BEFORE UPDATE ON agents
    FOR EACH ROW WHEN (NEW.updated_at IS NOT DISTINCT FROM OLD.updated_at)
    EXECUTE FUNCTION set_updated_at();


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
-- success (execution_success() below) then needs no join, and
-- an execution reported with its evaluation is one insert (one heap tuple,
-- one primary key entry) instead of two.
CREATE TABLE executions (
    id                uuid          PRIMARY KEY DEFAULT gen_random_uuid(),
    -- References agents (id), and (agent_id, agent_version_id) references
    -- agent_versions (agent_id, id): checked per statement by the triggers
    -- below, with the guarantees of a NO ACTION foreign key. History never
    -- loses its agent; retire agents instead.
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

-- execution_success(eval_passed, status) - the one definition of a
-- successful execution: its evaluation passed, or, when it has none, its
-- status is succeeded (a failed run that its evaluator passed is a
-- success; a succeeded run that failed its evaluation is not). Every count
-- of successes (the rollups and their deltas, raw reads, the demo fleet)
-- is made with it. One SQL expression: the planner inlines it, so it costs
-- what the expression costs.
CREATE FUNCTION execution_success(p_eval_passed boolean, p_status text) RETURNS boolean
LANGUAGE sql IMMUTABLE PARALLEL SAFE AS $$
    SELECT coalesce(p_eval_passed, p_status = 'succeeded')
$$;

-- execution_evaluated_at(eval_passed) - the one definition of when the
-- verdict of an execution reported with its evaluation was recorded: by
-- the transaction that stores it (now(), which is its ingested_at too);
-- NULL without a verdict. Every ingest path stamps with it: the SQL ones
-- (004, and the worker's single INSERT) per row; the worker's binary COPY,
-- which writes the values themselves, asks it once per transaction and puts
-- that stamp into every row with a verdict (the evaluation check below
-- refuses a row where the two disagree). finished_at has one definition
-- too, in the worker: started_at plus latency_ms, which it works out from
-- finished_at when a client sends that (workers/ingest_validate.c); every
-- path stores the worker's value.
CREATE FUNCTION execution_evaluated_at(p_eval_passed boolean) RETURNS timestamptz
LANGUAGE sql STABLE PARALLEL SAFE AS $$
    SELECT CASE WHEN p_eval_passed IS NOT NULL THEN now() END
$$;

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


-- executions' references, checked per statement. executions is the table
-- written in bulk, and a foreign key checks and locks the agent (and the
-- version) once per row: COPY of 1,000,000 executions took 20.7 s with the
-- two foreign keys and 13.9 s without them. These triggers keep the
-- guarantees of a NO ACTION foreign key at the cost of one pass over the
-- statement's rows:
--   * executions_references_insert and _update (per statement): each
--     distinct agent, and (agent, version) where a version is given, of the
--     new rows must exist. Each is locked FOR KEY SHARE, as a foreign key
--     does, so that a concurrent delete of it waits for this transaction
--     and then sees its rows.
--   * agents_executions_guard, agent_versions_executions_guard (AFTER
--     DELETE or UPDATE OF the key, per row: at the end of the statement,
--     after cascades, like NO ACTION) refuse while executions refer to the row.
-- Violations raise what a foreign key raises: SQLSTATE 23503, constraint
-- executions_agent_id_fkey or executions_agent_version_fkey.
-- The guards see rows committed concurrently only with a fresh snapshot,
-- that is in READ COMMITTED; under REPEATABLE READ or SERIALIZABLE they
-- refuse to delete or re-key agents and versions at all (a foreign key
-- there uses a crosscheck snapshot that no trigger can). The API never
-- deletes agents; retire them (is_active = false).
-- ALWAYS: a bulk loader in session_replication_role = replica keeps them.

CREATE FUNCTION executions_check_references() RETURNS trigger
LANGUAGE plpgsql AS $$
DECLARE
    v_wanted bigint;
    v_found  bigint;
    v_agent  uuid;
    v_version uuid;
BEGIN
    SELECT count(*), count(l.id) INTO v_wanted, v_found
      FROM (SELECT DISTINCT n.agent_id FROM added n) d
      LEFT JOIN LATERAL (SELECT a.id FROM agents a WHERE a.id = d.agent_id
                           FOR KEY SHARE) l ON true;
    IF v_found < v_wanted THEN
        SELECT n.agent_id INTO v_agent FROM added n
         WHERE NOT EXISTS (SELECT 1 FROM agents a WHERE a.id = n.agent_id) LIMIT 1;
        RAISE EXCEPTION 'insert or update on table "executions" violates foreign key constraint "executions_agent_id_fkey"'
            USING ERRCODE = 'foreign_key_violation', TABLE = 'executions',
                  CONSTRAINT = 'executions_agent_id_fkey',
                  DETAIL = format('Key (agent_id)=(%s) is not present in table "agents".', v_agent);
    END IF;
    SELECT count(*), count(l.id) INTO v_wanted, v_found
      FROM (SELECT DISTINCT n.agent_id, n.agent_version_id FROM added n
             WHERE n.agent_version_id IS NOT NULL) d
      LEFT JOIN LATERAL (SELECT v.id FROM agent_versions v
                          WHERE v.agent_id = d.agent_id AND v.id = d.agent_version_id
                            FOR KEY SHARE) l ON true;
    IF v_found < v_wanted THEN
        SELECT n.agent_id, n.agent_version_id INTO v_agent, v_version FROM added n
         WHERE n.agent_version_id IS NOT NULL
           AND NOT EXISTS (SELECT 1 FROM agent_versions v
                            WHERE v.agent_id = n.agent_id AND v.id = n.agent_version_id)
         LIMIT 1;
        RAISE EXCEPTION 'insert or update on table "executions" violates foreign key constraint "executions_agent_version_fkey"'
            USING ERRCODE = 'foreign_key_violation', TABLE = 'executions',
                  CONSTRAINT = 'executions_agent_version_fkey',
                  DETAIL = format('Key (agent_id, agent_version_id)=(%s, %s) is not present in table "agent_versions".',
                                  v_agent, v_version);
    END IF;
    RETURN NULL;
END $$;
COMMENT ON FUNCTION executions_check_references() IS
    'AFTER INSERT OR UPDATE statement trigger: the agents and versions of the new executions exist (locked FOR KEY SHARE)';

CREATE TRIGGER executions_references_insert AFTER INSERT ON executions
    REFERENCING NEW TABLE AS added
    FOR EACH STATEMENT EXECUTE FUNCTION executions_check_references();
CREATE TRIGGER executions_references_update AFTER UPDATE ON executions
    REFERENCING NEW TABLE AS added
    FOR EACH STATEMENT EXECUTE FUNCTION executions_check_references();
ALTER TABLE executions ENABLE ALWAYS TRIGGER executions_references_insert;
ALTER TABLE executions ENABLE ALWAYS TRIGGER executions_references_update;

-- executions_guard_referenced(kind, constraint) - AFTER DELETE or UPDATE OF
-- the key row trigger on agents (kind 'agent') and agent_versions ('version').
CREATE FUNCTION executions_guard_referenced() RETURNS trigger
LANGUAGE plpgsql AS $$
-- (each branch reads only the columns of its table: plpgsql resolves
-- NEW.agent_id when the statement first runs, and agents has none)
DECLARE
    v_key     text;
    v_used    boolean;
BEGIN
    IF TG_ARGV[0] = 'agent' THEN
        IF TG_OP = 'UPDATE' AND NEW.id = OLD.id THEN
            RETURN NULL;
        END IF;
        v_key := format('Key (id)=(%s)', OLD.id);
    ELSE
        IF TG_OP = 'UPDATE' AND (NEW.id, NEW.agent_id) = (OLD.id, OLD.agent_id) THEN
            RETURN NULL;
        END IF;
        v_key := format('Key (agent_id, id)=(%s, %s)', OLD.agent_id, OLD.id);
    END IF;
    IF current_setting('transaction_isolation') <> 'read committed' THEN
        RAISE EXCEPTION 'agents and agent versions are deleted or re-keyed in READ COMMITTED transactions only'
            USING ERRCODE = 'object_not_in_prerequisite_state',
                  HINT = 'Executions refer to them through a statement-level check that needs a fresh snapshot (sql/001_core.sql).';
    END IF;
    IF TG_ARGV[0] = 'agent' THEN
        v_used := EXISTS (SELECT 1 FROM executions e WHERE e.agent_id = OLD.id);
    ELSE
        v_used := EXISTS (SELECT 1 FROM executions e
                           WHERE e.agent_version_id = OLD.id AND e.agent_id = OLD.agent_id);
    END IF;
    IF v_used THEN
        RAISE EXCEPTION 'update or delete on table "%" violates foreign key constraint "%" on table "executions"',
                        TG_TABLE_NAME, TG_ARGV[1]
            USING ERRCODE = 'foreign_key_violation', TABLE = 'executions', CONSTRAINT = TG_ARGV[1],
                  DETAIL = v_key || ' is still referenced from table "executions".';
    END IF;
    RETURN NULL;
END $$;
COMMENT ON FUNCTION executions_guard_referenced() IS
    'AFTER DELETE or UPDATE OF the key trigger on agents and agent_versions: refuses while executions refer to the row';

CREATE TRIGGER agents_executions_guard AFTER DELETE OR UPDATE OF id ON agents
    FOR EACH ROW EXECUTE FUNCTION executions_guard_referenced('agent', 'executions_agent_id_fkey');
CREATE TRIGGER agent_versions_executions_guard AFTER DELETE OR UPDATE OF id, agent_id ON agent_versions
    FOR EACH ROW EXECUTE FUNCTION executions_guard_referenced('version', 'executions_agent_version_fkey');
ALTER TABLE agents ENABLE ALWAYS TRIGGER agents_executions_guard;
ALTER TABLE agent_versions ENABLE ALWAYS TRIGGER agent_versions_executions_guard;

-- TRUNCATE skips row triggers: truncating agents or agent_versions without
-- executions would orphan its rows (a foreign key refuses that TRUNCATE).
CREATE FUNCTION executions_guard_truncate() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
    IF EXISTS (SELECT 1 FROM executions) THEN
        RAISE EXCEPTION 'cannot truncate table "%" while executions refer to it', TG_TABLE_NAME
            USING ERRCODE = 'feature_not_supported',
                  HINT = 'Truncate table "executions" at the same time.';
    END IF;
    RETURN NULL;
END $$;
CREATE TRIGGER agents_executions_truncate AFTER TRUNCATE ON agents
    FOR EACH STATEMENT EXECUTE FUNCTION executions_guard_truncate();
CREATE TRIGGER agent_versions_executions_truncate AFTER TRUNCATE ON agent_versions
    FOR EACH STATEMENT EXECUTE FUNCTION executions_guard_truncate();
ALTER TABLE agents ENABLE ALWAYS TRIGGER agents_executions_truncate;
ALTER TABLE agent_versions ENABLE ALWAYS TRIGGER agent_versions_executions_truncate;


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

CREATE TRIGGER problems_set_updated_at BEFORE UPDATE ON problems
    FOR EACH ROW WHEN (NEW.updated_at IS NOT DISTINCT FROM OLD.updated_at)
    EXECUTE FUNCTION set_updated_at();

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

CREATE TRIGGER improvement_proposals_set_updated_at BEFORE UPDATE ON improvement_proposals
    FOR EACH ROW WHEN (NEW.updated_at IS NOT DISTINCT FROM OLD.updated_at)
    EXECUTE FUNCTION set_updated_at();

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

CREATE TRIGGER experiments_set_updated_at BEFORE UPDATE ON experiments
    FOR EACH ROW WHEN (NEW.updated_at IS NOT DISTINCT FROM OLD.updated_at)
    EXECUTE FUNCTION set_updated_at();

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

CREATE TRIGGER canary_deployments_set_updated_at BEFORE UPDATE ON canary_deployments
    FOR EACH ROW WHEN (NEW.updated_at IS NOT DISTINCT FROM OLD.updated_at)
    EXECUTE FUNCTION set_updated_at();

-- At most one unfinished rollout per agent (so "the agent's canary" is one row).
CREATE UNIQUE INDEX canary_deployments_one_open_idx ON canary_deployments (agent_id)
    WHERE status IN ('in_progress', 'paused');
-- Per-agent history and the activity feed.
CREATE INDEX canary_deployments_agent_idx ON canary_deployments (agent_id, started_at);
CREATE INDEX canary_deployments_started_at_idx ON canary_deployments (started_at);
CREATE INDEX canary_deployments_old_version_idx ON canary_deployments (old_version_id)
    WHERE old_version_id IS NOT NULL;
CREATE INDEX canary_deployments_new_version_idx ON canary_deployments (new_version_id);
