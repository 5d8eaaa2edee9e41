-- demo_fleet_1_helpers.sql - the demo fleet's result type and hash helpers
--
-- Development only: sql/migrate.sh never applies sql/dev/; `make run` (an
-- empty database), `make demo`, tests/e2e/test_demo_fleet.py and
-- tests/bench/aggregates.sh load the three files, in name order, and call
-- demo_fleet() (file 3). Every file may be loaded again: the first drops
-- the type and with it every function of the three.
--
-- demo_fleet() adds a deterministic, realistic demo fleet:
--
--   SELECT * FROM demo_fleet();                      -- 50 agents, 200,000 executions, 30 days
--   SELECT * FROM demo_fleet(50, 10000000, 30);      -- the benchmark size
--   SELECT * FROM demo_fleet(50, 200000, 30, 0.42, '2025-01-31 12:00Z');  -- fixed end
--
-- What it makes, and how fast: sql/dev/demo_fleet_2_rows.sql.

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

COMMENT ON FUNCTION demo_u(bigint, integer) IS
    'demo_fleet helper: 16 bits of a hash from bit shift up, as a uniform in [0, 1)';
COMMENT ON FUNCTION demo_hu(bigint, bigint) IS
    'demo_fleet helper: a uniform in [0, 1) hashed from (k, salt)';

-- end of demo_fleet_1_helpers
