/* browser.c -- the browser service seen by main(): start-up, janitor thread, warm pool, health,
 * metrics, shutdown. */
#define _GNU_SOURCE
#include "browser.h"

#include <pthread.h>
#include <stdbool.h>
#include <stdlib.h>
#include <time.h>

#include "../common/log.h"
#include "cdp.h"
#include "chromium.h"
#include "pool.h"
#include "proc.h"
#include "session.h"
#include "url_policy.h"

static pthread_mutex_t jmu = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t jcv;
static bool jstop, jrunning, started;
static int64_t max_sessions;
static pthread_t jthread;

static void *janitor_main(void *arg) {
    (void)arg;
    pthread_mutex_lock(&jmu);
    while (!jstop) {
        sbx_cond_wait_until(&jcv, &jmu, sbx_deadline_in(500));
        if (jstop)
            break;
        pthread_mutex_unlock(&jmu);
        br_sessions_tick();
        pthread_mutex_lock(&jmu);
    }
    pthread_mutex_unlock(&jmu);
    return NULL;
}

int browser_init(const browser_opts *opts, sbx_err *e) {
    if (started)
        return 0;
    const browser_opts o = *opts;
    max_sessions = o.max_sessions;
    if (br_url_policy_init(o.allow_hosts, o.deny_hosts) != 0) {
        sbx_fail(e, SBX_EINTERNAL, "out of memory");
        return -1;
    }
    chromium_sweep_tmp();
    char *bin = chromium_find(o.chromium_path);
    if (bin)
        LOG_I("browser", "chromium=%s", bin);
    else
        LOG_W("browser", "no Chromium found; browser sessions answer 503");
    br_proc_init(bin, o.data_dir);
    br_proc_egress_init(o.gateway, o.egress, o.network_allowlist, o.upstream);
    free(bin);
    br_sessions_init(&o);
    if (cdp_start(e) != 0 || chromium_init(o.profile_dir, e) != 0) {
        cdp_stop();
        br_proc_shutdown();
        return -1;
    }
    if (sbx_cond_init_mono(&jcv) != 0) {
        chromium_shutdown();
        cdp_stop();
        br_proc_shutdown();
        sbx_fail(e, SBX_EINTERNAL, "could not set up the janitor's condition variable");
        return -1;
    }
    jstop = false;
    if (pthread_create(&jthread, NULL, janitor_main, NULL) != 0) {
        chromium_shutdown();
        cdp_stop();
        br_proc_shutdown();
        sbx_fail(e, SBX_EINTERNAL, "could not start the browser janitor thread");
        return -1;
    }
    jrunning = true;
    started = true;
    if (br_pool_start(o.pool_size, o.max_sessions, o.launch_timeout_ms, br_sessions_load, e) != 0) {
        browser_shutdown();
        return -1;
    }
    return 0;
}

void browser_shutdown(void) {
    if (!started)
        return;
    if (jrunning) {
        pthread_mutex_lock(&jmu);
        jstop = true;
        pthread_cond_broadcast(&jcv);
        pthread_mutex_unlock(&jmu);
        pthread_join(jthread, NULL);
        jrunning = false;
    }
    br_pool_stop();
    br_sessions_shutdown();
    chromium_shutdown();
    cdp_stop();
    br_proc_shutdown();
    br_url_policy_free();
    started = false;
}

cJSON *browser_health(void) {
    cJSON *o = cJSON_CreateObject();
    const char *bin = br_proc_chromium();
    if (bin)
        cJSON_AddStringToObject(o, "chromium", bin);
    else
        cJSON_AddNullToObject(o, "chromium");
    cJSON_AddNumberToObject(o, "sessions", br_sessions_count());
    cJSON_AddNumberToObject(o, "maxSessions", (double)(started ? max_sessions : 0));
    br_pool_stats st;
    br_pool_stats_get(&st);
    cJSON *pool = cJSON_AddObjectToObject(o, "pool");
    cJSON_AddNumberToObject(pool, "size", st.size);
    cJSON_AddNumberToObject(pool, "ready", st.ready);
    cJSON_AddNumberToObject(pool, "launching", st.launching);
    return o;
}

void browser_stats_get(browser_stats *out) {
    br_pool_stats st;
    br_pool_stats_get(&st);
    out->pool_size = st.size;
    out->pool_ready = st.ready;
    out->pool_failures = st.failures;
    out->created_pooled = st.pooled;
    out->created_cold = st.cold;
    out->sessions = br_sessions_count();
    br_sessions_usage(&out->memory_bytes, &out->cpu_ms, &out->tabs);
}
