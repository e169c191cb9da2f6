/* session.h -- the registry of live browser sessions and what HTTP handlers do with them.
 *
 * A session is one Chromium (its own process group and directory DATA_DIR/browser/<id>) with
 * one CDP connection and its tabs (br_page, flattened target sessions). Launching a Chromium
 * until it answers CDP (br_session_launch) is separate from making it a user's session
 * (br_session_publish), so the pool (pool.h) can hold pre-launched browsers; br_session_create
 * takes a pooled browser when there is one and launches one otherwise.
 *
 * Thread safety: every function may be called from any thread. br_session_get borrows a
 * session (kept alive until br_session_put); br_page pointers stay valid while their session
 * is borrowed. Strings returned in cJSON are owned by the caller.
 */
#ifndef SBX_BROWSER_SESSION_H
#define SBX_BROWSER_SESSION_H

#include <stdbool.h>
#include <stdint.h>

#include <cjson/cJSON.h>

#include "../common/err.h"
#include "../common/util.h"
#include "page.h"

typedef struct br_session br_session;

/* Set the Chromium binary (copied; NULL = none: creation answers 503). */
void br_sessions_init(const char *chromium_bin);
/* Close every session (kill, reap, remove dirs). */
void br_sessions_shutdown(void);
/* Janitor work: idle expiry, lifetime, cleanup of crashed sessions. */
void br_sessions_tick(void);
/* Live sessions (crashed ones excluded). */
int br_sessions_count(void);
/* *in_use: live sessions + creates in progress; *cold_launches: creates launching their own
 * Chromium now (what the pool weighs before it launches one). */
void br_sessions_load(int *in_use, int *cold_launches);
const char *br_sessions_chromium(void);

/* Launch a Chromium in a fresh directory and wait for its first CDP reply. Not listed. */
br_session *br_session_launch(int64_t timeout_ms, sbx_err *e);
/* Apply the device, ensure a first tab and list the session. On failure the session is freed. */
sbx_code br_session_publish(br_session *s, bool mobile, sbx_err *e);
/* Kill and free a session that is not listed (e.g. a pool browser). NULL ok. */
void br_session_discard(br_session *s);
/* The session's id (also its directory's name); borrowed, valid while `s` is. */
const char *br_session_id(const br_session *s);
/* For a launched, unlisted browser: true while its Chromium leader has not exited, its CDP
 * connection is up and nothing marked it crashed. Reaps nothing. */
bool br_session_usable(br_session *s);

/* Create a listed session (checks BROWSER_MAX_SESSIONS) from a pooled browser, else from a
 * new launch. Fills its id and first tab's id. */
sbx_code br_session_create(bool mobile, char sid[SBX_ID_LEN], char tab[SBX_ID_LEN], sbx_err *e);

/* Borrow a session: SBX_ENOTFOUND, or SBX_ECRASHED once for a crashed one (then it is gone). */
br_session *br_session_get(const char *id, sbx_err *e);
void br_session_put(br_session *s);
/* br_session_put after a call that answered `rc`: a reported SBX_ECRASHED removes the session
 * at once (a crash is answered with 502 once, then the session is gone). */
void br_session_done(br_session *s, sbx_code rc);
sbx_code br_session_delete(const char *id, sbx_err *e);
/* {"sessions": [...]} */
cJSON *br_session_list(void);

/* The tab `tab_id` (NULL or "": the current tab) or SBX_ENOTFOUND. */
br_page *br_session_page(br_session *s, const char *tab_id, sbx_err *e);
cJSON *br_tabs_list(br_session *s);
/* Chromium's browser-wide DevTools endpoint of a borrowed session: ws://127.0.0.1:port/path
 * (`path` has room for 256). */
void br_session_devtools(br_session *s, int *port, char *path);
/* Count the session as used now (a passthrough's traffic). False when it is gone or crashed. */
bool br_session_touch(const char *id);

/* A CDP call to the browser itself (not a tab); a broken connection marks the session crashed.
 * Params taken; *result (if non-NULL) receives "result" (caller frees). */
sbx_code br_browser_call(br_session *s, const char *method, cJSON *params, int64_t timeout_ms,
                         cJSON **result, sbx_err *e);
sbx_code br_tab_create(br_session *s, const char *url, int64_t timeout_ms, char tab[SBX_ID_LEN],
                       sbx_err *e);
sbx_code br_tab_close(br_session *s, const char *tab_id, sbx_err *e);

/* Only http, https and about:blank, subject to the host allow/deny lists; else SBX_EINVAL. */
sbx_code br_url_check(const char *url, sbx_err *e);

/* Navigate and wait for `wait_until`; *out = {"url", "status", "title"}. */
sbx_code br_navigate(br_page *p, const char *url, const char *wait_until, int64_t timeout_ms,
                     cJSON **out, sbx_err *e);
/* The serialized DOM (malloc'd). */
sbx_code br_content(br_page *p, int64_t timeout_ms, char **html, size_t *len, sbx_err *e);

#endif
