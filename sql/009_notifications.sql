-- 009_notifications.sql - receivers, the notification outbox and its attempts
--
-- Notifications are an outbox: notifications_enqueue() (functions/
-- 23_notifications.sql) writes one row per alert, receiver, event and
-- firing round that needs telling, in the database, never blocking whoever
-- raised the alert; the `sender` job of the alerts group claims due rows
-- (FOR UPDATE SKIP LOCKED and a lease: several senders never send one row
-- at once), POSTs them and records every attempt. A row that gave up is
-- `failed` and stays listed.

-- receivers - where notifications go: a webhook URL (absolute http or
-- https), a secret that signs the body (HMAC-SHA256; write-only in the
-- API), extra headers (a flat object of strings).
CREATE TABLE receivers (
    id          uuid        PRIMARY KEY DEFAULT gen_random_uuid(),
    name        text        NOT NULL UNIQUE CHECK (char_length(name) BETWEEN 1 AND 255),
    url         text        NOT NULL CHECK (url ~* '^https?://[^/?#\s]+' AND char_length(url) <= 2000),
    secret      text        CHECK (char_length(secret) BETWEEN 1 AND 1000),
    headers     jsonb       NOT NULL DEFAULT '{}' CHECK (jsonb_typeof(headers) = 'object'),
    created_at  timestamptz NOT NULL DEFAULT now(),
    updated_at  timestamptz NOT NULL DEFAULT now()
);
COMMENT ON TABLE receivers IS 'Webhook receivers of notifications: URL, secret, headers';
CREATE INDEX receivers_created_idx ON receivers (created_at DESC, id DESC);

-- What was notified of an alert. firing_round counts the alert's firings
-- (an acknowledged alert firing again starts round 2, ...);
-- notified_round is the last round whose firing was enqueued (0: none);
-- notified_resolved, whether its resolution was. The partial indexes are
-- what notifications_enqueue() reads: open alerts not yet told (kept
-- while a silence mutes them) and resolved alerts whose firing was told
-- and their end not yet.
ALTER TABLE alerts ADD COLUMN firing_round integer NOT NULL DEFAULT 1 CHECK (firing_round >= 1);
ALTER TABLE alerts ADD COLUMN notified_round integer NOT NULL DEFAULT 0
    CHECK (notified_round >= 0);
ALTER TABLE alerts ADD COLUMN notified_resolved boolean NOT NULL DEFAULT false;
CREATE INDEX alerts_notify_firing_idx ON alerts (starts_at)
    WHERE status <> 'resolved' AND notified_round < firing_round AND receivers <> '{}';
CREATE INDEX alerts_notify_resolved_idx ON alerts (ends_at)
    WHERE status = 'resolved' AND notified_round > 0 AND NOT notified_resolved;


-- notifications - the outbox: one message to one receiver about one alert.
-- status: pending (waiting for its next attempt at next_attempt_at),
-- sending (claimed by a sender until next_attempt_at, its lease), delivered
-- (a 2xx), failed (a final answer: a 4xx other than 429, or the attempts
-- or the time ran out). The payload is the body sent, Alertmanager's
-- webhook format version 4 plus a "fleetdash" member.
CREATE TABLE notifications (
    id              uuid        PRIMARY KEY DEFAULT gen_random_uuid(),
    alert_id        uuid        NOT NULL REFERENCES alerts (id) ON DELETE CASCADE,
    -- SET NULL: a deleted receiver's notifications stay as a record
    -- (receiver_delete() fails those still waiting)
    receiver_id     uuid        REFERENCES receivers (id) ON DELETE SET NULL,
    receiver_name   text        NOT NULL,
    event           text        NOT NULL CHECK (event IN ('firing', 'resolved')),
    firing_round    integer     NOT NULL CHECK (firing_round >= 1),
    -- sent as the Idempotency-Key header: the same on every attempt
    idempotency_key uuid        NOT NULL DEFAULT gen_random_uuid() UNIQUE,
    status          text        NOT NULL DEFAULT 'pending'
                                CHECK (status IN ('pending', 'sending', 'delivered', 'failed')),
    attempts        integer     NOT NULL DEFAULT 0 CHECK (attempts >= 0),
    next_attempt_at timestamptz,
    last_code       integer,
    last_error      text,
    payload         jsonb       NOT NULL,
    created_at      timestamptz NOT NULL DEFAULT now(),
    updated_at      timestamptz NOT NULL DEFAULT now(),
    delivered_at    timestamptz,
    CONSTRAINT notifications_once UNIQUE (alert_id, receiver_id, event, firing_round),
    CONSTRAINT notifications_due_check CHECK (
        (status IN ('pending', 'sending')) = (next_attempt_at IS NOT NULL)
        AND (status = 'delivered') = (delivered_at IS NOT NULL))
);
COMMENT ON TABLE notifications IS
    'Outbox of webhook notifications: one per alert, receiver, event and firing round';
-- The senders' queue: due rows, oldest due first (FOR UPDATE SKIP LOCKED).
CREATE INDEX notifications_due_idx ON notifications (next_attempt_at)
    WHERE status IN ('pending', 'sending');
-- GET /notifications: newest first, by alert and/or status.
CREATE INDEX notifications_created_idx ON notifications (created_at DESC, id DESC);
CREATE INDEX notifications_alert_idx ON notifications (alert_id, created_at DESC, id DESC);
CREATE INDEX notifications_status_idx ON notifications (status, created_at DESC, id DESC);
CREATE INDEX notifications_receiver_idx ON notifications (receiver_id) WHERE receiver_id IS NOT NULL;


-- notification_attempts - every POST of a notification: when, how long,
-- the HTTP status (NULL when none came: a timeout, a refused connection),
-- the error.
CREATE TABLE notification_attempts (
    id              bigint      GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    notification_id uuid        NOT NULL REFERENCES notifications (id) ON DELETE CASCADE,
    attempt         integer     NOT NULL CHECK (attempt >= 1),
    at              timestamptz NOT NULL,
    duration_ms     double precision NOT NULL CHECK (duration_ms >= 0),
    code            integer,
    error           text,
    UNIQUE (notification_id, attempt)
);
COMMENT ON TABLE notification_attempts IS 'Every delivery attempt of a notification';
