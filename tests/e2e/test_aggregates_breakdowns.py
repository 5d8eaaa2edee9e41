"""test_aggregates_breakdowns.py - agent statuses and their thresholds
(/agents/summary, /health with its counts and conditions), the error
breakdown and its trend against the previous period, the cost breakdown by
agent and by model, /metrics/{name} (value, previous value, change, trend,
sparkline), and the weekday x hour heatmap in a time zone - all on
executions made for the test with known answers."""

import datetime
import decimal
import random

import pytest

from support import (assert_within, exact_percentiles, gen_executions, in_range, is_success,
                     parse_time, post_executions, usd, utc)

pytestmark = pytest.mark.ingest

UTC = datetime.timezone.utc
DAY = datetime.datetime(2024, 3, 5, tzinfo=UTC)
RANGE = {"from": "2024-03-05T00:00:00Z", "to": "2024-03-06T00:00:00Z"}


def get(api, path, **params):
    response = api.get(path, params=params)
    assert response.status_code == 200, response.text
    return response.json()


def runs(agent_id, n, passed, evaluated=None, day=DAY, **fields):
    """n executions of an agent on `day`, one per 10 minutes from 01:00:
    the first `passed` pass, the next (evaluated - passed) fail their
    evaluation, the rest have none."""
    evaluated = n if evaluated is None else evaluated
    result = []
    for k in range(n):
        body = {"agent_id": agent_id, "model": "model-a", "status": "succeeded",
                "latency_ms": 100 + k, "cost_usd": 0.01,
                "started_at": utc(day + datetime.timedelta(hours=1, minutes=10 * k))}
        if k < evaluated:
            body["evaluation"] = {"passed": k < passed}
        body.update(fields)
        result.append(body)
    return result


def pending_and_folded(api, db, executions, path, *queries):
    """Posts executions and answers each query of path while they are
    pending deltas, then after rollup_refresh(); asserts the answers are the
    same. Returns them."""
    with db.rollups_paused():
        post_executions(api, executions)
        pending = [get(api, path, **q) for q in queries]
    db.rollup_refresh()
    folded = [get(api, path, **q) for q in queries]
    assert pending == folded
    return folded


def trend(change):
    if change is None:
        return None
    return "up" if change > 5 else "down" if change < -5 else "stable"


# ---------------------------------------------------------------- agents and health

def test_agent_statuses_follow_the_thresholds_and_health_explains_them(api, make_agent,
                                                                        make_version):
    a, b, c, d, e = (make_agent(name=n) for n in ("alpha", "bravo", "charlie", "delta", "echo"))
    retired = make_agent(name="retired")
    post_executions(api, runs(a["id"], 20, 18)                 # 0.9: healthy
                    + runs(b["id"], 30, 21)                    # 0.7: warning
                    + runs(c["id"], 10, 6, status="failed",    # 0.6: critical (failed
                           error={"category": "tool_error"})   # runs passed: successes)
                    + runs(d["id"], 5, 5, day=DAY - datetime.timedelta(days=1))  # inactive
                    + runs(e["id"], 40, 32, evaluated=32)     # 32 passed + 8 succeeded
                    + runs(retired["id"], 10, 0))             # unevaluated: healthy
    assert api.patch("/api/v1/agents/%s" % retired["id"],
                     json={"is_active": False}).status_code == 200
    v1 = make_version(a["id"], "v1")
    v2 = make_version(a["id"], "v2")
    assert api.post("/api/v1/agents/%s/versions/%s/activate" % (a["id"], v1["id"])
                    ).status_code == 200
    assert api.post("/api/v1/deployments", json={
        "agent_id": a["id"], "old_version_id": v1["id"], "new_version_id": v2["id"]}
    ).status_code == 201

    items = get(api, "/api/v1/agents/summary", **RANGE)["items"]
    got = [(i["name"], i["status"], i["executions"], i["successes"], i["evaluated"],
            i["passed"], i["success_rate"], i["pass_rate"], i["errors"]) for i in items]
    assert got == [("echo", "healthy", 40, 40, 32, 32, 1.0, 1.0, 0),
                   ("bravo", "warning", 30, 21, 30, 21, 0.7, 0.7, 0),
                   ("alpha", "healthy", 20, 18, 20, 18, 0.9, 0.9, 0),
                   ("charlie", "critical", 10, 6, 10, 6, 0.6, 0.6, 10),
                   ("delta", "inactive", 0, 0, 0, 0, None, None, 0)]
    alpha = items[2]
    assert (alpha["active_version"], alpha["canary_status"]) == ("v1", "in_progress")
    assert alpha["avg_latency_ms"] == pytest.approx(109.5)
    assert alpha["avg_cost_usd"] == pytest.approx(0.01)
    assert parse_time(alpha["last_execution_at"]) == DAY + datetime.timedelta(hours=1,
                                                                             minutes=190)
    delta = items[4]
    assert (delta["last_execution_at"], delta["avg_latency_ms"], delta["p95_latency_ms"],
            delta["avg_cost_usd"], delta["active_version"], delta["canary_status"]) == (
        None, None, None, None, None, None)

    # Open problems (open or investigating), pending proposals, running experiments.
    problems = [api.post("/api/v1/problems", json={"category": "x", "severity": "high",
                                                   "title": "p%d" % k}).json() for k in range(3)]
    api.patch("/api/v1/problems/%s" % problems[1]["id"], json={"status": "investigating"})
    api.patch("/api/v1/problems/%s" % problems[2]["id"], json={"status": "resolved"})
    proposals = [api.post("/api/v1/proposals", json={"title": "t%d" % k, "agent_id": a["id"]}
                          ).json() for k in range(2)]
    api.patch("/api/v1/proposals/%s" % proposals[1]["id"], json={"status": "approved"})
    experiments = [api.post("/api/v1/experiments", json={"agent_id": a["id"], "name": "e%d" % k}
                            ).json() for k in range(2)]
    api.patch("/api/v1/experiments/%s" % experiments[0]["id"], json={"status": "running"})

    health = get(api, "/api/v1/health", **RANGE)
    assert health["status"] == "critical"
    assert health["agents"] == {"healthy": 2, "warning": 1, "critical": 1, "inactive": 1,
                                "total": 5}
    assert (health["open_problems"], health["pending_proposals"],
            health["running_experiments"]) == (2, 1, 1)
    text = " ".join(health["conditions"])
    assert "charlie" in text, health["conditions"]
    assert "retired" not in text


@pytest.mark.parametrize("passed, status", [(17, "degraded"), (18, "healthy")])
def test_system_status_is_degraded_by_a_warning_agent_else_healthy(api, make_agent, passed,
                                                                   status):
    a, b = make_agent(name="steady"), make_agent(name="wobbly")
    post_executions(api, runs(a["id"], 10, 10) + runs(b["id"], 20, passed))
    health = get(api, "/api/v1/health", **RANGE)
    assert health["status"] == status
    if status == "healthy":
        assert health["conditions"] == []
        assert health["agents"]["healthy"] == 2          # 18 of 20 is 0.9: healthy
    else:
        assert "wobbly" in " ".join(health["conditions"])
        assert (health["agents"]["healthy"], health["agents"]["warning"]) == (1, 1)


# ---------------------------------------------------------------- errors

ERRORS = {   # category: (count in the range, count in the previous day)
    "rate_limit": (21, 20), "timeout": (10, 5), "tool_error": (4, 4), "model_error": (2, 4)}


def test_error_breakdown_counts_categories_with_a_trend_against_the_previous_day(api, db,
                                                                                 make_agent):
    a, b = make_agent()["id"], make_agent()["id"]
    executions = runs(a, 20, 20) + runs(b, 10, 10, day=DAY - datetime.timedelta(days=1))
    messages = {}
    for category, counts in ERRORS.items():
        for day, count in zip((DAY, DAY - datetime.timedelta(days=1)), counts):
            for k in range(count):
                agent = b if category == "tool_error" else a
                message = "%s %s %d" % (category, day.date(), k)
                messages.setdefault(category, set()).add(message)
                executions.append({
                    "agent_id": agent, "model": "model-b", "status": "failed",
                    "latency_ms": 5, "error": {"category": category, "message": message},
                    "started_at": utc(day + datetime.timedelta(hours=5, minutes=2 * k))})
    body, by_agent, by_model = pending_and_folded(
        api, db, executions, "/api/v1/errors/breakdown", RANGE, dict(RANGE, agent_id=b),
        dict(RANGE, model="model-a"))
    assert (parse_time(body["previous_range"]["from"]),
            parse_time(body["previous_range"]["to"])) == (DAY - datetime.timedelta(days=1), DAY)
    assert body["total_errors"] == 37
    got = [(i["category"], i["count"], i["previous_count"], i["change_percent"], i["trend"])
           for i in body["items"]]
    assert got == [("rate_limit", 21, 20, pytest.approx(5.0), "stable"),
                   ("timeout", 10, 5, pytest.approx(100.0), "up"),
                   ("tool_error", 4, 4, pytest.approx(0.0), "stable"),
                   ("model_error", 2, 4, pytest.approx(-50.0), "down")]
    for item in body["items"]:
        assert item["percentage"] == pytest.approx(item["count"] / 37 * 100)
        assert item["example_message"] in messages[item["category"]]
    assert sum(i["percentage"] for i in body["items"]) == pytest.approx(100)

    assert [(i["category"], i["count"], i["previous_count"]) for i in by_agent["items"]] == [
        ("tool_error", 4, 4)]
    assert by_agent["total_errors"] == 4
    assert (by_model["total_errors"], by_model["items"]) == (0, [])
    # A range that cuts hours reads their edges from raw rows.
    body = get(api, "/api/v1/errors/breakdown", **{"from": "2024-03-05T05:03:00Z",
                                                   "to": "2024-03-05T05:31:00Z"})
    assert {i["category"]: i["count"] for i in body["items"]} == {   # minutes 4 to 30
        "rate_limit": 14, "timeout": 8, "tool_error": 2}
    # whole 5 minutes from the rollups, the minutes before 05:10 raw
    body = get(api, "/api/v1/errors/breakdown", **{"from": "2024-03-05T05:07:00Z",
                                                   "to": "2024-03-05T06:00:00Z"})
    assert {i["category"]: i["count"] for i in body["items"]} == {   # minutes 8 to 40
        "rate_limit": 17, "timeout": 6}


# ---------------------------------------------------------------- costs

def test_cost_breakdown_by_agent_and_by_model_adds_up_to_100_percent(api, db, make_agent):
    agents = [make_agent(name="cost-%d" % k) for k in range(3)]
    rng = random.Random(11)
    ids = [a["id"] for a in agents]
    executions = gen_executions(rng, 600, DAY, DAY + datetime.timedelta(days=1), ids)
    executions += gen_executions(rng, 50, DAY + datetime.timedelta(days=1),
                                 DAY + datetime.timedelta(days=2), ids)      # outside
    by_agent, by_model = pending_and_folded(api, db, executions, "/api/v1/costs/breakdown",
                                            RANGE, dict(RANGE, group_by="model"))
    rows = in_range(executions, DAY, DAY + datetime.timedelta(days=1))
    names = {a["id"]: a["name"] for a in agents}

    for body, group_by, key_of, name_of in (
            (by_agent, "agent", lambda e: e["agent_id"], names.get),
            (by_model, "model", lambda e: e["model"], lambda k: k)):
        assert body["group_by"] == group_by
        groups = {}
        for e in rows:
            groups.setdefault(key_of(e), []).append(e)
        expected = []
        for key, members in groups.items():
            cost = sum((decimal.Decimal(repr(e["cost_usd"])) for e in members), decimal.Decimal())
            expected.append((cost, key, members))
        expected.sort(key=lambda x: x[0], reverse=True)
        total = sum(cost for cost, _, _ in expected)
        assert usd(body["total_cost_usd"]) == total
        assert [(i["key"], i["name"], usd(i["cost_usd"]), i["executions"])
                for i in body["items"]] == [(key, name_of(key), cost, len(members))
                                            for cost, key, members in expected]
        for item, (cost, _, members) in zip(body["items"], expected):
            assert item["percentage"] == pytest.approx(float(cost / total * 100), rel=1e-9)
            assert item["cost_per_execution"] == pytest.approx(float(cost) / len(members),
                                                               rel=1e-9)
            tokens_in = sum(e["prompt_tokens"] for e in members)
            tokens_out = sum(e["completion_tokens"] for e in members)
            assert item["tokens"] == {"input": tokens_in, "output": tokens_out,
                                      "cache_read": sum(e["cache_read_tokens"] for e in members),
                                      "total": tokens_in + tokens_out}
        assert sum(i["percentage"] for i in body["items"]) == pytest.approx(100, abs=1e-6)

    body = get(api, "/api/v1/costs/breakdown", agent_id=ids[0], **RANGE)
    assert [i["key"] for i in body["items"]] == [ids[0]]
    assert body["items"][0]["percentage"] == pytest.approx(100)


# ---------------------------------------------------------------- metrics

METRIC_RANGE = (DAY, DAY + datetime.timedelta(hours=20))
PREVIOUS = (DAY - datetime.timedelta(hours=20), DAY)


def metric_of(name, executions):
    if not executions:
        return {"total_executions": 0, "total_cost": 0}.get(name)
    total = len(executions)
    if name == "total_executions":
        return total
    if name == "success_rate":
        return 100 * sum(1 for e in executions if is_success(e)) / total
    if name == "pass_rate":
        evaluated = [e for e in executions if "evaluation" in e]
        if not evaluated:
            return None
        return 100 * sum(1 for e in evaluated if e["evaluation"]["passed"]) / len(evaluated)
    if name == "error_rate":
        return 100 * sum(1 for e in executions if e["status"] != "succeeded") / total
    if name == "avg_latency":
        return sum(e["latency_ms"] for e in executions) / total
    if name == "total_cost":
        return float(sum(decimal.Decimal(repr(e["cost_usd"])) for e in executions))
    raise AssertionError(name)


@pytest.mark.parametrize("name, unit", [
    ("success_rate", "%"), ("pass_rate", "%"), ("total_executions", "count"),
    ("avg_latency", "ms"), ("p95_latency", "ms"), ("total_cost", "usd"), ("error_rate", "%")])
def test_metric_value_previous_value_trend_and_sparkline(api, db, make_agent, name, unit):
    ids = [make_agent()["id"] for _ in range(2)]
    rng = random.Random(12)
    executions = (gen_executions(rng, 800, *METRIC_RANGE, ids)
                  + gen_executions(rng, 500, *PREVIOUS, ids))
    post_executions(api, executions)
    current, previous = in_range(executions, *METRIC_RANGE), in_range(executions, *PREVIOUS)
    body = get(api, "/api/v1/metrics/" + name, **{"from": utc(METRIC_RANGE[0]),
                                                  "to": utc(METRIC_RANGE[1])})
    assert (body["name"], body["unit"]) == (name, unit)
    assert len(body["sparkline"]) == 20
    if name == "p95_latency":
        window = "started_at >= %s AND started_at < %s"
        assert_within(body["value"], exact_percentiles(db, (0.95,), window, METRIC_RANGE)[0])
        assert_within(body["previous_value"],
                      exact_percentiles(db, (0.95,), window, PREVIOUS)[0])
        value, before = body["value"], body["previous_value"]
        assert all(v is not None for v in body["sparkline"])
    else:
        value, before = metric_of(name, current), metric_of(name, previous)
        assert body["value"] == pytest.approx(value, rel=1e-9)
        assert body["previous_value"] == pytest.approx(before, rel=1e-9)
        # The last 20 buckets of the automatic interval of 20 hours: 15 minutes.
        quarter = datetime.timedelta(minutes=15)
        buckets = [in_range(current, METRIC_RANGE[1] - k * quarter,
                            METRIC_RANGE[1] - (k - 1) * quarter) for k in range(20, 0, -1)]
        assert body["sparkline"] == [pytest.approx(metric_of(name, rows), rel=1e-9)
                                     for rows in buckets]
    change = (value - before) / before * 100
    assert body["change_percent"] == pytest.approx(change, rel=1e-6)
    assert body["trend"] == trend(change)


def test_metric_filters_and_an_empty_previous_period(api, make_agent):
    a, b = make_agent()["id"], make_agent()["id"]
    post_executions(api, runs(a, 6, 3, metadata={"team": "x"}) + runs(b, 4, 4))
    params = dict(RANGE)
    assert get(api, "/api/v1/metrics/total_executions", agent_id=b, **params)["value"] == 4
    body = get(api, "/api/v1/metrics/success_rate", **params, **{"metadata.team": "x"})
    assert body["value"] == pytest.approx(50)
    assert (body["previous_value"], body["change_percent"]) == (None, None)
    body = get(api, "/api/v1/metrics/total_executions", **params)
    assert (body["value"], body["previous_value"], body["change_percent"]) == (10, 0, None)


# ---------------------------------------------------------------- heatmap

def test_heatmap_counts_by_local_weekday_and_hour(api, db, make_agent):
    agent = make_agent()["id"]

    def run(when, **fields):
        body = {"agent_id": agent, "model": "model-a", "status": "succeeded",
                "latency_ms": 1234, "started_at": when}
        body.update(fields)
        return body

    post_executions(api, [
        run("2024-03-04T08:10:00Z"), run("2024-03-04T08:20:00Z"),
        run("2024-03-04T08:59:59Z", latency_ms=10),            # Monday 09h local x 3
        run("2024-03-06T22:30:00Z"),                           # Wednesday 23h local x 2
        run("2024-03-06T22:31:00Z", status="failed", error={"category": "timeout"}),
        run("2024-03-09T23:15:00Z"),                           # Sunday 00h local
        run("2024-03-03T22:59:00Z"),                           # before the range
        run("2024-03-10T23:00:00Z"),                           # its end: excluded
    ])
    local = {"from": "2024-03-04T00:00:00+01:00", "to": "2024-03-11T00:00:00+01:00",
             "tz": "Europe/Berlin"}
    body = get(api, "/api/v1/heatmap", **local)
    assert (body["tz"], body["metric"], body["max"]) == ("Europe/Berlin", "executions", 3)
    expected = [[0] * 24 for _ in range(7)]
    expected[0][9], expected[2][23], expected[6][0] = 3, 2, 1
    assert body["data"] == expected

    body = get(api, "/api/v1/heatmap", **{"from": "2024-03-03T23:00:00Z",
                                           "to": "2024-03-10T23:00:00Z"})
    expected = [[0] * 24 for _ in range(7)]
    expected[0][8], expected[2][22], expected[5][23] = 3, 2, 1
    assert (body["tz"], body["data"]) == ("UTC", expected)

    body = get(api, "/api/v1/heatmap", metric="error_rate", **local)
    cells = {(d, h): v for d, row in enumerate(body["data"]) for h, v in enumerate(row)
             if v is not None}
    assert cells == {(0, 9): 0, (2, 23): 50, (6, 0): 0}
    assert body["max"] == 50

    body = get(api, "/api/v1/heatmap", metric="p95_latency", **local)
    cells = {(d, h): v for d, row in enumerate(body["data"]) for h, v in enumerate(row)
             if v is not None}
    assert set(cells) == {(0, 9), (2, 23), (6, 0)}
    assert_within(cells[(6, 0)], 1234)
    assert_within(cells[(2, 23)], 1234)
    exact = exact_percentiles(db, (0.95,), "started_at >= %s AND started_at < %s",
                              ("2024-03-04T08:00:00Z", "2024-03-04T09:00:00Z"))[0]
    assert_within(cells[(0, 9)], exact)
