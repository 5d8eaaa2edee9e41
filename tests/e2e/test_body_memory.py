"""test_body_memory.py - every JSON body is measured before jansson reads
it: past 100,000 values (commas, colons, '[' and '{' outside strings) it is
422 on `body` and nothing changes, in every group; a body of many unknown
members lists the first 1,000 of them. What the worst bodies cost a worker
is measured by `make soak` (tests/soak/soak_memory.sh)."""

import pytest

from support import assert_problem, error_fields

JSON = {"Content-Type": "application/json"}


@pytest.mark.parametrize("path", ["/api/v1/dashboards", "/api/v1/agents"])
@pytest.mark.parametrize("body", [
    b"[" + b"{}," * 50000 + b"{}]",
    b'{"name": "n", "x": ' + b"[" * 100000 + b"]" * 100000 + b"}",
    b'{"name": "n", "x": {' + b",".join(b'"k%d":0' % i for i in range(50000)) + b"}}",
], ids=["empty objects", "nested arrays", "members"])
def test_a_body_past_100000_values_is_422_on_body_unread(api, db, path, body):
    with db.unchanged():
        response = api.post(path, data=body, headers=JSON)
    assert error_fields(response) == {"body"}
    assert "100000 values" in response.json()["errors"][0]["message"]


def test_a_body_of_100000_values_is_read(api, db):
    body = b"[" + b"0," * 99998 + b"0]"          # '[' and 99,999 commas: 100,000
    with db.unchanged():
        response = api.post("/api/v1/dashboards", data=body, headers=JSON)
    assert_problem(response, 422, "validation")
    assert "100000 values" not in response.text  # parsed, then refused for what it is


def test_a_problem_lists_the_first_1000_bad_fields(api, db):
    body = b'{"name": "n", ' + b",".join(b'"unknown%d":0' % i for i in range(3000)) + b"}"
    with db.unchanged():
        response = api.post("/api/v1/dashboards", data=body, headers=JSON)
    errors = assert_problem(response, 422, "validation")["errors"]
    assert len(errors) == 1000
    assert errors[0]["field"] == "unknown0"
