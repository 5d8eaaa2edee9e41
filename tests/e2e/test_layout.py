"""test_layout.py - PUT /api/v1/dashboards/{id}/layout: moving several widgets
at once, all or nothing."""

import pytest

from support import assert_problem, error_fields, etag

UNKNOWN_ID = "00000000-0000-4000-8000-000000000000"


def at(x, y, w=1, h=1):
    return {"x": x, "y": y, "w": w, "h": h}


@pytest.fixture
def board(make_dashboard):
    """A dashboard with widgets a, b, c in one row."""
    return make_dashboard(widgets=[{"type": "gauge", "title": t, "position": at(i * 4, 0, 4, 2)}
                                   for i, t in enumerate("abc")])


def layout_path(dashboard):
    return "/api/v1/dashboards/%s/layout" % dashboard["id"]


def ids(dashboard):
    return {w["title"]: w["id"] for w in dashboard["widgets"]}


def positions(dashboard):
    return {w["title"]: w["position"] for w in dashboard["widgets"]}


def test_layout_moves_every_named_widget(api, db, board, get_dashboard):
    wid = ids(board)
    response = api.put(layout_path(board), json={"positions": {
        wid["a"]: at(0, 4, 12, 3), wid["b"]: at(0, 0, 6, 2), wid["c"]: at(6, 0, 6, 2)}})
    assert response.status_code == 200
    body = response.json()
    assert [w["title"] for w in body["widgets"]] == ["b", "c", "a"]
    assert positions(body) == {"a": at(0, 4, 12, 3), "b": at(0, 0, 6, 2), "c": at(6, 0, 6, 2)}
    assert (body["version"], response.headers["ETag"]) == (2, etag(2))
    assert get_dashboard(board["id"]) == body


def test_layout_keeps_widgets_it_does_not_name(api, board):
    wid = ids(board)
    body = api.put(layout_path(board), json={"positions": {wid["b"]: at(0, 9)}}).json()
    assert positions(body) == {"a": at(0, 0, 4, 2), "b": at(0, 9), "c": at(8, 0, 4, 2)}


def test_layout_changes_nothing_but_positions(api, board):
    wid = ids(board)
    body = api.put(layout_path(board), json={"positions": {wid["a"]: at(1, 1)}}).json()
    for before, after in zip(board["widgets"], sorted(body["widgets"],
                                                      key=lambda w: w["title"])):
        for field in ("id", "type", "title", "config", "refresh_interval_seconds"):
            assert before[field] == after[field]


def test_layout_with_one_unknown_widget_is_422_and_moves_nothing(api, db, board):
    wid = ids(board)
    with db.unchanged():
        response = api.put(layout_path(board), json={"positions": {
            wid["a"]: at(0, 5), UNKNOWN_ID: at(0, 6)}})
    assert error_fields(response) == {"positions.%s" % UNKNOWN_ID}


def test_layout_with_a_widget_of_another_dashboard_is_422_and_moves_nothing(
        api, db, board, make_dashboard):
    other = make_dashboard(name="Other", widgets=[{"type": "table", "title": "x"}])
    foreign = other["widgets"][0]["id"]
    with db.unchanged():
        response = api.put(layout_path(board), json={"positions": {
            ids(board)["a"]: at(0, 5), foreign: at(0, 6)}})
    assert error_fields(response) == {"positions.%s" % foreign}


def test_layout_with_a_key_that_is_not_a_uuid_is_422(api, db, board):
    with db.unchanged():
        response = api.put(layout_path(board), json={"positions": {"abc": at(0, 5)}})
    assert error_fields(response) == {"positions.abc"}


@pytest.mark.parametrize("position, bad", [
    (at(-1, 0), "x"), (at(0, -1), "y"), (at(0, 0, 0, 1), "w"), (at(0, 0, 1, 0), "h"),
    (at(0.5, 0), "x"), (at(0, "1"), "y"), ({"x": 0, "y": 0, "w": 1}, "h"),
], ids=["x below 0", "y below 0", "w below 1", "h below 1", "x fraction", "y string",
        "h missing"])
def test_layout_with_one_bad_position_is_422_and_moves_nothing(api, db, board, position, bad):
    wid = ids(board)
    with db.unchanged():
        response = api.put(layout_path(board), json={"positions": {
            wid["a"]: at(0, 5), wid["b"]: position}})
    assert error_fields(response) == {"positions.%s.%s" % (wid["b"], bad)}


def test_layout_with_a_widget_wider_than_the_grid_is_422(api, db, board):
    wid = ids(board)
    with db.unchanged():
        response = api.put(layout_path(board), json={"positions": {wid["c"]: at(10, 0, 3, 1)}})
    fields = error_fields(response)
    prefix = "positions." + wid["c"]
    assert fields and fields <= {prefix, prefix + ".x", prefix + ".w"}, fields


def test_layout_lists_every_bad_entry(api, db, board):
    wid = ids(board)
    with db.unchanged():
        response = api.put(layout_path(board), json={"positions": {
            wid["a"]: at(-1, 0), wid["b"]: at(0, 0, 1, 0), UNKNOWN_ID: at(0, 0)}})
    assert error_fields(response) == {"positions.%s.x" % wid["a"], "positions.%s.h" % wid["b"],
                                      "positions.%s" % UNKNOWN_ID}


@pytest.mark.parametrize("body, fields", [
    ({}, {"positions"}), ({"positions": []}, {"positions"}), ({"positions": "x"}, {"positions"}),
    ({"positions": {}, "extra": 1}, {"extra"}),
], ids=["positions missing", "positions array", "positions string", "unknown field"])
def test_layout_with_a_bad_body_is_422(api, db, board, body, fields):
    with db.unchanged():
        response = api.put(layout_path(board), json=body)
    assert error_fields(response) == fields


def test_layout_of_a_widget_with_a_position_that_is_not_an_object_is_422(api, db, board):
    wid = ids(board)
    with db.unchanged():
        response = api.put(layout_path(board), json={"positions": {wid["a"]: [0, 0, 1, 1]}})
    assert error_fields(response) == {"positions.%s" % wid["a"]}


def test_layout_of_an_unknown_dashboard_is_404(api, db, board):
    with db.unchanged():
        response = api.put("/api/v1/dashboards/%s/layout" % UNKNOWN_ID,
                           json={"positions": {ids(board)["a"]: at(0, 5)}})
    assert_problem(response, 404, "not-found")


def test_layout_with_a_stale_if_match_moves_nothing(api, db, board):
    with db.unchanged():
        response = api.put(layout_path(board), json={"positions": {ids(board)["a"]: at(0, 5)}},
                           headers={"If-Match": etag(5)})
    assert_problem(response, 412, "precondition-failed")
