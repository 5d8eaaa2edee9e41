/* router.h - routes are rows of a static table: method, path pattern, handler */
#ifndef FLEETDASH_ROUTER_H
#define FLEETDASH_ROUTER_H

#include <stddef.h>

#include "problem.h"
#include "request.h"
#include "response.h"

/* A handler answers into res and returns 0, or returns -1 with p filled; the
 * worker then answers with the problem. It never writes to the stream. */
typedef int (*route_handler_t)(request_t *req, response_t *res, problem_t *p);

/* One route. A table ends with a row whose method is NULL; rows are written
 * with designated initializers ({.method = "GET", .pattern = ...}).
 * method:  "GET", "POST", ... (GET also answers HEAD)
 * pattern: "/api/v1/dashboards/{id}" - each {name} segment matches any one
 *          non-empty path segment and is captured in order into
 *          request.captures
 * handler: the function that answers
 * flags:   ROUTE_IDEMPOTENT - honours an Idempotency-Key header (POSTs that
 *          write); 0 otherwise
 * arg:     what the handler serves this row with (req->route_arg), so that
 *          one handler serves several rows; NULL when it needs nothing */
typedef struct route {
    const char *method;
    const char *pattern;
    route_handler_t handler;
    unsigned flags;
    const void *arg;
} route_t;

#define ROUTE_IDEMPOTENT 0x1u

/* Finds the route for req->method and req->path in table. The pattern with
 * the fewest captures wins when several match ("/dashboards/default" before
 * "/dashboards/{id}"). On success returns the row and fills req->captures
 * and req->route_arg.
 * Returns NULL with a 404 in p when no pattern matches the path, or a 405
 * with p->allow listing the methods the best pattern has. */
const route_t *route_match(const route_t *table, request_t *req, problem_t *p);

/* Whether route's pattern matches path (whatever its method). */
bool route_matches(const route_t *route, const char *path);

#endif
