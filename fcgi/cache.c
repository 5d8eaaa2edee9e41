/* cache.c - a worker's small cache of serialised answers, keyed by id and version */
#include "cache.h"

#include <stdlib.h>
#include <string.h>

typedef struct cache_entry {
    char *id;      /* malloc'ed; NULL = free */
    char *version; /* malloc'ed */
    char *text;    /* malloc'ed */
    size_t len;
    unsigned long used; /* tick of the last hit, for LRU */
} cache_entry_t;

static cache_entry_t cache_entries[CACHE_ENTRIES];
static unsigned long cache_tick;

static cache_entry_t *cache_find(const char *id)
{
    for (int i = 0; i < CACHE_ENTRIES; i++)
        if (cache_entries[i].id != NULL && strcmp(cache_entries[i].id, id) == 0)
            return &cache_entries[i];
    return NULL;
}

static void cache_free(cache_entry_t *e)
{
    free(e->id);
    free(e->version);
    free(e->text);
    memset(e, 0, sizeof(*e));
}

const char *cache_get(arena_t *arena, const char *id, const char *version, size_t *len)
{
    cache_entry_t *e = cache_find(id);

    if (e == NULL || strcmp(e->version, version) != 0)
        return NULL;
    e->used = ++cache_tick;
    *len = e->len;
    return arena_strndup(arena, e->text, e->len);
}

const char *cache_version(arena_t *arena, const char *id)
{
    cache_entry_t *e = cache_find(id);

    return e == NULL ? NULL : arena_strdup(arena, e->version);
}

void cache_put(const char *id, const char *version, const char *text, size_t len)
{
    cache_entry_t *e = cache_find(id);

    if (len > CACHE_MAX_ITEM) {
        if (e != NULL) /* the older version is no longer the one to answer */
            cache_free(e);
        return;
    }
    if (e == NULL) {
        e = &cache_entries[0];
        for (int i = 1; i < CACHE_ENTRIES && e->id != NULL; i++)
            if (cache_entries[i].id == NULL || cache_entries[i].used < e->used)
                e = &cache_entries[i];
    }
    cache_free(e);
    e->id = strdup(id);
    e->version = strdup(version);
    e->text = malloc(len > 0 ? len : 1);
    if (e->id == NULL || e->version == NULL || e->text == NULL) {
        cache_free(e);
        return;
    }
    memcpy(e->text, text, len);
    e->len = len;
    e->used = ++cache_tick;
}

void cache_clear(void)
{
    for (int i = 0; i < CACHE_ENTRIES; i++)
        cache_free(&cache_entries[i]);
}
