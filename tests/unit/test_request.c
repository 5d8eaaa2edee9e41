/* test_request.c - query strings and Content-Type, as the worker parses them */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <string.h>

#include "../../fcgi/request.h"

static arena_t arena;

static int teardown(void **state)
{
    (void)state;
    arena_destroy(&arena);
    return 0;
}

static void query_decodes_percent_and_plus(void **state)
{
    (void)state;
    problem_t p = {.arena = &arena};
    query_param_t *q;
    size_t n;

    assert_int_equal(request_parse_query(&arena, "owner=ana+b%C3%A9&limit=5", &q, &n, &p), 0);
    assert_int_equal(n, 2);
    assert_string_equal(q[0].name, "owner");
    assert_string_equal(q[0].value, "ana b\xc3\xa9");
    assert_string_equal(q[1].name, "limit");
    assert_string_equal(q[1].value, "5");
}

static void query_keeps_repeated_keys_in_order(void **state)
{
    (void)state;
    problem_t p = {.arena = &arena};
    query_param_t *q;
    size_t n;

    assert_int_equal(request_parse_query(&arena, "agent_id=a&&agent_id=b&flag", &q, &n, &p), 0);
    assert_int_equal(n, 3);
    assert_string_equal(q[0].value, "a");
    assert_string_equal(q[1].value, "b");
    assert_string_equal(q[2].name, "flag");
    assert_string_equal(q[2].value, "");
}

static void query_empty_gives_no_params(void **state)
{
    (void)state;
    problem_t p = {.arena = &arena};
    query_param_t *q;
    size_t n = 99;

    assert_int_equal(request_parse_query(&arena, "", &q, &n, &p), 0);
    assert_int_equal(n, 0);
    assert_int_equal(request_parse_query(&arena, NULL, &q, &n, &p), 0);
    assert_int_equal(n, 0);
}

static void query_rejects_broken_escapes_with_400(void **state)
{
    (void)state;
    const char *bad[] = {"a=%", "a=%4", "a=%zz", "a=%00", "a=%C3", "%ff=1"};

    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        problem_t p = {.arena = &arena};
        query_param_t *q;
        size_t n;
        assert_int_equal(request_parse_query(&arena, bad[i], &q, &n, &p), -1);
        assert_int_equal(p.status, 400);
    }
}

static void json_content_type_allows_parameters(void **state)
{
    (void)state;
    assert_true(request_is_json_type("application/json"));
    assert_true(request_is_json_type("Application/JSON; charset=utf-8"));
    assert_false(request_is_json_type("application/jsonx"));
    assert_false(request_is_json_type("text/plain"));
    assert_false(request_is_json_type("application/x-ndjson"));
    assert_false(request_is_json_type(NULL));
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_teardown(query_decodes_percent_and_plus, teardown),
        cmocka_unit_test_teardown(query_keeps_repeated_keys_in_order, teardown),
        cmocka_unit_test_teardown(query_empty_gives_no_params, teardown),
        cmocka_unit_test_teardown(query_rejects_broken_escapes_with_400, teardown),
        cmocka_unit_test_teardown(json_content_type_allows_parameters, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
