/* alert_rules.c - the alerts group's alert rules: list, read, create, replace, patch, delete,
 * with versions and If-Match (SQL in sql/functions/21_alert_rules.sql) */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "groups.h"
#include "../fcgi/cursor.h"
#include "../fcgi/db.h"
#include "../fcgi/etag.h"
#include "../fcgi/query.h"
#include "../fcgi/validate.h"
#include "../fcgi/write.h"

#define RULES_BASE          "/api/v1/alert-rules"
#define RULES_LABELS_MAX    50
#define RULES_METADATA_MAX  20
#define RULES_RECEIVERS_MAX 20
#define RULES_MIN_EXEC_MAX  1000000000

/* ---------------------------------------------------------------- prototypes */

static void check_rule(const json_t *body, problem_t *p);

/* ---------------------------------------------------------------- words */

const char *const alert_rules_kinds[] = {"threshold", "cost_spike", "agent_silent",
                                         "error_category", NULL};
static const char *const rule_ops[] = {">", "<", NULL};
static const char *const rule_group_bys[] = {"none", "agent", "model", NULL};
static const char *const rule_no_data[] = {"ok", "keep", "alert", NULL};

/* The durations of a rule and their bounds in seconds: name, min, max. */
typedef struct rule_duration {
    const char *name;
    long min;
    long max;
    const char *range; /* the bounds as the error says them */
} rule_duration_t;

static const rule_duration_t rule_durations[] = {
    {"window", 60, 7 * 86400, "from 1m to 7d"},
    {"for", 0, 86400, "from 0s to 1d"},
    {"keep_firing_for", 0, 7 * 86400, "from 0s to 7d"},
    {NULL, 0, 0, NULL},
};

/* ---------------------------------------------------------------- input rules */

/* The members of a rule; REQ is FIELD_REQUIRED for POST and PUT, 0 for
 * PATCH. name, type, flags, min, max, allowed values */
/* clang-format off */
#define RULE_FIELDS(REQ) \
    {"name", FIELD_STRING, REQ, 1, 255, NULL}, \
    {"kind", FIELD_STRING, REQ, 0, 0, alert_rules_kinds}, \
    {"metric", FIELD_STRING, FIELD_NULLABLE, 0, 0, aggregates_metric_names}, \
    {"op", FIELD_STRING, 0, 0, 0, rule_ops}, \
    {"threshold", FIELD_NUMBER, FIELD_NULLABLE, 0, 0, NULL}, \
    {"warning_threshold", FIELD_NUMBER, FIELD_NULLABLE, 0, 0, NULL}, \
    {"warning_severity", FIELD_STRING, FIELD_NULLABLE, 0, 0, alerts_severities}, \
    {"category", FIELD_STRING, FIELD_NULLABLE, 1, 100, NULL}, \
    {"window", FIELD_STRING, 0, 0, 0, NULL}, \
    {"for", FIELD_STRING, 0, 0, 0, NULL}, \
    {"keep_firing_for", FIELD_STRING, 0, 0, 0, NULL}, \
    {"agent_id", FIELD_STRING, FIELD_NULLABLE, 0, 0, NULL}, \
    {"model", FIELD_STRING, FIELD_NULLABLE, 1, 200, NULL}, \
    {"metadata", FIELD_OBJECT, FIELD_NULLABLE, 0, 0, NULL}, \
    {"group_by", FIELD_STRING, 0, 0, 0, rule_group_bys}, \
    {"severity", FIELD_STRING, 0, 0, 0, alerts_severities}, \
    {"min_executions", FIELD_INTEGER, 0, 0, RULES_MIN_EXEC_MAX, NULL}, \
    {"no_data", FIELD_STRING, 0, 0, 0, rule_no_data}, \
    {"labels", FIELD_OBJECT, 0, 0, 0, NULL}, \
    {"title", FIELD_STRING, FIELD_NULLABLE, 1, 500, NULL}, \
    {"enabled", FIELD_BOOLEAN, 0, 0, 0, NULL}, \
    {"receivers", FIELD_ARRAY, 0, 0, RULES_RECEIVERS_MAX, NULL}, \
    {NULL, 0, 0, 0, 0, NULL}
/* clang-format on */

static const field_rule_t rule_fields[] = {RULE_FIELDS(FIELD_REQUIRED)};
static const field_rule_t rule_patch_fields[] = {RULE_FIELDS(0)};

static const char *const rule_uuids[] = {"agent_id", NULL};

/* fields, uuids, extra */
static const body_rules_t rule_input = {rule_fields, rule_uuids, check_rule};
static const body_rules_t rule_patch_input = {rule_patch_fields, rule_uuids, check_rule};

/* ---------------------------------------------------------------- statements */

/* Rules by name: $1 kind, $2 enabled (NULL = any), the keyset $3 name, $4
 * id, $5 the limit + 1. */
static const db_statement_t stmt_rule_list = {
    "alert_rules_list",
    "SELECT r.name AS name_key, r.id AS id_key, row_to_json(r) AS body"
    "  FROM alert_rule_rows r"
    " WHERE ($1::text IS NULL OR r.kind = $1) AND ($2::boolean IS NULL OR r.enabled = $2)"
    "   AND ($3::text IS NULL OR (r.name, r.id) > ($3, $4::uuid))"
    " ORDER BY r.name, r.id"
    " LIMIT $5",
    5, true};
/* Each answers (id, version, body); a read of no rule answers NULLs. */
static const db_statement_t stmt_rule_get = {"alert_rules_get",
                                             "SELECT * FROM alert_rule_answer($1)", 1, true};
static const db_statement_t stmt_rule_create = {"alert_rules_create",
                                                "SELECT * FROM alert_rule_create($1)", 1, false};
static const db_statement_t stmt_rule_replace = {
    "alert_rules_replace", "SELECT * FROM alert_rule_replace($1, $2, $3)", 3, false};
static const db_statement_t stmt_rule_patch = {
    "alert_rules_patch", "SELECT * FROM alert_rule_patch($1, $2, $3)", 3, false};
static const db_statement_t stmt_rule_delete = {"alert_rules_delete",
                                                "SELECT alert_rule_delete($1, $2)", 2, false};

static const char *const rule_nouns[] = {"alert rule"};

/* noun, base, weak: the body holds the state of the rule's instances, which
 * changes while the version stays */
static const write_versioned_t rule_answer = {"alert rule", RULES_BASE, true};

/* ---------------------------------------------------------------- input checks */

/* A flat object of strings (labels, metadata), at most max members. */
static void check_strings(const json_t *object, const char *field, size_t max, problem_t *p)
{
    const char *key;
    const json_t *value;

    if (!json_is_object(object))
        return;
    if (json_object_size(object) > max)
        problem_field(p, field, "must have at most %zu members", max);
    json_object_foreach ((json_t *)object, key, value) {
        size_t len = validate_utf8_length(key);
        if (len < 1 || len > 100)
            problem_field(p, validate_path(p->arena, field, key),
                          "must be a key of 1 to 100 characters");
        else if (!json_is_string(value))
            problem_field(p, validate_path(p->arena, field, key), "must be a string");
        else if (validate_utf8_length(json_string_value(value)) > 1000)
            problem_field(p, validate_path(p->arena, field, key),
                          "must be at most 1000 characters long");
    }
}

/* A duration "30s", "5m", "1h", "1d" as seconds, or -1. */
static long duration_seconds(const char *text)
{
    char *end;
    size_t len = strlen(text);

    if (len < 2 || len > 8 || text[0] < '0' || text[0] > '9')
        return -1;
    long n = strtol(text, &end, 10);
    if (end != text + len - 1)
        return -1;
    switch (*end) {
    case 's': return n;
    case 'm': return n * 60;
    case 'h': return n * 3600;
    case 'd': return n * 86400;
    default: return -1;
    }
}

static void check_rule(const json_t *body, problem_t *p)
{
    const json_t *item;
    size_t i;

    for (const rule_duration_t *d = rule_durations; d->name != NULL; d++) {
        const char *text = field_string(body, d->name);
        if (text == NULL)
            continue;
        long seconds = duration_seconds(text);
        if (seconds < 0)
            problem_field(p, d->name, "must be a duration such as 30s, 5m, 1h or 1d");
        else if (seconds < d->min || seconds > d->max)
            problem_field(p, d->name, "must be %s", d->range);
    }
    check_strings(json_object_get(body, "labels"), "labels", RULES_LABELS_MAX, p);
    check_strings(json_object_get(body, "metadata"), "metadata", RULES_METADATA_MAX, p);
    json_array_foreach (json_object_get(body, "receivers"), i, item)
        if (!json_is_string(item) || !validate_uuid(json_string_value(item)))
            problem_field(p, arena_printf(p->arena, "receivers[%zu]", i), "must be a UUID");
}

/* ---------------------------------------------------------------- answers */

/* ---------------------------------------------------------------- handlers */

/* GET /alert-rules ?kind=&enabled=&limit=&cursor=: {items, next_cursor},
 * by name. 400 naming each bad parameter. */
static int rules_list(request_t *req, response_t *res, problem_t *p)
{
    static const char *const filters[] = {"kind", "enabled", NULL};
    static const char *const keys[] = {"name_key", "id_key", NULL};
    const char *params[5];
    cursor_page_t page;

    if (cursor_page_params(req, filters, 2, &page, p) != 0)
        return -1;
    params[0] = query_one_of(req, "kind", alert_rules_kinds, p);
    params[1] = query_boolean(req, "enabled", p);
    if (p->status != 0)
        return -1;
    if (page.key[0] != NULL && !validate_uuid(page.key[1]))
        return cursor_refuse(p);
    params[2] = page.key[0];
    params[3] = page.key[1];
    return cursor_answer_page(req, res, p, &stmt_rule_list, params, page.limit, keys);
}

/* GET /alert-rules/{id}: the rule with its instances, or 404. */
static int rules_get(request_t *req, response_t *res, problem_t *p)
{
    if (write_captured_ids(req, rule_nouns, p) != 0)
        return -1;
    return write_run_versioned(req, res, p, &stmt_rule_get, (const char *const *)req->captures, 200,
                               &rule_answer);
}

/* POST /alert-rules: 201 + Location + ETag; 409 for a name taken. */
static int rules_create(request_t *req, response_t *res, problem_t *p)
{
    const char *body = write_body_text(req, &rule_input, p);

    if (body == NULL)
        return -1;
    const char *params[1] = {body};
    return write_run_versioned(req, res, p, &stmt_rule_create, params, 201, &rule_answer);
}

/* PUT (every member, the others their defaults) or PATCH (the members
 * sent) /alert-rules/{id}, If-Match: 200, 404, 409, 412, 422. */
static int rules_update(request_t *req, response_t *res, problem_t *p)
{
    bool put = strcmp(req->method, "PUT") == 0;

    if (write_captured_ids(req, rule_nouns, p) != 0)
        return -1;
    const char *body = write_body_text(req, put ? &rule_input : &rule_patch_input, p);
    if (body == NULL)
        return -1;
    const char *params[3] = {req->captures[0], etag_if_match(req), body};
    return write_run_versioned(req, res, p, put ? &stmt_rule_replace : &stmt_rule_patch, params,
                               200, &rule_answer);
}

/* DELETE /alert-rules/{id}, If-Match: 204; its open alerts resolved. */
static int rules_delete(request_t *req, response_t *res, problem_t *p)
{
    if (write_captured_ids(req, rule_nouns, p) != 0)
        return -1;
    const char *params[2] = {req->captures[0], etag_if_match(req)};
    return write_run_no_content(res, p, &stmt_rule_delete, params);
}

/* ---------------------------------------------------------------- routes */

const route_t alert_rules_routes[] = {
    {.method = "GET", .pattern = RULES_BASE, .handler = rules_list},
    {.method = "POST", .pattern = RULES_BASE, .handler = rules_create},
    {.method = "GET", .pattern = RULES_BASE "/{id}", .handler = rules_get},
    {.method = "PUT", .pattern = RULES_BASE "/{id}", .handler = rules_update},
    {.method = "PATCH", .pattern = RULES_BASE "/{id}", .handler = rules_update},
    {.method = "DELETE", .pattern = RULES_BASE "/{id}", .handler = rules_delete},
    {.method = NULL},
};
