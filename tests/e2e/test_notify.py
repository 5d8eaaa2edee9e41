"""test_notify.py - the systemd notify protocol (sd_notify(3)) of a master
of its own, outside the stack, told to speak to a datagram socket of the
test's own (NOTIFY_SOCKET): READY=1 once the database answers (and not
before), RELOADING=1 then READY=1 around a SIGHUP's replacement, WATCHDOG=1
every half WATCHDOG_USEC while it lives and none while it is frozen
(SIGSTOP), STOPPING=1 on SIGTERM; the workers inherit none of it."""

import os
import signal
import socket as sockets
import struct
import subprocess
import time

import pytest

from test_supervision import wait_until, worker_pids


class Listener:
    """A unix datagram socket playing systemd: the messages it got, each a
    dict of its assignments, with the time it arrived; the pids that sent
    them (as systemd's NotifyAccess=main checks)."""

    def __init__(self, path):
        self.path = str(path)
        self.sock = sockets.socket(sockets.AF_UNIX, sockets.SOCK_DGRAM)
        self.sock.setsockopt(sockets.SOL_SOCKET, sockets.SO_PASSCRED, 1)   # who sent it
        self.sock.bind(self.path)
        self.sock.setblocking(False)
        self.messages = []
        self.senders = set()

    def poll(self):
        while True:
            try:
                data, ancillary, _, _ = self.sock.recvmsg(4096, sockets.CMSG_SPACE(12))
            except BlockingIOError:
                return self.messages
            for level, kind, value in ancillary:
                if (level, kind) == (sockets.SOL_SOCKET, sockets.SCM_CREDENTIALS):
                    self.senders.add(struct.unpack("iII", value[:12])[0])
            fields = dict(line.split("=", 1) for line in data.decode().split("\n") if line)
            self.messages.append((time.monotonic(), fields))

    def having(self, key, value=None):
        return [(t, m) for t, m in self.poll() if key in m and (value is None or m[key] == value)]

    def wait_for(self, key, value=None, count=1, timeout=10):
        return wait_until(lambda: len(self.having(key, value)) >= count and
                          self.having(key, value), timeout, "%s=%s from the master" % (key, value))

    def close(self):
        self.sock.close()


@pytest.fixture
def notified(stack, tmp_path):
    """Starts `fleetdashd --group hello` with NOTIFY_SOCKET (and the given
    environment); yields (process, listener)."""
    started = []

    def start(workers=2, **env):
        listener = Listener(tmp_path / ("notify-%d.sock" % len(started)))
        log = open(tmp_path / "master.log", "w")
        environment = dict(os.environ, NOTIFY_SOCKET=listener.path, **env)
        proc = subprocess.Popen([stack.env["FLEETDASHD"], "--group", "hello", "--workers",
                                 str(workers), "--listen", "unix:%s" % (tmp_path / "hello.sock")],
                                stdout=log, stderr=log, env=environment,
                                cwd=stack.env.get("VARDIR"))
        started.append((proc, listener))
        proc.log = tmp_path / "master.log"
        return proc, listener

    yield start
    for proc, listener in started:
        if proc.poll() is None:
            os.kill(proc.pid, signal.SIGCONT)
            proc.send_signal(signal.SIGTERM)
            proc.wait(timeout=40)
        listener.close()


def test_ready_once_the_database_answers_then_stopping_on_sigterm(notified):
    proc, listener = notified()
    (_, ready), = listener.wait_for("READY", "1")
    assert ready["STATUS"].startswith("serving with "), ready
    wait_until(lambda: len(worker_pids(proc.pid)) == 2, 10, "two workers")
    proc.send_signal(signal.SIGTERM)
    assert proc.wait(timeout=40) == 0
    (_, stopping), = listener.having("STOPPING", "1")
    assert len(listener.having("READY")) == 1
    assert listener.senders == {proc.pid}            # only the master speaks
    assert "ready: told systemd" in proc.log.read_text()


def test_no_ready_while_the_database_does_not_answer(notified, tmp_path):
    # a server that is not there: the master waits, says why, and is not ready
    proc, listener = notified(FLEETDASH_DATABASE_URL="host=%s port=1 dbname=none" % tmp_path)
    listener.wait_for("STATUS", "waiting for the database to answer", count=2, timeout=10)
    assert listener.having("READY") == []
    assert proc.poll() is None


def test_reloading_then_ready_around_a_sighup(notified):
    proc, listener = notified()
    listener.wait_for("READY", "1")
    wait_until(lambda: len(worker_pids(proc.pid)) == 2, 10, "two workers")
    old = set(worker_pids(proc.pid))
    proc.send_signal(signal.SIGHUP)
    (_, reloading), = listener.wait_for("RELOADING", "1")
    assert int(reloading["MONOTONIC_USEC"]) > 0
    readies = listener.wait_for("READY", "1", count=2, timeout=20)
    assert readies[1][0] > listener.having("RELOADING")[0][0]
    assert not old & set(worker_pids(proc.pid))       # every worker replaced by then


def test_the_watchdog_is_fed_while_the_master_lives_and_not_while_it_is_frozen(notified):
    proc, listener = notified(WATCHDOG_USEC="400000")         # WATCHDOG=1 every 0.2 s
    listener.wait_for("WATCHDOG", "1", count=5, timeout=10)
    pings = [t for t, _ in listener.having("WATCHDOG")]
    gaps = [b - a for a, b in zip(pings, pings[1:])]
    assert max(gaps) < 0.4, gaps
    os.kill(proc.pid, signal.SIGSTOP)
    time.sleep(0.3)                                          # one in flight may land
    frozen = len(listener.having("WATCHDOG"))
    time.sleep(1.0)
    assert len(listener.having("WATCHDOG")) == frozen        # systemd would kill it now
    os.kill(proc.pid, signal.SIGCONT)
    listener.wait_for("WATCHDOG", "1", count=frozen + 2, timeout=5)
    assert listener.senders == {proc.pid}


def cpu_seconds(pid):
    """User + system CPU time of a process so far."""
    fields = open("/proc/%d/stat" % pid).read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


@pytest.mark.parametrize("told", [True, False])
def test_an_idle_master_sleeps(notified, stack, tmp_path, told):
    # a master waits for signals and deadlines: idle, it spends no CPU,
    # whether it speaks to systemd (ready) or not (no NOTIFY_SOCKET)
    if told:
        proc, listener = notified(workers=1)
        listener.wait_for("READY", "1")
    else:
        log = open(tmp_path / "quiet.log", "w")
        proc = subprocess.Popen([stack.env["FLEETDASHD"], "--group", "hello", "--workers", "1",
                                 "--listen", "unix:%s" % (tmp_path / "quiet.sock")],
                                stdout=log, stderr=log,
                                env={k: v for k, v in os.environ.items()
                                     if k != "NOTIFY_SOCKET"})
    try:
        wait_until(lambda: len(worker_pids(proc.pid)) == 1, 10, "the worker")
        before = cpu_seconds(proc.pid)
        time.sleep(2)
        assert cpu_seconds(proc.pid) - before < 0.2          # a busy loop would take ~2 s
    finally:
        if not told:
            proc.send_signal(signal.SIGTERM)
            proc.wait(timeout=30)


def test_a_watchdog_of_another_pid_is_not_ours(notified):
    proc, listener = notified(WATCHDOG_USEC="400000", WATCHDOG_PID="1")
    listener.wait_for("READY", "1")
    time.sleep(0.6)
    assert listener.having("WATCHDOG") == []
