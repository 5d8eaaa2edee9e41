/* auth.h - API keys: their format, the check of every request, roles, the first key */
#ifndef FLEETDASH_AUTH_H
#define FLEETDASH_AUTH_H

#include <stdbool.h>
#include <stddef.h>

#include "problem.h"
#include "request.h"
#include "router.h"

/* A key is AUTH_KEY_PREFIX, AUTH_KEY_RANDOM base62 characters of
 * getrandom(2), and AUTH_KEY_CHECK base62 characters of the CRC32 of what
 * comes before (as GitHub's and Grafana's tokens): a typo is refused
 * without a database read, and a secret scanner can tell a leaked key. */
#define AUTH_KEY_PREFIX     "fdk_"
#define AUTH_KEY_RANDOM     32
#define AUTH_KEY_CHECK      6
#define AUTH_KEY_LEN        (sizeof(AUTH_KEY_PREFIX) - 1 + AUTH_KEY_RANDOM + AUTH_KEY_CHECK)
#define AUTH_KEY_SHOWN      12   /* the prefix kept in the clear: "fdk_" + 8 */
#define AUTH_CACHE_MS       1000 /* how long a worker trusts what it read of a key */
#define AUTH_ROLE_NAMES_MAX 64

/* The role of a name ("viewer", "editor", "ingest", "admin", "metrics"),
 * one ROLE_* bit (router.h); 0 for any other name. */
unsigned auth_role_bit(const char *name);

/* The name of one ROLE_* bit; NULL for anything else. */
const char *auth_role_name(unsigned bit);

/* The roles of a route as words joined by commas ("viewer,editor,admin",
 * "public", "metrics,admin,trusted"), in buf. Returns buf. */
const char *auth_roles_text(unsigned roles, char *buf, size_t size);

/* Makes a new key into out (AUTH_KEY_LEN + 1 bytes). Returns 0, or -1 when
 * the system has no randomness to give. */
int auth_key_make(char *out);

/* Whether key has the shape of one of ours, checksum included. */
bool auth_key_well_formed(const char *key, size_t len);

/* The SHA-256 of key as the bytea literal PostgreSQL reads ("\x" + 64 hex
 * digits), in out (67 bytes). */
void auth_key_hash_text(const char *key, size_t len, char *out);

/* Turns the check off for this process (FLEETDASH_AUTH=off: behind a proxy
 * that checks callers itself, or to measure what the check costs). */
void auth_configure(bool enabled);

/* Whether keys are checked. */
bool auth_enabled(void);

/* Whether req may call route (NULL: no route matched, a 404 or 405 to
 * come, which needs a valid key of any role first). Reads the
 * Authorization header; a key is looked up in the worker's cache, else in
 * the database (api_key_check()). Fills req->key_id, key_name and
 * key_role. Returns 0, or -1 with p set: 401 (no key, a malformed, unknown,
 * deleted or expired one, with p->authenticate for the WWW-Authenticate
 * header), 403 (the key's role may not call the route), 503 (the database
 * is away and the key is not in the cache). */
int auth_check(const route_t *route, request_t *req, problem_t *p);

/* Forgets every key this process read (a test, or a worker's exit). */
void auth_cache_clear(void);

/* fleetdashd --new-key NAME: creates a key of role (admin by default) that
 * expires after days (0 = never) in the database of conninfo and prints
 * it on stdout, alone on its line. Returns the exit code: 0, 64 on bad
 * arguments, 69 when the database refuses. */
int auth_new_key_command(const char *conninfo, const char *name, const char *role, long days);

#endif
