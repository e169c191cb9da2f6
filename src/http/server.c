/* server.c -- libmicrohttpd glue: per-request state, auth before routing, the body cap,
 * dispatch to route handlers, replies, and the request log line. Streamed bodies live in
 * sse.c, WebSocket upgrades in ws_upgrade.c; both answer through conn.h.
 *
 * Threading model (chosen deliberately): MHD_USE_THREAD_PER_CONNECTION. Handlers block on
 * child processes and CDP replies (always with deadlines); a thread per connection keeps that
 * code straight-line and isolates a slow call to its own client. Bounds: MAX_CONNECTIONS
 * threads (each with a 1 MiB stack reservation), CONN_TIMEOUT_S of silence closes a stalled
 * client. At most MAX_CONNECTIONS requests are handled at once; a request past that is
 * answered 429 busy with Retry-After (then a lingering close, so that a client still sending
 * its body reads the answer: a refused or reset connection tells a client nothing). MHD itself
 * closes new connections beyond twice MAX_CONNECTIONS.
 *
 * Per-request state (struct http_conn) is created on the first access-handler call and freed
 * in exactly one place: the request-completed callback.
 */
#define _GNU_SOURCE
#include "server.h"

#include <errno.h>
#include <fcntl.h>
#include <netdb.h>
#include <poll.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <unistd.h>

#include <microhttpd.h>

#include "../common/jfield.h"
#include "../common/log.h"
#include "../common/utf8.h"
#include "../common/util.h"
#include "auth.h"
#include "cluster.h"
#include "conn.h"
#include "dispatch.h"
#include "http.h"
#include "metrics.h"
#include "router.h"
#include "sse.h"

typedef struct hdr {
    char *name, *value;
    struct hdr *next;
} hdr;

struct http_conn {
    http_req req;
    struct MHD_Connection *mc;
    char id[13];
    char path[1024];
    sbx_buf body;
    bool admitted; /* counted in `admitted` until it completes */
    bool dispatched;
    bool refused; /* answered by answer_and_linger, which closes the connection */
    router_match match;
    auth_identity who;
    cJSON *json;
    hdr *headers;
    struct MHD_Response *response;
    int status;
    int64_t start_ms;
    ws_upgrade *ws;
};

static struct MHD_Daemon *daemon_ = NULL;
static atomic_int admitted = 0; /* requests being handled, at most MAX_CONNECTIONS */

/* Each connection thread's stack. A ThreadSanitizer build needs more: TSan keeps its state of
 * each thread (some 700 KiB) in static TLS, which glibc carves out of the thread's stack. */
#if defined(__SANITIZE_THREAD__)
#define CONN_STACK (8 * 1024 * 1024)
#else
#define CONN_STACK (1024 * 1024)
#endif
static server_opts opts; /* from server_start; the strings borrowed */
static atomic_int inflight = 0;
static atomic_bool stopping = false;
static atomic_uint_fast64_t req_counter = 0;

/* ---------------------------------------------------------------- request accessors */

const char *http_query(http_req *r, const char *name) {
    if (r->capture) /* an in-process call (dispatch.c) */
        return http_capture_query(r, name);
    return MHD_lookup_connection_value(r->conn->mc, MHD_GET_ARGUMENT_KIND, name);
}

const char *http_query_n(http_req *r, const char *name, size_t *len) {
    if (r->capture) {
        const char *v = http_capture_query(r, name);
        *len = v ? strlen(v) : 0;
        return v;
    }
    const char *v = NULL;
    size_t n = 0;
    if (MHD_lookup_connection_value_n(r->conn->mc, MHD_GET_ARGUMENT_KIND, name, strlen(name), &v,
                                      &n) != MHD_YES)
        return NULL;
    *len = v ? n : 0;
    return v;
}

const char *http_header(http_req *r, const char *name) {
    if (r->capture)
        return http_capture_header(r, name);
    return MHD_lookup_connection_value(r->conn->mc, MHD_HEADER_KIND, name);
}

static bool is_json_type(const char *ct) {
    if (!ct)
        return true; /* absent: take the body as JSON */
    while (*ct == ' ')
        ct++;
    size_t n = strcspn(ct, "; ");
    if (n == 16 && !strncasecmp(ct, "application/json", 16))
        return true;
    /* application/<something>+json */
    return n > 17 && !strncasecmp(ct, "application/", 12) && !strncasecmp(ct + n - 5, "+json", 5);
}

cJSON *http_json_body(http_req *r, sbx_err *e) {
    if (r->capture)
        return http_capture_body(r, e);
    struct http_conn *c = r->conn;
    if (c->json)
        return c->json;
    if (r->body_len == 0) {
        c->json = cJSON_CreateObject();
        if (!c->json)
            sbx_fail(e, SBX_EINTERNAL, "out of memory");
        return c->json;
    }
    const char *ct = http_header(r, MHD_HTTP_HEADER_CONTENT_TYPE);
    if (!is_json_type(ct)) {
        sbx_fail(e, SBX_EMEDIATYPE, "Content-Type must be application/json (got '%.64s')", ct);
        return NULL;
    }
    if (jf_check_text(r->body, r->body_len, e) != SBX_OK)
        return NULL;
    const char *end = NULL;
    cJSON *j = cJSON_ParseWithLengthOpts(r->body, r->body_len, &end, 0);
    if (j && end) { /* only white space may follow the value */
        while (end < r->body + r->body_len && strchr(" \t\r\n", *end))
            end++;
        if (end != r->body + r->body_len) {
            cJSON_Delete(j);
            j = NULL;
        }
    }
    if (!j) {
        size_t off = end && end >= r->body ? (size_t)(end - r->body) : 0;
        if (off > r->body_len)
            off = r->body_len;
        int line, col;
        jf_where(r->body, off, &line, &col);
        sbx_fail(e, SBX_EINVAL,
                 "malformed JSON body at line %d column %d (byte %zu): check quotes, commas "
                 "and brackets there",
                 line, col, off);
        return NULL;
    }
    if (!cJSON_IsObject(j)) {
        cJSON_Delete(j);
        sbx_fail(e, SBX_EINVAL, "the JSON body must be an object ({...})");
        return NULL;
    }
    c->json = j;
    return j;
}

/* ---------------------------------------------------------------- replies */

void http_add_header(http_req *r, const char *name, const char *value) {
    if (r->capture)
        return; /* a captured reply has no HTTP headers */
    hdr *h = calloc(1, sizeof *h);
    if (!h)
        return;
    h->name = strdup(name);
    h->value = strdup(value);
    if (!h->name || !h->value) {
        free(h->name);
        free(h->value);
        free(h);
        return;
    }
    h->next = r->conn->headers;
    r->conn->headers = h;
}

void http_conn_set_response(struct http_conn *c, int status, struct MHD_Response *resp,
                            const char *ctype) {
    if (!resp) {
        LOG_E("http", "req=%s could not allocate a response", c->id);
        return;
    }
    if (c->response) { /* a handler answered twice: keep the first */
        LOG_E("http", "req=%s answered twice; second reply dropped", c->id);
        MHD_destroy_response(resp);
        return;
    }
    if (ctype)
        MHD_add_response_header(resp, MHD_HTTP_HEADER_CONTENT_TYPE, ctype);
    MHD_add_response_header(resp, "X-Request-Id", c->id);
    if (*sbx_node())
        MHD_add_response_header(resp, "X-Sandboxd-Node", sbx_node());
    for (hdr *h = c->headers; h; h = h->next)
        MHD_add_response_header(resp, h->name, h->value);
    c->response = resp;
    c->status = status;
}

bool http_is_text_type(const char *ct) {
    if (!ct)
        return false;
    while (*ct == ' ')
        ct++;
    return !strncasecmp(ct, "text/", 5) || is_json_type(ct);
}

/* The one place replies pass through on their way out (streamed bodies: http_stream_write in
 * sse.c): ill-formed UTF-8 in a text reply (program output, a page's strings) becomes U+FFFD.
 * Takes `*data` (malloc'd) and may replace it; false when out of memory (*data is freed). */
static bool text_repair(char **data, size_t *len) {
    if (!*data || utf8_invalid_at(*data, *len) == *len)
        return true;
    size_t n;
    char *fixed = utf8_repair(*data, *len, &n, NULL);
    free(*data);
    *data = fixed;
    *len = fixed ? n : 0;
    return fixed != NULL;
}

void http_reply_bytes(http_req *r, int status, const char *content_type, char *data, size_t len) {
    if (r->capture) {
        http_capture_bytes(r, status, content_type, data, len);
        return;
    }
    if (http_is_text_type(content_type) && !text_repair(&data, &len)) {
        http_conn_set_response(r->conn, 500, NULL, NULL);
        return;
    }
    struct MHD_Response *resp = MHD_create_response_from_buffer(
        len, data ? data : (char *)"", data ? MHD_RESPMEM_MUST_FREE : MHD_RESPMEM_PERSISTENT);
    if (!resp)
        free(data);
    http_conn_set_response(r->conn, status, resp, content_type);
}

void http_reply_json(http_req *r, int status, cJSON *body) {
    if (r->capture) {
        http_capture_json(r, status, body);
        return;
    }
    char *text = body ? cJSON_PrintUnformatted(body) : NULL;
    cJSON_Delete(body);
    if (!text) {
        http_fail(r, SBX_EINTERNAL, "could not encode the reply");
        return;
    }
    http_reply_bytes(r, status, "application/json; charset=utf-8", text, strlen(text));
}

void http_reply_status(http_req *r, int status) {
    http_reply_bytes(r, status, NULL, NULL, 0);
}

/* The one wire shape of an error, {"error":{"code","message"}}, as cJSON. */
static cJSON *error_json(const sbx_err *e) {
    cJSON *root = cJSON_CreateObject(), *err = cJSON_AddObjectToObject(root, "error");
    cJSON_AddStringToObject(err, "code", sbx_code_name(e->code));
    cJSON_AddStringToObject(err, "message", e->msg);
    return root;
}

/* The headers an error brings: Retry-After when it says when, WWW-Authenticate on a 401. */
static void add_error_headers(http_req *r, const sbx_err *e) {
    if (e->retry_after > 0) {
        char ra[16];
        snprintf(ra, sizeof ra, "%d", e->retry_after);
        http_add_header(r, "Retry-After", ra);
    }
    if (e->code == SBX_EUNAUTH)
        http_add_header(r, "WWW-Authenticate", "Bearer realm=\"sandboxd\"");
}

void http_reply_error(http_req *r, const sbx_err *e) {
    add_error_headers(r, e);
    cJSON *root = error_json(e);
    int status = sbx_code_status(e->code);
    if (status >= 500)
        LOG_W("http", "req=%s %s: %s", r->id, sbx_code_name(e->code), e->msg);
    http_reply_json(r, status, root);
}

sbx_code http_fail(http_req *r, sbx_code code, const char *fmt, ...) {
    sbx_err e = {.code = code};
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(e.msg, sizeof e.msg, fmt, ap);
    va_end(ap);
    http_reply_error(r, &e);
    return code;
}

/* ---------------------------------------------------------------- WebSocket */

bool http_stopping(void) {
    return atomic_load(&stopping);
}

void http_conn_set_upgrade(struct http_conn *c, ws_upgrade *u) {
    c->ws = u;
}

/* ---------------------------------------------------------------- dispatch */

/* An error for a request whose body is still coming (a body past MAX_BODY_BYTES; a 401,
 * 403, 404 or 405 known from the headers): it goes out at once, written on the connection's
 * socket (this is its thread, and MHD has sent nothing for the request yet), then the
 * connection closes the way nginx's lingering close does. Closing a socket that still has unread
 * bytes makes the kernel send a reset, and a client still sending its body would lose the 413 it
 * has not read yet; so the write side is shut (the client sees the end of the reply), and
 * what the client still sends is read and dropped, for at most LINGER_MS in all, LINGER_IDLE_MS
 * of silence and LINGER_BYTES. Returns MHD_NO: MHD then closes the connection. */
#define LINGER_MS      5000
#define LINGER_IDLE_MS 1000
#define LINGER_BYTES   (256ull * 1024 * 1024)

static bool send_all(int fd, const char *p, size_t len, int64_t deadline) {
    while (len) {
        ssize_t n = send(fd, p, len, MSG_NOSIGNAL);
        if (n > 0) {
            p += n, len -= (size_t)n;
            continue;
        }
        if (n < 0 && errno != EAGAIN && errno != EWOULDBLOCK && errno != EINTR)
            return false;
        int64_t left = deadline - sbx_now_ms();
        struct pollfd pf = {.fd = fd, .events = POLLOUT};
        if (left <= 0 || (poll(&pf, 1, (int)left) < 0 && errno != EINTR))
            return false;
    }
    return true;
}

static enum MHD_Result answer_and_linger(struct http_conn *c, const sbx_err *err) {
    sbx_err e = *err;
    add_error_headers(&c->req, &e);
    c->status = sbx_code_status(e.code);
    c->refused = true;
    const union MHD_ConnectionInfo *ci =
        MHD_get_connection_info(c->mc, MHD_CONNECTION_INFO_CONNECTION_FD);
    cJSON *j = error_json(&e);
    char *body = cJSON_PrintUnformatted(j);
    size_t body_len = body ? strlen(body) : 0;
    cJSON_Delete(j);
    if (!ci || !text_repair(&body, &body_len) || !body) { /* the message may quote the URL */
        free(body);
        return MHD_NO;
    }
    int fd = ci->connect_fd;
    sbx_buf head;
    sbx_buf_init(&head, 4096);
    const char *reason = MHD_get_reason_phrase_for((unsigned)c->status);
    sbx_buf_addf(&head,
                 "HTTP/1.1 %d %s\r\nConnection: close\r\n"
                 "Content-Type: application/json; charset=utf-8\r\nContent-Length: %zu\r\n"
                 "X-Request-Id: %s\r\n",
                 c->status, reason && *reason ? reason : "Error", body_len, c->id);
    if (*sbx_node())
        sbx_buf_addf(&head, "X-Sandboxd-Node: %s\r\n", sbx_node());
    for (hdr *h = c->headers; h; h = h->next)
        if (strcasecmp(h->name, "Connection") != 0) /* it is "close", said above */
            sbx_buf_addf(&head, "%s: %s\r\n", h->name, h->value);
    sbx_buf_add(&head, "\r\n", 2);
    int64_t t0 = sbx_now_ms(), deadline = t0 + LINGER_MS;
    bool sent = head.data && send_all(fd, head.data, head.len, deadline) &&
                send_all(fd, body, body_len, deadline);
    sbx_buf_free(&head);
    free(body);
    uint64_t dropped = 0;
    if (sent && shutdown(fd, SHUT_WR) == 0) {
        char sink[65536];
        for (;;) {
            int64_t left = deadline - sbx_now_ms();
            struct pollfd pf = {.fd = fd, .events = POLLIN};
            int rc =
                left > 0 ? poll(&pf, 1, left < LINGER_IDLE_MS ? (int)left : LINGER_IDLE_MS) : 0;
            if (rc < 0 && errno == EINTR)
                continue;
            if (rc <= 0)
                break; /* silence, or the time is up */
            ssize_t n = recv(fd, sink, sizeof sink, 0);
            if (n < 0 && (errno == EAGAIN || errno == EINTR))
                continue;
            if (n <= 0)
                break; /* the client closed: all read */
            dropped += (uint64_t)n;
            if (dropped >= LINGER_BYTES)
                break;
        }
    }
    LOG_D("http", "req=%s %d %s; dropped %llu more bytes in %lld ms before closing", c->id,
          c->status, sent ? "sent" : "not sent", (unsigned long long)dropped,
          (long long)(sbx_now_ms() - t0));
    return MHD_NO;
}

/* A 413 for a body past MAX_BODY_BYTES (see answer_and_linger). */
static enum MHD_Result refuse_body(struct http_conn *c, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));
static enum MHD_Result refuse_body(struct http_conn *c, const char *fmt, ...) {
    sbx_err e = {.code = SBX_ETOOLARGE};
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(e.msg, sizeof e.msg, fmt, ap);
    va_end(ap);
    return answer_and_linger(c, &e);
}

static enum MHD_Result queue(struct http_conn *c) {
    if (!c->response)
        http_fail(&c->req, SBX_EINTERNAL, "the handler produced no reply");
    if (!c->response)
        return MHD_NO;
    enum MHD_Result rc = MHD_queue_response(c->mc, (unsigned)c->status, c->response);
    MHD_destroy_response(c->response);
    c->response = NULL;
    return rc;
}

/* First call for a request: headers are in. Decide everything that needs no body: returns
 * SBX_OK, or the error to answer with (in `e`; headers it needs are added). */
static sbx_code on_headers(struct http_conn *c, const char *method, const char *url, sbx_err *e) {
    if (atomic_fetch_add(&admitted, 1) >= opts.max_connections) {
        atomic_fetch_sub(&admitted, 1);
        http_add_header(&c->req, MHD_HTTP_HEADER_CONNECTION, "close");
        sbx_fail(e, SBX_EBUSY,
                 "the server is handling its MAX_CONNECTIONS (%d) requests; retry in a second",
                 opts.max_connections);
        e->retry_after = 1;
        return SBX_EBUSY;
    }
    c->admitted = true;
    bool open = !strcmp(method, "GET") && (!strcmp(url, "/health") || !strcmp(url, "/ready"));
    const char *authz =
        MHD_lookup_connection_value(c->mc, MHD_HEADER_KIND, MHD_HTTP_HEADER_AUTHORIZATION);
    if (auth_check(authz, &c->who, e) == SBX_OK) {
        c->req.token_label = c->who.label;
        c->req.authenticated = true;
        c->req.owner = c->who.id;
        c->req.admin = auth_is_admin(&c->who);
    } else if (!open) {
        return e->code;
    } /* an open route without a valid token: it answers strangers (less) */
    int rc = router_find(method, url, &c->match);
    if (rc == 404)
        return sbx_fail(e, SBX_ENOTFOUND, "no route for %.8s %.200s (see GET /openapi.json)",
                        method, url);
    if (rc == 405) {
        http_add_header(&c->req, "Allow", c->match.allow);
        return sbx_fail(e, SBX_EMETHOD, "%.8s is not allowed on %.200s; allowed: %s", method, url,
                        c->match.allow);
    }
    if (!c->match.route->open && !auth_allows(&c->who, c->match.route->scope))
        return sbx_fail(e, SBX_EFORBIDDEN, "this token lacks the '%s' scope needed for %.8s %.200s",
                        c->match.route->scope, method, url);
    char owner[SBX_NODE_MAX + 1];
    sbx_code rc2 = cluster_admit(method, c->match.route, c->match.params, owner, e);
    if (rc2 == SBX_EWRONGNODE)
        http_add_header(&c->req, "X-Sandboxd-Owner-Node", owner);
    return rc2;
}

/* The request has a body still to come (a Content-Length above 0, or chunked). */
static bool body_pending(struct http_conn *c) {
    const char *cl =
        MHD_lookup_connection_value(c->mc, MHD_HEADER_KIND, MHD_HTTP_HEADER_CONTENT_LENGTH);
    const char *te =
        MHD_lookup_connection_value(c->mc, MHD_HEADER_KIND, MHD_HTTP_HEADER_TRANSFER_ENCODING);
    return (cl && strtoull(cl, NULL, 10) > 0) || (te && *te);
}

static enum MHD_Result on_request(void *cls, struct MHD_Connection *mc, const char *url,
                                  const char *method, const char *version, const char *upload_data,
                                  size_t *upload_data_size, void **con_cls) {
    (void)cls, (void)version;
    struct http_conn *c = *con_cls;
    if (!c) {
        c = calloc(1, sizeof *c);
        if (!c)
            return MHD_NO;
        *con_cls = c;
        atomic_fetch_add(&inflight, 1);
        c->mc = mc;
        c->start_ms = sbx_now_ms();
        unsigned char rnd[4];
        sbx_random_bytes(rnd, sizeof rnd);
        snprintf(c->id, sizeof c->id, "%02x%02x%02x%02x%04x", rnd[0], rnd[1], rnd[2], rnd[3],
                 (unsigned)(atomic_fetch_add(&req_counter, 1) & 0xffff));
        snprintf(c->path, sizeof c->path, "%s", url);
        sbx_buf_init(&c->body, (size_t)opts.max_body_bytes);
        c->req.id = c->id;
        c->req.method = method;
        c->req.path = c->path;
        c->req.body = "";
        c->req.conn = c;
        sbx_err e = {0};
        if (on_headers(c, method, url, &e) != SBX_OK) { /* answered without the body */
            if (body_pending(c))
                return answer_and_linger(c, &e);
            http_reply_error(&c->req, &e);
            return queue(c);
        }
        const char *cl =
            MHD_lookup_connection_value(mc, MHD_HEADER_KIND, MHD_HTTP_HEADER_CONTENT_LENGTH);
        if (cl && strtoull(cl, NULL, 10) > (unsigned long long)opts.max_body_bytes)
            return refuse_body(c,
                               "request body of %.20s bytes exceeds the limit of %lld bytes "
                               "(MAX_BODY_BYTES)",
                               cl, (long long)opts.max_body_bytes);
        return MHD_YES;
    }
    if (*upload_data_size) {
        size_t n = *upload_data_size;
        *upload_data_size = 0;
        if (sbx_buf_add(&c->body, upload_data, n) < 0) /* a chunked body past the cap */
            return refuse_body(c, "request body exceeds the limit of %lld bytes (MAX_BODY_BYTES)",
                               (long long)opts.max_body_bytes);
        return MHD_YES;
    }
    if (c->dispatched)
        return MHD_YES;
    c->dispatched = true;
    c->req.body = c->body.data ? c->body.data : "";
    c->req.body_len = c->body.len;
    c->req.nparams = c->match.nparams;
    for (int i = 0; i < c->match.nparams; i++)
        c->req.params[i] = c->match.params[i];
    c->match.route->fn(&c->req);
    return queue(c);
}

static void on_completed(void *cls, struct MHD_Connection *mc, void **con_cls,
                         enum MHD_RequestTerminationCode toe) {
    (void)cls, (void)mc;
    struct http_conn *c = *con_cls;
    if (!c)
        return;
    *con_cls = NULL;
    int64_t ms = sbx_now_ms() - c->start_ms;
    const char *route = c->match.route ? c->match.route->pattern : "-";
    if (toe == MHD_REQUEST_TERMINATED_COMPLETED_OK || c->refused)
        LOG_I("http", "req=%s %s %s %d %lldms", c->id, c->req.method, c->path, c->status,
              (long long)ms);
    else
        LOG_I("http", "req=%s %s %s %d %lldms (connection ended early: %d)", c->id, c->req.method,
              c->path, c->status, (long long)ms, (int)toe);
    metrics_observe_request(c->req.method ? c->req.method : "-", route, c->status, ms);
    if (c->response)
        MHD_destroy_response(c->response);
    for (hdr *h = c->headers, *next; h; h = next) {
        next = h->next;
        free(h->name);
        free(h->value);
        free(h);
    }
    cJSON_Delete(c->json);
    sbx_buf_free(&c->body);
    ws_upgrade_free(c->ws);
    if (c->admitted)
        atomic_fetch_sub(&admitted, 1);
    free(c);
    atomic_fetch_sub(&inflight, 1);
}

static void mhd_log(void *cls, const char *fmt, va_list ap) {
    (void)cls;
    char msg[512];
    vsnprintf(msg, sizeof msg, fmt, ap);
    LOG_D("mhd", "%s", msg);
}

/* ---------------------------------------------------------------- lifecycle */

const http_defaults *http_defaults_get(void) {
    return &opts.api;
}

sbx_code server_start(const server_opts *o, int *bound_port, sbx_err *e) {
    opts = *o;
    sse_set_stall_ms((int64_t)o->conn_timeout_s * 1000);
    struct addrinfo hints = {.ai_family = AF_UNSPEC,
                             .ai_socktype = SOCK_STREAM,
                             .ai_flags = AI_NUMERICHOST | AI_PASSIVE},
                    *ai = NULL;
    char port[8];
    snprintf(port, sizeof port, "%d", (int)opts.port);
    int gai = getaddrinfo(opts.host, port, &hints, &ai);
    if (gai != 0)
        return sbx_fail(e, SBX_EINVAL, "HOST '%s' is not a numeric IPv4/IPv6 address: %s",
                        opts.host, gai_strerror(gai));
    unsigned flags = MHD_USE_THREAD_PER_CONNECTION | MHD_USE_INTERNAL_POLLING_THREAD |
                     MHD_USE_POLL | MHD_USE_ITC | MHD_USE_ERROR_LOG | MHD_ALLOW_UPGRADE;
    if (ai->ai_family == AF_INET6)
        flags |= MHD_USE_IPv6;
    daemon_ = MHD_start_daemon(
        flags, (uint16_t)opts.port, NULL, NULL, on_request, NULL, MHD_OPTION_EXTERNAL_LOGGER,
        mhd_log, NULL, MHD_OPTION_SOCK_ADDR, ai->ai_addr, MHD_OPTION_NOTIFY_COMPLETED, on_completed,
        NULL, MHD_OPTION_CONNECTION_TIMEOUT, (unsigned)opts.conn_timeout_s,
        MHD_OPTION_CONNECTION_LIMIT, (unsigned)opts.max_connections * 2,
        MHD_OPTION_PER_IP_CONNECTION_LIMIT, 0u, MHD_OPTION_THREAD_STACK_SIZE, (size_t)CONN_STACK,
        MHD_OPTION_LISTEN_BACKLOG_SIZE, 1024u, MHD_OPTION_END);
    freeaddrinfo(ai);
    if (!daemon_)
        return sbx_fail(e, SBX_EUNAVAIL,
                        "could not listen on %s:%d (in use? permission?); set HOST/PORT", opts.host,
                        (int)opts.port);
    const union MHD_DaemonInfo *info = MHD_get_daemon_info(daemon_, MHD_DAEMON_INFO_BIND_PORT);
    *bound_port = info ? info->port : (int)opts.port;
    return SBX_OK;
}

void server_quiesce(void) {
    atomic_store(&stopping, true);
    if (!daemon_)
        return;
    MHD_socket fd = MHD_quiesce_daemon(daemon_);
    if (fd != MHD_INVALID_SOCKET)
        close(fd);
}

int http_inflight(void) {
    return atomic_load(&inflight);
}

int server_drain(int64_t deadline_ms) {
    while (atomic_load(&inflight) > 0 && sbx_now_ms() < deadline_ms)
        usleep(10 * 1000);
    return atomic_load(&inflight);
}

void server_stop(void) {
    if (daemon_) {
        MHD_stop_daemon(daemon_);
        daemon_ = NULL;
    }
    /* producers end once their work is gone (exec/browser shut down first) */
    sse_wait_producers(INT64_MAX);
}
