/* listen.c - the one listening socket that a master shares with its workers */
#include "listen.h"

#include <errno.h>
#include <netdb.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include "log.h"

#define LISTEN_BACKLOG 1024

static ino_t listen_inode; /* of the unix socket file we bound, 0 = none */

static int listen_unix(const char *path)
{
    struct sockaddr_un addr = {.sun_family = AF_UNIX};
    struct stat st;

    if (strlen(path) >= sizeof(addr.sun_path)) {
        log_error("socket path too long: %s", path);
        return -1;
    }
    strcpy(addr.sun_path, path);
    int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (fd < 0) {
        log_error("socket: %s", strerror(errno));
        return -1;
    }
    if (lstat(path, &st) == 0 && S_ISSOCK(st.st_mode)) {
        if (connect(fd, (struct sockaddr *)&addr, sizeof(addr)) == 0) {
            log_error("%s is in use by a running server", path);
            close(fd);
            return -1;
        }
        close(fd);
        unlink(path);
        fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
        if (fd < 0)
            return -1;
    }
    if (bind(fd, (struct sockaddr *)&addr, sizeof(addr)) != 0 || chmod(path, 0666) != 0 ||
        listen(fd, LISTEN_BACKLOG) != 0) {
        log_error("cannot listen on %s: %s", path, strerror(errno));
        close(fd);
        return -1;
    }
    if (stat(path, &st) == 0)
        listen_inode = st.st_ino;
    return fd;
}

static int listen_tcp(const char *address)
{
    char host[256];
    const char *colon = strrchr(address, ':');
    struct addrinfo hints = {
        .ai_family = AF_UNSPEC, .ai_socktype = SOCK_STREAM, .ai_flags = AI_PASSIVE};
    struct addrinfo *list = NULL;

    if (colon == NULL || (size_t)(colon - address) >= sizeof(host)) {
        log_error("listen address must be unix:PATH, HOST:PORT or :PORT, not %s", address);
        return -1;
    }
    snprintf(host, sizeof(host), "%.*s", (int)(colon - address), address);
    int rc = getaddrinfo(host[0] ? host : NULL, colon + 1, &hints, &list);
    if (rc != 0) {
        log_error("cannot resolve %s: %s", address, gai_strerror(rc));
        return -1;
    }
    int fd = socket(list->ai_family, SOCK_STREAM | SOCK_CLOEXEC, 0);
    int one = 1;
    if (fd < 0 || setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one)) != 0 ||
        bind(fd, list->ai_addr, list->ai_addrlen) != 0 || listen(fd, LISTEN_BACKLOG) != 0) {
        log_error("cannot listen on %s: %s", address, strerror(errno));
        if (fd >= 0)
            close(fd);
        fd = -1;
    }
    freeaddrinfo(list);
    return fd;
}

int listen_open(const char *address)
{
    if (strncmp(address, "unix:", 5) == 0)
        return listen_unix(address + 5);
    return listen_tcp(address);
}

void listen_close(const char *address, int fd)
{
    struct stat there;

    if (fd < 0)
        return;
    if (strncmp(address, "unix:", 5) == 0 && listen_inode != 0 && stat(address + 5, &there) == 0 &&
        there.st_ino == listen_inode)
        unlink(address + 5);
    close(fd);
}
