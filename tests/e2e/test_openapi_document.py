"""test_openapi_document.py - docs/openapi.yaml is a sound OpenAPI 3.1 document
that covers the whole contract (needs no running stack)."""

import json

import jsonschema
import pytest
import requests

pytestmark = pytest.mark.nostack

WIDGET_TYPES = ["metric_card", "line_chart", "bar_chart", "pie_chart", "table",
                "heatmap", "gauge", "alert_list", "status_board"]

# (method, path template) -> every status the operation can give, besides 429/500.
OPERATIONS = {
    ("get", "/healthz"): {200},
    ("get", "/readyz"): {200, 503},
    ("get", "/metrics"): {200, 400, 503},
    ("get", "/api/v1/dashboards"): {200, 400, 422, 503},
    ("post", "/api/v1/dashboards"): {201, 400, 413, 415, 422, 503},
    ("get", "/api/v1/dashboards/default"): {200, 400, 503},
    ("get", "/api/v1/dashboards/{id}"): {200, 304, 400, 404, 503},
    ("put", "/api/v1/dashboards/{id}"): {200, 400, 404, 412, 413, 415, 422, 503},
    ("patch", "/api/v1/dashboards/{id}"): {200, 400, 404, 412, 413, 415, 422, 503},
    ("delete", "/api/v1/dashboards/{id}"): {204, 404, 412, 503},
    ("post", "/api/v1/dashboards/{id}/widgets"): {201, 400, 404, 412, 413, 415, 422, 503},
    ("get", "/api/v1/dashboards/{id}/widgets/{wid}"): {200, 404, 503},
    ("put", "/api/v1/dashboards/{id}/widgets/{wid}"): {200, 400, 404, 412, 413, 415, 422, 503},
    ("patch", "/api/v1/dashboards/{id}/widgets/{wid}"): {200, 400, 404, 412, 413, 415, 422,
                                                         503},
    ("delete", "/api/v1/dashboards/{id}/widgets/{wid}"): {204, 404, 412, 503},
    ("put", "/api/v1/dashboards/{id}/layout"): {200, 400, 404, 412, 413, 415, 422, 503},
    # the ingest group
    ("get", "/api/v1/agents"): {200, 400, 503},
    ("post", "/api/v1/agents"): {200, 201, 400, 413, 415, 422, 503},
    ("get", "/api/v1/agents/{id}"): {200, 404, 503},
    ("patch", "/api/v1/agents/{id}"): {200, 400, 404, 409, 413, 415, 422, 503},
    ("get", "/api/v1/agents/{id}/versions"): {200, 400, 404, 503},
    ("post", "/api/v1/agents/{id}/versions"): {201, 400, 404, 409, 413, 415, 422, 503},
    ("post", "/api/v1/agents/{id}/versions/{version_id}/activate"): {200, 400, 404, 422, 503},
    ("post", "/api/v1/agents/{id}/heartbeat"): {204, 400, 404, 413, 415, 422, 503},
    ("post", "/api/v1/executions"): {200, 400, 408, 413, 415, 422, 503},
    ("post", "/api/v1/evaluations"): {200, 201, 400, 413, 415, 422, 503},
    ("get", "/api/v1/problems"): {200, 400, 503},
    ("get", "/api/v1/problems/{id}"): {200, 404, 503},
    ("post", "/api/v1/problems"): {201, 400, 413, 415, 422, 503},
    ("patch", "/api/v1/problems/{id}"): {200, 400, 404, 413, 415, 422, 503},
    ("get", "/api/v1/deployments"): {200, 400, 503},
    ("get", "/api/v1/deployments/{id}"): {200, 404, 503},
    ("post", "/api/v1/deployments"): {201, 400, 409, 413, 415, 422, 503},
    ("patch", "/api/v1/deployments/{id}"): {200, 400, 404, 409, 413, 415, 422, 503},
    ("post", "/api/v1/proposals"): {201, 400, 413, 415, 422, 503},
    ("patch", "/api/v1/proposals/{id}"): {200, 400, 404, 413, 415, 422, 503},
    ("post", "/api/v1/experiments"): {201, 400, 409, 413, 415, 422, 503},
    ("patch", "/api/v1/experiments/{id}"): {200, 400, 404, 413, 415, 422, 503},
    # the aggregates group
    ("get", "/api/v1/executions"): {200, 400, 422, 503},
    ("get", "/api/v1/executions/{id}"): {200, 404, 503},
    ("get", "/api/v1/executions/summary"): {200, 400, 422, 503},
    ("get", "/api/v1/executions/timeseries"): {200, 400, 422, 503},
    ("get", "/api/v1/agents/summary"): {200, 400, 422, 503},
    ("get", "/api/v1/agents/{id}/metrics"): {200, 400, 404, 422, 503},
    ("get", "/api/v1/health"): {200, 400, 422, 503},
    ("get", "/api/v1/errors/breakdown"): {200, 400, 422, 503},
    ("get", "/api/v1/costs/breakdown"): {200, 400, 422, 503},
    ("get", "/api/v1/metrics/{name}"): {200, 400, 404, 422, 503},
    # the alerts group
    ("get", "/api/v1/alerts"): {200, 400, 503},
    ("post", "/api/v1/alerts"): {200, 201, 400, 413, 415, 422, 503},
    ("get", "/api/v1/alerts/active"): {200, 400, 503},
    ("get", "/api/v1/activity"): {200, 400, 503},
    ("get", "/api/v1/activity/recent"): {200, 400, 503},
    ("get", "/api/v1/state"): {200, 400, 503},
    ("get", "/api/v1/alerts/{id}"): {200, 404, 503},
    ("post", "/api/v1/alerts/{id}/acknowledge"): {200, 400, 404, 409, 413, 415, 422, 503},
    ("post", "/api/v1/alerts/{id}/resolve"): {200, 400, 404, 409, 413, 415, 422, 503},
    ("get", "/api/v1/silences"): {200, 400, 503},
    ("post", "/api/v1/silences"): {201, 400, 413, 415, 422, 503},
    ("get", "/api/v1/silences/{id}"): {200, 404, 503},
    ("patch", "/api/v1/silences/{id}"): {200, 400, 404, 409, 413, 415, 422, 503},
    ("delete", "/api/v1/silences/{id}"): {200, 404, 503},
    ("get", "/api/v1/heatmap"): {200, 400, 422, 503},
    ("get", "/api/v1/dashboards/{id}/widgets/{wid}/data"): {200, 404, 503},
    # the alerts group: receivers and notifications
    ("get", "/api/v1/receivers"): {200, 400, 503},
    ("post", "/api/v1/receivers"): {201, 400, 409, 413, 415, 422, 503},
    ("get", "/api/v1/receivers/{id}"): {200, 404, 503},
    ("patch", "/api/v1/receivers/{id}"): {200, 400, 404, 409, 413, 415, 422, 503},
    ("delete", "/api/v1/receivers/{id}"): {204, 404, 503},
    ("get", "/api/v1/notifications"): {200, 400, 503},
    ("get", "/api/v1/notifications/{id}"): {200, 404, 503},
    # the alerts group: budgets
    ("get", "/api/v1/budgets"): {200, 400, 503},
    ("post", "/api/v1/budgets"): {201, 400, 409, 413, 415, 422, 503},
    ("get", "/api/v1/budgets/{id}"): {200, 404, 503},
    ("put", "/api/v1/budgets/{id}"): {200, 400, 404, 409, 412, 413, 415, 422, 503},
    ("patch", "/api/v1/budgets/{id}"): {200, 400, 404, 409, 412, 413, 415, 422, 503},
    ("delete", "/api/v1/budgets/{id}"): {204, 404, 412, 503},
    ("get", "/api/v1/budgets/{id}/status"): {200, 400, 404, 503},
    # the alerts group: alert rules
    ("get", "/api/v1/alert-rules"): {200, 400, 503},
    ("post", "/api/v1/alert-rules"): {201, 400, 409, 413, 415, 422, 503},
    ("get", "/api/v1/alert-rules/{id}"): {200, 404, 503},
    ("put", "/api/v1/alert-rules/{id}"): {200, 400, 404, 409, 412, 413, 415, 422, 503},
    ("patch", "/api/v1/alert-rules/{id}"): {200, 400, 404, 409, 412, 413, 415, 422, 503},
    ("delete", "/api/v1/alert-rules/{id}"): {204, 404, 412, 503},
    # the dashboards group: API keys and the audit log
    ("get", "/api/v1/api-keys"): {200, 400, 503},
    ("post", "/api/v1/api-keys"): {201, 400, 413, 415, 422, 503},
    ("get", "/api/v1/api-keys/{id}"): {200, 404, 503},
    ("delete", "/api/v1/api-keys/{id}"): {204, 404, 503},
    ("get", "/api/v1/audit"): {200, 400, 503},
    # the alerts group: live streams
    ("get", "/api/v1/stream/activity"): {200, 400, 503},
    ("get", "/api/v1/stream/alerts"): {200, 400, 503},
    ("get", "/api/v1/stream/state"): {200, 400, 503},
    ("get", "/api/v1/stream/agents/{id}"): {200, 400, 404, 503},
    ("get", "/api/v1/stream/dashboards/{id}"): {200, 400, 404, 503},
}
# Operations that need no API key (every other one answers 401 and 403).
PUBLIC = {("get", "/healthz"), ("get", "/readyz")}
INGEST_POSTS = sorted((m, t) for m, t in OPERATIONS if m == "post" and t.startswith(
    ("/api/v1/agents", "/api/v1/executions", "/api/v1/evaluations", "/api/v1/problems",
     "/api/v1/deployments", "/api/v1/proposals", "/api/v1/experiments")))

RESPONSE_SCHEMAS = ["Dashboard", "DashboardSummary", "DashboardList", "Widget", "Position",
                    "Problem", "Health", "Readiness", "Agent", "AgentList", "AgentVersion",
                    "IngestProblem", "Evaluation", "FleetProblem", "Deployment", "Proposal",
                    "Experiment", "Alert", "AlertWithTransitions", "AlertTransition",
                    "AlertList", "ActiveAlerts", "Silence", "SilenceList",
                    "Receiver", "ReceiverList", "Notification", "NotificationList",
                    "NotificationAttempt", "WebhookMessage", "Budget", "BudgetList",
                    "BudgetStatus", "BudgetScopeOut", "AlertRule", "AlertRuleList",
                    "AlertRuleInstance", "ApiKey", "ApiKeyCreated", "ApiKeyList",
                    "AuditRecord", "AuditList", "StreamSnapshotActivity",
                    "StreamSnapshotAlerts", "StreamSnapshotState", "StreamSnapshotAgent",
                    "StreamSnapshotDashboard", "StreamBatch"]
INPUT_SCHEMAS = ["DashboardInput", "DashboardPatch", "WidgetInput", "WidgetPatch", "Layout",
                 "AgentInput", "AgentPatch", "AgentVersionInput", "Heartbeat", "Execution",
                 "EvaluationInput", "FleetProblemInput", "FleetProblemPatch", "DeploymentInput",
                 "DeploymentPatch", "ProposalInput", "ProposalPatch", "ExperimentInput",
                 "ExperimentPatch", "AlertInput", "AlertHandling", "SilenceMatcher",
                 "SilenceInput", "SilencePatch", "ReceiverInput", "ReceiverPatch",
                 "BudgetInput", "BudgetPatch", "BudgetScope", "AlertRuleInput",
                 "AlertRulePatch", "ApiKeyInput"]


def walk(node, path=""):
    """Yield (json pointer, node) for every dict in the document."""
    if isinstance(node, dict):
        yield path, node
        for key, value in node.items():
            yield from walk(value, "%s/%s" % (path, key))
    elif isinstance(node, list):
        for index, value in enumerate(node):
            yield from walk(value, "%s/%d" % (path, index))


def test_document_declares_openapi_3_1(openapi):
    assert openapi.doc["openapi"].startswith("3.1.")
    assert openapi.doc["info"]["title"] and openapi.doc["info"]["version"]


def test_every_ref_resolves(openapi):
    refs = [(where, node["$ref"]) for where, node in walk(openapi.doc) if "$ref" in node]
    assert refs
    for where, ref in refs:
        assert ref.startswith("#/"), (where, ref)
        openapi.resolver.resolve(ref)


def test_every_schema_is_valid_json_schema_2020_12(openapi):
    schemas = [(where, node["schema"]) for where, node in walk(openapi.doc) if "schema" in node]
    schemas += [("#/components/schemas/" + name, schema)
                for name, schema in openapi.doc["components"]["schemas"].items()]
    for where, schema in schemas:
        try:
            jsonschema.Draft202012Validator.check_schema(schema)
        except jsonschema.SchemaError as error:
            raise AssertionError("%s: %s" % (where, error.message))


def test_documents_exactly_the_contract_operations(openapi):
    documented = {(method, template) for template, item in openapi.doc["paths"].items()
                  for method in item if method in ("get", "put", "post", "delete", "patch")}
    assert documented == set(OPERATIONS)


@pytest.mark.parametrize("operation", sorted(OPERATIONS), ids=lambda o: "%s %s" % o)
def test_operation_documents_every_status_it_can_give(openapi, operation):
    method, template = operation
    documented = {int(s) for s in openapi.doc["paths"][template][method]["responses"]}
    expected = OPERATIONS[operation] | {500}
    if template.startswith("/api/"):
        expected |= {429}
    if operation not in PUBLIC:
        expected |= {401, 403}
    assert documented == expected


@pytest.mark.parametrize("name", RESPONSE_SCHEMAS + INPUT_SCHEMAS)
def test_object_schema_forbids_unknown_fields(openapi, name):
    schema = openapi.doc["components"]["schemas"][name]
    assert schema["type"] == "object"
    assert schema["additionalProperties"] is False


@pytest.mark.parametrize("name", RESPONSE_SCHEMAS)
def test_response_schema_requires_every_field(openapi, name):
    schema = openapi.doc["components"]["schemas"][name]
    # a problem's errors (422) and groups (/readyz) belong to some problems only
    assert set(schema["required"]) >= set(schema["properties"]) - {"errors", "groups"}


def test_widget_type_enum_lists_the_nine_types(openapi):
    assert openapi.doc["components"]["schemas"]["WidgetType"]["enum"] == WIDGET_TYPES


def test_problem_schema_has_an_errors_array_of_field_and_message(openapi):
    errors = openapi.doc["components"]["schemas"]["Problem"]["properties"]["errors"]
    assert errors["type"] == "array"
    assert errors["items"]["required"] == ["field", "message"]


@pytest.mark.parametrize("header, response", [
    ("ETag", "NotModified"), ("Allow", "MethodNotAllowed"),
    ("Retry-After", "ServiceUnavailable"), ("X-Request-Id", "NotFound"),
])
def test_response_documents_its_headers(openapi, header, response):
    spec = openapi.doc["components"]["responses"][response]
    assert openapi.resolve(spec["headers"][header])["required"] is True


@pytest.mark.parametrize("operation", INGEST_POSTS, ids=lambda o: "%s %s" % o)
def test_ingest_post_takes_an_idempotency_key_and_marks_replays(openapi, operation):
    method, template = operation
    spec = openapi.doc["paths"][template][method]
    names = [openapi.resolve(p)["name"] for p in spec.get("parameters", [])]
    assert "Idempotency-Key" in names
    successes = [s for s in spec["responses"] if s.startswith("2")]
    assert successes
    for status in successes:
        headers = openapi.resolve(spec["responses"][status])["headers"]
        assert openapi.resolve(headers["Idempotent-Replayed"])["schema"] == {
            "type": "string", "const": "true"}


def test_executions_take_json_and_ndjson(openapi):
    content = openapi.doc["paths"]["/api/v1/executions"]["post"]["requestBody"]["content"]
    assert set(content) == {"application/json", "application/x-ndjson"}
    refs = [s["$ref"].rsplit("/", 1)[1] for s in content["application/json"]["schema"]["oneOf"]]
    assert refs == ["Execution", "ExecutionBatch"]
    batch = openapi.doc["components"]["schemas"]["ExecutionBatch"]
    assert (batch["minItems"], batch["maxItems"]) == (1, 1000)


def test_ingest_problem_errors_carry_a_line(openapi):
    items = openapi.doc["components"]["schemas"]["IngestProblem"]["properties"]["errors"]["items"]
    assert items["properties"]["line"] == {"type": "integer", "minimum": 1}
    response = openapi.doc["paths"]["/api/v1/executions"]["post"]["responses"]["422"]
    assert response == {"$ref": "#/components/responses/IngestValidationFailed"}


def test_registrations_document_their_location(openapi):
    for template in ("/api/v1/agents", "/api/v1/agents/{id}/versions"):
        headers = openapi.doc["paths"][template]["post"]["responses"]["201"]["headers"]
        assert openapi.resolve(headers["Location"])["required"] is True


def test_created_responses_document_location_and_etag(openapi):
    for template in ("/api/v1/dashboards", "/api/v1/dashboards/{id}/widgets"):
        headers = openapi.doc["paths"][template]["post"]["responses"]["201"]["headers"]
        assert openapi.resolve(headers["Location"])["required"] is True
        assert openapi.resolve(headers["ETag"])["required"] is True


def test_timestamps_are_date_time_and_ids_are_uuid(openapi):
    schemas = openapi.doc["components"]["schemas"]
    assert schemas["Timestamp"]["format"] == "date-time"
    assert schemas["Uuid"]["format"] == "uuid"
    for name in ("Dashboard", "DashboardSummary", "Widget"):
        properties = schemas[name]["properties"]
        assert properties["id"] == {"$ref": "#/components/schemas/Uuid"}
        assert properties["created_at"] == {"$ref": "#/components/schemas/Timestamp"}
        assert properties["updated_at"] == {"$ref": "#/components/schemas/Timestamp"}


# ---------------------------------------------------------------- the checker itself

def fake_response(method, path, status, body, content_type="application/json", headers=None):
    """A requests.Response as if the server had answered it."""
    request = requests.Request(method, "http://127.0.0.1" + path).prepare()
    response = requests.Response()
    response.request, response.status_code = request, status
    response.headers.update({"Content-Type": content_type, "X-Request-Id": "0" * 32,
                             "X-Content-Type-Options": "nosniff", "X-Frame-Options": "DENY",
                             "Referrer-Policy": "no-referrer"})
    response.headers.update(headers or {})
    response._content = b"" if body is None else json.dumps(body).encode()
    return response


DASHBOARD = {"id": "8b7ca314-e52f-4777-9bc9-c9941e55d659", "name": "Ops", "description": None,
             "is_default": False, "owner": None, "version": 1,
             "created_at": "2026-11-21T10:37:35.748730Z",
             "updated_at": "2026-11-21T10:37:35.748730Z", "widgets": []}
GOOD = ("GET", "/api/v1/dashboards/8b7ca314-e52f-4777-9bc9-c9941e55d659", 200)


def test_checker_accepts_a_conforming_response(openapi):
    openapi.check_response(fake_response(*GOOD, DASHBOARD, headers={"ETag": '"1"'}))


@pytest.mark.parametrize("body, headers", [
    (dict(DASHBOARD, extra=1), {"ETag": '"1"'}),
    ({k: v for k, v in DASHBOARD.items() if k != "owner"}, {"ETag": '"1"'}),
    (dict(DASHBOARD, id="not-a-uuid"), {"ETag": '"1"'}),
    (dict(DASHBOARD, created_at="2026-11-21 10:37:35"), {"ETag": '"1"'}),
    (dict(DASHBOARD, created_at="2026-11-21T10:37:35+01:00"), {"ETag": '"1"'}),
    (dict(DASHBOARD, widgets=[{"type": "sparkline"}]), {"ETag": '"1"'}),
    (DASHBOARD, {}),
    (DASHBOARD, {"ETag": "1"}),
    (DASHBOARD, {"ETag": '"1"', "X-Frame-Options": "SAMEORIGIN"}),
], ids=["unknown field", "missing field", "bad uuid", "not rfc 3339", "not utc",
        "bad widget", "no etag", "unquoted etag", "wrong security header"])
def test_checker_rejects_a_nonconforming_response(openapi, body, headers):
    with pytest.raises(AssertionError):
        openapi.check_response(fake_response(*GOOD, body, headers=headers))


def test_checker_rejects_an_undocumented_status(openapi):
    with pytest.raises(AssertionError):
        openapi.check_response(fake_response("GET", GOOD[1], 201, DASHBOARD,
                                             headers={"ETag": '"1"'}))


def test_checker_rejects_a_problem_with_the_wrong_content_type(openapi):
    problem = {"type": "/problems/not-found", "title": "Not Found", "status": 404,
               "detail": "d", "instance": GOOD[1], "request_id": "0" * 32}
    openapi.check_response(fake_response("GET", GOOD[1], 404, problem,
                                         content_type="application/problem+json"))
    with pytest.raises(AssertionError):
        openapi.check_response(fake_response("GET", GOOD[1], 404, problem))


INGEST_PROBLEM = {"type": "/problems/validation", "title": "Unprocessable Content", "status": 422,
                  "detail": "1 line is bad", "instance": "/api/v1/executions",
                  "request_id": "0" * 32,
                  "errors": [{"line": 7, "field": "started_at", "message": "m"}]}


def test_checker_accepts_an_ingest_problem_with_lines(openapi):
    openapi.check_response(fake_response("POST", "/api/v1/executions", 422, INGEST_PROBLEM,
                                         content_type="application/problem+json"))


@pytest.mark.parametrize("error", [{"line": 0, "field": "f", "message": "m"},
                                   {"line": "7", "field": "f", "message": "m"},
                                   {"line": 7, "message": "m"}],
                         ids=["line 0", "line not an integer", "no field"])
def test_checker_rejects_a_bad_ingest_problem(openapi, error):
    body = dict(INGEST_PROBLEM, errors=[error])
    with pytest.raises(AssertionError):
        openapi.check_response(fake_response("POST", "/api/v1/executions", 422, body,
                                             content_type="application/problem+json"))


def test_checker_rejects_a_line_in_a_dashboards_problem(openapi):
    body = dict(INGEST_PROBLEM, instance="/api/v1/dashboards")
    with pytest.raises(AssertionError):
        openapi.check_response(fake_response("POST", "/api/v1/dashboards", 422, body,
                                             content_type="application/problem+json"))


def test_checker_accepts_a_replayed_ingest_result_and_rejects_a_bad_marker(openapi):
    result = {"received": 1, "inserted": 0, "duplicates": 1,
              "ids": ["8b7ca314-e52f-4777-9bc9-c9941e55d659"]}
    openapi.check_response(fake_response("POST", "/api/v1/executions", 200, result,
                                         headers={"Idempotent-Replayed": "true"}))
    with pytest.raises(AssertionError):
        openapi.check_response(fake_response("POST", "/api/v1/executions", 200, result,
                                             headers={"Idempotent-Replayed": "yes"}))


def test_checker_rejects_a_body_on_204(openapi):
    with pytest.raises(AssertionError):
        openapi.check_response(fake_response("DELETE", GOOD[1], 204, {}))


def test_public_operations_need_no_key_and_the_others_a_bearer_key(openapi):
    schemes = openapi.doc["components"]["securitySchemes"]
    assert schemes["apiKey"] == {**schemes["apiKey"], "type": "http", "scheme": "bearer"}
    assert openapi.doc["security"] == [{"apiKey": []}]
    for method, template in OPERATIONS:
        operation = openapi.doc["paths"][template][method]
        if (method, template) in PUBLIC:
            assert operation["security"] == [], (method, template)
            assert operation["x-roles"] == ["public"], (method, template)
        else:
            assert "security" not in operation, (method, template)
            assert operation["x-roles"], (method, template)
