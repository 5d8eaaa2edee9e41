#!/usr/bin/env bash
# run.sh - `make bench`: the dashboards group against its baselines, same run.
#
# Usage: tests/bench/run.sh VARDIR
# Starts its own stack (PORT 18180, PGPORT 54340 unless set), loads one
# dashboard with ten widgets, then runs wrk (-t1 -c32, BENCH_SECONDS each,
# default 10) against: nginx serving a static JSON file of the same size, the
# FastCGI hello group, GET /api/v1/dashboards/{id} (served from the workers'
# version-checked cache after the first read), GET /api/v1/dashboards/default
# (read and shaped on every request: the uncached path), POST
# /api/v1/dashboards (ten widgets, one durable commit each).
# Prints req/s, p50, p99 and the ratio of each to the FastCGI hello, then the
# resident memory of the dashboards workers; then what checking the API key
# costs: GET /api/v1/dashboards/{id} with the key checked against the same
# requests to the group restarted with FLEETDASH_AUTH=off (goal <= 10 %).
# Tears the stack down.
set -euo pipefail
cd "$(dirname "$0")/../.."
VARDIR=${1:?usage: tests/bench/run.sh VARDIR}
mkdir -p "$VARDIR" && VARDIR=$(cd "$VARDIR" && pwd)
export PORT=${PORT:-18180} PGPORT=${PGPORT:-54340} FLEETDASHD=${FLEETDASHD:-bin/fleetdashd}
export WORKERS=${WORKERS:-8}
export FLEETDASH_GROUPS="dashboards hello"
SECONDS_EACH=${BENCH_SECONDS:-10}
BASE=http://127.0.0.1:$PORT

trap 'deploy/stack.sh down "$VARDIR" >/dev/null 2>&1 || true' EXIT
. tests/bench/schema.sh
bench_stack_up "$VARDIR"   # the database is kept, under the current schema only

# Baseline locations for this run only (site-local includes; see nginx.conf).
mkdir -p "$VARDIR/bench"
cat > "$VARDIR/nginx/conf.d/bench.conf" <<CONF
location = /hello { fastcgi_pass hello; }
location = /bench/static.json { alias $VARDIR/bench/static.json; default_type application/json; }
CONF
nginx -c "$VARDIR/nginx/nginx.conf" -p "$VARDIR/nginx/" -s reload
sleep 0.5

widgets=$(curl -sf "$BASE/api/v1/dashboards/default" | /usr/bin/python3 -c '
import json, sys
d = json.load(sys.stdin)
print(json.dumps([{k: w[k] for k in ("type", "title", "config", "position")} for w in d["widgets"]]))')
body=$(printf '{"name":"Bench %s","description":"benchmark dashboard","widgets":%s}' "$$" "$widgets")
id=$(curl -sf -X POST "$BASE/api/v1/dashboards" -H 'Content-Type: application/json' -d "$body" |
     /usr/bin/python3 -c 'import json,sys; print(json.load(sys.stdin)["id"])')
curl -sf "$BASE/api/v1/dashboards/$id" > "$VARDIR/bench/static.json"
size=$(wc -c < "$VARDIR/bench/static.json")

# run NAME URL [METHOD BODY] -> "NAME rps p50 p99 errors requests"
run() {
    local name=$1 url=$2
    BENCH_METHOD=${3:-} BENCH_BODY=${4:-} wrk -t1 -c32 -d1s -s tests/bench/report.lua "$url" >/dev/null
    local line
    line=$(BENCH_METHOD=${3:-} BENCH_BODY=${4:-} wrk -t1 -c32 -d"${SECONDS_EACH}s" \
           -s tests/bench/report.lua "$url" | grep '^RESULT')
    echo "$name ${line#RESULT }"
}

results=$(
    run "nginx static JSON (${size} B)" "$BASE/bench/static.json"
    run "FastCGI hello" "$BASE/hello"
    run "GET /api/v1/dashboards/{id}" "$BASE/api/v1/dashboards/$id"
    run "GET /api/v1/dashboards/default (*)" "$BASE/api/v1/dashboards/default"
    run "POST /api/v1/dashboards" "$BASE/api/v1/dashboards" POST "$body"
)

master=$(cat "$VARDIR/run/dashboards.pid")
rss=$(for pid in $(pgrep -P "$master"); do ps -o rss= -p "$pid"; done | sort -n | tail -1)

# What checking the API key costs: the same GET /api/v1/dashboards/{id}
# with the key checked and with the dashboards group restarted under
# FLEETDASH_AUTH=off, in turn, twice each (the best of each counts).
dashboards_auth() {
    deploy/stack.sh stop-group "$VARDIR" dashboards >/dev/null
    FLEETDASH_AUTH=$1 deploy/stack.sh start-group "$VARDIR" dashboards >/dev/null
    local deadline=$((SECONDS + 20))
    until command curl -sf -o /dev/null "$BASE/api/v1/dashboards/$id" -H "Authorization: Bearer $FLEETDASH_KEY"; do
        ((SECONDS < deadline)) || { echo "bench: dashboards did not come back" >&2; exit 1; }
        sleep 0.2
    done
}
auth_results=$(
    for round in 1 2; do
        run "key checked" "$BASE/api/v1/dashboards/$id"
        dashboards_auth off
        run "no key check (FLEETDASH_AUTH=off)" "$BASE/api/v1/dashboards/$id"
        dashboards_auth on
    done
)

echo "fleetdash bench: wrk -t1 -c32, ${SECONDS_EACH}s each, $(nproc) cores, $WORKERS workers per group"
echo "$results" | awk -v rss="$rss" '
    { n = NF; name = $1; for (i = 2; i <= n - 5; i++) name = name " " $i
      rps[NR] = $(n-4); p50[NR] = $(n-3); p99[NR] = $(n-2); err[NR] = $(n-1); label[NR] = name
      if (name == "FastCGI hello") hello = $(n-4) }
    END {
      printf "%-34s %10s %9s %9s %8s %12s\n", "endpoint", "req/s", "p50 ms", "p99 ms", "errors", "vs hello"
      for (i = 1; i <= NR; i++)
        printf "%-34s %10d %9.2f %9.2f %8d %11.2fx\n", label[i], rps[i], p50[i], p99[i], err[i], rps[i] / hello
      printf "(*) the default dashboard is read and shaped on every request (no cache)\n"
      printf "dashboards worker resident memory after the run (largest): %.1f MiB\n", rss / 1024
    }'
echo "$auth_results" | awk '
    { n = NF; name = $1; for (i = 2; i <= n - 5; i++) name = name " " $i
      if ($(n-1) != 0) errors += $(n-1)
      if (!(name in best) || $(n-4) > best[name]) { best[name] = $(n-4); p99[name] = $(n-2) } }
    END {
      on = best["key checked"]; off = best["no key check (FLEETDASH_AUTH=off)"]
      printf "API key check, GET /api/v1/dashboards/{id}: %d req/s (p99 %.2f ms) with it, %d req/s (p99 %.2f ms) without: it costs %.1f %% (goal <= 10 %%)%s\n",
             on, p99["key checked"], off, p99["no key check (FLEETDASH_AUTH=off)"], 100 * (1 - on / off),
             errors ? ", " errors " failed requests" : ""
    }'
