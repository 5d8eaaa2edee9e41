/* test_rfc3339.c - RFC 3339 timestamps: offsets, fractions, bad dates, output */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include "../../fcgi/rfc3339.h"

static int64_t parsed(const char *s)
{
    int64_t micros = 0;
    assert_int_equal(rfc3339_parse(s, &micros), 0);
    return micros;
}

static void offsets_are_folded_into_utc(void **state)
{
    (void)state;
    int64_t utc = parsed("2026-11-21T10:25:39Z");
    assert_int_equal(utc, 1795256739LL * 1000000);
    assert_int_equal(parsed("2026-11-21T12:25:39+02:00"), utc);
    assert_int_equal(parsed("2026-11-21T05:55:39-04:30"), utc);
    assert_int_equal(parsed("2026-11-21t10:25:39z"), utc);
    assert_int_equal(parsed("2026-11-21 10:25:39Z"), utc);
}

static void fractions_keep_microseconds(void **state)
{
    (void)state;
    int64_t base = parsed("2026-11-21T10:25:39Z");
    assert_int_equal(parsed("2026-11-21T10:25:39.5Z") - base, 500000);
    assert_int_equal(parsed("2026-11-21T10:25:39.123456789Z") - base, 123456);
}

static void bad_timestamps_are_refused(void **state)
{
    (void)state;
    const char *bad[] = {"",
                         "2026-11-21",
                         "2026-11-21T10:25:39",
                         "2026-02-30T00:00:00Z",
                         "2026-13-01T00:00:00Z",
                         "2026-11-21T24:00:00Z",
                         "2026-11-21T10:25:39.Z",
                         "2026-11-21T10:25:39+2:00",
                         "2026-11-21T10:25:39Zjunk",
                         "yesterday"};
    int64_t micros;

    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
        assert_int_equal(rfc3339_parse(bad[i], &micros), -1);
    assert_int_equal(rfc3339_parse("2024-02-29T00:00:00Z", &micros), 0);
    assert_int_equal(rfc3339_parse("2025-02-29T00:00:00Z", &micros), -1);
}

static void output_is_utc_with_microseconds(void **state)
{
    (void)state;
    char buf[32];
    rfc3339_format(parsed("2026-11-21T12:25:39.25+02:00"), buf);
    assert_string_equal(buf, "2026-11-21T10:25:39.250000Z");
    rfc3339_format(0, buf);
    assert_string_equal(buf, "1970-01-01T00:00:00.000000Z");
    rfc3339_format(-1, buf); /* the microsecond before the epoch */
    assert_string_equal(buf, "1969-12-31T23:59:59.999999Z");
    rfc3339_format(parsed("0001-01-01T00:00:00.000001Z"), buf);
    assert_string_equal(buf, "0001-01-01T00:00:00.000001Z");
    rfc3339_format(parsed("9999-12-31T23:59:59.999999Z"), buf);
    assert_string_equal(buf, "9999-12-31T23:59:59.999999Z");
    rfc3339_format(parsed("9999-12-31T23:59:59.999999Z") + 1, buf); /* year 10000: by snprintf */
    assert_string_equal(buf, "10000-01-01T00:00:00.000000Z");
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(offsets_are_folded_into_utc),
        cmocka_unit_test(fractions_keep_microseconds),
        cmocka_unit_test(bad_timestamps_are_refused),
        cmocka_unit_test(output_is_utc_with_microseconds),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
