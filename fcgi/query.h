/* query.h - the query parameters a handler checks itself: UUIDs, booleans, words */
#ifndef FLEETDASH_QUERY_H
#define FLEETDASH_QUERY_H

#include <stdint.h>

#include "problem.h"
#include "request.h"

/* Each of these reads the query parameter name of req and returns its value
 * (borrowed from the request), or NULL when it is absent. A value of the
 * wrong shape is a 400 in p naming name; the value is still returned (or
 * NULL where said), so that one answer can name every bad parameter: the
 * caller checks p->status once after its last check. */

/* An optional UUID. */
const char *query_uuid(const request_t *req, const char *name, problem_t *p);

/* An optional true|false. */
const char *query_boolean(const request_t *req, const char *name, problem_t *p);

/* An optional one of words (NULL-terminated). */
const char *query_one_of(const request_t *req, const char *name, const char *const *words,
                         problem_t *p);

/* Every value of the repeatable parameter name, each one of words, as a
 * PostgreSQL text array literal in the request's arena; all of defaults
 * (NULL-terminated) when it is absent. NULL with the 400 at the first value
 * not among words. */
const char *query_words(const request_t *req, const char *name, const char *const *words,
                        const char *const *defaults, problem_t *p);

/* Refuses every query parameter but name: a 400 naming each other one.
 * Returns 0, or -1 when there was one. */
int query_only(const request_t *req, const char *name, problem_t *p);

/* An optional RFC 3339 time: its text (NULL when absent) and its value in
 * *micros; a 400 naming the parameter when it is not one. */
const char *query_time(const request_t *req, const char *name, int64_t *micros, problem_t *p);

#endif
