/* etag.h - versions as entity tags: ETag, If-Match and If-None-Match */
#ifndef FLEETDASH_ETAG_H
#define FLEETDASH_ETAG_H

#include <stdbool.h>

#include "arena.h"
#include "request.h"

/* A resource whose writes carry a version (a positive integer that every
 * change bumps) is tagged with it: ETag "3", or W/"3" for an answer that
 * holds more than the versioned resource (its data). Compression turns a
 * strong tag weak, so both forms are accepted in the request headers. */

/* The ETag of version: "\"3\"", or "W/\"3\"" when weak. In the arena. */
const char *etag_of(arena_t *arena, const char *version, bool weak);

/* The version an If-Match header asks for, as a statement parameter: NULL
 * for no header (header NULL) or "*", "0" (a version that never matches)
 * when it names no version we could have made. In the arena. */
const char *etag_if_match_version(arena_t *arena, const char *header);

/* etag_if_match_version of the request's If-Match header. */
const char *etag_if_match(const request_t *req);

/* True if an If-None-Match header names version (strong or weak) or is "*".
 * header may be NULL (false). */
bool etag_if_none_match(const char *header, const char *version);

#endif
