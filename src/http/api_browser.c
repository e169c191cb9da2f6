/* api_browser.c -- HTTP routes of browser sessions (scope "browser"): parse, resolve the
 * session and tab (404/502), hand the work to src/browser, answer. */
#define _GNU_SOURCE
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "../browser/cookies.h"
#include "../browser/navigate.h"
#include "../browser/page.h"
#include "../browser/passthrough.h"
#include "../browser/proc.h"
#include "../browser/session.h"
#include "../browser/state.h"
#include "../browser/url_policy.h"
#include "../common/limits.h"
#include "../common/jfield.h"
#include "../common/log.h"
#include "http.h"

/* BROWSER_CALL_TIMEOUT_MS: the time a call without its own timeoutMs may take. */
static int64_t call_timeout_ms(void) {
    return http_defaults_get()->browser_call_timeout_ms;
}

static void fail(http_req *r, const sbx_err *e) {
    http_reply_error(r, e);
}

/* Borrow the session named by the first path parameter, or answer the error. */
static br_session *session_of(http_req *r) {
    sbx_err e = {0};
    br_session *s = br_session_get(r->params[0], http_viewer(r), &e);
    if (!s)
        fail(r, &e);
    return s;
}

static bool timeout_field(http_req *r, const cJSON *body, int64_t *to) {
    sbx_err e = {0};
    *to = call_timeout_ms();
    if (jf_int(body, "timeoutMs", false, 1, SBX_BROWSER_CALL_TIMEOUT_MS_MAX, to, &e) != SBX_OK) {
        fail(r, &e);
        return false;
    }
    return true;
}

static void h_create(http_req *r) {
    sbx_err e = {0};
    cJSON *body = http_json_body(r, &e);
    br_session_opts opts;
    egress_scope *scope = NULL;
    egress_upstream up;
    bool has_up = false;
    const cJSON *network = cJSON_GetObjectItem(body, "network");
    const cJSON *proxy = cJSON_GetObjectItem(body, "proxy");
    if (!body || jf_only(body, BR_SESSION_OPTS_FIELDS "|network|proxy", &e) ||
        br_session_opts_parse(body, &opts, &e) || (opts.state && br_state_check(opts.state, &e)) ||
        (network && cJSON_IsObject(network) && jf_only(network, "allowedDomains", &e)) ||
        (proxy && cJSON_IsObject(proxy) && jf_only(proxy, "server|username|password", &e))) {
        fail(r, &e);
        return;
    }
    bool own = (network && !cJSON_IsNull(network)) || (proxy && !cJSON_IsNull(proxy));
    if (own && br_proc_session_egress(network, proxy, &scope, &up, &has_up, &e) != SBX_OK) {
        fail(r, &e);
        return;
    }
    char sid[SBX_SID_LEN], tab[SBX_ID_LEN];
    if (br_session_create(&opts, r->owner, sid, tab, &e) != SBX_OK) {
        egress_scope_free(scope);
        fail(r, &e);
        return;
    }
    /* before the id is known to anyone: every request of the session obeys its own scope */
    if (scope && br_session_set_egress(sid, scope, has_up ? &up : NULL, &e) != SBX_OK) {
        br_session_delete(sid, NULL, NULL);
        fail(r, &e);
        return;
    }
    cJSON *o = cJSON_CreateObject();
    cJSON_AddStringToObject(o, "sessionId", sid);
    cJSON_AddStringToObject(o, "tabId", tab);
    http_reply_json(r, 201, o);
}

static void h_list(http_req *r) {
    http_reply_json(r, 200, br_session_list(http_viewer(r)));
}

static void h_delete(http_req *r) {
    sbx_err e = {0};
    if (br_session_delete(r->params[0], http_viewer(r), &e) != SBX_OK) {
        fail(r, &e);
        return;
    }
    http_reply_status(r, 204);
}

/* The host of an http(s) URL (lower case, without port or brackets) into out, and its port. */
static void url_host(const char *url, char *out, size_t n, unsigned *port) {
    const char *p = strstr(url, "://");
    *port = !strncasecmp(url, "https:", 6) ? 443 : 80;
    p = p ? p + 3 : url;
    size_t len = strcspn(p, "/?#");
    const char *at = memchr(p, '@', len);
    if (at) {
        len -= (size_t)(at + 1 - p);
        p = at + 1;
    }
    const char *colon = NULL;
    if (*p == '[') {
        const char *end = memchr(p, ']', len);
        colon = end && (size_t)(end + 1 - p) < len && end[1] == ':' ? end + 1 : NULL;
        len = end ? (size_t)(end - p - 1) : 0;
        p++;
    } else {
        colon = memchr(p, ':', len);
        if (colon)
            len = (size_t)(colon - p);
    }
    if (colon && colon[1] >= '0' && colon[1] <= '9')
        *port = (unsigned)atoi(colon + 1);
    if (len >= n)
        len = n - 1;
    for (size_t i = 0; i < len; i++)
        out[i] = (char)(p[i] >= 'A' && p[i] <= 'Z' ? p[i] + 32 : p[i]);
    out[len] = 0;
}

/* After a navigation to `url` that began when the session's gateway client had refused
 * `before` connections: when it refused the URL's own host since, the navigation failed by
 * policy, whatever Chromium made of it (a proxy's 403 page, or ERR_TUNNEL_CONNECTION_FAILED).
 * Fills e (SBX_ENETWORK, naming the policy) and returns true then. */
static bool refused_by_egress(br_session *s, const char *url, const egress_stats *before,
                              sbx_err *e) {
    egress_client *net = br_session_net(s);
    egress_stats st;
    if (!net || (egress_client_stats(net, &st),
                 st.refused == before->refused && st.failed == before->failed))
        return false;
    char host[256], want[300];
    unsigned port;
    url_host(url, host, sizeof host, &port);
    bool v6 = strchr(host, ':') != NULL;
    snprintf(want, sizeof want, "%s%s%s:%u\t", v6 ? "[" : "", host, v6 ? "]" : "", port);
    bool hit = false;
    for (int k = 0; k < 2 && !hit; k++) {
        if (k == 0 ? st.refused == before->refused : st.failed == before->failed)
            continue;
        cJSON *list = k == 0 ? egress_client_refusals(net) : egress_client_failures(net), *it;
        cJSON_ArrayForEach(it, list) {
            const char *line = it->valuestring, *tab = strchr(line, '\t');
            if (hit || !tab || strncmp(line, want, strlen(want)))
                continue;
            if (k == 0)
                sbx_fail(e, SBX_ENETWORK,
                         "navigation failed: network access to %.*s was refused by the egress "
                         "policy: %s",
                         (int)(tab - line), line, tab + 1);
            else /* as Chromium would have said it without the gateway */
                sbx_fail(e, SBX_ENETWORK, "navigation failed: %s, connecting to %.*s", tab + 1,
                         (int)(tab - line), line);
            hit = true;
        }
        cJSON_Delete(list);
    }
    return hit;
}

static egress_stats egress_now(br_session *s) {
    egress_client *net = br_session_net(s);
    egress_stats st = {0};
    if (net)
        egress_client_stats(net, &st);
    return st;
}

static void h_navigate(http_req *r) {
    sbx_err e = {0};
    cJSON *body = http_json_body(r, &e);
    const char *url = NULL, *wait = "load", *tab = NULL;
    int64_t to;
    if (!body || jf_only(body, "url|waitUntil|timeoutMs|tabId", &e) ||
        jf_string(body, "url", true, &url, &e) ||
        jf_enum(body, "waitUntil", false, "load|domcontentloaded|networkidle0|networkidle2", &wait,
                &e) ||
        jf_string(body, "tabId", false, &tab, &e) || br_url_check(url, &e)) {
        fail(r, &e);
        return;
    }
    if (!timeout_field(r, body, &to))
        return;
    br_session *s = session_of(r);
    if (!s)
        return;
    br_page *p = br_session_page(s, tab, &e);
    cJSON *out = NULL;
    egress_stats before = egress_now(s);
    sbx_code rc = p ? br_navigate(p, url, wait, to, &out, &e) : SBX_ENOTFOUND;
    if (p && (rc == SBX_OK || rc == SBX_ENETWORK) && refused_by_egress(s, url, &before, &e)) {
        cJSON_Delete(out);
        out = NULL;
        rc = SBX_ENETWORK;
    }
    if (rc != SBX_OK)
        fail(r, &e);
    else
        http_reply_json(r, 200, out);
    br_session_done(s, e.code);
}

static void h_content(http_req *r) {
    sbx_err e = {0};
    br_session *s = session_of(r);
    if (!s)
        return;
    br_page *p = br_session_page(s, http_query(r, "tabId"), &e);
    char *html = NULL;
    size_t len = 0;
    if (!p || br_content(p, call_timeout_ms(), &html, &len, &e) != SBX_OK)
        fail(r, &e);
    else
        http_reply_bytes(r, 200, "text/html; charset=utf-8", html, len);
    br_session_done(s, e.code);
}

static void h_tabs(http_req *r) {
    br_session *s = session_of(r);
    if (!s)
        return;
    http_reply_json(r, 200, br_tabs_list(s));
    br_session_put(s);
}

static void h_tab_create(http_req *r) {
    sbx_err e = {0};
    cJSON *body = http_json_body(r, &e);
    const char *url = NULL;
    int64_t to;
    if (!body || jf_only(body, "url|timeoutMs", &e) || jf_string(body, "url", false, &url, &e) ||
        (url && br_url_check(url, &e))) {
        fail(r, &e);
        return;
    }
    if (!timeout_field(r, body, &to))
        return;
    br_session *s = session_of(r);
    if (!s)
        return;
    char tab[SBX_ID_LEN];
    if (br_tab_create(s, url, to, tab, &e) != SBX_OK) {
        fail(r, &e);
    } else {
        cJSON *o = cJSON_CreateObject();
        cJSON_AddStringToObject(o, "tabId", tab);
        http_reply_json(r, 201, o);
    }
    br_session_done(s, e.code);
}

static void h_tab_close(http_req *r) {
    sbx_err e = {0};
    br_session *s = session_of(r);
    if (!s)
        return;
    if (br_tab_close(s, r->params[1], &e) != SBX_OK)
        fail(r, &e);
    else
        http_reply_status(r, 204);
    br_session_done(s, e.code);
}

static void h_action(http_req *r) {
    sbx_err e = {0};
    cJSON *body = http_json_body(r, &e);
    const char *tab = NULL;
    int64_t to;
    if (!body || jf_string(body, "tabId", false, &tab, &e)) {
        fail(r, &e);
        return;
    }
    if (!timeout_field(r, body, &to))
        return;
    br_session *s = session_of(r);
    if (!s)
        return;
    br_page *p = br_session_page(s, tab, &e);
    cJSON *out = NULL;
    if (!p || br_action(p, body, to, &out, &e) != SBX_OK)
        fail(r, &e);
    else
        http_reply_json(r, 200, out);
    br_session_done(s, e.code);
}

static bool query_bool(http_req *r, const char *name, bool *out) {
    const char *v = http_query(r, name);
    if (!v)
        return true;
    if (strcmp(v, "true") == 0 || strcmp(v, "1") == 0 || *v == 0)
        *out = true;
    else if (strcmp(v, "false") == 0 || strcmp(v, "0") == 0)
        *out = false;
    else {
        http_fail(r, SBX_EINVAL, "%s: must be true or false", name);
        return false;
    }
    return true;
}

static void h_screenshot(http_req *r) {
    sbx_err e = {0};
    br_shot_opts o = {.format = "png", .quality = -1, .full_page = false, .selector = NULL};
    const char *fmt = http_query(r, "format");
    if (fmt) {
        if (strcmp(fmt, "png") != 0 && strcmp(fmt, "jpeg") != 0 && strcmp(fmt, "jpg") != 0) {
            http_fail(r, SBX_EINVAL, "format: must be png or jpeg");
            return;
        }
        o.format = fmt[0] == 'p' ? "png" : "jpeg";
    }
    const char *q = http_query(r, "quality");
    if (q) {
        char *end = NULL;
        long v = strtol(q, &end, 10);
        if (!*q || *end || v < 0 || v > 100) {
            http_fail(r, SBX_EINVAL, "quality: must be an integer from 0 to 100");
            return;
        }
        o.quality = (int)v;
    }
    if (!query_bool(r, "fullPage", &o.full_page))
        return;
    const char *sel = http_query(r, "selector");
    if (sel && *sel)
        o.selector = sel;
    br_session *s = session_of(r);
    if (!s)
        return;
    br_page *p = br_session_page(s, http_query(r, "tabId"), &e);
    char *data = NULL;
    size_t len = 0;
    if (!p || br_screenshot(p, &o, call_timeout_ms(), &data, &len, &e) != SBX_OK)
        fail(r, &e);
    else
        http_reply_bytes(r, 200, strcmp(o.format, "png") == 0 ? "image/png" : "image/jpeg", data,
                         len);
    br_session_done(s, e.code);
}

static void h_pdf(http_req *r) {
    sbx_err e = {0};
    br_session *s = session_of(r);
    if (!s)
        return;
    br_page *p = br_session_page(s, http_query(r, "tabId"), &e);
    char *data = NULL;
    size_t len = 0;
    if (!p || br_pdf(p, call_timeout_ms(), &data, &len, &e) != SBX_OK)
        fail(r, &e);
    else
        http_reply_bytes(r, 200, "application/pdf", data, len);
    br_session_done(s, e.code);
}

static void h_cookies_get(http_req *r) {
    sbx_err e = {0};
    const char *url = http_query(r, "url");
    if (url && br_url_check(url, &e) != SBX_OK) {
        fail(r, &e);
        return;
    }
    br_session *s = session_of(r);
    if (!s)
        return;
    br_page *p = url ? br_session_page(s, http_query(r, "tabId"), &e) : NULL;
    cJSON *out = NULL;
    if ((url && !p) || br_cookies_get(s, p, url, call_timeout_ms(), &out, &e) != SBX_OK)
        fail(r, &e);
    else
        http_reply_json(r, 200, out);
    br_session_done(s, e.code);
}

static void h_cookies_set(http_req *r) {
    sbx_err e = {0};
    cJSON *body = http_json_body(r, &e);
    if (!body) {
        fail(r, &e);
        return;
    }
    br_session *s = session_of(r);
    if (!s)
        return;
    int n = 0;
    if (br_cookies_set(s, body, call_timeout_ms(), &n, &e) != SBX_OK) {
        fail(r, &e);
    } else {
        cJSON *o = cJSON_CreateObject();
        cJSON_AddBoolToObject(o, "ok", 1);
        cJSON_AddNumberToObject(o, "set", n);
        http_reply_json(r, 200, o);
    }
    br_session_done(s, e.code);
}

static void h_cookies_delete(http_req *r) {
    sbx_err e = {0};
    const char *name = http_query(r, "name"), *domain = http_query(r, "domain"),
               *path = http_query(r, "path");
    br_session *s = session_of(r);
    if (!s)
        return;
    int n = 0;
    if (br_cookies_delete(s, name && *name ? name : NULL, domain && *domain ? domain : NULL,
                          path && *path ? path : NULL, call_timeout_ms(), &n, &e) != SBX_OK) {
        fail(r, &e);
    } else {
        cJSON *o = cJSON_CreateObject();
        cJSON_AddNumberToObject(o, "deleted", n);
        http_reply_json(r, 200, o);
    }
    br_session_done(s, e.code);
}

static void h_cdp(http_req *r) {
    sbx_err e = {0};
    br_session *s = session_of(r);
    if (!s)
        return;
    int port;
    char path[256];
    br_session_devtools(s, &port, path);
    br_cdp_link *l = br_cdp_open(r->params[0], port, path, http_stopping, &e);
    if (!l)
        fail(r, &e);
    else
        http_reply_websocket(r, br_cdp_pump, l, br_cdp_close);
    br_session_done(s, e.code);
}

const http_route api_browser_routes[] = {
    {"POST", "/browser/sessions", h_create, "browser", false},
    {"GET", "/browser/sessions", h_list, "browser", false},
    {"DELETE", "/browser/sessions/{id}", h_delete, "browser", false},
    {"POST", "/browser/sessions/{id}/navigate", h_navigate, "browser", false},
    {"GET", "/browser/sessions/{id}/content", h_content, "browser", false},
    {"GET", "/browser/sessions/{id}/tabs", h_tabs, "browser", false},
    {"POST", "/browser/sessions/{id}/tabs", h_tab_create, "browser", false},
    {"DELETE", "/browser/sessions/{id}/tabs/{tabId}", h_tab_close, "browser", false},
    {"POST", "/browser/sessions/{id}/action", h_action, "browser", false},
    {"GET", "/browser/sessions/{id}/screenshot", h_screenshot, "browser", false},
    {"GET", "/browser/sessions/{id}/pdf", h_pdf, "browser", false},
    {"GET", "/browser/sessions/{id}/cookies", h_cookies_get, "browser", false},
    {"POST", "/browser/sessions/{id}/cookies", h_cookies_set, "browser", false},
    {"DELETE", "/browser/sessions/{id}/cookies", h_cookies_delete, "browser", false},
    /* Raw CDP reaches past the URL policy (file: URLs, downloads, file inputs): admin only. */
    {"GET", "/browser/sessions/{id}/cdp", h_cdp, "admin", false},
    {NULL, NULL, NULL, NULL, false},
};
