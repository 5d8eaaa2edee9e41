"""test_state.py - GET /state, the fleet's state at a glance (seed 002's
snapshot): its shape on an empty fleet, the agents with their silence,
the last 100 executions, the last hour's throughput against the rows sent,
and each condition of the health on generated data (a silent agent, a
failing agent, a rising error rate, a critical alert), each one gone again
when its cause is; a query parameter is a 400."""

import datetime
import time

import pytest

from support import api_time, assert_problem, utc

pytestmark = pytest.mark.ingest

STATE = "/api/v1/state"
AGENTS = "/api/v1/agents"


def state(api):
    response = api.get(STATE)
    assert response.status_code == 200, response.text
    return response.json()


def conditions(body, kind):
    return [c for c in body["health"]["conditions"] if c["kind"] == kind]


def run(agent_id, started_at, status="succeeded", latency_ms=100, prompt=10, completion=5):
    body = {"agent_id": agent_id, "model": "gpt-test", "started_at": utc(started_at),
            "latency_ms": latency_ms, "status": status, "prompt_tokens": prompt,
            "completion_tokens": completion}
    if status != "succeeded":
        body["error"] = {"category": "tool_error", "message": "boom"}
    return body


def db_now(db):
    return db.scalar("SELECT now()")


def test_empty_fleet_is_ok(api, db):
    body = state(api)
    assert body["health"] == {"status": "ok", "conditions": []}
    assert body["agents"] == [] and body["recent_completions"] == []
    t = body["throughput"]
    assert (t["completed"], t["failed"], t["avg_duration_ms"], t["tokens"]) == (0, 0, None, 0)
    expected = db.scalar("SELECT floor(extract(epoch FROM now() - pg_postmaster_start_time()))")
    assert 0 <= body["uptime_seconds"] <= expected + 1
    assert body["uptime_seconds"] >= expected - 5


def test_a_query_parameter_is_400(api):
    response = api.get(STATE, params={"limit": "5"})
    body = assert_problem(response, 400, "bad-request")
    assert [e["field"] for e in body["errors"]] == ["limit"]


def test_agents_with_state_task_heartbeat_and_silence(api, db, make_agent):
    b = make_agent(name="b-worker", heartbeat_interval_seconds=30)
    a = make_agent(name="a-worker")
    retired = make_agent(name="c-retired", is_active=False)
    response = api.post("%s/%s/heartbeat" % (AGENTS, b["id"]),
                        json={"state": "busy", "current_task": "triage #12"})
    assert response.status_code == 204, response.text
    body = state(api)
    assert [g["name"] for g in body["agents"]] == ["a-worker", "b-worker"]
    got = {g["id"]: g for g in body["agents"]}
    assert retired["id"] not in got
    assert got[b["id"]]["state"] == "busy" and got[b["id"]]["current_task"] == "triage #12"
    assert got[b["id"]]["last_heartbeat_at"] is not None
    assert got[b["id"]]["heartbeat_interval_seconds"] == 30
    assert got[a["id"]]["last_heartbeat_at"] is None
    assert got[a["id"]]["heartbeat_interval_seconds"] == 60
    assert not got[a["id"]]["silent"] and not got[b["id"]]["silent"]
    assert body["health"]["status"] == "ok"


def test_a_silent_agent_is_a_warning_until_it_beats(api, db, make_agent):
    quiet = make_agent(name="quiet", heartbeat_interval_seconds=10)
    make_agent(name="chatty", heartbeat_interval_seconds=10)
    db.execute("UPDATE agents SET last_heartbeat_at = now() - interval '31 seconds'"
               " WHERE id = %s", (quiet["id"],))
    body = state(api)
    silent = conditions(body, "agent_silent")
    assert [c["agent"] for c in silent] == [{"id": quiet["id"], "name": "quiet"}]
    assert silent[0]["severity"] == "warning" and silent[0]["value"] >= 31
    assert body["health"]["status"] == "warning"
    assert {g["name"]: g["silent"] for g in body["agents"]} == {"quiet": True, "chatty": False}

    response = api.post("%s/%s/heartbeat" % (AGENTS, quiet["id"]))
    assert response.status_code == 204, response.text
    body = state(api)
    assert body["health"] == {"status": "ok", "conditions": []}


def test_an_agent_that_never_beat_is_silent_three_intervals_after_registering(api, db,
                                                                                make_agent):
    agent = make_agent(name="mute", heartbeat_interval_seconds=5)
    db.execute("UPDATE agents SET created_at = now() - interval '16 seconds' WHERE id = %s",
               (agent["id"],))
    silent = conditions(state(api), "agent_silent")
    assert [c["agent"]["id"] for c in silent] == [agent["id"]]
    assert silent[0]["value"] is None


def test_a_failing_agent_is_critical(api, db, make_agent, ingest):
    failing = make_agent(name="failing")
    steady = make_agent(name="steady")
    t = db_now(db) - datetime.timedelta(minutes=30)
    runs = [run(failing["id"], t, "failed", latency_ms=300) for _ in range(9)]
    runs += [run(failing["id"], t, "timeout", latency_ms=300)]
    runs += [run(failing["id"], t, latency_ms=100) for _ in range(2)]
    runs += [run(steady["id"], t, latency_ms=100) for _ in range(20)]
    runs += [run(steady["id"], t - datetime.timedelta(minutes=40))]   # older than the hour
    ingest(runs)
    body = state(api)
    rates = conditions(body, "failure_rate")
    assert [(c["agent"], c["severity"]) for c in rates] == [
        ({"id": failing["id"], "name": "failing"}, "critical")]
    assert rates[0]["value"] == pytest.approx(10 / 12)
    assert body["health"]["status"] == "critical"
    t = body["throughput"]
    assert (t["completed"], t["failed"], t["tokens"]) == (22, 10, 32 * 15)
    assert t["avg_duration_ms"] == pytest.approx((10 * 300 + 22 * 100) / 32)


def test_the_fleet_failing_is_critical_and_few_runs_are_not(api, db, make_agent, ingest):
    agent = make_agent(name="few")
    t = db_now(db) - datetime.timedelta(minutes=10)
    ingest([run(agent["id"], t, "failed") for _ in range(9)])
    assert conditions(state(api), "failure_rate") == []       # 9 < 10 executions
    ingest([run(agent["id"], t, "cancelled"), run(agent["id"], t)])
    rates = conditions(state(api), "failure_rate")
    assert [c["agent"] and c["agent"]["id"] for c in rates] == [None, agent["id"]]
    assert rates[0]["value"] == pytest.approx(10 / 11)


def whole_buckets(db):
    """The starts of the last three whole 5-minute buckets, waited for so
    that no boundary passes within the next 20 s."""
    while True:
        now = db_now(db)
        into = (now.minute % 5) * 60 + now.second
        if into < 280:
            break
        time.sleep(301 - into)
    b3 = now.replace(minute=now.minute - now.minute % 5, second=0, microsecond=0)
    return [b3 - datetime.timedelta(minutes=m) for m in (15, 10, 5)]


def test_a_rising_error_rate_is_a_warning(api, db, make_agent, ingest):
    rising = make_agent(name="rising")
    flat = make_agent(name="flat")
    buckets = whole_buckets(db)
    runs = []
    for bucket, failed in zip(buckets, (0, 1, 3)):
        at = bucket + datetime.timedelta(minutes=2)
        runs += [run(rising["id"], at, "failed") for _ in range(failed)]
        runs += [run(rising["id"], at) for _ in range(10 - failed)]
        runs += [run(flat["id"], at, "failed")] + [run(flat["id"], at) for _ in range(9)]
    ingest(runs)
    body = state(api)
    found = conditions(body, "error_rate_rising")
    # the fleet: 1/20, 2/20, 4/20; the agent: 0, 0.1, 0.3; flat stays 0.1
    assert [c["agent"] and c["agent"]["id"] for c in found] == [None, rising["id"]]
    assert [c["severity"] for c in found] == ["warning", "warning"]
    assert found[0]["value"] == pytest.approx(0.2) and found[1]["value"] == pytest.approx(0.3)
    assert body["health"]["status"] == "warning"
    assert conditions(body, "failure_rate") == []


def test_an_error_rate_that_does_not_rise_strictly_is_no_condition(api, db, make_agent, ingest):
    agent = make_agent(name="level")
    buckets = whole_buckets(db)
    runs = []
    for bucket, failed in zip(buckets, (1, 1, 3)):
        at = bucket + datetime.timedelta(minutes=1)
        runs += [run(agent["id"], at, "failed") for _ in range(failed)]
        runs += [run(agent["id"], at) for _ in range(10 - failed)]
    ingest(runs)
    assert conditions(state(api), "error_rate_rising") == []


def test_an_open_critical_alert_is_critical_until_resolved(api, make_agent):
    agent = make_agent(name="paged")
    response = api.post("/api/v1/alerts", json={"severity": "high", "title": "Slow"})
    assert response.status_code == 201, response.text
    assert state(api)["health"]["status"] == "ok"
    response = api.post("/api/v1/alerts", json={"severity": "critical", "title": "Down",
                                                "agent_id": agent["id"]})
    assert response.status_code == 201, response.text
    alert = response.json()
    body = state(api)
    found = conditions(body, "critical_alert")
    assert [(c["alert_id"], c["agent"], c["severity"]) for c in found] == [
        (alert["id"], {"id": agent["id"], "name": "paged"}, "critical")]
    assert "Down" in found[0]["message"]
    assert body["health"]["status"] == "critical"

    response = api.post("/api/v1/alerts/%s/acknowledge" % alert["id"], json={"by": "ops"})
    assert response.status_code == 200, response.text
    assert [c["alert_id"] for c in conditions(state(api), "critical_alert")] == [alert["id"]]
    response = api.post("/api/v1/alerts/%s/resolve" % alert["id"], json={"by": "ops"})
    assert response.status_code == 200, response.text
    assert state(api)["health"] == {"status": "ok", "conditions": []}


def test_recent_completions_are_the_last_100_newest_first(api, db, make_agent, ingest):
    agent = make_agent(name="busy")
    t0 = db_now(db) - datetime.timedelta(hours=3)
    runs = [dict(run(agent["id"], t0 + datetime.timedelta(seconds=i), latency_ms=i,
                     prompt=i, completion=1), task_id="task-%d" % i) for i in range(105)]
    ingest(runs)
    got = state(api)["recent_completions"]
    assert len(got) == 100
    assert [c["task_id"] for c in got] == ["task-%d" % i for i in range(104, 4, -1)]
    first = got[0]
    assert (first["agent_id"], first["agent_name"], first["status"], first["duration_ms"],
            first["tokens_used"], first["model"]) == (agent["id"], "busy", "succeeded", 104,
                                                      105, "gpt-test")
    assert first["started_at"] == api_time(t0 + datetime.timedelta(seconds=104))
    assert first["completed_at"] is not None
    # three hours ago: nothing in the last hour's throughput
    assert state(api)["throughput"]["completed"] == 0
