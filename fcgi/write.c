/* write.c - a route that is one statement answering one row (write.h) */
#include "write.h"

#include <stdlib.h>
#include <string.h>

#include "etag.h"
#include "json_out.h"

int write_check_body(const json_t *body, const body_rules_t *rules, problem_t *p)
{
    validate_object(body, rules->fields, "", p);
    for (const char *const *name = rules->uuids; name != NULL && *name != NULL; name++) {
        const char *id = field_string(body, *name);
        if (id != NULL && !validate_uuid(id))
            problem_field(p, *name, "must be a UUID");
    }
    if (rules->extra != NULL && json_is_object(body))
        rules->extra(body, p);
    return p->status != 0 ? -1 : 0;
}

int write_captured_ids(const request_t *req, const char *const *nouns, problem_t *p)
{
    for (size_t i = 0; i < req->ncaptures; i++)
        if (!validate_uuid(req->captures[i]))
            return problem_fail(p, PROBLEM_NOT_FOUND, "No %s %s.", nouns[i], req->captures[i]);
    return 0;
}

const char *write_body_text(request_t *req, const body_rules_t *rules, problem_t *p)
{
    json_t *body = request_json_body(req, REQUEST_BODY_LIMIT, p);
    const char *text = NULL;

    if (body != NULL && write_check_body(body, rules, p) == 0)
        text = json_out_text(req->arena, body);
    json_decref(body);
    return text;
}

bool write_has_body(const request_t *req)
{
    const char *length = request_param(req, "CONTENT_LENGTH");

    return length != NULL && strtoull(length, NULL, 10) > 0;
}

int write_answer_row(request_t *req, response_t *res, problem_t *p, const db_statement_t *stmt,
                     const char *const *params, int status, const write_route_t *w,
                     const char *missing)
{
    PGresult *rows = db_exec(stmt, params, p);
    int rc = -1;

    if (rows == NULL)
        goto done;
    const char *body = PQntuples(rows) > 0 ? db_get_copy(req->arena, rows, 0, "body") : NULL;
    if (body == NULL) {
        problem_fail(p, missing != NULL ? PROBLEM_NOT_FOUND : PROBLEM_INTERNAL, "%s",
                     missing != NULL ? missing : "The server failed to answer this request.");
        goto done;
    }
    if (status == 0) {
        const char *created = db_get(rows, 0, "created");
        status = created != NULL && created[0] == 't' ? 201 : 200;
    }
    if (status == 201 && w != NULL && w->location != NULL)
        res->location = w->location(req->arena, rows);
    response_text(res, status, body, strlen(body));
    rc = 0;
done:
    PQclear(rows);
    return rc;
}

int write_answer_versioned(request_t *req, response_t *res, problem_t *p, const PGresult *rows,
                           int status, const write_versioned_t *v)
{
    const char *body = PQntuples(rows) > 0 ? db_get_copy(req->arena, rows, 0, "body") : NULL;

    if (body == NULL)
        return problem_fail(p, PROBLEM_NOT_FOUND, "No %s %s.", v->noun,
                            req->ncaptures > 0 ? req->captures[0] : "");
    res->etag = etag_of(req->arena, db_get(rows, 0, "version"), v->weak);
    if (status == 201)
        res->location = arena_printf(req->arena, "%s/%s", v->base, db_get(rows, 0, "id"));
    response_text(res, status, body, strlen(body));
    return 0;
}

int write_run_versioned(request_t *req, response_t *res, problem_t *p, const db_statement_t *stmt,
                        const char *const *params, int status, const write_versioned_t *v)
{
    PGresult *rows = db_exec(stmt, params, p);

    if (rows == NULL)
        return -1;
    int rc = write_answer_versioned(req, res, p, rows, status, v);
    PQclear(rows);
    return rc;
}

int write_run_no_content(response_t *res, problem_t *p, const db_statement_t *stmt,
                         const char *const *params)
{
    PGresult *rows = db_exec(stmt, params, p);

    if (rows == NULL)
        return -1;
    PQclear(rows);
    response_json(res, 204, NULL);
    return 0;
}

int write_serve(request_t *req, response_t *res, problem_t *p)
{
    const write_route_t *w = req->route_arg;
    const char *params[REQUEST_MAX_CAPTURES + 1];
    const char *missing = NULL;
    size_t n;

    if (write_captured_ids(req, w->nouns, p) != 0)
        return -1;
    for (n = 0; n < req->ncaptures; n++)
        params[n] = req->captures[n];
    if (w->body != NULL) {
        params[n] = write_body_text(req, w->body, p);
        if (params[n++] == NULL)
            return -1;
    }
    if (strcmp(req->method, "GET") == 0 && w->nouns != NULL && req->ncaptures > 0)
        missing = arena_printf(req->arena, "No %s %s.", w->nouns[0], req->captures[0]);
    return write_answer_row(req, res, p, w->stmt, params, w->status, w, missing);
}
