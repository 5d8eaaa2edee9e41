"""test_slow_streams.py - slow clients cannot starve ingest: a streams master
of its own with a short grace and a low minimum rate, spoken to over
FastCGI by hand, cuts a stream slower than the rate with 408 and stores
nothing (a trickle of single bytes too) and keeps a faster one whole; on
the stack, single executions, batches, heartbeats and registry writes are
answered while stalled NDJSON streams hold every worker of the streams
group, and nginx answers a cut stream's 408 as problem+json (the stack's
streams group restarted with the short pace for that test)."""

import json
import os
import select
import signal
import socket
import struct
import subprocess
import time

import pytest

from support import STACK_SCRIPT, log_records
from test_supervision import wait_until

pytestmark = pytest.mark.ingest

PATH = "/api/v1/executions"
GRACE_S, MIN_RATE_KIB = 1, 1          # the own master's pace: 1 s, then 1 KiB/s

# FastCGI record types and the responder role (FastCGI 1.0, section 8).
BEGIN_REQUEST, END_REQUEST, PARAMS, STDIN, STDOUT = 1, 3, 4, 5, 6
RESPONDER = 1


@pytest.fixture
def own_streams(stack, tmp_path):
    """`fleetdashd --group streams` on a private socket, one worker, with
    the short pace above; yields the socket path."""
    sock_path = tmp_path / "streams.sock"
    log_path = tmp_path / "streams.log"
    with open(log_path, "w") as log:
        proc = subprocess.Popen(
            [stack.env["FLEETDASHD"], "--group", "streams", "--workers", "1",
             "--listen", "unix:%s" % sock_path, "--body-grace", str(GRACE_S),
             "--body-min-rate", str(MIN_RATE_KIB)],
            stdout=log, stderr=log, cwd=stack.env.get("VARDIR"),
            env=dict(os.environ, FLEETDASH_DATABASE_URL=stack.env["DATABASE_URL"]))
    try:
        wait_until(lambda: "listening on" in log_path.read_text(), 10, "the master to listen")
        yield sock_path
    finally:
        proc.send_signal(signal.SIGTERM)
        proc.wait(timeout=40)


def record(kind, content=b""):
    return struct.pack("!BBHHBx", 1, kind, 1, len(content), 0) + content


def name_value(name, value):
    out = b""
    for n in (len(name), len(value)):
        out += bytes([n]) if n < 128 else struct.pack("!I", n | 0x80000000)
    return out + name + value


class FastCgiPost:
    """One POST /api/v1/executions to a FastCGI socket, its body sent by
    the caller piece by piece; answer() reads what the worker wrote."""

    def __init__(self, sock_path, content_length=None):
        self.sock = socket.socket(socket.AF_UNIX)
        self.sock.connect(str(sock_path))
        params = {"REQUEST_METHOD": "POST", "REQUEST_URI": PATH, "DOCUMENT_URI": PATH,
                  "QUERY_STRING": "", "REQUEST_ID": "test-slow-streams",
                  "HTTP_AUTHORIZATION": "Bearer " + os.environ.get("FLEETDASH_KEY", ""),
                  "CONTENT_TYPE": "application/x-ndjson",
                  "CONTENT_LENGTH": "" if content_length is None else str(content_length)}
        encoded = b"".join(name_value(k.encode(), v.encode()) for k, v in params.items())
        self.sock.sendall(record(BEGIN_REQUEST, struct.pack("!HB5x", RESPONDER, 0)) +
                          record(PARAMS, encoded) + record(PARAMS))
        self.received = b""

    def send(self, data):
        """Sends data as one STDIN record; False once the worker has answered."""
        if self.answered():
            return False
        try:
            self.sock.sendall(record(STDIN, data))
        except (BrokenPipeError, ConnectionResetError):
            return False
        return True

    def end(self):
        self.sock.sendall(record(STDIN))

    def answered(self):
        while select.select([self.sock], [], [], 0)[0]:
            chunk = self.sock.recv(65536)
            if not chunk:
                break
            self.received += chunk
        return len(self.received) > 0

    def answer(self, timeout=20):
        """(status, JSON body) of the worker's answer."""
        self.sock.settimeout(timeout)
        data = self.received
        stdout = b""
        while True:
            while len(data) < 8:
                chunk = self.sock.recv(65536)
                assert chunk, "the worker closed the connection without an answer"
                data += chunk
            _, kind, _, length, padding = struct.unpack("!BBHHB", data[:7])
            while len(data) < 8 + length + padding:
                data += self.sock.recv(65536)
            if kind == STDOUT:
                stdout += data[8:8 + length]
            data = data[8 + length + padding:]
            if kind == END_REQUEST:
                break
        self.sock.close()
        head, _, body = stdout.partition(b"\r\n\r\n")
        status = int(head.split(b"Status: ", 1)[1].split(b" ", 1)[0])
        return status, json.loads(body)


def line(execution, **fields):
    return (json.dumps(execution(**fields)) + "\n").encode()


def assert_cut_with_408(status, body):
    assert status == 408
    assert body["type"] == "/problems/request-timeout"
    assert body["status"] == 408 and body["title"] == "Request Timeout"
    assert "1 KiB/s" in body["detail"] and "nothing was stored" in body["detail"]
    assert body["request_id"] == "test-slow-streams"


def test_a_stream_slower_than_the_minimum_rate_is_cut_with_408_and_stores_nothing(
        own_streams, db, execution):
    post = FastCgiPost(own_streams)
    sent = 0
    with db.unchanged():
        for _ in range(60):                     # 60 lines 0.5 s apart: about 300 B/s
            if not post.send(line(execution, agent_name="slow-stream")):
                break
            sent += 1
            time.sleep(0.5)
        assert_cut_with_408(*post.answer())
    assert sent < 60, "the stream was read to its end"


def test_a_trickle_of_single_bytes_cannot_hold_the_deadline_off(own_streams, db, execution):
    body = line(execution) * 40
    post = FastCgiPost(own_streams, content_length=len(body))
    sent = 0
    with db.unchanged():
        for byte in body:                        # 20 bytes/s: the body would take minutes
            if not post.send(bytes([byte])):
                break
            sent += 1
            time.sleep(0.05)
        assert_cut_with_408(*post.answer())
    assert sent < len(body) // 4


def test_a_stream_above_the_minimum_rate_is_stored_whole(own_streams, db, execution):
    post = FastCgiPost(own_streams)
    pad = {"pad%d" % k: "x" * 400 for k in range(3)}
    for _ in range(30):                          # 30 lines of ~1.4 KiB 0.1 s apart: ~14 KiB/s
        assert post.send(line(execution, metadata=pad))
        time.sleep(0.1)
    post.end()
    status, body = post.answer()
    assert status == 200, body
    assert (body["received"], body["inserted"]) == (30, 30)
    assert db.count("executions") == 30


# ---------------------------------------------------------------- on the stack

def stalled_stream(stack, execution):
    """An NDJSON upload through nginx that sends a line and a half, then
    nothing."""
    port = int(stack.base_url.rsplit(":", 1)[1])
    sock = socket.create_connection(("127.0.0.1", port), timeout=10)
    start = line(execution, agent_name="stalled") + line(execution, agent_name="stalled")[:40]
    sock.sendall(("POST %s HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/x-ndjson"
                  "\r\nAuthorization: Bearer %s"
                  "\r\nContent-Length: 100000\r\n\r\n" % (PATH, stack.key)).encode() + start)
    return sock


def streams_answers(stack, offset, status):
    """How many POST /executions the streams group answered with status
    since byte offset of its log."""
    with open(stack.log_file("streams"), "rb") as log:
        log.seek(offset)
        text = log.read().decode(errors="replace")
    return sum(1 for r in log_records(text) if r.get("path") == PATH and
               r.get("status") == status)


def still_waiting(sock):
    """True while the server has not answered and not closed the connection."""
    return not select.select([sock], [], [], 0)[0]


def test_small_requests_are_answered_while_stalled_streams_hold_every_streams_worker(
        api, stack, db, execution, make_agent):
    agent = make_agent()
    offset = stack.log_file("streams").stat().st_size
    stalled = [stalled_stream(stack, execution) for _ in range(stack.workers + 1)]
    try:
        time.sleep(0.5)                         # nginx has passed them on to the workers
        one = api.post(PATH, json=execution(agent_id=agent["id"]))
        batch = api.post(PATH, json=[execution(agent_id=agent["id"]) for _ in range(60)])
        beat = api.post("/api/v1/agents/%s/heartbeat" % agent["id"], json={"state": "idle"})
        registered = api.post("/api/v1/agents", json={"name": "registered-meanwhile"})
        assert all(still_waiting(s) for s in stalled), "a stalled stream was answered already"
    finally:
        for sock in stalled:
            sock.close()
    assert (one.status_code, batch.status_code, beat.status_code) == (200, 200, 204)
    assert registered.status_code == 201
    assert db.count("executions") == 61
    # The streams the workers held end as bodies cut short: nothing stored.
    wait_until(lambda: streams_answers(stack, offset, 400) >= stack.workers, 10,
               "the stalled streams to end")
    assert db.count("agents", "name = 'stalled'") == 0
    assert db.count("executions") == 61


def stack_group(stack, command, **env):
    result = subprocess.run([str(STACK_SCRIPT), command, str(stack.vardir), "streams"],
                            capture_output=True, text=True, timeout=120,
                            env=dict(os.environ, **env))
    assert result.returncode == 0, result.stdout + result.stderr


@pytest.fixture
def paced_stack(stack, api):
    """The stack's streams group restarted with the short pace above; put
    back as it was afterwards."""
    stack_group(stack, "stop-group")
    try:
        stack_group(stack, "start-group", FLEETDASH_BODY_GRACE=str(GRACE_S),
                    FLEETDASH_BODY_MIN_RATE=str(MIN_RATE_KIB))
        yield stack
    finally:
        stack_group(stack, "stop-group")
        stack_group(stack, "start-group")


def test_nginx_answers_the_408_of_a_cut_stream_as_problem_json(paced_stack, db, execution):
    port = int(paced_stack.base_url.rsplit(":", 1)[1])
    sock = socket.create_connection(("127.0.0.1", port), timeout=10)
    sock.sendall(("POST %s HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/x-ndjson"
                  "\r\nAuthorization: Bearer %s"
                  "\r\nTransfer-Encoding: chunked\r\n\r\n" % (PATH, paced_stack.key)).encode())
    answer = b""
    with db.unchanged():
        for _ in range(40):                     # a line every 0.5 s: about 300 B/s
            part = line(execution, agent_name="slow-through-nginx")
            sock.sendall(b"%x\r\n%s\r\n" % (len(part), part))
            if select.select([sock], [], [], 0.5)[0]:
                break
        while b"\r\n\r\n" not in answer or not answer.rstrip().endswith(b"}"):
            chunk = sock.recv(65536)
            assert chunk, answer
            answer += chunk
    sock.close()
    head, _, body = answer.partition(b"\r\n\r\n")
    lines = head.decode().split("\r\n")
    headers = dict(l.split(": ", 1) for l in lines[1:])
    assert lines[0] == "HTTP/1.1 408 Request Timeout"
    assert headers["Content-Type"] == "application/problem+json"
    problem = json.loads(body)
    assert (problem["type"], problem["status"]) == ("/problems/request-timeout", 408)
    assert problem["instance"] == PATH
    assert problem["request_id"] == headers["X-Request-Id"]


def test_a_json_body_does_not_go_to_the_streams_group(api, stack, execution):
    log = stack.log_file("streams")

    def streamed():
        return sum(1 for r in log_records(log.read_text(errors="replace"))
                   if r.get("path") == PATH)
    before = streamed()
    assert api.post(PATH, json=execution()).status_code == 200
    assert streamed() == before
    assert api.post_ndjson(PATH, line(execution)).status_code == 200
    wait_until(lambda: streamed() == before + 1, 2, "the stream in the streams log")
