-- 006_aggregates.sql - what the aggregates group answers: materialized
-- rollups of executions with mergeable latency sketches, kept fresh from
-- pending deltas, and one function per endpoint that returns the whole
-- response body as json.
--
-- How a number stays exact and fresh
--   * Every statement that inserts executions (or changes their evaluation)
--     appends its rows, pre-aggregated per 5-minute bucket x agent x model, to
--     rollup_delta, in the same transaction (statement triggers below).
--     What a 2xx acknowledged is therefore in rollup_delta or already in
--     the rollups - never in neither, never in both.
--   * rollup_refresh() (the maintenance job, every second) moves the deltas
--     into rollup_5m, rollup_1h and rollup_1d in one transaction: the
--     watermark is "every delta committed before that transaction". A late
--     execution (started_at days ago) is a delta like any other and is
--     folded into its old buckets.
--   * A query over [from, to) reads the fewest rows that cover it: whole
--     UTC days from rollup_1d, whole hours at the ends from rollup_1h, whole
--     5-minute buckets from rollup_5m, the pending deltas of those buckets,
--     and the raw executions of the two partial 5-minute edges. Counts and
--     sums are exact; latency percentiles come from t-digest sketches
--     (compression 500; the tests compare them with percentile_cont).
--   * Rollup rows are kept per "dims": 0 the whole fleet, 1 per agent,
--     2 per model, 3 per agent and model, so a query with no filter (or one
--     kind of filter) merges one row per bucket, not one per agent.
--   * metadata.KEY=VALUE filters and 1-minute time series read raw rows
--     (source "raw" in the answer); everything else is served from rollups.
--   * Deleting executions (retention) does not shrink the rollups: they keep
--     the history the raw rows no longer have. rollup_rebuild() recomputes
--     them from the raw rows when that is wanted.
--
-- The tdigest extension (Debian: postgresql-15-tdigest) is not a trusted
-- extension: the first migration needs a superuser, or a DBA runs
-- CREATE EXTENSION tdigest beforehand.

CREATE EXTENSION IF NOT EXISTS tdigest;

-- ===================================================================
-- Rollup storage
-- ===================================================================

-- One row per bucket and dims key. agent_id / model are NULL when the dims
-- do not include them (a NULL model with dims 2 or 3 is "no model given").
CREATE TABLE rollup_5m (
    dims       smallint         NOT NULL CHECK (dims BETWEEN 0 AND 3),
    bucket     timestamptz      NOT NULL,
    agent_id   uuid,
    model      text,
    n          bigint           NOT NULL,      -- executions
    evaluated  bigint           NOT NULL,      -- with an evaluation
    passed     bigint           NOT NULL,      -- evaluation passed
    successes  bigint           NOT NULL,      -- execution_success() (sql/001)
    errors     bigint           NOT NULL,      -- status is not succeeded
    lat_n      bigint           NOT NULL,      -- with a latency
    lat_sum    bigint           NOT NULL,
    lat_min    integer,
    lat_max    integer,
    cost       numeric          NOT NULL,
    prompt     bigint           NOT NULL,
    completion bigint           NOT NULL,
    cache      bigint           NOT NULL,
    last_at    timestamptz,                    -- latest started_at
    digest     tdigest,                        -- latency_ms sketch
    p95        double precision                -- its 0.95 quantile (fleet rows, dims 0)
);
CREATE UNIQUE INDEX rollup_5m_key ON rollup_5m (dims, bucket, agent_id, model) NULLS NOT DISTINCT;
CREATE TABLE rollup_1h (LIKE rollup_5m INCLUDING ALL);
CREATE TABLE rollup_1d (LIKE rollup_5m INCLUDING ALL);

-- The three grains as one relation; a query naming the grain reads only
-- that table (the planner drops the other branches).
CREATE VIEW rollup_all AS
SELECT '1d'::text AS grain, * FROM rollup_1d
UNION ALL
SELECT '1h', * FROM rollup_1h
UNION ALL
SELECT '5m', * FROM rollup_5m;

-- Pending: what ingest added since the last refresh, per 5-minute bucket,
-- agent and model (dims 3 only; the reader derives the other dims).
CREATE TABLE rollup_delta (LIKE rollup_5m);
ALTER TABLE rollup_delta DROP COLUMN dims;
CREATE INDEX rollup_delta_bucket ON rollup_delta (bucket);
-- Emptied every second: vacuum it often, or readers wade through dead rows.
ALTER TABLE rollup_delta SET (autovacuum_vacuum_scale_factor = 0,
                              autovacuum_vacuum_threshold = 5000);

-- Error categories per hour and day, agent and model, and for the whole
-- fleet (fleet: agent_id and model NULL); pending ones per hour, agent and
-- model.
CREATE TABLE rollup_errors_1h (
    fleet    boolean     NOT NULL DEFAULT false,
    bucket   timestamptz NOT NULL,
    agent_id uuid,
    model    text,
    category text        NOT NULL,
    n        bigint      NOT NULL,
    example  text
);
CREATE UNIQUE INDEX rollup_errors_1h_key
    ON rollup_errors_1h (fleet, bucket, agent_id, model, category) NULLS NOT DISTINCT;
CREATE TABLE rollup_errors_1d (LIKE rollup_errors_1h INCLUDING ALL);
CREATE TABLE rollup_errors_delta (LIKE rollup_errors_1h);
ALTER TABLE rollup_errors_delta DROP COLUMN fleet;
CREATE INDEX rollup_errors_delta_bucket ON rollup_errors_delta (bucket);
ALTER TABLE rollup_errors_delta SET (autovacuum_vacuum_scale_factor = 0,
                                     autovacuum_vacuum_threshold = 5000);

-- The watermark: when the last refresh ran and what it folded.
CREATE TABLE rollup_state (
    one           boolean     PRIMARY KEY DEFAULT true CHECK (one),
    rolled_up_to  timestamptz,
    last_folded   bigint      NOT NULL DEFAULT 0,
    last_seconds  double precision
);
INSERT INTO rollup_state DEFAULT VALUES;

COMMENT ON TABLE rollup_5m IS 'executions per 5-minute bucket (UTC) and dims: 0 fleet, 1 agent, 2 model, 3 agent+model';
COMMENT ON TABLE rollup_delta IS 'executions acknowledged since the last rollup_refresh(), per 5 minutes, agent, model';

-- ===================================================================
-- Deltas, written in the ingest transaction
-- ===================================================================

-- rollup_digest(values) - the t-digest (compression 500) of latencies, NULLs
-- left out; NULL when there is none. Used instead of the tdigest() aggregate
-- wherever groups are many and small (a statement's deltas, the rebuild,
-- the raw edges): the aggregate allocates and zeroes a buffer of 10 x
-- compression centroids (80 kB) per group, which made the rollup trigger
-- of a 1,000-row batch spread over an hour cost ~8 ms instead of 1.5-3.
CREATE FUNCTION rollup_digest(p_values double precision[]) RETURNS tdigest
LANGUAGE sql IMMUTABLE PARALLEL SAFE AS $$
    SELECT tdigest_add(NULL::tdigest, NULLIF(array_remove(p_values, NULL), '{}'), 500)
$$;

CREATE FUNCTION rollup_executions_added() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    INSERT INTO rollup_delta (bucket, agent_id, model, n, evaluated, passed, successes, errors,
                              lat_n, lat_sum, lat_min, lat_max, cost, prompt, completion, cache,
                              last_at, digest)
    SELECT date_bin('5 minutes', x.started_at, timestamptz 'epoch'), x.agent_id, x.model,
           count(*), count(x.eval_passed), count(*) FILTER (WHERE x.eval_passed),
           count(*) FILTER (WHERE execution_success(x.eval_passed, x.status)),
           count(*) FILTER (WHERE x.status <> 'succeeded'), count(x.latency_ms),
           coalesce(sum(x.latency_ms), 0), min(x.latency_ms), max(x.latency_ms),
           sum(x.cost_usd), sum(x.prompt_tokens), sum(x.completion_tokens),
           sum(x.cache_read_tokens), max(x.started_at),
           rollup_digest(array_agg(x.latency_ms::float8))
      FROM added x
     GROUP BY 1, 2, 3;
    INSERT INTO rollup_errors_delta (bucket, agent_id, model, category, n, example)
    SELECT date_bin('1 hour', x.started_at, timestamptz 'epoch'), x.agent_id, x.model, x.error_category, count(*),
           max(x.error_message)
      FROM added x
     WHERE x.error_category IS NOT NULL
     GROUP BY 1, 2, 3, 4;
    RETURN NULL;
END $$;

-- A verdict given or replaced later (POST /evaluations, an UPDATE of the
-- eval_* columns) moves evaluated, passed and successes of its execution's
-- bucket by the difference (a verdict that fails a succeeded run takes its
-- success away; one that passes a failed run gives it one). Executions are
-- otherwise append-only: an UPDATE of any other rolled-up column (a repair
-- in psql; status too, which moves neither errors nor successes here) is
-- not followed, and rollup_rebuild() brings the rollups back in line with
-- the rows.
CREATE FUNCTION rollup_executions_updated() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    INSERT INTO rollup_delta (bucket, agent_id, model, n, evaluated, passed, successes, errors,
                              lat_n, lat_sum, cost, prompt, completion, cache)
    SELECT date_bin('5 minutes', v.started_at, timestamptz 'epoch'), v.agent_id, v.model,
           0, sum((v.eval_passed IS NOT NULL)::int - (o.eval_passed IS NOT NULL)::int),
           sum(coalesce(v.eval_passed, false)::int - coalesce(o.eval_passed, false)::int),
           sum(execution_success(v.eval_passed, v.status)::int
               - execution_success(o.eval_passed, o.status)::int),
           0, 0, 0, 0, 0, 0, 0
      FROM added v
      JOIN removed o ON o.id = v.id
     WHERE v.eval_passed IS DISTINCT FROM o.eval_passed
     GROUP BY 1, 2, 3;
    RETURN NULL;
END $$;

CREATE TRIGGER executions_rollup AFTER INSERT ON executions
    REFERENCING NEW TABLE AS added
    FOR EACH STATEMENT EXECUTE FUNCTION rollup_executions_added();
CREATE TRIGGER executions_rollup_update AFTER UPDATE ON executions
    REFERENCING NEW TABLE AS added OLD TABLE AS removed
    FOR EACH STATEMENT EXECUTE FUNCTION rollup_executions_updated();
-- ALWAYS: a bulk loader in session_replication_role = replica must not skip them.
ALTER TABLE executions ENABLE ALWAYS TRIGGER executions_rollup;
ALTER TABLE executions ENABLE ALWAYS TRIGGER executions_rollup_update;

-- rollup_changes - a row for every change of anything else an answer reads
-- (the registry, dashboards: per statement or per row, see below), and for
-- every DELETE or TRUNCATE of executions, written by the triggers below in
-- the changing transaction. Append-only,
-- so that concurrent writers never wait for each other; rollup_refresh()
-- empties it. With rollup_delta it is what agg_token() watches. Heartbeats
-- (an agent's state, current_task, last_heartbeat_at) change no answer and
-- log nothing: a beating fleet keeps the workers' cached answers valid.
CREATE TABLE rollup_changes (
    at timestamptz NOT NULL DEFAULT now()
);
ALTER TABLE rollup_changes SET (autovacuum_vacuum_scale_factor = 0,
                                autovacuum_vacuum_threshold = 5000);

CREATE FUNCTION rollup_changed() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    INSERT INTO rollup_changes DEFAULT VALUES;
    RETURN NULL;
END $$;

DO $$
DECLARE
    t text;
BEGIN
    -- One row per statement: these tables are written by API calls that
    -- mean to change something (a dashboard with ten widgets logs two rows,
    -- not eleven; row triggers cost its POST a third of its throughput).
    FOREACH t IN ARRAY ARRAY['problems', 'improvement_proposals', 'experiments',
                             'canary_deployments', 'alerts', 'dashboards',
                             'dashboard_widgets'] LOOP
        EXECUTE format('CREATE TRIGGER %I AFTER INSERT OR UPDATE OR DELETE ON %I
                            FOR EACH STATEMENT EXECUTE FUNCTION rollup_changed()',
                       t || '_changed', t);
        EXECUTE format('ALTER TABLE %I ENABLE ALWAYS TRIGGER %I', t, t || '_changed');
    END LOOP;
    FOREACH t IN ARRAY ARRAY['agents', 'agent_versions', 'problems', 'improvement_proposals',
                             'experiments', 'canary_deployments', 'alerts', 'dashboards',
                             'dashboard_widgets', 'executions'] LOOP
        EXECUTE format('CREATE TRIGGER %I AFTER TRUNCATE ON %I
                            FOR EACH STATEMENT EXECUTE FUNCTION rollup_changed()', t || '_truncated', t);
        EXECUTE format('ALTER TABLE %I ENABLE ALWAYS TRIGGER %I', t, t || '_truncated');
    END LOOP;
END $$;
-- One row per row changed: every ingest statement inserts into agents and
-- agent_versions, and almost always nothing (ON CONFLICT DO NOTHING).
CREATE TRIGGER agents_changed AFTER INSERT OR DELETE ON agents
    FOR EACH ROW EXECUTE FUNCTION rollup_changed();
CREATE TRIGGER agent_versions_changed AFTER INSERT OR UPDATE OR DELETE ON agent_versions
    FOR EACH ROW EXECUTE FUNCTION rollup_changed();
CREATE TRIGGER agents_changed_update AFTER UPDATE OF name, description, capabilities, metadata,
                                                  is_active, created_at ON agents
    FOR EACH ROW
    WHEN ((OLD.name, OLD.description, OLD.capabilities, OLD.metadata, OLD.is_active,
           OLD.created_at)
          IS DISTINCT FROM (NEW.name, NEW.description, NEW.capabilities, NEW.metadata,
                            NEW.is_active, NEW.created_at))
    EXECUTE FUNCTION rollup_changed();
CREATE TRIGGER executions_deleted AFTER DELETE ON executions
    FOR EACH STATEMENT EXECUTE FUNCTION rollup_changed();
ALTER TABLE agents ENABLE ALWAYS TRIGGER agents_changed;
ALTER TABLE agent_versions ENABLE ALWAYS TRIGGER agent_versions_changed;
ALTER TABLE agents ENABLE ALWAYS TRIGGER agents_changed_update;
ALTER TABLE executions ENABLE ALWAYS TRIGGER executions_deleted;

-- ===================================================================
-- Folding deltas into the rollups
-- ===================================================================

-- rollup_p95(digest) - the 0.95 quantile of one digest (the extension has
-- only the aggregate form). Stored on fleet rows: a time series reads it
-- instead of the digest wherever a bucket is one rollup row.
CREATE FUNCTION rollup_p95(p_digest tdigest) RETURNS double precision
LANGUAGE sql IMMUTABLE PARALLEL SAFE AS $$
    SELECT tdigest_percentile(d, 0.95) FROM (SELECT p_digest) x (d)
$$;

-- rollup_fold_step(table, step) - adds the session's step table (rows of
-- that table's grain, all dims) to a rollup table.
CREATE FUNCTION rollup_fold_step(p_table text, p_step text) RETURNS void LANGUAGE plpgsql AS $$
BEGIN
    EXECUTE format($f$
        INSERT INTO %I AS r (dims, bucket, agent_id, model, n, evaluated, passed, successes,
                             errors, lat_n, lat_sum, lat_min, lat_max, cost, prompt, completion,
                             cache, last_at, digest, p95)
        SELECT s.dims, s.bucket, s.agent_id, s.model, s.n, s.evaluated, s.passed, s.successes,
               s.errors, s.lat_n, s.lat_sum, s.lat_min, s.lat_max, s.cost, s.prompt, s.completion,
               s.cache, s.last_at, s.digest,
               CASE WHEN s.dims = 0 THEN rollup_p95(s.digest) END
          FROM pg_temp.%I s
        ON CONFLICT (dims, bucket, agent_id, model) DO UPDATE
           SET n = r.n + excluded.n, evaluated = r.evaluated + excluded.evaluated,
               passed = r.passed + excluded.passed,
               successes = r.successes + excluded.successes, errors = r.errors + excluded.errors,
               lat_n = r.lat_n + excluded.lat_n, lat_sum = r.lat_sum + excluded.lat_sum,
               lat_min = least(r.lat_min, excluded.lat_min),
               lat_max = greatest(r.lat_max, excluded.lat_max),
               cost = r.cost + excluded.cost, prompt = r.prompt + excluded.prompt,
               completion = r.completion + excluded.completion,
               cache = r.cache + excluded.cache, last_at = greatest(r.last_at, excluded.last_at),
               digest = CASE WHEN excluded.digest IS NULL THEN r.digest
                             WHEN r.digest IS NULL THEN excluded.digest
                             ELSE tdigest_union(r.digest, excluded.digest) END,
               p95 = CASE WHEN r.dims <> 0 THEN NULL
                          WHEN excluded.digest IS NULL THEN r.p95
                          WHEN r.digest IS NULL THEN excluded.p95
                          ELSE rollup_p95(tdigest_union(r.digest, excluded.digest)) END
    $f$, p_table, p_step);
END $$;

-- rollup_coarsen(from, to, grain) - fills the session's step table "to"
-- with the rows of "from" merged into buckets of grain.
CREATE FUNCTION rollup_coarsen(p_from text, p_to text, p_grain interval) RETURNS void
LANGUAGE plpgsql AS $$
BEGIN
    EXECUTE format($f$
        INSERT INTO pg_temp.%I
        SELECT s.dims, date_bin($1, s.bucket, timestamptz 'epoch'), s.agent_id, s.model,
               sum(s.n), sum(s.evaluated), sum(s.passed), sum(s.successes), sum(s.errors),
               sum(s.lat_n),
               sum(s.lat_sum), min(s.lat_min), max(s.lat_max), sum(s.cost), sum(s.prompt),
               sum(s.completion), sum(s.cache), max(s.last_at), tdigest(s.digest), NULL
          FROM pg_temp.%I s
         GROUP BY 1, 2, 3, 4
    $f$, p_to, p_from) USING p_grain;
END $$;

-- rollup_fold_batch() - adds pg_temp.rollup_batch (deltas: agent x model
-- per 5 minutes) and pg_temp.rollup_errors_batch to every rollup table:
-- the four dims per 5 minutes first, then hours from those, then days from
-- the hours (each level merges the digests of the level below once).
CREATE FUNCTION rollup_fold_batch() RETURNS void LANGUAGE plpgsql AS $$
BEGIN
    INSERT INTO pg_temp.rollup_step_5m
    SELECT (1 - grouping(b.agent_id)) + 2 * (1 - grouping(b.model)), b.bucket, b.agent_id,
           b.model, sum(b.n), sum(b.evaluated), sum(b.passed), sum(b.successes), sum(b.errors),
           sum(b.lat_n),
           sum(b.lat_sum), min(b.lat_min), max(b.lat_max), sum(b.cost), sum(b.prompt),
           sum(b.completion), sum(b.cache), max(b.last_at), tdigest(b.digest), NULL
      FROM pg_temp.rollup_batch b
     GROUP BY GROUPING SETS ((b.bucket, b.agent_id, b.model), (b.bucket, b.agent_id),
                             (b.bucket, b.model), (b.bucket));
    PERFORM rollup_fold_step('rollup_5m', 'rollup_step_5m');
    PERFORM rollup_coarsen('rollup_step_5m', 'rollup_step_1h', '1 hour');
    PERFORM rollup_fold_step('rollup_1h', 'rollup_step_1h');
    PERFORM rollup_coarsen('rollup_step_1h', 'rollup_step_1d', '1 day');
    PERFORM rollup_fold_step('rollup_1d', 'rollup_step_1d');
    INSERT INTO rollup_errors_1h AS r (fleet, bucket, agent_id, model, category, n, example)
    SELECT grouping(b.agent_id) = 1, b.bucket, b.agent_id, b.model, b.category, sum(b.n),
           max(b.example)
      FROM pg_temp.rollup_errors_batch b
     GROUP BY GROUPING SETS ((b.bucket, b.agent_id, b.model, b.category), (b.bucket, b.category))
    ON CONFLICT (fleet, bucket, agent_id, model, category) DO UPDATE
       SET n = r.n + excluded.n, example = coalesce(excluded.example, r.example);
    INSERT INTO rollup_errors_1d AS r (fleet, bucket, agent_id, model, category, n, example)
    SELECT grouping(b.agent_id) = 1, b.day, b.agent_id, b.model, b.category, sum(b.n),
           max(b.example)
      FROM (SELECT date_bin('1 day', e.bucket, timestamptz 'epoch') AS day, e.*
              FROM pg_temp.rollup_errors_batch e) b
     GROUP BY GROUPING SETS ((b.day, b.agent_id, b.model, b.category), (b.day, b.category))
    ON CONFLICT (fleet, bucket, agent_id, model, category) DO UPDATE
       SET n = r.n + excluded.n, example = coalesce(excluded.example, r.example);
END $$;

-- rollup_batch_open() - the session's batch and step tables (empty between
-- folds).
CREATE FUNCTION rollup_batch_open() RETURNS void LANGUAGE plpgsql AS $$
BEGIN
    -- Not ON COMMIT DELETE ROWS: that truncation at every commit takes a
    -- transaction id, which would change every reader's snapshot (and so
    -- expire the workers' cached answers, agg_token) each second even with
    -- nothing to fold. rollup_batch_close() empties them after a fold.
    IF to_regclass('pg_temp.rollup_batch') IS NULL THEN
        CREATE TEMP TABLE rollup_batch (LIKE rollup_delta);
        CREATE TEMP TABLE rollup_errors_batch (LIKE rollup_errors_delta);
        CREATE TEMP TABLE rollup_step_5m (LIKE rollup_5m);
        CREATE TEMP TABLE rollup_step_1h (LIKE rollup_5m);
        CREATE TEMP TABLE rollup_step_1d (LIKE rollup_5m);
    END IF;
END $$;

-- rollup_batch_close() - empties the session's batch and step tables.
CREATE FUNCTION rollup_batch_close() RETURNS void LANGUAGE plpgsql AS $$
BEGIN
    TRUNCATE pg_temp.rollup_batch, pg_temp.rollup_errors_batch, pg_temp.rollup_step_5m,
             pg_temp.rollup_step_1h, pg_temp.rollup_step_1d;
END $$;

-- rollup_refresh() - the maintenance job's step: moves every committed
-- delta into the rollups, in one transaction. Returns the delta rows
-- folded, or -1 when another session is refreshing (so any number of
-- maintenance processes may run).
CREATE FUNCTION rollup_refresh() RETURNS integer LANGUAGE plpgsql AS $$
DECLARE
    v_n integer;
    v_e integer;
    v_c integer;
    v_t timestamptz := clock_timestamp();
BEGIN
    IF NOT pg_try_advisory_xact_lock(hashtext('fleetdash.rollup_refresh')) THEN
        RETURN -1;
    END IF;
    PERFORM rollup_batch_open();
    WITH d AS (DELETE FROM rollup_delta RETURNING *)
    INSERT INTO pg_temp.rollup_batch SELECT * FROM d;
    GET DIAGNOSTICS v_n = ROW_COUNT;
    WITH d AS (DELETE FROM rollup_errors_delta RETURNING *)
    INSERT INTO pg_temp.rollup_errors_batch SELECT * FROM d;
    GET DIAGNOSTICS v_e = ROW_COUNT;
    DELETE FROM rollup_changes;
    GET DIAGNOSTICS v_c = ROW_COUNT;
    -- Nothing to fold or forget: no write either, so that the answers
    -- workers keep (agg_token) stay valid.
    IF v_n + v_e > 0 THEN
        PERFORM rollup_fold_batch();
        PERFORM rollup_batch_close();
    END IF;
    IF v_n + v_e + v_c > 0 THEN
        UPDATE rollup_state
           SET rolled_up_to = now(), last_folded = v_n,
               last_seconds = extract(epoch FROM clock_timestamp() - v_t);
    END IF;
    RETURN v_n;
END $$;

-- rollup_rebuild() - recomputes every rollup from the raw rows (after a
-- restore, a retention purge, or a change of this file). Blocks ingest
-- while it runs. Returns the 5-minute groups it folded.
CREATE FUNCTION rollup_rebuild() RETURNS integer LANGUAGE plpgsql AS $$
DECLARE
    v_n integer;
BEGIN
    LOCK TABLE executions IN SHARE MODE;
    PERFORM pg_advisory_xact_lock(hashtext('fleetdash.rollup_refresh'));
    PERFORM set_config('work_mem', '256MB', true);
    TRUNCATE rollup_5m, rollup_1h, rollup_1d, rollup_delta, rollup_errors_1h,
             rollup_errors_1d, rollup_errors_delta;
    PERFORM rollup_batch_open();
    INSERT INTO pg_temp.rollup_batch (bucket, agent_id, model, n, evaluated, passed, successes,
                                      errors, lat_n, lat_sum, lat_min, lat_max, cost, prompt,
                                      completion, cache, last_at, digest)
    SELECT date_bin('5 minutes', x.started_at, timestamptz 'epoch'), x.agent_id, x.model,
           count(*), count(x.eval_passed), count(*) FILTER (WHERE x.eval_passed),
           count(*) FILTER (WHERE execution_success(x.eval_passed, x.status)),
           count(*) FILTER (WHERE x.status <> 'succeeded'), count(x.latency_ms),
           coalesce(sum(x.latency_ms), 0), min(x.latency_ms), max(x.latency_ms),
           sum(x.cost_usd), sum(x.prompt_tokens), sum(x.completion_tokens),
           sum(x.cache_read_tokens), max(x.started_at),
           rollup_digest(array_agg(x.latency_ms::float8))
      FROM executions x
     GROUP BY 1, 2, 3;
    GET DIAGNOSTICS v_n = ROW_COUNT;
    INSERT INTO pg_temp.rollup_errors_batch (bucket, agent_id, model, category, n, example)
    SELECT date_bin('1 hour', x.started_at, timestamptz 'epoch'), x.agent_id, x.model,
           x.error_category, count(*), max(x.error_message)
      FROM executions x
     WHERE x.error_category IS NOT NULL
     GROUP BY 1, 2, 3, 4;
    PERFORM rollup_fold_batch();
    PERFORM rollup_batch_close();
    UPDATE rollup_state SET rolled_up_to = now(), last_folded = v_n, last_seconds = NULL;
    RETURN v_n;
END $$;

-- rollup_reset() - empties the rollups (tests truncate executions too).
CREATE FUNCTION rollup_reset() RETURNS void LANGUAGE sql AS $$
    SELECT pg_advisory_xact_lock(hashtext('fleetdash.rollup_refresh'));
    TRUNCATE rollup_5m, rollup_1h, rollup_1d, rollup_delta, rollup_errors_1h,
             rollup_errors_1d, rollup_errors_delta;
    UPDATE rollup_state SET rolled_up_to = NULL, last_folded = 0, last_seconds = NULL;
$$;

-- ===================================================================
-- Reading: the fewest rows that cover [from, to)
-- ===================================================================

-- rollup_ceil / rollup_floor - t rounded up / down to a multiple of g (UTC).
CREATE FUNCTION rollup_floor(t timestamptz, g interval) RETURNS timestamptz
LANGUAGE sql IMMUTABLE PARALLEL SAFE AS $$ SELECT date_bin(g, t, timestamptz 'epoch') $$;
CREATE FUNCTION rollup_ceil(t timestamptz, g interval) RETURNS timestamptz
LANGUAGE sql IMMUTABLE PARALLEL SAFE AS $$
    SELECT CASE WHEN date_bin(g, t, timestamptz 'epoch') = t THEN t
                ELSE date_bin(g, t, timestamptz 'epoch') + g END
$$;

-- rollup_any(from, to, agents, models) - whether an execution of [from, to)
-- passes the filters.
CREATE FUNCTION rollup_any(p_from timestamptz, p_to timestamptz, p_agents uuid[], p_models text[])
RETURNS boolean LANGUAGE sql STABLE AS $$
    SELECT EXISTS (SELECT 1 FROM executions x
                    WHERE x.started_at >= p_from AND x.started_at < p_to
                      AND (p_agents IS NULL OR x.agent_id = ANY (p_agents))
                      AND (p_models IS NULL OR x.model = ANY (p_models)))
$$;

-- rollup_rows(from, to, grain, dims, agents, models, metadata, bin) -
-- pieces that together hold exactly the executions of [from, to) that
-- pass the filters: rollup rows no coarser than grain (1 day, 1 hour or 5
-- minutes; NULL: raw rows only), pending deltas, and raw rows of the edges
-- grouped per bin. agent_id / model are set as dims asks (1 agent, 2
-- model). Callers sum the pieces (and merge the digests) as they need;
-- each piece's bucket is its start, so a piece lies in one bucket of any
-- series whose buckets are multiples of grain. A metadata filter (jsonb
-- object of text values) means raw rows only. Without p_digests the digest
-- column is NULL (callers that need no percentile move far fewer bytes).
CREATE FUNCTION rollup_rows(p_from timestamptz, p_to timestamptz, p_grain interval,
                            p_dims integer, p_agents uuid[], p_models text[], p_meta jsonb,
                            p_bin interval, p_digests boolean DEFAULT true)
RETURNS TABLE (bucket timestamptz, agent_id uuid, model text, n bigint, evaluated bigint,
               passed bigint, successes bigint, errors bigint, lat_n bigint, lat_sum bigint,
               lat_min integer, lat_max integer, cost numeric, prompt bigint, completion bigint,
               cache bigint, last_at timestamptz, digest tdigest, p95 double precision)
LANGUAGE plpgsql STABLE AS $$
DECLARE
    -- [f5, t5): whole 5-minute buckets; [h1, h2): whole hours; [d1, d2): whole days
    f5 timestamptz;  t5 timestamptz;
    h1 timestamptz;  h2 timestamptz;
    d1 timestamptz;  d2 timestamptz;
BEGIN
    IF p_grain IS NULL OR p_meta IS NOT NULL THEN
        f5 := p_to;  t5 := p_to;                 -- everything raw
    ELSE
        f5 := rollup_ceil(p_from, '5 minutes');
        t5 := rollup_floor(p_to, '5 minutes');
        -- A partial bucket at an edge is read whole from the rollups when
        -- no execution passing the filters lies in its part outside the
        -- range (always so for the live bucket at the end of "the last
        -- 24h"); otherwise that edge is read from raw rows.
        IF f5 > p_from AND NOT rollup_any(rollup_floor(p_from, '5 minutes'), p_from, p_agents, p_models) THEN
            f5 := rollup_floor(p_from, '5 minutes');
        END IF;
        IF t5 < p_to AND NOT rollup_any(p_to, rollup_ceil(p_to, '5 minutes'), p_agents, p_models) THEN
            t5 := rollup_ceil(p_to, '5 minutes');
        END IF;
        IF f5 > t5 THEN                          -- inside one bucket: raw
            f5 := p_to;  t5 := p_to;
        END IF;
    END IF;
    h1 := f5;  h2 := f5;  d1 := f5;  d2 := f5;
    IF p_grain >= interval '1 hour' THEN
        h1 := least(rollup_ceil(f5, '1 hour'), t5);
        h2 := greatest(h1, rollup_floor(t5, '1 hour'));
        d1 := h1;  d2 := h1;
        IF p_grain >= interval '1 day' THEN
            d1 := least(rollup_ceil(h1, '1 day'), h2);
            d2 := greatest(d1, rollup_floor(h2, '1 day'));
        END IF;
    END IF;
    -- f5 <= h1 <= d1 <= d2 <= h2 <= t5
    RETURN QUERY
    SELECT r.bucket, r.agent_id, r.model, r.n, r.evaluated, r.passed, r.successes, r.errors,
           r.lat_n, r.lat_sum, r.lat_min, r.lat_max, r.cost, r.prompt, r.completion, r.cache,
           r.last_at,
           CASE WHEN p_digests THEN r.digest END, r.p95
      FROM rollup_all r
     WHERE r.dims = p_dims
       AND (r.grain = '1d' AND r.bucket >= d1 AND r.bucket < d2
            OR r.grain = '1h' AND (r.bucket >= h1 AND r.bucket < d1 OR r.bucket >= d2 AND r.bucket < h2)
            OR r.grain = '5m' AND (r.bucket >= f5 AND r.bucket < h1 OR r.bucket >= h2 AND r.bucket < t5))
       AND (p_agents IS NULL OR r.agent_id = ANY (p_agents))
       AND (p_models IS NULL OR r.model = ANY (p_models))
    UNION ALL
    SELECT d.bucket, CASE WHEN p_dims & 1 = 1 THEN d.agent_id END,
           CASE WHEN p_dims & 2 = 2 THEN d.model END, d.n, d.evaluated, d.passed, d.successes,
           d.errors,
           d.lat_n, d.lat_sum, d.lat_min, d.lat_max, d.cost, d.prompt, d.completion, d.cache,
           d.last_at, CASE WHEN p_digests THEN d.digest END, NULL::double precision
      FROM rollup_delta d
     WHERE d.bucket >= f5 AND d.bucket < t5
       AND (p_agents IS NULL OR d.agent_id = ANY (p_agents))
       AND (p_models IS NULL OR d.model = ANY (p_models))
    UNION ALL
    SELECT date_bin(p_bin, x.started_at, timestamptz 'epoch'),
           CASE WHEN p_dims & 1 = 1 THEN x.agent_id END,
           CASE WHEN p_dims & 2 = 2 THEN x.model END,
           count(*), count(x.eval_passed), count(*) FILTER (WHERE x.eval_passed),
           count(*) FILTER (WHERE execution_success(x.eval_passed, x.status)),
           count(*) FILTER (WHERE x.status <> 'succeeded'), count(x.latency_ms),
           coalesce(sum(x.latency_ms), 0)::bigint, min(x.latency_ms), max(x.latency_ms),
           coalesce(sum(x.cost_usd), 0), sum(x.prompt_tokens)::bigint,
           sum(x.completion_tokens)::bigint, sum(x.cache_read_tokens)::bigint,
           max(x.started_at),
           CASE WHEN p_digests THEN rollup_digest(array_agg(x.latency_ms::float8)) END,
           NULL::double precision
      FROM executions x
     WHERE (x.started_at >= p_from AND x.started_at < f5
            OR x.started_at >= t5 AND x.started_at < p_to)
       AND (p_agents IS NULL OR x.agent_id = ANY (p_agents))
       AND (p_models IS NULL OR x.model = ANY (p_models))
       AND (p_meta IS NULL
            OR NOT EXISTS (SELECT 1 FROM jsonb_each_text(p_meta) m
                            WHERE x.metadata ->> m.key IS DISTINCT FROM m.value))
     GROUP BY 1, 2, 3;
END $$;
-- Pieces are few and small: a parallel plan only adds start-up time.
ALTER FUNCTION rollup_rows SET max_parallel_workers_per_gather = 0;

-- ===================================================================
-- The query every endpoint starts from
-- ===================================================================

-- agg_fail(field, message) - a 422 naming the query parameter(s).
CREATE FUNCTION agg_fail(p_field text, p_message text) RETURNS void LANGUAGE plpgsql AS $$
BEGIN
    RAISE EXCEPTION USING ERRCODE = 'UF422', COLUMN = p_field, MESSAGE = p_message;
END $$;

-- agg_ts(t) - RFC 3339 in UTC, as every other group prints times.
CREATE FUNCTION agg_ts(t timestamptz) RETURNS text
LANGUAGE sql IMMUTABLE PARALLEL SAFE AS $$
    SELECT to_char(t AT TIME ZONE 'UTC',
                   CASE WHEN date_trunc('second', t) = t THEN 'YYYY-MM-DD"T"HH24:MI:SS"Z"'
                        ELSE 'YYYY-MM-DD"T"HH24:MI:SS.US"Z"' END)
$$;

-- agg_now() - where relative ranges (time_range=24h, a from without a to)
-- end: now rounded up to the next turn of a one-second clock, at most one
-- second ahead. An answer depends only on the data visible and on this, so
-- that identical snapshots within one turn give identical answers
-- (agg_token). Each worker's session turns at its own phase
-- (fleetdash.now_phase, set by fcgi/db.c), so that their cached answers do
-- not all expire at the same instant.
CREATE FUNCTION agg_now() RETURNS timestamptz LANGUAGE sql STABLE AS $$
    SELECT date_bin('1 second', now(),
                    timestamptz 'epoch'
                    + coalesce(nullif(current_setting('fleetdash.now_phase', true), ''), '0')::interval)
           + interval '1 second'
$$;

-- agg_token() - names what an answer computed now depends on: agg_now(),
-- the version of rollup_state (every fold, reset or rebuild writes it),
-- and how many rows rollup_delta and rollup_changes hold (between two
-- versions they only grow, by one or more rows in every transaction that
-- changes what an answer reads). Workers keep their last answer per query
-- with its token and ask again with it; the same token means the same
-- answer, served without computing it. Writes that change no answer, such
-- as heartbeats, leave it alone. (plpgsql: it keeps the plan; a sql
-- function with sub-selects is not inlined and would be planned per call.)
CREATE FUNCTION agg_token() RETURNS text LANGUAGE plpgsql STABLE AS $$
BEGIN
    RETURN extract(epoch FROM agg_now())::bigint
           || '/' || (SELECT s.xmin::text FROM rollup_state s)
           || '/' || (SELECT count(*) FROM rollup_delta)
           || '/' || (SELECT count(*) FROM rollup_changes);
END $$;

CREATE TYPE agg_query AS (
    t_from timestamptz,     -- [t_from, t_to)
    t_to   timestamptz,
    agents uuid[],          -- NULL: any
    models text[],          -- NULL: any
    meta   jsonb,           -- NULL: no metadata filter
    dims   integer,         -- rollup dims the filters need (1 agent, 2 model)
    tz     text
);

-- agg_query(q, default range) - the validated query of the C worker
-- resolved: time_range (1h 6h 24h 7d 30d) or from/to, filters, tz.
CREATE FUNCTION agg_query(q jsonb, p_default text DEFAULT '24h') RETURNS agg_query
LANGUAGE plpgsql STABLE AS $$
DECLARE
    a agg_query;
    v_range text := coalesce(q ->> 'time_range', p_default);
BEGIN
    IF q ? 'from' THEN
        a.t_from := (q ->> 'from')::timestamptz;
        a.t_to := coalesce((q ->> 'to')::timestamptz, agg_now());
        IF a.t_from >= a.t_to THEN
            PERFORM agg_fail('from,to', 'from must be before to');
        ELSIF a.t_to - a.t_from > interval '400 days' THEN
            PERFORM agg_fail('from,to', 'the range is longer than 400 days');
        END IF;
    ELSE
        a.t_to := agg_now();
        a.t_from := a.t_to - CASE v_range WHEN '1h' THEN interval '1 hour'
                                          WHEN '6h' THEN interval '6 hours'
                                          WHEN '24h' THEN interval '24 hours'
                                          WHEN '7d' THEN interval '7 days'
                                          WHEN '30d' THEN interval '30 days' END;
        IF a.t_from IS NULL THEN
            PERFORM agg_fail('time_range', 'must be one of 1h, 6h, 24h, 7d, 30d');
        END IF;
    END IF;
    a.tz := coalesce(q ->> 'tz', 'UTC');
    IF a.tz <> 'UTC' THEN
        BEGIN
            PERFORM now() AT TIME ZONE a.tz;
        EXCEPTION WHEN invalid_parameter_value THEN
            PERFORM agg_fail('tz', format('unknown time zone "%s" (an IANA name such as Europe/Berlin)', a.tz));
        END;
    END IF;
    IF jsonb_typeof(q -> 'agent_id') = 'array' THEN
        a.agents := ARRAY(SELECT jsonb_array_elements_text(q -> 'agent_id'))::uuid[];
    END IF;
    IF jsonb_typeof(q -> 'model') = 'array' THEN
        a.models := ARRAY(SELECT jsonb_array_elements_text(q -> 'model'));
    END IF;
    IF jsonb_typeof(q -> 'metadata') = 'object' AND q -> 'metadata' <> '{}' THEN
        a.meta := q -> 'metadata';
    END IF;
    a.dims := (a.agents IS NOT NULL)::int + 2 * (a.models IS NOT NULL)::int;
    RETURN a;
END $$;

-- agg_rate(part, whole) - part / whole (0..1); NULL when whole is 0 or
-- NULL. success_rate = agg_rate(successes, executions), pass_rate =
-- agg_rate(passed, evaluated), everywhere.
CREATE FUNCTION agg_rate(p_part bigint, p_whole bigint) RETURNS double precision
LANGUAGE sql IMMUTABLE PARALLEL SAFE AS $$
    SELECT p_part::double precision / nullif(p_whole, 0)
$$;

-- agg_range_json(a) - {"from", "to"} of a query.
CREATE FUNCTION agg_range_json(a agg_query) RETURNS json LANGUAGE sql IMMUTABLE AS $$
    SELECT json_build_object('from', agg_ts(a.t_from), 'to', agg_ts(a.t_to))
$$;

-- agg_shift(a) - the same query over the period of equal length just
-- before it (trends compare with it).
CREATE FUNCTION agg_shift(a agg_query) RETURNS agg_query LANGUAGE plpgsql IMMUTABLE AS $$
DECLARE
    v_len interval := a.t_to - a.t_from;
BEGIN
    a.t_to := a.t_from;
    a.t_from := a.t_from - v_len;
    RETURN a;
END $$;

-- agg_trend(current, previous) - change percent and up / down / stable
-- (beyond +-5 %).
CREATE FUNCTION agg_trend(p_now double precision, p_before double precision,
                          OUT change_percent double precision, OUT trend text)
LANGUAGE sql IMMUTABLE AS $$
    SELECT c, CASE WHEN c > 5 THEN 'up' WHEN c < -5 THEN 'down' ELSE 'stable' END
      FROM (SELECT CASE WHEN p_before IS NULL OR p_before = 0 OR p_now IS NULL THEN NULL
                        ELSE (p_now - p_before) / p_before * 100 END AS c) x
$$;

-- ===================================================================
-- GET /executions/summary, /agents/{id}/metrics
-- ===================================================================

-- agg_summary_of(a, percentiles) - the summary object of a query.
-- success_rate = successes (execution_success()) / executions; pass_rate =
-- passed / evaluated; failed = evaluated but not passed; errors = status
-- other than succeeded.
CREATE FUNCTION agg_summary_of(a agg_query, p_qs double precision[]) RETURNS json
LANGUAGE plpgsql STABLE AS $$
DECLARE
    v_qs double precision[] := ARRAY(SELECT DISTINCT x
                                       FROM unnest(ARRAY[0.5, 0.95, 0.99] || coalesce(p_qs, '{}')) x
                                      ORDER BY x);
    s record;
BEGIN
    SELECT coalesce(sum(r.n), 0)::bigint AS n, coalesce(sum(r.evaluated), 0)::bigint AS evaluated,
           coalesce(sum(r.passed), 0)::bigint AS passed,
           coalesce(sum(r.successes), 0)::bigint AS successes,
           coalesce(sum(r.errors), 0)::bigint AS errors, sum(r.lat_n) AS lat_n,
           sum(r.lat_sum)::double precision AS lat_sum, min(r.lat_min) AS lat_min,
           max(r.lat_max) AS lat_max, coalesce(sum(r.cost), 0) AS cost,
           coalesce(sum(r.prompt), 0)::bigint AS prompt,
           coalesce(sum(r.completion), 0)::bigint AS completion,
           coalesce(sum(r.cache), 0)::bigint AS cache,
           tdigest_percentile(r.digest, v_qs) AS ps
      INTO s
      FROM rollup_rows(a.t_from, a.t_to, '1 day', a.dims, a.agents, a.models, a.meta,
                       '1 day') r;
    RETURN json_build_object(
        'range', agg_range_json(a),
        'total', s.n, 'successes', s.successes, 'evaluated', s.evaluated, 'passed', s.passed,
        'failed', s.evaluated - s.passed, 'errors', s.errors,
        'success_rate', agg_rate(s.successes, s.n), 'pass_rate', agg_rate(s.passed, s.evaluated),
        'latency_ms', json_build_object(
            'avg', s.lat_sum / nullif(s.lat_n, 0), 'min', s.lat_min, 'max', s.lat_max,
            'p50', s.ps[array_position(v_qs, 0.5)], 'p95', s.ps[array_position(v_qs, 0.95)],
            'p99', s.ps[array_position(v_qs, 0.99)],
            'percentiles', (SELECT json_object_agg(q::text, v ORDER BY q)
                              FROM unnest(v_qs, coalesce(s.ps, '{}')) u (q, v))),
        'cost_usd', json_build_object('total', s.cost, 'avg', s.cost / nullif(s.n, 0)),
        'tokens', json_build_object('input', s.prompt, 'output', s.completion,
                                    'cache_read', s.cache, 'total', s.prompt + s.completion),
        'source', CASE WHEN a.meta IS NULL THEN 'rollup' ELSE 'raw' END,
        'rolled_up_to', (SELECT agg_ts(rolled_up_to) FROM rollup_state));
END $$;

CREATE FUNCTION agg_summary(q jsonb) RETURNS json LANGUAGE sql STABLE AS $$
    SELECT agg_summary_of(agg_query(q),
                          ARRAY(SELECT jsonb_array_elements_text(q -> 'percentiles'))::double precision[])
$$;

-- ===================================================================
-- Time buckets: GET /executions/timeseries, sparklines
-- ===================================================================

-- How a series is bucketed. 1m/5m/15m buckets are aligned in UTC (every
-- zone in use is a whole number of 15 minutes off UTC); 1h buckets on the
-- zone's hours; 6h and 1d on its wall clock (a 1d bucket across a DST
-- change is 23 or 25 hours long). grain is the coarsest rollup whose rows
-- each fall in one bucket; 1m buckets read raw rows.
CREATE TYPE agg_plan AS (
    name   text,            -- 1m 5m 15m 1h 6h 1d
    iv     interval,
    wall   boolean,         -- bins on the local wall clock (6h, 1d)
    origin timestamptz,     -- bins aligned to this instant (others)
    grain  interval,
    bin    interval,        -- raw rows grouped per bin
    n      integer          -- buckets in the range
);

-- agg_plan(a, interval name) - the plan of a series; auto picks the
-- smallest interval with at most 200 buckets. More than 1,000 buckets: 422
-- (unless p_any_count: the heatmap folds the buckets into a week).
CREATE FUNCTION agg_plan(a agg_query, p_name text, p_any_count boolean DEFAULT false)
RETURNS agg_plan
LANGUAGE plpgsql STABLE AS $$
DECLARE
    p agg_plan;
    v_name text;
    v_whole_hours boolean;
    v_last timestamptz := a.t_to - interval '1 microsecond';
BEGIN
    -- whole-hour offsets over the range (sampled at both ends and monthly)
    SELECT bool_and(extract(epoch FROM (s AT TIME ZONE a.tz) - (s AT TIME ZONE 'UTC'))::bigint % 3600 = 0)
      INTO v_whole_hours
      FROM (SELECT a.t_from AS s UNION ALL SELECT v_last
            UNION ALL SELECT generate_series(a.t_from, v_last, interval '30 days')) x;
    FOREACH v_name IN ARRAY CASE WHEN coalesce(p_name, 'auto') = 'auto'
                                 THEN ARRAY['1m', '5m', '15m', '1h', '6h', '1d']
                                 ELSE ARRAY[p_name] END LOOP
        p.name := v_name;
        p.iv := CASE v_name WHEN '1m' THEN interval '1 minute' WHEN '5m' THEN interval '5 minutes'
                            WHEN '15m' THEN interval '15 minutes' WHEN '1h' THEN interval '1 hour'
                            WHEN '6h' THEN interval '6 hours' WHEN '1d' THEN interval '1 day' END;
        IF p.iv IS NULL THEN
            PERFORM agg_fail('interval', 'must be one of 1m, 5m, 15m, 1h, 6h, 1d, auto');
        END IF;
        p.wall := v_name IN ('6h', '1d') AND a.tz NOT IN ('UTC', 'Etc/UTC', 'GMT', 'Etc/GMT');
        p.origin := CASE WHEN v_name = '1h' THEN timestamp '2000-01-01' AT TIME ZONE a.tz
                         ELSE timestamptz 'epoch' END;
        p.grain := CASE WHEN v_name = '1m' THEN NULL
                        WHEN v_name IN ('5m', '15m') THEN interval '5 minutes'
                        WHEN NOT v_whole_hours THEN interval '5 minutes'
                        WHEN v_name = '1d' AND NOT p.wall THEN interval '1 day'
                        ELSE interval '1 hour' END;
        p.bin := CASE WHEN v_name = '1m' THEN interval '1 minute' ELSE interval '5 minutes' END;
        IF p.wall THEN
            p.n := extract(epoch FROM date_bin(p.iv, v_last AT TIME ZONE a.tz, timestamp '2000-01-01')
                                    - date_bin(p.iv, a.t_from AT TIME ZONE a.tz, timestamp '2000-01-01'))
                   / extract(epoch FROM p.iv) + 1;
        ELSE
            p.n := extract(epoch FROM date_bin(p.iv, v_last, p.origin) - date_bin(p.iv, a.t_from, p.origin))
                   / extract(epoch FROM p.iv) + 1;
        END IF;
        IF p.n <= 200 OR coalesce(p_name, 'auto') <> 'auto' THEN
            EXIT;
        END IF;
    END LOOP;
    IF p.n > 1000 AND NOT p_any_count THEN
        PERFORM agg_fail('interval', format('%s buckets of %s over this range; at most 1000', p.n, p.name));
    END IF;
    RETURN p;
END $$;

-- agg_buckets(a, plan) - the start of every bucket of the range, in order.
CREATE FUNCTION agg_buckets(a agg_query, p agg_plan) RETURNS SETOF timestamptz
LANGUAGE sql STABLE AS $$
    SELECT g AT TIME ZONE a.tz
      FROM generate_series(date_bin(p.iv, a.t_from AT TIME ZONE a.tz, timestamp '2000-01-01'),
                           (a.t_to - interval '1 microsecond') AT TIME ZONE a.tz, p.iv) g
     WHERE p.wall
    UNION ALL
    SELECT g
      FROM generate_series(date_bin(p.iv, a.t_from, p.origin), a.t_to - interval '1 microsecond',
                           p.iv) g
     WHERE NOT p.wall
    ORDER BY 1
$$;

-- agg_points(a, plan, group_by) - (plpgsql: an inlined SQL function would
-- evaluate its arguments once per row) per bucket and group (top 10 by
-- executions, the rest as 'other'), every bucket present; p95 only when
-- p_p95.
CREATE FUNCTION agg_points(a agg_query, p agg_plan, p_group_by text, p_p95 boolean DEFAULT true)
RETURNS TABLE (k text, b timestamptz, n bigint, successes bigint, evaluated bigint,
               passed bigint, errors bigint,
               lat_avg double precision, p95 double precision, cost numeric, tokens bigint,
               lat_sum double precision, lat_n bigint)
LANGUAGE plpgsql STABLE AS $$
#variable_conflict use_column
DECLARE
    v_dims integer := a.dims | CASE p_group_by WHEN 'agent' THEN 1 WHEN 'model' THEN 2 ELSE 0 END;
    -- Fleet series whose buckets are rollup rows (1h, UTC 1d): most buckets
    -- are one row whose p95 is stored; digests are read only for the few
    -- buckets made of several pieces (the edges, pending deltas).
    v_lazy boolean := p_p95 AND v_dims = 0 AND a.meta IS NULL AND p.grain = p.iv;
BEGIN
    RETURN QUERY
    WITH r AS MATERIALIZED (
        SELECT CASE WHEN p.wall
                    THEN date_bin(p.iv, x.bucket AT TIME ZONE a.tz, timestamp '2000-01-01') AT TIME ZONE a.tz
                    ELSE date_bin(p.iv, x.bucket, p.origin) END AS b,
               CASE p_group_by WHEN 'agent' THEN x.agent_id::text
                               WHEN 'model' THEN coalesce(x.model, '(none)') END AS k,
               x.n, x.successes, x.evaluated, x.passed, x.errors, x.lat_n, x.lat_sum, x.cost,
               x.prompt + x.completion AS tokens, x.digest, x.p95
          FROM rollup_rows(a.t_from, a.t_to, p.grain, v_dims, a.agents, a.models, a.meta, p.bin,
                           p_p95 AND NOT v_lazy) x
    ), top AS (
        SELECT r.k FROM r WHERE r.k IS NOT NULL GROUP BY r.k ORDER BY sum(r.n) DESC, r.k LIMIT 10
    ), m AS (
        SELECT r.b, CASE WHEN r.k IS NULL OR r.k IN (SELECT top.k FROM top) THEN r.k
                         ELSE 'other' END AS k,
               r.n, r.successes, r.evaluated, r.passed, r.errors, r.lat_n, r.lat_sum, r.cost,
               r.tokens, r.digest, r.p95
          FROM r
    ), g AS (
        SELECT m.b, m.k, sum(m.n)::bigint AS n, sum(m.successes)::bigint AS successes,
               sum(m.evaluated)::bigint AS evaluated, sum(m.passed)::bigint AS passed,
               sum(m.errors)::bigint AS errors,
               sum(m.lat_sum)::double precision / nullif(sum(m.lat_n), 0) AS lat_avg,
               CASE WHEN count(*) = 1 AND max(m.p95) IS NOT NULL THEN max(m.p95)
                    WHEN NOT v_lazy THEN tdigest_percentile(m.digest, 0.95) END AS p95,
               sum(m.cost) AS cost,
               sum(m.tokens)::bigint AS tokens, sum(m.lat_sum)::double precision AS lat_sum,
               sum(m.lat_n)::bigint AS lat_n
          FROM m GROUP BY m.b, m.k
    ), keys AS (
        SELECT DISTINCT m.k FROM m WHERE p_group_by IS NOT NULL
        UNION ALL SELECT NULL WHERE p_group_by IS NULL
    )
    SELECT keys.k, bs.b, coalesce(g.n, 0), coalesce(g.successes, 0), coalesce(g.evaluated, 0),
           coalesce(g.passed, 0), coalesce(g.errors, 0),
           g.lat_avg,
           CASE WHEN g.p95 IS NOT NULL OR NOT v_lazy OR g.n IS NULL THEN g.p95
                -- a fleet bucket of several pieces: read them again with digests
                ELSE (SELECT tdigest_percentile(y.digest, 0.95)
                        FROM rollup_rows(greatest(bs.b, a.t_from),
                                         least(CASE WHEN p.wall
                                                    THEN ((bs.b AT TIME ZONE a.tz) + p.iv) AT TIME ZONE a.tz
                                                    ELSE bs.b + p.iv END, a.t_to),
                                         p.grain, 0, a.agents, a.models, NULL, p.bin, true) y) END,
           coalesce(g.cost, 0), coalesce(g.tokens, 0), coalesce(g.lat_sum, 0), coalesce(g.lat_n, 0)
      FROM keys
     CROSS JOIN agg_buckets(a, p) AS bs (b)
      LEFT JOIN g ON g.b = bs.b AND coalesce(g.k, '') = coalesce(keys.k, '');
END $$;

CREATE FUNCTION agg_timeseries(q jsonb) RETURNS json LANGUAGE plpgsql STABLE AS $$
DECLARE
    a agg_query := agg_query(q);
    p agg_plan := agg_plan(a, q ->> 'interval');
    v_group text := q ->> 'group_by';
BEGIN
    RETURN json_build_object(
        'range', agg_range_json(a), 'interval', p.name, 'tz', a.tz, 'group_by', v_group,
        'buckets', p.n,
        'series', coalesce((
            SELECT json_agg(json_build_object(
                       'key', s.k,
                       'name', CASE WHEN v_group IS NULL THEN 'All'
                                    WHEN s.k = 'other' THEN 'Other'
                                    WHEN v_group = 'agent' THEN (SELECT ag.name FROM agents ag WHERE ag.id::text = s.k)
                                    ELSE s.k END,
                       'points', s.points)
                   ORDER BY s.k = 'other', s.total DESC, s.k)
              FROM (SELECT pt.k, sum(pt.n) AS total,
                           json_agg(json_build_object(
                               't', agg_ts(pt.b), 'executions', pt.n,
                               'success_rate', agg_rate(pt.successes, pt.n),
                               'pass_rate', agg_rate(pt.passed, pt.evaluated),
                               'avg_latency_ms', pt.lat_avg, 'p95_latency_ms', pt.p95,
                               'cost_usd', pt.cost, 'tokens', pt.tokens) ORDER BY pt.b) AS points
                      FROM agg_points(a, p, v_group) pt
                     GROUP BY pt.k) s), '[]'),
        'source', CASE WHEN a.meta IS NULL AND p.grain IS NOT NULL THEN 'rollup' ELSE 'raw' END);
END $$;

-- ===================================================================
-- Agents: GET /agents/summary, /agents/{id}/metrics, /health
-- ===================================================================

-- agg_status(executions, successes) - from the success rate: healthy >=
-- 0.9, warning >= 0.7, else critical; inactive without executions in the
-- range.
CREATE FUNCTION agg_status(p_n bigint, p_successes bigint) RETURNS text
LANGUAGE sql IMMUTABLE AS $$
    SELECT CASE WHEN coalesce(p_n, 0) = 0 THEN 'inactive'
                WHEN agg_rate(p_successes, p_n) >= 0.9 THEN 'healthy'
                WHEN agg_rate(p_successes, p_n) >= 0.7 THEN 'warning'
                ELSE 'critical' END
$$;

-- agg_system_status(critical, warning) - the fleet's status from its agent
-- counts (seed 000): critical when any agent is critical, degraded when any
-- is in warning, else healthy.
CREATE FUNCTION agg_system_status(p_critical bigint, p_warning bigint) RETURNS text
LANGUAGE sql IMMUTABLE AS $$
    SELECT CASE WHEN p_critical > 0 THEN 'critical' WHEN p_warning > 0 THEN 'degraded'
                ELSE 'healthy' END
$$;

-- agg_agent_sums(a) - per agent with executions in the range: the sums a
-- dashboard's status board, agent table and cost-by-agent chart all read,
-- computed once for them (dashboard_data).
CREATE FUNCTION agg_agent_sums(a agg_query) RETURNS jsonb LANGUAGE sql STABLE AS $$
    SELECT coalesce(jsonb_agg(x), '[]')
      FROM (SELECT r.agent_id, sum(r.n)::bigint AS n, sum(r.successes)::bigint AS successes,
                   sum(r.evaluated)::bigint AS evaluated,
                   sum(r.passed)::bigint AS passed, sum(r.errors)::bigint AS errors,
                   sum(r.lat_sum)::double precision AS lat_sum, sum(r.lat_n)::bigint AS lat_n,
                   sum(r.cost) AS cost, sum(r.prompt)::bigint AS prompt,
                   sum(r.completion)::bigint AS completion, sum(r.cache)::bigint AS cache,
                   max(r.last_at) AS last_at
              FROM rollup_rows(a.t_from, a.t_to, '1 day', a.dims | 1, a.agents, a.models, a.meta,
                               '1 day', false) r
             GROUP BY r.agent_id) x
$$;

-- agg_agents_of(a, p95, sums) - one row per active agent, or per agent the filter
-- names (retired ones too):
-- its status, numbers over the range, active version, open canary
-- (p95_latency_ms null unless p_p95).
CREATE FUNCTION agg_agents_of(a agg_query, p_p95 boolean DEFAULT true, p_sums jsonb DEFAULT NULL)
RETURNS TABLE (id uuid, name text, status text, n bigint, item json)
LANGUAGE sql STABLE AS $$
    WITH r AS (
        SELECT x.agent_id, sum(x.n)::bigint AS n, sum(x.successes)::bigint AS successes,
               sum(x.evaluated)::bigint AS evaluated,
               sum(x.passed)::bigint AS passed, sum(x.errors)::bigint AS errors,
               sum(x.lat_sum)::double precision / nullif(sum(x.lat_n), 0) AS lat_avg,
               tdigest_percentile(x.digest, 0.95) AS p95, sum(x.cost) AS cost,
               max(x.last_at) AS last_at
          FROM rollup_rows(a.t_from, a.t_to, '1 day', a.dims | 1, a.agents, a.models, a.meta,
                           '1 day', p_p95) x
         WHERE p_sums IS NULL
         GROUP BY x.agent_id
        UNION ALL
        SELECT s.agent_id, s.n, s.successes, s.evaluated, s.passed, s.errors,
               s.lat_sum / nullif(s.lat_n, 0), NULL, s.cost, s.last_at
          FROM jsonb_to_recordset(p_sums) AS s (agent_id uuid, n bigint, successes bigint,
                                                evaluated bigint, passed bigint, errors bigint,
                                                lat_sum double precision, lat_n bigint,
                                                cost numeric, last_at timestamptz)
         WHERE p_sums IS NOT NULL
    )
    SELECT g.id, g.name, agg_status(r.n, r.successes), coalesce(r.n, 0),
           json_build_object(
               'agent_id', g.id, 'name', g.name, 'status', agg_status(r.n, r.successes),
               'executions', coalesce(r.n, 0), 'successes', coalesce(r.successes, 0),
               'evaluated', coalesce(r.evaluated, 0), 'passed', coalesce(r.passed, 0),
               'success_rate', agg_rate(r.successes, r.n),
               'pass_rate', agg_rate(r.passed, r.evaluated),
               'avg_latency_ms', r.lat_avg, 'p95_latency_ms', r.p95,
               'avg_cost_usd', (r.cost / nullif(r.n, 0))::double precision,
               'errors', coalesce(r.errors, 0), 'last_execution_at', agg_ts(r.last_at),
               'active_version', (SELECT v.version FROM agent_versions v
                                   WHERE v.agent_id = g.id AND v.is_active),
               'canary_status', (SELECT c.status FROM canary_deployments c
                                  WHERE c.agent_id = g.id AND c.status IN ('in_progress', 'paused')))
      FROM agents g
      LEFT JOIN r ON r.agent_id = g.id
     WHERE (g.is_active OR a.agents IS NOT NULL) AND (a.agents IS NULL OR g.id = ANY (a.agents))
$$;

CREATE FUNCTION agg_agents(q jsonb) RETURNS json LANGUAGE plpgsql STABLE AS $$
DECLARE
    a agg_query := agg_query(q);
BEGIN
    RETURN json_build_object(
        'range', agg_range_json(a),
        'items', coalesce((SELECT json_agg(s.item ORDER BY s.n DESC, s.name)
                             FROM agg_agents_of(a) s), '[]'));
END $$;

CREATE FUNCTION agg_agent_metrics(q jsonb) RETURNS json LANGUAGE plpgsql STABLE AS $$
DECLARE
    a agg_query := agg_query(q);
    v_item json;
BEGIN
    a.agents := ARRAY[(q ->> 'agent')::uuid];
    a.dims := a.dims | 1;
    SELECT s.item INTO v_item FROM agg_agents_of(a) s;
    IF v_item IS NULL THEN
        -- inactive agents have no summary row: still answer for them
        IF NOT EXISTS (SELECT 1 FROM agents g WHERE g.id = a.agents[1]) THEN
            RAISE EXCEPTION USING ERRCODE = 'UF404', MESSAGE = 'No agent has this id.';
        END IF;
    END IF;
    RETURN json_build_object(
        'agent', v_item,
        'summary', agg_summary_of(a, ARRAY(SELECT jsonb_array_elements_text(q -> 'percentiles'))::double precision[]));
END $$;

-- agg_health_of(a) - the fleet's status (agg_system_status); counts of
-- open problems, pending proposals, running experiments; a sentence for
-- every condition that is not healthy.
CREATE FUNCTION agg_health_of(a agg_query) RETURNS json LANGUAGE plpgsql STABLE AS $$
DECLARE
    c record;
    v_conditions text[] := '{}';
    v_status text;
    v_problems bigint;
    v_span text := CASE WHEN a.t_to - a.t_from < interval '2 days'
                        THEN extract(epoch FROM a.t_to - a.t_from)::bigint / 3600 || ' h'
                        ELSE round(extract(epoch FROM a.t_to - a.t_from) / 86400) || ' days' END;
BEGIN
    SELECT count(*) FILTER (WHERE s.status = 'healthy') AS healthy,
           count(*) FILTER (WHERE s.status = 'warning') AS warning,
           count(*) FILTER (WHERE s.status = 'critical') AS critical,
           count(*) FILTER (WHERE s.status = 'inactive') AS inactive,
           string_agg(s.name, ', ' ORDER BY s.name) FILTER (WHERE s.status = 'critical') AS critical_names,
           string_agg(s.name, ', ' ORDER BY s.name) FILTER (WHERE s.status = 'warning') AS warning_names
      INTO c
      FROM agg_agents_of(a, false) s;
    v_status := agg_system_status(c.critical, c.warning);
    IF c.critical > 0 THEN
        v_conditions := v_conditions || format('%s of %s agents are critical (success rate below 70 %% over the last %s): %s',
                                               c.critical, c.healthy + c.warning + c.critical, v_span, c.critical_names);
    END IF;
    IF c.warning > 0 THEN
        v_conditions := v_conditions || format('%s of %s agents are in warning (success rate below 90 %% over the last %s): %s',
                                               c.warning, c.healthy + c.warning + c.critical, v_span, c.warning_names);
    END IF;
    SELECT count(*) INTO v_problems FROM problems WHERE status IN ('open', 'investigating');
    RETURN json_build_object(
        'status', v_status, 'range', agg_range_json(a),
        'agents', json_build_object('healthy', c.healthy, 'warning', c.warning,
                                    'critical', c.critical, 'inactive', c.inactive,
                                    'total', c.healthy + c.warning + c.critical + c.inactive),
        'open_problems', v_problems,
        'pending_proposals', (SELECT count(*) FROM improvement_proposals WHERE status = 'pending'),
        'running_experiments', (SELECT count(*) FROM experiments WHERE status = 'running'),
        'conditions', to_json(v_conditions),
        'as_of', agg_ts(date_trunc('second', now())));
END $$;

CREATE FUNCTION agg_health(q jsonb) RETURNS json LANGUAGE sql STABLE AS $$
    SELECT agg_health_of(agg_query(q))
$$;

-- ===================================================================
-- Breakdowns: GET /errors/breakdown, /costs/breakdown
-- ===================================================================

-- agg_any_error(from, to, a) - whether an execution of [from, to) passing
-- a's agent and model filters has an error category.
CREATE FUNCTION agg_any_error(p_from timestamptz, p_to timestamptz, a agg_query) RETURNS boolean
LANGUAGE sql STABLE AS $$
    SELECT EXISTS (SELECT 1 FROM executions e
                    WHERE e.error_category IS NOT NULL
                      AND e.started_at >= p_from AND e.started_at < p_to
                      AND (a.agents IS NULL OR e.agent_id = ANY (a.agents))
                      AND (a.models IS NULL OR e.model = ANY (a.models)))
$$;

-- agg_error_rows(a) - error counts per category over [from, to): whole
-- days and hours from the error rollups and their pending deltas, the
-- partial hours at the edges (and any metadata filter) from raw rows.
CREATE FUNCTION agg_error_rows(a agg_query)
RETURNS TABLE (category text, n bigint, example text)
LANGUAGE plpgsql STABLE AS $$
DECLARE
    h1 timestamptz := rollup_ceil(a.t_from, '1 hour');
    h2 timestamptz := rollup_floor(a.t_to, '1 hour');
    d1 timestamptz;
    d2 timestamptz;
BEGIN
    -- As in rollup_rows: a partial hour at an edge is read whole from the
    -- rollups when no error of the filters lies in its part outside the
    -- range (the live hour at the end of "the last 24h"), else from raw rows.
    IF h1 > a.t_from AND NOT agg_any_error(rollup_floor(a.t_from, '1 hour'), a.t_from, a) THEN
        h1 := rollup_floor(a.t_from, '1 hour');
    END IF;
    IF h2 < a.t_to AND NOT agg_any_error(a.t_to, rollup_ceil(a.t_to, '1 hour'), a) THEN
        h2 := rollup_ceil(a.t_to, '1 hour');
    END IF;
    IF h1 > h2 OR a.meta IS NOT NULL THEN          -- inside one hour, or metadata: raw
        h1 := a.t_to;  h2 := a.t_to;
    END IF;
    d1 := least(rollup_ceil(h1, '1 day'), h2);
    d2 := greatest(d1, rollup_floor(h2, '1 day'));
    RETURN QUERY
    SELECT x.category, sum(x.n)::bigint, max(x.example)
      FROM (SELECT r.category, r.n, r.example FROM rollup_errors_1d r
             WHERE r.fleet = (a.agents IS NULL AND a.models IS NULL)
               AND r.bucket >= d1 AND r.bucket < d2
               AND (a.agents IS NULL OR r.agent_id = ANY (a.agents))
               AND (a.models IS NULL OR r.model = ANY (a.models))
            UNION ALL
            SELECT r.category, r.n, r.example FROM rollup_errors_1h r
             WHERE r.fleet = (a.agents IS NULL AND a.models IS NULL)
               AND (r.bucket >= h1 AND r.bucket < d1 OR r.bucket >= d2 AND r.bucket < h2)
               AND (a.agents IS NULL OR r.agent_id = ANY (a.agents))
               AND (a.models IS NULL OR r.model = ANY (a.models))
            UNION ALL
            SELECT r.category, r.n, r.example FROM rollup_errors_delta r
             WHERE r.bucket >= h1 AND r.bucket < h2
               AND (a.agents IS NULL OR r.agent_id = ANY (a.agents))
               AND (a.models IS NULL OR r.model = ANY (a.models))
            UNION ALL
            SELECT e.error_category, 1, e.error_message FROM executions e
             WHERE e.error_category IS NOT NULL
               AND (e.started_at >= a.t_from AND e.started_at < h1
                    OR e.started_at >= h2 AND e.started_at < a.t_to)
               AND (a.agents IS NULL OR e.agent_id = ANY (a.agents))
               AND (a.models IS NULL OR e.model = ANY (a.models))
               AND (a.meta IS NULL
                    OR NOT EXISTS (SELECT 1 FROM jsonb_each_text(a.meta) m
                                    WHERE e.metadata ->> m.key IS DISTINCT FROM m.value))) x
     GROUP BY x.category;
END $$;
ALTER FUNCTION agg_error_rows SET max_parallel_workers_per_gather = 0;

-- agg_errors_of(a) - categories by count, with the share of all errors,
-- an example message and the trend against the previous period.
CREATE FUNCTION agg_errors_of(a agg_query) RETURNS json LANGUAGE sql STABLE AS $$
    WITH cur AS (SELECT * FROM agg_error_rows(a)),
         prev AS (SELECT * FROM agg_error_rows(agg_shift(a))),
         total AS (SELECT coalesce(sum(cur.n), 0)::bigint AS n FROM cur)
    SELECT json_build_object(
        'range', agg_range_json(a), 'previous_range', agg_range_json(agg_shift(a)),
        'total_errors', total.n,
        'items', coalesce(json_agg(json_build_object(
                     'category', cur.category, 'count', cur.n,
                     'percentage', cur.n * 100.0::double precision / total.n,
                     'example_message', cur.example,
                     'previous_count', coalesce(prev.n, 0),
                     'change_percent', t.change_percent, 'trend', t.trend)
                   ORDER BY cur.n DESC, cur.category) FILTER (WHERE cur.category IS NOT NULL), '[]'))
      FROM total
      LEFT JOIN cur ON true
      LEFT JOIN prev ON prev.category = cur.category
      LEFT JOIN LATERAL agg_trend(cur.n, prev.n) t ON true
     GROUP BY total.n
$$;

CREATE FUNCTION agg_errors(q jsonb) RETURNS json LANGUAGE sql STABLE AS $$
    SELECT agg_errors_of(agg_query(q))
$$;

-- agg_costs_of(a, group_by, sums) - cost per agent or model, most first
-- (per agent from agg_agent_sums() when given).
CREATE FUNCTION agg_costs_of(a agg_query, p_group_by text, p_sums jsonb DEFAULT NULL)
RETURNS json LANGUAGE sql STABLE AS $$
    WITH r AS (
        SELECT CASE WHEN p_group_by = 'model' THEN coalesce(x.model, '(none)')
                    ELSE x.agent_id::text END AS k,
               sum(x.cost) AS cost, sum(x.n)::bigint AS n, sum(x.prompt)::bigint AS prompt,
               sum(x.completion)::bigint AS completion, sum(x.cache)::bigint AS cache
          FROM rollup_rows(a.t_from, a.t_to, '1 day',
                           a.dims | CASE WHEN p_group_by = 'model' THEN 2 ELSE 1 END,
                           a.agents, a.models, a.meta, '1 day', false) x
         WHERE p_sums IS NULL OR p_group_by = 'model'
         GROUP BY 1
        UNION ALL
        SELECT s.agent_id::text, s.cost, s.n, s.prompt, s.completion, s.cache
          FROM jsonb_to_recordset(p_sums) AS s (agent_id uuid, cost numeric, n bigint,
                                                prompt bigint, completion bigint, cache bigint)
         WHERE p_sums IS NOT NULL AND p_group_by <> 'model'
    ), total AS (SELECT coalesce(sum(r.cost), 0) AS cost FROM r)
    SELECT json_build_object(
        'range', agg_range_json(a), 'group_by', p_group_by, 'total_cost_usd', total.cost,
        'items', coalesce(json_agg(json_build_object(
                     'key', r.k,
                     'name', CASE WHEN p_group_by = 'model' THEN r.k
                                  ELSE (SELECT g.name FROM agents g WHERE g.id::text = r.k) END,
                     'cost_usd', r.cost,
                     'percentage', (r.cost * 100 / nullif(total.cost, 0))::double precision,
                     'executions', r.n,
                     'cost_per_execution', (r.cost / nullif(r.n, 0))::double precision,
                     'tokens', json_build_object('input', r.prompt, 'output', r.completion,
                                                 'cache_read', r.cache,
                                                 'total', r.prompt + r.completion))
                   ORDER BY r.cost DESC, r.k) FILTER (WHERE r.k IS NOT NULL), '[]'))
      FROM total
      LEFT JOIN r ON true
     GROUP BY total.cost
$$;

CREATE FUNCTION agg_costs(q jsonb) RETURNS json LANGUAGE sql STABLE AS $$
    SELECT agg_costs_of(agg_query(q), coalesce(q ->> 'group_by', 'agent'))
$$;

-- ===================================================================
-- GET /metrics/{name}, /heatmap
-- ===================================================================

CREATE FUNCTION agg_metric_unit(p_name text) RETURNS text LANGUAGE sql IMMUTABLE AS $$
    SELECT CASE p_name WHEN 'success_rate' THEN '%' WHEN 'pass_rate' THEN '%'
                       WHEN 'error_rate' THEN '%'
                       WHEN 'total_executions' THEN 'count' WHEN 'avg_latency' THEN 'ms'
                       WHEN 'p95_latency' THEN 'ms' WHEN 'total_cost' THEN 'usd' END
$$;

-- agg_metric_value(name, n, successes, errors, avg latency, p95, cost,
-- evaluated, passed) - one metric from the sums (rates in percent, as seed
-- 000 shows them).
CREATE FUNCTION agg_metric_value(p_name text, p_n bigint, p_successes bigint, p_errors bigint,
                                 p_lat_avg double precision, p_p95 double precision,
                                 p_cost numeric, p_evaluated bigint, p_passed bigint)
RETURNS double precision
LANGUAGE sql IMMUTABLE AS $$
    SELECT CASE p_name
               WHEN 'success_rate' THEN agg_rate(p_successes, p_n) * 100
               WHEN 'pass_rate' THEN agg_rate(p_passed, p_evaluated) * 100
               WHEN 'error_rate' THEN p_errors * 100.0::double precision / nullif(p_n, 0)
               WHEN 'total_executions' THEN coalesce(p_n, 0)
               WHEN 'avg_latency' THEN p_lat_avg
               WHEN 'p95_latency' THEN p_p95
               WHEN 'total_cost' THEN coalesce(p_cost, 0)::double precision END
$$;

-- agg_metric_at(a, name) - the metric over a whole range.
CREATE FUNCTION agg_metric_at(a agg_query, p_name text) RETURNS double precision
LANGUAGE sql STABLE AS $$
    SELECT agg_metric_value(p_name, sum(x.n)::bigint, sum(x.successes)::bigint,
                            sum(x.errors)::bigint,
                            sum(x.lat_sum)::double precision / nullif(sum(x.lat_n), 0),
                            CASE WHEN p_name = 'p95_latency' THEN tdigest_percentile(x.digest, 0.95) END,
                            sum(x.cost), sum(x.evaluated)::bigint, sum(x.passed)::bigint)
      FROM rollup_rows(a.t_from, a.t_to, '1 day', a.dims, a.agents, a.models, a.meta, '1 day',
                       p_name = 'p95_latency') x
$$;

-- agg_bundle(a, p95) - what the metric cards, gauges and line charts of
-- one range show, computed once for all of them: the points of the range's
-- automatic interval (their sums are the range's numbers; each point is
-- [t, n, successes, errors, avg latency, p95, cost, evaluated, passed]) and
-- the sums of the previous period; p95 values only when p95 is asked for.
CREATE FUNCTION agg_bundle(a agg_query, p_p95 boolean) RETURNS jsonb
LANGUAGE sql STABLE AS $$
    WITH pts AS (
        SELECT * FROM agg_points(a, agg_plan(a, 'auto'), NULL, p_p95)
    ), b AS (
        SELECT agg_shift(a) AS a
    ), prev AS (
        SELECT sum(x.n)::bigint AS n, sum(x.successes)::bigint AS successes,
               sum(x.evaluated)::bigint AS evaluated, sum(x.passed)::bigint AS passed,
               sum(x.errors)::bigint AS errors,
               sum(x.lat_sum)::double precision / nullif(sum(x.lat_n), 0) AS lat_avg,
               tdigest_percentile(x.digest, 0.95) AS p95, sum(x.cost) AS cost
          FROM b, rollup_rows((b.a).t_from, (b.a).t_to, '1 day', (b.a).dims, (b.a).agents,
                              (b.a).models, (b.a).meta, '1 day', p_p95) x
    )
    SELECT jsonb_build_object(
        'points', (SELECT jsonb_agg(jsonb_build_array(agg_ts(pts.b), pts.n, pts.successes,
                                                      pts.errors, pts.lat_avg, pts.p95, pts.cost,
                                                      pts.evaluated, pts.passed)
                                    ORDER BY pts.b) FROM pts),
        'now', (SELECT jsonb_build_object(
                           'n', sum(pts.n), 'successes', sum(pts.successes),
                           'evaluated', sum(pts.evaluated), 'passed', sum(pts.passed),
                           'errors', sum(pts.errors),
                           'lat_avg', sum(pts.lat_sum) / nullif(sum(pts.lat_n), 0),
                           'p95', CASE WHEN p_p95 THEN agg_metric_at(a, 'p95_latency') END,
                           'cost', sum(pts.cost))
                  FROM pts),
        'before', (SELECT to_jsonb(prev) FROM prev))
$$;

-- agg_bundle_value(name, sums) - a metric from the sums of a bundle.
CREATE FUNCTION agg_bundle_value(p_name text, v jsonb) RETURNS double precision
LANGUAGE sql IMMUTABLE AS $$
    SELECT agg_metric_value(p_name, (v ->> 'n')::bigint, (v ->> 'successes')::bigint,
                            (v ->> 'errors')::bigint, (v ->> 'lat_avg')::double precision,
                            (v ->> 'p95')::double precision, (v ->> 'cost')::numeric,
                            (v ->> 'evaluated')::bigint, (v ->> 'passed')::bigint)
$$;

-- agg_metric_from(a, name, bundle) - value, previous period, trend, and a
-- sparkline of the last 20 buckets of the range's automatic interval.
CREATE FUNCTION agg_metric_from(a agg_query, p_name text, p_bundle jsonb) RETURNS json
LANGUAGE plpgsql STABLE AS $$
DECLARE
    v_now double precision;
    v_before double precision;
    t record;
BEGIN
    IF agg_metric_unit(p_name) IS NULL THEN
        RAISE EXCEPTION USING ERRCODE = 'UF404', MESSAGE = format(
            'No metric is named "%s"; the metrics are success_rate, pass_rate, total_executions, avg_latency, p95_latency, total_cost, error_rate.', p_name);
    END IF;
    v_now := agg_bundle_value(p_name, p_bundle -> 'now');
    v_before := agg_bundle_value(p_name, p_bundle -> 'before');
    SELECT * INTO t FROM agg_trend(v_now, v_before);
    RETURN json_build_object(
        'name', p_name, 'range', agg_range_json(a), 'value', v_now,
        'unit', agg_metric_unit(p_name), 'previous_value', v_before,
        'change_percent', t.change_percent, 'trend', t.trend,
        'sparkline', coalesce((
            SELECT json_agg(s.v ORDER BY s.o)
              FROM (SELECT e.o, agg_metric_value(p_name, (e.p ->> 1)::bigint, (e.p ->> 2)::bigint,
                                                 (e.p ->> 3)::bigint, (e.p ->> 4)::double precision,
                                                 (e.p ->> 5)::double precision, (e.p ->> 6)::numeric,
                                                 (e.p ->> 7)::bigint, (e.p ->> 8)::bigint) AS v
                      FROM jsonb_array_elements(p_bundle -> 'points') WITH ORDINALITY AS e (p, o)
                     ORDER BY e.o DESC LIMIT 20) s), '[]'));
END $$;

CREATE FUNCTION agg_metric_of(a agg_query, p_name text) RETURNS json LANGUAGE sql STABLE AS $$
    SELECT agg_metric_from(a, p_name, agg_bundle(a, p_name = 'p95_latency'))
$$;

CREATE FUNCTION agg_metric(q jsonb) RETURNS json LANGUAGE sql STABLE AS $$
    SELECT agg_metric_of(agg_query(q), q ->> 'name')
$$;

-- agg_heatmap_of(a, metric) - weekday (Monday first) x hour of day in tz:
-- executions, error_rate (percent) or p95_latency; null where no runs.
CREATE FUNCTION agg_heatmap_of(a agg_query, p_metric text) RETURNS json
LANGUAGE plpgsql STABLE AS $$
DECLARE
    p agg_plan := agg_plan(a, '1h', true);
BEGIN
    IF p_metric NOT IN ('executions', 'error_rate', 'p95_latency') THEN
        PERFORM agg_fail('metric', 'must be one of executions, error_rate, p95_latency');
    END IF;
    RETURN (
    WITH cells AS (
        SELECT extract(isodow FROM x.bucket AT TIME ZONE a.tz)::int AS d,
               extract(hour FROM x.bucket AT TIME ZONE a.tz)::int AS h,
               CASE p_metric
                   WHEN 'executions' THEN sum(x.n)::double precision
                   WHEN 'error_rate' THEN sum(x.errors) * 100.0::double precision / nullif(sum(x.n), 0)
                   ELSE tdigest_percentile(x.digest, 0.95) END AS v
          FROM rollup_rows(a.t_from, a.t_to, p.grain, a.dims, a.agents, a.models, a.meta,
                           '5 minutes') x
         GROUP BY 1, 2
    ), grid AS (
        SELECT d.d, json_agg(CASE WHEN p_metric = 'executions' THEN coalesce(c.v, 0) ELSE c.v END
                             ORDER BY h.h) AS row
          FROM generate_series(1, 7) d (d)
         CROSS JOIN generate_series(0, 23) h (h)
          LEFT JOIN cells c ON c.d = d.d AND c.h = h.h
         GROUP BY d.d
    )
    SELECT json_build_object(
        'range', agg_range_json(a), 'tz', a.tz, 'metric', p_metric,
        'x_labels', json_build_array('Mon', 'Tue', 'Wed', 'Thu', 'Fri', 'Sat', 'Sun'),
        'y_labels', (SELECT json_agg(lpad(h::text, 2, '0') || ':00' ORDER BY h)
                       FROM generate_series(0, 23) h),
        'data', (SELECT json_agg(grid.row ORDER BY grid.d) FROM grid),
        'max', (SELECT max(cells.v) FROM cells)));
END $$;

CREATE FUNCTION agg_heatmap(q jsonb) RETURNS json LANGUAGE sql STABLE AS $$
    SELECT agg_heatmap_of(agg_query(q, '7d'), coalesce(q ->> 'metric', 'executions'))
$$;

-- ===================================================================
-- Widget data: GET /dashboards/{id}/widgets/{wid}/data, ?include_data=true
-- ===================================================================

-- agg_widget_query(config) - the query a widget's config asks for:
-- time_range (default 24h, or 7d for heatmaps) and one agent_id. Values
-- the dashboards group would refuse today are ignored, not fatal: one odd
-- widget must not blank the whole dashboard.
CREATE FUNCTION agg_widget_query(p_type text, p_config jsonb) RETURNS agg_query
LANGUAGE plpgsql STABLE AS $$
DECLARE
    q jsonb := '{}';
BEGIN
    IF p_config ->> 'time_range' IN ('1h', '6h', '24h', '7d', '30d') THEN
        q := q || jsonb_build_object('time_range', p_config ->> 'time_range');
    END IF;
    IF p_config ->> 'agent_id' ~* '^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$' THEN
        q := q || jsonb_build_object('agent_id', jsonb_build_array(p_config ->> 'agent_id'));
    END IF;
    RETURN agg_query(q, CASE WHEN p_type = 'heatmap' THEN '7d' ELSE '24h' END);
END $$;

-- agg_recent_activity(limit) - the newest executions, deployments and
-- problems, merged by time in one query.
CREATE FUNCTION agg_recent_activity(p_limit integer) RETURNS json LANGUAGE sql STABLE AS $$
    SELECT coalesce(json_agg(json_build_object('type', x.type, 'title', x.title,
                                               'status', x.status, 'timestamp', agg_ts(x.ts))
                             ORDER BY x.ts DESC), '[]')
      FROM (SELECT * FROM (
              (SELECT 'execution' AS type, 'Execution: ' || g.name AS title,
                      CASE WHEN e.eval_passed THEN 'success'
                           WHEN e.eval_passed IS NULL THEN e.status ELSE 'failed' END AS status,
                      e.started_at AS ts
                 FROM executions e
                 JOIN agents g ON g.id = e.agent_id
                ORDER BY e.started_at DESC LIMIT p_limit)
              UNION ALL
              (SELECT 'deployment', 'Deployment: ' || g.name || ' ' || nv.version, c.status,
                      c.started_at
                 FROM canary_deployments c
                 JOIN agents g ON g.id = c.agent_id
                 JOIN agent_versions nv ON nv.id = c.new_version_id
                ORDER BY c.started_at DESC LIMIT p_limit)
              UNION ALL
              (SELECT 'problem', 'Problem: ' || p.category, p.status, p.first_seen_at
                 FROM problems p
                ORDER BY p.first_seen_at DESC LIMIT p_limit)) u
             ORDER BY u.ts DESC LIMIT p_limit) x
$$;

-- agg_widget_data(type, config, bundle) - a widget's data, shaped as seed
-- 000's widget provider shapes it, from the widget's stored config. Metric
-- cards, gauges and line charts read agg_bundle(), which the caller may have
-- computed already for another widget of the same range
-- (agg_widget_bundle_key).
CREATE FUNCTION agg_widget_data(p_type text, p_config json, p_bundle jsonb DEFAULT NULL,
                                p_sums jsonb DEFAULT NULL)
RETURNS json LANGUAGE plpgsql STABLE AS $$
DECLARE
    c jsonb := coalesce(p_config::jsonb, '{}');
    a agg_query := agg_widget_query(p_type, c);
    v_limit integer := CASE WHEN jsonb_typeof(c -> 'limit') = 'number'
                            THEN greatest(1, least(100, (c ->> 'limit')::numeric::integer)) ELSE 10 END;
    v_metric text := CASE WHEN agg_metric_unit(c ->> 'metric') IS NOT NULL THEN c ->> 'metric'
                          ELSE 'success_rate' END;
    v_group text := CASE WHEN c ->> 'group_by' = 'model' THEN 'model' ELSE 'agent' END;
    m json;
    r json;
BEGIN
    CASE p_type
    WHEN 'metric_card' THEN
        m := agg_metric_from(a, v_metric, coalesce(p_bundle, agg_bundle(a, v_metric = 'p95_latency')));
        RETURN json_build_object(
            'value', m -> 'value',
            'formatted_value', CASE WHEN m ->> 'value' IS NULL THEN '-'
                                    WHEN v_metric IN ('success_rate', 'pass_rate', 'error_rate')
                                        THEN to_char((m ->> 'value')::numeric, 'FM990.0') || '%'
                                    WHEN v_metric IN ('avg_latency', 'p95_latency')
                                        THEN round((m ->> 'value')::numeric) || 'ms'
                                    WHEN v_metric = 'total_cost'
                                        THEN '$' || to_char((m ->> 'value')::numeric, 'FM999,999,999,990.00')
                                    ELSE to_char((m ->> 'value')::numeric, 'FM999,999,999,999,990') END,
            'unit', CASE WHEN v_metric = 'total_cost' THEN '$' WHEN v_metric = 'total_executions' THEN ''
                         ELSE m ->> 'unit' END,
            'previous_value', m -> 'previous_value', 'change_percent', m -> 'change_percent',
            'trend', m -> 'trend', 'sparkline', m -> 'sparkline');
    WHEN 'line_chart' THEN
        RETURN json_build_object(
            'series', coalesce((
                SELECT json_agg(json_build_object('name', s.name, 'unit', s.unit, 'color', s.color,
                                                  'data', s.data) ORDER BY s.ord)
                  FROM (SELECT d.ord, d.name, d.unit, d.color,
                               json_agg(json_build_object(
                                   'timestamp', pt.p ->> 0,
                                   'value', CASE d.key
                                                WHEN 'executions' THEN (pt.p ->> 1)::double precision
                                                WHEN 'success_rate' THEN agg_rate((pt.p ->> 2)::bigint, (pt.p ->> 1)::bigint) * 100
                                                WHEN 'pass_rate' THEN agg_rate((pt.p ->> 8)::bigint, (pt.p ->> 7)::bigint) * 100
                                                WHEN 'latency' THEN (pt.p ->> 4)::double precision
                                                ELSE (pt.p ->> 6)::double precision END)
                                        ORDER BY pt.o) AS data
                          FROM (VALUES (1, 'executions', 'Executions', 'count', '#3B82F6'),
                                       (2, 'success_rate', 'Success Rate', '%', '#10B981'),
                                       (3, 'pass_rate', 'Pass Rate', '%', '#14B8A6'),
                                       (4, 'latency', 'Avg Latency', 'ms', '#F59E0B'),
                                       (5, 'cost', 'Cost', '$', '#8B5CF6')) d (ord, key, name, unit, color)
                         CROSS JOIN jsonb_array_elements(coalesce(p_bundle, agg_bundle(a, false)) -> 'points')
                                    WITH ORDINALITY AS pt (p, o)
                         WHERE d.key IN (SELECT jsonb_array_elements_text(
                                             CASE WHEN jsonb_typeof(c -> 'metrics') = 'array' THEN c -> 'metrics'
                                                  ELSE '["executions", "success_rate"]' END))
                         GROUP BY d.ord, d.name, d.unit, d.color) s), '[]'),
            'time_range', coalesce(c ->> 'time_range', '24h'));
    WHEN 'bar_chart' THEN
        r := agg_costs_of(a, v_group, p_sums);
        RETURN (SELECT json_build_object(
                    'categories', coalesce(json_agg(i ->> 'name' ORDER BY o), '[]'),
                    'values', coalesce(json_agg(i -> 'cost_usd' ORDER BY o), '[]'),
                    'percentages', coalesce(json_agg(i -> 'percentage' ORDER BY o), '[]'),
                    'group_by', v_group)
                  FROM json_array_elements(r -> 'items') WITH ORDINALITY AS e (i, o)
                 WHERE o <= 10);
    WHEN 'pie_chart' THEN
        r := agg_errors_of(a);
        RETURN json_build_object('segments', coalesce((
                   SELECT json_agg(json_build_object('name', i ->> 'category', 'value', i -> 'count',
                                                     'percentage', i -> 'percentage') ORDER BY o)
                     FROM json_array_elements(r -> 'items') WITH ORDINALITY AS e (i, o)
                    WHERE o <= 8), '[]'));
    WHEN 'table' THEN
        IF c ->> 'type' = 'agent_summary' THEN
            RETURN json_build_object(
                'columns', json_build_array('Agent', 'Status', 'Executions', 'Success Rate', 'Pass Rate',
                                            'Avg Latency'),
                'rows', coalesce((
                    SELECT json_agg(json_build_object(
                               'agent_id', s.id, 'agent_name', s.name, 'status', s.status,
                               'executions', s.n,
                               'success_rate', to_char(coalesce((s.item ->> 'success_rate')::numeric, 0) * 100, 'FM990.0') || '%',
                               'pass_rate', coalesce(to_char((s.item ->> 'pass_rate')::numeric * 100, 'FM990.0') || '%', '-'),
                               'avg_latency', round(coalesce((s.item ->> 'avg_latency_ms')::numeric, 0)) || 'ms')
                               ORDER BY s.n DESC, s.name)
                      FROM (SELECT * FROM agg_agents_of(a, false, p_sums) x ORDER BY x.n DESC, x.name LIMIT v_limit) s), '[]'));
        END IF;
        RETURN json_build_object('columns', json_build_array('Type', 'Title', 'Status', 'Time'),
                                 'rows', agg_recent_activity(v_limit));
    WHEN 'heatmap' THEN
        RETURN agg_heatmap_of(a, CASE WHEN c ->> 'metric' IN ('error_rate', 'p95_latency')
                                      THEN c ->> 'metric' ELSE 'executions' END);
    WHEN 'gauge' THEN
        m := agg_metric_from(a, v_metric, coalesce(p_bundle, agg_bundle(a, v_metric = 'p95_latency')));
        r := json_build_object(
            'critical', coalesce((c #>> '{thresholds,critical}')::double precision, 70),
            'warning', coalesce((c #>> '{thresholds,warning}')::double precision, 85),
            'good', coalesce((c #>> '{thresholds,good}')::double precision, 95));
        RETURN json_build_object(
            'value', m -> 'value', 'min', 0, 'max', 100,
            'status', CASE WHEN (m ->> 'value')::double precision >= (r ->> 'good')::double precision THEN 'good'
                           WHEN (m ->> 'value')::double precision >= (r ->> 'warning')::double precision THEN 'warning'
                           ELSE 'critical' END,
            'thresholds', r);
    WHEN 'alert_list' THEN
        RETURN json_build_object(
            'alerts', coalesce((
                SELECT json_agg(json_build_object(
                           'id', l.id, 'severity', l.severity, 'title', l.title,
                           'message', l.message, 'agent_name', l.agent_name,
                           'created_at', agg_ts(l.created_at),
                           'acknowledged', l.status = 'acknowledged')
                           ORDER BY l.rank, l.created_at DESC)
                  FROM (SELECT al.*, g.name AS agent_name, severity_rank(al.severity) AS rank
                          FROM alerts al
                          LEFT JOIN agents g ON g.id = al.agent_id
                         WHERE al.status <> 'resolved'
                         ORDER BY severity_rank(al.severity), al.created_at DESC
                         LIMIT v_limit) l), '[]'),
            'total_count', (SELECT count(*) FROM alerts WHERE status <> 'resolved'));
    WHEN 'status_board' THEN
        RETURN (
            SELECT json_build_object(
                'system_status', agg_system_status(count(*) FILTER (WHERE x.status = 'critical'),
                                                   count(*) FILTER (WHERE x.status = 'warning')),
                'agents', coalesce(json_agg(json_build_object(
                                       'id', x.id, 'name', x.name, 'status', x.status,
                                       'success_rate', x.item -> 'success_rate',
                                       'pass_rate', x.item -> 'pass_rate',
                                       'canary_status', x.item -> 'canary_status')
                                   ORDER BY x.n DESC, x.name), '[]'),
                'summary', json_build_object('healthy', count(*) FILTER (WHERE x.status = 'healthy'),
                                             'warning', count(*) FILTER (WHERE x.status = 'warning'),
                                             'critical', count(*) FILTER (WHERE x.status = 'critical'),
                                             'total', count(*)))
              FROM agg_agents_of(a, false, p_sums) x);
    ELSE
        RETURN NULL;
    END CASE;
END $$;

-- agg_widget_bundle_key(type, config) - which agg_bundle() a widget reads
-- (NULL: none); widgets with the same key share one.
CREATE FUNCTION agg_widget_bundle_key(p_type text, c jsonb) RETURNS text
LANGUAGE sql IMMUTABLE AS $$
    SELECT CASE WHEN p_type IN ('metric_card', 'gauge', 'line_chart')
                THEN concat_ws('|', c ->> 'time_range', c ->> 'agent_id',
                               p_type <> 'line_chart' AND c ->> 'metric' = 'p95_latency') END
$$;

-- dashboard_data(dashboard) - {widget id: data} for every widget of a
-- dashboard, in one call (GET /dashboards/{id}?include_data=true); widgets
-- of the same range share their numbers (agg_bundle, agg_agent_sums).
CREATE FUNCTION dashboard_data(p_dashboard uuid) RETURNS json LANGUAGE plpgsql STABLE AS $$
DECLARE
    w record;
    c jsonb;
    v_key text;
    v_sums_key text;
    v_bundles jsonb := '{}';
    v_ids text[] := '{}';
    v_data json[] := '{}';
BEGIN
    FOR w IN SELECT x.id, x.type, x.config FROM dashboard_widgets x
              WHERE x.dashboard_id = p_dashboard ORDER BY x.y, x.x, x.id LOOP
        c := coalesce(w.config::jsonb, '{}');
        v_key := agg_widget_bundle_key(w.type, c);
        IF v_key IS NOT NULL AND NOT v_bundles ? v_key THEN
            v_bundles := v_bundles || jsonb_build_object(
                v_key, agg_bundle(agg_widget_query(w.type, c),
                                  w.type <> 'line_chart' AND c ->> 'metric' = 'p95_latency'));
        END IF;
        v_sums_key := CASE WHEN w.type = 'status_board'
                                  OR w.type = 'table' AND c ->> 'type' = 'agent_summary'
                                  OR w.type = 'bar_chart' AND coalesce(c ->> 'group_by', 'agent') <> 'model'
                           THEN concat_ws('|', 'sums', c ->> 'time_range', c ->> 'agent_id') END;
        IF v_sums_key IS NOT NULL AND NOT v_bundles ? v_sums_key THEN
            v_bundles := v_bundles || jsonb_build_object(
                v_sums_key, agg_agent_sums(agg_widget_query(w.type, c)));
        END IF;
        v_ids := v_ids || w.id::text;
        v_data := v_data || agg_widget_data(w.type, w.config, v_bundles -> v_key,
                                            v_bundles -> v_sums_key);
    END LOOP;
    RETURN coalesce((SELECT json_object_agg(i, d) FROM unnest(v_ids, v_data) u (i, d)), '{}');
END $$;

-- widget_data(dashboard, widget) - GET .../widgets/{wid}/data. UF404
-- when the dashboard has no such widget.
CREATE FUNCTION widget_data(p_dashboard uuid, p_widget uuid) RETURNS json
LANGUAGE plpgsql STABLE AS $$
DECLARE
    w record;
BEGIN
    SELECT * INTO w FROM dashboard_widgets x WHERE x.id = p_widget AND x.dashboard_id = p_dashboard;
    IF NOT FOUND THEN
        IF NOT EXISTS (SELECT 1 FROM dashboards d WHERE d.id = p_dashboard) THEN
            RAISE EXCEPTION USING ERRCODE = 'UF404', MESSAGE = 'No dashboard has this id.';
        END IF;
        RAISE EXCEPTION USING ERRCODE = 'UF404', MESSAGE = 'This dashboard has no widget with this id.';
    END IF;
    RETURN json_build_object('widget_id', w.id, 'type', w.type,
                             'data', agg_widget_data(w.type, w.config),
                             'refreshed_at', agg_ts(date_trunc('second', now())));
END $$;

-- ===================================================================
-- The demo fleet (sql/005) loads in bulk, then rebuilds the rollups once
-- ===================================================================

ALTER FUNCTION demo_fleet(integer, bigint, integer, double precision, timestamptz)
    RENAME TO demo_fleet_rows;

-- demo_fleet(...) - sql/005's generator (now demo_fleet_rows), with the
-- rollup triggers off for its bulk insert (so that it also keeps its fast
-- path) and the rollups rebuilt from the raw rows at the end: one pass
-- instead of a delta per million-row statement. Holds the ingest tables
-- for its transaction, as the load always did in effect.
CREATE FUNCTION demo_fleet(p_agents integer DEFAULT 50, p_executions bigint DEFAULT 200000,
                           p_days integer DEFAULT 30, p_seed double precision DEFAULT 0.42,
                           p_end timestamptz DEFAULT NULL)
RETURNS demo_fleet_summary LANGUAGE plpgsql AS $$
DECLARE
    v_clock timestamptz := clock_timestamp();
    r demo_fleet_summary;
BEGIN
    ALTER TABLE executions DISABLE TRIGGER executions_rollup;
    r := demo_fleet_rows(p_agents, p_executions, p_days, p_seed, p_end);
    ALTER TABLE executions ENABLE ALWAYS TRIGGER executions_rollup;
    PERFORM rollup_rebuild();
    r.seconds := extract(epoch FROM clock_timestamp() - v_clock);
    RETURN r;
END $$;

-- Rollups of what is already stored (a database upgraded to this version).
SELECT rollup_rebuild();

-- end of 006
