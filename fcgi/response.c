/* response.c - the answer to one request: status, headers, JSON body */
#include "response.h"

#include "cors.h"
#include "json_out.h"

#include <stdio.h>
#include <string.h>

void response_json(response_t *res, int status, json_t *body)
{
    if (res->body != NULL)
        json_decref(res->body);
    res->status = status;
    res->body = body;
}

void response_text(response_t *res, int status, const char *text, size_t len)
{
    response_json(res, status, NULL);
    res->text = text;
    res->text_len = len;
}

void response_problem(response_t *res, const request_t *req, const problem_t *p)
{
    response_clear(res);
    res->status = p->status ? p->status : 500;
    res->content_type = "application/problem+json";
    res->body = problem_body(p, req->path, req->request_id);
    res->allow = p->allow;
    res->retry_after = p->retry_after;
    res->www_authenticate = p->authenticate;
}

void response_clear(response_t *res)
{
    if (res->body != NULL)
        json_decref(res->body);
    memset(res, 0, sizeof(*res));
}

/* libfcgi's own printf lacks %zu and friends: headers are formatted here. */
static void response_header(const request_t *req, const char *name, const char *value)
{
    if (value != NULL)
        FCGX_PutS(arena_printf(req->arena, "%s: %s\r\n", name, value), req->fcgx->out);
}

int response_send(const request_t *req, const response_t *res)
{
    const char *text = NULL;
    size_t len = 0;
    int status = res->status ? res->status : 500;

    if (req->fcgx == NULL || res->sent)
        return 0;
    bool no_body = status == 204 || status == 304;

    if (res->body != NULL && !no_body) {
        text = json_out(req->arena, res->body, &len);
    } else if (res->text != NULL && !no_body) {
        text = res->text;
        len = res->text_len;
    }
    response_header(req, "Status",
                    arena_printf(req->arena, "%d %s", status, problem_title(status)));
    response_header(req, "Location", res->location);
    response_header(req, "ETag", res->etag);
    response_header(req, "Allow", res->allow);
    response_header(req, "WWW-Authenticate", res->www_authenticate);
    response_header(req, "X-Accel-Redirect", res->accel_redirect);
    response_header(req, "X-Fleetdash-Key-Id", req->key_id); /* nginx logs it, hides it */
    if (res->cors_methods != NULL) {
        response_header(req, "Access-Control-Allow-Methods", res->cors_methods);
        response_header(req, "Access-Control-Allow-Headers", CORS_ALLOW_HEADERS);
        response_header(req, "Access-Control-Max-Age", CORS_MAX_AGE);
    }
    if (res->replayed)
        response_header(req, "Idempotent-Replayed", "true");
    if (res->retry_after > 0)
        response_header(req, "Retry-After", arena_printf(req->arena, "%d", res->retry_after));
    if (text != NULL) {
        response_header(req, "Content-Type",
                        res->content_type ? res->content_type : "application/json");
        response_header(req, "Content-Length", arena_printf(req->arena, "%zu", len));
        response_header(req, "Cache-Control", "no-cache");
        FCGX_PutS("\r\n", req->fcgx->out);
        FCGX_PutStr(text, (int)len, req->fcgx->out);
    } else {
        if (!no_body)
            response_header(req, "Content-Length", "0");
        FCGX_PutS("\r\n", req->fcgx->out);
    }
    return 0;
}
