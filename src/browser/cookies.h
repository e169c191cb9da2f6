/* cookies.h -- a browser session's cookies (API extension: GET/POST/DELETE .../cookies).
 * Each call sends its CDP commands with `timeout_ms` (BROWSER_CALL_TIMEOUT_MS at the API).
 *
 * All of a session's tabs share one cookie jar (its Chromium's default profile). Errors as
 * the other session calls: 400 for a field (named as cookies[i].field), 502 when Chromium
 * is gone, 504 when it does not answer.
 * Thread safety: any HTTP thread, with the session borrowed.
 */
#ifndef SBX_BROWSER_COOKIES_H
#define SBX_BROWSER_COOKIES_H

#include <stdint.h>

#include <cjson/cJSON.h>

#include "../common/err.h"
#include "session.h"

/* {"cookies": [...]}: every cookie (url NULL), or those a request to `url` would carry
 * (asked through tab `p`). Chromium's fields: name, value, domain, path, expires (seconds
 * since the epoch, -1 for a session cookie), size, httpOnly, secure, session, sameSite, ... */
sbx_code br_cookies_get(br_session *s, br_page *p, const char *url, int64_t timeout_ms, cJSON **out,
                        sbx_err *e);

/* Set body.cookies[] ({name, value, url | domain, path, secure, httpOnly, sameSite,
 * expires}), all checked before any is set; *count = how many were set. */
sbx_code br_cookies_set(br_session *s, const cJSON *body, int64_t timeout_ms, int *count,
                        sbx_err *e);

/* Delete the cookies matching every filter given (name, domain with or without its leading
 * dot, path); none given: all of them. *deleted = how many. */
sbx_code br_cookies_delete(br_session *s, const char *name, const char *domain, const char *path,
                           int64_t timeout_ms, int *deleted, sbx_err *e);

#endif
