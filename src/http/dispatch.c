/* dispatch.c -- in-process calls of REST routes with a captured reply (see dispatch.h). */
#define _GNU_SOURCE
#include "dispatch.h"

#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "../common/log.h"
#include "cluster.h"
#include "router.h"

static void capture_error(http_capture *cap, sbx_code code, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

static void set_error(http_capture *cap, const sbx_err *e) {
    cJSON *root = cJSON_CreateObject(), *err = cJSON_AddObjectToObject(root, "error");
    cJSON_AddStringToObject(err, "code", sbx_code_name(e->code));
    cJSON_AddStringToObject(err, "message", e->msg);
    cap->status = sbx_code_status(e->code);
    cap->json = root;
    cap->ctype = strdup("application/json; charset=utf-8");
}

static void capture_error(http_capture *cap, sbx_code code, const char *fmt, ...) {
    sbx_err e = {.code = code};
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(e.msg, sizeof e.msg, fmt, ap);
    va_end(ap);
    set_error(cap, &e);
}

int http_call(const http_req *caller, const auth_identity *who, const char *method,
              const char *path, http_capture *cap) {
    router_match m;
    int rc = router_find(method, path, &m);
    if (rc == 404) {
        capture_error(cap, SBX_ENOTFOUND, "no route for %.8s %.200s", method, path);
        return cap->status;
    }
    if (rc == 405) {
        capture_error(cap, SBX_EMETHOD, "%.8s is not allowed on %.200s; allowed: %s", method, path,
                      m.allow);
        return cap->status;
    }
    if (!m.route->open && !auth_allows(who, m.route->scope)) {
        capture_error(cap, SBX_EFORBIDDEN, "this token lacks the '%s' scope needed for %.8s %.200s",
                      m.route->scope, method, path);
        return cap->status;
    }
    char owner[SBX_NODE_MAX + 1];
    sbx_err e;
    if (cluster_admit(method, m.route, m.params, owner, &e) != SBX_OK) {
        /* another node's session: through the router to its owner (an MCP client cannot
         * choose the replica its call lands on), or a 421 naming the owner */
        if (e.code == SBX_EWRONGNODE && cluster_can_forward()) {
            cluster_reply out;
            cluster_forward(http_header((http_req *)caller, "Authorization"), caller->id, owner,
                            method, path, cap->query, cap->body, &out);
            cap->status = out.status;
            cap->ctype = out.ctype;
            cap->json = out.json;
            cap->data = out.data;
            cap->len = out.len;
            return cap->status;
        }
        set_error(cap, &e);
        return cap->status;
    }
    http_req r = {
        .id = caller->id,
        .method = method,
        .path = path,
        .nparams = m.nparams,
        .body = "",
        .body_len = 0,
        .token_label = caller->token_label,
        .authenticated = caller->authenticated,
        .owner = caller->owner,
        .admin = caller->admin,
        .conn = NULL,
        .capture = cap,
    };
    for (int i = 0; i < m.nparams; i++)
        r.params[i] = m.params[i];
    m.route->fn(&r);
    if (!cap->status)
        capture_error(cap, SBX_EINTERNAL, "the handler of %.8s %.200s produced no reply", method,
                      path);
    return cap->status;
}

void http_capture_free(http_capture *cap) {
    free(cap->ctype);
    free(cap->data);
    cJSON_Delete(cap->json);
    cJSON_Delete(cap->empty);
    cap->ctype = cap->data = NULL;
    cap->json = cap->empty = NULL;
    cap->len = 0;
}

const char *http_capture_query(http_req *r, const char *name) {
    const char *const *q = r->capture->query;
    for (size_t i = 0; q && q[i] && q[i + 1]; i += 2)
        if (strcmp(q[i], name) == 0)
            return q[i + 1];
    return NULL;
}

const char *http_capture_header(http_req *r, const char *name) {
    (void)r, (void)name;
    return NULL; /* no Accept (so no streams), no Content-Type (the body is JSON) */
}

cJSON *http_capture_body(http_req *r, sbx_err *e) {
    http_capture *cap = r->capture;
    if (cap->body)
        return cap->body;
    if (!cap->empty && !(cap->empty = cJSON_CreateObject()))
        sbx_fail(e, SBX_EINTERNAL, "out of memory");
    return cap->empty;
}

/* A second answer from one handler is dropped, as server.c does. */
static bool answered(http_req *r) {
    if (!r->capture->status)
        return false;
    LOG_E("http", "req=%s answered twice (in-process call); second reply dropped", r->id);
    return true;
}

void http_capture_bytes(http_req *r, int status, const char *ctype, char *data, size_t len) {
    if (answered(r)) {
        free(data);
        return;
    }
    http_capture *cap = r->capture;
    cap->status = status;
    cap->ctype = ctype ? strdup(ctype) : NULL;
    cap->data = data;
    cap->len = data ? len : 0;
}

void http_capture_json(http_req *r, int status, cJSON *body) {
    if (answered(r)) {
        cJSON_Delete(body);
        return;
    }
    http_capture *cap = r->capture;
    cap->status = status;
    cap->ctype = strdup("application/json; charset=utf-8");
    cap->json = body;
}

void http_capture_refuse(http_req *r, void *arg, void (*arg_free)(void *)) {
    if (arg_free)
        arg_free(arg);
    if (answered(r))
        return;
    capture_error(r->capture, SBX_EINTERNAL,
                  "%.8s %.200s answers with a stream or a WebSocket, which an in-process call "
                  "cannot carry",
                  r->method, r->path);
}
