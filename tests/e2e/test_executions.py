"""test_executions.py - POST /api/v1/executions: the three body forms, what
is stored, agent and version registration, embedded evaluations, every
validation error (422 with line and field, nothing stored), all or nothing
on a 100,000-line stream, clients that go away mid-stream, and database
counts equal to what the answers acknowledged."""

import datetime
import decimal
import json
import re
import socket
import threading
import time
import uuid

import pytest

from support import DROP, assert_problem, error_fields, ingest_errors, log_records, now_utc, utc

pytestmark = pytest.mark.ingest

PATH = "/api/v1/executions"
MIB = 1024 * 1024
UNKNOWN_ID = "00000000-0000-4000-8000-000000000000"


def ndjson(*objects):
    """NDJSON bytes of these objects (bytes items are taken as raw lines)."""
    return b"".join((o if isinstance(o, bytes) else json.dumps(o).encode()) + b"\n"
                    for o in objects)


def stored(db, execution_id):
    return db.row("SELECT * FROM executions WHERE id = %s", (execution_id,))


def wait_for(predicate, seconds=2.0):
    """Poll predicate until it holds or seconds pass; returns its last value."""
    deadline = time.monotonic() + seconds
    while True:
        value = predicate()
        if value or time.monotonic() > deadline:
            return value
        time.sleep(0.05)


# ---------------------------------------------------------------- the three forms

def test_one_object_is_stored_and_answered_with_its_generated_id(api, db, ingest, execution,
                                                                  make_agent):
    agent = make_agent()
    response = ingest(execution(agent_id=agent["id"]))
    body = response.json()
    assert (body["received"], body["inserted"], body["duplicates"]) == (1, 1, 0)
    assert len(body["ids"]) == 1
    assert db.count("executions") == 1
    assert stored(db, body["ids"][0])["agent_id"] == agent["id"]


def test_the_clients_id_is_kept(ingest, execution, db):
    execution_id = str(uuid.uuid4())
    body = ingest(execution(id=execution_id)).json()
    assert body["ids"] == [execution_id]
    assert db.count("executions", "id = %s", (execution_id,)) == 1


# Arrays of 50 or more go through COPY and the staging table, shorter ones
# are one statement: the batch tests below run both ways (PAD more items).
BATCH_WAYS = pytest.mark.parametrize("pad", [0, 60], ids=["one-statement", "copy"])


@BATCH_WAYS
def test_a_batch_answers_ids_in_input_order(ingest, execution, db, pad):
    given = [str(uuid.uuid4()), None, str(uuid.uuid4()), None]
    batch = [execution(id=i) if i else execution(task_id="t%d" % n)
             for n, i in enumerate(given)] + [execution() for _ in range(pad)]
    body = ingest(batch).json()
    n = 4 + pad
    assert (body["received"], body["inserted"], body["duplicates"]) == (n, n, 0)
    assert len(body["ids"]) == n and len(set(body["ids"])) == n
    assert body["ids"][0] == given[0] and body["ids"][2] == given[2]
    assert stored(db, body["ids"][1])["task_id"] == "t1"
    assert stored(db, body["ids"][3])["task_id"] == "t3"
    assert db.count("executions") == n


@BATCH_WAYS
def test_a_repeated_id_in_a_batch_is_stored_once_first_item_wins(ingest, execution, db, pad):
    repeated = str(uuid.uuid4())
    batch = ([execution(id=repeated, task_id="first", evaluation={"passed": True})]
             + [execution() for _ in range(pad)]
             + [execution(id=repeated, task_id="second", evaluation={"passed": False})])
    body = ingest(batch).json()
    assert (body["received"], body["inserted"], body["duplicates"]) == (pad + 2, pad + 1, 1)
    assert body["ids"][0] == body["ids"][-1] == repeated
    row = stored(db, repeated)
    assert (row["task_id"], row["eval_passed"]) == ("first", True)


def test_an_ndjson_stream_answers_counts_without_ids(api, db, execution):
    response = api.post_ndjson(PATH, ndjson(*[execution() for _ in range(3)]))
    assert response.status_code == 200, response.text
    assert response.json() == {"received": 3, "inserted": 3, "duplicates": 0}
    assert db.count("executions") == 3


def test_ndjson_blank_lines_are_ignored(api, db, execution):
    body = b"\n" + ndjson(execution()) + b"\n\n" + ndjson(execution()) + b"\n"
    response = api.post_ndjson(PATH, body)
    assert response.status_code == 200, response.text
    assert response.json() == {"received": 2, "inserted": 2, "duplicates": 0}
    assert db.count("executions") == 2


def test_ndjson_last_line_without_a_newline_is_read(api, db, execution):
    body = ndjson(execution()) + json.dumps(execution()).encode()
    response = api.post_ndjson(PATH, body)
    assert response.status_code == 200, response.text
    assert response.json()["received"] == 2
    assert db.count("executions") == 2


def test_json_with_a_charset_parameter_is_accepted(api, db, execution):
    response = api.post(PATH, data=json.dumps(execution()).encode(),
                        headers={"Content-Type": "application/json; charset=utf-8"})
    assert response.status_code == 200, response.text
    assert db.count("executions") == 1


@pytest.mark.parametrize("content_type", ["text/plain", None, "application/xml",
                                          "application/ndjson-x", "multipart/form-data"])
def test_any_other_content_type_is_415(api, db, execution, content_type):
    headers = {"Content-Type": content_type} if content_type else {}
    with db.unchanged():
        response = api.post(PATH, data=ndjson(execution()), headers=headers)
    assert_problem(response, 415, "unsupported-media-type")


def test_a_batch_of_1000_is_accepted(ingest, execution, db):
    body = ingest([execution() for _ in range(1000)]).json()
    assert (body["received"], body["inserted"], len(body["ids"])) == (1000, 1000, 1000)
    assert db.count("executions") == 1000


def test_a_batch_of_1001_is_422_on_body(api, db, execution):
    with db.unchanged():
        response = api.post(PATH, json=[execution() for _ in range(1001)])
    assert "body" in error_fields(response)


def test_an_empty_batch_is_422_on_body(api, db):
    with db.unchanged():
        response = api.post(PATH, json=[])
    assert "body" in error_fields(response)


def test_the_executions_location_takes_bodies_over_1_mib(ingest, execution, db):
    batch = [execution(metadata={"pad%d" % k: "x" * 1000 for k in range(3)})
             for _ in range(400)]
    assert len(json.dumps(batch)) > MIB
    assert ingest(batch).json()["inserted"] == 400
    assert db.count("executions") == 400


@pytest.mark.parametrize("raw", [b'{"model": "m",', b'[{"model": "m"},]', b"{'a': 1}"],
                         ids=["unterminated", "trailing comma", "single quotes"])
def test_malformed_json_in_forms_1_and_2_is_400(api, db, raw):
    with db.unchanged():
        response = api.post(PATH, data=raw, headers={"Content-Type": "application/json"})
    assert_problem(response, 400, "bad-request")


@pytest.mark.parametrize("content_type, raw", [
    ("application/json", b""),
    ("application/x-ndjson", b""),
    ("application/x-ndjson", b"\n  \n\t\n"),
], ids=["json", "ndjson", "ndjson of blank lines"])
def test_an_empty_body_is_422_on_body(api, db, content_type, raw):
    with db.unchanged():
        response = api.post(PATH, data=raw, headers={"Content-Type": content_type})
    assert_problem(response, 422, "validation")
    assert error_fields(response) == {"body"}


def test_a_json_body_over_4_mib_is_413(api, db, execution):
    body = json.dumps([execution(metadata={"pad": "x" * 5000}) for _ in range(900)]).encode()
    assert len(body) > 4 * MIB
    with db.unchanged():
        declared = api.post(PATH, data=body, headers={"Content-Type": "application/json"})
        chunked = api.post(PATH, data=iter([body[:MIB], body[MIB:]]),
                           headers={"Content-Type": "application/json"})
    assert_problem(declared, 413, "payload-too-large")
    assert_problem(chunked, 413, "payload-too-large")
    assert "4 MiB" in chunked.json()["detail"]


@pytest.mark.parametrize("body", [
    b"[" + b"0," * 160000 + b"0]",
    b"[" + b"{}," * 80000 + b"{}]",
    b"[" + b",".join([b"[" * 2000 + b"]" * 2000] * 81) + b"]",
], ids=["zeros", "empty objects", "deep arrays"])
def test_a_json_body_with_more_values_than_a_batch_is_422_on_body_unread(api, db, body):
    with db.unchanged():
        response = api.post(PATH, data=body, headers={"Content-Type": "application/json"})
    assert_problem(response, 422, "validation")
    assert error_fields(response) == {"body"}
    assert "160000 values" in response.json()["errors"][0]["message"]


def test_a_batch_of_1000_with_50_metadata_members_each_is_stored(ingest, db, execution):
    batch = [execution(metadata={"key%02d" % k: "value %d" % k for k in range(50)})
             for _ in range(1000)]
    assert ingest(batch).json()["inserted"] == 1000
    assert db.count("executions") == 1000


# ---------------------------------------------------------------- what is stored

def test_every_field_is_stored(db, ingest, execution, make_agent, make_version):
    agent = make_agent()
    version = make_version(agent["id"], "2.1")
    started = now_utc() - datetime.timedelta(minutes=30)
    sent = execution(id=str(uuid.uuid4()), agent_id=agent["id"], version="2.1", model="claude-x",
                     started_at=utc(started), latency_ms=2500, status="failed",
                     prompt_tokens=1000, completion_tokens=200, cache_read_tokens=300,
                     cost_usd=0.0123, error={"category": "tool_error", "message": "boom"},
                     task_id="task-9", metadata={"region": "eu", "try": 2, "ok": False,
                                                 "note": None})
    ingest(sent)
    row = stored(db, sent["id"])
    assert row["agent_id"] == agent["id"]
    assert row["agent_version_id"] == version["id"]
    assert (row["model"], row["latency_ms"], row["status"], row["task_id"]) == (
        "claude-x", 2500, "failed", "task-9")
    assert (row["prompt_tokens"], row["completion_tokens"], row["cache_read_tokens"]) == (
        1000, 200, 300)
    assert row["cost_usd"] == decimal.Decimal("0.0123")
    assert (row["error_category"], row["error_message"]) == ("tool_error", "boom")
    assert row["metadata"] == sent["metadata"]
    assert abs(row["started_at"] - started) < datetime.timedelta(microseconds=1)


def test_defaults_are_zero_tokens_zero_cost_and_empty_metadata(db, ingest, execution):
    execution_id = ingest(execution()).json()["ids"][0]
    row = stored(db, execution_id)
    assert (row["prompt_tokens"], row["completion_tokens"], row["cache_read_tokens"],
            row["cost_usd"], row["metadata"]) == (0, 0, 0, 0, {})
    assert (row["error_category"], row["error_message"], row["agent_version_id"]) == (
        None, None, None)
    assert db.count("evaluation_rows") == 0


def test_started_at_with_an_offset_is_the_same_instant(db, ingest, execution):
    execution_id = ingest(execution(started_at="2026-01-10T12:30:00.250+02:00")).json()["ids"][0]
    assert stored(db, execution_id)["started_at"] == datetime.datetime(
        2026, 1, 10, 10, 30, 0, 250000, tzinfo=datetime.timezone.utc)


def test_finished_at_instead_of_latency(db, ingest, execution):
    started = now_utc() - datetime.timedelta(hours=2)
    finished = started + datetime.timedelta(seconds=3, milliseconds=250)
    execution_id = ingest(execution(started_at=utc(started),
                                    finished_at=utc(finished))).json()["ids"][0]
    row = stored(db, execution_id)
    assert abs(row["finished_at"] - finished) < datetime.timedelta(milliseconds=1)
    assert row["latency_ms"] in (None, 3250)


def test_an_embedded_evaluation_is_stored_as_the_executions_evaluation(db, ingest, execution):
    execution_id = ingest(execution(evaluation={"passed": True, "score": 0.75,
                                                "evaluator": "judge-1"})).json()["ids"][0]
    assert db.rows("SELECT passed, score, evaluator FROM evaluation_rows WHERE execution_id = %s",
                   (execution_id,)) == [(True, 0.75, "judge-1")]


def test_an_evaluation_with_only_passed_stores_null_score_and_evaluator(db, ingest, execution):
    execution_id = ingest(execution(status="failed",
                                    evaluation={"passed": False})).json()["ids"][0]
    assert db.rows("SELECT passed, score, evaluator FROM evaluation_rows WHERE execution_id = %s",
                   (execution_id,)) == [(False, None, None)]


def test_an_unknown_agent_name_registers_the_agent(api, db, ingest, execution):
    execution_id = ingest(execution(agent_name="brand-new")).json()["ids"][0]
    agents = db.rows("SELECT id FROM agents WHERE name = 'brand-new'")
    assert len(agents) == 1
    assert stored(db, execution_id)["agent_id"] == agents[0][0]
    response = api.get("/api/v1/agents/%s" % agents[0][0])
    assert response.status_code == 200
    assert response.json()["name"] == "brand-new"


def test_one_new_agent_name_in_a_batch_registers_it_once(db, ingest, execution):
    ingest([execution(agent_name="twice"), execution(agent_name="twice")])
    assert db.count("agents", "name = 'twice'") == 1
    assert db.count("executions") == 2


def test_a_known_agent_name_uses_that_agent(db, ingest, execution, make_agent):
    agent = make_agent("known")
    execution_id = ingest(execution(agent_name="known")).json()["ids"][0]
    assert db.count("agents") == 1
    assert stored(db, execution_id)["agent_id"] == agent["id"]


def test_an_unknown_version_is_registered_for_that_agent(db, ingest, execution, make_agent):
    agent = make_agent()
    execution_id = ingest(execution(agent_id=agent["id"], version="3.0")).json()["ids"][0]
    versions = db.rows("SELECT id, is_active FROM agent_versions WHERE agent_id = %s "
                       "AND version = '3.0'", (agent["id"],))
    assert len(versions) == 1
    assert stored(db, execution_id)["agent_version_id"] == versions[0][0]


def test_a_known_version_is_reused(db, ingest, execution, make_agent, make_version):
    agent = make_agent()
    version = make_version(agent["id"], "1.0")
    body = ingest([execution(agent_id=agent["id"], version="1.0") for _ in range(3)]).json()
    assert db.count("agent_versions") == 1
    for execution_id in body["ids"]:
        assert stored(db, execution_id)["agent_version_id"] == version["id"]


def test_a_version_of_a_newly_named_agent_is_registered_with_it(db, ingest, execution):
    execution_id = ingest(execution(agent_name="fresh", version="0.1")).json()["ids"][0]
    row = db.row("SELECT a.id AS agent, v.id AS version FROM agents a "
                 "JOIN agent_versions v ON v.agent_id = a.id "
                 "WHERE a.name = 'fresh' AND v.version = '0.1'")
    assert stored(db, execution_id)["agent_version_id"] == row["version"]


def test_one_version_string_of_two_agents_is_two_versions(db, ingest, execution):
    ingest([execution(agent_name="a1", version="1.0"), execution(agent_name="a2", version="1.0")])
    assert db.count("agent_versions", "version = '1.0'") == 2



@pytest.mark.parametrize("known", [True, False], ids=["one-insert", "registering"])
def test_a_single_execution_is_stored_alike_for_known_and_new_agents(api, db, ingest, execution,
                                                                     make_agent, make_version,
                                                                     known):
    # a single POST of a known agent and version is one INSERT; otherwise
    # the statement that registers them runs: same row either way
    name = "single-%s" % uuid.uuid4().hex[:8]
    if known:
        make_version(make_agent(name)["id"], "4.0")
    started = now_utc() - datetime.timedelta(minutes=5)
    sent = execution(agent_name=name, version="4.0", started_at=utc(started),
                     finished_at=utc(started + datetime.timedelta(milliseconds=1500)),
                     status="timeout", error={"category": "deadline", "message": None},
                     evaluation={"passed": False, "score": 0.1, "evaluator": "rule"})
    row = stored(db, ingest(sent).json()["ids"][0])
    assert row["agent_id"] == db.scalar("SELECT id FROM agents WHERE name = %s", (name,))
    assert row["agent_version_id"] == db.scalar(
        "SELECT id FROM agent_versions WHERE agent_id = %s AND version = '4.0'", (row["agent_id"],))
    assert row["finished_at"] - row["started_at"] == datetime.timedelta(milliseconds=1500)
    assert row["latency_ms"] == 1500
    assert (row["error_category"], row["error_message"]) == ("deadline", None)
    assert (row["eval_passed"], row["eval_score"], row["eval_evaluator"]) == (False, 0.1, "rule")
    assert row["evaluated_at"] == row["ingested_at"]


# ---------------------------------------------------------------- the two ways of the COPY forms
# Streams (and arrays of 50 or more) COPY rows without a client id straight
# into executions, with agents and versions the worker resolved; from the
# first row with a client id on, rows go through the staging table.

def test_a_row_copied_straight_is_stored_as_the_staging_table_stores_it(api, db, make_agent):
    agent = make_agent()
    started = now_utc() - datetime.timedelta(minutes=30)
    fields = dict(agent_id=agent["id"], version="3.0", model="claude-x", started_at=utc(started),
                  finished_at=utc(started + datetime.timedelta(seconds=2, milliseconds=345)),
                  status="failed", prompt_tokens=1000, completion_tokens=200,
                  cache_read_tokens=300, cost_usd=0.0123,
                  error={"category": "tool_error", "message": "tab\there, \\ and\nnewline"},
                  evaluation={"passed": False, "score": 0.25, "evaluator": "judge"},
                  task_id="task-9", metadata={"region": "eu", "try": 2, "ok": False, "note": None})
    staged_id = str(uuid.uuid4())
    response = api.post_ndjson(PATH, ndjson(fields, dict(fields, id=staged_id)))
    assert response.status_code == 200, response.text
    assert response.json() == {"received": 2, "inserted": 2, "duplicates": 0}
    direct, staged = (db.row("SELECT * FROM executions WHERE id %s %%s" % op, (staged_id,))
                      for op in ("<>", "="))
    for row in (direct, staged):
        del row["id"]
    assert direct == staged
    assert direct["latency_ms"] == 2345
    assert direct["error_message"] == "tab\there, \\ and\nnewline"
    assert db.count("agent_versions", "agent_id = %s AND version = '3.0'", (agent["id"],)) == 1


# Rows COPYed straight into executions are sent in PostgreSQL's binary format
# (numbers, times and UUIDs encoded by the worker), staged rows as text: the
# two must store the same values at the edges of each type.
EDGES = [
    ({"cost_usd": 5e-07}, {"cost_usd": decimal.Decimal("0.000001")}),  # rounds half up
    ({"cost_usd": 4e-07}, {"cost_usd": decimal.Decimal("0.000000")}),
    ({"cost_usd": 999999.9999995}, {"cost_usd": decimal.Decimal("1000000.000000")}),
    ({"cost_usd": 7, "prompt_tokens": 1000000000}, {"cost_usd": decimal.Decimal("7.000000"),
                                                    "prompt_tokens": 1000000000}),
    ({"cost_usd": 123.456789}, {"cost_usd": decimal.Decimal("123.456789")}),
    ({"evaluation": {"passed": True, "score": 1}}, {"eval_score": 1.0, "eval_evaluator": None}),
    ({"evaluation": {"passed": True, "score": 0.1}}, {"eval_score": 0.1}),
    ({"evaluation": {"passed": False}}, {"eval_passed": False, "eval_score": None}),
    ({}, {"eval_passed": None, "evaluated_at": None}),
    ({"started_at": "1999-12-31T23:59:59.999999Z", "latency_ms": 0},
     {"started_at": datetime.datetime(1999, 12, 31, 23, 59, 59, 999999, datetime.timezone.utc)}),
    ({"started_at": "1969-07-20T20:17:40.5+01:00", "latency_ms": 86400000},
     {"finished_at": datetime.datetime(1969, 7, 21, 19, 17, 40, 500000, datetime.timezone.utc)}),
    ({"model": "modèle-✓", "task_id": "🚀", "status": "failed",
      "error": {"category": "naïve", "message": "\\N\t\u00e9\r\n"},
      "metadata": {"clé": "välue ✓", "n": 1.5}},
     {"model": "modèle-✓", "task_id": "🚀", "error_message": "\\N\t\u00e9\r\n",
      "metadata": {"clé": "välue ✓", "n": 1.5}}),
]


@pytest.mark.parametrize("fields,expected", EDGES, ids=range(len(EDGES)))
def test_edge_values_are_stored_alike_copied_straight_and_staged(api, db, make_agent, fields,
                                                                  expected):
    agent = make_agent()
    row = dict(dict(agent_id=agent["id"], model="m", status="succeeded", latency_ms=10,
                    started_at=utc(now_utc() - datetime.timedelta(minutes=5))), **fields)
    staged_id = str(uuid.uuid4())
    response = api.post_ndjson(PATH, ndjson(row, dict(row, id=staged_id)))
    assert response.status_code == 200, response.text
    direct, staged = (db.row("SELECT * FROM executions WHERE agent_id = %%s AND id %s %%s" % op,
                             (agent["id"], staged_id)) for op in ("<>", "="))
    for stored_row in (direct, staged):
        del stored_row["id"]
    assert direct == staged
    assert {key: direct[key] for key in expected} == expected


def test_a_client_id_after_copied_rows_is_deduplicated_against_them_and_the_table(
        api, db, ingest, execution):
    existing = str(uuid.uuid4())
    ingest(execution(id=existing))
    again = str(uuid.uuid4())
    body = ndjson(*[execution() for _ in range(3)],
                  execution(id=again, task_id="first"), execution(),
                  execution(id=existing), execution(id=again, task_id="second"))
    response = api.post_ndjson(PATH, body)
    assert response.json() == {"received": 7, "inserted": 5, "duplicates": 2}
    assert stored(db, again)["task_id"] == "first"
    assert db.count("executions") == 6


def test_unknown_agents_are_listed_from_both_ways_in_line_order(api, db, execution, make_agent):
    agent = make_agent()
    other = "00000000-0000-4000-8000-000000000001"
    body = ndjson(execution(agent_id=agent["id"]), execution(agent_id=UNKNOWN_ID),
                  execution(agent_id=agent["id"]), execution(agent_id=other, id=str(uuid.uuid4())),
                  execution(agent_name="would-be-registered"))
    with db.unchanged():
        response = api.post_ndjson(PATH, body)
    assert ingest_errors(response) == [(2, "agent_id"), (4, "agent_id")]
    assert db.count("agents", "name = 'would-be-registered'") == 0


def test_a_stream_naming_more_agents_than_the_worker_resolves_is_stored_whole(api, db, execution):
    # the worker resolves 1,024 (agent, version) pairs; the rest go through the staging table
    body = ndjson(*[execution(agent_name="many-%04d" % n, version="v%d" % (n % 3))
                    for n in range(1100)])
    response = api.post_ndjson(PATH, body)
    assert response.json() == {"received": 1100, "inserted": 1100, "duplicates": 0}
    assert db.count("agents", "name LIKE 'many-%%'") == 1100
    assert db.count("agent_versions") == 1100
    assert db.scalar("SELECT count(*) FROM executions e JOIN agent_versions v "
                     "ON v.id = e.agent_version_id AND v.agent_id = e.agent_id") == 1100


# ---------------------------------------------------------------- validation

def minutes_ahead(minutes):
    """Fields computed when the test runs: started_at this many minutes from now."""
    return lambda: {"started_at": utc(now_utc() + datetime.timedelta(minutes=minutes))}


def finished_after(**delta):
    """Fields: started two days ago, finished `delta` later."""
    def fields():
        started = now_utc() - datetime.timedelta(days=2)
        return {"started_at": utc(started),
                "finished_at": utc(started + datetime.timedelta(**delta))}
    return fields


def given(fields):
    return fields() if callable(fields) else fields


# (id, fields of the execution, the field the 422 must name)
INVALID = [
    ("unknown member", {"colour": "red"}, "colour"),
    ("model missing", {"model": DROP}, "model"),
    ("model not a string", {"model": 5}, "model"),
    ("model null", {"model": None}, "model"),
    ("model empty", {"model": ""}, "model"),
    ("model too long", {"model": "m" * 101}, "model"),
    ("started_at missing", {"started_at": DROP}, "started_at"),
    ("started_at not a time", {"started_at": "yesterday"}, "started_at"),
    ("started_at not a date", {"started_at": "2026-02-30T00:00:00Z"}, "started_at"),
    ("started_at without offset", {"started_at": "2026-01-01T00:00:00"}, "started_at"),
    ("started_at a number", {"started_at": 1767225600}, "started_at"),
    ("started_at 10 minutes ahead", minutes_ahead(10), "started_at"),
    ("status missing", {"status": DROP}, "status"),
    ("status unknown", {"status": "done"}, "status"),
    ("status not a string", {"status": 1}, "status"),
    ("latency negative", {"latency_ms": -1}, "latency_ms"),
    ("latency over a day", {"latency_ms": 86400001}, "latency_ms"),
    ("latency fractional", {"latency_ms": 1.5}, "latency_ms"),
    ("latency a string", {"latency_ms": "5"}, "latency_ms"),
    ("finished before started", finished_after(milliseconds=-1), "finished_at"),
    ("finished over a day later", finished_after(milliseconds=86400001), "finished_at"),
    ("finished_at not a time", {"finished_at": "soon"}, "finished_at"),
    ("prompt_tokens negative", {"prompt_tokens": -1}, "prompt_tokens"),
    ("completion_tokens negative", {"completion_tokens": -1}, "completion_tokens"),
    ("cache_read_tokens negative", {"cache_read_tokens": -1}, "cache_read_tokens"),
    ("prompt_tokens over 10^9", {"prompt_tokens": 10 ** 9 + 1}, "prompt_tokens"),
    ("completion_tokens fractional", {"completion_tokens": 1.5}, "completion_tokens"),
    ("cache_read_tokens a string", {"cache_read_tokens": "10"}, "cache_read_tokens"),
    ("cost negative", {"cost_usd": -0.01}, "cost_usd"),
    ("cost over a million", {"cost_usd": 1000000.01}, "cost_usd"),
    ("cost a string", {"cost_usd": "1"}, "cost_usd"),
    ("error with succeeded", {"error": {"category": "x"}}, "error"),
    ("error not an object", {"status": "failed", "error": "boom"}, "error"),
    ("error without category", {"status": "failed", "error": {"message": "m"}},
     "error.category"),
    ("error category empty", {"status": "failed", "error": {"category": ""}}, "error.category"),
    ("error category too long", {"status": "failed", "error": {"category": "c" * 101}},
     "error.category"),
    ("error message too long", {"status": "failed",
                                "error": {"category": "c", "message": "m" * 10001}},
     "error.message"),
    ("error unknown member", {"status": "failed", "error": {"category": "c", "code": 5}},
     "error.code"),
    ("evaluation not an object", {"evaluation": "good"}, "evaluation"),
    ("evaluation without passed", {"evaluation": {"score": 0.5}}, "evaluation.passed"),
    ("evaluation passed a string", {"evaluation": {"passed": "yes"}}, "evaluation.passed"),
    ("evaluation score over 1", {"evaluation": {"passed": True, "score": 1.5}},
     "evaluation.score"),
    ("evaluation score negative", {"evaluation": {"passed": True, "score": -0.1}},
     "evaluation.score"),
    ("evaluation evaluator empty", {"evaluation": {"passed": True, "evaluator": ""}},
     "evaluation.evaluator"),
    ("evaluation unknown member", {"evaluation": {"passed": True, "extra": 1}},
     "evaluation.extra"),
    ("metadata nested object", {"metadata": {"k": {"a": 1}}}, "metadata.k"),
    ("metadata array value", {"metadata": {"k": [1, 2]}}, "metadata.k"),
    ("metadata not an object", {"metadata": "x"}, "metadata"),
    ("metadata an array", {"metadata": []}, "metadata"),
    ("metadata 51 keys", {"metadata": {"k%d" % i: i for i in range(51)}}, "metadata"),
    ("metadata value too long", {"metadata": {"k": "v" * 1001}}, "metadata.k"),
    ("id not a uuid", {"id": "not-a-uuid"}, "id"),
    ("id a number", {"id": 5}, "id"),
    ("agent_id not a uuid", {"agent_id": "nope"}, "agent_id"),
    ("agent_name empty", {"agent_name": ""}, "agent_name"),
    ("agent_name too long", {"agent_name": "a" * 256}, "agent_name"),
    ("agent_name not a string", {"agent_name": 5}, "agent_name"),
    ("version empty", {"version": ""}, "version"),
    ("version too long", {"version": "v" * 101}, "version"),
    ("version not a string", {"version": 1}, "version"),
    ("task_id empty", {"task_id": ""}, "task_id"),
    ("task_id too long", {"task_id": "t" * 256}, "task_id"),
    ("task_id not a string", {"task_id": 5}, "task_id"),
]

# (id, fields, the fields the 422 may name: one or both of them)
EITHER_OF = [
    ("agent_id and agent_name", {"agent_id": UNKNOWN_ID, "agent_name": "x"},
     {"agent_id", "agent_name"}),
    ("neither agent_id nor agent_name", {"agent_name": DROP}, {"agent_id", "agent_name"}),
    ("latency_ms and finished_at", {"latency_ms": 5, "finished_at": utc(now_utc())},
     {"latency_ms", "finished_at"}),
    ("neither latency_ms nor finished_at", {"latency_ms": DROP}, {"latency_ms", "finished_at"}),
]


@pytest.mark.parametrize("fields, field", [c[1:] for c in INVALID], ids=[c[0] for c in INVALID])
def test_invalid_execution_is_422_naming_the_field(api, db, execution, fields, field):
    with db.unchanged():
        response = api.post(PATH, json=execution(**given(fields)))
    assert ingest_errors(response) == [(1, field)]


@pytest.mark.parametrize("fields, field", [c[1:] for c in INVALID], ids=[c[0] for c in INVALID])
def test_invalid_stream_line_is_422_naming_its_line_and_field(api, db, execution, fields, field):
    body = ndjson(execution(), execution(), execution(**given(fields)), execution())
    with db.unchanged():
        response = api.post_ndjson(PATH, body)
    assert ingest_errors(response) == [(3, field)]


@pytest.mark.parametrize("fields, names", [c[1:] for c in EITHER_OF],
                         ids=[c[0] for c in EITHER_OF])
def test_exactly_one_of_two_members_is_required(api, db, execution, fields, names):
    with db.unchanged():
        response = api.post(PATH, json=execution(**fields))
    errors = ingest_errors(response)
    assert errors and {line for line, _ in errors} == {1}
    assert {field for _, field in errors} <= names


def test_metadata_nested_object_message(api, db, execution):
    with db.unchanged():
        response = api.post(PATH, json=execution(metadata={"region": {"eu": 1}}))
    error, = assert_problem(response, 422, "validation")["errors"]
    assert error["field"] == "metadata.region"
    assert "must be a string, number, boolean or null" in error["message"]


def test_metadata_key_too_long_is_422_on_metadata(api, db, execution):
    with db.unchanged():
        response = api.post(PATH, json=execution(metadata={"k" * 101: 1}))
    (line, field), = ingest_errors(response)
    assert line == 1 and field.startswith("metadata")


def test_metadata_empty_key_is_422_on_metadata(api, db, execution):
    with db.unchanged():
        response = api.post(PATH, json=execution(metadata={"": 1}))
    (line, field), = ingest_errors(response)
    assert line == 1 and field.startswith("metadata")


# Accepted at the limits (the document must agree: the client checks the body).
BOUNDARIES = [
    ("started_at 4 minutes ahead", minutes_ahead(4)),
    ("latency 0", {"latency_ms": 0}),
    ("latency a day", {"latency_ms": 86400000}),
    ("finished when started", finished_after()),
    ("finished a day later", finished_after(milliseconds=86400000)),
    ("tokens 10^9", {"prompt_tokens": 10 ** 9, "completion_tokens": 10 ** 9,
                     "cache_read_tokens": 10 ** 9}),
    ("tokens 0", {"prompt_tokens": 0, "completion_tokens": 0, "cache_read_tokens": 0}),
    ("cost a million", {"cost_usd": 1000000}),
    ("cost 0", {"cost_usd": 0}),
    ("model 100 characters", {"model": "m" * 100}),
    ("agent_name 255 characters", {"agent_name": "a" * 255}),
    ("version 100 characters", {"version": "v" * 100}),
    ("task_id 255 characters", {"task_id": "t" * 255}),
    ("metadata 50 keys", {"metadata": {"k%d" % i: i for i in range(50)}}),
    ("metadata long key and value", {"metadata": {"k" * 100: "v" * 1000}}),
    ("metadata scalars", {"metadata": {"s": "x", "i": -3, "f": 1.5, "b": True, "n": None}}),
    ("score 0 and 1", {"evaluation": {"passed": False, "score": 0, "evaluator": None}}),
    ("score 1", {"evaluation": {"passed": True, "score": 1}}),
    ("score null", {"evaluation": {"passed": True, "score": None}}),
    ("error message empty", {"status": "failed", "error": {"category": "c", "message": ""}}),
    ("error without message", {"status": "timeout", "error": {"category": "c"}}),
    ("failed without error", {"status": "failed"}),
    ("cancelled", {"status": "cancelled"}),
    ("offset time", {"started_at": "2026-01-01T23:59:59.999999-05:30"}),
]


@pytest.mark.parametrize("fields", [c[1] for c in BOUNDARIES], ids=[c[0] for c in BOUNDARIES])
def test_execution_at_the_limits_is_accepted(db, ingest, execution, fields):
    assert ingest(execution(**given(fields))).json()["inserted"] == 1
    assert db.count("executions") == 1


def test_unknown_agent_id_is_422_no_such_agent_with_its_line(api, db, execution, make_agent):
    agent = make_agent()
    body = ndjson(execution(agent_id=agent["id"]), execution(agent_id=UNKNOWN_ID))
    with db.unchanged():
        response = api.post_ndjson(PATH, body)
    error, = assert_problem(response, 422, "validation")["errors"]
    assert (error["line"], error["field"]) == (2, "agent_id")
    assert "no such agent" in error["message"]


@BATCH_WAYS
def test_unknown_agent_id_in_a_batch_names_its_index(api, db, execution, make_agent, pad):
    agent = make_agent()
    batch = ([execution(agent_id=agent["id"])] * 3 + [execution(agent_id=UNKNOWN_ID)]
             + [execution() for _ in range(pad)])
    with db.unchanged():
        response = api.post(PATH, json=batch)
    assert ingest_errors(response) == [(4, "agent_id")]


@BATCH_WAYS
def test_bad_items_of_a_batch_are_named_by_index_in_order(api, db, execution, pad):
    batch = [execution(), execution(), execution(status="x"), execution(),
             execution(cost_usd=-1), execution()] + [execution() for _ in range(pad)]
    with db.unchanged():
        response = api.post(PATH, json=batch)
    assert ingest_errors(response) == [(3, "status"), (5, "cost_usd")]
    assert re.search(r"\b2\b", response.json()["detail"]), response.json()["detail"]


def test_several_bad_fields_of_one_line_are_all_named(api, db, execution):
    with db.unchanged():
        response = api.post_ndjson(PATH, ndjson(execution(model="", status="x", cost_usd=-1)))
    errors = ingest_errors(response)
    assert sorted(errors) == [(1, "cost_usd"), (1, "model"), (1, "status")]


def test_only_the_first_100_bad_lines_are_listed_and_detail_counts_all(api, db, execution):
    body = ndjson(*[execution(status="nope") for _ in range(150)])
    with db.unchanged():
        response = api.post_ndjson(PATH, body)
    errors = ingest_errors(response)
    assert [line for line, _ in errors] == list(range(1, 101))
    assert re.search(r"\b150\b", response.json()["detail"]), response.json()["detail"]


def test_line_numbers_count_blank_lines(api, db, execution):
    body = ndjson(execution()) + b"\n\n" + ndjson(execution(status="bad"))
    with db.unchanged():
        response = api.post_ndjson(PATH, body)
    assert ingest_errors(response) == [(4, "status")]


def test_malformed_stream_line_is_422_on_body_with_its_line_and_column(api, db, execution):
    body = ndjson(execution(), b'{"model": "m", oops}', execution())
    with db.unchanged():
        response = api.post_ndjson(PATH, body)
    error, = assert_problem(response, 422, "validation")["errors"]
    assert (error["line"], error["field"]) == (2, "body")
    assert re.search(r"column\D{0,3}\d+", error["message"], re.I), error["message"]


@pytest.mark.parametrize("line", [b"[1, 2]", b"42", b'"text"', b"null"])
def test_stream_line_that_is_not_an_object_is_422_on_body(api, db, execution, line):
    with db.unchanged():
        response = api.post_ndjson(PATH, ndjson(execution(), line))
    assert ingest_errors(response) == [(2, "body")]


@pytest.mark.parametrize("raw", [b"42", b"null", b'"x"'])
def test_single_body_that_is_not_an_object_is_422_on_body(api, db, raw):
    with db.unchanged():
        response = api.post(PATH, data=raw, headers={"Content-Type": "application/json"})
    assert ingest_errors(response) == [(1, "body")]


def test_batch_item_that_is_not_an_object_is_422_on_body(api, db, execution):
    with db.unchanged():
        response = api.post(PATH, json=[execution(), 7])
    assert ingest_errors(response) == [(2, "body")]


def test_stream_line_over_1_mib_is_422(api, db, execution):
    line = json.dumps(execution()).encode()
    line = line[:-1] + b" " * MIB + b"}"
    with db.unchanged():
        response = api.post_ndjson(PATH, ndjson(execution(), line, execution()))
    assert [l for l, _ in ingest_errors(response)] == [2]


def test_a_long_line_of_countless_values_is_refused_unread(api, db, execution):
    # jansson's memory grows with the values it reads: a line far beyond any
    # execution's ~75 values is refused before it is read
    many = execution(metadata={"k%d" % i: i for i in range(3000)})
    fifty = execution(metadata={"k%d" % i: "x" * 400 for i in range(51)})  # long, few values
    with db.unchanged():
        response = api.post_ndjson(PATH, ndjson(execution(), many, fifty))
    assert response.status_code == 422, response.text
    assert response.json()["errors"] == [
        {"line": 2, "field": "body",
         "message": "has far more values than an execution (metadata has at most 50 members)"},
        {"line": 3, "field": "metadata", "message": "must have at most 50 members"}]


def test_a_bad_line_registers_no_agent_and_no_version(api, db, execution):
    body = ndjson(execution(agent_name="never", version="9"), execution(latency_ms=-5))
    with db.unchanged():
        response = api.post_ndjson(PATH, body)
    assert ingest_errors(response) == [(2, "latency_ms")]


# ---------------------------------------------------------------- 100,000 lines

LINES = 100_000


def stream_lines(agent_id, count, bad_line=None, id_base=None):
    """`count` NDJSON lines (bytes, each ending in a newline) for agent_id;
    line bad_line (1-based) has a negative latency. With id_base (a 96-bit
    int) line n has the id made of id_base and n."""
    started = utc(now_utc() - datetime.timedelta(hours=1))
    head = ('{"agent_id":"%s","model":"bulk-model","started_at":"%s","status":"succeeded",'
            '"prompt_tokens":120,"completion_tokens":30,"cost_usd":0.0004,"latency_ms":'
            % (agent_id, started)).encode()
    if id_base is None:
        lines = [b"%s%d}\n" % (head, n % 5000) for n in range(1, count + 1)]
    else:
        lines = [b'%s%d,"id":"%s"}\n' % (head, n % 5000, str(uuid.UUID(int=(id_base << 32) | n))
                                         .encode()) for n in range(1, count + 1)]
    if bad_line is not None:
        lines[bad_line - 1] = head + b"-1}\n"
    return lines


def chunks(lines, per_chunk=2000):
    for start in range(0, len(lines), per_chunk):
        yield b"".join(lines[start:start + per_chunk])


def test_bad_line_50000_of_a_chunked_100000_line_stream_stores_nothing(api, db, make_agent):
    agent = make_agent()
    lines = stream_lines(agent["id"], LINES, bad_line=50_000)
    with db.unchanged():
        response = api.post_ndjson(PATH, chunks(lines))
    assert ingest_errors(response) == [(50_000, "latency_ms")]
    assert re.search(r"\b1\b", response.json()["detail"]), response.json()["detail"]
    assert db.count("executions") == 0


def test_bad_line_50000_of_a_100000_line_body_with_length_stores_nothing(api, db, make_agent):
    agent = make_agent()
    body = b"".join(stream_lines(agent["id"], LINES, bad_line=50_000))
    with db.unchanged():
        response = api.post_ndjson(PATH, body)
    assert ingest_errors(response) == [(50_000, "latency_ms")]
    assert db.count("executions") == 0


def test_a_100000_line_stream_is_stored_whole(api, db, make_agent):
    agent = make_agent()
    response = api.post_ndjson(PATH, chunks(stream_lines(agent["id"], LINES)))
    assert response.status_code == 200, response.text[:2000]
    assert response.json() == {"received": LINES, "inserted": LINES, "duplicates": 0}
    assert db.count("executions", "agent_id = %s", (agent["id"],)) == LINES


def test_rows_sent_in_sorted_runs_keep_their_own_values(api, db, make_agent):
    # Rows COPYed straight into executions go out in runs of 2 MiB sorted by
    # started_at. 40,000 rows scattered over a day make several runs; an
    # agent new at line 20,000 pauses the COPY (its pair is resolved), and a
    # client id on the last line sends the rest through the staging table.
    agent, count = make_agent(), 40_000
    newcomer = "agent-%s" % uuid.uuid4().hex[:12]
    base = now_utc().replace(microsecond=0) - datetime.timedelta(days=1)
    started = {n: base + datetime.timedelta(seconds=(n * 7919) % 86400, microseconds=n)
               for n in range(1, count + 1)}
    lines = []
    for n in range(1, count + 1):
        row = {"agent_id": agent["id"], "model": "m", "started_at": utc(started[n]),
               "latency_ms": n, "status": "succeeded", "metadata": {"line": n}}
        if n >= 20_000 and n % 2 == 0:
            del row["agent_id"]
            row["agent_name"] = newcomer
        if n == count:
            row["id"] = str(uuid.uuid4())
        lines.append(row)
    response = api.post_ndjson(PATH, ndjson(*lines))
    assert response.status_code == 200, response.text[:2000]
    assert response.json() == {"received": count, "inserted": count, "duplicates": 0}
    stored_rows = db.rows("SELECT e.latency_ms, e.started_at, e.metadata, a.name "
                          "FROM executions e JOIN agents a ON a.id = e.agent_id "
                          "WHERE a.id = %s OR a.name = %s", (agent["id"], newcomer))
    assert sorted(n for n, _, _, _ in stored_rows) == list(range(1, count + 1))
    for n, started_at, metadata, name in stored_rows:
        assert (started_at, metadata) == (started[n], {"line": n})
        assert name == (newcomer if n >= 20_000 and n % 2 == 0 else agent["name"])


# ---------------------------------------------------------------- clients that go away

def raw_post(stack, content_length, parts, chunked=False):
    """Send a POST /executions by hand: the headers, then each part, then
    close the connection without finishing the body. Returns the worker's
    log line of that request (it logs when it is done with it)."""
    log = stack.log_file("streams")      # where nginx sends NDJSON streams
    offset = log.stat().st_size
    port = int(stack.base_url.rsplit(":", 1)[1])
    head = ("POST %s HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/x-ndjson\r\n"
            "Authorization: Bearer %s\r\n" % (PATH, stack.key))
    head += ("Transfer-Encoding: chunked\r\n" if chunked
             else "Content-Length: %d\r\n" % content_length)
    with socket.create_connection(("127.0.0.1", port), timeout=10) as sock:
        sock.sendall((head + "\r\n").encode())
        for part in parts:
            sock.sendall(b"%x\r\n%s\r\n" % (len(part), part) if chunked else part)
        time.sleep(0.3)   # let nginx pass what it has to the worker

    def logged():
        with log.open("rb") as f:
            f.seek(offset)
            lines = [r for r in log_records(f.read().decode(errors="replace"))
                     if r.get("path") == PATH and "status" in r]
        return lines[0] if lines else None
    line = wait_for(logged, 10)
    assert line, "the worker never finished the broken request"
    return line


def assert_nothing_stored(db, before, logged):
    """The worker refused the broken body, and no execution appears
    afterwards (for a while); every table is as before."""
    status = logged["status"]
    assert status == 400, logged   # the body ended early, whatever its last bytes were
    appeared = wait_for(lambda: db.count("executions") > 0, 0.5)
    assert not appeared, "executions were stored from a broken body"
    assert db.snapshot() == before


def assert_still_serving(api, db, execution):
    response = api.post_ndjson(PATH, ndjson(execution(), execution()))
    assert response.status_code == 200, response.text
    assert response.json()["inserted"] == 2
    assert db.count("executions") == 2


def test_client_gone_after_1_mib_of_a_10_mib_body_stores_nothing(api, db, stack, make_agent,
                                                                  execution):
    agent = make_agent()
    lines = stream_lines(agent["id"], 12_000)
    body = b"".join(lines)
    part = body[:body.index(b"\n", MIB) + 1]        # about 1 MiB of whole lines
    before = db.snapshot()
    logged = raw_post(stack, 10 * MIB, [part])
    assert_nothing_stored(db, before, logged)
    assert_still_serving(api, db, execution)


def test_client_gone_in_the_middle_of_a_line_stores_nothing(api, db, stack, execution):
    body = b"".join(ndjson(execution(agent_name="cut")) for _ in range(5000))
    before = db.snapshot()
    logged = raw_post(stack, len(body), [body[:len(body) // 2 + 7]])
    assert_nothing_stored(db, before, logged)
    assert_still_serving(api, db, execution)


def test_chunked_body_cut_short_stores_nothing(api, db, stack, make_agent, execution):
    agent = make_agent()
    lines = stream_lines(agent["id"], 10_000)
    before = db.snapshot()
    logged = raw_post(stack, None, list(chunks(lines, 1000))[:8], chunked=True)
    assert_nothing_stored(db, before, logged)
    assert_still_serving(api, db, execution)


# ---------------------------------------------------------------- acknowledged = stored

def test_database_counts_equal_what_the_answers_acknowledged(api, db, execution, make_agent):
    agent = make_agent()
    ids = [str(uuid.uuid4()) for _ in range(40)]
    requests_ = [
        ("json", execution(id=ids[0])),
        ("json", [execution(id=i) for i in ids[:10]]),
        ("ndjson", ndjson(*[execution(id=i) for i in ids[5:25]])),
        ("json", [execution(agent_id=agent["id"]) for _ in range(7)]),
        ("ndjson", ndjson(*[execution(id=i) for i in ids[20:40]], execution(status="bad"))),
        ("ndjson", ndjson(*[execution(id=i) for i in ids[30:40]], execution())),
        ("json", [execution(id=ids[39]), execution(id=ids[39])]),
    ]
    received = inserted = 0
    for form, body in requests_:
        if form == "json":
            response = api.post(PATH, json=body)
        else:
            response = api.post_ndjson(PATH, body)
        if response.status_code == 200:
            answer = response.json()
            assert answer["received"] == answer["inserted"] + answer["duplicates"]
            received += answer["received"]
            inserted += answer["inserted"]
        else:
            assert_problem(response, 422, "validation")
    assert inserted == db.count("executions")
    assert inserted == 25 + 7 + 10 + 1      # ids 25..29 came only in the refused request
    assert received == 1 + 10 + 20 + 7 + 11 + 2


def test_concurrent_streams_with_overlapping_ids_count_each_row_once(api, db, make_agent):
    agent = make_agent()
    base = uuid.uuid4().int >> 32
    # Four streams of 5,000 lines: stream k has ids k*2500+1 .. k*2500+5000.
    bodies = [b"".join(stream_lines(agent["id"], 2500 * k + 5000, id_base=base)[2500 * k:])
              for k in range(4)]
    answers = [None] * 4
    barrier = threading.Barrier(4)

    def send(k):
        barrier.wait()
        answers[k] = api.post_ndjson(PATH, bodies[k])

    threads = [threading.Thread(target=send, args=(k,)) for k in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    for response in answers:
        assert response.status_code == 200, response.text[:1000]
    results = [r.json() for r in answers]
    assert [r["received"] for r in results] == [5000] * 4
    distinct = 2500 * 3 + 5000
    assert sum(r["inserted"] for r in results) == distinct
    assert db.count("executions") == distinct


def test_concurrent_streams_naming_one_new_agent_and_version_register_them_once(api, db,
                                                                                execution):
    bodies = [ndjson(*[execution(agent_name="newcomer", version="1.0") for _ in range(500)])
              for _ in range(6)]
    answers = [None] * len(bodies)
    barrier = threading.Barrier(len(bodies))

    def send(k):
        barrier.wait()
        answers[k] = api.post_ndjson(PATH, bodies[k])

    threads = [threading.Thread(target=send, args=(k,)) for k in range(len(bodies))]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert [a.status_code for a in answers] == [200] * len(bodies), [
        a.text[:300] for a in answers]
    assert db.count("agents", "name = 'newcomer'") == 1
    assert db.count("agent_versions", "version = '1.0'") == 1
    assert db.count("executions") == 500 * len(bodies)
    assert db.count("executions", "agent_version_id IS NULL") == 0
