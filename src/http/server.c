/* server.c -- libmicrohttpd glue: per-request state, auth before routing, the body cap,
 * dispatch to route handlers, replies, streamed bodies, and the request log line.
 *
 * Threading model (chosen deliberately): MHD_USE_THREAD_PER_CONNECTION. Handlers block on
 * child processes and CDP replies (always with deadlines); a thread per connection keeps that
 * code straight-line and isolates a slow call to its own client. Bounds: MAX_CONNECTIONS
 * threads (each with a 1 MiB stack reservation), CONN_TIMEOUT_S of silence closes a stalled
 * client. At most MAX_CONNECTIONS requests are handled at once; a request past that is
 * answered 429 busy with Retry-After once its body is in (a refused or reset connection tells
 * a client nothing). MHD itself closes new connections beyond twice MAX_CONNECTIONS. A streamed
 * body (SSE) is produced on one extra thread and pulled by the connection thread through a bounded
 * ring; producers are counted so shutdown can wait for them.
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

#include "../common/config.h"
#include "../common/jfield.h"
#include "../common/log.h"
#include "../common/utf8.h"
#include "../common/util.h"
#include "../common/websocket.h"
#include "auth.h"
#include "dispatch.h"
#include "http.h"
#include "metrics.h"
#include "router.h"

typedef struct hdr {
    char *name, *value;
    struct hdr *next;
} hdr;

/* A WebSocket reply's work: owned by its http_conn (freed on completion, which for an
 * upgraded connection comes after the upgrade handler closed it). */
typedef struct ws_upgrade {
    http_ws_fn fn;
    void *arg;
    void (*arg_free)(void *);
} ws_upgrade;

struct http_conn {
    http_req req;
    struct MHD_Connection *mc;
    char id[13];
    char path[1024];
    sbx_buf body;
    uint64_t discarded; /* bytes dropped from a request past MAX_CONNECTIONS */
    bool admitted;      /* counted in `admitted` until it completes */
    bool overflow;      /* past MAX_CONNECTIONS: the body is dropped, the answer is 429 */
    bool dispatched;
    bool refused; /* answered by refuse_body, which closes the connection */
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
static atomic_int inflight = 0;
static atomic_bool stopping = false;
static atomic_uint_fast64_t req_counter = 0;
static atomic_int admitted = 0; /* requests being handled, at most MAX_CONNECTIONS */

/* stream producers still running */
static pthread_mutex_t producers_mu = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t producers_cv = PTHREAD_COND_INITIALIZER;
static int producers = 0;

/* ---------------------------------------------------------------- request accessors */

const char *http_query(http_req *r, const char *name) {
    if (r->capture) /* an in-process call (dispatch.c) */
        return http_capture_query(r, name);
    return MHD_lookup_connection_value(r->conn->mc, MHD_GET_ARGUMENT_KIND, name);
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

static void set_response(struct http_conn *c, int status, struct MHD_Response *resp,
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
    for (hdr *h = c->headers; h; h = h->next)
        MHD_add_response_header(resp, h->name, h->value);
    c->response = resp;
    c->status = status;
}

/* Text the client will decode: JSON (application/json, application/<x>+json) and text/<x>.
 * Every such reply leaves as well-formed UTF-8 (see http_reply_bytes). */
static bool is_text_type(const char *ct) {
    if (!ct)
        return false;
    while (*ct == ' ')
        ct++;
    return !strncasecmp(ct, "text/", 5) || is_json_type(ct);
}

/* The one place replies (and stream writes) pass through on their way out: ill-formed
 * UTF-8 in a text reply (program output, a page's strings) becomes U+FFFD. Takes `*data`
 * (malloc'd) and may replace it; returns false when out of memory (then *data is freed). */
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
    if (is_text_type(content_type) && !text_repair(&data, &len)) {
        set_response(r->conn, 500, NULL, NULL);
        return;
    }
    struct MHD_Response *resp = MHD_create_response_from_buffer(
        len, data ? data : (char *)"", data ? MHD_RESPMEM_MUST_FREE : MHD_RESPMEM_PERSISTENT);
    if (!resp)
        free(data);
    set_response(r->conn, status, resp, content_type);
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

void http_reply_error(http_req *r, const sbx_err *e) {
    if (e->retry_after > 0) {
        char ra[16];
        snprintf(ra, sizeof ra, "%d", e->retry_after);
        http_add_header(r, "Retry-After", ra);
    }
    if (e->code == SBX_EUNAUTH)
        http_add_header(r, "WWW-Authenticate", "Bearer realm=\"sandboxd\"");
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

/* ---------------------------------------------------------------- streams */

/* Each connection thread's stack. A ThreadSanitizer build needs more: TSan keeps its state of
 * each thread (some 700 KiB) in static TLS, which glibc carves out of the thread's stack. */
#if defined(__SANITIZE_THREAD__)
#define CONN_STACK (8 * 1024 * 1024)
#else
#define CONN_STACK (1024 * 1024)
#endif

#define STREAM_RING         (64 * 1024)
#define STREAM_KEEPALIVE_MS 5000

struct http_stream {
    pthread_mutex_t mu;
    pthread_cond_t cv;
    char ring[STREAM_RING];
    size_t head, len;
    bool producer_done, client_gone, sse;
    bool text; /* a text body: writes are repaired to well-formed UTF-8 */
    int refs;
    http_stream_fn fn;
    void *arg;
    void (*arg_free)(void *);
};

static int ring_put(http_stream *s, const char *p, size_t len);

static void stream_unref(http_stream *s) {
    pthread_mutex_lock(&s->mu);
    int left = --s->refs;
    pthread_mutex_unlock(&s->mu);
    if (left == 0) {
        pthread_mutex_destroy(&s->mu);
        pthread_cond_destroy(&s->cv);
        free(s);
    }
}

static void deadline_in(struct timespec *ts, int64_t ms) {
    clock_gettime(CLOCK_MONOTONIC, ts);
    ts->tv_sec += ms / 1000;
    ts->tv_nsec += (ms % 1000) * 1000000;
    if (ts->tv_nsec >= 1000000000) {
        ts->tv_sec++;
        ts->tv_nsec -= 1000000000;
    }
}

static ssize_t stream_read(void *cls, uint64_t pos, char *out, size_t max) {
    (void)pos;
    http_stream *s = cls;
    pthread_mutex_lock(&s->mu);
    while (s->len == 0 && !s->producer_done) {
        struct timespec ts;
        deadline_in(&ts, STREAM_KEEPALIVE_MS);
        if (pthread_cond_timedwait(&s->cv, &s->mu, &ts) == ETIMEDOUT && s->len == 0 &&
            !s->producer_done && s->sse) {
            /* an SSE comment: keeps proxies open and lets us notice a vanished client */
            pthread_mutex_unlock(&s->mu);
            static const char ping[] = ": keepalive\n\n";
            size_t n = sizeof ping - 1 < max ? sizeof ping - 1 : max;
            memcpy(out, ping, n);
            return (ssize_t)n;
        }
    }
    if (s->len == 0) {
        pthread_mutex_unlock(&s->mu);
        return MHD_CONTENT_READER_END_OF_STREAM;
    }
    size_t n = 0;
    while (n < max && s->len) {
        size_t chunk = STREAM_RING - s->head;
        if (chunk > s->len)
            chunk = s->len;
        if (chunk > max - n)
            chunk = max - n;
        memcpy(out + n, s->ring + s->head, chunk);
        s->head = (s->head + chunk) % STREAM_RING;
        s->len -= chunk;
        n += chunk;
    }
    pthread_cond_broadcast(&s->cv);
    pthread_mutex_unlock(&s->mu);
    return (ssize_t)n;
}

static void stream_client_done(void *cls) {
    http_stream *s = cls;
    pthread_mutex_lock(&s->mu);
    s->client_gone = true;
    pthread_cond_broadcast(&s->cv);
    pthread_mutex_unlock(&s->mu);
    stream_unref(s);
}

int http_stream_write(http_stream *s, const void *data, size_t len) {
    const char *p = data;
    char *fixed = NULL;
    if (s->text && utf8_invalid_at(p, len) != len) {
        if (!(fixed = utf8_repair(p, len, &len, NULL)))
            return -1;
        p = fixed;
    }
    int rc = ring_put(s, p, len);
    free(fixed);
    return rc;
}

/* Copy `len` bytes into the ring, waiting while it is full. */
static int ring_put(http_stream *s, const char *p, size_t len) {
    pthread_mutex_lock(&s->mu);
    while (len) {
        /* A reader that takes nothing for CONN_TIMEOUT_S counts as gone: the producer (a run,
         * say) must not be held past its own deadline by a stalled client. */
        int64_t stall_s = sbx_cfg ? sbx_cfg->conn_timeout_s : 30;
        struct timespec until;
        deadline_in(&until, stall_s * 1000);
        while (s->len == STREAM_RING && !s->client_gone)
            if (pthread_cond_timedwait(&s->cv, &s->mu, &until) == ETIMEDOUT &&
                s->len == STREAM_RING) {
                s->client_gone = true;
                LOG_W("http", "a streaming client read nothing for %lld s; ending its stream",
                      (long long)stall_s);
            }
        if (s->client_gone) {
            pthread_mutex_unlock(&s->mu);
            return -1;
        }
        size_t tail = (s->head + s->len) % STREAM_RING;
        size_t chunk = tail >= s->head ? STREAM_RING - tail : s->head - tail;
        if (chunk > STREAM_RING - s->len)
            chunk = STREAM_RING - s->len;
        if (chunk > len)
            chunk = len;
        memcpy(s->ring + tail, p, chunk);
        s->len += chunk;
        p += chunk;
        len -= chunk;
        pthread_cond_broadcast(&s->cv);
    }
    pthread_mutex_unlock(&s->mu);
    return 0;
}

int http_stream_sse(http_stream *s, const char *event, const char *data) {
    sbx_buf b;
    sbx_buf_init(&b, SIZE_MAX / 2);
    sbx_buf_addf(&b, "event: %s\n", event);
    for (const char *p = data;;) {
        const char *nl = strchr(p, '\n');
        size_t n = nl ? (size_t)(nl - p) : strlen(p);
        sbx_buf_add(&b, "data: ", 6);
        sbx_buf_add(&b, p, n);
        sbx_buf_add(&b, "\n", 1);
        if (!nl)
            break;
        p = nl + 1;
    }
    sbx_buf_add(&b, "\n", 1);
    int rc = b.data ? http_stream_write(s, b.data, b.len) : -1;
    sbx_buf_free(&b);
    return rc;
}

static void *stream_producer(void *arg) {
    http_stream *s = arg;
    s->fn(s, s->arg);
    if (s->arg_free)
        s->arg_free(s->arg);
    pthread_mutex_lock(&s->mu);
    s->producer_done = true;
    pthread_cond_broadcast(&s->cv);
    pthread_mutex_unlock(&s->mu);
    stream_unref(s);
    pthread_mutex_lock(&producers_mu);
    producers--;
    pthread_cond_broadcast(&producers_cv);
    pthread_mutex_unlock(&producers_mu);
    return NULL;
}

void http_reply_stream(http_req *r, int status, const char *content_type, http_stream_fn fn,
                       void *arg, void (*arg_free)(void *)) {
    if (r->capture) {
        http_capture_refuse(r, arg, arg_free);
        return;
    }
    http_stream *s = calloc(1, sizeof *s);
    struct MHD_Response *resp = NULL;
    if (s) {
        pthread_mutex_init(&s->mu, NULL);
        pthread_condattr_t ca;
        pthread_condattr_init(&ca);
        pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
        pthread_cond_init(&s->cv, &ca);
        pthread_condattr_destroy(&ca);
        s->fn = fn;
        s->arg = arg;
        s->arg_free = arg_free;
        s->refs = 2; /* the connection's response and the producer thread */
        s->sse = content_type && !strncmp(content_type, "text/event-stream", 17);
        s->text = is_text_type(content_type);
        resp = MHD_create_response_from_callback(MHD_SIZE_UNKNOWN, 16 * 1024, stream_read, s,
                                                 stream_client_done);
    }
    if (!resp) {
        free(s);
        if (arg_free)
            arg_free(arg);
        http_fail(r, SBX_EINTERNAL, "could not start a streamed reply");
        return;
    }
    MHD_add_response_header(resp, MHD_HTTP_HEADER_CACHE_CONTROL, "no-cache");
    pthread_t t;
    pthread_attr_t attr;
    pthread_attr_init(&attr);
    pthread_attr_setdetachstate(&attr, PTHREAD_CREATE_DETACHED);
    pthread_mutex_lock(&producers_mu);
    int rc = pthread_create(&t, &attr, stream_producer, s);
    if (rc == 0)
        producers++;
    pthread_mutex_unlock(&producers_mu);
    pthread_attr_destroy(&attr);
    if (rc != 0) {
        /* destroying the response runs stream_client_done, dropping the response's ref */
        s->refs = 1;
        MHD_destroy_response(resp);
        if (arg_free)
            arg_free(arg);
        http_fail(r, SBX_EINTERNAL, "could not start a streamed reply");
        return;
    }
    set_response(r->conn, status, resp, content_type);
}

/* ---------------------------------------------------------------- WebSocket */

bool http_stopping(void) {
    return atomic_load(&stopping);
}

static void ws_release(ws_upgrade *u) {
    if (u && u->arg_free && u->arg)
        u->arg_free(u->arg);
    if (u)
        u->arg = NULL;
}

static void on_upgrade(void *cls, struct MHD_Connection *mc, void *con_cls, const char *extra,
                       size_t extra_len, MHD_socket sock, struct MHD_UpgradeResponseHandle *urh) {
    (void)mc, (void)con_cls;
    ws_upgrade *u = cls;
    int fl = fcntl(sock, F_GETFL);
    if (fl >= 0 && (fl & O_NONBLOCK))
        fcntl(sock, F_SETFL, fl & ~O_NONBLOCK);
    u->fn(sock, extra, extra_len, u->arg);
    ws_release(u);
    MHD_upgrade_action(urh, MHD_UPGRADE_ACTION_CLOSE);
}

/* True when the comma-separated header value `v` holds `token` (case-insensitive). */
static bool has_token(const char *v, const char *token) {
    size_t n = strlen(token);
    for (const char *p = v; p && *p;) {
        p += strspn(p, " \t,");
        size_t len = strcspn(p, ",");
        size_t t = len;
        while (t > 0 && (p[t - 1] == ' ' || p[t - 1] == '\t'))
            t--;
        if (t == n && strncasecmp(p, token, n) == 0)
            return true;
        p += len;
    }
    return false;
}

void http_reply_websocket(http_req *r, http_ws_fn fn, void *arg, void (*arg_free)(void *)) {
    if (r->capture) {
        http_capture_refuse(r, arg, arg_free);
        return;
    }
    const char *up = http_header(r, "Upgrade"), *conn = http_header(r, "Connection"),
               *ver = http_header(r, "Sec-WebSocket-Version"),
               *key = http_header(r, "Sec-WebSocket-Key");
    char accept[29];
    if (strcmp(r->method, "GET") != 0 || !up || !has_token(up, "websocket") || !conn ||
        !has_token(conn, "upgrade") || !ver || strcmp(ver, "13") != 0 ||
        sbx_ws_accept(key, accept) != 0) {
        if (arg_free)
            arg_free(arg);
        http_fail(r, SBX_EINVAL,
                  "this is a WebSocket endpoint: connect with a WebSocket client (GET with "
                  "Upgrade: websocket, Connection: Upgrade, Sec-WebSocket-Version: 13 and a "
                  "Sec-WebSocket-Key), with the same Authorization header");
        return;
    }
    ws_upgrade *u = calloc(1, sizeof *u);
    struct MHD_Response *resp = u ? MHD_create_response_for_upgrade(on_upgrade, u) : NULL;
    if (!resp) {
        free(u);
        if (arg_free)
            arg_free(arg);
        http_fail(r, SBX_EINTERNAL, "could not start a WebSocket reply");
        return;
    }
    *u = (ws_upgrade){fn, arg, arg_free};
    r->conn->ws = u;
    MHD_add_response_header(resp, MHD_HTTP_HEADER_UPGRADE, "websocket");
    MHD_add_response_header(resp, "Sec-WebSocket-Accept", accept);
    set_response(r->conn, MHD_HTTP_SWITCHING_PROTOCOLS, resp, NULL);
}

/* ---------------------------------------------------------------- dispatch */

static void answer_now(struct http_conn *c, sbx_code code, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
static void answer_now(struct http_conn *c, sbx_code code, const char *fmt, ...) {
    sbx_err e = {.code = code};
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(e.msg, sizeof e.msg, fmt, ap);
    va_end(ap);
    http_reply_error(&c->req, &e);
}

/* A body past MAX_BODY_BYTES: the 413 goes out at once, written on the connection's socket
 * (this is its thread, and MHD has sent nothing for the request yet), then the connection
 * closes the way nginx's lingering close does. Closing a socket that still has unread bytes
 * makes the kernel send a reset, and a client still sending its body would lose the 413 it
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

static enum MHD_Result refuse_body(struct http_conn *c, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));
static enum MHD_Result refuse_body(struct http_conn *c, const char *fmt, ...) {
    sbx_err e = {.code = SBX_ETOOLARGE};
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(e.msg, sizeof e.msg, fmt, ap);
    va_end(ap);
    c->status = sbx_code_status(e.code);
    c->refused = true;
    const union MHD_ConnectionInfo *ci =
        MHD_get_connection_info(c->mc, MHD_CONNECTION_INFO_CONNECTION_FD);
    cJSON *j = error_json(&e);
    char *body = cJSON_PrintUnformatted(j);
    cJSON_Delete(j);
    if (!ci || !body) {
        free(body);
        return MHD_NO;
    }
    int fd = ci->connect_fd;
    sbx_buf head;
    sbx_buf_init(&head, 4096);
    sbx_buf_addf(&head,
                 "HTTP/1.1 413 Payload Too Large\r\nConnection: close\r\n"
                 "Content-Type: application/json; charset=utf-8\r\nContent-Length: %zu\r\n"
                 "X-Request-Id: %s\r\n\r\n",
                 strlen(body), c->id);
    int64_t t0 = sbx_now_ms(), deadline = t0 + LINGER_MS;
    bool sent = head.data && send_all(fd, head.data, head.len, deadline) &&
                send_all(fd, body, strlen(body), deadline);
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
    LOG_D("http", "req=%s 413 %s; dropped %llu more bytes in %lld ms before closing", c->id,
          sent ? "sent" : "not sent", (unsigned long long)dropped, (long long)(sbx_now_ms() - t0));
    return MHD_NO;
}

static enum MHD_Result queue(struct http_conn *c) {
    if (!c->response)
        answer_now(c, SBX_EINTERNAL, "the handler produced no reply");
    if (!c->response)
        return MHD_NO;
    enum MHD_Result rc = MHD_queue_response(c->mc, (unsigned)c->status, c->response);
    MHD_destroy_response(c->response);
    c->response = NULL;
    return rc;
}

/* First call for a request: headers are in. Decide everything that needs no body. */
static void on_headers(struct http_conn *c, const char *method, const char *url) {
    if (atomic_fetch_add(&admitted, 1) >= sbx_cfg->max_connections) {
        atomic_fetch_sub(&admitted, 1);
        c->overflow = true; /* answered once the body is in: a client still sending it would
                             * see a reset instead of the answer */
        return;
    }
    c->admitted = true;
    bool open = !strcmp(method, "GET") && !strcmp(url, "/health");
    sbx_err e;
    const char *authz =
        MHD_lookup_connection_value(c->mc, MHD_HEADER_KIND, MHD_HTTP_HEADER_AUTHORIZATION);
    if (auth_check(authz, &c->who, &e) == SBX_OK) {
        c->req.token_label = c->who.label;
        c->req.authenticated = true;
        c->req.owner = c->who.id;
        c->req.admin = auth_is_admin(&c->who);
    } else if (!open) {
        http_reply_error(&c->req, &e);
        return;
    } /* an open route without a valid token: it answers strangers (less) */
    int rc = router_find(method, url, &c->match);
    if (rc == 404) {
        answer_now(c, SBX_ENOTFOUND, "no route for %.8s %.200s (see GET /openapi.json)", method,
                   url);
        return;
    }
    if (rc == 405) {
        http_add_header(&c->req, "Allow", c->match.allow);
        answer_now(c, SBX_EMETHOD, "%.8s is not allowed on %.200s; allowed: %s", method, url,
                   c->match.allow);
        return;
    }
    if (!c->match.route->open && !auth_allows(&c->who, c->match.route->scope)) {
        answer_now(c, SBX_EFORBIDDEN, "this token lacks the '%s' scope needed for %.8s %.200s",
                   c->match.route->scope, method, url);
        return;
    }
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
        sbx_buf_init(&c->body, (size_t)sbx_cfg->max_body_bytes);
        c->req.id = c->id;
        c->req.method = method;
        c->req.path = c->path;
        c->req.body = "";
        c->req.conn = c;
        on_headers(c, method, url);
        if (c->response) /* answered without reading the body */
            return queue(c);
        const char *cl =
            MHD_lookup_connection_value(mc, MHD_HEADER_KIND, MHD_HTTP_HEADER_CONTENT_LENGTH);
        if (cl && strtoull(cl, NULL, 10) > (unsigned long long)sbx_cfg->max_body_bytes)
            return refuse_body(c,
                               "request body of %.20s bytes exceeds the limit of %lld bytes "
                               "(MAX_BODY_BYTES)",
                               cl, (long long)sbx_cfg->max_body_bytes);
        return MHD_YES;
    }
    if (*upload_data_size) {
        size_t n = *upload_data_size;
        *upload_data_size = 0;
        if (c->overflow) {
            c->discarded += n;
            /* drain a bounded amount so the client can read the 429; then hang up */
            if (c->discarded > (uint64_t)sbx_cfg->max_body_bytes + 16u * 1024 * 1024)
                return MHD_NO;
            return MHD_YES;
        }
        if (sbx_buf_add(&c->body, upload_data, n) < 0) /* a chunked body past the cap */
            return refuse_body(c, "request body exceeds the limit of %lld bytes (MAX_BODY_BYTES)",
                               (long long)sbx_cfg->max_body_bytes);
        return MHD_YES;
    }
    if (c->dispatched)
        return MHD_YES;
    c->dispatched = true;
    if (c->overflow) {
        sbx_err e = {.code = SBX_EBUSY, .retry_after = 1};
        snprintf(e.msg, sizeof e.msg,
                 "the server is handling its MAX_CONNECTIONS (%lld) requests; retry in a second",
                 (long long)sbx_cfg->max_connections);
        http_add_header(&c->req, MHD_HTTP_HEADER_CONNECTION, "close");
        http_reply_error(&c->req, &e);
        return queue(c);
    }
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
    ws_release(c->ws); /* when the 101 never went out */
    free(c->ws);
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

sbx_code server_start(int *bound_port, sbx_err *e) {
    struct addrinfo hints = {.ai_family = AF_UNSPEC,
                             .ai_socktype = SOCK_STREAM,
                             .ai_flags = AI_NUMERICHOST | AI_PASSIVE},
                    *ai = NULL;
    char port[8];
    snprintf(port, sizeof port, "%d", (int)sbx_cfg->port);
    int gai = getaddrinfo(sbx_cfg->host, port, &hints, &ai);
    if (gai != 0)
        return sbx_fail(e, SBX_EINVAL, "HOST '%s' is not a numeric IPv4/IPv6 address: %s",
                        sbx_cfg->host, gai_strerror(gai));
    unsigned flags = MHD_USE_THREAD_PER_CONNECTION | MHD_USE_INTERNAL_POLLING_THREAD |
                     MHD_USE_POLL | MHD_USE_ITC | MHD_USE_ERROR_LOG | MHD_ALLOW_UPGRADE;
    if (ai->ai_family == AF_INET6)
        flags |= MHD_USE_IPv6;
    daemon_ = MHD_start_daemon(
        flags, (uint16_t)sbx_cfg->port, NULL, NULL, on_request, NULL, MHD_OPTION_EXTERNAL_LOGGER,
        mhd_log, NULL, MHD_OPTION_SOCK_ADDR, ai->ai_addr, MHD_OPTION_NOTIFY_COMPLETED, on_completed,
        NULL, MHD_OPTION_CONNECTION_TIMEOUT, (unsigned)sbx_cfg->conn_timeout_s,
        MHD_OPTION_CONNECTION_LIMIT, (unsigned)sbx_cfg->max_connections * 2,
        MHD_OPTION_PER_IP_CONNECTION_LIMIT, 0u, MHD_OPTION_THREAD_STACK_SIZE, (size_t)CONN_STACK,
        MHD_OPTION_LISTEN_BACKLOG_SIZE, 1024u, MHD_OPTION_END);
    freeaddrinfo(ai);
    if (!daemon_)
        return sbx_fail(e, SBX_EUNAVAIL,
                        "could not listen on %s:%d (in use? permission?); set HOST/PORT",
                        sbx_cfg->host, (int)sbx_cfg->port);
    const union MHD_DaemonInfo *info = MHD_get_daemon_info(daemon_, MHD_DAEMON_INFO_BIND_PORT);
    *bound_port = info ? info->port : (int)sbx_cfg->port;
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

int server_inflight(void) {
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
    pthread_mutex_lock(&producers_mu);
    while (producers > 0) {
        struct timespec ts;
        clock_gettime(CLOCK_REALTIME, &ts);
        ts.tv_sec += 1;
        pthread_cond_timedwait(&producers_cv, &producers_mu, &ts);
    }
    pthread_mutex_unlock(&producers_mu);
}
