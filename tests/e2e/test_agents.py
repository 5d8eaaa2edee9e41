"""test_agents.py - agents: registration (201 new, 200 existing name), list
with filter and keyset pagination, get, patch, versions and their
activation, heartbeats; every invalid body (422 naming the field, nothing
written), 404s, 409s, 405, 413 above 1 MiB and 415."""

import datetime
import json
import threading

import pytest

from support import assert_problem, error_fields, now_utc, parse_time

pytestmark = pytest.mark.ingest

AGENTS = "/api/v1/agents"
UNKNOWN_ID = "00000000-0000-4000-8000-000000000000"
MIB = 1024 * 1024


def agent_path(agent_id, suffix=""):
    return "%s/%s%s" % (AGENTS, agent_id, suffix)


# ---------------------------------------------------------------- register

def test_register_answers_201_location_and_the_defaults(api, db):
    response = api.post(AGENTS, json={"name": "planner"})
    assert response.status_code == 201, response.text
    body = response.json()
    assert response.headers["Location"] == agent_path(body["id"])
    assert (body["name"], body["description"], body["capabilities"], body["metadata"],
            body["is_active"], body["current_task"], body["last_heartbeat_at"],
            body["active_version"]) == ("planner", None, [], {}, True, None, None, None)
    assert body["state"] in (None, "offline")
    assert db.count("agents", "id = %s AND name = 'planner'", (body["id"],)) == 1


def test_register_stores_every_given_field(api, db):
    sent = {"name": "coder", "description": "Writes code", "capabilities": ["python", "sql"],
            "metadata": {"team": "core", "tier": 2, "beta": True, "owner": None},
            "is_active": False}
    body = api.post(AGENTS, json=sent).json()
    assert {k: body[k] for k in sent} == sent
    assert db.row("SELECT name, description, capabilities, metadata, is_active FROM agents "
                  "WHERE id = %s", (body["id"],)) == sent


def test_register_location_serves_the_same_agent(api):
    created = api.post(AGENTS, json={"name": "x", "capabilities": ["a"]})
    fetched = api.get(created.headers["Location"])
    assert fetched.status_code == 200
    assert fetched.json() == created.json()


def test_registering_an_existing_name_answers_200_with_that_agent(api, db, make_agent):
    agent = make_agent("same")
    response = api.post(AGENTS, json={"name": "same"})
    assert response.status_code == 200, response.text
    assert response.json()["id"] == agent["id"]
    assert "Location" not in response.headers or response.headers["Location"] == agent_path(
        agent["id"])
    assert db.count("agents") == 1


def test_registering_an_existing_name_updates_what_was_sent_and_keeps_the_rest(api, make_agent):
    agent = make_agent("keep", description="old", capabilities=["a"], metadata={"k": 1})
    body = api.post(AGENTS, json={"name": "keep", "capabilities": ["b", "c"]}).json()
    assert body["capabilities"] == ["b", "c"]
    assert (body["description"], body["metadata"], body["is_active"]) == ("old", {"k": 1}, True)
    assert body["id"] == agent["id"]
    assert parse_time(body["updated_at"]) >= parse_time(agent["updated_at"])


def test_concurrent_registrations_of_one_name_create_one_agent(api, db):
    answers = [None] * 6
    barrier = threading.Barrier(len(answers))

    def send(slot):
        barrier.wait()
        answers[slot] = api.post(AGENTS, json={"name": "same-time"})

    threads = [threading.Thread(target=send, args=(slot,)) for slot in range(len(answers))]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert sorted(a.status_code for a in answers) == [200] * 5 + [201], [
        a.text[:300] for a in answers]
    assert len({a.json()["id"] for a in answers}) == 1
    assert db.count("agents") == 1


def test_registering_an_existing_name_can_clear_the_description(api, make_agent):
    make_agent("clear", description="old")
    body = api.post(AGENTS, json={"name": "clear", "description": None}).json()
    assert body["description"] is None


# (id, body, the field the 422 must name)
INVALID = [
    ("not an object", [], "body"),
    ("name missing", {}, "name"),
    ("name empty", {"name": ""}, "name"),
    ("name too long", {"name": "n" * 256}, "name"),
    ("name not a string", {"name": 5}, "name"),
    ("description too long", {"name": "n", "description": "d" * 10001}, "description"),
    ("description not a string", {"name": "n", "description": 5}, "description"),
    ("capabilities not an array", {"name": "n", "capabilities": "python"}, "capabilities"),
    ("capability not a string", {"name": "n", "capabilities": ["a", 5]}, "capabilities[1]"),
    ("capability empty", {"name": "n", "capabilities": [""]}, "capabilities[0]"),
    ("capability too long", {"name": "n", "capabilities": ["a", "b", "c" * 101]},
     "capabilities[2]"),
    ("101 capabilities", {"name": "n", "capabilities": ["c%d" % i for i in range(101)]},
     "capabilities"),
    ("metadata not an object", {"name": "n", "metadata": ["a"]}, "metadata"),
    ("metadata nested", {"name": "n", "metadata": {"region": {"eu": 1}}}, "metadata.region"),
    ("metadata array value", {"name": "n", "metadata": {"tags": ["a"]}}, "metadata.tags"),
    ("metadata 51 keys", {"name": "n", "metadata": {"k%d" % i: i for i in range(51)}},
     "metadata"),
    ("metadata value too long", {"name": "n", "metadata": {"k": "v" * 1001}}, "metadata.k"),
    ("is_active not a boolean", {"name": "n", "is_active": "yes"}, "is_active"),
    ("unknown field", {"name": "n", "colour": "red"}, "colour"),
    ("state is not registered", {"name": "n", "state": "idle"}, "state"),
]


@pytest.mark.parametrize("body, field", [c[1:] for c in INVALID], ids=[c[0] for c in INVALID])
def test_invalid_registration_is_422_naming_the_field(api, db, body, field):
    with db.unchanged():
        response = api.post(AGENTS, json=body)
    assert error_fields(response) == {field}


def test_invalid_registration_of_an_existing_name_changes_nothing(api, db, make_agent):
    make_agent("stay", description="kept")
    with db.unchanged():
        response = api.post(AGENTS, json={"name": "stay", "description": "new", "is_active": 1})
    assert error_fields(response) == {"is_active"}


def test_metadata_nested_message(api, db):
    with db.unchanged():
        response = api.post(AGENTS, json={"name": "n", "metadata": {"region": {"eu": 1}}})
    error, = assert_problem(response, 422, "validation")["errors"]
    assert "must be a string, number, boolean or null" in error["message"]


def test_registration_at_the_limits_is_accepted(api):
    body = {"name": "n" * 255, "description": "d" * 10000,
            "capabilities": ["c" * 100] + ["c%d" % i for i in range(99)],
            "metadata": dict({"k%d" % i: i for i in range(49)}, **{"k" * 100: "v" * 1000})}
    response = api.post(AGENTS, json=body)
    assert response.status_code == 201, response.text[:500]
    assert response.json()["metadata"] == body["metadata"]


def test_body_over_1_mib_is_413_and_registers_nothing(api, db):
    body = json.dumps({"name": "big", "description": "d" * MIB}).encode()
    with db.unchanged():
        response = api.post(AGENTS, data=body, headers={"Content-Type": "application/json"})
    assert_problem(response, 413, "payload-too-large")


def test_heartbeat_over_1_mib_is_413(api, db, make_agent):
    agent = make_agent()
    body = json.dumps({"current_task": "t" * (MIB + 10)}).encode()
    with db.unchanged():
        response = api.post(agent_path(agent["id"], "/heartbeat"), data=body,
                            headers={"Content-Type": "application/json"})
    assert_problem(response, 413, "payload-too-large")


@pytest.mark.parametrize("content_type", ["text/plain", None, "application/x-ndjson"])
def test_registration_that_is_not_json_is_415(api, db, content_type):
    headers = {"Content-Type": content_type} if content_type else {}
    with db.unchanged():
        response = api.post(AGENTS, data=b'{"name": "n"}', headers=headers)
    assert_problem(response, 415, "unsupported-media-type")


def test_malformed_registration_is_400(api, db):
    with db.unchanged():
        response = api.post(AGENTS, data=b'{"name": ', headers={"Content-Type": "application/json"})
    assert_problem(response, 400, "bad-request")


# ---------------------------------------------------------------- list

def names(response):
    assert response.status_code == 200, response.text
    return [item["name"] for item in response.json()["items"]]


def test_list_orders_agents_by_name(api, make_agent):
    for name in ("charlie", "alpha", "bravo"):
        make_agent(name)
    response = api.get(AGENTS)
    assert names(response) == ["alpha", "bravo", "charlie"]
    assert response.json()["next_cursor"] is None


def test_list_of_no_agents_is_empty(api):
    assert api.get(AGENTS).json() == {"items": [], "next_cursor": None}


@pytest.mark.parametrize("active, expected", [("true", ["on1", "on2"]), ("false", ["off"])])
def test_list_filters_on_active(api, make_agent, active, expected):
    make_agent("on1")
    make_agent("off", is_active=False)
    make_agent("on2")
    assert names(api.get(AGENTS, params={"active": active})) == expected


def test_list_pages_with_the_cursor(api, make_agent):
    for n in range(7):
        make_agent("agent-%02d" % n)
    seen, cursor = [], None
    while True:
        params = {"limit": 3}
        if cursor:
            params["cursor"] = cursor
        response = api.get(AGENTS, params=params)
        page = names(response)
        assert len(page) <= 3
        seen += page
        cursor = response.json()["next_cursor"]
        if cursor is None:
            break
    assert seen == ["agent-%02d" % n for n in range(7)]


def test_list_page_does_not_repeat_after_an_insert_before_the_cursor(api, make_agent):
    for name in ("b", "d", "f"):
        make_agent(name)
    first = api.get(AGENTS, params={"limit": 2}).json()
    make_agent("a")
    second = api.get(AGENTS, params={"limit": 2, "cursor": first["next_cursor"]})
    assert names(second) == ["f"]


def test_list_default_limit_is_50(api, db):
    db.execute("INSERT INTO agents (name) SELECT 'bulk-' || lpad(g::text, 3, '0') "
               "FROM generate_series(1, 55) g")
    response = api.get(AGENTS)
    assert len(names(response)) == 50
    assert response.json()["next_cursor"] is not None


@pytest.mark.parametrize("params, name", [
    ({"active": "yes"}, "active"), ({"active": ""}, "active"), ({"limit": "0"}, "limit"),
    ({"limit": "101"}, "limit"), ({"limit": "ten"}, "limit"), ({"cursor": "garbage"}, "cursor"),
])
def test_bad_list_parameter_is_400_naming_it(api, params, name):
    response = api.get(AGENTS, params=params)
    body = assert_problem(response, 400, "bad-request")
    assert name in body["detail"], body["detail"]


# ---------------------------------------------------------------- get and patch

def test_get_unknown_agent_is_404(api):
    assert_problem(api.get(agent_path(UNKNOWN_ID)), 404, "not-found")


@pytest.mark.parametrize("suffix", ["", "/heartbeat", "/versions"])
def test_agent_id_that_is_not_a_uuid_is_404(api, db, suffix):
    with db.unchanged():
        if suffix:
            response = api.post(agent_path("not-a-uuid", suffix), json={})
        else:
            response = api.get(agent_path("not-a-uuid"))
    assert_problem(response, 404, "not-found")


def test_patch_renames_deactivates_and_describes(api, db, make_agent):
    agent = make_agent("before", capabilities=["a"])
    response = api.patch(agent_path(agent["id"]), json={
        "name": "after", "is_active": False, "capabilities": [], "metadata": {"m": "x"},
        "description": "now described"})
    assert response.status_code == 200, response.text
    body = response.json()
    assert (body["id"], body["name"], body["is_active"], body["capabilities"], body["metadata"],
            body["description"]) == (agent["id"], "after", False, [], {"m": "x"},
                                     "now described")
    assert api.get(agent_path(agent["id"])).json() == body
    assert db.count("agents", "name = 'after' AND NOT is_active") == 1


def test_patch_keeps_absent_fields(api, make_agent):
    agent = make_agent("k", description="d", capabilities=["c"], metadata={"a": 1})
    body = api.patch(agent_path(agent["id"]), json={"is_active": False}).json()
    assert (body["name"], body["description"], body["capabilities"], body["metadata"]) == (
        "k", "d", ["c"], {"a": 1})


def test_patch_to_a_name_another_agent_has_is_409(api, db, make_agent):
    make_agent("taken")
    agent = make_agent("mine")
    with db.unchanged():
        response = api.patch(agent_path(agent["id"]), json={"name": "taken"})
    assert_problem(response, 409, "conflict")


def test_patch_to_its_own_name_is_fine(api, make_agent):
    agent = make_agent("self")
    response = api.patch(agent_path(agent["id"]), json={"name": "self"})
    assert response.status_code == 200, response.text


def test_patch_unknown_agent_is_404(api, db):
    with db.unchanged():
        response = api.patch(agent_path(UNKNOWN_ID), json={"is_active": False})
    assert_problem(response, 404, "not-found")


@pytest.mark.parametrize("body, field", [
    ({"name": ""}, "name"), ({"name": None}, "name"), ({"is_active": None}, "is_active"),
    ({"capabilities": [1]}, "capabilities[0]"), ({"metadata": {"a": {"b": 1}}}, "metadata.a"),
    ({"state": "busy"}, "state"), ({"id": UNKNOWN_ID}, "id"), ({"unknown": 1}, "unknown"),
])
def test_invalid_patch_is_422_naming_the_field(api, db, make_agent, body, field):
    agent = make_agent()
    with db.unchanged():
        response = api.patch(agent_path(agent["id"]), json=body)
    assert error_fields(response) == {field}


@pytest.mark.parametrize("method, suffix, methods", [
    ("DELETE", "", {"GET", "PATCH"}), ("PUT", "", {"GET", "PATCH"}),
    ("DELETE", None, {"GET", "POST"}), ("GET", "/heartbeat", {"POST"}),
    ("DELETE", "/versions", {"GET", "POST"}),
])
def test_wrong_method_on_agents_is_405_with_allow(api, db, make_agent, method, suffix, methods):
    agent = make_agent()
    path = AGENTS if suffix is None else agent_path(agent["id"], suffix)
    with db.unchanged():
        response = api.request(method, path)
    assert_problem(response, 405, "method-not-allowed")
    allow = {m.strip() for m in response.headers["Allow"].split(",")} - {"HEAD", "OPTIONS"}
    assert allow == methods


# ---------------------------------------------------------------- versions

def versions(db, agent_id):
    return dict(db.rows("SELECT version, is_active FROM agent_versions WHERE agent_id = %s",
                        (agent_id,)))


def test_create_version_answers_201_location_and_an_inactive_version(api, db, make_agent):
    agent = make_agent()
    response = api.post(agent_path(agent["id"], "/versions"), json={"version": "1.0"})
    assert response.status_code == 201, response.text
    body = response.json()
    assert response.headers["Location"] == agent_path(agent["id"], "/versions/%s" % body["id"])
    assert (body["agent_id"], body["version"], body["config"], body["is_active"]) == (
        agent["id"], "1.0", {}, False)
    assert versions(db, agent["id"]) == {"1.0": False}


def test_version_config_round_trips_exactly(api, db, make_agent):
    agent = make_agent()
    config = {"temperature": 0.2, "tools": ["search", {"name": "calc", "deep": [1, [2]]}],
              "prompt": "Be brief.\n\u00e9", "nothing": None}
    body = api.post(agent_path(agent["id"], "/versions"),
                    json={"version": "2", "config": config}).json()
    assert body["config"] == config
    assert db.scalar("SELECT config FROM agent_versions WHERE id = %s", (body["id"],)) == config


def test_the_same_version_string_again_is_409(api, db, make_agent, make_version):
    agent = make_agent()
    make_version(agent["id"], "1.0")
    with db.unchanged():
        response = api.post(agent_path(agent["id"], "/versions"), json={"version": "1.0"})
    assert_problem(response, 409, "conflict")


def test_one_version_string_for_two_agents_is_fine(make_agent, make_version, db):
    first, second = make_agent(), make_agent()
    make_version(first["id"], "1.0")
    make_version(second["id"], "1.0")
    assert db.count("agent_versions") == 2


def test_version_of_an_unknown_agent_is_404(api, db):
    with db.unchanged():
        response = api.post(agent_path(UNKNOWN_ID, "/versions"), json={"version": "1"})
    assert_problem(response, 404, "not-found")


@pytest.mark.parametrize("body, field", [
    ({}, "version"), ({"version": ""}, "version"), ({"version": "v" * 101}, "version"),
    ({"version": 1}, "version"), ({"version": "1", "config": []}, "config"),
    ({"version": "1", "config": "x"}, "config"), ({"version": "1", "is_active": True}, "is_active"),
])
def test_invalid_version_is_422_naming_the_field(api, db, make_agent, body, field):
    agent = make_agent()
    with db.unchanged():
        response = api.post(agent_path(agent["id"], "/versions"), json=body)
    assert error_fields(response) == {field}


def activate(api, agent_id, version_id):
    return api.post(agent_path(agent_id, "/versions/%s/activate" % version_id))


def test_activate_makes_the_version_active_and_shows_it_on_the_agent(api, db, make_agent,
                                                                   make_version):
    agent = make_agent()
    version = make_version(agent["id"], "1.0")
    response = activate(api, agent["id"], version["id"])
    assert response.status_code == 200, response.text
    assert response.json() == dict(version, is_active=True)
    assert versions(db, agent["id"]) == {"1.0": True}
    assert api.get(agent_path(agent["id"])).json()["active_version"] == "1.0"


def test_activating_another_version_deactivates_the_first(api, db, make_agent, make_version):
    agent = make_agent()
    first = make_version(agent["id"], "1.0")
    second = make_version(agent["id"], "2.0")
    assert activate(api, agent["id"], first["id"]).status_code == 200
    assert activate(api, agent["id"], second["id"]).status_code == 200
    assert versions(db, agent["id"]) == {"1.0": False, "2.0": True}
    assert api.get(agent_path(agent["id"])).json()["active_version"] == "2.0"


def test_activating_the_active_version_again_is_fine(api, db, make_agent, make_version):
    agent = make_agent()
    version = make_version(agent["id"])
    assert activate(api, agent["id"], version["id"]).status_code == 200
    assert activate(api, agent["id"], version["id"]).status_code == 200
    assert versions(db, agent["id"]) == {"v1": True}


def test_activation_touches_only_that_agents_versions(api, db, make_agent, make_version):
    first, second = make_agent(), make_agent()
    mine = make_version(first["id"], "1")
    theirs = make_version(second["id"], "1")
    activate(api, second["id"], theirs["id"])
    activate(api, first["id"], mine["id"])
    assert versions(db, second["id"]) == {"1": True}


def test_activating_a_version_of_another_agent_is_404(api, db, make_agent, make_version):
    first, second = make_agent(), make_agent()
    theirs = make_version(second["id"])
    with db.unchanged():
        response = activate(api, first["id"], theirs["id"])
    assert_problem(response, 404, "not-found")


def test_activating_an_unknown_version_is_404(api, db, make_agent):
    agent = make_agent()
    with db.unchanged():
        response = activate(api, agent["id"], UNKNOWN_ID)
    assert_problem(response, 404, "not-found")


def test_concurrent_activations_leave_exactly_one_active_version(api, db, make_agent,
                                                                 make_version):
    agent = make_agent()
    made = [make_version(agent["id"], "v%d" % n) for n in range(6)]
    barrier = threading.Barrier(len(made))
    statuses = []

    def run(version):
        barrier.wait()
        statuses.append(activate(api, agent["id"], version["id"]).status_code)

    threads = [threading.Thread(target=run, args=(v,)) for v in made]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert statuses == [200] * len(made)
    assert list(versions(db, agent["id"]).values()).count(True) == 1


# ---------------------------------------------------------------- heartbeat

def heartbeat(api, agent_id, body=None, **kw):
    path = agent_path(agent_id, "/heartbeat")
    if body is None:
        return api.post(path, **kw)
    return api.post(path, json=body, **kw)


def test_heartbeat_is_204_and_records_the_time_state_and_task(api, db, make_agent):
    agent = make_agent()
    before = now_utc()
    response = heartbeat(api, agent["id"], {"state": "busy", "current_task": "indexing"})
    assert response.status_code == 204, response.text
    assert response.content == b""
    row = db.row("SELECT state, current_task, last_heartbeat_at FROM agents WHERE id = %s",
                 (agent["id"],))
    assert (row["state"], row["current_task"]) == ("busy", "indexing")
    assert before - datetime.timedelta(seconds=1) <= row["last_heartbeat_at"] <= now_utc()
    body = api.get(agent_path(agent["id"])).json()
    assert (body["state"], body["current_task"]) == ("busy", "indexing")
    assert parse_time(body["last_heartbeat_at"]) == row["last_heartbeat_at"]


def test_heartbeat_without_a_body_records_the_time(api, db, make_agent):
    agent = make_agent()
    response = heartbeat(api, agent["id"])
    assert response.status_code == 204, response.text
    assert db.scalar("SELECT last_heartbeat_at IS NOT NULL FROM agents WHERE id = %s",
                     (agent["id"],))


def test_heartbeat_with_an_empty_object_records_the_time(api, db, make_agent):
    agent = make_agent()
    assert heartbeat(api, agent["id"], {}).status_code == 204
    assert db.scalar("SELECT last_heartbeat_at IS NOT NULL FROM agents WHERE id = %s",
                     (agent["id"],))


def test_a_later_heartbeat_moves_the_time_forward(api, db, make_agent):
    agent = make_agent()
    heartbeat(api, agent["id"], {"state": "idle"})
    first = db.scalar("SELECT last_heartbeat_at FROM agents WHERE id = %s", (agent["id"],))
    heartbeat(api, agent["id"], {"state": "idle"})
    assert db.scalar("SELECT last_heartbeat_at FROM agents WHERE id = %s", (agent["id"],)) > first


def test_heartbeat_can_clear_the_current_task(api, db, make_agent):
    agent = make_agent()
    heartbeat(api, agent["id"], {"state": "busy", "current_task": "t"})
    assert heartbeat(api, agent["id"], {"state": "idle", "current_task": None}).status_code == 204
    assert db.rows("SELECT state, current_task FROM agents WHERE id = %s",
                   (agent["id"],)) == [("idle", None)]


@pytest.mark.parametrize("state", ["idle", "busy", "error", "offline"])
def test_heartbeat_takes_every_state(api, db, make_agent, state):
    agent = make_agent()
    assert heartbeat(api, agent["id"], {"state": state}).status_code == 204
    assert db.scalar("SELECT state FROM agents WHERE id = %s", (agent["id"],)) == state


def test_heartbeat_of_an_unknown_agent_is_404(api, db):
    with db.unchanged():
        response = heartbeat(api, UNKNOWN_ID, {"state": "idle"})
    assert_problem(response, 404, "not-found")


@pytest.mark.parametrize("body, field", [
    ({"state": "sleeping"}, "state"), ({"state": 1}, "state"),
    ({"current_task": "t" * 1001}, "current_task"), ({"current_task": 5}, "current_task"),
    ({"at": "now"}, "at"), ([], "body"),
])
def test_invalid_heartbeat_is_422_and_records_nothing(api, db, make_agent, body, field):
    agent = make_agent()
    with db.unchanged():
        response = heartbeat(api, agent["id"], body)
    assert error_fields(response) == {field}


def test_heartbeat_that_is_not_json_is_415(api, db, make_agent):
    agent = make_agent()
    with db.unchanged():
        response = api.post(agent_path(agent["id"], "/heartbeat"), data=b"state=idle",
                            headers={"Content-Type": "application/x-www-form-urlencoded"})
    assert_problem(response, 415, "unsupported-media-type")
