"""test_db_restart.py - workers idle across a PostgreSQL restart answer their
first requests right: the connection the server closed while it was idle is
replaced before any statement runs, and 503 is only for a database that is
really away; and PostgreSQL runs with the malloc settings deploy/stack.sh gives it."""

import subprocess
import time
from concurrent.futures import ThreadPoolExecutor

import pytest

from support import STACK_SCRIPT, error_fields

CONCURRENT = 8
EXECUTION = {"agent_name": "restart-probe", "version": "1.0.0", "model": "m",
             "started_at": "2026-11-21T10:00:00Z", "latency_ms": 5, "status": "succeeded"}
BACKWARDS = "/api/v1/executions/summary?from=2026-11-21T10:00:00Z&to=2026-11-20T10:00:00Z"


def stack_command(stack, command):
    result = subprocess.run([str(STACK_SCRIPT), command, str(stack.vardir)],
                            capture_output=True, text=True, timeout=60)
    assert result.returncode == 0, result.stderr


def concurrently(call, n=CONCURRENT):
    with ThreadPoolExecutor(max_workers=n) as pool:
        return list(pool.map(lambda i: call(i), range(n)))


@pytest.fixture
def idle_restart(api, stack):
    """Every worker of every group holds a connection, then PostgreSQL
    restarts while no request runs; the test starts a second later."""
    def warm():
        concurrently(lambda i: api.get("/api/v1/dashboards"), 4 * stack.workers)
        concurrently(lambda i: api.get("/api/v1/executions/summary?time_range=1h"),
                     4 * stack.workers)
        concurrently(lambda i: api.get("/api/v1/agents"), 4 * stack.workers)

    def restart():
        warm()
        stack_command(stack, "pg-stop")
        stack_command(stack, "pg-start")
        time.sleep(1)
    return restart


@pytest.mark.ingest
def test_dashboard_posts_after_an_idle_restart_are_all_created(api, idle_restart):
    idle_restart()
    statuses = concurrently(lambda i: api.post(
        "/api/v1/dashboards", json={"name": "after restart %d" % i}).status_code)
    assert statuses == [201] * CONCURRENT


@pytest.mark.ingest
def test_execution_posts_after_an_idle_restart_are_all_stored(api, db, idle_restart):
    idle_restart()
    statuses = concurrently(lambda i: api.post("/api/v1/executions",
                                               json=EXECUTION).status_code)
    assert statuses == [200] * CONCURRENT
    assert db.scalar("SELECT count(*) FROM executions") == CONCURRENT


def test_default_dashboard_after_an_idle_restart_answers_200(api, idle_restart):
    idle_restart()
    statuses = concurrently(lambda i: api.get("/api/v1/dashboards/default").status_code)
    assert statuses == [200] * CONCURRENT


def test_backwards_range_after_an_idle_restart_is_422_not_503(api, idle_restart):
    idle_restart()
    responses = concurrently(lambda i: api.get(BACKWARDS))
    assert [r.status_code for r in responses] == [422] * CONCURRENT
    assert all(error_fields(r) == {"from", "to"} for r in responses)


def test_database_really_down_is_still_503(api, stack):
    stack_command(stack, "pg-stop")
    try:
        responses = concurrently(lambda i: api.get("/api/v1/dashboards/default"))
    finally:
        stack_command(stack, "pg-start")
    assert [r.status_code for r in responses] == [503] * CONCURRENT
    assert all(r.headers.get("Retry-After") for r in responses)


def test_backwards_range_with_the_database_down_is_still_422(api, stack):
    # A worker keeps what it read of a key while the database is away (up
    # to five minutes); one that never read this key cannot check it then
    # and answers 503. So first every aggregates worker reads it: requests
    # at once, more of them than there are workers, keep them all busy.
    for _ in range(5):
        assert {r.status_code for r in concurrently(lambda i: api.get(BACKWARDS), 16)} == {422}
    stack_command(stack, "pg-stop")
    try:
        responses = concurrently(lambda i: api.get(BACKWARDS))
    finally:
        stack_command(stack, "pg-start")
    for response in responses:
        assert error_fields(response) == {"from", "to"}


def postmaster_environment(stack):
    pid = (stack.vardir / "pg" / "postmaster.pid").read_text().split("\n")[0]
    with open("/proc/%s/environ" % pid, "rb") as f:
        entries = f.read().split(b"\0")
    # glibc reads GLIBC_TUNABLES in place, writing a NUL over each ':' between
    # two tunables: the entries after it that name a tunable are its own
    for i, v in enumerate(entries):
        if v.startswith(b"GLIBC_TUNABLES="):
            j = i + 1
            while j < len(entries) and entries[j].startswith(b"glibc."):
                j += 1
            entries[i:j] = [b":".join(entries[i:j])]
            break
    return dict(v.split(b"=", 1) for v in entries if b"=" in v)


TUNABLES = b"glibc.malloc.mmap_threshold=8388608:glibc.malloc.trim_threshold=16777216"


def test_postgres_runs_with_the_heap_up_to_8_mb_also_after_a_restart(api, stack, idle_restart):
    """deploy/stack.sh starts PostgreSQL with glibc's mmap threshold at 8 MB
    and its trim threshold at 16 MB (deploy/README.md: why, and how a
    packaged cluster gets them)."""
    assert postmaster_environment(stack).get(b"GLIBC_TUNABLES") == TUNABLES
    idle_restart()
    assert postmaster_environment(stack).get(b"GLIBC_TUNABLES") == TUNABLES
    assert api.get("/api/v1/executions/summary?time_range=1h").status_code == 200
