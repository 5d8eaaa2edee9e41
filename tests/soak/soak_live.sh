#!/usr/bin/env bash
# soak_live.sh - the live streams under faults: 500 SSE subscribers on
# /api/v1/stream/activity while 50 feed events a second are committed for
# 20 s and the publisher job is SIGKILLed every 2 s (the master starts it
# again): every subscriber must get every event, once each (the load client
# tests/bench/sse_load.c counts them), with p99 commit-to-receive against
# its goal. Run by tests/soak/run.sh (stack.env exported); about 30 s.

set -uo pipefail
# shellcheck source=tests/soak/lib.sh
. "$(dirname "$0")/lib.sh"

client=$VARDIR/sse_load
cc -O2 -std=c11 -D_GNU_SOURCE -Wall -Wextra -Werror -I"$(pg_config --includedir)" \
    -o "$client" "$REPO/tests/bench/sse_load.c" -lpq -lpthread || exit 1

publisher_pid() {
    grep '"role":"publisher"' "$VARDIR/log/alerts.log" | tail -n 1 | sed 's/.*"pid":\([0-9]*\).*/\1/'
}

out=$VARDIR/soak_live.out
"$client" 127.0.0.1 "$PORT" /api/v1/stream/activity "$FLEETDASH_KEY" 500 20 50 5 \
    "$DATABASE_URL" >"$out" 2>&1 &
load=$!
kills=0
sleep 3   # the subscribers connect, then the writer starts
while kill -0 "$load" 2>/dev/null; do
    pid=$(publisher_pid)
    if [[ -n $pid ]] && kill -KILL "$pid" 2>/dev/null; then
        kills=$((kills + 1))
    fi
    sleep 2
done
wait "$load"
rc=$?
sed 's/^/soak:   /' "$out"
complete=$(sed -n 's/.* \([0-9]*\) of \([0-9]*\) subscribers got every event.*/\1/p' "$out")
receipts=$(sed -n 's/^received: \([0-9]*\) of \([0-9]*\) events.*/\1 \2/p' "$out")
p99=$(sed -n 's/^commit-to-receive: .*p99 \([0-9.]*\) ms.*/\1/p' "$out")
figure "publisher SIGKILLed during 20 s of events" "$kills" -ge 5 ""
figure "subscribers that got every event (of 500)" "${complete:-0}" -eq 500 ""
figure "receipts beyond events x subscribers (repeats)" \
    "$(( ${receipts% *} - ${receipts#* } ))" -le 0 ""
figure "p99 commit-to-receive with the kills (ms)" "${p99:-99999}" -fle 2000 " ms"
[[ $rc -eq 0 ]] || soak_missed=1
soak_exit
