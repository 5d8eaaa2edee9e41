-- 004_ingest.sql - how executions arrive: execution_input, the row type of
-- the one-statement path for small JSON bodies, and the Idempotency-Key
-- table. The functions of every ingest path are in functions/04_ingest.sql.

-- execution_input - one line of a small JSON body, as
-- execution_ingest_rows() (functions/04_ingest.sql) reads it.
CREATE TYPE execution_input AS (
    line bigint, id uuid, agent_id uuid, agent_name text, version text, model text,
    started_at timestamptz, latency_ms integer, finished_at timestamptz, status text,
    prompt_tokens bigint,
    completion_tokens bigint, cache_read_tokens bigint, cost_usd numeric,
    error_category text, error_message text, eval_passed boolean,
    eval_score double precision, eval_evaluator text, task_id text, metadata jsonb);

-- Idempotency-Key: the first request with a key runs and its answer is kept
-- for 24 hours; a replay gets that answer back. The key's row is inserted in
-- the transaction of the request itself, so a concurrent second request with
-- the same key waits for the first one's commit (and then replays) or
-- rollback (and then runs).
CREATE TABLE idempotency_keys (
    key        text PRIMARY KEY CHECK (char_length(key) BETWEEN 1 AND 255),
    method     text NOT NULL,
    path       text NOT NULL,
    body_hash  text NOT NULL,
    status     integer,     -- NULL until the first request's answer is stored
    location   text,
    response   text,
    created_at timestamptz NOT NULL DEFAULT now()
);
COMMENT ON TABLE idempotency_keys IS 'Answers of requests sent with an Idempotency-Key, kept 24 hours';
CREATE INDEX idempotency_keys_created_at_idx ON idempotency_keys (created_at);
