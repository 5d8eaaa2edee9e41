/* job.h - the worker of a job group: runs a job in a loop instead of serving requests */
#ifndef FLEETDASH_JOB_H
#define FLEETDASH_JOB_H

#include <stdbool.h>

#include "arena.h"

/* Settings of a job group, from the command line (fleetdashd.c). */
typedef struct job_settings {
    long interval_ms; /* --refresh-interval: the pause between two rounds */
} job_settings_t;

/* What the worker of a job group does, over and over.
 * round: one round of work (a statement or two); returns how many
 *        milliseconds to pause before the next one. arena is scratch memory,
 *        reset after every round. Stop signals wait until it returns.
 * stop:  called once before the worker exits (to log what was done since
 *        the last summary); may be NULL. */
typedef struct job {
    long (*round)(const job_settings_t *settings, arena_t *arena);
    void (*stop)(void);
} job_t;

/* Runs job's rounds until SIGTERM or SIGINT: a round in flight is finished
 * first, a pause ends at once. Closes the database connection at the end.
 * Returns the process exit code: WORKER_EXIT_OK when stopped, or
 * WORKER_EXIT_INIT if the signals could not be set up. */
int job_run(const job_t *job, const job_settings_t *settings);

/* True once a stop signal is pending: a round of several steps skips the
 * rest. Only meaningful inside job_run. */
bool job_stopping(void);

#endif
