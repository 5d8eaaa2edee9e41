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
 *          one handler serves several rows; NULL when it needs nothing
 * roles:   the roles of API keys that may call it (ROLES_*, below); 0 = the
 *          group's default for the method (group.h: read_roles for GET,
 *          write_roles for the others), filled in when the group starts */
typedef struct route {
    const char *method;
    const char *pattern;
    route_handler_t handler;
    unsigned flags;
    const void *arg;
    unsigned roles;
} route_t;

#define ROUTE_IDEMPOTENT 0x1u

/* The roles of API keys (fcgi/auth.h), one bit each, and who may call a
 * route: the roles its row allows. ROLES_PUBLIC needs no key at all
 * (/healthz, /readyz); ROLES_TRUSTED needs none from an address nginx
 * trusts for it (FLEETDASH_TRUSTED=1: GET /metrics from the addresses of
 * nginx.d/NAME.metrics). */
#define ROLE_VIEWER       0x01u
#define ROLE_EDITOR       0x02u
#define ROLE_INGEST       0x04u
#define ROLE_ADMIN        0x08u
#define ROLE_METRICS      0x10u
#define ROLES_PUBLIC      0x100u
#define ROLES_TRUSTED     0x200u
#define ROLES_READ        (ROLE_VIEWER | ROLE_EDITOR | ROLE_ADMIN) /* every read */
#define ROLES_EDIT        (ROLE_EDITOR | ROLE_ADMIN)               /* configuration writes */
#define ROLES_INGEST      (ROLE_INGEST | ROLE_ADMIN)               /* what orchestrators write */
#define ROLES_INGEST_READ (ROLES_READ | ROLE_INGEST)               /* reads of the ingest routes */
#define ROLES_ADMIN       ROLE_ADMIN                               /* keys, the audit log */
#define ROLES_METRICS     (ROLE_METRICS | ROLE_ADMIN | ROLES_TRUSTED) /* GET /metrics */

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
