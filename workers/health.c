/* health.c - liveness and readiness, answered by every group */
#include "groups.h"

#include "../fcgi/db.h"

int health_live(request_t *req, response_t *res, problem_t *p)
{
    (void)req, (void)p;
    response_json(res, 200, json_pack("{s:s}", "status", "ok"));
    return 0;
}

int health_ready(request_t *req, response_t *res, problem_t *p)
{
    (void)req;
    if (db_ping(p) != 0)
        return -1;
    response_json(res, 200, json_pack("{s:s}", "status", "ready"));
    return 0;
}
