/* job.h - the worker of a job: runs a job in a loop instead of serving requests */
#ifndef FLEETDASH_JOB_H
#define FLEETDASH_JOB_H

#include <stdbool.h>

#include "arena.h"

/* What a round asks for before the next one: a pause of at most ms
 * milliseconds, ended sooner when fd (>= 0) becomes readable (a
 * PostgreSQL LISTEN socket, say); fd -1 = the pause alone. */
typedef struct job_wait {
    long ms;
    int fd;
} job_wait_t;

/* What the workers of a job do, over and over.
 * name:    the job in a word, for --routes ("rollups")
 * workers: how many workers run it in a group that also has routes (0 = 1);
 *          in a group without routes --workers says
 * round:   one round of work (a statement or two); returns how to wait
 *          before the next one. arena is scratch memory, reset after every
 *          round. Stop signals wait until it returns.
 * stop:    called once before the worker exits (to log what was done since
 *          the last summary); may be NULL. */
typedef struct job {
    const char *name;
    int workers;
    job_wait_t (*round)(arena_t *arena);
    void (*stop)(void);
} job_t;

/* Runs job's rounds until SIGTERM or SIGINT: a round in flight is finished
 * first, a wait ends at once. Between rounds the worker beats for group
 * (health.h). Closes the database connection at the end. Returns the
 * process exit code: WORKER_EXIT_OK when stopped, or WORKER_EXIT_INIT if
 * the signals could not be set up. */
int job_run(const char *group, const job_t *job);

/* True once a stop signal is pending: a round of several steps skips the
 * rest. Only meaningful inside job_run. */
bool job_stopping(void);

#endif
