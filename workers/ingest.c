/* ingest.c - the ingest group: executions in one, in batches or streamed; its route table */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>

#include "ingest.h"
#include "ingest_sort.h"
#include "../fcgi/db.h"
#include "../fcgi/json_in.h"
#include "../fcgi/json_out.h"
#include "../fcgi/pgcopy.h"
#include "../fcgi/rfc3339.h"
#include "../fcgi/validate.h"
#include "../fcgi/worker.h"

#define INGEST_BATCH_MAX     1000                 /* items of one JSON array */
#define INGEST_COPY_MIN      50                   /* arrays this long are COPYed */
#define INGEST_JSON_LIMIT    (4 * 1024 * 1024)    /* a JSON body (object or array) */
#define INGEST_LINE_MAX      (1024 * 1024)        /* one NDJSON line */
#define INGEST_BAD_LINES_MAX 100                  /* bad lines listed in a 422 */
#define INGEST_FUTURE_SLACK  (5 * 60 * 1000000LL) /* started_at may be this far ahead */
#define INGEST_LATENCY_MAX   86400000LL           /* ms */
/* Bytes of COPY rows sent as one CopyData message. PostgreSQL reads a whole
 * message before it parses a row of it: with 256 KiB messages the worker and
 * its backend took turns (1,000,000 rows: 23 s, one core idle); with 32 KiB
 * they work at once (12.5 s). */
#define INGEST_COPY_FLUSH (32 * 1024)
/* Rows COPYed straight into executions go out in runs of this many bytes
 * sorted by started_at (see ingest_sort.h); two runs are held at a time. */
#define INGEST_SORT_RUN (2 * 1024 * 1024)
/* What jansson takes to read a line grows with its values: a 1 MiB line
 * of 92,000 tiny metadata members took 15 MiB. A valid execution has at
 * most ~75 values (two separators each), so a line longer than
 * INGEST_LINE_SHORT with more separators than this is refused unread. */
#define INGEST_LINE_SHORT          (16 * 1024)
#define INGEST_LINE_SEPARATORS_MAX 400
/* The same measure for a JSON body (a batch): an execution with every
 * field and 50 metadata members counts ~150, so a full batch of them fits;
 * jansson's tree of the costliest shape that many allow takes ~20 MiB. */
#define INGEST_JSON_SEPARATORS_MAX (INGEST_BATCH_MAX * 160)
#define INGEST_READ_CHUNK          (64 * 1024)
#define INGEST_AGENTS_MAX          1024 /* (agent, version) pairs the worker resolves */
#define INGEST_DEFER_MAX           256  /* rows waiting for their pair at most */

/* ---------------------------------------------------------------- input rules */

static const char *const statuses[] = {"succeeded", "failed", "timeout", "cancelled", NULL};

/* name, type, flags, min, max, allowed values */
static const field_rule_t execution_rules[] = {
    {"id", FIELD_STRING, 0, 0, 0, NULL},
    {"agent_id", FIELD_STRING, 0, 0, 0, NULL},
    {"agent_name", FIELD_STRING, 0, 1, 255, NULL},
    {"version", FIELD_STRING, 0, 1, 100, NULL},
    {"model", FIELD_STRING, FIELD_REQUIRED, 1, 100, NULL},
    {"started_at", FIELD_STRING, FIELD_REQUIRED, 0, 0, NULL},
    {"latency_ms", FIELD_INTEGER, 0, 0, INGEST_LATENCY_MAX, NULL},
    {"finished_at", FIELD_STRING, 0, 0, 0, NULL},
    {"status", FIELD_STRING, FIELD_REQUIRED, 0, 0, statuses},
    {"prompt_tokens", FIELD_INTEGER, 0, 0, 1000000000, NULL},
    {"completion_tokens", FIELD_INTEGER, 0, 0, 1000000000, NULL},
    {"cache_read_tokens", FIELD_INTEGER, 0, 0, 1000000000, NULL},
    {"cost_usd", FIELD_NUMBER, 0, 0, 1000000, NULL},
    {"error", FIELD_OBJECT, 0, 0, 0, NULL},
    {"evaluation", FIELD_OBJECT, 0, 0, 0, NULL},
    {"task_id", FIELD_STRING, 0, 1, 255, NULL},
    {"metadata", FIELD_OBJECT, 0, 0, 0, NULL},
    {NULL, 0, 0, 0, 0, NULL},
};

static const field_rule_t error_rules[] = {
    {"category", FIELD_STRING, FIELD_REQUIRED, 1, 100, NULL},
    {"message", FIELD_STRING, FIELD_NULLABLE, 0, 10000, NULL},
    {NULL, 0, 0, 0, 0, NULL},
};

static const field_rule_t evaluation_rules[] = {
    {"passed", FIELD_BOOLEAN, FIELD_REQUIRED, 0, 0, NULL},
    {"score", FIELD_NUMBER, FIELD_NULLABLE, 0, 1, NULL},
    {"evaluator", FIELD_STRING, FIELD_NULLABLE, 1, 100, NULL},
    {NULL, 0, 0, 0, 0, NULL},
};

/* ---------------------------------------------------------------- statements */

/* now() in microseconds since 1970: evaluated_at of the rows COPYed
 * straight into executions, as execution_staging_finish() stamps its own. */
static const db_statement_t stmt_prepare = {
    "executions_staging_prepare",
    "SELECT (extract(epoch FROM now()) * 1000000)::int8, execution_staging_prepare()", 0, false};
static const db_statement_t stmt_resolve = {
    "executions_resolve", "SELECT resolved_agent, resolved_version FROM execution_resolve_all($1)",
    1, false};
static const db_statement_t stmt_unknown_agents = {
    "executions_unknown_agents", "SELECT line, agent_id FROM execution_staging_unknown_agents()", 0,
    false};
static const db_statement_t stmt_finish = {
    "executions_finish", "SELECT inserted, duplicates FROM execution_staging_finish()", 0, false};
/* One execution whose agent (and version, if given) exist: one INSERT, the
 * cheap statement a single POST needs. No row when the agent or version is
 * unknown or the id exists: execution_ingest_rows() then registers, lists
 * or counts as it does for any batch. finished_at and evaluated_at as
 * execution_staging_finish() computes them. Written so that its generic
 * plan costs what a custom one does: with "a.id = $2 OR a.name = $3"
 * PostgreSQL planned it anew on every execution (custom plans only,
 * 0.3 ms of planning a POST). */
static const db_statement_t stmt_insert_one = {
    "executions_insert_one",
    "INSERT INTO executions (id, agent_id, agent_version_id, model, task_id, started_at, "
    "finished_at, latency_ms, status, prompt_tokens, completion_tokens, cache_read_tokens, "
    "cost_usd, error_category, error_message, eval_passed, eval_score, eval_evaluator, "
    "evaluated_at, metadata) "
    "SELECT $1, a.id, v.id, $5, $6, $7, $7::timestamptz + $8::integer * interval '1 millisecond', "
    "$8, $9, $10, $11, $12, $13, $14, $15, $16, $17, $18, "
    "CASE WHEN $16::boolean IS NOT NULL THEN now() END, $19 "
    "FROM agents a LEFT JOIN agent_versions v ON v.agent_id = a.id AND v.version = $4 "
    "WHERE a.id = COALESCE($2::uuid, (SELECT n.id FROM agents n WHERE n.name = $3)) "
    "AND ($4 IS NULL OR v.id IS NOT NULL) "
    "ON CONFLICT (id) DO NOTHING",
    19, false};
static const db_statement_t stmt_ingest_rows = {
    "executions_ingest_rows",
    "SELECT inserted, duplicates, unknown_line, unknown_agent FROM execution_ingest_rows($1)", 1,
    false};

/* The columns of execution_staging (sql/004_ingest.sql), in COPY order: a
 * staging row's texts are indexed by these, and named as below. */
enum staging_column {
    S_LINE,
    S_ID,
    S_CLIENT_ID,
    S_AGENT_ID,
    S_AGENT_NAME,
    S_VERSION,
    S_MODEL,
    S_STARTED_AT,
    S_LATENCY_MS,
    S_STATUS,
    S_PROMPT_TOKENS,
    S_COMPLETION_TOKENS,
    S_CACHE_READ_TOKENS,
    S_COST_USD,
    S_ERROR_CATEGORY,
    S_ERROR_MESSAGE,
    S_EVAL_PASSED,
    S_EVAL_SCORE,
    S_EVAL_EVALUATOR,
    S_TASK_ID,
    S_METADATA,
    STAGING_COLUMNS
};
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

/* Columns of execution_staging (sql/004_ingest.sql), in COPY order. */
static const char copy_staging[] =
    "COPY pg_temp.execution_staging (line, id, client_id, agent_id, agent_name, version, model, "
    "started_at, latency_ms, status, prompt_tokens, completion_tokens, cache_read_tokens, "
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

/* ---------------------------------------------------------------- one ingest */

/* What the worker resolved for one (agent, version) of a stream. */
typedef struct agent_ref {
    char *key;        /* malloc'ed; NULL: a free slot */
    bool resolved;    /* agent and version below are known */
    bool asked;       /* in the question being put together */
    char agent[37];   /* "": no agent has that id */
    char version[37]; /* "": no version given */
} agent_ref_t;

/* A valid row whose pair is not resolved yet (its texts in defer_arena). */
typedef struct deferred {
    long line;
    const char *cols[STAGING_COLUMNS];
    int64_t started;
    long long latency;
    agent_ref_t *ref;
} deferred_t;

/* Where rows go. Rows without a client id are COPYed straight into
 * executions: their ids are new (UUIDv7), and the worker resolves their
 * agents and versions once per distinct pair (execution_resolve_all, for
 * all the pairs waiting rows name at once). From the first row with a
 * client id on (it may repeat, or exist already), or when a stream names
 * more than INGEST_AGENTS_MAX pairs, rows go to the staging table, whose
 * finish keeps the first line of a repeated id and skips existing ones. */
enum copy_target { COPY_NONE, COPY_DIRECT, COPY_STAGING };

#define REFS_SLOTS (2 * INGEST_AGENTS_MAX) /* open addressing, at most half full */

/* The state of one POST /executions. */
typedef struct ingest {
    request_t *req;
    problem_t *p;
    arena_t line_arena; /* what one execution needs; reset after each */
    char *copy;         /* staging COPY rows not sent yet (malloc'ed) */
    size_t copy_len;
    size_t copy_cap;
    long received;         /* executions read */
    long bad_lines;        /* executions or lines that were invalid */
    bool began;            /* the COPY forms: the transaction is open */
    bool staging;          /* rows go to the staging table from now on */
    bool staged;           /* some did */
    enum copy_target open; /* the COPY that is open */
    long open_rows;        /* rows sent to it */
    long direct_rows;      /* rows COPYed straight into executions */
    copy_sorter_t sort;    /* and the runs they are sent in */
    int64_t now;           /* the transaction's now(): evaluated_at */
    agent_ref_t *refs;     /* REFS_SLOTS slots, or NULL */
    size_t nrefs;
    deferred_t *deferred; /* INGEST_DEFER_MAX rows waiting for their pair, or NULL */
    size_t ndeferred;
    arena_t defer_arena;
    long unknown;                                 /* lines naming no agent */
    long unknown_line[INGEST_BAD_LINES_MAX];      /* the first of them */
    char unknown_agent[INGEST_BAD_LINES_MAX][37]; /* and the ids they name */
    bool db_failed;                               /* the database failed: p says how */
    json_t *ids;  /* JSON forms: the ids, in input order; NULL for NDJSON */
    json_t *rows; /* small JSON forms: the staging rows, sent as one parameter */
} ingest_t;

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

/* Ends the open COPY, if any, with what is still buffered. */
static int copy_close(ingest_t *in)
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
        problem_set(in->p, 500,
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
    if (copy_close(in) != 0)
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

/* A version 7 UUID: time-ordered, so new rows land at the end of the index.
 * Random bits come from a pool refilled 256 ids at a time (one getrandom()
 * call per id cost a system call per row); it is first filled in the worker,
 * after the fork, so no two workers share bits. */
static void uuid_v7(char out[37])
{
    static unsigned char pool[4096];
    static size_t used = sizeof(pool);
    unsigned char b[16];
    uint64_t ms = (uint64_t)(rfc3339_now() / 1000);

    if (used == sizeof(pool)) {
        if (getrandom(pool, sizeof(pool), 0) != (ssize_t)sizeof(pool))
            abort(); /* the kernel's random source failed: nothing sane to do */
        used = 0;
    }
    memcpy(b, pool + used, sizeof(b));
    used += sizeof(b);
    for (int i = 0; i < 6; i++)
        b[i] = (unsigned char)(ms >> (40 - 8 * i));
    b[6] = (unsigned char)(0x70 | (b[6] & 0x0f));
    b[8] = (unsigned char)(0x80 | (b[8] & 0x3f));
    static const char hex[] = "0123456789abcdef";
    char *o = out;
    for (int i = 0; i < 16; i++) {
        if (i == 4 || i == 6 || i == 8 || i == 10)
            *o++ = '-';
        *o++ = hex[b[i] >> 4];
        *o++ = hex[b[i] & 15];
    }
    *o = '\0';
}

/* Checks what the rule tables cannot: the UUIDs, exactly one of each pair,
 * times, and an error only on failures. Fills *started and *latency. */
static void check_execution(const json_t *e, problem_t *p, int64_t *started, long long *latency)
{
    const char *id = field_string(e, "id"), *agent_id = field_string(e, "agent_id");
    const json_t *agent_name = json_object_get(e, "agent_name");
    const json_t *latency_ms = json_object_get(e, "latency_ms");
    const char *finished_text = field_string(e, "finished_at");
    const char *status = field_string(e, "status");
    int64_t finished;

    if (id != NULL && !validate_uuid(id))
        problem_field(p, "id", "must be a UUID");
    if (agent_id != NULL && !validate_uuid(agent_id))
        problem_field(p, "agent_id", "must be a UUID");
    if (json_object_get(e, "agent_id") != NULL && agent_name != NULL)
        problem_field(p, "agent_name", "give agent_id or agent_name, not both");
    else if (json_object_get(e, "agent_id") == NULL && agent_name == NULL)
        problem_field(p, "agent_id", "is required (or agent_name)");
    const char *started_text = field_string(e, "started_at");
    if (started_text != NULL && rfc3339_parse(started_text, started) != 0)
        problem_field(p, "started_at", "must be an RFC 3339 timestamp");
    else if (started_text != NULL && *started > rfc3339_now() + INGEST_FUTURE_SLACK)
        problem_field(p, "started_at", "is more than 5 minutes in the future");
    if (latency_ms != NULL && json_object_get(e, "finished_at") != NULL)
        problem_field(p, "finished_at", "give latency_ms or finished_at, not both");
    else if (latency_ms == NULL && json_object_get(e, "finished_at") == NULL)
        problem_field(p, "latency_ms", "is required (or finished_at)");
    *latency = json_integer_value(latency_ms);
    if (finished_text != NULL && latency_ms == NULL) {
        if (rfc3339_parse(finished_text, &finished) != 0)
            problem_field(p, "finished_at", "must be an RFC 3339 timestamp");
        else if (started_text != NULL && finished < *started)
            problem_field(p, "finished_at", "must not be before started_at");
        else if ((*latency = (finished - *started) / 1000) > INGEST_LATENCY_MAX)
            problem_field(p, "finished_at", "must be within 24 hours of started_at");
    }
    if (status != NULL && strcmp(status, "succeeded") == 0 && json_object_get(e, "error") != NULL)
        problem_field(p, "error", "is not allowed when status is succeeded");
}

/* The whole check of one execution, errors into p. */
static void validate_execution(const json_t *e, problem_t *p, int64_t *started, long long *latency)
{
    const json_t *member;

    if (validate_object(e, execution_rules, "", p) != 0 && !json_is_object(e))
        return;
    if (json_is_object(member = json_object_get(e, "error")))
        validate_object(member, error_rules, "error", p);
    if (json_is_object(member = json_object_get(e, "evaluation")))
        validate_object(member, evaluation_rules, "evaluation", p);
    if (json_is_object(member = json_object_get(e, "metadata")))
        validate_flat_object(member, "metadata", p);
    check_execution(e, p, started, latency);
}

/* v in decimal, in the arena (by hand: several per execution). */
static char *int_text(arena_t *arena, long long v)
{
    char digits[24], *p = digits + sizeof(digits);
    unsigned long long u = v < 0 ? 0ULL - (unsigned long long)v : (unsigned long long)v;

    *--p = '\0';
    do
        *--p = (char)('0' + u % 10);
    while ((u /= 10) > 0);
    if (v < 0)
        *--p = '-';
    return arena_strndup(arena, p, (size_t)(digits + sizeof(digits) - 1 - p));
}

static const char *number_text(arena_t *arena, const json_t *v, const char *fallback)
{
    char buf[40];

    if (v == NULL || json_is_null(v))
        return fallback;
    if (json_is_integer(v))
        return int_text(arena, (long long)json_integer_value(v));
    json_out_real(buf, json_real_value(v));
    return arena_strdup(arena, buf);
}

/* The staging columns of a valid execution as text (NULL = SQL NULL), in
 * the line arena; its id also goes to id. */
static void staging_row(ingest_t *in, long line, const json_t *e, int64_t started,
                        long long latency, char id[37], const char *cols[STAGING_COLUMNS])
{
    arena_t *a = &in->line_arena;
    const json_t *error = json_object_get(e, "error");
    const json_t *evaluation = json_object_get(e, "evaluation");
    const json_t *metadata = json_object_get(e, "metadata");
    const json_t *passed = json_object_get(evaluation, "passed");
    char *time = arena_alloc(a, 32);

    if (field_string(e, "id") != NULL) {
        snprintf(id, 37, "%s", field_string(e, "id"));
        for (char *c = id; *c; c++)
            *c = (char)(*c >= 'A' && *c <= 'F' ? *c + 32 : *c);
    } else {
        uuid_v7(id);
    }
    rfc3339_format(started, time);
    const char *values[STAGING_COLUMNS] = {
        int_text(a, line),
        id,
        field_string(e, "id") != NULL ? "t" : "f",
        field_string(e, "agent_id"),
        field_string(e, "agent_name"),
        field_string(e, "version"),
        field_string(e, "model"),
        time,
        int_text(a, latency),
        field_string(e, "status"),
        number_text(a, json_object_get(e, "prompt_tokens"), "0"),
        number_text(a, json_object_get(e, "completion_tokens"), "0"),
        number_text(a, json_object_get(e, "cache_read_tokens"), "0"),
        number_text(a, json_object_get(e, "cost_usd"), "0"),
        field_string(error, "category"),
        field_string(error, "message"),
        passed ? (json_is_true(passed) ? "t" : "f") : NULL,
        number_text(a, json_object_get(evaluation, "score"), NULL),
        field_string(evaluation, "evaluator"),
        field_string(e, "task_id"),
        metadata ? json_out_text(a, metadata) : "{}",
    };
    memcpy(cols, values, sizeof(values));
}

/* Appends the row to the COPY buffer, as a staging row. */
static void copy_row(ingest_t *in, const char *const cols[STAGING_COLUMNS])
{
    for (int i = 0; i < STAGING_COLUMNS; i++)
        copy_column(in, cols[i], i == STAGING_COLUMNS - 1);
}

/* Adds the row to the run being filled, as a binary row of executions, with
 * the agent and version r resolved; finished_at and evaluated_at as
 * execution_staging_finish() computes them. The texts of cols are the
 * worker's own (validated, or written by staging_row), so every number and
 * UUID among them converts. */
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
    o += pgcopy_timestamptz(o, started + latency * 1000);
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
    o += passed != NULL ? pgcopy_timestamptz(o, in->now) : pgcopy_null(o);
    o += pgcopy_jsonb(o, cols[S_METADATA], strlen(cols[S_METADATA]));
    if (sorter_add(&in->sort, started, (size_t)(o - row), in->p) != 0)
        in->db_failed = true;
}

/* FNV-1a */
static size_t refs_hash(const char *key)
{
    uint64_t h = 14695981039346656037ULL;

    for (; *key; key++)
        h = (h ^ (unsigned char)*key) * 1099511628211ULL;
    return (size_t)h;
}

/* The entry of the (agent, version) pair a row names: resolved, or made
 * now and waiting to be. NULL when the stream names more than
 * INGEST_AGENTS_MAX pairs. */
static agent_ref_t *ref_lookup(ingest_t *in, const char *agent_id, const char *agent_name,
                               const char *version)
{
    const char *ref = agent_id != NULL ? agent_id : agent_name;
    /* lengths make the key unambiguous whatever the texts hold */
    size_t ref_len = strlen(ref), version_len = version != NULL ? strlen(version) : 0;
    char *key = arena_alloc(&in->line_arena, ref_len + version_len + 26), *k = key;
    *k++ = agent_id != NULL ? 'i' : 'n';
    for (size_t n = ref_len; n > 0 || k == key + 1; n /= 10) /* the length, digits reversed */
        *k++ = (char)('0' + n % 10);
    *k++ = ':';
    memcpy(k, ref, ref_len);
    memcpy(k + ref_len, version != NULL ? version : "", version_len + 1);
    size_t slot;

    if (in->refs == NULL && (in->refs = calloc(REFS_SLOTS, sizeof(agent_ref_t))) == NULL)
        abort();
    for (slot = refs_hash(key) & (REFS_SLOTS - 1); in->refs[slot].key != NULL;
         slot = (slot + 1) & (REFS_SLOTS - 1))
        if (strcmp(in->refs[slot].key, key) == 0)
            return &in->refs[slot];
    if (in->nrefs >= INGEST_AGENTS_MAX)
        return NULL;
    if ((in->refs[slot].key = strdup(key)) == NULL)
        abort();
    in->nrefs++;
    return &in->refs[slot];
}

/* COPYs a row whose pair r is resolved straight into executions; a row
 * naming an agent id that does not exist is listed instead. */
static void emit_direct(ingest_t *in, long line, const char *const cols[STAGING_COLUMNS],
                        const agent_ref_t *r, int64_t started, long long latency)
{
    if (r->agent[0] == '\0') {
        if (in->unknown < INGEST_BAD_LINES_MAX) {
            in->unknown_line[in->unknown] = line;
            snprintf(in->unknown_agent[in->unknown], 37, "%s", cols[S_AGENT_ID]);
        }
        in->unknown++;
        return;
    }
    if (in->unknown > 0 || copy_open(in, COPY_DIRECT) != 0)
        return; /* nothing will be stored */
    copy_row_direct(in, cols, r, started, latency);
    in->direct_rows++;
    in->open_rows++;
}

/* Asks the database for every pair the deferred rows wait for, in one
 * statement (the COPY pauses for it), then COPYs those rows. */
static int resolve_deferred(ingest_t *in)
{
    agent_ref_t *asked[INGEST_DEFER_MAX];
    size_t nasked = 0;

    if (in->ndeferred == 0 || in->db_failed)
        return in->db_failed ? -1 : 0;
    json_t *pairs = json_array();
    for (size_t i = 0; i < in->ndeferred; i++) {
        deferred_t *d = &in->deferred[i];
        if (d->ref->resolved || d->ref->asked)
            continue;
        d->ref->asked = true;
        asked[nasked++] = d->ref;
        json_array_append_new(pairs, json_pack("{s:s?, s:s?, s:s?}", "agent_id",
                                               d->cols[S_AGENT_ID], "agent_name",
                                               d->cols[S_AGENT_ID] ? NULL : d->cols[S_AGENT_NAME],
                                               "version", d->cols[S_VERSION]));
    }
    const char *params[1] = {json_out_text(&in->line_arena, pairs)};
    json_decref(pairs);
    if (copy_close(in) != 0)
        return -1;
    PGresult *res = db_exec(&stmt_resolve, params, in->p);
    if (res == NULL || (size_t)PQntuples(res) != nasked) {
        PQclear(res);
        in->db_failed = true;
        return -1;
    }
    for (size_t i = 0; i < nasked; i++) {
        snprintf(asked[i]->agent, sizeof(asked[i]->agent), "%s", PQgetvalue(res, (int)i, 0));
        snprintf(asked[i]->version, sizeof(asked[i]->version), "%s", PQgetvalue(res, (int)i, 1));
        asked[i]->resolved = true;
    }
    PQclear(res);
    for (size_t i = 0; i < in->ndeferred && !in->db_failed; i++) {
        deferred_t *d = &in->deferred[i];
        if (d->cols[S_AGENT_ID] == NULL && d->ref->agent[0] == '\0') {
            /* registered by name, and deleted before it could be read back */
            problem_set(in->p, 409, "The agent %s was deleted while this request registered it.",
                        d->cols[S_AGENT_NAME]);
            in->db_failed = true;
            return -1;
        }
        emit_direct(in, d->line, d->cols, d->ref, d->started, d->latency);
    }
    in->ndeferred = 0;
    arena_reset(&in->defer_arena);
    return in->db_failed ? -1 : 0;
}

/* Keeps a row until its pair is resolved (with the others waiting). */
static void defer_row(ingest_t *in, long line, const char *const cols[STAGING_COLUMNS],
                      agent_ref_t *r, int64_t started, long long latency)
{
    if (in->deferred == NULL &&
        (in->deferred = calloc(INGEST_DEFER_MAX, sizeof(deferred_t))) == NULL)
        abort();
    deferred_t *d = &in->deferred[in->ndeferred++];
    *d = (deferred_t){.line = line, .started = started, .latency = latency, .ref = r};
    for (int i = 0; i < STAGING_COLUMNS; i++)
        d->cols[i] = cols[i] ? arena_strdup(&in->defer_arena, cols[i]) : NULL;
    if (in->ndeferred == INGEST_DEFER_MAX)
        resolve_deferred(in);
}

/* Sends a valid row where it goes (see enum copy_target). */
static void ingest_copy_row(ingest_t *in, long line, const char *const cols[STAGING_COLUMNS],
                            int64_t started, long long latency)
{
    if (!in->staging) {
        agent_ref_t *r =
            cols[S_CLIENT_ID][0] == 't'
                ? NULL
                : ref_lookup(in, cols[S_AGENT_ID], cols[S_AGENT_NAME], cols[S_VERSION]);
        /* a row of an unknown agent waits behind deferred rows: lines are listed in order */
        if (r != NULL && r->resolved && (r->agent[0] != '\0' || in->ndeferred == 0)) {
            emit_direct(in, line, cols, r, started, latency);
            return;
        }
        if (r != NULL) {
            defer_row(in, line, cols, r, started, latency);
            return;
        }
        /* a client id, or too many pairs: the staging table from here on */
        if (resolve_deferred(in) != 0)
            return;
        in->staging = true;
    }
    if (copy_open(in, COPY_STAGING) != 0)
        return;
    copy_row(in, cols);
    in->open_rows++;
    if (in->copy_len >= INGEST_COPY_FLUSH)
        copy_flush(in);
}

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

/* Takes one execution (line is its line or item number): a bad one is
 * listed (the first INGEST_BAD_LINES_MAX), a good one is sent to COPY as
 * long as no line was bad. Uses and resets the line arena. */
static void ingest_one(ingest_t *in, long line, const json_t *e)
{
    problem_t scratch = {.arena = &in->line_arena};
    int64_t started = 0;
    long long latency = 0;

    in->received++;
    validate_execution(e, &scratch, &started, &latency);
    if (scratch.nfields > 0) {
        if (++in->bad_lines <= INGEST_BAD_LINES_MAX)
            for (size_t i = 0; i < scratch.nfields && i < PROBLEM_FIELDS_MAX; i++)
                problem_line_field(in->p, line, scratch.fields[i].field, "%s",
                                   scratch.fields[i].message);
    } else if (in->bad_lines == 0 && !in->db_failed) {
        char id[37];
        const char *cols[STAGING_COLUMNS];
        staging_row(in, line, e, started, latency, id, cols);
        if (in->ids != NULL)
            json_array_append_new(in->ids, json_string(id));
        if (in->rows != NULL)
            json_row(in, e, cols);
        else
            ingest_copy_row(in, line, cols, started, latency);
    }
}

/* A line or item that is not an execution at all. */
static void ingest_bad(ingest_t *in, long line, const char *message)
{
    in->received++;
    if (++in->bad_lines <= INGEST_BAD_LINES_MAX)
        problem_line_field(in->p, line, "body", "%s", message);
}

/* Opens the transaction (and this session's staging table); the COPYs
 * open as rows come. */
static int ingest_begin(ingest_t *in)
{
    PGresult *res;

    if (db_begin(in->p) != 0 || (res = db_exec(&stmt_prepare, NULL, in->p)) == NULL) {
        in->db_failed = true;
        return -1;
    }
    in->now = strtoll(PQgetvalue(res, 0, 0), NULL, 10);
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
            problem_line_field(in->p, atol(PQgetvalue(res, row, 0)), "agent_id",
                               "no such agent (%s)", PQgetvalue(res, row, 1));
        PQclear(res);
    }
    return in->unknown + staged;
}

/* The 422 of a request with bad executions; always -1. */
static int ingest_refuse(ingest_t *in)
{
    return problem_set(in->p, 422,
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
    if (resolve_deferred(in) != 0 || copy_close(in) != 0)
        goto fail;
    long unknown = ingest_unknown_agents(in);
    if (unknown != 0) {
        if (unknown > 0)
            problem_set(in->p, 422,
                        "Some executions name agents that do not exist; nothing was "
                        "stored.");
        goto fail;
    }
    inserted = in->direct_rows;
    if (in->staged) {
        if ((counts = db_exec(&stmt_finish, NULL, in->p)) == NULL)
            goto fail;
        inserted += atoll(PQgetvalue(counts, 0, 0));
        duplicates = atoll(PQgetvalue(counts, 0, 1));
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

/* JSON forms: all rows in one statement (one round trip, one transaction). */
static int ingest_end_rows(ingest_t *in, response_t *res)
{
    if (in->bad_lines > 0)
        return ingest_refuse(in);
    if (json_array_size(in->rows) == 1) {
        const json_t *row = json_array_get(in->rows, 0);
        /* $1 .. $19 of stmt_insert_one, the last one an object */
        static const enum staging_column params[19] = {
            S_ID,         S_AGENT_ID,       S_AGENT_NAME,        S_VERSION,
            S_MODEL,      S_TASK_ID,        S_STARTED_AT,        S_LATENCY_MS,
            S_STATUS,     S_PROMPT_TOKENS,  S_COMPLETION_TOKENS, S_CACHE_READ_TOKENS,
            S_COST_USD,   S_ERROR_CATEGORY, S_ERROR_MESSAGE,     S_EVAL_PASSED,
            S_EVAL_SCORE, S_EVAL_EVALUATOR, S_METADATA};
        const char *one[19];
        for (int i = 0; i < 18; i++)
            one[i] = json_string_value(json_object_get(row, staging_columns[params[i]]));
        one[18] = json_out_text(in->req->arena, json_object_get(row, staging_columns[S_METADATA]));
        PGresult *result = db_exec(&stmt_insert_one, one, in->p);
        if (result == NULL)
            return -1;
        bool inserted = atoi(PQcmdTuples(result)) == 1;
        PQclear(result);
        if (inserted) {
            ingest_answer(in, res, 1, 0);
            return 0;
        }
    }
    const char *params[1] = {json_out_text(in->req->arena, in->rows)};
    PGresult *result = db_exec(&stmt_ingest_rows, params, in->p);
    if (result == NULL)
        return -1;
    int n = PQntuples(result);
    if (n > 0 && PQgetisnull(result, 0, 0)) {
        for (int row = 0; row < n; row++)
            problem_line_field(in->p, atol(PQgetvalue(result, row, 2)), "agent_id",
                               "no such agent (%s)", PQgetvalue(result, row, 3));
        problem_set(in->p, 422,
                    "Some executions name agents that do not exist; nothing was "
                    "stored.");
    } else if (n == 1) {
        ingest_answer(in, res, atoll(PQgetvalue(result, 0, 0)), atoll(PQgetvalue(result, 0, 1)));
    }
    PQclear(result);
    return res->status == 200 ? 0 : -1;
}

/* ---------------------------------------------------------------- the two body forms */

/* One object, or an array of up to INGEST_BATCH_MAX of them. An array of
 * INGEST_COPY_MIN or more goes the NDJSON way, through COPY and the staging
 * table: per row that costs the worker and PostgreSQL less than one JSON
 * parameter, and its four round trips no longer matter. */
static void ingest_json(ingest_t *in)
{
    json_t *body =
        request_json_body_bounded(in->req, INGEST_JSON_LIMIT, INGEST_JSON_SEPARATORS_MAX, in->p);

    if (body == NULL && in->p->status == 400 && in->req->body_read == 0 &&
        request_body_complete(in->req)) {
        problem_clear(in->p); /* no body at all: nothing to ingest, as with [] */
        problem_field(in->p, "body", "must hold 1 to %d executions", INGEST_BATCH_MAX);
    }
    if (body == NULL)
        return;
    in->ids = json_array();
    if (json_is_array(body) &&
        (json_array_size(body) < 1 || json_array_size(body) > INGEST_BATCH_MAX)) {
        problem_field(in->p, "body", "must hold 1 to %d executions", INGEST_BATCH_MAX);
    } else {
        size_t i;
        json_t *e;
        if (json_is_array(body) && json_array_size(body) >= INGEST_COPY_MIN)
            ingest_begin(in);
        else
            in->rows = json_array();
        if (json_is_array(body)) {
            json_array_foreach (body, i, e) {
                if (json_is_object(e))
                    ingest_one(in, (long)i + 1, e);
                else
                    ingest_bad(in, (long)i + 1, "must be a JSON object");
                arena_reset(&in->line_arena);
            }
        } else if (json_is_object(body)) {
            ingest_one(in, 1, body);
        } else {
            ingest_bad(in, 1, "must be a JSON object or an array of them");
        }
    }
    json_decref(body);
}

/* Parses one NDJSON line (without its newline) in the line arena. */
static void ingest_line(ingest_t *in, long line, char *text, size_t len)
{
    json_error_t jerr;

    while (len > 0 && (text[len - 1] == '\r' || text[len - 1] == ' ' || text[len - 1] == '\t'))
        len--;
    size_t start = strspn(text, " \t");
    if (start >= len)
        return; /* blank lines are allowed */
    if (len - start > INGEST_LINE_SHORT &&
        json_in_separators(text + start, len - start) > INGEST_LINE_SEPARATORS_MAX) {
        ingest_bad(in, line,
                   "has far more values than an execution (metadata has at most 50 members)");
        return;
    }
    arena_t *previous = worker_json_arena_swap(&in->line_arena);
    json_t *e = json_in_object(text + start, len - start); /* the common shape, fast */
    if (e == NULL)
        e = json_loadb(text + start, len - start, JSON_REJECT_DUPLICATES, &jerr);
    if (e == NULL)
        ingest_bad(in, line,
                   arena_printf(in->p->arena, "malformed JSON at column %d: %s",
                                jerr.column + (int)start, jerr.text));
    else if (!json_is_object(e))
        ingest_bad(in, line, "must be a JSON object");
    else
        ingest_one(in, line, e);
    worker_json_arena_swap(previous);
    arena_reset(&in->line_arena);
}

/* Reads the body chunk by chunk and takes each complete line as it comes:
 * memory stays at one chunk, one line and one COPY buffer. */
static void ingest_ndjson(ingest_t *in)
{
    char *chunk = malloc(INGEST_READ_CHUNK);
    char *pending = malloc(INGEST_LINE_MAX + 1);
    size_t pending_len = 0, got;
    bool too_long = false;
    long line = 0;

    if (chunk == NULL || pending == NULL)
        abort();
    if (ingest_begin(in) == 0) {
        while ((got = request_body_read(in->req, chunk, INGEST_READ_CHUNK)) > 0) {
            for (char *at = chunk, *end = chunk + got; at < end;) {
                char *nl = memchr(at, '\n', (size_t)(end - at));
                size_t n = (size_t)((nl ? nl : end) - at);
                if (!too_long && pending_len + n > INGEST_LINE_MAX)
                    too_long = true;
                if (!too_long)
                    memcpy(pending + pending_len, at, n), pending_len += n;
                at += n;
                if (nl == NULL)
                    break;
                at++; /* the newline */
                if (too_long)
                    ingest_bad(in, ++line, "the line is longer than 1 MiB");
                else
                    ingest_line(in, ++line, pending, pending_len);
                pending_len = 0;
                too_long = false;
            }
        }
        /* A body cut short ends in a fragment, not in a bad line of the client's. */
        bool complete = request_body_complete(in->req);
        if (complete && too_long)
            ingest_bad(in, ++line, "the line is longer than 1 MiB");
        else if (complete && pending_len > 0)
            ingest_line(in, ++line, pending, pending_len);
    }
    free(chunk);
    free(pending);
}

int executions_create(request_t *req, response_t *res, problem_t *p)
{
    const char *type = request_param(req, "CONTENT_TYPE");
    ingest_t in = {.req = req, .p = p};
    int rc = -1;

    if (request_is_type(type, "application/x-ndjson")) {
        sorter_init(&in.sort, INGEST_COPY_FLUSH, INGEST_SORT_RUN);
        ingest_ndjson(&in);
        if (in.began || in.db_failed)
            rc = ingest_end_copy(&in, res);
    } else if (request_is_json_type(type)) {
        sorter_init(&in.sort, INGEST_COPY_FLUSH, 0);
        ingest_json(&in);
        if (in.began || in.db_failed)
            rc = ingest_end_copy(&in, res);
        else if (in.received > 0)
            rc = ingest_end_rows(&in, res);
    } else {
        return problem_set(p, 415,
                           "Executions are sent as application/json (one object or an "
                           "array) or application/x-ndjson (one object per line).");
    }
    request_body_drain(req);
    for (size_t i = 0; in.refs != NULL && i < REFS_SLOTS; i++)
        free(in.refs[i].key);
    free(in.refs);
    free(in.deferred);
    arena_destroy(&in.defer_arena);
    free(in.copy);
    sorter_free(&in.sort);
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
