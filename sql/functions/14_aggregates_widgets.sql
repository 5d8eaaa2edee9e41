-- 14_aggregates_widgets.sql - the data of every widget type, and of a
-- whole dashboard in one call (dashboard_data(), widget_data()).
--
-- Repeatable (sql/README.md): applied again whenever it changes.

-- ===================================================================
-- Widget data: GET /dashboards/{id}/widgets/{wid}/data, ?include_data=true
-- ===================================================================

-- agg_widget_query(config) - the query a widget's config asks for:
-- time_range (default 24h, or 7d for heatmaps) and one agent_id. Values
-- the dashboards group would refuse today are ignored, not fatal: one odd
-- widget must not blank the whole dashboard.
CREATE OR REPLACE FUNCTION agg_widget_query(p_type text, p_config jsonb) RETURNS agg_query_t
LANGUAGE plpgsql STABLE AS $$
DECLARE
    q jsonb := '{}';
BEGIN
    IF p_config ->> 'time_range' IN ('1h', '6h', '24h', '7d', '30d') THEN
        q := q || jsonb_build_object('time_range', p_config ->> 'time_range');
    END IF;
    IF p_config ->> 'agent_id' ~* '^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$' THEN
        q := q || jsonb_build_object('agent_id', jsonb_build_array(p_config ->> 'agent_id'));
    END IF;
    RETURN agg_query(q, CASE WHEN p_type = 'heatmap' THEN '7d' ELSE '24h' END);
END $$;

-- agg_recent_activity(limit) - the newest executions, deployments and
-- problems, merged by time in one query.
CREATE OR REPLACE FUNCTION agg_recent_activity(p_limit integer) RETURNS json LANGUAGE plpgsql STABLE AS $$
BEGIN
    RETURN (
        SELECT coalesce(json_agg(json_build_object('type', x.type, 'title', x.title,
                                                   'status', x.status, 'timestamp', agg_ts(x.ts))
                                 ORDER BY x.ts DESC), '[]')
          FROM (SELECT * FROM (
                  (SELECT 'execution' AS type, 'Execution: ' || g.name AS title,
                          CASE WHEN e.eval_passed THEN 'success'
                               WHEN e.eval_passed IS NULL THEN e.status ELSE 'failed' END AS status,
                          e.started_at AS ts
                     FROM executions e
                     JOIN agents g ON g.id = e.agent_id
                    ORDER BY e.started_at DESC LIMIT p_limit)
                  UNION ALL
                  (SELECT 'deployment', 'Deployment: ' || g.name || ' ' || nv.version, c.status,
                          c.started_at
                     FROM canary_deployments c
                     JOIN agents g ON g.id = c.agent_id
                     JOIN agent_versions nv ON nv.id = c.new_version_id
                    ORDER BY c.started_at DESC LIMIT p_limit)
                  UNION ALL
                  (SELECT 'problem', 'Problem: ' || p.category, p.status, p.first_seen_at
                     FROM problems p
                    ORDER BY p.first_seen_at DESC LIMIT p_limit)) u
                 ORDER BY u.ts DESC LIMIT p_limit) x);
END $$;

-- agg_widget_data(type, config, bundle) - a widget's data, shaped as seed
-- 000's widget provider shapes it, from the widget's stored config. Metric
-- cards, gauges and line charts read agg_bundle(), which the caller may have
-- computed already for another widget of the same range
-- (agg_widget_bundle_key).
CREATE OR REPLACE FUNCTION agg_widget_data(p_type text, p_config json,
                                           p_bundle agg_bundle_t DEFAULT NULL,
                                           p_sums agg_agent_sums_t[] DEFAULT NULL)
RETURNS json LANGUAGE plpgsql STABLE AS $$
DECLARE
    c jsonb := coalesce(p_config::jsonb, '{}');
    a agg_query_t := agg_widget_query(p_type, c);
    v_limit integer := CASE WHEN jsonb_typeof(c -> 'limit') = 'number'
                            THEN greatest(1, least(100, (c ->> 'limit')::numeric::integer)) ELSE 10 END;
    v_metric text := CASE WHEN agg_metric_unit(c ->> 'metric') IS NOT NULL THEN c ->> 'metric'
                          ELSE 'success_rate' END;
    v_group text := CASE WHEN c ->> 'group_by' = 'model' THEN 'model' ELSE 'agent' END;
    m json;
    r json;
BEGIN
    CASE p_type
    WHEN 'metric_card' THEN
        m := agg_metric_from(a, v_metric, coalesce(p_bundle, agg_bundle(a, v_metric = 'p95_latency')));
        RETURN json_build_object(
            'value', m -> 'value',
            'formatted_value', CASE WHEN m ->> 'value' IS NULL THEN '-'
                                    WHEN v_metric IN ('success_rate', 'pass_rate', 'error_rate')
                                        THEN to_char((m ->> 'value')::numeric, 'FM990.0') || '%'
                                    WHEN v_metric IN ('avg_latency', 'p95_latency')
                                        THEN round((m ->> 'value')::numeric) || 'ms'
                                    WHEN v_metric = 'total_cost'
                                        THEN '$' || to_char((m ->> 'value')::numeric, 'FM999,999,999,990.00')
                                    ELSE to_char((m ->> 'value')::numeric, 'FM999,999,999,999,990') END,
            'unit', CASE WHEN v_metric = 'total_cost' THEN '$' WHEN v_metric = 'total_executions' THEN ''
                         ELSE m ->> 'unit' END,
            'previous_value', m -> 'previous_value', 'change_percent', m -> 'change_percent',
            'trend', m -> 'trend', 'sparkline', m -> 'sparkline');
    WHEN 'line_chart' THEN
        RETURN json_build_object(
            'series', coalesce((
                SELECT json_agg(json_build_object('name', s.name, 'unit', s.unit, 'color', s.color,
                                                  'data', s.data) ORDER BY s.ord)
                  FROM (SELECT d.ord, d.name, d.unit, d.color,
                               json_agg(json_build_object(
                                   'timestamp', agg_ts(pt.t),
                                   'value', CASE d.key
                                                WHEN 'executions' THEN (pt.totals).n::double precision
                                                WHEN 'success_rate' THEN agg_rate((pt.totals).successes, (pt.totals).n) * 100
                                                WHEN 'pass_rate' THEN agg_rate((pt.totals).passed, (pt.totals).evaluated) * 100
                                                WHEN 'latency' THEN (pt.totals).lat_avg
                                                ELSE (pt.totals).cost::double precision END)
                                        ORDER BY pt.o) AS data
                          FROM (VALUES (1, 'executions', 'Executions', 'count', '#3B82F6'),
                                       (2, 'success_rate', 'Success Rate', '%', '#10B981'),
                                       (3, 'pass_rate', 'Pass Rate', '%', '#14B8A6'),
                                       (4, 'latency', 'Avg Latency', 'ms', '#F59E0B'),
                                       (5, 'cost', 'Cost', '$', '#8B5CF6')) d (ord, key, name, unit, color)
                         CROSS JOIN unnest((coalesce(p_bundle, agg_bundle(a, false))).points)
                                    WITH ORDINALITY AS pt (t, totals, o)
                         WHERE d.key IN (SELECT jsonb_array_elements_text(
                                             CASE WHEN jsonb_typeof(c -> 'metrics') = 'array' THEN c -> 'metrics'
                                                  ELSE '["executions", "success_rate"]' END))
                         GROUP BY d.ord, d.name, d.unit, d.color) s), '[]'),
            'time_range', coalesce(c ->> 'time_range', '24h'));
    WHEN 'bar_chart' THEN
        RETURN (SELECT json_build_object(
                    'categories', coalesce(json_agg(x.name ORDER BY x.o), '[]'),
                    'values', coalesce(json_agg(x.cost ORDER BY x.o), '[]'),
                    'percentages', coalesce(json_agg(x.percentage ORDER BY x.o), '[]'),
                    'group_by', v_group)
                  FROM agg_cost_rows(a, v_group, p_sums) x
                 WHERE x.o <= 10);
    WHEN 'pie_chart' THEN
        -- the categories of /errors/breakdown (agg_errors_of()) without what a
        -- pie does not show: the previous period (read again: ~6 % of the
        -- default dashboard), links, examples
        RETURN (WITH cur AS (SELECT * FROM agg_error_rows(a)),
                     total AS (SELECT coalesce(sum(cur.n), 0)::bigint AS n FROM cur)
                SELECT json_build_object('segments', coalesce(json_agg(json_build_object(
                           'name', x.category, 'value', x.n,
                           'percentage', x.n * 100.0::double precision / total.n)
                           ORDER BY x.n DESC, x.category), '[]'))
                  FROM total, LATERAL (SELECT cur.category, cur.n FROM cur WHERE cur.category IS NOT NULL
                                        ORDER BY cur.n DESC, cur.category LIMIT 8) x);
    WHEN 'table' THEN
        IF c ->> 'type' = 'agent_summary' THEN
            RETURN json_build_object(
                'columns', json_build_array('Agent', 'Status', 'Executions', 'Success Rate', 'Pass Rate',
                                            'Avg Latency'),
                'rows', coalesce((
                    SELECT json_agg(json_build_object(
                               'agent_id', s.id, 'agent_name', s.name, 'status', s.status,
                               'executions', s.n,
                               'success_rate', to_char(coalesce((s.item ->> 'success_rate')::numeric, 0) * 100, 'FM990.0') || '%',
                               'pass_rate', coalesce(to_char((s.item ->> 'pass_rate')::numeric * 100, 'FM990.0') || '%', '-'),
                               'avg_latency', round(coalesce((s.item ->> 'avg_latency_ms')::numeric, 0)) || 'ms')
                               ORDER BY s.n DESC, s.name)
                      FROM (SELECT * FROM agg_agents_of(a, false, p_sums) x ORDER BY x.n DESC, x.name LIMIT v_limit) s), '[]'));
        END IF;
        RETURN json_build_object('columns', json_build_array('Type', 'Title', 'Status', 'Time'),
                                 'rows', agg_recent_activity(v_limit));
    WHEN 'heatmap' THEN
        RETURN agg_heatmap_of(a, CASE WHEN c ->> 'metric' IN ('error_rate', 'p95_latency')
                                      THEN c ->> 'metric' ELSE 'executions' END);
    WHEN 'gauge' THEN
        m := agg_metric_from(a, v_metric, coalesce(p_bundle, agg_bundle(a, v_metric = 'p95_latency')));
        r := json_build_object(
            'critical', coalesce((c #>> '{thresholds,critical}')::double precision, 70),
            'warning', coalesce((c #>> '{thresholds,warning}')::double precision, 85),
            'good', coalesce((c #>> '{thresholds,good}')::double precision, 95));
        RETURN json_build_object(
            'value', m -> 'value', 'min', 0, 'max', 100,
            'status', CASE WHEN (m ->> 'value')::double precision >= (r ->> 'good')::double precision THEN 'good'
                           WHEN (m ->> 'value')::double precision >= (r ->> 'warning')::double precision THEN 'warning'
                           ELSE 'critical' END,
            'thresholds', r);
    WHEN 'alert_list' THEN
        RETURN json_build_object(
            'alerts', coalesce((
                SELECT json_agg(json_build_object(
                           'id', l.id, 'severity', l.severity, 'title', l.title,
                           'message', l.message, 'agent_name', l.agent_name,
                           'created_at', agg_ts(l.starts_at),
                           'acknowledged', l.status = 'acknowledged')
                           ORDER BY l.rank, l.starts_at DESC, l.id DESC)
                  FROM (SELECT al.*, g.name AS agent_name, severity_rank(al.severity) AS rank
                          FROM alerts al
                          LEFT JOIN agents g ON g.id = al.agent_id
                         WHERE al.status <> 'resolved'
                         ORDER BY severity_rank(al.severity), al.starts_at DESC, al.id DESC
                         LIMIT v_limit) l), '[]'),
            'total_count', (SELECT count(*) FROM alerts WHERE status <> 'resolved'));
    WHEN 'status_board' THEN
        RETURN (
            SELECT json_build_object(
                'system_status', agg_system_status(count(*) FILTER (WHERE x.status = 'critical'),
                                                   count(*) FILTER (WHERE x.status = 'warning')),
                'agents', coalesce(json_agg(json_build_object(
                                       'id', x.id, 'name', x.name, 'status', x.status,
                                       'success_rate', x.success_rate, 'pass_rate', x.pass_rate,
                                       'canary_status', x.canary_status)
                                   ORDER BY x.n DESC, x.name), '[]'),
                'summary', json_build_object('healthy', count(*) FILTER (WHERE x.status = 'healthy'),
                                             'warning', count(*) FILTER (WHERE x.status = 'warning'),
                                             'critical', count(*) FILTER (WHERE x.status = 'critical'),
                                             'total', count(*)))
              FROM agg_agents_of(a, false, p_sums) x);
    ELSE
        RETURN NULL;
    END CASE;
END $$;

-- agg_widget_bundle_key(type, config, query) - which agg_bundle() a widget
-- reads (NULL: none); widgets with the same key share one. The key is made
-- of the query the config resolves to (agg_widget_query()), so that a
-- config that says the default range and one that leaves it out share.
DROP FUNCTION IF EXISTS agg_widget_bundle_key(text, jsonb);   -- before the query argument
CREATE OR REPLACE FUNCTION agg_widget_bundle_key(p_type text, c jsonb, a agg_query_t) RETURNS text
LANGUAGE sql IMMUTABLE AS $$
    SELECT CASE WHEN p_type IN ('metric_card', 'gauge', 'line_chart')
                THEN concat_ws('|', 'bundle', a::text,
                               p_type <> 'line_chart' AND c ->> 'metric' = 'p95_latency') END
$$;

-- dashboard_data(dashboard) - {widget id: data} for every widget of a
-- dashboard, in one call (GET /dashboards/{id}?include_data=true); widgets
-- of the same range share their numbers (agg_bundle, agg_agent_sums).
CREATE OR REPLACE FUNCTION dashboard_data(p_dashboard uuid) RETURNS json
LANGUAGE plpgsql STABLE AS $$
DECLARE
    w record;
    c jsonb;
    v_a agg_query_t;                    -- the widget's query
    v_key text;
    v_sums_key text;
    v_shared agg_shared_t[] := '{}';   -- what widgets of the same keys share
    v_keys text[] := '{}';              -- their keys, in the same order
    v_at integer;
    v_bundle agg_bundle_t;
    v_sums agg_agent_sums_t[];
    v_ids text[] := '{}';
    v_data json[] := '{}';
BEGIN
    FOR w IN SELECT x.id, x.type, x.config FROM dashboard_widgets x
              WHERE x.dashboard_id = p_dashboard ORDER BY x.y, x.x, x.id LOOP
        c := coalesce(w.config::jsonb, '{}');
        v_a := agg_widget_query(w.type, c);
        v_key := agg_widget_bundle_key(w.type, c, v_a);
        v_bundle := NULL;
        IF v_key IS NOT NULL THEN
            v_at := array_position(v_keys, v_key);
            IF v_at IS NULL THEN
                v_bundle := agg_bundle(v_a, w.type <> 'line_chart' AND c ->> 'metric' = 'p95_latency');
                v_shared := v_shared || ROW(v_key, v_bundle, NULL)::agg_shared_t;
                v_keys := v_keys || v_key;
            ELSE
                v_bundle := (v_shared[v_at]).bundle;
            END IF;
        END IF;
        v_sums_key := CASE WHEN w.type = 'status_board'
                                  OR w.type = 'table' AND c ->> 'type' = 'agent_summary'
                                  OR w.type = 'bar_chart' AND coalesce(c ->> 'group_by', 'agent') <> 'model'
                           THEN 'sums|' || v_a::text END;
        v_sums := NULL;
        IF v_sums_key IS NOT NULL THEN
            v_at := array_position(v_keys, v_sums_key);
            IF v_at IS NULL THEN
                v_sums := agg_agent_sums(v_a);
                v_shared := v_shared || ROW(v_sums_key, NULL, v_sums)::agg_shared_t;
                v_keys := v_keys || v_sums_key;
            ELSE
                v_sums := (v_shared[v_at]).sums;
            END IF;
        END IF;
        v_ids := v_ids || w.id::text;
        v_data := v_data || agg_widget_data(w.type, w.config, v_bundle, v_sums);
    END LOOP;
    RETURN coalesce((SELECT json_object_agg(i, d) FROM unnest(v_ids, v_data) u (i, d)), '{}');
END $$;

-- widget_data(dashboard, widget) - GET .../widgets/{wid}/data. UF404
-- when the dashboard has no such widget.
CREATE OR REPLACE FUNCTION widget_data(p_dashboard uuid, p_widget uuid) RETURNS json
LANGUAGE plpgsql STABLE AS $$
DECLARE
    w record;
BEGIN
    SELECT * INTO w FROM dashboard_widgets x WHERE x.id = p_widget AND x.dashboard_id = p_dashboard;
    IF NOT FOUND THEN
        IF NOT EXISTS (SELECT 1 FROM dashboards d WHERE d.id = p_dashboard) THEN
            RAISE EXCEPTION USING ERRCODE = 'UF404', MESSAGE = 'No dashboard has this id.';
        END IF;
        RAISE EXCEPTION USING ERRCODE = 'UF404', MESSAGE = 'This dashboard has no widget with this id.';
    END IF;
    RETURN json_build_object('widget_id', w.id, 'type', w.type,
                             'data', agg_widget_data(w.type, w.config),
                             'refreshed_at', agg_ts(agg_now() - interval '1 second'));
END $$;

-- Plans kept for the session, as the endpoints' (end of 13_aggregates_endpoints.sql).
ALTER FUNCTION agg_widget_data SET plan_cache_mode = force_generic_plan SET jit = off;
ALTER FUNCTION agg_recent_activity SET plan_cache_mode = force_generic_plan SET jit = off;

-- end of 14_aggregates_widgets
