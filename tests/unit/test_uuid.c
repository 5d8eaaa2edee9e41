/* test_uuid.c - version 7 UUIDs: text form, version and variant bits, time order */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "../../fcgi/rfc3339.h"
#include "../../fcgi/uuid.h"

static void ids_are_lowercase_8_4_4_4_12(void **state)
{
    (void)state;
    char id[37];
    uuid_v7(id);
    assert_int_equal(strlen(id), 36);
    for (int i = 0; i < 36; i++)
        if (i == 8 || i == 13 || i == 18 || i == 23)
            assert_int_equal(id[i], '-');
        else
            assert_non_null(strchr("0123456789abcdef", id[i]));
}

static void version_is_7_and_variant_is_rfc_9562(void **state)
{
    (void)state;
    char id[37];
    for (int n = 0; n < 10000; n++) {
        uuid_v7(id);
        assert_int_equal(id[14], '7');
        assert_non_null(strchr("89ab", id[19]));
    }
}

/* The first 48 bits are the Unix milliseconds of the call. */
static void ids_begin_with_the_milliseconds_they_were_made_in(void **state)
{
    (void)state;
    char id[37], hex[13];
    long long before = rfc3339_now() / 1000;
    uuid_v7(id);
    long long after = rfc3339_now() / 1000;
    memcpy(hex, id, 8);
    memcpy(hex + 8, id + 9, 4);
    hex[12] = '\0';
    long long ms = strtoll(hex, NULL, 16);
    assert_in_range(ms, before, after);
}

static void ids_of_a_later_millisecond_sort_after(void **state)
{
    (void)state;
    char earlier[37], later[37];
    for (int n = 0; n < 20; n++) {
        uuid_v7(earlier);
        nanosleep(&(struct timespec){.tv_nsec = 1100000}, NULL);
        uuid_v7(later);
        assert_true(strcmp(earlier, later) < 0);
    }
}

static void ids_differ(void **state)
{
    (void)state;
    enum { N = 2000 };
    static char ids[N][37];
    for (int i = 0; i < N; i++)
        uuid_v7(ids[i]);
    for (int i = 0; i < N; i++)
        for (int j = i + 1; j < N; j++)
            assert_string_not_equal(ids[i], ids[j]);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(ids_are_lowercase_8_4_4_4_12),
        cmocka_unit_test(version_is_7_and_variant_is_rfc_9562),
        cmocka_unit_test(ids_begin_with_the_milliseconds_they_were_made_in),
        cmocka_unit_test(ids_of_a_later_millisecond_sort_after),
        cmocka_unit_test(ids_differ),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
