/* pool.c -- the warm Chromium pool: a refill thread launches browsers ahead of time; creates
 * take them (see pool.h). */
#define _GNU_SOURCE
#include "pool.h"

#include <pthread.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

#include "../common/log.h"

#define POOL_MAX         64 /* the bound of BROWSER_POOL_SIZE */
#define BACKOFF_FIRST_MS 1000
#define BACKOFF_MAX_MS   30000
#define RECHECK_MS       1000 /* how often an idle refill thread looks for dead pooled browsers */
#define PARALLEL_MAX     4    /* launches the refill runs at once, at most */
#define LAUNCH_BUDGET    (384ll << 20) /* memory a starting Chromium is counted as needing */

static pthread_mutex_t mu = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t cv;
static bool cv_ready;      /* cv initialized (once, never destroyed) */
static bool running, stop; /* the refill thread */
static pthread_t thread;
static int size;
static br_proc *ready[POOL_MAX]; /* oldest first */
static int nready;
static int launching; /* refill launches under way */
static unsigned gen;  /* bumped by every kick and take: a wake-up is never lost */
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

/* How many browsers may be launched now: what the pool lacks, within the limit, none while a
 * create is cold-launching (user creates go first on a small machine). */
static int room(void) {
    int in_use, cold;
    load(&in_use, &cold);
    pthread_mutex_lock(&mu);
    int n = size - nready;
    if (in_use + nready + n > max_sessions)
        n = (int)(max_sessions - in_use - nready);
    if (stop || cold > 0 || n < 0)
        n = 0;
    pthread_mutex_unlock(&mu);
    return n;
}

/* Launches the machine can take at once: MemAvailable over LAUNCH_BUDGET, 1..PARALLEL_MAX. */
static int parallel_budget(void) {
    FILE *f = fopen("/proc/meminfo", "re");
    long long kb = 0;
    char line[128];
    while (f && fgets(line, sizeof line, f))
        if (sscanf(line, "MemAvailable: %lld kB", &kb) == 1)
            break;
    if (f)
        fclose(f);
    long long n = kb * 1024 / LAUNCH_BUDGET;
    return n < 1 ? 1 : n > PARALLEL_MAX ? PARALLEL_MAX : (int)n;
}

typedef struct launch_job {
    pthread_t thread;
    bool threaded;
    br_proc *proc;
    sbx_err e;
} launch_job;

static void *launch_main(void *arg) {
    launch_job *j = arg;
    j->proc = br_proc_launch(launch_timeout_ms, &j->e);
    return NULL;
}

/* Keep the launched `s` if there is still room for it, else discard it. */
static void keep_or_discard(br_proc *s) {
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
        int n = now < next_try ? 0 : room();
        if (n == 0) {
            pthread_mutex_lock(&mu);
            if (!stop && gen == seen) {
                int64_t ms = now < next_try ? next_try - now : RECHECK_MS;
                wait_ms(ms < RECHECK_MS ? ms : RECHECK_MS);
            }
            pthread_mutex_unlock(&mu);
            continue;
        }
        /* What the pool lacks is launched side by side, as many as memory allows (after a
         * burst of creates the pool is whole again in about one launch's time). */
        int par = parallel_budget();
        if (n > par)
            n = par;
        if (backoff)
            n = 1; /* launches are failing: one at a time until one works */
        launch_job jobs[PARALLEL_MAX];
        memset(jobs, 0, sizeof jobs);
        pthread_mutex_lock(&mu);
        launching = n;
        pthread_mutex_unlock(&mu);
        if (n > 1)
            LOG_I("browser", "pool: launching %d browsers at once", n);
        for (int i = 1; i < n; i++)
            jobs[i].threaded = pthread_create(&jobs[i].thread, NULL, launch_main, &jobs[i]) == 0;
        launch_main(&jobs[0]);
        for (int i = 1; i < n; i++) {
            if (jobs[i].threaded)
                pthread_join(jobs[i].thread, NULL);
            else
                launch_main(&jobs[i]);
        }
        pthread_mutex_lock(&mu);
        launching = 0;
        pthread_mutex_unlock(&mu);
        int failed = 0;
        for (int i = 0; i < n; i++)
            failed += jobs[i].proc == NULL;
        if (failed) {
            backoff = backoff ? backoff * 2 : BACKOFF_FIRST_MS;
            if (backoff > BACKOFF_MAX_MS)
                backoff = BACKOFF_MAX_MS;
            next_try = sbx_now_ms() + backoff;
        } else {
            backoff = next_try = 0;
        }
        for (int i = 0; i < n; i++) {
            if (jobs[i].proc) {
                keep_or_discard(jobs[i].proc);
                continue;
            }
            pthread_mutex_lock(&mu);
            n_failures++;
            pthread_mutex_unlock(&mu);
            LOG_W("browser", "pool: launching a browser failed: %s; next try in %lld ms",
                  jobs[i].e.msg, (long long)backoff);
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
    out->launching = launching;
    pthread_mutex_unlock(&mu);
}
