-- 26_explorer.sql - reading back what was ingested: the Execution object of
-- the API, the one query of GET /executions (its page and its CSV / NDJSON
-- export), and the lists of the registry (problems, deployments, versions).
--
-- Repeatable (sql/README.md): CREATE OR REPLACE only.
--
-- Choices:
--   * The filters are the aggregates' (agg_query(): time_range or from/to,
--     default the last 24 h; agent_id and model repeatable; metadata.KEY=
--     VALUE) and the same range [from, to) on started_at, so that a number
--     of an aggregate and the list of its runs agree (drill-down links).
--   * The statement is built here as text with every value a literal
--     (format %L), not run as one generic prepared statement: the planner
--     then sees the actual range and filters and picks the index (a narrow
--     range walks executions_started_at_idx, a wide one sorted by latency
--     walks executions_latency_idx, 013_explorer.sql).
--   * The keyset of each sort ends with id: newest (started_at, id), slowest
--     (coalesce(latency_ms, -1), id: runs without a latency last),
--     costliest (cost_usd, id); all descending.

-- explorer_time(t) - api_time()'s text (RFC 3339 UTC, trailing zeros of the
-- fraction cut), made from the ISO text of the timestamp instead of to_char:
-- an export writes four per row, and to_char took two thirds of a 1M-row
-- CSV export's time. Needs DateStyle ISO (the default; the workers keep it).
CREATE OR REPLACE FUNCTION explorer_time(t timestamptz) RETURNS text
LANGUAGE sql STABLE PARALLEL SAFE AS $$
    SELECT replace((t AT TIME ZONE 'UTC')::text, ' ', 'T') || 'Z'
$$;

-- execution_json(e) - the Execution object of the API: every stored field.
CREATE OR REPLACE FUNCTION execution_json(e executions) RETURNS json
LANGUAGE sql STABLE AS $$
    SELECT json_build_object(
        'id', e.id, 'agent_id', e.agent_id, 'agent_version_id', e.agent_version_id,
        'model', e.model, 'task_id', e.task_id, 'started_at', explorer_time(e.started_at),
        'finished_at', explorer_time(e.finished_at), 'latency_ms', e.latency_ms,
        'status', e.status, 'success', execution_success(e.eval_passed, e.status),
        'prompt_tokens', e.prompt_tokens, 'completion_tokens', e.completion_tokens,
        'cache_read_tokens', e.cache_read_tokens, 'cost_usd', e.cost_usd,
        'error_category', e.error_category, 'error_message', e.error_message,
        'evaluation', CASE WHEN e.eval_passed IS NULL THEN NULL
                           ELSE json_build_object('passed', e.eval_passed, 'score', e.eval_score,
                                                  'evaluator', e.eval_evaluator,
                                                  'evaluated_at', explorer_time(e.evaluated_at)) END,
        'metadata', e.metadata, 'ingested_at', explorer_time(e.ingested_at))
$$;

-- execution_read(id) - GET /executions/{id}; UF404 when there is none.
CREATE OR REPLACE FUNCTION execution_read(p_id uuid) RETURNS json
LANGUAGE plpgsql STABLE AS $$
DECLARE
    v json;
BEGIN
    SELECT execution_json(e) INTO v FROM executions e WHERE e.id = p_id;
    IF v IS NULL THEN
        RAISE EXCEPTION USING ERRCODE = 'UF404', MESSAGE = format('No execution %s.', p_id);
    END IF;
    RETURN v;
END $$;

-- executions_where(q) - the WHERE clause (over executions e) of a query of
-- GET /executions: q holds the aggregates' members (agg_query()) and
-- status, error_category, min_latency_ms, max_latency_ms, min_cost_usd,
-- evaluated, passed (text, checked by the worker).
CREATE OR REPLACE FUNCTION executions_where(q jsonb) RETURNS text
LANGUAGE plpgsql STABLE AS $$
DECLARE
    a agg_query_t := agg_query(q);
    w text;
BEGIN
    w := format('e.started_at >= %L::timestamptz AND e.started_at < %L::timestamptz',
                a.t_from, a.t_to);
    IF a.agents IS NOT NULL THEN
        w := w || format(' AND e.agent_id = ANY (%L::uuid[])', a.agents);
    END IF;
    IF a.models IS NOT NULL THEN
        w := w || format(' AND e.model = ANY (%L::text[])', a.models);
    END IF;
    IF a.meta IS NOT NULL THEN
        w := w || (SELECT string_agg(format(' AND e.metadata ->> %L = %L', m.key, m.value), '')
                     FROM jsonb_each_text(a.meta) m);
    END IF;
    IF q ? 'status' THEN
        w := w || format(' AND e.status = %L', q ->> 'status');
    END IF;
    IF q ? 'error_category' THEN
        w := w || format(' AND e.error_category = %L', q ->> 'error_category');
    END IF;
    IF q ? 'min_latency_ms' THEN
        w := w || format(' AND e.latency_ms >= %L::integer', q ->> 'min_latency_ms');
    END IF;
    IF q ? 'max_latency_ms' THEN
        w := w || format(' AND e.latency_ms <= %L::integer', q ->> 'max_latency_ms');
    END IF;
    IF q ? 'min_cost_usd' THEN
        w := w || format(' AND e.cost_usd >= %L::numeric', q ->> 'min_cost_usd');
    END IF;
    IF q ? 'evaluated' THEN
        w := w || CASE WHEN (q ->> 'evaluated')::boolean THEN ' AND e.eval_passed IS NOT NULL'
                       ELSE ' AND e.eval_passed IS NULL' END;
    END IF;
    IF q ? 'passed' THEN
        w := w || format(' AND e.eval_passed = %L::boolean', q ->> 'passed');
    END IF;
    RETURN w;
END $$;

-- executions_sort_key(sort) - the first column of a sort's keyset.
CREATE OR REPLACE FUNCTION executions_sort_key(p_sort text) RETURNS text
LANGUAGE sql IMMUTABLE AS $$
    SELECT CASE coalesce(p_sort, 'newest')
           WHEN 'newest' THEN 'e.started_at'
           WHEN 'slowest' THEN 'coalesce(e.latency_ms, -1)'
           WHEN 'costliest' THEN 'e.cost_usd' END
$$;

-- executions_sql(q, limit, shape) - the text of the query of GET
-- /executions: rows after q's keyset (q.after_key, q.after_id) in q.sort's
-- order, at most p_limit. shape 'page': sort_key, id_key, body (json);
-- 'ndjson': body only; 'csv': the columns of the CSV export.
CREATE OR REPLACE FUNCTION executions_sql(q jsonb, p_limit bigint, p_shape text) RETURNS text
LANGUAGE plpgsql STABLE AS $$
DECLARE
    v_key text := executions_sort_key(q ->> 'sort');
    v_type text := CASE coalesce(q ->> 'sort', 'newest') WHEN 'newest' THEN 'timestamptz'
                        WHEN 'slowest' THEN 'integer' ELSE 'numeric' END;
    w text := executions_where(q);
BEGIN
    IF q ? 'after_id' THEN
        w := w || format(' AND (%s, e.id) < (%L::%s, %L::uuid)', v_key, q ->> 'after_key', v_type,
                         q ->> 'after_id');
    END IF;
    RETURN format('SELECT %s FROM executions e WHERE %s ORDER BY %s DESC, e.id DESC LIMIT %s',
                  CASE p_shape
                  WHEN 'page' THEN v_key || ' AS sort_key, e.id AS id_key, execution_json(e) AS body'
                  WHEN 'ndjson' THEN 'execution_json(e) AS body'
                  ELSE 'e.id, e.agent_id, e.agent_version_id, e.model, e.task_id,'
                       ' explorer_time(e.started_at) AS started_at, explorer_time(e.finished_at) AS finished_at,'
                       ' e.latency_ms, e.status, execution_success(e.eval_passed, e.status) AS success,'
                       ' e.prompt_tokens, e.completion_tokens, e.cache_read_tokens, e.cost_usd,'
                       ' e.error_category, e.error_message, e.eval_passed, e.eval_score,'
                       ' e.eval_evaluator, explorer_time(e.evaluated_at) AS evaluated_at, e.metadata,'
                       ' explorer_time(e.ingested_at) AS ingested_at' END,
                  w, v_key, p_limit);
END $$;

-- executions_page(q, limit) - a page of GET /executions (sort_key, id_key,
-- body), limit rows (the worker asks for one more than it answers).
CREATE OR REPLACE FUNCTION executions_page(q jsonb, p_limit bigint)
RETURNS TABLE (sort_key text, id_key uuid, body json)
LANGUAGE plpgsql STABLE AS $$
BEGIN
    RETURN QUERY EXECUTE format('SELECT x.sort_key::text, x.id_key, x.body FROM (%s) x',
                                executions_sql(q, p_limit, 'page'));
END $$;

-- executions_export_sql(q, limit, format) - the COPY statement of an export
-- of at most p_limit rows; UF422 on limit when no limit was asked for
-- (q.limit absent) and more than p_limit rows match.
CREATE OR REPLACE FUNCTION executions_export_sql(q jsonb, p_limit bigint, p_format text)
RETURNS text LANGUAGE plpgsql STABLE AS $$
DECLARE
    v_more boolean;
BEGIN
    IF NOT q ? 'limit' THEN
        EXECUTE format('SELECT count(*) > %s FROM (SELECT 1 FROM executions e WHERE %s LIMIT %s) x',
                       p_limit, executions_where(q), p_limit + 1) INTO v_more;
        IF v_more THEN
            RAISE EXCEPTION USING ERRCODE = 'UF422', COLUMN = 'limit',
                MESSAGE = format('more than %s executions match: narrow the filters, or set limit '
                                 '(at most %s) to export the first of them', p_limit, p_limit);
        END IF;
    END IF;
    RETURN format(CASE p_format WHEN 'csv' THEN 'COPY (%s) TO STDOUT WITH (FORMAT csv, HEADER)'
                  ELSE 'COPY (%s) TO STDOUT' END,
                  executions_sql(q, coalesce((q ->> 'limit')::bigint, p_limit), p_format));
END $$;


-- ===================================================================
-- The registry's lists (rows: 03_registry.sql's views)
-- ===================================================================

-- problems_page(status, category, severity, agent, after time, after id,
-- limit) - GET /problems: newest sighting first (last_seen_at, id).
CREATE OR REPLACE FUNCTION problems_page(p_status text, p_category text, p_severity text,
                                         p_agent uuid, p_after timestamptz, p_after_id uuid,
                                         p_limit integer)
RETURNS TABLE (time_key timestamptz, id_key uuid, body json)
LANGUAGE sql STABLE AS $$
    SELECT p.last_seen_at, p.id, row_to_json(r)
      FROM problems p JOIN problem_rows r ON r.id = p.id
     WHERE (p_status IS NULL OR p.status = p_status)
       AND (p_category IS NULL OR p.category = p_category)
       AND (p_severity IS NULL OR p.severity = p_severity)
       AND (p_agent IS NULL OR p.agent_id = p_agent)
       AND (p_after IS NULL OR (p.last_seen_at, p.id) < (p_after, p_after_id))
     ORDER BY p.last_seen_at DESC, p.id DESC
     LIMIT p_limit
$$;

-- deployments_page(agent, status, after time, after id, limit) - GET
-- /deployments: newest first (started_at, id).
CREATE OR REPLACE FUNCTION deployments_page(p_agent uuid, p_status text, p_after timestamptz,
                                            p_after_id uuid, p_limit integer)
RETURNS TABLE (time_key timestamptz, id_key uuid, body json)
LANGUAGE sql STABLE AS $$
    SELECT d.started_at, d.id, row_to_json(r)
      FROM canary_deployments d JOIN deployment_rows r ON r.id = d.id
     WHERE (p_agent IS NULL OR d.agent_id = p_agent)
       AND (p_status IS NULL OR d.status = p_status)
       AND (p_after IS NULL OR (d.started_at, d.id) < (p_after, p_after_id))
     ORDER BY d.started_at DESC, d.id DESC
     LIMIT p_limit
$$;

-- agent_versions_page(agent, after time, after id, limit) - GET
-- /agents/{id}/versions: newest first; UF404 when the agent does not exist.
CREATE OR REPLACE FUNCTION agent_versions_page(p_agent uuid, p_after timestamptz,
                                               p_after_id uuid, p_limit integer)
RETURNS TABLE (time_key timestamptz, id_key uuid, body json)
LANGUAGE plpgsql STABLE AS $$
BEGIN
    PERFORM FROM agents a WHERE a.id = p_agent;
    IF NOT FOUND THEN
        RAISE EXCEPTION USING ERRCODE = 'UF404', MESSAGE = format('No agent %s.', p_agent);
    END IF;
    RETURN QUERY
    SELECT v.created_at, v.id, row_to_json(r)
      FROM agent_versions v JOIN agent_version_rows r ON r.id = v.id
     WHERE v.agent_id = p_agent
       AND (p_after IS NULL OR (v.created_at, v.id) < (p_after, p_after_id))
     ORDER BY v.created_at DESC, v.id DESC
     LIMIT p_limit;
END $$;

-- end of 26_explorer
