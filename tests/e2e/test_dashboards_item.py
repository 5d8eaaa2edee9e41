"""test_dashboards_item.py - GET, PUT, PATCH and DELETE /api/v1/dashboards/{id}:
reading, replacing, patching, deleting (widgets go too), the single default
dashboard, and versions."""

import pytest

from support import assert_problem, error_fields, etag, parse_time

UNKNOWN_ID = "00000000-0000-4000-8000-000000000000"
WIDGET = {"type": "gauge", "title": "G"}


def path(dashboard):
    return "/api/v1/dashboards/%s" % dashboard["id"]


# ---------------------------------------------------------------- GET

def test_get_answers_the_dashboard_with_its_etag(api, make_dashboard):
    created = make_dashboard(name="Ops", widgets=[WIDGET])
    response = api.get(path(created))
    assert response.status_code == 200
    assert response.headers["ETag"] == etag(1)
    assert response.json() == created


def test_get_of_an_unknown_id_is_404(api, db):
    with db.unchanged():
        response = api.get("/api/v1/dashboards/%s" % UNKNOWN_ID)
    body = assert_problem(response, 404, "not-found")
    assert body["instance"] == "/api/v1/dashboards/%s" % UNKNOWN_ID


def test_get_accepts_an_uppercase_uuid(api, make_dashboard):
    created = make_dashboard()
    response = api.get("/api/v1/dashboards/%s" % created["id"].upper())
    assert response.status_code == 200
    assert response.json()["id"] == created["id"]


# ---------------------------------------------------------------- PUT

def test_put_replaces_fields_and_resets_the_absent_ones(api, db, make_dashboard):
    created = make_dashboard(name="Ops", description="d", owner="alice", is_default=True)
    response = api.put(path(created), json={"name": "Renamed"})
    assert response.status_code == 200
    body = response.json()
    assert (body["name"], body["description"], body["owner"], body["is_default"],
            body["version"]) == ("Renamed", None, None, False, 2)
    assert response.headers["ETag"] == etag(2)
    assert db.rows("SELECT name, description, owner, is_default FROM dashboards") == [
        ("Renamed", None, None, False)]


def test_put_without_widgets_keeps_the_widgets(api, db, make_dashboard):
    created = make_dashboard(widgets=[WIDGET, dict(WIDGET, title="H")])
    body = api.put(path(created), json={"name": "Renamed"}).json()
    assert body["widgets"] == created["widgets"]
    assert db.count_widgets(created["id"]) == 2


def test_put_with_widgets_replaces_all_widgets(api, db, make_dashboard):
    created = make_dashboard(widgets=[WIDGET, dict(WIDGET, title="H")])
    old_ids = {w["id"] for w in created["widgets"]}
    body = api.put(path(created), json={"name": "N", "widgets": [
        {"type": "table", "title": "New"}]}).json()
    assert [(w["type"], w["title"]) for w in body["widgets"]] == [("table", "New")]
    assert db.widget_ids(created["id"]) == {body["widgets"][0]["id"]}
    assert not old_ids & db.widget_ids(created["id"])


def test_put_with_empty_widgets_removes_all_widgets(api, db, make_dashboard):
    created = make_dashboard(widgets=[WIDGET])
    body = api.put(path(created), json={"name": "N", "widgets": []}).json()
    assert body["widgets"] == [] and db.count_widgets() == 0


def test_put_keeps_id_and_created_at_and_moves_updated_at(api, make_dashboard):
    created = make_dashboard()
    body = api.put(path(created), json={"name": "N"}).json()
    assert body["id"] == created["id"] and body["created_at"] == created["created_at"]
    assert parse_time(body["updated_at"]) > parse_time(created["updated_at"])


def test_put_of_an_unknown_id_is_404_and_creates_nothing(api, db):
    with db.unchanged():
        response = api.put("/api/v1/dashboards/%s" % UNKNOWN_ID, json={"name": "N"})
    assert_problem(response, 404, "not-found")


@pytest.mark.parametrize("body, fields", [
    ({}, {"name"}),
    ({"name": ""}, {"name"}),
    ({"name": "N", "colour": "red"}, {"colour"}),
    ({"name": "N", "widgets": [WIDGET, {"type": "sparkline", "title": "x"}]},
     {"widgets[1].type"}),
    ({"name": "N", "widgets": [dict(WIDGET, position={"x": 10, "y": 0, "w": 3, "h": 1})]},
     {"widgets[0].position", "widgets[0].position.x", "widgets[0].position.w"}),
], ids=["name missing", "name empty", "unknown field", "one bad widget", "too wide widget"])
def test_put_with_an_invalid_body_is_422_and_changes_nothing(api, db, make_dashboard,
                                                            body, fields):
    created = make_dashboard(widgets=[WIDGET])
    with db.unchanged():
        response = api.put(path(created), json=body)
    reported = error_fields(response)
    assert reported and reported <= fields, reported


def test_put_with_malformed_json_is_400_and_changes_nothing(api, db, make_dashboard):
    created = make_dashboard()
    with db.unchanged():
        response = api.put(path(created), data=b'{"name": ',
                           headers={"Content-Type": "application/json"})
    assert_problem(response, 400, "bad-request")


# ---------------------------------------------------------------- PATCH

def test_patch_changes_only_the_given_fields(api, db, make_dashboard):
    created = make_dashboard(name="Ops", description="d", owner="alice", widgets=[WIDGET])
    response = api.patch(path(created), json={"name": "Renamed"})
    assert response.status_code == 200
    body = response.json()
    assert (body["name"], body["description"], body["owner"], body["is_default"],
            body["version"]) == ("Renamed", "d", "alice", False, 2)
    assert body["widgets"] == created["widgets"]
    assert response.headers["ETag"] == etag(2)
    assert db.scalar("SELECT name FROM dashboards") == "Renamed"


def test_patch_sets_description_and_owner_to_null(api, db, make_dashboard):
    created = make_dashboard(description="d", owner="alice")
    body = api.patch(path(created), json={"description": None, "owner": None}).json()
    assert (body["description"], body["owner"]) == (None, None)
    assert db.rows("SELECT description, owner FROM dashboards") == [(None, None)]


def test_patch_of_every_field_at_once(api, make_dashboard):
    created = make_dashboard()
    change = {"name": "N2", "description": "D2", "owner": "bob", "is_default": True}
    body = api.patch(path(created), json=change).json()
    assert {k: body[k] for k in change} == change


@pytest.mark.parametrize("body, fields", [
    ({"widgets": []}, {"widgets"}),
    ({"widgets": [WIDGET]}, {"widgets"}),
    ({"colour": "red"}, {"colour"}),
    ({"name": ""}, {"name"}),
    ({"name": None}, {"name"}),
    ({"name": 5}, {"name"}),
    ({"is_default": "yes"}, {"is_default"}),
    ({"is_default": None}, {"is_default"}),
    ({"owner": ""}, {"owner"}),
    ({"description": "é" * 10001}, {"description"}),
    ({"name": "", "owner": 5, "extra": 1}, {"name", "owner", "extra"}),
], ids=["widgets empty", "widgets", "unknown field", "name empty", "name null", "name number",
        "is_default string", "is_default null", "owner empty", "description too long",
        "three bad fields"])
def test_patch_with_an_invalid_body_is_422_and_changes_nothing(api, db, make_dashboard,
                                                              body, fields):
    created = make_dashboard(widgets=[WIDGET])
    with db.unchanged():
        response = api.patch(path(created), json=body)
    assert error_fields(response) == fields


def test_patch_of_an_unknown_id_is_404(api, db):
    with db.unchanged():
        response = api.patch("/api/v1/dashboards/%s" % UNKNOWN_ID, json={"name": "N"})
    assert_problem(response, 404, "not-found")


# ---------------------------------------------------------------- DELETE

def test_delete_answers_204_without_body_and_removes_the_dashboard(api, db, make_dashboard):
    created = make_dashboard()
    response = api.delete(path(created))
    assert response.status_code == 204
    assert response.content == b""
    assert db.count_dashboards() == 0
    assert_problem(api.get(path(created)), 404, "not-found")


def test_delete_removes_the_widgets_too(api, db, make_dashboard):
    created = make_dashboard(widgets=[WIDGET, WIDGET, WIDGET])
    other = make_dashboard(name="Other", widgets=[WIDGET])
    assert api.delete(path(created)).status_code == 204
    assert db.count_widgets(created["id"]) == 0
    assert db.count_widgets(other["id"]) == 1
    widget = created["widgets"][0]["id"]
    assert_problem(api.get("%s/widgets/%s" % (path(created), widget)), 404, "not-found")


def test_delete_of_an_unknown_id_is_404(api, db, make_dashboard):
    make_dashboard()
    with db.unchanged():
        response = api.delete("/api/v1/dashboards/%s" % UNKNOWN_ID)
    assert_problem(response, 404, "not-found")


def test_delete_twice_is_404_the_second_time(api, db, make_dashboard):
    created = make_dashboard()
    assert api.delete(path(created)).status_code == 204
    with db.unchanged():
        response = api.delete(path(created))
    assert_problem(response, 404, "not-found")


# ---------------------------------------------------------------- the single default

def test_post_of_a_new_default_undefaults_the_previous_one(api, db, make_dashboard):
    previous = make_dashboard(name="Old", is_default=True)
    make_dashboard(name="New", is_default=True)
    old = api.get(path(previous)).json()
    assert (old["is_default"], old["version"]) == (False, 2)
    assert db.rows("SELECT name FROM dashboards WHERE is_default") == [("New",)]


def test_patch_to_default_undefaults_the_previous_one(api, db, make_dashboard):
    previous = make_dashboard(name="Old", is_default=True)
    other = make_dashboard(name="New")
    body = api.patch(path(other), json={"is_default": True}).json()
    assert body["is_default"] is True
    old = api.get(path(previous)).json()
    assert (old["is_default"], old["version"]) == (False, 2)
    assert db.rows("SELECT name FROM dashboards WHERE is_default") == [("New",)]


def test_put_to_default_undefaults_the_previous_one(api, db, make_dashboard):
    previous = make_dashboard(name="Old", is_default=True)
    other = make_dashboard(name="New")
    assert api.put(path(other), json={"name": "New", "is_default": True}).status_code == 200
    old = api.get(path(previous)).json()
    assert (old["is_default"], old["version"]) == (False, 2)
    assert db.rows("SELECT name FROM dashboards WHERE is_default") == [("New",)]


def test_default_endpoint_answers_the_newly_made_default(api, make_dashboard):
    api.get("/api/v1/dashboards/default")
    mine = make_dashboard(name="Mine")
    api.patch(path(mine), json={"is_default": True})
    assert api.get("/api/v1/dashboards/default").json()["id"] == mine["id"]


def test_patch_of_the_default_to_default_keeps_it_the_only_default(api, db, make_dashboard):
    created = make_dashboard(is_default=True)
    body = api.patch(path(created), json={"is_default": True}).json()
    assert body["is_default"] is True
    assert db.count_dashboards("is_default") == 1


# ---------------------------------------------------------------- versions

def test_version_increments_with_every_change(api, make_dashboard, make_widget):
    created = make_dashboard(widgets=[WIDGET])
    widget_path = "%s/widgets/%s" % (path(created), created["widgets"][0]["id"])
    steps = [
        lambda: api.patch(path(created), json={"name": "a"}),
        lambda: api.put(path(created), json={"name": "b"}),
        lambda: make_widget(created["id"]),
        lambda: api.patch(widget_path, json={"title": "t"}),
        lambda: api.put(widget_path, json={"type": "table", "title": "u"}),
        lambda: api.put("%s/layout" % path(created), json={"positions": {
            created["widgets"][0]["id"]: {"x": 1, "y": 1, "w": 1, "h": 1}}}),
        lambda: api.delete(widget_path),
    ]
    for expected, step in enumerate(steps, start=2):
        step()
        response = api.get(path(created))
        assert (response.json()["version"], response.headers["ETag"]) == (
            expected, etag(expected))


def test_failed_change_keeps_the_version(api, make_dashboard):
    created = make_dashboard()
    api.patch(path(created), json={"name": ""})
    assert api.get(path(created)).json()["version"] == 1


# ---------------------------------------------------------------- versions and worker caches

def test_every_worker_answers_the_new_version_right_after_a_change(api, make_dashboard, stack):
    # Workers cache what they shaped, keyed by version; many GETs after each
    # write land on every worker of the pool, and none may answer an old one.
    created = make_dashboard(name="v1", widgets=[WIDGET])
    for version in range(2, 6):
        changed = api.patch(path(created), json={"name": "v%d" % version})
        assert changed.status_code == 200
        for _ in range(4 * int(stack.env.get("WORKERS", "4"))):
            response = api.get(path(created))
            assert response.headers["ETag"] == etag(version)
            assert response.json()["name"] == "v%d" % version


def test_a_change_made_in_the_database_by_hand_bumps_the_version(api, db, make_dashboard):
    created = make_dashboard(widgets=[WIDGET])
    assert api.get(path(created)).headers["ETag"] == etag(1)
    db.execute("UPDATE dashboard_widgets SET title = 'by hand' WHERE dashboard_id = %s",
               (created["id"],))
    response = api.get(path(created))
    assert response.headers["ETag"] == etag(2)
    assert response.json()["widgets"][0]["title"] == "by hand"
    db.execute("UPDATE dashboards SET name = 'renamed by hand' WHERE id = %s", (created["id"],))
    response = api.get(path(created))
    assert response.headers["ETag"] == etag(3)
    assert response.json()["name"] == "renamed by hand"


def test_one_write_with_many_widget_changes_counts_as_one_version(api, make_dashboard):
    created = make_dashboard(widgets=[WIDGET, dict(WIDGET, title="H")])
    replaced = api.put(path(created), json={"name": "Ops", "widgets": [WIDGET] * 3})
    assert replaced.status_code == 200
    assert replaced.json()["version"] == 2
    assert api.get(path(created)).headers["ETag"] == etag(2)


def test_an_empty_patch_changes_nothing_and_keeps_the_version(api, db, make_dashboard):
    created = make_dashboard(widgets=[WIDGET])
    with db.unchanged():
        response = api.patch(path(created), json={})
    assert response.status_code == 200
    assert response.headers["ETag"] == etag(1)
    assert response.json() == created


def test_an_empty_patch_still_answers_412_for_a_stale_if_match(api, db, make_dashboard):
    created = make_dashboard()
    with db.unchanged():
        response = api.patch(path(created), json={}, headers={"If-Match": etag(7)})
    assert_problem(response, 412, "precondition-failed")


def test_an_empty_widget_patch_keeps_the_version(api, db, make_dashboard):
    created = make_dashboard(widgets=[WIDGET])
    widget = created["widgets"][0]
    with db.unchanged():
        response = api.patch("%s/widgets/%s" % (path(created), widget["id"]), json={})
    assert response.status_code == 200
    assert response.headers["ETag"] == etag(1)
    assert response.json() == widget
