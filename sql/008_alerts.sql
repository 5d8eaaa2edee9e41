-- 008_alerts.sql - alerts with a lifecycle, their transitions, silences
--
-- An alert is raised by a rule of the evaluator (rule_id), by a budget
-- (budget_id, 011) or by hand (neither). Its fingerprint names what it is
-- about: the rule and the labels of the instance that breached (an agent,
-- a model), or for one raised by hand its title, agent and labels. While
-- one alert of a fingerprint is open (firing or acknowledged) a new firing
-- updates it (last_seen_at, occurrences, value); after it resolved, the
-- next firing opens a new alert. alerts_open_fingerprint_idx makes "one
-- open alert per fingerprint" hold under concurrent firings.
--
-- The functions that raise, clear, acknowledge and resolve alerts and
-- match silences are in functions/20_alerts.sql.

-- alerts - something a person should look at, and who handled it.
CREATE TABLE alerts (
    id              uuid        PRIMARY KEY DEFAULT gen_random_uuid(),
    fingerprint     text        NOT NULL CHECK (fingerprint ~ '^[0-9a-f]{16}$'),
    -- rule_id references alert_rules (010), budget_id budgets (011): both
    -- SET NULL, an alert outlives what raised it.
    rule_id         uuid,
    budget_id       uuid,
    status          text        NOT NULL DEFAULT 'firing'
                                CHECK (status IN ('firing', 'acknowledged', 'resolved')),
    severity        text        NOT NULL
                                CHECK (severity IN ('critical', 'high', 'medium', 'low')),
    title           text        NOT NULL CHECK (char_length(title) BETWEEN 1 AND 500),
    message         text        NOT NULL DEFAULT '',
    -- SET NULL: an alert is a record of what happened and who handled it;
    -- it outlives the agent or the (purged) execution it pointed at.
    agent_id        uuid        REFERENCES agents (id) ON DELETE SET NULL,
    execution_id    uuid        REFERENCES executions (id) ON DELETE SET NULL,
    -- labels: what the alert is about, matched by silences (flat object of
    -- strings); annotations: what a person reads (flat object of strings).
    labels          jsonb       NOT NULL DEFAULT '{}' CHECK (jsonb_typeof(labels) = 'object'),
    annotations     jsonb       NOT NULL DEFAULT '{}' CHECK (jsonb_typeof(annotations) = 'object'),
    -- the value that fired it last (the metric of the rule; NULL by hand)
    value           double precision,
    -- who is told (receivers, 009): copied from the rule or budget when it
    -- fires, so that a notification goes where the alert was meant to go
    receivers       uuid[]      NOT NULL DEFAULT '{}',
    starts_at       timestamptz NOT NULL DEFAULT now(),
    last_seen_at    timestamptz NOT NULL DEFAULT now(),
    occurrences     integer     NOT NULL DEFAULT 1 CHECK (occurrences >= 1),
    ends_at         timestamptz,
    acknowledged_at timestamptz,
    acknowledged_by text        CHECK (char_length(acknowledged_by) BETWEEN 1 AND 255),
    resolved_by     text        CHECK (char_length(resolved_by) BETWEEN 1 AND 255),
    created_at      timestamptz NOT NULL DEFAULT now(),
    updated_at      timestamptz NOT NULL DEFAULT now(),
    -- firing: not acknowledged, not ended; acknowledged: acknowledged, not
    -- ended; resolved: ended (acknowledging first is optional).
    CONSTRAINT alerts_status_timestamps_check CHECK (
        CASE status
            WHEN 'firing' THEN acknowledged_at IS NULL AND ends_at IS NULL
            WHEN 'acknowledged' THEN acknowledged_at IS NOT NULL AND ends_at IS NULL
            WHEN 'resolved' THEN ends_at IS NOT NULL
        END),
    -- Who did it only with when; never before the alert, ended after ack.
    CONSTRAINT alerts_handled_check CHECK (
        (acknowledged_by IS NULL OR acknowledged_at IS NOT NULL)
        AND (resolved_by IS NULL OR ends_at IS NOT NULL)
        AND last_seen_at >= starts_at
        AND (acknowledged_at IS NULL OR acknowledged_at >= starts_at)
        AND (ends_at IS NULL OR ends_at >= starts_at)
        AND (ends_at IS NULL OR acknowledged_at IS NULL OR ends_at >= acknowledged_at))
);
COMMENT ON TABLE alerts IS
    'Alerts to people: one open per fingerprint, severity, value, acknowledge/resolve trail';

-- One open alert per fingerprint: concurrent firings meet here
-- (INSERT ... ON CONFLICT in alerts_raise()).
CREATE UNIQUE INDEX alerts_open_fingerprint_idx ON alerts (fingerprint)
    WHERE status <> 'resolved';
-- GET /alerts and the Active Alerts widget: most severe, then newest; the
-- open ones read this index in order and stop at LIMIT, any status the
-- other.
CREATE INDEX alerts_open_order_idx ON alerts (severity_rank(severity), starts_at DESC, id DESC)
    WHERE status <> 'resolved';
CREATE INDEX alerts_order_idx ON alerts (severity_rank(severity), starts_at DESC, id DESC);
CREATE INDEX alerts_rule_idx ON alerts (rule_id, starts_at) WHERE rule_id IS NOT NULL;
CREATE INDEX alerts_budget_idx ON alerts (budget_id, starts_at) WHERE budget_id IS NOT NULL;
CREATE INDEX alerts_agent_idx ON alerts (agent_id, starts_at) WHERE agent_id IS NOT NULL;
CREATE INDEX alerts_execution_idx ON alerts (execution_id) WHERE execution_id IS NOT NULL;


-- alert_transitions - every change of an alert's status: who, when, from,
-- to, why. from_status NULL: the alert was opened.
CREATE TABLE alert_transitions (
    id          bigint      GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    alert_id    uuid        NOT NULL REFERENCES alerts (id) ON DELETE CASCADE,
    at          timestamptz NOT NULL DEFAULT now(),
    actor       text        NOT NULL CHECK (char_length(actor) BETWEEN 1 AND 255),
    from_status text        CHECK (from_status IN ('firing', 'acknowledged', 'resolved')),
    to_status   text        NOT NULL CHECK (to_status IN ('firing', 'acknowledged', 'resolved')),
    severity    text        NOT NULL
                            CHECK (severity IN ('critical', 'high', 'medium', 'low')),
    note        text        CHECK (char_length(note) <= 10000)
);
COMMENT ON TABLE alert_transitions IS
    'Status changes of alerts: who, when, from, to, note';
CREATE INDEX alert_transitions_alert_idx ON alert_transitions (alert_id, id);


-- silences - mute the notifications of the alerts they match while active:
-- every matcher holds ({name, value, op}: name is rule_id, agent_id,
-- severity, alertname or a label's key; op "=" or "!="), and, when alert_id
-- is set, the alert is that one; such a silence ends when its alert
-- resolves. State: pending before starts_at, active until ends_at (or
-- expired_at, set by DELETE), then expired; the record stays.
CREATE TABLE silences (
    id          uuid        PRIMARY KEY DEFAULT gen_random_uuid(),
    matchers    jsonb       NOT NULL DEFAULT '[]' CHECK (jsonb_typeof(matchers) = 'array'),
    alert_id    uuid        REFERENCES alerts (id) ON DELETE CASCADE,
    starts_at   timestamptz NOT NULL DEFAULT now(),
    ends_at     timestamptz,
    expired_at  timestamptz,
    created_by  text        NOT NULL CHECK (char_length(created_by) BETWEEN 1 AND 255),
    comment     text        NOT NULL DEFAULT '' CHECK (char_length(comment) <= 10000),
    created_at  timestamptz NOT NULL DEFAULT now(),
    updated_at  timestamptz NOT NULL DEFAULT now(),
    -- something to match, and an end: a time, or the end of its alert
    CONSTRAINT silences_target_check CHECK (jsonb_array_length(matchers) > 0 OR alert_id IS NOT NULL),
    CONSTRAINT silences_end_check CHECK (
        (ends_at IS NOT NULL OR alert_id IS NOT NULL)
        AND (ends_at IS NULL OR ends_at > starts_at))
);
COMMENT ON TABLE silences IS
    'Matchers that mute notifications between starts_at and ends_at (or the end of their alert)';
-- Silences that may still be in force; the evaluator and the reads match
-- alerts against these only.
CREATE INDEX silences_unexpired_idx ON silences (starts_at) WHERE expired_at IS NULL;
CREATE INDEX silences_alert_idx ON silences (alert_id) WHERE alert_id IS NOT NULL;
CREATE INDEX silences_created_idx ON silences (created_at DESC, id DESC);


-- alert_signal_t - one breach to raise (alerts_raise()): the evaluator,
-- budgets and POST /alerts hand these over, many at once.
CREATE TYPE alert_signal_t AS (
    fingerprint text,
    rule_id     uuid,
    budget_id   uuid,
    severity    text,
    title       text,
    message     text,
    agent_id    uuid,
    execution_id uuid,
    labels      jsonb,
    annotations jsonb,
    value       double precision,
    receivers   uuid[]
);
