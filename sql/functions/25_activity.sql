-- 25_activity.sql - the activity feed: the triggers of its sources, the
-- sequencer that gives events their ids, the rows of the API.
--
-- Ids that grow in commit order. A client following the feed with
-- after=<last id> must never miss an event nor see one twice, even when
-- transactions commit out of the order they started in. An id from a
-- sequence taken at insert does not give this: transaction A takes 10, B
-- takes 11 and commits, a follower reads 11, A commits, and 10 < 11 is never
-- read. So the sources never write the feed. Their triggers (one statement
-- each, set-based over transition tables) write activity_staged in the
-- source's own transaction, and activity_sequence() moves the staged rows
-- it can see into activity_events, taking each id from the sequence there,
-- in a transaction of its own that holds a transaction-level advisory lock
-- until it has committed. Sequencer runs are thus serialized and each one
-- commits before the next takes its first id: every id of a run is greater
-- than every id of the runs before it, and no snapshot sees a run without
-- the runs before it. What a reader sees of the feed is always a prefix of
-- the ids, and what becomes visible later has greater ids: reading after=X
-- misses nothing and repeats nothing. A staged row whose transaction has
-- not committed is invisible to the sequencer and is moved by a later run,
-- with a greater id. The workers call activity_sequence() before every page
-- of /activity (as its own statement, committed before the page is read);
-- it costs one look at an empty table when nothing waits, and the lock only
-- when something does.
--
-- Sources: failed executions (execution_success() false; inserts only: a
-- verdict arriving later does not add an event), deployments created and
-- their status changes, problems opened and their status changes, alert
-- transitions, agents registered or retired, versions activated, dashboards
-- and alert rules created, changed (a new version) and deleted. Executions
-- arrive at 100k+/s through COPY: their trigger is a statement trigger over
-- the transition table the rollup trigger already has, inserting only the
-- failed rows. All executions (type=execution) are not copied: they are read
-- from executions itself (workers/activity.c). Agents going silent and
-- coming back depend on the clock, not on a write: the maintenance job
-- compares them with it every round (agents_watch_silence(), below).
--
-- `at` is when it happened (a row's own time for what was created, now()
-- for a change); the feed is ordered by id, the order events became
-- visible, which is close to but not always the order of `at`.

-- activity_sequence() - moves the visible staged events into the feed with
-- ids in commit order (above); the number moved. Call it as a statement of
-- its own (autocommit): the lock lasts until its transaction commits.
CREATE OR REPLACE FUNCTION activity_sequence() RETURNS integer
LANGUAGE plpgsql AS $$
DECLARE
    moved integer;
BEGIN
    IF NOT EXISTS (SELECT 1 FROM activity_staged) THEN
        RETURN 0;
    END IF;
    PERFORM pg_advisory_xact_lock(hashtext('fleetdash.activity_sequence'));
    -- a new statement: a snapshot taken after the lock, which sees the
    -- previous run committed
    WITH gone AS (DELETE FROM activity_staged RETURNING *),
         ordered AS (SELECT * FROM gone ORDER BY seq)
    INSERT INTO activity_events (id, type, at, agent_id, title, status, severity, link, resource_id)
    SELECT nextval('activity_events_id_seq'), o.type, o.at, o.agent_id, o.title, o.status,
           o.severity, o.link, o.resource_id
      FROM ordered o;
    GET DIAGNOSTICS moved = ROW_COUNT;
    RETURN moved;
END $$;

-- ---------------------------------------------------------------- sources

-- executions: the failed ones of each statement (COPY included).
CREATE OR REPLACE FUNCTION activity_executions_added() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    INSERT INTO activity_staged (type, at, agent_id, title, status, link, resource_id)
    SELECT 'execution_failed', coalesce(e.finished_at, e.started_at), e.agent_id,
           CASE WHEN e.status = 'succeeded' THEN 'Execution failed its evaluation'
                ELSE 'Execution ' || e.status END
           || coalesce(': ' || e.error_category, ''),
           e.status, '/api/v1/executions/' || e.id, e.id::text
      FROM added e
     WHERE NOT execution_success(e.eval_passed, e.status);
    RETURN NULL;
END $$;
CREATE OR REPLACE TRIGGER executions_activity AFTER INSERT ON executions
    REFERENCING NEW TABLE AS added
    FOR EACH STATEMENT EXECUTE FUNCTION activity_executions_added();
ALTER TABLE executions ENABLE ALWAYS TRIGGER executions_activity;

-- In each: the INSERT trigger's statement names new_rows only, the UPDATE
-- trigger's joins old_rows (a statement naming a transition table the
-- trigger lacks does not plan).

-- canary_deployments: created, and each status change.
CREATE OR REPLACE FUNCTION activity_deployments() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF TG_OP = 'INSERT' THEN
        INSERT INTO activity_staged (type, at, agent_id, title, status, link, resource_id)
        SELECT 'deployment', n.created_at, n.agent_id,
               'Deployment started: ' || coalesce(g.name, 'agent') || ' v' || coalesce(v.version, '?'),
               n.status, '/api/v1/deployments/' || n.id, n.id::text
          FROM new_rows n
          LEFT JOIN agents g ON g.id = n.agent_id
          LEFT JOIN agent_versions v ON v.id = n.new_version_id;
    ELSE
        INSERT INTO activity_staged (type, agent_id, title, status, link, resource_id)
        SELECT 'deployment', n.agent_id,
               'Deployment ' || replace(n.status, '_', ' ') || ': ' || coalesce(g.name, 'agent')
               || ' v' || coalesce(v.version, '?'),
               n.status, '/api/v1/deployments/' || n.id, n.id::text
          FROM new_rows n JOIN old_rows o ON o.id = n.id
          LEFT JOIN agents g ON g.id = n.agent_id
          LEFT JOIN agent_versions v ON v.id = n.new_version_id
         WHERE n.status IS DISTINCT FROM o.status;
    END IF;
    RETURN NULL;
END $$;

-- problems: opened, and each status change.
CREATE OR REPLACE FUNCTION activity_problems() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF TG_OP = 'INSERT' THEN
        INSERT INTO activity_staged (type, at, agent_id, title, status, severity, link, resource_id)
        SELECT 'problem', n.created_at, n.agent_id, 'Problem: ' || n.title,
               n.status, n.severity, '/api/v1/problems/' || n.id, n.id::text
          FROM new_rows n;
    ELSE
        INSERT INTO activity_staged (type, agent_id, title, status, severity, link, resource_id)
        SELECT 'problem', n.agent_id, 'Problem ' || n.status || ': ' || n.title,
               n.status, n.severity, '/api/v1/problems/' || n.id, n.id::text
          FROM new_rows n JOIN old_rows o ON o.id = n.id
         WHERE n.status IS DISTINCT FROM o.status;
    END IF;
    RETURN NULL;
END $$;

-- alert_transitions: every status change of an alert (insert only).
CREATE OR REPLACE FUNCTION activity_alert_transitions() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    INSERT INTO activity_staged (type, at, agent_id, title, status, severity, link, resource_id)
    SELECT 'alert', t.at, a.agent_id, 'Alert ' || t.to_status || ': ' || a.title,
           t.to_status, a.severity, '/api/v1/alerts/' || a.id, a.id::text
      FROM new_rows t JOIN alerts a ON a.id = t.alert_id;
    RETURN NULL;
END $$;

-- agents: registered; retired or active again.
CREATE OR REPLACE FUNCTION activity_agents() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF TG_OP = 'INSERT' THEN
        INSERT INTO activity_staged (type, at, agent_id, title, status, link, resource_id)
        SELECT 'agent', n.created_at, n.id, 'Agent registered: ' || n.name, 'registered',
               '/api/v1/agents/' || n.id, n.id::text
          FROM new_rows n;
    ELSE
        INSERT INTO activity_staged (type, agent_id, title, status, link, resource_id)
        SELECT 'agent', n.id,
               CASE WHEN n.is_active THEN 'Agent reactivated: ' ELSE 'Agent retired: ' END || n.name,
               CASE WHEN n.is_active THEN 'reactivated' ELSE 'retired' END,
               '/api/v1/agents/' || n.id, n.id::text
          FROM new_rows n JOIN old_rows o ON o.id = n.id
         WHERE n.is_active IS DISTINCT FROM o.is_active;
    END IF;
    RETURN NULL;
END $$;

-- agents_watch_silence() - agents going silent and coming back: an active
-- agent silent now (agent_silent()) without a row in agent_silence gets one
-- and the feed a "silent" event at the moment its third beat was missed;
-- an agent in agent_silence that is no longer silent loses its row, and
-- when it is active (a beat, a longer interval; not a retirement, which has
-- its own event) the feed says it is back, at the beat that ended the
-- silence (now() when a longer interval ended it). The number of
-- events. The maintenance job calls it every round: one scan of agents,
-- writes only for a change; heartbeats pay nothing. Several maintenance
-- workers may run it at once: a row another one inserted or deleted first
-- is not returned, so no event is written twice.
CREATE OR REPLACE FUNCTION agents_watch_silence() RETURNS integer
LANGUAGE plpgsql AS $$
DECLARE
    written integer;
BEGIN
    WITH fell AS (
        SELECT a.id, coalesce(a.last_heartbeat_at, a.created_at)
                     + make_interval(secs => 3 * a.heartbeat_interval_seconds) AS since
          FROM agents a
         WHERE agent_silent(a.is_active, a.last_heartbeat_at, a.created_at,
                            a.heartbeat_interval_seconds)
           AND NOT EXISTS (SELECT 1 FROM agent_silence s WHERE s.agent_id = a.id)),
    marked AS (
        INSERT INTO agent_silence (agent_id, since)
        SELECT id, since FROM fell
            ON CONFLICT (agent_id) DO NOTHING
        RETURNING agent_id, since),
    ended AS (
        DELETE FROM agent_silence s
         USING agents a
         WHERE a.id = s.agent_id
           AND NOT agent_silent(a.is_active, a.last_heartbeat_at, a.created_at,
                                a.heartbeat_interval_seconds)
        RETURNING a.id, a.name, a.is_active, a.last_heartbeat_at, s.since)
    INSERT INTO activity_staged (type, at, agent_id, title, status, link, resource_id)
    SELECT 'agent', m.since, a.id,
           format('Agent went silent: %s (no heartbeat %s; it beats every %s s)', a.name,
                  coalesce('since ' || api_time(a.last_heartbeat_at), 'since it registered'),
                  a.heartbeat_interval_seconds),
           'silent', '/api/v1/agents/' || a.id, a.id::text
      FROM marked m JOIN agents a ON a.id = m.agent_id
    UNION ALL
    SELECT 'agent', CASE WHEN e.last_heartbeat_at > e.since THEN e.last_heartbeat_at ELSE now() END,
           e.id, 'Agent is back: ' || e.name,
           'back', '/api/v1/agents/' || e.id, e.id::text
      FROM ended e
     WHERE e.is_active;
    GET DIAGNOSTICS written = ROW_COUNT;
    RETURN written;
END $$;

-- agent_versions: activated (inserted active, or made active).
CREATE OR REPLACE FUNCTION activity_versions() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF TG_OP = 'INSERT' THEN
        INSERT INTO activity_staged (type, at, agent_id, title, status, link, resource_id)
        SELECT 'version', n.created_at, n.agent_id,
               'Version activated: ' || coalesce(g.name, 'agent') || ' v' || n.version, 'active',
               '/api/v1/agents/' || n.agent_id || '/versions', n.id::text
          FROM new_rows n LEFT JOIN agents g ON g.id = n.agent_id
         WHERE n.is_active;
    ELSE
        INSERT INTO activity_staged (type, agent_id, title, status, link, resource_id)
        SELECT 'version', n.agent_id,
               'Version activated: ' || coalesce(g.name, 'agent') || ' v' || n.version, 'active',
               '/api/v1/agents/' || n.agent_id || '/versions', n.id::text
          FROM new_rows n JOIN old_rows o ON o.id = n.id LEFT JOIN agents g ON g.id = n.agent_id
         WHERE n.is_active AND NOT o.is_active;
    END IF;
    RETURN NULL;
END $$;

-- dashboards: created, changed (a new version: the dashboard or a widget),
-- deleted.
CREATE OR REPLACE FUNCTION activity_dashboards() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF TG_OP = 'INSERT' THEN
        INSERT INTO activity_staged (type, at, title, status, link, resource_id)
        SELECT 'dashboard', n.created_at, 'Dashboard created: ' || n.name, 'created',
               '/api/v1/dashboards/' || n.id, n.id::text
          FROM new_rows n;
    ELSIF TG_OP = 'UPDATE' THEN
        INSERT INTO activity_staged (type, title, status, link, resource_id)
        SELECT 'dashboard', 'Dashboard changed: ' || n.name, 'updated',
               '/api/v1/dashboards/' || n.id, n.id::text
          FROM new_rows n JOIN old_rows o ON o.id = n.id
         WHERE n.version IS DISTINCT FROM o.version;
    ELSE
        -- a delete that first took the widgets away changed the dashboard
        -- in this transaction: that change is not news
        DELETE FROM activity_staged s USING old_rows o
         WHERE s.type = 'dashboard' AND s.status = 'updated' AND s.resource_id = o.id::text
           AND s.xmin = xid(pg_current_xact_id());
        INSERT INTO activity_staged (type, title, status, link, resource_id)
        SELECT 'dashboard', 'Dashboard deleted: ' || o.name, 'deleted',
               '/api/v1/dashboards/' || o.id, o.id::text
          FROM old_rows o;
    END IF;
    RETURN NULL;
END $$;

-- alert_rules: created, changed (a new version, not an evaluation's
-- stamps), deleted.
CREATE OR REPLACE FUNCTION activity_alert_rules() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF TG_OP = 'INSERT' THEN
        INSERT INTO activity_staged (type, at, agent_id, title, status, severity, link, resource_id)
        SELECT 'rule', n.created_at, n.agent_id, 'Alert rule created: ' || n.name, 'created',
               n.severity, '/api/v1/alert-rules/' || n.id, n.id::text
          FROM new_rows n;
    ELSIF TG_OP = 'UPDATE' THEN
        INSERT INTO activity_staged (type, agent_id, title, status, severity, link, resource_id)
        SELECT 'rule', n.agent_id, 'Alert rule changed: ' || n.name, 'updated', n.severity,
               '/api/v1/alert-rules/' || n.id, n.id::text
          FROM new_rows n JOIN old_rows o ON o.id = n.id
         WHERE n.version IS DISTINCT FROM o.version;
    ELSE
        INSERT INTO activity_staged (type, agent_id, title, status, severity, link, resource_id)
        SELECT 'rule', o.agent_id, 'Alert rule deleted: ' || o.name, 'deleted', o.severity,
               '/api/v1/alert-rules/' || o.id, o.id::text
          FROM old_rows o;
    END IF;
    RETURN NULL;
END $$;

-- The statement triggers of the sources: one per table and event
-- (transition tables allow one event per trigger).
DO $$
DECLARE
    s record;
BEGIN
    FOR s IN SELECT * FROM (VALUES
        ('canary_deployments', 'deployments', 'activity_deployments', false),
        ('problems', 'problems', 'activity_problems', false),
        ('alert_transitions', 'alert_transitions', 'activity_alert_transitions', false),
        ('agents', 'agents', 'activity_agents', false),
        ('agent_versions', 'versions', 'activity_versions', false),
        ('dashboards', 'dashboards', 'activity_dashboards', true),
        ('alert_rules', 'alert_rules', 'activity_alert_rules', true)) AS v(tab, short, fn, deletes)
    LOOP
        EXECUTE format('CREATE OR REPLACE TRIGGER %I AFTER INSERT ON %I
                            REFERENCING NEW TABLE AS new_rows
                            FOR EACH STATEMENT EXECUTE FUNCTION %I()',
                       s.short || '_activity_insert', s.tab, s.fn);
        IF s.tab <> 'alert_transitions' THEN
            EXECUTE format('CREATE OR REPLACE TRIGGER %I AFTER UPDATE ON %I
                                REFERENCING NEW TABLE AS new_rows OLD TABLE AS old_rows
                                FOR EACH STATEMENT EXECUTE FUNCTION %I()',
                           s.short || '_activity_update', s.tab, s.fn);
        END IF;
        IF s.deletes THEN
            EXECUTE format('CREATE OR REPLACE TRIGGER %I AFTER DELETE ON %I
                                REFERENCING OLD TABLE AS old_rows
                                FOR EACH STATEMENT EXECUTE FUNCTION %I()',
                           s.short || '_activity_delete', s.tab, s.fn);
        END IF;
    END LOOP;
END $$;

-- activity_rows - the events as the API answers them (row_to_json ready);
-- the worker reads the page's ids from activity_events first.
CREATE OR REPLACE VIEW activity_rows AS
SELECT e.id, e.type, api_time(e.at) AS at, e.title, e.status, e.severity,
       CASE WHEN e.agent_id IS NULL THEN NULL
            ELSE json_build_object('id', e.agent_id, 'name', g.name) END AS agent,
       e.link
  FROM activity_events e LEFT JOIN agents g ON g.id = e.agent_id;
