"""test_aggregates_plans.py - the pieces of a range are read by one of two
functions of one body (sql/functions/12_aggregates_reading.sql):
rollup_rows_all, which keeps one plan per statement for the session (calls
without a filter), and rollup_rows_some, which plans every call with its
values (filtered calls). Both give the same pieces for the same call, many
times over in one session (after the plans are kept), and a filtered call
gives what the unfiltered pieces hold of its agent or model."""

import datetime

import psycopg2.extensions
import pytest

from support import now_utc, utc

pytestmark = pytest.mark.ingest

PIECE = ("bucket, agent_id, model, n, evaluated, passed, successes, errors, lat_n, lat_sum,"
         " lat_min, lat_max, cost, prompt, completion, cache, last_at, digest::text, p95")

# (from, to) relative to now in seconds, grain, bin, dims, digests, grain digests:
# partial 5 minutes at both edges, whole hours, a range inside one bucket
CALLS = [
    (-3 * 3600 - 17, -61, "1 day", "1 day", 0, True, True),
    (-3 * 3600 - 17, 0, "1 hour", "1 hour", 1, False, True),
    (-2 * 3600 - 299, -3599, "5 minutes", "5 minutes", 3, True, False),
    (-7 * 86400, 0, "1 hour", "1 hour", 2, True, False),
    (-3600 - 7, -3600 + 100, "1 day", "1 day", 0, True, True),
]


@pytest.fixture
def fleet(ingest, execution, db):
    """Executions of two agents and two models over the last three hours, at
    odd seconds; returns the agents' ids by name."""
    now = now_utc()
    rows = []
    for i in range(240):
        rows.append(execution(agent_name="plans-%s" % "ab"[i % 2],
                              model="plans-m%d" % (i % 3 % 2),
                              started_at=utc(now - datetime.timedelta(seconds=37 + i * 45)),
                              latency_ms=100 + i * 7 % 900,
                              cost_usd=round(0.001 * (i % 13), 6),
                              status="succeeded" if i % 5 else "failed"))
    ingest(rows)
    return dict(db.rows("SELECT name, id::text FROM agents WHERE name LIKE 'plans-%%'"))


def snapshot(db):
    """A connection in one REPEATABLE READ transaction: every statement sees
    the same rows and the same now(), whatever the maintenance job folds."""
    conn = db.connect()
    conn.set_isolation_level(psycopg2.extensions.ISOLATION_LEVEL_REPEATABLE_READ)
    return conn


def pieces(cur, function, call, agents=None, models=None):
    start, end, grain, bin_, dims, digests, grain_digests = call
    cur.execute("SELECT %s FROM %s(now() + make_interval(secs => %%s), now() + make_interval(secs => %%s),"
                " %%s::interval, %%s, %%s::uuid[], %%s::text[], NULL, %%s::interval, %%s, %%s)"
                " ORDER BY 1, 2, 3, 4" % (PIECE, function),
                (start, end, grain, dims, agents, models, bin_, digests, grain_digests))
    return cur.fetchall()


def test_kept_and_per_call_plans_give_the_same_pieces(fleet, db):
    conn = snapshot(db)
    try:
        with conn.cursor() as cur:
            for call in CALLS:
                first = pieces(cur, "rollup_rows_some", call)
                assert first, call
                assert sum(p[3] for p in first) > 0, call
                # ten times: past the calls after which a kept plan is used
                for _ in range(10):
                    assert pieces(cur, "rollup_rows_all", call) == first, call
                    assert pieces(cur, "rollup_rows", call) == first, call
    finally:
        conn.close()


def test_a_filtered_call_holds_what_the_pieces_of_its_agent_hold(fleet, db):
    conn = snapshot(db)
    try:
        with conn.cursor() as cur:
            for call in CALLS:
                every = pieces(cur, "rollup_rows", call[:4] + (3,) + call[5:])
                for name, agent in fleet.items():
                    mine = [p for p in every if p[1] == agent]
                    for _ in range(7):
                        got = pieces(cur, "rollup_rows", call[:4] + (3,) + call[5:], agents=[agent])
                        assert sum(p[3] for p in got) == sum(p[3] for p in mine), (call, name)
                        assert sum(p[12] for p in got) == sum(p[12] for p in mine), (call, name)
                models = [p for p in every if p[2] == "plans-m1"]
                got = pieces(cur, "rollup_rows", call[:4] + (3,) + call[5:], models=["plans-m1"])
                assert sum(p[3] for p in got) == sum(p[3] for p in models), call
    finally:
        conn.close()
