"""test_aggregates_widgets.py - widget data: every widget of the default
dashboard with GET /dashboards/default?include_data=true (each checked
against docs/openapi.yaml and against known answers), a dashboard with one
widget of each type and a non-default config, GET .../widgets/{wid}/data
agreeing with include_data, and its 404s."""

import datetime
import decimal
import random
import uuid

import pytest

from support import assert_problem, gen_executions, is_success, now_utc, post_executions

pytestmark = pytest.mark.ingest


def alert(db, severity, title, agent_id=None, resolved=False):
    db.execute("INSERT INTO alerts (fingerprint, severity, title, message, agent_id, status, ends_at) "
               "VALUES (left(md5(%s), 16), %s, %s, 'm', %s, %s, CASE WHEN %s THEN now() END)",
               (title, severity, title, agent_id, "resolved" if resolved else "firing", resolved))


def fleet(api, db, make_agent, n=300, seed=21):
    """Three agents and n executions over the last 20 hours; three open
    alerts and a resolved one. Returns (agents, executions)."""
    agents = [make_agent(name="w-agent-%d" % k) for k in range(3)]
    now = now_utc()
    executions = gen_executions(random.Random(seed), n, now - datetime.timedelta(hours=20),
                                now - datetime.timedelta(minutes=1), [a["id"] for a in agents])
    post_executions(api, executions)
    alert(db, "low", "low one", agents[0]["id"])
    alert(db, "critical", "critical one", agents[1]["id"])
    alert(db, "high", "fleet-wide")
    alert(db, "critical", "gone", agents[1]["id"], resolved=True)
    return agents, executions


def cost(executions):
    return sum((decimal.Decimal(repr(e["cost_usd"])) for e in executions), decimal.Decimal())


def by_title(dashboard):
    return {w["title"]: w for w in dashboard["widgets"]}


def test_the_default_dashboard_with_data_has_every_widgets_data(api, db, make_agent):
    agents, executions = fleet(api, db, make_agent)
    response = api.get("/api/v1/dashboards/default", params={"include_data": "true"})
    assert response.status_code == 200, response.text
    widgets = by_title(response.json())
    assert len(widgets) == 10 and all("data" in w for w in widgets.values())
    total = len(executions)
    successes = sum(1 for e in executions if is_success(e))

    card = widgets["Success Rate"]["data"]
    assert card["value"] == pytest.approx(100 * successes / total)
    assert card["formatted_value"] and card["unit"] == "%"
    assert widgets["Total Executions"]["data"]["value"] == total
    assert widgets["Avg Latency"]["data"]["value"] == pytest.approx(
        sum(e["latency_ms"] for e in executions) / total)
    assert widgets["Total Cost"]["data"]["value"] == pytest.approx(float(cost(executions)))

    chart = widgets["Execution Metrics"]["data"]
    assert (chart["time_range"], len(chart["series"])) == ("24h", 2)
    assert sum(p["value"] or 0 for p in chart["series"][0]["data"]) == total

    board = widgets["Agent Status"]["data"]
    assert sorted(a["name"] for a in board["agents"]) == [a["name"] for a in agents]
    assert board["summary"]["total"] == 3

    errors = {}
    for e in executions:
        if e["status"] != "succeeded":
            errors[e["error"]["category"]] = errors.get(e["error"]["category"], 0) + 1
    pie = widgets["Error Breakdown"]["data"]
    assert {s["name"]: s["value"] for s in pie["segments"]} == errors
    assert sum(s["percentage"] for s in pie["segments"]) == pytest.approx(100)

    bars = widgets["Cost by Agent"]["data"]
    costs = sorted(((cost([e for e in executions if e["agent_id"] == a["id"]]), a["name"])
                    for a in agents), reverse=True)
    assert bars["group_by"] == "agent"
    assert bars["categories"] == [name for _, name in costs]
    assert bars["values"] == [pytest.approx(float(c)) for c, _ in costs]

    alerts = widgets["Active Alerts"]["data"]
    assert [(a["severity"], a["title"], a["agent_name"], a["acknowledged"])
            for a in alerts["alerts"]] == [("critical", "critical one", "w-agent-1", False),
                                           ("high", "fleet-wide", None, False),
                                           ("low", "low one", "w-agent-0", False)]
    assert alerts["total_count"] == 3

    table = widgets["Recent Activity"]["data"]
    assert table["columns"] and 1 <= len(table["rows"]) <= 10

    # Without include_data (or with false) the widgets have no data.
    for params in ({}, {"include_data": "false"}):
        plain = api.get("/api/v1/dashboards/default", params=params).json()
        assert all("data" not in w for w in plain["widgets"])


CONFIGS = [
    ("metric_card", {"metric": "error_rate", "time_range": "7d", "agent_id": "{a0}"}),
    ("line_chart", {"metrics": ["latency", "cost"], "time_range": "6h"}),
    ("bar_chart", {"group_by": "model", "time_range": "7d"}),
    ("pie_chart", {"time_range": "7d", "agent_id": "{a0}"}),
    ("table", {"type": "agent_summary", "limit": 2}),
    ("heatmap", {"time_range": "24h"}),
    ("gauge", {"metric": "success_rate", "time_range": "7d",
               "thresholds": {"critical": 10, "warning": 20, "good": 99.5}}),
    ("alert_list", {"limit": 1}),
    ("status_board", {"time_range": "7d"}),
]


def test_one_widget_of_each_type_follows_its_config(api, db, make_agent, make_dashboard):
    agents, executions = fleet(api, db, make_agent, n=200, seed=22)
    a0 = agents[0]["id"]
    widgets = [{"type": kind, "title": kind,
                "config": {k: (v.format(a0=a0) if isinstance(v, str) else v)
                           for k, v in config.items()},
                "position": {"x": 0, "y": k, "w": 6, "h": 1}}
               for k, (kind, config) in enumerate(CONFIGS)]
    dashboard = make_dashboard(name="Every type", widgets=widgets)
    response = api.get("/api/v1/dashboards/%s" % dashboard["id"],
                       params={"include_data": "true"})
    assert response.status_code == 200, response.text
    data = {w["type"]: w["data"] for w in response.json()["widgets"]}
    mine = [e for e in executions if e["agent_id"] == a0]
    six_hours = [e for e in executions if datetime.datetime.fromisoformat(
        e["started_at"].replace("Z", "+00:00")) >= now_utc() - datetime.timedelta(hours=6)]

    card = data["metric_card"]
    assert card["value"] == pytest.approx(
        100 * sum(1 for e in mine if e["status"] != "succeeded") / len(mine))
    assert card["unit"] == "%"

    chart = data["line_chart"]
    assert (chart["time_range"], len(chart["series"])) == ("6h", 2)
    units = {s["unit"] for s in chart["series"]}
    assert "ms" in units, units
    cost_series = [s for s in chart["series"] if s["unit"] != "ms"][0]
    assert sum(p["value"] or 0 for p in cost_series["data"]) == pytest.approx(
        float(cost(six_hours)), abs=2e-6)

    bars = data["bar_chart"]
    models = sorted(((cost([e for e in executions if e["model"] == m]), m)
                     for m in {e["model"] for e in executions}), reverse=True)
    assert (bars["group_by"], bars["categories"]) == ("model", [m for _, m in models])

    pie = data["pie_chart"]
    assert sum(s["value"] for s in pie["segments"]) == sum(
        1 for e in mine if e["status"] != "succeeded")

    table = data["table"]
    assert len(table["rows"]) == 2 and table["columns"]

    heat = data["heatmap"]
    assert sum(v or 0 for row in heat["data"] for v in row) == len(executions)

    gauge = data["gauge"]
    rate = 100 * sum(1 for e in executions if is_success(e)) / len(executions)
    assert gauge["value"] == pytest.approx(rate)
    assert gauge["thresholds"] == {"critical": 10, "warning": 20, "good": 99.5}
    assert gauge["status"] == ("good" if rate >= 99.5 else "warning" if rate >= 20
                               else "critical")
    assert (gauge["min"], gauge["max"]) == (0, 100)

    alerts = data["alert_list"]
    assert [a["title"] for a in alerts["alerts"]] == ["critical one"]
    assert alerts["total_count"] in (1, 3)

    board = data["status_board"]
    assert len(board["agents"]) == 3 and board["summary"]["total"] == 3

    # The widget data endpoint answers what include_data gave.
    for widget in response.json()["widgets"]:
        one = api.get("/api/v1/dashboards/%s/widgets/%s/data" % (dashboard["id"], widget["id"]))
        assert one.status_code == 200, one.text
        body = one.json()
        assert (body["widget_id"], body["type"]) == (widget["id"], widget["type"])
        if widget["type"] not in ("metric_card", "line_chart"):   # their buckets move with now
            data, shown = dict(body["data"]), dict(widget["data"])
            if widget["type"] == "heatmap":                        # so does its range
                del data["range"], shown["range"]
            assert data == shown, widget["type"]


def test_a_line_chart_of_all_five_metrics_has_their_series_in_order(api, make_dashboard):
    every = ["cost", "latency", "pass_rate", "success_rate", "executions"]
    dashboard = make_dashboard(widgets=[{"type": "line_chart", "title": "all",
                                         "config": {"metrics": every}}])
    response = api.get("/api/v1/dashboards/%s/widgets/%s/data"
                       % (dashboard["id"], dashboard["widgets"][0]["id"]))
    assert response.status_code == 200, response.text
    series = response.json()["data"]["series"]
    assert [(s["name"], s["unit"]) for s in series] == [
        ("Executions", "count"), ("Success Rate", "%"), ("Pass Rate", "%"),
        ("Avg Latency", "ms"), ("Cost", "$")]


def test_a_sixth_line_chart_metric_or_an_unknown_one_is_refused(api):
    for metrics, field in ((["executions", "success_rate", "pass_rate", "latency", "cost",
                             "cost"], "config.metrics"),
                           (["pass_rates"], "config.metrics[0]")):
        response = api.post("/api/v1/dashboards", json={
            "name": "x", "widgets": [{"type": "line_chart", "title": "t",
                                      "config": {"metrics": metrics}}]})
        assert_problem(response, 422, "validation")
        assert [e["field"] for e in response.json()["errors"]] == ["widgets[0]." + field]


def test_widget_data_of_unknown_or_foreign_widgets_is_404(api, make_dashboard):
    first = make_dashboard(name="one", widgets=[{"type": "gauge", "title": "g"}])
    second = make_dashboard(name="two", widgets=[{"type": "gauge", "title": "g"}])
    path = "/api/v1/dashboards/%s/widgets/%s/data"
    widget = first["widgets"][0]["id"]
    assert api.get(path % (first["id"], widget)).status_code == 200
    for dashboard_id, widget_id in ((second["id"], widget), (first["id"], str(uuid.uuid4())),
                                    (str(uuid.uuid4()), widget), (first["id"], "nope"),
                                    ("nope", widget)):
        assert_problem(api.get(path % (dashboard_id, widget_id)), 404, "not-found")


def test_unknown_dashboard_with_data_is_404(api):
    response = api.get("/api/v1/dashboards/%s" % uuid.uuid4(), params={"include_data": "true"})
    assert_problem(response, 404, "not-found")


def test_an_empty_fleet_gives_zero_data_not_errors(api):
    response = api.get("/api/v1/dashboards/default", params={"include_data": "true"})
    assert response.status_code == 200, response.text
    widgets = by_title(response.json())
    assert widgets["Total Executions"]["data"]["value"] == 0
    assert widgets["Active Alerts"]["data"] == {"alerts": [], "total_count": 0}
    assert widgets["Agent Status"]["data"]["agents"] == []


def test_a_dashboard_with_data_has_a_weak_etag_and_is_never_304(api, make_dashboard):
    dashboard = make_dashboard(widgets=[{"type": "gauge", "title": "g"}])
    path = "/api/v1/dashboards/%s" % dashboard["id"]
    response = api.get(path, params={"include_data": "true"})
    assert response.headers["ETag"] == 'W/"%d"' % dashboard["version"]
    for etag in (response.headers["ETag"], '"%d"' % dashboard["version"]):
        again = api.get(path, params={"include_data": "true"}, headers={"If-None-Match": etag})
        assert again.status_code == 200 and "data" in again.json()["widgets"][0]
    assert api.get(path, headers={"If-None-Match": response.headers["ETag"]}).status_code == 304
