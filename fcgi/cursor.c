/* cursor.c - keyset pagination: opaque cursors and the paging parameters of a list */
#include "cursor.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "rfc3339.h"
#include "validate.h"

#define CURSOR_SEPARATOR '\x1f' /* ASCII unit separator: never in a key */

static const char base64url[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";

const char *cursor_encode(arena_t *arena, const char *const *parts, size_t nparts)
{
    size_t len = 0;

    for (size_t i = 0; i < nparts; i++)
        len += strlen(parts[i]) + 1;
    unsigned char *raw = arena_alloc(arena, len + 1);
    size_t n = 0;
    for (size_t i = 0; i < nparts; i++) {
        size_t plen = strlen(parts[i]);
        memcpy(raw + n, parts[i], plen);
        n += plen;
        if (i + 1 < nparts)
            raw[n++] = CURSOR_SEPARATOR;
    }
    char *out = arena_alloc(arena, (n + 2) / 3 * 4 + 1);
    size_t o = 0;
    for (size_t i = 0; i < n; i += 3) {
        unsigned v = (unsigned)raw[i] << 16;
        if (i + 1 < n)
            v |= (unsigned)raw[i + 1] << 8;
        if (i + 2 < n)
            v |= raw[i + 2];
        out[o++] = base64url[(v >> 18) & 63];
        out[o++] = base64url[(v >> 12) & 63];
        if (i + 1 < n)
            out[o++] = base64url[(v >> 6) & 63];
        if (i + 2 < n)
            out[o++] = base64url[v & 63];
    }
    out[o] = '\0';
    return out;
}

int cursor_decode(arena_t *arena, const char *token, const char **parts, size_t nparts)
{
    size_t len = strlen(token);
    char *raw = arena_alloc(arena, len + 1);
    size_t n = 0;
    unsigned v = 0;
    int bits = 0;

    if (len == 0 || len % 4 == 1)
        return -1;
    for (size_t i = 0; i < len; i++) {
        const char *at = memchr(base64url, token[i], 64);
        if (at == NULL || token[i] == '\0')
            return -1;
        v = (v << 6) | (unsigned)(at - base64url);
        bits += 6;
        if (bits >= 8) {
            bits -= 8;
            raw[n++] = (char)((v >> bits) & 0xff);
        }
    }
    raw[n] = '\0';
    if (memchr(raw, '\0', n) != NULL)
        return -1;
    for (size_t i = 0; i < nparts; i++) {
        char *sep = strchr(raw, CURSOR_SEPARATOR);
        if ((sep == NULL) != (i + 1 == nparts))
            return -1;
        if (sep != NULL)
            *sep = '\0';
        parts[i] = raw;
        raw = sep ? sep + 1 : raw + strlen(raw);
    }
    return 0;
}

int cursor_refuse(problem_t *p)
{
    problem_fail(p, PROBLEM_MALFORMED, "The query parameter cursor is invalid.");
    problem_field(p, "cursor", "is not a cursor this server gave out");
    return -1;
}

static bool cursor_is_known(const char *name, const char *const *filters)
{
    if (strcmp(name, "limit") == 0 || strcmp(name, "cursor") == 0)
        return true;
    for (const char *const *f = filters; *f != NULL; f++)
        if (strcmp(name, *f) == 0)
            return true;
    return false;
}

int cursor_page_params(request_t *req, const char *const *filters, size_t nkey, cursor_page_t *page,
                       problem_t *p)
{
    const char *limit = request_query(req, "limit");
    const char *cursor = request_query(req, "cursor");
    char known[256] = "limit, cursor";
    char *end;

    for (const char *const *f = filters; *f != NULL; f++)
        snprintf(known + strlen(known), sizeof(known) - strlen(known), ", %s", *f);
    for (size_t i = 0; i < req->nquery; i++) {
        if (!cursor_is_known(req->query[i].name, filters)) {
            problem_fail(p, PROBLEM_MALFORMED, "Unknown query parameter \"%s\".",
                         req->query[i].name);
            problem_field(p, req->query[i].name, "is not a known parameter (%s)", known);
        }
    }
    memset(page, 0, sizeof(*page));
    page->limit = limit ? strtol(limit, &end, 10) : CURSOR_PAGE_DEFAULT;
    if (limit != NULL &&
        (*limit == '\0' || *end != '\0' || page->limit < 1 || page->limit > CURSOR_PAGE_MAX)) {
        problem_fail(p, PROBLEM_MALFORMED, "The query parameter limit is invalid.");
        problem_field(p, "limit", "must be a whole number from 1 to %d", CURSOR_PAGE_MAX);
    }
    if (cursor != NULL && (nkey > CURSOR_MAX_PARTS || nkey == 0 ||
                           cursor_decode(req->arena, cursor, page->key, nkey) != 0 ||
                           !validate_uuid(page->key[nkey - 1])))
        cursor_refuse(p);
    return p->status != 0 ? -1 : 0;
}

/* The text of the named column, "" for NULL or a column rows lacks. */
static const char *cursor_column(const PGresult *rows, int row, const char *name)
{
    int col = PQfnumber(rows, name);

    return col >= 0 && !PQgetisnull(rows, row, col) ? PQgetvalue(rows, row, col) : "";
}

const char *cursor_page_json(arena_t *arena, const PGresult *rows, long limit,
                             const char *const *keys, size_t *len)
{
    int n = PQntuples(rows) < limit ? PQntuples(rows) : (int)limit;
    size_t cap = 64;

    for (int row = 0; row < n; row++)
        cap += strlen(cursor_column(rows, row, "body")) + 1;
    char *text = arena_alloc(arena, cap);
    size_t at = (size_t)snprintf(text, cap, "{\"items\":[");
    for (int row = 0; row < n; row++)
        at += (size_t)snprintf(text + at, cap - at, "%s%s", row == 0 ? "" : ",",
                               cursor_column(rows, row, "body"));
    const char *next = "null";
    if (PQntuples(rows) > limit && n > 0) {
        const char *parts[CURSOR_MAX_PARTS];
        size_t nparts = 0;
        for (; keys[nparts] != NULL && nparts < CURSOR_MAX_PARTS; nparts++)
            parts[nparts] = cursor_column(rows, n - 1, keys[nparts]);
        /* a cursor is URL-safe base64: nothing in it needs escaping */
        next = arena_printf(arena, "\"%s\"", cursor_encode(arena, parts, nparts));
    }
    text = arena_printf(arena, "%.*s],\"next_cursor\":%s}", (int)at, text, next);
    *len = strlen(text);
    return text;
}

int cursor_time_keyset(request_t *req, const cursor_page_t *page, problem_t *p)
{
    int64_t micros;

    if (page->key[0] != NULL &&
        (!validate_uuid(page->key[1]) || rfc3339_parse(db_time(req->arena, page->key[0]), &micros)))
        return cursor_refuse(p);
    return 0;
}

int cursor_answer_page(request_t *req, response_t *res, problem_t *p, const db_statement_t *stmt,
                       const char **params, long limit, const char *const *keys)
{
    size_t len;

    params[stmt->nparams - 1] = arena_printf(req->arena, "%ld", limit + 1);
    PGresult *rows = db_exec(stmt, params, p);
    if (rows == NULL)
        return -1;
    const char *text = cursor_page_json(req->arena, rows, limit, keys, &len);
    response_text(res, 200, text, len);
    PQclear(rows);
    return 0;
}

int cursor_answer_newest(request_t *req, response_t *res, problem_t *p, const db_statement_t *stmt)
{
    static const char *const filters[] = {NULL};
    static const char *const keys[] = {"created_key", "id_key", NULL};
    const char *params[3];
    cursor_page_t page;

    if (cursor_page_params(req, filters, 2, &page, p) != 0 ||
        cursor_time_keyset(req, &page, p) != 0)
        return -1;
    params[0] = page.key[0];
    params[1] = page.key[1];
    return cursor_answer_page(req, res, p, stmt, params, page.limit, keys);
}
