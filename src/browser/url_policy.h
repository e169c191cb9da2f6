/* url_policy.h -- which URLs a browser session may open: http, https and about:blank, subject
 * to the operator's host allow and deny lists (BROWSER_ALLOW_HOSTS, BROWSER_DENY_HOSTS).
 *
 * Checked once, at the API edge (api_browser.c), before a navigation or a new tab's URL is
 * handed to src/browser; what lies below trusts the URL it gets.
 *
 * Lists are comma- or space-separated host names; "*" matches every host, "*.example.com"
 * example.com and its subdomains; matching ignores case. Deny wins over allow; an empty allow
 * list allows every host.
 *
 * Thread safety: br_url_policy_init from the main thread before any check (browser_init);
 * br_url_check from any thread.
 */
#ifndef SBX_BROWSER_URL_POLICY_H
#define SBX_BROWSER_URL_POLICY_H

#include "../common/err.h"

/* Set the lists (copied; NULL or "" = none). 0, or -1 when out of memory (lists unchanged). */
int br_url_policy_init(const char *allow_hosts, const char *deny_hosts);
/* Forget the lists (everything http(s) is allowed again). */
void br_url_policy_free(void);

/* SBX_OK, or SBX_EINVAL naming the field "url" and why it is refused. */
sbx_code br_url_check(const char *url, sbx_err *e);

#endif
