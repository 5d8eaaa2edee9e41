"""test_references.py - executions' references to agents and versions,
checked per statement by triggers (sql/functions/01_core.sql) with the
guarantees of a NO ACTION foreign key: refused inserts and updates, refused deletes,
TRUNCATE and isolation levels, and a concurrent delete that waits for the
inserting transaction and is then refused."""

import psycopg2
import psycopg2.errors
import pytest

pytestmark = pytest.mark.ingest

AGENT = "00000000-0000-4000-8000-0000000000a1"
OTHER = "00000000-0000-4000-8000-0000000000a2"
VERSION = "00000000-0000-4000-8000-0000000000b1"
MISSING = "00000000-0000-4000-8000-00000000dead"

INSERT = ("INSERT INTO executions (agent_id, agent_version_id, model, started_at, latency_ms, "
          "status) VALUES (%s, %s, 'm', now(), 1, 'succeeded')")


@pytest.fixture
def fleet(db):
    """Two agents, a version of the first, one execution of that version."""
    db.execute("INSERT INTO agents (id, name) VALUES (%s, 'ref-a'), (%s, 'ref-b')",
               (AGENT, OTHER))
    db.execute("INSERT INTO agent_versions (id, agent_id, version) VALUES (%s, %s, 'v1')",
               (VERSION, AGENT))
    db.execute(INSERT, (AGENT, VERSION))


def refused(db, statement, params=None, error=psycopg2.errors.ForeignKeyViolation):
    with pytest.raises(error) as caught:
        db.execute(statement, params)
    return caught.value.diag


def test_an_execution_of_a_missing_agent_is_refused_like_a_foreign_key(db, fleet):
    with db.unchanged():
        diag = refused(db, INSERT, (MISSING, None))
    assert diag.constraint_name == "executions_agent_id_fkey"
    assert MISSING in diag.message_detail


def test_a_version_of_another_agent_is_refused(db, fleet):
    with db.unchanged():
        diag = refused(db, INSERT, (OTHER, VERSION))
    assert diag.constraint_name == "executions_agent_version_fkey"


def test_one_bad_row_refuses_the_whole_statement(db, fleet):
    with db.unchanged():
        refused(db, "INSERT INTO executions (agent_id, model, started_at, latency_ms, status) "
                    "SELECT a, 'm', now(), 1, 'succeeded' FROM unnest(%s::uuid[]) a",
                ([AGENT] * 50 + [MISSING] + [OTHER] * 50,))


def test_moving_an_execution_to_a_missing_agent_is_refused(db, fleet):
    with db.unchanged():
        refused(db, "UPDATE executions SET agent_id = %s, agent_version_id = NULL", (MISSING,))


def test_an_agent_or_version_with_executions_cannot_be_deleted_or_rekeyed(db, fleet):
    with db.unchanged():
        diag = refused(db, "DELETE FROM agents WHERE id = %s", (AGENT,))
        assert diag.constraint_name == "executions_agent_id_fkey"
        refused(db, "UPDATE agents SET id = %s WHERE id = %s", (MISSING, AGENT))
        diag = refused(db, "DELETE FROM agent_versions WHERE id = %s", (VERSION,))
        assert diag.constraint_name == "executions_agent_version_fkey"


def test_an_agent_without_executions_is_deleted_and_heartbeats_are_untouched(db, fleet):
    db.execute("UPDATE agents SET state = 'busy' WHERE id = %s", (AGENT,))
    db.execute("DELETE FROM agents WHERE id = %s", (OTHER,))
    assert db.count("agents") == 1


def test_truncating_agents_alone_is_refused_together_it_is_not(db, fleet):
    with db.unchanged():
        refused(db, "TRUNCATE agents CASCADE", error=psycopg2.errors.FeatureNotSupported)
    db.execute("TRUNCATE agents, executions CASCADE")
    assert db.count("agents") == db.count("executions") == 0


@pytest.mark.parametrize("level", ["REPEATABLE READ", "SERIALIZABLE"])
def test_deletes_of_agents_outside_read_committed_are_refused(db, fleet, level):
    conn = db.connect()
    try:
        with conn.cursor() as cur:
            cur.execute("SET TRANSACTION ISOLATION LEVEL " + level)
            with pytest.raises(psycopg2.errors.ObjectNotInPrerequisiteState):
                cur.execute("DELETE FROM agents WHERE id = %s", (OTHER,))
    finally:
        conn.close()
    assert db.count("agents") == 2


def test_a_concurrent_delete_waits_for_the_inserting_transaction_then_is_refused(db, fleet):
    inserter, deleter = db.connect(), db.connect()
    try:
        with inserter.cursor() as cur:
            cur.execute(INSERT, (OTHER, None))          # OTHER is now locked FOR KEY SHARE
        deleter.autocommit = True
        with deleter.cursor() as cur:
            cur.execute("SET lock_timeout = '300ms'")
            with pytest.raises(psycopg2.errors.LockNotAvailable):
                cur.execute("DELETE FROM agents WHERE id = %s", (OTHER,))
        inserter.commit()
        with deleter.cursor() as cur:
            with pytest.raises(psycopg2.errors.ForeignKeyViolation):
                cur.execute("DELETE FROM agents WHERE id = %s", (OTHER,))
    finally:
        inserter.close()
        deleter.close()
    assert db.scalar("SELECT count(*) FROM executions e "
                     "WHERE NOT EXISTS (SELECT 1 FROM agents a WHERE a.id = e.agent_id)") == 0
