/* test_json_in.c - the fast object reader against json_loadb: the same values
 * in the same order whenever it answers, NULL outside its shape, and a
 * differential run over a million mutated lines */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>

#include "../../fcgi/json_in.h"

static const char *const seeds[] = {
    "{\"agent_name\":\"bench-00\",\"model\":\"claude-sonnet\",\"started_at\":\"2026-11-21T16:48:"
    "30Z\",\"latency_ms\":200,\"status\":\"failed\",\"prompt_tokens\":900,\"completion_tokens\":"
    "150,\"cost_usd\":0.0042,\"evaluation\":{\"passed\":false,\"score\":0.8},\"metadata\":{"
    "\"region\":\"us-east-1\"},\"error\":{\"category\":\"timeout\",\"message\":\"deadline "
    "exceeded\"}}",
    " { \"a\" : -0 , \"b\" :\t-0.0e+0,\"c\":1E-400, \"d\" : null ,\"e\":true,\"f\":{ } }\r\n",
    "{\"n\":123456789012345678,\"m\":-123456789012345678,\"x\":1.5e308,\"y\":\"\",\"\":0}",
    "{\"o\":{\"p\":{\"q\":{\"r\":{\"s\":{\"t\":{\"u\":1}}}}}},\"v\":\"~\\u007f\"}",
};

/* compact text with keys in their order: equal texts, equal values */
static char *dump(const json_t *v)
{
    return json_dumps(v, JSON_COMPACT | JSON_ENCODE_ANY | JSON_REAL_PRECISION(17));
}

/* Whenever the fast reader answers, json_loadb answers the same. Returns
 * whether it answered. */
static int agrees(const char *s, size_t len)
{
    json_t *fast = json_in_object(s, len);
    if (fast == NULL)
        return 0;
    json_error_t err;
    json_t *slow = json_loadb(s, len, JSON_REJECT_DUPLICATES, &err);
    if (slow == NULL)
        fail_msg("fast reader accepted what json_loadb refuses (%s): %.*s", err.text, (int)len, s);
    char *a = dump(fast), *b = dump(slow);
    if (strcmp(a, b) != 0)
        fail_msg("fast %s\nslow %s", a, b);
    free(a);
    free(b);
    json_decref(fast);
    json_decref(slow);
    return 1;
}

static void common_lines_are_read_as_jansson_reads_them(void **state)
{
    (void)state;
    for (size_t i = 0; i < sizeof(seeds) / sizeof(seeds[0]); i++)
        assert_int_equal(agrees(seeds[i], strlen(seeds[i])), i == 3 ? 0 : 1);
    /* the seed with the escape, without it */
    const char *deep = "{\"o\":{\"p\":{\"q\":{\"r\":{\"s\":{\"t\":{\"u\":1}}}}}},\"v\":\"~\"}";
    assert_int_equal(agrees(deep, strlen(deep)), 1);
}

static void anything_else_is_left_to_jansson(void **state)
{
    (void)state;
    const char *outside[] = {
        "",
        "   ",
        "[1]",
        "\"s\"",
        "5",
        "{\"a\":\"\\n\"}",             /* an escape */
        "{\"a\":\"\xc3\xa9\"}",        /* UTF-8 */
        "{\"a\":\"\x01\"}",            /* a control character */
        "{\"a\":[1]}",                 /* an array */
        "{\"a\":1,\"a\":2}",           /* a repeated key */
        "{\"a\":01}",                  /* a leading zero */
        "{\"a\":1234567890123456789}", /* 19 digits */
        "{\"a\":1e400}",               /* overflows */
        "{\"a\":1.}",
        "{\"a\":.5}",
        "{\"a\":1e}",
        "{\"a\":-}",
        "{\"a\":tru}",
        "{\"a\":nul}",
        "{\"a\":1,}",
        "{\"a\" 1}",
        "{a:1}",
        "{\"a\":1}x",
        "{\"a\":1}{}",
        "{\"a\":1",
        "{\"a\":\"b",
        "{\"o\":{\"p\":{\"q\":{\"r\":{\"s\":{\"t\":{\"u\":{\"w\":{\"x\":1}}}}}}}}}", /* 9 deep */
    };
    for (size_t i = 0; i < sizeof(outside) / sizeof(outside[0]); i++) {
        json_t *v = json_in_object(outside[i], strlen(outside[i]));
        if (v != NULL)
            fail_msg("read: %s", outside[i]);
    }
    /* a NUL byte inside the text */
    assert_null(json_in_object("{\"a\":\"b\0c\"}", 11));
    assert_null(json_in_object("{\"a\":1}\0", 8));
}

/* xorshift: the same mutations on every run */
static uint64_t rng_state = 0x9e3779b97f4a7c15ULL;
static uint64_t rng(void)
{
    rng_state ^= rng_state << 13;
    rng_state ^= rng_state >> 7;
    rng_state ^= rng_state << 17;
    return rng_state;
}

static void mutated_lines_never_disagree(void **state)
{
    (void)state;
    static const char alphabet[] = "{}[]\":,.-+eE0123456789 \t\r\ntfnaulrs\\\x7f\x80\xc3\x01";
    char buf[1024];
    long answered = 0;

    for (long i = 0; i < 1000000; i++) {
        const char *seed = seeds[rng() % 3];
        size_t len = strlen(seed);
        memcpy(buf, seed, len);
        for (int m = 1 + (int)(rng() % 3); m > 0; m--) {
            size_t at = rng() % len;
            switch (rng() % 3) {
            case 0: buf[at] = alphabet[rng() % (sizeof(alphabet) - 1)]; break;
            case 1: /* delete a byte */
                memmove(buf + at, buf + at + 1, len - at - 1);
                len--;
                break;
            default: /* insert a byte */
                if (len + 1 < sizeof(buf)) {
                    memmove(buf + at + 1, buf + at, len - at);
                    buf[at] = alphabet[rng() % (sizeof(alphabet) - 1)];
                    len++;
                }
            }
        }
        answered += agrees(buf, len);
    }
    /* both sides were exercised: most mutations break the line, some do not */
    assert_true(answered > 10000);
    assert_true(answered < 900000);
}

static void separators_are_counted_outside_strings(void **state)
{
    (void)state;
    const char *s = "{\"a,b:\":1, \"c\":\"x\\\",:\", \"d\":{\"e\":[1,2]}}";
    /* a: 1 colon + comma; c: colon + comma ("x\",:" is one string); d: colon; e: colon, comma;
     * and the three openers: the outer {, d's { and e's [ */
    assert_int_equal(json_in_separators(s, strlen(s)), 10);
    assert_int_equal(json_in_separators("[[[[]]]]", 8), 4); /* depth costs, commas or not */
    assert_int_equal(json_in_separators("", 0), 0);
    assert_int_equal(json_in_separators("\",:,:", 5), 0); /* an unterminated string */
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(common_lines_are_read_as_jansson_reads_them),
        cmocka_unit_test(anything_else_is_left_to_jansson),
        cmocka_unit_test(mutated_lines_never_disagree),
        cmocka_unit_test(separators_are_counted_outside_strings),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
