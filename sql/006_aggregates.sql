-- 006_aggregates.sql - the tables and types of the aggregates: materialized
-- rollups of executions with mergeable latency sketches, kept fresh from
-- pending deltas. Their functions, views and triggers are the repeatable
-- files sql/functions/1*_aggregates_*.sql (deltas, folding, reading,
-- endpoints, widget data), applied after the numbered migrations.
--
-- How a number stays exact and fresh
--   * Every statement that inserts executions (or changes their evaluation)
--     appends its rows, pre-aggregated per 5-minute bucket x agent x model, to
--     rollup_delta, in the same transaction (statement triggers, sql/functions/10).
--     What a 2xx acknowledged is therefore in rollup_delta or already in
--     the rollups - never in neither, never in both.
--   * rollup_refresh() (the maintenance job, every second) moves the deltas
--     into rollup_5m, rollup_1h, rollup_6h, rollup_1d and rollup_7d in one
--     transaction: the watermark is "every delta committed before that
--     transaction". A late execution (started_at days ago) is a delta like
--     any other and is folded into its old buckets.
--   * A query over [from, to) reads the fewest rows that cover it: whole
--     7 days (from the epoch, a Thursday) from rollup_7d when it sums the
--     whole range, whole UTC days from rollup_1d, whole quarters of a day
--     at the ends from rollup_6h, whole hours from rollup_1h, whole 5-minute
--     buckets from rollup_5m, the pending deltas of those buckets, and the
--     raw executions of the two partial 5-minute edges. Each digest merged
--     costs: a 30-day summary merged ~65 with days and hours only, ~35 with
--     quarters and weeks. Counts and sums are exact; latency percentiles
--     come from t-digest sketches (compression 500; the tests compare them
--     with percentile_cont).
--   * Rollup rows are kept per "dims": 0 the whole fleet, 1 per agent,
--     2 per model, 3 per agent and model, so a query with no filter (or one
--     kind of filter) merges one row per bucket, not one per agent.
--   * metadata.KEY=VALUE filters and 1-minute time series read raw rows
--     (source "raw" in the answer); everything else is served from rollups.
--   * Deleting executions (retention) does not shrink the rollups: they keep
--     the history the raw rows no longer have. rollup_rebuild() recomputes
--     them from the raw rows when that is wanted.
--
-- The tdigest extension (Debian: postgresql-15-tdigest) is not a trusted
-- extension: the first migration needs a superuser, or a DBA runs
-- CREATE EXTENSION tdigest beforehand.

CREATE EXTENSION IF NOT EXISTS tdigest;

-- ===================================================================
-- Rollup storage
-- ===================================================================

-- One row per bucket and dims key. agent_id / model are NULL when the dims
-- do not include them (a NULL model with dims 2 or 3 is "no model given").
CREATE TABLE rollup_5m (
    dims       smallint         NOT NULL CHECK (dims BETWEEN 0 AND 3),
    bucket     timestamptz      NOT NULL,
    agent_id   uuid,
    model      text,
    n          bigint           NOT NULL,      -- executions
    evaluated  bigint           NOT NULL,      -- with an evaluation
    passed     bigint           NOT NULL,      -- evaluation passed
    successes  bigint           NOT NULL,      -- execution_success() (functions/01_core.sql)
    errors     bigint           NOT NULL,      -- status is not succeeded
    lat_n      bigint           NOT NULL,      -- with a latency
    lat_sum    bigint           NOT NULL,
    lat_min    integer,
    lat_max    integer,
    cost       numeric          NOT NULL,
    prompt     bigint           NOT NULL,
    completion bigint           NOT NULL,
    cache      bigint           NOT NULL,
    last_at    timestamptz,                    -- latest started_at
    digest     tdigest,                        -- latency_ms sketch
    p95        double precision                -- its 0.95 quantile (fleet rows, dims 0)
);
CREATE UNIQUE INDEX rollup_5m_key ON rollup_5m (dims, bucket, agent_id, model) NULLS NOT DISTINCT;
CREATE TABLE rollup_1h (LIKE rollup_5m INCLUDING ALL);
CREATE TABLE rollup_6h (LIKE rollup_5m INCLUDING ALL);
CREATE TABLE rollup_1d (LIKE rollup_5m INCLUDING ALL);
CREATE TABLE rollup_7d (LIKE rollup_5m INCLUDING ALL);

-- Pending: what ingest added since the last refresh, per 5-minute bucket,
-- agent and model (dims 3 only; the reader derives the other dims).
CREATE TABLE rollup_delta (LIKE rollup_5m);
ALTER TABLE rollup_delta DROP COLUMN dims;
CREATE INDEX rollup_delta_bucket ON rollup_delta (bucket);
-- Emptied every second: vacuum it often, or readers wade through dead rows.
ALTER TABLE rollup_delta SET (autovacuum_vacuum_scale_factor = 0,
                              autovacuum_vacuum_threshold = 5000);

-- Error categories per 5 minutes, hour and day, agent and model, and for
-- the whole fleet (fleet: agent_id and model NULL); pending ones per 5
-- minutes, agent and model. (Reads take whole 5-minute buckets from the
-- rollups and only the partial ones at the edges of a range from raw rows,
-- as for the other rollups.)
CREATE TABLE rollup_errors_1h (
    fleet    boolean     NOT NULL DEFAULT false,
    bucket   timestamptz NOT NULL,
    agent_id uuid,
    model    text,
    category text        NOT NULL,
    n        bigint      NOT NULL,
    example  text
);
CREATE UNIQUE INDEX rollup_errors_1h_key
    ON rollup_errors_1h (fleet, bucket, agent_id, model, category) NULLS NOT DISTINCT;
CREATE TABLE rollup_errors_1d (LIKE rollup_errors_1h INCLUDING ALL);
CREATE TABLE rollup_errors_5m (LIKE rollup_errors_1h INCLUDING ALL);
CREATE TABLE rollup_errors_delta (LIKE rollup_errors_1h);
ALTER TABLE rollup_errors_delta DROP COLUMN fleet;
CREATE INDEX rollup_errors_delta_bucket ON rollup_errors_delta (bucket);
ALTER TABLE rollup_errors_delta SET (autovacuum_vacuum_scale_factor = 0,
                                     autovacuum_vacuum_threshold = 5000);

-- The watermark: when the last refresh ran and what it folded.
CREATE TABLE rollup_state (
    one           boolean     PRIMARY KEY DEFAULT true CHECK (one),
    rolled_up_to  timestamptz,
    last_folded   bigint      NOT NULL DEFAULT 0,
    last_seconds  double precision
);
INSERT INTO rollup_state DEFAULT VALUES;

COMMENT ON TABLE rollup_5m IS 'executions per 5-minute bucket (UTC) and dims: 0 fleet, 1 agent, 2 model, 3 agent+model';
COMMENT ON TABLE rollup_delta IS 'executions acknowledged since the last rollup_refresh(), per 5 minutes, agent, model';

-- rollup_changes - a row for every change of anything else an answer reads
-- (the registry, dashboards: per statement or per row, sql/functions/10), and for
-- every DELETE or TRUNCATE of executions, written by those triggers in
-- the changing transaction. Append-only,
-- so that concurrent writers never wait for each other; rollup_refresh()
-- empties it. With rollup_delta it is what agg_token() watches. Heartbeats
-- (an agent's state, current_task, last_heartbeat_at) change no answer and
-- log nothing: a beating fleet keeps the workers' cached answers valid.
CREATE TABLE rollup_changes (
    at timestamptz NOT NULL DEFAULT now()
);
ALTER TABLE rollup_changes SET (autovacuum_vacuum_scale_factor = 0,
                                autovacuum_vacuum_threshold = 5000);

-- ===================================================================
-- Composite types the functions hand each other
-- ===================================================================

-- Types are schema, as tables are: the functions of sql/functions/ take
-- and return them, so they are made here, once, and changed by a new
-- migration (ALTER TYPE ... ADD ATTRIBUTE keeps every function that uses
-- them). Every name ends in _t, so that no type shares a name with a
-- function.

-- agg_query_t - an aggregates query resolved (agg_query()).
CREATE TYPE agg_query_t AS (
    t_from timestamptz,     -- [t_from, t_to)
    t_to   timestamptz,
    agents uuid[],          -- NULL: any
    models text[],          -- NULL: any
    meta   jsonb,           -- NULL: no metadata filter
    dims   integer,         -- rollup dims the filters need (1 agent, 2 model)
    tz     text
);

-- agg_plan_t - how a series is bucketed (agg_plan()). 1m/5m/15m buckets
-- are aligned in UTC (every zone in use is a whole number of 15 minutes
-- off UTC); 1h buckets on the zone's hours; 6h and 1d on its wall clock (a
-- 1d bucket across a DST change is 23 or 25 hours long). grain is the
-- coarsest rollup whose rows each fall in one bucket; 1m buckets read raw
-- rows.
CREATE TYPE agg_plan_t AS (
    name   text,            -- 1m 5m 15m 1h 6h 1d
    iv     interval,
    wall   boolean,         -- bins on the local wall clock (6h, 1d)
    origin timestamptz,     -- bins aligned to this instant (others)
    grain  interval,
    bin    interval,        -- raw rows grouped per bin
    n      integer          -- buckets in the range
);

-- agg_totals_t - the sums a metric is computed from (agg_metric_value()),
-- over a range or one bucket.
CREATE TYPE agg_totals_t AS (
    n         bigint,
    successes bigint,
    evaluated bigint,
    passed    bigint,
    errors    bigint,
    lat_avg   double precision,
    p95       double precision,   -- NULL unless asked for
    cost      numeric
);

-- agg_point_t - one bucket of a bundle's series.
CREATE TYPE agg_point_t AS (
    t      timestamptz,           -- the bucket's start
    totals agg_totals_t
);

-- agg_bundle_t - what the metric cards, gauges and line charts of one
-- range show (agg_bundle()): the points of the range's automatic interval,
-- the sums of the range and of the period of equal length before it.
CREATE TYPE agg_bundle_t AS (
    points   agg_point_t[],       -- in time order
    current  agg_totals_t,
    previous agg_totals_t
);

-- agg_agent_sums_t - one agent's sums over a range (agg_agent_sums()),
-- read by the status board, the agent table and the cost-by-agent chart.
CREATE TYPE agg_agent_sums_t AS (
    agent_id   uuid,
    n          bigint,
    successes  bigint,
    evaluated  bigint,
    passed     bigint,
    errors     bigint,
    lat_sum    double precision,
    lat_n      bigint,
    cost       numeric,
    prompt     bigint,
    completion bigint,
    cache      bigint,
    last_at    timestamptz
);

-- agg_shared_t - numbers that dashboard_data() computed once for every
-- widget with the same key: a bundle or the per-agent sums.
CREATE TYPE agg_shared_t AS (
    key    text,
    bundle agg_bundle_t,
    sums   agg_agent_sums_t[]
);

-- end of 006
