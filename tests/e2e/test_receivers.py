"""test_receivers.py - receivers (webhooks): create, list, read, patch, delete;
the secret never answered; every invalid body 422 naming its field with
nothing written; 404s, 409s; the query parameters of GET /notifications."""

import uuid

import pytest

from support import assert_problem, error_fields

BASE = "/api/v1/receivers"


@pytest.fixture(autouse=True)
def empty_receivers(db):
    db.execute_retrying("TRUNCATE receivers, notifications, notification_attempts, alerts, silences "
               "CASCADE")
    yield


def create(api, **body):
    body.setdefault("name", "ops hook")
    body.setdefault("url", "http://127.0.0.1:9999/hook")
    response = api.post(BASE, json=body)
    assert response.status_code == 201, response.text
    return response


def test_create_answers_the_receiver_without_its_secret(api, db):
    response = create(api, secret="s3cret", headers={"X-Team": "payments"})
    body = response.json()
    assert response.headers["Location"] == BASE + "/" + body["id"]
    assert body["name"] == "ops hook"
    assert body["url"] == "http://127.0.0.1:9999/hook"
    assert body["has_secret"] is True
    assert body["headers"] == {"X-Team": "payments"}
    assert "secret" not in body and "s3cret" not in response.text
    assert db.scalar("SELECT secret FROM receivers WHERE id = %s", (body["id"],)) == "s3cret"


def test_create_without_secret_or_headers(api):
    body = create(api, url="https://hooks.example.com/a?b=c").json()
    assert body["has_secret"] is False
    assert body["headers"] == {}
    assert body["url"] == "https://hooks.example.com/a?b=c"


def test_get_answers_the_receiver(api):
    created = create(api, secret="x").json()
    response = api.get(BASE + "/" + created["id"])
    assert response.status_code == 200
    assert response.json() == created


@pytest.mark.parametrize("rid", [str(uuid.uuid4()), "not-a-uuid"])
def test_unknown_receiver_is_404(api, rid):
    assert_problem(api.get(BASE + "/" + rid), 404, "not-found")
    assert_problem(api.patch(BASE + "/" + rid, json={"name": "x"}), 404, "not-found")
    assert_problem(api.delete(BASE + "/" + rid), 404, "not-found")


def test_list_is_newest_first_in_keyset_pages(api):
    ids = [create(api, name="r%d" % i).json()["id"] for i in range(3)]
    first = api.get(BASE, params={"limit": 2})
    assert first.status_code == 200
    page = first.json()
    assert [r["id"] for r in page["items"]] == ids[::-1][:2]
    assert page["next_cursor"]
    second = api.get(BASE, params={"limit": 2, "cursor": page["next_cursor"]}).json()
    assert [r["id"] for r in second["items"]] == [ids[0]]
    assert second["next_cursor"] is None


@pytest.mark.parametrize("params,field", [({"limit": "0"}, "limit"),
                                          ({"cursor": "garbage"}, "cursor"),
                                          ({"name": "x"}, "name")])
def test_list_refuses_bad_parameters(api, params, field):
    body = assert_problem(api.get(BASE, params=params), 400, "bad-request")
    assert field in [e["field"] for e in body.get("errors", [])] or field in body["detail"]


def test_patch_changes_only_what_is_sent(api):
    created = create(api, secret="x", headers={"A": "1"}).json()
    response = api.patch(BASE + "/" + created["id"], json={"url": "https://example.com/new"})
    assert response.status_code == 200
    body = response.json()
    assert body["url"] == "https://example.com/new"
    assert body["name"] == created["name"] and body["headers"] == {"A": "1"}
    assert body["has_secret"] is True


def test_patch_secret_null_removes_it_and_a_string_sets_it(api):
    rid = create(api, secret="x").json()["id"]
    assert api.patch(BASE + "/" + rid, json={"secret": None}).json()["has_secret"] is False
    assert api.patch(BASE + "/" + rid, json={"secret": "y"}).json()["has_secret"] is True


def test_a_taken_name_is_409(api, db):
    create(api, name="one")
    other = create(api, name="two").json()
    with db.unchanged():
        assert_problem(api.post(BASE, json={"name": "one", "url": "http://a/"}), 409, "conflict")
        assert_problem(api.patch(BASE + "/" + other["id"], json={"name": "one"}), 409,
                       "conflict")


def test_delete_is_204_and_fails_its_waiting_notifications(api, db):
    rid = create(api).json()["id"]
    # one transaction (one query string): the running sender never sees the
    # alert before it is told, an hour ahead, so that it claims nothing
    assert db.scalar("INSERT INTO alerts (fingerprint, severity, title, receivers) "
                     "VALUES ('0123456789abcdef', 'high', 't', ARRAY[%s]::uuid[]);"
                     "SELECT notifications_enqueue(now() + interval '1 hour')", (rid,)) == 1
    response = api.delete(BASE + "/" + rid)
    assert response.status_code == 204 and response.content == b""
    assert_problem(api.get(BASE + "/" + rid), 404, "not-found")
    row = db.row("SELECT status, receiver_id, last_error, receiver_name FROM notifications")
    assert row == {"status": "failed", "receiver_id": None, "last_error": "receiver deleted",
                   "receiver_name": "ops hook"}


@pytest.mark.parametrize("url", ["/hook", "ftp://example.com/x", "http://", "https:///x",
                                 "http://exa mple.com/", "example.com/hook", "http:/x",
                                 "javascript:alert(1)", "http://a\r\nX: y"])
def test_a_url_that_is_not_absolute_http_is_422(api, db, url):
    rid = create(api, name="keep").json()["id"]
    with db.unchanged():
        assert error_fields(api.post(BASE, json={"name": "x", "url": url})) == {"url"}
        assert error_fields(api.patch(BASE + "/" + rid, json={"url": url})) == {"url"}


@pytest.mark.parametrize("body,fields", [
    ({}, {"name", "url"}),
    ({"name": "", "url": "http://a/"}, {"name"}),
    ({"name": "x" * 256, "url": "http://a/"}, {"name"}),
    ({"name": "x", "url": 5}, {"url"}),
    ({"name": "x", "url": "http://a/", "secret": ""}, {"secret"}),
    ({"name": "x", "url": "http://a/", "secret": 1}, {"secret"}),
    ({"name": "x", "url": "http://a/", "headers": []}, {"headers"}),
    ({"name": "x", "url": "http://a/", "headers": {"A": 1}}, {"headers.A"}),
    ({"name": "x", "url": "http://a/", "headers": {"A": {"b": "c"}}}, {"headers.A"}),
    ({"name": "x", "url": "http://a/", "headers": {"Bad Name": "v"}}, {"headers.Bad Name"}),
    ({"name": "x", "url": "http://a/", "headers": {"X-A": "v\r\nX-Injected: 1"}}, {"headers.X-A"}),
    ({"name": "x", "url": "http://a/", "headers": {"content-type": "text/plain"}},
     {"headers.content-type"}),
    ({"name": "x", "url": "http://a/", "headers": {"X-Fleetdash-Signature": "forged"}},
     {"headers.X-Fleetdash-Signature"}),
    ({"name": "x", "url": "http://a/", "headers": {"Idempotency-Key": "k"}},
     {"headers.Idempotency-Key"}),
    ({"name": "x", "url": "http://a/", "headers": {"H%d" % i: "v" for i in range(21)}},
     {"headers"}),
    ({"name": "x", "url": "http://a/", "colour": "red"}, {"colour"}),
])
def test_invalid_bodies_are_422_naming_each_field_and_write_nothing(api, db, body, fields):
    with db.unchanged():
        assert error_fields(api.post(BASE, json=body)) == fields


def test_invalid_patch_is_422_and_changes_nothing(api, db):
    rid = create(api).json()["id"]
    with db.unchanged():
        response = api.patch(BASE + "/" + rid, json={"name": "", "headers": {"A": 1},
                                                     "id": "x"})
        assert error_fields(response) == {"name", "headers.A", "id"}


@pytest.mark.parametrize("params,field", [({"alert_id": "nope"}, "alert_id"),
                                          ({"receiver_id": "nope"}, "receiver_id"),
                                          ({"status": "lost"}, "status"),
                                          ({"limit": "101"}, "limit"),
                                          ({"cursor": "x"}, "cursor"),
                                          ({"colour": "red"}, "colour")])
def test_notifications_list_refuses_bad_parameters(api, params, field):
    body = assert_problem(api.get("/api/v1/notifications", params=params), 400, "bad-request")
    assert field in [e["field"] for e in body.get("errors", [])] or field in body["detail"]


@pytest.mark.parametrize("nid", [str(uuid.uuid4()), "not-a-uuid"])
def test_unknown_notification_is_404(api, nid):
    assert_problem(api.get("/api/v1/notifications/" + nid), 404, "not-found")


def test_notifications_list_filters_by_alert_and_status(api, db):
    rid = create(api).json()["id"]
    # told an hour ahead in the transaction that raises them: the running
    # sender claims nothing
    assert db.scalar("INSERT INTO alerts (fingerprint, severity, title, receivers) "
                     "VALUES ('0000000000000001', 'high', 'a', ARRAY[%s]::uuid[]),"
                     "       ('0000000000000002', 'high', 'b', ARRAY[%s]::uuid[]);"
                     "SELECT notifications_enqueue(now() + interval '1 hour')", (rid, rid)) == 2
    alert = db.scalar("SELECT id::text FROM alerts WHERE fingerprint = '0000000000000001'")
    db.execute("UPDATE notifications SET status = 'failed', next_attempt_at = NULL "
               "WHERE alert_id <> %s", (alert,))
    items = api.get("/api/v1/notifications", params={"alert_id": alert}).json()["items"]
    assert [n["alert_id"] for n in items] == [alert]
    assert items[0]["status"] == "pending" and items[0]["attempts"] == []
    assert items[0]["payload"]["version"] == "4"
    failed = api.get("/api/v1/notifications", params={"status": "failed"}).json()["items"]
    assert len(failed) == 1 and failed[0]["alert_id"] != alert
    one = api.get("/api/v1/notifications/" + items[0]["id"])
    assert one.status_code == 200 and one.json()["id"] == items[0]["id"]
    assert len(api.get("/api/v1/notifications", params={"receiver_id": rid}).json()["items"]) == 2
