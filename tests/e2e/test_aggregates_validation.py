"""test_aggregates_validation.py - every refused query of the aggregates
group: 422 naming the parameter (range, tz (UTC and IANA names only: no
POSIX rules), interval, agent_id, model, percentiles, group_by, metric,
metadata), 400 for a parameter the operation does not take, 404 for an
unknown metric name (listing the valid ones), an unknown or malformed agent
id, and 405 with Allow for other methods."""

import uuid

import pytest

from support import assert_problem, error_fields

pytestmark = pytest.mark.ingest       # some tests make an agent

SUMMARY = "/api/v1/executions/summary"
TIMESERIES = "/api/v1/executions/timeseries"
METRIC_NAMES = ["success_rate", "pass_rate", "total_executions", "avg_latency", "p95_latency",
                "total_cost", "error_rate"]
AGENT = "00000000-0000-4000-8000-000000000000"
METRICS = "/api/v1/agents/{agent}/metrics"   # {agent}: an agent made for the test
# Every aggregates path: whether it takes the filters and tz.
PATHS = {
    SUMMARY: {"filters": True, "tz": True},
    TIMESERIES: {"filters": True, "tz": True},
    "/api/v1/agents/summary": {"filters": False, "tz": False},
    METRICS: {"filters": False, "tz": True},
    "/api/v1/health": {"filters": False, "tz": False},
    "/api/v1/errors/breakdown": {"filters": True, "tz": False},
    "/api/v1/costs/breakdown": {"filters": True, "tz": False},
    "/api/v1/metrics/success_rate": {"filters": True, "tz": True},
    "/api/v1/heatmap": {"filters": True, "tz": True},
}
RANGE_PATHS = sorted(PATHS)

RANGE_ERRORS = [
    ("unknown time_range", {"time_range": "2h"}, {"time_range"}),
    ("time_range empty", {"time_range": ""}, {"time_range"}),
    ("time_range and from", {"time_range": "1h", "from": "2024-03-05T00:00:00Z"},
     {"time_range"}),
    ("from equals to", {"from": "2024-03-05T00:00:00Z", "to": "2024-03-05T00:00:00Z"},
     {"from", "to"}),
    ("from after to", {"from": "2024-03-06T00:00:00Z", "to": "2024-03-05T00:00:00Z"},
     {"from", "to"}),
    ("over 400 days", {"from": "2023-01-01T00:00:00Z", "to": "2024-02-05T00:00:01Z"},
     {"from", "to"}),
    ("from malformed", {"from": "2024-03-05"}, {"from"}),
    ("from not a time", {"from": "yesterday"}, {"from"}),
    ("from without offset", {"from": "2024-03-05T00:00:00"}, {"from"}),
    ("from bad month", {"from": "2024-13-05T00:00:00Z"}, {"from"}),
    ("to malformed", {"from": "2024-03-05T00:00:00Z", "to": "2024-03-06 00:00"}, {"to"}),
    ("to without from", {"to": "2024-03-05T00:00:00Z"}, {"from"}),
]


def fields_of(response):
    return error_fields(response)


@pytest.fixture
def path_of(make_agent):
    """The request path of a PATHS key (an existing agent for {agent})."""
    def real(path):
        if "{agent}" in path:
            return path.format(agent=make_agent()["id"])
        return path
    return real


@pytest.mark.parametrize("path", RANGE_PATHS)
@pytest.mark.parametrize("case, params, fields", RANGE_ERRORS, ids=[c[0] for c in RANGE_ERRORS])
def test_bad_range_is_422_naming_the_parameter(api, path_of, path, case, params, fields):
    got = fields_of(api.get(path_of(path), params=params))
    assert got and got <= fields, got


@pytest.mark.parametrize("path", RANGE_PATHS)
def test_400_days_exactly_is_accepted(api, path_of, path):
    response = api.get(path_of(path), params={"from": "2023-01-01T00:00:00Z",
                                              "to": "2024-02-05T00:00:00Z"})
    assert response.status_code == 200, response.text


@pytest.mark.parametrize("path", [p for p in RANGE_PATHS if PATHS[p]["tz"]])
@pytest.mark.parametrize("tz", ["Mars/Olympus", "Europe/Berlin/x", "Nowhere"])
def test_unknown_tz_is_422_on_tz(api, path_of, path, tz):
    assert fields_of(api.get(path_of(path), params={"tz": tz})) == {"tz"}


# Zone specs PostgreSQL takes but the contract refuses: POSIX rules (with
# their inverted sign: UTC+2 is two hours behind), single-word names,
# PostgreSQL's own files, the posix/ and right/ copies of the database, a name
# in the wrong case, nothing.
NOT_IANA_TZ = ["UTC+2", "EST5EDT,M3.2.0,M11.1.0", "+02:00", "-2", "EST5EDT", "Japan", "GMT",
               "posixrules", "localtime", "posix/Europe/Berlin", "right/Europe/Berlin",
               "europe/berlin", ""]


@pytest.mark.parametrize("path", [p for p in RANGE_PATHS if PATHS[p]["tz"]])
@pytest.mark.parametrize("tz", NOT_IANA_TZ)
def test_tz_that_is_not_an_iana_name_is_422_on_tz(api, path_of, path, tz):
    assert fields_of(api.get(path_of(path), params={"tz": tz})) == {"tz"}


def test_unencoded_plus_offset_tz_is_422_on_tz(api):
    # "+" in a query is a space: the worker reads " 02:00"
    assert fields_of(api.get(SUMMARY + "?tz=+02:00")) == {"tz"}


@pytest.mark.parametrize("tz", ["UTC", "Etc/UTC", "Europe/Berlin",
                                "America/Argentina/Buenos_Aires", "Etc/GMT+2", "US/Pacific"])
def test_utc_and_iana_names_of_two_and_three_parts_are_accepted(api, tz):
    response = api.get(TIMESERIES, params={"tz": tz, "time_range": "24h", "interval": "1h"})
    assert response.status_code == 200, response.text
    assert response.json()["tz"] == tz


def test_etc_gmt_plus_2_keeps_the_iana_sign_two_hours_behind_utc(api):
    response = api.get(TIMESERIES, params={"tz": "Etc/GMT+2", "interval": "1d",
                                           "from": "2024-03-05T00:00:00Z",
                                           "to": "2024-03-06T00:00:00Z"})
    assert response.status_code == 200, response.text
    starts = [point["t"] for point in response.json()["series"][0]["points"]]
    assert starts == ["2024-03-04T02:00:00Z", "2024-03-05T02:00:00Z"]


@pytest.mark.parametrize("path", [p for p in RANGE_PATHS if PATHS[p]["filters"]])
@pytest.mark.parametrize("params, field", [
    ({"agent_id": "not-a-uuid"}, "agent_id"),
    ({"agent_id": [AGENT, "123"]}, "agent_id"),
    ({"agent_id": ""}, "agent_id"),
    ({"model": "m" * 201}, "model"),
    ({"model": ""}, "model"),
    ({"metadata.region": ["eu", "us"]}, "metadata.region"),
    ({"metadata." + "k" * 101: "v"}, "metadata." + "k" * 101),
], ids=["agent_id", "agent_id second", "agent_id empty", "model long", "model empty",
        "metadata twice", "metadata key long"])
def test_bad_filter_is_422_naming_it(api, path, params, field):
    assert fields_of(api.get(path, params=params)) == {field}


@pytest.mark.parametrize("path", [SUMMARY, METRICS])
@pytest.mark.parametrize("value", ["0", "1", "1.5", "-0.1", "abc", "0.5,0.9x",
                                   ",".join(["0.5"] * 11), "NaN", "0.5;0.9"])
def test_bad_percentiles_are_422(api, path_of, path, value):
    assert fields_of(api.get(path_of(path), params={"percentiles": value})) == {"percentiles"}


def test_ten_percentiles_are_accepted(api):
    values = ",".join(["0.02"] + ["0.%d1" % k for k in range(1, 10)])   # none of 0.5, 0.95, 0.99
    response = api.get(SUMMARY, params={"percentiles": values})
    assert response.status_code == 200, response.text
    assert len(response.json()["latency_ms"]["percentiles"]) == 13


@pytest.mark.parametrize("params, field", [
    ({"interval": "2h"}, "interval"), ({"interval": "1H"}, "interval"),
    ({"interval": ""}, "interval"), ({"group_by": "agent_id"}, "group_by"),
    ({"group_by": ""}, "group_by"),
])
def test_bad_timeseries_parameters_are_422(api, params, field):
    assert fields_of(api.get(TIMESERIES, params=params)) == {field}


@pytest.mark.parametrize("path, params, field", [
    ("/api/v1/costs/breakdown", {"group_by": "version"}, "group_by"),
    ("/api/v1/heatmap", {"metric": "cost"}, "metric"),
    ("/api/v1/heatmap", {"metric": ""}, "metric"),
])
def test_bad_choice_is_422(api, path, params, field):
    assert fields_of(api.get(path, params=params)) == {field}


def test_several_bad_parameters_are_all_named(api):
    response = api.get(TIMESERIES, params={"time_range": "2h", "interval": "2h",
                                           "agent_id": "x"})
    assert fields_of(response) >= {"interval", "agent_id"}


# ---------------------------------------------------------------- 400

UNKNOWN = [
    (SUMMARY, "interval"), (SUMMARY, "group_by"), (SUMMARY, "limit"), (SUMMARY, "Tz"),
    (TIMESERIES, "percentiles"), (TIMESERIES, "metric"),
    ("/api/v1/agents/summary", "agent_id"), ("/api/v1/agents/summary", "tz"),
    ("/api/v1/agents/summary", "metadata.region"),
    (METRICS, "agent_id"), (METRICS, "interval"),
    ("/api/v1/health", "tz"), ("/api/v1/health", "model"),
    ("/api/v1/errors/breakdown", "tz"), ("/api/v1/errors/breakdown", "group_by"),
    ("/api/v1/costs/breakdown", "tz"), ("/api/v1/costs/breakdown", "interval"),
    ("/api/v1/metrics/total_cost", "percentiles"), ("/api/v1/heatmap", "interval"),
    ("/api/v1/heatmap", "cursor"),
]


@pytest.mark.parametrize("path, name", UNKNOWN, ids=["%s %s" % u for u in UNKNOWN])
def test_a_parameter_the_operation_does_not_take_is_400(api, path_of, path, name):
    body = assert_problem(api.get(path_of(path), params={name: "1"}), 400, "bad-request")
    assert name in body["detail"]


def test_include_data_must_be_true_or_false(api):
    response = api.get("/api/v1/dashboards/default", params={"include_data": "yes"})
    body = assert_problem(response, 400, "bad-request")
    assert "include_data" in body["detail"]


# ---------------------------------------------------------------- 404, 405

@pytest.mark.parametrize("name", ["unknown", "success-rate", "SUCCESS_RATE", "total"])
def test_unknown_metric_is_404_listing_the_names(api, name):
    body = assert_problem(api.get("/api/v1/metrics/" + name), 404, "not-found")
    for valid in METRIC_NAMES:
        assert valid in body["detail"], body["detail"]


@pytest.mark.parametrize("agent", [str(uuid.uuid4()), "not-a-uuid", "12345"])
def test_unknown_or_malformed_agent_is_404(api, agent):
    assert_problem(api.get("/api/v1/agents/%s/metrics" % agent), 404, "not-found")


@pytest.mark.parametrize("path", [p.format(agent=AGENT) for p in sorted(PATHS)] + [
    "/api/v1/dashboards/%s/widgets/%s/data" % (AGENT, AGENT)])
@pytest.mark.parametrize("method", ["POST", "PUT", "PATCH", "DELETE"])
def test_other_methods_are_405_with_allow(api, path, method):
    response = api.request(method, path, json={})
    assert_problem(response, 405, "method-not-allowed")
    allowed = {m.strip() for m in response.headers["Allow"].split(",")}
    assert "GET" in allowed and method not in allowed
