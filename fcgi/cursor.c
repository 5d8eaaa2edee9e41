/* cursor.c - opaque keyset-pagination cursors: the sort key of the last row */
#include "cursor.h"

#include <string.h>

#define CURSOR_SEPARATOR '\x1f' /* ASCII unit separator: never in a key */

static const char base64url[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";

const char *cursor_encode(arena_t *arena, const char *const *parts, size_t nparts)
{
    size_t len = 0;

    for (size_t i = 0; i < nparts; i++)
        len += strlen(parts[i]) + 1;
    unsigned char *raw = arena_alloc(arena, len + 1);
    size_t n = 0;
    for (size_t i = 0; i < nparts; i++) {
        size_t plen = strlen(parts[i]);
        memcpy(raw + n, parts[i], plen);
        n += plen;
        if (i + 1 < nparts)
            raw[n++] = CURSOR_SEPARATOR;
    }
    char *out = arena_alloc(arena, (n + 2) / 3 * 4 + 1);
    size_t o = 0;
    for (size_t i = 0; i < n; i += 3) {
        unsigned v = (unsigned)raw[i] << 16;
        if (i + 1 < n)
            v |= (unsigned)raw[i + 1] << 8;
        if (i + 2 < n)
            v |= raw[i + 2];
        out[o++] = base64url[(v >> 18) & 63];
        out[o++] = base64url[(v >> 12) & 63];
        if (i + 1 < n)
            out[o++] = base64url[(v >> 6) & 63];
        if (i + 2 < n)
            out[o++] = base64url[v & 63];
    }
    out[o] = '\0';
    return out;
}

int cursor_decode(arena_t *arena, const char *token, const char **parts, size_t nparts)
{
    size_t len = strlen(token);
    char *raw = arena_alloc(arena, len + 1);
    size_t n = 0;
    unsigned v = 0;
    int bits = 0;

    if (len == 0 || len % 4 == 1)
        return -1;
    for (size_t i = 0; i < len; i++) {
        const char *at = memchr(base64url, token[i], 64);
        if (at == NULL || token[i] == '\0')
            return -1;
        v = (v << 6) | (unsigned)(at - base64url);
        bits += 6;
        if (bits >= 8) {
            bits -= 8;
            raw[n++] = (char)((v >> bits) & 0xff);
        }
    }
    raw[n] = '\0';
    if (memchr(raw, '\0', n) != NULL)
        return -1;
    for (size_t i = 0; i < nparts; i++) {
        char *sep = strchr(raw, CURSOR_SEPARATOR);
        if ((sep == NULL) != (i + 1 == nparts))
            return -1;
        if (sep != NULL)
            *sep = '\0';
        parts[i] = raw;
        raw = sep ? sep + 1 : raw + strlen(raw);
    }
    return 0;
}
