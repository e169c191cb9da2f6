/* api_browser_ext.c -- HTTP routes for long browser work (scope "browser"): a session's live
 * events as Server-Sent Events, what it costs, its storage state, and the files its pages
 * downloaded.
 *
 * GET /browser/sessions/{id}/events streams the session's frames (browser/events.h). Each
 * reader runs on its own stream thread and copies frames out of the session's ring; it never
 * holds the session, so the stream ends with it (a last "end" frame says why). A reader that
 * falls so far behind that frames it has not sent yet left the ring is dropped: a last
 * "dropped" frame says so, and the client reconnects with Last-Event-ID (replaying what the
 * ring still holds). A replay that no longer reaches back starts with a "gap" frame.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "../browser/events.h"
#include "../browser/session.h"
#include "http.h"

#define READ_BATCH (48 * 1024) /* bytes of frames one write carries at most */
#define WAIT_MS    1000        /* a wait for frames, between looks at the client and the server */

/* Borrow the session named by the first path parameter, or answer the error. */
static br_session *session_of(http_req *r) {
    sbx_err e = {0};
    br_session *s = br_session_get(r->params[0], http_viewer(r), &e);
    if (!s)
        http_reply_error(r, &e);
    return s;
}

/* ---- GET /browser/sessions/{id}/events ---- */

typedef struct reader {
    br_events *ev;
    uint64_t from; /* the first seq wanted */
    bool replay;   /* from came from the client: a gap is reported, not a drop */
    unsigned mask; /* BR_EV_* */
} reader;

static void reader_free(void *arg) {
    reader *rd = arg;
    br_events_unref(rd->ev);
    free(rd);
}

/* A control frame (gap, dropped, end) of the stream itself: not in the ring, no id. */
static int control(http_stream *s, const char *event, cJSON *data) {
    char *json = cJSON_PrintUnformatted(data);
    cJSON_Delete(data);
    int rc = json ? http_stream_sse(s, event, json) : -1;
    free(json);
    return rc;
}

static void events_stream(http_stream *s, void *arg) {
    reader *rd = arg;
    uint64_t next = rd->from;
    bool first = true;
    for (;;) {
        if (http_stopping()) {
            cJSON *d = cJSON_CreateObject();
            cJSON_AddStringToObject(d, "reason", "the server is stopping");
            control(s, "end", d);
            return;
        }
        sbx_buf b;
        sbx_buf_init(&b, 2 * READ_BATCH + BR_EVENTS_MAX_BYTES);
        uint64_t missed = 0, asked = next ? next : 1;
        char why[128] = "";
        int rc = br_events_read(rd->ev, &next, rd->mask, &b, READ_BATCH, WAIT_MS, &missed, why);
        if (missed && first && rd->replay) {
            cJSON *d = cJSON_CreateObject();
            cJSON_AddNumberToObject(d, "from", (double)asked);
            cJSON_AddNumberToObject(d, "oldest", (double)(asked + missed));
            cJSON_AddNumberToObject(d, "missed", (double)missed);
            cJSON_AddStringToObject(d, "reason",
                                    "the buffer no longer reaches back that far; frames from "
                                    "'oldest' on follow");
            if (control(s, "gap", d) != 0) {
                sbx_buf_free(&b);
                return;
            }
        } else if (missed) {
            sbx_buf_free(&b);
            cJSON *d = cJSON_CreateObject();
            cJSON_AddNumberToObject(d, "missed", (double)missed);
            cJSON_AddNumberToObject(d, "next", (double)asked);
            cJSON_AddStringToObject(d, "reason",
                                    "the reader fell behind: frames it had not received left "
                                    "the buffer; reconnect with Last-Event-ID to resume");
            control(s, "dropped", d);
            return;
        }
        first = false;
        if (rc == 1 && http_stream_write(s, b.data, b.len) != 0) {
            sbx_buf_free(&b);
            return;
        }
        sbx_buf_free(&b);
        if (rc == 0 && http_stream_alive(s) != 0)
            return;
        if (rc < 0) {
            cJSON *d = cJSON_CreateObject();
            cJSON_AddStringToObject(d, "reason", why);
            control(s, "end", d);
            return;
        }
    }
}

/* A non-negative integer of at most 19 digits. */
static bool parse_seq(const char *v, uint64_t *out) {
    if (!v || !*v || strlen(v) > 19)
        return false;
    uint64_t n = 0;
    for (const char *p = v; *p; p++) {
        if (*p < '0' || *p > '9')
            return false;
        n = n * 10 + (uint64_t)(*p - '0');
    }
    *out = n;
    return true;
}

static void h_events(http_req *r) {
    reader rd = {.mask = BR_EV_ALL};
    const char *types = http_query(r, "types");
    if (types && *types) {
        rd.mask = 0;
        for (const char *p = types; *p;) {
            size_t n = strcspn(p, ",");
            unsigned bit = n ? br_events_type_bit(p, n) : 0;
            if (!bit) {
                http_fail(r, SBX_EINVAL,
                          "types: unknown event type '%.*s'; known: navigation, console, "
                          "request, response, dialog, tab, download, crash, blocked",
                          (int)(n > 40 ? 40 : n), p);
                return;
            }
            rd.mask |= bit;
            p += n;
            if (*p == ',')
                p++;
        }
    }
    const char *from = http_query(r, "from"), *last = http_header(r, "Last-Event-ID");
    if (from) {
        if (!parse_seq(from, &rd.from)) {
            http_fail(r, SBX_EINVAL, "from: must be a sequence number (0 or more)");
            return;
        }
        rd.replay = true;
    } else if (last && *last) {
        if (!parse_seq(last, &rd.from)) {
            http_fail(r, SBX_EINVAL, "Last-Event-ID: must be a sequence number");
            return;
        }
        rd.from++; /* the one after the last the client saw */
        rd.replay = true;
    }
    br_session *s = session_of(r);
    if (!s)
        return;
    rd.ev = br_session_events(s);
    br_session_put(s);
    if (!rd.replay)
        rd.from = br_events_next_seq(rd.ev); /* live: what happens from now on */
    reader *arg = malloc(sizeof *arg);
    if (!arg) {
        br_events_unref(rd.ev);
        http_fail(r, SBX_EINTERNAL, "out of memory");
        return;
    }
    *arg = rd;
    http_reply_stream(r, 200, "text/event-stream", events_stream, arg, reader_free);
}

/* ---- accounting ---- */

static void h_session(http_req *r) {
    br_session *s = session_of(r);
    if (!s)
        return;
    http_reply_json(r, 200, br_session_info(s));
    br_session_put(s);
}

/* ---- storage state ---- */

static void h_state(http_req *r) {
    sbx_err e = {0};
    br_session *s = session_of(r);
    if (!s)
        return;
    cJSON *out = NULL;
    if (br_session_state(s, http_defaults_get()->browser_call_timeout_ms, &out, &e) != SBX_OK)
        http_reply_error(r, &e);
    else
        http_reply_json(r, 200, out);
    br_session_done(s, e.code);
}

/* ---- downloads ---- */

static void h_downloads(http_req *r) {
    br_session *s = session_of(r);
    if (!s)
        return;
    http_reply_json(r, 200, br_session_downloads(s));
    br_session_put(s);
}

/* The whole file at `path` (at most `size` bytes, as the download table says) into *out. */
static sbx_code read_file(const char *path, int64_t size, char **out, size_t *len, sbx_err *e) {
    int fd = open(path, O_RDONLY | O_NOFOLLOW | O_CLOEXEC);
    if (fd < 0)
        return sbx_fail_errno(e, errno, "could not open the download");
    struct stat st;
    if (fstat(fd, &st) != 0 || !S_ISREG(st.st_mode) || st.st_size > size) {
        close(fd);
        return sbx_fail(e, SBX_EINTERNAL, "the download's file is not what was downloaded");
    }
    char *buf = malloc((size_t)st.st_size + 1);
    size_t n = 0;
    while (buf && n < (size_t)st.st_size) {
        ssize_t k = read(fd, buf + n, (size_t)st.st_size - n);
        if (k < 0 && errno == EINTR)
            continue;
        if (k <= 0)
            break;
        n += (size_t)k;
    }
    close(fd);
    if (!buf || n != (size_t)st.st_size) {
        free(buf);
        return sbx_fail(e, SBX_EINTERNAL, "could not read the download");
    }
    *out = buf;
    *len = n;
    return SBX_OK;
}

static void h_download(http_req *r) {
    const char *name = r->params[1];
    /* Names are looked up in the session's table, never used as paths; a name that could be
     * one is refused outright. */
    if (strchr(name, '/') || strchr(name, '\\') || strcmp(name, ".") == 0 ||
        strcmp(name, "..") == 0) {
        http_fail(r, SBX_EINVAL, "name: a download's name from GET .../downloads, not a path");
        return;
    }
    sbx_err e = {0};
    br_session *s = session_of(r);
    if (!s)
        return;
    char path[4096];
    int64_t size = 0;
    char *data = NULL;
    size_t len = 0;
    if (br_session_download(s, name, path, &size, &e) != SBX_OK ||
        read_file(path, size, &data, &len, &e) != SBX_OK) {
        http_reply_error(r, &e);
    } else {
        char cd[300];
        snprintf(cd, sizeof cd, "attachment; filename=\"%.250s\"", name);
        http_add_header(r, "Content-Disposition", cd);
        http_reply_bytes(r, 200, "application/octet-stream", data, len);
    }
    br_session_put(s);
}

const http_route api_browser_ext_routes[] = {
    {"GET", "/browser/sessions/{id}", h_session, "browser", false},
    {"GET", "/browser/sessions/{id}/events", h_events, "browser", false},
    {"GET", "/browser/sessions/{id}/state", h_state, "browser", false},
    {"GET", "/browser/sessions/{id}/downloads", h_downloads, "browser", false},
    {"GET", "/browser/sessions/{id}/downloads/{name}", h_download, "browser", false},
    {NULL, NULL, NULL, NULL, false},
};
