/* live.c - the alerts group's live streams, GET /api/v1/stream/{activity,alerts,state,agents/{id},
 * dashboards/{id}}:
 * the key and the channel checked, where the subscriber starts found (stream_start() in
 * sql/functions/30_streams.sql), then the connection handed to nginx's nchan module with
 * X-Accel-Redirect, so that no worker is held by a subscriber (nginx.conf) */
#include <ctype.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "groups.h"
#include "nchan.h"
#include "../fcgi/db.h"
#include "../fcgi/log.h"
#include "../fcgi/query.h"
#include "../fcgi/validate.h"

#define LIVE_BASE    "/api/v1/stream"
#define LIVE_WAIT_MS 3000 /* for a generation given again or a first snapshot */
#define LIVE_STEP_MS 25

static const db_statement_t stmt_start = {
    "stream_start", "SELECT outcome, nchan_id, sentinel FROM stream_start($1, $2::bigint, $3)", 3,
    false};
static const db_statement_t stmt_agent = {"stream_agent",
                                          "SELECT 1 FROM agents WHERE id = $1::uuid", 1, true};
static const db_statement_t stmt_dashboard = {
    "stream_dashboard", "SELECT 1 FROM dashboards WHERE id = $1::uuid", 1, true};
static const db_statement_t stmt_activity_channel = {
    "stream_activity_channel",
    "SELECT stream_activity_channel($1::text[], $2::uuid, $3::text[]) AS channel", 3, false};
static const db_statement_t stmt_wake = {"stream_wake", "SELECT stream_wake()", 0, false};

static bool live_digits(const char *s, size_t min, size_t max)
{
    size_t n = 0;

    while (isdigit((unsigned char)s[n]))
        n++;
    return n >= min && n <= max;
}

/* The last event id: the Last-Event-ID header (what EventSource sends when it
 * reconnects) or ?last_event_id=; a feed id ("4711") or the id nchan wrote in
 * an SSE `id:` line ("1764680000:3"). Returns 0 (both NULL: none), or -1
 * with a 400 naming it. */
static int live_last_id(request_t *req, const char **feed, const char **nchan, problem_t *p)
{
    const char *header = request_param(req, "HTTP_LAST_EVENT_ID");
    const char *query = request_query(req, "last_event_id");
    const char *id = header != NULL && header[0] != '\0' ? header : query;
    const char *name = id == header ? "Last-Event-ID" : "last_event_id";

    *feed = *nchan = NULL;
    if (id == NULL || id[0] == '\0')
        return 0;
    const char *colon = strchr(id, ':');
    if (colon == NULL && live_digits(id, 1, 18) && id[strspn(id, "0123456789")] == '\0') {
        *feed = id;
        return 0;
    }
    if (colon != NULL && live_digits(id, 1, 12) &&
        (size_t)(colon - id) == strspn(id, "0123456789") && live_digits(colon + 1, 1, 6) &&
        colon[1 + strspn(colon + 1, "0123456789")] == '\0') {
        *nchan = id;
        return 0;
    }
    problem_fail(p, PROBLEM_MALFORMED, "The %s is invalid.", name);
    problem_field(p, name,
                  "must be the id of an event of this stream: a feed id (4711) or an id as "
                  "the stream wrote it (1764680000:3)");
    return -1;
}

static void live_pause(void)
{
    struct timespec t = {.tv_sec = 0, .tv_nsec = LIVE_STEP_MS * 1000000L};

    nanosleep(&t, NULL);
}

/* Where the subscriber of channel starts, then the redirect to nchan. */
static int live_subscribe(request_t *req, response_t *res, problem_t *p, const char *channel)
{
    const char *feed, *nchan;

    if (live_last_id(req, &feed, &nchan, p) != 0)
        return -1;
    const char *publisher = getenv("FLEETDASH_PUBLISHER");
    if (publisher != NULL && strcmp(publisher, "off") == 0) {
        p->retry_after = 60;
        return problem_fail(p, PROBLEM_UNAVAILABLE,
                            "Live streams are served by another host: this one publishes "
                            "nothing (FLEETDASH_PUBLISHER=off).");
    }
    for (int waited = 0; waited < LIVE_WAIT_MS; waited += LIVE_STEP_MS) {
        const char *params[3] = {channel, feed, nchan};
        PGresult *row = db_exec(&stmt_start, params, p);
        if (row == NULL)
            return -1;
        const char *outcome = db_get(row, 0, "outcome");
        const char *id = db_get_copy(req->arena, row, 0, "nchan_id");
        const char *sentinel = db_get_copy(req->arena, row, 0, "sentinel");
        bool wait = outcome == NULL || strcmp(outcome, "wait") == 0;
        PQclear(row);
        if (!wait) {
            /* the generation the ids belong to must be nchan's own */
            nchan_answer_t a;
            char error[256];
            if (nchan_info("_generation", &a, error) != 0) {
                log_error("streams: nchan cannot be reached on %s: %s", nchan_socket(), error);
                p->retry_after = 1;
                return problem_fail(p, PROBLEM_UNAVAILABLE,
                                    "Live streams are unavailable: nginx's nchan cannot be "
                                    "reached.");
            }
            if (a.status == 200 && sentinel != NULL && strcmp(a.last_message_id, sentinel) == 0) {
                res->accel_redirect =
                    id != NULL ? arena_printf(req->arena, "/_nchan/sub/%s?nchan_id=%s", channel, id)
                               : arena_printf(req->arena, "/_nchan/sub/%s", channel);
                response_text(res, 200, NULL, 0);
                return 0;
            }
            PGresult *woke = db_exec(&stmt_wake, NULL, p);
            if (woke == NULL)
                return -1;
            PQclear(woke);
        }
        live_pause();
    }
    p->retry_after = 1;
    return problem_fail(p, PROBLEM_UNAVAILABLE,
                        "The stream %s is not ready yet (its publisher is starting or giving "
                        "nginx its messages again); try again.",
                        channel);
}

static int live_fixed(request_t *req, response_t *res, problem_t *p)
{
    if (query_only(req, "last_event_id", p) != 0)
        return -1;
    return live_subscribe(req, res, p, req->route_arg);
}

/* activity: every event, or with the filters of GET /activity (type and
 * severity repeatable, agent_id) those that pass them, on a channel of
 * that filter's own (stream_activity_channel()). */
static int live_activity(request_t *req, response_t *res, problem_t *p)
{
    static const char *const types[] = {
        "execution_failed", "deployment", "problem", "alert", "agent",
        "version",          "dashboard",  "rule",    NULL};
    static const char *const severities[] = {"critical", "high", "medium", "low", NULL};
    static const char *const known[] = {"last_event_id", "type", "agent_id", "severity", NULL};

    for (size_t i = 0; i < req->nquery; i++)
        if (!validate_one_of(req->query[i].name, known)) {
            problem_fail(p, PROBLEM_MALFORMED, "Unknown query parameter %s.", req->query[i].name);
            problem_field(p, req->query[i].name, "is not a known parameter (%s)",
                          validate_list(p->arena, known));
        }
    const char *type =
        request_query(req, "type") != NULL ? query_words(req, "type", types, types, p) : NULL;
    const char *agent = query_uuid(req, "agent_id", p);
    const char *severity = request_query(req, "severity") != NULL
                               ? query_words(req, "severity", severities, severities, p)
                               : NULL;
    if (p->status != 0)
        return -1;
    if (type == NULL && agent == NULL && severity == NULL)
        return live_subscribe(req, res, p, "activity");
    const char *params[3] = {type, agent, severity};
    PGresult *row = db_exec(&stmt_activity_channel, params, p);
    if (row == NULL)
        return -1;
    const char *channel = db_get_copy(req->arena, row, 0, "channel");
    PQclear(row);
    return live_subscribe(req, res, p, channel);
}

/* agents/{id} and dashboards/{id}: the id (lower case) of one that exists,
 * else 404 "No <noun> <id>.". */
static int live_object(request_t *req, response_t *res, problem_t *p, const char *noun,
                       const char *prefix, const db_statement_t *exists)
{
    if (query_only(req, "last_event_id", p) != 0)
        return -1;
    if (!validate_uuid(req->captures[0]))
        return problem_fail(p, PROBLEM_NOT_FOUND, "No %s %s.", noun, req->captures[0]);
    char *id = arena_printf(req->arena, "%s", req->captures[0]);
    for (char *c = id; *c != '\0'; c++)
        *c = (char)tolower((unsigned char)*c);
    const char *params[1] = {id};
    PGresult *row = db_exec(exists, params, p);
    if (row == NULL)
        return -1;
    int found = PQntuples(row);
    PQclear(row);
    if (found == 0)
        return problem_fail(p, PROBLEM_NOT_FOUND, "No %s %s.", noun, id);
    return live_subscribe(req, res, p, arena_printf(req->arena, "%s/%s", prefix, id));
}

static int live_agent(request_t *req, response_t *res, problem_t *p)
{
    return live_object(req, res, p, "agent", "agents", &stmt_agent);
}

static int live_dashboard(request_t *req, response_t *res, problem_t *p)
{
    return live_object(req, res, p, "dashboard", "dashboards", &stmt_dashboard);
}

/* clang-format off */
const route_t live_routes[] = {
    {.method = "GET", .pattern = LIVE_BASE "/activity", .handler = live_activity},
    {.method = "GET", .pattern = LIVE_BASE "/alerts", .handler = live_fixed, .arg = "alerts"},
    {.method = "GET", .pattern = LIVE_BASE "/state", .handler = live_fixed, .arg = "state"},
    {.method = "GET", .pattern = LIVE_BASE "/agents/{id}", .handler = live_agent},
    {.method = "GET", .pattern = LIVE_BASE "/dashboards/{id}", .handler = live_dashboard},
    {.method = NULL},
};
/* clang-format on */
