-- 30_streams.sql - the live streams: what the publisher job (workers/publisher.c)
-- hands to nchan, and where a subscriber starts (workers/live.c).
--
-- How it fits together:
--   * The feed (25_activity.sql) gives every event an id in commit order.
--     Writing a staged event NOTIFYs fleetdash_stream, which wakes the
--     publisher; it sequences the feed, then stream_prepare() turns the
--     events after stream_state.position into one message per channel
--     (a batch when there are several: at most one message per channel and
--     round, and a round at most every 100 ms), adds the snapshots that are
--     due and moves the position, all in one transaction. The messages are
--     pending (nchan_id NULL) until the publisher has POSTed them to nchan
--     and stream_published() recorded nchan's id: a publisher killed in
--     between finds them pending and asks nchan whether it took them first.
--   * Channels: activity (every event), alerts (the alert events), state
--     (a snapshot of /state whenever it changed, at most once a second),
--     activity/<16 hex> (the events that pass a filter of GET /activity:
--     types, agent, severities), agents/{id} (the agent's events),
--     dashboards/{id} (the dashboard with
--     its widgets' data, a snapshot whenever the data token or its version
--     moved, at most every refresh interval of its widgets); the last two
--     are made when somebody subscribes.
--   * Every channel has a snapshot among its buffered messages (a new one
--     after 20 messages, or after 30 minutes). A subscriber
--     without a usable last event id starts with the newest snapshot and
--     then gets every message after it; one with an id gets what followed
--     it. stream_start() says where.
--   * nginx keeps nchan's messages in shared memory, lost on a reload or
--     restart. The publisher notices (the nchan id of the message that
--     opened the generation on the `_generation` channel is another one or
--     none), opens a new generation (stream_reset) and publishes every
--     buffered message again, in order; subscribers that come back meanwhile
--     wait for it (stream_start answers 'wait').

-- Writing a staged feed event wakes the publisher (delivered at commit,
-- once per transaction whatever the number of statements).
CREATE OR REPLACE FUNCTION stream_feed_notify() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    PERFORM pg_notify('fleetdash_stream', '');
    RETURN NULL;
END $$;
CREATE OR REPLACE TRIGGER activity_staged_stream AFTER INSERT ON activity_staged
    FOR EACH STATEMENT EXECUTE FUNCTION stream_feed_notify();

-- stream_channel_valid - the channel names there are.
CREATE OR REPLACE FUNCTION stream_channel_valid(p_channel text) RETURNS boolean
LANGUAGE sql IMMUTABLE AS $$
    SELECT p_channel IN ('activity', 'alerts', 'state')
        OR p_channel ~ '^(agents|dashboards)/[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$'
        OR p_channel ~ '^activity/[0-9a-f]{16}$'
$$;

-- stream_filter_matches - whether a feed event (type, agent, severity)
-- passes an activity channel's filter (stream_interest.filter).
CREATE OR REPLACE FUNCTION stream_filter_matches(p_filter jsonb, p_type text, p_agent text,
                                                 p_severity text) RETURNS boolean
LANGUAGE sql IMMUTABLE AS $$
    SELECT (jsonb_typeof(p_filter -> 'types') IS DISTINCT FROM 'array'
            OR p_filter -> 'types' ? p_type)
       AND (jsonb_typeof(p_filter -> 'agent_id') IS DISTINCT FROM 'string'
            OR p_filter ->> 'agent_id' = p_agent)
       AND (jsonb_typeof(p_filter -> 'severities') IS DISTINCT FROM 'array'
            OR (p_severity IS NOT NULL AND p_filter -> 'severities' ? p_severity))
$$;

-- stream_activity_channel - the channel of the activity feed with these
-- filters (each NULL for any; the filters of GET /activity): one per
-- distinct filter, whatever the order its values came in, made (or noted
-- as wanted) here.
CREATE OR REPLACE FUNCTION stream_activity_channel(p_types text[], p_agent uuid,
                                                   p_severities text[]) RETURNS text
LANGUAGE plpgsql AS $$
DECLARE
    f jsonb;
    ch text;
BEGIN
    f := jsonb_build_object(
        'types', (SELECT jsonb_agg(DISTINCT t ORDER BY t) FROM unnest(p_types) t),
        'agent_id', p_agent,
        'severities', (SELECT jsonb_agg(DISTINCT v ORDER BY v) FROM unnest(p_severities) v));
    ch := 'activity/' || left(md5(f::text), 16);
    INSERT INTO stream_interest AS i (channel, filter) VALUES (ch, f)
    ON CONFLICT (channel) DO UPDATE SET wanted_at = now()
     WHERE i.wanted_at < now() - interval '1 minute';
    RETURN ch;
END $$;

-- stream_state_body - /state without its clock fields (at, uptime, the
-- window of the throughput): what "the state changed" compares.
CREATE OR REPLACE FUNCTION stream_state_body(p_state json) RETURNS text
LANGUAGE sql IMMUTABLE AS $$
    SELECT md5((((p_state::jsonb - 'at') - 'uptime_seconds')
                #- '{throughput,from}' #- '{throughput,to}')::text)
$$;

-- stream_snapshot - the snapshot event of a channel, taken at feed id p_id:
-- activity: the 20 newest events; alerts: the open alerts (most severe
-- first, at most 100); state: /state; agents/{id}: the agent and its 20
-- newest events.
CREATE OR REPLACE FUNCTION stream_snapshot(p_channel text, p_id bigint, p_state json DEFAULT NULL)
RETURNS text LANGUAGE plpgsql STABLE AS $$
DECLARE
    v_agent uuid;
    v_body jsonb;
    v_data jsonb;
BEGIN
    IF p_channel = 'activity' THEN
        RETURN json_build_object('type', 'snapshot', 'id', p_id, 'channel', p_channel, 'events',
            (SELECT coalesce(json_agg(row_to_json(r) ORDER BY r.id DESC), '[]')
               FROM (SELECT * FROM activity_rows WHERE id <= p_id ORDER BY id DESC LIMIT 20) r))::text;
    ELSIF p_channel = 'alerts' THEN
        RETURN json_build_object('type', 'snapshot', 'id', p_id, 'channel', p_channel, 'alerts',
            (SELECT coalesce(json_agg(row_to_json(a) ORDER BY severity_rank(x.severity),
                                      x.starts_at DESC, x.id DESC), '[]')
               FROM (SELECT * FROM alerts WHERE status <> 'resolved'
                      ORDER BY severity_rank(severity), starts_at DESC, id DESC LIMIT 100) x
               JOIN alert_rows a ON a.id = x.id))::text;
    ELSIF p_channel = 'state' THEN
        RETURN json_build_object('type', 'snapshot', 'id', p_id, 'channel', p_channel, 'state',
                                 coalesce(p_state, state_snapshot()))::text;
    ELSIF p_channel LIKE 'agents/%' THEN
        v_agent := substr(p_channel, 8)::uuid;
        RETURN json_build_object('type', 'snapshot', 'id', p_id, 'channel', p_channel,
            'agent', (SELECT row_to_json(g) FROM agent_rows g WHERE g.id = v_agent),
            'events', (SELECT coalesce(json_agg(row_to_json(r) ORDER BY r.id DESC), '[]')
                         FROM (SELECT v.* FROM activity_rows v JOIN activity_events e ON e.id = v.id
                                WHERE e.agent_id = v_agent AND e.id <= p_id
                                ORDER BY e.id DESC LIMIT 20) r))::text;
    ELSIF p_channel LIKE 'activity/%' THEN
        SELECT i.filter INTO v_body FROM stream_interest i WHERE i.channel = p_channel;
        RETURN json_build_object('type', 'snapshot', 'id', p_id, 'channel', p_channel, 'events',
            (SELECT coalesce(json_agg(row_to_json(r) ORDER BY r.id DESC), '[]')
               FROM (SELECT v.* FROM activity_rows v JOIN activity_events e ON e.id = v.id
                      WHERE e.id <= p_id
                        AND stream_filter_matches(v_body, e.type, e.agent_id::text, e.severity)
                      ORDER BY e.id DESC LIMIT 20) r))::text;
    ELSIF p_channel LIKE 'dashboards/%' THEN
        SELECT d.body::jsonb INTO v_body FROM dashboard_read(substr(p_channel, 12)::uuid) d;
        IF v_body IS NOT NULL THEN
            v_data := dashboard_data(substr(p_channel, 12)::uuid)::jsonb;
            v_body := jsonb_set(v_body, '{widgets}', coalesce(
                (SELECT jsonb_agg(w.value || jsonb_build_object('data',
                                      coalesce(v_data -> (w.value ->> 'id'), 'null'::jsonb))
                                  ORDER BY w.ordinality)
                   FROM jsonb_array_elements(v_body -> 'widgets') WITH ORDINALITY w), '[]'));
        END IF;
        RETURN json_build_object('type', 'snapshot', 'id', p_id, 'channel', p_channel,
                                 'dashboard', v_body)::text;
    END IF;
    RETURN NULL;
END $$;

-- stream_dashboard_due - whether dashboard channel p_channel takes a new
-- snapshot now: its widgets' shortest refresh interval has passed since the
-- last look, and the data token or the dashboard's version moved (noted),
-- or its last message is 30 minutes old (nchan keeps one an hour).
CREATE OR REPLACE FUNCTION stream_dashboard_due(p_channel text) RETURNS boolean
LANGUAGE plpgsql AS $$
DECLARE
    i stream_interest;
    every integer;
    now_token text;
BEGIN
    SELECT * INTO i FROM stream_interest WHERE channel = p_channel;
    SELECT coalesce(min(w.refresh_interval_seconds), 60) INTO every
      FROM dashboard_widgets w WHERE w.dashboard_id = substr(p_channel, 12)::uuid;
    IF i.checked_at IS NOT NULL AND i.checked_at > now() - make_interval(secs => every) THEN
        RETURN false;
    END IF;
    now_token := agg_token() || ':' || coalesce((SELECT d.version::text FROM dashboards d
                                                 WHERE d.id = substr(p_channel, 12)::uuid), '-');
    UPDATE stream_interest SET checked_at = now(), token = now_token WHERE channel = p_channel;
    RETURN i.token IS DISTINCT FROM now_token
        OR NOT EXISTS (SELECT 1 FROM stream_messages m
                        WHERE m.channel = p_channel AND m.created_at > now() - interval '30 minutes');
END $$;

-- stream_prepare - one round of the publisher: the events after the
-- position as one message per channel, the snapshots due (p_state: look at
-- /state this round), the position moved, old messages dropped (p_buffer
-- per channel, nchan's buffer length); answers every pending message in
-- order with the nchan id of its channel's newest published one.
CREATE OR REPLACE FUNCTION stream_prepare(p_limit integer, p_state boolean, p_buffer integer)
RETURNS TABLE (channel text, seq bigint, event text, body text, last_nchan_id text)
LANGUAGE plpgsql AS $$
DECLARE
    pos bigint;
    newpos bigint;
    st stream_state;
    state json;
    ch text;
BEGIN
    SELECT * INTO st FROM stream_state FOR UPDATE;
    pos := st.position;
    SELECT coalesce(max(e.id), pos) INTO newpos
      FROM (SELECT a.id FROM activity_events a WHERE a.id > pos ORDER BY a.id LIMIT p_limit) e;

    INSERT INTO stream_messages (channel, first_id, last_id, event, snapshot, body)
    WITH ev AS (
        SELECT r.id, r.type, (r.agent ->> 'id') AS agent_id, r.severity,
               row_to_json(r)::text AS body
          FROM activity_rows r
         WHERE r.id > pos AND r.id <= newpos),
    routed AS (
        SELECT 'activity' AS channel, ev.id, ev.type, ev.body FROM ev
        UNION ALL
        SELECT 'alerts', ev.id, ev.type, ev.body FROM ev WHERE ev.type = 'alert'
        UNION ALL
        SELECT i.channel, ev.id, ev.type, ev.body
          FROM ev JOIN stream_interest i ON i.channel = 'agents/' || ev.agent_id
        UNION ALL
        SELECT i.channel, ev.id, ev.type, ev.body
          FROM ev JOIN stream_interest i
            ON i.filter IS NOT NULL
           AND stream_filter_matches(i.filter, ev.type, ev.agent_id, ev.severity))
    SELECT r.channel, min(r.id), max(r.id),
           CASE WHEN count(*) = 1 THEN min(r.type) ELSE 'batch' END, false,
           CASE WHEN count(*) = 1 THEN min(r.body)
                ELSE json_build_object('type', 'batch', 'id', max(r.id), 'channel', r.channel,
                                       'events', json_agg(r.body::json ORDER BY r.id))::text END
      FROM routed r
     GROUP BY r.channel
     ORDER BY r.channel;

    -- snapshots: none yet in this channel, 20 messages since the last one
    -- (what a new subscriber catches up on after it), the last one older
    -- than 30 minutes (nchan keeps a message an hour), or (state) the state
    -- changed
    FOR ch IN SELECT c FROM unnest(ARRAY['activity', 'alerts', 'state']) c
              UNION ALL SELECT i.channel FROM stream_interest i LOOP
        IF ch LIKE 'dashboards/%' THEN
            IF p_state AND stream_dashboard_due(ch) THEN
                INSERT INTO stream_messages (channel, first_id, last_id, event, snapshot, body)
                SELECT ch, newpos, newpos, 'snapshot', true, b.body
                  FROM (SELECT stream_snapshot(ch, newpos) AS body) b
                 WHERE b.body IS DISTINCT FROM (SELECT m.body FROM stream_messages m
                                                 WHERE m.channel = ch
                                                 ORDER BY m.seq DESC LIMIT 1)
                    OR NOT EXISTS (SELECT 1 FROM stream_messages m
                                    WHERE m.channel = ch
                                      AND m.created_at > now() - interval '30 minutes');
            END IF;
            CONTINUE;
        END IF;
        IF ch = 'state' AND p_state THEN
            state := state_snapshot();
            IF stream_state_body(state) IS DISTINCT FROM st.state_hash THEN
                INSERT INTO stream_messages (channel, first_id, last_id, event, snapshot, body)
                VALUES (ch, newpos, newpos, 'snapshot', true, stream_snapshot(ch, newpos, state));
                UPDATE stream_state SET state_hash = stream_state_body(state), state_at = now();
                CONTINUE;
            END IF;
        END IF;
        IF NOT EXISTS (
            SELECT 1 FROM stream_messages s
             WHERE s.channel = ch AND s.snapshot AND s.created_at > now() - interval '30 minutes'
               AND (SELECT count(*) FROM stream_messages m
                     WHERE m.channel = ch AND m.seq > s.seq) < 20) THEN
            INSERT INTO stream_messages (channel, first_id, last_id, event, snapshot, body)
            VALUES (ch, newpos, newpos, 'snapshot', true, stream_snapshot(ch, newpos));
            IF ch = 'state' THEN
                UPDATE stream_state
                   SET state_hash = stream_state_body((SELECT (m.body::json) -> 'state'
                                                         FROM stream_messages m
                                                        WHERE m.channel = 'state'
                                                        ORDER BY m.seq DESC LIMIT 1)),
                       state_at = now();
            END IF;
        END IF;
    END LOOP;

    UPDATE stream_state SET position = newpos, updated_at = now();

    -- what nchan no longer holds (it keeps p_buffer per channel)
    DELETE FROM stream_messages m
     USING (SELECT x.channel, x.seq,
                   row_number() OVER (PARTITION BY x.channel ORDER BY x.seq DESC) AS n
              FROM stream_messages x) old
     WHERE m.channel = old.channel AND m.seq = old.seq AND old.n > p_buffer
       AND m.nchan_id IS NOT NULL;

    RETURN QUERY
    SELECT m.channel, m.seq, m.event, m.body,
           (SELECT p.nchan_id FROM stream_messages p
             WHERE p.channel = m.channel AND p.nchan_id IS NOT NULL
             ORDER BY p.seq DESC LIMIT 1)
      FROM stream_messages m
     WHERE m.nchan_id IS NULL
     ORDER BY m.seq;
END $$;

-- stream_published - what nchan took: message (channel, seq) has nchan id
-- p_ids[i], in order.
CREATE OR REPLACE FUNCTION stream_published(p_channels text[], p_seqs bigint[], p_ids text[])
RETURNS integer LANGUAGE plpgsql AS $$
DECLARE
    gen bigint;
    i integer;
BEGIN
    SELECT generation INTO gen FROM stream_state;
    FOR i IN 1 .. coalesce(array_length(p_seqs, 1), 0) LOOP
        UPDATE stream_messages m
           SET nchan_id = p_ids[i], generation = gen, published_at = now(),
               prev_nchan_id = (SELECT p.nchan_id FROM stream_messages p
                                 WHERE p.channel = m.channel AND p.seq < m.seq
                                   AND p.generation = gen AND p.nchan_id IS NOT NULL
                                 ORDER BY p.seq DESC LIMIT 1)
         WHERE m.channel = p_channels[i] AND m.seq = p_seqs[i];
        INSERT INTO stream_deliveries (channel, nchan_id, seq)
        VALUES (p_channels[i], p_ids[i], p_seqs[i])
        ON CONFLICT ON CONSTRAINT stream_deliveries_pkey DO UPDATE SET seq = excluded.seq;
    END LOOP;
    RETURN coalesce(array_length(p_seqs, 1), 0);
END $$;

-- stream_reset - nchan's memory is gone (its `_generation` channel holds
-- p_sentinel now): a new generation, every buffered message pending again.
CREATE OR REPLACE FUNCTION stream_reset(p_sentinel text) RETURNS bigint
LANGUAGE plpgsql AS $$
DECLARE
    gen bigint;
BEGIN
    UPDATE stream_state SET generation = generation + 1, sentinel = p_sentinel, updated_at = now()
    RETURNING generation INTO gen;
    UPDATE stream_messages
       SET nchan_id = NULL, prev_nchan_id = NULL, generation = NULL, published_at = NULL
     WHERE nchan_id IS NOT NULL;
    RETURN gen;
END $$;

-- stream_start - where a subscriber of p_channel starts, given the last
-- event id it sent (p_feed_id, a feed id, or p_nchan_id, the id nchan wrote
-- in its `id:` line; both NULL: none). outcome:
--   resume:   after nchan_id (what followed the message of that id)
--   snapshot: with the channel's newest snapshot; nchan_id is the message
--             before it (NULL: nchan's oldest is the snapshot)
--   wait:     not ready (a generation being published again, a snapshot
--             not yet made); ask again shortly
-- sentinel: the generation's, which the caller compares with nchan's.
CREATE OR REPLACE FUNCTION stream_start(p_channel text, p_feed_id bigint, p_nchan_id text,
                                        OUT outcome text, OUT nchan_id text, OUT sentinel text)
LANGUAGE plpgsql AS $$
DECLARE
    m stream_messages;
BEGIN
    SELECT s.sentinel INTO sentinel FROM stream_state s;
    IF p_channel LIKE 'agents/%' OR p_channel LIKE 'dashboards/%' THEN
        INSERT INTO stream_interest AS i (channel) VALUES (p_channel)
        ON CONFLICT (channel) DO UPDATE SET wanted_at = now()
         WHERE i.wanted_at < now() - interval '1 minute';
    END IF;
    IF p_nchan_id IS NOT NULL THEN
        SELECT x.* INTO m FROM stream_deliveries d
          JOIN stream_messages x ON x.channel = d.channel AND x.seq = d.seq
         WHERE d.channel = p_channel AND d.nchan_id = p_nchan_id;
    ELSIF p_feed_id IS NOT NULL THEN
        SELECT x.* INTO m FROM stream_messages x
         WHERE x.channel = p_channel AND x.last_id <= p_feed_id
         ORDER BY x.last_id DESC, x.seq DESC LIMIT 1;
    END IF;
    IF m.seq IS NOT NULL THEN
        IF m.nchan_id IS NULL THEN
            outcome := 'wait';
        ELSE
            outcome := 'resume';
            nchan_id := m.nchan_id;
        END IF;
        RETURN;
    END IF;
    SELECT x.* INTO m FROM stream_messages x
     WHERE x.channel = p_channel AND x.snapshot ORDER BY x.seq DESC LIMIT 1;
    IF m.seq IS NULL OR m.nchan_id IS NULL THEN
        PERFORM pg_notify('fleetdash_stream', '');
        outcome := 'wait';
        RETURN;
    END IF;
    outcome := 'snapshot';
    nchan_id := m.prev_nchan_id;
END $$;

-- stream_wake - the publisher is asked to look now (a subscriber found
-- nchan's generation is not the one recorded).
CREATE OR REPLACE FUNCTION stream_wake() RETURNS void LANGUAGE sql AS $$
    SELECT pg_notify('fleetdash_stream', '')
$$;

-- stream_interest_stale - channels made on demand not subscribed to for 10
-- minutes: the publisher asks nchan whether anybody still listens.
CREATE OR REPLACE FUNCTION stream_interest_stale() RETURNS SETOF text LANGUAGE sql AS $$
    SELECT channel FROM stream_interest WHERE wanted_at < now() - interval '10 minutes'
$$;

-- stream_interest_keep - p_listened (still subscribed) stay, p_dropped go
-- with their messages.
CREATE OR REPLACE FUNCTION stream_interest_keep(p_listened text[], p_dropped text[])
RETURNS void LANGUAGE sql AS $$
    UPDATE stream_interest SET wanted_at = now() WHERE channel = ANY (p_listened);
    DELETE FROM stream_interest WHERE channel = ANY (p_dropped);
    DELETE FROM stream_messages WHERE channel = ANY (p_dropped);
$$;
