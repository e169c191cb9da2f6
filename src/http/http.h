/* http.h -- what a route handler sees: the request, and exactly one way to answer it.
 *
 * Threading model (server.c): libmicrohttpd runs one thread per connection
 * (MHD_USE_THREAD_PER_CONNECTION). A handler runs on its connection's thread and may block
 * (waiting for a child process or a CDP reply, always with a deadline); other connections are
 * unaffected. The number of connections, and so of threads, is capped by MAX_CONNECTIONS, and
 * an idle connection is closed after CONN_TIMEOUT_S, so a stalled client holds one thread at
 * most that long.
 *
 * A handler must answer exactly once with one of the http_reply_* calls (or http_fail). The
 * request and everything it borrows stay valid until the handler returns; a streaming
 * producer (http_reply_stream) gets its own thread and must not touch the request.
 */
#ifndef SBX_HTTP_H
#define SBX_HTTP_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <cjson/cJSON.h>

#include "../common/err.h"

#define HTTP_MAX_PARAMS 4
#define HTTP_PARAM_LEN  1100 /* room for a placeholder's value and its NUL (router.h) */

typedef struct http_req {
    const char *id;                      /* request id, for log lines */
    const char *method;                  /* "GET", "POST", ... */
    const char *path;                    /* path without the query string */
    const char *params[HTTP_MAX_PARAMS]; /* {placeholders} of the route, in order */
    int nparams;
    const char *body; /* raw body, NUL-terminated (empty string when none) */
    size_t body_len;
    const char *token_label; /* who called: "master" or a scoped token's label (NULL: nobody) */
    bool authenticated;      /* a valid token came (always true but on open routes) */
    const char *owner;       /* the caller's token id ("master" for the master token): what it
                              * creates belongs to it (NULL: nobody) */
    bool admin;              /* the caller sees and manages every session, not only its own */
    struct http_conn *conn;  /* private to server.c */
    struct http_capture *capture; /* non-NULL: an in-process call (dispatch.h): the reply goes
                                   * there, and query, headers and body come from it */
} http_req;

/* Who asks, for a session registry: NULL (every session) for an admin, else the caller's own
 * token id, so that another token's session is a 404 and missing from lists. */
static inline const char *http_viewer(const http_req *r) {
    return r->admin ? NULL : r->owner;
}

/* A query-string argument (borrowed, valid while the request is), or NULL. */
const char *http_query(http_req *r, const char *name);

/* The same with its length in *len: a %00 in the query decodes to a NUL byte inside the value,
 * which the C string of http_query would hide (a caller that must refuse NUL bytes checks it). */
const char *http_query_n(http_req *r, const char *name, size_t *len);

/* A request header (borrowed), or NULL. Case-insensitive name. */
const char *http_header(http_req *r, const char *name);

/* The body as a JSON object. Checks Content-Type (415 unless application/json or absent), that
 * the text is well-formed UTF-8 without lone surrogate escapes, and syntax (each a 400 naming
 * the line, column and byte offset); an empty body is an empty object. The request keeps
 * ownership of the result. On failure returns NULL and fills `e`. */
cJSON *http_json_body(http_req *r, sbx_err *e);

/* ---- answering ---- */

/* Add a header to the coming reply (both strings copied). Call before replying. */
void http_add_header(http_req *r, const char *name, const char *value);

/* JSON reply; takes ownership of `body`. */
void http_reply_json(http_req *r, int status, cJSON *body);

/* Error reply in the one wire shape {"error":{"code","message"}}; adds Retry-After when
 * e->retry_after > 0. */
void http_reply_error(http_req *r, const sbx_err *e);

/* Shorthand: build the error and reply with it; returns `code`. */
sbx_code http_fail(http_req *r, sbx_code code, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

/* Bytes reply; takes ownership of `data` (released with free()). A text reply (JSON or text/...)
 * leaves as well-formed UTF-8: ill-formed sequences become U+FFFD here, so no handler needs to
 * care (http_reply_json and http_reply_error come through here too). */
void http_reply_bytes(http_req *r, int status, const char *content_type, char *data, size_t len);

/* Empty reply, e.g. 204. */
void http_reply_status(http_req *r, int status);

/* ---- streaming (Server-Sent Events and other long bodies) ---- */

typedef struct http_stream http_stream;

/* Body producer: runs on a thread of its own after the handler returns, writes with
 * http_stream_write and returns when done (the body then ends). It owns `arg`. */
typedef void (*http_stream_fn)(http_stream *s, void *arg);

/* Answer with a streamed body produced by `fn(s, arg)`. `arg_free` (may be NULL) releases
 * `arg` after `fn` returned. If the reply cannot be started, `arg_free(arg)` is called at once
 * and a 500 is sent instead. */
void http_reply_stream(http_req *r, int status, const char *content_type, http_stream_fn fn,
                       void *arg, void (*arg_free)(void *));

/* Write to the body. Blocks while the client is slow (bounded buffer). Returns 0, or -1 when
 * the client has gone (the producer should stop its work). In a text stream (SSE, JSON, text/...)
 * each write is repaired to well-formed UTF-8 on its own, so a write must hold whole
 * characters (http_stream_sse writes whole frames). */
int http_stream_write(http_stream *s, const void *data, size_t len);

/* The producer's own deadline (sbx_now_ms clock; 0: none), e.g. a run's: a write that waits
 * for a reader that takes nothing gives up at it, once, returning -1 (the producer should end
 * its work) while the stream stays open for what the producer writes last (which waits for
 * the reader again, at most CONN_TIMEOUT_S). Without it such a write waits CONN_TIMEOUT_S. */
void http_stream_deadline(http_stream *s, int64_t deadline_ms);

/* 0 while the client is there, -1 once it left (writes nothing: SSE streams get their
 * keep-alive comments from the reader's side, once a second of silence). */
int http_stream_alive(http_stream *s);

/* Write one SSE frame: "event: <event>\ndata: <data>\n\n" (data's newlines become extra
 * data: lines). Returns like http_stream_write. */
int http_stream_sse(http_stream *s, const char *event, const char *data);

/* A sandboxed program's output observer (exec.h, workspace.h) as SSE frames: stream 0 is
 * `start` {id_field: data} (and the producer's deadline becomes now + timeout_ms, so a stalled
 * reader cannot hold the program past its end), 1 `stdout` and 2 `stderr` {data}, 3 asks
 * whether the client is still there. Returns 0, or -1 when the client is gone. */
int http_stream_output(http_stream *s, int stream, const char *data, size_t len,
                       const char *id_field, int64_t timeout_ms);

/* ---- WebSocket (protocol upgrade) ---- */

/* Runs on the connection's thread once the 101 went out, and owns the socket's traffic until
 * it returns (it must not close `sock`). `extra` holds bytes the client sent after its
 * handshake, to be treated as read from `sock`. It should return soon after http_stopping()
 * turns true. */
typedef void (*http_ws_fn)(int sock, const char *extra, size_t extra_len, void *arg);

/* Answer a WebSocket handshake (GET with Upgrade: websocket, Sec-WebSocket-Version: 13 and a
 * Sec-WebSocket-Key) with 101 and the Sec-WebSocket-Accept, then run fn(sock, ..., arg).
 * Anything else gets 400 saying how to connect. `arg_free(arg)` (may be NULL) runs exactly
 * once, whether or not fn ran. */
void http_reply_websocket(http_req *r, http_ws_fn fn, void *arg, void (*arg_free)(void *));

/* ---- settings the API modules apply ---- */

typedef struct http_defaults {
    int64_t exec_timeout_ms;            /* EXEC_TIMEOUT_MS: a run's timeoutMs when none is given */
    int64_t browser_call_timeout_ms;    /* BROWSER_CALL_TIMEOUT_MS: a browser call's timeoutMs */
    int64_t browser_snapshot_max_chars; /* BROWSER_SNAPSHOT_MAX_CHARS: default maxChars */
    const char *host;                   /* HOST: the address the server listens on (borrowed) */
    int64_t python_file_max_bytes;      /* PYTHON_FILE_MAX_MB: a session file's cap (files API) */
    int64_t python_quota_bytes;         /* PYTHON_SESSION_QUOTA_MB: a session's files (files API) */
    const struct egress_gateway *gateway; /* for /metrics (borrowed), or NULL */
} http_defaults;

/* The defaults given to server_start (valid while the server runs; any thread). */
const http_defaults *http_defaults_get(void);

/* True once the server began shutting down (long-lived connections should end). */
bool http_stopping(void);

/* Requests being handled now (for /health and /metrics). Any thread. */
int http_inflight(void);

/* ---- routes ---- */

typedef void (*http_handler_fn)(http_req *r);

typedef struct http_route {
    const char *method;  /* NULL ends a table */
    const char *pattern; /* "/browser/sessions/{id}/tabs/{tabId}" */
    http_handler_fn fn;
    const char *scope; /* token scope needed: "exec", "browser", "admin" */
    bool open;         /* true: no token needed (GET /health only) */
} http_route;

/* Each API module exports one NULL-terminated table. */
extern const http_route api_core_routes[];
extern const http_route api_exec_routes[];
extern const http_route api_browser_routes[];
extern const http_route api_browser_ext_routes[];
extern const http_route api_python_routes[];
extern const http_route api_reads_routes[];
extern const http_route api_mcp_routes[];
extern const http_route api_python_files_routes[];

#endif
