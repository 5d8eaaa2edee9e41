# lib.sh - sourced by the soak scripts: figure() prints one figure against
# its goal and remembers a miss; soak_exit ends the script with the verdict.

soak_missed=0

# figure NAME VALUE OP GOAL UNIT - e.g. `figure "failed GETs" 0 -le 0 ""`;
# OP is a test(1) integer operator, or -fle/-fge for decimals (awk).
figure() {
    local name=$1 value=$2 op=$3 goal=$4 unit=${5-} ok
    case $op in
    -fle) ok=$(awk -v a="$value" -v b="$goal" 'BEGIN { print (a <= b) ? 1 : 0 }') ;;
    -fge) ok=$(awk -v a="$value" -v b="$goal" 'BEGIN { print (a >= b) ? 1 : 0 }') ;;
    *) if [ "$value" "$op" "$goal" ] 2>/dev/null; then ok=1; else ok=0; fi ;;
    esac
    local words
    case $op in -le | -fle) words="<=" ;; -ge | -fge) words=">=" ;; -eq) words="=" ;; -lt) words="<" ;; -gt) words=">" ;; *) words=$op ;; esac
    if [ "$ok" = 1 ]; then
        printf 'soak: %-58s %12s%s  (goal %s %s%s)  ok\n' "$name" "$value" "$unit" "$words" "$goal" "$unit"
    else
        printf 'soak: %-58s %12s%s  (goal %s %s%s)  MISSED\n' "$name" "$value" "$unit" "$words" "$goal" "$unit"
        soak_missed=1
    fi
}

soak_exit() {
    exit "$soak_missed"
}
