/* master.h - the pre-fork master: spawns, supervises and replaces workers */
#ifndef FLEETDASH_MASTER_H
#define FLEETDASH_MASTER_H

#include "group.h"

typedef struct master_config {
    const group_t *group;
    const route_t *routes;           /* the group's joined table; NULL without routes */
    const char *listen_address;      /* for removing the unix socket at exit; NULL without routes */
    int listen_fd;                   /* already listening; -1 without routes */
    int workers;                     /* route workers to keep running; 0 without routes */
    int job_workers[GROUP_MAX_JOBS]; /* workers to keep running per job of group->jobs */
    int njobs;                       /* how many jobs group->jobs has */
    long max_requests;               /* per route worker before it is recycled; 0 = never */
    int shutdown_timeout;            /* seconds in-flight requests get on SIGTERM */
} master_config_t;

/* Runs the master until it is told to stop. Its workers serve the group's
 * routes on listen_fd (worker_run) and run its jobs (job_run), as many of
 * each as cfg says (at least one in all), all supervised alike: the
 * storm threshold below counts them together. Signals:
 * SIGTERM/SIGINT stop (workers finish the request or statement in flight,
 * then exit; after shutdown_timeout they are killed), SIGHUP replaces the
 * workers one at a time. A worker that dies is logged (signal or exit code,
 * uptime) and replaced at once: the master wakes on SIGCHLD. It never gives
 * up while it lives: in a crash storm (max(5, 2 x workers) crashes within
 * 10 s) it respawns one worker at a time after a pause that doubles with
 * every crash from 125 ms up to 1 s, until no worker crashed for 3 s; the
 * socket stays open meanwhile, connections wait in its backlog. A failed
 * fork counts as a crash. Returns the exit code: 0 after a graceful stop,
 * 1 if workers had to be killed, 2 if it could not allocate its tables. */
int master_run(const master_config_t *cfg);

#endif
