-- functions/23_notifications.sql - receivers, the notification outbox: enqueue, claim, record
--
-- notifications_enqueue() decides who is told what, set-based, each round
-- of the sender job (workers/sender.c): an open alert that is not silenced
-- and whose firing round was not told yet, for each of its receivers; a
-- resolved alert whose firing was told, to the receivers told, silenced
-- or not. An alert muted by a silence stays "not yet told" and is told at
-- the first round after the silence ends, if it still fires.
-- notifications_claim() hands due rows to one sender (SKIP LOCKED, a
-- lease), notification_record() writes an attempt's outcome and the next
-- attempt (exponential backoff, Retry-After, final 4xx, bounded by
-- attempts and age). Errors for the client: UF404, UF409, UF422 as in
-- 03_registry.sql.

-- ===================================================================
-- Firing rounds
-- ===================================================================

-- alerts_firing_round - an acknowledged alert that fires again (its
-- severity rose, alerts_raise()) starts a new firing round: it is
-- notified again.
CREATE OR REPLACE FUNCTION alerts_firing_round() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
    NEW.firing_round := OLD.firing_round + 1;
    RETURN NEW;
END $$;

CREATE OR REPLACE TRIGGER alerts_firing_round BEFORE UPDATE ON alerts
    FOR EACH ROW WHEN (OLD.status = 'acknowledged' AND NEW.status = 'firing')
    EXECUTE FUNCTION alerts_firing_round();


-- ===================================================================
-- Receivers
-- ===================================================================

CREATE OR REPLACE TRIGGER receivers_set_updated_at BEFORE UPDATE ON receivers
    FOR EACH ROW WHEN (NEW.updated_at IS NOT DISTINCT FROM OLD.updated_at)
    EXECUTE FUNCTION set_updated_at();

-- receiver_rows - Receiver objects of the API: the secret is never
-- answered, only whether there is one.
DROP VIEW IF EXISTS receiver_rows CASCADE;
CREATE VIEW receiver_rows AS
SELECT r.id, r.name, r.url, r.secret IS NOT NULL AS has_secret, r.headers,
       api_time(r.created_at) AS created_at, api_time(r.updated_at) AS updated_at
  FROM receivers r;
COMMENT ON VIEW receiver_rows IS 'Receiver objects of the API (without their secret)';

-- receiver_create - POST /receivers {name, url, secret, headers} (checked
-- by the worker). A taken name is a unique violation (409). Answers
-- (body, id).
CREATE OR REPLACE FUNCTION receiver_create(p_body jsonb, OUT body json, OUT id uuid)
LANGUAGE plpgsql AS $$
BEGIN
    INSERT INTO receivers (name, url, secret, headers)
    VALUES (p_body ->> 'name', p_body ->> 'url', p_body ->> 'secret',
            coalesce(p_body -> 'headers', '{}'))
    RETURNING receivers.id INTO id;
    SELECT row_to_json(r) INTO body FROM receiver_rows r WHERE r.id = receiver_create.id;
END $$;

-- receiver_patch - PATCH /receivers/{id}: the members sent (name, url,
-- headers; secret, null removes it). UF404 unknown.
CREATE OR REPLACE FUNCTION receiver_patch(p_id uuid, p_body jsonb) RETURNS json
LANGUAGE plpgsql AS $$
BEGIN
    UPDATE receivers r
       SET name = CASE WHEN p_body ? 'name' THEN p_body ->> 'name' ELSE r.name END,
           url = CASE WHEN p_body ? 'url' THEN p_body ->> 'url' ELSE r.url END,
           secret = CASE WHEN p_body ? 'secret' THEN p_body ->> 'secret' ELSE r.secret END,
           headers = CASE WHEN p_body ? 'headers' THEN p_body -> 'headers' ELSE r.headers END
     WHERE r.id = p_id;
    IF NOT FOUND THEN
        RAISE EXCEPTION USING ERRCODE = 'UF404', MESSAGE = format('No receiver %s.', p_id);
    END IF;
    RETURN (SELECT row_to_json(r) FROM receiver_rows r WHERE r.id = p_id);
END $$;

-- receiver_delete - DELETE /receivers/{id}: its notifications still
-- waiting fail ("receiver deleted"), every notification stays as a
-- record (receiver_id NULL). UF404 unknown. Returns the id.
CREATE OR REPLACE FUNCTION receiver_delete(p_id uuid) RETURNS uuid
LANGUAGE plpgsql AS $$
BEGIN
    PERFORM FROM receivers WHERE id = p_id FOR UPDATE;
    IF NOT FOUND THEN
        RAISE EXCEPTION USING ERRCODE = 'UF404', MESSAGE = format('No receiver %s.', p_id);
    END IF;
    UPDATE notifications n
       SET status = 'failed', next_attempt_at = NULL, last_error = 'receiver deleted'
     WHERE n.receiver_id = p_id AND n.status IN ('pending', 'sending');
    DELETE FROM receivers WHERE id = p_id;
    RETURN p_id;
END $$;


-- ===================================================================
-- The webhook payload
-- ===================================================================

-- alert_webhook_labels - an alert's labels as Alertmanager's receivers
-- expect them: alertname (the title, unless a label says otherwise), its
-- labels, severity, rule_id, budget_id and agent_id when it has them.
CREATE OR REPLACE FUNCTION alert_webhook_labels(a alerts) RETURNS jsonb
LANGUAGE sql STABLE PARALLEL SAFE AS $$
    SELECT jsonb_build_object('alertname', a.title) || a.labels
           || jsonb_strip_nulls(jsonb_build_object('severity', a.severity, 'rule_id', a.rule_id,
                                                   'budget_id', a.budget_id,
                                                   'agent_id', a.agent_id))
$$;

-- alert_webhook_annotations - summary (the title), description (the
-- message, when there is one), then the alert's annotations.
CREATE OR REPLACE FUNCTION alert_webhook_annotations(a alerts) RETURNS jsonb
LANGUAGE sql STABLE PARALLEL SAFE AS $$
    SELECT jsonb_strip_nulls(jsonb_build_object('summary', a.title,
                                                'description', nullif(a.message, '')))
           || a.annotations
$$;

-- notification_payload - the body of a notification: Alertmanager's
-- webhook message, version 4 (notify/webhook/webhook.go: template.Data
-- plus version, groupKey, truncatedAlerts), one alert per message, and
-- fleetdash's own member "fleetdash". p_status is firing or resolved;
-- endsAt is Alertmanager's zero time while the alert is open.
CREATE OR REPLACE FUNCTION notification_payload(a alerts, p_status text, p_receiver text,
                                                p_external_url text) RETURNS jsonb
LANGUAGE sql STABLE AS $$
    SELECT jsonb_build_object(
               'version', '4',
               'groupKey', format('{}:{fingerprint=%s}', to_json(a.fingerprint)),
               'truncatedAlerts', 0,
               'status', p_status,
               'receiver', p_receiver,
               'groupLabels', '{}'::jsonb,
               'commonLabels', l.labels,
               'commonAnnotations', l.annotations,
               'externalURL', coalesce(p_external_url, ''),
               'alerts', jsonb_build_array(jsonb_build_object(
                   'status', p_status,
                   'labels', l.labels,
                   'annotations', l.annotations,
                   'startsAt', api_time(a.starts_at),
                   'endsAt', CASE WHEN p_status = 'resolved'
                                  THEN api_time(coalesce(a.ends_at, a.last_seen_at))
                                  ELSE '0001-01-01T00:00:00Z' END,
                   'generatorURL', coalesce(p_external_url, '') || '/api/v1/alerts/' || a.id,
                   'fingerprint', a.fingerprint)),
               'fleetdash', jsonb_build_object(
                   'alert_id', a.id, 'event', p_status, 'alert_status', a.status,
                   'severity', a.severity, 'title', a.title, 'message', a.message,
                   'value', a.value, 'agent_id', a.agent_id, 'rule_id', a.rule_id,
                   'budget_id', a.budget_id, 'occurrences', a.occurrences,
                   'firing_round', a.firing_round,
                   'last_seen_at', api_time(a.last_seen_at)))
      FROM (SELECT alert_webhook_labels(a) AS labels,
                   alert_webhook_annotations(a) AS annotations) l
$$;


-- ===================================================================
-- The outbox
-- ===================================================================

-- notifications_enqueue - the notifications the alerts need at p_at, made
-- in one statement (ON CONFLICT: concurrent senders make each once), the
-- alerts marked as told. Open alerts not silenced at p_at whose firing
-- round was not told: one `firing` per receiver; alerts resolved whose
-- firing was told: one `resolved` per receiver told. Returns how many
-- notifications were made.
CREATE OR REPLACE FUNCTION notifications_enqueue(p_at timestamptz, p_external_url text DEFAULT '')
RETURNS integer
LANGUAGE sql VOLATILE AS $$
    WITH firing AS (
        SELECT a FROM alerts a
         WHERE a.status <> 'resolved' AND a.notified_round < a.firing_round
           AND a.receivers <> '{}' AND alert_silenced_by(a, p_at) IS NULL
    ),
    resolved AS (
        SELECT a FROM alerts a
         WHERE a.status = 'resolved' AND a.notified_round > 0 AND NOT a.notified_resolved
    ),
    todo AS (
        SELECT (f.a).id AS alert_id, r.id AS receiver_id, r.name, 'firing' AS event,
               (f.a).firing_round AS round,
               notification_payload(f.a, 'firing', r.name, p_external_url) AS payload
          FROM firing f JOIN receivers r ON r.id = ANY ((f.a).receivers)
        UNION ALL
        SELECT (d.a).id, r.id, r.name, 'resolved', (d.a).notified_round,
               notification_payload(d.a, 'resolved', r.name, p_external_url)
          FROM resolved d JOIN receivers r
            ON r.id IN (SELECT n.receiver_id FROM notifications n
                         WHERE n.alert_id = (d.a).id AND n.event = 'firing')
    ),
    made AS (
        INSERT INTO notifications (alert_id, receiver_id, receiver_name, event, firing_round,
                                   payload, next_attempt_at, created_at, updated_at)
        SELECT t.alert_id, t.receiver_id, t.name, t.event, t.round, t.payload, p_at, p_at, p_at
          FROM todo t
        ON CONFLICT ON CONSTRAINT notifications_once DO NOTHING
        RETURNING 1
    ),
    told_firing AS (
        UPDATE alerts a SET notified_round = greatest(a.notified_round, (f.a).firing_round)
          FROM firing f WHERE a.id = (f.a).id
        RETURNING 1
    ),
    told_resolved AS (
        UPDATE alerts a SET notified_resolved = true
          FROM resolved d WHERE a.id = (d.a).id
        RETURNING 1
    )
    -- (every data-modifying WITH runs, read or not)
    SELECT count(*)::integer FROM made
$$;
COMMENT ON FUNCTION notifications_enqueue(timestamptz, text) IS
    'Makes the outbox rows the alerts need now: firing (not silenced, not told) and resolved';

-- notifications_claim - up to p_limit notifications due at p_at for one
-- sender: each becomes `sending` with its attempt counted and a lease of
-- p_lease_ms (next_attempt_at): another sender takes it again only when
-- the lease ran out without an outcome (a sender that died). Rows another
-- session holds are skipped. Returns what the sender needs to POST it.
CREATE OR REPLACE FUNCTION notifications_claim(p_at timestamptz, p_limit integer,
                                               p_lease_ms integer)
RETURNS TABLE (id uuid, attempt integer, idempotency_key uuid, url text, secret text,
               headers jsonb, payload text)
LANGUAGE sql VOLATILE AS $$
    WITH due AS (
        SELECT n.id FROM notifications n
         WHERE n.status IN ('pending', 'sending') AND n.next_attempt_at <= p_at
         ORDER BY n.next_attempt_at
         LIMIT p_limit
           FOR UPDATE SKIP LOCKED
    )
    UPDATE notifications n
       SET status = 'sending', attempts = n.attempts + 1,
           next_attempt_at = p_at + p_lease_ms * interval '1 millisecond', updated_at = p_at
      FROM due, receivers r
     WHERE n.id = due.id AND r.id = n.receiver_id
    RETURNING n.id, n.attempts, n.idempotency_key, r.url, r.secret, r.headers, n.payload::text
$$;

-- notification_record - the outcome of attempt p_attempt of notification
-- p_id, made at p_at and lasting p_duration_ms: the HTTP status p_code
-- (NULL: none came, p_error says why), the Retry-After of a 429 in
-- seconds (NULL: none). 2xx: delivered. 429: again after Retry-After (or
-- the backoff). Another 4xx, a 3xx, or p_final (the target refused by
-- configuration): failed. Anything else (5xx, timeouts, connection
-- errors): again after p_backoff_ms * 2^(attempt - 1) (at most an hour).
-- Past p_max_attempts attempts or p_max_age_s seconds since it was made,
-- it gives up: failed. The attempt is always recorded; an outcome for an
-- attempt that is no longer the current one (the lease ran out and
-- another sender took it) changes nothing else. Returns the status.
CREATE OR REPLACE FUNCTION notification_record(p_id uuid, p_attempt integer, p_at timestamptz,
                                               p_duration_ms double precision, p_code integer,
                                               p_error text, p_retry_after_s double precision,
                                               p_final boolean, p_backoff_ms integer,
                                               p_max_attempts integer, p_max_age_s integer)
RETURNS text
LANGUAGE plpgsql AS $$
DECLARE
    v notifications;
    v_error text := coalesce(p_error, CASE WHEN p_code IS NOT NULL AND p_code NOT BETWEEN 200 AND 299
                                           THEN format('HTTP %s', p_code) END);
    v_next timestamptz;
BEGIN
    INSERT INTO notification_attempts (notification_id, attempt, at, duration_ms, code, error)
    VALUES (p_id, p_attempt, p_at - greatest(p_duration_ms, 0) * interval '1 millisecond',
            greatest(p_duration_ms, 0), p_code, v_error)
    ON CONFLICT (notification_id, attempt) DO NOTHING;
    SELECT * INTO v FROM notifications WHERE id = p_id FOR UPDATE;
    IF NOT FOUND OR v.status <> 'sending' OR v.attempts <> p_attempt THEN
        RETURN v.status;
    END IF;
    IF p_code BETWEEN 200 AND 299 THEN
        UPDATE notifications SET status = 'delivered', delivered_at = p_at, next_attempt_at = NULL,
                                 last_code = p_code, last_error = NULL, updated_at = p_at
         WHERE id = p_id;
        RETURN 'delivered';
    END IF;
    IF p_final OR (p_code BETWEEN 300 AND 499 AND p_code <> 429) THEN
        UPDATE notifications SET status = 'failed', next_attempt_at = NULL, last_code = p_code,
                                 last_error = v_error, updated_at = p_at
         WHERE id = p_id;
        RETURN 'failed';
    END IF;
    v_next := p_at + CASE WHEN p_code = 429 AND p_retry_after_s IS NOT NULL
                          THEN p_retry_after_s * interval '1 second'
                          ELSE least(p_backoff_ms * power(2, least(p_attempt - 1, 30)), 3600000)
                               * interval '1 millisecond' END;
    IF p_attempt >= p_max_attempts OR v_next > v.created_at + p_max_age_s * interval '1 second' THEN
        UPDATE notifications
           SET status = 'failed', next_attempt_at = NULL, last_code = p_code,
               last_error = format('gave up after %s attempts: %s', p_attempt, v_error),
               updated_at = p_at
         WHERE id = p_id;
        RETURN 'failed';
    END IF;
    UPDATE notifications SET status = 'pending', next_attempt_at = v_next, last_code = p_code,
                             last_error = v_error, updated_at = p_at
     WHERE id = p_id;
    RETURN 'pending';
END $$;


-- ===================================================================
-- The API's objects
-- ===================================================================

-- notification_rows - Notification objects of the API with every attempt
-- (oldest first), ready for row_to_json.
DROP VIEW IF EXISTS notification_rows CASCADE;
CREATE VIEW notification_rows AS
SELECT n.id, n.alert_id, n.receiver_id, n.receiver_name, n.event, n.firing_round,
       n.idempotency_key, n.status, n.attempts AS attempt_count,
       api_time(n.next_attempt_at) AS next_attempt_at, n.last_code, n.last_error,
       coalesce((SELECT json_agg(json_build_object('attempt', t.attempt, 'at', api_time(t.at),
                                                   'duration_ms', t.duration_ms, 'code', t.code,
                                                   'error', t.error) ORDER BY t.attempt)
                   FROM notification_attempts t WHERE t.notification_id = n.id), '[]') AS attempts,
       n.payload, api_time(n.created_at) AS created_at, api_time(n.updated_at) AS updated_at,
       api_time(n.delivered_at) AS delivered_at
  FROM notifications n;
COMMENT ON VIEW notification_rows IS 'Notification objects of the API, with their attempts';
