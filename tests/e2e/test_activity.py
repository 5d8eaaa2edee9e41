"""test_activity.py - the activity feed: every source in it with its type,
status and link; the filters (type, agent_id, severity, time range); the
keyset cursor newest first; following with after= while transactions commit
out of the order they started in (no event missed, none repeated);
type=execution read from the executions; /activity/recent in seed 000's
shape; every bad parameter a 400 naming it."""

import datetime
import time
import uuid

import pytest

from support import assert_problem, now_utc, parse_time, utc
from test_supervision import wait_until

pytestmark = pytest.mark.ingest

FEED = "/api/v1/activity"
RECENT = "/api/v1/activity/recent"
RULE = {"name": "agents failing", "kind": "threshold", "metric": "error_rate",
        "op": ">", "threshold": 50, "window": "5m", "for": "1m", "keep_firing_for": "5m",
        "group_by": "agent", "severity": "high", "min_executions": 10,
        "no_data": "ok", "receivers": [], "enabled": False}


def mark(db):
    """The id of the newest event now (every committed event sequenced)."""
    db.scalar("SELECT activity_sequence()")
    return db.scalar("SELECT coalesce(max(id), 0) FROM activity_events")


def page(api, params, expect=200):
    response = api.get(FEED, params=params)
    assert response.status_code == expect, response.text
    return response.json()


def follow(api, after, **params):
    """Every event after the id after, oldest first, page by page."""
    events, cursor = [], None
    while True:
        query = dict(params, after=after, limit=3)
        if cursor:
            query["cursor"] = cursor
        body = page(api, query)
        events += body["items"]
        cursor = body["next_cursor"]
        if cursor is None:
            return events


def ours(events):
    """The events without those of agents going silent and coming back,
    which the maintenance job writes when the clock says so: an agent of an
    earlier test falls silent at any moment."""
    return [e for e in events if not (e["type"] == "agent" and e["status"] in ("silent", "back"))]


def failed_execution(agent_id, error_category="tool_error", **fields):
    body = {"agent_id": agent_id, "model": "gpt-test", "status": "failed",
            "started_at": utc(now_utc() - datetime.timedelta(minutes=5)), "latency_ms": 900}
    if error_category is not None:
        body["error"] = {"category": error_category}
    body.update(fields)
    return body


# ---------------------------------------------------------------- sources

def test_every_source_appears_with_its_type_status_and_link(api, db, make_agent, make_version,
                                                           ingest):
    start = mark(db)
    agent = make_agent()
    old = make_version(agent["id"], "1.0")
    new = make_version(agent["id"], "2.0")
    assert api.post("/api/v1/agents/%s/versions/%s/activate"
                    % (agent["id"], new["id"])).status_code == 200
    deployment = api.post("/api/v1/deployments", json={
        "agent_id": agent["id"], "old_version_id": old["id"], "new_version_id": new["id"]}).json()
    assert api.patch("/api/v1/deployments/" + deployment["id"],
                     json={"status": "paused"}).status_code == 200
    assert api.patch("/api/v1/deployments/" + deployment["id"],
                     json={"traffic_percent": 10}).status_code == 200   # not a status change
    problem = api.post("/api/v1/problems", json={
        "agent_id": agent["id"], "category": "tool_error", "severity": "critical",
        "title": "Search tool times out"}).json()
    assert api.patch("/api/v1/problems/" + problem["id"],
                     json={"status": "resolved"}).status_code == 200
    alert = api.post("/api/v1/alerts", json={"severity": "medium", "title": "Slow checkout",
                                             "agent_id": agent["id"]}).json()
    assert api.post("/api/v1/alerts/%s/acknowledge" % alert["id"],
                    json={"by": "ann"}).status_code == 200
    dashboard = api.post("/api/v1/dashboards", json={"name": "Feed"}).json()
    assert api.patch("/api/v1/dashboards/" + dashboard["id"],
                     json={"name": "Feed 2"}).status_code == 200
    assert api.delete("/api/v1/dashboards/" + dashboard["id"]).status_code == 204
    rule = api.post("/api/v1/alert-rules", json=dict(RULE, agent_id=agent["id"])).json()
    assert api.patch("/api/v1/alert-rules/" + rule["id"],
                     json={"severity": "low"}).status_code == 200
    assert api.delete("/api/v1/alert-rules/" + rule["id"]).status_code == 204
    ids = ingest([failed_execution(agent["id"]),
                  failed_execution(agent["id"], status="succeeded", error_category=None),
                  failed_execution(agent["id"], status="succeeded", error_category=None,
                                   evaluation={"passed": False, "score": 0.1})]).json()["ids"]

    events = ours(follow(api, start))
    got = [(e["type"], e["status"], e["link"]) for e in events]
    expected = [
        ("agent", "registered", "/api/v1/agents/" + agent["id"]),
        ("version", "active", "/api/v1/agents/%s/versions" % agent["id"]),
        ("deployment", "in_progress", "/api/v1/deployments/" + deployment["id"]),
        ("deployment", "paused", "/api/v1/deployments/" + deployment["id"]),
        ("problem", "open", "/api/v1/problems/" + problem["id"]),
        ("problem", "resolved", "/api/v1/problems/" + problem["id"]),
        ("alert", "firing", "/api/v1/alerts/" + alert["id"]),
        ("alert", "acknowledged", "/api/v1/alerts/" + alert["id"]),
        ("dashboard", "created", "/api/v1/dashboards/" + dashboard["id"]),
        ("dashboard", "updated", "/api/v1/dashboards/" + dashboard["id"]),
        ("dashboard", "deleted", "/api/v1/dashboards/" + dashboard["id"]),
        ("rule", "created", "/api/v1/alert-rules/" + rule["id"]),
        ("rule", "updated", "/api/v1/alert-rules/" + rule["id"]),
        ("rule", "deleted", "/api/v1/alert-rules/" + rule["id"]),
        ("execution_failed", "failed", "/api/v1/executions/" + ids[0]),
        ("execution_failed", "succeeded", "/api/v1/executions/" + ids[2]),
    ]
    assert got == expected, got
    assert [e["id"] for e in events] == sorted(e["id"] for e in events)
    by_type = {}
    for event in events:
        by_type.setdefault(event["type"], event)   # the first of each type
    assert by_type["problem"]["severity"] == "critical"
    assert by_type["alert"]["severity"] == "medium"
    assert by_type["alert"]["title"] == "Alert firing: Slow checkout"
    assert by_type["dashboard"]["agent"] is None
    assert by_type["execution_failed"]["agent"] == {"id": agent["id"], "name": agent["name"]}
    assert by_type["deployment"]["title"] == "Deployment started: %s v2.0" % agent["name"]
    assert by_type["version"]["title"] == "Version activated: %s v2.0" % agent["name"]
    for event in events:
        assert event["at"].endswith("Z")


def silence_events(api, agent_id, count):
    """The agent's silent/back events, oldest first, once there are count."""
    def events():
        got = [e for e in page(api, {"agent_id": agent_id, "type": "agent"})["items"]
               if e["status"] in ("silent", "back")]
        return list(reversed(got)) if len(got) >= count else None
    return wait_until(events, 15, "%d silent/back events of %s" % (count, agent_id))


def test_agents_going_silent_and_coming_back(api, db, make_agent):
    agent = make_agent(name="quiet-one", heartbeat_interval_seconds=5)
    db.execute("UPDATE agents SET created_at = now() - interval '20 seconds' WHERE id = %s",
               (agent["id"],))
    created = db.scalar("SELECT created_at FROM agents WHERE id = %s", (agent["id"],))
    silent, = silence_events(api, agent["id"], 1)
    assert (silent["status"], silent["link"], silent["severity"]) == (
        "silent", "/api/v1/agents/" + agent["id"], None)
    assert silent["title"] == ("Agent went silent: quiet-one (no heartbeat since it "
                               "registered; it beats every 5 s)")
    assert silent["agent"] == {"id": agent["id"], "name": "quiet-one"}
    # at: the moment the third beat was missed, not when the job noticed
    assert parse_time(silent["at"]) == created + datetime.timedelta(seconds=15)
    time.sleep(2.5)                           # two more rounds of the job: still one event
    assert len(silence_events(api, agent["id"], 1)) == 1

    assert api.post("/api/v1/agents/%s/heartbeat" % agent["id"]).status_code == 204
    beat = db.scalar("SELECT last_heartbeat_at FROM agents WHERE id = %s", (agent["id"],))
    _, back = silence_events(api, agent["id"], 2)
    assert (back["status"], back["title"]) == ("back", "Agent is back: quiet-one")
    assert parse_time(back["at"]) == beat and back["id"] > silent["id"]

    # silent again; a longer interval declared ends it too (at: then)
    db.execute("UPDATE agents SET last_heartbeat_at = now() - interval '16 seconds'"
               " WHERE id = %s", (agent["id"],))
    again = silence_events(api, agent["id"], 3)[2]
    assert again["status"] == "silent" and "no heartbeat since " in again["title"]
    before = db.scalar("SELECT now()")
    assert api.patch("/api/v1/agents/" + agent["id"],
                     json={"heartbeat_interval_seconds": 60}).status_code == 200
    longer = silence_events(api, agent["id"], 4)[3]
    assert longer["status"] == "back" and parse_time(longer["at"]) >= before

    # a retired agent is not silent, and its retirement is not a return
    db.execute("UPDATE agents SET last_heartbeat_at = now() - interval '1 hour'"
               " WHERE id = %s", (agent["id"],))
    silence_events(api, agent["id"], 5)
    assert api.patch("/api/v1/agents/" + agent["id"], json={"is_active": False}).status_code == 200
    wait_until(lambda: db.scalar("SELECT count(*) FROM agent_silence WHERE agent_id = %s",
                                 (agent["id"],)) == 0, 15, "the silence of a retired agent gone")
    statuses = [e["status"] for e in page(api, {"agent_id": agent["id"], "type": "agent"})["items"]]
    assert statuses == ["retired", "silent", "back", "silent", "back", "silent", "registered"]


# ---------------------------------------------------------------- filters and the cursor

def test_filters_type_agent_severity_and_time(api, db, make_agent):
    start = mark(db)
    a, b = make_agent(), make_agent()
    for agent, severity in ((a, "critical"), (b, "low")):
        api.post("/api/v1/problems", json={"agent_id": agent["id"], "category": "c",
                                           "severity": severity, "title": "p"})
    api.post("/api/v1/alerts", json={"severity": "critical", "title": "x", "agent_id": a["id"]})

    of_a = page(api, {"agent_id": a["id"]})["items"]
    assert [e["type"] for e in of_a] == ["alert", "problem", "agent"]
    assert all(e["agent"]["id"] == a["id"] for e in of_a)
    problems = page(api, [("type", "problem"), ("after", start)])["items"]
    assert [e["agent"]["id"] for e in problems] == [a["id"], b["id"]]
    two = page(api, [("type", "problem"), ("type", "alert"), ("after", start)])["items"]
    assert [e["type"] for e in two] == ["problem", "problem", "alert"]
    critical = page(api, [("severity", "critical"), ("after", start)])["items"]
    assert [(e["type"], e["agent"]["id"]) for e in critical] == [("problem", a["id"]),
                                                                 ("alert", a["id"])]
    low_or_critical = page(api, [("severity", "critical"), ("severity", "low"),
                                 ("type", "problem"), ("after", start)])["items"]
    assert len(low_or_critical) == 2
    # a severity asks only the types that carry one; with an agent, its own
    assert page(api, [("severity", "critical"), ("type", "agent"),
                      ("type", "version")])["items"] == []
    of_a_critical = page(api, {"agent_id": a["id"], "severity": "critical"})["items"]
    assert [e["type"] for e in of_a_critical] == ["alert", "problem"]
    assert page(api, {"agent_id": b["id"], "severity": "critical"})["items"] == []
    following = page(api, [("agent_id", a["id"]), ("type", "problem"), ("type", "agent"),
                           ("after", start)])["items"]
    assert [e["type"] for e in following] == ["agent", "problem"]
    future = utc(now_utc() + datetime.timedelta(hours=1))
    past = utc(now_utc() - datetime.timedelta(hours=1))
    assert page(api, {"agent_id": a["id"], "from": future})["items"] == []
    assert len(page(api, {"agent_id": a["id"], "from": past, "to": future})["items"]) == 3
    assert page(api, {"agent_id": a["id"], "to": past})["items"] == []


def test_newest_first_pages_with_the_cursor_and_before(api, db, make_agent):
    # problems: only tests make them (an agent event may come from the clock)
    agent = make_agent()
    start = mark(db)
    problems = [api.post("/api/v1/problems", json={"agent_id": agent["id"], "category": "c",
                                                   "severity": "low", "title": "p%d" % i}).json()
                for i in range(5)]
    first = page(api, {"type": "problem", "limit": 2})
    ids = [e["id"] for e in first["items"]]
    assert [e["link"] for e in first["items"]] == [
        "/api/v1/problems/" + problems[4]["id"], "/api/v1/problems/" + problems[3]["id"]]
    seen, cursor = list(ids), first["next_cursor"]
    while cursor and len(seen) < 5:
        body = page(api, {"type": "problem", "limit": 2, "cursor": cursor})
        seen += [e["id"] for e in body["items"]]
        cursor = body["next_cursor"]
    seen = seen[:5]
    assert seen == sorted(seen, reverse=True) and len(set(seen)) == 5 and min(seen) > start
    below = page(api, {"type": "problem", "before": seen[1], "limit": 3})["items"]
    assert [e["id"] for e in below] == seen[2:5]
    between = page(api, {"type": "problem", "before": seen[0], "after": seen[4]})["items"]
    assert [e["id"] for e in between] == sorted(seen[1:4])
    assert page(api, {"after": seen[0], "type": "problem"}) == {"items": [], "next_cursor": None}


# ---------------------------------------------------------------- commit order

def test_following_by_id_misses_nothing_when_commits_come_out_of_order(api, db, make_agent):
    agent = make_agent()
    last = mark(db)
    a, b = db.connect(), db.connect()
    try:
        ca, cb = a.cursor(), b.cursor()
        ca.execute("INSERT INTO problems (agent_id, category, severity, title) "
                   "VALUES (%s, 'c', 'high', 'first started') RETURNING id", (agent["id"],))
        first = ca.fetchone()[0]
        cb.execute("INSERT INTO problems (agent_id, category, severity, title) "
                   "VALUES (%s, 'c', 'high', 'second started') RETURNING id", (agent["id"],))
        second = cb.fetchone()[0]
        b.commit()
        seen = ours(follow(api, last))
        assert [e["link"] for e in seen] == ["/api/v1/problems/" + second]
        last = seen[-1]["id"]
        # A follower reading while A is still open sees nothing new
        assert ours(follow(api, last)) == []
        a.commit()
        later = ours(follow(api, last))
        assert [e["link"] for e in later] == ["/api/v1/problems/" + first]
        assert later[0]["id"] > last
        assert ours(follow(api, later[0]["id"])) == []
    finally:
        a.close()
        b.close()


def test_many_interleaved_writers_give_each_event_exactly_once(api, db, make_agent):
    agent = make_agent()
    start = mark(db)
    conns = [db.connect() for _ in range(4)]
    made, seen, last = [], [], start
    try:
        for round_ in range(3):
            for i, conn in enumerate(conns):
                conn.cursor().execute(
                    "INSERT INTO problems (agent_id, category, severity, title) "
                    "VALUES (%s, 'c', 'low', %s)", (agent["id"], "r%d w%d" % (round_, i)))
            # commit in reverse order, reading between commits
            for i, conn in reversed(list(enumerate(conns))):
                conn.commit()
                made.append("Problem: r%d w%d" % (round_, i))
                batch = follow(api, last, type="problem")
                seen += batch
                if batch:
                    last = batch[-1]["id"]
    finally:
        for conn in conns:
            conn.close()
    titles = [e["title"] for e in seen]
    assert sorted(titles) == sorted(made) and len(titles) == len(set(titles))
    assert [e["id"] for e in seen] == sorted(e["id"] for e in seen)


# ---------------------------------------------------------------- type=execution

def test_type_execution_lists_every_execution_newest_first(api, ingest, make_agent):
    agent = make_agent()
    now = now_utc()
    bodies = [failed_execution(agent["id"], status=s, error_category=None,
                               started_at=utc(now - datetime.timedelta(minutes=m)))
              for s, m in (("succeeded", 3), ("failed", 2), ("timeout", 1))]
    ids = ingest(bodies).json()["ids"]
    body = page(api, {"type": "execution", "agent_id": agent["id"], "limit": 2})
    assert [(e["id"], e["status"], e["type"]) for e in body["items"]] == [
        (ids[2], "timeout", "execution"), (ids[1], "failed", "execution")]
    assert body["items"][0]["link"] == "/api/v1/executions/" + ids[2]
    assert body["items"][0]["agent"] == {"id": agent["id"], "name": agent["name"]}
    rest = page(api, {"type": "execution", "agent_id": agent["id"], "limit": 2,
                      "cursor": body["next_cursor"]})
    assert [e["id"] for e in rest["items"]] == [ids[0]] and rest["next_cursor"] is None


# ---------------------------------------------------------------- seed 000's view

def test_recent_answers_seed_000s_shape(api, ingest, make_agent):
    agent = make_agent()
    ingest([failed_execution(agent["id"], status="succeeded", error_category=None,
                             started_at=utc(now_utc()))])
    api.post("/api/v1/problems", json={"agent_id": agent["id"], "category": "c",
                                       "severity": "high", "title": "Recent one"})
    response = api.get(RECENT, params={"limit": 5})
    assert response.status_code == 200
    items = response.json()["activities"]
    assert 1 <= len(items) <= 5
    assert set(items[0]) == {"id", "type", "title", "description", "status", "timestamp"}
    kinds = {(i["type"], i["title"], i["description"], i["status"]) for i in items}
    assert ("execution", "Execution: " + agent["name"], "Agent execution completed",
            "success") in kinds
    assert ("problem", "Problem: Recent one", "Severity: high", "open") in kinds
    stamps = [i["timestamp"] for i in items]
    assert stamps == sorted(stamps, reverse=True)
    assert len(api.get(RECENT).json()["activities"]) <= 20


# ---------------------------------------------------------------- bad parameters

@pytest.mark.parametrize("params, fields", [
    ({"type": "bogus"}, {"type"}),
    ([("type", "execution"), ("type", "alert")], {"type"}),
    ({"type": "execution", "after": "1"}, {"after"}),
    ({"type": "execution", "severity": "low"}, {"severity"}),
    ({"agent_id": "nope"}, {"agent_id"}),
    ({"severity": "huge"}, {"severity"}),
    ({"before": "-1"}, {"before"}),
    ({"after": "abc"}, {"after"}),
    ({"after": "99999999999999999999"}, {"after"}),
    ({"from": "yesterday"}, {"from"}),
    ({"to": "2026-13-01T00:00:00Z"}, {"to"}),
    ({"from": "2026-01-02T00:00:00Z", "to": "2026-01-01T00:00:00Z"}, {"to"}),
    ({"from": "2024-01-01T00:00:00Z", "to": "2026-01-01T00:00:00Z"}, {"from"}),
    ({"limit": "0"}, {"limit"}),
    ({"limit": "101"}, {"limit"}),
    ({"cursor": "junk"}, {"cursor"}),
    ({"sort": "newest"}, {"sort"}),
    ({"agent_id": "x", "limit": "x"}, {"agent_id", "limit"}),
])
def test_bad_parameters_are_400_naming_them(api, params, fields):
    body = assert_problem(api.get(FEED, params=params), 400, "bad-request")
    assert {e["field"] for e in body.get("errors", [])} >= fields


def test_a_cursor_of_the_other_mode_is_refused(api, make_agent, ingest):
    agent = make_agent()
    make_agent()
    feed = page(api, {"type": "agent", "limit": 1})
    assert feed["next_cursor"] is not None
    assert_problem(api.get(FEED, params={"type": "execution", "cursor": feed["next_cursor"]}),
                   400, "bad-request")
    ingest([failed_execution(agent["id"]), failed_execution(agent["id"])])
    runs = page(api, {"type": "execution", "limit": 1})
    assert_problem(api.get(FEED, params={"cursor": runs["next_cursor"]}), 400, "bad-request")


@pytest.mark.parametrize("params, field", [
    ({"limit": "0"}, "limit"), ({"limit": "abc"}, "limit"), ({"type": "x"}, "type")])
def test_recent_bad_parameters_are_400(api, params, field):
    body = assert_problem(api.get(RECENT, params=params), 400, "bad-request")
    assert field in {e["field"] for e in body.get("errors", [])}
