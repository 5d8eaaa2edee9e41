/* answers.c - the aggregates group's `answers` job: shortly before each turn of the second, the
 * next second's answers of the queries asked in each of the last two seconds are computed ahead
 * (answer_warm_due(), answer_warm(): sql/functions/15_answer_cache.sql), so that at the turn
 * the requests of a popular query find its answer instead of waiting while one of them computes
 * it. Exact as the answer cache is: an answer computed ahead is stored under the token of the
 * data it was computed from, and a write before the request moves the request's token. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "../fcgi/db.h"
#include "../fcgi/log.h"
#include "groups.h"

#define ANSWERS_BATCH         64   /* queries computed ahead per second, at most */
#define ANSWERS_SUMMARY_EVERY 60   /* seconds between summary lines, at least */
#define ANSWERS_PAUSE_MAX     5000 /* ms: longest pause while calls fail */

/* The queries due (key, call, a1, a2), at most $1; then one of them
 * computed for the next second: true if it stored an answer. Both are safe
 * to send again. */
static const db_statement_t answers_due = {
    "answers_due", "SELECT key, call, a1, a2 FROM answer_warm_due($1::integer)", 1, true};
static const db_statement_t answers_warm = {"answers_warm",
                                            "SELECT answer_warm($1, $2, $3, $4) AS value", 4, true};

/* --answers-ahead: how long before the turn of the second the job starts;
 * 0: never (the workers compute every answer at its second). */
static long answers_ahead_ms = 300;

const group_option_t answers_options[] = {
    {.name = "answers-ahead",
     .env = "FLEETDASH_ANSWERS_AHEAD",
     .help = "ms before each second when the answers asked every second are computed for it "
             "(default 300; 0: never)",
     .min = 0,
     .max = 900,
     .value = &answers_ahead_ms},
    {.name = NULL},
};

/* What happened since the last summary line. */
typedef struct answers_tally {
    long rounds;       /* seconds with queries due */
    long long stored;  /* answers computed ahead and stored */
    long long present; /* due, but another job or a request had stored it */
    long late;         /* rounds cut short by the turn of the second */
    long failed;       /* calls that failed (db.c logged why) */
    double since;      /* start of the period, real seconds */
} answers_tally_t;

static answers_tally_t answers_tally;
static bool answers_started;
static int answers_failures; /* rounds in a row that failed */

static double answers_now(void)
{
    struct timespec t;

    clock_gettime(CLOCK_REALTIME, &t);
    return (double)t.tv_sec + (double)t.tv_nsec / 1e9;
}

/* Milliseconds into the current second of the real clock. */
static long answers_into_second(void)
{
    struct timespec t;

    clock_gettime(CLOCK_REALTIME, &t);
    return t.tv_nsec / 1000000;
}

/* Milliseconds from now to the next start of a round: answers_ahead_ms
 * before a turn of the second, at least 1. */
static long answers_until_round(void)
{
    long into = answers_into_second(), start = 1000 - answers_ahead_ms;
    long ms = into < start ? start - into : 1000 - into + start;

    return ms < 1 ? 1 : ms;
}

static void answers_summary(double now, bool final)
{
    answers_tally_t *t = &answers_tally;

    if (!final && now - t->since < ANSWERS_SUMMARY_EVERY)
        return;
    if (t->rounds > 0 || t->failed > 0)
        log_info("answers ahead: %lld computed in %ld seconds of %.0f, %lld found stored, %ld "
                 "rounds cut short by the second, %ld calls failed",
                 t->stored, t->rounds, now - t->since, t->present, t->late, t->failed);
    *t = (answers_tally_t){.since = now};
}

/* The queries due, each computed for the next second while this one
 * lasts. Returns 0, or -1 with p filled. */
static int answers_compute(problem_t *p)
{
    char limit[16];
    const char *params[] = {limit};
    long second = (long)answers_now();

    snprintf(limit, sizeof(limit), "%d", ANSWERS_BATCH);
    PGresult *due = db_exec(&answers_due, params, p);
    if (due == NULL) {
        answers_tally.failed++;
        return -1;
    }
    int rows = PQntuples(due), rc = 0;
    if (rows > 0)
        answers_tally.rounds++;
    for (int i = 0; i < rows && !job_stopping(); i++) {
        if ((long)answers_now() != second) {
            answers_tally.late++;
            break;
        }
        const char *args[4] = {db_value(due, i, 0), db_value(due, i, 1), db_value(due, i, 2),
                               db_value(due, i, 3)};
        PGresult *res = db_exec(&answers_warm, args, p);
        if (res == NULL) {
            answers_tally.failed++;
            rc = -1;
            if (p->status == 503)
                break;
            continue;
        }
        const char *stored = db_get(res, 0, "value");
        if (stored != NULL && strcmp(stored, "t") == 0)
            answers_tally.stored++;
        else
            answers_tally.present++;
        PQclear(res);
    }
    PQclear(due);
    return rc;
}

static job_wait_t answers_round(arena_t *arena)
{
    problem_t p = {.arena = arena};
    double now = answers_now();

    if (!answers_started) {
        answers_started = true;
        answers_tally.since = now;
        db_log_outages_once(true);
        if (answers_ahead_ms > 0)
            log_info("computing the answers asked every second %ld ms before their second",
                     answers_ahead_ms);
    }
    if (answers_ahead_ms == 0)
        return (job_wait_t){.ms = 3600000, .fd = -1};
    /* a round starts in the last answers_ahead_ms of a second */
    if (answers_into_second() < 1000 - answers_ahead_ms)
        return (job_wait_t){.ms = answers_until_round(), .fd = -1};
    long pause;
    if (answers_compute(&p) == 0) {
        answers_failures = 0;
        pause = answers_until_round();
    } else {
        answers_failures++;
        pause = 250;
        for (int i = 1; i < answers_failures && pause < ANSWERS_PAUSE_MAX; i++)
            pause *= 2;
        if (pause > ANSWERS_PAUSE_MAX)
            pause = ANSWERS_PAUSE_MAX;
    }
    answers_summary(answers_now(), false);
    return (job_wait_t){.ms = pause, .fd = -1};
}

static void answers_stop(void)
{
    answers_summary(answers_now(), true);
}

const job_t answers_job = {.name = "answers", .round = answers_round, .stop = answers_stop};
