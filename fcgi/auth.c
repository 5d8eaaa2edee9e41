/* auth.c - API keys: their format, the check of every request, roles, the first key */
#include "auth.h"

#include <errno.h>
#include <openssl/evp.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/random.h>
#include <time.h>

#include "db.h"
#include "log.h"

#define AUTH_CACHE_SLOTS 64
#define AUTH_STALE_MS    300000 /* while the database is away, what was read is kept this long */
#define AUTH_NAME_MAX    1024   /* 255 characters of UTF-8, and the NUL */

static const char auth_base62[] = "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz";

/* One role per row, in the order of the bits. */
static const struct {
    unsigned bit;
    const char *name;
} auth_roles[] = {
    {ROLE_VIEWER, "viewer"}, {ROLE_EDITOR, "editor"},   {ROLE_INGEST, "ingest"},
    {ROLE_ADMIN, "admin"},   {ROLE_METRICS, "metrics"}, {0, NULL},
};

/* What a worker read of one key: found or not, and when. */
typedef struct auth_entry {
    unsigned char hash[32];
    bool used;
    bool found;
    char id[37];
    char name[AUTH_NAME_MAX];
    unsigned role;
    int64_t expires_us; /* wall clock; 0 = never */
    int64_t read_ms;    /* monotonic */
} auth_entry_t;

static auth_entry_t auth_cache[AUTH_CACHE_SLOTS];
static bool auth_off;

/* The key's row: id, name, role, the expiry in microseconds since the
 * epoch (NULL: never); no row for an unknown key. */
static const db_statement_t stmt_auth_check = {
    "auth_check",
    "SELECT id, name, role, (extract(epoch FROM expires_at) * 1000000)::bigint AS expires_us"
    "  FROM api_key_check($1::bytea)",
    1, true};

static const db_statement_t stmt_auth_create = {
    "auth_create",
    "SELECT id, body FROM api_key_create($1, $2, CASE WHEN $3::integer > 0"
    " THEN now() + make_interval(days => $3::integer) END, $4::bytea, $5, NULL)",
    5, false};

/* ---------------------------------------------------------------- roles */

unsigned auth_role_bit(const char *name)
{
    for (size_t i = 0; name != NULL && auth_roles[i].name != NULL; i++)
        if (strcmp(auth_roles[i].name, name) == 0)
            return auth_roles[i].bit;
    return 0;
}

const char *auth_role_name(unsigned bit)
{
    for (size_t i = 0; auth_roles[i].name != NULL; i++)
        if (auth_roles[i].bit == bit)
            return auth_roles[i].name;
    return NULL;
}

const char *auth_roles_text(unsigned roles, char *buf, size_t size)
{
    size_t at = 0;

    buf[0] = '\0';
    if (roles & ROLES_PUBLIC)
        return snprintf(buf, size, "public") > 0 ? buf : buf;
    for (size_t i = 0; auth_roles[i].name != NULL; i++)
        if (roles & auth_roles[i].bit)
            at += (size_t)snprintf(buf + at, at < size ? size - at : 0, "%s%s", at ? "," : "",
                                   auth_roles[i].name);
    if (roles & ROLES_TRUSTED)
        snprintf(buf + at, at < size ? size - at : 0, "%s", at ? ",trusted" : "trusted");
    return buf;
}

/* ---------------------------------------------------------------- the key */

/* CRC-32 (IEEE, reflected, as zlib's) of len bytes. */
static uint32_t auth_crc32(const char *data, size_t len)
{
    uint32_t crc = 0xffffffffu;

    for (size_t i = 0; i < len; i++) {
        crc ^= (unsigned char)data[i];
        for (int k = 0; k < 8; k++)
            crc = (crc >> 1) ^ (0xedb88320u & (0u - (crc & 1u)));
    }
    return ~crc;
}

/* The checksum of a key's first part as AUTH_KEY_CHECK base62 digits, most
 * significant first (62^6 > 2^32). */
static void auth_checksum(const char *key, char *out)
{
    uint32_t crc = auth_crc32(key, AUTH_KEY_LEN - AUTH_KEY_CHECK);

    for (int i = AUTH_KEY_CHECK - 1; i >= 0; i--) {
        out[i] = auth_base62[crc % 62];
        crc /= 62;
    }
}

int auth_key_make(char *out)
{
    size_t at = sizeof(AUTH_KEY_PREFIX) - 1;
    unsigned char random[64];

    memcpy(out, AUTH_KEY_PREFIX, at);
    while (at < sizeof(AUTH_KEY_PREFIX) - 1 + AUTH_KEY_RANDOM) {
        if (getrandom(random, sizeof(random), 0) != (ssize_t)sizeof(random))
            return -1;
        /* 248 = 4 * 62: the bytes above it would favour the first digits */
        for (size_t i = 0; i < sizeof(random) && at < AUTH_KEY_LEN - AUTH_KEY_CHECK; i++)
            if (random[i] < 248)
                out[at++] = auth_base62[random[i] % 62];
    }
    auth_checksum(out, out + at);
    out[AUTH_KEY_LEN] = '\0';
    return 0;
}

bool auth_key_well_formed(const char *key, size_t len)
{
    char check[AUTH_KEY_CHECK];

    if (len != AUTH_KEY_LEN || strncmp(key, AUTH_KEY_PREFIX, sizeof(AUTH_KEY_PREFIX) - 1) != 0)
        return false;
    for (size_t i = sizeof(AUTH_KEY_PREFIX) - 1; i < len; i++)
        if (strchr(auth_base62, key[i]) == NULL || key[i] == '\0')
            return false;
    auth_checksum(key, check);
    return memcmp(check, key + len - AUTH_KEY_CHECK, AUTH_KEY_CHECK) == 0;
}

static void auth_sha256(const char *key, size_t len, unsigned char *hash)
{
    unsigned int n = 32;

    if (EVP_Digest(key, len, hash, &n, EVP_sha256(), NULL) != 1)
        memset(hash, 0, 32); /* cannot happen with the default provider; matches nothing */
}

static void auth_hex(const unsigned char *hash, char *out)
{
    static const char digits[] = "0123456789abcdef";

    out[0] = '\\';
    out[1] = 'x';
    for (int i = 0; i < 32; i++) {
        out[2 + 2 * i] = digits[hash[i] >> 4];
        out[3 + 2 * i] = digits[hash[i] & 15];
    }
    out[66] = '\0';
}

void auth_key_hash_text(const char *key, size_t len, char *out)
{
    unsigned char hash[32];

    auth_sha256(key, len, hash);
    auth_hex(hash, out);
}

/* ---------------------------------------------------------------- the check */

void auth_configure(bool enabled)
{
    auth_off = !enabled;
}

bool auth_enabled(void)
{
    return !auth_off;
}

void auth_cache_clear(void)
{
    memset(auth_cache, 0, sizeof(auth_cache));
}

static int64_t auth_clock_ms(clockid_t clock)
{
    struct timespec t;

    clock_gettime(clock, &t);
    return (int64_t)t.tv_sec * 1000 + t.tv_nsec / 1000000;
}

/* The 401 of a request without a usable key. error is RFC 6750's code
 * (NULL when no key was sent at all). */
static int auth_refuse(problem_t *p, const char *error, const char *detail)
{
    problem_fail(p, PROBLEM_UNAUTHORIZED, "%s", detail);
    p->authenticate =
        error == NULL ? "Bearer realm=\"fleetdash\""
                      : arena_printf(p->arena, "Bearer realm=\"fleetdash\", error=\"%s\"", error);
    return -1;
}

/* The cache's entry for hash, read from the database when it has none or
 * one older than AUTH_CACHE_MS. While the database cannot be asked, an
 * entry up to AUTH_STALE_MS old stands (a key cannot be deleted meanwhile,
 * and the answers that need no database still come); without one, NULL
 * with p filled (503). */
static const auth_entry_t *auth_lookup(const unsigned char *hash, problem_t *p)
{
    int64_t now = auth_clock_ms(CLOCK_MONOTONIC);
    auth_entry_t *slot = &auth_cache[0];

    for (size_t i = 0; i < AUTH_CACHE_SLOTS; i++) {
        auth_entry_t *e = &auth_cache[i];
        if (e->used && memcmp(e->hash, hash, 32) == 0) {
            if (now - e->read_ms < AUTH_CACHE_MS)
                return e;
            slot = e;
            break;
        }
        if (!e->used || (slot->used && e->read_ms < slot->read_ms))
            slot = e; /* a free slot, else the oldest */
    }
    char text[67];
    auth_hex(hash, text);
    const char *params[] = {text};
    const problem_t before = *p;
    PGresult *res = db_exec(&stmt_auth_check, params, p);
    if (res == NULL) {
        if (p->status == 503 && slot->used && memcmp(slot->hash, hash, 32) == 0 &&
            now - slot->read_ms < AUTH_STALE_MS) {
            *p = before;
            return slot;
        }
        return NULL;
    }
    memset(slot, 0, sizeof(*slot));
    memcpy(slot->hash, hash, 32);
    slot->used = true;
    slot->read_ms = now;
    if (PQntuples(res) == 1) {
        const char *expires = db_get(res, 0, "expires_us");
        slot->found = true;
        snprintf(slot->id, sizeof(slot->id), "%s", db_get(res, 0, "id"));
        snprintf(slot->name, sizeof(slot->name), "%s", db_get(res, 0, "name"));
        slot->role = auth_role_bit(db_get(res, 0, "role"));
        slot->expires_us = expires != NULL ? strtoll(expires, NULL, 10) : 0;
    }
    PQclear(res);
    return slot;
}

/* "viewer or admin", the roles a 403 names. */
static const char *auth_roles_words(arena_t *arena, unsigned roles)
{
    const char *words = "";
    size_t n = 0, total = 0;

    for (size_t i = 0; auth_roles[i].name != NULL; i++)
        total += (roles & auth_roles[i].bit) != 0;
    for (size_t i = 0; auth_roles[i].name != NULL; i++)
        if (roles & auth_roles[i].bit)
            words = arena_printf(arena, "%s%s%s", words,
                                 n++ == 0     ? ""
                                 : n == total ? " or "
                                              : ", ",
                                 auth_roles[i].name);
    return words;
}

int auth_check(const route_t *route, request_t *req, problem_t *p)
{
    if (auth_off || (route != NULL && (route->roles & ROLES_PUBLIC)))
        return 0;
    if (route != NULL && (route->roles & ROLES_TRUSTED)) {
        const char *trusted = request_param(req, "FLEETDASH_TRUSTED");
        if (trusted != NULL && strcmp(trusted, "1") == 0)
            return 0;
    }
    const char *header = request_param(req, "HTTP_AUTHORIZATION");
    if (header == NULL || *header == '\0')
        return auth_refuse(p, NULL,
                           "This needs an API key: send it as Authorization: Bearer <key>.");
    if (strncasecmp(header, "Bearer ", 7) != 0)
        return auth_refuse(
            p, "invalid_request",
            "The Authorization header must be Bearer <key>, an API key of fleetdash.");
    const char *key = header + 7;
    while (*key == ' ')
        key++;
    size_t len = strcspn(key, " \t");
    if (key[len + strspn(key + len, " \t")] != '\0')
        return auth_refuse(p, "invalid_request",
                           "The Authorization header must be Bearer <key>, and nothing after it.");
    if (!auth_key_well_formed(key, len))
        return auth_refuse(p, "invalid_token",
                           "The API key is not one of fleetdash's: a key is fdk_ and 38 letters "
                           "and digits, and this one's checksum does not match (mistyped?).");
    unsigned char hash[32];
    auth_sha256(key, len, hash);
    const auth_entry_t *e = auth_lookup(hash, p);
    if (e == NULL)
        return -1;
    if (!e->found)
        return auth_refuse(p, "invalid_token", "The API key is unknown or was deleted.");
    if (e->expires_us != 0 && auth_clock_ms(CLOCK_REALTIME) * 1000 >= e->expires_us)
        return auth_refuse(p, "invalid_token", "The API key has expired.");
    req->key_id = arena_strdup(req->arena, e->id);
    req->key_name = arena_strdup(req->arena, e->name);
    req->key_role = auth_role_name(e->role);
    if (route == NULL || (route->roles & e->role))
        return 0;
    return problem_fail(p, PROBLEM_FORBIDDEN,
                        "A key of role %s may not %s %s; it takes a key of role %s.",
                        req->key_role != NULL ? req->key_role : "unknown", req->method,
                        route->pattern, auth_roles_words(p->arena, route->roles));
}

/* ---------------------------------------------------------------- the first key */

int auth_new_key_command(const char *conninfo, const char *name, const char *role, long days)
{
    char key[AUTH_KEY_LEN + 1], hash[67], prefix[AUTH_KEY_SHOWN + 1], days_text[24];
    arena_t arena = {0};
    problem_t p = {.arena = &arena};

    if (*name == '\0' || strlen(name) > 255) {
        fprintf(stderr, "fleetdashd: --new-key needs a name of 1 to 255 characters\n");
        return 64;
    }
    if (auth_role_bit(role) == 0) {
        fprintf(stderr,
                "fleetdashd: --role must be viewer, editor, ingest, admin or metrics, not \"%s\"\n",
                role);
        return 64;
    }
    if (auth_key_make(key) != 0) {
        fprintf(stderr, "fleetdashd: no randomness for a key: %s\n", strerror(errno));
        return 69;
    }
    auth_key_hash_text(key, AUTH_KEY_LEN, hash);
    memcpy(prefix, key, AUTH_KEY_SHOWN);
    prefix[AUTH_KEY_SHOWN] = '\0';
    snprintf(days_text, sizeof(days_text), "%ld", days);
    db_configure(conninfo, "fleetdash-new-key");
    const char *params[] = {name, role, days_text, hash, prefix};
    PGresult *res = db_exec(&stmt_auth_create, params, &p);
    int rc = 0;
    if (res == NULL) {
        fprintf(stderr, "fleetdashd: the key could not be stored: %s\n",
                p.detail != NULL ? p.detail : "database error");
        rc = 69;
    } else {
        printf("%s\n", key);
        fprintf(stderr, "fleetdashd: created API key %s (%s, role %s); it is shown only now\n",
                db_get(res, 0, "id"), name, role);
        PQclear(res);
    }
    db_close();
    arena_destroy(&arena);
    return rc;
}
