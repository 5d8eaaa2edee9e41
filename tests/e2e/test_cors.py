"""test_cors.py - browsers on other origins: an allow-list in nginx
(nginx/conf.d/*.cors, as /etc/fleetdash/nginx.d/*.cors in production; here
one origin, written by the test and nginx reloaded), simple requests and
preflights from an allowed and from a refused origin, the methods a
preflight answers compared with `fleetdashd --routes` (several groups for
one path), nginx's own errors, and the answer to every other origin
unchanged."""

import os
import re
import signal
import subprocess
import time

import pytest
import requests

from support import assert_problem
from test_protocol import nginx_workers
from test_routes import routes as group_routes

ALLOWED = "https://app.example.test"
REFUSED = "https://evil.example.test"
EXPOSED = "ETag, Location, Retry-After, X-Request-Id, Idempotent-Replayed, WWW-Authenticate"


def reload_until(stack, origin_allowed):
    """SIGHUP to the stack's nginx; waits until the old workers are gone and
    an answer to ALLOWED carries Access-Control-Allow-Origin or not."""
    master = int((stack.vardir / "run" / "nginx.pid").read_text())
    old = nginx_workers(master)
    os.kill(master, signal.SIGHUP)
    deadline = time.monotonic() + 10
    while True:
        got = requests.get(stack.base_url + "/healthz", headers={"Origin": ALLOWED}, timeout=5)
        if not nginx_workers(master) & old and \
                ("Access-Control-Allow-Origin" in got.headers) == origin_allowed:
            return
        assert time.monotonic() < deadline, "nginx did not reload"
        time.sleep(0.05)


@pytest.fixture(scope="module")
def allowed(stack):
    conf = stack.vardir / "nginx" / "conf.d" / "zz_test_cors.cors"
    conf.write_text('"%s" $http_origin;\n' % ALLOWED)
    try:
        reload_until(stack, True)
        yield
    finally:
        conf.unlink()
        reload_until(stack, False)


def cors_headers(response):
    return {k: v for k, v in response.headers.items()
            if k.lower().startswith("access-control-") or k.lower() == "vary"}


def preflight(api, path, origin, method="PUT", headers="authorization, content-type, if-match"):
    # OPTIONS is no operation of the API (docs/openapi.yaml says so in its
    # description): not checked against it
    return api.request("OPTIONS", path, validate=False, headers={
        "Origin": origin, "Access-Control-Request-Method": method,
        "Access-Control-Request-Headers": headers})


def methods_of(path):
    """Every method `fleetdashd --routes` has for path, in any group."""
    found = set()
    for rows in group_routes()[0].values():
        for method, pattern in rows:
            regex = "^" + re.sub(r"\\\{[^}]*\\\}", "[^/]+", re.escape(pattern)) + "$"
            if re.match(regex, path):
                found.add(method)
    if "GET" in found:
        found.add("HEAD")
    return found


def test_a_simple_request_from_an_allowed_origin_is_told_it_may_read(api, allowed,
                                                                      make_dashboard):
    dashboard = make_dashboard()
    got = api.get("/api/v1/dashboards/" + dashboard["id"], headers={"Origin": ALLOWED})
    assert got.status_code == 200
    assert got.headers["Access-Control-Allow-Origin"] == ALLOWED
    assert got.headers["Access-Control-Expose-Headers"] == EXPOSED
    assert "Origin" in [v.strip() for v in got.headers["Vary"].split(",")]
    assert "Access-Control-Allow-Methods" not in got.headers     # only a preflight's


def test_every_other_origin_gets_the_answer_unchanged(api, allowed, make_dashboard):
    dashboard = make_dashboard()
    path = "/api/v1/dashboards/" + dashboard["id"]
    plain = api.get(path)
    for headers in ({"Origin": REFUSED}, {"Origin": ALLOWED + ".evil"}, {"Origin": "null"}, {}):
        got = api.get(path, headers=headers)
        assert (got.status_code, got.content) == (plain.status_code, plain.content)
        assert cors_headers(got) == cors_headers(plain) == {}, headers


def test_a_preflight_answers_the_methods_and_headers_of_its_path(api, allowed, make_dashboard):
    dashboard = make_dashboard()
    path = "/api/v1/dashboards/" + dashboard["id"]
    got = preflight(api, path, ALLOWED)
    assert got.status_code == 204, got.text
    assert got.content == b""
    assert got.headers["Access-Control-Allow-Origin"] == ALLOWED
    methods = {m.strip() for m in got.headers["Access-Control-Allow-Methods"].split(",")}
    assert methods == methods_of(path) and "PUT" in methods and "POST" not in methods
    allowed_headers = {h.strip().lower() for h in
                       got.headers["Access-Control-Allow-Headers"].split(",")}
    assert {"authorization", "content-type", "if-match", "if-none-match",
            "idempotency-key"} <= allowed_headers
    assert got.headers["Access-Control-Max-Age"] == "600"


@pytest.mark.parametrize("path", ["/api/v1/executions", "/api/v1/agents/summary",
                                  "/api/v1/alerts", "/api/v1/activity", "/healthz"])
def test_a_preflight_lists_the_methods_of_every_group_serving_the_path(api, allowed, path):
    got = preflight(api, path, ALLOWED, method="GET")
    assert got.status_code == 204, got.text
    methods = {m.strip() for m in got.headers["Access-Control-Allow-Methods"].split(",")}
    assert methods == methods_of(path)
    if path == "/api/v1/executions":
        assert {"GET", "POST"} <= methods          # aggregates reads, ingest writes


def test_a_preflight_from_a_refused_origin_is_answered_as_before(api, allowed):
    got = preflight(api, "/api/v1/dashboards", REFUSED, method="POST")
    plain = api.request("OPTIONS", "/api/v1/dashboards", validate=False)
    assert got.status_code == plain.status_code == 405
    assert got.headers["Allow"] == plain.headers["Allow"]
    assert cors_headers(got) == {}


def test_a_preflight_of_a_path_no_group_has_is_a_404_the_browser_can_read(api, allowed):
    got = preflight(api, "/api/v1/dashboards/x/y/z", ALLOWED)
    body = assert_problem(got, 404, "not-found")
    assert got.headers["Access-Control-Allow-Origin"] == ALLOWED
    assert "Access-Control-Allow-Methods" not in got.headers
    assert body["detail"]


def test_nginx_made_errors_carry_the_header_for_an_allowed_origin(api, stack, allowed):
    got = requests.get(stack.base_url + "/nothing-here", headers={"Origin": ALLOWED}, timeout=5)
    assert got.status_code == 404
    assert got.headers["Access-Control-Allow-Origin"] == ALLOWED
    refused = requests.get(stack.base_url + "/nothing-here", headers={"Origin": REFUSED},
                           timeout=5)
    assert cors_headers(refused) == {}


def test_stack_sh_refuses_an_origin_that_is_not_one(tmp_path):
    out = subprocess.run(["deploy/stack.sh", "up", str(tmp_path / "vardir")],
                         env=dict(os.environ, FLEETDASH_CORS_ORIGINS="https://ok.test evil\";"),
                         capture_output=True, text=True, timeout=60,
                         cwd=os.path.join(os.path.dirname(__file__), "..", ".."))
    assert out.returncode != 0
    assert "FLEETDASH_CORS_ORIGINS" in out.stderr, out.stderr
