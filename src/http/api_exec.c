/* api_exec.c -- POST /execute: validate the request, run it, answer as JSON or as SSE. */
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "../common/limits.h"
#include "../common/jfield.h"
#include "../common/util.h"
#include "../exec/exec.h"
#include "http.h"

typedef struct sse_run {
    exec_request rq;
    char *code, *url, *token;
    http_stream *s;
} sse_run;

static void sse_run_free(void *arg) {
    sse_run *s = arg;
    free(s->code);
    free(s->url);
    free(s->token);
    egress_scope_free(s->rq.scope); /* when the stream never ran */
    free(s);
}

static int sse_output(void *ctx, int stream, const char *data, size_t len) {
    sse_run *run = ctx;
    return http_stream_output(run->s, stream, data, len, "runId", run->rq.timeout_ms);
}

static void sse_produce(http_stream *s, void *arg) {
    sse_run *run = arg;
    sbx_err e = {0};
    run->s = s;
    cJSON *res = exec_run(&run->rq, sse_output, run, &e);
    run->rq.scope = NULL; /* exec_run took it */
    if (!res) {
        res = cJSON_CreateObject();
        cJSON *err = cJSON_AddObjectToObject(res, "error");
        cJSON_AddStringToObject(err, "code", sbx_code_name(e.code));
        cJSON_AddStringToObject(err, "message", e.msg);
    }
    char *text = cJSON_PrintUnformatted(res);
    http_stream_deadline(s, 0); /* the run is over: its last words wait only for the stall time */
    http_stream_sse(s, cJSON_GetObjectItem(res, "error") ? "error" : "done", text ? text : "{}");
    free(text);
    cJSON_Delete(res);
}

static bool wants_sse(http_req *r) {
    const char *accept = http_header(r, "Accept");
    return accept && strstr(accept, "text/event-stream");
}

static bool is_http_url(const char *u) {
    return !strncasecmp(u, "http://", 7) || !strncasecmp(u, "https://", 8);
}

static void execute(http_req *r) {
    sbx_err e = {0};
    cJSON *body = http_json_body(r, &e);
    exec_request rq = {.timeout_ms = http_defaults_get()->exec_timeout_ms};
    if (!body || jf_only(body, "code|timeoutMs|fileUploadUrl|uploadToken|public|network", &e) ||
        jf_string(body, "code", true, &rq.code, &e) ||
        jf_int(body, "timeoutMs", false, 1, SBX_EXEC_TIMEOUT_MS_MAX, &rq.timeout_ms, &e) ||
        jf_string(body, "fileUploadUrl", false, &rq.upload_url, &e) ||
        jf_string(body, "uploadToken", false, &rq.upload_token, &e) ||
        jf_bool(body, "public", false, &rq.public_, &e)) {
        http_reply_error(r, &e);
        return;
    }
    if (rq.upload_url && !is_http_url(rq.upload_url)) {
        http_fail(r, SBX_EINVAL, "field 'fileUploadUrl' must be an http:// or https:// URL");
        return;
    }
    const cJSON *network = cJSON_GetObjectItem(body, "network");
    if (network && !cJSON_IsNull(network) &&
        (jf_only(network, "allowedDomains", &e) ||
         exec_network_scope(network, &rq.scope, &e) != SBX_OK)) {
        http_reply_error(r, &e);
        return;
    }
    if (wants_sse(r)) {
        sse_run *s = calloc(1, sizeof *s);
        if (!s) {
            http_fail(r, SBX_EINTERNAL, "out of memory");
            return;
        }
        s->rq = rq;
        s->rq.code = s->code = strdup(rq.code);
        s->rq.upload_url = s->url = rq.upload_url ? strdup(rq.upload_url) : NULL;
        s->rq.upload_token = s->token = rq.upload_token ? strdup(rq.upload_token) : NULL;
        http_reply_stream(r, 200, "text/event-stream; charset=utf-8", sse_produce, s, sse_run_free);
        return;
    }
    cJSON *res = exec_run(&rq, NULL, NULL, &e);
    if (!res)
        http_reply_error(r, &e);
    else
        http_reply_json(r, 200, res);
}

const http_route api_exec_routes[] = {
    {"POST", "/execute", execute, "exec", false},
    {0},
};
