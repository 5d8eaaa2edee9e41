/* validate.c - input checked once at the edge, against tables of field rules */
#include "validate.h"

#include "json_out.h"

#include <ctype.h>
#include <string.h>

static const char *const field_type_names[] = {
    [FIELD_STRING] = "a string",  [FIELD_BOOLEAN] = "a boolean", [FIELD_INTEGER] = "an integer",
    [FIELD_OBJECT] = "an object", [FIELD_ARRAY] = "an array",    [FIELD_NUMBER] = "a number",
};

const char *validate_path(arena_t *arena, const char *prefix, const char *name)
{
    if (prefix == NULL || prefix[0] == '\0')
        return arena_strdup(arena, name);
    return arena_printf(arena, "%s.%s", prefix, name);
}

size_t validate_utf8_length(const char *s)
{
    size_t n = 0;

    for (; *s != '\0'; s++)
        if (((unsigned char)*s & 0xc0) != 0x80)
            n++;
    return n;
}

size_t validate_utf8_sequence(const unsigned char *s, size_t len)
{
    size_t extra;
    unsigned int cp;

    if (s[0] < 0x80)
        return 1;
    if ((s[0] & 0xe0) == 0xc0)
        extra = 1, cp = s[0] & 0x1f;
    else if ((s[0] & 0xf0) == 0xe0)
        extra = 2, cp = s[0] & 0x0f;
    else if ((s[0] & 0xf8) == 0xf0)
        extra = 3, cp = s[0] & 0x07;
    else
        return 0;
    if (extra >= len)
        return 0;
    for (size_t k = 1; k <= extra; k++) {
        if ((s[k] & 0xc0) != 0x80)
            return 0;
        cp = (cp << 6) | (s[k] & 0x3f);
    }
    if ((extra == 1 && cp < 0x80) || (extra == 2 && cp < 0x800) ||
        (extra == 3 && (cp < 0x10000 || cp > 0x10ffff)) || (cp >= 0xd800 && cp <= 0xdfff))
        return 0;
    return extra + 1;
}

int validate_hex(char c)
{
    if (c >= '0' && c <= '9')
        return c - '0';
    if (c >= 'a' && c <= 'f')
        return c - 'a' + 10;
    if (c >= 'A' && c <= 'F')
        return c - 'A' + 10;
    return -1;
}

bool validate_uuid(const char *s)
{
    static const char shape[] = "xxxxxxxx-xxxx-xxxx-xxxx-xxxxxxxxxxxx";

    if (s == NULL || strlen(s) != sizeof(shape) - 1)
        return false;
    for (size_t i = 0; i < sizeof(shape) - 1; i++) {
        if (shape[i] == '-' ? s[i] != '-' : !isxdigit((unsigned char)s[i]))
            return false;
    }
    return true;
}

static bool field_type_matches(field_type_t type, const json_t *v)
{
    switch (type) {
    case FIELD_STRING: return json_is_string(v);
    case FIELD_BOOLEAN: return json_is_boolean(v);
    case FIELD_INTEGER: return json_is_integer(v);
    case FIELD_OBJECT: return json_is_object(v);
    case FIELD_ARRAY: return json_is_array(v);
    case FIELD_NUMBER: return json_is_number(v);
    }
    return false;
}

bool validate_one_of(const char *s, const char *const *words)
{
    for (const char *const *w = words; s != NULL && *w != NULL; w++)
        if (strcmp(*w, s) == 0)
            return true;
    return false;
}

const char *validate_list(arena_t *arena, const char *const *words)
{
    size_t len = 1;

    for (const char *const *w = words; *w != NULL; w++)
        len += strlen(*w) + 2;
    char *list = arena_alloc(arena, len);
    list[0] = '\0';
    for (const char *const *w = words; *w != NULL; w++)
        strcat(strcat(list, w != words ? ", " : ""), *w);
    return list;
}

static void validate_allowed(const field_rule_t *rule, const json_t *v, const char *prefix,
                             const char *key, problem_t *p)
{
    if (!validate_one_of(json_string_value(v), rule->allowed))
        problem_field(p, validate_path(p->arena, prefix, key), "must be one of: %s",
                      validate_list(p->arena, rule->allowed));
}

/* Checks one present member (prefix.key) against its rule. The path is
 * written only when there is something to report: most input is valid. */
static void validate_member(const field_rule_t *rule, const json_t *v, const char *prefix,
                            const char *key, problem_t *p)
{
    if (json_is_null(v)) {
        if (!(rule->flags & FIELD_NULLABLE))
            problem_field(p, validate_path(p->arena, prefix, key), "must not be null");
        return;
    }
    if (!field_type_matches(rule->type, v)) {
        problem_field(p, validate_path(p->arena, prefix, key), "must be %s",
                      field_type_names[rule->type]);
        return;
    }
    if (rule->type == FIELD_STRING && rule->allowed != NULL) {
        validate_allowed(rule, v, prefix, key, p);
        return;
    }
    if (rule->max <= 0)
        return;
    long long n;
    switch (rule->type) {
    case FIELD_STRING:
        n = (long long)validate_utf8_length(json_string_value(v));
        if (n < rule->min || n > rule->max)
            problem_field(p, validate_path(p->arena, prefix, key),
                          "must be %lld to %lld characters long", rule->min, rule->max);
        break;
    case FIELD_INTEGER:
        n = json_integer_value(v);
        if (n < rule->min || n > rule->max)
            problem_field(p, validate_path(p->arena, prefix, key), "must be between %lld and %lld",
                          rule->min, rule->max);
        break;
    case FIELD_NUMBER:
        if (json_number_value(v) < (double)rule->min || json_number_value(v) > (double)rule->max)
            problem_field(p, validate_path(p->arena, prefix, key), "must be between %lld and %lld",
                          rule->min, rule->max);
        break;
    case FIELD_ARRAY:
        n = (long long)json_array_size(v);
        if (n < rule->min || n > rule->max)
            problem_field(p, validate_path(p->arena, prefix, key), "must have %lld to %lld items",
                          rule->min, rule->max);
        break;
    default: break;
    }
}

int validate_object(const json_t *value, const field_rule_t *rules, const char *prefix,
                    problem_t *p)
{
    size_t before = p->nfields;
    const char *key;
    json_t *v;

    if (!json_is_object(value)) {
        problem_field(p, prefix[0] ? prefix : "body", "must be a JSON object");
        return -1;
    }
    json_object_foreach ((json_t *)value, key, v) {
        const field_rule_t *rule = rules;
        while (rule->name != NULL && (rule->name[0] != key[0] || strcmp(rule->name, key) != 0))
            rule++;
        if (rule->name == NULL)
            problem_field(p, validate_path(p->arena, prefix, key), "is not a known field");
        else
            validate_member(rule, v, prefix, key, p);
    }
    for (const field_rule_t *rule = rules; rule->name != NULL; rule++)
        if ((rule->flags & FIELD_REQUIRED) && json_object_get(value, rule->name) == NULL)
            problem_field(p, validate_path(p->arena, prefix, rule->name), "is required");
    return p->nfields > before ? -1 : 0;
}

const char *field_string(const json_t *obj, const char *name)
{
    return json_string_value(json_object_get(obj, name));
}

const char *field_json(arena_t *arena, const json_t *obj, const char *name)
{
    const json_t *v = json_object_get(obj, name);
    return v ? json_out_text(arena, v) : NULL;
}

int validate_flat_object(const json_t *value, const char *prefix, problem_t *p)
{
    size_t before = p->nfields;
    const char *key;
    json_t *v;

    if (!json_is_object(value)) {
        problem_field(p, prefix, "must be an object");
        return -1;
    }
    if (json_object_size(value) > 50)
        problem_field(p, prefix, "must have at most 50 members");
    json_object_foreach ((json_t *)value, key, v) {
        size_t len = validate_utf8_length(key);
        if (len < 1 || len > 100)
            problem_field(p, validate_path(p->arena, prefix, key),
                          "keys must be 1 to 100 characters long");
        else if (json_is_object(v) || json_is_array(v))
            problem_field(p, validate_path(p->arena, prefix, key),
                          "must be a string, number, boolean or null");
        else if (json_is_string(v) && validate_utf8_length(json_string_value(v)) > 1000)
            problem_field(p, validate_path(p->arena, prefix, key),
                          "must be at most 1000 characters long");
    }
    return p->nfields > before ? -1 : 0;
}
