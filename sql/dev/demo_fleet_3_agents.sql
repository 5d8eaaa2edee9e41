-- demo_fleet_3_agents.sql - demo_fleet_agents(): the demo fleet's agents,
-- their versions and canary deployments (development only, see
-- demo_fleet_1_helpers.sql; called by demo_fleet_rows(),
-- demo_fleet_7_rows.sql)

-- demo_fleet_agents(agents, days, end, existing, key, salts) - P_AGENTS
-- new agents for the window of P_DAYS days ending at P_END; P_EXISTING
-- is the number of agents there before (the candidate names skipped),
-- P_KEY and P_S the run's key and hash salts (demo_fleet_rows()).
-- Reads demo_model (demo_fleet_models()). Makes the temp table
-- demo_agent, one row per new agent (a = 1..p_agents): everything the
-- later sections need of it (quality tier and rates, models, sizes,
-- incident, versions v1..v4 with their canaries' start s, end c and
-- traffic share f, messages, hash draws u_*); inserts agents,
-- agent_versions and canary_deployments. Returns how many versions and
-- deployments it inserted.
CREATE OR REPLACE FUNCTION demo_fleet_agents(
    p_agents integer, p_days integer, p_end timestamptz, p_existing bigint,
    p_key text, p_s bigint[],
    OUT versions integer, OUT deployments integer)
LANGUAGE plpgsql AS $fn$
DECLARE
    v_start    timestamptz := p_end - make_interval(days => p_days);
    v_cats     text[] := demo_error_categories();
BEGIN
    PERFORM demo_drop_scratch('demo_agent');

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
               generate_series(0, p_agents + p_existing - 1) n,
               LATERAL (SELECT ((n * 37 + (p_s[1] & 1023)) % 192)::integer AS c,
                               1 + (hashint8extended(n, p_s[1]) & 1048575) % 19 + 20 * (n / 192) AS num) x
    ), picked AS (
        SELECT row_number() OVER (ORDER BY n) AS a, n, domain, role, name
          FROM cand
         WHERE NOT EXISTS (SELECT 1 FROM agents x WHERE x.name = cand.name)
         ORDER BY n
         LIMIT p_agents
    ), ranked AS (
        SELECT p.*,
               (row_number() OVER (ORDER BY hashint8extended(p.a, p_s[2]), p.a) - 1) % 20 AS qrank
          FROM picked p
    ), base AS (
        SELECT r.*,
               CASE WHEN qrank < 2 THEN 'critical' WHEN qrank < 7 THEN 'warning' ELSE 'healthy' END AS tier,
               demo_hu(r.a, p_s[3] + 1) AS u1, demo_hu(r.a, p_s[3] + 2) AS u2,
               demo_hu(r.a, p_s[3] + 3) AS u3, demo_hu(r.a, p_s[3] + 4) AS u4,
               demo_hu(r.a, p_s[3] + 5) AS u5, demo_hu(r.a, p_s[3] + 6) AS u6,
               demo_hu(r.a, p_s[3] + 7) AS u7, demo_hu(r.a, p_s[3] + 8) AS u8,
               demo_hu(r.a, p_s[3] + 9) AS u9, demo_hu(r.a, p_s[3] + 10) AS u10,
               demo_hu(r.a, p_s[3] + 11) AS u11, demo_hu(r.a, p_s[3] + 12) AS u12,
               demo_hu(r.a, p_s[3] + 13) AS u13, demo_hu(r.a, p_s[3] + 14) AS u14,
               demo_hu(r.a, p_s[3] + 15) AS u15, demo_hu(r.a, p_s[3] + 16) AS u16
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
           md5(p_key || ':agent:' || q3.a)::uuid AS id,
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
        v1 = md5(p_key || ':version:' || d.a || ':1')::uuid,
        v2 = CASE WHEN d.nv >= 2 THEN md5(p_key || ':version:' || d.a || ':2')::uuid END,
        v3 = CASE WHEN d.nv >= 3 THEN md5(p_key || ':version:' || d.a || ':3')::uuid END,
        v4 = CASE WHEN d.nv >= 4 THEN md5(p_key || ':version:' || d.a || ':4')::uuid END,
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
      FROM (SELECT a, p_end - (0.01 + 0.05 * u_misc) * make_interval(days => p_days) AS s,
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
           CASE WHEN s.state = 'busy' THEN format('task-%s', to_hex(hashint8extended(d.a, p_s[4]) & 68719476735)) END,
           s.beat, d.created_at, greatest(d.created_at, s.beat)
      FROM demo_agent d,
           LATERAL (SELECT CASE WHEN d.u_state < 0.06 THEN 'offline'
                                WHEN d.tier = 'critical' AND d.u_state < 0.3 THEN 'error'
                                WHEN d.u_state < 0.55 THEN 'busy' ELSE 'idle' END AS state,
                           CASE WHEN d.u_state < 0.06
                                THEN p_end - make_interval(mins => 30 + floor(d.u_state * 20000)::integer)
                                ELSE p_end - make_interval(secs => floor(d.u_misc * 30)) END AS beat) s
     ORDER BY d.a;

    INSERT INTO agent_versions (id, agent_id, version, config, is_active, created_at)
    SELECT v.id, d.id,
           format('%s.%s.%s', 1 + d.a % 3, v.k - 1, (hashint8extended(d.a * 8 + v.k, p_s[5]) & 1023) % 7),
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
    GET DIAGNOSTICS versions = ROW_COUNT;

    INSERT INTO canary_deployments (id, agent_id, old_version_id, new_version_id, status,
                                    traffic_percent, started_at, completed_at, created_at, updated_at)
    SELECT md5(p_key || ':deployment:' || d.a || ':' || v.k)::uuid, d.id, v.old, v.new, v.status,
           CASE WHEN v.status = 'completed' THEN 100 ELSE round(v.f * 100)::integer END,
           v.s, v.c, v.s, coalesce(v.c, p_end - make_interval(mins => floor(d.u_misc * 50)::integer))
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
    GET DIAGNOSTICS deployments = ROW_COUNT;
END;
$fn$;

-- end of demo_fleet_3_agents
