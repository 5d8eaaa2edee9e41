-- 01_core.sql - the core tables' functions and triggers: set_updated_at()
-- and the updated_at trigger of every table that has the column,
-- execution_success() and execution_evaluated_at(), and the per-statement
-- reference checks of executions (tables: 001_core.sql, which keeps
-- severity_rank() with the index alerts_open_order_idx of 008 that orders by it).
--
-- Repeatable (sql/README.md): CREATE OR REPLACE only. CREATE OR REPLACE
-- TRIGGER makes a trigger fire on origin again, so every ALWAYS trigger is
-- enabled ALWAYS again right after it is made.


-- ===================================================================
-- updated_at
-- ===================================================================

-- set_updated_at - BEFORE UPDATE trigger: stamp updated_at with now() unless
-- the statement set updated_at itself. Its triggers say the same condition
-- in WHEN, which PostgreSQL checks without calling the function: a
-- statement that sets updated_at (a heartbeat: thousands a second) costs
-- no plpgsql call.
CREATE OR REPLACE FUNCTION set_updated_at() RETURNS trigger
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

CREATE OR REPLACE TRIGGER agents_set_updated_at BEFORE UPDATE ON agents
    FOR EACH ROW WHEN (NEW.updated_at IS NOT DISTINCT FROM OLD.updated_at)
    EXECUTE FUNCTION set_updated_at();
CREATE OR REPLACE TRIGGER problems_set_updated_at BEFORE UPDATE ON problems
    FOR EACH ROW WHEN (NEW.updated_at IS NOT DISTINCT FROM OLD.updated_at)
    EXECUTE FUNCTION set_updated_at();
CREATE OR REPLACE TRIGGER improvement_proposals_set_updated_at BEFORE UPDATE ON improvement_proposals
    FOR EACH ROW WHEN (NEW.updated_at IS NOT DISTINCT FROM OLD.updated_at)
    EXECUTE FUNCTION set_updated_at();
CREATE OR REPLACE TRIGGER experiments_set_updated_at BEFORE UPDATE ON experiments
    FOR EACH ROW WHEN (NEW.updated_at IS NOT DISTINCT FROM OLD.updated_at)
    EXECUTE FUNCTION set_updated_at();
CREATE OR REPLACE TRIGGER canary_deployments_set_updated_at BEFORE UPDATE ON canary_deployments
    FOR EACH ROW WHEN (NEW.updated_at IS NOT DISTINCT FROM OLD.updated_at)
    EXECUTE FUNCTION set_updated_at();


-- ===================================================================
-- executions: what a success is, when a verdict was recorded
-- ===================================================================

-- execution_success(eval_passed, status) - the one definition of a
-- successful execution: its evaluation passed, or, when it has none, its
-- status is succeeded (a failed run that its evaluator passed is a
-- success; a succeeded run that failed its evaluation is not). Every count
-- of successes (the rollups and their deltas, raw reads, the demo fleet)
-- is made with it. One SQL expression: the planner inlines it, so it costs
-- what the expression costs.
CREATE OR REPLACE FUNCTION execution_success(p_eval_passed boolean, p_status text) RETURNS boolean
LANGUAGE sql IMMUTABLE PARALLEL SAFE AS $$
    SELECT coalesce(p_eval_passed, p_status = 'succeeded')
$$;

-- execution_evaluated_at(eval_passed) - the one definition of when the
-- verdict of an execution reported with its evaluation was recorded: by
-- the transaction that stores it (now(), which is its ingested_at too);
-- NULL without a verdict. Every ingest path stamps with it: the SQL ones
-- (04_ingest.sql, and the worker's single INSERT) per row; the worker's
-- binary COPY, which writes the values themselves, asks it once per
-- transaction and puts that stamp into every row with a verdict (the
-- evaluation check of executions, 001_core.sql, refuses a row where the
-- two disagree). finished_at has one definition
-- too, in the worker: started_at plus latency_ms, which it works out from
-- finished_at when a client sends that (workers/ingest_validate.c); every
-- path stores the worker's value.
CREATE OR REPLACE FUNCTION execution_evaluated_at(p_eval_passed boolean) RETURNS timestamptz
LANGUAGE sql STABLE PARALLEL SAFE AS $$
    SELECT CASE WHEN p_eval_passed IS NOT NULL THEN now() END
$$;


-- ===================================================================
-- executions' references
-- ===================================================================

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

CREATE OR REPLACE FUNCTION executions_check_references() RETURNS trigger
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

CREATE OR REPLACE TRIGGER executions_references_insert AFTER INSERT ON executions
    REFERENCING NEW TABLE AS added
    FOR EACH STATEMENT EXECUTE FUNCTION executions_check_references();
CREATE OR REPLACE TRIGGER executions_references_update AFTER UPDATE ON executions
    REFERENCING NEW TABLE AS added
    FOR EACH STATEMENT EXECUTE FUNCTION executions_check_references();
ALTER TABLE executions ENABLE ALWAYS TRIGGER executions_references_insert;
ALTER TABLE executions ENABLE ALWAYS TRIGGER executions_references_update;

-- executions_guard_referenced(kind, constraint) - AFTER DELETE or UPDATE OF
-- the key row trigger on agents (kind 'agent') and agent_versions ('version').
CREATE OR REPLACE FUNCTION executions_guard_referenced() RETURNS trigger
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

CREATE OR REPLACE TRIGGER agents_executions_guard AFTER DELETE OR UPDATE OF id ON agents
    FOR EACH ROW EXECUTE FUNCTION executions_guard_referenced('agent', 'executions_agent_id_fkey');
CREATE OR REPLACE TRIGGER agent_versions_executions_guard AFTER DELETE OR UPDATE OF id, agent_id ON agent_versions
    FOR EACH ROW EXECUTE FUNCTION executions_guard_referenced('version', 'executions_agent_version_fkey');
ALTER TABLE agents ENABLE ALWAYS TRIGGER agents_executions_guard;
ALTER TABLE agent_versions ENABLE ALWAYS TRIGGER agent_versions_executions_guard;

-- TRUNCATE skips row triggers: truncating agents or agent_versions without
-- executions would orphan its rows (a foreign key refuses that TRUNCATE).
CREATE OR REPLACE FUNCTION executions_guard_truncate() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
    IF EXISTS (SELECT 1 FROM executions) THEN
        RAISE EXCEPTION 'cannot truncate table "%" while executions refer to it', TG_TABLE_NAME
            USING ERRCODE = 'feature_not_supported',
                  HINT = 'Truncate table "executions" at the same time.';
    END IF;
    RETURN NULL;
END $$;
CREATE OR REPLACE TRIGGER agents_executions_truncate AFTER TRUNCATE ON agents
    FOR EACH STATEMENT EXECUTE FUNCTION executions_guard_truncate();
CREATE OR REPLACE TRIGGER agent_versions_executions_truncate AFTER TRUNCATE ON agent_versions
    FOR EACH STATEMENT EXECUTE FUNCTION executions_guard_truncate();
ALTER TABLE agents ENABLE ALWAYS TRIGGER agents_executions_truncate;
ALTER TABLE agent_versions ENABLE ALWAYS TRIGGER agent_versions_executions_truncate;
