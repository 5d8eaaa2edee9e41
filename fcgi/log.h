/* log.h - one record per line on stderr (journald-friendly): JSON or logfmt, the same fields */
#ifndef FLEETDASH_LOG_H
#define FLEETDASH_LOG_H

#include <stdbool.h>

/* Names the process in every line: "group=NAME role=master|worker".
 * The strings must outlive the process (string literals or argv). */
void log_set_identity(const char *group, const char *role);

/* The format of every record: "json" (the default: one object per line,
 * as nginx's access log) or "logfmt". Returns 0, or -1 for another name. */
int log_set_format(const char *name);

/* Writes one record {time, level, group, role, pid, msg} (in logfmt
 * `time=.. level=.. group=.. role=.. pid=.. msg="..."`) with a single
 * write(2), so lines from many processes never interleave. Cannot fail
 * visibly: a line that cannot be written is dropped. */
void log_info(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
void log_warn(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
void log_error(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

/* One answered request, as its record names it (nginx's access log has the
 * same names). NULL strings are written "-". */
typedef struct log_request {
    const char *request_id, *remote_addr, *host, *user_agent, *method, *path;
    const char *key_id; /* the API key that called (auth.h); NULL = none */
    int status;
    double seconds; /* request_time: from the request's start to its answer */
} log_request_t;

/* The per-request record: time, level, group, role, pid, request_id,
 * remote_addr, host, user_agent, key_id, method, path, status,
 * request_time. */
void log_request(const log_request_t *request);

#endif
