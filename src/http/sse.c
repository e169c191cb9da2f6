/* sse.c -- streamed reply bodies: a bounded ring filled by a producer thread and emptied by
 * the connection's thread through libmicrohttpd's content-reader callback (see sse.h).
 *
 * A producer that finds the ring full waits for the reader, at most the stall time
 * (CONN_TIMEOUT_S: a client that reads nothing for that long counts as gone) and at most
 * until the producer's own deadline (http_stream_deadline), so a stalled reader cannot hold
 * a run past its deadline. A silent SSE stream sends
 * one comment line (SSE_KEEPALIVE) per SSE_KEEPALIVE_MS of silence.
 */
#include "sse.h"

#include <errno.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <cjson/cJSON.h>
#include <microhttpd.h>

#include "../common/log.h"
#include "../common/utf8.h"
#include "../common/util.h"
#include "conn.h"
#include "dispatch.h"

struct http_stream {
    pthread_mutex_t mu;
    pthread_cond_t cv;
    char ring[SSE_RING_BYTES];
    size_t head, len;
    bool producer_done, client_gone;
    bool sse;            /* text/event-stream: keep-alive comments while silent */
    bool text;           /* a text body: writes are repaired to well-formed UTF-8 */
    int64_t deadline_ms; /* the producer's own deadline (0: none; see http_stream_deadline) */
    char *owed;          /* the rest of a frame cut by the deadline, sent before the next one */
    size_t owed_len;
    int refs;
    http_stream_fn fn;
    void *arg;
    void (*arg_free)(void *);
};

static int64_t stall_ms = 30000;

/* stream producers still running */
static pthread_mutex_t producers_mu = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t producers_cv;
static pthread_once_t producers_once = PTHREAD_ONCE_INIT;
static int producers = 0;

void sse_set_stall_ms(int64_t ms) {
    stall_ms = ms;
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

static void monotonic_cond(pthread_cond_t *cv) {
    pthread_condattr_t ca;
    pthread_condattr_init(&ca);
    pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
    pthread_cond_init(cv, &ca);
    pthread_condattr_destroy(&ca);
}

static void producers_init(void) {
    monotonic_cond(&producers_cv);
}

/* ---------------------------------------------------------------- the ring */

http_stream *sse_stream_new(const char *content_type) {
    http_stream *s = calloc(1, sizeof *s);
    if (!s)
        return NULL;
    pthread_mutex_init(&s->mu, NULL);
    monotonic_cond(&s->cv);
    s->refs = 2; /* the reader's and the producer's */
    s->sse = content_type && !strncmp(content_type, "text/event-stream", 17);
    s->text = http_is_text_type(content_type);
    return s;
}

void sse_stream_unref(http_stream *s) {
    pthread_mutex_lock(&s->mu);
    int left = --s->refs;
    pthread_mutex_unlock(&s->mu);
    if (left == 0) {
        pthread_mutex_destroy(&s->mu);
        pthread_cond_destroy(&s->cv);
        free(s->owed);
        free(s);
    }
}

ssize_t sse_stream_read(http_stream *s, char *out, size_t max, int64_t wait_ms) {
    struct timespec until;
    deadline_in(&until, wait_ms);
    pthread_mutex_lock(&s->mu);
    while (s->len == 0 && !s->producer_done)
        if (pthread_cond_timedwait(&s->cv, &s->mu, &until) == ETIMEDOUT && s->len == 0 &&
            !s->producer_done) {
            pthread_mutex_unlock(&s->mu);
            size_t n = sizeof SSE_KEEPALIVE - 1;
            if (!s->sse || n > max)
                return 0;
            memcpy(out, SSE_KEEPALIVE, n);
            return (ssize_t)n;
        }
    if (s->len == 0) {
        pthread_mutex_unlock(&s->mu);
        return -1;
    }
    size_t n = 0;
    while (n < max && s->len) {
        size_t chunk = SSE_RING_BYTES - s->head;
        if (chunk > s->len)
            chunk = s->len;
        if (chunk > max - n)
            chunk = max - n;
        memcpy(out + n, s->ring + s->head, chunk);
        s->head = (s->head + chunk) % SSE_RING_BYTES;
        s->len -= chunk;
        n += chunk;
    }
    pthread_cond_broadcast(&s->cv);
    pthread_mutex_unlock(&s->mu);
    return (ssize_t)n;
}

void sse_stream_end(http_stream *s) {
    pthread_mutex_lock(&s->mu);
    s->producer_done = true;
    pthread_cond_broadcast(&s->cv);
    pthread_mutex_unlock(&s->mu);
}

void sse_stream_client_gone(http_stream *s) {
    pthread_mutex_lock(&s->mu);
    s->client_gone = true;
    pthread_cond_broadcast(&s->cv);
    pthread_mutex_unlock(&s->mu);
}

/* Copy `len` bytes into the ring, waiting while it is full: at most the stall time (then the
 * client counts as gone), and at most until the producer's deadline (then this write fails,
 * once: the producer should end its work; the stream stays open for its last words). A frame
 * is never cut on the wire: when the deadline passes inside one, its rest is kept (owed) and
 * goes out first on the next write, before the producer's last words. Called with s->mu
 * held. */
static int ring_put_locked(http_stream *s, const char *p, size_t len) {
    size_t put = 0;
    while (put < len) {
        int64_t stall_until = sbx_now_ms() + stall_ms;
        while (s->len == SSE_RING_BYTES && !s->client_gone) {
            int64_t now = sbx_now_ms();
            if (s->deadline_ms && now >= s->deadline_ms) {
                s->deadline_ms = 0;
                if (put > 0 && !(s->owed = malloc(len - put)))
                    s->client_gone = true; /* cannot keep the frame whole: end the stream */
                else if (put > 0) {
                    memcpy(s->owed, p + put, len - put);
                    s->owed_len = len - put;
                }
                LOG_I("http", "a streaming client is not reading; its producer's deadline passed");
                return -1;
            }
            if (now >= stall_until) {
                s->client_gone = true;
                LOG_W("http", "a streaming client read nothing for %lld ms; ending its stream",
                      (long long)stall_ms);
                break;
            }
            int64_t until =
                s->deadline_ms && s->deadline_ms < stall_until ? s->deadline_ms : stall_until;
            struct timespec ts;
            deadline_in(&ts, until - now);
            pthread_cond_timedwait(&s->cv, &s->mu, &ts);
        }
        if (s->client_gone)
            return -1;
        size_t tail = (s->head + s->len) % SSE_RING_BYTES;
        size_t chunk = tail >= s->head ? SSE_RING_BYTES - tail : s->head - tail;
        if (chunk > SSE_RING_BYTES - s->len)
            chunk = SSE_RING_BYTES - s->len;
        if (chunk > len - put)
            chunk = len - put;
        memcpy(s->ring + tail, p + put, chunk);
        s->len += chunk;
        put += chunk;
        pthread_cond_broadcast(&s->cv);
    }
    return 0;
}

static int ring_put(http_stream *s, const char *p, size_t len) {
    pthread_mutex_lock(&s->mu);
    int rc = 0;
    if (s->owed) { /* the deadline has passed: only the stall time bounds this */
        char *owed = s->owed;
        s->owed = NULL;
        rc = ring_put_locked(s, owed, s->owed_len);
        free(owed);
    }
    if (rc == 0)
        rc = ring_put_locked(s, p, len);
    pthread_mutex_unlock(&s->mu);
    return rc;
}

void http_stream_deadline(http_stream *s, int64_t deadline_ms) {
    pthread_mutex_lock(&s->mu);
    s->deadline_ms = deadline_ms;
    pthread_cond_broadcast(&s->cv);
    pthread_mutex_unlock(&s->mu);
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

int http_stream_alive(http_stream *s) {
    pthread_mutex_lock(&s->mu);
    bool gone = s->client_gone;
    pthread_mutex_unlock(&s->mu);
    return gone ? -1 : 0;
}

int http_stream_sse(http_stream *s, const char *event, const char *data) {
    /* the frame's exact size: "event: E\n", "data: L\n" per line, "\n" */
    size_t size = 8 + strlen(event) + 1;
    for (const char *p = data;; p++) {
        const char *nl = strchr(p, '\n');
        size += 7 + (nl ? (size_t)(nl - p) : strlen(p));
        if (!nl)
            break;
        p = nl;
    }
    sbx_buf b;
    sbx_buf_init(&b, size);
    int bad = sbx_buf_addf(&b, "event: %s\n", event);
    for (const char *p = data;;) {
        const char *nl = strchr(p, '\n');
        size_t n = nl ? (size_t)(nl - p) : strlen(p);
        bad |= sbx_buf_add(&b, "data: ", 6) | sbx_buf_add(&b, p, n) | sbx_buf_add(&b, "\n", 1);
        if (!nl)
            break;
        p = nl + 1;
    }
    bad |= sbx_buf_add(&b, "\n", 1);
    int rc = !bad ? http_stream_write(s, b.data, b.len) : -1; /* bad: out of memory */
    sbx_buf_free(&b);
    return rc;
}

int http_stream_output(http_stream *s, int stream, const char *data, size_t len,
                       const char *id_field, int64_t timeout_ms) {
    if (stream == 0)
        http_stream_deadline(s, sbx_now_ms() + timeout_ms);
    if (stream == 3) /* the reader sends the keep-alives; this only asks */
        return http_stream_alive(s);
    cJSON *o = cJSON_CreateObject();
    const char *event = stream == 0 ? "start" : stream == 1 ? "stdout" : "stderr";
    char *copy = strndup(data, len);
    cJSON_AddStringToObject(o, stream == 0 ? id_field : "data", copy ? copy : "");
    free(copy);
    char *text = cJSON_PrintUnformatted(o);
    cJSON_Delete(o);
    int rc = text ? http_stream_sse(s, event, text) : -1;
    free(text);
    return rc;
}

/* ---------------------------------------------------------------- libmicrohttpd glue */

static ssize_t mhd_read(void *cls, uint64_t pos, char *out, size_t max) {
    (void)pos;
    for (;;) {
        ssize_t n = sse_stream_read(cls, out, max, SSE_KEEPALIVE_MS);
        if (n < 0)
            return MHD_CONTENT_READER_END_OF_STREAM;
        if (n > 0)
            return n;
    }
}

static void mhd_done(void *cls) {
    sse_stream_client_gone(cls);
    sse_stream_unref(cls);
}

static void *producer_main(void *arg) {
    http_stream *s = arg;
    s->fn(s, s->arg);
    ring_put(s, "", 0); /* the rest of a frame the deadline cut, if any */
    if (s->arg_free)
        s->arg_free(s->arg);
    sse_stream_end(s);
    sse_stream_unref(s);
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
    pthread_once(&producers_once, producers_init);
    http_stream *s = sse_stream_new(content_type);
    struct MHD_Response *resp = NULL;
    if (s) {
        s->fn = fn;
        s->arg = arg;
        s->arg_free = arg_free;
        resp =
            MHD_create_response_from_callback(MHD_SIZE_UNKNOWN, 16 * 1024, mhd_read, s, mhd_done);
    }
    if (!resp) {
        if (s) {
            s->refs = 1;
            sse_stream_unref(s);
        }
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
    int rc = pthread_create(&t, &attr, producer_main, s);
    if (rc == 0)
        producers++;
    pthread_mutex_unlock(&producers_mu);
    pthread_attr_destroy(&attr);
    if (rc != 0) {
        /* destroying the response runs mhd_done, dropping the response's ref */
        s->refs = 1;
        MHD_destroy_response(resp);
        if (arg_free)
            arg_free(arg);
        http_fail(r, SBX_EINTERNAL, "could not start a streamed reply");
        return;
    }
    http_conn_set_response(r->conn, status, resp, content_type);
}

int sse_wait_producers(int64_t deadline_ms) {
    pthread_once(&producers_once, producers_init);
    pthread_mutex_lock(&producers_mu);
    while (producers > 0 && sbx_now_ms() < deadline_ms) {
        int64_t left = deadline_ms - sbx_now_ms();
        struct timespec ts;
        deadline_in(&ts, left < 1000 ? left : 1000);
        pthread_cond_timedwait(&producers_cv, &producers_mu, &ts);
    }
    int left = producers;
    pthread_mutex_unlock(&producers_mu);
    return left;
}
