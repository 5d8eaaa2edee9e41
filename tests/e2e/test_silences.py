"""test_silences.py - silences: create, read, list, patch, expire (the record
stays), their states, matchers (=, !=, labels, rule_id, agent_id,
severity), a silence bound to one alert that ends when the alert resolves,
the alerts they mute (`silenced_by`, `?silenced=`), and every bad input."""

import datetime

import pytest

from support import assert_problem, error_fields

pytestmark = pytest.mark.ingest

ALERTS = "/api/v1/alerts"
SILENCES = "/api/v1/silences"
UNKNOWN_ID = "00000000-0000-4000-8000-000000000000"


def at(minutes):
    moment = datetime.datetime.now(datetime.timezone.utc) + datetime.timedelta(minutes=minutes)
    return moment.strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def raise_alert(api, **fields):
    body = {"severity": "high", "title": "Checkout is down"}
    body.update(fields)
    response = api.post(ALERTS, json=body)
    assert response.status_code in (200, 201), response.text
    return response.json()


def silence(api, expect=201, **fields):
    body = {"matchers": [{"name": "team", "value": "payments"}], "ends_at": at(60),
            "created_by": "ana", "comment": "deploy"}
    body.update(fields)
    response = api.post(SILENCES, json=body)
    assert response.status_code == expect, response.text
    return response.json()


def silenced_by(api, alert):
    return api.get(ALERTS + "/" + alert["id"]).json()["silenced_by"]


def test_a_silence_is_created_active_and_read_back(api):
    response = api.post(SILENCES, json={"matchers": [{"name": "team", "value": "payments"}],
                                        "ends_at": at(60), "created_by": "ana",
                                        "comment": "deploy"})
    assert response.status_code == 201, response.text
    body = response.json()
    assert response.headers["Location"] == SILENCES + "/" + body["id"]
    assert (body["state"], body["created_by"], body["comment"], body["alert_id"]) == (
        "active", "ana", "deploy", None)
    assert body["matchers"] == [{"name": "team", "value": "payments"}]
    assert api.get(SILENCES + "/" + body["id"]).json() == body


def test_a_silence_mutes_the_alerts_it_matches_and_not_the_others(api):
    muted = raise_alert(api, title="a", labels={"team": "payments"})
    other = raise_alert(api, title="b", labels={"team": "search"})
    s = silence(api)
    assert silenced_by(api, muted) == s["id"]
    assert silenced_by(api, other) is None
    listed = {a["id"]: a["silenced_by"] for a in api.get(ALERTS).json()["items"]}
    assert listed == {muted["id"]: s["id"], other["id"]: None}
    assert [a["id"] for a in api.get(ALERTS, params={"silenced": "true"}).json()["items"]] == [
        muted["id"]]
    assert [a["id"] for a in api.get(ALERTS, params={"silenced": "false"}).json()["items"]] == [
        other["id"]]


def test_matchers_on_severity_agent_and_not_equal(api, make_agent):
    agent = make_agent()
    high = raise_alert(api, title="h", severity="high", agent_id=agent["id"])
    low = raise_alert(api, title="l", severity="low", agent_id=agent["id"])
    fleet = raise_alert(api, title="f", severity="high")
    s = silence(api, matchers=[{"name": "agent_id", "value": agent["id"]},
                               {"name": "severity", "value": "low", "op": "!="}])
    assert [silenced_by(api, a) for a in (high, low, fleet)] == [s["id"], None, None]


def test_a_missing_label_reads_as_empty(api):
    plain = raise_alert(api, title="plain")
    team = raise_alert(api, title="team", labels={"team": "x"})
    s = silence(api, matchers=[{"name": "team", "value": ""}])
    assert (silenced_by(api, plain), silenced_by(api, team)) == (s["id"], None)


def test_a_pending_silence_mutes_nothing_yet(api):
    alert = raise_alert(api, labels={"team": "payments"})
    s = silence(api, starts_at=at(30), ends_at=at(90))
    assert s["state"] == "pending"
    assert silenced_by(api, alert) is None


def test_delete_expires_it_now_and_keeps_the_record(api, db):
    alert = raise_alert(api, labels={"team": "payments"})
    s = silence(api)
    response = api.delete(SILENCES + "/" + s["id"])
    assert response.status_code == 200, response.text
    assert response.json()["state"] == "expired" and response.json()["expired_at"]
    assert silenced_by(api, alert) is None
    assert db.count("silences") == 1
    again = api.delete(SILENCES + "/" + s["id"])
    assert again.status_code == 200 and again.json()["expired_at"] == response.json()["expired_at"]


def test_a_silence_of_one_alert_ends_when_the_alert_resolves(api):
    alert = raise_alert(api, labels={"team": "payments"})
    twin = raise_alert(api, title="twin", labels={"team": "payments"})
    s = silence(api, matchers=[], alert_id=alert["id"], ends_at=None)
    assert s["state"] == "active" and s["ends_at"] is None
    assert (silenced_by(api, alert), silenced_by(api, twin)) == (s["id"], None)
    api.post(ALERTS + "/%s/resolve" % alert["id"], json={"by": "ana"})
    after = api.get(SILENCES + "/" + s["id"]).json()
    assert after["state"] == "expired" and after["expired_at"] is not None


def test_a_resolved_alert_cannot_be_silenced(api, db):
    alert = raise_alert(api)
    api.post(ALERTS + "/%s/resolve" % alert["id"], json={"by": "ana"})
    with db.unchanged():
        assert error_fields(api.post(SILENCES, json={"alert_id": alert["id"],
                                                     "created_by": "ana"})) == {"alert_id"}


def test_patch_changes_what_was_sent(api):
    s = silence(api)
    response = api.patch(SILENCES + "/" + s["id"], json={"comment": "longer deploy",
                                                         "ends_at": at(120)})
    assert response.status_code == 200, response.text
    body = response.json()
    assert (body["comment"], body["matchers"], body["created_by"]) == (
        "longer deploy", s["matchers"], "ana")
    assert body["ends_at"] > s["ends_at"]


def test_patching_an_expired_silence_is_409(api, db):
    s = silence(api)
    api.delete(SILENCES + "/" + s["id"])
    with db.unchanged():
        assert_problem(api.patch(SILENCES + "/" + s["id"], json={"comment": "x"}), 409,
                       "conflict")


def test_the_list_is_newest_first_filters_by_state_and_pages(api):
    made = [silence(api, comment=str(i)) for i in range(3)]
    api.delete(SILENCES + "/" + made[0]["id"])
    seen, cursor = [], None
    while True:
        page = api.get(SILENCES, params={"limit": 2, **({"cursor": cursor} if cursor else {})})
        seen += [s["comment"] for s in page.json()["items"]]
        cursor = page.json()["next_cursor"]
        if cursor is None:
            break
    assert seen == ["2", "1", "0"]
    assert [s["comment"] for s in api.get(SILENCES, params={"state": "expired"}).json()[
        "items"]] == ["0"]
    assert_problem(api.get(SILENCES, params={"state": "gone"}), 400, "bad-request")
    assert_problem(api.get(SILENCES, params={"cursor": "zz"}), 400, "bad-request")


@pytest.mark.parametrize("body, fields", [
    ({}, {"created_by"}),
    ({"created_by": "a", "ends_at": at(60)}, {"matchers"}),
    ({"created_by": "a", "matchers": [{"name": "x", "value": "y"}]}, {"ends_at"}),
    ({"created_by": "a", "matchers": [{"name": "x", "value": "y"}], "ends_at": "tomorrow"},
     {"ends_at"}),
    ({"created_by": "a", "matchers": [{"name": "x", "value": "y"}], "starts_at": at(60),
      "ends_at": at(30)}, {"ends_at"}),
    ({"created_by": "a", "matchers": [{"name": "", "value": "y"}], "ends_at": at(60)},
     {"matchers[0].name"}),
    ({"created_by": "a", "matchers": [{"name": "x", "value": "y", "op": "=~"}],
      "ends_at": at(60)}, {"matchers[0].op"}),
    ({"created_by": "a", "matchers": [{"name": "x"}], "ends_at": at(60)},
     {"matchers[0].value"}),
    ({"created_by": "a", "matchers": ["x"], "ends_at": at(60)}, {"matchers[0]"}),
    ({"created_by": "a", "alert_id": "x"}, {"alert_id"}),
    ({"created_by": "a", "alert_id": UNKNOWN_ID}, {"alert_id"}),
    ({"created_by": "a", "matchers": {}, "ends_at": at(60)}, {"matchers"}),
])
def test_a_bad_silence_is_422_naming_the_field_and_writes_nothing(api, db, body, fields):
    with db.unchanged():
        assert error_fields(api.post(SILENCES, json=body)) == fields


def test_unknown_silences_are_404(api):
    for method in ("get", "delete"):
        assert_problem(getattr(api, method)(SILENCES + "/" + UNKNOWN_ID), 404, "not-found")
    assert_problem(api.patch(SILENCES + "/" + UNKNOWN_ID, json={"comment": "x"}), 404,
                   "not-found")
    assert_problem(api.get(SILENCES + "/nope"), 404, "not-found")
