/* state.c - the alerts group's GET /state: the fleet's state at a glance (seed 002's
 * snapshot), one call of state_snapshot() (sql/functions/27_state.sql) answered as it comes */
#include "groups.h"
#include "../fcgi/db.h"
#include "../fcgi/query.h"
#include "../fcgi/write.h"

#define STATE_BASE "/api/v1/state"

static const db_statement_t stmt_state = {"state_snapshot", "SELECT state_snapshot() AS body", 0,
                                          true};

/* GET /state, no parameters: 200 State (uptime, health and its conditions,
 * agents, the last 100 executions, the last hour's throughput); a query
 * parameter is a 400 naming it. */
static int state_get(request_t *req, response_t *res, problem_t *p)
{
    if (query_only(req, "", p) != 0)
        return -1;
    return write_answer_row(req, res, p, &stmt_state, NULL, 200, NULL, NULL);
}

/* clang-format off */
const route_t state_routes[] = {
    {.method = "GET", .pattern = STATE_BASE, .handler = state_get},
    {.method = NULL},
};
/* clang-format on */
