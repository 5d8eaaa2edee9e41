/* dashboards.c - the dashboards group: dashboards, their widgets and layout */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "groups.h"
#include "../fcgi/cache.h"
#include "../fcgi/cursor.h"
#include "../fcgi/db.h"
#include "../fcgi/json_out.h"
#include "../fcgi/validate.h"

#define DASHBOARDS_BASE "/api/v1/dashboards"
#define OWNER_MAX       255 /* characters of an owner, in a body and in ?owner= */

/* ---------------------------------------------------------------- input rules */

static const char *const widget_types[] = {
    "metric_card", "line_chart", "bar_chart",  "pie_chart",    "table",
    "heatmap",     "gauge",      "alert_list", "status_board", NULL,
};

/* name, type, flags, min, max, allowed values */
static const field_rule_t position_rules[] = {
    {"x", FIELD_INTEGER, FIELD_REQUIRED, 0, 11, NULL},
    {"y", FIELD_INTEGER, FIELD_REQUIRED, 0, 100000, NULL},
    {"w", FIELD_INTEGER, FIELD_REQUIRED, 1, 12, NULL},
    {"h", FIELD_INTEGER, FIELD_REQUIRED, 1, 1000, NULL},
    {NULL, 0, 0, 0, 0, NULL},
};

static const field_rule_t widget_rules[] = {
    {"type", FIELD_STRING, FIELD_REQUIRED, 0, 0, widget_types},
    {"title", FIELD_STRING, FIELD_REQUIRED, 1, 255, NULL},
    {"config", FIELD_OBJECT, 0, 0, 0, NULL},
    {"position", FIELD_OBJECT, 0, 0, 0, NULL},
    {"refresh_interval_seconds", FIELD_INTEGER, 0, 10, 3600, NULL},
    {NULL, 0, 0, 0, 0, NULL},
};

static const field_rule_t widget_patch_rules[] = {
    {"type", FIELD_STRING, 0, 0, 0, widget_types},
    {"title", FIELD_STRING, 0, 1, 255, NULL},
    {"config", FIELD_OBJECT, 0, 0, 0, NULL},
    {"position", FIELD_OBJECT, 0, 0, 0, NULL},
    {"refresh_interval_seconds", FIELD_INTEGER, 0, 10, 3600, NULL},
    {NULL, 0, 0, 0, 0, NULL},
};

static const field_rule_t dashboard_rules[] = {
    {"name", FIELD_STRING, FIELD_REQUIRED, 1, 255, NULL},
    {"description", FIELD_STRING, FIELD_NULLABLE, 0, 10000, NULL},
    {"is_default", FIELD_BOOLEAN, 0, 0, 0, NULL},
    {"owner", FIELD_STRING, FIELD_NULLABLE, 1, OWNER_MAX, NULL},
    {"widgets", FIELD_ARRAY, 0, 0, 100, NULL},
    {NULL, 0, 0, 0, 0, NULL},
};

static const field_rule_t dashboard_patch_rules[] = {
    {"name", FIELD_STRING, 0, 1, 255, NULL},
    {"description", FIELD_STRING, FIELD_NULLABLE, 0, 10000, NULL},
    {"is_default", FIELD_BOOLEAN, 0, 0, 0, NULL},
    {"owner", FIELD_STRING, FIELD_NULLABLE, 1, OWNER_MAX, NULL},
    {NULL, 0, 0, 0, 0, NULL},
};

static const field_rule_t layout_rules[] = {
    {"positions", FIELD_OBJECT, FIELD_REQUIRED, 0, 0, NULL},
    {NULL, 0, 0, 0, 0, NULL},
};

/* The members of a widget's config that its data is made from
 * (sql/006_aggregates.sql), checked when present; any other member is the
 * client's own and stays free.
 * type: the widget type the member means this for; NULL = every type
 * rule: what the member must be (validate.h); the checks a rule cannot
 *       express are in check_config */
typedef struct config_rule {
    const char *type;
    field_rule_t rule;
} config_rule_t;

static const char *const config_series[] = {"executions", "success_rate", "latency", "cost", NULL};
static const char *const config_table_types[] = {"recent_activity", "agent_summary", NULL};

/* type, {name, type, flags, min, max, allowed values} */
static const config_rule_t config_rules[] = {
    {NULL, {"time_range", FIELD_STRING, 0, 0, 0, aggregates_time_ranges}},
    {NULL, {"agent_id", FIELD_STRING, 0, 0, 0, NULL}},
    {NULL, {"group_by", FIELD_STRING, 0, 0, 0, aggregates_group_bys}},
    {NULL, {"limit", FIELD_INTEGER, 0, 1, 100, NULL}},
    {NULL, {"metrics", FIELD_ARRAY, 0, 1, 4, NULL}},
    {NULL, {"thresholds", FIELD_OBJECT, 0, 0, 0, NULL}},
    {"metric_card", {"metric", FIELD_STRING, 0, 0, 0, aggregates_metric_names}},
    {"gauge", {"metric", FIELD_STRING, 0, 0, 0, aggregates_metric_names}},
    {"heatmap", {"metric", FIELD_STRING, 0, 0, 0, aggregates_heatmap_metrics}},
    {"table", {"type", FIELD_STRING, 0, 0, 0, config_table_types}},
    {NULL, {NULL, 0, 0, 0, 0, NULL}},
};

/* ---------------------------------------------------------------- statements */

static const db_statement_t stmt_list = {
    "dashboards_list",
    "SELECT d.id, d.name, d.description, d.is_default, d.owner, d.version,"
    "       d.created_at, d.updated_at,"
    "       (SELECT count(*) FROM dashboard_widgets w WHERE w.dashboard_id = d.id)"
    "  FROM dashboards d"
    " WHERE ($1::text IS NULL OR d.owner = $1)"
    "   AND ($2::boolean IS NULL OR ((NOT d.is_default), d.name, d.id) > ($2, $3::text, $4::uuid))"
    " ORDER BY (NOT d.is_default), d.name, d.id"
    " LIMIT $5",
    5, true};
static const db_statement_t stmt_version = {
    "dashboards_version", "SELECT version FROM dashboards WHERE id = $1", 1, true};
static const db_statement_t stmt_get = {"dashboards_get", "SELECT * FROM dashboard_read($1)", 1,
                                        true};
static const db_statement_t stmt_default = {"dashboards_default",
                                            "SELECT * FROM dashboard_default()", 0, false};
/* The data of every widget of dashboard $1, {"<widget id>": data, ...}
 * (sql/006_aggregates.sql): one round trip for any number of widgets. */
/* (token, data): data is NULL when $2 is the token of the answer this
 * worker holds - same data, same second (db_text_cached, agg_token()). */
static const db_statement_t stmt_data = {
    "dashboards_data",
    "SELECT x.t, CASE WHEN x.t = $2 THEN NULL ELSE dashboard_data($1::uuid)::text END "
    "FROM (SELECT agg_token() AS t) x",
    2, true};
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
static const db_statement_t stmt_widget_get = {"widgets_get", "SELECT * FROM widget_read($1, $2)",
                                               2, true};
static const db_statement_t stmt_widget_create = {
    "widgets_create", "SELECT * FROM widget_create($1, $2, $3)", 3, false};
static const db_statement_t stmt_widget_update = {
    "widgets_update", "SELECT * FROM widget_update($1, $2, $3, $4, $5)", 5, false};
static const db_statement_t stmt_widget_delete = {"widgets_delete",
                                                  "SELECT widget_delete($1, $2, $3)", 3, false};

/* Columns of dashboard_row (sql/002_dashboards.sql). The widget columns of
 * widget_row come in the same order, starting at column 0. */
enum {
    COL_ID,
    COL_NAME,
    COL_DESCRIPTION,
    COL_IS_DEFAULT,
    COL_OWNER,
    COL_VERSION,
    COL_CREATED,
    COL_UPDATED,
    COL_WIDGETS,
};
enum {
    WCOL_ID,
    WCOL_TYPE,
    WCOL_TITLE,
    WCOL_CONFIG,
    WCOL_X,
    WCOL_Y,
    WCOL_W,
    WCOL_H,
    WCOL_REFRESH,
    WCOL_CREATED,
    WCOL_UPDATED,
    WCOL_DASHBOARD_ID,
    WCOL_DASHBOARD_VERSION,
};

/* ---------------------------------------------------------------- JSON output */

/* A Widget from the widget columns that start at column first. */
static json_t *widget_json(arena_t *arena, const PGresult *res, int row, int first,
                           const char *dashboard_id)
{
    json_t *config = json_loads(PQgetvalue(res, row, first + WCOL_CONFIG), 0, NULL);

    /* clang-format off */
    return json_pack("{s:s, s:s, s:s, s:s, s:o, s:{s:i, s:i, s:i, s:i}, s:i, s:s, s:s}",
        "id", PQgetvalue(res, row, first + WCOL_ID),
        "dashboard_id", dashboard_id,
        "type", PQgetvalue(res, row, first + WCOL_TYPE),
        "title", PQgetvalue(res, row, first + WCOL_TITLE),
        "config", config ? config : json_object(),
        "position",
            "x", db_int(res, row, first + WCOL_X),
            "y", db_int(res, row, first + WCOL_Y),
            "w", db_int(res, row, first + WCOL_W),
            "h", db_int(res, row, first + WCOL_H),
        "refresh_interval_seconds", db_int(res, row, first + WCOL_REFRESH),
        "created_at", db_time(arena, PQgetvalue(res, row, first + WCOL_CREATED)),
        "updated_at", db_time(arena, PQgetvalue(res, row, first + WCOL_UPDATED)));
    /* clang-format on */
}

/* The dashboard columns of one row, without widgets. */
static json_t *dashboard_head_json(arena_t *arena, const PGresult *res, int row)
{
    /* clang-format off */
    return json_pack("{s:s, s:s, s:s?, s:b, s:s?, s:i, s:s, s:s}",
        "id", PQgetvalue(res, row, COL_ID),
        "name", PQgetvalue(res, row, COL_NAME),
        "description", db_value(res, row, COL_DESCRIPTION),
        "is_default", PQgetvalue(res, row, COL_IS_DEFAULT)[0] == 't',
        "owner", db_value(res, row, COL_OWNER),
        "version", db_int(res, row, COL_VERSION),
        "created_at", db_time(arena, PQgetvalue(res, row, COL_CREATED)),
        "updated_at", db_time(arena, PQgetvalue(res, row, COL_UPDATED)));
    /* clang-format on */
}

/* A Dashboard with its widgets from dashboard_row rows (at least one). */
static json_t *dashboard_json(arena_t *arena, const PGresult *res)
{
    json_t *dashboard = dashboard_head_json(arena, res, 0);
    json_t *widgets = json_array();
    const char *id = PQgetvalue(res, 0, COL_ID);

    for (int row = 0; row < PQntuples(res); row++)
        if (!PQgetisnull(res, row, COL_WIDGETS))
            json_array_append_new(widgets, widget_json(arena, res, row, COL_WIDGETS, id));
    json_object_set_new(dashboard, "widgets", widgets);
    return dashboard;
}

static const char *etag(arena_t *arena, const char *version)
{
    return arena_printf(arena, "\"%s\"", version);
}

/* Answers with the dashboard in res (status 200 or 201). */
static int answer_dashboard(request_t *req, response_t *res, problem_t *p, PGresult *rows,
                            int status)
{
    if (PQntuples(rows) == 0)
        return problem_set(p, 404, "No dashboard %s.", req->captures[0]);
    const char *id = PQgetvalue(rows, 0, COL_ID);
    res->etag = etag(req->arena, PQgetvalue(rows, 0, COL_VERSION));
    if (status == 201)
        res->location = arena_printf(req->arena, DASHBOARDS_BASE "/%s", id);
    response_json(res, status, dashboard_json(req->arena, rows));
    return 0;
}

static int answer_widget(request_t *req, response_t *res, PGresult *rows, int status)
{
    const char *dashboard_id = PQgetvalue(rows, 0, WCOL_DASHBOARD_ID);
    res->etag = etag(req->arena, PQgetvalue(rows, 0, WCOL_DASHBOARD_VERSION));
    if (status == 201)
        res->location = arena_printf(req->arena, DASHBOARDS_BASE "/%s/widgets/%s", dashboard_id,
                                     PQgetvalue(rows, 0, WCOL_ID));
    response_json(res, status, widget_json(req->arena, rows, 0, 0, dashboard_id));
    return 0;
}

/* ---------------------------------------------------------------- input helpers */

/* The {id} captures of the route, which must be UUIDs: anything else names
 * nothing that exists, so it is a 404. */
static int captured_ids(const request_t *req, problem_t *p)
{
    for (size_t i = 0; i < req->ncaptures; i++)
        if (!validate_uuid(req->captures[i]))
            return problem_set(p, 404, "No %s %s.", i == 0 ? "dashboard" : "widget",
                               req->captures[i]);
    return 0;
}

/* The version If-Match asks for, as a statement parameter: NULL without the
 * header or with "*", "0" (never matches) when it names no version. */
static const char *if_match_version(const request_t *req)
{
    const char *h = request_param(req, "HTTP_IF_MATCH");
    char *end;

    if (h == NULL)
        return NULL;
    while (*h == ' ')
        h++;
    if (strcmp(h, "*") == 0)
        return NULL;
    if (strncmp(h, "W/", 2) == 0)
        h += 2;
    if (*h != '"')
        return "0";
    long v = strtol(h + 1, &end, 10);
    if (end == h + 1 || *end != '"' || v < 1 || v > 2147483647L)
        return "0";
    return arena_printf(req->arena, "%ld", v);
}

/* True if If-None-Match names the given current version (or is "*"). */
static bool if_none_match(const request_t *req, const char *version)
{
    const char *h = request_param(req, "HTTP_IF_NONE_MATCH");
    char tag[32];

    if (h == NULL)
        return false;
    if (strstr(h, "*") != NULL)
        return true;
    snprintf(tag, sizeof(tag), "\"%s\"", version);
    for (const char *at = strstr(h, tag); at != NULL; at = strstr(at + 1, tag))
        if (at == h || at[-1] == ' ' || at[-1] == ',' || at[-1] == '/')
            return true;
    return false;
}

/* Checks one position object (all four members, inside the grid). */
static void check_position(const json_t *position, const char *prefix, problem_t *p)
{
    if (validate_object(position, position_rules, prefix, p) != 0)
        return;
    json_int_t x = json_integer_value(json_object_get(position, "x"));
    json_int_t w = json_integer_value(json_object_get(position, "w"));
    if (x + w > 12)
        problem_field(p, prefix, "x + w must be at most 12 (the grid has 12 columns)");
}

/* The words of list, "a, b, c", in the arena. */
static const char *join(arena_t *arena, const char *const *list)
{
    const char *text = "";

    for (const char *const *w = list; *w != NULL; w++)
        text = arena_printf(arena, "%s%s%s", text, w == list ? "" : ", ", *w);
    return text;
}

/* Checks the members of config that the data of a widget of the given
 * type is made from (config_rules), recording bad ones under prefix. A
 * NULL type (a patch that keeps the type) checks the members every type
 * shares. */
static void check_config(const json_t *config, const char *type, const char *prefix, problem_t *p)
{
    field_rule_t rules[sizeof(config_rules) / sizeof(config_rules[0])];
    json_t *known = json_object();
    size_t n = 0;

    for (const config_rule_t *c = config_rules; c->rule.name != NULL; c++) {
        if (c->type != NULL && (type == NULL || strcmp(c->type, type) != 0))
            continue;
        rules[n++] = c->rule;
        json_t *value = json_object_get(config, c->rule.name);
        if (value != NULL)
            json_object_set(known, c->rule.name, value);
    }
    rules[n] = (field_rule_t){NULL, 0, 0, 0, 0, NULL};
    validate_object(known, rules, prefix, p);
    json_decref(known);

    const char *agent = field_string(config, "agent_id");
    if (agent != NULL && !validate_uuid(agent))
        problem_field(p, validate_path(p->arena, prefix, "agent_id"), "must be a UUID");
    const json_t *metrics = json_object_get(config, "metrics");
    const json_t *item;
    size_t i;
    json_array_foreach (metrics, i, item) {
        const char *name = json_string_value(item);
        const char *const *m = config_series;
        while (name != NULL && *m != NULL && strcmp(*m, name) != 0)
            m++;
        if (name == NULL || *m == NULL)
            problem_field(p, arena_printf(p->arena, "%s.metrics[%zu]", prefix, i),
                          "must be one of: %s", join(p->arena, config_series));
    }
    const char *key;
    json_t *threshold;
    json_object_foreach ((json_t *)json_object_get(config, "thresholds"), key, threshold) {
        if (!json_is_number(threshold))
            problem_field(
                p, validate_path(p->arena, validate_path(p->arena, prefix, "thresholds"), key),
                "must be a number");
    }
}

/* Checks a WidgetInput (or a widget patch) under prefix. */
static void check_widget(const json_t *widget, const char *prefix, bool patch, problem_t *p)
{
    validate_object(widget, patch ? widget_patch_rules : widget_rules, prefix, p);
    const json_t *position = json_object_get(widget, "position");
    if (json_is_object(position))
        check_position(position, validate_path(p->arena, prefix, "position"), p);
    const json_t *config = json_object_get(widget, "config");
    if (json_is_object(config) && (!patch || json_object_get(widget, "type") != NULL))
        check_config(config, field_string(widget, "type"),
                     validate_path(p->arena, prefix, "config"), p);
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
        problem_set(p, 404, "No widget %s on dashboard %s.", req->captures[1], req->captures[0]);
    else
        check_config(config, PQgetvalue(rows, 0, WCOL_TYPE), "config", p);
    PQclear(rows);
    return p->status != 0 ? -1 : 0;
}

/* Checks a DashboardInput (or a patch); the widgets too. */
static int check_dashboard(const json_t *body, bool patch, problem_t *p)
{
    validate_object(body, patch ? dashboard_patch_rules : dashboard_rules, "", p);
    const json_t *widgets = json_object_get(body, "widgets");
    if (json_is_array(widgets)) {
        size_t i;
        const json_t *widget;
        json_array_foreach (widgets, i, widget) {
            char prefix[32];
            snprintf(prefix, sizeof(prefix), "widgets[%zu]", i);
            check_widget(widget, prefix, false, p);
        }
    }
    return p->status != 0 ? -1 : 0;
}

/* Runs a statement whose result is dashboard rows; answers with it. */
static int run_dashboard(request_t *req, response_t *res, problem_t *p, const db_statement_t *stmt,
                         const char *const *params, int status)
{
    PGresult *rows = db_exec(stmt, params, p);
    if (rows == NULL)
        return -1;
    int rc = answer_dashboard(req, res, p, rows, status);
    PQclear(rows);
    return rc;
}

static int run_widget(request_t *req, response_t *res, problem_t *p, const db_statement_t *stmt,
                      const char *const *params, int status)
{
    PGresult *rows = db_exec(stmt, params, p);
    if (rows == NULL)
        return -1;
    int rc = PQntuples(rows) == 0 ? problem_set(p, 404, "No widget %s on dashboard %s.",
                                                req->captures[1], req->captures[0])
                                  : answer_widget(req, res, rows, status);
    PQclear(rows);
    return rc;
}

/* ---------------------------------------------------------------- dashboards */

static int dashboards_list(request_t *req, response_t *res, problem_t *p)
{
    static const char *const filters[] = {"owner", NULL};
    cursor_page_t page;

    if (cursor_page_params(req, filters, 3, &page, p) != 0)
        return -1;
    if (page.key[0] != NULL && strcmp(page.key[0], "t") && strcmp(page.key[0], "f"))
        return cursor_refuse(p);
    const char *owner = request_query(req, "owner");
    if (owner != NULL && (owner[0] == '\0' || validate_utf8_length(owner) > OWNER_MAX)) {
        problem_field(p, "owner", "must be 1 to %d characters long", OWNER_MAX);
        return -1;
    }
    long limit = page.limit;
    const char *params[5] = {owner, page.key[0], page.key[1], page.key[2],
                             arena_printf(req->arena, "%ld", limit + 1)};
    PGresult *rows = db_exec(&stmt_list, params, p);
    if (rows == NULL)
        return -1;
    int n = PQntuples(rows);
    json_t *items = json_array();
    for (int row = 0; row < n && row < limit; row++) {
        json_t *item = dashboard_head_json(req->arena, rows, row);
        json_object_set_new(item, "widget_count", json_integer(atoll(PQgetvalue(rows, row, 8))));
        json_array_append_new(items, item);
    }
    json_t *next = json_null();
    if (n > limit) {
        int last = (int)limit - 1;
        const char *parts[3] = {PQgetvalue(rows, last, COL_IS_DEFAULT)[0] == 't' ? "f" : "t",
                                PQgetvalue(rows, last, COL_NAME), PQgetvalue(rows, last, COL_ID)};
        next = json_string(cursor_encode(req->arena, parts, 3));
    }
    PQclear(rows);
    response_json(res, 200, json_pack("{s:o, s:o}", "items", items, "next_cursor", next));
    return 0;
}

static int dashboards_create(request_t *req, response_t *res, problem_t *p)
{
    json_t *body = request_json_body(req, REQUEST_BODY_LIMIT, p);
    int rc = -1;

    if (body == NULL || check_dashboard(body, false, p) != 0)
        goto done;
    const char *params[5] = {
        field_string(body, "name"),
        field_string(body, "description"),
        json_is_true(json_object_get(body, "is_default")) ? "true" : "false",
        field_string(body, "owner"),
        field_json(req->arena, body, "widgets"),
    };
    rc = run_dashboard(req, res, p, &stmt_create, params, 201);
done:
    json_decref(body);
    return rc;
}

/* ?include_data=true|false (default false). Returns 1 or 0, or -1 with a
 * 400 naming the parameter. */
static int include_data(const request_t *req, problem_t *p)
{
    const char *value = request_query(req, "include_data");

    if (value == NULL || strcmp(value, "false") == 0)
        return 0;
    if (strcmp(value, "true") == 0)
        return 1;
    problem_set(p, 400, "The query parameter include_data is invalid.");
    problem_field(p, "include_data", "must be true or false");
    return -1;
}

/* Sets "data" on every widget of the dashboard in res->body from the text
 * of dashboard_data() (an object keyed by widget id); a widget it has no
 * member for gets null. Returns 0, or -1 with a 500 when the text is not
 * such an object. */
static int attach_data(response_t *res, const char *text, problem_t *p)
{
    json_t *by_widget = json_loads(text, 0, NULL);
    const json_t *widget;
    size_t i;

    if (by_widget == NULL) /* an integer beyond 64 bits: read every one as a real */
        by_widget = json_loads(text, JSON_DECODE_INT_AS_REAL, NULL);
    if (!json_is_object(by_widget)) {
        json_decref(by_widget);
        return problem_set(p, 500, "The server failed to answer this request.");
    }
    json_array_foreach (json_object_get(res->body, "widgets"), i, widget) {
        json_t *data = json_object_get(by_widget, field_string(widget, "id"));
        json_object_set((json_t *)widget, "data", data != NULL ? data : json_null());
    }
    json_decref(by_widget);
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

    if (rows == NULL || answer_dashboard(req, res, p, rows, 200) != 0)
        goto done;
    res->etag = arena_printf(req->arena, "W/%s", res->etag);
    const char *data_params[2] = {PQgetvalue(rows, 0, COL_ID), NULL};
    size_t len = 0;
    const char *data =
        db_text_cached(req->arena, &stmt_data, data_params,
                       arena_printf(req->arena, "dashboard_data\n%s", data_params[0]), &len, p);
    if (data != NULL)
        rc = attach_data(res, data, p);
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
    int rc = answer_dashboard(req, res, p, rows, 200);
    if (rc == 0 && if_none_match(req, PQgetvalue(rows, 0, COL_VERSION)))
        response_json(res, 304, NULL);
    PQclear(rows);
    return rc;
}

/* GET one dashboard. Its current version is read on every request; the
 * worker keeps the last answers per (id, version) and only reads and shapes
 * the whole dashboard when the version is not in its cache. Every write
 * bumps the version (the database enforces it), so a hit is always current.
 * With ?include_data=true, see answer_with_data. */
static int dashboards_get(request_t *req, response_t *res, problem_t *p)
{
    size_t len;
    int rc = -1;

    if (captured_ids(req, p) != 0)
        return -1;
    int with_data = include_data(req, p);
    if (with_data != 0)
        return with_data < 0 ? -1 : answer_with_data(req, res, p, &stmt_get, req->captures);
    PGresult *rows = db_exec(&stmt_version, req->captures, p);
    if (rows == NULL)
        return -1;
    if (PQntuples(rows) == 0) {
        rc = problem_set(p, 404, "No dashboard %s.", req->captures[0]);
        goto done;
    }
    const char *version = arena_strdup(req->arena, PQgetvalue(rows, 0, 0));
    PQclear(rows);
    rows = NULL;
    res->etag = etag(req->arena, version);
    if (if_none_match(req, version)) {
        response_json(res, 304, NULL);
        return 0;
    }
    const char *text = cache_get(req->arena, req->captures[0], version, &len);
    if (text != NULL) {
        response_text(res, 200, text, len);
        return 0;
    }
    rows = db_exec(&stmt_get, req->captures, p);
    if (rows == NULL || answer_dashboard(req, res, p, rows, 200) != 0)
        goto done;
    text = json_out(req->arena, res->body, &len);
    cache_put(req->captures[0], PQgetvalue(rows, 0, COL_VERSION), text, len);
    response_text(res, 200, text, len);
    rc = 0;
done:
    PQclear(rows);
    return rc;
}

static int dashboards_replace(request_t *req, response_t *res, problem_t *p)
{
    json_t *body = NULL;
    int rc = -1;

    if (captured_ids(req, p) != 0)
        return -1;
    body = request_json_body(req, REQUEST_BODY_LIMIT, p);
    if (body == NULL || check_dashboard(body, false, p) != 0)
        goto done;
    const char *params[7] = {
        req->captures[0],
        if_match_version(req),
        field_string(body, "name"),
        field_string(body, "description"),
        json_is_true(json_object_get(body, "is_default")) ? "true" : "false",
        field_string(body, "owner"),
        field_json(req->arena, body, "widgets"),
    };
    rc = run_dashboard(req, res, p, &stmt_replace, params, 200);
done:
    json_decref(body);
    return rc;
}

static int dashboards_patch(request_t *req, response_t *res, problem_t *p)
{
    json_t *body = NULL;
    int rc = -1;

    if (captured_ids(req, p) != 0)
        return -1;
    body = request_json_body(req, REQUEST_BODY_LIMIT, p);
    if (body == NULL || check_dashboard(body, true, p) != 0)
        goto done;
    const char *params[3] = {req->captures[0], if_match_version(req),
                             json_out_text(req->arena, body)};
    rc = run_dashboard(req, res, p, &stmt_patch, params, 200);
done:
    json_decref(body);
    return rc;
}

static int dashboards_delete(request_t *req, response_t *res, problem_t *p)
{
    if (captured_ids(req, p) != 0)
        return -1;
    const char *params[2] = {req->captures[0], if_match_version(req)};
    PGresult *rows = db_exec(&stmt_delete, params, p);
    if (rows == NULL)
        return -1;
    PQclear(rows);
    response_json(res, 204, NULL);
    return 0;
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
        problem_field(p, validate_path(req->arena, "positions", PQgetvalue(rows, row, 0)),
                      "is not a widget of this dashboard");
    PQclear(rows);
    return 0;
}

static int dashboards_layout(request_t *req, response_t *res, problem_t *p)
{
    json_t *body = NULL;
    int rc = -1;

    if (captured_ids(req, p) != 0)
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
            check_position(position, prefix, p);
    }
    if (p->status != 0) {
        layout_unknown_ids(req, positions, p);
        goto done;
    }
    const char *params[3] = {req->captures[0], if_match_version(req),
                             json_out_text(req->arena, positions)};
    rc = run_dashboard(req, res, p, &stmt_layout, params, 200);
done:
    json_decref(body);
    return rc;
}

/* ---------------------------------------------------------------- widgets */

static int widgets_create(request_t *req, response_t *res, problem_t *p)
{
    json_t *body = NULL;
    int rc = -1;

    if (captured_ids(req, p) != 0)
        return -1;
    body = request_json_body(req, REQUEST_BODY_LIMIT, p);
    if (body == NULL)
        goto done;
    check_widget(body, "", false, p);
    if (p->status != 0)
        goto done;
    const char *params[3] = {req->captures[0], if_match_version(req),
                             json_out_text(req->arena, body)};
    rc = run_widget(req, res, p, &stmt_widget_create, params, 201);
done:
    json_decref(body);
    return rc;
}

static int widgets_get(request_t *req, response_t *res, problem_t *p)
{
    if (captured_ids(req, p) != 0)
        return -1;
    return run_widget(req, res, p, &stmt_widget_get, req->captures, 200);
}

/* PUT and PATCH: the same statement, told which one it is. */
static int widgets_update(request_t *req, response_t *res, problem_t *p, bool replace)
{
    json_t *body = NULL;
    int rc = -1;

    if (captured_ids(req, p) != 0)
        return -1;
    body = request_json_body(req, REQUEST_BODY_LIMIT, p);
    if (body == NULL)
        goto done;
    check_widget(body, "", !replace, p);
    if (p->status != 0 || (!replace && check_patched_config(req, body, p) != 0))
        goto done;
    const char *params[5] = {req->captures[0], req->captures[1], if_match_version(req),
                             json_out_text(req->arena, body), replace ? "true" : "false"};
    rc = run_widget(req, res, p, &stmt_widget_update, params, 200);
done:
    json_decref(body);
    return rc;
}

static int widgets_replace(request_t *req, response_t *res, problem_t *p)
{
    return widgets_update(req, res, p, true);
}

static int widgets_patch(request_t *req, response_t *res, problem_t *p)
{
    return widgets_update(req, res, p, false);
}

static int widgets_delete(request_t *req, response_t *res, problem_t *p)
{
    if (captured_ids(req, p) != 0)
        return -1;
    const char *params[3] = {req->captures[0], req->captures[1], if_match_version(req)};
    PGresult *rows = db_exec(&stmt_widget_delete, params, p);
    if (rows == NULL)
        return -1;
    PQclear(rows);
    response_json(res, 204, NULL);
    return 0;
}

/* ---------------------------------------------------------------- routes */

const route_t dashboards_routes[] = {
    {"GET", DASHBOARDS_BASE, dashboards_list, 0},
    {"POST", DASHBOARDS_BASE, dashboards_create, 0},
    {"GET", DASHBOARDS_BASE "/default", dashboards_default, 0},
    {"GET", DASHBOARDS_BASE "/{id}", dashboards_get, 0},
    {"PUT", DASHBOARDS_BASE "/{id}", dashboards_replace, 0},
    {"PATCH", DASHBOARDS_BASE "/{id}", dashboards_patch, 0},
    {"DELETE", DASHBOARDS_BASE "/{id}", dashboards_delete, 0},
    {"PUT", DASHBOARDS_BASE "/{id}/layout", dashboards_layout, 0},
    {"POST", DASHBOARDS_BASE "/{id}/widgets", widgets_create, 0},
    {"GET", DASHBOARDS_BASE "/{id}/widgets/{widget_id}", widgets_get, 0},
    {"PUT", DASHBOARDS_BASE "/{id}/widgets/{widget_id}", widgets_replace, 0},
    {"PATCH", DASHBOARDS_BASE "/{id}/widgets/{widget_id}", widgets_patch, 0},
    {"DELETE", DASHBOARDS_BASE "/{id}/widgets/{widget_id}", widgets_delete, 0},
    HEALTH_ROUTES,
};
