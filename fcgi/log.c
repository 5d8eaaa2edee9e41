/* log.c - one-line logfmt records on stderr (journald-friendly) */
#include "log.h"

#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#define LOG_LINE_MAX 2048

static const char *log_group = "-";
static const char *log_role = "-";

void log_set_identity(const char *group, const char *role)
{
    log_group = group;
    log_role = role;
}

/* Appends s to buf as a logfmt quoted value body: quotes and backslashes
 * escaped, control characters replaced, so one record stays one line. */
static size_t log_escape(char *buf, size_t cap, size_t len, const char *s)
{
    for (; *s != '\0' && len + 2 < cap; s++) {
        unsigned char c = (unsigned char)*s;
        if (c == '"' || c == '\\') {
            buf[len++] = '\\';
            buf[len++] = (char)c;
        } else if (c < 0x20 || c == 0x7f) {
            buf[len++] = ' ';
        } else {
            buf[len++] = (char)c;
        }
    }
    return len;
}

static void log_line(const char *level, const char *fmt, va_list ap)
{
    char msg[LOG_LINE_MAX];
    char line[LOG_LINE_MAX + 128];

    vsnprintf(msg, sizeof(msg), fmt, ap);
    int n = snprintf(line, sizeof(line), "level=%s group=%s role=%s pid=%d msg=\"", level,
                     log_group, log_role, (int)getpid());
    if (n < 0)
        return;
    size_t len = log_escape(line, sizeof(line) - 2, (size_t)n, msg);
    line[len++] = '"';
    line[len++] = '\n';
    ssize_t ignored = write(STDERR_FILENO, line, len);
    (void)ignored;
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

void log_request(const char *request_id, const char *method, const char *path, int status,
                 double duration_ms)
{
    char line[LOG_LINE_MAX];
    int n = snprintf(line, sizeof(line),
                     "level=info group=%s role=%s pid=%d request_id=%s method=%s path=\"",
                     log_group, log_role, (int)getpid(), request_id, method);
    if (n < 0)
        return;
    size_t len = log_escape(line, sizeof(line) - 64, (size_t)n, path);
    int tail = snprintf(line + len, sizeof(line) - len, "\" status=%d duration_ms=%.3f\n", status,
                        duration_ms);
    if (tail < 0)
        return;
    len += (size_t)tail < sizeof(line) - len ? (size_t)tail : sizeof(line) - len - 1;
    ssize_t ignored = write(STDERR_FILENO, line, len);
    (void)ignored;
}
