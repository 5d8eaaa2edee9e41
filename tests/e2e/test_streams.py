"""test_streams.py - the live streams (GET /api/v1/stream/...): every channel
over Server-Sent Events, WebSocket and long polling through the real nginx
with nchan, the snapshot on connect, resumption with Last-Event-ID (nchan's
id or a feed id), an id no longer buffered, the key checked before nchan
takes the connection, and an nginx reload, a killed publisher and a
PostgreSQL restart mid-stream, the received sequence checked against the
feed (GET /activity)."""
import json
import os
import signal
import socket
import time
import urllib.parse
import uuid

import pytest
import requests
import websocket

from support import log_records
from test_supervision import stack_command, wait_until

STREAM = "/api/v1/stream/"
EVENT_SCHEMA = {"$ref": "#/components/schemas/StreamEvent"}


class Sse:
    """One SSE subscriber on a raw socket: the status and headers, then
    events as {event, id, data} dicts (None once the server closed)."""

    def __init__(self, stack, path, key, last_event_id=None, timeout=10):
        url = urllib.parse.urlsplit(stack.base_url)
        self.sock = socket.create_connection((url.hostname, url.port), timeout=timeout)
        lines = ["GET %s HTTP/1.1" % path, "Host: %s" % url.netloc,
                 "Accept: text/event-stream", "Connection: close"]
        if key:
            lines.append("Authorization: Bearer " + key)
        if last_event_id is not None:
            lines.append("Last-Event-ID: " + last_event_id)
        self.sock.sendall(("\r\n".join(lines) + "\r\n\r\n").encode())
        self.file = self.sock.makefile("rb")
        self.status = int(self.file.readline().split()[1])
        self.headers = {}
        while True:
            line = self.file.readline().decode().rstrip("\r\n")
            if not line:
                break
            name, _, value = line.partition(":")
            self.headers[name.strip().lower()] = value.strip()
        self.comments = []

    def body(self):
        length = int(self.headers.get("content-length", "0"))
        return json.loads(self.file.read(length)) if length else None

    def next(self, timeout=10):
        """The next event, or None when the stream ended."""
        self.sock.settimeout(timeout)
        event = {}
        data = []
        while True:
            try:
                raw = self.file.readline()
            except socket.timeout:
                raise AssertionError("no event within %ss" % timeout)
            if not raw:
                return None
            line = raw.decode().rstrip("\n")
            if line == "":
                if data:
                    event["data"] = json.loads("\n".join(data))
                    return event
                continue
            if line.startswith(":"):
                self.comments.append(line)
                continue
            name, _, value = line.partition(":")
            value = value[1:] if value.startswith(" ") else value
            if name == "data":
                data.append(value)
            else:
                event[name] = value

    def close(self):
        try:
            self.file.close()
            self.sock.close()
        except OSError:
            pass


@pytest.fixture
def subscribe(stack, openapi):
    opened = []

    def open_(channel, key=stack.key, last_event_id=None, expect=200):
        sub = Sse(stack, STREAM + channel, key, last_event_id)
        opened.append(sub)
        assert sub.status == expect, (sub.status, sub.headers)
        if expect == 200:
            assert sub.headers["content-type"].startswith("text/event-stream")
        return sub
    yield open_
    for sub in opened:
        sub.close()


def checked(openapi, event):
    openapi.check_schema(EVENT_SCHEMA, event["data"], "stream event %r" % event.get("event"))
    assert event["data"]["type"] == event["event"] or (
        event["event"] in ("snapshot", "batch") and event["data"]["type"] == event["event"])
    return event


def feed_events(event):
    """The feed events a message carries (a batch's, or the one)."""
    data = event["data"]
    if data["type"] == "batch":
        return data["events"]
    if data["type"] == "snapshot":
        return []
    return [data]


def agent_of(event):
    return event["link"].rsplit("/", 1)[1]


def follow(sub, openapi, want, timeout=15, channel=None):
    """Reads messages until every id of `want` (the resources the feed
    events link to) was seen; returns (messages, events)."""
    messages, events = [], []
    deadline = time.monotonic() + timeout
    while not set(want) <= {agent_of(e) for e in events}:
        left = deadline - time.monotonic()
        assert left > 0, "missing %r of %r" % (set(want) - {agent_of(e) for e in events},
                                               events)
        event = sub.next(timeout=left)
        assert event is not None, "the stream ended after %r" % events
        checked(openapi, event)
        if channel is not None and event["data"]["type"] in ("snapshot", "batch"):
            assert event["data"]["channel"] == channel
        messages.append(event)
        events.extend(feed_events(event))
    return messages, events


def assert_contiguous(api, after, events, where=None):
    """events are exactly the feed's after id `after` (those where() keeps)."""
    ids = [e["id"] for e in events]
    assert len(ids) == len(set(ids)), "an event came twice: %r" % ids
    if not ids:
        return
    feed = [e["id"] for e in feed_after(api, after) if e["id"] <= ids[-1]
            and (where is None or where(e))]
    assert ids == feed, "received %r, the feed has %r" % (ids, feed)


def register(api, name=None):
    response = api.post("/api/v1/agents", json={"name": name or "stream-" + uuid.uuid4().hex[:8]})
    assert response.status_code == 201, response.text
    return response.json()


def raise_alert(api, title=None, severity="high"):
    response = api.post("/api/v1/alerts", json={"title": title or "stream " + uuid.uuid4().hex[:8],
                                                "severity": severity})
    assert response.status_code == 201, response.text
    return response.json()


def feed_after(api, after):
    """The feed's events after id `after`, oldest first."""
    items, cursor = [], None
    while True:
        params = {"after": after, "limit": 100}
        if cursor:
            params = {"cursor": cursor}
        page = api.get("/api/v1/activity", params=params).json()
        items.extend(page["items"])
        cursor = page["next_cursor"]
        if not cursor:
            return items


def first_snapshot(sub, openapi, channel):
    event = sub.next()
    assert event is not None
    checked(openapi, event)
    assert event["event"] == "snapshot", event
    assert channel is None or event["data"]["channel"] == channel, event
    return event


# ---------------------------------------------------------------- channels

def test_activity_starts_with_a_snapshot_then_every_event_of_the_feed(api, openapi, subscribe):
    sub = subscribe("activity")
    snapshot = first_snapshot(sub, openapi, "activity")
    assert ":" in snapshot["id"]     # nchan's id of the message
    agents = [register(api)["id"] for _ in range(3)]
    messages, events = follow(sub, openapi, agents, channel="activity")
    # what followed the snapshot: the feed after its id, in order, once each
    assert_contiguous(api, snapshot["data"]["id"], events)
    assert [agent_of(e) for e in events][-3:] == agents
    # each message's id is the feed id it brings the channel up to
    assert messages[-1]["data"]["id"] == events[-1]["id"]


def test_snapshot_of_activity_holds_the_newest_events(api, openapi, subscribe):
    register(api)
    sub = subscribe("activity")
    snapshot = first_snapshot(sub, openapi, "activity")
    got = snapshot["data"]["events"]
    assert len(got) <= 20
    assert [e["id"] for e in got] == sorted((e["id"] for e in got), reverse=True)
    assert all(e["id"] <= snapshot["data"]["id"] for e in got)


def test_alerts_carries_alert_events_only_and_its_snapshot_the_open_alerts(api, openapi,
                                                                           subscribe):
    before = raise_alert(api)
    sub = subscribe("alerts")
    snapshot = first_snapshot(sub, openapi, "alerts")
    assert all(a["status"] != "resolved" for a in snapshot["data"]["alerts"])
    register(api)                    # not an alert event: not on this channel
    alert = raise_alert(api, severity="critical")
    messages, events = follow(sub, openapi, [alert["id"]], channel="alerts")
    assert_contiguous(api, snapshot["data"]["id"], events, where=lambda e: e["type"] == "alert")
    # what was open when the client connected: in the snapshot, or an event after it
    assert before["id"] in {a["id"] for a in snapshot["data"]["alerts"]} | \
        {agent_of(e) for e in events}


def test_activity_with_filters_carries_the_events_that_pass_them(api, openapi, subscribe):
    sub = subscribe("activity?type=alert&severity=critical")
    snapshot = first_snapshot(sub, openapi, None)
    channel = snapshot["data"]["channel"]
    assert channel.startswith("activity/")
    assert all(e["type"] == "alert" and e["severity"] == "critical"
               for e in snapshot["data"]["events"])
    register(api)
    raise_alert(api, severity="low")
    wanted = raise_alert(api, severity="critical")
    messages, events = follow(sub, openapi, [wanted["id"]], channel=channel)
    assert all(e["type"] == "alert" and e["severity"] == "critical" for e in events)
    assert_contiguous(api, snapshot["data"]["id"], events,
                      where=lambda e: e["type"] == "alert" and e["severity"] == "critical")
    # the same filter in another order is the same channel
    again = subscribe("activity?severity=critical&type=alert")
    assert first_snapshot(again, openapi, None)["data"]["channel"] == channel


def test_activity_filters_are_checked(api):
    for query, field in (("type=execution", "type"), ("type=nope", "type"),
                         ("severity=urgent", "severity"), ("agent_id=x", "agent_id"),
                         ("limit=5", "limit")):
        response = api.get(STREAM + "activity?" + query)
        assert response.status_code == 400, query
        assert response.json()["errors"][0]["field"] == field, query


def test_state_sends_the_state_and_again_when_it_changed(api, openapi, subscribe):
    sub = subscribe("state")
    snapshot = first_snapshot(sub, openapi, "state")
    assert "health" in snapshot["data"]["state"]
    agent = register(api)
    deadline = time.monotonic() + 10
    while True:
        event = sub.next(timeout=max(deadline - time.monotonic(), 0.1))
        checked(openapi, event)
        assert event["event"] == "snapshot"
        if any(a["id"] == agent["id"] for a in event["data"]["state"]["agents"]):
            break
        assert time.monotonic() < deadline, "the new agent never showed in the state"


def test_state_is_not_sent_again_while_it_stays_the_same(api, openapi, subscribe, db):
    sub = subscribe("state")
    first_snapshot(sub, openapi, "state")
    before = db.scalar("SELECT count(*) FROM stream_messages WHERE channel = 'state'")
    time.sleep(2.5)
    after = db.scalar("SELECT count(*) FROM stream_messages WHERE channel = 'state'")
    assert after - before <= 1      # the clock fields alone change nothing


def test_agent_channel_carries_that_agent_only(api, openapi, subscribe, make_agent):
    agent = make_agent()
    other = make_agent()
    sub = subscribe("agents/" + agent["id"])
    snapshot = first_snapshot(sub, openapi, "agents/" + agent["id"])
    assert snapshot["data"]["agent"]["id"] == agent["id"]
    for who in (other, agent):
        response = api.patch("/api/v1/agents/" + who["id"], json={"is_active": False})
        assert response.status_code == 200, response.text
    messages, events = follow(sub, openapi, [agent["id"]])
    assert {e["agent"]["id"] for e in events} == {agent["id"]}
    assert events[-1]["status"] == "retired"
    assert_contiguous(api, snapshot["data"]["id"], events,
                      where=lambda e: (e["agent"] or {}).get("id") == agent["id"])


def test_agent_channel_of_an_unknown_agent_is_404(api, subscribe):
    sub = subscribe("agents/" + str(uuid.uuid4()), expect=404)
    problem = sub.body()
    assert problem["status"] == 404 and problem["detail"].startswith("No agent")
    subscribe("agents/not-a-uuid", expect=404)


def test_dashboard_channel_sends_it_with_data_and_again_when_it_changed(
        api, openapi, subscribe, make_dashboard, make_widget):
    dashboard = make_dashboard("Live")
    make_widget(dashboard["id"], type="metric_card", title="Runs",
                config={"metric": "total_executions"}, refresh_interval_seconds=10)
    sub = subscribe("dashboards/" + dashboard["id"])
    snapshot = first_snapshot(sub, openapi, "dashboards/" + dashboard["id"])
    got = snapshot["data"]["dashboard"]
    assert got["id"] == dashboard["id"] and got["name"] == "Live"
    assert [w["title"] for w in got["widgets"]] == ["Runs"]
    assert "data" in got["widgets"][0]
    # a change of the dashboard is a new version: a new snapshot within the widget's 10 s
    response = api.patch("/api/v1/dashboards/" + dashboard["id"], json={"name": "Live 2"},
                         headers={"If-Match": '"%d"' % got["version"]})
    assert response.status_code == 200, response.text
    event = sub.next(timeout=20)
    checked(openapi, event)
    assert event["event"] == "snapshot" and event["data"]["dashboard"]["name"] == "Live 2"


def test_dashboard_channel_of_an_unknown_dashboard_is_404(subscribe):
    problem = subscribe("dashboards/" + str(uuid.uuid4()), expect=404).body()
    assert problem["detail"].startswith("No dashboard")


# ---------------------------------------------------------------- transports

def test_websocket_gets_the_snapshot_then_each_message_as_a_text_frame(api, openapi, stack):
    url = stack.base_url.replace("http://", "ws://") + STREAM + "activity"
    ws = websocket.create_connection(url, timeout=10,
                                     header=["Authorization: Bearer " + stack.key])
    try:
        first = json.loads(ws.recv())
        openapi.check_schema(EVENT_SCHEMA, first, "websocket frame")
        assert first["type"] == "snapshot" and first["channel"] == "activity"
        agent = register(api)
        deadline = time.monotonic() + 10
        while True:
            frame = json.loads(ws.recv())
            openapi.check_schema(EVENT_SCHEMA, frame, "websocket frame")
            if any(e["link"].endswith(agent["id"]) for e in feed_events({"data": frame})):
                break
            assert time.monotonic() < deadline
    finally:
        ws.close()


def test_websocket_without_a_key_is_refused_before_the_upgrade(stack):
    url = stack.base_url.replace("http://", "ws://") + STREAM + "alerts"
    with pytest.raises(websocket.WebSocketBadStatusException) as refused:
        websocket.create_connection(url, timeout=10)
    assert refused.value.status_code == 401


def test_long_polling_answers_one_message_at_a_time(api, openapi):
    first = api.get(STREAM + "activity", headers={"Accept": "application/json"})
    assert first.status_code == 200
    assert first.json()["type"] == "snapshot"
    since = {"If-Modified-Since": first.headers["Last-Modified"],
             "If-None-Match": first.headers["Etag"]}
    agent = register(api)
    got = []
    deadline = time.monotonic() + 10
    while not any(e["link"].endswith(agent["id"]) for e in got):
        response = api.get(STREAM + "activity", headers={"Accept": "application/json", **since},
                           timeout=20)
        assert response.status_code == 200, response.text
        got.extend(feed_events({"data": response.json()}))
        since = {"If-Modified-Since": response.headers["Last-Modified"],
                 "If-None-Match": response.headers["Etag"]}
        assert time.monotonic() < deadline


# ---------------------------------------------------------------- resumption

def test_last_event_id_resumes_with_exactly_what_was_missed(api, openapi, subscribe):
    sub = subscribe("activity")
    first_snapshot(sub, openapi, "activity")
    messages, events = follow(sub, openapi, [register(api)["id"]])
    last = messages[-1]
    sub.close()
    missed = [register(api)["id"] for _ in range(3)]
    # nchan's id, as an EventSource sends it back
    again = subscribe("activity", last_event_id=last["id"])
    _, got = follow(again, openapi, missed)
    assert_contiguous(api, events[-1]["id"], got)
    # a feed id, as ?last_event_id=
    again.close()
    query = subscribe("activity?last_event_id=%d" % events[-1]["id"])
    _, got_by_feed_id = follow(query, openapi, missed)
    assert [e["id"] for e in got_by_feed_id] == [e["id"] for e in got]


def test_an_id_no_longer_buffered_starts_again_with_a_snapshot(api, openapi, subscribe):
    sub = subscribe("activity", last_event_id="1000000000:0")
    first_snapshot(sub, openapi, "activity")


def test_a_bad_last_event_id_is_400_naming_it(subscribe, api):
    sub = subscribe("activity", last_event_id="yesterday", expect=400)
    problem = sub.body()
    assert problem["errors"][0]["field"] == "Last-Event-ID"
    response = api.get(STREAM + "alerts?last_event_id=-1")
    assert response.status_code == 400
    assert response.json()["errors"][0]["field"] == "last_event_id"
    response = api.get(STREAM + "alerts?since=1")
    assert response.status_code == 400
    assert response.json()["errors"][0]["field"] == "since"


# ---------------------------------------------------------------- access

def test_a_subscriber_without_a_key_or_with_the_wrong_role_is_refused(api, subscribe):
    sub = subscribe("activity", key=None, expect=401)
    assert sub.headers["www-authenticate"].startswith("Bearer")
    created = api.post("/api/v1/api-keys", json={"name": "stream ingest", "role": "ingest"})
    assert created.status_code == 201
    try:
        refused = subscribe("alerts", key=created.json()["key"], expect=403)
        assert "viewer" in refused.body()["detail"]
    finally:
        api.delete("/api/v1/api-keys/" + created.json()["id"])


def test_the_internal_locations_cannot_be_reached_from_outside(api, stack):
    response = requests.get(stack.base_url + "/_nchan/sub/activity", timeout=5,
                            headers={"Accept": "text/event-stream"})
    assert response.status_code == 404
    response = requests.post(stack.base_url + "/_nchan/pub/activity", data="{}", timeout=5)
    assert response.status_code == 404


# ---------------------------------------------------------------- faults

def reconnect_and_follow(stack, openapi, subscribe, last_id, want, timeout=20):
    """Follows channel activity from last_id across closes until `want`
    (agent ids) were all seen; returns the feed events received."""
    got = []
    deadline = time.monotonic() + timeout
    sub = None
    while not want <= {agent_of(e) for e in got}:
        assert time.monotonic() < deadline, "missing %r" % (want - {agent_of(e) for e in got})
        if sub is None:
            try:
                sub = Sse(stack, STREAM + "activity", stack.key, last_id)
            except OSError:
                time.sleep(0.1)
                continue
            if sub.status != 200:
                sub.close()
                sub = None
                time.sleep(0.1)
                continue
        try:
            event = sub.next(timeout=max(deadline - time.monotonic(), 0.1))
        except (AssertionError, OSError):
            event = None
        if event is None:
            sub.close()
            sub = None
            continue
        checked(openapi, event)
        last_id = event["id"]
        got.extend(feed_events(event))
    sub.close()
    return got


def test_an_nginx_reload_mid_stream_loses_nothing(api, openapi, stack, subscribe):
    sub = subscribe("activity")
    first_snapshot(sub, openapi, "activity")
    messages, got = follow(sub, openapi, [register(api)["id"]])
    after = got[0]["id"] - 1
    last = messages[-1]["id"]
    master = int((stack.vardir / "run" / "nginx.pid").read_text())
    os.kill(master, signal.SIGHUP)
    # the old workers close their streams; events go on meanwhile
    want = set()
    for _ in range(5):
        want.add(register(api)["id"])
        time.sleep(0.1)
    while True:
        try:
            event = sub.next(timeout=10)
        except OSError:
            break
        if event is None:
            break
        checked(openapi, event)
        last = event["id"]
        got.extend(feed_events(event))
    want -= {agent_of(e) for e in got}
    got += reconnect_and_follow(stack, openapi, subscribe, last, want)
    assert_contiguous(api, after, got)


def test_a_client_that_stops_reading_is_dropped_without_slowing_the_others(
        api, openapi, stack, subscribe, db):
    url = urllib.parse.urlsplit(stack.base_url)
    stalled = socket.socket()
    stalled.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
    stalled.connect((url.hostname, url.port))
    stalled.sendall(("GET %sactivity HTTP/1.1\r\nHost: x\r\nAccept: text/event-stream\r\n"
                     "Authorization: Bearer %s\r\n\r\n" % (STREAM, stack.key)).encode())
    reader = subscribe("activity")
    first_snapshot(reader, openapi, "activity")
    time.sleep(0.5)
    # about 12 MB of events in 4 s: far more than the stalled client's buffers
    started = time.monotonic()
    for round_ in range(20):
        db.execute("INSERT INTO activity_staged (type, title, link, resource_id) "
                   "SELECT 'dashboard', repeat('x', 1200), '/stalled/' || %s || '-' || i, 'x' "
                   "FROM generate_series(1, 500) i", (round_,))
        time.sleep(0.2)
    last = "/stalled/19-500"
    seen = False
    while not seen:
        assert time.monotonic() - started < 30, "the reader fell behind"
        event = reader.next(timeout=30)
        assert event is not None
        seen = any(e["link"] == last for e in feed_events(event))
    # the reader kept up: it had the last event within seconds of its commit
    assert time.monotonic() - started < 15
    # nginx gives up on the stalled one (send_timeout 10 s, not one byte
    # taken meanwhile): what it still has is what was buffered, then the end
    time.sleep(max(0, 16 - (time.monotonic() - started)))
    stalled.settimeout(3)
    received = 0
    try:
        while True:
            chunk = stalled.recv(1 << 20)
            if not chunk:
                break
            received += len(chunk)
    except ConnectionResetError:
        pass
    except socket.timeout:
        raise AssertionError("the stalled subscriber is still served (%d bytes read)" % received)
    finally:
        stalled.close()
    assert received < 6 * 1024 * 1024    # it never got the whole 12 MB


def publisher_pid(stack):
    records = [r for r in log_records(stack.log_file("alerts").read_text(errors="replace"))
               if r.get("role") == "publisher"]
    return records[-1]["pid"]


def test_a_killed_publisher_loses_and_repeats_nothing(api, openapi, stack, subscribe):
    sub = subscribe("activity")
    first_snapshot(sub, openapi, "activity")
    messages, got = follow(sub, openapi, [register(api)["id"]])
    after = got[0]["id"] - 1
    want = set()
    for i in range(6):
        want.add(register(api)["id"])
        if i == 2:
            os.kill(publisher_pid(stack), signal.SIGKILL)
        time.sleep(0.05)
    got += reconnect_and_follow(stack, openapi, subscribe, messages[-1]["id"], want)
    assert_contiguous(api, after, got)


def test_a_postgresql_restart_mid_stream_loses_and_repeats_nothing(api, openapi, stack,
                                                                    subscribe):
    sub = subscribe("activity")
    first_snapshot(sub, openapi, "activity")
    messages, got = follow(sub, openapi, [register(api)["id"]])
    after = got[0]["id"] - 1
    stack_command(stack, "pg-stop")
    stack_command(stack, "pg-start")
    wait_until(lambda: api.get("/readyz").status_code == 200, 30, "the stack to be ready")
    want = set()
    for _ in range(3):
        for attempt in range(50):
            response = api.post("/api/v1/agents", json={"name": "pg-" + uuid.uuid4().hex[:6]})
            if response.status_code == 201:
                want.add(response.json()["id"])
                break
            time.sleep(0.1)
    # the connection to nchan stayed open throughout
    more, events = follow(sub, openapi, want, timeout=30)
    assert_contiguous(api, after, got + events)
