"""test_evaluator.py - the alert rules' evaluator on executions POSTed to the stack,
driven by calling alert_rules_evaluate(p_at) with explicit times: a failing agent
fires `threshold` on error_rate only after `for` and never below `min_executions`,
recovers and is resolved after `keep_firing_for` and not before; a value hovering
at the threshold does not flap; a warning threshold fires its lower severity;
group_by=agent opens one alert per breaching agent (labels alertname, agent_id,
agent_name); editing a rule resets its pending instances, changing its group_by
forgets its instances and resolves their alerts; no_data keep and alert;
agent_silent fires when executions (or heartbeats) stop and resolves when they
resume; cost_spike against its 7-day baseline; error_category counts its category
only; evaluators running at once evaluate a rule once and leave one open alert;
and the alerts group's evaluator job (a master of its own, interval 1 s) fires by
itself, stamps the rule and logs its summary.

The executions lie in the next few minutes (ingest accepts started_at up to 5
minutes ahead) and the evaluations happen at those times: the stack's own
evaluator, which evaluates at now(), sees no data of them, and once a rule was
evaluated at a later time it is not due for it."""

import datetime
import re
import signal
import subprocess
import threading
import time

import pytest

from support import api_time, now_utc, utc
from test_supervision import wait_until

pytestmark = pytest.mark.ingest

RULES = "/api/v1/alert-rules"
SECOND = datetime.timedelta(seconds=1)


@pytest.fixture(autouse=True)
def no_rules(db):
    db.execute("DELETE FROM alerts; DELETE FROM alert_rules")
    yield
    db.execute("DELETE FROM alerts; DELETE FROM alert_rules")


@pytest.fixture
def t0():
    """The start of a test's timeline: 10 s from now, whole seconds."""
    return (now_utc() + 10 * SECOND).replace(microsecond=0)


@pytest.fixture
def make_rule(api):
    def make(**fields):
        body = {"name": "rule", "kind": "threshold", "metric": "error_rate", "op": ">",
                "threshold": 50, "window": "1m"}
        body.update(fields)
        response = api.post(RULES, json=body)
        assert response.status_code == 201, response.text
        return response.json()
    return make


@pytest.fixture
def runs(ingest):
    """POSTs executions of agent_id from start every `every` seconds, n of
    them, failing (status failed, error_category) or succeeding."""
    def post(agent_id, start, n, failing, every=2, cost=0.0, category="tool_error",
             model="gpt-test"):
        body = []
        for i in range(n):
            run = {"agent_id": agent_id, "model": model, "latency_ms": 100, "cost_usd": cost,
                   "started_at": utc(start + i * every * SECOND),
                   "status": "failed" if failing else "succeeded"}
            if failing:
                run["error"] = {"category": category, "message": "boom"}
            body.append(run)
        ingest(body)
    return post


@pytest.fixture
def evaluate(db):
    """One evaluator cycle at `at` (cycles of 1 s); returns its counts. It
    first waits for any evaluator holding a rule (the stack's own, at now())
    instead of skipping the rules it holds."""
    conn = db.connect()

    def run(at):
        with conn.cursor() as cur:
            cur.execute("SELECT 1 FROM alert_rules FOR UPDATE")
            cur.execute("SELECT rules, instances, fired, cleared, failed "
                        "FROM alert_rules_evaluate(%s, interval '1 second')", (at,))
            row = cur.fetchone()
        conn.commit()
        return dict(zip(("rules", "instances", "fired", "cleared", "failed"), row))
    yield run
    conn.close()


def states(api, rule):
    """{instance key: state} of the rule, read through the API."""
    response = api.get("%s/%s" % (RULES, rule["id"]))
    assert response.status_code == 200, response.text
    return {i["key"]: i["state"] for i in response.json()["instances"]}


def alerts_of(db, rule, status=None):
    """(status, agent_id, severity) of the rule's alerts, oldest first."""
    return db.rows("SELECT status, agent_id::text, severity FROM alerts WHERE rule_id = %s "
                   "AND (%s::text IS NULL OR status = %s) ORDER BY starts_at, id",
                   (rule["id"], status, status))


# ---------------------------------------------------------------- threshold

def test_a_failing_agent_fires_only_after_for(api, db, make_agent, make_rule, runs, evaluate,
                                              t0):
    agent = make_agent()
    runs(agent["id"], t0, 60, failing=True)                  # t0 .. t0+118s
    rule = make_rule(**{"for": "1m", "min_executions": 5})
    assert evaluate(t0 + 60 * SECOND)["rules"] == 1
    assert states(api, rule) == {"": "pending"}
    evaluate(t0 + 90 * SECOND)
    assert states(api, rule) == {"": "pending"}
    assert alerts_of(db, rule) == []
    evaluate(t0 + 119 * SECOND)                              # 59 s pending
    assert alerts_of(db, rule) == []
    evaluate(t0 + 120 * SECOND)                              # held for 1m
    assert states(api, rule) == {"": "firing"}
    assert alerts_of(db, rule) == [("firing", None, "high")]
    alert = db.row("SELECT title, labels, value, starts_at, message FROM alerts "
                   "WHERE rule_id = %s", (rule["id"],))
    assert alert["title"] == "rule"
    assert alert["labels"] == {"alertname": "rule"}
    assert alert["value"] == 100.0
    assert alert["starts_at"] == t0 + 120 * SECOND
    assert "error_rate is 100" in alert["message"]
    body = api.get("%s/%s" % (RULES, rule["id"])).json()
    assert body["last_evaluated_at"] == api_time(t0 + 120 * SECOND)
    assert body["last_duration_ms"] >= 0 and body["last_error"] is None


def test_below_min_executions_a_window_cannot_fire(api, db, make_agent, make_rule, runs,
                                                   evaluate, t0):
    agent = make_agent()
    runs(agent["id"], t0, 9, failing=True, every=5)          # 9 failures in t0 .. t0+40s
    rule = make_rule(min_executions=10)
    for seconds in (45, 50, 55):
        evaluate(t0 + seconds * SECOND)
        assert states(api, rule) == {"": "normal"}
    assert alerts_of(db, rule) == []
    runs(agent["id"], t0 + 41 * SECOND, 1, failing=True)     # the tenth
    evaluate(t0 + 56 * SECOND)
    assert alerts_of(db, rule) == [("firing", None, "high")]


def test_recovers_and_resolves_only_after_keep_firing_for(api, db, make_agent, make_rule,
                                                          runs, evaluate, t0):
    agent = make_agent()
    runs(agent["id"], t0, 30, failing=True)                  # t0 .. t0+58s
    runs(agent["id"], t0 + 60 * SECOND, 60, failing=False)   # t0+60 .. t0+178s
    rule = make_rule(keep_firing_for="1m")
    evaluate(t0 + 59 * SECOND)
    assert alerts_of(db, rule) == [("firing", None, "high")]
    evaluate(t0 + 125 * SECOND)                              # window: successes only
    assert states(api, rule) == {"": "recovering"}
    evaluate(t0 + 160 * SECOND)
    evaluate(t0 + 184 * SECOND)                              # 59 s recovering
    assert states(api, rule) == {"": "recovering"}
    assert alerts_of(db, rule) == [("firing", None, "high")]
    assert evaluate(t0 + 185 * SECOND)["cleared"] == 1       # held false for 1m
    assert states(api, rule) == {"": "normal"}
    assert alerts_of(db, rule) == [("resolved", None, "high")]
    assert db.rows("SELECT ends_at, resolved_by FROM alerts WHERE rule_id = %s",
                   (rule["id"],)) == [(t0 + 185 * SECOND, "evaluator")]


def test_a_value_hovering_at_the_threshold_does_not_flap(api, db, make_agent, make_rule, runs,
                                                         evaluate, t0):
    agent = make_agent()
    for block in range(4):                                   # fail, succeed, fail, succeed
        runs(agent["id"], t0 + block * 60 * SECOND, 30, failing=block % 2 == 0)
    rule = make_rule(keep_firing_for="2m")
    seen = []
    for seconds in (60, 120, 180, 240):                      # 100 %, 0 %, 100 %, 0 %
        evaluate(t0 + seconds * SECOND)
        seen.append(states(api, rule)[""])
    assert seen == ["firing", "recovering", "firing", "recovering"]
    assert alerts_of(db, rule) == [("firing", None, "high")]  # one alert, never resolved
    assert db.scalar("SELECT occurrences FROM alerts WHERE rule_id = %s", (rule["id"],)) == 2
    assert db.scalar("SELECT count(*) FROM alert_transitions t JOIN alerts a ON a.id = t.alert_id"
                     " WHERE a.rule_id = %s", (rule["id"],)) == 1


def test_a_window_between_warning_and_threshold_fires_the_warning_severity(
        db, make_agent, make_rule, runs, evaluate, t0):
    agent = make_agent()
    runs(agent["id"], t0, 6, failing=True, every=5)
    runs(agent["id"], t0 + 30 * SECOND, 4, failing=False, every=5)   # 60 % errors
    rule = make_rule(threshold=80, warning_threshold=50, warning_severity="medium")
    evaluate(t0 + 50 * SECOND)
    assert alerts_of(db, rule) == [("firing", None, "medium")]
    runs(agent["id"], t0 + 50 * SECOND, 20, failing=True, every=0.25)  # 26 of 30: 87 %
    evaluate(t0 + 56 * SECOND)
    assert alerts_of(db, rule) == [("firing", None, "high")]         # the same alert, raised


# ---------------------------------------------------------------- group_by, edits, no data

def test_group_by_agent_opens_one_alert_per_breaching_agent(api, db, make_agent, make_rule,
                                                            runs, evaluate, t0):
    bad1, bad2, good = make_agent(), make_agent(), make_agent()
    runs(bad1["id"], t0, 60, failing=True)
    runs(bad2["id"], t0, 60, failing=True)
    runs(good["id"], t0, 20, failing=False)
    rule = make_rule(group_by="agent", labels={"team": "ops"})
    result = evaluate(t0 + 45 * SECOND)
    assert (result["instances"], result["fired"]) == (3, 2)
    assert states(api, rule) == {bad1["id"]: "firing", bad2["id"]: "firing",
                                 good["id"]: "normal"}
    rows = db.rows("SELECT agent_id::text, labels, title FROM alerts WHERE rule_id = %s "
                   "AND status = 'firing' ORDER BY title", (rule["id"],))
    expected = sorted([(a["id"], {"alertname": "rule", "team": "ops", "agent_id": a["id"],
                                  "agent_name": a["name"]}, "rule on " + a["name"])
                       for a in (bad1, bad2)], key=lambda r: r[2])
    assert rows == expected
    fingerprints = db.rows("SELECT DISTINCT fingerprint FROM alerts WHERE rule_id = %s",
                           (rule["id"],))
    assert len(fingerprints) == 2
    again = evaluate(t0 + 46 * SECOND)                        # still firing: nothing raised
    assert (again["instances"], again["fired"]) == (3, 0)
    assert db.rows("SELECT count(*), sum(occurrences) FROM alerts WHERE rule_id = %s",
                   (rule["id"],)) == [(2, 2)]
    evaluate(t0 + 107 * SECOND)                               # a minute on: seen again
    assert db.rows("SELECT DISTINCT last_seen_at FROM alerts WHERE rule_id = %s",
                   (rule["id"],)) == [(t0 + 107 * SECOND,)]


def test_the_title_template_is_filled_from_the_instance(db, make_agent, make_rule, runs,
                                                        evaluate, t0):
    agent = make_agent()
    runs(agent["id"], t0, 10, failing=True)
    rule = make_rule(group_by="agent", title="{{ alertname }}: {{agent_name}} at {{value}} %")
    evaluate(t0 + 30 * SECOND)
    assert db.scalar("SELECT title FROM alerts WHERE rule_id = %s", (rule["id"],)) == (
        "rule: %s at 100.00 %%" % agent["name"])


def test_editing_a_rule_resets_its_pending_instances(api, make_agent, make_rule, runs, evaluate,
                                                     t0):
    agent = make_agent()
    runs(agent["id"], t0, 60, failing=True)
    rule = make_rule(**{"for": "1m"})
    evaluate(t0 + 30 * SECOND)
    assert states(api, rule) == {"": "pending"}
    response = api.patch("%s/%s" % (RULES, rule["id"]), json={"threshold": 40})
    assert response.status_code == 200
    assert states(api, rule) == {"": "normal"}
    evaluate(t0 + 60 * SECOND)                                # pending again, from here
    evaluate(t0 + 100 * SECOND)                               # 70 s after the first: not yet
    assert states(api, rule) == {"": "pending"}
    evaluate(t0 + 120 * SECOND)
    assert states(api, rule) == {"": "firing"}


def test_changing_group_by_forgets_the_instances_and_resolves_their_alerts(
        api, db, make_agent, make_rule, runs, evaluate, t0):
    agent = make_agent()
    runs(agent["id"], t0, 30, failing=True)
    rule = make_rule(group_by="agent", no_data="keep")
    evaluate(t0 + 30 * SECOND)
    assert alerts_of(db, rule) == [("firing", agent["id"], "high")]
    body = api.patch("%s/%s" % (RULES, rule["id"]), json={"group_by": "none"}).json()
    assert body["instances"] == []
    assert alerts_of(db, rule) == [("resolved", agent["id"], "high")]
    evaluate(t0 + 31 * SECOND)
    assert states(api, rule) == {"": "firing"}
    assert alerts_of(db, rule, "firing") == [("firing", None, "high")]


@pytest.mark.parametrize("no_data, after", [("ok", "normal"), ("keep", "firing"),
                                            ("alert", "firing")])
def test_no_data_means_what_the_rule_says(api, db, make_agent, make_rule, runs, evaluate, t0,
                                          no_data, after):
    agent = make_agent()
    runs(agent["id"], t0, 10, failing=True)                  # t0 .. t0+18s
    rule = make_rule(no_data=no_data)
    evaluate(t0 + 20 * SECOND)
    assert states(api, rule) == {"": "firing"}
    evaluate(t0 + 200 * SECOND)                              # an empty window
    assert states(api, rule) == {"": after}
    assert alerts_of(db, rule) == [("resolved" if after == "normal" else "firing", None,
                                    "high")]


def test_no_data_alert_fires_without_any_execution(db, make_rule, evaluate, t0):
    rule = make_rule(no_data="alert")
    evaluate(t0 + 5 * SECOND)
    assert alerts_of(db, rule) == [("firing", None, "high")]


# ---------------------------------------------------------------- other kinds

def test_agent_silent_fires_when_executions_stop_and_resolves_when_they_resume(
        api, db, make_agent, runs, evaluate, t0):
    quiet, busy = make_agent(), make_agent()
    runs(quiet["id"], t0, 10, failing=False)                 # t0 .. t0+18s
    runs(busy["id"], t0, 25, failing=False, every=10)        # t0 .. t0+240s
    rule = api.post(RULES, json={"name": "silent", "kind": "agent_silent", "window": "1m",
                                 "group_by": "agent"}).json()
    evaluate(t0 + 40 * SECOND)
    assert alerts_of(db, rule) == []
    evaluate(t0 + 150 * SECOND)                              # quiet: nothing since t0+18s
    assert alerts_of(db, rule, "firing") == [("firing", quiet["id"], "high")]
    assert states(api, rule) == {quiet["id"]: "firing"}    # normal ones without a value: not kept
    runs(quiet["id"], t0 + 160 * SECOND, 5, failing=False)   # it runs again
    evaluate(t0 + 180 * SECOND)
    assert alerts_of(db, rule) == [("resolved", quiet["id"], "high")]


def test_agent_silent_resolves_when_heartbeats_resume(api, db, make_agent, evaluate):
    agent = make_agent()
    db.execute("UPDATE agents SET created_at = now() - interval '10 minutes' WHERE id = %s",
               (agent["id"],))
    rule = api.post(RULES, json={"name": "silent", "kind": "agent_silent", "window": "1m",
                                 "agent_id": agent["id"]}).json()
    start = now_utc()
    evaluate(start + 5 * SECOND)                             # registered long ago, no beat
    assert alerts_of(db, rule) == [("firing", agent["id"], "high")]
    response = api.post("/api/v1/agents/%s/heartbeat" % agent["id"], json={"state": "idle"})
    assert response.status_code == 204
    evaluate(start + 10 * SECOND)
    assert alerts_of(db, rule) == [("resolved", agent["id"], "high")]


def test_cost_spike_compares_with_the_7_day_average(db, make_agent, make_rule, runs, evaluate,
                                                    t0):
    agent = make_agent()
    for day in range(1, 8):                                  # 1 USD a day, last week
        runs(agent["id"], t0 - day * 86400 * SECOND, 1, failing=False, cost=1.0)
    runs(agent["id"], t0, 2, failing=False, cost=0.5)       # 1 USD in this hour
    rule = make_rule(kind="cost_spike", metric=None, threshold=30, window="1h")
    evaluate(t0 + 10 * SECOND)                               # 24 times the hourly average
    assert alerts_of(db, rule) == []
    spike = make_rule(name="spike", kind="cost_spike", metric=None, threshold=20, window="1h")
    evaluate(t0 + 11 * SECOND)
    assert alerts_of(db, spike) == [("firing", None, "high")]
    value = db.scalar("SELECT value FROM alerts WHERE rule_id = %s", (spike["id"],))
    assert abs(value - 24.0) < 1e-9


def test_error_category_counts_its_category_only(db, make_agent, make_rule, runs, evaluate, t0):
    agent = make_agent()
    runs(agent["id"], t0, 5, failing=True, category="timeout")
    runs(agent["id"], t0, 9, failing=True, category="rate_limit")
    rule = make_rule(kind="error_category", metric=None, category="timeout", threshold=5)
    any_rule = make_rule(name="any", kind="error_category", metric=None, threshold=13)
    evaluate(t0 + 30 * SECOND)
    assert alerts_of(db, rule) == []                          # 5 is not more than 5
    assert alerts_of(db, any_rule) == [("firing", None, "high")]   # 14 errors
    runs(agent["id"], t0 + 20 * SECOND, 1, failing=True, category="timeout")
    evaluate(t0 + 31 * SECOND)
    assert alerts_of(db, rule) == [("firing", None, "high")]


# ---------------------------------------------------------------- several evaluators

def test_an_evaluator_skips_the_rules_another_one_holds(db, stack, make_agent, make_rule, runs,
                                                        t0):
    agent = make_agent()
    runs(agent["id"], t0, 10, failing=True)
    rule = make_rule()
    first, second = db.connect(), db.connect()
    second.autocommit = True
    try:
        with first.cursor() as cur:
            cur.execute("SELECT 1 FROM alert_rules FOR UPDATE")     # the stack's evaluator
            cur.execute("SELECT rules FROM alert_rules_evaluate(%s, interval '15 seconds')",
                        (t0 + 30 * SECOND,))
            assert cur.fetchone() == (1,)
            with second.cursor() as other:               # the first one holds the rule
                other.execute("SELECT rules FROM alert_rules_evaluate(%s, interval '15 seconds')",
                              (t0 + 30 * SECOND,))
                assert other.fetchone() == (0,)
        first.commit()
        with second.cursor() as other:                   # and after it: not due this cycle
            other.execute("SELECT rules FROM alert_rules_evaluate(%s, interval '15 seconds')",
                          (t0 + 30 * SECOND,))
            assert other.fetchone() == (0,)
    finally:
        first.close()
        second.close()
    assert db.rows("SELECT status, occurrences FROM alerts WHERE rule_id = %s",
                   (rule["id"],)) == [("firing", 1)]


def test_evaluators_at_once_evaluate_each_rule_once_and_open_one_alert(db, make_agent,
                                                                        make_rule, runs,
                                                                        evaluate, t0):
    agent = make_agent()
    runs(agent["id"], t0, 10, failing=True)
    rule = make_rule(group_by="agent", min_executions=10)
    # 3 executions by t0+5s: nothing fires; the stack's evaluator leaves the
    # rule alone from here on (evaluated at a later time than its now())
    assert evaluate(t0 + 5 * SECOND)["fired"] == 0
    at = t0 + 30 * SECOND
    barrier = threading.Barrier(6)
    counts = []

    def evaluator():
        conn = db.connect()
        conn.autocommit = True
        try:
            barrier.wait()
            with conn.cursor() as cur:
                cur.execute("SELECT rules FROM alert_rules_evaluate(%s, interval '15 seconds')",
                            (at,))
                counts.append(cur.fetchone()[0])
        finally:
            conn.close()

    threads = [threading.Thread(target=evaluator) for _ in range(6)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(30)
    assert sorted(counts) == [0, 0, 0, 0, 0, 1]
    assert db.rows("SELECT status, occurrences FROM alerts WHERE rule_id = %s",
                   (rule["id"],)) == [("firing", 1)]


# ---------------------------------------------------------------- the job

def test_the_evaluator_job_fires_by_itself_and_logs_its_summary(stack, db, tmp_path,
                                                                 make_agent, make_rule, runs):
    agent = make_agent()
    runs(agent["id"], now_utc() - 40 * SECOND, 15, failing=True)   # the last 40 s
    rule = make_rule(window="5m", group_by="agent")
    env = stack.env
    url = "host=%s port=%s user=%s dbname=%s" % (env["PGHOST"], env["PGPORT"],
                                                 env.get("PGUSER", "postgres"),
                                                 env.get("PGDATABASE", "fleetdash"))
    log_path = tmp_path / "alerts.log"
    with open(log_path, "w") as log:
        proc = subprocess.Popen([env["FLEETDASHD"], "--group", "alerts", "--database-url", url,
                                 "--listen", "unix:%s" % (tmp_path / "alerts.sock"),
                                 "--workers", "1", "--evaluation-interval", "1"],
                                stdout=log, stderr=log, cwd=env.get("VARDIR"))
    try:
        wait_until(lambda: db.rows("SELECT 1 FROM alerts WHERE rule_id = %s AND status = "
                                   "'firing'", (rule["id"],)), 10, "the job's alert")
        assert db.rows("SELECT agent_id::text FROM alerts WHERE rule_id = %s",
                       (rule["id"],)) == [(agent["id"],)]
        row = db.rows("SELECT last_evaluated_at, last_duration_ms, last_error FROM alert_rules "
                      "WHERE id = %s", (rule["id"],))[0]
        assert abs((row[0] - now_utc()).total_seconds()) < 5 and row[1] >= 0 and row[2] is None
        assert "evaluating alert rules every 1 s" in log_path.read_text()
        time.sleep(2.5)                          # a few more cycles of its own
    finally:
        proc.send_signal(signal.SIGTERM)
        code = proc.wait(timeout=30)
    assert code == 0
    text = log_path.read_text()
    summary = re.search(r"alert rules: (\d+) cycles in \d+s, (\d+) rule evaluations, "
                        r"(\d+) alerts fired, \d+ cleared, 0 rule evaluations failed, "
                        r"\d+ budget thresholds fired, slowest cycle [0-9.]+ ms, 0 cycles failed", text)
    assert summary, text
    assert int(summary.group(1)) >= 3 and int(summary.group(2)) >= 1
