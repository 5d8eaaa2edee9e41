/* listen.h - the one listening socket that a master shares with its workers */
#ifndef FLEETDASH_LISTEN_H
#define FLEETDASH_LISTEN_H

/* Opens a listening socket for address "unix:/path", "host:port" or ":port".
 * A unix socket left behind by a dead process is replaced; one that still
 * answers is not (another master owns it). The unix socket gets mode 0666:
 * access is controlled by its directory. Returns the descriptor, or -1 after
 * logging why. */
int listen_open(const char *address);

/* Removes the unix socket file of address if it is still the one we bound
 * (same inode), so a newer master's socket is never removed. */
void listen_close(const char *address, int fd);

#endif
