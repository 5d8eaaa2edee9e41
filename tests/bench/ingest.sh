#!/usr/bin/env bash
# ingest.sh - `make bench`, ingest part: every way executions arrive, against
# one INSERT per row over a single connection, measured in the same run.
#
# Usage: tests/bench/ingest.sh VARDIR
# Starts its own stack (PORT 18190, PGPORT 54350 unless set) and measures:
#   NDJSON: one stream of BENCH_NDJSON executions (default 1,000,000) through nginx,
#     started_at scattered over the last hour; then the same number oldest first
#     (a live stream), into an emptied table again
#   batches: JSON arrays of 1,000 at 4 connections for BENCH_SECONDS (default 10)
#   single: one execution per POST at 32 connections
#   heartbeats: POST /agents/{id}/heartbeat of 1,000 agents in turn, 32 connections
#   baseline: pgbench, one INSERT INTO executions per transaction, 1 connection
# and prints executions/s (requests/s for heartbeats), the ratio of each to
# the baseline, and the peak resident memory of the ingest workers.
set -euo pipefail
cd "$(dirname "$0")/../.."
VARDIR=${1:?usage: tests/bench/ingest.sh VARDIR}
mkdir -p "$VARDIR" && VARDIR=$(cd "$VARDIR" && pwd)
export PORT=${PORT:-18190} PGPORT=${PGPORT:-54350} FLEETDASHD=${FLEETDASHD:-bin/fleetdashd}
# 8 ingest workers: enough concurrent commits for PostgreSQL to group their
# WAL flushes; with 16 on 2 cores, context switches cost more than that gains
# (measured: single POSTs 2,600 -> 3,040/s, heartbeats 6,500 -> 8,000/s).
export WORKERS=${WORKERS:-8}
SECONDS_EACH=${BENCH_SECONDS:-10}
NDJSON_LINES=${BENCH_NDJSON:-1000000}
BASE=http://127.0.0.1:$PORT
DATA=$VARDIR/bench
GEN=tests/bench/gen_executions.py

trap 'deploy/stack.sh down "$VARDIR" >/dev/null 2>&1 || true' EXIT
deploy/stack.sh down "$VARDIR" >/dev/null 2>&1 || true
rm -rf "$VARDIR/pg"                       # every run starts from an empty database
deploy/stack.sh up "$VARDIR" >/dev/null
. "$VARDIR/stack.env"
. tests/bench/schema.sh                   # curl with the stack's key (FLEETDASH_KEY)
mkdir -p "$DATA"

/usr/bin/python3 $GEN ndjson "$NDJSON_LINES" "$DATA/stream.ndjson"
/usr/bin/python3 $GEN ordered "$NDJSON_LINES" "$DATA/ordered.ndjson"
/usr/bin/python3 $GEN batch 1000 "$DATA/batch.json"
/usr/bin/python3 $GEN one "$DATA/one.json"
# 1,000 agents beating (a fleet: many agents, each beating every few seconds)
for i in $(seq -w 1 1000); do
    curl -sf -X POST "$BASE/api/v1/agents" -H 'Content-Type: application/json' \
         -d "{\"name\":\"bench-heartbeat-$i\"}"
    echo
done | /usr/bin/python3 -c '
import json, sys
for line in sys.stdin:
    if line.strip():
        print("/api/v1/agents/%s/heartbeat" % json.loads(line)["id"])' > "$DATA/beats.paths"
agent=$(head -1 "$DATA/beats.paths" | cut -d/ -f5)

now_ms() { date +%s%3N; }

# settle: each path is measured without autovacuum working off the rows
# the path before it wrote (a million rows: it would take a core for seconds)
settle() {
    psql -X -q -h "$PGHOST" -p "$PGPORT" -U postgres fleetdash -c 'VACUUM (ANALYZE) executions'
}
# stream FILE -> executions/s of POSTing FILE as one NDJSON request, end to end
stream() {
    local t0 t1 answer inserted
    t0=$(now_ms)
    answer=$(curl -sf -X POST "$BASE/api/v1/executions" -H 'Content-Type: application/x-ndjson' \
             --data-binary @"$1")
    t1=$(now_ms)
    inserted=$(echo "$answer" | /usr/bin/python3 -c 'import json,sys; print(json.load(sys.stdin)["inserted"])')
    echo $(( inserted * 1000 / (t1 - t0) ))
}
ndjson_rate=$(stream "$DATA/stream.ndjson")
# The index entries of a scattered stream land all over executions' two
# started_at indexes; a live stream's land near their right ends. Both into
# an empty table, so that the second does not pay for the first's size.
psql -X -q -h "$PGHOST" -p "$PGPORT" -U postgres fleetdash -c 'TRUNCATE executions CASCADE' 2>/dev/null
settle
ordered_rate=$(stream "$DATA/ordered.ndjson")

# wrk_rps URL BODYFILE CONNECTIONS [PATHSFILE] -> requests per second of POSTing BODYFILE
wrk_rps() {
    local line
    line=$(BENCH_METHOD=POST BENCH_BODY_FILE="$2" BENCH_PATHS_FILE="${4:-}" wrk -t1 -c"$3" \
           -d"${SECONDS_EACH}s" -s tests/bench/report.lua "$1" | grep '^RESULT')
    set -- $line
    [ "$5" = 0 ] || echo "warning: $5 failed requests" >&2
    echo "$2"
}
echo '{"state":"busy"}' > "$DATA/beat.json"
settle
batch_rate=$(( $(wrk_rps "$BASE/api/v1/executions" "$DATA/batch.json" 4) * 1000 ))
settle
single_rate=$(wrk_rps "$BASE/api/v1/executions" "$DATA/one.json" 32)
beat_rate=$(wrk_rps "$BASE/api/v1/agents/$agent/heartbeat" "$DATA/beat.json" 32 "$DATA/beats.paths")

# Baseline: the naive path, one INSERT per row, one connection, same schema.
cat > "$DATA/insert.sql" <<SQL
INSERT INTO executions (agent_id, model, started_at, latency_ms, status, prompt_tokens,
                        completion_tokens, cost_usd, metadata)
VALUES ('$agent', 'claude-sonnet', now() - random() * interval '1 hour', 1200, 'succeeded',
        900, 150, 0.0042, '{"region": "eu-west-1"}');
SQL
baseline=$(pgbench -n -c1 -T"$SECONDS_EACH" -f "$DATA/insert.sql" -h "$PGHOST" -p "$PGPORT" \
           -U postgres fleetdash 2>/dev/null | awk '/^tps/ {printf "%d", $3}')

master=$(cat "$VARDIR/run/ingest.pid")
peak=$(for pid in $(pgrep -P "$master"); do awk '/VmHWM/ {print $2}' "/proc/$pid/status"; done |
       sort -n | tail -1)
rows=$(psql -X -At -h "$PGHOST" -p "$PGPORT" -U postgres fleetdash -c 'SELECT count(*) FROM executions')

echo "fleetdash ingest bench: $(nproc) cores, $WORKERS ingest workers, ${SECONDS_EACH}s per wrk run"
printf '%-46s %14s %12s\n' "path" "per second" "vs baseline"
row() { printf '%-46s %14d %11.1fx\n' "$1" "$2" "$(echo "$2 / $baseline" | bc -l)"; }
row "NDJSON stream, $NDJSON_LINES executions (1 request)" "$ndjson_rate"
row "the same, oldest first (a live stream)" "$ordered_rate"
row "JSON batches of 1,000 (4 connections)" "$batch_rate"
row "single-execution POSTs (32 connections)" "$single_rate"
row "heartbeats of 1,000 agents (32 connections)" "$beat_rate"
row "baseline: INSERT per row, 1 connection" "$baseline"
echo "executions in the database after the run: $rows"
echo "ingest worker peak resident memory: $(( peak / 1024 )) MiB"
