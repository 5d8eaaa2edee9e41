"""test_health.py - the liveness and readiness probes: every group answers
both, and /readyz reports on every required group from the heartbeats its
workers record (group_heartbeats), whichever group answers it."""

import json
import re
import time

import pytest

from support import assert_problem
from test_master import fastcgi_get

REQUIRED = ["aggregates", "alerts", "dashboards", "ingest", "maintenance", "streams"]
ROUTE_GROUPS = ["aggregates", "dashboards", "hello", "ingest", "streams"]
ALL_UP = {"status": "ready", "groups": {g: "up" for g in REQUIRED}}


def test_healthz_answers_status_ok(api):
    response = api.get("/healthz")
    assert response.status_code == 200
    assert response.headers["Content-Type"].startswith("application/json")
    assert response.json() == {"status": "ok"}


def test_readyz_answers_ready_with_every_required_group_up(api):
    response = api.get("/readyz")
    assert response.status_code == 200
    assert response.headers["Content-Type"].startswith("application/json")
    assert response.json() == ALL_UP                 # hello, a benchmark group, is not listed


@pytest.mark.parametrize("group", ROUTE_GROUPS)
def test_every_group_answers_healthz_and_readyz_for_all_groups(stack, group):
    socket = stack.vardir / "run" / ("%s.sock" % group)
    live = fastcgi_get(socket, "/healthz")
    assert "Status: 200 OK" in live and '{"status":"ok"}' in live, live
    ready = fastcgi_get(socket, "/readyz")
    assert "Status: 200 OK" in ready, ready
    assert json.loads(ready[ready.index("{"):]) == ALL_UP


def wait_all_up(api):
    """Waits until /readyz is 200 again (a group's workers beat every 5 s)."""
    deadline = time.monotonic() + 6.5
    while time.monotonic() < deadline and api.get("/readyz").status_code != 200:
        time.sleep(0.2)
    return api.get("/readyz").json()


@pytest.fixture
def beats_restored(api):
    """Every group up before and after the test."""
    assert wait_all_up(api) == ALL_UP
    yield
    wait_all_up(api)


def stale(db, group):
    db.execute("UPDATE group_heartbeats SET beat_at = now() - interval '16 seconds' "
               "WHERE group_name = %s", (group,))


def test_a_group_without_a_recent_heartbeat_makes_readyz_503_naming_it(api, db, beats_restored):
    for _ in range(5):          # a beat may land between the UPDATE and the GET: try again
        stale(db, "maintenance")
        response = api.get("/readyz")
        if response.status_code == 503:
            break
    body = assert_problem(response, 503, "service-unavailable")
    assert body["groups"] == dict(ALL_UP["groups"], maintenance="down")
    assert body["detail"] == ("Not every group serves: maintenance down "
                              "(no heartbeat in the last 15 s).")
    assert response.headers["Retry-After"] == "5"


def test_a_group_that_never_beat_is_down_and_beats_bring_it_back_within_5s(api, db,
                                                                             beats_restored):
    db.execute("DELETE FROM group_heartbeats WHERE group_name IN ('ingest', 'streams')")
    response = api.get("/readyz")
    if response.status_code == 503:        # unless both beat in between
        body = assert_problem(response, 503, "service-unavailable")
        assert re.fullmatch(r"Not every group serves: (ingest, streams|ingest|streams) down "
                            r"\(no heartbeat in the last 15 s\)\.", body["detail"]), body
    assert wait_all_up(api) == ALL_UP
    rows = db.rows("SELECT group_name FROM group_heartbeats ORDER BY 1")
    assert [r[0] for r in rows] == REQUIRED          # one row per group on this host


def test_healthz_refuses_post_with_405_and_allow_get(api):
    response = api.post("/healthz")
    assert_problem(response, 405, "method-not-allowed")
    assert "GET" in [m.strip() for m in response.headers["Allow"].split(",")]
