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
 * Dependencies point one way: the zygote uses the sandbox (to start its interpreter, and the
 * sandbox's internals for sandbox_spawn_zygote, the client half of a zygote run); the sandbox
 * knows nothing of it; exec.c joins them.
 *
 * Thread safety: zygote_start/zygote_stop from the main thread; the rest from any thread.
 */
#ifndef SBX_ZYGOTE_H
#define SBX_ZYGOTE_H

#include <stdbool.h>
#include <stdint.h>

#include <cjson/cJSON.h>

#include "../common/err.h"
#include "sandbox.h"
#include "zygote_proto.h"

/* A door into a zygote (zygote_open opens one for a program): what sandbox_spawn_zygote needs
 * from it. */
typedef struct sandbox_zygote {
    int64_t preload_mb; /* added to the run's memory limit (its preloaded modules) */
    /* Hand over one request and its ZYG_NFDS descriptors (they stay the caller's); SBX_EUNAVAIL
     * when it cannot take it. *zpidfd: a pidfd of the zygote that took it (caller closes), or
     * -1. Called once, on the caller's thread. */
    sbx_code (*submit)(void *ctx, const zyg_req *rq, const int fds[ZYG_NFDS], int *zpidfd,
                       sbx_err *e);
    void *ctx;
} sandbox_zygote;

/* Start the run through the zygote behind `z` instead of a cold interpreter (sandbox_spawn):
 * same layers, same sandbox_child. Defined in zygote.c, on the sandbox's internals. SBX_EUNAVAIL
 * when the zygote cannot take it (not ready, died, a loosened network, or it failed before the
 * program started): then nothing ran and the caller may use sandbox_spawn. Other failures as
 * sandbox_spawn. Borrows `z` for the call. */
sbx_code sandbox_spawn_zygote(const sandbox_spec *spec, const sandbox_zygote *z,
                              sandbox_child **out, sbx_err *e);

typedef struct zygote_opts {
    const char *python;      /* the interpreter */
    const char *const *envp; /* the environment of a run (NULL-terminated) */
    const char *data_dir;    /* DATA_DIR: each zygote's directory is made in DATA_DIR/zygote */
    const char *preload;     /* EXEC_PRELOAD: "auto" (NULL too), "" or comma-separated modules */
    int64_t file_size_mb;    /* the size of its /dev/shm */
    bool network;            /* runs may have network: "auto" adds urllib.request */
} zygote_opts;

/* Start the zygote threads as `o` says (everything copied). 0, or -1 with `e` filled. */
int zygote_start(const zygote_opts *o, sbx_err *e);
/* Stop the thread and kill the zygote (runs it started die with it). Idempotent. */
void zygote_stop(void);

/* The choice behind zygote_open: whether a line of `code` that says "import" names, as a whole
 * word, the top-level package of a module in `full` that `light` does not have (numpy of
 * numpy.linalg, say). Borrows both arrays of module names; pure. */
bool zygote_mentions_heavy(const char *code, const cJSON *full, const cJSON *light);

/* A door into the tier for a program, for sandbox_spawn_zygote: the full tier when
 * zygote_mentions_heavy says so, else the light one; the other when that one is not ready.
 * Only a choice of speed: both tiers run any program identically. False when neither is ready.
 * Its submit hands the request to the tier (SBX_EUNAVAIL when it is not ready or the send
 * failed; a broken zygote is then restarted). */
bool zygote_open(const char *code, sandbox_zygote *door);

/* {"ready": both tiers, "tiers": [{"name", "ready", "pid", "starts", "runs", "modules": [...],
 * "preloadMiB"}, ...]}; caller frees. */
cJSON *zygote_health(void);

#endif
