"""test_dashboards_create.py - POST /api/v1/dashboards: defaults, stored fields,
widgets, exact config round trip, and every invalid body (422, nothing written)."""

import re

import pytest

from support import error_fields, etag

WIDGET = {"type": "metric_card", "title": "T"}
WIDGET_TYPES = ["metric_card", "line_chart", "bar_chart", "pie_chart", "table", "heatmap",
                "gauge", "alert_list", "status_board"]


def post(api, body):
    return api.post("/api/v1/dashboards", json=body)


def with_widget(**fields):
    """A dashboard body whose only widget is WIDGET updated with fields."""
    widget = dict(WIDGET, **fields)
    return {"name": "D", "widgets": [widget]}


DROP = object()


def with_position(**position):
    base = {"x": 0, "y": 0, "w": 4, "h": 2}
    base.update(position)
    return with_widget(position={k: v for k, v in base.items() if v is not DROP})


# ---------------------------------------------------------------- success

def test_create_with_only_a_name_applies_the_defaults(api, db):
    response = post(api, {"name": "Ops"})
    assert response.status_code == 201
    body = response.json()
    assert (body["name"], body["description"], body["is_default"], body["owner"],
            body["version"], body["widgets"]) == ("Ops", None, False, None, 1, [])
    assert db.rows("SELECT name, description, is_default, owner FROM dashboards "
                   "WHERE id = %s", (body["id"],)) == [("Ops", None, False, None)]


def test_create_answers_location_and_etag_of_the_new_dashboard(api):
    response = post(api, {"name": "Ops"})
    assert response.status_code == 201
    assert response.headers["Location"] == "/api/v1/dashboards/%s" % response.json()["id"]
    assert response.headers["ETag"] == etag(1)


def test_create_location_serves_the_same_dashboard(api):
    created = post(api, {"name": "Ops", "widgets": [WIDGET]})
    fetched = api.get(created.headers["Location"])
    assert fetched.status_code == 200
    assert fetched.json() == created.json()


def test_create_stores_every_given_field(api, db):
    response = post(api, {"name": "Ops", "description": "On call", "is_default": True,
                          "owner": "alice"})
    assert response.status_code == 201
    body = response.json()
    assert (body["name"], body["description"], body["is_default"], body["owner"]) == (
        "Ops", "On call", True, "alice")
    assert db.rows("SELECT name, description, is_default, owner FROM dashboards "
                   "WHERE id = %s", (body["id"],)) == [("Ops", "On call", True, "alice")]


def test_create_applies_widget_defaults(api, db):
    response = post(api, {"name": "Ops", "widgets": [{"type": "gauge", "title": "CPU"}]})
    assert response.status_code == 201
    body = response.json()
    widget = body["widgets"][0]
    assert widget["dashboard_id"] == body["id"]
    assert (widget["type"], widget["title"], widget["config"], widget["position"],
            widget["refresh_interval_seconds"]) == (
        "gauge", "CPU", {}, {"x": 0, "y": 0, "w": 4, "h": 2}, 60)
    assert db.count_widgets(body["id"]) == 1


def test_create_stores_every_given_widget_field(api):
    widget = {"type": "line_chart", "title": "Latency", "config": {"metric": "p95"},
              "position": {"x": 2, "y": 3, "w": 6, "h": 5}, "refresh_interval_seconds": 30}
    body = post(api, {"name": "Ops", "widgets": [widget]}).json()
    stored = body["widgets"][0]
    assert {k: stored[k] for k in widget} == widget


def test_create_returns_widgets_ordered_by_y_then_x_then_creation(api, db):
    titles_by_position = [("c", 4, 2), ("a", 0, 0), ("d", 8, 2), ("b", 4, 0), ("e", 0, 5)]
    widgets = [{"type": "table", "title": t, "position": {"x": x, "y": y, "w": 1, "h": 1}}
               for t, x, y in titles_by_position]
    body = post(api, {"name": "Ops", "widgets": widgets}).json()
    assert [w["title"] for w in body["widgets"]] == ["a", "b", "c", "d", "e"]
    assert db.count_widgets(body["id"]) == 5


@pytest.mark.parametrize("widget_type", WIDGET_TYPES)
def test_create_accepts_every_widget_type(api, widget_type):
    response = post(api, {"name": "Ops", "widgets": [{"type": widget_type, "title": "W"}]})
    assert response.status_code == 201
    assert response.json()["widgets"][0]["type"] == widget_type


def test_create_accepts_100_widgets(api, db):
    widgets = [dict(WIDGET, title="W%d" % i) for i in range(100)]
    response = post(api, {"name": "Ops", "widgets": widgets})
    assert response.status_code == 201
    assert len(response.json()["widgets"]) == 100
    assert db.count_widgets() == 100


CONFIG = {
    "nested": {"a": {"b": [1, 2, {"c": None, "d": [[], {}]}]}},
    "array": [1, "two", 3.25, True, False, None, [], {}],
    "unicode": "héllo wörld ✓ 日本語 🚀 \u00e9\u0301",
    "escapes": "quote \" backslash \\ slash / newline \n tab \t bell \u0007",
    "half": 0.5,
    "big": 12345678901,
    "beyond_double": 9007199254740993,
    "negative": -42,
    "tiny": 1e-7,
    "huge": 1.5e300,
    "zero": 0,
    "empty_string": "",
    "": "empty key",
}


def test_create_returns_config_exactly(api):
    body = post(api, {"name": "Ops", "widgets": [dict(WIDGET, config=CONFIG)]}).json()
    assert body["widgets"][0]["config"] == CONFIG


def test_config_reads_back_exactly(api):
    created = post(api, {"name": "Ops", "widgets": [dict(WIDGET, config=CONFIG)]}).json()
    fetched = api.get("/api/v1/dashboards/%s" % created["id"]).json()
    assert fetched["widgets"][0]["config"] == CONFIG
    assert isinstance(fetched["widgets"][0]["config"]["big"], int)
    assert isinstance(fetched["widgets"][0]["config"]["half"], float)


# config text as sent -> as it reads back (README, docs/openapi.yaml WidgetConfig)
CONFIG_TEXT = (
    '{"z": 1, "a": 1.50, "b": 1e2, "c": 1E-7, "d": 0.1, "e": -0.0, "f": -0,'
    ' "g": 9223372036854775807, "h": "\\u00e9\\/", "i": [ 2.50e1 ]}',
    '{"z":1,"a":1.5,"b":100.0,"c":1e-07,"d":0.1,"e":-0.0,"f":0,'
    '"g":9223372036854775807,"h":"\u00e9/","i":[25.0]}',
)


def test_config_reads_back_in_the_documented_number_forms(api):
    sent, kept = CONFIG_TEXT
    body = '{"name": "Ops", "widgets": [{"type": "table", "title": "T", "config": %s}]}' % sent
    created = api.post("/api/v1/dashboards", data=body.encode(),
                       headers={"Content-Type": "application/json"})
    assert created.status_code == 201, created.text
    fetched = api.get("/api/v1/dashboards/%s" % created.json()["id"])
    # the text of config itself; the space the database writes around it is its own
    assert re.search(r'"config"\s*:\s*%s\s*,' % re.escape(kept), fetched.text), fetched.text


@pytest.mark.parametrize("config", ['{"a": 1, "a": 2}', '{"a": 9223372036854775808}',
                                    '{"a": 1e400}'], ids=["repeated name", "int beyond 64 bits",
                                                          "beyond a double"])
def test_config_outside_what_is_kept_is_400(api, db, config):
    body = '{"name": "Ops", "widgets": [{"type": "table", "title": "T", "config": %s}]}' % config
    with db.unchanged():
        response = api.post("/api/v1/dashboards", data=body.encode(),
                            headers={"Content-Type": "application/json"})
    assert response.status_code == 400, response.text


@pytest.mark.parametrize("field, value", [
    ("name", "x"),
    ("name", "é" * 255),
    ("name", "🚀" * 255),
    ("description", "é" * 10000),
    ("description", None),
    ("description", ""),
    ("owner", "é" * 255),
    ("owner", None),
    ("is_default", False),
], ids=["name 1 char", "name 255 two-byte chars", "name 255 four-byte chars",
        "description 10000 two-byte chars", "description null", "description empty",
        "owner 255 two-byte chars", "owner null", "is_default false"])
def test_create_accepts_boundary_value(api, db, field, value):
    body = {"name": "Ops", field: value}
    response = post(api, body)
    assert response.status_code == 201, response.text[:500]
    assert response.json()[field] == value
    column = db.scalar("SELECT %s FROM dashboards" % field)
    assert column == value


@pytest.mark.parametrize("position", [
    {"x": 0, "y": 0, "w": 12, "h": 1}, {"x": 11, "y": 0, "w": 1, "h": 1},
    {"x": 6, "y": 1000, "w": 6, "h": 50}, {"x": 0, "y": 100000, "w": 1, "h": 1000},
], ids=["full width", "last column", "far down", "lowest and tallest"])
def test_create_accepts_position_on_the_grid_edge(api, position):
    response = post(api, with_widget(position=position))
    assert response.status_code == 201
    assert response.json()["widgets"][0]["position"] == position


@pytest.mark.parametrize("seconds", [10, 3600])
def test_create_accepts_refresh_interval_bound(api, seconds):
    response = post(api, with_widget(refresh_interval_seconds=seconds))
    assert response.status_code == 201
    assert response.json()["widgets"][0]["refresh_interval_seconds"] == seconds


# ---------------------------------------------------------------- invalid bodies

INVALID = [
    # id, body, the exact set of fields reported
    ("name missing", {}, {"name"}),
    ("name empty", {"name": ""}, {"name"}),
    ("name 256 chars", {"name": "é" * 256}, {"name"}),
    ("name null", {"name": None}, {"name"}),
    ("name number", {"name": 5}, {"name"}),
    ("name bool", {"name": True}, {"name"}),
    ("name array", {"name": ["a"]}, {"name"}),
    ("name object", {"name": {}}, {"name"}),
    ("description 10001 chars", {"name": "D", "description": "é" * 10001}, {"description"}),
    ("description number", {"name": "D", "description": 5}, {"description"}),
    ("description bool", {"name": "D", "description": False}, {"description"}),
    ("description array", {"name": "D", "description": []}, {"description"}),
    ("is_default string", {"name": "D", "is_default": "true"}, {"is_default"}),
    ("is_default number", {"name": "D", "is_default": 1}, {"is_default"}),
    ("is_default object", {"name": "D", "is_default": {}}, {"is_default"}),
    ("owner empty", {"name": "D", "owner": ""}, {"owner"}),
    ("owner 256 chars", {"name": "D", "owner": "é" * 256}, {"owner"}),
    ("owner number", {"name": "D", "owner": 5}, {"owner"}),
    ("owner bool", {"name": "D", "owner": True}, {"owner"}),
    ("widgets object", {"name": "D", "widgets": {}}, {"widgets"}),
    ("widgets string", {"name": "D", "widgets": "x"}, {"widgets"}),
    ("widgets number", {"name": "D", "widgets": 5}, {"widgets"}),
    ("widgets 101", {"name": "D", "widgets": [WIDGET] * 101}, {"widgets"}),
    ("widget number", {"name": "D", "widgets": [5]}, {"widgets[0]"}),
    ("widget string", {"name": "D", "widgets": ["x"]}, {"widgets[0]"}),
    ("widget null", {"name": "D", "widgets": [None]}, {"widgets[0]"}),
    ("unknown field", {"name": "D", "colour": "red"}, {"colour"}),
    ("read-only id", {"name": "D", "id": "00000000-0000-4000-8000-000000000000"}, {"id"}),
    ("read-only version", {"name": "D", "version": 1}, {"version"}),
    ("widget type missing", {"name": "D", "widgets": [{"title": "T"}]}, {"widgets[0].type"}),
    ("widget type unknown", with_widget(type="sparkline"), {"widgets[0].type"}),
    ("widget type wrong case", with_widget(type="Metric_Card"), {"widgets[0].type"}),
    ("widget type number", with_widget(type=5), {"widgets[0].type"}),
    ("widget type null", with_widget(type=None), {"widgets[0].type"}),
    ("widget title missing", {"name": "D", "widgets": [{"type": "gauge"}]},
     {"widgets[0].title"}),
    ("widget title empty", with_widget(title=""), {"widgets[0].title"}),
    ("widget title 256 chars", with_widget(title="é" * 256), {"widgets[0].title"}),
    ("widget title number", with_widget(title=5), {"widgets[0].title"}),
    ("widget title null", with_widget(title=None), {"widgets[0].title"}),
    ("widget config array", with_widget(config=[]), {"widgets[0].config"}),
    ("widget config string", with_widget(config="x"), {"widgets[0].config"}),
    ("widget config number", with_widget(config=5), {"widgets[0].config"}),
    ("widget config bool", with_widget(config=True), {"widgets[0].config"}),
    ("widget unknown field", with_widget(colour="red"), {"widgets[0].colour"}),
    ("position string", with_widget(position="0,0,4,2"), {"widgets[0].position"}),
    ("position array", with_widget(position=[0, 0, 4, 2]), {"widgets[0].position"}),
    ("position number", with_widget(position=5), {"widgets[0].position"}),
    ("position x missing", with_position(x=DROP), {"widgets[0].position.x"}),
    ("position y missing", with_position(y=DROP), {"widgets[0].position.y"}),
    ("position w missing", with_position(w=DROP), {"widgets[0].position.w"}),
    ("position h missing", with_position(h=DROP), {"widgets[0].position.h"}),
    ("position unknown field", with_position(z=1), {"widgets[0].position.z"}),
    ("position x below 0", with_position(x=-1), {"widgets[0].position.x"}),
    ("position w below 1", with_position(w=0), {"widgets[0].position.w"}),
    ("position w negative", with_position(w=-3), {"widgets[0].position.w"}),
    ("position y below 0", with_position(y=-1), {"widgets[0].position.y"}),
    ("position h below 1", with_position(h=0), {"widgets[0].position.h"}),
    ("position x fraction", with_position(x=1.5), {"widgets[0].position.x"}),
    ("position y fraction", with_position(y=0.5), {"widgets[0].position.y"}),
    ("position w fraction", with_position(w=2.5), {"widgets[0].position.w"}),
    ("position h fraction", with_position(h=1.5), {"widgets[0].position.h"}),
    ("position y above 100000", with_position(y=100001), {"widgets[0].position.y"}),
    ("position h above 1000", with_position(h=1001), {"widgets[0].position.h"}),
    ("position x string", with_position(x="1"), {"widgets[0].position.x"}),
    ("position y null", with_position(y=None), {"widgets[0].position.y"}),
    ("position w bool", with_position(w=True), {"widgets[0].position.w"}),
    ("refresh 9", with_widget(refresh_interval_seconds=9), {"widgets[0].refresh_interval_seconds"}),
    ("refresh 3601", with_widget(refresh_interval_seconds=3601),
     {"widgets[0].refresh_interval_seconds"}),
    ("refresh 0", with_widget(refresh_interval_seconds=0), {"widgets[0].refresh_interval_seconds"}),
    ("refresh negative", with_widget(refresh_interval_seconds=-60),
     {"widgets[0].refresh_interval_seconds"}),
    ("refresh fraction", with_widget(refresh_interval_seconds=60.5),
     {"widgets[0].refresh_interval_seconds"}),
    ("refresh string", with_widget(refresh_interval_seconds="60"),
     {"widgets[0].refresh_interval_seconds"}),
    ("refresh bool", with_widget(refresh_interval_seconds=True),
     {"widgets[0].refresh_interval_seconds"}),
    ("refresh null", with_widget(refresh_interval_seconds=None),
     {"widgets[0].refresh_interval_seconds"}),
    ("third widget bad", {"name": "D", "widgets": [WIDGET, WIDGET, dict(
        WIDGET, position={"x": 0, "y": 0, "w": 0, "h": 1})]}, {"widgets[2].position.w"}),
]


@pytest.mark.parametrize("body, fields", [c[1:] for c in INVALID], ids=[c[0] for c in INVALID])
def test_create_refuses_invalid_body_with_422_naming_the_field(api, db, body, fields):
    with db.unchanged():
        response = post(api, body)
    assert error_fields(response) == fields


@pytest.mark.parametrize("position", [{"x": 8, "y": 0, "w": 5, "h": 1},
                                      {"x": 11, "y": 0, "w": 2, "h": 1},
                                      {"x": 0, "y": 0, "w": 13, "h": 1}],
                         ids=["8+5", "11+2", "0+13"])
def test_create_refuses_a_widget_wider_than_the_grid(api, db, position):
    with db.unchanged():
        response = post(api, with_widget(position=position))
    fields = error_fields(response)
    assert fields and fields <= {"widgets[0].position", "widgets[0].position.x",
                                 "widgets[0].position.w"}, fields


def test_create_refuses_an_integer_beyond_64_bits_without_a_server_error(api, db):
    with db.unchanged():
        response = post(api, with_position(h=2 ** 64))
    assert response.status_code in (400, 422), response.text


def test_create_lists_every_bad_field_at_once(api, db):
    body = {
        "name": "", "description": 5, "is_default": "no", "owner": 7, "extra": 1,
        "widgets": [
            {"type": "sparkline", "title": ""},
            {"type": "gauge", "title": "ok", "config": [], "refresh_interval_seconds": 9,
             "position": {"x": 0, "y": -1, "w": 0, "h": 2}},
        ],
    }
    with db.unchanged():
        response = post(api, body)
    assert error_fields(response) == {
        "name", "description", "is_default", "owner", "extra", "widgets[0].type",
        "widgets[0].title", "widgets[1].config", "widgets[1].refresh_interval_seconds",
        "widgets[1].position.y", "widgets[1].position.w"}


def test_create_with_one_bad_widget_among_good_ones_creates_nothing(api, db):
    widgets = [dict(WIDGET, title="W%d" % i) for i in range(5)]
    widgets.insert(3, dict(WIDGET, type="sparkline"))
    with db.unchanged():
        response = post(api, {"name": "D", "widgets": widgets})
    assert error_fields(response) == {"widgets[3].type"}
    assert db.count_dashboards() == 0 and db.count_widgets() == 0
