-- functions/20_alerts.sql - alerts raised, cleared, acknowledged and resolved; silences matched
--
-- Every change of an alert's status is written to alert_transitions by the
-- statement triggers below, whoever made it (the evaluator, a budget, a
-- person): the actor and note come from the transaction's settings
-- fleetdash.actor and fleetdash.note (alert_actor()), which the functions
-- here set. Errors for the client use the SQLSTATEs of 03_registry.sql
-- (UF404, UF409, UF422 naming its field in COLUMN).

-- ===================================================================
-- Helpers
-- ===================================================================

-- alert_fingerprint - what an alert is about, as 16 hex digits (64 bits of
-- SHA-256, as Alertmanager's fingerprints): p_key names the source (a
-- rule's or budget's id, 'manual:' and a title), p_labels the instance.
-- jsonb prints its keys in one order, so equal labels give equal text.
CREATE OR REPLACE FUNCTION alert_fingerprint(p_key text, p_labels jsonb) RETURNS text
LANGUAGE sql IMMUTABLE PARALLEL SAFE AS $$
    SELECT left(encode(sha256(convert_to(p_key || E'\n' || coalesce(p_labels, '{}')::text,
                                         'UTF8')), 'hex'), 16)
$$;

-- alert_actor - sets who makes the changes of this transaction and why,
-- for the transitions the triggers record. Returns p_actor.
CREATE OR REPLACE FUNCTION alert_actor(p_actor text, p_note text) RETURNS text
LANGUAGE sql VOLATILE AS $$
    SELECT set_config('fleetdash.actor', coalesce(p_actor, 'fleetdash'), true)
           || left(set_config('fleetdash.note', coalesce(p_note, ''), true), 0)
$$;

-- alert_match_set - what silence matchers see of an alert: its labels,
-- its severity, and its rule_id and agent_id when it has them.
CREATE OR REPLACE FUNCTION alert_match_set(a alerts) RETURNS jsonb
LANGUAGE sql STABLE PARALLEL SAFE AS $$
    SELECT a.labels || jsonb_strip_nulls(jsonb_build_object(
               'severity', a.severity, 'rule_id', a.rule_id, 'agent_id', a.agent_id))
$$;

-- silence_state - pending, active or expired at p_at.
CREATE OR REPLACE FUNCTION silence_state(s silences, p_at timestamptz) RETURNS text
LANGUAGE sql STABLE PARALLEL SAFE AS $$
    SELECT CASE WHEN s.expired_at IS NOT NULL AND s.expired_at <= p_at THEN 'expired'
                WHEN s.ends_at IS NOT NULL AND s.ends_at <= p_at THEN 'expired'
                WHEN s.starts_at > p_at THEN 'pending'
                ELSE 'active' END
$$;

-- silence_matches - true when every matcher of s holds for a (and a is
-- s's alert, when s names one). A missing name is the empty string, as in
-- Alertmanager: {name, value: "", op: "="} matches alerts without it.
CREATE OR REPLACE FUNCTION silence_matches(s silences, a alerts) RETURNS boolean
LANGUAGE sql STABLE PARALLEL SAFE AS $$
    SELECT (s.alert_id IS NULL OR s.alert_id = a.id)
       AND NOT EXISTS (
           SELECT 1
             FROM jsonb_array_elements(s.matchers) m,
                  LATERAL (SELECT coalesce(alert_match_set(a) ->> (m ->> 'name'), '') AS v) x
            WHERE CASE m ->> 'op' WHEN '!=' THEN x.v = m ->> 'value'
                                  ELSE x.v <> m ->> 'value' END)
$$;

-- alert_silenced_by - the id of an active silence that mutes a at p_at
-- (the one that ends last), or NULL. A resolved alert is never silenced.
CREATE OR REPLACE FUNCTION alert_silenced_by(a alerts, p_at timestamptz) RETURNS uuid
LANGUAGE sql STABLE PARALLEL SAFE AS $$
    SELECT s.id
      FROM silences s
     WHERE a.status <> 'resolved'
       AND s.expired_at IS NULL AND s.starts_at <= p_at
       AND (s.ends_at IS NULL OR s.ends_at > p_at)
       AND silence_matches(s, a)
     ORDER BY s.ends_at DESC NULLS FIRST, s.id
     LIMIT 1
$$;


-- ===================================================================
-- Transitions
-- ===================================================================

-- alerts_transitions_insert / _update - statement triggers: a transition
-- for every alert opened or whose status changed, from the transition
-- tables; silences bound to an alert that resolved expire with it.
CREATE OR REPLACE FUNCTION alerts_transitions_insert() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
    INSERT INTO alert_transitions (alert_id, at, actor, from_status, to_status, severity, note)
    SELECT n.id, n.starts_at, coalesce(nullif(current_setting('fleetdash.actor', true), ''),
                                       'fleetdash'),
           NULL, n.status, n.severity, nullif(current_setting('fleetdash.note', true), '')
      FROM new_alerts n;
    RETURN NULL;
END $$;

CREATE OR REPLACE FUNCTION alerts_transitions_update() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
    INSERT INTO alert_transitions (alert_id, at, actor, from_status, to_status, severity, note)
    SELECT n.id, CASE n.status WHEN 'resolved' THEN n.ends_at
                               WHEN 'acknowledged' THEN n.acknowledged_at
                               ELSE n.last_seen_at END,
           coalesce(nullif(current_setting('fleetdash.actor', true), ''), 'fleetdash'),
           o.status, n.status, n.severity, nullif(current_setting('fleetdash.note', true), '')
      FROM new_alerts n JOIN old_alerts o ON o.id = n.id
     WHERE o.status IS DISTINCT FROM n.status;
    UPDATE silences s SET expired_at = n.ends_at
      FROM new_alerts n
     WHERE s.alert_id = n.id AND n.status = 'resolved' AND s.expired_at IS NULL;
    RETURN NULL;
END $$;

CREATE OR REPLACE TRIGGER alerts_transitions_insert AFTER INSERT ON alerts
    REFERENCING NEW TABLE AS new_alerts
    FOR EACH STATEMENT EXECUTE FUNCTION alerts_transitions_insert();
CREATE OR REPLACE TRIGGER alerts_transitions_update AFTER UPDATE ON alerts
    REFERENCING OLD TABLE AS old_alerts NEW TABLE AS new_alerts
    FOR EACH STATEMENT EXECUTE FUNCTION alerts_transitions_update();
CREATE OR REPLACE TRIGGER alerts_set_updated_at BEFORE UPDATE ON alerts
    FOR EACH ROW WHEN (NEW.updated_at IS NOT DISTINCT FROM OLD.updated_at)
    EXECUTE FUNCTION set_updated_at();
CREATE OR REPLACE TRIGGER silences_set_updated_at BEFORE UPDATE ON silences
    FOR EACH ROW WHEN (NEW.updated_at IS NOT DISTINCT FROM OLD.updated_at)
    EXECUTE FUNCTION set_updated_at();


-- ===================================================================
-- Raising and clearing (the evaluator, budgets, POST /alerts)
-- ===================================================================

-- alerts_raise - every signal fires at p_at: a fingerprint with an open
-- alert updates it (last_seen_at, occurrences + 1, value, severity, title,
-- message, annotations, receivers); one without opens a new alert. An
-- acknowledged alert whose severity rises is firing again. Signals of one
-- fingerprint count once (the most severe). Concurrent calls meet at
-- alerts_open_fingerprint_idx: one open alert per fingerprint. Returns the
-- alerts as they are now, and whether each was opened by this call.
DROP FUNCTION IF EXISTS alerts_raise(alert_signal_t[], timestamptz, text);
CREATE OR REPLACE FUNCTION alerts_raise(p_signals alert_signal_t[], p_at timestamptz,
                                        p_actor text)
RETURNS TABLE (id uuid, fingerprint text, status text, opened boolean)
LANGUAGE sql VOLATILE AS $$
    WITH actor AS (SELECT alert_actor(p_actor, NULL)),
    s AS (
        SELECT DISTINCT ON (x.fingerprint) x.*
          FROM unnest(p_signals) x
         ORDER BY x.fingerprint, severity_rank(x.severity)
    )
    INSERT INTO alerts AS a (fingerprint, rule_id, budget_id, severity, title, message, agent_id,
                             execution_id, labels, annotations, value, receivers, starts_at,
                             last_seen_at)
    SELECT s.fingerprint, s.rule_id, s.budget_id, s.severity, s.title, coalesce(s.message, ''),
           s.agent_id, s.execution_id, coalesce(s.labels, '{}'), coalesce(s.annotations, '{}'),
           s.value, coalesce(s.receivers, '{}'), p_at, p_at
      FROM s, actor
    ON CONFLICT (fingerprint) WHERE status <> 'resolved' DO UPDATE
       SET last_seen_at = greatest(a.last_seen_at, EXCLUDED.last_seen_at),
           occurrences = a.occurrences + 1,
           value = EXCLUDED.value,
           severity = EXCLUDED.severity,
           title = EXCLUDED.title,
           message = EXCLUDED.message,
           annotations = EXCLUDED.annotations,
           receivers = EXCLUDED.receivers,
           execution_id = coalesce(EXCLUDED.execution_id, a.execution_id),
           status = CASE WHEN a.status = 'acknowledged'
                          AND severity_rank(EXCLUDED.severity) < severity_rank(a.severity)
                         THEN 'firing' ELSE a.status END,
           acknowledged_at = CASE WHEN a.status = 'acknowledged'
                                   AND severity_rank(EXCLUDED.severity) < severity_rank(a.severity)
                                  THEN NULL ELSE a.acknowledged_at END,
           acknowledged_by = CASE WHEN a.status = 'acknowledged'
                                   AND severity_rank(EXCLUDED.severity) < severity_rank(a.severity)
                                  THEN NULL ELSE a.acknowledged_by END
    RETURNING a.id, a.fingerprint, a.status, a.occurrences = 1
$$;
COMMENT ON FUNCTION alerts_raise(alert_signal_t[], timestamptz, text) IS
    'Fires every signal: updates the open alert of its fingerprint or opens one';

-- alerts_clear - resolves the open alerts of these fingerprints at p_at
-- (never before they started), by p_actor with p_note. Returns their ids.
CREATE OR REPLACE FUNCTION alerts_clear(p_fingerprints text[], p_at timestamptz, p_actor text,
                                        p_note text)
RETURNS SETOF uuid
LANGUAGE sql VOLATILE AS $$
    WITH actor AS (SELECT alert_actor(p_actor, p_note))
    UPDATE alerts a
       SET status = 'resolved', ends_at = greatest(p_at, a.starts_at, a.acknowledged_at),
           resolved_by = p_actor
      FROM actor
     WHERE a.fingerprint = ANY (p_fingerprints) AND a.status <> 'resolved'
    RETURNING a.id
$$;
COMMENT ON FUNCTION alerts_clear(text[], timestamptz, text, text) IS
    'Resolves the open alerts of these fingerprints';


-- ===================================================================
-- The API's objects
-- ===================================================================

-- alert_rows - Alert objects without their transitions (the lists), ready
-- for row_to_json; rank and starts_at_key are the list's keyset. The
-- silence is the one muting the alert now.
DROP VIEW IF EXISTS alert_rows CASCADE;
CREATE VIEW alert_rows AS
SELECT a.id, a.status, a.severity, a.title, a.message, a.fingerprint, a.rule_id, a.budget_id,
       a.agent_id, g.name AS agent_name, a.execution_id, a.labels, a.annotations, a.value,
       a.receivers, api_time(a.starts_at) AS starts_at, api_time(a.last_seen_at) AS last_seen_at,
       a.occurrences, api_time(a.ends_at) AS ends_at,
       api_time(a.acknowledged_at) AS acknowledged_at, a.acknowledged_by, a.resolved_by,
       -- the silence is looked for only for open alerts and only while a
       -- silence may be in force (the EXISTS is one initplan per query)
       CASE WHEN a.status <> 'resolved'
                 AND EXISTS (SELECT 1 FROM silences s WHERE s.expired_at IS NULL)
            THEN alert_silenced_by(a, now()) END AS silenced_by,
       api_time(a.created_at) AS created_at, api_time(a.updated_at) AS updated_at
  FROM alerts a
  LEFT JOIN agents g ON g.id = a.agent_id;
COMMENT ON VIEW alert_rows IS 'Alert objects of the API, without transitions';

-- alert_read - GET /alerts/{id}: the Alert with its transitions, oldest
-- first, as JSON; NULL when there is none.
CREATE OR REPLACE FUNCTION alert_read(p_id uuid) RETURNS json
LANGUAGE sql STABLE AS $$
    SELECT row_to_json(x)
      FROM (SELECT r.*, coalesce((
                       SELECT json_agg(json_build_object(
                                  'at', api_time(t.at), 'by', t.actor, 'from', t.from_status,
                                  'to', t.to_status, 'severity', t.severity, 'note', t.note)
                                  ORDER BY t.id)
                         FROM alert_transitions t WHERE t.alert_id = r.id), '[]') AS transitions
              FROM alert_rows r
             WHERE r.id = p_id) x
$$;

-- alert_require - the alert p_id locked for update; UF404 when there is none.
CREATE OR REPLACE FUNCTION alert_require(p_id uuid) RETURNS alerts
LANGUAGE plpgsql AS $$
DECLARE
    v alerts;
BEGIN
    SELECT * INTO v FROM alerts WHERE id = p_id FOR UPDATE;
    IF NOT FOUND THEN
        RAISE EXCEPTION USING ERRCODE = 'UF404', MESSAGE = format('No alert %s.', p_id);
    END IF;
    RETURN v;
END $$;

-- alert_create - POST /alerts, an alert raised by hand: {severity, title,
-- message, agent_id, execution_id, labels, receivers}. Its fingerprint is
-- its title, agent and labels: sending the same alert again while it is
-- open counts another occurrence of it. UF422 for an unknown agent_id,
-- execution_id or receiver. Answers (body, id, created).
CREATE OR REPLACE FUNCTION alert_create(p_body jsonb, OUT body json, OUT id uuid,
                                        OUT created boolean)
LANGUAGE plpgsql AS $$
DECLARE
    v_agent uuid := p_body ->> 'agent_id';
    v_execution uuid := p_body ->> 'execution_id';
    v_labels jsonb := coalesce(p_body -> 'labels', '{}');
    v_receivers uuid[] := ARRAY(SELECT jsonb_array_elements_text(coalesce(p_body -> 'receivers',
                                                                           '[]'))::uuid);
    v_signal alert_signal_t;
BEGIN
    PERFORM registry_require('agent', v_agent, 'agent_id');
    IF v_execution IS NOT NULL AND NOT EXISTS (SELECT 1 FROM executions e
                                                WHERE e.id = v_execution) THEN
        RAISE EXCEPTION USING ERRCODE = 'UF422', COLUMN = 'execution_id',
            MESSAGE = 'no such execution';
    END IF;
    PERFORM alert_receivers_require(v_receivers, 'receivers');
    v_signal := ROW(alert_fingerprint('manual:' || (p_body ->> 'title') || ':'
                                      || coalesce(v_agent::text, ''), v_labels),
                    NULL, NULL, p_body ->> 'severity', p_body ->> 'title',
                    coalesce(p_body ->> 'message', ''), v_agent, v_execution, v_labels,
                    '{}'::jsonb, NULL, v_receivers);
    SELECT r.id, r.opened INTO id, created
      FROM alerts_raise(ARRAY[v_signal], now(), coalesce(p_body ->> 'by', 'api')) r;
    body := alert_read(id);
END $$;

-- alert_receivers_require - UF422 on p_field unless every id names a
-- receiver (009).
CREATE OR REPLACE FUNCTION alert_receivers_require(p_ids uuid[], p_field text) RETURNS void
LANGUAGE plpgsql AS $$
DECLARE
    v_missing uuid;
BEGIN
    SELECT x INTO v_missing
      FROM unnest(p_ids) x
     WHERE NOT EXISTS (SELECT 1 FROM receivers r WHERE r.id = x)
     LIMIT 1;
    IF v_missing IS NOT NULL THEN
        RAISE EXCEPTION USING ERRCODE = 'UF422', COLUMN = p_field,
            MESSAGE = format('no such receiver %s', v_missing);
    END IF;
END $$;

-- alert_acknowledge - POST /alerts/{id}/acknowledge {by, note}: a firing
-- alert becomes acknowledged; acknowledging again changes nothing (and
-- answers the alert); a resolved alert is UF409.
CREATE OR REPLACE FUNCTION alert_acknowledge(p_id uuid, p_body jsonb) RETURNS json
LANGUAGE plpgsql AS $$
DECLARE
    v alerts := alert_require(p_id);
BEGIN
    IF v.status = 'resolved' THEN
        RAISE EXCEPTION USING ERRCODE = 'UF409',
            MESSAGE = format('Alert %s is resolved; it cannot be acknowledged.', p_id);
    END IF;
    IF v.status = 'firing' THEN
        PERFORM alert_actor(p_body ->> 'by', p_body ->> 'note');
        UPDATE alerts a SET status = 'acknowledged', acknowledged_at = greatest(now(), a.starts_at),
                            acknowledged_by = p_body ->> 'by'
         WHERE a.id = p_id;
    END IF;
    RETURN alert_read(p_id);
END $$;

-- alert_resolve - POST /alerts/{id}/resolve {by, note}: an open alert is
-- resolved now; a resolved one is UF409.
CREATE OR REPLACE FUNCTION alert_resolve(p_id uuid, p_body jsonb) RETURNS json
LANGUAGE plpgsql AS $$
DECLARE
    v alerts := alert_require(p_id);
BEGIN
    IF v.status = 'resolved' THEN
        RAISE EXCEPTION USING ERRCODE = 'UF409',
            MESSAGE = format('Alert %s is already resolved.', p_id);
    END IF;
    PERFORM alerts_clear(ARRAY[v.fingerprint], now(), p_body ->> 'by', p_body ->> 'note');
    RETURN alert_read(p_id);
END $$;


-- ===================================================================
-- Silences
-- ===================================================================

-- silence_rows - Silence objects of the API, ready for row_to_json.
DROP VIEW IF EXISTS silence_rows CASCADE;
CREATE VIEW silence_rows AS
SELECT s.id, silence_state(s, now()) AS state, s.matchers, s.alert_id,
       api_time(s.starts_at) AS starts_at, api_time(s.ends_at) AS ends_at,
       api_time(s.expired_at) AS expired_at, s.created_by, s.comment,
       api_time(s.created_at) AS created_at, api_time(s.updated_at) AS updated_at
  FROM silences s;
COMMENT ON VIEW silence_rows IS 'Silence objects of the API';

-- silence_check - UF422 for what the worker cannot check alone: an alert
-- that does not exist or is resolved, an end not after the start, an end
-- in the past, nothing to match.
CREATE OR REPLACE FUNCTION silence_check(s silences) RETURNS void
LANGUAGE plpgsql AS $$
BEGIN
    IF s.alert_id IS NOT NULL AND NOT EXISTS (SELECT 1 FROM alerts a WHERE a.id = s.alert_id) THEN
        RAISE EXCEPTION USING ERRCODE = 'UF422', COLUMN = 'alert_id', MESSAGE = 'no such alert';
    END IF;
    IF jsonb_array_length(s.matchers) = 0 AND s.alert_id IS NULL THEN
        RAISE EXCEPTION USING ERRCODE = 'UF422', COLUMN = 'matchers',
            MESSAGE = 'must hold at least one matcher unless alert_id is given';
    END IF;
    IF s.ends_at IS NULL AND s.alert_id IS NULL THEN
        RAISE EXCEPTION USING ERRCODE = 'UF422', COLUMN = 'ends_at',
            MESSAGE = 'is required unless alert_id is given';
    END IF;
    IF s.ends_at IS NOT NULL AND s.ends_at <= s.starts_at THEN
        RAISE EXCEPTION USING ERRCODE = 'UF422', COLUMN = 'ends_at',
            MESSAGE = 'must be after starts_at';
    END IF;
END $$;

-- silence_create - POST /silences {matchers, alert_id, starts_at (default
-- now), ends_at, created_by, comment}. Answers (body, id).
CREATE OR REPLACE FUNCTION silence_create(p_body jsonb, OUT body json, OUT id uuid)
LANGUAGE plpgsql AS $$
DECLARE
    v silences;
BEGIN
    v := jsonb_populate_record(NULL::silences, p_body);
    v.id := gen_random_uuid();
    v.starts_at := coalesce(v.starts_at, now());
    v.matchers := coalesce(p_body -> 'matchers', '[]');
    v.comment := coalesce(v.comment, '');
    v.expired_at := NULL;
    v.created_at := now();
    v.updated_at := now();
    IF v.alert_id IS NOT NULL AND EXISTS (SELECT 1 FROM alerts a WHERE a.id = v.alert_id
                                                             AND a.status = 'resolved') THEN
        RAISE EXCEPTION USING ERRCODE = 'UF422', COLUMN = 'alert_id',
            MESSAGE = 'is resolved: there is nothing left to silence';
    END IF;
    PERFORM silence_check(v);
    INSERT INTO silences SELECT v.*;
    id := v.id;
    SELECT row_to_json(r) INTO body FROM silence_rows r WHERE r.id = v.id;
END $$;

-- silence_patch - PATCH /silences/{id}: the members sent (matchers,
-- starts_at, ends_at, comment). UF404 unknown, UF409 once expired.
CREATE OR REPLACE FUNCTION silence_patch(p_id uuid, p_body jsonb) RETURNS json
LANGUAGE plpgsql AS $$
DECLARE
    v silences;
BEGIN
    SELECT * INTO v FROM silences WHERE id = p_id FOR UPDATE;
    IF NOT FOUND THEN
        RAISE EXCEPTION USING ERRCODE = 'UF404', MESSAGE = format('No silence %s.', p_id);
    END IF;
    IF silence_state(v, now()) = 'expired' THEN
        RAISE EXCEPTION USING ERRCODE = 'UF409',
            MESSAGE = format('Silence %s has expired; create a new one.', p_id);
    END IF;
    v := jsonb_populate_record(v, p_body - 'id' - 'alert_id' - 'created_by' - 'expired_at'
                                      - 'created_at' - 'updated_at');
    PERFORM silence_check(v);
    UPDATE silences s SET matchers = v.matchers, starts_at = v.starts_at, ends_at = v.ends_at,
                          comment = v.comment
     WHERE s.id = p_id;
    RETURN (SELECT row_to_json(r) FROM silence_rows r WHERE r.id = p_id);
END $$;

-- silence_expire - DELETE /silences/{id}: expires it now (the record
-- stays); expiring an expired one changes nothing. UF404 unknown.
CREATE OR REPLACE FUNCTION silence_expire(p_id uuid) RETURNS json
LANGUAGE plpgsql AS $$
BEGIN
    UPDATE silences s SET expired_at = now()
     WHERE s.id = p_id AND silence_state(s, now()) <> 'expired';
    IF NOT FOUND AND NOT EXISTS (SELECT 1 FROM silences WHERE id = p_id) THEN
        RAISE EXCEPTION USING ERRCODE = 'UF404', MESSAGE = format('No silence %s.', p_id);
    END IF;
    RETURN (SELECT row_to_json(r) FROM silence_rows r WHERE r.id = p_id);
END $$;
