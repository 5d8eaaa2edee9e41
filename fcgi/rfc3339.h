/* rfc3339.h - RFC 3339 timestamps in and out, as microseconds since the epoch */
#ifndef FLEETDASH_RFC3339_H
#define FLEETDASH_RFC3339_H

#include <stdint.h>

/* Parses "2026-11-21T10:25:39.123456Z" or "...+02:00" (any offset, 't'/'z'
 * and a space in place of 'T' accepted, up to 9 fraction digits, microseconds
 * kept) into microseconds since 1970-01-01T00:00:00Z. Returns 0, or -1 when
 * s is not such a timestamp or names no real date (2026-02-30). */
int rfc3339_parse(const char *s, int64_t *micros);

/* Writes micros as "2026-11-21T10:25:39.123456Z" into buf (>= 32 bytes). */
void rfc3339_format(int64_t micros, char *buf);

/* Now, in microseconds since the epoch. */
int64_t rfc3339_now(void);

#endif
