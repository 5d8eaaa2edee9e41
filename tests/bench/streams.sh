#!/usr/bin/env bash
# streams.sh - `make bench`, the live streams (issue 15): SSE subscribers on
# GET /api/v1/stream/activity held by nginx's nchan, fed by the publisher job.
#
# Usage: tests/bench/streams.sh VARDIR
# Starts its own stack (PORT 18690, PGPORT 54410 unless set; groups
# dashboards, for /readyz, alerts, maintenance) and builds the load client
# tests/bench/sse_load.c (epoll, one thread; a writer thread commits feed
# events straight into activity_staged and notes each commit). Three runs,
# BENCH_STREAM_SECONDS each (default 20) after every subscriber had its
# snapshot:
#   1. 1,000 subscribers, 100 events/s (10 per commit): commit-to-receive
#      p50 and p99 (goal p99 <= 50 ms);
#   2. 10,000 subscribers, 10 events/s: p99 (goal <= 250 ms), nginx's memory
#      for them (the Pss its workers grew by; goal <= 64 MiB), every
#      subscriber receives every event;
#   3. 100 subscribers, 10 events/s: the CPU the alerts group's processes
#      (route workers and the publisher) and PostgreSQL used while the
#      events flowed, against run 2's (goal: about the same).
# All three with nginx's worker_processes auto (as nginx.conf has it), then
# again with one worker process: nchan hands a message to the subscribers
# of another worker process through its IPC, which costs tens of ms here.
# A run where a subscriber misses an event fails. Tears the stack down on
# exit.
set -euo pipefail
cd "$(dirname "$0")/../.."

# --probe VARDIR: one line "CPU_TICKS NGINX_RSS_KIB": user+system ticks of
# the alerts group's processes and PostgreSQL's, and the memory of nginx's
# workers (their Pss: shared memory counted once) (sse_load runs it when the subscribers are in and when the writer
# is done).
if [[ ${1-} == --probe ]]; then
    vardir=$2
    pids=()
    for master in "$(cat "$vardir/run/alerts.pid")" "$(head -n1 "$vardir/pg/postmaster.pid")"; do
        pids+=("$master" $(pgrep -P "$master" || true))
    done
    ticks=0
    for pid in "${pids[@]}"; do
        [[ -r /proc/$pid/stat ]] || continue
        read -r -a f < <(sed 's/^.*) //' "/proc/$pid/stat") || continue
        ticks=$((ticks + f[11] + f[12]))
    done
    rss=0
    for pid in $(pgrep -P "$(cat "$vardir/run/nginx.pid")"); do
        kib=$(awk '/^Pss:/ {print $2}' "/proc/$pid/smaps_rollup" 2>/dev/null || echo 0)
        rss=$((rss + ${kib:-0}))
    done
    echo "probe: $ticks $rss"
    exit 0
fi

VARDIR=${1:?usage: tests/bench/streams.sh VARDIR}
mkdir -p "$VARDIR" && VARDIR=$(cd "$VARDIR" && pwd)
export PORT=${PORT:-18690} PGPORT=${PGPORT:-54410} FLEETDASHD=${FLEETDASHD:-bin/fleetdashd}
export WORKERS=${WORKERS:-4}
export FLEETDASH_GROUPS="dashboards alerts maintenance"
export FLEETDASH_DEMO=0
SECONDS_EACH=${BENCH_STREAM_SECONDS:-20}
fail() { echo "streams bench: FAILED: $*" >&2; exit 1; }

trap 'deploy/stack.sh down "$VARDIR" >/dev/null 2>&1 || true' EXIT
. tests/bench/schema.sh
bench_stack_up "$VARDIR"
# shellcheck disable=SC1091
. "$VARDIR/stack.env"
cc -O2 -std=c11 -D_GNU_SOURCE -Wall -Wextra -Werror -I"$(pg_config --includedir)" \
    -o "$VARDIR/sse_load" tests/bench/sse_load.c -lpq -lpthread

probe() { tests/bench/streams.sh --probe "$VARDIR" | awk '{print $2, $3}'; }
HZ=$(getconf CLK_TCK)

# run SUBSCRIBERS EVENTS_PER_S PER_COMMIT -> prints the client's lines; sets
# P50 P99 CPU_MS RSS_MIB
run() {
    local before_rss out
    before_rss=$(probe | cut -d' ' -f2)
    out=$("$VARDIR/sse_load" 127.0.0.1 "$PORT" /api/v1/stream/activity "$FLEETDASH_KEY" \
        "$1" "$SECONDS_EACH" "$2" "$3" "$DATABASE_URL" \
        "tests/bench/streams.sh --probe '$VARDIR'") || {
        echo "$out"
        fail "$1 subscribers: not every subscriber received every event"
    }
    echo "$out" | grep -v '^probe:' | sed 's/^/  /'
    read -r P50 P99 < <(echo "$out" | sed -n 's/^commit-to-receive: p50 \([0-9.]*\) ms, p99 \([0-9.]*\) ms.*/\1 \2/p')
    local t0 r0 t1 r1
    read -r t0 r0 < <(echo "$out" | grep '^probe:' | sed -n 1p | awk '{print $2, $3}')
    read -r t1 r1 < <(echo "$out" | grep '^probe:' | sed -n 2p | awk '{print $2, $3}')
    CPU_MS=$(((t1 - t0) * 1000 / HZ))
    RSS_MIB=$(echo "scale=1; ($r0 - $before_rss) / 1024" | bc)
}

# nginx_workers N|auto - the stack's nginx reloaded with worker_processes N
nginx_workers() {
    sed -i "s/^worker_processes .*;/worker_processes $1;/" "$VARDIR/nginx/nginx.conf"
    kill -HUP "$(cat "$VARDIR/run/nginx.pid")"
    sleep 3   # the old workers close their streams; the publisher gives nchan its messages again
}

for workers in auto 1; do
    nginx_workers "$workers"
    echo "== nginx worker_processes $workers ($(pgrep -c -P "$(cat "$VARDIR/run/nginx.pid")") workers)"
    echo "== 1,000 subscribers, 100 events/s (10 per commit), ${SECONDS_EACH} s"
    run 1000 100 10
    echo "   p50 $P50 ms, p99 $P99 ms (goal p99 <= 50 ms); workers + database CPU $CPU_MS ms"
    echo "== 10,000 subscribers, 10 events/s, ${SECONDS_EACH} s"
    nginx_workers "$workers"   # fresh workers: what they grow by is the subscribers'
    run 10000 10 1
    cpu_10000=$CPU_MS
    echo "   p99 $P99 ms (goal <= 250 ms); nginx grew by $RSS_MIB MiB for them (goal <= 64 MiB);"
    echo "   workers + database CPU $CPU_MS ms"
    echo "== 100 subscribers, 10 events/s, ${SECONDS_EACH} s"
    run 100 10 1
    echo "   workers + database CPU $CPU_MS ms against $cpu_10000 ms with 10,000 subscribers" \
         "(goal: independent of the subscribers)"
done
