/* fleetdashd.c - the one program: `fleetdashd --group NAME` serves a route group */
#include <getopt.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "db.h"
#include "listen.h"
#include "log.h"
#include "master.h"
#include "request.h"
#include "../workers/groups.h"

/* The groups this program serves; one master per group. A row names the
 * group and either its route table or its job (worker.h). */
/* clang-format off */
static const group_t fleetdashd_groups[] = {
    {"aggregates", aggregates_routes, NULL},
    {"dashboards", dashboards_routes, NULL},
    {"hello", hello_routes, NULL},
    {"ingest", ingest_routes, NULL},
    {"maintenance", NULL, &maintenance_job},
    /* ingest's routes again, for NDJSON streams (nginx.conf): a slow stream
     * holds a worker of its own, never one that small requests wait for */
    {"streams", ingest_routes, NULL},
    {NULL, NULL, NULL},
};
/* clang-format on */

typedef struct options {
    const char *group;
    const char *listen;
    const char *database_url;
    long workers;
    long max_requests;
    long shutdown_timeout;
    long refresh_interval;
    long body_grace;
    long body_min_rate;
} options_t;

/* The names of the groups, "a, b, c", for messages. */
static const char *group_names(void)
{
    static char names[256];

    names[0] = '\0';
    for (const group_t *g = fleetdashd_groups; g->name != NULL; g++)
        snprintf(names + strlen(names), sizeof(names) - strlen(names), "%s%s",
                 g == fleetdashd_groups ? "" : ", ", g->name);
    return names;
}

static void usage(FILE *out)
{
    fprintf(out,
            "usage: fleetdashd --group NAME --listen unix:PATH|HOST:PORT [options]\n"
            "       fleetdashd --group maintenance [--refresh-interval MS] [options]\n"
            "  --group NAME            group to serve: %s\n",
            group_names());
    fprintf(out,
            "  --listen ADDRESS        unix:/run/fleetdash/NAME.sock, 127.0.0.1:9001 or :9001\n"
            "  --workers N             worker processes (default 4; maintenance: 1)\n"
            "  --max-requests N        recycle a worker after N requests (default 0 = never)\n"
            "  --database-url CONNINFO libpq connection string or URI\n"
            "  --shutdown-timeout S    seconds in-flight requests get on SIGTERM (default 30)\n"
            "  --refresh-interval MS   maintenance: pause between rollup refreshes (default 1000)\n"
            "  --body-grace S          a request body may take S seconds to start (default 10)\n"
            "  --body-min-rate KIB     then KIB KiB for every second past it, else 408\n"
            "                          (default 32; 0 = no limit)\n"
            "The maintenance group serves no requests: --listen and --max-requests are\n"
            "ignored. Each option may also come from the environment: FLEETDASH_GROUP,\n"
            "FLEETDASH_LISTEN, FLEETDASH_WORKERS, FLEETDASH_MAX_REQUESTS,\n"
            "FLEETDASH_DATABASE_URL, FLEETDASH_SHUTDOWN_TIMEOUT,\n"
            "FLEETDASH_REFRESH_INTERVAL, FLEETDASH_BODY_GRACE,\n"
            "FLEETDASH_BODY_MIN_RATE. Flags win.\n");
}

/* Parses a whole number in [min, max]; -1 on anything else. */
static long parse_count(const char *name, const char *text, long min, long max)
{
    char *end;
    long v = strtol(text, &end, 10);

    if (*text == '\0' || *end != '\0' || v < min || v > max) {
        fprintf(stderr, "fleetdashd: %s must be a whole number from %ld to %ld, not \"%s\"\n", name,
                min, max, text);
        return -1;
    }
    return v;
}

static const char *env_or(const char *name, const char *fallback)
{
    const char *v = getenv(name);
    return (v != NULL && *v != '\0') ? v : fallback;
}

/* Fills o from the environment, then the flags. Returns 0, or the exit code. */
static int parse_options(int argc, char **argv, options_t *o)
{
    static const struct option longopts[] = {
        {"group", required_argument, NULL, 'g'},
        {"listen", required_argument, NULL, 'l'},
        {"workers", required_argument, NULL, 'w'},
        {"max-requests", required_argument, NULL, 'm'},
        {"database-url", required_argument, NULL, 'd'},
        {"shutdown-timeout", required_argument, NULL, 't'},
        {"refresh-interval", required_argument, NULL, 'r'},
        {"body-grace", required_argument, NULL, 'b'},
        {"body-min-rate", required_argument, NULL, 'k'},
        {"help", no_argument, NULL, 'h'},
        {NULL, 0, NULL, 0},
    };
    const char *workers = env_or("FLEETDASH_WORKERS", NULL); /* NULL: the group's default */
    const char *interval = env_or("FLEETDASH_REFRESH_INTERVAL", "1000");
    const char *max_requests = env_or("FLEETDASH_MAX_REQUESTS", "0");
    const char *timeout = env_or("FLEETDASH_SHUTDOWN_TIMEOUT", "30");
    const char *grace = env_or("FLEETDASH_BODY_GRACE", "10");
    const char *min_rate = env_or("FLEETDASH_BODY_MIN_RATE", "32");
    int c;

    o->group = env_or("FLEETDASH_GROUP", NULL);
    o->listen = env_or("FLEETDASH_LISTEN", NULL);
    o->database_url = env_or("FLEETDASH_DATABASE_URL", NULL);
    while ((c = getopt_long(argc, argv, "h", longopts, NULL)) != -1) {
        switch (c) {
        case 'g': o->group = optarg; break;
        case 'l': o->listen = optarg; break;
        case 'w': workers = optarg; break;
        case 'm': max_requests = optarg; break;
        case 'd': o->database_url = optarg; break;
        case 't': timeout = optarg; break;
        case 'r': interval = optarg; break;
        case 'b': grace = optarg; break;
        case 'k': min_rate = optarg; break;
        case 'h': usage(stdout); return 0;
        default: usage(stderr); return 64;
        }
    }
    if (optind < argc || o->group == NULL) {
        usage(stderr);
        return 64;
    }
    o->workers = workers != NULL ? parse_count("--workers", workers, 1, 256) : 0;
    o->max_requests = parse_count("--max-requests", max_requests, 0, LONG_MAX);
    o->shutdown_timeout = parse_count("--shutdown-timeout", timeout, 0, 3600);
    o->refresh_interval = parse_count("--refresh-interval", interval, 10, 3600000);
    o->body_grace = parse_count("--body-grace", grace, 0, 3600);
    o->body_min_rate = parse_count("--body-min-rate", min_rate, 0, 1048576);
    if (o->workers < 0 || o->max_requests < 0 || o->shutdown_timeout < 0 ||
        o->refresh_interval < 0 || o->body_grace < 0 || o->body_min_rate < 0)
        return 64;
    return -1;
}

int main(int argc, char **argv)
{
    options_t o = {0};
    int rc = parse_options(argc, argv, &o);

    if (rc >= 0)
        return rc;
    const group_t *group = fleetdashd_groups;
    while (group->name != NULL && strcmp(group->name, o.group) != 0)
        group++;
    if (group->name == NULL) {
        fprintf(stderr, "fleetdashd: unknown group \"%s\" (known: %s)\n", o.group, group_names());
        return 64;
    }
    if (group->job == NULL && o.listen == NULL) {
        usage(stderr);
        return 64;
    }
    log_set_identity(group->name, "master");
    char application_name[64];
    snprintf(application_name, sizeof(application_name), "fleetdash-%s", group->name);
    db_configure(o.database_url, application_name);
    request_body_pace(o.body_grace, o.body_min_rate * 1024);
    /* A job group has no socket. --listen is accepted (one unit template and
     * stack.sh start every group alike, and find its processes by it) but
     * not used. */
    int fd = -1;
    if (o.workers == 0)
        o.workers = group->job != NULL ? 1 : 4; /* the group's default */
    if (group->job != NULL && o.listen != NULL)
        log_info("--listen %s ignored: group %s runs a job and serves no requests", o.listen,
                 group->name);
    else if (group->job == NULL && (fd = listen_open(o.listen)) < 0)
        return 69;
    master_config_t cfg = {
        .group = group,
        .listen_address = group->job != NULL ? NULL : o.listen,
        .listen_fd = fd,
        .workers = (int)o.workers,
        .max_requests = o.max_requests,
        .shutdown_timeout = (int)o.shutdown_timeout,
        .job = {.interval_ms = o.refresh_interval},
    };
    return master_run(&cfg);
}
