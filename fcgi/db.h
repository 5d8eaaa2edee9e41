/* db.h - the worker's one PostgreSQL connection: lazy, prepared, self-healing */
#ifndef FLEETDASH_DB_H
#define FLEETDASH_DB_H

#include <libpq-fe.h>
#include <stdbool.h>

#include "problem.h"

#define DB_RETRY_AFTER_SECONDS 5

/* A statement, prepared once per connection under its name.
 * name:       unique in the process ("dashboard_get")
 * sql:        text with $1..$n parameters, never user input
 * nparams:    how many parameters it takes (all sent as text)
 * retry_safe: true if it may be sent again on a fresh connection when the
 *             old one turned out dead (reads; writes that are idempotent) */
typedef struct db_statement {
    const char *name;
    const char *sql;
    int nparams;
    bool retry_safe;
} db_statement_t;

/* Remembers how to connect; connects nothing yet. conninfo is a libpq
 * connection string or URI (may be NULL for libpq's defaults); both strings
 * are copied. */
void db_configure(const char *conninfo, const char *application_name);

/* Runs a prepared statement with text parameters (NULL entries are SQL
 * NULL), connecting and preparing first when needed. Returns a result the
 * caller must PQclear(), whose status is PGRES_TUPLES_OK or
 * PGRES_COMMAND_OK. On failure returns NULL with p filled from the SQLSTATE:
 * 503 + Retry-After when the database cannot be reached (the connection is
 * dropped and re-opened by a later call), 404/409/412/422 for errors the SQL
 * functions raise on purpose (SQLSTATE FD404, FD409, FD412, FD422 - a FD422
 * names its field in the COLUMN of the error), 409 for unique and foreign key
 * violations, 500 for anything else (logged). */
PGresult *db_exec(const db_statement_t *stmt, const char *const *params, problem_t *p);

/* Checks that the database answers (SELECT 1). Returns 0, or -1 with a 503
 * in p. */
int db_ping(problem_t *p);

/* The text of a result value, or NULL when it is SQL NULL (borrowed from
 * the result). */
const char *db_value(const PGresult *res, int row, int col);

/* A result value as an int (0 for NULL); for integer columns. */
int db_int(const PGresult *res, int row, int col);

/* The RFC 3339 form of a timestamptz as PostgreSQL prints it in the UTC
 * session every connection runs in: "2026-11-21 10:36:25.02+00" becomes
 * "2026-11-21T10:36:25.02Z". The copy lives in the arena; text of any other
 * shape is returned unchanged. */
const char *db_time(arena_t *arena, const char *text);

/* Closes the connection, if any. Safe to call at any time. */
void db_close(void);

#endif
