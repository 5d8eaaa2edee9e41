"""test_maintenance.py - `fleetdashd --group maintenance` on its own, outside
the stack (no nginx, no socket), against a scratch database of the stack's
PostgreSQL whose rollup_refresh() and idempotency_expire() are stand-ins that
record every call: the refresh interval, one worker, SIGTERM during a
statement and during a pause, an unreachable database (logged once, retried
without spinning, recovered), a lost connection; and the stack's own
maintenance group."""

import re
import signal
import subprocess
import time
import uuid

import psycopg2
import pytest

from support import log_records
from test_supervision import alive, wait_until, worker_pids

# Stand-ins with the real signatures: rollup_refresh() returns the rows it
# "folded" (3), after sleeping once for what a test put in `pause`;
# idempotency_expire() the keys it "removed" (2); the three tables the
# job vacuums after folding.
STAND_INS = """
CREATE TABLE rollup_delta (x int);
CREATE TABLE rollup_errors_delta (x int);
CREATE TABLE rollup_changes (x int);
CREATE TABLE answer_cache (x int);
CREATE TABLE calls (id bigserial PRIMARY KEY, name text NOT NULL,
                    slept float8 NOT NULL DEFAULT 0, at timestamptz NOT NULL DEFAULT clock_timestamp());
CREATE TABLE pause (seconds float8 NOT NULL);
CREATE FUNCTION rollup_refresh() RETURNS integer LANGUAGE plpgsql AS $$
DECLARE
    v_pause float8;
BEGIN
    DELETE FROM pause RETURNING seconds INTO v_pause;
    PERFORM pg_sleep(coalesce(v_pause, 0));
    INSERT INTO calls (name, slept) VALUES ('rollup_refresh', coalesce(v_pause, 0));
    RETURN 3;
END $$;
CREATE FUNCTION idempotency_expire() RETURNS bigint LANGUAGE plpgsql AS $$
BEGIN
    INSERT INTO calls (name) VALUES ('idempotency_expire');
    RETURN 2;
END $$;
CREATE FUNCTION activity_sequence() RETURNS integer LANGUAGE sql AS $$ SELECT 0 $$;
CREATE FUNCTION agents_watch_silence() RETURNS integer LANGUAGE sql AS $$ SELECT 0 $$;
CREATE FUNCTION answer_cache_prune() RETURNS integer LANGUAGE sql AS $$ SELECT 0 $$;
CREATE FUNCTION audit_expire(days integer) RETURNS integer LANGUAGE plpgsql AS $$
BEGIN
    INSERT INTO calls (name) VALUES ('audit_expire');
    RETURN 0;
END $$;
"""

INTERVAL_MS = 50


# ---------------------------------------------------------------- fixtures

class Scratch:
    """Scratch databases on the stack's server, made from one template that
    holds the stand-ins (CREATE DATABASE ... TEMPLATE is atomic: a job that
    connects sees the stand-ins at once or no database at all)."""

    def __init__(self, stack):
        self.params = dict(host=stack.env["PGHOST"], port=stack.env["PGPORT"],
                           user=stack.env.get("PGUSER", "postgres"))
        self.prefix = "fd_maintenance_%s" % uuid.uuid4().hex[:8]
        self.template = self.prefix + "_template"
        self.names = [self.template]
        self.admin(['CREATE DATABASE "%s"' % self.template])
        with self.connect(self.template) as conn, conn.cursor() as cur:
            cur.execute(STAND_INS)
        conn.close()

    def connect(self, name):
        return psycopg2.connect(dbname=name, **self.params)

    def admin(self, statements):
        conn = self.connect("postgres")
        conn.autocommit = True
        try:
            with conn.cursor() as cur:
                for statement in statements:
                    cur.execute(statement)
        finally:
            conn.close()

    def name(self):
        """A fresh database name, not created yet."""
        name = "%s_%d" % (self.prefix, len(self.names))
        self.names.append(name)
        return name

    def create(self, name=None):
        name = name or self.name()
        self.admin(['CREATE DATABASE "%s" TEMPLATE "%s"' % (name, self.template)])
        return name

    def url(self, name):
        return "host=%(host)s port=%(port)s user=%(user)s" % self.params + " dbname=" + name

    def rows(self, name, statement, params=None):
        conn = self.connect(name)
        conn.autocommit = True
        try:
            with conn.cursor() as cur:
                cur.execute(statement, params)
                return cur.fetchall() if cur.description else None
        finally:
            conn.close()

    def calls(self, name, function="rollup_refresh"):
        return self.rows(name, "SELECT slept, at FROM calls WHERE name = %s ORDER BY id",
                         (function,))

    def drop_all(self):
        self.admin(['DROP DATABASE IF EXISTS "%s" WITH (FORCE)' % name
                    for name in reversed(self.names)])


@pytest.fixture(scope="module")
def scratch(stack):
    databases = Scratch(stack)
    yield databases
    databases.drop_all()


@pytest.fixture
def job(stack, tmp_path):
    """Starts `fleetdashd --group maintenance` with the given database and
    flags; returns the process, with .log (its path) and .text() (its log)."""
    started = []

    def start(database_url, *flags):
        log_path = tmp_path / ("maintenance-%d.log" % len(started))
        log = open(log_path, "w")
        proc = subprocess.Popen([stack.env["FLEETDASHD"], "--group", "maintenance",
                                 "--database-url", database_url,
                                 "--refresh-interval", str(INTERVAL_MS), *flags],
                                stdout=log, stderr=log, cwd=stack.env.get("VARDIR"))
        log.close()
        started.append(proc)
        proc.log = log_path
        proc.text = log_path.read_text
        wait_until(lambda: "running the rollups job" in proc.text(), 10, "the job master")
        return proc

    yield start
    for proc in started:
        if proc.poll() is None:
            proc.send_signal(signal.SIGTERM)
            proc.wait(timeout=40)


def stop(proc, within):
    """SIGTERM to the master; returns (exit code, seconds it took)."""
    begin = time.monotonic()
    proc.send_signal(signal.SIGTERM)
    code = proc.wait(timeout=within)
    return code, time.monotonic() - begin


def busy_statement(scratch, name):
    """True while the job's rollup_refresh() runs in database name."""
    return scratch.rows("postgres", "SELECT count(*) FROM pg_stat_activity WHERE datname = %s "
                        "AND state = 'active' AND query = 'SELECT rollup_refresh() AS value'",
                        (name,))[0][0] == 1


# ---------------------------------------------------------------- tests

def test_rollup_refresh_runs_every_interval_and_keys_expire_at_start(job, scratch):
    name = scratch.create()
    proc = job(scratch.url(name))
    calls = wait_until(lambda: len(scratch.calls(name)) >= 6 and scratch.calls(name), 15,
                       "six rollup_refresh() calls")
    gaps = [(b[1] - a[1]).total_seconds() for a, b in zip(calls, calls[1:])]
    assert min(gaps) >= INTERVAL_MS / 1000 * 0.8, gaps          # paused between runs
    assert len(scratch.calls(name, "idempotency_expire")) == 1    # then hourly
    assert len(scratch.calls(name, "audit_expire")) == 1          # with it
    code, _ = stop(proc, 10)
    assert code == 0
    messages = [r.get("msg", "") for r in log_records(proc.text())]
    summary = next(filter(None, (re.fullmatch(
        r'rollup refresh: (\d+) runs in \d+s, (\d+) rows folded, slowest run [0-9.]+ ms, '
        r'0 skipped \(another refresher was at work\), 0 failed', m) for m in messages)), None)
    assert summary, proc.text()
    assert int(summary.group(2)) == 3 * int(summary.group(1))
    assert "expired 2 idempotency keys" in proc.text()
    vacuumed = scratch.rows(name, "SELECT count(*) FROM pg_stat_user_tables WHERE relname IN "
                            "('rollup_delta', 'rollup_errors_delta', 'rollup_changes', "
                            "'answer_cache') AND last_vacuum IS NOT NULL")
    assert vacuumed[0][0] == 4                                   # after folding


def test_the_job_runs_one_worker_and_ignores_listen(job, scratch, tmp_path):
    socket = tmp_path / "maintenance.sock"
    proc = job(scratch.url(scratch.create()), "--listen", "unix:%s" % socket)
    assert len(wait_until(lambda: worker_pids(proc.pid), 10, "the worker")) == 1
    time.sleep(0.3)
    assert len(worker_pids(proc.pid)) == 1
    assert not socket.exists()
    assert "--listen unix:%s ignored: group maintenance runs a job" % socket in proc.text()


def test_sigterm_during_a_refresh_finishes_it_then_exits_0(job, scratch):
    name = scratch.create()
    scratch.rows(name, "INSERT INTO pause VALUES (1.5)")
    proc = job(scratch.url(name))
    wait_until(lambda: busy_statement(scratch, name), 10, "rollup_refresh() in flight")
    code, seconds = stop(proc, 20)
    assert code == 0, proc.text()
    assert [slept for slept, _ in scratch.calls(name)] == [1.5]   # committed, not cancelled
    assert seconds < 10
    assert re.search(r"worker \d+ exited with code 0", proc.text())


def test_sigterm_during_a_pause_exits_0_at_once(job, scratch):
    name = scratch.create()
    proc = job(scratch.url(name), "--refresh-interval", "600000")
    wait_until(lambda: scratch.calls(name), 10, "the first rollup_refresh()")
    time.sleep(0.2)
    code, seconds = stop(proc, 10)
    assert code == 0
    assert seconds < 3
    assert len(scratch.calls(name)) == 1
    assert any(r.get("msg", "").startswith("rollup refresh: 1 runs in")
               for r in log_records(proc.text())), proc.text()


def test_an_unreachable_database_is_logged_once_retried_slowly_and_recovered(job, scratch,
                                                                                stack):
    name = scratch.name()                                    # no such database yet
    postgres_log = stack.vardir / "log" / "postgres.log"
    offset = postgres_log.stat().st_size
    proc = job(scratch.url(name))
    time.sleep(3)
    assert proc.poll() is None
    assert len(worker_pids(proc.pid)) == 1
    assert proc.text().count("database unavailable") == 1
    with open(postgres_log, errors="replace") as log:
        log.seek(offset)
        attempts = log.read().count('database "%s" does not exist' % name)
    assert 1 <= attempts <= 12, attempts                     # backs off: no spinning
    scratch.create(name)
    wait_until(lambda: scratch.calls(name), 20, "rollup_refresh() after the outage")
    assert any(re.fullmatch(r"database available again after [0-9.]+s", r.get("msg", ""))
               for r in log_records(proc.text())), proc.text()
    assert proc.text().count("database unavailable") == 1
    code, _ = stop(proc, 10)
    assert code == 0


def test_a_lost_connection_is_replaced_by_the_same_worker(job, scratch):
    name = scratch.create()
    proc = job(scratch.url(name))
    wait_until(lambda: scratch.calls(name), 10, "the first rollup_refresh()")
    worker = worker_pids(proc.pid)
    scratch.rows("postgres", "SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
                 "WHERE datname = %s AND application_name = 'fleetdash-maintenance'", (name,))
    before = len(scratch.calls(name))
    wait_until(lambda: len(scratch.calls(name)) >= before + 3, 15, "more calls")
    assert worker_pids(proc.pid) == worker
    assert "exited" not in proc.text() and "killed" not in proc.text()


def test_the_stack_runs_the_maintenance_group(stack, db):
    if "maintenance" not in stack.env.get("FLEETDASH_GROUPS", "").split():
        pytest.skip("the stack runs no maintenance group")
    master = int(stack.pid_file("maintenance").read_text())
    assert alive(master)
    assert len(wait_until(lambda: worker_pids(master), 10, "the maintenance worker")) == 1
    wait_until(lambda: db.scalar("SELECT count(*) FROM pg_stat_activity "
                                 "WHERE application_name = 'fleetdash-maintenance' "
                                 "AND datname = current_database()") == 1, 10,
               "the maintenance worker's connection")
