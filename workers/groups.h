/* groups.h - the route tables of the route groups, and the rows they share */
#ifndef FLEETDASH_GROUPS_H
#define FLEETDASH_GROUPS_H

#include "../fcgi/job.h"
#include "../fcgi/router.h"

/* GET /healthz: the worker answers, without touching the database. */
int health_live(request_t *req, response_t *res, problem_t *p);

/* GET /readyz: the worker answers and the database answers SELECT 1. */
int health_ready(request_t *req, response_t *res, problem_t *p);

/* Rows every group's table ends with. */
/* clang-format off */
#define HEALTH_ROUTES                          \
    {"GET", "/healthz", health_live, 0},       \
    {"GET", "/readyz", health_ready, 0},       \
    {NULL, NULL, NULL, 0}
/* clang-format on */

extern const route_t aggregates_routes[];

/* The words of the aggregates (aggregates.c), NULL-terminated; widget
 * configs use them too (dashboards.c). */
extern const char *const aggregates_time_ranges[];
extern const char *const aggregates_group_bys[];
extern const char *const aggregates_metric_names[];
extern const char *const aggregates_heatmap_metrics[];

extern const route_t dashboards_routes[];
extern const route_t hello_routes[];
extern const route_t ingest_routes[];

/* The job of the `maintenance` group (maintenance.c): no routes, no socket. */
extern const job_t maintenance_job;

#endif
