/* problem.h - the error a handler reports, and its RFC 9457 problem+json body */
#ifndef FLEETDASH_PROBLEM_H
#define FLEETDASH_PROBLEM_H

#include <jansson.h>
#include <stddef.h>

#include "arena.h"

/* Fields a problem keeps (and its body lists): a body of 80,000 unknown
 * members listed every one of them (64 MiB of worker memory). */
#define PROBLEM_FIELDS_MAX 1000

/* One bad input field of a 422 answer. */
typedef struct problem_field {
    long line;           /* line or item of a batch, 1-based; 0 = none */
    const char *field;   /* path of the field: "widgets[2].position.w" */
    const char *message; /* what is wrong with it, in words */
} problem_field_t;

/* What went wrong while serving a request. Owned by the request; every
 * string lives in the request's arena. status 0 means "no error yet". */
typedef struct problem {
    arena_t *arena;
    int status;               /* HTTP status to answer with */
    const char *detail;       /* one sentence for people */
    const char *allow;        /* 405 only: the Allow header */
    const char *authenticate; /* 401 only: the WWW-Authenticate header (auth.c) */
    int retry_after;          /* seconds, 503 only; 0 = none */
    problem_field_t *fields;  /* 422 only; the first PROBLEM_FIELDS_MAX of them */
    size_t nfields;           /* how many were reported, kept or not */
    size_t fields_cap;
    json_t *members; /* members added to the body (/readyz: groups), owned: the worker
                      * releases them when the request ends; NULL = none */
} problem_t;

/* What went wrong, as the place that finds it says it. Each kind is one row
 * of the table in problem.c, the only place that knows its HTTP status, its
 * problem type and its title. */
typedef enum problem_kind {
    PROBLEM_MALFORMED,           /* 400: the request cannot be read as sent */
    PROBLEM_UNAUTHORIZED,        /* 401 */
    PROBLEM_FORBIDDEN,           /* 403 */
    PROBLEM_NOT_FOUND,           /* 404: nothing at this path or with this id */
    PROBLEM_METHOD_NOT_ALLOWED,  /* 405 (p->allow lists the methods) */
    PROBLEM_TOO_SLOW,            /* 408: a body slower than the minimum pace */
    PROBLEM_CONFLICT,            /* 409: the change conflicts with the data */
    PROBLEM_PRECONDITION_FAILED, /* 412: If-Match names another version */
    PROBLEM_TOO_LARGE,           /* 413 */
    PROBLEM_MEDIA_TYPE,          /* 415 */
    PROBLEM_INVALID,             /* 422: well-formed, but fields are wrong */
    PROBLEM_TOO_MANY,            /* 429 */
    PROBLEM_INTERNAL,            /* 500: our mistake, logged */
    PROBLEM_UNAVAILABLE,         /* 503: the database is away (Retry-After) */
} problem_kind_t;

/* Records an error of kind (the first one wins; later calls keep the first
 * status but never lose a field list). Always returns -1, so a handler can
 * write `return problem_fail(p, PROBLEM_NOT_FOUND, "No dashboard %s.", id);`. */
int problem_fail(problem_t *p, problem_kind_t kind, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

/* Adds one bad field and makes the status 422 unless another status was set
 * already. The strings are copied into the arena. */
void problem_field(problem_t *p, const char *field, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

/* Forgets what was recorded, for an error that makes the others moot (a
 * body cut short makes its bad lines irrelevant). */
void problem_clear(problem_t *p);

/* problem_field for one line (or item) of a batch: the error also carries
 * "line" in the problem body. */
void problem_line_field(problem_t *p, long line, const char *field, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));

/* The title of an HTTP status ("Not Found"); "Error" for unknown ones. */
const char *problem_title(int status);

/* Builds the problem+json body: {type, title, status, detail, instance,
 * request_id} plus `errors` when fields were recorded and the members of
 * p->members (borrowed) when set. Every string is
 * quoted whatever its bytes: a byte that is not part of valid UTF-8 (a
 * decoded path or query may hold any) is written %XX, in the arena of p.
 * Returns a new reference the caller owns, NULL only when out of memory.
 * A problem with status 0 is reported as 500. */
json_t *problem_body(const problem_t *p, const char *instance, const char *request_id);

#endif
