/* test_etag.c - versions as entity tags: ETag, If-Match, If-None-Match */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include "../../fcgi/etag.h"

static arena_t arena;

static int teardown(void **state)
{
    (void)state;
    arena_destroy(&arena);
    return 0;
}

static void tags_are_the_quoted_version_weak_or_strong(void **state)
{
    (void)state;
    assert_string_equal(etag_of(&arena, "3", false), "\"3\"");
    assert_string_equal(etag_of(&arena, "3", true), "W/\"3\"");
}

static void if_match_names_a_version_or_any(void **state)
{
    (void)state;
    assert_null(etag_if_match_version(&arena, NULL));
    assert_null(etag_if_match_version(&arena, "*"));
    assert_null(etag_if_match_version(&arena, "  *"));
    assert_string_equal(etag_if_match_version(&arena, "\"7\""), "7");
    assert_string_equal(etag_if_match_version(&arena, "W/\"7\""), "7");
    assert_string_equal(etag_if_match_version(&arena, " \"2147483647\""), "2147483647");
}

static void if_match_without_one_of_our_versions_never_matches(void **state)
{
    (void)state;
    const char *headers[] = {"7",      "\"\"", "\"0\"",   "\"-1\"", "\"2147483648\"",
                             "\"7x\"", "W/7",  "\"abc\"", "",       "\"7"};
    for (size_t i = 0; i < sizeof(headers) / sizeof(headers[0]); i++)
        assert_string_equal(etag_if_match_version(&arena, headers[i]), "0");
}

static void if_none_match_finds_the_version_in_a_list(void **state)
{
    (void)state;
    assert_false(etag_if_none_match(NULL, "3"));
    assert_true(etag_if_none_match("*", "3"));
    assert_true(etag_if_none_match("\"3\"", "3"));
    assert_true(etag_if_none_match("W/\"3\"", "3"));
    assert_true(etag_if_none_match("\"1\", \"3\"", "3"));
    assert_true(etag_if_none_match("\"1\",W/\"3\"", "3"));
    assert_false(etag_if_none_match("\"13\"", "3"));
    assert_false(etag_if_none_match("\"1\", \"2\"", "3"));
    assert_false(etag_if_none_match("x\"3\"", "3"));
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(tags_are_the_quoted_version_weak_or_strong),
        cmocka_unit_test(if_match_names_a_version_or_any),
        cmocka_unit_test(if_match_without_one_of_our_versions_never_matches),
        cmocka_unit_test(if_none_match_finds_the_version_in_a_list),
    };
    return cmocka_run_group_tests(tests, NULL, teardown);
}
