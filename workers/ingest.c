/* ingest.c - POST /executions from request to answer, and the ingest group's route table */
#include <stdlib.h>

#include "ingest.h"
#include "ingest_internal.h"
#include "../fcgi/db.h"
#include "../fcgi/json_out.h"
#include "../fcgi/metrics.h"
#include "../fcgi/validate.h"

/* Rows COPYed straight into executions go out in runs of this many bytes
 * sorted by started_at (see ingest_sort.h); two runs are held at a time. */
#define INGEST_SORT_RUN (2 * 1024 * 1024)

/* ---------------------------------------------------------------- statements */

/* The evaluated_at of rows with a verdict COPYed straight into executions,
 * in microseconds since 1970: execution_evaluated_at() (sql/functions/01_core.sql),
 * as every other path stamps its rows. */
static const db_statement_t stmt_prepare = {
    "executions_staging_prepare",
    "SELECT (extract(epoch FROM execution_evaluated_at(true)) * 1000000)::int8 AS evaluated_at_us, "
    "execution_staging_prepare()",
    0, false};

static const db_statement_t stmt_unknown_agents = {
    "executions_unknown_agents", "SELECT line, agent_id FROM execution_staging_unknown_agents()", 0,
    false};

static const db_statement_t stmt_finish = {
    "executions_finish", "SELECT inserted, duplicates FROM execution_staging_finish()", 0, false};

/* One execution whose agent (and version, if given) exist: one INSERT, the
 * cheap statement a single POST needs. No row when the agent or version is
 * unknown or the id exists: execution_ingest_rows() then registers, lists
 * or counts as it does for any batch. finished_at is the worker's, and
 * evaluated_at execution_evaluated_at(), as on every path. Written so that its generic
 * plan costs what a custom one does: with "a.id = $2 OR a.name = $3"
 * PostgreSQL planned it anew on every execution (custom plans only,
 * 0.3 ms of planning a POST). */
static const db_statement_t stmt_insert_one = {
    "executions_insert_one",
    "INSERT INTO executions (id, agent_id, agent_version_id, model, task_id, started_at, "
    "finished_at, latency_ms, status, prompt_tokens, completion_tokens, cache_read_tokens, "
    "cost_usd, error_category, error_message, eval_passed, eval_score, eval_evaluator, "
    "evaluated_at, metadata) "
    "SELECT $1, a.id, v.id, $5, $6, $7, $19, $8, $9, $10, $11, $12, $13, $14, $15, $16, $17, $18, "
    "execution_evaluated_at($16::boolean), $20 "
    "FROM agents a LEFT JOIN agent_versions v ON v.agent_id = a.id AND v.version = $4 "
    "WHERE a.id = COALESCE($2::uuid, (SELECT n.id FROM agents n WHERE n.name = $3)) "
    "AND ($4 IS NULL OR v.id IS NOT NULL) "
    "ON CONFLICT (id) DO NOTHING",
    20, false};

static const db_statement_t stmt_ingest_rows = {
    "executions_ingest_rows",
    "SELECT inserted, duplicates, unknown_line, unknown_agent FROM execution_ingest_rows($1)", 1,
    false};

/* The names of the staging columns: members of the rows of the JSON forms. */
static const char *const staging_columns[STAGING_COLUMNS] = {
    [S_LINE] = "line",
    [S_ID] = "id",
    [S_CLIENT_ID] = "client_id",
    [S_AGENT_ID] = "agent_id",
    [S_AGENT_NAME] = "agent_name",
    [S_VERSION] = "version",
    [S_MODEL] = "model",
    [S_STARTED_AT] = "started_at",
    [S_LATENCY_MS] = "latency_ms",
    [S_FINISHED_AT] = "finished_at",
    [S_STATUS] = "status",
    [S_PROMPT_TOKENS] = "prompt_tokens",
    [S_COMPLETION_TOKENS] = "completion_tokens",
    [S_CACHE_READ_TOKENS] = "cache_read_tokens",
    [S_COST_USD] = "cost_usd",
    [S_ERROR_CATEGORY] = "error_category",
    [S_ERROR_MESSAGE] = "error_message",
    [S_EVAL_PASSED] = "eval_passed",
    [S_EVAL_SCORE] = "eval_score",
    [S_EVAL_EVALUATOR] = "eval_evaluator",
    [S_TASK_ID] = "task_id",
    [S_METADATA] = "metadata",
};

/* ---------------------------------------------------------------- one ingest */

/* Appends the row to in->rows as a JSON object (values as text, which
 * json_populate_recordset converts; metadata as the object it is). */
static void json_row(ingest_t *in, const json_t *e, const char *const cols[STAGING_COLUMNS])
{
    json_t *row = json_object();
    const json_t *metadata = json_object_get(e, "metadata");

    for (int i = 0; i < S_METADATA; i++)
        if (cols[i] != NULL)
            json_object_set_new(row, staging_columns[i], json_string(cols[i]));
    json_object_set_new(row, "metadata", metadata ? json_deep_copy(metadata) : json_object());
    json_array_append_new(in->rows, row);
}

void ingest_take(ingest_t *in, long line, const json_t *e)
{
    problem_t scratch = {.arena = &in->line_arena};
    int64_t started = 0;
    long long latency = 0;

    in->received++;
    ingest_validate_execution(e, &scratch, &started, &latency);
    if (scratch.nfields > 0) {
        if (++in->bad_lines <= INGEST_BAD_LINES_MAX)
            for (size_t i = 0; i < scratch.nfields && i < PROBLEM_FIELDS_MAX; i++)
                problem_line_field(in->p, line, scratch.fields[i].field, "%s",
                                   scratch.fields[i].message);
    } else if (in->bad_lines == 0 && !in->db_failed) {
        char id[37];
        const char *cols[STAGING_COLUMNS];
        ingest_validate_row(&in->line_arena, line, e, started, latency, id, cols);
        if (in->ids != NULL)
            json_array_append_new(in->ids, json_string(id));
        if (in->rows != NULL)
            json_row(in, e, cols);
        else
            ingest_resolve_row(in, line, cols, started, latency);
    }
}

void ingest_take_bad(ingest_t *in, long line, const char *message)
{
    in->received++;
    if (++in->bad_lines <= INGEST_BAD_LINES_MAX)
        problem_line_field(in->p, line, "body", "%s", message);
}

int ingest_begin(ingest_t *in)
{
    PGresult *res;

    if (db_begin(in->p) != 0 || (res = db_exec(&stmt_prepare, NULL, in->p)) == NULL) {
        in->db_failed = true;
        return -1;
    }
    in->evaluated_at = strtoll(db_get(res, 0, "evaluated_at_us"), NULL, 10);
    PQclear(res);
    in->began = true;
    return 0;
}

/* Lists the lines whose agent_id names no agent, INGEST_BAD_LINES_MAX in
 * all: those the worker found, then staged ones (which come later, by line).
 * Returns how many there are, or -1. */
static long ingest_unknown_agents(ingest_t *in)
{
    long listed = 0;
    int staged = 0;

    for (; listed < in->unknown && listed < INGEST_BAD_LINES_MAX; listed++)
        problem_line_field(in->p, in->unknown_line[listed], "agent_id", "no such agent (%s)",
                           in->unknown_agent[listed]);
    if (in->staged) {
        PGresult *res = db_exec(&stmt_unknown_agents, NULL, in->p);
        if (res == NULL)
            return -1;
        staged = PQntuples(res);
        for (int row = 0; row < staged && listed < INGEST_BAD_LINES_MAX; row++, listed++)
            problem_line_field(in->p, atol(db_get(res, row, "line")), "agent_id",
                               "no such agent (%s)", db_get(res, row, "agent_id"));
        PQclear(res);
    }
    return in->unknown + staged;
}

/* The 422 of a request with bad executions; always -1. */
static int ingest_refuse(ingest_t *in)
{
    return problem_fail(in->p, PROBLEM_INVALID,
                        "%ld of %ld executions are invalid (the first %d are listed); nothing "
                        "was stored.",
                        in->bad_lines, in->received, INGEST_BAD_LINES_MAX);
}

/* The 200 answer: what was received, inserted, and already there. */
static void ingest_answer(ingest_t *in, response_t *res, long long inserted, long long duplicates)
{
    json_t *body = json_pack("{s:I, s:I, s:I}", "received", (json_int_t)in->received, "inserted",
                             (json_int_t)inserted, "duplicates", (json_int_t)duplicates);
    if (in->ids != NULL)
        json_object_set(body, "ids", in->ids);
    metrics_add("ingested_rows", (double)inserted);
    response_json(res, 200, body);
}

/* The COPY forms: ends the COPY and, when everything was valid and
 * complete, moves the staged rows and commits, answering with the counts.
 * Otherwise rolls back: nothing of the request is stored. */
static int ingest_end_copy(ingest_t *in, response_t *res)
{
    PGresult *counts = NULL;
    long long inserted, duplicates = 0;
    int rc = -1;

    if (in->db_failed)
        goto fail;
    if (!request_body_complete(in->req)) {
        if (in->open != COPY_NONE)
            db_copy_end("the request body ended early", in->p);
        problem_clear(in->p); /* its bad lines, if any, do not matter any more */
        request_body_refuse(in->req, in->p);
        goto fail;
    }
    if (in->bad_lines > 0) {
        if (in->open != COPY_NONE)
            db_copy_end("invalid input", in->p);
        ingest_refuse(in);
        goto fail;
    }
    if (in->received == 0) {
        problem_field(in->p, "body", "must hold at least one execution (one object per line)");
        goto fail;
    }
    if (ingest_resolve_deferred(in) != 0 || ingest_copy_close(in) != 0)
        goto fail;
    long unknown = ingest_unknown_agents(in);
    if (unknown != 0) {
        if (unknown > 0)
            problem_fail(in->p, PROBLEM_INVALID,
                         "Some executions name agents that do not exist; nothing was "
                         "stored.");
        goto fail;
    }
    inserted = in->direct_rows;
    if (in->staged) {
        if ((counts = db_exec(&stmt_finish, NULL, in->p)) == NULL)
            goto fail;
        inserted += atoll(db_get(counts, 0, "inserted"));
        duplicates = atoll(db_get(counts, 0, "duplicates"));
    }
    if (db_commit(in->p) != 0)
        goto fail;
    ingest_answer(in, res, inserted, duplicates);
    rc = 0;
fail:
    PQclear(counts);
    if (rc != 0)
        db_rollback();
    return rc;
}

/* The one row of a single execution with stmt_insert_one. Returns 1 when
 * it was stored, 0 when the statement that registers must run (a new
 * agent or version, or an id that exists), -1 with in->p filled. */
static int ingest_insert_one(ingest_t *in, const json_t *row)
{
    /* $1 .. $20 of stmt_insert_one, the last one an object */
    static const enum staging_column params[20] = {
        S_ID,         S_AGENT_ID,       S_AGENT_NAME,        S_VERSION,
        S_MODEL,      S_TASK_ID,        S_STARTED_AT,        S_LATENCY_MS,
        S_STATUS,     S_PROMPT_TOKENS,  S_COMPLETION_TOKENS, S_CACHE_READ_TOKENS,
        S_COST_USD,   S_ERROR_CATEGORY, S_ERROR_MESSAGE,     S_EVAL_PASSED,
        S_EVAL_SCORE, S_EVAL_EVALUATOR, S_FINISHED_AT,       S_METADATA};
    const char *values[20];

    for (int i = 0; i < 19; i++)
        values[i] = json_string_value(json_object_get(row, staging_columns[params[i]]));
    values[19] = json_out_text(in->req->arena, json_object_get(row, staging_columns[S_METADATA]));
    PGresult *result = db_exec(&stmt_insert_one, values, in->p);
    if (result == NULL)
        return -1;
    int inserted = atoi(PQcmdTuples(result)) == 1;
    PQclear(result);
    return inserted;
}

/* JSON forms: all rows in one statement (one round trip, one transaction). */
static int ingest_end_rows(ingest_t *in, response_t *res)
{
    if (in->bad_lines > 0)
        return ingest_refuse(in);
    if (json_array_size(in->rows) == 1) {
        int inserted = ingest_insert_one(in, json_array_get(in->rows, 0));
        if (inserted != 0) {
            if (inserted > 0)
                ingest_answer(in, res, 1, 0);
            return inserted > 0 ? 0 : -1;
        }
    }
    const char *params[1] = {json_out_text(in->req->arena, in->rows)};
    PGresult *result = db_exec(&stmt_ingest_rows, params, in->p);
    if (result == NULL)
        return -1;
    int n = PQntuples(result);
    if (n > 0 && db_get(result, 0, "inserted") == NULL) {
        for (int row = 0; row < n; row++)
            problem_line_field(in->p, atol(db_get(result, row, "unknown_line")), "agent_id",
                               "no such agent (%s)", db_get(result, row, "unknown_agent"));
        problem_fail(in->p, PROBLEM_INVALID,
                     "Some executions name agents that do not exist; nothing was "
                     "stored.");
    } else if (n == 1) {
        ingest_answer(in, res, atoll(db_get(result, 0, "inserted")),
                      atoll(db_get(result, 0, "duplicates")));
    }
    PQclear(result);
    return res->status == 200 ? 0 : -1;
}

int executions_create(request_t *req, response_t *res, problem_t *p)
{
    const char *type = request_param(req, "CONTENT_TYPE");
    ingest_t in = {.req = req, .p = p};
    int rc = -1;

    if (request_is_type(type, "application/x-ndjson")) {
        sorter_init(&in.sort, INGEST_COPY_FLUSH, INGEST_SORT_RUN);
        ingest_body_ndjson(&in);
        if (in.began || in.db_failed)
            rc = ingest_end_copy(&in, res);
    } else if (request_is_json_type(type)) {
        sorter_init(&in.sort, INGEST_COPY_FLUSH, 0);
        ingest_body_json(&in);
        if (in.began || in.db_failed)
            rc = ingest_end_copy(&in, res);
        else if (in.received > 0)
            rc = ingest_end_rows(&in, res);
    } else {
        return problem_fail(p, PROBLEM_MEDIA_TYPE,
                            "Executions are sent as application/json (one object or an "
                            "array) or application/x-ndjson (one object per line).");
    }
    request_body_drain(req);
    json_decref(in.ids);
    json_decref(in.rows);
    ingest_resolve_free(&in);
    ingest_copy_free(&in);
    arena_destroy(&in.line_arena);
    return rc;
}

/* ---------------------------------------------------------------- routes */

/* The ingest group's own rows; the registry's are registry_routes (registry.c). */
const route_t ingest_routes[] = {
    {.method = "POST",
     .pattern = "/api/v1/executions",
     .handler = executions_create,
     .flags = ROUTE_IDEMPOTENT},
    {.method = NULL},
};
