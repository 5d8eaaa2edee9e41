#!/usr/bin/env bash
# soak_memory.sh - the worst bodies we know of, each sent to the group that
# reads it (ingest: JSON executions and registry writes; streams: NDJSON;
# dashboards), and the peak resident memory (VmHWM) of that group's workers
# while it was served, against the 32 MiB goal. The peak of every worker is
# reset (/proc/PID/clear_refs) before each body, so a figure is the most any
# worker held during that request, memory kept from earlier ones included.
# Run by tests/soak/run.sh (stack.env exported); about 60 s.

set -uo pipefail
# shellcheck source=tests/soak/lib.sh
. "$(dirname "$0")/lib.sh"

results=$(/usr/bin/python3 - <<'EOF'
import http.client, json, os, socket

RUN = os.environ["VARDIR"] + "/run"
HOST, PORT = "127.0.0.1", int(os.environ["PORT"])
MIB = 1024 * 1024
LINE = {"agent_name": "soak-memory", "model": "m", "started_at": "2026-11-21T10:00:00Z",
        "latency_ms": 5, "status": "succeeded"}


def workers(group):
    master = open("%s/%s.pid" % (RUN, group)).read().strip()
    pids = []
    for task in os.listdir("/proc/%s/task" % master):
        pids += open("/proc/%s/task/%s/children" % (master, task)).read().split()
    return pids


def peak_mib(pid):
    for line in open("/proc/%s/status" % pid):
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024.0
    return 0.0


def post(path, content_type, parts, chunked):
    """Sends the body (an iterable of bytes); returns the status, or 0 when
    the server closed the connection before the body was sent."""
    conn = http.client.HTTPConnection(HOST, PORT, timeout=120)
    try:
        conn.putrequest("POST", path)
        conn.putheader("Content-Type", content_type)
        conn.putheader("Authorization", "Bearer " + os.environ["FLEETDASH_KEY"])
        if chunked:
            conn.putheader("Transfer-Encoding", "chunked")
        else:
            parts = list(parts)
            conn.putheader("Content-Length", str(sum(len(p) for p in parts)))
        conn.endheaders()
        try:
            for part in parts:
                conn.send(b"%x\r\n%s\r\n" % (len(part), part) if chunked else part)
            if chunked:
                conn.send(b"0\r\n\r\n")
        except (BrokenPipeError, ConnectionResetError):
            pass            # nginx answered (413) and stopped reading
        response = conn.getresponse()
        response.read()
        return response.status
    except (http.client.HTTPException, OSError):
        return 0
    finally:
        conn.close()


def measure(name, group, path, content_type, parts, chunked=False):
    pids = workers(group)
    for pid in pids:
        with open("/proc/%s/clear_refs" % pid, "w") as f:
            f.write("5")
    status = post(path, content_type, parts, chunked)
    print("%s\t%s\t%.1f" % (name, status, max(peak_mib(p) for p in pids)))


def repeat(text, times, per_part=1 << 20):
    """text * times as parts of about per_part bytes."""
    block = text * max(1, per_part // len(text))
    count = len(block) // len(text)
    while times > 0:
        n = min(times, count)
        yield block if n == count else text * n
        times -= n


J, N = "application/json", "application/x-ndjson"
E = "/api/v1/executions"
zeros = "[" + "0," * 159999 + "0]"
objects = "[" + "{}," * 79999 + "{}]"
arrays = "[" + "[]," * 79999 + "[]]"
keys = "{" + ",".join('"k%d":0' % i for i in range(79999)) + "}"
deep = "[" + ",".join(["[" * 2000 + "]" * 2000] * 79) + "]"
string = '{"model":"' + "x" * (4 * MIB - 20) + '"}'
full = dict(LINE, metadata={"key%02d" % i: "value %d" % i for i in range(50)})
batch = json.dumps([full] * 1000)
small_keys = "{" + ",".join('"k%d":0' % i for i in range(49999)) + "}"
measure("JSON executions: 160,000 zeros", "ingest", E, J, [zeros.encode()])
measure("JSON executions: 80,000 empty objects", "ingest", E, J, [objects.encode()])
measure("JSON executions: 80,000 empty arrays", "ingest", E, J, [arrays.encode()])
measure("JSON executions: an object of 80,000 members", "ingest", E, J, [keys.encode()])
measure("JSON executions: 79 arrays nested 2,000 deep", "ingest", E, J, [deep.encode()])
measure("JSON executions: a 4 MiB string", "ingest", E, J, [string.encode()])
measure("JSON executions: 1,000 with 50 metadata members", "ingest", E, J, [batch.encode()])
measure("JSON executions: 4 MiB of zeros", "ingest", E, J,
        [("[" + "0," * (2 * MIB - 2) + "0]").encode()])
measure("JSON executions: 300 MiB chunked", "ingest", E, J,
        repeat(b"0,", 150 * MIB), chunked=True)
measure("NDJSON: 1 MiB lines of one long string", "streams", E, N,
        repeat(('{"model":"' + "x" * (MIB - 30) + '"}\n').encode(), 20))
measure("NDJSON: 16 KiB lines of 5,000 values", "streams", E, N,
        repeat(("[" + "0," * 5000 + "0]\n").encode(), 2000))
measure("NDJSON: 64 MiB chunked, the last line bad", "streams", E, N,
        [*repeat((json.dumps(LINE) + "\n").encode(), 64 * MIB // 130), b"{}\n"], chunked=True)
measure("POST /dashboards: 100,000 values of empty objects", "dashboards",
        "/api/v1/dashboards", J, [("[" + "{}," * 49999 + "{}]").encode()])
measure("POST /dashboards: an object of 50,000 members", "dashboards",
        "/api/v1/dashboards", J, [small_keys.encode()])
measure("POST /agents: a 1 MiB name", "ingest", "/api/v1/agents", J,
        [('{"name":"' + "x" * (MIB - 20) + '"}').encode()])
EOF
)
if [[ -z $results ]]; then
    echo "soak: the memory probe printed nothing" >&2
    exit 1
fi
while IFS=$'\t' read -r name status peak; do
    figure "peak worker memory, $name ($status)" "$peak" -fle 32 " MiB"
done <<<"$results"
soak_exit
