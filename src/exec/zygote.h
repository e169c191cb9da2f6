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
 * Dependencies point one way: the zygote uses the sandbox (to start its interpreter, and as
 * the door sandbox_spawn_zygote takes), the sandbox knows nothing of it; exec.c joins them.
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

typedef struct zygote_opts {
    const char *python;      /* the interpreter */
    const char *const *envp; /* the environment of a run (NULL-terminated) */
    const char *data_dir;    /* DATA_DIR: each zygote's directory is made in DATA_DIR/zygote */
    const char *preload;     /* EXEC_PRELOAD: "auto" (NULL too), "" or comma-separated modules */
    int64_t file_size_mb;    /* the size of its /dev/shm */
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
