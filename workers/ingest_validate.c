/* ingest_validate.c - what an execution must be, and the row a valid one becomes */
#include <stdio.h>
#include <string.h>

#include "ingest_internal.h"
#include "../fcgi/json_out.h"
#include "../fcgi/rfc3339.h"
#include "../fcgi/uuid.h"
#include "../fcgi/validate.h"

#define INGEST_FUTURE_SLACK (5 * 60 * 1000000LL) /* started_at may be this far ahead */
#define INGEST_LATENCY_MAX  86400000LL           /* ms */

static const char *const statuses[] = {"succeeded", "failed", "timeout", "cancelled", NULL};

/* name, type, flags, min, max, allowed values */
static const field_rule_t execution_rules[] = {
    {"id", FIELD_STRING, 0, 0, 0, NULL},
    {"agent_id", FIELD_STRING, 0, 0, 0, NULL},
    {"agent_name", FIELD_STRING, 0, 1, 255, NULL},
    {"version", FIELD_STRING, 0, 1, 100, NULL},
    {"model", FIELD_STRING, FIELD_REQUIRED, 1, 100, NULL},
    {"started_at", FIELD_STRING, FIELD_REQUIRED, 0, 0, NULL},
    {"latency_ms", FIELD_INTEGER, 0, 0, INGEST_LATENCY_MAX, NULL},
    {"finished_at", FIELD_STRING, 0, 0, 0, NULL},
    {"status", FIELD_STRING, FIELD_REQUIRED, 0, 0, statuses},
    {"prompt_tokens", FIELD_INTEGER, 0, 0, 1000000000, NULL},
    {"completion_tokens", FIELD_INTEGER, 0, 0, 1000000000, NULL},
    {"cache_read_tokens", FIELD_INTEGER, 0, 0, 1000000000, NULL},
    {"cost_usd", FIELD_NUMBER, 0, 0, 1000000, NULL},
    {"error", FIELD_OBJECT, 0, 0, 0, NULL},
    {"evaluation", FIELD_OBJECT, 0, 0, 0, NULL},
    {"task_id", FIELD_STRING, 0, 1, 255, NULL},
    {"metadata", FIELD_OBJECT, 0, 0, 0, NULL},
    {NULL, 0, 0, 0, 0, NULL},
};

static const field_rule_t error_rules[] = {
    {"category", FIELD_STRING, FIELD_REQUIRED, 1, 100, NULL},
    {"message", FIELD_STRING, FIELD_NULLABLE, 0, 10000, NULL},
    {NULL, 0, 0, 0, 0, NULL},
};

static const field_rule_t evaluation_rules[] = {
    {"passed", FIELD_BOOLEAN, FIELD_REQUIRED, 0, 0, NULL},
    {"score", FIELD_NUMBER, FIELD_NULLABLE, 0, 1, NULL},
    {"evaluator", FIELD_STRING, FIELD_NULLABLE, 1, 100, NULL},
    {NULL, 0, 0, 0, 0, NULL},
};

/* Checks what the rule tables cannot: the UUIDs, exactly one of each pair,
 * times, and an error only on failures. Fills *started and *latency. */
static void check_execution(const json_t *e, problem_t *p, int64_t *started, long long *latency)
{
    const char *id = field_string(e, "id"), *agent_id = field_string(e, "agent_id");
    const json_t *agent_name = json_object_get(e, "agent_name");
    const json_t *latency_ms = json_object_get(e, "latency_ms");
    const char *finished_text = field_string(e, "finished_at");
    const char *status = field_string(e, "status");
    int64_t finished;

    if (id != NULL && !validate_uuid(id))
        problem_field(p, "id", "must be a UUID");
    if (agent_id != NULL && !validate_uuid(agent_id))
        problem_field(p, "agent_id", "must be a UUID");
    if (json_object_get(e, "agent_id") != NULL && agent_name != NULL)
        problem_field(p, "agent_name", "give agent_id or agent_name, not both");
    else if (json_object_get(e, "agent_id") == NULL && agent_name == NULL)
        problem_field(p, "agent_id", "is required (or agent_name)");
    const char *started_text = field_string(e, "started_at");
    if (started_text != NULL && rfc3339_parse(started_text, started) != 0)
        problem_field(p, "started_at", "must be an RFC 3339 timestamp");
    else if (started_text != NULL && *started > rfc3339_now() + INGEST_FUTURE_SLACK)
        problem_field(p, "started_at", "is more than 5 minutes in the future");
    if (latency_ms != NULL && json_object_get(e, "finished_at") != NULL)
        problem_field(p, "finished_at", "give latency_ms or finished_at, not both");
    else if (latency_ms == NULL && json_object_get(e, "finished_at") == NULL)
        problem_field(p, "latency_ms", "is required (or finished_at)");
    *latency = json_integer_value(latency_ms);
    if (finished_text != NULL && latency_ms == NULL) {
        if (rfc3339_parse(finished_text, &finished) != 0)
            problem_field(p, "finished_at", "must be an RFC 3339 timestamp");
        else if (started_text != NULL && finished < *started)
            problem_field(p, "finished_at", "must not be before started_at");
        else if ((*latency = (finished - *started) / 1000) > INGEST_LATENCY_MAX)
            problem_field(p, "finished_at", "must be within 24 hours of started_at");
    }
    if (status != NULL && strcmp(status, "succeeded") == 0 && json_object_get(e, "error") != NULL)
        problem_field(p, "error", "is not allowed when status is succeeded");
}

void ingest_validate_execution(const json_t *e, problem_t *p, int64_t *started, long long *latency)
{
    const json_t *member;

    if (validate_object(e, execution_rules, "", p) != 0 && !json_is_object(e))
        return;
    if (json_is_object(member = json_object_get(e, "error")))
        validate_object(member, error_rules, "error", p);
    if (json_is_object(member = json_object_get(e, "evaluation")))
        validate_object(member, evaluation_rules, "evaluation", p);
    if (json_is_object(member = json_object_get(e, "metadata")))
        validate_flat_object(member, "metadata", p);
    check_execution(e, p, started, latency);
}

int64_t ingest_finished_at(int64_t started, long long latency_ms)
{
    return started + latency_ms * 1000;
}

/* v in decimal, in the arena (by hand: several per execution). */
static char *int_text(arena_t *arena, long long v)
{
    char digits[24], *p = digits + sizeof(digits);
    unsigned long long u = v < 0 ? 0ULL - (unsigned long long)v : (unsigned long long)v;

    *--p = '\0';
    do
        *--p = (char)('0' + u % 10);
    while ((u /= 10) > 0);
    if (v < 0)
        *--p = '-';
    return arena_strndup(arena, p, (size_t)(digits + sizeof(digits) - 1 - p));
}

static const char *number_text(arena_t *arena, const json_t *v, const char *fallback)
{
    char buf[40];

    if (v == NULL || json_is_null(v))
        return fallback;
    if (json_is_integer(v))
        return int_text(arena, (long long)json_integer_value(v));
    json_out_real(buf, json_real_value(v));
    return arena_strdup(arena, buf);
}

void ingest_validate_row(arena_t *a, long line, const json_t *e, int64_t started, long long latency,
                         char id[37], const char *cols[STAGING_COLUMNS])
{
    const json_t *error = json_object_get(e, "error");
    const json_t *evaluation = json_object_get(e, "evaluation");
    const json_t *metadata = json_object_get(e, "metadata");
    const json_t *passed = json_object_get(evaluation, "passed");
    char *time = arena_alloc(a, 32), *finished = arena_alloc(a, 32);

    if (field_string(e, "id") != NULL) {
        snprintf(id, 37, "%s", field_string(e, "id"));
        for (char *c = id; *c; c++)
            *c = (char)(*c >= 'A' && *c <= 'F' ? *c + 32 : *c);
    } else {
        uuid_v7(id);
    }
    rfc3339_format(started, time);
    rfc3339_format(ingest_finished_at(started, latency), finished);
    const char *values[STAGING_COLUMNS] = {
        int_text(a, line),
        id,
        field_string(e, "id") != NULL ? "t" : "f",
        field_string(e, "agent_id"),
        field_string(e, "agent_name"),
        field_string(e, "version"),
        field_string(e, "model"),
        time,
        int_text(a, latency),
        finished,
        field_string(e, "status"),
        number_text(a, json_object_get(e, "prompt_tokens"), "0"),
        number_text(a, json_object_get(e, "completion_tokens"), "0"),
        number_text(a, json_object_get(e, "cache_read_tokens"), "0"),
        number_text(a, json_object_get(e, "cost_usd"), "0"),
        field_string(error, "category"),
        field_string(error, "message"),
        passed ? (json_is_true(passed) ? "t" : "f") : NULL,
        number_text(a, json_object_get(evaluation, "score"), NULL),
        field_string(evaluation, "evaluator"),
        field_string(e, "task_id"),
        metadata ? json_out_text(a, metadata) : "{}",
    };
    memcpy(cols, values, sizeof(values));
}
