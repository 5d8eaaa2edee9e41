/* master.h - the pre-fork master: spawns, supervises and replaces workers */
#ifndef FLEETDASH_MASTER_H
#define FLEETDASH_MASTER_H

#include "worker.h"

typedef struct master_config {
    const group_t *group;
    const char *listen_address; /* for removing the unix socket at exit; NULL for a job group */
    int listen_fd;              /* already listening; -1 for a job group */
    int workers;                /* how many to keep running, >= 1 */
    long max_requests;          /* per worker before it is recycled; 0 = never */
    int shutdown_timeout;       /* seconds in-flight requests get on SIGTERM */
    job_settings_t job;         /* a job group's settings */
} master_config_t;

/* Runs the master until it is told to stop. The workers serve the group's
 * routes on listen_fd or, in a job group, run its job (job_run). Signals:
 * SIGTERM/SIGINT stop (workers finish the request or statement in flight,
 * then exit; after shutdown_timeout they are killed), SIGHUP replaces the
 * workers one at a time. A worker that dies is logged (signal or exit code,
 * uptime) and replaced; a crash storm (more than max(5, 2 x workers)
 * crashes within 10 s) stops respawning. Returns the exit code: 0 after a
 * graceful stop, 1 if workers had to be killed, 2 after a crash storm or a
 * failure to fork. */
int master_run(const master_config_t *cfg);

#endif
