-- 002_dashboards.sql - dashboards and their widgets, and the composite types
-- their reads and writes answer with; the functions every dashboard write
-- goes through, its triggers and views are in functions/02_dashboards.sql.
--
-- Every write locks the dashboard row, checks the caller's expected version
-- (If-Match) and bumps the version, all in one statement from the worker's
-- side. Errors meant for the client are raised with SQLSTATEs the worker maps
-- to HTTP: UF404 not found, UF412 version mismatch, UF422 bad field (the
-- field paths in COLUMN, comma-separated).

CREATE TABLE dashboards (
    id          uuid PRIMARY KEY DEFAULT gen_random_uuid(),
    name        text NOT NULL CHECK (char_length(name) BETWEEN 1 AND 255),
    description text CHECK (char_length(description) <= 10000),
    is_default  boolean NOT NULL DEFAULT false,
    owner       text CHECK (char_length(owner) BETWEEN 1 AND 255),
    version     integer NOT NULL DEFAULT 1 CHECK (version >= 1),
    -- the transaction that set version: a transaction bumps it only once
    version_xact xid8 NOT NULL DEFAULT pg_current_xact_id(),
    created_at  timestamptz NOT NULL DEFAULT now(),
    updated_at  timestamptz NOT NULL DEFAULT now()
);
COMMENT ON TABLE dashboards IS 'A named set of widgets; version counts the transactions that changed it (ETag)';

-- At most one default dashboard, whatever the application does.
CREATE UNIQUE INDEX dashboards_one_default ON dashboards (is_default) WHERE is_default;
-- The listing order (default first, then name, then id) for keyset pages.
CREATE INDEX dashboards_listing ON dashboards ((NOT is_default), name, id);
CREATE INDEX dashboards_owner_listing ON dashboards (owner, (NOT is_default), name, id);

CREATE TABLE dashboard_widgets (
    id           uuid PRIMARY KEY DEFAULT gen_random_uuid(),
    dashboard_id uuid NOT NULL REFERENCES dashboards (id) ON DELETE CASCADE,
    type         text NOT NULL CHECK (type IN ('metric_card', 'line_chart', 'bar_chart',
                     'pie_chart', 'table', 'heatmap', 'gauge', 'alert_list', 'status_board')),
    title        text NOT NULL CHECK (char_length(title) BETWEEN 1 AND 255),
    -- json, not jsonb: the object comes back exactly as it was stored, key order included.
    config       json NOT NULL DEFAULT '{}' CHECK (json_typeof(config) = 'object'),
    x            integer NOT NULL CHECK (x >= 0),
    y            integer NOT NULL CHECK (y >= 0),
    w            integer NOT NULL CHECK (w >= 1),
    h            integer NOT NULL CHECK (h >= 1),
    refresh_interval_seconds integer NOT NULL DEFAULT 60
                     CHECK (refresh_interval_seconds BETWEEN 10 AND 3600),
    created_at   timestamptz NOT NULL DEFAULT now(),
    updated_at   timestamptz NOT NULL DEFAULT now(),
    CONSTRAINT dashboard_widgets_fits_grid CHECK (x + w <= 12)
);
COMMENT ON TABLE dashboard_widgets IS 'One widget of a dashboard: type, stored config, place on the 12-column grid';
-- In display order, so reading a dashboard needs no sort.
CREATE INDEX dashboard_widgets_by_dashboard ON dashboard_widgets (dashboard_id, y, x, created_at, id);

-- The answer of every read and write of one dashboard: its id and version
-- (ETag, Location) and the Dashboard with its widgets in display order.
CREATE TYPE dashboard_answer AS (id uuid, version integer, body json);

-- One widget, with its dashboard's id and version (the ETag is the
-- dashboard's).
CREATE TYPE widget_answer AS (id uuid, dashboard_id uuid, dashboard_version integer,
                              type text, body json);
