/* aggregates.c - the aggregates group: summaries, time series, breakdowns, trends and
 * widget data, each answer one call of a SQL function (sql/006_aggregates.sql) */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "groups.h"
#include "../fcgi/db.h"
#include "../fcgi/json_out.h"
#include "../fcgi/rfc3339.h"
#include "../fcgi/validate.h"

#define METADATA_PREFIX  "metadata."
#define PERCENTILES_MAX  10
#define MODEL_MAX        200
#define METADATA_KEY_MAX 100
#define TZ_MAX           64
#define TIME_MIN         (-62135596800LL * 1000000)     /* 0001-01-01T00:00:00Z */
#define TIME_MAX         (253402300800LL * 1000000 - 1) /* 9999-12-31T23:59:59.999999Z */

/* ---------------------------------------------------------------- types */

/* The query parameters of the group, one bit each; an endpoint accepts a set. */
enum {
    AGG_TIME_RANGE = 1u << 0,
    AGG_FROM = 1u << 1,
    AGG_TO = 1u << 2,
    AGG_TZ = 1u << 3,
    AGG_AGENT_ID = 1u << 4,
    AGG_MODEL = 1u << 5,
    AGG_METADATA = 1u << 6,
    AGG_PERCENTILES = 1u << 7,
    AGG_INTERVAL = 1u << 8,
    AGG_GROUP_BY = 1u << 9,
    AGG_METRIC = 1u << 10,
};
#define AGG_RANGE   (AGG_TIME_RANGE | AGG_FROM | AGG_TO)
#define AGG_FILTERS (AGG_AGENT_ID | AGG_MODEL | AGG_METADATA)

/* Checks one value of a query parameter. Returns the JSON it stands for in
 * q (a new reference), or NULL after recording a 422 field in p. */
typedef json_t *(*agg_read_t)(const char *name, const char *value, const char *const *allowed,
                              problem_t *p);

/* One query parameter.
 * name:    the parameter as sent; "metadata." matches every metadata.KEY
 * bit:     its AGG_* bit
 * repeat:  may be given more than once; the values make an array in q
 * read:    checks a value and makes its JSON
 * allowed: for read_enum, the accepted values (NULL-terminated) */
typedef struct agg_param {
    const char *name;
    unsigned bit;
    bool repeat;
    agg_read_t read;
    const char *const *allowed;
} agg_param_t;

/* One endpoint: ONE call of a SQL function taking the checked query (q) as
 * jsonb and returning the whole answer as json.
 * stmt:   the statement, "SELECT agg_x($1::jsonb)::text"
 * params: the AGG_* bits of the query parameters it accepts
 * path:   puts the {captures} of the path into q, or records a 404; NULL =
 *         the path has none */
typedef struct agg_endpoint {
    db_statement_t stmt;
    unsigned params;
    int (*path)(const request_t *req, json_t *q, problem_t *p);
} agg_endpoint_t;

/* ---------------------------------------------------------------- prototypes */

static json_t *read_enum(const char *name, const char *value, const char *const *allowed,
                         problem_t *p);
static json_t *read_time(const char *name, const char *value, const char *const *allowed,
                         problem_t *p);
static json_t *read_text(const char *name, const char *value, const char *const *allowed,
                         problem_t *p);
static json_t *read_tz(const char *name, const char *value, const char *const *allowed,
                       problem_t *p);
static json_t *read_uuid(const char *name, const char *value, const char *const *allowed,
                         problem_t *p);
static json_t *read_model(const char *name, const char *value, const char *const *allowed,
                          problem_t *p);
static json_t *read_percentiles(const char *name, const char *value, const char *const *allowed,
                                problem_t *p);
static int path_agent(const request_t *req, json_t *q, problem_t *p);
static int path_metric(const request_t *req, json_t *q, problem_t *p);

/* ---------------------------------------------------------------- parameters */

const char *const aggregates_time_ranges[] = {"1h", "6h", "24h", "7d", "30d", NULL};
const char *const aggregates_group_bys[] = {"agent", "model", NULL};
const char *const aggregates_metric_names[] = {"success_rate", "pass_rate",   "total_executions",
                                               "avg_latency",  "p95_latency", "total_cost",
                                               "error_rate",   NULL};
const char *const aggregates_heatmap_metrics[] = {"executions", "error_rate", "p95_latency", NULL};
static const char *const intervals[] = {"1m", "5m", "15m", "1h", "6h", "1d", "auto", NULL};

/* name, bit, repeat, read, allowed */
static const agg_param_t agg_params[] = {
    {"time_range", AGG_TIME_RANGE, false, read_enum, aggregates_time_ranges},
    {"from", AGG_FROM, false, read_time, NULL},
    {"to", AGG_TO, false, read_time, NULL},
    {"tz", AGG_TZ, false, read_tz, NULL},
    {"agent_id", AGG_AGENT_ID, true, read_uuid, NULL},
    {"model", AGG_MODEL, true, read_model, NULL},
    {METADATA_PREFIX, AGG_METADATA, false, read_text, NULL},
    {"percentiles", AGG_PERCENTILES, false, read_percentiles, NULL},
    {"interval", AGG_INTERVAL, false, read_enum, intervals},
    {"group_by", AGG_GROUP_BY, false, read_enum, aggregates_group_bys},
    {"metric", AGG_METRIC, false, read_enum, aggregates_heatmap_metrics},
    {NULL, 0, false, NULL, NULL},
};

/* ---------------------------------------------------------------- endpoints */

/* An answer computed from the same data in the same second is the same
 * answer: each statement returns (token, text) from answer_cached()
 * (sql/functions/15_answer_cache.sql): $1 the query, $2 its key, $3 the token
 * this worker holds (db_text_cached); text is NULL when the token is that
 * one, else the answer computed once for all workers under that token. */
#define AGG_CACHED(call) "SELECT token, body FROM answer_cached($2, $3, '" call "', $1)"

/* stmt {name, sql, nparams, retry_safe}, params, path */
/* clang-format off */
static const agg_endpoint_t agg_summary = {
    {"agg_summary", AGG_CACHED("agg_summary($1::jsonb)"), 3, true},
    AGG_RANGE | AGG_TZ | AGG_FILTERS | AGG_PERCENTILES, NULL};
static const agg_endpoint_t agg_timeseries = {
    {"agg_timeseries", AGG_CACHED("agg_timeseries($1::jsonb)"), 3, true},
    AGG_RANGE | AGG_TZ | AGG_FILTERS | AGG_INTERVAL | AGG_GROUP_BY, NULL};
static const agg_endpoint_t agg_agents = {
    {"agg_agents", AGG_CACHED("agg_agents($1::jsonb)"), 3, true},
    AGG_RANGE, NULL};
static const agg_endpoint_t agg_agent_metrics = {
    {"agg_agent_metrics", AGG_CACHED("agg_agent_metrics($1::jsonb)"), 3, true},
    AGG_RANGE | AGG_TZ | AGG_PERCENTILES | AGG_MODEL | AGG_METADATA, path_agent};
static const agg_endpoint_t agg_health = {
    {"agg_health", AGG_CACHED("agg_health($1::jsonb)"), 3, true},
    AGG_RANGE, NULL};
static const agg_endpoint_t agg_errors = {
    {"agg_errors", AGG_CACHED("agg_errors($1::jsonb)"), 3, true},
    AGG_RANGE | AGG_FILTERS, NULL};
static const agg_endpoint_t agg_costs = {
    {"agg_costs", AGG_CACHED("agg_costs($1::jsonb)"), 3, true},
    AGG_RANGE | AGG_FILTERS | AGG_GROUP_BY, NULL};
static const agg_endpoint_t agg_metric = {
    {"agg_metric", AGG_CACHED("agg_metric($1::jsonb)"), 3, true},
    AGG_RANGE | AGG_FILTERS | AGG_TZ, path_metric};
static const agg_endpoint_t agg_heatmap = {
    {"agg_heatmap", AGG_CACHED("agg_heatmap($1::jsonb)"), 3, true},
    AGG_RANGE | AGG_TZ | AGG_FILTERS | AGG_METRIC, NULL};
/* clang-format on */

static const db_statement_t stmt_widget_data = {
    "agg_widget_data",
    "SELECT token, body FROM answer_cached($3, $4, 'widget_data($1::uuid, $2::uuid)', $1, $2)", 4,
    true};

/* ---------------------------------------------------------------- value checks */

/* The words of a NULL-terminated list, "a, b, c", in the arena. */
static const char *join(arena_t *arena, const char *const *list)
{
    const char *text = "";

    for (const char *const *w = list; *w != NULL; w++)
        text = arena_printf(arena, "%s%s%s", text, w == list ? "" : ", ", *w);
    return text;
}

static json_t *read_enum(const char *name, const char *value, const char *const *allowed,
                         problem_t *p)
{
    for (const char *const *a = allowed; *a != NULL; a++)
        if (strcmp(*a, value) == 0)
            return json_string(value);
    problem_field(p, name, "must be one of: %s", join(p->arena, allowed));
    return NULL;
}

/* An RFC 3339 timestamp (any offset), passed on as the same instant in UTC
 * ("2026-11-21T08:00:00.000000Z"): PostgreSQL then reads exactly what was
 * checked here (it refuses offsets beyond 15:59, which RFC 3339 allows). */
static json_t *read_time(const char *name, const char *value, const char *const *allowed,
                         problem_t *p)
{
    int64_t micros;
    char utc[32];

    (void)allowed;
    if (rfc3339_parse(value, &micros) != 0 || micros < TIME_MIN || micros > TIME_MAX) {
        problem_field(p, name, "must be an RFC 3339 timestamp such as 2026-11-21T10:00:00Z");
        return NULL;
    }
    rfc3339_format(micros, utc);
    return json_string(utc);
}

/* Any text: metadata values. */
static json_t *read_text(const char *name, const char *value, const char *const *allowed,
                         problem_t *p)
{
    (void)name, (void)allowed, (void)p;
    return json_string(value);
}

/* True if s has the shape of an IANA zone name: two or three parts
 * (Area/City, Area/Sub/City), each starting with a capital letter and made of
 * letters, digits, '_', '-' and '+' (Etc/GMT+2 included, with its POSIX
 * sign: two hours behind UTC). Budgets check their tz with it too (groups.h). */
bool tz_is_iana_shaped(const char *s)
{
    static const char part_chars[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz"
                                     "0123456789_+-";
    int parts = 0;

    if (strlen(s) > TZ_MAX)
        return false;
    for (;; s++) {
        size_t n = strspn(s, part_chars);
        if (n == 0 || s[0] < 'A' || s[0] > 'Z')
            return false;
        parts++;
        s += n;
        if (*s != '/')
            return *s == '\0' && (parts == 2 || parts == 3);
    }
}

/* tz: UTC or an IANA name (tz_is_iana_shaped); whether the zone exists is
 * the database's answer (agg_query). PostgreSQL alone would also take POSIX
 * rules with their inverted sign (UTC+2, EST5EDT,M3.2.0,M11.1.0, +02:00),
 * single-word names (EST5EDT, Japan) and its files posixrules, localtime
 * and posix/...: all refused here. */
static json_t *read_tz(const char *name, const char *value, const char *const *allowed,
                       problem_t *p)
{
    (void)allowed;
    if (strcmp(value, "UTC") == 0 || tz_is_iana_shaped(value))
        return json_string(value);
    problem_field(p, name, "must be UTC or an IANA time zone name such as Europe/Berlin");
    return NULL;
}

static json_t *read_uuid(const char *name, const char *value, const char *const *allowed,
                         problem_t *p)
{
    (void)allowed;
    if (validate_uuid(value))
        return json_string(value);
    problem_field(p, name, "must be a UUID (\"%.40s\" is not)", value);
    return NULL;
}

static json_t *read_model(const char *name, const char *value, const char *const *allowed,
                          problem_t *p)
{
    size_t len = validate_utf8_length(value);

    (void)allowed;
    if (len >= 1 && len <= MODEL_MAX)
        return json_string(value);
    problem_field(p, name, "must be 1 to %d characters long", MODEL_MAX);
    return NULL;
}

/* One percentile: a plain decimal number (digits, at most one point)
 * strictly between 0 and 1. Returns it, or -1. */
static double percentile_value(const char *s, size_t len)
{
    char text[32];
    char *end;

    if (len == 0 || len >= sizeof(text))
        return -1;
    memcpy(text, s, len);
    text[len] = '\0';
    size_t n = strspn(text, "0123456789");
    if (text[n] == '.')
        n += 1 + strspn(text + n + 1, "0123456789");
    if (text[n] != '\0')
        return -1;
    double q = strtod(text, &end);
    return (*end == '\0' && q > 0 && q < 1) ? q : -1;
}

/* percentiles=0.75,0.9: 1 to PERCENTILES_MAX numbers, each 0 < q < 1. */
static json_t *read_percentiles(const char *name, const char *value, const char *const *allowed,
                                problem_t *p)
{
    json_t *list = json_array();
    const char *s = value;

    (void)allowed;
    for (;;) {
        size_t len = strcspn(s, ",");
        double q = percentile_value(s, len);
        if (q < 0 || json_array_size(list) == PERCENTILES_MAX)
            break;
        json_array_append_new(list, json_real(q));
        if (s[len] == '\0')
            return list;
        s += len + 1;
    }
    json_decref(list);
    problem_field(p, name,
                  "must be a comma-separated list of 1 to %d numbers between 0 and 1 "
                  "(exclusive), such as 0.75,0.9",
                  PERCENTILES_MAX);
    return NULL;
}

/* ---------------------------------------------------------------- the query */

/* The row of agg_params a parameter name belongs to, or NULL. */
static const agg_param_t *agg_param(const char *name)
{
    for (const agg_param_t *param = agg_params; param->name != NULL; param++) {
        if (param->bit == AGG_METADATA
                ? strncmp(name, METADATA_PREFIX, strlen(METADATA_PREFIX)) == 0
                : strcmp(name, param->name) == 0)
            return param;
    }
    return NULL;
}

/* Refuses every query parameter that allowed does not name: a 400 naming
 * each one (the convention of fcgi/cursor.c). Returns 0 or -1. */
static int agg_unknown_params(const request_t *req, unsigned allowed, problem_t *p)
{
    char known[256] = "";

    for (const agg_param_t *param = agg_params; param->name != NULL; param++)
        if (param->bit & allowed)
            snprintf(known + strlen(known), sizeof(known) - strlen(known), "%s%s%s",
                     known[0] ? ", " : "", param->name, param->bit == AGG_METADATA ? "KEY" : "");
    for (size_t i = 0; i < req->nquery; i++) {
        const agg_param_t *param = agg_param(req->query[i].name);
        if (param != NULL && (param->bit & allowed))
            continue;
        problem_fail(p, PROBLEM_MALFORMED, "Unknown query parameter \"%s\".", req->query[i].name);
        problem_field(p, req->query[i].name, "is not a known parameter (%s)", known);
    }
    return p->status != 0 ? -1 : 0;
}

/* True if the i-th query parameter was given before under the same name. */
static bool agg_repeated(const request_t *req, size_t i)
{
    for (size_t j = 0; j < i; j++)
        if (strcmp(req->query[j].name, req->query[i].name) == 0)
            return true;
    return false;
}

/* Puts the value of one known query parameter into q. */
static void agg_put(json_t *q, const agg_param_t *param, const char *name, json_t *value)
{
    if (param->bit == AGG_METADATA) {
        json_t *metadata = json_object_get(q, "metadata");
        if (metadata == NULL)
            json_object_set_new(q, "metadata", metadata = json_object());
        json_object_set_new(metadata, name + strlen(METADATA_PREFIX), value);
    } else if (param->repeat) {
        json_t *list = json_object_get(q, name);
        if (list == NULL)
            json_object_set_new(q, name, list = json_array());
        json_array_append_new(list, value);
    } else {
        json_object_set_new(q, name, value);
    }
}

/* A 422 recorded while checking the query (here or in SQL) gets a detail
 * that says so. Returns -1 when p holds a problem, else 0. */
static int agg_invalid_query(problem_t *p)
{
    if (p->status == 422)
        problem_fail(p, PROBLEM_INVALID, "The query has invalid parameters; see errors.");
    return p->status != 0 ? -1 : 0;
}

/* from and to both given: from before to, at most 400 days apart. Checked
 * here as well as in SQL (agg_query, where to may default to now) so that a
 * backwards range is 422 whatever the state of the database. */
static void agg_check_range(const request_t *req, problem_t *p)
{
    const char *from = request_query(req, "from"), *to = request_query(req, "to");
    const int64_t max_span = 400LL * 86400 * 1000000;
    int64_t t_from, t_to;
    const char *why = NULL;

    if (from == NULL || to == NULL || rfc3339_parse(from, &t_from) != 0 ||
        rfc3339_parse(to, &t_to) != 0)
        return;
    if (t_from >= t_to)
        why = "from must be before to";
    else if (t_to - t_from > max_span)
        why = "the range is longer than 400 days";
    if (why != NULL) {
        problem_field(p, "from", "%s", why);
        problem_field(p, "to", "%s", why);
    }
}

/* Checks the value of every query parameter (all known, see
 * agg_unknown_params) and builds q from them; every bad one is a 422 field.
 * Returns 0, or -1 with p filled. */
static int agg_query(const request_t *req, json_t *q, problem_t *p)
{
    for (size_t i = 0; i < req->nquery; i++) {
        const char *name = req->query[i].name;
        const agg_param_t *param = agg_param(name);
        if (param->bit == AGG_METADATA) {
            size_t len = validate_utf8_length(name + strlen(METADATA_PREFIX));
            if (len < 1 || len > METADATA_KEY_MAX) {
                problem_field(p, name,
                              "the key after \"metadata.\" must be 1 to %d characters long",
                              METADATA_KEY_MAX);
                continue;
            }
        }
        if (!param->repeat && agg_repeated(req, i)) {
            problem_field(p, name, "must be given at most once");
            continue;
        }
        json_t *value = param->read(name, req->query[i].value, param->allowed, p);
        if (value != NULL)
            agg_put(q, param, name, value);
    }
    if (request_query(req, "to") != NULL && request_query(req, "from") == NULL)
        problem_field(p, "from", "is required when to is given");
    if (request_query(req, "time_range") != NULL &&
        (request_query(req, "from") != NULL || request_query(req, "to") != NULL))
        problem_field(p, "time_range", "cannot be combined with from and to");
    agg_check_range(req, p);
    return agg_invalid_query(p);
}

/* /agents/{id}/metrics: q.agent; a malformed id names no agent (404). */
static int path_agent(const request_t *req, json_t *q, problem_t *p)
{
    if (!validate_uuid(req->captures[0]))
        return problem_fail(p, PROBLEM_NOT_FOUND, "No agent %s.", req->captures[0]);
    json_object_set_new(q, "agent", json_string(req->captures[0]));
    return 0;
}

/* /metrics/{name}: q.name, one of aggregates_metric_names; else a 404
 * that lists them. */
static int path_metric(const request_t *req, json_t *q, problem_t *p)
{
    for (const char *const *m = aggregates_metric_names; *m != NULL; m++) {
        if (strcmp(*m, req->captures[0]) == 0) {
            json_object_set_new(q, "name", json_string(*m));
            return 0;
        }
    }
    return problem_fail(p, PROBLEM_NOT_FOUND, "No metric \"%.100s\"; the metrics are: %s.",
                        req->captures[0], join(p->arena, aggregates_metric_names));
}

/* ---------------------------------------------------------------- answers */

/* Answers 200 with the text of the first column of rows (the JSON a SQL
 * function made), sent as it is. */
/* Answers with the body of stmt for key (see db_text_cached). */
static int agg_answer(request_t *req, response_t *res, problem_t *p, const db_statement_t *stmt,
                      const char **params, const char *key)
{
    size_t len = 0;
    const char *text = db_text_cached(req->arena, stmt, params, key, &len, p);

    if (text == NULL)
        return -1;
    response_text(res, 200, text, len);
    return 0;
}

/* ---------------------------------------------------------------- handlers */

/* Serves the endpoint of its route row (req->route_arg, an agg_endpoint_t):
 * path, then unknown parameters (400), then their values (422, every bad
 * one), then one statement. */
static int agg_serve(request_t *req, response_t *res, problem_t *p)
{
    const agg_endpoint_t *e = req->route_arg;
    json_t *q = json_object();
    int rc = -1;

    if ((e->path != NULL && e->path(req, q, p) != 0) ||
        agg_unknown_params(req, e->params, p) != 0 || agg_query(req, q, p) != 0)
        goto done;
    const char *params[3] = {json_out_text(req->arena, q), NULL, NULL};
    rc = agg_answer(req, res, p, &e->stmt, params,
                    arena_printf(req->arena, "%s\n%s", e->stmt.name, params[0]));
    if (rc != 0)
        agg_invalid_query(p);
done:
    json_decref(q);
    return rc;
}

/* GET /dashboards/{id}/widgets/{widget_id}/data: the data of one widget from
 * its stored config; malformed ids name nothing (404). Like the other GETs
 * of one dashboard item, it takes no query parameters and ignores any. */
static int widget_data(request_t *req, response_t *res, problem_t *p)
{
    int rc = -1;

    if (!validate_uuid(req->captures[0])) {
        problem_fail(p, PROBLEM_NOT_FOUND, "No dashboard %s.", req->captures[0]);
        goto done;
    }
    if (!validate_uuid(req->captures[1])) {
        problem_fail(p, PROBLEM_NOT_FOUND, "No widget %s on dashboard %s.", req->captures[1],
                     req->captures[0]);
        goto done;
    }
    const char *params[4] = {req->captures[0], req->captures[1], NULL, NULL};
    rc = agg_answer(req, res, p, &stmt_widget_data, params,
                    arena_printf(req->arena, "widget_data\n%s\n%s", params[0], params[1]));
done:
    return rc;
}

/* ---------------------------------------------------------------- routes */

/* Every endpoint but widget data is agg_serve with its agg_endpoint_t:
 * GET /executions/summary     totals, rates, latency percentiles, cost, tokens
 * GET /executions/timeseries  gap-filled buckets, optionally per group
 * GET /agents/summary         status and figures of every active agent
 * GET /agents/{id}/metrics    one agent's item and summary; 404 unknown agent
 * GET /health                 system status, agent counts, open work, conditions
 * GET /errors/breakdown       errors by category with trends
 * GET /costs/breakdown        cost by agent or model
 * GET /metrics/{name}         value, trend and sparkline of one metric
 * GET /heatmap                weekday x hour of day */
const route_t aggregates_routes[] = {
    {.method = "GET",
     .pattern = "/api/v1/executions/summary",
     .handler = agg_serve,
     .arg = &agg_summary},
    {.method = "GET",
     .pattern = "/api/v1/executions/timeseries",
     .handler = agg_serve,
     .arg = &agg_timeseries},
    {.method = "GET",
     .pattern = "/api/v1/agents/summary",
     .handler = agg_serve,
     .arg = &agg_agents},
    {.method = "GET",
     .pattern = "/api/v1/agents/{id}/metrics",
     .handler = agg_serve,
     .arg = &agg_agent_metrics},
    {.method = "GET", .pattern = "/api/v1/health", .handler = agg_serve, .arg = &agg_health},
    {.method = "GET",
     .pattern = "/api/v1/errors/breakdown",
     .handler = agg_serve,
     .arg = &agg_errors},
    {.method = "GET",
     .pattern = "/api/v1/costs/breakdown",
     .handler = agg_serve,
     .arg = &agg_costs},
    {.method = "GET",
     .pattern = "/api/v1/metrics/{name}",
     .handler = agg_serve,
     .arg = &agg_metric},
    {.method = "GET", .pattern = "/api/v1/heatmap", .handler = agg_serve, .arg = &agg_heatmap},
    {.method = "GET",
     .pattern = "/api/v1/dashboards/{id}/widgets/{widget_id}/data",
     .handler = widget_data},
    {.method = NULL},
};
