/* notify.c - the systemd notify protocol (sd_notify(3)), without libsystemd: one datagram per
 * message to the unix socket NOTIFY_SOCKET names (a path, or an abstract name after '@') */
#include "notify.h"

#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include "log.h"

static int notify_fd = -1;
static struct sockaddr_un notify_address;
static socklen_t notify_address_len;
static long long notify_watchdog;
static bool notify_failed_once;

void notify_init(void)
{
    const char *path = getenv("NOTIFY_SOCKET");
    const char *usec = getenv("WATCHDOG_USEC");
    const char *pid = getenv("WATCHDOG_PID");

    if (usec != NULL && (pid == NULL || atoll(pid) == (long long)getpid())) {
        char *end;
        long long value = strtoll(usec, &end, 10);
        if (*usec != '\0' && *end == '\0' && value > 0)
            notify_watchdog = value;
    }
    if (path != NULL && (path[0] == '/' || path[0] == '@') &&
        strlen(path) < sizeof(notify_address.sun_path)) {
        size_t len = strlen(path);
        notify_address.sun_family = AF_UNIX;
        memcpy(notify_address.sun_path, path, len);
        if (path[0] == '@')
            notify_address.sun_path[0] = '\0'; /* abstract: not NUL-terminated */
        notify_address_len =
            (socklen_t)(offsetof(struct sockaddr_un, sun_path) + len + (path[0] == '/' ? 1 : 0));
        notify_fd = socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0);
        if (notify_fd < 0)
            log_warn("NOTIFY_SOCKET %s: cannot make a socket: %m", path);
    } else if (path != NULL)
        log_warn("NOTIFY_SOCKET %s is not a unix socket address; systemd will not be told", path);
    if (notify_fd < 0)
        notify_watchdog = 0; /* nobody to tell */
    unsetenv("NOTIFY_SOCKET");
    unsetenv("WATCHDOG_USEC");
    unsetenv("WATCHDOG_PID");
}

bool notify_enabled(void)
{
    return notify_fd >= 0;
}

long long notify_watchdog_usec(void)
{
    return notify_watchdog;
}

void notify_send(const char *fmt, ...)
{
    char message[512];
    va_list ap;

    if (notify_fd < 0)
        return;
    va_start(ap, fmt);
    int len = vsnprintf(message, sizeof(message), fmt, ap);
    va_end(ap);
    if (len < 0)
        return;
    if ((size_t)len >= sizeof(message))
        len = (int)sizeof(message) - 1;
    if (sendto(notify_fd, message, (size_t)len, MSG_NOSIGNAL,
               (const struct sockaddr *)&notify_address, notify_address_len) < 0 &&
        !notify_failed_once) {
        notify_failed_once = true;
        log_warn("cannot tell systemd (NOTIFY_SOCKET): %m");
    }
}
