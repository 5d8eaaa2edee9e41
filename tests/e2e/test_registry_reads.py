"""test_registry_reads.py - what was ingested read back: GET /problems (filters
status, category, severity, agent_id; newest sighting first; keyset
cursor), GET /problems/{id}, GET /deployments (agent_id, status), GET
/deployments/{id}, GET /agents/{id}/versions: against the rows in psql,
every page walked once, 404s, bad parameters 400 naming each."""

import uuid

import pytest

from support import assert_problem

pytestmark = pytest.mark.ingest

PROBLEMS = "/api/v1/problems"
DEPLOYMENTS = "/api/v1/deployments"


def error_fields(response):
    body = assert_problem(response, 400, "bad-request")
    return sorted({e["field"] for e in body.get("errors", [])})


def walk(api, path, params=None, limit=3):
    items, cursor = [], None
    while True:
        page = dict(params or {}, limit=limit)
        if cursor:
            page["cursor"] = cursor
        response = api.get(path, params=page)
        assert response.status_code == 200, response.text
        items += response.json()["items"]
        cursor = response.json()["next_cursor"]
        if cursor is None:
            return items


@pytest.fixture
def problems(api, make_agent, db):
    """Twelve problems over two agents, categories, severities, statuses;
    their last sightings spread out (set in psql)."""
    agents = [make_agent()["id"] for _ in range(2)]
    made = []
    for i in range(12):
        body = {"category": ["tool_error", "timeout", "rate_limit"][i % 3],
                "severity": ["critical", "high", "medium", "low"][i % 4],
                "title": "problem %d" % i, "agent_id": agents[i % 2]}
        response = api.post(PROBLEMS, json=body)
        assert response.status_code == 201, response.text
        made.append(response.json())
    for i, p in enumerate(made):
        if i % 5 == 0:
            assert api.patch(PROBLEMS + "/" + p["id"], json={"status": "resolved"}).ok
        db.execute("UPDATE problems SET first_seen_at = now() - %s * interval '1 hour',"
                   " last_seen_at = now() - %s * interval '1 minute' WHERE id = %s",
                   (24, (i * 7) % 5, p["id"]))   # ties on last_seen_at: ordered by id
    return agents, made


def psql(db, where="TRUE", params=()):
    return [str(r[0]) for r in db.rows(
        "SELECT id FROM problems WHERE %s ORDER BY last_seen_at DESC, id DESC" % where, params)]


def test_problems_newest_sighting_first_every_one_once(api, db, problems):
    assert [p["id"] for p in walk(api, PROBLEMS)] == psql(db)


@pytest.mark.parametrize("params, where", [
    ({"status": "resolved"}, "status = 'resolved'"),
    ({"status": "open"}, "status = 'open'"),
    ({"category": "timeout"}, "category = 'timeout'"),
    ({"severity": "critical"}, "severity = 'critical'"),
    ({"category": "tool_error", "severity": "critical"},
     "category = 'tool_error' AND severity = 'critical'"),
])
def test_problem_filters(api, db, problems, params, where):
    expected = psql(db, where)
    assert expected
    assert [p["id"] for p in walk(api, PROBLEMS, params)] == expected


def test_problem_agent_filter_and_read(api, db, problems):
    agents, made = problems
    got = walk(api, PROBLEMS, {"agent_id": agents[1]})
    assert [p["id"] for p in got] == psql(db, "agent_id = %s", (agents[1],))
    one = api.get(PROBLEMS + "/" + made[3]["id"])
    assert one.status_code == 200
    assert one.json() in got or one.json()["agent_id"] != agents[1]
    assert one.json()["title"] == "problem 3"


@pytest.mark.parametrize("path", [PROBLEMS, DEPLOYMENTS])
def test_unknown_ids_are_404(api, path):
    assert_problem(api.get("%s/%s" % (path, uuid.uuid4())), 404, "not-found")
    assert_problem(api.get(path + "/nope"), 404, "not-found")


@pytest.mark.parametrize("path, params, fields", [
    (PROBLEMS, {"status": "closed"}, ["status"]),
    (PROBLEMS, {"severity": "huge", "agent_id": "x"}, ["agent_id", "severity"]),
    (PROBLEMS, {"category": ""}, ["category"]),
    (PROBLEMS, {"cursor": "nope"}, ["cursor"]),
    (PROBLEMS, {"colour": "red"}, ["colour"]),
    (DEPLOYMENTS, {"status": "done"}, ["status"]),
    (DEPLOYMENTS, {"limit": "0"}, ["limit"]),
    (DEPLOYMENTS, {"agent_id": "1"}, ["agent_id"]),
])
def test_bad_parameters_are_400(api, path, params, fields):
    assert error_fields(api.get(path, params=params)) == fields


@pytest.fixture
def deployments(api, make_agent, make_version):
    """Two agents with four versions each and three deployments per agent,
    the first two finished."""
    out = []
    for _ in range(2):
        agent = make_agent()
        versions = [make_version(agent["id"], "v%d" % i) for i in range(4)]
        for i in range(3):
            response = api.post(DEPLOYMENTS, json={"agent_id": agent["id"],
                                                   "old_version_id": versions[i]["id"],
                                                   "new_version_id": versions[i + 1]["id"]})
            assert response.status_code == 201, response.text
            if i < 2:
                done = api.patch(DEPLOYMENTS + "/" + response.json()["id"],
                                 json={"status": "completed"})
                assert done.status_code == 200, done.text
            out.append((agent, versions, response.json()))
    return out


def test_deployments_list_filters_and_read(api, db, deployments):
    every = [str(r[0]) for r in db.rows(
        "SELECT id FROM canary_deployments ORDER BY started_at DESC, id DESC")]
    assert [d["id"] for d in walk(api, DEPLOYMENTS, limit=4)] == every
    agent = deployments[0][0]
    mine = walk(api, DEPLOYMENTS, {"agent_id": agent["id"]}, limit=2)
    assert [d["id"] for d in mine] == [str(r[0]) for r in db.rows(
        "SELECT id FROM canary_deployments WHERE agent_id = %s ORDER BY started_at DESC, id DESC",
        (agent["id"],))]
    running = walk(api, DEPLOYMENTS, {"status": "in_progress"})
    assert sorted(d["id"] for d in running) == sorted(d[2]["id"] for d in deployments[2::3])
    one = api.get(DEPLOYMENTS + "/" + deployments[1][2]["id"])
    assert one.status_code == 200 and one.json()["status"] == "completed"
    assert one.json() in walk(api, DEPLOYMENTS)


def test_agent_versions_newest_first(api, db, deployments):
    agent, versions, _ = deployments[0]
    got = walk(api, "/api/v1/agents/%s/versions" % agent["id"], limit=3)
    assert [v["id"] for v in got] == [str(r[0]) for r in db.rows(
        "SELECT id FROM agent_versions WHERE agent_id = %s ORDER BY created_at DESC, id DESC",
        (agent["id"],))]
    assert sorted(v["version"] for v in got) == ["v0", "v1", "v2", "v3"]
    assert_problem(api.get("/api/v1/agents/%s/versions" % uuid.uuid4()), 404, "not-found")
    assert_problem(api.get("/api/v1/agents/nope/versions"), 404, "not-found")
    assert error_fields(api.get("/api/v1/agents/%s/versions" % agent["id"],
                                params={"cursor": "x", "version": "v1"})) == ["cursor", "version"]
