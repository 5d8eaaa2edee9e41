-- 011_budgets.sql - spending budgets and the thresholds they fired
--
-- A budget is an amount in USD per calendar period (day, week from Monday,
-- month) in a time zone, over a scope: every execution (global), or those of
-- one agent, one model and/or whose metadata holds every KEY=VALUE of
-- scope_metadata (all given parts hold). Spent is the sum of cost_usd of
-- the executions of the scope started in the current period, read from the
-- rollups (functions/24_budgets.sql). Crossing a threshold (a percent of
-- the amount) fires once per period: budget_firings remembers it, and the
-- alert it raised (008) resolves when the period ends.
--
-- version is the ETag (If-Match on PUT, PATCH, DELETE), bumped once per
-- transaction that changes the row, as dashboards' (002).

CREATE TABLE budgets (
    id              uuid        PRIMARY KEY DEFAULT gen_random_uuid(),
    name            text        NOT NULL UNIQUE CHECK (char_length(name) BETWEEN 1 AND 255),
    amount_usd      numeric(14,6) NOT NULL CHECK (amount_usd > 0),
    period          text        NOT NULL CHECK (period IN ('day', 'week', 'month')),
    -- UTC or an IANA zone name (checked by budget_check(), as the
    -- aggregates check their tz)
    tz              text        NOT NULL DEFAULT 'UTC' CHECK (char_length(tz) BETWEEN 1 AND 64),
    -- the scope; all NULL: the whole fleet. Not a foreign key: a budget
    -- outlives the agent it was about (its spend is then 0).
    scope_agent_id  uuid,
    scope_model     text        CHECK (char_length(scope_model) BETWEEN 1 AND 200),
    -- a flat object of text values, as the aggregates' metadata filter
    scope_metadata  jsonb       CHECK (jsonb_typeof(scope_metadata) = 'object'
                                       AND scope_metadata <> '{}'),
    -- percents of the amount, ascending, distinct, 1..1000
    thresholds      integer[]   NOT NULL DEFAULT '{50,80,100}'
                                CHECK (cardinality(thresholds) BETWEEN 1 AND 20
                                       AND array_ndims(thresholds) = 1
                                       AND 1 <= ALL (thresholds) AND 1000 >= ALL (thresholds)),
    receivers       uuid[]      NOT NULL DEFAULT '{}',
    enabled         boolean     NOT NULL DEFAULT true,
    version         integer     NOT NULL DEFAULT 1 CHECK (version >= 1),
    version_xact    xid8        NOT NULL DEFAULT pg_current_xact_id(),
    created_at      timestamptz NOT NULL DEFAULT now(),
    updated_at      timestamptz NOT NULL DEFAULT now()
);
COMMENT ON TABLE budgets IS
    'Spending budgets: an amount per calendar period in a time zone, over a scope, with thresholds';
CREATE INDEX budgets_created_idx ON budgets (created_at DESC, id DESC);

-- budget_firings - a threshold (its percent as text, or 'projection': the
-- pace of the period reaches the amount) fired in the period that starts
-- at period_start, and the alert it raised. One row per (budget, period,
-- threshold): the once-per-period rule holds under concurrent evaluators.
CREATE TABLE budget_firings (
    budget_id    uuid        NOT NULL REFERENCES budgets (id) ON DELETE CASCADE,
    period_start timestamptz NOT NULL,
    threshold    text        NOT NULL CHECK (threshold ~ '^[1-9][0-9]*$'
                                             OR threshold = 'projection'),
    fingerprint  text        NOT NULL,
    alert_id     uuid        REFERENCES alerts (id) ON DELETE SET NULL,
    value        double precision,
    fired_at     timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (budget_id, period_start, threshold)
);
COMMENT ON TABLE budget_firings IS
    'Thresholds of budgets fired, once per period, with the alert each raised';
CREATE INDEX budget_firings_alert_idx ON budget_firings (alert_id) WHERE alert_id IS NOT NULL;

ALTER TABLE alerts ADD CONSTRAINT alerts_budget_id_fkey
    FOREIGN KEY (budget_id) REFERENCES budgets (id) ON DELETE SET NULL;
