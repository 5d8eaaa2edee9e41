/* main.c - fleetdashd's main and the table of groups: a group is a source in workers/ and a row
 * here */
#include "groups.h"

static const route_t *const aggregates_tables[] = {aggregates_routes, executions_routes, NULL};
static const job_t *const aggregates_jobs[] = {&answers_job, NULL};
static const group_option_t *const aggregates_options[] = {answers_options, NULL};
static const route_t *const alerts_tables[] = {
    alerts_routes,   alert_rules_routes, receivers_routes, budgets_routes,
    activity_routes, state_routes,       live_routes,      NULL};
static const job_t *const alerts_jobs[] = {&evaluator_job, &sender_job, &publisher_job, NULL};
static const group_option_t *const alerts_options[] = {evaluator_options, sender_options, NULL};
static const route_t *const dashboards_tables[] = {dashboards_routes, prometheus_routes,
                                                   access_routes, NULL};
static const group_option_t *const dashboards_options[] = {prometheus_options, NULL};
static const route_t *const hello_tables[] = {hello_routes, NULL};
static const route_t *const ingest_tables[] = {ingest_routes, registry_routes, NULL};
static const job_t *const maintenance_jobs[] = {&maintenance_job, NULL};
static const group_option_t *const maintenance_option_tables[] = {maintenance_options, NULL};
static const group_option_t *const streams_option_tables[] = {streams_options, NULL};

/* The groups; one master per group (group.h says what each member means).
 * tests/e2e/test_routes.py checks that nginx.conf, deploy/stack.sh,
 * deploy/README.md and docs/openapi.yaml agree with this table. */
static const group_t fleetdashd_groups[] = {
    /* the aggregates and the explorer; the answers job */
    {.name = "aggregates",
     .routes = aggregates_tables,
     .jobs = aggregates_jobs,
     .workers = 4,
     .options = aggregates_options},
    /* alerts, silences, rules, receivers, notifications, budgets, state, the
     * activity feed and the live streams (routes and the publisher job) */
    {.name = "alerts",
     .routes = alerts_tables,
     .jobs = alerts_jobs,
     .workers = 4,
     .options = alerts_options},
    /* dashboards and widgets; GET /metrics; API keys and the audit log */
    {.name = "dashboards",
     .routes = dashboards_tables,
     .workers = 4,
     .options = dashboards_options},
    /* the FastCGI baseline of the benchmarks: /readyz does not wait for it */
    {.name = "hello", .routes = hello_tables, .workers = 4, .optional = true},
    /* what orchestrators write: ingest keys (and admin ones) */
    {.name = "ingest",
     .routes = ingest_tables,
     .workers = 4,
     .read_roles = ROLES_INGEST_READ,
     .write_roles = ROLES_INGEST},
    {.name = "maintenance",
     .jobs = maintenance_jobs,
     .workers = 1,
     .options = maintenance_option_tables},
    /* ingest's routes again, for NDJSON streams (nginx.conf): a slow stream
     * holds a worker of its own, never one that small requests wait for */
    {.name = "streams",
     .routes = ingest_tables,
     .workers = 4,
     .options = streams_option_tables,
     .start = streams_start,
     .read_roles = ROLES_INGEST_READ,
     .write_roles = ROLES_INGEST},
    {.name = NULL},
};

int main(int argc, char **argv)
{
    return fleetdashd_main(argc, argv, fleetdashd_groups);
}
