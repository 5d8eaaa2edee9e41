/* test_job.c - a job's wait between rounds: the pause, a descriptor that ends it sooner, a stop */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <fcntl.h>
#include <signal.h>
#include <stdlib.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "../../fcgi/job.h"
#include "../../fcgi/worker.h"

static int test_pipe[2]; /* the descriptor the job waits on */
static int test_report;  /* the child writes one byte per round here */
static long test_pause_ms;

static job_wait_t test_round(arena_t *arena)
{
    char byte;

    (void)arena;
    if (read(test_pipe[0], &byte, 1) < 0) /* the wake-up, if there was one */
        byte = 0;
    if (write(test_report, "r", 1) != 1)
        abort();
    return (job_wait_t){.ms = test_pause_ms, .fd = test_pipe[0]};
}

static const job_t test_job = {.name = "test", .round = test_round};

static double now_s(void)
{
    struct timespec t;

    clock_gettime(CLOCK_MONOTONIC, &t);
    return (double)t.tv_sec + (double)t.tv_nsec / 1e9;
}

/* Forks a job worker of group "none" (no heartbeat: no table of groups);
 * returns its pid and the read end of its round reports. */
static pid_t start_job(long pause_ms, int *reports)
{
    int report[2];

    assert_int_equal(pipe2(test_pipe, O_NONBLOCK), 0);
    assert_int_equal(pipe(report), 0);
    test_pause_ms = pause_ms;
    pid_t pid = fork();
    assert_true(pid >= 0);
    if (pid == 0) {
        close(report[0]);
        test_report = report[1];
        _exit(job_run("none", &test_job));
    }
    close(report[1]);
    close(test_pipe[0]);
    *reports = report[0];
    return pid;
}

static void next_round(int reports)
{
    char byte;
    assert_int_equal(read(reports, &byte, 1), 1);
}

static int stop_job(pid_t pid)
{
    int status;

    kill(pid, SIGTERM);
    assert_int_equal(waitpid(pid, &status, 0), pid);
    close(test_pipe[1]);
    return WIFEXITED(status) ? WEXITSTATUS(status) : -1;
}

static void a_readable_descriptor_ends_a_long_pause(void **state)
{
    (void)state;
    int reports;
    pid_t pid = start_job(60000, &reports);

    next_round(reports);
    double start = now_s();
    assert_int_equal(write(test_pipe[1], "x", 1), 1);
    next_round(reports); /* at once, not after 60 s */
    assert_true(now_s() - start < 1.0);
    assert_int_equal(stop_job(pid), WORKER_EXIT_OK);
    close(reports);
}

static void the_pause_alone_ends_the_wait(void **state)
{
    (void)state;
    int reports;
    pid_t pid = start_job(200, &reports);

    next_round(reports);
    double start = now_s();
    next_round(reports);
    double took = now_s() - start;
    assert_true(took >= 0.19 && took < 1.0);
    assert_int_equal(stop_job(pid), WORKER_EXIT_OK);
    close(reports);
}

static void a_stop_ends_a_long_pause_with_exit_0(void **state)
{
    (void)state;
    int reports;
    pid_t pid = start_job(60000, &reports);

    next_round(reports);
    double start = now_s();
    assert_int_equal(stop_job(pid), WORKER_EXIT_OK);
    assert_true(now_s() - start < 1.0);
    close(reports);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(a_readable_descriptor_ends_a_long_pause),
        cmocka_unit_test(the_pause_alone_ends_the_wait),
        cmocka_unit_test(a_stop_ends_a_long_pause_with_exit_0),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
