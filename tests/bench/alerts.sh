#!/usr/bin/env bash
# alerts.sh - `make bench`, alerts part: the alerts group against the
# FastCGI hello measured in the same run, each figure against its goal
# (issue 13, Benchmark).
#
# Usage: tests/bench/alerts.sh VARDIR
# Starts its own stack (PORT 18480, PGPORT 54390 unless set; groups
# dashboards, for /readyz, ingest, alerts, hello), loads a demo fleet
# (BENCH_AGENTS agents, default 50, BENCH_EXECUTIONS executions, default
# 1,000,000, 30 days, ending now: loaded afresh every run, since the
# evaluator's windows end now), then:
#  1. 100,000 alerts stored with SQL (90 % resolved; 10,000 open, half of
#     them acknowledged; every severity; over 90 days), and with wrk -t1
#     -c32 (BENCH_SECONDS each, default 5, after 1 s of warm-up):
#     GET /api/v1/alerts first page and a deep page (a real cursor ~90 %
#     into the list, walked there with limit=100), the same with
#     ?status=resolved, GET /alerts/{id} (1,000 ids in turn) and
#     /alerts/active, each also with -c1 (one request at a time: on two
#     cores -c32 measures mostly the queue); goal p99 <= 5 ms. Any non-2xx
#     answer fails the run.
#  2. webhooks: a local receiver (alerts_webhook.py, port BENCH_HOOK_PORT,
#     default 19390), a receiver row pointing at it; BENCH_ALERTS (20)
#     alerts raised by hand (POST /api/v1/alerts with receivers [id]): the
#     time from the POST's answer to the webhook's arrival (the sender
#     looks at the outbox every 500 ms). Then BENCH_RULE_SAMPLES (6) rules,
#     one agent each: a batch of failed executions ingested at a random
#     moment, and the time from the ingest request's answer (the condition
#     true) to the webhook, and from the alert's startsAt (the evaluator's
#     cycle) to the webhook. Goal: <= one evaluation interval + 1 s
#     (FLEETDASH_EVALUATION_INTERVAL, default 15).
#  3. the evaluator cycle: the alerts group stopped (so that its job takes
#     no rule), 1,000 enabled rules made with SQL (half group_by=agent;
#     threshold on every metric, cost_spike, error_category, agent_silent;
#     windows 5m to 1d; no metadata filters), then five cycles of
#     alert_rules_evaluate(t, 15 s) at t = now() + 0, 15, ..., 60 s, each
#     timed in psql (the first one makes every instance; the others are
#     the steady state). Goal: <= 1 s at 10,000,000 executions (this run's
#     size is printed beside it).
# Tears the stack down (and the receiver) on exit.
set -euo pipefail
cd "$(dirname "$0")/../.."
VARDIR=${1:?usage: tests/bench/alerts.sh VARDIR}
mkdir -p "$VARDIR" && VARDIR=$(cd "$VARDIR" && pwd)
export PORT=${PORT:-18480} PGPORT=${PGPORT:-54390} FLEETDASHD=${FLEETDASHD:-bin/fleetdashd}
export WORKERS=${WORKERS:-4}
# /readyz is the dashboards group's; ingest takes the executions of part 2
export FLEETDASH_GROUPS="dashboards ingest alerts hello"
export FLEETDASH_DEMO=0
export FLEETDASH_EVALUATION_INTERVAL=${FLEETDASH_EVALUATION_INTERVAL:-15}
SECONDS_EACH=${BENCH_SECONDS:-5}
AGENTS=${BENCH_AGENTS:-50}
EXECUTIONS=${BENCH_EXECUTIONS:-1000000}
N_ALERTS=${BENCH_ALERTS:-20}
N_RULES=${BENCH_RULE_SAMPLES:-6}
HOOK_PORT=${BENCH_HOOK_PORT:-19390}
BASE=http://127.0.0.1:$PORT
PY=/usr/bin/python3
HOOK=tests/bench/alerts_webhook.py
psql_() { psql -X -q -At -v ON_ERROR_STOP=1 -h "$VARDIR/pgsock" -p "$PGPORT" -U postgres fleetdash "$@"; }
fail() { echo "alerts bench: FAILED: $*" >&2; exit 1; }

receiver_pid=
cleanup() {
    [[ -n $receiver_pid ]] && kill "$receiver_pid" 2>/dev/null || true
    deploy/stack.sh down "$VARDIR" >/dev/null 2>&1 || true
}
trap cleanup EXIT
. tests/bench/schema.sh
bench_stack_up "$VARDIR"

mkdir -p "$VARDIR/bench"
cat > "$VARDIR/nginx/conf.d/bench.conf" <<CONF
location = /hello { fastcgi_pass hello; }
CONF
nginx -c "$VARDIR/nginx/nginx.conf" -p "$VARDIR/nginx/" -s reload
sleep 0.5

# ------------------------------------------------------------ the fleet
t0=$(date +%s.%N)
psql_ -c 'TRUNCATE executions, problems, alerts, alert_rules, receivers, notifications,
          canary_deployments, agent_versions, agents CASCADE; SELECT rollup_reset()' >/dev/null
# shellcheck disable=SC2046
psql_ -1 -c 'SET client_min_messages = warning' $(printf -- '-f %s ' sql/dev/demo_fleet_*.sql) >/dev/null
psql_ -c "SET client_min_messages = warning; SELECT count(*) FROM demo_fleet($AGENTS, $EXECUTIONS, 30)" >/dev/null
t1=$(date +%s.%N)
echo "demo fleet: $AGENTS agents, $EXECUTIONS executions loaded in $(printf '%.0f' "$(echo "$t1 - $t0" | bc)") s"

# ------------------------------------------------------------ 1. the lists
# 100,000 alerts: every tenth open (odd tenths firing, even acknowledged),
# the rest resolved; severities 10/20/30/40 %; 70 % about an agent.
psql_ <<'SQL' >/dev/null
TRUNCATE alerts CASCADE;
WITH g AS (
    SELECT i, ('x' || left(md5('bench:u:' || i), 8))::bit(32)::bigint / 4294967296.0 AS u,
           ('x' || left(md5('bench:v:' || i), 8))::bit(32)::bigint / 4294967296.0 AS v
      FROM generate_series(1, 100000) i),
ag AS (SELECT array_agg(id ORDER BY id) AS ids FROM agents),
r AS (
    SELECT g.i, g.u, g.v,
           CASE WHEN g.i % 10 <> 0 THEN 'resolved'
                WHEN g.i % 20 = 0 THEN 'acknowledged' ELSE 'firing' END AS status,
           CASE WHEN g.u < 0.1 THEN 'critical' WHEN g.u < 0.3 THEN 'high'
                WHEN g.u < 0.6 THEN 'medium' ELSE 'low' END AS severity,
           now() - interval '10 minutes' - g.v * interval '90 days' AS starts_at,
           CASE WHEN g.u * 10 - floor(g.u * 10) < 0.7
                THEN ag.ids[1 + (g.i % cardinality(ag.ids))] END AS agent_id
      FROM g, ag)
INSERT INTO alerts (fingerprint, severity, title, message, agent_id, status, labels,
                    starts_at, last_seen_at, occurrences, acknowledged_at, acknowledged_by,
                    ends_at, resolved_by, created_at, updated_at)
SELECT left(md5('bench:fp:' || r.i), 16), r.severity, format('Bench alert %s', r.i),
       'raised by tests/bench/alerts.sh', r.agent_id, r.status,
       jsonb_build_object('team', (ARRAY['payments', 'search', 'support'])[1 + r.i % 3]),
       r.starts_at, r.starts_at + interval '2 minutes', 1 + r.i % 7,
       CASE WHEN r.status = 'acknowledged' THEN r.starts_at + interval '5 minutes' END,
       CASE WHEN r.status = 'acknowledged' THEN 'bench' END,
       CASE WHEN r.status = 'resolved' THEN r.starts_at + interval '5 minutes' END,
       CASE WHEN r.status = 'resolved' THEN 'bench' END,
       r.starts_at, r.starts_at
  FROM r;
VACUUM ANALYZE alerts;
VACUUM ANALYZE alert_transitions;
SQL
counts=$(psql_ -F ' ' -c "SELECT count(*), count(*) FILTER (WHERE status <> 'resolved') FROM alerts")
read -r open_cursor open_total < <($PY $HOOK walk "$BASE/api/v1/alerts" 0.9)
read -r res_cursor res_total < <($PY $HOOK walk "$BASE/api/v1/alerts?status=resolved" 0.9)
psql_ -c "SELECT '/api/v1/alerts/' || id FROM alerts ORDER BY md5(id::text) LIMIT 1000" \
    > "$VARDIR/bench/alert.paths"

# run NAME URL [PATHS_FILE] -> "NAME|rps p50 p99 errors requests|the same with -c1":
# -c32 as the other benchmarks (throughput; its p50/p99 are mostly queueing
# on two cores), then -c1 (the latency of one request at a time).
run() {
    BENCH_PATHS_FILE=${3:-} wrk -t1 -c32 -d1s -s tests/bench/report.lua "$2" >/dev/null
    local line line1
    line=$(BENCH_PATHS_FILE=${3:-} wrk -t1 -c32 -d"${SECONDS_EACH}s" -s tests/bench/report.lua "$2" |
           grep '^RESULT')
    line1=$(BENCH_PATHS_FILE=${3:-} wrk -t1 -c1 -d"${SECONDS_EACH}s" -s tests/bench/report.lua "$2" |
            grep '^RESULT')
    echo "$1|${line#RESULT }|${line1#RESULT }"
}
results=$(
    run "FastCGI hello" "$BASE/hello"
    run "GET /alerts (open, first page)" "$BASE/api/v1/alerts"
    run "GET /alerts (open, deep page)" "$BASE/api/v1/alerts?cursor=$open_cursor"
    run "GET /alerts?status=resolved first" "$BASE/api/v1/alerts?status=resolved"
    run "GET /alerts?status=resolved deep" "$BASE/api/v1/alerts?status=resolved&cursor=$res_cursor"
    run "GET /alerts/{id} (1,000 ids)" "$BASE/" "$VARDIR/bench/alert.paths"
    run "GET /alerts/active" "$BASE/api/v1/alerts/active"
)

# ------------------------------------------------------------ 2. webhooks
: > "$VARDIR/bench/hooks.log"
$PY $HOOK receive "$HOOK_PORT" "$VARDIR/bench/hooks.log" &
receiver_pid=$!
sleep 0.5
kill -0 "$receiver_pid" || fail "the webhook receiver did not start on port $HOOK_PORT"
receiver=$(curl -sf -X POST "$BASE/api/v1/receivers" -H 'Content-Type: application/json' \
    -d "{\"name\": \"bench hook $$\", \"url\": \"http://127.0.0.1:$HOOK_PORT/hook\"}" |
    $PY -c 'import json,sys; print(json.load(sys.stdin)["id"])')
manual=$($PY $HOOK manual "$BASE" "$receiver" "$N_ALERTS" "$VARDIR/bench/hooks.log")
ruled=$($PY $HOOK rules "$BASE" "$receiver" "$N_RULES" "$FLEETDASH_EVALUATION_INTERVAL" \
        "$VARDIR/bench/hooks.log")
sleep 1
failed_hooks=$(psql_ -c "SELECT count(*) FROM notifications WHERE status <> 'delivered'")

# ------------------------------------------------------------ 3. the evaluator
deploy/stack.sh stop-group "$VARDIR" alerts >/dev/null
psql_ <<'SQL' >/dev/null
DELETE FROM alert_rules;
SELECT alert_rule_create(jsonb_strip_nulls(jsonb_build_object(
           'name', format('bench rule %s', i),
           'kind', k.kind,
           'metric', k.metric,
           'op', k.op,
           'threshold', k.threshold,
           'category', k.category,
           'window', (ARRAY['5m', '10m', '15m', '1h', '6h', '1d'])[1 + (i / 2) % 6],
           'for', CASE WHEN i % 3 = 0 THEN '1m' ELSE '0s' END,
           'keep_firing_for', CASE WHEN i % 4 = 0 THEN '5m' ELSE '0s' END,
           'group_by', CASE WHEN i % 2 = 0 THEN 'agent' ELSE 'none' END,
           'severity', (ARRAY['critical', 'high', 'medium', 'low'])[1 + i % 4],
           'min_executions', 10,
           'no_data', 'ok')))
  FROM generate_series(1, 1000) i,
       LATERAL (SELECT * FROM (VALUES
           (0, 'threshold', 'error_rate', '>', 20 + i % 30, NULL),
           (1, 'threshold', 'success_rate', '<', 60 + i % 30, NULL),
           (2, 'threshold', 'p95_latency', '>', 5000 + 100 * (i % 50), NULL),
           (3, 'threshold', 'total_cost', '>', 1 + i % 10, NULL),
           (4, 'threshold', 'total_executions', '<', 5 + i % 20, NULL),
           (5, 'threshold', 'avg_latency', '>', 3000 + 100 * (i % 30), NULL),
           (6, 'threshold', 'pass_rate', '<', 70 + i % 20, NULL),
           (7, 'cost_spike', NULL, '>', 1.5 + (i % 5) / 2.0, NULL),
           (8, 'error_category', NULL, '>', i % 10, (ARRAY['timeout', 'rate_limit', 'tool_error'])[1 + i % 3]),
           (9, 'agent_silent', NULL, '>', NULL, NULL))
           AS v(n, kind, metric, op, threshold, category)
           WHERE v.n = i % 10) k;
VACUUM ANALYZE alert_rules;
SQL
rules=$(psql_ -F ' ' -c "SELECT count(*), count(*) FILTER (WHERE group_by = 'agent') FROM alert_rules WHERE enabled")
cycles=$(psql_ -F ' ' <<'SQL'
SELECT set_config('bench.t0', now()::text, false);
\o /dev/null
\timing on
SELECT * FROM alert_rules_evaluate(current_setting('bench.t0')::timestamptz, interval '15 seconds');
SELECT * FROM alert_rules_evaluate(current_setting('bench.t0')::timestamptz + interval '15 s', interval '15 seconds');
SELECT * FROM alert_rules_evaluate(current_setting('bench.t0')::timestamptz + interval '30 s', interval '15 seconds');
SELECT * FROM alert_rules_evaluate(current_setting('bench.t0')::timestamptz + interval '45 s', interval '15 seconds');
SELECT * FROM alert_rules_evaluate(current_setting('bench.t0')::timestamptz + interval '60 s', interval '15 seconds');
\timing off
\o
SELECT count(*), count(*) FILTER (WHERE state = 'firing') FROM alert_rule_instances;
SELECT count(*) FROM alert_rules WHERE last_error IS NOT NULL;
SQL
)
cycle_ms=$(echo "$cycles" | grep -o '^Time: [0-9.]* ms' | cut -d' ' -f2 | tr '\n' ' ')
read -r instances firing < <(echo "$cycles" | grep -v '^Time' | tail -2 | head -1)
rule_errors=$(echo "$cycles" | grep -v '^Time' | tail -1)
[[ $(wc -w <<< "$cycle_ms") == 5 ]] || fail "the evaluator cycles did not all answer: $cycles"

# ------------------------------------------------------------ report
read -r n_alerts n_open <<< "$counts"
echo
echo "fleetdash alerts bench: $n_alerts alerts ($n_open open), demo fleet of $AGENTS agents and $EXECUTIONS executions;"
echo "wrk -t1 -c32, ${SECONDS_EACH}s each, $(nproc) cores, $WORKERS workers per group"
echo "$results" | awk -F'|' '
    { split($2, f, " "); split($3, g, " ")
      name[NR] = $1; rps[NR] = f[1]; p50[NR] = f[2]; p99[NR] = f[3]; err[NR] = f[4] + g[4]
      q50[NR] = g[2]; q99[NR] = g[3]
      if (NR == 1) hello = f[1] }
    END {
      printf "%-36s %25s %9s  %17s  %s\n", "", "------ wrk -c32 ------", "", "----- -c1 -----", "goal p99 <= 5 ms"
      printf "%-36s %8s %8s %8s %9s  %8s %8s  %7s  %s\n", "endpoint", "req/s", "p50 ms", "p99 ms", "vs hello", "p50 ms", "p99 ms", "errors", "(-c32 / -c1)"
      for (i = 1; i <= NR; i++)
        printf "%-36s %8d %8.2f %8.2f %8.2fx  %8.2f %8.2f  %7d  %s\n", name[i], rps[i], p50[i], p99[i], rps[i] / hello,
               q50[i], q99[i], err[i],
               i == 1 ? "(baseline)" : (p99[i] <= 5 ? "met" : "missed") " / " (q99[i] <= 5 ? "met" : "missed")
    }'
echo "(deep pages: the cursor of item ~90 % of $open_total open alerts / of $res_total resolved ones)"
stats() { sort -n | awk '{ v[NR] = $1 } END { printf "n %d, p50 %.2f s, max %.2f s", NR, v[int((NR + 1) / 2)], v[NR] }'; }
goal=$((FLEETDASH_EVALUATION_INTERVAL + 1))
echo "webhooks (local receiver; evaluation interval ${FLEETDASH_EVALUATION_INTERVAL} s: goal <= ${goal} s):"
echo "  POST /alerts answered -> webhook arrived:        $(echo "$manual" | stats)"
echo "  failed executions ingested -> webhook arrived:  $(echo "$ruled" | cut -d' ' -f1 | stats)"
echo "  evaluator cycle (startsAt) -> webhook arrived:  $(echo "$ruled" | cut -d' ' -f2 | stats)"
echo "  notifications not 'delivered': $failed_hooks"
read -r n_rules n_grouped <<< "$rules"
echo "evaluator: $n_rules enabled rules ($n_grouped group_by=agent), $instances instances ($firing firing), rules with last_error: $rule_errors"
echo "  alert_rules_evaluate() cycles (ms; first makes the instances): $cycle_ms"
echo "  goal <= 1000 ms at 10,000,000 executions; measured at $EXECUTIONS"

# fail loudly
errors=$(echo "$results" | awk -F'|' '{ split($2, f, " "); split($3, g, " "); s += f[4] + g[4] } END { print s + 0 }')
((errors == 0)) || fail "$errors wrk requests failed (non-2xx or socket errors)"
[[ $failed_hooks == 0 ]] || fail "$failed_hooks notifications were not delivered"
[[ $rule_errors == 0 ]] || fail "$rule_errors rules failed to evaluate"
