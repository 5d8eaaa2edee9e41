#!/usr/bin/env bash
# alerts.sh - `make bench`, alerts part: one evaluator cycle over 1,000
# enabled alert rules on the demo fleet of 10,000,000 executions (50
# agents, 30 days), half of them group_by=agent (about 25,000 instances).
#
# Usage: tests/bench/alert_rules.sh VARDIR
# Starts its own stack (PORT 18390, PGPORT 54390 unless set; only the
# maintenance group, so that no evaluator job of the stack's competes for
# the rules; BENCH_EXECUTIONS to change the fleet size, BENCH_CYCLES the
# cycles timed, default 10), loads the demo fleet into an empty database
# (kept for the next run, as tests/bench/aggregates.sh does) and lets the
# maintenance job fold it, makes the 1,000 rules (thresholds on every
# metric of /metrics/{name} over 5m to 1d, cost spikes, error categories,
# silent agents; windows 5m to 7d), then times BENCH_CYCLES cycles of
# alert_rules_evaluate(now()) one second apart on one connection, as the
# job runs them (target: <= 1,000 ms each), beside the naive way: one
# agg_metric_at() query per rule (no instance per agent), timed in the same
# run. Tears the stack down.
set -euo pipefail
cd "$(dirname "$0")/../.."
VARDIR=${1:?usage: tests/bench/alert_rules.sh VARDIR}
mkdir -p "$VARDIR" && VARDIR=$(cd "$VARDIR" && pwd)
export PORT=${PORT:-18390} PGPORT=${PGPORT:-54390} FLEETDASHD=${FLEETDASHD:-bin/fleetdashd}
export GROUPS="maintenance"
export FLEETDASH_DEMO=0
EXECUTIONS=${BENCH_EXECUTIONS:-10000000}
CYCLES=${BENCH_CYCLES:-10}
PGHOST=$VARDIR/pgsock
psql_() { psql -X -q -At -h "$PGHOST" -p "$PGPORT" -U postgres fleetdash "$@"; }

trap 'deploy/stack.sh down "$VARDIR" >/dev/null 2>&1 || true' EXIT
. tests/bench/schema.sh
bench_stack_up "$VARDIR"

if [[ $(psql_ -c 'SELECT count(*) FROM executions') -lt $EXECUTIONS ]]; then
    psql_ -c 'TRUNCATE executions, problems, alerts, alert_rules, canary_deployments,
              agent_versions, agents CASCADE; SELECT rollup_reset()' >/dev/null
    t0=$(date +%s.%N)
    # shellcheck disable=SC2046
    psql_ -1 -c 'SET client_min_messages = warning' $(printf -- '-f %s ' sql/dev/demo_fleet_*.sql) >/dev/null
    psql_ -c "SET client_min_messages = warning; SELECT count(*) FROM demo_fleet(50, $EXECUTIONS, 30)" >/dev/null
    t1=$(date +%s.%N)
    echo "demo fleet: $EXECUTIONS executions loaded in $(echo "$t1 - $t0" | bc) s"
fi
until [[ $(psql_ -c 'SELECT count(*) FROM rollup_delta') == 0 ]]; do sleep 1; done

# 1,000 rules: 500 thresholds per agent (six metrics, four windows), 500
# fleet-wide or per model (thresholds, cost spikes, error categories) and
# silent agents; their thresholds such that some fire.
psql_ >/dev/null <<'SQL'
DELETE FROM alerts; DELETE FROM alert_rules;
SELECT count(alert_rule_create(jsonb_build_object(
    'name', 'bench agents ' || i,
    'kind', 'threshold',
    'metric', (ARRAY['error_rate', 'success_rate', 'avg_latency', 'p95_latency', 'total_cost',
                     'total_executions'])[1 + i % 6],
    'op', CASE WHEN i % 6 = 1 THEN '<' ELSE '>' END,
    'threshold', (ARRAY[30, 70, 2000, 3000, 5, 100])[1 + i % 6] * (1 + (i % 7) / 10.0),
    'window', (ARRAY['5m', '15m', '1h', '1d'])[1 + i % 4],
    'for', '1m', 'keep_firing_for', '5m', 'group_by', 'agent', 'min_executions', 1)))
  FROM generate_series(1, 500) i;
SELECT count(alert_rule_create(jsonb_build_object(
    'name', 'bench fleet ' || i,
    'kind', (ARRAY['threshold', 'threshold', 'cost_spike', 'error_category', 'agent_silent'])[1 + i % 5],
    'metric', CASE WHEN i % 5 IN (0, 1) THEN (ARRAY['error_rate', 'p95_latency'])[1 + i % 2] END,
    'threshold', CASE i % 5 WHEN 2 THEN 3 WHEN 3 THEN 50 WHEN 4 THEN NULL ELSE 40 END,
    'category', CASE WHEN i % 5 = 3 THEN 'timeout' END,
    'window', (ARRAY['5m', '1h', '6h', '1d', '7d'])[1 + (i / 5) % 5],
    'group_by', CASE WHEN i % 5 = 4 THEN 'agent' ELSE (ARRAY['none', 'model'])[1 + i % 2] END)))
  FROM generate_series(1, 500) i;
VACUUM ANALYZE alert_rules;
SQL

# cycles: one warm-up (the session plans its statements), then CYCLES
{
    echo '\timing on'
    for _ in $(seq 0 "$CYCLES"); do
        echo "SELECT 'cycle', rules, instances, fired, cleared, failed FROM alert_rules_evaluate(now(), interval '1 second');"
        echo "SELECT pg_sleep(1);"
    done
} | psql_ -F ' ' 2>&1 | awk '
    /^cycle / { line = $0; next }
    /^Time: / && line != "" { n++; if (n > 1) print $2, line; line = "" }' > "$VARDIR/cycles.txt"
sort -n "$VARDIR/cycles.txt" | awk '
    { ms[NR] = $1; rules = $3; instances = $4; fired += $5 }
    END {
        printf "alerts evaluator: %d rules, %d instances, %d cycles: p50 %.0f ms, max %.0f ms (target <= 1000 ms), %d alerts raised\n",
               rules, instances, NR, ms[int((NR + 1) / 2)], ms[NR], fired }'
psql_ -c "SELECT 'grouped rules: ' || count(*) FILTER (WHERE group_by = 'agent') || ', open alerts: '
                 || (SELECT count(*) FROM alerts WHERE status <> 'resolved')
            FROM alert_rules"

# the naive way: one aggregate query per rule, no instances
psql_ <<'SQL'
DO $$
DECLARE
    r alert_rules;
    t timestamptz := clock_timestamp();
BEGIN
    FOR r IN SELECT * FROM alert_rules WHERE kind = 'threshold' LOOP
        PERFORM agg_metric_at(agg_query(jsonb_build_object(
                    'from', now() - make_interval(secs => r.window_seconds), 'to', now())),
                r.metric);
    END LOOP;
    RAISE NOTICE 'naive: one agg_metric_at() per threshold rule (%, no instances): % ms',
        (SELECT count(*) FROM alert_rules WHERE kind = 'threshold'),
        round(extract(epoch FROM clock_timestamp() - t)::numeric * 1000);
END $$;
SQL
