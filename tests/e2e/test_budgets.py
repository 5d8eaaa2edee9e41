"""test_budgets.py - budgets: create, list, read, replace, patch, delete with
ETag / If-Match (412), every refused body (422 naming each field, nothing
written), 404s and 409; the status exact against ingested executions (scope
by agent, model and metadata; calendar months in Europe/Paris and UTC; the
projection); budgets_evaluate(): a threshold fires once per period, 100 %
another, the projection warning once, the alerts of a period resolve when
it ends and a new period fires again."""

import datetime
import decimal
import signal
import subprocess
import time
import zoneinfo

import pytest

from support import assert_problem, error_fields, etag, parse_time

PATH = "/api/v1/budgets"
UNKNOWN_ID = "00000000-0000-4000-8000-000000000000"
D = decimal.Decimal


@pytest.fixture(autouse=True)
def no_budgets(db):
    """Every test starts and ends without budgets (and their alerts)."""
    def clean():
        db.execute("DELETE FROM alerts WHERE budget_id IS NOT NULL OR labels ? 'budget_id';"
                   "DELETE FROM budgets")
    clean()
    yield
    clean()


@pytest.fixture
def make_budget(api):
    def make(name="fleet monthly", amount_usd=500, period="month", **fields):
        response = api.post(PATH, json=dict(name=name, amount_usd=amount_usd, period=period,
                                            **fields))
        assert response.status_code == 201, response.text
        return response.json()
    return make


def status(api, budget_id, at):
    response = api.get("%s/%s/status" % (PATH, budget_id), params={"at": at})
    assert response.status_code == 200, response.text
    return response.json(parse_float=D)


def t(text):
    return datetime.datetime.fromisoformat(text.replace("Z", "+00:00"))


def post(ingest, *executions):
    """Executions as (started_at, cost, extra fields)."""
    body = [dict({"model": "gpt-test", "started_at": at, "latency_ms": 100,
                  "status": "succeeded", "cost_usd": cost},
                 **({"agent_name": "budget-agent"} if "agent_id" not in extra else {}), **extra)
            for at, cost, extra in executions]
    response = ingest(body)
    assert response.json()["inserted"] == len(body)


def evaluate(db, at):
    return db.scalar("SELECT budgets_evaluate(%s::timestamptz)", (at,))


def budget_alerts(db, budget_id):
    return [dict(zip(("threshold", "status", "severity", "value", "period", "receivers",
                      "ends_at", "id"), r)) for r in db.rows(
        "SELECT labels ->> 'threshold', status, severity, value, labels ->> 'period', "
        "receivers::text[], ends_at, id::text FROM alerts WHERE budget_id = %s "
        "ORDER BY starts_at, labels ->> 'threshold'", (budget_id,))]


def firings(db, budget_id):
    return db.rows("SELECT threshold, period_start, alert_id::text FROM budget_firings "
                   "WHERE budget_id = %s ORDER BY fired_at, threshold", (budget_id,))


# ---------------------------------------------------------------- CRUD

def test_create_answers_the_budget_with_defaults_location_and_etag(api):
    response = api.post(PATH, json={"name": "fleet monthly", "amount_usd": 500,
                                    "period": "month"})
    assert response.status_code == 201, response.text
    body = response.json()
    assert response.headers["Location"] == "%s/%s" % (PATH, body["id"])
    assert response.headers["ETag"] == etag(1)
    assert {k: body[k] for k in ("name", "amount_usd", "period", "tz", "scope", "thresholds",
                                 "receivers", "enabled", "version")} == {
        "name": "fleet monthly", "amount_usd": 500, "period": "month", "tz": "UTC",
        "scope": {"agent_id": None, "model": None, "metadata": None},
        "thresholds": [50, 80, 100], "receivers": [], "enabled": True, "version": 1}
    got = api.get(response.headers["Location"])
    assert got.status_code == 200 and got.json() == body
    assert got.headers["ETag"] == etag(1)


def test_create_stores_every_member_as_sent(api, make_agent):
    agent = make_agent()
    body = {"name": "payments daily", "amount_usd": 12.5, "period": "day",
            "tz": "Europe/Paris", "thresholds": [25, 90, 150],
            "scope": {"agent_id": agent["id"], "model": "gpt-4o",
                      "metadata": {"team": "payments"}},
            "receivers": [], "enabled": False}
    response = api.post(PATH, json=body)
    assert response.status_code == 201, response.text
    got = response.json()
    for key, value in body.items():
        assert got[key] == value, key


def test_list_is_newest_first_in_keyset_pages(api, make_budget):
    ids = [make_budget(name="b%d" % i)["id"] for i in range(3)]
    first = api.get(PATH, params={"limit": 2})
    assert first.status_code == 200
    page = first.json()
    assert [b["id"] for b in page["items"]] == ids[::-1][:2]
    second = api.get(PATH, params={"limit": 2, "cursor": page["next_cursor"]}).json()
    assert [b["id"] for b in second["items"]] == ids[:1]
    assert second["next_cursor"] is None


@pytest.mark.parametrize("params, field", [
    ({"limit": 0}, "limit"), ({"limit": "x"}, "limit"), ({"cursor": "nope"}, "cursor"),
    ({"owner": "ana"}, "owner"),
])
def test_list_refuses_bad_parameters(api, params, field):
    body = assert_problem(api.get(PATH, params=params), 400, "bad-request")
    assert field in {e["field"] for e in body.get("errors", [])} or field in body["detail"]


def test_patch_put_and_delete_follow_the_version(api, db, make_budget):
    budget = make_budget()
    url = "%s/%s" % (PATH, budget["id"])
    patched = api.patch(url, json={"amount_usd": 800, "thresholds": [90]},
                        headers={"If-Match": etag(1)})
    assert patched.status_code == 200, patched.text
    assert patched.headers["ETag"] == etag(2)
    assert (patched.json()["amount_usd"], patched.json()["thresholds"],
            patched.json()["version"], patched.json()["name"]) == (800, [90], 2, "fleet monthly")
    with db.unchanged():
        for method, kw in (("patch", {"json": {"amount_usd": 1}}),
                           ("put", {"json": {"name": "x", "amount_usd": 1, "period": "day"}}),
                           ("delete", {})):
            stale = getattr(api, method)(url, headers={"If-Match": etag(1)}, **kw)
            assert_problem(stale, 412, "precondition-failed")
    empty = api.patch(url, json={}, headers={"If-Match": etag(2)})
    assert empty.status_code == 200 and empty.json()["version"] == 2
    weak = api.put(url, json={"name": "renamed", "amount_usd": 5, "period": "week",
                              "tz": "Europe/Paris"}, headers={"If-Match": 'W/"2"'})
    assert weak.status_code == 200, weak.text
    replaced = weak.json()
    assert (replaced["name"], replaced["amount_usd"], replaced["period"], replaced["tz"],
            replaced["thresholds"], replaced["version"]) == ("renamed", 5, "week",
                                                             "Europe/Paris", [50, 80, 100], 3)
    assert api.get(url).json() == replaced
    scoped = api.patch(url, json={"scope": {"model": "m1"}}).json()
    assert scoped["scope"] == {"agent_id": None, "model": "m1", "metadata": None}
    assert api.patch(url, json={"scope": None}).json()["scope"]["model"] is None
    assert api.delete(url, headers={"If-Match": etag(5)}).status_code == 204
    assert_problem(api.get(url), 404, "not-found")
    assert db.count("budgets") == 0


@pytest.mark.parametrize("method, suffix", [
    ("get", ""), ("put", ""), ("patch", ""), ("delete", ""), ("get", "/status"),
])
@pytest.mark.parametrize("budget_id", [UNKNOWN_ID, "not-a-uuid"])
def test_unknown_budgets_are_404(api, db, method, suffix, budget_id):
    kw = {"json": {"name": "x", "amount_usd": 1, "period": "day"}} if method in (
        "put", "patch") else {}
    with db.unchanged():
        response = getattr(api, method)("%s/%s%s" % (PATH, budget_id, suffix), **kw)
    assert_problem(response, 404, "not-found")


def test_a_taken_name_is_409(api, db, make_budget):
    make_budget(name="taken")
    other = make_budget(name="other")
    with db.unchanged():
        assert_problem(api.post(PATH, json={"name": "taken", "amount_usd": 1,
                                            "period": "day"}), 409, "conflict")
        assert_problem(api.patch("%s/%s" % (PATH, other["id"]), json={"name": "taken"}),
                       409, "conflict")


GOOD = {"name": "b", "amount_usd": 10, "period": "month"}


@pytest.mark.parametrize("body, fields", [
    ({}, {"name", "amount_usd", "period"}),
    (dict(GOOD, name=""), {"name"}),
    (dict(GOOD, name="x" * 256), {"name"}),
    (dict(GOOD, amount_usd=0), {"amount_usd"}),
    (dict(GOOD, amount_usd=-5), {"amount_usd"}),
    (dict(GOOD, amount_usd="10"), {"amount_usd"}),
    (dict(GOOD, amount_usd=1e9), {"amount_usd"}),
    (dict(GOOD, period="year"), {"period"}),
    (dict(GOOD, tz="EST5EDT"), {"tz"}),
    (dict(GOOD, tz="UTC+2"), {"tz"}),
    (dict(GOOD, tz="Mars/Olympus_Mons"), {"tz"}),
    (dict(GOOD, thresholds=[]), {"thresholds"}),
    (dict(GOOD, thresholds=[80, 50]), {"thresholds"}),
    (dict(GOOD, thresholds=[50, 50]), {"thresholds"}),
    (dict(GOOD, thresholds=[0, 1001, 50.5, "80"]),
     {"thresholds[0]", "thresholds[1]", "thresholds[2]", "thresholds[3]"}),
    (dict(GOOD, thresholds=list(range(1, 22))), {"thresholds"}),
    (dict(GOOD, receivers=["nope"]), {"receivers[0]"}),
    (dict(GOOD, receivers=[UNKNOWN_ID]), {"receivers"}),
    (dict(GOOD, receivers="x"), {"receivers"}),
    (dict(GOOD, scope="global"), {"scope"}),
    (dict(GOOD, scope={"agent_id": "x", "model": "", "metadata": {"a": 1}, "team": "x"}),
     {"scope.agent_id", "scope.model", "scope.metadata.a", "scope.team"}),
    (dict(GOOD, scope={"agent_id": UNKNOWN_ID}), {"scope.agent_id"}),
    (dict(GOOD, scope={"metadata": {"k%d" % i: "v" for i in range(21)}}), {"scope.metadata"}),
    (dict(GOOD, enabled="yes"), {"enabled"}),
    (dict(GOOD, color="red"), {"color"}),
])
def test_invalid_bodies_are_422_naming_each_field(api, db, make_budget, body, fields):
    existing = make_budget(name="existing")
    url = "%s/%s" % (PATH, existing["id"])
    with db.unchanged():
        assert error_fields(api.post(PATH, json=body)) == fields
        assert error_fields(api.put(url, json=body)) == fields
        patch = {k: v for k, v in body.items() if k not in GOOD or v != GOOD[k]}
        if patch:
            assert error_fields(api.patch(url, json=patch)) == fields


def test_status_refuses_a_bad_at_and_unknown_parameters(api, make_budget):
    budget = make_budget()
    url = "%s/%s/status" % (PATH, budget["id"])
    assert_problem(api.get(url, params={"at": "yesterday"}), 400, "bad-request")
    assert_problem(api.get(url, params={"from": "2026-01-01T00:00:00Z"}), 400, "bad-request")
    assert api.get(url).status_code == 200


# ---------------------------------------------------------------- status

@pytest.mark.ingest
def test_status_of_a_month_in_paris_and_in_utc(api, ingest, make_budget):
    post(ingest, ("2026-03-31T21:30:00Z", 2.5, {}),        # March in both
         ("2026-03-31T22:30:00Z", 3.125, {}),              # April 00:30 in Paris, March in UTC
         ("2026-04-10T12:00:00Z", 4.000001, {}),           # April in both
         ("2026-04-20T00:00:00Z", 100, {}))                # at `at`: not counted
    paris = make_budget(name="paris", amount_usd=10, tz="Europe/Paris")
    utc = make_budget(name="utc", amount_usd=10)
    at = "2026-04-20T00:00:00Z"

    got = status(api, paris["id"], at)
    assert got["period"] == {"from": "2026-03-31T22:00:00Z", "to": "2026-04-30T22:00:00Z",
                             "label": "2026-04"}
    spent = D("7.125001")
    assert (got["spent_usd"], got["remaining_usd"], got["amount_usd"]) == (
        spent, 10 - spent, 10)
    assert got["percent"] == spent * 10
    elapsed = (t(at) - t("2026-03-31T22:00:00Z")).total_seconds()
    length = 30 * 86400
    projected = (spent * length / D(elapsed)).quantize(D("0.000001"))
    assert got["projected_usd"] == projected
    exhausted = t("2026-03-31T22:00:00Z") + datetime.timedelta(
        seconds=float(D(10) / spent * D(elapsed)))
    assert abs((parse_time(got["projected_exhausted_at"]) - exhausted).total_seconds()) < 0.001
    assert got["exhausted"] is False and got["at"] == at

    got = status(api, utc["id"], at)
    assert got["period"] == {"from": "2026-04-01T00:00:00Z", "to": "2026-05-01T00:00:00Z",
                             "label": "2026-04"}
    assert got["spent_usd"] == D("4.000001")
    elapsed = 19 * 86400
    assert got["projected_usd"] == (D("4.000001") * length / elapsed).quantize(D("0.000001"))
    # at that pace 10 USD come after the end of April
    assert got["projected_exhausted_at"] is None


@pytest.mark.ingest
def test_status_days_weeks_and_exhausted(api, ingest, make_budget):
    post(ingest, ("2026-04-13T08:00:00Z", 3, {}),   # Monday
         ("2026-04-15T08:00:00Z", 4, {}),           # Wednesday
         ("2026-04-12T23:00:00Z", 1, {}))           # Sunday: the week before
    week = make_budget(name="week", amount_usd=5, period="week")
    day = make_budget(name="day", amount_usd=5, period="day")
    got = status(api, week["id"], "2026-04-16T00:00:00Z")
    assert got["period"] == {"from": "2026-04-13T00:00:00Z", "to": "2026-04-20T00:00:00Z",
                             "label": "2026-W16"}
    assert (got["spent_usd"], got["remaining_usd"], got["exhausted"]) == (7, -2, True)
    assert got["percent"] == 140 and got["projected_exhausted_at"] is None
    got = status(api, day["id"], "2026-04-15T12:00:00Z")
    assert got["period"]["label"] == "2026-04-15" and got["spent_usd"] == 4
    assert got["projected_usd"] == 8
    assert got["projected_exhausted_at"] == "2026-04-15T15:00:00Z"
    empty = status(api, day["id"], "2026-04-14T12:00:00Z")
    assert (empty["spent_usd"], empty["projected_usd"], empty["projected_exhausted_at"]) == (
        0, 0, None)


@pytest.mark.ingest
def test_status_honours_the_scope(api, db, ingest, make_agent, make_budget):
    a, b = make_agent(), make_agent()
    post(ingest,
         ("2026-04-02T10:00:00Z", 1, {"agent_id": a["id"], "model": "m1",
                                      "metadata": {"team": "pay"}}),
         ("2026-04-02T10:00:01Z", 2, {"agent_id": a["id"], "model": "m2"}),
         ("2026-04-02T10:00:02Z", 4, {"agent_id": b["id"], "model": "m1",
                                      "metadata": {"team": "pay", "tier": 1}}),
         ("2026-04-02T10:00:03Z", 8, {"agent_id": b["id"], "model": "m2",
                                      "metadata": {"team": "ops"}}))
    db.rollup_refresh()   # rollups folded and pending deltas read alike
    post(ingest, ("2026-04-03T10:00:00Z", 16, {"agent_id": a["id"], "model": "m1",
                                               "metadata": {"team": "pay"}}))
    at = "2026-04-10T00:00:00Z"
    cases = [(None, 31), ({}, 31), ({"agent_id": a["id"]}, 19), ({"agent_id": b["id"]}, 12),
             ({"model": "m1"}, 21), ({"model": "m2"}, 10),
             ({"agent_id": a["id"], "model": "m1"}, 17),
             ({"metadata": {"team": "pay"}}, 21), ({"metadata": {"team": "pay", "tier": "1"}}, 4),
             ({"model": "m2", "metadata": {"team": "ops"}}, 8), ({"model": "m3"}, 0)]
    for i, (scope, spent) in enumerate(cases):
        budget = make_budget(name="scope %d" % i, amount_usd=100, scope=scope)
        assert status(api, budget["id"], at)["spent_usd"] == spent, scope


# ---------------------------------------------------------------- evaluation

@pytest.mark.ingest
def test_a_threshold_fires_once_per_period_and_100_another(db, ingest, make_budget):
    budget = make_budget(name="ops", amount_usd=100, thresholds=[80, 100])
    post(ingest, ("2026-04-02T10:00:00Z", 30, {}), ("2026-04-20T10:00:00Z", 55, {}))
    # 30 %, and a pace of exactly 100 USD: not above the amount
    assert evaluate(db, "2026-04-10T00:00:00Z") == 0
    at = "2026-04-29T00:00:00Z"                               # 85 %, pace 91 USD
    assert evaluate(db, at) == 1
    assert evaluate(db, at) == 0
    assert evaluate(db, "2026-04-29T00:10:00Z") == 0
    alerts = budget_alerts(db, budget["id"])
    assert [(x["threshold"], x["status"], x["severity"], x["value"], x["period"],
             x["receivers"]) for x in alerts] == [("80", "firing", "high", 85, "2026-04", [])]
    row = db.row("SELECT title, labels, occurrences, rule_id FROM alerts WHERE id = %s",
                 (alerts[0]["id"],))
    assert row["labels"] == {"alertname": "budget", "budget": "ops", "budget_id": budget["id"],
                             "period": "2026-04", "threshold": "80"}
    assert row["occurrences"] == 1 and row["rule_id"] is None and "ops" in row["title"]
    assert [(f[0], f[2]) for f in firings(db, budget["id"])] == [("80", alerts[0]["id"])]

    post(ingest, ("2026-04-29T01:00:00Z", 20, {}))            # 105 %
    assert evaluate(db, "2026-04-29T12:00:00Z") == 1
    assert evaluate(db, "2026-04-29T12:00:00Z") == 0
    alerts = budget_alerts(db, budget["id"])
    assert [(x["threshold"], x["status"], x["severity"]) for x in alerts] == [
        ("80", "firing", "high"), ("100", "firing", "critical")]
    assert len(firings(db, budget["id"])) == 2

    # May: April's alerts resolve; nothing spent in May yet
    assert evaluate(db, "2026-05-01T00:30:00Z") == 0
    alerts = budget_alerts(db, budget["id"])
    assert [x["status"] for x in alerts] == ["resolved", "resolved"]
    assert {x["ends_at"].isoformat() for x in alerts} == {"2026-05-01T00:30:00+00:00"}
    assert db.scalar("SELECT count(*) FROM alert_transitions t JOIN alerts a "
                     "ON a.id = t.alert_id WHERE a.budget_id = %s AND t.to_status = "
                     "'resolved' AND t.actor = 'budget'", (budget["id"],)) == 2

    # a new period fires again
    post(ingest, ("2026-05-02T10:00:00Z", 90, {}))
    assert evaluate(db, "2026-05-03T00:00:00Z") == 1
    alerts = budget_alerts(db, budget["id"])
    assert [(x["threshold"], x["status"], x["period"]) for x in alerts][2:] == [
        ("80", "firing", "2026-05")]
    assert len(firings(db, budget["id"])) == 3


@pytest.mark.ingest
def test_a_projection_above_the_amount_warns_once(db, ingest, make_budget):
    budget = make_budget(name="pace", amount_usd=100, thresholds=[100])
    post(ingest, ("2026-04-01T10:00:00Z", 5, {}))
    # 150 USD at this pace, but a day of thirty says little: no warning yet
    assert evaluate(db, "2026-04-02T00:00:00Z") == 0
    post(ingest, ("2026-04-05T10:00:00Z", 35, {}))
    at = "2026-04-10T00:00:00Z"                               # 40 USD in 9 days: 133 USD
    assert evaluate(db, at) == 1
    assert evaluate(db, at) == 0
    assert evaluate(db, "2026-04-11T00:00:00Z") == 0
    alerts = budget_alerts(db, budget["id"])
    assert [(x["threshold"], x["severity"], x["status"]) for x in alerts] == [
        ("projection", "medium", "firing")]
    assert abs(alerts[0]["value"] - 40 * 30 / 9 * 100 / 100) < 1e-6
    assert [f[0] for f in firings(db, budget["id"])] == ["projection"]


@pytest.mark.ingest
def test_disabled_budgets_do_not_fire_and_deleting_one_resolves_its_alerts(
        api, db, ingest, make_budget):
    off = make_budget(name="off", amount_usd=10, thresholds=[50], enabled=False)
    on = make_budget(name="on", amount_usd=10, thresholds=[50])
    post(ingest, ("2026-04-28T10:00:00Z", 6, {}))
    assert evaluate(db, "2026-04-29T00:00:00Z") == 1
    assert budget_alerts(db, off["id"]) == []
    alert_id = budget_alerts(db, on["id"])[0]["id"]
    assert api.delete("%s/%s" % (PATH, on["id"])).status_code == 204
    row = db.row("SELECT status, budget_id FROM alerts WHERE id = %s", (alert_id,))
    assert row == {"status": "resolved", "budget_id": None}
    assert db.count("budget_firings") == 0


# ---------------------------------------------------------------- through the evaluator job

def test_the_evaluator_job_fires_a_crossed_budget_by_itself(stack, db, ingest, make_budget,
                                                            tmp_path):
    """An alerts group of its own (evaluating every second) beside the
    stack's: its evaluator job runs budgets_evaluate() every cycle."""
    now = datetime.datetime.now(datetime.timezone.utc)
    post(ingest, ((now - datetime.timedelta(seconds=5)).strftime("%Y-%m-%dT%H:%M:%SZ"), 9, {}))
    # a day in a zone whose midnight is not within the next or last minute
    zone = next(z for z in ("UTC", "Asia/Tokyo")
                if 60 < (now.astimezone(zoneinfo.ZoneInfo(z)) - now.astimezone(
                    zoneinfo.ZoneInfo(z)).replace(hour=0, minute=0, second=0,
                                                  microsecond=0)).total_seconds() < 86340)
    budget = make_budget(amount_usd=10, period="day", tz=zone, thresholds=[80])
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
        def crossed():   # the projection may warn too, depending on the hour
            return [(a["threshold"], a["status"], a["severity"])
                    for a in budget_alerts(db, budget["id"]) if a["threshold"] == "80"]
        deadline = time.monotonic() + 15
        while not crossed() and time.monotonic() < deadline:
            time.sleep(0.2)
        assert crossed() == [("80", "firing", "high")], log_path.read_text()
        time.sleep(2.5)                      # more cycles: still one alert, one firing
        assert crossed() == [("80", "firing", "high")]
        assert len([f for f in firings(db, budget["id"]) if f[0] == "80"]) == 1
    finally:
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(timeout=30) == 0
