"""test_master.py - a fleetdashd master of its own, outside the stack, spoken
to over FastCGI with libfcgi's cgi-fcgi: recycling after --max-requests,
a crash storm that stops respawning, a second master refused on a live
socket, and bad options refused with a message."""

import os
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


def test_a_crash_storm_stops_the_master_with_exit_code_2(own_master):
    master = own_master("--workers", "2")
    deadline = time.monotonic() + 20
    while master.poll() is None and time.monotonic() < deadline:
        for pid in worker_pids(master.pid):
            if alive(pid):
                os.kill(pid, signal.SIGKILL)
        time.sleep(0.05)
    assert master.wait(timeout=40) == 2
    log = master.log.read_text()
    assert "crash storm" in log
    assert "killed by signal 9" in log
    assert not master.socket.exists()


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
