-- 10_aggregates_deltas.sql - what every write adds for the aggregates, in
-- its own transaction: the per-execution sums (rollup_raw_sql(), the one
-- place they are written), the statement triggers of executions that
-- append them to rollup_delta, and the triggers that log other changes an
-- answer reads to rollup_changes (tables: sql/006_aggregates.sql).
--
-- Repeatable (sql/README.md): applied again whenever it changes.

-- ===================================================================
-- Deltas, written in the ingest transaction
-- ===================================================================

-- rollup_digest(values) - the t-digest (compression 500) of latencies, NULLs
-- left out; NULL when there is none. Used instead of the tdigest() aggregate
-- wherever groups are many and small (a statement's deltas, the rebuild,
-- the raw edges): the aggregate allocates and zeroes a buffer of 10 x
-- compression centroids (80 kB) per group, which made the rollup trigger
-- of a 1,000-row batch spread over an hour cost ~8 ms instead of 1.5-3.
CREATE OR REPLACE FUNCTION rollup_digest(p_values double precision[]) RETURNS tdigest
LANGUAGE sql IMMUTABLE PARALLEL SAFE AS $$
    SELECT tdigest_add(NULL::tdigest, NULLIF(array_remove(p_values, NULL), '{}'), 500)
$$;

-- rollup_raw_sql(source, bin, dims, digests, filter) - the text of the one
-- statement that sums executions the way the rollups hold them: per bucket
-- of bin (date_bin from the epoch), agent (when dims & 1) and model (when
-- dims & 2), the latency digest only when digests, over the rows x of
-- source (executions or a trigger's transition table) that pass filter.
-- Each argument is an SQL expression. Its columns are those of
-- rollup_delta, in order. Nothing runs it as text on a hot path: the two
-- functions below are made from it once, when this file is applied, so
-- that their plans are cached as any other function's.
CREATE OR REPLACE FUNCTION rollup_raw_sql(p_source text, p_bin text, p_dims text,
                                          p_digests text, p_filter text) RETURNS text
LANGUAGE sql IMMUTABLE PARALLEL SAFE AS $f$
    SELECT format($q$
    SELECT date_bin(%2$s, x.started_at, timestamptz 'epoch'),
           CASE WHEN %3$s & 1 = 1 THEN x.agent_id END,
           CASE WHEN %3$s & 2 = 2 THEN x.model END,
           count(*), count(x.eval_passed), count(*) FILTER (WHERE x.eval_passed),
           count(*) FILTER (WHERE execution_success(x.eval_passed, x.status)),
           count(*) FILTER (WHERE x.status <> 'succeeded'), count(x.latency_ms),
           coalesce(sum(x.latency_ms), 0)::bigint, min(x.latency_ms), max(x.latency_ms),
           coalesce(sum(x.cost_usd), 0), sum(x.prompt_tokens)::bigint,
           sum(x.completion_tokens)::bigint, sum(x.cache_read_tokens)::bigint,
           max(x.started_at),
           CASE WHEN %4$s THEN rollup_digest(array_agg(x.latency_ms::float8)) END,
           NULL::double precision
      FROM %1$s x
     WHERE %5$s
     GROUP BY 1, 2, 3
    $q$, p_source, p_bin, p_dims, p_digests, p_filter)
$f$;

-- rollup_raw_errors_sql(source) - the text of the one statement that counts
-- error categories the way the error rollups hold them: per 5 minutes,
-- agent, model and category, over every row of source with one. Its columns are
-- those of rollup_errors_delta, in order.
CREATE OR REPLACE FUNCTION rollup_raw_errors_sql(p_source text) RETURNS text
LANGUAGE sql IMMUTABLE PARALLEL SAFE AS $f$
    SELECT format($q$
    SELECT date_bin('5 minutes', x.started_at, timestamptz 'epoch'), x.agent_id, x.model,
           x.error_category, count(*), max(x.error_message)
      FROM %s x
     WHERE x.error_category IS NOT NULL
     GROUP BY 1, 2, 3, 4
    $q$, p_source)
$f$;

-- rollup_raw_rows(bin, dims, digests, from, f5, t5, to, agents, models,
-- metadata) - the executions with started_at in [from, f5) or [t5, to),
-- agent in agents and model in models (NULL: any), metadata matching
-- (a jsonb object of text values; NULL: any), summed as rollup_raw_sql()
-- says. A SQL function of one SELECT: inlined into its callers'
-- statements (rollup_rows(), rollup_rebuild()), where the filters not
-- given fold away.
--
-- rollup_executions_added() - the statement trigger of INSERT on
-- executions: the new rows' sums (dims 3, 5 minutes) into rollup_delta,
-- their error categories into rollup_errors_delta, in the inserting
-- transaction.
DO $do$
BEGIN
    EXECUTE format($f$
        CREATE OR REPLACE FUNCTION rollup_raw_rows(
            p_bin interval, p_dims integer, p_digests boolean, p_from timestamptz,
            p_f5 timestamptz, p_t5 timestamptz, p_to timestamptz, p_agents uuid[],
            p_models text[], p_meta jsonb)
        RETURNS SETOF rollup_delta LANGUAGE sql STABLE AS $body$ %s $body$
    $f$, rollup_raw_sql('executions', 'p_bin', 'p_dims', 'p_digests', $w$
           (x.started_at >= p_from AND x.started_at < p_f5
            OR x.started_at >= p_t5 AND x.started_at < p_to)
       AND (p_agents IS NULL OR x.agent_id = ANY (p_agents))
       AND (p_models IS NULL OR x.model = ANY (p_models))
       AND (p_meta IS NULL
            OR NOT EXISTS (SELECT 1 FROM jsonb_each_text(p_meta) m
                            WHERE x.metadata ->> m.key IS DISTINCT FROM m.value))$w$));
    EXECUTE format($f$
        CREATE OR REPLACE FUNCTION rollup_executions_added() RETURNS trigger
        LANGUAGE plpgsql AS $body$
        BEGIN
            INSERT INTO rollup_delta %s;
            INSERT INTO rollup_errors_delta %s;
            RETURN NULL;
        END $body$
    $f$, rollup_raw_sql('added', $$interval '5 minutes'$$, '3', 'true', 'true'),
         rollup_raw_errors_sql('added'));
END $do$;

-- A verdict given or replaced later (POST /evaluations, an UPDATE of the
-- eval_* columns) moves evaluated, passed and successes of its execution's
-- bucket by the difference (a verdict that fails a succeeded run takes its
-- success away; one that passes a failed run gives it one). Executions are
-- otherwise append-only: an UPDATE of any other rolled-up column (a repair
-- in psql; status too, which moves neither errors nor successes here) is
-- not followed, and rollup_rebuild() brings the rollups back in line with
-- the rows.
CREATE OR REPLACE FUNCTION rollup_executions_updated() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    INSERT INTO rollup_delta (bucket, agent_id, model, n, evaluated, passed, successes, errors,
                              lat_n, lat_sum, cost, prompt, completion, cache)
    SELECT date_bin('5 minutes', v.started_at, timestamptz 'epoch'), v.agent_id, v.model,
           0, sum((v.eval_passed IS NOT NULL)::int - (o.eval_passed IS NOT NULL)::int),
           sum(coalesce(v.eval_passed, false)::int - coalesce(o.eval_passed, false)::int),
           sum(execution_success(v.eval_passed, v.status)::int
               - execution_success(o.eval_passed, o.status)::int),
           0, 0, 0, 0, 0, 0, 0
      FROM added v
      JOIN removed o ON o.id = v.id
     WHERE v.eval_passed IS DISTINCT FROM o.eval_passed
     GROUP BY 1, 2, 3;
    RETURN NULL;
END $$;

CREATE OR REPLACE TRIGGER executions_rollup AFTER INSERT ON executions
    REFERENCING NEW TABLE AS added
    FOR EACH STATEMENT EXECUTE FUNCTION rollup_executions_added();
CREATE OR REPLACE TRIGGER executions_rollup_update AFTER UPDATE ON executions
    REFERENCING NEW TABLE AS added OLD TABLE AS removed
    FOR EACH STATEMENT EXECUTE FUNCTION rollup_executions_updated();
-- ALWAYS: a bulk loader in session_replication_role = replica must not skip them.
ALTER TABLE executions ENABLE ALWAYS TRIGGER executions_rollup;
ALTER TABLE executions ENABLE ALWAYS TRIGGER executions_rollup_update;


CREATE OR REPLACE FUNCTION rollup_changed() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    INSERT INTO rollup_changes DEFAULT VALUES;
    RETURN NULL;
END $$;

-- rollup_changed_rows() - the same, for a statement that changed a row (its
-- transition table "changed" is not empty): the alerts group's jobs run
-- UPDATEs of alerts every half second that mostly change nothing, and each
-- logged row would expire every answer of the second (agg_token).
CREATE OR REPLACE FUNCTION rollup_changed_rows() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF EXISTS (SELECT 1 FROM changed) THEN
        INSERT INTO rollup_changes DEFAULT VALUES;
    END IF;
    RETURN NULL;
END $$;

DO $$
DECLARE
    t text;
    e text;
BEGIN
    -- One row per statement that changed rows: these tables are written by
    -- API calls that mean to change something (a dashboard with ten widgets
    -- logs two rows, not eleven; row triggers cost its POST a third of its
    -- throughput) and by jobs that often change nothing.
    FOREACH t IN ARRAY ARRAY['problems', 'improvement_proposals', 'experiments',
                             'canary_deployments', 'alerts', 'dashboards',
                             'dashboard_widgets'] LOOP
        EXECUTE format('DROP TRIGGER IF EXISTS %I ON %I', t || '_changed', t);
        FOREACH e IN ARRAY ARRAY['insert', 'update', 'delete'] LOOP
            EXECUTE format('CREATE OR REPLACE TRIGGER %I AFTER %s ON %I
                                REFERENCING %s TABLE AS changed
                                FOR EACH STATEMENT EXECUTE FUNCTION rollup_changed_rows()',
                           t || '_changed_' || e, e, t, CASE e WHEN 'delete' THEN 'OLD' ELSE 'NEW' END);
            EXECUTE format('ALTER TABLE %I ENABLE ALWAYS TRIGGER %I', t, t || '_changed_' || e);
        END LOOP;
    END LOOP;
    FOREACH t IN ARRAY ARRAY['agents', 'agent_versions', 'problems', 'improvement_proposals',
                             'experiments', 'canary_deployments', 'alerts', 'dashboards',
                             'dashboard_widgets', 'executions'] LOOP
        EXECUTE format('CREATE OR REPLACE TRIGGER %I AFTER TRUNCATE ON %I
                            FOR EACH STATEMENT EXECUTE FUNCTION rollup_changed()', t || '_truncated', t);
        EXECUTE format('ALTER TABLE %I ENABLE ALWAYS TRIGGER %I', t, t || '_truncated');
    END LOOP;
END $$;
-- One row per row changed: every ingest statement inserts into agents and
-- agent_versions, and almost always nothing (ON CONFLICT DO NOTHING).
CREATE OR REPLACE TRIGGER agents_changed AFTER INSERT OR DELETE ON agents
    FOR EACH ROW EXECUTE FUNCTION rollup_changed();
CREATE OR REPLACE TRIGGER agent_versions_changed AFTER INSERT OR UPDATE OR DELETE ON agent_versions
    FOR EACH ROW EXECUTE FUNCTION rollup_changed();
CREATE OR REPLACE TRIGGER agents_changed_update AFTER UPDATE OF name, description, capabilities, metadata,
                                                  is_active, created_at ON agents
    FOR EACH ROW
    WHEN ((OLD.name, OLD.description, OLD.capabilities, OLD.metadata, OLD.is_active,
           OLD.created_at)
          IS DISTINCT FROM (NEW.name, NEW.description, NEW.capabilities, NEW.metadata,
                            NEW.is_active, NEW.created_at))
    EXECUTE FUNCTION rollup_changed();
CREATE OR REPLACE TRIGGER executions_deleted AFTER DELETE ON executions
    FOR EACH STATEMENT EXECUTE FUNCTION rollup_changed();
ALTER TABLE agents ENABLE ALWAYS TRIGGER agents_changed;
ALTER TABLE agent_versions ENABLE ALWAYS TRIGGER agent_versions_changed;
ALTER TABLE agents ENABLE ALWAYS TRIGGER agents_changed_update;
ALTER TABLE executions ENABLE ALWAYS TRIGGER executions_deleted;

-- end of 10_aggregates_deltas
