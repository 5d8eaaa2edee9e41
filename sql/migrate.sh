#!/usr/bin/env bash
# migrate.sh - apply the numbered sql/NNN_*.sql migrations not yet recorded,
# then the repeatable sql/functions/*.sql files that changed
#
# Usage: sql/migrate.sh CONNINFO
#
# CONNINFO is anything psql accepts as a connection: a keyword string
# ("host=/run/pg port=5433 dbname=fleetdash user=postgres") or a URI
# ("postgres://user@host:5433/fleetdash").
#
# Numbered files. Every file sql/[0-9][0-9][0-9]_*.sql is applied in name
# order, unless its version (the file name without ".sql", e.g. "001_core")
# is already in schema_migrations. Each file runs in its own transaction
# together with the row that records it, so a file is either applied and
# recorded, or neither. An applied file must never be edited: a changed
# checksum is reported as a warning and the file is not re-applied; write a
# new migration instead.
#
# Repeatable files. Then every file sql/functions/*.sql is applied again, in
# name order, from the first one whose sha256 differs from the one recorded
# in schema_repeatables (or that is not recorded) to the last: a file may
# depend on the files before it, so those after a changed one are made
# again too. When this run applied a numbered file, every repeatable file
# is applied again (a migration may have dropped what they define). Each
# runs in its own transaction with the row that records its checksum.
# They define functions, views and triggers only, written to run any
# number of times (CREATE OR REPLACE; DROP ... IF EXISTS first where a
# signature changes); see sql/README.md.
#
# Runners are serialized by a transaction-level advisory lock, and "already
# applied?" is decided again after the lock is taken, so concurrent runs apply
# each numbered file exactly once. Running again when nothing changed is a
# no-op.
#
# No file may contain BEGIN/COMMIT, nor statements that cannot run inside a
# transaction block (CREATE INDEX CONCURRENTLY, VACUUM ...). sql/dev/ (the
# demo fleet) is never applied here: production databases do not get it.
#
# Exit status: 0 when every file is applied, 1 when one failed (it was
# rolled back and nothing after it was tried), 2 on bad usage.

set -euo pipefail
export LC_ALL=C                         # glob order = byte order of names
export PGAPPNAME=${PGAPPNAME:-fleetdash-migrate}

# pg_advisory_xact_lock key shared by every runner: "fleetdas" in ASCII.
readonly LOCK_KEY=7380385375772238195

say() { printf 'migrate: %s\n' "$*"; }
warn() { printf 'migrate: warning: %s\n' "$*" >&2; }
die() { printf 'migrate: error: %s\n' "$*" >&2; exit 1; }

usage() {
    printf 'usage: %s CONNINFO\n' "$0" >&2
    printf '  CONNINFO: "host=... port=... dbname=... user=..." or postgres://...\n' >&2
    exit 2
}

# psql_session ARGS... - run psql on CONNINFO, stop at the first error.
psql_session() {
    psql -X -q -v ON_ERROR_STOP=1 -d "$conninfo" "$@"
}

# ensure_table - create schema_migrations and schema_repeatables if missing (under the lock, so two
# first-time runners do not race on CREATE TABLE).
ensure_table() {
    psql_session -v lock_key="$LOCK_KEY" <<'SQL'
SET client_min_messages = warning;
BEGIN;
SELECT pg_advisory_xact_lock(:lock_key) AS locked \gset
CREATE TABLE IF NOT EXISTS schema_migrations (
    version    text PRIMARY KEY,
    applied_at timestamptz NOT NULL DEFAULT now(),
    checksum   text NOT NULL
);
CREATE TABLE IF NOT EXISTS schema_repeatables (
    file       text PRIMARY KEY,
    applied_at timestamptz NOT NULL DEFAULT now(),
    checksum   text NOT NULL
);
COMMIT;
SQL
}

# apply_file FILE VERSION CHECKSUM - apply one migration in one transaction.
# The applied check is repeated after the lock is taken: another runner may
# have applied the file since we read schema_migrations.
apply_file() {
    psql_session -v lock_key="$LOCK_KEY" -v file="$1" -v name="${1##*/}" \
        -v version="$2" -v checksum="$3" <<'SQL'
SET client_min_messages = warning;
BEGIN;
SELECT pg_advisory_xact_lock(:lock_key) AS locked \gset
SELECT count(*) > 0 AS already_applied,
       coalesce(bool_or(checksum <> :'checksum'), false) AS checksum_changed
  FROM schema_migrations WHERE version = :'version' \gset
\if :already_applied
\echo migrate: :name already applied by a concurrent run, skipped
\if :checksum_changed
\warn migrate: warning: :name changed since it was applied (checksum differs); not re-applied
\endif
\else
\o /dev/null
\i :file
\o
INSERT INTO schema_migrations (version, checksum) VALUES (:'version', :'checksum');
\echo migrate: applied :name
\endif
COMMIT;
SQL
}

# apply_repeatable FILE NAME CHECKSUM FORCE - apply one repeatable file in
# one transaction and record its checksum. Under the lock it is skipped
# when the recorded checksum already equals CHECKSUM (a concurrent run made
# it), unless FORCE is true.
apply_repeatable() {
    psql_session -v lock_key="$LOCK_KEY" -v file="$1" -v name="$2" \
        -v checksum="$3" -v force="$4" <<'SQL'
SET client_min_messages = warning;
BEGIN;
SELECT pg_advisory_xact_lock(:lock_key) AS locked \gset
SELECT NOT :force AND coalesce(bool_and(checksum = :'checksum'), false) AS current
  FROM schema_repeatables WHERE file = :'name' \gset
\if :current
\echo migrate: :name applied by a concurrent run, skipped
\else
\o /dev/null
\i :file
\o
INSERT INTO schema_repeatables (file, checksum) VALUES (:'name', :'checksum')
    ON CONFLICT (file) DO UPDATE SET checksum = excluded.checksum, applied_at = now();
\echo migrate: applied :name
\endif
COMMIT;
SQL
}

[ $# -eq 1 ] || usage
case $1 in -h|--help|'') usage ;; esac
conninfo=$1

command -v psql >/dev/null || die "psql not found in PATH"
command -v sha256sum >/dev/null || die "sha256sum not found in PATH"

sql_dir=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
shopt -s nullglob
files=("$sql_dir"/[0-9][0-9][0-9]_*.sql)
[ ${#files[@]} -gt 0 ] || die "no migrations found in $sql_dir"
repeatables=("$sql_dir"/functions/*.sql)

# Two files with one number would have no defined order.
declare -A seen_number=()
for f in "${files[@]}"; do
    name=${f##*/}
    number=${name:0:3}
    if [ -n "${seen_number[$number]:-}" ]; then
        die "$name and ${seen_number[$number]} share the number $number"
    fi
    seen_number[$number]=$name
done

if ! ensure_table; then
    die "cannot prepare schema_migrations (see the psql error above)"
fi

# What is recorded now; only a shortcut, apply_file decides under the lock.
declare -A recorded=()
recorded_rows=$(psql_session -A -t -F ' ' \
    -c 'SELECT version, checksum FROM schema_migrations ORDER BY version') \
    || die "cannot read schema_migrations"
while read -r version checksum; do
    [ -n "$version" ] && recorded[$version]=$checksum
done <<<"$recorded_rows"

declare -A on_disk=()
applied=0
for f in "${files[@]}"; do
    name=${f##*/}
    version=${name%.sql}
    on_disk[$version]=1
    checksum=$(sha256sum <"$f") || die "cannot read $f"
    checksum=${checksum%% *}

    if [ -n "${recorded[$version]:-}" ]; then
        if [ "${recorded[$version]}" != "$checksum" ]; then
            warn "$name changed since it was applied (recorded sha256 ${recorded[$version]:0:12}..., file ${checksum:0:12}...); not re-applied"
        fi
        continue
    fi

    if ! apply_file "$f" "$version" "$checksum"; then
        die "$name failed; its transaction was rolled back and nothing after it was applied"
    fi
    applied=$((applied + 1))
done

for version in "${!recorded[@]}"; do
    [ -n "${on_disk[$version]:-}" ] ||
        warn "$version is recorded in schema_migrations but has no file in $sql_dir"
done

# Repeatable files: from the first changed one on (all after a migration).
declare -A recorded_repeatable=()
recorded_rows=$(psql_session -A -t -F ' ' \
    -c 'SELECT file, checksum FROM schema_repeatables ORDER BY file') \
    || die "cannot read schema_repeatables"
while read -r file checksum; do
    [ -n "$file" ] && recorded_repeatable[$file]=$checksum
done <<<"$recorded_rows"

declare -A on_disk_repeatable=()
reapply=false
[ "$applied" -gt 0 ] && reapply=true
reapplied=0
for f in "${repeatables[@]}"; do
    name=functions/${f##*/}
    on_disk_repeatable[$name]=1
    checksum=$(sha256sum <"$f") || die "cannot read $f"
    checksum=${checksum%% *}
    changed=false
    [ "${recorded_repeatable[$name]:-}" != "$checksum" ] && changed=true
    if ! $changed && ! $reapply; then
        continue
    fi
    # A file after a changed one is applied even when it did not change.
    force=$reapply
    $changed && force=false
    if ! apply_repeatable "$f" "$name" "$checksum" "$force"; then
        die "$name failed; its transaction was rolled back and nothing after it was applied"
    fi
    reapply=true
    reapplied=$((reapplied + 1))
done

for file in "${!recorded_repeatable[@]}"; do
    [ -n "${on_disk_repeatable[$file]:-}" ] ||
        warn "$file is recorded in schema_repeatables but has no file in $sql_dir; what it defined is still there (drop it in a migration)"
done

if [ "$applied" -eq 0 ] && [ "$reapplied" -eq 0 ]; then
    say "up to date (${#files[@]} migrations, ${#repeatables[@]} repeatable files)"
fi
