/* test_cache.c - the worker's (id, version) cache: hits, misses, replacement */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdio.h>
#include <string.h>

#include "../../fcgi/cache.h"

static arena_t arena;

static int teardown(void **state)
{
    (void)state;
    cache_clear();
    arena_destroy(&arena);
    return 0;
}

static void hit_only_for_the_exact_version(void **state)
{
    (void)state;
    size_t len = 0;

    cache_put("a", "3", "{\"v\":3}", 7);
    assert_string_equal(cache_get(&arena, "a", "3", &len), "{\"v\":3}");
    assert_int_equal(len, 7);
    assert_null(cache_get(&arena, "a", "4", &len));
    assert_null(cache_get(&arena, "a", "2", &len));
    assert_null(cache_get(&arena, "b", "3", &len));
    assert_string_equal(cache_version(&arena, "a"), "3");
    assert_null(cache_version(&arena, "b"));
}

static void ids_and_versions_of_any_length(void **state)
{
    (void)state;
    char id[300];
    size_t len;

    memset(id, 'q', sizeof(id) - 1);
    id[sizeof(id) - 1] = '\0';
    cache_put(id, "100:105:101,102/1763720000", "{}", 2);
    assert_string_equal(cache_get(&arena, id, "100:105:101,102/1763720000", &len), "{}");
    assert_null(cache_get(&arena, id, "100:105:101/1763720000", &len));
}

static void a_new_version_replaces_the_old_one(void **state)
{
    (void)state;
    size_t len;

    cache_put("a", "1", "one", 3);
    cache_put("a", "2", "two", 3);
    assert_null(cache_get(&arena, "a", "1", &len));
    assert_string_equal(cache_get(&arena, "a", "2", &len), "two");
}

static void the_least_recently_used_entry_goes_first(void **state)
{
    (void)state;
    char id[16];
    size_t len;

    for (int i = 0; i < CACHE_ENTRIES; i++) {
        snprintf(id, sizeof(id), "id%d", i);
        cache_put(id, "1", "x", 1);
    }
    assert_non_null(cache_get(&arena, "id0", "1", &len)); /* id0 is now the freshest */
    cache_put("newcomer", "1", "y", 1);                   /* evicts id1 */
    assert_non_null(cache_get(&arena, "id0", "1", &len));
    assert_null(cache_get(&arena, "id1", "1", &len));
    assert_non_null(cache_get(&arena, "newcomer", "1", &len));
}

static void texts_over_the_limit_are_not_kept(void **state)
{
    (void)state;
    static char big[CACHE_MAX_ITEM + 1];
    size_t len;

    memset(big, 'x', sizeof(big));
    cache_put("big", "1", big, sizeof(big));
    assert_null(cache_get(&arena, "big", "1", &len));
    /* nor does an older version outlive a newer one too big to keep: the
     * version held is never older than the last one put */
    cache_put("grows", "1", "x", 1);
    cache_put("grows", "2", big, sizeof(big));
    assert_null(cache_get(&arena, "grows", "1", &len));
    assert_null(cache_version(&arena, "grows"));
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_teardown(hit_only_for_the_exact_version, teardown),
        cmocka_unit_test_teardown(a_new_version_replaces_the_old_one, teardown),
        cmocka_unit_test_teardown(ids_and_versions_of_any_length, teardown),
        cmocka_unit_test_teardown(the_least_recently_used_entry_goes_first, teardown),
        cmocka_unit_test_teardown(texts_over_the_limit_are_not_kept, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
