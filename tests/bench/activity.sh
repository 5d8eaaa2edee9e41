#!/usr/bin/env bash
# activity.sh - `make bench`, the activity feed (issue 14, Benchmark): GET
# /api/v1/activity first page and a page 10,000 events deep, p99 <= 10 ms on
# the demo fleet with 1,000,000 other events.
#
# Usage: tests/bench/activity.sh VARDIR
# Starts its own stack (PORT 18680, PGPORT 54410 unless set; groups
# dashboards, for /readyz, and alerts), loads a demo fleet (BENCH_AGENTS
# agents, default 50, BENCH_EXECUTIONS executions, default 1,000,000: the
# feed does not read executions but for type=execution, and its failed ones
# are events; the goal is stated at 10,000,000) and BENCH_EVENTS more events
# (default 1,000,000) of every type over 30 days, spread over the agents,
# a type's share as in a busy fleet (rules and dashboards rare). Kept between
# runs while the counts and sql/ are the same. Then with wrk -t1 -c1 (one
# request at a time, BENCH_SECONDS each, default 5): the first page, a page
# 10,000 events deep (before=), a follower's page (after=), the rarest type,
# one agent, severity=critical, and two types; each against p99 <= 10 ms;
# and one agent's last day (no goal: below). Any non-2xx answer fails the run. Tears the stack down on exit.
set -euo pipefail
cd "$(dirname "$0")/../.."
VARDIR=${1:?usage: tests/bench/activity.sh VARDIR}
mkdir -p "$VARDIR" && VARDIR=$(cd "$VARDIR" && pwd)
export PORT=${PORT:-18680} PGPORT=${PGPORT:-54410} FLEETDASHD=${FLEETDASHD:-bin/fleetdashd}
export WORKERS=${WORKERS:-2}
export FLEETDASH_GROUPS="dashboards alerts"
export FLEETDASH_DEMO=0
AGENTS=${BENCH_AGENTS:-50}
EXECUTIONS=${BENCH_EXECUTIONS:-1000000}
EVENTS=${BENCH_EVENTS:-1000000}
BASE=http://127.0.0.1:$PORT/api/v1/activity
psql_() { psql -X -q -At -v ON_ERROR_STOP=1 -h "$VARDIR/pgsock" -p "$PGPORT" -U postgres fleetdash "$@"; }
fail() { echo "activity bench: FAILED: $*" >&2; exit 1; }
trap 'deploy/stack.sh down "$VARDIR" >/dev/null 2>&1 || true' EXIT
. tests/bench/schema.sh
bench_stack_up "$VARDIR"

have=$(psql_ -c "SELECT (SELECT count(*) FROM executions) || ' ' ||
                        (SELECT count(*) FROM activity_events WHERE resource_id LIKE 'bench-%')")
if [[ $have != "$EXECUTIONS $EVENTS" ]]; then
    t0=$(date +%s)
    psql_ -c 'SET client_min_messages = warning; TRUNCATE executions, problems, alerts, canary_deployments, agent_versions, agents, activity_staged, activity_events CASCADE; SELECT rollup_reset()' >/dev/null
    # shellcheck disable=SC2046
    psql_ -1 -c 'SET client_min_messages = warning' $(printf -- '-f %s ' sql/dev/demo_fleet_*.sql) >/dev/null
    psql_ -c "SET client_min_messages = warning; SELECT count(*) FROM demo_fleet($AGENTS, $EXECUTIONS, 30)" >/dev/null
    psql_ -c 'SELECT activity_sequence()' >/dev/null
    # the other events, oldest first; in the shares of a busy fleet
    psql_ <<SQL >/dev/null
WITH ag AS (SELECT array_agg(id ORDER BY id) AS ids FROM agents),
     ev AS (SELECT i, CASE WHEN i % 100 < 40 THEN 'alert' WHEN i % 100 < 65 THEN 'problem'
                           WHEN i % 100 < 80 THEN 'deployment' WHEN i % 100 < 90 THEN 'agent'
                           WHEN i % 100 < 96 THEN 'version' WHEN i % 100 < 99 THEN 'dashboard'
                           ELSE 'rule' END AS type
              FROM generate_series(1, $EVENTS) i)
INSERT INTO activity_events (id, type, at, agent_id, title, status, severity, link, resource_id)
SELECT nextval('activity_events_id_seq'), ev.type,
       now() - interval '30 days' + (ev.i::double precision / $EVENTS) * interval '30 days',
       CASE WHEN ev.type NOT IN ('dashboard', 'rule') THEN ag.ids[1 + ev.i % cardinality(ag.ids)] END,
       'Bench event ' || ev.i, 'open',
       CASE WHEN ev.type IN ('alert', 'problem')
            THEN (ARRAY['critical', 'high', 'medium', 'low'])[1 + (ev.i / 7) % 4] END,
       '/api/v1/' || ev.type || 's/' || ev.i, 'bench-' || ev.i
  FROM ev, ag
 ORDER BY ev.i;
VACUUM ANALYZE activity_events;
SQL
    echo "demo fleet: $AGENTS agents, $EXECUTIONS executions and $EVENTS more events loaded in $(( $(date +%s) - t0 )) s"
fi
psql_ -c "SELECT 'feed: ' || sum(n) || ' events (' || string_agg(type || ' ' || n, ', ' ORDER BY n DESC) || ')'
            FROM (SELECT type, count(*) AS n FROM activity_events GROUP BY type) t"
top=$(psql_ -c 'SELECT max(id) FROM activity_events')
agent=$(psql_ -c 'SELECT id FROM agents ORDER BY id LIMIT 1')

run() { bench_one_at_a_time "$1" "$BASE$2" "${GOAL:-goal p99 <= 10 ms}"; }
run "first page" ""
run "10,000 events deep (before=)" "?before=$((top - 10000))"
run "following (after=, 10,000 back)" "?after=$((top - 10000))"
run "rarest type (type=rule)" "?type=rule"
run "rarest type, 10,000 deep" "?type=rule&before=$((top - 10000))"
run "one agent" "?agent_id=$agent"
run "severity=critical" "?severity=critical"
run "two types (version, dashboard)" "?type=version&type=dashboard"
# Not a goal: a time range is a filter on the probes, which read by id; the
# demo fleet's failed executions were sequenced in the order they were loaded,
# not by time, so the agent's whole history of them is read to find a day.
GOAL="no goal: backfilled events" run "last 24 hours, one agent" "?agent_id=$agent&from=$(date -u -d '1 day ago' +%Y-%m-%dT%H:%M:%SZ)"
