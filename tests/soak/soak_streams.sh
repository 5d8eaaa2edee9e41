#!/usr/bin/env bash
# soak_streams.sh - slow clients cannot starve ingest: 16 NDJSON streams
# that send a line every 5 s stay open while another client sends single
# executions, one after another, for 20 s (p99 and failures against their
# goals); the slow streams are cut with 408 after the grace period
# (FLEETDASH_BODY_GRACE, FLEETDASH_BODY_MIN_RATE: defaults) and store
# nothing; meanwhile a real 255 MiB stream at full speed, sent once the
# 20 s are over, is stored whole while single POSTs go on. Run by
# tests/soak/run.sh (stack.env exported); 60-110 s, most of it the big
# stream.

set -uo pipefail
# shellcheck source=tests/soak/lib.sh
. "$(dirname "$0")/lib.sh"

results=$(/usr/bin/python3 - <<'EOF'
import http.client, json, os, socket, threading, time

import psycopg2

HOST, PORT = "127.0.0.1", int(os.environ["PORT"])
AUTH = "Bearer " + os.environ["FLEETDASH_KEY"]
AUTH_LINE = b"Authorization: %s\r\n" % AUTH.encode()
MIB = 1024 * 1024
SLOW, SLOW_EVERY = 16, 5.0


def line(agent, **fields):
    e = {"agent_name": agent, "model": "m", "started_at": "2026-11-21T10:00:00Z",
         "latency_ms": 5, "status": "succeeded"}
    e.update(fields)
    return (json.dumps(e) + "\n").encode()


def slow_stream(answers):
    """An NDJSON upload that sends one line every SLOW_EVERY seconds until
    the server answers (or 60 s pass); appends the status it got."""
    sock = socket.create_connection((HOST, PORT), timeout=60)
    sock.sendall(b"POST /api/v1/executions HTTP/1.1\r\nHost: soak\r\n" + AUTH_LINE +
                 b"Content-Type: application/x-ndjson\r\nTransfer-Encoding: chunked\r\n\r\n")
    sock.settimeout(SLOW_EVERY)
    got, deadline = b"", time.monotonic() + 60
    while b"\r\n" not in got and time.monotonic() < deadline:
        try:
            part = line("soak-slow")
            sock.sendall(b"%x\r\n%s\r\n" % (len(part), part))
            got += sock.recv(4096)
        except socket.timeout:
            continue
        except OSError:
            break
    sock.close()
    answers.append(int(got.split(b" ")[1]) if got.startswith(b"HTTP/1.1 ") else 0)


def single_posts(seconds, latencies, failures):
    """Single executions, one after another, on a keep-alive connection."""
    conn = http.client.HTTPConnection(HOST, PORT, timeout=10)
    end = time.monotonic() + seconds
    while time.monotonic() < end:
        start = time.monotonic()
        try:
            conn.request("POST", "/api/v1/executions", body=line("soak-single"),
                         headers={"Content-Type": "application/json", "Authorization": AUTH})
            response = conn.getresponse()
            response.read()
            ok = response.status == 200
        except (http.client.HTTPException, OSError):
            ok = False
            conn.close()
            conn = http.client.HTTPConnection(HOST, PORT, timeout=10)
        latencies.append((time.monotonic() - start) * 1000)
        if not ok:
            failures.append(1)
        time.sleep(0.01)


def p99(values):
    values = sorted(values)
    return values[min(len(values) - 1, int(len(values) * 0.99))] if values else 0.0


def big_stream(total):
    """A full-speed NDJSON stream of about total bytes; (status, inserted, lines, s)."""
    one = line("soak-big")
    count = total // len(one)
    block = one * 8192

    def parts():
        left = count
        while left > 0:
            n = min(left, 8192)
            yield block if n == 8192 else one * n
            left -= n
    conn = http.client.HTTPConnection(HOST, PORT, timeout=300)
    start = time.monotonic()
    conn.request("POST", "/api/v1/executions", body=parts(), encode_chunked=True,
                 headers={"Content-Type": "application/x-ndjson", "Authorization": AUTH})
    response = conn.getresponse()
    body = json.loads(response.read() or b"{}")
    return response.status, body.get("inserted", 0), count, time.monotonic() - start


db = psycopg2.connect(os.environ["DATABASE_URL"])
db.autocommit = True
cur = db.cursor()

answers, latencies, failures = [], [], []
streams = [threading.Thread(target=slow_stream, args=(answers,)) for _ in range(SLOW)]
for t in streams:
    t.start()
time.sleep(1)                    # every slow stream holds a streams worker or waits for one
single_posts(20, latencies, failures)
print("single POSTs during %d slow streams\t%d" % (SLOW, len(latencies)))
print("single POSTs failed during %d slow streams\t%d" % (SLOW, len(failures)))
print("single POST p99 during %d slow streams (ms)\t%.1f" % (SLOW, p99(latencies)))

# The big stream queues behind the slow streams still open (the first
# rounds were cut after their grace) and gets a worker when the next is cut.
latencies, failures = [], []
poster = threading.Thread(target=single_posts, args=(15, latencies, failures))
poster.start()
status, inserted, count, seconds = big_stream(256 * MIB - MIB)
poster.join()
for t in streams:
    t.join()
cur.execute("SELECT count(*) FROM executions e JOIN agents a ON a.id = e.agent_id "
            "WHERE a.name = 'soak-slow'")
print("slow streams answered 408\t%d" % answers.count(408))
print("executions stored from slow streams\t%d" % cur.fetchone()[0])
print("255 MiB stream at full speed: status\t%d" % status)
print("255 MiB stream at full speed: rows stored of %d\t%d" % (count, inserted))
print("255 MiB stream at full speed: MiB/s\t%.1f" % (255 / seconds))
print("single POST p99 during the 255 MiB stream (ms)\t%.1f" % p99(latencies))
print("single POSTs failed during the 255 MiB stream\t%d" % len(failures))
EOF
)
if [[ -z $results ]]; then
    echo "soak: the streams probe printed nothing" >&2
    exit 1
fi
while IFS=$'\t' read -r name value; do
    case $name in
    *"slow streams (ms)") figure "$name" "$value" -fle 100 " ms" ;;
    *"p99"*) figure "$name" "$value" -fle 250 " ms" ;;
    *"failed"* | "executions stored"*) figure "$name" "$value" -eq 0 "" ;;
    "slow streams answered 408") figure "$name" "$value" -eq 16 "" ;;
    *"status") figure "$name" "$value" -eq 200 "" ;;
    *"rows stored of "*) figure "$name" "$value" -eq "${name##* of }" "" ;;
    *"MiB/s") figure "$name" "$value" -fge 1 " MiB/s" ;;
    *) figure "$name" "$value" -gt 0 "" ;;
    esac
done <<<"$results"
soak_exit
