/* executions.c - the aggregates group's explorer: GET /executions (filters, sorts, keyset
 * pages, CSV and NDJSON exports streamed from a COPY) and GET /executions/{id} (SQL in
 * sql/functions/26_explorer.sql) */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "groups.h"
#include "../fcgi/cursor.h"
#include "../fcgi/db.h"
#include "../fcgi/json_out.h"
#include "../fcgi/rfc3339.h"
#include "../fcgi/validate.h"
#include "../fcgi/log.h"
#include "../fcgi/write.h"

#define EXECUTIONS_BASE  "/api/v1/executions"
#define METADATA_PREFIX  "metadata."
#define METADATA_KEY_MAX 255
#define LATENCY_MAX      86400000L
#define RANGE_MAX_MICROS (400LL * 86400 * 1000000)

/* ---------------------------------------------------------------- words */

static const char *const statuses[] = {"succeeded", "failed", "timeout", "cancelled", NULL};
static const char *const sorts[] = {"newest", "slowest", "costliest", NULL};
static const char *const formats[] = {"json", "csv", "ndjson", NULL};
static const char *const time_ranges[] = {"1h", "6h", "24h", "7d", "30d", NULL};
static const char *const known[] = {"time_range",
                                    "from",
                                    "to",
                                    "agent_id",
                                    "model",
                                    "status",
                                    "error_category",
                                    "min_latency_ms",
                                    "max_latency_ms",
                                    "min_cost_usd",
                                    "evaluated",
                                    "passed",
                                    "sort",
                                    "limit",
                                    "cursor",
                                    "format",
                                    NULL};
static const char *const repeatable[] = {"agent_id", "model", NULL};

/* ---------------------------------------------------------------- statements */

static const db_statement_t stmt_page = {
    "executions_page",
    "SELECT coalesce($1::jsonb ->> 'sort', 'newest') AS sort_name, sort_key, id_key, body"
    "  FROM executions_page($1::jsonb, $2)",
    2, true};
static const db_statement_t stmt_export = {
    "executions_export", "SELECT executions_export_sql($1::jsonb, $2, $3) AS sql", 3, true};
static const db_statement_t stmt_get = {"executions_get", "SELECT execution_read($1) AS body", 1,
                                        true};

static const char *const execution_nouns[] = {"execution"};
/* stmt, nouns, body, status, location */
static const write_route_t read_execution = {&stmt_get, execution_nouns, NULL, 200, NULL};

/* ---------------------------------------------------------------- checks */

static bool in_words(const char *value, const char *const *words)
{
    for (const char *const *w = words; *w != NULL; w++)
        if (strcmp(*w, value) == 0)
            return true;
    return false;
}

static const char *words_text(arena_t *arena, const char *const *words)
{
    const char *text = "";

    for (const char *const *w = words; *w != NULL; w++)
        text = arena_printf(arena, "%s%s%s", text, w == words ? "" : ", ", *w);
    return text;
}

/* The words a parameter that is one of a list may be; NULL for others. */
static const char *const *words_of(const char *name)
{
    static const struct {
        const char *name;
        const char *const *words;
    } lists[] = {
        {"status", statuses},
        {"sort", sorts},
        {"format", formats},
        {"time_range", time_ranges},
    };

    for (size_t i = 0; i < sizeof(lists) / sizeof(lists[0]); i++)
        if (strcmp(lists[i].name, name) == 0)
            return lists[i].words;
    return NULL;
}

/* The 400 naming name, with its reason. */
static void bad(problem_t *p, const char *name, const char *why)
{
    problem_fail(p, PROBLEM_MALFORMED, "The query has invalid parameters; see errors.");
    problem_field(p, name, "%s", why);
}

/* A whole number in [min, max], or -1 with the 400 (values here are >= 0). */
static long whole(problem_t *p, const char *name, const char *value, long min, long max)
{
    char *end;
    long n = strtol(value, &end, 10);

    if (*value == '\0' || *end != '\0' || n < min || n > max) {
        bad(p, name, arena_printf(p->arena, "must be a whole number from %ld to %ld", min, max));
        return -1;
    }
    return n;
}

/* A decimal number >= 0 (digits, at most one point): what numeric reads. */
static bool decimal(const char *value)
{
    size_t digits = strspn(value, "0123456789");

    if (value[digits] == '.')
        return digits + strspn(value + digits + 1, "0123456789") + 1 == strlen(value) &&
               strlen(value) > 1 && strlen(value) <= 30;
    return digits > 0 && value[digits] == '\0' && digits <= 30;
}

/* An RFC 3339 time as the same instant in UTC text, or NULL with the 400. */
static const char *utc_time(problem_t *p, const char *name, const char *value, int64_t *micros)
{
    char utc[32];

    if (rfc3339_parse(value, micros) != 0) {
        bad(p, name, "must be an RFC 3339 timestamp such as 2026-11-21T10:00:00Z");
        return NULL;
    }
    rfc3339_format(*micros, utc);
    return arena_strdup(p->arena, utc);
}

/* The query of a request as the jsonb of executions_sql (agg_query()'s
 * members and the explorer's), every bad parameter a 400 field. *format is
 * json, csv or ndjson; *limit what was asked (0 = not given). */
static json_t *executions_query(request_t *req, const char **format, long *limit, long limit_max,
                                problem_t *p)
{
    json_t *q = json_object(), *agents = json_array(), *models = json_array();
    json_t *meta = json_object();
    int64_t t_from = 0, t_to = 0;
    bool has_from = false, has_to = false;
    const char *sort = "newest";

    *format = "json";
    *limit = 0;
    for (size_t i = 0; i < req->nquery; i++) {
        const char *name = req->query[i].name, *value = req->query[i].value;
        bool repeated = false;
        for (size_t j = 0; j < i; j++)
            repeated = repeated || strcmp(req->query[j].name, name) == 0;
        if (strncmp(name, METADATA_PREFIX, strlen(METADATA_PREFIX)) == 0) {
            size_t len = validate_utf8_length(name + strlen(METADATA_PREFIX));
            if (len < 1 || len > METADATA_KEY_MAX)
                bad(p, name,
                    arena_printf(p->arena,
                                 "the key after \"metadata.\" must be 1 to %d characters long",
                                 METADATA_KEY_MAX));
            else if (repeated)
                bad(p, name, "must be given at most once");
            else
                json_object_set_new(meta, name + strlen(METADATA_PREFIX), json_string(value));
            continue;
        }
        if (!in_words(name, known)) {
            bad(p, name,
                arena_printf(p->arena, "is not a known parameter (%s, metadata.KEY)",
                             words_text(p->arena, known)));
            continue;
        }
        if (repeated && !in_words(name, repeatable)) {
            bad(p, name, "must be given at most once");
            continue;
        }
        if (strcmp(name, "agent_id") == 0) {
            if (!validate_uuid(value))
                bad(p, name, "must be a UUID");
            else
                json_array_append_new(agents, json_string(value));
        } else if (strcmp(name, "model") == 0) {
            size_t len = validate_utf8_length(value);
            if (len < 1 || len > 200)
                bad(p, name, "must be 1 to 200 characters long");
            else
                json_array_append_new(models, json_string(value));
        } else if (strcmp(name, "error_category") == 0) {
            size_t len = validate_utf8_length(value);
            if (len < 1 || len > 100)
                bad(p, name, "must be 1 to 100 characters long");
            else
                json_object_set_new(q, name, json_string(value));
        } else if (words_of(name) != NULL) {
            const char *const *words = words_of(name);
            if (!in_words(value, words))
                bad(p, name,
                    arena_printf(p->arena, "must be one of: %s", words_text(p->arena, words)));
            else if (strcmp(name, "format") == 0)
                *format = value;
            else {
                json_object_set_new(q, name, json_string(value));
                if (strcmp(name, "sort") == 0)
                    sort = value;
            }
        } else if (strcmp(name, "min_latency_ms") == 0 || strcmp(name, "max_latency_ms") == 0) {
            long n = whole(p, name, value, 0, LATENCY_MAX);
            if (n >= 0)
                json_object_set_new(q, name, json_string(value));
        } else if (strcmp(name, "min_cost_usd") == 0) {
            if (!decimal(value))
                bad(p, name, "must be a decimal number >= 0 such as 0.25");
            else
                json_object_set_new(q, name, json_string(value));
        } else if (strcmp(name, "evaluated") == 0 || strcmp(name, "passed") == 0) {
            if (strcmp(value, "true") != 0 && strcmp(value, "false") != 0)
                bad(p, name, "must be true or false");
            else
                json_object_set_new(q, name, json_string(value));
        } else if (strcmp(name, "from") == 0 || strcmp(name, "to") == 0) {
            const char *utc = utc_time(p, name, value, name[0] == 'f' ? &t_from : &t_to);
            if (utc != NULL) {
                json_object_set_new(q, name, json_string(utc));
                *(name[0] == 'f' ? &has_from : &has_to) = true;
            }
        }
        /* limit and cursor: below, once the format and sort are known */
    }
    const char *limit_text = request_query(req, "limit");
    if (request_query(req, "format") == NULL) {
        const char *accept = request_param(req, "HTTP_ACCEPT");
        if (accept != NULL && strstr(accept, "text/csv") != NULL)
            *format = "csv";
    }
    if (strcmp(*format, "json") != 0)
        limit_max = EXECUTIONS_EXPORT_MAX;
    if (limit_text != NULL)
        *limit = whole(p, "limit", limit_text, 1, limit_max);
    if (*limit > 0 && strcmp(*format, "json") != 0)
        json_object_set_new(q, "limit", json_integer(*limit));
    if (has_to && !has_from)
        bad(p, "from", "is required when to is given");
    if (request_query(req, "time_range") != NULL && (has_from || has_to))
        bad(p, "time_range", "cannot be combined with from and to");
    if (has_from && has_to && (t_from >= t_to || t_to - t_from > RANGE_MAX_MICROS)) {
        const char *why =
            t_from >= t_to ? "from must be before to" : "the range is longer than 400 days";
        bad(p, "from", why);
        bad(p, "to", why);
    }
    const char *cursor = request_query(req, "cursor");
    if (cursor != NULL) {
        const char *parts[3];
        int64_t micros;
        bool ok = cursor_decode(req->arena, cursor, parts, 3) == 0 && validate_uuid(parts[2]) &&
                  strcmp(parts[0], sort) == 0;
        if (ok && strcmp(sort, "newest") == 0)
            ok = rfc3339_parse(db_time(req->arena, parts[1]), &micros) == 0;
        else if (ok && strcmp(sort, "slowest") == 0)
            ok = strcmp(parts[1], "-1") == 0 ||
                 (parts[1][0] != '-' && decimal(parts[1]) && strchr(parts[1], '.') == NULL &&
                  strlen(parts[1]) <= 9);
        else if (ok)
            ok = decimal(parts[1]);
        if (!ok)
            bad(p, "cursor", "is not a cursor this server gave out for this sort");
        else {
            json_object_set_new(q, "after_key", json_string(parts[1]));
            json_object_set_new(q, "after_id", json_string(parts[2]));
        }
    }
    if (json_array_size(agents) > 0)
        json_object_set(q, "agent_id", agents);
    if (json_array_size(models) > 0)
        json_object_set(q, "model", models);
    if (json_object_size(meta) > 0)
        json_object_set(q, "metadata", meta);
    json_decref(agents);
    json_decref(models);
    json_decref(meta);
    if (p->status != 0) {
        json_decref(q);
        return NULL;
    }
    return q;
}

/* ---------------------------------------------------------------- export */

typedef struct export_state {
    request_t *req;
    const char *content_type;
    bool ndjson;
    bool started;
} export_state_t;

/* The headers, once, before the first row. */
static void export_start(export_state_t *x)
{
    FCGX_Stream *out = x->req->fcgx->out;

    FCGX_FPrintF(out, "Status: 200 OK\r\nContent-Type: %s\r\nCache-Control: no-cache\r\n",
                 x->content_type);
    if (!x->ndjson)
        FCGX_PutS("Content-Disposition: attachment; filename=\"executions.csv\"\r\n", out);
    FCGX_PutS("\r\n", out);
    x->started = true;
}

/* One COPY row to the client as it comes. CSV rows are RFC 4180 already
 * (PostgreSQL quotes what needs it); a text-format row of NDJSON is one
 * JSON text whose only escapes are doubled backslashes (JSON has no raw
 * control characters), undone here. */
static int export_row(void *ctx, const char *row, size_t len)
{
    export_state_t *x = ctx;
    FCGX_Stream *out = x->req->fcgx->out;

    if (!x->started)
        export_start(x);
    if (!x->ndjson) {
        /* PostgreSQL ends rows with \n; RFC 4180 wants CRLF */
        if (len > 0 && row[len - 1] == '\n')
            len--;
        FCGX_PutStr(row, (int)len, out);
        FCGX_PutStr("\r\n", 2, out);
    } else {
        size_t from = 0;
        for (size_t i = 0; i < len; i++) {
            if (row[i] == '\\' && i + 1 < len && row[i + 1] == '\\') {
                FCGX_PutStr(row + from, (int)(i + 1 - from), out);
                from = i + 2;
                i++;
            }
        }
        FCGX_PutStr(row + from, (int)(len - from), out);
    }
    return FCGX_GetError(out) != 0 ? -1 : 0;
}

static int executions_export(request_t *req, response_t *res, problem_t *p, const char *qtext,
                             const char *format)
{
    const char *params[3] = {qtext, arena_printf(req->arena, "%d", EXECUTIONS_EXPORT_MAX), format};
    export_state_t x = {req,
                        strcmp(format, "csv") == 0 ? "text/csv; charset=utf-8; header=present"
                                                   : "application/x-ndjson",
                        strcmp(format, "ndjson") == 0, false};
    long long before;

    PGresult *rows = db_exec(&stmt_export, params, p);
    if (rows == NULL)
        return -1;
    const char *sql = db_get_copy(req->arena, rows, 0, "sql");
    PQclear(rows);
    if (req->fcgx == NULL)
        return problem_fail(p, PROBLEM_INTERNAL, "No client to stream to.");
    long long n = db_copy_out(sql, export_row, &x, &before, p);
    if (n < 0 && !x.started)
        return -1;
    if (!x.started)
        export_start(&x); /* no row (NDJSON): an empty body */
    if (n < 0) {
        /* the status is sent: the client sees a body cut short, never a 200 of a part */
        log_error("export cut after %lld rows: %s", before, p->detail ? p->detail : "");
        problem_clear(p);
    }
    res->status = 200;
    res->sent = true;
    return 0;
}

/* ---------------------------------------------------------------- handlers */

/* GET /executions: {items: [Execution], next_cursor}, or the export
 * (format=csv|ndjson, Accept: text/csv). 400 naming each bad parameter. */
static int executions_list(request_t *req, response_t *res, problem_t *p)
{
    static const char *const keys[] = {"sort_name", "sort_key", "id_key", NULL};
    const char *format;
    long limit;

    json_t *q = executions_query(req, &format, &limit, CURSOR_PAGE_MAX, p);
    if (q == NULL)
        return -1;
    const char *qtext = json_out_text(req->arena, q);
    json_decref(q);
    if (strcmp(format, "json") != 0)
        return executions_export(req, res, p, qtext, format);
    if (limit == 0)
        limit = CURSOR_PAGE_DEFAULT;
    const char *params[2] = {qtext, arena_printf(req->arena, "%ld", limit + 1)};
    PGresult *rows = db_exec(&stmt_page, params, p);
    if (rows == NULL)
        return -1;
    size_t len;
    const char *text = cursor_page_json(req->arena, rows, limit, keys, &len);
    PQclear(rows);
    response_text(res, 200, text, strlen(text));
    return 0;
}

/* GET /executions/{id}   200 Execution; 404
 * GET /executions        200 a page, or the CSV / NDJSON export */
/* clang-format off */
const route_t executions_routes[] = {
    {.method = "GET", .pattern = EXECUTIONS_BASE, .handler = executions_list},
    {.method = "GET", .pattern = EXECUTIONS_BASE "/{id}", .handler = write_serve,
     .arg = &read_execution},
    {.method = NULL},
};
/* clang-format on */
