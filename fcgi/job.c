/* job.c - the worker of a job: runs a job in a loop instead of serving requests */
#include "job.h"

#include <errno.h>
#include <poll.h>
#include <signal.h>
#include <string.h>
#include <sys/signalfd.h>
#include <time.h>
#include <unistd.h>

#include "db.h"
#include "health.h"
#include "log.h"
#include "worker.h"

/* SIGTERM and SIGINT. They stay blocked for the whole life of the worker:
 * a statement in flight is never interrupted, and the wait between rounds
 * reads them from a signalfd beside the job's own descriptor. */
static sigset_t job_stop_signals;

bool job_stopping(void)
{
    sigset_t pending;

    if (sigpending(&pending) != 0)
        return false;
    return sigismember(&pending, SIGTERM) == 1 || sigismember(&pending, SIGINT) == 1;
}

static long job_now_ms(void)
{
    struct timespec now;

    clock_gettime(CLOCK_MONOTONIC, &now);
    return (long)now.tv_sec * 1000 + now.tv_nsec / 1000000;
}

/* Waits as wait says, beating for group meanwhile when a beat falls due.
 * Returns true if a stop signal came (at once if one was already pending). */
static bool job_wait(const char *group, int stop_fd, job_wait_t wait, arena_t *arena)
{
    long deadline = job_now_ms() + (wait.ms > 0 ? wait.ms : 0);
    struct pollfd fds[2] = {{.fd = stop_fd, .events = POLLIN}, {.fd = wait.fd, .events = POLLIN}};

    for (;;) {
        long left = deadline - job_now_ms(), beat = health_beat(group, arena);
        arena_reset(arena);
        if (left < 0)
            left = 0;
        int n = poll(fds, wait.fd >= 0 ? 2 : 1, (int)(beat >= 0 && beat < left ? beat : left));
        if (n < 0 && errno != EINTR)
            return job_stopping();
        if (fds[0].revents != 0 || job_stopping())
            return true;
        if ((n > 0 && fds[1].revents != 0) || job_now_ms() >= deadline)
            return false;
    }
}

int job_run(const char *group, const job_t *job)
{
    arena_t arena = {0};

    signal(SIGPIPE, SIG_IGN);
    signal(SIGHUP, SIG_IGN);
    sigemptyset(&job_stop_signals);
    sigaddset(&job_stop_signals, SIGTERM);
    sigaddset(&job_stop_signals, SIGINT);
    int stop_fd = -1;
    if (sigprocmask(SIG_BLOCK, &job_stop_signals, NULL) != 0 ||
        (stop_fd = signalfd(-1, &job_stop_signals, SFD_CLOEXEC)) < 0) {
        log_error("worker cannot start: %s", strerror(errno));
        return WORKER_EXIT_INIT;
    }
    for (;;) {
        job_wait_t wait = job->round(&arena);
        arena_reset(&arena);
        if (job_wait(group, stop_fd, wait, &arena))
            break;
    }
    if (job->stop != NULL)
        job->stop();
    close(stop_fd);
    health_last_beat(group, &arena);
    db_close();
    arena_destroy(&arena);
    return WORKER_EXIT_OK;
}
