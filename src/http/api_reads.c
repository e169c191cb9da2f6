/* api_reads.c -- HTTP routes of the agent reads (scope "browser"): GET .../snapshot,
 * .../markdown and .../links of a browser session's tab. Parse the query, resolve the session
 * and tab, hand the work to src/browser/snapshot.c, answer. */
#define _GNU_SOURCE
#include <stdlib.h>
#include <string.h>

#include "../browser/session.h"
#include "../browser/snapshot.h"
#include "http.h"

/* maxChars from the query (default BROWSER_SNAPSHOT_MAX_CHARS), or answer 400. */
static bool max_chars(http_req *r, size_t *out) {
    *out = (size_t)http_defaults_get()->browser_snapshot_max_chars;
    const char *q = http_query(r, "maxChars");
    if (!q)
        return true;
    char *end = NULL;
    long v = strtol(q, &end, 10);
    if (!*q || *end || v < 100 || v > BR_READS_MAX_CHARS) {
        http_fail(r, SBX_EINVAL, "maxChars: must be an integer from 100 to %d", BR_READS_MAX_CHARS);
        return false;
    }
    *out = (size_t)v;
    return true;
}

/* Borrow the session and its tab; on failure answers and returns NULL (*s then released). */
static br_page *page_of(http_req *r, br_session **s) {
    sbx_err e = {0};
    *s = br_session_get(r->params[0], http_viewer(r), &e);
    if (!*s) {
        http_reply_error(r, &e);
        return NULL;
    }
    br_page *p = br_session_page(*s, http_query(r, "tabId"), &e);
    if (!p) {
        http_reply_error(r, &e);
        br_session_done(*s, e.code);
    }
    return p;
}

static void h_snapshot(http_req *r) {
    size_t max;
    if (!max_chars(r, &max))
        return;
    const char *sel = http_query(r, "selector");
    br_session *s;
    br_page *p = page_of(r, &s);
    if (!p)
        return;
    sbx_err e = {0};
    cJSON *out = NULL;
    if (br_snapshot(p, sel && *sel ? sel : NULL, max, http_defaults_get()->browser_call_timeout_ms,
                    &out, &e) != SBX_OK)
        http_reply_error(r, &e);
    else
        http_reply_json(r, 200, out);
    br_session_done(s, e.code);
}

static void h_markdown(http_req *r) {
    size_t max;
    if (!max_chars(r, &max))
        return;
    br_session *s;
    br_page *p = page_of(r, &s);
    if (!p)
        return;
    sbx_err e = {0};
    char *md = NULL;
    size_t len = 0;
    bool truncated = false;
    if (br_markdown(p, max, http_defaults_get()->browser_call_timeout_ms, &md, &len, &truncated,
                    &e) != SBX_OK) {
        http_reply_error(r, &e);
    } else {
        http_add_header(r, "X-Truncated", truncated ? "true" : "false");
        http_reply_bytes(r, 200, "text/markdown; charset=utf-8", md, len);
    }
    br_session_done(s, e.code);
}

static void h_links(http_req *r) {
    br_session *s;
    br_page *p = page_of(r, &s);
    if (!p)
        return;
    sbx_err e = {0};
    cJSON *out = NULL;
    if (br_links(p, http_defaults_get()->browser_call_timeout_ms, &out, &e) != SBX_OK)
        http_reply_error(r, &e);
    else
        http_reply_json(r, 200, out);
    br_session_done(s, e.code);
}

const http_route api_reads_routes[] = {
    {"GET", "/browser/sessions/{id}/snapshot", h_snapshot, "browser", false},
    {"GET", "/browser/sessions/{id}/markdown", h_markdown, "browser", false},
    {"GET", "/browser/sessions/{id}/links", h_links, "browser", false},
    {NULL, NULL, NULL, NULL, false},
};
