/* browser.h -- the browser-session service: lifecycle seen by main() and /health.
 *
 * Thread safety: browser_init/browser_shutdown from the main thread only; browser_health
 * from any.
 */
#ifndef SBX_BROWSER_H
#define SBX_BROWSER_H

#include <cjson/cJSON.h>

#include "../common/err.h"

/* Find Chromium, start the CDP service thread, create DATA_DIR/browser. Returns 0; a missing
 * Chromium is not fatal (session creation answers 503). */
int browser_init(sbx_err *e);

/* Close every session: kill each Chromium's process tree, remove its directory, stop the
 * service thread. Idempotent. */
void browser_shutdown(void);

/* {"chromium": path or null, "sessions": n, ...}; caller frees. */
cJSON *browser_health(void);

#endif
