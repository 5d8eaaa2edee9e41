/* cors.c - a browser's preflight from an allowed origin (CORS): which origins are allowed is
 * nginx's (nginx.conf, "Browsers on other origins"), the methods of a path are the route tables' */
#include "cors.h"

#include <string.h>

#include "arena.h"
#include "health.h"

static const group_t *cors_groups;

void cors_configure(const group_t *groups)
{
    cors_groups = groups;
}

/* Adds method to the comma-separated list in buf unless it is there. */
static void cors_add(char *buf, size_t size, const char *method)
{
    size_t len = strlen(method);

    for (const char *at = buf; (at = strstr(at, method)) != NULL; at += len)
        if ((at == buf || at[-1] == ' ') && (at[len] == ',' || at[len] == '\0'))
            return;
    if (strlen(buf) + len + 3 > size)
        return;
    if (buf[0] != '\0')
        strcat(buf, ", ");
    strcat(buf, method);
}

/* Adds the methods of table's routes that match path. */
static void cors_methods_of(const route_t *table, const char *path, char *buf, size_t size)
{
    for (const route_t *r = table; r->method != NULL; r++) {
        if (!route_matches(r, path))
            continue;
        cors_add(buf, size, r->method);
        if (strcmp(r->method, "GET") == 0)
            cors_add(buf, size, "HEAD");
    }
}

bool cors_preflight(request_t *req, response_t *res, problem_t *p)
{
    const char *origin = request_param(req, "FLEETDASH_CORS_ORIGIN");
    char methods[128] = "";

    if (strcmp(req->method, "OPTIONS") != 0 || origin == NULL || origin[0] == '\0' ||
        request_param(req, "HTTP_ACCESS_CONTROL_REQUEST_METHOD") == NULL)
        return false;
    cors_methods_of(health_routes, req->path, methods, sizeof(methods));
    for (const group_t *g = cors_groups; g != NULL && g->name != NULL; g++)
        for (const route_t *const *t = g->routes; t != NULL && *t != NULL; t++)
            cors_methods_of(*t, req->path, methods, sizeof(methods));
    if (methods[0] == '\0') {
        problem_fail(p, PROBLEM_NOT_FOUND, "There is nothing at %s.", req->path);
        return true;
    }
    res->status = 204;
    res->cors_methods = arena_strdup(req->arena, methods);
    return true;
}
