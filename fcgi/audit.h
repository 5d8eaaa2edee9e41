/* audit.h - the audit log: every successful write through the API, recorded in its own transaction
 */
#ifndef FLEETDASH_AUDIT_H
#define FLEETDASH_AUDIT_H

#include <stdbool.h>

#include "problem.h"
#include "request.h"
#include "response.h"
#include "router.h"

/* Whether a request of req's method writes: anything but GET, HEAD and
 * OPTIONS. The worker opens a transaction (db_begin_lazy) before such a
 * request's handler runs. */
bool audit_writes(const request_t *req);

/* Ends the transaction of a write: when the answer succeeded (below 400,
 * not replayed from an Idempotency-Key), records it in audit_log (who: the
 * key; what: method, path, the resource, status, request id; the versions
 * the SQL triggers noted) and commits; else rolls back. Returns 0, or -1
 * with p filled when the record or the commit failed (then nothing of the
 * write is kept, and the answer must be p's). */
int audit_finish(const request_t *req, const response_t *res, problem_t *p);

#endif
