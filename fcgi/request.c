/* request.c - one FastCGI request: method, path, query, headers, body */
#include "request.h"

#include <ctype.h>
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <time.h>

#include "json_in.h"
#include "validate.h"

/* How slow a body may arrive (request_body_pace); 0: no limit. */
static int64_t request_grace_ms;
static int64_t request_min_rate;

static bool utf8_valid(const unsigned char *s, size_t len)
{
    for (size_t i = 0, n; i < len; i += n)
        if ((n = validate_utf8_sequence(s + i, len - i)) == 0)
            return false;
    return true;
}

/* Decodes s[0..len) into a new arena string. Returns
 * NULL if an escape is malformed or the result is not clean UTF-8. */
static char *query_decode(arena_t *arena, const char *s, size_t len)
{
    char *out = arena_alloc(arena, len + 1);
    size_t n = 0;

    for (size_t i = 0; i < len; i++) {
        if (s[i] == '+') {
            out[n++] = ' ';
        } else if (s[i] == '%') {
            if (i + 2 >= len)
                return NULL;
            int hi = validate_hex(s[i + 1]), lo = validate_hex(s[i + 2]);
            if (hi < 0 || lo < 0 || (hi == 0 && lo == 0))
                return NULL;
            out[n++] = (char)(hi * 16 + lo);
            i += 2;
        } else {
            out[n++] = s[i];
        }
    }
    out[n] = '\0';
    return utf8_valid((const unsigned char *)out, n) ? out : NULL;
}

int request_parse_query(arena_t *arena, const char *qs, query_param_t **params, size_t *nparams,
                        problem_t *p)
{
    size_t count = 0, cap = 0;
    query_param_t *list = NULL;

    *params = NULL;
    *nparams = 0;
    if (qs == NULL)
        return 0;
    while (*qs != '\0') {
        size_t seglen = strcspn(qs, "&");
        if (seglen > 0) {
            const char *eq = memchr(qs, '=', seglen);
            size_t namelen = eq ? (size_t)(eq - qs) : seglen;
            const char *name = query_decode(arena, qs, namelen);
            const char *value =
                eq ? query_decode(arena, eq + 1, seglen - namelen - 1) : arena_strdup(arena, "");
            if (name == NULL || value == NULL)
                return problem_fail(p, PROBLEM_MALFORMED,
                                    "The query string is malformed near \"%.*s\".",
                                    (int)(seglen > 64 ? 64 : seglen), qs);
            if (count == cap) {
                cap = cap ? cap * 2 : 8;
                query_param_t *grown = arena_alloc(arena, cap * sizeof(*grown));
                if (count > 0)
                    memcpy(grown, list, count * sizeof(*grown));
                list = grown;
            }
            list[count].name = name;
            list[count].value = value;
            count++;
        }
        qs += seglen;
        if (*qs == '&')
            qs++;
    }
    *params = list;
    *nparams = count;
    return 0;
}

const char *request_param(const request_t *req, const char *name)
{
    if (req->fcgx == NULL)
        return NULL;
    return FCGX_GetParam(name, req->fcgx->envp);
}

static int64_t request_now_ms(void)
{
    struct timespec now;

    clock_gettime(CLOCK_MONOTONIC, &now);
    return (int64_t)now.tv_sec * 1000 + now.tv_nsec / 1000000;
}

void request_body_pace(long grace_seconds, long min_rate)
{
    request_grace_ms = (int64_t)grace_seconds * 1000;
    request_min_rate = min_rate;
}

int request_init(request_t *req, FCGX_Request *fcgx, arena_t *arena, problem_t *p)
{
    memset(req, 0, sizeof(*req));
    req->fcgx = fcgx;
    req->arena = arena;
    req->started_ms = request_now_ms();

    const char *method = request_param(req, "REQUEST_METHOD");
    const char *uri = request_param(req, "REQUEST_URI");
    const char *path = request_param(req, "DOCUMENT_URI");
    const char *id = request_param(req, "REQUEST_ID");

    req->method = method ? method : "GET";
    req->uri = uri ? uri : "/";
    if (path == NULL) {
        size_t len = strcspn(req->uri, "?");
        path = arena_strndup(arena, req->uri, len);
    }
    req->path = path;
    req->request_id = (id && *id) ? id : "-";
    return request_parse_query(arena, request_param(req, "QUERY_STRING"), &req->query, &req->nquery,
                               p);
}

const char *request_query(const request_t *req, const char *name)
{
    for (size_t i = 0; i < req->nquery; i++)
        if (strcmp(req->query[i].name, name) == 0)
            return req->query[i].value;
    return NULL;
}

bool request_is_type(const char *content_type, const char *type)
{
    size_t len = strlen(type);

    if (content_type == NULL)
        return false;
    while (*content_type == ' ' || *content_type == '\t')
        content_type++;
    if (strncasecmp(content_type, type, len) != 0)
        return false;
    char next = content_type[len];
    return next == '\0' || next == ';' || next == ' ' || next == '\t';
}

bool request_is_json_type(const char *content_type)
{
    return request_is_type(content_type, "application/json");
}

/* Before libfcgi refills its buffer from the socket: the socket's receive
 * timeout becomes what is left until the body's deadline, at least 1 ms
 * (bytes that arrived while the worker was busy elsewhere are still
 * taken). One refill is one read(2) of what nginx sent, so the deadline
 * is checked again after every arrival. */
static void request_body_deadline(const request_t *req)
{
    if (request_min_rate <= 0 || req->fcgx->ipcFd < 0)
        return;
    int64_t deadline =
        req->started_ms + request_grace_ms + (int64_t)req->body_read * 1000 / request_min_rate;
    int64_t left = deadline - request_now_ms();
    if (left < 1)
        left = 1;
    struct timeval tv = {.tv_sec = left / 1000, .tv_usec = (left % 1000) * 1000};
    setsockopt(req->fcgx->ipcFd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
}

/* At most cap bytes that libfcgi holds already, or, when it holds none,
 * the bytes of one refill (FCGX_GetStr of one byte refills once, the rest
 * of the refill is then held). Returns what FCGX_GetStr returned. */
static int request_body_take(request_t *req, char *buf, size_t cap)
{
    FCGX_Stream *in = req->fcgx->in;
    size_t held = (size_t)(in->stop - in->rdNext);

    if (held == 0) {
        request_body_deadline(req);
        int got = FCGX_GetStr(buf, 1, in);
        held = (size_t)(in->stop - in->rdNext);
        if (got != 1 || held == 0 || cap == 1)
            return got;
        return 1 + FCGX_GetStr(buf + 1, (int)(held < cap - 1 ? held : cap - 1), in);
    }
    return FCGX_GetStr(buf, (int)(held < cap ? held : cap), in);
}

size_t request_body_read(request_t *req, char *buf, size_t cap)
{
    if (req->fcgx == NULL || req->body_broken || cap == 0)
        return 0;
    int got = request_body_take(req, buf, cap);
    if (got <= 0) {
        int error = FCGX_GetError(req->fcgx->in);
        if (error != 0) {
            req->body_broken = true;
            req->body_too_slow = error == EAGAIN || error == EWOULDBLOCK;
        }
        return 0;
    }
    uint64_t h = req->body_read == 0 ? 14695981039346656037ULL : req->body_hash;
    for (int i = 0; i < got; i++) {
        h ^= (unsigned char)buf[i];
        h *= 1099511628211ULL;
    }
    req->body_hash = h;
    req->body_read += (size_t)got;
    return (size_t)got;
}

bool request_body_complete(const request_t *req)
{
    const char *length = request_param(req, "CONTENT_LENGTH");

    if (req->body_broken)
        return false;
    if (length != NULL && *length != '\0')
        return strtoull(length, NULL, 10) == req->body_read;
    return true;
}

const char *request_body_hash(const request_t *req)
{
    return arena_printf(req->arena, "%016llx",
                        (unsigned long long)(req->body_read ? req->body_hash : 0));
}

void request_body_drain(request_t *req)
{
    char sink[8192];

    while (request_body_read(req, sink, sizeof(sink)) > 0)
        ;
}

int request_body_refuse(const request_t *req, problem_t *p)
{
    if (req->body_too_slow)
        return problem_fail(p, PROBLEM_TOO_SLOW,
                            "The request body arrived slower than %lld KiB/s after a grace of "
                            "%lld s; nothing was stored.",
                            (long long)(request_min_rate / 1024),
                            (long long)(request_grace_ms / 1000));
    return problem_fail(p, PROBLEM_MALFORMED,
                        "The request body ended before its end; nothing was stored.");
}

/* Reads up to limit + 1 bytes of body into the arena; *len tells how many.
 * A declared length (nginx always declares the bodies it buffered) sizes
 * the buffer once: grown buffers would stay in the arena until the end. */
static char *request_read(request_t *req, size_t limit, size_t *len)
{
    const char *length = request_param(req, "CONTENT_LENGTH");
    size_t declared = length != NULL ? strtoull(length, NULL, 10) : 0;
    size_t cap = declared > 0 && declared <= limit ? declared + 1 : 8192, n = 0;
    char *buf = arena_alloc(req->arena, cap + 1);

    while (req->fcgx != NULL && n <= limit) {
        if (n == cap) {
            size_t grown_cap = cap * 2 > limit + 1 ? limit + 1 : cap * 2;
            char *grown = arena_alloc(req->arena, grown_cap + 1);
            memcpy(grown, buf, n);
            buf = grown;
            cap = grown_cap;
        }
        size_t got = request_body_read(req, buf + n, cap - n);
        if (got == 0)
            break;
        n += got;
    }
    buf[n] = '\0';
    *len = n;
    return buf;
}

json_t *request_json_body(request_t *req, size_t limit, problem_t *p)
{
    return request_json_body_bounded(req, limit, REQUEST_JSON_VALUES_MAX, p);
}

json_t *request_json_body_bounded(request_t *req, size_t limit, size_t values_max, problem_t *p)
{
    const char *length = request_param(req, "CONTENT_LENGTH");
    json_error_t jerr;
    size_t len = 0;

    if (length != NULL && *length != '\0' && strtoull(length, NULL, 10) > limit) {
        request_body_drain(req);
        problem_fail(p, PROBLEM_TOO_LARGE,
                     "The request body is larger than the limit of %zu bytes.", limit);
        return NULL;
    }
    if (!request_is_json_type(request_param(req, "CONTENT_TYPE"))) {
        request_body_drain(req);
        problem_fail(p, PROBLEM_MEDIA_TYPE,
                     "The request body must be sent as Content-Type: application/json.");
        return NULL;
    }
    char *body = request_read(req, limit, &len);
    if (len > limit) {
        request_body_drain(req);
        problem_fail(p, PROBLEM_TOO_LARGE,
                     "The request body is larger than the limit of %zu bytes.", limit);
        return NULL;
    }
    if (!request_body_complete(req)) {
        request_body_refuse(req, p);
        return NULL;
    }
    if (len == 0) {
        problem_fail(p, PROBLEM_MALFORMED, "The request needs a JSON body.");
        return NULL;
    }
    if (json_in_separators(body, len) > values_max) {
        problem_fail(p, PROBLEM_INVALID,
                     "The request body holds more JSON values than this server reads.");
        problem_field(p, "body",
                      "holds more than %zu values (commas, colons, '[' and '{' outside strings)",
                      values_max);
        return NULL;
    }
    json_t *root = json_loadb(body, len, JSON_REJECT_DUPLICATES | JSON_DECODE_ANY, &jerr);
    if (root == NULL)
        problem_fail(p, PROBLEM_MALFORMED, "Malformed JSON at line %d, column %d: %s.", jerr.line,
                     jerr.column, jerr.text);
    return root;
}
