"""support.py - helpers of the end-to-end suite: stack settings, HTTP client,
OpenAPI checker, database probe and problem+json assertions."""

import contextlib
import datetime
import decimal
import json as jsonlib
import os
import re
import shlex
import threading
import time
import urllib.parse
import uuid
from pathlib import Path

import jsonschema
import psycopg2
import psycopg2.sql
import requests
import yaml

ROOT = Path(__file__).resolve().parents[2]
OPENAPI_PATH = ROOT / "docs" / "openapi.yaml"
STACK_SCRIPT = ROOT / "deploy" / "stack.sh"

UUID_RE = re.compile(r"^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$")
TIMESTAMP_RE = re.compile(
    r"^[0-9]{4}-[0-9]{2}-[0-9]{2}T[0-9]{2}:[0-9]{2}:[0-9]{2}(\.[0-9]{1,6})?Z$")
SECURITY_HEADERS = {
    "X-Content-Type-Options": "nosniff",
    "X-Frame-Options": "DENY",
    "Referrer-Policy": "no-referrer",
}
HTTP_METHODS = ("get", "put", "post", "delete", "options", "head", "patch", "trace")


# ---------------------------------------------------------------- settings

class Stack:
    """The running stack, as described by the environment that
    tests/run-e2e.sh exports from VARDIR/stack.env. When only VARDIR is set,
    VARDIR/stack.env is read here instead."""

    def __init__(self, env):
        self.env = env
        self.base_url = env["BASE_URL"].rstrip("/")
        self.vardir = Path(env["VARDIR"])
        self.workers = int(env.get("WORKERS", "4"))
        self.key = env.get("FLEETDASH_KEY", "")

    @classmethod
    def load(cls):
        env = dict(os.environ)
        if "BASE_URL" not in env and "VARDIR" in env:
            env.update(read_stack_env(Path(env["VARDIR"]) / "stack.env"))
        missing = [k for k in ("BASE_URL", "VARDIR", "PGHOST", "PGPORT") if k not in env]
        if missing:
            raise RuntimeError(
                "no stack settings (%s); run tests/run-e2e.sh VARDIR" % ", ".join(missing))
        return cls(env)

    def pid_file(self, group):
        return self.vardir / "run" / ("%s.pid" % group)

    def log_file(self, group):
        return self.vardir / "log" / ("%s.log" % group)


def read_stack_env(path):
    """Parse the `export K=V` lines of a stack.env file into a dict."""
    values = {}
    for line in path.read_text().splitlines():
        words = shlex.split(line, comments=True)
        if words[:1] == ["export"]:
            words = words[1:]
        for word in words:
            key, sep, value = word.partition("=")
            if sep:
                values[key] = value
    return values


# ---------------------------------------------------------------- OpenAPI

def _format_checker():
    checker = jsonschema.FormatChecker(formats=())

    @checker.checks("uuid", raises=ValueError)
    def is_uuid(value):
        return not isinstance(value, str) or bool(UUID_RE.match(value))

    @checker.checks("date-time", raises=ValueError)
    def is_date_time(value):
        return not isinstance(value, str) or bool(TIMESTAMP_RE.match(value))

    return checker


class OpenApi:
    """docs/openapi.yaml, and checks of real requests and responses against it."""

    def __init__(self, path=OPENAPI_PATH):
        self.doc = yaml.safe_load(Path(path).read_text())
        self.resolver = jsonschema.RefResolver.from_schema(self.doc)
        self.format_checker = _format_checker()
        self.templates = sorted(self.doc["paths"], key=lambda t: t.count("{"))

    def resolve(self, node):
        """Follow $ref chains of a non-schema object (response, header, parameter)."""
        while isinstance(node, dict) and "$ref" in node:
            node = self.resolver.resolve(node["$ref"])[1]
        return node

    def validator(self, schema):
        return jsonschema.Draft202012Validator(
            schema, resolver=self.resolver, format_checker=self.format_checker)

    def check_schema(self, schema, instance, what):
        errors = sorted(self.validator(schema).iter_errors(instance),
                        key=lambda e: [str(part) for part in e.absolute_path])
        if errors:
            lines = ["%s: %s at %s" % (what, e.message, "/".join(map(str, e.absolute_path)))
                     for e in errors[:5]]
            raise AssertionError("\n".join(lines) + "\ninstance: " + _short(instance))

    def template_for(self, path):
        """The documented path template that matches `path` (literal segments
        win over parameters), or None."""
        segments = path.split("/")
        for template in self.templates:
            parts = template.split("/")
            if len(parts) == len(segments) and all(
                    p == s or (p.startswith("{") and p.endswith("}") and s)
                    for p, s in zip(parts, segments)):
                return template
        return None

    def response_spec(self, method, template, status):
        """The documented response object for (method, template, status). A path
        that matches no template must be a 404, a method the path lacks a 405."""
        responses = self.doc["components"]["responses"]
        if status == 414:
            return responses["UriTooLong"]
        if template is None:
            assert status == 404, "no documented path, status %d" % status
            return responses["NotFound"]
        operation = self.doc["paths"][template].get(method.lower())
        if operation is None:
            assert status == 405, "%s %s is not documented, status %d" % (
                method, template, status)
            return responses["MethodNotAllowed"]
        spec = operation["responses"].get(str(status))
        assert spec is not None, "%s %s: status %d is not documented" % (
            method, template, status)
        return self.resolve(spec)

    def check_response(self, response, template=None):
        """Assert that a requests.Response matches the document: status is
        documented for the operation, every required header is present and well
        formed, the content type is documented and the body matches its schema
        (or there is no body when none is documented)."""
        method = response.request.method
        path = urllib.parse.urlsplit(response.request.url).path
        if template is None:
            template = self.template_for(path)
        spec = self.response_spec(method, template, response.status_code)
        where = "%s %s -> %d" % (method, path, response.status_code)
        for name, header in spec.get("headers", {}).items():
            header = self.resolve(header)
            value = response.headers.get(name)
            if value is None:
                assert not header.get("required"), "%s: header %s missing" % (where, name)
                continue
            self.check_schema(header.get("schema", {}), value, "%s header %s" % (where, name))
        content = spec.get("content")
        if not content:
            assert response.content == b"", "%s: undocumented body %r" % (
                where, response.content[:200])
            return
        media_type = response.headers.get("Content-Type", "").split(";")[0].strip().lower()
        assert media_type in content, "%s: content type %r, documented %s" % (
            where, media_type, sorted(content))
        if media_type.startswith("text/"):
            self.check_schema(content[media_type]["schema"], response.text, where)
            return
        try:
            body = response.json()
        except ValueError:
            raise AssertionError("%s: body is not JSON: %r" % (where, response.content[:200]))
        self.check_schema(content[media_type]["schema"], body, where)

    def check_request_body(self, method, path, body):
        """Assert that a body the server accepted is valid for the document too."""
        template = self.template_for(path)
        operation = self.doc["paths"].get(template, {}).get(method.lower(), {})
        request_body = self.resolve(operation.get("requestBody"))
        if not request_body:
            return
        schema = request_body["content"]["application/json"]["schema"]
        self.check_schema(schema, body, "accepted request body of %s %s" % (method, template))


def _short(value, limit=600):
    text = jsonlib.dumps(value, ensure_ascii=False) if not isinstance(value, str) else value
    return text if len(text) <= limit else text[:limit] + "..."


# ---------------------------------------------------------------- HTTP client

_NO_JSON = object()


class Client:
    """HTTP client of the API. Every response is checked against the OpenAPI
    document unless validate=False; a body the server accepted (2xx) is
    checked against the documented request schema. One requests.Session per
    thread. Asks for uncompressed bodies, so that ETags stay strong (nginx
    turns them weak when it compresses)."""

    def __init__(self, base_url, openapi, key=None):
        self.base_url = base_url
        self.openapi = openapi
        self.key = key
        self.local = threading.local()

    def session(self):
        if not hasattr(self.local, "session"):
            self.local.session = requests.Session()
            self.local.session.headers["Accept-Encoding"] = "identity"
            if self.key:
                self.local.session.headers["Authorization"] = "Bearer " + self.key
        return self.local.session

    def with_key(self, key):
        """The same client calling with another API key (None: no key)."""
        return Client(self.base_url, self.openapi, key)

    def url(self, path):
        return self.base_url + path

    def request(self, method, path, json=_NO_JSON, data=None, headers=None,
                params=None, validate=True, timeout=15):
        headers = dict(headers or {})
        if json is not _NO_JSON:
            data = jsonlib.dumps(json).encode()
            headers.setdefault("Content-Type", "application/json")
        response = self.session().request(method, self.url(path), data=data, headers=headers,
                                          params=params, timeout=timeout)
        if validate:
            self.openapi.check_response(response)
            if json is not _NO_JSON and 200 <= response.status_code < 300:
                self.openapi.check_request_body(method, path, json)
        return response

    def get(self, path, **kw):
        return self.request("GET", path, **kw)

    def post(self, path, **kw):
        return self.request("POST", path, **kw)

    def put(self, path, **kw):
        return self.request("PUT", path, **kw)

    def patch(self, path, **kw):
        return self.request("PATCH", path, **kw)

    def delete(self, path, **kw):
        return self.request("DELETE", path, **kw)

    def post_ndjson(self, path, body, headers=None, timeout=120, **kw):
        """POST an application/x-ndjson body: bytes (sent with Content-Length),
        or an iterable of byte chunks (sent chunked, as it is produced). The
        response is checked against the document like any other."""
        headers = dict(headers or {})
        headers.setdefault("Content-Type", "application/x-ndjson")
        return self.request("POST", path, data=body, headers=headers, timeout=timeout, **kw)


# ---------------------------------------------------------------- database

class Database:
    """A psycopg2 connection to the stack's database (autocommit), reopened
    when the server went away (pg-stop in the supervision tests)."""

    def __init__(self, stack):
        self.params = dict(host=stack.env["PGHOST"], port=stack.env["PGPORT"],
                           dbname=stack.env.get("PGDATABASE", "fleetdash"),
                           user=stack.env.get("PGUSER", "postgres"))
        self.conn = None
        self._widget_table = None

    def connect(self):
        """A new connection that the caller owns (and closes)."""
        return psycopg2.connect(**self.params)

    def cursor(self):
        if self.conn is not None and not self.conn.closed:
            try:
                with self.conn.cursor() as cur:
                    cur.execute("SELECT 1")
            except psycopg2.Error:
                self.conn.close()
        if self.conn is None or self.conn.closed:
            self.conn = self.connect()
            self.conn.autocommit = True
        return self.conn.cursor()

    def close(self):
        if self.conn is not None:
            self.conn.close()

    def rows(self, statement, params=None):
        with self.cursor() as cur:
            cur.execute(statement, params)
            return cur.fetchall()

    def scalar(self, statement, params=None):
        rows = self.rows(statement, params)
        assert len(rows) == 1 and len(rows[0]) == 1, rows
        return rows[0][0]

    def execute(self, statement, params=None):
        with self.cursor() as cur:
            cur.execute(statement, params)

    def execute_retrying(self, statement, params=None, attempts=5):
        """execute, tried again when PostgreSQL cancelled it to end a
        deadlock: the alerts group's jobs read alerts, notifications and
        receivers all the time, and a TRUNCATE's exclusive locks, taken
        table by table, can meet one of their statements the other way
        round."""
        for attempt in range(attempts):
            try:
                return self.execute(statement, params)
            except psycopg2.errors.DeadlockDetected:
                if attempt == attempts - 1:
                    raise
                time.sleep(0.05)

    def truncate_dashboards(self):
        self.execute("TRUNCATE dashboards CASCADE")

    # Every table the ingest group writes is agents, executions or problems,
    # or references one of them, or keeps idempotency keys.
    INGEST_ROOTS = ("agents", "executions", "problems")

    @property
    def ingest_tables(self):
        """Those tables and every table that references one of them, in an
        order that deletes referencing rows first."""
        if getattr(self, "_ingest_tables", None) is None:
            tables = {r[0] for r in self.rows(
                "SELECT c.oid::regclass::text FROM pg_class c "
                "JOIN pg_namespace n ON n.oid = c.relnamespace "
                "WHERE c.relkind IN ('r', 'p') AND n.nspname = current_schema() "
                "AND (c.relname = ANY (%s) OR c.relname LIKE '%%idempot%%')",
                (list(self.INGEST_ROOTS),))}
            refs = {(a, b) for a, b in self.rows(
                "SELECT conrelid::regclass::text, confrelid::regclass::text "
                "FROM pg_constraint WHERE contype = 'f'") if a != b}
            # executions' references are triggers, not constraints (sql/functions/01_core.sql)
            refs |= {("executions", "agents"), ("executions", "agent_versions")}
            while True:
                more = {a for a, b in refs if b in tables} - tables
                if not more:
                    break
                tables |= more
            order = []
            while tables:
                free = sorted(t for t in tables
                              if not any(b == t and a in tables for a, b in refs))
                assert free, "reference cycle among %r" % tables
                order += free
                tables -= set(free)
            self._ingest_tables = order
        return self._ingest_tables

    def truncate_ingest(self):
        """Empty the agents, their versions, executions, problems,
        proposals, experiments, deployments (and alerts, which reference
        them), and the stored Idempotency-Key answers; then the rollups of
        the aggregates (rollup_reset(), when that function exists). Small
        tables are emptied with DELETE (much cheaper than TRUNCATE), big ones
        with TRUNCATE."""
        tables = self.ingest_tables
        sizes = self.rows(" UNION ALL ".join(
            "(SELECT count(*) FROM (SELECT 1 FROM %s LIMIT 5001) t)" % t for t in tables))
        total = sum(size for size, in sizes)
        if total == 0:
            return
        statement = ("TRUNCATE %s CASCADE" % ", ".join(tables) if total > 5000
                     else "".join("DELETE FROM %s;" % t for t in tables))
        self.execute_retrying(statement)
        if self.has_rollups:
            self.execute_retrying("SELECT rollup_reset()")

    @property
    def has_rollups(self):
        """Whether the aggregates' rollups exist (sql/006_aggregates.sql)."""
        if getattr(self, "_has_rollups", None) is None:
            self._has_rollups = self.scalar(
                "SELECT to_regprocedure('rollup_reset()') IS NOT NULL")
        return self._has_rollups

    @contextlib.contextmanager
    def rollups_paused(self):
        """Inside the block no rollup_refresh() folds anything (the
        maintenance job's calls answer -1), so what is ingested stays a
        pending delta: holds the advisory lock rollup_refresh() takes, in a
        transaction of a connection of its own."""
        conn = self.connect()
        try:
            with conn.cursor() as cur:
                cur.execute("SELECT pg_advisory_xact_lock(hashtext('fleetdash.rollup_refresh'))")
            yield
        finally:
            conn.rollback()
            conn.close()

    def rollup_refresh(self):
        """Fold every pending delta into the rollups now: rollup_refresh()
        until it gets the lock (-1: the maintenance job holds it). Returns the
        rows it folded."""
        for _ in range(200):
            folded = self.scalar("SELECT rollup_refresh()")
            if folded >= 0:
                return folded
            time.sleep(0.02)
        raise AssertionError("rollup_refresh() never got its lock")

    def count(self, table, where="TRUE", params=None):
        """Rows of `table` (a trusted name) matching `where`."""
        return self.scalar("SELECT count(*) FROM %s WHERE %s" % (table, where), params)

    def row(self, statement, params=None):
        """The one row of a query, as a dict."""
        with self.cursor() as cur:
            cur.execute(statement, params)
            rows = cur.fetchall()
            assert len(rows) == 1, rows
            return dict(zip([d.name for d in cur.description], rows[0]))

    @property
    def widget_table(self):
        """The table that references dashboards (the widgets)."""
        if self._widget_table is None:
            names = self.rows("SELECT conrelid::regclass::text FROM pg_constraint "
                              "WHERE contype = 'f' AND confrelid = 'dashboards'::regclass")
            assert len(names) == 1, "expected one table referencing dashboards: %r" % names
            self._widget_table = names[0][0]
        return self._widget_table

    def count_dashboards(self, where="TRUE", params=None):
        return self.scalar("SELECT count(*) FROM dashboards WHERE " + where, params)

    def count_widgets(self, dashboard_id=None):
        table = psycopg2.sql.SQL(self.widget_table)
        if dashboard_id is None:
            return self.scalar(psycopg2.sql.SQL("SELECT count(*) FROM {}").format(table))
        return self.scalar(psycopg2.sql.SQL(
            "SELECT count(*) FROM {} WHERE dashboard_id = %s").format(table), (dashboard_id,))

    def widget_ids(self, dashboard_id):
        table = psycopg2.sql.SQL(self.widget_table)
        return {str(r[0]) for r in self.rows(psycopg2.sql.SQL(
            "SELECT id FROM {} WHERE dashboard_id = %s").format(table), (dashboard_id,))}

    def snapshot(self):
        """Row count and content checksum of every user table but the
        rollups and their bookkeeping (rollup_*): derived data that the
        stack's maintenance group refreshes every second, whatever a test
        does; nor group_heartbeats and the workers' counters (metrics_*),
        which every group's workers move every few seconds (/readyz,
        /metrics); nor agent_silence and the feed's
        events of agents going silent and coming back, which the
        maintenance job writes when the clock says so (an agent of an
        earlier test falls silent at any moment). The activity feed's two
        tables count as one: the maintenance job moves staged events into
        the feed at any moment, so what is compared is the number of events
        of both (the feed is append-only). Nor the audit log, which any
        successful write adds to (an empty PATCH too; test_access.py
        checks it by request id), nor api_key_usage (when a key was last
        used, written by any use of a key, a read included), nor the live
        streams' tables (stream_*: the publisher job writes them whenever the
        feed or the state moved, and a subscriber's connect notes its
        channel), nor answer_cache (the aggregates' answers shared between
        workers: a read stores one, the maintenance job prunes them)."""
        tables = self.rows(
            "SELECT n.nspname, c.relname FROM pg_class c "
            "JOIN pg_namespace n ON n.oid = c.relnamespace "
            "WHERE c.relkind IN ('r', 'p') "
            "AND n.nspname NOT IN ('pg_catalog', 'information_schema') "
            "AND n.nspname NOT LIKE 'pg_toast%' AND n.nspname NOT LIKE 'pg_temp%' "
            "AND c.relname NOT LIKE 'rollup\\_%' AND c.relname <> 'group_heartbeats' "
            "AND c.relname NOT LIKE 'metrics\\_%' AND c.relname NOT LIKE 'stream\\_%' "
            "AND c.relname NOT IN ('activity_staged', 'activity_events', 'agent_silence', "
            "'audit_log', 'api_key_usage', 'answer_cache') "
            "ORDER BY 1, 2")
        result = {}
        if self.scalar("SELECT to_regclass('activity_events') IS NOT NULL"):
            # the feed is append-only (the sequencer only moves rows from
            # staged to events): its count says whether a block added one,
            # and costs an index scan where a checksum of every event (tens
            # of thousands after the demo fleet's tests) cost a second
            result["activity"] = self.rows(
                "SELECT count(*) FROM (SELECT type, status FROM activity_staged UNION ALL "
                "SELECT type, status FROM activity_events) e "
                "WHERE (e.type, e.status) NOT IN (('agent', 'silent'), ('agent', 'back'))")[0]
        # one statement for every table (a round trip each cost more)
        statement = psycopg2.sql.SQL(" UNION ALL ").join(
            psycopg2.sql.SQL(
                "(SELECT {}, count(*), md5(coalesce(string_agg(t::text, ',' ORDER BY t::text), "
                "'')) FROM {}.{} t)").format(
                psycopg2.sql.Literal("%s.%s" % (schema, table)),
                psycopg2.sql.Identifier(schema), psycopg2.sql.Identifier(table))
            for schema, table in tables)
        for name, count, checksum in (self.rows(statement) if tables else []):
            result[name] = (count, checksum)
        return result

    @contextlib.contextmanager
    def unchanged(self):
        """Assert that the block leaves every table exactly as it found it."""
        before = self.snapshot()
        yield
        after = self.snapshot()
        changed = {t: (before.get(t), after.get(t)) for t in set(before) | set(after)
                   if before.get(t) != after.get(t)}
        assert not changed, "database changed (rows, md5) before/after: %r" % changed


# ---------------------------------------------------------------- assertions

def assert_problem(response, status, slug):
    """Assert a problem+json answer with this status and type, whose
    request_id equals X-Request-Id and whose instance is the request path.
    Returns the body."""
    assert response.status_code == status, (response.status_code, response.text[:500])
    media_type = response.headers.get("Content-Type", "").split(";")[0].strip()
    assert media_type == "application/problem+json", media_type
    body = response.json()
    assert body["type"] == "/problems/" + slug, body
    assert body["status"] == status, body
    assert body["request_id"] == response.headers["X-Request-Id"], body
    assert body["instance"] == urllib.parse.urlsplit(response.request.url).path, body
    return body


def error_fields(response):
    """The set of `field` values of a 422 answer (asserted to be one)."""
    body = assert_problem(response, 422, "validation")
    return {error["field"] for error in body["errors"]}


DROP = object()   # a field value meaning "leave this field out"


def ingest_errors(response):
    """The (line, field) pairs of a 422 answer of POST /executions."""
    body = assert_problem(response, 422, "validation")
    return [(error.get("line"), error["field"]) for error in body["errors"]]


def utc(moment):
    """An aware datetime as RFC 3339 UTC text with Z."""
    return moment.astimezone(datetime.timezone.utc).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def api_time(moment):
    """An aware datetime as every answer writes it (api_time() in SQL): RFC 3339
    UTC, the fraction's trailing zeros cut and no fraction on a whole second."""
    return utc(moment).replace("Z", "").rstrip("0").rstrip(".") + "Z"


def log_records(text):
    """The records of a log (one JSON object per line, fcgi/log.c and
    nginx.conf's access log), lines that are not one left out."""
    records = []
    for line in text.splitlines():
        try:
            record = jsonlib.loads(line)
        except ValueError:
            continue
        if isinstance(record, dict):
            records.append(record)
    return records


def now_utc():
    return datetime.datetime.now(datetime.timezone.utc)


def etag(version):
    return '"%d"' % version


def parse_time(text):
    """A response timestamp as an aware datetime."""
    assert TIMESTAMP_RE.match(text), text
    return datetime.datetime.fromisoformat(text.replace("Z", "+00:00"))


# ---------------------------------------------------------------- aggregates

MODELS = ("model-a", "model-b", "model-c")
ERROR_CATEGORIES = ("timeout", "tool_error", "rate_limit")


def gen_executions(rng, n, start, end, agent_ids, models=MODELS):
    """n deterministic (rng: a random.Random) executions started in
    [start, end), of these agents and models: realistic latencies
    (log-normal, ms), tokens, costs (6 decimals), outcomes with error
    categories, evaluations on three in four, metadata region and tier."""
    span_ms = int((end - start).total_seconds() * 1000)
    executions = []
    for _ in range(n):
        status = rng.choices(("succeeded", "failed", "timeout", "cancelled"), (80, 10, 6, 4))[0]
        execution = {
            "id": str(uuid.UUID(int=rng.getrandbits(128), version=4)),
            "agent_id": rng.choice(agent_ids), "model": rng.choice(models),
            "started_at": utc(start + datetime.timedelta(milliseconds=rng.randrange(span_ms))),
            "latency_ms": min(int(rng.lognormvariate(7, 0.7)), 86400000), "status": status,
            "prompt_tokens": rng.randrange(5000), "completion_tokens": rng.randrange(2000),
            "cache_read_tokens": rng.randrange(3000), "cost_usd": rng.randrange(500000) / 1e6,
            "metadata": {"region": rng.choice(("eu", "us", "ap")), "tier": rng.choice((1, 2))}}
        if status != "succeeded":
            execution["error"] = {"category": rng.choice(ERROR_CATEGORIES),
                                  "message": "%s after %d ms" % (status, execution["latency_ms"])}
        if rng.random() < 0.75:
            execution["evaluation"] = {"passed": rng.random() < (0.9 if status == "succeeded"
                                                                 else 0.1)}
        executions.append(execution)
    return executions


def post_executions(api, executions):
    """POST executions as JSON batches of at most 1,000; asserts all stored."""
    for first in range(0, len(executions), 1000):
        batch = executions[first:first + 1000]
        response = api.post("/api/v1/executions", json=batch)
        assert response.status_code == 200, response.text[:2000]
        assert response.json()["inserted"] == len(batch), response.text[:500]


def started(execution):
    """The started_at of an execution dict, as an aware datetime."""
    return datetime.datetime.fromisoformat(execution["started_at"].replace("Z", "+00:00"))


def in_range(executions, start, end):
    """The executions started in [start, end)."""
    return [e for e in executions if start <= started(e) < end]


def usd(value):
    """A JSON cost as a Decimal with the 6 decimals that costs are stored with."""
    return decimal.Decimal(repr(value)).quantize(decimal.Decimal("0.000001"))


def is_success(execution):
    """Whether an execution dict is a success: its evaluation passed, or,
    without an evaluation, its status is succeeded (execution_success() of
    sql/functions/01_core.sql)."""
    if "evaluation" in execution:
        return execution["evaluation"]["passed"]
    return execution["status"] == "succeeded"


def expected_summary(executions):
    """The exact figures of the summary of these executions."""
    total = len(executions)
    successes = sum(1 for e in executions if is_success(e))
    evaluated = [e for e in executions if "evaluation" in e]
    passed = sum(1 for e in evaluated if e["evaluation"]["passed"])
    latencies = [e["latency_ms"] for e in executions]
    cost = sum((decimal.Decimal(repr(e.get("cost_usd", 0))) for e in executions),
               decimal.Decimal(0))
    tokens_in = sum(e.get("prompt_tokens", 0) for e in executions)
    tokens_out = sum(e.get("completion_tokens", 0) for e in executions)
    return {
        "total": total, "successes": successes, "evaluated": len(evaluated), "passed": passed,
        "failed": len(evaluated) - passed,
        "errors": sum(1 for e in executions if e["status"] != "succeeded"),
        "success_rate": successes / total if total else None,
        "pass_rate": passed / len(evaluated) if evaluated else None,
        "latency_min": min(latencies) if latencies else None,
        "latency_max": max(latencies) if latencies else None,
        "latency_avg": sum(latencies) / total if total else None,
        "cost_total": cost.quantize(decimal.Decimal("0.000001")),
        "tokens": {"input": tokens_in, "output": tokens_out,
                   "cache_read": sum(e.get("cache_read_tokens", 0) for e in executions),
                   "total": tokens_in + tokens_out}}


def exact_percentiles(db, quantiles, where="TRUE", params=()):
    """percentile_cont(quantiles) of latency_ms over the stored executions
    matching `where` (trusted SQL text with %s placeholders)."""
    return db.scalar("SELECT percentile_cont(%%s::float8[]) WITHIN GROUP (ORDER BY latency_ms) "
                     "FROM executions WHERE %s" % where, (list(quantiles),) + tuple(params))


def assert_within(got, exact, relative=0.01, what="value"):
    """got is within `relative` error of exact."""
    assert got is not None, what
    assert abs(got - exact) <= relative * abs(exact), "%s: %r, exact %r" % (what, got, exact)


def assert_percentile(db, got, q, where="TRUE", params=(), what=None):
    """got is latency percentile q of the stored executions matching
    `where`: within 1 % of percentile_cont where at least 50 rows lie beyond
    q on either side; in a sparser tail, where the gap between two
    neighbouring rows alone can exceed 1 %, between percentile_cont at two
    rows below and two rows above q."""
    n = db.scalar("SELECT count(latency_ms) FROM executions WHERE %s" % where, tuple(params))
    what = what or "p%g" % (100 * q)
    if n * min(q, 1 - q) >= 50:
        exact = exact_percentiles(db, (q,), where, params)[0]
        assert_within(got, exact, what="%s of %d rows" % (what, n))
    else:
        step = 2.0 / max(n - 1, 1)
        low, high = exact_percentiles(db, (max(q - step, 0), min(q + step, 1)), where, params)
        assert got is not None and low <= got <= high, "%s of %d rows: %r not in [%r, %r]" % (
            what, n, got, low, high)
