-- tests/demo_fleet_check.sql - look at a demo fleet (sql/dev/demo_fleet_*.sql)
--
--   . var/run/stack.env && psql -X -f tests/demo_fleet_check.sql
--
-- Read-only. Prints the distributions the generator promises, then checks
-- the references and the rules of 001 once more; every "violations" count must be 0. Ends with md5 digests of the
-- tables in a canonical order: equal digests = identical data (the same
-- seed and p_end on an empty database must give equal digests).

\pset footer off
\timing off

\echo '== sizes'
SELECT relname AS "table", n_live_tup AS "rows (estimate)",
       pg_size_pretty(pg_table_size(relid)) AS "table size",
       pg_size_pretty(pg_indexes_size(relid)) AS "index size"
  FROM pg_stat_user_tables
 WHERE relname IN ('agents', 'agent_versions', 'executions', 'problems',
                   'canary_deployments', 'alerts')
 ORDER BY pg_total_relation_size(relid) DESC;

\echo '== agents by status (success rate = execution_success() / executions, whole window)'
WITH s AS (
    SELECT e.agent_id, count(*) AS n, count(e.eval_passed) AS evaluated,
           count(*) FILTER (WHERE e.eval_passed) AS passed,
           count(*) FILTER (WHERE execution_success(e.eval_passed, e.status)) AS successes
      FROM executions e
     GROUP BY e.agent_id
)
SELECT agg_status(n, successes) AS status,
       count(*) AS agents, min(n) AS "min runs", max(n) AS "max runs",
       round(min(successes::numeric / n), 3) AS "min rate", round(max(successes::numeric / n), 3) AS "max rate",
       round(sum(evaluated)::numeric / sum(n), 3) AS "evaluated share",
       round(sum(passed)::numeric / sum(evaluated), 3) AS "pass rate"
  FROM s GROUP BY 1 ORDER BY 1;

\echo '== agents by status, last 24 hours'
WITH s AS (
    SELECT e.agent_id, count(*) AS n,
           count(*) FILTER (WHERE execution_success(e.eval_passed, e.status)) AS successes
      FROM executions e
     WHERE e.started_at >= (SELECT max(started_at) FROM executions) - interval '24 hours'
     GROUP BY e.agent_id
)
SELECT agg_status(n, successes) AS status, count(*) AS agents
  FROM s GROUP BY 1 ORDER BY 1;

\echo '== outcomes'
SELECT status, count(*), round(100.0 * count(*) / sum(count(*)) OVER (), 2) AS pct,
       round(100.0 * count(e.eval_passed) / count(*), 1) AS "evaluated %",
       round(100.0 * count(*) FILTER (WHERE e.eval_passed) / greatest(count(e.eval_passed), 1), 1) AS "passed % of evaluated"
  FROM executions e
 GROUP BY status ORDER BY 2 DESC;

\echo '== error categories'
SELECT error_category, count(*), min(error_message) AS "a message"
  FROM executions WHERE error_category IS NOT NULL GROUP BY 1 ORDER BY 2 DESC;

\echo '== per model: latency percentiles (ms), tokens, cost'
SELECT model, count(*) AS runs,
       percentile_disc(0.5) WITHIN GROUP (ORDER BY latency_ms) AS p50,
       percentile_disc(0.9) WITHIN GROUP (ORDER BY latency_ms) AS p90,
       percentile_disc(0.95) WITHIN GROUP (ORDER BY latency_ms) AS p95,
       percentile_disc(0.99) WITHIN GROUP (ORDER BY latency_ms) AS p99,
       max(latency_ms) AS max,
       round(avg(prompt_tokens)) AS "avg prompt", round(avg(completion_tokens)) AS "avg completion",
       round(avg(cache_read_tokens)) AS "avg cache read",
       round(avg(cost_usd), 5) AS "avg cost", round(sum(cost_usd), 2) AS "total cost"
  FROM executions GROUP BY model ORDER BY model;

\echo '== cost / (tokens x list price per million: input, output, cache read), runs >= $0.01: 1.0000'
SELECT model,
       max(round(cost_usd / nullif(((prompt_tokens - cache_read_tokens) * p.i + completion_tokens * p.o
                                    + cache_read_tokens * p.c) / 1e6, 0), 4)) AS "max ratio to list price",
       min(round(cost_usd / nullif(((prompt_tokens - cache_read_tokens) * p.i + completion_tokens * p.o
                                    + cache_read_tokens * p.c) / 1e6, 0), 4)) AS "min ratio"
  FROM executions
  JOIN (VALUES ('claude-sonnet', 3.00, 15.00, 0.30), ('claude-haiku', 0.80, 4.00, 0.08),
               ('claude-opus', 15.00, 75.00, 1.50), ('gpt-4o', 2.50, 10.00, 1.25),
               ('gpt-4o-mini', 0.15, 0.60, 0.075), ('llama-3-70b', 0.59, 0.79, 0.59)) p (m, i, o, c)
    ON p.m = executions.model
 WHERE cost_usd >= 0.01
 GROUP BY model ORDER BY model;

\echo '== executions by hour of day (UTC)'
SELECT extract(hour FROM started_at AT TIME ZONE 'UTC') AS hour, count(*),
       repeat('#', (50 * count(*) / max(count(*)) OVER ())::integer) AS bar
  FROM executions GROUP BY 1 ORDER BY 1;

\echo '== executions by weekday (UTC; 1 = Monday)'
SELECT extract(isodow FROM started_at AT TIME ZONE 'UTC') AS weekday,
       to_char(min(started_at AT TIME ZONE 'UTC'), 'Dy') AS day,
       count(DISTINCT (started_at AT TIME ZONE 'UTC')::date) AS days, count(*),
       round(count(*)::numeric / count(DISTINCT (started_at AT TIME ZONE 'UTC')::date)) AS "per day",
       repeat('#', (50 * (count(*)::numeric / count(DISTINCT (started_at AT TIME ZONE 'UTC')::date))
                    / max(count(*)::numeric / count(DISTINCT (started_at AT TIME ZONE 'UTC')::date)) OVER ())::integer) AS bar
  FROM executions GROUP BY 1 ORDER BY 1;

\echo '== metadata (grouping keys)'
SELECT metadata->>'region' AS region, metadata->>'tier' AS tier, count(*)
  FROM executions GROUP BY 1, 2 ORDER BY 1, 2;

\echo '== versions and canaries'
SELECT count(*) AS versions, count(*) FILTER (WHERE is_active) AS active,
       count(DISTINCT agent_id) AS agents FROM agent_versions;
SELECT status, count(*), min(traffic_percent) AS "min %", max(traffic_percent) AS "max %"
  FROM canary_deployments GROUP BY 1 ORDER BY 1;
SELECT d.status AS "latest rollout", v.version, count(e.*) AS runs,
       round(100.0 * count(*) FILTER (WHERE e.status <> 'succeeded') / count(*), 1) AS "failed %"
  FROM canary_deployments d
  JOIN agent_versions v ON v.id = d.new_version_id
  JOIN executions e ON e.agent_version_id = d.new_version_id
 WHERE d.status IN ('in_progress', 'paused', 'rolled_back')
 GROUP BY 1, 2, d.agent_id ORDER BY 1, 3 DESC LIMIT 12;

\echo '== problems'
SELECT category, severity, status, count(*), sum(occurrences) AS occurrences
  FROM problems GROUP BY 1, 2, 3 ORDER BY 1, 2, 3;
SELECT round(100.0 * (SELECT sum(occurrences) FROM problems) / (SELECT count(*) FROM executions), 2)
       AS "executions sighted in a problem, %";
SELECT title, occurrences, severity, status FROM problems ORDER BY occurrences DESC LIMIT 8;

\echo '== alerts'
SELECT severity, status, count(*) FROM alerts GROUP BY 1, 2 ORDER BY severity_rank(severity), 2;

\echo '== agents'
SELECT state, count(*), min(last_heartbeat_at) AS "oldest beat" FROM agents GROUP BY 1 ORDER BY 1;
SELECT name, metadata, capabilities FROM agents ORDER BY name LIMIT 5;

\echo '== integrity (every count must be 0)'
SELECT 'executions without agent' AS "check", count(*) AS violations
  FROM executions e WHERE NOT EXISTS (SELECT 1 FROM agents a WHERE a.id = e.agent_id)
UNION ALL
SELECT 'executions with a version of another agent', count(*)
  FROM executions e
 WHERE e.agent_version_id IS NOT NULL
   AND NOT EXISTS (SELECT 1 FROM agent_versions v WHERE v.id = e.agent_version_id AND v.agent_id = e.agent_id)
UNION ALL
SELECT 'evaluations before the run ended', count(*)
  FROM executions WHERE evaluated_at < finished_at
UNION ALL
SELECT 'evaluations passed on a failure', count(*)
  FROM executions WHERE eval_passed AND status <> 'succeeded'
UNION ALL
SELECT 'scores inconsistent with passed', count(*)
  FROM executions WHERE (eval_passed AND eval_score < 0.7) OR (NOT eval_passed AND eval_score > 0.62)
UNION ALL
SELECT 'finished_at <> started_at + latency', count(*)
  FROM executions WHERE finished_at <> started_at + latency_ms * interval '1 millisecond'
UNION ALL
SELECT 'failures without error category', count(*)
  FROM executions WHERE status <> 'succeeded' AND (error_category IS NULL OR error_message IS NULL)
UNION ALL
SELECT 'runs ending after the last ingest', count(*)
  FROM executions WHERE finished_at > (SELECT max(ingested_at) FROM executions)
UNION ALL
SELECT 'agents without exactly one active version', count(*)
  FROM agents a
 WHERE (SELECT count(*) FROM agent_versions v WHERE v.agent_id = a.id AND v.is_active) <> 1
UNION ALL
SELECT 'agents with more than one unfinished canary', count(*)
  FROM (SELECT agent_id FROM canary_deployments WHERE status IN ('in_progress', 'paused')
         GROUP BY 1 HAVING count(*) > 1) x
UNION ALL
SELECT 'open problems sharing a fingerprint', count(*)
  FROM (SELECT fingerprint FROM problems WHERE status <> 'resolved' AND fingerprint IS NOT NULL
         GROUP BY 1 HAVING count(*) > 1) x
UNION ALL
SELECT 'problem examples that do not exist', count(*)
  FROM problems p WHERE p.execution_id IS NOT NULL
   AND NOT EXISTS (SELECT 1 FROM executions e WHERE e.id = p.execution_id)
UNION ALL
SELECT 'alert executions that do not exist', count(*)
  FROM alerts a WHERE a.execution_id IS NOT NULL
   AND NOT EXISTS (SELECT 1 FROM executions e WHERE e.id = a.execution_id);

\echo '== digests (equal digests = identical rows)'
SELECT 'agents' AS "table", md5(string_agg(a::text, '|' ORDER BY a.id)) AS md5 FROM agents a
UNION ALL
SELECT 'agent_versions', md5(string_agg(v::text, '|' ORDER BY v.id)) FROM agent_versions v
UNION ALL
SELECT 'executions', md5(string_agg(md5(e::text), '' ORDER BY e.id)) FROM executions e

UNION ALL
SELECT 'problems', md5(string_agg(p::text, '|' ORDER BY p.id)) FROM problems p
UNION ALL
SELECT 'canary_deployments', md5(string_agg(d::text, '|' ORDER BY d.id)) FROM canary_deployments d
UNION ALL
SELECT 'alerts', md5(string_agg(a::text, '|' ORDER BY a.id)) FROM alerts a
ORDER BY 1;
