/* idempotency.h - Idempotency-Key: a retried POST gets the first answer, and writes nothing */
#ifndef FLEETDASH_IDEMPOTENCY_H
#define FLEETDASH_IDEMPOTENCY_H

#include "router.h"

/* Runs route's handler for req. Without an Idempotency-Key header it just
 * calls it. With one, in one transaction with the handler's own work: the
 * key is claimed (a concurrent request with the same key waits for this one
 * to finish), the handler runs, and a 2xx answer is stored with the key; a
 * key seen before gets its stored answer back (header Idempotent-Replayed)
 * when method, path and body are the same, and 422 otherwise. Returns what
 * a handler returns: 0 with res filled, or -1 with p filled. */
int idempotency_run(const route_t *route, request_t *req, response_t *res, problem_t *p);

#endif
