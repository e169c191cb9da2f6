/* cdp.c -- the CDP WebSocket client: one libwebsockets service thread for every browser. */
#define _GNU_SOURCE
#include "cdp.h"

#include <errno.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <libwebsockets.h>

#include "../common/log.h"
#include "../common/utf8.h"
#include "../common/util.h"

enum { ST_INIT, ST_CONNECTING, ST_OPEN, ST_DEAD };

typedef struct outmsg {
    struct outmsg *next;
    size_t len;
    unsigned char data[]; /* LWS_PRE headroom, then the text */
} outmsg;

/* A call waiting for its reply. Each call (one command or a batch) has its own condition
 * variable, `wake`: a reply, a failure or the end of the connection signals that one caller
 * only, never the others waiting on this or any other connection. */
typedef struct pending {
    struct pending *next;
    int64_t id;
    char sid[64]; /* the target session it went to ("" = the browser) */
    bool done, want;
    bool refused; /* Chromium answered with an error */
    sbx_code code;
    char msg[256];
    cJSON *result;
    pthread_cond_t *wake; /* the caller's; signalled (mu held) when done */
} pending;

struct cdp_conn {
    cdp_conn *next;
    struct lws *wsi;
    int state;
    bool want_connect, want_close;
    bool had_wsi, wsi_gone; /* lws owns a wsi pointing at us until WSI_DESTROY */
    int port;
    char path[256];
    cdp_handlers h;
    outmsg *oq_head, *oq_tail;
    pending *pend;
    int64_t next_id;
    sbx_buf rx;
    int in_cb;
    pthread_cond_t cv; /* the connection's own changes: state, in_cb, wsi_gone, pend emptied */
};

/* One lock for the connection list, the queues and the pending calls (held briefly, never
 * while waiting for Chromium). */
static pthread_mutex_t mu = PTHREAD_MUTEX_INITIALIZER;
static cdp_conn *conns;
static struct lws_context *ctx;
static pthread_t svc_thread;
static bool svc_running, svc_stop;

/* The one door into the service thread: it runs service_requests() next. */
static void wake_service(void) {
    if (ctx)
        lws_cancel_service(ctx);
}

/* Locked: the call `p` is answered (its fields are set); wake its caller. */
static void finish_locked(pending *p) {
    p->done = true;
    pthread_cond_signal(p->wake);
}

/* Locked. Fail every pending call and drop the queue. */
static void fail_all_locked(cdp_conn *c, const char *why) {
    for (pending *p = c->pend; p; p = p->next) {
        if (!p->done) {
            p->code = SBX_ECRASHED;
            snprintf(p->msg, sizeof p->msg, "%s", why);
            finish_locked(p);
        }
    }
    while (c->oq_head) {
        outmsg *m = c->oq_head;
        c->oq_head = m->next;
        free(m);
    }
    c->oq_tail = NULL;
}

static void conn_dead(cdp_conn *c, const char *why) {
    pthread_mutex_lock(&mu);
    bool notify = c->state != ST_DEAD && !c->want_close && c->h.on_close;
    c->state = ST_DEAD;
    c->wsi = NULL;
    fail_all_locked(c, why);
    if (notify)
        c->in_cb++;
    pthread_cond_broadcast(&c->cv);
    pthread_mutex_unlock(&mu);
    if (notify) {
        c->h.on_close(c->h.ud, why);
        pthread_mutex_lock(&mu);
        c->in_cb--;
        pthread_cond_broadcast(&c->cv);
        pthread_mutex_unlock(&mu);
    }
}

static void dispatch(cdp_conn *c, const char *text, size_t len) {
    cJSON *msg = cJSON_ParseWithLength(text, len);
    if (!msg && len < CDP_MAX_MESSAGE) {
        /* JavaScript strings may hold lone surrogates (a string cut inside a pair), which
         * Chromium sends as backslash-u escapes and cJSON refuses: they become U+FFFD. */
        char *copy = malloc(len);
        if (copy) {
            memcpy(copy, text, len);
            if (utf8_json_fix_surrogates(copy, len))
                msg = cJSON_ParseWithLength(copy, len);
            free(copy);
        }
    }
    if (!msg) {
        LOG_W("cdp", "unparsable CDP message (%zu bytes) dropped", len);
        return;
    }
    const cJSON *id = cJSON_GetObjectItemCaseSensitive(msg, "id");
    if (cJSON_IsNumber(id)) {
        const cJSON *err0 = cJSON_GetObjectItemCaseSensitive(msg, "error");
        if (err0 && log_enabled(LOG_DEBUG)) {
            const cJSON *m0 = cJSON_GetObjectItemCaseSensitive(err0, "message");
            LOG_D("cdp", "reply %lld is an error: %s", (long long)id->valuedouble,
                  cJSON_IsString(m0) ? m0->valuestring : "?");
        }
        pthread_mutex_lock(&mu);
        for (pending *p = c->pend; p; p = p->next) {
            if (p->id != (int64_t)id->valuedouble || p->done)
                continue;
            const cJSON *err = cJSON_GetObjectItemCaseSensitive(msg, "error");
            if (err) {
                /* Chromium refused a command the server composed: its failure (or ours), never
                 * the client's. A caller that knows a refusal means the client's mistake (a
                 * cookie Chromium will not take) says so itself. */
                const cJSON *m = cJSON_GetObjectItemCaseSensitive(err, "message");
                p->code = SBX_EINTERNAL;
                p->refused = true;
                snprintf(p->msg, sizeof p->msg, "%s",
                         cJSON_IsString(m) ? m->valuestring : "an error without a message");
            } else {
                p->code = SBX_OK;
                if (p->want)
                    p->result = cJSON_DetachItemFromObject(msg, "result");
            }
            finish_locked(p);
            break;
        }
        pthread_mutex_unlock(&mu);
        cJSON_Delete(msg);
        return;
    }
    const cJSON *method = cJSON_GetObjectItemCaseSensitive(msg, "method");
    const cJSON *sid = cJSON_GetObjectItemCaseSensitive(msg, "sessionId");
    if (cJSON_IsString(method) && c->h.on_event) {
        pthread_mutex_lock(&mu);
        bool go = !c->want_close;
        if (go)
            c->in_cb++;
        pthread_mutex_unlock(&mu);
        if (go) {
            c->h.on_event(c->h.ud, method->valuestring,
                          cJSON_IsString(sid) ? sid->valuestring : NULL,
                          cJSON_GetObjectItemCaseSensitive(msg, "params"));
            pthread_mutex_lock(&mu);
            if (--c->in_cb == 0 && c->want_close)
                pthread_cond_broadcast(&c->cv); /* cdp_close waits for callbacks to end */
            pthread_mutex_unlock(&mu);
        }
    }
    cJSON_Delete(msg);
}

/* Service thread: act on what other threads asked for. */
static void service_requests(void) {
    for (;;) {
        cdp_conn *todo = NULL;
        int what = 0;
        pthread_mutex_lock(&mu);
        for (cdp_conn *c = conns; c; c = c->next) {
            if (c->want_connect) {
                c->want_connect = false;
                c->state = ST_CONNECTING;
                todo = c;
                what = 1;
                break;
            }
        }
        if (!todo) {
            for (cdp_conn *c = conns; c; c = c->next)
                if (c->wsi && (c->oq_head || c->want_close))
                    lws_callback_on_writable(c->wsi);
        }
        pthread_mutex_unlock(&mu);
        if (!todo)
            return;
        if (what == 1) {
            struct lws_client_connect_info ci;
            memset(&ci, 0, sizeof ci);
            ci.context = ctx;
            ci.address = "127.0.0.1";
            ci.port = todo->port;
            ci.path = todo->path;
            ci.host = "127.0.0.1";
            ci.ietf_version_or_minus_one = -1;
            ci.userdata = todo;
            ci.local_protocol_name = "cdp";
            pthread_mutex_lock(&mu);
            todo->had_wsi = true;
            pthread_mutex_unlock(&mu);
            struct lws *w = lws_client_connect_via_info(&ci);
            pthread_mutex_lock(&mu);
            if (w && todo->state == ST_CONNECTING)
                todo->wsi = w;
            pthread_mutex_unlock(&mu);
            if (!w) {
                conn_dead(todo, "could not connect to Chromium's DevTools socket");
                pthread_mutex_lock(&mu);
                todo->wsi_gone = true;
                pthread_cond_broadcast(&todo->cv);
                pthread_mutex_unlock(&mu);
            }
        }
    }
}

static int cb(struct lws *wsi, enum lws_callback_reasons reason, void *user, void *in, size_t len) {
    cdp_conn *c = user;
    switch (reason) {
    case LWS_CALLBACK_EVENT_WAIT_CANCELLED:
        service_requests();
        return 0;
    case LWS_CALLBACK_CLIENT_ESTABLISHED:
        pthread_mutex_lock(&mu);
        c->wsi = wsi;
        c->state = ST_OPEN;
        if (c->oq_head || c->want_close)
            lws_callback_on_writable(wsi);
        pthread_cond_broadcast(&c->cv);
        pthread_mutex_unlock(&mu);
        return 0;
    case LWS_CALLBACK_CLIENT_CONNECTION_ERROR:
        if (c)
            conn_dead(c, "the DevTools connection failed");
        return 0;
    case LWS_CALLBACK_CLIENT_CLOSED:
        if (c)
            conn_dead(c, "Chromium closed the DevTools connection");
        return 0;
    case LWS_CALLBACK_WSI_DESTROY:
        if (c) {
            conn_dead(c, "Chromium closed the DevTools connection");
            /* The last touch of `c` from lws: cdp_close may free it from here on. */
            pthread_mutex_lock(&mu);
            c->wsi_gone = true;
            pthread_cond_broadcast(&c->cv);
            pthread_mutex_unlock(&mu);
        }
        return 0;
    case LWS_CALLBACK_CLIENT_RECEIVE:
        if (!c)
            return -1;
        if (lws_is_first_fragment(wsi)) {
            sbx_buf_free(&c->rx);
            sbx_buf_init(&c->rx, CDP_MAX_MESSAGE);
        }
        if (sbx_buf_add(&c->rx, in, len) != 0) {
            LOG_W("cdp", "CDP message over %u bytes; closing the connection", CDP_MAX_MESSAGE);
            sbx_buf_free(&c->rx);
            return -1;
        }
        if (lws_is_final_fragment(wsi) && !lws_remaining_packet_payload(wsi)) {
            if (c->rx.len)
                dispatch(c, c->rx.data, c->rx.len);
            sbx_buf_free(&c->rx);
            sbx_buf_init(&c->rx, CDP_MAX_MESSAGE);
        }
        return 0;
    case LWS_CALLBACK_CLIENT_WRITEABLE: {
        if (!c)
            return -1;
        pthread_mutex_lock(&mu);
        if (c->want_close) {
            pthread_mutex_unlock(&mu);
            return -1;
        }
        outmsg *m = c->oq_head;
        if (m) {
            c->oq_head = m->next;
            if (!c->oq_head)
                c->oq_tail = NULL;
        }
        bool more = c->oq_head != NULL;
        pthread_mutex_unlock(&mu);
        if (m) {
            int n = lws_write(wsi, m->data + LWS_PRE, m->len, LWS_WRITE_TEXT);
            free(m);
            if (n < 0)
                return -1;
        }
        if (more)
            lws_callback_on_writable(wsi);
        return 0;
    }
    default:
        return 0;
    }
}

static const struct lws_protocols protocols[] = {
    {"cdp", cb, 0, 65536, 0, NULL, 0},
    {NULL, NULL, 0, 0, 0, NULL, 0},
};

static void *service_main(void *arg) {
    (void)arg;
    for (;;) {
        pthread_mutex_lock(&mu);
        bool stop = svc_stop;
        pthread_mutex_unlock(&mu);
        if (stop)
            break;
        lws_service(ctx, 0);
    }
    return NULL;
}

int cdp_start(sbx_err *e) {
    if (svc_running)
        return 0;
    lws_set_log_level(LLL_ERR, NULL);
    struct lws_context_creation_info info;
    memset(&info, 0, sizeof info);
    info.port = CONTEXT_PORT_NO_LISTEN;
    info.protocols = protocols;
    info.gid = -1;
    info.uid = -1;
    ctx = lws_create_context(&info);
    if (!ctx)
        return sbx_fail(e, SBX_EINTERNAL, "could not create the WebSocket client context");
    svc_stop = false;
    if (pthread_create(&svc_thread, NULL, service_main, NULL) != 0) {
        lws_context_destroy(ctx);
        ctx = NULL;
        return sbx_fail(e, SBX_EINTERNAL, "could not start the CDP service thread");
    }
    svc_running = true;
    return 0;
}

void cdp_stop(void) {
    if (!svc_running)
        return;
    pthread_mutex_lock(&mu);
    svc_stop = true;
    pthread_mutex_unlock(&mu);
    wake_service();
    pthread_join(svc_thread, NULL);
    lws_context_destroy(ctx);
    ctx = NULL;
    svc_running = false;
}

cdp_conn *cdp_connect(int port, const char *path, const cdp_handlers *h, int64_t timeout_ms,
                      sbx_err *e) {
    if (!svc_running) {
        sbx_fail(e, SBX_EUNAVAIL, "the CDP service is not running");
        return NULL;
    }
    cdp_conn *c = calloc(1, sizeof *c);
    if (!c || sbx_cond_init_mono(&c->cv) != 0) {
        free(c);
        sbx_fail(e, SBX_EINTERNAL, "out of memory");
        return NULL;
    }
    c->port = port;
    snprintf(c->path, sizeof c->path, "%s", path);
    c->h = *h;
    c->next_id = 1;
    sbx_buf_init(&c->rx, CDP_MAX_MESSAGE);
    c->want_connect = true;
    pthread_mutex_lock(&mu);
    c->next = conns;
    conns = c;
    pthread_mutex_unlock(&mu);
    wake_service();
    int64_t deadline = sbx_now_ms() + timeout_ms;
    pthread_mutex_lock(&mu);
    while ((c->state == ST_INIT || c->state == ST_CONNECTING) && sbx_now_ms() < deadline)
        sbx_cond_wait_until(&c->cv, &mu, deadline);
    int st = c->state;
    pthread_mutex_unlock(&mu);
    if (st != ST_OPEN) {
        sbx_fail(e, st == ST_DEAD ? SBX_ECRASHED : SBX_ETIMEOUT,
                 "could not open Chromium's DevTools WebSocket");
        cdp_close(c);
        return NULL;
    }
    return c;
}

void cdp_close(cdp_conn *c) {
    if (!c)
        return;
    pthread_mutex_lock(&mu);
    c->want_close = true;
    c->want_connect = false;
    pthread_mutex_unlock(&mu);
    if (ctx)
        wake_service();
    int64_t deadline = sbx_now_ms() + 5000;
    pthread_mutex_lock(&mu);
    while (((c->had_wsi && !c->wsi_gone) || c->in_cb) && sbx_now_ms() < deadline)
        sbx_cond_wait_until(&c->cv, &mu, deadline);
    bool safe = !((c->had_wsi && !c->wsi_gone) || c->in_cb);
    fail_all_locked(c, "the session was closed");
    for (cdp_conn **pp = &conns; *pp; pp = &(*pp)->next) {
        if (*pp == c) {
            *pp = c->next;
            break;
        }
    }
    pthread_mutex_unlock(&mu);
    if (!safe) {
        LOG_W("cdp", "a DevTools connection did not close in time; leaving it to the context");
        return;
    }
    /* Calls still waiting hold pointers to their own pending records only; wait them out. */
    pthread_mutex_lock(&mu);
    while (c->pend && sbx_now_ms() < deadline + 5000)
        sbx_cond_wait_until(&c->cv, &mu, deadline + 5000);
    bool idle = c->pend == NULL;
    pthread_mutex_unlock(&mu);
    if (!idle)
        return;
    sbx_buf_free(&c->rx);
    pthread_cond_destroy(&c->cv);
    free(c);
}

static outmsg *build(cdp_conn *c, int64_t id, const char *sid, const char *method, cJSON *params) {
    (void)c;
    cJSON *m = cJSON_CreateObject();
    cJSON_AddNumberToObject(m, "id", (double)id);
    cJSON_AddStringToObject(m, "method", method);
    if (params)
        cJSON_AddItemToObject(m, "params", params);
    if (sid)
        cJSON_AddStringToObject(m, "sessionId", sid);
    char *txt = cJSON_PrintUnformatted(m);
    cJSON_Delete(m);
    if (!txt)
        return NULL;
    size_t n = strlen(txt);
    outmsg *o = malloc(sizeof *o + LWS_PRE + n + 1);
    if (o) {
        o->next = NULL;
        o->len = n;
        memcpy(o->data + LWS_PRE, txt, n + 1);
    }
    free(txt);
    return o;
}

static void enqueue_locked(cdp_conn *c, outmsg *o) {
    if (c->oq_tail)
        c->oq_tail->next = o;
    else
        c->oq_head = o;
    c->oq_tail = o;
}

void cdp_send(cdp_conn *c, const char *sid, const char *method, cJSON *params) {
    pthread_mutex_lock(&mu);
    int64_t id = c->next_id++;
    bool ok = c->state == ST_OPEN && !c->want_close;
    pthread_mutex_unlock(&mu);
    if (!ok) {
        cJSON_Delete(params);
        return;
    }
    outmsg *o = build(c, id, sid, method, params);
    if (!o)
        return;
    pthread_mutex_lock(&mu);
    enqueue_locked(c, o);
    pthread_mutex_unlock(&mu);
    wake_service();
}

void cdp_fail_session(cdp_conn *c, const char *sid, sbx_code code, const char *why) {
    pthread_mutex_lock(&mu);
    for (pending *p = c->pend; p; p = p->next) {
        if (!p->done && strcmp(p->sid, sid) == 0) {
            p->code = code;
            snprintf(p->msg, sizeof p->msg, "%s", why);
            finish_locked(p);
        }
    }
    pthread_mutex_unlock(&mu);
}

bool cdp_dead(cdp_conn *c) {
    pthread_mutex_lock(&mu);
    bool d = c->state == ST_DEAD || c->want_close;
    pthread_mutex_unlock(&mu);
    return d;
}

/* Send cmds[0..n) to session `sid` back to back and wait for every reply; *result (if
 * non-NULL) receives the last command's "result". The first failure is the one reported. */
static sbx_code call_all(cdp_conn *c, const char *sid, const cdp_cmd *cmds, int n,
                         int64_t timeout_ms, cJSON **result, sbx_err *e) {
    if (result)
        *result = NULL;
    pending p[CDP_MAX_BATCH];
    outmsg *o[CDP_MAX_BATCH];
    memset(p, 0, sizeof p);
    memset(o, 0, sizeof o);
    pthread_mutex_lock(&mu);
    for (int i = 0; i < n; i++)
        p[i].id = c->next_id++;
    bool ok = c->state == ST_OPEN && !c->want_close;
    pthread_mutex_unlock(&mu);
    bool built = true;
    for (int i = 0; i < n; i++) {
        o[i] = ok ? build(c, p[i].id, sid, cmds[i].method, cmds[i].params) : NULL;
        if (ok && !o[i])
            built = false;
        if (!ok)
            cJSON_Delete(cmds[i].params);
    }
    if (!ok)
        return sbx_fail(e, SBX_ECRASHED, "the session's Chromium is gone");
    if (!built) {
        for (int i = 0; i < n; i++)
            free(o[i]);
        return sbx_fail(e, SBX_EINTERNAL, "out of memory");
    }
    p[n - 1].want = result != NULL;
    pthread_cond_t wake;
    if (sbx_cond_init_mono(&wake) != 0) {
        for (int i = 0; i < n; i++)
            free(o[i]);
        return sbx_fail(e, SBX_EINTERNAL, "could not set up a condition variable");
    }
    for (int i = 0; i < n; i++)
        p[i].wake = &wake;
    int64_t deadline = sbx_deadline_in(timeout_ms);
    pthread_mutex_lock(&mu);
    if (c->state != ST_OPEN || c->want_close) {
        pthread_mutex_unlock(&mu);
        pthread_cond_destroy(&wake);
        for (int i = 0; i < n; i++)
            free(o[i]);
        return sbx_fail(e, SBX_ECRASHED, "the session's Chromium is gone");
    }
    for (int i = 0; i < n; i++) {
        snprintf(p[i].sid, sizeof p[i].sid, "%s", sid ? sid : "");
        p[i].next = c->pend;
        c->pend = &p[i];
        enqueue_locked(c, o[i]);
    }
    pthread_mutex_unlock(&mu);
    wake_service();
    pthread_mutex_lock(&mu);
    int late = -1; /* the first command without a reply */
    for (;;) {
        late = -1;
        for (int i = n - 1; i >= 0; i--)
            if (!p[i].done)
                late = i;
        if (late < 0 || sbx_now_ms() >= deadline)
            break;
        sbx_cond_wait_until(&wake, &mu, deadline);
    }
    for (pending **pp = &c->pend; *pp;) {
        bool ours = false;
        for (int i = 0; i < n && !ours; i++)
            ours = *pp == &p[i];
        if (ours)
            *pp = (*pp)->next;
        else
            pp = &(*pp)->next;
    }
    if (c->want_close && !c->pend)
        pthread_cond_broadcast(&c->cv); /* cdp_close waits for the last call to leave */
    pthread_mutex_unlock(&mu);
    pthread_cond_destroy(&wake);
    sbx_code rc = SBX_OK;
    for (int i = 0; i < n && rc == SBX_OK; i++) {
        if (!p[i].done || p[i].code == SBX_OK)
            continue;
        if (p[i].refused)
            rc = sbx_fail(e, p[i].code, "Chromium refused %s: %s", cmds[i].method, p[i].msg);
        else
            rc = sbx_fail(e, p[i].code, "%s: %s", cmds[i].method, p[i].msg);
    }
    if (rc == SBX_OK && late >= 0)
        rc = sbx_fail(e, SBX_ETIMEOUT, "%s did not answer within %lld ms", cmds[late].method,
                      (long long)timeout_ms);
    if (rc == SBX_OK && result)
        *result = p[n - 1].result;
    else
        cJSON_Delete(p[n - 1].result);
    return rc;
}

sbx_code cdp_call(cdp_conn *c, const char *sid, const char *method, cJSON *params,
                  int64_t timeout_ms, cJSON **result, sbx_err *e) {
    cdp_cmd one = {method, params};
    return call_all(c, sid, &one, 1, timeout_ms, result, e);
}

sbx_code cdp_call_all(cdp_conn *c, const char *sid, const cdp_cmd *cmds, int n, int64_t timeout_ms,
                      sbx_err *e) {
    if (n < 1 || n > CDP_MAX_BATCH) {
        for (int i = 0; i < n; i++)
            cJSON_Delete(cmds[i].params);
        return sbx_fail(e, SBX_EINTERNAL, "a batch of %d CDP commands", n);
    }
    return call_all(c, sid, cmds, n, timeout_ms, NULL, e);
}

/* ---- for unit tests: a connection without a socket ---- */

cdp_conn *cdp_test_conn(const cdp_handlers *h) {
    cdp_conn *c = calloc(1, sizeof *c);
    if (!c || sbx_cond_init_mono(&c->cv) != 0) {
        free(c);
        return NULL;
    }
    c->h = *h;
    c->next_id = 1;
    c->state = ST_OPEN;
    sbx_buf_init(&c->rx, CDP_MAX_MESSAGE);
    return c;
}

char *cdp_test_sent(cdp_conn *c) {
    pthread_mutex_lock(&mu);
    outmsg *m = c->oq_head;
    if (m) {
        c->oq_head = m->next;
        if (!c->oq_head)
            c->oq_tail = NULL;
    }
    pthread_mutex_unlock(&mu);
    if (!m)
        return NULL;
    char *t = strdup((const char *)m->data + LWS_PRE);
    free(m);
    return t;
}

void cdp_test_receive(cdp_conn *c, const char *text) {
    dispatch(c, text, strlen(text));
}
