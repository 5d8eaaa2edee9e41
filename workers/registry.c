/* registry.c - the ingest group's registry: agents, versions, heartbeats, evaluations,
 * problems, deployments, proposals and experiments (SQL in sql/003_registry.sql) */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "groups.h"
#include "ingest.h"
#include "../fcgi/cursor.h"
#include "../fcgi/db.h"
#include "../fcgi/json_out.h"
#include "../fcgi/query.h"
#include "../fcgi/validate.h"
#include "../fcgi/write.h"

#define AGENTS_BASE "/api/v1/agents"
/* the longest heartbeat interval an agent may declare (seconds): a day */
#define HEARTBEAT_INTERVAL_MAX 86400
#define CAPABILITY_MAX         100

/* ---------------------------------------------------------------- prototypes */

static void check_agent(const json_t *body, problem_t *p);
static const char *agent_location(arena_t *arena, const PGresult *rows);
static const char *version_location(arena_t *arena, const PGresult *rows);

/* ---------------------------------------------------------------- input rules */

static const char *const agent_states[] = {"idle", "busy", "error", "offline", NULL};
static const char *const problem_statuses[] = {"open", "investigating", "resolved", NULL};
static const char *const deployment_statuses[] = {"in_progress", "paused", "completed",
                                                  "rolled_back", NULL};
static const char *const proposal_statuses[] = {"pending", "approved", "rejected", "implemented",
                                                NULL};
static const char *const experiment_statuses[] = {"draft", "running", "completed", "cancelled",
                                                  NULL};

/* name, type, flags, min, max, allowed values */
static const field_rule_t agent_fields[] = {
    {"name", FIELD_STRING, FIELD_REQUIRED, 1, 255, NULL},
    {"description", FIELD_STRING, FIELD_NULLABLE, 0, 10000, NULL},
    {"capabilities", FIELD_ARRAY, 0, 0, 100, NULL},
    {"metadata", FIELD_OBJECT, 0, 0, 0, NULL},
    {"is_active", FIELD_BOOLEAN, 0, 0, 0, NULL},
    {"heartbeat_interval_seconds", FIELD_INTEGER, 0, 1, HEARTBEAT_INTERVAL_MAX, NULL},
    {NULL, 0, 0, 0, 0, NULL},
};

static const field_rule_t agent_patch_fields[] = {
    {"name", FIELD_STRING, 0, 1, 255, NULL},
    {"description", FIELD_STRING, FIELD_NULLABLE, 0, 10000, NULL},
    {"capabilities", FIELD_ARRAY, 0, 0, 100, NULL},
    {"metadata", FIELD_OBJECT, 0, 0, 0, NULL},
    {"is_active", FIELD_BOOLEAN, 0, 0, 0, NULL},
    {"heartbeat_interval_seconds", FIELD_INTEGER, 0, 1, HEARTBEAT_INTERVAL_MAX, NULL},
    {NULL, 0, 0, 0, 0, NULL},
};

static const field_rule_t version_fields[] = {
    {"version", FIELD_STRING, FIELD_REQUIRED, 1, 100, NULL},
    {"config", FIELD_OBJECT, 0, 0, 0, NULL},
    {NULL, 0, 0, 0, 0, NULL},
};

static const field_rule_t heartbeat_fields[] = {
    {"state", FIELD_STRING, 0, 0, 0, agent_states},
    {"current_task", FIELD_STRING, FIELD_NULLABLE, 0, 1000, NULL},
    {NULL, 0, 0, 0, 0, NULL},
};

static const field_rule_t evaluation_fields[] = {
    {"execution_id", FIELD_STRING, FIELD_REQUIRED, 0, 0, NULL},
    {"passed", FIELD_BOOLEAN, FIELD_REQUIRED, 0, 0, NULL},
    {"score", FIELD_NUMBER, FIELD_NULLABLE, 0, 1, NULL},
    {"evaluator", FIELD_STRING, FIELD_NULLABLE, 1, 100, NULL},
    {NULL, 0, 0, 0, 0, NULL},
};

static const field_rule_t problem_fields[] = {
    {"agent_id", FIELD_STRING, FIELD_NULLABLE, 0, 0, NULL},
    {"execution_id", FIELD_STRING, FIELD_NULLABLE, 0, 0, NULL},
    {"category", FIELD_STRING, FIELD_REQUIRED, 1, 100, NULL},
    {"severity", FIELD_STRING, FIELD_REQUIRED, 0, 0, alerts_severities},
    {"title", FIELD_STRING, FIELD_REQUIRED, 1, 500, NULL},
    {"description", FIELD_STRING, FIELD_NULLABLE, 0, 10000, NULL},
    {NULL, 0, 0, 0, 0, NULL},
};

static const field_rule_t problem_patch_fields[] = {
    {"status", FIELD_STRING, 0, 0, 0, problem_statuses},
    {"severity", FIELD_STRING, 0, 0, 0, alerts_severities},
    {"title", FIELD_STRING, 0, 1, 500, NULL},
    {"description", FIELD_STRING, FIELD_NULLABLE, 0, 10000, NULL},
    {NULL, 0, 0, 0, 0, NULL},
};

static const field_rule_t deployment_fields[] = {
    {"agent_id", FIELD_STRING, FIELD_REQUIRED, 0, 0, NULL},
    {"old_version_id", FIELD_STRING, FIELD_NULLABLE, 0, 0, NULL},
    {"new_version_id", FIELD_STRING, FIELD_REQUIRED, 0, 0, NULL},
    {"traffic_percent", FIELD_INTEGER, 0, 0, 100, NULL},
    {NULL, 0, 0, 0, 0, NULL},
};

static const field_rule_t deployment_patch_fields[] = {
    {"status", FIELD_STRING, 0, 0, 0, deployment_statuses},
    {"traffic_percent", FIELD_INTEGER, 0, 0, 100, NULL},
    {NULL, 0, 0, 0, 0, NULL},
};

static const field_rule_t proposal_fields[] = {
    {"problem_id", FIELD_STRING, FIELD_NULLABLE, 0, 0, NULL},
    {"agent_id", FIELD_STRING, FIELD_NULLABLE, 0, 0, NULL},
    {"title", FIELD_STRING, FIELD_REQUIRED, 1, 500, NULL},
    {"description", FIELD_STRING, FIELD_NULLABLE, 0, 10000, NULL},
    {NULL, 0, 0, 0, 0, NULL},
};

static const field_rule_t proposal_patch_fields[] = {
    {"status", FIELD_STRING, 0, 0, 0, proposal_statuses},
    {NULL, 0, 0, 0, 0, NULL},
};

static const field_rule_t experiment_fields[] = {
    {"agent_id", FIELD_STRING, FIELD_REQUIRED, 0, 0, NULL},
    {"name", FIELD_STRING, FIELD_REQUIRED, 1, 255, NULL},
    {"hypothesis", FIELD_STRING, FIELD_NULLABLE, 0, 10000, NULL},
    {NULL, 0, 0, 0, 0, NULL},
};

static const field_rule_t experiment_patch_fields[] = {
    {"status", FIELD_STRING, 0, 0, 0, experiment_statuses},
    {"results", FIELD_OBJECT, 0, 0, 0, NULL},
    {NULL, 0, 0, 0, 0, NULL},
};

static const char *const evaluation_uuids[] = {"execution_id", NULL};
static const char *const problem_uuids[] = {"agent_id", "execution_id", NULL};
static const char *const deployment_uuids[] = {"agent_id", "old_version_id", "new_version_id",
                                               NULL};
static const char *const proposal_uuids[] = {"problem_id", "agent_id", NULL};
static const char *const experiment_uuids[] = {"agent_id", NULL};

/* fields, uuids, extra */
static const body_rules_t agent_input = {agent_fields, NULL, check_agent};
static const body_rules_t agent_patch_input = {agent_patch_fields, NULL, check_agent};
static const body_rules_t version_input = {version_fields, NULL, NULL};
static const body_rules_t heartbeat_input = {heartbeat_fields, NULL, NULL};
static const body_rules_t evaluation_input = {evaluation_fields, evaluation_uuids, NULL};
static const body_rules_t problem_input = {problem_fields, problem_uuids, NULL};
static const body_rules_t problem_patch_input = {problem_patch_fields, NULL, NULL};
static const body_rules_t deployment_input = {deployment_fields, deployment_uuids, NULL};
static const body_rules_t deployment_patch_input = {deployment_patch_fields, NULL, NULL};
static const body_rules_t proposal_input = {proposal_fields, proposal_uuids, NULL};
static const body_rules_t proposal_patch_input = {proposal_patch_fields, NULL, NULL};
static const body_rules_t experiment_input = {experiment_fields, experiment_uuids, NULL};
static const body_rules_t experiment_patch_input = {experiment_patch_fields, NULL, NULL};

/* ---------------------------------------------------------------- output shapes */

/* ---------------------------------------------------------------- statements */

static const db_statement_t stmt_agent_list = {
    "registry_agent_list",
    "SELECT r.name, r.id, row_to_json(r) AS body FROM agent_rows r"
    " WHERE ($1::boolean IS NULL OR r.is_active = $1)"
    "   AND ($2::text IS NULL OR (r.name, r.id) > ($2, $3::uuid))"
    "   AND ($5::boolean IS NULL OR r.silent = $5)"
    " ORDER BY r.name, r.id"
    " LIMIT $4",
    5, true};
static const db_statement_t stmt_agent_get = {
    "registry_agent_get", "SELECT row_to_json(r) AS body FROM agent_rows r WHERE r.id = $1", 1,
    true};
/* The heartbeat: one UPDATE; its row count says whether the agent exists.
 * $2 state (NULL keeps it), $3 whether current_task was sent, $4 its value.
 * Its commit does not wait for the WAL flush (synchronous_commit off for this
 * transaction only): a heartbeat is liveness that the next one overwrites in
 * seconds, and a crash can lose at most the last fraction of a second of
 * them. Executions and every other write wait for the flush. It sets
 * updated_at itself, so the set_updated_at trigger (001) calls no function. */
static const db_statement_t stmt_heartbeat = {
    "registry_heartbeat",
    "WITH relaxed AS (SELECT set_config('synchronous_commit', 'off', true))"
    " UPDATE agents SET last_heartbeat_at = now(), updated_at = now(),"
    "       state = COALESCE($2, state),"
    "       current_task = CASE WHEN $3::boolean THEN $4 ELSE current_task END"
    "  FROM relaxed"
    " WHERE id = $1",
    4, true};
static const db_statement_t stmt_agent_register = {
    "registry_agent_register",
    "SELECT row_to_json(w.agent) AS body, (w.agent).id, w.created FROM agent_register($1) w", 1,
    false};
static const db_statement_t stmt_agent_patch = {
    "registry_agent_patch", "SELECT row_to_json(x) AS body, x.id FROM agent_patch($1, $2) x", 2,
    true};
static const db_statement_t stmt_version_create = {
    "registry_version_create",
    "SELECT row_to_json(x) AS body, x.id, x.agent_id FROM agent_version_create($1, $2) x", 2,
    false};
static const db_statement_t stmt_version_activate = {
    "registry_version_activate",
    "SELECT row_to_json(x) AS body, x.id, x.agent_id FROM agent_version_activate($1, $2) x", 2,
    true};
static const db_statement_t stmt_evaluation_record = {
    "registry_evaluation_record",
    "SELECT row_to_json(w.evaluation) AS body, w.created FROM evaluation_record($1) w", 1, false};
static const db_statement_t stmt_problem_create = {
    "registry_problem_create", "SELECT row_to_json(x) AS body, x.id FROM problem_create($1) x", 1,
    false};
static const db_statement_t stmt_problem_patch = {
    "registry_problem_patch", "SELECT row_to_json(x) AS body, x.id FROM problem_patch($1, $2) x", 2,
    true};
static const db_statement_t stmt_deployment_create = {
    "registry_deployment_create",
    "SELECT row_to_json(x) AS body, x.id FROM deployment_create($1) x", 1, false};
static const db_statement_t stmt_deployment_patch = {
    "registry_deployment_patch",
    "SELECT row_to_json(x) AS body, x.id FROM deployment_patch($1, $2) x", 2, true};
static const db_statement_t stmt_proposal_create = {
    "registry_proposal_create", "SELECT row_to_json(x) AS body, x.id FROM proposal_create($1) x", 1,
    false};
static const db_statement_t stmt_proposal_patch = {
    "registry_proposal_patch", "SELECT row_to_json(x) AS body, x.id FROM proposal_patch($1, $2) x",
    2, true};
static const db_statement_t stmt_experiment_create = {
    "registry_experiment_create",
    "SELECT row_to_json(x) AS body, x.id FROM experiment_create($1) x", 1, false};
static const db_statement_t stmt_experiment_patch = {
    "registry_experiment_patch",
    "SELECT row_to_json(x) AS body, x.id FROM experiment_patch($1, $2) x", 2, true};

/* ---------------------------------------------------------------- writes */

static const char *const agent_nouns[] = {"agent", "version"};
static const char *const problem_nouns[] = {"problem"};
static const char *const deployment_nouns[] = {"deployment"};
static const char *const proposal_nouns[] = {"proposal"};
static const char *const experiment_nouns[] = {"experiment"};

/* stmt, nouns, body, status, location */
/* clang-format off */
static const write_route_t read_agent = {
    &stmt_agent_get, agent_nouns, NULL, 200, NULL};
static const write_route_t write_agent_register = {
    &stmt_agent_register, NULL, &agent_input, 0, agent_location};
static const write_route_t write_agent_patch = {
    &stmt_agent_patch, agent_nouns, &agent_patch_input, 200, NULL};
static const write_route_t write_version_create = {
    &stmt_version_create, agent_nouns, &version_input, 201, version_location};
static const write_route_t write_version_activate = {
    &stmt_version_activate, agent_nouns, NULL, 200, NULL};
static const write_route_t write_evaluation_record = {
    &stmt_evaluation_record, NULL, &evaluation_input, 0, NULL};
static const write_route_t write_problem_create = {
    &stmt_problem_create, NULL, &problem_input, 201, NULL};
static const write_route_t write_problem_patch = {
    &stmt_problem_patch, problem_nouns, &problem_patch_input, 200, NULL};
static const write_route_t write_deployment_create = {
    &stmt_deployment_create, NULL, &deployment_input, 201, NULL};
static const write_route_t write_deployment_patch = {
    &stmt_deployment_patch, deployment_nouns, &deployment_patch_input,
    200, NULL};
static const write_route_t write_proposal_create = {
    &stmt_proposal_create, NULL, &proposal_input, 201, NULL};
static const write_route_t write_proposal_patch = {
    &stmt_proposal_patch, proposal_nouns, &proposal_patch_input, 200, NULL};
static const write_route_t write_experiment_create = {
    &stmt_experiment_create, NULL, &experiment_input, 201, NULL};
static const write_route_t write_experiment_patch = {
    &stmt_experiment_patch, experiment_nouns, &experiment_patch_input,
    200, NULL};
/* clang-format on */

/* ---------------------------------------------------------------- input checks */

/* capabilities: strings of 1..CAPABILITY_MAX characters. */
static void check_capabilities(const json_t *capabilities, problem_t *p)
{
    const json_t *item;
    size_t i;

    json_array_foreach (capabilities, i, item) {
        const char *path = arena_printf(p->arena, "capabilities[%zu]", i);
        size_t n = json_is_string(item) ? validate_utf8_length(json_string_value(item)) : 0;
        if (!json_is_string(item))
            problem_field(p, path, "must be a string");
        else if (n < 1 || n > CAPABILITY_MAX)
            problem_field(p, path, "must be 1 to %d characters long", CAPABILITY_MAX);
    }
}

static void check_agent(const json_t *body, problem_t *p)
{
    check_capabilities(json_object_get(body, "capabilities"), p);
    const json_t *metadata = json_object_get(body, "metadata");
    if (json_is_object(metadata))
        validate_flat_object(metadata, "metadata", p);
}

/* ---------------------------------------------------------------- locations */

static const char *agent_location(arena_t *arena, const PGresult *rows)
{
    return arena_printf(arena, AGENTS_BASE "/%s", db_get(rows, 0, "id"));
}

static const char *version_location(arena_t *arena, const PGresult *rows)
{
    return arena_printf(arena, AGENTS_BASE "/%s/versions/%s", db_get(rows, 0, "agent_id"),
                        db_get(rows, 0, "id"));
}

/* ---------------------------------------------------------------- agents */

/* Reads ?active=&silent=&limit=&cursor= into the parameters of
 * stmt_agent_list and *limit. Returns 0, or -1 with a 400 naming each bad
 * parameter. */
static int agents_list_params(request_t *req, const char **params, long *limit, problem_t *p)
{
    static const char *const filters[] = {"active", "silent", NULL};
    const char *active = request_query(req, "active");
    cursor_page_t page;

    cursor_page_params(req, filters, 2, &page, p);
    if (active != NULL && strcmp(active, "true") && strcmp(active, "false")) {
        problem_fail(p, PROBLEM_MALFORMED, "The query parameter active is invalid.");
        problem_field(p, "active", "must be true or false");
    }
    const char *silent = query_boolean(req, "silent", p);
    *limit = page.limit;
    params[0] = active;
    params[1] = page.key[0];
    params[2] = page.key[1];
    params[3] = arena_printf(req->arena, "%ld", *limit + 1);
    params[4] = silent;
    return p->status != 0 ? -1 : 0;
}

/* GET /agents ?active=&silent=&limit=&cursor=: {items: [Agent], next_cursor},
 * by name then id. 400 naming each bad parameter. */
static int agents_list(request_t *req, response_t *res, problem_t *p)
{
    const char *params[5];
    PGresult *rows = NULL;
    long limit;
    int rc = -1;

    if (agents_list_params(req, params, &limit, p) != 0)
        goto done;
    rows = db_exec(&stmt_agent_list, params, p);
    if (rows == NULL)
        goto done;
    static const char *const keys[] = {"name", "id", NULL};
    size_t len;
    const char *text = cursor_page_json(req->arena, rows, limit, keys, &len);
    response_text(res, 200, text, len);
    rc = 0;
done:
    PQclear(rows);
    return rc;
}

/* POST /agents/{id}/heartbeat, body optional ({state, current_task}): 204;
 * last_heartbeat_at = now(), and what was sent. One UPDATE; 404 unknown agent. */
static int agents_heartbeat(request_t *req, response_t *res, problem_t *p)
{
    json_t *body = NULL;
    PGresult *rows = NULL;
    int rc = -1;

    if (write_captured_ids(req, agent_nouns, p) != 0)
        goto done;
    if (write_has_body(req)) {
        body = request_json_body(req, REQUEST_BODY_LIMIT, p);
        if (body == NULL || write_check_body(body, &heartbeat_input, p) != 0)
            goto done;
    }
    const json_t *task = json_object_get(body, "current_task");
    const char *params[4] = {req->captures[0], field_string(body, "state"),
                             task != NULL ? "true" : "false", json_string_value(task)};
    rows = db_exec(&stmt_heartbeat, params, p);
    if (rows == NULL)
        goto done;
    if (strcmp(PQcmdTuples(rows), "1") != 0) {
        problem_fail(p, PROBLEM_NOT_FOUND, "No agent %s.", req->captures[0]);
        goto done;
    }
    response_json(res, 204, NULL);
    rc = 0;
done:
    PQclear(rows);
    json_decref(body);
    return rc;
}

/* ---------------------------------------------------------------- routes */

/* Every write, and the read of an agent, is write_serve with its
 * write_route_t:
 * GET   /agents/{id}                  200 Agent; 404
 * POST  /agents                       201 Agent + Location, or 200 when the
 *                                     name exists (the members sent applied)
 * PATCH /agents/{id}                  404 unknown agent, 409 name of another
 * POST  /agents/{id}/versions         201 AgentVersion + Location; 404
 *                                     unknown agent, 409 version string taken
 * POST  .../versions/{vid}/activate   200 AgentVersion, now the only active
 *                                     version of its agent; 404 unknown ids
 * POST  /evaluations                  201 Evaluation, or 200 when it replaced
 *                                     one; 422 on execution_id unknown
 * POST  /problems                     201 Problem (open); 422 on an unknown
 *                                     agent_id or execution_id
 * PATCH /problems/{id}                200 Problem; resolved_at follows status
 * POST  /deployments                  201 Deployment (in_progress); 422 on
 *                                     unknown agent or versions not of that
 *                                     agent, 409 when one is unfinished
 * PATCH /deployments/{id}             200 Deployment; 409 once finished
 * POST  /proposals                    201 Proposal (pending); 422 on unknown
 *                                     problem_id or agent_id
 * PATCH /proposals/{id}               200 Proposal; decided_at follows status
 * POST  /experiments                  201 Experiment (draft); 422 unknown
 *                                     agent, 409 name taken for that agent
 * PATCH /experiments/{id}             200 Experiment; started_at and ended_at
 *                                     follow status; 409 when one that never
 *                                     ran would complete */
/* ---------------------------------------------------------------- reading back */

/* The lists of what was ingested (SQL in sql/functions/26_explorer.sql):
 * each a keyset page, newest first, (time, id) of the last row the cursor. */
static const db_statement_t stmt_problem_list = {
    "registry_problem_list",
    "SELECT time_key, id_key, body FROM problems_page($1, $2, $3, $4, $5, $6, $7)", 7, true};
static const db_statement_t stmt_problem_get = {
    "registry_problem_get", "SELECT row_to_json(r) AS body FROM problem_rows r WHERE r.id = $1", 1,
    true};
static const db_statement_t stmt_deployment_list = {
    "registry_deployment_list",
    "SELECT time_key, id_key, body FROM deployments_page($1, $2, $3, $4, $5)", 5, true};
static const db_statement_t stmt_deployment_get = {
    "registry_deployment_get",
    "SELECT row_to_json(r) AS body FROM deployment_rows r WHERE r.id = $1", 1, true};
static const db_statement_t stmt_version_list = {
    "registry_version_list",
    "SELECT time_key, id_key, body FROM agent_versions_page($1, $2, $3, $4)", 4, true};

/* stmt, nouns, body, status, location */
static const write_route_t read_problem = {&stmt_problem_get, problem_nouns, NULL, 200, NULL};
static const write_route_t read_deployment = {&stmt_deployment_get, deployment_nouns, NULL, 200,
                                              NULL};

static const char *const time_keys[] = {"time_key", "id_key", NULL};

/* GET /problems ?status=&category=&severity=&agent_id=&limit=&cursor=:
 * {items: [FleetProblem], next_cursor}, newest sighting first. */
static int problems_list(request_t *req, response_t *res, problem_t *p)
{
    static const char *const filters[] = {"status", "category", "severity", "agent_id", NULL};
    const char *params[7];
    cursor_page_t page;

    if (cursor_page_params(req, filters, 2, &page, p) != 0)
        return -1;
    params[0] = query_one_of(req, "status", problem_statuses, p);
    params[1] = request_query(req, "category");
    if (params[1] != NULL &&
        (validate_utf8_length(params[1]) < 1 || validate_utf8_length(params[1]) > 100)) {
        problem_fail(p, PROBLEM_MALFORMED, "The query parameter category is invalid.");
        problem_field(p, "category", "must be 1 to 100 characters long");
    }
    params[2] = query_one_of(req, "severity", alerts_severities, p);
    params[3] = query_uuid(req, "agent_id", p);
    if (p->status != 0 || cursor_time_keyset(req, &page, p) != 0)
        return -1;
    params[4] = page.key[0];
    params[5] = page.key[1];
    return cursor_answer_page(req, res, p, &stmt_problem_list, params, page.limit, time_keys);
}

/* GET /deployments ?agent_id=&status=&limit=&cursor=: {items: [Deployment],
 * next_cursor}, newest first. */
static int deployments_list(request_t *req, response_t *res, problem_t *p)
{
    static const char *const filters[] = {"agent_id", "status", NULL};
    const char *params[5];
    cursor_page_t page;

    if (cursor_page_params(req, filters, 2, &page, p) != 0)
        return -1;
    params[0] = query_uuid(req, "agent_id", p);
    params[1] = query_one_of(req, "status", deployment_statuses, p);
    if (p->status != 0 || cursor_time_keyset(req, &page, p) != 0)
        return -1;
    params[2] = page.key[0];
    params[3] = page.key[1];
    return cursor_answer_page(req, res, p, &stmt_deployment_list, params, page.limit, time_keys);
}

/* GET /agents/{id}/versions ?limit=&cursor=: {items: [AgentVersion],
 * next_cursor}, newest first; 404 for an unknown agent. */
static int versions_list(request_t *req, response_t *res, problem_t *p)
{
    static const char *const filters[] = {NULL};
    const char *params[4];
    cursor_page_t page;

    if (!validate_uuid(req->captures[0]))
        return problem_fail(p, PROBLEM_NOT_FOUND, "No agent %s.", req->captures[0]);
    if (cursor_page_params(req, filters, 2, &page, p) != 0 ||
        cursor_time_keyset(req, &page, p) != 0)
        return -1;
    params[0] = req->captures[0];
    params[1] = page.key[0];
    params[2] = page.key[1];
    return cursor_answer_page(req, res, p, &stmt_version_list, params, page.limit, time_keys);
}

/* clang-format off */
const route_t registry_routes[] = {
    {.method = "POST", .pattern = AGENTS_BASE, .handler = write_serve,
     .flags = ROUTE_IDEMPOTENT, .arg = &write_agent_register},
    {.method = "GET", .pattern = AGENTS_BASE, .handler = agents_list},
    {.method = "GET", .pattern = AGENTS_BASE "/{id}", .handler = write_serve,
     .arg = &read_agent},
    {.method = "PATCH", .pattern = AGENTS_BASE "/{id}", .handler = write_serve,
     .arg = &write_agent_patch},
    {.method = "POST", .pattern = AGENTS_BASE "/{id}/heartbeat", .handler = agents_heartbeat,
     .flags = ROUTE_IDEMPOTENT},
    {.method = "GET", .pattern = AGENTS_BASE "/{id}/versions", .handler = versions_list},
    {.method = "POST", .pattern = AGENTS_BASE "/{id}/versions", .handler = write_serve,
     .flags = ROUTE_IDEMPOTENT, .arg = &write_version_create},
    {.method = "POST", .pattern = AGENTS_BASE "/{id}/versions/{version_id}/activate",
     .handler = write_serve, .flags = ROUTE_IDEMPOTENT, .arg = &write_version_activate},
    {.method = "POST", .pattern = "/api/v1/evaluations", .handler = write_serve,
     .flags = ROUTE_IDEMPOTENT, .arg = &write_evaluation_record},
    {.method = "POST", .pattern = "/api/v1/problems", .handler = write_serve,
     .flags = ROUTE_IDEMPOTENT, .arg = &write_problem_create},
    {.method = "GET", .pattern = "/api/v1/problems", .handler = problems_list},
    {.method = "GET", .pattern = "/api/v1/problems/{id}", .handler = write_serve,
     .arg = &read_problem},
    {.method = "PATCH", .pattern = "/api/v1/problems/{id}", .handler = write_serve,
     .arg = &write_problem_patch},
    {.method = "POST", .pattern = "/api/v1/deployments", .handler = write_serve,
     .flags = ROUTE_IDEMPOTENT, .arg = &write_deployment_create},
    {.method = "GET", .pattern = "/api/v1/deployments", .handler = deployments_list},
    {.method = "GET", .pattern = "/api/v1/deployments/{id}", .handler = write_serve,
     .arg = &read_deployment},
    {.method = "PATCH", .pattern = "/api/v1/deployments/{id}", .handler = write_serve,
     .arg = &write_deployment_patch},
    {.method = "POST", .pattern = "/api/v1/proposals", .handler = write_serve,
     .flags = ROUTE_IDEMPOTENT, .arg = &write_proposal_create},
    {.method = "PATCH", .pattern = "/api/v1/proposals/{id}", .handler = write_serve,
     .arg = &write_proposal_patch},
    {.method = "POST", .pattern = "/api/v1/experiments", .handler = write_serve,
     .flags = ROUTE_IDEMPOTENT, .arg = &write_experiment_create},
    {.method = "PATCH", .pattern = "/api/v1/experiments/{id}", .handler = write_serve,
     .arg = &write_experiment_patch},
    {.method = NULL},
};
/* clang-format on */
