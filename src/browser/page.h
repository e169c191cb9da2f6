/* page.h -- the boundary between the CDP/session core and what acts on one page.
 *
 * A br_page is one attached tab of a live session (a flattened CDP target session). The core
 * (session/cdp code) implements the br_page_* calls; actions.c and capture.c implement
 * br_action, br_screenshot and br_pdf on top of them and never touch the WebSocket.
 *
 * Thread safety: called from HTTP handler threads; each br_page_* call hands its work to the
 * CDP service thread and waits for the reply with a deadline. A br_page is borrowed for the
 * duration of one HTTP call (the core keeps it alive until the call returns).
 */
#ifndef SBX_BROWSER_PAGE_H
#define SBX_BROWSER_PAGE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <cjson/cJSON.h>

#include "../common/err.h"
#include "cdp.h"

typedef struct br_page br_page;

/* ---- implemented by the core ---- */

/* Send CDP `method` with `params` (taken; may be NULL) to this page's target session and wait
 * up to `timeout_ms` for the reply. On success *result (may be NULL if not wanted) receives the
 * "result" object (caller frees). Errors: SBX_ETIMEOUT, SBX_ECRASHED (browser died; the session
 * is being cleaned up), SBX_ETABCRASHED (the tab's renderer died), SBX_EINTERNAL when Chromium
 * refuses the command, with Chromium's message (a caller that knows the refusal is the
 * client's mistake maps it to SBX_EINVAL itself). */
sbx_code br_page_call(br_page *p, const char *method, cJSON *params, int64_t timeout_ms,
                      cJSON **result, sbx_err *e);

/* Send 1..CDP_MAX_BATCH commands to the page back to back and wait for all replies (one round
 * trip; they still run in order). Errors as br_page_call, for the first command that failed. */
sbx_code br_page_call_all(br_page *p, const cdp_cmd *cmds, int n, int64_t timeout_ms, sbx_err *e);

/* Evaluate a JavaScript expression in the page (awaitPromise, returnByValue). On success
 * *value receives the JSON value (caller frees; JSON null for undefined). A thrown exception is
 * SBX_EINVAL with the exception's message. */
sbx_code br_page_eval(br_page *p, const char *expression, int64_t timeout_ms, cJSON **value,
                      sbx_err *e);

/* True when the session emulates a phone (touch events instead of mouse where it matters). */
bool br_page_is_mobile(const br_page *p);

/* The session's own directory (DATA_DIR/browser/<id>: files it keeps, such as uploads),
 * borrowed while the session is; "" when unknown. */
const char *br_page_dir(const br_page *p);

/* True when the tab began a download at `since` (sbx_now_ms) or later, waiting up to
 * `wait_ms` for one; `name` (room for `cap`) gets its name in GET .../downloads. */
bool br_page_download_since(br_page *p, int64_t since, int64_t wait_ms, char *name, size_t cap);

/* The loader id of the tab's current document as its lifecycle events name it (room for 64;
 * "" before the first). A navigation that makes a new document changes it. */
void br_page_loader(br_page *p, char *loader);

/* The id of the tab's main frame (for Page.* commands that name a frame); borrowed, valid
 * while the page is. */
const char *br_page_frame_id(const br_page *p);

/* A frame of the tab that Chromium draws in a renderer process of its own (a cross-site
 * iframe under site isolation: an "OOPIF"), reached through a CDP target session of its own. */
typedef struct br_oopif {
    br_page *page;         /* that session: br_page_call and br_page_eval go to the frame */
    char frame_id[64];     /* the frame's id (its document's top frame in `page`) */
    char parent_frame[64]; /* the frame whose document holds its <iframe> */
} br_oopif;
#define BR_OOPIF_MAX 32

/* The out-of-process iframes of the tab `p` is (or is a frame of), nested ones included, into
 * `out` (room for `max`); returns how many. Their pages are borrowed like `p`: a frame that
 * went away since fails its calls with SBX_ESTALEREF, and is never mistaken for a tab. */
int br_page_oopifs(br_page *p, br_oopif *out, int max);

/* ---- implemented by actions.c / capture.c ---- */

/* Run one action request {"action", "selector"?, ...} (API.md "Actions"). On success *out gets
 * the reply object ({"ok": true, ...}; caller frees). */
sbx_code br_action(br_page *p, const cJSON *req, int64_t timeout_ms, cJSON **out, sbx_err *e);

typedef struct br_shot_opts {
    const char *format; /* "png" or "jpeg" */
    int quality;        /* jpeg 0..100, -1 = default */
    bool full_page;
    const char *selector; /* NULL = viewport (or full page) */
} br_shot_opts;

/* Capture a screenshot; *data (malloc'd, caller frees) holds the image bytes. */
sbx_code br_screenshot(br_page *p, const br_shot_opts *o, int64_t timeout_ms, char **data,
                       size_t *len, sbx_err *e);

/* Print the page to PDF; *data (malloc'd, caller frees) holds the PDF bytes. */
sbx_code br_pdf(br_page *p, int64_t timeout_ms, char **data, size_t *len, sbx_err *e);

#endif
