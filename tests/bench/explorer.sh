#!/usr/bin/env bash
# explorer.sh - `make bench`, explorer part (issue 14, Benchmark): GET
# /api/v1/executions on a demo fleet, each figure against its goal.
#
# Usage: tests/bench/explorer.sh VARDIR
# Starts its own stack (PORT 18680, PGPORT 54690 unless set; groups
# dashboards, for /readyz, and aggregates), loads a demo fleet
# (BENCH_AGENTS agents, default 50, BENCH_EXECUTIONS executions, default
# 1,000,000; the goal is stated at 10,000,000: set it for the real figure)
# over 30 days ending now, then with wrk -t1 -c1 (one request at a time,
# BENCH_SECONDS each, default 5): GET /executions?sort=slowest over 24h and
# 30d, the first page newest first, a page of the slowest 30d after a
# cursor 20 pages deep; goal p99 <= 20 ms; costliest over the last hour
# (no goal: it has no index). Then a CSV export of
# BENCH_EXPORT rows (default 1,000,000 or all the fleet has), timed with
# curl, the aggregates workers' peak RSS (VmHWM) read after it: goal
# >= 200,000 rows/s and < 32 MiB. Any non-2xx answer fails the run.
set -euo pipefail
cd "$(dirname "$0")/../.."
VARDIR=${1:?usage: tests/bench/explorer.sh VARDIR}
mkdir -p "$VARDIR" && VARDIR=$(cd "$VARDIR" && pwd)
export PORT=${PORT:-18680} PGPORT=${PGPORT:-54690} FLEETDASHD=${FLEETDASHD:-bin/fleetdashd}
export WORKERS=${WORKERS:-2}
export FLEETDASH_GROUPS="dashboards aggregates"
export FLEETDASH_DEMO=0
AGENTS=${BENCH_AGENTS:-50}
EXECUTIONS=${BENCH_EXECUTIONS:-1000000}
EXPORT=${BENCH_EXPORT:-1000000}
BASE=http://127.0.0.1:$PORT
psql_() { psql -X -q -At -v ON_ERROR_STOP=1 -h "$VARDIR/pgsock" -p "$PGPORT" -U postgres fleetdash "$@"; }
fail() { echo "explorer bench: FAILED: $*" >&2; exit 1; }
trap 'deploy/stack.sh down "$VARDIR" >/dev/null 2>&1 || true' EXIT
. tests/bench/schema.sh
bench_stack_up "$VARDIR"

have=$(psql_ -c 'SELECT count(*) FROM executions')
if [[ $have -ne $EXECUTIONS ]]; then
    t0=$(date +%s)
    psql_ -c 'SET client_min_messages = warning; TRUNCATE executions, problems, alerts, canary_deployments, agent_versions, agents CASCADE; SELECT rollup_reset()' >/dev/null
    # shellcheck disable=SC2046
    psql_ -1 -c 'SET client_min_messages = warning' $(printf -- '-f %s ' sql/dev/demo_fleet_*.sql) >/dev/null
    psql_ -c "SET client_min_messages = warning; SELECT count(*) FROM demo_fleet($AGENTS, $EXECUTIONS, 30)" >/dev/null
    psql_ -c 'VACUUM ANALYZE executions' >/dev/null
    echo "demo fleet: $AGENTS agents, $EXECUTIONS executions loaded in $(( $(date +%s) - t0 )) s"
fi
end=$(psql_ -c "SELECT to_char(max(started_at) AT TIME ZONE 'UTC' + interval '1 second', 'YYYY-MM-DD\"T\"HH24:MI:SS\"Z\"') FROM executions")
day=$(psql_ -c "SELECT to_char(max(started_at) AT TIME ZONE 'UTC' - interval '1 day', 'YYYY-MM-DD\"T\"HH24:MI:SS\"Z\"') FROM executions")
month=$(psql_ -c "SELECT to_char(max(started_at) AT TIME ZONE 'UTC' - interval '30 days', 'YYYY-MM-DD\"T\"HH24:MI:SS\"Z\"') FROM executions")

run() { bench_one_at_a_time "$1" "$BASE$2" "${GOAL:-goal p99 <= 20 ms}"; }
echo "executions: $(psql_ -c 'SELECT count(*) FROM executions')"
run "newest, 24h, first page" "/api/v1/executions?from=$day&to=$end"
run "slowest, 24h" "/api/v1/executions?sort=slowest&from=$day&to=$end"
run "slowest, 30d" "/api/v1/executions?sort=slowest&from=$month&to=$end"
cursor=
for _ in $(seq 20); do
    cursor=$(curl -fsS "$BASE/api/v1/executions?sort=slowest&from=$month&to=$end&limit=100${cursor:+&cursor=$cursor}" |
             /usr/bin/python3 -c 'import json,sys; print(json.load(sys.stdin)["next_cursor"])')
done
run "slowest, 30d, 2,000 rows deep" "/api/v1/executions?sort=slowest&from=$month&to=$end&cursor=$cursor"
# costliest has no index of its own (sql/013_explorer.sql): it sorts the
# runs of its range, so it is measured over the last hour, not a day (a day
# of 10M takes seconds and meets the aggregates' statement timeout)
hour=$(psql_ -c "SELECT to_char(max(started_at) AT TIME ZONE 'UTC' - interval '1 hour', 'YYYY-MM-DD\"T\"HH24:MI:SS\"Z\"') FROM executions")
GOAL="no goal: no index" run "costliest, last hour" "/api/v1/executions?sort=costliest&from=$hour&to=$end"

# the export: one request, timed; the workers' peak memory after it
t0=$(date +%s.%N)
rows=$(curl -fsS "$BASE/api/v1/executions?format=csv&from=$month&to=$end&limit=$EXPORT" | wc -l)
t1=$(date +%s.%N)
rows=$((rows - 1))
hwm=0
for pid in $(pgrep -P "$(cat "$VARDIR/run/aggregates.pid" 2>/dev/null || echo 1)" 2>/dev/null || true); do
    kb=$(awk '/VmHWM/ {print $2}' "/proc/$pid/status" 2>/dev/null || echo 0)
    (( kb > hwm )) && hwm=$kb
done
printf 'CSV export: %s rows in %.2f s = %.0f rows/s (goal >= 200,000); worker peak RSS %s KiB (goal < 32 MiB)\n' \
    "$rows" "$(echo "$t1 - $t0" | bc)" "$(echo "$rows / ($t1 - $t0)" | bc)" "$hwm"
