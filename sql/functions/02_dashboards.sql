-- 02_dashboards.sql - the dashboards' functions, triggers and views: the
-- version bump, api_time(), the JSON of a Dashboard and a Widget, one
-- function per read and write (tables and the answer types: 002_dashboards.sql).
--
-- Repeatable (sql/README.md): CREATE OR REPLACE only. A function whose
-- arguments or return type change is dropped first (DROP FUNCTION IF
-- EXISTS with its old signature), here; the views' columns only grow at
-- the end, or the view is dropped first with what depends on it.

-- The version is the identity of a dashboard's representation: the ETag, and
-- the key of the workers' caches. So the database, not the callers, bumps it:
-- once per transaction that changes the dashboard row or any of its widgets,
-- whoever makes the change (a write function, or a person in psql).
CREATE OR REPLACE FUNCTION dashboards_bump_version() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    NEW.version := OLD.version;
    IF OLD.version_xact IS DISTINCT FROM pg_current_xact_id() THEN
        NEW.version := OLD.version + 1;
        NEW.version_xact := pg_current_xact_id();
        NEW.updated_at := now();
    END IF;
    RETURN NEW;
END $$;
CREATE OR REPLACE TRIGGER dashboards_version BEFORE UPDATE ON dashboards
    FOR EACH ROW EXECUTE FUNCTION dashboards_bump_version();

-- A widget change is a change of its dashboard.
CREATE OR REPLACE FUNCTION dashboard_widgets_touch_dashboard() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    UPDATE dashboards d SET updated_at = now()
     WHERE d.id IN (SELECT c.dashboard_id FROM changed c);
    RETURN NULL;
END $$;
CREATE OR REPLACE TRIGGER dashboard_widgets_inserted AFTER INSERT ON dashboard_widgets
    REFERENCING NEW TABLE AS changed
    FOR EACH STATEMENT EXECUTE FUNCTION dashboard_widgets_touch_dashboard();
CREATE OR REPLACE TRIGGER dashboard_widgets_updated AFTER UPDATE ON dashboard_widgets
    REFERENCING NEW TABLE AS changed
    FOR EACH STATEMENT EXECUTE FUNCTION dashboard_widgets_touch_dashboard();
CREATE OR REPLACE TRIGGER dashboard_widgets_deleted AFTER DELETE ON dashboard_widgets
    REFERENCING OLD TABLE AS changed
    FOR EACH STATEMENT EXECUTE FUNCTION dashboard_widgets_touch_dashboard();

-- Answers are JSON made here, one way for every group (the worker passes the
-- text on as it is and reads only named columns: ids and versions for the
-- ETag, Location and cursors).

-- api_time(t) - t as every answer writes a time: RFC 3339 in UTC, the
-- fraction as PostgreSQL prints it (trailing zeros cut, none on a whole
-- second): "2026-11-21T10:36:25.02Z". STABLE: to_char is.
CREATE OR REPLACE FUNCTION api_time(t timestamptz) RETURNS text
LANGUAGE sql STABLE PARALLEL SAFE AS $$
    -- one to_char; the trailing zeros stop at the '.', which then goes too
    SELECT rtrim(rtrim(to_char(t AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.US'), '0'), '.')
        || 'Z'
$$;

-- A Widget of the API as the row of a view whose columns are its members:
-- row_to_json of it is compact JSON (json_build_object would put spaces
-- around every colon), and a view, unlike a function called per widget, is
-- planned into the statement that reads it (the default dashboard: 2,974 ->
-- 6,820 reads/s in pgbench).
CREATE OR REPLACE VIEW widget_rows AS
SELECT dw.id, dw.dashboard_id, dw.type, dw.title, dw.config,
       (SELECT row_to_json(p) FROM (SELECT dw.x, dw.y, dw.w, dw.h) p) AS position,
       dw.refresh_interval_seconds, api_time(dw.created_at) AS created_at,
       api_time(dw.updated_at) AS updated_at
  FROM dashboard_widgets dw;
COMMENT ON VIEW widget_rows IS 'The members of a widget as the API writes them';

-- A dashboard's own members, JSON-ready: a DashboardSummary less its
-- widget_count, a Dashboard less its widgets.
CREATE OR REPLACE VIEW dashboard_rows AS
SELECT d.id, d.name, d.description, d.is_default, d.owner, d.version,
       api_time(d.created_at) AS created_at, api_time(d.updated_at) AS updated_at
  FROM dashboards d;
COMMENT ON VIEW dashboard_rows IS 'The members of a dashboard as the API writes them';

-- plpgsql, not a BEGIN ATOMIC SQL function: a set-returning SQL function
-- is planned again on every call, and this statement takes longer to plan
-- than to run; plpgsql keeps its plan for the session (pgbench, 8 clients:
-- 1,168 -> 10,665 reads/s; POST /dashboards' function 679 -> 1,010/s).
CREATE OR REPLACE FUNCTION dashboard_read(p_id uuid) RETURNS SETOF dashboard_answer
LANGUAGE plpgsql STABLE AS $$
BEGIN
    -- (dw, not w: a widget's width is its column w)
    RETURN QUERY
    SELECT r.id, r.version, row_to_json(x)
      FROM dashboard_rows r,
           LATERAL (SELECT r.*, COALESCE(
               (SELECT to_json(array_agg(row_to_json(wr) ORDER BY dw.y, dw.x, dw.created_at, dw.id))
                  FROM dashboard_widgets dw JOIN widget_rows wr ON wr.id = dw.id
                 WHERE dw.dashboard_id = r.id), '[]') AS widgets) x
     WHERE r.id = p_id;
END $$;

CREATE OR REPLACE FUNCTION widget_read(p_dashboard uuid, p_widget uuid) RETURNS SETOF widget_answer
LANGUAGE plpgsql STABLE AS $$
BEGIN
    RETURN QUERY
    SELECT wr.id, wr.dashboard_id, d.version, wr.type, row_to_json(wr)
      FROM widget_rows wr
      JOIN dashboards d ON d.id = wr.dashboard_id
     WHERE wr.dashboard_id = p_dashboard AND wr.id = p_widget;
END $$;

-- widget_json() made a widget's JSON before widget_rows (after the reads
-- that used it are replaced).
DROP FUNCTION IF EXISTS widget_json(dashboard_widgets);

-- Locks a dashboard and checks the version the caller expects (NULL: any).
-- Raises UF404 or UF412.
CREATE OR REPLACE FUNCTION dashboard_check(p_id uuid, p_expected integer) RETURNS void
LANGUAGE plpgsql AS $$
DECLARE
    v_version integer;
BEGIN
    SELECT d.version INTO v_version FROM dashboards d WHERE d.id = p_id FOR UPDATE;
    IF NOT FOUND THEN
        RAISE EXCEPTION USING ERRCODE = 'UF404', MESSAGE = format('No dashboard %s.', p_id);
    END IF;
    IF p_expected IS NOT NULL AND p_expected <> v_version THEN
        RAISE EXCEPTION USING ERRCODE = 'UF412', MESSAGE = format(
            'The dashboard is at version %s, not %s (If-Match); nothing was changed.',
            v_version, p_expected);
    END IF;
END $$;

-- dashboard_check, then counts the change (see dashboards_bump_version).
CREATE OR REPLACE FUNCTION dashboard_touch(p_id uuid, p_expected integer) RETURNS void
LANGUAGE plpgsql AS $$
BEGIN
    PERFORM dashboard_check(p_id, p_expected);
    UPDATE dashboards d SET updated_at = now() WHERE d.id = p_id;
END $$;

-- Serialises every change of the default flag; taken before any row lock so
-- that two such changes never deadlock.
CREATE OR REPLACE FUNCTION dashboard_lock_default() RETURNS void
LANGUAGE sql AS $$ SELECT pg_advisory_xact_lock(hashtext('fleetdash.default_dashboard')) $$;

-- Un-defaults every dashboard but p_keep (which may be NULL); the caller holds
-- dashboard_lock_default().
CREATE OR REPLACE FUNCTION dashboard_undefault_others(p_keep uuid) RETURNS void
LANGUAGE sql AS $$
    UPDATE dashboards SET is_default = false WHERE is_default AND id IS DISTINCT FROM p_keep
$$;

-- Inserts widgets given as a JSON array of validated WidgetInput objects.
CREATE OR REPLACE FUNCTION widgets_insert(p_dashboard uuid, p_widgets json) RETURNS SETOF uuid
LANGUAGE sql AS $$
    INSERT INTO dashboard_widgets (dashboard_id, type, title, config, x, y, w, h,
                                   refresh_interval_seconds, created_at, updated_at)
    SELECT p_dashboard, e->>'type', e->>'title', COALESCE(e->'config', '{}'),
           COALESCE((e->'position'->>'x')::integer, 0), COALESCE((e->'position'->>'y')::integer, 0),
           COALESCE((e->'position'->>'w')::integer, 4), COALESCE((e->'position'->>'h')::integer, 2),
           COALESCE((e->>'refresh_interval_seconds')::integer, 60),
           -- created_at keeps the given order among widgets at equal positions
           now() + make_interval(secs => n / 1e6), now() + make_interval(secs => n / 1e6)
      FROM json_array_elements(p_widgets) WITH ORDINALITY AS t(e, n)
    RETURNING id
$$;

CREATE OR REPLACE FUNCTION dashboard_create(p_name text, p_description text, p_is_default boolean,
                                 p_owner text, p_widgets json)
RETURNS SETOF dashboard_answer LANGUAGE plpgsql AS $$
DECLARE
    v_id uuid;
BEGIN
    IF p_is_default THEN
        PERFORM dashboard_lock_default();
        PERFORM dashboard_undefault_others(NULL);
    END IF;
    INSERT INTO dashboards (name, description, is_default, owner)
    VALUES (p_name, p_description, p_is_default, p_owner) RETURNING dashboards.id INTO v_id;
    PERFORM widgets_insert(v_id, COALESCE(p_widgets, '[]'));
    RETURN QUERY SELECT * FROM dashboard_read(v_id);
END $$;

-- PUT: every attribute replaced; p_widgets NULL keeps the widgets, an array
-- replaces them all.
CREATE OR REPLACE FUNCTION dashboard_replace(p_id uuid, p_expected integer, p_name text,
                                  p_description text, p_is_default boolean, p_owner text,
                                  p_widgets json)
RETURNS SETOF dashboard_answer LANGUAGE plpgsql AS $$
BEGIN
    IF p_is_default THEN
        PERFORM dashboard_lock_default();
    END IF;
    PERFORM dashboard_touch(p_id, p_expected);
    IF p_is_default THEN
        PERFORM dashboard_undefault_others(p_id);
    END IF;
    UPDATE dashboards d
       SET name = p_name, description = p_description, is_default = p_is_default, owner = p_owner
     WHERE d.id = p_id;
    IF p_widgets IS NOT NULL THEN
        DELETE FROM dashboard_widgets w WHERE w.dashboard_id = p_id;
        PERFORM widgets_insert(p_id, p_widgets);
    END IF;
    RETURN QUERY SELECT * FROM dashboard_read(p_id);
END $$;

-- PATCH: only the members present in p_patch change (JSON null clears); an
-- empty patch changes nothing, so the version stays.
CREATE OR REPLACE FUNCTION dashboard_patch(p_id uuid, p_expected integer, p_patch json)
RETURNS SETOF dashboard_answer LANGUAGE plpgsql AS $$
DECLARE
    v_default boolean := (p_patch->>'is_default')::boolean;
BEGIN
    IF NOT EXISTS (SELECT FROM json_object_keys(p_patch)) THEN
        PERFORM dashboard_check(p_id, p_expected);
        RETURN QUERY SELECT * FROM dashboard_read(p_id);
        RETURN;
    END IF;
    IF v_default THEN
        PERFORM dashboard_lock_default();
    END IF;
    PERFORM dashboard_touch(p_id, p_expected);
    IF v_default THEN
        PERFORM dashboard_undefault_others(p_id);
    END IF;
    UPDATE dashboards d SET
        name        = CASE WHEN p_patch->'name' IS NULL THEN d.name ELSE p_patch->>'name' END,
        description = CASE WHEN p_patch->'description' IS NULL THEN d.description
                           ELSE p_patch->>'description' END,
        owner       = CASE WHEN p_patch->'owner' IS NULL THEN d.owner ELSE p_patch->>'owner' END,
        is_default  = COALESCE(v_default, d.is_default)
     WHERE d.id = p_id;
    RETURN QUERY SELECT * FROM dashboard_read(p_id);
END $$;

CREATE OR REPLACE FUNCTION dashboard_delete(p_id uuid, p_expected integer) RETURNS void
LANGUAGE plpgsql AS $$
BEGIN
    PERFORM dashboard_touch(p_id, p_expected);
    DELETE FROM dashboards d WHERE d.id = p_id;
END $$;

-- Moves many widgets at once; one unknown widget and nothing moves.
CREATE OR REPLACE FUNCTION dashboard_layout(p_id uuid, p_expected integer, p_positions json)
RETURNS SETOF dashboard_answer LANGUAGE plpgsql AS $$
DECLARE
    v_unknown text;
BEGIN
    PERFORM dashboard_touch(p_id, p_expected);
    SELECT string_agg('positions.' || k, ',' ORDER BY k) INTO v_unknown
      FROM json_object_keys(p_positions) AS k
     WHERE NOT EXISTS (SELECT 1 FROM dashboard_widgets w
                        WHERE w.dashboard_id = p_id AND w.id::text = lower(k));
    IF v_unknown IS NOT NULL THEN
        RAISE EXCEPTION USING ERRCODE = 'UF422', COLUMN = v_unknown,
            MESSAGE = 'is not a widget of this dashboard';
    END IF;
    UPDATE dashboard_widgets w
       SET x = (p.value->>'x')::integer, y = (p.value->>'y')::integer,
           w = (p.value->>'w')::integer, h = (p.value->>'h')::integer, updated_at = now()
      FROM json_each(p_positions) AS p
     WHERE w.dashboard_id = p_id AND w.id = p.key::uuid;
    RETURN QUERY SELECT * FROM dashboard_read(p_id);
END $$;

-- Raises UF404 unless p_widget belongs to p_dashboard.
CREATE OR REPLACE FUNCTION widget_check(p_dashboard uuid, p_widget uuid) RETURNS void
LANGUAGE plpgsql AS $$
BEGIN
    PERFORM 1 FROM dashboard_widgets w WHERE w.id = p_widget AND w.dashboard_id = p_dashboard;
    IF NOT FOUND THEN
        RAISE EXCEPTION USING ERRCODE = 'UF404',
            MESSAGE = format('No widget %s on dashboard %s.', p_widget, p_dashboard);
    END IF;
END $$;

CREATE OR REPLACE FUNCTION widget_create(p_dashboard uuid, p_expected integer, p_widget json)
RETURNS SETOF widget_answer LANGUAGE plpgsql AS $$
DECLARE
    v_id uuid;
BEGIN
    PERFORM dashboard_touch(p_dashboard, p_expected);
    SELECT i INTO v_id FROM widgets_insert(p_dashboard, json_build_array(p_widget)) AS i;
    RETURN QUERY SELECT * FROM widget_read(p_dashboard, v_id);
END $$;

-- PUT (p_replace) sets every attribute, defaults for the absent ones; PATCH
-- changes only the members present.
CREATE OR REPLACE FUNCTION widget_update(p_dashboard uuid, p_widget uuid, p_expected integer,
                              p_body json, p_replace boolean)
RETURNS SETOF widget_answer LANGUAGE plpgsql AS $$
DECLARE
    v_position json := p_body->'position';
BEGIN
    IF NOT p_replace AND NOT EXISTS (SELECT FROM json_object_keys(p_body)) THEN
        PERFORM dashboard_check(p_dashboard, p_expected);
        PERFORM widget_check(p_dashboard, p_widget);
        RETURN QUERY SELECT * FROM widget_read(p_dashboard, p_widget);
        RETURN;
    END IF;
    PERFORM dashboard_touch(p_dashboard, p_expected);
    PERFORM widget_check(p_dashboard, p_widget);
    IF p_replace THEN
        v_position := COALESCE(v_position, '{"x":0,"y":0,"w":4,"h":2}');
    END IF;
    UPDATE dashboard_widgets w SET
        type   = COALESCE(p_body->>'type', w.type),
        title  = COALESCE(p_body->>'title', w.title),
        config = COALESCE(p_body->'config', CASE WHEN p_replace THEN '{}' ELSE w.config END),
        x = COALESCE((v_position->>'x')::integer, w.x),
        y = COALESCE((v_position->>'y')::integer, w.y),
        w = COALESCE((v_position->>'w')::integer, w.w),
        h = COALESCE((v_position->>'h')::integer, w.h),
        refresh_interval_seconds = COALESCE((p_body->>'refresh_interval_seconds')::integer,
            CASE WHEN p_replace THEN 60 ELSE w.refresh_interval_seconds END),
        updated_at = now()
     WHERE w.id = p_widget;
    RETURN QUERY SELECT * FROM widget_read(p_dashboard, p_widget);
END $$;

CREATE OR REPLACE FUNCTION widget_delete(p_dashboard uuid, p_widget uuid, p_expected integer)
RETURNS void LANGUAGE plpgsql AS $$
BEGIN
    PERFORM dashboard_touch(p_dashboard, p_expected);
    PERFORM widget_check(p_dashboard, p_widget);
    DELETE FROM dashboard_widgets w WHERE w.id = p_widget;
END $$;

-- The default dashboard, created with the ten "System Overview" widgets when
-- there is none. Concurrent first calls create exactly one.
CREATE OR REPLACE FUNCTION dashboard_default() RETURNS SETOF dashboard_answer
LANGUAGE plpgsql AS $$
DECLARE
    v_id uuid;
BEGIN
    SELECT d.id INTO v_id FROM dashboards d WHERE d.is_default;
    IF NOT FOUND THEN
        PERFORM dashboard_lock_default();
        -- A new snapshot: sees a default committed while we waited.
        SELECT d.id INTO v_id FROM dashboards d WHERE d.is_default;
    END IF;
    IF v_id IS NULL THEN
        INSERT INTO dashboards (name, description, is_default)
        VALUES ('System Overview', 'Default system monitoring dashboard', true)
        RETURNING dashboards.id INTO v_id;
        PERFORM widgets_insert(v_id, '[
          {"type":"metric_card","title":"Success Rate","config":{"metric":"success_rate","time_range":"24h"},"position":{"x":0,"y":0,"w":3,"h":2}},
          {"type":"metric_card","title":"Total Executions","config":{"metric":"total_executions","time_range":"24h"},"position":{"x":3,"y":0,"w":3,"h":2}},
          {"type":"metric_card","title":"Avg Latency","config":{"metric":"avg_latency","time_range":"24h"},"position":{"x":6,"y":0,"w":3,"h":2}},
          {"type":"metric_card","title":"Total Cost","config":{"metric":"total_cost","time_range":"24h"},"position":{"x":9,"y":0,"w":3,"h":2}},
          {"type":"line_chart","title":"Execution Metrics","config":{"metrics":["executions","success_rate"],"time_range":"24h"},"position":{"x":0,"y":2,"w":8,"h":4}},
          {"type":"status_board","title":"Agent Status","config":{},"position":{"x":8,"y":2,"w":4,"h":4}},
          {"type":"pie_chart","title":"Error Breakdown","config":{"time_range":"24h"},"position":{"x":0,"y":6,"w":4,"h":4}},
          {"type":"bar_chart","title":"Cost by Agent","config":{"group_by":"agent","time_range":"24h"},"position":{"x":4,"y":6,"w":4,"h":4}},
          {"type":"alert_list","title":"Active Alerts","config":{"limit":10},"position":{"x":8,"y":6,"w":4,"h":4}},
          {"type":"table","title":"Recent Activity","config":{"limit":10},"position":{"x":0,"y":10,"w":12,"h":4}}
        ]');
    END IF;
    RETURN QUERY SELECT * FROM dashboard_read(v_id);
END $$;
