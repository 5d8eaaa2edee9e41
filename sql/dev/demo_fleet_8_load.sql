-- demo_fleet_8_load.sql - demo_fleet(): the demo fleet loaded in bulk, the
-- rollups rebuilt once at the end (development only, see
-- demo_fleet_1_helpers.sql)

-- demo_fleet(...) - demo_fleet_rows() (demo_fleet_7_rows.sql), with the
-- rollup triggers off for its bulk insert (so that it also keeps its fast
-- path) and the rollups rebuilt from the raw rows at the end: one pass
-- instead of a delta per million-row statement. Holds the ingest tables
-- for its transaction, as the load always did in effect.
CREATE OR REPLACE FUNCTION demo_fleet(p_agents integer DEFAULT 50, p_executions bigint DEFAULT 200000,
                           p_days integer DEFAULT 30, p_seed double precision DEFAULT 0.42,
                           p_end timestamptz DEFAULT NULL)
RETURNS demo_fleet_summary LANGUAGE plpgsql AS $$
DECLARE
    v_clock timestamptz := clock_timestamp();
    r demo_fleet_summary;
BEGIN
    ALTER TABLE executions DISABLE TRIGGER executions_rollup;
    r := demo_fleet_rows(p_agents, p_executions, p_days, p_seed, p_end);
    ALTER TABLE executions ENABLE ALWAYS TRIGGER executions_rollup;
    PERFORM rollup_rebuild();
    r.seconds := extract(epoch FROM clock_timestamp() - v_clock);
    RETURN r;
END $$;

-- end of demo_fleet_8_load
