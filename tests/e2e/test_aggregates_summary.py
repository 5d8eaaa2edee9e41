"""test_aggregates_summary.py - GET /executions/summary and
/agents/{id}/metrics on generated executions with known answers: exact
counts, sums and success rates, latency percentiles within 1 % of
percentile_cont on the same raw rows, the same answers before and after
rollup_refresh(), ranges that cut through minutes, hours and days, the
filters (metadata ones read raw rows), freshness and late arrivals."""

import datetime
import random
import uuid

import pytest

from support import (assert_percentile, expected_summary, gen_executions,
                     in_range, now_utc, parse_time, post_executions, started, usd, utc)

pytestmark = pytest.mark.ingest

SUMMARY = "/api/v1/executions/summary"
UTC = datetime.timezone.utc
# The data of these tests lies in [W_FROM, W_TO): three days of March 2024.
W_FROM = datetime.datetime(2024, 3, 5, tzinfo=UTC)
W_TO = datetime.datetime(2024, 3, 8, tzinfo=UTC)
# A range that cuts through a second, a minute, an hour and a day at both ends.
CUT_FROM = datetime.datetime(2024, 3, 5, 7, 23, 41, 500000, tzinfo=UTC)
CUT_TO = datetime.datetime(2024, 3, 7, 16, 5, 9, 250000, tzinfo=UTC)
EXACT = ("total", "successes", "evaluated", "passed", "failed", "errors", "success_rate",
         "pass_rate", "cost_usd", "tokens", "range", "source")


def make_fleet(make_agent, api, n=8000, seed=4):
    """Four agents and n executions in [W_FROM, W_TO), plus one execution
    exactly at CUT_FROM (inside the cut range) and one exactly at CUT_TO
    (outside it). Returns (agent ids, executions)."""
    agents = [make_agent()["id"] for _ in range(4)]
    rng = random.Random(seed)
    executions = gen_executions(rng, n, W_FROM, W_TO, agents)
    for moment in (CUT_FROM, CUT_TO):
        edge = gen_executions(rng, 1, W_FROM, W_TO, agents)[0]
        edge["started_at"] = utc(moment)
        executions.append(edge)
    post_executions(api, executions)
    return agents, executions


def get_summary(api, **params):
    response = api.get(SUMMARY, params=params)
    assert response.status_code == 200, response.text
    return response.json()


def check_summary(db, body, executions, where, params, source="rollup"):
    """Assert body is the exact summary of `executions` (the stored rows
    matching `where`), percentiles within 1 % of percentile_cont."""
    expected = expected_summary(executions)
    for key in ("total", "successes", "evaluated", "passed", "failed", "errors"):
        assert body[key] == expected[key], (key, body[key], expected[key])
    assert body["tokens"] == expected["tokens"]
    assert usd(body["cost_usd"]["total"]) == expected["cost_total"]
    assert body["source"] == source
    latency = body["latency_ms"]
    if not executions:
        assert body["success_rate"] is None and body["cost_usd"]["avg"] is None
        assert body["pass_rate"] is None
        assert all(latency[k] is None for k in ("avg", "min", "max", "p50", "p95", "p99"))
        return
    assert body["success_rate"] == pytest.approx(expected["success_rate"], rel=1e-12)
    assert body["pass_rate"] == pytest.approx(expected["pass_rate"], rel=1e-12)
    assert body["cost_usd"]["avg"] == pytest.approx(
        float(expected["cost_total"]) / expected["total"], rel=1e-9)
    assert (latency["min"], latency["max"]) == (expected["latency_min"], expected["latency_max"])
    assert latency["avg"] == pytest.approx(expected["latency_avg"], rel=1e-9)
    for name, key, q in (("p50", "0.5", 0.5), ("p95", "0.95", 0.95), ("p99", "0.99", 0.99)):
        assert_percentile(db, latency[name], q, where, params)
        assert latency["percentiles"][key] == latency[name]


def exact_part(body):
    """What must not change when pending deltas are folded into rollups."""
    latency = body["latency_ms"]
    return ({k: body[k] for k in EXACT},
            {k: latency[k] for k in ("avg", "min", "max")})


def test_summary_is_exact_before_and_after_refresh_also_on_cut_ranges(api, db, make_agent):
    with db.rollups_paused():
        agents, executions = make_fleet(make_agent, api)
        before = summaries_before(api, db, agents, executions)
    db.rollup_refresh()
    assert db.count("rollup_delta") == 0
    for (params, rows, where, args), earlier in before:
        body = get_summary(api, **params)
        check_summary(db, body, rows, where, args)
        assert exact_part(body) == exact_part(earlier), params
    assert parse_time(body["rolled_up_to"]) <= now_utc()


def summaries_before(api, db, agents, executions):
    """Every query of the test above answered from pending deltas (and raw
    edges) only, checked; returns [(query, body)]."""
    assert db.count("rollup_delta") > 0 and db.count("rollup_1d") == 0
    a0, a1 = agents[:2]
    window = "started_at >= %s AND started_at < %s"
    queries = [
        # (query, executions it covers, SQL of the same rows, its parameters)
        ({"from": utc(W_FROM), "to": utc(W_TO)}, in_range(executions, W_FROM, W_TO),
         window, (W_FROM, W_TO)),
        ({"from": utc(CUT_FROM), "to": utc(CUT_TO), "tz": "Europe/Berlin"},
         in_range(executions, CUT_FROM, CUT_TO), window, (CUT_FROM, CUT_TO)),
        ({"from": "2024-03-05T08:23:41.5+01:00", "to": utc(CUT_TO), "agent_id": [a0, a1]},
         [e for e in in_range(executions, CUT_FROM, CUT_TO) if e["agent_id"] in (a0, a1)],
         window + " AND agent_id = ANY (%s::uuid[])", (CUT_FROM, CUT_TO, [a0, a1])),
        ({"from": utc(CUT_FROM), "to": utc(CUT_TO), "model": ["model-b", "model-c"],
          "agent_id": a1},
         [e for e in in_range(executions, CUT_FROM, CUT_TO)
          if e["model"] in ("model-b", "model-c") and e["agent_id"] == a1],
         window + " AND model = ANY (%s) AND agent_id = %s",
         (CUT_FROM, CUT_TO, ["model-b", "model-c"], a1)),
    ]
    assert len(queries[1][1]) > 1000 and CUT_FROM in [started(e) for e in queries[1][1]]
    assert CUT_TO not in [started(e) for e in queries[1][1]]

    before = []
    for query in queries:
        params, rows, where, args = query
        body = get_summary(api, **params)
        assert (parse_time(body["range"]["from"]), parse_time(body["range"]["to"])) == args[:2]
        check_summary(db, body, rows, where, args)
        before.append((query, body))
    return before


def test_metadata_filters_read_raw_rows_and_are_exact(api, db, make_agent):
    _, executions = make_fleet(make_agent, api, n=1500, seed=5)
    base = {"from": utc(CUT_FROM), "to": utc(CUT_TO)}
    rows = in_range(executions, CUT_FROM, CUT_TO)
    window = "started_at >= %s AND started_at < %s"

    body = get_summary(api, **base, **{"metadata.region": "eu"})
    check_summary(db, body, [e for e in rows if e["metadata"]["region"] == "eu"],
                  window + " AND metadata->>'region' = 'eu'", (CUT_FROM, CUT_TO), source="raw")
    # A number compared as text; several keys must all match.
    body = get_summary(api, **base, **{"metadata.region": "us", "metadata.tier": "2"})
    check_summary(db, body, [e for e in rows if e["metadata"] == {"region": "us", "tier": 2}],
                  window + " AND metadata->>'region' = 'us' AND metadata->>'tier' = '2'",
                  (CUT_FROM, CUT_TO), source="raw")
    body = get_summary(api, **base, **{"metadata.region": "mars"})
    check_summary(db, body, [], None, None, source="raw")
    body = get_summary(api, **base, **{"metadata.nokey": "eu"})
    assert body["total"] == 0


def test_extra_percentiles_are_answered_by_their_text(api, db, make_agent):
    make_fleet(make_agent, api, n=2000, seed=6)
    body = get_summary(api, **{"from": utc(W_FROM), "to": utc(W_TO),
                               "percentiles": "0.75,0.9,0.001"})
    percentiles = body["latency_ms"]["percentiles"]
    assert set(percentiles) == {"0.5", "0.95", "0.99", "0.75", "0.9", "0.001"}
    for key, q in (("0.75", 0.75), ("0.9", 0.9)):
        assert_percentile(db, percentiles[key], q, "started_at >= %s AND started_at < %s",
                          (W_FROM, W_TO))
    assert percentiles["0.001"] <= percentiles["0.5"]


def test_an_empty_range_answers_zeros_and_nulls(api, db, make_agent):
    make_fleet(make_agent, api, n=50, seed=7)
    body = get_summary(api, **{"from": "2024-02-01T00:00:00Z", "to": "2024-02-02T00:00:00Z"})
    check_summary(db, body, [], None, None)
    assert body["latency_ms"]["percentiles"] == {"0.5": None, "0.95": None, "0.99": None}


def test_time_range_and_an_open_ended_from_end_now(api):
    before = now_utc()
    for params, span in (({"time_range": "6h"}, datetime.timedelta(hours=6)),
                         ({}, datetime.timedelta(hours=24)),
                         ({"from": utc(before - datetime.timedelta(days=2))}, None)):
        body = get_summary(api, **params)
        start, end = parse_time(body["range"]["from"]), parse_time(body["range"]["to"])
        # relative ranges end at most one second ahead (sql/006: agg_now)
        assert before <= end <= now_utc() + datetime.timedelta(seconds=1)
        if span:
            assert end - start == span
        assert body["total"] == 0


def test_agent_metrics_are_its_item_and_the_summary_of_its_executions(api, db, make_agent):
    agents, executions = make_fleet(make_agent, api, n=1200, seed=8)
    agent = agents[2]
    params = {"from": utc(CUT_FROM), "to": utc(CUT_TO)}
    rows = [e for e in in_range(executions, CUT_FROM, CUT_TO) if e["agent_id"] == agent]
    response = api.get("/api/v1/agents/%s/metrics" % agent, params=dict(params, percentiles="0.8"))
    assert response.status_code == 200, response.text
    body = response.json()
    check_summary(db, body["summary"], rows,
                  "started_at >= %s AND started_at < %s AND agent_id = %s",
                  (CUT_FROM, CUT_TO, agent))
    assert "0.8" in body["summary"]["latency_ms"]["percentiles"]
    assert exact_part(body["summary"]) == exact_part(get_summary(api, agent_id=agent, **params))
    expected = expected_summary(rows)
    item = body["agent"]
    assert (item["agent_id"], item["executions"], item["evaluated"], item["passed"],
            item["errors"]) == (agent, expected["total"], expected["evaluated"],
                                expected["passed"], expected["errors"])
    assert item["success_rate"] == pytest.approx(expected["success_rate"], rel=1e-12)
    assert item["avg_latency_ms"] == pytest.approx(expected["latency_avg"], rel=1e-9)
    assert item["avg_cost_usd"] == pytest.approx(
        float(expected["cost_total"]) / expected["total"], rel=1e-9)
    assert parse_time(item["last_execution_at"]) == max(started(e) for e in rows)
    assert_percentile(db, item["p95_latency_ms"], 0.95,
                      "started_at >= %s AND started_at < %s AND agent_id = %s",
                      (CUT_FROM, CUT_TO, agent))

    # A model and a metadata filter restrict the summary, not the agent item.
    body = api.get("/api/v1/agents/%s/metrics" % agent,
                   params=dict(params, model="model-a", **{"metadata.region": "ap"})).json()
    chosen = [e for e in rows if e["model"] == "model-a" and e["metadata"]["region"] == "ap"]
    assert body["summary"]["total"] == len(chosen)
    assert body["summary"]["source"] == "raw"


# ---------------------------------------------------------------- freshness

def test_an_execution_is_counted_everywhere_as_soon_as_its_ingest_answers(
        api, db, make_agent, make_dashboard, make_widget):
    agent = make_agent()
    dashboard = make_dashboard()
    widget = make_widget(dashboard["id"], config={"metric": "total_executions",
                                                  "time_range": "1h"})
    execution = {"agent_id": agent["id"], "model": "model-a", "status": "succeeded",
                 "latency_ms": 321, "cost_usd": 0.25, "prompt_tokens": 10,
                 "completion_tokens": 5, "evaluation": {"passed": True},
                 "started_at": utc(now_utc() - datetime.timedelta(seconds=5))}
    with db.rollups_paused():   # no refresh in between
        post_executions(api, [execution])
        check_fresh(api, agent, dashboard, widget)


def check_fresh(api, agent, dashboard, widget):
    body = get_summary(api, time_range="1h")
    assert (body["total"], body["passed"], body["latency_ms"]["max"]) == (1, 1, 321)
    assert usd(body["cost_usd"]["total"]) == usd(0.25)
    series = api.get("/api/v1/executions/timeseries", params={"time_range": "1h"}).json()
    assert sum(p["executions"] for p in series["series"][0]["points"]) == 1
    assert sum(p["tokens"] for p in series["series"][0]["points"]) == 15
    metric = api.get("/api/v1/metrics/total_executions", params={"time_range": "1h"}).json()
    assert metric["value"] == 1
    data = api.get("/api/v1/dashboards/%s/widgets/%s/data" % (dashboard["id"], widget["id"]))
    assert data.status_code == 200, data.text
    assert data.json()["data"]["value"] == 1
    items = api.get("/api/v1/agents/summary", params={"time_range": "1h"}).json()["items"]
    assert [(i["agent_id"], i["executions"], i["status"]) for i in items] == [
        (agent["id"], 1, "healthy")]


def test_a_late_execution_is_counted_at_once_and_after_the_next_refresh(api, db, make_agent):
    agent = make_agent()["id"]
    hour = (now_utc() - datetime.timedelta(days=3)).replace(minute=0, second=0, microsecond=0)
    first = [{"agent_id": agent, "model": "model-a", "status": "succeeded", "latency_ms": 100,
              "started_at": utc(hour + datetime.timedelta(minutes=10 + k))} for k in range(5)]
    post_executions(api, first)
    db.rollup_refresh()
    params = {"from": utc(hour - datetime.timedelta(hours=1)),
              "to": utc(hour + datetime.timedelta(hours=2)), "interval": "1h"}

    def counts():
        series = api.get("/api/v1/executions/timeseries", params=params).json()
        return [(parse_time(p["t"]), p["executions"]) for p in series["series"][0]["points"]]

    def hours(n):
        return [(hour + datetime.timedelta(hours=k), c) for k, c in zip((-1, 0, 1), n)]

    assert counts() == hours((0, 5, 0))
    late = dict(first[0], started_at=utc(hour + datetime.timedelta(minutes=59, seconds=59)),
                latency_ms=900)
    with db.rollups_paused():
        post_executions(api, [late])
        summary = get_summary(api, **{"from": params["from"], "to": params["to"]})
        assert (summary["total"], summary["latency_ms"]["max"]) == (6, 900)
        assert counts() == hours((0, 6, 0))
    db.rollup_refresh()
    assert counts() == hours((0, 6, 0))
    assert get_summary(api, **{"from": params["from"], "to": params["to"]})["total"] == 6


# ---------------------------------------------------------------- what changes the numbers

def test_later_evaluations_and_verdicts_changed_are_counted(api, db, make_agent):
    agent = make_agent()["id"]
    runs = [{"id": str(uuid.UUID(int=k + 1, version=4)), "agent_id": agent, "model": "model-a",
             "status": "succeeded", "latency_ms": 100,
             "started_at": utc(W_FROM + datetime.timedelta(hours=k))} for k in range(10)]
    params = {"from": utc(W_FROM), "to": utc(W_TO)}

    def verdict(k, passed):
        response = api.post("/api/v1/evaluations",
                            json={"execution_id": runs[k]["id"], "passed": passed})
        assert response.status_code in (200, 201), response.text

    def counts():
        body = get_summary(api, **params)
        return (body["evaluated"], body["passed"], body["failed"], body["successes"],
                body["success_rate"], body["pass_rate"])

    # Ten succeeded runs: a success each until an evaluation fails them.
    with db.rollups_paused():
        post_executions(api, runs)
        assert counts() == (0, 0, 0, 10, 1.0, None)
        for k in range(6):
            verdict(k, k < 4)
        assert counts() == (6, 4, 2, 8, 0.8, 4 / 6)
        verdict(5, True)                     # a failed verdict replaced by a pass
        verdict(0, True)                     # the same verdict again
        assert counts() == (6, 5, 1, 9, 0.9, 5 / 6)
    db.rollup_refresh()
    assert counts() == (6, 5, 1, 9, 0.9, 5 / 6)
    verdict(1, False)
    assert counts() == (6, 4, 2, 8, 0.8, 4 / 6)
    db.rollup_refresh()
    assert counts() == (6, 4, 2, 8, 0.8, 4 / 6)


def test_duplicate_executions_are_counted_once(api, db, make_agent):
    agent = make_agent()["id"]
    runs = gen_executions(random.Random(9), 50, W_FROM, W_TO, [agent])
    params = {"from": utc(W_FROM), "to": utc(W_TO)}
    with db.rollups_paused():
        post_executions(api, runs)
        response = api.post("/api/v1/executions", json=runs[:20] + runs[:5])
        assert response.json()["inserted"] == 0, response.text
        body = get_summary(api, **params)
        assert (body["total"], body["evaluated"]) == (50, expected_summary(runs)["evaluated"])
    db.rollup_refresh()
    assert get_summary(api, **params)["total"] == 50


def test_a_retired_agent_still_has_its_metrics(api, make_agent):
    agent = make_agent()["id"]
    post_executions(api, [{"agent_id": agent, "model": "model-a", "status": "succeeded",
                           "latency_ms": 100, "evaluation": {"passed": True},
                           "started_at": utc(W_FROM + datetime.timedelta(hours=1))}])
    assert api.patch("/api/v1/agents/%s" % agent, json={"is_active": False}).status_code == 200
    response = api.get("/api/v1/agents/%s/metrics" % agent,
                       params={"from": utc(W_FROM), "to": utc(W_TO)})
    assert response.status_code == 200, response.text
    body = response.json()
    assert (body["agent"]["agent_id"], body["agent"]["executions"], body["agent"]["status"],
            body["summary"]["total"]) == (agent, 1, "healthy", 1)
    # ... but it is not in the fleet's list.
    items = api.get("/api/v1/agents/summary", params={"from": utc(W_FROM),
                                                      "to": utc(W_TO)}).json()["items"]
    assert items == []
