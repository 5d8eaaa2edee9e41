-- 019_streams.sql - what the live streams (GET /api/v1/stream/...) need:
-- the messages the publisher job hands to nginx's nchan module, so that a
-- restarted publisher neither loses nor repeats one, a reloaded nginx gets
-- them again, and a subscriber's last event id finds its place.
--
-- stream_messages: the last messages of every channel (at most the length
-- of nchan's buffer, nginx.conf's nchan_message_buffer_length), each with
-- its JSON body. A row is written (nchan_id NULL, "pending") in the same
-- transaction that moves stream_position past the events it carries; it
-- gets its nchan_id once nchan has taken it. last_id is the feed id the
-- message brings its channel up to (a snapshot: the feed id it was taken
-- at). prev_nchan_id is the nchan id of the channel's message before it in
-- the same generation: a subscriber that must start with a snapshot is
-- handed to nchan just after that one.
CREATE TABLE stream_messages (
    channel       text        NOT NULL,
    seq           bigint      GENERATED ALWAYS AS IDENTITY,
    first_id      bigint      NOT NULL,
    last_id       bigint      NOT NULL,
    event         text        NOT NULL,
    snapshot      boolean     NOT NULL,
    body          text        NOT NULL,
    generation    bigint,
    nchan_id      text,
    prev_nchan_id text,
    created_at    timestamptz NOT NULL DEFAULT now(),
    published_at  timestamptz,
    PRIMARY KEY (channel, seq)
);
COMMENT ON TABLE stream_messages IS
    'Live streams: the buffered messages of each channel, pending until nchan took them';
CREATE INDEX stream_messages_pending_idx ON stream_messages (seq) WHERE nchan_id IS NULL;
CREATE INDEX stream_messages_last_idx ON stream_messages (channel, last_id, seq);

-- stream_deliveries: every nchan id a message had (a reloaded nginx gives
-- it a new one), so that a client resuming with the id nchan wrote in its
-- SSE `id:` line finds its message again.
CREATE TABLE stream_deliveries (
    channel  text   NOT NULL,
    nchan_id text   NOT NULL,
    seq      bigint NOT NULL,
    PRIMARY KEY (channel, nchan_id),
    FOREIGN KEY (channel, seq) REFERENCES stream_messages (channel, seq) ON DELETE CASCADE
);
CREATE INDEX stream_deliveries_seq_idx ON stream_deliveries (channel, seq);

-- stream_state: one row. position: the feed id published up to (every
-- event at or below it is in stream_messages or was). generation: which
-- life of nchan's memory the published ids belong to, and sentinel the
-- nchan id of the message that opened it on the `_generation` channel:
-- when nchan answers another one (a reload, a restart), its memory is gone
-- and the publisher gives every buffered message again. state_hash: the
-- last state snapshot published, without its clock fields.
CREATE TABLE stream_state (
    only_row    boolean     PRIMARY KEY DEFAULT true CHECK (only_row),
    position    bigint      NOT NULL,
    generation  bigint      NOT NULL DEFAULT 0,
    sentinel    text,
    state_hash  text,
    state_at    timestamptz,
    updated_at  timestamptz NOT NULL DEFAULT now()
);
COMMENT ON TABLE stream_state IS 'Live streams: how far the publisher got, and nchan''s generation';
-- Streams start at the end of the feed as it is now: what came before is
-- in GET /activity, and in each channel's first snapshot.
INSERT INTO stream_state (position)
SELECT coalesce(max(id), 0) FROM activity_events;

-- stream_interest: the channels made on demand (agents/{id},
-- dashboards/{id}) that somebody subscribed to, and when last; the publisher
-- publishes to them while they are wanted (nginx.conf bounds how many there
-- are). A dashboard's: the data token and version its last snapshot was
-- computed at, and when (a new one at most every refresh interval of its
-- widgets, and only when the token moved).
-- An activity channel with filters (activity/<16 hex>) has them in filter:
-- {"types": [...], "agent_id": "...", "severities": [...]}, each null for
-- any.
CREATE TABLE stream_interest (
    channel    text        PRIMARY KEY,
    wanted_at  timestamptz NOT NULL DEFAULT now(),
    token      text,
    checked_at timestamptz,
    filter     jsonb
);
COMMENT ON TABLE stream_interest IS 'Live streams: channels made on demand, while subscribed';
