"""test_aggregates_success.py - what a success is, the same in every answer:
an execution whose evaluation passed, or, without an evaluation, whose
status is succeeded (execution_success() of sql/functions/01_core.sql).
The summary, the agent items and metrics, fleet health, the time series,
/metrics and the widgets that show a success rate agree on exact counts and
rates (success_rate, and pass_rate = passed / evaluated beside it), from pending
deltas, after rollup_refresh() and after rollup_rebuild(); a verdict given
later moves an execution in or out of the successes."""

import datetime
import uuid

import pytest

from support import now_utc, post_executions, utc

pytestmark = pytest.mark.ingest

DAY = "24h"
WIDGETS = [   # title: (type, config)
    ("success card", "metric_card", {"metric": "success_rate"}),
    ("pass card", "metric_card", {"metric": "pass_rate"}),
    ("gauge", "gauge", {"metric": "success_rate"}),
    ("rates", "line_chart", {"metrics": ["success_rate", "pass_rate"]}),
    ("agents", "table", {"type": "agent_summary"}),
    ("board", "status_board", {}),
]


def moment():
    """A start that puts every execution of a test in one 15-minute bucket
    of the last 24 hours (the automatic interval of time_range=24h)."""
    start = now_utc() - datetime.timedelta(hours=2)
    return start.replace(minute=start.minute - start.minute % 15, second=0, microsecond=0)


def run(agent_id, at, k, status="succeeded", passed=None):
    """Execution k of an agent (k tenths of a second after at): its status,
    and an evaluation when passed is True or False."""
    body = {"id": str(uuid.uuid4()), "agent_id": agent_id, "model": "model-a", "status": status,
            "latency_ms": 100, "started_at": utc(at + datetime.timedelta(milliseconds=100 * k))}
    if status != "succeeded":
        body["error"] = {"category": "tool_error"}
    if passed is not None:
        body["evaluation"] = {"passed": passed}
    return body


def runs(agent_id, outcomes):
    """Executions of an agent from [(count, status, passed)]."""
    at, result = moment(), []
    for count, status, passed in outcomes:
        for _ in range(count):
            result.append(run(agent_id, at, len(result), status, passed))
    return result


def get(api, path, **params):
    response = api.get(path, params=params)
    assert response.status_code == 200, response.text
    return response.json()


def verdict(api, execution_id, passed):
    response = api.post("/api/v1/evaluations",
                        json={"execution_id": execution_id, "passed": passed})
    assert response.status_code in (200, 201), response.text


def answers(api, agent_id, dashboard_id):
    """Every figure of success the API gives for a fleet of one agent."""
    summary = get(api, "/api/v1/executions/summary", time_range=DAY)
    item, = get(api, "/api/v1/agents/summary", time_range=DAY)["items"]
    metrics = get(api, "/api/v1/agents/%s/metrics" % agent_id, time_range=DAY)
    health = get(api, "/api/v1/health", time_range=DAY)
    points = [p for p in get(api, "/api/v1/executions/timeseries",
                             time_range=DAY)["series"][0]["points"] if p["executions"]]
    assert len(points) == 1, points
    dashboard = get(api, "/api/v1/dashboards/%s" % dashboard_id, include_data="true")
    data = {w["title"]: w["data"] for w in dashboard["widgets"]}
    board = data["board"]
    row, = data["agents"]["rows"]
    # executions_url names the range each answer read: "now" moved between them
    assert ({k: v for k, v in metrics["agent"].items() if k != "executions_url"}
            == {k: v for k, v in item.items() if k != "executions_url"})
    figures = ("total", "successes", "evaluated", "passed", "failed", "errors",
               "success_rate", "pass_rate")
    assert {k: metrics["summary"][k] for k in figures} == {k: summary[k] for k in figures}
    return {
        "summary": tuple(summary[k] for k in figures),
        "agent": (item["status"], item["executions"], item["successes"], item["evaluated"],
                  item["passed"], item["success_rate"], item["pass_rate"]),
        "health": (health["status"], health["agents"]["healthy"], health["agents"]["warning"],
                   health["agents"]["critical"]),
        "metrics": (get(api, "/api/v1/metrics/success_rate", time_range=DAY)["value"],
                    get(api, "/api/v1/metrics/pass_rate", time_range=DAY)["value"]),
        "point": (points[0]["executions"], points[0]["success_rate"], points[0]["pass_rate"]),
        "cards": (data["success card"]["value"], data["success card"]["formatted_value"],
                  data["pass card"]["value"], data["pass card"]["formatted_value"]),
        "gauge": (data["gauge"]["value"], data["gauge"]["status"]),
        "chart": [(s["name"], [p["value"] for p in s["data"] if p["value"] is not None])
                  for s in data["rates"]["series"]],
        "table": (data["agents"]["columns"][3:5], row["status"], row["success_rate"],
                  row["pass_rate"]),
        "board": (board["system_status"], board["agents"][0]["status"],
                  board["agents"][0]["success_rate"], board["agents"][0]["pass_rate"]),
    }


@pytest.fixture
def fleet(make_agent, make_dashboard):
    """One agent and a dashboard with every widget that shows success."""
    agent = make_agent(name="solo")
    dashboard = make_dashboard(name="Success", widgets=[
        {"type": kind, "title": title, "config": config,
         "position": {"x": 0, "y": k, "w": 6, "h": 1}}
        for k, (title, kind, config) in enumerate(WIDGETS)])
    return agent["id"], dashboard["id"]


def pending_folded_rebuilt(api, db, fleet, executions):
    """Posts executions; the answers while they are pending deltas, after
    rollup_refresh() and after rollup_rebuild(), asserted equal. Returns them."""
    with db.rollups_paused():
        post_executions(api, executions)
        pending = answers(api, *fleet)
    db.rollup_refresh()
    folded = answers(api, *fleet)
    db.execute("SELECT rollup_rebuild()")
    rebuilt = answers(api, *fleet)
    assert pending == folded
    assert folded == rebuilt
    return folded


def test_succeeded_runs_without_evaluations_are_successes_everywhere(api, db, fleet):
    got = pending_folded_rebuilt(api, db, fleet, runs(fleet[0], [(20, "succeeded", None)]))
    assert got == {
        "summary": (20, 20, 0, 0, 0, 0, 1.0, None),
        "agent": ("healthy", 20, 20, 0, 0, 1.0, None),
        "health": ("healthy", 1, 0, 0),
        "metrics": (100.0, None),
        "point": (20, 1.0, None),
        "cards": (100.0, "100.0%", None, "-"),
        "gauge": (100.0, "good"),
        "chart": [("Success Rate", [100.0]), ("Pass Rate", [])],
        "table": (["Success Rate", "Pass Rate"], "healthy", "100.0%", "-"),
        "board": ("healthy", "healthy", 1.0, None),
    }


def test_an_evaluation_decides_and_without_one_the_status(api, db, fleet):
    outcomes = [(10, "succeeded", None),     # successes
                (5, "succeeded", True),      # successes
                (3, "succeeded", False),     # not: the evaluation failed
                (2, "failed", True),         # successes: the evaluation passed
                (4, "failed", None),         # not
                (1, "timeout", False)]       # not
    got = pending_folded_rebuilt(api, db, fleet, runs(fleet[0], outcomes))
    pass_rate = 7 / 11
    assert got == {
        "summary": (25, 17, 11, 7, 4, 7, 0.68, pytest.approx(pass_rate, rel=1e-12)),
        "agent": ("critical", 25, 17, 11, 7, 0.68, pytest.approx(pass_rate, rel=1e-12)),
        "health": ("critical", 0, 0, 1),
        "metrics": (pytest.approx(68.0, rel=1e-12), pytest.approx(100 * pass_rate, rel=1e-12)),
        "point": (25, 0.68, pytest.approx(pass_rate, rel=1e-12)),
        "cards": (pytest.approx(68.0, rel=1e-12), "68.0%",
                  pytest.approx(100 * pass_rate, rel=1e-12), "63.6%"),
        "gauge": (pytest.approx(68.0, rel=1e-12), "critical"),
        "chart": [("Success Rate", [pytest.approx(68.0, rel=1e-12)]),
                  ("Pass Rate", [pytest.approx(100 * pass_rate, rel=1e-12)])],
        "table": (["Success Rate", "Pass Rate"], "critical", "68.0%", "63.6%"),
        "board": ("critical", "critical", 0.68, pytest.approx(pass_rate, rel=1e-12)),
    }


def summary_of(api):
    body = get(api, "/api/v1/executions/summary", time_range=DAY)
    item, = get(api, "/api/v1/agents/summary", time_range=DAY)["items"]
    return (body["total"], body["successes"], body["errors"], body["success_rate"],
            body["pass_rate"], item["status"])


def test_a_failed_run_whose_evaluation_passed_is_a_success(api, fleet):
    post_executions(api, runs(fleet[0], [(1, "failed", True)]))
    assert summary_of(api) == (1, 1, 1, 1.0, 1.0, "healthy")


def test_a_succeeded_run_whose_evaluation_failed_is_not_a_success(api, fleet):
    post_executions(api, runs(fleet[0], [(1, "succeeded", False)]))
    assert summary_of(api) == (1, 0, 0, 0.0, 0.0, "critical")


@pytest.mark.parametrize("successes, status", [(9, "healthy"), (7, "warning"), (6, "critical")])
def test_status_thresholds_count_runs_without_evaluations(api, fleet, successes, status):
    post_executions(api, runs(fleet[0], [(successes, "succeeded", None),
                                         (10 - successes, "failed", None)]))
    assert summary_of(api) == (10, successes, 10 - successes, successes / 10, None, status)


def test_a_later_failing_evaluation_takes_the_success_away(api, db, fleet):
    executions = runs(fleet[0], [(10, "succeeded", None)])
    assert pending_folded_rebuilt(api, db, fleet, executions)["agent"] == (
        "healthy", 10, 10, 0, 0, 1.0, None)
    with db.rollups_paused():
        for execution in executions[:2]:
            verdict(api, execution["id"], False)
        pending = answers(api, *fleet)
    db.rollup_refresh()
    folded = answers(api, *fleet)
    assert pending == folded
    assert folded["summary"] == (10, 8, 2, 0, 2, 0, 0.8, 0.0)
    assert folded["agent"] == ("warning", 10, 8, 2, 0, 0.8, 0.0)
    assert folded["health"] == ("degraded", 0, 1, 0)
    for execution in executions[2:4]:      # deltas on folded rollups
        verdict(api, execution["id"], False)
    assert answers(api, *fleet)["agent"] == ("critical", 10, 6, 4, 0, 0.6, 0.0)
    db.rollup_refresh()
    assert answers(api, *fleet)["board"] == ("critical", "critical", 0.6, 0.0)


def test_a_later_passing_evaluation_makes_a_failed_run_a_success(api, db, fleet):
    executions = runs(fleet[0], [(8, "succeeded", None), (2, "failed", None)])
    assert pending_folded_rebuilt(api, db, fleet, executions)["agent"] == (
        "warning", 10, 8, 0, 0, 0.8, None)
    with db.rollups_paused():
        for execution in executions[8:]:
            verdict(api, execution["id"], True)
        pending = answers(api, *fleet)
    db.rollup_refresh()
    folded = answers(api, *fleet)
    assert pending == folded
    assert folded["summary"] == (10, 10, 2, 2, 0, 2, 1.0, 1.0)
    assert folded["agent"] == ("healthy", 10, 10, 2, 2, 1.0, 1.0)
    assert folded["health"] == ("healthy", 1, 0, 0)
