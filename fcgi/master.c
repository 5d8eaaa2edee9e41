/* master.c - the pre-fork master: spawns, supervises and replaces workers */
#include "master.h"

#include <errno.h>
#include <signal.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "db.h"
#include "listen.h"
#include "log.h"
#include "metrics.h"
#include "notify.h"
#include "worker.h"

/* A storm: MASTER_STORM_MINIMUM or 2 x workers crashes, whichever is more,
 * within MASTER_STORM_WINDOW seconds. In a storm workers are respawned one at
 * a time, each after a pause that doubles with every crash up to the cap; a
 * storm ends after MASTER_STORM_QUIET seconds without a crash (more than the
 * cap: a worker that crashes as it starts keeps the storm going). */
#define MASTER_STORM_WINDOW   10.0 /* seconds */
#define MASTER_STORM_MINIMUM  5    /* crashes, at the least */
#define MASTER_STORM_QUIET    3.0  /* seconds */
#define MASTER_PAUSE_FIRST_MS 125
#define MASTER_PAUSE_MAX_MS   1000
#define MASTER_TICK           1.0 /* longest sleep, seconds: a safety net, never a delay */
#define MASTER_READY_RETRY    1.0 /* seconds between looks at the database before READY=1 */

typedef struct worker_slot {
    pid_t pid;      /* 0 = free slot */
    int job;        /* index of the job it runs in cfg->group->jobs; -1 = routes */
    int generation; /* SIGHUP starts a new generation */
    bool stopping;  /* asked to stop: its exit is expected */
    double started; /* master_now() */
} worker_slot_t;

typedef struct master {
    const master_config_t *cfg;
    worker_slot_t *slots;
    int nslots; /* every worker wanted + 1: room for one replacement */
    int generation;
    bool shutting_down;
    double shutdown_deadline;
    double *crashes; /* ring of recent crash times, master_now() */
    int ncrashes;    /* capacity of the ring: the crashes that make a storm */
    int crash_next;
    bool storm;
    int pause_ms;      /* pause before the next spawn in a storm, 0 outside */
    double next_spawn; /* no spawn before this time */
    double storm_started, last_crash;
    int storm_crashes;
    int spawned; /* workers forked so far: past the wanted number, restarts */
    /* systemd (notify.h): READY=1 once the database answered, RELOADING=1
     * during a SIGHUP's replacement, WATCHDOG=1 while workers live */
    bool ready;
    bool reloading;
    double next_ready_check; /* no look at the database before this time */
    double next_watchdog;    /* WATCHDOG=1 due then; 0 without a watchdog */
} master_t;

/* Seconds on the monotonic clock. */
static double master_now(void)
{
    struct timespec now;

    clock_gettime(CLOCK_MONOTONIC, &now);
    return (double)now.tv_sec + (double)now.tv_nsec / 1e9;
}

static int master_live(const master_t *m, bool count_stopping)
{
    int n = 0;

    for (int i = 0; i < m->nslots; i++)
        if (m->slots[i].pid != 0 && (count_stopping || !m->slots[i].stopping))
            n++;
    return n;
}

/* How many workers of one kind (a job's index, or -1 for routes) live and
 * are not stopping. */
static int master_live_kind(const master_t *m, int job)
{
    int n = 0;

    for (int i = 0; i < m->nslots; i++)
        if (m->slots[i].pid != 0 && !m->slots[i].stopping && m->slots[i].job == job)
            n++;
    return n;
}

static int master_wanted(const master_config_t *cfg)
{
    int n = cfg->workers;

    for (int j = 0; j < cfg->njobs; j++)
        n += cfg->job_workers[j];
    return n;
}

/* The kind of worker the group lacks most: the first job that has fewer
 * workers than wanted, else routes (-1). */
static int master_next_kind(const master_t *m)
{
    for (int j = 0; j < m->cfg->njobs; j++)
        if (master_live_kind(m, j) < m->cfg->job_workers[j])
            return j;
    return -1;
}

/* Forks one worker of the given kind into a free slot. Returns 0, or -1 if
 * fork failed. */
static int master_spawn(master_t *m, int job, const sigset_t *original_mask)
{
    int i = 0;

    while (i < m->nslots && m->slots[i].pid != 0)
        i++;
    if (i == m->nslots)
        return 0;
    pid_t master = getpid();
    pid_t pid = fork();
    if (pid < 0) {
        log_error("fork failed: %s", strerror(errno));
        return -1;
    }
    if (pid == 0) {
        /* The child dies with the master (SIGTERM). A master that died
         * before the child asked for that would leave it an orphan holding
         * the socket, which every new master would then find in use. */
        prctl(PR_SET_PDEATHSIG, SIGTERM);
        if (getppid() != master)
            _exit(WORKER_EXIT_INIT);
        sigprocmask(SIG_SETMASK, original_mask, NULL);
        /* a job's name tells its workers apart where other workers run too */
        bool alone = m->cfg->workers == 0 && m->cfg->njobs == 1;
        log_set_identity(m->cfg->group->name,
                         job < 0 || alone ? "worker" : m->cfg->group->jobs[job]->name);
        /* a worker after the first ones: one started again (metrics.h) */
        if (m->spawned >= master_wanted(m->cfg))
            metrics_add("worker_restarts", 1);
        /* exit, not _exit: the sanitizer build checks the worker for leaks. */
        if (job >= 0)
            exit(job_run(m->cfg->group->name, m->cfg->group->jobs[job]));
        exit(worker_run(m->cfg->group->name, m->cfg->routes, m->cfg->listen_fd,
                        m->cfg->max_requests));
    }
    m->slots[i] = (worker_slot_t){
        .pid = pid, .job = job, .generation = m->generation, .started = master_now()};
    m->spawned++;
    return 0;
}

static void master_clear_crashes(master_t *m)
{
    for (int i = 0; i < m->ncrashes; i++)
        m->crashes[i] = -MASTER_STORM_WINDOW; /* long ago */
}

/* Remembers a crash (or a failed fork) at now; true when it makes a storm. */
static bool master_record_crash(master_t *m, double now)
{
    int recent = 0;

    m->crashes[m->crash_next] = now;
    m->crash_next = (m->crash_next + 1) % m->ncrashes;
    for (int i = 0; i < m->ncrashes; i++)
        if (now - m->crashes[i] < MASTER_STORM_WINDOW)
            recent++;
    return recent >= m->ncrashes;
}

/* Counts a crash. Returns the pause before the next spawn that it causes in
 * a storm (logging the start of one), or 0 outside a storm. */
static int master_crashed(master_t *m)
{
    double now = master_now();

    if (master_record_crash(m, now) && !m->storm) {
        log_warn("crash storm: %d workers crashed within %.0fs; respawning one at a time, "
                 "pausing up to %dms",
                 m->ncrashes, MASTER_STORM_WINDOW, MASTER_PAUSE_MAX_MS);
        m->storm = true;
        m->storm_started = now;
        m->storm_crashes = 0;
    }
    m->last_crash = now;
    if (!m->storm)
        return 0;
    m->storm_crashes++;
    m->pause_ms = m->pause_ms == 0 ? MASTER_PAUSE_FIRST_MS : 2 * m->pause_ms;
    if (m->pause_ms > MASTER_PAUSE_MAX_MS)
        m->pause_ms = MASTER_PAUSE_MAX_MS;
    if (m->next_spawn < now + m->pause_ms / 1e3)
        m->next_spawn = now + m->pause_ms / 1e3;
    return m->pause_ms;
}

/* Ends a storm once no worker crashed for MASTER_STORM_QUIET seconds. */
static void master_storm_check_end(master_t *m, double now)
{
    if (!m->storm || now - m->last_crash < MASTER_STORM_QUIET)
        return;
    log_info("crash storm over: %d crash%s in %.1fs, none for %.0fs; respawning at once again",
             m->storm_crashes, m->storm_crashes == 1 ? "" : "es", m->last_crash - m->storm_started,
             MASTER_STORM_QUIET);
    m->storm = false;
    m->pause_ms = 0;
    master_clear_crashes(m);
}

/* Logs how a worker ended and, for a crash, counts it; frees its slot. */
static void master_worker_ended(master_t *m, worker_slot_t *slot, int status)
{
    double uptime = master_now() - slot->started;
    bool crashed = !WIFEXITED(status) || WEXITSTATUS(status) != WORKER_EXIT_OK;
    char storm[64] = "";

    if (crashed && !slot->stopping && !m->shutting_down) {
        int pause_ms = master_crashed(m);
        if (pause_ms > 0)
            snprintf(storm, sizeof(storm), "; crash storm: next worker in %dms", pause_ms);
    }
    if (WIFSIGNALED(status))
        log_warn("worker %d killed by signal %d (%s) after %.1fs%s", (int)slot->pid,
                 WTERMSIG(status), strsignal(WTERMSIG(status)), uptime, storm);
    else
        log_info("worker %d exited with code %d after %.1fs%s", (int)slot->pid, WEXITSTATUS(status),
                 uptime, storm);
    slot->pid = 0;
}

static void master_reap(master_t *m)
{
    int status;
    pid_t pid;

    while ((pid = waitpid(-1, &status, WNOHANG)) > 0) {
        for (int i = 0; i < m->nslots; i++)
            if (m->slots[i].pid == pid)
                master_worker_ended(m, &m->slots[i], status);
    }
}

/* Brings the group up to its number of workers: all at once, or in a storm
 * one per pause. A failed fork counts as a crash, so that repeated failures
 * become a storm and are retried at its pace instead of in a busy loop. */
static void master_fill(master_t *m, const sigset_t *original_mask)
{
    while (master_live(m, false) < master_wanted(m->cfg)) {
        double now = master_now();
        if (now < m->next_spawn)
            return;
        if (master_spawn(m, master_next_kind(m), original_mask) != 0) {
            int pause_ms = master_crashed(m);
            m->next_spawn = now + (pause_ms > 0 ? pause_ms : MASTER_PAUSE_FIRST_MS) / 1e3;
            return;
        }
        if (m->storm)
            m->next_spawn = now + m->pause_ms / 1e3;
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
    notify_send("STOPPING=1\nSTATUS=stopping %d workers", master_live(m, true));
    /* No new connections: nginx answers 503 at once instead of queueing. */
    listen_close(m->cfg->listen_address, m->cfg->listen_fd);
    m->shutdown_deadline = master_now() + m->cfg->shutdown_timeout;
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
    if (old == NULL || master_spawn(m, old->job, original_mask) != 0)
        return;
    old->stopping = true;
    kill(old->pid, SIGTERM);
}

/* How long the master may sleep before it has something to do by the clock:
 * the shutdown deadline, the next paced spawn, the end of a storm. Deaths
 * and signals wake it at once whatever this says. */
static struct timespec master_sleep_time(const master_t *m, double now)
{
    double wait = MASTER_TICK;

    if (m->shutting_down && m->shutdown_deadline - now < wait)
        wait = m->shutdown_deadline - now;
    if (!m->shutting_down && master_live(m, false) < master_wanted(m->cfg) &&
        m->next_spawn - now < wait)
        wait = m->next_spawn - now;
    if (m->storm && m->last_crash + MASTER_STORM_QUIET - now < wait)
        wait = m->last_crash + MASTER_STORM_QUIET - now;
    if (notify_enabled() && !m->shutting_down && !m->ready && m->next_ready_check - now < wait)
        wait = m->next_ready_check - now;
    if (m->next_watchdog > 0 && m->next_watchdog - now < wait)
        wait = m->next_watchdog - now;
    if (wait < 0)
        wait = 0;
    time_t seconds = (time_t)wait;
    return (struct timespec){.tv_sec = seconds, .tv_nsec = (long)((wait - (double)seconds) * 1e9)};
}

/* Waits for a signal or the clock, and acts on the signal. */
static void master_wait(master_t *m, const sigset_t *handled)
{
    siginfo_t info;
    struct timespec sleep = master_sleep_time(m, master_now());
    int sig = sigtimedwait(handled, &info, &sleep);

    if (sig == SIGTERM || sig == SIGINT)
        master_begin_shutdown(m, sig == SIGTERM ? "SIGTERM" : "SIGINT");
    else if (sig == SIGHUP && !m->shutting_down) {
        m->generation++;
        log_info("SIGHUP: replacing workers one by one (generation %d)", m->generation);
        if (m->ready) {
            struct timespec now;
            clock_gettime(CLOCK_MONOTONIC, &now);
            m->reloading = true;
            notify_send("RELOADING=1\nMONOTONIC_USEC=%lld\nSTATUS=replacing workers "
                        "(generation %d)",
                        (long long)now.tv_sec * 1000000 + now.tv_nsec / 1000, m->generation);
        }
    }
    master_reap(m); /* SIGCHLDs merge: reap on every wake-up */
}

/* Ends the shutdown when every worker is gone, or kills them at the
 * deadline. Returns true when the master is done. */
static bool master_shutdown_done(master_t *m, int *exit_code)
{
    if (master_live(m, true) == 0)
        return true;
    if (master_now() < m->shutdown_deadline)
        return false;
    log_warn("shutdown timeout: killing %d workers", master_live(m, true));
    master_signal_all(m, SIGKILL);
    *exit_code = 1;
    while (waitpid(-1, NULL, 0) > 0)
        ;
    return true;
}

/* What systemd is told (notify.h), when due: READY=1 once the database
 * answers (the socket is bound before the master runs; the workers connect
 * lazily, so the master asks the server itself, without a connection its
 * forks would share), READY=1 again when a SIGHUP's replacement is done,
 * WATCHDOG=1 every half watchdog interval while at least one worker lives:
 * a master that is frozen, or whose workers are all dead, stops it and is
 * restarted. */
static void master_notify(master_t *m, double now)
{
    if (!notify_enabled())
        return;
    if (!m->shutting_down && !m->ready && now >= m->next_ready_check) {
        if (db_server_answers()) {
            m->ready = true;
            notify_send("READY=1\nSTATUS=serving with %d workers", master_live(m, false));
            log_info("ready: told systemd (the database answers)");
        } else {
            notify_send("STATUS=waiting for the database to answer");
            m->next_ready_check = master_now() + MASTER_READY_RETRY;
        }
    }
    if (m->reloading && !m->shutting_down) {
        bool old = false;
        for (int i = 0; i < m->nslots; i++)
            old = old || (m->slots[i].pid != 0 && m->slots[i].generation != m->generation);
        if (!old) {
            m->reloading = false;
            notify_send("READY=1\nSTATUS=serving with %d workers (generation %d)",
                        master_live(m, false), m->generation);
        }
    }
    long long usec = notify_watchdog_usec();
    if (usec > 0 && now >= m->next_watchdog) {
        if (master_live(m, false) > 0)
            notify_send("WATCHDOG=1");
        m->next_watchdog = now + (double)usec / 2e6;
    }
}

/* Blocks the signals the master waits for; original gets the mask before. */
static void master_block_signals(sigset_t *handled, sigset_t *original)
{
    sigemptyset(handled);
    sigaddset(handled, SIGCHLD);
    sigaddset(handled, SIGTERM);
    sigaddset(handled, SIGINT);
    sigaddset(handled, SIGHUP);
    sigprocmask(SIG_BLOCK, handled, original);
}

int master_run(const master_config_t *cfg)
{
    int wanted = master_wanted(cfg);
    master_t m = {.cfg = cfg, .nslots = wanted + 1};
    sigset_t handled, original;
    int exit_code = 0;

    m.slots = calloc((size_t)m.nslots, sizeof(*m.slots));
    m.ncrashes = wanted * 2 > MASTER_STORM_MINIMUM ? wanted * 2 : MASTER_STORM_MINIMUM;
    m.crashes = calloc((size_t)m.ncrashes, sizeof(*m.crashes));
    if (m.slots == NULL || m.crashes == NULL) {
        free(m.slots);
        free(m.crashes);
        return 2;
    }
    master_clear_crashes(&m);
    master_block_signals(&handled, &original);
    if (cfg->workers > 0)
        log_info("listening on %s with %d workers", cfg->listen_address, cfg->workers);
    for (int j = 0; j < cfg->njobs; j++)
        log_info("running the %s job with %d workers", cfg->group->jobs[j]->name,
                 cfg->job_workers[j]);
    for (;;) {
        if (!m.shutting_down) {
            master_storm_check_end(&m, master_now());
            master_replace_one(&m, &original);
            master_fill(&m, &original);
        }
        master_notify(&m, master_now());
        if (m.shutting_down && master_shutdown_done(&m, &exit_code))
            break;
        master_wait(&m, &handled);
    }
    log_info("stopped (exit code %d)", exit_code);
    free(m.slots);
    free(m.crashes);
    return exit_code;
}
