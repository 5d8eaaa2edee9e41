/* ingest_sort.c - rows of a COPY sent in runs sorted by a key (see ingest_sort.h) */
#include <stdlib.h>
#include <string.h>

#include "ingest_sort.h"
#include "../fcgi/db.h"

static void *grow(void *p, size_t *cap, size_t need, size_t size)
{
    if (need <= *cap)
        return p;
    size_t n = *cap ? *cap : 1024;
    while (n < need)
        n *= 2;
    if ((p = realloc(p, n * size)) == NULL)
        abort(); /* out of memory: the master replaces the worker */
    *cap = n;
    return p;
}

void sorter_init(copy_sorter_t *s, size_t piece, size_t run)
{
    *s = (copy_sorter_t){.piece = piece, .run = run};
    s->fill = &s->runs[0];
    s->drain = &s->runs[1];
}

char *sorter_reserve(copy_sorter_t *s, size_t room)
{
    sort_run_t *r = s->fill;

    r->data = grow(r->data, &r->cap, r->len + room, 1);
    return r->data + r->len;
}

/* Sends the message put together so far. */
static int put_out(copy_sorter_t *s, problem_t *p)
{
    if (s->out_len == 0)
        return 0;
    int rc = db_copy_put(s->out, s->out_len, p);
    s->out_len = 0;
    return rc;
}

/* Sends rows of r in order, from r->next on, until budget bytes went out
 * or r is empty (then r is reset for reuse). */
static int send_rows(copy_sorter_t *s, sort_run_t *r, size_t budget, problem_t *p)
{
    size_t sent = 0;

    if (s->out == NULL && (s->out = malloc(s->piece)) == NULL)
        abort();
    while (r->next < r->nrows && sent < budget) {
        const sort_row_t *row = &r->rows[r->next++];
        if (s->out_len + row->len > s->piece && put_out(s, p) != 0)
            return -1;
        if (row->len > s->piece) {
            if (db_copy_put(r->data + row->off, row->len, p) != 0)
                return -1;
        } else {
            memcpy(s->out + s->out_len, r->data + row->off, row->len);
            s->out_len += row->len;
        }
        sent += row->len;
    }
    if (put_out(s, p) != 0)
        return -1;
    if (r->next == r->nrows)
        r->len = r->nrows = r->next = 0;
    return 0;
}

static int by_key(const void *a, const void *b)
{
    int64_t x = ((const sort_row_t *)a)->key, y = ((const sort_row_t *)b)->key;
    return (x > y) - (x < y);
}

int sorter_add(copy_sorter_t *s, int64_t key, size_t len, problem_t *p)
{
    sort_run_t *r = s->fill;

    r->rows = grow(r->rows, &r->rows_cap, r->nrows + 1, sizeof(sort_row_t));
    r->rows[r->nrows++] = (sort_row_t){.key = key, .off = r->len, .len = len};
    r->len += len;
    if (s->run == 0) /* no sorting: rows go out as they came */
        return r->len >= s->piece ? send_rows(s, r, SIZE_MAX, p) : 0;
    if (r->len >= s->run) {
        /* the run is full: the one before goes out whole, this one is sorted and drains next */
        if (send_rows(s, s->drain, SIZE_MAX, p) != 0)
            return -1;
        qsort(r->rows, r->nrows, sizeof(sort_row_t), by_key);
        s->fill = s->drain;
        s->drain = r;
        s->paced = 0;
        return 0;
    }
    if (r->len - s->paced >= s->piece) {
        s->paced += s->piece;
        return send_rows(s, s->drain, s->piece, p);
    }
    return 0;
}

int sorter_finish(copy_sorter_t *s, problem_t *p)
{
    if (send_rows(s, s->drain, SIZE_MAX, p) != 0)
        return -1;
    if (s->run > 0)
        qsort(s->fill->rows, s->fill->nrows, sizeof(sort_row_t), by_key);
    s->paced = 0;
    return send_rows(s, s->fill, SIZE_MAX, p);
}

void sorter_free(copy_sorter_t *s)
{
    for (int i = 0; i < 2; i++) {
        free(s->runs[i].data);
        free(s->runs[i].rows);
    }
    free(s->out);
    *s = (copy_sorter_t){0};
}
