/* downloads.h -- the files a session's pages download: kept in the session's directory, capped,
 * listed and handed out by name.
 *
 * Chromium is told (Browser.setDownloadBehavior "allowAndName", by session.c) to save every
 * download as DOWNLOAD_DIR/<guid> with events on; br_downloads_cdp follows them
 * (Browser.downloadWillBegin, Browser.downloadProgress). Each download gets a name made from
 * the one Chromium suggests: one path segment of printable characters, never starting with a
 * dot, unique in the session ("report (2).pdf"). Clients only ever name a download by that
 * name, which is looked up in the table: no client text reaches the file system. A download
 * that grows past the per-file cap, or past what the session may keep in all, is canceled
 * (state "canceled", with the reason) and its bytes removed; so are downloads past
 * BR_DOWNLOADS_MAX. A download frame (events.h) announces each start and end.
 *
 * Thread safety: br_downloads_cdp runs on the CDP service thread; the rest on any thread.
 * The table's lock is a leaf.
 */
#ifndef SBX_BROWSER_DOWNLOADS_H
#define SBX_BROWSER_DOWNLOADS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <cjson/cJSON.h>

#include "../common/err.h"
#include "cdp.h"
#include "events.h"

#define BR_DOWNLOADS_MAX 200 /* downloads a session keeps track of; later ones are canceled */

typedef struct br_downloads br_downloads;

/* The downloads of the session whose directory is `session_dir` (they go to
 * session_dir/downloads, made here), announced on `ev` (borrowed; may be NULL), canceled
 * through `conn` (borrowed). Caps in bytes. NULL when out of memory or the directory cannot
 * be made. */
br_downloads *br_downloads_new(const char *session_dir, br_events *ev, cdp_conn *conn,
                               int64_t max_file_bytes, int64_t max_session_bytes);
/* NULL ok. The files stay (they go with the session's directory). */
void br_downloads_free(br_downloads *d);

/* Where Chromium is to save (borrowed, valid while `d` is). */
const char *br_downloads_dir(const br_downloads *d);

/* A Browser.download* event; `tab_id` the tab that started it ("" when unknown). */
void br_downloads_cdp(br_downloads *d, const char *method, const char *tab_id, const cJSON *params);

/* {"downloads": [{name, size, url, state, reason?, tabId}]}, oldest first. Caller frees. */
cJSON *br_downloads_json(br_downloads *d);

/* The completed download `name`: its file's path into `path` (room for 4096) and its size.
 * SBX_ENOTFOUND when there is none by that name, SBX_ECONFLICT when it is not complete (still
 * in progress, or canceled). */
sbx_code br_downloads_file(br_downloads *d, const char *name, char *path, int64_t *size,
                           sbx_err *e);

/* True when tab `tab_id` began a download at `since` (sbx_now_ms) or later; `name` (room for
 * `cap`) gets the newest one's name. */
bool br_downloads_started(br_downloads *d, const char *tab_id, int64_t since, char *name,
                          size_t cap);

/* Make `in` a download name (see above) into `out` (room for `cap`, at least 16). */
void br_downloads_sanitize(const char *in, char *out, size_t cap);

#endif
