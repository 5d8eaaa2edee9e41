"""test_metrics.py - GET /metrics: the exposition checked by promtool,
requests counted per route and status with a histogram that adds up, every
group's workers alive, a killed worker counted as restarted, rows ingested,
the fleet's executions and cost by agent and model equal to psql's, the
bound on series and the count of those dropped, an address refused (403
problem), and one scrape by a real Prometheus read back through its query
API."""

import datetime
import json
import os
import re
import signal
import socket
import subprocess
import time
import urllib.parse
import urllib.request

import pytest
import requests

from support import assert_problem, now_utc, utc
from test_protocol import nginx_workers
from test_supervision import wait_until, worker_pids

pytestmark = pytest.mark.ingest

SAMPLE = re.compile(r'^([a-zA-Z_:][a-zA-Z0-9_:]*)(?:\{(.*)\})? (\S+)$')
LABEL = re.compile(r'([a-zA-Z_][a-zA-Z0-9_]*)="((?:[^"\\]|\\.)*)"')


def scrape(api):
    response = api.get("/metrics")
    assert response.status_code == 200, response.text
    assert response.headers["Content-Type"].startswith("text/plain; version=0.0.4")
    return response.text


def samples(text):
    """[(name, {label: value}, float)] of an exposition."""
    found = []
    for line in text.splitlines():
        if not line or line.startswith("#"):
            continue
        match = SAMPLE.match(line)
        assert match, line
        labels = {k: v.replace('\\"', '"').replace("\\n", "\n").replace("\\\\", "\\")
                  for k, v in LABEL.findall(match.group(2) or "")}
        found.append((match.group(1), labels, float(match.group(3))))
    return found


def value(text, name, **labels):
    """The sum of the samples of name whose labels include labels."""
    return sum(v for n, l, v in samples(text)
               if n == name and all(l.get(k) == str(w) for k, w in labels.items()))


def test_the_exposition_passes_promtool(api, make_agent):
    make_agent()
    text = scrape(api)
    result = subprocess.run(["promtool", "check", "metrics"], input=text, capture_output=True,
                            text=True, timeout=30)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "# TYPE fleetdash_http_requests_total counter" in text


def test_requests_are_counted_per_route_and_status_with_a_histogram(api):
    route = "/api/v1/dashboards/{id}"
    before = scrape(api)
    for _ in range(7):
        assert api.get("/api/v1/dashboards/00000000-0000-0000-0000-000000000000").status_code == 404
    assert api.get("/api/v1/nothing-here").status_code == 404        # nginx: no group
    assert api.get("/api/v1/dashboards/x/y/z").status_code == 404    # a group, no route

    def counted():
        text = scrape(api)
        got = value(text, "fleetdash_http_requests_total", group="dashboards", route=route,
                    method="GET", status=404)
        base = value(before, "fleetdash_http_requests_total", group="dashboards", route=route,
                     method="GET", status=404)
        return text if got - base >= 7 else None
    text = wait_until(counted, 15, "seven 404s counted (flushed every 5 s)")
    assert value(text, "fleetdash_http_requests_total", route="unmatched", status=404) >= 1
    # the histogram adds up: +Inf bucket == count, buckets cumulative
    count = value(text, "fleetdash_http_request_duration_seconds_count", group="dashboards",
                  route=route, method="GET")
    buckets = sorted(((float(l["le"]), v) for n, l, v in samples(text)
                      if n == "fleetdash_http_request_duration_seconds_bucket"
                      and l["group"] == "dashboards" and l["route"] == route
                      and l["method"] == "GET"), key=lambda b: b[0])
    assert buckets[-1] == (float("inf"), count) and count >= 7
    assert [v for _, v in buckets] == sorted(v for _, v in buckets)
    assert value(text, "fleetdash_http_request_duration_seconds_sum", group="dashboards",
                 route=route) > 0
    assert value(text, "fleetdash_worker_busy_seconds_total", group="dashboards") > 0


def test_every_group_has_live_workers(api, stack):
    text = wait_until(lambda: (lambda t: t if all(
        value(t, "fleetdash_workers_alive", group=g) >= 1
        for g in ("dashboards", "ingest", "streams", "aggregates", "alerts", "maintenance"))
        else None)(scrape(api)), 15, "every group's workers alive")
    # a worker replaced in the last 15 s may still count beside its successor
    assert value(text, "fleetdash_workers_alive", group="dashboards") >= stack.workers


def test_a_killed_worker_is_counted_as_restarted(api, stack):
    master = int((stack.vardir / "run" / "ingest.pid").read_text())
    before = value(scrape(api), "fleetdash_worker_restarts_total", group="ingest")
    victim = sorted(worker_pids(master))[0]
    os.kill(victim, signal.SIGKILL)
    wait_until(lambda: value(scrape(api), "fleetdash_worker_restarts_total", group="ingest")
               >= before + 1, 20, "the restart counted")


def test_the_fleet_by_agent_and_model_equals_the_rows(api, db, make_agent, ingest):
    a, b = make_agent(name="metrics-a"), make_agent(name='metrics "b"')
    start = now_utc() - datetime.timedelta(hours=1)
    runs = [{"agent_id": agent["id"], "model": model, "status": "succeeded",
             "started_at": utc(start + datetime.timedelta(seconds=i)), "latency_ms": 100,
             "cost_usd": 0.25}
            for i, (agent, model) in enumerate([(a, "m1")] * 3 + [(a, "m2")] + [(b, "m1")] * 2)]
    before = value(scrape(api), "fleetdash_ingested_rows_total")
    assert ingest(runs).status_code == 200
    text = wait_until(lambda: (lambda t: t if value(t, "fleetdash_ingested_rows_total")
                               >= before + 6 else None)(scrape(api)), 15, "rows ingested counted")
    for agent, model, n in ((a, "m1", 3), (a, "m2", 1), (b, "m1", 2)):
        assert value(text, "fleetdash_executions_total", agent_id=agent["id"], model=model) == n
        assert value(text, "fleetdash_cost_usd_total", agent_id=agent["id"], model=model) == \
            pytest.approx(0.25 * n)
    names = {l["agent"] for n, l, v in samples(text) if n == "fleetdash_executions_total"}
    assert names == {"metrics-a", 'metrics "b"'}                 # escaped and read back
    assert value(text, "fleetdash_agents", state="offline") == 2
    assert value(text, "fleetdash_metrics_series_dropped") == 0
    # the bound: the pairs with most executions kept, the others counted
    bounded = db.scalar("SELECT metrics_text(2)")
    kept = [(l["agent_id"], l["model"]) for n, l, v in samples(bounded)
            if n == "fleetdash_executions_total"]
    assert sorted(kept) == sorted([(a["id"], "m1"), (b["id"], "m1")])
    assert value(bounded, "fleetdash_metrics_series_dropped") == 1


def test_an_address_not_allowed_needs_a_metrics_or_admin_key(api, stack):
    conf = stack.vardir / "nginx" / "conf.d" / "zz_test_metrics.metrics"
    master = int((stack.vardir / "run" / "nginx.pid").read_text())

    def reload(expect):
        old = nginx_workers(master)
        os.kill(master, signal.SIGHUP)
        wait_until(lambda: not nginx_workers(master) & old and
                   requests.get(stack.base_url + "/metrics", timeout=5).status_code == expect,
                   10, "nginx reloaded")
    conf.write_text("deny 127.0.0.1;\n")          # this host, untrusted for the test
    try:
        reload(401)
        response = api.with_key(None).get("/metrics")
        assert_problem(response, 401, "unauthorized")
        assert response.headers["WWW-Authenticate"] == 'Bearer realm="fleetdash"'
        keyed = api.get("/metrics")                # the stack's admin key
        assert keyed.status_code == 200 and keyed.text.startswith("# HELP fleetdash_")
        viewer = api.post("/api/v1/api-keys", json={"name": "not metrics", "role": "viewer"}).json()
        try:
            assert_problem(api.with_key(viewer["key"]).get("/metrics"), 403, "forbidden")
        finally:
            api.delete("/api/v1/api-keys/%s" % viewer["id"])
        assert api.get("/healthz").status_code == 200
    finally:
        conf.unlink()
        reload(200)


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_a_real_prometheus_scrapes_it(api, stack, tmp_path, make_agent):
    make_agent(name="scraped")
    port = free_port()
    target = urllib.parse.urlsplit(stack.base_url).netloc
    (tmp_path / "prometheus.yml").write_text(
        "global: {scrape_interval: 1s, evaluation_interval: 1s}\n"
        "scrape_configs:\n"
        "  - job_name: fleetdash\n"
        "    metrics_path: /metrics\n"
        "    static_configs: [{targets: ['%s']}]\n" % target)
    log = open(tmp_path / "prometheus.log", "w")
    proc = subprocess.Popen(["prometheus", "--config.file=%s" % (tmp_path / "prometheus.yml"),
                             "--storage.tsdb.path=%s" % (tmp_path / "data"),
                             "--web.listen-address=127.0.0.1:%d" % port],
                            stdout=log, stderr=log)

    def query(expr):
        url = "http://127.0.0.1:%d/api/v1/query?query=%s" % (port, urllib.parse.quote(expr))
        try:
            with urllib.request.urlopen(url, timeout=5) as got:
                body = json.load(got)
        except OSError:
            return None
        return body["data"]["result"] if body.get("status") == "success" else None
    try:
        up = wait_until(lambda: query('up{job="fleetdash"} == 1'), 60,
                        "Prometheus to scrape fleetdash (up == 1)")
        assert up[0]["metric"]["instance"] == target
        agents = wait_until(lambda: query('fleetdash_agents{state="offline"}'), 30,
                            "a fleet metric through Prometheus")
        assert float(agents[0]["value"][1]) >= 1
    finally:
        proc.terminate()
        proc.wait(timeout=30)
