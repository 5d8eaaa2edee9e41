/* problem.c - the error a handler reports, and its RFC 9457 problem+json body */
#include "problem.h"

#include <assert.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#include "validate.h"

/* One row per kind of problem, in the order of problem_kind_t.
 * kind:   the kind the row is for (checked against its index)
 * status: the HTTP status code
 * slug:   last part of the problem type URI (/problems/<slug>)
 * title:  the reason phrase, also the problem title */
typedef struct problem_row {
    problem_kind_t kind;
    int status;
    const char *slug;
    const char *title;
} problem_row_t;

static const problem_row_t problem_rows[] = {
    {PROBLEM_MALFORMED, 400, "bad-request", "Bad Request"},
    {PROBLEM_UNAUTHORIZED, 401, "unauthorized", "Unauthorized"},
    {PROBLEM_FORBIDDEN, 403, "forbidden", "Forbidden"},
    {PROBLEM_NOT_FOUND, 404, "not-found", "Not Found"},
    {PROBLEM_METHOD_NOT_ALLOWED, 405, "method-not-allowed", "Method Not Allowed"},
    {PROBLEM_TOO_SLOW, 408, "request-timeout", "Request Timeout"},
    {PROBLEM_CONFLICT, 409, "conflict", "Conflict"},
    {PROBLEM_PRECONDITION_FAILED, 412, "precondition-failed", "Precondition Failed"},
    {PROBLEM_TOO_LARGE, 413, "payload-too-large", "Payload Too Large"},
    {PROBLEM_MEDIA_TYPE, 415, "unsupported-media-type", "Unsupported Media Type"},
    {PROBLEM_INVALID, 422, "validation", "Unprocessable Content"},
    {PROBLEM_TOO_MANY, 429, "too-many-requests", "Too Many Requests"},
    {PROBLEM_INTERNAL, 500, "internal", "Internal Server Error"},
    {PROBLEM_UNAVAILABLE, 503, "service-unavailable", "Service Unavailable"},
    {0, 0, NULL, NULL},
};

static const problem_row_t *problem_row(int status)
{
    for (const problem_row_t *r = problem_rows; r->status != 0; r++)
        if (r->status == status)
            return r;
    return &problem_rows[PROBLEM_INTERNAL];
}

const char *problem_title(int status)
{
    for (const problem_row_t *r = problem_rows; r->status != 0; r++)
        if (r->status == status)
            return r->title;
    switch (status) {
    case 200: return "OK";
    case 201: return "Created";
    case 204: return "No Content";
    case 304: return "Not Modified";
    default: return "Error";
    }
}

int problem_fail(problem_t *p, problem_kind_t kind, const char *fmt, ...)
{
    const problem_row_t *row = &problem_rows[kind];

    assert(row->kind == kind); /* the table is in the order of the enum */
    if (p->status != 0 && p->status != 422)
        return -1;
    if (p->status == 422 && p->nfields > 0 && row->status != 422)
        return -1;
    va_list ap;
    va_start(ap, fmt);
    p->detail = arena_vprintf(p->arena, fmt, ap);
    va_end(ap);
    p->status = row->status;
    return -1;
}

static void problem_vfield(problem_t *p, long line, const char *field, const char *fmt, va_list ap)
{
    if (p->nfields >= PROBLEM_FIELDS_MAX) {
        p->nfields++; /* counted (validate.c compares counts), not kept */
        return;
    }
    if (p->nfields == p->fields_cap) {
        size_t cap = p->fields_cap ? p->fields_cap * 2 : 8;
        problem_field_t *grown = arena_alloc(p->arena, cap * sizeof(*grown));
        if (p->nfields > 0)
            memcpy(grown, p->fields, p->nfields * sizeof(*grown));
        p->fields = grown;
        p->fields_cap = cap;
    }
    p->fields[p->nfields].line = line;
    p->fields[p->nfields].message = arena_vprintf(p->arena, fmt, ap);
    p->fields[p->nfields].field = arena_strdup(p->arena, field);
    p->nfields++;
    if (p->status == 0) {
        p->status = 422;
        p->detail = "The request body has invalid fields; see errors.";
    }
}

void problem_clear(problem_t *p)
{
    p->status = 0;
    p->detail = NULL;
    p->nfields = 0;
}

void problem_field(problem_t *p, const char *field, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    problem_vfield(p, 0, field, fmt, ap);
    va_end(ap);
}

void problem_line_field(problem_t *p, long line, const char *field, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    problem_vfield(p, line, field, fmt, ap);
    va_end(ap);
}

/* s as a string JSON can hold: s itself when it is valid UTF-8, else a copy
 * in the arena in which each byte outside a valid sequence is written %XX
 * ("/api/v1/dashboards/\xff" -> "/api/v1/dashboards/%FF"). NULL gives "". */
static const char *problem_quotable(arena_t *arena, const char *s)
{
    size_t len = s ? strlen(s) : 0, bad = 0, n;

    for (size_t i = 0; i < len; i += n ? n : 1)
        if ((n = validate_utf8_sequence((const unsigned char *)s + i, len - i)) == 0)
            bad++;
    if (bad == 0)
        return s ? s : "";
    char *out = arena_alloc(arena, len + 2 * bad + 1), *o = out;
    for (size_t i = 0; i < len; i += n ? n : 1) {
        n = validate_utf8_sequence((const unsigned char *)s + i, len - i);
        if (n == 0)
            o += sprintf(o, "%%%02X", (unsigned char)s[i]);
        else
            o = (char *)memcpy(o, s + i, n) + n;
    }
    *o = '\0';
    return out;
}

json_t *problem_body(const problem_t *p, const char *instance, const char *request_id)
{
    const problem_row_t *row = problem_row(p->status ? p->status : 500);
    int status = p->status ? p->status : 500;
    char type[64];

    snprintf(type, sizeof(type), "/problems/%s", row->slug);
    json_t *body = json_pack(
        "{s:s, s:s, s:i, s:s, s:s, s:s}", "type", type, "title", problem_title(status), "status",
        status, "detail", problem_quotable(p->arena, p->detail ? p->detail : problem_title(status)),
        "instance", problem_quotable(p->arena, instance), "request_id",
        problem_quotable(p->arena, request_id));
    if (body != NULL && p->members != NULL)
        json_object_update(body, p->members);
    if (body == NULL || p->nfields == 0)
        return body;
    json_t *errors = json_array();
    for (size_t i = 0; i < p->nfields && i < PROBLEM_FIELDS_MAX; i++) {
        json_t *error =
            json_pack("{s:s, s:s}", "field", problem_quotable(p->arena, p->fields[i].field),
                      "message", problem_quotable(p->arena, p->fields[i].message));
        if (p->fields[i].line > 0)
            json_object_set_new(error, "line", json_integer(p->fields[i].line));
        json_array_append_new(errors, error);
    }
    json_object_set_new(body, "errors", errors);
    return body;
}
