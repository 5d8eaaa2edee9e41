/* group.h - a group as the runtime knows it: a name, routes, jobs, options */
#ifndef FLEETDASH_GROUP_H
#define FLEETDASH_GROUP_H

#include <stdbool.h>

#include "job.h"
#include "router.h"

#define GROUP_MAX_JOBS 4

/* One option of a group, a whole number: --NAME N on the command line or
 * ENV=N in the environment (the flag wins). Options end with a row whose
 * name is NULL.
 * name:  the flag without its dashes ("refresh-interval")
 * env:   the environment variable ("FLEETDASH_REFRESH_INTERVAL")
 * help:  one line for --help, default included
 * min, max: the values accepted; anything else is a usage error (64)
 * value: the group's variable; holds the default until an option sets it */
typedef struct group_option {
    const char *name;
    const char *env;
    const char *help;
    long min, max;
    long *value;
} group_option_t;

/* A group: one row of the table main hands to fleetdashd_main. The table
 * ends with a row whose name is NULL.
 * name:     what --group names; also its socket's and log's name
 * routes:   its route tables, NULL-terminated, joined in order into the one
 *           table its workers route with (fleetdashd.c adds /healthz and
 *           /readyz); NULL = no routes, no socket
 * jobs:     its jobs (job.h), NULL-terminated, each run by job->workers
 *           workers of its own (0 = 1) beside the route workers; NULL =
 *           none. routes or jobs, or both; at most GROUP_MAX_JOBS.
 * workers:  the default of --workers: route workers, or in a group without
 *           routes and with one job that job's workers
 * optional: /readyz does not wait for it (a benchmark group)
 * options:  its own options: tables of them, NULL-terminated (a job's
 *           source may bring one); NULL = none
 * start:    called once in the master after the options are read, before
 *           any worker forks (to apply them); NULL = none
 * read_roles, write_roles: who may call a route whose row says no roles:
 *           read_roles its GETs, write_roles the other methods (router.h);
 *           0 = ROLES_READ and ROLES_EDIT */
typedef struct group {
    const char *name;
    const route_t *const *routes;
    const job_t *const *jobs;
    int workers;
    bool optional;
    const group_option_t *const *options;
    void (*start)(void);
    unsigned read_roles;
    unsigned write_roles;
} group_t;

/* The program: reads the options (flags or FLEETDASH_* variables) for the
 * group named by --group among groups, and runs its master; or with
 * --routes prints every group's routes and jobs, one per line ("GROUP
 * METHOD PATH", "GROUP job NAME"), with --help the usage. Returns the
 * process exit code: 64 on a usage error, 69 when the socket cannot be
 * opened, 2 out of memory, else master_run's. groups must outlive it. */
int fleetdashd_main(int argc, char **argv, const group_t *groups);

#endif
