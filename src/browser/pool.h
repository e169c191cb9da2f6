/* pool.h -- the warm Chromium pool: browsers launched ahead of time, each given to one session.
 *
 * A refill thread keeps up to BROWSER_POOL_SIZE browsers launched (br_proc_launch: a fresh
 * directory, a fresh profile copy, answering CDP). A create takes one (br_pool_take) and makes
 * it a session (session.h); a pooled browser is never given out twice and never comes back to
 * the pool: it dies with its session. The pool knows nothing of sessions: what it weighs
 * (sessions in use, cold launches) comes from the `load` callback it is started with.
 *
 * Pooled browsers count against BROWSER_MAX_SESSIONS: the refill launches only while listed
 * sessions + creates in progress + pooled browsers stay below the limit, never while a create
 * is cold-launching one; what the pool lacks is launched side by side, as many at once as
 * memory allows (MemAvailable over 384 MiB a launch, at most 4; one while launches fail). Creates
 * always take a pooled browser when there is one, so the pool never turns a create into a 429. A
 * failed launch is logged and retried after 1 s, doubling up to 30 s.
 *
 * Thread safety: br_pool_start/br_pool_stop from the main thread (browser_init and
 * browser_shutdown); the rest from any thread. No function may be called with the session
 * registry lock held (lock order: pool, then the registry).
 */
#ifndef SBX_BROWSER_POOL_H
#define SBX_BROWSER_POOL_H

#include <stdbool.h>
#include <stdint.h>

#include "../common/err.h"
#include "proc.h"

typedef struct br_pool_stats {
    int size;          /* BROWSER_POOL_SIZE when the pool runs, else 0 */
    int ready;         /* launched browsers waiting for a session */
    uint64_t pooled;   /* sessions created from a pooled browser */
    uint64_t cold;     /* sessions created by launching a Chromium for them */
    uint64_t failures; /* refill launches that failed */
    int launching;     /* refill launches under way */
} br_pool_stats;

/* What the refill weighs: *in_use = sessions listed or being created, *cold = creates
 * launching their own Chromium now. Called without the pool's lock held. */
typedef void (*br_pool_load_fn)(int *in_use, int *cold);

/* Start the refill thread when `size` > 0 (call after br_proc_init and chromium_init, with a
 * Chromium found): at most `size` browsers, and pooled + `load`'s in_use below
 * `max_sessions`; each launch waits up to `launch_timeout_ms`. 0, or -1 with `e` filled. */
int br_pool_start(int64_t size, int64_t max_sessions, int64_t launch_timeout_ms,
                  br_pool_load_fn load, sbx_err *e);

/* Stop the refill thread (an in-flight launch is waited for) and discard every pooled browser:
 * killed, reaped, directory removed. Idempotent; br_pool_take answers NULL afterwards. */
void br_pool_stop(void);

/* A pooled browser that is still alive (dead ones met on the way are discarded), or NULL when
 * the pool is empty. The caller owns it (br_proc_discard when done). */
br_proc *br_pool_take(void);

/* Something that weighs on the refill changed (a session ended, a cold launch finished). */
void br_pool_kick(void);

/* Count a created session by where its browser came from. */
void br_pool_note_session(bool pooled);

void br_pool_stats_get(br_pool_stats *out);

#endif
