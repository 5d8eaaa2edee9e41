/* cache.c - a worker's small cache of serialised resources, keyed by id and version */
#include "cache.h"

#include <stdlib.h>
#include <string.h>

typedef struct cache_entry {
    char id[40]; /* a UUID and its NUL; "" = free */
    long version;
    char *text; /* malloc'ed */
    size_t len;
    unsigned long used; /* tick of the last hit, for LRU */
} cache_entry_t;

static cache_entry_t cache_entries[CACHE_ENTRIES];
static unsigned long cache_tick;

static cache_entry_t *cache_find(const char *id)
{
    for (int i = 0; i < CACHE_ENTRIES; i++)
        if (strcmp(cache_entries[i].id, id) == 0)
            return &cache_entries[i];
    return NULL;
}

const char *cache_get(arena_t *arena, const char *id, long version, size_t *len)
{
    cache_entry_t *e = cache_find(id);

    if (e == NULL || e->version != version)
        return NULL;
    e->used = ++cache_tick;
    *len = e->len;
    return arena_strndup(arena, e->text, e->len);
}

void cache_put(const char *id, long version, const char *text, size_t len)
{
    cache_entry_t *e = cache_find(id);

    if (strlen(id) >= sizeof(e->id) || len > CACHE_MAX_ITEM)
        return;
    if (e == NULL) {
        e = &cache_entries[0];
        for (int i = 1; i < CACHE_ENTRIES && e->id[0] != '\0'; i++)
            if (cache_entries[i].id[0] == '\0' || cache_entries[i].used < e->used)
                e = &cache_entries[i];
    }
    char *copy = malloc(len);
    if (copy == NULL)
        return;
    memcpy(copy, text, len);
    free(e->text);
    strcpy(e->id, id);
    e->version = version;
    e->text = copy;
    e->len = len;
    e->used = ++cache_tick;
}

void cache_clear(void)
{
    for (int i = 0; i < CACHE_ENTRIES; i++)
        free(cache_entries[i].text);
    memset(cache_entries, 0, sizeof(cache_entries));
}
