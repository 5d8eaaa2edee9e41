/* nchan.h - the publisher's side of nginx's nchan module (nginx.conf), over its unix socket */
#ifndef FLEETDASH_NCHAN_H
#define FLEETDASH_NCHAN_H

#include <stddef.h>

/* What nchan answered about a channel: the HTTP status (201/202 for a
 * message taken, 200 for a channel that exists, 404 for one that does not,
 * 507 when its memory is full), and from the channel's info the id of its
 * newest message and how many subscribers it has. */
typedef struct nchan_answer {
    long status;
    char last_message_id[64];
    long subscribers;
    long messages;
} nchan_answer_t;

/* FLEETDASH_NCHAN_SOCKET, else /run/fleetdash/nchan.sock. */
const char *nchan_socket(void);

/* POSTs body as the next message of channel, with event as its SSE
 * `event:`. Returns 0 when nchan answered (see a->status), -1 when it could
 * not be reached (why in error, 256 bytes). */
int nchan_publish(const char *channel, const char *event, const char *body, size_t len,
                  nchan_answer_t *a, char *error);

/* GETs the channel's info. Returns as nchan_publish. */
int nchan_info(const char *channel, nchan_answer_t *a, char *error);

/* DELETEs the channel: its messages go, its subscribers are closed (200, or
 * 404 when there was none). Returns as nchan_publish. */
int nchan_delete(const char *channel, nchan_answer_t *a, char *error);

#endif
