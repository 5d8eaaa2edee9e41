/* request.h - one FastCGI request: method, path, query, headers, body */
#ifndef FLEETDASH_REQUEST_H
#define FLEETDASH_REQUEST_H

#include <fcgiapp.h>
#include <jansson.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "arena.h"
#include "problem.h"

#define REQUEST_BODY_LIMIT   (1024 * 1024) /* default hard limit: 1 MiB */
#define REQUEST_MAX_CAPTURES 4
/* What request_json_body lets jansson read: commas, colons, '[' and '{'
 * outside strings (json_in_separators). A dashboard of 100 widgets with
 * rich configs counts a few thousand; 100,000 of the costliest shape
 * ([{},{},...]) take jansson about 12 MiB. */
#define REQUEST_JSON_VALUES_MAX 100000

/* One decoded query parameter. Repeated keys give repeated entries. */
typedef struct query_param {
    const char *name;
    const char *value;
} query_param_t;

/* A request as handlers see it. Every string is either in the arena or
 * borrowed from libfcgi; all die when the request ends. */
typedef struct request {
    FCGX_Request *fcgx; /* NULL in unit tests */
    arena_t *arena;
    const char *method;     /* "GET" */
    const char *path;       /* decoded path, no query: "/api/v1/dashboards" */
    const char *uri;        /* as sent: path and query */
    const char *request_id; /* nginx $request_id, or "-" */
    query_param_t *query;
    size_t nquery;
    const char *captures[REQUEST_MAX_CAPTURES]; /* {id} segments of the route */
    size_t ncaptures;
    const void *route_arg; /* the matched route's arg (router.h), NULL if none */
    uint64_t body_hash;    /* FNV-1a of the body bytes read so far */
    size_t body_read;      /* how many body bytes were read */
    bool body_broken;      /* the stream failed before its end */
    bool body_too_slow;    /* ... because it was cut for its pace (408) */
    int64_t started_ms;    /* CLOCK_MONOTONIC when the request was read */
    const char *key_id;    /* the API key that called (auth.h); NULL = none checked */
    const char *key_name;
    const char *key_role;
} request_t;

/* Sets how slow a body may arrive, for every request of this process
 * (call it before the workers fork; until then there is no limit): a read
 * that waits past started_ms + grace + body_read / min_rate (bytes per
 * second) is cut, the body reads as broken and body_too_slow is set.
 * min_rate 0 turns the cut off. The deadline moves only with bytes that
 * arrived, so a trickle cannot hold it off. Cannot fail. */
void request_body_pace(long grace_seconds, long min_rate);

/* Parses an application/x-www-form-urlencoded query string into params:
 * '+' is a space, %XX is decoded, an empty string gives no params. Returns 0,
 * or -1 with p set to 400 naming the broken parameter when a %-escape is
 * malformed or decodes to a NUL byte or invalid UTF-8. */
int request_parse_query(arena_t *arena, const char *qs, query_param_t **params, size_t *nparams,
                        problem_t *p);

/* Fills req from the FastCGI environment of fcgx (method, path, query).
 * Returns 0, or -1 with a 400 in p when the query string is malformed. */
int request_init(request_t *req, FCGX_Request *fcgx, arena_t *arena, problem_t *p);

/* The first value of query parameter name, or NULL when absent. */
const char *request_query(const request_t *req, const char *name);

/* A FastCGI parameter such as "HTTP_IF_MATCH", or NULL when absent.
 * Borrowed: valid until the request ends. */
const char *request_param(const request_t *req, const char *name);

/* Reads the request body as JSON. Checks, in this order: the declared length
 * against limit (413), the Content-Type is application/json (415), the
 * bytes read against limit (413), that the body arrived whole (408 when it
 * was cut for its pace, 400 when it ended early), that a body is present
 * (400), that it holds at most REQUEST_JSON_VALUES_MAX values (422 naming
 * `body`: it is measured before jansson reads it), and that it parses (400
 * naming line and column). On success returns a new reference the caller
 * owns; on failure NULL with p filled. The body is drained on every path
 * so nginx sees a clean answer. */
json_t *request_json_body(request_t *req, size_t limit, problem_t *p);

/* request_json_body with another bound on the values than
 * REQUEST_JSON_VALUES_MAX (a batch of executions holds more). */
json_t *request_json_body_bounded(request_t *req, size_t limit, size_t values_max, problem_t *p);

/* The problem of a body that did not arrive whole: 408 when it was cut for
 * its pace, else 400 (it ended early). Always returns -1. */
int request_body_refuse(const request_t *req, problem_t *p);

/* Reads up to cap bytes of the body into buf; returns how many, 0 at its
 * end. Returns what has arrived (at least one byte) rather than wait for
 * cap bytes. Keeps body_hash and body_read up to date; a broken stream, or
 * one cut for its pace (request_body_pace), sets body_broken and reads as
 * the end. */
size_t request_body_read(request_t *req, char *buf, size_t cap);

/* True if the whole body arrived: the stream ended cleanly and, when the
 * client declared a Content-Length, that many bytes were read. */
bool request_body_complete(const request_t *req);

/* Reads and throws away the rest of the body (still hashing it). */
void request_body_drain(request_t *req);

/* The body hash as 16 hex digits, in the arena (identifies a body for
 * Idempotency-Key replays; not cryptographic). */
const char *request_body_hash(const request_t *req);

/* True if content_type names the given media type (parameters such as
 * charset=utf-8 allowed, case-insensitive). */
bool request_is_type(const char *content_type, const char *type);

/* True if the Content-Type value names application/json (parameters such as
 * charset=utf-8 allowed, case-insensitive). */
bool request_is_json_type(const char *content_type);

#endif
