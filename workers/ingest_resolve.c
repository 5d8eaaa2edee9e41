/* ingest_resolve.c - agents and versions of COPYed rows, resolved once per pair */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "ingest_internal.h"
#include "../fcgi/db.h"
#include "../fcgi/json_out.h"

#define INGEST_AGENTS_MAX 1024                    /* (agent, version) pairs the worker resolves */
#define INGEST_DEFER_MAX  256                     /* rows waiting for their pair at most */
#define REFS_SLOTS        (2 * INGEST_AGENTS_MAX) /* open addressing, at most half full */

static const db_statement_t stmt_resolve = {
    "executions_resolve", "SELECT resolved_agent, resolved_version FROM execution_resolve_all($1)",
    1, false};

/* FNV-1a */
static size_t refs_hash(const char *key)
{
    uint64_t h = 14695981039346656037ULL;

    for (; *key; key++)
        h = (h ^ (unsigned char)*key) * 1099511628211ULL;
    return (size_t)h;
}

/* The entry of the (agent, version) pair a row names: resolved, or made
 * now and waiting to be. NULL when the stream names more than
 * INGEST_AGENTS_MAX pairs. */
static agent_ref_t *ref_lookup(ingest_t *in, const char *agent_id, const char *agent_name,
                               const char *version)
{
    const char *ref = agent_id != NULL ? agent_id : agent_name;
    /* lengths make the key unambiguous whatever the texts hold */
    size_t ref_len = strlen(ref), version_len = version != NULL ? strlen(version) : 0;
    char *key = arena_alloc(&in->line_arena, ref_len + version_len + 26), *k = key;
    *k++ = agent_id != NULL ? 'i' : 'n';
    for (size_t n = ref_len; n > 0 || k == key + 1; n /= 10) /* the length, digits reversed */
        *k++ = (char)('0' + n % 10);
    *k++ = ':';
    memcpy(k, ref, ref_len);
    memcpy(k + ref_len, version != NULL ? version : "", version_len + 1);
    size_t slot;

    if (in->refs == NULL && (in->refs = calloc(REFS_SLOTS, sizeof(agent_ref_t))) == NULL)
        abort();
    for (slot = refs_hash(key) & (REFS_SLOTS - 1); in->refs[slot].key != NULL;
         slot = (slot + 1) & (REFS_SLOTS - 1))
        if (strcmp(in->refs[slot].key, key) == 0)
            return &in->refs[slot];
    if (in->nrefs >= INGEST_AGENTS_MAX)
        return NULL;
    if ((in->refs[slot].key = strdup(key)) == NULL)
        abort();
    in->nrefs++;
    return &in->refs[slot];
}

/* COPYs a row whose pair r is resolved straight into executions; a row
 * naming an agent id that does not exist is listed instead. */
static void emit_direct(ingest_t *in, long line, const char *const cols[STAGING_COLUMNS],
                        const agent_ref_t *r, int64_t started, long long latency)
{
    if (r->agent[0] == '\0') {
        if (in->unknown < INGEST_BAD_LINES_MAX) {
            in->unknown_line[in->unknown] = line;
            snprintf(in->unknown_agent[in->unknown], 37, "%s", cols[S_AGENT_ID]);
        }
        in->unknown++;
        return;
    }
    if (in->unknown == 0) /* else nothing will be stored */
        ingest_copy_direct(in, cols, r, started, latency);
}

int ingest_resolve_deferred(ingest_t *in)
{
    agent_ref_t *asked[INGEST_DEFER_MAX];
    size_t nasked = 0;

    if (in->ndeferred == 0 || in->db_failed)
        return in->db_failed ? -1 : 0;
    json_t *pairs = json_array();
    for (size_t i = 0; i < in->ndeferred; i++) {
        deferred_t *d = &in->deferred[i];
        if (d->ref->resolved || d->ref->asked)
            continue;
        d->ref->asked = true;
        asked[nasked++] = d->ref;
        json_array_append_new(pairs, json_pack("{s:s?, s:s?, s:s?}", "agent_id",
                                               d->cols[S_AGENT_ID], "agent_name",
                                               d->cols[S_AGENT_ID] ? NULL : d->cols[S_AGENT_NAME],
                                               "version", d->cols[S_VERSION]));
    }
    const char *params[1] = {json_out_text(&in->line_arena, pairs)};
    json_decref(pairs);
    if (ingest_copy_close(in) != 0)
        return -1;
    PGresult *res = db_exec(&stmt_resolve, params, in->p);
    if (res == NULL || (size_t)PQntuples(res) != nasked) {
        PQclear(res);
        in->db_failed = true;
        return -1;
    }
    for (size_t i = 0; i < nasked; i++) {
        const char *agent = db_get(res, (int)i, "resolved_agent");
        const char *version = db_get(res, (int)i, "resolved_version");
        snprintf(asked[i]->agent, sizeof(asked[i]->agent), "%s", agent ? agent : "");
        snprintf(asked[i]->version, sizeof(asked[i]->version), "%s", version ? version : "");
        asked[i]->resolved = true;
    }
    PQclear(res);
    for (size_t i = 0; i < in->ndeferred && !in->db_failed; i++) {
        deferred_t *d = &in->deferred[i];
        if (d->cols[S_AGENT_ID] == NULL && d->ref->agent[0] == '\0') {
            /* registered by name, and deleted before it could be read back */
            problem_fail(in->p, PROBLEM_CONFLICT,
                         "The agent %s was deleted while this request registered it.",
                         d->cols[S_AGENT_NAME]);
            in->db_failed = true;
            return -1;
        }
        emit_direct(in, d->line, d->cols, d->ref, d->started, d->latency);
    }
    in->ndeferred = 0;
    arena_reset(&in->defer_arena);
    return in->db_failed ? -1 : 0;
}

/* Keeps a row until its pair is resolved (with the others waiting). */
static void defer_row(ingest_t *in, long line, const char *const cols[STAGING_COLUMNS],
                      agent_ref_t *r, int64_t started, long long latency)
{
    if (in->deferred == NULL &&
        (in->deferred = calloc(INGEST_DEFER_MAX, sizeof(deferred_t))) == NULL)
        abort();
    deferred_t *d = &in->deferred[in->ndeferred++];
    *d = (deferred_t){.line = line, .started = started, .latency = latency, .ref = r};
    for (int i = 0; i < STAGING_COLUMNS; i++)
        d->cols[i] = cols[i] ? arena_strdup(&in->defer_arena, cols[i]) : NULL;
    if (in->ndeferred == INGEST_DEFER_MAX)
        ingest_resolve_deferred(in);
}

void ingest_resolve_row(ingest_t *in, long line, const char *const cols[STAGING_COLUMNS],
                        int64_t started, long long latency)
{
    if (!in->staging) {
        agent_ref_t *r =
            cols[S_CLIENT_ID][0] == 't'
                ? NULL
                : ref_lookup(in, cols[S_AGENT_ID], cols[S_AGENT_NAME], cols[S_VERSION]);
        /* a row of an unknown agent waits behind deferred rows: lines are listed in order */
        if (r != NULL && r->resolved && (r->agent[0] != '\0' || in->ndeferred == 0)) {
            emit_direct(in, line, cols, r, started, latency);
            return;
        }
        if (r != NULL) {
            defer_row(in, line, cols, r, started, latency);
            return;
        }
        /* a client id, or too many pairs: the staging table from here on */
        if (ingest_resolve_deferred(in) != 0)
            return;
        in->staging = true;
    }
    ingest_copy_staging(in, cols);
}

void ingest_resolve_free(ingest_t *in)
{
    for (size_t i = 0; in->refs != NULL && i < REFS_SLOTS; i++)
        free(in->refs[i].key);
    free(in->refs);
    free(in->deferred);
    in->refs = NULL;
    in->deferred = NULL;
    arena_destroy(&in->defer_arena);
}
