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
 * functions raise on purpose (SQLSTATE UF404, UF409, UF412, UF422 - a UF422
 * names its field in the COLUMN of the error), 409 for unique and foreign key
 * violations, 500 for anything else (logged). */
PGresult *db_exec(const db_statement_t *stmt, const char *const *params, problem_t *p);

/* Runs stmt, a statement that answers one row (token, text): token names the
 * database snapshot and the second the text was computed in, and text is
 * NULL when the statement's last parameter already is that token (the
 * statements call answer_cached(), sql/functions/15_answer_cache.sql, which
 * also shares the answers of a token between all workers and hosts). The text
 * answered before for key is kept in the worker's cache (cache.h) with its
 * token; db_text_cached fills the last two of params (stmt->nparams entries)
 * with key and the token it holds for key, so that an answer from an
 * identical snapshot within the same second costs one cheap round trip and
 * no work. Returns the text (in arena) and its length, or NULL with p filled. */
const char *db_text_cached(arena_t *arena, const db_statement_t *stmt, const char **params,
                           const char *key, size_t *len, problem_t *p);

/* Transactions. db_begin opens one (or, inside one, only counts the
 * nesting); db_commit commits when the outermost level ends; db_rollback
 * rolls back at once, whatever the level, and later db_commit/db_rollback
 * calls of the outer levels do nothing. While a transaction is open,
 * db_exec never retries on a fresh connection. Each returns 0, or -1 with p
 * filled (503 when the connection is lost). */
int db_begin(problem_t *p);

/* db_begin without a round trip: the transaction opens (BEGIN is sent) with
 * the first statement that runs in it, so that a request that never reaches
 * the database (bad input) costs none and does not need it up. A commit
 * with nothing sent does nothing. Cannot fail; a failing BEGIN fails that
 * statement. */
void db_begin_lazy(void);
int db_commit(problem_t *p);
void db_rollback(void);

/* True while a transaction is open. */
bool db_in_transaction(void);

/* True when the open transaction was rolled back inside (or its BEGIN
 * failed): a commit can only fail. */
bool db_transaction_failed(void);

/* COPY ... FROM STDIN. db_copy_begin sends the statement (text, no
 * parameters: a table and column list of ours, never user input);
 * db_copy_put sends rows already in the COPY's format (text or binary);
 * db_copy_end finishes, or with abort_reason aborts so that nothing of it is
 * stored. Must run inside a transaction. Each returns 0 (db_copy_end: the
 * number of rows the COPY stored), or -1 with p filled. */
int db_copy_begin(const char *sql, problem_t *p);
int db_copy_put(const char *data, size_t len, problem_t *p);
long long db_copy_end(const char *abort_reason, problem_t *p);

/* COPY ... TO STDOUT: runs sql (text of ours, no parameters) and hands
 * each row, in the COPY's format, to sink as it arrives (libpq's buffer:
 * memory stays flat whatever the number of rows). A sink that returns
 * nonzero gets no more rows (the rest is read and dropped). Returns the
 * number of rows, or -1 with p filled (rows_before tells whether any row
 * was handed over before the failure). */
long long db_copy_out(const char *sql, int (*sink)(void *ctx, const char *row, size_t len),
                      void *ctx, long long *rows_before, problem_t *p);

/* Runs a utility command that cannot be prepared or run in a transaction
 * (VACUUM), as plain text: ours, never user input. Returns 0, or -1 with p
 * filled. */
int db_command(const char *sql, problem_t *p);

/* Whether the server of the configured database accepts connections
 * (PQping: no connection is kept, nothing is authenticated; at most 2 s).
 * For the master, which must not hold a connection its forks would share. */
bool db_server_answers(void);

/* Checks that the database answers (SELECT 1). Returns 0, or -1 with a 503
 * in p. */
int db_ping(problem_t *p);

/* The text of a result value, or NULL when it is SQL NULL (borrowed from
 * the result). */
const char *db_value(const PGresult *res, int row, int col);

/* The value of the column named column in row, or NULL when it is SQL NULL
 * or res has no such column (a mistake of ours, logged). The text lives as
 * long as res. Handlers read columns by name, never by position. */
const char *db_get(const PGresult *res, int row, const char *column);

/* db_get's value copied into arena (NULL stays NULL), for an answer that
 * outlives res. */
const char *db_get_copy(arena_t *arena, const PGresult *res, int row, const char *column);

/* A result value as an int (0 for NULL); for integer columns. */
int db_int(const PGresult *res, int row, int col);

/* The RFC 3339 form of a timestamptz as PostgreSQL prints it in the UTC
 * session every connection runs in: "2026-11-21 10:36:25.02+00" becomes
 * "2026-11-21T10:36:25.02Z". The copy lives in the arena; text of any other
 * shape is returned unchanged. */
const char *db_time(arena_t *arena, const char *text);

/* How failures to reach the database are logged. By default each one is
 * (a request worker: one line per failed request). With once = true only
 * the first failure of an outage is, and the first connection after it logs
 * how long the outage lasted: for a job that keeps retrying on its own. */
void db_log_outages_once(bool once);

/* Closes the connection, if any. Safe to call at any time. */
void db_close(void);

/* LISTEN channel on this connection and on every one after it (a job that
 * waits for NOTIFY: db_socket() becomes readable). Connects; returns 0, or
 * -1 with p filled (503). */
int db_listen(const char *channel, problem_t *p);

/* The connection's socket, or -1 while there is none. */
int db_socket(void);

/* Reads what the server sent and drops the notifications that came; how
 * many. */
int db_notifications(void);

#endif
