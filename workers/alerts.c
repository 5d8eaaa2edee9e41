/* alerts.c - the alerts group's alerts and silences: lists, reads, raising by hand,
 * acknowledge, resolve (SQL in sql/functions/20_alerts.sql) */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "groups.h"
#include "../fcgi/cursor.h"
#include "../fcgi/db.h"
#include "../fcgi/json_out.h"
#include "../fcgi/query.h"
#include "../fcgi/rfc3339.h"
#include "../fcgi/validate.h"
#include "../fcgi/write.h"

#define ALERTS_BASE   "/api/v1/alerts"
#define SILENCES_BASE "/api/v1/silences"
#define MATCHERS_MAX  50
#define LABELS_MAX    50
#define RECEIVERS_MAX 20

/* ---------------------------------------------------------------- prototypes */

static void check_alert(const json_t *body, problem_t *p);
static void check_silence(const json_t *body, problem_t *p);
static const char *alert_location(arena_t *arena, const PGresult *rows);
static const char *silence_location(arena_t *arena, const PGresult *rows);

/* ---------------------------------------------------------------- words */

const char *const alerts_severities[] = {"critical", "high", "medium", "low", NULL};
const char *const alerts_statuses[] = {"firing", "acknowledged", "resolved", NULL};
static const char *const matcher_ops[] = {"=", "!=", NULL};

/* ---------------------------------------------------------------- input rules */

/* name, type, flags, min, max, allowed values */
static const field_rule_t alert_fields[] = {
    {"severity", FIELD_STRING, FIELD_REQUIRED, 0, 0, alerts_severities},
    {"title", FIELD_STRING, FIELD_REQUIRED, 1, 500, NULL},
    {"message", FIELD_STRING, FIELD_NULLABLE, 0, 10000, NULL},
    {"agent_id", FIELD_STRING, FIELD_NULLABLE, 0, 0, NULL},
    {"execution_id", FIELD_STRING, FIELD_NULLABLE, 0, 0, NULL},
    {"labels", FIELD_OBJECT, 0, 0, 0, NULL},
    {"receivers", FIELD_ARRAY, 0, 0, RECEIVERS_MAX, NULL},
    {"by", FIELD_STRING, 0, 1, 255, NULL},
    {NULL, 0, 0, 0, 0, NULL},
};

static const field_rule_t handle_fields[] = {
    {"by", FIELD_STRING, FIELD_REQUIRED, 1, 255, NULL},
    {"note", FIELD_STRING, FIELD_NULLABLE, 0, 10000, NULL},
    {NULL, 0, 0, 0, 0, NULL},
};

static const field_rule_t silence_fields[] = {
    {"matchers", FIELD_ARRAY, 0, 0, MATCHERS_MAX, NULL},
    {"alert_id", FIELD_STRING, FIELD_NULLABLE, 0, 0, NULL},
    {"starts_at", FIELD_STRING, FIELD_NULLABLE, 0, 0, NULL},
    {"ends_at", FIELD_STRING, FIELD_NULLABLE, 0, 0, NULL},
    {"created_by", FIELD_STRING, FIELD_REQUIRED, 1, 255, NULL},
    {"comment", FIELD_STRING, 0, 0, 10000, NULL},
    {NULL, 0, 0, 0, 0, NULL},
};

static const field_rule_t silence_patch_fields[] = {
    {"matchers", FIELD_ARRAY, 0, 0, MATCHERS_MAX, NULL},
    {"starts_at", FIELD_STRING, 0, 0, 0, NULL},
    {"ends_at", FIELD_STRING, FIELD_NULLABLE, 0, 0, NULL},
    {"comment", FIELD_STRING, 0, 0, 10000, NULL},
    {NULL, 0, 0, 0, 0, NULL},
};

static const field_rule_t matcher_fields[] = {
    {"name", FIELD_STRING, FIELD_REQUIRED, 1, 255, NULL},
    {"value", FIELD_STRING, FIELD_REQUIRED, 0, 1000, NULL},
    {"op", FIELD_STRING, 0, 0, 0, matcher_ops},
    {NULL, 0, 0, 0, 0, NULL},
};

static const char *const alert_uuids[] = {"agent_id", "execution_id", NULL};
static const char *const silence_uuids[] = {"alert_id", NULL};

/* fields, uuids, extra */
static const body_rules_t alert_input = {alert_fields, alert_uuids, check_alert};
static const body_rules_t handle_input = {handle_fields, NULL, NULL};
static const body_rules_t silence_input = {silence_fields, silence_uuids, check_silence};
static const body_rules_t silence_patch_input = {silence_patch_fields, NULL, check_silence};

/* ---------------------------------------------------------------- statements */

/* The filters of the list of alerts: $1 statuses, $2 severities (text
 * arrays), $3 agent_id, $4 rule_id, $5 silenced (NULL = either). */
#define ALERT_FILTERS                                                                              \
    " a.status = ANY ($1::text[]) AND a.severity = ANY ($2::text[])"                               \
    " AND ($3::uuid IS NULL OR a.agent_id = $3) AND ($4::uuid IS NULL OR a.rule_id = $4)"          \
    " AND ($5::boolean IS NULL OR (alert_silenced_by(a, now()) IS NOT NULL) = $5)"
#define ALERT_ORDER " ORDER BY severity_rank(a.severity), a.starts_at DESC, a.id DESC LIMIT $9"

/* The list of alerts, most severe then newest, filtered (ALERT_FILTERS),
 * after the keyset $6 rank, $7 starts_at, $8 id of the last row seen, $9
 * the limit + 1. Rank ascends while starts_at and id descend, which one
 * row comparison cannot say to an index: the rest of the last row's rank
 * and the ranks after it are two ranges of alerts_open_order_idx (or
 * alerts_order_idx), each read in order and cut at the limit. Only the
 * rows of the page are shaped (alert_rows). */
static const db_statement_t stmt_alert_list = {
    "alerts_list",
    "WITH page AS ("
    "  (SELECT a.id, a.starts_at, severity_rank(a.severity) AS rank FROM alerts a"
    "    WHERE" ALERT_FILTERS " AND severity_rank(a.severity) = $6::smallint"
    "      AND (a.starts_at, a.id) < ($7::timestamptz, $8::uuid)" ALERT_ORDER ")"
    "  UNION ALL"
    "  (SELECT a.id, a.starts_at, severity_rank(a.severity) AS rank FROM alerts a"
    "    WHERE" ALERT_FILTERS " AND ($6 IS NULL OR severity_rank(a.severity) > $6)" ALERT_ORDER "))"
    " SELECT p.rank, p.starts_at AS starts_key, p.id AS id_key, row_to_json(r) AS body"
    "   FROM (SELECT * FROM page ORDER BY rank, starts_at DESC, id DESC LIMIT $9) p"
    "   JOIN alert_rows r ON r.id = p.id"
    "  ORDER BY p.rank, p.starts_at DESC, p.id DESC",
    9, true};
/* GET /alerts/active: seed 000's view of the open alerts. */
static const db_statement_t stmt_alert_active = {
    "alerts_active",
    "SELECT json_build_object('alerts', coalesce(json_agg(json_build_object("
    "           'id', r.id, 'severity', r.severity, 'title', r.title, 'message', r.message,"
    "           'agent_id', r.agent_id, 'agent_name', r.agent_name, 'created_at', r.starts_at,"
    "           'acknowledged', r.status = 'acknowledged') ORDER BY r.rank, r.starts_key DESC,"
    "           r.id DESC), '[]')) AS body"
    "  FROM (SELECT a.id, a.status, a.severity, a.title, a.message, a.agent_id, g.name AS "
    "agent_name,"
    "               api_time(a.starts_at) AS starts_at, a.starts_at AS starts_key,"
    "               severity_rank(a.severity) AS rank"
    "          FROM alerts a LEFT JOIN agents g ON g.id = a.agent_id"
    "         WHERE a.status <> 'resolved'"
    "         ORDER BY severity_rank(a.severity), a.starts_at DESC, a.id DESC"
    "         LIMIT $1) r",
    1, true};
static const db_statement_t stmt_alert_get = {"alerts_get", "SELECT alert_read($1) AS body", 1,
                                              true};
static const db_statement_t stmt_alert_create = {
    "alerts_create", "SELECT body, id, created FROM alert_create($1)", 1, false};
static const db_statement_t stmt_alert_acknowledge = {
    "alerts_acknowledge", "SELECT alert_acknowledge($1, $2) AS body", 2, true};
static const db_statement_t stmt_alert_resolve = {"alerts_resolve",
                                                  "SELECT alert_resolve($1, $2) AS body", 2, false};

static const db_statement_t stmt_silence_list = {
    "silences_list",
    "SELECT s.created_at AS created_key, s.id AS id_key, row_to_json(r) AS body"
    "  FROM silences s JOIN silence_rows r ON r.id = s.id"
    " WHERE ($1::text IS NULL OR r.state = $1)"
    "   AND ($2::timestamptz IS NULL OR (s.created_at, s.id) < ($2, $3::uuid))"
    " ORDER BY s.created_at DESC, s.id DESC"
    " LIMIT $4",
    4, true};
static const db_statement_t stmt_silence_get = {
    "silences_get", "SELECT row_to_json(r) AS body FROM silence_rows r WHERE r.id = $1", 1, true};
static const db_statement_t stmt_silence_create = {
    "silences_create", "SELECT body, id FROM silence_create($1)", 1, false};
static const db_statement_t stmt_silence_patch = {"silences_patch",
                                                  "SELECT silence_patch($1, $2) AS body", 2, true};
static const db_statement_t stmt_silence_expire = {"silences_expire",
                                                   "SELECT silence_expire($1) AS body", 1, true};

/* ---------------------------------------------------------------- reads and writes */

static const char *const alert_nouns[] = {"alert"};
static const char *const silence_nouns[] = {"silence"};

/* stmt, nouns, body, status, location */
/* clang-format off */
static const write_route_t read_alert = {
    &stmt_alert_get, alert_nouns, NULL, 200, NULL};
static const write_route_t write_alert_create = {
    &stmt_alert_create, NULL, &alert_input, 0, alert_location};
static const write_route_t write_alert_acknowledge = {
    &stmt_alert_acknowledge, alert_nouns, &handle_input, 200, NULL};
static const write_route_t write_alert_resolve = {
    &stmt_alert_resolve, alert_nouns, &handle_input, 200, NULL};
static const write_route_t read_silence = {
    &stmt_silence_get, silence_nouns, NULL, 200, NULL};
static const write_route_t write_silence_create = {
    &stmt_silence_create, NULL, &silence_input, 201, silence_location};
static const write_route_t write_silence_patch = {
    &stmt_silence_patch, silence_nouns, &silence_patch_input, 200, NULL};
static const write_route_t write_silence_expire = {
    &stmt_silence_expire, silence_nouns, NULL, 200, NULL};
/* clang-format on */

/* ---------------------------------------------------------------- input checks */

/* labels: a flat object of strings, at most LABELS_MAX. */
static void check_labels(const json_t *labels, const char *field, problem_t *p)
{
    const char *key;
    const json_t *value;

    if (!json_is_object(labels))
        return;
    if (json_object_size(labels) > LABELS_MAX)
        problem_field(p, field, "must have at most %d members", LABELS_MAX);
    json_object_foreach ((json_t *)labels, key, value) {
        if (!json_is_string(value))
            problem_field(p, validate_path(p->arena, field, key), "must be a string");
        else if (validate_utf8_length(json_string_value(value)) > 1000)
            problem_field(p, validate_path(p->arena, field, key),
                          "must be at most 1000 characters long");
    }
}

static void check_alert(const json_t *body, problem_t *p)
{
    const json_t *receivers = json_object_get(body, "receivers");
    const json_t *item;
    size_t i;

    check_labels(json_object_get(body, "labels"), "labels", p);
    json_array_foreach (receivers, i, item)
        if (!json_is_string(item) || !validate_uuid(json_string_value(item)))
            problem_field(p, arena_printf(p->arena, "receivers[%zu]", i), "must be a UUID");
}

/* A time member, when present and not null, must be RFC 3339. */
static void check_time(const json_t *body, const char *field, problem_t *p)
{
    const char *text = field_string(body, field);
    int64_t micros;

    if (text != NULL && rfc3339_parse(text, &micros) != 0)
        problem_field(p, field, "must be an RFC 3339 time, e.g. 2026-12-01T10:00:00Z");
}

static void check_silence(const json_t *body, problem_t *p)
{
    const json_t *matchers = json_object_get(body, "matchers");
    const json_t *item;
    size_t i;

    json_array_foreach (matchers, i, item) {
        const char *prefix = arena_printf(p->arena, "matchers[%zu]", i);
        validate_object(item, matcher_fields, prefix, p);
    }
    check_time(body, "starts_at", p);
    check_time(body, "ends_at", p);
}

/* ---------------------------------------------------------------- locations */

static const char *alert_location(arena_t *arena, const PGresult *rows)
{
    return arena_printf(arena, ALERTS_BASE "/%s", db_get(rows, 0, "id"));
}

static const char *silence_location(arena_t *arena, const PGresult *rows)
{
    return arena_printf(arena, SILENCES_BASE "/%s", db_get(rows, 0, "id"));
}

/* ---------------------------------------------------------------- lists */

/* GET /alerts ?status=&severity= (repeatable) &agent_id=&rule_id=&silenced=
 * &limit=&cursor=: {items: [Alert], next_cursor}, most severe then newest.
 * Without status: firing and acknowledged. 400 naming each bad parameter. */
static int alerts_list(request_t *req, response_t *res, problem_t *p)
{
    static const char *const filters[] = {"status",  "severity", "agent_id",
                                          "rule_id", "silenced", NULL};
    static const char *const open[] = {"firing", "acknowledged", NULL};
    static const char *const keys[] = {"rank", "starts_key", "id_key", NULL};
    const char *params[9];
    cursor_page_t page;

    if (cursor_page_params(req, filters, 3, &page, p) != 0)
        return -1;
    params[0] = query_words(req, "status", alerts_statuses, open, p);
    params[1] = query_words(req, "severity", alerts_severities, alerts_severities, p);
    params[2] = query_uuid(req, "agent_id", p);
    params[3] = query_uuid(req, "rule_id", p);
    params[4] = query_boolean(req, "silenced", p);
    if (p->status != 0)
        return -1;
    if (page.key[0] != NULL) {
        int64_t micros;
        char *end;
        long rank = strtol(page.key[0], &end, 10);
        if (*end != '\0' || rank < 1 || rank > 4 || !validate_uuid(page.key[2]) ||
            page.key[1][0] == '\0' || rfc3339_parse(db_time(req->arena, page.key[1]), &micros))
            return cursor_refuse(p);
    }
    params[5] = page.key[0];
    params[6] = page.key[1];
    params[7] = page.key[2];
    return cursor_answer_page(req, res, p, &stmt_alert_list, params, page.limit, keys);
}

/* GET /alerts/active?limit=N (1..100, default 20): {alerts: [...]}, seed
 * 000's shape. */
static int alerts_active(request_t *req, response_t *res, problem_t *p)
{
    const char *limit = request_query(req, "limit");
    char *end = NULL;
    long n = limit != NULL ? strtol(limit, &end, 10) : 20;

    query_only(req, "limit", p);
    if (limit != NULL && (*limit == '\0' || *end != '\0' || n < 1 || n > 100)) {
        problem_fail(p, PROBLEM_MALFORMED, "The query parameter limit is invalid.");
        problem_field(p, "limit", "must be a whole number from 1 to 100");
    }
    if (p->status != 0)
        return -1;
    const char *params[1] = {arena_printf(req->arena, "%ld", n)};
    return write_answer_row(req, res, p, &stmt_alert_active, params, 200, NULL, NULL);
}

/* GET /silences ?state=&limit=&cursor=: {items: [Silence], next_cursor},
 * newest first. */
static int silences_list(request_t *req, response_t *res, problem_t *p)
{
    static const char *const filters[] = {"state", NULL};
    static const char *const states[] = {"pending", "active", "expired", NULL};
    static const char *const keys[] = {"created_key", "id_key", NULL};
    const char *params[4];
    cursor_page_t page;

    if (cursor_page_params(req, filters, 2, &page, p) != 0)
        return -1;
    params[0] = query_one_of(req, "state", states, p);
    if (p->status != 0 || cursor_time_keyset(req, &page, p) != 0)
        return -1;
    params[1] = page.key[0];
    params[2] = page.key[1];
    return cursor_answer_page(req, res, p, &stmt_silence_list, params, page.limit, keys);
}

/* ---------------------------------------------------------------- routes */

/* GET /alerts/{id}               200 Alert with its transitions; 404
 * GET /silences/{id}             200 Silence; 404
 * POST /alerts                   201 Alert + Location; 200 when an open
 *                                alert of the same title, agent and labels
 *                                exists (one more occurrence of it)
 * POST /alerts/{id}/acknowledge  200 Alert; again: 200, unchanged; 409
 *                                when resolved
 * POST /alerts/{id}/resolve      200 Alert; 409 when already resolved
 * POST /silences                 201 Silence + Location
 * PATCH /silences/{id}           200 Silence; 409 once expired
 * DELETE /silences/{id}          200 Silence, expired now (kept) */
/* clang-format off */
const route_t alerts_routes[] = {
    {.method = "GET", .pattern = ALERTS_BASE, .handler = alerts_list},
    {.method = "POST", .pattern = ALERTS_BASE, .handler = write_serve,
     .flags = ROUTE_IDEMPOTENT, .arg = &write_alert_create},
    {.method = "GET", .pattern = ALERTS_BASE "/active", .handler = alerts_active},
    {.method = "GET", .pattern = ALERTS_BASE "/{id}", .handler = write_serve,
     .arg = &read_alert},
    {.method = "POST", .pattern = ALERTS_BASE "/{id}/acknowledge", .handler = write_serve,
     .flags = ROUTE_IDEMPOTENT, .arg = &write_alert_acknowledge},
    {.method = "POST", .pattern = ALERTS_BASE "/{id}/resolve", .handler = write_serve,
     .flags = ROUTE_IDEMPOTENT, .arg = &write_alert_resolve},
    {.method = "GET", .pattern = SILENCES_BASE, .handler = silences_list},
    {.method = "POST", .pattern = SILENCES_BASE, .handler = write_serve,
     .flags = ROUTE_IDEMPOTENT, .arg = &write_silence_create},
    {.method = "GET", .pattern = SILENCES_BASE "/{id}", .handler = write_serve,
     .arg = &read_silence},
    {.method = "PATCH", .pattern = SILENCES_BASE "/{id}", .handler = write_serve,
     .arg = &write_silence_patch},
    {.method = "DELETE", .pattern = SILENCES_BASE "/{id}", .handler = write_serve,
     .arg = &write_silence_expire},
    {.method = NULL},
};
/* clang-format on */
