/* health.c - liveness, readiness and the heartbeats of every group */
#include "health.h"

#include <stdio.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "db.h"
#include "group.h"
#include "json_out.h"
#include "log.h"
#include "metrics.h"

static const struct group *health_groups;
static long health_next_beat_ms; /* monotonic; 0 = at once */

/* One row per group and host: every worker of the group on that host moves
 * it (sql/007_health.sql). The table is UNLOGGED: a beat writes no WAL and
 * its commit waits for no flush. */
static const db_statement_t health_stmt_beat = {
    "health_beat",
    "INSERT INTO group_heartbeats (group_name, host, beat_at) VALUES ($1, $2, now()) "
    "ON CONFLICT (group_name, host) DO UPDATE SET beat_at = excluded.beat_at",
    2, true};

/* The required groups ($1, a text array in their order) as one row: groups
 * (JSON object, name -> "up" or "down"), ready (all up) and down (the names
 * of those down, "a, b"). One statement: it also proves the database answers. */
static const db_statement_t health_stmt_ready = {
    "health_ready",
    "SELECT json_object_agg(name, CASE WHEN up THEN 'up' ELSE 'down' END ORDER BY n) AS groups, "
    "bool_and(up) AS ready, string_agg(name, ', ' ORDER BY n) FILTER (WHERE NOT up) AS down "
    "FROM (SELECT g.name, g.n, coalesce(max(h.beat_at) > now() - make_interval(secs => $2), "
    "false) AS up FROM unnest($1::text[]) WITH ORDINALITY AS g(name, n) "
    "LEFT JOIN group_heartbeats h ON h.group_name = g.name GROUP BY g.name, g.n) AS beats",
    2, true};

static long health_now_ms(void)
{
    struct timespec now;

    clock_gettime(CLOCK_MONOTONIC, &now);
    return (long)now.tv_sec * 1000 + now.tv_nsec / 1000000;
}

void health_configure(const struct group *groups)
{
    health_groups = groups;
}

static const group_t *health_group(const char *name)
{
    for (const group_t *g = health_groups; g != NULL && g->name != NULL; g++)
        if (strcmp(g->name, name) == 0)
            return g;
    return NULL;
}

/* This host's name as the heartbeats and metrics name it. */
static const char *health_host(void)
{
    static char host[256];

    if (host[0] == '\0' && gethostname(host, sizeof(host) - 1) != 0)
        snprintf(host, sizeof(host), "unknown");
    return host;
}

long health_beat(const char *group, arena_t *arena)
{
    const group_t *g = health_group(group);
    long now = health_now_ms();

    if (g == NULL || g->optional)
        return -1;
    if (now < health_next_beat_ms)
        return health_next_beat_ms - now;
    problem_t p = {.arena = arena};
    const char *params[2] = {group, health_host()};
    PGresult *res = db_exec(&health_stmt_beat, params, &p);
    /* the worker's counters go with the beat (not to a database without
     * the heartbeats' table, such as a test's stand-in) */
    if (res != NULL)
        metrics_flush(group, params[1], arena);
    PQclear(res);
    health_next_beat_ms = now + HEALTH_BEAT_EVERY_MS;
    return HEALTH_BEAT_EVERY_MS;
}

void health_last_beat(const char *group, arena_t *arena)
{
    const group_t *g = health_group(group);

    if (g != NULL && !g->optional)
        metrics_flush(group, health_host(), arena);
}

/* The names of the required groups as a PostgreSQL text array, "{a,b}". */
static const char *health_required(arena_t *arena)
{
    const char *list = "{";

    for (const group_t *g = health_groups; g != NULL && g->name != NULL; g++)
        if (!g->optional)
            list = arena_printf(arena, "%s%s%s", list, list[1] != '\0' ? "," : "", g->name);
    return arena_printf(arena, "%s}", list);
}

static int health_live(request_t *req, response_t *res, problem_t *p)
{
    (void)req, (void)p;
    response_json(res, 200, json_pack("{s:s}", "status", "ok"));
    return 0;
}

/* 200 {status: "ready", groups: {name: "up"}}; 503 problem+json naming the
 * groups down, with the same groups member; 503 when the database is down. */
static int health_ready(request_t *req, response_t *res, problem_t *p)
{
    const char *params[2] = {health_required(req->arena),
                             arena_printf(req->arena, "%d", HEALTH_BEAT_STALE_S)};
    PGresult *rows = db_exec(&health_stmt_ready, params, p);
    int rc = -1;

    if (rows == NULL)
        return -1;
    const char *groups = db_get(rows, 0, "groups"), *ready = db_get(rows, 0, "ready");
    json_t *members = groups != NULL ? json_loads(groups, 0, NULL) : json_object();
    if (members == NULL)
        goto done;
    if (ready == NULL || strcmp(ready, "t") == 0) {
        response_json(res, 200, json_pack("{s:s, s:o}", "status", "ready", "groups", members));
        rc = 0;
        goto done;
    }
    problem_fail(p, PROBLEM_UNAVAILABLE,
                 "Not every group serves: %s down (no heartbeat in the last %d s).",
                 db_get(rows, 0, "down"), HEALTH_BEAT_STALE_S);
    p->retry_after = DB_RETRY_AFTER_SECONDS;
    p->members = json_pack("{s:o}", "groups", members);
done:
    PQclear(rows);
    return rc;
}

const route_t health_routes[] = {
    {.method = "GET", .pattern = "/healthz", .handler = health_live, .roles = ROLES_PUBLIC},
    {.method = "GET", .pattern = "/readyz", .handler = health_ready, .roles = ROLES_PUBLIC},
    {.method = NULL},
};
