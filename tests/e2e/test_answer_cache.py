"""test_answer_cache.py - answer_cached() (sql/functions/15_answer_cache.sql):
an answer is computed once per query and token for every worker and host,
callers that come while it is being computed wait for it instead of computing
it again, errors are not kept, the rows of past seconds are pruned, and an
answer is still fresh the moment an ingest request returned; answer_warm()
computes the next second's answer ahead of it, exactly as a request of that
second would, and the aggregates group's `answers` job does so for queries
asked every second."""

import datetime
import json
import threading
import time
import uuid

import psycopg2
import pytest

from support import now_utc, post_executions, utc

pytestmark = pytest.mark.ingest

# One computation takes 0.3 s and counts itself in a sequence: the body is
# the sequence's value, so equal bodies mean one computation.
COUNTED_CALL = "(SELECT nextval('answer_cache_test_calls') FROM pg_sleep(0.3))"


@pytest.fixture()
def calls(db):
    db.execute("CREATE SEQUENCE IF NOT EXISTS answer_cache_test_calls")
    yield lambda: db.scalar("SELECT CASE WHEN is_called THEN last_value ELSE 0 END "
                            "FROM answer_cache_test_calls")
    db.execute("DROP SEQUENCE answer_cache_test_calls")


def quiet(db, seconds=10.0):
    """Waits until nothing is pending (no fold moves the token meanwhile)."""
    deadline = time.monotonic() + seconds
    while db.scalar("SELECT (SELECT count(*) FROM rollup_delta)"
                    " + (SELECT count(*) FROM rollup_changes)") != 0:
        assert time.monotonic() < deadline, "the maintenance job folded nothing"
        time.sleep(0.05)


def start_of_a_second():
    """Sleeps until 50 ms past the next turn of the second, so that callers
    started now share agg_now() (and so the token) for 0.95 s."""
    time.sleep(1.05 - time.time() % 1.0)


def call_concurrently(db, key, callers):
    """(token, body) of answer_cached(key, '', COUNTED_CALL) from callers
    connections at once."""
    connections = [db.connect() for _ in range(callers)]
    for conn in connections:
        conn.autocommit = True
    answers = [None] * callers

    def run(i):
        with connections[i].cursor() as cur:
            cur.execute("SELECT token, body FROM answer_cached(%s, '', %s)", (key, COUNTED_CALL))
            answers[i] = cur.fetchone()

    threads = [threading.Thread(target=run, args=(i,)) for i in range(callers)]
    try:
        quiet(db)
        start_of_a_second()
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
    finally:
        for conn in connections:
            conn.close()
    return answers


def test_concurrent_callers_share_one_computation(db, calls):
    # A fold or another test's write may move the token between callers, so
    # the rule checked is: one computation per distinct token. At least one
    # of three tries must have had all four callers on one token.
    shared = False
    for _ in range(3):
        key = "test:%s" % uuid.uuid4()
        before = calls()
        answers = call_concurrently(db, key, 4)
        assert all(a is not None for a in answers), answers
        tokens = {token for token, _ in answers}
        assert calls() - before == len(tokens), (answers, calls() - before)
        for token in tokens:
            assert len({body for t, body in answers if t == token}) == 1, answers
        if len(tokens) == 1:
            shared = True
            break
    assert shared, "four callers never shared a token in three tries"


def test_the_same_token_is_answered_from_the_table_or_not_at_all(db, calls):
    # (a write elsewhere may move the token between the calls: three tries)
    for _ in range(3):
        key = "test:%s" % uuid.uuid4()
        quiet(db)
        start_of_a_second()
        before = calls()
        answer = "SELECT token, body FROM answer_cached(%s, %s, %s)"
        token, body = db.rows(answer, (key, "", COUNTED_CALL))[0]
        again = db.rows(answer, (key, "", COUNTED_CALL))[0]
        held = db.rows(answer, (key, token, COUNTED_CALL))[0]
        if again[0] != token or held[0] != token:
            continue
        assert calls() - before == 1
        assert again == (token, body)
        # the caller that holds the token gets no body
        assert held == (token, None)
        assert db.scalar("SELECT body FROM answer_cache WHERE key = %s", (key,)) == body
        return
    pytest.fail("the token moved between three calls in three tries")


def test_an_error_is_raised_and_not_kept(db):
    key = "test:%s" % uuid.uuid4()
    with pytest.raises(psycopg2.Error) as failure:
        db.execute("SELECT * FROM answer_cached(%s, '', %s)", (key, "agg_fail('x', 'refused')"))
    assert failure.value.pgcode == "UF422"
    assert db.scalar("SELECT count(*) FROM answer_cache WHERE key = %s", (key,)) == 0


def test_answers_of_past_seconds_are_pruned(db):
    key = "test:%s" % uuid.uuid4()
    db.execute("INSERT INTO answer_cache (id, key, token, body, call, asked, stored_at) "
               "VALUES (md5(%s)::uuid, %s, 'old', '{}', 'null', true, now() - interval '1 minute')",
               (key, key))
    # the maintenance job prunes every round
    deadline = time.monotonic() + 10
    while db.scalar("SELECT count(*) FROM answer_cache WHERE key = %s", (key,)) != 0:
        assert time.monotonic() < deadline, "the maintenance job pruned nothing"
        time.sleep(0.1)
    assert db.scalar("SELECT answer_cache_prune()") >= 0


def test_a_shared_answer_is_fresh_when_an_ingest_returns(api, db, make_agent):
    agent = make_agent()
    started = utc(now_utc() - datetime.timedelta(seconds=5))
    path = "/api/v1/executions/summary?agent_id=%s&time_range=1h" % agent["id"]
    counts = []
    for i in range(3):
        # every worker may have answered, and the table holds the answer
        for _ in range(8):
            response = api.get(path)
            assert response.status_code == 200, response.text
            assert response.json()["total"] == i
        assert db.scalar("SELECT count(*) FROM answer_cache WHERE key LIKE %s",
                         ("agg_summary%%%s%%" % agent["id"],)) >= 1
        post_executions(api, [{"agent_id": agent["id"], "started_at": started,
                               "model": "model-a", "latency_ms": 100 + i,
                               "status": "succeeded"}])
        counts.append(api.get(path).json()["total"])
    assert counts == [1, 2, 3]


# An answer that names its second and the data: computed ahead for the next
# second, it must be what a request of that second computes.
CLOCK_CALL = ("json_build_object('at', agg_ts(agg_now()), 'executions', "
              "(SELECT count(*) FROM executions), 'tag', $1)")


def second_of(token):
    return int(token.split("/", 1)[0])


def test_an_answer_computed_ahead_is_the_next_seconds_answer(db):
    for _ in range(3):
        key = "test:%s" % uuid.uuid4()
        quiet(db)
        start_of_a_second()
        now = second_of(db.scalar("SELECT agg_token()"))
        assert db.scalar("SELECT answer_warm(%s, %s, 'x')", (key, CLOCK_CALL)) is True
        # once per key and token
        assert db.scalar("SELECT answer_warm(%s, %s, 'x')", (key, CLOCK_CALL)) is False
        (warm_token, warm_body, asked), = db.rows(
            "SELECT token, body, asked FROM answer_cache WHERE key = %s", (key,))
        assert second_of(warm_token) == now + 1 and asked is False
        assert json.loads(warm_body)["at"] == datetime.datetime.fromtimestamp(
            now + 1, datetime.timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")
        # the setting lasted for answer_warm()'s transaction only
        assert second_of(db.scalar("SELECT agg_token()")) == now
        start_of_a_second()
        token, body = db.rows("SELECT token, body FROM answer_cached(%s, '', %s, 'x')",
                              (key, CLOCK_CALL))[0]
        fresh = db.scalar("SELECT (%s)::text" % CLOCK_CALL.replace("$1", "'x'"))
        if token != warm_token or second_of(db.scalar("SELECT agg_token()")) != now + 1:
            continue        # a write or a fold moved the token: try again
        assert body == warm_body == fresh
        assert db.scalar("SELECT asked FROM answer_cache WHERE key = %s AND token = %s",
                         (key, token)) is True
        return
    pytest.fail("the token moved in each of three tries")


def test_a_write_after_an_answer_computed_ahead_is_in_the_answer(api, db, make_agent):
    agent = make_agent()
    key = "test:%s" % uuid.uuid4()
    quiet(db)
    start_of_a_second()
    assert db.scalar("SELECT answer_warm(%s, %s, 'x')", (key, CLOCK_CALL)) is True
    warm = json.loads(db.scalar("SELECT body FROM answer_cache WHERE key = %s", (key,)))
    post_executions(api, [{"agent_id": agent["id"], "started_at": utc(now_utc()),
                           "model": "model-a", "latency_ms": 100, "status": "succeeded"}])
    start_of_a_second()
    body = json.loads(db.rows("SELECT token, body FROM answer_cached(%s, '', %s, 'x')",
                              (key, CLOCK_CALL))[0][1])
    assert body["executions"] == warm["executions"] + 1


def test_a_refused_call_is_not_computed_ahead(db):
    key = "test:%s" % uuid.uuid4()
    assert db.scalar("SELECT answer_warm(%s, %s)", (key, "agg_fail('x', 'refused')")) is False
    assert db.scalar("SELECT count(*) FROM answer_cache WHERE key = %s", (key,)) == 0


def test_the_answers_job_computes_a_query_asked_every_second_ahead(api, db, make_agent):
    """A summary asked ten times a second: within a few seconds the answers
    job has stored an answer of a second before that second began, and the
    requests of that second were answered it (the row is asked)."""
    agent = make_agent()
    path = "/api/v1/executions/summary?agent_id=%s&time_range=1h" % agent["id"]
    pattern = "agg_summary%%%s%%" % agent["id"]
    ahead = "SELECT count(*) FROM answer_cache WHERE key LIKE %s AND asked" \
            "   AND stored_at < to_timestamp(split_part(token, '/', 1)::bigint - 1)"
    deadline = time.monotonic() + 15
    while db.scalar(ahead, (pattern,)) == 0:
        assert time.monotonic() < deadline, "no answer was computed ahead of its second"
        response = api.get(path)
        assert response.status_code == 200, response.text
        assert response.json()["total"] == 0
        time.sleep(0.1)
    # a query asked once is never computed ahead
    once = "/api/v1/executions/summary?agent_id=%s&time_range=6h" % agent["id"]
    assert api.get(once).status_code == 200
    time.sleep(2.5)
    assert db.scalar("SELECT count(*) FROM answer_cache WHERE key LIKE %s AND key LIKE '%%6h%%'",
                     (pattern,)) == 1


def test_a_lookup_goes_by_the_key_however_full_the_table(db):
    """answer_cache swings between empty and thousands of rows within
    seconds: a lookup whose plan a session made while the table was empty
    still reads it by its primary key once the table is full, never whole
    (pg_stat_xact_user_tables: this transaction's scans only)."""
    db.execute("DELETE FROM answer_cache")
    db.execute("VACUUM answer_cache")
    conn = db.connect()
    scans = ("SELECT seq_scan, idx_scan FROM pg_stat_xact_user_tables"
             " WHERE relname = 'answer_cache'")
    try:
        with conn.cursor() as cur:
            for i in range(10):
                cur.execute("SELECT body FROM answer_cached(%s, NULL, '$1', 'v')", ("lookup-a-%d" % i,))
                assert cur.fetchone() == ("v",)
            cur.execute("INSERT INTO answer_cache (id, token, key, body, call, asked)"
                        " SELECT md5('filler ' || g)::uuid, 'x', 'filler ' || g, repeat('x', 100), '$1', true"
                        "   FROM generate_series(1, 5000) g")
            cur.execute(scans)
            seq_before, idx_before = cur.fetchone()
            for i in range(10):
                cur.execute("SELECT body FROM answer_cached(%s, NULL, '$1', 'v')", ("lookup-b-%d" % i,))
                assert cur.fetchone() == ("v",)
            cur.execute(scans)
            seq_after, idx_after = cur.fetchone()
        assert seq_after - seq_before == 0
        assert idx_after - idx_before >= 10
    finally:
        conn.rollback()
        conn.close()
