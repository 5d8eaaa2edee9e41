-- demo_fleet_7_rows.sql - demo_fleet_rows(): the demo fleet's rows, made
-- set-based, section by section (development only, see
-- demo_fleet_1_helpers.sql; demo_fleet() in demo_fleet_8_load.sql calls
-- it and rebuilds the rollups after it)
--
--   SELECT * FROM demo_fleet();                      -- 50 agents, 200,000 executions, 30 days
--   SELECT * FROM demo_fleet(50, 10000000, 30);      -- the benchmark size
--   SELECT * FROM demo_fleet(50, 200000, 30, 0.42, '2025-01-31 12:00Z');  -- fixed end
--
-- Adds to what is there (it never deletes): p_agents new agents, their
-- versions and canary deployments, p_executions executions over the p_days
-- days ending at p_end (default now()), evaluations, problems and alerts.
--
-- Determinism: every value is a hash of (seed, row number), never random(),
-- so the data does not depend on the plan or on the order rows are made in.
-- The same seed and p_end on an empty fleet give the same rows, ids
-- included; with another p_end every time moves by the same amount and
-- nothing else changes. On a fleet that already has agents the run gets its
-- own id prefix (the seed is salted with the number of agents there), and
-- agent names that already exist are skipped, never reused.
--
-- What it makes (defaults):
--   * agents "checkout-planner-07": metadata {"region", "tier", "team"},
--     capabilities, heartbeat state; each its primary model and a fallback,
--     a volume weight, a latency factor, token sizes, a dominant failure.
--     Executions carry metadata {"region": the agent's, "tier": the
--     customer's, gold 20 % / silver 30 % / bronze 50 %}.
--   * quality tiers by success rate (execution_success(): the evaluation
--     passed, or no evaluation and status succeeded; / executions):
--     ~58 % healthy (0.93..0.975), ~30 % warning (0.76..0.86), ~12 %
--     critical (0.40..0.63), set per agent through its failure rate, the
--     share of its runs that get evaluated, and its pass rate.
--   * 1-4 versions per agent, one active; a canary deployment per version
--     (the first at creation); the latest one of an agent is completed,
--     in progress, paused or rolled back, and executions follow: during a
--     canary its traffic share goes to the new version; a rolled-back
--     version is worse.
--   * executions: a daily rhythm (UTC working hours busiest) and a weekly
--     one (weekends quieter), a slow growth and hour-to-hour noise;
--     lognormal latency per model (and agent) with a long tail, cut at the
--     agent's time limit; tokens lognormal (completion tokens correlated
--     with latency), cache reads on models that cache; cost = tokens x the
--     model's prices; failed/timeout/cancelled with an error category and
--     message; short incidents (a tool down for a few hours) on a few agents.
--   * evaluations for ~90 % of executions: almost every success of a
--     healthy agent, fewer elsewhere, half of the failures (always failed);
--     scores consistent with passed.
--   * ~1 % of executions are sightings of a problem, aggregated into
--     problems (occurrences, first and last seen, an example execution):
--     one per agent and category (the failures it is known for, slow,
--     costly or wrong answers), provider rate limits and model errors one
--     per model, fleet-wide. Older problems are resolved; a resolved one
--     may recur as a new open problem with the same fingerprint.
--   * alerts of every severity from problems, agent quality, latency, cost,
--     rollbacks and missed heartbeats; open, acknowledged or resolved.
--
-- Sections, one function and file each, called in this order; each hands
-- the next ones what they need in temp tables (ON COMMIT DROP, made again
-- by a later call in the same transaction) and in the rows it inserted:
--   demo_fleet_models()      (2) demo_model
--   demo_fleet_agents()      (3) demo_agent; agents, agent_versions, canary_deployments
--   demo_fleet_executions()  (4) demo_slot, demo_hour, demo_sighting; executions
--                                (how it is fast: its file)
--   demo_fleet_problems()    (5) demo_problem; problems
--   demo_fleet_alerts()      (6) alerts
-- The run's end, key, id prefix and hash salts are made here once and
-- passed to them as arguments.

CREATE OR REPLACE FUNCTION demo_fleet_rows(
    p_agents     integer          DEFAULT 50,
    p_executions bigint           DEFAULT 200000,
    p_days       integer          DEFAULT 30,
    p_seed       double precision DEFAULT 0.42,
    p_end        timestamptz      DEFAULT NULL)
RETURNS demo_fleet_summary
LANGUAGE plpgsql AS $fn$
DECLARE
    v_clock    timestamptz := clock_timestamp();
    v_end      timestamptz := coalesce(p_end, now());
    v_existing bigint;
    v_key      text;                          -- seed + salt, hashed
    v_prefix   text;                          -- first 16 hex digits of every id of this run
    v_s        bigint[];                      -- hash salts
    v_sum      demo_fleet_summary;
BEGIN
    IF p_agents IS NULL OR p_agents NOT BETWEEN 1 AND 100000 THEN
        RAISE EXCEPTION 'demo_fleet: agents must be 1..100000, got %', p_agents
            USING ERRCODE = 'invalid_parameter_value';
    END IF;
    IF p_executions IS NULL OR p_executions NOT BETWEEN 0 AND 1000000000 THEN
        RAISE EXCEPTION 'demo_fleet: executions must be 0..1000000000, got %', p_executions
            USING ERRCODE = 'invalid_parameter_value';
    END IF;
    IF p_days IS NULL OR p_days NOT BETWEEN 1 AND 3650 THEN
        RAISE EXCEPTION 'demo_fleet: days must be 1..3650, got %', p_days
            USING ERRCODE = 'invalid_parameter_value';
    END IF;
    IF p_seed IS NULL OR p_seed = 'NaN' THEN
        RAISE EXCEPTION 'demo_fleet: seed must be a number' USING ERRCODE = 'invalid_parameter_value';
    END IF;

    SELECT count(*) INTO v_existing FROM agents;
    -- the seed's bytes, not its text: extra_float_digits cannot change them
    v_key := md5(format('fleetdash-demo|%s|%s', encode(float8send(p_seed), 'hex'), v_existing));
    -- xxxxxxxx-xxxx-8xxx: a UUID "version 8" (custom); the low half is
    -- 8 followed by the row number, so ids grow with it.
    v_prefix := substr(v_key, 1, 12) || '8' || substr(v_key, 14, 3);
    SELECT array_agg(hashtext(v_key || ':' || k)::bigint ORDER BY k) INTO v_s
      FROM generate_series(1, 12) k;

    PERFORM demo_fleet_models();
    SELECT a.versions, a.deployments INTO v_sum.versions, v_sum.deployments
      FROM demo_fleet_agents(p_agents, p_days, v_end, v_existing, v_key, v_s) a;
    v_sum.evaluations := demo_fleet_executions(p_agents, p_executions, p_days, v_end, v_prefix, v_s);
    v_sum.problems := demo_fleet_problems(p_days, v_end, v_key, v_s);
    v_sum.alerts := demo_fleet_alerts(p_days, v_end, v_key, v_s);

    ANALYZE agents, agent_versions, executions, problems, canary_deployments, alerts;

    v_sum.agents := p_agents;
    v_sum.executions := p_executions;
    v_sum.seconds := round(extract(epoch FROM clock_timestamp() - v_clock)::numeric, 1);
    RETURN v_sum;
END;
$fn$;

-- end of demo_fleet_7_rows
