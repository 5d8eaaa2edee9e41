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
                % (PIECE, function),
                (start, end, grain, dims, agents, models, bin_, digests, grain_digests))
    return sorted(cur.fetchall(), key=repr)   # pieces of one bucket and key come in any order


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


def sums(rows):
    """The additive sums of pieces: n, evaluated, passed, successes, errors,
    lat_n, lat_sum, cost, prompt, completion, cache."""
    return tuple(sum(p[i] or 0 for p in rows) for i in (3, 4, 5, 6, 7, 8, 9, 12, 13, 14, 15))


def test_sums_only_pieces_add_up_to_the_same_sums_reading_less_raw(fleet, db):
    """With p_sums_only a partial 5 minutes whose outside part is the shorter
    is read whole less that part (pieces of negative sums): the sums per key
    are those of the exact pieces, for edges at every position in a bucket."""
    conn = snapshot(db)
    negative = 0
    try:
        with conn.cursor() as cur:
            cur.execute("SELECT extract(epoch FROM date_bin('5 minutes', now(), timestamptz 'epoch') - now())")
            to_bucket = float(cur.fetchone()[0])   # now + this: the start of now's bucket
            for offset in (1, 40, 149, 151, 260, 299):
                for grain, dims in (("1 day", 0), ("1 hour", 1), ("5 minutes", 3)):
                    # from `offset` seconds into a bucket 2 to 3 hours ago; to as far into
                    # the bucket 20 minutes ago (a to with executions after it)
                    call = (to_bucket - 9000 + offset, to_bucket - 1200 + offset, grain, grain, dims,
                            False, True)
                    exact = pieces(cur, "rollup_rows", call)
                    cur.execute("SELECT %s FROM rollup_rows(now() + make_interval(secs => %%s),"
                                " now() + make_interval(secs => %%s), %%s::interval, %%s, NULL, NULL,"
                                " NULL, %%s::interval, false, p_sums_only => true)" % PIECE,
                                (call[0], call[1], grain, dims, grain))
                    less = cur.fetchall()
                    negative += sum(1 for p in less if p[3] < 0)
                    for key in {(p[1], p[2]) for p in exact} | {(p[1], p[2]) for p in less}:
                        mine = sums(p for p in exact if (p[1], p[2]) == key)
                        got = sums(p for p in less if (p[1], p[2]) == key)
                        assert got == mine, (offset, grain, key)
    finally:
        conn.close()
    assert negative > 0, "no edge was read as a bucket less its outside part"
