/* dashboards_input.c - what a dashboard, a widget, a position and a widget
 * config must be: the rules of the dashboards group, checked at the edge */
#include "dashboards.h"

#include <stdio.h>
#include <string.h>

#include "groups.h"
#include "../fcgi/validate.h"

/* ---------------------------------------------------------------- rules */

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
    {"owner", FIELD_STRING, FIELD_NULLABLE, 1, DASHBOARDS_OWNER_MAX, NULL},
    {"widgets", FIELD_ARRAY, 0, 0, 100, NULL},
    {NULL, 0, 0, 0, 0, NULL},
};

static const field_rule_t dashboard_patch_rules[] = {
    {"name", FIELD_STRING, 0, 1, 255, NULL},
    {"description", FIELD_STRING, FIELD_NULLABLE, 0, 10000, NULL},
    {"is_default", FIELD_BOOLEAN, 0, 0, 0, NULL},
    {"owner", FIELD_STRING, FIELD_NULLABLE, 1, DASHBOARDS_OWNER_MAX, NULL},
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

static const char *const config_series[] = {"executions", "success_rate", "pass_rate",
                                            "latency",    "cost",         NULL};
static const char *const config_table_types[] = {"recent_activity", "agent_summary", NULL};

/* type, {name, type, flags, min, max, allowed values} */
static const config_rule_t config_rules[] = {
    {NULL, {"time_range", FIELD_STRING, 0, 0, 0, aggregates_time_ranges}},
    {NULL, {"agent_id", FIELD_STRING, 0, 0, 0, NULL}},
    {NULL, {"group_by", FIELD_STRING, 0, 0, 0, aggregates_group_bys}},
    {NULL, {"limit", FIELD_INTEGER, 0, 1, 100, NULL}},
    {NULL, {"metrics", FIELD_ARRAY, 0, 1, 5, NULL}},
    {NULL, {"thresholds", FIELD_OBJECT, 0, 0, 0, NULL}},
    {"metric_card", {"metric", FIELD_STRING, 0, 0, 0, aggregates_metric_names}},
    {"gauge", {"metric", FIELD_STRING, 0, 0, 0, aggregates_metric_names}},
    {"heatmap", {"metric", FIELD_STRING, 0, 0, 0, aggregates_heatmap_metrics}},
    {"table", {"type", FIELD_STRING, 0, 0, 0, config_table_types}},
    {NULL, {NULL, 0, 0, 0, 0, NULL}},
};

/* ---------------------------------------------------------------- checks */

/* Checks one position object (all four members, inside the grid). */
void dashboards_input_position(const json_t *position, const char *prefix, problem_t *p)
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
void dashboards_input_config(const json_t *config, const char *type, const char *prefix,
                             problem_t *p)
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
void dashboards_input_widget(const json_t *widget, const char *prefix, bool patch, problem_t *p)
{
    validate_object(widget, patch ? widget_patch_rules : widget_rules, prefix, p);
    const json_t *position = json_object_get(widget, "position");
    if (json_is_object(position))
        dashboards_input_position(position, validate_path(p->arena, prefix, "position"), p);
    const json_t *config = json_object_get(widget, "config");
    if (json_is_object(config) && (!patch || json_object_get(widget, "type") != NULL))
        dashboards_input_config(config, field_string(widget, "type"),
                                validate_path(p->arena, prefix, "config"), p);
}

/* Checks a DashboardInput (or a patch); the widgets too. */
int dashboards_input_check(const json_t *body, bool patch, problem_t *p)
{
    validate_object(body, patch ? dashboard_patch_rules : dashboard_rules, "", p);
    const json_t *widgets = json_object_get(body, "widgets");
    if (json_is_array(widgets)) {
        size_t i;
        const json_t *widget;
        json_array_foreach (widgets, i, widget) {
            char prefix[32];
            snprintf(prefix, sizeof(prefix), "widgets[%zu]", i);
            dashboards_input_widget(widget, prefix, false, p);
        }
    }
    return p->status != 0 ? -1 : 0;
}

/* The {id} captures of the route, which must be UUIDs: anything else names
 * nothing that exists, so it is a 404. */
int dashboards_input_ids(const request_t *req, problem_t *p)
{
    for (size_t i = 0; i < req->ncaptures; i++)
        if (!validate_uuid(req->captures[i]))
            return problem_fail(p, PROBLEM_NOT_FOUND, "No %s %s.", i == 0 ? "dashboard" : "widget",
                                req->captures[i]);
    return 0;
}
