-- functions/24_budgets.sql - budgets: their periods, spend, status, writes and evaluation
--
-- Tables in 011_budgets.sql. Errors for the client use the SQLSTATEs of
-- 03_registry.sql (UF404, UF409, UF412, UF422 naming its fields in COLUMN).
--
-- What was decided:
-- * Periods are calendar periods in the budget's tz: a day from local
--   midnight, a week from Monday 00:00, a month from the 1st 00:00; spent
--   is the cost of the scope's executions started in [period start, p_at).
-- * remaining_usd = amount - spent: negative once the budget is overspent.
-- * projected_usd = spent / elapsed * period length (the pace so far);
--   spent itself at the very start of a period. projected_exhausted_at is
--   when that pace reaches the amount, or null: nothing spent yet, the
--   pace does not reach it before the period ends, or it is already
--   reached (then exhausted is true).
-- * budgets_evaluate(): each threshold crossed in the current period fires
--   once (budget_firings), as its own alert (fingerprint: budget, period,
--   threshold), severity critical from 100 %, high from 80 %, medium below;
--   a projection above the amount fires one medium warning per period,
--   once a tenth of the period has passed (a pace read from the first
--   minutes says nothing) and while the amount is not yet reached. A
--   period's alerts resolve at the first evaluation after the period ended;
--   deleting a budget resolves its open alerts. Raising the amount does not
--   resolve the alerts already fired in the period.

-- ===================================================================
-- Periods and spend
-- ===================================================================

-- budget_period - the calendar period (day, week, month) in p_tz that
-- holds p_at: [p_from, p_to).
CREATE OR REPLACE FUNCTION budget_period(p_period text, p_tz text, p_at timestamptz,
                                         OUT p_from timestamptz, OUT p_to timestamptz)
LANGUAGE sql STABLE PARALLEL SAFE AS $$
    SELECT l AT TIME ZONE p_tz, (l + ('1 ' || p_period)::interval) AT TIME ZONE p_tz
      FROM (SELECT date_trunc(p_period, p_at AT TIME ZONE p_tz) AS l) x
$$;

-- budget_period_label - the period starting at p_from as people name it:
-- 2026-05-03 (day), 2026-W18 (ISO week), 2026-05 (month).
CREATE OR REPLACE FUNCTION budget_period_label(p_period text, p_tz text, p_from timestamptz)
RETURNS text LANGUAGE sql STABLE PARALLEL SAFE AS $$
    SELECT to_char(p_from AT TIME ZONE p_tz,
                   CASE p_period WHEN 'day' THEN 'YYYY-MM-DD' WHEN 'week' THEN 'IYYY-"W"IW'
                                 ELSE 'YYYY-MM' END)
$$;

-- budget_spent - the cost of the executions of b's scope started in
-- [p_from, p_to), exact, from the fewest rollup rows that cover the range
-- (rollup_rows(): weeks, days, quarters, hours, 5 minutes, pending deltas,
-- raw edges); a metadata scope reads raw rows, as the aggregates' metadata
-- filter.
CREATE OR REPLACE FUNCTION budget_spent(b budgets, p_from timestamptz, p_to timestamptz)
RETURNS numeric LANGUAGE sql STABLE AS $$
    SELECT coalesce(sum(r.cost), 0)
      FROM rollup_rows(p_from, p_to, '7 days',
                       (b.scope_agent_id IS NOT NULL)::int + 2 * (b.scope_model IS NOT NULL)::int,
                       CASE WHEN b.scope_agent_id IS NOT NULL THEN ARRAY[b.scope_agent_id] END,
                       CASE WHEN b.scope_model IS NOT NULL THEN ARRAY[b.scope_model] END,
                       b.scope_metadata, '1 day', false) r
     WHERE p_to > p_from
$$;

-- budget_figures - b at p_at: its period, spent, projection (see the top).
CREATE OR REPLACE FUNCTION budget_figures(b budgets, p_at timestamptz,
                                          OUT p_from timestamptz, OUT p_to timestamptz,
                                          OUT spent numeric, OUT projected numeric,
                                          OUT exhausted_at timestamptz, OUT elapsed numeric,
                                          OUT length numeric)
LANGUAGE plpgsql STABLE AS $$
BEGIN
    SELECT per.p_from, per.p_to INTO p_from, p_to FROM budget_period(b.period, b.tz, p_at) per;
    spent := budget_spent(b, p_from, p_at);
    elapsed := extract(epoch FROM p_at - p_from);
    length := extract(epoch FROM p_to - p_from);
    projected := CASE WHEN elapsed > 0 THEN round(spent * length / elapsed, 6) ELSE spent END;
    IF spent > 0 AND spent < b.amount_usd AND elapsed > 0 THEN
        exhausted_at := p_from + make_interval(secs => (b.amount_usd / spent * elapsed)::double precision);
        IF exhausted_at >= p_to THEN
            exhausted_at := NULL;
        END IF;
    END IF;
END $$;

-- ===================================================================
-- The API's objects
-- ===================================================================

-- budget_rows - Budget objects of the API, ready for row_to_json.
DROP VIEW IF EXISTS budget_rows CASCADE;
CREATE VIEW budget_rows AS
SELECT b.id, b.name, trim_scale(b.amount_usd) AS amount_usd, b.period, b.tz,
       (SELECT row_to_json(s) FROM (SELECT b.scope_agent_id AS agent_id, b.scope_model AS model,
                                            b.scope_metadata AS metadata) s) AS scope,
       b.thresholds, b.receivers, b.enabled, b.version,
       api_time(b.created_at) AS created_at, api_time(b.updated_at) AS updated_at
  FROM budgets b;
COMMENT ON VIEW budget_rows IS 'Budget objects of the API';

-- budget_status_of - GET /budgets/{id}/status of b at p_at, as JSON.
CREATE OR REPLACE FUNCTION budget_status_of(b budgets, p_at timestamptz) RETURNS json
LANGUAGE sql STABLE AS $$
    SELECT json_build_object(
               'budget_id', b.id, 'at', api_time(p_at), 'amount_usd', trim_scale(b.amount_usd),
               'spent_usd', trim_scale(f.spent),
               'remaining_usd', trim_scale(b.amount_usd - f.spent),
               'percent', (f.spent * 100 / b.amount_usd)::double precision,
               'projected_usd', trim_scale(f.projected),
               'projected_exhausted_at', api_time(f.exhausted_at),
               'exhausted', f.spent >= b.amount_usd,
               'period', json_build_object('from', api_time(f.p_from), 'to', api_time(f.p_to),
                                           'label', budget_period_label(b.period, b.tz, f.p_from)))
      FROM budget_figures(b, p_at) f
$$;

-- budget_status - the status of budget p_id at p_at; NULL when there is none.
CREATE OR REPLACE FUNCTION budget_status(p_id uuid, p_at timestamptz) RETURNS json
LANGUAGE sql STABLE AS $$
    SELECT budget_status_of(b, p_at) FROM budgets b WHERE b.id = p_id
$$;

-- budget_read - (body, id, version) of budget p_id; no row when none.
CREATE OR REPLACE FUNCTION budget_read(p_id uuid, OUT body json, OUT id uuid, OUT version integer)
RETURNS SETOF record LANGUAGE sql STABLE AS $$
    SELECT row_to_json(r), r.id, r.version FROM budget_rows r WHERE r.id = p_id
$$;

-- ===================================================================
-- Writes
-- ===================================================================

-- budgets_bump_version - once per transaction that changes the row (the
-- ETag), as dashboards_bump_version (02_dashboards.sql).
CREATE OR REPLACE TRIGGER budgets_version BEFORE UPDATE ON budgets
    FOR EACH ROW EXECUTE FUNCTION dashboards_bump_version();

-- budget_apply - b with the members of p_body applied (a member absent
-- keeps b's value; scope replaces the whole scope, null: global).
CREATE OR REPLACE FUNCTION budget_apply(b budgets, p_body jsonb) RETURNS budgets
LANGUAGE plpgsql STABLE AS $$
BEGIN
    IF p_body ? 'name' THEN b.name := p_body ->> 'name'; END IF;
    IF p_body ? 'amount_usd' THEN b.amount_usd := (p_body ->> 'amount_usd')::numeric; END IF;
    IF p_body ? 'period' THEN b.period := p_body ->> 'period'; END IF;
    IF p_body ? 'tz' THEN b.tz := p_body ->> 'tz'; END IF;
    IF p_body ? 'scope' THEN
        b.scope_agent_id := p_body -> 'scope' ->> 'agent_id';
        b.scope_model := p_body -> 'scope' ->> 'model';
        b.scope_metadata := nullif(nullif(p_body -> 'scope' -> 'metadata', 'null'), '{}');
    END IF;
    IF p_body ? 'thresholds' THEN
        b.thresholds := ARRAY(SELECT jsonb_array_elements_text(p_body -> 'thresholds')::integer);
    END IF;
    IF p_body ? 'receivers' THEN
        b.receivers := ARRAY(SELECT jsonb_array_elements_text(p_body -> 'receivers')::uuid);
    END IF;
    IF p_body ? 'enabled' THEN b.enabled := (p_body ->> 'enabled')::boolean; END IF;
    RETURN b;
END $$;

-- budget_check - UF422 naming every field the worker cannot check alone:
-- an unknown time zone, thresholds not ascending and distinct, an unknown
-- agent, an unknown receiver; UF409 for a name another budget has.
CREATE OR REPLACE FUNCTION budget_check(b budgets) RETURNS void
LANGUAGE plpgsql AS $$
DECLARE
    v_bad text[] := '{}';
BEGIN
    IF b.tz <> 'UTC' THEN
        BEGIN
            PERFORM now() AT TIME ZONE b.tz;
        EXCEPTION WHEN invalid_parameter_value THEN
            v_bad := v_bad || 'tz'::text;
        END;
    END IF;
    IF EXISTS (SELECT 1 FROM unnest(b.thresholds) WITH ORDINALITY t (v, i)
                WHERE t.i > 1 AND t.v <= b.thresholds[t.i - 1]) THEN
        v_bad := v_bad || 'thresholds'::text;
    END IF;
    IF b.scope_agent_id IS NOT NULL
       AND NOT EXISTS (SELECT 1 FROM agents g WHERE g.id = b.scope_agent_id) THEN
        v_bad := v_bad || 'scope.agent_id'::text;
    END IF;
    IF cardinality(v_bad) > 0 THEN
        RAISE EXCEPTION USING ERRCODE = 'UF422', COLUMN = array_to_string(v_bad, ','),
            MESSAGE = CASE WHEN v_bad = '{tz}'
                           THEN format('unknown time zone "%s" (an IANA name such as Europe/Berlin)', b.tz)
                           WHEN v_bad = '{thresholds}' THEN 'must be ascending and distinct'
                           WHEN v_bad = '{scope.agent_id}' THEN 'no such agent'
                           ELSE 'is invalid (unknown time zone, thresholds not ascending and distinct, or no such agent)' END;
    END IF;
    PERFORM alert_receivers_require(b.receivers, 'receivers');
    IF EXISTS (SELECT 1 FROM budgets o WHERE o.name = b.name AND o.id <> b.id) THEN
        RAISE EXCEPTION USING ERRCODE = 'UF409',
            MESSAGE = format('A budget is already named "%s".', b.name);
    END IF;
END $$;

-- budget_lock - budget p_id locked for update, at the version the caller
-- expects (NULL: any); UF404, UF412.
CREATE OR REPLACE FUNCTION budget_lock(p_id uuid, p_expected integer) RETURNS budgets
LANGUAGE plpgsql AS $$
DECLARE
    v budgets;
BEGIN
    SELECT * INTO v FROM budgets WHERE id = p_id FOR UPDATE;
    IF NOT FOUND THEN
        RAISE EXCEPTION USING ERRCODE = 'UF404', MESSAGE = format('No budget %s.', p_id);
    END IF;
    IF p_expected IS NOT NULL AND p_expected <> v.version THEN
        RAISE EXCEPTION USING ERRCODE = 'UF412', MESSAGE = format(
            'The budget is at version %s, not %s (If-Match); nothing was changed.',
            v.version, p_expected);
    END IF;
    RETURN v;
END $$;

-- budget_create - POST /budgets. Answers (body, id, version).
CREATE OR REPLACE FUNCTION budget_create(p_body jsonb, OUT body json, OUT id uuid,
                                         OUT version integer)
LANGUAGE plpgsql AS $$
DECLARE
    v budgets;
BEGIN
    v.id := gen_random_uuid();
    v.tz := 'UTC';
    v.thresholds := '{50,80,100}';
    v.receivers := '{}';
    v.enabled := true;
    v := budget_apply(v, p_body);
    PERFORM budget_check(v);
    INSERT INTO budgets (id, name, amount_usd, period, tz, scope_agent_id, scope_model,
                         scope_metadata, thresholds, receivers, enabled)
    VALUES (v.id, v.name, v.amount_usd, v.period, v.tz, v.scope_agent_id, v.scope_model,
            v.scope_metadata, v.thresholds, v.receivers, v.enabled);
    SELECT r.body, r.id, r.version INTO body, id, version FROM budget_read(v.id) r;
END $$;

-- budget_update - PUT (p_replace: absent members take their defaults) or
-- PATCH (absent members keep their value) of budget p_id at version
-- p_expected. An empty PATCH changes nothing (the version stays).
CREATE OR REPLACE FUNCTION budget_update(p_id uuid, p_expected integer, p_body jsonb,
                                         p_replace boolean, OUT body json, OUT id uuid,
                                         OUT version integer)
LANGUAGE plpgsql AS $$
DECLARE
    v budgets := budget_lock(p_id, p_expected);
BEGIN
    IF p_replace THEN
        p_body := jsonb_build_object('tz', 'UTC', 'scope', NULL, 'thresholds', '[50,80,100]'::jsonb,
                                     'receivers', '[]'::jsonb, 'enabled', true) || p_body;
    END IF;
    IF p_body <> '{}' THEN
        v := budget_apply(v, p_body);
        PERFORM budget_check(v);
        UPDATE budgets b
           SET name = v.name, amount_usd = v.amount_usd, period = v.period, tz = v.tz,
               scope_agent_id = v.scope_agent_id, scope_model = v.scope_model,
               scope_metadata = v.scope_metadata, thresholds = v.thresholds,
               receivers = v.receivers, enabled = v.enabled
         WHERE b.id = p_id;
    END IF;
    SELECT r.body, r.id, r.version INTO body, id, version FROM budget_read(p_id) r;
END $$;

-- budget_delete - DELETE /budgets/{id} at version p_expected: its open
-- alerts resolve, then it goes (its firings with it; its alerts stay,
-- without budget_id).
CREATE OR REPLACE FUNCTION budget_delete(p_id uuid, p_expected integer) RETURNS void
LANGUAGE plpgsql AS $$
BEGIN
    PERFORM budget_lock(p_id, p_expected);
    PERFORM alerts_clear(ARRAY(SELECT a.fingerprint FROM alerts a
                                WHERE a.budget_id = p_id AND a.status <> 'resolved'),
                         now(), 'api', 'the budget was deleted');
    DELETE FROM budgets b WHERE b.id = p_id;
END $$;

-- ===================================================================
-- Evaluation (the alerts group's evaluator job calls this every cycle)
-- ===================================================================

-- budgets_evaluate - every enabled budget at p_at, set-based: the alerts
-- of periods that ended resolve; each threshold crossed in the current
-- period and not yet fired fires (an alert with the budget's receivers,
-- labels alertname=budget, budget, budget_id, period, threshold; value:
-- the percent spent) and is recorded in budget_firings; a projection above
-- the amount fires one warning per period (see the top of this file).
-- Concurrent evaluators fire each threshold once (budget_firings' key).
-- Returns how many fired.
CREATE OR REPLACE FUNCTION budgets_evaluate(p_at timestamptz) RETURNS integer
LANGUAGE plpgsql AS $$
DECLARE
    v_signals alert_signal_t[];
BEGIN
    -- periods that ended: their open alerts resolve
    PERFORM alerts_clear(ARRAY(
                SELECT a.fingerprint
                  FROM budget_firings f
                  JOIN budgets b ON b.id = f.budget_id
                  JOIN alerts a ON a.id = f.alert_id
                 WHERE a.status <> 'resolved'
                   AND f.period_start < (budget_period(b.period, b.tz, p_at)).p_from),
            p_at, 'budget', 'the budget period ended');

    WITH s AS (
        SELECT b.*, f.p_from, f.spent, f.projected, f.elapsed, f.length,
               budget_period_label(b.period, b.tz, f.p_from) AS label
          FROM budgets b, LATERAL budget_figures(b, p_at) f
         WHERE b.enabled
    ), crossed AS (
        SELECT s.id AS budget_id, s.p_from, t::text AS threshold,
               CASE WHEN t >= 100 THEN 'critical' WHEN t >= 80 THEN 'high'
                    ELSE 'medium' END AS severity,
               (s.spent * 100 / s.amount_usd)::double precision AS value,
               format('Budget "%s": %s %% of %s USD spent (%s)', s.name, t,
                      trim_scale(s.amount_usd), s.label) AS title,
               format('Spent %s USD of %s USD in %s %s.', trim_scale(s.spent),
                      trim_scale(s.amount_usd), s.period, s.label) AS message
          FROM s, unnest(s.thresholds) t
         WHERE s.spent * 100 >= t * s.amount_usd
        UNION ALL
        SELECT s.id, s.p_from, 'projection', 'medium',
               (s.projected * 100 / s.amount_usd)::double precision,
               format('Budget "%s" is projected to reach %s USD of %s USD (%s)', s.name,
                      trim_scale(s.projected), trim_scale(s.amount_usd), s.label),
               format('Spent %s USD of %s USD so far in %s %s; at this pace %s USD by its end.',
                      trim_scale(s.spent), trim_scale(s.amount_usd), s.period, s.label,
                      trim_scale(s.projected))
          FROM s
         WHERE s.spent < s.amount_usd AND s.projected > s.amount_usd
           AND s.elapsed * 10 >= s.length
    ), signals AS (
        SELECT c.*, s.receivers,
               (SELECT g.id FROM agents g WHERE g.id = s.scope_agent_id) AS agent_id,
               jsonb_build_object('alertname', 'budget', 'budget', s.name,
                                  'budget_id', s.id::text, 'period', s.label,
                                  'threshold', c.threshold) AS labels,
               alert_fingerprint('budget:' || s.id,
                                 jsonb_build_object('period', s.label,
                                                    'period_start', api_time(c.p_from),
                                                    'threshold', c.threshold)) AS fingerprint
          FROM crossed c JOIN s ON s.id = c.budget_id
    ), fired AS (
        INSERT INTO budget_firings AS f (budget_id, period_start, threshold, fingerprint, value,
                                         fired_at)
        SELECT g.budget_id, g.p_from, g.threshold, g.fingerprint, g.value, p_at
          FROM signals g
        ON CONFLICT (budget_id, period_start, threshold) DO NOTHING
        RETURNING f.budget_id, f.period_start, f.threshold
    )
    SELECT array_agg(ROW(g.fingerprint, NULL, g.budget_id, g.severity, g.title, g.message,
                         g.agent_id, NULL, g.labels,
                         jsonb_build_object('summary', g.title, 'description', g.message),
                         g.value, g.receivers)::alert_signal_t)
      INTO v_signals
      FROM fired x
      JOIN signals g ON g.budget_id = x.budget_id AND g.p_from = x.period_start
                    AND g.threshold = x.threshold;

    IF v_signals IS NULL THEN
        RETURN 0;
    END IF;
    WITH r AS (SELECT * FROM alerts_raise(v_signals, p_at, 'budget'))
    UPDATE budget_firings f SET alert_id = r.id
      FROM r
     WHERE f.fingerprint = r.fingerprint AND f.alert_id IS NULL;
    RETURN cardinality(v_signals);
END $$;
COMMENT ON FUNCTION budgets_evaluate(timestamptz) IS
    'Fires the budget thresholds crossed in the current period, once each; resolves ended periods';
