/* actions_ext.h -- the actions that move through a tab's history (back, forward, reload) and
 * fill a file input (upload), for br_action (actions.c) to dispatch.
 *
 * Built on page.h only, like actions.c. Uploaded files are written into the session's own
 * directory (br_page_dir: DATA_DIR/browser/<id>/uploads/<random>/<name>, removed with the
 * session) and handed to the input with CDP DOM.setFileInputFiles, so the page sees real files
 * (its input and change events fire, FileReader reads them).
 *
 * Thread safety: HTTP handler threads, with the page's session borrowed; no state is kept.
 */
#ifndef SBX_BROWSER_ACTIONS_EXT_H
#define SBX_BROWSER_ACTIONS_EXT_H

#include <stdint.h>

#include <cjson/cJSON.h>

#include "../common/err.h"
#include "page.h"

#define BR_UPLOAD_MAX_FILES 32

/* back (`delta` -1), forward (+1) or reload (0) of the tab, waiting for the document it shows
 * to reach req's "waitUntil" ("load", default, or "domcontentloaded") before `deadline`
 * (sbx_now_ms). Adds "url" and "title" to `out`. No earlier (later) page is 409 conflict. */
sbx_code br_act_history(br_page *p, const cJSON *req, int delta, int64_t deadline, cJSON *out,
                        sbx_err *e);

/* Set the files of the <input type=file> `sel` (waited for until `deadline`) to req's
 * "files": [{name, contentBase64}] (1..BR_UPLOAD_MAX_FILES; more than one needs `multiple`).
 * Adds "files": [{name, size}] to `out`. Bad names, contents or elements are 400 naming the
 * field. */
sbx_code br_act_upload(br_page *p, const cJSON *req, const char *sel, int64_t deadline,
                       int64_t timeout_ms, cJSON *out, sbx_err *e);

#endif
