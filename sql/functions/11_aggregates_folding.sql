-- 11_aggregates_folding.sql - deltas folded into the rollups:
-- rollup_refresh() (the maintenance job, every second), rollup_rebuild()
-- (every rollup from the raw rows), rollup_reset().
--
-- Repeatable (sql/README.md): applied again whenever it changes.

-- ===================================================================
-- Folding deltas into the rollups
-- ===================================================================

-- rollup_p95(digest) - the 0.95 quantile of one digest (the extension has
-- only the aggregate form). Stored on fleet rows: a time series reads it
-- instead of the digest wherever a bucket is one rollup row.
CREATE OR REPLACE FUNCTION rollup_p95(p_digest tdigest) RETURNS double precision
LANGUAGE sql IMMUTABLE PARALLEL SAFE AS $$
    SELECT tdigest_percentile(d, 0.95) FROM (SELECT p_digest) x (d)
$$;

-- rollup_fold_step(table, step) - adds the session's step table (rows of
-- that table's grain, all dims) to a rollup table.
CREATE OR REPLACE FUNCTION rollup_fold_step(p_table text, p_step text) RETURNS void LANGUAGE plpgsql AS $$
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
CREATE OR REPLACE FUNCTION rollup_coarsen(p_from text, p_to text, p_grain interval) RETURNS void
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

-- rollup_errors_fold(table, grain) - adds pg_temp.rollup_errors_batch
-- (error categories per 5 minutes, agent and model) to the error rollup
-- table of that grain: per agent, model and category, and for the fleet.
CREATE OR REPLACE FUNCTION rollup_errors_fold(p_table text, p_grain interval) RETURNS void
LANGUAGE plpgsql AS $$
BEGIN
    EXECUTE format($f$
        INSERT INTO %I AS r (fleet, bucket, agent_id, model, category, n, example)
        SELECT grouping(b.agent_id) = 1, b.at, b.agent_id, b.model, b.category, sum(b.n),
               max(b.example)
          FROM (SELECT date_bin($1, e.bucket, timestamptz 'epoch') AS at, e.*
                  FROM pg_temp.rollup_errors_batch e) b
         GROUP BY GROUPING SETS ((b.at, b.agent_id, b.model, b.category), (b.at, b.category))
        ON CONFLICT (fleet, bucket, agent_id, model, category) DO UPDATE
           SET n = r.n + excluded.n, example = coalesce(excluded.example, r.example)
    $f$, p_table) USING p_grain;
END $$;

-- rollup_fold_minutes(limit) - marks the 5-minute buckets of
-- pg_temp.rollup_batch stale in rollup_1m_stale (sql/021), then makes the
-- fleet's minutes of the latest `limit` stale buckets (NULL: all) again
-- from their raw rows (the statement made from rollup_raw_sql() when this
-- file is applied). Called after the batch's deltas were taken: every
-- execution whose delta was taken is visible, so a bucket neither pending
-- nor stale has exact minutes. Without JIT and sorts: the generic plan
-- estimates a million raw rows a bucket, so it compiled the statement
-- (~190 ms) and sorted the rows on disk to group them; hashed, the minutes
-- of an hour of 105,000 raw rows take 173 ms instead of 345.
DO $do$
BEGIN
    EXECUTE format($f$
        CREATE OR REPLACE FUNCTION rollup_fold_minutes(p_limit integer) RETURNS void
        LANGUAGE plpgsql SET jit = off SET enable_sort = off AS $body$
        DECLARE
            v_buckets timestamptz[];
        BEGIN
            INSERT INTO rollup_1m_stale SELECT DISTINCT b.bucket FROM pg_temp.rollup_batch b
            ON CONFLICT DO NOTHING;
            WITH s AS (DELETE FROM rollup_1m_stale
                        WHERE bucket IN (SELECT s.bucket FROM rollup_1m_stale s
                                          ORDER BY s.bucket DESC LIMIT p_limit)
                       RETURNING bucket)
            SELECT array_agg(s.bucket) INTO v_buckets FROM s;
            IF v_buckets IS NOT NULL THEN
                DELETE FROM rollup_1m m
                 WHERE m.dims = 0
                   AND m.bucket >= (SELECT min(b) FROM unnest(v_buckets) b)
                   AND m.bucket < (SELECT max(b) FROM unnest(v_buckets) b) + interval '5 minutes'
                   AND date_bin(interval '5 minutes', m.bucket, timestamptz 'epoch') = ANY (v_buckets);
                INSERT INTO rollup_1m SELECT 0, x.* FROM (%s) x;
            END IF;
        END $body$
    $f$, rollup_raw_sql($s$(SELECT e.* FROM unnest(v_buckets) b (bucket)
                            JOIN executions e ON e.started_at >= b.bucket
                                             AND e.started_at < b.bucket + interval '5 minutes')$s$,
                        $i$interval '1 minute'$i$, '0', 'true', 'true'));
END $do$;
DROP FUNCTION IF EXISTS rollup_fold_minutes();

-- rollup_fold_batch() - adds pg_temp.rollup_batch (deltas: agent x model
-- per 5 minutes) and pg_temp.rollup_errors_batch to every rollup table:
-- the four dims per 5 minutes first, then hours from those, quarters of a
-- day from the hours, days from the quarters, 7 days from the days (each
-- level merges the digests of the level below once); the fleet's minutes of
-- the batch's buckets marked stale and the latest 64 made again
-- (p_minutes; NULL: all, the rebuild).
DROP FUNCTION IF EXISTS rollup_fold_batch();
CREATE OR REPLACE FUNCTION rollup_fold_batch(p_minutes integer DEFAULT 64) RETURNS void
LANGUAGE plpgsql AS $$
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
    PERFORM rollup_coarsen('rollup_step_1h', 'rollup_step_6h', '6 hours');
    PERFORM rollup_fold_step('rollup_6h', 'rollup_step_6h');
    PERFORM rollup_coarsen('rollup_step_6h', 'rollup_step_1d', '1 day');
    PERFORM rollup_fold_step('rollup_1d', 'rollup_step_1d');
    PERFORM rollup_coarsen('rollup_step_1d', 'rollup_step_7d', '7 days');
    PERFORM rollup_fold_step('rollup_7d', 'rollup_step_7d');
    PERFORM rollup_fold_minutes(p_minutes);
    -- error categories: per 5 minutes as the deltas hold them, hours, days
    PERFORM rollup_errors_fold('rollup_errors_5m', '5 minutes');
    PERFORM rollup_errors_fold('rollup_errors_1h', '1 hour');
    PERFORM rollup_errors_fold('rollup_errors_1d', '1 day');
END $$;

-- rollup_batch_open() - the session's batch and step tables (empty between
-- folds).
CREATE OR REPLACE FUNCTION rollup_batch_open() RETURNS void LANGUAGE plpgsql AS $$
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
    -- (a session that opened them before rollup_6h and rollup_7d has only those above)
    IF to_regclass('pg_temp.rollup_step_7d') IS NULL THEN
        CREATE TEMP TABLE rollup_step_6h (LIKE rollup_5m);
        CREATE TEMP TABLE rollup_step_7d (LIKE rollup_5m);
    END IF;
END $$;

-- rollup_batch_close() - empties the session's batch and step tables.
CREATE OR REPLACE FUNCTION rollup_batch_close() RETURNS void LANGUAGE plpgsql AS $$
BEGIN
    TRUNCATE pg_temp.rollup_batch, pg_temp.rollup_errors_batch, pg_temp.rollup_step_5m,
             pg_temp.rollup_step_1h, pg_temp.rollup_step_6h, pg_temp.rollup_step_1d,
             pg_temp.rollup_step_7d;
END $$;

-- rollup_refresh() - the maintenance job's step: moves every committed
-- delta into the rollups, in one transaction. Returns the delta rows
-- folded, or -1 when another session is refreshing (so any number of
-- maintenance processes may run).
CREATE OR REPLACE FUNCTION rollup_refresh() RETURNS integer LANGUAGE plpgsql AS $$
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
    -- Nothing to fold or forget: no write to rollup_state either, so that
    -- the answers workers keep and the answers job made ahead (agg_token)
    -- stay valid. Stale minutes left by an earlier fold are made 64 buckets
    -- a round: that changes how a read adds up its edges, not the data it
    -- reads (counts and sums stay exact, percentiles within their error), so
    -- it leaves the token alone (written, it expired every answer made ahead
    -- each second until the last stale bucket was made).
    IF v_n + v_e > 0 THEN
        PERFORM rollup_fold_batch();
        PERFORM rollup_batch_close();
    ELSIF EXISTS (SELECT 1 FROM rollup_1m_stale) THEN
        PERFORM rollup_fold_minutes(64);
    END IF;
    IF v_n + v_e + v_c > 0 THEN
        UPDATE rollup_state
           SET rolled_up_to = now(), last_folded = v_n,
               last_seconds = extract(epoch FROM clock_timestamp() - v_t);
    END IF;
    RETURN v_n;
END $$;

-- rollup_lock_all() - every rollup table in ACCESS EXCLUSIVE mode (what
-- TRUNCATE takes), taken in the order readers take theirs: rollup_rows()
-- coarsest first, then the pending deltas, then the fleet's minutes (read
-- after a look at the deltas and the stale buckets); agg_error_rows()
-- likewise. A TRUNCATE locking them in its own order met a reader the other way round
-- (a deadlock, one of them cancelled). A deadlock with a reader that reads
-- in another order (the error rollups before the others) cancels the locking
-- here, which is tried again (5 times, 50 ms apart).
CREATE OR REPLACE FUNCTION rollup_lock_all() RETURNS void LANGUAGE plpgsql AS $$
BEGIN
    FOR i IN 1..5 LOOP
        BEGIN
            LOCK TABLE rollup_7d, rollup_1d, rollup_6h, rollup_1h, rollup_5m, rollup_delta,
                       rollup_1m_stale, rollup_1m, rollup_errors_1d, rollup_errors_1h, rollup_errors_5m, rollup_errors_delta
                IN ACCESS EXCLUSIVE MODE;
            RETURN;
        EXCEPTION WHEN deadlock_detected THEN
            IF i = 5 THEN
                RAISE;
            END IF;
            PERFORM pg_sleep(0.05);
        END;
    END LOOP;
END $$;

-- rollup_rebuild() - recomputes every rollup from the raw rows (after a
-- restore, a retention purge, or a change of this file). Blocks ingest
-- while it runs. Returns the 5-minute groups it folded.
CREATE OR REPLACE FUNCTION rollup_rebuild() RETURNS integer LANGUAGE plpgsql AS $$
DECLARE
    v_n integer;
BEGIN
    LOCK TABLE executions IN SHARE MODE;
    PERFORM pg_advisory_xact_lock(hashtext('fleetdash.rollup_refresh'));
    PERFORM set_config('work_mem', '256MB', true);
    PERFORM rollup_lock_all();
    TRUNCATE rollup_1m, rollup_1m_stale, rollup_5m, rollup_1h, rollup_6h, rollup_1d, rollup_7d,
             rollup_delta, rollup_errors_5m, rollup_errors_1h, rollup_errors_1d, rollup_errors_delta;
    PERFORM rollup_batch_open();
    INSERT INTO pg_temp.rollup_batch
    SELECT * FROM rollup_raw_rows('5 minutes', 3, true, '-infinity', 'infinity', 'infinity',
                                  'infinity', NULL, NULL, NULL);
    GET DIAGNOSTICS v_n = ROW_COUNT;
    EXECUTE 'INSERT INTO pg_temp.rollup_errors_batch ' || rollup_raw_errors_sql('executions');
    PERFORM rollup_fold_batch(NULL);
    PERFORM rollup_batch_close();
    UPDATE rollup_state SET rolled_up_to = now(), last_folded = v_n, last_seconds = NULL;
    RETURN v_n;
END $$;

-- rollup_reset() - empties the rollups (tests truncate executions too).
CREATE OR REPLACE FUNCTION rollup_reset() RETURNS void LANGUAGE sql AS $$
    SELECT pg_advisory_xact_lock(hashtext('fleetdash.rollup_refresh'));
    SELECT rollup_lock_all();
    TRUNCATE rollup_1m, rollup_1m_stale, rollup_5m, rollup_1h, rollup_6h, rollup_1d, rollup_7d,
             rollup_delta, rollup_errors_5m, rollup_errors_1h, rollup_errors_1d, rollup_errors_delta;
    UPDATE rollup_state SET rolled_up_to = NULL, last_folded = 0, last_seconds = NULL;
$$;

-- end of 11_aggregates_folding
