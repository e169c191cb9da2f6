/* url_policy.c -- the URL policy of browser sessions: schemes and host lists (see
 * url_policy.h). */
#define _GNU_SOURCE
#include "url_policy.h"

#include <stdbool.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

static char *allow, *deny; /* NULL: no list */

static char *dup_list(const char *v) {
    return v && *v ? strdup(v) : NULL;
}

int br_url_policy_init(const char *allow_hosts, const char *deny_hosts) {
    char *a = dup_list(allow_hosts), *d = dup_list(deny_hosts);
    if ((allow_hosts && *allow_hosts && !a) || (deny_hosts && *deny_hosts && !d)) {
        free(a);
        free(d);
        return -1;
    }
    br_url_policy_free();
    allow = a;
    deny = d;
    return 0;
}

void br_url_policy_free(void) {
    free(allow);
    free(deny);
    allow = deny = NULL;
}

static bool host_in_list(const char *host, const char *list) {
    if (!list || !*list)
        return false;
    char *copy = strdup(list);
    if (!copy)
        return false;
    bool hit = false;
    char *save = NULL;
    for (char *tok = strtok_r(copy, ", ", &save); tok && !hit; tok = strtok_r(NULL, ", ", &save)) {
        if (strcmp(tok, "*") == 0) {
            hit = true;
        } else if (strncmp(tok, "*.", 2) == 0) {
            size_t hl = strlen(host), tl = strlen(tok + 1);
            hit = strcasecmp(host, tok + 2) == 0 ||
                  (hl > tl && strcasecmp(host + hl - tl, tok + 1) == 0);
        } else {
            hit = strcasecmp(host, tok) == 0;
        }
    }
    free(copy);
    return hit;
}

sbx_code br_url_check(const char *url, sbx_err *e) {
    if (strcasecmp(url, "about:blank") == 0)
        return SBX_OK;
    const char *rest = NULL;
    if (strncasecmp(url, "http://", 7) == 0)
        rest = url + 7;
    else if (strncasecmp(url, "https://", 8) == 0)
        rest = url + 8;
    if (!rest)
        return sbx_fail(e, SBX_EINVAL,
                        "url: only http, https and about:blank may be opened (got \"%.40s\")", url);
    size_t n = strcspn(rest, "/?#");
    char auth[512];
    if (n == 0 || n >= sizeof auth)
        return sbx_fail(e, SBX_EINVAL, "url: no valid host");
    memcpy(auth, rest, n);
    auth[n] = 0;
    char *host = strrchr(auth, '@');
    host = host ? host + 1 : auth;
    if (*host == '[') {
        char *end = strchr(host, ']');
        if (!end)
            return sbx_fail(e, SBX_EINVAL, "url: bad IPv6 host");
        *end = 0;
        host++;
    } else {
        char *colon = strchr(host, ':');
        if (colon)
            *colon = 0;
    }
    if (!*host)
        return sbx_fail(e, SBX_EINVAL, "url: no host");
    if (host_in_list(host, deny))
        return sbx_fail(e, SBX_EINVAL, "url: host %s is denied by BROWSER_DENY_HOSTS", host);
    if (allow && !host_in_list(host, allow))
        return sbx_fail(e, SBX_EINVAL, "url: host %s is not in BROWSER_ALLOW_HOSTS", host);
    return SBX_OK;
}
