-- 03_registry.sql - the registry's row views (one per object of the API)
-- and one function per write (tables: 001_core.sql, 003_registry.sql).
--
-- The worker checks every body before it calls a function here (types,
-- lengths, enumerations, UUID shapes), so these functions only decide what
-- needs the data: existence, uniqueness and lifecycle rules. Errors meant
-- for the client are raised with SQLSTATEs the worker maps to HTTP: UF404
-- not found (an id in the path), UF409 conflict with existing data, UF422
-- a field of the body (its path in COLUMN) names nothing that exists.
--
-- Bodies arrive as jsonb with only known members. Writes that apply "the
-- members sent" merge them with jsonb_populate_record(row, body): a member
-- present replaces the column of the same name (JSON null clears it), an
-- absent member keeps it. A write that would change nothing changes nothing:
-- updated_at (kept by set_updated_at(), 01_core.sql) moves only on real changes.
--
-- Repeatable (sql/README.md): CREATE OR REPLACE only. The functions return
-- SETOF their view's row type: a view whose columns change is dropped
-- first together with the functions that return it, here.

-- ===================================================================
-- Row shapes: one view per object of the API, columns in the order of
-- its JSON members and ready for it (times as api_time() text, free-form
-- values as JSON): the worker answers row_to_json() of a row as it is.
-- ===================================================================

-- agent_silent(is_active, last_heartbeat_at, created_at, interval) - the
-- one definition of a silent agent: an active agent three of whose beats
-- are missing, i.e. no heartbeat for three declared intervals since its
-- last one (or since it registered, when it never beat). A retired agent
-- is never silent. Depends on now(): STABLE, one inlined expression.
CREATE OR REPLACE FUNCTION agent_silent(p_active boolean, p_beat timestamptz,
                                        p_created timestamptz, p_interval integer)
RETURNS boolean LANGUAGE sql STABLE PARALLEL SAFE AS $$
    SELECT p_active AND coalesce(p_beat, p_created) < now() - make_interval(secs => 3 * p_interval)
$$;

-- New columns go at the end (CREATE OR REPLACE VIEW only adds columns).
CREATE OR REPLACE VIEW agent_rows AS
SELECT a.id, a.name, a.description, to_json(a.capabilities) AS capabilities,
       a.metadata, a.is_active, a.state, a.current_task,
       api_time(a.last_heartbeat_at) AS last_heartbeat_at,
       (SELECT v.version FROM agent_versions v
         WHERE v.agent_id = a.id AND v.is_active) AS active_version,
       api_time(a.created_at) AS created_at, api_time(a.updated_at) AS updated_at,
       a.heartbeat_interval_seconds,
       agent_silent(a.is_active, a.last_heartbeat_at, a.created_at,
                    a.heartbeat_interval_seconds) AS silent
  FROM agents a;
COMMENT ON VIEW agent_rows IS 'Agent objects of the API, one row per agent';

CREATE OR REPLACE VIEW agent_version_rows AS
SELECT v.id, v.agent_id, v.version, v.config, v.is_active,
       api_time(v.created_at) AS created_at
  FROM agent_versions v;
COMMENT ON VIEW agent_version_rows IS 'AgentVersion objects of the API';

CREATE OR REPLACE VIEW evaluation_rows AS
SELECT e.id AS execution_id, e.eval_passed AS passed, e.eval_score AS score,
       e.eval_evaluator AS evaluator, api_time(e.evaluated_at) AS created_at
  FROM executions e
 WHERE e.eval_passed IS NOT NULL;
COMMENT ON VIEW evaluation_rows IS 'Evaluation objects of the API';

CREATE OR REPLACE VIEW problem_rows AS
SELECT p.id, p.agent_id, p.execution_id, p.category, p.severity, p.title, p.description,
       p.status, p.occurrences, api_time(p.first_seen_at) AS first_seen_at,
       api_time(p.last_seen_at) AS last_seen_at, api_time(p.resolved_at) AS resolved_at,
       api_time(p.created_at) AS created_at, api_time(p.updated_at) AS updated_at
  FROM problems p;
COMMENT ON VIEW problem_rows IS 'Problem objects of the API';

CREATE OR REPLACE VIEW deployment_rows AS
SELECT d.id, d.agent_id, d.old_version_id, d.new_version_id, d.status, d.traffic_percent,
       api_time(d.started_at) AS started_at, api_time(d.updated_at) AS updated_at,
       api_time(d.completed_at) AS completed_at
  FROM canary_deployments d;
COMMENT ON VIEW deployment_rows IS 'Deployment objects of the API (canary rollouts)';

CREATE OR REPLACE VIEW proposal_rows AS
SELECT p.id, p.problem_id, p.agent_id, p.title, p.description, p.status,
       api_time(p.created_at) AS created_at, api_time(p.decided_at) AS decided_at
  FROM improvement_proposals p;
COMMENT ON VIEW proposal_rows IS 'Proposal objects of the API (improvement proposals)';

CREATE OR REPLACE VIEW experiment_rows AS
SELECT x.id, x.agent_id, x.name, x.hypothesis, x.status,
       api_time(x.started_at) AS started_at, api_time(x.ended_at) AS ended_at,
       x.results, api_time(x.created_at) AS created_at
  FROM experiments x;
COMMENT ON VIEW experiment_rows IS 'Experiment objects of the API';


-- ===================================================================
-- References
-- ===================================================================

-- registry_require - checks that the p_kind ('agent', 'execution' or
-- 'problem') with id p_id exists and keeps it (FOR KEY SHARE) until the
-- transaction ends. A NULL p_id is fine. When it is missing: UF422 on field
-- p_field ("no such agent"), or UF404 when p_field is NULL (an id of the path).
CREATE OR REPLACE FUNCTION registry_require(p_kind text, p_id uuid, p_field text) RETURNS void
LANGUAGE plpgsql AS $$
BEGIN
    IF p_id IS NULL THEN
        RETURN;
    END IF;
    CASE p_kind
    WHEN 'agent' THEN PERFORM FROM agents t WHERE t.id = p_id FOR KEY SHARE;
    WHEN 'execution' THEN PERFORM FROM executions t WHERE t.id = p_id FOR KEY SHARE;
    WHEN 'problem' THEN PERFORM FROM problems t WHERE t.id = p_id FOR KEY SHARE;
    END CASE;
    IF FOUND THEN
        RETURN;
    ELSIF p_field IS NULL THEN
        RAISE EXCEPTION USING ERRCODE = 'UF404', MESSAGE = format('No %s %s.', p_kind, p_id);
    END IF;
    RAISE EXCEPTION USING ERRCODE = 'UF422', COLUMN = p_field, MESSAGE = 'no such ' || p_kind;
END $$;

-- registry_require_version - UF422 on p_field unless p_version (if not NULL)
-- is a version of agent p_agent; keeps the version until the transaction ends.
CREATE OR REPLACE FUNCTION registry_require_version(p_agent uuid, p_version uuid, p_field text)
RETURNS void LANGUAGE plpgsql AS $$
BEGIN
    IF p_version IS NULL THEN
        RETURN;
    END IF;
    PERFORM FROM agent_versions v WHERE v.id = p_version AND v.agent_id = p_agent FOR KEY SHARE;
    IF NOT FOUND THEN
        RAISE EXCEPTION USING ERRCODE = 'UF422', COLUMN = p_field,
            MESSAGE = 'is not a version of this agent';
    END IF;
END $$;


-- ===================================================================
-- Agents and their versions
-- ===================================================================

-- agent_register - POST /agents: creates the agent named p_body.name, or
-- applies the members sent to the agent of that name. Race-free (one
-- INSERT ... ON CONFLICT); created tells which of the two happened.
CREATE OR REPLACE FUNCTION agent_register(p_body jsonb)
RETURNS TABLE (agent agent_rows, created boolean) LANGUAGE plpgsql AS $$
DECLARE
    v_id uuid;
    v_created boolean;
BEGIN
    INSERT INTO agents AS a (name, description, capabilities, metadata, is_active,
                             heartbeat_interval_seconds)
    SELECT n.name, n.description, COALESCE(n.capabilities, '{}'), COALESCE(n.metadata, '{}'),
           COALESCE(n.is_active, true), COALESCE(n.heartbeat_interval_seconds, 60)
      FROM jsonb_populate_record(NULL::agents, p_body) n
    ON CONFLICT (name) DO UPDATE
       SET (description, capabilities, metadata, is_active, heartbeat_interval_seconds) =
           (SELECT m.description, m.capabilities, m.metadata, m.is_active,
                   m.heartbeat_interval_seconds
              FROM jsonb_populate_record(a, p_body) m)
     WHERE jsonb_populate_record(a, p_body) IS DISTINCT FROM a
    RETURNING a.id, a.xmax = 0 INTO v_id, v_created;
    IF v_id IS NULL THEN
        -- The name exists and nothing sent differs; ON CONFLICT locked the row.
        SELECT a.id INTO v_id FROM agents a WHERE a.name = p_body->>'name';
    END IF;
    RETURN QUERY SELECT r, COALESCE(v_created, false) FROM agent_rows r WHERE r.id = v_id;
END $$;

-- agent_patch - PATCH /agents/{id}: applies the members sent. UF404 for an
-- unknown agent, UF409 when the new name belongs to another agent.
CREATE OR REPLACE FUNCTION agent_patch(p_id uuid, p_body jsonb) RETURNS SETOF agent_rows
LANGUAGE plpgsql AS $$
BEGIN
    UPDATE agents a
       SET (name, description, capabilities, metadata, is_active, heartbeat_interval_seconds) =
           (SELECT m.name, m.description, m.capabilities, m.metadata, m.is_active,
                   m.heartbeat_interval_seconds
              FROM jsonb_populate_record(a, p_body) m)
     WHERE a.id = p_id AND jsonb_populate_record(a, p_body) IS DISTINCT FROM a;
    RETURN QUERY SELECT * FROM agent_rows r WHERE r.id = p_id;
    IF NOT FOUND THEN
        RAISE EXCEPTION USING ERRCODE = 'UF404', MESSAGE = format('No agent %s.', p_id);
    END IF;
EXCEPTION WHEN unique_violation THEN
    RAISE EXCEPTION USING ERRCODE = 'UF409',
        MESSAGE = format('Another agent is named "%s".', p_body->>'name');
END $$;

-- agent_version_create - POST /agents/{id}/versions. UF404 for an unknown
-- agent, UF409 when the agent has that version string already.
CREATE OR REPLACE FUNCTION agent_version_create(p_agent uuid, p_body jsonb) RETURNS SETOF agent_version_rows
LANGUAGE plpgsql AS $$
DECLARE
    v_id uuid;
BEGIN
    PERFORM registry_require('agent', p_agent, NULL);
    INSERT INTO agent_versions AS v (agent_id, version, config)
    VALUES (p_agent, p_body->>'version', COALESCE(p_body->'config', '{}'))
    ON CONFLICT (agent_id, version) DO NOTHING
    RETURNING v.id INTO v_id;
    IF v_id IS NULL THEN
        RAISE EXCEPTION USING ERRCODE = 'UF409', MESSAGE = format(
            'Agent %s already has a version "%s".', p_agent, p_body->>'version');
    END IF;
    RETURN QUERY SELECT * FROM agent_version_rows r WHERE r.id = v_id;
END $$;

-- agent_version_activate - makes p_version the only active version of
-- p_agent, in one transaction. The agent row lock (NO KEY UPDATE: executions
-- referencing the agent are not blocked) serialises activations of one
-- agent; the old version is deactivated before the new one is activated,
-- as agent_versions_one_active_idx checks every row at once.
CREATE OR REPLACE FUNCTION agent_version_activate(p_agent uuid, p_version uuid)
RETURNS SETOF agent_version_rows LANGUAGE plpgsql AS $$
BEGIN
    PERFORM FROM agents a WHERE a.id = p_agent FOR NO KEY UPDATE;
    IF NOT FOUND THEN
        RAISE EXCEPTION USING ERRCODE = 'UF404', MESSAGE = format('No agent %s.', p_agent);
    END IF;
    PERFORM FROM agent_versions v WHERE v.id = p_version AND v.agent_id = p_agent;
    IF NOT FOUND THEN
        RAISE EXCEPTION USING ERRCODE = 'UF404',
            MESSAGE = format('No version %s of agent %s.', p_version, p_agent);
    END IF;
    UPDATE agent_versions v SET is_active = false
     WHERE v.agent_id = p_agent AND v.is_active AND v.id <> p_version;
    UPDATE agent_versions v SET is_active = true WHERE v.id = p_version AND NOT v.is_active;
    RETURN QUERY SELECT * FROM agent_version_rows r WHERE r.id = p_version;
END $$;


-- ===================================================================
-- Evaluations and problems
-- ===================================================================

-- evaluation_record - POST /evaluations: the verdict on an execution,
-- replacing an earlier one (created is false then). UF422 on execution_id
-- for an unknown execution.
CREATE OR REPLACE FUNCTION evaluation_record(p_body jsonb)
RETURNS TABLE (evaluation evaluation_rows, created boolean) LANGUAGE plpgsql AS $$
DECLARE
    v_execution uuid := p_body->>'execution_id';
    v_created boolean;
BEGIN
    PERFORM registry_require('execution', v_execution, 'execution_id');
    -- The verdict is part of the execution row (001); the old one, if any,
    -- is read under the row lock, so a concurrent re-evaluation waits.
    SELECT e.eval_passed IS NULL INTO v_created
      FROM executions e WHERE e.id = v_execution FOR NO KEY UPDATE;
    UPDATE executions
       SET eval_passed = (p_body->>'passed')::boolean,
           eval_score = (p_body->>'score')::double precision,
           eval_evaluator = p_body->>'evaluator', evaluated_at = now()
     WHERE id = v_execution;
    RETURN QUERY SELECT r, v_created FROM evaluation_rows r WHERE r.execution_id = v_execution;
END $$;

-- problem_create - POST /problems. UF422 on agent_id or execution_id when
-- either names nothing.
CREATE OR REPLACE FUNCTION problem_create(p_body jsonb) RETURNS SETOF problem_rows
LANGUAGE plpgsql AS $$
DECLARE
    v_id uuid;
BEGIN
    PERFORM registry_require('agent', (p_body->>'agent_id')::uuid, 'agent_id');
    PERFORM registry_require('execution', (p_body->>'execution_id')::uuid, 'execution_id');
    INSERT INTO problems AS p (agent_id, execution_id, category, severity, title, description)
    SELECT n.agent_id, n.execution_id, n.category, n.severity, n.title, n.description
      FROM jsonb_populate_record(NULL::problems, p_body) n
    RETURNING p.id INTO v_id;
    RETURN QUERY SELECT * FROM problem_rows r WHERE r.id = v_id;
END $$;

-- problem_patch - PATCH /problems/{id}: status, severity, title,
-- description. resolved_at is set when the problem becomes resolved (kept
-- while it stays so) and cleared otherwise. UF404 for an unknown problem,
-- UF409 when reopening it collides with an open problem of its fingerprint.
CREATE OR REPLACE FUNCTION problem_patch(p_id uuid, p_body jsonb) RETURNS SETOF problem_rows
LANGUAGE plpgsql AS $$
BEGIN
    UPDATE problems p
       SET (status, severity, title, description, resolved_at) =
           (SELECT m.status, m.severity, m.title, m.description,
                   CASE WHEN m.status = 'resolved' THEN COALESCE(p.resolved_at, now()) END
              FROM jsonb_populate_record(p, p_body) m)
     WHERE p.id = p_id AND jsonb_populate_record(p, p_body) IS DISTINCT FROM p;
    RETURN QUERY SELECT * FROM problem_rows r WHERE r.id = p_id;
    IF NOT FOUND THEN
        RAISE EXCEPTION USING ERRCODE = 'UF404', MESSAGE = format('No problem %s.', p_id);
    END IF;
EXCEPTION WHEN unique_violation THEN
    RAISE EXCEPTION USING ERRCODE = 'UF409', MESSAGE =
        'Another open problem has the fingerprint of this one; it cannot be reopened.';
END $$;


-- ===================================================================
-- Canary deployments
-- ===================================================================

-- deployment_create - POST /deployments: a rollout of new_version_id,
-- in_progress, traffic_percent 10 unless sent. UF422 when agent_id names no
-- agent, a version is not one of that agent, or both versions are the same;
-- UF409 when the agent has an unfinished (in_progress or paused) deployment.
CREATE OR REPLACE FUNCTION deployment_create(p_body jsonb) RETURNS SETOF deployment_rows
LANGUAGE plpgsql AS $$
DECLARE
    v_agent uuid := p_body->>'agent_id';
    v_old uuid := p_body->>'old_version_id';
    v_new uuid := p_body->>'new_version_id';
    v_id uuid;
BEGIN
    IF v_old = v_new THEN
        RAISE EXCEPTION USING ERRCODE = 'UF422', COLUMN = 'old_version_id',
            MESSAGE = 'must differ from new_version_id';
    END IF;
    PERFORM registry_require('agent', v_agent, 'agent_id');
    PERFORM registry_require_version(v_agent, v_old, 'old_version_id');
    PERFORM registry_require_version(v_agent, v_new, 'new_version_id');
    INSERT INTO canary_deployments AS d (agent_id, old_version_id, new_version_id, traffic_percent)
    VALUES (v_agent, v_old, v_new, COALESCE((p_body->>'traffic_percent')::integer, 10))
    ON CONFLICT (agent_id) WHERE status IN ('in_progress', 'paused') DO NOTHING
    RETURNING d.id INTO v_id;
    IF v_id IS NULL THEN
        SELECT d.id INTO v_id FROM canary_deployments d
         WHERE d.agent_id = v_agent AND d.status IN ('in_progress', 'paused');
        RAISE EXCEPTION USING ERRCODE = 'UF409', MESSAGE = format(
            'Agent %s has an unfinished deployment (%s); complete or roll it back first.',
            v_agent, v_id);
    END IF;
    RETURN QUERY SELECT * FROM deployment_rows r WHERE r.id = v_id;
END $$;

-- deployment_patch - PATCH /deployments/{id}: status, traffic_percent.
-- completed_at is set when it completes or is rolled back. UF404 for an
-- unknown deployment; UF409 for any change to a finished one.
CREATE OR REPLACE FUNCTION deployment_patch(p_id uuid, p_body jsonb) RETURNS SETOF deployment_rows
LANGUAGE plpgsql AS $$
DECLARE
    v_status text;
BEGIN
    SELECT d.status INTO v_status FROM canary_deployments d WHERE d.id = p_id FOR NO KEY UPDATE;
    IF NOT FOUND THEN
        RAISE EXCEPTION USING ERRCODE = 'UF404', MESSAGE = format('No deployment %s.', p_id);
    END IF;
    IF v_status IN ('completed', 'rolled_back') AND p_body <> '{}' THEN
        RAISE EXCEPTION USING ERRCODE = 'UF409', MESSAGE = format(
            'Deployment %s is %s; a finished deployment cannot change.', p_id, v_status);
    END IF;
    UPDATE canary_deployments d
       SET (status, traffic_percent, completed_at) =
           (SELECT m.status, m.traffic_percent,
                   CASE WHEN m.status IN ('completed', 'rolled_back') THEN now() END
              FROM jsonb_populate_record(d, p_body) m)
     WHERE d.id = p_id AND jsonb_populate_record(d, p_body) IS DISTINCT FROM d;
    RETURN QUERY SELECT * FROM deployment_rows r WHERE r.id = p_id;
END $$;


-- ===================================================================
-- Improvement proposals and experiments
-- ===================================================================

-- proposal_create - POST /proposals: pending. UF422 on problem_id or
-- agent_id when it names nothing; both may be NULL (a fleet-wide proposal).
CREATE OR REPLACE FUNCTION proposal_create(p_body jsonb) RETURNS SETOF proposal_rows
LANGUAGE plpgsql AS $$
DECLARE
    v_id uuid;
BEGIN
    PERFORM registry_require('problem', (p_body->>'problem_id')::uuid, 'problem_id');
    PERFORM registry_require('agent', (p_body->>'agent_id')::uuid, 'agent_id');
    INSERT INTO improvement_proposals AS p (problem_id, agent_id, title, description)
    SELECT n.problem_id, n.agent_id, n.title, n.description
      FROM jsonb_populate_record(NULL::improvement_proposals, p_body) n
    RETURNING p.id INTO v_id;
    RETURN QUERY SELECT * FROM proposal_rows r WHERE r.id = v_id;
END $$;

-- proposal_patch - PATCH /proposals/{id}: status. decided_at is set when it
-- leaves pending (kept while decided) and cleared when back to pending.
CREATE OR REPLACE FUNCTION proposal_patch(p_id uuid, p_body jsonb) RETURNS SETOF proposal_rows
LANGUAGE plpgsql AS $$
BEGIN
    UPDATE improvement_proposals p
       SET (status, decided_at) =
           (SELECT m.status, CASE WHEN m.status <> 'pending' THEN COALESCE(p.decided_at, now()) END
              FROM jsonb_populate_record(p, p_body) m)
     WHERE p.id = p_id AND jsonb_populate_record(p, p_body) IS DISTINCT FROM p;
    RETURN QUERY SELECT * FROM proposal_rows r WHERE r.id = p_id;
    IF NOT FOUND THEN
        RAISE EXCEPTION USING ERRCODE = 'UF404', MESSAGE = format('No proposal %s.', p_id);
    END IF;
END $$;

-- experiment_create - POST /experiments: a draft. UF422 on agent_id for an
-- unknown agent, UF409 when the agent has an experiment of that name.
CREATE OR REPLACE FUNCTION experiment_create(p_body jsonb) RETURNS SETOF experiment_rows
LANGUAGE plpgsql AS $$
DECLARE
    v_agent uuid := p_body->>'agent_id';
    v_id uuid;
BEGIN
    PERFORM registry_require('agent', v_agent, 'agent_id');
    INSERT INTO experiments AS x (agent_id, name, hypothesis)
    VALUES (v_agent, p_body->>'name', p_body->>'hypothesis')
    ON CONFLICT (agent_id, name) DO NOTHING
    RETURNING x.id INTO v_id;
    IF v_id IS NULL THEN
        RAISE EXCEPTION USING ERRCODE = 'UF409', MESSAGE = format(
            'Agent %s already has an experiment named "%s".', v_agent, p_body->>'name');
    END IF;
    RETURN QUERY SELECT * FROM experiment_rows r WHERE r.id = v_id;
END $$;

-- experiment_patch - PATCH /experiments/{id}: status, results (replaced).
-- started_at is set when it starts running and cleared back in draft;
-- ended_at is set when it completes or is cancelled and cleared otherwise.
-- UF404 for an unknown experiment; UF409 when one that never ran would
-- complete (completed needs a start).
CREATE OR REPLACE FUNCTION experiment_patch(p_id uuid, p_body jsonb) RETURNS SETOF experiment_rows
LANGUAGE plpgsql AS $$
DECLARE
    v_old experiments;
    v_new experiments;
BEGIN
    SELECT * INTO v_old FROM experiments x WHERE x.id = p_id FOR NO KEY UPDATE;
    IF NOT FOUND THEN
        RAISE EXCEPTION USING ERRCODE = 'UF404', MESSAGE = format('No experiment %s.', p_id);
    END IF;
    v_new := jsonb_populate_record(v_old, p_body);
    v_new.started_at := CASE v_new.status WHEN 'draft' THEN NULL
                                          WHEN 'running' THEN COALESCE(v_old.started_at, now())
                                          ELSE v_old.started_at END;
    v_new.ended_at := CASE WHEN v_new.status IN ('completed', 'cancelled')
                           THEN COALESCE(v_old.ended_at, now()) END;
    IF v_new.status = 'completed' AND v_new.started_at IS NULL THEN
        RAISE EXCEPTION USING ERRCODE = 'UF409', MESSAGE = format(
            'Experiment %s never ran; set its status to running before completed.', p_id);
    END IF;
    IF v_new IS DISTINCT FROM v_old THEN
        UPDATE experiments x
           SET status = v_new.status, results = v_new.results,
               started_at = v_new.started_at, ended_at = v_new.ended_at
         WHERE x.id = p_id;
    END IF;
    RETURN QUERY SELECT * FROM experiment_rows r WHERE r.id = p_id;
END $$;
