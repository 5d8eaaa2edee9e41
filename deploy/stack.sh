#!/usr/bin/env bash
# stack.sh - run a local fleetdash stack (PostgreSQL, one master per route
# group, nginx) with all its state under one directory, VARDIR.
#
#   deploy/stack.sh up VARDIR           start what is not running, wait for /readyz
#                                       (200, or only groups not in GROUPS down)
#   deploy/stack.sh down VARDIR         stop nginx, the group masters, PostgreSQL
#   deploy/stack.sh run VARDIR          up, then stay in the foreground; Ctrl-C = down
#                                       (an empty database first gets the demo fleet,
#                                       sql/dev/demo_fleet_*.sql; FLEETDASH_DEMO=0: not)
#   deploy/stack.sh start-group VARDIR G / stop-group VARDIR G
#   deploy/stack.sh pg-start VARDIR     / pg-stop VARDIR
#   (deploy/stack.sh supervise G PID_FILE COMMAND... is start-group's own)
#
# up is idempotent: it initdb's only when there is no cluster, migrates
# (sql/migrate.sh), restarts a group only when its binary was rebuilt,
# WORKERS changed or its supervisor is gone, and reloads nginx with a
# freshly rendered nginx.conf. Pid files, sockets and processes left by a
# killed run are cleaned up.
#
# Every group master runs under a supervisor (this script, `stack.sh
# supervise`, in the background) that starts the master again 1 s after it
# exits for any reason, as systemd's Restart=always does on a real host;
# down and stop-group stop the supervisor first, so a stopped group stays
# stopped. The master's pid is in run/G.pid (rewritten at every restart),
# the supervisor's in run/G.supervisor; restarts are logged in log/G.log.
#
# Settings (environment): LISTEN, the address nginx listens on (default
# 127.0.0.1:PORT, loopback only; LISTEN=0.0.0.0:8080 serves other hosts too;
# given, it wins over PORT), PORT (8080), PGPORT (5433), WORKERS (4),
# FLEETDASHD (bin/fleetdashd), GROUPS ("dashboards ingest streams aggregates
# alerts hello maintenance"; from bash, where GROUPS is a reserved variable, use
# FLEETDASH_GROUPS or `env GROUPS=...`). A group that `fleetdashd --routes`
# lists with a job and no routes (maintenance) runs one worker, no socket.
# FLEETDASH_LOG_FORMAT: json (default) or logfmt, for the groups' logs and
# nginx's access log alike.
# FLEETDASH_CORS_ORIGINS: the origins browsers may call the API from
# (space-separated, e.g. "https://app.example.com http://localhost:3000";
# none by default), written to nginx/conf.d/stack.cors when nginx starts.
# A setting not given is taken from VARDIR/stack.env when that exists, so
# later commands act on the stack as it was started.
#
# Layout: VARDIR/pg (cluster), pgsock (its socket), run (group sockets and
# pid files, nginx.pid), log (G.log, postgres.log, nginx-*.log), nginx
# (rendered nginx.conf, conf.d/ for extra locations), stack.env.

set -euo pipefail

REPO=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
readonly REPO
readonly PG_BIN=/usr/lib/postgresql/15/bin
readonly NGINX=/usr/sbin/nginx
readonly GROUP_STOP_TIMEOUT=35
readonly READY_TIMEOUT=30
readonly SOCKET_TIMEOUT=15

# ---------------------------------------------------------------- messages

say() { printf 'stack: %s\n' "$*"; }
warn() { printf 'stack: %s\n' "$*" >&2; }
die() {
    printf 'stack: error: %s\n' "$*" >&2
    exit 1
}

usage() {
    sed -n '2,/^$/{s/^# \{0,1\}//;p}' "${BASH_SOURCE[0]}" >&2
    exit 2
}

# show_log_tail FILE - print the last lines of FILE to stderr, if it exists.
show_log_tail() {
    if [[ -s $1 ]]; then
        printf -- '---- last lines of %s ----\n' "$1" >&2
        tail -n 25 -- "$1" >&2
        printf -- '----\n' >&2
    fi
}

# --------------------------------------------------------------- settings

# stack_env_get KEY - print KEY's value from VARDIR/stack.env (empty if none).
stack_env_get() {
    [[ -f $STACK_ENV ]] || return 0
    (
        # shellcheck disable=SC1090
        . "$STACK_ENV" >/dev/null 2>&1 || true
        printf '%s' "${!1-}"
    )
}

# env_given NAME - print NAME from the environment this script was started
# with. /proc is read because bash replaces an inherited GROUPS.
env_given() {
    tr '\0' '\n' </proc/$$/environ | sed -n "s/^$1=//p" | head -n 1
}

# load_settings VARDIR - resolve VARDIR and every setting; set the globals.
load_settings() {
    [[ -n ${1-} ]] || usage
    VARDIR=$(realpath -m -- "$1")
    [[ $VARDIR != / ]] || die "VARDIR must not be /"
    STACK_ENV=$VARDIR/stack.env
    PGDATA=$VARDIR/pg
    PGSOCK=$VARDIR/pgsock
    RUNDIR=$VARDIR/run
    LOGDIR=$VARDIR/log
    NGINXDIR=$VARDIR/nginx

    # LISTEN from the environment, else from PORT when that is given, else
    # as the stack was started.
    LISTEN=${LISTEN-}
    [[ -n $LISTEN || -n ${PORT-} ]] || LISTEN=$(stack_env_get LISTEN)
    PORT=${PORT:-$(stack_env_get PORT)}
    PORT=${PORT:-8080}
    [[ $PORT =~ ^[0-9]+$ ]] || die "PORT must be a number, got '$PORT'"
    LISTEN=${LISTEN:-127.0.0.1:$PORT}
    [[ $LISTEN =~ ^(\[[0-9A-Fa-f:.]+\]|[A-Za-z0-9.*-]+):([0-9]+)$ ]] ||
        die "LISTEN must be HOST:PORT (127.0.0.1:8080, 0.0.0.0:8080, [::1]:8080), got '$LISTEN'"
    local listen_host=${BASH_REMATCH[1]}
    PORT=${BASH_REMATCH[2]}
    PGPORT=${PGPORT:-$(stack_env_get PGPORT)}
    PGPORT=${PGPORT:-5433}
    WORKERS=${WORKERS:-$(stack_env_get WORKERS)}
    WORKERS=${WORKERS:-4}
    FLEETDASHD=${FLEETDASHD:-$(stack_env_get FLEETDASHD)}
    FLEETDASHD=${FLEETDASHD:-$REPO/bin/fleetdashd}
    FLEETDASHD=$(realpath -m -- "$FLEETDASHD")
    STACK_GROUPS=$(env_given GROUPS)
    STACK_GROUPS=${STACK_GROUPS:-${FLEETDASH_GROUPS-}}
    STACK_GROUPS=${STACK_GROUPS:-$(stack_env_get FLEETDASH_GROUPS)}
    STACK_GROUPS=${STACK_GROUPS:-dashboards ingest streams aggregates alerts hello maintenance}
    FLEETDASH_CORS_ORIGINS=${FLEETDASH_CORS_ORIGINS-$(stack_env_get FLEETDASH_CORS_ORIGINS)}
    FLEETDASH_LOG_FORMAT=${FLEETDASH_LOG_FORMAT:-$(stack_env_get FLEETDASH_LOG_FORMAT)}
    FLEETDASH_LOG_FORMAT=${FLEETDASH_LOG_FORMAT:-json}
    FLEETDASH_KEY=${FLEETDASH_KEY-$(stack_env_get FLEETDASH_KEY)}
    [[ $FLEETDASH_LOG_FORMAT == json || $FLEETDASH_LOG_FORMAT == logfmt ]] ||
        die "FLEETDASH_LOG_FORMAT must be json or logfmt, got '$FLEETDASH_LOG_FORMAT'"
    export FLEETDASH_LOG_FORMAT

    [[ $PGPORT =~ ^[0-9]+$ ]] || die "PGPORT must be a number, got '$PGPORT'"
    local origin
    for origin in $FLEETDASH_CORS_ORIGINS; do
        [[ $origin =~ ^https?://[A-Za-z0-9.-]+(:[0-9]+)?$ ]] ||
            die "FLEETDASH_CORS_ORIGINS: '$origin' is not an origin (scheme://host[:port])"
    done
    [[ $WORKERS =~ ^[1-9][0-9]*$ ]] || die "WORKERS must be a positive number, got '$WORKERS'"
    local group
    for group in $STACK_GROUPS; do
        check_group_name "$group"
    done

    DATABASE_URL="host=$PGSOCK port=$PGPORT dbname=fleetdash user=postgres"
    BASE_URL=http://$(listen_client_host "$listen_host"):$PORT
}

# listen_client_host HOST - the host a local client reaches nginx's HOST at:
# loopback for the wildcard addresses.
listen_client_host() {
    case $1 in
    0.0.0.0 | '*') printf '127.0.0.1' ;;
    '[::]') printf '[::1]' ;;
    *) printf '%s' "$1" ;;
    esac
}

check_group_name() {
    [[ $1 =~ ^[a-z][a-z0-9_]*$ ]] || die "bad group name '$1' (want [a-z][a-z0-9_]*)"
}

write_stack_env() {
    local tmp=$STACK_ENV.tmp key
    {
        printf '# %s - written by deploy/stack.sh up; source it from a shell\n' "$STACK_ENV"
        for key in LISTEN PORT BASE_URL VARDIR PGHOST PGPORT PGDATA PGUSER PGDATABASE \
            DATABASE_URL FLEETDASHD WORKERS FLEETDASH_GROUPS FLEETDASH_CORS_ORIGINS \
            FLEETDASH_LOG_FORMAT FLEETDASH_KEY; do
            printf "export %s='%s'\n" "$key" "${!key//\'/\'\\\'\'}"
        done
    } >"$tmp"
    mv -f -- "$tmp" "$STACK_ENV"
}

# ---------------------------------------------------------------- locking

# lock_vardir - serialise stack.sh runs on one VARDIR. Daemons started while
# the lock is held get fd 9 closed, so they never inherit it.
lock_vardir() {
    mkdir -p -- "$VARDIR"
    exec 9>"$VARDIR/.stack.lock"
    flock -w 120 9 || die "another stack.sh is busy with $VARDIR"
}

unlock_vardir() {
    exec 9>&-
}

# -------------------------------------------------------------- processes

# proc_alive PID - true if PID exists and is not a zombie.
proc_alive() {
    local state
    [[ $1 =~ ^[0-9]+$ ]] || return 1
    state=$(awk '{ sub(/^.*\) /, ""); print substr($0, 1, 1) }' "/proc/$1/stat" 2>/dev/null) || return 1
    [[ -n $state && $state != Z ]]
}

# proc_has_arg PID ARG - true if ARG is one of PID's command-line arguments.
proc_has_arg() {
    grep -qzxF -- "$2" "/proc/$1/cmdline" 2>/dev/null
}

# proc_cmdline_contains PID TEXT - true if PID's command line contains TEXT
# (nginx rewrites its argv into one string, "nginx: master process ...").
proc_cmdline_contains() {
    tr '\0' ' ' <"/proc/$1/cmdline" 2>/dev/null | grep -qF -- "$2"
}

# read_pid_file FILE - print the pid in FILE, or nothing.
read_pid_file() {
    local pid=
    if [[ -f $1 ]]; then
        read -r pid <"$1" 2>/dev/null || true
    fi
    [[ $pid =~ ^[0-9]+$ ]] && printf '%s' "$pid"
    return 0
}

# wait_gone TIMEOUT PID... - wait until no PID is alive; false on timeout.
wait_gone() {
    local timeout=$1 deadline pid alive
    shift
    deadline=$((SECONDS + timeout))
    while :; do
        alive=0
        for pid in "$@"; do
            proc_alive "$pid" && alive=1
        done
        ((alive)) || return 0
        ((SECONDS < deadline)) || return 1
        sleep 0.1
    done
}

# terminate TIMEOUT PID... - SIGTERM, wait up to TIMEOUT s, then SIGKILL.
terminate() {
    local timeout=$1
    shift
    (($#)) || return 0
    kill -TERM -- "$@" 2>/dev/null || true
    if ! wait_gone "$timeout" "$@"; then
        warn "still running after ${timeout}s, killing: $*"
        kill -KILL -- "$@" 2>/dev/null || true
        wait_gone 5 "$@" || warn "could not kill: $*"
    fi
}

# ------------------------------------------------------------- PostgreSQL

pg_ctl_as_postgres() {
    (cd / && runuser -u postgres -- env GLIBC_TUNABLES="${GLIBC_TUNABLES-}" "$PG_BIN/pg_ctl" "$@") 9>&-
}

# The malloc settings PostgreSQL runs with (pg_start; deploy/README.md says
# how a packaged cluster gets them).
PG_GLIBC_TUNABLES=glibc.malloc.mmap_threshold=8388608:glibc.malloc.trim_threshold=16777216

# postmaster_pid - print the pid of this VARDIR's running postmaster.
postmaster_pid() {
    local pid
    pid=$(read_pid_file "$PGDATA/postmaster.pid")
    [[ -n $pid ]] && proc_alive "$pid" || return 1
    [[ $(cat "/proc/$pid/comm" 2>/dev/null) == postgres ]] || return 1
    [[ $(readlink "/proc/$pid/cwd" 2>/dev/null) == "$PGDATA" ]] || return 1
    printf '%s' "$pid"
}

pg_psql() {
    psql -X -q -v ON_ERROR_STOP=1 -h "$PGSOCK" -p "$PGPORT" -U postgres "$@"
}

pg_init_cluster() {
    if [[ -f $PGDATA/PG_VERSION ]]; then
        [[ $(cat "$PGDATA/PG_VERSION") == 15 ]] ||
            die "$PGDATA holds a PostgreSQL $(cat "$PGDATA/PG_VERSION") cluster, not 15"
        return 0
    fi
    if [[ -n $(ls -A -- "$PGDATA") ]]; then
        die "$PGDATA is not empty but holds no cluster; remove it or pick another VARDIR"
    fi
    say "initdb $PGDATA"
    (cd / && runuser -u postgres -- "$PG_BIN/initdb" -D "$PGDATA" -U postgres \
        --auth-local=trust --auth-host=reject -E UTF8 --locale=C.UTF-8) \
        >"$LOGDIR/initdb.log" 2>&1 ||
        {
            show_log_tail "$LOGDIR/initdb.log"
            die "initdb failed"
        }
    printf "\n# fleetdash dev settings, rewritten by deploy/stack.sh\ninclude_if_exists = 'fleetdash.conf'\n" \
        >>"$PGDATA/postgresql.conf"
}

# pg_write_settings - (re)write PGDATA/fleetdash.conf from the settings.
pg_write_settings() {
    local sockdir=${PGSOCK//\'/\'\'}
    cat >"$PGDATA/fleetdash.conf" <<EOF
# written by deploy/stack.sh; changes need a restart (pg-stop, pg-start)
listen_addresses = ''
unix_socket_directories = '$sockdir'
port = $PGPORT
# Sized for bulk ingest on a dev/CI machine (24 GiB); production tunes its own.
shared_buffers = 1GB
max_wal_size = 8GB
checkpoint_timeout = 15min
wal_buffers = 64MB
maintenance_work_mem = 512MB
logging_collector = off
log_line_prefix = '%m [%p] %q%u@%d '
EOF
    chown postgres:postgres "$PGDATA/fleetdash.conf"
}

pg_prepare_dirs() {
    mkdir -p -- "$PGDATA" "$PGSOCK" "$LOGDIR"
    chown postgres:postgres "$PGDATA" "$PGSOCK"
    chmod 0700 "$PGDATA"
    chmod 0755 "$PGSOCK"
    runuser -u postgres -- test -w "$PGDATA" -a -x "$PGDATA" ||
        die "user postgres cannot reach $PGDATA; every parent directory needs o+x"
    local socket=$PGSOCK/.s.PGSQL.$PGPORT
    ((${#socket} < 108)) || die "socket path too long (max 107 bytes): $socket"
}

pg_start() {
    local pid
    pg_prepare_dirs
    pg_init_cluster
    if pid=$(postmaster_pid); then
        pg_write_settings
        (cd / && "$PG_BIN/pg_isready" -q -h "$PGSOCK" -p "$PGPORT") ||
            die "postgres (pid $pid) runs in $PGDATA but not on $PGSOCK port $PGPORT; run pg-stop first"
        say "postgres already running (pid $pid)"
        return 0
    fi
    if [[ -e $PGDATA/postmaster.pid ]]; then
        warn "removing stale $PGDATA/postmaster.pid"
        rm -f -- "$PGDATA/postmaster.pid"
    fi
    rm -f -- "$PGSOCK"/.s.PGSQL.*
    pg_write_settings
    touch "$LOGDIR/postgres.log"
    chown postgres:postgres "$LOGDIR/postgres.log"
    say "starting postgres on $PGSOCK port $PGPORT"
    # glibc hands allocations above 128 kB to mmap() and gives them back on
    # free(), so a backend's every sort, hash table and tuplestore of a few
    # MB came as fresh pages: ~970 page faults per 720-point time series,
    # ~1.5 ms of its ~10. Up to 8 MB from the heap, reused: ~35. But with
    # the threshold set, glibc gave back the top of the heap above 128 kB at
    # every free() (its trim threshold no longer follows the mmap one), and
    # the answer's next JSON text of 240 kB faulted its pages in again: ~580
    # faults per series, ~20 % of its time. The top kept up to 16 MB: none.
    if ! GLIBC_TUNABLES=$PG_GLIBC_TUNABLES pg_ctl_as_postgres start -w -t 60 -s -D "$PGDATA" \
            -l "$LOGDIR/postgres.log"; then
        show_log_tail "$LOGDIR/postgres.log"
        die "postgres did not start"
    fi
}

pg_stop() {
    local pid
    if ! pid=$(postmaster_pid); then
        say "postgres not running"
        return 0
    fi
    say "stopping postgres (pid $pid)"
    if ! pg_ctl_as_postgres stop -m fast -w -t 60 -s -D "$PGDATA"; then
        warn "pg_ctl stop failed; sending SIGQUIT"
        kill -QUIT "$pid" 2>/dev/null || true
        wait_gone 10 "$pid" || kill -KILL "$pid" 2>/dev/null || true
    fi
}

pg_create_database() {
    local exists
    exists=$(pg_psql -d postgres -tAc "SELECT 1 FROM pg_database WHERE datname = 'fleetdash'") ||
        die "cannot query postgres on $PGSOCK port $PGPORT"
    if [[ $exists != 1 ]]; then
        say "creating database fleetdash"
        pg_psql -d postgres -c 'CREATE DATABASE fleetdash' || die "CREATE DATABASE fleetdash failed"
    fi
}

run_migrations() {
    local migrate=$REPO/sql/migrate.sh
    [[ -f $migrate ]] || die "$migrate does not exist (it applies sql/NNN_*.sql); cannot migrate"
    say "migrating: sql/migrate.sh"
    if [[ -x $migrate ]]; then
        "$migrate" "$DATABASE_URL" || die "sql/migrate.sh failed"
    else
        bash "$migrate" "$DATABASE_URL" || die "sql/migrate.sh failed"
    fi
}

# ---------------------------------------------------------- group masters

group_socket() { printf '%s/%s.sock' "$RUNDIR" "$1"; }
group_pid_file() { printf '%s/%s.pid' "$RUNDIR" "$1"; }
group_supervisor_file() { printf '%s/%s.supervisor' "$RUNDIR" "$1"; }

# group_master_pid G - print the pid of G's running master (from its pid
# file, checked against the process's --listen argument).
group_master_pid() {
    local pid
    pid=$(read_pid_file "$(group_pid_file "$1")")
    [[ -n $pid ]] && proc_alive "$pid" || return 1
    proc_has_arg "$pid" "unix:$(group_socket "$1")" || return 1
    printf '%s' "$pid"
}

# group_supervisor_pid G - print the pid of G's running supervisor (from
# run/G.supervisor, checked against its command line).
group_supervisor_pid() {
    local pid
    pid=$(read_pid_file "$(group_supervisor_file "$1")")
    [[ -n $pid ]] && proc_alive "$pid" || return 1
    proc_has_arg "$pid" supervise && proc_has_arg "$pid" "unix:$(group_socket "$1")" || return 1
    printf '%s' "$pid"
}

# group_main_pids G - print the pids of G's supervisor and master, those
# that run, on one line; group_main_words G says which is which.
group_main_pids() {
    local pids=() pid
    if pid=$(group_supervisor_pid "$1"); then pids+=("$pid"); fi
    if pid=$(group_master_pid "$1"); then pids+=("$pid"); fi
    printf '%s' "${pids[*]}"
}

group_main_words() {
    local words=() pid
    if pid=$(group_master_pid "$1"); then words+=("pid $pid"); fi
    if pid=$(group_supervisor_pid "$1"); then words+=("supervisor $pid"); fi
    printf '%s' "${words[0]-}${words[1]:+, ${words[1]}}"
}

# group_processes G - print the pids of every process of G (supervisor,
# master and workers, also orphans of a killed master): they carry its
# --listen argument.
group_processes() {
    local arg file files pid
    arg="unix:$(group_socket "$1")"
    # Collected first: grep's own command line holds the argument too, and
    # it must be gone before the pids are checked.
    files=$(grep -lzxF -- "$arg" /proc/[0-9]*/cmdline 2>/dev/null || true)
    for file in $files; do
        pid=${file#/proc/}
        pid=${pid%/cmdline}
        if [[ $pid != "$$" ]] && proc_alive "$pid"; then
            printf '%s\n' "$pid"
        fi
    done
    return 0
}

# is_job_group G - true if G runs a job and serves no routes: the binary's
# --routes lists none for it (its --listen argument only names its
# processes), and it runs one worker (more would only wait for each
# other's lock).
is_job_group() {
    "$FLEETDASHD" --routes | awk -v g="$1" '$1 == g { jobs += $2 == "job"; routes += $2 != "job" }
        END { exit !(jobs > 0 && routes == 0) }'
}

# group_workers G - how many workers G runs.
group_workers() {
    if is_job_group "$1"; then printf 1; else printf '%s' "$WORKERS"; fi
}

# group_started G LOG OFFSET - true once G works: its socket exists, or for
# a job group, its master logged after byte OFFSET of LOG that it runs.
group_started() {
    if is_job_group "$1"; then
        # the master's "running the JOB job" record, JSON or logfmt
        tail -c +"$(($3 + 1))" -- "$2" 2>/dev/null | grep -qE '(msg="|"msg":")running the '
    else
        [[ -S $(group_socket "$1") ]]
    fi
}

# group_is_current PID G - true if the master PID runs $FLEETDASHD as it is
# now (not a binary since rebuilt) with G's number of workers.
group_is_current() {
    proc_has_arg "$1" "$FLEETDASHD" || return 1
    [[ $(readlink "/proc/$1/exe" 2>/dev/null) != *" (deleted)" ]] || return 1
    [[ $(tr '\0' '\n' <"/proc/$1/cmdline" 2>/dev/null | grep -A1 -xF -- --workers | tail -n 1) == "$(group_workers "$2")" ]]
}

# supervise_master G PID_FILE COMMAND... - `stack.sh supervise`, started
# by start_group in the background: runs COMMAND (G's master), writes its
# pid to PID_FILE, and starts it again 1 s after it exits, whatever the
# reason, until SIGTERM or SIGINT, which it passes on to the master before
# waiting for it. Its command line carries the master's, --listen included,
# so that group_processes finds it.
supervise_master() {
    local group=$1 pid_file=$2 child='' stopping='' status
    shift 2
    trap 'stopping=1; if [[ -n $child ]]; then kill -TERM "$child" 2>/dev/null || true; fi' TERM INT
    while [[ -z $stopping ]]; do
        "$@" &
        child=$!
        printf '%s\n' "$child" >"$pid_file.tmp"
        mv -f -- "$pid_file.tmp" "$pid_file"
        # A stop that came between the fork and child=$! found no child.
        if [[ -n $stopping ]]; then kill -TERM "$child" 2>/dev/null || true; fi
        status=0
        wait "$child" || status=$?
        # wait also returns when a trapped signal arrives: wait on until the
        # master is really gone.
        while kill -0 "$child" 2>/dev/null; do
            status=0
            wait "$child" || status=$?
        done
        child=''
        [[ -z $stopping ]] || break
        printf -- '--- %s stack.sh: the master of %s exited with status %s; starting it again in 1s\n' \
            "$(date -u +%FT%TZ)" "$group" "$status"
        sleep 1 &
        wait $! || true
    done
}

start_group() {
    local group=$1 pid supervisor socket pid_file supervisor_file log deadline offset workers
    socket=$(group_socket "$group")
    workers=$(group_workers "$group")
    pid_file=$(group_pid_file "$group")
    supervisor_file=$(group_supervisor_file "$group")
    log=$LOGDIR/$group.log
    pid=$(group_master_pid "$group") || pid=''
    supervisor=$(group_supervisor_pid "$group") || supervisor=''
    if [[ -n $pid && -n $supervisor ]] && group_is_current "$pid" "$group"; then
        say "group $group already running (pid $pid)"
        return 0
    fi
    if [[ -n $pid$supervisor ]]; then
        if [[ -z $supervisor ]]; then
            say "group $group (pid $pid) runs without its supervisor; restarting it"
        elif [[ -z $pid ]]; then
            say "group $group: its master is being restarted by its supervisor; restarting both"
        else
            say "group $group (pid $pid) runs another binary or worker count; restarting it"
        fi
        stop_group "$group"
    fi
    [[ -x $FLEETDASHD ]] || die "$FLEETDASHD is not an executable (build it first: make)"
    ((${#socket} < 108)) || die "socket path too long (max 107 bytes): $socket"
    mkdir -p -- "$RUNDIR" "$LOGDIR"
    chmod 0755 "$RUNDIR"
    # Leftovers of a killed run: orphaned workers, pid files, socket.
    # shellcheck disable=SC2046
    terminate 5 $(group_processes "$group")
    rm -f -- "$pid_file" "$supervisor_file" "$socket"

    say "starting group $group ($workers workers) on $socket"
    printf -- '--- %s stack.sh: starting %s\n' "$(date -u +%FT%TZ)" "$group" >>"$log"
    offset=$(stat -c %s -- "$log")
    # The inner & in a subshell that exits at once: the supervisor is
    # reparented to init straight away, in its own session (no Ctrl-C from
    # a terminal).
    (
        cd "$VARDIR"
        FLEETDASH_DATABASE_URL=$DATABASE_URL FLEETDASH_NCHAN_SOCKET=$RUNDIR/nchan.sock \
            setsid "$BASH" "$REPO/deploy/stack.sh" supervise "$group" "$pid_file" \
            "$FLEETDASHD" --group "$group" --workers "$workers" \
            --listen "unix:$socket" </dev/null >>"$log" 2>&1 9>&- &
        printf '%s\n' "$!" >"$supervisor_file"
    )
    supervisor=$(read_pid_file "$supervisor_file")
    deadline=$((SECONDS + SOCKET_TIMEOUT))
    # Started: the socket (or the job's record) is there and so is the pid
    # file; the master can make its socket before the supervisor, a shell,
    # has written the pid it forked.
    until pid=$(read_pid_file "$pid_file") && [[ -n $pid ]] &&
        group_started "$group" "$log" "$offset"; do
        # The first master exiting is a failure to start, not a crash to
        # retry: the supervisor goes too.
        if ! proc_alive "$supervisor" || { [[ -n $pid ]] && ! proc_alive "$pid"; }; then
            terminate 5 "$supervisor"
            rm -f -- "$pid_file" "$supervisor_file"
            show_log_tail "$log"
            die "group $group exited during start-up (log: $log)"
        fi
        if ((SECONDS >= deadline)); then
            terminate 5 "$supervisor" ${pid:+"$pid"}
            rm -f -- "$pid_file" "$supervisor_file"
            show_log_tail "$log"
            die "group $group: not started (no socket $socket) after ${SOCKET_TIMEOUT}s"
        fi
        sleep 0.1
    done
}

# stop_group G - stop G's supervisor and master (the master drains its
# workers), then whatever else of G is left.
stop_group() {
    local group=$1 pids leftovers
    pids=$(group_main_pids "$group")
    if [[ -n $pids ]]; then
        say "stopping group $group ($(group_main_words "$group"))"
        # shellcheck disable=SC2086
        terminate "$GROUP_STOP_TIMEOUT" $pids
    fi
    leftovers=$(group_processes "$group")
    if [[ -n $leftovers ]]; then
        warn "group $group: stopping leftover processes: ${leftovers//$'\n'/ }"
        # shellcheck disable=SC2086
        terminate 5 $leftovers
    fi
    rm -f -- "$(group_pid_file "$group")" "$(group_supervisor_file "$group")" \
        "$(group_socket "$group")"
}

# stop_groups G... - SIGTERM every master at once, then wait for all: they
# drain in parallel.
stop_groups() {
    local group pid pids=()
    for group in "$@"; do
        pid=$(group_main_pids "$group")
        if [[ -n $pid ]]; then
            say "stopping group $group ($(group_main_words "$group"))"
            # shellcheck disable=SC2206
            pids+=($pid)
        fi
    done
    terminate "$GROUP_STOP_TIMEOUT" "${pids[@]}"
    for group in "$@"; do
        stop_group "$group" >/dev/null
    done
}

# Groups with a pid file or socket in RUNDIR, whatever GROUPS says now.
groups_present() {
    local file name
    for file in "$RUNDIR"/*.pid "$RUNDIR"/*.supervisor "$RUNDIR"/*.sock; do
        [[ -e $file ]] || continue
        name=${file##*/}
        name=${name%.*}
        [[ $name != nginx ]] && printf '%s\n' "$name"
    done | sort -u
}

# ------------------------------------------------------------------ nginx

nginx_pid() {
    local pid
    pid=$(read_pid_file "$RUNDIR/nginx.pid")
    [[ -n $pid ]] && proc_alive "$pid" || return 1
    proc_cmdline_contains "$pid" "$NGINXDIR/nginx.conf" || return 1
    printf '%s' "$pid"
}

# nginx_processes - pids of nginx processes holding this stack's logs open
# (finds workers orphaned by a killed master).
nginx_processes() {
    local file pid
    grep -lx nginx /proc/[0-9]*/comm 2>/dev/null |
        while IFS= read -r file; do
            pid=${file#/proc/}
            pid=${pid%/comm}
            if find "/proc/$pid/fd" -maxdepth 1 -lname "$LOGDIR/nginx-*" 2>/dev/null | grep -q .; then
                printf '%s\n' "$pid"
            fi
        done
    return 0
}

# sed_escape TEXT - TEXT made safe as a sed replacement with | delimiters.
sed_escape() {
    printf '%s' "$1" | sed -e 's/[\\|&]/\\&/g'
}

render_nginx_conf() {
    local out=$NGINXDIR/nginx.conf tmp leftovers
    tmp=$out.tmp
    mkdir -p -- "$NGINXDIR/conf.d"
    # Comment lines are left alone: they keep describing production.
    {
        printf '# Rendered by deploy/stack.sh from %s/nginx.conf: edit that file.\n' "$REPO"
        sed -e '/^[[:space:]]*#/b' \
            -e "s|^\([[:space:]]*listen[[:space:]]\{1,\}\)127\.0\.0\.1:8080\([;[:space:]]\)|\1$(sed_escape "$LISTEN")\2|" \
            -e "s|/run/fleetdash|$(sed_escape "$RUNDIR")|g" \
            -e "s|/var/log/fleetdash|$(sed_escape "$LOGDIR")|g" \
            -e "s|/etc/fleetdash/nginx\.d|$(sed_escape "$NGINXDIR/conf.d")|g" \
            -e "s|^\([[:space:]]*access_log[[:space:]].*[[:space:]]\)fleetdash_json\([[:space:]]\)|\1fleetdash_$FLEETDASH_LOG_FORMAT\2|" \
            "$REPO/nginx.conf"
    } >"$tmp"
    leftovers=$(grep -vE '^[[:space:]]*#' "$tmp" | grep -E '/run/fleetdash|/var/log/fleetdash|/etc/fleetdash' || true)
    if [[ -n $leftovers ]] || ! grep -qxF -- "listen $LISTEN;" <(sed 's/^[[:space:]]*//' "$tmp"); then
        rm -f -- "$tmp"
        die "rendering nginx.conf did not replace the production values (listen 127.0.0.1:8080, paths):"$'\n'"$leftovers"
    fi
    mv -f -- "$tmp" "$out"
    render_cors_origins
}

# render_cors_origins - nginx/conf.d/stack.cors from FLEETDASH_CORS_ORIGINS:
# one map line per origin (nginx.conf, "Browsers on other origins"); the
# settings checked each is scheme://host[:port], nothing else.
render_cors_origins() {
    local cors=$NGINXDIR/conf.d/stack.cors origin
    if [[ -z ${FLEETDASH_CORS_ORIGINS-} ]]; then
        rm -f -- "$cors"
        return 0
    fi
    for origin in $FLEETDASH_CORS_ORIGINS; do
        printf '"%s" $http_origin;\n' "$origin"
    done >"$cors"
}

nginx_test() {
    local output
    if ! output=$("$NGINX" -t -q -e "$LOGDIR/nginx-error.log" -c "$NGINXDIR/nginx.conf" -p "$NGINXDIR/" 2>&1); then
        printf '%s\n' "$output" >&2
        die "nginx rejects $NGINXDIR/nginx.conf"
    fi
}

start_nginx() {
    local pid output listening=
    mkdir -p -- "$RUNDIR" "$LOGDIR"
    runuser -u www-data -- test -x "$RUNDIR" ||
        die "nginx workers (www-data) cannot reach $RUNDIR; every parent directory needs o+x"
    render_nginx_conf
    nginx_test
    # A reload cannot move a socket (*:8080 -> 127.0.0.1:8080 fails to bind,
    # and nginx goes on with its old configuration): restart instead.
    # RUNDIR/nginx.listen says where the running nginx was started.
    [[ -f $RUNDIR/nginx.listen ]] && listening=$(<"$RUNDIR/nginx.listen")
    if pid=$(nginx_pid) && [[ $listening != "$LISTEN" ]]; then
        say "nginx (pid $pid) listens on ${listening:-an older address}; restarting it on $LISTEN"
        stop_nginx
    fi
    if pid=$(nginx_pid); then
        say "nginx already running (pid $pid); reloading its configuration"
        kill -HUP "$pid"
        return 0
    fi
    # shellcheck disable=SC2046
    terminate 5 $(nginx_processes)
    rm -f -- "$RUNDIR/nginx.pid"
    say "starting nginx on $LISTEN"
    if ! output=$(cd "$NGINXDIR" && "$NGINX" -e "$LOGDIR/nginx-error.log" \
        -c "$NGINXDIR/nginx.conf" -p "$NGINXDIR/" </dev/null 2>&1 9>&-); then
        if [[ -n $output ]]; then
            printf '%s\n' "$output" >&2
        else
            show_log_tail "$LOGDIR/nginx-error.log"
        fi
        die "nginx did not start"
    fi
    printf '%s\n' "$LISTEN" >"$RUNDIR/nginx.listen"
}

stop_nginx() {
    local pid leftovers
    if pid=$(nginx_pid); then
        say "stopping nginx (pid $pid)"
        kill -QUIT "$pid" 2>/dev/null || true
        if ! wait_gone 10 "$pid"; then
            terminate 5 "$pid"
        fi
    fi
    leftovers=$(nginx_processes)
    if [[ -n $leftovers ]]; then
        warn "stopping leftover nginx processes: ${leftovers//$'\n'/ }"
        # shellcheck disable=SC2086
        terminate 5 $leftovers
    fi
    rm -f -- "$RUNDIR/nginx.pid" "$RUNDIR/nginx.listen"
}

# ready_for_stack CODE BODY - true if /readyz's answer says that this stack
# is ready: 200, or a 503 whose groups member (the database answered) names
# as down only groups that GROUPS does not start.
ready_for_stack() {
    local group
    [[ $1 == 200 ]] && return 0
    [[ $1 == 503 && $2 == *'"groups":{'* ]] || return 1
    for group in $STACK_GROUPS; do
        [[ $2 != *"\"$group\":\"down\""* ]] || return 1
    done
}

wait_ready() {
    local deadline code=000 body group
    deadline=$((SECONDS + READY_TIMEOUT))
    while ((SECONDS < deadline)); do
        body=$(curl --noproxy '*' -s -m 2 -w '\n%{http_code}' "$BASE_URL/readyz" || true)
        code=${body##*$'\n'}
        ready_for_stack "$code" "${body%$'\n'*}" && return 0
        sleep 0.2
    done
    for group in $STACK_GROUPS; do
        show_log_tail "$LOGDIR/$group.log"
    done
    show_log_tail "$LOGDIR/nginx-error.log"
    show_log_tail "$LOGDIR/postgres.log"
    die "GET $BASE_URL/readyz did not answer that the groups of GROUPS serve within ${READY_TIMEOUT}s (last: $code)"
}

# --------------------------------------------------------------- commands

# ensure_first_key - the stack's key (FLEETDASH_KEY in stack.env): an
# empty api_keys table gets an admin key, printed once here; a key that
# stack.env already holds and the database knows is kept. A database with
# keys but none for this stack is left alone (said).
ensure_first_key() {
    local count known
    count=$(pg_psql -d fleetdash -tAc 'SELECT count(*) FROM api_keys') ||
        die "cannot count the API keys"
    if [[ -n ${FLEETDASH_KEY-} ]]; then
        known=$(pg_psql -d fleetdash -tA -v key="$FLEETDASH_KEY" \
            <<<"SELECT count(*) FROM api_keys WHERE key_hash = sha256(convert_to(:'key', 'UTF8'))") ||
            die "cannot look the stack's API key up"
        [[ $known == 1 ]] && return 0
        warn "FLEETDASH_KEY (from $STACK_ENV or the environment) is no key of this database"
        FLEETDASH_KEY=
    fi
    if ((count > 0)); then
        warn "no API key for this stack: the database has $count (make one:" \
            "$FLEETDASHD --new-key NAME --database-url \"\$DATABASE_URL\")"
        return 0
    fi
    FLEETDASH_KEY=$("$FLEETDASHD" --new-key "first admin key ($VARDIR)" --role admin \
        --database-url "$DATABASE_URL" 2>>"$LOGDIR/new-key.log") ||
        die "creating the first API key failed (see $LOGDIR/new-key.log)"
    say "first API key (role admin), kept in $STACK_ENV as FLEETDASH_KEY:"
    say "  $FLEETDASH_KEY"
}

cmd_up() {
    local group
    lock_vardir
    mkdir -p -- "$RUNDIR" "$LOGDIR" "$NGINXDIR/conf.d"
    [[ -x $FLEETDASHD ]] || die "$FLEETDASHD is not an executable (build it first: make)"
    # Written first: later commands (down, stop-group) find this stack's
    # settings even when this up fails half-way.
    PGHOST=$PGSOCK PGUSER=postgres PGDATABASE=fleetdash FLEETDASH_GROUPS=$STACK_GROUPS \
        write_stack_env
    pg_start
    pg_create_database
    run_migrations
    ensure_first_key
    PGHOST=$PGSOCK PGUSER=postgres PGDATABASE=fleetdash FLEETDASH_GROUPS=$STACK_GROUPS \
        write_stack_env
    for group in $STACK_GROUPS; do
        start_group "$group"
    done
    start_nginx
    wait_ready
    say "ready: $BASE_URL (settings: $STACK_ENV)"
}

cmd_down() {
    local groups
    if [[ ! -d $VARDIR ]]; then
        say "nothing to stop: $VARDIR does not exist"
        return 0
    fi
    lock_vardir
    stop_nginx
    groups=$( (
        # shellcheck disable=SC2086
        printf '%s\n' $STACK_GROUPS
        groups_present
    ) | sort -u)
    # shellcheck disable=SC2086
    stop_groups $groups
    pg_stop
    say "stopped"
}

# load_demo_functions - (re)create demo_fleet() and its helpers from
# sql/dev/demo_fleet_*.sql, in one transaction (they are no migration:
# production databases never get them).
load_demo_functions() {
    local files=() file
    for file in "$REPO"/sql/dev/demo_fleet_*.sql; do
        files+=(-f "$file")
    done
    pg_psql -d fleetdash -1 -c 'SET client_min_messages = warning' "${files[@]}"
}

# load_demo_fleet - `run` only: the default demo fleet (demo_fleet(), 50
# agents, 200,000 executions over 30 days) into a database without agents,
# unless FLEETDASH_DEMO=0. A failure is reported; the stack stays up.
load_demo_fleet() {
    local agents summary
    if [[ ${FLEETDASH_DEMO-} == 0 ]]; then
        say "FLEETDASH_DEMO=0: no demo fleet"
        return 0
    fi
    if ! agents=$(pg_psql -d fleetdash -tAc 'SELECT count(*) FROM agents'); then
        warn "cannot count the agents; no demo fleet loaded"
        return 0
    fi
    if [[ $agents != 0 ]]; then
        say "the database has $agents agents: no demo fleet loaded"
        return 0
    fi
    say "empty database: loading the demo fleet (50 agents, 200,000 executions over 30 days)"
    say "  (to start empty: Ctrl-C, rm -rf $VARDIR, FLEETDASH_DEMO=0 make run)"
    if ! load_demo_functions; then
        warn "loading sql/dev/demo_fleet_*.sql failed; no demo fleet loaded"
        return 0
    fi
    if ! summary=$(pg_psql -d fleetdash -tAc "SET client_min_messages = warning;
        SELECT format('%s agents, %s versions, %s executions, %s evaluations, %s problems,'
                      ' %s deployments, %s alerts in %s s', agents, versions, executions,
                      evaluations, problems, deployments, alerts, seconds) FROM demo_fleet()"); then
        warn "loading the demo fleet failed (nothing was stored); the fleet is empty"
        return 0
    fi
    say "demo fleet: $summary"
    pg_psql -d fleetdash -c 'VACUUM (ANALYZE) executions' || warn "VACUUM after the demo fleet failed"
}

# run_up_failed - EXIT trap while `run` brings the stack up: stop what started.
# shellcheck disable=SC2317 # reached through the trap
run_up_failed() {
    local status=$?
    trap - EXIT
    warn "up failed; stopping what was started"
    cmd_down || true
    exit "$status"
}

cmd_run() {
    trap run_up_failed EXIT
    cmd_up
    trap - EXIT
    unlock_vardir
    trap 'trap - INT TERM; printf "\n"; cmd_down; exit 0' INT TERM
    load_demo_fleet
    cat <<EOF

fleetdash is up at $BASE_URL  (Ctrl-C stops everything)
  . $STACK_ENV    # BASE_URL, FLEETDASH_KEY (an admin API key), DATABASE_URL ...
  curl -i -H "Authorization: Bearer \$FLEETDASH_KEY" $BASE_URL/api/v1/dashboards/default
  . $STACK_ENV && psql    # the database
  logs: $LOGDIR
EOF
    while :; do
        sleep 1 &
        wait $! || true
    done
}

main() {
    local command=${1-}
    [[ -n $command ]] || usage
    shift
    case $command in
    up | down | run | pg-start | pg-stop)
        (($# == 1)) || usage
        load_settings "$1"
        ;;
    start-group | stop-group)
        (($# == 2)) || usage
        load_settings "$1"
        check_group_name "$2"
        ;;
    supervise) (($# >= 3)) || usage ;;
    -h | --help | help) usage ;;
    *) usage ;;
    esac
    case $command in
    up) cmd_up ;;
    down) cmd_down ;;
    run) cmd_run ;;
    pg-start)
        lock_vardir
        pg_start
        ;;
    pg-stop)
        lock_vardir
        pg_stop
        ;;
    start-group)
        lock_vardir
        start_group "$2"
        ;;
    stop-group)
        [[ -d $VARDIR ]] || return 0
        lock_vardir
        stop_group "$2"
        ;;
    supervise) supervise_master "$@" ;;
    esac
}

# One block, parsed whole before it runs: bash reads a script as it runs it,
# and a supervisor (stack.sh supervise) lives on while this file may be
# edited; it must not read on into a changed file when main returns.
{
    main "$@"
    exit
}
