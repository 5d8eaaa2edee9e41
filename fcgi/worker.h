/* worker.h - one pre-forked worker: accept, route, answer, repeat */
#ifndef FLEETDASH_WORKER_H
#define FLEETDASH_WORKER_H

#include <stdbool.h>
#include "router.h"

/* Exit codes of a worker, told apart by the master. */
#define WORKER_EXIT_OK     0  /* stopped as asked, or recycled */
#define WORKER_EXIT_INIT   78 /* could not start: a crash, counted as one */
#define WORKER_EXIT_ACCEPT 79 /* the listening socket broke */

/* Serves requests from listen_fd with the route table routes until SIGTERM
 * or SIGINT (the request in flight is finished first) or until
 * max_requests were served (0 = no limit); beats for group between
 * requests (health.h). Returns the process exit code. */
int worker_run(const char *group, const route_t *routes, int listen_fd, long max_requests);

/* True in the sanitizer build, where jansson allocates with malloc and
 * json_decref frees (so that AddressSanitizer sees reference counting
 * mistakes); false otherwise: values live in the request's arena and
 * json_decref frees nothing. Code that relies on an arena reset instead of
 * json_decref (a stream's per-line arena) decrefs when this is true. */
bool worker_json_on_malloc(void);

/* Makes jansson allocate from arena (every request starts with its own
 * arena) and returns the arena it used so far. A handler that parses many
 * documents in one request (a stream) points jansson at an arena it resets
 * per document, and restores the previous one when done. */
arena_t *worker_json_arena_swap(arena_t *arena);

/* Answers one request already accepted on fcgx: parses it, routes it, calls
 * the handler, writes the response or the problem, logs one line. Exposed
 * for tests; never fails (every failure becomes an answer). */
void worker_handle(const route_t *routes, FCGX_Request *fcgx, arena_t *arena);

#endif
