-- 28_metrics.sql - GET /metrics: the workers' flushes (metrics_flush(),
-- fcgi/metrics.c) and the whole Prometheus text exposition (format 0.0.4)
-- made here in one call (metrics_text()).
--
-- What it says, and from where:
--   * the workers' own counters (017_metrics.sql), flushed every 5 s with
--     their heartbeat, per group and host: requests by method, route and
--     status with a latency histogram in seconds, busy seconds, database
--     errors, rows ingested, worker restarts, evaluator cycles and their
--     seconds; workers alive (a flush in the last 15 s);
--   * read from the tables when scraped: rollup lag (seconds since the last
--     rollup_refresh()), notifications by status and their attempts by
--     result, agents by state (and silent), and the fleet's executions and
--     cost by agent and model, from the rollups (exact: folded and pending).
-- One scrape covers every host: the counters of all of them are in the
-- database (scrape one address; each series has its host label).
-- Bounded: at most p_max_series agent/model pairs (the most executions
-- first); fleetdash_metrics_series_dropped says how many more there were.
--
-- Repeatable (sql/README.md): applied again whenever it changes.

-- metrics_bounds() - the upper bounds (seconds) of the latency buckets; a
-- flush carries one count per bound and one for what is past the last.
CREATE OR REPLACE FUNCTION metrics_bounds() RETURNS double precision[]
LANGUAGE sql IMMUTABLE PARALLEL SAFE AS $$
    SELECT '{0.001,0.0025,0.005,0.01,0.025,0.05,0.1,0.25,0.5,1,2.5,5,10}'::double precision[]
$$;

-- metrics_flush(group, host, pid, methods, routes, statuses, counts, sums,
-- buckets, names, values) - adds one worker's deltas since its last flush:
-- request rows i (methods[i] .. sums[i], buckets[(i-1)*b+1 .. i*b] with b =
-- cardinality(metrics_bounds()) + 1), counters names[j] += values[j]; and
-- notes the worker alive. One statement per flush.
CREATE OR REPLACE FUNCTION metrics_flush(p_group text, p_host text, p_pid integer,
                                         p_methods text[], p_routes text[], p_statuses integer[],
                                         p_counts bigint[], p_sums double precision[],
                                         p_buckets bigint[], p_names text[],
                                         p_values double precision[])
RETURNS void LANGUAGE plpgsql AS $$
DECLARE
    b integer := cardinality(metrics_bounds()) + 1;
BEGIN
    IF cardinality(p_buckets) <> b * cardinality(p_methods) THEN
        RAISE EXCEPTION 'metrics_flush: % buckets for % rows (% each)',
            cardinality(p_buckets), cardinality(p_methods), b;
    END IF;
    INSERT INTO metrics_requests AS m (group_name, host, method, route, status, count,
                                       duration_sum, buckets)
    SELECT p_group, p_host, r.method, r.route, r.status, r.count, r.sum,
           p_buckets[(r.i - 1) * b + 1 : r.i * b]
      FROM unnest(p_methods, p_routes, p_statuses, p_counts, p_sums)
           WITH ORDINALITY AS r(method, route, status, count, sum, i)
        ON CONFLICT (group_name, host, method, route, status) DO UPDATE
       SET count = m.count + excluded.count,
           duration_sum = m.duration_sum + excluded.duration_sum,
           buckets = (SELECT array_agg(x + y ORDER BY k)
                        FROM unnest(m.buckets, excluded.buckets) WITH ORDINALITY AS u(x, y, k));
    INSERT INTO metrics_counters AS c (group_name, host, name, value)
    SELECT p_group, p_host, n.name, n.value FROM unnest(p_names, p_values) AS n(name, value)
        ON CONFLICT (group_name, host, name) DO UPDATE SET value = c.value + excluded.value;
    INSERT INTO metrics_workers (group_name, host, pid, seen_at)
    VALUES (p_group, p_host, p_pid, now())
        ON CONFLICT (group_name, host, pid) DO UPDATE SET seen_at = excluded.seen_at;
    -- workers gone for an hour are forgotten (pids are reused)
    DELETE FROM metrics_workers WHERE seen_at < now() - interval '1 hour';
END $$;

-- metrics_label(v) - v as a label value of the text format (\, " and
-- newline escaped).
CREATE OR REPLACE FUNCTION metrics_label(v text) RETURNS text
LANGUAGE sql IMMUTABLE PARALLEL SAFE AS $$
    SELECT '"' || replace(replace(replace(coalesce(v, ''), '\', '\\'), '"', '\"'), E'\n', '\n')
           || '"'
$$;

-- metrics_family(name, type, help, lines) - one metric family: its HELP and
-- TYPE lines and its samples (each "name{labels} value"), or nothing when
-- it has none and is not a gauge of the whole (lines NULL).
CREATE OR REPLACE FUNCTION metrics_family(p_name text, p_type text, p_help text, p_lines text)
RETURNS text LANGUAGE sql IMMUTABLE AS $$
    SELECT CASE WHEN p_lines IS NULL OR p_lines = '' THEN ''
                ELSE format(E'# HELP %s %s\n# TYPE %s %s\n%s\n', p_name, p_help, p_name, p_type,
                            p_lines) END
$$;

-- metrics_text(max_series) - the whole exposition.
CREATE OR REPLACE FUNCTION metrics_text(p_max_series integer) RETURNS text
LANGUAGE plpgsql STABLE AS $$
DECLARE
    bounds double precision[] := metrics_bounds();
    out text := '';
    v_lines text;
    v_dropped bigint;
BEGIN
    -- requests by status
    SELECT string_agg(format('fleetdash_http_requests_total{group=%s,host=%s,method=%s,route=%s,status="%s"} %s',
                             metrics_label(group_name), metrics_label(host), metrics_label(method),
                             metrics_label(route), status, count),
                      E'\n' ORDER BY group_name, host, route, method, status)
      INTO v_lines FROM metrics_requests;
    out := out || metrics_family('fleetdash_http_requests_total', 'counter',
                                 'Requests answered by the workers, by group, host, method, route pattern and status.',
                                 v_lines);
    -- the latency histogram, per route (every status)
    WITH per_route AS (
        SELECT group_name, host, method, route, sum(count) AS count, sum(duration_sum) AS total,
               (SELECT array_agg(s ORDER BY k) FROM (
                    SELECT k, sum(x) AS s
                      FROM metrics_requests m2, unnest(m2.buckets) WITH ORDINALITY AS u(x, k)
                     WHERE (m2.group_name, m2.host, m2.method, m2.route)
                           = (m.group_name, m.host, m.method, m.route)
                     GROUP BY k) t) AS buckets
          FROM metrics_requests m
         GROUP BY group_name, host, method, route),
    samples AS (
        SELECT p.group_name, p.host, p.route, p.method, 0 AS part, k AS i,
               format('fleetdash_http_request_duration_seconds_bucket{group=%s,host=%s,method=%s,route=%s,le="%s"} %s',
                      metrics_label(p.group_name), metrics_label(p.host), metrics_label(p.method),
                      metrics_label(p.route),
                      CASE WHEN k <= cardinality(bounds) THEN bounds[k]::text ELSE '+Inf' END,
                      (SELECT sum(x) FROM unnest(p.buckets[1:k]) AS x)) AS line
          FROM per_route p, generate_series(1, cardinality(bounds) + 1) AS k
        UNION ALL
        SELECT p.group_name, p.host, p.route, p.method, 1, 0,
               format('fleetdash_http_request_duration_seconds_sum{group=%s,host=%s,method=%s,route=%s} %s',
                      metrics_label(p.group_name), metrics_label(p.host), metrics_label(p.method),
                      metrics_label(p.route), p.total)
          FROM per_route p
        UNION ALL
        SELECT p.group_name, p.host, p.route, p.method, 2, 0,
               format('fleetdash_http_request_duration_seconds_count{group=%s,host=%s,method=%s,route=%s} %s',
                      metrics_label(p.group_name), metrics_label(p.host), metrics_label(p.method),
                      metrics_label(p.route), p.count)
          FROM per_route p)
    SELECT string_agg(line, E'\n' ORDER BY group_name, host, route, method, part, i)
      INTO v_lines FROM samples;
    out := out || metrics_family('fleetdash_http_request_duration_seconds', 'histogram',
                                 'Time the workers took to answer, in seconds.', v_lines);
    -- the workers' other counters
    out := out || (
        SELECT coalesce(string_agg(metrics_family(c.metric, 'counter', c.help, c.lines), ''
                                   ORDER BY c.metric), '')
          FROM (SELECT d.metric, d.help,
                       string_agg(format('%s{group=%s,host=%s} %s', d.metric,
                                         metrics_label(m.group_name), metrics_label(m.host), m.value),
                                  E'\n' ORDER BY m.group_name, m.host) AS lines
                  FROM (VALUES
                        ('busy_seconds', 'fleetdash_worker_busy_seconds_total',
                         'Seconds the workers spent answering requests.'),
                        ('database_errors', 'fleetdash_database_errors_total',
                         'Statements that failed, and connections that could not be made.'),
                        ('ingested_rows', 'fleetdash_ingested_rows_total',
                         'Executions stored by ingest (every path: JSON, NDJSON, batches).'),
                        ('worker_restarts', 'fleetdash_worker_restarts_total',
                         'Workers started again after one ended (crashed, killed or recycled).'),
                        ('evaluator_cycles', 'fleetdash_evaluator_cycles_total',
                         'Cycles of the alert rules'' evaluator.'),
                        ('evaluator_seconds', 'fleetdash_evaluator_seconds_total',
                         'Seconds the evaluator''s cycles took (divide by the cycles for their mean).'))
                       AS d(name, metric, help)
                  JOIN metrics_counters m ON m.name = d.name
                 GROUP BY d.metric, d.help) c);
    SELECT string_agg(format('fleetdash_workers_alive{group=%s,host=%s} %s',
                             metrics_label(group_name), metrics_label(host), n),
                      E'\n' ORDER BY group_name, host)
      INTO v_lines
      FROM (SELECT group_name, host, count(*) AS n FROM metrics_workers
             WHERE seen_at > now() - interval '15 seconds' GROUP BY group_name, host) w;
    out := out || metrics_family('fleetdash_workers_alive', 'gauge',
                                 'Workers that reported in the last 15 s (every 5 s while they live).',
                                 v_lines);
    -- read from the tables
    out := out || metrics_family('fleetdash_rollup_lag_seconds', 'gauge',
                                 'Seconds since the maintenance job last folded new executions into the rollups.',
                                 (SELECT format('fleetdash_rollup_lag_seconds %s',
                                                coalesce(extract(epoch FROM now() - rolled_up_to), 0))
                                    FROM rollup_state));
    out := out || metrics_family('fleetdash_notifications', 'gauge',
                                 'Notifications in the outbox, by status.',
                                 (SELECT string_agg(format('fleetdash_notifications{status="%s"} %s',
                                                           s.status, coalesce(n.count, 0)),
                                                    E'\n' ORDER BY s.status)
                                    FROM unnest('{delivered,failed,pending,sending}'::text[]) AS s(status)
                                    LEFT JOIN (SELECT status, count(*) FROM notifications GROUP BY status) n
                                           ON n.status = s.status));
    out := out || metrics_family('fleetdash_notification_attempts', 'gauge',
                                 'Delivery attempts kept, by result (2xx, 3xx, 4xx, 5xx, or error: no answer).',
                                 (SELECT string_agg(format('fleetdash_notification_attempts{result="%s"} %s',
                                                           result, n), E'\n' ORDER BY result)
                                    FROM (SELECT CASE WHEN code IS NULL THEN 'error'
                                                      ELSE (code / 100) || 'xx' END AS result,
                                                 count(*) AS n
                                            FROM notification_attempts GROUP BY 1) a));
    out := out || metrics_family('fleetdash_agents', 'gauge',
                                 'Agents by the state they reported (retired: no longer active).',
                                 (SELECT string_agg(format('fleetdash_agents{state="%s"} %s', s.state,
                                                           coalesce(n.count, 0)),
                                                    E'\n' ORDER BY s.state)
                                    FROM unnest('{busy,error,idle,offline,retired}'::text[]) AS s(state)
                                    LEFT JOIN (SELECT CASE WHEN is_active THEN state ELSE 'retired' END
                                                          AS state, count(*)
                                                 FROM agents GROUP BY 1) n ON n.state = s.state));
    out := out || metrics_family('fleetdash_agents_silent', 'gauge',
                                 'Active agents that missed three heartbeats.',
                                 (SELECT format('fleetdash_agents_silent %s', count(*)) FROM agents
                                   WHERE agent_silent(is_active, last_heartbeat_at, created_at,
                                                      heartbeat_interval_seconds)));
    -- the fleet: stored executions and their cost by agent and model
    WITH fleet AS (
        SELECT agent_id, model, sum(n) AS n, sum(cost) AS cost
          FROM (SELECT agent_id, model, n, cost FROM rollup_1d WHERE dims = 3
                UNION ALL SELECT agent_id, model, n, cost FROM rollup_delta) r
         GROUP BY agent_id, model),
    ranked AS (
        SELECT f.*, row_number() OVER (ORDER BY f.n DESC, f.agent_id, f.model) AS rank,
               count(*) OVER () AS total
          FROM fleet f),
    kept AS (
        SELECT r.*, g.name FROM ranked r LEFT JOIN agents g ON g.id = r.agent_id
         WHERE r.rank <= p_max_series)
    SELECT metrics_family('fleetdash_executions_total', 'counter',
                          'Executions stored, by agent and model (from the rollups).',
                          string_agg(format('fleetdash_executions_total{agent=%s,agent_id="%s",model=%s} %s',
                                            metrics_label(name), agent_id, metrics_label(model), n),
                                     E'\n' ORDER BY agent_id, model))
        || metrics_family('fleetdash_cost_usd_total', 'counter',
                          'Cost in USD of the executions stored, by agent and model.',
                          string_agg(format('fleetdash_cost_usd_total{agent=%s,agent_id="%s",model=%s} %s',
                                            metrics_label(name), agent_id, metrics_label(model), cost),
                                     E'\n' ORDER BY agent_id, model)),
           coalesce(greatest(max(total) - p_max_series, 0), 0)
      INTO v_lines, v_dropped FROM kept;
    out := out || coalesce(v_lines, '');
    out := out || metrics_family('fleetdash_metrics_series_dropped', 'gauge',
                                 format('Agent and model pairs left out of this scrape past the bound of %s series.',
                                        p_max_series),
                                 format('fleetdash_metrics_series_dropped %s', v_dropped));
    RETURN out;
END $$;
