/* navigate.c -- navigation (Page.navigate, then the lifecycle milestone asked for) and the
 * page's serialized DOM (see navigate.h). */
#define _GNU_SOURCE
#include "navigate.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "../common/util.h"
#include "tab.h"

static const char *jstr(const cJSON *o, const char *name) {
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(o, name);
    return cJSON_IsString(v) ? v->valuestring : NULL;
}

static unsigned milestones(const char *wait_until) {
    if (wait_until && strcmp(wait_until, "domcontentloaded") == 0)
        return BR_LC_DCL;
    if (wait_until && strcmp(wait_until, "networkidle0") == 0)
        return BR_LC_LOAD | BR_LC_IDLE;
    if (wait_until && strcmp(wait_until, "networkidle2") == 0)
        return BR_LC_LOAD | BR_LC_ALMOST;
    return BR_LC_LOAD;
}

sbx_code br_navigate(br_page *p, const char *url, const char *wait_until, int64_t timeout_ms,
                     cJSON **out, sbx_err *e) {
    *out = NULL;
    unsigned need = milestones(wait_until);
    int64_t deadline = sbx_deadline_in(timeout_ms), started = sbx_now_ms();
    cJSON *a = cJSON_CreateObject();
    cJSON_AddStringToObject(a, "url", url);
    cJSON *res = NULL;
    sbx_code rc = br_page_call(p, "Page.navigate", a, timeout_ms, &res, e);
    if (rc == SBX_EINTERNAL && e && strstr(e->msg, "invalid URL")) /* the client's URL */
        return sbx_fail(e, SBX_EINVAL, "url: Chromium cannot open \"%.200s\" (not a valid URL)",
                        url);
    if (rc == SBX_ETIMEOUT)
        return sbx_fail(e, SBX_ETIMEOUT, "navigation to %s did not finish within %lld ms", url,
                        (long long)timeout_ms);
    if (rc != SBX_OK)
        return rc;
    const char *err = jstr(res, "errorText");
    char dl[160];
    if (err && strcmp(err, "net::ERR_ABORTED") == 0 &&
        br_page_download_since(p, started, 1000, dl, sizeof dl)) {
        /* The URL was a download: it is saved in the session, and the tab stays where it was. */
        cJSON_Delete(res);
        cJSON *o = cJSON_CreateObject();
        cJSON_AddStringToObject(o, "url", url);
        cJSON_AddNullToObject(o, "status");
        cJSON_AddStringToObject(o, "title", "");
        cJSON_AddStringToObject(o, "download", dl);
        *out = o;
        return SBX_OK;
    }
    if (err && *err) {
        sbx_fail(e, SBX_ENETWORK, "navigation to %s failed: %s", url, err);
        cJSON_Delete(res);
        return SBX_ENETWORK;
    }
    char loader[64] = "";
    if (jstr(res, "loaderId"))
        snprintf(loader, sizeof loader, "%s", jstr(res, "loaderId"));
    cJSON_Delete(res);
    /* A crashed tab that accepted a navigation has a renderer again (Chromium says so with
     * Inspector.targetReloadedAfterCrash, which comes first). */
    br_page_revived(p);
    int status = 0;
    if (loader[0]) {
        switch (br_page_wait_loaded(p, loader, need, deadline, &status)) {
        case SBX_OK:
            break;
        case SBX_ECRASHED:
            return sbx_fail(e, SBX_ECRASHED, "the session's Chromium died");
        case SBX_ETABCRASHED:
            return sbx_fail(e, SBX_ETABCRASHED,
                            "the tab's renderer died while loading %s; navigate the tab again, or "
                            "close it",
                            url);
        case SBX_ENOTFOUND:
            return sbx_fail(e, SBX_ENOTFOUND, "the tab was closed");
        default:
            return sbx_fail(e, SBX_ETIMEOUT, "navigation to %s did not reach %s within %lld ms",
                            url, wait_until ? wait_until : "load", (long long)timeout_ms);
        }
    }
    /* URL and title as the browser process holds them (its navigation entry, which the page's
     * title and history changes reach before its load event does): unlike an evaluate, this
     * does not queue behind the renderer's work right after the load. */
    cJSON *hist = NULL;
    int64_t left = sbx_left_ms(deadline);
    rc = br_page_call(p, "Page.getNavigationHistory", NULL, left > 1000 ? left : 1000, &hist, e);
    if (rc != SBX_OK)
        return rc;
    const cJSON *cur = cJSON_GetObjectItemCaseSensitive(hist, "currentIndex");
    const cJSON *info =
        cJSON_IsNumber(cur)
            ? cJSON_GetArrayItem(cJSON_GetObjectItemCaseSensitive(hist, "entries"), cur->valueint)
            : NULL;
    cJSON *o = cJSON_CreateObject();
    cJSON_AddStringToObject(o, "url", jstr(info, "url") ? jstr(info, "url") : url);
    if (status > 0)
        cJSON_AddNumberToObject(o, "status", status);
    else
        cJSON_AddNullToObject(o, "status");
    cJSON_AddStringToObject(o, "title", jstr(info, "title") ? jstr(info, "title") : "");
    cJSON_Delete(hist);
    *out = o;
    return SBX_OK;
}

sbx_code br_content(br_page *p, int64_t timeout_ms, char **html, size_t *len, sbx_err *e) {
    cJSON *v = NULL;
    sbx_code rc =
        br_page_eval(p,
                     "(() => { const d = document.doctype;"
                     " return (d ? new XMLSerializer().serializeToString(d) + '\\n' : '') +"
                     " (document.documentElement ? document.documentElement.outerHTML : ''); })()",
                     timeout_ms, &v, e);
    if (rc != SBX_OK)
        return rc;
    const char *t = cJSON_IsString(v) ? v->valuestring : "";
    *html = strdup(t);
    *len = strlen(t);
    cJSON_Delete(v);
    if (!*html)
        return sbx_fail(e, SBX_EINTERNAL, "out of memory");
    return SBX_OK;
}
