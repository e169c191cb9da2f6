/* exec.h -- the Python execution service: lifecycle seen by main() and /health.
 *
 * Thread safety: exec_init/exec_shutdown from the main thread only; exec_health from any.
 */
#ifndef SBX_EXEC_H
#define SBX_EXEC_H

#include <stdbool.h>
#include <stdint.h>

#include <cjson/cJSON.h>

#include "../common/err.h"

/* Probe the interpreter and the kernel's sandbox layers, log what is active, create
 * DATA_DIR/runs. Returns 0; a missing Python is not fatal (runs answer 503). */
int exec_init(sbx_err *e);

/* Kill every run's process tree and remove every run directory. Idempotent. */
void exec_shutdown(void);

/* {"python": "/usr/bin/python3" or null, "sandbox": {layer: bool, ...}, ...}; caller frees. */
cJSON *exec_health(void);

typedef struct exec_request {
    const char *code;
    int64_t timeout_ms;
    const char *upload_url;   /* NULL: no uploads */
    const char *upload_token; /* NULL: no Authorization header */
    bool public_;
} exec_request;

/* Output observer for streaming: called on the run's thread with stream 0 (start; data is the
 * run id), 1 (stdout), 2 (stderr) or 3 (a keep-alive with no data, about once a second while
 * the program is silent). Returning -1 (the client left) kills the run. */
typedef int (*exec_output_fn)(void *ctx, int stream, const char *data, size_t len);

/* Run one program in a fresh sandbox and wait for it. Returns the result object
 * {exitCode, stdout, stderr, uploads, durationMs, timedOut, signal, violations, truncated,
 * runId} (caller frees), or NULL with `e` filled: SBX_EUNAVAIL (no Python), SBX_EBUSY (no
 * free slot within EXEC_QUEUE_WAIT_MS; e->retry_after set), SBX_EINTERNAL. A failed, killed
 * or timed-out program is a result, not an error. Borrows `rq`; `fn` may be NULL. */
cJSON *exec_run(const exec_request *rq, exec_output_fn fn, void *ctx, sbx_err *e);

#endif
