/* test_pgcopy.c - binary COPY fields: byte layouts, numerics from decimal texts, bad input */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <cmocka.h>

#include "../../fcgi/pgcopy.h"

/* Checks that out[0..n) holds the hex digits expect (spaces ignored). */
static void assert_bytes(const char *out, size_t n, const char *expect)
{
    char hex[256] = "";
    size_t h = 0;

    for (size_t i = 0; i < n; i++)
        h += (size_t)snprintf(hex + h, sizeof(hex) - h, "%02x", (unsigned char)out[i]);
    char want[256];
    size_t w = 0;
    for (const char *c = expect; *c; c++)
        if (*c != ' ')
            want[w++] = *c;
    want[w] = '\0';
    assert_string_equal(hex, want);
}

/* A numeric field: its length, then ndigits, weight, sign, dscale, digits. */
static void assert_numeric(const char *text, const char *expect)
{
    char out[PGCOPY_NUMERIC_MAX];
    size_t n = pgcopy_numeric(out, text);

    assert_true(n > 0);
    assert_true(n <= sizeof(out));
    assert_bytes(out, n, expect);
}

static void frame_and_fixed_width_fields(void **state)
{
    (void)state;
    char out[64];

    assert_bytes(out, pgcopy_header(out), "5047434f50590aff0d0a00 00000000 00000000");
    assert_bytes(out, pgcopy_trailer(out), "ffff");
    assert_bytes(out, pgcopy_row(out, 20), "0014");
    assert_bytes(out, pgcopy_null(out), "ffffffff");
    assert_bytes(out, pgcopy_bool(out, true), "00000001 01");
    assert_bytes(out, pgcopy_bool(out, false), "00000001 00");
    assert_bytes(out, pgcopy_int4(out, -2), "00000004 fffffffe");
    assert_bytes(out, pgcopy_int8(out, 86400000), "00000008 0000000005265c00");
    assert_bytes(out, pgcopy_float8(out, 0.25), "00000008 3fd0000000000000");
    assert_bytes(out, pgcopy_text(out, "a\tb", 3), "00000003 610962");
    assert_bytes(out, pgcopy_text_or_null(out, "a\tb"), "00000003 610962");
    assert_bytes(out, pgcopy_text_or_null(out, NULL), "ffffffff");
    assert_bytes(out, pgcopy_jsonb(out, "{}", 2), "00000003 01 7b7d");
}

static void timestamps_count_from_2000(void **state)
{
    (void)state;
    char out[16];

    assert_bytes(out, pgcopy_timestamptz(out, 946684800000000LL), "00000008 0000000000000000");
    assert_bytes(out, pgcopy_timestamptz(out, 946684800000001LL), "00000008 0000000000000001");
    /* 1999-12-31T23:59:59.999999Z */
    assert_bytes(out, pgcopy_timestamptz(out, 946684799999999LL), "00000008 ffffffffffffffff");
}

static void uuids_are_16_bytes_and_bad_ones_refused(void **state)
{
    (void)state;
    char out[PGCOPY_UUID_LEN];

    assert_bytes(out, pgcopy_uuid(out, "0190a1b2-c3d4-7e5f-8a9b-0c1d2e3f4A5B"),
                 "00000010 0190a1b2c3d47e5f8a9b0c1d2e3f4a5b");
    const char *bad[] = {"",
                         "0190a1b2-c3d4-7e5f-8a9b-0c1d2e3f4a5",
                         "0190a1b2-c3d4-7e5f-8a9b-0c1d2e3f4a5b0",
                         "0190a1b2c3d4-7e5f-8a9b-0c1d2e3f4a5b0",
                         "0190a1b2-c3d4-7e5f-8a9b-0c1d2e3f4a5g",
                         "g190a1b2-c3d4-7e5f-8a9b-0c1d2e3f4a5b"};
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
        assert_int_equal(pgcopy_uuid(out, bad[i]), 0);
}

static void numerics_are_base_10000_digits_around_the_point(void **state)
{
    (void)state;
    /* length | ndigits weight sign dscale | digits */
    assert_numeric("0.0042", "0000000a 0001 ffff 0000 0004 002a");
    assert_numeric("12.5", "0000000c 0002 0000 0000 0001 000c 1388");
    assert_numeric("123456.789012", "00000010 0004 0001 0000 0006 000c 0d80 1ed2 04b0");
    assert_numeric("10000", "0000000a 0001 0001 0000 0000 0001");
    assert_numeric("-7", "0000000a 0001 0000 4000 0000 0007");
    assert_numeric("100.0", "0000000a 0001 0000 0000 0001 0064");
    /* exponents move the point, and the scale as the server counts it */
    assert_numeric("1e-07", "0000000a 0001 fffe 0000 0007 000a");
    assert_numeric("1.5e-07", "0000000a 0001 fffe 0000 0008 000f");
    assert_numeric("1E+3", "0000000a 0001 0000 0000 0000 03e8");
    assert_numeric("2.5e1", "0000000a 0001 0000 0000 0000 0019");
    /* zero has no digits and no sign, but keeps its scale */
    assert_numeric("0", "00000008 0000 0000 0000 0000");
    assert_numeric("-0.000", "00000008 0000 0000 0000 0003");
    /* the longest text: 39 digits in 11 groups */
    assert_numeric("1.23456789012345678901234567890123456789",
                   "0000001e 000b 0000 0000 0026"
                   " 0001 0929 1a85 007b 11d7 22c5 0929 1a85 007b 11d7 22c4");
}

static void texts_that_are_not_decimals_are_refused(void **state)
{
    (void)state;
    char out[PGCOPY_NUMERIC_MAX];
    const char *bad[] = {
        "",    "-",     ".",      "1e",      "1e+",
        "abc", "1.2.3", "1x",     "NaN",     "inf",
        " 1",  "1 ",    "1e1001", "1e-1001", "12345678901234567890123456789012345678901"};

    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
        assert_int_equal(pgcopy_numeric(out, bad[i]), 0);
    assert_true(pgcopy_numeric(out, "1e1000") > 0);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(frame_and_fixed_width_fields),
        cmocka_unit_test(timestamps_count_from_2000),
        cmocka_unit_test(uuids_are_16_bytes_and_bad_ones_refused),
        cmocka_unit_test(numerics_are_base_10000_digits_around_the_point),
        cmocka_unit_test(texts_that_are_not_decimals_are_refused),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
