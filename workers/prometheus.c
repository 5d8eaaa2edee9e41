/* prometheus.c - the dashboards group's GET /metrics: the Prometheus text exposition (0.0.4) of
 * every group's and host's counters and of the fleet, made in one call of metrics_text()
 * (sql/functions/28_metrics.sql); nginx lets only configured addresses ask (nginx.conf) */
#include <string.h>

#include "groups.h"
#include "../fcgi/db.h"
#include "../fcgi/query.h"

/* --metrics-max-series: the most agent/model pairs a scrape names. */
static long prometheus_max_series = 500;

const group_option_t prometheus_options[] = {
    {.name = "metrics-max-series",
     .env = "FLEETDASH_METRICS_MAX_SERIES",
     .help = "the most agent/model series GET /metrics names; the rest are counted as dropped "
             "(default 500)",
     .min = 1,
     .max = 100000,
     .value = &prometheus_max_series},
    {.name = NULL},
};

static const db_statement_t stmt_metrics = {"metrics_text",
                                            "SELECT metrics_text($1::integer) AS body", 1, true};

/* GET /metrics, no parameters: 200 text/plain; version=0.0.4. */
static int prometheus_get(request_t *req, response_t *res, problem_t *p)
{
    if (query_only(req, "", p) != 0)
        return -1;
    const char *params[1] = {arena_printf(req->arena, "%ld", prometheus_max_series)};
    PGresult *rows = db_exec(&stmt_metrics, params, p);
    if (rows == NULL)
        return -1;
    const char *body = db_get_copy(req->arena, rows, 0, "body");
    PQclear(rows);
    response_text(res, 200, body, strlen(body));
    res->content_type = "text/plain; version=0.0.4; charset=utf-8";
    return 0;
}

/* clang-format off */
const route_t prometheus_routes[] = {
    {.method = "GET", .pattern = "/metrics", .handler = prometheus_get, .roles = ROLES_METRICS},
    {.method = NULL},
};
/* clang-format on */
