/* uuid.h - version 7 UUIDs: time-ordered ids the worker makes itself */
#ifndef FLEETDASH_UUID_H
#define FLEETDASH_UUID_H

/* Writes a new version 7 UUID (RFC 9562) in its 36-character text form
 * and a NUL to out: 48 bits of Unix milliseconds, the version and variant
 * bits, 74 random bits. Ids made in a later millisecond sort after earlier
 * ones, as text and as PostgreSQL uuids, so new rows land at the end of an
 * index on them. Cannot fail: if the kernel's random source does, the
 * process aborts (the master replaces a worker). Random bits are drawn
 * from a per-process pool filled on the first call: a process that forks
 * must not call it before, or its children would share their bits. */
void uuid_v7(char out[37]);

#endif
