/* job.c - the worker of a job group: runs a job in a loop instead of serving requests */
#include "job.h"

#include <errno.h>
#include <signal.h>
#include <string.h>
#include <sys/prctl.h>
#include <time.h>

#include "db.h"
#include "log.h"
#include "worker.h"

/* SIGTERM and SIGINT. They stay blocked for the whole life of the worker:
 * a statement in flight is never interrupted, and the pause between rounds
 * waits for them with sigtimedwait. */
static sigset_t job_stop_signals;

bool job_stopping(void)
{
    sigset_t pending;

    if (sigpending(&pending) != 0)
        return false;
    return sigismember(&pending, SIGTERM) == 1 || sigismember(&pending, SIGINT) == 1;
}

/* Pauses for ms milliseconds. Returns true if a stop signal came (at once
 * if one was already pending). */
static bool job_pause(long ms)
{
    struct timespec deadline, now;

    clock_gettime(CLOCK_MONOTONIC, &deadline);
    deadline.tv_sec += ms / 1000;
    deadline.tv_nsec += (ms % 1000) * 1000000L;
    if (deadline.tv_nsec >= 1000000000L) {
        deadline.tv_sec++;
        deadline.tv_nsec -= 1000000000L;
    }
    for (;;) {
        clock_gettime(CLOCK_MONOTONIC, &now);
        struct timespec left = {deadline.tv_sec - now.tv_sec, deadline.tv_nsec - now.tv_nsec};
        if (left.tv_nsec < 0) {
            left.tv_sec--;
            left.tv_nsec += 1000000000L;
        }
        if (left.tv_sec < 0)
            left = (struct timespec){0, 0};
        if (sigtimedwait(&job_stop_signals, NULL, &left) > 0)
            return true;
        if (errno != EINTR)
            return false; /* EAGAIN: the pause is over */
    }
}

int job_run(const job_t *job, const job_settings_t *settings)
{
    arena_t arena = {0};

    prctl(PR_SET_PDEATHSIG, SIGTERM);
    signal(SIGPIPE, SIG_IGN);
    signal(SIGHUP, SIG_IGN);
    sigemptyset(&job_stop_signals);
    sigaddset(&job_stop_signals, SIGTERM);
    sigaddset(&job_stop_signals, SIGINT);
    if (sigprocmask(SIG_BLOCK, &job_stop_signals, NULL) != 0) {
        log_error("worker cannot start: %s", strerror(errno));
        return WORKER_EXIT_INIT;
    }
    for (;;) {
        long pause_ms = job->round(settings, &arena);
        arena_reset(&arena);
        if (job_pause(pause_ms > 0 ? pause_ms : 0))
            break;
    }
    if (job->stop != NULL)
        job->stop();
    db_close();
    arena_destroy(&arena);
    return WORKER_EXIT_OK;
}
