/* exec.h -- the Python execution service: lifecycle seen by main() and /health.
 *
 * Thread safety: exec_init/exec_shutdown from the main thread only; exec_health from any.
 */
#ifndef SBX_EXEC_H
#define SBX_EXEC_H

#include <cjson/cJSON.h>

#include "../common/err.h"

/* Probe the interpreter and the kernel's sandbox layers, log what is active, create
 * DATA_DIR/runs. Returns 0; a missing Python is not fatal (runs answer 503). */
int exec_init(sbx_err *e);

/* Kill every run's process tree and remove every run directory. Idempotent. */
void exec_shutdown(void);

/* {"python": "/usr/bin/python3" or null, "sandbox": {layer: bool, ...}, ...}; caller frees. */
cJSON *exec_health(void);

#endif
