#!/usr/bin/env bash
# run-e2e.sh - bring up a throwaway stack in VARDIR, run the end-to-end suite
# against it, and always take the stack down again.
#
#   tests/run-e2e.sh VARDIR [PYTEST ARGS...]
#
# PYTEST ARGS that name no test path run the whole of tests/e2e, e.g.
# `-k layout`; with a path (tests/e2e/test_layout.py) only that runs.
# Environment: PORT (18080), PGPORT (54330), FLEETDASHD, WORKERS, passed on
# to deploy/stack.sh; the stack's other settings are its defaults, whatever
# the shell has (a benchmark's FLEETDASH_GROUPS without alerts, LISTEN, ...).
# ASAN_LOG_DIR: when set, sanitizer reports are expected there (the caller
# points ASAN_OPTIONS/UBSAN_OPTIONS log_path into it); any file found there
# after the stack is down fails the run and is printed.
# Exit status: pytest's, or 1 when the stack cannot start or a sanitizer
# report exists.

set -uo pipefail

if [[ $# -lt 1 || -z $1 ]]; then
    sed -n '2,/^$/{s/^# \{0,1\}//;p}' "$0" >&2
    exit 2
fi
VARDIR=$(realpath -m -- "$1")
shift
cd "$(dirname "$0")/.." || exit 1

# every group, on PORT, without the demo fleet, no CORS origins (tests set their own)
unset FLEETDASH_GROUPS LISTEN FLEETDASH_DEMO FLEETDASH_CORS_ORIGINS
export PORT=${PORT:-18080}
export PGPORT=${PGPORT:-54330}
[[ -n ${FLEETDASHD-} ]] && export FLEETDASHD
[[ -n ${WORKERS-} ]] && export WORKERS

if [[ -n ${ASAN_LOG_DIR-} ]]; then
    mkdir -p -- "$ASAN_LOG_DIR" || exit 1
fi

stack_up=
stack_down() {
    if [[ -n $stack_up ]]; then
        stack_up=
        deploy/stack.sh down "$VARDIR" || echo "run-e2e: stack.sh down failed" >&2
    fi
}
trap stack_down EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

stack_up=yes
if ! deploy/stack.sh up "$VARDIR"; then
    echo "run-e2e: the stack did not come up (logs in $VARDIR/log)" >&2
    exit 1
fi

paths=(tests/e2e)
for arg in "$@"; do
    [[ $arg == -* ]] || paths=()
done

(
    # shellcheck disable=SC1091
    . "$VARDIR/stack.env" || exit 1
    export PYTHONDONTWRITEBYTECODE=1
    exec /usr/bin/python3 -m pytest -q -p no:cacheprovider "${paths[@]}" "$@"
)
status=$?

# Sanitizer reports of the masters and workers are written when they exit.
stack_down
if [[ -n ${ASAN_LOG_DIR-} ]]; then
    mapfile -t reports < <(find "$ASAN_LOG_DIR" -type f | sort)
    if [[ ${#reports[@]} -gt 0 ]]; then
        echo "run-e2e: ${#reports[@]} sanitizer report(s) in $ASAN_LOG_DIR:" >&2
        for report in "${reports[@]}"; do
            printf -- '---- %s ----\n' "$report" >&2
            cat -- "$report" >&2
        done
        [[ $status -ne 0 ]] || status=1
    fi
fi
exit "$status"
