#!/usr/bin/env bash
# run.sh - `make soak`: faults under load against a real stack, bounded in
# time; every figure printed against its goal.
#
#   tests/soak/run.sh VARDIR [NAME...]
#
# Brings up a stack in VARDIR (PORT 18090, PGPORT 54390 unless set), then
# runs each tests/soak/soak_*.sh (or only the NAMEs given, e.g. `kill`) with
# VARDIR/stack.env exported, each under its own time limit, and always takes
# the stack down. A soak script prints lines made by figure() below and
# exits non-zero when one of its figures misses its goal.
# Exit status: 0 when every figure met its goal, 1 otherwise.

set -uo pipefail

if [[ $# -lt 1 || -z $1 ]]; then
    sed -n '2,/^$/{s/^# \{0,1\}//;p}' "$0" >&2
    exit 2
fi
VARDIR=$(realpath -m -- "$1")
shift
cd "$(dirname "$0")/../.." || exit 1
REPO=$(pwd)

export PORT=${PORT:-18090}
export PGPORT=${PGPORT:-54390}
export FLEETDASHD=${FLEETDASHD:-bin/fleetdashd}
readonly SCRIPT_TIMEOUT=${SOAK_SCRIPT_TIMEOUT:-150}

scripts=()
if [[ $# -gt 0 ]]; then
    for name in "$@"; do scripts+=("tests/soak/soak_$name.sh"); done
else
    scripts=(tests/soak/soak_*.sh)
fi

stack_up=
stack_down() {
    if [[ -n $stack_up ]]; then
        stack_up=
        deploy/stack.sh down "$VARDIR" >/dev/null || echo "soak: stack.sh down failed" >&2
    fi
}
trap stack_down EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

deploy/stack.sh down "$VARDIR" >/dev/null 2>&1 || true
rm -rf -- "$VARDIR"
stack_up=yes
if ! FLEETDASH_DEMO=0 deploy/stack.sh up "$VARDIR" >/dev/null; then
    echo "soak: the stack did not come up (logs in $VARDIR/log)" >&2
    exit 1
fi

status=0
for script in "${scripts[@]}"; do
    [[ -f $script ]] || { echo "soak: no such script $script" >&2; status=1; continue; }
    echo "== $script"
    (
        set -a
        # shellcheck disable=SC1091
        . "$VARDIR/stack.env"
        set +a
        export VARDIR REPO
        exec timeout --kill-after=10 "$SCRIPT_TIMEOUT" bash "$script"
    )
    rc=$?
    if [[ $rc -eq 124 || $rc -eq 137 ]]; then
        echo "soak: $script ran past ${SCRIPT_TIMEOUT}s"
        status=1
    elif [[ $rc -ne 0 ]]; then
        status=1
    fi
    # The next script gets a whole stack again.
    deploy/stack.sh up "$VARDIR" >/dev/null || { echo "soak: stack did not come back" >&2; exit 1; }
done
if [[ $status -eq 0 ]]; then echo "soak: every figure met its goal"; else echo "soak: some figures missed their goals"; fi
exit "$status"
