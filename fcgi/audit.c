/* audit.c - the audit log: every successful write through the API, recorded in its own transaction
 */
#include "audit.h"

#include <stdio.h>
#include <string.h>

#include "db.h"

/* audit_record() (sql/functions/29_access.sql) inserts the row; versions
 * from the notes of the versioned tables' triggers. */
static const db_statement_t stmt_audit_record = {
    "audit_record", "SELECT audit_record($1, $2, $3, $4, $5, $6, $7, $8)", 8, false};

bool audit_writes(const request_t *req)
{
    return strcmp(req->method, "GET") != 0 && strcmp(req->method, "HEAD") != 0 &&
           strcmp(req->method, "OPTIONS") != 0;
}

/* The object the write was about: the one it created (its Location's
 * last segment), else the last {id} of its path; NULL for neither (a batch
 * of executions). */
static const char *audit_resource(const request_t *req, const response_t *res)
{
    if (res->location != NULL) {
        const char *slash = strrchr(res->location, '/');
        return slash != NULL ? slash + 1 : res->location;
    }
    return req->ncaptures > 0 ? req->captures[req->ncaptures - 1] : NULL;
}

int audit_finish(const request_t *req, const response_t *res, problem_t *p)
{
    if (p->status != 0 || res->status == 0 || res->status >= 400 || res->replayed ||
        db_transaction_failed()) {
        db_rollback();
        return 0;
    }
    char status[12];
    snprintf(status, sizeof(status), "%d", res->status);
    const char *params[] = {req->key_id, req->key_name,  req->key_role,
                            req->method, req->path,      audit_resource(req, res),
                            status,      req->request_id};
    PGresult *done = db_exec(&stmt_audit_record, params, p);
    if (done == NULL) {
        db_rollback();
        return -1;
    }
    PQclear(done);
    if (db_commit(p) != 0) {
        db_rollback();
        return -1;
    }
    return 0;
}
