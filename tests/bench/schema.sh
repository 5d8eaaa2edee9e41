# schema.sh - sourced by the benchmarks: a stack whose database is kept
# between runs while sql/ is the same, and one request at a time with wrk.
#
# bench_stack_up VARDIR: starts the stack in VARDIR, first removing its
# database when sql/ (numbered, repeatable and dev files) changed since
# that database was made. The
# migrations are edited in place until the first release (sql/README.md) and
# an applied one is not applied again, so a kept database would otherwise be
# measured under an old schema.
# stack_key VARDIR - exports FLEETDASH_KEY, the admin key deploy/stack.sh
# made for the stack (stack.env): curl sends it (the function below), wrk
# through report.lua, the Python helpers read it from the environment.
stack_key() {
    FLEETDASH_KEY=$(sed -n "s/^export FLEETDASH_KEY='\(.*\)'$/\1/p" "$1/stack.env")
    export FLEETDASH_KEY
}
curl() { command curl -H "Authorization: Bearer ${FLEETDASH_KEY-}" "$@"; }

bench_stack_up() {
    local vardir=$1 schema
    schema=$(cat sql/*.sql sql/functions/*.sql sql/dev/*.sql | md5sum | cut -d' ' -f1)
    if [[ $(cat "$vardir/schema.md5" 2>/dev/null) != "$schema" ]]; then
        deploy/stack.sh down "$vardir" >/dev/null 2>&1 || true
        rm -rf "$vardir/pg"
    fi
    deploy/stack.sh up "$vardir" >/dev/null
    echo "$schema" > "$vardir/schema.md5"
    stack_key "$vardir"
}

# bench_one_at_a_time LABEL URL GOAL - wrk -t1 -c1 on URL (1 s of warm-up,
# then BENCH_SECONDS, default 5) through tests/bench/report.lua; prints
# "LABEL  req/s  p50  p99  (GOAL)". A non-2xx answer fails the run.
bench_one_at_a_time() {
    local line rps p50 p99 errors requests
    wrk -t1 -c1 -d1s -s tests/bench/report.lua "$2" >/dev/null
    line=$(wrk -t1 -c1 -d"${BENCH_SECONDS:-5}s" -s tests/bench/report.lua "$2" | grep '^RESULT')
    read -r _ rps p50 p99 errors requests <<<"$line"
    if [[ $errors -ne 0 ]]; then
        echo "bench: FAILED: $1: $errors non-2xx answers of $requests" >&2
        exit 1
    fi
    printf '%-38s %8s req/s  p50 %6s ms  p99 %6s ms  (%s)\n' "$1" "$rps" "$p50" "$p99" "$3"
}
