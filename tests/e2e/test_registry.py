"""test_registry.py - the fleet's records: evaluations (201 first, 200
replacing), problems, canary deployments, improvement proposals and
experiments - creation, their PATCH lifecycles and timestamps, references to
unknown agents/versions/executions/problems (422 naming the field), 404s,
409s and every invalid body (nothing written)."""

import pytest

from support import assert_problem, error_fields, now_utc, parse_time

pytestmark = pytest.mark.ingest

UNKNOWN_ID = "00000000-0000-4000-8000-000000000000"


@pytest.fixture
def make_execution(ingest, execution):
    """Store one execution; returns its id."""
    def make(**fields):
        return ingest(execution(**fields)).json()["ids"][0]
    return make


def created(response):
    assert response.status_code == 201, response.text
    return response.json()


def recent(text):
    """A response time within the last minute."""
    moment = parse_time(text)
    assert (now_utc() - moment).total_seconds() < 60, text
    return moment


# ---------------------------------------------------------------- evaluations

EVALUATIONS = "/api/v1/evaluations"


def test_first_evaluation_is_201_and_stored(api, db, make_execution):
    execution_id = make_execution()
    response = api.post(EVALUATIONS, json={"execution_id": execution_id, "passed": True,
                                           "score": 0.8, "evaluator": "judge"})
    body = created(response)
    assert (body["execution_id"], body["passed"], body["score"], body["evaluator"]) == (
        execution_id, True, 0.8, "judge")
    recent(body["created_at"])
    assert db.rows("SELECT passed, score, evaluator FROM evaluation_rows WHERE execution_id = %s",
                   (execution_id,)) == [(True, 0.8, "judge")]


def test_evaluation_with_only_passed_has_null_score_and_evaluator(api, make_execution):
    body = created(api.post(EVALUATIONS, json={"execution_id": make_execution(),
                                               "passed": False}))
    assert (body["passed"], body["score"], body["evaluator"]) == (False, None, None)


def test_a_new_evaluation_replaces_the_old_one_with_200(api, db, make_execution):
    execution_id = make_execution()
    created(api.post(EVALUATIONS, json={"execution_id": execution_id, "passed": True,
                                        "score": 0.9}))
    response = api.post(EVALUATIONS, json={"execution_id": execution_id, "passed": False,
                                           "score": 0.2, "evaluator": "second"})
    assert response.status_code == 200, response.text
    assert (response.json()["passed"], response.json()["score"]) == (False, 0.2)
    assert db.rows("SELECT passed, score, evaluator FROM evaluation_rows WHERE execution_id = %s",
                   (execution_id,)) == [(False, 0.2, "second")]


def test_an_evaluation_replaces_the_one_embedded_in_the_execution(api, db, make_execution):
    execution_id = make_execution(evaluation={"passed": True, "score": 1})
    response = api.post(EVALUATIONS, json={"execution_id": execution_id, "passed": False})
    assert response.status_code == 200, response.text
    assert db.rows("SELECT passed, score FROM evaluation_rows") == [(False, None)]


def test_evaluation_of_an_unknown_execution_is_422_on_execution_id(api, db):
    with db.unchanged():
        response = api.post(EVALUATIONS, json={"execution_id": UNKNOWN_ID, "passed": True})
    assert error_fields(response) == {"execution_id"}


@pytest.mark.parametrize("body, field", [
    ({"passed": True}, "execution_id"),
    ({"execution_id": "nope", "passed": True}, "execution_id"),
    ({"execution_id": "@", "passed": "yes"}, "passed"),
    ({"execution_id": "@"}, "passed"),
    ({"execution_id": "@", "passed": True, "score": 1.01}, "score"),
    ({"execution_id": "@", "passed": True, "score": -0.5}, "score"),
    ({"execution_id": "@", "passed": True, "score": "high"}, "score"),
    ({"execution_id": "@", "passed": True, "evaluator": ""}, "evaluator"),
    ({"execution_id": "@", "passed": True, "evaluator": "e" * 101}, "evaluator"),
    ({"execution_id": "@", "passed": True, "details": {}}, "details"),
])
def test_invalid_evaluation_is_422_naming_the_field(api, db, make_execution, body, field):
    execution_id = make_execution()
    body = {k: (execution_id if v == "@" else v) for k, v in body.items()}
    with db.unchanged():
        response = api.post(EVALUATIONS, json=body)
    assert error_fields(response) == {field}


# ---------------------------------------------------------------- problems

PROBLEMS = "/api/v1/problems"
PROBLEM = {"category": "tool_error", "severity": "high", "title": "Search tool times out"}


def test_problem_is_201_open_with_one_occurrence(api, db):
    body = created(api.post(PROBLEMS, json=PROBLEM))
    assert {k: body[k] for k in PROBLEM} == PROBLEM
    assert (body["agent_id"], body["execution_id"], body["description"], body["status"],
            body["occurrences"], body["resolved_at"]) == (None, None, None, "open", 1, None)
    for name in ("first_seen_at", "last_seen_at", "created_at", "updated_at"):
        recent(body[name])
    assert db.count("problems", "id = %s AND status = 'open'", (body["id"],)) == 1


def test_problem_of_an_agent_and_an_execution_keeps_both(api, db, make_agent, make_execution):
    agent = make_agent()
    execution_id = make_execution(agent_id=agent["id"], status="failed")
    body = created(api.post(PROBLEMS, json=dict(PROBLEM, agent_id=agent["id"],
                                                execution_id=execution_id,
                                                description="Seen at 3am")))
    assert (body["agent_id"], body["execution_id"], body["description"]) == (
        agent["id"], execution_id, "Seen at 3am")
    assert db.rows("SELECT agent_id::text, execution_id::text FROM problems") == [
        (agent["id"], execution_id)]


@pytest.mark.parametrize("severity", ["critical", "high", "medium", "low"])
def test_problem_takes_every_severity(api, severity):
    assert created(api.post(PROBLEMS, json=dict(PROBLEM, severity=severity)))["severity"] == \
        severity


@pytest.mark.parametrize("fields, field", [
    ({"agent_id": UNKNOWN_ID}, "agent_id"),
    ({"execution_id": UNKNOWN_ID}, "execution_id"),
    ({"agent_id": "nope"}, "agent_id"),
    ({"category": None}, "category"),
    ({"category": ""}, "category"),
    ({"category": "c" * 101}, "category"),
    ({"severity": "urgent"}, "severity"),
    ({"severity": None}, "severity"),
    ({"title": ""}, "title"),
    ({"title": "t" * 501}, "title"),
    ({"description": "d" * 10001}, "description"),
    ({"status": "resolved"}, "status"),
    ({"occurrences": 3}, "occurrences"),
])
def test_invalid_problem_is_422_naming_the_field(api, db, fields, field):
    body = {k: v for k, v in dict(PROBLEM, **fields).items() if v is not None}
    with db.unchanged():
        response = api.post(PROBLEMS, json=body)
    assert error_fields(response) == {field}


def test_resolving_a_problem_sets_resolved_at_and_reopening_clears_it(api, db):
    problem = created(api.post(PROBLEMS, json=PROBLEM))
    path = "%s/%s" % (PROBLEMS, problem["id"])
    resolved = api.patch(path, json={"status": "resolved"})
    assert resolved.status_code == 200, resolved.text
    assert resolved.json()["status"] == "resolved"
    recent(resolved.json()["resolved_at"])
    reopened = api.patch(path, json={"status": "investigating"})
    assert reopened.status_code == 200, reopened.text
    assert (reopened.json()["status"], reopened.json()["resolved_at"]) == ("investigating", None)
    assert db.rows("SELECT status, resolved_at FROM problems") == [("investigating", None)]


def test_patch_problem_changes_severity_title_and_description_and_keeps_the_rest(api):
    problem = created(api.post(PROBLEMS, json=dict(PROBLEM, description="d")))
    body = api.patch("%s/%s" % (PROBLEMS, problem["id"]),
                     json={"severity": "low", "title": "Renamed", "description": None}).json()
    assert (body["severity"], body["title"], body["description"], body["status"],
            body["category"]) == ("low", "Renamed", None, "open", "tool_error")


def test_patch_unknown_problem_is_404(api, db):
    with db.unchanged():
        response = api.patch("%s/%s" % (PROBLEMS, UNKNOWN_ID), json={"status": "resolved"})
    assert_problem(response, 404, "not-found")


@pytest.mark.parametrize("body, field", [
    ({"status": "closed"}, "status"), ({"severity": "meh"}, "severity"), ({"title": ""}, "title"),
    ({"category": "other"}, "category"), ({"occurrences": 2}, "occurrences"),
])
def test_invalid_problem_patch_is_422_and_changes_nothing(api, db, body, field):
    problem = created(api.post(PROBLEMS, json=PROBLEM))
    with db.unchanged():
        response = api.patch("%s/%s" % (PROBLEMS, problem["id"]), json=body)
    assert error_fields(response) == {field}


# ---------------------------------------------------------------- deployments

DEPLOYMENTS = "/api/v1/deployments"


@pytest.fixture
def canary(make_agent, make_version):
    """An agent with versions 1.0 and 2.0: (agent, old, new)."""
    agent = make_agent()
    return agent, make_version(agent["id"], "1.0"), make_version(agent["id"], "2.0")


def deploy(api, agent, old, new, **fields):
    body = dict(agent_id=agent["id"], old_version_id=old and old["id"], new_version_id=new["id"],
                **fields)
    return api.post(DEPLOYMENTS, json=body)


def test_deployment_is_201_in_progress_with_10_percent(api, db, canary):
    agent, old, new = canary
    body = created(deploy(api, agent, old, new))
    assert (body["agent_id"], body["old_version_id"], body["new_version_id"], body["status"],
            body["traffic_percent"], body["completed_at"]) == (
        agent["id"], old["id"], new["id"], "in_progress", 10, None)
    recent(body["started_at"])
    assert db.count("canary_deployments", "id = %s", (body["id"],)) == 1


def test_first_deployment_has_no_old_version(api, canary):
    agent, _, new = canary
    body = created(deploy(api, agent, None, new, traffic_percent=100))
    assert (body["old_version_id"], body["traffic_percent"]) == (None, 100)


def test_second_unfinished_deployment_of_an_agent_is_409(api, db, canary):
    agent, old, new = canary
    created(deploy(api, agent, old, new))
    with db.unchanged():
        response = deploy(api, agent, new, old)
    assert_problem(response, 409, "conflict")


def test_a_paused_deployment_is_unfinished_too(api, db, canary):
    agent, old, new = canary
    first = created(deploy(api, agent, old, new))
    assert api.patch("%s/%s" % (DEPLOYMENTS, first["id"]),
                     json={"status": "paused"}).status_code == 200
    with db.unchanged():
        response = deploy(api, agent, new, old)
    assert_problem(response, 409, "conflict")


def test_after_completion_a_new_deployment_may_start(api, canary):
    agent, old, new = canary
    first = created(deploy(api, agent, old, new))
    api.patch("%s/%s" % (DEPLOYMENTS, first["id"]), json={"status": "completed"})
    created(deploy(api, agent, new, old))


def test_deployments_of_two_agents_run_at_once(api, make_agent, make_version):
    for _ in range(2):
        agent = make_agent()
        created(deploy(api, agent, None, make_version(agent["id"])))


@pytest.mark.parametrize("status", ["completed", "rolled_back"])
def test_finishing_a_deployment_sets_completed_at(api, db, canary, status):
    agent, old, new = canary
    deployment = created(deploy(api, agent, old, new))
    response = api.patch("%s/%s" % (DEPLOYMENTS, deployment["id"]), json={"status": status})
    assert response.status_code == 200, response.text
    assert response.json()["status"] == status
    recent(response.json()["completed_at"])
    assert db.scalar("SELECT completed_at IS NOT NULL FROM canary_deployments")


def test_pausing_and_resuming_keeps_completed_at_null(api, canary):
    agent, old, new = canary
    deployment = created(deploy(api, agent, old, new))
    path = "%s/%s" % (DEPLOYMENTS, deployment["id"])
    paused = api.patch(path, json={"status": "paused"}).json()
    assert (paused["status"], paused["completed_at"]) == ("paused", None)
    resumed = api.patch(path, json={"status": "in_progress", "traffic_percent": 50}).json()
    assert (resumed["status"], resumed["traffic_percent"], resumed["completed_at"]) == (
        "in_progress", 50, None)


def test_traffic_percent_changes_alone(api, db, canary):
    agent, old, new = canary
    deployment = created(deploy(api, agent, old, new))
    body = api.patch("%s/%s" % (DEPLOYMENTS, deployment["id"]), json={"traffic_percent": 0}).json()
    assert (body["traffic_percent"], body["status"]) == (0, "in_progress")
    assert db.scalar("SELECT traffic_percent FROM canary_deployments") == 0


@pytest.mark.parametrize("status", ["completed", "rolled_back"])
@pytest.mark.parametrize("change", [{"status": "in_progress"}, {"traffic_percent": 20},
                                    {"status": "paused"}])
def test_a_finished_deployment_cannot_change(api, db, canary, status, change):
    agent, old, new = canary
    deployment = created(deploy(api, agent, old, new))
    path = "%s/%s" % (DEPLOYMENTS, deployment["id"])
    assert api.patch(path, json={"status": status}).status_code == 200
    with db.unchanged():
        response = api.patch(path, json=change)
    assert_problem(response, 409, "conflict")


def test_patch_unknown_deployment_is_404(api, db):
    with db.unchanged():
        response = api.patch("%s/%s" % (DEPLOYMENTS, UNKNOWN_ID), json={"status": "paused"})
    assert_problem(response, 404, "not-found")


def test_deployment_of_an_unknown_agent_is_422_on_agent_id(api, db, canary):
    _, old, new = canary
    with db.unchanged():
        response = api.post(DEPLOYMENTS, json={"agent_id": UNKNOWN_ID, "new_version_id": new["id"]})
    assert "agent_id" in error_fields(response)


def test_version_of_another_agent_is_422_on_new_version_id(api, db, canary, make_agent,
                                                          make_version):
    agent, old, _ = canary
    other = make_agent()
    theirs = make_version(other["id"], "9")
    with db.unchanged():
        response = deploy(api, agent, old, theirs)
    assert error_fields(response) == {"new_version_id"}


def test_old_version_of_another_agent_is_422_on_old_version_id(api, db, canary, make_agent,
                                                              make_version):
    agent, _, new = canary
    theirs = make_version(make_agent()["id"], "9")
    with db.unchanged():
        response = deploy(api, agent, theirs, new)
    assert error_fields(response) == {"old_version_id"}


def test_unknown_new_version_is_422_on_new_version_id(api, db, canary):
    agent, old, _ = canary
    with db.unchanged():
        response = api.post(DEPLOYMENTS, json={"agent_id": agent["id"], "old_version_id": old["id"],
                                               "new_version_id": UNKNOWN_ID})
    assert error_fields(response) == {"new_version_id"}


@pytest.mark.parametrize("fields, field", [
    ({"agent_id": None}, "agent_id"), ({"new_version_id": None}, "new_version_id"),
    ({"traffic_percent": 101}, "traffic_percent"), ({"traffic_percent": -1}, "traffic_percent"),
    ({"traffic_percent": 5.5}, "traffic_percent"), ({"status": "paused"}, "status"),
    ({"new_version_id": "v2"}, "new_version_id"),
])
def test_invalid_deployment_is_422_naming_the_field(api, db, canary, fields, field):
    agent, old, new = canary
    body = {"agent_id": agent["id"], "old_version_id": old["id"], "new_version_id": new["id"]}
    body = {k: v for k, v in dict(body, **fields).items() if v is not None}
    with db.unchanged():
        response = api.post(DEPLOYMENTS, json=body)
    assert error_fields(response) == {field}


@pytest.mark.parametrize("body, field", [
    ({"status": "done"}, "status"), ({"traffic_percent": 200}, "traffic_percent"),
    ({"new_version_id": UNKNOWN_ID}, "new_version_id"),
])
def test_invalid_deployment_patch_is_422(api, db, canary, body, field):
    agent, old, new = canary
    deployment = created(deploy(api, agent, old, new))
    with db.unchanged():
        response = api.patch("%s/%s" % (DEPLOYMENTS, deployment["id"]), json=body)
    assert error_fields(response) == {field}


# ---------------------------------------------------------------- proposals

PROPOSALS = "/api/v1/proposals"


def test_proposal_is_201_pending_and_undecided(api, db, make_agent):
    agent = make_agent()
    problem = created(api.post(PROBLEMS, json=dict(PROBLEM, agent_id=agent["id"])))
    body = created(api.post(PROPOSALS, json={"problem_id": problem["id"], "agent_id": agent["id"],
                                             "title": "Raise the timeout",
                                             "description": "To 30 s"}))
    assert (body["problem_id"], body["agent_id"], body["title"], body["description"],
            body["status"], body["decided_at"]) == (
        problem["id"], agent["id"], "Raise the timeout", "To 30 s", "pending", None)
    recent(body["created_at"])
    assert db.count("improvement_proposals", "status = 'pending'") == 1


def test_proposal_with_only_a_title(api, db):
    body = created(api.post(PROPOSALS, json={"title": "Fleet-wide idea"}))
    assert (body["problem_id"], body["agent_id"], body["description"]) == (None, None, None)
    assert db.count("improvement_proposals") == 1


@pytest.mark.parametrize("status", ["approved", "rejected", "implemented"])
def test_deciding_a_proposal_sets_decided_at(api, db, make_agent, status):
    proposal = created(api.post(PROPOSALS, json={"agent_id": make_agent()["id"], "title": "t"}))
    response = api.patch("%s/%s" % (PROPOSALS, proposal["id"]), json={"status": status})
    assert response.status_code == 200, response.text
    assert response.json()["status"] == status
    recent(response.json()["decided_at"])
    assert db.scalar("SELECT status FROM improvement_proposals") == status


def test_back_to_pending_clears_decided_at(api, make_agent):
    proposal = created(api.post(PROPOSALS, json={"agent_id": make_agent()["id"], "title": "t"}))
    path = "%s/%s" % (PROPOSALS, proposal["id"])
    api.patch(path, json={"status": "approved"})
    body = api.patch(path, json={"status": "pending"}).json()
    assert (body["status"], body["decided_at"]) == ("pending", None)


@pytest.mark.parametrize("fields, field", [
    ({"problem_id": UNKNOWN_ID}, "problem_id"), ({"agent_id": UNKNOWN_ID}, "agent_id"),
    ({"title": ""}, "title"), ({"title": "t" * 501}, "title"), ({"title": None}, "title"),
    ({"description": "d" * 10001}, "description"), ({"status": "approved"}, "status"),
    ({"problem_id": 5}, "problem_id"),
])
def test_invalid_proposal_is_422_naming_the_field(api, db, make_agent, fields, field):
    body = {k: v for k, v in dict({"agent_id": make_agent()["id"], "title": "t"},
                                  **fields).items() if v is not None}
    with db.unchanged():
        response = api.post(PROPOSALS, json=body)
    assert error_fields(response) == {field}


@pytest.mark.parametrize("body, field", [
    ({"status": "maybe"}, "status"), ({"status": None}, "status"), ({"title": "x"}, "title"),
])
def test_invalid_proposal_patch_is_422(api, db, make_agent, body, field):
    proposal = created(api.post(PROPOSALS, json={"agent_id": make_agent()["id"], "title": "t"}))
    with db.unchanged():
        response = api.patch("%s/%s" % (PROPOSALS, proposal["id"]), json=body)
    assert error_fields(response) == {field}


def test_patch_unknown_proposal_is_404(api, db):
    with db.unchanged():
        response = api.patch("%s/%s" % (PROPOSALS, UNKNOWN_ID), json={"status": "approved"})
    assert_problem(response, 404, "not-found")


# ---------------------------------------------------------------- experiments

EXPERIMENTS = "/api/v1/experiments"


def test_experiment_is_201_draft(api, db, make_agent):
    agent = make_agent()
    body = created(api.post(EXPERIMENTS, json={"agent_id": agent["id"], "name": "shorter prompt",
                                               "hypothesis": "Fewer tokens, same quality"}))
    assert (body["agent_id"], body["name"], body["hypothesis"], body["status"],
            body["started_at"], body["ended_at"], body["results"]) == (
        agent["id"], "shorter prompt", "Fewer tokens, same quality", "draft", None, None, {})
    recent(body["created_at"])
    assert db.count("experiments", "status = 'draft'") == 1


def test_experiment_runs_then_completes_with_results(api, db, make_agent):
    experiment = created(api.post(EXPERIMENTS, json={"agent_id": make_agent()["id"],
                                                     "name": "e"}))
    path = "%s/%s" % (EXPERIMENTS, experiment["id"])
    running = api.patch(path, json={"status": "running"})
    assert running.status_code == 200, running.text
    assert (running.json()["status"], running.json()["ended_at"]) == ("running", None)
    started = recent(running.json()["started_at"])
    results = {"success_rate": {"control": 0.91, "variant": 0.94}, "n": 1200, "notes": [1, "a"]}
    done = api.patch(path, json={"status": "completed", "results": results})
    assert done.status_code == 200, done.text
    body = done.json()
    assert (body["status"], body["results"]) == ("completed", results)
    assert parse_time(body["started_at"]) == started
    assert recent(body["ended_at"]) >= started
    assert db.scalar("SELECT results FROM experiments") == results


def test_cancelling_a_draft_sets_ended_at(api, make_agent):
    experiment = created(api.post(EXPERIMENTS, json={"agent_id": make_agent()["id"],
                                                     "name": "e"}))
    body = api.patch("%s/%s" % (EXPERIMENTS, experiment["id"]), json={"status": "cancelled"})
    assert body.status_code == 200, body.text
    assert body.json()["status"] == "cancelled"
    recent(body.json()["ended_at"])


def test_results_change_alone(api, make_agent):
    experiment = created(api.post(EXPERIMENTS, json={"agent_id": make_agent()["id"],
                                                     "name": "e"}))
    body = api.patch("%s/%s" % (EXPERIMENTS, experiment["id"]), json={"results": {"a": 1}}).json()
    assert (body["status"], body["results"]) == ("draft", {"a": 1})


def test_the_same_experiment_name_for_one_agent_is_409(api, db, make_agent):
    agent = make_agent()
    created(api.post(EXPERIMENTS, json={"agent_id": agent["id"], "name": "same"}))
    with db.unchanged():
        response = api.post(EXPERIMENTS, json={"agent_id": agent["id"], "name": "same"})
    assert_problem(response, 409, "conflict")


def test_the_same_experiment_name_for_two_agents_is_fine(api, make_agent):
    for _ in range(2):
        created(api.post(EXPERIMENTS, json={"agent_id": make_agent()["id"], "name": "same"}))


@pytest.mark.parametrize("fields, field", [
    ({"agent_id": UNKNOWN_ID}, "agent_id"), ({"agent_id": None}, "agent_id"),
    ({"name": None}, "name"), ({"name": ""}, "name"), ({"name": "n" * 256}, "name"),
    ({"hypothesis": "h" * 10001}, "hypothesis"), ({"status": "running"}, "status"),
    ({"results": {}}, "results"),
])
def test_invalid_experiment_is_422_naming_the_field(api, db, make_agent, fields, field):
    body = {k: v for k, v in dict({"agent_id": make_agent()["id"], "name": "e"},
                                  **fields).items() if v is not None}
    with db.unchanged():
        response = api.post(EXPERIMENTS, json=body)
    assert error_fields(response) == {field}


@pytest.mark.parametrize("body, field", [
    ({"status": "paused"}, "status"), ({"results": []}, "results"),
    ({"results": "good"}, "results"), ({"name": "renamed"}, "name"),
])
def test_invalid_experiment_patch_is_422(api, db, make_agent, body, field):
    experiment = created(api.post(EXPERIMENTS, json={"agent_id": make_agent()["id"],
                                                     "name": "e"}))
    with db.unchanged():
        response = api.patch("%s/%s" % (EXPERIMENTS, experiment["id"]), json=body)
    assert error_fields(response) == {field}


def test_patch_unknown_experiment_is_404(api, db):
    with db.unchanged():
        response = api.patch("%s/%s" % (EXPERIMENTS, UNKNOWN_ID), json={"status": "running"})
    assert_problem(response, 404, "not-found")


# ---------------------------------------------------------------- shared rules

RECORDS = [PROBLEMS, DEPLOYMENTS, PROPOSALS, EXPERIMENTS]


# problems and deployments are read back (test_registry_reads.py), executions
# too (test_explorer.py)
@pytest.mark.parametrize("path", [PROPOSALS, EXPERIMENTS, EVALUATIONS])
def test_collection_answers_405_to_get_with_allow_post(api, db, path):
    with db.unchanged():
        response = api.get(path)
    assert_problem(response, 405, "method-not-allowed")
    assert {m.strip() for m in response.headers["Allow"].split(",")} - {"HEAD", "OPTIONS"} == {
        "POST"}


@pytest.mark.parametrize("path", RECORDS)
def test_record_id_that_is_not_a_uuid_is_404(api, db, path):
    with db.unchanged():
        response = api.patch(path + "/not-a-uuid", json={})
    assert_problem(response, 404, "not-found")


@pytest.mark.parametrize("path", [PROPOSALS, EXPERIMENTS])
def test_record_answers_405_to_get_with_allow_patch(api, db, path):
    with db.unchanged():
        response = api.get("%s/%s" % (path, UNKNOWN_ID))
    assert_problem(response, 405, "method-not-allowed")
    assert {m.strip() for m in response.headers["Allow"].split(",")} - {"HEAD", "OPTIONS"} == {
        "PATCH"}


@pytest.mark.parametrize("path", RECORDS + [EVALUATIONS])
def test_record_body_that_is_not_json_is_415(api, db, path):
    with db.unchanged():
        response = api.post(path, data=b"{}", headers={"Content-Type": "text/plain"})
    assert_problem(response, 415, "unsupported-media-type")


@pytest.mark.parametrize("path", RECORDS + [EVALUATIONS])
def test_record_body_over_1_mib_is_413(api, db, path):
    body = b'{"title": "' + b"t" * (1024 * 1024) + b'"}'
    with db.unchanged():
        response = api.post(path, data=body, headers={"Content-Type": "application/json"})
    assert_problem(response, 413, "payload-too-large")
