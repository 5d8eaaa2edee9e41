/* cursor.h - opaque keyset-pagination cursors: the sort key of the last row */
#ifndef FLEETDASH_CURSOR_H
#define FLEETDASH_CURSOR_H

#include <stddef.h>

#include "arena.h"

/* Encodes nparts strings (the sort key of the last row of a page) as one
 * URL-safe token. Never fails; the token lives in the arena. */
const char *cursor_encode(arena_t *arena, const char *const *parts, size_t nparts);

/* Decodes a token made by cursor_encode with exactly nparts parts into
 * parts[]. Returns 0, or -1 when the token is not one of ours. */
int cursor_decode(arena_t *arena, const char *token, const char **parts, size_t nparts);

#endif
