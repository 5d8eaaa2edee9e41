/* ingest_internal.h - what the files of POST /executions share
 *
 * The state of one request, the staging columns, and the functions each
 * file offers:
 *
 *   ingest.c          the handler: a request's flow, its statements and answers
 *   ingest_body.c     JSON and NDJSON bodies read into executions, line by line
 *   ingest_validate.c the rules of an execution, and the row a valid one becomes
 *   ingest_resolve.c  agents and versions resolved per (agent, version) pair
 *   ingest_copy.c     the COPY sink: binary rows into executions, text into staging
 *
 * Everything here lives for one request of one worker: executions_create()
 * frees it at its end. */
#ifndef FLEETDASH_INGEST_INTERNAL_H
#define FLEETDASH_INGEST_INTERNAL_H

#include <jansson.h>
#include <stdbool.h>
#include <stdint.h>

#include "ingest_sort.h"
#include "../fcgi/arena.h"
#include "../fcgi/problem.h"
#include "../fcgi/request.h"

#define INGEST_BAD_LINES_MAX 100 /* bad lines listed in a 422 */
/* Bytes of COPY rows sent as one CopyData message. PostgreSQL reads a whole
 * message before it parses a row of it: with 256 KiB messages the worker and
 * its backend took turns (1,000,000 rows: 23 s, one core idle); with 32 KiB
 * they work at once (12.5 s). */
#define INGEST_COPY_FLUSH (32 * 1024)

/* The columns of execution_staging (sql/004_ingest.sql), in COPY order: a
 * staging row's texts are indexed by these (see ingest_validate_row). */
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
    S_FINISHED_AT,
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
    int64_t evaluated_at;  /* the stamp of rows with a verdict (COPY forms) */
    agent_ref_t *refs;     /* the resolver's table of pairs, or NULL */
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

/* ---------------------------------------------------------------- ingest.c */

/* Opens the transaction (and this session's staging table) of the COPY
 * forms, and learns the stamp of rows with a verdict (in->evaluated_at).
 * Returns 0, or -1 with in->p filled and in->db_failed set. */
int ingest_begin(ingest_t *in);

/* Takes one execution (line is its line or item number): a bad one is
 * listed in in->p (the first INGEST_BAD_LINES_MAX), a good one goes where
 * it is stored as long as no line was bad. Works in in->line_arena, which
 * the caller resets after it. */
void ingest_take(ingest_t *in, long line, const json_t *e);

/* Takes a line or item that is not an execution at all: counted, and
 * listed under "body" with message. */
void ingest_take_bad(ingest_t *in, long line, const char *message);

/* ---------------------------------------------------------------- ingest_body.c */

/* Reads a JSON body: one object, or an array of 1 to 1,000; each item to
 * ingest_take(). Arrays of 50 or more are COPYed (ingest_begin); smaller
 * bodies collect their rows in in->rows. A body that cannot be read leaves
 * its problem in in->p and takes nothing. */
void ingest_body_json(ingest_t *in);

/* Reads an NDJSON body chunk by chunk, each complete line to ingest_take()
 * as it comes, in the transaction ingest_begin() opens. Memory stays at one
 * chunk, one line and the COPY buffers. A body cut short ends in a fragment
 * that is not taken. */
void ingest_body_ndjson(ingest_t *in);

/* ---------------------------------------------------------------- ingest_validate.c */

/* The whole check of one execution: every bad field into p (its arena
 * holds the messages). When p holds no field afterwards, *started is
 * started_at in microseconds and *latency latency_ms (given, or worked out
 * from finished_at). */
void ingest_validate_execution(const json_t *e, problem_t *p, int64_t *started, long long *latency);

/* When an execution that started at started (microseconds) and took
 * latency_ms ended, in microseconds: the finished_at every ingest path
 * stores (the client's own finished_at only gives latency_ms, in whole
 * milliseconds). */
int64_t ingest_finished_at(int64_t started, long long latency_ms);

/* The staging columns of a valid execution (line is its line or item
 * number) as text, NULL for SQL NULL, in arena; the id (the client's in
 * lower case, or a new UUIDv7) also goes to id. */
void ingest_validate_row(arena_t *arena, long line, const json_t *e, int64_t started,
                         long long latency, char id[37], const char *cols[STAGING_COLUMNS]);

/* ---------------------------------------------------------------- ingest_resolve.c */

/* Sends a valid row of the COPY forms where it goes (see enum copy_target):
 * straight into executions once its (agent, version) pair is resolved,
 * waiting with others until then, or, from a client id or one pair too many
 * on, into the staging table. cols is copied where the row waits. Failures
 * set in->db_failed with in->p filled. */
void ingest_resolve_row(ingest_t *in, long line, const char *const cols[STAGING_COLUMNS],
                        int64_t started, long long latency);

/* Resolves every pair the waiting rows need, in one statement (the open
 * COPY ends for it), and COPYs those rows. Returns 0, or -1 with in->p
 * filled and in->db_failed set. */
int ingest_resolve_deferred(ingest_t *in);

/* Frees what the resolver holds. */
void ingest_resolve_free(ingest_t *in);

/* ---------------------------------------------------------------- ingest_copy.c */

/* COPYs one row straight into executions (opening that COPY if another
 * is open), in the binary format, with the agent and version r resolved.
 * cols are the worker's own texts (validated, or written by
 * ingest_validate_row), so every number and UUID among them converts.
 * Failures set in->db_failed with in->p filled. */
void ingest_copy_direct(ingest_t *in, const char *const cols[STAGING_COLUMNS], const agent_ref_t *r,
                        int64_t started, long long latency);

/* COPYs one row into the staging table (opening that COPY if another is
 * open), as text; buffered, sent every INGEST_COPY_FLUSH bytes. Failures
 * set in->db_failed with in->p filled. */
void ingest_copy_staging(ingest_t *in, const char *const cols[STAGING_COLUMNS]);

/* Ends the open COPY, if any, with what is still buffered, and checks
 * that the database took every row sent. Returns 0, or -1 with in->p
 * filled and in->db_failed set. */
int ingest_copy_close(ingest_t *in);

/* Frees the COPY buffers. */
void ingest_copy_free(ingest_t *in);

#endif
