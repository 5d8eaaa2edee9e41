"""test_agent_silence.py - the heartbeat interval an agent declares
(heartbeat_interval_seconds: default 60, 1..86400, set by POST /agents and
PATCH /agents/{id}, kept by a re-registration that does not send it;
out-of-range or mistyped values are 422s naming it, nothing written) and
`silent` (an active agent with no beat for three intervals, since its last
beat or its registration; never a retired one): in Agent objects, and the
?silent= filter of GET /agents, whose bad values are 400s."""

import pytest

from support import assert_problem, error_fields

pytestmark = pytest.mark.ingest

AGENTS = "/api/v1/agents"


def path(agent_id, suffix=""):
    return "%s/%s%s" % (AGENTS, agent_id, suffix)


def test_the_interval_defaults_to_60_and_a_new_agent_is_not_silent(api, db, make_agent):
    agent = make_agent(name="fresh")
    assert (agent["heartbeat_interval_seconds"], agent["silent"]) == (60, False)
    assert db.scalar("SELECT heartbeat_interval_seconds FROM agents WHERE id = %s",
                     (agent["id"],)) == 60


def test_register_and_patch_set_the_interval(api, db, make_agent):
    agent = make_agent(name="declared", heartbeat_interval_seconds=15)
    assert agent["heartbeat_interval_seconds"] == 15
    response = api.post(AGENTS, json={"name": "declared", "description": "again"})
    assert response.status_code == 200, response.text
    assert response.json()["heartbeat_interval_seconds"] == 15      # kept: not sent
    response = api.post(AGENTS, json={"name": "declared", "heartbeat_interval_seconds": 1})
    assert response.status_code == 200, response.text
    assert response.json()["heartbeat_interval_seconds"] == 1
    response = api.patch(path(agent["id"]), json={"heartbeat_interval_seconds": 86400})
    assert response.status_code == 200, response.text
    assert response.json()["heartbeat_interval_seconds"] == 86400
    assert api.get(path(agent["id"])).json()["heartbeat_interval_seconds"] == 86400


@pytest.mark.parametrize("value", [0, -1, 86401, 1.5, "60", None, True])
def test_a_bad_interval_is_422_naming_it(api, db, make_agent, value):
    agent = make_agent(name="strict")
    with db.unchanged():
        response = api.post(AGENTS, json={"name": "other", "heartbeat_interval_seconds": value})
        assert error_fields(response) == {"heartbeat_interval_seconds"}
        response = api.patch(path(agent["id"]), json={"heartbeat_interval_seconds": value})
        assert error_fields(response) == {"heartbeat_interval_seconds"}


def test_silent_after_three_missed_beats_and_back_with_a_beat(api, db, make_agent):
    agent = make_agent(name="beater", heartbeat_interval_seconds=10)
    db.execute("UPDATE agents SET last_heartbeat_at = now() - interval '29 seconds'"
               " WHERE id = %s", (agent["id"],))
    assert api.get(path(agent["id"])).json()["silent"] is False       # two beats missed
    db.execute("UPDATE agents SET last_heartbeat_at = now() - interval '31 seconds'"
               " WHERE id = %s", (agent["id"],))
    assert api.get(path(agent["id"])).json()["silent"] is True
    # a longer interval declared: no longer three beats missed
    response = api.patch(path(agent["id"]), json={"heartbeat_interval_seconds": 11})
    assert response.json()["silent"] is False
    response = api.patch(path(agent["id"]), json={"heartbeat_interval_seconds": 10})
    assert response.json()["silent"] is True
    assert api.post(path(agent["id"], "/heartbeat")).status_code == 204
    assert api.get(path(agent["id"])).json()["silent"] is False


def test_never_beating_counts_from_registration_and_retired_agents_are_not_silent(
        api, db, make_agent):
    agent = make_agent(name="mute", heartbeat_interval_seconds=5)
    db.execute("UPDATE agents SET created_at = now() - interval '20 seconds' WHERE id = %s",
               (agent["id"],))
    assert api.get(path(agent["id"])).json()["silent"] is True
    response = api.patch(path(agent["id"]), json={"is_active": False})
    assert response.status_code == 200, response.text
    assert response.json()["silent"] is False


def test_the_list_shows_silent_and_filters_on_it(api, db, make_agent):
    quiet = make_agent(name="a-quiet", heartbeat_interval_seconds=1)
    loud = make_agent(name="b-loud")
    db.execute("UPDATE agents SET last_heartbeat_at = now() - interval '1 minute'"
               " WHERE id = %s", (quiet["id"],))
    every = api.get(AGENTS).json()["items"]
    assert [(a["id"], a["silent"]) for a in every] == [(quiet["id"], True), (loud["id"], False)]
    assert [a["id"] for a in api.get(AGENTS, params={"silent": "true"}).json()["items"]] == [
        quiet["id"]]
    assert [a["id"] for a in api.get(AGENTS, params={"silent": "false"}).json()["items"]] == [
        loud["id"]]
    both = api.get(AGENTS, params={"silent": "false", "active": "true"}).json()["items"]
    assert [a["id"] for a in both] == [loud["id"]]


def test_the_silent_filter_pages_with_the_cursor(api, db, make_agent):
    ids = [make_agent(name="s%d" % i, heartbeat_interval_seconds=1)["id"] for i in range(3)]
    make_agent(name="s-awake")
    db.execute("UPDATE agents SET last_heartbeat_at = now() - interval '1 minute'"
               " WHERE name ~ '^s[0-9]$'")
    first = api.get(AGENTS, params={"silent": "true", "limit": "2"}).json()
    assert [a["id"] for a in first["items"]] == ids[:2] and first["next_cursor"]
    rest = api.get(AGENTS, params={"silent": "true", "limit": "2",
                                   "cursor": first["next_cursor"]}).json()
    assert [a["id"] for a in rest["items"]] == ids[2:] and rest["next_cursor"] is None


@pytest.mark.parametrize("value", ["yes", "", "1", "TRUE"])
def test_a_bad_silent_filter_is_400_naming_it(api, value):
    body = assert_problem(api.get(AGENTS, params={"silent": value}), 400, "bad-request")
    assert [e["field"] for e in body["errors"]] == ["silent"]
