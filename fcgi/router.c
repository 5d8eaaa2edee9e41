/* router.c - routes are rows of a static table: method, path pattern, handler */
#include "router.h"

#include <string.h>

/* Matches path against pattern segment by segment. Returns the number of
 * captures (>= 0) on a match, -1 otherwise; fills captures when non-NULL. */
static int route_pattern_match(arena_t *arena, const char *pattern, const char *path,
                               const char **captures)
{
    int ncaptures = 0;

    while (*pattern == '/' && *path == '/') {
        pattern++, path++;
        size_t plen = strcspn(pattern, "/");
        size_t slen = strcspn(path, "/");
        if (plen > 0 && pattern[0] == '{') {
            if (slen == 0 || ncaptures == REQUEST_MAX_CAPTURES)
                return -1;
            if (captures != NULL)
                captures[ncaptures] = arena_strndup(arena, path, slen);
            ncaptures++;
        } else if (plen != slen || strncmp(pattern, path, plen) != 0) {
            return -1;
        }
        pattern += plen, path += slen;
    }
    return (*pattern == '\0' && *path == '\0') ? ncaptures : -1;
}

bool route_matches(const route_t *route, const char *path)
{
    return route_pattern_match(NULL, route->pattern, path, NULL) >= 0;
}

static bool route_method_is(const route_t *r, const char *method)
{
    return strcmp(r->method, method) == 0 ||
           (strcmp(method, "HEAD") == 0 && strcmp(r->method, "GET") == 0);
}

const route_t *route_match(const route_t *table, request_t *req, problem_t *p)
{
    const route_t *best = NULL;
    int best_captures = REQUEST_MAX_CAPTURES + 1;

    for (const route_t *r = table; r->method != NULL; r++) {
        int n = route_pattern_match(NULL, r->pattern, req->path, NULL);
        if (n >= 0 && n < best_captures) {
            best = r;
            best_captures = n;
        }
    }
    if (best == NULL) {
        problem_fail(p, PROBLEM_NOT_FOUND, "There is nothing at %s.", req->path);
        return NULL;
    }
    char allow[64] = "";
    for (const route_t *r = table; r->method != NULL; r++) {
        if (strcmp(r->pattern, best->pattern) != 0)
            continue;
        if (route_method_is(r, req->method)) {
            req->ncaptures =
                (size_t)route_pattern_match(req->arena, r->pattern, req->path, req->captures);
            req->route_arg = r->arg;
            return r;
        }
        if (strlen(allow) + strlen(r->method) + 3 < sizeof(allow)) {
            if (allow[0] != '\0')
                strcat(allow, ", ");
            strcat(allow, r->method);
        }
    }
    problem_fail(p, PROBLEM_METHOD_NOT_ALLOWED, "%s is not allowed on %s.", req->method, req->path);
    p->allow = arena_strdup(p->arena, allow);
    return NULL;
}
