/* ingest_copy.c - the COPY sink: binary rows straight into executions, text into staging */
#include <stdlib.h>
#include <string.h>

#include "ingest_internal.h"
#include "../fcgi/db.h"
#include "../fcgi/pgcopy.h"

/* Columns of execution_staging (sql/004_ingest.sql), in COPY order. */
static const char copy_staging[] =
    "COPY pg_temp.execution_staging (line, id, client_id, agent_id, agent_name, version, model, "
    "started_at, latency_ms, finished_at, status, prompt_tokens, completion_tokens, "
    "cache_read_tokens, "
    "cost_usd, error_category, error_message, eval_passed, eval_score, eval_evaluator, "
    "task_id, metadata) FROM STDIN";

/* Rows without a client id, straight into executions, in this order, in
 * the binary format (see pgcopy.h for what that spares the server). */
static const char copy_direct[] =
    "COPY executions (id, agent_id, agent_version_id, model, task_id, started_at, finished_at, "
    "latency_ms, status, prompt_tokens, completion_tokens, cache_read_tokens, cost_usd, "
    "error_category, error_message, eval_passed, eval_score, eval_evaluator, evaluated_at, "
    "metadata) FROM STDIN (FORMAT binary)";
#define DIRECT_COLUMNS 20

static void copy_reserve(ingest_t *in, size_t more)
{
    if (in->copy_len + more <= in->copy_cap)
        return;
    size_t cap = in->copy_cap ? in->copy_cap : INGEST_COPY_FLUSH * 2;
    while (cap < in->copy_len + more)
        cap *= 2;
    char *grown = realloc(in->copy, cap);
    if (grown == NULL)
        abort(); /* out of memory: the master replaces the worker */
    in->copy = grown;
    in->copy_cap = cap;
}

static void copy_raw(ingest_t *in, const char *s, size_t len)
{
    copy_reserve(in, len);
    memcpy(in->copy + in->copy_len, s, len);
    in->copy_len += len;
}

/* One column: NULL as \N, text escaped for COPY's text format; then the
 * separator (a tab, or the newline after the last column). */
static void copy_column(ingest_t *in, const char *s, bool last)
{
    if (s == NULL) {
        copy_raw(in, "\\N", 2);
    } else {
        size_t len = strlen(s);
        copy_reserve(in, len * 2);
        for (size_t i = 0; i < len; i++) {
            char c = s[i], esc = 0;
            if (c == '\\')
                esc = '\\';
            else if (c == '\t')
                esc = 't';
            else if (c == '\n')
                esc = 'n';
            else if (c == '\r')
                esc = 'r';
            if (esc) {
                in->copy[in->copy_len++] = '\\';
                in->copy[in->copy_len++] = esc;
            } else {
                in->copy[in->copy_len++] = c;
            }
        }
    }
    copy_raw(in, last ? "\n" : "\t", 1);
}

static int copy_flush(ingest_t *in)
{
    if (in->copy_len == 0 || in->db_failed)
        return in->db_failed ? -1 : 0;
    if (db_copy_put(in->copy, in->copy_len, in->p) != 0) {
        in->db_failed = true;
        return -1;
    }
    in->copy_len = 0;
    return 0;
}

int ingest_copy_close(ingest_t *in)
{
    if (in->open == COPY_NONE || in->db_failed)
        return in->db_failed ? -1 : 0;
    char trailer[PGCOPY_TRAILER_LEN];
    int sent = in->open == COPY_DIRECT
                   ? sorter_finish(&in->sort, in->p) == 0 &&
                         db_copy_put(trailer, pgcopy_trailer(trailer), in->p) == 0
                   : copy_flush(in) == 0;
    in->open = COPY_NONE;
    long long stored = sent ? db_copy_end(NULL, in->p) : -1;
    if (stored >= 0 && stored != in->open_rows) /* a row lost on the way: never commit that */
        problem_fail(in->p, PROBLEM_INTERNAL,
                     "The database took %lld of the %ld executions sent; nothing was "
                     "stored.",
                     stored, in->open_rows);
    if (stored != in->open_rows) {
        in->db_failed = true;
        return -1;
    }
    return 0;
}

/* Makes target the open COPY. */
static int copy_open(ingest_t *in, enum copy_target target)
{
    if (in->open == target)
        return 0;
    if (ingest_copy_close(in) != 0)
        return -1;
    if (db_copy_begin(target == COPY_DIRECT ? copy_direct : copy_staging, in->p) != 0) {
        in->db_failed = true;
        return -1;
    }
    in->open = target;
    in->open_rows = 0;
    in->staged |= target == COPY_STAGING;
    char header[PGCOPY_HEADER_LEN];
    if (target == COPY_DIRECT && db_copy_put(header, pgcopy_header(header), in->p) != 0) {
        in->db_failed = true;
        return -1;
    }
    return 0;
}

/* Appends the row to the COPY buffer, as a staging row. */
static void copy_row(ingest_t *in, const char *const cols[STAGING_COLUMNS])
{
    for (int i = 0; i < STAGING_COLUMNS; i++)
        copy_column(in, cols[i], i == STAGING_COLUMNS - 1);
}

/* Adds the row to the run being filled, as a binary row of executions, with
 * the agent and version r resolved; finished_at from ingest_finished_at(),
 * evaluated_at the transaction's stamp (execution_evaluated_at()), as on
 * every other path. The texts of cols are the worker's own (validated, or
 * written by ingest_validate_row), so every number and UUID among them
 * converts. */
static void copy_row_direct(ingest_t *in, const char *const cols[STAGING_COLUMNS],
                            const agent_ref_t *r, int64_t started, long long latency)
{
    static const enum staging_column texts[] = {S_MODEL,          S_TASK_ID,       S_STATUS,
                                                S_ERROR_CATEGORY, S_ERROR_MESSAGE, S_EVAL_EVALUATOR,
                                                S_METADATA};
    /* the row's fields without their texts: the field count, 20 lengths,
     * 3 UUIDs, 8 numbers of at most 8 bytes and a bool (61 <= 64), one
     * numeric */
    size_t room = 2 + DIRECT_COLUMNS * 4 + 3 * 16 + 8 * 8 + PGCOPY_NUMERIC_MAX;

    for (size_t i = 0; i < sizeof(texts) / sizeof(texts[0]); i++)
        room += cols[texts[i]] != NULL ? strlen(cols[texts[i]]) + 1 : 0;
    char *row = sorter_reserve(&in->sort, room), *o = row;
    const char *passed = cols[S_EVAL_PASSED];
    o += pgcopy_row(o, DIRECT_COLUMNS);
    o += pgcopy_uuid(o, cols[S_ID]);
    o += pgcopy_uuid(o, r->agent);
    o += r->version[0] ? pgcopy_uuid(o, r->version) : pgcopy_null(o);
    o += pgcopy_text_or_null(o, cols[S_MODEL]);
    o += pgcopy_text_or_null(o, cols[S_TASK_ID]);
    o += pgcopy_timestamptz(o, started);
    o += pgcopy_timestamptz(o, ingest_finished_at(started, latency));
    o += pgcopy_int4(o, (int32_t)latency);
    o += pgcopy_text_or_null(o, cols[S_STATUS]);
    o += pgcopy_int8(o, strtoll(cols[S_PROMPT_TOKENS], NULL, 10));
    o += pgcopy_int8(o, strtoll(cols[S_COMPLETION_TOKENS], NULL, 10));
    o += pgcopy_int8(o, strtoll(cols[S_CACHE_READ_TOKENS], NULL, 10));
    o += pgcopy_numeric(o, cols[S_COST_USD]);
    o += pgcopy_text_or_null(o, cols[S_ERROR_CATEGORY]);
    o += pgcopy_text_or_null(o, cols[S_ERROR_MESSAGE]);
    o += passed != NULL ? pgcopy_bool(o, passed[0] == 't') : pgcopy_null(o);
    o += cols[S_EVAL_SCORE] != NULL ? pgcopy_float8(o, strtod(cols[S_EVAL_SCORE], NULL))
                                    : pgcopy_null(o);
    o += pgcopy_text_or_null(o, cols[S_EVAL_EVALUATOR]);
    o += passed != NULL ? pgcopy_timestamptz(o, in->evaluated_at) : pgcopy_null(o);
    o += pgcopy_jsonb(o, cols[S_METADATA], strlen(cols[S_METADATA]));
    if (sorter_add(&in->sort, started, (size_t)(o - row), in->p) != 0)
        in->db_failed = true;
}

void ingest_copy_direct(ingest_t *in, const char *const cols[STAGING_COLUMNS], const agent_ref_t *r,
                        int64_t started, long long latency)
{
    if (copy_open(in, COPY_DIRECT) != 0)
        return;
    copy_row_direct(in, cols, r, started, latency);
    in->direct_rows++;
    in->open_rows++;
}

void ingest_copy_staging(ingest_t *in, const char *const cols[STAGING_COLUMNS])
{
    if (copy_open(in, COPY_STAGING) != 0)
        return;
    copy_row(in, cols);
    in->open_rows++;
    if (in->copy_len >= INGEST_COPY_FLUSH)
        copy_flush(in);
}

void ingest_copy_free(ingest_t *in)
{
    free(in->copy);
    in->copy = NULL;
    sorter_free(&in->sort);
}
