/* test_json.c - JSON output, problem+json bodies and pagination cursors */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <string.h>

#include "../../fcgi/cursor.h"
#include "../../fcgi/db.h"
#include "../../fcgi/json_out.h"
#include "../../fcgi/problem.h"

static arena_t arena;

static int teardown(void **state)
{
    (void)state;
    arena_destroy(&arena);
    return 0;
}

static const char *out(const char *text)
{
    size_t len;
    json_t *v = json_loads(text, JSON_DECODE_ANY, NULL);
    assert_non_null(v);
    const char *s = json_out(&arena, v, &len);
    assert_int_equal(strlen(s), len);
    json_decref(v);
    return s;
}

static void reals_use_the_shortest_exact_form(void **state)
{
    (void)state;
    assert_string_equal(out("[0.1, 1.0, 0.30000000000000004, 1e300, -2.5e-7, 3]"),
                        "[0.1,1.0,0.30000000000000004,1e+300,-2.5e-07,3]");
}

static void members_keep_their_order_and_strings_are_escaped(void **state)
{
    (void)state;
    assert_string_equal(
        out("{\"b\":\"q\\\"\\\\\\n\\u0001\",\"a\":[true,false,null],\"\xc3\xa9\":{}}"),
        "{\"b\":\"q\\\"\\\\\\n\\u0001\",\"a\":[true,false,null],\"\xc3\xa9\":{}}");
}

static void problem_body_has_every_member(void **state)
{
    (void)state;
    problem_t p = {.arena = &arena};
    problem_field(&p, "name", "is required");
    problem_field(&p, "widgets[0].type", "must be one of: %s", "gauge");
    json_t *body = problem_body(&p, "/api/v1/dashboards", "abc123");

    assert_string_equal(json_string_value(json_object_get(body, "type")), "/problems/validation");
    assert_int_equal(json_integer_value(json_object_get(body, "status")), 422);
    assert_string_equal(json_string_value(json_object_get(body, "instance")), "/api/v1/dashboards");
    assert_string_equal(json_string_value(json_object_get(body, "request_id")), "abc123");
    json_t *errors = json_object_get(body, "errors");
    assert_int_equal(json_array_size(errors), 2);
    assert_string_equal(json_string_value(json_object_get(json_array_get(errors, 1), "field")),
                        "widgets[0].type");
    json_decref(body);
}

static void batch_errors_carry_their_line(void **state)
{
    (void)state;
    problem_t p = {.arena = &arena};
    problem_line_field(&p, 50000, "started_at", "must be an RFC 3339 timestamp");
    json_t *body = problem_body(&p, "/api/v1/executions", "r");
    json_t *error = json_array_get(json_object_get(body, "errors"), 0);

    assert_int_equal(json_integer_value(json_object_get(error, "line")), 50000);
    assert_string_equal(json_string_value(json_object_get(error, "field")), "started_at");
    json_decref(body);
}

static const char *member(json_t *object, const char *name)
{
    return json_string_value(json_object_get(object, name));
}

static void problem_body_percent_encodes_bytes_that_are_not_utf8(void **state)
{
    (void)state;
    problem_t p = {.arena = &arena};
    problem_fail(&p, PROBLEM_NOT_FOUND, "There is nothing at %s.", "/api/v1/dashboards/\xff");
    json_t *body = problem_body(&p, "/api/v1/metrics/\xc3\x28", "r\x80");

    assert_non_null(body);
    assert_string_equal(member(body, "detail"), "There is nothing at /api/v1/dashboards/%FF.");
    assert_string_equal(member(body, "instance"), "/api/v1/metrics/%C3(");
    assert_string_equal(member(body, "request_id"), "r%80");
    json_decref(body);
}

static void problem_body_keeps_valid_utf8_and_escapes_only_the_bad_bytes(void **state)
{
    (void)state;
    problem_t p = {.arena = &arena};
    /* overlong '/', a surrogate, a cut-short sequence around a good e-acute */
    problem_field(&p, "metadata.\xc0\xaf", "bad \xed\xa0\x80 \xc3\xa9 \xe2\x82");
    json_t *body = problem_body(&p, "/caf\xc3\xa9", "r");
    json_t *error = json_array_get(json_object_get(body, "errors"), 0);

    assert_string_equal(member(body, "instance"), "/caf\xc3\xa9");
    assert_string_equal(member(error, "field"), "metadata.%C0%AF");
    assert_string_equal(member(error, "message"), "bad %ED%A0%80 \xc3\xa9 %E2%82");
    json_decref(body);
}

static void first_error_status_wins(void **state)
{
    (void)state;
    problem_t p = {.arena = &arena};
    assert_int_equal(problem_fail(&p, PROBLEM_NOT_FOUND, "No dashboard %s.", "x"), -1);
    problem_fail(&p, PROBLEM_INTERNAL, "later");
    assert_int_equal(p.status, 404);
    assert_string_equal(p.detail, "No dashboard x.");
}

static void cursor_round_trips_any_text(void **state)
{
    (void)state;
    const char *parts[3] = {"t", "Ops & \xc3\xa9 / ?", "0b7f1c3e-8e2a-4c1b-9f4d-2a6b8c0d1e2f"};
    const char *token = cursor_encode(&arena, parts, 3);
    const char *back[3];

    assert_null(strpbrk(token, "+/=&?"));
    assert_int_equal(cursor_decode(&arena, token, back, 3), 0);
    for (int i = 0; i < 3; i++)
        assert_string_equal(back[i], parts[i]);
}

static void cursor_rejects_foreign_tokens(void **state)
{
    (void)state;
    const char *back[3];
    const char *two[2] = {"a", "b"};

    assert_int_equal(cursor_decode(&arena, "", back, 3), -1);
    assert_int_equal(cursor_decode(&arena, "not base64!", back, 3), -1);
    assert_int_equal(cursor_decode(&arena, cursor_encode(&arena, two, 2), back, 3), -1);
}

static void database_times_become_rfc3339(void **state)
{
    (void)state;
    assert_string_equal(db_time(&arena, "2026-11-21 10:36:25.020396+00"),
                        "2026-11-21T10:36:25.020396Z");
    assert_string_equal(db_time(&arena, "2026-11-21 10:36:25+00"), "2026-11-21T10:36:25Z");
    assert_string_equal(db_time(&arena, "not a time"), "not a time");
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_teardown(reals_use_the_shortest_exact_form, teardown),
        cmocka_unit_test_teardown(members_keep_their_order_and_strings_are_escaped, teardown),
        cmocka_unit_test_teardown(problem_body_has_every_member, teardown),
        cmocka_unit_test_teardown(batch_errors_carry_their_line, teardown),
        cmocka_unit_test_teardown(problem_body_percent_encodes_bytes_that_are_not_utf8, teardown),
        cmocka_unit_test_teardown(problem_body_keeps_valid_utf8_and_escapes_only_the_bad_bytes,
                                  teardown),
        cmocka_unit_test_teardown(first_error_status_wins, teardown),
        cmocka_unit_test_teardown(cursor_round_trips_any_text, teardown),
        cmocka_unit_test_teardown(cursor_rejects_foreign_tokens, teardown),
        cmocka_unit_test_teardown(database_times_become_rfc3339, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
