-- demo_fleet_2_rows.sql - demo_fleet_rows(): the demo fleet's rows, made
-- set-based (development only, see demo_fleet_1_helpers.sql; demo_fleet()
-- in demo_fleet_3_load.sql calls it and rebuilds the rollups after it)
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
-- Speed (10,000,000 executions into an empty database: 141 s here, ~45 of
-- them the rollups that demo_fleet() rebuilds afterwards):
-- executions, each with its evaluation, are made set-based, hour slot by
-- hour slot, in chunks of about a million rows (one INSERT ... SELECT each,
-- problem sightings taken from its RETURNING rows), with ids that grow with
-- the row number (like UUIDv7) so that the primary key is appended to at
-- its right edge; into an empty table the other indexes are built after
-- the rows (24 s), not row by row (~50 s). The reference check of
-- executions (functions/01_core.sql) is off during the load: the rows
-- reference only what this function made in its transaction.

CREATE OR REPLACE FUNCTION demo_fleet_rows(
    p_agents     integer          DEFAULT 50,
    p_executions bigint           DEFAULT 200000,
    p_days       integer          DEFAULT 30,
    p_seed       double precision DEFAULT 0.42,
    p_end        timestamptz      DEFAULT NULL)
RETURNS demo_fleet_summary
LANGUAGE plpgsql AS $fn$
DECLARE
    c_chunk    CONSTANT bigint := 1000000;    -- executions per INSERT
    v_clock    timestamptz := clock_timestamp();
    v_end      timestamptz := coalesce(p_end, now());
    v_start    timestamptz;
    v_hours    integer;
    v_existing bigint;
    v_key      text;                          -- seed + salt, hashed
    v_prefix   text;                          -- first 16 hex digits of every id of this run
    v_s        bigint[];                      -- hash salts
    v_slots    integer;                       -- agent slots (a power of two)
    v_slot_agent integer[];
    v_jit      text[] := ARRAY[current_setting('jit_above_cost'), current_setting('jit_inline_above_cost'),
                               current_setting('jit_optimize_above_cost'), current_setting('work_mem')];
    v_indexes  text[];                        -- secondary indexes of executions, rebuilt at the end
    v_chunks   bigint;
    v_done     bigint := 0;
    v_evals    bigint := 0;
    v_cats     text[] := ARRAY['timeout', 'cancelled', 'rate_limit', 'tool_error', 'invalid_output',
                               'context_overflow', 'model_error'];
    v_n        bigint;
    c_top      CONSTANT bigint := -9223372036854775807 - 1;
    v_t        timestamptz;
    v_sum      demo_fleet_summary;
    v_tmp      text;
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

    v_start := v_end - make_interval(days => p_days);
    v_hours := p_days * 24;
    SELECT count(*) INTO v_existing FROM agents;
    -- the seed's bytes, not its text: extra_float_digits cannot change them
    v_key := md5(format('fleetdash-demo|%s|%s', encode(float8send(p_seed), 'hex'), v_existing));
    -- xxxxxxxx-xxxx-8xxx: a UUID "version 8" (custom); the low half is
    -- 8 followed by the row number, so ids grow with it.
    v_prefix := substr(v_key, 1, 12) || '8' || substr(v_key, 14, 3);
    SELECT array_agg(hashtext(v_key || ':' || k)::bigint ORDER BY k) INTO v_s
      FROM generate_series(1, 12) k;
    v_slots := greatest(4096, (2 ^ ceil(log(2, p_agents * 16.0)))::integer);

    -- scratch tables of an earlier call in this transaction
    FOREACH v_tmp IN ARRAY ARRAY['demo_agent', 'demo_slot', 'demo_model', 'demo_hour',
                                 'demo_sighting', 'demo_problem'] LOOP
        IF to_regclass('pg_temp.' || v_tmp) IS NOT NULL THEN
            EXECUTE format('DROP TABLE pg_temp.%I', v_tmp);
        END IF;
    END LOOP;

    -- ------------------------------------------------------------ models
    -- prices in USD per million tokens: input, output, cache read.
    CREATE TEMP TABLE demo_model ON COMMIT DROP AS
    SELECT m.m, m.model, m.provider, m.lat_med::double precision AS lat_med,
           m.sigma::double precision AS sigma, m.p_in::double precision AS p_in,
           m.p_out::double precision AS p_out, m.p_cache::double precision AS p_cache,
           m.caches, m.ctx
      FROM (VALUES
        (0, 'claude-sonnet', 'anthropic', 5200.0, 0.55,  3.00, 15.00, 0.30,  true,  200000),
        (1, 'claude-haiku',  'anthropic', 1900.0, 0.50,  0.80,  4.00, 0.08,  true,  200000),
        (2, 'claude-opus',   'anthropic', 11000.0, 0.60, 15.00, 75.00, 1.50, true,  200000),
        (3, 'gpt-4o',        'openai',    4300.0, 0.60,  2.50, 10.00, 1.25,  true,  128000),
        (4, 'gpt-4o-mini',   'openai',    1600.0, 0.50,  0.15,  0.60, 0.075, true,  128000),
        (5, 'llama-3-70b',   'self-hosted vLLM', 3100.0, 0.75, 0.59, 0.79, 0.59, false, 8192)
    ) AS m (m, model, provider, lat_med, sigma, p_in, p_out, p_cache, caches, ctx);
    ANALYZE demo_model;

    -- ------------------------------------------------------------ agents
    -- Candidate names in a fixed order; names already taken are skipped.
    CREATE TEMP TABLE demo_agent ON COMMIT DROP AS
    WITH words AS (
        SELECT ARRAY['checkout', 'billing', 'support', 'search', 'inventory', 'fraud',
                     'onboarding', 'shipping', 'pricing', 'catalog', 'returns', 'marketing',
                     'compliance', 'analytics', 'recruiting', 'security'] AS d,
               ARRAY['planner', 'router', 'summarizer', 'triage', 'writer', 'reviewer',
                     'resolver', 'extractor', 'classifier', 'responder', 'auditor',
                     'scheduler'] AS r
    ), cand AS (
        SELECT n, w.d[1 + x.c % 16] AS domain, w.r[1 + x.c / 16] AS role,
               w.d[1 + x.c % 16] || '-' || w.r[1 + x.c / 16] || '-'
                 || lpad(x.num::text, greatest(2, length(x.num::text)), '0') AS name
          FROM words w,
               generate_series(0, p_agents + v_existing - 1) n,
               LATERAL (SELECT ((n * 37 + (v_s[1] & 1023)) % 192)::integer AS c,
                               1 + (hashint8extended(n, v_s[1]) & 1048575) % 19 + 20 * (n / 192) AS num) x
    ), picked AS (
        SELECT row_number() OVER (ORDER BY n) AS a, n, domain, role, name
          FROM cand
         WHERE NOT EXISTS (SELECT 1 FROM agents x WHERE x.name = cand.name)
         ORDER BY n
         LIMIT p_agents
    ), ranked AS (
        SELECT p.*,
               (row_number() OVER (ORDER BY hashint8extended(p.a, v_s[2]), p.a) - 1) % 20 AS qrank
          FROM picked p
    ), base AS (
        SELECT r.*,
               CASE WHEN qrank < 2 THEN 'critical' WHEN qrank < 7 THEN 'warning' ELSE 'healthy' END AS tier,
               demo_hu(r.a, v_s[3] + 1) AS u1, demo_hu(r.a, v_s[3] + 2) AS u2,
               demo_hu(r.a, v_s[3] + 3) AS u3, demo_hu(r.a, v_s[3] + 4) AS u4,
               demo_hu(r.a, v_s[3] + 5) AS u5, demo_hu(r.a, v_s[3] + 6) AS u6,
               demo_hu(r.a, v_s[3] + 7) AS u7, demo_hu(r.a, v_s[3] + 8) AS u8,
               demo_hu(r.a, v_s[3] + 9) AS u9, demo_hu(r.a, v_s[3] + 10) AS u10,
               demo_hu(r.a, v_s[3] + 11) AS u11, demo_hu(r.a, v_s[3] + 12) AS u12,
               demo_hu(r.a, v_s[3] + 13) AS u13, demo_hu(r.a, v_s[3] + 14) AS u14,
               demo_hu(r.a, v_s[3] + 15) AS u15, demo_hu(r.a, v_s[3] + 16) AS u16
          FROM ranked r
    ), q AS (
        -- target success rate, failure rate, then the evaluated share of
        -- succeeded runs and the pass rate that give that success rate
        -- (a failed run is never a success: its evaluation, if any, fails)
        SELECT b.*,
               CASE b.tier WHEN 'healthy' THEN 0.93 + 0.045 * u1
                           WHEN 'warning' THEN 0.76 + 0.10 * u1
                           ELSE 0.40 + 0.23 * u1 END AS target,
               CASE b.tier WHEN 'healthy' THEN 0.2 + 0.4 * u2
                           WHEN 'warning' THEN 0.25 + 0.3 * u2
                           ELSE 0.3 + 0.3 * u2 END AS fail_x,
               CASE b.tier WHEN 'healthy' THEN 0.985 + 0.015 * u3
                           WHEN 'warning' THEN 0.86 + 0.10 * u3
                           ELSE 0.75 + 0.15 * u3 END AS cov_draw,
               -- primary model by weight; fallback: another one
               CASE WHEN u4 < 0.30 THEN 0 WHEN u4 < 0.45 THEN 1 WHEN u4 < 0.53 THEN 2
                    WHEN u4 < 0.73 THEN 3 WHEN u4 < 0.88 THEN 4 ELSE 5 END AS m_pri
          FROM base b
    ), q2 AS (
        SELECT q.*, (1 - target) * fail_x AS fail_p FROM q
    ), q3 AS (
        SELECT q2.*, least(1.0, greatest(cov_draw, target / ((1 - fail_p) * 0.995))) AS eval_cov
          FROM q2
    )
    SELECT q3.a, q3.n, q3.name, q3.domain, q3.role, q3.tier, q3.target, q3.fail_p, q3.eval_cov,
           -- success rate = (1 - fail_p) x (1 - eval_cov x (1 - pass_p))
           1 - (1 - q3.target / (1 - q3.fail_p)) / q3.eval_cov AS pass_p,
           md5(v_key || ':agent:' || q3.a)::uuid AS id,
           -- volume weight (lognormal), latency factor, tokens
           exp(0.75 * sqrt(-2 * ln(1 - u5)) * cos(2 * pi() * u6)) AS weight,
           0.6 + 1.6 * u7 * u7 AS lat_factor,
           round(800 * exp(2.6 * u8)) AS prompt_med,
           round(150 * exp(2.3 * u9)) AS comp_med,
           CASE WHEN u10 < 0.3 THEN 0.0 ELSE 0.7 * u10 END AS cache_frac,
           (ARRAY[60000, 120000, 120000, 300000])[1 + floor(u11 * 4)::integer] AS timeout_ms,
           q3.m_pri,
           (q3.m_pri + 1 + floor(u12 * 5)::integer) % 6 AS m_fb,
           0.03 + 0.17 * u12 AS fb_share,
           0.05 + 0.12 * u13 AS sh_timeout,       -- of the failures
           0.05 + 0.15 * u14 AS sh_cancel,
           2 + floor(u15 * 5)::integer AS dom_cat, -- dominant kind of failure (2..6)
           (ARRAY['eu-west-1', 'eu-central-1', 'us-east-1', 'us-west-2', 'ap-southeast-1'])[1 + floor(u16 * 5)::integer] AS region,
           (ARRAY['gold', 'silver', 'silver', 'bronze'])[1 + floor(u1 * 997)::integer % 4] AS svc_tier,
           (ARRAY['search_api', 'crm_lookup', 'payments_api', 'inventory_db', 'email_sender',
                  'pdf_parser', 'web_fetch', 'sql_runner', 'ticket_api', 'geo_lookup'])[1 + floor(u2 * 9973)::integer % 10] AS tool1,
           (ARRAY['vector_search', 'calendar_api', 'ledger_api', 'shipping_api', 'slack_notify',
                  'ocr_service', 'translation_api', 'kv_store', 'feature_flags', 'risk_score'])[1 + floor(u3 * 7919)::integer % 10] AS tool2,
           (ARRAY['field_schema', 'customer_id', 'order_total', 'citations', 'next_action'])[1 + floor(u4 * 613)::integer % 5] AS field,
           CASE q3.tier WHEN 'healthy' THEN 'rubric-v3' WHEN 'warning' THEN 'llm-judge-v2'
                        ELSE (ARRAY['llm-judge-v2', 'unit-tests', 'human-review'])[1 + floor(u5 * 3)::integer] END AS evaluator,
           v_start - make_interval(days => 5 + floor(u6 * 85)::integer, hours => floor(u7 * 24)::integer) AS created_at,
           u8 AS u_state, u9 AS u_inc, u10 AS u_inc2, u11 AS u_ver, u12 AS u_dep, u13 AS u_dep2,
           u14 AS u_dep3, u15 AS u_dep4, u16 AS u_misc
      FROM q3;

    ALTER TABLE demo_agent ADD PRIMARY KEY (a);
    -- rounding: every agent has a fail_p, eval_cov, pass_p in range
    UPDATE demo_agent SET pass_p = least(pass_p, 0.999);

    ALTER TABLE demo_agent
        ADD COLUMN inc_s timestamptz, ADD COLUMN inc_e timestamptz, ADD COLUMN inc_cat integer,
        ADD COLUMN nv integer, ADD COLUMN last_status text, ADD COLUMN msgs text[],
        ADD COLUMN v1 uuid, ADD COLUMN v2 uuid, ADD COLUMN v3 uuid, ADD COLUMN v4 uuid,
        ADD COLUMN s2 timestamptz, ADD COLUMN s3 timestamptz, ADD COLUMN s4 timestamptz,
        ADD COLUMN c2 timestamptz, ADD COLUMN c3 timestamptz, ADD COLUMN c4 timestamptz,
        ADD COLUMN f2 double precision, ADD COLUMN f3 double precision, ADD COLUMN f4 double precision,
        ADD COLUMN d_last boolean, ADD COLUMN bad_version uuid,
        ADD COLUMN meta_g jsonb, ADD COLUMN meta_s jsonb, ADD COLUMN meta_b jsonb;

    -- incidents: about one agent in ten has a few bad hours
    UPDATE demo_agent d SET
        inc_s = CASE WHEN d.u_inc < 0.12 OR (d.a = 1 AND p_agents >= 5)
                     THEN v_start + (0.1 + 0.85 * d.u_inc2) * make_interval(days => p_days) END,
        inc_cat = (ARRAY[3, 3, 2, 6])[1 + floor(d.u_inc2 * 7)::integer % 4],
        nv = CASE WHEN d.u_ver < 0.15 THEN 1 WHEN d.u_ver < 0.50 THEN 2 WHEN d.u_ver < 0.80 THEN 3 ELSE 4 END,
        last_status = CASE WHEN d.u_dep < 0.55 THEN 'completed' WHEN d.u_dep < 0.75 THEN 'in_progress'
                           WHEN d.u_dep < 0.85 THEN 'paused' ELSE 'rolled_back' END,
        -- an execution's metadata: the agent's region, the customer's tier
        meta_g = jsonb_build_object('region', d.region, 'tier', 'gold'),
        meta_s = jsonb_build_object('region', d.region, 'tier', 'silver'),
        meta_b = jsonb_build_object('region', d.region, 'tier', 'bronze'),
        -- three messages per error category (index cat * 3 + k + 1):
        -- 0 timeout, 1 cancelled, 2 rate_limit, 3 tool_error,
        -- 4 invalid_output, 5 context_overflow, 6 model_error
        msgs = ARRAY[
            format('Run exceeded the %s s time limit', d.timeout_ms / 1000),
            format('No model response within %s s', d.timeout_ms / 1000),
            format('Tool %s did not answer within %s s', d.tool2, d.timeout_ms / 2000),
            'Cancelled by the orchestrator: superseded by a newer task',
            'Cancelled by the user',
            'Cancelled: the upstream request was closed',
            format('429 Too Many Requests from %s: tokens per minute exceeded', m.provider),
            format('429 Too Many Requests from %s: retry after 20 s', m.provider),
            format('Request quota for %s exhausted', m.model),
            format('Tool %s failed: HTTP 503 Service Unavailable', d.tool1),
            format('Tool %s returned malformed JSON', d.tool2),
            format('Tool %s: permission denied for this tenant', d.tool1),
            format('Output failed schema validation: missing field "%s"', d.field),
            'Output is not valid JSON',
            'Answer cites a document that was not retrieved',
            format('Prompt exceeds the %s-token context window', m.ctx),
            format('Conversation history exceeds the context window after %s turns', 20 + d.a % 30),
            'Retrieved documents exceed the context budget',
            'Upstream model error: overloaded (529)',
            'Upstream model error: internal server error (500)',
            'Model refused the request (content policy)']
      FROM demo_model m
     WHERE m.m = d.m_pri;
    UPDATE demo_agent SET inc_e = inc_s + make_interval(hours => 1 + floor(u_inc * 1000)::integer % 5);
    UPDATE demo_agent SET inc_s = 'infinity', inc_e = 'infinity' WHERE inc_s IS NULL;
    ALTER TABLE demo_agent ADD COLUMN dom_name text, ADD COLUMN inc_name text;
    UPDATE demo_agent SET dom_name = v_cats[dom_cat + 1],
                          inc_name = CASE WHEN inc_s < 'infinity' THEN v_cats[inc_cat + 1] END;

    -- versions: v1 before the window; v2..v4 rolled out inside it, one
    -- canary each; only the latest may be unfinished or rolled back.
    UPDATE demo_agent d SET
        v1 = md5(v_key || ':version:' || d.a || ':1')::uuid,
        v2 = CASE WHEN d.nv >= 2 THEN md5(v_key || ':version:' || d.a || ':2')::uuid END,
        v3 = CASE WHEN d.nv >= 3 THEN md5(v_key || ':version:' || d.a || ':3')::uuid END,
        v4 = CASE WHEN d.nv >= 4 THEN md5(v_key || ':version:' || d.a || ':4')::uuid END,
        s2 = CASE WHEN d.nv >= 2 THEN v_start + (1.0 / d.nv + 0.5 / d.nv * d.u_dep2) * make_interval(days => p_days) END,
        s3 = CASE WHEN d.nv >= 3 THEN v_start + (2.0 / d.nv + 0.5 / d.nv * d.u_dep3) * make_interval(days => p_days) END,
        s4 = CASE WHEN d.nv >= 4 THEN v_start + (3.0 / d.nv + 0.5 / d.nv * d.u_dep4) * make_interval(days => p_days) END,
        f2 = 0.1 + 0.2 * d.u_dep3, f3 = 0.1 + 0.2 * d.u_dep4, f4 = 0.1 + 0.2 * d.u_dep2;
    UPDATE demo_agent d SET
        c2 = d.s2 + (0.004 + 0.02 * d.u_dep4) * make_interval(days => p_days),
        c3 = d.s3 + (0.004 + 0.02 * d.u_dep2) * make_interval(days => p_days),
        c4 = d.s4 + (0.004 + 0.02 * d.u_dep3) * make_interval(days => p_days),
        d_last = d.last_status = 'completed' OR d.nv = 1;
    -- the latest rollout: in progress or paused (started lately, not
    -- ended, its current traffic share), or rolled back (ended early)
    UPDATE demo_agent d SET
        s2 = CASE WHEN d.nv = 2 THEN x.s ELSE d.s2 END,
        s3 = CASE WHEN d.nv = 3 THEN x.s ELSE d.s3 END,
        s4 = CASE WHEN d.nv = 4 THEN x.s ELSE d.s4 END,
        c2 = CASE WHEN d.nv = 2 THEN 'infinity' ELSE d.c2 END,
        c3 = CASE WHEN d.nv = 3 THEN 'infinity' ELSE d.c3 END,
        c4 = CASE WHEN d.nv = 4 THEN 'infinity' ELSE d.c4 END,
        f2 = CASE WHEN d.nv = 2 THEN x.f ELSE d.f2 END,
        f3 = CASE WHEN d.nv = 3 THEN x.f ELSE d.f3 END,
        f4 = CASE WHEN d.nv = 4 THEN x.f ELSE d.f4 END
      FROM (SELECT a, v_end - (0.01 + 0.05 * u_misc) * make_interval(days => p_days) AS s,
                   (ARRAY[0.05, 0.10, 0.25, 0.50])[1 + floor(u_dep4 * 4)::integer] AS f
              FROM demo_agent) x
     WHERE x.a = d.a AND d.nv >= 2 AND d.last_status IN ('in_progress', 'paused');
    UPDATE demo_agent d SET
        c2 = CASE WHEN d.nv = 2 THEN d.s2 + (d.c2 - d.s2) / 2 ELSE d.c2 END,
        c3 = CASE WHEN d.nv = 3 THEN d.s3 + (d.c3 - d.s3) / 2 ELSE d.c3 END,
        c4 = CASE WHEN d.nv = 4 THEN d.s4 + (d.c4 - d.s4) / 2 ELSE d.c4 END,
        bad_version = CASE d.nv WHEN 2 THEN d.v2 WHEN 3 THEN d.v3 ELSE d.v4 END
     WHERE d.nv >= 2 AND d.last_status = 'rolled_back';
    UPDATE demo_agent SET s2 = coalesce(s2, 'infinity'), s3 = coalesce(s3, 'infinity'),
                          s4 = coalesce(s4, 'infinity'), c2 = coalesce(c2, 'infinity'),
                          c3 = coalesce(c3, 'infinity'), c4 = coalesce(c4, 'infinity'),
                          f2 = coalesce(f2, 0), f3 = coalesce(f3, 0), f4 = coalesce(f4, 0);
    ANALYZE demo_agent;

    INSERT INTO agents (id, name, description, capabilities, metadata, is_active, state,
                        current_task, last_heartbeat_at, created_at, updated_at)
    SELECT d.id, d.name,
           format('%s %s agent (demo fleet)', initcap(d.domain), d.role),
           ARRAY[d.role, d.tool1, d.tool2],
           jsonb_build_object('region', d.region, 'tier', d.svc_tier, 'team', d.domain),
           true, s.state,
           CASE WHEN s.state = 'busy' THEN format('task-%s', to_hex(hashint8extended(d.a, v_s[4]) & 68719476735)) END,
           s.beat, d.created_at, greatest(d.created_at, s.beat)
      FROM demo_agent d,
           LATERAL (SELECT CASE WHEN d.u_state < 0.06 THEN 'offline'
                                WHEN d.tier = 'critical' AND d.u_state < 0.3 THEN 'error'
                                WHEN d.u_state < 0.55 THEN 'busy' ELSE 'idle' END AS state,
                           CASE WHEN d.u_state < 0.06
                                THEN v_end - make_interval(mins => 30 + floor(d.u_state * 20000)::integer)
                                ELSE v_end - make_interval(secs => floor(d.u_misc * 30)) END AS beat) s
     ORDER BY d.a;

    INSERT INTO agent_versions (id, agent_id, version, config, is_active, created_at)
    SELECT v.id, d.id,
           format('%s.%s.%s', 1 + d.a % 3, v.k - 1, (hashint8extended(d.a * 8 + v.k, v_s[5]) & 1023) % 7),
           jsonb_build_object('model', m.model, 'fallback_model', fb.model,
                              'temperature', round((0.1 * ((d.a + v.k) % 8))::numeric, 1),
                              'max_tokens', 4096, 'prompt_revision', v.k),
           -- active: the newest version that is fully rolled out
           v.k = CASE WHEN d.d_last THEN d.nv ELSE d.nv - 1 END,
           CASE WHEN v.k = 1 THEN d.created_at + interval '1 hour'
                ELSE v.s - (0.005 + 0.01 * d.u_misc) * make_interval(days => p_days) END
      FROM demo_agent d
      JOIN demo_model m ON m.m = d.m_pri
      JOIN demo_model fb ON fb.m = d.m_fb
      CROSS JOIN LATERAL (VALUES (1, d.v1, NULL::timestamptz), (2, d.v2, d.s2),
                                 (3, d.v3, d.s3), (4, d.v4, d.s4)) v (k, id, s)
     WHERE v.k <= d.nv
     ORDER BY d.a, v.k;
    GET DIAGNOSTICS v_sum.versions = ROW_COUNT;

    INSERT INTO canary_deployments (id, agent_id, old_version_id, new_version_id, status,
                                    traffic_percent, started_at, completed_at, created_at, updated_at)
    SELECT md5(v_key || ':deployment:' || d.a || ':' || v.k)::uuid, d.id, v.old, v.new, v.status,
           CASE WHEN v.status = 'completed' THEN 100 ELSE round(v.f * 100)::integer END,
           v.s, v.c, v.s, coalesce(v.c, v_end - make_interval(mins => floor(d.u_misc * 50)::integer))
      FROM demo_agent d
      CROSS JOIN LATERAL (VALUES
          (1, NULL::uuid, d.v1, 'completed', 1.0::double precision,
           d.created_at + interval '1 hour', d.created_at + interval '2 hours'),
          (2, d.v1, d.v2, CASE WHEN d.nv = 2 THEN d.last_status ELSE 'completed' END, d.f2, d.s2, d.c2),
          (3, d.v2, d.v3, CASE WHEN d.nv = 3 THEN d.last_status ELSE 'completed' END, d.f3, d.s3, d.c3),
          (4, d.v3, d.v4, CASE WHEN d.nv = 4 THEN d.last_status ELSE 'completed' END, d.f4, d.s4, d.c4)
      ) v0 (k, old, new, status, f, s, c0)
      CROSS JOIN LATERAL (SELECT v0.*, CASE WHEN v0.status IN ('completed', 'rolled_back') THEN v0.c0 END AS c) v
     WHERE v.k <= d.nv
     ORDER BY d.a, v.k;
    GET DIAGNOSTICS v_sum.deployments = ROW_COUNT;

    -- agent slots: a row's agent is v_slot_agent[hash & (slots - 1)], each
    -- agent owning a run of slots in proportion to its volume weight
    WITH c AS (
        SELECT a, sum(weight) OVER (ORDER BY a) AS cw, sum(weight) OVER () AS tw FROM demo_agent
    ), r AS (
        SELECT a, floor(v_slots * coalesce(lag(cw) OVER (ORDER BY a), 0) / tw)::integer AS lo,
               CASE WHEN a = p_agents THEN v_slots ELSE floor(v_slots * cw / tw)::integer END AS hi
          FROM c
    )
    SELECT array_agg(r.a::integer ORDER BY s) INTO v_slot_agent FROM r, generate_series(r.lo, r.hi - 1) s;

    -- what the rows need of their agent (small: the join stays in cache)
    CREATE TEMP TABLE demo_slot ON COMMIT DROP AS
    SELECT r.a::integer AS a, r.id AS agent_id, r.fail_p, r.sh_timeout, r.sh_cancel, r.dom_cat,
           r.m_pri, r.m_fb, r.fb_share, r.lat_factor, r.prompt_med, r.comp_med, r.cache_frac,
           r.timeout_ms, r.inc_s, r.inc_e, r.inc_cat, r.msgs, r.bad_version,
           r.v1, r.v2, r.v3, r.v4, r.s2, r.s3, r.s4, r.c2, r.c3, r.c4, r.f2, r.f3, r.f4, r.d_last,
           r.meta_g, r.meta_s, r.meta_b, r.pass_p, r.eval_cov, r.evaluator
      FROM demo_agent r;
    ANALYZE demo_slot;

    -- hour slots: rows r0 .. r0 + n - 1 start in [t0, t0 + 1 h); n follows
    -- the daily and weekly rhythm, a growth of ~25 % over the window, noise
    CREATE TEMP TABLE demo_hour ON COMMIT DROP AS
    WITH s AS (
        SELECT k, v_end - (v_hours - k) * interval '1 hour' AS t0 FROM generate_series(0, v_hours - 1) k
    ), w AS (
        SELECT k, t0,
               (0.12 + exp(-(((x.hod - 13.5) / 4.0) ^ 2)) + 0.45 * exp(-(((x.hod - 19.5) / 2.2) ^ 2)))
               * CASE x.dow WHEN 6 THEN 0.42 WHEN 7 THEN 0.33 ELSE 1.0 END
               * (0.8 + 0.2 * k / v_hours)
               * (0.88 + 0.24 * demo_hu(k, v_s[6])) AS w
          FROM s, LATERAL (SELECT extract(hour FROM t0 AT TIME ZONE 'UTC')
                                  + extract(minute FROM t0 AT TIME ZONE 'UTC') / 60.0 + 0.5 AS hod,
                                  extract(isodow FROM t0 AT TIME ZONE 'UTC') AS dow) x
    ), c AS (
        SELECT k, t0, sum(w) OVER (ORDER BY k) AS cw, sum(w) OVER () AS tw FROM w
    ), r AS (
        SELECT k, t0, floor(p_executions * coalesce(lag(cw) OVER (ORDER BY k), 0) / tw)::bigint AS r0,
               CASE WHEN k = v_hours - 1 THEN p_executions
                    ELSE floor(p_executions * cw / tw)::bigint END AS r1
          FROM c
    )
    SELECT k, t0, r0, r1 - r0 AS n, r0 / c_chunk AS chunk,
           (3600000000.0 / greatest(r1 - r0, 1))::double precision AS us      -- microseconds per row
      FROM r;
    CREATE INDEX ON demo_hour (chunk);
    ANALYZE demo_hour;

    -- fkey: what a problem groups by - agent and category, or for provider
    -- trouble model and category
    CREATE TEMP TABLE demo_sighting (
        fkey text, agent_id uuid, model text, category text, message text,
        started_at timestamptz, execution_id uuid
    ) ON COMMIT DROP;

    -- ------------------------------ executions (with evaluations), sightings
    -- Into an empty table, the secondary indexes are built once at the end
    -- (a sort each) rather than row by row: ~25 of the ~150 s of 10,000,000
    -- rows. Their definitions are read back from the catalog, so they stay
    -- the ones of 001. The primary key stays (foreign keys need it; its
    -- ids grow, so it is appended to).
    IF p_executions >= c_chunk AND NOT EXISTS (SELECT 1 FROM executions) THEN
        SELECT array_agg(pg_get_indexdef(i.indexrelid)) INTO v_indexes
          FROM pg_index i
         WHERE i.indrelid = 'executions'::regclass AND NOT i.indisunique;
        EXECUTE (SELECT 'DROP INDEX ' || string_agg(i.indexrelid::regclass::text, ', ')
                   FROM pg_index i
                  WHERE i.indrelid = 'executions'::regclass AND NOT i.indisunique);
    END IF;
    v_chunks := (p_executions + c_chunk - 1) / c_chunk;
    -- The chunk statement is all expressions over a million rows: JIT
    -- (without inlining and optimization, which cost more than they save
    -- here) takes ~15 % off; its row estimates are too low to reach the
    -- default thresholds. Only when no trigger runs a query per row: JIT
    -- compiles anew for every execution of a plan. The RETURNING rows of a
    -- chunk stay in memory.
    IF NOT EXISTS (SELECT 1 FROM pg_trigger t
                    WHERE t.tgrelid = 'executions'::regclass
                      AND t.tgtype & 1 <> 0                -- per row
                      AND t.tgtype & 4 <> 0                -- on INSERT
                      AND NOT t.tgisinternal AND t.tgenabled <> 'D') THEN
        PERFORM set_config('jit_above_cost', '0', true),
                set_config('jit_inline_above_cost', '-1', true),
                set_config('jit_optimize_above_cost', '-1', true);
    END IF;
    PERFORM set_config('work_mem', '256MB', true);
    -- The rows reference only the agents and versions made above, in this
    -- transaction: the reference check of executions (functions/01_core.sql)
    -- is off for the load (it would keep every row of a chunk a second time
    -- to look at it; tests/demo_fleet_check.sql checks the references
    -- afterwards).
    ALTER TABLE executions DISABLE TRIGGER executions_references_insert;
    FOR v_c IN 0 .. v_chunks - 1 LOOP
        v_t := clock_timestamp();
        WITH x AS (
            INSERT INTO executions (id, agent_id, agent_version_id, model, task_id, started_at,
                                    finished_at, latency_ms, status, prompt_tokens, completion_tokens,
                                    cache_read_tokens, cost_usd, error_category, error_message,
                                    eval_passed, eval_score, eval_evaluator, evaluated_at,
                                    metadata, ingested_at)
            SELECT l5.id, l5.agent_id, l5.version_id, l5.model, l5.task_id, l5.st,
                   l5.st + l5.lat * interval '1 millisecond', l5.lat, l5.status, l5.pt, l5.ct, l5.crt,
                   -- micro-dollars: bigint to numeric is cheap, float8 to numeric is not
                   round((l5.pt - l5.crt) * l5.p_in + l5.crt * l5.p_cache + l5.ct * l5.p_out)::bigint::numeric * 0.000001,
                   v_cats[l5.cat + 1],
                   l5.msgs[l5.cat * 3 + l5.mk + 1],
                   -- the evaluation, if any: a few minutes after the run, by v_end
                   CASE WHEN l5.evaluated THEN l5.passed END,
                   CASE WHEN l5.evaluated THEN round(CASE WHEN l5.passed THEN 700 + 300 * sqrt(l5.u3)
                                                          ELSE 620 * l5.u3 END) / 1000 END,
                   CASE WHEN l5.evaluated THEN l5.evaluator END,
                   CASE WHEN l5.evaluated THEN least(l5.st + (l5.lat + 2000 + l5.u3 * 600000) * interval '1 millisecond',
                                                     v_end) END,
                   l5.meta,
                   l5.st + (l5.lat + l5.lag) * interval '1 millisecond'
              FROM (
               SELECT l4.*, demo_u(l4.g, 32) AS u3,
                      l4.status = 'succeeded'
                        AND demo_u(l4.g, 16) < l4.pass_p - CASE WHEN l4.version_id = l4.bad_version THEN 0.2::double precision ELSE 0 END AS passed,
                      CASE WHEN l4.status = 'succeeded' THEN demo_u(l4.g, 0) < l4.eval_cov
                           ELSE demo_u(l4.g, 0) < 0.5 END AS evaluated
                 FROM (
                SELECT l3.*, uuid_hash_extended(l3.id, v_s[11]) AS g,
                       -- an execution has ended (and been reported) by v_end
                       least(l3.t, v_end - (l3.lat + l3.lag) * interval '1 millisecond') AS st
                  FROM (
                    SELECT l2.id, l2.agent_id, l2.t, l2.msgs, l2.meta, l2.task_id, l2.version_id,
                           l2.status, l2.cat, l2.mk, l2.model, l2.p_in, l2.p_out, l2.p_cache,
                           l2.pass_p, l2.eval_cov, l2.evaluator, l2.bad_version,
                           l2.ctok AS ct,
                           CASE WHEN l2.cat = 5 THEN l2.ctx + l2.ptok % 4096 ELSE l2.ptok END AS pt,
                           CASE WHEN l2.caches THEN floor(l2.ptok * l2.cache_frac * l2.uc)::bigint ELSE 0 END AS crt,
                           greatest(40, CASE l2.status
                               WHEN 'succeeded' THEN least(l2.lat0, l2.timeout_ms * 0.98::double precision)
                               WHEN 'timeout' THEN l2.timeout_ms + l2.lat0::bigint % 2000
                               WHEN 'cancelled' THEN least(l2.lat0, l2.timeout_ms) * l2.uc
                               ELSE least(l2.lat0, l2.timeout_ms) * (0.2 + 0.8 * l2.uc) END)::integer AS lat,
                           200 + floor(l2.ul * 2800)::integer AS lag
                      FROM (
                        SELECT l1.*, m.model, m.p_in, m.p_out, m.p_cache, m.caches, m.ctx,
                               -- lognormal latency (Box-Muller normal), a 2 % tail 1.5-6x longer
                               (m.lat_med * l1.lat_factor * exp(m.sigma * l1.z1)
                                 * CASE WHEN l1.ut < 0.02 THEN 1.5 + l1.ut * 225 ELSE 1 END) AS lat0,
                               round(l1.comp_med * exp(0.45 * l1.z1 + 0.35 * l1.z2))::bigint AS ctok,
                               round(l1.prompt_med * exp(0.5 * l1.z3))::bigint AS ptok,
                               CASE WHEN l1.status = 'succeeded' THEN NULL
                                    WHEN l1.status = 'timeout' THEN 0
                                    WHEN l1.status = 'cancelled' THEN 1
                                    WHEN l1.incident THEN l1.inc_cat
                                    WHEN l1.ue < 0.5 THEN l1.dom_cat
                                    ELSE 2 + floor((l1.ue - 0.5) * 10)::integer END AS cat,
                               CASE WHEN l1.uk < 0.6 THEN 0 WHEN l1.uk < 0.9 THEN 1 ELSE 2 END AS mk
                          FROM (
                            SELECT l0.*,
                                   CASE WHEN l0.incident AND l0.us < 0.45 THEN 'failed'
                                        WHEN l0.us >= l0.fail_p + CASE WHEN l0.version_id = l0.bad_version THEN 0.12::double precision ELSE 0 END
                                            THEN 'succeeded'
                                        WHEN l0.us < l0.fail_p * l0.sh_timeout THEN 'timeout'
                                        WHEN l0.us < l0.fail_p * (l0.sh_timeout + l0.sh_cancel) THEN 'cancelled'
                                        ELSE 'failed' END AS status
                              FROM (
                                SELECT g.id, g.t, g.us, g.ut, g.ue, g.uk, g.uc, g.ul, g.task_id,
                                       g.rr * cos(g.th) AS z1, g.rr * sin(g.th) AS z2, g.z3,
                                       s.agent_id, s.fail_p, s.sh_timeout, s.sh_cancel, s.dom_cat,
                                       s.lat_factor, s.prompt_med, s.comp_med, s.cache_frac, s.timeout_ms,
                                       s.inc_cat, s.msgs, s.bad_version, s.pass_p, s.eval_cov, s.evaluator,
                                       g.t >= s.inc_s AND g.t < s.inc_e AS incident,
                                       CASE WHEN g.um < s.fb_share THEN s.m_fb ELSE s.m_pri END AS mi,
                                       CASE WHEN g.uv < 0.2 THEN s.meta_g WHEN g.uv < 0.5 THEN s.meta_s ELSE s.meta_b END AS meta,
                                       CASE WHEN g.t >= s.s4 THEN
                                                CASE WHEN g.t >= s.c4 THEN CASE WHEN s.d_last THEN s.v4 ELSE s.v3 END
                                                     WHEN g.uv2 < s.f4 THEN s.v4 ELSE s.v3 END
                                            WHEN g.t >= s.s3 THEN
                                                CASE WHEN g.t >= s.c3 THEN CASE WHEN s.d_last OR s.s4 < 'infinity' THEN s.v3 ELSE s.v2 END
                                                     WHEN g.uv2 < s.f3 THEN s.v3 ELSE s.v2 END
                                            WHEN g.t >= s.s2 THEN
                                                CASE WHEN g.t >= s.c2 THEN CASE WHEN s.d_last OR s.s3 < 'infinity' THEN s.v2 ELSE s.v1 END
                                                     WHEN g.uv2 < s.f2 THEN s.v2 ELSE s.v1 END
                                            ELSE s.v1 END AS version_id
                                  FROM (
                                    SELECT (v_prefix || to_hex(i | c_top))::uuid AS id,
                                           h.t0 + ((i - h.r0) + demo_u(h1, 0)) * h.us * interval '1 microsecond' AS t,
                                           v_slot_agent[(h1 & (v_slots - 1)) + 1] AS a,
                                           demo_u(h1, 16) AS um, demo_u(h1, 32) AS uv, demo_u(h1, 48) AS uv2,
                                           sqrt(-2 * ln(1 - demo_u(h2, 0))) AS rr, 2 * pi() * demo_u(h2, 16) AS th,
                                           demo_u(h2, 32) AS us, demo_u(h2, 48) AS ut,
                                           sqrt(-2 * ln(1 - demo_u(h3, 0))) * cos(2 * pi() * demo_u(h3, 16)) AS z3,
                                           demo_u(h3, 32) AS ue, demo_u(h3, 48) AS uk,
                                           demo_u(h4, 0) AS uc,
                                           demo_u(h4, 16) AS ul,
                                           'task-' || to_hex((h4 >> 32) & 4294967295) AS task_id
                                      FROM (SELECT h.*, i,
                                                   hashint8extended(i, v_s[7]) AS h1, hashint8extended(i, v_s[8]) AS h2,
                                                   hashint8extended(i, v_s[9]) AS h3, hashint8extended(i, v_s[10]) AS h4
                                              FROM (SELECT * FROM demo_hour WHERE chunk = v_c AND n > 0 ORDER BY k) h,
                                                   generate_series(h.r0, h.r0 + h.n - 1) i
                                            OFFSET 0) h
                                    OFFSET 0) g
                                  JOIN demo_slot s ON s.a = g.a
                                OFFSET 0) l0
                            OFFSET 0) l1
                          JOIN demo_model m ON m.m = l1.mi
                        OFFSET 0) l2
                    OFFSET 0) l3
                OFFSET 0) l4
               OFFSET 0) l5
            RETURNING executions.id, executions.agent_id, executions.agent_version_id, executions.model,
                      executions.status, executions.error_category, executions.error_message,
                      executions.started_at, executions.finished_at, executions.latency_ms,
                      executions.cost_usd, executions.eval_passed
        ), si AS (
            -- problem sightings, ~1 % of the executions: the failures an
            -- agent is known for (its dominant kind, incidents, timeouts if
            -- it has many, provider rate limits and errors); among successes, slow
            -- or costly runs and wrong answers of agents that are not healthy
            INSERT INTO demo_sighting (fkey, agent_id, model, category, message, started_at, execution_id)
            SELECT CASE WHEN z.category IN ('rate_limit', 'model_error') THEN z.model || '/' || z.category
                        ELSE z.agent_id || '/' || z.category END,
                   z.agent_id, z.model, z.category, z.error_message, z.started_at, z.id
              FROM (SELECT x.agent_id, x.model, x.error_message, x.started_at, x.id,
                           CASE WHEN x.status = 'succeeded' THEN
                                    CASE WHEN x.latency_ms >= 30000 THEN 'latency_regression'
                                         WHEN x.cost_usd >= 0.25 THEN 'cost_spike'
                                         WHEN d.tier <> 'healthy' THEN 'hallucination' END
                                WHEN x.error_category IN ('rate_limit', 'model_error', d.dom_name, d.inc_name)
                                  OR (x.error_category = 'timeout' AND d.sh_timeout >= 0.11)
                                    THEN x.error_category END AS category
                      FROM x JOIN demo_agent d ON d.id = x.agent_id
                     WHERE (uuid_hash_extended(x.id, v_s[12]) & 65535)
                           < CASE WHEN x.status = 'succeeded' THEN 800 ELSE 12000 END) z
             WHERE z.category IS NOT NULL
        )
        SELECT count(x.eval_passed) INTO v_n FROM x;
        v_evals := v_evals + v_n;

        SELECT v_done + sum(n) INTO v_done FROM demo_hour WHERE chunk = v_c;
        RAISE NOTICE 'demo_fleet: % of % executions (chunk: % s)', v_done, p_executions,
            round(extract(epoch FROM clock_timestamp() - v_t)::numeric, 1);
    END LOOP;
    IF v_indexes IS NOT NULL THEN
        v_t := clock_timestamp();
        PERFORM set_config('maintenance_work_mem', '1GB', true);
        FOREACH v_tmp IN ARRAY v_indexes LOOP
            EXECUTE v_tmp;
        END LOOP;
        RAISE NOTICE 'demo_fleet: % indexes of executions built (% s)', cardinality(v_indexes),
            round(extract(epoch FROM clock_timestamp() - v_t)::numeric, 1);
    END IF;

    ALTER TABLE executions ENABLE ALWAYS TRIGGER executions_references_insert;
    PERFORM set_config('jit_above_cost', v_jit[1], true),
            set_config('jit_inline_above_cost', v_jit[2], true),
            set_config('jit_optimize_above_cost', v_jit[3], true),
            set_config('work_mem', v_jit[4], true);

    -- ----------------------------------------------------------- problems
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
               'demo-' || substr(v_key, 1, 8) || ':' || coalesce(d.name, 'fleet:' || g.model)
                 || ':' || g.category AS fingerprint
          FROM g LEFT JOIN demo_agent d ON d.id = g.agent_id
    )
    SELECT f.*, demo_hu(hashtext(f.fingerprint), v_s[4]) AS u,
           percent_rank() OVER (ORDER BY f.occ, f.fingerprint) AS occ_rank
      FROM f;

    INSERT INTO problems (id, agent_id, execution_id, fingerprint, category, severity, title,
                          description, status, occurrences, first_seen_at, last_seen_at,
                          resolved_at, created_at, updated_at)
    SELECT md5(v_key || ':problem:' || p.fingerprint || ':' || p.part)::uuid,
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
                    WHEN q.last_seen < v_end - interval '3 days' AND q.u < 0.8 THEN 'resolved'
                    WHEN q.u < 0.55 THEN 'open' ELSE 'investigating' END AS status,
               CASE WHEN q.part = 1 THEN q.last_seen + interval '10 minutes'
                    WHEN q.last_seen < v_end - interval '3 days' AND q.u < 0.8
                        THEN least(q.last_seen + (1 + 40 * q.u) * interval '1 hour', v_end) END AS resolved_at
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
    GET DIAGNOSTICS v_sum.problems = ROW_COUNT;

    -- ------------------------------------------------------------- alerts
    INSERT INTO alerts (id, fingerprint, severity, title, message, agent_id, execution_id, status,
                        acknowledged_at, acknowledged_by, ends_at, resolved_by, starts_at,
                        last_seen_at, created_at, updated_at)
    SELECT md5(v_key || ':alert:' || al.k)::uuid, left(md5(v_key || ':fingerprint:' || al.k), 16),
           al.severity, al.title, al.message, al.agent_id,
           al.execution_id, al.status, al.ack_at,
           CASE WHEN al.ack_at IS NOT NULL
                THEN (ARRAY['alice@example.com', 'bob@example.com', 'chen@example.com',
                            'dana@example.com'])[1 + floor(al.u * 4)::integer] END,
           al.resolved_at,
           CASE WHEN al.status = 'resolved'
                THEN (ARRAY['alice@example.com', 'bob@example.com', 'oncall-bot'])[1 + floor(al.u * 3)::integer] END,
           al.created_at, greatest(al.created_at, coalesce(al.resolved_at, v_end)),
           al.created_at, coalesce(al.resolved_at, al.ack_at, al.created_at)
      FROM (SELECT al0.*,
                   -- acknowledged: always; resolved: mostly acknowledged first
                   CASE WHEN al0.status = 'acknowledged' OR (al0.status = 'resolved' AND al0.u < 0.7)
                        THEN least(al0.created_at + (3 + 50 * al0.u) * interval '1 minute',
                                   coalesce(al0.resolved_at, 'infinity'), greatest(al0.created_at, v_end)) END AS ack_at
              FROM (
        -- every critical problem raised one, some high ones too
        SELECT 'p:' || p.id AS k, p.severity, 'Problem: ' || p.title AS title,
               format('%s occurrences so far', p.occurrences) AS message,
               p.agent_id, p.execution_id,
               CASE p.status WHEN 'resolved' THEN 'resolved' WHEN 'investigating' THEN 'acknowledged'
                             ELSE 'firing' END AS status,
               p.resolved_at, least(p.first_seen_at + interval '2 minutes', v_end) AS created_at,
               demo_hu(hashtext(p.id::text), v_s[5]) AS u
          FROM problems p
         WHERE p.fingerprint LIKE 'demo-' || substr(v_key, 1, 8) || ':%'
           AND (p.severity = 'critical' OR (p.severity = 'high' AND demo_hu(hashtext(p.id::text), v_s[6]) < 0.4))
        UNION ALL
        -- agent quality: critical and warning agents, now
        SELECT 'q:' || d.a, CASE d.tier WHEN 'critical' THEN 'critical' ELSE 'medium' END,
               format('%s: success rate below %s %%', d.name, CASE d.tier WHEN 'critical' THEN 70 ELSE 90 END),
               format('Success rate over the last 24 h is about %s %%', round((d.target * 100)::numeric)),
               d.id, NULL,
               CASE WHEN d.u_misc < 0.5 THEN 'firing' ELSE 'acknowledged' END, NULL,
               v_end - (1 + 20 * d.u_misc) * interval '1 hour', d.u_misc
          FROM demo_agent d WHERE d.tier <> 'healthy'
        UNION ALL
        -- the same, earlier in the window, since resolved
        SELECT 'q0:' || d.a, CASE d.tier WHEN 'critical' THEN 'high' ELSE 'low' END,
               format('%s: success rate dropped', d.name),
               'Success rate fell below its 7-day average', d.id, NULL, 'resolved',
               v_start + (0.3 + 0.4 * d.u_inc) * make_interval(days => p_days) + interval '5 hours',
               v_start + (0.3 + 0.4 * d.u_inc) * make_interval(days => p_days), d.u_inc
          FROM demo_agent d WHERE d.tier <> 'healthy' OR d.u_inc < 0.2
        UNION ALL
        -- slow agents
        SELECT 'l:' || d.a, CASE WHEN d.lat_factor > 1.8 THEN 'high' ELSE 'medium' END,
               format('%s: p95 latency above %s s', d.name, round(m.lat_med * d.lat_factor * 2.5 / 1000)),
               'p95 latency over the last hour is above its threshold', d.id, NULL,
               CASE WHEN d.u_dep < 0.4 THEN 'resolved' WHEN d.u_dep < 0.7 THEN 'acknowledged' ELSE 'firing' END,
               CASE WHEN d.u_dep < 0.4 THEN v_end - (2 + 30 * d.u_dep) * interval '1 hour' END,
               v_end - (3 + 60 * d.u_dep) * interval '1 hour', d.u_dep
          FROM demo_agent d JOIN demo_model m ON m.m = d.m_pri
         WHERE d.lat_factor > 1.4
        UNION ALL
        -- expensive agents
        SELECT 'c:' || d.a, 'low', format('%s: daily spend above budget', d.name),
               format('Spend on %s today is above the daily budget', m.model), d.id, NULL,
               CASE WHEN d.u_dep2 < 0.5 THEN 'resolved' ELSE 'firing' END,
               CASE WHEN d.u_dep2 < 0.5 THEN v_end - (1 + 100 * d.u_dep2) * interval '1 hour' END,
               v_end - (2 + 120 * d.u_dep2) * interval '1 hour', d.u_dep2
          FROM demo_agent d JOIN demo_model m ON m.m = d.m_pri
         WHERE m.p_out >= 10 AND d.comp_med > 500
        UNION ALL
        -- rolled-back canaries
        SELECT 'd:' || d.a, 'high', format('%s: canary rolled back', d.name),
               'The new version failed more often than the old one; traffic went back to the old version',
               d.id, NULL, CASE WHEN d.u_dep3 < 0.6 THEN 'resolved' ELSE 'acknowledged' END,
               CASE WHEN d.u_dep3 < 0.6 THEN least(x.c + interval '1 hour', v_end) END,
               x.c, d.u_dep3
          FROM demo_agent d,
               LATERAL (SELECT CASE d.nv WHEN 2 THEN d.c2 WHEN 3 THEN d.c3 ELSE d.c4 END AS c) x
         WHERE d.nv >= 2 AND d.last_status = 'rolled_back'
        UNION ALL
        -- agents that stopped beating
        SELECT 'h:' || a.id, 'medium', format('%s: no heartbeat', a.name),
               format('Last heartbeat at %s', to_char(a.last_heartbeat_at AT TIME ZONE 'UTC', 'YYYY-MM-DD HH24:MI:SS "UTC"')),
               a.id, NULL, 'firing', NULL, a.last_heartbeat_at + interval '5 minutes', 0.5
          FROM demo_agent d JOIN agents a ON a.id = d.id
         WHERE a.state = 'offline'
        UNION ALL
        -- incidents (a tool or provider down for a few hours)
        SELECT 'i:' || d.a, 'critical', format('%s: error rate above 40 %%', d.name),
               format('%s of runs failing', d.msgs[d.inc_cat * 3 + 1]), d.id, NULL,
               'resolved', d.inc_e + interval '10 minutes', d.inc_s + interval '15 minutes', d.u_inc2
          FROM demo_agent d WHERE d.inc_s < 'infinity' AND d.inc_e + interval '10 minutes' <= v_end
              ) al0
           ) al
     ORDER BY al.k;
    GET DIAGNOSTICS v_sum.alerts = ROW_COUNT;

    ANALYZE agents, agent_versions, executions, problems, canary_deployments, alerts;

    v_sum.agents := p_agents;
    v_sum.executions := p_executions;
    v_sum.evaluations := v_evals;
    v_sum.seconds := round(extract(epoch FROM clock_timestamp() - v_clock)::numeric, 1);
    RETURN v_sum;
END;
$fn$;

-- end of demo_fleet_2_rows
