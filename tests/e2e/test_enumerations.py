"""test_enumerations.py - every enumeration of the API has one source, the C
table that checks it (workers/*.c), and the other places agree with it:
docs/openapi.yaml lists exactly its values in the same order, the SQL that
answers takes every one of them (each value asked of the running stack),
and the database's own CHECK lists the same widget types."""

import re

import pytest

from support import ROOT

# name of the C table -> its file; the source of each enumeration
C_TABLES = {
    "aggregates_time_ranges": "workers/aggregates.c",
    "aggregates_group_bys": "workers/aggregates.c",
    "aggregates_metric_names": "workers/aggregates.c",
    "aggregates_heatmap_metrics": "workers/aggregates.c",
    "intervals": "workers/aggregates.c",
    "widget_types": "workers/dashboards_input.c",
    "config_series": "workers/dashboards_input.c",
    "config_table_types": "workers/dashboards_input.c",
    "alerts_severities": "workers/alerts.c",
    "alerts_statuses": "workers/alerts.c",
}


def c_enumeration(name):
    """The strings of the NULL-terminated C table `name`, in order."""
    text = (ROOT / C_TABLES[name]).read_text()
    found = re.search(r"\b%s\[\]\s*=\s*\{(.*?)\};" % re.escape(name), text, re.S)
    assert found, "no table %s in %s" % (name, C_TABLES[name])
    body = found.group(1)
    assert body.rstrip().rstrip(",").endswith("NULL"), "%s must end with NULL" % name
    return re.findall(r'"([^"]*)"', body)


def config_by_type(openapi, member, widget_type):
    """The enum of config.<member> for widget_type in WidgetConfigByType."""
    for rule in openapi.doc["components"]["schemas"]["WidgetConfigByType"]["allOf"]:
        kind = rule["if"]["properties"]["type"]
        if widget_type in kind.get("enum", [kind.get("const")]):
            return rule["then"]["properties"]["config"]["properties"][member]["enum"]
    raise AssertionError("WidgetConfigByType has no rule for %s" % widget_type)


# (C table, where docs/openapi.yaml lists it)
OPENAPI = [
    ("aggregates_time_ranges", lambda o: o.doc["components"]["parameters"]["TimeRange"]),
    ("aggregates_time_ranges", lambda o: o.doc["components"]["parameters"]["HeatmapTimeRange"]),
    ("intervals", lambda o: o.doc["components"]["parameters"]["Interval"]),
    ("aggregates_group_bys", lambda o: o.doc["components"]["parameters"]["SeriesGroupBy"]),
    ("aggregates_group_bys", lambda o: o.doc["components"]["parameters"]["CostGroupBy"]),
    ("aggregates_heatmap_metrics", lambda o: o.doc["components"]["parameters"]["HeatmapMetric"]),
    ("aggregates_metric_names", lambda o: o.doc["components"]["parameters"]["MetricName"]),
    ("widget_types", lambda o: {"schema": o.doc["components"]["schemas"]["WidgetType"]}),
    ("aggregates_time_ranges", lambda o: {"schema": o.doc["components"]["schemas"][
        "WidgetConfig"]["properties"]["time_range"]}),
    ("aggregates_group_bys", lambda o: {"schema": o.doc["components"]["schemas"][
        "WidgetConfig"]["properties"]["group_by"]}),
    ("config_series", lambda o: {"schema": o.doc["components"]["schemas"][
        "WidgetConfig"]["properties"]["metrics"]["items"]}),
    ("aggregates_metric_names", lambda o: {"schema": {"enum": config_by_type(
        o, "metric", "metric_card")}}),
    ("aggregates_metric_names", lambda o: {"schema": {"enum": config_by_type(
        o, "metric", "gauge")}}),
    ("aggregates_heatmap_metrics", lambda o: {"schema": {"enum": config_by_type(
        o, "metric", "heatmap")}}),
    ("config_table_types", lambda o: {"schema": {"enum": config_by_type(o, "type", "table")}}),
    ("alerts_severities", lambda o: {"schema": o.doc["components"]["schemas"]["Severity"]}),
    ("alerts_statuses", lambda o: {"schema": o.doc["components"]["schemas"]["AlertStatus"]}),
]


@pytest.mark.nostack
@pytest.mark.parametrize("table, where", OPENAPI,
                         ids=["%s-%d" % (t, i) for i, (t, _) in enumerate(OPENAPI)])
def test_openapi_lists_exactly_the_values_of_the_c_table(openapi, table, where):
    assert where(openapi)["schema"]["enum"] == c_enumeration(table), (
        "docs/openapi.yaml and %s's %s disagree: the C table is the source"
        % (C_TABLES[table], table))


@pytest.mark.nostack
def test_every_c_table_is_checked_against_the_contract():
    assert {table for table, _ in OPENAPI} == set(C_TABLES)


# (C table, the request that asks the SQL behind it for one value)
ASKED = {
    "aggregates_time_ranges": "/api/v1/executions/summary?time_range={}",
    "intervals": "/api/v1/executions/timeseries?time_range=1h&interval={}",
    "aggregates_group_bys": "/api/v1/costs/breakdown?group_by={}",
    "aggregates_heatmap_metrics": "/api/v1/heatmap?metric={}",
    "aggregates_metric_names": "/api/v1/metrics/{}",
}


@pytest.mark.parametrize("table", sorted(ASKED))
def test_the_sql_answers_every_value_of_the_c_table(api, table):
    statuses = {value: api.get(ASKED[table].format(value)).status_code
                for value in c_enumeration(table)}
    assert statuses == {value: 200 for value in statuses}


def test_timeseries_groups_by_every_value_of_the_c_table(api):
    for value in c_enumeration("aggregates_group_bys"):
        response = api.get("/api/v1/executions/timeseries?time_range=1h&group_by=" + value)
        assert response.status_code == 200, (value, response.text[:300])


def widget(widget_type, config):
    return {"type": widget_type, "title": widget_type, "config": config}


def test_every_widget_type_series_and_table_of_the_c_tables_has_data(api, make_dashboard):
    widgets = [widget(t, {}) for t in c_enumeration("widget_types")]
    widgets += [widget("line_chart", {"metrics": [s]}) for s in c_enumeration("config_series")]
    widgets += [widget("table", {"type": t}) for t in c_enumeration("config_table_types")]
    created = make_dashboard(widgets=widgets)
    response = api.get("/api/v1/dashboards/%s?include_data=true" % created["id"])
    assert response.status_code == 200, response.text[:300]
    no_data = [(w["type"], w["config"]) for w in response.json()["widgets"]
               if w.get("data") is None]
    assert no_data == []


def test_the_database_checks_the_widget_types_of_the_c_table(db):
    definition = db.scalar(
        "SELECT pg_get_constraintdef(c.oid) FROM pg_constraint c"
        " WHERE c.conrelid = 'dashboard_widgets'::regclass AND c.contype = 'c'"
        "   AND pg_get_constraintdef(c.oid) LIKE '%%type%%ANY%%'")
    assert definition is not None
    assert re.findall(r"'([a-z_]+)'::text", definition) == c_enumeration("widget_types")


# (C table, table, column): the database's CHECK of the column lists the
# values of the C table, in its order
CHECKED = [
    ("widget_types", "dashboard_widgets", "type"),
    ("alerts_severities", "alerts", "severity"),
    ("alerts_statuses", "alerts", "status"),
    ("alerts_severities", "problems", "severity"),
]


@pytest.mark.parametrize("table, relation, column", CHECKED)
def test_the_database_checks_the_values_of_the_c_table(db, table, relation, column):
    definitions = [d for d, in db.rows(
        "SELECT pg_get_constraintdef(c.oid) FROM pg_constraint c"
        " WHERE c.conrelid = %s::regclass AND c.contype = 'c'", (relation,))
        if re.search(r"\(\(?%s\s*=\s*ANY" % column, d)]
    assert len(definitions) == 1, definitions
    assert re.findall(r"'([a-z_]+)'::text", definitions[0]) == c_enumeration(table)
