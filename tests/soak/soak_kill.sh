#!/usr/bin/env bash
# soak_kill.sh - a dying worker costs no GET, and no group goes down: GETs
# at 32 connections for 30 s on dashboards and aggregates routes while one
# random worker of those two groups is SIGKILLed every second (failed GETs:
# non-2xx answers and socket errors); then, under load again, a rolling
# reload (SIGHUP to every master in turn, failed requests); then every
# worker of a group SIGKILLed at once, for each group (time until the group
# has all its workers again). The masters must be the same processes at
# the end. Run by tests/soak/run.sh (stack.env exported); about 55 s.

set -uo pipefail
# shellcheck source=tests/soak/lib.sh
. "$(dirname "$0")/lib.sh"

readonly CONNECTIONS=32 KILL_SECONDS=30 RELOAD_SECONDS=14
readonly KILLED_GROUPS=(dashboards aggregates)
readonly ALL_GROUPS=(dashboards aggregates ingest hello)
work=$(mktemp -d)
trap 'rm -rf -- "$work"' EXIT

master_of() { cat "$VARDIR/run/$1.pid"; }
workers_of() { pgrep -P "$(master_of "$1")" || true; }

# The GETs of the load: the dashboards and aggregates groups, and /healthz
# (dashboards). RESULT requests non_2xx connect read write timeout.
cat >"$work/gets.lua" <<'EOF'
local paths = {"/api/v1/dashboards", "/api/v1/dashboards/default",
               "/api/v1/executions/summary?time_range=24h", "/healthz"}
local threads, next_path = {}, 0
failed = 0 -- a global: done() reads every thread's copy with thread:get

function setup(thread)
    threads[#threads + 1] = thread
end

wrk.headers["Authorization"] = "Bearer " .. os.getenv("FLEETDASH_KEY")

function request()
    next_path = next_path % #paths + 1
    return wrk.format("GET", paths[next_path])
end

function response(status, headers, body)
    if status < 200 or status > 299 then
        failed = failed + 1
    end
end

function done(summary, latency, requests)
    local non_2xx = 0
    for _, thread in ipairs(threads) do
        non_2xx = non_2xx + thread:get("failed")
    end
    local e = summary.errors
    io.write(string.format("RESULT %d %d %d %d %d %d\n", summary.requests, non_2xx,
        e.connect, e.read, e.write, e.timeout))
end
EOF

# load SECONDS - wrk's GETs for SECONDS in the background; its output in
# $work/wrk.out.
load() {
    wrk -t2 -c"$CONNECTIONS" -d"$1s" --timeout 10s -s "$work/gets.lua" "$BASE_URL" \
        >"$work/wrk.out" 2>&1 &
    wrk_pid=$!
}

# load_figures WHAT - after wrk ended: failed requests against 0.
load_figures() {
    local requests non_2xx connect read write timeout
    read -r _ requests non_2xx connect read write timeout < <(grep '^RESULT ' "$work/wrk.out")
    if [[ -z ${requests-} ]]; then
        cat "$work/wrk.out" >&2
        figure "$1: wrk result" 0 -eq 1 ""
        return
    fi
    figure "$1: requests" "$requests" -gt 0 ""
    figure "$1: failed (non-2xx + socket errors)" \
        $((non_2xx + connect + read + write + timeout)) -le 0 ""
}

# wait_for_workers G - until G has WORKERS workers (10 s at most).
wait_for_workers() {
    local deadline=$((SECONDS + 10))
    while (($(workers_of "$1" | wc -l) != WORKERS && SECONDS < deadline)); do
        sleep 0.1
    done
}

declare -A masters
for group in "${ALL_GROUPS[@]}"; do
    masters[$group]=$(master_of "$group")
done
curl -s -o /dev/null -H "Authorization: Bearer $FLEETDASH_KEY" "$BASE_URL/api/v1/dashboards/default" # created before the load

# 1. One random worker of dashboards or aggregates SIGKILLed every second.
load "$KILL_SECONDS"
kills=0
sleep 0.5
next=${EPOCHREALTIME/./} # microseconds: one kill per second, however long a kill takes
while kill -0 "$wrk_pid" 2>/dev/null; do
    group=${KILLED_GROUPS[RANDOM % ${#KILLED_GROUPS[@]}]}
    mapfile -t pids < <(workers_of "$group")
    if ((${#pids[@]} > 0)) && kill -KILL "${pids[RANDOM % ${#pids[@]}]}" 2>/dev/null; then
        kills=$((kills + 1))
    fi
    next=$((next + 1000000))
    delay=$((next - ${EPOCHREALTIME/./}))
    if ((delay > 0)); then
        sleep "$(printf '%d.%06d' $((delay / 1000000)) $((delay % 1000000)))"
    fi
done
wait "$wrk_pid"
figure "GETs, a worker SIGKILLed every second: workers killed" "$kills" -ge $((KILL_SECONDS - 2)) ""
load_figures "GETs, a worker SIGKILLed every second"
storms=$(cat "$VARDIR/log/dashboards.log" "$VARDIR/log/aggregates.log" | grep -cE '(msg="|"msg":")crash storm: ')
printf 'soak: %-58s %12s   (information: paced respawns, no goal)\n' \
    "GETs, a worker SIGKILLed every second: crash storms" "$storms"
for group in "${KILLED_GROUPS[@]}"; do
    wait_for_workers "$group"
done

# 2. A rolling reload of every master under load. Lasting RELOAD_SECONDS,
# more than a storm's window (10 s), it also keeps the crashes of 1 from
# counting with those of 3.
load "$RELOAD_SECONDS"
sleep 1
for group in "${ALL_GROUPS[@]}"; do
    before=$(workers_of "$group" | sort)
    kill -HUP "$(master_of "$group")"
    deadline=$((SECONDS + 10))
    until [[ -z $(comm -12 <(workers_of "$group" | sort) <(printf '%s\n' "$before")) ]] ||
        ((SECONDS >= deadline)); do
        sleep 0.1
    done
    sleep 1
done
reloaded=0
for group in "${ALL_GROUPS[@]}"; do
    wait_for_workers "$group"
    grep -q 'SIGHUP: replacing workers' "$VARDIR/log/$group.log" && reloaded=$((reloaded + 1))
done
wait "$wrk_pid"
figure "rolling reload under GETs: masters reloaded" "$reloaded" -eq ${#ALL_GROUPS[@]} ""
load_figures "rolling reload under GETs"

# 3. Every worker of a group SIGKILLed at once: from the kill to all new
# worker pids running, read from /proc/MASTER/task/MASTER/children.
worst=$(/usr/bin/python3 - "$VARDIR" "$WORKERS" "${ALL_GROUPS[@]}" <<'EOF'
import os, signal, sys, time

vardir, workers, groups = sys.argv[1], int(sys.argv[2]), sys.argv[3:]


def live_children(master):
    with open("/proc/%d/task/%d/children" % (master, master)) as f:
        pids = [int(p) for p in f.read().split()]
    live = set()
    for pid in pids:
        try:
            with open("/proc/%d/stat" % pid) as f:
                if f.read().rsplit(")", 1)[1].split()[0] != "Z":
                    live.add(pid)
        except OSError:  # gone, or exiting
            pass
    return live


worst = 0.0
for group in groups:
    # Each group on its own: the killed workers' PostgreSQL backends of the
    # group before exit too, and compete for the same 2 cores.
    time.sleep(1)
    master = int(open(os.path.join(vardir, "run", group + ".pid")).read())
    before = live_children(master)
    assert len(before) == workers, (group, before)
    start = time.monotonic()
    for pid in before:
        os.kill(pid, signal.SIGKILL)
    while True:
        now = live_children(master)
        if len(now) == workers and not now & before:
            break
        if time.monotonic() - start > 10:
            break
    elapsed = (time.monotonic() - start) * 1000
    print("soak: %s: %d workers back after %.1f ms" % (group, workers, elapsed), file=sys.stderr)
    worst = max(worst, elapsed)
print("%.1f" % worst)
EOF
)
printf 'soak: %-58s %12s   (information: fork and exit compete for 2 cores)\n' \
    "load average while the groups came back" "$(cut -d' ' -f1 /proc/loadavg)"
figure "every worker of a group SIGKILLed at once: back after (worst group)" "${worst:-99999}" -fle 100 " ms"

alive=0
for group in "${ALL_GROUPS[@]}"; do
    [[ $(master_of "$group") == "${masters[$group]}" ]] && kill -0 "${masters[$group]}" 2>/dev/null &&
        alive=$((alive + 1))
done
figure "masters that lived through it all (of ${#ALL_GROUPS[@]})" "$alive" -eq ${#ALL_GROUPS[@]} ""
soak_exit
