/* tab.c -- the tabs of one browser: CDP events, tab set-up, emulation and page calls (see
 * tab.h and page.h). */
#define _GNU_SOURCE
#include "tab.h"

#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "../common/log.h"
#include "../common/node.h"
#include "downloads.h"
#include "events.h"
#include "tab_int.h"

#define MOBILE_UA                                                                                  \
    "Mozilla/5.0 (Linux; Android 14; Pixel 8) AppleWebKit/537.36 (KHTML, like Gecko) "             \
    "Chrome/156.0.0.0 Mobile Safari/537.36"

static const char tab_crashed_msg[] =
    "the tab's renderer died; navigate the tab to load a page again, or close it";
static const char oopif_gone_msg[] =
    "the frame's document went away (it navigated, was removed or its renderer died); take a "
    "new snapshot";

/* ---- small helpers ---- */

static const char *jstr(const cJSON *o, const char *name) {
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(o, name);
    return cJSON_IsString(v) ? v->valuestring : NULL;
}

static void set_str(char **dst, const char *v) {
    if (!v)
        return;
    char *n = strdup(v);
    if (!n)
        return;
    free(*dst);
    *dst = n;
}

/* Locked. */
static br_page *page_by_sid(br_tabs *t, const char *sid) {
    if (!sid)
        return NULL;
    for (int i = 0; i < t->npages; i++)
        if (!t->pages[i]->closed && strcmp(t->pages[i]->cdp_sid, sid) == 0)
            return t->pages[i];
    return NULL;
}

static br_page *page_by_target(br_tabs *t, const char *tid) {
    if (!tid)
        return NULL;
    for (int i = 0; i < t->npages; i++)
        if (!t->pages[i]->closed && strcmp(t->pages[i]->target_id, tid) == 0)
            return t->pages[i];
    return NULL;
}

/* Locked: the current tab is closed; the newest open one takes its place. */
static void pick_current_locked(br_tabs *t) {
    if (t->current && !t->current->closed)
        return;
    t->current = NULL;
    for (int i = t->npages - 1; i >= 0 && !t->current; i--)
        if (!t->pages[i]->closed)
            t->current = t->pages[i];
}

/* Locked: wait on the tabs' condition variable until signalled or `deadline`. */
static void wait_locked(br_tabs *t, int64_t deadline) {
    sbx_cond_wait_until(&t->cv, &t->mu, deadline);
}

br_tabs *br_tabs_new(const char *id, cdp_conn *conn) {
    br_tabs *t = calloc(1, sizeof *t);
    if (!t)
        return NULL;
    snprintf(t->id, sizeof t->id, "%s", id);
    t->conn = conn;
    pthread_mutex_init(&t->mu, NULL);
    if (sbx_cond_init_mono(&t->cv) != 0) {
        pthread_mutex_destroy(&t->mu);
        free(t);
        return NULL;
    }
    return t;
}

void br_tabs_free(br_tabs *t) {
    if (!t)
        return;
    for (int i = 0; i < t->npages; i++) {
        free(t->pages[i]->url);
        free(t->pages[i]->title);
        free(t->pages[i]);
    }
    free(t->pages);
    br_oopif_free_all(t);
    pthread_mutex_destroy(&t->mu);
    pthread_cond_destroy(&t->cv);
    free(t->dir);
    if (t->hook.free)
        t->hook.free(t->hook.ud);
    free(t);
}

void br_tabs_set_hook(br_tabs *t, const br_tab_hook *h) {
    t->hook = *h;
}

void *br_tabs_hook_ud(const br_tabs *t, void (*free_fn)(void *)) {
    return t->hook.free == free_fn ? t->hook.ud : NULL;
}

void br_tabs_send_all(br_tabs *t, const char *method, const cJSON *params) {
    char sids[MAX_TABS][64];
    int n = 0;
    pthread_mutex_lock(&t->mu);
    for (int i = 0; i < t->npages; i++)
        if (!t->pages[i]->closed)
            memcpy(sids[n++], t->pages[i]->cdp_sid, 64);
    pthread_mutex_unlock(&t->mu);
    for (int i = 0; i < n; i++)
        cdp_send(t->conn, sids[i], method, params ? cJSON_Duplicate(params, 1) : NULL);
}

void br_tabs_set_events(br_tabs *t, br_events *ev) {
    t->events = ev;
}

void br_tabs_set_emulation(br_tabs *t, const br_emulation *em, const char *default_ua) {
    t->em = *em;
    t->mobile = em->mobile;
    snprintf(t->default_ua, sizeof t->default_ua, "%s", default_ua ? default_ua : "");
}

void br_tabs_set_downloads(br_tabs *t, br_downloads *d) {
    t->downloads = d;
}

void br_tabs_set_dir(br_tabs *t, const char *dir) {
    free(t->dir);
    t->dir = dir ? strdup(dir) : NULL;
}

void br_tabs_mark_crashed(br_tabs *t, const char *why) {
    pthread_mutex_lock(&t->mu);
    if (!t->crashed && !t->closing) {
        t->crashed = true;
        snprintf(t->crash_why, sizeof t->crash_why, "%s", why);
        LOG_W("browser", "session=%s crashed: %s", t->id, why);
        br_events_crash(t->events, why);
        br_events_end(t->events, "the session's Chromium died");
        pthread_cond_broadcast(&t->cv);
    }
    pthread_mutex_unlock(&t->mu);
}

void br_tabs_set_closing(br_tabs *t) {
    pthread_mutex_lock(&t->mu);
    t->closing = true;
    pthread_cond_broadcast(&t->cv);
    pthread_mutex_unlock(&t->mu);
}

bool br_tabs_crashed(br_tabs *t, char *why) {
    pthread_mutex_lock(&t->mu);
    bool c = t->crashed;
    if (why)
        snprintf(why, 128, "%s", t->crash_why);
    pthread_mutex_unlock(&t->mu);
    return c;
}

bool br_tabs_alive(br_tabs *t) {
    pthread_mutex_lock(&t->mu);
    bool a = !t->crashed && !t->closing;
    pthread_mutex_unlock(&t->mu);
    return a;
}

bool br_tabs_mobile(br_tabs *t) {
    return t->mobile;
}

/* ---- set-up and emulation ---- */

int br_tabs_emulation_cmds(const br_tabs *t, cdp_cmd *c, bool locale, bool frame) {
    const br_emulation *em = &t->em;
    int n = 0;
    if ((t->mobile || em->width) && !frame) {
        cJSON *m = cJSON_CreateObject();
        cJSON_AddNumberToObject(m, "width", em->width ? em->width : 390);
        cJSON_AddNumberToObject(m, "height", em->height ? em->height : 844);
        cJSON_AddNumberToObject(m, "deviceScaleFactor", t->mobile ? 3 : 1);
        cJSON_AddBoolToObject(m, "mobile", t->mobile);
        c[n++] = (cdp_cmd){"Emulation.setDeviceMetricsOverride", m};
    }
    if (t->mobile)
        c[n++] = (cdp_cmd){"Emulation.setTouchEmulationEnabled",
                           cJSON_CreateRaw("{\"enabled\":true,\"maxTouchPoints\":5}")};
    if (t->mobile || em->user_agent[0] || em->locale[0]) {
        cJSON *u = cJSON_CreateObject();
        cJSON_AddStringToObject(u, "userAgent",
                                em->user_agent[0] ? em->user_agent
                                : t->mobile       ? MOBILE_UA
                                                  : t->default_ua);
        if (t->mobile)
            cJSON_AddStringToObject(u, "platform", "Linux armv8l");
        if (em->locale[0])
            cJSON_AddStringToObject(u, "acceptLanguage", em->locale);
        c[n++] = (cdp_cmd){"Emulation.setUserAgentOverride", u};
    }
    if (em->locale[0] && locale) {
        cJSON *l = cJSON_CreateObject();
        cJSON_AddStringToObject(l, "locale", em->locale);
        c[n++] = (cdp_cmd){"Emulation.setLocaleOverride", l};
    }
    if (em->timezone[0]) {
        cJSON *z = cJSON_CreateObject();
        cJSON_AddStringToObject(z, "timezoneId", em->timezone);
        c[n++] = (cdp_cmd){"Emulation.setTimezoneOverride", z};
    }
    return n;
}

static void apply_device(br_tabs *t, const char *sid) {
    cdp_cmd c[EMULATION_MAX];
    int n = br_tabs_emulation_cmds(t, c, true, false);
    for (int i = 0; i < n; i++)
        cdp_send(t->conn, sid, c[i].method, c[i].params);
}

/* The tab's set-up, in one round trip (an HTTP thread; two when the options need more
 * commands than a batch holds). It repeats what on_attached queued,
 * and its replies mean all of it is in force: a new document must not be created before the
 * emulation and the lifecycle events are on (commands run in order, but Chromium applies some
 * of them in the renderer, and a navigation that moves the tab to another renderer can
 * overtake them there). A phone's tab is set up before it is handed out; any other tab before
 * its first call (page_call), so a create does not wait for a renderer nobody uses yet. */
static sbx_code page_setup_sync(br_tabs *t, const char *sid, int64_t timeout_ms, sbx_err *e) {
    cdp_cmd c[4 + EMULATION_MAX];
    int n = 0;
    c[n++] = (cdp_cmd){"Page.enable", NULL};
    c[n++] = (cdp_cmd){"Page.setLifecycleEventsEnabled", cJSON_CreateRaw("{\"enabled\":true}")};
    c[n++] = (cdp_cmd){"Network.enable", NULL};
    c[n++] = (cdp_cmd){"Runtime.enable", NULL}; /* console frames (events.h) */
    n += br_tabs_emulation_cmds(t, c + n, false, false);
    int first = n > CDP_MAX_BATCH ? CDP_MAX_BATCH : n;
    sbx_code rc = cdp_call_all(t->conn, sid, c, first, timeout_ms, e);
    if (rc != SBX_OK) {
        for (int i = first; i < n; i++)
            cJSON_Delete(c[i].params);
        return rc;
    }
    if (n > first && (rc = cdp_call_all(t->conn, sid, c + first, n - first, timeout_ms, e)))
        return rc;
    if (t->em.locale[0]) {
        /* The locale is the renderer process's: on_attached already set it, or another tab of
         * the session in the same renderer (a popup's opener) did, with the same locale. */
        cJSON *l = cJSON_CreateObject();
        cJSON_AddStringToObject(l, "locale", t->em.locale);
        sbx_err le;
        rc = cdp_call(t->conn, sid, "Emulation.setLocaleOverride", l, timeout_ms, NULL, &le);
        if (rc != SBX_OK && !(rc == SBX_EINTERNAL && strstr(le.msg, "already in effect"))) {
            if (e)
                *e = le;
            return rc;
        }
    }
    return SBX_OK;
}

/* Set the tab up now unless that is done (two callers racing both send it: harmless). */
static sbx_code page_setup_now(br_page *p, int64_t timeout_ms, sbx_err *e) {
    br_tabs *t = p->t;
    pthread_mutex_lock(&t->mu);
    bool pending = p->setup_pending;
    pthread_mutex_unlock(&t->mu);
    if (!pending)
        return SBX_OK;
    sbx_code rc = page_setup_sync(t, p->cdp_sid, timeout_ms, e);
    if (rc == SBX_OK) {
        pthread_mutex_lock(&t->mu);
        p->setup_pending = false;
        pthread_mutex_unlock(&t->mu);
    }
    return rc;
}

/* ---- CDP events (service thread) ---- */

/* A target attached, announced on session `on` (NULL: the browser's; a tab's or a kid's for
 * its out-of-process iframes). */
/* Locked: how many tabs are open. */
static int open_tabs_locked(const br_tabs *t) {
    int n = 0;
    for (int i = 0; i < t->npages; i++)
        n += !t->pages[i]->closed;
    return n;
}

br_page *br_record_add(br_page ***all, int *n, int *cap) {
    if (*n == *cap) {
        int grown_cap = *cap ? 2 * *cap : 8;
        br_page **grown = realloc(*all, (size_t)grown_cap * sizeof *grown);
        if (!grown)
            return NULL;
        *all = grown;
        *cap = grown_cap;
    }
    br_page *p = calloc(1, sizeof *p);
    if (p)
        (*all)[(*n)++] = p;
    return p;
}

/* Locked: a zeroed record for a new tab, or NULL when MAX_TABS are open (or out of memory).
 * A record closed TAB_REUSE_MS ago is reused, so a session that opens and closes tabs for
 * hours keeps a bounded number of them. */
static br_page *page_record_locked(br_tabs *t) {
    if (open_tabs_locked(t) >= MAX_TABS)
        return NULL;
    int64_t now = sbx_now_ms();
    for (int i = 0; i < t->npages; i++) {
        br_page *p = t->pages[i];
        if (p->closed && now - p->closed_ms >= TAB_REUSE_MS) {
            free(p->url);
            free(p->title);
            memset(p, 0, sizeof *p);
            return p;
        }
    }
    return br_record_add(&t->pages, &t->npages, &t->cap_pages);
}

static void on_attached(br_tabs *t, const char *on, const cJSON *params) {
    const char *sid = jstr(params, "sessionId");
    const cJSON *ti = cJSON_GetObjectItemCaseSensitive(params, "targetInfo");
    const char *type = jstr(ti, "type");
    const char *tid = jstr(ti, "targetId");
    if (!sid || !tid)
        return;
    if (on && type && strcmp(type, "iframe") == 0) {
        br_oopif_attached(t, on, params);
        return;
    }
    if (!type || strcmp(type, "page") != 0) {
        cdp_send(t->conn, sid, "Runtime.runIfWaitingForDebugger", NULL);
        return;
    }
    /* Queue the tab's set-up before anyone can see the tab: whatever a handler sends to it
     * afterwards is ordered behind the emulation. */
    cdp_send(t->conn, sid, "Page.enable", NULL);
    cJSON *lc = cJSON_CreateObject();
    cJSON_AddBoolToObject(lc, "enabled", 1);
    cdp_send(t->conn, sid, "Page.setLifecycleEventsEnabled", lc);
    cdp_send(t->conn, sid, "Network.enable", NULL);
    cdp_send(t->conn, sid, "Runtime.enable", NULL);
    apply_device(t, sid);
    /* its out-of-process iframes attach as sessions of their own (oopif.c) */
    cdp_send(t->conn, sid, "Target.setAutoAttach", cJSON_CreateRaw(BR_OOPIF_AUTOATTACH));
    cdp_cmd hc[BR_TAB_HOOK_MAX];
    int nh = t->hook.attach ? t->hook.attach(t->hook.ud, hc, BR_TAB_HOOK_MAX) : 0;
    for (int i = 0; i < nh; i++)
        cdp_send(t->conn, sid, hc[i].method, hc[i].params);
    cdp_send(t->conn, sid, "Runtime.runIfWaitingForDebugger", NULL);
    pthread_mutex_lock(&t->mu);
    br_page *p = page_by_target(t, tid) ? NULL : page_record_locked(t);
    if (p && sbx_random_id(p->tab_id) == 0) {
        p->t = t;
        snprintf(p->target_id, sizeof p->target_id, "%s", tid);
        snprintf(p->cdp_sid, sizeof p->cdp_sid, "%s", sid);
        set_str(&p->url, jstr(ti, "url"));
        set_str(&p->title, jstr(ti, "title"));
        p->setup_pending = true;
        if (!t->current || t->current->closed)
            t->current = p;
        br_page *opener = page_by_target(t, jstr(ti, "openerId"));
        br_events_tab(t->events, p->tab_id, "opened", p->url, opener ? opener->tab_id : NULL);
    } else if (!page_by_target(t, tid)) {
        /* MAX_TABS are open (a page opening popups in a loop): this one is closed at once
         * rather than left running untracked. */
        if (p)
            p->closed = true; /* its record is free again */
        cJSON *c = cJSON_CreateObject();
        cJSON_AddStringToObject(c, "targetId", tid);
        cdp_send(t->conn, NULL, "Target.closeTarget", c);
    }
    pthread_cond_broadcast(&t->cv);
    pthread_mutex_unlock(&t->mu);
}

static void on_lifecycle(br_tabs *t, const char *sid, const cJSON *params) {
    br_page *p = page_by_sid(t, sid);
    const char *frame = jstr(params, "frameId"), *loader = jstr(params, "loaderId"),
               *name = jstr(params, "name");
    if (!p || !frame || !loader || !name || strcmp(frame, p->target_id) != 0)
        return;
    if (strcmp(name, "init") == 0 || strcmp(loader, p->lc_loader) != 0) {
        snprintf(p->lc_loader, sizeof p->lc_loader, "%s", loader);
        p->lc_mask = 0;
    }
    if (strcmp(name, "DOMContentLoaded") == 0)
        p->lc_mask |= BR_LC_DCL;
    if (strcmp(name, "load") == 0)
        p->lc_mask |= BR_LC_LOAD;
    if (strcmp(name, "networkIdle") == 0)
        p->lc_mask |= BR_LC_IDLE;
    if (strcmp(name, "networkAlmostIdle") == 0)
        p->lc_mask |= BR_LC_ALMOST;
    pthread_cond_broadcast(&t->cv);
}

/* A tab closed (locked): its frame, once. */
static void note_closed_locked(br_tabs *t, br_page *p) {
    if (p && !p->closed) {
        p->closed = true;
        p->closed_ms = sbx_now_ms();
        br_events_tab(t->events, p->tab_id, "closed", NULL, NULL);
        br_oopif_tab_closed_locked(t, p);
    }
}

static void on_event(void *ud, const char *method, const char *sid, const cJSON *params) {
    br_tabs *t = ud;
    char crashed_sid[64] = "", kid_gone[64] = "";
    if (strcmp(method, "Target.attachedToTarget") == 0) {
        on_attached(t, sid, params);
        return;
    }
    if (strcmp(method, "Runtime.bindingCalled") == 0) {
        if (t->hook.binding)
            t->hook.binding(t->hook.ud, t, params);
        return;
    }
    if (t->events && sid) {
        char tab[SBX_ID_LEN] = "";
        pthread_mutex_lock(&t->mu);
        br_page *p = page_by_sid(t, sid);
        if (p)
            memcpy(tab, p->tab_id, SBX_ID_LEN);
        pthread_mutex_unlock(&t->mu);
        br_events_cdp(t->events, method, tab, params);
    } else if (strncmp(method, "Browser.download", 16) == 0) {
        char tab[SBX_ID_LEN] = ""; /* the tab whose main frame started it */
        pthread_mutex_lock(&t->mu);
        br_page *p = page_by_target(t, jstr(params, "frameId"));
        if (p)
            memcpy(tab, p->tab_id, SBX_ID_LEN);
        pthread_mutex_unlock(&t->mu);
        br_downloads_cdp(t->downloads, method, tab, params);
        return;
    }
    if (strcmp(method, "Page.javascriptDialogOpening") == 0) {
        cJSON *a = cJSON_CreateObject();
        cJSON_AddBoolToObject(a, "accept", 0);
        cdp_send(t->conn, sid, "Page.handleJavaScriptDialog", a);
        return;
    }
    pthread_mutex_lock(&t->mu);
    if (strcmp(method, "Page.lifecycleEvent") == 0) {
        on_lifecycle(t, sid, params);
    } else if (strcmp(method, "Network.responseReceived") == 0) {
        br_page *p = page_by_sid(t, sid);
        const char *type = jstr(params, "type"), *frame = jstr(params, "frameId"),
                   *req = jstr(params, "requestId");
        const cJSON *resp = cJSON_GetObjectItemCaseSensitive(params, "response");
        const cJSON *st = cJSON_GetObjectItemCaseSensitive(resp, "status");
        if (p && type && frame && req && cJSON_IsNumber(st) && strcmp(type, "Document") == 0 &&
            strcmp(frame, p->target_id) == 0) {
            snprintf(p->doc_req, sizeof p->doc_req, "%s", req);
            p->doc_status = st->valueint;
        }
    } else if (strcmp(method, "Target.targetInfoChanged") == 0) {
        const cJSON *ti = cJSON_GetObjectItemCaseSensitive(params, "targetInfo");
        br_page *p = page_by_target(t, jstr(ti, "targetId"));
        if (p) {
            set_str(&p->url, jstr(ti, "url"));
            set_str(&p->title, jstr(ti, "title"));
        }
    } else if (strcmp(method, "Target.detachedFromTarget") == 0) {
        if (!br_oopif_gone_locked(t, jstr(params, "sessionId"), NULL, kid_gone))
            note_closed_locked(t, page_by_sid(t, jstr(params, "sessionId")));
        pthread_cond_broadcast(&t->cv);
    } else if (strcmp(method, "Target.targetDestroyed") == 0) {
        note_closed_locked(t, page_by_target(t, jstr(params, "targetId")));
        pthread_cond_broadcast(&t->cv);
    } else if (strcmp(method, "Target.targetCrashed") == 0 ||
               strcmp(method, "Inspector.targetCrashed") == 0) {
        /* A renderer died: the tabs it drew are dead until navigated again (Chromium answers
         * nothing sent to them meanwhile), the session and its other tabs live on. */
        br_page *p = sid ? page_by_sid(t, sid) : page_by_target(t, jstr(params, "targetId"));
        if (!p) /* an out-of-process iframe's renderer: the frame is gone, its tab lives on */
            br_oopif_gone_locked(t, sid, sid ? NULL : jstr(params, "targetId"), kid_gone);
        const char *status = jstr(params, "status"); /* only Target.targetCrashed has it */
        if (p && (!p->crashed || status)) {
            if (!p->crashed) {
                LOG_W("browser", "session=%s tab=%s renderer died (%s)", t->id, p->tab_id,
                      status ? status : "crashed");
                br_events_tab(t->events, p->tab_id, "crashed", NULL, status ? status : "crashed");
            }
            p->crashed = true;
            snprintf(p->crash_why, sizeof p->crash_why, "%s", status ? status : "crashed");
            snprintf(crashed_sid, sizeof crashed_sid, "%s", p->cdp_sid);
            pthread_cond_broadcast(&t->cv);
        }
    } else if (strcmp(method, "Inspector.targetReloadedAfterCrash") == 0) {
        br_page *p = page_by_sid(t, sid);
        if (p)
            p->crashed = false;
    }
    pick_current_locked(t);
    pthread_mutex_unlock(&t->mu);
    if (crashed_sid[0])
        cdp_fail_session(t->conn, crashed_sid, SBX_ETABCRASHED, tab_crashed_msg);
    if (kid_gone[0])
        cdp_fail_session(t->conn, kid_gone, SBX_ESTALEREF, oopif_gone_msg);
}

static void on_close(void *ud, const char *why) {
    br_tabs_mark_crashed(ud, why);
}

cdp_handlers br_tabs_handlers(br_tabs *t) {
    return (cdp_handlers){on_event, on_close, t};
}

/* ---- opening, listing and closing tabs ---- */

/* A call's outcome: a broken connection means the browser is gone. */
static sbx_code note_broken(br_tabs *t, sbx_code rc) {
    if (rc == SBX_ECRASHED)
        br_tabs_mark_crashed(t, "the DevTools connection broke");
    return rc;
}

static sbx_code crashed_err(br_tabs *t, sbx_err *e) {
    if (br_tabs_crashed(t, NULL))
        return sbx_fail(e, SBX_ECRASHED, "the session's Chromium died; the session is gone");
    return SBX_OK;
}

sbx_code br_tabs_open(br_tabs *t, bool mobile, int64_t to, char first_id[SBX_ID_LEN], sbx_err *e) {
    t->mobile = mobile;
    cdp_cmd c[] = {
        {"Target.setDiscoverTargets", cJSON_CreateRaw("{\"discover\":true}")},
        {"Target.setAutoAttach",
         cJSON_CreateRaw("{\"autoAttach\":true,"
                         "\"waitForDebuggerOnStart\":true,\"flatten\":true}")},
    };
    sbx_code rc = cdp_call_all(t->conn, NULL, c, 2, to, e);
    if (rc != SBX_OK)
        return rc;
    int64_t deadline = sbx_deadline_in(3000);
    pthread_mutex_lock(&t->mu);
    while (!t->current && !t->crashed && sbx_now_ms() < deadline)
        wait_locked(t, deadline);
    br_page *first = t->current;
    pthread_mutex_unlock(&t->mu);
    if (!first) {
        cJSON *a = cJSON_CreateObject();
        cJSON_AddStringToObject(a, "url", "about:blank");
        rc = cdp_call(t->conn, NULL, "Target.createTarget", a, to, NULL, e);
        deadline = sbx_deadline_in(to);
        pthread_mutex_lock(&t->mu);
        while (rc == SBX_OK && !t->current && !t->crashed && sbx_now_ms() < deadline)
            wait_locked(t, deadline);
        first = t->current;
        pthread_mutex_unlock(&t->mu);
        if (rc != SBX_OK)
            return rc;
        if (!first)
            return sbx_fail(e, SBX_EUNAVAIL, "Chromium opened no tab");
    }
    /* A desktop session's first tab is set up before its first call, not here: a fresh
     * Chromium's renderer takes ~80 ms more to answer, and the create need not wait for it. */
    if (mobile && (rc = page_setup_now(first, to, e)) != SBX_OK)
        return rc;
    memcpy(first_id, first->tab_id, SBX_ID_LEN);
    return SBX_OK;
}

br_page *br_tabs_page(br_tabs *t, const char *tab_id, sbx_err *e) {
    pthread_mutex_lock(&t->mu);
    br_page *p = NULL;
    if (!tab_id || !*tab_id) {
        p = t->current;
        if (!p)
            sbx_fail(e, SBX_ENOTFOUND, "the session has no open tab; create one");
    } else {
        for (int i = 0; i < t->npages && !p; i++)
            if (!t->pages[i]->closed && strcmp(t->pages[i]->tab_id, tab_id) == 0)
                p = t->pages[i];
        if (!p)
            sbx_fail(e, SBX_ENOTFOUND, "no tab %s in this session", tab_id);
    }
    pthread_mutex_unlock(&t->mu);
    return p;
}

static cJSON *tabs_json_locked(br_tabs *t) {
    cJSON *arr = cJSON_CreateArray();
    for (int i = 0; i < t->npages; i++) {
        br_page *p = t->pages[i];
        if (p->closed)
            continue;
        cJSON *o = cJSON_CreateObject();
        cJSON_AddStringToObject(o, "tabId", p->tab_id);
        cJSON_AddStringToObject(o, "url", p->url ? p->url : "");
        cJSON_AddStringToObject(o, "title", p->title ? p->title : "");
        cJSON_AddBoolToObject(o, "active", p == t->current);
        cJSON_AddBoolToObject(o, "crashed", p->crashed);
        cJSON_AddItemToArray(arr, o);
    }
    return arr;
}

cJSON *br_tabs_json(br_tabs *t, bool refresh) {
    /* Refresh titles and URLs (title changes do not always raise targetInfoChanged). */
    cJSON *res = NULL;
    sbx_err e;
    if (refresh && cdp_call(t->conn, NULL, "Target.getTargets", NULL, 5000, &res, &e) == SBX_OK) {
        const cJSON *infos = cJSON_GetObjectItemCaseSensitive(res, "targetInfos");
        const cJSON *ti;
        pthread_mutex_lock(&t->mu);
        cJSON_ArrayForEach(ti, infos) {
            br_page *p = page_by_target(t, jstr(ti, "targetId"));
            if (p) {
                set_str(&p->url, jstr(ti, "url"));
                set_str(&p->title, jstr(ti, "title"));
            }
        }
        pthread_mutex_unlock(&t->mu);
        cJSON_Delete(res);
    }
    pthread_mutex_lock(&t->mu);
    cJSON *arr = tabs_json_locked(t);
    pthread_mutex_unlock(&t->mu);
    return arr;
}

void br_tabs_add_json(br_tabs *t, cJSON *o) {
    pthread_mutex_lock(&t->mu);
    cJSON_AddItemToObject(o, "tabs", tabs_json_locked(t));
    pthread_mutex_unlock(&t->mu);
}

sbx_code br_tabs_browser_call(br_tabs *t, const char *method, cJSON *params, int64_t timeout_ms,
                              cJSON **result, sbx_err *e) {
    if (result)
        *result = NULL;
    if (crashed_err(t, e) != SBX_OK) {
        cJSON_Delete(params);
        return SBX_ECRASHED;
    }
    return note_broken(t, cdp_call(t->conn, NULL, method, params, timeout_ms, result, e));
}

sbx_code br_tabs_create(br_tabs *t, int64_t timeout_ms, br_page **page, char tab[SBX_ID_LEN],
                        sbx_err *e) {
    pthread_mutex_lock(&t->mu);
    int open = open_tabs_locked(t);
    pthread_mutex_unlock(&t->mu);
    if (open >= MAX_TABS)
        return sbx_fail(e, SBX_ECONFLICT,
                        "the session has %d open tabs, the most it keeps; close one first", open);
    cJSON *c = cJSON_CreateObject();
    cJSON_AddStringToObject(c, "url", "about:blank");
    cJSON *res = NULL;
    int64_t deadline = sbx_deadline_in(timeout_ms);
    sbx_code rc = cdp_call(t->conn, NULL, "Target.createTarget", c, timeout_ms, &res, e);
    if (rc != SBX_OK)
        return rc;
    char tid[64];
    snprintf(tid, sizeof tid, "%s", jstr(res, "targetId") ? jstr(res, "targetId") : "");
    cJSON_Delete(res);
    pthread_mutex_lock(&t->mu);
    br_page *p = NULL;
    while (!(p = page_by_target(t, tid)) && !t->crashed && sbx_now_ms() < deadline)
        wait_locked(t, deadline);
    if (p) {
        t->current = p;
        memcpy(tab, p->tab_id, SBX_ID_LEN);
    }
    bool crashed = t->crashed;
    pthread_mutex_unlock(&t->mu);
    if (crashed)
        return sbx_fail(e, SBX_ECRASHED, "the session's Chromium died");
    if (!p)
        return sbx_fail(e, SBX_ETIMEOUT, "the new tab did not attach in time");
    /* As for a session's first tab: a desktop tab is set up before its first call (~20 ms
     * for a new renderer), a phone's before it is handed out. */
    if (t->mobile && (rc = page_setup_now(p, sbx_left_ms(deadline), e)) != SBX_OK)
        return rc;
    *page = p;
    return SBX_OK;
}

sbx_code br_tabs_close(br_tabs *t, const char *tab_id, int64_t timeout_ms, sbx_err *e) {
    br_page *p = br_tabs_page(t, tab_id, e);
    if (!p)
        return SBX_ENOTFOUND;
    cJSON *c = cJSON_CreateObject();
    cJSON_AddStringToObject(c, "targetId", p->target_id);
    sbx_code rc = cdp_call(t->conn, NULL, "Target.closeTarget", c, timeout_ms, NULL, e);
    if (rc != SBX_OK)
        return rc;
    pthread_mutex_lock(&t->mu);
    note_closed_locked(t, p);
    pick_current_locked(t);
    pthread_mutex_unlock(&t->mu);
    return SBX_OK;
}

/* ---- page calls ---- */

/* One command (cmds[0], with its result) or a batch; a broken connection marks the browser
 * crashed. */
static sbx_code page_call(br_page *p, const cdp_cmd *cmds, int n, int64_t timeout_ms,
                          cJSON **result, sbx_err *e) {
    br_tabs *t = p->t;
    if (result)
        *result = NULL;
    if (crashed_err(t, e) != SBX_OK) {
        for (int i = 0; i < n; i++)
            cJSON_Delete(cmds[i].params);
        return SBX_ECRASHED;
    }
    pthread_mutex_lock(&t->mu);
    bool crashed = p->crashed, dead_tab = crashed && strcmp(cmds[0].method, "Page.navigate") != 0;
    bool kid_gone = p->owner && p->closed;
    char why[sizeof p->crash_why], sid[sizeof p->cdp_sid];
    snprintf(why, sizeof why, "%s", p->crash_why);
    memcpy(sid, p->cdp_sid, sizeof sid);
    pthread_mutex_unlock(&t->mu);
    sbx_code rc = SBX_OK;
    if (kid_gone)
        rc = sbx_fail(e, SBX_ESTALEREF, "%s", oopif_gone_msg);
    else if (dead_tab)
        rc = sbx_fail(e, SBX_ETABCRASHED, "%s (%s)", tab_crashed_msg, why);
    else if (!crashed) /* a crashed tab answers nothing until a navigation: set it up after */
        rc = page_setup_now(p, timeout_ms, e);
    if (rc != SBX_OK) {
        for (int i = 0; i < n; i++)
            cJSON_Delete(cmds[i].params);
        return rc;
    }
    rc = note_broken(
        t, n == 1 ? cdp_call(t->conn, sid, cmds[0].method, cmds[0].params, timeout_ms, result, e)
                  : cdp_call_all(t->conn, sid, cmds, n, timeout_ms, e));
    if (rc == SBX_ETIMEOUT && e) {
        /* Say what usually causes it and what helps (closing the tab ends its renderer). */
        char what[200];
        snprintf(what, sizeof what, "%.199s", e->msg);
        sbx_fail(e, SBX_ETIMEOUT,
                 "%s: the page is not answering (a script busy in a long or endless loop?); "
                 "close the tab (DELETE .../tabs/{tabId}) and open a new one",
                 what);
    }
    return rc;
}

sbx_code br_page_call(br_page *p, const char *method, cJSON *params, int64_t timeout_ms,
                      cJSON **result, sbx_err *e) {
    cdp_cmd one = {method, params};
    return page_call(p, &one, 1, timeout_ms, result, e);
}

sbx_code br_page_call_all(br_page *p, const cdp_cmd *cmds, int n, int64_t timeout_ms, sbx_err *e) {
    return page_call(p, cmds, n, timeout_ms, NULL, e);
}

sbx_code br_page_eval(br_page *p, const char *expression, int64_t timeout_ms, cJSON **value,
                      sbx_err *e) {
    if (value)
        *value = NULL;
    cJSON *a = cJSON_CreateObject();
    cJSON_AddStringToObject(a, "expression", expression);
    cJSON_AddBoolToObject(a, "awaitPromise", 1);
    cJSON_AddBoolToObject(a, "returnByValue", 1);
    cJSON_AddBoolToObject(a, "userGesture", 1);
    cJSON *res = NULL;
    sbx_code rc = br_page_call(p, "Runtime.evaluate", a, timeout_ms, &res, e);
    if (rc != SBX_OK)
        return rc;
    const cJSON *ex = cJSON_GetObjectItemCaseSensitive(res, "exceptionDetails");
    if (ex) {
        const cJSON *exc = cJSON_GetObjectItemCaseSensitive(ex, "exception");
        const char *msg = jstr(exc, "description");
        if (!msg)
            msg = jstr(ex, "text");
        sbx_fail(e, SBX_EINVAL, "JavaScript error: %s", msg ? msg : "exception");
        cJSON_Delete(res);
        return SBX_EINVAL;
    }
    const cJSON *r = cJSON_GetObjectItemCaseSensitive(res, "result");
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(r, "value");
    if (value)
        *value = v ? cJSON_Duplicate(v, 1) : cJSON_CreateNull();
    cJSON_Delete(res);
    return SBX_OK;
}

bool br_page_is_mobile(const br_page *p) {
    return p->t->mobile;
}

const char *br_page_dir(const br_page *p) {
    return p->t->dir ? p->t->dir : "";
}

bool br_page_download_since(br_page *p, int64_t since, int64_t wait_ms, char *name, size_t cap) {
    int64_t deadline = sbx_deadline_in(wait_ms);
    for (;;) {
        if (br_downloads_started(p->t->downloads, p->tab_id, since, name, cap))
            return true;
        if (sbx_now_ms() >= deadline)
            return false;
        struct timespec ts = {0, 20 * 1000000L};
        nanosleep(&ts, NULL);
    }
}

void br_page_loader(br_page *p, char *loader) {
    pthread_mutex_lock(&p->t->mu);
    snprintf(loader, 64, "%s", p->lc_loader);
    pthread_mutex_unlock(&p->t->mu);
}

const char *br_page_frame_id(const br_page *p) {
    return p->target_id; /* a page target's main frame has the target's id */
}

/* ---- what navigate.c waits for ---- */

sbx_code br_page_wait_loaded(br_page *p, const char *loader, unsigned need, int64_t deadline,
                             int *status) {
    br_tabs *t = p->t;
    pthread_mutex_lock(&t->mu);
    while (!t->crashed && !t->closing && !p->closed && !p->crashed &&
           !(strcmp(p->lc_loader, loader) == 0 && (p->lc_mask & need) == need) &&
           sbx_now_ms() < deadline)
        wait_locked(t, deadline);
    bool ok = strcmp(p->lc_loader, loader) == 0 && (p->lc_mask & need) == need;
    bool gone = t->crashed || t->closing;
    bool tab_crashed = !ok && p->crashed, closed = !ok && p->closed;
    *status = strcmp(p->doc_req, loader) == 0 ? p->doc_status : 0;
    pthread_mutex_unlock(&t->mu);
    if (gone)
        return SBX_ECRASHED;
    if (tab_crashed)
        return SBX_ETABCRASHED;
    if (closed)
        return SBX_ENOTFOUND;
    return ok ? SBX_OK : SBX_ETIMEOUT;
}

void br_page_revived(br_page *p) {
    pthread_mutex_lock(&p->t->mu);
    p->crashed = false;
    pthread_mutex_unlock(&p->t->mu);
}
