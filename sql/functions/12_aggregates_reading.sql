-- 12_aggregates_reading.sql - reading the rollups: rollup_rows(), the
-- fewest rows that cover a range, and the query every endpoint starts from
-- (agg_query(), agg_now(), agg_token(), agg_ts() and the small helpers).
--
-- Repeatable (sql/README.md): applied again whenever it changes.

-- ===================================================================
-- Reading: the fewest rows that cover [from, to)
-- ===================================================================

-- rollup_ceil / rollup_floor - t rounded up / down to a multiple of g (UTC).
-- rollup_ceil is STABLE as timestamptz + interval is: declared IMMUTABLE it
-- was never inlined, and each call was a SQL function of its own (8 per
-- summary).
CREATE OR REPLACE FUNCTION rollup_floor(t timestamptz, g interval) RETURNS timestamptz
LANGUAGE sql IMMUTABLE PARALLEL SAFE AS $$ SELECT date_bin(g, t, timestamptz 'epoch') $$;
CREATE OR REPLACE FUNCTION rollup_ceil(t timestamptz, g interval) RETURNS timestamptz
LANGUAGE sql STABLE PARALLEL SAFE AS $$
    SELECT CASE WHEN date_bin(g, t, timestamptz 'epoch') = t THEN t
                ELSE date_bin(g, t, timestamptz 'epoch') + g END
$$;

-- rollup_any(from, to, agents, models) - whether an execution of [from, to)
-- passes the filters.
-- (plpgsql: a SQL function that is not inlined is planned on every call)
CREATE OR REPLACE FUNCTION rollup_any(p_from timestamptz, p_to timestamptz, p_agents uuid[], p_models text[])
RETURNS boolean LANGUAGE plpgsql STABLE AS $$
BEGIN
    RETURN EXISTS (SELECT 1 FROM executions x
                    WHERE x.started_at >= p_from AND x.started_at < p_to
                      AND (p_agents IS NULL OR x.agent_id = ANY (p_agents))
                      AND (p_models IS NULL OR x.model = ANY (p_models)));
END $$;

-- rollup_rows(from, to, grain, dims, agents, models, metadata, bin) -
-- pieces that together hold exactly the executions of [from, to) that
-- pass the filters: rollup rows no coarser than grain (7 days, 1 day, 6
-- hours, 1 hour or 5 minutes; NULL: raw rows only), pending deltas, and raw
-- rows of the edges grouped per bin (for the fleet without a filter, the
-- edges' whole minutes from rollup_1m and less than a minute of raw rows).
-- agent_id / model are set as dims asks (1 agent, 2 model). Callers sum the pieces (and merge the digests) as
-- they need; each piece's bucket is its start, so a piece lies in one
-- bucket of any series whose buckets are multiples of grain. Callers that
-- sum the whole range pass 7 days: the fewest pieces, so the fewest
-- digests to merge (what a percentile costs). A metadata filter (jsonb
-- object of text values) means raw rows only. Without p_digests the digest
-- column is NULL (callers that need no percentile move far fewer bytes);
-- without p_grain_digests it is NULL for the rollup rows of grain itself
-- only (a series whose buckets are those rows reads their stored p95).
-- With p_sums_only the caller reads only the sums (n ... cache; no digest,
-- lat_min, lat_max or last_at, which are then not those of the range): a
-- partial 5 minutes at an edge whose part outside the range is the shorter
-- is read whole from the rollups, less that part's raw rows (pieces of
-- negative sums), so that an edge reads at most 2.5 minutes of raw rows
-- instead of 5. A key (agent, model) may then sum to zero executions:
-- callers drop those.
DROP FUNCTION IF EXISTS rollup_rows(timestamptz, timestamptz, interval, integer, uuid[], text[],
                                    jsonb, interval, boolean);   -- before p_grain_digests
DROP FUNCTION IF EXISTS rollup_rows(timestamptz, timestamptz, interval, integer, uuid[], text[],
                                    jsonb, interval, boolean, boolean);   -- before p_sums_only
DROP FUNCTION IF EXISTS rollup_rows_all(timestamptz, timestamptz, interval, integer, uuid[], text[],
                                        jsonb, interval, boolean, boolean);
DROP FUNCTION IF EXISTS rollup_rows_some(timestamptz, timestamptz, interval, integer, uuid[], text[],
                                         jsonb, interval, boolean, boolean);
--
-- The pieces are read by one of two functions of the same body (made from
-- one text below), so that a call plans its statements only when their
-- plans depend on its values: rollup_rows_all, for calls without a filter
-- (agent, model, metadata) over the rollups, plans each statement once
-- per session (force_generic_plan: an index range whatever the bounds;
-- planning them on every call was a tenth of a 30-day summary's time);
-- rollup_rows_some, for filtered calls, plans them with their values (a
-- filter becomes an index condition, and a long raw range a sequential
-- scan). No JIT in either: a plan made for any bounds is estimated dear
-- enough to be compiled, ~200 ms, for a statement of ~0.1 ms. No sort in
-- rollup_rows_all: its generic plan estimates the raw edges at ~100,000
-- rows and groups them by sorting; hashed, the 1,069 rows of a 4-minute
-- edge at 10M take 0.47 ms instead of 0.87 (no statement there needs an
-- order).
DO $do$
DECLARE
    v_args text := $a$p_from timestamptz, p_to timestamptz, p_grain interval, p_dims integer,
                     p_agents uuid[], p_models text[], p_meta jsonb, p_bin interval,
                     p_digests boolean DEFAULT true, p_grain_digests boolean DEFAULT true,
                     p_sums_only boolean DEFAULT false$a$;
    -- the rows of one rollup table (%1$I, tag %2$s for v_bare) in [%3$s, %4$s) or
    -- [%5$s, %6$s)
    v_level text := $l$
    IF %3$s < %4$s OR %5$s < %6$s THEN
        RETURN QUERY
        SELECT r.bucket, r.agent_id, r.model, r.n, r.evaluated, r.passed, r.successes, r.errors,
               r.lat_n, r.lat_sum, r.lat_min, r.lat_max, r.cost, r.prompt, r.completion, r.cache,
               r.last_at, CASE WHEN p_digests AND v_bare IS DISTINCT FROM %2$L THEN r.digest END,
               r.p95
          FROM %1$I r
         WHERE r.dims = p_dims
           AND (r.bucket >= %3$s AND r.bucket < %4$s OR r.bucket >= %5$s AND r.bucket < %6$s)
           AND (p_agents IS NULL OR r.agent_id = ANY (p_agents))
           AND (p_models IS NULL OR r.model = ANY (p_models));
    END IF;$l$;
    v_returns text := $r$TABLE (bucket timestamptz, agent_id uuid, model text, n bigint,
                     evaluated bigint, passed bigint, successes bigint, errors bigint,
                     lat_n bigint, lat_sum bigint, lat_min integer, lat_max integer,
                     cost numeric, prompt bigint, completion bigint, cache bigint,
                     last_at timestamptz, digest tdigest, p95 double precision)$r$;
    v_body text := $body$
DECLARE
    -- [f5, t5): whole 5-minute buckets; [h1, h2): whole hours; [q1, q2): whole
    -- quarters of a day (6 hours); [d1, d2): whole days; [w1, w2): whole 7 days
    f5 timestamptz;  t5 timestamptz;
    h1 timestamptz;  h2 timestamptz;
    q1 timestamptz;  q2 timestamptz;
    d1 timestamptz;  d2 timestamptz;
    w1 timestamptz;  w2 timestamptz;
    -- [c1, c2), [c3, c4): raw rows taken away (p_sums_only)
    c1 timestamptz;  c2 timestamptz;
    c3 timestamptz;  c4 timestamptz;
    -- [m1, m2), [m3, m4): the fleet's minutes at the edges; raw rows are
    -- those of [p_from, m1) and [m4, p_to)
    m1 timestamptz;  m2 timestamptz;
    m3 timestamptz;  m4 timestamptz;
    -- the edges may be read from minutes: the fleet unfiltered over the rollups
    v_minutes boolean := p_grain IS NOT NULL AND p_meta IS NULL AND p_dims = 0
                         AND p_agents IS NULL AND p_models IS NULL;
    -- rollup rows of this grain come without their digest
    v_bare text := CASE WHEN p_digests AND NOT p_grain_digests
                        THEN CASE p_grain WHEN '7 days' THEN '7d' WHEN '1 day' THEN '1d'
                                          WHEN '6 hours' THEN '6h' WHEN '1 hour' THEN '1h'
                                          WHEN '5 minutes' THEN '5m' END END;
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
        -- With p_sums_only, when that part is the shorter (and the range
        -- crosses a 5-minute boundary), the bucket is read whole less its raw
        -- rows.
        IF f5 > p_from AND NOT rollup_any(rollup_floor(p_from, '5 minutes'), p_from, p_agents, p_models) THEN
            f5 := rollup_floor(p_from, '5 minutes');
        ELSIF f5 > p_from AND p_sums_only AND f5 <= t5
              AND p_from - rollup_floor(p_from, '5 minutes') < f5 - p_from THEN
            c1 := rollup_floor(p_from, '5 minutes');  c2 := p_from;  f5 := c1;
        END IF;
        IF t5 < p_to AND NOT rollup_any(p_to, rollup_ceil(p_to, '5 minutes'), p_agents, p_models) THEN
            t5 := rollup_ceil(p_to, '5 minutes');
        ELSIF t5 < p_to AND p_sums_only AND rollup_ceil(p_from, '5 minutes') <= t5
              AND rollup_ceil(p_to, '5 minutes') - p_to < p_to - t5 THEN
            c3 := p_to;  c4 := rollup_ceil(p_to, '5 minutes');  t5 := c4;
        END IF;
        IF f5 > t5 THEN                          -- inside one bucket: raw
            f5 := p_to;  t5 := p_to;  v_minutes := false;
        END IF;
    END IF;
    -- each level inside the one below it: f5 <= h1 <= q1 <= d1 <= w1 <= w2
    -- <= d2 <= q2 <= h2 <= t5 (an empty span where the grain is finer)
    h1 := f5;  h2 := f5;
    IF p_grain >= interval '1 hour' THEN
        h1 := least(rollup_ceil(f5, '1 hour'), t5);
        h2 := greatest(h1, rollup_floor(t5, '1 hour'));
    END IF;
    q1 := h1;  q2 := h1;
    IF p_grain >= interval '6 hours' THEN
        q1 := least(rollup_ceil(h1, '6 hours'), h2);
        q2 := greatest(q1, rollup_floor(h2, '6 hours'));
    END IF;
    d1 := q1;  d2 := q1;
    IF p_grain >= interval '1 day' THEN
        d1 := least(rollup_ceil(q1, '1 day'), q2);
        d2 := greatest(d1, rollup_floor(q2, '1 day'));
    END IF;
    w1 := d1;  w2 := d1;
    IF p_grain >= interval '7 days' THEN
        w1 := least(rollup_ceil(d1, '7 days'), d2);
        w2 := greatest(w1, rollup_floor(d2, '7 days'));
    END IF;
    -- One simple statement per rollup table (v_level, made once per table
    -- when this file is applied), and none for an empty span.
    @LEVELS@
    -- A partial 5-minute edge read raw (neither whole nor less its outside
    -- part) takes its whole minutes from rollup_1m (sql/021) when its bucket
    -- has no pending delta and is not stale (its minutes are then exact),
    -- and less than a minute of raw rows. (rollup_delta and rollup_1m_stale
    -- are read before rollup_1m, the order rollup_lock_all() takes them in.)
    m1 := f5;  m2 := f5;  m3 := t5;  m4 := t5;
    IF v_minutes AND p_from < f5 AND rollup_ceil(p_from, '1 minute') < f5
       AND NOT EXISTS (SELECT 1 FROM rollup_delta d WHERE d.bucket = f5 - interval '5 minutes')
       AND NOT EXISTS (SELECT 1 FROM rollup_1m_stale s WHERE s.bucket = f5 - interval '5 minutes') THEN
        m1 := rollup_ceil(p_from, '1 minute');
    END IF;
    IF v_minutes AND t5 < p_to AND rollup_floor(p_to, '1 minute') > t5
       AND NOT EXISTS (SELECT 1 FROM rollup_delta d WHERE d.bucket = t5)
       AND NOT EXISTS (SELECT 1 FROM rollup_1m_stale s WHERE s.bucket = t5) THEN
        m4 := rollup_floor(p_to, '1 minute');
    END IF;
    @MINUTES@
    IF f5 < t5 THEN
        RETURN QUERY
        SELECT d.bucket, CASE WHEN p_dims & 1 = 1 THEN d.agent_id END,
               CASE WHEN p_dims & 2 = 2 THEN d.model END, d.n, d.evaluated, d.passed, d.successes,
               d.errors, d.lat_n, d.lat_sum, d.lat_min, d.lat_max, d.cost, d.prompt, d.completion,
               d.cache, d.last_at, CASE WHEN p_digests THEN d.digest END, NULL::double precision
          FROM rollup_delta d
         WHERE d.bucket >= f5 AND d.bucket < t5
           AND (p_agents IS NULL OR d.agent_id = ANY (p_agents))
           AND (p_models IS NULL OR d.model = ANY (p_models));
    END IF;
    IF p_from < m1 OR m4 < p_to THEN
        RETURN QUERY
        SELECT * FROM rollup_raw_rows(p_bin, p_dims, p_digests, p_from, m1, m4, p_to, p_agents,
                                      p_models, p_meta);
    END IF;
    IF c1 < c2 OR c3 < c4 THEN
        RETURN QUERY
        SELECT x.bucket, x.agent_id, x.model, -x.n, -x.evaluated, -x.passed, -x.successes,
               -x.errors, -x.lat_n, -x.lat_sum, NULL::integer, NULL::integer, -x.cost, -x.prompt,
               -x.completion, -x.cache, NULL::timestamptz, NULL::tdigest, NULL::double precision
          FROM rollup_raw_rows(p_bin, p_dims, false, coalesce(c1, p_from), coalesce(c2, p_from),
                               coalesce(c3, p_to), coalesce(c4, p_to), p_agents, p_models,
                               NULL) x;
    END IF;
END $body$;
BEGIN
    v_body := replace(v_body, '@LEVELS@',
                      format(v_level, 'rollup_7d', '7d', 'w1', 'w2', 'w2', 'w2')
                      || format(v_level, 'rollup_1d', '1d', 'd1', 'w1', 'w2', 'd2')
                      || format(v_level, 'rollup_6h', '6h', 'q1', 'd1', 'd2', 'q2')
                      || format(v_level, 'rollup_1h', '1h', 'h1', 'q1', 'q2', 'h2')
                      || format(v_level, 'rollup_5m', '5m', 'f5', 'h1', 'h2', 't5'));
    v_body := replace(v_body, '@MINUTES@', format(v_level, 'rollup_1m', '1m', 'm1', 'm2', 'm3', 'm4'));
    -- (pieces are few and small: a parallel plan only adds start-up time)
    EXECUTE format('CREATE OR REPLACE FUNCTION rollup_rows_all(%s) RETURNS %s
                    LANGUAGE plpgsql STABLE SET plan_cache_mode = force_generic_plan
                    SET jit = off SET max_parallel_workers_per_gather = 0 SET enable_sort = off
                    AS %L',
                   v_args, v_returns, v_body);
    EXECUTE format('CREATE OR REPLACE FUNCTION rollup_rows_some(%s) RETURNS %s
                    LANGUAGE plpgsql STABLE SET plan_cache_mode = auto
                    SET jit = off SET max_parallel_workers_per_gather = 0 AS %L',
                   v_args, v_returns, v_body);
    EXECUTE format($f$CREATE OR REPLACE FUNCTION rollup_rows(%s) RETURNS %s
                    LANGUAGE plpgsql STABLE AS $rr$
    BEGIN
        IF p_agents IS NULL AND p_models IS NULL AND p_meta IS NULL AND p_grain IS NOT NULL THEN
            RETURN QUERY SELECT * FROM rollup_rows_all(p_from, p_to, p_grain, p_dims, NULL, NULL,
                                                       NULL, p_bin, p_digests, p_grain_digests,
                                                       p_sums_only);
        ELSE
            RETURN QUERY SELECT * FROM rollup_rows_some(p_from, p_to, p_grain, p_dims, p_agents,
                                                        p_models, p_meta, p_bin, p_digests,
                                                        p_grain_digests, p_sums_only);
        END IF;
    END $rr$ $f$, v_args, v_returns);
END $do$;

DROP VIEW IF EXISTS rollup_all;   -- the three grains as one relation, read until rollup_rows split it

-- ===================================================================
-- The query every endpoint starts from
-- ===================================================================

-- agg_fail(field, message) - a 422 naming the query parameter(s).
CREATE OR REPLACE FUNCTION agg_fail(p_field text, p_message text) RETURNS void LANGUAGE plpgsql AS $$
BEGIN
    RAISE EXCEPTION USING ERRCODE = 'UF422', COLUMN = p_field, MESSAGE = p_message;
END $$;

-- agg_ts(t) - RFC 3339 in UTC: no fraction on a whole second, else all six
-- digits ("2026-11-21T10:36:25.020000Z"). Not api_time() (sql/002), which
-- cuts trailing zeros ("...25.02Z"): the aggregates' answers have always
-- written six, and they stay as they are. STABLE: to_char is (declared
-- IMMUTABLE it was also never inlined).
CREATE OR REPLACE FUNCTION agg_ts(t timestamptz) RETURNS text
LANGUAGE sql STABLE PARALLEL SAFE AS $$
    SELECT to_char(t AT TIME ZONE 'UTC',
                   CASE WHEN date_trunc('second', t) = t THEN 'YYYY-MM-DD"T"HH24:MI:SS"Z"'
                        ELSE 'YYYY-MM-DD"T"HH24:MI:SS.US"Z"' END)
$$;

-- agg_now() - where relative ranges (time_range=24h, a from without a to)
-- end: now rounded up to the next turn of a one-second clock, at most one
-- second ahead. An answer depends only on the data visible and on this, so
-- that identical snapshots within one second give identical answers
-- (agg_token). The clock is the same for every session, so that all
-- workers of all hosts share their answers (answer_cached(),
-- sql/functions/15_answer_cache.sql). answer_warm() sets fleetdash.agg_now
-- (epoch seconds) for its transaction to compute an answer of the next
-- second ahead of it; nothing else sets it.
CREATE OR REPLACE FUNCTION agg_now() RETURNS timestamptz LANGUAGE sql STABLE AS $$
    SELECT coalesce(to_timestamp(nullif(current_setting('fleetdash.agg_now', true), '')::double precision),
                    date_bin('1 second', now(), timestamptz 'epoch') + interval '1 second')
$$;

-- agg_token() - names what an answer computed now depends on: agg_now(),
-- the version of rollup_state (every fold, reset or rebuild writes it),
-- and how many rows rollup_delta and rollup_changes hold (between two
-- versions they only grow, by one or more rows in every transaction that
-- changes what an answer reads). Workers keep their last answer per query
-- with its token and ask again with it, and answer_cached() keeps the
-- answer of the current token for all of them; the same token means the
-- same answer, served without computing it. Writes that change no answer, such
-- as heartbeats, leave it alone. (plpgsql: it keeps the plan; a sql
-- function with sub-selects is not inlined and would be planned per call.)
CREATE OR REPLACE FUNCTION agg_token() RETURNS text LANGUAGE plpgsql STABLE AS $$
BEGIN
    RETURN extract(epoch FROM agg_now())::bigint
           || '/' || (SELECT s.xmin::text FROM rollup_state s)
           || '/' || (SELECT count(*) FROM rollup_delta)
           || '/' || (SELECT count(*) FROM rollup_changes);
END $$;

-- agg_query(q, default range) - the validated query of the C worker
-- resolved: time_range (1h 6h 24h 7d 30d) or from/to, filters, tz.
CREATE OR REPLACE FUNCTION agg_query(q jsonb, p_default text DEFAULT '24h') RETURNS agg_query_t
LANGUAGE plpgsql STABLE AS $$
DECLARE
    a agg_query_t;
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

-- agg_sum8(bigint) - the sum of bigints as a bigint (NULL without rows),
-- for the counts and sums of rollup rows: sum(bigint) adds in 128 bits
-- and answers a numeric, which the callers cast back, and at 720 buckets
-- a time series spent about a quarter of its points' time there. Raises
-- "bigint out of range" past 2^63, which no count reaches.
CREATE OR REPLACE AGGREGATE agg_sum8(bigint) (
    SFUNC = int8pl, STYPE = bigint, COMBINEFUNC = int8pl, PARALLEL = SAFE);

-- agg_rate(part, whole) - part / whole (0..1); NULL when whole is 0 or
-- NULL. success_rate = agg_rate(successes, executions), pass_rate =
-- agg_rate(passed, evaluated), everywhere.
CREATE OR REPLACE FUNCTION agg_rate(p_part bigint, p_whole bigint) RETURNS double precision
LANGUAGE sql IMMUTABLE PARALLEL SAFE AS $$
    SELECT p_part::double precision / nullif(p_whole, 0)
$$;

-- agg_range_json(a) - {"from", "to"} of a query.
-- (plpgsql: a SQL function that is not inlined is planned on every call)
CREATE OR REPLACE FUNCTION agg_range_json(a agg_query_t) RETURNS json LANGUAGE plpgsql STABLE AS $$
BEGIN
    RETURN json_build_object('from', agg_ts(a.t_from), 'to', agg_ts(a.t_to));
END $$;

-- agg_shift(a) - the same query over the period of equal length just
-- before it (trends compare with it).
CREATE OR REPLACE FUNCTION agg_shift(a agg_query_t) RETURNS agg_query_t LANGUAGE plpgsql IMMUTABLE AS $$
DECLARE
    v_len interval := a.t_to - a.t_from;
BEGIN
    a.t_to := a.t_from;
    a.t_from := a.t_from - v_len;
    RETURN a;
END $$;

-- agg_trend(current, previous) - change percent and up / down / stable
-- (beyond +-5 %).
-- (plpgsql: a SQL function that is not inlined is planned on every call)
CREATE OR REPLACE FUNCTION agg_trend(p_now double precision, p_before double precision,
                          OUT change_percent double precision, OUT trend text)
LANGUAGE plpgsql IMMUTABLE AS $$
BEGIN
    change_percent := CASE WHEN p_before IS NULL OR p_before = 0 OR p_now IS NULL THEN NULL
                           ELSE (p_now - p_before) / p_before * 100 END;
    trend := CASE WHEN change_percent > 5 THEN 'up' WHEN change_percent < -5 THEN 'down'
                  ELSE 'stable' END;
END $$;

-- end of 12_aggregates_reading
