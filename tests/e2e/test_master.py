"""test_master.py - a fleetdashd master of its own, outside the stack, spoken
to over FastCGI with libfcgi's cgi-fcgi: recycling after --max-requests,
a crash storm that slows respawning down but never stops the master, every
worker killed at once replaced at once, a second master refused on a live
socket, and bad options refused with a message."""

import os
import re
import signal
import socket as sockets
import subprocess
import time

import pytest

from test_supervision import alive, wait_until, worker_pids


@pytest.fixture
def own_master(stack, tmp_path):
    """Starts `fleetdashd --group hello` on a private socket; yields a handle."""
    started = []

    def start(*flags):
        socket = tmp_path / "hello.sock"
        log = open(tmp_path / "master.log", "w")
        proc = subprocess.Popen([stack.env["FLEETDASHD"], "--group", "hello",
                                 "--listen", "unix:%s" % socket, *flags],
                                stdout=log, stderr=log, cwd=stack.env.get("VARDIR"))
        started.append(proc)
        wait_until(lambda: "listening on" in (tmp_path / "master.log").read_text(), 10,
                   "the master to listen")
        proc.socket = socket
        proc.log = tmp_path / "master.log"
        return proc

    yield start
    for proc in started:
        if proc.poll() is None:
            proc.send_signal(signal.SIGTERM)
            proc.wait(timeout=40)


def fastcgi_get(socket, path):
    """One FastCGI request through cgi-fcgi; returns its raw output."""
    env = dict(os.environ, REQUEST_METHOD="GET", DOCUMENT_URI=path, REQUEST_URI=path,
               QUERY_STRING="", REQUEST_ID="test-master")
    result = subprocess.run(["cgi-fcgi", "-bind", "-connect", str(socket)], env=env,
                            capture_output=True, text=True, timeout=10)
    return result.stdout


def test_a_worker_is_recycled_after_max_requests_and_no_request_fails(own_master):
    master = own_master("--workers", "1", "--max-requests", "3")
    first = wait_until(lambda: worker_pids(master.pid), 10, "a worker")
    answers = [fastcgi_get(master.socket, "/hello") for _ in range(7)]
    assert all("Status: 200 OK" in a and '{"hello":"world"}' in a for a in answers), answers
    later = wait_until(lambda: worker_pids(master.pid), 10, "a worker")
    assert later.isdisjoint(first)
    log = master.log.read_text()
    assert log.count("recycling after 3 requests") == 2
    assert log.count("exited with code 0") == 2


def kill_workers_as_they_appear(master, deaths):
    """SIGKILLs every worker of master as soon as it shows, until `deaths`
    workers were killed; returns the time of the last kill."""
    killed = set()
    while len(killed) < deaths:
        assert master.poll() is None, "the master exited during the storm"
        for pid in worker_pids(master.pid) - killed:
            if len(killed) < deaths and alive(pid):
                os.kill(pid, signal.SIGKILL)
                killed.add(pid)
        time.sleep(0.02)
    return time.monotonic()


STORM = "crash storm: 5 workers crashed within 10s"
PAUSES = re.compile(r"killed by signal 9 \(Killed\) after [0-9.]+s; crash storm: next worker in "
                    r"(\d+)ms")


def test_a_crash_storm_slows_respawning_down_and_the_master_keeps_serving(own_master):
    master = own_master("--workers", "2")    # a storm: max(5, 2 x 2) crashes within 10 s
    kill_workers_as_they_appear(master, 10)
    # Served during the storm: the socket stayed open, the request waited for
    # the next paced worker.
    assert "Status: 200 OK" in fastcgi_get(master.socket, "/hello")
    wait_until(lambda: "crash storm over" in master.log.read_text(), 10, "the storm to end")
    assert master.poll() is None
    assert master.socket.exists()
    wait_until(lambda: len(worker_pids(master.pid)) == 2, 10, "two workers again")
    assert "Status: 200 OK" in fastcgi_get(master.socket, "/hello")
    log = master.log.read_text()
    assert log.count(STORM) == 1, log
    # One reap line per death, the first four before the storm without a
    # pause; from the fifth on each names the pause it causes: doubling,
    # capped at a second.
    assert log.count("killed by signal 9") == 10
    assert [int(ms) for ms in PAUSES.findall(log)] == [125, 250, 500, 1000, 1000, 1000]
    assert log.index(STORM) < log.index("next worker in 125ms")
    assert re.search(r"crash storm over: 6 crashes in [0-9.]+s, none for 3s", log), log


def test_crashes_slower_than_a_storm_are_respawned_without_pause(own_master):
    master = own_master("--workers", "2")
    for _ in range(2):
        kill_workers_as_they_appear(master, 2)   # 4 crashes: under the 5 of a storm
        wait_until(lambda: len(worker_pids(master.pid)) == 2, 10, "two workers again")
    log = master.log.read_text()
    assert log.count("killed by signal 9") == 4
    assert "crash storm" not in log


def test_every_worker_killed_at_once_is_replaced_at_once(own_master):
    master = own_master("--workers", "4")
    before = wait_until(lambda: (lambda p: p if len(p) == 4 else None)(worker_pids(master.pid)),
                        10, "four workers")
    for pid in before:
        os.kill(pid, signal.SIGKILL)
    killed = time.monotonic()
    after = wait_until(lambda: (lambda p: p if len(p) == 4 and not p & before else None)(
        worker_pids(master.pid)), 10, "four new workers")
    # A generous bound (the sanitizer build on a loaded 2-core machine took
    # up to 0.5 s); tests/soak/soak_kill.sh measures the real figure against
    # its goal of 100 ms.
    assert time.monotonic() - killed < 1.5
    assert len(after) == 4
    assert "Status: 200 OK" in fastcgi_get(master.socket, "/hello")
    log = master.log.read_text()
    assert log.count("killed by signal 9") == 4
    assert "crash storm" not in log      # no pause: four deaths are no storm


def test_a_second_master_on_a_live_socket_is_refused(own_master, stack):
    master = own_master("--workers", "1")
    second = subprocess.run([stack.env["FLEETDASHD"], "--group", "hello",
                             "--listen", "unix:%s" % master.socket],
                            capture_output=True, text=True, timeout=10)
    assert second.returncode != 0
    assert "in use by a running server" in second.stderr
    assert "Status: 200 OK" in fastcgi_get(master.socket, "/hello")


def test_a_stale_socket_file_is_replaced(own_master, tmp_path):
    stale = tmp_path / "hello.sock"
    leftover = sockets.socket(sockets.AF_UNIX)
    leftover.bind(str(stale))
    leftover.close()                      # a socket file nobody listens on
    master = own_master("--workers", "1")
    assert "Status: 200 OK" in fastcgi_get(master.socket, "/hello")


@pytest.mark.parametrize("flags, message", [
    (["--group", "nope", "--listen", "unix:/tmp/x.sock"], 'unknown group "nope"'),
    (["--group", "hello"], "usage: fleetdashd"),
    (["--group", "hello", "--listen", "unix:/tmp/x.sock", "--workers", "0"],
     "--workers must be a whole number from 1 to 256"),
    (["--group", "hello", "--listen", "unix:/tmp/x.sock", "--max-requests", "-1"],
     "--max-requests must be a whole number"),
])
def test_bad_options_are_refused_with_a_message(stack, flags, message):
    result = subprocess.run([stack.env["FLEETDASHD"], *flags], capture_output=True, text=True,
                            timeout=10)
    assert result.returncode == 64
    assert message in result.stderr
