/* cors.h - a browser's preflight from an allowed origin (CORS): OPTIONS answered with the methods
 * its path has in every group */
#ifndef FLEETDASH_CORS_H
#define FLEETDASH_CORS_H

#include <stdbool.h>

#include "group.h"
#include "problem.h"
#include "request.h"
#include "response.h"

/* The request headers a preflight may ask for (Access-Control-Allow-Headers). */
#define CORS_ALLOW_HEADERS                                                                         \
    "Authorization, Content-Type, If-Match, If-None-Match, Idempotency-Key, X-Request-Id"
/* Seconds a browser may keep a preflight's answer. */
#define CORS_MAX_AGE "600"

/* Remembers every group's route tables: a preflight reaches the group
 * nginx sends its path to, but a path's methods may live in several groups
 * (GET /executions reads in aggregates, POST ingests). groups must outlive
 * the process. */
void cors_configure(const group_t *groups);

/* Whether req is a preflight nginx let through for an allowed origin
 * (OPTIONS with Access-Control-Request-Method, and FLEETDASH_CORS_ORIGIN,
 * which nginx sets only for an origin of its allow-list). If so it is
 * answered: 204 with the methods the path has in any group (HEAD with GET),
 * the headers a request may send and how long to keep that; a path no
 * group has is a 404 in p. Any other request is left alone (false): an
 * OPTIONS from another origin gets the 405 it always got. */
bool cors_preflight(request_t *req, response_t *res, problem_t *p);

#endif
