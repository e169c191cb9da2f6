/* api_python.c -- HTTP routes of Python sessions (scope "exec"): parse, resolve the session
 * (404 for another token's), hand the call to src/exec/workspace.h, answer as JSON or SSE.
 * The files routes of a session live beside these, in their own module. */
#define _GNU_SOURCE
#include <stdlib.h>
#include <string.h>

#include "../common/jfield.h"
#include "../common/limits.h"
#include "../common/util.h"
#include "../exec/exec.h"
#include "../exec/workspace.h"
#include "http.h"

static ws_session *session_of(http_req *r) {
    sbx_err e = {0};
    ws_session *s = ws_get(r->params[0], http_viewer(r), &e);
    if (!s)
        http_reply_error(r, &e);
    return s;
}

static bool wants_sse(http_req *r) {
    const char *accept = http_header(r, "Accept");
    return accept && strstr(accept, "text/event-stream");
}

static const cJSON *env_field(const cJSON *body, sbx_err *e, bool *bad) {
    const cJSON *env = cJSON_GetObjectItem(body, "env");
    *bad = env && !cJSON_IsObject(env) && !cJSON_IsNull(env);
    if (*bad)
        sbx_fail(e, SBX_EINVAL, "field 'env' must be an object of NAME: \"value\"");
    return cJSON_IsObject(env) ? env : NULL;
}

static void h_create(http_req *r) {
    sbx_err e = {0};
    cJSON *body = http_json_body(r, &e);
    ws_create_req rq = {0};
    bool bad = false;
    if (!body || jf_only(body, "idleTimeoutS|ttlS|env|network", &e) ||
        jf_int(body, "idleTimeoutS", false, 1, 2592000, &rq.idle_timeout_s, &e) ||
        jf_int(body, "ttlS", false, 1, 2592000, &rq.ttl_s, &e) ||
        (rq.env = env_field(body, &e, &bad), bad)) {
        http_reply_error(r, &e);
        return;
    }
    /* network: the operator's EXEC_NETWORK, narrowed by network.allowedDomains, through the
     * egress gateway like a run's */
    egress_scope *scope = NULL;
    const cJSON *network = cJSON_GetObjectItem(body, "network");
    if (exec_network_scope(cJSON_IsNull(network) ? NULL : network, &scope, &e) != SBX_OK) {
        http_reply_error(r, &e);
        return;
    }
    if (scope && !(rq.net = exec_egress_client(scope))) {
        http_fail(r, SBX_EINTERNAL, "out of memory");
        return;
    }
    rq.net_env = exec_proxy_env();
    rq.net_port = EXEC_EGRESS_PORT;
    cJSON *out = NULL;
    if (ws_create(&rq, r->owner, &out, &e) != SBX_OK)
        http_reply_error(r, &e);
    else
        http_reply_json(r, 201, out);
}

static void h_list(http_req *r) {
    http_reply_json(r, 200, ws_list(http_viewer(r)));
}

static void h_get(http_req *r) {
    ws_session *s = session_of(r);
    if (!s)
        return;
    http_reply_json(r, 200, ws_describe(s));
    ws_done(s);
}

static void h_delete(http_req *r) {
    sbx_err e = {0};
    if (ws_delete(r->params[0], http_viewer(r), &e) != SBX_OK)
        http_reply_error(r, &e);
    else
        http_reply_status(r, 204);
}

/* ---- execute and commands, as JSON or as SSE ---- */

typedef struct py_call {
    ws_session *s;
    bool command;
    char *code, *cwd;
    cJSON *env;
    int64_t timeout_ms;
    http_stream *st;
} py_call;

static void py_call_free(void *arg) {
    py_call *c = arg;
    ws_done(c->s);
    free(c->code);
    free(c->cwd);
    cJSON_Delete(c->env);
    free(c);
}

static int sse_output(void *ctx, int stream, const char *data, size_t len) {
    py_call *c = ctx;
    return http_stream_output(c->st, stream, data, len, "sessionId", c->timeout_ms);
}

static cJSON *run_call(py_call *c, ws_output_fn fn, sbx_err *e) {
    if (!c->command)
        return ws_execute(c->s, c->code, c->timeout_ms, fn, c, e);
    ws_command_req rq = {
        .command = c->code, .cwd = c->cwd, .timeout_ms = c->timeout_ms, .env = c->env};
    return ws_command(c->s, &rq, fn, c, e);
}

static void sse_produce(http_stream *st, void *arg) {
    py_call *c = arg;
    sbx_err e = {0};
    c->st = st;
    cJSON *res = run_call(c, sse_output, &e);
    if (!res) {
        res = cJSON_CreateObject();
        cJSON *err = cJSON_AddObjectToObject(res, "error");
        cJSON_AddStringToObject(err, "code", sbx_code_name(e.code));
        cJSON_AddStringToObject(err, "message", e.msg);
        char *text = cJSON_PrintUnformatted(res);
        http_stream_sse(st, "error", text ? text : "{}");
        free(text);
    } else {
        char *text = cJSON_PrintUnformatted(res);
        http_stream_sse(st, "done", text ? text : "{}");
        free(text);
    }
    cJSON_Delete(res);
}

static void start_call(http_req *r, py_call *c) {
    if (wants_sse(r)) {
        http_reply_stream(r, 200, "text/event-stream; charset=utf-8", sse_produce, c, py_call_free);
        return;
    }
    sbx_err e = {0};
    cJSON *res = run_call(c, NULL, &e);
    if (!res)
        http_reply_error(r, &e);
    else
        http_reply_json(r, 200, res);
    py_call_free(c);
}

static void h_execute(http_req *r) {
    sbx_err e = {0};
    cJSON *body = http_json_body(r, &e);
    const char *code = NULL;
    int64_t timeout = http_defaults_get()->exec_timeout_ms;
    if (!body || jf_only(body, "code|timeoutMs", &e) || jf_string(body, "code", true, &code, &e) ||
        jf_int(body, "timeoutMs", false, 1, SBX_EXEC_TIMEOUT_MS_MAX, &timeout, &e)) {
        http_reply_error(r, &e);
        return;
    }
    ws_session *s = session_of(r);
    if (!s)
        return;
    py_call *c = calloc(1, sizeof *c);
    if (!c || !(c->code = strdup(code))) {
        free(c);
        ws_done(s);
        http_fail(r, SBX_EINTERNAL, "out of memory");
        return;
    }
    c->s = s;
    c->timeout_ms = timeout;
    start_call(r, c);
}

static void h_command(http_req *r) {
    sbx_err e = {0};
    cJSON *body = http_json_body(r, &e);
    const char *command = NULL, *cwd = NULL;
    int64_t timeout = http_defaults_get()->exec_timeout_ms;
    bool bad = false;
    const cJSON *env = NULL;
    if (!body || jf_only(body, "command|cwd|timeoutMs|env", &e) ||
        jf_string(body, "command", true, &command, &e) || jf_string(body, "cwd", false, &cwd, &e) ||
        jf_int(body, "timeoutMs", false, 1, SBX_EXEC_TIMEOUT_MS_MAX, &timeout, &e) ||
        (env = env_field(body, &e, &bad), bad)) {
        http_reply_error(r, &e);
        return;
    }
    ws_session *s = session_of(r);
    if (!s)
        return;
    py_call *c = calloc(1, sizeof *c);
    if (!c || !(c->code = strdup(command)) || (cwd && !(c->cwd = strdup(cwd))) ||
        (env && !(c->env = cJSON_Duplicate(env, 1)))) {
        if (c) {
            free(c->code);
            free(c->cwd);
        }
        free(c);
        ws_done(s);
        http_fail(r, SBX_EINTERNAL, "out of memory");
        return;
    }
    c->s = s;
    c->command = true;
    c->timeout_ms = timeout;
    start_call(r, c);
}

static void h_packages(http_req *r) {
    sbx_err e = {0};
    cJSON *body = http_json_body(r, &e);
    int64_t timeout = 300000;
    if (!body || jf_only(body, "packages|timeoutMs", &e) ||
        jf_int(body, "timeoutMs", false, 1, 3600000, &timeout, &e)) {
        http_reply_error(r, &e);
        return;
    }
    const cJSON *list = cJSON_GetObjectItem(body, "packages");
    int n = cJSON_GetArraySize(list);
    if (!cJSON_IsArray(list) || n < 1 || n > 64) {
        http_fail(r, SBX_EINVAL,
                  "field 'packages' must be an array of 1 to 64 requirement strings");
        return;
    }
    const char *pkgs[64];
    for (int i = 0; i < n; i++) {
        pkgs[i] = cJSON_GetStringValue(cJSON_GetArrayItem(list, i));
        if (!pkgs[i]) {
            http_fail(r, SBX_EINVAL, "field 'packages': item %d is not a string", i);
            return;
        }
    }
    ws_session *s = session_of(r);
    if (!s)
        return;
    cJSON *res = ws_packages(s, pkgs, (size_t)n, timeout, &e);
    ws_done(s);
    if (!res)
        http_reply_error(r, &e);
    else
        http_reply_json(r, 200, res);
}

const http_route api_python_routes[] = {
    {"POST", "/python/sessions", h_create, "exec", false},
    {"GET", "/python/sessions", h_list, "exec", false},
    {"GET", "/python/sessions/{id}", h_get, "exec", false},
    {"DELETE", "/python/sessions/{id}", h_delete, "exec", false},
    {"POST", "/python/sessions/{id}/execute", h_execute, "exec", false},
    {"POST", "/python/sessions/{id}/commands", h_command, "exec", false},
    {"POST", "/python/sessions/{id}/packages", h_packages, "exec", false},
    {NULL, NULL, NULL, NULL, false},
};
