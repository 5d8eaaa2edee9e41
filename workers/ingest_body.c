/* ingest_body.c - the bodies of POST /executions: a JSON object or array, NDJSON by line */
#include <stdlib.h>
#include <string.h>

#include "ingest_internal.h"
#include "../fcgi/json_in.h"
#include "../fcgi/worker.h"

#define INGEST_BATCH_MAX  1000              /* items of one JSON array */
#define INGEST_COPY_MIN   50                /* arrays this long are COPYed */
#define INGEST_JSON_LIMIT (4 * 1024 * 1024) /* a JSON body (object or array) */
#define INGEST_LINE_MAX   (1024 * 1024)     /* one NDJSON line */
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

/* One object, or an array of up to INGEST_BATCH_MAX of them. An array of
 * INGEST_COPY_MIN or more goes the NDJSON way, through COPY and the staging
 * table: per row that costs the worker and PostgreSQL less than one JSON
 * parameter, and its four round trips no longer matter. */
void ingest_body_json(ingest_t *in)
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
                    ingest_take(in, (long)i + 1, e);
                else
                    ingest_take_bad(in, (long)i + 1, "must be a JSON object");
                arena_reset(&in->line_arena);
            }
        } else if (json_is_object(body)) {
            ingest_take(in, 1, body);
        } else {
            ingest_take_bad(in, 1, "must be a JSON object or an array of them");
        }
    }
    json_decref(body);
}

/* Parses one NDJSON line (without its newline) in the line arena. */
static void body_line(ingest_t *in, long line, char *text, size_t len)
{
    json_error_t jerr;

    while (len > 0 && (text[len - 1] == '\r' || text[len - 1] == ' ' || text[len - 1] == '\t'))
        len--;
    size_t start = strspn(text, " \t");
    if (start >= len)
        return; /* blank lines are allowed */
    if (len - start > INGEST_LINE_SHORT &&
        json_in_separators(text + start, len - start) > INGEST_LINE_SEPARATORS_MAX) {
        ingest_take_bad(in, line,
                        "has far more values than an execution (metadata has at most 50 members)");
        return;
    }
    arena_t *previous = worker_json_arena_swap(&in->line_arena);
    json_t *e = json_in_object(text + start, len - start); /* the common shape, fast */
    if (e == NULL)
        e = json_loadb(text + start, len - start, JSON_REJECT_DUPLICATES, &jerr);
    if (e == NULL)
        ingest_take_bad(in, line,
                        arena_printf(in->p->arena, "malformed JSON at column %d: %s",
                                     jerr.column + (int)start, jerr.text));
    else if (!json_is_object(e))
        ingest_take_bad(in, line, "must be a JSON object");
    else
        ingest_take(in, line, e);
    if (worker_json_on_malloc())
        json_decref(e); /* else the line arena's reset frees it */
    worker_json_arena_swap(previous);
    arena_reset(&in->line_arena);
}

void ingest_body_ndjson(ingest_t *in)
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
                    ingest_take_bad(in, ++line, "the line is longer than 1 MiB");
                else
                    body_line(in, ++line, pending, pending_len);
                pending_len = 0;
                too_long = false;
            }
        }
        /* A body cut short ends in a fragment, not in a bad line of the client's. */
        bool complete = request_body_complete(in->req);
        if (complete && too_long)
            ingest_take_bad(in, ++line, "the line is longer than 1 MiB");
        else if (complete && pending_len > 0)
            body_line(in, ++line, pending, pending_len);
    }
    free(chunk);
    free(pending);
}
