/* receivers.c - the alerts group's receivers (webhooks) and the notifications sent to them
 * (SQL in sql/functions/23_notifications.sql) */
#include <ctype.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "groups.h"
#include "../fcgi/cursor.h"
#include "../fcgi/db.h"
#include "../fcgi/query.h"
#include "../fcgi/validate.h"
#include "../fcgi/write.h"

#define RECEIVERS_BASE     "/api/v1/receivers"
#define NOTIFICATIONS_BASE "/api/v1/notifications"
#define URL_MAX            2000
#define HEADERS_MAX        20
#define HEADER_NAME_MAX    100
#define HEADER_VALUE_MAX   1000

/* ---------------------------------------------------------------- prototypes */

static void check_receiver(const json_t *body, problem_t *p);
static const char *receiver_location(arena_t *arena, const PGresult *rows);

/* ---------------------------------------------------------------- words */

const char *const notifications_statuses[] = {"pending", "sending", "delivered", "failed", NULL};

/* Headers the sender writes itself (workers/sender.c): a receiver's
 * headers may not replace them. */
static const char *const reserved_headers[] = {
    "content-type", "content-length",        "transfer-encoding", "host", "connection",
    "expect",       "x-fleetdash-signature", "idempotency-key",   NULL};

/* ---------------------------------------------------------------- input rules */

/* name, type, flags, min, max, allowed values */
static const field_rule_t receiver_fields[] = {
    {"name", FIELD_STRING, FIELD_REQUIRED, 1, 255, NULL},
    {"url", FIELD_STRING, FIELD_REQUIRED, 1, URL_MAX, NULL},
    {"secret", FIELD_STRING, FIELD_NULLABLE, 1, 1000, NULL},
    {"headers", FIELD_OBJECT, 0, 0, 0, NULL},
    {NULL, 0, 0, 0, 0, NULL},
};

static const field_rule_t receiver_patch_fields[] = {
    {"name", FIELD_STRING, 0, 1, 255, NULL},
    {"url", FIELD_STRING, 0, 1, URL_MAX, NULL},
    {"secret", FIELD_STRING, FIELD_NULLABLE, 1, 1000, NULL},
    {"headers", FIELD_OBJECT, 0, 0, 0, NULL},
    {NULL, 0, 0, 0, 0, NULL},
};

/* fields, uuids, extra */
static const body_rules_t receiver_input = {receiver_fields, NULL, check_receiver};
static const body_rules_t receiver_patch_input = {receiver_patch_fields, NULL, check_receiver};

/* ---------------------------------------------------------------- statements */

static const db_statement_t stmt_receiver_list = {
    "receivers_list",
    "SELECT r.created_at AS created_key, r.id AS id_key, row_to_json(v) AS body"
    "  FROM receivers r JOIN receiver_rows v ON v.id = r.id"
    " WHERE ($1::timestamptz IS NULL OR (r.created_at, r.id) < ($1, $2::uuid))"
    " ORDER BY r.created_at DESC, r.id DESC"
    " LIMIT $3",
    3, true};
static const db_statement_t stmt_receiver_get = {
    "receivers_get", "SELECT row_to_json(r) AS body FROM receiver_rows r WHERE r.id = $1", 1, true};
static const db_statement_t stmt_receiver_create = {
    "receivers_create", "SELECT body, id FROM receiver_create($1)", 1, false};
static const db_statement_t stmt_receiver_patch = {
    "receivers_patch", "SELECT receiver_patch($1, $2) AS body", 2, true};
static const db_statement_t stmt_receiver_delete = {"receivers_delete",
                                                    "SELECT receiver_delete($1) AS id", 1, true};

/* Notifications newest first: $1 alert_id, $2 status, $3 receiver_id (NULL
 * = any), the keyset $4 created_at, $5 id, $6 the limit + 1. */
static const db_statement_t stmt_notification_list = {
    "notifications_list",
    "SELECT n.created_at AS created_key, n.id AS id_key, row_to_json(v) AS body"
    "  FROM notifications n JOIN notification_rows v ON v.id = n.id"
    " WHERE ($1::uuid IS NULL OR n.alert_id = $1) AND ($2::text IS NULL OR n.status = $2)"
    "   AND ($3::uuid IS NULL OR n.receiver_id = $3)"
    "   AND ($4::timestamptz IS NULL OR (n.created_at, n.id) < ($4, $5::uuid))"
    " ORDER BY n.created_at DESC, n.id DESC"
    " LIMIT $6",
    6, true};
static const db_statement_t stmt_notification_get = {
    "notifications_get", "SELECT row_to_json(r) AS body FROM notification_rows r WHERE r.id = $1",
    1, true};

/* ---------------------------------------------------------------- reads and writes */

static const char *const receiver_nouns[] = {"receiver"};
static const char *const notification_nouns[] = {"notification"};

/* stmt, nouns, body, status, location */
/* clang-format off */
static const write_route_t read_receiver = {
    &stmt_receiver_get, receiver_nouns, NULL, 200, NULL};
static const write_route_t read_notification = {
    &stmt_notification_get, notification_nouns, NULL, 200, NULL};
static const write_route_t write_receiver_create = {
    &stmt_receiver_create, NULL, &receiver_input, 201, receiver_location};
static const write_route_t write_receiver_patch = {
    &stmt_receiver_patch, receiver_nouns, &receiver_patch_input, 200, NULL};
/* clang-format on */

/* ---------------------------------------------------------------- input checks */

/* True if url is an absolute http or https URL with a host, without
 * spaces or control characters. */
static bool receiver_url_valid(const char *url)
{
    size_t scheme;

    if (strncasecmp(url, "http://", 7) == 0)
        scheme = 7;
    else if (strncasecmp(url, "https://", 8) == 0)
        scheme = 8;
    else
        return false;
    for (const unsigned char *c = (const unsigned char *)url; *c != '\0'; c++)
        if (*c <= ' ' || *c == 0x7f)
            return false;
    const char *host = url + scheme;
    const char *at = strpbrk(host, "@/?#");
    if (at != NULL && *at == '@')
        host = at + 1;
    return *host != '\0' && strchr("/?#:", *host) == NULL;
}

/* True if name is an HTTP field name (RFC 9110 token). */
static bool header_name_valid(const char *name)
{
    if (*name == '\0')
        return false;
    for (const unsigned char *c = (const unsigned char *)name; *c != '\0'; c++)
        if (!isalnum(*c) && strchr("!#$%&'*+-.^_`|~", *c) == NULL)
            return false;
    return true;
}

/* True if value holds no control character but tabs (no CR or LF: one
 * header stays one header). */
static bool header_value_valid(const char *value)
{
    for (const unsigned char *c = (const unsigned char *)value; *c != '\0'; c++)
        if ((*c < ' ' && *c != '\t') || *c == 0x7f)
            return false;
    return true;
}

/* True if name is one of reserved_headers, in any case. */
static bool header_reserved(const char *name)
{
    for (const char *const *r = reserved_headers; *r != NULL; r++)
        if (strcasecmp(name, *r) == 0)
            return true;
    return false;
}

static void check_headers(const json_t *headers, problem_t *p)
{
    const char *name;
    const json_t *value;

    if (!json_is_object(headers))
        return;
    if (json_object_size(headers) > HEADERS_MAX)
        problem_field(p, "headers", "must have at most %d members", HEADERS_MAX);
    json_object_foreach ((json_t *)headers, name, value) {
        const char *field = validate_path(p->arena, "headers", name);
        if (!header_name_valid(name) || strlen(name) > HEADER_NAME_MAX)
            problem_field(p, field, "must be an HTTP header name of at most %d characters",
                          HEADER_NAME_MAX);
        else if (header_reserved(name))
            problem_field(p, field, "is set by fleetdash itself; it cannot be replaced");
        else if (!json_is_string(value))
            problem_field(p, field, "must be a string");
        else if (!header_value_valid(json_string_value(value)) ||
                 validate_utf8_length(json_string_value(value)) > HEADER_VALUE_MAX)
            problem_field(p, field,
                          "must be at most %d characters long, without control characters",
                          HEADER_VALUE_MAX);
    }
}

static void check_receiver(const json_t *body, problem_t *p)
{
    const char *url = field_string(body, "url");

    if (url != NULL && !receiver_url_valid(url))
        problem_field(p, "url",
                      "must be an absolute http or https URL, e.g. "
                      "https://hooks.example.com/alerts");
    check_headers(json_object_get(body, "headers"), p);
}

/* ---------------------------------------------------------------- locations */

static const char *receiver_location(arena_t *arena, const PGresult *rows)
{
    return arena_printf(arena, RECEIVERS_BASE "/%s", db_get(rows, 0, "id"));
}

/* ---------------------------------------------------------------- handlers */

/* GET /receivers ?limit=&cursor=: {items: [Receiver], next_cursor}, newest
 * first. */
static int receivers_list(request_t *req, response_t *res, problem_t *p)
{
    return cursor_answer_newest(req, res, p, &stmt_receiver_list);
}

/* DELETE /receivers/{id}: 204; its waiting notifications fail, the sent
 * ones stay. 404 when unknown. */
static int receivers_delete(request_t *req, response_t *res, problem_t *p)
{
    if (write_captured_ids(req, receiver_nouns, p) != 0)
        return -1;
    return write_run_no_content(res, p, &stmt_receiver_delete, (const char *const *)req->captures);
}

/* GET /notifications ?alert_id=&status=&receiver_id=&limit=&cursor=:
 * {items: [Notification], next_cursor}, newest first, each with its
 * attempts. 400 naming each bad parameter. */
static int notifications_list(request_t *req, response_t *res, problem_t *p)
{
    static const char *const filters[] = {"alert_id", "status", "receiver_id", NULL};
    static const char *const keys[] = {"created_key", "id_key", NULL};
    const char *params[6];
    cursor_page_t page;

    if (cursor_page_params(req, filters, 2, &page, p) != 0)
        return -1;
    params[0] = query_uuid(req, "alert_id", p);
    params[2] = query_uuid(req, "receiver_id", p);
    params[1] = query_one_of(req, "status", notifications_statuses, p);
    if (p->status != 0 || cursor_time_keyset(req, &page, p) != 0)
        return -1;
    params[3] = page.key[0];
    params[4] = page.key[1];
    return cursor_answer_page(req, res, p, &stmt_notification_list, params, page.limit, keys);
}

/* ---------------------------------------------------------------- routes */

/* GET /receivers/{id}       200 Receiver; 404
 * GET /notifications/{id}   200 Notification with its attempts; 404
 * POST /receivers           201 Receiver + Location; 409 on a taken name
 * PATCH /receivers/{id}     200 Receiver; 409 on a taken name
 * DELETE /receivers/{id}    204 */
/* clang-format off */
const route_t receivers_routes[] = {
    {.method = "GET", .pattern = RECEIVERS_BASE, .handler = receivers_list},
    {.method = "POST", .pattern = RECEIVERS_BASE, .handler = write_serve,
     .flags = ROUTE_IDEMPOTENT, .arg = &write_receiver_create},
    {.method = "GET", .pattern = RECEIVERS_BASE "/{id}", .handler = write_serve,
     .arg = &read_receiver},
    {.method = "PATCH", .pattern = RECEIVERS_BASE "/{id}", .handler = write_serve,
     .arg = &write_receiver_patch},
    {.method = "DELETE", .pattern = RECEIVERS_BASE "/{id}", .handler = receivers_delete},
    {.method = "GET", .pattern = NOTIFICATIONS_BASE, .handler = notifications_list},
    {.method = "GET", .pattern = NOTIFICATIONS_BASE "/{id}", .handler = write_serve,
     .arg = &read_notification},
    {.method = NULL},
};
/* clang-format on */
