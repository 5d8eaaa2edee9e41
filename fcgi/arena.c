/* arena.c - per-request memory: many allocations, one reset */
#include "arena.h"

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define ARENA_BLOCK_SIZE (64 * 1024) /* one block holds a typical request */
#define ARENA_ALIGN      16

struct arena_block {
    arena_block_t *next;
    size_t size; /* usable bytes in data */
    size_t used;
    _Alignas(ARENA_ALIGN) unsigned char data[];
};

static arena_block_t *arena_new_block(size_t min_size)
{
    size_t size = min_size > ARENA_BLOCK_SIZE ? min_size : ARENA_BLOCK_SIZE;
    arena_block_t *block = malloc(sizeof(*block) + size);

    if (block == NULL) {
        fprintf(stderr, "level=fatal msg=\"out of memory allocating %zu bytes\"\n", size);
        abort();
    }
    block->next = NULL;
    block->size = size;
    block->used = 0;
    return block;
}

void *arena_alloc(arena_t *arena, size_t size)
{
    size_t aligned = (size + ARENA_ALIGN - 1) & ~(size_t)(ARENA_ALIGN - 1);
    arena_block_t *block = arena->head;

    if (aligned == 0)
        aligned = ARENA_ALIGN;
    if (block == NULL || block->size - block->used < aligned) {
        block = arena_new_block(aligned);
        block->next = arena->head;
        arena->head = block;
    }
    void *p = block->data + block->used;
    block->used += aligned;
    return p;
}

char *arena_strndup(arena_t *arena, const char *s, size_t len)
{
    char *copy = arena_alloc(arena, len + 1);

    memcpy(copy, s, len);
    copy[len] = '\0';
    return copy;
}

char *arena_strdup(arena_t *arena, const char *s)
{
    return arena_strndup(arena, s, strlen(s));
}

char *arena_vprintf(arena_t *arena, const char *fmt, va_list ap)
{
    va_list copy;
    char small[256];

    va_copy(copy, ap);
    int len = vsnprintf(small, sizeof(small), fmt, copy);
    va_end(copy);
    if (len < 0)
        return arena_strdup(arena, "");
    char *out = arena_alloc(arena, (size_t)len + 1);
    if ((size_t)len < sizeof(small))
        memcpy(out, small, (size_t)len + 1);
    else
        vsnprintf(out, (size_t)len + 1, fmt, ap);
    return out;
}

char *arena_printf(arena_t *arena, const char *fmt, ...)
{
    va_list ap;

    va_start(ap, fmt);
    char *out = arena_vprintf(arena, fmt, ap);
    va_end(ap);
    return out;
}

void arena_reset(arena_t *arena)
{
    arena_block_t *block = arena->head;

    if (block == NULL)
        return;
    /* Keep the oldest standard-size block: the common request fits in it. */
    while (block->next != NULL) {
        arena_block_t *next = block->next;
        free(block);
        block = next;
    }
    block->used = 0;
    arena->head = block;
}

void arena_destroy(arena_t *arena)
{
    arena_block_t *block = arena->head;

    while (block != NULL) {
        arena_block_t *next = block->next;
        free(block);
        block = next;
    }
    arena->head = NULL;
}
