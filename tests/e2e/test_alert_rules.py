"""test_alert_rules.py - /alert-rules: create (defaults, every member stored, 201 +
Location + ETag), read (404 for unknown and non-UUID ids), list (by name, keyset
pages, kind and enabled filters, bad parameters 400), replace, patch, delete (its
open alerts resolved), versions with If-Match (412, nothing changes), names taken
(409) and every invalid body (422 naming each field, nothing written)."""

import pytest

from support import assert_problem, error_fields, etag, parse_time

pytestmark = pytest.mark.ingest

RULES = "/api/v1/alert-rules"
UNKNOWN_ID = "00000000-0000-4000-8000-000000000000"

# The example rule (its receivers: none exist in this part).
EXAMPLE = {"name": "agents failing", "kind": "threshold", "metric": "error_rate",
           "op": ">", "threshold": 50, "window": "5m", "for": "1m", "keep_firing_for": "5m",
           "group_by": "agent", "severity": "high", "min_executions": 10,
           "no_data": "ok", "receivers": [], "enabled": True}

# A disabled rule: the stack's evaluator leaves it alone, so that
# db.unchanged() holds around a refused write.
IDLE = dict(EXAMPLE, name="idle", enabled=False)


@pytest.fixture(autouse=True)
def no_rules(db):
    db.execute("DELETE FROM alerts; DELETE FROM alert_rules")
    yield
    db.execute("DELETE FROM alerts; DELETE FROM alert_rules")


@pytest.fixture
def make_rule(api):
    def make(**fields):
        response = api.post(RULES, json=dict(EXAMPLE, **fields))
        assert response.status_code == 201, response.text
        return response.json()
    return make


def rule_path(rule):
    return "%s/%s" % (RULES, rule["id"])


# ---------------------------------------------------------------- create

def test_create_answers_the_rule_with_location_and_a_weak_etag(api, db):
    response = api.post(RULES, json=EXAMPLE)
    assert response.status_code == 201, response.text
    body = response.json()
    assert response.headers["Location"] == "%s/%s" % (RULES, body["id"])
    assert response.headers["ETag"] == 'W/"1"'
    for key, value in EXAMPLE.items():
        assert body[key] == value, key
    assert (body["version"], body["last_evaluated_at"], body["last_duration_ms"],
            body["last_error"], body["instances"]) == (1, None, None, None, [])
    assert parse_time(body["created_at"]) == parse_time(body["updated_at"])
    assert db.scalar("SELECT window_seconds || '/' || for_seconds || '/' "
                     "|| keep_firing_for_seconds FROM alert_rules WHERE id = %s",
                     (body["id"],)) == "300/60/300"


def test_create_fills_the_defaults(api):
    response = api.post(RULES, json={"name": "silent", "kind": "agent_silent"})
    assert response.status_code == 201, response.text
    body = response.json()
    assert {k: body[k] for k in ("metric", "op", "threshold", "window", "for",
                                 "keep_firing_for", "group_by", "severity", "min_executions",
                                 "no_data", "labels", "title", "enabled", "receivers",
                                 "agent_id", "model", "metadata", "warning_threshold",
                                 "warning_severity", "category")} == {
        "metric": None, "op": ">", "threshold": None, "window": "5m", "for": "0s",
        "keep_firing_for": "0s", "group_by": "none", "severity": "high",
        "min_executions": 0, "no_data": "ok", "labels": {}, "title": None, "enabled": True,
        "receivers": [], "agent_id": None, "model": None, "metadata": None,
        "warning_threshold": None, "warning_severity": None, "category": None}


def test_create_stores_every_member_as_sent(api, make_agent):
    agent = make_agent()
    sent = {"name": "checkout p95", "kind": "threshold", "metric": "p95_latency", "op": "<",
            "threshold": 0.5, "warning_threshold": 2.25, "warning_severity": "low",
            "window": "90s", "for": "1d", "keep_firing_for": "7d", "agent_id": agent["id"],
            "model": "gpt-x", "metadata": {"team": "payments"}, "group_by": "model",
            "severity": "critical", "min_executions": 3, "no_data": "keep",
            "labels": {"team": "payments", "tier": "1"},
            "title": "{{alertname}} on {{model}} is {{value}}", "enabled": False,
            "receivers": []}
    body = api.post(RULES, json=sent).json()
    for key, value in sent.items():
        assert body[key] == value, key
    again = api.get(rule_path(body))
    assert again.status_code == 200
    assert again.json() == body
    assert again.headers["ETag"] == 'W/"1"'


@pytest.mark.parametrize("window, text", [("60s", "1m"), ("3600s", "1h"), ("24h", "1d"),
                                          ("61s", "61s"), ("120m", "2h")])
def test_durations_are_answered_in_their_largest_unit(api, window, text):
    body = api.post(RULES, json=dict(EXAMPLE, window=window)).json()
    assert body["window"] == text


@pytest.mark.parametrize("kind, fields", [
    ("cost_spike", {"threshold": 3}),
    ("agent_silent", {"window": "10m", "group_by": "agent"}),
    ("error_category", {"threshold": 5, "category": "timeout"}),
    ("error_category", {"threshold": 0, "category": None}),
])
def test_every_kind_is_accepted(api, kind, fields):
    body = dict(name="r-" + kind, kind=kind, **fields)
    response = api.post(RULES, json=body)
    assert response.status_code == 201, response.text
    assert response.json()["kind"] == kind


def test_every_metric_of_the_metrics_endpoint_is_accepted(api, db):
    names = ["success_rate", "pass_rate", "total_executions", "avg_latency", "p95_latency",
             "total_cost", "error_rate"]
    for name in names:
        response = api.post(RULES, json=dict(EXAMPLE, name="m-" + name, metric=name))
        assert response.status_code == 201, (name, response.text)
    assert db.scalar("SELECT count(*) FROM alert_rules") == len(names)


def test_a_name_taken_is_409_and_nothing_written(api, db, make_rule):
    make_rule(enabled=False)
    with db.unchanged():
        assert_problem(api.post(RULES, json=dict(EXAMPLE, enabled=False)), 409, "conflict")


# ---------------------------------------------------------------- invalid bodies

INVALID = [
    ({"metric": "nope"}, {"metric"}),
    ({"kind": "budget"}, {"kind"}),
    ({"severity": "urgent"}, {"severity"}),
    ({"warning_severity": "urgent", "warning_threshold": 10}, {"warning_severity"}),
    ({"op": ">="}, {"op"}),
    ({"group_by": "team"}, {"group_by"}),
    ({"no_data": "maybe"}, {"no_data"}),
    ({"window": "30s"}, {"window"}),
    ({"window": "8d"}, {"window"}),
    ({"window": "5 m"}, {"window"}),
    ({"window": "5w"}, {"window"}),
    ({"window": 300}, {"window"}),
    ({"for": "2d"}, {"for"}),
    ({"for": "25h"}, {"for"}),
    ({"for": "-1m"}, {"for"}),
    ({"keep_firing_for": "8d"}, {"keep_firing_for"}),
    ({"threshold": "50"}, {"threshold"}),
    ({"threshold": True}, {"threshold"}),
    ({"warning_threshold": "x", "warning_severity": "low"}, {"warning_threshold"}),
    ({"min_executions": -1}, {"min_executions"}),
    ({"min_executions": 1.5}, {"min_executions"}),
    ({"enabled": "yes"}, {"enabled"}),
    ({"name": ""}, {"name"}),
    ({"name": "x" * 256}, {"name"}),
    ({"title": ""}, {"title"}),
    ({"labels": {"team": 1}}, {"labels.team"}),
    ({"labels": []}, {"labels"}),
    ({"metadata": {"k": ["v"]}}, {"metadata.k"}),
    ({"agent_id": "not-a-uuid"}, {"agent_id"}),
    ({"receivers": ["nope", 4]}, {"receivers[0]", "receivers[1]"}),
    ({"receivers": "x"}, {"receivers"}),
    ({"surprise": 1}, {"surprise"}),
    # every bad field at once
    ({"metric": "nope", "severity": "urgent", "window": "1s", "for": "2d",
      "threshold": "high"}, {"metric", "severity", "window", "for", "threshold"}),
    # what holds between members (checked by the database, one at a time)
    ({"metric": None}, {"metric"}),
    ({"threshold": None}, {"threshold"}),
    ({"warning_threshold": 40}, {"warning_severity"}),
    ({"warning_severity": "low"}, {"warning_threshold"}),
    ({"warning_threshold": 40, "warning_severity": "critical"}, {"warning_severity"}),
    ({"warning_threshold": 60, "warning_severity": "low"}, {"warning_threshold"}),
    ({"agent_id": UNKNOWN_ID}, {"agent_id"}),
    ({"receivers": [UNKNOWN_ID]}, {"receivers"}),
    ({"category": "timeout"}, {"category"}),
]


@pytest.mark.parametrize("fields, bad", INVALID, ids=lambda v: str(v)[:60])
def test_an_invalid_rule_is_422_naming_each_field_and_nothing_written(api, db, fields, bad):
    with db.unchanged():
        assert error_fields(api.post(RULES, json=dict(EXAMPLE, **fields))) == bad


@pytest.mark.parametrize("body, bad", [
    ({"kind": "threshold"}, {"name"}),
    ({"name": "x"}, {"kind"}),
    ({"name": "x", "kind": "cost_spike"}, {"threshold"}),
    ({"name": "x", "kind": "cost_spike", "threshold": 0}, {"threshold"}),
    ({"name": "x", "kind": "error_category", "threshold": -1}, {"threshold"}),
    ({"name": "x", "kind": "cost_spike", "threshold": 2, "op": "<"}, {"op"}),
    ({"name": "x", "kind": "cost_spike", "threshold": 2, "metric": "error_rate"}, {"metric"}),
    ({"name": "x", "kind": "agent_silent", "group_by": "model"}, {"group_by"}),
    ({"name": "x", "kind": "agent_silent", "warning_threshold": 1,
      "warning_severity": "low"}, {"warning_threshold"}),
])
def test_what_a_kind_needs_is_422_naming_the_field(api, db, body, bad):
    with db.unchanged():
        assert error_fields(api.post(RULES, json=body)) == bad


def test_a_body_that_is_not_an_object_is_422(api, db):
    with db.unchanged():
        response = api.post(RULES, json=[EXAMPLE])
    assert response.status_code == 422


def test_malformed_json_is_400_and_a_wrong_type_415(api, db):
    with db.unchanged():
        assert_problem(api.post(RULES, data=b"{", headers={"Content-Type": "application/json"}),
                       400, "bad-request")
        assert api.post(RULES, data=b"{}", headers={"Content-Type": "text/plain"}
                        ).status_code == 415


# ---------------------------------------------------------------- read and list

@pytest.mark.parametrize("rule_id", [UNKNOWN_ID, "nope", "1234"])
def test_an_unknown_rule_is_404_for_every_method(api, rule_id):
    path = "%s/%s" % (RULES, rule_id)
    assert_problem(api.get(path), 404, "not-found")
    assert_problem(api.put(path, json=EXAMPLE), 404, "not-found")
    assert_problem(api.patch(path, json={"severity": "low"}), 404, "not-found")
    assert_problem(api.delete(path), 404, "not-found")


def test_list_is_by_name_in_keyset_pages(api, make_rule):
    names = ["r%02d" % i for i in range(7)]
    for name in reversed(names):
        make_rule(name=name)
    seen, cursor = [], None
    while True:
        params = {"limit": 3}
        if cursor:
            params["cursor"] = cursor
        response = api.get(RULES, params=params)
        assert response.status_code == 200, response.text
        page = response.json()
        seen += [item["name"] for item in page["items"]]
        cursor = page["next_cursor"]
        if cursor is None:
            break
        assert len(page["items"]) == 3
    assert seen == names


def test_list_filters_by_kind_and_enabled(api, make_rule):
    make_rule(name="a")
    make_rule(name="b", enabled=False)
    api.post(RULES, json={"name": "c", "kind": "agent_silent"})
    def names(**params):
        response = api.get(RULES, params=params)
        assert response.status_code == 200, response.text
        return [item["name"] for item in response.json()["items"]]
    assert names() == ["a", "b", "c"]
    assert names(kind="threshold") == ["a", "b"]
    assert names(kind="agent_silent") == ["c"]
    assert names(enabled="false") == ["b"]
    assert names(enabled="true", kind="threshold") == ["a"]


@pytest.mark.parametrize("params, field", [
    ({"kind": "budget"}, "kind"), ({"enabled": "yes"}, "enabled"), ({"limit": "0"}, "limit"),
    ({"limit": "101"}, "limit"), ({"cursor": "garbage"}, "cursor"), ({"owner": "x"}, "owner"),
])
def test_list_refuses_bad_parameters_with_400(api, params, field):
    body = assert_problem(api.get(RULES, params=params), 400, "bad-request")
    assert field in {error["field"] for error in body.get("errors", [])}, body


# ---------------------------------------------------------------- replace and patch

def test_put_replaces_every_member_and_bumps_the_version(api, make_rule):
    rule = make_rule(labels={"team": "a"}, title="T")
    response = api.put(rule_path(rule), json={"name": "renamed", "kind": "cost_spike",
                                              "threshold": 4, "window": "1h"})
    assert response.status_code == 200, response.text
    body = response.json()
    assert response.headers["ETag"] == 'W/"2"'
    assert (body["name"], body["kind"], body["metric"], body["threshold"], body["window"],
            body["for"], body["group_by"], body["labels"], body["title"], body["version"]) == (
        "renamed", "cost_spike", None, 4, "1h", "0s", "none", {}, None, 2)
    assert body["created_at"] == rule["created_at"]
    assert parse_time(body["updated_at"]) > parse_time(rule["updated_at"])
    assert api.get(rule_path(rule)).json() == body


def test_patch_changes_only_the_members_sent(api, make_rule):
    rule = make_rule(labels={"team": "a"})
    response = api.patch(rule_path(rule), json={"severity": "critical", "for": "2m",
                                                "labels": {"team": "b"}})
    assert response.status_code == 200, response.text
    body = response.json()
    changed = {"severity": "critical", "for": "2m", "labels": {"team": "b"}, "version": 2}
    for key, value in rule.items():
        if key in changed:
            assert body[key] == changed[key], key
        elif key not in ("updated_at", "last_evaluated_at", "last_duration_ms", "instances"):
            assert body[key] == value, key


def test_patch_null_clears_a_nullable_member(api, make_rule):
    rule = make_rule(title="x", model="m")
    body = api.patch(rule_path(rule), json={"title": None, "model": None}).json()
    assert (body["title"], body["model"]) == (None, None)


@pytest.mark.parametrize("method", ["PUT", "PATCH"])
def test_a_write_to_a_taken_name_is_409_and_nothing_changes(api, db, make_rule, method):
    make_rule(name="first", enabled=False)
    second = make_rule(name="second", enabled=False)
    body = dict(IDLE, name="first") if method == "PUT" else {"name": "first"}
    with db.unchanged():
        assert_problem(api.request(method, rule_path(second), json=body), 409, "conflict")


@pytest.mark.parametrize("method, body, bad", [
    ("PATCH", {"window": "1s"}, {"window"}),
    ("PATCH", {"metric": None}, {"metric"}),
    ("PATCH", {"kind": "agent_silent", "group_by": "model"}, {"metric", "group_by"}),
    ("PATCH", {"kind": "agent_silent"}, {"metric"}),
    ("PATCH", {"threshold": "1"}, {"threshold"}),
    ("PATCH", {"agent_id": UNKNOWN_ID}, {"agent_id"}),
    ("PUT", {"name": "x"}, {"kind"}),
    ("PUT", dict(IDLE, severity="none"), {"severity"}),
])
def test_an_invalid_replace_or_patch_is_422_and_nothing_changes(api, db, make_rule, method,
                                                                body, bad):
    rule = make_rule(enabled=False)
    with db.unchanged():
        fields = error_fields(api.request(method, rule_path(rule), json=body))
    # the database checks what holds between members one at a time: the
    # first it meets is named
    assert fields <= bad and fields, fields


# ---------------------------------------------------------------- versions

@pytest.mark.parametrize("method", ["PUT", "PATCH", "DELETE"])
def test_if_match_of_another_version_is_412_and_nothing_changes(api, db, make_rule, method):
    rule = make_rule(enabled=False)
    body = None if method == "DELETE" else (IDLE if method == "PUT" else {"severity": "low"})
    for tag in ('"2"', 'W/"7"', '"x"'):
        with db.unchanged():
            response = api.request(method, rule_path(rule), json=body,
                                   headers={"If-Match": tag}) if body is not None else \
                api.request(method, rule_path(rule), headers={"If-Match": tag})
            assert_problem(response, 412, "precondition-failed")


@pytest.mark.parametrize("tag", ['"1"', 'W/"1"', "*"])
def test_if_match_of_the_current_version_writes(api, make_rule, tag):
    rule = make_rule()
    response = api.patch(rule_path(rule), json={"severity": "low"}, headers={"If-Match": tag})
    assert response.status_code == 200, response.text
    assert response.headers["ETag"] == 'W/"2"'
    response = api.delete(rule_path(rule), headers={"If-Match": 'W/"2"'})
    assert response.status_code == 204


def test_every_write_bumps_the_version_once(api, make_rule):
    rule = make_rule()
    for expected in (2, 3, 4):
        response = api.patch(rule_path(rule), json={"min_executions": expected},
                             headers={"If-Match": etag(expected - 1)})
        assert response.json()["version"] == expected


# ---------------------------------------------------------------- delete

def test_delete_is_204_then_404(api, db, make_rule):
    rule = make_rule()
    response = api.delete(rule_path(rule))
    assert response.status_code == 204
    assert response.content == b""
    assert_problem(api.get(rule_path(rule)), 404, "not-found")
    assert_problem(api.delete(rule_path(rule)), 404, "not-found")
    assert db.scalar("SELECT count(*) FROM alert_rules") == 0


def test_delete_resolves_the_rules_open_alerts_and_keeps_them(api, db, make_rule):
    rule = make_rule()
    db.rows("SELECT * FROM alerts_raise(ARRAY[ROW(alert_fingerprint(%s, '{}'), %s, NULL, "
            "'high', 't', '', NULL, NULL, '{}', '{}', 1, '{}')::alert_signal_t], now(), 'test')",
            (rule["id"], rule["id"]))
    assert api.delete(rule_path(rule)).status_code == 204
    assert db.rows("SELECT status, rule_id, resolved_by FROM alerts") == [
        ("resolved", None, "api")]


def test_disabling_a_rule_resolves_its_open_alerts(api, db, make_rule):
    rule = make_rule()
    db.rows("SELECT * FROM alerts_raise(ARRAY[ROW(alert_fingerprint(%s, '{}'), %s, NULL, "
            "'high', 't', '', NULL, NULL, '{}', '{}', 1, '{}')::alert_signal_t], now(), 'test')",
            (rule["id"], rule["id"]))
    body = api.patch(rule_path(rule), json={"enabled": False}).json()
    assert (body["enabled"], body["instances"]) == (False, [])
    assert db.rows("SELECT status, rule_id::text FROM alerts") == [("resolved", rule["id"])]
