/* cache.h - a worker's small cache of serialised answers, keyed by id and version */
#ifndef FLEETDASH_CACHE_H
#define FLEETDASH_CACHE_H

#include <stddef.h>

#include "arena.h"

/* The cache never decides freshness: the caller learns the current version
 * from the database on every request and asks for exactly that version, so a
 * hit is always the current representation (read-your-writes holds across
 * workers). An id is any string (a dashboard id; an aggregate query), a
 * version any string (a dashboard's version; a snapshot token). Entries are
 * replaced least-recently-used first. */

/* The bytes cached for (id, version), copied into the arena, or NULL. *len
 * gets their length. */
const char *cache_get(arena_t *arena, const char *id, const char *version, size_t *len);

/* The version held for id, copied into the arena, or NULL. */
const char *cache_version(arena_t *arena, const char *id);

/* Stores a copy of text as (id, version), replacing any older version of id.
 * Texts larger than CACHE_MAX_ITEM are not kept (and the older version is
 * dropped all the same). Never fails: when memory is
 * short the text is simply not cached. */
void cache_put(const char *id, const char *version, const char *text, size_t len);

/* Empties the cache and frees its memory. */
void cache_clear(void);

#define CACHE_ENTRIES  64
#define CACHE_MAX_ITEM (256 * 1024)

#endif
