"""conftest.py - fixtures of the end-to-end suite: the stack, the API client
(which checks every response against docs/openapi.yaml), the database, an
empty dashboards table before every test, empty ingest tables around every
test marked `ingest`, and factories of dashboards, widgets, agents, versions
and executions."""

import datetime
import uuid

import pytest

from support import DROP, Client, Database, OpenApi, Stack, etag, now_utc, utc


def pytest_configure(config):
    config.addinivalue_line("markers", "nostack: the test needs no running stack")
    config.addinivalue_line("markers", "ingest: the test starts and ends with empty ingest "
                            "tables (agents, executions, ... idempotency keys, rollups)")


def pytest_collection_modifyitems(items):
    """Supervision tests kill and restart processes: run them last."""
    items.sort(key=lambda item: item.fspath.basename == "test_supervision.py")


@pytest.fixture(scope="session")
def openapi():
    return OpenApi()


@pytest.fixture(scope="session")
def stack():
    return Stack.load()


@pytest.fixture(scope="session")
def api(stack, openapi):
    return Client(stack.base_url, openapi, stack.key)


@pytest.fixture(scope="session")
def db(stack):
    database = Database(stack)
    yield database
    database.close()


@pytest.fixture(autouse=True)
def clean_tables(request):
    """Every test starts with no dashboards and no widgets; a test marked
    `ingest` also starts and ends with empty ingest tables."""
    if request.node.get_closest_marker("nostack"):
        yield
        return
    db = request.getfixturevalue("db")
    db.truncate_dashboards()
    if request.node.get_closest_marker("ingest"):
        db.truncate_ingest()
        yield
        db.truncate_ingest()   # big tables would slow every later snapshot
    else:
        yield


@pytest.fixture
def make_dashboard(api):
    """Create a dashboard through the API; returns its body."""
    def make(name="Ops", **fields):
        response = api.post("/api/v1/dashboards", json=dict(name=name, **fields))
        assert response.status_code == 201, response.text
        return response.json()
    return make


@pytest.fixture
def make_widget(api):
    """Add a widget to a dashboard through the API; returns its body."""
    def make(dashboard_id, type="metric_card", title="Widget", **fields):
        response = api.post("/api/v1/dashboards/%s/widgets" % dashboard_id,
                            json=dict(type=type, title=title, **fields))
        assert response.status_code == 201, response.text
        return response.json()
    return make


@pytest.fixture
def get_dashboard(api):
    """The current body of a dashboard, asserted to exist."""
    def get(dashboard_id):
        response = api.get("/api/v1/dashboards/%s" % dashboard_id)
        assert response.status_code == 200, response.text
        assert response.headers["ETag"] == etag(response.json()["version"])
        return response.json()
    return get


# ---------------------------------------------------------------- ingest

@pytest.fixture
def make_agent(api):
    """Register an agent through the API (201 asserted); returns its body."""
    def make(name=None, **fields):
        name = name or "agent-%s" % uuid.uuid4().hex[:12]
        response = api.post("/api/v1/agents", json=dict(name=name, **fields))
        assert response.status_code == 201, response.text
        return response.json()
    return make


@pytest.fixture
def make_version(api):
    """Record a version of an agent through the API; returns its body."""
    def make(agent_id, version="v1", **fields):
        response = api.post("/api/v1/agents/%s/versions" % agent_id,
                            json=dict(version=version, **fields))
        assert response.status_code == 201, response.text
        return response.json()
    return make


@pytest.fixture
def execution():
    """A valid execution (by agent_name "ingest-agent" unless agent_id is
    given), started an hour ago, updated with `fields`; a field set to
    DROP is left out."""
    def make(**fields):
        body = {"agent_name": "ingest-agent", "model": "gpt-test",
                "started_at": utc(now_utc() - datetime.timedelta(hours=1)),
                "latency_ms": 1200, "status": "succeeded"}
        if "agent_id" in fields:
            body.pop("agent_name")
        if "finished_at" in fields:
            body.pop("latency_ms")
        body.update(fields)
        return {k: v for k, v in body.items() if v is not DROP}
    return make


@pytest.fixture
def ingest(api):
    """POST /executions with a JSON body (object or array); 200 asserted unless
    expect is given. Returns the response."""
    def post(body, expect=200, headers=None):
        response = api.post("/api/v1/executions", json=body, headers=headers)
        if expect is not None:
            assert response.status_code == expect, response.text[:2000]
        return response
    return post
