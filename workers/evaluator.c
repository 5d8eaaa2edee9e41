/* evaluator.c - the alerts group's `evaluator` job: every evaluation interval, one cycle of
 * alert_rules_evaluate() over every rule due (sql/functions/21_alert_rules.sql), then the
 * budgets' thresholds (budgets_evaluate(), sql/functions/24_budgets.sql) */
#include <stdlib.h>
#include <time.h>

#include "../fcgi/db.h"
#include "../fcgi/log.h"
#include "../fcgi/metrics.h"
#include "groups.h"

#define EVALUATOR_SUMMARY_EVERY    60    /* seconds between summary lines, at least */
#define EVALUATOR_OUTAGE_PAUSE_MAX 5000  /* ms: longest pause while the database is away */
#define EVALUATOR_ERROR_PAUSE_MAX  60000 /* ms: longest pause while a statement fails */

/* One cycle at now(), cycles of $1 seconds: what it did, one row. Several
 * evaluators (hosts) share the rules: each rule is taken by one of them
 * per cycle (FOR UPDATE SKIP LOCKED), so this is safe to run anywhere, and
 * to send again on a fresh connection. */
static const db_statement_t evaluator_cycle = {
    "evaluator_cycle",
    "SELECT rules, instances, fired, cleared, failed"
    "  FROM alert_rules_evaluate(now(), make_interval(secs => $1::integer))",
    1, true};

/* The budgets at now(): how many thresholds fired, one row. Each fires once
 * per period (budget_firings' key), so two evaluators, or this statement
 * sent again, never fire one twice. */
static const db_statement_t evaluator_budgets = {
    "evaluator_budgets", "SELECT budgets_evaluate(now()) AS fired", 0, true};

/* What happened since the last summary line. */
typedef struct evaluator_tally {
    long cycles;       /* cycles that answered */
    long long rules;   /* rules they evaluated */
    long long fired;   /* alerts raised or refreshed */
    long long cleared; /* alerts cleared */
    long long failed;  /* rules whose evaluation failed (their last_error says why) */
    long long budgets; /* budget thresholds fired */
    long errors;       /* cycles that failed (db.c logged why) */
    double slowest_ms; /* the longest cycle that answered */
    double since;      /* start of the period, monotonic seconds */
} evaluator_tally_t;

/* --evaluation-interval: seconds between two cycles. */
static long evaluator_interval = 15;

const group_option_t evaluator_options[] = {
    {.name = "evaluation-interval",
     .env = "FLEETDASH_EVALUATION_INTERVAL",
     .help = "seconds between alert rule evaluations (default 15)",
     .min = 1,
     .max = 3600,
     .value = &evaluator_interval},
    {.name = NULL},
};

static evaluator_tally_t evaluator_tally;
static bool evaluator_started;
static int evaluator_failures; /* cycles in a row that failed */

static double evaluator_now(void)
{
    struct timespec t;

    clock_gettime(CLOCK_MONOTONIC, &t);
    return (double)t.tv_sec + (double)t.tv_nsec / 1e9;
}

static long long evaluator_column(const PGresult *res, const char *name)
{
    const char *text = db_get(res, 0, name);

    return text != NULL ? strtoll(text, NULL, 10) : 0;
}

/* One cycle, counted in the tally. Returns 0, or -1 with p filled (db.c
 * has logged why; an outage only once). */
static int evaluator_call(arena_t *arena, problem_t *p)
{
    const char *params[1] = {arena_printf(arena, "%ld", evaluator_interval)};
    double start = evaluator_now();
    PGresult *res = db_exec(&evaluator_cycle, params, p);

    if (res == NULL)
        return -1;
    double ms = (evaluator_now() - start) * 1e3;
    evaluator_tally_t *t = &evaluator_tally;
    if (PQntuples(res) == 1) {
        t->rules += evaluator_column(res, "rules");
        t->fired += evaluator_column(res, "fired");
        t->cleared += evaluator_column(res, "cleared");
        t->failed += evaluator_column(res, "failed");
    }
    t->cycles++;
    if (ms > t->slowest_ms)
        t->slowest_ms = ms;
    PQclear(res);
    return 0;
}

/* The budgets' round, counted in the tally. Returns 0, or -1 with p filled. */
static int evaluator_budgets_call(problem_t *p)
{
    PGresult *res = db_exec(&evaluator_budgets, NULL, p);

    if (res == NULL)
        return -1;
    if (PQntuples(res) == 1)
        evaluator_tally.budgets += evaluator_column(res, "fired");
    PQclear(res);
    return 0;
}

/* Logs what happened since the last summary, once EVALUATOR_SUMMARY_EVERY
 * has passed (or now when final), and starts a new period. */
static void evaluator_summary(double now, bool final)
{
    evaluator_tally_t *t = &evaluator_tally;

    if (!final && now - t->since < EVALUATOR_SUMMARY_EVERY)
        return;
    if (t->cycles > 0 || t->errors > 0)
        log_info("alert rules: %ld cycles in %.0fs, %lld rule evaluations, %lld alerts fired, "
                 "%lld cleared, %lld rule evaluations failed, %lld budget thresholds fired, "
                 "slowest cycle %.1f ms, %ld cycles failed",
                 t->cycles, now - t->since, t->rules, t->fired, t->cleared, t->failed, t->budgets,
                 t->slowest_ms, t->errors);
    *t = (evaluator_tally_t){.since = now};
}

/* The pause before the next cycle: until the next multiple of the interval
 * (so that evaluators of several hosts meet in the same cycle); after
 * failures in a row it doubles per failure up to a cap (the database
 * away: 5 s; a statement failing: 60 s). */
static long evaluator_pause(const problem_t *p)
{
    long interval_ms = evaluator_interval * 1000;

    if (evaluator_failures == 0) {
        struct timespec t;
        clock_gettime(CLOCK_REALTIME, &t);
        long long now_ms = (long long)t.tv_sec * 1000 + t.tv_nsec / 1000000;
        return interval_ms - (long)(now_ms % interval_ms) + 1;
    }
    long cap = p->status == 503 ? EVALUATOR_OUTAGE_PAUSE_MAX : EVALUATOR_ERROR_PAUSE_MAX;
    long pause = 250;
    for (int i = 0; i < evaluator_failures && pause < cap; i++)
        pause *= 2;
    return pause > cap ? cap : pause;
}

static job_wait_t evaluator_round(arena_t *arena)
{
    problem_t p = {.arena = arena};

    if (!evaluator_started) {
        evaluator_started = true;
        evaluator_tally.since = evaluator_now();
        db_log_outages_once(true);
        log_info("evaluating alert rules every %ld s", evaluator_interval);
    }
    double start = evaluator_now();
    if (evaluator_call(arena, &p) == 0 && evaluator_budgets_call(&p) == 0)
        evaluator_failures = 0;
    else {
        evaluator_tally.errors++;
        evaluator_failures++;
    }
    metrics_add("evaluator_cycles", 1);
    metrics_add("evaluator_seconds", evaluator_now() - start);
    evaluator_summary(evaluator_now(), false);
    return (job_wait_t){.ms = evaluator_pause(&p), .fd = -1};
}

static void evaluator_stop(void)
{
    evaluator_summary(evaluator_now(), true);
}

const job_t evaluator_job = {.name = "evaluator", .round = evaluator_round, .stop = evaluator_stop};
