-- 13_aggregates_endpoints.sql - one function per aggregates endpoint, each
-- returning the whole response body as json: summary, time series, agents,
-- health, error and cost breakdowns, metrics, heatmap.
--
-- Repeatable (sql/README.md): applied again whenever it changes.

-- ===================================================================
-- Drill-down: the runs behind a number
-- ===================================================================

-- agg_url_encode(text) - percent-encoding of a query parameter value (every
-- byte but A-Z a-z 0-9 - . _ ~). A value with nothing to encode (an id, a
-- model name as most are) is answered as it is; the rest byte by byte by
-- agg_url_encode_bytes(). One test per value.
CREATE OR REPLACE FUNCTION agg_url_encode_bytes(p text) RETURNS text
LANGUAGE sql IMMUTABLE STRICT PARALLEL SAFE AS $$
    SELECT coalesce(string_agg(CASE WHEN c ~ '^[A-Za-z0-9._~-]$' THEN c
                                    ELSE regexp_replace(upper(encode(convert_to(c, 'UTF8'), 'hex')),
                                                        '(..)', '%\1', 'g') END, '' ORDER BY i), '')
      FROM regexp_split_to_table(p, '') WITH ORDINALITY AS x (c, i)
$$;
-- (plpgsql: a SQL function that is not inlined is planned on every call)
CREATE OR REPLACE FUNCTION agg_url_encode(p text) RETURNS text
LANGUAGE plpgsql IMMUTABLE STRICT PARALLEL SAFE AS $$
BEGIN
    RETURN CASE WHEN p ~ '^[A-Za-z0-9._~-]*$' THEN p ELSE agg_url_encode_bytes(p) END;
END $$;

-- agg_url_time(t) - agg_ts(t) percent-encoded: of its characters (digits,
-- '-', 'T', ':', '.', 'Z') only ':' needs it. Inlined: a drill-down link per
-- point of a 720-bucket series costs two to_char and two replace.
CREATE OR REPLACE FUNCTION agg_url_time(t timestamptz) RETURNS text
LANGUAGE sql STABLE PARALLEL SAFE AS $$
    SELECT replace(agg_ts(t), ':', '%3A')
$$;

-- agg_executions_filter(a, agents, models, extra) - the filters part of
-- agg_executions_url(): "&agent_id=...&model=...&metadata.K=V&extra...".
CREATE OR REPLACE FUNCTION agg_executions_filter(a agg_query_t, p_agents uuid[] DEFAULT NULL,
                                                 p_models text[] DEFAULT NULL,
                                                 p_extra jsonb DEFAULT NULL)
RETURNS text LANGUAGE plpgsql STABLE AS $$
BEGIN
    RETURN (
        SELECT coalesce((SELECT string_agg('&agent_id=' || x::text, '' ORDER BY o)
                           FROM unnest(coalesce(p_agents, a.agents)) WITH ORDINALITY u (x, o)), '')
               || coalesce((SELECT string_agg('&model=' || agg_url_encode(x), '' ORDER BY o)
                              FROM unnest(coalesce(p_models, a.models)) WITH ORDINALITY u (x, o)), '')
               || coalesce((SELECT string_agg('&' || agg_url_encode('metadata.' || m.key) || '='
                                              || agg_url_encode(m.value), '' ORDER BY m.key)
                              FROM jsonb_each_text(a.meta) m), '')
               || coalesce((SELECT string_agg('&' || e.key || '=' || agg_url_encode(e.value), ''
                                              ORDER BY e.key)
                              FROM jsonb_each_text(p_extra) e), ''));
END $$;

-- agg_executions_link(from, to, filter) - GET /executions over [from, to)
-- with the filters part agg_executions_filter() made (inlined: a series
-- makes its filters once and a link per point).
CREATE OR REPLACE FUNCTION agg_executions_link(p_from timestamptz, p_to timestamptz, p_filter text)
RETURNS text LANGUAGE sql STABLE AS $$
    SELECT '/api/v1/executions?from=' || agg_url_time(p_from) || '&to=' || agg_url_time(p_to)
           || p_filter
$$;

-- agg_executions_url(a, from, to, agents, models, extra) - the relative URL
-- of GET /executions that lists exactly the runs a number over [from, to)
-- of a's filters counts: its agents and models (p_agents / p_models when
-- given, for a row of one agent or model), its metadata, then the
-- (name, value) pairs of extra (error_category). NULL when a row's key
-- cannot be said as a filter (the 'other' series, runs without a model).
CREATE OR REPLACE FUNCTION agg_executions_url(a agg_query_t, p_from timestamptz, p_to timestamptz,
                                              p_agents uuid[] DEFAULT NULL,
                                              p_models text[] DEFAULT NULL,
                                              p_extra jsonb DEFAULT NULL)
RETURNS text LANGUAGE sql STABLE AS $$
    -- inlined; without models, metadata or extras the filters are the agents
    SELECT agg_executions_link(
               p_from, p_to,
               CASE WHEN p_models IS NULL AND a.models IS NULL AND a.meta IS NULL AND p_extra IS NULL
                    THEN CASE WHEN cardinality(coalesce(p_agents, a.agents)) > 0
                              THEN '&agent_id=' || array_to_string(coalesce(p_agents, a.agents), '&agent_id=')
                              ELSE '' END
                    ELSE agg_executions_filter(a, p_agents, p_models, p_extra) END)
$$;

-- ===================================================================
-- GET /executions/summary, /agents/{id}/metrics
-- ===================================================================

-- agg_summary_of(a, percentiles) - the summary object of a query.
-- success_rate = successes (execution_success()) / executions; pass_rate =
-- passed / evaluated; failed = evaluated but not passed; errors = status
-- other than succeeded.
CREATE OR REPLACE FUNCTION agg_summary_of(a agg_query_t, p_qs double precision[]) RETURNS json
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
      FROM rollup_rows(a.t_from, a.t_to, '7 days', a.dims, a.agents, a.models, a.meta,
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
        'rolled_up_to', (SELECT agg_ts(rolled_up_to) FROM rollup_state),
        'executions_url', agg_executions_url(a, a.t_from, a.t_to));
END $$;

-- (plpgsql: a sql function with a sub-select is not inlined, and would be
-- parsed and planned on every call)
CREATE OR REPLACE FUNCTION agg_summary(q jsonb) RETURNS json LANGUAGE plpgsql STABLE AS $$
BEGIN
    RETURN agg_summary_of(agg_query(q),
                          ARRAY(SELECT jsonb_array_elements_text(q -> 'percentiles'))::double precision[]);
END $$;

-- ===================================================================
-- Time buckets: GET /executions/timeseries, sparklines
-- ===================================================================

-- agg_plan(a, interval name) - the plan of a series (agg_plan_t, sql/006);
-- auto picks the smallest interval with at most 200 buckets. More than
-- 1,000 buckets: 422 (unless p_any_count: the heatmap folds the buckets into a week).
CREATE OR REPLACE FUNCTION agg_plan(a agg_query_t, p_name text, p_any_count boolean DEFAULT false)
RETURNS agg_plan_t
LANGUAGE plpgsql STABLE AS $$
DECLARE
    p agg_plan_t;
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
                        WHEN v_name = '6h' AND NOT p.wall THEN interval '6 hours'
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
CREATE OR REPLACE FUNCTION agg_buckets(a agg_query_t, p agg_plan_t) RETURNS SETOF timestamptz
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
-- p_p95. Without groups (the fleet's series, every widget's) one statement
-- sums the rows per bucket: the groups' ranking and the CTEs they need cost
-- a 720-bucket series more than its rows.
CREATE OR REPLACE FUNCTION agg_points(a agg_query_t, p agg_plan_t, p_group_by text, p_p95 boolean DEFAULT true)
RETURNS TABLE (k text, b timestamptz, n bigint, successes bigint, evaluated bigint,
               passed bigint, errors bigint,
               lat_avg double precision, p95 double precision, cost numeric, tokens bigint,
               lat_sum double precision, lat_n bigint)
LANGUAGE plpgsql STABLE AS $$
#variable_conflict use_column
DECLARE
    v_dims integer := a.dims | CASE p_group_by WHEN 'agent' THEN 1 WHEN 'model' THEN 2 ELSE 0 END;
    -- Fleet series whose buckets are rollup rows (5m, 1h, UTC 1d): most
    -- buckets are one row whose p95 is stored, read without its digest; the
    -- other pieces (finer rows and raw rows at the edges, pending deltas)
    -- come with theirs. Only a bucket of one such row and pending deltas
    -- is read again, with every digest.
    v_lazy boolean := p_p95 AND v_dims = 0 AND a.meta IS NULL AND p.grain = p.iv;
BEGIN
    IF p_group_by IS NULL THEN
        RETURN QUERY
        WITH g AS (
            SELECT CASE WHEN p.wall
                        THEN date_bin(p.iv, x.bucket AT TIME ZONE a.tz, timestamp '2000-01-01') AT TIME ZONE a.tz
                        ELSE date_bin(p.iv, x.bucket, p.origin) END AS b,
                   agg_sum8(x.n) AS n, agg_sum8(x.successes) AS successes,
                   agg_sum8(x.evaluated) AS evaluated, agg_sum8(x.passed) AS passed,
                   agg_sum8(x.errors) AS errors,
                   agg_sum8(x.lat_sum)::double precision / nullif(agg_sum8(x.lat_n), 0) AS lat_avg,
                   CASE WHEN count(*) = 1 AND max(x.p95) IS NOT NULL THEN max(x.p95)
                        WHEN NOT v_lazy OR count(x.digest) = count(*)
                        THEN tdigest_percentile(x.digest, 0.95) END AS p95,
                   sum(x.cost) AS cost, agg_sum8(x.prompt + x.completion) AS tokens,
                   agg_sum8(x.lat_sum)::double precision AS lat_sum, agg_sum8(x.lat_n) AS lat_n
              FROM rollup_rows(a.t_from, a.t_to, p.grain, v_dims, a.agents, a.models, a.meta, p.bin,
                               p_p95, NOT v_lazy, NOT p_p95) x
             GROUP BY 1
        )
        SELECT NULL::text, bs.b, coalesce(g.n, 0), coalesce(g.successes, 0), coalesce(g.evaluated, 0),
               coalesce(g.passed, 0), coalesce(g.errors, 0),
               g.lat_avg,
               CASE WHEN g.p95 IS NOT NULL OR NOT v_lazy OR g.n IS NULL THEN g.p95
                    -- a rollup row and pending deltas: read them again with digests
                    ELSE (SELECT tdigest_percentile(y.digest, 0.95)
                            FROM rollup_rows(greatest(bs.b, a.t_from),
                                             least(CASE WHEN p.wall
                                                        THEN ((bs.b AT TIME ZONE a.tz) + p.iv) AT TIME ZONE a.tz
                                                        ELSE bs.b + p.iv END, a.t_to),
                                             p.grain, 0, a.agents, a.models, NULL, p.bin, true) y) END,
               coalesce(g.cost, 0), coalesce(g.tokens, 0), coalesce(g.lat_sum, 0), coalesce(g.lat_n, 0)
          FROM agg_buckets(a, p) AS bs (b)
          LEFT JOIN g ON g.b = bs.b;
        RETURN;
    END IF;
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
                           p_p95, NOT v_lazy, false) x
    ), top AS (
        SELECT r.k FROM r WHERE r.k IS NOT NULL GROUP BY r.k ORDER BY agg_sum8(r.n) DESC, r.k LIMIT 10
    ), m AS (
        SELECT r.b, CASE WHEN r.k IS NULL OR r.k IN (SELECT top.k FROM top) THEN r.k
                         ELSE 'other' END AS k,
               r.n, r.successes, r.evaluated, r.passed, r.errors, r.lat_n, r.lat_sum, r.cost,
               r.tokens, r.digest, r.p95
          FROM r
    ), g AS (
        SELECT m.b, m.k, agg_sum8(m.n) AS n, agg_sum8(m.successes) AS successes,
               agg_sum8(m.evaluated) AS evaluated, agg_sum8(m.passed) AS passed,
               agg_sum8(m.errors) AS errors,
               agg_sum8(m.lat_sum)::double precision / nullif(agg_sum8(m.lat_n), 0) AS lat_avg,
               CASE WHEN count(*) = 1 AND max(m.p95) IS NOT NULL THEN max(m.p95)
                    WHEN NOT v_lazy OR count(m.digest) = count(*)
                    THEN tdigest_percentile(m.digest, 0.95) END AS p95,
               sum(m.cost) AS cost,
               agg_sum8(m.tokens) AS tokens, agg_sum8(m.lat_sum)::double precision AS lat_sum,
               agg_sum8(m.lat_n) AS lat_n
          FROM m GROUP BY m.b, m.k
    )
    SELECT keys.k, bs.b, coalesce(g.n, 0), coalesce(g.successes, 0), coalesce(g.evaluated, 0),
           coalesce(g.passed, 0), coalesce(g.errors, 0),
           g.lat_avg, g.p95,
           coalesce(g.cost, 0), coalesce(g.tokens, 0), coalesce(g.lat_sum, 0), coalesce(g.lat_n, 0)
      FROM (SELECT DISTINCT m.k FROM m) keys
     CROSS JOIN agg_buckets(a, p) AS bs (b)
      LEFT JOIN g ON g.b = bs.b AND coalesce(g.k, '') = coalesce(keys.k, '');
END $$;

-- agg_timeseries(q) - GET /executions/timeseries: the body as text, each
-- point written by concat() in the order and spacing json_build_object()
-- writes (a 720-bucket series is 240 kB: built as json it cost as much again
-- as its points, and json would be parsed once more to become text). Its
-- numbers are never NaN or infinite (counts, sums and digests of finite
-- values), so their text is JSON; keys and names pass through to_json().
-- Each bucket's time and link ends are written once for all series.
DO $$
BEGIN   -- it answered json before: another return type needs a new function
    IF (SELECT prorettype FROM pg_proc WHERE oid = to_regprocedure('agg_timeseries(jsonb)')) = 'json'::regtype THEN
        DROP FUNCTION agg_timeseries(jsonb);
    END IF;
END $$;
CREATE OR REPLACE FUNCTION agg_timeseries(q jsonb) RETURNS text LANGUAGE plpgsql STABLE AS $$
DECLARE
    a agg_query_t := agg_query(q);
    p agg_plan_t := agg_plan(a, q ->> 'interval');
    v_group text := q ->> 'group_by';
    v_series text;
BEGIN
    WITH pts AS MATERIALIZED (SELECT * FROM agg_points(a, p, v_group)),
         -- each bucket's time, and its [start, end) within the range for the
         -- links (a bucket's end is the next one's start)
         -- (its time formatted once: to_char costs more than the rest)
         bs AS MATERIALIZED (SELECT g.b, agg_ts(g.b) AS t FROM agg_buckets(a, p) AS g (b)),
         bt AS (
             SELECT bs.b, bs.t,
                    CASE WHEN bs.b >= a.t_from THEN replace(bs.t, ':', '%3A')
                         ELSE agg_url_time(a.t_from) END AS u_from,
                    coalesce(replace(lead(bs.t) OVER (ORDER BY bs.b), ':', '%3A'),
                             agg_url_time(least(CASE WHEN p.wall
                                                     THEN ((bs.b AT TIME ZONE a.tz) + p.iv) AT TIME ZONE a.tz
                                                     ELSE bs.b + p.iv END, a.t_to))) AS u_to
               FROM bs),
         -- the filters part of each series' links, made once
         filters AS MATERIALIZED (
             SELECT d.k, CASE WHEN d.k = 'other' OR (v_group = 'model' AND d.k = '(none)') THEN NULL
                              ELSE agg_executions_filter(
                                       a,
                                       CASE WHEN v_group = 'agent' THEN ARRAY[d.k::uuid] END,
                                       CASE WHEN v_group = 'model' THEN ARRAY[d.k] END) END AS filter
               FROM (SELECT DISTINCT pts.k FROM pts) d)
    SELECT string_agg(concat('{"key" : ', coalesce(to_json(s.k)::text, 'null'),
                             ', "name" : ', coalesce(to_json(CASE WHEN v_group IS NULL THEN 'All'
                                                                  WHEN s.k = 'other' THEN 'Other'
                                                                  WHEN v_group = 'agent'
                                                                  THEN (SELECT ag.name FROM agents ag
                                                                         WHERE ag.id = s.k::uuid)
                                                                  ELSE s.k END)::text, 'null'),
                             ', "points" : [', s.points, ']}'),
                      ', ' ORDER BY s.k = 'other', s.total DESC, s.k)
      INTO v_series
      FROM (SELECT pt.k, sum(pt.n) AS total,
                   string_agg(concat('{"t" : "', bt.t, '", "executions" : ', pt.n,
                                     ', "success_rate" : ', coalesce(agg_rate(pt.successes, pt.n)::text, 'null'),
                                     ', "pass_rate" : ', coalesce(agg_rate(pt.passed, pt.evaluated)::text, 'null'),
                                     ', "avg_latency_ms" : ', coalesce(pt.lat_avg::text, 'null'),
                                     ', "p95_latency_ms" : ', coalesce(pt.p95::text, 'null'),
                                     ', "cost_usd" : ', pt.cost, ', "tokens" : ', pt.tokens,
                                     ', "executions_url" : ',
                                     CASE WHEN f.filter IS NULL THEN 'null'
                                          ELSE concat('"/api/v1/executions?from=', bt.u_from, '&to=', bt.u_to,
                                                      f.filter, '"') END,
                                     '}'),
                              ', ' ORDER BY pt.b) AS points
              FROM pts pt
              JOIN bt ON bt.b = pt.b
              JOIN filters f ON f.k IS NOT DISTINCT FROM pt.k
             GROUP BY pt.k) s;
    RETURN concat('{"range" : ', agg_range_json(a), ', "interval" : ', to_json(p.name),
                  ', "tz" : ', to_json(a.tz), ', "group_by" : ', coalesce(to_json(v_group)::text, 'null'),
                  ', "buckets" : ', p.n, ', "series" : [', v_series, '], "source" : ',
                  CASE WHEN a.meta IS NULL AND p.grain IS NOT NULL THEN '"rollup"' ELSE '"raw"' END, '}');
END $$;

-- ===================================================================
-- Agents: GET /agents/summary, /agents/{id}/metrics, /health
-- ===================================================================

-- agg_status(executions, successes) - from the success rate: healthy >=
-- 0.9, warning >= 0.7, else critical; inactive without executions in the
-- range.
CREATE OR REPLACE FUNCTION agg_status(p_n bigint, p_successes bigint) RETURNS text
LANGUAGE sql IMMUTABLE AS $$
    SELECT CASE WHEN coalesce(p_n, 0) = 0 THEN 'inactive'
                WHEN agg_rate(p_successes, p_n) >= 0.9 THEN 'healthy'
                WHEN agg_rate(p_successes, p_n) >= 0.7 THEN 'warning'
                ELSE 'critical' END
$$;

-- agg_system_status(critical, warning) - the fleet's status from its agent
-- counts (seed 000): critical when any agent is critical, degraded when any
-- is in warning, else healthy.
CREATE OR REPLACE FUNCTION agg_system_status(p_critical bigint, p_warning bigint) RETURNS text
LANGUAGE sql IMMUTABLE AS $$
    SELECT CASE WHEN p_critical > 0 THEN 'critical' WHEN p_warning > 0 THEN 'degraded'
                ELSE 'healthy' END
$$;

-- agg_agent_sums(a) - per agent with executions in the range: the sums a
-- dashboard's status board, agent table and cost-by-agent chart all read,
-- computed once for them (dashboard_data). Sums only (last_at NULL: none
-- of them shows it), so that the edges read at most 2.5 minutes of raw rows.
CREATE OR REPLACE FUNCTION agg_agent_sums(a agg_query_t) RETURNS agg_agent_sums_t[]
LANGUAGE plpgsql STABLE AS $$
BEGIN
    RETURN (
        SELECT coalesce(array_agg(x::agg_agent_sums_t), '{}')
          FROM (SELECT r.agent_id, agg_sum8(r.n) AS n, agg_sum8(r.successes) AS successes,
                       agg_sum8(r.evaluated) AS evaluated,
                       agg_sum8(r.passed) AS passed, agg_sum8(r.errors) AS errors,
                       agg_sum8(r.lat_sum)::double precision AS lat_sum, agg_sum8(r.lat_n) AS lat_n,
                       sum(r.cost) AS cost, agg_sum8(r.prompt) AS prompt,
                       agg_sum8(r.completion) AS completion, agg_sum8(r.cache) AS cache,
                       NULL::timestamptz AS last_at
                  FROM rollup_rows(a.t_from, a.t_to, '7 days', a.dims | 1, a.agents, a.models, a.meta,
                                   '1 day', false, p_sums_only => true) r
                 GROUP BY r.agent_id
                HAVING sum(r.n) > 0) x);
END $$;

-- agg_agents_of(a, p95, sums) - one row per active agent, or per agent the filter
-- names (retired ones too):
-- its status, numbers over the range, active version, open canary
-- (p95_latency_ms null unless p_p95). Besides the item, the columns a
-- caller that needs only those reads (the item, its links and times, are
-- then not made: the function is inlined).
DROP FUNCTION IF EXISTS agg_agents_of(agg_query_t, boolean, agg_agent_sums_t[]);  -- before success_rate
CREATE OR REPLACE FUNCTION agg_agents_of(a agg_query_t, p_p95 boolean DEFAULT true,
                                         p_sums agg_agent_sums_t[] DEFAULT NULL)
RETURNS TABLE (id uuid, name text, status text, n bigint, success_rate double precision,
               pass_rate double precision, canary_status text, item json)
LANGUAGE sql STABLE AS $$
    WITH r AS (
        SELECT x.agent_id, agg_sum8(x.n) AS n, agg_sum8(x.successes) AS successes,
               agg_sum8(x.evaluated) AS evaluated,
               agg_sum8(x.passed) AS passed, agg_sum8(x.errors) AS errors,
               agg_sum8(x.lat_sum)::double precision / nullif(agg_sum8(x.lat_n), 0) AS lat_avg,
               tdigest_percentile(x.digest, 0.95) AS p95, sum(x.cost) AS cost,
               max(x.last_at) AS last_at
          FROM rollup_rows(a.t_from, a.t_to, '7 days', a.dims | 1, a.agents, a.models, a.meta,
                           '1 day', p_p95) x
         WHERE p_sums IS NULL
         GROUP BY x.agent_id
        UNION ALL
        SELECT s.agent_id, s.n, s.successes, s.evaluated, s.passed, s.errors,
               s.lat_sum / nullif(s.lat_n, 0), NULL, s.cost, s.last_at
          FROM unnest(p_sums) s
         WHERE p_sums IS NOT NULL
    )
    SELECT g.id, g.name, agg_status(r.n, r.successes), coalesce(r.n, 0),
           agg_rate(r.successes, r.n), agg_rate(r.passed, r.evaluated), c.status,
           json_build_object(
               'agent_id', g.id, 'name', g.name, 'status', agg_status(r.n, r.successes),
               'executions', coalesce(r.n, 0), 'successes', coalesce(r.successes, 0),
               'evaluated', coalesce(r.evaluated, 0), 'passed', coalesce(r.passed, 0),
               'success_rate', agg_rate(r.successes, r.n),
               'pass_rate', agg_rate(r.passed, r.evaluated),
               'avg_latency_ms', r.lat_avg, 'p95_latency_ms', r.p95,
               'avg_cost_usd', (r.cost / nullif(r.n, 0))::double precision,
               'errors', coalesce(r.errors, 0), 'last_execution_at', agg_ts(r.last_at),
               'active_version', v.version, 'canary_status', c.status,
               'executions_url', agg_executions_url(a, a.t_from, a.t_to, ARRAY[g.id]))
      FROM agents g
      LEFT JOIN r ON r.agent_id = g.id
      -- at most one of each per agent (unique partial indexes, sql/001)
      LEFT JOIN agent_versions v ON v.agent_id = g.id AND v.is_active
      LEFT JOIN canary_deployments c ON c.agent_id = g.id AND c.status IN ('in_progress', 'paused')
     WHERE (g.is_active OR a.agents IS NOT NULL) AND (a.agents IS NULL OR g.id = ANY (a.agents))
$$;

CREATE OR REPLACE FUNCTION agg_agents(q jsonb) RETURNS json LANGUAGE plpgsql STABLE AS $$
DECLARE
    a agg_query_t := agg_query(q);
BEGIN
    RETURN json_build_object(
        'range', agg_range_json(a),
        'items', coalesce((SELECT json_agg(s.item ORDER BY s.n DESC, s.name)
                             FROM agg_agents_of(a) s), '[]'));
END $$;

CREATE OR REPLACE FUNCTION agg_agent_metrics(q jsonb) RETURNS json LANGUAGE plpgsql STABLE AS $$
DECLARE
    a agg_query_t := agg_query(q);
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
CREATE OR REPLACE FUNCTION agg_health_of(a agg_query_t) RETURNS json LANGUAGE plpgsql STABLE AS $$
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
        'as_of', agg_ts(agg_now() - interval '1 second'));
END $$;

CREATE OR REPLACE FUNCTION agg_health(q jsonb) RETURNS json LANGUAGE sql STABLE AS $$
    SELECT agg_health_of(agg_query(q))
$$;

-- ===================================================================
-- Breakdowns: GET /errors/breakdown, /costs/breakdown
-- ===================================================================

-- agg_any_error(from, to, a) - whether an execution of [from, to) passing
-- a's agent and model filters has an error category.
-- (plpgsql: a SQL function that is not inlined is planned on every call)
CREATE OR REPLACE FUNCTION agg_any_error(p_from timestamptz, p_to timestamptz, a agg_query_t) RETURNS boolean
LANGUAGE plpgsql STABLE AS $$
BEGIN
    RETURN EXISTS (SELECT 1 FROM executions e
                    WHERE e.error_category IS NOT NULL
                      AND e.started_at >= p_from AND e.started_at < p_to
                      AND (a.agents IS NULL OR e.agent_id = ANY (a.agents))
                      AND (a.models IS NULL OR e.model = ANY (a.models)));
END $$;

-- agg_error_rows(a) - error counts per category over [from, to): whole
-- days, hours and 5 minutes from the error rollups and their pending
-- deltas, the partial 5 minutes at the edges (and any metadata filter) from
-- raw rows. As rollup_rows() (12_aggregates_reading.sql), one body made
-- twice: agg_error_rows_all() for calls without a filter keeps its plan for
-- the session, agg_error_rows_some() plans each filtered call with its
-- values; no JIT in either.
DO $do$
DECLARE
    v_body text := $body$
DECLARE
    -- [f5, t5): whole 5-minute buckets; [h1, h2): whole hours; [d1, d2): whole days
    f5 timestamptz := rollup_ceil(a.t_from, '5 minutes');
    t5 timestamptz := rollup_floor(a.t_to, '5 minutes');
    h1 timestamptz;  h2 timestamptz;
    d1 timestamptz;  d2 timestamptz;
BEGIN
    -- As in rollup_rows: a partial bucket at an edge is read whole from the
    -- rollups when no error of the filters lies in its part outside the
    -- range (the live bucket at the end of "the last 24h"), else from raw rows.
    IF f5 > a.t_from AND NOT agg_any_error(rollup_floor(a.t_from, '5 minutes'), a.t_from, a) THEN
        f5 := rollup_floor(a.t_from, '5 minutes');
    END IF;
    IF t5 < a.t_to AND NOT agg_any_error(a.t_to, rollup_ceil(a.t_to, '5 minutes'), a) THEN
        t5 := rollup_ceil(a.t_to, '5 minutes');
    END IF;
    IF f5 > t5 OR a.meta IS NOT NULL THEN          -- inside one bucket, or metadata: raw
        f5 := a.t_to;  t5 := a.t_to;
    END IF;
    h1 := least(rollup_ceil(f5, '1 hour'), t5);
    h2 := greatest(h1, rollup_floor(t5, '1 hour'));
    d1 := least(rollup_ceil(h1, '1 day'), h2);
    d2 := greatest(d1, rollup_floor(h2, '1 day'));
    -- f5 <= h1 <= d1 <= d2 <= h2 <= t5
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
            SELECT r.category, r.n, r.example FROM rollup_errors_5m r
             WHERE r.fleet = (a.agents IS NULL AND a.models IS NULL)
               AND (r.bucket >= f5 AND r.bucket < h1 OR r.bucket >= h2 AND r.bucket < t5)
               AND (a.agents IS NULL OR r.agent_id = ANY (a.agents))
               AND (a.models IS NULL OR r.model = ANY (a.models))
            UNION ALL
            SELECT r.category, r.n, r.example FROM rollup_errors_delta r
             WHERE r.bucket >= f5 AND r.bucket < t5
               AND (a.agents IS NULL OR r.agent_id = ANY (a.agents))
               AND (a.models IS NULL OR r.model = ANY (a.models))
            UNION ALL
            SELECT e.error_category, 1, e.error_message FROM executions e
             WHERE e.error_category IS NOT NULL
               AND (e.started_at >= a.t_from AND e.started_at < f5
                    OR e.started_at >= t5 AND e.started_at < a.t_to)
               AND (a.agents IS NULL OR e.agent_id = ANY (a.agents))
               AND (a.models IS NULL OR e.model = ANY (a.models))
               AND (a.meta IS NULL
                    OR NOT EXISTS (SELECT 1 FROM jsonb_each_text(a.meta) m
                                    WHERE e.metadata ->> m.key IS DISTINCT FROM m.value))) x
     GROUP BY x.category;
END $body$;
BEGIN
    -- (pieces are few and small: a parallel plan only adds start-up time)
    EXECUTE format('CREATE OR REPLACE FUNCTION agg_error_rows_all(a agg_query_t)
                    RETURNS TABLE (category text, n bigint, example text) LANGUAGE plpgsql STABLE
                    SET plan_cache_mode = force_generic_plan SET jit = off
                    SET max_parallel_workers_per_gather = 0 AS %L', v_body);
    EXECUTE format('CREATE OR REPLACE FUNCTION agg_error_rows_some(a agg_query_t)
                    RETURNS TABLE (category text, n bigint, example text) LANGUAGE plpgsql STABLE
                    SET plan_cache_mode = auto SET jit = off
                    SET max_parallel_workers_per_gather = 0 AS %L', v_body);
END $do$;

CREATE OR REPLACE FUNCTION agg_error_rows(a agg_query_t)
RETURNS TABLE (category text, n bigint, example text)
LANGUAGE plpgsql STABLE AS $$
BEGIN
    IF a.agents IS NULL AND a.models IS NULL AND a.meta IS NULL THEN
        RETURN QUERY SELECT * FROM agg_error_rows_all(a);
    ELSE
        RETURN QUERY SELECT * FROM agg_error_rows_some(a);
    END IF;
END $$;

-- agg_errors_of(a) - categories by count, with the share of all errors,
-- an example message and the trend against the previous period.
CREATE OR REPLACE FUNCTION agg_errors_of(a agg_query_t) RETURNS json LANGUAGE plpgsql STABLE AS $$
BEGIN
    RETURN (
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
                         'change_percent', t.change_percent, 'trend', t.trend,
                         'executions_url', agg_executions_url(
                             a, a.t_from, a.t_to, NULL, NULL,
                             jsonb_build_object('error_category', cur.category)))
                       ORDER BY cur.n DESC, cur.category) FILTER (WHERE cur.category IS NOT NULL), '[]'))
          FROM total
          LEFT JOIN cur ON true
          LEFT JOIN prev ON prev.category = cur.category
          LEFT JOIN LATERAL agg_trend(cur.n, prev.n) t ON true
         GROUP BY total.n);
END $$;

CREATE OR REPLACE FUNCTION agg_errors(q jsonb) RETURNS json LANGUAGE sql STABLE AS $$
    SELECT agg_errors_of(agg_query(q))
$$;

-- agg_cost_rows(a, group_by, sums) - cost per agent or model (k: the
-- agent id or the model, '(none)' for runs without one), most first (o
-- from 1), with its share of the total and the agent's name; total is the
-- cost of the whole range on every row. Agents from the per-agent sums
-- when given (dashboard_data). Inlined into its callers.
CREATE OR REPLACE FUNCTION agg_cost_rows(a agg_query_t, p_group_by text,
                                         p_sums agg_agent_sums_t[] DEFAULT NULL)
RETURNS TABLE (o bigint, k text, name text, cost numeric, n bigint, prompt bigint,
               completion bigint, cache bigint, percentage double precision, total numeric)
LANGUAGE sql STABLE AS $$
    WITH r AS (
        SELECT CASE WHEN p_group_by = 'model' THEN coalesce(x.model, '(none)')
                    ELSE x.agent_id::text END AS k,
               sum(x.cost) AS cost, agg_sum8(x.n) AS n, agg_sum8(x.prompt) AS prompt,
               agg_sum8(x.completion) AS completion, agg_sum8(x.cache) AS cache
          FROM rollup_rows(a.t_from, a.t_to, '7 days',
                           a.dims | CASE WHEN p_group_by = 'model' THEN 2 ELSE 1 END,
                           a.agents, a.models, a.meta, '1 day', false) x
         WHERE p_sums IS NULL OR p_group_by = 'model'
         GROUP BY 1
        UNION ALL
        SELECT s.agent_id::text, s.cost, s.n, s.prompt, s.completion, s.cache
          FROM unnest(p_sums) s
         WHERE p_sums IS NOT NULL AND p_group_by <> 'model'
    ), total AS (SELECT coalesce(sum(r.cost), 0) AS cost FROM r)
    SELECT row_number() OVER (ORDER BY r.cost DESC, r.k), r.k,
           CASE WHEN p_group_by = 'model' THEN r.k ELSE g.name END,
           r.cost, r.n, r.prompt, r.completion, r.cache,
           (r.cost * 100 / nullif(total.cost, 0))::double precision, total.cost
      FROM total
      JOIN r ON r.k IS NOT NULL
      LEFT JOIN agents g ON g.id = CASE WHEN p_group_by <> 'model' THEN r.k::uuid END
$$;

-- agg_costs_of(a, group_by, sums) - the cost breakdown of a range: cost per
-- agent or model, most first, each with its runs' link.
CREATE OR REPLACE FUNCTION agg_costs_of(a agg_query_t, p_group_by text,
                                        p_sums agg_agent_sums_t[] DEFAULT NULL)
RETURNS json LANGUAGE plpgsql STABLE AS $$
BEGIN
    RETURN (
        SELECT json_build_object(
            'range', agg_range_json(a), 'group_by', p_group_by,
            'total_cost_usd', coalesce(max(r.total), 0),
            'items', coalesce(json_agg(json_build_object(
                         'key', r.k, 'name', r.name, 'cost_usd', r.cost, 'percentage', r.percentage,
                         'executions', r.n,
                         'cost_per_execution', (r.cost / nullif(r.n, 0))::double precision,
                         'tokens', json_build_object('input', r.prompt, 'output', r.completion,
                                                     'cache_read', r.cache,
                                                     'total', r.prompt + r.completion),
                         'executions_url', CASE
                             WHEN p_group_by = 'model' AND r.k = '(none)' THEN NULL
                             WHEN p_group_by = 'model' THEN agg_executions_url(a, a.t_from, a.t_to, NULL, ARRAY[r.k])
                             ELSE agg_executions_url(a, a.t_from, a.t_to, ARRAY[r.k::uuid]) END)
                       ORDER BY r.o), '[]'))
          FROM agg_cost_rows(a, p_group_by, p_sums) r);
END $$;

CREATE OR REPLACE FUNCTION agg_costs(q jsonb) RETURNS json LANGUAGE sql STABLE AS $$
    SELECT agg_costs_of(agg_query(q), coalesce(q ->> 'group_by', 'agent'))
$$;

-- ===================================================================
-- GET /metrics/{name}, /heatmap
-- ===================================================================

CREATE OR REPLACE FUNCTION agg_metric_unit(p_name text) RETURNS text LANGUAGE sql IMMUTABLE AS $$
    SELECT CASE p_name WHEN 'success_rate' THEN '%' WHEN 'pass_rate' THEN '%'
                       WHEN 'error_rate' THEN '%'
                       WHEN 'total_executions' THEN 'count' WHEN 'avg_latency' THEN 'ms'
                       WHEN 'p95_latency' THEN 'ms' WHEN 'total_cost' THEN 'usd' END
$$;

-- agg_metric_value(name, n, successes, errors, avg latency, p95, cost,
-- evaluated, passed) - one metric from the sums (rates in percent, as seed
-- 000 shows them).
CREATE OR REPLACE FUNCTION agg_metric_value(p_name text, p_n bigint, p_successes bigint, p_errors bigint,
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
CREATE OR REPLACE FUNCTION agg_metric_at(a agg_query_t, p_name text) RETURNS double precision
LANGUAGE plpgsql STABLE AS $$
BEGIN
    RETURN (
        SELECT agg_metric_value(p_name, agg_sum8(x.n), agg_sum8(x.successes),
                                agg_sum8(x.errors),
                                agg_sum8(x.lat_sum)::double precision / nullif(agg_sum8(x.lat_n), 0),
                                CASE WHEN p_name = 'p95_latency' THEN tdigest_percentile(x.digest, 0.95) END,
                                sum(x.cost), agg_sum8(x.evaluated), agg_sum8(x.passed))
          FROM rollup_rows(a.t_from, a.t_to, '7 days', a.dims, a.agents, a.models, a.meta, '1 day',
                           p_name = 'p95_latency') x);
END $$;

-- agg_bundle(a, p95) - what the metric cards, gauges and line charts of
-- one range show, computed once for all of them (agg_bundle_t, sql/006):
-- the points of the range's automatic interval (their sums are the
-- range's numbers) and the sums of the previous period; p95 values only
-- when p95 is asked for.
CREATE OR REPLACE FUNCTION agg_bundle(a agg_query_t, p_p95 boolean) RETURNS agg_bundle_t
LANGUAGE plpgsql STABLE AS $$
BEGIN
    RETURN (
        WITH pts AS (
            SELECT * FROM agg_points(a, agg_plan(a, 'auto'), NULL, p_p95)
        ), b AS (
            SELECT agg_shift(a) AS a
        ), prev AS (
            SELECT agg_sum8(x.n) AS n, agg_sum8(x.successes) AS successes,
                   agg_sum8(x.evaluated) AS evaluated, agg_sum8(x.passed) AS passed,
                   agg_sum8(x.errors) AS errors,
                   agg_sum8(x.lat_sum)::double precision / nullif(agg_sum8(x.lat_n), 0) AS lat_avg,
                   tdigest_percentile(x.digest, 0.95) AS p95, sum(x.cost) AS cost
              FROM b, rollup_rows((b.a).t_from, (b.a).t_to, '7 days', (b.a).dims, (b.a).agents,
                                  (b.a).models, (b.a).meta, '1 day', p_p95,
                                  p_sums_only => NOT p_p95) x
            HAVING sum(x.n) > 0   -- no executions: no row (pieces of p_sums_only may sum to zero)
        )
        SELECT ROW(
            (SELECT array_agg(ROW(pts.b, ROW(pts.n, pts.successes, pts.evaluated, pts.passed,
                                             pts.errors, pts.lat_avg, pts.p95,
                                             pts.cost)::agg_totals_t)::agg_point_t
                              ORDER BY pts.b) FROM pts),
            (SELECT ROW(agg_sum8(pts.n), agg_sum8(pts.successes), agg_sum8(pts.evaluated),
                        agg_sum8(pts.passed), agg_sum8(pts.errors),
                        sum(pts.lat_sum) / nullif(sum(pts.lat_n), 0),
                        CASE WHEN p_p95 THEN agg_metric_at(a, 'p95_latency') END,
                        sum(pts.cost))::agg_totals_t
               FROM pts),
            (SELECT ROW(prev.n, prev.successes, prev.evaluated, prev.passed, prev.errors,
                        prev.lat_avg, prev.p95, prev.cost)::agg_totals_t
               FROM prev))::agg_bundle_t);
END $$;

-- agg_totals_value(name, totals) - a metric from a bundle's sums.
CREATE OR REPLACE FUNCTION agg_totals_value(p_name text, v agg_totals_t) RETURNS double precision
LANGUAGE sql IMMUTABLE AS $$
    SELECT agg_metric_value(p_name, v.n, v.successes, v.errors, v.lat_avg, v.p95, v.cost,
                            v.evaluated, v.passed)
$$;

-- agg_metric_from(a, name, bundle) - value, previous period, trend, and a
-- sparkline of the last 20 buckets of the range's automatic interval.
CREATE OR REPLACE FUNCTION agg_metric_from(a agg_query_t, p_name text, p_bundle agg_bundle_t)
RETURNS json LANGUAGE plpgsql STABLE AS $$
DECLARE
    v_now double precision;
    v_before double precision;
    t record;
BEGIN
    IF agg_metric_unit(p_name) IS NULL THEN
        RAISE EXCEPTION USING ERRCODE = 'UF404', MESSAGE = format(
            'No metric is named "%s"; the metrics are success_rate, pass_rate, total_executions, avg_latency, p95_latency, total_cost, error_rate.', p_name);
    END IF;
    v_now := agg_totals_value(p_name, p_bundle.current);
    v_before := agg_totals_value(p_name, p_bundle.previous);
    SELECT * INTO t FROM agg_trend(v_now, v_before);
    RETURN json_build_object(
        'name', p_name, 'range', agg_range_json(a), 'value', v_now,
        'unit', agg_metric_unit(p_name), 'previous_value', v_before,
        'change_percent', t.change_percent, 'trend', t.trend,
        'sparkline', coalesce((
            SELECT json_agg(s.v ORDER BY s.o)
              FROM (SELECT e.o, agg_totals_value(p_name, e.totals) AS v
                      FROM unnest(p_bundle.points) WITH ORDINALITY AS e (t, totals, o)
                     ORDER BY e.o DESC LIMIT 20) s), '[]'));
END $$;

CREATE OR REPLACE FUNCTION agg_metric_of(a agg_query_t, p_name text) RETURNS json LANGUAGE sql STABLE AS $$
    SELECT agg_metric_from(a, p_name, agg_bundle(a, p_name = 'p95_latency'))
$$;

CREATE OR REPLACE FUNCTION agg_metric(q jsonb) RETURNS json LANGUAGE sql STABLE AS $$
    SELECT agg_metric_of(agg_query(q), q ->> 'name')
$$;

-- agg_heatmap_of(a, metric) - weekday (Monday first) x hour of day in tz:
-- executions, error_rate (percent) or p95_latency; null where no runs.
CREATE OR REPLACE FUNCTION agg_heatmap_of(a agg_query_t, p_metric text) RETURNS json
LANGUAGE plpgsql STABLE AS $$
DECLARE
    p agg_plan_t := agg_plan(a, '1h', true);
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

CREATE OR REPLACE FUNCTION agg_heatmap(q jsonb) RETURNS json LANGUAGE sql STABLE AS $$
    SELECT agg_heatmap_of(agg_query(q, '7d'), coalesce(q ->> 'metric', 'executions'))
$$;

-- ===================================================================
-- Plans kept for the session
-- ===================================================================

-- The statements of these functions read rollup_rows(), agg_error_rows()
-- and the like, whose plans do not depend on the values: planned once per
-- session (force_generic_plan) instead of on every call, as PostgreSQL
-- chose (a plan for the values of each call is estimated cheaper than one
-- for any values). At 10M executions planning was about a quarter of a
-- dashboard's time in the database. The setting holds for what they call,
-- except where a function sets its own (rollup_rows_some() and
-- agg_error_rows_some(): their plans depend on the values). The time series
-- too, since the fleet's points are one statement of their own (a 720-point
-- series at 1M: 5.2 ms planned per call, 4.8 once per session). No JIT: a plan for any values is estimated dear enough
-- to be compiled, ~200 ms, for statements of a millisecond.
ALTER FUNCTION agg_summary_of SET plan_cache_mode = force_generic_plan SET jit = off;
ALTER FUNCTION agg_agent_sums SET plan_cache_mode = force_generic_plan SET jit = off;
ALTER FUNCTION agg_errors_of SET plan_cache_mode = force_generic_plan SET jit = off;
ALTER FUNCTION agg_bundle SET plan_cache_mode = force_generic_plan SET jit = off;
ALTER FUNCTION agg_timeseries SET plan_cache_mode = force_generic_plan SET jit = off;

-- end of 13_aggregates_endpoints
