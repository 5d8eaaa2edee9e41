/* query.c - the query parameters a handler checks itself (query.h) */
#include "query.h"

#include <string.h>

#include "rfc3339.h"
#include "validate.h"

/* The 400 of a parameter that is there but wrong. */
static void query_refuse(problem_t *p, const char *name)
{
    problem_fail(p, PROBLEM_MALFORMED, "The query parameter %s is invalid.", name);
}

const char *query_uuid(const request_t *req, const char *name, problem_t *p)
{
    const char *value = request_query(req, name);

    if (value != NULL && !validate_uuid(value)) {
        query_refuse(p, name);
        problem_field(p, name, "must be a UUID");
    }
    return value;
}

const char *query_boolean(const request_t *req, const char *name, problem_t *p)
{
    const char *value = request_query(req, name);

    if (value != NULL && strcmp(value, "true") != 0 && strcmp(value, "false") != 0) {
        query_refuse(p, name);
        problem_field(p, name, "must be true or false");
    }
    return value;
}

const char *query_one_of(const request_t *req, const char *name, const char *const *words,
                         problem_t *p)
{
    const char *value = request_query(req, name);

    if (value != NULL && !validate_one_of(value, words)) {
        query_refuse(p, name);
        problem_field(p, name, "must be one of: %s", validate_list(p->arena, words));
    }
    return value;
}

const char *query_words(const request_t *req, const char *name, const char *const *words,
                        const char *const *defaults, problem_t *p)
{
    size_t len = 2, n = 0;

    for (size_t i = 0; i < req->nquery; i++)
        if (strcmp(req->query[i].name, name) == 0)
            len += strlen(req->query[i].value) + 1;
    for (const char *const *w = defaults; *w != NULL; w++)
        len += strlen(*w) + 1;
    char *text = arena_alloc(req->arena, len + 1);
    strcpy(text, "{");
    for (size_t i = 0; i < req->nquery; i++) {
        if (strcmp(req->query[i].name, name) != 0)
            continue;
        const char *value = req->query[i].value;
        if (!validate_one_of(value, words)) {
            query_refuse(p, name);
            problem_field(p, name, "must be one of: %s", validate_list(p->arena, words));
            return NULL;
        }
        strcat(strcat(text, n++ ? "," : ""), value);
    }
    for (const char *const *w = defaults; n == 0 && *w != NULL; w++)
        strcat(strcat(text, w != defaults ? "," : ""), *w);
    return strcat(text, "}");
}

int query_only(const request_t *req, const char *name, problem_t *p)
{
    int rc = 0;

    for (size_t i = 0; i < req->nquery; i++)
        if (strcmp(req->query[i].name, name) != 0) {
            problem_fail(p, PROBLEM_MALFORMED, "Unknown query parameter %s.", req->query[i].name);
            problem_field(p, req->query[i].name, "is not a parameter of this endpoint");
            rc = -1;
        }
    return rc;
}

const char *query_time(const request_t *req, const char *name, int64_t *micros, problem_t *p)
{
    const char *text = request_query(req, name);

    if (text != NULL && rfc3339_parse(text, micros) != 0) {
        problem_fail(p, PROBLEM_MALFORMED, "The query parameter %s is invalid.", name);
        problem_field(p, name, "must be an RFC 3339 time, e.g. 2026-12-01T10:00:00Z");
    }
    return text;
}
