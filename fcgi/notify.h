/* notify.h - the systemd notify protocol (sd_notify(3)) spoken by a master */
#ifndef FLEETDASH_NOTIFY_H
#define FLEETDASH_NOTIFY_H

#include <stdbool.h>

/* Reads NOTIFY_SOCKET, WATCHDOG_USEC and WATCHDOG_PID (the watchdog is ours
 * only when WATCHDOG_PID is unset or our pid) and removes them from the
 * environment, so that the workers forked later neither speak nor think the
 * watchdog theirs. Without NOTIFY_SOCKET every call below does nothing. */
void notify_init(void);

/* Whether NOTIFY_SOCKET named a socket we can send to. */
bool notify_enabled(void);

/* Microseconds systemd's watchdog waits for WATCHDOG=1 (WatchdogSec), 0
 * when there is no watchdog for us. */
long long notify_watchdog_usec(void);

/* Sends one datagram of newline-separated assignments ("READY=1\nSTATUS=
 * ..."), printf-style. Errors are logged once and otherwise ignored: a lost
 * notification must not stop the service. */
void notify_send(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

#endif
