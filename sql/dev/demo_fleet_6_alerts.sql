-- demo_fleet_6_alerts.sql - demo_fleet_alerts(): the demo fleet's alerts
-- (development only, see demo_fleet_1_helpers.sql; called by
-- demo_fleet_rows(), demo_fleet_7_rows.sql)

-- demo_fleet_alerts(days, end, key, salts) - alerts of every severity for
-- the window of P_DAYS days ending at P_END, from the rows made before:
-- this run's problems (found by their fingerprint, demo_fleet_problems()),
-- the agents of demo_agent (quality, latency, cost, rolled-back canaries,
-- incidents) with their models from demo_model, and their rows in agents
-- (missed heartbeats); P_KEY and P_S from demo_fleet_rows(). Inserts
-- alerts; returns how many.
CREATE OR REPLACE FUNCTION demo_fleet_alerts(
    p_days integer, p_end timestamptz, p_key text, p_s bigint[])
RETURNS integer
LANGUAGE plpgsql AS $fn$
DECLARE
    v_start    timestamptz := p_end - make_interval(days => p_days);
    v_alerts   integer;
BEGIN
    INSERT INTO alerts (id, fingerprint, severity, title, message, agent_id, execution_id, status,
                        acknowledged_at, acknowledged_by, ends_at, resolved_by, starts_at,
                        last_seen_at, created_at, updated_at)
    SELECT md5(p_key || ':alert:' || al.k)::uuid, left(md5(p_key || ':fingerprint:' || al.k), 16),
           al.severity, al.title, al.message, al.agent_id,
           al.execution_id, al.status, al.ack_at,
           CASE WHEN al.ack_at IS NOT NULL
                THEN (ARRAY['alice@example.com', 'bob@example.com', 'chen@example.com',
                            'dana@example.com'])[1 + floor(al.u * 4)::integer] END,
           al.resolved_at,
           CASE WHEN al.status = 'resolved'
                THEN (ARRAY['alice@example.com', 'bob@example.com', 'oncall-bot'])[1 + floor(al.u * 3)::integer] END,
           al.created_at, greatest(al.created_at, coalesce(al.resolved_at, p_end)),
           al.created_at, coalesce(al.resolved_at, al.ack_at, al.created_at)
      FROM (SELECT al0.*,
                   -- acknowledged: always; resolved: mostly acknowledged first
                   CASE WHEN al0.status = 'acknowledged' OR (al0.status = 'resolved' AND al0.u < 0.7)
                        THEN least(al0.created_at + (3 + 50 * al0.u) * interval '1 minute',
                                   coalesce(al0.resolved_at, 'infinity'), greatest(al0.created_at, p_end)) END AS ack_at
              FROM (
        -- every critical problem raised one, some high ones too
        SELECT 'p:' || p.id AS k, p.severity, 'Problem: ' || p.title AS title,
               format('%s occurrences so far', p.occurrences) AS message,
               p.agent_id, p.execution_id,
               CASE p.status WHEN 'resolved' THEN 'resolved' WHEN 'investigating' THEN 'acknowledged'
                             ELSE 'firing' END AS status,
               p.resolved_at, least(p.first_seen_at + interval '2 minutes', p_end) AS created_at,
               demo_hu(hashtext(p.id::text), p_s[5]) AS u
          FROM problems p
         WHERE p.fingerprint LIKE 'demo-' || substr(p_key, 1, 8) || ':%'
           AND (p.severity = 'critical' OR (p.severity = 'high' AND demo_hu(hashtext(p.id::text), p_s[6]) < 0.4))
        UNION ALL
        -- agent quality: critical and warning agents, now
        SELECT 'q:' || d.a, CASE d.tier WHEN 'critical' THEN 'critical' ELSE 'medium' END,
               format('%s: success rate below %s %%', d.name, CASE d.tier WHEN 'critical' THEN 70 ELSE 90 END),
               format('Success rate over the last 24 h is about %s %%', round((d.target * 100)::numeric)),
               d.id, NULL,
               CASE WHEN d.u_misc < 0.5 THEN 'firing' ELSE 'acknowledged' END, NULL,
               p_end - (1 + 20 * d.u_misc) * interval '1 hour', d.u_misc
          FROM demo_agent d WHERE d.tier <> 'healthy'
        UNION ALL
        -- the same, earlier in the window, since resolved
        SELECT 'q0:' || d.a, CASE d.tier WHEN 'critical' THEN 'high' ELSE 'low' END,
               format('%s: success rate dropped', d.name),
               'Success rate fell below its 7-day average', d.id, NULL, 'resolved',
               v_start + (0.3 + 0.4 * d.u_inc) * make_interval(days => p_days) + interval '5 hours',
               v_start + (0.3 + 0.4 * d.u_inc) * make_interval(days => p_days), d.u_inc
          FROM demo_agent d WHERE d.tier <> 'healthy' OR d.u_inc < 0.2
        UNION ALL
        -- slow agents
        SELECT 'l:' || d.a, CASE WHEN d.lat_factor > 1.8 THEN 'high' ELSE 'medium' END,
               format('%s: p95 latency above %s s', d.name, round(m.lat_med * d.lat_factor * 2.5 / 1000)),
               'p95 latency over the last hour is above its threshold', d.id, NULL,
               CASE WHEN d.u_dep < 0.4 THEN 'resolved' WHEN d.u_dep < 0.7 THEN 'acknowledged' ELSE 'firing' END,
               CASE WHEN d.u_dep < 0.4 THEN p_end - (2 + 30 * d.u_dep) * interval '1 hour' END,
               p_end - (3 + 60 * d.u_dep) * interval '1 hour', d.u_dep
          FROM demo_agent d JOIN demo_model m ON m.m = d.m_pri
         WHERE d.lat_factor > 1.4
        UNION ALL
        -- expensive agents
        SELECT 'c:' || d.a, 'low', format('%s: daily spend above budget', d.name),
               format('Spend on %s today is above the daily budget', m.model), d.id, NULL,
               CASE WHEN d.u_dep2 < 0.5 THEN 'resolved' ELSE 'firing' END,
               CASE WHEN d.u_dep2 < 0.5 THEN p_end - (1 + 100 * d.u_dep2) * interval '1 hour' END,
               p_end - (2 + 120 * d.u_dep2) * interval '1 hour', d.u_dep2
          FROM demo_agent d JOIN demo_model m ON m.m = d.m_pri
         WHERE m.p_out >= 10 AND d.comp_med > 500
        UNION ALL
        -- rolled-back canaries
        SELECT 'd:' || d.a, 'high', format('%s: canary rolled back', d.name),
               'The new version failed more often than the old one; traffic went back to the old version',
               d.id, NULL, CASE WHEN d.u_dep3 < 0.6 THEN 'resolved' ELSE 'acknowledged' END,
               CASE WHEN d.u_dep3 < 0.6 THEN least(x.c + interval '1 hour', p_end) END,
               x.c, d.u_dep3
          FROM demo_agent d,
               LATERAL (SELECT CASE d.nv WHEN 2 THEN d.c2 WHEN 3 THEN d.c3 ELSE d.c4 END AS c) x
         WHERE d.nv >= 2 AND d.last_status = 'rolled_back'
        UNION ALL
        -- agents that stopped beating
        SELECT 'h:' || a.id, 'medium', format('%s: no heartbeat', a.name),
               format('Last heartbeat at %s', to_char(a.last_heartbeat_at AT TIME ZONE 'UTC', 'YYYY-MM-DD HH24:MI:SS "UTC"')),
               a.id, NULL, 'firing', NULL, a.last_heartbeat_at + interval '5 minutes', 0.5
          FROM demo_agent d JOIN agents a ON a.id = d.id
         WHERE a.state = 'offline'
        UNION ALL
        -- incidents (a tool or provider down for a few hours)
        SELECT 'i:' || d.a, 'critical', format('%s: error rate above 40 %%', d.name),
               format('%s of runs failing', d.msgs[d.inc_cat * 3 + 1]), d.id, NULL,
               'resolved', d.inc_e + interval '10 minutes', d.inc_s + interval '15 minutes', d.u_inc2
          FROM demo_agent d WHERE d.inc_s < 'infinity' AND d.inc_e + interval '10 minutes' <= p_end
              ) al0
           ) al
     ORDER BY al.k;
    GET DIAGNOSTICS v_alerts = ROW_COUNT;
    RETURN v_alerts;
END;
$fn$;

-- end of demo_fleet_6_alerts
