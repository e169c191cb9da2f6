/* api_core.c -- the server's own routes: GET /health, GET /ready, GET /openapi.json, GET /metrics,
 * and the scoped tokens. */
#include <stdlib.h>
#include <string.h>

#include "../browser/browser.h"
#include "../common/log.h"
#include "../common/util.h"
#include "../exec/exec.h"
#include "cluster.h"
#include "http.h"
#include "metrics.h"
#include "openapi.h"
#include "tokens.h"
#include "../common/jfield.h"

static int64_t started_ms;

void api_core_mark_start(void) {
    started_ms = sbx_now_ms();
}

/* Strangers learn that the server is up and its version; a valid token (any scope) also
 * gets what the machine offers: paths, sandbox layers, zygotes, pools. */
static void health(http_req *r) {
    cJSON *root = cJSON_CreateObject();
    cJSON_AddStringToObject(root, "status", "ok");
    cJSON_AddStringToObject(root, "version", SANDBOXD_VERSION);
    if (!r->authenticated) {
        http_reply_json(r, 200, root);
        return;
    }
    cJSON_AddNumberToObject(root, "uptimeMs", (double)(sbx_now_ms() - started_ms));
    cJSON_AddNumberToObject(root, "inflight", http_inflight());
    cJSON_AddItemToObject(root, "exec", exec_health());
    cJSON_AddItemToObject(root, "browser", browser_health());
    http_reply_json(r, 200, root);
}

/* What readiness looks at: draining, and whether a new browser session or a run would find
 * room here. */
typedef struct load {
    int sessions, max_sessions, running, max_runs;
    bool draining, browser_full, exec_full;
} load;

static int number(const cJSON *o, const char *name) {
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(o, name);
    return cJSON_IsNumber(v) ? (int)v->valuedouble : 0;
}

static load load_now(void) {
    cJSON *b = browser_health(), *x = exec_health();
    load l = {.sessions = number(b, "sessions"),
              .max_sessions = number(b, "maxSessions"),
              .running = number(x, "running"),
              .max_runs = number(x, "maxRuns"),
              .draining = cluster_draining()};
    cJSON_Delete(b);
    cJSON_Delete(x);
    l.browser_full = l.max_sessions > 0 && l.sessions >= l.max_sessions;
    l.exec_full = l.max_runs > 0 && l.running >= l.max_runs;
    return l;
}

/* 200 while this replica takes new work, 503 when it is draining or full (a router's health
 * check and Kubernetes' readinessProbe read it; no token needed). With a token the body also
 * has the numbers behind it. */
static void ready(http_req *r) {
    load l = load_now();
    bool ok = !l.draining && !l.browser_full && !l.exec_full;
    cJSON *root = cJSON_CreateObject();
    cJSON_AddBoolToObject(root, "ready", ok);
    if (*sbx_node())
        cJSON_AddStringToObject(root, "node", sbx_node());
    cJSON *why = cJSON_AddArrayToObject(root, "reasons");
    if (l.draining)
        cJSON_AddItemToArray(why, cJSON_CreateString("draining"));
    if (l.browser_full)
        cJSON_AddItemToArray(why, cJSON_CreateString("browser_full"));
    if (l.exec_full)
        cJSON_AddItemToArray(why, cJSON_CreateString("exec_full"));
    if (r->authenticated) {
        cJSON *b = cJSON_AddObjectToObject(root, "browser");
        cJSON_AddNumberToObject(b, "sessions", l.sessions);
        cJSON_AddNumberToObject(b, "maxSessions", l.max_sessions);
        cJSON *x = cJSON_AddObjectToObject(root, "exec");
        cJSON_AddNumberToObject(x, "running", l.running);
        cJSON_AddNumberToObject(x, "maxRuns", l.max_runs);
    }
    if (!ok)
        http_add_header(r, "Retry-After", "1");
    http_reply_json(r, ok ? 200 : 503, root);
}

static void openapi(http_req *r) {
    sbx_err e;
    char *doc = openapi_document(&e);
    if (!doc) {
        http_reply_error(r, &e);
        return;
    }
    http_reply_bytes(r, 200, "application/json; charset=utf-8", doc, strlen(doc));
}

static void metrics(http_req *r) {
    sbx_buf b;
    sbx_buf_init(&b, 4 * 1024 * 1024);
    metrics_render(&b);
    sbx_buf_addf(&b, "# TYPE sandboxd_http_inflight gauge\nsandboxd_http_inflight %d\n",
                 http_inflight());
    load l = load_now();
    sbx_buf_addf(&b,
                 "# HELP sandboxd_browser_sessions Browser sessions open now (what an autoscaler "
                 "reads).\n"
                 "# TYPE sandboxd_browser_sessions gauge\n"
                 "sandboxd_browser_sessions %d\n"
                 "# HELP sandboxd_browser_sessions_max BROWSER_MAX_SESSIONS.\n"
                 "# TYPE sandboxd_browser_sessions_max gauge\n"
                 "sandboxd_browser_sessions_max %d\n"
                 "# HELP sandboxd_exec_runs_running Runs executing now (at most EXEC_MAX_RUNS).\n"
                 "# TYPE sandboxd_exec_runs_running gauge\n"
                 "sandboxd_exec_runs_running %d\n"
                 "# HELP sandboxd_ready 1 while GET /ready answers 200 (not draining, not full).\n"
                 "# TYPE sandboxd_ready gauge\n"
                 "sandboxd_ready %d\n"
                 "# HELP sandboxd_draining 1 once SIGTERM began draining this replica (NODE_ID).\n"
                 "# TYPE sandboxd_draining gauge\n"
                 "sandboxd_draining %d\n",
                 l.sessions, l.max_sessions, l.running,
                 !l.draining && !l.browser_full && !l.exec_full, l.draining);
    browser_stats bs;
    browser_stats_get(&bs);
    sbx_buf_addf(&b,
                 "# HELP sandboxd_browser_pool_size Warm Chromium browsers the pool keeps ready "
                 "(BROWSER_POOL_SIZE; 0 when off).\n"
                 "# TYPE sandboxd_browser_pool_size gauge\n"
                 "sandboxd_browser_pool_size %d\n"
                 "# HELP sandboxd_browser_pool_ready Pooled browsers launched and waiting for a "
                 "session.\n"
                 "# TYPE sandboxd_browser_pool_ready gauge\n"
                 "sandboxd_browser_pool_ready %d\n"
                 "# HELP sandboxd_browser_pool_launch_failures_total Pool launches that failed.\n"
                 "# TYPE sandboxd_browser_pool_launch_failures_total counter\n"
                 "sandboxd_browser_pool_launch_failures_total %llu\n"
                 "# HELP sandboxd_browser_sessions_created_total Browser sessions created, by "
                 "where their Chromium came from (pool: pre-launched; cold: launched for the "
                 "session).\n"
                 "# TYPE sandboxd_browser_sessions_created_total counter\n"
                 "sandboxd_browser_sessions_created_total{source=\"pool\"} %llu\n"
                 "sandboxd_browser_sessions_created_total{source=\"cold\"} %llu\n",
                 bs.pool_size, bs.pool_ready, (unsigned long long)bs.pool_failures,
                 (unsigned long long)bs.created_pooled, (unsigned long long)bs.created_cold);
    sbx_buf_addf(&b,
                 "# HELP sandboxd_browser_sessions Live browser sessions.\n"
                 "# TYPE sandboxd_browser_sessions gauge\n"
                 "sandboxd_browser_sessions %d\n"
                 "# HELP sandboxd_browser_tabs Open tabs of the live sessions.\n"
                 "# TYPE sandboxd_browser_tabs gauge\n"
                 "sandboxd_browser_tabs %d\n"
                 "# HELP sandboxd_browser_sessions_memory_bytes PSS of the live sessions' Chromium "
                 "processes, summed.\n"
                 "# TYPE sandboxd_browser_sessions_memory_bytes gauge\n"
                 "sandboxd_browser_sessions_memory_bytes %lld\n"
                 "# HELP sandboxd_browser_sessions_cpu_seconds CPU time the live sessions' "
                 "Chromium processes used, summed (it drops when a session ends).\n"
                 "# TYPE sandboxd_browser_sessions_cpu_seconds gauge\n"
                 "sandboxd_browser_sessions_cpu_seconds %.3f\n",
                 bs.sessions, bs.tabs, (long long)bs.memory_bytes, (double)bs.cpu_ms / 1000.0);
    size_t len;
    char *text = sbx_buf_take(&b, &len);
    if (!text) {
        http_fail(r, SBX_EINTERNAL, "out of memory");
        return;
    }
    http_reply_bytes(r, 200, "text/plain; version=0.0.4; charset=utf-8", text, len);
}

static void token_create(http_req *r) {
    sbx_err e;
    cJSON *body = http_json_body(r, &e);
    const char *label = NULL;
    int64_t ttl = 0;
    const cJSON *scopes;
    unsigned bits = 0;
    if (!body || jf_only(body, "label|scopes|ttlSeconds", &e) ||
        jf_string(body, "label", true, &label, &e) ||
        jf_int(body, "ttlSeconds", false, 1, 10LL * 365 * 24 * 3600, &ttl, &e)) {
        http_reply_error(r, &e);
        return;
    }
    if (!*label || strlen(label) > TOKENS_LABEL_MAX) {
        http_fail(r, SBX_EINVAL, "field 'label' must be 1 to %d characters", TOKENS_LABEL_MAX);
        return;
    }
    scopes = cJSON_GetObjectItemCaseSensitive(body, "scopes");
    if (!cJSON_IsArray(scopes) || cJSON_GetArraySize(scopes) == 0) {
        http_fail(r, SBX_EINVAL,
                  "field 'scopes' must be a non-empty array of \"exec\", "
                  "\"browser\", \"admin\"");
        return;
    }
    const cJSON *s;
    cJSON_ArrayForEach(s, scopes) {
        unsigned bit = cJSON_IsString(s) ? tokens_scope_bit(s->valuestring) : 0;
        if (!bit) {
            http_fail(r, SBX_EINVAL,
                      "field 'scopes' may hold only \"exec\", \"browser\", "
                      "\"admin\"");
            return;
        }
        bits |= bit;
    }
    cJSON *out = NULL;
    if (tokens_create(label, bits, ttl, &out, &e) != SBX_OK) {
        http_reply_error(r, &e);
        return;
    }
    http_reply_json(r, 201, out);
}

static void token_list(http_req *r) {
    http_reply_json(r, 200, tokens_list());
}

static void token_delete(http_req *r) {
    sbx_err e;
    if (tokens_delete(r->params[0], &e) != SBX_OK)
        http_reply_error(r, &e);
    else
        http_reply_status(r, 204);
}

const http_route api_core_routes[] = {
    {"GET", "/health", health, NULL, true},
    {"GET", "/ready", ready, NULL, true},
    {"GET", "/openapi.json", openapi, NULL, false},
    {"GET", "/metrics", metrics, "admin", false},
    {"POST", "/tokens", token_create, "admin", false},
    {"GET", "/tokens", token_list, "admin", false},
    {"DELETE", "/tokens/{id}", token_delete, "admin", false},
    {0},
};
