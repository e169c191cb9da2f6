/* zygote.h -- the pre-forked Python of EXEC_MODE=zygote: sandboxed interpreters with the
 * EXEC_PRELOAD modules imported, from which every run is cloned (see zygote_so/serve.c).
 *
 * Two tiers, because cloning costs in proportion to what is mapped: "light" imports only the
 * standard-library modules of the list (a clone takes about a millisecond), "full" imports the
 * whole list (numpy and pandas make a clone several times dearer). A run goes to the full tier
 * when its source imports one of the modules only that tier has.
 *
 * A thread per tier starts its zygote (sandbox_spawn with zygote_init), waits for its "ready"
 * message, and restarts it when it dies, with a growing pause (0.1 s up to 5 s). Runs never wait
 * for it: while it is not ready they start cold (sandbox_spawn). The thread is long-lived on
 * purpose: the zygote dies with the thread that spawned it (PR_SET_PDEATHSIG).
 *
 * Thread safety: zygote_start/zygote_stop from the main thread; the rest from any thread.
 */
#ifndef SBX_ZYGOTE_H
#define SBX_ZYGOTE_H

#include <stdbool.h>
#include <stdint.h>

#include <cjson/cJSON.h>

#include "../common/err.h"
#include "zygote_proto.h"

/* Start the zygote thread for `python` with the run environment `envp` (copied). 0 or -1. */
int zygote_start(const char *python, const char *const *envp, sbx_err *e);
/* Stop the thread and kill the zygote (runs it started die with it). Idempotent. */
void zygote_stop(void);

/* The tier for a program: 1 (full) when a line of it with "import" names a module only the full
 * tier preloaded (e.g. numpy), else 0 (light); the other tier when that one is not ready; -1
 * when neither is. Only a choice of speed: both tiers run any program identically. */
int zygote_pick(const char *code);
/* The choice behind zygote_pick: whether a line of `code` that says "import" names, as a whole
 * word, the top-level package of a module in `full` that `light` does not have (numpy of
 * numpy.linalg, say). Borrows both arrays of module names; pure. */
bool zygote_mentions_heavy(const char *code, const cJSON *full, const cJSON *light);
/* MiB of address space the tier's preloaded modules took (added to its runs' memory limit, so a
 * run keeps the headroom a cold run has). */
int64_t zygote_preload_mb(int tier);
/* Hand one run request (and its ZYG_NFDS descriptors) to a tier. SBX_EUNAVAIL when it is not
 * ready or the send failed (it is then restarted). The descriptors stay the caller's. On success
 * *zpidfd is a pidfd of the zygote that took the run (caller closes; -1 if none could be made):
 * when that zygote dies, the runs it started die with it. */
sbx_code zygote_submit(int tier, const zyg_req *rq, const int fds[ZYG_NFDS], int *zpidfd,
                       sbx_err *e);

/* {"ready": both tiers, "tiers": [{"name", "ready", "pid", "starts", "runs", "modules": [...],
 * "preloadMiB"}, ...]}; caller frees. */
cJSON *zygote_health(void);

#endif
