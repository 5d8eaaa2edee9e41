/* db.c - the worker's one PostgreSQL connection: lazy, prepared, self-healing */
#include "db.h"

#include <poll.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "cache.h"
#include "log.h"
#include "metrics.h"

/* Maps SQLSTATEs (or their two-character class, written "08***") to the
 * kind of problem the client is told of.
 * sqlstate: five characters; '*' matches any character
 * kind:     what the client is told went wrong (problem.h maps it to HTTP)
 * detail:   what we tell the client; NULL = the database's own message
 *           (only for errors our SQL functions raise on purpose) */
typedef struct db_error_map {
    const char *sqlstate;
    problem_kind_t kind;
    const char *detail;
} db_error_map_t;

/* Our SQL functions raise errors meant for the client in the class UF: a
 * class of our own outside the ranges the SQL standard keeps for itself
 * (0-4, A-H), and not one PostgreSQL uses (as PostgREST uses PT). */
static const db_error_map_t db_error_maps[] = {
    {"UF404", PROBLEM_NOT_FOUND, NULL},
    {"UF409", PROBLEM_CONFLICT, NULL},
    {"UF412", PROBLEM_PRECONDITION_FAILED, NULL},
    {"UF422", PROBLEM_INVALID, NULL},
    {"23505", PROBLEM_CONFLICT,
     "The change conflicts with existing data (a unique value is taken)."},
    {"23503", PROBLEM_CONFLICT,
     "The change refers to something that does not exist or is still referenced."},
    {"23514", PROBLEM_INVALID, "A value is outside its allowed range."},
    {"22***", PROBLEM_INVALID, "A value cannot be stored as given."},
    {"40001", PROBLEM_UNAVAILABLE, "The database could not serialise concurrent changes; retry."},
    {"40P01", PROBLEM_UNAVAILABLE,
     "The database detected a deadlock between concurrent changes; retry."},
    {"08***", PROBLEM_UNAVAILABLE, "The database is unavailable."},
    {"53***", PROBLEM_UNAVAILABLE, "The database is out of resources."},
    {"57P**", PROBLEM_UNAVAILABLE, "The database is shutting down or restarting."},
    {"57014", PROBLEM_UNAVAILABLE, "The database cancelled the query (timeout)."},
    {NULL, 0, NULL},
};

static PGconn *db_conn;
static int db_tx_depth;    /* open db_begin levels; 0 = autocommit */
static bool db_tx_aborted; /* rolled back inside: outer levels do nothing */
static bool db_tx_lazy;    /* db_begin_lazy: BEGIN not sent yet */

static int db_tx_flush(problem_t *p);
static char *db_conninfo;
static char *db_application_name;
static const db_statement_t **db_prepared; /* prepared on this connection */
static int db_nprepared;
static int db_prepared_cap;
static char db_listen_channel[64];      /* db_listen(): LISTENed on every new connection */
static bool db_outage_once;             /* db_log_outages_once() */
static bool db_outage_logged;           /* a failure was logged, no connection since */
static struct timespec db_outage_since; /* when that failure was */

void db_configure(const char *conninfo, const char *application_name)
{
    free(db_conninfo);
    free(db_application_name);
    db_conninfo = strdup(conninfo ? conninfo : "");
    db_application_name = strdup(application_name ? application_name : "fleetdash");
}

void db_close(void)
{
    if (db_conn != NULL)
        PQfinish(db_conn);
    db_conn = NULL;
    free(db_prepared);
    db_prepared = NULL;
    db_nprepared = db_prepared_cap = 0;
    if (db_tx_depth > 0)
        db_tx_aborted = true;
}

void db_log_outages_once(bool once)
{
    db_outage_once = once;
}

static int db_unavailable(problem_t *p, const char *why)
{
    metrics_add("database_errors", 1);
    if (!db_outage_once || !db_outage_logged)
        log_warn("database unavailable: %s", why);
    if (!db_outage_logged)
        clock_gettime(CLOCK_MONOTONIC, &db_outage_since);
    db_outage_logged = true;
    problem_fail(p, PROBLEM_UNAVAILABLE, "The database is unavailable; retry shortly.");
    p->retry_after = DB_RETRY_AFTER_SECONDS;
    return -1;
}

/* NOTICEs and WARNINGs of the server (a RAISE NOTICE, "already exists,
 * skipping"): one log line each, instead of libpq's raw text on stderr. */
static void db_notice(void *arg, const char *message)
{
    (void)arg;
    log_warn("database notice: %.*s", (int)strcspn(message, "\n"), message);
}

/* True when the server has closed the idle connection. A restart or a
 * terminated backend leaves a FATAL message and the end of the stream on the
 * socket, which libpq reads only with the next statement, and that statement
 * would fail although the server is back. Asked only outside a transaction
 * (nothing in flight), so anything readable is the server speaking first:
 * a notice, a parameter change (parsed and kept), or its goodbye. */
static bool db_idle_connection_lost(void)
{
    struct pollfd pfd = {.fd = PQsocket(db_conn), .events = POLLIN};

    if (pfd.fd < 0)
        return true;
    for (int round = 0; round < 8 && poll(&pfd, 1, 0) > 0; round++) {
        if (PQconsumeInput(db_conn) == 0 || PQstatus(db_conn) != CONNECTION_OK)
            return true;
        (void)PQisBusy(db_conn); /* parses what came; a FATAL goes to db_notice */
    }
    return PQstatus(db_conn) != CONNECTION_OK;
}

static int db_connect(problem_t *p)
{
    if (db_conn != NULL && PQstatus(db_conn) == CONNECTION_OK &&
        (db_tx_depth > 0 || !db_idle_connection_lost()))
        return 0;
    if (db_conn != NULL && db_tx_depth == 0)
        log_info("database connection closed by the server while idle; reconnecting");
    db_close();
    /* Our defaults come first so that the connection string can override them. */
    const char *keys[] = {"connect_timeout", "application_name", "dbname", NULL};
    const char *values[] = {"3", db_application_name, db_conninfo, NULL};
    db_conn = PQconnectdbParams(keys, values, 1);
    if (db_conn == NULL || PQstatus(db_conn) != CONNECTION_OK) {
        char why[256];
        snprintf(why, sizeof(why), "%s", db_conn ? PQerrorMessage(db_conn) : "out of memory");
        why[strcspn(why, "\n")] = '\0';
        db_close();
        return db_unavailable(p, why);
    }
    PQsetNoticeProcessor(db_conn, db_notice, NULL);
    /* Times leave the database as UTC text; db_time() finishes the job.
     * jit off: the workers' statements are short, and a plan estimated
     * expensive (a sort over a month of executions) spent most of a second
     * compiling itself. */
    char setup[160];
    snprintf(setup, sizeof(setup), "SET TIME ZONE 'UTC'; SET jit = off");
    PGresult *res = PQexec(db_conn, setup);
    bool ok = PQresultStatus(res) == PGRES_COMMAND_OK;
    PQclear(res);
    if (!ok) {
        db_close();
        return db_unavailable(p, "cannot set the session time zone");
    }
    if (db_listen_channel[0] != '\0') {
        snprintf(setup, sizeof(setup), "LISTEN %s", db_listen_channel);
        res = PQexec(db_conn, setup);
        ok = PQresultStatus(res) == PGRES_COMMAND_OK;
        PQclear(res);
        if (!ok) {
            db_close();
            return db_unavailable(p, "cannot LISTEN");
        }
    }
    if (db_outage_once && db_outage_logged) {
        struct timespec now;
        clock_gettime(CLOCK_MONOTONIC, &now);
        log_info("database available again after %.1fs",
                 (double)(now.tv_sec - db_outage_since.tv_sec) +
                     (double)(now.tv_nsec - db_outage_since.tv_nsec) / 1e9);
    }
    db_outage_logged = false;
    return 0;
}

static bool db_sqlstate_is(const char *pattern, const char *state)
{
    for (int i = 0; i < 5; i++)
        if (pattern[i] != '*' && pattern[i] != state[i])
            return false;
    return true;
}

/* One 422 field per comma-separated name of columns (the COLUMN of an
 * UF422 error), all with the same message. */
static void db_fields(problem_t *p, const char *columns, const char *message)
{
    if (columns == NULL || *columns == '\0')
        columns = "body";
    while (*columns != '\0') {
        size_t len = strcspn(columns, ",");
        problem_field(p, arena_strndup(p->arena, columns, len), "%s",
                      message ? message : "is invalid");
        columns += len + (columns[len] == ',');
    }
}

/* Fills p from a failed result; always returns -1. */
static int db_error(const PGresult *res, const db_statement_t *stmt, problem_t *p)
{
    const char *state = PQresultErrorField(res, PG_DIAG_SQLSTATE);
    const char *message = PQresultErrorField(res, PG_DIAG_MESSAGE_PRIMARY);

    if (state == NULL || PQstatus(db_conn) != CONNECTION_OK) {
        char why[256];
        snprintf(why, sizeof(why), "%s", PQerrorMessage(db_conn));
        why[strcspn(why, "\n")] = '\0';
        db_close();
        return db_unavailable(p, why);
    }
    for (const db_error_map_t *m = db_error_maps; m->sqlstate != NULL; m++) {
        if (!db_sqlstate_is(m->sqlstate, state))
            continue;
        if (m->detail != NULL) { /* the server's failures, not the input's */
            metrics_add("database_errors", 1);
            log_warn("statement %s failed: %s: %s", stmt->name, state, message ? message : "");
        }
        if (m->kind == PROBLEM_INVALID && m->detail == NULL) {
            db_fields(p, PQresultErrorField(res, PG_DIAG_COLUMN_NAME), message);
            return -1;
        }
        problem_fail(p, m->kind, "%s", m->detail ? m->detail : (message ? message : ""));
        if (m->kind == PROBLEM_UNAVAILABLE)
            p->retry_after = DB_RETRY_AFTER_SECONDS;
        return -1;
    }
    log_error("statement %s failed: %s: %s", stmt->name, state, message ? message : "");
    return problem_fail(p, PROBLEM_INTERNAL, "The server failed to answer this request.");
}

static bool db_is_prepared(const db_statement_t *stmt)
{
    for (int i = 0; i < db_nprepared; i++)
        if (db_prepared[i] == stmt)
            return true;
    return false;
}

/* Adds stmt to the statements prepared on this connection. When memory runs
 * out it is simply not remembered: its next call prepares it again, which
 * db_prepare takes as done (42P05), so no statement is ever refused. */
static void db_remember_prepared(const db_statement_t *stmt)
{
    if (db_nprepared == db_prepared_cap) {
        int cap = db_prepared_cap > 0 ? db_prepared_cap * 2 : 64;
        const db_statement_t **grown = realloc(db_prepared, (size_t)cap * sizeof(*grown));
        if (grown == NULL)
            return;
        db_prepared = grown;
        db_prepared_cap = cap;
    }
    db_prepared[db_nprepared++] = stmt;
}

/* Prepares stmt on the current connection once. Returns 0 or -1 with p. */
static int db_prepare(const db_statement_t *stmt, problem_t *p)
{
    if (db_is_prepared(stmt))
        return 0;
    PGresult *res = PQprepare(db_conn, stmt->name, stmt->sql, stmt->nparams, NULL);
    const char *state = PQresultErrorField(res, PG_DIAG_SQLSTATE);
    if (PQresultStatus(res) != PGRES_COMMAND_OK &&
        !(state != NULL && strcmp(state, "42P05") == 0 && !db_in_transaction())) {
        db_error(res, stmt, p);
        PQclear(res);
        return -1;
    }
    PQclear(res);
    db_remember_prepared(stmt);
    return 0;
}

/* One attempt. Returns the result, or NULL with p filled; *lost tells
 * whether the connection died on the way. */
static PGresult *db_try(const db_statement_t *stmt, const char *const *params, problem_t *p,
                        bool *lost)
{
    *lost = false;
    if (db_connect(p) != 0)
        return NULL;
    if (db_prepare(stmt, p) != 0) {
        *lost = db_conn == NULL;
        return NULL;
    }
    PGresult *res = PQexecPrepared(db_conn, stmt->name, stmt->nparams, params, NULL, NULL, 0);
    ExecStatusType status = PQresultStatus(res);
    if (status == PGRES_TUPLES_OK || status == PGRES_COMMAND_OK)
        return res;
    db_error(res, stmt, p);
    PQclear(res);
    *lost = db_conn == NULL;
    return NULL;
}

PGresult *db_exec(const db_statement_t *stmt, const char *const *params, problem_t *p)
{
    if (db_tx_flush(p) != 0)
        return NULL;
    bool lost;
    bool had_connection = db_conn != NULL;
    const problem_t before = *p;
    PGresult *res = db_try(stmt, params, p, &lost);

    if (res == NULL && lost && had_connection && stmt->retry_safe && db_tx_depth == 0) {
        /* The connection died on the way (the server restarted between our
         * idle check and the statement): one more try on a fresh one. Its
         * answer stands, a 4xx included. */
        *p = before;
        res = db_try(stmt, params, p, &lost);
    }
    return res;
}

const char *db_text_cached(arena_t *arena, const db_statement_t *stmt, const char **params,
                           const char *key, size_t *len, problem_t *p)
{
    const char *held = cache_version(arena, key);
    const char *text = NULL;

    params[stmt->nparams - 2] = key;
    params[stmt->nparams - 1] = held != NULL ? held : "";
    PGresult *rows = db_exec(stmt, params, p);
    if (rows == NULL)
        return NULL;
    if (PQntuples(rows) != 1 || PQgetisnull(rows, 0, 0)) {
        problem_fail(p, PROBLEM_INTERNAL, "The server failed to answer this request.");
    } else if (PQgetisnull(rows, 0, 1)) {
        text = cache_get(arena, key, PQgetvalue(rows, 0, 0), len);
        if (text == NULL)
            problem_fail(p, PROBLEM_INTERNAL, "The server failed to answer this request.");
    } else {
        *len = (size_t)PQgetlength(rows, 0, 1);
        text = arena_strndup(arena, PQgetvalue(rows, 0, 1), *len);
        cache_put(key, PQgetvalue(rows, 0, 0), text, *len);
    }
    PQclear(rows);
    return text;
}

const char *db_value(const PGresult *res, int row, int col)
{
    return PQgetisnull(res, row, col) ? NULL : PQgetvalue(res, row, col);
}

const char *db_get(const PGresult *res, int row, const char *column)
{
    int col = PQfnumber(res, column);

    if (col < 0) {
        log_error("a statement's result has no column %s", column);
        return NULL;
    }
    return PQgetisnull(res, row, col) ? NULL : PQgetvalue(res, row, col);
}

const char *db_get_copy(arena_t *arena, const PGresult *res, int row, const char *column)
{
    const char *value = db_get(res, row, column);

    return value != NULL ? arena_strdup(arena, value) : NULL;
}

int db_int(const PGresult *res, int row, int col)
{
    return atoi(PQgetvalue(res, row, col));
}

const char *db_time(arena_t *arena, const char *text)
{
    size_t len = strlen(text);

    if (len < 22 || text[10] != ' ' || strcmp(text + len - 3, "+00") != 0)
        return text;
    char *out = arena_strndup(arena, text, len - 2);
    out[10] = 'T';
    out[len - 3] = 'Z';
    return out;
}

/* Runs a statement without parameters (BEGIN, COMMIT, ROLLBACK). */
static int db_simple(const char *sql, problem_t *p)
{
    const db_statement_t stmt = {sql, sql, 0, false};

    if (db_conn == NULL)
        return db_unavailable(p, "connection lost");
    PGresult *res = PQexec(db_conn, sql);
    int rc = PQresultStatus(res) == PGRES_COMMAND_OK ? 0 : db_error(res, &stmt, p);
    PQclear(res);
    return rc;
}

/* Sends BEGIN outside any transaction; a connection lost on the way (nothing
 * ran yet) is replaced once. */
static int db_send_begin(problem_t *p)
{
    if (db_connect(p) != 0)
        return -1;
    const problem_t before = *p;
    if (db_simple("BEGIN", p) != 0) {
        if (db_conn != NULL)
            return -1;
        *p = before;
        if (db_connect(p) != 0 || db_simple("BEGIN", p) != 0)
            return -1;
    }
    return 0;
}

int db_begin(problem_t *p)
{
    if (db_tx_depth > 0) {
        db_tx_depth++;
        return db_tx_aborted ? problem_fail(p, PROBLEM_INTERNAL, "The transaction was rolled back.")
                             : 0;
    }
    if (db_send_begin(p) != 0)
        return -1;
    db_tx_depth = 1;
    db_tx_aborted = false;
    return 0;
}

void db_begin_lazy(void)
{
    if (db_tx_depth > 0) {
        db_tx_depth++;
        return;
    }
    db_tx_depth = 1;
    db_tx_aborted = false;
    db_tx_lazy = true;
}

/* The BEGIN of db_begin_lazy, before the first statement that needs it. */
static int db_tx_flush(problem_t *p)
{
    if (!db_tx_lazy)
        return 0;
    db_tx_lazy = false;
    int depth = db_tx_depth;
    db_tx_depth = 0; /* outside a transaction still: an idle connection is checked */
    int rc = db_send_begin(p);
    db_tx_depth = depth;
    if (rc != 0)
        db_tx_aborted = true;
    return rc;
}

int db_commit(problem_t *p)
{
    if (db_tx_depth == 0)
        return 0;
    if (--db_tx_depth > 0)
        return db_tx_aborted ? -1 : 0;
    if (db_tx_aborted) {
        db_tx_aborted = false;
        db_tx_lazy = false;
        return problem_fail(p, PROBLEM_INTERNAL, "The transaction was rolled back.");
    }
    if (db_tx_lazy) { /* nothing was sent */
        db_tx_lazy = false;
        return 0;
    }
    return db_simple("COMMIT", p);
}

void db_rollback(void)
{
    problem_t ignored = {0};
    arena_t scratch = {0};

    ignored.arena = &scratch;
    if (db_tx_depth > 0 && !db_tx_lazy && !db_tx_aborted && db_conn != NULL)
        db_simple("ROLLBACK", &ignored);
    arena_destroy(&scratch);
    if (db_tx_depth > 0)
        db_tx_depth--;
    db_tx_aborted = db_tx_depth > 0;
    if (db_tx_depth == 0)
        db_tx_lazy = false;
}

bool db_in_transaction(void)
{
    return db_tx_depth > 0;
}

bool db_transaction_failed(void)
{
    return db_tx_depth > 0 && db_tx_aborted;
}

int db_copy_begin(const char *sql, problem_t *p)
{
    const db_statement_t stmt = {"copy", sql, 0, false};

    if (db_tx_flush(p) != 0)
        return -1;
    if (db_conn == NULL)
        return db_unavailable(p, "connection lost");
    PGresult *res = PQexec(db_conn, sql);
    int rc = PQresultStatus(res) == PGRES_COPY_IN ? 0 : db_error(res, &stmt, p);
    PQclear(res);
    return rc;
}

int db_copy_put(const char *data, size_t len, problem_t *p)
{
    if (db_conn == NULL || PQputCopyData(db_conn, data, (int)len) != 1)
        return db_unavailable(p, db_conn ? PQerrorMessage(db_conn) : "connection lost");
    return 0;
}

long long db_copy_end(const char *abort_reason, problem_t *p)
{
    const db_statement_t stmt = {"copy", "COPY", 0, false};
    long long rc = 0;

    if (db_conn == NULL || PQputCopyEnd(db_conn, abort_reason) != 1)
        return db_unavailable(p, "connection lost");
    PGresult *res;
    while ((res = PQgetResult(db_conn)) != NULL) {
        ExecStatusType status = PQresultStatus(res);
        if (status != PGRES_COMMAND_OK && rc >= 0 && abort_reason == NULL)
            rc = db_error(res, &stmt, p);
        else if (status == PGRES_COMMAND_OK && rc >= 0)
            rc = atoll(PQcmdTuples(res));
        PQclear(res);
    }
    return abort_reason != NULL ? -1 : rc;
}

long long db_copy_out(const char *sql, int (*sink)(void *ctx, const char *row, size_t len),
                      void *ctx, long long *rows_before, problem_t *p)
{
    const db_statement_t stmt = {"copy_out", sql, 0, false};
    long long rows = 0;
    bool sinking = true;
    char *buf;
    int len;

    *rows_before = 0;
    if (db_connect(p) != 0)
        return -1;
    PGresult *res = PQexec(db_conn, sql);
    if (PQresultStatus(res) != PGRES_COPY_OUT) {
        db_error(res, &stmt, p);
        PQclear(res);
        return -1;
    }
    PQclear(res);
    while ((len = PQgetCopyData(db_conn, &buf, 0)) > 0) {
        if (sinking && sink(ctx, buf, (size_t)len) != 0)
            sinking = false;
        rows++;
        *rows_before = rows;
        PQfreemem(buf);
    }
    long long rc = rows;
    if (len == -2)
        return db_unavailable(p, PQerrorMessage(db_conn));
    while ((res = PQgetResult(db_conn)) != NULL) {
        if (PQresultStatus(res) != PGRES_COMMAND_OK && rc >= 0)
            rc = db_error(res, &stmt, p);
        PQclear(res);
    }
    return rc;
}

int db_command(const char *sql, problem_t *p)
{
    if (db_tx_depth > 0)
        return problem_fail(p, PROBLEM_INTERNAL,
                            "A utility command cannot run inside a transaction.");
    if (db_connect(p) != 0)
        return -1;
    return db_simple(sql, p);
}

bool db_server_answers(void)
{
    const char *keys[] = {"connect_timeout", "dbname", NULL};
    const char *values[] = {"2", db_conninfo, NULL};

    return PQpingParams(keys, values, 1) == PQPING_OK;
}

int db_ping(problem_t *p)
{
    static const db_statement_t ping = {"db_ping", "SELECT 1", 0, true};
    PGresult *res = db_exec(&ping, NULL, p);

    if (res == NULL)
        return -1;
    PQclear(res);
    return 0;
}

int db_listen(const char *channel, problem_t *p)
{
    if (db_listen_channel[0] == '\0' || strcmp(db_listen_channel, channel) != 0) {
        snprintf(db_listen_channel, sizeof(db_listen_channel), "%s", channel);
        db_close(); /* the next connection LISTENs */
    }
    return db_connect(p);
}

int db_socket(void)
{
    return db_conn != NULL && PQstatus(db_conn) == CONNECTION_OK ? PQsocket(db_conn) : -1;
}

int db_notifications(void)
{
    int n = 0;
    PGnotify *note;

    if (db_conn == NULL)
        return 0;
    if (PQconsumeInput(db_conn) == 0)
        return 0; /* the next statement finds the connection lost */
    while ((note = PQnotifies(db_conn)) != NULL) {
        PQfreemem(note);
        n++;
    }
    return n;
}
