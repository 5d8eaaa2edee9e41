/* fleetdashd.c - the one program: `fleetdashd --group NAME` runs a group's master */
#include <getopt.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "auth.h"
#include "cors.h"
#include "db.h"
#include "group.h"
#include "health.h"
#include "listen.h"
#include "log.h"
#include "master.h"
#include "notify.h"

#define FLEETDASHD_OPTIONS_MAX 32  /* the runtime's options and one group's */
#define FLEETDASHD_OPTION_BASE 256 /* getopt values of a group's options */

/* The options every group takes; a group adds its own (group.h). */
typedef struct options {
    const char *group;
    const char *listen;
    const char *database_url;
    const char *log_format; /* json | logfmt */
    long workers;           /* 0 = the group's default */
    long max_requests;
    long shutdown_timeout;
} options_t;

/* The names of the groups, "a, b, c", for messages. */
static const char *fleetdashd_group_names(const group_t *groups)
{
    static char names[256];

    names[0] = '\0';
    for (const group_t *g = groups; g->name != NULL; g++)
        snprintf(names + strlen(names), sizeof(names) - strlen(names), "%s%s",
                 g == groups ? "" : ", ", g->name);
    return names;
}

/* The i-th option of g, counting through its tables in order; NULL past
 * the last. */
static const group_option_t *fleetdashd_option(const group_t *g, size_t i)
{
    for (const group_option_t *const *t = g->options; t != NULL && *t != NULL; t++)
        for (const group_option_t *o = *t; o->name != NULL; o++)
            if (i-- == 0)
                return o;
    return NULL;
}

static void fleetdashd_usage(FILE *out, const group_t *groups)
{
    fprintf(out,
            "usage: fleetdashd --group NAME [--listen unix:PATH|HOST:PORT] [options]\n"
            "       fleetdashd --routes    every group's routes and jobs, one per line\n"
            "       fleetdashd --new-key NAME [--role ROLE] [--expires-in-days N]\n"
            "                              [--database-url CONNINFO]\n"
            "                              creates an API key (role admin by default; viewer,\n"
            "                              editor, ingest, metrics) and prints it, once\n"
            "  --group NAME            group to run: %s\n",
            fleetdashd_group_names(groups));
    fprintf(out,
            "  --listen ADDRESS        unix:/run/fleetdash/NAME.sock, 127.0.0.1:9001 or :9001\n"
            "                          (a group with routes needs it; one without ignores it)\n"
            "  --workers N             worker processes (default: the group's, below)\n"
            "  --max-requests N        recycle a worker after N requests (default 0 = never)\n"
            "  --database-url CONNINFO libpq connection string or URI\n"
            "  --shutdown-timeout S    seconds in-flight requests get on SIGTERM (default 30)\n"
            "  --log-format FORMAT     json (default) or logfmt: one record per line on stderr\n");
    for (const group_t *g = groups; g->name != NULL; g++) {
        fprintf(out, "group %s: %d workers by default%s", g->name, g->workers,
                g->routes != NULL ? ", routes" : "");
        for (const job_t *const *j = g->jobs; j != NULL && *j != NULL; j++)
            fprintf(out, "%s%s", j == g->jobs ? ", jobs: " : " ", (*j)->name);
        fputc('\n', out);
        const group_option_t *o;
        for (size_t i = 0; (o = fleetdashd_option(g, i)) != NULL; i++)
            fprintf(out, "  --%-21s %s (%s)\n", o->name, o->help, o->env);
    }
    fprintf(out, "Each option may also come from the environment: FLEETDASH_GROUP,\n"
                 "FLEETDASH_LISTEN, FLEETDASH_WORKERS, FLEETDASH_MAX_REQUESTS,\n"
                 "FLEETDASH_DATABASE_URL, FLEETDASH_SHUTDOWN_TIMEOUT, FLEETDASH_LOG_FORMAT,\n"
                 "FLEETDASH_AUTH (on, or off: no API key is checked),\n"
                 "and a group's own as\n"
                 "named above. Flags win.\n");
}

/* Who may call route r of group g: its row's roles, else the group's
 * default for its method (group.h). */
static unsigned fleetdashd_roles(const group_t *g, const route_t *r)
{
    if (r->roles != 0)
        return r->roles;
    if (strcmp(r->method, "GET") == 0)
        return g->read_roles != 0 ? g->read_roles : ROLES_READ;
    return g->write_roles != 0 ? g->write_roles : ROLES_EDIT;
}

/* Prints every group's routes ("GROUP METHOD PATH ROLES", the roles as
 * auth_roles_text writes them) and jobs ("GROUP job NAME"), health rows
 * included, one per line. */
static int fleetdashd_routes(const group_t *groups)
{
    char roles[128];

    for (const group_t *g = groups; g->name != NULL; g++) {
        for (const route_t *const *t = g->routes; t != NULL && *t != NULL; t++)
            for (const route_t *r = *t; r->method != NULL; r++)
                printf("%s %s %s %s\n", g->name, r->method, r->pattern,
                       auth_roles_text(fleetdashd_roles(g, r), roles, sizeof(roles)));
        if (g->routes != NULL)
            for (const route_t *r = health_routes; r->method != NULL; r++)
                printf("%s %s %s %s\n", g->name, r->method, r->pattern,
                       auth_roles_text(fleetdashd_roles(g, r), roles, sizeof(roles)));
        for (const job_t *const *j = g->jobs; j != NULL && *j != NULL; j++)
            printf("%s job %s\n", g->name, (*j)->name);
    }
    return fflush(stdout) == 0 ? 0 : 1;
}

/* Parses a whole number in [min, max] into *out. Returns 0, or -1 (said). */
static int fleetdashd_count(const char *name, const char *text, long min, long max, long *out)
{
    char *end;
    long v = strtol(text, &end, 10);

    if (*text == '\0' || *end != '\0' || v < min || v > max) {
        fprintf(stderr, "fleetdashd: %s must be a whole number from %ld to %ld, not \"%s\"\n", name,
                min, max, text);
        return -1;
    }
    *out = v;
    return 0;
}

static const char *fleetdashd_env(const char *name, const char *fallback)
{
    const char *v = getenv(name);
    return (v != NULL && *v != '\0') ? v : fallback;
}

/* The group the command line or the environment names, before the options
 * are parsed (the group decides which options there are); NULL if none. */
static const group_t *fleetdashd_find_group(int argc, char **argv, const group_t *groups,
                                            const char **name)
{
    *name = fleetdashd_env("FLEETDASH_GROUP", NULL);
    for (int i = 1; i < argc; i++) {
        if (strcmp(argv[i], "--group") == 0 && i + 1 < argc)
            *name = argv[++i];
        else if (strncmp(argv[i], "--group=", 8) == 0)
            *name = argv[i] + 8;
        else if (strcmp(argv[i], "--") == 0)
            break;
    }
    for (const group_t *g = groups; *name != NULL && g->name != NULL; g++)
        if (strcmp(g->name, *name) == 0)
            return g;
    return NULL;
}

/* A group's own options from the environment, then from the flags in
 * texts (NULL = not given). Returns 0, or -1 (said). */
static int fleetdashd_group_options(const group_t *g, const char **texts)
{
    const group_option_t *o;

    for (size_t i = 0; (o = fleetdashd_option(g, i)) != NULL; i++) {
        const char *text = texts[i] != NULL ? texts[i] : fleetdashd_env(o->env, NULL);
        char flag[64];
        snprintf(flag, sizeof(flag), "--%s", o->name);
        if (text != NULL && fleetdashd_count(flag, text, o->min, o->max, o->value) != 0)
            return -1;
    }
    return 0;
}

/* The runtime's options: the flags' texts given (NULL = not given), else
 * the environment, else the defaults. Returns 0, or -1 (said). */
static int fleetdashd_runtime_options(options_t *o, const char *workers, const char *max_requests,
                                      const char *timeout)
{
    workers = workers != NULL ? workers : fleetdashd_env("FLEETDASH_WORKERS", NULL);
    max_requests =
        max_requests != NULL ? max_requests : fleetdashd_env("FLEETDASH_MAX_REQUESTS", "0");
    timeout = timeout != NULL ? timeout : fleetdashd_env("FLEETDASH_SHUTDOWN_TIMEOUT", "30");
    if (workers != NULL && fleetdashd_count("--workers", workers, 1, 256, &o->workers) != 0)
        return -1;
    if (fleetdashd_count("--max-requests", max_requests, 0, LONG_MAX, &o->max_requests) != 0 ||
        fleetdashd_count("--shutdown-timeout", timeout, 0, 3600, &o->shutdown_timeout) != 0)
        return -1;
    return 0;
}

/* Fills o (and the group's options) from the environment, then the flags.
 * Returns -1 to go on, or the exit code: 0 after --help or --routes, 64. */
static int fleetdashd_parse(int argc, char **argv, const group_t *groups, const group_t **group,
                            options_t *o)
{
    static const struct option runtime[] = {
        {"group", required_argument, NULL, 'g'},
        {"listen", required_argument, NULL, 'l'},
        {"workers", required_argument, NULL, 'w'},
        {"max-requests", required_argument, NULL, 'm'},
        {"database-url", required_argument, NULL, 'd'},
        {"shutdown-timeout", required_argument, NULL, 't'},
        {"log-format", required_argument, NULL, 'f'},
        {"routes", no_argument, NULL, 'r'},
        {"new-key", required_argument, NULL, 'k'},
        {"role", required_argument, NULL, 'R'},
        {"expires-in-days", required_argument, NULL, 'e'},
        {"help", no_argument, NULL, 'h'},
    };
    struct option longopts[FLEETDASHD_OPTIONS_MAX + 1] = {{0}};
    const char *texts[FLEETDASHD_OPTIONS_MAX] = {0};
    const char *workers = NULL, *max_requests = NULL, *timeout = NULL;
    const char *new_key = NULL, *role = "admin", *days = "0";
    const size_t nruntime = sizeof(runtime) / sizeof(runtime[0]);
    size_t n = nruntime;
    int c;

    *group = fleetdashd_find_group(argc, argv, groups, &o->group);
    memcpy(longopts, runtime, sizeof(runtime));
    for (const group_option_t *g; *group != NULL && n < FLEETDASHD_OPTIONS_MAX &&
                                  (g = fleetdashd_option(*group, n - nruntime)) != NULL;
         n++)
        longopts[n] = (struct option){g->name, required_argument, NULL,
                                      FLEETDASHD_OPTION_BASE + (int)(n - nruntime)};
    o->listen = fleetdashd_env("FLEETDASH_LISTEN", NULL);
    o->database_url = fleetdashd_env("FLEETDASH_DATABASE_URL", NULL);
    o->log_format = fleetdashd_env("FLEETDASH_LOG_FORMAT", "json");
    while ((c = getopt_long(argc, argv, "h", longopts, NULL)) != -1) {
        switch (c) {
        case 'g': break; /* found first */
        case 'l': o->listen = optarg; break;
        case 'w': workers = optarg; break;
        case 'm': max_requests = optarg; break;
        case 'd': o->database_url = optarg; break;
        case 't': timeout = optarg; break;
        case 'f': o->log_format = optarg; break;
        case 'r': return fleetdashd_routes(groups);
        case 'k': new_key = optarg; break;
        case 'R': role = optarg; break;
        case 'e': days = optarg; break;
        case 'h': fleetdashd_usage(stdout, groups); return 0;
        default:
            if (c < FLEETDASHD_OPTION_BASE) {
                fleetdashd_usage(stderr, groups);
                return 64;
            }
            texts[c - FLEETDASHD_OPTION_BASE] = optarg;
        }
    }
    if (new_key != NULL && optind == argc) {
        long d;
        if (fleetdashd_count("--expires-in-days", days, 0, 36500, &d) != 0)
            return 64;
        return auth_new_key_command(o->database_url, new_key, role, d);
    }
    if (optind < argc || o->group == NULL) {
        fleetdashd_usage(stderr, groups);
        return 64;
    }
    if (*group == NULL) {
        fprintf(stderr, "fleetdashd: unknown group \"%s\" (known: %s)\n", o->group,
                fleetdashd_group_names(groups));
        return 64;
    }
    if (log_set_format(o->log_format) != 0) {
        fprintf(stderr, "fleetdashd: --log-format must be json or logfmt, not \"%s\"\n",
                o->log_format);
        return 64;
    }
    const char *auth = fleetdashd_env("FLEETDASH_AUTH", "on");
    if (strcmp(auth, "on") != 0 && strcmp(auth, "off") != 0) {
        fprintf(stderr, "fleetdashd: FLEETDASH_AUTH must be on or off, not \"%s\"\n", auth);
        return 64;
    }
    auth_configure(strcmp(auth, "on") == 0);
    if (fleetdashd_runtime_options(o, workers, max_requests, timeout) != 0 ||
        fleetdashd_group_options(*group, texts) != 0)
        return 64;
    return -1;
}

/* The one table a group's workers route with: its tables in order, then
 * health_routes (which ends it). Allocated once, for the life of the
 * process; NULL when out of memory. */
static route_t *fleetdashd_join_routes(const group_t *g)
{
    size_t n = 0, at = 0;

    for (const route_t *const *t = g->routes; *t != NULL; t++)
        for (const route_t *r = *t; r->method != NULL; r++)
            n++;
    for (const route_t *r = health_routes; r->method != NULL; r++)
        n++;
    route_t *joined = calloc(n + 1, sizeof(*joined));
    if (joined == NULL)
        return NULL;
    for (const route_t *const *t = g->routes; *t != NULL; t++)
        for (const route_t *r = *t; r->method != NULL; r++)
            joined[at++] = *r;
    for (const route_t *r = health_routes; r->method != NULL; r++)
        joined[at++] = *r;
    for (size_t i = 0; i < at; i++)
        joined[i].roles = fleetdashd_roles(g, &joined[i]);
    return joined;
}

int fleetdashd_main(int argc, char **argv, const group_t *groups)
{
    static route_t *routes; /* static: reachable until exit (the leak checker) */
    const group_t *group;
    options_t o = {0};
    int rc = fleetdashd_parse(argc, argv, groups, &group, &o);

    if (rc >= 0)
        return rc;
    if (group->routes != NULL && o.listen == NULL) {
        fleetdashd_usage(stderr, groups);
        return 64;
    }
    log_set_identity(group->name, "master");
    if (!auth_enabled() && group->routes != NULL)
        log_warn("FLEETDASH_AUTH=off: API keys are not checked; anyone who reaches the socket "
                 "may read and write everything");
    char application_name[64];
    snprintf(application_name, sizeof(application_name), "fleetdash-%s", group->name);
    db_configure(o.database_url, application_name);
    health_configure(groups);
    cors_configure(groups);
    if (group->start != NULL)
        group->start();
    /* A group without routes has no socket. --listen is accepted (one unit
     * template and stack.sh start every group alike, and find its
     * processes by it) but not used. */
    int fd = -1, workers = o.workers > 0 ? (int)o.workers : group->workers;
    if (group->routes == NULL && o.listen != NULL)
        log_info("--listen %s ignored: group %s runs a job and serves no requests", o.listen,
                 group->name);
    if (group->routes != NULL && (routes = fleetdashd_join_routes(group)) == NULL)
        return 2;
    if (group->routes != NULL && (fd = listen_open(o.listen)) < 0)
        return 69;
    master_config_t cfg = {
        .group = group,
        .routes = routes,
        .listen_address = group->routes != NULL ? o.listen : NULL,
        .listen_fd = fd,
        .workers = group->routes != NULL ? workers : 0,
        .max_requests = o.max_requests,
        .shutdown_timeout = (int)o.shutdown_timeout,
    };
    /* Each job runs its own number of workers; --workers says how many
     * when it is the group's only kind of worker. */
    for (const job_t *const *j = group->jobs; j != NULL && *j != NULL; j++) {
        if (cfg.njobs == GROUP_MAX_JOBS) {
            log_error("group %s has more than %d jobs", group->name, GROUP_MAX_JOBS);
            return 64;
        }
        bool alone = group->routes == NULL && j == group->jobs && j[1] == NULL;
        cfg.job_workers[cfg.njobs++] = alone ? workers : (*j)->workers > 0 ? (*j)->workers : 1;
    }
    notify_init();
    return master_run(&cfg);
}
