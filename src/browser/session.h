/* session.h -- the registry of browser sessions and what HTTP handlers do with them.
 *
 * A session is one launched Chromium (proc.h: its own process group, directory
 * DATA_DIR/browser/<id> and CDP connection) with its tabs (tab.h). br_session_create takes a
 * pooled browser (pool.h) when there is one and launches one otherwise; the registry lists
 * it, lends it to handlers (get/put), expires it (idle, lifetime) and keeps a crashed one as a
 * tombstone until one call has been answered 502 (or a minute passed).
 *
 * Thread safety: every function may be called from any thread. br_session_get borrows a
 * session (kept alive until br_session_put); br_page pointers stay valid while their session
 * is borrowed. cJSON results are owned by the caller. Lock order: the pool, the registry, a
 * session's tabs.
 */
#ifndef SBX_BROWSER_SESSION_H
#define SBX_BROWSER_SESSION_H

#include <stdbool.h>
#include <stdint.h>

#include <cjson/cJSON.h>

#include "../common/egress_gateway.h"
#include "../common/err.h"
#include "../common/node.h"
#include "../common/util.h"
#include "options.h"
#include "opts.h"
#include "page.h"

typedef struct br_session br_session;

/* Take the limits of `o` (max_sessions, launch_timeout_ms, call_timeout_ms, idle_timeout_s,
 * max_lifetime_s). Before any other call. */
void br_sessions_init(const browser_opts *o);
/* Close every session (kill, reap, remove dirs); creates answer 503 from now on. */
void br_sessions_shutdown(void);
/* Janitor work: idle expiry, lifetime, cleanup of crashed sessions. */
void br_sessions_tick(void);
/* Live sessions (crashed ones excluded). */
int br_sessions_count(void);
/* *in_use: live sessions + creates in progress; *cold_launches: creates launching their own
 * Chromium now (what the pool weighs before it launches one). */
void br_sessions_load(int *in_use, int *cold_launches);

/* Ownership: a session belongs to the `owner` (an opaque caller id, copied, at most
 * BR_OWNER_LEN - 1 bytes) that created it. A `viewer` argument names who asks: a session
 * owned by someone else is SBX_ENOTFOUND for it and missing from its list (no existence
 * oracle); viewer NULL is an administrator, who sees every session (lists then show "owner"). */
#define BR_OWNER_LEN 32

/* Create a listed session (checks BROWSER_MAX_SESSIONS) with the options `o` (options.h)
 * from a pooled browser, else from a new launch. Fills its id and first tab's id. */
sbx_code br_session_create(const br_session_opts *o, const char *owner, char sid[SBX_SID_LEN],
                           char tab[SBX_ID_LEN], sbx_err *e);

/* The egress client of a borrowed session's browser (accounting, refusals), or NULL. */
egress_client *br_session_net(br_session *s);
/* Give session `sid` its own scope (taken, even on failure) and upstream (copied; NULL: none),
 * for every connection from now on (br_proc_session_egress builds them). SBX_ENOTFOUND. */
sbx_code br_session_set_egress(const char *sid, egress_scope *scope, const egress_upstream *up,
                               sbx_err *e);

/* Borrow a session: SBX_ENOTFOUND, or SBX_ECRASHED once for a crashed one (then it is gone). */
br_session *br_session_get(const char *id, const char *viewer, sbx_err *e);
void br_session_put(br_session *s);
/* br_session_put after a call that answered `rc`: a reported SBX_ECRASHED removes the session
 * at once (a crash is answered with 502 once, then the session is gone). */
void br_session_done(br_session *s, sbx_code rc);
sbx_code br_session_delete(const char *id, const char *viewer, sbx_err *e);
/* {"sessions": [...]}: the viewer's sessions (every session, with "owner", for NULL), each
 * as br_session_info describes it. */
cJSON *br_session_list(const char *viewer);
/* A borrowed session: {sessionId, device, createdAt, lastUsedAt, expiresAt (ISO 8601 UTC;
 * expiresAt: when idleness or the lifetime closes it, whichever is first), tabs, memoryBytes
 * (PSS of its Chromium's processes), cpuMs (their CPU time)}. Caller frees. */
cJSON *br_session_info(br_session *s);
/* Totals over the live sessions (for /metrics). */
void br_sessions_usage(int64_t *memory_bytes, int64_t *cpu_ms, int *tabs);

/* The tab `tab_id` (NULL or "": the current tab) or SBX_ENOTFOUND. */
br_page *br_session_page(br_session *s, const char *tab_id, sbx_err *e);
/* {"tabs": [...]}, titles and URLs refreshed from Chromium. */
cJSON *br_tabs_list(br_session *s);
/* Chromium's browser-wide DevTools endpoint of a borrowed session: ws://127.0.0.1:port/path
 * (`path` has room for 256). */
void br_session_devtools(br_session *s, int *port, char *path);
/* The storage state {cookies, origins} (state.h); caller frees *out. */
sbx_code br_session_state(br_session *s, int64_t timeout_ms, cJSON **out, sbx_err *e);
/* {"downloads": [...]} (downloads.h). Caller frees. */
cJSON *br_session_downloads(br_session *s);
/* The completed download `name`: its file (`path`, room for 4096) and size; SBX_ENOTFOUND or
 * SBX_ECONFLICT (in progress, canceled). */
sbx_code br_session_download(br_session *s, const char *name, char *path, int64_t *size,
                             sbx_err *e);
/* A reference to the session's live events (events.h; the caller drops it with
 * br_events_unref): it outlives the session, and ends with it. */
struct br_events;
struct br_events *br_session_events(br_session *s);
/* Count the session as used now (a passthrough's traffic). False when it is gone or crashed. */
bool br_session_touch(const char *id);

/* A CDP call to the browser itself (not a tab); a broken connection marks the session crashed.
 * Params taken; *result (if non-NULL) receives "result" (caller frees). */
sbx_code br_browser_call(br_session *s, const char *method, cJSON *params, int64_t timeout_ms,
                         cJSON **result, sbx_err *e);
/* Open a tab and make it current; with `url` (already allowed by br_url_check) navigate it
 * there and wait for its load. */
sbx_code br_tab_create(br_session *s, const char *url, int64_t timeout_ms, char tab[SBX_ID_LEN],
                       sbx_err *e);
sbx_code br_tab_close(br_session *s, const char *tab_id, sbx_err *e);

#endif
