"""test_routes.py - `fleetdashd --routes` (the table of groups, workers/main.c)
against everything else that names the groups and their paths: nginx.conf
sends each path to a group that serves it and never to another, every group
has its upstreams, deploy/stack.sh's default GROUPS and deploy/README.md's
systemd step start every group, and docs/openapi.yaml has exactly these
operations. The checks are functions returning what is wrong, and each is
also shown to catch a broken nginx.conf. Needs no stack (the binary only)."""

import os
import re
import subprocess
from pathlib import Path

import pytest
import yaml

pytestmark = pytest.mark.nostack

REPO = Path(__file__).resolve().parents[2]
SAMPLE_ID = "0190a8e2-5b7c-7d3e-9f10-1a2b3c4d5e6f"
# The benchmark group: its upstream is in nginx.conf, its one location is
# dropped into nginx.d by the benchmark, and no host runs it in production.
BENCHMARK_GROUPS = {"hello"}


def fleetdashd():
    return os.environ.get("FLEETDASHD") or str(REPO / "bin" / "fleetdashd")


def route_lines():
    """[(group, method or "job", pattern or job name, roles or None)] from
    --routes ("GROUP METHOD PATH ROLES", "GROUP job NAME")."""
    out = subprocess.run([fleetdashd(), "--routes"], capture_output=True, text=True, check=True,
                         timeout=10).stdout
    rows = []
    for line in out.splitlines():
        words = line.split(" ")
        assert len(words) == (3 if words[1] == "job" else 4), line
        rows.append(tuple(words) + (None,) * (4 - len(words)))
    return rows


def routes():
    """{group: {(method, pattern)}} and {group: {job names}} from --routes."""
    served, jobs = {}, {}
    for group, what, name, _ in route_lines():
        served.setdefault(group, set())
        if what == "job":
            jobs.setdefault(group, set()).add(name)
        else:
            served[group].add((what, name))
    return served, jobs


# ---------------------------------------------------------------- nginx.conf

def strip_comments(text):
    return "\n".join(re.sub(r"(^|\s)#.*$", "", line) for line in text.splitlines())


def blocks(text, keyword):
    """(argument, body) of every `keyword ARG {body}` block, in order (bodies
    without nested blocks)."""
    return re.findall(r"(?m)^\s*" + keyword + r"\s+([^{;]*?)\s*\{([^{}]*)\}", text)


def nginx_locations(text):
    """[(modifier, pattern, body)] of the server's locations, in order;
    modifier is '=', '~', '~*', '^~', '' (prefix) or '@' (named)."""
    found = []
    for argument, body in blocks(text, "location"):
        if argument.startswith("@"):
            found.append(("@", argument, body))
            continue
        parts = argument.split(None, 1)
        if parts[0] in ("=", "~", "~*", "^~"):
            found.append((parts[0], parts[1].strip('"'), body))
        else:
            found.append(("", parts[0], body))
    return found


def nginx_pick(locations, path):
    """The location nginx chooses for path: an exact match; else the
    longest prefix if it is ^~; else the first regular expression that
    matches, in order; else the longest prefix."""
    for mod, pattern, body in locations:
        if mod == "=" and pattern == path:
            return (mod, pattern, body)
    prefixes = [l for l in locations if l[0] in ("", "^~") and path.startswith(l[1])]
    longest = max(prefixes, key=lambda l: len(l[1]), default=None)
    if longest is not None and longest[0] == "^~":
        return longest
    for mod, pattern, body in locations:
        if mod in ("~", "~*") and re.search(pattern, path, re.I if mod == "~*" else 0):
            return (mod, pattern, body)
    return longest


# The content types a request of a map keyed on "$request_method:$content_type"
# is tried with (the executions' way).
SAMPLE_CONTENT_TYPES = ["application/json", "application/x-ndjson", ""]


def nginx_map_entries(body):
    """[(key, value)] of a map's lines, in order (key 'default' for default)."""
    entries = []
    for line in body.strip().splitlines():
        match = re.match(r'\s*("(?:[^"\\]|\\.)*"|\S+)\s+(\S+);', line)
        if match:
            entries.append((match.group(1).strip('"'), match.group(2)))
    return entries


def nginx_map_lookup(entries, value):
    """The value a map gives for value: an exact key, else the first regular
    expression (~ or ~*) that matches, else default."""
    for key, result in entries:
        if not key.startswith("~") and key != "default" and key == value:
            return result
    for key, result in entries:
        if key.startswith("~*") and re.search(key[2:].replace("\\t", "\t"), value, re.I):
            return result
        if key.startswith("~") and not key.startswith("~*") and re.search(
                key[1:].replace("\\t", "\t"), value):
            return result
    return dict(entries).get("default")


def nginx_map_values(text, variable, method=None):
    """The values a `map ... $variable { ... }` block gives; for a map keyed
    on the request method, those it gives a request of method (None: all)."""
    for argument, body in blocks(text, "map"):
        if argument.split()[-1] == "$" + variable:
            entries = nginx_map_entries(body)
            source = argument.split()[0].strip('"')
            if method is not None and source.startswith("$request_method:"):
                return sorted({nginx_map_lookup(entries, "%s:%s" % (method, ct))
                               for ct in SAMPLE_CONTENT_TYPES} - {None})
            return sorted({value for _, value in entries})
    return []


def nginx_groups(text, location, locations, method=None):
    """{way: group} that a location passes requests (of method, None: any) to:
    one way ('') for a fastcgi_pass, one per value of the variable a
    try_files names a named location with (the executions' methods and
    content types); {} for none."""
    mod, pattern, body = location
    passed = re.search(r"fastcgi_pass\s+([a-z_]+)(\$fleetdash_retry)?\s*;", body)
    if passed:
        return {"": passed.group(1)}
    tried = re.search(r"try_files\s+\S+\s+(@\S*?)\$([a-z_]+)\s*;", body)
    if not tried:
        return {}
    named = {p: l for l in locations if l[0] == "@" for p in [l[1]]}
    ways = {}
    for value in nginx_map_values(text, tried.group(2), method):
        target = named.get(tried.group(1) + value)
        if target is not None:
            ways.update({value: g for g in nginx_groups(text, target, locations).values()})
    return ways


def sample_path(pattern):
    return re.sub(r"\{[^}]+\}", SAMPLE_ID, pattern)


def check_nginx(text, served):
    """What is wrong in nginx.conf text against served ({group: routes})."""
    text = strip_comments(text)
    locations = nginx_locations(text)
    problems = []
    for group in sorted(served):
        if group in BENCHMARK_GROUPS:
            continue
        for method, pattern in sorted(served[group]):
            serving = {g for g, rows in served.items() if (method, pattern) in rows}
            location = nginx_pick(locations, sample_path(pattern))
            ways = nginx_groups(text, location, locations, method) if location else {}
            if not ways:
                problems.append("%s %s (group %s): nginx.conf passes it to no group; add a "
                                "location that says fastcgi_pass %s$fleetdash_retry;"
                                % (method, pattern, group, group))
            for way, target in sorted(ways.items()):
                if target not in serving:
                    problems.append(
                        "%s %s: nginx.conf sends it%s to group %s, which does not serve it "
                        "(%s does): fix the order or pattern of its locations (exact =, then "
                        "the first matching ~ in order, else the longest prefix)"
                        % (method, pattern, " (%s)" % way if way else "", target,
                           ", ".join(sorted(serving))))
    upstreams = {a.strip(): body for a, body in blocks(text, "upstream")}
    for group in sorted(g for g in served if served[g]):
        socket = "unix:/run/fleetdash/%s.sock" % group
        for name in [group] + ([] if group in BENCHMARK_GROUPS | {"streams"} else
                               [group + "_retry"]):
            if socket not in upstreams.get(name, ""):
                problems.append("nginx.conf: upstream %s must name server %s (see the other "
                                "groups' upstream and *_retry blocks)" % (name, socket))
    return problems


def test_nginx_sends_every_path_to_a_group_that_serves_it():
    served, _ = routes()
    assert check_nginx((REPO / "nginx.conf").read_text(), served) == []


def test_the_check_catches_regular_expressions_in_the_wrong_order():
    served, _ = routes()
    text = (REPO / "nginx.conf").read_text()
    metrics = re.search(r"(?m)^\s*location ~ \^/api/v1/agents/\[\^/\]\+/metrics\$ \{[^}]*\}\n",
                        text).group(0)
    ingest = re.search(r"(?m)^\s*location ~ \^/api/v1/\(agents\|[^\n]*\{[^}]*\}\n", text).group(0)
    moved = text.replace(metrics, "").replace(ingest, ingest + metrics)
    problems = check_nginx(moved, served)
    assert problems == ["GET /api/v1/agents/{id}/metrics: nginx.conf sends it to group ingest, "
                        "which does not serve it (aggregates does): fix the order or pattern of "
                        "its locations (exact =, then the first matching ~ in order, else the "
                        "longest prefix)"]


def test_the_check_catches_agents_summary_sent_to_ingest():
    served, _ = routes()
    text = (REPO / "nginx.conf").read_text()
    exact = re.search(r"(?m)^\s*location = /api/v1/agents/summary \{[^}]*\}\n", text).group(0)
    problems = check_nginx(text.replace(exact, ""), served)
    assert problems == ["GET /api/v1/agents/summary: nginx.conf sends it to group ingest, "
                        "which does not serve it (aggregates does): fix the order or pattern of "
                        "its locations (exact =, then the first matching ~ in order, else the "
                        "longest prefix)"]


def test_the_check_catches_streams_sent_to_ingest_and_a_missing_location():
    served, _ = routes()
    text = (REPO / "nginx.conf").read_text().replace("fastcgi_pass streams;",
                                                     "fastcgi_pass dashboards;")
    text = re.sub(r"(?m)^\s*location = /api/v1/heatmap \{[^}]*\}\n", "", text)
    problems = check_nginx(text, served)
    assert any(p.startswith("POST /api/v1/executions: nginx.conf sends it (stream) to group "
                            "dashboards") for p in problems), problems
    assert any(p.startswith("GET /api/v1/heatmap (group aggregates): nginx.conf passes it to "
                            "no group") for p in problems), problems


def test_ndjson_goes_to_streams_and_json_to_ingest():
    text = strip_comments((REPO / "nginx.conf").read_text())
    locations = nginx_locations(text)
    location = nginx_pick(locations, "/api/v1/executions")
    assert nginx_groups(text, location, locations, "POST") == {"stream": "streams",
                                                               "json": "ingest"}


def test_reads_of_executions_go_to_aggregates():
    text = strip_comments((REPO / "nginx.conf").read_text())
    locations = nginx_locations(text)
    location = nginx_pick(locations, "/api/v1/executions")
    assert nginx_groups(text, location, locations, "GET") == {"read": "aggregates"}
    assert nginx_groups(text, location, locations) == {"stream": "streams", "json": "ingest",
                                                       "read": "aggregates"}
    one = nginx_pick(locations, "/api/v1/executions/" + SAMPLE_ID)
    assert nginx_groups(text, one, locations, "GET") == {"": "aggregates"}
    summary = nginx_pick(locations, "/api/v1/executions/summary")
    assert summary[0] == "="


def test_the_check_catches_reads_of_executions_sent_to_ingest():
    served, _ = routes()
    text = (REPO / "nginx.conf").read_text().replace('"~^(GET|HEAD):"', '"~^(PUT):"')
    problems = check_nginx(text, served)
    assert any(p.startswith("GET /api/v1/executions: nginx.conf sends it (json) to group ingest")
               for p in problems), problems


# ---------------------------------------------------------------- deploy

def stack_default_groups():
    text = (REPO / "deploy" / "stack.sh").read_text()
    return re.search(r"STACK_GROUPS=\$\{STACK_GROUPS:-([a-z_ ]+)\}", text).group(1).split()


def systemd_groups():
    text = (REPO / "deploy" / "README.md").read_text()
    enable = re.search(r"systemctl enable --now ((?:[^\n]*\\\n)*[^\n]*)", text).group(1)
    return re.findall(r"fleetdash@([a-z_]+)", enable)


def test_stack_sh_starts_every_group_by_default():
    served, _ = routes()
    missing = sorted(set(served) - set(stack_default_groups()))
    assert missing == [], ("deploy/stack.sh: add %s to the default GROUPS (STACK_GROUPS, and "
                           "its comment at the top; README.md's configuration lists it too)"
                           % ", ".join(missing))
    assert sorted(stack_default_groups()) == sorted(served)


def test_the_systemd_step_starts_every_production_group():
    served, _ = routes()
    wanted = sorted(set(served) - BENCHMARK_GROUPS)
    assert sorted(systemd_groups()) == wanted, (
        "deploy/README.md step 4: `systemctl enable --now` must start fleetdash@G for exactly "
        "%s (and README.md's Deploying section names them)" % ", ".join(wanted))


# ---------------------------------------------------------------- openapi

def normalized(pattern):
    return re.sub(r"\{[^}]+\}", "{}", pattern)


def test_openapi_has_exactly_the_operations_of_the_groups():
    served, _ = routes()
    operations = {(m, normalized(p)) for g, rows in served.items() if g not in BENCHMARK_GROUPS
                  for m, p in rows}
    doc = yaml.safe_load((REPO / "docs" / "openapi.yaml").read_text())
    documented = {(m.upper(), normalized(path)) for path, item in doc["paths"].items()
                  for m in item if m in ("get", "put", "post", "patch", "delete")}
    assert sorted(operations - documented) == [], "docs/openapi.yaml: document these operations"
    assert sorted(documented - operations) == [], ("docs/openapi.yaml documents operations no "
                                                   "group serves: remove them or add routes")


def test_every_group_runs_routes_or_a_job():
    served, jobs = routes()
    assert jobs == {"maintenance": {"rollups"}, "alerts": {"evaluator", "sender", "publisher"},
                    "aggregates": {"answers"}}
    assert all(rows or group in jobs for group, rows in served.items())


# ---------------------------------------------------------------- roles

# Who may call what (issue: API keys and roles). viewer: every read; editor:
# reads and the writes of dashboards, widgets, alerts, silences, rules,
# receivers and budgets; ingest: the ingest routes only; admin: everything;
# metrics: GET /metrics only (trusted: addresses nginx lets in without a key).
READ = "viewer,editor,admin"
EDIT = "editor,admin"
INGEST_PATHS = ("/api/v1/executions", "/api/v1/agents", "/api/v1/evaluations",
                "/api/v1/problems", "/api/v1/deployments", "/api/v1/proposals",
                "/api/v1/experiments")


def expected_roles(group, method, pattern):
    if pattern in ("/healthz", "/readyz", "/hello"):
        return "public"
    if pattern == "/metrics":
        return "admin,metrics,trusted"
    if pattern.startswith(("/api/v1/api-keys", "/api/v1/audit")):
        return "admin"
    if group in ("ingest", "streams"):
        assert pattern.startswith(INGEST_PATHS), pattern
        return "viewer,editor,ingest,admin" if method == "GET" else "ingest,admin"
    if method == "GET":
        return READ
    assert group in ("dashboards", "alerts"), (group, method, pattern)
    assert pattern.startswith(("/api/v1/dashboards", "/api/v1/alerts", "/api/v1/silences",
                               "/api/v1/alert-rules", "/api/v1/receivers",
                               "/api/v1/budgets")), pattern
    return EDIT


def test_every_route_has_the_roles_of_the_matrix():
    rows = [r for r in route_lines() if r[1] != "job"]
    assert len(rows) > 100
    wrong = [(g, m, p, roles, expected_roles(g, m, p)) for g, m, p, roles in rows
             if roles != expected_roles(g, m, p)]
    assert wrong == []


def test_openapi_names_the_roles_of_every_operation():
    doc = yaml.safe_load((REPO / "docs" / "openapi.yaml").read_text())
    documented = {(m.upper(), normalized(path)): op.get("x-roles")
                  for path, item in doc["paths"].items()
                  for m, op in item.items() if m in ("get", "put", "post", "patch", "delete")}
    for group, method, pattern, roles in route_lines():
        if method == "job" or group in BENCHMARK_GROUPS:
            continue
        assert sorted(documented[(method, normalized(pattern))]) == sorted(roles.split(",")), (
            method, pattern)
