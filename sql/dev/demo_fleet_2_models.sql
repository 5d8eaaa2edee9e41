-- demo_fleet_2_models.sql - demo_fleet_models(): the models the demo fleet
-- runs on (development only, see demo_fleet_1_helpers.sql; called by
-- demo_fleet_rows(), demo_fleet_7_rows.sql)

-- demo_fleet_models() - makes the temp table demo_model (m 0..5, model,
-- provider, median latency and its sigma, prices, caches, context window),
-- read by demo_fleet_agents(), demo_fleet_executions() and
-- demo_fleet_alerts().
CREATE OR REPLACE FUNCTION demo_fleet_models()
RETURNS void
LANGUAGE plpgsql AS $fn$
BEGIN
    PERFORM demo_drop_scratch('demo_model');
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
END;
$fn$;

-- end of demo_fleet_2_models
