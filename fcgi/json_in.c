/* json_in.c - a fast reader of common JSON objects (see json_in.h) */
#include "json_in.h"

#include <math.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

#define JSON_IN_DEPTH 8

typedef struct reader {
    const char *p, *end;
} reader_t;

static void skip_space(reader_t *r)
{
    while (r->p < r->end && (*r->p == ' ' || *r->p == '\t' || *r->p == '\n' || *r->p == '\r'))
        r->p++;
}

static bool is_digit(const reader_t *r, const char *at)
{
    return at < r->end && *at >= '0' && *at <= '9';
}

/* A string of printable ASCII without escapes, r->p at its opening quote:
 * its text in *s and *n, r->p after the closing quote. -1 otherwise. */
static int read_string(reader_t *r, const char **s, size_t *n)
{
    const char *q = r->p + 1;

    for (; q < r->end && *q != '"'; q++)
        if ((unsigned char)*q < 0x20 || (unsigned char)*q >= 0x80 || *q == '\\')
            return -1;
    if (q >= r->end)
        return -1;
    *s = r->p + 1;
    *n = (size_t)(q - *s);
    r->p = q + 1;
    return 0;
}

/* A number by JSON's grammar: an integer when it has neither fraction nor
 * exponent (json_integer, at most 18 digits: never out of range), else a
 * real as strtod reads it (json_real; NULL when it overflows). */
static json_t *read_number(reader_t *r)
{
    const char *start = r->p, *q = r->p;
    bool negative = *q == '-', real = false;

    if (negative)
        q++;
    if (is_digit(r, q) && *q == '0')
        q++;
    else if (is_digit(r, q))
        while (is_digit(r, q))
            q++;
    else
        return NULL;
    const char *digits_end = q;
    if (q < r->end && *q == '.') {
        real = true;
        if (!is_digit(r, ++q))
            return NULL;
        while (is_digit(r, q))
            q++;
    }
    if (q < r->end && (*q == 'e' || *q == 'E')) {
        real = true;
        q++;
        if (q < r->end && (*q == '+' || *q == '-'))
            q++;
        if (!is_digit(r, q))
            return NULL;
        while (is_digit(r, q))
            q++;
    }
    r->p = q;
    if (!real) {
        const char *d = start + negative;
        if (digits_end - d > 18)
            return NULL;
        long long v = 0;
        for (; d < digits_end; d++)
            v = v * 10 + (*d - '0');
        return json_integer(negative ? -v : v);
    }
    char text[64];
    size_t n = (size_t)(q - start);
    if (n >= sizeof(text))
        return NULL;
    memcpy(text, start, n);
    text[n] = '\0';
    double v = strtod(text, NULL);
    return isfinite(v) ? json_real(v) : NULL;
}

static bool read_word(reader_t *r, const char *word, size_t n)
{
    if ((size_t)(r->end - r->p) < n || memcmp(r->p, word, n) != 0)
        return false;
    r->p += n;
    return true;
}

static json_t *read_object(reader_t *r, int depth);

static json_t *read_value(reader_t *r, int depth)
{
    const char *s;
    size_t n;

    if (r->p >= r->end)
        return NULL;
    switch (*r->p) {
    case '{': return read_object(r, depth + 1);
    case '"': return read_string(r, &s, &n) == 0 ? json_stringn_nocheck(s, n) : NULL;
    case 't': return read_word(r, "true", 4) ? json_true() : NULL;
    case 'f': return read_word(r, "false", 5) ? json_false() : NULL;
    case 'n': return read_word(r, "null", 4) ? json_null() : NULL;
    default: return read_number(r);
    }
}

/* An object, r->p at its '{'. A repeated key is outside the shape: the
 * caller's json_loadb() refuses it in its own words. */
static json_t *read_object(reader_t *r, int depth)
{
    json_t *object;

    if (depth > JSON_IN_DEPTH || (object = json_object()) == NULL)
        return NULL;
    r->p++;
    skip_space(r);
    if (r->p < r->end && *r->p == '}') {
        r->p++;
        return object;
    }
    for (;;) {
        const char *key;
        size_t key_len;
        json_t *value;
        if (r->p >= r->end || *r->p != '"' || read_string(r, &key, &key_len) != 0)
            break;
        skip_space(r);
        if (r->p >= r->end || *r->p != ':')
            break;
        r->p++;
        skip_space(r);
        if ((value = read_value(r, depth)) == NULL)
            break;
        if (json_object_getn(object, key, key_len) != NULL) {
            json_decref(value);
            break;
        }
        if (json_object_setn_new_nocheck(object, key, key_len, value) != 0)
            break; /* it let go of value itself */
        skip_space(r);
        if (r->p < r->end && *r->p == ',') {
            r->p++;
            skip_space(r);
            continue;
        }
        if (r->p < r->end && *r->p == '}') {
            r->p++;
            return object;
        }
        break;
    }
    json_decref(object);
    return NULL;
}

json_t *json_in_object(const char *s, size_t len)
{
    reader_t r = {s, s + len};
    json_t *object;

    skip_space(&r);
    if (r.p >= r.end || *r.p != '{' || (object = read_object(&r, 1)) == NULL)
        return NULL;
    skip_space(&r);
    if (r.p == r.end)
        return object;
    json_decref(object);
    return NULL;
}

size_t json_in_separators(const char *s, size_t len)
{
    size_t n = 0;
    bool in_string = false;

    for (const char *c = s, *end = s + len; c < end; c++) {
        if (in_string) {
            if (*c == '\\')
                c++; /* the escaped character, whatever it is */
            else if (*c == '"')
                in_string = false;
        } else if (*c == '"') {
            in_string = true;
        } else if (*c == ',' || *c == ':' || *c == '[' || *c == '{') {
            n++;
        }
    }
    return n;
}
