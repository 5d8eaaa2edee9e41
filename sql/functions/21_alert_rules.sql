-- functions/21_alert_rules.sql - alert rules (the API's objects and writes) and the evaluator
--
-- The evaluator, alert_rules_evaluate(p_at, p_interval), evaluates every
-- enabled rule not yet evaluated in the cycle of p_at, set-based: the
-- sums of a window are read once per distinct window from the rollups
-- (rollup_rows() of 12_aggregates_reading.sql, per agent and model) and
-- shared by every rule of that window; only rules with a metadata filter
-- read raw rows, each its own. Each instance then moves its state
-- (alert_rule_instances, 010) and the alerts of those that fire or clear
-- are raised and cleared with alerts_raise() / alerts_clear() (20). Rows
-- of due rules are taken FOR UPDATE SKIP LOCKED: evaluators on several
-- hosts evaluate each rule once per cycle. Errors for the client use the
-- SQLSTATEs of 03_registry.sql (UF404, UF409, UF412, UF422 naming its field
-- in COLUMN).

-- ===================================================================
-- Durations
-- ===================================================================

-- alert_duration_seconds - "30s", "5m", "1h", "1d" as seconds; UF422 on
-- p_field for anything else. NULL stays NULL.
CREATE OR REPLACE FUNCTION alert_duration_seconds(p_text text, p_field text) RETURNS integer
LANGUAGE plpgsql IMMUTABLE AS $$
BEGIN
    IF p_text IS NULL THEN
        RETURN NULL;
    END IF;
    IF p_text !~ '^[0-9]{1,7}[smhd]$' THEN
        RAISE EXCEPTION USING ERRCODE = 'UF422', COLUMN = p_field,
            MESSAGE = 'must be a duration such as 30s, 5m, 1h or 1d';
    END IF;
    RETURN left(p_text, -1)::integer * CASE right(p_text, 1) WHEN 's' THEN 1 WHEN 'm' THEN 60
                                                              WHEN 'h' THEN 3600 ELSE 86400 END;
END $$;

-- alert_duration_text - seconds as the API writes them: the largest unit
-- that divides them ("90s", "5m", "2h", "1d").
CREATE OR REPLACE FUNCTION alert_duration_text(p_seconds integer) RETURNS text
LANGUAGE sql IMMUTABLE PARALLEL SAFE AS $$
    SELECT CASE WHEN p_seconds IS NULL THEN NULL
                WHEN p_seconds > 0 AND p_seconds % 86400 = 0 THEN (p_seconds / 86400) || 'd'
                WHEN p_seconds > 0 AND p_seconds % 3600 = 0 THEN (p_seconds / 3600) || 'h'
                WHEN p_seconds > 0 AND p_seconds % 60 = 0 THEN (p_seconds / 60) || 'm'
                ELSE p_seconds || 's' END
$$;


-- ===================================================================
-- The API's objects
-- ===================================================================

-- alert_rule_rows - AlertRule objects, ready for row_to_json, with the
-- state of each instance (most urgent first).
DROP VIEW IF EXISTS alert_rule_rows CASCADE;
CREATE VIEW alert_rule_rows AS
SELECT r.id, r.name, r.kind, r.metric, r.op, r.threshold, r.warning_threshold, r.warning_severity,
       r.category, alert_duration_text(r.window_seconds) AS "window",
       alert_duration_text(r.for_seconds) AS "for",
       alert_duration_text(r.keep_firing_for_seconds) AS keep_firing_for,
       r.agent_id, r.model, r.metadata, r.group_by, r.severity, r.min_executions, r.no_data,
       r.labels, r.title, r.enabled, r.receivers, r.version,
       api_time(r.last_evaluated_at) AS last_evaluated_at, r.last_duration_ms, r.last_error,
       coalesce((SELECT json_agg(json_build_object(
                    'key', i.key, 'labels', i.labels, 'state', i.state,
                    'since', api_time(i.since), 'value', i.value, 'severity', i.severity,
                    'fingerprint', i.fingerprint, 'evaluated_at', api_time(i.evaluated_at))
                    ORDER BY CASE i.state WHEN 'firing' THEN 0 WHEN 'recovering' THEN 1
                                          WHEN 'pending' THEN 2 ELSE 3 END, i.key)
                   FROM alert_rule_instances i WHERE i.rule_id = r.id), '[]') AS instances,
       api_time(r.created_at) AS created_at, api_time(r.updated_at) AS updated_at
  FROM alert_rules r;
COMMENT ON VIEW alert_rule_rows IS 'AlertRule objects of the API, with their instances';

-- alert_rule_answer - (id, version, body) of rule p_id.
CREATE OR REPLACE FUNCTION alert_rule_answer(p_id uuid, OUT id uuid, OUT version integer,
                                             OUT body json)
LANGUAGE sql STABLE AS $$
    SELECT r.id, r.version, row_to_json(r) FROM alert_rule_rows r WHERE r.id = p_id
$$;

-- alert_rule_defaults - a new rule before its members are applied.
CREATE OR REPLACE FUNCTION alert_rule_defaults() RETURNS alert_rules
LANGUAGE plpgsql STABLE AS $$
DECLARE
    v alert_rules;
BEGIN
    v.id := gen_random_uuid();
    v.op := '>';
    v.window_seconds := 300;
    v.for_seconds := 0;
    v.keep_firing_for_seconds := 0;
    v.group_by := 'none';
    v.severity := 'high';
    v.min_executions := 0;
    v.no_data := 'ok';
    v.labels := '{}';
    v.enabled := true;
    v.receivers := '{}';
    v.version := 1;
    v.created_at := now();
    v.updated_at := now();
    RETURN v;
END $$;

-- alert_rule_apply - v with the members of p_body applied (the worker has
-- checked each one's type, enumeration and range).
CREATE OR REPLACE FUNCTION alert_rule_apply(v alert_rules, p jsonb) RETURNS alert_rules
LANGUAGE plpgsql AS $$
BEGIN
    IF p ? 'name' THEN v.name := p ->> 'name'; END IF;
    IF p ? 'kind' THEN v.kind := p ->> 'kind'; END IF;
    IF p ? 'metric' THEN v.metric := p ->> 'metric'; END IF;
    IF p ? 'op' THEN v.op := coalesce(p ->> 'op', '>'); END IF;
    IF p ? 'threshold' THEN v.threshold := (p ->> 'threshold')::double precision; END IF;
    IF p ? 'warning_threshold' THEN
        v.warning_threshold := (p ->> 'warning_threshold')::double precision;
    END IF;
    IF p ? 'warning_severity' THEN v.warning_severity := p ->> 'warning_severity'; END IF;
    IF p ? 'category' THEN v.category := p ->> 'category'; END IF;
    IF p ? 'window' THEN
        v.window_seconds := coalesce(alert_duration_seconds(p ->> 'window', 'window'), 300);
    END IF;
    IF p ? 'for' THEN v.for_seconds := coalesce(alert_duration_seconds(p ->> 'for', 'for'), 0); END IF;
    IF p ? 'keep_firing_for' THEN
        v.keep_firing_for_seconds := coalesce(alert_duration_seconds(p ->> 'keep_firing_for',
                                                                     'keep_firing_for'), 0);
    END IF;
    IF p ? 'agent_id' THEN v.agent_id := p ->> 'agent_id'; END IF;
    IF p ? 'model' THEN v.model := p ->> 'model'; END IF;
    IF p ? 'metadata' THEN
        v.metadata := CASE WHEN jsonb_typeof(p -> 'metadata') = 'object'
                            AND p -> 'metadata' <> '{}' THEN p -> 'metadata' END;
    END IF;
    IF p ? 'group_by' THEN v.group_by := coalesce(p ->> 'group_by', 'none'); END IF;
    IF p ? 'severity' THEN v.severity := p ->> 'severity'; END IF;
    IF p ? 'min_executions' THEN v.min_executions := coalesce((p ->> 'min_executions')::integer, 0); END IF;
    IF p ? 'no_data' THEN v.no_data := p ->> 'no_data'; END IF;
    IF p ? 'labels' THEN v.labels := coalesce(p -> 'labels', '{}'); END IF;
    IF p ? 'title' THEN v.title := p ->> 'title'; END IF;
    IF p ? 'enabled' THEN v.enabled := (p ->> 'enabled')::boolean; END IF;
    IF p ? 'receivers' THEN
        v.receivers := ARRAY(SELECT DISTINCT x::uuid
                               FROM jsonb_array_elements_text(coalesce(p -> 'receivers', '[]')) x);
    END IF;
    RETURN v;
END $$;

-- alert_rule_fail - UF422 naming p_field.
CREATE OR REPLACE FUNCTION alert_rule_fail(p_field text, p_message text) RETURNS void
LANGUAGE plpgsql AS $$
BEGIN
    RAISE EXCEPTION USING ERRCODE = 'UF422', COLUMN = p_field, MESSAGE = p_message;
END $$;

-- alert_rule_check - UF422 for what holds between members (checked after
-- a PATCH too): what each kind needs, the warning pair, the scope's agent,
-- the receivers.
CREATE OR REPLACE FUNCTION alert_rule_check(v alert_rules) RETURNS void
LANGUAGE plpgsql AS $$
BEGIN
    IF v.kind = 'threshold' AND v.metric IS NULL THEN
        PERFORM alert_rule_fail('metric', 'is required for a threshold rule');
    END IF;
    IF v.kind <> 'threshold' AND v.metric IS NOT NULL THEN
        PERFORM alert_rule_fail('metric', 'is only for threshold rules');
    END IF;
    IF v.kind IN ('threshold', 'cost_spike', 'error_category') AND v.threshold IS NULL THEN
        PERFORM alert_rule_fail('threshold', format('is required for a %s rule', v.kind));
    END IF;
    IF v.kind = 'cost_spike' AND v.threshold <= 0 THEN
        PERFORM alert_rule_fail('threshold', 'must be above 0 (the factor k)');
    END IF;
    IF v.kind = 'error_category' AND v.threshold < 0 THEN
        PERFORM alert_rule_fail('threshold', 'must be 0 or more (the count n)');
    END IF;
    IF v.kind <> 'error_category' AND v.category IS NOT NULL THEN
        PERFORM alert_rule_fail('category', 'is only for error_category rules');
    END IF;
    IF v.kind <> 'threshold' AND v.op = '<' THEN
        PERFORM alert_rule_fail('op', 'must be > for a ' || v.kind || ' rule');
    END IF;
    IF v.kind = 'agent_silent' AND v.group_by = 'model' THEN
        PERFORM alert_rule_fail('group_by', 'must be none or agent for an agent_silent rule');
    END IF;
    IF v.kind = 'agent_silent' AND v.warning_threshold IS NOT NULL THEN
        PERFORM alert_rule_fail('warning_threshold', 'is not for agent_silent rules');
    END IF;
    IF v.warning_threshold IS NOT NULL AND v.warning_severity IS NULL THEN
        PERFORM alert_rule_fail('warning_severity', 'is required with warning_threshold');
    END IF;
    IF v.warning_severity IS NOT NULL AND v.warning_threshold IS NULL THEN
        PERFORM alert_rule_fail('warning_threshold', 'is required with warning_severity');
    END IF;
    IF v.warning_severity IS NOT NULL
       AND severity_rank(v.warning_severity) <= severity_rank(v.severity) THEN
        PERFORM alert_rule_fail('warning_severity', 'must be lower than severity');
    END IF;
    IF v.warning_threshold IS NOT NULL AND v.threshold IS NOT NULL
       AND (v.op = '>' AND v.warning_threshold >= v.threshold
            OR v.op = '<' AND v.warning_threshold <= v.threshold) THEN
        PERFORM alert_rule_fail('warning_threshold',
                                'must be reached before threshold (' || v.op || ')');
    END IF;
    PERFORM registry_require('agent', v.agent_id, 'agent_id');
    PERFORM alert_receivers_require(v.receivers, 'receivers');
END $$;

-- alert_rule_lock - rule p_id locked, at the version the caller expects
-- (NULL: any). UF404 or UF412.
CREATE OR REPLACE FUNCTION alert_rule_lock(p_id uuid, p_expected integer) RETURNS alert_rules
LANGUAGE plpgsql AS $$
DECLARE
    v alert_rules;
BEGIN
    SELECT * INTO v FROM alert_rules r WHERE r.id = p_id FOR UPDATE;
    IF NOT FOUND THEN
        RAISE EXCEPTION USING ERRCODE = 'UF404', MESSAGE = format('No alert rule %s.', p_id);
    END IF;
    IF p_expected IS NOT NULL AND p_expected <> v.version THEN
        RAISE EXCEPTION USING ERRCODE = 'UF412', MESSAGE = format(
            'The alert rule is at version %s, not %s (If-Match); nothing was changed.',
            v.version, p_expected);
    END IF;
    RETURN v;
END $$;

-- alert_rule_create - POST /alert-rules. UF422 naming the field, 23505
-- (409) for a name taken. Answers (id, version, body).
CREATE OR REPLACE FUNCTION alert_rule_create(p_body jsonb, OUT id uuid, OUT version integer,
                                             OUT body json)
LANGUAGE plpgsql AS $$
DECLARE
    v alert_rules := alert_rule_apply(alert_rule_defaults(), p_body);
BEGIN
    PERFORM alert_rule_check(v);
    INSERT INTO alert_rules SELECT v.*;
    SELECT a.id, a.version, a.body INTO id, version, body FROM alert_rule_answer(v.id) a;
END $$;

-- alert_rule_store - writes v over rule v.id, which was p_old (version +
-- 1): its pending instances start again (the condition changed); a rule
-- disabled clears its open alerts and forgets its instances, and so does a
-- rule whose kind or group_by changed (its instances are other ones now).
DROP FUNCTION IF EXISTS alert_rule_store(alert_rules);
CREATE OR REPLACE FUNCTION alert_rule_store(v alert_rules, p_old alert_rules) RETURNS void
LANGUAGE plpgsql AS $$
BEGIN
    PERFORM alert_rule_check(v);
    UPDATE alert_rules r
       SET name = v.name, kind = v.kind, metric = v.metric, op = v.op, threshold = v.threshold,
           warning_threshold = v.warning_threshold, warning_severity = v.warning_severity,
           category = v.category, window_seconds = v.window_seconds, for_seconds = v.for_seconds,
           keep_firing_for_seconds = v.keep_firing_for_seconds, agent_id = v.agent_id,
           model = v.model, metadata = v.metadata, group_by = v.group_by, severity = v.severity,
           min_executions = v.min_executions, no_data = v.no_data, labels = v.labels,
           title = v.title, enabled = v.enabled, receivers = v.receivers,
           version = r.version + 1, updated_at = now()
     WHERE r.id = v.id;
    IF v.enabled AND v.kind = p_old.kind AND v.group_by = p_old.group_by THEN
        UPDATE alert_rule_instances i SET state = 'normal', since = now()
         WHERE i.rule_id = v.id AND i.state = 'pending';
    ELSE
        PERFORM alerts_clear(ARRAY(SELECT a.fingerprint FROM alerts a
                                    WHERE a.rule_id = v.id AND a.status <> 'resolved'),
                             now(), 'api', CASE WHEN v.enabled THEN 'the rule changed'
                                                ELSE 'the rule was disabled' END);
        DELETE FROM alert_rule_instances i WHERE i.rule_id = v.id;
    END IF;
END $$;

-- alert_rule_replace - PUT /alert-rules/{id}: every member as sent, the
-- others their defaults. UF404, UF412, UF422, 23505.
CREATE OR REPLACE FUNCTION alert_rule_replace(p_id uuid, p_expected integer, p_body jsonb,
                                              OUT id uuid, OUT version integer, OUT body json)
LANGUAGE plpgsql AS $$
DECLARE
    v_old alert_rules := alert_rule_lock(p_id, p_expected);
    v alert_rules := alert_rule_apply(alert_rule_defaults(), p_body);
BEGIN
    v.id := v_old.id;
    PERFORM alert_rule_store(v, v_old);
    SELECT a.id, a.version, a.body INTO id, version, body FROM alert_rule_answer(p_id) a;
END $$;

-- alert_rule_patch - PATCH /alert-rules/{id}: the members sent.
CREATE OR REPLACE FUNCTION alert_rule_patch(p_id uuid, p_expected integer, p_body jsonb,
                                            OUT id uuid, OUT version integer, OUT body json)
LANGUAGE plpgsql AS $$
DECLARE
    v_old alert_rules := alert_rule_lock(p_id, p_expected);
    v alert_rules := alert_rule_apply(v_old, p_body);
BEGIN
    PERFORM alert_rule_store(v, v_old);
    SELECT a.id, a.version, a.body INTO id, version, body FROM alert_rule_answer(p_id) a;
END $$;

-- alert_rule_delete - DELETE /alert-rules/{id}: its open alerts are
-- resolved (they stay, rule_id NULL), its instances go with it.
CREATE OR REPLACE FUNCTION alert_rule_delete(p_id uuid, p_expected integer) RETURNS void
LANGUAGE plpgsql AS $$
BEGIN
    PERFORM alert_rule_lock(p_id, p_expected);
    PERFORM alerts_clear(ARRAY(SELECT a.fingerprint FROM alerts a
                                WHERE a.rule_id = p_id AND a.status <> 'resolved'),
                         now(), 'api', 'the rule was deleted');
    DELETE FROM alert_rules r WHERE r.id = p_id;
END $$;


-- ===================================================================
-- The evaluator
-- ===================================================================

-- alert_rule_title - the title template with {{name}} (or {{ name }})
-- replaced by each member of p_vars; at most 500 characters.
CREATE OR REPLACE FUNCTION alert_rule_title(p_template text, p_vars jsonb) RETURNS text
LANGUAGE plpgsql IMMUTABLE AS $$
DECLARE
    v text := p_template;
    k text;
    x text;
BEGIN
    IF position('{{' IN v) > 0 THEN
        FOR k, x IN SELECT * FROM jsonb_each_text(p_vars) LOOP
            v := replace(replace(v, '{{' || k || '}}', coalesce(x, '')),
                         '{{ ' || k || ' }}', coalesce(x, ''));
        END LOOP;
    END IF;
    RETURN left(coalesce(nullif(v, ''), 'alert'), 500);
END $$;

-- alert_rules_set / alert_rule_steps_set - the elements of an array of
-- rules or steps as rows, with a row estimate: unnest() of a parameter is
-- estimated at 10 rows, and the joins of a cycle over a thousand rules then
-- become nested loops. (The SET keeps them from being inlined, which would
-- drop the estimate.)
CREATE OR REPLACE FUNCTION alert_rules_set(p_rules alert_rules[]) RETURNS SETOF alert_rules
LANGUAGE sql STABLE ROWS 1000 SET max_parallel_workers_per_gather = 0 AS $$
    SELECT * FROM unnest(p_rules)
$$;

CREATE OR REPLACE FUNCTION alert_rule_steps_set(p_steps alert_rule_step_t[])
RETURNS SETOF alert_rule_step_t
LANGUAGE sql STABLE ROWS 20000 SET max_parallel_workers_per_gather = 0 AS $$
    SELECT * FROM unnest(p_steps)
$$;

-- alert_error_rows(from, to) - failed executions of [from, to) per agent,
-- model and category: whole days and hours from the error rollups and
-- their pending deltas, the partial hours at the edges from raw rows (the
-- partial index of errors).
CREATE OR REPLACE FUNCTION alert_error_rows(p_from timestamptz, p_to timestamptz)
RETURNS TABLE (agent_id uuid, model text, category text, n bigint)
LANGUAGE plpgsql STABLE AS $$
DECLARE
    h1 timestamptz := rollup_ceil(p_from, '1 hour');
    h2 timestamptz := rollup_floor(p_to, '1 hour');
    d1 timestamptz;
    d2 timestamptz;
BEGIN
    IF h1 > h2 THEN                                  -- inside one hour: raw
        h1 := p_to;  h2 := p_to;
    END IF;
    d1 := least(rollup_ceil(h1, '1 day'), h2);
    d2 := greatest(d1, rollup_floor(h2, '1 day'));
    RETURN QUERY
    SELECT x.agent_id, x.model, x.category, sum(x.n)::bigint
      FROM (SELECT r.agent_id, r.model, r.category, r.n FROM rollup_errors_1d r
             WHERE NOT r.fleet AND r.bucket >= d1 AND r.bucket < d2
            UNION ALL
            SELECT r.agent_id, r.model, r.category, r.n FROM rollup_errors_1h r
             WHERE NOT r.fleet
               AND (r.bucket >= h1 AND r.bucket < d1 OR r.bucket >= d2 AND r.bucket < h2)
            UNION ALL
            SELECT r.agent_id, r.model, r.category, r.n FROM rollup_errors_delta r
             WHERE r.bucket >= h1 AND r.bucket < h2
            UNION ALL
            SELECT e.agent_id, e.model, e.error_category, 1 FROM executions e
             WHERE e.error_category IS NOT NULL
               AND (e.started_at >= p_from AND e.started_at < h1
                    OR e.started_at >= h2 AND e.started_at < p_to)) x
     GROUP BY 1, 2, 3;
END $$;
ALTER FUNCTION alert_error_rows SET max_parallel_workers_per_gather = 0;

-- alert_rules_values - what each rule of p_rules sees at p_at, one row per
-- instance that has data: its key ('' without group_by, the agent id, the
-- model), agent and model, executions in the window (n), the value of the
-- rule's condition, and whether it breaches the threshold (main) or only
-- the warning threshold (warn). The rollups are read once per distinct
-- window (and cost_spike baseline), per agent and model; the sums are made
-- once per view (window, scope, group_by: what rules of any metric share)
-- and handed to every rule of that view. Rules with a metadata filter read
-- raw rows, each its own.
CREATE OR REPLACE FUNCTION alert_rules_values(p_rules alert_rules[], p_at timestamptz)
RETURNS TABLE (rule_id uuid, key text, agent_id uuid, model text, n bigint,
               value double precision, main boolean, warn boolean)
LANGUAGE sql STABLE AS $$
    WITH r AS MATERIALIZED (
        SELECT x.*, p_at - make_interval(secs => x.window_seconds) AS t_from,
               CASE WHEN x.metadata IS NULL THEN jsonb_build_array(
                   x.window_seconds, x.agent_id, x.model,
                   CASE WHEN x.kind = 'agent_silent' THEN 'agent' ELSE x.group_by END,
                   x.kind = 'cost_spike', x.metric = 'p95_latency') END AS view
          FROM alert_rules_set(p_rules) x
    ),
    -- views: what rules share; digests only for p95 rules
    views AS MATERIALIZED (
        SELECT DISTINCT r.view, r.window_seconds, r.t_from, r.agent_id, r.model,
               r.view ->> 3 AS group_by, r.kind = 'cost_spike' AS with_base,
               r.metric = 'p95_latency' AS with_digest
          FROM r WHERE r.view IS NOT NULL
    ),
    -- spans: [t_from, t_to) read once each; the window, or the 7 days
    -- before it (cost_spike)
    spans AS MATERIALIZED (
        SELECT v.t_from, p_at AS t_to, bool_or(v.with_digest) AS digests
          FROM views v GROUP BY 1, 2
        UNION ALL
        SELECT DISTINCT v.t_from - interval '7 days', v.t_from, false
          FROM views v WHERE v.with_base
    ),
    shared AS MATERIALIZED (
        SELECT s.t_from, s.t_to, x.agent_id, x.model, sum(x.n) AS n,
               sum(x.successes) AS successes, sum(x.errors) AS errors,
               sum(x.evaluated) AS evaluated, sum(x.passed) AS passed, sum(x.lat_sum) AS lat_sum,
               sum(x.lat_n) AS lat_n, sum(x.cost) AS cost, tdigest(x.digest) AS digest
          FROM spans s,
               LATERAL rollup_rows(s.t_from, s.t_to, '7 days', 3, NULL, NULL, NULL, '1 day',
                                   s.digests) x
         GROUP BY 1, 2, 3, 4
    ),
    -- each view's pieces (base: the cost_spike baseline), and each
    -- metadata rule's
    pieces AS (
        SELECT v.view, NULL::uuid AS rule_id, v.group_by, false AS base, sh.agent_id,
               sh.model, sh.n, sh.successes, sh.errors, sh.evaluated, sh.passed, sh.lat_sum,
               sh.lat_n, sh.cost, CASE WHEN v.with_digest THEN sh.digest END AS digest
          FROM views v JOIN shared sh ON sh.t_to = p_at AND sh.t_from = v.t_from
         WHERE (v.agent_id IS NULL OR sh.agent_id = v.agent_id)
           AND (v.model IS NULL OR sh.model = v.model)
        UNION ALL
        SELECT v.view, NULL, v.group_by, true, sh.agent_id, sh.model, sh.n, sh.successes,
               sh.errors, sh.evaluated, sh.passed, sh.lat_sum, sh.lat_n, sh.cost, NULL
          FROM views v JOIN shared sh
            ON sh.t_to = v.t_from AND sh.t_from = v.t_from - interval '7 days'
         WHERE v.with_base
           AND (v.agent_id IS NULL OR sh.agent_id = v.agent_id)
           AND (v.model IS NULL OR sh.model = v.model)
        UNION ALL
        SELECT NULL, r.id,
               CASE WHEN r.kind = 'agent_silent' THEN 'agent' ELSE r.group_by END,
               sp.base, x.agent_id, x.model, x.n, x.successes, x.errors, x.evaluated,
               x.passed, x.lat_sum, x.lat_n, x.cost, x.digest
          FROM r,
               LATERAL (SELECT false AS base, r.t_from AS f, p_at AS t
                        UNION ALL
                        SELECT true, r.t_from - interval '7 days', r.t_from
                         WHERE r.kind = 'cost_spike') sp,
               LATERAL rollup_rows(sp.f, sp.t, '7 days', 3,
                                   CASE WHEN r.agent_id IS NOT NULL THEN ARRAY[r.agent_id] END,
                                   CASE WHEN r.model IS NOT NULL THEN ARRAY[r.model] END,
                                   r.metadata, '1 day', r.metric = 'p95_latency') x
         WHERE r.view IS NULL
    ),
    -- the sums of each view (or metadata rule) per instance key
    sums AS MATERIALIZED (
        SELECT p.view, p.rule_id,
               CASE p.group_by WHEN 'agent' THEN p.agent_id::text
                               WHEN 'model' THEN coalesce(p.model, '') ELSE '' END AS key,
               CASE p.group_by WHEN 'agent' THEN p.agent_id END AS agent_id,
               CASE p.group_by WHEN 'model' THEN min(p.model) END AS model,
               coalesce(sum(p.n) FILTER (WHERE NOT p.base), 0)::bigint AS n,
               sum(p.successes) FILTER (WHERE NOT p.base)::bigint AS successes,
               sum(p.errors) FILTER (WHERE NOT p.base)::bigint AS errors,
               sum(p.evaluated) FILTER (WHERE NOT p.base)::bigint AS evaluated,
               sum(p.passed) FILTER (WHERE NOT p.base)::bigint AS passed,
               (sum(p.lat_sum) FILTER (WHERE NOT p.base))::double precision
                   / nullif(sum(p.lat_n) FILTER (WHERE NOT p.base), 0) AS lat_avg,
               tdigest_percentile(p.digest, 0.95) FILTER (WHERE NOT p.base
                                                           AND p.digest IS NOT NULL) AS p95,
               coalesce(sum(p.cost) FILTER (WHERE NOT p.base), 0) AS cost,
               sum(p.cost) FILTER (WHERE p.base) AS base_cost
          FROM pieces p
         GROUP BY p.view, p.rule_id, 3, 4, p.group_by
    ),
    -- every rule's sums
    rsums AS (
        SELECT r.id AS rule_id, s.key, coalesce(s.agent_id, r.agent_id) AS agent_id,
               coalesce(s.model, r.model) AS model, s.n, s.successes, s.errors, s.evaluated,
               s.passed, s.lat_avg, s.p95, s.cost, s.base_cost
          FROM r JOIN sums s ON s.view = r.view
         WHERE r.view IS NOT NULL AND r.kind <> 'agent_silent'
        UNION ALL
        SELECT r.id, s.key, coalesce(s.agent_id, r.agent_id), coalesce(s.model, r.model), s.n,
               s.successes, s.errors, s.evaluated, s.passed, s.lat_avg, s.p95, s.cost,
               s.base_cost
          FROM r JOIN sums s ON s.rule_id = r.id
         WHERE r.view IS NULL AND r.kind <> 'agent_silent'
    ),
    -- error_category: failed executions of the category in the window
    -- (rollups of errors and raw edges, once per window), and problems
    -- first seen in it
    ewindows AS MATERIALIZED (
        SELECT DISTINCT r.window_seconds, r.t_from FROM r
         WHERE r.kind = 'error_category' AND r.metadata IS NULL
    ),
    ecounts AS MATERIALIZED (
        SELECT w.window_seconds, x.*
          FROM ewindows w, LATERAL alert_error_rows(w.t_from, p_at) x
    ),
    errs AS (
        SELECT r.id AS rule_id,
               CASE r.group_by WHEN 'agent' THEN x.agent_id::text
                               WHEN 'model' THEN coalesce(x.model, '') ELSE '' END AS key,
               sum(x.n) AS errors
          FROM r JOIN ecounts x
            ON x.window_seconds = r.window_seconds
           AND (r.category IS NULL OR x.category = r.category)
           AND (r.agent_id IS NULL OR x.agent_id = r.agent_id)
           AND (r.model IS NULL OR x.model = r.model)
         WHERE r.kind = 'error_category' AND r.metadata IS NULL
         GROUP BY 1, 2
        UNION ALL
        SELECT r.id,
               CASE r.group_by WHEN 'agent' THEN x.agent_id::text
                               WHEN 'model' THEN coalesce(x.model, '') ELSE '' END,
               count(*)
          FROM r JOIN executions x
            ON x.error_category IS NOT NULL
           AND x.started_at >= r.t_from AND x.started_at < p_at
           AND (r.category IS NULL OR x.error_category = r.category)
           AND (r.agent_id IS NULL OR x.agent_id = r.agent_id)
           AND (r.model IS NULL OR x.model = r.model)
           AND NOT EXISTS (SELECT 1 FROM jsonb_each_text(r.metadata) m
                            WHERE x.metadata ->> m.key IS DISTINCT FROM m.value)
         WHERE r.kind = 'error_category' AND r.metadata IS NOT NULL
         GROUP BY 1, 2
        UNION ALL
        SELECT r.id, CASE r.group_by WHEN 'agent' THEN pr.agent_id::text ELSE '' END, count(*)
          FROM r JOIN problems pr
            ON pr.first_seen_at >= r.t_from AND pr.first_seen_at < p_at
           AND (r.category IS NULL OR pr.category = r.category)
           AND (r.agent_id IS NULL OR pr.agent_id = r.agent_id)
         WHERE r.kind = 'error_category' AND r.model IS NULL AND r.metadata IS NULL
           AND r.group_by <> 'model' AND (r.group_by = 'none' OR pr.agent_id IS NOT NULL)
         GROUP BY 1, 2
    ),
    values_ AS (
        SELECT s.rule_id, s.key, s.agent_id, s.model, s.n,
               CASE r.kind
                   WHEN 'threshold' THEN agg_metric_value(r.metric, s.n, s.successes, s.errors,
                                                          s.lat_avg, s.p95, s.cost, s.evaluated,
                                                          s.passed)
                   WHEN 'cost_spike' THEN
                       s.cost::double precision
                       / nullif(s.base_cost::double precision * r.window_seconds / 604800, 0)
               END AS value
          FROM rsums s JOIN r ON r.id = s.rule_id
         WHERE r.kind IN ('threshold', 'cost_spike')
        UNION ALL
        SELECT coalesce(s.rule_id, e.rule_id), coalesce(s.key, e.key),
               coalesce(s.agent_id, CASE WHEN r.group_by = 'agent' THEN e.key::uuid
                                         ELSE r.agent_id END),
               coalesce(s.model, CASE WHEN r.group_by = 'model' THEN nullif(e.key, '')
                                      ELSE r.model END),
               coalesce(s.n, 0), coalesce(e.errors, 0)::double precision
          FROM (SELECT * FROM rsums
                 WHERE rsums.rule_id IN (SELECT r.id FROM r WHERE r.kind = 'error_category')) s
          FULL JOIN (SELECT errs.rule_id, errs.key, sum(errs.errors) AS errors
                       FROM errs GROUP BY 1, 2) e
            ON e.rule_id = s.rule_id AND e.key = s.key
          JOIN r ON r.id = coalesce(s.rule_id, e.rule_id)
    ),
    -- agent_silent: per agent (or the scope as a whole) no execution in
    -- the window and no heartbeat (nor registration) since its start;
    -- value: seconds since the last heartbeat. Its view is per agent.
    silent AS (
        SELECT r.id AS rule_id, CASE r.group_by WHEN 'agent' THEN g.id::text ELSE '' END AS key,
               CASE r.group_by WHEN 'agent' THEN g.id ELSE r.agent_id END AS agent_id,
               r.model,
               coalesce(sum(s.n), 0)::bigint AS n,
               extract(epoch FROM p_at - max(g.last_heartbeat_at))::double precision AS value,
               coalesce(sum(s.n), 0) = 0
               AND max(greatest(g.last_heartbeat_at, g.created_at)) < r.t_from AS main
          FROM r
          JOIN agents g ON g.is_active AND (r.agent_id IS NULL OR g.id = r.agent_id)
          LEFT JOIN sums s
            ON (s.view = r.view OR s.rule_id = r.id) AND s.key = g.id::text
         WHERE r.kind = 'agent_silent'
         GROUP BY r.id, 2, 3, r.model, r.t_from, r.group_by
    )
    SELECT v.rule_id, v.key, v.agent_id, v.model, v.n, v.value,
           CASE WHEN r.kind = 'threshold' AND r.op = '<' THEN v.value < r.threshold
                ELSE v.value > r.threshold END,
           CASE WHEN r.warning_threshold IS NULL THEN false
                WHEN r.kind = 'threshold' AND r.op = '<' THEN v.value < r.warning_threshold
                ELSE v.value > r.warning_threshold END
      FROM values_ v JOIN r ON r.id = v.rule_id
    UNION ALL
    SELECT s.rule_id, s.key, s.agent_id, s.model, s.n, s.value, s.main, false
      FROM silent s
$$;
-- Pieces are few and small: a parallel plan only adds start-up time; and
-- the statement is big enough for its estimates to cross jit_above_cost,
-- where compiling it costs seconds for a query of milliseconds.
ALTER FUNCTION alert_rules_values SET max_parallel_workers_per_gather = 0;
ALTER FUNCTION alert_rules_values SET jit = off;
-- The pieces of a cycle are sorted and grouped: in memory.
ALTER FUNCTION alert_rules_values SET work_mem = '64MB';

-- alert_rules_steps - the next state of every instance of p_rules at p_at
-- (those with data, those known, and the one instance of a rule without
-- group_by), as alert_rule_step_t: fire = it fires now (entering: it did
-- not at the last evaluation), clear = resolve its alert now.
--   normal:     holds -> pending (firing at once when for is 0)
--   pending:    holds for `for` -> firing; stops holding -> normal
--   firing:     stops holding -> recovering (normal at once when
--               keep_firing_for is 0)
--   recovering: holds again -> firing; held false for keep_firing_for ->
--               normal
-- A window below min_executions does not hold. No data: ok does not hold,
-- alert holds, keep leaves the state as it is.
CREATE OR REPLACE FUNCTION alert_rules_steps(p_rules alert_rules[], p_at timestamptz)
RETURNS SETOF alert_rule_step_t
LANGUAGE sql STABLE AS $$
    WITH r AS MATERIALIZED (SELECT * FROM alert_rules_set(p_rules)),
    v AS MATERIALIZED (SELECT * FROM alert_rules_values(p_rules, p_at)),
    keys AS (
        SELECT v.rule_id, v.key FROM v
        UNION
        SELECT i.rule_id, i.key FROM alert_rule_instances i
         WHERE i.rule_id IN (SELECT r.id FROM r)
        UNION
        SELECT r.id, '' FROM r WHERE r.group_by = 'none'
    ),
    c AS (
        SELECT k.rule_id, k.key, r.for_seconds, r.keep_firing_for_seconds, r.no_data,
               coalesce(i.state, 'normal') AS state, coalesce(i.since, p_at) AS since,
               i.fingerprint AS known_fingerprint, i.labels AS known_labels,
               coalesce(v.agent_id, i.agent_id) AS agent_id,
               CASE WHEN r.group_by = 'model' THEN k.key END AS model,
               v.value,
               -- whether the condition holds: NULL = keep the state
               CASE WHEN v.rule_id IS NULL
                         OR r.kind <> 'agent_silent' AND (v.value IS NULL
                             OR v.n = 0 AND NOT (r.kind = 'error_category' AND v.value > 0))
                    THEN CASE r.no_data WHEN 'alert' THEN true WHEN 'keep' THEN NULL ELSE false END
                    WHEN r.kind <> 'agent_silent' AND v.n < r.min_executions THEN false
                    ELSE coalesce(v.main OR v.warn, false) END AS holds,
               CASE WHEN v.rule_id IS NULL OR v.main OR NOT coalesce(v.warn, false)
                    THEN r.severity ELSE r.warning_severity END AS severity
          FROM keys k
          JOIN r ON r.id = k.rule_id
          LEFT JOIN v ON v.rule_id = k.rule_id AND v.key = k.key
          LEFT JOIN alert_rule_instances i ON i.rule_id = k.rule_id AND i.key = k.key
    ),
    n AS (
        SELECT c.*,
               CASE WHEN c.holds IS NULL THEN c.state
                    WHEN c.holds THEN
                        CASE WHEN c.state IN ('firing', 'recovering') THEN 'firing'
                             WHEN c.state = 'pending'
                                  AND p_at - c.since >= make_interval(secs => c.for_seconds)
                                 THEN 'firing'
                             WHEN c.state = 'normal' AND c.for_seconds = 0 THEN 'firing'
                             ELSE 'pending' END
                    ELSE
                        CASE WHEN c.state IN ('normal', 'pending') THEN 'normal'
                             WHEN c.state = 'firing' AND c.keep_firing_for_seconds = 0 THEN 'normal'
                             WHEN c.state = 'firing' THEN 'recovering'
                             WHEN p_at - c.since >= make_interval(secs => c.keep_firing_for_seconds)
                                 THEN 'normal'
                             ELSE 'recovering' END
               END AS next
          FROM c
    )
    SELECT n.rule_id, n.key, coalesce(n.known_labels, l.labels), n.agent_id, n.next,
           CASE WHEN n.next = n.state THEN n.since ELSE p_at END,
           n.value, CASE WHEN n.next IN ('firing', 'recovering') OR n.holds THEN n.severity END,
           coalesce(n.known_fingerprint, alert_fingerprint(n.rule_id::text, l.labels)),
           n.next = 'firing' AND n.holds IS NOT NULL,
           n.next = 'firing' AND n.state <> 'firing',
           n.next = 'normal' AND n.state IN ('firing', 'recovering')
      FROM n,
           LATERAL (SELECT CASE WHEN n.key = '' THEN '{}'::jsonb
                                WHEN n.agent_id IS NOT NULL AND n.model IS NULL
                                    THEN jsonb_build_object('agent_id', n.agent_id)
                                ELSE jsonb_build_object('model', n.key) END AS labels) l
$$;

-- alert_rules_apply_steps - writes the steps of p_rules at p_at: the
-- instances (grouped ones back at normal without data are forgotten),
-- the alerts raised (with the rule's receivers and labels, alertname the
-- rule's name) and cleared. An instance raises its alert when it starts
-- firing (one more occurrence of an open alert, after recovering), when
-- its severity changes, or when it has no open alert (resolved by hand);
-- while it keeps firing, its open alert's last_seen_at and value are
-- brought up to date once a minute, so that a steady fleet of firing
-- instances writes little. Returns (instances, fired: alerts raised,
-- cleared).
CREATE OR REPLACE FUNCTION alert_rules_apply_steps(p_rules alert_rules[], p_at timestamptz,
                                                   OUT instances integer, OUT fired integer,
                                                   OUT cleared integer)
LANGUAGE plpgsql AS $$
DECLARE
    v_steps alert_rule_step_t[];
BEGIN
    v_steps := ARRAY(SELECT s FROM alert_rules_steps(p_rules, p_at) s);
    instances := cardinality(v_steps);
    DELETE FROM alert_rule_instances i
     USING alert_rule_steps_set(v_steps) s
     WHERE i.rule_id = s.rule_id AND i.key = s.key AND s.state = 'normal' AND s.value IS NULL
       AND s.key <> '';
    INSERT INTO alert_rule_instances AS i (rule_id, key, labels, agent_id, state, since, value,
                                           severity, fingerprint, evaluated_at)
    SELECT s.rule_id, s.key, s.labels, s.agent_id, s.state, s.since, s.value, s.severity,
           s.fingerprint, p_at
      FROM alert_rule_steps_set(v_steps) s
     WHERE NOT (s.state = 'normal' AND s.value IS NULL AND s.key <> '')
    ON CONFLICT (rule_id, key) DO UPDATE
       SET state = EXCLUDED.state, since = EXCLUDED.since, value = EXCLUDED.value,
           severity = EXCLUDED.severity, agent_id = EXCLUDED.agent_id,
           evaluated_at = EXCLUDED.evaluated_at
     WHERE (i.state, i.since, i.value, i.severity, i.agent_id)
           IS DISTINCT FROM (EXCLUDED.state, EXCLUDED.since, EXCLUDED.value, EXCLUDED.severity,
                             EXCLUDED.agent_id);
    SELECT count(*) INTO fired FROM alerts_raise(ARRAY(
        SELECT ROW(s.fingerprint, r.id, NULL, s.severity, x.title,
                   x.message, s.agent_id, NULL, x.labels,
                   jsonb_build_object('summary', x.title, 'description', x.message), s.value,
                   r.receivers)::alert_signal_t
          FROM alert_rule_steps_set(v_steps) s
          JOIN alert_rules_set(p_rules) r ON r.id = s.rule_id
          LEFT JOIN agents g ON g.id = s.agent_id
          CROSS JOIN LATERAL (
              SELECT r.labels || jsonb_build_object('alertname', r.name) || s.labels
                     || CASE WHEN g.name IS NOT NULL AND s.labels ? 'agent_id'
                             THEN jsonb_build_object('agent_name', g.name) ELSE '{}' END
                     AS labels,
                     CASE r.kind
                         WHEN 'threshold' THEN format('%s is %s (%s %s) over %s', r.metric,
                                                      coalesce(round(s.value::numeric, 2)::text, 'no data'),
                                                      r.op, r.threshold,
                                                      alert_duration_text(r.window_seconds))
                         WHEN 'cost_spike' THEN format('cost over %s is %s times its 7-day average (> %s)',
                                                       alert_duration_text(r.window_seconds),
                                                       coalesce(round(s.value::numeric, 2)::text, 'no data'),
                                                       r.threshold)
                         WHEN 'error_category' THEN format('%s %s errors over %s (> %s)',
                                                           coalesce(s.value, 0),
                                                           coalesce(r.category, 'any'),
                                                           alert_duration_text(r.window_seconds),
                                                           r.threshold)
                         ELSE format('no heartbeat and no execution for %s',
                                     alert_duration_text(r.window_seconds))
                     END AS message) x0
          CROSS JOIN LATERAL (
              SELECT x0.labels, x0.message,
                     CASE WHEN r.title IS NULL
                          THEN left(r.name || coalesce(' on ' || g.name, '')
                                    || coalesce(' for model ' || (s.labels ->> 'model'), ''), 500)
                          ELSE alert_rule_title(r.title, x0.labels || jsonb_build_object(
                                   'value', round(s.value::numeric, 2), 'threshold', r.threshold,
                                   'window', alert_duration_text(r.window_seconds)))
                     END AS title) x
         WHERE s.fire
           AND (s.entering
                OR NOT EXISTS (SELECT 1 FROM alerts a
                                WHERE a.fingerprint = s.fingerprint AND a.status <> 'resolved'
                                  AND a.severity = s.severity))), p_at, 'evaluator');
    UPDATE alerts a SET last_seen_at = p_at, value = s.value
      FROM alert_rule_steps_set(v_steps) s
     WHERE s.fire AND NOT s.entering AND a.fingerprint = s.fingerprint
       AND a.status <> 'resolved' AND a.last_seen_at < p_at - interval '1 minute';
    SELECT count(*) INTO cleared
      FROM alerts_clear(ARRAY(SELECT s.fingerprint FROM unnest(v_steps) s WHERE s.clear), p_at,
                        'evaluator', 'the condition no longer holds');
END $$;

-- alert_rules_evaluate - one evaluator cycle at p_at: every enabled rule
-- not evaluated since the cycle of p_at began (cycles of p_interval from
-- the epoch) is taken FOR UPDATE SKIP LOCKED, evaluated set-based, and
-- stamped with last_evaluated_at, last_duration_ms (the cycle's) and
-- last_error. Should the set fail, each rule is evaluated alone, so that
-- one failing rule names its error and the others go on. Returns what it
-- did: rules evaluated, instances, alerts fired (raised or refreshed),
-- cleared, rules that failed.
CREATE OR REPLACE FUNCTION alert_rules_evaluate(p_at timestamptz DEFAULT now(),
                                                p_interval interval DEFAULT '15 seconds',
                                                OUT rules integer, OUT instances integer,
                                                OUT fired integer, OUT cleared integer,
                                                OUT failed integer)
LANGUAGE plpgsql AS $$
DECLARE
    v_start timestamptz := clock_timestamp();
    v_cycle timestamptz := date_bin(p_interval, p_at, timestamptz 'epoch');
    v_rules alert_rules[];
    v_rule alert_rules;
    v_ms double precision;
    v_i integer;
    v_f integer;
    v_c integer;
    v_errors jsonb := '{}';
BEGIN
    v_rules := ARRAY(SELECT r FROM alert_rules r
                      WHERE r.enabled AND (r.last_evaluated_at IS NULL
                                           OR r.last_evaluated_at < v_cycle)
                      ORDER BY r.id
                      FOR UPDATE SKIP LOCKED);
    rules := cardinality(v_rules);
    instances := 0; fired := 0; cleared := 0; failed := 0;
    IF rules = 0 THEN
        RETURN;
    END IF;
    BEGIN
        SELECT * INTO instances, fired, cleared FROM alert_rules_apply_steps(v_rules, p_at);
    EXCEPTION WHEN OTHERS THEN
        FOREACH v_rule IN ARRAY v_rules LOOP
            BEGIN
                SELECT * INTO v_i, v_f, v_c FROM alert_rules_apply_steps(ARRAY[v_rule], p_at);
                instances := instances + v_i;
                fired := fired + v_f;
                cleared := cleared + v_c;
            EXCEPTION WHEN OTHERS THEN
                failed := failed + 1;
                v_errors := v_errors || jsonb_build_object(v_rule.id::text, SQLERRM);
            END;
        END LOOP;
    END;
    v_ms := extract(epoch FROM clock_timestamp() - v_start) * 1000;
    UPDATE alert_rules r
       SET last_evaluated_at = p_at, last_duration_ms = v_ms,
           last_error = v_errors ->> r.id::text
      FROM unnest(v_rules) x
     WHERE r.id = x.id;
END $$;
-- JIT: see alert_rules_values.
ALTER FUNCTION alert_rules_evaluate SET jit = off;
ALTER FUNCTION alert_rules_steps SET jit = off;
COMMENT ON FUNCTION alert_rules_evaluate(timestamptz, interval) IS
    'One evaluator cycle: every enabled rule due, set-based, once across evaluators';
