/* cursor.h - keyset pagination: opaque cursors and the paging parameters of a list */
#ifndef FLEETDASH_CURSOR_H
#define FLEETDASH_CURSOR_H

#include <libpq-fe.h>
#include <stddef.h>

#include "arena.h"
#include "db.h"
#include "problem.h"
#include "request.h"
#include "response.h"

#define CURSOR_PAGE_DEFAULT 50
#define CURSOR_PAGE_MAX     100
#define CURSOR_MAX_PARTS    4

/* The paging parameters of one list request. */
typedef struct cursor_page {
    long limit;                        /* rows to answer: 1..CURSOR_PAGE_MAX */
    const char *key[CURSOR_MAX_PARTS]; /* the cursor's parts; all NULL without one */
} cursor_page_t;

/* Encodes nparts strings (the sort key of the last row of a page) as one
 * URL-safe token. Never fails; the token lives in the arena. */
const char *cursor_encode(arena_t *arena, const char *const *parts, size_t nparts);

/* Decodes a token made by cursor_encode with exactly nparts parts into
 * parts[]. Returns 0, or -1 when the token is not one of ours. */
int cursor_decode(arena_t *arena, const char *token, const char **parts, size_t nparts);

/* Reads ?limit= (default CURSOR_PAGE_DEFAULT) and ?cursor= (nkey parts, the
 * last one the UUID that ends every keyset) into page, and refuses any query
 * parameter that is neither of those nor one of filters (NULL-terminated).
 * Returns 0, or -1 with a 400 in p naming every bad parameter. */
int cursor_page_params(request_t *req, const char *const *filters, size_t nkey, cursor_page_t *page,
                       problem_t *p);

/* The answer of a list as JSON text in the arena: {"items": [the "body"
 * column of the first limit rows, JSON already, joined as it is],
 * "next_cursor": the cursor of the last of them, made from its columns named
 * in keys (NULL-terminated), or null when rows holds no more than limit
 * rows}. *len is its length. The statement asks for limit + 1 rows. Never
 * fails. */
const char *cursor_page_json(arena_t *arena, const PGresult *rows, long limit,
                             const char *const *keys, size_t *len);

/* The 400 for a cursor whose parts turn out wrong; always -1. */
int cursor_refuse(problem_t *p);

/* Checks the keyset of a list sorted by (a timestamptz, a uuid): page's
 * cursor, when it has one, must hold a time PostgreSQL wrote and a UUID.
 * Returns 0, or -1 with cursor_refuse's 400. */
int cursor_time_keyset(request_t *req, const cursor_page_t *page, problem_t *p);

/* Runs stmt, a list whose last parameter is the limit + 1 (which this fills
 * in: params has room for stmt->nparams), and answers 200 with
 * cursor_page_json of its rows, the next cursor from the columns keys.
 * Returns 0, or -1 with p filled when the statement fails. */
int cursor_answer_page(request_t *req, response_t *res, problem_t *p, const db_statement_t *stmt,
                       const char **params, long limit, const char *const *keys);

/* A list without filters, newest first: stmt takes the keyset ($1 a
 * timestamptz, $2 a uuid; NULL for the first page) and the limit + 1 ($3),
 * and answers the columns created_key, id_key and body. ?limit= and
 * ?cursor= only (a 400 names any other parameter). Returns 0, or -1 with p
 * filled. */
int cursor_answer_newest(request_t *req, response_t *res, problem_t *p, const db_statement_t *stmt);

#endif
