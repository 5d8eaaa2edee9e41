"""test_supervision.py - the dashboards master under stress: a killed worker,
a database outage, a graceful stop with a request in flight, a reload, a
killed master started again by stack.sh's supervisor, and requests in
flight on a killed worker (a read retried once by nginx, a write not).
Each test leaves the stack as it found it (finally blocks, restore fixture);
conftest.py runs this file last."""

import json
import os
import re
import signal
import stat
import subprocess
import threading
import time

import pytest
import requests

from support import STACK_SCRIPT, assert_problem, log_records

LIST = "/api/v1/dashboards"


# ---------------------------------------------------------------- processes

def master_pid(stack):
    return int(stack.pid_file("dashboards").read_text().strip())


def new_master(stack, old):
    """The pid in the dashboards pid file when it is a running master other
    than old, else None."""
    try:
        pid = master_pid(stack)
    except (FileNotFoundError, ValueError):
        return None
    return pid if pid != old and alive(pid) else None


def worker_pids(master):
    result = subprocess.run(["pgrep", "-P", str(master)], capture_output=True, text=True)
    return {int(pid) for pid in result.stdout.split()}


def alive(pid):
    """True while pid exists and is not a zombie."""
    try:
        with open("/proc/%d/stat" % pid) as stat:
            return stat.read().rsplit(")", 1)[1].split()[0] != "Z"
    except FileNotFoundError:
        return False


def wait_until(predicate, timeout, what):
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError("timed out after %ss waiting for %s" % (timeout, what))
        time.sleep(0.05)


def wait_for_workers(stack, master, condition=lambda pids: True, what="all workers to run"):
    """The master's full set of worker pids, once it satisfies condition."""
    def check():
        pids = worker_pids(master)
        return pids if len(pids) == stack.workers and condition(pids) else None
    return wait_until(check, 20, what)


def stack_command(stack, command, *args):
    result = subprocess.run([str(STACK_SCRIPT), command, str(stack.vardir), *args],
                            capture_output=True, text=True, timeout=120, env=dict(os.environ))
    assert result.returncode == 0, "stack.sh %s failed:\n%s%s" % (
        command, result.stdout, result.stderr)


def ready(api):
    try:
        return api.get("/readyz", validate=False, timeout=2).status_code == 200
    except requests.RequestException:
        return False


def log_since(stack, offset):
    with open(stack.log_file("dashboards"), errors="replace") as log:
        log.seek(offset)
        return log.read()


def log_size(stack):
    return stack.log_file("dashboards").stat().st_size


class ClientLoop:
    """A thread that sends GET /api/v1/dashboards back to back until stopped,
    recording every answer that is not a 200 (or an exception)."""

    def __init__(self, api):
        self.api = api
        self.stop = threading.Event()
        self.ok = 0
        self.failures = []
        self.thread = threading.Thread(target=self.run)

    def run(self):
        session = requests.Session()
        session.headers["Authorization"] = "Bearer " + (self.api.key or "")
        while not self.stop.is_set():
            try:
                response = session.get(self.api.url(LIST), timeout=10)
                if response.status_code == 200:
                    self.ok += 1
                else:
                    self.failures.append((response.status_code, response.text[:200]))
            except requests.RequestException as error:
                self.failures.append(("exception", repr(error)[:200]))

    def __enter__(self):
        self.thread.start()
        return self

    def __exit__(self, *exc):
        self.stop.set()
        self.thread.join(15)


@pytest.fixture
def restore(api, stack):
    """After the test: PostgreSQL up, the dashboards master running with all
    its workers, /readyz 200."""
    yield
    if not ready(api):
        subprocess.run([str(STACK_SCRIPT), "pg-start", str(stack.vardir)], capture_output=True)
        try:
            pid = master_pid(stack)
        except (FileNotFoundError, ValueError):
            pid = None
        if pid is None or not alive(pid):
            subprocess.run([str(STACK_SCRIPT), "start-group", str(stack.vardir), "dashboards"],
                           capture_output=True)
    wait_until(lambda: ready(api), 30, "/readyz to answer 200")
    wait_for_workers(stack, master_pid(stack))


# ---------------------------------------------------------------- tests

def busy_worker(stack, offset, workers):
    """The worker that logged the latest request since offset (the one serving
    the client loop), else any worker."""
    pids = [r["pid"] for r in log_records(log_since(stack, offset))
            if "request_id" in r and r["pid"] in workers]
    return pids[-1] if pids else min(workers)


def test_killed_worker_is_replaced_while_a_client_keeps_being_served(api, stack, restore):
    master = master_pid(stack)
    before = wait_for_workers(stack, master)
    offset = log_size(stack)
    with ClientLoop(api) as loop:
        time.sleep(0.5)
        victim = busy_worker(stack, offset, before)
        os.kill(victim, signal.SIGKILL)
        time.sleep(2.5)
    after = wait_for_workers(stack, master, lambda pids: victim not in pids, "a new worker")
    assert after - before, "no new worker pid"
    assert loop.ok > 0
    assert len(loop.failures) <= 1, loop.failures
    assert re.search(r"worker %d (exited|killed)" % victim, log_since(stack, offset))


@pytest.fixture
def database_down(stack, restore):
    stack_command(stack, "pg-stop")
    try:
        yield
    finally:
        stack_command(stack, "pg-start")


def test_database_outage_answers_503_with_retry_after(api, database_down):
    response = api.get(LIST)
    assert_problem(response, 503, "service-unavailable")
    assert re.match(r"^[0-9]+$", response.headers["Retry-After"])


def test_database_outage_refuses_writes_with_503(api, database_down):
    response = api.post(LIST, json={"name": "Ops"})
    assert_problem(response, 503, "service-unavailable")
    assert re.match(r"^[0-9]+$", response.headers["Retry-After"])


def test_database_outage_keeps_healthz_at_200(api, database_down):
    response = api.get("/healthz")
    assert response.status_code == 200
    assert response.json() == {"status": "ok"}


def test_database_outage_makes_readyz_503(api, database_down):
    assert_problem(api.get("/readyz"), 503, "service-unavailable")


def test_database_restart_is_served_again_by_the_same_workers(api, stack, restore):
    master = master_pid(stack)
    before = worker_pids(master)
    stack_command(stack, "pg-stop")
    try:
        for _ in range(2 * stack.workers):
            assert api.get(LIST).status_code == 503
    finally:
        stack_command(stack, "pg-start")
    statuses = [api.get(LIST).status_code for _ in range(4 * stack.workers)]
    assert statuses == [200] * len(statuses)
    assert worker_pids(master) == before


def test_sigterm_finishes_the_request_in_flight_and_exits_0(api, stack, db, restore):
    master = master_pid(stack)
    offset = log_size(stack)
    locker = db.connect()
    answer = {}
    try:
        locker.cursor().execute("LOCK TABLE dashboards IN ACCESS EXCLUSIVE MODE")
        client = threading.Thread(target=lambda: answer.update(
            response=api.get(LIST, validate=False, timeout=30)))
        client.start()
        wait_until(lambda: db.scalar("SELECT count(*) FROM pg_locks WHERE NOT granted "
                                     "AND relation = 'dashboards'::regclass"), 10,
                   "the request to wait for the lock")
        os.kill(master, signal.SIGTERM)
        time.sleep(1)
        assert alive(master), "the master did not wait for the request in flight"
        locker.rollback()
        client.join(20)
    finally:
        locker.close()
    response = answer["response"]
    assert response.status_code == 200, response.text
    api.openapi.check_response(response)
    wait_until(lambda: not alive(master), 20, "the master to exit")
    assert "stopped (exit code 0)" in log_since(stack, offset)
    # Told to stop by someone else than stack.sh: the supervisor starts it again.
    wait_until(lambda: new_master(stack, master), 10, "the supervisor to start a new master")
    wait_until(lambda: ready(api), 20, "/readyz after the restart")


def test_sighup_replaces_every_worker_without_a_failed_request(api, stack, restore):
    master = master_pid(stack)
    before = wait_for_workers(stack, master)
    with ClientLoop(api) as loop:
        time.sleep(0.3)
        os.kill(master, signal.SIGHUP)
        after = wait_for_workers(stack, master, lambda pids: not pids & before,
                                 "every worker to be replaced")
        time.sleep(0.5)
    assert alive(master) and master_pid(stack) == master
    assert not after & before
    assert loop.ok > 0
    assert loop.failures == []


def group_processes(stack):
    """Pids of every live process carrying the dashboards --listen argument
    (supervisor, master, workers)."""
    arg = b"unix:%s" % bytes(stack.vardir / "run" / "dashboards.sock")
    pids = []
    for entry in os.listdir("/proc"):
        try:
            with open("/proc/%s/cmdline" % entry, "rb") as cmdline:
                if arg in cmdline.read().split(b"\0") and alive(int(entry)):
                    pids.append(int(entry))
        except (OSError, ValueError):
            pass
    return pids


def test_a_killed_master_is_started_again_by_its_supervisor(api, stack, restore):
    master = master_pid(stack)
    workers = wait_for_workers(stack, master)
    offset = log_size(stack)
    os.kill(master, signal.SIGKILL)
    new = wait_until(lambda: new_master(stack, master), 10, "a new master")
    # The old workers stop when their master dies (they would hold the socket).
    wait_until(lambda: not any(alive(pid) for pid in workers), 10, "the old workers to exit")
    assert not wait_for_workers(stack, new) & workers
    wait_until(lambda: ready(api), 10, "/readyz from the new master")
    assert api.get(LIST).status_code == 200
    assert ("stack.sh: the master of dashboards exited with status 137; starting it again in 1s"
            in log_since(stack, offset))
    stack_command(stack, "up")           # idempotent: the new master is kept
    assert master_pid(stack) == new


def test_stop_group_stops_the_supervisor_too(api, stack, restore):
    supervisor_file = stack.vardir / "run" / "dashboards.supervisor"
    supervisor = int(supervisor_file.read_text())
    assert alive(supervisor) and alive(master_pid(stack))
    stack_command(stack, "stop-group", "dashboards")
    time.sleep(1.5)                      # longer than the supervisor's restart pause
    assert group_processes(stack) == []
    assert not supervisor_file.exists() and not stack.pid_file("dashboards").exists()
    stack_command(stack, "start-group", "dashboards")
    assert alive(int(supervisor_file.read_text())) and alive(master_pid(stack))
    wait_until(lambda: ready(api), 10, "/readyz after start-group")


def test_group_socket_is_reachable_by_every_user(stack):
    mode = os.stat(stack.vardir / "run" / "dashboards.sock").st_mode
    assert stat.S_ISSOCK(mode)
    assert stat.S_IMODE(mode) == 0o666


# ------------------------------------------------- a worker dies mid-request

def waiting_for_dashboards(db):
    """Backends of the dashboards group waiting for a lock on dashboards
    (other groups' reads of it, the streams' or the answers job's, wait
    too while the test holds it, and are not counted)."""
    return db.scalar("SELECT count(*) FROM pg_locks l JOIN pg_stat_activity a USING (pid) "
                     "WHERE NOT l.granted AND l.relation = 'dashboards'::regclass "
                     "AND a.application_name = 'fleetdash-dashboards'")


def retried_in_access_log(stack, offset, method):
    """Access log lines since offset of method requests that nginx sent to
    more than one upstream try ("t1, t2" in upstream_response_time)."""
    with open(stack.vardir / "log" / "nginx-access.log") as log:
        log.seek(offset)
        lines = [json.loads(line) for line in log if line.strip()]
    return [l for l in lines if l["method"] == method and "," in l["upstream_response_time"]]


def kill_one_worker_mid_request(api, stack, db, sends):
    """Holds a lock on dashboards, sends one request per worker (sends:
    (method, path, body) each) so that every worker waits in PostgreSQL,
    SIGKILLs one of them, then lets the lock go. Returns the responses in the
    order of sends and the access log offset from before the requests."""
    master = master_pid(stack)
    wait_for_workers(stack, master)
    access_log = stack.vardir / "log" / "nginx-access.log"
    offset = access_log.stat().st_size
    answers = [None] * len(sends)

    def send(i, method, path, body):
        kw = {} if body is None else {"json": body}
        answers[i] = api.request(method, path, validate=False, timeout=30, **kw)

    threads = [threading.Thread(target=send, args=(i, *s)) for i, s in enumerate(sends)]
    locker = db.connect()
    try:
        locker.cursor().execute("LOCK TABLE dashboards IN ACCESS EXCLUSIVE MODE")
        for thread in threads:
            thread.start()
        wait_until(lambda: waiting_for_dashboards(db) == len(sends), 10,
                   "a request waiting in every worker")
        os.kill(min(worker_pids(master)), signal.SIGKILL)
        # Retried: the request waits again, in the worker started instead
        # (the killed one's backend still waits too). Not retried: answered.
        wait_until(lambda: waiting_for_dashboards(db) == len(sends) + 1
                   or any(a is not None for a in answers), 10, "a retry or an answer")
        locker.rollback()
        for thread in threads:
            thread.join(30)
    finally:
        locker.close()
    assert len(sends) == stack.workers
    return answers, offset


@pytest.mark.parametrize("method", ["GET", "HEAD"])
def test_a_read_in_flight_on_a_killed_worker_is_retried_and_answered(api, stack, db, restore,
                                                                     method):
    answers, offset = kill_one_worker_mid_request(
        api, stack, db, [(method, LIST, None)] * stack.workers)
    assert [a.status_code for a in answers] == [200] * stack.workers
    if method == "GET":
        for answer in answers:
            api.openapi.check_response(answer)
    retried = wait_until(lambda: retried_in_access_log(stack, offset, method), 5,
                         "the retried request in the access log")
    assert len(retried) == 1 and retried[0]["status"] == 200


@pytest.mark.parametrize("method, status", [
    ("POST", 201), ("PUT", 200), ("PATCH", 200), ("DELETE", 204)])
def test_a_write_in_flight_on_a_killed_worker_is_not_retried(api, stack, db, restore,
                                                             make_dashboard, method, status):
    if method == "POST":
        sends = [("POST", LIST, {"name": "Ops %d" % i}) for i in range(stack.workers)]
    else:
        ids = [make_dashboard(name="Ops %d" % i)["id"] for i in range(stack.workers)]
        body = {"PUT": {"name": "Replaced"}, "PATCH": {"description": "changed"},
                "DELETE": None}[method]
        sends = [(method, "%s/%s" % (LIST, i), body) for i in ids]
    answers, offset = kill_one_worker_mid_request(api, stack, db, sends)
    statuses = sorted(a.status_code for a in answers)
    assert statuses == sorted([status] * (stack.workers - 1) + [503])
    failed = [a for a in answers if a.status_code == 503][0]
    assert_problem(failed, 503, "service-unavailable")
    time.sleep(1.5)                       # the access log is flushed every second
    assert retried_in_access_log(stack, offset, method) == []
