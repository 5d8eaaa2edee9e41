/* hello.c - the FastCGI "hello" group: the baseline every benchmark compares to */
#include "groups.h"

static int hello_world(request_t *req, response_t *res, problem_t *p)
{
    (void)req, (void)p;
    response_json(res, 200, json_pack("{s:s}", "hello", "world"));
    return 0;
}

const route_t hello_routes[] = {
    {.method = "GET", .pattern = "/hello", .handler = hello_world, .roles = ROLES_PUBLIC},
    {.method = NULL},
};
