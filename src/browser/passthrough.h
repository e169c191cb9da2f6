/* passthrough.h -- CDP passthrough (API extension GET /browser/sessions/{id}/cdp): a client's
 * WebSocket joined to its session's Chromium, so Puppeteer (puppeteer.connect) and Playwright
 * (chromium.connectOverCDP) can drive a managed session next to the REST calls.
 *
 * The server opens its own WebSocket to Chromium's browser endpoint, then forwards bytes both
 * ways without reading frames: both legs speak RFC 6455 without extensions, so the client's
 * masked frames are what Chromium expects and Chromium's replies are what the client expects.
 * Traffic counts as use of the session (it does not idle out while driven); the link ends
 * when either side closes, when the session is deleted or expires (its Chromium dies), or at
 * shutdown.
 * Thread safety: each link belongs to one connection thread.
 */
#ifndef SBX_BROWSER_PASSTHROUGH_H
#define SBX_BROWSER_PASSTHROUGH_H

#include <stdbool.h>
#include <stddef.h>

#include "../common/err.h"
#include "../common/util.h"

typedef struct br_cdp_link br_cdp_link;

/* Connect to Chromium's browser endpoint ws://127.0.0.1:port/path and complete the WebSocket
 * handshake there. The pump ends soon after `stopping()` turns true. NULL and `e` (503 when
 * Chromium does not take the connection). */
br_cdp_link *br_cdp_open(const char *session_id, int port, const char *path, bool (*stopping)(void),
                         sbx_err *e);

/* Forward between the client's socket (after its handshake; `extra` = bytes it already sent)
 * and Chromium until one side ends. Matches http_ws_fn. */
void br_cdp_pump(int client, const char *extra, size_t extra_len, void *link);

/* Close Chromium's side and free the link. NULL ok. Matches arg_free. */
void br_cdp_close(void *link);

#endif
