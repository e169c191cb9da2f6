/* events.c -- a browser session's live events: CDP events made into typed frames, a bounded
 * ring of them, and the readers' side (see events.h).
 *
 * A response frame is made when a request finished loading (Network.loadingFinished: its size
 * is known then) from what its request and response said; those wait in a small table of
 * pending requests (PENDING slots, the oldest overwritten when it is full), so the frame
 * carries url, method, status, type and size without any body.
 */
#define _GNU_SOURCE
#include "events.h"

#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "../common/node.h"

#define PENDING        256
#define READ_LINGER_MS 4 /* how long a reader woken by a frame waits for the ones behind it */

typedef struct frame {
    uint64_t seq;
    unsigned type;
    char *text; /* the whole SSE frame */
    size_t len;
} frame;

typedef struct pending {
    char req[64]; /* "" when free */
    char tab[SBX_ID_LEN];
    char *url;
    char method[16];
    char type[24];
    char mime[64];
    int status;
} pending;

struct br_events {
    char session[SBX_SID_LEN];
    pthread_mutex_t mu;
    pthread_cond_t cv;
    int refs;
    frame ring[BR_EVENTS_MAX_FRAMES];
    size_t head, count, bytes; /* head: the oldest frame's slot */
    uint64_t next_seq;         /* the seq of the next frame */
    bool ended;
    char end_why[128];
    pending pend[PENDING];
    size_t pend_next; /* the slot the next request takes when none is free */
};

static const char *const TYPE_NAMES[] = {"navigation", "console",  "request", "response", "dialog",
                                         "tab",        "download", "crash",   "blocked"};

static const char *type_name(unsigned bit) {
    for (unsigned i = 0; i < sizeof TYPE_NAMES / sizeof TYPE_NAMES[0]; i++)
        if (bit == 1u << i)
            return TYPE_NAMES[i];
    return "unknown";
}

unsigned br_events_type_bit(const char *name, size_t len) {
    for (unsigned i = 0; i < sizeof TYPE_NAMES / sizeof TYPE_NAMES[0]; i++)
        if (strlen(TYPE_NAMES[i]) == len && strncmp(TYPE_NAMES[i], name, len) == 0)
            return 1u << i;
    return 0;
}

br_events *br_events_new(const char *session_id) {
    br_events *ev = calloc(1, sizeof *ev);
    if (!ev)
        return NULL;
    snprintf(ev->session, sizeof ev->session, "%s", session_id ? session_id : "");
    pthread_mutex_init(&ev->mu, NULL);
    if (sbx_cond_init_mono(&ev->cv) != 0) {
        pthread_mutex_destroy(&ev->mu);
        free(ev);
        return NULL;
    }
    ev->refs = 1;
    ev->next_seq = 1;
    return ev;
}

br_events *br_events_ref(br_events *ev) {
    pthread_mutex_lock(&ev->mu);
    ev->refs++;
    pthread_mutex_unlock(&ev->mu);
    return ev;
}

void br_events_unref(br_events *ev) {
    if (!ev)
        return;
    pthread_mutex_lock(&ev->mu);
    int left = --ev->refs;
    pthread_mutex_unlock(&ev->mu);
    if (left > 0)
        return;
    for (size_t i = 0; i < ev->count; i++)
        free(ev->ring[(ev->head + i) % BR_EVENTS_MAX_FRAMES].text);
    for (size_t i = 0; i < PENDING; i++)
        free(ev->pend[i].url);
    pthread_mutex_destroy(&ev->mu);
    pthread_cond_destroy(&ev->cv);
    free(ev);
}

/* ---- the ring ---- */

/* Locked: drop the oldest frame. */
static void drop_oldest_locked(br_events *ev) {
    frame *f = &ev->ring[ev->head];
    ev->bytes -= f->len;
    free(f->text);
    f->text = NULL;
    ev->head = (ev->head + 1) % BR_EVENTS_MAX_FRAMES;
    ev->count--;
}

void br_events_emit(br_events *ev, unsigned type, const char *tab_id, cJSON *data) {
    if (!ev || !data) {
        cJSON_Delete(data);
        return;
    }
    const char *name = type_name(type);
    cJSON_AddStringToObject(data, "type", name);
    cJSON_AddStringToObject(data, "session", ev->session);
    cJSON_AddStringToObject(data, "tabId", tab_id ? tab_id : "");
    cJSON_AddNumberToObject(data, "ts", (double)sbx_wall_ms());
    /* The seq is given and the frame kept under one lock, so the ring's seqs are consecutive
     * whichever thread emits (the CDP service thread, or a call that closed a tab). */
    pthread_mutex_lock(&ev->mu);
    char *json = NULL, *text = NULL;
    int n = -1;
    uint64_t seq = ev->next_seq;
    if (!ev->ended) {
        cJSON_AddNumberToObject(data, "seq", (double)seq);
        json = cJSON_PrintUnformatted(data);
    }
    size_t cap = json ? strlen(json) + strlen(name) + 64 : 0;
    if (json && (text = malloc(cap)) != NULL)
        n = snprintf(text, cap, "id: %llu\nevent: %s\ndata: %s\n\n", (unsigned long long)seq, name,
                     json);
    free(json);
    if (n > 0) {
        while (ev->count &&
               (ev->count == BR_EVENTS_MAX_FRAMES || ev->bytes + (size_t)n > BR_EVENTS_MAX_BYTES))
            drop_oldest_locked(ev);
        frame *f = &ev->ring[(ev->head + ev->count) % BR_EVENTS_MAX_FRAMES];
        f->seq = seq;
        f->type = type;
        f->text = text;
        f->len = (size_t)n;
        ev->count++;
        ev->bytes += f->len;
        ev->next_seq++;
        pthread_cond_broadcast(&ev->cv);
    } else {
        free(text);
    }
    pthread_mutex_unlock(&ev->mu);
    cJSON_Delete(data);
}

void br_events_end(br_events *ev, const char *why) {
    if (!ev)
        return;
    pthread_mutex_lock(&ev->mu);
    if (!ev->ended) {
        ev->ended = true;
        snprintf(ev->end_why, sizeof ev->end_why, "%s", why ? why : "the session ended");
    }
    pthread_cond_broadcast(&ev->cv);
    pthread_mutex_unlock(&ev->mu);
}

uint64_t br_events_next_seq(br_events *ev) {
    pthread_mutex_lock(&ev->mu);
    uint64_t s = ev->next_seq;
    pthread_mutex_unlock(&ev->mu);
    return s;
}

void br_events_stats(br_events *ev, size_t *frames, size_t *bytes) {
    pthread_mutex_lock(&ev->mu);
    *frames = ev->count;
    *bytes = ev->bytes;
    pthread_mutex_unlock(&ev->mu);
}

int br_events_read(br_events *ev, uint64_t *next, unsigned mask, sbx_buf *out, size_t max_bytes,
                   int64_t wait_ms, uint64_t *missed, char *why) {
    int64_t deadline = sbx_deadline_in(wait_ms);
    bool waited = false;
    *missed = 0;
    pthread_mutex_lock(&ev->mu);
    for (;;) {
        if (waited && ev->next_seq > *next && !ev->ended) {
            /* The first frame after a wait: let the frames right behind it come too, so a
             * burst (a page logging in a loop) is one wake-up and one write per READ_LINGER_MS
             * instead of one per frame. The lock is not held: producers never wait. */
            waited = false;
            pthread_mutex_unlock(&ev->mu);
            struct timespec ts = {0, READ_LINGER_MS * 1000000L};
            nanosleep(&ts, NULL);
            pthread_mutex_lock(&ev->mu);
        }
        uint64_t oldest = ev->count ? ev->ring[ev->head].seq : ev->next_seq;
        if (*next == 0)
            *next = 1; /* seqs start at 1 */
        if (*next > ev->next_seq)
            *next = ev->next_seq; /* past the newest: from the next one on */
        if (*next < oldest) {
            *missed += oldest - *next;
            *next = oldest;
        }
        bool added = false;
        if (ev->count && *next < ev->next_seq) {
            size_t i = (size_t)(*next - oldest);
            for (; i < ev->count; i++) {
                frame *f = &ev->ring[(ev->head + i) % BR_EVENTS_MAX_FRAMES];
                if (f->type & mask) {
                    if (added && out->len + f->len > max_bytes)
                        break;
                    sbx_buf_add(out, f->text, f->len);
                    added = true;
                }
                *next = f->seq + 1;
            }
        }
        if (added) {
            pthread_mutex_unlock(&ev->mu);
            return 1;
        }
        if (ev->ended) {
            if (why)
                snprintf(why, 128, "%s", ev->end_why);
            pthread_mutex_unlock(&ev->mu);
            return -1;
        }
        if (!sbx_cond_wait_until(&ev->cv, &ev->mu, deadline)) {
            pthread_mutex_unlock(&ev->mu);
            return 0;
        }
        waited = true;
    }
}

/* ---- frames from CDP events ---- */

static const char *jstr(const cJSON *o, const char *name) {
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(o, name);
    return cJSON_IsString(v) ? v->valuestring : NULL;
}

/* Add `v` under `name`, cut to BR_EVENTS_TEXT_MAX bytes (on a UTF-8 character boundary). */
static void add_text(cJSON *o, const char *name, const char *v) {
    if (!v)
        v = "";
    size_t n = strlen(v);
    if (n <= BR_EVENTS_TEXT_MAX) {
        cJSON_AddStringToObject(o, name, v);
        return;
    }
    n = BR_EVENTS_TEXT_MAX;
    while (n > 0 && ((unsigned char)v[n] & 0xC0) == 0x80)
        n--;
    char *cut = strndup(v, n);
    cJSON_AddStringToObject(o, name, cut ? cut : "");
    free(cut);
    cJSON_AddBoolToObject(o, "truncated", 1);
}

/* console.log's arguments as one line, like a console shows them (capped). */
static void console_text(const cJSON *args, sbx_buf *b) {
    const cJSON *a;
    bool first = true;
    cJSON_ArrayForEach(a, args) {
        if (!first)
            sbx_buf_add(b, " ", 1);
        first = false;
        const cJSON *v = cJSON_GetObjectItemCaseSensitive(a, "value");
        const char *desc = jstr(a, "description"), *type = jstr(a, "type");
        if (cJSON_IsString(v)) {
            sbx_buf_add(b, v->valuestring, strlen(v->valuestring));
        } else if (v && !cJSON_IsNull(v)) {
            char *t = cJSON_PrintUnformatted(v);
            if (t)
                sbx_buf_add(b, t, strlen(t));
            free(t);
        } else if (desc) {
            sbx_buf_add(b, desc, strlen(desc));
        } else if (cJSON_IsNull(v) || (type && strcmp(type, "object") == 0)) {
            sbx_buf_add(b, "null", 4);
        } else if (type) {
            sbx_buf_add(b, type, strlen(type));
        }
        if (b->truncated)
            break;
    }
}

/* Locked: the pending request `req`, or NULL. */
static pending *pending_find_locked(br_events *ev, const char *req) {
    for (size_t i = 0; i < PENDING; i++)
        if (ev->pend[i].req[0] && strcmp(ev->pend[i].req, req) == 0)
            return &ev->pend[i];
    return NULL;
}

static void pending_clear(pending *p) {
    free(p->url);
    memset(p, 0, sizeof *p);
}

static void on_request(br_events *ev, const char *tab, const cJSON *params) {
    const char *req = jstr(params, "requestId"), *type = jstr(params, "type");
    const cJSON *rq = cJSON_GetObjectItemCaseSensitive(params, "request");
    const char *url = jstr(rq, "url"), *method = jstr(rq, "method");
    if (!req || !url)
        return;
    pthread_mutex_lock(&ev->mu);
    pending *p = pending_find_locked(ev, req); /* a redirect: the same request goes on */
    if (!p) {
        for (size_t i = 0; i < PENDING && !p; i++)
            if (!ev->pend[i].req[0])
                p = &ev->pend[i];
        if (!p) {
            p = &ev->pend[ev->pend_next];
            ev->pend_next = (ev->pend_next + 1) % PENDING;
        }
    }
    pending_clear(p);
    snprintf(p->req, sizeof p->req, "%s", req);
    snprintf(p->tab, sizeof p->tab, "%s", tab ? tab : "");
    p->url = strndup(url, BR_EVENTS_TEXT_MAX);
    snprintf(p->method, sizeof p->method, "%s", method ? method : "");
    snprintf(p->type, sizeof p->type, "%s", type ? type : "");
    pthread_mutex_unlock(&ev->mu);
    cJSON *d = cJSON_CreateObject();
    cJSON_AddStringToObject(d, "requestId", req);
    add_text(d, "url", url);
    cJSON_AddStringToObject(d, "method", method ? method : "");
    cJSON_AddStringToObject(d, "resourceType", type ? type : "");
    br_events_emit(ev, BR_EV_REQUEST, tab, d);
}

static void on_response(br_events *ev, const cJSON *params) {
    const char *req = jstr(params, "requestId"), *type = jstr(params, "type");
    const cJSON *resp = cJSON_GetObjectItemCaseSensitive(params, "response");
    const cJSON *st = cJSON_GetObjectItemCaseSensitive(resp, "status");
    const char *mime = jstr(resp, "mimeType");
    if (!req)
        return;
    pthread_mutex_lock(&ev->mu);
    pending *p = pending_find_locked(ev, req);
    if (p) {
        p->status = cJSON_IsNumber(st) ? st->valueint : 0;
        if (type)
            snprintf(p->type, sizeof p->type, "%s", type);
        snprintf(p->mime, sizeof p->mime, "%s", mime ? mime : "");
    }
    pthread_mutex_unlock(&ev->mu);
}

/* The request ended (loadingFinished with its size, or loadingFailed with `failed`). */
static void on_done(br_events *ev, const cJSON *params, const char *failed) {
    const char *req = jstr(params, "requestId");
    if (!req)
        return;
    const cJSON *len = cJSON_GetObjectItemCaseSensitive(params, "encodedDataLength");
    pthread_mutex_lock(&ev->mu);
    pending *p = pending_find_locked(ev, req);
    if (!p) {
        pthread_mutex_unlock(&ev->mu);
        return;
    }
    cJSON *d = cJSON_CreateObject();
    char tab[SBX_ID_LEN];
    snprintf(tab, sizeof tab, "%s", p->tab);
    cJSON_AddStringToObject(d, "requestId", req);
    cJSON_AddStringToObject(d, "url", p->url ? p->url : "");
    cJSON_AddStringToObject(d, "method", p->method);
    cJSON_AddNumberToObject(d, "status", failed ? 0 : p->status);
    cJSON_AddStringToObject(d, "resourceType", p->type);
    cJSON_AddStringToObject(d, "mimeType", p->mime);
    if (cJSON_IsNumber(len))
        cJSON_AddNumberToObject(d, "size", len->valuedouble);
    if (failed)
        add_text(d, "failed", failed);
    pending_clear(p);
    pthread_mutex_unlock(&ev->mu);
    br_events_emit(ev, BR_EV_RESPONSE, tab, d);
}

void br_events_cdp(br_events *ev, const char *method, const char *tab, const cJSON *params) {
    if (!ev || !method)
        return;
    if (strncmp(method, "Network.", 8) == 0) {
        const char *m = method + 8;
        if (strcmp(m, "requestWillBeSent") == 0)
            on_request(ev, tab, params);
        else if (strcmp(m, "responseReceived") == 0)
            on_response(ev, params);
        else if (strcmp(m, "loadingFinished") == 0)
            on_done(ev, params, NULL);
        else if (strcmp(m, "loadingFailed") == 0) {
            const char *why = jstr(params, "errorText");
            on_done(ev, params, why && *why ? why : "failed");
        }
    } else if (strcmp(method, "Runtime.consoleAPICalled") == 0) {
        sbx_buf b;
        sbx_buf_init(&b, BR_EVENTS_TEXT_MAX);
        console_text(cJSON_GetObjectItemCaseSensitive(params, "args"), &b);
        cJSON *d = cJSON_CreateObject();
        const char *level = jstr(params, "type");
        cJSON_AddStringToObject(d, "level", level ? level : "log");
        cJSON_AddStringToObject(d, "text", b.data ? b.data : "");
        if (b.truncated)
            cJSON_AddBoolToObject(d, "truncated", 1);
        sbx_buf_free(&b);
        br_events_emit(ev, BR_EV_CONSOLE, tab, d);
    } else if (strcmp(method, "Runtime.exceptionThrown") == 0) {
        const cJSON *ex = cJSON_GetObjectItemCaseSensitive(params, "exceptionDetails");
        const char *text = jstr(cJSON_GetObjectItemCaseSensitive(ex, "exception"), "description");
        cJSON *d = cJSON_CreateObject();
        cJSON_AddStringToObject(d, "level", "error");
        add_text(d, "text", text ? text : jstr(ex, "text"));
        cJSON_AddBoolToObject(d, "exception", 1);
        br_events_emit(ev, BR_EV_CONSOLE, tab, d);
    } else if (strcmp(method, "Page.frameNavigated") == 0) {
        const cJSON *f = cJSON_GetObjectItemCaseSensitive(params, "frame");
        if (cJSON_GetObjectItemCaseSensitive(f, "parentId"))
            return; /* a subframe: the tab did not navigate */
        cJSON *d = cJSON_CreateObject();
        add_text(d, "url", jstr(f, "url"));
        cJSON_AddBoolToObject(d, "sameDocument", 0);
        br_events_emit(ev, BR_EV_NAVIGATION, tab, d);
    } else if (strcmp(method, "Page.navigatedWithinDocument") == 0) {
        cJSON *d = cJSON_CreateObject();
        add_text(d, "url", jstr(params, "url"));
        cJSON_AddBoolToObject(d, "sameDocument", 1);
        br_events_emit(ev, BR_EV_NAVIGATION, tab, d);
    } else if (strcmp(method, "Page.javascriptDialogOpening") == 0) {
        cJSON *d = cJSON_CreateObject();
        const char *type = jstr(params, "type");
        cJSON_AddStringToObject(d, "dialogType", type ? type : "");
        add_text(d, "message", jstr(params, "message"));
        add_text(d, "url", jstr(params, "url"));
        cJSON_AddStringToObject(d, "action", "dismissed");
        br_events_emit(ev, BR_EV_DIALOG, tab, d);
    }
}

void br_events_tab(br_events *ev, const char *tab_id, const char *state, const char *url,
                   const char *detail) {
    if (!ev)
        return;
    cJSON *d = cJSON_CreateObject();
    cJSON_AddStringToObject(d, "state", state);
    if (url)
        add_text(d, "url", url);
    if (detail)
        cJSON_AddStringToObject(d, strcmp(state, "opened") == 0 ? "openerTabId" : "status", detail);
    br_events_emit(ev, BR_EV_TAB, tab_id, d);
}

void br_events_crash(br_events *ev, const char *why) {
    if (!ev)
        return;
    cJSON *d = cJSON_CreateObject();
    add_text(d, "reason", why);
    br_events_emit(ev, BR_EV_CRASH, NULL, d);
}

void br_events_blocked(void *ud, const char *host, uint16_t port, const char *why) {
    br_events *ev = ud;
    if (!ev)
        return;
    cJSON *d = cJSON_CreateObject();
    add_text(d, "host", host);
    cJSON_AddNumberToObject(d, "port", port);
    add_text(d, "reason", why);
    br_events_emit(ev, BR_EV_BLOCKED, NULL, d);
}

void br_events_release(void *ud) {
    br_events_unref(ud);
}
