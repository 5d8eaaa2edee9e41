/* log.c - one record per line on stderr (journald-friendly): JSON (the default, as nginx's access
 * log) or logfmt, the same fields in both */
#include "log.h"

#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "validate.h"

#define LOG_LINE_MAX 4096

static const char *log_group = "-";
static const char *log_role = "-";
static bool log_logfmt;

void log_set_identity(const char *group, const char *role)
{
    log_group = group;
    log_role = role;
}

int log_set_format(const char *name)
{
    if (strcmp(name, "json") == 0)
        log_logfmt = false;
    else if (strcmp(name, "logfmt") == 0)
        log_logfmt = true;
    else
        return -1;
    return 0;
}

/* A record being written: the line, its length, whether a field was put. */
typedef struct log_record {
    char line[LOG_LINE_MAX];
    size_t len;
    bool fields;
} log_record_t;

static void log_put(log_record_t *r, const char *s, size_t n)
{
    if (r->len + n + 4 > sizeof(r->line)) /* room for the end: "}\n" */
        n = r->len + 4 < sizeof(r->line) ? sizeof(r->line) - r->len - 4 : 0;
    memcpy(r->line + r->len, s, n);
    r->len += n;
}

/* The field's name: ` key=` (logfmt) or `,"key":` (JSON). */
static void log_key(log_record_t *r, const char *key)
{
    if (log_logfmt) {
        if (r->fields)
            log_put(r, " ", 1);
        log_put(r, key, strlen(key));
        log_put(r, "=", 1);
    } else {
        log_put(r, r->fields ? ",\"" : "{\"", r->fields ? 2 : 2);
        log_put(r, key, strlen(key));
        log_put(r, "\":", 2);
    }
    r->fields = true;
}

/* A text value, quoted and escaped: quotes and backslashes escaped, control
 * characters as \u00XX (JSON) or a space (logfmt), so one record stays one
 * line. In logfmt a value that needs no quotes (no space, quote, = or
 * control character, not empty) is written bare. */
static void log_text(log_record_t *r, const char *key, const char *value)
{
    const char *v = value != NULL ? value : "-";
    bool bare = log_logfmt && *v != '\0' && strpbrk(v, " \"=\\") == NULL;

    for (const char *s = v; bare && *s != '\0'; s++)
        bare = (unsigned char)*s > 0x20 && (unsigned char)*s < 0x7f;
    log_key(r, key);
    if (bare) {
        log_put(r, v, strlen(v));
        return;
    }
    log_put(r, "\"", 1);
    size_t left = strlen(v);
    for (const unsigned char *s = (const unsigned char *)v; *s != '\0'; s++, left--) {
        char esc[8];
        size_t n = *s < 0x80 ? 1 : validate_utf8_sequence(s, left);
        if (n == 0) { /* not UTF-8 (a decoded path may hold any byte): %XX, as problem bodies */
            log_put(r, esc, (size_t)snprintf(esc, sizeof(esc), "%%%02X", *s));
        } else if (n > 1) {
            log_put(r, (const char *)s, n);
            s += n - 1;
            left -= n - 1;
        } else if (*s == '"' || *s == '\\') {
            esc[0] = '\\', esc[1] = (char)*s;
            log_put(r, esc, 2);
        } else if (*s < 0x20 || *s == 0x7f) {
            if (log_logfmt)
                log_put(r, " ", 1);
            else
                log_put(r, esc, (size_t)snprintf(esc, sizeof(esc), "\\u%04x", *s));
        } else {
            log_put(r, (const char *)s, 1);
        }
    }
    log_put(r, "\"", 1);
}

/* A value written as it is: a number. */
static void log_number(log_record_t *r, const char *key, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
static void log_number(log_record_t *r, const char *key, const char *fmt, ...)
{
    char value[64];
    va_list ap;

    va_start(ap, fmt);
    int n = vsnprintf(value, sizeof(value), fmt, ap);
    va_end(ap);
    log_key(r, key);
    if (n > 0)
        log_put(r, value, (size_t)n < sizeof(value) ? (size_t)n : sizeof(value) - 1);
}

/* The fields every record starts with: time (RFC 3339 UTC, milliseconds),
 * level, group, role, pid. */
static void log_begin(log_record_t *r, const char *level)
{
    struct timespec now;
    struct tm tm;
    char at[40];

    r->len = 0;
    r->fields = false;
    clock_gettime(CLOCK_REALTIME, &now);
    gmtime_r(&now.tv_sec, &tm);
    size_t n = strftime(at, sizeof(at), "%Y-%m-%dT%H:%M:%S", &tm);
    snprintf(at + n, sizeof(at) - n, ".%03ldZ", now.tv_nsec / 1000000);
    log_text(r, "time", at);
    log_text(r, "level", level);
    log_text(r, "group", log_group);
    log_text(r, "role", log_role);
    log_number(r, "pid", "%d", (int)getpid());
}

/* Ends the record and writes it with a single write(2), so that lines of
 * many processes never interleave. A line that cannot be written is
 * dropped. */
static void log_end(log_record_t *r)
{
    if (!log_logfmt)
        r->line[r->len++] = '}';
    r->line[r->len++] = '\n';
    ssize_t ignored = write(STDERR_FILENO, r->line, r->len);
    (void)ignored;
}

static void log_line(const char *level, const char *fmt, va_list ap)
{
    char msg[LOG_LINE_MAX / 2];
    log_record_t r;

    vsnprintf(msg, sizeof(msg), fmt, ap);
    log_begin(&r, level);
    log_text(&r, "msg", msg);
    log_end(&r);
}

void log_info(const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    log_line("info", fmt, ap);
    va_end(ap);
}

void log_warn(const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    log_line("warn", fmt, ap);
    va_end(ap);
}

void log_error(const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    log_line("error", fmt, ap);
    va_end(ap);
}

void log_request(const log_request_t *q)
{
    log_record_t r;

    log_begin(&r, "info");
    log_text(&r, "request_id", q->request_id);
    log_text(&r, "remote_addr", q->remote_addr);
    log_text(&r, "host", q->host);
    log_text(&r, "user_agent", q->user_agent);
    log_text(&r, "key_id", q->key_id);
    log_text(&r, "method", q->method);
    log_text(&r, "path", q->path);
    log_number(&r, "status", "%d", q->status);
    log_number(&r, "request_time", "%.6f", q->seconds);
    log_end(&r);
}
