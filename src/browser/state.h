/* state.h -- a browser session's storage state in Playwright's storageState shape:
 * {"cookies": [{name, value, domain, path, expires, httpOnly, secure, sameSite}],
 *  "origins": [{"origin", "localStorage": [{name, value}]}]}.
 *
 * br_state_check validates one (a create's `state`); br_state_restore puts it into a new
 * session before its first page runs, without loading anything: the cookies in one
 * Storage.setCookies call (br_state_cookies, which the create sends), and each origin's
 * localStorage lazily, written by a script of ours (an isolated world the page cannot see) in the
 * first top-level document of that origin, any tab, popups included, before the page's own scripts
 * run; once per origin per session: after that the page owns its storage (a page that clears it and
 * reloads stays cleared). br_state_read reads the state back: every cookie of the browser, the
 * localStorage of the origins its open tabs show, and that of each stored origin no document
 * has shown yet, as it came (so a state round-trips). Not read: an origin the session showed
 * earlier in a tab that has since closed or moved on (Playwright loads such origins again).
 *
 * Built on page.h and tab.h. Thread safety: HTTP handler threads, with the session borrowed
 * (or being created).
 */
#ifndef SBX_BROWSER_STATE_H
#define SBX_BROWSER_STATE_H

#include <stdint.h>

#include <cjson/cJSON.h>

#include "../common/err.h"
#include "page.h"
#include "tab.h"

#define BR_STATE_MAX_COOKIES 1000
#define BR_STATE_MAX_ORIGINS 50
#define BR_STATE_MAX_ITEMS   1000 /* localStorage items of one origin */

/* SBX_OK, or SBX_EINVAL naming the field ("state.cookies[3].name"). */
sbx_code br_state_check(const cJSON *state, sbx_err *e);

/* The params of the Storage.setCookies call that restores a checked `state`'s cookies (the
 * caller sends it to the browser, and frees it or hands it on), NULL when it has none. */
cJSON *br_state_cookies(const cJSON *state);

/* Restore a checked `state`'s localStorage into the browser of `t` through `t`'s hook (tab.h),
 * so before br_tabs_open. SBX_EINTERNAL when out of memory. */
sbx_code br_state_restore(br_tabs *t, const cJSON *state, sbx_err *e);

/* The state now (caller frees *out). */
sbx_code br_state_read(br_tabs *t, int64_t timeout_ms, cJSON **out, sbx_err *e);

#endif
