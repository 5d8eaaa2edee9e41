"""test_aggregates_token.py - agg_token(), the key under which workers keep
their answers: it changes with every write that changes what an answer
reads (executions, verdicts, the registry, dashboards, a fold of the
rollups, a TRUNCATE) and stays the same across heartbeats, which change
no answer. The part that is agg_now() (the first, seconds) is left out."""

import time

import pytest

from support import now_utc, utc

pytestmark = pytest.mark.ingest


def token(db):
    """agg_token() without its agg_now() part."""
    return db.scalar("SELECT agg_token()").split("/", 1)[1]


def quiet(db, seconds=10.0):
    """Waits until the maintenance job has folded every pending change (so
    that no fold can change the token while a test looks at it)."""
    deadline = time.monotonic() + seconds
    while db.scalar("SELECT (SELECT count(*) FROM rollup_delta)"
                    " + (SELECT count(*) FROM rollup_changes)") != 0:
        assert time.monotonic() < deadline, "the maintenance job folded nothing"
        time.sleep(0.05)


def test_heartbeats_leave_the_token_alone(api, db, make_agent):
    agent = make_agent()
    quiet(db)
    before = token(db)
    for state in ("busy", "idle", "error"):
        response = api.post("/api/v1/agents/%s/heartbeat" % agent["id"],
                            json={"state": state, "current_task": "t-" + state})
        assert response.status_code == 204, response.text
    assert token(db) == before
    assert db.scalar("SELECT state FROM agents WHERE id = %s", (agent["id"],)) == "error"


def test_an_execution_changes_the_token(db, ingest, execution):
    quiet(db)
    before = token(db)
    ingest(execution(started_at=utc(now_utc())))
    assert token(db) != before


def test_a_duplicate_execution_changes_nothing(db, ingest, execution):
    body = execution(id="0190a0a0-0000-7000-8000-00000000abcd")
    ingest(body)
    quiet(db)
    before = token(db)
    assert ingest(body).json()["duplicates"] == 1
    assert token(db) == before


def test_a_later_verdict_changes_the_token(api, db, ingest, execution):
    execution_id = ingest(execution()).json()["ids"][0]
    quiet(db)
    before = token(db)
    response = api.post("/api/v1/evaluations",
                        json={"execution_id": execution_id, "passed": True})
    assert response.status_code == 201, response.text
    assert token(db) != before


@pytest.mark.parametrize("change", ["agent name", "agent retired", "problem", "dashboard"])
def test_registry_and_dashboard_writes_change_the_token(api, db, make_agent, change):
    agent = make_agent()
    quiet(db)
    before = token(db)
    if change == "agent name":
        response = api.patch("/api/v1/agents/%s" % agent["id"], json={"name": agent["name"] + "x"})
    elif change == "agent retired":
        response = api.patch("/api/v1/agents/%s" % agent["id"], json={"is_active": False})
    elif change == "problem":
        response = api.post("/api/v1/problems", json={"agent_id": agent["id"], "severity": "high",
                                                      "category": "timeout", "title": "slow"})
    else:
        response = api.post("/api/v1/dashboards", json={"name": "token test"})
    assert response.status_code in (200, 201), response.text
    assert token(db) != before


def test_a_truncate_and_a_fold_change_the_token(db, ingest, execution):
    ingest(execution())
    before = token(db)
    quiet(db)                                # the job folds: rollup_state changes
    folded = token(db)
    assert folded != before
    db.execute("TRUNCATE executions CASCADE")
    assert token(db) != folded


def test_statements_that_change_no_row_leave_the_token_alone(db):
    # the alerts group's jobs UPDATE alerts every half second, mostly
    # changing nothing: such a statement must not expire every answer
    quiet(db)
    before = token(db)
    db.execute("UPDATE alerts SET title = title WHERE false")
    db.execute("DELETE FROM dashboards WHERE false")
    db.execute("UPDATE problems SET status = status WHERE false")
    assert token(db) == before
    db.execute("INSERT INTO dashboards (name) VALUES ('token test')")
    assert token(db) != before
    db.execute("DELETE FROM dashboards WHERE name = 'token test'")
