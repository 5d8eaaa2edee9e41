"""test_access.py - API keys and roles, and the audit log: every route
without a key (401), each role against every route (the matrix of
tests/e2e/test_routes.py), malformed, expired and deleted keys (refused within
a second on every worker), the first key of the stack and `fleetdashd
--new-key`, GET /metrics with a key where the address is not trusted, and an
audit record for every kind of write and none for reads or failures."""

import datetime
import os
import random
import re
import subprocess
import time
import uuid
import zlib

import pytest

from support import assert_problem, error_fields, log_records, now_utc, utc
from test_routes import expected_roles, fleetdashd, route_lines

SAMPLE_ID = "0190a8e2-5b7c-7d3e-9f10-1a2b3c4d5e6f"
ROLES = ("viewer", "editor", "ingest", "admin", "metrics")
NOT_A_KEY = "fdk_" + "A" * 38     # the right shape, the wrong checksum


def api_routes():
    """(method, path with sample ids) of every route that needs a key, once
    each (the streams group serves the ingest routes again)."""
    seen = set()
    for group, method, pattern, roles in route_lines():
        if method == "job" or roles == "public":
            continue
        path = re.sub(r"\{[^}]+\}", SAMPLE_ID, pattern)
        if (method, path) not in seen:
            seen.add((method, path))
            yield group, method, pattern, path


@pytest.fixture(scope="module")
def keys(api):
    """A key of every role, made through the API: {role: (id, secret)}."""
    made = {}
    for role in ROLES:
        response = api.post("/api/v1/api-keys", json={"name": "test %s" % role, "role": role})
        assert response.status_code == 201, response.text
        body = response.json()
        made[role] = (body["id"], body["key"])
    yield made
    for key_id, _ in made.values():
        api.delete("/api/v1/api-keys/%s" % key_id)


def make_key(api, **fields):
    response = api.post("/api/v1/api-keys", json={"name": "temp", "role": "viewer", **fields})
    assert response.status_code == 201, response.text
    return response.json()


# ---------------------------------------------------------------- no key, bad keys

def test_every_route_without_a_key_is_a_401_asking_for_bearer(api, db):
    anonymous = api.with_key(None)
    with db.unchanged():
        for _, method, pattern, path in api_routes():
            if pattern == "/metrics":
                continue                           # this host needs no key for it
            response = anonymous.request(method, path)
            body = assert_problem(response, 401, "unauthorized")
            assert response.headers["WWW-Authenticate"] == 'Bearer realm="fleetdash"', path
            assert "Authorization: Bearer" in body["detail"]


def test_a_path_no_route_has_is_a_401_without_a_key_and_a_404_with_one(api):
    # (no path of the document: a 401 for it is not checked against it)
    assert_problem(api.with_key(None).get("/api/v1/dashboards/a/b/c", validate=False), 401,
                   "unauthorized")
    assert_problem(api.get("/api/v1/dashboards/a/b/c"), 404, "not-found")


def test_health_checks_need_no_key(api):
    anonymous = api.with_key(None)
    assert anonymous.get("/healthz").status_code == 200
    assert anonymous.get("/readyz").status_code == 200


@pytest.mark.parametrize("header, error", [
    ("Bearer " + NOT_A_KEY, "invalid_token"),            # a typo: refused by its checksum
    ("Bearer fdk_short", "invalid_token"),
    ("Bearer " + "x" * 42, "invalid_token"),
    ("Basic dXNlcjpwYXNz", "invalid_request"),
    ("Bearer", "invalid_request"),
    ("Bearer " + NOT_A_KEY + " and more", "invalid_request"),
])
def test_a_malformed_key_is_a_401_naming_the_error(api, header, error):
    response = api.with_key(None).get("/api/v1/dashboards", headers={"Authorization": header})
    assert_problem(response, 401, "unauthorized")
    assert response.headers["WWW-Authenticate"] == (
        'Bearer realm="fleetdash", error="%s"' % error)


BASE62 = "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz"


def well_formed_key():
    """A key of fleetdash's shape: fdk_, 32 base62 characters, and the
    CRC32 (zlib's) of those 36 as 6 base62 digits, most significant first."""
    body = "fdk_" + "".join(random.choice(BASE62) for _ in range(32))
    crc, check = zlib.crc32(body.encode()), ""
    for _ in range(6):
        crc, digit = divmod(crc, 62)
        check = BASE62[digit] + check
    return body + check


def test_the_checksum_is_crc32_in_base62(keys):
    for _, secret in keys.values():
        body, crc, check = secret[:36], zlib.crc32(secret[:36].encode()), ""
        for _ in range(6):
            crc, digit = divmod(crc, 62)
            check = BASE62[digit] + check
        assert secret[36:] == check


def test_a_well_formed_key_nobody_made_is_a_401(api, keys):
    response = api.with_key(well_formed_key()).get("/api/v1/dashboards")
    body = assert_problem(response, 401, "unauthorized")
    assert "unknown" in body["detail"]
    secret = keys["viewer"][1]
    typo = secret[:10] + ("B" if secret[10] != "B" else "C") + secret[11:]
    body = assert_problem(api.with_key(typo).get("/api/v1/dashboards"), 401, "unauthorized")
    assert "checksum" in body["detail"]     # refused before any database read


# ---------------------------------------------------------------- the role matrix

def test_each_role_may_call_exactly_the_routes_of_the_matrix(api, keys):
    wrong = []
    for role, (_, secret) in keys.items():
        client = api.with_key(secret)
        for group, method, pattern, path in api_routes():
            allowed = role in expected_roles(group, method, pattern).split(",")
            trusted = pattern == "/metrics"    # this host needs no key for it
            response = client.request(method, path)
            if allowed or trusted:
                if response.status_code in (401, 403):
                    wrong.append((role, method, path, response.status_code))
            elif response.status_code != 403:
                wrong.append((role, method, path, response.status_code))
            else:
                body = assert_problem(response, 403, "forbidden")
                assert "role %s may not %s %s" % (role, method, pattern) in body["detail"]
    assert wrong == []


def test_a_refused_write_changes_nothing(api, keys, db, make_dashboard):
    dashboard = make_dashboard()
    viewer = api.with_key(keys["viewer"][1])
    ingest = api.with_key(keys["ingest"][1])
    with db.unchanged():
        assert viewer.post("/api/v1/dashboards", json={"name": "x"}).status_code == 403
        assert viewer.delete("/api/v1/dashboards/%s" % dashboard["id"]).status_code == 403
        assert ingest.get("/api/v1/dashboards/%s" % dashboard["id"]).status_code == 403
        assert ingest.post("/api/v1/alerts", json={"title": "x"}).status_code == 403
        assert viewer.post("/api/v1/api-keys", json={"name": "x", "role": "admin"}).status_code == 403


# ---------------------------------------------------------------- expiry, deletion

def test_an_expired_key_is_a_401(api):
    key = make_key(api, expires_at=utc(now_utc() + datetime.timedelta(seconds=2)))
    client = api.with_key(key["key"])
    assert client.get("/api/v1/dashboards").status_code == 200
    time.sleep(max(0.0, (datetime.datetime.fromisoformat(
        key["expires_at"].replace("Z", "+00:00")) - now_utc()).total_seconds()) + 0.05)
    response = client.get("/api/v1/dashboards")
    body = assert_problem(response, 401, "unauthorized")
    assert "expired" in body["detail"]
    assert 'error="invalid_token"' in response.headers["WWW-Authenticate"]


def test_a_deleted_key_is_refused_by_every_worker_within_a_second(api, stack):
    key = make_key(api)
    client = api.with_key(key["key"])
    # warm the caches of every worker of the groups (nginx keeps a few
    # connections; many requests reach all four workers of a group)
    for _ in range(40):
        assert client.get("/api/v1/dashboards").status_code == 200
        assert client.get("/api/v1/executions/summary").status_code == 200
    assert api.delete("/api/v1/api-keys/%s" % key["id"]).status_code == 204
    deleted = time.monotonic()
    late = []
    while time.monotonic() - deleted < 2.5:
        for path in ("/api/v1/dashboards", "/api/v1/executions/summary", "/api/v1/alerts"):
            response = client.get(path)
            elapsed = time.monotonic() - deleted
            if response.status_code != 401 and elapsed > 1.0:
                late.append((path, response.status_code, round(elapsed, 3)))
    assert late == []
    assert api.get("/api/v1/api-keys/%s" % key["id"]).status_code == 404


def test_last_used_is_written_when_a_key_is_used(api):
    key = make_key(api)
    assert key["last_used_at"] is None
    assert api.with_key(key["key"]).get("/api/v1/dashboards").status_code == 200
    listed = api.get("/api/v1/api-keys/%s" % key["id"]).json()
    assert listed["last_used_at"] is not None
    assert "key" not in listed
    api.delete("/api/v1/api-keys/%s" % key["id"])


# ---------------------------------------------------------------- the keys' routes

def test_a_new_key_is_answered_once_and_only_its_hash_is_stored(api, db):
    response = api.post("/api/v1/api-keys", json={"name": "ci", "role": "ingest"})
    assert response.status_code == 201
    body = response.json()
    assert re.fullmatch(r"fdk_[0-9A-Za-z]{38}", body["key"])
    assert body["prefix"] == body["key"][:12]
    assert response.headers["Location"] == "/api/v1/api-keys/%s" % body["id"]
    stored = db.rows("SELECT encode(key_hash, 'hex'), prefix FROM api_keys WHERE id = %s",
                     (body["id"],))
    import hashlib
    assert stored == [(hashlib.sha256(body["key"].encode()).hexdigest(), body["prefix"])]
    assert db.count("api_keys", "key_hash::text LIKE %s", ("%" + body["key"][4:20] + "%",)) == 0
    again = api.get("/api/v1/api-keys/%s" % body["id"]).json()
    assert "key" not in again and again["role"] == "ingest"
    listed = api.get("/api/v1/api-keys", params={"limit": 100}).json()["items"]
    assert body["id"] in {k["id"] for k in listed}
    assert all("key" not in k for k in listed)
    assert api.delete("/api/v1/api-keys/%s" % body["id"]).status_code == 204
    assert_problem(api.delete("/api/v1/api-keys/%s" % body["id"]), 404, "not-found")


@pytest.mark.parametrize("fields, bad", [
    ({"role": "viewer"}, {"name"}),
    ({"name": "x"}, {"role"}),
    ({"name": "x", "role": "root"}, {"role"}),
    ({"name": "", "role": "viewer"}, {"name"}),
    ({"name": "x", "role": "viewer", "expires_at": "tomorrow"}, {"expires_at"}),
    ({"name": "x", "role": "viewer", "expires_at": "2020-01-01T00:00:00Z"}, {"expires_at"}),
    ({"name": "x", "role": "viewer", "scope": "all"}, {"scope"}),
])
def test_a_bad_key_request_is_a_422_naming_the_field_and_changes_nothing(api, db, fields, bad):
    with db.unchanged():
        assert error_fields(api.post("/api/v1/api-keys", json=fields)) == bad


def test_new_key_command_prints_a_working_key_once(api, stack):
    env = dict(os.environ)
    result = subprocess.run([fleetdashd(), "--new-key", "from the command", "--role", "viewer",
                             "--database-url", stack.env["DATABASE_URL"]],
                            capture_output=True, text=True, timeout=20, env=env)
    assert result.returncode == 0, result.stderr
    secret = result.stdout.strip()
    assert re.fullmatch(r"fdk_[0-9A-Za-z]{38}", secret)
    assert "shown only now" in result.stderr
    client = api.with_key(secret)
    assert client.get("/api/v1/dashboards").status_code == 200
    assert client.post("/api/v1/dashboards", json={"name": "no"}).status_code == 403
    bad = subprocess.run([fleetdashd(), "--new-key", "x", "--role", "root",
                          "--database-url", stack.env["DATABASE_URL"]],
                         capture_output=True, text=True, timeout=20)
    assert bad.returncode == 64 and "--role must be" in bad.stderr


def test_the_stack_has_its_first_admin_key_in_stack_env(api, stack):
    key = stack.key
    assert re.fullmatch(r"fdk_[0-9A-Za-z]{38}", key)
    assert ("FLEETDASH_KEY='%s'" % key) in (stack.vardir / "stack.env").read_text()
    listed = api.get("/api/v1/api-keys", params={"limit": 100}).json()["items"]
    first = [k for k in listed if k["prefix"] == key[:12]]
    assert len(first) == 1 and first[0]["role"] == "admin"
    assert first[0]["name"].startswith("first admin key")


# ---------------------------------------------------------------- /metrics

def fastcgi(socket, path, authorization=None):
    """One GET straight to a group's socket (cgi-fcgi), without nginx and so
    without FLEETDASH_TRUSTED: (status, raw output)."""
    env = dict(os.environ, REQUEST_METHOD="GET", DOCUMENT_URI=path, REQUEST_URI=path,
               QUERY_STRING="", REQUEST_ID="test-access")
    if authorization:
        env["HTTP_AUTHORIZATION"] = authorization
    out = subprocess.run(["cgi-fcgi", "-bind", "-connect", str(socket)], env=env,
                         capture_output=True, text=True, timeout=10).stdout
    return int(re.search(r"^Status: (\d+)", out, re.M).group(1)), out


def test_metrics_from_an_untrusted_address_takes_a_metrics_or_admin_key(stack, keys):
    socket = stack.vardir / "run" / "dashboards.sock"
    status, out = fastcgi(socket, "/metrics")
    assert status == 401 and "WWW-Authenticate: Bearer" in out
    assert fastcgi(socket, "/metrics", "Bearer " + keys["viewer"][1])[0] == 403
    assert fastcgi(socket, "/metrics", "Bearer " + keys["editor"][1])[0] == 403
    for role in ("metrics", "admin"):
        status, out = fastcgi(socket, "/metrics", "Bearer " + keys[role][1])
        assert status == 200 and "# HELP fleetdash_" in out, role
    status, _ = fastcgi(socket, "/api/v1/dashboards", "Bearer " + keys["metrics"][1])
    assert status == 403


# ---------------------------------------------------------------- logs

def test_the_key_id_is_in_the_workers_and_nginx_records(api, stack, keys):
    key_id, secret = keys["viewer"]
    response = api.with_key(secret).get("/api/v1/dashboards")
    assert "X-Fleetdash-Key-Id" not in response.headers     # for the logs only
    request_id = response.headers["X-Request-Id"]
    deadline = time.monotonic() + 5
    while True:
        worker = [r for r in log_records(stack.log_file("dashboards").read_text(errors="replace"))
                  if r.get("request_id") == request_id]
        access = [r for r in log_records((stack.vardir / "log" / "nginx-access.log").read_text(errors="replace"))
                  if r.get("request_id") == request_id]
        if (worker and access) or time.monotonic() > deadline:
            break
        time.sleep(0.2)
    assert worker and worker[0]["key_id"] == key_id
    assert access and access[0]["key_id"] == key_id


# ---------------------------------------------------------------- the audit log

def audit(api, **params):
    response = api.get("/api/v1/audit", params={"limit": 100, **params})
    assert response.status_code == 200, response.text
    return response.json()["items"]


def audit_of(api, response):
    """The audit record of one answered request (by its request id)."""
    request_id = response.headers["X-Request-Id"]
    found = [r for r in audit(api, **{"from": utc(now_utc() - datetime.timedelta(minutes=5))})
             if r["request_id"] == request_id]
    return found


@pytest.mark.ingest
def test_every_kind_of_write_leaves_one_audit_record_and_reads_none(api, keys, make_dashboard):
    editor_id, editor = keys["editor"]
    ingest_id, ingester = keys["ingest"]
    as_editor, as_ingest = api.with_key(editor), api.with_key(ingester)
    dashboard = as_editor.post("/api/v1/dashboards", json={"name": "audited"})
    did = dashboard.json()["id"]
    writes = [(dashboard, editor_id, "POST", "/api/v1/dashboards", did, None, 1)]
    patch = as_editor.patch("/api/v1/dashboards/%s" % did, json={"description": "d"})
    writes.append((patch, editor_id, "PATCH", "/api/v1/dashboards/%s" % did, did, 1, 2))
    widget = as_editor.post("/api/v1/dashboards/%s/widgets" % did,
                            json={"type": "metric_card", "title": "w"})
    wid = widget.json()["id"]
    writes.append((widget, editor_id, "POST", "/api/v1/dashboards/%s/widgets" % did, wid, 2, 3))
    alert = as_editor.post("/api/v1/alerts", json={"title": "by hand", "severity": "low"})
    aid = alert.json()["id"]
    writes.append((alert, editor_id, "POST", "/api/v1/alerts", aid, None, None))
    ack = as_editor.post("/api/v1/alerts/%s/acknowledge" % aid, json={"by": "ana"})
    writes.append((ack, editor_id, "POST", "/api/v1/alerts/%s/acknowledge" % aid, aid, None,
                   None))
    agent = as_ingest.post("/api/v1/agents", json={"name": "audited-agent"})
    agent_id = agent.json()["id"]
    writes.append((agent, ingest_id, "POST", "/api/v1/agents", agent_id, None, None))
    beat = as_ingest.post("/api/v1/agents/%s/heartbeat" % agent_id, json={})
    writes.append((beat, ingest_id, "POST", "/api/v1/agents/%s/heartbeat" % agent_id, agent_id,
                   None, None))
    execution = as_ingest.post("/api/v1/executions", json={
        "agent_id": agent_id, "model": "gpt-test", "status": "succeeded",
        "started_at": utc(now_utc()), "latency_ms": 10})
    writes.append((execution, ingest_id, "POST", "/api/v1/executions", None, None, None))
    delete = as_editor.delete("/api/v1/dashboards/%s" % did)
    writes.append((delete, editor_id, "DELETE", "/api/v1/dashboards/%s" % did, did, 3, None))
    for response, key_id, method, path, resource, before, after in writes:
        assert response.status_code < 300, (path, response.status_code, response.text)
        records = audit_of(api, response)
        assert len(records) == 1, (method, path, records)
        record = records[0]
        assert record["key_id"] == key_id and record["method"] == method, record
        assert record["path"] == path and record["resource_id"] == resource, record
        assert record["status"] == response.status_code, record
        assert record["role"] in ("editor", "ingest") and record["key_name"].startswith("test ")
        assert (record["version_before"], record["version_after"]) == (before, after), record
    # reads leave none
    for read in (as_editor.get("/api/v1/dashboards"), as_editor.get("/api/v1/alerts"),
                 as_ingest.get("/api/v1/agents/%s" % agent_id)):
        assert read.status_code == 200
        assert audit_of(api, read) == []


def test_a_failed_write_leaves_no_audit_record(api, db):
    with db.unchanged():
        bad = api.post("/api/v1/dashboards", json={"name": ""})
        assert bad.status_code == 422
        missing = api.delete("/api/v1/dashboards/%s" % SAMPLE_ID)
        assert missing.status_code == 404
    assert audit_of(api, bad) == [] and audit_of(api, missing) == []


def test_the_audit_log_filters_and_pages(api, keys, make_dashboard):
    editor_id, editor = keys["editor"]
    made = [api.with_key(editor).post("/api/v1/dashboards", json={"name": "page %d" % i}).json()
            for i in range(3)]
    mine = audit(api, key_id=editor_id, path="/api/v1/dashboards")
    assert {d["id"] for d in made} <= {r["resource_id"] for r in mine}
    assert all(r["key_id"] == editor_id and r["path"].startswith("/api/v1/dashboards")
               for r in mine)
    one = audit(api, resource_id=made[1]["id"])
    assert [r["resource_id"] for r in one] == [made[1]["id"]]
    first = api.get("/api/v1/audit", params={"key_id": editor_id, "limit": 1}).json()
    assert len(first["items"]) == 1 and first["next_cursor"]
    second = api.get("/api/v1/audit", params={"key_id": editor_id, "limit": 1,
                                              "cursor": first["next_cursor"]}).json()
    assert second["items"][0]["at"] <= first["items"][0]["at"]
    assert second["items"][0]["id"] != first["items"][0]["id"]
    future = utc(now_utc() + datetime.timedelta(hours=1))
    assert audit(api, **{"from": future}) == []
    assert audit(api, to=utc(now_utc() - datetime.timedelta(days=3650))) == []


@pytest.mark.parametrize("params, field", [
    ({"key_id": "nope"}, "key_id"),
    ({"path": "dashboards"}, "path"),
    ({"from": "yesterday"}, "from"),
    ({"from": "2026-01-02T00:00:00Z", "to": "2026-01-01T00:00:00Z"}, "from"),
    ({"colour": "red"}, "colour"),
])
def test_a_bad_audit_query_is_a_400_naming_the_parameter(api, params, field):
    response = api.get("/api/v1/audit", params=params)
    body = assert_problem(response, 400, "bad-request")
    assert field in {e["field"] for e in body.get("errors", [])} or field in body["detail"]


def test_the_audit_log_is_append_only_and_expires_by_retention(db):
    import psycopg2
    rid = str(uuid.uuid4())
    db.execute("INSERT INTO audit_log (at, method, path, status, resource_id) "
               "VALUES (now() - interval '3 days', 'POST', '/x', 201, %s)", (rid,))
    for statement in ("UPDATE audit_log SET status = 200 WHERE resource_id = %s",
                      "DELETE FROM audit_log WHERE resource_id = %s"):
        with pytest.raises(psycopg2.Error, match="append-only"):
            db.execute(statement, (rid,))
    assert db.scalar("SELECT audit_expire(5)") == 0
    assert db.count("audit_log", "resource_id = %s", (rid,)) == 1
    assert db.scalar("SELECT audit_expire(2)") >= 1
    assert db.count("audit_log", "resource_id = %s", (rid,)) == 0
