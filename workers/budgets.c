/* budgets.c - the alerts group's budgets: list, create, read, replace, patch, delete (with
 * ETag / If-Match) and status (SQL in sql/functions/24_budgets.sql) */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "groups.h"
#include "../fcgi/cursor.h"
#include "../fcgi/db.h"
#include "../fcgi/etag.h"
#include "../fcgi/query.h"
#include "../fcgi/rfc3339.h"
#include "../fcgi/validate.h"
#include "../fcgi/write.h"

#define BUDGETS_BASE   "/api/v1/budgets"
#define THRESHOLDS_MAX 20
#define RECEIVERS_MAX  20
#define METADATA_MAX   20
#define AMOUNT_MAX     99999999.0 /* numeric(14,6) */

/* ---------------------------------------------------------------- words */

static const char *const budget_periods[] = {"day", "week", "month", NULL};

/* ---------------------------------------------------------------- input rules */

static void check_budget(const json_t *body, problem_t *p);

/* The members of a budget; REQ is FIELD_REQUIRED for POST and PUT, 0 for
 * PATCH. name, type, flags, min, max, allowed values */
/* clang-format off */
#define BUDGET_FIELDS(REQ) \
    {"name", FIELD_STRING, REQ, 1, 255, NULL}, \
    {"amount_usd", FIELD_NUMBER, REQ, 0, 0, NULL}, \
    {"period", FIELD_STRING, REQ, 0, 0, budget_periods}, \
    {"tz", FIELD_STRING, 0, 0, 0, NULL}, \
    {"scope", FIELD_OBJECT, FIELD_NULLABLE, 0, 0, NULL}, \
    {"thresholds", FIELD_ARRAY, 0, 1, THRESHOLDS_MAX, NULL}, \
    {"receivers", FIELD_ARRAY, 0, 0, RECEIVERS_MAX, NULL}, \
    {"enabled", FIELD_BOOLEAN, 0, 0, 0, NULL}, \
    {NULL, 0, 0, 0, 0, NULL}
/* clang-format on */

static const field_rule_t budget_fields[] = {BUDGET_FIELDS(FIELD_REQUIRED)};
static const field_rule_t budget_patch_fields[] = {BUDGET_FIELDS(0)};

/* name, type, flags, min, max, allowed values */
static const field_rule_t scope_fields[] = {
    {"agent_id", FIELD_STRING, FIELD_NULLABLE, 0, 0, NULL},
    {"model", FIELD_STRING, FIELD_NULLABLE, 1, 200, NULL},
    {"metadata", FIELD_OBJECT, FIELD_NULLABLE, 0, 0, NULL},
    {NULL, 0, 0, 0, 0, NULL},
};

/* fields, uuids, extra */
static const body_rules_t budget_input = {budget_fields, NULL, check_budget};
static const body_rules_t budget_patch_input = {budget_patch_fields, NULL, check_budget};

/* ---------------------------------------------------------------- statements */

/* Each write and read answers (body, id, version), or no row. */
static const db_statement_t stmt_list = {
    "budgets_list",
    "SELECT b.created_at AS created_key, b.id AS id_key, row_to_json(r) AS body"
    "  FROM budgets b JOIN budget_rows r ON r.id = b.id"
    " WHERE ($1::timestamptz IS NULL OR (b.created_at, b.id) < ($1, $2::uuid))"
    " ORDER BY b.created_at DESC, b.id DESC"
    " LIMIT $3",
    3, true};
static const db_statement_t stmt_get = {"budgets_get", "SELECT * FROM budget_read($1)", 1, true};
static const db_statement_t stmt_create = {"budgets_create", "SELECT * FROM budget_create($1)", 1,
                                           false};
static const db_statement_t stmt_update = {
    "budgets_update", "SELECT * FROM budget_update($1, $2, $3, $4::boolean)", 4, false};
static const db_statement_t stmt_delete = {"budgets_delete", "SELECT budget_delete($1, $2)", 2,
                                           false};
/* The status at $2 (NULL: now); no row when there is no such budget. */
static const db_statement_t stmt_status = {
    "budgets_status",
    "SELECT x.body FROM (SELECT budget_status($1, coalesce($2::timestamptz, now())) AS body) x"
    " WHERE x.body IS NOT NULL",
    2, true};

static const char *const budget_nouns[] = {"budget"};

/* noun, base, weak */
static const write_versioned_t budget_answer = {"budget", BUDGETS_BASE, false};

/* ---------------------------------------------------------------- input checks */

/* scope: {agent_id (UUID), model, metadata (a flat object of strings,
 * 1..METADATA_MAX members)}, all optional; null or {} is the whole fleet. */
static void check_scope(const json_t *scope, problem_t *p)
{
    const char *key;
    const json_t *value;

    if (!json_is_object(scope))
        return;
    validate_object(scope, scope_fields, "scope", p);
    const char *agent = field_string(scope, "agent_id");
    if (agent != NULL && !validate_uuid(agent))
        problem_field(p, "scope.agent_id", "must be a UUID");
    const json_t *metadata = json_object_get(scope, "metadata");
    if (!json_is_object(metadata))
        return;
    if (json_object_size(metadata) > METADATA_MAX)
        problem_field(p, "scope.metadata", "must have at most %d members", METADATA_MAX);
    json_object_foreach ((json_t *)metadata, key, value) {
        const char *field = validate_path(p->arena, "scope.metadata", key);
        size_t len = validate_utf8_length(key);
        if (len < 1 || len > 100)
            problem_field(p, field, "must be a key of 1 to 100 characters");
        else if (!json_is_string(value))
            problem_field(p, field, "must be a string (KEY=VALUE)");
        else if (validate_utf8_length(json_string_value(value)) > 1000)
            problem_field(p, field, "must be at most 1000 characters long");
    }
}

/* thresholds: whole percents 1..1000, ascending, each once. */
static void check_thresholds(const json_t *thresholds, problem_t *p)
{
    const json_t *item;
    json_int_t last = 0;
    bool ordered = true;
    size_t i;

    json_array_foreach (thresholds, i, item) {
        if (!json_is_integer(item) || json_integer_value(item) < 1 ||
            json_integer_value(item) > 1000) {
            problem_field(p, arena_printf(p->arena, "thresholds[%zu]", i),
                          "must be a whole percent from 1 to 1000");
            continue;
        }
        if (json_integer_value(item) <= last)
            ordered = false;
        last = json_integer_value(item);
    }
    if (!ordered)
        problem_field(p, "thresholds", "must be ascending, each percent once");
}

static void check_budget(const json_t *body, problem_t *p)
{
    const json_t *amount = json_object_get(body, "amount_usd");
    const json_t *item;
    size_t i;

    if (json_is_number(amount) &&
        !(json_number_value(amount) >= 0.000001 && json_number_value(amount) <= AMOUNT_MAX))
        problem_field(p, "amount_usd",
                      "must be a number above 0 (at least 0.000001) and at "
                      "most 99999999");
    const char *tz = field_string(body, "tz");
    if (tz != NULL && strcmp(tz, "UTC") != 0 && !tz_is_iana_shaped(tz))
        problem_field(p, "tz", "must be UTC or an IANA time zone name such as Europe/Berlin");
    check_scope(json_object_get(body, "scope"), p);
    check_thresholds(json_object_get(body, "thresholds"), p);
    json_array_foreach (json_object_get(body, "receivers"), i, item)
        if (!json_is_string(item) || !validate_uuid(json_string_value(item)))
            problem_field(p, arena_printf(p->arena, "receivers[%zu]", i), "must be a UUID");
}

/* ---------------------------------------------------------------- handlers */

/* GET /budgets ?limit=&cursor=: {items: [Budget], next_cursor}, newest first. */
static int budgets_list(request_t *req, response_t *res, problem_t *p)
{
    static const char *const filters[] = {NULL};
    static const char *const keys[] = {"created_key", "id_key", NULL};
    cursor_page_t page;

    if (cursor_page_params(req, filters, 2, &page, p) != 0 ||
        cursor_time_keyset(req, &page, p) != 0)
        return -1;
    const char *params[3] = {page.key[0], page.key[1], NULL};
    return cursor_answer_page(req, res, p, &stmt_list, params, page.limit, keys);
}

/* POST /budgets: 201 Budget, Location, ETag. */
static int budgets_create(request_t *req, response_t *res, problem_t *p)
{
    const char *body = write_body_text(req, &budget_input, p);

    if (body == NULL)
        return -1;
    const char *params[1] = {body};
    return write_run_versioned(req, res, p, &stmt_create, params, 201, &budget_answer);
}

/* GET /budgets/{id}: the Budget with its ETag, or 404. */
static int budgets_get(request_t *req, response_t *res, problem_t *p)
{
    if (write_captured_ids(req, budget_nouns, p) != 0)
        return -1;
    return write_run_versioned(req, res, p, &stmt_get, (const char *const *)req->captures, 200,
                               &budget_answer);
}

/* PUT (replace: absent members take their defaults) and PATCH (absent
 * members stay) of /budgets/{id}, If-Match the version: 200 Budget. */
static int budgets_update(request_t *req, response_t *res, problem_t *p)
{
    bool replace = strcmp(req->method, "PUT") == 0;

    if (write_captured_ids(req, budget_nouns, p) != 0)
        return -1;
    const char *body = write_body_text(req, replace ? &budget_input : &budget_patch_input, p);
    if (body == NULL)
        return -1;
    const char *params[4] = {req->captures[0], etag_if_match(req), body,
                             replace ? "true" : "false"};
    return write_run_versioned(req, res, p, &stmt_update, params, 200, &budget_answer);
}

/* DELETE /budgets/{id}, If-Match the version: 204; its open alerts resolve. */
static int budgets_delete(request_t *req, response_t *res, problem_t *p)
{
    if (write_captured_ids(req, budget_nouns, p) != 0)
        return -1;
    const char *params[2] = {req->captures[0], etag_if_match(req)};
    return write_run_no_content(res, p, &stmt_delete, params);
}

/* GET /budgets/{id}/status ?at= (RFC 3339, default now): BudgetStatus. */
static int budgets_status(request_t *req, response_t *res, problem_t *p)
{
    int64_t micros;

    if (write_captured_ids(req, budget_nouns, p) != 0)
        return -1;
    query_only(req, "at", p);
    const char *at = request_query(req, "at");
    if (at != NULL && rfc3339_parse(at, &micros) != 0) {
        problem_fail(p, PROBLEM_MALFORMED, "The query parameter at is invalid.");
        problem_field(p, "at", "must be an RFC 3339 time, e.g. 2026-12-01T10:00:00Z");
    }
    if (p->status != 0)
        return -1;
    const char *params[2] = {req->captures[0], at};
    return write_answer_row(req, res, p, &stmt_status, params, 200, NULL,
                            arena_printf(req->arena, "No budget %s.", req->captures[0]));
}

/* ---------------------------------------------------------------- routes */

const route_t budgets_routes[] = {
    {.method = "GET", .pattern = BUDGETS_BASE, .handler = budgets_list},
    {.method = "POST", .pattern = BUDGETS_BASE, .handler = budgets_create},
    {.method = "GET", .pattern = BUDGETS_BASE "/{id}", .handler = budgets_get},
    {.method = "PUT", .pattern = BUDGETS_BASE "/{id}", .handler = budgets_update},
    {.method = "PATCH", .pattern = BUDGETS_BASE "/{id}", .handler = budgets_update},
    {.method = "DELETE", .pattern = BUDGETS_BASE "/{id}", .handler = budgets_delete},
    {.method = "GET", .pattern = BUDGETS_BASE "/{id}/status", .handler = budgets_status},
    {.method = NULL},
};
