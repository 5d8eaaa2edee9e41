/* health.h - liveness, readiness and the heartbeats of every group */
#ifndef FLEETDASH_HEALTH_H
#define FLEETDASH_HEALTH_H

#include "arena.h"
#include "router.h"

#define HEALTH_BEAT_EVERY_MS 5000 /* each worker of a required group beats this often */
#define HEALTH_BEAT_STALE_S  15   /* a group whose last beat is older is down */

struct group;

/* The rows every route group's table ends with, NULL row included:
 * GET /healthz: the worker answers, without touching the database
 * GET /readyz:  200 when the database answers and every required group
 *               (every group of health_configure's table but the optional
 *               ones) beat within HEALTH_BEAT_STALE_S, on any host; else
 *               503 naming the groups down */
extern const route_t health_routes[];

/* Remembers the table of groups /readyz reports on (borrowed: it must
 * outlive the process). Call it before the workers fork. Cannot fail. */
void health_configure(const struct group *groups);

/* Records a heartbeat of group (one row per group and host in
 * group_heartbeats) when one is due: at once in a new process, then every
 * HEALTH_BEAT_EVERY_MS. An optional group never beats. Returns the
 * milliseconds until the next beat is due, or -1 for a group that never
 * beats. A failed beat is tried again at the next due time (db.c logs
 * why). A beat that went through takes the worker's counters with it
 * (metrics_flush). Must not run inside a transaction. */
long health_beat(const char *group, arena_t *arena);

/* A worker that exits: its counters not yet flushed go to the database
 * (metrics.h), for a group that beats. */
void health_last_beat(const char *group, arena_t *arena);

#endif
