/* state.c -- storage state: check, restore, read (see state.h). */
#define _GNU_SOURCE
#include "state.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "../common/jfield.h"
#include "../common/util.h"
#include "navigate.h"
#include "url_policy.h"

static const char *jstr(const cJSON *o, const char *name) {
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(o, name);
    return cJSON_IsString(v) ? v->valuestring : NULL;
}

/* ---- checking ---- */

static sbx_code check_cookie(const cJSON *c, int i, sbx_err *e) {
    const char *s;
    double d;
    bool b;
    if (!cJSON_IsObject(c))
        return sbx_fail(e, SBX_EINVAL, "state.cookies[%d]: must be an object", i);
    if (jf_only(c, "name|value|domain|path|expires|httpOnly|secure|sameSite|partitionKey", e))
        return sbx_fail(e, SBX_EINVAL, "state.cookies[%d]: %s", i, e->msg);
    if (jf_string(c, "name", true, &s, e) || !*s)
        return sbx_fail(e, SBX_EINVAL, "state.cookies[%d].name: required, a non-empty string", i);
    if (jf_string(c, "value", true, &s, e))
        return sbx_fail(e, SBX_EINVAL, "state.cookies[%d].value: required, a string", i);
    if (jf_string(c, "domain", true, &s, e) || !*s)
        return sbx_fail(e, SBX_EINVAL, "state.cookies[%d].domain: required, a host name", i);
    if (jf_string(c, "path", false, &s, e))
        return sbx_fail(e, SBX_EINVAL, "state.cookies[%d].path: must be a string", i);
    if (jf_number(c, "expires", false, -1, 1e11, &d, e))
        return sbx_fail(e, SBX_EINVAL,
                        "state.cookies[%d].expires: seconds since the epoch, or -1 (session)", i);
    if (jf_bool(c, "httpOnly", false, &b, e) || jf_bool(c, "secure", false, &b, e))
        return sbx_fail(e, SBX_EINVAL, "state.cookies[%d]: httpOnly and secure are booleans", i);
    if (jf_enum(c, "sameSite", false, "Strict|Lax|None", &s, e))
        return sbx_fail(e, SBX_EINVAL, "state.cookies[%d].sameSite: Strict, Lax or None", i);
    return SBX_OK;
}

/* "http(s)://host[:port]" and nothing more, allowed by the URL policy. */
static bool origin_ok(const char *o, sbx_err *e) {
    const char *rest = !strncmp(o, "http://", 7)    ? o + 7
                       : !strncmp(o, "https://", 8) ? o + 8
                                                    : NULL;
    if (!rest || !*rest || strpbrk(rest, "/?#@ \\") || strlen(o) > 300)
        return false;
    return br_url_check(o, e) == SBX_OK;
}

sbx_code br_state_check(const cJSON *state, sbx_err *e) {
    if (!cJSON_IsObject(state))
        return sbx_fail(e, SBX_EINVAL, "state: must be an object {cookies, origins}");
    if (jf_only(state, "cookies|origins", e))
        return sbx_fail(e, SBX_EINVAL, "state: %s", e->msg);
    const cJSON *cookies = cJSON_GetObjectItemCaseSensitive(state, "cookies");
    if (cookies && (!cJSON_IsArray(cookies) || cJSON_GetArraySize(cookies) > BR_STATE_MAX_COOKIES))
        return sbx_fail(e, SBX_EINVAL, "state.cookies: an array of at most %d cookies",
                        BR_STATE_MAX_COOKIES);
    int i = 0;
    const cJSON *c;
    cJSON_ArrayForEach(c, cookies) {
        if (check_cookie(c, i++, e) != SBX_OK)
            return SBX_EINVAL;
    }
    const cJSON *origins = cJSON_GetObjectItemCaseSensitive(state, "origins");
    if (origins && (!cJSON_IsArray(origins) || cJSON_GetArraySize(origins) > BR_STATE_MAX_ORIGINS))
        return sbx_fail(e, SBX_EINVAL, "state.origins: an array of at most %d origins",
                        BR_STATE_MAX_ORIGINS);
    i = 0;
    const cJSON *o;
    cJSON_ArrayForEach(o, origins) {
        const char *origin = jstr(o, "origin");
        sbx_err ue;
        if (!cJSON_IsObject(o) || !origin || !origin_ok(origin, &ue))
            return sbx_fail(e, SBX_EINVAL,
                            "state.origins[%d].origin: required, http(s)://host[:port] that "
                            "navigation may reach",
                            i);
        const cJSON *ls = cJSON_GetObjectItemCaseSensitive(o, "localStorage");
        if (!cJSON_IsArray(ls) || cJSON_GetArraySize(ls) > BR_STATE_MAX_ITEMS)
            return sbx_fail(e, SBX_EINVAL,
                            "state.origins[%d].localStorage: required, an array of at most %d "
                            "{name, value}",
                            i, BR_STATE_MAX_ITEMS);
        int k = 0;
        const cJSON *it;
        cJSON_ArrayForEach(it, ls) {
            if (!jstr(it, "name") || !jstr(it, "value"))
                return sbx_fail(e, SBX_EINVAL,
                                "state.origins[%d].localStorage[%d]: must be {name, value} "
                                "strings",
                                i, k);
            k++;
        }
        i++;
    }
    return SBX_OK;
}

/* ---- restoring ---- */

static sbx_code restore_cookies(br_tabs *t, const cJSON *cookies, int64_t to, sbx_err *e) {
    cJSON *arr = cJSON_CreateArray();
    const cJSON *c;
    cJSON_ArrayForEach(c, cookies) {
        cJSON *p = cJSON_CreateObject();
        static const char *const STR[] = {"name", "value", "domain", "path", "sameSite"};
        for (size_t k = 0; k < sizeof STR / sizeof STR[0]; k++)
            if (jstr(c, STR[k]))
                cJSON_AddStringToObject(p, STR[k], jstr(c, STR[k]));
        if (!jstr(c, "path"))
            cJSON_AddStringToObject(p, "path", "/");
        const cJSON *x = cJSON_GetObjectItemCaseSensitive(c, "expires");
        if (cJSON_IsNumber(x) && x->valuedouble > 0)
            cJSON_AddNumberToObject(p, "expires", x->valuedouble);
        cJSON_AddBoolToObject(p, "httpOnly",
                              cJSON_IsTrue(cJSON_GetObjectItemCaseSensitive(c, "httpOnly")));
        cJSON_AddBoolToObject(p, "secure",
                              cJSON_IsTrue(cJSON_GetObjectItemCaseSensitive(c, "secure")));
        cJSON_AddItemToArray(arr, p);
    }
    cJSON *a = cJSON_CreateObject();
    cJSON_AddItemToObject(a, "cookies", arr);
    sbx_code rc = br_tabs_browser_call(t, "Storage.setCookies", a, to, NULL, e);
    if (rc == SBX_EINTERNAL) /* Chromium refused a cookie: the client's */
        e->code = rc = SBX_EINVAL;
    return rc;
}

/* Write the localStorage items of `o` in its origin, loaded in `p` as an empty page. */
static sbx_code restore_origin(br_page *p, const cJSON *o, int64_t deadline, sbx_err *e) {
    char url[400];
    snprintf(url, sizeof url, "%s/", jstr(o, "origin"));
    cJSON *out = NULL;
    sbx_code rc = br_navigate(p, url, "load", sbx_left_ms(deadline), &out, e);
    cJSON_Delete(out);
    if (rc != SBX_OK)
        return rc;
    cJSON *items = cJSON_CreateArray();
    const cJSON *it;
    cJSON_ArrayForEach(it, cJSON_GetObjectItemCaseSensitive(o, "localStorage")) {
        cJSON *pair = cJSON_CreateArray();
        cJSON_AddItemToArray(pair, cJSON_CreateString(jstr(it, "name")));
        cJSON_AddItemToArray(pair, cJSON_CreateString(jstr(it, "value")));
        cJSON_AddItemToArray(items, pair);
    }
    char *lit = cJSON_PrintUnformatted(items);
    cJSON_Delete(items);
    if (!lit)
        return sbx_fail(e, SBX_EINTERNAL, "out of memory");
    sbx_buf js;
    sbx_buf_init(&js, strlen(lit) + 256);
    sbx_buf_addf(&js,
                 "(() => { for (const [k, v] of %s) localStorage.setItem(k, v); return true; })()",
                 lit);
    free(lit);
    cJSON *v = NULL;
    rc = br_page_eval(p, js.data ? js.data : "true", sbx_left_ms(deadline), &v, e);
    cJSON_Delete(v);
    sbx_buf_free(&js);
    return rc;
}

sbx_code br_state_restore(br_tabs *t, br_page *first, const cJSON *state, int64_t timeout_ms,
                          sbx_err *e) {
    int64_t deadline = sbx_deadline_in(timeout_ms);
    const cJSON *cookies = cJSON_GetObjectItemCaseSensitive(state, "cookies");
    const cJSON *origins = cJSON_GetObjectItemCaseSensitive(state, "origins");
    sbx_code rc = SBX_OK;
    if (cJSON_GetArraySize(cookies) > 0 &&
        (rc = restore_cookies(t, cookies, sbx_left_ms(deadline), e)) != SBX_OK)
        return rc;
    if (cJSON_GetArraySize(origins) == 0)
        return SBX_OK;
    /* Every request of the tab is answered with an empty page while the origins load. */
    br_page_serve_blank(first, true);
    rc = br_page_call(first, "Fetch.enable",
                      cJSON_CreateRaw("{\"patterns\":[{\"urlPattern\":\"*\"}]}"),
                      sbx_left_ms(deadline), NULL, e);
    const cJSON *o;
    cJSON_ArrayForEach(o, origins) {
        if (rc != SBX_OK)
            break;
        rc = restore_origin(first, o, deadline, e);
    }
    sbx_err e2;
    br_page_call(first, "Fetch.disable", NULL, 5000, NULL, &e2);
    br_page_serve_blank(first, false);
    if (rc == SBX_OK) {
        cJSON *out = NULL;
        rc = br_navigate(first, "about:blank", "load", sbx_left_ms(deadline), &out, e);
        cJSON_Delete(out);
    }
    if (rc == SBX_OK)
        rc = br_page_call(first, "Page.resetNavigationHistory", NULL, sbx_left_ms(deadline), NULL,
                          e);
    return rc;
}

/* ---- reading ---- */

static cJSON *cookie_out(const cJSON *c) {
    cJSON *o = cJSON_CreateObject();
    cJSON_AddStringToObject(o, "name", jstr(c, "name") ? jstr(c, "name") : "");
    cJSON_AddStringToObject(o, "value", jstr(c, "value") ? jstr(c, "value") : "");
    cJSON_AddStringToObject(o, "domain", jstr(c, "domain") ? jstr(c, "domain") : "");
    cJSON_AddStringToObject(o, "path", jstr(c, "path") ? jstr(c, "path") : "/");
    const cJSON *x = cJSON_GetObjectItemCaseSensitive(c, "expires");
    bool session = cJSON_IsTrue(cJSON_GetObjectItemCaseSensitive(c, "session"));
    cJSON_AddNumberToObject(o, "expires", session || !cJSON_IsNumber(x) ? -1 : x->valuedouble);
    cJSON_AddBoolToObject(o, "httpOnly",
                          cJSON_IsTrue(cJSON_GetObjectItemCaseSensitive(c, "httpOnly")));
    cJSON_AddBoolToObject(o, "secure", cJSON_IsTrue(cJSON_GetObjectItemCaseSensitive(c, "secure")));
    cJSON_AddStringToObject(o, "sameSite", jstr(c, "sameSite") ? jstr(c, "sameSite") : "Lax");
    return o;
}

static const char READ_JS[] =
    "(() => { if (!/^https?:$/.test(location.protocol)) return null; const o = [];"
    " for (let i = 0; i < localStorage.length; i++) { const k = localStorage.key(i);"
    " o.push({name: k, value: localStorage.getItem(k)}); }"
    " return {origin: location.origin, localStorage: o}; })()";

sbx_code br_state_read(br_tabs *t, int64_t timeout_ms, cJSON **out, sbx_err *e) {
    int64_t deadline = sbx_deadline_in(timeout_ms);
    cJSON *res = NULL;
    sbx_code rc = br_tabs_browser_call(t, "Storage.getCookies", NULL, timeout_ms, &res, e);
    if (rc != SBX_OK)
        return rc;
    cJSON *cookies = cJSON_CreateArray(), *origins = cJSON_CreateArray();
    const cJSON *c;
    cJSON_ArrayForEach(c, cJSON_GetObjectItemCaseSensitive(res, "cookies"))
        cJSON_AddItemToArray(cookies, cookie_out(c));
    cJSON_Delete(res);
    cJSON *tabs = br_tabs_json(t, false);
    const cJSON *tab;
    cJSON_ArrayForEach(tab, tabs) {
        if (cJSON_IsTrue(cJSON_GetObjectItemCaseSensitive(tab, "crashed")))
            continue;
        sbx_err pe;
        br_page *p = br_tabs_page(t, jstr(tab, "tabId"), &pe);
        cJSON *v = NULL;
        int64_t left = sbx_left_ms(deadline);
        if (!p || br_page_eval(p, READ_JS, left < 2000 ? left : 2000, &v, &pe) != SBX_OK) {
            if (pe.code == SBX_ECRASHED) {
                *e = pe;
                rc = SBX_ECRASHED;
                break;
            }
            continue; /* a tab that does not answer (busy, closing) is left out */
        }
        const char *origin = jstr(v, "origin");
        bool seen = false;
        const cJSON *o;
        cJSON_ArrayForEach(o, origins) seen =
            seen || (origin && !strcmp(jstr(o, "origin"), origin));
        if (origin && !seen &&
            cJSON_GetArraySize(cJSON_GetObjectItemCaseSensitive(v, "localStorage")))
            cJSON_AddItemToArray(origins, cJSON_Duplicate(v, 1));
        cJSON_Delete(v);
    }
    cJSON_Delete(tabs);
    if (rc != SBX_OK) {
        cJSON_Delete(cookies);
        cJSON_Delete(origins);
        return rc;
    }
    *out = cJSON_CreateObject();
    cJSON_AddItemToObject(*out, "cookies", cookies);
    cJSON_AddItemToObject(*out, "origins", origins);
    return SBX_OK;
}
