/* master.c - the pre-fork master: spawns, supervises and replaces workers */
#include "master.h"

#include <errno.h>
#include <signal.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "listen.h"
#include "log.h"

#define MASTER_STORM_WINDOW  10 /* seconds */
#define MASTER_STORM_MINIMUM 5  /* crashes, at the least */

typedef struct worker_slot {
    pid_t pid;      /* 0 = free slot */
    int generation; /* SIGHUP starts a new generation */
    bool stopping;  /* asked to stop: its exit is expected */
    struct timespec started;
} worker_slot_t;

typedef struct master {
    const master_config_t *cfg;
    worker_slot_t *slots;
    int nslots; /* workers + 1: room for one replacement */
    int generation;
    bool shutting_down;
    struct timespec shutdown_deadline;
    time_t *crashes; /* ring of recent crash times */
    int ncrashes;    /* capacity of the ring */
    int crash_next;
    bool storm;
} master_t;

static double master_seconds_since(const struct timespec *t)
{
    struct timespec now;

    clock_gettime(CLOCK_MONOTONIC, &now);
    return (double)(now.tv_sec - t->tv_sec) + (double)(now.tv_nsec - t->tv_nsec) / 1e9;
}

static int master_live(const master_t *m, bool count_stopping)
{
    int n = 0;

    for (int i = 0; i < m->nslots; i++)
        if (m->slots[i].pid != 0 && (count_stopping || !m->slots[i].stopping))
            n++;
    return n;
}

/* Forks one worker into a free slot. Returns 0, or -1 if fork failed. */
static int master_spawn(master_t *m, const sigset_t *original_mask)
{
    int i = 0;

    while (i < m->nslots && m->slots[i].pid != 0)
        i++;
    if (i == m->nslots)
        return 0;
    pid_t pid = fork();
    if (pid < 0) {
        log_error("fork failed: %s", strerror(errno));
        return -1;
    }
    if (pid == 0) {
        sigprocmask(SIG_SETMASK, original_mask, NULL);
        log_set_identity(m->cfg->group->name, "worker");
        /* exit, not _exit: the sanitizer build checks the worker for leaks. */
        if (m->cfg->group->job != NULL)
            exit(job_run(m->cfg->group->job, &m->cfg->job));
        exit(worker_run(m->cfg->group, m->cfg->listen_fd, m->cfg->max_requests));
    }
    m->slots[i] = (worker_slot_t){.pid = pid, .generation = m->generation};
    clock_gettime(CLOCK_MONOTONIC, &m->slots[i].started);
    return 0;
}

/* Remembers a crash; true when crashes come too fast to keep respawning. */
static bool master_crash_storm(master_t *m)
{
    time_t now = time(NULL);
    int recent = 0;

    m->crashes[m->crash_next] = now;
    m->crash_next = (m->crash_next + 1) % m->ncrashes;
    for (int i = 0; i < m->ncrashes; i++)
        if (m->crashes[i] != 0 && now - m->crashes[i] < MASTER_STORM_WINDOW)
            recent++;
    return recent >= m->ncrashes;
}

static void master_reap(master_t *m)
{
    int status;
    pid_t pid;

    while ((pid = waitpid(-1, &status, WNOHANG)) > 0) {
        int i = 0;
        while (i < m->nslots && m->slots[i].pid != pid)
            i++;
        if (i == m->nslots)
            continue;
        worker_slot_t *slot = &m->slots[i];
        double uptime = master_seconds_since(&slot->started);
        bool crashed = !WIFEXITED(status) || WEXITSTATUS(status) != WORKER_EXIT_OK;
        if (WIFSIGNALED(status))
            log_warn("worker %d killed by signal %d (%s) after %.1fs", (int)pid, WTERMSIG(status),
                     strsignal(WTERMSIG(status)), uptime);
        else
            log_info("worker %d exited with code %d after %.1fs", (int)pid, WEXITSTATUS(status),
                     uptime);
        if (crashed && !slot->stopping && !m->shutting_down && master_crash_storm(m)) {
            log_error("crash storm: %d workers crashed within %ds; not respawning", m->ncrashes,
                      MASTER_STORM_WINDOW);
            m->storm = true;
        }
        slot->pid = 0;
    }
}

static void master_signal_all(master_t *m, int sig)
{
    for (int i = 0; i < m->nslots; i++)
        if (m->slots[i].pid != 0) {
            if (sig == SIGTERM)
                m->slots[i].stopping = true;
            kill(m->slots[i].pid, sig);
        }
}

static void master_begin_shutdown(master_t *m, const char *why)
{
    if (m->shutting_down)
        return;
    log_info("%s: stopping %d workers (timeout %ds)", why, master_live(m, true),
             m->cfg->shutdown_timeout);
    m->shutting_down = true;
    /* No new connections: nginx answers 503 at once instead of queueing. */
    listen_close(m->cfg->listen_address, m->cfg->listen_fd);
    clock_gettime(CLOCK_MONOTONIC, &m->shutdown_deadline);
    m->shutdown_deadline.tv_sec += m->cfg->shutdown_timeout;
    master_signal_all(m, SIGTERM);
}

/* SIGHUP: while a worker of an older generation lives and none is being
 * replaced, start a new worker, then ask the old one to stop. */
static void master_replace_one(master_t *m, const sigset_t *original_mask)
{
    worker_slot_t *old = NULL;

    for (int i = 0; i < m->nslots; i++) {
        if (m->slots[i].pid == 0)
            continue;
        if (m->slots[i].stopping)
            return; /* one replacement at a time */
        if (m->slots[i].generation != m->generation && old == NULL)
            old = &m->slots[i];
    }
    if (old == NULL || master_spawn(m, original_mask) != 0)
        return;
    old->stopping = true;
    kill(old->pid, SIGTERM);
}

int master_run(const master_config_t *cfg)
{
    master_t m = {.cfg = cfg, .nslots = cfg->workers + 1};
    sigset_t handled, original;
    int exit_code = 0;

    m.slots = calloc((size_t)m.nslots, sizeof(*m.slots));
    m.ncrashes = cfg->workers * 2 > MASTER_STORM_MINIMUM ? cfg->workers * 2 : MASTER_STORM_MINIMUM;
    m.crashes = calloc((size_t)m.ncrashes, sizeof(*m.crashes));
    if (m.slots == NULL || m.crashes == NULL)
        return 2;
    sigemptyset(&handled);
    sigaddset(&handled, SIGCHLD);
    sigaddset(&handled, SIGTERM);
    sigaddset(&handled, SIGINT);
    sigaddset(&handled, SIGHUP);
    sigprocmask(SIG_BLOCK, &handled, &original);
    if (cfg->group->job != NULL)
        log_info("running the %s job with %d workers", cfg->group->name, cfg->workers);
    else
        log_info("listening on %s with %d workers", cfg->listen_address, cfg->workers);

    for (;;) {
        if (!m.shutting_down && !m.storm) {
            master_replace_one(&m, &original);
            while (master_live(&m, false) < cfg->workers)
                if (master_spawn(&m, &original) != 0) {
                    m.storm = true;
                    break;
                }
        }
        if (m.storm) {
            exit_code = 2;
            master_begin_shutdown(&m, "giving up");
        }
        if (m.shutting_down && master_live(&m, true) == 0)
            break;
        if (m.shutting_down && master_seconds_since(&m.shutdown_deadline) >= 0) {
            log_warn("shutdown timeout: killing %d workers", master_live(&m, true));
            master_signal_all(&m, SIGKILL);
            if (exit_code == 0)
                exit_code = 1;
            while (waitpid(-1, NULL, 0) > 0)
                ;
            break;
        }
        siginfo_t info;
        struct timespec tick = {.tv_sec = 1};
        int sig = sigtimedwait(&handled, &info, &tick);
        if (sig == SIGCHLD)
            master_reap(&m);
        else if (sig == SIGTERM || sig == SIGINT)
            master_begin_shutdown(&m, sig == SIGTERM ? "SIGTERM" : "SIGINT");
        else if (sig == SIGHUP && !m.shutting_down) {
            m.generation++;
            log_info("SIGHUP: replacing workers one by one (generation %d)", m.generation);
        }
        master_reap(&m); /* SIGCHLDs merge: reap on every wake-up */
    }
    log_info("stopped (exit code %d)", exit_code);
    free(m.slots);
    free(m.crashes);
    return exit_code;
}
