/* maintenance.c - the `maintenance` job: folds new executions into the rollups, expires idempotency
 * keys, writes the activity feed's events of silent agents, gives the feed's staged events their
 * ids */
#include <stdio.h>
#include <stdlib.h>
#include <time.h>

#include "../fcgi/db.h"
#include "../fcgi/log.h"
#include "groups.h"

#define MAINTENANCE_EXPIRE_EVERY     3600  /* seconds between idempotency_expire() calls */
#define MAINTENANCE_VACUUM_EVERY     10    /* seconds between vacuums of the delta tables */
#define MAINTENANCE_SUMMARY_EVERY    60    /* seconds between summary lines, at least */
#define MAINTENANCE_OUTAGE_PAUSE_MAX 5000  /* ms: longest pause while the database is away */
#define MAINTENANCE_ERROR_PAUSE_MAX  60000 /* ms: longest pause while a statement fails */

/* SQL functions (sql/006_aggregates.sql, sql/004_ingest.sql), each returning
 * one integer; both are safe to send again on a fresh connection.
 * rollup_refresh() returns the rows folded, or -1 when another session
 * holds its lock: any number of maintenance workers may run. */
/* Each answers one integer, named value. */
static const db_statement_t maintenance_refresh = {"maintenance_refresh",
                                                   "SELECT rollup_refresh() AS value", 0, true};
static const db_statement_t maintenance_expire = {"maintenance_expire",
                                                  "SELECT idempotency_expire() AS value", 0, true};
/* audit_expire(days) (sql/functions/29_access.sql): the audit log's
 * records past the retention, at most 10,000 a call. Safe to send again. */
static const db_statement_t maintenance_audit_expire = {
    "maintenance_audit_expire", "SELECT audit_expire($1::integer) AS value", 1, true};

/* activity_sequence() (sql/functions/25_activity.sql) gives the staged
 * events of the activity feed their ids; the feed's reads call it too, and
 * this keeps the staging table small when nobody reads the feed. Runs under
 * its own lock; safe to send again. */
static const db_statement_t maintenance_sequence = {"maintenance_sequence",
                                                    "SELECT activity_sequence() AS value", 0, true};

/* agents_watch_silence() (sql/functions/25_activity.sql) writes the feed's
 * events of agents going silent and coming back, which depend on the clock;
 * before the sequencer, so that they get their ids in the same round. */
static const db_statement_t maintenance_silence = {
    "maintenance_silence", "SELECT agents_watch_silence() AS value", 0, true};

/* answer_cache_prune() (sql/functions/15_answer_cache.sql) deletes the shared
 * answers whose second has passed; safe to send again. */
static const db_statement_t maintenance_prune = {"maintenance_prune",
                                                 "SELECT answer_cache_prune() AS value", 0, true};

/* What happened since the last summary line. */
typedef struct maintenance_tally {
    long runs;         /* rollup_refresh() calls that answered */
    long long rows;    /* rows they folded */
    long skipped;      /* calls that found another refresher at work */
    long failed;       /* calls that failed (db.c logged why) */
    double slowest_ms; /* the longest call that answered */
    double since;      /* start of the period, monotonic seconds */
} maintenance_tally_t;

/* --refresh-interval: milliseconds between two refreshes. */
static long maintenance_interval_ms = 1000;
/* --audit-retention-days: how long the audit log keeps a record. */
static long maintenance_audit_days = 400;

const group_option_t maintenance_options[] = {
    {.name = "refresh-interval",
     .env = "FLEETDASH_REFRESH_INTERVAL",
     .help = "ms between rollup refreshes (default 1000)",
     .min = 10,
     .max = 3600000,
     .value = &maintenance_interval_ms},
    {.name = "audit-retention-days",
     .env = "FLEETDASH_AUDIT_RETENTION_DAYS",
     .help = "days the audit log keeps a record (default 400)",
     .min = 1,
     .max = 36500,
     .value = &maintenance_audit_days},
    {.name = NULL},
};

static maintenance_tally_t maintenance_tally;
static bool maintenance_started;
static int maintenance_failures;      /* rounds in a row whose refresh failed */
static double maintenance_expire_due; /* monotonic seconds */

static double maintenance_now(void)
{
    struct timespec t;

    clock_gettime(CLOCK_MONOTONIC, &t);
    return (double)t.tv_sec + (double)t.tv_nsec / 1e9;
}

/* Runs stmt, which returns one integer, into *value. Returns 0, or -1 with
 * p filled (db.c has logged why; an outage only once). */
static int maintenance_call_with(const db_statement_t *stmt, const char *const *params,
                                 long long *value, problem_t *p)
{
    PGresult *res = db_exec(stmt, params, p);

    if (res == NULL)
        return -1;
    const char *text = PQntuples(res) == 1 ? db_get(res, 0, "value") : NULL;
    *value = text != NULL ? strtoll(text, NULL, 10) : 0;
    PQclear(res);
    return 0;
}

static int maintenance_call(const db_statement_t *stmt, long long *value, problem_t *p)
{
    return maintenance_call_with(stmt, NULL, value, p);
}

/* Logs what happened since the last summary, if anything did, once
 * MAINTENANCE_SUMMARY_EVERY has passed (or now when final), and starts a
 * new period. */
static void maintenance_summary(double now, bool final)
{
    maintenance_tally_t *t = &maintenance_tally;

    if (!final && now - t->since < MAINTENANCE_SUMMARY_EVERY)
        return;
    if (t->runs > 0 || t->failed > 0)
        log_info("rollup refresh: %ld runs in %.0fs, %lld rows folded, slowest run %.1f ms, "
                 "%ld skipped (another refresher was at work), %ld failed",
                 t->runs, now - t->since, t->rows, t->slowest_ms, t->skipped, t->failed);
    *t = (maintenance_tally_t){.since = now};
}

/* The audit log's records past the retention, a batch after another while
 * batches come full (at most 100 a round: a million records). */
static int maintenance_expire_audit(problem_t *p)
{
    char days[24];
    const char *params[] = {days};
    long long removed = 0, total = 0;

    snprintf(days, sizeof(days), "%ld", maintenance_audit_days);
    for (int batch = 0; batch < 100; batch++) {
        if (maintenance_call_with(&maintenance_audit_expire, params, &removed, p) != 0)
            return -1;
        total += removed;
        if (removed < 10000)
            break;
    }
    if (total > 0)
        log_info("expired %lld audit records older than %ld days", total, maintenance_audit_days);
    return 0;
}

/* idempotency_expire() and the audit log's retention, when due. After an
 * outage they are tried again at the next round; after any other failure,
 * in an hour. */
static void maintenance_expire_keys(double now, arena_t *arena)
{
    problem_t p = {.arena = arena};
    long long removed;

    if (now < maintenance_expire_due)
        return;
    if (maintenance_call(&maintenance_expire, &removed, &p) == 0) {
        if (removed > 0)
            log_info("expired %lld idempotency keys", removed);
        if (maintenance_expire_audit(&p) != 0)
            maintenance_tally.failed++;
    } else
        maintenance_tally.failed++;
    if (p.status != 503)
        maintenance_expire_due = now + MAINTENANCE_EXPIRE_EVERY;
}

/* Every refresh leaves the delta rows it folded dead (and every prune the
 * answers it deleted); readers of the pending deltas step over them until a
 * vacuum. Autovacuum wakes once a minute, so after folding this job vacuums
 * the delta tables (and answer_cache) itself every
 * MAINTENANCE_VACUUM_EVERY seconds: the dead rows stay a few seconds' worth.
 * A failure is counted and tried again next time. */
static void maintenance_vacuum(double now, long long folded, arena_t *arena)
{
    static double due;
    static long long pending;
    problem_t p = {.arena = arena};

    pending += folded > 0 ? folded : 0;
    if (pending == 0 || now < due)
        return;
    if (db_command("VACUUM rollup_delta, rollup_errors_delta, rollup_changes, answer_cache", &p) ==
        0)
        pending = 0;
    else
        maintenance_tally.failed++;
    due = now + MAINTENANCE_VACUUM_EVERY;
}

/* The pause before the next round: the interval; after failures in a row
 * it doubles per failure up to a cap (the database away: 5 s; a statement
 * failing: 60 s, so a lasting error is logged about once a minute). */
static long maintenance_pause(long interval_ms, const problem_t *p)
{
    long cap = p->status == 503 ? MAINTENANCE_OUTAGE_PAUSE_MAX : MAINTENANCE_ERROR_PAUSE_MAX;
    long pause = interval_ms;

    for (int i = 0; i < maintenance_failures && pause < cap; i++)
        pause *= 2;
    if (pause > cap && cap > interval_ms)
        pause = cap;
    return pause;
}

/* One round: rollup_refresh(), idempotency_expire() when due, the shared
 * answers pruned, the vacuum of the delta tables and the answer cache when
 * due, then the agents' silence watch and the activity feed's sequencer. */
static job_wait_t maintenance_round(arena_t *arena)
{
    problem_t p = {.arena = arena};
    double start = maintenance_now();
    long long rows;

    if (!maintenance_started) {
        maintenance_started = true;
        maintenance_tally.since = start;
        maintenance_expire_due = start;
        db_log_outages_once(true);
        log_info("refreshing the rollups every %ld ms, expiring idempotency keys every hour",
                 maintenance_interval_ms);
    }
    if (maintenance_call(&maintenance_refresh, &rows, &p) == 0) {
        double ms = (maintenance_now() - start) * 1e3;
        maintenance_tally.runs++;
        maintenance_tally.rows += rows > 0 ? rows : 0;
        maintenance_tally.skipped += rows < 0;
        if (ms > maintenance_tally.slowest_ms)
            maintenance_tally.slowest_ms = ms;
        maintenance_failures = 0;
        if (!job_stopping())
            maintenance_expire_keys(start, arena);
        long long events, pruned = 0;
        if (!job_stopping() && maintenance_call(&maintenance_prune, &pruned, &p) != 0)
            maintenance_tally.failed++;
        if (!job_stopping())
            maintenance_vacuum(start, (rows > 0 ? rows : 0) + pruned, arena);
        if (!job_stopping() && maintenance_call(&maintenance_silence, &events, &p) != 0)
            maintenance_tally.failed++;
        if (!job_stopping() && maintenance_call(&maintenance_sequence, &events, &p) != 0)
            maintenance_tally.failed++;
    } else {
        maintenance_tally.failed++;
        maintenance_failures++;
    }
    maintenance_summary(maintenance_now(), false);
    return (job_wait_t){.ms = maintenance_pause(maintenance_interval_ms, &p), .fd = -1};
}

static void maintenance_stop(void)
{
    maintenance_summary(maintenance_now(), true);
}

const job_t maintenance_job = {
    .name = "rollups", .round = maintenance_round, .stop = maintenance_stop};
