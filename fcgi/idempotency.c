/* idempotency.c - Idempotency-Key: a retried POST gets the first answer, and writes nothing */
#include "idempotency.h"

#include <stdlib.h>
#include <string.h>

#include "db.h"
#include "json_out.h"

#define IDEMPOTENCY_FIELD "Idempotency-Key"

static const db_statement_t stmt_claim = {"idempotency_claim",
                                          "SELECT * FROM idempotency_claim($1, $2, $3)", 3, false};
static const db_statement_t stmt_store = {"idempotency_store",
                                          "SELECT idempotency_store($1, $2, $3, $4, $5)", 5, false};

static bool key_is_valid(const char *key)
{
    size_t len = strlen(key);

    if (len < 1 || len > 255)
        return false;
    for (size_t i = 0; i < len; i++)
        if ((unsigned char)key[i] < 0x21 || (unsigned char)key[i] > 0x7e)
            return false;
    return true;
}

/* Answers with the stored answer of a key, if this request is the same. */
static int replay(request_t *req, response_t *res, problem_t *p, const PGresult *stored)
{
    request_body_drain(req);
    const char *method = db_get(stored, 0, "method"), *path = db_get(stored, 0, "path");
    const char *hash = db_get(stored, 0, "body_hash");
    const char *response = db_get(stored, 0, "response"), *status = db_get(stored, 0, "status");

    if (method == NULL || path == NULL || hash == NULL || response == NULL || status == NULL)
        return problem_fail(p, PROBLEM_INTERNAL, "The server failed to answer this request.");
    if (strcmp(method, req->method) != 0 || strcmp(path, req->path) != 0 ||
        strcmp(hash, request_body_hash(req)) != 0) {
        problem_field(p, IDEMPOTENCY_FIELD,
                      "was already used with another request (method, path or body)");
        return -1;
    }
    const char *text = arena_strdup(req->arena, response);
    response_text(res, atoi(status), text, strlen(text));
    res->location = db_get_copy(req->arena, stored, 0, "location");
    res->replayed = true;
    return 0;
}

/* Stores a 2xx answer with the key. The body is serialised once: the
 * response then sends the same text. */
static int store(request_t *req, response_t *res, problem_t *p, const char *key)
{
    size_t len = 0;
    if (res->body != NULL) {
        const char *serialised = json_out(req->arena, res->body, &len);
        response_text(res, res->status, serialised, len);
    }
    const char *text = res->text;
    const char *params[5] = {key, request_body_hash(req),
                             arena_printf(req->arena, "%d", res->status), res->location,
                             text ? text : ""};
    PGresult *done = db_exec(&stmt_store, params, p);

    if (done == NULL)
        return -1;
    PQclear(done);
    return 0;
}

int idempotency_run(const route_t *route, request_t *req, response_t *res, problem_t *p)
{
    const char *key = request_param(req, "HTTP_IDEMPOTENCY_KEY");
    PGresult *claimed = NULL;
    int rc = -1;

    if (key == NULL || !(route->flags & ROUTE_IDEMPOTENT))
        return route->handler(req, res, p);
    if (!key_is_valid(key)) {
        problem_field(p, IDEMPOTENCY_FIELD, "must be 1 to 255 visible ASCII characters");
        return -1;
    }
    if (db_begin(p) != 0)
        return -1;
    const char *params[3] = {key, req->method, req->path};
    claimed = db_exec(&stmt_claim, params, p);
    if (claimed == NULL)
        goto done;
    if (PQntuples(claimed) > 0) {
        rc = replay(req, res, p, claimed);
        goto done; /* nothing to keep: the rollback below writes nothing */
    }
    rc = route->handler(req, res, p);
    if (rc == 0 && res->status >= 200 && res->status < 300) {
        rc = store(req, res, p, key);
        if (rc == 0)
            rc = db_commit(p);
        PQclear(claimed);
        return rc;
    }
done:
    PQclear(claimed);
    db_rollback();
    return rc;
}
