/* ingest_sort.h - rows of a COPY sent in runs sorted by a key, each run
 * while the next one fills
 *
 * An index entry goes where its key belongs. The rows of a stream whose
 * started_at is scattered over an hour put their entries all over
 * executions' two started_at indexes, and every insert reads other pages;
 * sorted by started_at, consecutive entries land on pages just read.
 * Measured in psql, binary COPY of the same 1,000,000 rows: 8.2-9.3 s as
 * they came, 7.0-7.4 s in sorted runs of 8,192 rows (2 MB), 6.3-6.9 s in
 * runs of 16,384 (4 MB). Through the worker, a scattered stream of 1M rows:
 * 9.0-9.5 s with runs of 2 MiB, 8.4 s with 3 MiB and 8.5 s with 4 MiB
 * (peak resident memory 8.5, 11 and 13.5 MiB). ingest.c uses 2 MiB, which
 * leaves room under the 16 MiB a worker may take for one line of 1 MiB
 * and what its JSON takes to read (about 3 MiB at most, see ingest.c).
 *
 * A run is sent in CopyData messages of `piece` bytes, one for every
 * `piece` bytes the next run takes in, so that the worker and its backend
 * keep working at the same time (a whole run sent at once would make them
 * take turns). Two runs are held: memory is about 2 x `run` bytes.
 * A JSON array (1,000 rows at most) is not sorted: its rows would all wait
 * for the last one, and so would the backend. */
#ifndef FLEETDASH_INGEST_SORT_H
#define FLEETDASH_INGEST_SORT_H

#include <stddef.h>
#include <stdint.h>

#include "../fcgi/problem.h"

typedef struct sort_row {
    int64_t key;
    size_t off, len; /* where the row is in its run's data */
} sort_row_t;

typedef struct sort_run {
    char *data; /* the rows, as they came */
    size_t len, cap;
    sort_row_t *rows; /* in the order they are sent once sorted */
    size_t nrows, rows_cap;
    size_t next; /* the first row not sent yet */
} sort_run_t;

typedef struct copy_sorter {
    size_t piece, run; /* bytes of a CopyData message, and of a run */
    sort_run_t runs[2];
    sort_run_t *fill;  /* taking rows in */
    sort_run_t *drain; /* sorted, being sent */
    size_t paced;      /* bytes of fill a piece of drain was sent for */
    char *out;         /* the message being put together (piece bytes) */
    size_t out_len;
} copy_sorter_t;

/* A sorter of runs of run bytes, sent in messages of piece bytes; with run
 * 0 rows go out as they came, a message whenever piece bytes are held. */
void sorter_init(copy_sorter_t *s, size_t piece, size_t run);

/* Room for one row of up to room bytes at the end of the filling run. */
char *sorter_reserve(copy_sorter_t *s, size_t room);

/* Takes the len bytes written at sorter_reserve() as one row of this key,
 * and sends what is due. Returns 0, or -1 with p filled. */
int sorter_add(copy_sorter_t *s, int64_t key, size_t len, problem_t *p);

/* Sends every row still held: the sorted run, then the filling one
 * sorted. Returns 0, or -1 with p filled. */
int sorter_finish(copy_sorter_t *s, problem_t *p);

void sorter_free(copy_sorter_t *s);

#endif
