"""test_idempotency.py - nothing is stored twice: executions whose ids exist
already, ids repeated in one request, and the Idempotency-Key header (a
replay answers the first answer and writes nothing; another body is 422;
concurrent replays run once; failed requests can be retried; keys expire)."""

import json
import threading
import uuid

import pytest

from support import assert_problem, error_fields

pytestmark = pytest.mark.ingest

PATH = "/api/v1/executions"


def key():
    return "key-%s" % uuid.uuid4()


def ndjson(*objects):
    return b"".join(json.dumps(o).encode() + b"\n" for o in objects)


def assert_replay(first, again):
    """again is first's answer replayed."""
    assert again.status_code == first.status_code
    assert again.content == first.content
    assert again.headers.get("Idempotent-Replayed") == "true"
    assert "Idempotent-Replayed" not in first.headers
    if "Location" in first.headers:
        assert again.headers.get("Location") == first.headers["Location"]


# ---------------------------------------------------------------- execution ids

def test_the_same_ids_twice_are_duplicates_the_second_time(db, ingest, execution):
    batch = [execution(id=str(uuid.uuid4())) for _ in range(5)]
    first = ingest(batch).json()
    assert (first["received"], first["inserted"], first["duplicates"]) == (5, 5, 0)
    with db.unchanged():
        second = ingest(batch).json()
    assert (second["received"], second["inserted"], second["duplicates"]) == (5, 0, 5)
    assert second["ids"] == first["ids"]
    assert db.count("executions") == 5


def test_the_same_ids_twice_in_ndjson_are_duplicates(api, db, execution):
    body = ndjson(*[execution(id=str(uuid.uuid4())) for _ in range(4)])
    assert api.post_ndjson(PATH, body).json() == {"received": 4, "inserted": 4, "duplicates": 0}
    with db.unchanged():
        again = api.post_ndjson(PATH, body)
    assert again.json() == {"received": 4, "inserted": 0, "duplicates": 4}
    assert db.count("executions") == 4


def test_a_duplicate_keeps_the_first_stored_execution(db, ingest, execution):
    execution_id = str(uuid.uuid4())
    ingest(execution(id=execution_id, model="first"))
    body = ingest(execution(id=execution_id, model="second")).json()
    assert (body["inserted"], body["duplicates"]) == (0, 1)
    assert db.rows("SELECT model FROM executions WHERE id = %s", (execution_id,)) == [("first",)]


def test_an_id_twice_in_one_batch_is_stored_once(db, ingest, execution):
    execution_id = str(uuid.uuid4())
    body = ingest([execution(id=execution_id), execution(), execution(id=execution_id)]).json()
    assert (body["received"], body["inserted"], body["duplicates"]) == (3, 2, 1)
    assert body["ids"][0] == body["ids"][2] == execution_id
    assert db.count("executions") == 2


def test_an_id_twice_in_one_stream_is_stored_once_the_first_line_wins(api, db, execution):
    execution_id = str(uuid.uuid4())
    body = ndjson(execution(id=execution_id, model="line-1"), execution(id=execution_id,
                                                                         model="line-2"))
    assert api.post_ndjson(PATH, body).json() == {"received": 2, "inserted": 1, "duplicates": 1}
    assert db.rows("SELECT model FROM executions WHERE id = %s", (execution_id,)) == [("line-1",)]


def test_a_duplicate_with_an_evaluation_adds_no_evaluation(db, ingest, execution):
    execution_id = str(uuid.uuid4())
    ingest(execution(id=execution_id, evaluation={"passed": True, "score": 0.9}))
    ingest(execution(id=execution_id, evaluation={"passed": False, "score": 0.1}))
    assert db.rows("SELECT passed, score FROM evaluation_rows") == [(True, 0.9)]


# ---------------------------------------------------------------- Idempotency-Key

# 2 items: one statement; 60: COPY through the staging table (ingest.c)
@pytest.mark.parametrize("size", [2, 60])
def test_a_replayed_execution_post_answers_the_same_and_writes_nothing(api, db, execution, size):
    k = key()
    batch = [execution() for _ in range(size)]  # no client ids: only the key protects
    first = api.post(PATH, json=batch, headers={"Idempotency-Key": k})
    assert first.status_code == 200, first.text
    with db.unchanged():
        again = api.post(PATH, json=batch, headers={"Idempotency-Key": k})
    assert_replay(first, again)
    assert db.count("executions") == size


def test_a_replayed_ndjson_post_writes_nothing(api, db, execution):
    k = key()
    body = ndjson(execution(), execution(), execution())
    first = api.post_ndjson(PATH, body, headers={"Idempotency-Key": k})
    assert first.json() == {"received": 3, "inserted": 3, "duplicates": 0}
    with db.unchanged():
        again = api.post_ndjson(PATH, body, headers={"Idempotency-Key": k})
    assert_replay(first, again)
    assert db.count("executions") == 3


def test_a_replayed_agent_registration_answers_201_with_its_location(api, db):
    k = key()
    first = api.post("/api/v1/agents", json={"name": "idem"}, headers={"Idempotency-Key": k})
    assert first.status_code == 201, first.text
    with db.unchanged():
        again = api.post("/api/v1/agents", json={"name": "idem"}, headers={"Idempotency-Key": k})
    assert_replay(first, again)


def test_a_replayed_problem_report_creates_one_problem(api, db):
    k = key()
    body = {"category": "latency", "severity": "high", "title": "Slow"}
    first = api.post("/api/v1/problems", json=body, headers={"Idempotency-Key": k})
    assert first.status_code == 201, first.text
    with db.unchanged():
        again = api.post("/api/v1/problems", json=body, headers={"Idempotency-Key": k})
    assert_replay(first, again)
    assert db.count("problems") == 1


def test_a_replayed_heartbeat_is_204_and_writes_nothing(api, db, make_agent):
    agent = make_agent()
    path = "/api/v1/agents/%s/heartbeat" % agent["id"]
    k = key()
    first = api.post(path, json={"state": "busy"}, headers={"Idempotency-Key": k})
    assert first.status_code == 204, first.text
    with db.unchanged():
        again = api.post(path, json={"state": "busy"}, headers={"Idempotency-Key": k})
    assert_replay(first, again)


def test_the_same_key_with_another_body_is_422_and_writes_nothing(api, db, execution):
    k = key()
    first = api.post(PATH, json=execution(), headers={"Idempotency-Key": k})
    assert first.status_code == 200, first.text
    with db.unchanged():
        other = api.post(PATH, json=execution(model="other"), headers={"Idempotency-Key": k})
    assert error_fields(other) == {"Idempotency-Key"}
    assert db.count("executions") == 1


def test_the_same_key_on_another_path_is_422(api, db, execution):
    k = key()
    first = api.post("/api/v1/agents", json={"name": "a"}, headers={"Idempotency-Key": k})
    assert first.status_code == 201, first.text
    with db.unchanged():
        other = api.post(PATH, json=execution(), headers={"Idempotency-Key": k})
    assert error_fields(other) == {"Idempotency-Key"}


def test_a_failed_request_is_not_stored_and_can_be_retried_with_its_key(api, db, execution):
    k = key()
    with db.unchanged():
        failed = api.post(PATH, json=execution(status="bad"), headers={"Idempotency-Key": k})
    assert_problem(failed, 422, "validation")
    retried = api.post(PATH, json=execution(), headers={"Idempotency-Key": k})
    assert retried.status_code == 200, retried.text
    assert "Idempotent-Replayed" not in retried.headers
    assert db.count("executions") == 1


def test_a_409_is_not_stored_either(api, db, make_agent):
    agent = make_agent()
    path = "/api/v1/agents/%s/versions" % agent["id"]
    assert api.post(path, json={"version": "1"}).status_code == 201
    k = key()
    with db.unchanged():
        conflict = api.post(path, json={"version": "1"}, headers={"Idempotency-Key": k})
    assert_problem(conflict, 409, "conflict")
    created = api.post(path, json={"version": "2"}, headers={"Idempotency-Key": k})
    assert created.status_code == 201, created.text


def test_keys_are_independent(api, db, execution):
    body = execution()
    first = api.post(PATH, json=body, headers={"Idempotency-Key": key()})
    second = api.post(PATH, json=body, headers={"Idempotency-Key": key()})
    assert (first.status_code, second.status_code) == (200, 200)
    assert "Idempotent-Replayed" not in second.headers
    assert first.json()["ids"] != second.json()["ids"]
    assert db.count("executions") == 2


def test_a_key_older_than_24_hours_runs_again(api, db, execution):
    k = key()
    first = api.post(PATH, json=execution(), headers={"Idempotency-Key": k})
    assert first.status_code == 200, first.text
    db.execute("UPDATE idempotency_keys SET created_at = now() - interval '25 hours' "
               "WHERE key = %s", (k,))
    again = api.post(PATH, json=execution(), headers={"Idempotency-Key": k})
    assert again.status_code == 200, again.text
    assert "Idempotent-Replayed" not in again.headers
    assert db.count("executions") == 2


def test_a_key_of_255_visible_characters_is_accepted(api, execution):
    k = "".join(chr(33 + i % 94) for i in range(255))
    body = execution()
    first = api.post(PATH, json=body, headers={"Idempotency-Key": k})
    assert first.status_code == 200, first.text
    again = api.post(PATH, json=body, headers={"Idempotency-Key": k})
    assert again.headers.get("Idempotent-Replayed") == "true"


@pytest.mark.parametrize("bad_key", ["k" * 256, "with space", "tab\there"],
                         ids=["256 characters", "space", "tab"])
def test_a_malformed_key_is_refused_naming_the_header(api, db, execution, bad_key):
    with db.unchanged():
        response = api.post(PATH, json=execution(), headers={"Idempotency-Key": bad_key})
    assert error_fields(response) == {"Idempotency-Key"}


@pytest.mark.parametrize("form", ["batch", "ndjson"])
def test_concurrent_requests_with_one_key_run_once_and_answer_alike(api, db, execution, form):
    k = key()
    items = [execution(task_id="t%d" % n) for n in range(1000)]     # no client ids
    answers = [None, None]
    barrier = threading.Barrier(2)

    def send(slot):
        barrier.wait()
        if form == "batch":
            answers[slot] = api.post(PATH, json=items, headers={"Idempotency-Key": k})
        else:
            answers[slot] = api.post_ndjson(PATH, ndjson(*items), headers={"Idempotency-Key": k})

    threads = [threading.Thread(target=send, args=(slot,)) for slot in (0, 1)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert [a.status_code for a in answers] == [200, 200], [a.text[:300] for a in answers]
    assert answers[0].content == answers[1].content
    assert sorted(a.headers.get("Idempotent-Replayed", "") for a in answers) == ["", "true"]
    assert answers[0].json()["inserted"] == 1000
    assert db.count("executions") == 1000


def test_concurrent_registrations_with_one_key_create_one_agent(api, db):
    k = key()
    answers = [None] * 4
    barrier = threading.Barrier(4)

    def send(slot):
        barrier.wait()
        answers[slot] = api.post("/api/v1/agents", json={"name": "racer"},
                                 headers={"Idempotency-Key": k})

    threads = [threading.Thread(target=send, args=(slot,)) for slot in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert [a.status_code for a in answers] == [201] * 4, [a.text[:300] for a in answers]
    assert len({a.content for a in answers}) == 1
    assert sum(a.headers.get("Idempotent-Replayed") == "true" for a in answers) == 3
    assert db.count("agents") == 1
