"""conftest.py - fixtures of the end-to-end suite: the stack, the API client
(which checks every response against docs/openapi.yaml), the database, and
an empty dashboards table before every test."""

import pytest

from support import Client, Database, OpenApi, Stack, etag


def pytest_configure(config):
    config.addinivalue_line("markers", "nostack: the test needs no running stack")


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
    return Client(stack.base_url, openapi)


@pytest.fixture(scope="session")
def db(stack):
    database = Database(stack)
    yield database
    database.close()


@pytest.fixture(autouse=True)
def clean_tables(request):
    """Every test starts with no dashboards and no widgets."""
    if request.node.get_closest_marker("nostack"):
        return
    request.getfixturevalue("db").truncate_dashboards()


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
