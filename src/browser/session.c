/* session.c -- browser sessions: registry, CDP event handling, tabs, navigation, page calls. */
#define _GNU_SOURCE
#include "session.h"

#include <errno.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "../common/config.h"
#include "../common/log.h"
#include "../common/util.h"
#include "cdp.h"
#include "chromium.h"
#include "pool.h"

#define MAX_TABS 64
#define MOBILE_UA                                                                                  \
    "Mozilla/5.0 (Linux; Android 14; Pixel 8) AppleWebKit/537.36 (KHTML, like Gecko) "             \
    "Chrome/156.0.0.0 Mobile Safari/537.36"

enum { LC_DCL = 1, LC_LOAD = 2, LC_IDLE = 4, LC_ALMOST = 8 };

struct br_page {
    br_session *s;
    char tab_id[SBX_ID_LEN];
    char target_id[64];
    char cdp_sid[64];
    char *url, *title;
    bool closed;
    char lc_loader[64];
    unsigned lc_mask;
    char doc_req[64];
    int doc_status;
    bool crashed;       /* its renderer died; a navigation loads it again */
    bool setup_pending; /* its set-up is queued but not yet known to be in force */
    char crash_why[32]; /* Chromium's status: "crashed", "killed", "oom", ... */
};

struct br_session {
    br_session *next;
    char id[SBX_ID_LEN];
    char dir[4096];
    bool mobile;
    int64_t created_wall, created_mono, last_used;
    chromium_proc proc;
    cdp_conn *conn;
    pthread_mutex_t mu; /* pages, nav state, crashed */
    pthread_cond_t cv;
    br_page *pages[MAX_TABS];
    int npages;
    br_page *current;
    bool crashed, closing;
    char crash_why[128];
    /* registry fields (reg_mu) */
    int refs;
    bool listed, reaped;
    int64_t crashed_at;
};

static pthread_mutex_t reg_mu = PTHREAD_MUTEX_INITIALIZER;
static br_session *reg;
static int reserved; /* sessions being created */
static int cold;     /* of those, launching their own Chromium */
static char *chromium_bin;
static int alive;          /* allocated sessions, listed or not */
static bool shutting_down; /* no session is listed any more */

/* ---- small helpers ---- */

static void timed_wait(br_session *s, int64_t deadline) {
    int64_t left = deadline - sbx_now_ms();
    if (left <= 0)
        return;
    if (left > 250)
        left = 250;
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    ts.tv_sec += left / 1000;
    ts.tv_nsec += (left % 1000) * 1000000L;
    if (ts.tv_nsec >= 1000000000L) {
        ts.tv_sec++;
        ts.tv_nsec -= 1000000000L;
    }
    pthread_cond_timedwait(&s->cv, &s->mu, &ts);
}

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
static br_page *page_by_sid(br_session *s, const char *sid) {
    if (!sid)
        return NULL;
    for (int i = 0; i < s->npages; i++)
        if (!s->pages[i]->closed && strcmp(s->pages[i]->cdp_sid, sid) == 0)
            return s->pages[i];
    return NULL;
}

static br_page *page_by_target(br_session *s, const char *tid) {
    if (!tid)
        return NULL;
    for (int i = 0; i < s->npages; i++)
        if (!s->pages[i]->closed && strcmp(s->pages[i]->target_id, tid) == 0)
            return s->pages[i];
    return NULL;
}

static void mark_crashed_locked(br_session *s, const char *why) {
    if (s->crashed || s->closing)
        return;
    s->crashed = true;
    snprintf(s->crash_why, sizeof s->crash_why, "%s", why);
    LOG_W("browser", "session=%s crashed: %s", s->id, why);
    pthread_cond_broadcast(&s->cv);
}

static void apply_device(br_session *s, const char *sid) {
    if (!s->mobile)
        return;
    cJSON *m = cJSON_CreateObject();
    cJSON_AddNumberToObject(m, "width", 390);
    cJSON_AddNumberToObject(m, "height", 844);
    cJSON_AddNumberToObject(m, "deviceScaleFactor", 3);
    cJSON_AddBoolToObject(m, "mobile", 1);
    cdp_send(s->conn, sid, "Emulation.setDeviceMetricsOverride", m);
    cJSON *t = cJSON_CreateObject();
    cJSON_AddBoolToObject(t, "enabled", 1);
    cJSON_AddNumberToObject(t, "maxTouchPoints", 5);
    cdp_send(s->conn, sid, "Emulation.setTouchEmulationEnabled", t);
    cJSON *u = cJSON_CreateObject();
    cJSON_AddStringToObject(u, "userAgent", MOBILE_UA);
    cJSON_AddStringToObject(u, "platform", "Linux armv8l");
    cdp_send(s->conn, sid, "Emulation.setUserAgentOverride", u);
}

/* The tab's set-up, in one round trip (an HTTP thread). It repeats what on_attached queued,
 * and its replies mean all of it is in force: a new document must not be created before the
 * emulation and the lifecycle events are on (commands run in order, but Chromium applies some
 * of them in the renderer, and a navigation that moves the tab to another renderer can
 * overtake them there). A phone's tab is set up before it is handed out; any other tab before
 * its first call (page_call), so a create does not wait for a renderer nobody uses yet. */
static sbx_code page_setup_sync(br_session *s, const char *sid, int64_t timeout_ms, sbx_err *e) {
    cdp_cmd c[6];
    int n = 0;
    c[n++] = (cdp_cmd){"Page.enable", NULL};
    c[n++] = (cdp_cmd){"Page.setLifecycleEventsEnabled", cJSON_CreateRaw("{\"enabled\":true}")};
    c[n++] = (cdp_cmd){"Network.enable", NULL};
    if (s->mobile) {
        c[n++] = (cdp_cmd){"Emulation.setDeviceMetricsOverride",
                           cJSON_CreateRaw("{\"width\":390,\"height\":844,"
                                           "\"deviceScaleFactor\":3,\"mobile\":true}")};
        c[n++] = (cdp_cmd){"Emulation.setTouchEmulationEnabled",
                           cJSON_CreateRaw("{\"enabled\":true,\"maxTouchPoints\":5}")};
        cJSON *u = cJSON_CreateObject();
        cJSON_AddStringToObject(u, "userAgent", MOBILE_UA);
        cJSON_AddStringToObject(u, "platform", "Linux armv8l");
        c[n++] = (cdp_cmd){"Emulation.setUserAgentOverride", u};
    }
    return cdp_call_all(s->conn, sid, c, n, timeout_ms, e);
}

static const char tab_crashed_msg[] =
    "the tab's renderer died; navigate the tab to load a page again, or close it";

/* Set the tab up now unless that is done (two callers racing both send it: harmless). */
static sbx_code page_setup_now(br_page *p, int64_t timeout_ms, sbx_err *e) {
    br_session *s = p->s;
    pthread_mutex_lock(&s->mu);
    bool pending = p->setup_pending;
    pthread_mutex_unlock(&s->mu);
    if (!pending)
        return SBX_OK;
    sbx_code rc = page_setup_sync(s, p->cdp_sid, timeout_ms, e);
    if (rc == SBX_OK) {
        pthread_mutex_lock(&s->mu);
        p->setup_pending = false;
        pthread_mutex_unlock(&s->mu);
    }
    return rc;
}

/* ---- CDP events (service thread) ---- */

static void on_attached(br_session *s, const cJSON *params) {
    const char *sid = jstr(params, "sessionId");
    const cJSON *ti = cJSON_GetObjectItemCaseSensitive(params, "targetInfo");
    const char *type = jstr(ti, "type");
    const char *tid = jstr(ti, "targetId");
    if (!sid || !tid)
        return;
    if (!type || strcmp(type, "page") != 0) {
        cdp_send(s->conn, sid, "Runtime.runIfWaitingForDebugger", NULL);
        return;
    }
    /* Queue the tab's set-up before anyone can see the tab: whatever a handler sends to it
     * afterwards is ordered behind the emulation. */
    cdp_send(s->conn, sid, "Page.enable", NULL);
    cJSON *lc = cJSON_CreateObject();
    cJSON_AddBoolToObject(lc, "enabled", 1);
    cdp_send(s->conn, sid, "Page.setLifecycleEventsEnabled", lc);
    cdp_send(s->conn, sid, "Network.enable", NULL);
    apply_device(s, sid);
    cdp_send(s->conn, sid, "Runtime.runIfWaitingForDebugger", NULL);
    pthread_mutex_lock(&s->mu);
    if (s->npages < MAX_TABS && !page_by_target(s, tid)) {
        br_page *p = calloc(1, sizeof *p);
        if (p && sbx_random_id(p->tab_id) == 0) {
            p->s = s;
            snprintf(p->target_id, sizeof p->target_id, "%s", tid);
            snprintf(p->cdp_sid, sizeof p->cdp_sid, "%s", sid);
            set_str(&p->url, jstr(ti, "url"));
            set_str(&p->title, jstr(ti, "title"));
            p->setup_pending = true;
            s->pages[s->npages++] = p;
            if (!s->current || s->current->closed)
                s->current = p;
        } else {
            free(p);
        }
    }
    pthread_cond_broadcast(&s->cv);
    pthread_mutex_unlock(&s->mu);
}

static void on_event(void *ud, const char *method, const char *sid, const cJSON *params) {
    br_session *s = ud;
    char crashed_sid[64] = "";
    if (strcmp(method, "Target.attachedToTarget") == 0) {
        on_attached(s, params);
        return;
    }
    if (strcmp(method, "Page.javascriptDialogOpening") == 0) {
        cJSON *a = cJSON_CreateObject();
        cJSON_AddBoolToObject(a, "accept", 0);
        cdp_send(s->conn, sid, "Page.handleJavaScriptDialog", a);
        return;
    }
    pthread_mutex_lock(&s->mu);
    if (strcmp(method, "Page.lifecycleEvent") == 0) {
        br_page *p = page_by_sid(s, sid);
        const char *frame = jstr(params, "frameId"), *loader = jstr(params, "loaderId"),
                   *name = jstr(params, "name");
        if (p && frame && loader && name && strcmp(frame, p->target_id) == 0) {
            if (strcmp(name, "init") == 0 || strcmp(loader, p->lc_loader) != 0) {
                snprintf(p->lc_loader, sizeof p->lc_loader, "%s", loader);
                p->lc_mask = 0;
            }
            if (strcmp(name, "DOMContentLoaded") == 0)
                p->lc_mask |= LC_DCL;
            if (strcmp(name, "load") == 0)
                p->lc_mask |= LC_LOAD;
            if (strcmp(name, "networkIdle") == 0)
                p->lc_mask |= LC_IDLE;
            if (strcmp(name, "networkAlmostIdle") == 0)
                p->lc_mask |= LC_ALMOST;
            pthread_cond_broadcast(&s->cv);
        }
    } else if (strcmp(method, "Network.responseReceived") == 0) {
        br_page *p = page_by_sid(s, sid);
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
        br_page *p = page_by_target(s, jstr(ti, "targetId"));
        if (p) {
            set_str(&p->url, jstr(ti, "url"));
            set_str(&p->title, jstr(ti, "title"));
        }
    } else if (strcmp(method, "Target.detachedFromTarget") == 0) {
        br_page *p = page_by_sid(s, jstr(params, "sessionId"));
        if (p)
            p->closed = true;
        pthread_cond_broadcast(&s->cv);
    } else if (strcmp(method, "Target.targetDestroyed") == 0) {
        br_page *p = page_by_target(s, jstr(params, "targetId"));
        if (p)
            p->closed = true;
        pthread_cond_broadcast(&s->cv);
    } else if (strcmp(method, "Target.targetCrashed") == 0 ||
               strcmp(method, "Inspector.targetCrashed") == 0) {
        /* A renderer died: the tabs it drew are dead until navigated again (Chromium answers
         * nothing sent to them meanwhile), the session and its other tabs live on. */
        br_page *p = sid ? page_by_sid(s, sid) : page_by_target(s, jstr(params, "targetId"));
        const char *status = jstr(params, "status"); /* only Target.targetCrashed has it */
        if (p && (!p->crashed || status)) {
            if (!p->crashed)
                LOG_W("browser", "session=%s tab=%s renderer died (%s)", s->id, p->tab_id,
                      status ? status : "crashed");
            p->crashed = true;
            snprintf(p->crash_why, sizeof p->crash_why, "%s", status ? status : "crashed");
            snprintf(crashed_sid, sizeof crashed_sid, "%s", p->cdp_sid);
            pthread_cond_broadcast(&s->cv);
        }
    } else if (strcmp(method, "Inspector.targetReloadedAfterCrash") == 0) {
        br_page *p = page_by_sid(s, sid);
        if (p)
            p->crashed = false;
    }
    if (s->current && s->current->closed) {
        s->current = NULL;
        for (int i = s->npages - 1; i >= 0 && !s->current; i--)
            if (!s->pages[i]->closed)
                s->current = s->pages[i];
    }
    pthread_mutex_unlock(&s->mu);
    if (crashed_sid[0])
        cdp_fail_session(s->conn, crashed_sid, SBX_ETABCRASHED, tab_crashed_msg);
}

static void on_close(void *ud, const char *why) {
    br_session *s = ud;
    pthread_mutex_lock(&s->mu);
    mark_crashed_locked(s, why);
    pthread_mutex_unlock(&s->mu);
}

/* ---- lifecycle ---- */

void br_sessions_init(const char *bin) {
    free(chromium_bin);
    chromium_bin = bin ? strdup(bin) : NULL;
}

const char *br_sessions_chromium(void) {
    return chromium_bin;
}

/* Kill the Chromium process group once: the pid is cleared first, so a later call can never
 * hit a recycled pid. */
static void kill_browser(br_session *s) {
    pid_t pid = __atomic_exchange_n(&s->proc.pid, 0, __ATOMIC_SEQ_CST);
    if (pid > 0)
        chromium_kill(pid);
}

static void *remove_dir_later(void *arg) {
    char *dir = arg;
    int i = 0;
    while (sbx_rmtree(dir) < 0 && (errno == EMFILE || errno == ENFILE) && ++i < 300)
        usleep(100 * 1000);
    if (i == 300)
        LOG_W("browser", "could not remove %s: %s", dir, strerror(errno));
    free(dir);
    return NULL;
}

/* Remove a session's directory (and its short TMPDIR). A server out of descriptors (EMFILE)
 * cannot walk the tree now: a thread of its own tries again for up to 30 s. */
static void remove_dir(const char *dir) {
    chromium_remove_tmpdir(dir);
    if (sbx_rmtree(dir) == 0)
        return;
    if (errno == EMFILE || errno == ENFILE) {
        char *copy = strdup(dir);
        pthread_attr_t at;
        pthread_t t;
        pthread_attr_init(&at);
        pthread_attr_setdetachstate(&at, PTHREAD_CREATE_DETACHED);
        int rc = copy ? pthread_create(&t, &at, remove_dir_later, copy) : -1;
        pthread_attr_destroy(&at);
        if (rc == 0)
            return;
        free(copy);
    }
    LOG_W("browser", "could not remove %s: %s", dir, strerror(errno));
}

static void session_free(br_session *s) {
    if (!s)
        return;
    pthread_mutex_lock(&s->mu);
    s->closing = true;
    pthread_mutex_unlock(&s->mu);
    if (s->proc.pid > 0)
        kill_browser(s);
    cdp_close(s->conn);
    s->conn = NULL;
    if (s->dir[0])
        remove_dir(s->dir);
    for (int i = 0; i < s->npages; i++) {
        free(s->pages[i]->url);
        free(s->pages[i]->title);
        free(s->pages[i]);
    }
    pthread_mutex_destroy(&s->mu);
    pthread_cond_destroy(&s->cv);
    free(s);
    pthread_mutex_lock(&reg_mu);
    alive--;
    pthread_mutex_unlock(&reg_mu);
    br_pool_kick();
}

void br_session_discard(br_session *s) {
    session_free(s);
}

const char *br_session_id(const br_session *s) {
    return s->id;
}

bool br_session_usable(br_session *s) {
    pthread_mutex_lock(&s->mu);
    bool ok = !s->crashed && !s->closing && s->conn && !cdp_dead(s->conn);
    pthread_mutex_unlock(&s->mu);
    pid_t pid = __atomic_load_n(&s->proc.pid, __ATOMIC_SEQ_CST);
    if (ok && pid > 0) {
        /* Has the leader exited? WNOWAIT leaves it to be reaped by kill_browser. */
        siginfo_t si;
        memset(&si, 0, sizeof si);
        if (waitid(P_PID, (id_t)pid, &si, WEXITED | WNOHANG | WNOWAIT) != 0 || si.si_pid != 0)
            ok = false;
    }
    return ok && pid > 0;
}

br_session *br_session_launch(int64_t timeout_ms, sbx_err *e) {
    if (!chromium_bin) {
        sbx_fail(e, SBX_EUNAVAIL, "no Chromium found: install chromium or set CHROMIUM_PATH");
        return NULL;
    }
    br_session *s = calloc(1, sizeof *s);
    if (!s) {
        sbx_fail(e, SBX_EINTERNAL, "out of memory");
        return NULL;
    }
    pthread_mutex_lock(&reg_mu);
    alive++;
    pthread_mutex_unlock(&reg_mu);
    pthread_mutex_init(&s->mu, NULL);
    pthread_condattr_t ca;
    pthread_condattr_init(&ca);
    pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
    pthread_cond_init(&s->cv, &ca);
    pthread_condattr_destroy(&ca);
    if (sbx_random_id(s->id) != 0) {
        session_free(s);
        sbx_fail(e, SBX_EINTERNAL, "no randomness for a session id");
        return NULL;
    }
    snprintf(s->dir, sizeof s->dir, "%s/browser/%s", sbx_cfg->data_dir, s->id);
    int64_t t0 = sbx_now_ms(), deadline = t0 + timeout_ms;
    if (chromium_launch(chromium_bin, s->dir, timeout_ms, &s->proc, e) != SBX_OK) {
        session_free(s);
        return NULL;
    }
    cdp_handlers h = {on_event, on_close, s};
    /* DevToolsActivePort appears shortly before Chromium answers: retry the connect. */
    int tries = 0;
    for (;;) {
        sbx_err ce;
        tries++;
        s->conn = cdp_connect(s->proc.port, s->proc.ws_path, &h, deadline - sbx_now_ms(), &ce);
        if (s->conn) {
            if (cdp_call(s->conn, NULL, "Browser.getVersion", NULL, deadline - sbx_now_ms(), NULL,
                         &ce) == SBX_OK)
                break;
            cdp_close(s->conn);
            s->conn = NULL;
        }
        if (sbx_now_ms() + 5 >= deadline) {
            *e = ce;
            e->code = SBX_EUNAVAIL;
            session_free(s);
            return NULL;
        }
        struct timespec ts = {0, 5 * 1000000L};
        nanosleep(&ts, NULL);
    }
    LOG_I("browser", "session=%s chromium pid=%d answering after %lldms (%d connects)", s->id,
          (int)s->proc.pid, (long long)(sbx_now_ms() - t0), tries);
    return s;
}

sbx_code br_session_publish(br_session *s, bool mobile, sbx_err *e) {
    s->mobile = mobile;
    int64_t to = sbx_cfg->browser_launch_timeout_ms;
    cdp_cmd c[] = {
        {"Target.setDiscoverTargets", cJSON_CreateRaw("{\"discover\":true}")},
        {"Target.setAutoAttach",
         cJSON_CreateRaw("{\"autoAttach\":true,"
                         "\"waitForDebuggerOnStart\":true,\"flatten\":true}")},
    };
    sbx_code rc = cdp_call_all(s->conn, NULL, c, 2, to, e);
    br_page *first = NULL;
    if (rc == SBX_OK) {
        int64_t deadline = sbx_now_ms() + 3000;
        pthread_mutex_lock(&s->mu);
        while (!s->current && !s->crashed && sbx_now_ms() < deadline)
            timed_wait(s, deadline);
        first = s->current;
        pthread_mutex_unlock(&s->mu);
        if (!first) {
            cJSON *c = cJSON_CreateObject();
            cJSON_AddStringToObject(c, "url", "about:blank");
            rc = cdp_call(s->conn, NULL, "Target.createTarget", c, to, NULL, e);
            deadline = sbx_now_ms() + to;
            pthread_mutex_lock(&s->mu);
            while (rc == SBX_OK && !s->current && !s->crashed && sbx_now_ms() < deadline)
                timed_wait(s, deadline);
            first = s->current;
            pthread_mutex_unlock(&s->mu);
            if (rc == SBX_OK && !first)
                rc = sbx_fail(e, SBX_EUNAVAIL, "Chromium opened no tab");
        }
    }
    /* A desktop session's first tab is set up before its first call, not here: a fresh
     * Chromium's renderer takes ~80 ms more to answer, and the create need not wait for it. */
    if (rc == SBX_OK && mobile)
        rc = page_setup_now(first, to, e);
    if (rc != SBX_OK) {
        session_free(s);
        return rc;
    }
    s->created_wall = sbx_wall_ms();
    s->created_mono = s->last_used = sbx_now_ms();
    pthread_mutex_lock(&reg_mu);
    if (shutting_down) {
        pthread_mutex_unlock(&reg_mu);
        session_free(s);
        return sbx_fail(e, SBX_EUNAVAIL, "the server is shutting down");
    }
    s->listed = true;
    s->next = reg;
    reg = s;
    pthread_mutex_unlock(&reg_mu);
    LOG_I("browser", "session=%s created device=%s", s->id, mobile ? "mobile" : "desktop");
    return SBX_OK;
}

static int live_count_locked(void) {
    int n = 0;
    for (br_session *s = reg; s; s = s->next)
        if (!s->crashed)
            n++;
    return n;
}

int br_sessions_count(void) {
    pthread_mutex_lock(&reg_mu);
    int n = live_count_locked();
    pthread_mutex_unlock(&reg_mu);
    return n;
}

void br_sessions_load(int *in_use, int *cold_launches) {
    pthread_mutex_lock(&reg_mu);
    *in_use = live_count_locked() + reserved;
    *cold_launches = cold;
    pthread_mutex_unlock(&reg_mu);
}

/* Take a launched browser and make it the session: fills sid and tab; `s` is gone on failure. */
static sbx_code hand_out(br_session *s, bool mobile, char sid[SBX_ID_LEN], char tab[SBX_ID_LEN],
                         sbx_err *e) {
    memcpy(sid, s->id, SBX_ID_LEN);
    sbx_code rc = br_session_publish(s, mobile, e);
    if (rc == SBX_OK) {
        pthread_mutex_lock(&s->mu);
        memcpy(tab, s->current->tab_id, SBX_ID_LEN);
        pthread_mutex_unlock(&s->mu);
    }
    return rc;
}

sbx_code br_session_create(bool mobile, char sid[SBX_ID_LEN], char tab[SBX_ID_LEN], sbx_err *e) {
    if (!chromium_bin)
        return sbx_fail(e, SBX_EUNAVAIL,
                        "no Chromium found: install chromium or set CHROMIUM_PATH");
    pthread_mutex_lock(&reg_mu);
    if (live_count_locked() + reserved >= sbx_cfg->browser_max_sessions) {
        pthread_mutex_unlock(&reg_mu);
        sbx_fail(e, SBX_ETOOMANY, "at most %lld browser sessions may be open; close one first",
                 (long long)sbx_cfg->browser_max_sessions);
        e->retry_after = 5;
        return SBX_ETOOMANY;
    }
    reserved++;
    pthread_mutex_unlock(&reg_mu);
    sbx_code rc = SBX_EUNAVAIL;
    bool pooled = false;
    /* A pooled browser first; one that fails at hand-out is gone, and a cold launch follows. */
    br_session *s = br_pool_take();
    bool took = s != NULL;
    if (took) {
        char id[SBX_ID_LEN];
        memcpy(id, br_session_id(s), SBX_ID_LEN);
        rc = hand_out(s, mobile, sid, tab, e);
        pooled = rc == SBX_OK;
        if (rc != SBX_OK)
            LOG_W("browser", "session=%s pooled browser failed at hand-out: %s", id, e->msg);
    }
    pthread_mutex_lock(&reg_mu);
    bool launch = rc != SBX_OK && !shutting_down;
    if (launch)
        cold++;
    pthread_mutex_unlock(&reg_mu);
    if (!launch && !took)
        rc = sbx_fail(e, SBX_EUNAVAIL, "the server is shutting down");
    if (launch) {
        s = br_session_launch(sbx_cfg->browser_launch_timeout_ms, e);
        pthread_mutex_lock(&reg_mu);
        cold--;
        pthread_mutex_unlock(&reg_mu);
        br_pool_kick();
        rc = s ? hand_out(s, mobile, sid, tab, e) : e->code;
    }
    if (rc == SBX_OK)
        br_pool_note_session(pooled);
    pthread_mutex_lock(&reg_mu);
    reserved--;
    pthread_mutex_unlock(&reg_mu);
    br_pool_kick();
    return rc;
}

/* reg_mu held: take `s` off the list. */
static void unlist_locked(br_session *s) {
    for (br_session **pp = &reg; *pp; pp = &(*pp)->next) {
        if (*pp == s) {
            *pp = s->next;
            break;
        }
    }
    s->listed = false;
}

br_session *br_session_get(const char *id, sbx_err *e) {
    pthread_mutex_lock(&reg_mu);
    br_session *s = reg;
    while (s && strcmp(s->id, id) != 0)
        s = s->next;
    if (!s) {
        pthread_mutex_unlock(&reg_mu);
        sbx_fail(e, SBX_ENOTFOUND, "no browser session %s", id);
        return NULL;
    }
    pthread_mutex_lock(&s->mu);
    bool crashed = s->crashed;
    char why[128];
    snprintf(why, sizeof why, "%s", s->crash_why);
    pthread_mutex_unlock(&s->mu);
    if (crashed) {
        unlist_locked(s);
        bool now = s->refs == 0;
        pthread_mutex_unlock(&reg_mu);
        if (now)
            session_free(s);
        sbx_fail(e, SBX_ECRASHED, "the session's Chromium died (%s); the session is gone", why);
        return NULL;
    }
    s->refs++;
    s->last_used = sbx_now_ms();
    pthread_mutex_unlock(&reg_mu);
    return s;
}

void br_session_done(br_session *s, sbx_code rc) {
    if (!s)
        return;
    if (rc == SBX_ECRASHED) {
        /* The caller has just reported the crash: the session leaves the list now. */
        pthread_mutex_lock(&reg_mu);
        if (s->listed)
            unlist_locked(s);
        pthread_mutex_unlock(&reg_mu);
    }
    br_session_put(s);
}

void br_session_put(br_session *s) {
    if (!s)
        return;
    pthread_mutex_lock(&reg_mu);
    s->refs--;
    s->last_used = sbx_now_ms();
    bool now = s->refs == 0 && !s->listed;
    pthread_mutex_unlock(&reg_mu);
    if (now)
        session_free(s);
}

sbx_code br_session_delete(const char *id, sbx_err *e) {
    pthread_mutex_lock(&reg_mu);
    br_session *s = reg;
    while (s && strcmp(s->id, id) != 0)
        s = s->next;
    if (!s) {
        pthread_mutex_unlock(&reg_mu);
        return sbx_fail(e, SBX_ENOTFOUND, "no browser session %s", id);
    }
    unlist_locked(s);
    bool now = s->refs == 0;
    pthread_mutex_unlock(&reg_mu);
    pthread_mutex_lock(&s->mu);
    s->closing = true;
    pthread_cond_broadcast(&s->cv);
    pthread_mutex_unlock(&s->mu);
    if (now)
        session_free(s);
    else
        kill_browser(s); /* in-flight calls fail fast; the last put frees */
    LOG_I("browser", "session=%s deleted", id);
    return SBX_OK;
}

static cJSON *tabs_json_locked(br_session *s) {
    cJSON *arr = cJSON_CreateArray();
    for (int i = 0; i < s->npages; i++) {
        br_page *p = s->pages[i];
        if (p->closed)
            continue;
        cJSON *t = cJSON_CreateObject();
        cJSON_AddStringToObject(t, "tabId", p->tab_id);
        cJSON_AddStringToObject(t, "url", p->url ? p->url : "");
        cJSON_AddStringToObject(t, "title", p->title ? p->title : "");
        cJSON_AddBoolToObject(t, "active", p == s->current);
        cJSON_AddBoolToObject(t, "crashed", p->crashed);
        cJSON_AddItemToArray(arr, t);
    }
    return arr;
}

cJSON *br_session_list(void) {
    cJSON *arr = cJSON_CreateArray();
    pthread_mutex_lock(&reg_mu);
    for (br_session *s = reg; s; s = s->next) {
        pthread_mutex_lock(&s->mu);
        if (!s->crashed) {
            cJSON *o = cJSON_CreateObject();
            cJSON_AddStringToObject(o, "sessionId", s->id);
            cJSON_AddStringToObject(o, "device", s->mobile ? "mobile" : "desktop");
            time_t secs = (time_t)(s->created_wall / 1000);
            struct tm tm;
            gmtime_r(&secs, &tm);
            char ts[96];
            snprintf(ts, sizeof ts, "%04d-%02d-%02dT%02d:%02d:%02d.%03dZ", tm.tm_year + 1900,
                     tm.tm_mon + 1, tm.tm_mday, tm.tm_hour, tm.tm_min, tm.tm_sec,
                     (int)(s->created_wall % 1000));
            cJSON_AddStringToObject(o, "createdAt", ts);
            cJSON_AddItemToObject(o, "tabs", tabs_json_locked(s));
            cJSON_AddItemToArray(arr, o);
        }
        pthread_mutex_unlock(&s->mu);
    }
    pthread_mutex_unlock(&reg_mu);
    cJSON *r = cJSON_CreateObject();
    cJSON_AddItemToObject(r, "sessions", arr);
    return r;
}

void br_sessions_tick(void) {
    int64_t now = sbx_now_ms();
    for (;;) {
        br_session *victim = NULL;
        const char *why = NULL;
        bool reap_only = false;
        pthread_mutex_lock(&reg_mu);
        for (br_session *s = reg; s && !victim; s = s->next) {
            pthread_mutex_lock(&s->mu);
            bool crashed = s->crashed;
            pthread_mutex_unlock(&s->mu);
            if (crashed) {
                if (!s->crashed_at)
                    s->crashed_at = now;
                if (!s->reaped && s->refs == 0) {
                    victim = s;
                    reap_only = true;
                    s->reaped = true;
                } else if (now - s->crashed_at > 60000) {
                    victim = s;
                    why = "crashed";
                }
            } else if (s->refs == 0 &&
                       now - s->last_used > sbx_cfg->browser_idle_timeout_s * 1000) {
                victim = s;
                why = "idle";
            } else if (now - s->created_mono > sbx_cfg->browser_max_lifetime_s * 1000) {
                victim = s;
                why = "lifetime";
            }
        }
        bool now_free = false;
        if (victim && !reap_only) {
            unlist_locked(victim);
            now_free = victim->refs == 0;
        }
        pthread_mutex_unlock(&reg_mu);
        if (!victim)
            return;
        if (reap_only) {
            /* The tombstone stays listed (for one 502) but the processes and files go now. */
            kill_browser(victim);
            remove_dir(victim->dir);
            continue;
        }
        LOG_I("browser", "session=%s closed (%s)", victim->id, why);
        if (now_free)
            session_free(victim);
        else
            kill_browser(victim);
    }
}

void br_sessions_shutdown(void) {
    pthread_mutex_lock(&reg_mu);
    shutting_down = true;
    pthread_mutex_unlock(&reg_mu);
    for (;;) {
        pthread_mutex_lock(&reg_mu);
        br_session *s = reg;
        bool borrowed = false;
        if (s) {
            unlist_locked(s);
            borrowed = s->refs > 0;
        }
        pthread_mutex_unlock(&reg_mu);
        if (!s)
            break;
        if (borrowed) {
            pthread_mutex_lock(&s->mu);
            s->closing = true;
            pthread_cond_broadcast(&s->cv);
            pthread_mutex_unlock(&s->mu);
            kill_browser(s); /* its handler fails fast; the last put frees it */
        } else {
            session_free(s);
        }
    }
    int64_t deadline = sbx_now_ms() + 10000;
    for (;;) {
        pthread_mutex_lock(&reg_mu);
        int n = alive;
        pthread_mutex_unlock(&reg_mu);
        if (n == 0 || sbx_now_ms() > deadline)
            break;
        struct timespec ts = {0, 10 * 1000000L};
        nanosleep(&ts, NULL);
    }
    free(chromium_bin);
    chromium_bin = NULL;
}

/* ---- tabs ---- */

br_page *br_session_page(br_session *s, const char *tab_id, sbx_err *e) {
    pthread_mutex_lock(&s->mu);
    br_page *p = NULL;
    if (!tab_id || !*tab_id) {
        p = s->current;
        if (!p)
            sbx_fail(e, SBX_ENOTFOUND, "the session has no open tab; create one");
    } else {
        for (int i = 0; i < s->npages && !p; i++)
            if (!s->pages[i]->closed && strcmp(s->pages[i]->tab_id, tab_id) == 0)
                p = s->pages[i];
        if (!p)
            sbx_fail(e, SBX_ENOTFOUND, "no tab %s in this session", tab_id);
    }
    pthread_mutex_unlock(&s->mu);
    return p;
}

cJSON *br_tabs_list(br_session *s) {
    /* Refresh titles and URLs (title changes do not always raise targetInfoChanged). */
    cJSON *res = NULL;
    sbx_err e;
    if (cdp_call(s->conn, NULL, "Target.getTargets", NULL, 5000, &res, &e) == SBX_OK) {
        const cJSON *infos = cJSON_GetObjectItemCaseSensitive(res, "targetInfos");
        const cJSON *ti;
        pthread_mutex_lock(&s->mu);
        cJSON_ArrayForEach(ti, infos) {
            br_page *p = page_by_target(s, jstr(ti, "targetId"));
            if (p) {
                set_str(&p->url, jstr(ti, "url"));
                set_str(&p->title, jstr(ti, "title"));
            }
        }
        pthread_mutex_unlock(&s->mu);
        cJSON_Delete(res);
    }
    pthread_mutex_lock(&s->mu);
    cJSON *arr = tabs_json_locked(s);
    pthread_mutex_unlock(&s->mu);
    cJSON *r = cJSON_CreateObject();
    cJSON_AddItemToObject(r, "tabs", arr);
    return r;
}

static sbx_code crashed_err(br_session *s, sbx_err *e) {
    pthread_mutex_lock(&s->mu);
    bool c = s->crashed;
    pthread_mutex_unlock(&s->mu);
    if (c)
        return sbx_fail(e, SBX_ECRASHED, "the session's Chromium died; the session is gone");
    return SBX_OK;
}

void br_session_devtools(br_session *s, int *port, char *path) {
    *port = s->proc.port;
    snprintf(path, 256, "%s", s->proc.ws_path);
}

bool br_session_touch(const char *id) {
    pthread_mutex_lock(&reg_mu);
    br_session *s = reg;
    while (s && strcmp(s->id, id) != 0)
        s = s->next;
    bool alive = false;
    if (s) {
        pthread_mutex_lock(&s->mu);
        alive = !s->crashed && !s->closing;
        pthread_mutex_unlock(&s->mu);
        if (alive)
            s->last_used = sbx_now_ms();
    }
    pthread_mutex_unlock(&reg_mu);
    return alive;
}

/* A call's outcome: a broken connection means the session's Chromium is gone. */
static sbx_code note_broken(br_session *s, sbx_code rc) {
    if (rc == SBX_ECRASHED) {
        pthread_mutex_lock(&s->mu);
        mark_crashed_locked(s, "the DevTools connection broke");
        pthread_mutex_unlock(&s->mu);
    }
    return rc;
}

sbx_code br_browser_call(br_session *s, const char *method, cJSON *params, int64_t timeout_ms,
                         cJSON **result, sbx_err *e) {
    if (result)
        *result = NULL;
    if (crashed_err(s, e) != SBX_OK) {
        cJSON_Delete(params);
        return SBX_ECRASHED;
    }
    return note_broken(s, cdp_call(s->conn, NULL, method, params, timeout_ms, result, e));
}

sbx_code br_tab_create(br_session *s, const char *url, int64_t timeout_ms, char tab[SBX_ID_LEN],
                       sbx_err *e) {
    if (url && br_url_check(url, e) != SBX_OK)
        return SBX_EINVAL;
    cJSON *c = cJSON_CreateObject();
    cJSON_AddStringToObject(c, "url", "about:blank");
    cJSON *res = NULL;
    int64_t deadline = sbx_now_ms() + timeout_ms;
    sbx_code rc = cdp_call(s->conn, NULL, "Target.createTarget", c, timeout_ms, &res, e);
    if (rc != SBX_OK)
        return rc;
    char tid[64];
    snprintf(tid, sizeof tid, "%s", jstr(res, "targetId") ? jstr(res, "targetId") : "");
    cJSON_Delete(res);
    pthread_mutex_lock(&s->mu);
    br_page *p = NULL;
    while (!(p = page_by_target(s, tid)) && !s->crashed && sbx_now_ms() < deadline)
        timed_wait(s, deadline);
    if (p) {
        s->current = p;
        memcpy(tab, p->tab_id, SBX_ID_LEN);
    }
    bool crashed = s->crashed;
    pthread_mutex_unlock(&s->mu);
    if (crashed)
        return sbx_fail(e, SBX_ECRASHED, "the session's Chromium died");
    if (!p)
        return sbx_fail(e, SBX_ETIMEOUT, "the new tab did not attach in time");
    /* As for a session's first tab: a desktop tab is set up before its first call (~20 ms
     * for a new renderer), a phone's before it is handed out. */
    if (s->mobile) {
        rc = page_setup_now(p, deadline - sbx_now_ms(), e);
        if (rc != SBX_OK)
            return rc;
    }
    if (url) {
        cJSON *out = NULL;
        rc = br_navigate(p, url, "load", deadline - sbx_now_ms(), &out, e);
        cJSON_Delete(out);
        if (rc != SBX_OK)
            return rc;
    }
    return SBX_OK;
}

sbx_code br_tab_close(br_session *s, const char *tab_id, sbx_err *e) {
    br_page *p = br_session_page(s, tab_id, e);
    if (!p)
        return SBX_ENOTFOUND;
    cJSON *c = cJSON_CreateObject();
    cJSON_AddStringToObject(c, "targetId", p->target_id);
    sbx_code rc =
        cdp_call(s->conn, NULL, "Target.closeTarget", c, sbx_cfg->browser_call_timeout_ms, NULL, e);
    if (rc != SBX_OK)
        return rc;
    pthread_mutex_lock(&s->mu);
    p->closed = true;
    if (s->current == p) {
        s->current = NULL;
        for (int i = s->npages - 1; i >= 0 && !s->current; i--)
            if (!s->pages[i]->closed)
                s->current = s->pages[i];
    }
    pthread_mutex_unlock(&s->mu);
    return SBX_OK;
}

/* ---- URL policy ---- */

static bool host_in_list(const char *host, const char *list) {
    if (!list || !*list)
        return false;
    char *copy = strdup(list);
    if (!copy)
        return false;
    bool hit = false;
    char *save = NULL;
    for (char *tok = strtok_r(copy, ", ", &save); tok && !hit; tok = strtok_r(NULL, ", ", &save)) {
        if (strcmp(tok, "*") == 0) {
            hit = true;
        } else if (strncmp(tok, "*.", 2) == 0) {
            size_t hl = strlen(host), tl = strlen(tok + 1);
            hit = strcasecmp(host, tok + 2) == 0 ||
                  (hl > tl && strcasecmp(host + hl - tl, tok + 1) == 0);
        } else {
            hit = strcasecmp(host, tok) == 0;
        }
    }
    free(copy);
    return hit;
}

sbx_code br_url_check(const char *url, sbx_err *e) {
    if (strcasecmp(url, "about:blank") == 0)
        return SBX_OK;
    const char *rest = NULL;
    if (strncasecmp(url, "http://", 7) == 0)
        rest = url + 7;
    else if (strncasecmp(url, "https://", 8) == 0)
        rest = url + 8;
    if (!rest)
        return sbx_fail(e, SBX_EINVAL,
                        "url: only http, https and about:blank may be opened (got \"%.40s\")", url);
    size_t n = strcspn(rest, "/?#");
    char auth[512];
    if (n == 0 || n >= sizeof auth)
        return sbx_fail(e, SBX_EINVAL, "url: no valid host");
    memcpy(auth, rest, n);
    auth[n] = 0;
    char *host = strrchr(auth, '@');
    host = host ? host + 1 : auth;
    if (*host == '[') {
        char *end = strchr(host, ']');
        if (!end)
            return sbx_fail(e, SBX_EINVAL, "url: bad IPv6 host");
        *end = 0;
        host++;
    } else {
        char *colon = strchr(host, ':');
        if (colon)
            *colon = 0;
    }
    if (!*host)
        return sbx_fail(e, SBX_EINVAL, "url: no host");
    if (host_in_list(host, sbx_cfg->browser_deny_hosts))
        return sbx_fail(e, SBX_EINVAL, "url: host %s is denied by BROWSER_DENY_HOSTS", host);
    if (sbx_cfg->browser_allow_hosts && *sbx_cfg->browser_allow_hosts &&
        !host_in_list(host, sbx_cfg->browser_allow_hosts))
        return sbx_fail(e, SBX_EINVAL, "url: host %s is not in BROWSER_ALLOW_HOSTS", host);
    return SBX_OK;
}

/* ---- page calls ---- */

/* One command (cmds[0], with its result) or a batch; a broken connection marks the session
 * crashed. */
static sbx_code page_call(br_page *p, const cdp_cmd *cmds, int n, int64_t timeout_ms,
                          cJSON **result, sbx_err *e) {
    br_session *s = p->s;
    if (result)
        *result = NULL;
    if (crashed_err(s, e) != SBX_OK) {
        for (int i = 0; i < n; i++)
            cJSON_Delete(cmds[i].params);
        return SBX_ECRASHED;
    }
    pthread_mutex_lock(&s->mu);
    bool crashed = p->crashed, dead_tab = crashed && strcmp(cmds[0].method, "Page.navigate") != 0;
    char why[sizeof p->crash_why];
    snprintf(why, sizeof why, "%s", p->crash_why);
    pthread_mutex_unlock(&s->mu);
    sbx_code rc = SBX_OK;
    if (dead_tab)
        rc = sbx_fail(e, SBX_ETABCRASHED, "%s (%s)", tab_crashed_msg, why);
    else if (!crashed) /* a crashed tab answers nothing until a navigation: set it up after */
        rc = page_setup_now(p, timeout_ms, e);
    if (rc != SBX_OK) {
        for (int i = 0; i < n; i++)
            cJSON_Delete(cmds[i].params);
        return rc;
    }
    rc = note_broken(s, n == 1 ? cdp_call(s->conn, p->cdp_sid, cmds[0].method, cmds[0].params,
                                          timeout_ms, result, e)
                               : cdp_call_all(s->conn, p->cdp_sid, cmds, n, timeout_ms, e));
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
    return p->s->mobile;
}

/* ---- navigation and content ---- */

sbx_code br_navigate(br_page *p, const char *url, const char *wait_until, int64_t timeout_ms,
                     cJSON **out, sbx_err *e) {
    *out = NULL;
    if (br_url_check(url, e) != SBX_OK)
        return SBX_EINVAL;
    br_session *s = p->s;
    unsigned need = LC_LOAD;
    if (wait_until && strcmp(wait_until, "domcontentloaded") == 0)
        need = LC_DCL;
    if (wait_until && strcmp(wait_until, "networkidle0") == 0)
        need = LC_LOAD | LC_IDLE;
    if (wait_until && strcmp(wait_until, "networkidle2") == 0)
        need = LC_LOAD | LC_ALMOST;
    int64_t deadline = sbx_now_ms() + timeout_ms;
    cJSON *a = cJSON_CreateObject();
    cJSON_AddStringToObject(a, "url", url);
    cJSON *res = NULL;
    sbx_code rc = br_page_call(p, "Page.navigate", a, timeout_ms, &res, e);
    if (rc == SBX_ETIMEOUT)
        return sbx_fail(e, SBX_ETIMEOUT, "navigation to %s did not finish within %lld ms", url,
                        (long long)timeout_ms);
    if (rc != SBX_OK)
        return rc;
    const char *err = jstr(res, "errorText");
    if (err && *err) {
        sbx_fail(e, SBX_ENETWORK, "navigation to %s failed: %s", url, err);
        cJSON_Delete(res);
        return SBX_ENETWORK;
    }
    char loader[64] = "";
    if (jstr(res, "loaderId"))
        snprintf(loader, sizeof loader, "%s", jstr(res, "loaderId"));
    cJSON_Delete(res);
    /* A crashed tab that accepted a navigation has a renderer again (Chromium says so with
     * Inspector.targetReloadedAfterCrash, which comes first). */
    pthread_mutex_lock(&s->mu);
    p->crashed = false;
    pthread_mutex_unlock(&s->mu);
    int status = 0;
    if (loader[0]) {
        pthread_mutex_lock(&s->mu);
        while (!s->crashed && !s->closing && !p->closed && !p->crashed &&
               !(strcmp(p->lc_loader, loader) == 0 && (p->lc_mask & need) == need) &&
               sbx_now_ms() < deadline)
            timed_wait(s, deadline);
        bool ok = strcmp(p->lc_loader, loader) == 0 && (p->lc_mask & need) == need;
        bool crashed = s->crashed || s->closing;
        bool tab_crashed = !ok && p->crashed;
        if (strcmp(p->doc_req, loader) == 0)
            status = p->doc_status;
        pthread_mutex_unlock(&s->mu);
        if (crashed)
            return sbx_fail(e, SBX_ECRASHED, "the session's Chromium died");
        if (tab_crashed)
            return sbx_fail(e, SBX_ETABCRASHED,
                            "the tab's renderer died while loading %s; navigate the tab again, or "
                            "close it",
                            url);
        if (!ok && p->closed)
            return sbx_fail(e, SBX_ENOTFOUND, "the tab was closed");
        if (!ok)
            return sbx_fail(e, SBX_ETIMEOUT, "navigation to %s did not reach %s within %lld ms",
                            url, wait_until ? wait_until : "load", (long long)timeout_ms);
    }
    /* URL and title as the browser process holds them (its navigation entry, which the page's
     * title and history changes reach before its load event does): unlike an evaluate, this
     * does not queue behind the renderer's work right after the load. */
    cJSON *hist = NULL;
    int64_t left = deadline - sbx_now_ms();
    rc = br_page_call(p, "Page.getNavigationHistory", NULL, left > 1000 ? left : 1000, &hist, e);
    if (rc != SBX_OK)
        return rc;
    const cJSON *cur = cJSON_GetObjectItemCaseSensitive(hist, "currentIndex");
    const cJSON *info =
        cJSON_IsNumber(cur)
            ? cJSON_GetArrayItem(cJSON_GetObjectItemCaseSensitive(hist, "entries"), cur->valueint)
            : NULL;
    cJSON *o = cJSON_CreateObject();
    cJSON_AddStringToObject(o, "url", jstr(info, "url") ? jstr(info, "url") : url);
    if (status > 0)
        cJSON_AddNumberToObject(o, "status", status);
    else
        cJSON_AddNullToObject(o, "status");
    cJSON_AddStringToObject(o, "title", jstr(info, "title") ? jstr(info, "title") : "");
    cJSON_Delete(hist);
    *out = o;
    return SBX_OK;
}

sbx_code br_content(br_page *p, int64_t timeout_ms, char **html, size_t *len, sbx_err *e) {
    cJSON *v = NULL;
    sbx_code rc =
        br_page_eval(p,
                     "(() => { const d = document.doctype;"
                     " return (d ? new XMLSerializer().serializeToString(d) + '\\n' : '') +"
                     " (document.documentElement ? document.documentElement.outerHTML : ''); })()",
                     timeout_ms, &v, e);
    if (rc != SBX_OK)
        return rc;
    const char *t = cJSON_IsString(v) ? v->valuestring : "";
    *html = strdup(t);
    *len = strlen(t);
    cJSON_Delete(v);
    if (!*html)
        return sbx_fail(e, SBX_EINTERNAL, "out of memory");
    return SBX_OK;
}
