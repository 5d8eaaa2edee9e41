"""test_aggregates_levels.py - the coarse rollups: rollup_6h (quarters of a
UTC day) and rollup_7d (7 days from the epoch) hold what the hours and days
under them hold, after a fold and after a rebuild; a whole range read with
grain 7 days (what summaries pass) takes weeks and quarters, far fewer
pieces, and sums exactly what the raw rows of the range hold, with the
same percentiles; a 6-hour UTC series reads quarters and counts exactly;
the fleet's minutes (rollup_1m) hold what the raw rows of each minute hold
and serve the partial edges of a fleet read unless their 5 minutes have a
pending delta; a rebuild waits for a reader instead of deadlocking with
it."""

import datetime
import threading
import time

import psycopg2.extensions
import pytest

from support import now_utc, utc

pytestmark = pytest.mark.ingest

SUMS = "sum(n), sum(errors), sum(evaluated), sum(passed), sum(lat_n), sum(lat_sum), sum(cost)"
RAW_SUMS = ("count(*), count(*) FILTER (WHERE status <> 'succeeded'), count(eval_passed),"
            " count(*) FILTER (WHERE eval_passed), count(latency_ms), coalesce(sum(latency_ms), 0),"
            " coalesce(sum(cost_usd), 0)")


@pytest.fixture
def fleet(ingest, execution):
    """Executions of two agents and two models over the last 20 days, every
    97 minutes and 13 seconds."""
    now = now_utc()
    rows = []
    for i in range(300):
        rows.append(execution(agent_name="levels-%s" % "ab"[i % 2],
                              model="levels-m%d" % (i % 3 % 2),
                              started_at=utc(now - datetime.timedelta(seconds=60 + i * 5833)),
                              latency_ms=100 + i * 37 % 2000,
                              cost_usd=round(0.001 * (i % 17), 6),
                              status="succeeded" if i % 7 else "failed",
                              **({"evaluation": {"passed": i % 3 == 0}} if i % 2 else {})))
    ingest(rows)


def coarsened(db, table, grain):
    """The sums of a rollup table per dims, key and bucket of grain."""
    return db.rows("SELECT dims, date_bin(%%s::interval, bucket, timestamptz 'epoch') AS b,"
                   " agent_id::text, model, %s FROM %s GROUP BY 1, 2, 3, 4 ORDER BY 1, 2, 3, 4"
                   % (SUMS, table), (grain,))


def levels_hold_their_parts(db):
    for coarse, fine, grain in (("rollup_6h", "rollup_1h", "6 hours"),
                                ("rollup_1d", "rollup_6h", "1 day"),
                                ("rollup_7d", "rollup_1d", "7 days")):
        assert coarsened(db, coarse, grain) == coarsened(db, fine, grain), coarse
    weeks = db.rows("SELECT bucket, n FROM rollup_7d WHERE dims = 0 ORDER BY 1")
    assert len(weeks) >= 3
    raw = db.rows("SELECT date_bin('7 days', started_at, timestamptz 'epoch'), count(*)"
                  " FROM executions GROUP BY 1 ORDER BY 1")
    assert weeks == raw
    assert db.scalar("SELECT count(*) FROM rollup_6h WHERE dims = 0 AND p95 IS NULL") == 0
    # the fleet's minutes: a fold makes those of its 64 latest buckets, the
    # next ones the rest; then what the raw rows of each minute hold, and per
    # 5 minutes what rollup_5m's fleet rows hold
    for _ in range(20):
        if db.count("rollup_1m_stale") == 0:
            break
        db.rollup_refresh()
    assert db.count("rollup_1m_stale") == 0
    minutes = db.rows("SELECT bucket, %s, min(lat_min), max(lat_max) FROM rollup_1m"
                      " GROUP BY 1 ORDER BY 1" % SUMS)
    raw = db.rows("SELECT date_bin('1 minute', started_at, timestamptz 'epoch'), %s,"
                  " min(latency_ms), max(latency_ms) FROM executions GROUP BY 1 ORDER BY 1"
                  % RAW_SUMS)
    assert minutes == raw and len(minutes) >= 300
    assert (db.rows("SELECT date_bin('5 minutes', bucket, timestamptz 'epoch'), sum(n)"
                    " FROM rollup_1m GROUP BY 1 ORDER BY 1")
            == db.rows("SELECT bucket, n FROM rollup_5m WHERE dims = 0 ORDER BY 1"))


def test_quarters_and_weeks_hold_what_their_hours_and_days_hold(fleet, db):
    db.rollup_refresh()
    # one fold made the minutes of the 64 latest buckets (of 300) and left
    # the others stale (the maintenance job may have made more since)
    assert db.scalar("SELECT (SELECT count(DISTINCT date_bin('5 minutes', bucket, timestamptz"
                     " 'epoch')) FROM rollup_1m) + (SELECT count(*) FROM rollup_1m_stale)") == 300
    assert db.count("rollup_1m_stale") <= 300 - 64
    levels_hold_their_parts(db)
    db.execute("SELECT rollup_rebuild()")
    levels_hold_their_parts(db)


def test_a_whole_range_reads_weeks_and_quarters_and_sums_what_its_rows_hold(fleet, db):
    db.rollup_refresh()
    conn = db.connect()
    conn.set_isolation_level(psycopg2.extensions.ISOLATION_LEVEL_REPEATABLE_READ)
    try:
        with conn.cursor() as cur:
            span = ("now() - interval '17 days 1234.5 seconds'", "now() - interval '3 hours 17 seconds'")
            cur.execute("SELECT %s, percentile_cont(0.5) WITHIN GROUP (ORDER BY latency_ms)"
                        " FROM executions WHERE started_at >= %s AND started_at < %s"
                        % ((RAW_SUMS,) + span))
            raw = cur.fetchone()
            assert raw[0] > 200
            counts = {}
            for grain in ("7 days", "1 day", "6 hours", "1 hour"):
                for dims in (0, 3):
                    cur.execute("SELECT %s, tdigest_percentile(digest, 0.5), count(*)"
                                " FROM rollup_rows(%s, %s, %%s::interval, %%s, NULL, NULL, NULL,"
                                " '1 day')" % ((SUMS,) + span), (grain, dims))
                    got = cur.fetchone()
                    assert got[:7] == raw[:7], (grain, dims)
                    assert abs(got[7] - raw[7]) <= 0.01 * raw[7], (grain, dims)
                    counts[grain, dims] = got[8]
            assert counts["7 days", 0] < counts["1 day", 0] < counts["6 hours", 0] < counts["1 hour", 0]
            # a whole week is one piece holding every run of its 7 days
            cur.execute("SELECT p.bucket, p.n, (SELECT count(*) FROM executions x"
                        "  WHERE x.started_at >= p.bucket AND x.started_at < p.bucket + interval '7 days')"
                        "  FROM rollup_rows(%s, %s, '7 days', 0, NULL, NULL, NULL, '1 day') p"
                        " WHERE date_bin('7 days', p.bucket, timestamptz 'epoch') = p.bucket"
                        "   AND p.n > 30" % span)   # more than a day holds (~15)
            weeks = cur.fetchall()
            assert weeks and all(n == raw_n for _, n, raw_n in weeks), weeks
    finally:
        conn.close()


def test_a_six_hour_utc_series_reads_quarters_and_counts_exactly(fleet, api, db):
    db.rollup_refresh()
    start = now_utc() - datetime.timedelta(days=9, seconds=777)
    end = now_utc() - datetime.timedelta(days=1)
    response = api.get("/api/v1/executions/timeseries",
                       params={"from": utc(start), "to": utc(end), "interval": "6h"})
    assert response.status_code == 200, response.text
    body = response.json()
    assert body["source"] == "rollup"
    points = body["series"][0]["points"]
    raw = dict(db.rows("SELECT to_char(date_bin('6 hours', started_at, timestamptz 'epoch')"
                       " AT TIME ZONE 'UTC', 'YYYY-MM-DD\"T\"HH24:MI:SS\"Z\"'), count(*)"
                       " FROM executions WHERE started_at >= %s AND started_at < %s GROUP BY 1",
                       (start, end)))
    assert {p["t"]: p["executions"] for p in points if p["executions"]} == raw
    assert len(points) == body["buckets"] >= 32
    assert all(p["p95_latency_ms"] is not None for p in points if p["executions"])


def edge_pieces(db, start, end):
    """(sums of rollup_rows() over [start, end) for the fleet, the same
    sums over the raw rows, the buckets of its minute pieces): raw pieces
    are binned per day, so a piece on a minute inside the range is one of
    rollup_1m's."""
    got = db.rows("SELECT %s, min(lat_min), max(lat_max) FROM rollup_rows(%%s, %%s, '7 days', 0,"
                  " NULL, NULL, NULL, '1 day')" % SUMS, (start, end))[0]
    raw = db.rows("SELECT %s, min(latency_ms), max(latency_ms) FROM executions"
                  " WHERE started_at >= %%s AND started_at < %%s" % RAW_SUMS, (start, end))[0]
    minutes = [b for (b,) in db.rows(
        "SELECT bucket FROM rollup_rows(%s, %s, '7 days', 0, NULL, NULL, NULL, '1 day')"
        " WHERE bucket >= %s AND date_bin('1 minute', bucket, timestamptz 'epoch') = bucket"
        "   AND date_bin('1 day', bucket, timestamptz 'epoch') <> bucket ORDER BY 1",
        (start, end, start))]
    return got, raw, minutes


def test_a_fleet_range_reads_its_partial_edges_from_minutes_unless_a_delta_is_pending(
        ingest, execution, db):
    """A range from 2 min 10 s into a 5-minute bucket to 2 min 40 s into a
    later one reads minutes 3 and 4 of the first and 0 and 1 of the last
    from rollup_1m, 50 s and 40 s of raw rows, and sums exactly what the
    raw rows hold; an execution ingested into the first bucket and not
    folded yet (a pending delta) sends that edge back to the raw rows,
    still exact, until the fold makes its minutes again."""
    base = now_utc().replace(minute=20, second=0, microsecond=0) - datetime.timedelta(hours=3)
    ingest([execution(agent_name="minutes-%s" % "ab"[i % 2], model="minutes-m",
                      started_at=utc(base + datetime.timedelta(seconds=7 + i * 13)),
                      latency_ms=50 + i * 41 % 900, cost_usd=round(0.002 * (i % 5), 6),
                      status="succeeded" if i % 4 else "failed")
            for i in range(70)])                     # 15 minutes and a bit
    db.rollup_refresh()
    start = base + datetime.timedelta(minutes=2, seconds=10)
    end = base + datetime.timedelta(minutes=7, seconds=40)
    five = datetime.timedelta(minutes=5)
    got, raw, minutes = edge_pieces(db, start, end)
    assert raw[0] > 20 and got == raw
    assert minutes == [base + datetime.timedelta(minutes=m) for m in (3, 4, 5, 6)]
    with db.rollups_paused():
        ingest([execution(agent_name="minutes-a", model="minutes-m", latency_ms=12345,
                          started_at=utc(base + datetime.timedelta(minutes=3, seconds=30)))])
        assert db.count("rollup_delta", "bucket = %s", (base,)) == 1
        got, raw, minutes = edge_pieces(db, start, end)
        assert got == raw and raw[8] == 12345
        assert minutes == [base + five, base + five + datetime.timedelta(minutes=1)]
    db.rollup_refresh()
    got, raw, minutes = edge_pieces(db, start, end)
    assert got == raw and raw[8] == 12345
    assert minutes == [base + datetime.timedelta(minutes=m) for m in (3, 4, 5, 6)]
    # a stale bucket (its minutes not made again yet: here none at all)
    # is read raw too, until a refresh makes them
    with db.rollups_paused():
        db.execute("INSERT INTO rollup_1m_stale VALUES (%s)", (base,))
        db.execute("DELETE FROM rollup_1m WHERE bucket >= %s AND bucket < %s", (base, base + five))
        got, raw, minutes = edge_pieces(db, start, end)
        assert got == raw and raw[8] == 12345
        assert minutes == [base + five, base + five + datetime.timedelta(minutes=1)]
        token = db.scalar("SELECT agg_token()").split("/", 1)[1]
    db.rollup_refresh()
    assert db.count("rollup_1m_stale") == 0
    # making them changed no data: the answers made ahead stay valid (the
    # token without its second)
    assert db.scalar("SELECT agg_token()").split("/", 1)[1] == token
    assert edge_pieces(db, start, end)[2] == [base + datetime.timedelta(minutes=m) for m in (3, 4, 5, 6)]
    # a filtered read, or one per agent, reads its edges raw (no minutes of an agent)
    assert db.scalar("SELECT sum(n) FROM rollup_rows(%s, %s, '7 days', 1, NULL, NULL, NULL,"
                     " '1 day')", (start, end)) == raw[0]


def test_a_rebuild_waits_for_a_reader_instead_of_deadlocking_with_it(fleet, db):
    """rollup_rebuild() locks the rollups in the order readers read them
    (rollup_rows(): the coarsest first): a reader that read the weeks and
    then reads the 5-minute rows meets no lock of the rebuild on those; the
    rebuild waits for it and then runs (its TRUNCATE, locking table by table
    in its own order, took rollup_5m first and deadlocked)."""
    db.rollup_refresh()
    reader = db.connect()
    outcome = {}
    try:
        with reader.cursor() as cur:
            cur.execute("SELECT count(*) FROM rollup_7d")          # the reader's first table

            def rebuild():
                try:
                    outcome["rebuilt"] = db.scalar("SELECT rollup_rebuild()")
                except Exception as error:                     # pylint: disable=broad-except
                    outcome["error"] = error
            thread = threading.Thread(target=rebuild)
            thread.start()
            time.sleep(0.5)
            assert thread.is_alive()                               # waiting for rollup_7d
            cur.execute("SET lock_timeout = '3s'")
            cur.execute("SELECT count(*) FROM rollup_5m")          # not locked by the rebuild
            cur.execute("SELECT count(*) FROM rollup_delta")
            cur.execute("SELECT count(*) FROM rollup_1m")
            cur.execute("SELECT count(*) FROM rollup_errors_5m")
        reader.commit()
        thread.join(60)
        assert outcome.get("rebuilt", 0) > 0, outcome
    finally:
        reader.close()
    levels_hold_their_parts(db)
