/* sender.c - the alerts group's `sender` job: drains the notification outbox to the receivers'
 * webhooks (SQL in sql/functions/23_notifications.sql) */
#include <arpa/inet.h>
#include <curl/curl.h>
#include <jansson.h>
#include <netinet/in.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>

#include "../fcgi/db.h"
#include "../fcgi/log.h"
#include "groups.h"

#define SENDER_BATCH        32    /* notifications claimed and sent at once, in parallel */
#define SENDER_LEASE_EXTRA  30000 /* ms a claim outlives the timeout */
#define SENDER_ERROR_MAX    300   /* bytes of an answer or error kept in last_error */
#define SENDER_OUTAGE_PAUSE 5000  /* ms between rounds while the database is away */
#define SENDER_SIGNATURE    "X-Fleetdash-Signature"

/* One notification in flight: what was claimed, and what came back. */
typedef struct sender_delivery {
    const char *id;
    const char *attempt;
    CURL *easy;
    struct curl_slist *headers;
    char error[CURL_ERROR_SIZE];
    char answer[SENDER_ERROR_MAX + 1]; /* the start of the answer's body */
    size_t answer_len;
    const char *refused; /* the address refused by --webhook-deny-private, or NULL */
    char refused_text[INET6_ADDRSTRLEN];
    double started;
    CURLcode result;
    bool done;
} sender_delivery_t;

/* ---------------------------------------------------------------- options */

static long sender_timeout_ms = 10000;
static long sender_backoff_ms = 1000;
static long sender_max_attempts = 10;
static long sender_max_age_s = 86400;
static long sender_deny_private = 0;
static long sender_interval_ms = 500;

/* The sender's options, for the alerts group's row in main.c. */
const group_option_t sender_options[] = {
    {.name = "webhook-timeout",
     .env = "FLEETDASH_WEBHOOK_TIMEOUT",
     .help = "ms a receiver may take to answer a notification (default 10000)",
     .min = 100,
     .max = 300000,
     .value = &sender_timeout_ms},
    {.name = "webhook-backoff",
     .env = "FLEETDASH_WEBHOOK_BACKOFF",
     .help = "ms before the first retry of a notification, doubling per attempt (default 1000)",
     .min = 10,
     .max = 3600000,
     .value = &sender_backoff_ms},
    {.name = "webhook-max-attempts",
     .env = "FLEETDASH_WEBHOOK_MAX_ATTEMPTS",
     .help = "attempts of a notification before it fails (default 10)",
     .min = 1,
     .max = 100,
     .value = &sender_max_attempts},
    {.name = "webhook-max-age",
     .env = "FLEETDASH_WEBHOOK_MAX_AGE",
     .help = "seconds a notification is retried before it fails (default 86400)",
     .min = 1,
     .max = 604800,
     .value = &sender_max_age_s},
    {.name = "webhook-deny-private",
     .env = "FLEETDASH_WEBHOOK_DENY_PRIVATE",
     .help = "1: refuse webhooks to loopback, private, link-local addresses (default 0)",
     .min = 0,
     .max = 1,
     .value = &sender_deny_private},
    {.name = "sender-interval",
     .env = "FLEETDASH_SENDER_INTERVAL",
     .help = "ms between two looks at the notification outbox (default 500)",
     .min = 10,
     .max = 60000,
     .value = &sender_interval_ms},
    {.name = NULL},
};

/* ---------------------------------------------------------------- statements */

static const db_statement_t stmt_enqueue = {
    "sender_enqueue", "SELECT notifications_enqueue(now(), $1) AS value", 1, false};
static const db_statement_t stmt_claim = {
    "sender_claim",
    "SELECT id, attempt, idempotency_key, url, secret, headers, payload"
    "  FROM notifications_claim(now(), $1, $2)",
    2, false};
/* $1 id, $2 attempt, $3 duration ms, $4 code, $5 error, $6 Retry-After s,
 * $7 final, $8 backoff ms, $9 max attempts, $10 max age s */
static const db_statement_t stmt_record = {
    "sender_record",
    "SELECT notification_record($1, $2, now(), $3, $4, $5, $6, $7, $8, $9, $10) AS status", 10,
    true};

static bool sender_started;
static const char *sender_external_url = "";

/* ---------------------------------------------------------------- helpers */

static double sender_now(void)
{
    struct timespec t;

    clock_gettime(CLOCK_MONOTONIC, &t);
    return (double)t.tv_sec + (double)t.tv_nsec / 1e9;
}

/* True for loopback, private, link-local, unspecified, shared (CGNAT),
 * multicast and broadcast addresses, IPv4-mapped ones by their IPv4. */
static bool sender_address_private(const struct sockaddr *sa)
{
    if (sa->sa_family == AF_INET6) {
        const unsigned char *b = ((const struct sockaddr_in6 *)sa)->sin6_addr.s6_addr;
        static const unsigned char mapped[12] = {0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff};
        static const unsigned char zero[15] = {0};
        if (memcmp(b, mapped, 12) == 0) {
            struct sockaddr_in v4 = {.sin_family = AF_INET};
            memcpy(&v4.sin_addr, b + 12, 4);
            return sender_address_private((const struct sockaddr *)&v4);
        }
        return (memcmp(b, zero, 15) == 0 && b[15] <= 1)   /* :: and ::1 */
               || (b[0] & 0xfe) == 0xfc                   /* fc00::/7 */
               || (b[0] == 0xfe && (b[1] & 0xc0) == 0x80) /* fe80::/10 */
               || b[0] == 0xff;                           /* multicast */
    }
    if (sa->sa_family != AF_INET)
        return true;
    uint32_t a = ntohl(((const struct sockaddr_in *)sa)->sin_addr.s_addr);
    return (a >> 24) == 0 || (a >> 24) == 10 || (a >> 24) == 127 ||
           (a >> 16) == 0xa9fe                                          /* 169.254 */
           || (a >> 20) == 0xac1 /* 172.16/12 */ || (a >> 16) == 0xc0a8 /* 192.168 */
           || (a >> 22) == 0x191 /* 100.64/10 */ || (a >> 28) >= 0xe;   /* multicast, 240/4 */
}

/* CURLOPT_OPENSOCKETFUNCTION: the address curl is about to connect to,
 * after name resolution; with --webhook-deny-private a private one is
 * refused (the attempt fails for good, saying which address). */
static curl_socket_t sender_open_socket(void *clientp, curlsocktype purpose,
                                        struct curl_sockaddr *address)
{
    sender_delivery_t *d = clientp;

    (void)purpose;
    if (sender_deny_private && sender_address_private(&address->addr)) {
        const void *raw = address->family == AF_INET6
                              ? (const void *)&((struct sockaddr_in6 *)&address->addr)->sin6_addr
                              : (const void *)&((struct sockaddr_in *)&address->addr)->sin_addr;
        if (inet_ntop(address->family, raw, d->refused_text, sizeof d->refused_text) == NULL)
            strcpy(d->refused_text, "?");
        d->refused = d->refused_text;
        return CURL_SOCKET_BAD;
    }
    return socket(address->family, address->socktype, address->protocol);
}

/* CURLOPT_WRITEFUNCTION: keeps the start of the answer, drops the rest. */
static size_t sender_answer(char *data, size_t size, size_t n, void *clientp)
{
    sender_delivery_t *d = clientp;
    size_t len = size * n;
    size_t room = SENDER_ERROR_MAX - d->answer_len;
    size_t take = len < room ? len : room;

    memcpy(d->answer + d->answer_len, data, take);
    d->answer_len += take;
    d->answer[d->answer_len] = '\0';
    return len;
}

/* "sha256=" and the hex HMAC-SHA256 of body under secret, in arena. */
static const char *sender_signature(arena_t *arena, const char *secret, const char *body)
{
    unsigned char mac[EVP_MAX_MD_SIZE];
    unsigned int len = 0;

    if (HMAC(EVP_sha256(), secret, (int)strlen(secret), (const unsigned char *)body, strlen(body),
             mac, &len) == NULL)
        return NULL;
    char *hex = arena_alloc(arena, 7 + 2 * len + 1);
    strcpy(hex, "sha256=");
    for (unsigned int i = 0; i < len; i++)
        sprintf(hex + 7 + 2 * i, "%02x", mac[i]);
    return hex;
}

/* The request headers of a notification: ours, then the receiver's
 * (a flat object of strings; receivers.c refuses ours among them). NULL
 * when out of memory. */
static struct curl_slist *sender_headers(arena_t *arena, const PGresult *rows, int i)
{
    struct curl_slist *list = NULL;
    const char *secret = db_get(rows, i, "secret");
    const char *payload = db_get(rows, i, "payload");
    json_t *extra = json_loads(db_get(rows, i, "headers"), 0, NULL);
    const char *name;
    json_t *value;

    list = curl_slist_append(list, "Content-Type: application/json");
    list = curl_slist_append(list, "Expect:");
    list = curl_slist_append(
        list, arena_printf(arena, "Idempotency-Key: %s", db_get(rows, i, "idempotency_key")));
    if (secret != NULL) {
        const char *signature = sender_signature(arena, secret, payload);
        if (signature != NULL)
            list = curl_slist_append(list, arena_printf(arena, SENDER_SIGNATURE ": %s", signature));
    }
    json_object_foreach (extra, name, value)
        if (json_is_string(value))
            list = curl_slist_append(list,
                                     arena_printf(arena, "%s: %s", name, json_string_value(value)));
    json_decref(extra);
    return list;
}

/* Prepares the POST of row i of the claimed rows into d. Returns 0, or -1
 * when curl could not make a handle. */
static int sender_prepare(arena_t *arena, const PGresult *rows, int i, sender_delivery_t *d)
{
    *d = (sender_delivery_t){.id = db_get_copy(arena, rows, i, "id"),
                             .attempt = db_get_copy(arena, rows, i, "attempt")};
    d->easy = curl_easy_init();
    if (d->easy == NULL)
        return -1;
    d->headers = sender_headers(arena, rows, i);
    CURL *e = d->easy;
    curl_easy_setopt(e, CURLOPT_URL, db_get(rows, i, "url"));
    curl_easy_setopt(e, CURLOPT_COPYPOSTFIELDS, db_get(rows, i, "payload"));
    curl_easy_setopt(e, CURLOPT_HTTPHEADER, d->headers);
    curl_easy_setopt(e, CURLOPT_USERAGENT, "fleetdash");
    curl_easy_setopt(e, CURLOPT_NOSIGNAL, 1L);
    curl_easy_setopt(e, CURLOPT_TIMEOUT_MS, sender_timeout_ms);
    curl_easy_setopt(e, CURLOPT_CONNECTTIMEOUT_MS, sender_timeout_ms);
    curl_easy_setopt(e, CURLOPT_PROTOCOLS_STR, "http,https");
    curl_easy_setopt(e, CURLOPT_FOLLOWLOCATION, 0L);
    curl_easy_setopt(e, CURLOPT_PROXY, ""); /* never a proxy from the environment */
    curl_easy_setopt(e, CURLOPT_ERRORBUFFER, d->error);
    curl_easy_setopt(e, CURLOPT_WRITEFUNCTION, sender_answer);
    curl_easy_setopt(e, CURLOPT_WRITEDATA, d);
    curl_easy_setopt(e, CURLOPT_OPENSOCKETFUNCTION, sender_open_socket);
    curl_easy_setopt(e, CURLOPT_OPENSOCKETDATA, d);
    curl_easy_setopt(e, CURLOPT_PRIVATE, d);
    d->started = sender_now();
    return 0;
}

/* Runs every prepared delivery at once until each has an outcome (each
 * bounded by --webhook-timeout). */
static void sender_perform(sender_delivery_t *deliveries, int n)
{
    CURLM *multi = curl_multi_init();
    int running = 0;

    for (int i = 0; i < n; i++)
        if (deliveries[i].easy != NULL)
            curl_multi_add_handle(multi, deliveries[i].easy);
    do {
        if (curl_multi_perform(multi, &running) != CURLM_OK)
            break;
        CURLMsg *msg;
        int left;
        while ((msg = curl_multi_info_read(multi, &left)) != NULL) {
            sender_delivery_t *d = NULL;
            if (msg->msg != CURLMSG_DONE)
                continue;
            curl_easy_getinfo(msg->easy_handle, CURLINFO_PRIVATE, (char **)&d);
            d->result = msg->data.result;
            d->done = true;
            d->started = sender_now() - d->started; /* now the duration, s */
        }
        if (running > 0)
            curl_multi_poll(multi, NULL, 0, 1000, NULL);
    } while (running > 0);
    for (int i = 0; i < n; i++)
        if (deliveries[i].easy != NULL)
            curl_multi_remove_handle(multi, deliveries[i].easy);
    curl_multi_cleanup(multi);
}

/* Records the outcome of d (notification_record) and frees its handle. */
static void sender_record(arena_t *arena, sender_delivery_t *d)
{
    problem_t p = {.arena = arena};
    long code = 0;
    curl_off_t retry_after = -1;
    const char *error = NULL;
    bool final = false;

    if (d->easy != NULL && d->done && d->result == CURLE_OK) {
        curl_easy_getinfo(d->easy, CURLINFO_RESPONSE_CODE, &code);
        curl_easy_getinfo(d->easy, CURLINFO_RETRY_AFTER, &retry_after);
        if (code < 200 || code > 299)
            error =
                arena_printf(arena, "HTTP %ld%s%s", code, d->answer_len > 0 ? ": " : "", d->answer);
    } else if (d->refused != NULL) {
        final = true;
        error = arena_printf(arena,
                             "refused by configuration: %s is a private address "
                             "(FLEETDASH_WEBHOOK_DENY_PRIVATE)",
                             d->refused);
    } else if (d->easy == NULL || !d->done) {
        error = "not sent: the HTTP client failed";
        d->started = 0;
    } else {
        final = d->result == CURLE_UNSUPPORTED_PROTOCOL || d->result == CURLE_URL_MALFORMAT;
        error = arena_printf(arena, "%s",
                             d->error[0] != '\0' ? d->error : curl_easy_strerror(d->result));
    }
    const char *params[10] = {
        d->id,
        d->attempt,
        arena_printf(arena, "%.3f", d->started * 1e3),
        code > 0 ? arena_printf(arena, "%ld", code) : NULL,
        error,
        code == 429 && retry_after >= 0 ? arena_printf(arena, "%lld", (long long)retry_after)
                                        : NULL,
        final ? "true" : "false",
        arena_printf(arena, "%ld", sender_backoff_ms),
        arena_printf(arena, "%ld", sender_max_attempts),
        arena_printf(arena, "%ld", sender_max_age_s),
    };
    PGresult *rows = db_exec(&stmt_record, params, &p);
    if (rows != NULL) {
        const char *status = db_get(rows, 0, "status");
        if (status == NULL || strcmp(status, "delivered") != 0)
            log_info("notification %s attempt %s: %s, now %s", d->id, d->attempt,
                     error != NULL ? error : "sent", status != NULL ? status : "gone");
        PQclear(rows);
    }
    if (d->easy != NULL)
        curl_easy_cleanup(d->easy);
    curl_slist_free_all(d->headers);
}

/* ---------------------------------------------------------------- the job */

/* One round: the outbox filled (notifications_enqueue), then up to
 * SENDER_BATCH due notifications claimed, POSTed in parallel and their
 * outcomes recorded. A full batch asks for the next round at once. */
static job_wait_t sender_round(arena_t *arena)
{
    problem_t p = {.arena = arena};

    if (!sender_started) {
        sender_started = true;
        const char *external = getenv("FLEETDASH_EXTERNAL_URL");
        sender_external_url = external != NULL ? external : "";
        curl_global_init(CURL_GLOBAL_DEFAULT);
        db_log_outages_once(true);
        log_info("sending notifications: every %ld ms, timeout %ld ms, backoff %ld ms, "
                 "at most %ld attempts in %ld s, private addresses %s",
                 sender_interval_ms, sender_timeout_ms, sender_backoff_ms, sender_max_attempts,
                 sender_max_age_s, sender_deny_private ? "refused" : "allowed");
    }
    const char *enqueue_params[1] = {sender_external_url};
    PGresult *rows = db_exec(&stmt_enqueue, enqueue_params, &p);
    if (rows == NULL)
        goto pause;
    PQclear(rows);
    const char *claim_params[2] = {
        arena_printf(arena, "%d", SENDER_BATCH),
        arena_printf(arena, "%ld", sender_timeout_ms + SENDER_LEASE_EXTRA)};
    rows = db_exec(&stmt_claim, claim_params, &p);
    if (rows == NULL)
        goto pause;
    int n = PQntuples(rows);
    sender_delivery_t *deliveries = arena_alloc(arena, sizeof *deliveries * (size_t)(n + 1));
    for (int i = 0; i < n; i++)
        if (sender_prepare(arena, rows, i, &deliveries[i]) != 0)
            log_error("notification %s: could not make an HTTP request", deliveries[i].id);
    PQclear(rows);
    sender_perform(deliveries, n);
    for (int i = 0; i < n; i++)
        sender_record(arena, &deliveries[i]);
    return (job_wait_t){.ms = n == SENDER_BATCH ? 0 : sender_interval_ms, .fd = -1};
pause:
    return (job_wait_t){.ms = p.status == 503 ? SENDER_OUTAGE_PAUSE : sender_interval_ms * 4,
                        .fd = -1};
}

static void sender_stop(void)
{
    if (sender_started)
        curl_global_cleanup();
}

const job_t sender_job = {.name = "sender", .round = sender_round, .stop = sender_stop};
