/* browser.h -- the browser-session service: lifecycle seen by main() and /health.
 *
 * Thread safety: browser_init/browser_shutdown from the main thread only; browser_health and
 * browser_stats_get from any.
 */
#ifndef SBX_BROWSER_H
#define SBX_BROWSER_H

#include <stdint.h>

#include <cjson/cJSON.h>

#include "../common/err.h"
#include "opts.h"

/* With the settings `opts` (main() fills them from the settings table; strings borrowed for
 * the call): find Chromium, start the CDP service thread, the janitor and the warm pool's
 * refill thread (pool_size > 0). Returns 0 or -1 with `e` filled; a missing Chromium is not
 * fatal (session creation answers 503, and there is no pool). */
int browser_init(const browser_opts *opts, sbx_err *e);

/* Close every session and pooled browser: kill each Chromium's process tree, remove its
 * directory, stop the threads. Idempotent. */
void browser_shutdown(void);

/* {"chromium": path or null, "sessions": n, "maxSessions": n, "pool": {"size", "ready",
 * "launching"}};
 * caller frees. */
cJSON *browser_health(void);

/* What /metrics shows of the browser service. */
typedef struct browser_stats {
    int pool_size;           /* BROWSER_POOL_SIZE while the pool runs, else 0 */
    int pool_ready;          /* pooled browsers waiting for a session */
    uint64_t pool_failures;  /* pool launches that failed */
    uint64_t created_pooled; /* sessions that got a pooled browser */
    uint64_t created_cold;   /* sessions that launched their own */
    int sessions;            /* live sessions */
    int tabs;                /* their open tabs */
    int64_t memory_bytes;    /* PSS of their Chromiums' processes */
    int64_t cpu_ms;          /* CPU time of those processes */
} browser_stats;

void browser_stats_get(browser_stats *out);

#endif
