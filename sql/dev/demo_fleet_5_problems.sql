-- demo_fleet_5_problems.sql - demo_fleet_problems(): the problems the
-- demo fleet's sightings add up to (development only, see
-- demo_fleet_1_helpers.sql; called by demo_fleet_rows(),
-- demo_fleet_7_rows.sql)

-- demo_fleet_problems(days, end, key, salts) - problems from the sightings
-- of demo_sighting (demo_fleet_executions()), their agents' names from
-- demo_agent, for the window of P_DAYS days ending at P_END; P_KEY and P_S
-- from demo_fleet_rows() (the fingerprints start with 'demo-' and the
-- key's first 8 hex digits, which demo_fleet_alerts() finds them by).
-- Makes the temp table demo_problem (one row per fingerprint); inserts
-- problems. Returns how many.
CREATE OR REPLACE FUNCTION demo_fleet_problems(
    p_days integer, p_end timestamptz, p_key text, p_s bigint[])
RETURNS integer
LANGUAGE plpgsql AS $fn$
DECLARE
    v_problems integer;
BEGIN
    PERFORM demo_drop_scratch('demo_problem');

    -- One per agent and category; provider rate limits and model errors
    -- one per model, fleet-wide. Problems not seen for three days are
    -- mostly resolved; some recur: resolved in the middle of the window,
    -- then open again with the same fingerprint.
    CREATE TEMP TABLE demo_problem ON COMMIT DROP AS
    WITH g AS (
        SELECT s.fkey,
               CASE WHEN s.category IN ('rate_limit', 'model_error') THEN NULL ELSE s.agent_id END AS agent_id,
               CASE WHEN s.category IN ('rate_limit', 'model_error') THEN s.model END AS model,
               s.category, count(*) AS occ,
               min(s.started_at) AS first_seen, max(s.started_at) AS last_seen,
               mode() WITHIN GROUP (ORDER BY s.message) AS message
          FROM demo_sighting s GROUP BY 1, 2, 3, 4
        HAVING count(*) >= 3                  -- one or two sightings: noise
    ), f AS (
        SELECT g.*, d.name AS agent_name,
               'demo-' || substr(p_key, 1, 8) || ':' || coalesce(d.name, 'fleet:' || g.model)
                 || ':' || g.category AS fingerprint
          FROM g LEFT JOIN demo_agent d ON d.id = g.agent_id
    )
    SELECT f.*, demo_hu(hashtext(f.fingerprint), p_s[4]) AS u,
           percent_rank() OVER (ORDER BY f.occ, f.fingerprint) AS occ_rank
      FROM f;

    INSERT INTO problems (id, agent_id, execution_id, fingerprint, category, severity, title,
                          description, status, occurrences, first_seen_at, last_seen_at,
                          resolved_at, created_at, updated_at)
    SELECT md5(p_key || ':problem:' || p.fingerprint || ':' || p.part)::uuid,
           p.agent_id, p.example, p.fingerprint, p.category, p.severity, p.title,
           format('%s sightings between %s and %s UTC (demo fleet)', p.occ,
                  to_char(p.first_seen AT TIME ZONE 'UTC', 'YYYY-MM-DD HH24:MI'),
                  to_char(p.last_seen AT TIME ZONE 'UTC', 'YYYY-MM-DD HH24:MI')),
           p.status, p.occ, p.first_seen, p.last_seen, p.resolved_at, p.first_seen,
           greatest(p.last_seen, coalesce(p.resolved_at, p.last_seen))
      FROM (
        SELECT q.*,
               CASE WHEN q.occ_rank >= 0.9 AND q.category NOT IN ('latency_regression', 'cost_spike')
                        THEN 'critical'
                    WHEN q.category IN ('tool_error', 'rate_limit', 'hallucination', 'model_error') THEN 'high'
                    WHEN q.category IN ('latency_regression', 'cost_spike') THEN 'low'
                    ELSE 'medium' END AS severity,
               CASE q.category
                   WHEN 'rate_limit' THEN format('Rate limited by the provider of %s', q.model)
                   WHEN 'model_error' THEN format('Upstream errors from %s', q.model)
                   WHEN 'latency_regression' THEN format('%s: runs far slower than usual', q.agent_name)
                   WHEN 'cost_spike' THEN format('%s: runs costing several times the median', q.agent_name)
                   WHEN 'hallucination' THEN format('%s: answers with facts not found in the sources', q.agent_name)
                   ELSE format('%s: %s', q.agent_name, q.message) END AS title,
               CASE WHEN q.part = 1 THEN 'resolved'
                    WHEN q.last_seen < p_end - interval '3 days' AND q.u < 0.8 THEN 'resolved'
                    WHEN q.u < 0.55 THEN 'open' ELSE 'investigating' END AS status,
               CASE WHEN q.part = 1 THEN q.last_seen + interval '10 minutes'
                    WHEN q.last_seen < p_end - interval '3 days' AND q.u < 0.8
                        THEN least(q.last_seen + (1 + 40 * q.u) * interval '1 hour', p_end) END AS resolved_at
          FROM (
            SELECT b.agent_id, b.model, b.category, b.message, b.agent_name, b.fingerprint, b.u,
                   b.occ_rank, x.part, count(*) AS occ,
                   min(s.started_at) AS first_seen, max(s.started_at) AS last_seen,
                   (array_agg(s.execution_id ORDER BY s.started_at DESC, s.execution_id DESC))[1] AS example
              FROM (SELECT dp.*,
                           -- a problem seen over more than half of the window,
                           -- picked by its hash: fixed at its middle, then back
                           CASE WHEN dp.u > 0.85 AND dp.occ >= 4
                                 AND dp.last_seen - dp.first_seen > make_interval(days => p_days) / 2
                                THEN dp.first_seen + (dp.last_seen - dp.first_seen) / 2 END AS split
                      FROM demo_problem dp) b
              JOIN demo_sighting s ON s.fkey = b.fkey
              CROSS JOIN LATERAL (SELECT CASE WHEN s.started_at < b.split THEN 1 ELSE 2 END AS part) x
             GROUP BY b.agent_id, b.model, b.category, b.message, b.agent_name, b.fingerprint, b.u,
                      b.occ_rank, x.part
          ) q
      ) p
     ORDER BY p.fingerprint, p.part;
    GET DIAGNOSTICS v_problems = ROW_COUNT;
    RETURN v_problems;
END;
$fn$;

-- end of demo_fleet_5_problems
