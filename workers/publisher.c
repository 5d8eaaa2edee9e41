/* publisher.c - the alerts group's `publisher` job: the live streams' messages handed to
 * nginx's nchan module, each once, in order, none lost (sql/functions/30_streams.sql says how) */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "groups.h"
#include "nchan.h"
#include "../fcgi/db.h"
#include "../fcgi/log.h"
#include "../fcgi/job.h"

#define PUBLISHER_BUFFER 200  /* nginx.conf's nchan_message_buffer_length */
#define PUBLISHER_EVENTS 1000 /* feed events per round at most */
#define PUBLISHER_PER_SECOND                                                                       \
    10 /* rounds that publish, per second at most (a channel gets a message per round) */
#define PUBLISHER_IDLE_MS       250   /* without a NOTIFY: look at nchan's generation this often */
#define PUBLISHER_STATE_MS      1000  /* /state looked at this often */
#define PUBLISHER_INTEREST_MS   60000 /* channels made on demand looked at this often */
#define PUBLISHER_PAUSE_MAX     5000  /* after failures in a row */
#define PUBLISHER_SUMMARY_EVERY 60.0

static const db_statement_t stmt_sequence = {"publisher_sequence", "SELECT activity_sequence()", 0,
                                             false};
static const db_statement_t stmt_status = {
    "publisher_status", "SELECT generation, sentinel FROM stream_state", 0, true};
static const db_statement_t stmt_channels = {
    "publisher_channels", "SELECT DISTINCT channel FROM stream_messages", 0, true};
static const db_statement_t stmt_reset = {"publisher_reset", "SELECT stream_reset($1)", 1, false};
static const db_statement_t stmt_prepare = {
    "publisher_prepare",
    "SELECT channel, seq, event, body, last_nchan_id"
    "  FROM stream_prepare($1::integer, $2::boolean, $3::integer)",
    3, false};
static const db_statement_t stmt_published = {
    "publisher_published",
    "SELECT stream_published(ARRAY[$1]::text[], ARRAY[$2::bigint], ARRAY[$3]::text[])", 3, false};
static const db_statement_t stmt_stale = {"publisher_stale",
                                          "SELECT stream_interest_stale() AS channel", 0, true};
static const db_statement_t stmt_keep = {
    "publisher_keep", "SELECT stream_interest_keep($1::text[], $2::text[])", 2, false};

typedef struct publisher_tally {
    double since;
    long rounds, messages, resets, errors;
    double slowest_ms;
} publisher_tally_t;

static publisher_tally_t publisher_tally;
static bool publisher_started;
static bool publisher_recovering = true; /* until a round went through: pending may have landed */
static bool publisher_nginx_down;        /* logged once per outage */
static int publisher_failures;
static double publisher_last_state, publisher_last_interest;
/* when the last PUBLISHER_PER_SECOND rounds that published began (a ring):
 * a round may publish when the oldest of them is a second old */
static double publisher_published_at[PUBLISHER_PER_SECOND];
static int publisher_published_next;

static double publisher_now(void)
{
    struct timespec t;

    clock_gettime(CLOCK_MONOTONIC, &t);
    return (double)t.tv_sec + (double)t.tv_nsec / 1e9;
}

static void publisher_summary(double now, bool final)
{
    publisher_tally_t *t = &publisher_tally;

    if (!final && now - t->since < PUBLISHER_SUMMARY_EVERY)
        return;
    if (t->messages > 0 || t->errors > 0 || t->resets > 0)
        log_info("streams: %ld messages published in %.0fs (%ld rounds, slowest %.1f ms), "
                 "%ld generations of nchan, %ld rounds failed",
                 t->messages, now - t->since, t->rounds, t->slowest_ms, t->resets, t->errors);
    *t = (publisher_tally_t){.since = now};
}

/* nginx could not be reached or refused: logged once until it answers. */
static int publisher_nginx_failed(const char *what, const char *error)
{
    if (!publisher_nginx_down)
        log_warn("streams: nchan %s failed on %s: %s; trying again", what, nchan_socket(), error);
    publisher_nginx_down = true;
    return -1;
}

static void publisher_nginx_back(void)
{
    if (publisher_nginx_down)
        log_info("streams: nchan answers again on %s", nchan_socket());
    publisher_nginx_down = false;
}

/* nchan's memory is the generation recorded, or a new one is opened (a
 * reload or restart emptied it): every buffered message becomes pending. */
static int publisher_generation(arena_t *arena, problem_t *p)
{
    nchan_answer_t a;
    char error[256];
    PGresult *row = db_exec(&stmt_status, NULL, p);

    if (row == NULL)
        return -1;
    const char *sentinel = db_get_copy(arena, row, 0, "sentinel");
    long long generation = strtoll(db_get(row, 0, "generation"), NULL, 10);
    PQclear(row);
    if (nchan_info("_generation", &a, error) != 0)
        return publisher_nginx_failed("channel info", error);
    if (a.status == 200 && sentinel != NULL && strcmp(a.last_message_id, sentinel) == 0)
        return 0;
    if (a.status != 200 && a.status != 404) {
        snprintf(error, sizeof(error), "HTTP %ld", a.status);
        return publisher_nginx_failed("channel info", error);
    }
    /* What this publisher may have put into the new memory before it saw
     * it was new goes first: every message is given again below, in order. */
    PGresult *channels = db_exec(&stmt_channels, NULL, p);
    if (channels == NULL)
        return -1;
    for (int i = 0; i < PQntuples(channels); i++)
        if (nchan_delete(db_get(channels, i, "channel"), &a, error) != 0) {
            PQclear(channels);
            return publisher_nginx_failed("delete", error);
        }
    PQclear(channels);
    /* nchan's ids are "second:count": the ids of the new generation start
     * in a second after every id of the old one, so that an old id a
     * client sends back never names a message of the new generation. */
    struct timespec wall;
    clock_gettime(CLOCK_REALTIME, &wall);
    struct timespec next_second = {.tv_sec = 0, .tv_nsec = 1000000000L - wall.tv_nsec + 10000000L};
    if (next_second.tv_nsec >= 1000000000L) {
        next_second.tv_sec = 1;
        next_second.tv_nsec -= 1000000000L;
    }
    nanosleep(&next_second, NULL);
    const char *body =
        arena_printf(arena, "{\"type\":\"generation\",\"generation\":%lld}", generation + 1);
    if (nchan_publish("_generation", "generation", body, strlen(body), &a, error) != 0)
        return publisher_nginx_failed("publish", error);
    if (a.status != 201 && a.status != 202) {
        snprintf(error, sizeof(error), "HTTP %ld", a.status);
        return publisher_nginx_failed("publish", error);
    }
    const char *params[1] = {a.last_message_id};
    if ((row = db_exec(&stmt_reset, params, p)) == NULL)
        return -1;
    PQclear(row);
    log_info("streams: nchan's memory is new (nginx started or reloaded): generation %lld, "
             "giving it the buffered messages again",
             generation + 1);
    publisher_tally.resets++;
    publisher_recovering = false; /* all pending now; none of them is in nchan */
    return 0;
}

static int publisher_record(const char *channel, const char *seq, const char *id, problem_t *p)
{
    const char *params[3] = {channel, seq, id};
    PGresult *res = db_exec(&stmt_published, params, p);

    if (res == NULL)
        return -1;
    PQclear(res);
    publisher_tally.messages++;
    return 0;
}

/* The pending messages, in order, each POSTed and then recorded. After a
 * start or a failure the first pending message of a channel may have been
 * taken by nchan before its record was lost: nchan's newest id is then
 * not the one recorded, and it is recorded instead of sent again. */
static int publisher_send(arena_t *arena, PGresult *rows, problem_t *p)
{
    int n = PQntuples(rows);
    const char **checked = arena_alloc(arena, sizeof(char *) * (size_t)(n + 1));
    int nchecked = 0;

    for (int i = 0; i < n; i++) {
        const char *channel = db_get(rows, i, "channel");
        const char *seq = db_get(rows, i, "seq");
        const char *last = db_get(rows, i, "last_nchan_id");
        nchan_answer_t a;
        char error[256];

        if (publisher_recovering) {
            bool seen = false;
            for (int k = 0; k < nchecked && !seen; k++)
                seen = strcmp(checked[k], channel) == 0;
            if (!seen) {
                checked[nchecked++] = channel;
                if (nchan_info(channel, &a, error) != 0)
                    return publisher_nginx_failed("channel info", error);
                if (a.status == 200 && (last == NULL || strcmp(a.last_message_id, last) != 0)) {
                    if (publisher_record(channel, seq, a.last_message_id, p) != 0)
                        return -1;
                    continue;
                }
            }
        }
        const char *body = db_get(rows, i, "body");
        if (nchan_publish(channel, db_get(rows, i, "event"), body, strlen(body), &a, error) != 0)
            return publisher_nginx_failed("publish", error);
        if (a.status != 201 && a.status != 202) {
            snprintf(error, sizeof(error), "HTTP %ld%s", a.status,
                     a.status == 507 ? " (nchan_shared_memory_size is full)" : "");
            return publisher_nginx_failed("publish", error);
        }
        if (publisher_record(channel, seq, a.last_message_id, p) != 0)
            return -1;
    }
    return 0;
}

/* Channels made on demand and not subscribed to lately: kept while nchan
 * still has subscribers for them, dropped otherwise. */
static int publisher_interest(arena_t *arena, problem_t *p)
{
    PGresult *rows = db_exec(&stmt_stale, NULL, p);

    if (rows == NULL)
        return -1;
    int n = PQntuples(rows);
    if (n == 0) {
        PQclear(rows);
        return 0;
    }
    char *kept = arena_printf(arena, "{"), *dropped = arena_printf(arena, "{");
    for (int i = 0; i < n; i++) {
        const char *channel = db_get(rows, i, "channel");
        nchan_answer_t a;
        char error[256];
        if (nchan_info(channel, &a, error) != 0) {
            PQclear(rows);
            return publisher_nginx_failed("channel info", error);
        }
        bool listened = a.status == 200 && a.subscribers > 0;
        char **list = listened ? &kept : &dropped;
        *list = arena_printf(arena, "%s%s\"%s\"", *list, (*list)[1] != '\0' ? "," : "", channel);
    }
    PQclear(rows);
    const char *params[2] = {arena_printf(arena, "%s}", kept), arena_printf(arena, "%s}", dropped)};
    PGresult *res = db_exec(&stmt_keep, params, p);
    if (res == NULL)
        return -1;
    PQclear(res);
    return 0;
}

/* stream_prepare() and what it made pending sent; state: this call looks
 * at /state (and takes no events). Returns the number of messages sent, or
 * -1. */
static int publisher_prepare_and_send(arena_t *arena, bool state, problem_t *p)
{
    const char *params[3] = {arena_printf(arena, "%d", state ? 0 : PUBLISHER_EVENTS),
                             state ? "true" : "false", arena_printf(arena, "%d", PUBLISHER_BUFFER)};
    PGresult *rows = db_exec(&stmt_prepare, params, p);
    if (rows == NULL)
        return -1;
    int n = PQntuples(rows);
    int rc = publisher_send(arena, rows, p);
    PQclear(rows);
    return rc != 0 ? -1 : n;
}

static int publisher_work(arena_t *arena, double now, problem_t *p)
{
    if (publisher_generation(arena, p) != 0)
        return -1;
    PGresult *res = db_exec(&stmt_sequence, NULL, p);
    if (res == NULL)
        return -1;
    PQclear(res);
    /* the feed's events first; /state (a heavier statement) after them */
    int sent = publisher_prepare_and_send(arena, false, p);
    if (sent < 0)
        return -1;
    if (now - publisher_last_state >= PUBLISHER_STATE_MS / 1e3) {
        int more = publisher_prepare_and_send(arena, true, p);
        if (more < 0)
            return -1;
        publisher_last_state = now;
        sent += more;
    }
    if (sent > 0) {
        publisher_published_at[publisher_published_next] = now;
        publisher_published_next = (publisher_published_next + 1) % PUBLISHER_PER_SECOND;
    }
    publisher_nginx_back();
    publisher_recovering = false;
    if (now - publisher_last_interest >= PUBLISHER_INTEREST_MS / 1e3) {
        if (publisher_interest(arena, p) != 0)
            return -1;
        publisher_last_interest = now;
    }
    return 0;
}

static job_wait_t publisher_round(arena_t *arena)
{
    problem_t p = {.arena = arena};
    double now = publisher_now();

    const char *enabled = getenv("FLEETDASH_PUBLISHER");
    if (enabled != NULL && strcmp(enabled, "off") == 0) {
        if (!publisher_started)
            log_info("streams: FLEETDASH_PUBLISHER=off: this host publishes nothing (another "
                     "host's nginx serves the live streams)");
        publisher_started = true;
        return (job_wait_t){.ms = 60000, .fd = -1};
    }
    if (!publisher_started) {
        publisher_started = true;
        publisher_tally.since = now;
        publisher_last_interest = now;
        db_log_outages_once(true);
        log_info("streams: publishing to nchan on %s", nchan_socket());
    }
    /* a channel gets at most a message per round (and a snapshot now and
     * then), and at most PUBLISHER_PER_SECOND rounds publish in any second:
     * what arrives meanwhile waits and goes as one batch */
    double since = (now - publisher_published_at[publisher_published_next]) * 1e3;
    if (since < 1000)
        return (job_wait_t){.ms = 1000 - (long)since + 1, .fd = -1};
    if (db_listen("fleetdash_stream", &p) == 0)
        (void)db_notifications();
    if (p.status == 0 && publisher_work(arena, now, &p) == 0) {
        publisher_failures = 0;
    } else {
        publisher_tally.errors++;
        publisher_failures++;
        publisher_recovering = true;
    }
    double ms = (publisher_now() - now) * 1e3;
    publisher_tally.rounds++;
    if (ms > publisher_tally.slowest_ms)
        publisher_tally.slowest_ms = ms;
    publisher_summary(publisher_now(), false);
    if (publisher_failures > 0) {
        long pause = 100;
        for (int i = 1; i < publisher_failures && pause < PUBLISHER_PAUSE_MAX; i++)
            pause *= 2;
        return (job_wait_t){.ms = pause > PUBLISHER_PAUSE_MAX ? PUBLISHER_PAUSE_MAX : pause,
                            .fd = -1};
    }
    /* a NOTIFY read meanwhile (while a statement ran) leaves the socket quiet */
    if (db_notifications() > 0)
        return (job_wait_t){.ms = 0, .fd = -1};
    return (job_wait_t){.ms = PUBLISHER_IDLE_MS, .fd = db_socket()};
}

static void publisher_stop(void)
{
    publisher_summary(publisher_now(), true);
}

const job_t publisher_job = {.name = "publisher", .round = publisher_round, .stop = publisher_stop};
