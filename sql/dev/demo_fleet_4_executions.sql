-- demo_fleet_4_executions.sql - demo_fleet_executions(): the demo fleet's
-- executions with their evaluations, and the problem sightings among them
-- (development only, see demo_fleet_1_helpers.sql; called by
-- demo_fleet_rows(), demo_fleet_7_rows.sql)
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
-- reference only what demo_fleet_agents() made in the same transaction.

-- demo_fleet_executions(agents, executions, days, end, prefix, salts) -
-- P_EXECUTIONS executions over the P_DAYS days ending at P_END, spread
-- over the P_AGENTS agents of demo_agent (demo_fleet_agents()) by their
-- volume weight, on the models of demo_model; P_PREFIX (the first 16 hex
-- digits of every id) and P_S (hash salts) from demo_fleet_rows().
-- Makes the temp tables demo_slot (what a row needs of its agent) and
-- demo_hour (the hour slots, in chunks), and demo_sighting: the problem
-- sightings, which demo_fleet_problems() reads. Returns the number of
-- evaluations.
CREATE OR REPLACE FUNCTION demo_fleet_executions(
    p_agents integer, p_executions bigint, p_days integer, p_end timestamptz,
    p_prefix text, p_s bigint[])
RETURNS bigint
LANGUAGE plpgsql AS $fn$
DECLARE
    c_chunk    CONSTANT bigint := 1000000;    -- executions per INSERT
    c_top      CONSTANT bigint := -9223372036854775807 - 1;
    v_hours    integer := p_days * 24;
    v_slots    integer := greatest(4096, (2 ^ ceil(log(2, p_agents * 16.0)))::integer);  -- agent slots (a power of two)
    v_slot_agent integer[];
    v_jit      text[] := ARRAY[current_setting('jit_above_cost'), current_setting('jit_inline_above_cost'),
                               current_setting('jit_optimize_above_cost'), current_setting('work_mem')];
    v_indexes  text[];                        -- secondary indexes of executions, rebuilt at the end
    v_ddl      text;
    v_chunks   bigint;
    v_done     bigint := 0;
    v_evals    bigint := 0;
    v_cats     text[] := demo_error_categories();
    v_n        bigint;
    v_t        timestamptz;
BEGIN
    PERFORM demo_drop_scratch('demo_slot', 'demo_hour', 'demo_sighting');

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
        SELECT k, p_end - (v_hours - k) * interval '1 hour' AS t0 FROM generate_series(0, v_hours - 1) k
    ), w AS (
        SELECT k, t0,
               (0.12 + exp(-(((x.hod - 13.5) / 4.0) ^ 2)) + 0.45 * exp(-(((x.hod - 19.5) / 2.2) ^ 2)))
               * CASE x.dow WHEN 6 THEN 0.42 WHEN 7 THEN 0.33 ELSE 1.0 END
               * (0.8 + 0.2 * k / v_hours)
               * (0.88 + 0.24 * demo_hu(k, p_s[6])) AS w
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
    -- The rows reference only the agents and versions demo_fleet_agents()
    -- made, in this transaction: the reference check of executions
    -- (functions/01_core.sql) is off for the load (it would keep every row
    -- of a chunk a second time to look at it; tests/demo_fleet_check.sql
    -- checks the references afterwards).
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
                   -- the evaluation, if any: a few minutes after the run, by p_end
                   CASE WHEN l5.evaluated THEN l5.passed END,
                   CASE WHEN l5.evaluated THEN round(CASE WHEN l5.passed THEN 700 + 300 * sqrt(l5.u3)
                                                          ELSE 620 * l5.u3 END) / 1000 END,
                   CASE WHEN l5.evaluated THEN l5.evaluator END,
                   CASE WHEN l5.evaluated THEN least(l5.st + (l5.lat + 2000 + l5.u3 * 600000) * interval '1 millisecond',
                                                     p_end) END,
                   l5.meta,
                   l5.st + (l5.lat + l5.lag) * interval '1 millisecond'
              FROM (
               SELECT l4.*, demo_u(l4.g, 32) AS u3,
                      l4.status = 'succeeded'
                        AND demo_u(l4.g, 16) < l4.pass_p - CASE WHEN l4.version_id = l4.bad_version THEN 0.2::double precision ELSE 0 END AS passed,
                      CASE WHEN l4.status = 'succeeded' THEN demo_u(l4.g, 0) < l4.eval_cov
                           ELSE demo_u(l4.g, 0) < 0.5 END AS evaluated
                 FROM (
                SELECT l3.*, uuid_hash_extended(l3.id, p_s[11]) AS g,
                       -- an execution has ended (and been reported) by p_end
                       least(l3.t, p_end - (l3.lat + l3.lag) * interval '1 millisecond') AS st
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
                                    SELECT (p_prefix || to_hex(i | c_top))::uuid AS id,
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
                                                   hashint8extended(i, p_s[7]) AS h1, hashint8extended(i, p_s[8]) AS h2,
                                                   hashint8extended(i, p_s[9]) AS h3, hashint8extended(i, p_s[10]) AS h4
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
                     WHERE (uuid_hash_extended(x.id, p_s[12]) & 65535)
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
        FOREACH v_ddl IN ARRAY v_indexes LOOP
            EXECUTE v_ddl;
        END LOOP;
        RAISE NOTICE 'demo_fleet: % indexes of executions built (% s)', cardinality(v_indexes),
            round(extract(epoch FROM clock_timestamp() - v_t)::numeric, 1);
    END IF;

    ALTER TABLE executions ENABLE ALWAYS TRIGGER executions_references_insert;
    PERFORM set_config('jit_above_cost', v_jit[1], true),
            set_config('jit_inline_above_cost', v_jit[2], true),
            set_config('jit_optimize_above_cost', v_jit[3], true),
            set_config('work_mem', v_jit[4], true);

    RETURN v_evals;
END;
$fn$;

-- end of demo_fleet_4_executions
