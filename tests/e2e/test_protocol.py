"""test_protocol.py - HTTP rules shared by every endpoint: unknown paths and ids,
wrong methods, body size and content type, malformed JSON, security headers,
request ids, compression."""

import json
import re
import time

import pytest

from support import SECURITY_HEADERS, assert_problem, error_fields, etag

UNKNOWN_ID = "00000000-0000-4000-8000-000000000000"
MIB = 1024 * 1024


def dashboard_body(size=None):
    """A valid POST /dashboards body, padded to exactly `size` bytes."""
    body = {"name": "Big", "widgets": [{"type": "table", "title": "t", "config": {"pad": ""}}]}
    if size is not None:
        body["widgets"][0]["config"]["pad"] = "x" * (size - len(json.dumps(body)))
        assert len(json.dumps(body)) == size
    return body


def allowed(response):
    return {m.strip() for m in response.headers["Allow"].split(",")} - {"HEAD", "OPTIONS"}


# ---------------------------------------------------------------- paths and ids

@pytest.mark.parametrize("path", ["/nope", "/api/v1/widgets", "/api/v2/dashboards"])
def test_path_outside_every_route_is_a_404_problem(api, db, path):
    with db.unchanged():
        response = api.get(path)
    body = assert_problem(response, 404, "not-found")
    assert body["instance"] == path


@pytest.mark.parametrize("suffix", ["/nothing", "/widgets/%s/more" % UNKNOWN_ID, "/layout/x",
                                    "/"])
def test_unknown_path_below_a_dashboard_is_a_404_problem(api, db, make_dashboard, suffix):
    dashboard = make_dashboard()
    path = "/api/v1/dashboards/%s%s" % (dashboard["id"], suffix)
    with db.unchanged():
        response = api.get(path)
    assert_problem(response, 404, "not-found")


def test_path_that_only_starts_like_dashboards_is_a_404_problem(api, db):
    with db.unchanged():
        response = api.get("/api/v1/dashboardsx")
    assert_problem(response, 404, "not-found")


@pytest.mark.parametrize("bad_id", [
    "not-a-uuid", "123", "00000000000040008000000000000000",
    "00000000-0000-4000-8000-0000000000000", "00000000-0000-4000-8000-00000000000g",
])
def test_dashboard_id_that_is_not_a_uuid_is_404(api, db, bad_id):
    with db.unchanged():
        response = api.get("/api/v1/dashboards/%s" % bad_id)
    assert_problem(response, 404, "not-found")


def test_widget_id_that_is_not_a_uuid_is_404(api, db, make_dashboard):
    dashboard = make_dashboard()
    with db.unchanged():
        response = api.get("/api/v1/dashboards/%s/widgets/not-a-uuid" % dashboard["id"])
    assert_problem(response, 404, "not-found")


def test_delete_with_a_non_uuid_id_is_404_and_deletes_nothing(api, db, make_dashboard):
    make_dashboard()
    with db.unchanged():
        response = api.delete("/api/v1/dashboards/not-a-uuid")
    assert_problem(response, 404, "not-found")


# ---------------------------------------------------------------- methods

WRONG_METHODS = [
    ("DELETE", "/api/v1/dashboards", {"GET", "POST"}),
    ("PUT", "/api/v1/dashboards", {"GET", "POST"}),
    ("POST", "/api/v1/dashboards/default", {"GET"}),
    ("DELETE", "/api/v1/dashboards/default", {"GET"}),
    ("POST", "/api/v1/dashboards/{id}", {"GET", "PUT", "PATCH", "DELETE"}),
    ("GET", "/api/v1/dashboards/{id}/widgets", {"POST"}),
    ("POST", "/api/v1/dashboards/{id}/widgets/{wid}", {"GET", "PUT", "PATCH", "DELETE"}),
    ("GET", "/api/v1/dashboards/{id}/layout", {"PUT"}),
    ("PATCH", "/api/v1/dashboards/{id}/layout", {"PUT"}),
    ("POST", "/healthz", {"GET"}),
    ("DELETE", "/readyz", {"GET"}),
]


@pytest.mark.parametrize("method, template, methods", WRONG_METHODS,
                         ids=["%s %s" % (m, t) for m, t, _ in WRONG_METHODS])
def test_wrong_method_is_405_with_allow(api, db, make_dashboard, make_widget,
                                        method, template, methods):
    dashboard = make_dashboard()
    widget = make_widget(dashboard["id"])
    path = template.replace("{id}", dashboard["id"]).replace("{wid}", widget["id"])
    body = {} if method in ("POST", "PUT", "PATCH") else None
    with db.unchanged():
        if body is None:
            response = api.request(method, path)
        else:
            response = api.request(method, path, json=body)
    assert_problem(response, 405, "method-not-allowed")
    assert allowed(response) == methods


# ---------------------------------------------------------------- body size

def test_body_over_1_mib_is_a_413_problem_and_creates_nothing(api, db):
    body = json.dumps(dashboard_body(MIB + 1)).encode()
    with db.unchanged():
        response = api.post("/api/v1/dashboards", data=body,
                            headers={"Content-Type": "application/json"})
    assert_problem(response, 413, "payload-too-large")


def test_body_of_exactly_1_mib_is_accepted(api, db):
    body = dashboard_body(MIB)
    response = api.post("/api/v1/dashboards", json=body)
    assert response.status_code == 201, response.text[:500]
    assert response.json()["widgets"][0]["config"] == body["widgets"][0]["config"]
    assert db.count_dashboards() == 1


# ---------------------------------------------------------------- content type

def body_requests(dashboard_id, widget_id):
    """(method, path, valid body) of every body-carrying endpoint."""
    widget = {"type": "gauge", "title": "G"}
    return [
        ("POST", "/api/v1/dashboards", {"name": "N"}),
        ("PUT", "/api/v1/dashboards/%s" % dashboard_id, {"name": "N"}),
        ("PATCH", "/api/v1/dashboards/%s" % dashboard_id, {"name": "N"}),
        ("POST", "/api/v1/dashboards/%s/widgets" % dashboard_id, widget),
        ("PUT", "/api/v1/dashboards/%s/widgets/%s" % (dashboard_id, widget_id), widget),
        ("PATCH", "/api/v1/dashboards/%s/widgets/%s" % (dashboard_id, widget_id), {"title": "T"}),
        ("PUT", "/api/v1/dashboards/%s/layout" % dashboard_id,
         {"positions": {widget_id: {"x": 1, "y": 1, "w": 1, "h": 1}}}),
    ]


ENDPOINT_IDS = ["POST dashboards", "PUT dashboard", "PATCH dashboard", "POST widgets",
                "PUT widget", "PATCH widget", "PUT layout"]


@pytest.mark.parametrize("index", range(7), ids=ENDPOINT_IDS)
@pytest.mark.parametrize("content_type", [
    "text/plain", None, "application/x-www-form-urlencoded", "application/json-patch+json",
    "application/jsonx",
])
def test_body_that_is_not_application_json_is_415(api, db, make_dashboard, make_widget,
                                                  index, content_type):
    dashboard = make_dashboard()
    widget = make_widget(dashboard["id"])
    method, path, body = body_requests(dashboard["id"], widget["id"])[index]
    headers = {"Content-Type": content_type} if content_type else {}
    with db.unchanged():
        response = api.request(method, path, data=json.dumps(body).encode(), headers=headers)
    assert_problem(response, 415, "unsupported-media-type")


@pytest.mark.parametrize("index", range(7), ids=ENDPOINT_IDS)
def test_json_content_type_with_charset_parameter_is_accepted(api, make_dashboard, make_widget,
                                                              index):
    dashboard = make_dashboard()
    widget = make_widget(dashboard["id"])
    method, path, body = body_requests(dashboard["id"], widget["id"])[index]
    response = api.request(method, path, data=json.dumps(body).encode(),
                           headers={"Content-Type": "application/json; charset=utf-8"})
    assert response.status_code in (200, 201), response.text


# ---------------------------------------------------------------- malformed JSON

def post_raw(api, body):
    return api.post("/api/v1/dashboards", data=body, headers={"Content-Type": "application/json"})


def test_malformed_json_is_400_with_line_and_column_in_detail(api, db):
    with db.unchanged():
        response = post_raw(api, b'{\n  "name": "x",\n  oops\n}')
    body = assert_problem(response, 400, "bad-request")
    assert re.search(r"line\D{0,3}3\b", body["detail"], re.I), body["detail"]
    assert re.search(r"column\D{0,3}\d+", body["detail"], re.I), body["detail"]


def test_malformed_json_on_first_line_reports_line_1(api, db):
    with db.unchanged():
        response = post_raw(api, b'{"name": "x",,}')
    body = assert_problem(response, 400, "bad-request")
    assert re.search(r"line\D{0,3}1\b", body["detail"], re.I), body["detail"]
    assert re.search(r"column\D{0,3}\d+", body["detail"], re.I), body["detail"]


@pytest.mark.parametrize("raw", [
    b"", b"   ", b'{"name": "x"', b'{"name": "x"} trailing', b'{"name": "\xff\xfe"}',
    b"{'name': 'x'}", b'{"name": "x",}',
], ids=["empty", "blank", "unterminated", "trailing garbage", "invalid utf-8",
        "single quotes", "trailing comma"])
def test_unparsable_body_is_400_and_creates_nothing(api, db, raw):
    with db.unchanged():
        response = post_raw(api, raw)
    assert_problem(response, 400, "bad-request")


def test_chunked_request_body_is_read_whole(api, db):
    body = json.dumps({"name": "chunked", "description": "é" * 5000}).encode()
    chunks = (body[i:i + 1000] for i in range(0, len(body), 1000))
    response = api.post("/api/v1/dashboards", data=chunks,
                        headers={"Content-Type": "application/json"})
    assert response.status_code == 201, response.text
    assert response.json()["description"] == "é" * 5000
    assert db.count_dashboards() == 1


def test_deeply_nested_config_is_refused_without_a_server_error(api, db):
    config = "[" * 5000 + "]" * 5000
    raw = ('{"name": "d", "widgets": [{"type": "table", "title": "t", "config": {"a": %s}}]}'
           % config).encode()
    with db.unchanged():
        response = post_raw(api, raw)
    assert response.status_code in (400, 422), response.text


@pytest.mark.parametrize("raw", [b"[]", b'"name"', b"5", b"null", b"true"])
def test_body_that_is_not_an_object_is_422(api, db, raw):
    with db.unchanged():
        response = post_raw(api, raw)
    assert error_fields(response)


def test_nul_character_in_a_string_is_refused_not_a_server_error(api, db):
    with db.unchanged():
        response = post_raw(api, b'{"name": "a\\u0000b"}')
    assert response.status_code in (400, 422), response.text


# ---------------------------------------------------------------- headers and request ids

def _kinds():
    """name -> function(api, dashboard, widget) making one kind of response."""
    did = lambda d: "/api/v1/dashboards/%s" % d["id"]
    return {
        "200 healthz": lambda api, d, w: api.get("/healthz"),
        "200 list": lambda api, d, w: api.get("/api/v1/dashboards"),
        "201 create": lambda api, d, w: api.post("/api/v1/dashboards", json={"name": "n"}),
        "204 delete": lambda api, d, w: api.delete(did(d)),
        "304 not modified": lambda api, d, w: api.get(did(d), headers={"If-None-Match": etag(2)}),
        "400 malformed": lambda api, d, w: post_raw(api, b"{"),
        "400 bad limit": lambda api, d, w: api.get("/api/v1/dashboards", params={"limit": "0"}),
        "404 nginx": lambda api, d, w: api.get("/nope"),
        "404 app": lambda api, d, w: api.get("/api/v1/dashboards/%s" % UNKNOWN_ID),
        "405": lambda api, d, w: api.delete("/api/v1/dashboards"),
        "412": lambda api, d, w: api.delete(did(d), headers={"If-Match": etag(9)}),
        "413": lambda api, d, w: post_raw(api, b" " * (MIB + 1)),
        "415": lambda api, d, w: api.post("/api/v1/dashboards", data=b"{}",
                                          headers={"Content-Type": "text/plain"}),
        "422": lambda api, d, w: api.post("/api/v1/dashboards", json={}),
    }


KINDS = _kinds()


@pytest.mark.parametrize("kind", sorted(KINDS))
def test_every_response_carries_security_headers_and_a_request_id(api, make_dashboard,
                                                                  make_widget, kind):
    dashboard = make_dashboard()
    widget = make_widget(dashboard["id"])
    response = KINDS[kind](api, dashboard, widget)
    assert str(response.status_code) == kind.split()[0]
    for name, value in SECURITY_HEADERS.items():
        assert response.headers.get(name) == value, name
    assert re.match(r"^[0-9a-f]{32}$", response.headers["X-Request-Id"])


@pytest.mark.parametrize("kind", sorted(k for k in KINDS if k[0] in "45"))
def test_problem_request_id_equals_the_x_request_id_header(api, make_dashboard, make_widget,
                                                          kind):
    dashboard = make_dashboard()
    widget = make_widget(dashboard["id"])
    response = KINDS[kind](api, dashboard, widget)
    assert response.headers["Content-Type"].startswith("application/problem+json")
    assert response.json()["request_id"] == response.headers["X-Request-Id"]


def test_each_request_gets_its_own_request_id(api):
    ids = {api.get("/healthz").headers["X-Request-Id"] for _ in range(5)}
    assert len(ids) == 5


def test_request_id_appears_in_the_group_log(api, stack):
    response = api.get("/api/v1/dashboards/%s" % UNKNOWN_ID)
    request_id = response.headers["X-Request-Id"]
    deadline = time.monotonic() + 5
    while True:
        log = stack.log_file("dashboards").read_text(errors="replace")
        lines = [line for line in log.splitlines() if request_id in line]
        if lines or time.monotonic() > deadline:
            break
        time.sleep(0.05)
    assert len(lines) == 1, lines
    assert "404" in lines[0] and "GET" in lines[0]


# ---------------------------------------------------------------- compression

def test_compressed_dashboard_carries_a_weak_etag_that_if_match_accepts(api, make_dashboard):
    widgets = [{"type": "table", "title": "Table %d" % i, "config": {"pad": "y" * 200}}
               for i in range(10)]
    dashboard = make_dashboard(widgets=widgets)
    response = api.get("/api/v1/dashboards/%s" % dashboard["id"],
                       headers={"Accept-Encoding": "gzip"})
    assert response.status_code == 200
    assert response.headers["Content-Encoding"] == "gzip"
    assert response.headers["ETag"] == 'W/"1"'
    response = api.patch("/api/v1/dashboards/%s" % dashboard["id"], json={"name": "Renamed"},
                         headers={"If-Match": 'W/"1"'})
    assert response.status_code == 200, response.text
    assert response.json()["version"] == 2

