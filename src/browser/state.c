/* state.c -- storage state: check, restore, read (see state.h). */
#define _GNU_SOURCE
#include "state.h"

#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "../common/jfield.h"
#include "../common/util.h"
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

cJSON *br_state_cookies(const cJSON *state) {
    const cJSON *cookies = cJSON_GetObjectItemCaseSensitive(state, "cookies");
    if (cJSON_GetArraySize(cookies) == 0)
        return NULL;
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
    return a;
}

/* The localStorage of the stored origins goes in lazily, in whatever tab first shows a
 * top-level document of one: every tab gets a script that runs before the page's own in an
 * isolated world of ours ("sandboxd-state", invisible to the page), and one binding per origin
 * not yet restored, exposed to that world only. The script writes the items of its document's
 * origin when that origin's binding is there and calls it; the binding's call (the service
 * thread) marks the origin done and removes the binding from every tab, so no later document
 * writes them again, whatever the page did with its storage meanwhile. A tab attaching later
 * gets bindings for the origins still pending only. */
#define WORLD       "sandboxd-state"
#define BINDING_PFX "__sandboxdState"

_Static_assert(BR_STATE_MAX_ORIGINS + 1 <= BR_TAB_HOOK_MAX, "a tab's hook holds every origin");

typedef struct restore {
    pthread_mutex_t mu;
    char *script;   /* the source every tab gets */
    cJSON *origins; /* the stored origins (a copy) */
    int n;
    bool done[BR_STATE_MAX_ORIGINS]; /* mu */
} restore;

static void restore_free(void *ud) {
    restore *r = ud;
    if (!r)
        return;
    pthread_mutex_destroy(&r->mu);
    free(r->script);
    cJSON_Delete(r->origins);
    free(r);
}

static cJSON *binding_params(int i) {
    char name[40];
    snprintf(name, sizeof name, BINDING_PFX "%d", i);
    cJSON *a = cJSON_CreateObject();
    cJSON_AddStringToObject(a, "name", name);
    return a;
}

static int restore_attach(void *ud, cdp_cmd *c, int cap) {
    restore *r = ud;
    int n = 0;
    pthread_mutex_lock(&r->mu);
    for (int i = 0; i < r->n && n + 1 < cap; i++) {
        if (r->done[i])
            continue;
        cJSON *a = binding_params(i);
        cJSON_AddStringToObject(a, "executionContextName", WORLD);
        c[n++] = (cdp_cmd){"Runtime.addBinding", a};
    }
    pthread_mutex_unlock(&r->mu);
    if (n == 0)
        return 0; /* every origin is in: nothing left for a new tab to do */
    cJSON *s = cJSON_CreateObject();
    cJSON_AddStringToObject(s, "source", r->script);
    cJSON_AddStringToObject(s, "worldName", WORLD);
    c[n++] = (cdp_cmd){"Page.addScriptToEvaluateOnNewDocument", s};
    return n;
}

static void restore_binding(void *ud, br_tabs *t, const cJSON *params) {
    restore *r = ud;
    const char *name = jstr(params, "name");
    size_t pl = strlen(BINDING_PFX);
    if (!name || strncmp(name, BINDING_PFX, pl) != 0)
        return;
    char *end;
    long i = strtol(name + pl, &end, 10);
    if (end == name + pl || *end || i < 0 || i >= r->n)
        return;
    pthread_mutex_lock(&r->mu);
    bool first = !r->done[i];
    r->done[i] = true;
    pthread_mutex_unlock(&r->mu);
    if (!first)
        return;
    cJSON *a = binding_params((int)i);
    br_tabs_send_all(t, "Runtime.removeBinding", a);
    cJSON_Delete(a);
}

/* The script: [[origin, [[name, value], ...]], ...] and what to do with it. */
static char *restore_script(const cJSON *origins) {
    cJSON *all = cJSON_CreateArray();
    const cJSON *o;
    cJSON_ArrayForEach(o, origins) {
        cJSON *one = cJSON_CreateArray(), *items = cJSON_CreateArray();
        cJSON_AddItemToArray(one, cJSON_CreateString(jstr(o, "origin")));
        const cJSON *it;
        cJSON_ArrayForEach(it, cJSON_GetObjectItemCaseSensitive(o, "localStorage")) {
            cJSON *pair = cJSON_CreateArray();
            cJSON_AddItemToArray(pair, cJSON_CreateString(jstr(it, "name")));
            cJSON_AddItemToArray(pair, cJSON_CreateString(jstr(it, "value")));
            cJSON_AddItemToArray(items, pair);
        }
        cJSON_AddItemToArray(one, items);
        cJSON_AddItemToArray(all, one);
    }
    char *lit = cJSON_PrintUnformatted(all);
    cJSON_Delete(all);
    if (!lit)
        return NULL;
    sbx_buf js;
    sbx_buf_init(&js, strlen(lit) + 2048); /* a cap: the code below is well within it */
    int rc =
        sbx_buf_addf(&js,
                     "(() => { if (window !== window.top) return; const here = location.origin;"
                     " const nav = performance.getEntriesByType('navigation')[0];"
                     " if (nav && nav.type !== 'navigate') return;"
                     " const all = %s;"
                     " for (let i = 0; i < all.length; i++) {"
                     " const done = globalThis['" BINDING_PFX "' + i];"
                     " if (typeof done !== 'function') continue;"
                     " let o; try { o = new URL(all[i][0]).origin; } catch (e) { continue; }"
                     " if (o !== here) continue;"
                     " try { for (const [k, v] of all[i][1]) localStorage.setItem(k, v); }"
                     " catch (e) {}"
                     " done(''); } })()",
                     lit);
    free(lit);
    if (rc < 0) {
        sbx_buf_free(&js);
        return NULL;
    }
    return sbx_buf_take(&js, NULL);
}

sbx_code br_state_restore(br_tabs *t, const cJSON *state, sbx_err *e) {
    const cJSON *origins = cJSON_GetObjectItemCaseSensitive(state, "origins");
    int n = cJSON_GetArraySize(origins);
    if (n == 0)
        return SBX_OK;
    restore *r = calloc(1, sizeof *r);
    if (!r)
        return sbx_fail(e, SBX_EINTERNAL, "out of memory");
    pthread_mutex_init(&r->mu, NULL);
    r->n = n;
    r->origins = cJSON_Duplicate(origins, 1);
    r->script = restore_script(origins);
    if (!r->origins || !r->script) {
        restore_free(r);
        return sbx_fail(e, SBX_EINTERNAL, "out of memory");
    }
    br_tabs_set_hook(t, &(br_tab_hook){restore_attach, restore_binding, restore_free, r});
    return SBX_OK;
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
    /* a stored origin no top-level document of the session has shown yet: its items as they
     * came, which its first such document gets (so a state read back loses no origin) */
    restore *r = rc == SBX_OK ? br_tabs_hook_ud(t, restore_free) : NULL;
    if (r) {
        pthread_mutex_lock(&r->mu);
        for (int i = 0; i < r->n; i++) {
            const cJSON *stored = cJSON_GetArrayItem(r->origins, i);
            const char *origin = jstr(stored, "origin");
            bool seen = r->done[i] || !origin;
            const cJSON *o;
            cJSON_ArrayForEach(o, origins) seen = seen || !strcmp(jstr(o, "origin"), origin);
            if (!seen &&
                cJSON_GetArraySize(cJSON_GetObjectItemCaseSensitive(stored, "localStorage")))
                cJSON_AddItemToArray(origins, cJSON_Duplicate(stored, 1));
        }
        pthread_mutex_unlock(&r->mu);
    }
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
