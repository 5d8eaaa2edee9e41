"""test_notifications.py - the notification outbox and the alerts group's sender
job: who is told what (notifications_enqueue at explicit times, in rolled-back
transactions), retries and their bounds (notification_record), claims
(SKIP LOCKED, lease), and through the running sender against a local HTTP
receiver: Alertmanager v4 bodies with a verified signature, a receiver failing
twice then succeeding, 429 + Retry-After honoured, a hanging one timed out, a
400 final, silences holding a notification back until they end, resolutions
told even when silenced."""

import hashlib
import hmac
import http.server
import json
import os
import subprocess
import threading
import time
from pathlib import Path

import pytest

STACK_SCRIPT = Path(__file__).resolve().parents[2] / "deploy" / "stack.sh"
BACKOFF_MS = 300
TIMEOUT_MS = 1000
SENDER_ENV = {"FLEETDASH_WEBHOOK_BACKOFF": str(BACKOFF_MS),
              "FLEETDASH_WEBHOOK_TIMEOUT": str(TIMEOUT_MS),
              "FLEETDASH_WEBHOOK_MAX_ATTEMPTS": "5",
              "FLEETDASH_SENDER_INTERVAL": "100",
              "FLEETDASH_EXTERNAL_URL": "http://fleetdash.example"}
T0 = "2026-01-01T00:00:00Z"


@pytest.fixture(autouse=True)
def empty_tables(db):
    db.execute_retrying("TRUNCATE receivers, notifications, notification_attempts, alerts, silences "
               "CASCADE")
    yield


# ---------------------------------------------------------------- the receiver

class Receiver:
    """A local webhook receiver on a port of its own: answers each POST with
    the next of its script (status, headers, seconds to hang first), 200
    once the script is used up, and records every request."""

    def __init__(self, script=()):
        self.script = list(script)
        self.requests = []
        self.lock = threading.Condition()
        receiver = self

        class Handler(http.server.BaseHTTPRequestHandler):
            def do_POST(self):
                body = self.rfile.read(int(self.headers["Content-Length"]))
                with receiver.lock:
                    receiver.requests.append({"at": time.monotonic(), "body": body,
                                              "headers": dict(self.headers),
                                              "path": self.path})
                    step = receiver.script.pop(0) if receiver.script else (200, {}, 0)
                    receiver.lock.notify_all()
                status, headers, hang = step
                if hang:
                    time.sleep(hang)
                try:
                    self.send_response(status)
                    for name, value in headers.items():
                        self.send_header(name, value)
                    self.send_header("Content-Length", "2")
                    self.end_headers()
                    self.wfile.write(b"no" if status >= 300 else b"ok")
                except OSError:
                    pass

            def log_message(self, *args):
                pass

        self.server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.url = "http://127.0.0.1:%d/hook" % self.server.server_address[1]
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def wait(self, n, timeout=15):
        """The first n requests, once they arrived (asserted within timeout s)."""
        deadline = time.monotonic() + timeout
        with self.lock:
            while len(self.requests) < n:
                left = deadline - time.monotonic()
                assert left > 0, "%d of %d requests arrived" % (len(self.requests), n)
                self.lock.wait(left)
            return list(self.requests[:n])

    def close(self):
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def receiver():
    made = []

    def make(*script):
        r = Receiver(script)
        made.append(r)
        return r
    yield make
    for r in made:
        r.close()


def stack_group(stack, command, **env):
    result = subprocess.run([str(STACK_SCRIPT), command, str(stack.vardir), "alerts"],
                            capture_output=True, text=True, timeout=120,
                            env=dict(os.environ, **env))
    assert result.returncode == 0, result.stdout + result.stderr


@pytest.fixture(scope="module")
def sender(stack):
    """The stack's alerts group restarted with a short backoff and timeout;
    put back as it was afterwards."""
    stack_group(stack, "stop-group")
    try:
        stack_group(stack, "start-group", **SENDER_ENV)
        yield stack
    finally:
        stack_group(stack, "stop-group")
        stack_group(stack, "start-group")


def make_receiver(api, url, **body):
    body.setdefault("name", "hook %s" % url)
    response = api.post("/api/v1/receivers", json=dict(body, url=url))
    assert response.status_code == 201, response.text
    return response.json()


def raise_alert(api, receivers, title="Checkout is down", labels=None, severity="high"):
    response = api.post("/api/v1/alerts", json={
        "severity": severity, "title": title, "message": "payments fail",
        "labels": labels or {"team": "payments"}, "receivers": receivers}, validate=False)
    assert response.status_code == 201, response.text
    return response.json()


def notifications(api, **params):
    response = api.get("/api/v1/notifications", params=params)
    assert response.status_code == 200, response.text
    return response.json()["items"]


def wait_for(predicate, timeout=15, what="the condition"):
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value:
            return value
        assert time.monotonic() < deadline, "timed out waiting for " + what
        time.sleep(0.05)


def settled(api, alert_id, status, count=1):
    """The alert's notifications once count of them have status."""
    return wait_for(lambda: (lambda items: items if sum(n["status"] == status for n in items)
                             >= count else None)(notifications(api, alert_id=alert_id)),
                    what="%d %s notification(s)" % (count, status))


# ---------------------------------------------------------------- through the sender

def test_a_firing_alert_arrives_in_alertmanager_v4_format_signed(sender, api, receiver):
    hook = receiver()
    rec = make_receiver(api, hook.url, name="ops", secret="s3cret", headers={"X-Team": "pay"})
    alert = raise_alert(api, [rec["id"]])
    request = hook.wait(1)[0]
    body = json.loads(request["body"])
    assert body["version"] == "4"
    assert body["status"] == "firing" and body["receiver"] == "ops"
    assert body["groupKey"] == '{}:{fingerprint="%s"}' % alert["fingerprint"]
    assert body["externalURL"] == "http://fleetdash.example"
    assert body["truncatedAlerts"] == 0 and body["groupLabels"] == {}
    labels = {"alertname": "Checkout is down", "team": "payments", "severity": "high"}
    assert body["commonLabels"] == labels
    assert body["commonAnnotations"] == {"summary": "Checkout is down",
                                         "description": "payments fail"}
    [item] = body["alerts"]
    assert item == {"status": "firing", "labels": labels,
                    "annotations": body["commonAnnotations"],
                    "startsAt": alert["starts_at"], "endsAt": "0001-01-01T00:00:00Z",
                    "generatorURL": "http://fleetdash.example/api/v1/alerts/" + alert["id"],
                    "fingerprint": alert["fingerprint"]}
    assert body["fleetdash"]["alert_id"] == alert["id"]
    assert body["fleetdash"]["severity"] == "high" and body["fleetdash"]["event"] == "firing"
    headers = {k.lower(): v for k, v in request["headers"].items()}
    assert headers["content-type"] == "application/json"
    assert headers["x-team"] == "pay"
    expected = "sha256=" + hmac.new(b"s3cret", request["body"], hashlib.sha256).hexdigest()
    assert hmac.compare_digest(headers["x-fleetdash-signature"], expected)
    [note] = settled(api, alert["id"], "delivered")
    assert headers["idempotency-key"] == note["idempotency_key"]
    assert note["event"] == "firing" and note["receiver_id"] == rec["id"]
    assert note["attempt_count"] == 1 and note["last_code"] == 200
    assert [a["code"] for a in note["attempts"]] == [200]
    assert note["delivered_at"] is not None and note["next_attempt_at"] is None
    assert json.loads(request["body"]) == note["payload"]


def test_without_a_secret_there_is_no_signature(sender, api, receiver):
    hook = receiver()
    rec = make_receiver(api, hook.url)
    raise_alert(api, [rec["id"]])
    headers = {k.lower() for k in hook.wait(1)[0]["headers"]}
    assert "x-fleetdash-signature" not in headers and "idempotency-key" in headers


def test_a_receiver_failing_twice_then_succeeding_gets_three_attempts(sender, api, receiver):
    hook = receiver((503, {}, 0), (500, {}, 0), (200, {}, 0))
    rec = make_receiver(api, hook.url)
    alert = raise_alert(api, [rec["id"]])
    requests = hook.wait(3)
    assert len({r["headers"]["Idempotency-Key"] for r in requests}) == 1
    assert len({r["body"] for r in requests}) == 1
    [note] = settled(api, alert["id"], "delivered")
    assert note["attempt_count"] == 3
    assert [(a["attempt"], a["code"]) for a in note["attempts"]] == [(1, 503), (2, 500), (3, 200)]
    assert note["attempts"][0]["error"].startswith("HTTP 503")
    # the backoff doubles: the second pause is longer than the first base
    gaps = [b["at"] - a["at"] for a, b in zip(requests, requests[1:])]
    assert gaps[0] >= BACKOFF_MS / 1000 * 0.9 and gaps[1] >= 2 * BACKOFF_MS / 1000 * 0.9


def test_429_with_retry_after_is_honoured(sender, api, receiver):
    hook = receiver((429, {"Retry-After": "2"}, 0), (200, {}, 0))
    rec = make_receiver(api, hook.url)
    alert = raise_alert(api, [rec["id"]])
    first, second = hook.wait(2)
    assert second["at"] - first["at"] >= 1.9   # not the 0.3 s backoff
    [note] = settled(api, alert["id"], "delivered")
    assert [a["code"] for a in note["attempts"]] == [429, 200]


def test_a_hanging_receiver_is_timed_out_recorded_and_retried(sender, api, receiver):
    hook = receiver((200, {}, 4), (200, {}, 0))
    rec = make_receiver(api, hook.url)
    alert = raise_alert(api, [rec["id"]])
    first, second = hook.wait(2)
    assert second["at"] - first["at"] < 4   # the sender did not wait for the answer
    [note] = settled(api, alert["id"], "delivered")
    timed_out, ok = note["attempts"]
    assert timed_out["code"] is None and "timed out" in timed_out["error"].lower()
    assert TIMEOUT_MS * 0.9 <= timed_out["duration_ms"] < 4000
    assert ok["code"] == 200


def test_a_400_is_final_failed_and_listed(sender, api, receiver):
    hook = receiver((400, {}, 0), (200, {}, 0))
    rec = make_receiver(api, hook.url)
    alert = raise_alert(api, [rec["id"]])
    [note] = settled(api, alert["id"], "failed")
    assert note["attempt_count"] == 1 and note["last_code"] == 400
    assert note["last_error"].startswith("HTTP 400") and note["next_attempt_at"] is None
    assert [n["id"] for n in notifications(api, status="failed")] == [note["id"]]
    time.sleep(4 * BACKOFF_MS / 1000)
    assert len(hook.requests) == 1


def test_a_silenced_alert_is_notified_when_the_silence_ends(sender, api, receiver):
    hook = receiver()
    rec = make_receiver(api, hook.url)
    silence = api.post("/api/v1/silences", validate=False, json={
        "matchers": [{"name": "team", "value": "payments", "op": "="}],
        "ends_at": "2099-01-01T00:00:00Z", "created_by": "ana", "comment": "deploy"}).json()
    alert = raise_alert(api, [rec["id"]])
    time.sleep(1.5)   # fifteen sender rounds
    assert hook.requests == [] and notifications(api, alert_id=alert["id"]) == []
    response = api.delete("/api/v1/silences/" + silence["id"], validate=False)
    assert response.status_code == 200
    body = json.loads(hook.wait(1)[0]["body"])
    assert body["status"] == "firing" and body["fleetdash"]["alert_id"] == alert["id"]


def test_a_notified_alert_is_notified_when_it_resolves_even_if_silenced(sender, api, receiver):
    hook = receiver()
    rec = make_receiver(api, hook.url, name="ops")
    alert = raise_alert(api, [rec["id"]])
    hook.wait(1)
    response = api.post("/api/v1/silences", validate=False, json={
        "matchers": [{"name": "team", "value": "payments", "op": "="}],
        "ends_at": "2099-01-01T00:00:00Z", "created_by": "ana"})
    assert response.status_code == 201
    resolved = api.post("/api/v1/alerts/%s/resolve" % alert["id"], validate=False,
                        json={"by": "ana", "note": "fixed"}).json()
    body = json.loads(hook.wait(2)[1]["body"])
    assert body["status"] == "resolved" and body["receiver"] == "ops"
    assert body["alerts"][0]["status"] == "resolved"
    assert body["alerts"][0]["endsAt"] == resolved["ends_at"]
    items = settled(api, alert["id"], "delivered", 2)
    assert sorted(n["event"] for n in items) == ["firing", "resolved"]


# ---------------------------------------------------------------- the SQL, at given times

@pytest.fixture
def tx(db):
    """A cursor in a transaction rolled back at the end: the running sender
    never sees what it makes."""
    conn = db.connect()
    cur = conn.cursor()
    cur.execute("SET TIME ZONE 'UTC'")
    yield cur
    conn.rollback()
    conn.close()


def receiver_row(tx, name="r"):
    tx.execute("INSERT INTO receivers (name, url) VALUES (%s, 'http://127.0.0.1:1/') "
               "RETURNING id", (name,))
    return tx.fetchone()[0]


def alert_row(tx, receivers, fp="00000000000000aa", labels="{}", at=T0):
    tx.execute("INSERT INTO alerts (fingerprint, severity, title, labels, receivers, starts_at,"
               " last_seen_at) VALUES (%s, 'high', 'T', %s, %s::uuid[], %s, %s) RETURNING id",
               (fp, labels, receivers, at, at))
    return tx.fetchone()[0]


def enqueue(tx, at):
    tx.execute("SELECT notifications_enqueue(%s, '')", (at,))
    return tx.fetchone()[0]


def test_enqueue_tells_each_receiver_once_per_firing(tx):
    a, b = receiver_row(tx, "a"), receiver_row(tx, "b")
    alert_row(tx, [a, b])
    assert enqueue(tx, "2026-01-01T00:00:01Z") == 2
    assert enqueue(tx, "2026-01-01T00:00:02Z") == 0
    tx.execute("SELECT event, firing_round, status FROM notifications ORDER BY receiver_name")
    assert tx.fetchall() == [("firing", 1, "pending")] * 2


def test_enqueue_holds_a_silenced_alert_until_the_silence_ends(tx):
    r = receiver_row(tx)
    alert_row(tx, [r], labels='{"team": "x"}')
    tx.execute("INSERT INTO silences (matchers, starts_at, ends_at, created_by) VALUES "
               "('[{\"name\": \"team\", \"value\": \"x\", \"op\": \"=\"}]', %s, "
               "'2026-01-01T01:00:00Z', 'ana')", (T0,))
    assert enqueue(tx, "2026-01-01T00:30:00Z") == 0
    assert enqueue(tx, "2026-01-01T01:00:00Z") == 1


def test_enqueue_tells_a_resolution_only_of_a_told_firing_silenced_or_not(tx):
    r = receiver_row(tx)
    told = alert_row(tx, [r], fp="00000000000000a1", labels='{"team": "x"}')
    assert enqueue(tx, "2026-01-01T00:00:01Z") == 1
    tx.execute("INSERT INTO silences (matchers, starts_at, ends_at, created_by) VALUES "
               "('[{\"name\": \"team\", \"value\": \"x\", \"op\": \"=\"}]', %s, "
               "'2026-02-01T00:00:00Z', 'ana')", (T0,))
    never = alert_row(tx, [r], fp="00000000000000a2", labels='{"team": "x"}')
    assert enqueue(tx, "2026-01-01T00:00:02Z") == 0
    tx.execute("SELECT alerts_clear(ARRAY['00000000000000a1', '00000000000000a2'], "
               "'2026-01-01T00:10:00Z', 'test', NULL)")
    assert enqueue(tx, "2026-01-01T00:10:01Z") == 1
    assert enqueue(tx, "2026-01-01T00:10:02Z") == 0
    tx.execute("SELECT alert_id, event, payload -> 'alerts' -> 0 ->> 'endsAt' FROM notifications"
               " WHERE event = 'resolved'")
    assert tx.fetchall() == [(told, "resolved", "2026-01-01T00:10:00Z")]
    tx.execute("SELECT count(*) FROM notifications WHERE alert_id = %s", (never,))
    assert tx.fetchone()[0] == 0


def test_an_acknowledged_alert_firing_again_is_told_again(tx):
    r = receiver_row(tx)
    alert = alert_row(tx, [r])
    assert enqueue(tx, "2026-01-01T00:00:01Z") == 1
    tx.execute("UPDATE alerts SET status = 'acknowledged', acknowledged_at = %s, "
               "acknowledged_by = 'ana'", ("2026-01-01T00:01:00Z",))
    assert enqueue(tx, "2026-01-01T00:01:01Z") == 0
    tx.execute("SELECT id FROM alerts_raise(ARRAY[ROW('00000000000000aa', NULL, NULL, "
               "'critical', 'T', '', NULL, NULL, '{}', '{}', 1, %s::uuid[])::alert_signal_t], "
               "'2026-01-01T00:02:00Z', 'test')", ([r],))
    assert enqueue(tx, "2026-01-01T00:02:01Z") == 1
    tx.execute("SELECT firing_round FROM notifications WHERE alert_id = %s ORDER BY 1",
               (alert,))
    assert [row[0] for row in tx.fetchall()] == [1, 2]


def claim(tx, at, limit=10, lease_ms=60000):
    tx.execute("SELECT id, attempt FROM notifications_claim(%s, %s, %s)", (at, limit, lease_ms))
    return tx.fetchall()


def record(tx, nid, attempt, at, code, error=None, retry_after=None, final=False,
           backoff_ms=1000, max_attempts=4, max_age_s=3600):
    tx.execute("SELECT notification_record(%s, %s, %s, 5, %s, %s, %s, %s, %s, %s, %s)",
               (nid, attempt, at, code, error, retry_after, final, backoff_ms, max_attempts,
                max_age_s))
    status = tx.fetchone()[0]
    tx.execute("SELECT status, next_attempt_at, attempts, last_code, last_error "
               "FROM notifications WHERE id = %s", (nid,))
    row = tx.fetchone()
    assert row[0] == status
    return row


def one_notification(tx, at="2026-01-01T00:00:00Z"):
    alert_row(tx, [receiver_row(tx)])
    assert enqueue(tx, at) == 1
    [(nid, attempt)] = claim(tx, at)
    assert attempt == 1
    return nid


def test_retries_back_off_exponentially_up_to_the_attempts(tx):
    nid = one_notification(tx)
    s = record(tx, nid, 1, "2026-01-01T00:00:00Z", 503)
    assert s[0] == "pending" and s[1].isoformat() == "2026-01-01T00:00:01+00:00"
    assert claim(tx, "2026-01-01T00:00:00.5Z") == []
    assert claim(tx, "2026-01-01T00:00:01Z") == [(nid, 2)]
    s = record(tx, nid, 2, "2026-01-01T00:00:01Z", None, "Connection refused")
    assert s[1].isoformat() == "2026-01-01T00:00:03+00:00" and s[4] == "Connection refused"
    claim(tx, "2026-01-01T00:00:03Z")
    s = record(tx, nid, 3, "2026-01-01T00:00:03Z", 502)
    assert s[1].isoformat() == "2026-01-01T00:00:07+00:00"
    claim(tx, "2026-01-01T00:00:07Z")
    s = record(tx, nid, 4, "2026-01-01T00:00:07Z", 500)
    assert s[0] == "failed" and s[1] is None and s[4] == "gave up after 4 attempts: HTTP 500"
    tx.execute("SELECT attempt, code FROM notification_attempts WHERE notification_id = %s "
               "ORDER BY attempt", (nid,))
    assert tx.fetchall() == [(1, 503), (2, None), (3, 502), (4, 500)]


def test_retries_stop_at_the_maximum_age(tx):
    nid = one_notification(tx)
    s = record(tx, nid, 1, "2026-01-01T00:00:00Z", 503, backoff_ms=20000, max_age_s=10)
    assert s[0] == "failed" and s[4].startswith("gave up after 1 attempts")


def test_429_waits_for_retry_after(tx):
    nid = one_notification(tx)
    s = record(tx, nid, 1, "2026-01-01T00:00:00Z", 429, retry_after=120)
    assert s[0] == "pending" and s[1].isoformat() == "2026-01-01T00:02:00+00:00"
    assert claim(tx, "2026-01-01T00:01:59Z") == []


@pytest.mark.parametrize("code,final", [(400, False), (404, False), (301, False),
                                        (None, True)])
def test_other_4xx_3xx_and_refused_targets_are_final(tx, code, final):
    nid = one_notification(tx)
    s = record(tx, nid, 1, "2026-01-01T00:00:00Z", code, final=final,
               error="refused by configuration" if final else None)
    assert s[0] == "failed" and s[1] is None and s[3] == code


def test_2xx_delivers(tx):
    nid = one_notification(tx)
    assert record(tx, nid, 1, "2026-01-01T00:00:00Z", 204)[0] == "delivered"
    assert claim(tx, "2026-01-02T00:00:00Z") == []


def test_a_claim_is_a_lease_and_a_stale_outcome_changes_nothing(tx):
    nid = one_notification(tx)   # claimed at T0 with a 60 s lease
    assert claim(tx, "2026-01-01T00:00:59Z") == []
    assert claim(tx, "2026-01-01T00:01:00Z") == [(nid, 2)]   # its sender died
    s = record(tx, nid, 1, "2026-01-01T00:01:01Z", 200)   # the first one's late answer
    assert s[0] == "sending" and s[2] == 2
    assert record(tx, nid, 2, "2026-01-01T00:01:02Z", 200)[0] == "delivered"


def test_concurrent_claims_never_take_one_notification_twice(db):
    first, second = db.connect(), db.connect()
    try:
        a = first.cursor()
        rid = receiver_row(a)
        for i in range(6):
            alert_row(a, [rid], fp="%016x" % (0xbb0 + i))
        assert enqueue(a, "2090-01-01T00:00:00Z") == 6
        first.commit()
        a.execute("SELECT id FROM notifications_claim('2090-01-01T00:00:00Z', 4, 60000)")
        mine = {r[0] for r in a.fetchall()}
        b = second.cursor()
        b.execute("SELECT id FROM notifications_claim('2090-01-01T00:00:00Z', 4, 60000)")
        theirs = {r[0] for r in b.fetchall()}
        assert len(mine) == 4 and len(theirs) == 2 and not mine & theirs
    finally:
        first.rollback()
        second.rollback()
        first.close()
        second.close()
        db.execute_retrying("TRUNCATE receivers, notifications, notification_attempts, alerts CASCADE")


@pytest.fixture
def deny_private(stack):
    """The alerts group restarted with FLEETDASH_WEBHOOK_DENY_PRIVATE=1 (and the
    short pace); put back as it was afterwards."""
    stack_group(stack, "stop-group")
    try:
        stack_group(stack, "start-group", FLEETDASH_WEBHOOK_DENY_PRIVATE="1", **SENDER_ENV)
        yield stack
    finally:
        stack_group(stack, "stop-group")
        stack_group(stack, "start-group")


def test_deny_private_refuses_the_address_connected_to_not_the_name(deny_private, api,
                                                                     receiver):
    hook = receiver()
    # "localhost" is a name: what is refused is the loopback address it resolves to
    rec = make_receiver(api, hook.url.replace("127.0.0.1", "localhost"))
    alert = raise_alert(api, [rec["id"]])
    [note] = settled(api, alert["id"], "failed")
    assert note["attempt_count"] == 1 and note["last_code"] is None
    assert "refused by configuration" in note["last_error"]
    assert hook.requests == []
