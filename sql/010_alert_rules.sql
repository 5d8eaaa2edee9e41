-- 010_alert_rules.sql - alert rules and the state of each of their instances
--
-- A rule is a condition over the rollups (threshold, cost_spike,
-- agent_silent, error_category) that the evaluator (the alerts group's
-- job, functions/21_alert_rules.sql) checks every cycle, set-based for
-- every rule due. Each rule has instances: one (key '') without group_by,
-- one per agent or model with group_by. An instance moves normal ->
-- pending (the condition holds, not yet `for`) -> firing (an alert is
-- raised) -> recovering (the condition stopped holding, not yet
-- `keep_firing_for`) -> normal (the alert is cleared).
--
-- Durations are whole seconds here; the API writes them "30s", "5m",
-- "1h", "1d".

CREATE TABLE alert_rules (
    id                      uuid        PRIMARY KEY DEFAULT gen_random_uuid(),
    name                    text        NOT NULL UNIQUE CHECK (char_length(name) BETWEEN 1 AND 255),
    kind                    text        NOT NULL
                                        CHECK (kind IN ('threshold', 'cost_spike', 'agent_silent',
                                                        'error_category')),
    -- threshold: a metric of /metrics/{name}, compared with op;
    -- cost_spike: threshold is the factor k; error_category: threshold is
    -- the count n (more than n), category the one counted (NULL: any).
    metric                  text        CHECK (char_length(metric) BETWEEN 1 AND 100),
    op                      text        NOT NULL DEFAULT '>' CHECK (op IN ('>', '<')),
    threshold               double precision,
    warning_threshold       double precision,
    warning_severity        text        CHECK (warning_severity IN ('critical', 'high', 'medium', 'low')),
    category                text        CHECK (char_length(category) BETWEEN 1 AND 100),
    window_seconds          integer     NOT NULL DEFAULT 300
                                        CHECK (window_seconds BETWEEN 60 AND 604800),
    for_seconds             integer     NOT NULL DEFAULT 0 CHECK (for_seconds BETWEEN 0 AND 86400),
    keep_firing_for_seconds integer     NOT NULL DEFAULT 0
                                        CHECK (keep_firing_for_seconds BETWEEN 0 AND 604800),
    -- scope: only these executions count (NULL: any)
    agent_id                uuid        REFERENCES agents (id) ON DELETE CASCADE,
    model                   text        CHECK (char_length(model) BETWEEN 1 AND 200),
    metadata                jsonb       CHECK (jsonb_typeof(metadata) = 'object'),
    group_by                text        NOT NULL DEFAULT 'none'
                                        CHECK (group_by IN ('none', 'agent', 'model')),
    severity                text        NOT NULL DEFAULT 'high'
                                        CHECK (severity IN ('critical', 'high', 'medium', 'low')),
    min_executions          integer     NOT NULL DEFAULT 0 CHECK (min_executions >= 0),
    no_data                 text        NOT NULL DEFAULT 'ok'
                                        CHECK (no_data IN ('ok', 'keep', 'alert')),
    labels                  jsonb       NOT NULL DEFAULT '{}' CHECK (jsonb_typeof(labels) = 'object'),
    -- the annotation template of the alert's title ({{alertname}},
    -- {{agent_name}}, {{model}}, {{value}}, {{threshold}}, labels); NULL:
    -- the rule's name and the instance
    title                   text        CHECK (char_length(title) BETWEEN 1 AND 500),
    enabled                 boolean     NOT NULL DEFAULT true,
    receivers               uuid[]      NOT NULL DEFAULT '{}',
    version                 integer     NOT NULL DEFAULT 1 CHECK (version >= 1),
    last_evaluated_at       timestamptz,
    last_duration_ms        double precision,
    last_error              text,
    created_at              timestamptz NOT NULL DEFAULT now(),
    updated_at              timestamptz NOT NULL DEFAULT now(),
    CONSTRAINT alert_rules_kind_members_check CHECK (
        CASE kind
            WHEN 'threshold' THEN metric IS NOT NULL AND threshold IS NOT NULL
            WHEN 'cost_spike' THEN threshold > 0
            WHEN 'error_category' THEN threshold >= 0
            ELSE true
        END),
    CONSTRAINT alert_rules_warning_check CHECK (
        (warning_threshold IS NULL) = (warning_severity IS NULL))
);
COMMENT ON TABLE alert_rules IS
    'Alert rules over the rollups: kind, condition, window, for, keep_firing_for, scope, receivers';
CREATE INDEX alert_rules_due_idx ON alert_rules (last_evaluated_at NULLS FIRST) WHERE enabled;

-- alert_rule_instances - what the evaluator knows of each instance of a
-- rule: its state since when, the last value, the fingerprint of its
-- alert. key: '' without group_by, else the agent id or the model.
CREATE TABLE alert_rule_instances (
    rule_id      uuid        NOT NULL REFERENCES alert_rules (id) ON DELETE CASCADE,
    key          text        NOT NULL,
    labels       jsonb       NOT NULL DEFAULT '{}' CHECK (jsonb_typeof(labels) = 'object'),
    agent_id     uuid,
    state        text        NOT NULL DEFAULT 'normal'
                             CHECK (state IN ('normal', 'pending', 'firing', 'recovering')),
    since        timestamptz NOT NULL,
    value        double precision,
    severity     text        CHECK (severity IN ('critical', 'high', 'medium', 'low')),
    fingerprint  text        NOT NULL CHECK (fingerprint ~ '^[0-9a-f]{16}$'),
    evaluated_at timestamptz NOT NULL,
    PRIMARY KEY (rule_id, key)
);
COMMENT ON TABLE alert_rule_instances IS
    'The state of each instance of a rule (normal, pending, firing, recovering) and since when';

-- alert_rule_step_t - one instance's outcome of one evaluation, handed
-- between the statements of alert_rules_evaluate().
CREATE TYPE alert_rule_step_t AS (
    rule_id     uuid,
    key         text,
    labels      jsonb,
    agent_id    uuid,
    state       text,
    since       timestamptz,
    value       double precision,
    severity    text,
    fingerprint text,
    fire        boolean,     -- firing now
    entering    boolean,     -- ... and it was not at the last evaluation
    clear       boolean      -- back to normal from firing or recovering
);

ALTER TABLE alerts ADD CONSTRAINT alerts_rule_id_fkey
    FOREIGN KEY (rule_id) REFERENCES alert_rules (id) ON DELETE SET NULL;
