/* test_db.c - the worker's connection against a real database: any number of
 * prepared statements. Skipped without FLEETDASH_TEST_DATABASE_URL; the
 * end-to-end suite runs it against the test stack (test_db_unit.py). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "../../fcgi/db.h"

#define STATEMENTS 300

static char names[STATEMENTS][32];
static char sqls[STATEMENTS][48];
static db_statement_t statements[STATEMENTS];

static int setup(void **state)
{
    (void)state;
    const char *url = getenv("FLEETDASH_TEST_DATABASE_URL");

    if (url == NULL || *url == '\0')
        return 0;
    db_configure(url, "fleetdash-unit");
    for (int i = 0; i < STATEMENTS; i++) {
        snprintf(names[i], sizeof(names[i]), "unit_probe_%d", i);
        snprintf(sqls[i], sizeof(sqls[i]), "SELECT %d + $1::int", i);
        statements[i] = (db_statement_t){names[i], sqls[i], 1, true};
    }
    return 0;
}

static int teardown(void **state)
{
    (void)state;
    db_close();
    return 0;
}

/* Runs statement i with 1000 as its parameter; asserts it answers i + 1000. */
static void run_statement(int i)
{
    arena_t arena = {0};
    problem_t p = {.arena = &arena};
    const char *params[] = {"1000"};
    PGresult *res = db_exec(&statements[i], params, &p);

    assert_non_null(res);
    assert_int_equal(p.status, 0);
    assert_int_equal(db_int(res, 0, 0), i + 1000);
    PQclear(res);
    arena_destroy(&arena);
}

static void any_number_of_statements_run_twice_on_one_connection(void **state)
{
    (void)state;
    if (getenv("FLEETDASH_TEST_DATABASE_URL") == NULL)
        skip();
    for (int round = 0; round < 2; round++)
        for (int i = 0; i < STATEMENTS; i++)
            run_statement(i);
}

static void statements_are_prepared_again_after_a_reconnect(void **state)
{
    (void)state;
    if (getenv("FLEETDASH_TEST_DATABASE_URL") == NULL)
        skip();
    run_statement(7);
    db_close();
    run_statement(7);
    run_statement(STATEMENTS - 1);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(any_number_of_statements_run_twice_on_one_connection),
        cmocka_unit_test(statements_are_prepared_again_after_a_reconnect),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
