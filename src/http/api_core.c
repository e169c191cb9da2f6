/* api_core.c -- the server's own routes: GET /health, GET /openapi.json, GET /metrics. */
#include <stdlib.h>
#include <string.h>

#include "../browser/browser.h"
#include "../common/log.h"
#include "../common/util.h"
#include "../exec/exec.h"
#include "http.h"
#include "metrics.h"
#include "openapi.h"
#include "server.h"

static int64_t started_ms;

void api_core_mark_start(void) {
    started_ms = sbx_now_ms();
}

static void health(http_req *r) {
    cJSON *root = cJSON_CreateObject();
    cJSON_AddStringToObject(root, "status", "ok");
    cJSON_AddStringToObject(root, "version", SANDBOXD_VERSION);
    cJSON_AddNumberToObject(root, "uptimeMs", (double)(sbx_now_ms() - started_ms));
    cJSON_AddNumberToObject(root, "inflight", server_inflight());
    cJSON_AddItemToObject(root, "exec", exec_health());
    cJSON_AddItemToObject(root, "browser", browser_health());
    http_reply_json(r, 200, root);
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
                 server_inflight());
    size_t len;
    char *text = sbx_buf_take(&b, &len);
    if (!text) {
        http_fail(r, SBX_EINTERNAL, "out of memory");
        return;
    }
    http_reply_bytes(r, 200, "text/plain; version=0.0.4; charset=utf-8", text, len);
}

const http_route api_core_routes[] = {
    {"GET", "/health", health, NULL, true},
    {"GET", "/openapi.json", openapi, NULL, false},
    {"GET", "/metrics", metrics, "admin", false},
    {0},
};
