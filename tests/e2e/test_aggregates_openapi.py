"""test_aggregates_openapi.py - the aggregates part of docs/openapi.yaml:
every path, parameter and enum of the contract, the documented meaning of
success_rate and of rollups vs raw rows, strict response schemas, and the
checker refusing wrong shapes (needs no stack)."""

import copy

import pytest

from support import OPENAPI_PATH
from test_openapi_document import DASHBOARD, fake_response

pytestmark = pytest.mark.nostack

AGENT = "8b7ca314-e52f-4777-9bc9-c9941e55d659"
RANGE = {"from": "2024-03-05T00:00:00Z", "to": "2024-03-06T00:00:00Z"}
RANGE_PARAMS = ["time_range", "from", "to"]
FILTERS = ["agent_id", "model", "metadata.KEY"]
# template -> the query parameters it takes (besides path parameters)
PARAMETERS = {
    "/api/v1/executions/summary": RANGE_PARAMS + ["tz"] + FILTERS + ["percentiles"],
    "/api/v1/executions/timeseries": RANGE_PARAMS + ["tz"] + FILTERS + ["interval", "group_by"],
    "/api/v1/agents/summary": RANGE_PARAMS,
    "/api/v1/agents/{id}/metrics": RANGE_PARAMS + ["tz", "percentiles", "model", "metadata.KEY"],
    "/api/v1/health": RANGE_PARAMS,
    "/api/v1/errors/breakdown": RANGE_PARAMS + FILTERS,
    "/api/v1/costs/breakdown": RANGE_PARAMS + FILTERS + ["group_by"],
    "/api/v1/metrics/{name}": RANGE_PARAMS + ["tz"] + FILTERS,
    "/api/v1/heatmap": RANGE_PARAMS + ["tz"] + FILTERS + ["metric"],
    "/api/v1/dashboards/{id}/widgets/{wid}/data": [],
}
ENUMS = {
    "time_range": ["1h", "6h", "24h", "7d", "30d"],
    "interval": ["1m", "5m", "15m", "1h", "6h", "1d", "auto"],
    "group_by": ["agent", "model"],
    "metric": ["executions", "error_rate", "p95_latency"],
    "name": ["success_rate", "pass_rate", "total_executions", "avg_latency", "p95_latency",
             "total_cost", "error_rate"],
}
RESPONSE_SCHEMAS = ["ExecutionSummary", "Timeseries", "TimeseriesPoint", "TimeseriesSeries",
                    "AgentStatusItem", "AgentSummaryList", "AgentMetrics", "SystemHealth",
                    "ErrorBreakdown", "ErrorBreakdownItem", "CostBreakdown", "CostBreakdownItem",
                    "MetricValue", "Heatmap", "LatencyStats", "TokenTotals", "ResolvedRange",
                    "MetricCardData", "LineChartData", "BarChartData", "PieChartData",
                    "TableData", "GaugeData", "AlertListData", "StatusBoardData",
                    "WidgetDataResponse", "WidgetWithData", "DashboardWithData"]


def parameters(openapi, template):
    item = openapi.doc["paths"][template]
    found = [openapi.resolve(p) for p in item.get("parameters", []) + item["get"].get(
        "parameters", [])]
    return {p["name"]: p for p in found}


@pytest.mark.parametrize("template", sorted(PARAMETERS))
def test_operation_documents_exactly_its_query_parameters(openapi, template):
    query = {n for n, p in parameters(openapi, template).items() if p["in"] == "query"}
    assert query == set(PARAMETERS[template])
    for name, parameter in parameters(openapi, template).items():
        if name in ENUMS and name != "group_by":
            assert parameter["schema"]["enum"] == ENUMS[name], name
        elif name == "group_by":
            assert parameter["schema"]["enum"] == ENUMS["group_by"]


def test_include_data_is_documented_on_both_dashboard_reads(openapi):
    for template in ("/api/v1/dashboards/{id}", "/api/v1/dashboards/default"):
        assert parameters(openapi, template)["include_data"]["schema"]["enum"] == ["true",
                                                                                    "false"]
        schema = openapi.doc["paths"][template]["get"]["responses"]["200"]["content"][
            "application/json"]["schema"]
        assert {s["$ref"].rsplit("/", 1)[1] for s in schema["anyOf"]} == {
            "Dashboard", "DashboardWithData"}


def test_descriptions_define_success_rate_and_say_what_reads_raw_rows(openapi):
    text = " ".join(openapi.doc["info"]["description"].split())
    assert "success_rate = successes / executions in range" in text
    assert ("an execution is a success when its evaluation passed, or, when it has no "
            "evaluation, when its `status` is `succeeded`") in text
    assert "pass_rate = passed / evaluated" in text
    assert "rollups" in text and "Raw rows only" in text and "interval=1m" in text
    summary = openapi.doc["paths"]["/api/v1/executions/summary"]["get"]["description"]
    assert "success_rate and pass_rate as the rules above define them" in " ".join(summary.split())
    for template in ("/api/v1/executions/summary", "/api/v1/executions/timeseries",
                     "/api/v1/costs/breakdown", "/api/v1/metrics/{name}", "/api/v1/heatmap"):
        description = openapi.doc["paths"][template]["get"]["description"]
        assert "rollups" in description and "raw rows" in description, template


def test_success_is_defined_once_and_the_old_definition_is_gone(openapi):
    text = " ".join(OPENAPI_PATH.read_text(encoding="utf-8").split())
    assert text.count("is a success when") == 1
    assert "passed evaluations / executions" not in text
    schemas = openapi.doc["components"]["schemas"]
    assert schemas["SuccessRate"]["description"].startswith("successes / executions")
    assert schemas["PassRate"]["description"].startswith("passed / evaluated")


@pytest.mark.parametrize("name", RESPONSE_SCHEMAS)
def test_aggregates_schema_is_strict(openapi, name):
    schema = openapi.doc["components"]["schemas"][name]
    assert schema["type"] == "object" and schema["additionalProperties"] is False
    assert set(schema["required"]) == set(schema["properties"])


# ---------------------------------------------------------------- the checker

LATENCY = {"avg": 10.5, "min": 1, "max": 20, "p50": 10.0, "p95": 19.0, "p99": 20.0,
           "percentiles": {"0.5": 10.0, "0.95": 19.0, "0.99": 20.0, "0.75": 15.0}}
SUMMARY = {"range": RANGE, "total": 4, "successes": 2, "evaluated": 3, "passed": 2, "failed": 1,
           "errors": 1, "success_rate": 0.5, "pass_rate": 2 / 3, "latency_ms": LATENCY, "cost_usd": {"total": 1.5, "avg": 0.375},
           "tokens": {"input": 1, "output": 2, "cache_read": 3, "total": 3},
           "source": "rollup", "rolled_up_to": "2024-03-06T00:00:00Z",
           "executions_url": "/api/v1/executions?from=2024-03-05T00%3A00%3A00Z"}
POINT = {"t": "2024-03-05T00:00:00Z", "executions": 0, "success_rate": None, "pass_rate": None,
         "avg_latency_ms": None, "p95_latency_ms": None, "cost_usd": 0, "tokens": 0,
         "executions_url": None}
TIMESERIES = {"range": RANGE, "interval": "1d", "tz": "Europe/Berlin", "group_by": None,
              "buckets": 1, "series": [{"key": None, "name": "All", "points": [POINT]}],
              "source": "raw"}
HEATMAP = {"range": RANGE, "tz": "UTC", "metric": "executions",
           "x_labels": ["Mon", "Tue", "Wed", "Thu", "Fri", "Sat", "Sun"],
           "y_labels": ["%02d:00" % h for h in range(24)],
           "data": [[0] * 24 for _ in range(7)], "max": 0}
GAUGE = {"value": 91.5, "min": 0, "max": 100, "status": "warning",
         "thresholds": {"critical": 70, "warning": 85, "good": 95}}
WIDGET = dict(DASHBOARD, widgets=[{
    "id": AGENT, "dashboard_id": DASHBOARD["id"], "type": "gauge", "title": "G", "config": {},
    "position": {"x": 0, "y": 0, "w": 4, "h": 2}, "refresh_interval_seconds": 60,
    "created_at": DASHBOARD["created_at"], "updated_at": DASHBOARD["created_at"],
    "data": GAUGE}])


def check(openapi, path, body, status=200):
    headers = {"ETag": '"1"'} if path.startswith("/api/v1/dashboards/") and "/data" not in path \
        else {}
    openapi.check_response(fake_response("GET", path, status, body, headers=headers))


def changed(body, where, value):
    """A deep copy of body with the member at path `where` (a tuple) set to
    value, or removed when value is ...."""
    body = copy.deepcopy(body)
    node = body
    for key in where[:-1]:
        node = node[key]
    if value is ...:
        del node[where[-1]]
    else:
        node[where[-1]] = value
    return body


GOOD = [
    ("/api/v1/executions/summary", SUMMARY),
    ("/api/v1/executions/timeseries", TIMESERIES),
    ("/api/v1/heatmap", HEATMAP),
    ("/api/v1/dashboards/%s/widgets/%s/data" % (AGENT, AGENT),
     {"widget_id": AGENT, "type": "gauge", "data": GAUGE,
      "refreshed_at": "2024-03-06T00:00:00Z"}),
    ("/api/v1/dashboards/%s" % DASHBOARD["id"], WIDGET),
    ("/api/v1/dashboards/%s" % DASHBOARD["id"], DASHBOARD),
]


@pytest.mark.parametrize("path, body", GOOD, ids=[g[0] for g in GOOD])
def test_checker_accepts_conforming_aggregates(openapi, path, body):
    check(openapi, path, body)


BAD = [
    ("summary extra member", GOOD[0], ("extra",), 1),
    ("summary without errors", GOOD[0], ("errors",), ...),
    ("success_rate in percent", GOOD[0], ("success_rate",), 50),
    ("pass_rate in percent", GOOD[0], ("pass_rate",), 66.7),
    ("summary without pass_rate", GOOD[0], ("pass_rate",), ...),
    ("summary without successes", GOOD[0], ("successes",), ...),
    ("point without pass_rate", GOOD[1], ("series", 0, "points", 0, "pass_rate"), ...),
    ("unknown source", GOOD[0], ("source",), "cache"),
    ("p95 missing", GOOD[0], ("latency_ms", "p95"), ...),
    ("percentile key not a number", GOOD[0], ("latency_ms", "percentiles", "p75"), 1.0),
    ("tokens total missing", GOOD[0], ("tokens", "total"), ...),
    ("range with offset", GOOD[0], ("range", "from"), "2024-03-05T01:00:00+01:00"),
    ("interval auto", GOOD[1], ("interval",), "auto"),
    ("point without t", GOOD[1], ("series", 0, "points", 0, "t"), ...),
    ("point with a string count", GOOD[1], ("series", 0, "points", 0, "executions"), "0"),
    ("heatmap with 6 days", GOOD[2], ("data",), [[0] * 24 for _ in range(6)]),
    ("heatmap with 23 hours", GOOD[2], ("data", 3), [0] * 23),
    ("heatmap labels", GOOD[2], ("x_labels",), ["Sun", "Mon", "Tue", "Wed", "Thu", "Fri", "Sat"]),
    ("gauge data under metric_card", GOOD[3], ("type",), "metric_card"),
    ("gauge max 1", GOOD[3], ("data", "max"), 1),
    ("widget data type unknown", GOOD[3], ("type",), "sparkline"),
    ("dashboard widget with bad data", GOOD[4], ("widgets", 0, "data", "status"), "ok"),
    ("dashboard widget data of another type", GOOD[4], ("widgets", 0, "type"), "pie_chart"),
]


@pytest.mark.parametrize("case, good, where, value", BAD, ids=[b[0] for b in BAD])
def test_checker_rejects_a_wrong_shape(openapi, case, good, where, value):
    path, body = good
    with pytest.raises(AssertionError):
        check(openapi, path, changed(body, where, value))
