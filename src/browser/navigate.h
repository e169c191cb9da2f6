/* navigate.h -- loading a URL in a tab and reading its document back.
 *
 * Built on page.h and the lifecycle waits of tab.h. The URL is not checked here: the API edge
 * checks it once against the URL policy (url_policy.h) before it comes down.
 *
 * Thread safety: HTTP handler threads, with the page's session borrowed.
 */
#ifndef SBX_BROWSER_NAVIGATE_H
#define SBX_BROWSER_NAVIGATE_H

#include <stddef.h>
#include <stdint.h>

#include <cjson/cJSON.h>

#include "../common/err.h"
#include "page.h"

/* Navigate to `url` (already allowed by br_url_check) and wait for `wait_until` ("load",
 * "domcontentloaded", "networkidle0", "networkidle2"; NULL = "load"); *out = {"url", "status",
 * "title"} (caller frees). Errors: SBX_ENETWORK (Chromium could not load it), SBX_ETIMEOUT,
 * SBX_ECRASHED, SBX_ETABCRASHED, SBX_ENOTFOUND (the tab closed meanwhile). */
sbx_code br_navigate(br_page *p, const char *url, const char *wait_until, int64_t timeout_ms,
                     cJSON **out, sbx_err *e);

/* The serialized DOM (malloc'd, caller frees). */
sbx_code br_content(br_page *p, int64_t timeout_ms, char **html, size_t *len, sbx_err *e);

#endif
