"""test_alerts.py - alerts raised by hand and by the SQL functions the
evaluator and budgets use: one open alert per fingerprint (also under
concurrent firings), the lifecycle (acknowledge, resolve, severity rising
while acknowledged), transitions, the list (filters, order, keyset cursor),
/alerts/active in seed 000's shape, and every bad input (nothing written)."""

import concurrent.futures
import json

import pytest

from support import assert_problem, error_fields

pytestmark = pytest.mark.ingest

ALERTS = "/api/v1/alerts"
UNKNOWN_ID = "00000000-0000-4000-8000-000000000000"


def raise_alert(api, expect=201, **fields):
    body = {"severity": "high", "title": "Checkout is down", "message": "500s"}
    body.update(fields)
    response = api.post(ALERTS, json=body)
    assert response.status_code == expect, response.text
    return response.json()


def signal(fingerprint, severity="high", title="t", value=None, labels=None, agent_id=None):
    """An alert_signal_t literal for alerts_raise()."""
    return ("(%s,,,%s,%s,,%s,,%s,,%s,{})" % (
        fingerprint, severity, json.dumps(title), agent_id or "",
        json.dumps(json.dumps(labels or {})), "" if value is None else value))


def fire(db, fingerprint, severity="high", value=None, at="now()"):
    """alerts_raise() of one signal, as the evaluator calls it."""
    return db.rows("SELECT id, status, opened FROM alerts_raise(ARRAY[%%s]::alert_signal_t[], "
                   "%s, 'evaluator')" % at, (signal(fingerprint, severity, value=value),))


# ---------------------------------------------------------------- raising by hand

def test_an_alert_raised_by_hand_is_firing_with_its_fields(api, make_agent):
    agent = make_agent()
    response = api.post(ALERTS, json={"severity": "critical", "title": "Checkout is down",
                                      "message": "all 500s", "agent_id": agent["id"],
                                      "labels": {"team": "payments"}})
    assert response.status_code == 201, response.text
    alert = response.json()
    assert response.headers["Location"] == ALERTS + "/" + alert["id"]
    assert (alert["status"], alert["severity"], alert["title"], alert["message"]) == (
        "firing", "critical", "Checkout is down", "all 500s")
    assert (alert["agent_id"], alert["agent_name"], alert["labels"]) == (
        agent["id"], agent["name"], {"team": "payments"})
    assert alert["occurrences"] == 1 and alert["ends_at"] is None
    assert alert["starts_at"] == alert["last_seen_at"]
    assert [(t["from"], t["to"], t["by"]) for t in alert["transitions"]] == [
        (None, "firing", "api")]


def test_the_same_alert_again_while_open_is_one_more_occurrence(api, db):
    first = raise_alert(api, labels={"team": "a"})
    again = raise_alert(api, expect=200, labels={"team": "a"}, message="still")
    assert again["id"] == first["id"]
    assert (again["occurrences"], again["message"]) == (2, "still")
    assert again["last_seen_at"] >= first["last_seen_at"]
    other = raise_alert(api, labels={"team": "b"})
    assert other["id"] != first["id"] and other["fingerprint"] != first["fingerprint"]
    assert db.count("alerts") == 2


def test_after_it_resolved_the_next_firing_opens_a_new_alert(api):
    first = raise_alert(api)
    assert api.post(ALERTS + "/%s/resolve" % first["id"], json={"by": "ana"}).status_code == 200
    second = raise_alert(api)
    assert second["id"] != first["id"] and second["fingerprint"] == first["fingerprint"]
    assert second["occurrences"] == 1


@pytest.mark.parametrize("body, fields", [
    ({}, {"severity", "title"}),
    ({"severity": "urgent", "title": "x"}, {"severity"}),
    ({"severity": "low", "title": ""}, {"title"}),
    ({"severity": "low", "title": "x" * 501}, {"title"}),
    ({"severity": "low", "title": 5}, {"title"}),
    ({"severity": "low", "title": "x", "agent_id": "nope"}, {"agent_id"}),
    ({"severity": "low", "title": "x", "execution_id": 7}, {"execution_id"}),
    ({"severity": "low", "title": "x", "labels": {"a": 1}}, {"labels.a"}),
    ({"severity": "low", "title": "x", "labels": []}, {"labels"}),
    ({"severity": "low", "title": "x", "receivers": ["nope"]}, {"receivers[0]"}),
    ({"severity": "low", "title": "x", "color": "red"}, {"color"}),
])
def test_a_bad_alert_is_422_naming_each_field_and_writes_nothing(api, db, body, fields):
    with db.unchanged():
        assert error_fields(api.post(ALERTS, json=body)) == fields


@pytest.mark.parametrize("field", ["agent_id", "execution_id"])
def test_an_unknown_reference_is_422_on_its_field(api, db, field):
    with db.unchanged():
        response = api.post(ALERTS, json={"severity": "low", "title": "x", field: UNKNOWN_ID})
        assert error_fields(response) == {field}


def test_an_unknown_receiver_is_422_on_receivers(api, db):
    with db.unchanged():
        response = api.post(ALERTS, json={"severity": "low", "title": "x",
                                          "receivers": [UNKNOWN_ID]})
        assert error_fields(response) == {"receivers"}


# ---------------------------------------------------------------- lifecycle

def test_acknowledge_then_resolve_records_every_transition(api):
    alert = raise_alert(api)
    path = ALERTS + "/" + alert["id"]
    acked = api.post(path + "/acknowledge", json={"by": "ana", "note": "looking"})
    assert acked.status_code == 200, acked.text
    acked = acked.json()
    assert (acked["status"], acked["acknowledged_by"]) == ("acknowledged", "ana")
    assert acked["acknowledged_at"] is not None
    resolved = api.post(path + "/resolve", json={"by": "bo", "note": "fixed"}).json()
    assert (resolved["status"], resolved["resolved_by"]) == ("resolved", "bo")
    assert resolved["ends_at"] >= resolved["acknowledged_at"]
    got = api.get(path).json()
    assert [(t["from"], t["to"], t["by"], t["note"]) for t in got["transitions"]] == [
        (None, "firing", "api", None), ("firing", "acknowledged", "ana", "looking"),
        ("acknowledged", "resolved", "bo", "fixed")]


def test_acknowledging_twice_is_harmless(api):
    alert = raise_alert(api)
    path = ALERTS + "/%s/acknowledge" % alert["id"]
    first = api.post(path, json={"by": "ana"}).json()
    second = api.post(path, json={"by": "bo"})
    assert second.status_code == 200
    assert second.json()["acknowledged_by"] == "ana"
    assert second.json()["acknowledged_at"] == first["acknowledged_at"]
    assert len(second.json()["transitions"]) == 2


def test_resolving_or_acknowledging_a_resolved_alert_is_409(api, db):
    alert = raise_alert(api)
    path = ALERTS + "/" + alert["id"]
    api.post(path + "/resolve", json={"by": "ana"})
    with db.unchanged():
        assert_problem(api.post(path + "/resolve", json={"by": "ana"}), 409, "conflict")
        assert_problem(api.post(path + "/acknowledge", json={"by": "ana"}), 409, "conflict")


def test_unknown_alerts_are_404(api):
    for path in (ALERTS + "/" + UNKNOWN_ID, ALERTS + "/not-a-uuid"):
        assert_problem(api.get(path), 404, "not-found")
    for verb in ("acknowledge", "resolve"):
        assert_problem(api.post(ALERTS + "/%s/%s" % (UNKNOWN_ID, verb), json={"by": "a"}),
                       404, "not-found")


@pytest.mark.parametrize("body, fields", [
    ({}, {"by"}), ({"by": ""}, {"by"}), ({"by": "a", "note": 3}, {"note"}),
    ({"by": "a", "extra": 1}, {"extra"}),
])
def test_a_bad_acknowledgement_is_422(api, db, body, fields):
    alert = raise_alert(api)
    with db.unchanged():
        assert error_fields(api.post(ALERTS + "/%s/acknowledge" % alert["id"],
                                     json=body)) == fields


def test_an_acknowledged_alert_fires_again_when_its_severity_rises(api, db):
    fire(db, "00000000000000aa", "medium", value=1)
    alert_id = db.scalar("SELECT id FROM alerts")
    api.post(ALERTS + "/%s/acknowledge" % alert_id, json={"by": "ana"})
    fire(db, "00000000000000aa", "medium", value=2)
    assert api.get(ALERTS + "/" + alert_id).json()["status"] == "acknowledged"
    fire(db, "00000000000000aa", "critical", value=3)
    alert = api.get(ALERTS + "/" + alert_id).json()
    assert (alert["status"], alert["severity"], alert["value"], alert["occurrences"]) == (
        "firing", "critical", 3, 3)
    assert alert["acknowledged_by"] is None
    assert [(t["from"], t["to"], t["by"]) for t in alert["transitions"]] == [
        (None, "firing", "evaluator"), ("firing", "acknowledged", "ana"),
        ("acknowledged", "firing", "evaluator")]


def test_alerts_clear_resolves_the_open_alert_of_a_fingerprint(api, db):
    fire(db, "00000000000000bb")
    assert db.rows("SELECT count(*) FROM alerts_clear(ARRAY['00000000000000bb'], now(), "
                   "'evaluator', 'recovered')") == [(1,)]
    alert = api.get(ALERTS, params={"status": "resolved"}).json()["items"][0]
    assert (alert["status"], alert["resolved_by"]) == ("resolved", "evaluator")
    assert db.rows("SELECT count(*) FROM alerts_clear(ARRAY['00000000000000bb'], now(), "
                   "'evaluator', NULL)") == [(0,)]


def test_concurrent_firings_leave_one_open_alert(db):
    def one(_):
        conn = db.connect()
        try:
            with conn, conn.cursor() as cur:
                cur.execute("SELECT opened FROM alerts_raise(ARRAY[%s]::alert_signal_t[], "
                            "now(), 'evaluator')", (signal("00000000000000cc"),))
                return cur.fetchone()[0]
        finally:
            conn.close()
    with concurrent.futures.ThreadPoolExecutor(8) as pool:
        opened = list(pool.map(one, range(16)))
    assert opened.count(True) == 1
    assert db.rows("SELECT count(*), sum(occurrences) FROM alerts") == [(1, 16)]


# ---------------------------------------------------------------- lists

def test_the_list_orders_by_severity_then_newest_and_pages(api, db):
    for i, severity in enumerate(["low", "critical", "medium", "critical", "high", "low"]):
        db.execute("SELECT alerts_raise(ARRAY[%s]::alert_signal_t[], "
                   "now() - make_interval(mins => %s), 'evaluator')",
                   (signal("%016x" % (i + 1), severity, title="a%d" % i), 60 - i))
    seen, cursor = [], None
    while True:
        params = {"limit": 2, **({"cursor": cursor} if cursor else {})}
        page = api.get(ALERTS, params=params).json()
        seen += [a["title"] for a in page["items"]]
        cursor = page["next_cursor"]
        if cursor is None:
            break
    assert seen == ["a3", "a1", "a4", "a2", "a5", "a0"]


def test_the_list_filters(api, db, make_agent):
    agent = make_agent()
    a = raise_alert(api, severity="low", title="one", agent_id=agent["id"])
    b = raise_alert(api, severity="high", title="two")
    c = raise_alert(api, severity="high", title="three")
    api.post(ALERTS + "/%s/resolve" % c["id"], json={"by": "ana"})
    api.post(ALERTS + "/%s/acknowledge" % b["id"], json={"by": "ana"})

    def ids(**params):
        return {x["id"] for x in api.get(ALERTS, params=params).json()["items"]}
    assert ids() == {a["id"], b["id"]}
    assert ids(status="resolved") == {c["id"]}
    assert ids(status=["firing", "resolved"]) == {a["id"], c["id"]}
    assert ids(severity="low") == {a["id"]}
    assert ids(status=["firing", "acknowledged", "resolved"], severity="high") == {
        b["id"], c["id"]}
    assert ids(agent_id=agent["id"]) == {a["id"]}
    assert ids(rule_id=UNKNOWN_ID) == set()
    assert ids(silenced="false") == {a["id"], b["id"]}
    assert ids(silenced="true") == set()


@pytest.mark.parametrize("params, field", [
    ({"status": "open"}, "status"), ({"severity": "urgent"}, "severity"),
    ({"agent_id": "x"}, "agent_id"), ({"rule_id": "x"}, "rule_id"),
    ({"silenced": "yes"}, "silenced"), ({"limit": 0}, "limit"), ({"cursor": "zz"}, "cursor"),
    ({"colour": "red"}, "colour"),
])
def test_bad_list_parameters_are_400_naming_them(api, params, field):
    body = assert_problem(api.get(ALERTS, params=params), 400, "bad-request")
    assert field in {e["field"] for e in body.get("errors", [])} or field in body["detail"]


def test_active_answers_seed_000s_shape(api, make_agent):
    agent = make_agent()
    low = raise_alert(api, severity="low", title="low one", agent_id=agent["id"])
    crit = raise_alert(api, severity="critical", title="critical one")
    gone = raise_alert(api, severity="critical", title="gone")
    api.post(ALERTS + "/%s/resolve" % gone["id"], json={"by": "a"})
    api.post(ALERTS + "/%s/acknowledge" % low["id"], json={"by": "a"})
    body = api.get(ALERTS + "/active").json()
    assert [(a["id"], a["acknowledged"]) for a in body["alerts"]] == [
        (crit["id"], False), (low["id"], True)]
    assert body["alerts"][1]["agent_name"] == agent["name"]
    assert body["alerts"][0]["created_at"] == crit["starts_at"]
    assert len(api.get(ALERTS + "/active", params={"limit": 1}).json()["alerts"]) == 1
    for bad in ({"limit": 0}, {"limit": 101}, {"limit": "x"}, {"status": "firing"}):
        assert_problem(api.get(ALERTS + "/active", params=bad), 400, "bad-request")


def test_the_default_dashboards_alert_widget_shows_raised_alerts(api):
    raise_alert(api, severity="critical", title="shown")
    widgets = {w["title"]: w for w in api.get("/api/v1/dashboards/default",
                                              params={"include_data": "true"}).json()["widgets"]}
    data = widgets["Active Alerts"]["data"]
    assert [a["title"] for a in data["alerts"]] == ["shown"] and data["total_count"] == 1
