/* dispatch.h -- in-process calls of REST routes: run a route's handler as a given caller and
 * capture its answer instead of sending it on a connection.
 *
 * The MCP endpoint (mcp.c) turns each tool call into one such call, so validation, scopes,
 * tenancy, error codes and messages are exactly those of the REST route. The handler runs on
 * the calling thread (a connection thread) and may block as it would for a REST client.
 * A route that answers with a stream or a WebSocket is refused cleanly (500 internal, with a
 * message saying so) and its producer argument is released.
 *
 * server.c calls the http_capture_* hooks at the top of the request accessors and the reply
 * functions when http_req.capture is set; nothing else uses them.
 */
#ifndef SBX_HTTP_DISPATCH_H
#define SBX_HTTP_DISPATCH_H

#include <stddef.h>

#include <cjson/cJSON.h>

#include "auth.h"
#include "http.h"

typedef struct http_capture {
    /* in (borrowed for the call) */
    const char *const *query; /* NULL-terminated pairs: name, value, name, value, ..., NULL */
    cJSON *body;              /* the JSON body (an object), or NULL for an empty one */
    /* out */
    int status;   /* 0 until the handler answered */
    char *ctype;  /* the reply's Content-Type (owned), NULL for an empty reply */
    char *data;   /* a bytes reply (owned, malloc'd), or NULL */
    size_t len;   /* its length */
    cJSON *json;  /* a JSON reply (owned), or NULL */
    cJSON *empty; /* private: the empty body handed out when body is NULL */
} http_capture;

/* Run `method path` (no query string) as `caller` with the identity `who` (checked against
 * the route's scope: a token without it gets the REST 403). The caller's owner and admin
 * travel to the handler. Fills cap->status and the reply; an unknown route is a captured
 * 404, a wrong method 405. Returns cap->status. */
int http_call(const http_req *caller, const auth_identity *who, const char *method,
              const char *path, http_capture *cap);

/* Release what a capture holds (not its borrowed inputs). Safe to call twice. */
void http_capture_free(http_capture *cap);

/* ---- hooks for server.c (only when r->capture is set) ---- */
const char *http_capture_query(http_req *r, const char *name);
const char *http_capture_header(http_req *r, const char *name);
cJSON *http_capture_body(http_req *r, sbx_err *e);
void http_capture_bytes(http_req *r, int status, const char *ctype, char *data, size_t len);
void http_capture_json(http_req *r, int status, cJSON *body);
void http_capture_refuse(http_req *r, void *arg, void (*arg_free)(void *));

#endif
