"""test_widgets.py - POST /api/v1/dashboards/{id}/widgets and GET, PUT, PATCH,
DELETE /api/v1/dashboards/{id}/widgets/{wid}."""

import pytest

from support import assert_problem, error_fields, etag, parse_time

UNKNOWN_ID = "00000000-0000-4000-8000-000000000000"
DEFAULT_POSITION = {"x": 0, "y": 0, "w": 4, "h": 2}
FULL = {"type": "line_chart", "title": "Latency", "config": {"metric": "p95", "series": [1, 2]},
        "position": {"x": 2, "y": 1, "w": 6, "h": 3}, "refresh_interval_seconds": 30}


def widgets_path(dashboard):
    return "/api/v1/dashboards/%s/widgets" % dashboard["id"]


def widget_path(dashboard, widget):
    return "%s/%s" % (widgets_path(dashboard), widget["id"])


def fields_of(widget, names):
    return {name: widget[name] for name in names}


# ---------------------------------------------------------------- POST

def test_post_widget_creates_it_with_location_and_the_new_dashboard_etag(api, db,
                                                                        make_dashboard):
    dashboard = make_dashboard()
    response = api.post(widgets_path(dashboard), json=FULL)
    assert response.status_code == 201
    widget = response.json()
    assert fields_of(widget, FULL) == FULL
    assert widget["dashboard_id"] == dashboard["id"]
    assert response.headers["Location"] == widget_path(dashboard, widget)
    assert response.headers["ETag"] == etag(2)
    assert db.widget_ids(dashboard["id"]) == {widget["id"]}


def test_post_widget_applies_the_defaults(api, make_dashboard):
    dashboard = make_dashboard()
    widget = api.post(widgets_path(dashboard), json={"type": "heatmap", "title": "H"}).json()
    assert (widget["config"], widget["position"], widget["refresh_interval_seconds"]) == (
        {}, DEFAULT_POSITION, 60)


def test_post_widget_appears_in_the_dashboard(api, make_dashboard, get_dashboard):
    dashboard = make_dashboard()
    widget = api.post(widgets_path(dashboard), json=FULL).json()
    assert get_dashboard(dashboard["id"])["widgets"] == [widget]


def test_post_widget_to_an_unknown_dashboard_is_404(api, db):
    with db.unchanged():
        response = api.post("/api/v1/dashboards/%s/widgets" % UNKNOWN_ID, json=FULL)
    assert_problem(response, 404, "not-found")


def test_post_widget_to_a_non_uuid_dashboard_is_404(api, db):
    with db.unchanged():
        response = api.post("/api/v1/dashboards/nope/widgets", json=FULL)
    assert_problem(response, 404, "not-found")


@pytest.mark.parametrize("body, fields", [
    ({"title": "T"}, {"type"}),
    ({"type": "sparkline", "title": "T"}, {"type"}),
    ({"type": "gauge"}, {"title"}),
    ({"type": "gauge", "title": "é" * 256}, {"title"}),
    ({"type": "gauge", "title": "T", "config": []}, {"config"}),
    ({"type": "gauge", "title": "T", "position": {"x": -1, "y": 0, "w": 1, "h": 1}},
     {"position.x"}),
    ({"type": "gauge", "title": "T", "position": {"x": 0, "y": 0, "w": 1}}, {"position.h"}),
    ({"type": "gauge", "title": "T", "refresh_interval_seconds": 3601},
     {"refresh_interval_seconds"}),
    ({"type": "gauge", "title": "T", "dashboard_id": UNKNOWN_ID}, {"dashboard_id"}),
    ({"type": 1, "title": 2, "config": 3, "position": 4, "refresh_interval_seconds": "5",
      "x": 6}, {"type", "title", "config", "position", "refresh_interval_seconds", "x"}),
], ids=["type missing", "type unknown", "title missing", "title 256 chars", "config array",
        "x below 0", "h missing", "refresh 3601", "unknown field", "every field bad"])
def test_post_invalid_widget_is_422_naming_the_field_relative_to_the_body(
        api, db, make_dashboard, body, fields):
    dashboard = make_dashboard()
    with db.unchanged():
        response = api.post(widgets_path(dashboard), json=body)
    assert error_fields(response) == fields


def test_post_widget_wider_than_the_grid_is_422(api, db, make_dashboard):
    dashboard = make_dashboard()
    with db.unchanged():
        response = api.post(widgets_path(dashboard), json={
            "type": "gauge", "title": "T", "position": {"x": 9, "y": 0, "w": 4, "h": 1}})
    fields = error_fields(response)
    assert fields and fields <= {"position", "position.x", "position.w"}, fields


# ---------------------------------------------------------------- GET

def test_get_widget_answers_it(api, make_dashboard, make_widget):
    dashboard = make_dashboard()
    widget = make_widget(dashboard["id"], **FULL)
    response = api.get(widget_path(dashboard, widget))
    assert response.status_code == 200
    assert response.json() == widget


def test_get_widget_under_another_dashboard_is_404(api, make_dashboard, make_widget):
    mine = make_dashboard(name="Mine")
    other = make_dashboard(name="Other")
    widget = make_widget(mine["id"])
    assert_problem(api.get(widget_path(other, widget)), 404, "not-found")


def test_get_unknown_widget_is_404(api, make_dashboard):
    dashboard = make_dashboard()
    assert_problem(api.get(widget_path(dashboard, {"id": UNKNOWN_ID})), 404, "not-found")


def test_get_widget_of_an_unknown_dashboard_is_404(api, make_dashboard, make_widget):
    dashboard = make_dashboard()
    widget = make_widget(dashboard["id"])
    assert_problem(api.get(widget_path({"id": UNKNOWN_ID}, widget)), 404, "not-found")


# ---------------------------------------------------------------- PUT

def test_put_widget_replaces_it_and_resets_absent_fields(api, db, make_dashboard, make_widget):
    dashboard = make_dashboard()
    widget = make_widget(dashboard["id"], **FULL)
    response = api.put(widget_path(dashboard, widget), json={"type": "table", "title": "New"})
    assert response.status_code == 200
    body = response.json()
    assert fields_of(body, FULL) == {"type": "table", "title": "New", "config": {},
                                     "position": DEFAULT_POSITION,
                                     "refresh_interval_seconds": 60}
    assert (body["id"], body["dashboard_id"], body["created_at"]) == (
        widget["id"], dashboard["id"], widget["created_at"])
    assert parse_time(body["updated_at"]) > parse_time(widget["updated_at"])
    assert response.headers["ETag"] == etag(3)
    assert db.count_widgets(dashboard["id"]) == 1


def test_put_widget_stores_every_given_field(api, make_dashboard, make_widget, get_dashboard):
    dashboard = make_dashboard()
    widget = make_widget(dashboard["id"])
    body = api.put(widget_path(dashboard, widget), json=FULL).json()
    assert fields_of(body, FULL) == FULL
    assert get_dashboard(dashboard["id"])["widgets"] == [body]


@pytest.mark.parametrize("body, fields", [
    ({"title": "T"}, {"type"}),
    ({"type": "table"}, {"title"}),
    ({"type": "table", "title": "T", "id": UNKNOWN_ID}, {"id"}),
    ({"type": "table", "title": "T", "position": {"x": 0, "y": 0, "w": 0, "h": 1}},
     {"position.w"}),
], ids=["type missing", "title missing", "unknown field", "w below 1"])
def test_put_invalid_widget_is_422_and_changes_nothing(api, db, make_dashboard, make_widget,
                                                      body, fields):
    dashboard = make_dashboard()
    widget = make_widget(dashboard["id"], **FULL)
    with db.unchanged():
        response = api.put(widget_path(dashboard, widget), json=body)
    assert error_fields(response) == fields


def test_put_widget_under_another_dashboard_is_404_and_changes_nothing(
        api, db, make_dashboard, make_widget):
    mine = make_dashboard(name="Mine")
    other = make_dashboard(name="Other")
    widget = make_widget(mine["id"])
    with db.unchanged():
        response = api.put(widget_path(other, widget), json={"type": "table", "title": "T"})
    assert_problem(response, 404, "not-found")


# ---------------------------------------------------------------- PATCH

def test_patch_widget_changes_only_the_given_fields(api, db, make_dashboard, make_widget):
    dashboard = make_dashboard()
    widget = make_widget(dashboard["id"], **FULL)
    response = api.patch(widget_path(dashboard, widget), json={"title": "Renamed"})
    assert response.status_code == 200
    body = response.json()
    assert fields_of(body, FULL) == dict(FULL, title="Renamed")
    assert response.headers["ETag"] == etag(3)


@pytest.mark.parametrize("change", [
    {"type": "pie_chart"}, {"config": {"other": [True]}}, {"config": {}},
    {"position": {"x": 0, "y": 7, "w": 12, "h": 1}}, {"refresh_interval_seconds": 3600},
], ids=["type", "config", "empty config", "position", "refresh"])
def test_patch_widget_sets_the_given_field(api, make_dashboard, make_widget, change):
    dashboard = make_dashboard()
    widget = make_widget(dashboard["id"], **FULL)
    body = api.patch(widget_path(dashboard, widget), json=change).json()
    assert fields_of(body, FULL) == dict(FULL, **change)


@pytest.mark.parametrize("body, fields", [
    ({"type": "sparkline"}, {"type"}),
    ({"title": ""}, {"title"}),
    ({"title": None}, {"title"}),
    ({"config": "x"}, {"config"}),
    ({"position": {"x": 0, "y": 0, "w": 1}}, {"position.h"}),
    ({"position": {"x": 0, "y": -2, "w": 1, "h": 1}}, {"position.y"}),
    ({"refresh_interval_seconds": 9}, {"refresh_interval_seconds"}),
    ({"dashboard_id": UNKNOWN_ID}, {"dashboard_id"}),
], ids=["type unknown", "title empty", "title null", "config string", "h missing",
        "y below 0", "refresh 9", "dashboard_id is not writable"])
def test_patch_invalid_widget_is_422_and_changes_nothing(api, db, make_dashboard, make_widget,
                                                        body, fields):
    dashboard = make_dashboard()
    widget = make_widget(dashboard["id"], **FULL)
    with db.unchanged():
        response = api.patch(widget_path(dashboard, widget), json=body)
    assert error_fields(response) == fields


def test_patch_widget_under_another_dashboard_is_404_and_changes_nothing(
        api, db, make_dashboard, make_widget):
    mine = make_dashboard(name="Mine")
    other = make_dashboard(name="Other")
    widget = make_widget(mine["id"])
    with db.unchanged():
        response = api.patch(widget_path(other, widget), json={"title": "T"})
    assert_problem(response, 404, "not-found")


# ---------------------------------------------------------------- DELETE

def test_delete_widget_removes_only_it_and_bumps_the_version(api, db, make_dashboard,
                                                            make_widget, get_dashboard):
    dashboard = make_dashboard()
    gone = make_widget(dashboard["id"], title="gone")
    kept = make_widget(dashboard["id"], title="kept")
    response = api.delete(widget_path(dashboard, gone))
    assert response.status_code == 204 and response.content == b""
    assert db.widget_ids(dashboard["id"]) == {kept["id"]}
    after = get_dashboard(dashboard["id"])
    assert [w["id"] for w in after["widgets"]] == [kept["id"]]
    assert after["version"] == 4


def test_delete_widget_twice_is_404_the_second_time(api, db, make_dashboard, make_widget):
    dashboard = make_dashboard()
    widget = make_widget(dashboard["id"])
    assert api.delete(widget_path(dashboard, widget)).status_code == 204
    with db.unchanged():
        response = api.delete(widget_path(dashboard, widget))
    assert_problem(response, 404, "not-found")


def test_delete_widget_under_another_dashboard_is_404_and_deletes_nothing(
        api, db, make_dashboard, make_widget):
    mine = make_dashboard(name="Mine")
    other = make_dashboard(name="Other")
    widget = make_widget(mine["id"])
    with db.unchanged():
        response = api.delete(widget_path(other, widget))
    assert_problem(response, 404, "not-found")


# ---------------------------------------------------------------- order

def test_dashboard_orders_widgets_by_y_then_x_then_creation(api, make_dashboard, make_widget,
                                                           get_dashboard):
    dashboard = make_dashboard()
    for title, x, y in [("late tie", 4, 1), ("b", 8, 0), ("c", 0, 1), ("a", 0, 0),
                        ("tie", 4, 1), ("d", 0, 3)]:
        make_widget(dashboard["id"], title=title, position={"x": x, "y": y, "w": 1, "h": 1})
    titles = [w["title"] for w in get_dashboard(dashboard["id"])["widgets"]]
    assert titles == ["a", "b", "c", "late tie", "tie", "d"]


def test_moving_a_widget_changes_its_place_in_the_order(api, make_dashboard, make_widget,
                                                       get_dashboard):
    dashboard = make_dashboard()
    first = make_widget(dashboard["id"], title="first", position={"x": 0, "y": 0, "w": 1, "h": 1})
    make_widget(dashboard["id"], title="second", position={"x": 0, "y": 1, "w": 1, "h": 1})
    api.patch(widget_path(dashboard, first), json={"position": {"x": 0, "y": 2, "w": 1, "h": 1}})
    titles = [w["title"] for w in get_dashboard(dashboard["id"])["widgets"]]
    assert titles == ["second", "first"]
