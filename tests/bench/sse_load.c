/* sse_load.c - the live streams' load client: N SSE subscribers on one channel (epoll, one
 * thread), and a writer committing feed events at a steady rate; prints commit-to-receive
 * latency (p50, p99, max) and whether every subscriber got every event.
 *
 *   sse_load HOST PORT PATH KEY SUBSCRIBERS SECONDS EVENTS_PER_S EVENTS_PER_COMMIT DATABASE_URL
 *
 * The writer inserts staged feed events (type dashboard, link /bench/PID-SEQ) straight into
 * activity_staged, EVENTS_PER_COMMIT per transaction, and notes when each commit returned;
 * a subscriber's latency for SEQ is when it read the event minus that. Subscribers connect
 * 200 at a time; the writer starts once all are in and have had their snapshot. PROBE, a
 * shell command, runs then and again when the writer is done (the CPU and memory figures of
 * tests/bench/streams.sh). */
#include <errno.h>
#include <libpq-fe.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <arpa/inet.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#define MAX_EVENTS 200000
#define BUCKETS 100000 /* 0.1 ms each: up to 10 s */
#define CONNECT_WAVE 200

typedef struct sub {
    int fd;
    int state; /* 0 connecting/headers, 1 streaming, 2 closed */
    long received;
    bool snapshot; /* the event being read is a snapshot */
    bool skipping; /* a line longer than buf (a snapshot's data) is dropped */
    char buf[16384];
    size_t len;
} sub_t;

static double commit_at[MAX_EVENTS]; /* 0 = not yet committed */
static atomic_long committed;
static atomic_int writer_done;
static long histogram[BUCKETS + 1];
static long samples, late_samples;
static double worst_ms;

static double now_s(void)
{
    struct timespec t;
    clock_gettime(CLOCK_REALTIME, &t);
    return (double)t.tv_sec + (double)t.tv_nsec / 1e9;
}

typedef struct writer_args {
    const char *dburl;
    double seconds;
    long rate, batch;
} writer_args_t;

static void *writer(void *arg)
{
    writer_args_t *w = arg;
    PGconn *db = PQconnectdb(w->dburl);
    if (PQstatus(db) != CONNECTION_OK) {
        fprintf(stderr, "sse_load: writer: %s", PQerrorMessage(db));
        exit(1);
    }
    long total = (long)(w->seconds * (double)w->rate);
    if (total > MAX_EVENTS)
        total = MAX_EVENTS;
    double every = (double)w->batch / (double)w->rate;
    double start = now_s();
    char sql[65536];
    for (long seq = 0, round = 0; seq < total; round++) {
        double due = start + (double)round * every;
        double wait = due - now_s();
        if (wait > 0) {
            struct timespec t = {(time_t)wait, (long)((wait - (double)(time_t)wait) * 1e9)};
            nanosleep(&t, NULL);
        }
        size_t n = (size_t)snprintf(sql, sizeof(sql),
                                    "INSERT INTO activity_staged (type, title, link, resource_id) "
                                    "VALUES ");
        long first = seq;
        for (long k = 0; k < w->batch && seq < total; k++, seq++)
            n += (size_t)snprintf(sql + n, sizeof(sql) - n,
                                  "%s('dashboard', 'bench', '/bench/%d-%ld', 'bench')",
                                  k > 0 ? "," : "", (int)getpid(), seq);
        PGresult *res = PQexec(db, sql);
        if (PQresultStatus(res) != PGRES_COMMAND_OK) {
            fprintf(stderr, "sse_load: writer: %s", PQerrorMessage(db));
            exit(1);
        }
        PQclear(res);
        double t = now_s();
        for (long k = first; k < seq; k++)
            commit_at[k] = t;
        atomic_store(&committed, seq);
    }
    PQfinish(db);
    atomic_store(&writer_done, 1);
    return NULL;
}

static void record(long seq, double at)
{
    if (seq < 0 || seq >= MAX_EVENTS)
        return;
    double c = commit_at[seq];
    if (c == 0) { /* read before the writer noted the commit: about 0 */
        late_samples++;
        c = at;
    }
    double ms = (at - c) * 1e3;
    if (ms < 0)
        ms = 0;
    if (ms > worst_ms)
        worst_ms = ms;
    long b = (long)(ms * 10);
    histogram[b > BUCKETS ? BUCKETS : b]++;
    samples++;
}

static double percentile(double p)
{
    long want = (long)((double)samples * p), seen = 0;
    for (long b = 0; b <= BUCKETS; b++) {
        seen += histogram[b];
        if (seen > want)
            return (double)b / 10.0;
    }
    return worst_ms;
}

static char run_tag[32]; /* "/bench/PID-": this run's events, not an earlier one's */

/* Every "/bench/PID-SEQ" in the data of an event that is not a snapshot (a
 * snapshot repeats the newest events) is one event received. Lines are
 * taken as they complete; s->snapshot remembers an "event: snapshot" line
 * until its data line. */
static void consume(sub_t *s, double at)
{
    size_t tag = strlen(run_tag);
    char *line = s->buf, *end = s->buf + s->len;

    if (s->skipping) {
        char *nl = memchr(line, '\n', s->len);
        if (nl == NULL) {
            s->len = 0;
            return;
        }
        s->skipping = false;
        s->snapshot = false;
        line = nl + 1;
    }

    for (char *nl; line < end && (nl = memchr(line, '\n', (size_t)(end - line))) != NULL;
         line = nl + 1) {
        *nl = '\0';
        if (strncmp(line, "event: ", 7) == 0) {
            s->snapshot = strcmp(line + 7, "snapshot") == 0;
        } else if (strncmp(line, "data: ", 6) == 0) {
            if (!s->snapshot)
                for (char *p = line; (p = strstr(p, run_tag)) != NULL;) {
                    long seq = strtol(p + tag, &p, 10);
                    record(seq, at);
                    s->received++;
                }
            s->snapshot = false;
        }
    }
    size_t keep = (size_t)(end - line);
    memmove(s->buf, line, keep);
    s->len = keep;
    if (s->len >= sizeof(s->buf) - 1) {
        s->len = 0;
        s->skipping = true;
    }
}

int main(int argc, char **argv)
{
    if (argc != 10 && argc != 11) {
        fprintf(stderr, "usage: sse_load HOST PORT PATH KEY SUBSCRIBERS SECONDS EVENTS_PER_S "
                        "EVENTS_PER_COMMIT DATABASE_URL [PROBE]\n");
        return 2;
    }
    const char *host = argv[1], *path = argv[3], *key = argv[4];
    int port = atoi(argv[2]);
    int n = atoi(argv[5]);
    writer_args_t w = {.dburl = argv[9], .seconds = atof(argv[6]), .rate = atol(argv[7]),
                       .batch = atol(argv[8])};
    struct rlimit lim = {(rlim_t)n + 1024, (rlim_t)n + 1024};
    if (setrlimit(RLIMIT_NOFILE, &lim) != 0) {
        perror("sse_load: setrlimit");
        return 1;
    }
    snprintf(run_tag, sizeof(run_tag), "/bench/%d-", (int)getpid());
    sub_t *subs = calloc((size_t)n, sizeof(sub_t));
    int ep = epoll_create1(0);
    char request[1024];
    int reqlen = snprintf(request, sizeof(request),
                          "GET %s HTTP/1.1\r\nHost: %s:%d\r\nAccept: text/event-stream\r\n"
                          "Authorization: Bearer %s\r\n\r\n",
                          path, host, port, key);
    struct sockaddr_in addr = {.sin_family = AF_INET, .sin_port = htons((uint16_t)port)};
    inet_pton(AF_INET, host, &addr.sin_addr);

    struct epoll_event events[512];
    int open = 0, streaming = 0, refused = 0;
    double connect_start = now_s();
    long expected = (long)(w.seconds * (double)w.rate);
    pthread_t writer_thread;
    bool writing = false;
    double writer_end = 0;
    while (true) {
        /* connect in waves */
        while (open < n && open - streaming - refused < CONNECT_WAVE) {
            sub_t *s = &subs[open];
            s->fd = socket(AF_INET, SOCK_STREAM, 0);
            if (s->fd < 0 || connect(s->fd, (struct sockaddr *)&addr, sizeof(addr)) != 0) {
                perror("sse_load: connect");
                return 1;
            }
            if (write(s->fd, request, (size_t)reqlen) != reqlen) {
                perror("sse_load: write");
                return 1;
            }
            struct epoll_event ev = {.events = EPOLLIN, .data.ptr = s};
            epoll_ctl(ep, EPOLL_CTL_ADD, s->fd, &ev);
            open++;
        }
        if (!writing && streaming + refused == n) {
            if (refused > 0) {
                fprintf(stderr, "sse_load: %d subscribers refused\n", refused);
                return 1;
            }
            printf("subscribers: %d connected in %.1f s\n", n, now_s() - connect_start);
            fflush(stdout);
            if (argc == 11 && system(argv[10]) != 0) /* "probe-before: ..." */
                return 1;
            pthread_create(&writer_thread, NULL, writer, &w);
            writing = true;
        }
        if (writing && atomic_load(&writer_done) && writer_end == 0) {
            writer_end = now_s();
            fflush(stdout);
            if (argc == 11 && system(argv[10]) != 0) /* "probe-after: ..." */
                return 1;
        }
        if (writer_end > 0) {
            long all = 0;
            for (int i = 0; i < n; i++)
                all += subs[i].received >= expected;
            if (all == n || now_s() - writer_end > 5)
                break;
        }
        int k = epoll_wait(ep, events, 512, 100);
        double at = now_s();
        for (int i = 0; i < k; i++) {
            sub_t *s = events[i].data.ptr;
            ssize_t got = read(s->fd, s->buf + s->len, sizeof(s->buf) - 1 - s->len);
            if (got <= 0) {
                if (s->state == 0)
                    refused++;
                s->state = 2;
                epoll_ctl(ep, EPOLL_CTL_DEL, s->fd, NULL);
                close(s->fd);
                continue;
            }
            s->len += (size_t)got;
            if (s->state == 0) {
                s->buf[s->len] = '\0';
                if (strncmp(s->buf, "HTTP/1.1 200", 12) != 0) {
                    fprintf(stderr, "sse_load: %.*s\n", 60, s->buf);
                    refused++;
                    s->state = 2;
                    epoll_ctl(ep, EPOLL_CTL_DEL, s->fd, NULL);
                    close(s->fd);
                    continue;
                }
                char *snapshot = strstr(s->buf, "event: snapshot");
                if (snapshot == NULL)
                    continue;
                s->state = 1;
                streaming++;
                s->len = 0;
                continue;
            }
            consume(s, at);
        }
    }
    if (writing)
        pthread_join(writer_thread, NULL);
    long complete = 0, closed = 0;
    for (int i = 0; i < n; i++) {
        complete += subs[i].received >= expected;
        closed += subs[i].state == 2;
    }
    printf("events: %ld committed at %ld/s in commits of %ld\n", atomic_load(&committed), w.rate,
           w.batch);
    printf("received: %ld of %ld events x subscribers; %ld of %d subscribers got every event; "
           "%ld closed\n",
           samples, expected * n, complete, n, closed);
    printf("commit-to-receive: p50 %.1f ms, p99 %.1f ms, max %.1f ms\n", percentile(0.50),
           percentile(0.99), worst_ms);
    return complete == n ? 0 : 3;
}
