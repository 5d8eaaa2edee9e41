/* test_router.c - route tables: captures, literal before {id}, 404 and 405 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <string.h>

#include "../../fcgi/router.h"

static int h_list(request_t *req, response_t *res, problem_t *p)
{
    (void)req, (void)res, (void)p;
    return 0;
}
static int h_default(request_t *req, response_t *res, problem_t *p)
{
    (void)req, (void)res, (void)p;
    return 0;
}
static int h_get(request_t *req, response_t *res, problem_t *p)
{
    (void)req, (void)res, (void)p;
    return 0;
}
static int h_put(request_t *req, response_t *res, problem_t *p)
{
    (void)req, (void)res, (void)p;
    return 0;
}
static int h_widget(request_t *req, response_t *res, problem_t *p)
{
    (void)req, (void)res, (void)p;
    return 0;
}

static const route_t table[] = {
    {.method = "GET", .pattern = "/api/v1/dashboards", .handler = h_list},
    {.method = "GET", .pattern = "/api/v1/dashboards/default", .handler = h_default},
    {.method = "GET", .pattern = "/api/v1/dashboards/{id}", .handler = h_get},
    {.method = "PUT", .pattern = "/api/v1/dashboards/{id}", .handler = h_put},
    {.method = "GET",
     .pattern = "/api/v1/dashboards/{id}/widgets/{widget_id}",
     .handler = h_widget},
    {.method = NULL},
};

static arena_t arena;

static const route_t *match(const char *method, const char *path, request_t *req, problem_t *p)
{
    memset(req, 0, sizeof(*req));
    req->arena = &arena;
    req->method = method;
    req->path = path;
    *p = (problem_t){.arena = &arena};
    return route_match(table, req, p);
}

static int teardown(void **state)
{
    (void)state;
    arena_destroy(&arena);
    return 0;
}

static void captures_every_id_segment(void **state)
{
    (void)state;
    request_t req;
    problem_t p;
    const route_t *r = match("GET", "/api/v1/dashboards/abc/widgets/def", &req, &p);

    assert_non_null(r);
    assert_ptr_equal(r->handler, h_widget);
    assert_int_equal(req.ncaptures, 2);
    assert_string_equal(req.captures[0], "abc");
    assert_string_equal(req.captures[1], "def");
}

static void literal_segment_wins_over_capture(void **state)
{
    (void)state;
    request_t req;
    problem_t p;

    assert_ptr_equal(match("GET", "/api/v1/dashboards/default", &req, &p)->handler, h_default);
    assert_ptr_equal(match("GET", "/api/v1/dashboards/other", &req, &p)->handler, h_get);
}

static void wrong_method_is_405_with_allow(void **state)
{
    (void)state;
    request_t req;
    problem_t p;

    assert_null(match("DELETE", "/api/v1/dashboards/x", &req, &p));
    assert_int_equal(p.status, 405);
    assert_string_equal(p.allow, "GET, PUT");
    assert_null(match("PUT", "/api/v1/dashboards/default", &req, &p));
    assert_int_equal(p.status, 405);
    assert_string_equal(p.allow, "GET");
}

static void unknown_paths_are_404(void **state)
{
    (void)state;
    request_t req;
    problem_t p;
    const char *paths[] = {"/",
                           "/api/v1",
                           "/api/v1/dashboards/",
                           "/api/v1/dashboards/a/b",
                           "/api/v1/dashboardsx",
                           "/api/v1/dashboards//widgets/x"};

    for (size_t i = 0; i < sizeof(paths) / sizeof(paths[0]); i++) {
        assert_null(match("GET", paths[i], &req, &p));
        assert_int_equal(p.status, 404);
    }
}

static void head_is_answered_by_get(void **state)
{
    (void)state;
    request_t req;
    problem_t p;

    assert_ptr_equal(match("HEAD", "/api/v1/dashboards", &req, &p)->handler, h_list);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_teardown(captures_every_id_segment, teardown),
        cmocka_unit_test_teardown(literal_segment_wins_over_capture, teardown),
        cmocka_unit_test_teardown(wrong_method_is_405_with_allow, teardown),
        cmocka_unit_test_teardown(unknown_paths_are_404, teardown),
        cmocka_unit_test_teardown(head_is_answered_by_get, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
