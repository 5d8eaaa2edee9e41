"""test_preconditions.py - ETag, If-Match (412, nothing changes) and
If-None-Match (304) on dashboards, widgets and the layout."""

import pytest

from support import assert_problem, etag

WIDGET = {"type": "gauge", "title": "G"}


@pytest.fixture
def board(make_dashboard):
    """A dashboard at version 1 with one widget."""
    return make_dashboard(widgets=[WIDGET])


def writes(board):
    """name -> (method, path, body) of every write that honours If-Match."""
    dashboard = "/api/v1/dashboards/%s" % board["id"]
    widget = "%s/widgets/%s" % (dashboard, board["widgets"][0]["id"])
    return {
        "PUT dashboard": ("PUT", dashboard, {"name": "N"}),
        "PATCH dashboard": ("PATCH", dashboard, {"name": "N"}),
        "DELETE dashboard": ("DELETE", dashboard, None),
        "POST widget": ("POST", dashboard + "/widgets", {"type": "table", "title": "T"}),
        "PUT widget": ("PUT", widget, {"type": "table", "title": "T"}),
        "PATCH widget": ("PATCH", widget, {"title": "T"}),
        "DELETE widget": ("DELETE", widget, None),
        "PUT layout": ("PUT", dashboard + "/layout",
                       {"positions": {board["widgets"][0]["id"]: {"x": 5, "y": 5, "w": 2,
                                                                  "h": 2}}}),
    }


WRITES = ["PUT dashboard", "PATCH dashboard", "DELETE dashboard", "POST widget", "PUT widget",
          "PATCH widget", "DELETE widget", "PUT layout"]


def send(api, write, if_match):
    method, path, body = write
    headers = {"If-Match": if_match}
    if body is None:
        return api.request(method, path, headers=headers)
    return api.request(method, path, json=body, headers=headers)


@pytest.mark.parametrize("name", WRITES)
@pytest.mark.parametrize("stale", ['"2"', '"0"', 'W/"2"', '"2", "3"', "garbage"],
                         ids=["newer", "zero", "weak newer", "list without current", "garbage"])
def test_write_with_a_stale_if_match_is_412_and_changes_nothing(api, db, board, name, stale):
    with db.unchanged():
        response = send(api, writes(board)[name], stale)
    assert_problem(response, 412, "precondition-failed")


@pytest.mark.parametrize("name", WRITES)
@pytest.mark.parametrize("current", ['"1"', 'W/"1"', "*"], ids=["strong", "weak", "star"])
def test_write_with_a_matching_if_match_succeeds(api, db, board, name, current):
    response = send(api, writes(board)[name], current)
    assert response.status_code in (200, 201, 204), response.text
    if name != "DELETE dashboard":
        assert api.get("/api/v1/dashboards/%s" % board["id"]).json()["version"] == 2


@pytest.mark.parametrize("name", WRITES)
def test_write_without_if_match_succeeds(api, board, name):
    method, path, body = writes(board)[name]
    response = api.request(method, path) if body is None else api.request(method, path,
                                                                          json=body)
    assert response.status_code in (200, 201, 204), response.text


def test_second_writer_with_the_same_etag_gets_412(api, db, board):
    path = "/api/v1/dashboards/%s" % board["id"]
    first = api.patch(path, json={"name": "first"}, headers={"If-Match": etag(1)})
    assert first.status_code == 200
    with db.unchanged():
        second = api.patch(path, json={"name": "second"}, headers={"If-Match": etag(1)})
    assert_problem(second, 412, "precondition-failed")
    assert api.get(path).json()["name"] == "first"


def test_if_match_on_an_unknown_dashboard_is_404(api, db):
    with db.unchanged():
        response = api.patch("/api/v1/dashboards/00000000-0000-4000-8000-000000000000",
                             json={"name": "N"}, headers={"If-Match": etag(1)})
    assert_problem(response, 404, "not-found")


def test_if_none_match_with_the_current_etag_is_304_without_body(api, board):
    response = api.get("/api/v1/dashboards/%s" % board["id"], headers={"If-None-Match": etag(1)})
    assert response.status_code == 304
    assert response.content == b""
    assert response.headers["ETag"] == etag(1)


def test_if_none_match_with_the_weak_current_etag_is_304(api, board):
    response = api.get("/api/v1/dashboards/%s" % board["id"],
                       headers={"If-None-Match": 'W/"1"'})
    assert response.status_code == 304


def test_if_none_match_with_an_old_etag_answers_the_dashboard(api, board):
    path = "/api/v1/dashboards/%s" % board["id"]
    api.patch(path, json={"name": "N"})
    response = api.get(path, headers={"If-None-Match": etag(1)})
    assert response.status_code == 200
    assert response.headers["ETag"] == etag(2)
    assert response.json()["name"] == "N"


def test_widget_writes_answer_the_dashboard_version_as_etag(api, board):
    dashboard = "/api/v1/dashboards/%s" % board["id"]
    widget = "%s/widgets/%s" % (dashboard, board["widgets"][0]["id"])
    assert api.patch(widget, json={"title": "a"}).headers["ETag"] == etag(2)
    assert api.put(widget, json={"type": "table", "title": "b"}).headers["ETag"] == etag(3)
    assert api.post(dashboard + "/widgets", json=WIDGET).headers["ETag"] == etag(4)
