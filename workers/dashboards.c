/* dashboards.c - the dashboards group: dashboards, their layout, the default
 * dashboard, ?include_data=true, and the group's route table (input rules in
 * dashboards_input.c, widgets in widgets.c, SQL in sql/002_dashboards.sql) */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "dashboards.h"
#include "groups.h"
#include "../fcgi/cache.h"
#include "../fcgi/cursor.h"
#include "../fcgi/db.h"
#include "../fcgi/etag.h"
#include "../fcgi/json_out.h"
#include "../fcgi/query.h"
#include "../fcgi/validate.h"
#include "../fcgi/write.h"

static const field_rule_t layout_rules[] = {
    {"positions", FIELD_OBJECT, FIELD_REQUIRED, 0, 0, NULL},
    {NULL, 0, 0, 0, 0, NULL},
};

/* ---------------------------------------------------------------- statements */

/* A page of DashboardSummary bodies, with the keys of the cursor: the order
 * of the listing, (NOT is_default, name, id). */
static const db_statement_t stmt_list = {
    "dashboards_list",
    "SELECT NOT r.is_default AS cursor_default, r.name, r.id, row_to_json(x) AS body"
    "  FROM dashboard_rows r,"
    "       LATERAL (SELECT r.*, (SELECT count(*) FROM dashboard_widgets w"
    "                              WHERE w.dashboard_id = r.id) AS widget_count) x"
    " WHERE ($1::text IS NULL OR r.owner = $1)"
    "   AND ($2::boolean IS NULL OR ((NOT r.is_default), r.name, r.id) > ($2, $3::text, $4::uuid))"
    " ORDER BY (NOT r.is_default), r.name, r.id"
    " LIMIT $5",
    5, true};
static const db_statement_t stmt_version = {
    "dashboards_version", "SELECT version FROM dashboards WHERE id = $1", 1, true};
/* Each of these answers a dashboard_answer row (id, version, body), or none
 * when there is no such dashboard. */
static const db_statement_t stmt_get = {"dashboards_get", "SELECT * FROM dashboard_read($1)", 1,
                                        true};
static const db_statement_t stmt_default = {"dashboards_default",
                                            "SELECT * FROM dashboard_default()", 0, false};
/* The data of every widget of dashboard $1, {"<widget id>": data, ...}
 * (sql/006_aggregates.sql): one round trip for any number of widgets. */
/* (token, data) from answer_cached() (sql/functions/15_answer_cache.sql): $2
 * the key, $3 the token this worker holds; data is NULL when it is that
 * token - same data, same second (db_text_cached) - else computed once for
 * all workers under the token. */
static const db_statement_t stmt_data = {
    "dashboards_data",
    "SELECT token, body FROM answer_cached($2, $3, 'dashboard_data($1::uuid)', $1)", 3, true};
static const db_statement_t stmt_create = {
    "dashboards_create", "SELECT * FROM dashboard_create($1, $2, $3, $4, $5)", 5, false};
static const db_statement_t stmt_replace = {
    "dashboards_replace", "SELECT * FROM dashboard_replace($1, $2, $3, $4, $5, $6, $7)", 7, false};
static const db_statement_t stmt_patch = {"dashboards_patch",
                                          "SELECT * FROM dashboard_patch($1, $2, $3)", 3, false};
static const db_statement_t stmt_delete = {"dashboards_delete", "SELECT dashboard_delete($1, $2)",
                                           2, false};
static const db_statement_t stmt_layout = {"dashboards_layout",
                                           "SELECT * FROM dashboard_layout($1, $2, $3)", 3, false};
/* Which of the widget ids (a JSON array) are not on dashboard $1; used to list
 * them beside other bad entries of a layout (the write checks again). */
static const db_statement_t stmt_layout_unknown = {
    "dashboards_layout_unknown",
    "SELECT k FROM json_array_elements_text($2) AS k"
    " WHERE NOT EXISTS (SELECT 1 FROM dashboard_widgets w"
    "                    WHERE w.dashboard_id = $1 AND w.id::text = lower(k))"
    " ORDER BY k",
    2, true};
/* ---------------------------------------------------------------- answers */

/* How a dashboard_answer row is answered: noun, base, weak */
static const write_versioned_t dashboard_answer = {"dashboard", DASHBOARDS_BASE, false};

/* ---------------------------------------------------------------- dashboards */

static int dashboards_list(request_t *req, response_t *res, problem_t *p)
{
    static const char *const filters[] = {"owner", NULL};
    static const char *const keys[] = {"cursor_default", "name", "id", NULL};
    cursor_page_t page;

    if (cursor_page_params(req, filters, 3, &page, p) != 0)
        return -1;
    if (page.key[0] != NULL && strcmp(page.key[0], "t") && strcmp(page.key[0], "f"))
        return cursor_refuse(p);
    const char *owner = request_query(req, "owner");
    if (owner != NULL && (owner[0] == '\0' || validate_utf8_length(owner) > DASHBOARDS_OWNER_MAX)) {
        problem_field(p, "owner", "must be 1 to %d characters long", DASHBOARDS_OWNER_MAX);
        return -1;
    }
    const char *params[5] = {owner, page.key[0], page.key[1], page.key[2], NULL};
    return cursor_answer_page(req, res, p, &stmt_list, params, page.limit, keys);
}

static int dashboards_create(request_t *req, response_t *res, problem_t *p)
{
    json_t *body = request_json_body(req, REQUEST_BODY_LIMIT, p);
    int rc = -1;

    if (body == NULL || dashboards_input_check(body, false, p) != 0)
        goto done;
    const char *params[5] = {
        field_string(body, "name"),
        field_string(body, "description"),
        json_is_true(json_object_get(body, "is_default")) ? "true" : "false",
        field_string(body, "owner"),
        field_json(req->arena, body, "widgets"),
    };
    rc = write_run_versioned(req, res, p, &stmt_create, params, 201, &dashboard_answer);
done:
    json_decref(body);
    return rc;
}

/* ?include_data=true|false (default false). Returns 1 or 0, or -1 with a
 * 400 naming the parameter. */
static int include_data(const request_t *req, problem_t *p)
{
    const char *value = query_boolean(req, "include_data", p);

    if (p->status != 0)
        return -1;
    return value != NULL && strcmp(value, "true") == 0;
}

/* Reads JSON text the database made; an integer beyond 64 bits makes
 * jansson refuse it, so then every number is read as a real. NULL when the
 * text is no JSON at all. */
static json_t *load_database_json(const char *text)
{
    json_t *value = json_loads(text, 0, NULL);

    return value != NULL ? value : json_loads(text, JSON_DECODE_INT_AS_REAL, NULL);
}

/* The dashboard of the answer in res with "data" on every widget, from the
 * text of dashboard_data() (an object keyed by widget id); a widget it has
 * no member for gets null. Returns 0, or -1 with a 500 when either text is
 * not what it should be. */
static int attach_data(arena_t *res_arena, response_t *res, const char *text, problem_t *p)
{
    json_t *dashboard = load_database_json(res->text);
    json_t *by_widget = load_database_json(text);
    const json_t *widget;
    size_t i;

    if (!json_is_object(dashboard) || !json_is_object(by_widget)) {
        json_decref(dashboard);
        json_decref(by_widget);
        return problem_fail(p, PROBLEM_INTERNAL, "The server failed to answer this request.");
    }
    json_array_foreach (json_object_get(dashboard, "widgets"), i, widget) {
        json_t *data = json_object_get(by_widget, field_string(widget, "id"));
        json_object_set((json_t *)widget, "data", data != NULL ? data : json_null());
    }
    json_decref(by_widget);
    size_t len;
    const char *merged = json_out(res_arena, dashboard, &len);
    json_decref(dashboard);
    response_text(res, 200, merged, len);
    return 0;
}

/* GET .../dashboards/{id|default}?include_data=true: the dashboard read by
 * stmt as always, each widget with its "data", in two statements whatever
 * the number of widgets. The data changes while the version stays, so this
 * answer is never a 304, and its ETag is weak (W/"3"): it
 * names the version of the dashboard, which If-Match on writes accepts,
 * not the bytes of the data. */
static int answer_with_data(request_t *req, response_t *res, problem_t *p,
                            const db_statement_t *stmt, const char *const *params)
{
    PGresult *rows = db_exec(stmt, params, p);
    int rc = -1;

    if (rows == NULL || write_answer_versioned(req, res, p, rows, 200, &dashboard_answer) != 0)
        goto done;
    res->etag = etag_of(req->arena, db_get(rows, 0, "version"), true);
    const char *data_params[3] = {db_get(rows, 0, "id"), NULL, NULL};
    const char *data_key = arena_printf(req->arena, "dashboard_data\n%s", data_params[0]);
    size_t len = 0;
    const char *data = db_text_cached(req->arena, &stmt_data, data_params, data_key, &len, p);
    if (data == NULL)
        goto done;
    /* The whole answer is kept too, under the dashboard's version and the
     * data's token: the same two, the same bytes, merged once. */
    const char *token = cache_version(req->arena, data_key);
    const char *merged_key = arena_printf(req->arena, "dashboard_with_data\n%s", data_params[0]);
    const char *merged_version =
        token != NULL ? arena_printf(req->arena, "%s\n%s", db_get(rows, 0, "version"), token)
                      : NULL;
    const char *merged =
        merged_version != NULL ? cache_get(req->arena, merged_key, merged_version, &len) : NULL;
    if (merged != NULL) {
        response_text(res, 200, merged, len);
        rc = 0;
    } else if ((rc = attach_data(req->arena, res, data, p)) == 0 && merged_version != NULL)
        cache_put(merged_key, merged_version, res->text, res->text_len);
done:
    PQclear(rows);
    return rc;
}

static int dashboards_default(request_t *req, response_t *res, problem_t *p)
{
    int with_data = include_data(req, p);

    if (with_data < 0)
        return -1;
    if (with_data)
        return answer_with_data(req, res, p, &stmt_default, NULL);
    PGresult *rows = db_exec(&stmt_default, NULL, p);
    if (rows == NULL)
        return -1;
    int rc = write_answer_versioned(req, res, p, rows, 200, &dashboard_answer);
    if (rc == 0 &&
        etag_if_none_match(request_param(req, "HTTP_IF_NONE_MATCH"), db_get(rows, 0, "version")))
        response_text(res, 304, NULL, 0);
    PQclear(rows);
    return rc;
}

/* GET one dashboard. Its current version is read on every request; the
 * worker keeps the last answers per (id, version) and only reads the whole
 * dashboard when the version is not in its cache. Every write bumps the
 * version (the database enforces it), so a hit is always current. With
 * ?include_data=true, see answer_with_data. */
static int dashboards_get(request_t *req, response_t *res, problem_t *p)
{
    size_t len;
    int rc = -1;

    if (dashboards_input_ids(req, p) != 0)
        return -1;
    int with_data = include_data(req, p);
    if (with_data != 0)
        return with_data < 0 ? -1 : answer_with_data(req, res, p, &stmt_get, req->captures);
    PGresult *rows = db_exec(&stmt_version, req->captures, p);
    if (rows == NULL)
        return -1;
    if (PQntuples(rows) == 0) {
        rc = problem_fail(p, PROBLEM_NOT_FOUND, "No dashboard %s.", req->captures[0]);
        goto done;
    }
    const char *version = db_get_copy(req->arena, rows, 0, "version");
    PQclear(rows);
    rows = NULL;
    res->etag = etag_of(req->arena, version, false);
    if (etag_if_none_match(request_param(req, "HTTP_IF_NONE_MATCH"), version)) {
        response_json(res, 304, NULL);
        return 0;
    }
    const char *text = cache_get(req->arena, req->captures[0], version, &len);
    if (text != NULL) {
        response_text(res, 200, text, len);
        return 0;
    }
    rows = db_exec(&stmt_get, req->captures, p);
    if (rows == NULL || write_answer_versioned(req, res, p, rows, 200, &dashboard_answer) != 0)
        goto done;
    cache_put(req->captures[0], db_get(rows, 0, "version"), res->text, res->text_len);
    rc = 0;
done:
    PQclear(rows);
    return rc;
}

static int dashboards_replace(request_t *req, response_t *res, problem_t *p)
{
    json_t *body = NULL;
    int rc = -1;

    if (dashboards_input_ids(req, p) != 0)
        return -1;
    body = request_json_body(req, REQUEST_BODY_LIMIT, p);
    if (body == NULL || dashboards_input_check(body, false, p) != 0)
        goto done;
    const char *params[7] = {
        req->captures[0],
        etag_if_match(req),
        field_string(body, "name"),
        field_string(body, "description"),
        json_is_true(json_object_get(body, "is_default")) ? "true" : "false",
        field_string(body, "owner"),
        field_json(req->arena, body, "widgets"),
    };
    rc = write_run_versioned(req, res, p, &stmt_replace, params, 200, &dashboard_answer);
done:
    json_decref(body);
    return rc;
}

static int dashboards_patch(request_t *req, response_t *res, problem_t *p)
{
    json_t *body = NULL;
    int rc = -1;

    if (dashboards_input_ids(req, p) != 0)
        return -1;
    body = request_json_body(req, REQUEST_BODY_LIMIT, p);
    if (body == NULL || dashboards_input_check(body, true, p) != 0)
        goto done;
    const char *params[3] = {req->captures[0], etag_if_match(req), json_out_text(req->arena, body)};
    rc = write_run_versioned(req, res, p, &stmt_patch, params, 200, &dashboard_answer);
done:
    json_decref(body);
    return rc;
}

static int dashboards_delete(request_t *req, response_t *res, problem_t *p)
{
    if (dashboards_input_ids(req, p) != 0)
        return -1;
    const char *params[2] = {req->captures[0], etag_if_match(req)};
    return write_run_no_content(res, p, &stmt_delete, params);
}

/* Adds a field error for each UUID-shaped key of positions that names no
 * widget of the dashboard, so that one 422 lists every bad entry. */
static int layout_unknown_ids(request_t *req, const json_t *positions, problem_t *p)
{
    json_t *keys = json_array();
    const char *widget_id;
    json_t *position;

    json_object_foreach ((json_t *)positions, widget_id, position) {
        if (validate_uuid(widget_id))
            json_array_append_new(keys, json_string(widget_id));
    }
    const char *params[2] = {req->captures[0], json_out_text(req->arena, keys)};
    json_decref(keys);
    PGresult *rows = db_exec(&stmt_layout_unknown, params, p);
    if (rows == NULL)
        return -1;
    for (int row = 0; row < PQntuples(rows); row++)
        problem_field(p, validate_path(req->arena, "positions", db_get(rows, row, "k")),
                      "is not a widget of this dashboard");
    PQclear(rows);
    return 0;
}

static int dashboards_layout(request_t *req, response_t *res, problem_t *p)
{
    json_t *body = NULL;
    int rc = -1;

    if (dashboards_input_ids(req, p) != 0)
        return -1;
    body = request_json_body(req, REQUEST_BODY_LIMIT, p);
    if (body == NULL || validate_object(body, layout_rules, "", p) != 0)
        goto done;
    const char *widget_id;
    json_t *position;
    json_t *positions = json_object_get(body, "positions");
    json_object_foreach (positions, widget_id, position) {
        const char *prefix = validate_path(req->arena, "positions", widget_id);
        if (!validate_uuid(widget_id))
            problem_field(p, prefix, "is not a widget id (a UUID)");
        else
            dashboards_input_position(position, prefix, p);
    }
    if (p->status != 0) {
        layout_unknown_ids(req, positions, p);
        goto done;
    }
    const char *params[3] = {req->captures[0], etag_if_match(req),
                             json_out_text(req->arena, positions)};
    rc = write_run_versioned(req, res, p, &stmt_layout, params, 200, &dashboard_answer);
done:
    json_decref(body);
    return rc;
}

/* ---------------------------------------------------------------- routes */

const route_t dashboards_routes[] = {
    {.method = "GET", .pattern = DASHBOARDS_BASE, .handler = dashboards_list},
    {.method = "POST", .pattern = DASHBOARDS_BASE, .handler = dashboards_create},
    {.method = "GET", .pattern = DASHBOARDS_BASE "/default", .handler = dashboards_default},
    {.method = "GET", .pattern = DASHBOARDS_BASE "/{id}", .handler = dashboards_get},
    {.method = "PUT", .pattern = DASHBOARDS_BASE "/{id}", .handler = dashboards_replace},
    {.method = "PATCH", .pattern = DASHBOARDS_BASE "/{id}", .handler = dashboards_patch},
    {.method = "DELETE", .pattern = DASHBOARDS_BASE "/{id}", .handler = dashboards_delete},
    {.method = "PUT", .pattern = DASHBOARDS_BASE "/{id}/layout", .handler = dashboards_layout},
    {.method = "POST", .pattern = DASHBOARDS_BASE "/{id}/widgets", .handler = widgets_create},
    {.method = "GET",
     .pattern = DASHBOARDS_BASE "/{id}/widgets/{widget_id}",
     .handler = widgets_get},
    {.method = "PUT",
     .pattern = DASHBOARDS_BASE "/{id}/widgets/{widget_id}",
     .handler = widgets_update},
    {.method = "PATCH",
     .pattern = DASHBOARDS_BASE "/{id}/widgets/{widget_id}",
     .handler = widgets_update},
    {.method = "DELETE",
     .pattern = DASHBOARDS_BASE "/{id}/widgets/{widget_id}",
     .handler = widgets_delete},
    {.method = NULL},
};
