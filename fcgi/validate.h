/* validate.h - input checked once at the edge, against tables of field rules */
#ifndef FLEETDASH_VALIDATE_H
#define FLEETDASH_VALIDATE_H

#include <jansson.h>
#include <stdbool.h>
#include <stddef.h>

#include "problem.h"

typedef enum field_type {
    FIELD_STRING,
    FIELD_BOOLEAN,
    FIELD_INTEGER,
    FIELD_OBJECT,
    FIELD_ARRAY,
    FIELD_NUMBER, /* integer or real */
} field_type_t;

#define FIELD_REQUIRED 0x1u /* must be present */
#define FIELD_NULLABLE 0x2u /* JSON null is accepted */

/* One member of an input object. A rule table ends with a NULL name.
 * name:    the JSON member
 * type:    the JSON type it must have
 * flags:   FIELD_REQUIRED, FIELD_NULLABLE
 * min/max: inclusive bounds when max > 0: characters for strings, the value
 *          for integers and numbers, the item count for arrays
 * allowed: for strings, the NULL-terminated list of accepted values */
typedef struct field_rule {
    const char *name;
    field_type_t type;
    unsigned flags;
    long long min;
    long long max;
    const char *const *allowed;
} field_rule_t;

/* Checks that value is an object whose members follow rules: no unknown
 * member, every required member present, the right types, bounds and
 * values. Every bad field is recorded in p under prefix ("" at the top,
 * "widgets[2]" nested). Returns 0 when all is well, -1 otherwise. */
int validate_object(const json_t *value, const field_rule_t *rules, const char *prefix,
                    problem_t *p);

/* The string value of member name of obj, or NULL when absent, null or not
 * a string. Borrowed from obj. */
const char *field_string(const json_t *obj, const char *name);

/* The JSON text of member name of obj (in the arena), or NULL when absent. */
const char *field_json(arena_t *arena, const json_t *obj, const char *name);

/* Checks a "flat object" (metadata): at most 50 members, keys of 1..100
 * characters, each value a string (<= 1000 characters), a number, a boolean
 * or null. Records bad members in p under prefix. Returns 0 or -1. */
int validate_flat_object(const json_t *value, const char *prefix, problem_t *p);

/* True when s (may be NULL: false) is one of words (NULL-terminated). */
bool validate_one_of(const char *s, const char *const *words);

/* words joined with ", " ("a, b, c"), in the arena: what an error lists. */
const char *validate_list(arena_t *arena, const char *const *words);

/* Joins a prefix and a member name into a field path ("a.b"), in the arena. */
const char *validate_path(arena_t *arena, const char *prefix, const char *name);

/* The value of a hex digit (any case), or -1. */
int validate_hex(char c);

/* True if s is a UUID in its canonical 8-4-4-4-12 hex form (any case). */
bool validate_uuid(const char *s);

/* The number of characters (code points) of a valid UTF-8 string. */
size_t validate_utf8_length(const char *s);

/* The length in bytes (1 to 4) of the valid UTF-8 sequence that s starts,
 * with len bytes readable at s (len >= 1), or 0 when s starts none: a stray
 * continuation byte, an overlong form, a surrogate, a code point past
 * U+10FFFF, a sequence cut short. An ASCII byte, NUL included, is 1. */
size_t validate_utf8_sequence(const unsigned char *s, size_t len);

#endif
