#!/usr/bin/env bash
# aggregates.sh - `make bench`, third part: the aggregates group on the
# demo fleet of 10,000,000 executions (50 agents, 30 days), same run.
#
# Usage: tests/bench/aggregates.sh VARDIR
# First the same three requests uncached on a fleet of 1,000,000 (its own
# stack and database in VARDIR-1m, PORT/PGPORT + 5; BENCH_SMALL to change
# its size, 0 to skip it): the cost per answer must not grow with the data
# (goal: each 10M figure within 1.5 x of its 1M figure). Then it starts its own stack (PORT 18380, PGPORT 54370 unless set; BENCH_EXECUTIONS
# to change the fleet size), loads the demo fleet into an empty database and
# lets the maintenance job fold it, then with wrk -t1 -c8 (BENCH_SECONDS each,
# default 10; WORKERS per group, default 4: two per core, since each worker
# recomputes its cached answers once a second):
#   GET /api/v1/executions/summary?time_range=30d
#   (each also uncached: a different query every request, so that
#   PostgreSQL computes every answer instead of the shared answer cache;
#   goals: cached p99 <= 10 ms each; uncached >= 1,500 req/s for the
#   summary, >= 400 for the time series, >= 200 for the dashboard)
#   the same numbers the naive way (seed 000: PERCENTILE_CONT over raw rows),
#   timed in psql beside it: the ratio of its time to the endpoint's p50
#   (target >= 200 x)
#   GET /api/v1/executions/timeseries?time_range=30d&interval=1h  (720 buckets)
#   GET /api/v1/dashboards/default?include_data=true (ten widgets)
# the three cached ones again with the answers job off (the baseline of
# their p99: each answer computed at the turn of its second while the other
# requests wait),
# and the rollup refresh: 100,000 executions ingested while the job is
# stopped, then the time of one rollup_refresh() folding them; the size of
# the rollup tables against the raw table. Tears the stack down.
set -euo pipefail
cd "$(dirname "$0")/../.."
VARDIR=${1:?usage: tests/bench/aggregates.sh VARDIR}
mkdir -p "$VARDIR" && VARDIR=$(cd "$VARDIR" && pwd)
export PORT=${PORT:-18380} PGPORT=${PGPORT:-54370} FLEETDASHD=${FLEETDASHD:-bin/fleetdashd}
export WORKERS=${WORKERS:-4}
export FLEETDASH_GROUPS="dashboards ingest streams aggregates maintenance"
export FLEETDASH_DEMO=0
SECONDS_EACH=${BENCH_SECONDS:-10}
EXECUTIONS=${BENCH_EXECUTIONS:-10000000}
SMALL=${BENCH_SMALL:-1000000}
# the 1M run is this script again with BENCH_SCALE_ONLY set: it prints the
# three uncached RESULT lines and stops
SCALE_ONLY=${BENCH_SCALE_ONLY:-}
small=""
if [[ -z $SCALE_ONLY && $SMALL -gt 0 ]]; then
    small=$(PORT=$((PORT + 5)) PGPORT=$((PGPORT + 5)) BENCH_EXECUTIONS=$SMALL BENCH_SCALE_ONLY=1 \
            "$0" "$VARDIR-1m")
fi
BASE=http://127.0.0.1:$PORT
PGHOST=$VARDIR/pgsock
psql_() { psql -X -q -At -h "$PGHOST" -p "$PGPORT" -U postgres fleetdash "$@"; }

trap 'deploy/stack.sh down "$VARDIR" >/dev/null 2>&1 || true' EXIT
# The loaded fleet is kept for the next run (the load takes minutes), but
# only with the schema it was loaded under (schema.sh).
. tests/bench/schema.sh
bench_stack_up "$VARDIR"

if [[ $(psql_ -c 'SELECT count(*) FROM executions') -lt $EXECUTIONS ]]; then
    psql_ -c 'SET client_min_messages = warning; TRUNCATE executions, problems, alerts, canary_deployments,
              agent_versions, agents CASCADE; SELECT rollup_reset()' >/dev/null
    t0=$(date +%s.%N)
    # demo_fleet() is no migration: its files are loaded here (sql/dev/)
    # shellcheck disable=SC2046
    psql_ -1 -c 'SET client_min_messages = warning' $(printf -- '-f %s ' sql/dev/demo_fleet_*.sql) >/dev/null
    psql_ -c "SET client_min_messages = warning; SELECT count(*) FROM demo_fleet(50, $EXECUTIONS, 30)" >/dev/null
    t1=$(date +%s.%N)
    echo "demo fleet: $EXECUTIONS executions loaded in $(echo "$t1 - $t0" | bc) s" >&2
fi
# the maintenance job folds the load's deltas and then makes the fleet's
# minutes of the buckets they touched (64 a second); wait until it is done
until [[ $(psql_ -c 'SELECT (SELECT count(*) FROM rollup_delta) + (SELECT count(*) FROM rollup_1m_stale)') == 0 ]]; do
    sleep 1
done
psql_ -c 'VACUUM ANALYZE' >/dev/null

# run NAME URL [PATHS_FILE] -> "NAME rps p50 p99 errors requests"
run() {
    BENCH_PATHS_FILE=${3:-} wrk -t1 -c8 -d1s -s tests/bench/report.lua "$2" >/dev/null
    local line
    line=$(BENCH_PATHS_FILE=${3:-} wrk -t1 -c8 -d"${SECONDS_EACH}s" -s tests/bench/report.lua "$2" |
           grep '^RESULT')
    echo "$1 ${line#RESULT }"
}

# The uncached paths: every request a query no one has asked in the same
# second (answers are cached per data token, and the token moves each
# second), so each is computed by PostgreSQL: a different from= each, 5,000
# in turn; 1,000 copies of the default dashboard (made once, kept with the
# fleet).
now=$(date +%s)
for i in $(seq 1 5000); do
    printf '/api/v1/executions/summary?from=%s\n' "$(date -u -d "@$((now - 30 * 86400 + i))" +%Y-%m-%dT%H:%M:%SZ)"
done > "$VARDIR/summary.paths"
sed 's|summary?from=\(.*\)|timeseries?interval=1h\&from=\1|' "$VARDIR/summary.paths" > "$VARDIR/timeseries.paths"
copies=$(psql_ -c "SELECT count(*) FROM dashboards WHERE name LIKE 'Bench copy %'")
if [[ $copies -lt 1000 ]]; then
    widgets=$(curl -sf "$BASE/api/v1/dashboards/default" | /usr/bin/python3 -c '
import json, sys
print(json.dumps([{k: w[k] for k in ("type", "title", "config", "position")} for w in json.load(sys.stdin)["widgets"]]))')
    for i in $(seq $((copies + 1)) 1000); do
        curl -sf -o /dev/null -X POST "$BASE/api/v1/dashboards" -H 'Content-Type: application/json' \
             -d "{\"name\": \"Bench copy $i\", \"widgets\": $widgets}"
    done
fi
psql_ -c "SELECT '/api/v1/dashboards/' || id || '?include_data=true' FROM dashboards
           WHERE name LIKE 'Bench copy %' ORDER BY name LIMIT 1000" > "$VARDIR/dashboards.paths"

if [[ -n $SCALE_ONLY ]]; then
    run "summary" "$BASE/" "$VARDIR/summary.paths"
    run "timeseries" "$BASE/" "$VARDIR/timeseries.paths"
    run "dashboard" "$BASE/" "$VARDIR/dashboards.paths"
    exit 0
fi

results=$(
    run "GET /executions/summary 30d" "$BASE/api/v1/executions/summary?time_range=30d"
    run "  the same, uncached (*)" "$BASE/" "$VARDIR/summary.paths"
    run "GET /executions/timeseries 30d 1h" "$BASE/api/v1/executions/timeseries?time_range=30d&interval=1h"
    run "  the same, uncached (*)" "$BASE/" "$VARDIR/timeseries.paths"
    run "GET /dashboards/default?include_data" "$BASE/api/v1/dashboards/default?include_data=true"
    run "  the same, uncached (*)" "$BASE/" "$VARDIR/dashboards.paths"
)

# The baseline of the cached p99s: the same three cached requests with the
# aggregates group's answers job off (FLEETDASH_ANSWERS_AHEAD=0), so that at
# every turn of the second one request computes each answer while the others
# wait for it. Then the group runs as configured again.
restart_aggregates() {
    deploy/stack.sh stop-group "$VARDIR" aggregates >/dev/null
    deploy/stack.sh start-group "$VARDIR" aggregates >/dev/null
    until curl -sf -o /dev/null "$BASE/api/v1/executions/summary?time_range=1h"; do sleep 0.2; done
}
FLEETDASH_ANSWERS_AHEAD=0 restart_aggregates
baseline=$(
    run "summary" "$BASE/api/v1/executions/summary?time_range=30d"
    run "timeseries" "$BASE/api/v1/executions/timeseries?time_range=30d&interval=1h"
    run "dashboard" "$BASE/api/v1/dashboards/default?include_data=true"
)
restart_aggregates

# The naive way (seed 000's summary query), three runs, the fastest.
naive=$(psql_ <<'SQL' | grep -o '[0-9.]* ms' | sort -n | head -1 | cut -d' ' -f1
\timing on
\o /dev/null
SELECT count(*), count(*) FILTER (WHERE e.eval_passed), avg(e.latency_ms),
       percentile_cont(0.5) WITHIN GROUP (ORDER BY e.latency_ms),
       percentile_cont(0.95) WITHIN GROUP (ORDER BY e.latency_ms),
       percentile_cont(0.99) WITHIN GROUP (ORDER BY e.latency_ms),
       sum(e.cost_usd), sum(e.prompt_tokens + e.completion_tokens)
  FROM executions e
 WHERE e.started_at > now() - interval '30 days';
\g
\g
SQL
)

fleet=$(psql_ -c 'SELECT count(*) FROM executions')
# Rollup refresh: 100,000 executions arrive while the job is stopped.
deploy/stack.sh stop-group "$VARDIR" maintenance >/dev/null
/usr/bin/python3 tests/bench/gen_executions.py ndjson 100000 "$VARDIR/refresh.ndjson"
curl -sf -X POST "$BASE/api/v1/executions" -H 'Content-Type: application/x-ndjson' \
     --data-binary @"$VARDIR/refresh.ndjson" >/dev/null
refresh=$(psql_ -c '\timing on' -c 'SELECT rollup_refresh()' | grep -o '[0-9.]* ms' | cut -d' ' -f1)
deltas=$(psql_ -c 'SELECT last_folded FROM rollup_state')
sizes=$(psql_ -F ' ' -c "
    SELECT c.relname, pg_total_relation_size(c.oid)
      FROM pg_class c
     WHERE c.relname IN ('executions', 'rollup_1m', 'rollup_5m', 'rollup_1h', 'rollup_6h', 'rollup_1d',
                         'rollup_7d', 'rollup_errors_5m', 'rollup_errors_1h', 'rollup_errors_1d') ORDER BY 2 DESC")

echo "fleetdash aggregates bench: $fleet executions, wrk -t1 -c8, ${SECONDS_EACH}s each, $(nproc) cores, $WORKERS workers per group"
echo "$results" | awk -v naive="$naive" '
    { n = NF; name = $1; for (i = 2; i <= n - 5; i++) name = name " " $i
      goal = NR % 2 ? sprintf("goal p99 <= 10 ms: %s", $(n-2) <= 10 ? "met" : "NOT met") \
                    : sprintf("goal >= %d req/s: %s", want[NR], $(n-4) >= want[NR] ? "met" : "NOT met")
      printf "%-38s %8d req/s  p50 %7.2f ms  p99 %7.2f ms  errors %d  (%s)\n", name, $(n-4), $(n-3), $(n-2), $(n-1), goal
      if (NR == 1) p50 = $(n-3)
      if (NR == 2) p50u = $(n-3)
      if (NR % 2 == 0) big[NR / 2] = $(n-4) }
    BEGIN { want[2] = 1500; want[4] = 400; want[6] = 200 }
    END { printf "(*) every request a new query: computed by PostgreSQL, not answered from the shared answer cache\n"
          printf "naive summary (PERCENTILE_CONT over raw rows, psql): %.1f ms = %.0f x the endpoint p50 (cached), %.0f x uncached\n", naive, naive / p50, naive / p50u }'
echo "$results" | awk 'NR % 2 == 1 { print $(NF-2) }' | paste - <(echo "$baseline" | awk '{ print $(NF-2), $1 }') |
    awk '{ printf "cached %-10s p99 %6.2f ms with the answers job, %6.2f ms without it (baseline): %.2f x the baseline\n",
                  $3, $1, $2, ($2 > 0 ? $1 / $2 : 0) }'
if [[ -n $small ]]; then
    echo "$results" | awk 'NR % 2 == 0 { print $(NF-4) }' | paste - <(echo "$small" | awk '{ print $(NF-4), $1 }') |
        awk -v small="$SMALL" -v big="$EXECUTIONS" '
        function size(n) { return n >= 1e6 ? sprintf("%gM", n / 1e6) : sprintf("%gk", n / 1e3) }
        { r = $1 > 0 ? $2 / $1 : 0
          printf "uncached %-10s at %s %6d req/s, at %s %6d req/s: cost per answer %.2f x (goal <= 1.5 x: %s)\n",
                 $3, size(small), $2, size(big), $1, r, r <= 1.5 ? "met" : "NOT met" }'
fi
echo "rollup refresh: 100,000 new executions ($deltas delta rows) folded in $refresh ms"
echo "$sizes" | awk '
    { size[$1] = $2; order[NR] = $1 }
    END { raw = size["executions"]; roll = 0
          for (i = 1; i <= NR; i++) { n = order[i]; printf "  %-18s %8.1f MiB\n", n, size[n] / 1048576
                                      if (n ~ /^rollup/) roll += size[n] }
          printf "rollup tables: %.1f MiB = %.1f %% of executions (%.1f MiB)\n", roll / 1048576, 100 * roll / raw, raw / 1048576 }'
