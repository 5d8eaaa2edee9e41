"""test_health.py - the liveness and readiness probes every group answers."""

from support import assert_problem


def test_healthz_answers_status_ok(api):
    response = api.get("/healthz")
    assert response.status_code == 200
    assert response.headers["Content-Type"].startswith("application/json")
    assert response.json() == {"status": "ok"}


def test_readyz_answers_status_ready_while_the_database_is_up(api):
    response = api.get("/readyz")
    assert response.status_code == 200
    assert response.headers["Content-Type"].startswith("application/json")
    assert response.json() == {"status": "ready"}


def test_healthz_refuses_post_with_405_and_allow_get(api):
    response = api.post("/healthz")
    assert_problem(response, 405, "method-not-allowed")
    assert "GET" in [m.strip() for m in response.headers["Allow"].split(",")]
