"""test_demo_fleet.py - demo_fleet() (sql/dev/demo_fleet_*.sql, loaded into
the transaction: the demo fleet is no migration) at a million
executions, the size from which it builds the secondary indexes of an
empty executions table after the rows: the same indexes as 001 afterwards,
every execution rolled up, every reference sound (the load skips the
per-statement check) and the check on again, agents in every quality tier,
and the shares the generator promises. Runs in a transaction that is rolled back."""

import pathlib

import pytest

pytestmark = pytest.mark.ingest

DEV_SQL = sorted((pathlib.Path(__file__).resolve().parents[2] / "sql" / "dev").glob("demo_fleet_*.sql"))

INDEXES = ("SELECT array_agg(pg_get_indexdef(indexrelid) ORDER BY 1) FROM pg_index "
           "WHERE indrelid = 'executions'::regclass")


def test_a_million_executions_into_an_empty_table(db):
    conn = db.connect()
    try:
        with conn.cursor() as cur:
            cur.execute(INDEXES)
            before, = cur.fetchone()
            cur.execute("SET client_min_messages = warning")
            cur.execute("SELECT to_regprocedure('demo_fleet(integer, bigint, integer, double precision,"
                        " timestamptz)') IS NULL")
            assert cur.fetchone()[0]                      # migrations alone make no demo functions
            for path in DEV_SQL:
                cur.execute(path.read_text())
            cur.execute("SELECT agents, executions, evaluations, problems, alerts"
                        "  FROM demo_fleet(50, 1000000, 30)")
            agents, executions, evaluations, problems, alerts = cur.fetchone()
            assert (agents, executions) == (50, 1000000)
            assert 0.85 < evaluations / executions < 0.97
            assert problems > 0 and alerts > 0

            cur.execute(INDEXES)
            assert cur.fetchone()[0] == before            # rebuilt as 001 made them
            cur.execute("SELECT count(*) FROM executions WHERE started_at > now() - interval '1 day'")
            assert cur.fetchone()[0] > 0                  # the time index answers
            cur.execute("SELECT sum(n), sum(evaluated) FROM rollup_1d WHERE dims = 0")
            assert tuple(cur.fetchone()) == (executions, evaluations)
            cur.execute("SELECT count(eval_passed) FROM executions")
            assert cur.fetchone()[0] == evaluations
            cur.execute("""
                SELECT count(*) FROM executions e
                 WHERE NOT EXISTS (SELECT 1 FROM agents a WHERE a.id = e.agent_id)
                    OR (e.agent_version_id IS NOT NULL
                        AND NOT EXISTS (SELECT 1 FROM agent_versions v
                                         WHERE v.id = e.agent_version_id
                                           AND v.agent_id = e.agent_id))""")
            assert cur.fetchone()[0] == 0
            cur.execute("SELECT tgenabled FROM pg_trigger "
                        "WHERE tgname = 'executions_references_insert'")
            assert cur.fetchone()[0] == "A"               # ENABLE ALWAYS again

            cur.execute("""
                SELECT s, count(*) FROM (
                    SELECT agg_status(count(*), count(*) FILTER (
                               WHERE execution_success(eval_passed, status))) AS s
                      FROM executions GROUP BY agent_id) x GROUP BY s""")
            tiers = dict(cur.fetchall())
            assert set(tiers) == {"healthy", "warning", "critical"}, tiers
    finally:
        conn.rollback()
        conn.close()
        # the million rolled-back rows and their index entries, at once
        # rather than by autovacuum while later tests run
        db.execute("TRUNCATE executions CASCADE")
