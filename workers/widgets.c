/* widgets.c - the widgets of a dashboard: create, read, replace, patch,
 * delete (SQL in sql/002_dashboards.sql) */
#include <string.h>

#include "dashboards.h"
#include "../fcgi/db.h"
#include "../fcgi/etag.h"
#include "../fcgi/json_out.h"
#include "../fcgi/validate.h"
#include "../fcgi/write.h"

/* Each answers a widget_answer row (id, dashboard_id, dashboard_version,
 * type, body), or none when there is no such widget. */
static const db_statement_t stmt_widget_get = {"widgets_get", "SELECT * FROM widget_read($1, $2)",
                                               2, true};
static const db_statement_t stmt_widget_create = {
    "widgets_create", "SELECT * FROM widget_create($1, $2, $3)", 3, false};
static const db_statement_t stmt_widget_update = {
    "widgets_update", "SELECT * FROM widget_update($1, $2, $3, $4, $5)", 5, false};
static const db_statement_t stmt_widget_delete = {"widgets_delete",
                                                  "SELECT widget_delete($1, $2, $3)", 3, false};

static int no_widget(const request_t *req, problem_t *p)
{
    return problem_fail(p, PROBLEM_NOT_FOUND, "No widget %s on dashboard %s.", req->captures[1],
                        req->captures[0]);
}

/* Runs stmt, whose result is a widget_answer, and answers with the widget
 * (200, or 201 with its Location); its ETag is its dashboard's version. */
static int run_widget(request_t *req, response_t *res, problem_t *p, const db_statement_t *stmt,
                      const char *const *params, int status)
{
    PGresult *rows = db_exec(stmt, params, p);
    int rc = -1;

    if (rows == NULL)
        return -1;
    if (PQntuples(rows) == 0) {
        rc = no_widget(req, p);
        goto done;
    }
    res->etag = etag_of(req->arena, db_get(rows, 0, "dashboard_version"), false);
    if (status == 201)
        res->location = arena_printf(req->arena, DASHBOARDS_BASE "/%s/widgets/%s",
                                     db_get(rows, 0, "dashboard_id"), db_get(rows, 0, "id"));
    const char *body = db_get_copy(req->arena, rows, 0, "body");
    if (body == NULL) {
        rc = problem_fail(p, PROBLEM_INTERNAL, "The server failed to answer this request.");
        goto done;
    }
    response_text(res, status, body, strlen(body));
    rc = 0;
done:
    PQclear(rows);
    return rc;
}

/* A widget patch with a config but no type: its config is checked for the
 * type the widget has (one read). Returns 0, or -1 with p filled (404 when
 * there is no such widget). */
static int check_patched_config(request_t *req, const json_t *body, problem_t *p)
{
    const json_t *config = json_object_get(body, "config");

    if (!json_is_object(config) || json_object_get(body, "type") != NULL)
        return 0;
    PGresult *rows = db_exec(&stmt_widget_get, req->captures, p);
    if (rows == NULL)
        return -1;
    if (PQntuples(rows) == 0)
        no_widget(req, p);
    else
        dashboards_input_config(config, db_get(rows, 0, "type"), "config", p);
    PQclear(rows);
    return p->status != 0 ? -1 : 0;
}

int widgets_create(request_t *req, response_t *res, problem_t *p)
{
    json_t *body = NULL;
    int rc = -1;

    if (dashboards_input_ids(req, p) != 0)
        return -1;
    body = request_json_body(req, REQUEST_BODY_LIMIT, p);
    if (body == NULL)
        goto done;
    dashboards_input_widget(body, "", false, p);
    if (p->status != 0)
        goto done;
    const char *params[3] = {req->captures[0], etag_if_match(req), json_out_text(req->arena, body)};
    rc = run_widget(req, res, p, &stmt_widget_create, params, 201);
done:
    json_decref(body);
    return rc;
}

int widgets_get(request_t *req, response_t *res, problem_t *p)
{
    if (dashboards_input_ids(req, p) != 0)
        return -1;
    return run_widget(req, res, p, &stmt_widget_get, req->captures, 200);
}

/* PUT replaces every attribute (defaults for the absent ones), PATCH
 * changes only the members sent: one statement, told which. */
int widgets_update(request_t *req, response_t *res, problem_t *p)
{
    bool replace = strcmp(req->method, "PUT") == 0;
    json_t *body = NULL;
    int rc = -1;

    if (dashboards_input_ids(req, p) != 0)
        return -1;
    body = request_json_body(req, REQUEST_BODY_LIMIT, p);
    if (body == NULL)
        goto done;
    dashboards_input_widget(body, "", !replace, p);
    if (p->status != 0 || (!replace && check_patched_config(req, body, p) != 0))
        goto done;
    const char *params[5] = {req->captures[0], req->captures[1], etag_if_match(req),
                             json_out_text(req->arena, body), replace ? "true" : "false"};
    rc = run_widget(req, res, p, &stmt_widget_update, params, 200);
done:
    json_decref(body);
    return rc;
}

int widgets_delete(request_t *req, response_t *res, problem_t *p)
{
    if (dashboards_input_ids(req, p) != 0)
        return -1;
    const char *params[3] = {req->captures[0], req->captures[1], etag_if_match(req)};
    return write_run_no_content(res, p, &stmt_widget_delete, params);
}
