# schema.sh - sourced by the benchmarks that keep their database between runs.
#
# bench_stack_up VARDIR: starts the stack in VARDIR, first removing its
# database when sql/ (numbered, repeatable and dev files) changed since
# that database was made. The
# migrations are edited in place until the first release (sql/README.md) and
# an applied one is not applied again, so a kept database would otherwise be
# measured under an old schema.
bench_stack_up() {
    local vardir=$1 schema
    schema=$(cat sql/*.sql sql/functions/*.sql sql/dev/*.sql | md5sum | cut -d' ' -f1)
    if [[ $(cat "$vardir/schema.md5" 2>/dev/null) != "$schema" ]]; then
        deploy/stack.sh down "$vardir" >/dev/null 2>&1 || true
        rm -rf "$vardir/pg"
    fi
    deploy/stack.sh up "$vardir" >/dev/null
    echo "$schema" > "$vardir/schema.md5"
}
