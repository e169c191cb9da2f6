/* pool.c -- the warm Chromium pool: a refill thread launches browsers ahead of time; creates
 * take them (see pool.h). */
#define _GNU_SOURCE
#include "pool.h"

#include <pthread.h>
#include <string.h>
#include <time.h>

#include "../common/log.h"

#define POOL_MAX         64 /* the bound of BROWSER_POOL_SIZE */
#define BACKOFF_FIRST_MS 1000
#define BACKOFF_MAX_MS   30000
#define RECHECK_MS       1000 /* how often an idle refill thread looks for dead pooled browsers */

static pthread_mutex_t mu = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t cv;
static bool cv_ready;      /* cv initialized (once, never destroyed) */
static bool running, stop; /* the refill thread */
static pthread_t thread;
static int size;
static br_proc *ready[POOL_MAX]; /* oldest first */
static int nready;
static unsigned gen; /* bumped by every kick and take: a wake-up is never lost */
static uint64_t n_pooled, n_cold, n_failures;
static int64_t max_sessions, launch_timeout_ms;
static br_pool_load_fn load;

/* Locked: wait on cv for at most `ms`. */
static void wait_ms(int64_t ms) {
    sbx_cond_wait_until(&cv, &mu, sbx_deadline_in(ms));
}

/* Discard the pooled browsers that died while waiting. */
static void sweep_dead(void) {
    br_proc *dead[POOL_MAX];
    int n = 0, kept = 0;
    pthread_mutex_lock(&mu);
    for (int i = 0; i < nready; i++) {
        if (br_proc_usable(ready[i]))
            ready[kept++] = ready[i];
        else
            dead[n++] = ready[i];
    }
    nready = kept;
    pthread_mutex_unlock(&mu);
    for (int i = 0; i < n; i++) {
        LOG_W("browser", "pool: session=%s died while waiting; discarded", br_proc_id(dead[i]));
        br_proc_discard(dead[i]);
    }
}

/* True when one more browser may be launched: the pool is short, the limit leaves room for it
 * and no create is cold-launching (user creates go first on a small machine). */
static bool room_for_one(void) {
    int in_use, cold;
    load(&in_use, &cold);
    pthread_mutex_lock(&mu);
    bool ok = !stop && nready < size && in_use + nready < max_sessions && cold == 0;
    pthread_mutex_unlock(&mu);
    return ok;
}

static void *refill_main(void *arg) {
    (void)arg;
    int64_t backoff = 0, next_try = 0;
    for (;;) {
        pthread_mutex_lock(&mu);
        bool quit = stop;
        unsigned seen = gen;
        pthread_mutex_unlock(&mu);
        if (quit)
            break;
        sweep_dead();
        int64_t now = sbx_now_ms();
        if (now < next_try || !room_for_one()) {
            pthread_mutex_lock(&mu);
            if (!stop && gen == seen) {
                int64_t ms = now < next_try ? next_try - now : RECHECK_MS;
                wait_ms(ms < RECHECK_MS ? ms : RECHECK_MS);
            }
            pthread_mutex_unlock(&mu);
            continue;
        }
        sbx_err e = {0};
        br_proc *s = br_proc_launch(launch_timeout_ms, &e);
        if (!s) {
            backoff = backoff ? backoff * 2 : BACKOFF_FIRST_MS;
            if (backoff > BACKOFF_MAX_MS)
                backoff = BACKOFF_MAX_MS;
            next_try = sbx_now_ms() + backoff;
            pthread_mutex_lock(&mu);
            n_failures++;
            pthread_mutex_unlock(&mu);
            LOG_W("browser", "pool: launching a browser failed: %s; next try in %lld ms", e.msg,
                  (long long)backoff);
            continue;
        }
        backoff = next_try = 0;
        /* Creates that began during the launch may have used the room it was meant for. */
        sweep_dead();
        int in_use, cold;
        load(&in_use, &cold);
        pthread_mutex_lock(&mu);
        bool keep = !stop && nready < size && in_use + nready < max_sessions;
        if (keep)
            ready[nready++] = s;
        int n = nready, sz = size;
        pthread_mutex_unlock(&mu);
        if (keep) {
            LOG_I("browser", "pool: session=%s ready (%d of %d)", br_proc_id(s), n, sz);
        } else {
            LOG_D("browser", "pool: session=%s not kept (no room any more)", br_proc_id(s));
            br_proc_discard(s);
        }
    }
    return NULL;
}

int br_pool_start(int64_t want, int64_t max, int64_t launch_ms, br_pool_load_fn load_fn,
                  sbx_err *e) {
    if (running || want <= 0 || !br_proc_chromium())
        return 0;
    max_sessions = max;
    launch_timeout_ms = launch_ms;
    load = load_fn;
    if (!cv_ready) {
        if (sbx_cond_init_mono(&cv) != 0) {
            sbx_fail(e, SBX_EINTERNAL, "could not set up the pool's condition variable");
            return -1;
        }
        cv_ready = true;
    }
    pthread_mutex_lock(&mu);
    size = (int)(want < POOL_MAX ? want : POOL_MAX);
    stop = false;
    pthread_mutex_unlock(&mu);
    if (pthread_create(&thread, NULL, refill_main, NULL) != 0) {
        size = 0;
        sbx_fail(e, SBX_EINTERNAL, "could not start the browser pool thread");
        return -1;
    }
    running = true;
    LOG_I("browser", "pool: keeping %d browser%s ready", size, size == 1 ? "" : "s");
    return 0;
}

void br_pool_stop(void) {
    if (!running)
        return;
    pthread_mutex_lock(&mu);
    stop = true;
    pthread_cond_broadcast(&cv);
    pthread_mutex_unlock(&mu);
    pthread_join(thread, NULL);
    running = false;
    br_proc *left[POOL_MAX];
    pthread_mutex_lock(&mu);
    int n = nready;
    memcpy(left, ready, sizeof(br_proc *) * (size_t)n);
    nready = 0;
    size = 0;
    pthread_mutex_unlock(&mu);
    for (int i = 0; i < n; i++)
        br_proc_discard(left[i]);
}

br_proc *br_pool_take(void) {
    for (;;) {
        pthread_mutex_lock(&mu);
        br_proc *s = NULL;
        if (nready > 0) {
            s = ready[0];
            nready--;
            memmove(ready, ready + 1, sizeof(br_proc *) * (size_t)nready);
            gen++;
            if (cv_ready)
                pthread_cond_broadcast(&cv);
        }
        pthread_mutex_unlock(&mu);
        if (!s || br_proc_usable(s))
            return s;
        LOG_W("browser", "pool: session=%s died while waiting; discarded", br_proc_id(s));
        br_proc_discard(s);
    }
}

void br_pool_kick(void) {
    pthread_mutex_lock(&mu);
    gen++;
    if (cv_ready)
        pthread_cond_broadcast(&cv);
    pthread_mutex_unlock(&mu);
}

void br_pool_note_session(bool pooled) {
    pthread_mutex_lock(&mu);
    if (pooled)
        n_pooled++;
    else
        n_cold++;
    pthread_mutex_unlock(&mu);
}

void br_pool_stats_get(br_pool_stats *out) {
    pthread_mutex_lock(&mu);
    out->size = size;
    out->ready = nready;
    out->pooled = n_pooled;
    out->cold = n_cold;
    out->failures = n_failures;
    pthread_mutex_unlock(&mu);
}
