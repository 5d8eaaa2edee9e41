/* arena.h - per-request memory: many allocations, one reset */
#ifndef FLEETDASH_ARENA_H
#define FLEETDASH_ARENA_H

#include <stdarg.h>
#include <stddef.h>

typedef struct arena_block arena_block_t;

typedef struct arena {
    arena_block_t *head; /* newest block first; the last one is kept on reset */
} arena_t;

/* Allocates size bytes aligned for any type. Never returns NULL: running out
 * of memory aborts the process (a worker is replaced by its master). The
 * memory lives until arena_reset() or arena_destroy(). */
void *arena_alloc(arena_t *arena, size_t size);

/* Copies a string (or its first len bytes, NUL-terminated) into the arena. */
char *arena_strdup(arena_t *arena, const char *s);
char *arena_strndup(arena_t *arena, const char *s, size_t len);

/* printf into the arena. Never returns NULL. */
char *arena_printf(arena_t *arena, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
char *arena_vprintf(arena_t *arena, const char *fmt, va_list ap);

/* Frees everything allocated since the arena was created, keeping one block
 * for reuse. Every pointer obtained from the arena becomes invalid. */
void arena_reset(arena_t *arena);

/* Frees all memory of the arena; it may be used again afterwards. */
void arena_destroy(arena_t *arena);

#endif
