/* session.c -- the registry of browser sessions: create, lend, expire, tombstones, shutdown
 * (see session.h). A session's browser is a br_proc (proc.h), its tabs a br_tabs (tab.h). */
#define _GNU_SOURCE
#include "session.h"

#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "../common/log.h"
#include "downloads.h"
#include "events.h"
#include "navigate.h"
#include "pool.h"
#include "proc.h"
#include "state.h"
#include "tab.h"
#include "usage.h"

/* A session's one lifecycle, under reg_mu. */
typedef enum br_state {
    BR_NEW,    /* being created: not listed */
    BR_LIVE,   /* listed, usable */
    BR_TOMB,   /* listed, its Chromium died: kept to answer one 502 */
    BR_REAPED, /* a tombstone whose processes and files are gone */
    BR_GONE,   /* not listed any more: freed by the last put */
} br_state;

struct br_session {
    br_session *next;
    char id[SBX_SID_LEN];
    br_proc *proc;
    br_tabs *tabs;
    br_events *events;       /* its live events (events.h); readers hold references of their own */
    br_downloads *downloads; /* what its pages downloaded (downloads.h) */
    bool mobile;
    char owner[BR_OWNER_LEN]; /* who created it; set before it is listed, constant after */
    int64_t created_wall, created_mono;
    /* reg_mu */
    br_state state;
    int refs;
    int64_t last_used, crashed_at;
};

static pthread_mutex_t reg_mu = PTHREAD_MUTEX_INITIALIZER;
static br_session *reg;
static int reserved; /* sessions being created */
static int cold;     /* of those, launching their own Chromium */
static int alive;    /* allocated sessions, listed or not */
static bool shutting_down;
static int64_t max_sessions = 16, launch_timeout_ms = 30000, call_timeout_ms = 30000,
               idle_timeout_ms = 300000, max_lifetime_ms = 3600000;
static int64_t download_max = 100 << 20, downloads_max = 500 << 20;

void br_sessions_init(const browser_opts *o) {
    max_sessions = o->max_sessions;
    launch_timeout_ms = o->launch_timeout_ms;
    call_timeout_ms = o->call_timeout_ms;
    idle_timeout_ms = o->idle_timeout_s * 1000;
    max_lifetime_ms = o->max_lifetime_s * 1000;
    if (o->download_max_bytes > 0)
        download_max = o->download_max_bytes;
    if (o->downloads_max_bytes > 0)
        downloads_max = o->downloads_max_bytes;
    pthread_mutex_lock(&reg_mu);
    shutting_down = false;
    pthread_mutex_unlock(&reg_mu);
}

static bool listed(const br_session *s) {
    return s->state == BR_LIVE || s->state == BR_TOMB || s->state == BR_REAPED;
}

/* reg_mu held: a live session whose Chromium died becomes a tombstone. True for a tombstone. */
static bool note_crash_locked(br_session *s) {
    if (s->state == BR_LIVE && br_tabs_crashed(s->tabs, NULL)) {
        s->state = BR_TOMB;
        s->crashed_at = sbx_now_ms();
    }
    return s->state == BR_TOMB || s->state == BR_REAPED;
}

/* ---- making and freeing ---- */

static void session_free(br_session *s) {
    if (!s)
        return;
    if (s->tabs)
        br_tabs_set_closing(s->tabs);
    br_proc_discard(s->proc); /* no handler runs after this: the tabs can go */
    br_tabs_free(s->tabs);
    br_downloads_free(s->downloads);
    br_events_end(s->events, "the session ended");
    br_events_unref(s->events);
    free(s);
    pthread_mutex_lock(&reg_mu);
    alive--;
    pthread_mutex_unlock(&reg_mu);
    br_pool_kick();
}

/* A session record (counted alive) around `proc` (taken; NULL: launch one now). NULL with `e`
 * filled; `proc` is discarded then. */
static br_session *session_new(br_proc *proc, sbx_err *e) {
    br_session *s = calloc(1, sizeof *s);
    if (!s) {
        br_proc_discard(proc);
        sbx_fail(e, SBX_EINTERNAL, "out of memory");
        return NULL;
    }
    pthread_mutex_lock(&reg_mu);
    alive++;
    pthread_mutex_unlock(&reg_mu);
    s->proc = proc ? proc : br_proc_launch(launch_timeout_ms, e);
    if (!s->proc) {
        session_free(s);
        return NULL;
    }
    snprintf(s->id, sizeof s->id, "%s", br_proc_id(s->proc));
    s->tabs = br_tabs_new(s->id, br_proc_conn(s->proc));
    s->events = br_events_new(s->id);
    s->downloads = br_downloads_new(br_proc_dir(s->proc), s->events, br_proc_conn(s->proc),
                                    download_max, downloads_max);
    if (!s->tabs || !s->events || !s->downloads) {
        session_free(s);
        sbx_fail(e, SBX_EINTERNAL, "out of memory");
        return NULL;
    }
    br_tabs_set_events(s->tabs, s->events);
    br_tabs_set_dir(s->tabs, br_proc_dir(s->proc));
    br_tabs_set_downloads(s->tabs, s->downloads);
    egress_client *net = br_proc_net(s->proc);
    if (net) /* the gateway's refusals of this browser's connections become blocked frames */
        egress_client_on_refusal(net, br_events_blocked, br_events_ref(s->events),
                                 br_events_release);
    cdp_handlers h = br_tabs_handlers(s->tabs);
    if (!br_proc_bind(s->proc, &h))
        br_tabs_mark_crashed(s->tabs, "Chromium closed the DevTools connection");
    return s;
}

/* A stored state's cookies, set on a thread of their own while the first tab opens: Chromium
 * answers Storage.setCookies only once its network service stored them (a few ms for ten),
 * and nothing of the tab's set-up waits for that. */
typedef struct cookie_job {
    cdp_conn *conn;
    cJSON *cookies; /* taken by the call */
    sbx_code rc;
    sbx_err e;
} cookie_job;

static void *set_cookies_main(void *arg) {
    cookie_job *j = arg;
    j->rc =
        cdp_call(j->conn, NULL, "Storage.setCookies", j->cookies, launch_timeout_ms, NULL, &j->e);
    return NULL;
}

/* Open the session's tabs with the options `o` and list it: fills its first tab. On failure
 * `s` is freed. */
static sbx_code publish(br_session *s, const br_session_opts *o, char tab[SBX_ID_LEN], sbx_err *e) {
    bool mobile = o->em.mobile;
    s->mobile = mobile;
    sbx_code rc = SBX_OK;
    char ua[512] = "";
    if (o->em.locale[0] && !o->em.user_agent[0] && !mobile) {
        /* A locale goes with the user agent override, which needs a user agent: Chromium's. */
        cJSON *v = NULL;
        rc = br_tabs_browser_call(s->tabs, "Browser.getVersion", NULL, launch_timeout_ms, &v, e);
        const cJSON *u = cJSON_GetObjectItemCaseSensitive(v, "userAgent");
        if (cJSON_IsString(u))
            snprintf(ua, sizeof ua, "%s", u->valuestring);
        cJSON_Delete(v);
    }
    br_tabs_set_emulation(s->tabs, &o->em, ua);
    if (rc == SBX_OK && o->state) /* before the tabs attach: each gets the restore's script */
        rc = br_state_restore(s->tabs, o->state, e);
    cookie_job cj = {.conn = br_proc_conn(s->proc), .rc = SBX_OK};
    pthread_t cookie_thread;
    bool cookie_threaded = false;
    if (rc == SBX_OK && o->state && (cj.cookies = br_state_cookies(o->state))) {
        cookie_threaded = pthread_create(&cookie_thread, NULL, set_cookies_main, &cj) == 0;
        if (!cookie_threaded)
            set_cookies_main(&cj);
    }
    if (rc == SBX_OK)
        rc = br_tabs_open(s->tabs, mobile, launch_timeout_ms, tab, e);
    if (rc == SBX_OK) {
        /* Downloads go into the session's directory, named by guid, with progress events. */
        cJSON *a = cJSON_CreateObject();
        cJSON_AddStringToObject(a, "behavior", "allowAndName");
        cJSON_AddStringToObject(a, "downloadPath", br_downloads_dir(s->downloads));
        cJSON_AddBoolToObject(a, "eventsEnabled", 1);
        rc = cdp_call(br_proc_conn(s->proc), NULL, "Browser.setDownloadBehavior", a,
                      launch_timeout_ms, NULL, e);
    }
    if (cookie_threaded)
        pthread_join(cookie_thread, NULL);
    if (rc == SBX_OK && cj.rc != SBX_OK) {
        *e = cj.e;
        rc = cj.rc;
        if (rc == SBX_EINTERNAL)
            e->code = rc = SBX_EINVAL; /* Chromium refused a cookie: the client's */
    }
    if (rc != SBX_OK) {
        session_free(s);
        return rc;
    }
    s->created_wall = sbx_wall_ms();
    s->created_mono = sbx_now_ms();
    pthread_mutex_lock(&reg_mu);
    if (shutting_down) {
        pthread_mutex_unlock(&reg_mu);
        session_free(s);
        return sbx_fail(e, SBX_EUNAVAIL, "the server is shutting down");
    }
    s->last_used = s->created_mono;
    s->state = BR_LIVE;
    s->next = reg;
    reg = s;
    pthread_mutex_unlock(&reg_mu);
    LOG_I("browser", "session=%s created device=%s", s->id, mobile ? "mobile" : "desktop");
    return SBX_OK;
}

static int live_count_locked(void) {
    int n = 0;
    for (br_session *s = reg; s; s = s->next)
        if (!note_crash_locked(s))
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

sbx_code br_session_create(const br_session_opts *o, const char *owner, char sid[SBX_SID_LEN],
                           char tab[SBX_ID_LEN], sbx_err *e) {
    if (!br_proc_chromium())
        return sbx_fail(e, SBX_EUNAVAIL,
                        "no Chromium found: install chromium or set CHROMIUM_PATH");
    pthread_mutex_lock(&reg_mu);
    if (live_count_locked() + reserved >= max_sessions) {
        pthread_mutex_unlock(&reg_mu);
        sbx_fail(e, SBX_ETOOMANY, "at most %lld browser sessions may be open; close one first",
                 (long long)max_sessions);
        e->retry_after = 5;
        return SBX_ETOOMANY;
    }
    reserved++;
    pthread_mutex_unlock(&reg_mu);
    sbx_code rc = SBX_EUNAVAIL;
    bool pooled = false;
    /* A pooled browser first; one that fails at hand-out is gone, and a cold launch follows. */
    br_proc *proc = br_pool_take();
    bool took = proc != NULL;
    if (took) {
        char id[SBX_SID_LEN];
        snprintf(id, sizeof id, "%s", br_proc_id(proc));
        br_session *s = session_new(proc, e);
        if (s)
            snprintf(s->owner, sizeof s->owner, "%s", owner ? owner : "");
        rc = s ? publish(s, o, tab, e) : e->code;
        pooled = rc == SBX_OK;
        if (pooled)
            memcpy(sid, id, SBX_SID_LEN);
        else
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
        br_session *s = session_new(NULL, e);
        pthread_mutex_lock(&reg_mu);
        cold--;
        pthread_mutex_unlock(&reg_mu);
        br_pool_kick();
        if (s) {
            memcpy(sid, s->id, SBX_SID_LEN);
            snprintf(s->owner, sizeof s->owner, "%s", owner ? owner : "");
        }
        rc = s ? publish(s, o, tab, e) : e->code;
    }
    if (rc == SBX_OK)
        br_pool_note_session(pooled);
    pthread_mutex_lock(&reg_mu);
    reserved--;
    pthread_mutex_unlock(&reg_mu);
    br_pool_kick();
    return rc;
}

/* ---- lending ---- */

/* reg_mu held: take `s` off the list. */
static void unlist_locked(br_session *s) {
    for (br_session **pp = &reg; *pp; pp = &(*pp)->next) {
        if (*pp == s) {
            *pp = s->next;
            break;
        }
    }
    s->state = BR_GONE;
}

/* reg_mu held: the listed session `id` as `viewer` may see it (NULL: any owner). */
static br_session *find_locked(const char *id, const char *viewer) {
    br_session *s = reg;
    while (s && strcmp(s->id, id) != 0)
        s = s->next;
    if (s && viewer && strcmp(s->owner, viewer) != 0)
        return NULL; /* someone else's: answered exactly like a session that does not exist */
    return s;
}

br_session *br_session_get(const char *id, const char *viewer, sbx_err *e) {
    pthread_mutex_lock(&reg_mu);
    br_session *s = find_locked(id, viewer);
    if (!s) {
        pthread_mutex_unlock(&reg_mu);
        sbx_fail(e, SBX_ENOTFOUND, "no browser session %s", id);
        return NULL;
    }
    if (note_crash_locked(s)) {
        char why[128];
        br_tabs_crashed(s->tabs, why);
        unlist_locked(s);
        bool now = s->refs == 0;
        pthread_mutex_unlock(&reg_mu);
        br_events_end(s->events, "the session's Chromium died");
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
        if (listed(s))
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
    bool now = s->refs == 0 && s->state == BR_GONE;
    pthread_mutex_unlock(&reg_mu);
    if (now)
        session_free(s);
}

/* Unlisted `s` ends: freed now when nobody borrows it, else killed (in-flight calls fail
 * fast) and freed by the last put. */
static void end_unlisted(br_session *s, bool now) {
    br_tabs_set_closing(s->tabs);
    if (now)
        session_free(s);
    else
        br_proc_kill(s->proc);
}

sbx_code br_session_delete(const char *id, const char *viewer, sbx_err *e) {
    pthread_mutex_lock(&reg_mu);
    br_session *s = find_locked(id, viewer);
    if (!s) {
        pthread_mutex_unlock(&reg_mu);
        return sbx_fail(e, SBX_ENOTFOUND, "no browser session %s", id);
    }
    unlist_locked(s);
    bool now = s->refs == 0;
    pthread_mutex_unlock(&reg_mu);
    br_events_end(s->events, "the session was closed");
    end_unlisted(s, now);
    LOG_I("browser", "session=%s deleted", id);
    return SBX_OK;
}

/* An ISO 8601 UTC time of `wall_ms`. */
static void iso_time(int64_t wall_ms, char out[32]) {
    time_t secs = (time_t)(wall_ms / 1000);
    struct tm tm;
    gmtime_r(&secs, &tm);
    snprintf(out, 32, "%04d-%02d-%02dT%02d:%02d:%02d.%03dZ", (tm.tm_year + 1900) % 10000,
             (tm.tm_mon + 1) % 100, tm.tm_mday % 100, tm.tm_hour % 100, tm.tm_min % 100,
             tm.tm_sec % 100, (int)(wall_ms % 1000));
}

/* reg_mu held: the session's JSON without its usage. */
static cJSON *session_json_locked(br_session *s, bool owner) {
    cJSON *o = cJSON_CreateObject();
    cJSON_AddStringToObject(o, "sessionId", s->id);
    if (owner)
        cJSON_AddStringToObject(o, "owner", s->owner);
    cJSON_AddStringToObject(o, "device", s->mobile ? "mobile" : "desktop");
    /* Monotonic times shown on the wall clock of the session's creation. */
    int64_t to_wall = s->created_wall - s->created_mono;
    int64_t expires = s->last_used + idle_timeout_ms;
    if (s->created_mono + max_lifetime_ms < expires)
        expires = s->created_mono + max_lifetime_ms;
    char ts[32];
    iso_time(s->created_wall, ts);
    cJSON_AddStringToObject(o, "createdAt", ts);
    iso_time(s->last_used + to_wall, ts);
    cJSON_AddStringToObject(o, "lastUsedAt", ts);
    iso_time(expires + to_wall, ts);
    cJSON_AddStringToObject(o, "expiresAt", ts);
    egress_client *net = br_proc_net(s->proc);
    if (net) {
        egress_stats st;
        egress_client_stats(net, &st);
        cJSON *n = cJSON_AddObjectToObject(o, "network");
        cJSON_AddNumberToObject(n, "bytesIn", (double)st.bytes_in);
        cJSON_AddNumberToObject(n, "bytesOut", (double)st.bytes_out);
        cJSON_AddNumberToObject(n, "connections", (double)st.connections);
        cJSON_AddNumberToObject(n, "refused", (double)st.refused);
    }
    br_tabs_add_json(s->tabs, o);
    return o;
}

/* Add memoryBytes and cpuMs to the `n` session objects `objs` of the Chromiums `pids`. */
static void add_usage(cJSON **objs, const pid_t *pids, int n) {
    br_usage *u = n ? calloc((size_t)n, sizeof *u) : NULL;
    if (n && (!u || br_usage_of_groups(pids, u, n) != 0)) {
        free(u);
        u = NULL;
    }
    for (int i = 0; i < n; i++) {
        cJSON_AddNumberToObject(objs[i], "memoryBytes", u ? (double)u[i].pss_bytes : 0);
        cJSON_AddNumberToObject(objs[i], "cpuMs", u ? (double)u[i].cpu_ms : 0);
    }
    free(u);
}

cJSON *br_session_list(const char *viewer) {
    cJSON *arr = cJSON_CreateArray();
    int cap = 0, n = 0;
    cJSON **objs = NULL;
    pid_t *pids = NULL;
    pthread_mutex_lock(&reg_mu);
    for (br_session *s = reg; s; s = s->next)
        cap++;
    objs = cap ? calloc((size_t)cap, sizeof *objs) : NULL;
    pids = cap ? calloc((size_t)cap, sizeof *pids) : NULL;
    for (br_session *s = reg; s && objs && pids; s = s->next) {
        if ((viewer && strcmp(s->owner, viewer) != 0) || note_crash_locked(s))
            continue;
        objs[n] = session_json_locked(s, !viewer);
        pids[n] = br_proc_pid(s->proc);
        cJSON_AddItemToArray(arr, objs[n]);
        n++;
    }
    pthread_mutex_unlock(&reg_mu);
    /* /proc is read outside the registry's lock; the objects stay in `arr`. */
    add_usage(objs, pids, n);
    free(objs);
    free(pids);
    cJSON *r = cJSON_CreateObject();
    cJSON_AddItemToObject(r, "sessions", arr);
    return r;
}

cJSON *br_session_info(br_session *s) {
    pthread_mutex_lock(&reg_mu);
    cJSON *o = session_json_locked(s, false);
    pid_t pid = br_proc_pid(s->proc);
    pthread_mutex_unlock(&reg_mu);
    add_usage(&o, &pid, 1);
    return o;
}

void br_sessions_usage(int64_t *memory_bytes, int64_t *cpu_ms, int *tabs) {
    *memory_bytes = *cpu_ms = 0;
    *tabs = 0;
    cJSON *list = br_session_list(NULL);
    const cJSON *s;
    cJSON_ArrayForEach(s, cJSON_GetObjectItemCaseSensitive(list, "sessions")) {
        *memory_bytes += (int64_t)cJSON_GetObjectItemCaseSensitive(s, "memoryBytes")->valuedouble;
        *cpu_ms += (int64_t)cJSON_GetObjectItemCaseSensitive(s, "cpuMs")->valuedouble;
        *tabs += cJSON_GetArraySize(cJSON_GetObjectItemCaseSensitive(s, "tabs"));
    }
    cJSON_Delete(list);
}

/* ---- the janitor ---- */

void br_sessions_tick(void) {
    int64_t now = sbx_now_ms();
    for (;;) {
        br_session *victim = NULL;
        const char *why = NULL;
        bool reap_only = false;
        pthread_mutex_lock(&reg_mu);
        for (br_session *s = reg; s && !victim; s = s->next) {
            if (note_crash_locked(s)) {
                if (s->state == BR_TOMB && s->refs == 0) {
                    victim = s;
                    reap_only = true;
                    s->state = BR_REAPED;
                } else if (now - s->crashed_at > 60000) {
                    victim = s;
                    why = "crashed";
                }
            } else if (s->refs == 0 && now - s->last_used > idle_timeout_ms) {
                victim = s;
                why = "idle";
            } else if (now - s->created_mono > max_lifetime_ms) {
                victim = s;
                why = "lifetime";
            }
        }
        bool now_free = false;
        if (victim && !reap_only) {
            unlist_locked(victim);
            now_free = victim->refs == 0;
        } else if (victim) {
            victim->refs++; /* a call may take the tombstone off the list meanwhile */
        }
        pthread_mutex_unlock(&reg_mu);
        if (!victim)
            return;
        if (reap_only) {
            /* The tombstone stays listed (for one 502) but the processes and files go now. */
            br_proc_reap(victim->proc);
            br_session_put(victim); /* frees it if that call unlisted it */
            continue;
        }
        LOG_I("browser", "session=%s closed (%s)", victim->id, why);
        char ended[64];
        snprintf(ended, sizeof ended, "the session was closed (%s)", why);
        br_events_end(victim->events, ended);
        if (now_free)
            session_free(victim);
        else
            br_proc_kill(victim->proc);
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
        end_unlisted(s, !borrowed);
    }
    int64_t deadline = sbx_deadline_in(10000);
    for (;;) {
        pthread_mutex_lock(&reg_mu);
        int n = alive;
        pthread_mutex_unlock(&reg_mu);
        if (n == 0 || sbx_now_ms() > deadline)
            break;
        struct timespec ts = {0, 10 * 1000000L};
        nanosleep(&ts, NULL);
    }
}

/* ---- a borrowed session's tabs ---- */

br_page *br_session_page(br_session *s, const char *tab_id, sbx_err *e) {
    return br_tabs_page(s->tabs, tab_id, e);
}

cJSON *br_tabs_list(br_session *s) {
    cJSON *r = cJSON_CreateObject();
    cJSON_AddItemToObject(r, "tabs", br_tabs_json(s->tabs, true));
    return r;
}

egress_client *br_session_net(br_session *s) {
    return br_proc_net(s->proc);
}

sbx_code br_session_set_egress(const char *sid, egress_scope *scope, const egress_upstream *up,
                               sbx_err *e) {
    br_session *s = br_session_get(sid, NULL, e);
    if (!s) {
        egress_scope_free(scope);
        return e->code;
    }
    egress_client *net = br_proc_net(s->proc);
    if (net)
        egress_client_set_scope(net, scope, up);
    else
        egress_scope_free(scope);
    br_session_put(s);
    return SBX_OK;
}

void br_session_devtools(br_session *s, int *port, char *path) {
    br_proc_devtools(s->proc, port, path);
}

sbx_code br_session_state(br_session *s, int64_t timeout_ms, cJSON **out, sbx_err *e) {
    return br_state_read(s->tabs, timeout_ms, out, e);
}

cJSON *br_session_downloads(br_session *s) {
    return br_downloads_json(s->downloads);
}

sbx_code br_session_download(br_session *s, const char *name, char *path, int64_t *size,
                             sbx_err *e) {
    return br_downloads_file(s->downloads, name, path, size, e);
}

br_events *br_session_events(br_session *s) {
    return br_events_ref(s->events);
}

bool br_session_touch(const char *id) {
    pthread_mutex_lock(&reg_mu);
    br_session *s = find_locked(id, NULL);
    bool ok = s && br_tabs_alive(s->tabs);
    if (ok)
        s->last_used = sbx_now_ms();
    pthread_mutex_unlock(&reg_mu);
    return ok;
}

sbx_code br_browser_call(br_session *s, const char *method, cJSON *params, int64_t timeout_ms,
                         cJSON **result, sbx_err *e) {
    return br_tabs_browser_call(s->tabs, method, params, timeout_ms, result, e);
}

sbx_code br_tab_create(br_session *s, const char *url, int64_t timeout_ms, char tab[SBX_ID_LEN],
                       sbx_err *e) {
    int64_t deadline = sbx_deadline_in(timeout_ms);
    br_page *p = NULL;
    sbx_code rc = br_tabs_create(s->tabs, timeout_ms, &p, tab, e);
    if (rc != SBX_OK || !url)
        return rc;
    cJSON *out = NULL;
    rc = br_navigate(p, url, "load", sbx_left_ms(deadline), &out, e);
    cJSON_Delete(out);
    return rc;
}

sbx_code br_tab_close(br_session *s, const char *tab_id, sbx_err *e) {
    return br_tabs_close(s->tabs, tab_id, call_timeout_ms, e);
}
