/* metrics.c - a worker's counters for GET /metrics: requests per method, route and status with a
 * latency histogram, and named counters, kept in the process and added to the database's every
 * 5 s (metrics_flush() of sql/functions/28_metrics.sql), where every worker of every host meets */
#include "metrics.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "db.h"
#include "log.h"

/* The bucket bounds of sql/functions/28_metrics.sql's metrics_bounds(), in
 * seconds; a request past the last counts in one more bucket. */
static const double metrics_bounds[] = {0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1,
                                        0.25,  0.5,    1,     2.5,  5,     10};
#define METRICS_BUCKETS  (sizeof(metrics_bounds) / sizeof(metrics_bounds[0]) + 1)
#define METRICS_ROWS     512 /* method x route x status rows; more are folded into "other" */
#define METRICS_COUNTERS 16

typedef struct metrics_row {
    const char *method, *route;
    int status;
    long long count;
    double sum;
    long long buckets[METRICS_BUCKETS];
} metrics_row_t;

typedef struct metrics_counter {
    const char *name;
    double value;
} metrics_counter_t;

static metrics_row_t metrics_rows[METRICS_ROWS];
static int metrics_nrows;
static metrics_counter_t metrics_counters[METRICS_COUNTERS];
static int metrics_ncounters;

static const char *const metrics_methods[] = {"GET",   "HEAD",   "POST",    "PUT",
                                              "PATCH", "DELETE", "OPTIONS", NULL};

/* The method as a label: one of the HTTP methods the API knows, else OTHER
 * (a client cannot make up series). */
static const char *metrics_method(const char *method)
{
    for (const char *const *m = metrics_methods; *m != NULL; m++)
        if (method != NULL && strcmp(*m, method) == 0)
            return *m;
    return "OTHER";
}

void metrics_request(const char *method, const char *route, int status, double seconds)
{
    const char *m = metrics_method(method);
    const char *r = route != NULL ? route : "unmatched";
    metrics_row_t *row = NULL;

    if (status < 100 || status > 599)
        status = 500;
    for (int i = 0; i < metrics_nrows && row == NULL; i++)
        if (metrics_rows[i].status == status && strcmp(metrics_rows[i].route, r) == 0 &&
            metrics_rows[i].method == m)
            row = &metrics_rows[i];
    if (row == NULL && metrics_nrows == METRICS_ROWS) {
        /* full: the last row gathers the rest */
        row = &metrics_rows[METRICS_ROWS - 1];
        row->method = "OTHER", row->route = "other", row->status = 0;
    } else if (row == NULL) {
        row = &metrics_rows[metrics_nrows++];
        *row = (metrics_row_t){.method = m, .route = r, .status = status};
    }
    size_t b = 0;
    while (b < METRICS_BUCKETS - 1 && seconds > metrics_bounds[b])
        b++;
    row->count++;
    row->sum += seconds;
    row->buckets[b]++;
    metrics_add("busy_seconds", seconds);
}

void metrics_add(const char *name, double value)
{
    for (int i = 0; i < metrics_ncounters; i++)
        if (strcmp(metrics_counters[i].name, name) == 0) {
            metrics_counters[i].value += value;
            return;
        }
    if (metrics_ncounters < METRICS_COUNTERS)
        metrics_counters[metrics_ncounters++] = (metrics_counter_t){.name = name, .value = value};
}

/* Appends s to f as an element of a PostgreSQL array literal (quoted). */
static void metrics_element(FILE *f, bool first, const char *s)
{
    fputs(first ? "\"" : ",\"", f);
    for (; *s != '\0'; s++) {
        if (*s == '"' || *s == '\\')
            fputc('\\', f);
        fputc(*s, f);
    }
    fputc('"', f);
}

/* The array literal of one column of the rows (or counters), in the arena. */
static const char *metrics_array(arena_t *arena, int column)
{
    char *text = NULL;
    size_t len = 0;
    FILE *f = open_memstream(&text, &len);

    if (f == NULL)
        return NULL;
    fputc('{', f);
    bool first = true;
    for (int i = 0; i < metrics_nrows; i++) {
        const metrics_row_t *r = &metrics_rows[i];
        switch (column) {
        case 0: metrics_element(f, first, r->method); break;
        case 1: metrics_element(f, first, r->route); break;
        case 2: fprintf(f, "%s%d", first ? "" : ",", r->status); break;
        case 3: fprintf(f, "%s%lld", first ? "" : ",", r->count); break;
        case 4: fprintf(f, "%s%.17g", first ? "" : ",", r->sum); break;
        case 5:
            for (size_t b = 0; b < METRICS_BUCKETS; b++)
                fprintf(f, "%s%lld", first && b == 0 ? "" : ",", r->buckets[b]);
            break;
        }
        first = false;
    }
    for (int i = 0; column >= 6 && i < metrics_ncounters; i++) {
        if (column == 6)
            metrics_element(f, i == 0, metrics_counters[i].name);
        else
            fprintf(f, "%s%.17g", i == 0 ? "" : ",", metrics_counters[i].value);
    }
    fputc('}', f);
    fclose(f);
    const char *copy = arena_strdup(arena, text);
    free(text);
    return copy;
}

static const db_statement_t metrics_stmt_flush = {
    "metrics_flush",
    "SELECT metrics_flush($1, $2, $3::integer, $4::text[], $5::text[], $6::integer[], "
    "$7::bigint[], $8::double precision[], $9::bigint[], $10::text[], "
    "$11::double precision[])",
    11, false};

void metrics_flush(const char *group, const char *host, arena_t *arena)
{
    problem_t p = {.arena = arena};
    const char *params[11] = {group, host, arena_printf(arena, "%d", (int)getpid())};

    for (int c = 0; c < 8; c++)
        if ((params[3 + c] = metrics_array(arena, c)) == NULL)
            return;
    PGresult *res = db_exec(&metrics_stmt_flush, params, &p);
    if (res == NULL)
        return; /* counted again at the next flush */
    PQclear(res);
    metrics_nrows = 0;
    for (int i = 0; i < metrics_ncounters; i++)
        metrics_counters[i].value = 0;
}
