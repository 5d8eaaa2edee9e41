/* groups.h - what the groups export to the table of groups (main.c) and to each other */
#ifndef FLEETDASH_GROUPS_H
#define FLEETDASH_GROUPS_H

#include <stdbool.h>

#include "../fcgi/group.h"

/* Route tables end with a row whose method is NULL; the runtime adds
 * /healthz and /readyz to every group's (fcgi/health.h). */
extern const route_t aggregates_routes[];
/* answers.c: the aggregates group's `answers` job (the next second's
 * answers of popular queries computed ahead) and its option. */
extern const job_t answers_job;
extern const group_option_t answers_options[];
/* executions.c: GET /executions (pages and exports) and /executions/{id} */
extern const route_t executions_routes[];
/* the most rows one export of GET /executions answers (limit, documented) */
#define EXECUTIONS_EXPORT_MAX 1000000

/* The words of the aggregates (aggregates.c), NULL-terminated; widget
 * configs use them too (dashboards.c). */
extern const char *const aggregates_time_ranges[];
extern const char *const aggregates_group_bys[];
extern const char *const aggregates_metric_names[];
extern const char *const aggregates_heatmap_metrics[];

/* True if s has the shape of an IANA zone name (aggregates.c): a tz is UTC
 * or such a name, and then the database says whether the zone exists. */
bool tz_is_iana_shaped(const char *s);

/* The alerts group (alerts.c): alerts and silences; the words of alerts,
 * NULL-terminated. */
extern const route_t alerts_routes[];
extern const char *const alerts_severities[];
extern const char *const alerts_statuses[];

/* Receivers and notifications (receivers.c) and the alerts group's
 * `sender` job with its options (sender.c: timeout, backoff, bounds,
 * private addresses, how often it looks); the notification statuses,
 * NULL-terminated. */
extern const route_t receivers_routes[];
extern const char *const notifications_statuses[];
extern const job_t sender_job;
extern const job_t publisher_job;
extern const group_option_t sender_options[];
/* Budgets (budgets.c), in the alerts group: CRUD and status. */
extern const route_t budgets_routes[];
/* The activity feed (activity.c), in the alerts group. */
extern const route_t activity_routes[];
/* The fleet's state (state.c), in the alerts group: GET /state. */
extern const route_t state_routes[];
/* The live streams (live.c, publisher.c), in the alerts group. */
extern const route_t live_routes[];
/* The alerts group's rules (alert_rules.c) and their kinds, NULL-terminated;
 * the evaluator job (evaluator.c) and its option, the evaluation interval. */
extern const route_t alert_rules_routes[];
extern const char *const alert_rules_kinds[];
extern const job_t evaluator_job;
extern const group_option_t evaluator_options[];

extern const route_t dashboards_routes[];
/* GET /metrics (prometheus.c), in the dashboards group, and its option. */
extern const route_t prometheus_routes[];
extern const route_t access_routes[]; /* access.c: API keys, the audit log */
extern const group_option_t prometheus_options[];
extern const route_t hello_routes[];
extern const route_t ingest_routes[];   /* ingest.c: executions */
extern const route_t registry_routes[]; /* registry.c: agents ... experiments */

/* The job of the `maintenance` group (maintenance.c): no routes, no socket,
 * and its options (the refresh interval). */
extern const job_t maintenance_job;
extern const group_option_t maintenance_options[];

/* The `streams` group's options (streams.c: how slow a body may arrive)
 * and its start, which applies them. */
extern const group_option_t streams_options[];
void streams_start(void);

#endif
