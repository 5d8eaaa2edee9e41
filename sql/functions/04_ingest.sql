-- 04_ingest.sql - how executions arrive. Streams and arrays of 50 or more
-- are COPYed while the body streams in: rows without a client id straight
-- into executions (the worker asks execution_resolve_all() for their agents
-- and versions), rows from the first client id on into a per-session staging
-- table, whose finish skips ids that repeat or exist. Then the one-statement
-- path for small JSON bodies, and Idempotency-Key bookkeeping. Every path
-- stores the finished_at the worker worked out and stamps evaluated_at with
-- execution_evaluated_at() (01_core.sql). Tables and execution_input:
-- 004_ingest.sql.
--
-- Repeatable (sql/README.md): CREATE OR REPLACE only. Several functions
-- return TABLE (...) or have OUT arguments: when those columns change,
-- DROP FUNCTION IF EXISTS the old signature first, here.

-- Creates this session's staging table once (temporary: private to the
-- connection, emptied at every commit or rollback, never WAL-logged).
-- Columns in the order the worker writes COPY rows.
CREATE OR REPLACE FUNCTION execution_staging_prepare() RETURNS void
LANGUAGE plpgsql AS $$
BEGIN
    IF to_regclass('pg_temp.execution_staging') IS NULL THEN
        CREATE TEMP TABLE execution_staging (
            line              bigint NOT NULL,   -- line (NDJSON) or item (JSON) number
            id                uuid NOT NULL,     -- the client's id, or one the worker made
            client_id         boolean NOT NULL,  -- the client's: it may repeat or exist
            agent_id          uuid,
            agent_name        text,
            version           text,
            model             text NOT NULL,
            started_at        timestamptz NOT NULL,
            latency_ms        integer NOT NULL,
            finished_at       timestamptz NOT NULL, -- the worker's (ingest_finished_at)
            status            text NOT NULL,
            prompt_tokens     bigint NOT NULL,
            completion_tokens bigint NOT NULL,
            cache_read_tokens bigint NOT NULL,
            cost_usd          numeric NOT NULL,
            error_category    text,
            error_message     text,
            eval_passed       boolean,
            eval_score        double precision,
            eval_evaluator    text,
            task_id           text,
            metadata          jsonb NOT NULL
        ) ON COMMIT DELETE ROWS;
    END IF;
END $$;

-- What one execution of a stream names: its agent by id (NULL when there is
-- none) or by name (registered when new), and its version (registered when
-- new; NULL when none is given). Both are locked FOR KEY SHARE until the end
-- of the transaction, as the reference check of executions (01_core.sql)
-- would lock them. The worker asks once per distinct (agent, version) of a
-- stream (through execution_resolve_all) and COPYs rows without a client
-- id straight into executions.
CREATE OR REPLACE FUNCTION execution_resolve(p_agent_id uuid, p_agent_name text, p_version text,
                                  OUT resolved_agent uuid, OUT resolved_version uuid)
LANGUAGE plpgsql AS $$
BEGIN
    IF p_agent_id IS NOT NULL THEN
        SELECT a.id INTO resolved_agent FROM agents a WHERE a.id = p_agent_id FOR KEY SHARE;
    ELSE
        INSERT INTO agents (name) VALUES (p_agent_name) ON CONFLICT (name) DO NOTHING
        RETURNING id INTO resolved_agent;
        IF resolved_agent IS NULL THEN
            SELECT a.id INTO resolved_agent FROM agents a WHERE a.name = p_agent_name
               FOR KEY SHARE;
        END IF;
    END IF;
    IF resolved_agent IS NOT NULL AND p_version IS NOT NULL THEN
        INSERT INTO agent_versions (agent_id, version) VALUES (resolved_agent, p_version)
        ON CONFLICT (agent_id, version) DO NOTHING
        RETURNING id INTO resolved_version;
        IF resolved_version IS NULL THEN
            SELECT v.id INTO resolved_version FROM agent_versions v
             WHERE v.agent_id = resolved_agent AND v.version = p_version FOR KEY SHARE;
        END IF;
    END IF;
END $$;

-- execution_resolve for each {agent_id, agent_name, version} of a JSON
-- array, in its order: the worker asks for every pair it has not seen yet
-- at once (one round trip, one pause of the COPY).
CREATE OR REPLACE FUNCTION execution_resolve_all(p_pairs json)
RETURNS TABLE (resolved_agent uuid, resolved_version uuid)
LANGUAGE plpgsql AS $$
DECLARE
    v record;
BEGIN
    FOR v IN SELECT x.agent_id, x.agent_name, x.version, x.n
               FROM ROWS FROM (json_to_recordset(p_pairs)
                               AS (agent_id uuid, agent_name text, version text))
                    WITH ORDINALITY AS x(agent_id, agent_name, version, n)
              ORDER BY x.n LOOP
        SELECT r.resolved_agent, r.resolved_version INTO resolved_agent, resolved_version
          FROM execution_resolve(v.agent_id, v.agent_name, v.version) r;
        RETURN NEXT;
    END LOOP;
END $$;

-- Lines whose agent_id names no agent (the first 100, by line).
-- (plpgsql: the temp table does not exist when this is created.)
CREATE OR REPLACE FUNCTION execution_staging_unknown_agents()
RETURNS TABLE (line bigint, agent_id uuid)
LANGUAGE plpgsql STABLE AS $$
BEGIN
    RETURN QUERY
    SELECT s.line, s.agent_id
      FROM pg_temp.execution_staging s
     WHERE s.agent_id IS NOT NULL
       AND NOT EXISTS (SELECT 1 FROM agents a WHERE a.id = s.agent_id)
     ORDER BY s.line
     LIMIT 100;
END $$;

-- Moves the staged rows into executions: registers agents
-- named for the first time and versions seen for the first time, skips ids
-- that exist already or repeat within the batch (the first line wins), and
-- tells how many rows were new. The caller's transaction makes it all or nothing.
CREATE OR REPLACE FUNCTION execution_staging_finish(OUT inserted bigint, OUT duplicates bigint)
LANGUAGE plpgsql
SET work_mem = '64MB'
AS $$
DECLARE
    v_received bigint;
    v_given bigint;
    v_client boolean;
    v_n bigint;
BEGIN
    SELECT count(*), count(*) FILTER (WHERE s.client_id) INTO v_received, v_given
      FROM pg_temp.execution_staging s;

    INSERT INTO agents (name)
    SELECT DISTINCT s.agent_name FROM pg_temp.execution_staging s
     WHERE s.agent_name IS NOT NULL
    ON CONFLICT (name) DO NOTHING;

    INSERT INTO agent_versions (agent_id, version)
    SELECT DISTINCT COALESCE(s.agent_id, a.id), s.version
      FROM pg_temp.execution_staging s
      LEFT JOIN agents a ON s.agent_id IS NULL AND a.name = s.agent_name
     WHERE s.version IS NOT NULL
    ON CONFLICT (agent_id, version) DO NOTHING;

    -- Ids the worker made (UUIDv7) are new: a plain insert. Ids of the
    -- client may exist already or repeat: ON CONFLICT (a speculative insert
    -- costs ~15 % more), and of the lines of one id only the first is
    -- inserted (an anti-join: sorting the rows by line spilled 146 MB to
    -- disk for 800,000 of them, and took 14.5 s where this takes 11.5).
    inserted := 0;
    FOREACH v_client IN ARRAY ARRAY[false, true] LOOP
        CONTINUE WHEN (CASE WHEN v_client THEN v_given ELSE v_received - v_given END) = 0;
        EXECUTE format($q$
            INSERT INTO executions (id, agent_id, agent_version_id, model, task_id, started_at,
                                    finished_at, latency_ms, status, prompt_tokens,
                                    completion_tokens, cache_read_tokens, cost_usd,
                                    error_category, error_message, eval_passed, eval_score,
                                    eval_evaluator, evaluated_at, metadata)
            SELECT s.id, r.agent_id, v.id, s.model, s.task_id, s.started_at, s.finished_at,
                   s.latency_ms, s.status, s.prompt_tokens, s.completion_tokens,
                   s.cache_read_tokens, s.cost_usd, s.error_category, s.error_message,
                   s.eval_passed, s.eval_score, s.eval_evaluator,
                   execution_evaluated_at(s.eval_passed), s.metadata
              FROM pg_temp.execution_staging s
              -- one row per staged row: agent names are unique, versions unique per agent
              LEFT JOIN agents a ON s.agent_id IS NULL AND a.name = s.agent_name
              CROSS JOIN LATERAL (SELECT COALESCE(s.agent_id, a.id) AS agent_id) r
              LEFT JOIN agent_versions v ON v.agent_id = r.agent_id AND v.version = s.version
             WHERE s.client_id = %L
             %s$q$,
            v_client, CASE WHEN v_client THEN
                'AND NOT EXISTS (SELECT 1 FROM pg_temp.execution_staging t
                                  WHERE t.client_id AND t.id = s.id AND t.line < s.line)
                 ON CONFLICT (id) DO NOTHING' END);
        GET DIAGNOSTICS v_n = ROW_COUNT;
        inserted := inserted + v_n;
    END LOOP;
    duplicates := v_received - inserted;
END $$;

-- The JSON forms (one execution, or an array of up to 1,000) skip the
-- staging table: the rows come as one JSON array (members named as the
-- staging columns) and are checked and stored by this one statement, which
-- is what keeps a single POST cheap. Lines naming unknown agents come back
-- (inserted NULL) and then nothing is written; otherwise one row with the
-- counts. Same rules as execution_staging_finish.
CREATE OR REPLACE FUNCTION execution_ingest_rows(p_rows json)
RETURNS TABLE (inserted bigint, duplicates bigint, unknown_line bigint, unknown_agent uuid)
LANGUAGE plpgsql AS $$
-- plpgsql, not sql: it keeps the plan of this statement between calls.
BEGIN
    RETURN QUERY
    WITH input AS (
        SELECT * FROM json_populate_recordset(NULL::execution_input, p_rows)
    -- Lookups are scalar subqueries: one index probe per row, whatever the
    -- size of the fleet (a join would be planned for 100 rows and scan agents).
    ), unknown AS (
        SELECT i.line, i.agent_id FROM input i
         WHERE i.agent_id IS NOT NULL
           AND (SELECT true FROM agents a WHERE a.id = i.agent_id) IS NULL
    ), looked_up AS (
        SELECT i.*, COALESCE(i.agent_id, (SELECT a.id FROM agents a WHERE a.name = i.agent_name))
                    AS known_agent
          FROM input i
    ), new_agents AS (
        -- names not seen yet; DO UPDATE (a no-op) returns the id even when a
        -- concurrent request registered the same name a moment ago
        INSERT INTO agents AS a (name)
        SELECT DISTINCT l.agent_name FROM looked_up l
         WHERE l.known_agent IS NULL AND NOT EXISTS (SELECT 1 FROM unknown)
        ON CONFLICT (name) DO UPDATE SET name = a.name
        RETURNING a.id, a.name
    ), resolved AS (
        SELECT l.*, COALESCE(l.known_agent, fresh.id) AS agent,
               (SELECT v.id FROM agent_versions v
                 WHERE v.agent_id = l.known_agent AND v.version = l.version) AS known_version
          FROM looked_up l
          LEFT JOIN new_agents fresh ON l.known_agent IS NULL AND fresh.name = l.agent_name
    ), new_versions AS (
        INSERT INTO agent_versions AS v (agent_id, version)
        SELECT DISTINCT r.agent, r.version FROM resolved r
         WHERE r.version IS NOT NULL AND r.known_version IS NULL
           AND NOT EXISTS (SELECT 1 FROM unknown)
        ON CONFLICT (agent_id, version) DO UPDATE SET version = v.version
        RETURNING v.id, v.agent_id, v.version
    ), stored AS (
        INSERT INTO executions (id, agent_id, agent_version_id, model, task_id, started_at,
                                finished_at, latency_ms, status, prompt_tokens,
                                completion_tokens, cache_read_tokens, cost_usd,
                                error_category, error_message, eval_passed, eval_score,
                                eval_evaluator, evaluated_at, metadata)
        SELECT r.id, r.agent, COALESCE(r.known_version, fresh.id), r.model, r.task_id,
               r.started_at, r.finished_at, r.latency_ms, r.status, r.prompt_tokens,
               r.completion_tokens, r.cache_read_tokens, r.cost_usd, r.error_category,
               r.error_message, r.eval_passed, r.eval_score, r.eval_evaluator,
               execution_evaluated_at(r.eval_passed), r.metadata
          FROM resolved r
          LEFT JOIN new_versions fresh ON r.known_version IS NULL
                                      AND fresh.agent_id = r.agent AND fresh.version = r.version
         WHERE NOT EXISTS (SELECT 1 FROM unknown)
         ORDER BY r.line                      -- the first line wins a repeated id
        ON CONFLICT (id) DO NOTHING
        RETURNING id
    )
    SELECT (SELECT count(*) FROM stored), (SELECT count(*) FROM input) - (SELECT count(*) FROM stored),
           NULL::bigint, NULL::uuid
     WHERE NOT EXISTS (SELECT 1 FROM unknown)
    UNION ALL
    SELECT NULL, NULL, u.line, u.agent_id FROM (SELECT * FROM unknown ORDER BY line LIMIT 100) u;
END $$;

-- Claims p_key for this transaction. No row back: the caller runs the request
-- and then calls idempotency_store. A row back: the key's stored answer.
CREATE OR REPLACE FUNCTION idempotency_claim(p_key text, p_method text, p_path text)
RETURNS TABLE (method text, path text, body_hash text, status integer, location text,
               response text)
LANGUAGE plpgsql AS $$
BEGIN
    DELETE FROM idempotency_keys k
     WHERE k.key = p_key AND k.created_at < now() - interval '24 hours';
    INSERT INTO idempotency_keys (key, method, path, body_hash)
    VALUES (p_key, p_method, p_path, '')
    ON CONFLICT (key) DO NOTHING;
    IF FOUND THEN
        RETURN;
    END IF;
    RETURN QUERY SELECT k.method, k.path, k.body_hash, k.status, k.location, k.response
                   FROM idempotency_keys k WHERE k.key = p_key;
END $$;

CREATE OR REPLACE FUNCTION idempotency_store(p_key text, p_body_hash text, p_status integer,
                                  p_location text, p_response text) RETURNS void
LANGUAGE sql AS $$
    UPDATE idempotency_keys
       SET body_hash = p_body_hash, status = p_status, location = p_location,
           response = p_response
     WHERE key = p_key
$$;

-- Forgets answers older than 24 hours; the maintenance job calls it.
CREATE OR REPLACE FUNCTION idempotency_expire() RETURNS bigint
LANGUAGE sql AS $$
    WITH gone AS (DELETE FROM idempotency_keys
                   WHERE created_at < now() - interval '24 hours' RETURNING 1)
    SELECT count(*) FROM gone
$$;
