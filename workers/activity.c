/* activity.c - the alerts group's activity feed: GET /activity (one indexed
 * query per page over activity_events, ids in commit order; type=execution
 * reads executions itself) and /activity/recent in seed 000's shape (SQL in
 * sql/functions/25_activity.sql) */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "groups.h"
#include "../fcgi/cursor.h"
#include "../fcgi/db.h"
#include "../fcgi/query.h"
#include "../fcgi/rfc3339.h"
#include "../fcgi/validate.h"
#include "../fcgi/write.h"

#define ACTIVITY_BASE "/api/v1/activity"
/* the longest time range: from .. to (or now) */
#define RANGE_MAX_MICROS (400LL * 86400 * 1000000)

/* ---------------------------------------------------------------- words */

static const char *const all_types[] = {
    "execution_failed", "execution", "deployment", "problem", "alert", "agent",
    "version",          "dashboard", "rule",       NULL};
/* without type: every type of the feed (all executions are asked for) */
static const char *const feed_types[] = {
    "execution_failed", "deployment", "problem", "alert", "agent",
    "version",          "dashboard",  "rule",    NULL};
static const char *const severities[] = {"critical", "high", "medium", "low", NULL};
static const char *const known[] = {"type", "agent_id", "severity", "before", "after",
                                    "from", "to",       "limit",    "cursor", NULL};

/* ---------------------------------------------------------------- statements */

/* Moves the committed staged events into the feed (its own transaction,
 * before the page is read: see the header of 25_activity.sql). */
static const db_statement_t stmt_sequence = {"activity_sequence",
                                             "SELECT activity_sequence() AS moved", 0, true};

/* $1 types, $2 agent_id, $3 severities (NULL: any), $4 before, $5 after
 * (ids), $6 from, $7 to (at), $8 the limit + 1. */
#define FEED_FILTERS                                                                               \
    " AND ($2::uuid IS NULL OR e.agent_id = $2)"                                                   \
    " AND ($3::text[] IS NULL OR e.severity = ANY ($3))"                                           \
    " AND ($4::bigint IS NULL OR e.id < $4) AND ($5::bigint IS NULL OR e.id > $5)"                 \
    " AND ($6::timestamptz IS NULL OR e.at >= $6) AND ($7::timestamptz IS NULL OR e.at < $7)"

/* The types whose events carry a severity (problems, alert transitions,
 * rules: sql/functions/25_activity.sql); a severity filter asks only them. */
#define FEED_SEVERITY_TYPES " AND ($3::text[] IS NULL OR t.type IN ('problem', 'alert', 'rule'))"

/* One page: for each type asked (and each severity, when asked), the first
 * limit + 1 events of its own index in the page's order, then the first of
 * those: every probe is an index range read in order (PostgreSQL 15 cannot
 * read an index in order under type = ANY (...), and one index by id would
 * walk past every event of the other types to find a rare one). FROM names
 * the probes, COND their index condition, ORDER ASC (after=: a follower,
 * oldest first; the cursor's DIR a) or DESC (d). Then the rows of the page's
 * ids. */
#define FEED_PAGE(FROM, COND, ORDER, DIR)                                                          \
    "WITH page AS (SELECT x.id FROM " FROM " CROSS JOIN LATERAL"                                   \
    "               (SELECT e.id FROM activity_events e WHERE " COND FEED_FILTERS                  \
    "                 ORDER BY e.id " ORDER " LIMIT $8) x"                                         \
    "              ORDER BY x.id " ORDER " LIMIT $8)"                                              \
    " SELECT '" DIR "' AS dir, r.id AS id_key,"                                                    \
    "        row_to_json(r) AS body"                                                               \
    "   FROM page JOIN activity_rows r ON r.id = page.id ORDER BY r.id " ORDER

/* Without agent_id or severity: a probe per type, index (type, id). */
#define FEED_BY_TYPE(ORDER, DIR)                                                                   \
    FEED_PAGE("unnest($1::text[]) AS t(type)", "e.type = t.type", ORDER, DIR)
/* agent_id: a probe per type, index (agent_id, type, id). */
#define FEED_BY_AGENT(ORDER, DIR)                                                                  \
    FEED_PAGE("(SELECT t.type FROM unnest($1::text[]) AS t(type) WHERE true" FEED_SEVERITY_TYPES   \
              ") t",                                                                               \
              "e.agent_id = $2 AND e.type = t.type", ORDER, DIR)
/* severity without agent_id: a probe per type and severity, index
 * (severity, type, id). */
#define FEED_BY_SEVERITY(ORDER, DIR)                                                               \
    FEED_PAGE("(SELECT t.type, s.severity FROM unnest($1::text[]) AS t(type),"                     \
              "        unnest($3::text[]) AS s(severity) WHERE true" FEED_SEVERITY_TYPES ") t",    \
              "e.severity = t.severity AND e.type = t.type", ORDER, DIR)

static const db_statement_t stmt_feed[3][2] = {
    {{"activity_type_newest", FEED_BY_TYPE("DESC", "d"), 8, true},
     {"activity_type_after", FEED_BY_TYPE("ASC", "a"), 8, true}},
    {{"activity_agent_newest", FEED_BY_AGENT("DESC", "d"), 8, true},
     {"activity_agent_after", FEED_BY_AGENT("ASC", "a"), 8, true}},
    {{"activity_severity_newest", FEED_BY_SEVERITY("DESC", "d"), 8, true},
     {"activity_severity_after", FEED_BY_SEVERITY("ASC", "a"), 8, true}},
};
/* type=execution: every execution, from executions, newest first by
 * (started_at, id). $1 agent_id, $2 from, $3 to, $4 $5 the keyset, $6 the
 * limit + 1. */
static const db_statement_t stmt_executions = {
    "activity_executions",
    "SELECT 'x' AS dir, x.started_at AS at_key, x.id AS id_key, json_build_object("
    "         'id', x.id, 'type', 'execution', 'at', api_time(x.started_at),"
    "         'title', 'Execution ' || x.outcome || coalesce(': ' || x.error_category, ''),"
    "         'status', x.outcome, 'severity', NULL,"
    "         'agent', json_build_object('id', x.agent_id, 'name', g.name),"
    "         'link', '/api/v1/executions/' || x.id) AS body"
    "  FROM (SELECT e.id, e.started_at, e.agent_id, e.error_category,"
    "               CASE WHEN execution_success(e.eval_passed, e.status) THEN 'succeeded'"
    "                    WHEN e.status = 'succeeded' THEN 'failed_evaluation'"
    "                    ELSE e.status END AS outcome"
    "          FROM executions e"
    "         WHERE ($1::uuid IS NULL OR e.agent_id = $1)"
    "           AND ($2::timestamptz IS NULL OR e.started_at >= $2)"
    "           AND ($3::timestamptz IS NULL OR e.started_at < $3)"
    "           AND ($4::timestamptz IS NULL OR (e.started_at, e.id) < ($4, $5::uuid))"
    "         ORDER BY e.started_at DESC, e.id DESC LIMIT $6) x"
    "  LEFT JOIN agents g ON g.id = x.agent_id"
    " ORDER BY x.started_at DESC, x.id DESC",
    6, true};
/* GET /activity/recent: seed 000's view, the newest $1 of the executions
 * and of the feed's other events (failed executions are among the first). */
static const db_statement_t stmt_recent = {
    "activity_recent",
    "SELECT json_build_object('activities', coalesce(json_agg(json_build_object("
    "           'id', u.id, 'type', u.type, 'title', u.title, 'description', u.description,"
    "           'status', u.status, 'timestamp', api_time(u.at)) ORDER BY u.at DESC, u.id DESC),"
    "           '[]')) AS body"
    "  FROM (SELECT * FROM ("
    "          (SELECT e.id::text AS id, 'execution' AS type,"
    "                  'Execution: ' || coalesce(g.name, 'agent') AS title,"
    "                  'Agent execution completed' AS description,"
    "                  CASE WHEN execution_success(e.eval_passed, e.status) THEN 'success'"
    "                       ELSE 'failed' END AS status, e.started_at AS at"
    "             FROM executions e LEFT JOIN agents g ON g.id = e.agent_id"
    "            ORDER BY e.started_at DESC, e.id DESC LIMIT $1)"
    "          UNION ALL"
    "          (SELECT a.id::text, a.type, a.title,"
    "                  CASE a.type WHEN 'deployment' THEN 'Canary deployment ' || a.status"
    "                              WHEN 'problem' THEN 'Severity: ' || a.severity"
    "                              ELSE a.title END,"
    "                  coalesce(a.status, ''), a.at"
    "             FROM activity_events a WHERE a.type <> 'execution_failed'"
    "            ORDER BY a.id DESC LIMIT $1)) s"
    "        ORDER BY s.at DESC, s.id DESC LIMIT $1) u",
    1, true};

/* ---------------------------------------------------------------- input */

/* An optional event id: a whole number >= 0 (after=0: from the first). */
static const char *query_event_id(const request_t *req, const char *name, problem_t *p)
{
    const char *text = request_query(req, name);
    char *end;

    if (text == NULL)
        return NULL;
    errno = 0;
    long long id = strtoll(text, &end, 10);
    if (*text == '\0' || *end != '\0' || errno != 0 || id < 0 || text[0] == '+') {
        problem_fail(p, PROBLEM_MALFORMED, "The query parameter %s is invalid.", name);
        problem_field(p, name, "must be an event id (a whole number from 0)");
    }
    return text;
}

/* Refuses a parameter that type=execution cannot take. */
static void refuse_with_execution(const request_t *req, const char *name, problem_t *p)
{
    if (request_query(req, name) != NULL) {
        problem_fail(p, PROBLEM_MALFORMED, "The query parameter %s is invalid.", name);
        problem_field(
            p, name,
            "cannot be used with type=execution (executions have no event id or severity)");
    }
}

/* ---------------------------------------------------------------- handlers */

/* GET /activity ?type= (repeatable) &agent_id=&severity= (repeatable)
 * &before=&after= (event ids) &from=&to= (at) &limit=&cursor=: {items:
 * [ActivityEvent], next_cursor}. Newest first; with after, oldest first
 * after that id (following). type=execution alone: every execution. */
static int activity_list(request_t *req, response_t *res, problem_t *p)
{
    static const char *const feed_keys[] = {"dir", "id_key", NULL};
    static const char *const execution_keys[] = {"dir", "at_key", "id_key", NULL};
    const char *limit_text = request_query(req, "limit");
    const char *cursor = request_query(req, "cursor");
    const char *params[8] = {NULL};
    const char *key[3] = {NULL};
    int64_t from = 0, to = 0;
    long limit = CURSOR_PAGE_DEFAULT;
    char *end;

    for (size_t i = 0; i < req->nquery; i++)
        if (!validate_one_of(req->query[i].name, known)) {
            problem_fail(p, PROBLEM_MALFORMED, "Unknown query parameter \"%s\".",
                         req->query[i].name);
            problem_field(p, req->query[i].name, "is not a known parameter (%s)",
                          validate_list(p->arena, known));
        }
    if (limit_text != NULL) {
        limit = strtol(limit_text, &end, 10);
        if (*limit_text == '\0' || *end != '\0' || limit < 1 || limit > CURSOR_PAGE_MAX) {
            problem_fail(p, PROBLEM_MALFORMED, "The query parameter limit is invalid.");
            problem_field(p, "limit", "must be a whole number from 1 to %d", CURSOR_PAGE_MAX);
        }
    }
    const char *types = query_words(req, "type", all_types, feed_types, p);
    const char *agent = query_uuid(req, "agent_id", p);
    const char *severity = request_query(req, "severity") != NULL
                               ? query_words(req, "severity", severities, severities, p)
                               : NULL;
    const char *before = query_event_id(req, "before", p);
    const char *after = query_event_id(req, "after", p);
    const char *from_text = query_time(req, "from", &from, p);
    const char *to_text = query_time(req, "to", &to, p);
    if (p->status == 0 && from_text != NULL) {
        int64_t upto = to_text != NULL ? to : rfc3339_now();
        if (to_text != NULL && to <= from) {
            problem_fail(p, PROBLEM_MALFORMED, "The time range is invalid.");
            problem_field(p, "to", "must be after from");
        } else if (upto - from > RANGE_MAX_MICROS) {
            problem_fail(p, PROBLEM_MALFORMED, "The time range is too long.");
            problem_field(p, "from", "must be at most 400 days before to (or now)");
        }
    }
    bool executions = types != NULL && strstr(types, "{execution}") != NULL;
    if (types != NULL && !executions &&
        (strstr(types, "{execution,") != NULL || strstr(types, ",execution,") != NULL ||
         strstr(types, ",execution}") != NULL)) {
        problem_fail(p, PROBLEM_MALFORMED, "The query parameter type is invalid.");
        problem_field(p, "type", "execution (every execution) cannot be combined with other types");
    }
    if (executions) {
        refuse_with_execution(req, "before", p);
        refuse_with_execution(req, "after", p);
        refuse_with_execution(req, "severity", p);
    }
    if (p->status == 0 && cursor != NULL) {
        int64_t micros;
        bool ok;
        if (executions)
            ok = cursor_decode(req->arena, cursor, key, 3) == 0 && strcmp(key[0], "x") == 0 &&
                 validate_uuid(key[2]) && key[1][0] != '\0' &&
                 rfc3339_parse(db_time(req->arena, key[1]), &micros) == 0;
        else {
            ok = cursor_decode(req->arena, cursor, key, 2) == 0 &&
                 (strcmp(key[0], "a") == 0 || strcmp(key[0], "d") == 0);
            if (ok) {
                errno = 0;
                long long id = strtoll(key[1], &end, 10);
                ok = key[1][0] != '\0' && *end == '\0' && errno == 0 && id >= 1;
            }
        }
        if (!ok)
            return cursor_refuse(p);
    }
    if (p->status != 0)
        return -1;

    if (executions) {
        params[0] = agent;
        params[1] = from_text;
        params[2] = to_text;
        params[3] = key[1];
        params[4] = key[2];
        return cursor_answer_page(req, res, p, &stmt_executions, params, limit, execution_keys);
    }
    PGresult *moved = db_exec(&stmt_sequence, NULL, p);
    if (moved == NULL)
        return -1;
    PQclear(moved);
    if (key[0] != NULL && key[0][0] == 'a')
        after = key[1];
    else if (key[0] != NULL)
        before = key[1];
    params[0] = types;
    params[1] = agent;
    params[2] = severity;
    params[3] = before;
    params[4] = after;
    params[5] = from_text;
    params[6] = to_text;
    int by = agent != NULL ? 1 : severity != NULL ? 2 : 0;
    return cursor_answer_page(req, res, p, &stmt_feed[by][after != NULL], params, limit, feed_keys);
}

/* GET /activity/recent?limit=N (1..100, default 20): {activities: [{id,
 * type, title, description, status, timestamp}]}, seed 000's shape. */
static int activity_recent(request_t *req, response_t *res, problem_t *p)
{
    const char *limit = request_query(req, "limit");
    char *end = NULL;
    long n = limit != NULL ? strtol(limit, &end, 10) : 20;

    query_only(req, "limit", p);
    if (limit != NULL && (*limit == '\0' || *end != '\0' || n < 1 || n > 100)) {
        problem_fail(p, PROBLEM_MALFORMED, "The query parameter limit is invalid.");
        problem_field(p, "limit", "must be a whole number from 1 to 100");
    }
    if (p->status != 0)
        return -1;
    PGresult *moved = db_exec(&stmt_sequence, NULL, p);
    if (moved == NULL)
        return -1;
    PQclear(moved);
    const char *params[1] = {arena_printf(req->arena, "%ld", n)};
    return write_answer_row(req, res, p, &stmt_recent, params, 200, NULL, NULL);
}

/* ---------------------------------------------------------------- routes */

/* GET /activity          200 {items, next_cursor}; 400 naming bad parameters
 * GET /activity/recent   200 {activities}; 400 for a bad limit */
/* clang-format off */
const route_t activity_routes[] = {
    {.method = "GET", .pattern = ACTIVITY_BASE, .handler = activity_list},
    {.method = "GET", .pattern = ACTIVITY_BASE "/recent", .handler = activity_recent},
    {.method = NULL},
};
/* clang-format on */
