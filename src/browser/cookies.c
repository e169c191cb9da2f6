/* cookies.c -- a session's cookie jar (GET/POST/DELETE .../cookies): read through Chromium's
 * own matching, set one cookie a call so a refusal names its cookie, delete by expiring. */
#define _GNU_SOURCE
#include "cookies.h"

#include <stdio.h>
#include <string.h>
#include <strings.h>

#include "../common/jfield.h"
#include "url_policy.h"
#include "page.h"

#define MAX_COOKIES 200

static const char *jstr(const cJSON *o, const char *k) {
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(o, k);
    return cJSON_IsString(v) ? v->valuestring : NULL;
}

sbx_code br_cookies_get(br_session *s, br_page *p, const char *url, int64_t to, cJSON **out,
                        sbx_err *e) {
    *out = NULL;
    cJSON *res = NULL;
    sbx_code rc;
    if (url) {
        /* The cookies a request to `url` would carry, as Chromium decides it (domain, path,
         * Secure, partitions): asked through a tab, where the Network domain lives. */
        cJSON *a = cJSON_CreateObject();
        cJSON_AddItemToArray(cJSON_AddArrayToObject(a, "urls"), cJSON_CreateString(url));
        rc = br_page_call(p, "Network.getCookies", a, to, &res, e);
    } else {
        rc = br_browser_call(s, "Storage.getCookies", NULL, to, &res, e);
    }
    if (rc != SBX_OK)
        return rc;
    cJSON *list = cJSON_DetachItemFromObject(res, "cookies");
    cJSON_Delete(res);
    *out = cJSON_CreateObject();
    cJSON_AddItemToObject(*out, "cookies", list ? list : cJSON_CreateArray());
    return SBX_OK;
}

/* Prefix the field error jf_* wrote with the cookie it is about. */
static sbx_code at(int i, sbx_err *e) {
    char m[sizeof e->msg];
    snprintf(m, sizeof m, "%s", e->msg);
    return sbx_fail(e, SBX_EINVAL, "cookies[%d]: %.480s", i, m);
}

/* Check one cookie of a POST and build Chromium's CookieParam from it. */
static cJSON *cookie_param(const cJSON *c, int i, sbx_err *e) {
    const char *name = NULL, *value = NULL, *url = NULL, *domain = NULL, *path = NULL, *same = NULL;
    bool secure = false, http_only = false;
    double expires = -1;
    if (!cJSON_IsObject(c)) {
        sbx_fail(e, SBX_EINVAL, "cookies[%d]: must be an object {name, value, url or domain}", i);
        return NULL;
    }
    if (jf_only(c, "name|value|url|domain|path|secure|httpOnly|sameSite|expires", e) ||
        jf_string(c, "name", true, &name, e) || jf_string(c, "value", true, &value, e) ||
        jf_string(c, "url", false, &url, e) || jf_string(c, "domain", false, &domain, e) ||
        jf_string(c, "path", false, &path, e) || jf_bool(c, "secure", false, &secure, e) ||
        jf_bool(c, "httpOnly", false, &http_only, e) ||
        jf_enum(c, "sameSite", false, "Strict|Lax|None", &same, e) ||
        jf_number(c, "expires", false, 0, 1e11, &expires, e)) {
        at(i, e);
        return NULL;
    }
    if (!*name) {
        sbx_fail(e, SBX_EINVAL, "cookies[%d]: field 'name' must not be empty", i);
        return NULL;
    }
    if (!url == !domain) {
        sbx_fail(e, SBX_EINVAL,
                 "cookies[%d]: give exactly one of url (the cookie is for that host, e.g. "
                 "https://example.com/) or domain (e.g. .example.com: it and its subdomains)",
                 i);
        return NULL;
    }
    /* The same hosts a session may open. */
    char check[600];
    if (domain)
        snprintf(check, sizeof check, "http://%s/", domain[0] == '.' ? domain + 1 : domain);
    if (br_url_check(url ? url : check, e) != SBX_OK) {
        char m[sizeof e->msg];
        snprintf(m, sizeof m, "%s", e->msg);
        sbx_fail(e, SBX_EINVAL, "cookies[%d]: field '%s': %.400s", i, url ? "url" : "domain",
                 strncmp(m, "url: ", 5) == 0 ? m + 5 : m);
        return NULL;
    }
    cJSON *p = cJSON_CreateObject();
    cJSON_AddStringToObject(p, "name", name);
    cJSON_AddStringToObject(p, "value", value);
    cJSON_AddStringToObject(p, url ? "url" : "domain", url ? url : domain);
    if (path)
        cJSON_AddStringToObject(p, "path", path);
    else if (domain)
        cJSON_AddStringToObject(p, "path", "/");
    if (secure)
        cJSON_AddBoolToObject(p, "secure", 1);
    if (http_only)
        cJSON_AddBoolToObject(p, "httpOnly", 1);
    if (same)
        cJSON_AddStringToObject(p, "sameSite", same);
    if (expires >= 0)
        cJSON_AddNumberToObject(p, "expires", expires);
    return p;
}

sbx_code br_cookies_set(br_session *s, const cJSON *body, int64_t to, int *count, sbx_err *e) {
    *count = 0;
    const cJSON *list = cJSON_GetObjectItemCaseSensitive(body, "cookies");
    if (jf_only(body, "cookies", e) != SBX_OK)
        return SBX_EINVAL;
    if (!cJSON_IsArray(list))
        return sbx_fail(e, SBX_EINVAL,
                        "cookies: required, an array of {name, value, url or domain, path, "
                        "secure, httpOnly, sameSite, expires}");
    int n = cJSON_GetArraySize(list);
    if (n > MAX_COOKIES)
        return sbx_fail(e, SBX_EINVAL, "cookies: at most %d a request (got %d)", MAX_COOKIES, n);
    /* Check them all before setting any. */
    cJSON *params[MAX_COOKIES];
    int i = 0;
    const cJSON *c;
    cJSON_ArrayForEach(c, list) {
        params[i] = cookie_param(c, i, e);
        if (!params[i]) {
            while (i-- > 0)
                cJSON_Delete(params[i]);
            return SBX_EINVAL;
        }
        i++;
    }
    sbx_code rc = SBX_OK;
    for (i = 0; i < n; i++) {
        if (rc != SBX_OK) {
            cJSON_Delete(params[i]);
            continue;
        }
        cJSON *a = cJSON_CreateObject();
        cJSON_AddItemToArray(cJSON_AddArrayToObject(a, "cookies"), params[i]);
        rc = br_browser_call(s, "Storage.setCookies", a, to, NULL, e);
        if (rc == SBX_EINTERNAL) /* Chromium refused the cookie: the client's cookie, 400 */
            sbx_fail(e, SBX_EINVAL,
                     "cookies[%d]: Chromium refused it (a name or value with ';' or control "
                     "characters, a domain that does not fit the url, or Secure/SameSite=None "
                     "without https?); the %d before it were set",
                     i, i);
        else if (rc == SBX_OK)
            (*count)++;
    }
    return rc;
}

/* `d` (a filter, leading dot optional) names the cookie domain `cd`. */
static bool same_domain(const char *d, const char *cd) {
    return strcasecmp(d[0] == '.' ? d + 1 : d, cd[0] == '.' ? cd + 1 : cd) == 0;
}

sbx_code br_cookies_delete(br_session *s, const char *name, const char *domain, const char *path,
                           int64_t to, int *deleted, sbx_err *e) {
    *deleted = 0;
    cJSON *res = NULL;
    sbx_code rc = br_browser_call(s, "Storage.getCookies", NULL, to, &res, e);
    if (rc != SBX_OK)
        return rc;
    const cJSON *all = cJSON_GetObjectItemCaseSensitive(res, "cookies");
    if (!name && !domain && !path) {
        int n = cJSON_GetArraySize(all);
        cJSON_Delete(res);
        rc = br_browser_call(s, "Storage.clearCookies", NULL, to, NULL, e);
        if (rc == SBX_OK)
            *deleted = n;
        return rc;
    }
    /* Setting a cookie that expired long ago removes the one with its name, domain and path. */
    const cJSON *c;
    cJSON_ArrayForEach(c, all) {
        const char *cn = jstr(c, "name"), *cd = jstr(c, "domain"), *cp = jstr(c, "path");
        if (!cn || !cd || !cp || (name && strcmp(name, cn) != 0) ||
            (domain && !same_domain(domain, cd)) || (path && strcmp(path, cp) != 0))
            continue;
        bool secure = cJSON_IsTrue(cJSON_GetObjectItemCaseSensitive(c, "secure"));
        cJSON *p = cJSON_CreateObject();
        cJSON_AddStringToObject(p, "name", cn);
        cJSON_AddStringToObject(p, "value", "");
        if (cd[0] == '.') {
            cJSON_AddStringToObject(p, "domain", cd);
        } else {
            char url[600]; /* a host-only cookie is named by its host */
            snprintf(url, sizeof url, "%s://%s/", secure ? "https" : "http", cd);
            cJSON_AddStringToObject(p, "url", url);
        }
        cJSON_AddStringToObject(p, "path", cp);
        if (secure)
            cJSON_AddBoolToObject(p, "secure", 1);
        cJSON_AddNumberToObject(p, "expires", 1);
        cJSON *a = cJSON_CreateObject();
        cJSON_AddItemToArray(cJSON_AddArrayToObject(a, "cookies"), p);
        rc = br_browser_call(s, "Storage.setCookies", a, to, NULL, e);
        if (rc != SBX_OK)
            break;
        (*deleted)++;
    }
    cJSON_Delete(res);
    return rc;
}
