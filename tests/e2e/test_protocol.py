"""test_protocol.py - HTTP rules shared by every endpoint: unknown paths and ids,
wrong methods, body size and content type, malformed JSON, security headers,
request ids, compression; every status nginx makes by itself is problem+json,
and bytes that are not UTF-8 are quoted percent-encoded."""

import contextlib
import http.client
import json
import os
import re
import signal
import subprocess
import socket
import threading
import time
import urllib.parse

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



# ---------------------------------------------------------------- raw requests

def send_raw(stack, data, timeout=10):
    """Sends data to nginx byte for byte and reads one answer:
    (status, headers, body). b"" and no headers when nginx closed the
    connection without answering."""
    url = urllib.parse.urlsplit(stack.base_url)
    with socket.create_connection((url.hostname, url.port), timeout=timeout) as sock:
        sock.sendall(data)
        response = http.client.HTTPResponse(sock)
        try:
            response.begin()
        except http.client.RemoteDisconnected:
            return None, {}, b""
        return response.status, response.headers, response.read()


# The documented response of each status nginx answers by itself.
NGINX_RESPONSES = {
    400: "BadRequest", 404: "NotFound", 413: "PayloadTooLarge", 414: "UriTooLong",
    431: "RequestHeaderFieldsTooLarge", 500: "Internal", 501: "NotImplemented",
    503: "ServiceUnavailable", 505: "HttpVersionNotSupported",
}


def raw_problem(stack, openapi, data, status, slug, title):
    """Asserts that data gets a problem+json answer with this status, type
    and title, whose body is the documented one and whose request_id is the
    X-Request-Id header; returns the body."""
    got, headers, body = send_raw(stack, data)
    assert got == status, (got, body[:300])
    assert headers["Content-Type"] == "application/problem+json", headers["Content-Type"]
    problem = json.loads(body)
    spec = openapi.doc["components"]["responses"][NGINX_RESPONSES[status]]
    openapi.check_schema(spec["content"]["application/problem+json"]["schema"], problem,
                         "nginx %d" % status)
    assert problem["type"] == "/problems/" + slug
    assert problem["title"] == title
    assert problem["status"] == status
    assert problem["request_id"] == headers["X-Request-Id"]
    assert re.match(r"^[0-9a-f]{32}$", problem["request_id"])
    return problem


def request_bytes(line, *headers, body=b""):
    """An HTTP/1.1 request: the request line, headers (Host and
    Connection: close first unless given), then body."""
    names = {h.split(b":")[0].lower() for h in headers}
    fixed = [h for h in (b"Host: fleetdash", b"Connection: close")
             if h.split(b":")[0].lower() not in names]
    return b"\r\n".join([line, *fixed, *headers, b"", body])


# ---------------------------------------------------------------- nginx-made answers

# name -> (request, status, type slug, title, instance)
NGINX_ANSWERS = {
    "400 control byte in the request line": (
        b"GET /api/v1/dashboards\x01 HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n",
        400, "bad-request", "Bad Request", "/api/v1/dashboards%01"),
    "400 no host": (
        b"GET /api/v1/dashboards HTTP/1.1\r\nConnection: close\r\n\r\n",
        400, "bad-request", "Bad Request", "/api/v1/dashboards"),
    "400 invalid content-length": (
        request_bytes(b"POST /api/v1/dashboards HTTP/1.1", b"Content-Length: ten"),
        400, "bad-request", "Bad Request", "/api/v1/dashboards"),
    "400 broken chunk": (
        request_bytes(b"POST /api/v1/dashboards HTTP/1.1", b"Content-Type: application/json",
                      b"Transfer-Encoding: chunked", body=b"zz\r\n{}\r\n0\r\n\r\n"),
        400, "bad-request", "Bad Request", "/api/v1/dashboards"),
    "404 no route": (
        request_bytes(b"GET /api/v2/dashboards HTTP/1.1"),
        404, "not-found", "Not Found", "/api/v2/dashboards"),
    "501 trace": (
        request_bytes(b"TRACE /api/v1/dashboards HTTP/1.1"),
        501, "not-implemented", "Not Implemented", "/api/v1/dashboards"),
    "501 connect": (
        request_bytes(b"CONNECT /api/v1/agents HTTP/1.1"),
        501, "not-implemented", "Not Implemented", "/api/v1/agents"),
    "413 declared length": (
        request_bytes(b"POST /api/v1/dashboards HTTP/1.1", b"Content-Type: application/json",
                      b"Content-Length: %d" % (2 * MIB)),
        413, "payload-too-large", "Payload Too Large", "/api/v1/dashboards"),
    "414 long request line": (
        request_bytes(b"GET /api/v1/dashboards?owner=" + b"a" * 9000 + b" HTTP/1.1"),
        414, "uri-too-long", "URI Too Long", ""),
    "431 long header": (
        request_bytes(b"GET /api/v1/dashboards HTTP/1.1", b"X-Pad: " + b"a" * 9000),
        431, "request-header-fields-too-large", "Request Header Fields Too Large",
        "/api/v1/dashboards"),
    "501 gzip transfer-encoding": (
        request_bytes(b"POST /api/v1/dashboards HTTP/1.1", b"Content-Type: application/json",
                      b"Transfer-Encoding: gzip"),
        501, "not-implemented", "Not Implemented", "/api/v1/dashboards"),
    "505 http/2.0 request line": (
        request_bytes(b"GET /api/v1/dashboards HTTP/2.0"),
        505, "http-version-not-supported", "HTTP Version Not Supported", "/api/v1/dashboards"),
}


@pytest.mark.parametrize("name", sorted(NGINX_ANSWERS))
def test_nginx_answers_its_own_errors_as_problem_json(stack, openapi, db, name):
    data, status, slug, title, instance = NGINX_ANSWERS[name]
    with db.unchanged():
        problem = raw_problem(stack, openapi, data, status, slug, title)
    assert problem["instance"] == instance


def test_nginx_problem_carries_the_security_headers(stack):
    status, headers, _ = send_raw(stack, request_bytes(b"GET /api/v1/dashboards HTTP/2.0"))
    assert status == 505
    for name, value in SECURITY_HEADERS.items():
        assert headers[name] == value, name


def test_unread_request_line_quotes_a_clean_target_as_sent(stack, openapi):
    problem = raw_problem(stack, openapi, request_bytes(b"GET /a%20b?c=d HTTP/2.0"), 505,
                          "http-version-not-supported", "HTTP Version Not Supported")
    assert problem["instance"] == "/a%20b"


def test_unread_request_line_percent_encodes_a_target_with_bad_bytes(stack, openapi):
    problem = raw_problem(stack, openapi, request_bytes(b'GET /a"\\\xff HTTP/2.0'), 505,
                          "http-version-not-supported", "HTTP Version Not Supported")
    assert problem["instance"] == "/a%22%5C%FF"


def test_nginx_404_percent_encodes_a_raw_byte_that_is_not_utf8(stack, openapi):
    problem = raw_problem(stack, openapi, request_bytes(b"GET /nope\xff HTTP/1.1"), 404,
                          "not-found", "Not Found")
    assert problem["instance"] == "/nope%FF"


def test_nginx_404_percent_encodes_quote_backslash_percent_of_the_decoded_path(stack, openapi):
    problem = raw_problem(stack, openapi, request_bytes(b"GET /nope%22%5c%25%c3%a9 HTTP/1.1"), 404,
                          "not-found", "Not Found")
    assert problem["instance"] == "/nope%22%5C%25%C3%A9"


def test_nginx_problem_never_runs_an_ssi_command_from_the_path(stack):
    path = b'/nope<!--%23echo%20var="request_id"%20-->'
    status, headers, body = send_raw(stack, request_bytes(b"GET " + path + b" HTTP/1.1"))
    assert status == 404
    problem = json.loads(body)
    assert problem["instance"] == "/nope%3C!--%23echo%20var=%22request_id%22%20--%3E"
    assert body.count(headers["X-Request-Id"].encode()) == 1


def test_nginx_problem_answer_keeps_the_connection_open(stack):
    url = urllib.parse.urlsplit(stack.base_url)
    with socket.create_connection((url.hostname, url.port), timeout=10) as sock:
        answers = []
        for _ in range(2):
            sock.sendall(b"GET /nope HTTP/1.1\r\nHost: x\r\n\r\n")
            response = http.client.HTTPResponse(sock)
            response.begin()
            answers.append((response.status, json.loads(response.read())["status"]))
    assert answers == [(404, 404), (404, 404)]


# ---------------------------------------------------------------- nginx-made 5xx

class SilentWorker:
    """A unix socket that accepts FastCGI connections and never answers."""

    def __init__(self, path):
        self.path = path
        self.server = socket.socket(socket.AF_UNIX)
        self.server.bind(str(path))
        os.chmod(path, 0o777)
        self.server.listen(16)
        self.held = []
        threading.Thread(target=self.accept, daemon=True).start()

    def accept(self):
        with contextlib.suppress(OSError):
            while True:
                self.held.append(self.server.accept()[0])

    def close(self):
        self.server.close()
        for conn in self.held:
            conn.close()


PROBE_LOCATIONS = """\
location = /_probe/ready {{ return 204; }}
location = /_probe/body-to-file {{
    client_body_in_file_only on;
    client_body_temp_path {dir}/body;
    fastcgi_pass unix:{dir}/absent.sock;
}}
location = /_probe/no-worker {{ fastcgi_pass unix:{dir}/absent.sock; }}
location = /_probe/silent-worker {{
    fastcgi_read_timeout 1s;
    fastcgi_pass unix:{dir}/silent.sock;
}}
location = /_probe/slow-body {{
    client_body_timeout 1s;
    fastcgi_pass unix:{dir}/absent.sock;
}}
"""


def nginx_workers(master):
    """The pids of the nginx master's worker processes."""
    children = subprocess.run(["pgrep", "-P", str(master)], capture_output=True, text=True)
    return {int(pid) for pid in children.stdout.split()}


def reload_nginx(stack, ready_status):
    """SIGHUP to the stack's nginx; waits until every worker of the old
    configuration is gone (one of them could still take a connection) and
    /_probe/ready answers ready_status."""
    master = int((stack.vardir / "run" / "nginx.pid").read_text())
    old = nginx_workers(master)
    os.kill(master, signal.SIGHUP)
    deadline = time.monotonic() + 10
    while (nginx_workers(master) & old or
           send_raw(stack, request_bytes(b"GET /_probe/ready HTTP/1.1"))[0] != ready_status):
        assert time.monotonic() < deadline, "nginx did not reload"
        time.sleep(0.05)


@pytest.fixture(scope="module")
def probes(stack):
    """Locations of the stack's nginx (a conf.d file, removed afterwards) that
    make nginx fail by itself: a body it cannot write to its temporary file
    (500), a worker socket that does not exist (502), a worker that never
    answers (504), a body that stops coming (408)."""
    probe_dir = stack.vardir / "probe"
    probe_dir.mkdir(exist_ok=True)
    probe_dir.chmod(0o755)
    conf = stack.vardir / "nginx" / "conf.d" / "zz_test_protocol_probes.conf"
    conf.write_text(PROBE_LOCATIONS.format(dir=probe_dir))
    (probe_dir / "silent.sock").unlink(missing_ok=True)
    silent = SilentWorker(probe_dir / "silent.sock")
    try:
        reload_nginx(stack, 204)
        # nginx made body/ its workers' own when it loaded: now they cannot write there
        (probe_dir / "body").chmod(0o500)
        yield
    finally:
        conf.unlink()
        reload_nginx(stack, 404)
        silent.close()


def test_body_nginx_cannot_store_is_a_500_problem(stack, openapi, probes):
    problem = raw_problem(stack, openapi, request_bytes(b"POST /_probe/body-to-file HTTP/1.1",
                                               b"Content-Length: 2", body=b"{}"),
                          500, "internal", "Internal Server Error")
    assert problem["instance"] == "/_probe/body-to-file"


def test_worker_socket_that_does_not_answer_is_a_503_problem_with_retry_after(stack, probes):
    status, headers, body = send_raw(stack, request_bytes(b"GET /_probe/no-worker HTTP/1.1"))
    assert (status, headers["Content-Type"]) == (503, "application/problem+json")
    assert json.loads(body)["type"] == "/problems/service-unavailable"
    assert headers["Retry-After"] == "5"


def test_worker_that_times_out_is_a_503_problem(stack, openapi, probes):
    problem = raw_problem(stack, openapi, request_bytes(b"GET /_probe/silent-worker HTTP/1.1"),
                          503, "service-unavailable", "Service Unavailable")
    assert problem["instance"] == "/_probe/silent-worker"


def test_body_that_stops_coming_is_closed_without_an_answer(stack, probes):
    started = time.monotonic()
    answer = send_raw(stack, request_bytes(b"POST /_probe/slow-body HTTP/1.1",
                                           b"Content-Length: 10", body=b"abc"))
    assert answer == (None, {}, b"")
    assert 0.9 < time.monotonic() - started < 5


# ---------------------------------------------------------------- bytes that are not UTF-8

@pytest.mark.parametrize("path, instance", [
    ("/api/v1/dashboards/%ff", "/api/v1/dashboards/%FF"),
    ("/api/v1/agents/%ff", "/api/v1/agents/%FF"),
    ("/api/v1/metrics/%c3%28", "/api/v1/metrics/%C3("),
], ids=["dashboards", "ingest", "aggregates"])
def test_worker_404_quotes_a_path_that_is_not_utf8_percent_encoded(api, db, path, instance):
    with db.unchanged():
        response = api.get(path)
    assert response.status_code == 404
    assert response.headers["Content-Type"] == "application/problem+json"
    body = response.json()
    assert body["instance"] == instance
    assert body["request_id"] == response.headers["X-Request-Id"]
    assert instance.rsplit("/", 1)[1] in body["detail"]


def test_raw_query_byte_that_is_not_utf8_is_a_400_quoting_it_percent_encoded(stack, openapi):
    data = request_bytes(b"GET /api/v1/dashboards?owner=\xff HTTP/1.1")
    problem = raw_problem(stack, openapi, data, 400, "bad-request", "Bad Request")
    assert problem["instance"] == "/api/v1/dashboards"
    assert problem["detail"] == 'The query string is malformed near "owner=%FF".'
