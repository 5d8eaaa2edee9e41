/* access.c - the dashboards group's API keys (create, list, read, delete) and the audit log
 * (GET /audit), both for admin keys only (SQL in sql/functions/29_access.sql) */
#include <string.h>

#include "groups.h"
#include "../fcgi/auth.h"
#include "../fcgi/cursor.h"
#include "../fcgi/db.h"
#include "../fcgi/query.h"
#include "../fcgi/rfc3339.h"
#include "../fcgi/validate.h"
#include "../fcgi/write.h"

#define KEYS_BASE  "/api/v1/api-keys"
#define AUDIT_PATH "/api/v1/audit"

static void check_key(const json_t *body, problem_t *p);

const char *const access_roles[] = {"viewer", "editor", "ingest", "admin", "metrics", NULL};

/* ---------------------------------------------------------------- input rules */

/* name, type, flags, min, max, allowed values */
static const field_rule_t key_fields[] = {
    {"name", FIELD_STRING, FIELD_REQUIRED, 1, 255, NULL},
    {"role", FIELD_STRING, FIELD_REQUIRED, 0, 0, access_roles},
    {"expires_at", FIELD_STRING, FIELD_NULLABLE, 1, 64, NULL},
    {NULL, 0, 0, 0, 0, NULL},
};

/* fields, uuids, extra */
static const body_rules_t key_input = {key_fields, NULL, check_key};

/* ---------------------------------------------------------------- statements */

static const db_statement_t stmt_key_list = {
    "access_keys_list",
    "SELECT k.created_at AS created_key, k.id AS id_key, row_to_json(v) AS body"
    "  FROM api_keys k JOIN api_key_rows v ON v.id = k.id"
    " WHERE ($1::timestamptz IS NULL OR (k.created_at, k.id) < ($1, $2::uuid))"
    " ORDER BY k.created_at DESC, k.id DESC"
    " LIMIT $3",
    3, true};
static const db_statement_t stmt_key_get = {
    "access_keys_get", "SELECT row_to_json(r) AS body FROM api_key_rows r WHERE r.id = $1", 1,
    true};
/* $1 name, $2 role, $3 expires_at, $4 the hash, $5 the prefix shown, $6
 * the key that created it */
static const db_statement_t stmt_key_create = {
    "access_keys_create", "SELECT id, body FROM api_key_create($1, $2, $3, $4::bytea, $5, $6)", 6,
    false};
static const db_statement_t stmt_key_delete = {"access_keys_delete",
                                               "SELECT api_key_delete($1) AS id", 1, true};

/* Newest first: $1 key_id, $2 path prefix, $3 resource_id, $4 from, $5
 * to (NULL = any), the keyset $6 at, $7 id, $8 the limit + 1. */
static const db_statement_t stmt_audit_list = {
    "access_audit_list",
    "SELECT a.at AS at_key, a.id AS id_key, row_to_json(v) AS body"
    "  FROM audit_log a JOIN audit_rows v ON v.id = a.id"
    " WHERE ($1::uuid IS NULL OR a.key_id = $1)"
    "   AND ($2::text IS NULL OR left(a.path, length($2)) = $2)"
    "   AND ($3::text IS NULL OR a.resource_id = $3)"
    "   AND ($4::timestamptz IS NULL OR a.at >= $4)"
    "   AND ($5::timestamptz IS NULL OR a.at < $5)"
    "   AND ($6::timestamptz IS NULL OR (a.at, a.id) < ($6, $7::uuid))"
    " ORDER BY a.at DESC, a.id DESC"
    " LIMIT $8",
    8, true};

static const char *const key_nouns[] = {"API key"};

/* stmt, nouns, body, status, location */
static const write_route_t read_key = {&stmt_key_get, key_nouns, NULL, 200, NULL};

/* ---------------------------------------------------------------- handlers */

static void check_key(const json_t *body, problem_t *p)
{
    const char *expires = field_string(body, "expires_at");
    int64_t micros;

    if (expires == NULL)
        return;
    if (rfc3339_parse(expires, &micros) != 0)
        problem_field(p, "expires_at", "must be an RFC 3339 time, e.g. 2027-01-01T00:00:00Z");
    else if (micros <= rfc3339_now())
        problem_field(p, "expires_at", "must be in the future");
}

/* POST /api-keys {name, role, expires_at?}: 201 ApiKey with its secret
 * (`key`), which is answered this once and never stored. Not idempotent on
 * purpose: a replay would have to keep the secret. */
static int keys_create(request_t *req, response_t *res, problem_t *p)
{
    char key[AUTH_KEY_LEN + 1], hash[67], prefix[AUTH_KEY_SHOWN + 1];
    json_error_t error;

    const char *text = write_body_text(req, &key_input, p);
    if (text == NULL)
        return -1;
    json_t *body = json_loads(text, 0, &error);
    if (body == NULL)
        return problem_fail(p, PROBLEM_INTERNAL, "The checked body could not be read again.");
    const char *expires = field_string(body, "expires_at");
    const char *params[6] = {
        field_string(body, "name"), field_string(body, "role"), expires, hash, prefix, req->key_id};
    if (auth_key_make(key) != 0) {
        json_decref(body);
        return problem_fail(p, PROBLEM_INTERNAL, "The system had no randomness for a key.");
    }
    auth_key_hash_text(key, AUTH_KEY_LEN, hash);
    memcpy(prefix, key, AUTH_KEY_SHOWN);
    prefix[AUTH_KEY_SHOWN] = '\0';
    PGresult *rows = db_exec(&stmt_key_create, params, p);
    json_decref(body);
    if (rows == NULL)
        return -1;
    json_t *answer = json_loads(db_get(rows, 0, "body"), 0, &error);
    res->location = arena_printf(req->arena, KEYS_BASE "/%s", db_get(rows, 0, "id"));
    PQclear(rows);
    if (answer == NULL)
        return problem_fail(p, PROBLEM_INTERNAL, "The key's row could not be read.");
    json_object_set_new(answer, "key", json_string(key));
    response_json(res, 201, answer);
    return 0;
}

/* GET /api-keys ?limit=&cursor=: {items: [ApiKey], next_cursor}, newest
 * first, without secrets. */
static int keys_list(request_t *req, response_t *res, problem_t *p)
{
    return cursor_answer_newest(req, res, p, &stmt_key_list);
}

/* DELETE /api-keys/{id}: 204; every worker refuses the key within a
 * second (auth.c's cache). 404 when unknown. */
static int keys_delete(request_t *req, response_t *res, problem_t *p)
{
    if (write_captured_ids(req, key_nouns, p) != 0)
        return -1;
    return write_run_no_content(res, p, &stmt_key_delete, (const char *const *)req->captures);
}

/* GET /audit ?key_id=&path=&resource_id=&from=&to=&limit=&cursor=:
 * {items: [AuditRecord], next_cursor}, newest first. path is a prefix of
 * the paths written ("/api/v1/dashboards"). */
static int audit_list(request_t *req, response_t *res, problem_t *p)
{
    static const char *const filters[] = {"key_id", "path", "resource_id", "from", "to", NULL};
    static const char *const keys[] = {"at_key", "id_key", NULL};
    const char *params[8];
    cursor_page_t page;
    int64_t from = 0, to = 0;

    if (cursor_page_params(req, filters, 2, &page, p) != 0)
        return -1;
    params[0] = query_uuid(req, "key_id", p);
    params[1] = request_query(req, "path");
    params[2] = request_query(req, "resource_id");
    params[3] = query_time(req, "from", &from, p);
    params[4] = query_time(req, "to", &to, p);
    if (params[1] != NULL && params[1][0] != '/') {
        problem_fail(p, PROBLEM_MALFORMED, "The query parameter path is invalid.");
        problem_field(p, "path", "must be a path prefix, e.g. /api/v1/dashboards");
    }
    if (p->status == 0 && params[3] != NULL && params[4] != NULL && from >= to) {
        problem_fail(p, PROBLEM_MALFORMED, "The query parameter from is invalid.");
        problem_field(p, "from", "must be before to");
    }
    if (p->status != 0 || cursor_time_keyset(req, &page, p) != 0)
        return -1;
    params[5] = page.key[0];
    params[6] = page.key[1];
    return cursor_answer_page(req, res, p, &stmt_audit_list, params, page.limit, keys);
}

/* ---------------------------------------------------------------- routes */

/* Every route here is for admin keys alone. */
/* clang-format off */
const route_t access_routes[] = {
    {.method = "GET", .pattern = KEYS_BASE, .handler = keys_list, .roles = ROLES_ADMIN},
    {.method = "POST", .pattern = KEYS_BASE, .handler = keys_create, .roles = ROLES_ADMIN},
    {.method = "GET", .pattern = KEYS_BASE "/{id}", .handler = write_serve, .arg = &read_key,
     .roles = ROLES_ADMIN},
    {.method = "DELETE", .pattern = KEYS_BASE "/{id}", .handler = keys_delete,
     .roles = ROLES_ADMIN},
    {.method = "GET", .pattern = AUDIT_PATH, .handler = audit_list, .roles = ROLES_ADMIN},
    {.method = NULL},
};
/* clang-format on */
