"""test_explorer.py - GET /executions and /executions/{id}: every filter and
sort against the same rows selected in psql, keyset cursors that walk every
row once, every stored field read back, 404s, bad parameters answering 400
naming each, and the CSV and NDJSON exports (RFC 4180 parsed back by the
csv module, equal to the rows; the row limit)."""

import csv
import datetime
import io
import json
import os
import random
import uuid

import pytest

from support import assert_problem, gen_executions, post_executions, usd, utc

pytestmark = pytest.mark.ingest

EXECUTIONS = "/api/v1/executions"
UTC = datetime.timezone.utc
W_FROM = datetime.datetime(2024, 3, 5, tzinfo=UTC)
W_TO = datetime.datetime(2024, 3, 6, tzinfo=UTC)
RANGE = {"from": utc(W_FROM), "to": utc(W_TO)}


@pytest.fixture
def fleet(make_agent, api):
    """Three agents and 600 executions in [W_FROM, W_TO); some share a
    latency and a cost (ties are ordered by id)."""
    agents = [make_agent()["id"] for _ in range(3)]
    rng = random.Random(14)
    executions = gen_executions(rng, 600, W_FROM, W_TO, agents)
    for e in executions[:40]:
        e["latency_ms"] = 1000
        e["cost_usd"] = 0.125
    post_executions(api, executions)
    return agents, executions


def error_fields(response, status=400):
    """The fields a 400 (or 422) problem names, in order, each once."""
    slug = "bad-request" if status == 400 else "validation"
    body = assert_problem(response, status, slug)
    fields = []
    for error in body.get("errors", []):
        if error["field"] not in fields:
            fields.append(error["field"])
    return fields


def walk(api, params, limit=100):
    """Every item of every page, following next_cursor; asserts that pages
    are full until the last."""
    items, cursor = [], None
    while True:
        page_params = dict(params, limit=limit)
        if cursor:
            page_params["cursor"] = cursor
        response = api.get(EXECUTIONS, params=page_params)
        assert response.status_code == 200, response.text
        body = response.json()
        items += body["items"]
        cursor = body["next_cursor"]
        if cursor is None:
            return items
        assert len(body["items"]) == limit


def psql_ids(db, where, params=(), order="started_at DESC, id DESC"):
    return [str(r[0]) for r in db.rows(
        "SELECT id FROM executions WHERE started_at >= %%s AND started_at < %%s AND %s "
        "ORDER BY %s" % (where, order), (W_FROM, W_TO) + tuple(params))]


def test_newest_first_walks_every_row_once(api, db, fleet):
    items = walk(api, RANGE, limit=37)
    assert [i["id"] for i in items] == psql_ids(db, "TRUE")
    assert len(items) == 600


@pytest.mark.parametrize("sort, order", [
    ("slowest", "coalesce(latency_ms, -1) DESC, id DESC"),
    ("costliest", "cost_usd DESC, id DESC"),
])
def test_sorts_with_ties_follow_the_keyset(api, db, fleet, sort, order):
    items = walk(api, dict(RANGE, sort=sort), limit=23)
    assert [i["id"] for i in items] == psql_ids(db, "TRUE", order=order)


@pytest.mark.parametrize("params, where, args", [
    ({"status": "failed"}, "status = 'failed'", ()),
    ({"error_category": "timeout"}, "error_category = 'timeout'", ()),
    ({"min_latency_ms": "1500"}, "latency_ms >= 1500", ()),
    ({"max_latency_ms": "800"}, "latency_ms <= 800", ()),
    ({"min_latency_ms": "900", "max_latency_ms": "1000"}, "latency_ms BETWEEN 900 AND 1000", ()),
    ({"min_cost_usd": "0.4"}, "cost_usd >= 0.4", ()),
    ({"evaluated": "true"}, "eval_passed IS NOT NULL", ()),
    ({"evaluated": "false"}, "eval_passed IS NULL", ()),
    ({"passed": "false"}, "eval_passed = false", ()),
    ({"model": ["model-a", "model-c"]}, "model IN ('model-a', 'model-c')", ()),
    ({"metadata.region": "eu", "metadata.tier": "2"},
     "metadata->>'region' = 'eu' AND metadata->>'tier' = '2'", ()),
    ({"status": "succeeded", "passed": "true", "model": "model-b"},
     "status = 'succeeded' AND eval_passed AND model = 'model-b'", ()),
])
def test_filters_answer_the_rows_psql_selects(api, db, fleet, params, where, args):
    items = walk(api, dict(RANGE, **params))
    expected = psql_ids(db, where, args)
    assert expected, "the filter selects nothing: a weak test"
    assert [i["id"] for i in items] == expected


def test_agent_filter_repeatable_and_range_cut(api, db, fleet):
    agents, _ = fleet
    cut_from, cut_to = W_FROM + datetime.timedelta(hours=3), W_FROM + datetime.timedelta(hours=9)
    items = walk(api, {"from": utc(cut_from), "to": utc(cut_to), "agent_id": agents[:2]})
    expected = [str(r[0]) for r in db.rows(
        "SELECT id FROM executions WHERE started_at >= %s AND started_at < %s "
        "AND agent_id = ANY (%s::uuid[]) ORDER BY started_at DESC, id DESC",
        (cut_from, cut_to, agents[:2]))]
    assert [i["id"] for i in items] == expected and expected


def test_default_range_is_the_last_24_hours(api, ingest, execution, fleet):
    recent = ingest(execution()).json()["ids"][0]
    body = api.get(EXECUTIONS).json()
    assert [i["id"] for i in body["items"]] == [recent]
    assert api.get(EXECUTIONS, params={"time_range": "30d"}).json()["items"][0]["id"] == recent


def test_every_stored_field_is_read_back(api, ingest, execution, make_agent, make_version):
    agent = make_agent()
    version = make_version(agent["id"], version="v7")
    body = execution(agent_id=agent["id"], version="v7", model="m-x", task_id="task-1",
                     status="failed", prompt_tokens=11, completion_tokens=22,
                     cache_read_tokens=33, cost_usd=0.012345,
                     error={"category": "tool_error", "message": 'bad "quote", comma\nline'},
                     evaluation={"passed": False, "score": 0.25, "evaluator": "judge"},
                     metadata={"region": "eu", "n": 3})
    ident = ingest(body).json()["ids"][0]
    got = api.get(EXECUTIONS + "/" + ident)
    assert got.status_code == 200
    e = got.json()
    assert e["id"] == ident and e["agent_id"] == agent["id"]
    assert e["agent_version_id"] == version["id"]
    assert (e["model"], e["task_id"], e["status"], e["success"]) == ("m-x", "task-1", "failed",
                                                                      False)
    assert (e["prompt_tokens"], e["completion_tokens"], e["cache_read_tokens"]) == (11, 22, 33)
    assert usd(e["cost_usd"]) == usd(0.012345) and e["latency_ms"] == 1200
    assert e["error_category"] == "tool_error"
    assert e["error_message"] == 'bad "quote", comma\nline'
    assert e["evaluation"]["passed"] is False and e["evaluation"]["score"] == 0.25
    assert e["evaluation"]["evaluator"] == "judge"
    assert e["metadata"] == {"region": "eu", "n": 3}
    listed = api.get(EXECUTIONS, params={"time_range": "24h"}).json()["items"]
    assert listed == [e]


def test_unknown_and_malformed_ids_are_404(api):
    assert_problem(api.get(EXECUTIONS + "/" + str(uuid.uuid4())), 404, "not-found")
    assert_problem(api.get(EXECUTIONS + "/not-a-uuid"), 404, "not-found")


@pytest.mark.parametrize("params, fields", [
    ({"sort": "fastest"}, {"sort"}),
    ({"status": "ok"}, {"status"}),
    ({"agent_id": "nope"}, {"agent_id"}),
    ({"min_latency_ms": "-1"}, {"min_latency_ms"}),
    ({"max_latency_ms": "1.5"}, {"max_latency_ms"}),
    ({"min_cost_usd": "abc"}, {"min_cost_usd"}),
    ({"evaluated": "yes", "passed": "1"}, {"evaluated", "passed"}),
    ({"limit": "0"}, {"limit"}),
    ({"limit": "101"}, {"limit"}),
    ({"cursor": "garbage"}, {"cursor"}),
    ({"format": "xml"}, {"format"}),
    ({"time_range": "2d"}, {"time_range"}),
    ({"from": "yesterday"}, {"from"}),
    ({"to": "2024-03-05T00:00:00Z"}, {"from"}),
    ({"from": "2024-03-05T00:00:00Z", "to": "2024-03-04T00:00:00Z"}, {"from", "to"}),
    ({"from": "2023-01-01T00:00:00Z", "to": "2024-03-04T00:00:00Z"}, {"from", "to"}),
    ({"time_range": "1h", "from": "2024-03-05T00:00:00Z"}, {"time_range"}),
    ({"colour": "red"}, {"colour"}),
    ({"metadata.": "x"}, {"metadata."}),
    ({"sort": ["newest", "slowest"]}, {"sort"}),
    ({"model": ""}, {"model"}),
])
def test_bad_parameters_are_400_naming_each(api, params, fields):
    response = api.get(EXECUTIONS, params=params)
    assert_problem(response, 400, "bad-request")
    assert set(error_fields(response)) == fields


def test_a_cursor_of_another_sort_is_refused(api, fleet):
    cursor = api.get(EXECUTIONS, params=dict(RANGE, limit=5)).json()["next_cursor"]
    response = api.get(EXECUTIONS, params=dict(RANGE, sort="slowest", cursor=cursor))
    assert_problem(response, 400, "bad-request")
    assert error_fields(response) == ["cursor"]


# ---------------------------------------------------------------- exports

CSV_COLUMNS = ["id", "agent_id", "agent_version_id", "model", "task_id", "started_at",
               "finished_at", "latency_ms", "status", "success", "prompt_tokens",
               "completion_tokens", "cache_read_tokens", "cost_usd", "error_category",
               "error_message", "eval_passed", "eval_score", "eval_evaluator", "evaluated_at",
               "metadata", "ingested_at"]


def test_csv_export_parses_back_to_the_rows(api, db, fleet, ingest, execution):
    response = api.get(EXECUTIONS, params=dict(RANGE, format="csv", sort="slowest"),
                       validate=False)
    assert response.status_code == 200
    assert response.headers["Content-Type"].startswith("text/csv")
    assert response.content.count(b"\r\n") == 601
    rows = list(csv.reader(io.StringIO(response.content.decode(), newline="")))
    assert rows[0] == CSV_COLUMNS
    expected = db.rows(
        "SELECT id::text, latency_ms, cost_usd, status, coalesce(error_message, ''), metadata"
        "  FROM executions WHERE started_at >= %s AND started_at < %s"
        " ORDER BY coalesce(latency_ms, -1) DESC, id DESC", (W_FROM, W_TO))
    got = [(r[0], int(r[7]), usd(float(r[13])), r[8], r[15], json.loads(r[20])) for r in rows[1:]]
    assert got == [(i, l, usd(float(c)), s, m, md) for i, l, c, s, m, md in expected]


def test_csv_quotes_what_needs_it_and_accept_header_chooses_csv(api, ingest, execution):
    message = 'said "no", then\r\nleft'
    ident = ingest(execution(status="failed", error={"category": "x", "message": message},
                             metadata={"a": "b,c"})).json()["ids"][0]
    response = api.get(EXECUTIONS, headers={"Accept": "text/csv"}, validate=False)
    assert response.status_code == 200 and response.headers["Content-Type"].startswith("text/csv")
    rows = list(csv.reader(io.StringIO(response.content.decode(), newline="")))
    assert len(rows) == 2 and rows[1][0] == ident
    assert rows[1][15] == message and json.loads(rows[1][20]) == {"a": "b,c"}


def test_ndjson_export_is_the_items(api, fleet):
    params = dict(RANGE, status="failed", sort="costliest")
    items = walk(api, params)
    response = api.get(EXECUTIONS, params=dict(params, format="ndjson"), validate=False)
    assert response.status_code == 200
    assert response.headers["Content-Type"].startswith("application/x-ndjson")
    lines = response.content.decode().splitlines()
    assert [json.loads(line) for line in lines] == items


def test_export_limit_and_cursor(api, fleet):
    first = walk(api, RANGE)
    response = api.get(EXECUTIONS, params=dict(RANGE, format="ndjson", limit=10), validate=False)
    assert [json.loads(x)["id"] for x in response.content.decode().splitlines()] == \
        [i["id"] for i in first[:10]]
    cursor = api.get(EXECUTIONS, params=dict(RANGE, limit=100)).json()["next_cursor"]
    response = api.get(EXECUTIONS, params=dict(RANGE, format="ndjson", cursor=cursor),
                       validate=False)
    assert [json.loads(x)["id"] for x in response.content.decode().splitlines()] == \
        [i["id"] for i in first[100:]]
    response = api.get(EXECUTIONS, params=dict(RANGE, format="csv", limit=1000001))
    assert_problem(response, 400, "bad-request")
    assert error_fields(response) == ["limit"]


def test_an_export_past_its_row_limit_is_422(api, db, fleet):
    # the limit is 1,000,000 rows: more than that many must match. The
    # check counts at most limit + 1 rows, so the table is made to hold
    # them cheaply in the range, without the rollup triggers.
    conn = db.connect()
    try:
        with conn.cursor() as cur:
            cur.execute("SET session_replication_role = replica")  # no triggers: no rollups
            cur.execute(
                "INSERT INTO executions (agent_id, model, started_at, latency_ms, status)"
                " SELECT agent_id, model, started_at, latency_ms, status FROM executions,"
                "        generate_series(1, 1700)")
            conn.commit()
        response = api.get(EXECUTIONS, params=dict(RANGE, format="csv"))
        assert error_fields(response, 422) == ["limit"]
        response = api.get(EXECUTIONS, params=dict(RANGE, format="csv", limit=3),
                           validate=False)
        assert response.status_code == 200 and response.content.count(b"\r\n") == 4
    finally:
        conn.close()   # the ingest tables are emptied after every test


# ---------------------------------------------------------------- drill-down

def follow(api, url):
    """The ids of every run a drill-down link lists (pages of 100)."""
    assert url.startswith(EXECUTIONS + "?"), url
    ids, cursor = [], None
    while True:
        response = api.get(url + "&limit=100" + ("&cursor=" + cursor if cursor else ""))
        assert response.status_code == 200, response.text
        ids += [i["id"] for i in response.json()["items"]]
        cursor = response.json()["next_cursor"]
        if cursor is None:
            return ids


CUT = {"from": "2024-03-05T02:17:31.5Z", "to": "2024-03-05T21:40:00Z"}


@pytest.mark.parametrize("filters", [{}, {"model": ["model-a", "model-b"]},
                                     {"metadata.region": "eu"}])
def test_summary_links_to_exactly_its_runs(api, db, fleet, filters):
    body = api.get("/api/v1/executions/summary", params=dict(CUT, **filters)).json()
    ids = follow(api, body["executions_url"])
    assert len(ids) == len(set(ids)) == body["total"] > 0


def test_timeseries_buckets_link_to_their_runs(api, fleet):
    agents, _ = fleet
    body = api.get("/api/v1/executions/timeseries",
                   params=dict(CUT, interval="6h", group_by="agent")).json()
    seen = set()
    for series in body["series"]:
        for point in series["points"]:
            ids = follow(api, point["executions_url"])
            assert len(ids) == point["executions"], point
            seen.update(ids)
    total = api.get("/api/v1/executions/summary", params=CUT).json()["total"]
    assert len(seen) == total


def test_agent_rows_errors_and_costs_link_to_their_runs(api, db, fleet):
    agents = api.get("/api/v1/agents/summary", params=CUT).json()["items"]
    assert sum(1 for a in agents if a["executions"] > 0) == 3
    for agent in agents:
        assert len(follow(api, agent["executions_url"])) == agent["executions"]
    errors = api.get("/api/v1/errors/breakdown", params=dict(CUT, model="model-c")).json()
    assert errors["items"]
    for item in errors["items"]:
        ids = follow(api, item["executions_url"])
        assert len(ids) == item["count"]
        assert db.scalar("SELECT count(*) FROM executions WHERE id = ANY (%s::uuid[])"
                         " AND error_category = %s AND model = 'model-c'",
                         (ids, item["category"])) == item["count"]
    for group_by in ("agent", "model"):
        costs = api.get("/api/v1/costs/breakdown", params=dict(CUT, group_by=group_by)).json()
        for item in costs["items"]:
            ids = follow(api, item["executions_url"])
            assert len(ids) == item["executions"]
            assert usd(sum(float(x) for x, in db.rows(
                "SELECT cost_usd FROM executions WHERE id = ANY (%s::uuid[])", (ids,)))) == \
                usd(item["cost_usd"])


def aggregates_workers(stack):
    """{pid: VmHWM in KiB} of the aggregates group's workers (children of
    its master)."""
    master = stack.pid_file("aggregates").read_text().strip()
    children = open("/proc/%s/task/%s/children" % (master, master)).read().split()
    peaks = {}
    for pid in children:
        try:
            status = open("/proc/%s/status" % pid).read()
        except OSError:
            continue
        peaks[pid] = int(next(l.split()[1] for l in status.splitlines()
                              if l.startswith("VmHWM:")))
    return peaks


def test_a_csv_export_of_200000_rows_streams_whole_in_flat_memory(api, db, stack, make_agent):
    agent = make_agent()["id"]
    db.execute(
        "SET session_replication_role = replica;"  # no triggers: no rollups needed here
        "INSERT INTO executions (agent_id, model, task_id, started_at, latency_ms, status,"
        "                        error_category, error_message, cost_usd, metadata)"
        " SELECT %s, 'm' || (i %% 7), 'task \"' || i || '\", ok', "
        "        timestamptz '2024-03-05' + i * interval '300 ms', i %% 5000,"
        "        CASE WHEN i %% 3 = 0 THEN 'failed' ELSE 'succeeded' END,"
        "        CASE WHEN i %% 3 = 0 THEN 'tool_error' END,"
        "        CASE WHEN i %% 3 = 0 THEN E'line one\\nline, two' END,"
        "        (i %% 1000) / 1000.0, jsonb_build_object('i', i)"
        "   FROM generate_series(1, 200000) i;"
        "SET session_replication_role = origin", (agent,))
    before = aggregates_workers(stack)
    params = {"from": "2024-03-05T00:00:00Z", "to": "2024-03-06T00:00:00Z", "format": "csv"}
    with api.session().get(api.url(EXECUTIONS), params=params, stream=True, timeout=120) as r:
        assert r.status_code == 200
        text = r.raw.read(decode_content=True).decode()
    after = aggregates_workers(stack)
    rows = list(csv.reader(io.StringIO(text, newline="")))
    assert rows[0] == CSV_COLUMNS and len(rows) == 200001
    expected = db.rows(
        "SELECT id::text, task_id, latency_ms, status, coalesce(error_message, ''),"
        "       metadata ->> 'i' FROM executions ORDER BY started_at DESC, id DESC")
    assert [(r[0], r[4], int(r[7]), r[8], r[15], str(json.loads(r[20])["i"])) for r in rows[1:]] \
        == [tuple(x) for x in expected]
    # a ~60 MiB answer through a worker whose peak memory stays where it was
    # (a worker that held the export would grow by its size)
    grown = max(after[pid] - before.get(pid, after[pid]) for pid in after)
    # The sanitizer build keeps freed memory in quarantine: its RSS says
    # nothing of ours (`make test`'s first pass, without it, checks this).
    if "ASAN_OPTIONS" not in os.environ:
        assert grown < 8 * 1024, (before, after)
        assert max(after.values()) < 32 * 1024, after
