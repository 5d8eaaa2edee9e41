/* test_auth.c - API keys: their shape and checksum, role names, the roles of a route as words */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>
#include <cmocka.h>

#include "../../fcgi/auth.h"

static void a_made_key_is_well_formed_and_unique(void **state)
{
    (void)state;
    char a[AUTH_KEY_LEN + 1], b[AUTH_KEY_LEN + 1];

    assert_int_equal(auth_key_make(a), 0);
    assert_int_equal(auth_key_make(b), 0);
    assert_int_equal(strlen(a), 42);
    assert_memory_equal(a, "fdk_", 4);
    assert_true(auth_key_well_formed(a, strlen(a)));
    assert_true(auth_key_well_formed(b, strlen(b)));
    assert_string_not_equal(a, b);
}

static void one_character_changed_breaks_the_checksum(void **state)
{
    (void)state;
    char key[AUTH_KEY_LEN + 1];

    assert_int_equal(auth_key_make(key), 0);
    for (size_t i = 4; i < AUTH_KEY_LEN; i++) {
        char typo[AUTH_KEY_LEN + 1];
        memcpy(typo, key, sizeof(typo));
        typo[i] = typo[i] == 'x' ? 'y' : 'x';
        assert_false(auth_key_well_formed(typo, AUTH_KEY_LEN));
    }
}

static void other_shapes_are_refused(void **state)
{
    (void)state;
    char key[AUTH_KEY_LEN + 1];

    assert_int_equal(auth_key_make(key), 0);
    assert_false(auth_key_well_formed(key, AUTH_KEY_LEN - 1));
    assert_false(auth_key_well_formed("", 0));
    key[1] = 'x'; /* the prefix */
    assert_false(auth_key_well_formed(key, AUTH_KEY_LEN));
    /* a character outside base62, checksum notwithstanding */
    assert_false(auth_key_well_formed("fdk_-----------------------------------000000", 42));
}

static void the_checksum_is_crc32_in_base62(void **state)
{
    (void)state;
    /* zlib.crc32(b"fdk_" + b"0" * 32) written in base62, six digits, most
     * significant first (computed with Python's zlib) */
    assert_true(auth_key_well_formed("fdk_000000000000000000000000000000001u5Dbz", 42));
    assert_false(auth_key_well_formed("fdk_000000000000000000000000000000001u5Dby", 42));
}

static void roles_have_names_and_routes_list_them(void **state)
{
    (void)state;
    char buf[AUTH_ROLE_NAMES_MAX];

    assert_int_equal(auth_role_bit("viewer"), ROLE_VIEWER);
    assert_int_equal(auth_role_bit("metrics"), ROLE_METRICS);
    assert_int_equal(auth_role_bit("root"), 0);
    assert_int_equal(auth_role_bit(NULL), 0);
    assert_string_equal(auth_role_name(ROLE_ADMIN), "admin");
    assert_null(auth_role_name(ROLES_EDIT));
    assert_string_equal(auth_roles_text(ROLES_READ, buf, sizeof(buf)), "viewer,editor,admin");
    assert_string_equal(auth_roles_text(ROLES_INGEST_READ, buf, sizeof(buf)),
                        "viewer,editor,ingest,admin");
    assert_string_equal(auth_roles_text(ROLES_METRICS, buf, sizeof(buf)), "admin,metrics,trusted");
    assert_string_equal(auth_roles_text(ROLES_PUBLIC, buf, sizeof(buf)), "public");
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(a_made_key_is_well_formed_and_unique),
        cmocka_unit_test(one_character_changed_breaks_the_checksum),
        cmocka_unit_test(other_shapes_are_refused),
        cmocka_unit_test(the_checksum_is_crc32_in_base62),
        cmocka_unit_test(roles_have_names_and_routes_list_them),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
