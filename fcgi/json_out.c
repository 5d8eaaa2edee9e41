/* json_out.c - compact JSON text with the shortest exact form of every number */
#include "json_out.h"

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

typedef struct json_buffer {
    arena_t *arena;
    char *data;
    size_t len;
    size_t cap;
} json_buffer_t;

static void put(json_buffer_t *b, const char *s, size_t n)
{
    if (b->len + n + 1 > b->cap) {
        size_t cap = b->cap ? b->cap * 2 : 4096;
        while (cap < b->len + n + 1)
            cap *= 2;
        char *grown = arena_alloc(b->arena, cap);
        if (b->len > 0)
            memcpy(grown, b->data, b->len);
        b->data = grown;
        b->cap = cap;
    }
    memcpy(b->data + b->len, s, n);
    b->len += n;
    b->data[b->len] = '\0';
}

size_t json_out_real(char *buf, double d)
{
    int n = 0;

    for (int precision = 15; precision <= 17; precision++) {
        n = snprintf(buf, 32, "%.*g", precision, d);
        if (strtod(buf, NULL) == d)
            break;
    }
    if (strpbrk(buf, ".eEn") == NULL) { /* keep it a real: 1 -> 1.0 */
        memcpy(buf + n, ".0", 3);
        n += 2;
    }
    return (size_t)n;
}

static void put_string(json_buffer_t *b, const char *s, size_t n)
{
    static const char hex[] = "0123456789abcdef";
    size_t run = 0;

    put(b, "\"", 1);
    for (size_t i = 0; i < n; i++) {
        unsigned char c = (unsigned char)s[i];
        if (c >= 0x20 && c != '"' && c != '\\')
            continue;
        put(b, s + run, i - run);
        run = i + 1;
        char esc[7] = {'\\', (char)c, 0};
        switch (c) {
        case '"':
        case '\\': put(b, esc, 2); break;
        case '\n': put(b, "\\n", 2); break;
        case '\r': put(b, "\\r", 2); break;
        case '\t': put(b, "\\t", 2); break;
        default:
            memcpy(esc, "\\u00", 4);
            esc[4] = hex[c >> 4];
            esc[5] = hex[c & 15];
            put(b, esc, 6);
        }
    }
    put(b, s + run, n - run);
    put(b, "\"", 1);
}

static void put_value(json_buffer_t *b, const json_t *v)
{
    char num[40];
    const char *key;
    json_t *member;
    size_t i;

    switch (json_typeof(v)) {
    case JSON_OBJECT:
        put(b, "{", 1);
        i = 0;
        json_object_foreach ((json_t *)v, key, member) {
            if (i++ > 0)
                put(b, ",", 1);
            put_string(b, key, strlen(key));
            put(b, ":", 1);
            put_value(b, member);
        }
        put(b, "}", 1);
        break;
    case JSON_ARRAY:
        put(b, "[", 1);
        json_array_foreach (v, i, member) {
            if (i > 0)
                put(b, ",", 1);
            put_value(b, member);
        }
        put(b, "]", 1);
        break;
    case JSON_STRING: put_string(b, json_string_value(v), json_string_length(v)); break;
    case JSON_INTEGER:
        put(b, num,
            (size_t)snprintf(num, sizeof(num), "%" JSON_INTEGER_FORMAT, json_integer_value(v)));
        break;
    case JSON_REAL: put(b, num, json_out_real(num, json_real_value(v))); break;
    case JSON_TRUE: put(b, "true", 4); break;
    case JSON_FALSE: put(b, "false", 5); break;
    case JSON_NULL: put(b, "null", 4); break;
    }
}

char *json_out(arena_t *arena, const json_t *value, size_t *len)
{
    json_buffer_t b = {.arena = arena};

    put_value(&b, value);
    *len = b.len;
    return b.data;
}

const char *json_out_text(arena_t *arena, const json_t *value)
{
    size_t len;
    return json_out(arena, value, &len);
}
