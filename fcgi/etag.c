/* etag.c - versions as entity tags: ETag, If-Match and If-None-Match */
#include "etag.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define ETAG_VERSION_MAX 2147483647L /* the versions are SQL integers */

const char *etag_of(arena_t *arena, const char *version, bool weak)
{
    return arena_printf(arena, "%s\"%s\"", weak ? "W/" : "", version);
}

const char *etag_if_match_version(arena_t *arena, const char *header)
{
    const char *h = header;
    char *end;

    if (h == NULL)
        return NULL;
    while (*h == ' ')
        h++;
    if (strcmp(h, "*") == 0)
        return NULL;
    if (strncmp(h, "W/", 2) == 0)
        h += 2;
    if (*h != '"')
        return "0";
    long v = strtol(h + 1, &end, 10);
    if (end == h + 1 || *end != '"' || v < 1 || v > ETAG_VERSION_MAX)
        return "0";
    return arena_printf(arena, "%ld", v);
}

const char *etag_if_match(const request_t *req)
{
    return etag_if_match_version(req->arena, request_param(req, "HTTP_IF_MATCH"));
}

bool etag_if_none_match(const char *header, const char *version)
{
    char tag[32];

    if (header == NULL)
        return false;
    if (strstr(header, "*") != NULL)
        return true;
    snprintf(tag, sizeof(tag), "\"%s\"", version);
    for (const char *at = strstr(header, tag); at != NULL; at = strstr(at + 1, tag))
        if (at == header || at[-1] == ' ' || at[-1] == ',' || at[-1] == '/')
            return true;
    return false;
}
