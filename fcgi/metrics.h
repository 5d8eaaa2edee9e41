/* metrics.h - a worker's counters for GET /metrics, flushed to the database with its heartbeat */
#ifndef FLEETDASH_METRICS_H
#define FLEETDASH_METRICS_H

#include <stdbool.h>

#include "arena.h"

/* Counts one answered request: its method and route (the route's pattern,
 * NULL for a path no route has: "unmatched"), status and duration. Both
 * strings must outlive the process (route tables, literals). */
void metrics_request(const char *method, const char *route, int status, double seconds);

/* Adds value to the counter name (a literal): busy_seconds,
 * database_errors, ingested_rows, worker_restarts, evaluator_cycles,
 * evaluator_seconds (sql/functions/28_metrics.sql names them). */
void metrics_add(const char *name, double value);

/* Adds what was counted since the last flush to the database
 * (metrics_flush(), sql/functions/28_metrics.sql), in one statement, and
 * starts counting afresh; on failure keeps it for the next flush. Called
 * with the heartbeat (health_beat, every 5 s) and when a worker exits. */
void metrics_flush(const char *group, const char *host, arena_t *arena);

#endif
