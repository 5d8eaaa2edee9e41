"""test_aggregates_timeseries.py - GET /executions/timeseries: exactly the
expected gap-filled buckets and counts, in UTC and in Europe/Berlin across
both daylight saving changes of 2024 (a 23-hour and a 25-hour local day),
15-minute buckets on a cut range, interval auto, the 1,000-bucket limit,
and group_by agent (top 10 + other) and model."""

import datetime

import pytest

from support import error_fields, parse_time, post_executions

pytestmark = pytest.mark.ingest

PATH = "/api/v1/executions/timeseries"


def at(text):
    """An RFC 3339 text as an aware datetime."""
    return datetime.datetime.fromisoformat(text.replace("Z", "+00:00"))


def execution(agent_id, when, **fields):
    body = {"agent_id": agent_id, "model": "model-a", "status": "succeeded",
            "latency_ms": 100, "started_at": when}
    body.update(fields)
    return body


def series(api, **params):
    response = api.get(PATH, params=params)
    assert response.status_code == 200, response.text
    body = response.json()
    for one in body["series"]:
        assert len(one["points"]) == body["buckets"]
    return body


def without_p95(body):
    """body without the p95 of its points (a sketch: folding may move it a little)."""
    return [[{k: v for k, v in point.items() if k != "p95_latency_ms"} for point in s["points"]]
            for s in body["series"]] + [{k: v for k, v in body.items() if k != "series"}]


def pending_and_folded(api, db, executions, *queries):
    """Posts executions and answers each query (a dict of parameters) while
    they are pending deltas, then again after rollup_refresh(); asserts both
    answers are the same. Returns the answers."""
    with db.rollups_paused():
        post_executions(api, executions)
        pending = [series(api, **q) for q in queries]
    db.rollup_refresh()
    folded = [series(api, **q) for q in queries]
    for before, after in zip(pending, folded):
        assert without_p95(before) == without_p95(after)
    return folded


def buckets(body, index=0):
    """[(bucket start, executions)] of one series."""
    return [(parse_time(p["t"]), p["executions"]) for p in body["series"][index]["points"]]


def check_empty(point):
    assert point == {"t": point["t"], "executions": 0, "success_rate": None,
                     "pass_rate": None, "avg_latency_ms": None, "p95_latency_ms": None, "cost_usd": 0,
                     "tokens": 0, "executions_url": point["executions_url"]}


def expect(starts, counts):
    return [(at(s), c) for s, c in zip(starts, counts, strict=True)]


def test_hourly_utc_series_is_gap_filled_with_exact_points(api, db, make_agent):
    agent = make_agent()["id"]
    body, = pending_and_folded(api, db, [
        execution(agent, "2024-03-05T03:10:00Z", latency_ms=100, cost_usd=0.5,
                  prompt_tokens=10, completion_tokens=1, cache_read_tokens=7,
                  evaluation={"passed": True}),
        execution(agent, "2024-03-05T03:59:59.999Z", latency_ms=300, cost_usd=0.25,
                  prompt_tokens=20, completion_tokens=2, status="failed",
                  error={"category": "timeout"}, evaluation={"passed": False}),
        execution(agent, "2024-03-05T07:00:00Z", latency_ms=50),
        *[execution(agent, "2024-03-05T23:%02d:00Z" % m, latency_ms=1000) for m in (0, 1, 2, 59)],
        execution(agent, "2024-03-04T23:59:59.999Z"),        # before the range
        execution(agent, "2024-03-06T00:00:00Z"),            # its end: excluded
    ], {"from": "2024-03-05T00:00:00Z", "to": "2024-03-06T00:00:00Z", "interval": "1h"})
    assert (body["interval"], body["tz"], body["group_by"], body["buckets"]) == (
        "1h", "UTC", None, 24)
    assert (body["series"][0]["key"], body["series"][0]["name"]) == (None, "All")
    assert body["source"] == "rollup"
    counts = [0] * 24
    counts[3], counts[7], counts[23] = 2, 1, 4
    start = at("2024-03-05T00:00:00Z")
    assert buckets(body) == [(start + datetime.timedelta(hours=h), counts[h]) for h in range(24)]
    points = body["series"][0]["points"]
    three = points[3]
    assert (three["success_rate"], three["pass_rate"], three["avg_latency_ms"], three["cost_usd"],
            three["tokens"]) == (0.5, 0.5, 200, 0.75, 33)
    assert 100 <= three["p95_latency_ms"] <= 300
    # succeeded without an evaluation: a success, and no pass rate
    assert (points[7]["success_rate"], points[7]["pass_rate"],
            points[7]["avg_latency_ms"]) == (1, None, 50)
    for hour in set(range(24)) - {3, 7, 23}:
        check_empty(points[hour])


def test_daily_buckets_in_berlin_across_the_23_hour_day(api, db, make_agent):
    agent = make_agent()["id"]
    body, = pending_and_folded(api, db, [execution(agent, when) for when in (
        "2024-03-29T22:59:59Z",        # local 29th: before the range
        "2024-03-30T22:59:59Z",        # local 30th 23:59:59 CET
        "2024-03-30T23:00:00Z",        # local 31st 00:00 CET
        "2024-03-31T01:30:00Z",        # local 31st 03:30 CEST
        "2024-03-31T21:59:59.999Z",    # local 31st 23:59:59.999 CEST
        "2024-03-31T22:00:00Z",        # local April 1st 00:00 CEST
        "2024-04-02T22:00:00Z",        # local April 3rd: the end, excluded
    )], {"from": "2024-03-29T23:00:00Z", "to": "2024-04-02T22:00:00Z", "interval": "1d",
         "tz": "Europe/Berlin"})
    assert (body["interval"], body["tz"], body["buckets"]) == ("1d", "Europe/Berlin", 4)
    assert buckets(body) == expect(
        ["2024-03-29T23:00:00Z", "2024-03-30T23:00:00Z", "2024-03-31T22:00:00Z",
         "2024-04-01T22:00:00Z"], [1, 3, 1, 0])
    check_empty(body["series"][0]["points"][3])


def test_hourly_buckets_in_berlin_skip_the_missing_hour(api, make_agent):
    agent = make_agent()["id"]
    post_executions(api, [execution(agent, "2024-03-31T00:59:59Z"),    # 01:59:59 CET
                          execution(agent, "2024-03-31T01:00:00Z")])   # 03:00:00 CEST
    # Local 00:00 to 05:00 of March 31st: four hours (02:00 does not exist).
    body = series(api, **{"from": "2024-03-31T00:00:00+01:00", "to": "2024-03-31T05:00:00+02:00",
                          "interval": "1h", "tz": "Europe/Berlin"})
    assert buckets(body) == expect(
        ["2024-03-30T23:00:00Z", "2024-03-31T00:00:00Z", "2024-03-31T01:00:00Z",
         "2024-03-31T02:00:00Z"], [0, 1, 1, 0])
    assert (parse_time(body["range"]["from"]), parse_time(body["range"]["to"])) == (
        at("2024-03-30T23:00:00Z"), at("2024-03-31T03:00:00Z"))


def test_six_hour_buckets_start_at_local_00_06_12_18(api, make_agent):
    agent = make_agent()["id"]
    post_executions(api, [execution(agent, "2024-03-31T03:59:59Z"),    # 05:59:59 CEST
                          execution(agent, "2024-03-31T04:00:00Z")])   # 06:00:00 CEST
    body = series(api, **{"from": "2024-03-30T23:00:00Z", "to": "2024-03-31T22:00:00Z",
                          "interval": "6h", "tz": "Europe/Berlin"})
    assert buckets(body) == expect(
        ["2024-03-30T23:00:00Z", "2024-03-31T04:00:00Z", "2024-03-31T10:00:00Z",
         "2024-03-31T16:00:00Z"], [1, 1, 0, 0])


def test_daily_and_hourly_buckets_in_berlin_across_the_25_hour_day(api, db, make_agent):
    agent = make_agent()["id"]
    days, hours = pending_and_folded(api, db, [execution(agent, when) for when in (
        "2024-10-26T21:59:59Z",        # local 26th 23:59:59 CEST
        "2024-10-26T22:00:00Z",        # local 27th 00:00 CEST
        "2024-10-27T00:30:00Z",        # local 02:30 CEST (the first one)
        "2024-10-27T01:30:00Z",        # local 02:30 CET (the second one)
        "2024-10-27T22:59:59Z",        # local 27th 23:59:59 CET
    )], {"from": "2024-10-25T22:00:00Z", "to": "2024-10-27T23:00:00Z", "interval": "1d",
         "tz": "Europe/Berlin"},
        # Local 00:00 to 04:00 of October 27th: five hours (02:00 twice).
        {"from": "2024-10-27T00:00:00+02:00", "to": "2024-10-27T04:00:00+01:00",
         "interval": "1h", "tz": "Europe/Berlin"})
    assert buckets(days) == expect(["2024-10-25T22:00:00Z", "2024-10-26T22:00:00Z"], [1, 4])
    assert buckets(hours) == expect(
        ["2024-10-26T22:00:00Z", "2024-10-26T23:00:00Z", "2024-10-27T00:00:00Z",
         "2024-10-27T01:00:00Z", "2024-10-27T02:00:00Z"], [1, 0, 1, 1, 0])


def test_quarter_hour_buckets_of_a_cut_range_count_only_the_range(api, make_agent):
    agent = make_agent()["id"]
    post_executions(api, [execution(agent, when) for when in (
        "2024-03-05T10:03:00Z",        # in the first bucket, before the range
        "2024-03-05T10:07:00Z", "2024-03-05T10:14:59.999Z", "2024-03-05T10:15:00Z",
        "2024-03-05T11:01:59Z",
        "2024-03-05T11:02:00Z",        # the end: excluded
    )])
    body = series(api, **{"from": "2024-03-05T10:07:00Z", "to": "2024-03-05T11:02:00Z",
                          "interval": "15m", "tz": "Europe/Berlin"})
    assert buckets(body) == expect(
        ["2024-03-05T10:00:00Z", "2024-03-05T10:15:00Z", "2024-03-05T10:30:00Z",
         "2024-03-05T10:45:00Z", "2024-03-05T11:00:00Z"], [2, 1, 0, 0, 1])


def test_one_minute_buckets_read_raw_rows(api, make_agent):
    agent = make_agent()["id"]
    post_executions(api, [execution(agent, "2024-03-05T10:01:30Z")])
    body = series(api, **{"from": "2024-03-05T10:00:00Z", "to": "2024-03-05T10:05:00Z",
                          "interval": "1m"})
    assert body["source"] == "raw"
    assert [c for _, c in buckets(body)] == [0, 1, 0, 0, 0]


@pytest.mark.parametrize("start, end, interval, count", [
    ("2024-03-05T00:00:00Z", "2024-03-05T01:00:00Z", "1m", 60),
    ("2024-03-05T00:00:00Z", "2024-03-05T16:40:00Z", "5m", 200),
    ("2024-03-05T00:00:00Z", "2024-03-06T00:00:00Z", "15m", 96),
    ("2024-03-01T00:00:00Z", "2024-03-09T08:00:00Z", "1h", 200),
    ("2024-03-01T00:00:00Z", "2024-03-31T00:00:00Z", "6h", 120),
    ("2024-01-01T00:00:00Z", "2024-06-01T00:00:00Z", "1d", 152),
])
def test_interval_auto_is_the_smallest_giving_at_most_200_buckets(api, start, end, interval,
                                                                  count):
    body = series(api, **{"from": start, "to": end})
    assert (body["interval"], body["buckets"]) == (interval, count)
    assert series(api, **{"from": start, "to": end, "interval": "auto"})["interval"] == interval


def test_1000_buckets_are_answered_and_1001_are_422_on_interval(api):
    body = series(api, **{"from": "2024-03-05T00:00:00Z", "to": "2024-03-05T16:40:00Z",
                          "interval": "1m"})
    assert body["buckets"] == 1000
    for params in ({"from": "2024-03-05T00:00:00Z", "to": "2024-03-05T16:41:00Z",
                    "interval": "1m"},
                   {"from": "2024-03-05T00:00:00Z", "to": "2024-03-05T16:40:00.001Z",
                    "interval": "1m"},
                   {"from": "2024-01-01T00:00:00Z", "to": "2024-03-01T00:00:00Z",
                    "interval": "1h"},
                   {"time_range": "30d", "interval": "5m"}):
        assert error_fields(api.get(PATH, params=params)) == {"interval"}, params


def test_group_by_agent_gives_the_top_10_and_other(api, db, make_agent):
    agents = [make_agent(name="ts-agent-%02d" % k) for k in range(12)]
    executions = []
    for k, agent in enumerate(agents):     # agent k: k + 1 executions on March 5th
        executions += [execution(agent["id"], "2024-03-05T%02d:00:00Z" % (j % 24),
                                 evaluation={"passed": j % 2 == 0}) for j in range(k + 1)]
    body, = pending_and_folded(api, db, executions, {
        "from": "2024-03-05T00:00:00Z", "to": "2024-03-07T00:00:00Z", "interval": "1d",
        "group_by": "agent"})
    assert body["group_by"] == "agent"
    got = [(s["key"], s["name"], [p["executions"] for p in s["points"]]) for s in body["series"]]
    top = [(a["id"], a["name"], [k + 1, 0]) for k, a in reversed(list(enumerate(agents)))][:10]
    assert got == top + [("other", "Other", [3, 0])]
    other = body["series"][10]["points"][0]
    assert other["success_rate"] == pytest.approx(2 / 3)   # passed: 1 of 1, 1 of 2
    assert other["pass_rate"] == pytest.approx(2 / 3)
    ungrouped = series(api, **{"from": "2024-03-05T00:00:00Z", "to": "2024-03-07T00:00:00Z",
                               "interval": "1d"})
    assert [p["executions"] for p in ungrouped["series"][0]["points"]] == [78, 0]


def test_group_by_model_without_other_and_filters(api, make_agent):
    a, b = make_agent()["id"], make_agent()["id"]
    post_executions(api, [
        execution(a, "2024-03-05T01:00:00Z", model="m-one"),
        execution(a, "2024-03-05T02:00:00Z", model="m-two"),
        execution(b, "2024-03-05T03:00:00Z", model="m-two"),
        execution(b, "2024-03-05T04:00:00Z", model="m-two", metadata={"team": "x"}),
    ])
    params = {"from": "2024-03-05T00:00:00Z", "to": "2024-03-06T00:00:00Z", "interval": "1d"}
    body = series(api, group_by="model", **params)
    assert [(s["key"], s["name"], s["points"][0]["executions"]) for s in body["series"]] == [
        ("m-two", "m-two", 3), ("m-one", "m-one", 1)]
    body = series(api, agent_id=b, **params)
    assert body["series"][0]["points"][0]["executions"] == 2
    body = series(api, model=["m-one", "m-two"], agent_id=[a], **params)
    assert body["series"][0]["points"][0]["executions"] == 2
    body = series(api, **params, **{"metadata.team": "x"})
    assert (body["source"], body["series"][0]["points"][0]["executions"]) == ("raw", 1)
