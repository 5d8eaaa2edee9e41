-- 27_state.sql - the fleet's state at a glance (GET /state, seed 002's
-- snapshot): state_snapshot(), one call answering the whole JSON object.
--
-- What it holds and the choices made:
--   * uptime_seconds: seconds since the PostgreSQL server started
--     (pg_postmaster_start_time()). The snapshot is computed there and the
--     workers are stateless processes that come and go, so the database is
--     what has been up; server_started_at says since when.
--   * agents: every active agent by name: id, name, state, current_task,
--     last_heartbeat_at, heartbeat_interval_seconds, silent (agent_silent(),
--     03_registry.sql: no beat for three declared intervals).
--   * recent_completions: the last 100 executions by started_at (newest
--     first; executions arrive once finished), read from
--     executions_started_at_idx.
--   * throughput: the executions started in the last hour [now - 1 h, now):
--     completed (status succeeded), failed (every other status), the
--     average latency_ms of those with one, tokens (prompt + completion).
--     Read from the rollups (rollup_rows(), 12_aggregates_reading.sql): whole
--     5-minute buckets, their pending deltas, raw rows of the edges only;
--     one read serves the throughput, the failure rates and the buckets of
--     the rising error rate.
--   * health.conditions, each {kind, severity, message, agent, alert_id,
--     value}, by kind (in this order), then the fleet's before the agents'
--     by name, alerts newest first:
--       agent_silent (warning): an active agent is silent;
--       failure_rate (critical): more than 50 % of the last hour's
--         executions failed, of the fleet (agent null) or of one agent, with
--         at least 10 executions (fewer say little);
--       error_rate_rising (warning): the error rate rose strictly over the
--         last three whole 5-minute buckets, each with at least 5
--         executions, of the fleet or of one agent;
--       critical_alert (critical): an open (firing or acknowledged) alert of
--         severity critical, the newest 100.
--     health.status: critical when a condition is critical, warning when
--     one is a warning, else ok.
--
-- Repeatable (sql/README.md): applied again whenever it changes.

-- state_failure_min / state_rising_min - the fewest executions that make a
-- failure rate (of the last hour) or a bucket of the rising error rate
-- count.
CREATE OR REPLACE FUNCTION state_failure_min() RETURNS integer
LANGUAGE sql IMMUTABLE PARALLEL SAFE AS $$ SELECT 10 $$;
CREATE OR REPLACE FUNCTION state_rising_min() RETURNS integer
LANGUAGE sql IMMUTABLE PARALLEL SAFE AS $$ SELECT 5 $$;

-- state_snapshot() - the State object (docs/openapi.yaml) as JSON.
-- plpgsql, and its query takes no parameter (now() is the transaction's
-- time): the plan is made once per session and kept; planning the whole
-- statement costs more than running it.
CREATE OR REPLACE FUNCTION state_snapshot() RETURNS json LANGUAGE plpgsql STABLE AS $$
BEGIN
    RETURN (
    WITH piece AS (         -- the last hour in 5-minute pieces per agent (read once)
        SELECT r.agent_id, rollup_floor(r.bucket, '5 minutes') AS bucket, r.n, r.errors,
               r.lat_n, r.lat_sum, r.prompt + r.completion AS tokens
          FROM rollup_rows(now() - interval '1 hour', now(), '5 minutes', 1, NULL, NULL, NULL,
                           '5 minutes', false) r),
    hour AS (               -- the last hour per agent
        SELECT p.agent_id, sum(p.n)::bigint AS n, sum(p.errors)::bigint AS errors,
               sum(p.lat_n)::bigint AS lat_n, sum(p.lat_sum)::bigint AS lat_sum,
               sum(p.tokens)::bigint AS tokens
          FROM piece p
         GROUP BY p.agent_id),
    fleet AS (
        SELECT coalesce(sum(h.n), 0)::bigint AS n, coalesce(sum(h.errors), 0)::bigint AS errors,
               coalesce(sum(h.lat_n), 0)::bigint AS lat_n,
               coalesce(sum(h.lat_sum), 0)::bigint AS lat_sum,
               coalesce(sum(h.tokens), 0)::bigint AS tokens
          FROM hour h),
    buckets AS (            -- the last three whole 5-minute buckets per agent: whole
                            -- pieces of the hour (its raw edges lie outside them)
        SELECT p.agent_id, p.bucket, sum(p.n)::bigint AS n, sum(p.errors)::bigint AS errors
          FROM piece p
         WHERE p.bucket >= rollup_floor(now(), '5 minutes') - interval '15 minutes'
           AND p.bucket < rollup_floor(now(), '5 minutes')
         GROUP BY 1, 2),
    rising AS (             -- agent_id NULL: the fleet
        SELECT s.agent_id, array_agg(s.rate ORDER BY s.bucket) AS rates
          FROM (SELECT b.agent_id, b.bucket, b.errors::double precision / b.n AS rate
                  FROM buckets b WHERE b.n >= state_rising_min()
                UNION ALL
                SELECT NULL, b.bucket, sum(b.errors)::double precision / sum(b.n)
                  FROM buckets b GROUP BY b.bucket HAVING sum(b.n) >= state_rising_min()) s
         GROUP BY s.agent_id
        HAVING count(*) = 3),
    agent AS (
        SELECT a.id, a.name, a.state, a.current_task, a.last_heartbeat_at,
               a.heartbeat_interval_seconds,
               agent_silent(a.is_active, a.last_heartbeat_at, a.created_at,
                            a.heartbeat_interval_seconds) AS silent
          FROM agents a
         WHERE a.is_active),
    condition AS (
        SELECT 1 AS k, NULL::timestamptz AS o, 'agent_silent' AS kind, 'warning' AS severity,
               format('Agent %s has sent no heartbeat %s (it beats every %s s).', g.name,
                      coalesce('since ' || api_time(g.last_heartbeat_at), 'since it registered'),
                      g.heartbeat_interval_seconds) AS message,
               g.id AS agent_id, g.name AS agent_name, NULL::uuid AS alert_id,
               extract(epoch FROM now() - g.last_heartbeat_at)::double precision AS value
          FROM agent g WHERE g.silent
        UNION ALL
        SELECT 2, NULL, 'failure_rate', 'critical',
               format('%s %% of the fleet''s %s executions of the last hour failed.',
                      round(100.0 * f.errors / f.n), f.n),
               NULL, NULL, NULL, f.errors::double precision / f.n
          FROM fleet f
         WHERE f.n >= state_failure_min() AND f.errors * 2 > f.n
        UNION ALL
        SELECT 2, NULL, 'failure_rate', 'critical',
               format('%s %% of the %s executions of agent %s in the last hour failed.',
                      round(100.0 * h.errors / h.n), h.n, g.name),
               g.id, g.name, NULL, h.errors::double precision / h.n
          FROM hour h JOIN agents g ON g.id = h.agent_id
         WHERE h.n >= state_failure_min() AND h.errors * 2 > h.n
        UNION ALL
        SELECT 3, NULL, 'error_rate_rising', 'warning',
               format('The error rate of %s rose over the last three 5-minute buckets: %s %%.',
                      coalesce('agent ' || g.name, 'the fleet'),
                      (SELECT string_agg(round(100 * x)::text, ' %, ') FROM unnest(r.rates) x)),
               g.id, g.name, NULL, r.rates[3]
          FROM rising r LEFT JOIN agents g ON g.id = r.agent_id
         WHERE r.rates[1] < r.rates[2] AND r.rates[2] < r.rates[3]
        UNION ALL
        SELECT 4, c.starts_at, 'critical_alert', 'critical',
               format('Critical alert open since %s: %s', api_time(c.starts_at), c.title),
               c.agent_id, g.name, c.id, c.value
          FROM (SELECT a.id, a.starts_at, a.title, a.agent_id, a.value
                  FROM alerts a
                 WHERE a.status <> 'resolved'
                   AND severity_rank(a.severity) = severity_rank('critical')
                 ORDER BY severity_rank(a.severity), a.starts_at DESC, a.id DESC
                 LIMIT 100) c
          LEFT JOIN agents g ON g.id = c.agent_id)
    SELECT json_build_object(
        'at', api_time(now()),
        'uptime_seconds', floor(extract(epoch FROM now() - pg_postmaster_start_time()))::bigint,
        'server_started_at', api_time(pg_postmaster_start_time()),
        'health', (SELECT json_build_object(
                       'status', CASE WHEN bool_or(c.severity = 'critical') THEN 'critical'
                                      WHEN count(*) > 0 THEN 'warning' ELSE 'ok' END,
                       'conditions', coalesce(json_agg(json_build_object(
                           'kind', c.kind, 'severity', c.severity, 'message', c.message,
                           'agent', CASE WHEN c.agent_id IS NOT NULL THEN
                                        json_build_object('id', c.agent_id, 'name', c.agent_name)
                                    END,
                           'alert_id', c.alert_id, 'value', c.value)
                           ORDER BY c.k, c.agent_name NULLS FIRST, c.o DESC, c.alert_id), '[]'))
                     FROM condition c),
        'agents', (SELECT coalesce(json_agg(json_build_object(
                       'id', g.id, 'name', g.name, 'state', g.state,
                       'current_task', g.current_task,
                       'last_heartbeat_at', api_time(g.last_heartbeat_at),
                       'heartbeat_interval_seconds', g.heartbeat_interval_seconds,
                       'silent', g.silent) ORDER BY g.name), '[]')
                     FROM agent g),
        'recent_completions', (SELECT coalesce(json_agg(json_build_object(
                       'id', x.id, 'agent_id', x.agent_id, 'agent_name', g.name,
                       'task_id', x.task_id, 'model', x.model, 'status', x.status,
                       'duration_ms', x.latency_ms,
                       'tokens_used', x.prompt_tokens + x.completion_tokens,
                       'cost_usd', x.cost_usd, 'started_at', api_time(x.started_at),
                       'completed_at', api_time(x.finished_at))
                       ORDER BY x.started_at DESC, x.id DESC), '[]')
                     FROM (SELECT * FROM executions e
                            ORDER BY e.started_at DESC, e.id DESC LIMIT 100) x
                     LEFT JOIN agents g ON g.id = x.agent_id),
        'throughput', (SELECT json_build_object(
                           'from', api_time((now() - interval '1 hour')), 'to', api_time(now()),
                           'completed', f.n - f.errors, 'failed', f.errors,
                           'avg_duration_ms', CASE WHEN f.lat_n > 0
                                                  THEN f.lat_sum::double precision / f.lat_n END,
                           'tokens', f.tokens)
                         FROM fleet f)));
END $$;
ALTER FUNCTION state_snapshot SET max_parallel_workers_per_gather = 0;
