#!/usr/bin/env bash
# state.sh - `make bench`, the fleet's state: GET /api/v1/state on the demo
# fleet (issue 14, Benchmark: p99 <= 10 ms on 10,000,000 executions).
#
# Usage: tests/bench/state.sh VARDIR
# Starts its own stack (PORT 18680, PGPORT 54400 unless set; groups
# dashboards, for /readyz, alerts, maintenance), loads a demo fleet
# (BENCH_AGENTS agents, default 50, BENCH_EXECUTIONS executions, default
# 10,000,000, 30 days, ending now: loaded afresh every run, since the
# snapshot's last hour ends now) and lets the maintenance job fold it; adds
# 10,000 alerts (1,000 open, a tenth of them critical), then with wrk -t1
# (BENCH_SECONDS each, default 5, after 1 s of warm-up) GET /api/v1/state
# with -c1 (one request at a time: the latency of one snapshot) and -c8;
# the time of state_snapshot() in psql beside them. Any non-2xx answer
# fails the run. Tears the stack down on exit.
set -euo pipefail
cd "$(dirname "$0")/../.."
VARDIR=${1:?usage: tests/bench/state.sh VARDIR}
mkdir -p "$VARDIR" && VARDIR=$(cd "$VARDIR" && pwd)
export PORT=${PORT:-18680} PGPORT=${PGPORT:-54400} FLEETDASHD=${FLEETDASHD:-bin/fleetdashd}
export WORKERS=${WORKERS:-4}
export FLEETDASH_GROUPS="dashboards alerts maintenance"
export FLEETDASH_DEMO=0
SECONDS_EACH=${BENCH_SECONDS:-5}
AGENTS=${BENCH_AGENTS:-50}
EXECUTIONS=${BENCH_EXECUTIONS:-10000000}
URL=http://127.0.0.1:$PORT/api/v1/state
psql_() { psql -X -q -At -v ON_ERROR_STOP=1 -h "$VARDIR/pgsock" -p "$PGPORT" -U postgres fleetdash "$@"; }
fail() { echo "state bench: FAILED: $*" >&2; exit 1; }

trap 'deploy/stack.sh down "$VARDIR" >/dev/null 2>&1 || true' EXIT
. tests/bench/schema.sh
bench_stack_up "$VARDIR"

# ------------------------------------------------------------ the fleet
t0=$(date +%s.%N)
psql_ -c 'TRUNCATE executions, problems, alerts, canary_deployments, agent_versions, agents
          CASCADE; SELECT rollup_reset()' >/dev/null
# shellcheck disable=SC2046
psql_ -1 -c 'SET client_min_messages = warning' $(printf -- '-f %s ' sql/dev/demo_fleet_*.sql) >/dev/null
psql_ -c "SET client_min_messages = warning; SELECT count(*) FROM demo_fleet($AGENTS, $EXECUTIONS, 30)" >/dev/null
t1=$(date +%s.%N)
echo "demo fleet: $AGENTS agents, $EXECUTIONS executions loaded in $(printf '%.0f' "$(echo "$t1 - $t0" | bc)") s"
# 10,000 more alerts over 30 days: every tenth open, a tenth of those critical;
# agents beat now, a fifth of them long ago (silent)
psql_ <<'SQL' >/dev/null
WITH ag AS (SELECT array_agg(id ORDER BY id) AS ids FROM agents)
INSERT INTO alerts (fingerprint, severity, title, agent_id, status, starts_at, last_seen_at,
                    ends_at, resolved_by, created_at, updated_at)
SELECT left(md5('state-bench:' || i), 16),
       CASE WHEN i % 100 = 0 THEN 'critical' ELSE (ARRAY['high', 'medium', 'low'])[1 + i % 3] END,
       format('State bench alert %s', i), ag.ids[1 + i % cardinality(ag.ids)],
       CASE WHEN i % 10 = 0 THEN 'firing' ELSE 'resolved' END,
       now() - i * interval '4 minutes', now() - i * interval '4 minutes',
       CASE WHEN i % 10 <> 0 THEN now() - i * interval '4 minutes' + interval '1 minute' END,
       CASE WHEN i % 10 <> 0 THEN 'bench' END,
       now() - i * interval '4 minutes', now() - i * interval '4 minutes'
  FROM generate_series(1, 10000) i, ag;
UPDATE agents SET last_heartbeat_at = CASE WHEN abs(hashtext(id::text)) % 5 = 0
                                           THEN now() - interval '1 day' ELSE now() END,
                  state = 'busy', current_task = 'bench';
VACUUM ANALYZE alerts;
VACUUM ANALYZE agents;
SQL
# the maintenance job folds what is pending (the demo fleet rebuilt the rollups)
for _ in $(seq 1 60); do
    [[ $(psql_ -c 'SELECT count(*) FROM (SELECT 1 FROM rollup_delta LIMIT 1) d') == 0 ]] && break
    sleep 1
done
curl -sf "$URL" > "$VARDIR/state.json" || fail "GET /api/v1/state did not answer 200"
summary=$(/usr/bin/python3 -c 'import json,sys; b=json.load(open(sys.argv[1]));
print("health %s, %d conditions, %d agents, %d completions, throughput %s" % (
    b["health"]["status"], len(b["health"]["conditions"]), len(b["agents"]),
    len(b["recent_completions"]), json.dumps(b["throughput"])))' "$VARDIR/state.json")
echo "$summary"

# ------------------------------------------------------------ the snapshot
errors=0
run() {  # run CONNECTIONS -> "rps p50 p99 errors requests"
    wrk -t1 -c"$1" -d1s -s tests/bench/report.lua "$URL" >/dev/null
    local line
    line=$(wrk -t1 -c"$1" -d"${SECONDS_EACH}s" -s tests/bench/report.lua "$URL" | grep '^RESULT')
    echo "${line#RESULT }"
}
sql_ms=$(psql_ <<'SQL' | tail -1
SELECT state_snapshot() \g /dev/null
\timing on
SELECT state_snapshot() \g /dev/null
SQL
)
echo "state_snapshot() in psql: ${sql_ms#Time: }"
echo "wrk -t1, ${SECONDS_EACH}s each, $(nproc) cores, $WORKERS workers per group"
printf "%-28s %9s %9s %9s  %s\n" "GET /api/v1/state" "req/s" "p50 ms" "p99 ms" "goal p99 <= 10 ms"
for c in 1 8; do
    read -r rps p50 p99 errs n < <(run "$c")
    errors=$((errors + errs))
    verdict=$(awk -v p="$p99" 'BEGIN { print (p <= 10 ? "ok" : "MISSED") }')
    printf "%-28s %9s %9s %9s  %s (%s requests)\n" "  -c$c" "$rps" "$p50" "$p99" "$verdict" "$n"
done
((errors == 0)) || fail "$errors wrk requests failed (non-2xx or socket errors)"
