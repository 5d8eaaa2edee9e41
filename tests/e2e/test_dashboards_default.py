"""test_dashboards_default.py - GET /api/v1/dashboards/default: the "System
Overview" dashboard with the ten seed widgets, created exactly once."""

import threading

from support import etag

# The ten widgets of seed 000 (task 18.3), in the documented order (y, x).
SEED_WIDGETS = [
    ("metric_card", "Success Rate", {"metric": "success_rate", "time_range": "24h"},
     {"x": 0, "y": 0, "w": 3, "h": 2}),
    ("metric_card", "Total Executions", {"metric": "total_executions", "time_range": "24h"},
     {"x": 3, "y": 0, "w": 3, "h": 2}),
    ("metric_card", "Avg Latency", {"metric": "avg_latency", "time_range": "24h"},
     {"x": 6, "y": 0, "w": 3, "h": 2}),
    ("metric_card", "Total Cost", {"metric": "total_cost", "time_range": "24h"},
     {"x": 9, "y": 0, "w": 3, "h": 2}),
    ("line_chart", "Execution Metrics",
     {"metrics": ["executions", "success_rate"], "time_range": "24h"},
     {"x": 0, "y": 2, "w": 8, "h": 4}),
    ("status_board", "Agent Status", {}, {"x": 8, "y": 2, "w": 4, "h": 4}),
    ("pie_chart", "Error Breakdown", {"time_range": "24h"}, {"x": 0, "y": 6, "w": 4, "h": 4}),
    ("bar_chart", "Cost by Agent", {"group_by": "agent", "time_range": "24h"},
     {"x": 4, "y": 6, "w": 4, "h": 4}),
    ("alert_list", "Active Alerts", {"limit": 10}, {"x": 8, "y": 6, "w": 4, "h": 4}),
    ("table", "Recent Activity", {"limit": 10}, {"x": 0, "y": 10, "w": 12, "h": 4}),
]

PATH = "/api/v1/dashboards/default"


def widget_tuples(dashboard):
    return [(w["type"], w["title"], w["config"], w["position"]) for w in dashboard["widgets"]]


def test_default_is_created_as_system_overview_when_there_is_none(api, db):
    response = api.get(PATH)
    assert response.status_code == 200
    body = response.json()
    assert (body["name"], body["description"], body["is_default"], body["owner"],
            body["version"]) == (
        "System Overview", "Default system monitoring dashboard", True, None, 1)
    assert response.headers["ETag"] == etag(1)
    assert db.count_dashboards() == 1 and db.count_dashboards("is_default") == 1


def test_default_has_exactly_the_ten_seed_widgets(api, db):
    body = api.get(PATH).json()
    assert widget_tuples(body) == SEED_WIDGETS
    assert all(w["refresh_interval_seconds"] == 60 for w in body["widgets"])
    assert all(w["dashboard_id"] == body["id"] for w in body["widgets"])
    assert db.count_widgets(body["id"]) == 10


def test_default_is_created_only_once(api, db):
    first = api.get(PATH).json()
    with db.unchanged():
        second = api.get(PATH)
    assert second.status_code == 200
    assert second.json() == first


def test_default_created_by_8_concurrent_first_calls_exists_once(api, db):
    barrier = threading.Barrier(8)
    results = [None] * 8

    def call(index):
        barrier.wait()
        results[index] = api.get(PATH, validate=False)

    threads = [threading.Thread(target=call, args=(i,)) for i in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(30)
    for response in results:
        api.openapi.check_response(response)
    assert [r.status_code for r in results] == [200] * 8
    assert len({r.json()["id"] for r in results}) == 1
    assert db.count_dashboards() == 1
    assert db.count_widgets() == 10
    assert widget_tuples(results[0].json()) == SEED_WIDGETS


def test_default_is_the_existing_default_dashboard(api, db, make_dashboard):
    make_dashboard(name="Other")
    mine = make_dashboard(name="Mine", is_default=True)
    with db.unchanged():
        response = api.get(PATH)
    assert response.status_code == 200
    assert response.json() == mine


def test_default_is_recreated_after_the_default_is_deleted(api, db):
    first = api.get(PATH).json()
    assert api.delete("/api/v1/dashboards/%s" % first["id"]).status_code == 204
    second = api.get(PATH).json()
    assert second["id"] != first["id"]
    assert widget_tuples(second) == SEED_WIDGETS
    assert db.count_dashboards() == 1 and db.count_widgets() == 10


def test_default_is_created_when_only_non_default_dashboards_exist(api, db, make_dashboard):
    make_dashboard(name="Ops")
    body = api.get(PATH).json()
    assert body["name"] == "System Overview" and body["is_default"]
    assert db.count_dashboards() == 2 and db.count_dashboards("is_default") == 1
