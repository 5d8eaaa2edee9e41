"""test_logs.py - one log format across the stack: a request's record in its
group's log (JSON by default) and in nginx's access log carry the same
names and values (request id, remote address, host, user agent, method,
path, status, request time); logfmt from a master of its own, with the
same names; hostile values stay one line; nginx.conf's two access log
formats name the same fields."""

import pathlib
import re
import signal
import subprocess

from support import log_records
from test_supervision import wait_until

SHARED = ["time", "level", "group", "role", "request_id", "remote_addr", "host", "user_agent",
          "key_id", "method", "path", "status", "request_time"]
UA = 'probe "quoted" \\ agent'
REPO = pathlib.Path(__file__).resolve().parents[2]


def records_of(path, request_id):
    return [r for r in log_records(path.read_text(errors="replace"))
            if r.get("request_id") == request_id]


def test_a_request_is_one_record_in_its_group_and_in_nginx_with_the_same_names(api, stack):
    response = api.get("/api/v1/dashboards", headers={"User-Agent": UA})
    request_id = response.headers["X-Request-Id"]
    worker = wait_until(lambda: records_of(stack.log_file("dashboards"), request_id), 10,
                        "the worker's record")[0]
    nginx = wait_until(lambda: records_of(stack.vardir / "log" / "nginx-access.log",
                                          request_id), 10, "nginx's record")[0]
    for record in (worker, nginx):
        assert set(SHARED) <= set(record), sorted(record)
        assert (record["method"], record["path"], record["status"], record["user_agent"]) == (
            "GET", "/api/v1/dashboards", 200, UA)
        assert record["remote_addr"] == "127.0.0.1" and record["level"] == "info"
        assert record["host"].startswith("127.0.0.1")
        assert re.match(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d", record["time"])
    assert worker["key_id"] == nginx["key_id"] and re.fullmatch(r"[0-9a-f-]{36}", worker["key_id"])
    assert (worker["group"], worker["role"]) == ("dashboards", "worker")
    assert (nginx["group"], nginx["role"]) == ("nginx", "access")
    assert isinstance(worker["pid"], int) and 0 <= worker["request_time"] < 10


def test_events_are_records_too(stack):
    events = [r for r in log_records(stack.log_file("dashboards").read_text(errors="replace"))
              if "msg" in r]
    assert events and all({"time", "level", "group", "role", "pid", "msg"} <= set(r)
                          for r in events)


def logfmt(line):
    """{key: value} of one logfmt line (quoted values unescaped)."""
    fields = {}
    for key, quoted, bare in re.findall(r'(\w+)=(?:"((?:[^"\\]|\\.)*)"|(\S*))', line):
        fields[key] = re.sub(r"\\(.)", r"\1", quoted) if quoted or not bare else bare
    return fields


def test_logfmt_has_the_same_names(stack, tmp_path):
    socket = tmp_path / "hello.sock"
    log = tmp_path / "hello.log"
    with open(log, "w") as out:
        proc = subprocess.Popen([stack.env["FLEETDASHD"], "--group", "hello", "--workers", "1",
                                 "--log-format", "logfmt", "--listen", "unix:%s" % socket],
                                stdout=out, stderr=out)
    try:
        wait_until(lambda: socket.exists(), 10, "the socket")
        env = {"REQUEST_METHOD": "GET", "DOCUMENT_URI": "/hello", "REQUEST_URI": "/hello",
               "QUERY_STRING": "", "REQUEST_ID": "logfmt-probe", "REMOTE_ADDR": "10.1.2.3",
               "HTTP_HOST": "example.test", "HTTP_USER_AGENT": UA + "\nsecond line"}
        out = subprocess.run(["cgi-fcgi", "-bind", "-connect", str(socket)], env=env,
                             capture_output=True, text=True, timeout=10)
        assert "hello" in out.stdout
        line = wait_until(lambda: [l for l in log.read_text().splitlines()
                                   if "request_id=logfmt-probe" in l], 10, "the record")[0]
    finally:
        proc.send_signal(signal.SIGTERM)
        proc.wait(timeout=30)
    fields = logfmt(line)
    assert set(SHARED) <= set(fields), sorted(fields)
    assert (fields["remote_addr"], fields["host"], fields["path"], fields["status"]) == (
        "10.1.2.3", "example.test", "/hello", "200")
    assert fields["user_agent"] == UA + " second line"       # one record, one line
    assert all(l.startswith("time=") for l in log.read_text().splitlines())


def test_a_bad_log_format_is_a_usage_error(stack):
    out = subprocess.run([stack.env["FLEETDASHD"], "--group", "hello", "--listen", "unix:/x",
                          "--log-format", "xml"], capture_output=True, text=True, timeout=10)
    assert out.returncode == 64 and "--log-format must be json or logfmt" in out.stderr


def test_nginx_formats_name_the_same_fields():
    conf = (REPO / "nginx.conf").read_text()

    def fields(name):
        body = re.search(r"log_format %s [^']*((?:'[^']*'\s*)+);" % name, conf).group(1)
        text = "".join(re.findall(r"'([^']*)'", body))
        return re.findall(r'"?(\w+)"?[:=]', text)
    json_names, logfmt_names = fields("fleetdash_json"), fields("fleetdash_logfmt")
    assert json_names == logfmt_names
    assert set(SHARED) <= set(json_names)


def test_a_path_that_is_not_utf8_is_written_percent_encoded(api, stack):
    # the decoded path of /api/v1/dashboards/%ff/%c3%a9 holds a byte that
    # is no UTF-8 and a character that is: the record stays UTF-8 JSON
    response = api.get("/api/v1/dashboards/%ff/%c3%a9", validate=False)
    assert response.status_code == 404
    request_id = response.headers["X-Request-Id"]
    raw = stack.log_file("dashboards").read_bytes()
    line = next(l for l in raw.splitlines() if request_id.encode() in l)
    record = __import__("json").loads(line.decode("utf-8"))    # strict UTF-8
    assert record["path"] == "/api/v1/dashboards/%FF/\u00e9"
