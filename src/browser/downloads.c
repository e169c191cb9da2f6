/* downloads.c -- a session's downloads: the table Chromium's download events keep, the caps,
 * the names (see downloads.h). */
#define _GNU_SOURCE
#include "downloads.h"

#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "../common/log.h"
#include "../common/util.h"

#define NAME_MAX_BYTES 120

typedef enum dl_state { DL_PROGRESS, DL_DONE, DL_CANCELED } dl_state;

typedef struct dl {
    char guid[64];
    char name[NAME_MAX_BYTES + 16];
    char tab[SBX_ID_LEN];
    char *url;
    dl_state state;
    int64_t received, total;
    char reason[96];
    int64_t began; /* sbx_now_ms */
} dl;

struct br_downloads {
    char dir[3968]; /* room for "/<guid>" within a 4096-byte path */
    br_events *ev;
    cdp_conn *conn;
    int64_t max_file, max_session;
    pthread_mutex_t mu; /* below */
    dl items[BR_DOWNLOADS_MAX];
    int n;
};

static const char *const STATE_NAMES[] = {"inProgress", "completed", "canceled"};

static const char *jstr(const cJSON *o, const char *name) {
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(o, name);
    return cJSON_IsString(v) ? v->valuestring : NULL;
}

br_downloads *br_downloads_new(const char *session_dir, br_events *ev, cdp_conn *conn,
                               int64_t max_file_bytes, int64_t max_session_bytes) {
    br_downloads *d = calloc(1, sizeof *d);
    if (!d)
        return NULL;
    int n = snprintf(d->dir, sizeof d->dir, "%s/downloads", session_dir);
    if (n < 0 || (size_t)n >= sizeof d->dir || sbx_mkdir_p(d->dir, 0700) != 0) {
        LOG_W("browser", "cannot make %s: %s", d->dir, strerror(errno));
        free(d);
        return NULL;
    }
    d->ev = ev;
    d->conn = conn;
    d->max_file = max_file_bytes;
    d->max_session = max_session_bytes;
    pthread_mutex_init(&d->mu, NULL);
    return d;
}

void br_downloads_free(br_downloads *d) {
    if (!d)
        return;
    for (int i = 0; i < d->n; i++)
        free(d->items[i].url);
    pthread_mutex_destroy(&d->mu);
    free(d);
}

const char *br_downloads_dir(const br_downloads *d) {
    return d->dir;
}

void br_downloads_sanitize(const char *in, char *out, size_t cap) {
    const char *base = in ? in : "";
    for (const char *p = base; *p; p++)
        if (*p == '/' || *p == '\\')
            base = p + 1;
    size_t max = cap - 1 < NAME_MAX_BYTES ? cap - 1 : NAME_MAX_BYTES, n = 0;
    const unsigned char *p = (const unsigned char *)base;
    for (; *p && n < max; p++) {
        unsigned char c = *p;
        bool bad = c < 0x20 || c == 0x7f || strchr("\"*:<>?|", c) != NULL;
        out[n++] = bad ? '_' : (char)c;
    }
    if ((*p & 0xC0) == 0x80) { /* cut inside a character: drop its first bytes too */
        while (n > 0 && ((unsigned char)out[n - 1] & 0xC0) == 0x80)
            n--;
        if (n > 0 && ((unsigned char)out[n - 1] & 0xC0) == 0xC0)
            n--;
    }
    while (n > 0 && (out[n - 1] == ' ' || out[n - 1] == '.'))
        n--;
    out[n] = '\0';
    if (out[0] == '.')
        out[0] = '_';
    if (!out[0])
        snprintf(out, cap, "download");
}

/* Locked: the download `guid`, or NULL. */
static dl *find_guid_locked(br_downloads *d, const char *guid) {
    for (int i = 0; i < d->n; i++)
        if (strcmp(d->items[i].guid, guid) == 0)
            return &d->items[i];
    return NULL;
}

static bool name_taken_locked(br_downloads *d, const char *name) {
    for (int i = 0; i < d->n; i++)
        if (strcmp(d->items[i].name, name) == 0)
            return true;
    return false;
}

/* Locked: a unique name from Chromium's suggestion: "a.pdf", then "a (2).pdf", ... */
static void unique_name_locked(br_downloads *d, const char *suggested, char *out, size_t cap) {
    char base[NAME_MAX_BYTES + 1];
    br_downloads_sanitize(suggested, base, sizeof base);
    snprintf(out, cap, "%s", base);
    const char *dot = strrchr(base, '.');
    size_t stem = dot && dot != base ? (size_t)(dot - base) : strlen(base);
    for (int k = 2; name_taken_locked(d, out) && k < 10000; k++)
        snprintf(out, cap, "%.*s (%d)%s", (int)stem, base, k, base + stem);
}

static cJSON *item_json(const dl *x) {
    cJSON *o = cJSON_CreateObject();
    cJSON_AddStringToObject(o, "name", x->name);
    cJSON_AddNumberToObject(o, "size", (double)x->received);
    cJSON_AddStringToObject(o, "url", x->url ? x->url : "");
    cJSON_AddStringToObject(o, "state", STATE_NAMES[x->state]);
    if (x->reason[0])
        cJSON_AddStringToObject(o, "reason", x->reason);
    cJSON_AddStringToObject(o, "tabId", x->tab);
    return o;
}

/* Locked: announce `x` (a download frame). */
static void announce_locked(br_downloads *d, const dl *x) {
    if (d->ev)
        br_events_emit(d->ev, BR_EV_DOWNLOAD, x->tab, item_json(x));
}

/* Locked: cancel `x` with `why`, remove what it wrote. */
static void cancel_locked(br_downloads *d, dl *x, const char *why) {
    cJSON *a = cJSON_CreateObject();
    cJSON_AddStringToObject(a, "guid", x->guid);
    cdp_send(d->conn, NULL, "Browser.cancelDownload", a);
    x->state = DL_CANCELED;
    snprintf(x->reason, sizeof x->reason, "%s", why);
    char path[4200];
    snprintf(path, sizeof path, "%s/%s", d->dir, x->guid);
    unlink(path);
    LOG_I("browser", "download %s canceled: %s", x->name, why);
    announce_locked(d, x);
}

/* Locked: bytes the session's downloads hold, `x` left out. */
static int64_t held_locked(br_downloads *d, const dl *x) {
    int64_t sum = 0;
    for (int i = 0; i < d->n; i++)
        if (&d->items[i] != x && d->items[i].state != DL_CANCELED)
            sum += d->items[i].received;
    return sum;
}

static void on_begin(br_downloads *d, const char *tab, const cJSON *params) {
    const char *guid = jstr(params, "guid"), *url = jstr(params, "url"),
               *suggested = jstr(params, "suggestedFilename");
    if (!guid || strlen(guid) >= sizeof d->items[0].guid || strchr(guid, '/'))
        return;
    pthread_mutex_lock(&d->mu);
    if (find_guid_locked(d, guid)) {
        pthread_mutex_unlock(&d->mu);
        return;
    }
    if (d->n == BR_DOWNLOADS_MAX) {
        dl over = {0};
        snprintf(over.guid, sizeof over.guid, "%s", guid);
        br_downloads_sanitize(suggested, over.name, sizeof over.name);
        snprintf(over.tab, sizeof over.tab, "%s", tab ? tab : "");
        over.url = (char *)url;
        cancel_locked(d, &over, "the session keeps at most 200 downloads");
        pthread_mutex_unlock(&d->mu);
        return;
    }
    char name[sizeof d->items[0].name];
    unique_name_locked(d, suggested, name, sizeof name);
    dl *x = &d->items[d->n++];
    memset(x, 0, sizeof *x);
    snprintf(x->guid, sizeof x->guid, "%s", guid);
    memcpy(x->name, name, sizeof x->name);
    x->began = sbx_now_ms();
    snprintf(x->tab, sizeof x->tab, "%s", tab ? tab : "");
    x->url = url ? strndup(url, BR_EVENTS_TEXT_MAX) : NULL;
    x->state = DL_PROGRESS;
    announce_locked(d, x);
    pthread_mutex_unlock(&d->mu);
}

static void on_progress(br_downloads *d, const cJSON *params) {
    const char *guid = jstr(params, "guid"), *state = jstr(params, "state");
    const cJSON *rcv = cJSON_GetObjectItemCaseSensitive(params, "receivedBytes");
    const cJSON *tot = cJSON_GetObjectItemCaseSensitive(params, "totalBytes");
    if (!guid)
        return;
    pthread_mutex_lock(&d->mu);
    dl *x = find_guid_locked(d, guid);
    if (x && x->state == DL_CANCELED && state && strcmp(state, "inProgress") != 0) {
        /* Canceled by a cap after Chromium had it all: it may have moved its file into place
         * since the cancel removed it. */
        char path[4200];
        snprintf(path, sizeof path, "%s/%s", d->dir, x->guid);
        unlink(path);
    }
    if (!x || x->state != DL_PROGRESS) {
        pthread_mutex_unlock(&d->mu);
        return;
    }
    if (cJSON_IsNumber(rcv))
        x->received = (int64_t)rcv->valuedouble;
    if (cJSON_IsNumber(tot))
        x->total = (int64_t)tot->valuedouble;
    int64_t expect = x->total > x->received ? x->total : x->received;
    char why[96];
    if (expect > d->max_file) {
        snprintf(why, sizeof why, "larger than BROWSER_DOWNLOAD_MAX_BYTES (%lld bytes)",
                 (long long)d->max_file);
        cancel_locked(d, x, why);
    } else if (held_locked(d, x) + expect > d->max_session) {
        snprintf(why, sizeof why, "the session's downloads would pass BROWSER_DOWNLOADS_MAX_BYTES");
        cancel_locked(d, x, why);
    } else if (state && strcmp(state, "completed") == 0) {
        x->state = DL_DONE;
        announce_locked(d, x);
    } else if (state && strcmp(state, "canceled") == 0) {
        x->state = DL_CANCELED;
        snprintf(x->reason, sizeof x->reason, "canceled by the browser or the page");
        announce_locked(d, x);
    }
    pthread_mutex_unlock(&d->mu);
}

void br_downloads_cdp(br_downloads *d, const char *method, const char *tab_id,
                      const cJSON *params) {
    if (!d)
        return;
    if (strcmp(method, "Browser.downloadWillBegin") == 0)
        on_begin(d, tab_id, params);
    else if (strcmp(method, "Browser.downloadProgress") == 0)
        on_progress(d, params);
}

cJSON *br_downloads_json(br_downloads *d) {
    cJSON *arr = cJSON_CreateArray();
    if (d) {
        pthread_mutex_lock(&d->mu);
        for (int i = 0; i < d->n; i++)
            cJSON_AddItemToArray(arr, item_json(&d->items[i]));
        pthread_mutex_unlock(&d->mu);
    }
    cJSON *o = cJSON_CreateObject();
    cJSON_AddItemToObject(o, "downloads", arr);
    return o;
}

sbx_code br_downloads_file(br_downloads *d, const char *name, char *path, int64_t *size,
                           sbx_err *e) {
    if (!d)
        return sbx_fail(e, SBX_ENOTFOUND, "no download %.128s in this session", name);
    pthread_mutex_lock(&d->mu);
    dl *x = NULL;
    for (int i = 0; i < d->n && !x; i++)
        if (strcmp(d->items[i].name, name) == 0)
            x = &d->items[i];
    sbx_code rc = SBX_OK;
    if (!x)
        rc = sbx_fail(e, SBX_ENOTFOUND, "no download %.128s in this session", name);
    else if (x->state == DL_PROGRESS)
        rc = sbx_fail(e, SBX_ECONFLICT, "download %s is still in progress", x->name);
    else if (x->state == DL_CANCELED)
        rc = sbx_fail(e, SBX_ECONFLICT, "download %s was canceled: %s", x->name, x->reason);
    else {
        snprintf(path, 4096, "%s/%s", d->dir, x->guid);
        *size = x->received;
    }
    pthread_mutex_unlock(&d->mu);
    return rc;
}

bool br_downloads_started(br_downloads *d, const char *tab_id, int64_t since, char *name,
                          size_t cap) {
    if (!d)
        return false;
    bool found = false;
    pthread_mutex_lock(&d->mu);
    for (int i = d->n - 1; i >= 0 && !found; i--) {
        const dl *x = &d->items[i];
        if (x->began >= since && strcmp(x->tab, tab_id) == 0) {
            snprintf(name, cap, "%s", x->name);
            found = true;
        }
    }
    pthread_mutex_unlock(&d->mu);
    return found;
}
