/* pool.h -- the warm Chromium pool: browsers launched ahead of time, each given to one session.
 *
 * A refill thread keeps up to BROWSER_POOL_SIZE browsers launched (br_session_launch: a fresh
 * directory, a fresh profile copy, answering CDP) and unlisted. A create takes one
 * (br_pool_take), applies its device and lists it (br_session_publish); a pooled browser is
 * never given out twice and never comes back to the pool: it dies with its session.
 *
 * Pooled browsers count against BROWSER_MAX_SESSIONS: the refill launches only while listed
 * sessions + creates in progress + pooled browsers stay below the limit, and one browser at a
 * time, never while a create is cold-launching one. Creates always take a pooled browser when
 * there is one, so the pool never turns a create into a 429. A failed launch is logged and
 * retried after 1 s, doubling up to 30 s.
 *
 * Thread safety: br_pool_start/br_pool_stop from the main thread (browser_init and
 * browser_shutdown); the rest from any thread. No function may be called with the session
 * registry lock held (lock order: pool, then a session or the registry).
 */
#ifndef SBX_BROWSER_POOL_H
#define SBX_BROWSER_POOL_H

#include <stdbool.h>
#include <stdint.h>

#include "../common/err.h"
#include "session.h"

typedef struct br_pool_stats {
    int size;          /* BROWSER_POOL_SIZE when the pool runs, else 0 */
    int ready;         /* launched browsers waiting for a session */
    uint64_t pooled;   /* sessions created from a pooled browser */
    uint64_t cold;     /* sessions created by launching a Chromium for them */
    uint64_t failures; /* refill launches that failed */
} br_pool_stats;

/* Start the refill thread when BROWSER_POOL_SIZE > 0 (call after br_sessions_init and
 * chromium_init, with a Chromium found). 0, or -1 with `e` filled. */
int br_pool_start(sbx_err *e);

/* Stop the refill thread (an in-flight launch is waited for) and discard every pooled browser:
 * killed, reaped, directory removed. Idempotent; br_pool_take answers NULL afterwards. */
void br_pool_stop(void);

/* A pooled browser that is still alive (dead ones met on the way are discarded), or NULL when
 * the pool is empty. The caller owns it: br_session_publish it or br_session_discard it. */
br_session *br_pool_take(void);

/* Something that weighs on the refill changed (a session ended, a cold launch finished). */
void br_pool_kick(void);

/* Count a created session by where its browser came from. */
void br_pool_note_session(bool pooled);

void br_pool_stats_get(br_pool_stats *out);

#endif
