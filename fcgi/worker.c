/* worker.c - one pre-forked worker: accept, route, answer, repeat */
#include "worker.h"

#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <string.h>
#include <sys/epoll.h>
#include <time.h>
#include <unistd.h>

#include "audit.h"
#include "auth.h"
#include "cache.h"
#include "cors.h"
#include "db.h"
#include "health.h"
#include "idempotency.h"
#include "log.h"
#include "metrics.h"

static volatile sig_atomic_t worker_stopping;

/* jansson allocates from the request arena: a whole response tree is freed by
 * one arena_reset(), not piece by piece. So no jansson value may outlive the
 * request that made it. References are still counted as jansson's rules say
 * (json_decref where a reference is owned): the sanitizer build leaves
 * jansson on malloc (FLEETDASH_JSON_MALLOC), where a reference counted wrong
 * is a leak or a use after free that AddressSanitizer reports. */
static arena_t *worker_json_arena;

static void *worker_json_alloc(size_t size)
{
    return arena_alloc(worker_json_arena, size);
}

static void worker_json_free(void *ptr)
{
    (void)ptr; /* freed with the arena */
}

bool worker_json_on_malloc(void)
{
#ifdef FLEETDASH_JSON_MALLOC
    return true;
#else
    return false;
#endif
}

arena_t *worker_json_arena_swap(arena_t *arena)
{
    arena_t *previous = worker_json_arena;
    worker_json_arena = arena;
    return previous;
}

static void worker_on_stop(int sig)
{
    (void)sig;
    worker_stopping = 1;
}

static double worker_ms_since(const struct timespec *start)
{
    struct timespec now;

    clock_gettime(CLOCK_MONOTONIC, &now);
    return (double)(now.tv_sec - start->tv_sec) * 1e3 +
           (double)(now.tv_nsec - start->tv_nsec) / 1e6;
}

void worker_handle(const route_t *routes, FCGX_Request *fcgx, arena_t *arena)
{
    struct timespec start;
    problem_t p = {.arena = arena};
    response_t res = {0};
    request_t req;

    clock_gettime(CLOCK_MONOTONIC, &start);
    const route_t *route = NULL;
    if (request_init(&req, fcgx, arena, &p) == 0 && !cors_preflight(&req, &res, &p)) {
        route = route_match(routes, &req, &p);
        /* a path no route has is a 404 only to a caller with a key */
        problem_t refused = {.arena = arena};
        if (auth_check(route, &req, &refused) != 0) {
            p = refused;
            route = NULL;
        }
        bool writes = route != NULL && audit_writes(&req);
        if (writes)
            db_begin_lazy(); /* the write and its audit record commit together */
        if (route != NULL && idempotency_run(route, &req, &res, &p) != 0 && p.status == 0)
            problem_fail(&p, PROBLEM_INTERNAL, "The server failed to answer this request.");
        if (writes && audit_finish(&req, &res, &p) != 0)
            response_clear(&res);
    }
    if (p.status != 0 || res.status == 0)
        response_problem(&res, &req, &p);
    while (db_in_transaction())
        db_rollback();        /* a handler that forgot: nothing half-done is kept */
    request_body_drain(&req); /* unread body: nginx must see our answer, not a reset */
    response_send(&req, &res);
    double seconds = worker_ms_since(&start) / 1e3;
    log_request(&(log_request_t){.request_id = req.request_id,
                                 .remote_addr = request_param(&req, "REMOTE_ADDR"),
                                 .host = request_param(&req, "HTTP_HOST"),
                                 .user_agent = request_param(&req, "HTTP_USER_AGENT"),
                                 .key_id = req.key_id,
                                 .method = req.method,
                                 .path = req.path,
                                 .status = res.status,
                                 .seconds = seconds});
    metrics_request(req.method, route != NULL ? route->pattern : NULL, res.status, seconds);
    response_clear(&res);
    json_decref(p.members); /* the body holds its own references to them */
}

/* Installs the stop handler and returns the signal mask to wait with: the
 * stop signals stay blocked while a request is served, and are delivered
 * only while the worker waits for a connection. */
static int worker_signals(sigset_t *wait_mask)
{
    struct sigaction sa = {.sa_handler = worker_on_stop};
    sigset_t stop;

    sigemptyset(&sa.sa_mask);
    sigemptyset(&stop);
    sigaddset(&stop, SIGTERM);
    sigaddset(&stop, SIGINT);
    signal(SIGPIPE, SIG_IGN);
    signal(SIGHUP, SIG_IGN);
    if (sigaction(SIGTERM, &sa, NULL) != 0 || sigaction(SIGINT, &sa, NULL) != 0)
        return -1;
    if (sigprocmask(SIG_BLOCK, &stop, wait_mask) != 0)
        return -1;
    sigdelset(wait_mask, SIGTERM);
    sigdelset(wait_mask, SIGINT);
    return 0;
}

int worker_run(const char *group, const route_t *routes, int listen_fd, long max_requests)
{
    sigset_t wait_mask;
    FCGX_Request fcgx;
    arena_t arena = {0};
    long served = 0;
    int exit_code = WORKER_EXIT_OK;

    worker_json_arena = &arena;
    if (!worker_json_on_malloc())
        json_set_alloc_funcs(worker_json_alloc, worker_json_free);
    int epfd = epoll_create1(EPOLL_CLOEXEC);
    struct epoll_event ev = {.events = EPOLLIN | EPOLLEXCLUSIVE, .data.fd = listen_fd};
    if (worker_signals(&wait_mask) != 0 || FCGX_Init() != 0 || epfd < 0 ||
        fcntl(listen_fd, F_SETFL, fcntl(listen_fd, F_GETFL) | O_NONBLOCK) != 0 ||
        epoll_ctl(epfd, EPOLL_CTL_ADD, listen_fd, &ev) != 0 ||
        FCGX_InitRequest(&fcgx, listen_fd, 0) != 0) {
        log_error("worker cannot start: %s", strerror(errno));
        return WORKER_EXIT_INIT;
    }
    while (!worker_stopping && (max_requests == 0 || served < max_requests)) {
        struct epoll_event ready;
        long beat = health_beat(group, &arena);
        arena_reset(&arena);
        int n = epoll_pwait(epfd, &ready, 1, (int)beat, &wait_mask);
        if (n == 0 || (n < 0 && errno == EINTR))
            continue;
        if (n < 0) {
            log_error("epoll_pwait: %s", strerror(errno));
            exit_code = WORKER_EXIT_ACCEPT;
            break;
        }
        int rc = FCGX_Accept_r(&fcgx);
        if (rc == -EAGAIN || rc == -EWOULDBLOCK || rc == -EINTR || rc == -ECONNABORTED)
            continue; /* another worker took the connection */
        if (rc < 0) {
            log_error("accept failed: %s", strerror(-rc));
            exit_code = WORKER_EXIT_ACCEPT;
            break;
        }
        worker_handle(routes, &fcgx, &arena);
        FCGX_Finish_r(&fcgx);
        arena_reset(&arena);
        served++;
    }
    if (max_requests > 0 && served >= max_requests)
        log_info("recycling after %ld requests", served);
    FCGX_Free(&fcgx, 1);
    close(epfd);
    health_last_beat(group, &arena);
    db_close();
    cache_clear();
    arena_destroy(&arena);
    return exit_code;
}
