/* nchan.c - the publisher's side of nginx's nchan module: one kept-alive libcurl handle per
 * process on the unix socket of nginx.conf's publisher server */
#include "nchan.h"

#include <curl/curl.h>
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define NCHAN_ANSWER_MAX 4096
#define NCHAN_TIMEOUT_MS 5000L

static CURL *nchan_easy;

typedef struct nchan_body {
    char text[NCHAN_ANSWER_MAX];
    size_t len;
} nchan_body_t;

const char *nchan_socket(void)
{
    const char *path = getenv("FLEETDASH_NCHAN_SOCKET");

    return path != NULL && path[0] != '\0' ? path : "/run/fleetdash/nchan.sock";
}

static size_t nchan_keep(char *data, size_t size, size_t n, void *arg)
{
    nchan_body_t *b = arg;
    size_t len = size * n;
    size_t room = sizeof(b->text) - 1 - b->len;

    memcpy(b->text + b->len, data, len < room ? len : room);
    b->len += len < room ? len : room;
    b->text[b->len] = '\0';
    return len;
}

/* The channel's info from an answer's JSON ({"messages": 5, "requested": 18,
 * "subscribers": 0, "last_message_id": "1450755280:0"}). */
static void nchan_parse(const nchan_body_t *b, nchan_answer_t *a)
{
    json_t *info = json_loadb(b->text, b->len, 0, NULL);
    const char *id = json_string_value(json_object_get(info, "last_message_id"));

    snprintf(a->last_message_id, sizeof(a->last_message_id), "%s", id != NULL ? id : "");
    a->subscribers = (long)json_integer_value(json_object_get(info, "subscribers"));
    a->messages = (long)json_integer_value(json_object_get(info, "messages"));
    json_decref(info);
}

static int nchan_call(const char *method, const char *channel, const char *event, const char *body,
                      size_t len, nchan_answer_t *a, char *error)
{
    char url[512];
    nchan_body_t answer = {.len = 0};
    struct curl_slist *headers = NULL;
    char event_header[160];

    *a = (nchan_answer_t){.status = 0};
    error[0] = '\0';
    if (nchan_easy == NULL && (nchan_easy = curl_easy_init()) == NULL) {
        snprintf(error, 256, "curl_easy_init failed");
        return -1;
    }
    CURL *e = nchan_easy;
    curl_easy_reset(e);
    snprintf(url, sizeof(url), "http://localhost/_nchan/pub/%s", channel);
    curl_easy_setopt(e, CURLOPT_UNIX_SOCKET_PATH, nchan_socket());
    curl_easy_setopt(e, CURLOPT_URL, url);
    curl_easy_setopt(e, CURLOPT_NOSIGNAL, 1L);
    curl_easy_setopt(e, CURLOPT_TIMEOUT_MS, NCHAN_TIMEOUT_MS);
    curl_easy_setopt(e, CURLOPT_PROXY, "");
    curl_easy_setopt(e, CURLOPT_WRITEFUNCTION, nchan_keep);
    curl_easy_setopt(e, CURLOPT_WRITEDATA, &answer);
    curl_easy_setopt(e, CURLOPT_ERRORBUFFER, error);
    headers = curl_slist_append(headers, "Accept: application/json");
    if (body != NULL) {
        headers = curl_slist_append(headers, "Content-Type: application/json");
        snprintf(event_header, sizeof(event_header), "X-EventSource-Event: %s", event);
        headers = curl_slist_append(headers, event_header);
        headers = curl_slist_append(headers, "Expect:");
        curl_easy_setopt(e, CURLOPT_POSTFIELDS, body);
        curl_easy_setopt(e, CURLOPT_POSTFIELDSIZE_LARGE, (curl_off_t)len);
    }
    if (strcmp(method, "DELETE") == 0)
        curl_easy_setopt(e, CURLOPT_CUSTOMREQUEST, "DELETE");
    curl_easy_setopt(e, CURLOPT_HTTPHEADER, headers);
    CURLcode rc = curl_easy_perform(e);
    curl_slist_free_all(headers);
    curl_easy_setopt(e, CURLOPT_ERRORBUFFER, NULL);
    if (rc != CURLE_OK) {
        if (error[0] == '\0')
            snprintf(error, 256, "%s", curl_easy_strerror(rc));
        return -1;
    }
    curl_easy_getinfo(e, CURLINFO_RESPONSE_CODE, &a->status);
    if (a->status < 300)
        nchan_parse(&answer, a);
    return 0;
}

int nchan_publish(const char *channel, const char *event, const char *body, size_t len,
                  nchan_answer_t *a, char *error)
{
    return nchan_call("POST", channel, event, body, len, a, error);
}

int nchan_info(const char *channel, nchan_answer_t *a, char *error)
{
    return nchan_call("GET", channel, NULL, NULL, 0, a, error);
}

int nchan_delete(const char *channel, nchan_answer_t *a, char *error)
{
    return nchan_call("DELETE", channel, NULL, NULL, 0, a, error);
}
