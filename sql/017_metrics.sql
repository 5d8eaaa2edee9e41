-- 017_metrics.sql - what GET /metrics (Prometheus) reads of the workers:
-- their counters, flushed every 5 s with their heartbeat (fcgi/metrics.c),
-- added up per group and host. UNLOGGED like group_heartbeats: a flush
-- writes no WAL; a crash of the server empties them, which Prometheus
-- reads as a counter reset.
--
-- metrics_requests: requests per group, host, method, route (the route's
-- pattern, "unmatched" for a path no route has) and status; their duration
-- in seconds as a sum and as counts per bucket (bucket i counts durations
-- <= metrics_bounds()[i], not cumulative; the last bucket is what is left).
CREATE UNLOGGED TABLE metrics_requests (
    group_name   text             NOT NULL,
    host         text             NOT NULL,
    method       text             NOT NULL,
    route        text             NOT NULL,
    status       integer          NOT NULL,
    count        bigint           NOT NULL,
    duration_sum double precision NOT NULL,
    buckets      bigint[]         NOT NULL,
    PRIMARY KEY (group_name, host, method, route, status)
);

-- metrics_counters: the other counters of the workers, per group, host and
-- name (busy_seconds, database_errors, ingested_rows, worker_restarts,
-- evaluator_cycles, evaluator_seconds).
CREATE UNLOGGED TABLE metrics_counters (
    group_name text             NOT NULL,
    host       text             NOT NULL,
    name       text             NOT NULL,
    value      double precision NOT NULL,
    PRIMARY KEY (group_name, host, name)
);

-- metrics_workers: every worker's last flush (pid on its host): alive while
-- it flushed within 15 s.
CREATE UNLOGGED TABLE metrics_workers (
    group_name text        NOT NULL,
    host       text        NOT NULL,
    pid        integer     NOT NULL,
    seen_at    timestamptz NOT NULL,
    PRIMARY KEY (group_name, host, pid)
);
