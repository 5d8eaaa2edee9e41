/* test_validate.c - field rules: types, bounds, enums, unknown and missing fields */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <string.h>

#include "../../fcgi/validate.h"

static const char *const colours[] = {"red", "green", NULL};

static const field_rule_t rules[] = {
    {"name", FIELD_STRING, FIELD_REQUIRED, 1, 5, NULL},
    {"note", FIELD_STRING, FIELD_NULLABLE, 0, 0, NULL},
    {"count", FIELD_INTEGER, 0, 10, 20, NULL},
    {"colour", FIELD_STRING, 0, 0, 0, colours},
    {"on", FIELD_BOOLEAN, 0, 0, 0, NULL},
    {"items", FIELD_ARRAY, 0, 0, 2, NULL},
    {NULL, 0, 0, 0, 0, NULL},
};

static arena_t arena;

static int teardown(void **state)
{
    (void)state;
    arena_destroy(&arena);
    return 0;
}

/* Validates text and returns the problem; the JSON is freed. */
static problem_t check(const char *text, const char *prefix)
{
    problem_t p = {.arena = &arena};
    json_t *v = json_loads(text, JSON_DECODE_ANY, NULL);

    assert_non_null(v);
    validate_object(v, rules, prefix, &p);
    json_decref(v);
    return p;
}

static bool has_field(const problem_t *p, const char *field, const char *message_start)
{
    for (size_t i = 0; i < p->nfields; i++)
        if (strcmp(p->fields[i].field, field) == 0 &&
            strncmp(p->fields[i].message, message_start, strlen(message_start)) == 0)
            return true;
    return false;
}

static void valid_object_passes(void **state)
{
    (void)state;
    problem_t p =
        check("{\"name\":\"ab\",\"note\":null,\"count\":10,\"colour\":\"red\",\"on\":true,"
              "\"items\":[1,2]}",
              "");
    assert_int_equal(p.status, 0);
    assert_int_equal(p.nfields, 0);
}

static void every_bad_field_is_listed(void **state)
{
    (void)state;
    problem_t p = check("{\"note\":1,\"count\":21,\"colour\":\"blue\",\"on\":\"yes\","
                        "\"items\":[1,2,3],\"extra\":0}",
                        "");
    assert_int_equal(p.status, 422);
    assert_int_equal(p.nfields, 7);
    assert_true(has_field(&p, "name", "is required"));
    assert_true(has_field(&p, "note", "must be a string"));
    assert_true(has_field(&p, "count", "must be between 10 and 20"));
    assert_true(has_field(&p, "colour", "must be one of: red, green"));
    assert_true(has_field(&p, "on", "must be a boolean"));
    assert_true(has_field(&p, "items", "must have 0 to 2 items"));
    assert_true(has_field(&p, "extra", "is not a known field"));
}

static void string_length_counts_characters_not_bytes(void **state)
{
    (void)state;
    problem_t ok = check("{\"name\":\"\xc3\xa9\xc3\xa9\xc3\xa9\xc3\xa9\xc3\xa9\"}", "");
    assert_int_equal(ok.nfields, 0);
    problem_t too_long =
        check("{\"name\":\"\xc3\xa9\xc3\xa9\xc3\xa9\xc3\xa9\xc3\xa9\xc3\xa9\"}", "");
    assert_true(has_field(&too_long, "name", "must be 1 to 5 characters long"));
    problem_t empty = check("{\"name\":\"\"}", "");
    assert_true(has_field(&empty, "name", "must be 1 to 5"));
}

static void null_is_refused_unless_nullable(void **state)
{
    (void)state;
    problem_t p = check("{\"name\":null}", "");
    assert_true(has_field(&p, "name", "must not be null"));
}

static void real_is_not_an_integer(void **state)
{
    (void)state;
    problem_t p = check("{\"name\":\"a\",\"count\":12.0}", "");
    assert_true(has_field(&p, "count", "must be an integer"));
}

static void nested_fields_carry_their_prefix(void **state)
{
    (void)state;
    problem_t p = check("{\"count\":1}", "widgets[3]");
    assert_true(has_field(&p, "widgets[3].name", "is required"));
    assert_true(has_field(&p, "widgets[3].count", "must be between"));
}

static void non_object_is_one_error(void **state)
{
    (void)state;
    problem_t p = check("[1]", "");
    assert_int_equal(p.nfields, 1);
    assert_true(has_field(&p, "body", "must be a JSON object"));
}

static void flat_objects_allow_only_scalars(void **state)
{
    (void)state;
    problem_t p = {.arena = &arena};
    json_t *v = json_loads("{\"region\":\"eu\",\"n\":1.5,\"ok\":true,\"none\":null,"
                           "\"deep\":{\"a\":1},\"list\":[1]}",
                           0, NULL);

    assert_int_equal(validate_flat_object(v, "metadata", &p), -1);
    assert_int_equal(p.nfields, 2);
    assert_true(has_field(&p, "metadata.deep", "must be a string, number, boolean or null"));
    assert_true(has_field(&p, "metadata.list", "must be a string, number, boolean or null"));
    json_decref(v);
}

static void numbers_accept_integers_and_reals_within_bounds(void **state)
{
    (void)state;
    static const field_rule_t score[] = {{"score", FIELD_NUMBER, 0, 0, 1, NULL},
                                         {NULL, 0, 0, 0, 0, NULL}};
    const char *good[] = {"{\"score\":0}", "{\"score\":0.5}", "{\"score\":1}"};
    const char *bad[] = {"{\"score\":1.01}", "{\"score\":-0.1}", "{\"score\":\"1\"}"};

    for (int i = 0; i < 3; i++) {
        problem_t p = {.arena = &arena};
        json_t *v = json_loads(good[i], 0, NULL);
        assert_int_equal(validate_object(v, score, "", &p), 0);
        json_decref(v);
        problem_t q = {.arena = &arena};
        v = json_loads(bad[i], 0, NULL);
        assert_int_equal(validate_object(v, score, "", &q), -1);
        json_decref(v);
    }
}

static void uuid_shape_is_checked(void **state)
{
    (void)state;
    assert_true(validate_uuid("0b7f1c3e-8e2a-4c1b-9f4d-2a6b8c0d1e2f"));
    assert_true(validate_uuid("0B7F1C3E-8E2A-4C1B-9F4D-2A6B8C0D1E2F"));
    assert_false(validate_uuid("0b7f1c3e8e2a4c1b9f4d2a6b8c0d1e2f"));
    assert_false(validate_uuid("0b7f1c3e-8e2a-4c1b-9f4d-2a6b8c0d1e2g"));
    assert_false(validate_uuid("default"));
    assert_false(validate_uuid(""));
}

static void utf8_sequences_are_measured_and_bad_ones_are_0(void **state)
{
    (void)state;
#define SEQUENCE(text, n) validate_utf8_sequence((const unsigned char *)(text), (n))
    assert_int_equal(SEQUENCE("a", 1), 1);
    assert_int_equal(SEQUENCE("\xc3\xa9", 2), 2);         /* U+00E9 */
    assert_int_equal(SEQUENCE("\xe2\x82\xac", 3), 3);     /* U+20AC */
    assert_int_equal(SEQUENCE("\xf0\x9f\x9a\x80", 4), 4); /* U+1F680 */
    assert_int_equal(SEQUENCE("\xff", 1), 0);
    assert_int_equal(SEQUENCE("\x80", 1), 0);             /* stray continuation */
    assert_int_equal(SEQUENCE("\xc0\xaf", 2), 0);         /* overlong '/' */
    assert_int_equal(SEQUENCE("\xed\xa0\x80", 3), 0);     /* surrogate U+D800 */
    assert_int_equal(SEQUENCE("\xf4\x90\x80\x80", 4), 0); /* past U+10FFFF */
    assert_int_equal(SEQUENCE("\xe2\x82\xac", 2), 0);     /* cut short */
    assert_int_equal(SEQUENCE("\xc3\x28", 2), 0);         /* not a continuation */
#undef SEQUENCE
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_teardown(valid_object_passes, teardown),
        cmocka_unit_test_teardown(every_bad_field_is_listed, teardown),
        cmocka_unit_test_teardown(string_length_counts_characters_not_bytes, teardown),
        cmocka_unit_test_teardown(null_is_refused_unless_nullable, teardown),
        cmocka_unit_test_teardown(real_is_not_an_integer, teardown),
        cmocka_unit_test_teardown(nested_fields_carry_their_prefix, teardown),
        cmocka_unit_test_teardown(non_object_is_one_error, teardown),
        cmocka_unit_test_teardown(flat_objects_allow_only_scalars, teardown),
        cmocka_unit_test_teardown(numbers_accept_integers_and_reals_within_bounds, teardown),
        cmocka_unit_test_teardown(uuid_shape_is_checked, teardown),
        cmocka_unit_test_teardown(utf8_sequences_are_measured_and_bad_ones_are_0, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
