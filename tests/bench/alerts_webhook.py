#!/usr/bin/python3
"""alerts_webhook.py - the alerts benchmark's webhook receiver and its two drivers.

  alerts_webhook.py receive PORT LOG
      a local HTTP receiver (http.server): every POST is answered 200 and
      appended to LOG as one line: arrival (epoch s), event, alert id,
      rule id, startsAt; stops on SIGTERM.
  alerts_webhook.py manual BASE RECEIVER_ID N LOG
      N alerts raised by hand (POST /api/v1/alerts, receivers [RECEIVER_ID]),
      0.1-0.6 s apart; prints one latency (s) per alert: from the POST's
      answer to the webhook's arrival.
  alerts_webhook.py rules BASE RECEIVER_ID N INTERVAL LOG
      N agents and N rules (threshold error_rate > 50 over 1m, for 0s, one
      agent each, receivers [RECEIVER_ID]), then for each one a batch of 10
      failed executions, spread over two evaluation intervals; prints one
      line per alert: latency from the ingest request's answer (the moment
      the condition became true) and from the alert's startsAt (the
      evaluator's cycle) to the webhook's arrival.
  alerts_webhook.py walk URL FRACTION
      follows next_cursor (limit 100) through the list at URL and prints
      the cursor FRACTION of the way into it, and the number of items.
"""
import json
import os
import random
import signal
import sys
import threading
import time
import urllib.request
import uuid
from datetime import datetime, timedelta, timezone
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer


def call(method, url, body=None):
    data = None if body is None else json.dumps(body).encode()
    req = urllib.request.Request(url, data=data, method=method,
                                 headers={"Content-Type": "application/json",
                                          "Authorization": "Bearer " + os.environ.get(
                                              "FLEETDASH_KEY", "")})
    with urllib.request.urlopen(req, timeout=30) as r:
        if r.status // 100 != 2:
            raise SystemExit(f"{method} {url}: {r.status}")
        return json.load(r)


def receive(port, log):
    out = open(log, "a", buffering=1)
    lock = threading.Lock()

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self):
            body = self.rfile.read(int(self.headers.get("Content-Length", 0)))
            at = time.time()
            self.send_response(200)
            self.send_header("Content-Length", "0")
            self.end_headers()
            m = json.loads(body)
            f = m.get("fleetdash", {})
            with lock:
                out.write(f"{at:.6f} {m['status']} {f.get('alert_id')} {f.get('rule_id')} "
                          f"{m['alerts'][0]['startsAt']}\n")

        def log_message(self, *args):
            pass

    server = ThreadingHTTPServer(("127.0.0.1", port), Handler)
    signal.signal(signal.SIGTERM, lambda *a: threading.Thread(target=server.shutdown).start())
    server.serve_forever()


def arrivals(log):
    """{alert id: (arrival, rule id, startsAt)} of the first firing of each alert."""
    seen = {}
    with open(log) as f:
        for line in f:
            at, event, alert, rule, starts = line.split()
            if event == "firing" and alert not in seen:
                seen[alert] = (float(at), rule, starts)
    return seen


def wait_for(log, want, timeout):
    deadline = time.time() + timeout
    while time.time() < deadline:
        seen = arrivals(log)
        if want(seen):
            return seen
        time.sleep(0.01)
    raise SystemExit(f"webhooks missing after {timeout} s (log {log})")


def manual(base, receiver, n, log):
    answered = {}
    run = uuid.uuid4().hex[:8]
    for i in range(n):
        a = call("POST", base + "/api/v1/alerts",
                 {"severity": "high", "title": f"bench {run} {i}", "receivers": [receiver]})
        answered[a["id"]] = time.time()
        time.sleep(random.uniform(0.1, 0.6))
    seen = wait_for(log, lambda s: all(k in s for k in answered), 30)
    for k, t in answered.items():
        print(f"{seen[k][0] - t:.3f}")


def parse_time(text):
    return datetime.fromisoformat(text.replace("Z", "+00:00")).timestamp()


def rules(base, receiver, n, interval, log):
    run = uuid.uuid4().hex[:8]
    todo = []
    for i in range(n):
        agent = call("POST", base + "/api/v1/agents", {"name": f"bench-{run}-{i}"})["id"]
        rule = call("POST", base + "/api/v1/alert-rules", {
            "name": f"bench {run} {i}", "kind": "threshold", "metric": "error_rate", "op": ">",
            "threshold": 50, "window": "1m", "for": "0s", "min_executions": 5,
            "agent_id": agent, "severity": "high", "receivers": [receiver]})["id"]
        todo.append((agent, rule))
    # let the evaluator see every rule once with no data (normal) first
    time.sleep(interval + 1)
    true_at = {}
    spacing = 2.0 * interval / n
    for agent, rule in todo:
        now = datetime.now(timezone.utc)
        batch = [{"agent_id": agent, "model": "bench-model", "status": "failed",
                  "started_at": (now - timedelta(seconds=2)).isoformat().replace("+00:00", "Z"),
                  "latency_ms": 100, "error": {"category": "tool_error"}} for _ in range(10)]
        call("POST", base + "/api/v1/executions", batch)
        true_at[rule] = time.time()
        time.sleep(random.uniform(0.5, 1.5) * spacing)
    seen = wait_for(log, lambda s: len({v[1] for v in s.values()} & set(true_at)) == n,
                    2 * interval + 30)
    for alert, (at, rule, starts) in seen.items():
        if rule in true_at:
            print(f"{at - true_at[rule]:.3f} {at - parse_time(starts):.3f}")


def walk(url, fraction):
    sep = "&" if "?" in url else "?"
    pages, cursor, total = [], None, 0
    while True:
        page = call("GET", url + sep + "limit=100" + (f"&cursor={cursor}" if cursor else ""))
        total += len(page["items"])
        cursor = page["next_cursor"]
        if cursor is None:
            break
        pages.append((total, cursor))
    target = fraction * total
    print(min(pages, key=lambda p: abs(p[0] - target))[1], total)


if __name__ == "__main__":
    cmd, args = sys.argv[1], sys.argv[2:]
    if cmd == "receive":
        receive(int(args[0]), args[1])
    elif cmd == "manual":
        manual(args[0], args[1], int(args[2]), args[3])
    elif cmd == "rules":
        rules(args[0], args[1], int(args[2]), float(args[3]), args[4])
    elif cmd == "walk":
        walk(args[0], float(args[1]))
    else:
        raise SystemExit(__doc__)
