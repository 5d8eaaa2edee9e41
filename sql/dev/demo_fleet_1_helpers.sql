-- demo_fleet_1_helpers.sql - the demo fleet's result type and hash helpers
--
-- Development only: sql/migrate.sh never applies sql/dev/; `make run` (an
-- empty database), `make demo`, tests/e2e/test_demo_fleet.py and
-- tests/bench/aggregates.sh load every demo_fleet_*.sql, in name order,
-- and call demo_fleet() (file 8). Every file may be loaded again: this one
-- drops the type and with it the two functions that return it
-- (demo_fleet_rows() and demo_fleet()); the others are CREATE OR REPLACE.
--
--   1 helpers     the result type, hash helpers, error categories, scratch tables
--   2 models      demo_fleet_models()       } the sections of demo_fleet_rows(),
--   3 agents      demo_fleet_agents()       } in the order it calls them; they
--   4 executions  demo_fleet_executions()   } hand each other temp tables
--   5 problems    demo_fleet_problems()     } (demo_model, demo_agent,
--   6 alerts      demo_fleet_alerts()       } demo_sighting) and their rows
--   7 rows        demo_fleet_rows()
--   8 load        demo_fleet()
--
-- demo_fleet() adds a deterministic, realistic demo fleet:
--
--   SELECT * FROM demo_fleet();                      -- 50 agents, 200,000 executions, 30 days
--   SELECT * FROM demo_fleet(50, 10000000, 30);      -- the benchmark size
--   SELECT * FROM demo_fleet(50, 200000, 30, 0.42, '2025-01-31 12:00Z');  -- fixed end
--
-- What it makes: sql/dev/demo_fleet_7_rows.sql; how fast:
-- sql/dev/demo_fleet_4_executions.sql.

DROP TYPE IF EXISTS demo_fleet_summary CASCADE;

-- demo_fleet_summary - what demo_fleet() made (seconds: wall time).
CREATE TYPE demo_fleet_summary AS (
    agents      integer,
    versions    integer,
    executions  bigint,
    evaluations bigint,
    problems    integer,
    deployments integer,
    alerts      integer,
    seconds     numeric
);

-- demo_u - 16 bits of a hash, from bit SHIFT up, as a uniform in [0, 1).
CREATE OR REPLACE FUNCTION demo_u(h bigint, shift integer) RETURNS double precision
LANGUAGE sql IMMUTABLE STRICT PARALLEL SAFE AS $$
    SELECT ((h >> shift) & 65535)::double precision / 65536
$$;

-- demo_hu - a uniform in [0, 1) from (K, SALT), 48 bits.
CREATE OR REPLACE FUNCTION demo_hu(k bigint, salt bigint) RETURNS double precision
LANGUAGE sql IMMUTABLE STRICT PARALLEL SAFE AS $$
    SELECT (hashint8extended(k, salt) & 281474976710655)::double precision / 281474976710656
$$;

-- demo_error_categories - error_category by number (a row's cat + 1):
-- 0 timeout, 1 cancelled, 2 rate_limit, 3 tool_error, 4 invalid_output,
-- 5 context_overflow, 6 model_error.
CREATE OR REPLACE FUNCTION demo_error_categories() RETURNS text[]
LANGUAGE sql IMMUTABLE PARALLEL SAFE AS $$
    SELECT ARRAY['timeout', 'cancelled', 'rate_limit', 'tool_error', 'invalid_output',
                 'context_overflow', 'model_error']
$$;

-- demo_drop_scratch - drops those of the temp tables named that exist (a
-- section's scratch tables of an earlier call in this transaction; they
-- are ON COMMIT DROP), quietly.
CREATE OR REPLACE FUNCTION demo_drop_scratch(VARIADIC p_tables text[]) RETURNS void
LANGUAGE plpgsql AS $$
DECLARE
    v_table text;
BEGIN
    FOREACH v_table IN ARRAY p_tables LOOP
        IF to_regclass('pg_temp.' || v_table) IS NOT NULL THEN
            EXECUTE format('DROP TABLE pg_temp.%I', v_table);
        END IF;
    END LOOP;
END $$;

COMMENT ON FUNCTION demo_u(bigint, integer) IS
    'demo_fleet helper: 16 bits of a hash from bit shift up, as a uniform in [0, 1)';
COMMENT ON FUNCTION demo_hu(bigint, bigint) IS
    'demo_fleet helper: a uniform in [0, 1) hashed from (k, salt)';
COMMENT ON FUNCTION demo_error_categories() IS
    'demo_fleet helper: error categories by number (index cat + 1)';
COMMENT ON FUNCTION demo_drop_scratch(text[]) IS
    'demo_fleet helper: drops the named temp tables that exist';

-- end of demo_fleet_1_helpers
