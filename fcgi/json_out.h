/* json_out.h - compact JSON text with the shortest exact form of every number */
#ifndef FLEETDASH_JSON_OUT_H
#define FLEETDASH_JSON_OUT_H

#include <jansson.h>
#include <stddef.h>

#include "arena.h"

/* Serialises value compactly into the arena and stores its length in *len.
 * Unlike json_dumps, a real is written with the fewest digits that read back
 * as the same double (0.1, not 0.10000000000000001), so stored configs come
 * back as they were sent. Object members keep their order. Never fails. */
char *json_out(arena_t *arena, const json_t *value, size_t *len);

/* json_out without the length: the text of value, for json parameters. */
const char *json_out_text(arena_t *arena, const json_t *value);

/* Writes the shortest text that reads back as d ("0.1", "1.0", "1e+300")
 * into buf, which has room for at least 32 bytes. Returns its length. */
size_t json_out_real(char *buf, double d);

#endif
