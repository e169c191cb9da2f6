/* cluster.c -- session ownership by id, draining, and forwarding of MCP calls (see
 * cluster.h). */
#define _GNU_SOURCE
#include "cluster.h"

#include <stdarg.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <curl/curl.h>

#include "../common/limits.h"
#include "../common/log.h"
#include "../common/util.h"

#define FORWARD_MAX_BYTES  (64u * 1024 * 1024) /* a screenshot or a page's HTML fits */
#define FORWARD_CONNECT_MS 5000
#define FORWARD_MARGIN_MS  30000 /* past the longest browser call the owner may take */

static const char *forward_url = "";
static atomic_bool draining = false;

void cluster_init(const char *url) {
    forward_url = url ? url : "";
}

void cluster_drain_begin(void) {
    atomic_store(&draining, true);
}

bool cluster_draining(void) {
    return atomic_load(&draining);
}

/* The routes whose first placeholder is a session id: /browser/sessions/{id}[/...] and
 * /python/sessions/{id}[/...] (the latter as they land: matched by pattern, not by table). */
static bool session_route(const char *pattern) {
    static const char *const prefixes[] = {"/browser/sessions/{id}", "/python/sessions/{id}"};
    for (size_t i = 0; i < sizeof prefixes / sizeof *prefixes; i++) {
        size_t n = strlen(prefixes[i]);
        if (!strncmp(pattern, prefixes[i], n) && (pattern[n] == '\0' || pattern[n] == '/'))
            return true;
    }
    return false;
}

static bool create_route(const char *method, const char *pattern) {
    return !strcmp(method, "POST") &&
           (!strcmp(pattern, "/browser/sessions") || !strcmp(pattern, "/python/sessions"));
}

sbx_code cluster_admit(const char *method, const http_route *route, char params[][HTTP_PARAM_LEN],
                       char owner[SBX_NODE_MAX + 1], sbx_err *e) {
    if (!*sbx_node())
        return SBX_OK;
    if (session_route(route->pattern) && sbx_session_foreign(params[0], owner)) {
        return sbx_fail(e, SBX_EWRONGNODE,
                        "session %.80s belongs to node '%s', and this is node '%s': send calls "
                        "for it through the router, which routes by the id's prefix",
                        params[0], owner, sbx_node());
    }
    if (create_route(method, route->pattern) && cluster_draining()) {
        sbx_fail(e, SBX_EDRAINING,
                 "node '%s' is draining (shutting down) and takes no new sessions; retry: the "
                 "router sends creates to a ready replica",
                 sbx_node());
        e->retry_after = 1;
        return SBX_EDRAINING;
    }
    return SBX_OK;
}

bool cluster_can_forward(void) {
    return *sbx_node() && *forward_url;
}

/* ---------------------------------------------------------------- forwarding */

static size_t collect(char *p, size_t size, size_t n, void *arg) {
    return sbx_buf_add(arg, p, size * n) == 0 ? size * n : 0; /* 0: past the cap, abort */
}

static void fail_reply(cluster_reply *out, sbx_code code, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
static void fail_reply(cluster_reply *out, sbx_code code, const char *fmt, ...) {
    char msg[512];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    cJSON *root = cJSON_CreateObject(), *err = cJSON_AddObjectToObject(root, "error");
    cJSON_AddStringToObject(err, "code", sbx_code_name(code));
    cJSON_AddStringToObject(err, "message", msg);
    out->status = sbx_code_status(code);
    out->json = root;
    out->ctype = strdup("application/json; charset=utf-8");
}

/* base + path + "?" + the capture's query pairs, each escaped. NULL when out of memory. */
static char *forward_target(CURL *h, const char *path, const char *const *query) {
    sbx_buf u;
    sbx_buf_init(&u, 16384);
    size_t bl = strlen(forward_url);
    while (bl && forward_url[bl - 1] == '/')
        bl--;
    sbx_buf_add(&u, forward_url, bl);
    sbx_buf_add(&u, path, strlen(path));
    for (size_t i = 0; query && query[i] && query[i + 1]; i += 2) {
        char *k = curl_easy_escape(h, query[i], 0), *v = curl_easy_escape(h, query[i + 1], 0);
        if (k && v)
            sbx_buf_addf(&u, "%c%s=%s", i ? '&' : '?', k, v);
        curl_free(k);
        curl_free(v);
    }
    if (u.truncated) {
        sbx_buf_free(&u);
        return NULL;
    }
    return sbx_buf_take(&u, NULL);
}

int cluster_forward(const char *authz, const char *req_id, const char *owner, const char *method,
                    const char *path, const char *const *query, const cJSON *json_body,
                    cluster_reply *out) {
    *out = (cluster_reply){0};
    CURL *h = curl_easy_init();
    char *url = h ? forward_target(h, path, query) : NULL;
    char *body = json_body ? cJSON_PrintUnformatted(json_body) : NULL;
    if (!h || !url || (json_body && !body)) {
        fail_reply(out, SBX_EINTERNAL, "out of memory forwarding a call to node '%s'", owner);
        free(url);
        free(body);
        curl_easy_cleanup(h);
        return out->status;
    }
    struct curl_slist *hdrs = NULL;
    char line[4096];
    if (authz) {
        snprintf(line, sizeof line, "Authorization: %s", authz);
        hdrs = curl_slist_append(hdrs, line);
    }
    snprintf(line, sizeof line, "X-Sandboxd-Forwarded-By: %s", sbx_node());
    hdrs = curl_slist_append(hdrs, line);
    snprintf(line, sizeof line, "X-Request-Id: %s", req_id);
    hdrs = curl_slist_append(hdrs, line);
    hdrs = curl_slist_append(hdrs, "Expect:");
    if (!strcmp(method, "POST") || body) {
        hdrs = curl_slist_append(hdrs, "Content-Type: application/json");
        curl_easy_setopt(h, CURLOPT_POSTFIELDS, body ? body : "{}");
    }
    sbx_buf reply;
    sbx_buf_init(&reply, FORWARD_MAX_BYTES);
    curl_easy_setopt(h, CURLOPT_URL, url);
    curl_easy_setopt(h, CURLOPT_CUSTOMREQUEST, method);
    curl_easy_setopt(h, CURLOPT_HTTPHEADER, hdrs);
    curl_easy_setopt(h, CURLOPT_NOSIGNAL, 1L);
    curl_easy_setopt(h, CURLOPT_PROTOCOLS_STR, "http,https");
    curl_easy_setopt(h, CURLOPT_CONNECTTIMEOUT_MS, (long)FORWARD_CONNECT_MS);
    curl_easy_setopt(h, CURLOPT_TIMEOUT_MS,
                     (long)(SBX_BROWSER_CALL_TIMEOUT_MS_MAX + FORWARD_MARGIN_MS));
    curl_easy_setopt(h, CURLOPT_WRITEFUNCTION, collect);
    curl_easy_setopt(h, CURLOPT_WRITEDATA, &reply);
    CURLcode cc = curl_easy_perform(h);
    long status = 0;
    char *ctype = NULL;
    curl_easy_getinfo(h, CURLINFO_RESPONSE_CODE, &status);
    curl_easy_getinfo(h, CURLINFO_CONTENT_TYPE, &ctype);
    if (cc != CURLE_OK || status < 100) {
        fail_reply(out, SBX_EUNAVAIL,
                   "session's node '%s' could not be reached through CLUSTER_URL: %s%s", owner,
                   curl_easy_strerror(cc),
                   reply.truncated ? " (the answer was larger than 64 MiB)" : "");
    } else {
        out->status = (int)status;
        out->ctype = ctype ? strdup(ctype) : NULL;
        size_t len = 0;
        char *data = sbx_buf_take(&reply, &len);
        cJSON *j = ctype && strstr(ctype, "json") && data ? cJSON_ParseWithLength(data, len) : NULL;
        if (j) {
            out->json = j;
            free(data);
        } else if (data && len) {
            out->data = data;
            out->len = len;
        } else {
            free(data);
        }
        LOG_D("http", "req=%s %s %s forwarded for node '%s': %ld", req_id, method, path, owner,
              status);
    }
    sbx_buf_free(&reply);
    curl_slist_free_all(hdrs);
    curl_easy_cleanup(h);
    free(url);
    free(body);
    return out->status;
}
