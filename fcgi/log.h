/* log.h - one-line logfmt records on stderr (journald-friendly) */
#ifndef FLEETDASH_LOG_H
#define FLEETDASH_LOG_H

/* Names the process in every line: "group=NAME role=master|worker".
 * The strings must outlive the process (string literals or argv). */
void log_set_identity(const char *group, const char *role);

/* Writes one line "level=LEVEL group=.. role=.. pid=.. msg=\"...\"" with a
 * single write(2), so lines from many processes never interleave. Cannot
 * fail visibly: a line that cannot be written is dropped. */
void log_info(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
void log_warn(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
void log_error(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

/* The per-request access line: request id, method, path, status, duration. */
void log_request(const char *request_id, const char *method, const char *path, int status,
                 double duration_ms);

#endif
