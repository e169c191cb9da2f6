/* tab.h -- the tabs of one browser: CDP events, tab set-up and emulation, page calls.
 *
 * A br_tabs is the live state of one Chromium's CDP connection as a session sees it: its
 * attached tabs (br_page, flattened target sessions), the current tab, each tab's lifecycle
 * and document status, and whether the browser or a tab's renderer crashed. Its CDP handlers
 * (br_tabs_handlers) keep that state from the events; the br_page_* calls of page.h are
 * implemented here on top of it. It knows nothing of the registry (session.h) or of URLs
 * (url_policy.h): callers check those first.
 *
 * Thread safety: the handlers run on the CDP service thread; everything else from any thread.
 * Waits (a tab attaching, a load) wake on the br_tabs' own condition variable, which every
 * change they wait for signals; no polling. br_page pointers stay valid until br_tabs_free.
 */
#ifndef SBX_BROWSER_TAB_H
#define SBX_BROWSER_TAB_H

#include <stdbool.h>
#include <stdint.h>

#include <cjson/cJSON.h>

#include "../common/err.h"
#include "../common/util.h"
#include "cdp.h"
#include "options.h"
#include "page.h"

typedef struct br_tabs br_tabs;

/* Lifecycle milestones of a tab's current document (Page.lifecycleEvent names). */
enum { BR_LC_DCL = 1, BR_LC_LOAD = 2, BR_LC_IDLE = 4, BR_LC_ALMOST = 8 };

/* A tab table for the browser at `conn` (borrowed, must outlive it); `id` names the session in
 * logs (copied). NULL when out of memory. */
br_tabs *br_tabs_new(const char *id, cdp_conn *conn);
/* Free the tabs. Only once no handler can run any more (the connection is closed). NULL ok. */
void br_tabs_free(br_tabs *t);
/* Feed the session's live events (events.h; borrowed, must outlive `t`) from what the tabs see.
 * Before the handlers are bound. */
struct br_events;
void br_tabs_set_events(br_tabs *t, struct br_events *ev);
/* The emulation every tab gets (options.h; copied); `default_ua` (may be NULL) is Chromium's
 * own user agent, sent with a locale when no userAgent is given. Before br_tabs_open. */
void br_tabs_set_emulation(br_tabs *t, const br_emulation *em, const char *default_ua);
/* Hand Chromium's download events to `d` (downloads.h; borrowed, must outlive `t`). Before
 * the handlers are bound. */
struct br_downloads;
void br_tabs_set_downloads(br_tabs *t, struct br_downloads *d);
/* The session's directory (copied), for br_page_dir. */
void br_tabs_set_dir(br_tabs *t, const char *dir);
/* What every page tab gets queued when it attaches, before it runs, and the answer to its
 * Runtime.bindingCalled events (the service thread; state.c's restore). `attach` fills up to
 * `cap` commands (params new) and returns how many; `free` (may be NULL) frees `ud` in
 * br_tabs_free. Copied; before br_tabs_open. */
#define BR_TAB_HOOK_MAX 64 /* commands `attach` may queue */
typedef struct br_tab_hook {
    int (*attach)(void *ud, cdp_cmd *c, int cap);
    void (*binding)(void *ud, br_tabs *t, const cJSON *params);
    void (*free)(void *ud);
    void *ud;
} br_tab_hook;
void br_tabs_set_hook(br_tabs *t, const br_tab_hook *h);
/* The hook's `ud` when its `free` is `free_fn` (its owner's way back to it), else NULL. */
void *br_tabs_hook_ud(const br_tabs *t, void (*free_fn)(void *));
/* Send `method` with a copy of `params` to every open tab, not waiting for replies; `params`
 * (may be NULL) stays the caller's. Any thread. */
void br_tabs_send_all(br_tabs *t, const char *method, const cJSON *params);
/* The CDP handlers that keep `t` up to date (ud = t). */
cdp_handlers br_tabs_handlers(br_tabs *t);

/* Attach to every tab (auto-attach), wait for the first (opening one when Chromium has none)
 * and, for a phone, set it up; fills its id. SBX_EUNAVAIL when Chromium opens no tab. */
sbx_code br_tabs_open(br_tabs *t, bool mobile, int64_t timeout_ms, char first[SBX_ID_LEN],
                      sbx_err *e);

/* The browser is gone (its connection broke, or it is being killed): calls fail with
 * SBX_ECRASHED from now on, waits end. The first `why` is kept. */
void br_tabs_mark_crashed(br_tabs *t, const char *why);
/* The session is being closed: waits end (calls then fail as the connection closes). */
void br_tabs_set_closing(br_tabs *t);
/* True once marked crashed; `why` (room for 128, may be NULL) receives the reason. */
bool br_tabs_crashed(br_tabs *t, char *why);
/* Neither crashed nor closing. */
bool br_tabs_alive(br_tabs *t);
bool br_tabs_mobile(br_tabs *t);

/* The tab `tab_id` (NULL or "": the current tab) or NULL with SBX_ENOTFOUND. */
br_page *br_tabs_page(br_tabs *t, const char *tab_id, sbx_err *e);
/* The open tabs as a JSON array ([{tabId, url, title, active, crashed}]); `refresh` asks
 * Chromium for current titles and URLs first. Caller frees. */
cJSON *br_tabs_json(br_tabs *t, bool refresh);
/* Write the tabs' JSON array into `o` under "tabs" without asking Chromium (for a list of
 * sessions). */
void br_tabs_add_json(br_tabs *t, cJSON *o);

/* A CDP call to the browser itself (not a tab); a broken connection marks it crashed. Params
 * taken; *result (if non-NULL) receives "result" (caller frees). */
sbx_code br_tabs_browser_call(br_tabs *t, const char *method, cJSON *params, int64_t timeout_ms,
                              cJSON **result, sbx_err *e);
/* Open a blank tab, wait for it to attach, make it current and (for a phone) set it up. */
sbx_code br_tabs_create(br_tabs *t, int64_t timeout_ms, br_page **page, char tab[SBX_ID_LEN],
                        sbx_err *e);
/* Close tab `tab_id` (SBX_ENOTFOUND when there is none). */
sbx_code br_tabs_close(br_tabs *t, const char *tab_id, int64_t timeout_ms, sbx_err *e);

/* For navigate.c: wait until the document of loader `loader` reached every milestone of
 * `need` (BR_LC_*) or `deadline` passed. *status gets its HTTP status (0: unknown). Returns
 * SBX_OK, SBX_ECRASHED, SBX_ETABCRASHED, SBX_ENOTFOUND (the tab closed) or SBX_ETIMEOUT; the
 * caller words the error. */
sbx_code br_page_wait_loaded(br_page *p, const char *loader, unsigned need, int64_t deadline,
                             int *status);
/* A crashed tab accepted a navigation: it has a renderer again. */
void br_page_revived(br_page *p);

#endif
