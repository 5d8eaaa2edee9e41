/* response.h - the answer to one request: status, headers, JSON body */
#ifndef FLEETDASH_RESPONSE_H
#define FLEETDASH_RESPONSE_H

#include <jansson.h>
#include <stdbool.h>

#include "problem.h"
#include "request.h"

typedef struct response {
    int status;       /* 0 until a handler answers */
    json_t *body;     /* owned by the response; NULL = no body */
    const char *text; /* or the body already serialised (arena) */
    size_t text_len;
    const char *content_type;     /* NULL = application/json */
    const char *location;         /* Location header (201) */
    const char *etag;             /* ETag header, already quoted */
    const char *allow;            /* Allow header (405) */
    const char *www_authenticate; /* WWW-Authenticate header (401) */
    const char *cors_methods;     /* a CORS preflight's Access-Control-Allow-Methods (cors.h) */
    const char *accel_redirect;   /* X-Accel-Redirect: nginx goes on with this URI (streams) */
    int retry_after;              /* Retry-After seconds (503); 0 = none */
    bool replayed;                /* Idempotent-Replayed: true */
    bool sent;                    /* the handler wrote all of it itself (a stream) */
} response_t;

/* Sets status and body; the body reference is stolen (may be NULL). */
void response_json(response_t *res, int status, json_t *body);

/* Sets status and a body already serialised as JSON (in the arena). */
void response_text(response_t *res, int status, const char *text, size_t len);

/* Turns a recorded problem into the answer: problem+json body, Allow and
 * Retry-After headers where the problem has them. */
void response_problem(response_t *res, const request_t *req, const problem_t *p);

/* Writes the response to the FastCGI output stream. Returns 0; a client
 * that went away is noticed by libfcgi, not here. */
int response_send(const request_t *req, const response_t *res);

/* Drops the body reference; the response may be reused. */
void response_clear(response_t *res);

#endif
